//! Where commands run: over ssh on a host, or on the deploying machine; and HTTP requests.
//!
//! The runner only sees [`Transport`], so a recording transport can check the order of
//! operations without a network (tests/runner_order.rs).

mod http;
mod local;
mod ssh;

pub use http::{Http, error_chain};
pub use local::run_local;
pub use ssh::{ConnectError, ConnectProblem, Connections, Destination, SshOptions};

use crate::remote::{Cmd, Target};
use std::future::Future;
use std::path::Path;
use std::time::Duration;

/// What a finished command left.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// Exit status; `None` when the process was killed or the connection was lost.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == Some(0)
    }

    /// The last `n` lines of stderr (or stdout when stderr is empty), for error reports.
    pub fn tail(&self, count: usize) -> String {
        let text = if self.stderr.trim().is_empty() { &self.stdout } else { &self.stderr };
        let lines: Vec<&str> = text.trim_end().lines().collect();
        lines[lines.len().saturating_sub(count)..].join("\n")
    }
}

/// Opens the file piped into a command's stdin (the artifact); `None` = no input.
fn stdin_file(path: Option<&Path>) -> Result<Option<std::fs::File>, TransportError> {
    path.map(|path| {
        std::fs::File::open(path)
            .map_err(|err| TransportError { message: format!("open {}: {err}", path.display()), lost: false })
    })
    .transpose()
}

/// A command that could not be run at all (as opposed to one that ran and failed).
#[derive(Debug, Clone)]
pub struct TransportError {
    pub message: String,
    /// The connection to the host is gone.
    pub lost: bool,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        out.write_str(&self.message)
    }
}

/// An HTTP request from the deploying machine.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a [(String, String)],
    pub timeout: Duration,
}

pub trait Transport: Send + Sync + 'static {
    /// Runs `cmd` on `on`, with `stdin` (a file) piped in when given.
    fn run(
        &self,
        on: &Target,
        cmd: &Cmd,
        stdin: Option<&Path>,
    ) -> impl Future<Output = Result<Output, TransportError>> + Send;

    /// Sends a request; returns the HTTP status.
    fn http(&self, req: Request<'_>) -> impl Future<Output = Result<u16, TransportError>> + Send;
}

/// The real thing: ssh connections to the hosts, local processes, reqwest.
pub struct Live {
    pub ssh: Connections,
    /// Words holding one of these travel in the environment, not on the command line.
    secrets: crate::secrets::Secrets,
    /// The variables user shell code reads, sent with that code (`Cmd::wire`).
    exports: Vec<(String, String)>,
    /// Made on the first request: most runs send none from the deploying machine.
    http: std::sync::OnceLock<Http>,
}

impl Live {
    /// `secrets`: values that must not appear on a command line; `exports`: the variables
    /// user shell code reads, with their values.
    pub fn new(ssh: Connections, secrets: crate::secrets::Secrets, exports: Vec<(String, String)>) -> Live {
        Live { ssh, secrets, exports, http: std::sync::OnceLock::new() }
    }
}

impl Transport for Live {
    async fn run(&self, on: &Target, cmd: &Cmd, stdin: Option<&Path>) -> Result<Output, TransportError> {
        let wire = cmd.wire(&self.secrets, &self.exports);
        match on {
            Target::Host(host) => match wire.preamble() {
                Some((line, private)) => self.ssh.run(host, &line, Some(&private), stdin).await,
                None => self.ssh.run(host, &wire.line, None, stdin).await,
            },
            Target::Local => {
                let env: Vec<(&str, &str)> =
                    wire.private.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
                run_local(&wire.line, None, &env, stdin).await
            }
        }
    }

    async fn http(&self, req: Request<'_>) -> Result<u16, TransportError> {
        self.http.get_or_init(Http::new).send(req).await
    }
}
