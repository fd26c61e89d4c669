//! The user this process runs as, from the kernel and the password database: the name for
//! locks and logs when `$USER` is not set, the uid a private folder must belong to, and the
//! home folder when `$HOME` is not set.

use std::path::PathBuf;

/// This process's effective uid.
pub fn uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| line.strip_prefix("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// The fields of this process's user's line in /etc/passwd.
fn entry() -> Option<Vec<String>> {
    let uid = uid()?.to_string();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd
        .lines()
        .map(|line| line.split(':').map(str::to_string).collect::<Vec<_>>())
        .find(|fields| fields.len() > 5 && fields[2] == uid)
}

/// The user's name in /etc/passwd (cron and CI jobs often have no `$USER`).
pub fn name() -> Option<String> {
    entry().map(|fields| fields[0].clone())
}

/// `$HOME`, else the home folder in /etc/passwd.
pub fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(PathBuf::from)
        .or_else(|| entry().map(|fields| PathBuf::from(&fields[5])))
}
