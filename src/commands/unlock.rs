//! `deploy unlock STAGE`: after a crash or a second Ctrl-C. Reads the journal on every host,
//! puts drained hosts back in service (after a health check), reports hosts whose `current`
//! differs from the others, removes the lock.

use super::connect::connect;
use super::history::read_host;
use crate::error::Error;
use crate::remote::{Layout, Target, journal, lock};
use crate::report::{Event, Reporter};
use crate::runner::{Context, restore};
use crate::settings::Settings;
use crate::transport::{Live, Transport};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Is a process with this pid running here (zombies count as gone)?
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("State:"))
                .map(|line| !line.contains('Z') && !line.contains('X'))
        })
        .unwrap_or(false)
}

pub fn run(settings: &Settings, stage: &str, force: bool) -> Result<i32, Error> {
    let cfg = super::load(settings, stage)?;
    let (hosts, release_hosts) = super::host_names(&cfg);
    let report = super::reporter(settings, &cfg, &release_hosts);
    let started = std::time::Instant::now();
    let unlocked = super::runtime()?.block_on(async {
        let live = Arc::new(Live::new(connect(&cfg.stage, &hosts).await?, cfg.secrets.clone(), cfg.exports.clone()));
        let context = Context::new(live.clone(), report.clone(), settings.verbose);
        let result = unlock(&context, &cfg.stage, &release_hosts, force, report.as_ref()).await;
        drop(context);
        if let Ok(live) = Arc::try_unwrap(live) {
            live.ssh.close().await;
        }
        result
    });
    let code = unlocked.as_ref().map_or_else(Error::code, |code| *code);
    report.event(&Event::Finished {
        outcome: if code == 0 { "unlocked" } else { "not unlocked" },
        exit_code: code,
        took: started.elapsed(),
        phases: vec![],
        release: "-".into(),
    });
    unlocked
}

async fn unlock(
    context: &Context<Live>,
    cfg: &crate::config::StageConfig,
    release_hosts: &[String],
    force: bool,
    report: &dyn Reporter,
) -> Result<i32, Error> {
    let stage = &cfg.stage;
    let layout = Layout::new(&cfg.app.path);
    let live = context.transport.as_ref();

    // Who holds the lock, and is it alive? Held from this machine: is its process running.
    // From another machine (a laptop, a CI runner): has it renewed its lease lately.
    let me = crate::who::machine();
    for host in release_hosts {
        let Ok(held) = live.run(&Target::host(host), &lock::holder(&layout), None).await else { continue };
        if !held.ok() {
            continue;
        }
        let owner = lock::holder_owner(&held.stdout);
        let lease = lock::lease_age(&held.stdout).filter(|age| *age < lock::LEASE_FRESH);
        let live_holder = match lock::owner_process(owner) {
            // Held by hand (`deploy lock acquire`): until `deploy lock release`.
            _ if lock::is_manual(owner) => true,
            Some((machine, pid)) if machine == me => pid > 0 && alive(pid) && pid != u64::from(std::process::id()),
            _ => lease.is_some(),
        };
        if live_holder && !force {
            return Err(Error::Busy { host: host.clone(), owner: owner.to_string(), lease });
        }
        if live_holder {
            report.event(&Event::Warning {
                host: Some(host.clone()),
                message:
                    "--force: the deploy holding this lock is alive; it may still drain, switch or undrain hosts while \
                          this unlock restores them, and it will not remove a lock it no longer holds"
                        .into(),
            });
        }
    }

    // Where each host stands.
    let mut currents: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut problems = Vec::new();
    for name in release_hosts {
        let releases = read_host(live, &layout, name).await;
        currents.insert(name.clone(), releases.current.clone());
        let read = live.run(&Target::host(name), &journal::read(&layout), None).await;
        let Some(entry) = read.ok().filter(|out| out.ok()).and_then(|out| journal::parse(&out.stdout)) else {
            continue;
        };
        let host = cfg.hosts.iter().find(|host| &host.name == name).expect("a host of the stage");
        let release = releases.current.clone().unwrap_or_default();
        report.event(&Event::Warning {
            host: Some(name.clone()),
            message: format!(
                "journal: interrupted while {} for release {}; now on {}",
                or_unknown(&entry.state),
                or_unknown(&entry.release),
                if release.is_empty() { "no release" } else { &release }
            ),
        });
        // Interrupted after the switch: the activate hooks may not have run.
        match restore(context, cfg, &layout, host, &release, entry.after_switch()).await {
            Ok(()) => report.event(&Event::HostState {
                host: name.clone(),
                release: releases.current.clone(),
                in_service: true,
                note: "healthy again".into(),
            }),
            Err(failure) => {
                let what = failure.what.label();
                problems.push(format!("{name}: still out of service: {what} failed: {}", failure.message));
                report.event(&Event::HostState {
                    host: name.clone(),
                    release: releases.current.clone(),
                    in_service: false,
                    note: format!("{what} failed"),
                });
            }
        }
    }

    // Hosts on another release than the others.
    let mut count: BTreeMap<&Option<String>, usize> = BTreeMap::new();
    for current in currents.values() {
        *count.entry(current).or_default() += 1;
    }
    if count.len() > 1 {
        for (host, current) in &currents {
            report.event(&Event::Warning {
                host: Some(host.clone()),
                message: format!(
                    "on {} ({} of {} hosts are)",
                    current.as_deref().unwrap_or("no release"),
                    count[current],
                    currents.len()
                ),
            });
        }
        report.event(&Event::Warning {
            host: None,
            message: format!(
                "hosts disagree: `deploy {stage}` or `deploy rollback {stage}` brings them onto one release"
            ),
        });
    }

    // The lock stays while a host is out of service, unless forced.
    if problems.is_empty() || force {
        for host in release_hosts {
            let _ = live.run(&Target::host(host), &lock::release(&layout), None).await;
        }
    }
    if !problems.is_empty() {
        return Err(Error::NotRestored {
            problems,
            fix: format!(
                "fix the host (its health check must pass), then run `deploy unlock {stage}` again; `--force` drops the lock anyway"
            ),
        });
    }
    let note = if count.len() > 1 { " (on different releases)" } else { "" };
    eprintln!("unlocked {stage}: every host in service{note}");
    Ok(0)
}

fn or_unknown(text: &str) -> &str {
    if text.is_empty() { "?" } else { text }
}
