//! One deploy or rollback from start to end, written once for both: the runtime and the
//! reporter, connecting to every host, the signals (the first Ctrl-C or SIGTERM asks the run
//! to stop and undo; the second stops it at once), the lock, the webhooks and the step
//! summary, and the final event.

use super::connect::connect;
use crate::config::{Config, NotifyOn, StageConfig};
use crate::error::Error;
use crate::plan::{Owner, Phase, Plan, What};
use crate::report::{Event, Reporter, RunSummary, Tally};
use crate::runner::{Clock, Context, Runner};
use crate::settings::Settings;
use crate::transport::{Http, Live};
use std::cell::{Cell, RefCell};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::runtime::Runtime;

/// A deploy or a rollback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunKind {
    Deploy,
    Rollback,
}

impl RunKind {
    fn name(self) -> &'static str {
        match self {
            RunKind::Deploy => "deploy",
            RunKind::Rollback => "rollback",
        }
    }
}

pub struct Session<'c> {
    pub settings: &'c Settings,
    pub cfg: &'c Config,
    pub kind: RunKind,
    /// Who runs it: written into the locks and the release log.
    pub owner: Owner,
    pub report: Arc<dyn Reporter>,
    /// Every host of the stage, and those that get the release.
    pub hosts: Vec<String>,
    pub release_hosts: Vec<String>,
    clock: RefCell<Clock>,
    tally: Arc<Tally>,
    runtime: Runtime,
    /// A second signal stopped the run at once.
    interrupted: Cell<bool>,
}

/// How a run sends the release: deltas or not (`build.delta`), and the artifact store hosts
/// fetch from (`[artifact] store`).
#[derive(Default)]
pub struct Upload {
    pub delta: bool,
    pub store: Option<Arc<crate::artifact::ArtifactStore>>,
}

/// What a session's body works with once every host is connected.
pub struct Connected<'s> {
    pub session: &'s Session<'s>,
    pub live: &'s Arc<Live>,
    pub context: &'s Arc<Context<Live>>,
    pub clock: &'s mut Clock,
}

impl<'c> Session<'c> {
    pub fn start(settings: &'c Settings, cfg: &'c Config, kind: RunKind) -> Result<Session<'c>, Error> {
        let (hosts, release_hosts) = super::host_names(cfg);
        let tally = Tally::new(super::reporter(settings, cfg, &release_hosts));
        Ok(Session {
            settings,
            cfg,
            kind,
            owner: crate::who::owner(&cfg.stage.stage, SystemTime::now()),
            report: tally.clone(),
            hosts,
            release_hosts,
            clock: RefCell::new(Clock::new(Instant::now())),
            tally,
            runtime: super::runtime()?,
            interrupted: Cell::new(false),
        })
    }

    pub fn stage(&self) -> &'c StageConfig {
        &self.cfg.stage
    }

    /// Starts `future` on the session's runtime now (the build, while hosts are connected).
    pub fn spawn<F>(&self, future: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(future)
    }

    /// Connects to every host, then runs `body` while watching the signals; closes the
    /// connections at the end. After a second signal the body is dropped where it stands,
    /// the connections are cut, and the result is [`Error::Interrupted`].
    pub fn connected(
        &self,
        upload: Upload,
        body: impl AsyncFnOnce(Connected<'_>) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let stage = &self.cfg.stage;
        let (report, verbose, hosts) = (self.report.clone(), self.settings.verbose, &self.hosts);
        let mut clock = self.clock.borrow_mut();
        let clock = &mut *clock;
        self.runtime.block_on(async {
            let started = Instant::now();
            report.event(&Event::PhaseStarted { phase: Phase::Connect });
            let ssh = connect(stage, hosts).await?;
            for host in hosts {
                let on = host.clone();
                report.event(&Event::Done { host: host.clone(), what: What::Connect, on, took: started.elapsed() });
            }
            report.event(&Event::PhaseFinished { phase: Phase::Connect, took: started.elapsed() });
            clock.phases.push((Phase::Connect, started.elapsed()));
            let sockets = ssh.control_sockets();
            let live = Arc::new(Live::new(ssh, self.cfg.secrets.clone(), self.cfg.exports.clone()));
            let mut context = Context::new(live.clone(), report.clone(), verbose);
            context.delta = upload.delta;
            context.store = upload.store;
            context.hook_timeout = stage.hooks.timeout;
            context.hook_stop = Some(crate::remote::hooks::stop(&crate::remote::Layout::new(&stage.app.path)));
            let context = Arc::new(context);
            let (watcher, second) = watch_signals(context.cancel.clone(), report.clone(), stage.stage.clone());
            let result = tokio::select! {
                result = body(Connected { session: self, live: &live, context: &context, clock }) => result,
                _ = second => {
                    self.interrupted.set(true);
                    cut(&sockets);
                    Err(Error::Interrupted { stage: stage.stage.clone() })
                }
            };
            watcher.abort();
            drop(context);
            if let Ok(live) = Arc::try_unwrap(live) {
                live.ssh.close().await;
            }
            result
        })
    }

    /// Ends the session: the step summary, the webhooks, the final event. The result's exit
    /// code, or its error.
    pub fn finish(self, result: Result<(), Error>, release: &str, commit: Option<&str>) -> Result<i32, Error> {
        let code = result.as_ref().map_or_else(Error::code, |()| 0);
        let (done, moment) = match self.kind {
            RunKind::Deploy => ("deployed", NotifyOn::Success),
            RunKind::Rollback => ("rolled back", NotifyOn::Rollback),
        };
        // post_migrate failed after every host was switched: nothing went back.
        let switched = matches!(
            &result,
            Err(Error::Run(crate::runner::RunError::Failed { aftermath: crate::runner::Aftermath::Deployed, .. }))
        );
        let outcome = match (code, self.kind) {
            (0, _) => done,
            (1, RunKind::Deploy) if switched => {
                "failed after every host was switched (post_migrate); nothing rolled back"
            }
            (1, RunKind::Deploy) => "failed, every host back on a serving release",
            _ => "failed",
        };
        let message = result.as_ref().err().map(|err| self.cfg.redact(&err.message()));
        let summary = self.summary(release, commit, outcome, Some(code), message);
        github_summary(&summary, &self.cfg.secrets, self.report.as_ref());
        if !self.interrupted.get() {
            let moment = if code == 0 { moment } else { NotifyOn::Failure };
            self.runtime.block_on(self.announce(moment, &summary));
        }
        let clock = self.clock.borrow();
        self.report.event(&Event::Finished {
            outcome: if code == 0 { done } else { "failed" },
            exit_code: code,
            took: clock.elapsed(),
            phases: clock.phases.clone(),
            release: release.to_string(),
        });
        drop(clock);
        if self.interrupted.get() {
            // Work cut off mid-way (a tarball being packed) is not waited for.
            self.runtime.shutdown_timeout(Duration::from_millis(100));
        }
        result.map(|()| 0)
    }

    /// The run so far, for webhooks and the step summary.
    /// (The clock is read only for a finished run.)
    pub fn summary(
        &self,
        release: &str,
        commit: Option<&str>,
        outcome: &str,
        exit_code: Option<i32>,
        message: Option<String>,
    ) -> RunSummary {
        let clock = exit_code.map(|_| self.clock.borrow());
        RunSummary {
            kind: self.kind.name(),
            app: self.cfg.stage.app.name.clone(),
            stage: self.cfg.stage.stage.clone(),
            release: release.to_string(),
            commit: commit.map(String::from),
            who: format!("{}@{}", self.owner.user, self.owner.machine),
            outcome: outcome.to_string(),
            exit_code,
            took: clock.as_ref().map_or(Duration::ZERO, |clock| clock.elapsed()),
            phases: clock.as_ref().map_or_else(Vec::new, |clock| clock.phases.clone()),
            hosts: self.tally.results().into_iter().filter(|(host, _)| self.release_hosts.contains(host)).collect(),
            message,
        }
    }

    /// Tells the webhooks that want `moment` about the run; a failure is a warning.
    pub async fn announce(&self, moment: NotifyOn, summary: &RunSummary) {
        let stage = &self.cfg.stage;
        if stage.notify.is_empty() {
            return;
        }
        let http = Http::new();
        let sent = match http.client() {
            Ok(client) => crate::report::notify::send(client, &stage.notify, moment, summary, &self.cfg.secrets).await,
            Err(why) => vec![format!("notifications not sent: {why}")],
        };
        for message in sent {
            self.report.event(&Event::Warning { host: None, message });
        }
    }
}

/// Takes every lock (the lock phase), then runs `body` holding them. The run `body` starts
/// releases them as it ends; a body that stops before (a usage error: nothing was changed)
/// has them released here.
pub async fn with_lock(
    context: &Arc<Context<Live>>,
    clock: &mut Clock,
    cfg: &StageConfig,
    lock_plan: &Plan,
    lock_wait: Option<Duration>,
    body: impl AsyncFnOnce(&Runner<'_, Live>, &mut Clock) -> Result<(), Error>,
) -> Result<(), Error> {
    let mut locker = Runner::new(context.clone(), cfg, lock_plan);
    locker.lock_wait = lock_wait;
    locker.lock_phase(clock).await?;
    let lease = locker.keep_lease();
    let result = body(&locker, clock).await;
    lease.abort();
    if result.is_err() {
        // Locks left for `deploy unlock` (hosts to fix): their lease ends now, not in 30 s.
        locker.abandon_leases().await;
    }
    if matches!(result, Err(Error::Usage { .. })) {
        locker.unlock_all().await;
    }
    result
}

/// Watches Ctrl-C, SIGTERM and SIGHUP (the operator's terminal or ssh session closed): the
/// first sets `cancel` (the run stops the hook in flight, or finishes the short action in
/// flight, and undoes); the second completes the returned receiver.
fn watch_signals(
    cancel: Arc<crate::runner::Cancel>,
    report: Arc<dyn Reporter>,
    stage: String,
) -> (tokio::task::JoinHandle<()>, tokio::sync::oneshot::Receiver<()>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (second, told) = tokio::sync::oneshot::channel();
    let watcher = tokio::spawn(async move {
        let (Ok(mut interrupt), Ok(mut terminate), Ok(mut hangup)) =
            (signal(SignalKind::interrupt()), signal(SignalKind::terminate()), signal(SignalKind::hangup()))
        else {
            return;
        };
        for count in 1.. {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
                _ = hangup.recv() => {}
            }
            if count == 1 {
                cancel.set();
                report.event(&Event::Warning {
                    host: None,
                    message: "stopping: a prepare or activate hook in flight is killed on its host, other commands finish; then every switched host is put back; press Ctrl-C again to stop at once".into(),
                });
            } else {
                report.event(&Event::Warning {
                    host: None,
                    message: format!("stopped at once: hosts may be drained or switched, the journal on each host says where; run `deploy unlock {stage}`"),
                });
                let _ = second.send(());
                return;
            }
        }
    });
    (watcher, told)
}

/// Closes the ssh masters under a run stopped at once: no command of it goes on.
fn cut(sockets: &[PathBuf]) {
    for socket in sockets {
        let _ = std::process::Command::new("ssh").arg("-S").arg(socket).args(["-O", "exit", "deploy-master"]).output();
    }
}

/// Appends the run's Markdown summary to `$GITHUB_STEP_SUMMARY` when GitHub Actions set it.
fn github_summary(summary: &RunSummary, secrets: &crate::config::Secrets, report: &dyn Reporter) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|path| !path.is_empty()) else { return };
    use std::io::Write;
    let text = secrets.redact(&summary.markdown());
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(text.as_bytes()));
    if let Err(err) = written {
        report.event(&Event::Warning {
            host: None,
            message: format!("could not write the step summary to {}: {err}", PathBuf::from(path).display()),
        });
    }
}
