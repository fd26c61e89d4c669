//! The deploy lock: an atomic `mkdir`, with who holds it written inside.

use super::{Cmd, Layout};

/// Takes the lock; fails when another deploy holds it (or the folder cannot be made: tell
/// the two apart with [`held`], not by reading mkdir's words, which depend on the locale).
pub fn acquire(layout: &Layout, owner_json: &str) -> Cmd {
    Cmd::new("mkdir")
        .args(["-p", "--", &layout.state_dir()])
        .and(Cmd::new("mkdir").args(["--", &layout.lock_dir()]))
        .and(Cmd::new("printf").args(["%s\\n", owner_json]).write_to(layout.lock_owner()))
}

/// Exits 0 when the lock is held (its folder exists): asked after a failed [`acquire`].
pub fn held(layout: &Layout) -> Cmd {
    Cmd::new("test").args(["-d", &layout.lock_dir()])
}

/// Reads [`held`]'s answer.
pub fn is_held(status: Option<i32>) -> bool {
    status == Some(0)
}

/// Who holds the lock (JSON written by [`acquire`]).
pub fn owner(layout: &Layout) -> Cmd {
    Cmd::new("cat").args(["--", &layout.lock_owner()])
}

pub fn release(layout: &Layout) -> Cmd {
    Cmd::new("rm").args(["-rf", "--", &layout.lock_dir()])
}

/// [`owner`]'s output for people: `alice@laptop (pid 4242), deploying production since
/// 2026-11-26T05:19:44Z`.
pub fn describe_owner(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    if value.is_null() {
        return "holder unknown (no readable owner.json)".into();
    }
    let field =
        |key: &str| value.get(key).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_else(|| "?".into());
    format!(
        "{}@{} (pid {}), deploying {} since {}",
        field("user"),
        field("machine"),
        field("pid"),
        field("stage"),
        field("started")
    )
}

/// The pid and machine in [`owner`]'s output (`deploy unlock` asks whether it still runs).
pub fn owner_process(json: &str) -> Option<(String, u64)> {
    let value: serde_json::Value = serde_json::from_str(json.trim()).ok()?;
    Some((value["machine"].as_str()?.to_string(), value["pid"].as_u64()?))
}
