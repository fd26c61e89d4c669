//! Walks a plan: parallel where the plan says so, batch by batch in the roll. When a step
//! fails, the step's own failure policy (plan data, `OnFailure`) says what happens next.
//!
//! `host` runs one host's actions, `action` one action, `upload` what the upload needs,
//! `lock` the locks, `finish` the bookkeeping of an ending, `recover` putting hosts back.

mod action;
mod failure;
mod finish;
mod host;
mod lock;
mod progress;
mod recover;
mod soak;
mod upload;

pub use failure::{Aftermath, Cause, Failure, FailureKind, Holder, RunError};
pub use progress::{Progress, SharedProgress};
pub use recover::restore;

use crate::artifact::{Artifact, BuildError};
use crate::config::StageConfig;
use crate::plan::{OnFailure, Phase, Plan, Step, What};
use crate::remote::Layout;
use crate::report::{Event, Reporter};
use crate::transport::Transport;
use host::{BatchRun, run_batch};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

/// What the build yields: the artifact and how long it took.
pub type Built = Result<(Artifact, Duration), BuildError>;

/// The build started by the caller (so it runs while hosts are connected and locked).
pub type BuildTask = JoinHandle<Built>;

/// What every part of a run works with.
pub struct Context<T: Transport> {
    pub transport: Arc<T>,
    pub report: Arc<dyn Reporter>,
    pub verbose: bool,
    /// Send only what a host's current release lacks (`build.delta`).
    pub delta: bool,
    /// `[artifact] store`: hosts fetch the tarball from it instead of receiving it over ssh.
    pub store: Option<Arc<crate::artifact::ArtifactStore>>,
    /// Set by the first Ctrl-C, SIGTERM or SIGHUP: stop the hook in flight (on the host) or
    /// finish the short action in flight, then stop and undo.
    pub cancel: Arc<Cancel>,
    /// `[hooks] timeout`: the host kills a hook past it; deploy gives up a little later.
    pub hook_timeout: Duration,
    /// Stops the hook running on a host (`hooks::stop`), for a cancel in the middle of one.
    pub hook_stop: Option<crate::remote::Cmd>,
    /// Held by the lease keeper while it refreshes leases; set once the locks are released,
    /// so no refresh is in flight while a lock is removed ([`Runner::keep_lease`]).
    pub leases_done: Arc<tokio::sync::Mutex<bool>>,
}

/// The first interrupt, which waiting code can also await.
#[derive(Debug)]
pub struct Cancel(tokio::sync::watch::Sender<bool>);

impl Default for Cancel {
    fn default() -> Self {
        Cancel(tokio::sync::watch::Sender::new(false))
    }
}

impl Cancel {
    pub fn set(&self) {
        self.0.send_replace(true);
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once the run is cancelled.
    pub async fn wait(&self) {
        let mut seen = self.0.subscribe();
        let _ = seen.wait_for(|set| *set).await;
    }
}

impl<T: Transport> Context<T> {
    pub fn new(transport: Arc<T>, report: Arc<dyn Reporter>, verbose: bool) -> Self {
        Context {
            transport,
            report,
            verbose,
            delta: true,
            store: None,
            cancel: Arc::default(),
            hook_timeout: crate::config::HOOK_TIMEOUT,
            hook_stop: None,
            leases_done: Arc::default(),
        }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.is_set()
    }
}

/// Times each phase.
pub struct Clock {
    start: Instant,
    pub phases: Vec<(Phase, Duration)>,
}

impl Clock {
    pub fn new(start: Instant) -> Clock {
        Clock { start, phases: Vec::new() }
    }

    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A deploy or rollback being run.
pub struct Runner<'a, T: Transport> {
    pub context: Arc<Context<T>>,
    pub cfg: &'a StageConfig,
    pub plan: &'a Plan,
    pub progress: SharedProgress,
    pub layout: Layout,
    /// Wait this long for a lock held by another deploy (`--lock-wait`).
    pub lock_wait: Option<Duration>,
    /// The locks were taken before this run (see [`Runner::after_lock`]).
    locked_already: bool,
    /// Failures of a step that let the run finish (`post_migrate`): the run ends with exit 1.
    late: Mutex<Vec<Failure>>,
}

impl<'a, T: Transport> Runner<'a, T> {
    pub fn new(context: Arc<Context<T>>, cfg: &'a StageConfig, plan: &'a Plan) -> Self {
        let progress = progress::Progress {
            protect: vec![plan.release.clone()],
            release: plan.release.clone(),
            ..Default::default()
        };
        Runner {
            context,
            cfg,
            plan,
            progress: Arc::new(Mutex::new(progress)),
            layout: Layout::new(&cfg.app.path),
            lock_wait: None,
            locked_already: false,
            late: Mutex::new(Vec::new()),
        }
    }

    /// Continues after `locker` took the locks: this run holds them and skips its own lock step.
    pub fn after_lock(mut self, locker: &Runner<'_, T>) -> Self {
        self.progress.lock().unwrap().locked = std::mem::take(&mut locker.progress.lock().unwrap().locked);
        self.lock_wait = locker.lock_wait;
        self.locked_already = true;
        self
    }

    /// Runs only the lock step (reported as the lock phase).
    pub async fn lock_phase(&self, clock: &mut Clock) -> Result<(), RunError> {
        let Some(step) = self.plan.step(Phase::Lock) else { return Ok(()) };
        let started = Instant::now();
        self.report(Event::PhaseStarted { phase: Phase::Lock });
        let locked = self.lock(step).await;
        self.report(Event::PhaseFinished { phase: Phase::Lock, took: started.elapsed() });
        clock.phases.push((Phase::Lock, started.elapsed()));
        locked
    }

    fn report(&self, event: Event) {
        self.context.report.event(&event);
    }

    fn failed(&self, failure: &Failure) {
        self.report(Event::Failed {
            host: failure.host.clone(),
            what: failure.what,
            message: failure.message.clone(),
            output: failure.output.clone(),
        });
    }

    /// Runs the plan, step by step. `build` yields the artifact.
    pub async fn run(&self, clock: &mut Clock, build: Option<BuildTask>) -> Result<(), RunError> {
        let mut build = build;
        let mut artifact: Option<Artifact> = None;
        for step in &self.plan.steps {
            if step.phase == Phase::Connect || (step.phase == Phase::Lock && self.locked_already) {
                continue; // done before the run, by the caller
            }
            if self.context.cancelled() && step.on_failure == OnFailure::Abort {
                if let Some(task) = build.take() {
                    task.abort();
                }
                return Err(self.abort(Cause::Interrupted(step.phase)).await);
            }
            let unlocks = step
                .batches
                .iter()
                .flat_map(|batch| &batch.hosts)
                .any(|host| host.actions.iter().any(|action| action.what == crate::plan::What::Unlock));
            if unlocks {
                // No lease refresh in flight while the locks go (see `keep_lease`).
                *self.context.leases_done.lock().await = true;
            }
            let started = Instant::now();
            self.report(Event::PhaseStarted { phase: step.phase });
            let outcome = match step.phase {
                Phase::Lock => self.lock(step).await,
                Phase::Build => {
                    let task = build.take().expect("one build");
                    let failures = self.build(task, &mut artifact).await;
                    self.settle(step, failures).await
                }
                Phase::Roll | Phase::Canary => {
                    let failures = self.roll(step).await;
                    self.settle(step, failures).await
                }
                Phase::Ban => {
                    let failures = self.ban(step).await;
                    self.settle(step, failures).await
                }
                Phase::Finish if !self.late.lock().unwrap().is_empty() => {
                    let step = self.recording_the_failure(step);
                    let failures = self.each_batch(&step, artifact.as_ref()).await;
                    self.settle(&step, failures).await
                }
                _ => {
                    let failures = self.each_batch(step, artifact.as_ref()).await;
                    self.settle(step, failures).await
                }
            };
            let took = started.elapsed();
            self.report(Event::PhaseFinished { phase: step.phase, took });
            clock.phases.push((step.phase, took));
            outcome?;
        }
        let late = std::mem::take(&mut *self.late.lock().unwrap());
        if !late.is_empty() {
            return Err(RunError::Failed { cause: Cause::Actions(late), aftermath: Aftermath::Deployed });
        }
        Ok(())
    }

    /// The finish step, its release log line saying `post_migrate` failed.
    fn recording_the_failure(&self, step: &Step) -> Step {
        let mut line = self.plan.record.clone();
        line["post_migrate"] = serde_json::json!("failed");
        let record = crate::remote::release::record(&self.layout, &line.to_string());
        let mut step = step.clone();
        for host in step.batches.iter_mut().flat_map(|batch| batch.hosts.iter_mut()) {
            for action in host.actions.iter_mut().filter(|action| action.what == What::Record) {
                action.run = crate::plan::Run::Shell { cmd: record.clone(), stdin: None };
            }
        }
        step
    }

    /// What the step's failures lead to: the step's own policy.
    async fn settle(&self, step: &Step, failures: Vec<Failure>) -> Result<(), RunError> {
        if failures.is_empty() {
            return Ok(());
        }
        if step.on_failure == OnFailure::Warn {
            self.warn(failures);
            return Ok(());
        }
        if step.on_failure == OnFailure::Finish {
            for failure in &failures {
                self.failed(failure);
            }
            self.late.lock().unwrap().extend(failures);
            return Ok(());
        }
        for failure in &failures {
            self.failed(failure);
        }
        Err(match step.on_failure {
            OnFailure::RollBack => self.roll_back(failures).await,
            OnFailure::LeaveSwitched => self.leave_switched(failures).await,
            OnFailure::Abort | OnFailure::Stop | OnFailure::ReleaseLocks | OnFailure::Warn | OnFailure::Finish => {
                self.abort(Cause::Actions(failures)).await
            }
        })
    }

    /// Failures after every host serves the release: warnings, and the run goes on.
    fn warn(&self, failures: Vec<Failure>) {
        for failure in failures {
            self.report(match failure.what {
                What::Ban => Event::Warning {
                    host: None,
                    message: format!(
                        "cache ban failed, pages may be stale until it is banned by hand: {}",
                        failure.message
                    ),
                },
                what => Event::Warning {
                    host: Some(failure.host),
                    message: format!("{}: {}", what.label(), failure.message),
                },
            });
        }
    }

    /// Waits for the build; meanwhile reads what the upload needs from every host.
    async fn build(&self, task: BuildTask, artifact: &mut Option<Artifact>) -> Vec<Failure> {
        let built = self.built_while_prefetching(task).await;
        let failed = |message: String| vec![Failure::new("local", What::Build, FailureKind::Build, message)];
        match built {
            Ok(Ok((built, took))) => {
                self.report(Event::Built {
                    file: built.tree.display().to_string(),
                    bytes: built.bytes,
                    sha256: built.sha256.clone(),
                    reused: built.reused,
                    took,
                });
                *artifact = Some(built);
                vec![]
            }
            Ok(Err(err @ BuildError::Refused(_))) => {
                vec![Failure::new("local", What::Build, FailureKind::Refused, err.to_string())]
            }
            Ok(Err(err)) => failed(err.to_string()),
            Err(err) => failed(format!("build task: {err}")),
        }
    }

    async fn built_while_prefetching(&self, task: BuildTask) -> Result<Built, tokio::task::JoinError> {
        // Each host's listings are held until its delta is worked out: 16 hosts at a time.
        let slots = Arc::new(Semaphore::new(16));
        let mut set = JoinSet::new();
        let upload = self.plan.steps.iter().filter(|step| step.phase == Phase::Upload);
        for host in upload.flat_map(|step| step.hosts()) {
            let (context, host, progress, layout) =
                (self.context.clone(), host.clone(), self.progress.clone(), self.layout.clone());
            let slots = slots.clone();
            set.spawn(async move {
                let _slot = slots.acquire_owned().await.expect("semaphore");
                context.prefetch(&host, &progress, &layout).await
            });
        }
        let built = task.await;
        if built.as_ref().is_ok_and(|built| built.is_ok()) {
            set.join_all().await;
        } // else: the deploy stops; what was read is not needed
        built
    }

    /// The step's batches one after the other, each batch's hosts side by side.
    async fn each_batch(&self, step: &Step, artifact: Option<&Artifact>) -> Vec<Failure> {
        let how = BatchRun {
            parallel: step.parallel,
            interruptible: step.on_failure.interruptible(),
            keep_going: step.on_failure == OnFailure::Warn,
        };
        let mut failures = Vec::new();
        for batch in &step.batches {
            failures.extend(run_batch(&self.context, &batch.hosts, how, artifact, &self.progress, &self.layout).await);
        }
        failures
    }

    /// Batch by batch; the first batch that fails (or an interrupt between batches) ends it.
    async fn roll(&self, step: &Step) -> Vec<Failure> {
        let how = BatchRun { parallel: step.parallel, interruptible: true, keep_going: false };
        for batch in &step.batches {
            if self.context.cancelled() {
                let host = batch.hosts.first().map(|host| host.host.as_str()).unwrap_or_default();
                return vec![Failure::interrupted(host, What::Drain, "this batch")];
            }
            let failures = run_batch(&self.context, &batch.hosts, how, None, &self.progress, &self.layout).await;
            if !failures.is_empty() {
                return failures;
            }
        }
        vec![]
    }

    /// Every ban, each about the host it runs on, each tried even when one fails.
    async fn ban(&self, step: &Step) -> Vec<Failure> {
        let mut failures = Vec::new();
        for action in step.actions() {
            if let Err(failure) = self.context.exec(&action.on.to_string(), action, None).await {
                failures.push(failure);
            }
        }
        failures
    }
}
