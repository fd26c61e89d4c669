//! One error type for the library; each variant carries its context and knows its exit code.

use crate::config::ConfigErrors;
use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// Problems in `Deploy.toml` (exit 2).
    Config(ConfigErrors),
    /// No `Deploy.toml` here or above (exit 2).
    NoConfig { start: PathBuf },
    /// A file could not be read or written (exit 2: nothing was touched on any host).
    File { path: PathBuf, action: &'static str, source: std::io::Error },
    /// Bad command-line usage (exit 2).
    Usage { message: String, hint: Option<String> },
    /// The revision could not be resolved (exit 2).
    Revision { repository: PathBuf, revision: String, message: String },
    /// `deploy init` would overwrite a file (exit 2).
    Exists { path: PathBuf },
    /// Hosts that could not be reached (exit 2 for host key or auth problems, else 1).
    Connect { errors: Vec<crate::transport::ConnectError> },
    /// Another deploy holds the lock (exit 3): host and the holder's owner.json.
    Locked { holders: Vec<(String, String)> },
    /// The revision is the working copy and it has uncommitted changes (exit 2).
    Dirty { repository: PathBuf, files: Vec<String> },
    /// Failed, and every host is back on a serving release (exit 1).
    Deploy { message: String },
    /// Failed and could not restore a safe state (exit 4).
    Unsafe { message: String, fix: String },
    /// `deploy unlock` could not put every host back in service (exit 4).
    NotRestored { message: String, fix: String },
    /// `deploy unlock` while the deploy holding the lock still runs here (exit 3).
    Busy { host: String, owner: String },
}

impl Error {
    /// The process exit code (SPEC §2).
    pub fn code(&self) -> i32 {
        match self {
            Error::Config(_)
            | Error::NoConfig { .. }
            | Error::File { .. }
            | Error::Usage { .. }
            | Error::Revision { .. }
            | Error::Exists { .. }
            | Error::Dirty { .. } => 2,
            Error::Connect { errors } => {
                use crate::transport::ConnectProblem::*;
                if errors.iter().any(|e| matches!(e.problem, HostKey | Auth)) { 2 } else { 1 }
            }
            Error::Locked { .. } | Error::Busy { .. } => 3,
            Error::NotRestored { .. } => 4,
            Error::Deploy { .. } => 1,
            Error::Unsafe { .. } => 4,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(e) => write!(f, "{e}"),
            Error::NoConfig { start } => writeln!(
                f,
                "error: no Deploy.toml in {} or any folder above it\n  = hint: run `deploy init --recipe symfony` to write one, or pass `-c PATH`",
                start.display()
            ),
            Error::File { path, action, source } => {
                writeln!(f, "error: cannot {action} {}: {source}", path.display())
            }
            Error::Usage { message, hint } => {
                writeln!(f, "error: {message}")?;
                if let Some(h) = hint {
                    writeln!(f, "  = hint: {h}")?;
                }
                Ok(())
            }
            Error::Revision { repository, revision, message } => writeln!(
                f,
                "error: cannot resolve revision `{revision}` in {}: {message}\n  = hint: pass an existing branch, tag or sha with `--revision`, or set `app.repository`",
                repository.display()
            ),
            Error::Exists { path } => writeln!(
                f,
                "error: {} already exists; not overwriting it\n  = hint: remove it first, or write elsewhere with `deploy init -c PATH`",
                path.display()
            ),
            Error::Connect { errors } => {
                for e in errors {
                    use crate::transport::ConnectProblem::*;
                    let what = match e.problem {
                        HostKey => "unknown or changed host key for",
                        Auth => "authentication refused by",
                        Unreachable => "cannot reach",
                    };
                    writeln!(f, "error: {what} {} ({}): {}", e.host, e.destination, e.message.trim())?;
                }
                let hint = if errors.iter().any(|e| e.problem == crate::transport::ConnectProblem::HostKey) {
                    "check the host key (ssh-keyscan HOST, compare the fingerprint, add it to known_hosts); keys are checked strictly"
                } else if errors.iter().any(|e| e.problem == crate::transport::ConnectProblem::Auth) {
                    "check ssh.user, ssh.identity or your agent (ssh-add -l)"
                } else {
                    "check the address and that sshd runs; try `ssh HOST true`"
                };
                writeln!(
                    f,
                    "  = nothing was changed on any host
  = hint: {hint}"
                )
            }
            Error::Locked { holders } => {
                for (host, owner) in holders {
                    writeln!(f, "error: {host} is locked by another deploy: {}", describe_owner(owner))?;
                }
                writeln!(
                    f,
                    "  = nothing was changed; locks this run took were released
  = hint: wait for it (`--lock-wait 10m`), or if it crashed: deploy unlock STAGE"
                )
            }
            Error::Dirty { repository, files } => {
                writeln!(
                    f,
                    "error: the working copy in {} has uncommitted changes, which would not be deployed:",
                    repository.display()
                )?;
                for x in files.iter().take(10) {
                    writeln!(f, "    {x}")?;
                }
                if files.len() > 10 {
                    writeln!(f, "    … and {} more", files.len() - 10)?;
                }
                writeln!(
                    f,
                    "  = hint: commit them, deploy an explicit revision (`--revision main`), or pass --allow-dirty to deploy HEAD as committed"
                )
            }
            Error::Deploy { message } => writeln!(f, "error: {message}"),
            Error::NotRestored { message, fix } => {
                writeln!(f, "error: not every host could be put back in service:")?;
                for l in message.lines() {
                    writeln!(f, "    {l}")?;
                }
                writeln!(f, "  = fix: {fix}")
            }
            Error::Busy { host, owner } => writeln!(
                f,
                "error: the deploy holding the lock on {host} is still running: {}\n  = hint: wait for it or stop it (Ctrl-C); `deploy unlock STAGE --force` removes the lock anyway",
                describe_owner(owner)
            ),
            Error::Unsafe { message, fix } => {
                writeln!(f, "error: the deploy failed and a safe state could NOT be restored on every host:")?;
                for l in message.lines() {
                    writeln!(f, "    {l}")?;
                }
                writeln!(f, "  = fix: {fix}")
            }
        }
    }
}

/// `alice@laptop (pid 4242), deploying production since 2026-11-26T05:19:44Z`.
pub fn describe_owner(json: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let s = |k: &str| v.get(k).map(|x| x.to_string().trim_matches('"').to_string()).unwrap_or_else(|| "?".into());
    if v.is_null() {
        return "holder unknown (no readable owner.json)".into();
    }
    format!("{}@{} (pid {}), deploying {} since {}", s("user"), s("machine"), s("pid"), s("stage"), s("started"))
}

impl std::error::Error for Error {}

impl From<ConfigErrors> for Error {
    fn from(e: ConfigErrors) -> Self {
        Error::Config(e)
    }
}
