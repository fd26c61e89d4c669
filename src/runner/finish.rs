//! Ending a run that stops before any switch (abort), and the bookkeeping every ending
//! shares: the release log line, removing the abandoned release, commands on many hosts.

use super::Runner;
use super::failure::{Aftermath, Cause, RunError};
use crate::plan::{PlanKind, Target};
use crate::remote::{Cmd, release};
use crate::transport::Transport;
use tokio::task::JoinSet;

impl<T: Transport> Runner<'_, T> {
    /// A failure before any switch: remove the half-prepared release, record, unlock, exit 1.
    pub(super) async fn abort(&self, cause: Cause) -> RunError {
        self.discard_release().await;
        self.record_outcome("failed").await;
        self.unlock_all().await;
        RunError::Failed { cause, aftermath: Aftermath::NothingSwitched }
    }

    /// Removes the new release folder where it was unpacked (never for a rollback, whose
    /// target is an old release). Only once no host is on it.
    pub(super) async fn discard_release(&self) {
        if self.plan.kind != PlanKind::Deploy {
            return;
        }
        let unpacked: Vec<String> = self.progress.lock().unwrap().unpacked.iter().cloned().collect();
        self.on_hosts(unpacked, release::remove(&self.layout, std::slice::from_ref(&self.plan.release))).await;
    }

    /// Writes the release log line with this outcome on every host that gets releases.
    pub(super) async fn record_outcome(&self, outcome: &str) {
        let mut line = self.plan.record.clone();
        line["outcome"] = serde_json::Value::String(outcome.to_string());
        let hosts: Vec<String> =
            self.cfg.hosts.iter().filter(|host| host.gets_release()).map(|host| host.name.clone()).collect();
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
