//! `deploy STAGE`: plan, build while connecting and locking, run, report.

use super::{connect, reporter, runtime};
use crate::artifact::{self, BuildSpec};
use crate::cli::{Global, batch_override, load};
use crate::config::NotifyOn;
use crate::error::Error;
use crate::plan::{self, DeployInput};
use crate::report::summary::Run;
use crate::report::{Event, Tally};
use crate::runner::{Clock, Ctx, Deploy};
use crate::transport::{Http, Live, Transport};
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
    let owner = crate::who::owner(stage, SystemTime::now());
    let input = |id: &'_ str| -> plan::Plan {
        plan::deploy(
            s,
            &DeployInput {
                release: id,
                revision: &revision,
                owner: &owner,
                batch,
                skip_migrations: g.skip_migrations,
                no_ban: g.no_ban,
                upload_parallel: 8,
            },
        )
    };
    let hosts: Vec<String> = s.hosts.iter().map(|h| h.name.clone()).collect();
    let release_hosts: Vec<String> = s.hosts.iter().filter(|h| h.gets_release()).map(|h| h.name.clone()).collect();
    let tally = Tally::new(reporter(g, &cfg, &release_hosts));
    let report: Arc<dyn crate::report::Reporter> = tally.clone();
    let who = format!("{}@{}", owner.user, owner.machine);
    let summary =
        |release: &str, outcome: &str, exit_code: Option<i32>, clock: Option<&Clock>, message: Option<String>| Run {
            kind: "deploy",
            app: s.app.name.clone(),
            stage: stage.to_string(),
            release: release.to_string(),
            commit: Some(revision.commit.clone()),
            who: who.clone(),
            outcome: outcome.to_string(),
            exit_code,
            took: clock.map(|c| c.elapsed()).unwrap_or_default(),
            phases: clock.map(|c| c.phases.clone()).unwrap_or_default(),
            hosts: tally.results().into_iter().filter(|(h, _)| release_hosts.contains(h)).collect(),
            message,
        };
    let rt = runtime()?;
    let mut id = String::new();
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
        let rebuild = g.rebuild;
        let build = tokio::spawn(async move {
            let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let spec = BuildSpec {
                app: &app,
                repository: &repo,
                commit: &commit,
                commands: &commands,
                exclude: &exclude,
                env: &env_ref,
                rebuild,
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
        for h in &hosts {
            report.event(&Event::Done {
                host: h.clone(),
                what: plan::What::Connect,
                on: h.clone(),
                took: t0.elapsed(),
            });
        }
        report.event(&Event::PhaseFinished { phase: plan::Phase::Connect, took: t0.elapsed() });
        clock.phases.push((plan::Phase::Connect, t0.elapsed()));
        let sockets = ssh.control_sockets();
        let live = Arc::new(Live { ssh, http: Http::new() });
        let mut ctx = Ctx::new(live.clone(), report.clone(), g.verbose > 0);
        ctx.delta = s.build.delta;
        let ctx = Arc::new(ctx);
        let signals = super::watch_signals(ctx.cancel.clone(), report.clone(), sockets, stage.to_string());

        // Lock first; the release id is chosen while holding the lock, so it is new on every
        // host even when two deploys of one commit follow each other within a second.
        let lock_plan = input("");
        let mut locker = Deploy::new(ctx.clone(), s, &lock_plan);
        locker.lock_wait = g.lock_wait;
        let r = match locker.lock_phase(&mut clock).await {
            Ok(()) => {
                id = unique_id(&live, s, &release_hosts[0], &revision.commit).await;
                let p = input(&id);
                report.event(&Event::Started {
                    kind: "deploy",
                    app: s.app.name.clone(),
                    stage: stage.into(),
                    release: id.clone(),
                    commit: Some(revision.commit.clone()),
                    hosts: hosts.clone(),
                });
                super::announce(
                    s,
                    NotifyOn::Start,
                    &summary(&id, "started", None, None, None),
                    &cfg.redactions,
                    report.as_ref(),
                )
                .await;
                let mut run = Deploy::new(ctx.clone(), s, &p).after_lock(&locker);
                run.auto_rollback = !g.no_auto_rollback;
                run.run(&mut clock, Some(build)).await
            }
            Err(e) => {
                build.abort();
                Err(e)
            }
        };
        signals.abort();
        drop(locker);
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
    let outcome = match code {
        0 => "deployed",
        1 => "failed, every host back on a serving release",
        _ => "failed",
    };
    let message = r.as_ref().err().map(|e| cfg.redact(e.to_string().trim_start_matches("error: ")));
    let run = summary(&id, outcome, Some(code), Some(&clock), message);
    super::github_summary(&run, &cfg.redactions, report.as_ref());
    let moment = if code == 0 { NotifyOn::Success } else { NotifyOn::Failure };
    rt.block_on(super::announce(s, moment, &run, &cfg.redactions, report.as_ref()));
    report.event(&Event::Finished {
        outcome: if code == 0 { "deployed" } else { "failed" },
        exit_code: code,
        took: clock.elapsed(),
        phases: clock.phases.clone(),
        release: id.clone(),
    });
    r.map(|()| 0)
}

/// A release id (UTC time + short sha) that no release folder on `host` has yet.
async fn unique_id(live: &Live, s: &crate::config::StageConfig, host: &str, commit: &str) -> String {
    let layout = crate::remote::Layout::new(&s.app.path);
    let existing = live
        .run(&crate::plan::Target::Host(host.to_string()), &crate::remote::release::list(&layout), None)
        .await
        .map(|o| o.stdout)
        .unwrap_or_default();
    loop {
        let id = crate::release_id::release_id(SystemTime::now(), commit);
        if !existing.lines().any(|l| l.trim() == id) {
            return id;
        }
        // Same commit, same second: the next second gives a new id.
        let ms = SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_millis()).unwrap_or(0);
        tokio::time::sleep(std::time::Duration::from_millis(u64::from(1000 - ms) + 5)).await;
    }
}
