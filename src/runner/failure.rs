//! How an action fails, and how a run fails: typed, so nothing downstream reads English
//! words to decide what happened.

use crate::plan::{Phase, What};
use crate::transport::TransportError;
use std::time::Duration;

/// Why an action failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FailureKind {
    /// The command ran to its end and exited non-zero (`None`: killed by a signal).
    Exited { status: Option<i32> },
    /// The command answered, but not what the step accepts: output where none was expected
    /// (an API reporting an error on stdout), or output that makes no sense (a wrong backend).
    Answered,
    /// A wait or retry ran out of tries or time before its goal (the message has the last reading).
    NotReached,
    /// The command did not finish within its limit: its effect is unknown.
    TimedOut { limit: Duration },
    /// The connection to the host is gone: the effect is unknown.
    ConnectionLost,
    /// The command could not be started (no such connection, a local file that cannot be read…).
    NotStarted,
    /// The artifact arrived with another sha256 than was sent.
    ChecksumMismatch,
    /// Another deploy holds the lock on the host.
    LockHeld,
    /// The build on the deploying machine failed.
    Build,
    /// The build holds what no release may ship (bad input: exit 2).
    Refused,
    /// The tarball for the host could not be made on the deploying machine.
    Packing,
    /// The artifact store refused the tarball or could not be reached from the deploying
    /// machine.
    Store,
    /// Ctrl-C or SIGTERM arrived before the action.
    Interrupted,
    /// A canary's traffic failed its soak (the message has the numbers).
    Judged,
}

/// An action that failed: on which host, what, why, and the last lines it printed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub host: String,
    pub what: What,
    pub kind: FailureKind,
    pub message: String,
    /// The last lines the command printed.
    pub output: String,
}

impl Failure {
    pub fn new(host: &str, what: What, kind: FailureKind, message: impl Into<String>) -> Failure {
        Failure { host: host.to_string(), what, kind, message: message.into(), output: String::new() }
    }

    pub fn with_output(mut self, output: String) -> Failure {
        self.output = output;
        self
    }

    /// The command could not be run (or its connection was lost).
    pub fn transport(host: &str, what: What, err: TransportError) -> Failure {
        let kind = if err.lost { FailureKind::ConnectionLost } else { FailureKind::NotStarted };
        Failure::new(host, what, kind, err.message)
    }

    /// The tarball for a host could not be made (locally).
    pub fn packing(host: &str, what: What, err: crate::artifact::BuildError) -> Failure {
        Failure::new(host, what, FailureKind::Packing, format!("packing the release: {err}"))
    }

    /// Stopped by Ctrl-C or SIGTERM before `what` (`before` names it: "this step", "this batch").
    pub fn interrupted(host: &str, what: What, before: &str) -> Failure {
        Failure::new(host, what, FailureKind::Interrupted, format!("interrupted (Ctrl-C or SIGTERM) before {before}"))
    }

    /// The ssh connection to the host is gone.
    pub fn lost(&self) -> bool {
        self.kind == FailureKind::ConnectionLost
    }

    /// The command ran to its end (and failed): its effect is known not to have happened.
    /// A lost connection or a timeout leaves it unknown.
    pub fn completed(&self) -> bool {
        !matches!(self.kind, FailureKind::ConnectionLost | FailureKind::TimedOut { .. })
    }
}

/// What caused a run to fail.
#[derive(Debug, Clone)]
pub enum Cause {
    /// Actions failed, each on its host.
    Actions(Vec<Failure>),
    /// Ctrl-C or SIGTERM arrived before this phase began.
    Interrupted(Phase),
}

impl Cause {
    pub fn failures(&self) -> &[Failure] {
        match self {
            Cause::Actions(failures) => failures,
            Cause::Interrupted(_) => &[],
        }
    }
}

/// Where a failed run left the hosts.
#[derive(Debug, Clone)]
pub enum Aftermath {
    /// The locks this run took were released; nothing else had changed.
    LocksReleased,
    /// Stopped before any host was switched: the new release was removed where it was
    /// unpacked, the failure recorded, every host unlocked.
    NothingSwitched,
    /// Every switched host is back on the release it had, every host in service.
    RolledBack,
    /// `--no-auto-rollback`: these hosts were left on `release`, every host in service.
    LeftSwitched { switched: Vec<String>, release: String },
    /// Every host serves the new release and stays on it; a step after the roll failed
    /// (`post_migrate`), the run finished (ban, record, unlock).
    Deployed,
    /// Not every host could be put back: what is left, host by host, and the command that
    /// fixes it. The locks stay.
    NotRestored { problems: Vec<String>, fix: String },
}

/// One host's lock held by another deploy: the host and the holder's owner.json.
#[derive(Debug, Clone)]
pub struct Holder {
    pub host: String,
    pub owner: String,
}

/// A deploy or rollback that did not finish.
#[derive(Debug, Clone)]
pub enum RunError {
    /// Another deploy holds a lock (exit 3); nothing was changed, the locks taken were released.
    Locked { holders: Vec<Holder> },
    /// The run failed (exit 1, or 4 when a safe state could not be restored).
    Failed { cause: Cause, aftermath: Aftermath },
}

impl RunError {
    /// The process exit code (SPEC §2).
    pub fn code(&self) -> i32 {
        match self {
            RunError::Locked { .. } => 3,
            RunError::Failed { aftermath: Aftermath::NotRestored { .. }, .. } => 4,
            RunError::Failed { cause, .. } if cause.failures().iter().any(|f| f.kind == FailureKind::Refused) => 2,
            RunError::Failed { .. } => 1,
        }
    }
}
