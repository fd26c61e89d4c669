//! The plan: every step of a deploy or rollback as pure data, built from the config alone.
//!
//! A plan is a list of steps run in order. A step is a list of batches run one after the
//! other; the hosts of a batch run side by side (at most `parallel` at once), each through
//! its own list of actions in order. `deploy plan` prints it; the runner walks it.

mod deploy;
mod display;
mod roll;
mod rollback;
mod soak;
mod steps;
mod what;

pub use crate::balancer::Reading;
pub use crate::remote::Target;
pub use deploy::{DeployInput, Owner, build_env, deploy};
pub use display::Detail;
pub use roll::{health_action, roll_host, undrain_actions, worker_actions};
pub use rollback::{PREVIOUS, RollbackInput, rollback};
pub use what::What;

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
    /// The balancer in words, for the text plan.
    #[serde(skip)]
    pub balancer: String,
    /// The balancer as configured (`kind` and its settings), for the JSON plan.
    #[serde(rename = "balancer")]
    pub balancer_config: crate::config::Balancer,
    /// App hosts per batch, after `batch` is applied to the host count.
    pub batch_size: usize,
    pub steps: Vec<Step>,
    /// Things the reader should know (no balancer, migrations not reversed…).
    pub notes: Vec<String>,
    /// The release log line written at the end (outcome `success`; the runner writes the
    /// same line with another outcome when the run fails).
    pub record: serde_json::Value,
    /// The lock token (`Owner::token`): the runner releases only locks that hold it.
    #[serde(skip)]
    pub token: String,
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
    Canary,
    Soak,
    Roll,
    Workers,
    PostMigrate,
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
            Phase::Canary => "canary",
            Phase::Soak => "soak",
            Phase::Roll => "roll",
            Phase::Workers => "workers",
            Phase::PostMigrate => "post_migrate",
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
    /// What the runner does when an action of this step fails.
    pub on_failure: OnFailure,
    pub batches: Vec<Batch>,
}

/// What happens when a step fails: part of the plan, so `deploy plan` says it and the runner
/// reads it instead of deciding by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// Stop: nothing was changed on any host.
    Stop,
    /// Release the locks this run took; exit 3 when another deploy holds one.
    ReleaseLocks,
    /// Stop before any host is switched: remove the new release where it was unpacked, record
    /// the failure, unlock, exit 1.
    Abort,
    /// Put every switched host back on the release it had, the careful way, then exit 1
    /// (exit 4 when that fails).
    RollBack,
    /// `--no-auto-rollback`: put drained hosts back in service, leave switched hosts on the
    /// new release, exit 1.
    LeaveSwitched,
    /// Warn and go on: every host already serves the release. Every action is tried, and an
    /// interrupt no longer stops the run.
    Warn,
    /// Every host serves the release and stays on it: go on (ban, record the failure in the
    /// release log, unlock), then exit 1. Nothing is rolled back.
    Finish,
}

impl OnFailure {
    /// For `deploy plan`.
    pub fn describe(self) -> &'static str {
        match self {
            OnFailure::Stop => "stop; nothing was changed on any host",
            OnFailure::ReleaseLocks => "release the locks taken; exit 3 if another deploy holds one, else exit 1",
            OnFailure::Abort => {
                "stop before any host is switched: remove what was unpacked, record the failure, unlock, exit 1"
            }
            OnFailure::RollBack => {
                "put every switched host back on the release it had (drain, switch, activate, health, undrain), \
                 every host in service, exit 1; exit 4 if that fails"
            }
            OnFailure::LeaveSwitched => {
                "put drained hosts back in service, leave switched hosts on the new release (--no-auto-rollback), exit 1"
            }
            OnFailure::Warn => "warn and go on: every host already serves the release",
            OnFailure::Finish => {
                "every host stays on the new release (nothing is rolled back: the database may be partly \
                 contracted); ban, record the failure, unlock, exit 1"
            }
        }
    }

    /// Does an interrupt (Ctrl-C, SIGTERM) stop this step? Not once every host is switched:
    /// finishing takes a moment and leaves nothing behind.
    pub fn interruptible(self) -> bool {
        !matches!(self, OnFailure::Warn | OnFailure::Finish)
    }

    /// After a failed roll: put switched hosts back, or leave them (`--no-auto-rollback`).
    pub fn after_switch(auto_rollback: bool) -> OnFailure {
        if auto_rollback { OnFailure::RollBack } else { OnFailure::LeaveSwitched }
    }
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
    /// What the default plan shows for it, when not its whole command: a hook as written,
    /// a health check's URL.
    #[serde(skip)]
    pub shown: Option<String>,
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
    /// A canary's soak: the command reads what every backend answered (`read`), each
    /// `rules.interval`, until the canary hosts' answers pass or fail `rules` against the
    /// `peers` still on the old release.
    Canary {
        read: Reading,
        canary: Vec<String>,
        peers: Vec<String>,
        rules: Box<crate::config::canary::Canary>,
        /// `[canary] check`, run on the deploying machine each interval.
        #[serde(skip_serializing_if = "Option::is_none")]
        check: Option<Cmd>,
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

    pub fn serialize<S: Serializer>(duration: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&crate::config::format_duration(*duration))
    }
}

impl Action {
    pub fn shell(what: What, on: Target, cmd: Cmd) -> Action {
        Action { what, on, run: Run::Shell { cmd, stdin: None }, until: None, with_next: false, shown: None }
    }

    pub fn on_host(what: What, host: &str, cmd: Cmd) -> Action {
        Action::shell(what, Target::host(host), cmd)
    }

    /// Shown in the default plan instead of the whole command.
    pub fn shown(mut self, text: impl Into<String>) -> Action {
        self.shown = Some(text.into());
        self
    }

    pub fn until(mut self, until: Until) -> Action {
        self.until = Some(until);
        self
    }

    pub fn with_next(mut self) -> Action {
        self.with_next = true;
        self
    }
}

impl Step {
    /// A step whose hosts all run side by side.
    pub fn parallel(
        phase: Phase,
        title: impl Into<String>,
        parallel: usize,
        on_failure: OnFailure,
        hosts: Vec<HostActions>,
    ) -> Step {
        // Never more at once than there are hosts.
        let parallel = parallel.min(hosts.len()).max(1);
        Step { phase, title: title.into(), parallel, on_failure, batches: vec![Batch { hosts }] }
    }

    pub fn actions(&self) -> impl Iterator<Item = &Action> {
        self.hosts().flat_map(|host| host.actions.iter())
    }

    /// Every host's actions, batch after batch.
    pub fn hosts(&self) -> impl Iterator<Item = &HostActions> {
        self.batches.iter().flat_map(|batch| batch.hosts.iter())
    }
}

impl Plan {
    pub fn step(&self, phase: Phase) -> Option<&Step> {
        self.steps.iter().find(|step| step.phase == phase)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan serializes")
    }
}
