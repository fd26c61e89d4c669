//! The lock step: the first host's lock, then the others'. A lock another deploy holds is
//! told from any other failure by asking the host (`remote::lock::held`), never by reading
//! mkdir's words; its holder is named, the locks taken are released, and the run exits 3
//! (or waits, with `--lock-wait`).

use super::Runner;
use super::failure::{Aftermath, Cause, Failure, FailureKind, Holder, RunError};
use super::host::{BatchRun, run_batch};
use crate::config::format_duration;
use crate::plan::{Step, Target, What};
use crate::remote::lock;
use crate::report::Event;
use crate::transport::Transport;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Times a lock is tried again at once when its folder could not be made but is not there
/// either: its holder let go in between.
const LET_GO_RETRIES: usize = 2;

enum Released {
    Yes,
    NotOurs,
    No,
}

impl<T: Transport> Runner<'_, T> {
    pub(super) async fn lock(&self, step: &Step) -> Result<(), RunError> {
        let deadline = self.lock_wait.map(|wait| Instant::now() + wait);
        let mut said = false;
        let mut retries = 0;
        loop {
            match self.lock_once(step).await {
                Err(RunError::Locked { holders })
                    if deadline.is_some_and(|deadline| Instant::now() < deadline) && !self.context.cancelled() =>
                {
                    let holder = &holders[0];
                    let owner = lock::describe_owner(&holder.owner);
                    if !said {
                        // Said once, plainly: a queued CI job should show why it is not moving.
                        let wait = format_duration(self.lock_wait.unwrap_or_default());
                        self.report(Event::Warning {
                            host: Some(holder.host.clone()),
                            message: format!("locked by {owner}; waiting up to {wait} (--lock-wait)"),
                        });
                        said = true;
                    }
                    let detail = format!("held by {owner}");
                    self.report(Event::Waiting { host: holder.host.clone(), what: What::Lock, detail });
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(RunError::Failed { cause: Cause::Actions(failures), .. })
                    if retries < LET_GO_RETRIES
                        && failures.iter().all(|failure| matches!(failure.kind, FailureKind::Exited { .. })) =>
                {
                    retries += 1;
                }
                Err(RunError::Failed { cause, aftermath }) => {
                    for failure in cause.failures() {
                        self.failed(failure);
                    }
                    return Err(RunError::Failed { cause, aftermath });
                }
                done => return done,
            }
        }
    }

    /// One try: every lock, or none (the ones taken are released again).
    async fn lock_once(&self, step: &Step) -> Result<(), RunError> {
        let how = BatchRun { parallel: step.parallel, interruptible: true, keep_going: false };
        let mut failures = Vec::new();
        for batch in &step.batches {
            failures = run_batch(&self.context, &batch.hosts, how, None, &self.progress, &self.layout).await;
            if !failures.is_empty() {
                break;
            }
        }
        if failures.is_empty() {
            return Ok(());
        }
        let mut holders = Vec::new();
        let mut others: Vec<Failure> = Vec::new();
        for mut failure in failures {
            if matches!(failure.kind, FailureKind::Exited { .. }) && self.held(&failure.host).await {
                failure.kind = FailureKind::LockHeld;
                holders.push(Holder { owner: self.owner(&failure.host).await, host: failure.host });
            } else {
                others.push(failure);
            }
        }
        self.unlock_all().await;
        if !holders.is_empty() {
            return Err(RunError::Locked { holders });
        }
        Err(RunError::Failed { cause: Cause::Actions(others), aftermath: Aftermath::LocksReleased })
    }

    /// Is the host's lock held (after our `mkdir` of it failed)?
    async fn held(&self, host: &str) -> bool {
        let asked = self.context.transport.run(&Target::host(host), &lock::held(&self.layout), None).await;
        asked.is_ok_and(|out| lock::is_held(out.status))
    }

    /// The holder's owner.json. The holder writes it right after making the lock, in the same
    /// command: a lock met in between has no owner file yet, so look again a few times.
    async fn owner(&self, host: &str) -> String {
        let mut text = String::new();
        for _ in 0..5 {
            let read = self.context.transport.run(&Target::host(host), &lock::owner(&self.layout), None).await;
            text = read.map(|out| out.stdout.trim().to_string()).unwrap_or_default();
            if !text.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        text
    }

    /// Releases every lock this run holds.
    pub async fn unlock_all(&self) {
        // Waits for a lease refresh in flight, and stops the next ones.
        *self.context.leases_done.lock().await = true;
        let locked = std::mem::take(&mut self.progress.lock().unwrap().locked);
        let mut set = JoinSet::new();
        for host in locked {
            let (context, cmd) = (self.context.clone(), lock::release_own(&self.layout, &self.plan.token));
            set.spawn(async move {
                let released = match context.transport.run(&Target::host(&host), &cmd, None).await {
                    Ok(out) if out.ok() => Released::Yes,
                    Ok(out) if out.status == Some(lock::NOT_OURS) => Released::NotOurs,
                    _ => Released::No,
                };
                (host, released)
            });
        }
        while let Some(Ok((host, released))) = set.join_next().await {
            let message = match released {
                Released::Yes => continue,
                Released::NotOurs => {
                    "the lock is not this deploy's any more (deploy unlock --force?): left as it is".into()
                }
                Released::No => format!("could not remove the lock: run `deploy unlock {}`", self.cfg.stage),
            };
            self.report(Event::Warning { host: Some(host), message });
        }
    }
}

impl<T: Transport> Runner<'_, T> {
    /// Gives up the lease of every lock this run holds (see `lock::abandon`): asked of every
    /// host of the lock step, since a host keeps another deploy's lock untouched.
    pub async fn abandon_leases(&self) {
        let lock_step = self.plan.steps.iter().filter(|step| step.phase == crate::plan::Phase::Lock);
        let hosts: Vec<String> = lock_step
            .flat_map(|step| &step.batches)
            .flat_map(|batch| &batch.hosts)
            .map(|host| host.host.clone())
            .collect();
        let mut set = JoinSet::new();
        for host in hosts {
            let (context, cmd) = (self.context.clone(), lock::abandon(&self.layout, &self.plan.token));
            set.spawn(async move { context.transport.run(&Target::host(&host), &cmd, None).await });
        }
        while set.join_next().await.is_some() {}
    }

    /// Keeps the lease of every lock this run took fresh until the returned task is aborted
    /// (after the run): `deploy unlock` from any machine sees a live holder. A lock found with
    /// another token (removed by `deploy unlock --force` and taken again) is said once.
    pub fn keep_lease(&self) -> tokio::task::JoinHandle<()> {
        let hosts = self.progress.lock().unwrap().locked.clone();
        let (context, cmd) = (self.context.clone(), lock::refresh(&self.layout, &self.plan.token));
        tokio::spawn(async move {
            let mut said: Vec<String> = Vec::new();
            loop {
                tokio::time::sleep(lock::LEASE_REFRESH).await;
                let done = context.leases_done.lock().await;
                if *done {
                    return;
                }
                let mut set = JoinSet::new();
                for host in hosts.iter().filter(|host| !said.contains(host)).cloned() {
                    let (context, cmd) = (context.clone(), cmd.clone());
                    set.spawn(async move {
                        // Bounded: a release waits for the round in flight.
                        let on = Target::host(&host);
                        let out =
                            tokio::time::timeout(lock::LEASE_REFRESH * 2, context.transport.run(&on, &cmd, None)).await;
                        (host, out.is_ok_and(|out| out.is_ok_and(|out| out.status == Some(lock::NOT_OURS))))
                    });
                }
                while let Some(Ok((host, taken))) = set.join_next().await {
                    if taken {
                        context.report.event(&Event::Warning {
                            host: Some(host.clone()),
                            message: "the lock is not this deploy's any more: someone ran `deploy unlock --force`"
                                .into(),
                        });
                        said.push(host);
                    }
                }
            }
        })
    }
}
