//! The plan: every step of a deploy or rollback as pure data, built from the config alone.
//!
//! A plan is a list of steps run in order. A step is a list of batches run one after the
//! other; the hosts of a batch run side by side (at most `parallel` at once), each through
//! its own list of actions in order. `deploy plan` prints it; the runner walks it.

mod deploy;
mod display;
mod rollback;

pub use deploy::{DeployInput, Owner, build_env, deploy};
pub(crate) use deploy::{health_action, roll_host, undrain_actions, worker_actions};
pub use rollback::{RollbackInput, rollback};

use crate::remote::Cmd;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub kind: PlanKind,
    pub app: String,
    pub stage: String,
    pub path: String,
    /// The release being rolled out: the new id, or the rollback target.
    pub release: String,
    pub revision: Option<Revision>,
    pub hosts: Vec<HostInfo>,
    pub balancer: String,
    /// App hosts per batch, after `batch` is applied to the host count.
    pub batch_size: usize,
    pub steps: Vec<Step>,
    /// Things the reader should know (no balancer, migrations not reversed…).
    pub notes: Vec<String>,
    /// The release log line written at the end (outcome `success`; the runner writes the
    /// same line with another outcome when the run fails).
    pub record: serde_json::Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PlanKind {
    Deploy,
    Rollback,
}

#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    /// What was asked for (branch, tag, sha, `HEAD`).
    pub requested: String,
    /// The full commit sha it resolved to.
    pub commit: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostInfo {
    pub name: String,
    /// `user@address:port` as ssh will be asked for it.
    pub destination: String,
    pub roles: Vec<crate::config::Role>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Connect,
    Lock,
    Build,
    Upload,
    Check,
    Migrate,
    Roll,
    Workers,
    Ban,
    Finish,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Lock => "lock",
            Phase::Build => "build",
            Phase::Upload => "upload",
            Phase::Check => "check",
            Phase::Migrate => "migrate",
            Phase::Roll => "roll",
            Phase::Workers => "workers",
            Phase::Ban => "ban",
            Phase::Finish => "finish",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub phase: Phase,
    pub title: String,
    /// At most this many hosts of a batch at once.
    pub parallel: usize,
    pub batches: Vec<Batch>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Batch {
    pub hosts: Vec<HostActions>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HostActions {
    /// The host these actions are about (`local` for the build).
    pub host: String,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Action {
    pub what: What,
    /// Where it runs: an ssh host, or the deploying machine.
    pub on: Target,
    pub run: Run,
    /// For waits: poll until the output says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<Until>,
    /// Runs at the same time as the next action (a journal write on the app host beside a
    /// check on the balancer: neither depends on the other, and both must succeed).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub with_next: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "host")]
pub enum Target {
    Local,
    Host(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Local => f.write_str("local"),
            Target::Host(h) => f.write_str(h),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Connect,
    Lock,
    Export,
    Build,
    Pack,
    ReadCurrent,
    Receive,
    Unpack,
    LinkShared,
    Prepare,
    CheckRelease,
    Migrate,
    Journal,
    Capacity,
    Drain,
    WaitDrained,
    Switch,
    Activate,
    Health,
    WaitProbe,
    Undrain,
    WaitHealthy,
    Ban,
    Record,
    Cleanup,
    Unlock,
}

impl What {
    pub const ALL: [What; 26] = [
        What::Connect,
        What::Lock,
        What::Export,
        What::Build,
        What::Pack,
        What::ReadCurrent,
        What::Receive,
        What::Unpack,
        What::LinkShared,
        What::Prepare,
        What::CheckRelease,
        What::Migrate,
        What::Journal,
        What::Capacity,
        What::Drain,
        What::WaitDrained,
        What::Switch,
        What::Activate,
        What::Health,
        What::WaitProbe,
        What::Undrain,
        What::WaitHealthy,
        What::Ban,
        What::Record,
        What::Cleanup,
        What::Unlock,
    ];

    pub fn label(self) -> &'static str {
        match self {
            What::Connect => "connect",
            What::Lock => "lock",
            What::Export => "export",
            What::Build => "build",
            What::Pack => "pack",
            What::ReadCurrent => "current",
            What::Receive => "receive",
            What::Unpack => "unpack",
            What::LinkShared => "shared",
            What::Prepare => "prepare",
            What::CheckRelease => "present",
            What::Migrate => "migrate",
            What::Journal => "journal",
            What::Capacity => "capacity",
            What::Drain => "drain",
            What::WaitDrained => "wait idle",
            What::Switch => "switch",
            What::Activate => "activate",
            What::Health => "health",
            What::WaitProbe => "wait probe",
            What::Undrain => "undrain",
            What::WaitHealthy => "in service",
            What::Ban => "ban",
            What::Record => "record",
            What::Cleanup => "cleanup",
            What::Unlock => "unlock",
        }
    }
}

/// What an action does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum Run {
    /// A shell command line (over ssh, or locally); `stdin` names what is piped in.
    Shell {
        cmd: Cmd,
        #[serde(skip_serializing_if = "Option::is_none")]
        stdin: Option<String>,
    },
    /// Open the multiplexed ssh connection.
    Ssh { destination: String },
    /// Export the commit's tree (no `.git`, nothing untracked) into a clean folder.
    Export { commit: String },
    /// Pack the build folder as `.tar.gz`, leaving out `exclude`, and compute its sha256.
    Pack { file: String, exclude: Vec<String> },
    /// An HTTP request from the deploying machine.
    Http {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        expect_status: Option<u16>,
        #[serde(with = "secs")]
        timeout: Duration,
    },
    /// Remove the oldest releases, keeping `keep` (never `current` or the rollback target).
    Cleanup { keep: u32, list: Cmd },
}

/// How a waiting action reads its command's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum Reading {
    /// varnishstat `VBE.*.NAME.conn` lines, summed.
    VarnishStat,
    /// varnishadm `backend.list -p`: healthy with a full probe window.
    VarnishBackendList,
    /// HAProxy `show stat` CSV, the row of `backend/server`.
    HaproxyStat { backend: String, server: String },
    /// The command prints a number.
    Number,
    /// The command exits 0.
    ExitStatus,
    /// An HTTP status code (curl `%{http_code}` or a local request).
    HttpStatus,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case", tag = "until")]
pub enum Until {
    /// No request in flight any more; give up waiting after `timeout` (and go on).
    Idle {
        read: Reading,
        #[serde(with = "secs")]
        timeout: Duration,
    },
    /// The balancer's own health check passes (a full probe window), while the host is
    /// still drained; fail after `timeout`.
    ProbeHealthy {
        read: Reading,
        #[serde(with = "secs")]
        timeout: Duration,
    },
    /// The balancer sends traffic to the backend again; fail after `timeout`.
    InService {
        read: Reading,
        #[serde(with = "secs")]
        timeout: Duration,
    },
    /// Draining `own` leaves at least `min` of the `others` taking traffic (or `own` takes
    /// none, so draining it changes nothing); checked before a drain, fail after `timeout`.
    Capacity {
        read: Reading,
        own: String,
        others: Vec<String>,
        min: u32,
        #[serde(with = "secs")]
        timeout: Duration,
    },
    /// Exit 0 and no output at all (an API that reports errors on stdout).
    Silent,
    /// The HTTP status is `expect`; try `retries` times, `interval` apart.
    Status {
        expect: u16,
        retries: u32,
        #[serde(with = "secs")]
        interval: Duration,
    },
}

mod secs {
    use serde::Serializer;
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&crate::config::decode::format_duration(*d))
    }
}

impl Action {
    pub fn shell(what: What, on: Target, cmd: Cmd) -> Action {
        Action { what, on, run: Run::Shell { cmd, stdin: None }, until: None, with_next: false }
    }

    pub fn on_host(what: What, host: &str, cmd: Cmd) -> Action {
        Action::shell(what, Target::Host(host.to_string()), cmd)
    }

    pub fn until(mut self, u: Until) -> Action {
        self.until = Some(u);
        self
    }

    pub fn with_next(mut self) -> Action {
        self.with_next = true;
        self
    }
}

impl Step {
    /// A step whose hosts all run side by side.
    pub fn parallel(phase: Phase, title: impl Into<String>, parallel: usize, hosts: Vec<HostActions>) -> Step {
        Step { phase, title: title.into(), parallel, batches: vec![Batch { hosts }] }
    }

    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.batches.iter().flat_map(|b| b.hosts.iter()).flat_map(|h| h.actions.iter())
    }
}

impl Plan {
    pub fn step(&self, phase: Phase) -> Option<&Step> {
        self.steps.iter().find(|s| s.phase == phase)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan serializes")
    }
}
