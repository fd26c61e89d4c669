//! The steps a deploy and a rollback share: connect, lock, workers, ban, finish; and what the
//! plan says about the stage.

use super::*;
use crate::config::{BatchSize, Host, Role, StageConfig};
use crate::http_cache::Ban;
use crate::remote::hooks::HookEnv;
use crate::remote::{Layout, lock, release};

/// The actions of every host that gets the release (app and worker hosts), in config order.
pub(super) fn on_release_hosts(cfg: &StageConfig, actions: impl Fn(&Host) -> Vec<Action>) -> Vec<HostActions> {
    cfg.hosts
        .iter()
        .filter(|host| cfg.changes(host))
        .map(|host| HostActions { host: host.name.clone(), actions: actions(host) })
        .collect()
}

pub(super) fn short(commit: &str) -> &str {
    &commit[..commit.len().min(7)]
}

pub(super) fn common_notes(cfg: &StageConfig) -> Vec<String> {
    let mut notes = Vec::new();
    if matches!(cfg.balancer, crate::config::Balancer::None) {
        notes.push("no balancer: app hosts are switched in place, without draining".into());
    }
    if cfg.health.url.is_none() {
        notes.push("no health check: set [health] url to check each host before it takes traffic".into());
    }
    if let Some(only) = &cfg.only {
        notes.push(format!(
            "only {} ({}): {} keep their release and stay in service (the capacity check counts them); the \
             hosts disagree until a run without --host/--role",
            only.hosts.join(", "),
            only.said,
            cfg.left_alone().join(", ")
        ));
    }
    notes
}

/// `user@address:port` as ssh will be asked for it.
fn destination(cfg: &StageConfig, host: &Host) -> String {
    let user = host.user.as_ref().or(cfg.ssh.user.as_ref());
    let port = host.port.or(cfg.ssh.port);
    let mut text = String::new();
    if let Some(user) = user {
        text.push_str(user);
        text.push('@');
    }
    text.push_str(&host.address);
    if let Some(port) = port {
        text.push_str(&format!(":{port}"));
    }
    text
}

fn host_infos(cfg: &StageConfig) -> Vec<HostInfo> {
    cfg.hosts
        .iter()
        .map(|host| HostInfo {
            name: host.name.clone(),
            destination: destination(cfg, host),
            roles: host.roles.clone(),
        })
        .collect()
}

fn balancer_summary(cfg: &StageConfig) -> String {
    use crate::config::Balancer;
    match &cfg.balancer {
        Balancer::None => "none".into(),
        Balancer::Varnish { host, admin, .. } => format!("varnish on {host} (admin {admin})"),
        Balancer::Haproxy { host, socket, backend, .. } => {
            format!("haproxy on {host} (backend {backend}, socket {socket})")
        }
        Balancer::Command { host, .. } => {
            format!("command, run {}", host.as_deref().map_or("locally".to_string(), |host| format!("on {host}")))
        }
    }
}

pub(super) fn connect_step(cfg: &StageConfig) -> Step {
    let hosts: Vec<HostActions> = cfg
        .hosts
        .iter()
        .filter(|host| cfg.touches(host))
        .map(|host| HostActions {
            host: host.name.clone(),
            actions: vec![Action {
                what: What::Connect,
                on: Target::host(&host.name),
                run: Run::Ssh { destination: destination(cfg, host) },
                until: None,
                with_next: false,
                shown: None,
            }],
        })
        .collect();
    let count = hosts.len().max(1);
    Step::parallel(
        Phase::Connect,
        if cfg.only.is_some() {
            "connect to the chosen hosts and where the balancer and caches run (one multiplexed ssh connection each)"
        } else {
            "connect to every host (one multiplexed ssh connection each)"
        },
        count,
        OnFailure::Stop,
        hosts,
    )
}

pub(super) fn lock_step(cfg: &StageConfig, owner: &Owner) -> Step {
    let layout = Layout::new(&cfg.app.path);
    let json = owner.json();
    let mut hosts = on_release_hosts(cfg, |host| {
        vec![Action::on_host(What::Lock, &host.name, lock::acquire(&layout, &json, &owner.token))]
    });
    // The first host's lock first: two deploys started together meet there, so exactly one
    // goes on (locking all at once, each could take some and both would give up).
    let rest = hosts.split_off(hosts.len().min(1));
    let mut batches = vec![Batch { hosts }];
    if !rest.is_empty() {
        batches.push(Batch { hosts: rest });
    }
    // The others side by side: as many at once as the larger batch has hosts.
    let parallel = batches.iter().map(|batch| batch.hosts.len()).max().unwrap_or(1).max(1);
    Step {
        phase: Phase::Lock,
        title: "lock the first host, then the others (if a lock is held: release what was taken, exit 3)".into(),
        parallel,
        on_failure: OnFailure::ReleaseLocks,
        batches,
    }
}

/// Worker-only hosts: switch, then their activate hooks, side by side, no drain.
fn workers_step(
    cfg: &StageConfig,
    layout: &Layout,
    id: &str,
    env: &HookEnv,
    on_failure: OnFailure,
    settled: &[String],
) -> Option<Step> {
    let hosts: Vec<HostActions> = cfg
        .hosts
        .iter()
        .filter(|host| host.has(Role::Worker) && !host.has(Role::App) && cfg.changes(host))
        .filter(|host| !settled.contains(&host.name))
        .map(|host| HostActions {
            host: host.name.clone(),
            actions: super::roll::worker_actions(cfg, layout, id, host, env),
        })
        .collect();
    (!hosts.is_empty()).then(|| {
        let count = hosts.len();
        Step::parallel(
            Phase::Workers,
            "switch worker hosts (no traffic, no drain), then their activate hooks",
            count,
            on_failure,
            hosts,
        )
    })
}

/// One action per ban of every configured cache.
fn ban_action(ban: Ban) -> Action {
    match ban {
        Ban::Shell { on, cmd, expect_status: None } => Action::shell(What::Ban, on, cmd),
        Ban::Shell { on, cmd, expect_status: Some(expect) } => {
            Action::shell(What::Ban, on, cmd).until(Until::Status { expect, retries: 1, interval: Duration::ZERO })
        }
        Ban::Http { method, url, headers, expect_status } => Action {
            what: What::Ban,
            on: Target::Local,
            run: Run::Http { method, url, headers, expect_status, timeout: crate::http_cache::TIMEOUT },
            until: None,
            with_next: false,
            shown: None,
        },
    }
}

fn ban_step(cfg: &StageConfig) -> Option<Step> {
    let actions: Vec<Action> = cfg.http_cache.iter().flat_map(crate::http_cache::bans).map(ban_action).collect();
    (!actions.is_empty()).then(|| {
        Step::parallel(
            Phase::Ban,
            "ban the HTTP cache, once, after the last host",
            1,
            OnFailure::Warn,
            vec![HostActions { host: "cache".into(), actions }],
        )
    })
}

fn finish_step(cfg: &StageConfig, layout: &Layout, record: &str, token: &str) -> Step {
    let hosts = on_release_hosts(cfg, |host| {
        vec![
            Action::on_host(What::Record, &host.name, release::record(layout, record)),
            Action {
                what: What::Cleanup,
                on: Target::host(&host.name),
                run: Run::Cleanup { keep: cfg.app.keep_releases, list: release::list(layout) },
                until: None,
                with_next: false,
                shown: None,
            },
            Action::on_host(What::Unlock, &host.name, lock::release_own(layout, token)),
        ]
    });
    Step::parallel(
        Phase::Finish,
        "record the release, remove old releases, unlock",
        cfg.hosts.len().max(1),
        OnFailure::Warn,
        hosts,
    )
}

/// How the release rolls: `--batch`, `--no-auto-rollback`, `--no-ban`, and the hosts already
/// on the release (a rollback leaves them as they are).
pub(super) struct RollInput<'a> {
    pub batch: Option<BatchSize>,
    pub auto_rollback: bool,
    pub no_ban: bool,
    pub settled: &'a [String],
    /// Roll `[rolling] canary` hosts first and soak them (a deploy without `--no-canary`).
    pub canary: bool,
}

/// A plan up to its roll: what kind, of which release, the steps and notes so far, the
/// release log line.
pub(super) struct Head<'a> {
    pub kind: PlanKind,
    pub id: &'a str,
    pub revision: Option<Revision>,
    pub steps: Vec<Step>,
    pub notes: Vec<String>,
    pub record: serde_json::Value,
    /// The lock token of this run (see `Owner::token`).
    pub token: String,
    /// A deploy's `post_migrate`: once every host serves the release, before the ban.
    pub post_migrate: Option<Step>,
}

/// What a deploy and a rollback share once the release is on every host: the roll, the
/// workers, the ban, the finish; then the plan.
pub(super) fn roll_and_finish(cfg: &StageConfig, env: &HookEnv, roll: RollInput, head: Head) -> Plan {
    let Head { kind, id, revision, mut steps, mut notes, mut record, token, post_migrate } = head;
    if let Some(only) = &cfg.only {
        // The release log says which hosts this run changed.
        record["only"] = serde_json::json!(only.hosts);
    }
    let layout = Layout::new(&cfg.app.path);
    let after_switch = OnFailure::after_switch(roll.auto_rollback);
    let batch = roll.batch.unwrap_or(cfg.rolling.batch);
    if !roll.settled.is_empty() {
        notes.push(format!("{} already on {id}: not rolled", roll.settled.join(", ")));
    }
    let apps = super::roll::rolled_apps(cfg, roll.settled);
    let all_apps = cfg.hosts.iter().filter(|host| host.has(Role::App)).count();
    let canaries = if roll.canary { cfg.canary.count(all_apps).min(apps.len()) } else { 0 };
    let (first, rest) = apps.split_at(canaries);
    let mut size = batch.size(apps.len());
    let rolled: &[&Host] = match super::soak::soak_step(cfg, id, first, after_switch) {
        Some(soak) => {
            let (canary_step, _) = super::roll::roll_step(cfg, &layout, batch, env, after_switch, first, Phase::Canary);
            steps.push(canary_step);
            steps.push(soak);
            rest
        }
        None => {
            if cfg.canary.hosts.is_some() && !roll.canary && kind == PlanKind::Deploy {
                notes.push("no canary (--no-canary): every host is rolled without a soak".into());
            }
            &apps
        }
    };
    if !rolled.is_empty() {
        let (roll_step, used) = super::roll::roll_step(cfg, &layout, batch, env, after_switch, rolled, Phase::Roll);
        size = used;
        steps.push(roll_step);
    }
    if let Some(workers) = workers_step(cfg, &layout, id, env, after_switch, roll.settled) {
        steps.push(workers);
    }
    if let Some(step) = post_migrate {
        record["post_migrate"] = serde_json::json!("ran");
        steps.push(step);
    }
    if roll.no_ban {
        notes.push("HTTP cache not banned (--no-ban)".into());
    } else if let Some(ban) = ban_step(cfg) {
        steps.push(ban);
    }
    steps.push(finish_step(cfg, &layout, &record.to_string(), &token));
    Plan {
        kind,
        app: cfg.app.name.clone(),
        stage: cfg.stage.clone(),
        path: cfg.app.path.clone(),
        release: id.to_string(),
        revision,
        hosts: host_infos(cfg),
        balancer: balancer_summary(cfg),
        balancer_config: cfg.balancer.clone(),
        batch_size: size,
        steps,
        notes,
        record,
        token,
    }
}
