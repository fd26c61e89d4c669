//! After a failure in the roll: every switched host back on the release it had (drain →
//! switch → activate → health → undrain), drained hosts back in service, locks dropped.
//! What cannot be restored is said host by host, with the command that fixes it.

use super::{Deploy, Failure};
use crate::error::Error;
use crate::plan::{HostActions, roll_host, undrain_actions, worker_actions};
use crate::remote::hooks::HookEnv;
use crate::report::Event;
use crate::transport::Transport;

impl<T: Transport> Deploy<'_, T> {
    /// `--no-auto-rollback`: switched hosts stay on the new release; every drained host goes
    /// back in service as it is, even one that failed its checks; say so host by host.
    async fn leave_as_is(
        &self,
        failures: &[Failure],
        switched: &[String],
        drained: &std::collections::BTreeSet<String>,
        lost: &[&str],
    ) -> Error {
        let mut problems = Vec::new();
        for name in drained {
            let Some(host) = self.cfg.hosts.iter().find(|h| &h.name == name) else { continue };
            let on = if switched.contains(name) { self.plan.release.clone() } else { "its previous release".into() };
            if lost.contains(&name.as_str()) {
                problems.push(format!("{name}: connection lost while drained; left out of service"));
                continue;
            }
            let actions = HostActions {
                host: name.clone(),
                actions: undrain_actions(self.cfg, &self.layout, &self.plan.release, host)
                    .into_iter()
                    .filter(|a| a.what != crate::plan::What::WaitProbe && a.what != crate::plan::What::WaitHealthy)
                    .collect(),
            };
            match self.ctx.host(&actions, None, &self.state, &self.layout, false).await {
                Ok(()) => self.report(Event::HostState {
                    host: name.clone(),
                    release: Some(on),
                    in_service: true,
                    note: "left as it is (--no-auto-rollback)".into(),
                }),
                Err(f) => problems.push(format!("{name}: could not undrain: {}", f.message)),
            }
        }
        for name in switched {
            if !drained.contains(name) {
                self.report(Event::HostState {
                    host: name.clone(),
                    release: Some(self.plan.release.clone()),
                    in_service: true,
                    note: "left on the new release (--no-auto-rollback)".into(),
                });
            }
        }
        let what = failures
            .iter()
            .map(|f| format!("{} on {}: {}", f.what.label(), f.host, f.message))
            .collect::<Vec<_>>()
            .join("; ");
        self.record_outcome("failed").await;
        if problems.is_empty() {
            self.unlock_all().await;
            Error::Deploy {
                message: format!(
                    "{what}; --no-auto-rollback: {} switched to {} and left there, every host in service",
                    if switched.is_empty() { "no host was".to_string() } else { switched.join(", ") + " were" },
                    self.plan.release
                ),
            }
        } else {
            Error::Unsafe { message: problems.join("\n"), fix: format!("deploy unlock {}", self.cfg.stage) }
        }
    }

    pub(super) async fn recover(&self, failures: Vec<Failure>) -> Error {
        for f in &failures {
            self.failed(f);
        }
        let (switched, drained, previous) = {
            let s = self.state.lock().unwrap();
            (s.switched.clone(), s.drained.clone(), s.previous.clone())
        };
        let mut switched_once: Vec<String> = Vec::new();
        for h in switched {
            if !switched_once.contains(&h) {
                switched_once.push(h);
            }
        }
        let lost: Vec<&str> = failures.iter().filter(|f| f.lost).map(|f| f.host.as_str()).collect();
        let mut problems: Vec<String> = Vec::new();
        if !self.auto_rollback {
            return self.leave_as_is(&failures, &switched_once, &drained, &lost).await;
        }

        // Newest first, one host at a time: never more than one batch out of service.
        for name in switched_once.iter().rev() {
            let Some(host) = self.cfg.hosts.iter().find(|h| &h.name == name) else { continue };
            let prev = previous.get(name).cloned().flatten();
            if lost.contains(&name.as_str()) {
                let state = if drained.contains(name) { "drained (not serving)" } else { "in service" };
                self.report(Event::HostState {
                    host: name.clone(),
                    release: None,
                    in_service: !drained.contains(name),
                    note: format!("connection lost; it may be on {} and is {state}", self.plan.release),
                });
                problems
                    .push(format!("{name}: connection lost; `current` may point to {}; {state}", self.plan.release));
                continue;
            }
            let Some(prev) = prev else {
                problems.push(format!(
                    "{name}: first release on this host, nothing to go back to; left on {}",
                    self.plan.release
                ));
                self.report(Event::HostState {
                    host: name.clone(),
                    release: Some(self.plan.release.clone()),
                    in_service: !drained.contains(name),
                    note: "no previous release to go back to".into(),
                });
                continue;
            };
            let env = HookEnv { stage: &self.cfg.stage, release: &prev, path: &self.cfg.app.path };
            // A worker host takes no traffic: it goes back without the balancer.
            let actions = if host.has(crate::config::Role::App) {
                roll_host(self.cfg, &self.layout, &prev, host, &[name.as_str()], &env)
            } else {
                worker_actions(self.cfg, &self.layout, &prev, host, &env)
            };
            let actions = HostActions { host: name.clone(), actions };
            match self.ctx.host(&actions, None, &self.state, &self.layout, false).await {
                Ok(()) => {
                    self.state.lock().unwrap().drained.remove(name);
                    self.report(Event::HostState {
                        host: name.clone(),
                        release: Some(prev),
                        in_service: true,
                        note: "rolled back".into(),
                    })
                }
                Err(f) => {
                    self.failed(&f);
                    let drained_now = self.state.lock().unwrap().drained.contains(name);
                    problems.push(format!(
                        "{name}: rolling back to {prev} failed at {} ({}); {}",
                        f.what.label(),
                        f.message,
                        if drained_now { "drained (not serving)" } else { "in service" }
                    ));
                    self.report(Event::HostState {
                        host: name.clone(),
                        release: None,
                        in_service: !drained_now,
                        note: format!("rollback failed at {}", f.what.label()),
                    });
                }
            }
        }

        // Drained but never switched: still on the old release; put it back.
        for name in &drained {
            if switched_once.contains(name) {
                continue;
            }
            let Some(host) = self.cfg.hosts.iter().find(|h| &h.name == name) else { continue };
            let prev = previous.get(name).cloned().flatten().unwrap_or_default();
            if lost.contains(&name.as_str()) {
                problems.push(format!("{name}: connection lost while drained; left out of service"));
                self.report(Event::HostState {
                    host: name.clone(),
                    release: Some(prev),
                    in_service: false,
                    note: "connection lost".into(),
                });
                continue;
            }
            let actions =
                HostActions { host: name.clone(), actions: undrain_actions(self.cfg, &self.layout, &prev, host) };
            match self.ctx.host(&actions, None, &self.state, &self.layout, false).await {
                Ok(()) => self.report(Event::HostState {
                    host: name.clone(),
                    release: Some(prev),
                    in_service: true,
                    note: "never switched".into(),
                }),
                Err(f) => {
                    self.failed(&f);
                    problems.push(format!("{name}: still drained: {}", f.message));
                    self.report(Event::HostState {
                        host: name.clone(),
                        release: Some(prev),
                        in_service: false,
                        note: "could not undrain".into(),
                    });
                }
            }
        }

        if problems.is_empty() {
            // A host that failed before its drain took effect still has its journal entry.
            let reachable: Vec<String> = failures.iter().filter(|f| !f.lost).map(|f| f.host.clone()).collect();
            self.on_hosts(reachable, crate::remote::journal::clear(&self.layout)).await;
            self.discard_release().await;
            self.record_outcome(if switched_once.is_empty() { "failed" } else { "rolled back" }).await;
            self.unlock_all().await;
            let what = failures
                .iter()
                .map(|f| format!("{} on {}: {}", f.what.label(), f.host, f.message))
                .collect::<Vec<_>>()
                .join("; ");
            Error::Deploy {
                message: format!("{what}; every switched host was rolled back and every host is in service"),
            }
        } else {
            self.record_outcome("failed").await;
            // Locks stay where the state is unsafe, so nobody deploys over it unknowingly.
            let stage = &self.cfg.stage;
            Error::Unsafe {
                message: problems.join("\n"),
                fix: format!(
                    "when the hosts are reachable: deploy unlock {stage} (checks the journals, restores service, drops the lock), then deploy rollback {stage} or deploy {stage}"
                ),
            }
        }
    }
}

/// `deploy unlock`: a host an interrupted run left drained goes back in service on the
/// release it is on, once its health check passes.
pub async fn restore<T: Transport>(
    ctx: &std::sync::Arc<super::Ctx<T>>,
    cfg: &crate::config::StageConfig,
    layout: &crate::remote::Layout,
    host: &crate::config::Host,
    release: &str,
    activate: bool,
) -> Result<(), Failure> {
    let mut actions: Vec<crate::plan::Action> = Vec::new();
    if activate {
        let env = HookEnv { stage: &cfg.stage, release, path: &cfg.app.path };
        for hook in &cfg.hooks.activate {
            let cmd = crate::remote::hooks::run(&layout.release(release), hook, &env);
            actions.push(crate::plan::Action::on_host(crate::plan::What::Activate, &host.name, cmd));
        }
    }
    actions.extend(crate::plan::health_action(cfg, host));
    actions.extend(undrain_actions(cfg, layout, release, host));
    let h = HostActions { host: host.name.clone(), actions };
    let state = super::Shared::default();
    ctx.host(&h, None, &state, layout, false).await
}
