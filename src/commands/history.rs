//! What each host has: its current release, the release folders, its release log; and what
//! they say together (the release most hosts are on, the release a rollback goes to).

use crate::remote::release::{self, LogEntry};
use crate::remote::{Layout, Target};
use crate::transport::Transport;
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct HostReleases {
    pub host: String,
    pub current: Option<String>,
    /// Release folders present on the host.
    pub present: Vec<String>,
    pub log: Vec<LogEntry>,
    pub error: Option<String>,
}

/// Reads one host's releases, its three commands at once (a host that cannot be read says
/// why in `error`).
pub async fn read_host<T: Transport>(transport: &T, layout: &Layout, host: &str) -> HostReleases {
    let on = Target::host(host);
    let (current, list, log) = (release::current(layout), release::list(layout), release::log(layout));
    let (current, list, log) = tokio::join!(
        transport.run(&on, &current, None),
        transport.run(&on, &list, None),
        transport.run(&on, &log, None)
    );
    let mut error = None;
    let current = match &current {
        Ok(out) if out.ok() => release::current_release(&out.stdout),
        Ok(_) => None,
        Err(err) => {
            error = Some(err.message.clone());
            None
        }
    };
    let present = match &list {
        Ok(out) if out.ok() => release::release_ids(&out.stdout),
        _ => vec![],
    };
    let log = match &log {
        Ok(out) if out.ok() => release::parse_log(&out.stdout),
        _ => vec![],
    };
    HostReleases { host: host.to_string(), current, present, log, error }
}

/// The newest release any host is on: what a rollback undoes. Hosts disagree after a run
/// with `--host`/`--role` or one that was stopped; the rollback then puts back the hosts ahead
/// of the others, not every host one release further back.
pub fn newest_current(hosts: &[HostReleases]) -> Option<String> {
    hosts.iter().filter_map(|host| host.current.clone()).max()
}

/// Releases a successful rollback went away from: never chosen again automatically.
pub fn bad_releases<'a>(log: &[&'a LogEntry]) -> Vec<&'a str> {
    log.iter()
        .filter(|entry| entry.kind == "rollback" && entry.outcome.as_deref() == Some("success"))
        .filter_map(|entry| entry.from.as_deref())
        .collect()
}

/// Releases newer than `target` whose `post_migrate` ran (or failed half-way): the database
/// was contracted for them, and `target`'s code may need what was removed.
pub fn contracted_after(hosts: &[HostReleases], target: &str) -> Vec<String> {
    let mut ids: Vec<String> = hosts
        .iter()
        .flat_map(|host| &host.log)
        .filter(|entry| entry.kind == "deploy" && entry.post_migrate.is_some() && entry.release.as_str() > target)
        .map(|entry| entry.release.clone())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// The release a rollback goes to: the newest release before the current one that was
/// deployed successfully, was never rolled back from (marked bad), and is present on every
/// host. Returns (target, current).
pub fn rollback_target(hosts: &[HostReleases]) -> Result<(String, Option<String>), String> {
    let current = newest_current(hosts);
    let log: Vec<&LogEntry> = hosts.iter().flat_map(|host| &host.log).collect();
    let bad: Vec<&str> = bad_releases(&log).into_iter().chain(current.as_deref()).collect();
    let good = |id: &str| log.iter().any(|entry| entry.release == id && entry.outcome.as_deref() == Some("success"));
    let everywhere = |id: &str| hosts.iter().all(|host| host.present.iter().any(|present| present == id));
    let mut ids: Vec<&str> = log.iter().map(|entry| entry.release.as_str()).collect();
    ids.sort();
    ids.dedup();
    let older_than_current = |id: &&str| current.as_deref().is_none_or(|current| *id < current);
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
            post_migrate: None,
        }
    }

    fn host(current: &str, present: &[&str], log: Vec<LogEntry>) -> HostReleases {
        HostReleases {
            host: "web1".into(),
            current: Some(current.into()),
            present: present.iter().map(|id| id.to_string()).collect(),
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
        let on_c = host(C, &[A, B, C], log.clone());
        assert_eq!(rollback_target(&[on_c]).unwrap().0, B);
        // After rolling back C → B, the next rollback goes to A, not back to C.
        let mut rolled = log.clone();
        rolled.push(entry("rollback", B, Some(C)));
        let on_b = host(B, &[A, B, C], rolled);
        assert_eq!(rollback_target(&[on_b]).unwrap().0, A);
        // A release missing on one host is skipped.
        let first = host(C, &[A, B, C], log.clone());
        let mut second = host(C, &[A, C], log.clone());
        second.host = "web2".into();
        assert_eq!(rollback_target(&[first, second]).unwrap().0, A);
        // Hosts that disagree (one host deployed alone, or a stopped run): the hosts ahead
        // go back to where the others are, not every host one release further back.
        let mut ahead = host(C, &[A, B, C], log.clone());
        ahead.host = "web1".into();
        let mut behind = host(B, &[A, B], log[..2].to_vec());
        behind.host = "web2".into();
        let mut behind_too = behind.clone();
        behind_too.host = "web3".into();
        assert_eq!(rollback_target(&[behind, ahead, behind_too]).unwrap(), (B.to_string(), Some(C.to_string())));
        // Nothing before the first release.
        let only = host(A, &[A], vec![entry("deploy", A, None)]);
        assert!(rollback_target(&[only]).is_err());
    }
}
