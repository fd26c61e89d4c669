//! `deploy rollback STAGE [--to ID]`: every app host back to the previous good release (or
//! the one given), rolled like a deploy; no build, no upload, no migrations.

use super::history::{HostReleases, contracted_after, newest_current, read_host, rollback_target};
use super::plans;
use super::session::{Connected, RunKind, Session, Upload, with_lock};
use crate::error::Error;
use crate::remote::Layout;
use crate::report::Event;
use crate::runner::Runner;
use crate::settings::{RollOptions, Settings};

pub fn run(settings: &Settings, stage: &str, to: Option<&str>, roll: &RollOptions) -> Result<i32, Error> {
    let mut cfg = super::load(settings, stage)?;
    plans::select(&mut cfg, roll, false)?;
    let batch = plans::batch(roll, &cfg)?;
    let session = Session::start(settings, &cfg, RunKind::Rollback)?;
    let stage = session.stage();
    let layout = Layout::new(&stage.app.path);
    let mut target = String::from("-");
    let result = session.connected(Upload { delta: true, store: None }, async |connected: Connected<'_>| {
        let session = connected.session;
        // Lock first, then read where every host is: nothing can change under the choice.
        let lock_plan = plans::rollback(session.cfg, roll, batch, None, None, &[], &session.owner);
        with_lock(connected.context, connected.clock, stage, &lock_plan, roll.lock_wait, async |locker, clock| {
            let mut found: Vec<HostReleases> = Vec::new();
            for host in &session.release_hosts {
                found.push(read_host(connected.live.as_ref(), &layout, host).await);
            }
            let from = newest_current(&found);
            let chosen = choose(&found, to, &stage.stage)?;
            // Hosts already on the target stay as they are (after a deploy to one host, a
            // rollback puts back that host alone).
            let settled: Vec<String> = found
                .iter()
                .filter(|host| host.current.as_deref() == Some(chosen.as_str()))
                .map(|host| host.host.clone())
                .collect();
            if settled.len() == found.len() {
                return Err(Error::Usage { message: format!("every host is already on {chosen}"), hint: None });
            }
            let contracted = contracted_after(&found, &chosen);
            if !contracted.is_empty() {
                let said = format!(
                    "post_migrate ran for {} after {chosen}: the database was contracted, and the code of {chosen} may need what was removed",
                    contracted.join(", ")
                );
                if !roll.force {
                    return Err(Error::Usage {
                        message: format!("refusing to roll back: {said}"),
                        hint: Some(format!(
                            "check that {chosen} works with today's schema, then: deploy rollback {} --force",
                            stage.stage
                        )),
                    });
                }
                session.report.event(&Event::Warning { host: None, message: format!("{said} (--force)") });
            }
            target = chosen.clone();
            let plan =
                plans::rollback(session.cfg, roll, batch, Some(&chosen), from.as_deref(), &settled, &session.owner);
            session.report.event(&Event::Started {
                kind: "rollback",
                app: stage.app.name.clone(),
                stage: stage.stage.clone(),
                release: chosen.clone(),
                commit: None,
                hosts: session.hosts.clone(),
            });
            session.report.event(&Event::Warning {
                host: None,
                message: format!(
                    "rolling back from {} to {chosen}: code only; migrations are NOT reversed",
                    from.as_deref().unwrap_or("(none)")
                ),
            });
            let runner = Runner::new(connected.context.clone(), stage, &plan).after_lock(locker);
            {
                // If the rollback fails half-way, hosts go back to where they were.
                let mut progress = runner.progress.lock().unwrap();
                for host in &found {
                    progress.previous.insert(host.host.clone(), host.current.clone());
                }
            }
            Ok(runner.run(clock, None).await?)
        })
        .await
    });
    session.finish(result, &target, None)
}

/// The release to roll back to: `--to ID` (present on every host), else the previous good one.
fn choose(found: &[HostReleases], to: Option<&str>, stage: &str) -> Result<String, Error> {
    let Some(id) = to else {
        return rollback_target(found).map(|(target, _)| target).map_err(|message| Error::Usage {
            message,
            hint: Some(format!("`deploy releases {stage}` shows what each host has")),
        });
    };
    let missing: Vec<&str> = found
        .iter()
        .filter(|host| !host.present.iter().any(|present| present == id))
        .map(|host| host.host.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage {
            message: format!("release {id} is not on {}", missing.join(", ")),
            hint: Some(format!("`deploy releases {stage}` lists the releases each host has")),
        });
    }
    Ok(id.to_string())
}
