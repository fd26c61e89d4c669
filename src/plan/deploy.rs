//! The deploy plan (SPEC §5): lock, build, upload and prepare, migrate once, roll, ban, finish.

use super::*;
use crate::config::{Batch as BatchSize, HealthFrom, Host, Role, StageConfig};
use crate::remote::hooks::HookEnv;
use crate::remote::{Layout, hooks, journal, lock, release, shared};
use serde::Serialize;

/// Who runs the deploy; written into the lock so a second deploy can name the holder.
#[derive(Debug, Clone, Serialize)]
pub struct Owner {
    pub user: String,
    pub machine: String,
    pub pid: u32,
    pub stage: String,
    /// RFC 3339 UTC.
    pub started: String,
}

impl Owner {
    pub fn json(&self) -> String {
        serde_json::to_string(self).expect("owner serializes")
    }
}

pub struct DeployInput<'a> {
    pub release: &'a str,
    pub revision: &'a Revision,
    pub owner: &'a Owner,
    /// `--batch`, already checked against the host count.
    pub batch: Option<BatchSize>,
    pub skip_migrations: bool,
    pub no_ban: bool,
    /// Hosts uploading at once.
    pub upload_parallel: usize,
}

pub fn deploy(cfg: &StageConfig, input: &DeployInput) -> Plan {
    let l = Layout::new(&cfg.app.path);
    let id = input.release;
    let env = HookEnv { stage: &cfg.stage, release: id, path: &cfg.app.path };
    let release_hosts: Vec<&Host> = cfg.hosts.iter().filter(|h| h.gets_release()).collect();
    let mut steps = vec![connect_step(cfg), lock_step(cfg, input.owner)];
    let mut notes = common_notes(cfg);

    // Build, once, locally.
    let artifact = format!("{id}.tar.gz");
    let mut build = vec![Action {
        what: What::Export,
        on: Target::Local,
        run: Run::Export { commit: input.revision.commit.clone() },
        until: None,
        with_next: false,
    }];
    for c in &cfg.build.commands {
        let env = build_env(cfg, &input.revision.commit).into_iter().map(|(k, v)| format!("{k}={v}"));
        build.push(Action::shell(What::Build, Target::Local, Cmd::new("env").args(env).args(["sh", "-c", c])));
    }
    build.push(Action {
        what: What::Pack,
        on: Target::Local,
        run: Run::Pack { file: artifact.clone(), exclude: cfg.build.exclude.clone() },
        until: None,
        with_next: false,
    });
    steps.push(Step::parallel(
        Phase::Build,
        format!("build {} once, locally, from a clean export", short(&input.revision.commit)),
        1,
        vec![HostActions { host: "local".into(), actions: build }],
    ));

    // Upload and prepare, hosts side by side.
    let upload = release_hosts
        .iter()
        .map(|h| {
            let mut a = vec![
                Action::on_host(What::ReadCurrent, &h.name, release::current(&l)),
                Action {
                    what: What::Receive,
                    on: Target::Host(h.name.clone()),
                    run: Run::Shell { cmd: release::receive(&l, id), stdin: Some(artifact.clone()) },
                    until: None,
                    with_next: false,
                },
                Action::on_host(What::Unpack, &h.name, release::unpack(&l, id, &input.revision.commit)),
            ];
            if let Some(c) = shared::link(&l, id, &cfg.shared.dirs, &cfg.shared.files) {
                a.push(Action::on_host(What::LinkShared, &h.name, c));
            }
            for hook in prepare_hooks(cfg, h) {
                a.push(Action::on_host(What::Prepare, &h.name, hooks::run(&l.release(id), hook, &env)));
            }
            HostActions { host: h.name.clone(), actions: a }
        })
        .collect();
    steps.push(Step::parallel(
        Phase::Upload,
        if cfg.build.delta {
            format!(
                "upload {artifact} (only the files each host's current release lacks), verify its sha256, unpack, \
                 hard-link the unchanged files from the current release, link shared paths, prepare"
            )
        } else {
            format!("upload {artifact} (the whole release), verify its sha256, unpack, link shared paths, prepare")
        },
        input.upload_parallel.max(1),
        upload,
    ));

    // Migrate, once.
    match (&cfg.hooks.migrate, cfg.hosts.iter().find(|h| h.has(Role::Migrate))) {
        (Some(_), _) if input.skip_migrations => notes.push("migrations skipped (--skip-migrations)".into()),
        (Some(m), Some(h)) => steps.push(Step::parallel(
            Phase::Migrate,
            format!("migrate once, on {}, in the new release (nothing is live yet)", h.name),
            1,
            vec![HostActions {
                host: h.name.clone(),
                actions: vec![Action::on_host(What::Migrate, &h.name, hooks::run(&l.release(id), m, &env))],
            }],
        )),
        _ => {}
    }

    let batch = input.batch.unwrap_or(cfg.rolling.batch);
    let (roll, size) = roll_step(cfg, &l, id, batch, &env);
    steps.push(roll);
    if let Some(w) = workers_step(cfg, &l, id, &env) {
        steps.push(w);
    }
    if input.no_ban {
        notes.push("HTTP cache not banned (--no-ban)".into());
    } else if let Some(b) = ban_step(cfg) {
        steps.push(b);
    }
    let record = serde_json::json!({
        "kind": "deploy",
        "release": id,
        "commit": input.revision.commit,
        "revision": input.revision.requested,
        "stage": cfg.stage,
        "who": format!("{}@{}", input.owner.user, input.owner.machine),
        "when": input.owner.started,
        "outcome": "success",
    });
    steps.push(finish_step(cfg, &l, &record.to_string()));

    Plan {
        kind: PlanKind::Deploy,
        app: cfg.app.name.clone(),
        stage: cfg.stage.clone(),
        path: cfg.app.path.clone(),
        release: id.to_string(),
        revision: Some(input.revision.clone()),
        hosts: host_infos(cfg),
        balancer: balancer_summary(cfg),
        batch_size: size,
        steps,
        notes,
        record,
    }
}

/// What build commands see in their environment. Not the release id: an artifact is reused
/// by every later release of the same commit, stage and build commands.
pub fn build_env(cfg: &StageConfig, commit: &str) -> Vec<(&'static str, String)> {
    vec![("DEPLOY_STAGE", cfg.stage.clone()), ("DEPLOY_COMMIT", commit.to_string())]
}

pub(super) fn short(commit: &str) -> &str {
    &commit[..commit.len().min(7)]
}

fn prepare_hooks<'c>(cfg: &'c StageConfig, h: &Host) -> Vec<&'c String> {
    let mut v: Vec<&String> = Vec::new();
    if h.has(Role::App) {
        v.extend(&cfg.hooks.prepare);
    }
    if h.has(Role::Worker) {
        v.extend(&cfg.hooks.worker.prepare);
    }
    v
}

pub(super) fn common_notes(cfg: &StageConfig) -> Vec<String> {
    let mut notes = Vec::new();
    if matches!(cfg.balancer, crate::config::Balancer::None) {
        notes.push("no balancer: app hosts are switched in place, without draining".into());
    }
    if cfg.health.url.is_none() {
        notes.push("no health check: set [health] url to check each host before it takes traffic".into());
    }
    notes
}

pub(super) fn destination(cfg: &StageConfig, h: &Host) -> String {
    let user = h.user.as_ref().or(cfg.ssh.user.as_ref());
    let port = h.port.or(cfg.ssh.port);
    let mut d = String::new();
    if let Some(u) = user {
        d.push_str(u);
        d.push('@');
    }
    d.push_str(&h.address);
    if let Some(p) = port {
        d.push_str(&format!(":{p}"));
    }
    d
}

pub(super) fn host_infos(cfg: &StageConfig) -> Vec<HostInfo> {
    cfg.hosts
        .iter()
        .map(|h| HostInfo { name: h.name.clone(), destination: destination(cfg, h), roles: h.roles.clone() })
        .collect()
}

pub(super) fn balancer_summary(cfg: &StageConfig) -> String {
    use crate::config::Balancer as B;
    match &cfg.balancer {
        B::None => "none".into(),
        B::Varnish { host, admin, .. } => format!("varnish on {host} (admin {admin})"),
        B::Haproxy { host, socket, backend, .. } => format!("haproxy on {host} (backend {backend}, socket {socket})"),
        B::Command { host, .. } => {
            format!("command, run {}", host.as_deref().map_or("locally".to_string(), |h| format!("on {h}")))
        }
    }
}

pub(super) fn connect_step(cfg: &StageConfig) -> Step {
    let hosts = cfg
        .hosts
        .iter()
        .map(|h| HostActions {
            host: h.name.clone(),
            actions: vec![Action {
                what: What::Connect,
                on: Target::Host(h.name.clone()),
                run: Run::Ssh { destination: destination(cfg, h) },
                until: None,
                with_next: false,
            }],
        })
        .collect();
    Step::parallel(
        Phase::Connect,
        "connect to every host (one multiplexed ssh connection each)",
        cfg.hosts.len().max(1),
        hosts,
    )
}

pub(super) fn lock_step(cfg: &StageConfig, owner: &Owner) -> Step {
    let l = Layout::new(&cfg.app.path);
    let json = owner.json();
    let mut hosts: Vec<HostActions> = cfg
        .hosts
        .iter()
        .filter(|h| h.gets_release())
        .map(|h| HostActions {
            host: h.name.clone(),
            actions: vec![Action::on_host(What::Lock, &h.name, lock::acquire(&l, &json))],
        })
        .collect();
    // The first host's lock first: two deploys started together meet there, so exactly one
    // goes on (locking all at once, each could take some and both would give up).
    let rest = hosts.split_off(hosts.len().min(1));
    let mut batches = vec![Batch { hosts }];
    if !rest.is_empty() {
        batches.push(Batch { hosts: rest });
    }
    Step {
        phase: Phase::Lock,
        title: "lock the first host, then the others (if a lock is held: release what was taken, exit 3)".into(),
        parallel: cfg.hosts.len().max(1),
        batches,
    }
}

/// Drain → wait idle → switch → activate → health → undrain → wait healthy, with journal
/// entries before each state change. Returns the step and the batch size used.
pub(super) fn roll_step(cfg: &StageConfig, l: &Layout, id: &str, batch: BatchSize, env: &HookEnv) -> (Step, usize) {
    let apps: Vec<&Host> = cfg.hosts.iter().filter(|h| h.has(Role::App)).collect();
    let size = batch.size(apps.len());
    let batches: Vec<Batch> = apps
        .chunks(size)
        .map(|chunk| Batch {
            hosts: chunk
                .iter()
                .map(|h| {
                    let batch: Vec<&str> = chunk.iter().map(|x| x.name.as_str()).collect();
                    HostActions { host: h.name.clone(), actions: roll_host(cfg, l, id, h, &batch, env) }
                })
                .collect(),
        })
        .collect();
    let title = format!(
        "roll {} app host{} {} at a time (batch {batch}), keeping at least {} in service",
        apps.len(),
        if apps.len() == 1 { "" } else { "s" },
        size,
        cfg.rolling.min_in_service
    );
    (Step { phase: Phase::Roll, title, parallel: size, batches }, size)
}

/// `batch` names the hosts taken out together with `h`: the capacity check before the drain
/// counts only the others.
pub(crate) fn roll_host(
    cfg: &StageConfig,
    l: &Layout,
    id: &str,
    h: &Host,
    batch: &[&str],
    env: &HookEnv,
) -> Vec<Action> {
    let b = &cfg.balancer;
    let entry = |state| journal::Entry { stage: &cfg.stage, host: &h.name, release: id, state };
    let mut a = Vec::new();
    let on = |op: crate::balancer::Op, what| {
        let silent = op.silent;
        let a = Action::shell(what, op.on, op.cmd);
        if silent { a.until(Until::Silent) } else { a }
    };
    let min = cfg.rolling.min_in_service;
    if min > 0
        && let Some((op, read)) = crate::balancer::capacity(b)
    {
        let others: Vec<String> = cfg
            .hosts
            .iter()
            .filter(|o| o.has(Role::App) && !batch.contains(&o.name.as_str()))
            .map(|o| b.backend_of(&o.name).to_string())
            .collect();
        let hc = &cfg.health;
        let timeout = hc.interval * hc.retries + hc.timeout;
        a.push(on(op, What::Capacity).until(Until::Capacity {
            read,
            own: b.backend_of(&h.name).to_string(),
            others,
            min,
            timeout,
        }));
    }
    if let Some(op) = crate::balancer::drain(b, &h.name) {
        // The capacity check on the balancer and the journal on the host, at the same time.
        if let Some(c) = a.last_mut().filter(|c| c.what == What::Capacity) {
            c.with_next = true;
        }
        a.push(Action::on_host(What::Journal, &h.name, journal::write(l, &entry(journal::State::Draining))));
        a.push(on(op, What::Drain));
        if let Some((op, read)) = crate::balancer::in_flight(b, &h.name) {
            a.push(on(op, What::WaitDrained).until(Until::Idle { read, timeout: cfg.rolling.drain_timeout }));
        }
    }
    // The journal entry, then the switch, in one command.
    a.push(Action::on_host(
        What::Switch,
        &h.name,
        journal::write(l, &entry(journal::State::Switching)).and(release::switch(l, id)),
    ));
    let mut activate: Vec<&String> = cfg.hooks.activate.iter().collect();
    if h.has(Role::Worker) {
        activate.extend(&cfg.hooks.worker.activate);
    }
    for hook in activate {
        a.push(Action::on_host(What::Activate, &h.name, hooks::run(&l.release(id), hook, env)));
    }
    if let Some(x) = health_action(cfg, h) {
        a.push(x);
    }
    a.extend(undrain_actions(cfg, l, id, h));
    a
}

/// Back into service: wait for the balancer's own check (still drained), journal, undrain,
/// wait until it takes traffic, clear the journal.
pub(crate) fn undrain_actions(cfg: &StageConfig, l: &Layout, id: &str, h: &Host) -> Vec<Action> {
    let b = &cfg.balancer;
    let on = |op: crate::balancer::Op, what| {
        let silent = op.silent;
        let a = Action::shell(what, op.on, op.cmd);
        if silent { a.until(Until::Silent) } else { a }
    };
    let mut a = Vec::new();
    if let Some(op) = crate::balancer::undrain(b, &h.name) {
        let hc = &cfg.health;
        let timeout = hc.interval * hc.retries + hc.timeout;
        if let Some((op, read)) = crate::balancer::probe(b, &h.name) {
            // The journal entry is written while the balancer's check is awaited.
            a.push(on(op, What::WaitProbe).until(Until::ProbeHealthy { read, timeout }).with_next());
        }
        let entry = journal::Entry { stage: &cfg.stage, host: &h.name, release: id, state: journal::State::Undraining };
        a.push(Action::on_host(What::Journal, &h.name, journal::write(l, &entry)));
        a.push(on(op, What::Undrain));
        if let Some((op, read)) = crate::balancer::healthy(b, &h.name) {
            a.push(on(op, What::WaitHealthy).until(Until::InService { read, timeout }));
        }
    }
    a.push(Action::on_host(What::Journal, &h.name, journal::clear(l)));
    a
}

pub(crate) fn health_action(cfg: &StageConfig, h: &Host) -> Option<Action> {
    let hc = &cfg.health;
    let url = hc.url_for(h)?;
    let until = Until::Status { expect: hc.expect_status, retries: hc.retries, interval: hc.interval };
    Some(match hc.from {
        HealthFrom::Host => {
            Action::on_host(What::Health, &h.name, crate::remote::health::fetch_status(&url, hc.timeout)).until(until)
        }
        HealthFrom::Local => Action {
            what: What::Health,
            on: Target::Local,
            run: Run::Http {
                method: "GET".into(),
                url,
                headers: vec![],
                expect_status: Some(hc.expect_status),
                timeout: hc.timeout,
            },
            until: Some(until),
            with_next: false,
        },
    })
}

/// Worker-only hosts: switch, then their activate hooks, side by side, no drain.
/// A worker host takes no traffic: switch, then its activate hooks (no drain).
pub(crate) fn worker_actions(cfg: &StageConfig, l: &Layout, id: &str, h: &Host, env: &HookEnv) -> Vec<Action> {
    let mut a = vec![Action::on_host(What::Switch, &h.name, release::switch(l, id))];
    for hook in &cfg.hooks.worker.activate {
        a.push(Action::on_host(What::Activate, &h.name, hooks::run(&l.release(id), hook, env)));
    }
    a
}

pub(super) fn workers_step(cfg: &StageConfig, l: &Layout, id: &str, env: &HookEnv) -> Option<Step> {
    let hosts: Vec<HostActions> = cfg
        .hosts
        .iter()
        .filter(|h| h.has(Role::Worker) && !h.has(Role::App))
        .map(|h| HostActions { host: h.name.clone(), actions: worker_actions(cfg, l, id, h, env) })
        .collect();
    (!hosts.is_empty()).then(|| {
        let n = hosts.len();
        Step::parallel(
            Phase::Workers,
            "switch worker hosts (no traffic, no drain), then their activate hooks",
            n,
            hosts,
        )
    })
}

pub(super) fn ban_step(cfg: &StageConfig) -> Option<Step> {
    let actions: Vec<Action> = cfg.http_cache.iter().flat_map(crate::http_cache::ban).collect();
    (!actions.is_empty()).then(|| {
        Step::parallel(
            Phase::Ban,
            "ban the HTTP cache, once, after the last host",
            1,
            vec![HostActions { host: "cache".into(), actions }],
        )
    })
}

pub(super) fn finish_step(cfg: &StageConfig, l: &Layout, record: &str) -> Step {
    let hosts = cfg
        .hosts
        .iter()
        .filter(|h| h.gets_release())
        .map(|h| HostActions {
            host: h.name.clone(),
            actions: vec![
                Action::on_host(What::Record, &h.name, release::record(l, record)),
                Action {
                    what: What::Cleanup,
                    on: Target::Host(h.name.clone()),
                    run: Run::Cleanup { keep: cfg.app.keep_releases, list: release::list(l) },
                    until: None,
                    with_next: false,
                },
                Action::on_host(What::Unlock, &h.name, lock::release(l)),
            ],
        })
        .collect();
    Step::parallel(Phase::Finish, "record the release, remove old releases, unlock", cfg.hosts.len().max(1), hosts)
}
