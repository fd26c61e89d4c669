//! Ending a run: removing old releases after a success (the cleanup action), stopping
//! before any switch (abort), and the bookkeeping every ending shares: the release log line,
//! removing the abandoned release, commands on many hosts.

use super::Runner;
use super::failure::{Aftermath, Cause, Failure, RunError};
use super::host::HostRun;
use crate::plan::{Action, PlanKind, Target, What};
use crate::remote::{Cmd, release};
use crate::report::Event;
use crate::transport::Transport;
use std::time::Instant;
use tokio::task::JoinSet;

impl<T: Transport> HostRun<'_, T> {
    /// Removes all but the newest `keep` releases; never `current` or the rollback target.
    pub(super) async fn cleanup(&self, action: &Action, keep: u32, list: &crate::remote::Cmd) -> Result<(), Failure> {
        let start = Instant::now();
        let host = self.host();
        let transport = &self.context.transport;
        let out =
            transport.run(&action.on, list, None).await.map_err(|err| Failure::transport(host, action.what, err))?;
        let ids = release::release_ids(&out.stdout);
        let release = self.progress.lock().unwrap().release.clone();
        let stale: Vec<String> = release::stale_partials(&out.stdout).into_iter().filter(|id| *id != release).collect();
        let protect: Vec<String> = {
            let progress = self.progress.lock().unwrap();
            let previous = progress.previous.get(host).cloned().flatten();
            previous.into_iter().chain(progress.protect.iter().cloned()).collect()
        };
        // The newest release is the one just deployed (`current`): `skip(keep)` keeps it.
        let old: Vec<String> =
            ids.iter().rev().skip(keep as usize).filter(|id| !protect.contains(id)).cloned().collect();
        // Releases that never arrived go too: this run holds the lock, so none is arriving.
        let removals = [
            (!old.is_empty()).then(|| release::remove(self.layout, &old)),
            (!stale.is_empty()).then(|| release::remove_partials(self.layout, &stale)),
        ];
        for remove in removals.into_iter().flatten() {
            let problem = match transport.run(&action.on, &remove, None).await {
                Ok(removed) if removed.ok() => None,
                Ok(removed) => Some(removed.tail(3)),
                Err(err) => Some(err.to_string()),
            };
            if let Some(problem) = problem {
                self.context.report.event(&Event::Warning {
                    host: Some(host.into()),
                    message: format!("could not remove old releases: {problem}"),
                });
            }
        }
        self.context.report.event(&Event::Done {
            host: host.into(),
            what: What::Cleanup,
            on: action.on.to_string(),
            took: start.elapsed(),
        });
        Ok(())
    }
}

impl<T: Transport> Runner<'_, T> {
    /// A failure before any switch: remove the half-prepared release, record, unlock, exit 1.
    pub(super) async fn abort(&self, cause: Cause) -> RunError {
        self.discard_release().await;
        self.record_outcome("failed").await;
        self.unlock_all().await;
        RunError::Failed { cause, aftermath: Aftermath::NothingSwitched }
    }

    /// Removes what the new release left on every host that gets releases: its folder, its
    /// tarball in `.deploy/incoming`, its manifest (never for a rollback, whose target is an
    /// old release). The id is new, so a host that never got that far loses nothing; a
    /// receive or an unpack that failed half-way leaves nothing behind.
    pub(super) async fn discard_release(&self) {
        if self.plan.kind != PlanKind::Deploy {
            return;
        }
        let hosts: Vec<String> =
            self.cfg.hosts.iter().filter(|host| self.cfg.changes(host)).map(|host| host.name.clone()).collect();
        self.on_hosts(hosts, release::remove(&self.layout, std::slice::from_ref(&self.plan.release))).await;
    }

    /// Writes the release log line with this outcome on every host that gets releases.
    pub(super) async fn record_outcome(&self, outcome: &str) {
        let mut line = self.plan.record.clone();
        line["outcome"] = serde_json::Value::String(outcome.to_string());
        // A run that failed never got to post_migrate.
        if let Some(fields) = line.as_object_mut() {
            fields.remove("post_migrate");
        }
        let hosts: Vec<String> =
            self.cfg.hosts.iter().filter(|host| self.cfg.changes(host)).map(|host| host.name.clone()).collect();
        self.on_hosts(hosts, release::record(&self.layout, &line.to_string())).await;
    }

    /// Runs one command on several hosts at once, best effort (for clean-up after failures).
    pub(super) async fn on_hosts(&self, hosts: Vec<String>, cmd: Cmd) {
        let mut set = JoinSet::new();
        for host in hosts {
            let (context, cmd) = (self.context.clone(), cmd.clone());
            set.spawn(async move { context.transport.run(&Target::Host(host), &cmd, None).await });
        }
        while set.join_next().await.is_some() {}
    }
}
