//! `deploy STAGE`: plan, build while connecting and locking, run, report.

use super::{connect, reporter, runtime};
use crate::artifact::{self, BuildSpec};
use crate::cli::{Global, batch_override, load};
use crate::error::Error;
use crate::plan::{self, DeployInput};
use crate::report::Event;
use crate::runner::{Clock, Ctx, Deploy};
use crate::transport::{Http, Live};
use std::io::{BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub fn run(g: &Global, stage: &str) -> Result<i32, Error> {
    let cfg = load(g, stage)?;
    let batch = batch_override(g, &cfg)?;
    let s = &cfg.stage;
    let requested = g.revision.clone().or_else(|| s.app.revision.clone()).unwrap_or_else(|| "HEAD".into());
    let revision = crate::revision::resolve(&s.app.repository, &requested)?;
    if requested == "HEAD" && !g.allow_dirty {
        let files = crate::revision::uncommitted(&s.app.repository)?;
        if !files.is_empty() {
            return Err(Error::Dirty { repository: s.app.repository.clone(), files });
        }
    }
    let apps = s.hosts.iter().filter(|h| h.has(crate::config::Role::App)).count();
    if s.confirm && !g.yes && !super::unattended() && std::io::stdin().is_terminal() {
        eprint!("Deploy {} {} to {stage} ({apps} app hosts)? [y/N] ", s.app.name, &revision.commit[..12]);
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            eprintln!("not deployed");
            return Ok(1);
        }
    }

    let started = Instant::now();
    let now = SystemTime::now();
    let id = crate::release_id::release_id(now, &revision.commit);
    let owner = crate::who::owner(stage, now);
    let p = plan::deploy(
        s,
        &DeployInput {
            release: &id,
            revision: &revision,
            owner: &owner,
            batch,
            skip_migrations: g.skip_migrations,
            no_ban: g.no_ban,
            upload_parallel: 8,
        },
    );
    let hosts: Vec<String> = s.hosts.iter().map(|h| h.name.clone()).collect();
    let release_hosts: Vec<String> = s.hosts.iter().filter(|h| h.gets_release()).map(|h| h.name.clone()).collect();
    let report = reporter(g, &cfg, &release_hosts);
    report.event(&Event::Started {
        kind: "deploy",
        app: s.app.name.clone(),
        stage: stage.into(),
        release: id.clone(),
        commit: Some(revision.commit.clone()),
        hosts: hosts.clone(),
    });
    let rt = runtime()?;
    let result = rt.block_on(async {
        // Build while connecting and locking: they do not depend on each other.
        let env: Vec<(&'static str, String)> = plan::build_env(s, &revision.commit);
        let (app, repo, commit, commands, exclude) = (
            s.app.name.clone(),
            s.app.repository.clone(),
            revision.commit.clone(),
            s.build.commands.clone(),
            s.build.exclude.clone(),
        );
        let build = tokio::spawn(async move {
            let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let spec = BuildSpec {
                app: &app,
                repository: &repo,
                commit: &commit,
                commands: &commands,
                exclude: &exclude,
                env: &env_ref,
            };
            let t = Instant::now();
            artifact::build(&spec, &artifact::cache_dir()).await.map(|a| (a, t.elapsed()))
        });
        let mut clock = Clock::new(started);
        let t0 = Instant::now();
        report.event(&Event::PhaseStarted { phase: plan::Phase::Connect });
        let ssh = match connect(s, &hosts).await {
            Ok(c) => c,
            Err(e) => {
                build.abort();
                return (Err(e), clock);
            }
        };
        report.event(&Event::PhaseFinished { phase: plan::Phase::Connect, took: t0.elapsed() });
        clock.phases.push((plan::Phase::Connect, t0.elapsed()));
        let sockets = ssh.control_sockets();
        let live = Arc::new(Live { ssh, http: Http::new() });
        let ctx = Arc::new(Ctx::new(live.clone(), report.clone(), g.verbose > 0));
        let signals = super::watch_signals(ctx.cancel.clone(), report.clone(), sockets, stage.to_string());
        let mut run = Deploy::new(ctx.clone(), s, &p);
        run.auto_rollback = !g.no_auto_rollback;
        run.lock_wait = g.lock_wait;
        let r = run.run(&mut clock, Some(build)).await;
        signals.abort();
        drop(run);
        drop(ctx);
        if let Ok(live) = Arc::try_unwrap(live) {
            live.ssh.close().await;
        }
        (r, clock)
    });
    let (r, clock) = result;
    let code = match &r {
        Ok(()) => 0,
        Err(e) => e.code(),
    };
    report.event(&Event::Finished {
        outcome: if code == 0 { "deployed" } else { "failed" },
        exit_code: code,
        took: clock.elapsed(),
        phases: clock.phases.clone(),
        release: id,
    });
    r.map(|()| 0)
}
