//! The per-host journal: where a running deploy stands on this host, written before each
//! state change so a later `deploy unlock` knows what an interrupted run left.

use super::{Cmd, Layout};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// About to be (or being) drained from the balancer.
    Draining,
    /// About to switch `current` to the new release.
    Switching,
    /// About to be put back in the balancer.
    Undraining,
}

#[derive(Debug, Clone, Serialize)]
pub struct Entry<'a> {
    pub stage: &'a str,
    pub host: &'a str,
    pub release: &'a str,
    pub state: State,
}

/// Writes the journal atomically (temp file, then rename).
pub fn write(l: &Layout, e: &Entry) -> Cmd {
    let json = serde_json::to_string(e).expect("journal serializes");
    let tmp = format!("{}.tmp", l.journal());
    Cmd::new("printf").args(["%s\\n", &json]).write_to(&tmp).and(Cmd::new("mv").args(["-f", "--", &tmp, &l.journal()]))
}

/// Removes the journal once the host is done.
pub fn clear(l: &Layout) -> Cmd {
    Cmd::new("rm").args(["-f", "--", &l.journal()])
}

pub fn read(l: &Layout) -> Cmd {
    Cmd::new("cat").args(["--", &l.journal()])
}
