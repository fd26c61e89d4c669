//! `deploy STAGE`: build while connecting and locking, then run the plan.

use super::plans;
use super::session::{Connected, RunKind, Session, Upload, with_lock};
use crate::artifact::{self, BuildSpec};
use crate::config::{NotifyOn, StageConfig};
use crate::error::Error;
use crate::plan::Revision;
use crate::report::Event;
use crate::runner::{Built, Runner};
use crate::settings::{BuildOptions, RollOptions, Settings};
use crate::transport::{Live, Transport};
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Instant, SystemTime};

pub fn run(
    settings: &Settings,
    stage: &str,
    build: &BuildOptions,
    roll: &RollOptions,
    assume_yes: bool,
) -> Result<i32, Error> {
    let mut cfg = super::load(settings, stage)?;
    plans::select(&mut cfg, roll, true)?;
    let batch = plans::batch(roll, &cfg)?;
    let revision = plans::revision(build, &cfg.stage)?;
    if !confirmed(&cfg.stage, &revision, assume_yes) {
        eprintln!("not deployed");
        return Ok(1);
    }
    let store = open_store(&cfg)?;
    let session = Session::start(settings, &cfg, RunKind::Deploy)?;
    let stage = session.stage();
    let plan_for = |id: &str| plans::deploy(session.cfg, roll, batch, id, &revision, &session.owner);
    // Build while connecting and locking: they do not depend on each other.
    let mut build_task = Some(session.spawn(build_artifact(stage, &revision, build.rebuild)));
    let mut id = String::new();
    let result = session.connected(Upload { delta: stage.build.delta, store }, async |connected: Connected<'_>| {
        let session = connected.session;
        // Lock first; the release id is chosen while holding the lock, so it is new on every
        // host even when two deploys of one commit follow each other within a second.
        let lock_plan = plan_for("");
        with_lock(connected.context, connected.clock, stage, &lock_plan, roll.lock_wait, async |locker, clock| {
            id = unique_id(connected.live.as_ref(), stage, &session.release_hosts[0], &revision.commit).await;
            let plan = plan_for(&id);
            session.report.event(&Event::Started {
                kind: "deploy",
                app: stage.app.name.clone(),
                stage: stage.stage.clone(),
                release: id.clone(),
                commit: Some(revision.commit.clone()),
                hosts: session.hosts.clone(),
            });
            let started = session.summary(&id, Some(&revision.commit), "started", None, None);
            session.announce(NotifyOn::Start, &started).await;
            let runner = Runner::new(connected.context.clone(), stage, &plan).after_lock(locker);
            Ok(runner.run(clock, build_task.take()).await?)
        })
        .await
    });
    if let Some(task) = build_task {
        task.abort();
    }
    session.finish(result, &id, Some(&revision.commit))
}

/// Asks before deploying to a stage with `confirm = true`, at a terminal, unless `--yes`.
/// Opens `[artifact] store` (reads the S3 credentials) before anything is contacted: a
/// store that cannot be used is bad input (exit 2).
fn open_store(cfg: &crate::config::Config) -> Result<Option<std::sync::Arc<artifact::ArtifactStore>>, Error> {
    let Some(store) = &cfg.stage.store else { return Ok(None) };
    let env = |name: &str| std::env::var(name).ok();
    artifact::ArtifactStore::open(store, &cfg.stage.app.name, &env).map(|opened| Some(std::sync::Arc::new(opened))).map_err(|message| Error::Usage {
        message: format!("artifact store {}: {message}", store.shown()),
        hint: Some(match store.kind {
            crate::config::StoreKind::S3 { .. } => "export AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or name a profile of ~/.aws/credentials in `[artifact] profile` or AWS_PROFILE".into(),
            crate::config::StoreKind::Http { .. } => "check `[artifact] store`".into(),
        }),
    })
}

fn confirmed(stage: &StageConfig, revision: &Revision, assume_yes: bool) -> bool {
    if !stage.confirm || assume_yes || !std::io::stdin().is_terminal() {
        return true;
    }
    let apps = stage.hosts.iter().filter(|host| host.has(crate::config::Role::App) && stage.changes(host)).count();
    let short = &revision.commit[..12];
    eprint!("Deploy {} {short} to {} ({apps} app hosts)? [y/N] ", stage.app.name, stage.stage);
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "Y" | "yes")
}

/// The build, as a task of its own.
fn build_artifact(stage: &StageConfig, revision: &Revision, rebuild: bool) -> impl Future<Output = Built> + use<> {
    let env = crate::plan::build_env(stage, &revision.commit);
    let (app, repository, commit) = (stage.app.name.clone(), stage.app.repository.clone(), revision.commit.clone());
    let (commands, exclude) = (stage.build.commands.clone(), stage.build.exclude.clone());
    let shared: Vec<String> = stage.shared.dirs.iter().chain(&stage.shared.files).cloned().collect();
    async move {
        let env: Vec<(&str, &str)> = env.iter().map(|(name, value)| (*name, value.as_str())).collect();
        let spec = BuildSpec {
            app: &app,
            repository: &repository,
            commit: &commit,
            commands: &commands,
            exclude: &exclude,
            shared: &shared,
            env: &env,
            rebuild,
        };
        let started = Instant::now();
        let cache = artifact::cache_dir()?;
        artifact::build(&spec, &cache).await.map(|built| (built, started.elapsed()))
    }
}

/// A release id (UTC time + short sha) that no release folder on `host` has yet.
async fn unique_id(live: &Live, stage: &StageConfig, host: &str, commit: &str) -> String {
    let layout = crate::remote::Layout::new(&stage.app.path);
    let listed = live.run(&crate::remote::Target::host(host), &crate::remote::release::list(&layout), None).await;
    let existing = listed.map(|out| crate::remote::release::release_ids(&out.stdout)).unwrap_or_default();
    loop {
        let id = crate::release_id::release_id(SystemTime::now(), commit);
        if !existing.contains(&id) {
            return id;
        }
        // Same commit, same second: the next second gives a new id.
        let ms =
            SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|since| since.subsec_millis()).unwrap_or(0);
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(1000 - ms) + 5)).await;
    }
}
