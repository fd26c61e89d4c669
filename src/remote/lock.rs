//! The deploy lock: an atomic `mkdir`, with who holds it written inside.

use super::{Cmd, Layout};

/// Takes the lock: fails (mkdir: File exists) when another deploy holds it.
pub fn acquire(l: &Layout, owner_json: &str) -> Cmd {
    Cmd::new("mkdir")
        .args(["-p", "--", &l.state_dir()])
        .and(Cmd::new("mkdir").args(["--", &l.lock_dir()]))
        .and(Cmd::new("printf").args(["%s\\n", owner_json]).write_to(l.lock_owner()))
}

/// Who holds the lock (JSON written by [`acquire`]).
pub fn owner(l: &Layout) -> Cmd {
    Cmd::new("cat").args(["--", &l.lock_owner()])
}

pub fn release(l: &Layout) -> Cmd {
    Cmd::new("rm").args(["-rf", "--", &l.lock_dir()])
}
