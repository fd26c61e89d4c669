//! The per-host journal: where a running deploy stands on this host, written before each
//! state change so a later `deploy unlock` knows what an interrupted run left.

use super::{Cmd, Layout};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// About to be (or being) drained from the balancer.
    Draining,
    /// About to switch `current` to the new release.
    Switching,
    /// About to be put back in the balancer.
    Undraining,
}

impl State {
    /// As written in the journal.
    pub fn name(self) -> &'static str {
        match self {
            State::Draining => "draining",
            State::Switching => "switching",
            State::Undraining => "undraining",
        }
    }
}

/// What the journal says about a host.
#[derive(Debug, Clone, Serialize)]
pub struct Entry<'a> {
    pub stage: &'a str,
    pub host: &'a str,
    pub release: &'a str,
    pub state: State,
}

/// Writes the journal atomically (temp file, then rename).
pub fn write(layout: &Layout, entry: &Entry) -> Cmd {
    let json = serde_json::to_string(entry).expect("journal serializes");
    let tmp = format!("{}.tmp", layout.journal());
    Cmd::new("printf").args(["%s\\n", &json]).write_to(&tmp).and(Cmd::new("mv").args([
        "-f",
        "--",
        &tmp,
        &layout.journal(),
    ]))
}

/// Removes the journal once the host is done.
pub fn clear(layout: &Layout) -> Cmd {
    Cmd::new("rm").args(["-f", "--", &layout.journal()])
}

pub fn read(layout: &Layout) -> Cmd {
    Cmd::new("cat").args(["--", &layout.journal()])
}

/// A journal as [`read`] prints it (kept as written: a newer deploy may write a state this
/// one does not know).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Found {
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub release: String,
}

impl Found {
    /// Interrupted after the switch: the activate hooks may not have run.
    pub fn after_switch(&self) -> bool {
        self.state == State::Switching.name() || self.state == State::Undraining.name()
    }
}

/// Reads [`read`]'s output; `None` when there is no journal (or it is not JSON).
pub fn parse(stdout: &str) -> Option<Found> {
    serde_json::from_str(stdout.trim()).ok()
}
