//! `deploy unlock STAGE`: after a crash or a second Ctrl-C. Reads the journal on every host,
//! puts drained hosts back in service (after a health check), reports hosts whose `current`
//! differs from the others, removes the lock.

use super::releases::read_host;
use super::{connect, reporter, runtime};
use crate::cli::{Global, load};
use crate::error::Error;
use crate::plan::Target;
use crate::remote::{Layout, journal, lock};
use crate::report::Event;
use crate::runner::{Ctx, restore};
use crate::transport::{Http, Live, Transport};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Is a process with this pid running here (zombies count as gone)?
fn alive(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("State:")).map(|l| !l.contains('Z') && !l.contains('X')))
        .unwrap_or(false)
}

pub fn run(g: &Global, stage: &str, force: bool) -> Result<i32, Error> {
    let cfg = load(g, stage)?;
    let s = &cfg.stage;
    let hosts: Vec<String> = s.hosts.iter().map(|h| h.name.clone()).collect();
    let release_hosts: Vec<String> = s.hosts.iter().filter(|h| h.gets_release()).map(|h| h.name.clone()).collect();
    let report = reporter(g, &cfg, &release_hosts);
    let layout = Layout::new(&s.app.path);
    let rt = runtime()?;
    let started = std::time::Instant::now();
    let r = rt.block_on(async {
        let ssh = connect(s, &hosts).await?;
        let live = Arc::new(Live { ssh, http: Http::new() });
        let ctx = Arc::new(Ctx::new(live.clone(), report.clone(), g.verbose > 0));
        let on = |h: &str| Target::Host(h.to_string());

        // Who holds the lock, and is it still running here?
        let me = crate::who::machine();
        for h in &release_hosts {
            let o = live.run(&on(h), &lock::owner(&layout), None).await;
            let Ok(o) = o else { continue };
            if !o.ok() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap_or_default();
            let pid = v["pid"].as_u64().unwrap_or(0);
            if v["machine"].as_str() == Some(me.as_str()) && pid > 0 && alive(pid) && pid != u64::from(std::process::id()) && !force {
                return Err(Error::Busy { host: h.clone(), owner: o.stdout.trim().to_string() });
            }
        }

        // Where each host stands.
        let mut currents: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut problems = Vec::new();
        for name in &release_hosts {
            let r = read_host(&live.ssh, &layout, name).await;
            currents.insert(name.clone(), r.current.clone());
            let j = live.run(&on(name), &journal::read(&layout), None).await;
            let entry: Option<serde_json::Value> =
                j.ok().filter(|o| o.ok()).and_then(|o| serde_json::from_str(o.stdout.trim()).ok());
            let Some(entry) = entry else {
                continue;
            };
            let host = s.hosts.iter().find(|h| &h.name == name).expect("host");
            let release = r.current.clone().unwrap_or_default();
            report.event(&Event::Warning {
                host: Some(name.clone()),
                message: format!(
                    "journal: interrupted while {} for release {}; now on {}",
                    entry["state"].as_str().unwrap_or("?"),
                    entry["release"].as_str().unwrap_or("?"),
                    if release.is_empty() { "no release" } else { &release }
                ),
            });
            // Interrupted after the switch: the activate hooks may not have run.
            let state = entry["state"].as_str().unwrap_or("");
            let activate = state == "switching" || state == "undraining";
            match restore(&ctx, s, &layout, host, &release, activate).await {
                Ok(()) => report.event(&Event::HostState {
                    host: name.clone(),
                    release: r.current.clone(),
                    in_service: true,
                    note: "healthy again".into(),
                }),
                Err(f) => {
                    problems.push(format!("{name}: still out of service: {} failed: {}", f.what.label(), f.message));
                    report.event(&Event::HostState {
                        host: name.clone(),
                        release: r.current.clone(),
                        in_service: false,
                        note: format!("{} failed", f.what.label()),
                    });
                }
            }
        }

        // Hosts on another release than the others.
        let mut count: BTreeMap<&Option<String>, usize> = BTreeMap::new();
        for c in currents.values() {
            *count.entry(c).or_default() += 1;
        }
        if count.len() > 1 {
            for (h, c) in &currents {
                report.event(&Event::Warning {
                    host: Some(h.clone()),
                    message: format!(
                        "on {} ({} of {} hosts are)",
                        c.as_deref().unwrap_or("no release"),
                        count[c],
                        currents.len()
                    ),
                });
            }
            report.event(&Event::Warning {
                host: None,
                message: format!("hosts disagree: `deploy {stage}` or `deploy rollback {stage}` brings them onto one release"),
            });
        }

        // The lock stays while a host is out of service, unless forced.
        if problems.is_empty() || force {
            for h in &release_hosts {
                let _ = live.run(&on(h), &lock::release(&layout), None).await;
            }
        }
        drop(ctx);
        if let Ok(live) = Arc::try_unwrap(live) {
            live.ssh.close().await;
        }
        if problems.is_empty() {
            eprintln!("unlocked {stage}: every host in service{}", if count.len() > 1 { " (on different releases)" } else { "" });
            Ok(0)
        } else {
            Err(Error::NotRestored {
                message: problems.join("\n"),
                fix: format!(
                    "fix the host (its health check must pass), then run `deploy unlock {stage}` again; `--force` drops the lock anyway"
                ),
            })
        }
    });
    let code = match &r {
        Ok(c) => *c,
        Err(e) => e.code(),
    };
    report.event(&Event::Finished {
        outcome: if code == 0 { "unlocked" } else { "not unlocked" },
        exit_code: code,
        took: started.elapsed(),
        phases: vec![],
        release: "-".into(),
    });
    r
}
