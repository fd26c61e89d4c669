//! `deploy releases STAGE`: the releases on every host, from their release logs.

use super::{connect, runtime};
use crate::cli::{Global, Output, load};
use crate::error::Error;
use crate::plan::Target;
use crate::remote::{Layout, release};
use crate::transport::Connections;
use serde::Serialize;
use std::collections::BTreeMap;

/// One line of `.deploy/releases.jsonl`.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct LogEntry {
    #[serde(default)]
    pub kind: String,
    pub release: String,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub who: Option<String>,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    /// For a rollback: the release rolled back from (marked bad).
    #[serde(default)]
    pub from: Option<String>,
}

pub fn parse_log(text: &str) -> Vec<LogEntry> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct HostReleases {
    pub host: String,
    pub current: Option<String>,
    /// Release folders present on the host.
    pub present: Vec<String>,
    pub log: Vec<LogEntry>,
    pub error: Option<String>,
}

pub async fn read_host(ssh: &Connections, layout: &Layout, host: &str) -> HostReleases {
    let on = Target::Host(host.to_string());
    let _ = on;
    let cur = ssh.run(host, &release::current(layout).to_string(), None).await;
    let list = ssh.run(host, &release::list(layout).to_string(), None).await;
    let log = ssh.run(host, &release::log(layout).to_string(), None).await;
    let mut error = None;
    let current = match &cur {
        Ok(o) if o.ok() => o.stdout.trim().rsplit('/').next().map(String::from),
        Ok(_) => None,
        Err(e) => {
            error = Some(e.message.clone());
            None
        }
    };
    let present = match &list {
        Ok(o) if o.ok() => o
            .stdout
            .lines()
            .map(str::trim)
            .filter(|l| crate::release_id::looks_like_release_id(l))
            .map(String::from)
            .collect(),
        _ => vec![],
    };
    let log = match &log {
        Ok(o) if o.ok() => parse_log(&o.stdout),
        _ => vec![],
    };
    HostReleases { host: host.to_string(), current, present, log, error }
}

pub fn run(g: &Global, stage: &str) -> Result<i32, Error> {
    let cfg = load(g, stage)?;
    let s = &cfg.stage;
    let names: Vec<String> = s.hosts.iter().filter(|h| h.gets_release()).map(|h| h.name.clone()).collect();
    let layout = Layout::new(&s.app.path);
    let rt = runtime()?;
    let hosts: Vec<HostReleases> = rt.block_on(async {
        let ssh = connect(s, &names).await?;
        let mut out = Vec::new();
        for n in &names {
            out.push(read_host(&ssh, &layout, n).await);
        }
        ssh.close().await;
        Ok::<_, Error>(out)
    })?;
    let currents: BTreeMap<Option<String>, Vec<String>> = hosts.iter().fold(BTreeMap::new(), |mut m, h| {
        m.entry(h.current.clone()).or_insert_with(Vec::new).push(h.host.clone());
        m
    });
    let agree = currents.len() == 1;
    if crate::commands::output_mode(g) == Output::Json {
        let v = serde_json::json!({"stage": stage, "hosts": hosts, "agree": agree});
        println!("{}", cfg.redact(&v.to_string()));
        return Ok(if agree { 0 } else { 1 });
    }
    print!("{}", table(&hosts));
    if !agree {
        println!();
        for (cur, hs) in &currents {
            println!("  hosts disagree: {} on {}", hs.join(", "), cur.as_deref().unwrap_or("no release"));
        }
        return Ok(1);
    }
    Ok(0)
}

/// Releases (newest first) × hosts: `*` current, `+` present, `!` marked bad by a rollback.
pub fn table(hosts: &[HostReleases]) -> String {
    let mut ids: Vec<String> = hosts.iter().flat_map(|h| h.present.iter().cloned()).collect();
    ids.sort();
    ids.dedup();
    ids.reverse();
    let log: Vec<&LogEntry> = hosts.iter().flat_map(|h| &h.log).collect();
    let bad: Vec<&str> = log.iter().filter_map(|e| e.from.as_deref()).collect();
    let info = |id: &str| {
        log.iter()
            .rev()
            .find(|e| e.release == id && e.kind != "rollback")
            .or_else(|| log.iter().rev().find(|e| e.release == id))
    };
    let mut s = String::new();
    let w = hosts.iter().map(|h| h.host.len()).max().unwrap_or(4).max(13);
    s.push_str(&format!("{:<26} {:<8} {:<21} {:<18}", "release", "commit", "when", "who"));
    for h in hosts {
        s.push_str(&format!(" {:<w$}", h.host));
    }
    s.push('\n');
    for id in &ids {
        let e = info(id);
        let commit = e.and_then(|e| e.commit.as_deref()).map(|c| &c[..c.len().min(7)]).unwrap_or("");
        let when = e.and_then(|e| e.when.as_deref()).unwrap_or("");
        let who = e.and_then(|e| e.who.as_deref()).unwrap_or("");
        s.push_str(&format!("{id:<26} {commit:<8} {when:<21} {who:<18}"));
        for h in hosts {
            let mark = if h.current.as_deref() == Some(id) {
                "* current"
            } else if h.present.contains(id) {
                if bad.contains(&id.as_str()) { "! rolled back" } else { "+" }
            } else {
                "-"
            };
            s.push_str(&format!(" {mark:<w$}"));
        }
        s.push('\n');
    }
    for h in hosts {
        if let Some(e) = &h.error {
            s.push_str(&format!("{}: {e}\n", h.host));
        }
    }
    s
}
