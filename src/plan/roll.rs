//! The roll: per app host, drain → wait idle → switch → activate → health → wait for the
//! balancer's check → undrain → wait until it takes traffic, with journal entries before each
//! state change; worker hosts switch without the balancer. The runner builds the same actions
//! to put a host back after a failure.

use super::*;
use crate::balancer::Op;
use crate::config::{BatchSize, HealthFrom, Host, Role, StageConfig};
use crate::remote::hooks::HookEnv;
use crate::remote::{Layout, hooks, journal, release};

/// The app hosts a run rolls, in config order: those it changes that are not already on
/// the release (`settled`).
pub(super) fn rolled_apps<'c>(cfg: &'c StageConfig, settled: &[String]) -> Vec<&'c Host> {
    cfg.hosts.iter().filter(|host| host.has(Role::App) && cfg.changes(host) && !settled.contains(&host.name)).collect()
}

/// A roll step over `apps` (the canary hosts, or the others), batch by batch, and the batch
/// size used.
pub(super) fn roll_step(
    cfg: &StageConfig,
    layout: &Layout,
    batch: BatchSize,
    env: &HookEnv,
    on_failure: OnFailure,
    apps: &[&Host],
    phase: Phase,
) -> (Step, usize) {
    let id = env.release;
    let size = batch.size(apps.len());
    let batches: Vec<Batch> = apps
        .chunks(size)
        .map(|chunk| {
            let names: Vec<&str> = chunk.iter().map(|host| host.name.as_str()).collect();
            Batch {
                hosts: chunk
                    .iter()
                    .map(|host| HostActions {
                        host: host.name.clone(),
                        actions: roll_host(cfg, layout, id, host, &names, env),
                    })
                    .collect(),
            }
        })
        .collect();
    let keeping = match cfg.rolling.min_in_service {
        0 => "no host has to stay in service".to_string(),
        min => format!("keeping at least {min} in service"),
    };
    let all = cfg.hosts.iter().filter(|host| host.has(Role::App)).count();
    let count = format!(
        "{}{} app host{}",
        apps.len(),
        if apps.len() < all { format!(" of {all}") } else { String::new() },
        if all == 1 { "" } else { "s" },
    );
    let title = match phase {
        Phase::Canary => {
            let names: Vec<&str> = apps.iter().map(|host| host.name.as_str()).collect();
            format!("roll {} first ({count}), {size} at a time, {keeping}", names.join(", "))
        }
        _ => format!("roll {count} {size} at a time (batch {batch}), {keeping}"),
    };
    (Step { phase, title, parallel: size, on_failure, batches }, size)
}

/// The backends of the app hosts not named in `hosts`: those that stay in service while
/// `hosts` are taken out (a batch, the canary hosts).
pub(super) fn other_app_backends(cfg: &StageConfig, hosts: &[&str]) -> Vec<String> {
    cfg.hosts
        .iter()
        .filter(|other| other.has(Role::App) && !hosts.contains(&other.name.as_str()))
        .map(|other| cfg.balancer.backend_of(&other.name).to_string())
        .collect()
}

/// A balancer command as an action; a `silent` one fails on any output.
fn balancer_action(op: Op, what: What) -> Action {
    let silent = op.silent;
    let action = Action::shell(what, op.on, op.cmd);
    if silent { action.until(Until::Silent) } else { action }
}

/// How long the balancer's own check may take to see a host healthy: the health check's
/// whole budget.
fn health_budget(cfg: &StageConfig) -> Duration {
    let health = &cfg.health;
    health.interval * health.retries + health.timeout
}

/// One app host's roll to release `id`. `batch` names the hosts taken out together with it:
/// the capacity check before the drain counts only the others.
pub fn roll_host(
    cfg: &StageConfig,
    layout: &Layout,
    id: &str,
    host: &Host,
    batch: &[&str],
    env: &HookEnv,
) -> Vec<Action> {
    let balancer = &cfg.balancer;
    let entry = |state| journal::Entry { stage: &cfg.stage, host: &host.name, release: id, state };
    let mut actions = Vec::new();
    let min = cfg.rolling.min_in_service;
    if min > 0
        && let Some((op, read)) = crate::balancer::capacity(balancer)
    {
        let others = other_app_backends(cfg, batch);
        actions.push(balancer_action(op, What::Capacity).until(Until::Capacity {
            read,
            own: balancer.backend_of(&host.name).to_string(),
            others,
            min,
            timeout: health_budget(cfg),
        }));
    }
    if let Some(op) = crate::balancer::drain(balancer, &host.name) {
        // The capacity check on the balancer and the journal on the host, at the same time.
        if let Some(capacity) = actions.last_mut().filter(|action| action.what == What::Capacity) {
            capacity.with_next = true;
        }
        let draining = journal::write(layout, &entry(journal::State::Draining));
        actions.push(Action::on_host(What::Journal, &host.name, draining));
        actions.push(balancer_action(op, What::Drain));
        if let Some((op, read)) = crate::balancer::in_flight(balancer, &host.name) {
            let idle = Until::Idle { read, timeout: cfg.rolling.drain_timeout };
            actions.push(balancer_action(op, What::WaitDrained).until(idle));
        }
    }
    // The journal entry, then the switch, in one command.
    let switching = journal::write(layout, &entry(journal::State::Switching));
    actions.push(Action::on_host(What::Switch, &host.name, switching.and(release::switch(layout, id))));
    let mut activate: Vec<&String> = cfg.hooks.activate.iter().collect();
    if host.has(Role::Worker) {
        activate.extend(&cfg.hooks.worker.activate);
    }
    for hook in activate {
        actions.push(
            Action::on_host(What::Activate, &host.name, hooks::run(&layout.release(id), hook, env))
                .shown(hook.as_str()),
        );
    }
    actions.extend(health_action(cfg, host));
    actions.extend(undrain_actions(cfg, layout, id, host));
    actions
}

/// Back into service: wait for the balancer's own check (still drained), journal, undrain,
/// wait until it takes traffic, clear the journal.
pub fn undrain_actions(cfg: &StageConfig, layout: &Layout, id: &str, host: &Host) -> Vec<Action> {
    let balancer = &cfg.balancer;
    let mut actions = Vec::new();
    if let Some(op) = crate::balancer::undrain(balancer, &host.name) {
        let timeout = health_budget(cfg);
        if let Some((op, read)) = crate::balancer::probe(balancer, &host.name) {
            // The journal entry is written while the balancer's check is awaited.
            actions.push(balancer_action(op, What::WaitProbe).until(Until::ProbeHealthy { read, timeout }).with_next());
        }
        let entry =
            journal::Entry { stage: &cfg.stage, host: &host.name, release: id, state: journal::State::Undraining };
        actions.push(Action::on_host(What::Journal, &host.name, journal::write(layout, &entry)));
        actions.push(balancer_action(op, What::Undrain));
        if let Some((op, read)) = crate::balancer::healthy(balancer, &host.name) {
            actions.push(balancer_action(op, What::WaitHealthy).until(Until::InService { read, timeout }));
        }
    }
    actions.push(Action::on_host(What::Journal, &host.name, journal::clear(layout)));
    actions
}

/// The health check of one app host, from the host itself or from the deploying machine.
pub fn health_action(cfg: &StageConfig, host: &Host) -> Option<Action> {
    let health = &cfg.health;
    let url = health.url_for(host)?;
    let until = Until::Status { expect: health.expect_status, retries: health.retries, interval: health.interval };
    Some(match health.from {
        HealthFrom::Host => {
            let headers = health.headers_for(host);
            let fetch = crate::remote::health::fetch_status(&url, &headers, health.timeout);
            let shown =
                headers.iter().fold(format!("GET {url}"), |text, (name, value)| format!("{text} -H '{name}: {value}'"));
            Action::on_host(What::Health, &host.name, fetch).until(until).shown(shown)
        }
        HealthFrom::Local => Action {
            what: What::Health,
            on: Target::Local,
            run: Run::Http {
                method: "GET".into(),
                url,
                headers: health.headers_for(host),
                expect_status: Some(health.expect_status),
                timeout: health.timeout,
            },
            until: Some(until),
            with_next: false,
            shown: None,
        },
    })
}

/// A worker host takes no traffic: switch, then its activate hooks (no drain). Its journal
/// says so meanwhile, so `deploy unlock` knows a worker stopped between its switch and its
/// hooks.
pub fn worker_actions(cfg: &StageConfig, layout: &Layout, id: &str, host: &Host, env: &HookEnv) -> Vec<Action> {
    let entry = journal::Entry { stage: &cfg.stage, host: &host.name, release: id, state: journal::State::Switching };
    let switching = journal::write(layout, &entry).and(release::switch(layout, id));
    let mut actions = vec![Action::on_host(What::Switch, &host.name, switching)];
    for hook in &cfg.hooks.worker.activate {
        actions.push(
            Action::on_host(What::Activate, &host.name, hooks::run(&layout.release(id), hook, env))
                .shown(hook.as_str()),
        );
    }
    actions.push(Action::on_host(What::Journal, &host.name, journal::clear(layout)));
    actions
}
