//! `deploy releases STAGE`: the releases on every host, from their release logs.

use super::connect::connect;
use super::history::{HostReleases, bad_releases, read_host};
use crate::error::Error;
use crate::remote::Layout;
use crate::remote::release::LogEntry;
use crate::settings::{OutputMode, Settings};
use crate::transport::Live;
use std::collections::BTreeMap;

pub fn run(settings: &Settings, stage: &str) -> Result<i32, Error> {
    let cfg = super::load(settings, stage)?;
    let (_, names) = super::host_names(&cfg);
    let layout = Layout::new(&cfg.stage.app.path);
    let hosts: Vec<HostReleases> = super::runtime()?.block_on(async {
        let live = Live::new(connect(&cfg.stage, &names).await?, cfg.secrets.clone(), cfg.exports.clone());
        let mut found = Vec::new();
        for name in &names {
            found.push(read_host(&live, &layout, name).await);
        }
        live.ssh.close().await;
        Ok::<_, Error>(found)
    })?;
    let currents: BTreeMap<Option<String>, Vec<String>> = hosts.iter().fold(BTreeMap::new(), |mut by, host| {
        by.entry(host.current.clone()).or_insert_with(Vec::new).push(host.host.clone());
        by
    });
    let agree = currents.len() == 1;
    if settings.output == OutputMode::Json {
        let value = serde_json::json!({"stage": stage, "hosts": hosts, "agree": agree});
        super::out(&format!("{}\n", cfg.redact_json(value)));
        return Ok(if agree { 0 } else { 1 });
    }
    super::out(&table(&hosts));
    if !agree {
        super::out("\n");
        for (current, on) in &currents {
            let release = current.as_deref().unwrap_or("no release");
            super::out(&format!("  hosts disagree: {} on {release}\n", on.join(", ")));
        }
        return Ok(1);
    }
    Ok(0)
}

/// Releases (newest first) × hosts: `*` current, `+` present, `!` marked bad by a rollback.
pub fn table(hosts: &[HostReleases]) -> String {
    let mut ids: Vec<String> = hosts.iter().flat_map(|host| host.present.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    ids.reverse();
    let log: Vec<&LogEntry> = hosts.iter().flat_map(|host| &host.log).collect();
    let bad: Vec<&str> = bad_releases(&log);
    let info = |id: &str| {
        log.iter()
            .rev()
            .find(|entry| entry.release == id && entry.kind != "rollback")
            .or_else(|| log.iter().rev().find(|entry| entry.release == id))
    };
    let mut text = String::new();
    let width = hosts.iter().map(|host| host.host.len()).max().unwrap_or(4).max(13);
    text.push_str(&format!("{:<26} {:<8} {:<21} {:<18}", "release", "commit", "when", "who"));
    for host in hosts {
        text.push_str(&format!(" {:<width$}", host.host));
    }
    text.push('\n');
    for id in &ids {
        let entry = info(id);
        let commit =
            entry.and_then(|entry| entry.commit.as_deref()).map(|commit| &commit[..commit.len().min(7)]).unwrap_or("");
        let when = entry.and_then(|entry| entry.when.as_deref()).unwrap_or("");
        let who = entry.and_then(|entry| entry.who.as_deref()).unwrap_or("");
        text.push_str(&format!("{id:<26} {commit:<8} {when:<21} {who:<18}"));
        for host in hosts {
            let mark = if host.current.as_deref() == Some(id) {
                "* current"
            } else if host.present.contains(id) {
                if bad.contains(&id.as_str()) { "! rolled back" } else { "+" }
            } else {
                "-"
            };
            text.push_str(&format!(" {mark:<width$}"));
        }
        text.push('\n');
    }
    for host in hosts {
        if let Some(err) = &host.error {
            text.push_str(&format!("{}: {err}\n", host.host));
        }
    }
    text
}
