//! `deploy rollback STAGE [--to ID]`: every app host back to the previous good release (or
//! the one given), rolled like a deploy; no build, no upload, no migrations.

use super::releases::{HostReleases, read_host, rollback_target};
use super::{connect, reporter, runtime};
use crate::cli::{Global, batch_override, load};
use crate::config::NotifyOn;
use crate::error::Error;
use crate::plan::{self, Phase, RollbackInput};
use crate::remote::Layout;
use crate::report::summary::Run;
use crate::report::{Event, Tally};
use crate::runner::{Clock, Ctx, Deploy};
use crate::transport::{Http, Live};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

pub fn run(g: &Global, stage: &str, to: Option<&str>) -> Result<i32, Error> {
    let cfg = load(g, stage)?;
    let batch = batch_override(g, &cfg)?;
    let s = &cfg.stage;
    let started = Instant::now();
    let now = SystemTime::now();
    let owner = crate::who::owner(stage, now);
    let hosts: Vec<String> = s.hosts.iter().map(|h| h.name.clone()).collect();
    let release_hosts: Vec<String> = s.hosts.iter().filter(|h| h.gets_release()).map(|h| h.name.clone()).collect();
    let tally = Tally::new(reporter(g, &cfg, &release_hosts));
    let report: Arc<dyn crate::report::Reporter> = tally.clone();
    let layout = Layout::new(&s.app.path);
    let rt = runtime()?;
    let mut clock = Clock::new(started);
    let mut target_id = String::from("-");
    let r: Result<(), Error> = rt.block_on(async {
        let t0 = Instant::now();
        report.event(&Event::PhaseStarted { phase: Phase::Connect });
        let ssh = connect(s, &hosts).await?;
        for h in &hosts {
            report.event(&Event::Done {
                host: h.clone(),
                what: crate::plan::What::Connect,
                on: h.clone(),
                took: t0.elapsed(),
            });
        }
        report.event(&Event::PhaseFinished { phase: Phase::Connect, took: t0.elapsed() });
        clock.phases.push((Phase::Connect, t0.elapsed()));
        let sockets = ssh.control_sockets();
        let live = Arc::new(Live { ssh, http: Http::new() });
        let ctx = Arc::new(Ctx::new(live.clone(), report.clone(), g.verbose > 0));
        let signals = super::watch_signals(ctx.cancel.clone(), report.clone(), sockets, stage.to_string());
        // Lock first, then read where every host is: nothing can change under the choice.
        let lock_plan =
            plan::rollback(s, &RollbackInput { target: None, from: None, owner: &owner, batch, no_ban: g.no_ban });
        let mut locker = Deploy::new(ctx.clone(), s, &lock_plan);
        locker.lock_wait = g.lock_wait;
        let r = async {
            locker.lock_phase(&mut clock).await?;
            let mut found: Vec<HostReleases> = Vec::new();
            for h in &release_hosts {
                found.push(read_host(&live.ssh, &layout, h).await);
            }
            let from = super::releases::majority_current(&found);
            let target = match to {
                Some(id) => {
                    let missing: Vec<&str> =
                        found.iter().filter(|h| !h.present.iter().any(|p| p == id)).map(|h| h.host.as_str()).collect();
                    if !missing.is_empty() {
                        return Err(Error::Usage {
                            message: format!("release {id} is not on {}", missing.join(", ")),
                            hint: Some(format!("`deploy releases {stage}` lists the releases each host has")),
                        });
                    }
                    id.to_string()
                }
                None => {
                    rollback_target(&found)
                        .map_err(|m| Error::Usage {
                            message: m,
                            hint: Some(format!("`deploy releases {stage}` shows what each host has")),
                        })?
                        .0
                }
            };
            if from.as_deref() == Some(target.as_str())
                && found.iter().all(|h| h.current.as_deref() == Some(target.as_str()))
            {
                return Err(Error::Usage { message: format!("every host is already on {target}"), hint: None });
            }
            target_id = target.clone();
            let p = plan::rollback(
                s,
                &RollbackInput { target: Some(&target), from: from.as_deref(), owner: &owner, batch, no_ban: g.no_ban },
            );
            report.event(&Event::Started {
                kind: "rollback",
                app: s.app.name.clone(),
                stage: stage.into(),
                release: target.clone(),
                commit: None,
                hosts: hosts.clone(),
            });
            report.event(&Event::Warning {
                host: None,
                message: format!(
                    "rolling back from {} to {target}: code only; migrations are NOT reversed",
                    from.as_deref().unwrap_or("(none)")
                ),
            });
            let mut run = Deploy::new(ctx.clone(), s, &p).after_lock(&locker);
            run.auto_rollback = !g.no_auto_rollback;
            {
                // If the rollback fails half-way, hosts go back to where they were.
                let mut st = run.state.lock().unwrap();
                for h in &found {
                    st.previous.insert(h.host.clone(), h.current.clone());
                }
            }
            run.run(&mut clock, None).await
        }
        .await;
        if matches!(r, Err(Error::Usage { .. })) {
            locker.unlock_all().await;
        }
        signals.abort();
        drop(locker);
        drop(ctx);
        if let Ok(live) = Arc::try_unwrap(live) {
            live.ssh.close().await;
        }
        r
    });
    let code = match &r {
        Ok(()) => 0,
        Err(e) => e.code(),
    };
    let run = Run {
        kind: "rollback",
        app: s.app.name.clone(),
        stage: stage.to_string(),
        release: target_id.clone(),
        commit: None,
        who: format!("{}@{}", owner.user, owner.machine),
        outcome: if code == 0 { "rolled back".into() } else { "failed".into() },
        exit_code: Some(code),
        took: clock.elapsed(),
        phases: clock.phases.clone(),
        hosts: tally.results().into_iter().filter(|(h, _)| release_hosts.contains(h)).collect(),
        message: r.as_ref().err().map(|e| cfg.redact(e.to_string().trim_start_matches("error: "))),
    };
    super::github_summary(&run, &cfg.redactions, report.as_ref());
    let moment = if code == 0 { NotifyOn::Rollback } else { NotifyOn::Failure };
    rt.block_on(super::announce(s, moment, &run, &cfg.redactions, report.as_ref()));
    report.event(&Event::Finished {
        outcome: if code == 0 { "rolled back" } else { "failed" },
        exit_code: code,
        took: clock.elapsed(),
        phases: clock.phases.clone(),
        release: target_id.clone(),
    });
    r.map(|()| 0)
}
