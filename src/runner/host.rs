//! One host's actions in a step, in order: what `deploy plan` lists for the host is what
//! [`HostRun::run`] walks, keeping the run's [`Progress`] up to date.

use super::Context;
use super::failure::Failure;
use super::progress::SharedProgress;
use crate::artifact::Artifact;
use crate::plan::{Action, HostActions, Run, What};
use crate::remote::Layout;
use crate::report::Event;
use crate::transport::Transport;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// One host's procedure in one step.
pub(super) struct HostRun<'r, T: Transport> {
    pub context: &'r Context<T>,
    pub actions: &'r HostActions,
    pub artifact: Option<&'r Artifact>,
    pub progress: &'r SharedProgress,
    pub layout: &'r Layout,
    /// Stop before the next action once the run is cancelled (undoing is not interruptible).
    pub interruptible: bool,
    /// Go on after a failed action (a step whose failures are only warnings).
    pub keep_going: bool,
}

/// The tarball a host received in this step, and whether it was a delta (whose hard links
/// the unpack checks, falling back to the whole release).
pub(super) struct Received<'a> {
    pub action: &'a Action,
    pub delta: bool,
}

impl<'r, T: Transport> HostRun<'r, T> {
    /// Puts a host back (after a failure, or for `deploy unlock`): not interruptible, and the
    /// first failure ends it.
    pub async fn undoing(
        context: &'r Context<T>,
        actions: &'r HostActions,
        progress: &'r SharedProgress,
        layout: &'r Layout,
    ) -> Result<(), Failure> {
        let run =
            HostRun { context, actions, artifact: None, progress, layout, interruptible: false, keep_going: false };
        run.run().await.into_iter().next().map_or(Ok(()), Err)
    }

    pub(super) fn host(&self) -> &str {
        &self.actions.host
    }

    /// Runs the actions in order; returns what failed (nothing: the host is done).
    pub async fn run(&self) -> Vec<Failure> {
        let mut failures = Vec::new();
        let mut received: Option<Received> = None;
        let mut actions = self.actions.actions.iter();
        while let Some(action) = actions.next() {
            if self.interruptible && self.context.cancelled() {
                failures.push(Failure::interrupted(self.host(), action.what, "this step"));
                break;
            }
            let result = match action.with_next {
                true => match actions.next() {
                    Some(next) => self.side_by_side(action, next).await,
                    None => self.one(action, &mut received).await,
                },
                false => self.one(action, &mut received).await,
            };
            if let Err(failure) = result {
                failures.push(failure);
                if !self.keep_going {
                    break;
                }
            }
        }
        failures
    }

    /// Two actions at once; both run to their end, the first failure is reported.
    async fn side_by_side(&self, first: &Action, second: &Action) -> Result<(), Failure> {
        let (one, other) = tokio::join!(self.plain(first), self.plain(second));
        one.and(other)
    }

    async fn one<'a>(&self, action: &'a Action, received: &mut Option<Received<'a>>) -> Result<(), Failure> {
        match (&action.run, action.what) {
            (Run::Cleanup { keep, list }, _) => self.cleanup(action, *keep, list).await,
            (Run::Ssh { .. }, _) => Ok(()),
            (Run::Shell { stdin: Some(_), .. }, What::Receive) => {
                *received = Some(self.receive(action).await?);
                Ok(())
            }
            (_, What::Unpack) if received.as_ref().is_some_and(|got| got.delta) => {
                let got = received.as_ref().expect("received");
                self.unpack_warm(action, got.action).await
            }
            (_, What::ReadCurrent) => self.read_current(action).await,
            _ => self.plain(action).await,
        }
    }

    /// Where `current` points, taken from what was read while the build ran if it was.
    async fn read_current(&self, action: &Action) -> Result<(), Failure> {
        let start = Instant::now();
        let prefetched = self.progress.lock().unwrap().prefetched.get(self.host()).map(|read| read.0.clone());
        let previous = match prefetched {
            Some(previous) => previous,
            None => self.context.read_current(self.host(), action).await?,
        };
        self.progress.lock().unwrap().previous.insert(self.host().to_string(), previous);
        self.context.report.event(&Event::Done {
            host: self.host().to_string(),
            what: action.what,
            on: action.on.to_string(),
            took: start.elapsed(),
        });
        Ok(())
    }

    /// Runs an action that needs nothing but its command, keeping the progress up to date.
    pub(super) async fn plain(&self, action: &Action) -> Result<(), Failure> {
        let host = self.host().to_string();
        if action.what == What::Switch {
            // Recorded before the command: a lost connection may still have switched.
            self.progress.lock().unwrap().switched.push(host.clone());
        }
        if action.what == What::Drain {
            // Counted as drained before the command: a lost connection may have drained it.
            self.progress.lock().unwrap().drained.insert(host.clone());
        }
        if let Err(failure) = self.context.exec_as(&host, action, None, self.interruptible).await {
            if action.what == What::Drain && failure.completed() {
                // The balancer refused: the host was not drained.
                self.progress.lock().unwrap().drained.remove(&host);
            }
            return Err(failure);
        }
        let mut progress = self.progress.lock().unwrap();
        match action.what {
            What::Lock => progress.locked.push(host),
            What::WaitHealthy => {
                progress.drained.remove(&host);
            }
            What::Undrain if !self.actions.actions.iter().any(|other| other.what == What::WaitHealthy) => {
                progress.drained.remove(&host);
            }
            What::Unlock => progress.locked.retain(|locked| locked != &host),
            _ => {}
        }
        Ok(())
    }
}

/// How the hosts of one batch run.
#[derive(Clone, Copy)]
pub(super) struct BatchRun {
    /// At most this many hosts at once.
    pub parallel: usize,
    pub interruptible: bool,
    pub keep_going: bool,
}

/// Runs the hosts of a batch side by side and waits for all of them (a failure does not cut
/// the others short mid-command).
pub(super) async fn run_batch<T: Transport>(
    context: &Arc<Context<T>>,
    hosts: &[HostActions],
    how: BatchRun,
    artifact: Option<&Artifact>,
    progress: &SharedProgress,
    layout: &Layout,
) -> Vec<Failure> {
    let slots = Arc::new(Semaphore::new(how.parallel.max(1)));
    let mut set = JoinSet::new();
    for host in hosts {
        let (context, actions, artifact, progress, layout, slots) =
            (context.clone(), host.clone(), artifact.cloned(), progress.clone(), layout.clone(), slots.clone());
        set.spawn(async move {
            let _slot = slots.acquire_owned().await.expect("semaphore");
            let run = HostRun {
                context: &context,
                actions: &actions,
                artifact: artifact.as_ref(),
                progress: &progress,
                layout: &layout,
                interruptible: how.interruptible,
                keep_going: how.keep_going,
            };
            run.run().await
        });
    }
    let mut failures = Vec::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(found) => failures.extend(found),
            Err(err) => failures.push(Failure::new(
                "?",
                What::Connect,
                super::failure::FailureKind::NotStarted,
                format!("task failed: {err}"),
            )),
        }
    }
    failures
}
