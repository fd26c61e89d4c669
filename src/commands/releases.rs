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
        super::out(&format!("{}\n", cfg.redact(&v.to_string())));
        return Ok(if agree { 0 } else { 1 });
    }
    super::out(&table(&hosts));
    if !agree {
        super::out("\n");
        for (cur, hs) in &currents {
            super::out(&format!("  hosts disagree: {} on {}\n", hs.join(", "), cur.as_deref().unwrap_or("no release")));
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
    let bad: Vec<&str> = bad_releases(&log);
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

/// The release most hosts are on (hosts can disagree after an interrupted run).
pub fn majority_current(hosts: &[HostReleases]) -> Option<String> {
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for c in hosts.iter().filter_map(|h| h.current.as_deref()) {
        *count.entry(c).or_default() += 1;
    }
    count.into_iter().max_by_key(|(id, n)| (*n, *id)).map(|(id, _)| id.to_string())
}

/// Releases a successful rollback went away from: never chosen again automatically.
fn bad_releases<'a>(log: &[&'a LogEntry]) -> Vec<&'a str> {
    log.iter()
        .filter(|e| e.kind == "rollback" && e.outcome.as_deref() == Some("success"))
        .filter_map(|e| e.from.as_deref())
        .collect()
}

/// The release a rollback goes to: the newest release before the current one that was
/// deployed successfully, was never rolled back from (marked bad), and is present on every
/// host. Returns (target, current).
pub fn rollback_target(hosts: &[HostReleases]) -> Result<(String, Option<String>), String> {
    let current = majority_current(hosts);
    let log: Vec<&LogEntry> = hosts.iter().flat_map(|h| &h.log).collect();
    let bad: Vec<&str> = bad_releases(&log).into_iter().chain(current.as_deref()).collect();
    let good = |id: &str| log.iter().any(|e| e.release == id && e.outcome.as_deref() == Some("success"));
    let everywhere = |id: &str| hosts.iter().all(|h| h.present.iter().any(|p| p == id));
    let mut ids: Vec<&str> = log.iter().map(|e| e.release.as_str()).collect();
    ids.sort();
    ids.dedup();
    let older_than_current = |id: &&str| current.as_deref().is_none_or(|c| *id < c);
    ids.into_iter()
        .rev()
        .filter(older_than_current)
        .find(|id| !bad.contains(id) && good(id) && everywhere(id))
        .map(|id| (id.to_string(), current.clone()))
        .ok_or_else(|| {
            format!(
                "no earlier good release present on every host to roll back to (current: {})",
                current.as_deref().unwrap_or("none")
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(kind: &str, release: &str, from: Option<&str>) -> LogEntry {
        LogEntry {
            kind: kind.into(),
            release: release.into(),
            commit: None,
            who: None,
            when: None,
            outcome: Some("success".into()),
            from: from.map(String::from),
        }
    }

    fn host(current: &str, present: &[&str], log: Vec<LogEntry>) -> HostReleases {
        HostReleases {
            host: "web1".into(),
            current: Some(current.into()),
            present: present.iter().map(|s| s.to_string()).collect(),
            log,
            error: None,
        }
    }

    const A: &str = "20261101T000000Z-aaaaaaa";
    const B: &str = "20261102T000000Z-bbbbbbb";
    const C: &str = "20261103T000000Z-ccccccc";

    #[test]
    fn previous_good_release_and_no_bounce() {
        let log = vec![entry("deploy", A, None), entry("deploy", B, None), entry("deploy", C, None)];
        let h = host(C, &[A, B, C], log.clone());
        assert_eq!(rollback_target(&[h]).unwrap().0, B);
        // After rolling back C → B, the next rollback goes to A, not back to C.
        let mut log2 = log.clone();
        log2.push(entry("rollback", B, Some(C)));
        let h = host(B, &[A, B, C], log2);
        assert_eq!(rollback_target(&[h]).unwrap().0, A);
        // A release missing on one host is skipped.
        let h1 = host(C, &[A, B, C], log.clone());
        let mut h2 = host(C, &[A, C], log.clone());
        h2.host = "web2".into();
        assert_eq!(rollback_target(&[h1, h2]).unwrap().0, A);
        // Nothing before the first release.
        let h = host(A, &[A], vec![entry("deploy", A, None)]);
        assert!(rollback_target(&[h]).is_err());
    }
}
