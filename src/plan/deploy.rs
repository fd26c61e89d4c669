//! The deploy plan (SPEC §5): lock, build, upload and prepare, migrate once, roll, ban, finish.

use super::steps::{Head, RollInput, common_notes, connect_step, lock_step, on_release_hosts, roll_and_finish, short};
use super::*;
use crate::config::{BatchSize, Host, Reuse, Role, StageConfig};
use crate::remote::hooks::HookEnv;
use crate::remote::{Layout, hooks, release, shared};
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
    /// Which deploy a lock belongs to: it refreshes and removes only a lock with this token.
    #[serde(skip)]
    pub token: String,
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
    /// After a failure in the roll, put switched hosts back (`--no-auto-rollback`: false).
    pub auto_rollback: bool,
    /// Hosts uploading at once.
    pub upload_parallel: usize,
    /// `--force`: deploy even where the release log says another stage deployed last.
    pub other_stage_ok: bool,
    /// `--no-canary`: roll every host without a canary and soak.
    pub no_canary: bool,
}

pub fn deploy(cfg: &StageConfig, input: &DeployInput) -> Plan {
    let layout = Layout::new(&cfg.app.path);
    let id = input.release;
    let env = HookEnv { stage: &cfg.stage, release: id, path: &cfg.app.path, timeout: cfg.hooks.timeout };
    let mut steps = vec![connect_step(cfg), lock_step(cfg, input.owner)];
    let mut notes = common_notes(cfg);
    let artifact = format!("{id}.tar.gz");
    steps.push(build_step(cfg, &input.revision.commit, &artifact));
    steps.push(upload_step(cfg, &layout, input, &artifact, &env));

    let post_migrate = post_migrate_step(cfg, input, &layout, &env, &mut notes);
    // Migrate, once.
    match (&cfg.hooks.migrate, cfg.hosts.iter().find(|host| host.has(Role::Migrate))) {
        (Some(_), _) if input.skip_migrations => notes.push("migrations skipped (--skip-migrations)".into()),
        (Some(migrate), Some(host)) => steps.push(Step::parallel(
            Phase::Migrate,
            format!("migrate once, on {}, in the new release (nothing is live yet)", host.name),
            1,
            OnFailure::Abort,
            vec![HostActions {
                host: host.name.clone(),
                actions: vec![
                    Action::on_host(What::Migrate, &host.name, hooks::run(&layout.release(id), migrate, &env))
                        .shown(migrate),
                ],
            }],
        )),
        _ => {}
    }

    let record = serde_json::json!({
        "kind": "deploy",
        "release": id,
        "commit": input.revision.commit,
        "revision": input.revision.requested,
        "stage": cfg.stage,
        "site": cfg.site,
        "who": format!("{}@{}", input.owner.user, input.owner.machine),
        "when": input.owner.started,
        "outcome": "success",
    });
    let roll = RollInput {
        batch: input.batch,
        auto_rollback: input.auto_rollback,
        no_ban: input.no_ban,
        settled: &[],
        canary: !input.no_canary,
    };
    let head = Head {
        kind: PlanKind::Deploy,
        id,
        revision: Some(input.revision.clone()),
        steps,
        notes,
        record,
        token: input.owner.token.clone(),
        post_migrate,
    };
    roll_and_finish(cfg, &env, roll, head)
}

/// `post_migrate`, once, on the migrate host, in the new release, after every host serves it
/// (the contract of expand/contract). Not when only some hosts are changed, nor with
/// `--skip-migrations`. A failure leaves every host on the release: nothing is rolled back.
fn post_migrate_step(
    cfg: &StageConfig,
    input: &DeployInput,
    layout: &Layout,
    env: &HookEnv,
    notes: &mut Vec<String>,
) -> Option<Step> {
    let command = cfg.hooks.post_migrate.as_ref()?;
    let host = cfg.hosts.iter().find(|host| host.has(Role::Migrate))?;
    if input.skip_migrations {
        notes.push("post_migrate skipped (--skip-migrations)".into());
        return None;
    }
    if !cfg.left_alone().is_empty() {
        notes.push(
            "post_migrate not run: this run leaves some hosts on their release (--host/--role), and the old code \
             may still need what it removes; a deploy of every host runs it"
                .into(),
        );
        return None;
    }
    let run = hooks::run(&layout.release(input.release), command, env);
    Some(Step::parallel(
        Phase::PostMigrate,
        format!("post-migrate once, on {}, in the new release, once every host serves it (contract)", host.name),
        1,
        OnFailure::Finish,
        vec![HostActions {
            host: host.name.clone(),
            actions: vec![Action::on_host(What::PostMigrate, &host.name, run).shown(command)],
        }],
    ))
}

/// Build, once, locally.
fn build_step(cfg: &StageConfig, commit: &str, artifact: &str) -> Step {
    let mut build = vec![Action {
        what: What::Export,
        on: Target::Local,
        run: Run::Export { commit: commit.to_string() },
        until: None,
        with_next: false,
        shown: None,
    }];
    for command in &cfg.build.commands {
        let env = build_env(cfg, commit).into_iter().map(|(name, value)| format!("{name}={value}"));
        build.push(
            Action::shell(What::Build, Target::Local, Cmd::new("env").args(env).shell(command.as_str())).shown(command),
        );
    }
    build.push(Action {
        what: What::Pack,
        on: Target::Local,
        run: Run::Pack { file: artifact.to_string(), exclude: cfg.build.exclude.clone() },
        until: None,
        with_next: false,
        shown: None,
    });
    Step::parallel(
        Phase::Build,
        format!("build {} once, locally, from a clean export", short(commit)),
        1,
        OnFailure::Abort,
        vec![HostActions { host: "local".into(), actions: build }],
    )
}

/// Upload and prepare, hosts side by side.
fn upload_step(cfg: &StageConfig, layout: &Layout, input: &DeployInput, artifact: &str, env: &HookEnv) -> Step {
    let id = input.release;
    let upload = on_release_hosts(cfg, |host| {
        let mut actions = vec![
            Action::on_host(
                What::ReadCurrent,
                &host.name,
                if input.other_stage_ok {
                    release::current(layout)
                } else {
                    release::current_for_site(layout, &cfg.stage, &cfg.site)
                },
            ),
            Action {
                what: What::Receive,
                on: Target::host(&host.name),
                run: match &cfg.store {
                    None => Run::Shell { cmd: release::receive(layout, id), stdin: Some(artifact.to_string()) },
                    Some(store) => Run::Shell {
                        cmd: release::fetch(layout, id, store.tries),
                        stdin: Some(format!("the sha256 and the URL of {artifact} in {}", store.shown())),
                    },
                },
                until: None,
                with_next: false,
                shown: None,
            },
            Action::on_host(
                What::Unpack,
                &host.name,
                release::unpack(layout, id, &input.revision.commit, cfg.build.reuse == Reuse::Hardlink),
            ),
        ];
        if let Some(link) = shared::link(layout, id, &cfg.shared.dirs, &cfg.shared.files) {
            actions.push(Action::on_host(What::LinkShared, &host.name, link));
        }
        let hooks = prepare_hooks(cfg, host);
        for hook in &hooks {
            actions.push(
                Action::on_host(What::Prepare, &host.name, hooks::run(&layout.release(id), hook, env))
                    .shown(hook.as_str()),
            );
        }
        if cfg.build.delta && cfg.build.reuse == Reuse::Hardlink && !hooks.is_empty() {
            actions.push(
                Action::on_host(What::CheckRelease, &host.name, release::check_links(layout, id))
                    .shown("check that no prepare hook wrote through a hard link"),
            );
        }
        actions
    });
    Step::parallel(
        Phase::Upload,
        if let Some(store) = &cfg.store {
            format!(
                "put {artifact} ({}) in {} once; each host fetches it, unpacked as it arrives, sha256 checked \
                 ({} tries), links shared paths, prepares",
                if cfg.build.delta {
                    "only the files a release lacks: one tarball per current release, shared by its hosts"
                } else {
                    "the whole release"
                },
                store.shown(),
                store.tries
            )
        } else if cfg.build.delta {
            format!(
                "upload {artifact} (only the files each host's current release lacks), unpacked as it arrives, \
                 sha256 checked, \
                 {} the unchanged files from the current release, link shared paths, prepare",
                match cfg.build.reuse {
                    Reuse::Copy => "copy (cp --reflink=auto)",
                    Reuse::Hardlink => "hard-link",
                }
            )
        } else {
            format!(
                "upload {artifact} (the whole release), unpacked as it arrives, sha256 checked, link shared paths, \
                 prepare"
            )
        },
        input.upload_parallel.max(1),
        OnFailure::Abort,
        upload,
    )
}

/// What build commands see in their environment. Not the release id: an artifact is reused
/// by every later release of the same commit, stage and build commands.
pub fn build_env(cfg: &StageConfig, commit: &str) -> Vec<(&'static str, String)> {
    vec![("DEPLOY_STAGE", cfg.stage.clone()), ("DEPLOY_COMMIT", commit.to_string())]
}

fn prepare_hooks<'c>(cfg: &'c StageConfig, host: &Host) -> Vec<&'c String> {
    let mut hooks: Vec<&String> = Vec::new();
    if host.has(Role::App) {
        hooks.extend(&cfg.hooks.prepare);
    }
    if host.has(Role::Worker) {
        hooks.extend(&cfg.hooks.worker.prepare);
    }
    hooks
}
