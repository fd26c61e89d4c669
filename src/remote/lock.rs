//! The deploy lock: an atomic `mkdir`, with who holds it written inside, a token that says
//! which deploy it belongs to, and a lease the holder keeps fresh while it runs.

use super::{Cmd, Layout};
use std::time::Duration;

/// How often the deploy holding a lock touches its lease.
pub const LEASE_REFRESH: Duration = Duration::from_secs(5);
/// A lease touched less than this long ago (by the host's clock) belongs to a live deploy:
/// `deploy unlock` refuses it without `--force`. Six refreshes missed in a row.
pub const LEASE_FRESH: Duration = Duration::from_secs(30);
/// The exit status of [`refresh`] and [`release_own`] when the lock is not this deploy's
/// (another token, or no lock): nothing was touched.
pub const NOT_OURS: i32 = 3;

/// Takes the lock; fails when another deploy holds it (or the folder cannot be made: tell
/// the two apart with [`held`], not by reading mkdir's words, which depend on the locale).
/// Writes the owner, this deploy's `token`, and the lease.
pub fn acquire(layout: &Layout, owner_json: &str, token: &str) -> Cmd {
    let dir = layout.lock_dir();
    Cmd::new("mkdir")
        .args(["-p", "--", &layout.state_dir()])
        .and(Cmd::new("mkdir").args(["--", &dir]))
        .and(Cmd::new("printf").args(["%s\\n", owner_json]).write_to(layout.lock_owner()))
        .and(Cmd::new("printf").args(["%s\\n", token]).write_to(format!("{dir}/token")))
        .and(Cmd::new("touch").args(["--", &format!("{dir}/lease")]))
}

/// Runs `then` on the lock folder only if the lock holds `token`; exits 0 when there is no
/// lock, [`NOT_OURS`] when it holds another token.
fn if_ours(layout: &Layout, token: &str, then: &str) -> Cmd {
    let script = format!(
        r#"[ -d "$1" ] || exit 0; [ "$(cat -- "$1/token" 2>/dev/null)" = "$2" ] || {{ echo "the lock is not this deploy's any more (deploy unlock --force?): left as it is" >&2; exit {NOT_OURS}; }}; {then}"#
    );
    Cmd::new("sh").args(["-c", &script, "sh", &layout.lock_dir(), token])
}

/// Touches the lease of this deploy's lock (see [`LEASE_REFRESH`]); no lock at all is not an
/// error (it was released, or removed by force). `touch -c` never creates the lease: a
/// refresh that meets a release half-way (the lease gone, the folder not yet) leaves nothing
/// behind that would look like a lock.
pub fn refresh(layout: &Layout, token: &str) -> Cmd {
    if_ours(layout, token, r#"touch -c -- "$1/lease""#)
}

/// Removes the lock if it is still this deploy's: one that `deploy unlock --force` removed
/// and another deploy took since is left alone.
pub fn release_own(layout: &Layout, token: &str) -> Cmd {
    if_ours(layout, token, r#"rm -rf -- "$1""#)
}

/// Who holds the lock and whether it is alive, in one round trip: `owner.json`'s line, then
/// how many seconds ago the lease was touched by the host's clock (an empty line without a
/// lease); exits 1 without a lock. Read with [`holder_owner`] and [`lease_age`].
pub fn holder(layout: &Layout) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        r#"cat -- "$1/owner.json" 2>/dev/null || exit 1
[ -f "$1/lease" ] || { echo; exit 0; }
echo $(( $(date +%s) - $(stat -c %Y -- "$1/lease") ))"#,
        "sh",
        &layout.lock_dir(),
    ])
}

/// The owner in [`holder`]'s answer (its first line).
pub fn holder_owner(stdout: &str) -> &str {
    stdout.lines().next().unwrap_or("").trim()
}

/// The lease's age in [`holder`]'s answer (its last line): `None` when there is no lease (or
/// the output is not a number).
pub fn lease_age(stdout: &str) -> Option<Duration> {
    let lines: Vec<&str> = stdout.lines().collect();
    let seconds: i64 = lines.get(1)?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds.max(0) as u64))
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

/// Gives up this deploy's lease but keeps the lock (a run that ends leaving hosts to fix):
/// `deploy unlock` may take over at once.
pub fn abandon(layout: &Layout, token: &str) -> Cmd {
    if_ours(layout, token, r#"rm -f -- "$1/lease""#)
}

/// Removes the lock whoever holds it (`deploy unlock`, after its checks).
pub fn release(layout: &Layout) -> Cmd {
    Cmd::new("rm").args(["-rf", "--", &layout.lock_dir()])
}

/// Is the lock in [`owner`]'s output held by hand (`deploy lock acquire`), not by a deploy?
pub fn is_manual(json: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(json.trim()).is_ok_and(|value| value["manual"] == true)
}

/// [`owner`]'s output for people: `alice@laptop (pid 4242), deploying production since
/// 2026-11-26T05:19:44Z`, or for a lock held by hand `alice@laptop, held by hand since …:
/// "the message"`.
pub fn describe_owner(json: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    if value.is_null() {
        return "holder unknown (no readable owner.json)".into();
    }
    let field =
        |key: &str| value.get(key).map(|v| v.to_string().trim_matches('"').to_string()).unwrap_or_else(|| "?".into());
    if value["manual"] == true {
        return format!(
            "{}@{}, held by hand since {}: {}",
            field("user"),
            field("machine"),
            field("started"),
            value["message"]
        );
    }
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
