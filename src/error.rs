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
    File {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// Bad command-line usage (exit 2).
    Usage {
        message: String,
        hint: Option<String>,
    },
    /// The revision could not be resolved (exit 2).
    Revision {
        repository: PathBuf,
        revision: String,
        message: String,
    },
    /// `deploy init` would overwrite a file (exit 2).
    Exists { path: PathBuf },
    /// A command that needs servers, not built yet (exit 2: nothing was touched).
    NotImplemented { command: String },
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
            | Error::NotImplemented { .. } => 2,
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
            Error::File {
                path,
                action,
                source,
            } => {
                writeln!(f, "error: cannot {action} {}: {source}", path.display())
            }
            Error::Usage { message, hint } => {
                writeln!(f, "error: {message}")?;
                if let Some(h) = hint {
                    writeln!(f, "  = hint: {h}")?;
                }
                Ok(())
            }
            Error::Revision {
                repository,
                revision,
                message,
            } => writeln!(
                f,
                "error: cannot resolve revision `{revision}` in {}: {message}\n  = hint: pass an existing branch, tag or sha with `--revision`, or set `app.repository`",
                repository.display()
            ),
            Error::Exists { path } => writeln!(
                f,
                "error: {} already exists; not overwriting it\n  = hint: remove it first, or write elsewhere with `deploy init -c PATH`",
                path.display()
            ),
            Error::NotImplemented { command } => writeln!(
                f,
                "error: `deploy {command}` is not implemented yet in this version; nothing was done\n  = hint: `deploy plan STAGE` shows every step and remote command it will run"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<ConfigErrors> for Error {
    fn from(e: ConfigErrors) -> Self {
        Error::Config(e)
    }
}
