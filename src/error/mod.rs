//! One error type for the whole program: each variant carries its context and knows its exit
//! code; `render` is the one place that lays every error out (`error:`, details, `hint:`).

mod render;

use crate::artifact::RevisionError;
use crate::config::ConfigErrors;
use crate::runner::RunError;
use crate::transport::{ConnectError, ConnectProblem};
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
    Revision(RevisionError),
    /// `deploy init` would overwrite a file (exit 2).
    Exists { path: PathBuf },
    /// Hosts that could not be reached (exit 2 for host key or auth problems, else 1).
    Connect { errors: Vec<ConnectError> },
    /// The revision is the working copy and it has uncommitted changes (exit 2).
    Dirty { repository: PathBuf, files: Vec<String> },
    /// A deploy or rollback that did not finish: another holds the lock (exit 3), it failed
    /// and every host is back on a serving release (exit 1), or not (exit 4).
    Run(RunError),
    /// `deploy unlock` could not put every host back in service (exit 4).
    NotRestored { problems: Vec<String>, fix: String },
    /// `deploy unlock` while the deploy holding the lock still runs here (exit 3).
    /// `deploy unlock` met a live holder: its lease was touched `lease` ago (by the host's
    /// clock), or its process runs on this machine.
    Busy { host: String, owner: String, lease: Option<std::time::Duration> },
    /// A second Ctrl-C or SIGTERM stopped the run at once, without restoring (exit 4).
    Interrupted { stage: String },
}

impl Error {
    /// The process exit code (SPEC §2).
    pub fn code(&self) -> i32 {
        match self {
            Error::Config(_)
            | Error::NoConfig { .. }
            | Error::File { .. }
            | Error::Usage { .. }
            | Error::Revision(_)
            | Error::Exists { .. }
            | Error::Dirty { .. } => 2,
            Error::Connect { errors } => {
                let refused =
                    errors.iter().any(|err| matches!(err.problem, ConnectProblem::HostKey | ConnectProblem::Auth));
                if refused { 2 } else { 1 }
            }
            Error::Run(run) => run.code(),
            Error::Busy { .. } => 3,
            Error::NotRestored { .. } | Error::Interrupted { .. } => 4,
        }
    }

    /// The error without its `error: ` prefix (summaries and webhooks carry it).
    pub fn message(&self) -> String {
        let text = self.to_string();
        text.strip_prefix("error: ").unwrap_or(&text).to_string()
    }
}

impl std::error::Error for Error {}

impl From<ConfigErrors> for Error {
    fn from(errors: ConfigErrors) -> Self {
        Error::Config(errors)
    }
}

impl From<RunError> for Error {
    fn from(err: RunError) -> Self {
        Error::Run(err)
    }
}

impl From<RevisionError> for Error {
    fn from(err: RevisionError) -> Self {
        Error::Revision(err)
    }
}
