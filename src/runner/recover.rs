//! After a failure once hosts may be switched: every switched host back on the release it
//! had (drain → switch → activate → health → undrain), drained hosts back in service, locks
//! dropped; or, with `--no-auto-rollback`, switched hosts left where they are. What cannot be
//! restored is said host by host, with the command that fixes it.

use super::failure::{Aftermath, Cause, Failure, RunError};
use super::host::HostRun;
use super::progress::SharedProgress;
use super::{Context, Runner};
use crate::config::{Host, Role, StageConfig};
use crate::plan::{Action, HostActions, What, health_action, roll_host, undrain_actions, worker_actions};
use crate::remote::hooks::{self, HookEnv};
use crate::remote::{Layout, journal};
use crate::report::Event;
use crate::transport::Transport;
use std::collections::BTreeSet;

/// Where the hosts stood when the failure happened.
struct Standing {
    /// Switched to the new release, each once, in order.
    switched: Vec<String>,
    drained: BTreeSet<String>,
    previous: std::collections::BTreeMap<String, Option<String>>,
    /// Hosts whose connection is gone.
    lost: Vec<String>,
}

impl<T: Transport> Runner<'_, T> {
    fn standing(&self, failures: &[Failure]) -> Standing {
        let progress = self.progress.lock().unwrap();
        let mut switched: Vec<String> = Vec::new();
        for host in &progress.switched {
            if !switched.contains(host) {
                switched.push(host.clone());
            }
        }
        let lost = failures.iter().filter(|failure| failure.lost()).map(|failure| failure.host.clone()).collect();
        Standing { switched, drained: progress.drained.clone(), previous: progress.previous.clone(), lost }
    }

    fn host_config(&self, name: &str) -> Option<&Host> {
        self.cfg.hosts.iter().find(|host| host.name == name)
    }

    /// Runs actions on one host to put it back; not interruptible.
    async fn put_back(&self, name: &str, actions: Vec<Action>) -> Result<(), Failure> {
        let actions = HostActions { host: name.to_string(), actions };
        HostRun::undoing(&self.context, &actions, &self.progress, &self.layout).await
    }

    fn host_state(&self, host: &str, release: Option<String>, in_service: bool, note: impl Into<String>) {
        self.report(Event::HostState { host: host.to_string(), release, in_service, note: note.into() });
    }

    /// Every switched host back on the release it had, newest first, one at a time: never
    /// more than one batch out of service.
    pub(super) async fn roll_back(&self, failures: Vec<Failure>) -> RunError {
        let standing = self.standing(&failures);
        let release = &self.plan.release;
        let mut problems: Vec<String> = Vec::new();
        for name in standing.switched.iter().rev() {
            let Some(host) = self.host_config(name) else { continue };
            let was_drained = standing.drained.contains(name);
            if standing.lost.contains(name) {
                let state = if was_drained { "drained (not serving)" } else { "in service" };
                self.host_state(
                    name,
                    None,
                    !was_drained,
                    format!("connection lost; it may be on {release} and is {state}"),
                );
                problems.push(format!("{name}: connection lost; `current` may point to {release}; {state}"));
                continue;
            }
            let Some(previous) = standing.previous.get(name).cloned().flatten() else {
                problems.push(format!("{name}: first release on this host, nothing to go back to; left on {release}"));
                self.host_state(name, Some(release.clone()), !was_drained, "no previous release to go back to");
                continue;
            };
            let env = HookEnv {
                stage: &self.cfg.stage,
                release: &previous,
                path: &self.cfg.app.path,
                timeout: self.cfg.hooks.timeout,
            };
            // A worker host takes no traffic: it goes back without the balancer.
            let actions = if host.has(Role::App) {
                roll_host(self.cfg, &self.layout, &previous, host, &[name.as_str()], &env)
            } else {
                worker_actions(self.cfg, &self.layout, &previous, host, &env)
            };
            match self.put_back(name, actions).await {
                Ok(()) => {
                    self.progress.lock().unwrap().drained.remove(name);
                    self.host_state(name, Some(previous), true, "rolled back");
                }
                Err(failure) => {
                    self.failed(&failure);
                    let drained_now = self.progress.lock().unwrap().drained.contains(name);
                    problems.push(format!(
                        "{name}: rolling back to {previous} failed at {} ({}); {}",
                        failure.what.label(),
                        failure.message,
                        if drained_now { "drained (not serving)" } else { "in service" }
                    ));
                    self.host_state(name, None, !drained_now, format!("rollback failed at {}", failure.what.label()));
                }
            }
        }
        self.undrain_unswitched(&standing, &mut problems).await;

        if !problems.is_empty() {
            self.record_outcome("failed").await;
            // Locks stay where the state is unsafe, so nobody deploys over it unknowingly.
            let stage = &self.cfg.stage;
            let fix = format!(
                "when the hosts are reachable: deploy unlock {stage} (checks the journals, restores service, drops the lock), then deploy rollback {stage} or deploy {stage}"
            );
            return RunError::Failed {
                cause: Cause::Actions(failures),
                aftermath: Aftermath::NotRestored { problems, fix },
            };
        }
        // A host that failed before its drain took effect still has its journal entry.
        let reachable: Vec<String> =
            failures.iter().filter(|failure| !failure.lost()).map(|failure| failure.host.clone()).collect();
        self.on_hosts(reachable, journal::clear(&self.layout)).await;
        self.discard_release().await;
        self.record_outcome(if standing.switched.is_empty() { "failed" } else { "rolled back" }).await;
        self.unlock_all().await;
        RunError::Failed { cause: Cause::Actions(failures), aftermath: Aftermath::RolledBack }
    }

    /// Drained but never switched: still on the old release; put it back in service.
    async fn undrain_unswitched(&self, standing: &Standing, problems: &mut Vec<String>) {
        for name in &standing.drained {
            if standing.switched.contains(name) {
                continue;
            }
            let Some(host) = self.host_config(name) else { continue };
            let previous = standing.previous.get(name).cloned().flatten().unwrap_or_default();
            if standing.lost.contains(name) {
                problems.push(format!("{name}: connection lost while drained; left out of service"));
                self.host_state(name, Some(previous), false, "connection lost");
                continue;
            }
            match self.put_back(name, undrain_actions(self.cfg, &self.layout, &previous, host)).await {
                Ok(()) => self.host_state(name, Some(previous), true, "never switched"),
                Err(failure) => {
                    self.failed(&failure);
                    problems.push(format!("{name}: still drained: {}", failure.message));
                    self.host_state(name, Some(previous), false, "could not undrain");
                }
            }
        }
    }

    /// `--no-auto-rollback`: switched hosts stay on the new release; every drained host goes
    /// back in service as it is, even one that failed its checks; say so host by host.
    pub(super) async fn leave_switched(&self, failures: Vec<Failure>) -> RunError {
        let standing = self.standing(&failures);
        let release = &self.plan.release;
        let mut problems = Vec::new();
        for name in &standing.drained {
            let Some(host) = self.host_config(name) else { continue };
            let on = if standing.switched.contains(name) { release.clone() } else { "its previous release".into() };
            if standing.lost.contains(name) {
                problems.push(format!("{name}: connection lost while drained; left out of service"));
                continue;
            }
            let actions = undrain_actions(self.cfg, &self.layout, release, host)
                .into_iter()
                .filter(|action| action.what != What::WaitProbe && action.what != What::WaitHealthy)
                .collect();
            match self.put_back(name, actions).await {
                Ok(()) => self.host_state(name, Some(on), true, "left as it is (--no-auto-rollback)"),
                Err(failure) => problems.push(format!("{name}: could not undrain: {}", failure.message)),
            }
        }
        for name in &standing.switched {
            if !standing.drained.contains(name) {
                self.host_state(name, Some(release.clone()), true, "left on the new release (--no-auto-rollback)");
            }
        }
        self.record_outcome("failed").await;
        if problems.is_empty() {
            self.unlock_all().await;
            let aftermath = Aftermath::LeftSwitched { switched: standing.switched, release: release.clone() };
            RunError::Failed { cause: Cause::Actions(failures), aftermath }
        } else {
            let fix = format!("deploy unlock {}", self.cfg.stage);
            RunError::Failed { cause: Cause::Actions(failures), aftermath: Aftermath::NotRestored { problems, fix } }
        }
    }
}

/// `deploy unlock`: a host an interrupted run left drained goes back in service on the
/// release it is on, once its health check passes.
pub async fn restore<T: Transport>(
    context: &Context<T>,
    cfg: &StageConfig,
    layout: &Layout,
    host: &Host,
    release: &str,
    activate: bool,
) -> Result<(), Failure> {
    let mut actions: Vec<Action> = Vec::new();
    if activate {
        let env = HookEnv { stage: &cfg.stage, release, path: &cfg.app.path, timeout: cfg.hooks.timeout };
        // A worker-only host's activate hooks are its own (`[hooks.worker]`).
        let hooks = if host.has(crate::config::Role::App) { &cfg.hooks.activate } else { &cfg.hooks.worker.activate };
        for hook in hooks {
            let cmd = hooks::run(&layout.release(release), hook, &env);
            actions.push(Action::on_host(What::Activate, &host.name, cmd));
        }
    }
    if host.has(crate::config::Role::App) {
        actions.extend(health_action(cfg, host));
        actions.extend(undrain_actions(cfg, layout, release, host));
    } else {
        // A worker takes no traffic: nothing to check or put back in a balancer.
        actions.push(Action::on_host(What::Journal, &host.name, crate::remote::journal::clear(layout)));
    }
    let actions = HostActions { host: host.name.clone(), actions };
    HostRun::undoing(context, &actions, &SharedProgress::default(), layout).await
}
