//! Walks a plan: parallel where the plan says so, batch by batch in the roll; on a failure
//! after the first switch, puts every switched host back on the release it had.

mod exec;
pub mod readings;
mod recover;

pub use exec::Failure;
pub use recover::restore;

use crate::artifact::{Artifact, BuildError};
use crate::config::StageConfig;
use crate::error::Error;
use crate::plan::{Action, HostActions, Phase, Plan, Run, Step, What};
use crate::remote::{Layout, lock, release};
use crate::report::{Event, Reporter};
use crate::transport::Transport;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// What the runner works with.
pub struct Ctx<T: Transport> {
    pub t: Arc<T>,
    pub report: Arc<dyn Reporter>,
    pub verbose: bool,
    /// Send only what a host's current release lacks (`build.delta`).
    pub delta: bool,
    /// Set by the first Ctrl-C or SIGTERM: finish the action in flight, then stop and undo.
    pub cancel: Arc<AtomicBool>,
}

impl<T: Transport> Ctx<T> {
    pub fn new(t: Arc<T>, report: Arc<dyn Reporter>, verbose: bool) -> Self {
        Ctx { t, report, verbose, delta: true, cancel: Arc::default() }
    }

    pub fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::SeqCst)
    }
}

/// What the run has done so far, per host: what a failure has to undo.
#[derive(Debug, Default)]
pub struct State {
    pub locked: Vec<String>,
    /// The release each host served before (from `current`); `None` = first deploy.
    pub previous: BTreeMap<String, Option<String>>,
    pub unpacked: BTreeSet<String>,
    /// Hosts switched to the new release, in order.
    pub switched: Vec<String>,
    pub drained: BTreeSet<String>,
    /// Releases cleanup must never remove (the one being rolled out).
    pub protect: Vec<String>,
    /// The release this run makes or rolls to.
    pub release: String,
    /// Read while the build ran: each host's current release, and what a delta needs of it
    /// (its manifest, and the files changed on the host since it was unpacked).
    pub prefetched: BTreeMap<String, (Option<String>, Option<Base>)>,
    /// Manifests by release id, read from the first host that has the release and shared by
    /// the others (64 hosts on one release hold one copy).
    pub manifests: BTreeMap<String, Arc<tokio::sync::OnceCell<Option<Arc<BaseManifest>>>>>,
}

/// A release's manifest as read from a host.
#[derive(Debug)]
pub struct BaseManifest {
    pub text: String,
    pub files: Vec<crate::artifact::FileEntry>,
}

/// What a delta for one host is made against.
#[derive(Debug, Clone)]
pub struct Base {
    pub manifest: Arc<BaseManifest>,
    /// The files unchanged since the release was unpacked: path → listing record.
    pub trusted: BTreeMap<String, String>,
}

pub type Shared = Arc<Mutex<State>>;

/// The release id in `readlink current` output (`releases/ID`).
fn release_of(link: &str) -> Option<String> {
    let l = link.trim();
    let id = l.rsplit('/').next()?;
    (!id.is_empty() && crate::release_id::looks_like_release_id(id)).then(|| id.to_string())
}

impl<T: Transport> Ctx<T> {
    /// Runs one host's actions in order, keeping `state` up to date. An `interruptible` run
    /// stops before the next action once the run is cancelled; undoing is not interruptible.
    async fn host(
        &self,
        h: &HostActions,
        artifact: Option<&Artifact>,
        state: &Shared,
        layout: &Layout,
        interruptible: bool,
    ) -> Result<(), Failure> {
        // The receive action, and whether it sent a delta: a delta whose linked files turn out
        // to have changed on the host (checked while unpacking) is replaced by the whole release.
        let mut received: Option<(&Action, bool)> = None;
        let mut actions = h.actions.iter();
        while let Some(a) = actions.next() {
            if interruptible && self.cancelled() {
                return Err(Failure {
                    host: h.host.clone(),
                    what: a.what,
                    message: "interrupted (Ctrl-C or SIGTERM) before this step".into(),
                    output: String::new(),
                    lost: false,
                });
            }
            if a.with_next
                && let Some(next) = actions.next()
            {
                // Both run to their end; the first failure is reported.
                let (x, y) = tokio::join!(self.plain(h, a, state), self.plain(h, next, state));
                x?;
                y?;
                continue;
            }
            match (&a.run, a.what) {
                (Run::Cleanup { keep, list }, _) => self.cleanup(&h.host, a, *keep, list, state, layout).await?,
                (Run::Ssh { .. }, _) => {}
                (Run::Shell { stdin: Some(_), .. }, What::Receive) => {
                    let art = artifact.expect("receive after build");
                    let packed = self.pack_for(&h.host, a, art, state, layout).await?;
                    self.send(&h.host, a, &packed).await?;
                    received = Some((a, packed.linked > 0));
                }
                (_, What::Unpack) if matches!(received, Some((_, true))) => {
                    let Err(f) = self.plain(h, a, state).await else { continue };
                    // Only the link check's own failures (after the release folder was made).
                    let Some(why) = f.output.lines().find(|l| l.starts_with("warm release:")) else {
                        return Err(f);
                    };
                    self.report.event(&Event::Warning {
                        host: Some(h.host.clone()),
                        message: format!("{why}; sending the whole release instead"),
                    });
                    let id = state.lock().unwrap().release.clone();
                    let remove = release::remove(layout, std::slice::from_ref(&id));
                    let gone =
                        self.t.run(&a.on, &remove, None).await.map_err(|e| Failure::transport(&h.host, a.what, e))?;
                    if !gone.ok() {
                        return Err(f);
                    }
                    let art = artifact.expect("receive after build");
                    let full = art.full().await.map_err(|e| Failure::packing(&h.host, a.what, e))?;
                    self.send(&h.host, received.expect("received").0, &full).await?;
                    self.plain(h, a, state).await?;
                }
                (_, What::ReadCurrent) => {
                    let start = Instant::now();
                    let prefetched = state.lock().unwrap().prefetched.get(&h.host).map(|p| p.0.clone());
                    let prev = match prefetched {
                        Some(p) => p,
                        None => self.read_current(&h.host, a).await?,
                    };
                    state.lock().unwrap().previous.insert(h.host.clone(), prev);
                    self.report.event(&Event::Done {
                        host: h.host.clone(),
                        what: a.what,
                        on: a.on.to_string(),
                        took: start.elapsed(),
                    });
                }
                _ => self.plain(h, a, state).await?,
            }
        }
        Ok(())
    }

    /// The release `current` points to; no `current` yet (a first deploy) is not an error.
    async fn read_current(&self, host: &str, a: &Action) -> Result<Option<String>, Failure> {
        let Run::Shell { cmd, .. } = &a.run else { unreachable!("read current is a command") };
        let out = self.t.run(&a.on, cmd, None).await.map_err(|e| Failure::transport(host, a.what, e))?;
        Ok(if out.ok() { release_of(&out.stdout) } else { None })
    }

    /// Reads, for one host, its current release and (with `build.delta`) what a delta
    /// against it needs; failures are left for the upload step to meet and report.
    async fn prefetch(&self, h: &HostActions, state: &Shared, layout: &Layout) {
        let Some(a) = h.actions.iter().find(|a| a.what == What::ReadCurrent) else { return };
        let Ok(prev) = self.read_current(&h.host, a).await else { return };
        let base = match &prev {
            Some(id) if self.delta => self.base(a, id, layout, state).await,
            _ => None,
        };
        state.lock().unwrap().prefetched.insert(h.host.clone(), (prev, base));
    }

    /// The current release's manifest, and which of its files changed on the host since it
    /// was unpacked (its listing then and now, read at once); `None` without a manifest.
    async fn base(&self, a: &Action, id: &str, layout: &Layout, state: &Shared) -> Option<Base> {
        let cell = state.lock().unwrap().manifests.entry(id.to_string()).or_default().clone();
        let manifest = async {
            cell.get_or_init(|| async {
                let out = self.t.run(&a.on, &release::manifest(layout, id), None).await.ok().filter(|o| o.ok())?;
                let files = crate::artifact::parse_manifest(&out.stdout).filter(|f| !f.is_empty())?;
                Some(Arc::new(BaseManifest { text: out.stdout, files }))
            })
            .await
            .clone()
        };
        let listings = [release::unpacked_listing(layout, id), release::current_listing(layout)];
        let (manifest, then, now) =
            tokio::join!(manifest, self.t.run(&a.on, &listings[0], None), self.t.run(&a.on, &listings[1], None));
        let manifest = manifest?;
        let (then, now) = (then.ok().filter(|o| o.ok()), now.ok().filter(|o| o.ok()));
        let then = then.as_ref().map(|o| crate::artifact::parse_listing(&o.stdout)).unwrap_or_default();
        let now = now.as_ref().map(|o| crate::artifact::parse_listing(&o.stdout)).unwrap_or_default();
        let trusted = manifest
            .files
            .iter()
            .filter_map(|f| {
                let rec = then.get(f.path.as_str())?;
                (now.get(f.path.as_str()) == Some(rec)).then(|| (f.path.clone(), rec.to_string()))
            })
            .collect();
        Some(Base { manifest, trusted })
    }

    /// Runs an action that needs nothing but its command, keeping `state` up to date.
    async fn plain(&self, h: &HostActions, a: &Action, state: &Shared) -> Result<(), Failure> {
        if a.what == What::Switch {
            // Recorded before the command: a lost connection may still have switched.
            state.lock().unwrap().switched.push(h.host.clone());
        }
        if a.what == What::Drain {
            // Counted as drained before the command: a lost connection may have drained it.
            state.lock().unwrap().drained.insert(h.host.clone());
        }
        if let Err(f) = self.exec(&h.host, a, None).await {
            if a.what == What::Drain && f.completed() {
                // The balancer refused: the host was not drained.
                state.lock().unwrap().drained.remove(&h.host);
            }
            return Err(f);
        }
        let mut s = state.lock().unwrap();
        match a.what {
            What::Lock => s.locked.push(h.host.clone()),
            What::Unpack => {
                s.unpacked.insert(h.host.clone());
            }
            What::WaitHealthy => {
                s.drained.remove(&h.host);
            }
            What::Undrain if !has_wait_healthy(h) => {
                s.drained.remove(&h.host);
            }
            What::Unlock => s.locked.retain(|x| x != &h.host),
            _ => {}
        }
        Ok(())
    }

    /// Streams a tarball to a host and checks the sha256 the host computed.
    async fn send(&self, host: &str, a: &Action, packed: &crate::artifact::Packed) -> Result<(), Failure> {
        let out = self.exec(host, a, Some(&packed.file)).await?;
        let got = out.stdout.split_whitespace().next().unwrap_or("");
        if got != packed.sha256 {
            return Err(Failure {
                host: host.to_string(),
                what: a.what,
                message: format!(
                    "checksum mismatch: sent {}, host has {}",
                    packed.sha256,
                    if got.is_empty() { "nothing" } else { got }
                ),
                output: out.tail(5),
                lost: false,
            });
        }
        self.report.event(&Event::Sent {
            host: host.to_string(),
            kind: if packed.linked > 0 { "delta" } else { "full" },
            bytes: packed.bytes,
            files: packed.sent,
            linked: packed.linked,
            linked_bytes: packed.linked_bytes,
        });
        Ok(())
    }

    /// The tarball for one host: a delta against its current release when that release has
    /// a manifest (and `build.delta` is on), else the whole release.
    async fn pack_for(
        &self,
        host: &str,
        a: &Action,
        art: &Artifact,
        state: &Shared,
        layout: &Layout,
    ) -> Result<crate::artifact::Packed, Failure> {
        let (current, prefetched) = {
            let s = state.lock().unwrap();
            (s.previous.get(host).cloned().flatten(), s.prefetched.get(host).map(|p| p.1.clone()))
        };
        let base = match (prefetched, current) {
            (Some(b), _) => b,
            (None, Some(id)) if self.delta => self.base(a, &id, layout, state).await,
            _ => None,
        };
        let packed = match base {
            Some(b) => Some(art.delta(&b.manifest.text, &b.trusted).await),
            None => None,
        };
        let packed = match packed {
            Some(p) => p,
            None => art.full().await,
        };
        packed.map_err(|e| Failure::packing(host, a.what, e))
    }

    /// Removes all but the newest `keep` releases; never `current` or the rollback target.
    async fn cleanup(
        &self,
        host: &str,
        a: &Action,
        keep: u32,
        list: &crate::remote::Cmd,
        state: &Shared,
        layout: &Layout,
    ) -> Result<(), Failure> {
        let start = Instant::now();
        let out = self.t.run(&a.on, list, None).await.map_err(|e| Failure::transport(host, a.what, e))?;
        let mut ids: Vec<String> = out
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| crate::release_id::looks_like_release_id(l))
            .map(String::from)
            .collect();
        ids.sort();
        let protect: Vec<String> = {
            let s = state.lock().unwrap();
            s.previous.get(host).cloned().flatten().into_iter().chain(s.protect.iter().cloned()).collect()
        };
        let keep = keep as usize;
        let old: Vec<String> = ids.iter().rev().skip(keep).filter(|id| !protect.contains(id)).cloned().collect();
        // The newest release is the one just deployed (`current`): `skip(keep)` keeps it.
        if !old.is_empty() {
            let cmd = release::remove(layout, &old);
            let r = self.t.run(&a.on, &cmd, None).await;
            match r {
                Ok(o) if o.ok() => {}
                Ok(o) => self.report.event(&Event::Warning {
                    host: Some(host.into()),
                    message: format!("could not remove old releases: {}", o.tail(3)),
                }),
                Err(e) => self.report.event(&Event::Warning {
                    host: Some(host.into()),
                    message: format!("could not remove old releases: {e}"),
                }),
            }
        }
        self.report.event(&Event::Done {
            host: host.into(),
            what: What::Cleanup,
            on: a.on.to_string(),
            took: start.elapsed(),
        });
        Ok(())
    }
}

fn has_wait_healthy(h: &HostActions) -> bool {
    h.actions.iter().any(|a| a.what == What::WaitHealthy)
}

/// Runs the hosts of a step side by side, at most `parallel` at once, and waits for all of
/// them (a failure does not cut the others short mid-command).
async fn run_parallel<T: Transport>(
    ctx: &Arc<Ctx<T>>,
    hosts: &[HostActions],
    parallel: usize,
    artifact: Option<&Artifact>,
    state: &Shared,
    layout: &Layout,
    interruptible: bool,
) -> Vec<Failure> {
    let slots = Arc::new(Semaphore::new(parallel.max(1)));
    let mut set = JoinSet::new();
    for h in hosts {
        let (ctx, h, art, state, layout, slots) =
            (ctx.clone(), h.clone(), artifact.cloned(), state.clone(), layout.clone(), slots.clone());
        set.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore");
            ctx.host(&h, art.as_ref(), &state, &layout, interruptible).await
        });
    }
    let mut failures = Vec::new();
    while let Some(r) = set.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(f)) => failures.push(f),
            Err(e) => failures.push(Failure {
                host: "?".into(),
                what: What::Connect,
                message: format!("task failed: {e}"),
                output: String::new(),
                lost: false,
            }),
        }
    }
    failures
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

/// A running deploy.
pub struct Deploy<'a, T: Transport> {
    pub ctx: Arc<Ctx<T>>,
    pub cfg: &'a StageConfig,
    pub plan: &'a Plan,
    pub state: Shared,
    pub layout: Layout,
    /// After a failure in the roll, put switched hosts back (`--no-auto-rollback` = false).
    pub auto_rollback: bool,
    /// Wait this long for a lock held by another deploy (`--lock-wait`).
    pub lock_wait: Option<Duration>,
    /// The locks were taken before this run (see [`Deploy::after_lock`]).
    locked_already: bool,
}

impl<'a, T: Transport> Deploy<'a, T> {
    pub fn new(ctx: Arc<Ctx<T>>, cfg: &'a StageConfig, plan: &'a Plan) -> Self {
        let state = State { protect: vec![plan.release.clone()], release: plan.release.clone(), ..State::default() };
        Deploy {
            ctx,
            cfg,
            plan,
            state: Arc::new(Mutex::new(state)),
            layout: Layout::new(&cfg.app.path),
            auto_rollback: true,
            lock_wait: None,
            locked_already: false,
        }
    }

    /// Continues after `locker` took the locks: this run holds them and skips its own lock step.
    pub fn after_lock(mut self, locker: &Deploy<'_, T>) -> Self {
        self.state.lock().unwrap().locked = std::mem::take(&mut locker.state.lock().unwrap().locked);
        self.lock_wait = locker.lock_wait;
        self.locked_already = true;
        self
    }

    /// Runs only the lock step (reported as the lock phase).
    pub async fn lock_phase(&self, clock: &mut Clock) -> Result<(), Error> {
        let Some(step) = self.plan.step(Phase::Lock) else { return Ok(()) };
        let t0 = Instant::now();
        self.report(Event::PhaseStarted { phase: Phase::Lock });
        let r = self.lock(step).await;
        self.report(Event::PhaseFinished { phase: Phase::Lock, took: t0.elapsed() });
        clock.phases.push((Phase::Lock, t0.elapsed()));
        r
    }

    fn report(&self, e: Event) {
        self.ctx.report.event(&e);
    }

    fn failed(&self, f: &Failure) {
        self.report(Event::Failed {
            host: f.host.clone(),
            what: f.what,
            message: f.message.clone(),
            output: f.output.clone(),
        });
    }

    /// Waits for the build; meanwhile reads what the upload needs from every host.
    async fn built_while_prefetching(
        &self,
        build: tokio::task::JoinHandle<Result<(Artifact, Duration), BuildError>>,
    ) -> Result<Result<(Artifact, Duration), BuildError>, tokio::task::JoinError> {
        // Each host's listings are held until its delta is worked out: 16 hosts at a time.
        let slots = Arc::new(Semaphore::new(16));
        let mut set = JoinSet::new();
        for h in self
            .plan
            .steps
            .iter()
            .filter(|s| s.phase == Phase::Upload)
            .flat_map(|s| s.batches.iter().flat_map(|b| &b.hosts))
        {
            let (ctx, h, state, layout) = (self.ctx.clone(), h.clone(), self.state.clone(), self.layout.clone());
            let slots = slots.clone();
            set.spawn(async move {
                let _slot = slots.acquire_owned().await.expect("semaphore");
                ctx.prefetch(&h, &state, &layout).await
            });
        }
        let built = build.await;
        if built.as_ref().is_ok_and(|b| b.is_ok()) {
            set.join_all().await;
        } // else: the deploy stops; what was read is not needed
        built
    }

    /// Runs the plan. `build` yields the artifact (started by the caller, so it can run
    /// while hosts are being connected and locked).
    pub async fn run(
        &self,
        clock: &mut Clock,
        build: Option<tokio::task::JoinHandle<Result<(Artifact, Duration), BuildError>>>,
    ) -> Result<(), Error> {
        let mut build = build;
        let mut artifact: Option<Artifact> = None;
        for step in &self.plan.steps {
            if step.phase == Phase::Connect || (step.phase == Phase::Lock && self.locked_already) {
                continue; // done before the run, by the caller
            }
            if self.ctx.cancelled()
                && matches!(step.phase, Phase::Build | Phase::Upload | Phase::Migrate | Phase::Check)
            {
                if let Some(b) = build.take() {
                    b.abort();
                }
                return Err(self
                    .abort(format!("interrupted before {}; no host was switched", step.phase.name()))
                    .await);
            }
            let t0 = Instant::now();
            self.report(Event::PhaseStarted { phase: step.phase });
            let r = match step.phase {
                Phase::Connect => Ok(()),
                Phase::Build => match self.built_while_prefetching(build.take().expect("one build")).await {
                    Ok(Ok((a, took))) => {
                        self.report(Event::Built {
                            file: a.tree.display().to_string(),
                            bytes: a.bytes,
                            sha256: a.sha256.clone(),
                            reused: a.reused,
                            took,
                        });
                        artifact = Some(a);
                        Ok(())
                    }
                    Ok(Err(e)) => {
                        self.report(Event::Failed {
                            host: "local".into(),
                            what: What::Build,
                            message: e.to_string(),
                            output: String::new(),
                        });
                        Err(self.abort(format!("build failed: {e}")).await)
                    }
                    Err(e) => Err(self.abort(format!("build task: {e}")).await),
                },
                Phase::Lock => self.lock(step).await,
                Phase::Roll => self.roll(step).await,
                Phase::Ban => {
                    for h in step.batches.iter().flat_map(|b| &b.hosts) {
                        for a in &h.actions {
                            if let Err(f) = self.ctx.exec(&a.on.to_string(), a, None).await {
                                self.report(Event::Warning {
                                    host: None,
                                    message: format!(
                                        "cache ban failed, pages may be stale until it is banned by hand: {}",
                                        f.message
                                    ),
                                });
                            }
                        }
                    }
                    Ok(())
                }
                Phase::Workers => {
                    let failures = self.parallel(step, artifact.as_ref()).await;
                    match failures.first() {
                        None => Ok(()),
                        Some(_) => Err(self.recover(failures).await),
                    }
                }
                Phase::Finish => {
                    let failures = self.parallel(step, artifact.as_ref()).await;
                    for f in &failures {
                        self.report(Event::Warning {
                            host: Some(f.host.clone()),
                            message: format!("{}: {}", f.what.label(), f.message),
                        });
                    }
                    Ok(())
                }
                Phase::Upload | Phase::Migrate | Phase::Check => {
                    let failures = self.parallel(step, artifact.as_ref()).await;
                    match failures.first() {
                        None => Ok(()),
                        Some(_) => {
                            for f in &failures {
                                self.failed(f);
                            }
                            let what = failures
                                .iter()
                                .map(|f| format!("{} on {}", f.what.label(), f.host))
                                .collect::<Vec<_>>()
                                .join(", ");
                            Err(self.abort(format!("{what} failed; no host was switched")).await)
                        }
                    }
                }
            };
            let took = t0.elapsed();
            self.report(Event::PhaseFinished { phase: step.phase, took });
            clock.phases.push((step.phase, took));
            r?;
        }
        Ok(())
    }

    async fn parallel(&self, step: &Step, artifact: Option<&Artifact>) -> Vec<Failure> {
        // Once every host is switched, an interrupt no longer stops the run: finishing
        // (record, cleanup, unlock) takes a moment and leaves nothing behind.
        let interruptible = !matches!(step.phase, Phase::Ban | Phase::Finish);
        let mut failures = Vec::new();
        for b in &step.batches {
            failures.extend(
                run_parallel(&self.ctx, &b.hosts, step.parallel, artifact, &self.state, &self.layout, interruptible)
                    .await,
            );
        }
        failures
    }

    async fn lock(&self, step: &Step) -> Result<(), Error> {
        let deadline = self.lock_wait.map(|w| Instant::now() + w);
        let mut said = false;
        loop {
            match self.lock_once(step).await {
                Err(Error::Locked { holders })
                    if deadline.is_some_and(|d| Instant::now() < d) && !self.ctx.cancelled() =>
                {
                    let (host, owner) = &holders[0];
                    if !said {
                        // Said once, plainly: a queued CI job should show why it is not moving.
                        self.report(Event::Warning {
                            host: Some(host.clone()),
                            message: format!(
                                "locked by {}; waiting up to {} (--lock-wait)",
                                crate::error::describe_owner(owner),
                                crate::config::decode::format_duration(self.lock_wait.unwrap_or_default())
                            ),
                        });
                        said = true;
                    }
                    self.report(Event::Waiting {
                        host: host.clone(),
                        what: What::Lock,
                        detail: format!("held by {}", crate::error::describe_owner(owner)),
                    });
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                r => return r,
            }
        }
    }

    async fn lock_once(&self, step: &Step) -> Result<(), Error> {
        let mut failures = Vec::new();
        for b in &step.batches {
            failures = run_parallel(&self.ctx, &b.hosts, step.parallel, None, &self.state, &self.layout, true).await;
            if !failures.is_empty() {
                break;
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        let held: Vec<&Failure> = failures.iter().filter(|f| f.output.contains("File exists")).collect();
        let mut holders = Vec::new();
        for f in &held {
            // The holder writes its name right after making the lock, in the same command: a
            // lock met in between has no owner file yet, so look again a few times.
            let mut text = String::new();
            for _ in 0..5 {
                let owner =
                    self.ctx.t.run(&crate::plan::Target::Host(f.host.clone()), &lock::owner(&self.layout), None).await;
                text = owner.map(|o| o.stdout.trim().to_string()).unwrap_or_default();
                if !text.is_empty() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            holders.push((f.host.clone(), text));
        }
        self.unlock_all().await;
        if !held.is_empty() {
            return Err(Error::Locked { holders });
        }
        for f in &failures {
            self.failed(f);
        }
        Err(Error::Deploy {
            message: format!(
                "could not lock {}",
                failures.iter().map(|f| f.host.as_str()).collect::<Vec<_>>().join(", ")
            ),
        })
    }

    /// Releases every lock this run holds.
    pub async fn unlock_all(&self) {
        let locked = std::mem::take(&mut self.state.lock().unwrap().locked);
        let mut set = JoinSet::new();
        for h in locked {
            let (ctx, cmd) = (self.ctx.clone(), lock::release(&self.layout));
            set.spawn(async move {
                let r = ctx.t.run(&crate::plan::Target::Host(h.clone()), &cmd, None).await;
                (h, r)
            });
        }
        while let Some(Ok((h, r))) = set.join_next().await {
            if !matches!(&r, Ok(o) if o.ok()) {
                self.report(Event::Warning {
                    host: Some(h.clone()),
                    message: format!("could not remove the lock: run `deploy unlock {}`", self.cfg.stage),
                });
            }
        }
    }

    /// A failure before any switch: remove the half-prepared release, unlock, exit 1.
    async fn abort(&self, message: String) -> Error {
        self.discard_release().await;
        self.record_outcome("failed").await;
        self.unlock_all().await;
        Error::Deploy { message }
    }

    /// Removes the new release folder where it was unpacked (never for a rollback, whose
    /// target is an old release). Only once no host is on it.
    pub(crate) async fn discard_release(&self) {
        if self.plan.kind != crate::plan::PlanKind::Deploy {
            return;
        }
        let unpacked: Vec<String> = self.state.lock().unwrap().unpacked.iter().cloned().collect();
        self.on_hosts(unpacked, release::remove(&self.layout, std::slice::from_ref(&self.plan.release))).await;
    }

    /// Writes the release log line with this outcome on every host that gets releases.
    pub(crate) async fn record_outcome(&self, outcome: &str) {
        let mut line = self.plan.record.clone();
        line["outcome"] = serde_json::Value::String(outcome.to_string());
        let hosts: Vec<String> = self.cfg.hosts.iter().filter(|h| h.gets_release()).map(|h| h.name.clone()).collect();
        self.on_hosts(hosts, release::record(&self.layout, &line.to_string())).await;
    }

    /// Runs one command on several hosts at once, best effort (for clean-up after failures).
    pub(crate) async fn on_hosts(&self, hosts: Vec<String>, cmd: crate::remote::Cmd) {
        let mut set = JoinSet::new();
        for h in hosts {
            let (ctx, cmd) = (self.ctx.clone(), cmd.clone());
            set.spawn(async move { ctx.t.run(&crate::plan::Target::Host(h), &cmd, None).await });
        }
        while set.join_next().await.is_some() {}
    }

    async fn roll(&self, step: &Step) -> Result<(), Error> {
        for b in &step.batches {
            if self.ctx.cancelled() {
                let host = b.hosts.first().map(|h| h.host.clone()).unwrap_or_default();
                let f = Failure {
                    host,
                    what: What::Drain,
                    message: "interrupted (Ctrl-C or SIGTERM) before this batch".into(),
                    output: String::new(),
                    lost: false,
                };
                return Err(self.recover(vec![f]).await);
            }
            let failures =
                run_parallel(&self.ctx, &b.hosts, step.parallel, None, &self.state, &self.layout, true).await;
            if !failures.is_empty() {
                return Err(self.recover(failures).await);
            }
        }
        Ok(())
    }
}

/// Where the artifact cache lives for this run.
pub fn cache_dir() -> PathBuf {
    crate::artifact::cache_dir()
}
