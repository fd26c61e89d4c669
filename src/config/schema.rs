//! The typed, validated configuration of one stage (recipe, file and stage overrides merged).

use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Serialize)]
pub struct StageConfig {
    pub stage: String,
    /// The site the stage deploys (`site`, default: the stage's name). Stages of one site
    /// may deploy to the same hosts and path: the same site behind two balancers.
    pub site: String,
    pub app: App,
    pub build: Build,
    /// `[artifact] store`: hosts fetch the artifact from it (`None`: sent over ssh).
    pub store: Option<super::store::Store>,
    pub shared: SharedPaths,
    pub hooks: Hooks,
    pub health: Health,
    pub rolling: Rolling,
    pub ssh: Ssh,
    pub hosts: Vec<Host>,
    pub balancer: Balancer,
    pub http_cache: Vec<HttpCache>,
    pub notify: Vec<Notify>,
    /// Ask before deploying to this stage (skipped with `--yes` or without a TTY).
    pub confirm: bool,
    /// `[rolling] canary`, `soak` and `[canary]`.
    pub canary: super::canary::Canary,
    /// `[setup]`: what `deploy setup` prepares and checks.
    pub setup: super::setup::Setup,
    /// `--host`/`--role`: the hosts this run changes (`None`: every host that gets releases).
    #[serde(skip)]
    pub only: Option<super::Selection>,
}

/// A webhook told about deploys (`[[notify]]`).
#[derive(Debug, Clone, Serialize)]
pub struct Notify {
    pub kind: NotifyKind,
    pub url: String,
    /// Which moments; all of them by default.
    pub on: Vec<NotifyOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// Slack-compatible incoming webhook: `{"text": …}`.
    Slack,
    /// A plain JSON object with every detail.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyOn {
    Start,
    Success,
    Failure,
    Rollback,
}

impl NotifyOn {
    pub const ALL: [(&'static str, NotifyOn); 4] = [
        ("start", NotifyOn::Start),
        ("success", NotifyOn::Success),
        ("failure", NotifyOn::Failure),
        ("rollback", NotifyOn::Rollback),
    ];
}

#[derive(Debug, Clone, Serialize)]
pub struct App {
    pub name: String,
    pub recipe: Option<String>,
    /// Absolute deploy path on every host.
    pub path: String,
    pub keep_releases: u32,
    /// Git repository to build from.
    pub repository: PathBuf,
    /// Default revision (the stage's `revision`, else `app.revision`).
    pub revision: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Build {
    pub commands: Vec<String>,
    pub exclude: Vec<String>,
    /// Send a host only the files its current release lacks; take the others from it.
    pub delta: bool,
    /// How a warm release takes the files it was not sent from the current release.
    pub reuse: Reuse,
}

impl Default for Build {
    fn default() -> Self {
        Build { commands: Vec::new(), exclude: Vec::new(), delta: true, reuse: Reuse::Copy }
    }
}

/// `[build] reuse`: how a warm release gets the unchanged files of the current release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reuse {
    /// `cp --reflink=auto`: its own inodes, so a write into the new release never reaches the live one.
    Copy,
    /// Hard links: shared inodes; nothing may write into the release (checked after prepare).
    Hardlink,
}

/// `[shared]`: paths that live outside releases, linked into each one.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SharedPaths {
    pub dirs: Vec<String>,
    pub files: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Hooks {
    pub prepare: Vec<String>,
    pub activate: Vec<String>,
    pub migrate: Option<String>,
    /// Once, after every host is switched and healthy (the contract of expand/contract).
    pub post_migrate: Option<String>,
    pub worker: WorkerHooks,
    /// The longest one hook or migration may run; then it is killed on the host with every
    /// process it started, and fails.
    #[serde(with = "super::duration::as_text")]
    pub timeout: Duration,
}

/// `[hooks] timeout` when not set.
pub const HOOK_TIMEOUT: Duration = Duration::from_secs(15 * 60);

impl Default for Hooks {
    fn default() -> Self {
        Hooks {
            prepare: Vec::new(),
            activate: Vec::new(),
            migrate: None,
            post_migrate: None,
            worker: WorkerHooks::default(),
            timeout: HOOK_TIMEOUT,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct WorkerHooks {
    pub prepare: Vec<String>,
    pub activate: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthFrom {
    /// Fetched on the app host itself, over ssh (curl).
    Host,
    /// Fetched from the deploying machine.
    Local,
}

#[derive(Debug, Clone, Serialize)]
pub struct Health {
    /// With `{host}` and `{address}` placeholders; `None` = no health check.
    pub url: Option<String>,
    pub from: HealthFrom,
    pub expect_status: u16,
    #[serde(with = "super::duration::as_text")]
    pub timeout: Duration,
    pub retries: u32,
    #[serde(with = "super::duration::as_text")]
    pub interval: Duration,
    /// Sent with each check (`Host` for a name-based virtual host…); `{host}` and `{address}`
    /// in a value are filled like the URL's.
    pub headers: Vec<(String, String)>,
}

impl Health {
    /// The URL for one host, placeholders filled.
    pub fn url_for(&self, host: &Host) -> Option<String> {
        self.url.as_ref().map(|url| url.replace("{host}", &host.name).replace("{address}", &host.address))
    }

    /// The headers for one host, placeholders filled.
    pub fn headers_for(&self, host: &Host) -> Vec<(String, String)> {
        let fill = |value: &str| value.replace("{host}", &host.name).replace("{address}", &host.address);
        self.headers.iter().map(|(name, value)| (name.clone(), fill(value))).collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchSize {
    Count(u32),
    Percent(u32),
}

impl BatchSize {
    /// Hosts per batch for `hosts` app hosts: a percentage rounds down but is at least one;
    /// a count larger than `hosts` means all of them.
    pub fn size(self, hosts: usize) -> usize {
        let hosts = hosts.max(1);
        match self {
            BatchSize::Count(count) => (count as usize).clamp(1, hosts),
            BatchSize::Percent(percent) => (hosts * percent as usize / 100).clamp(1, hosts),
        }
    }

    /// Parses `2`, or `"25%"` as given on the command line.
    pub fn parse(text: &str) -> Result<BatchSize, String> {
        let text = text.trim();
        let (digits, percent) = match text.strip_suffix('%') {
            Some(digits) => (digits.trim(), true),
            None => (text, false),
        };
        let number: u32 = digits.parse().map_err(|_| {
            format!("`{text}` is not a batch size: write a number of hosts like 2 or a percentage like \"25%\"")
        })?;
        if number == 0 {
            return Err("a batch of 0 hosts would never roll anything: use at least 1 (or \"1%\")".into());
        }
        if percent {
            if number > 100 {
                return Err(format!("a batch of {number}% is over 100%"));
            }
            Ok(BatchSize::Percent(number))
        } else {
            Ok(BatchSize::Count(number))
        }
    }
}

impl std::fmt::Display for BatchSize {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchSize::Count(count) => write!(out, "{count}"),
            BatchSize::Percent(percent) => write!(out, "{percent}%"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Rolling {
    pub batch: BatchSize,
    #[serde(with = "super::duration::as_text")]
    pub drain_timeout: Duration,
    /// Never drain below this many healthy backends.
    pub min_in_service: u32,
    /// `canary` and `soak` as written, and where `canary` was (the stage's `Canary` is made
    /// from them and `[canary]`).
    #[serde(skip)]
    pub canary: Option<BatchSize>,
    #[serde(skip)]
    pub soak: Option<Duration>,
    #[serde(skip)]
    pub canary_loc: Option<super::source::Loc>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Ssh {
    pub user: Option<String>,
    pub config: Option<String>,
    pub identity: Option<String>,
    pub known_hosts: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    App,
    Worker,
    Migrate,
    Balancer,
}

impl Role {
    pub const ALL: [(&'static str, Role); 4] =
        [("app", Role::App), ("worker", Role::Worker), ("migrate", Role::Migrate), ("balancer", Role::Balancer)];

    pub fn name(self) -> &'static str {
        Role::ALL.iter().find(|(_, role)| *role == self).map(|(name, _)| *name).unwrap_or("?")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Host {
    pub name: String,
    pub address: String,
    pub roles: Vec<Role>,
    /// Overrides `ssh.port` for this host.
    pub port: Option<u16>,
    /// Overrides `ssh.user` for this host.
    pub user: Option<String>,
}

impl Host {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// App and worker hosts get releases.
    pub fn gets_release(&self) -> bool {
        self.has(Role::App) || self.has(Role::Worker)
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Balancer {
    None,
    Varnish {
        host: String,
        /// varnishadm `-T`.
        admin: String,
        /// varnishadm `-S`.
        secret: String,
        /// varnishd `-n` workdir, for varnishstat (in-flight counters), when not the default.
        instance: Option<String>,
        /// host name → backend name.
        backends: Vec<(String, String)>,
    },
    Haproxy {
        host: String,
        socket: String,
        backend: String,
        /// host name → server name.
        servers: Vec<(String, String)>,
    },
    Command {
        /// Where the commands run; `None` = on the deploying machine.
        host: Option<String>,
        drain: String,
        undrain: String,
        /// Prints the number of in-flight requests of `{backend}`; drain waits until it prints 0.
        in_flight: Option<String>,
        /// Exits 0 when `{backend}` is healthy in the balancer again.
        healthy: Option<String>,
        /// Prints every backend's answer counters as JSON, for a canary:
        /// `{"web1": {"requests": 120, "errors": 3}, …}` (counted since any moment).
        stats: Option<String>,
        backends: Vec<(String, String)>,
    },
}

impl Balancer {
    /// The backend (or server) name of a host in the balancer.
    pub fn backend_of<'a>(&'a self, host: &'a str) -> &'a str {
        let map = match self {
            Balancer::None => return host,
            Balancer::Varnish { backends, .. } => backends,
            Balancer::Haproxy { servers, .. } => servers,
            Balancer::Command { backends, .. } => backends,
        };
        map.iter().find(|(name, _)| name == host).map_or(host, |(_, backend)| backend.as_str())
    }

    pub fn host(&self) -> Option<&str> {
        match self {
            Balancer::None => None,
            Balancer::Varnish { host, .. } | Balancer::Haproxy { host, .. } => Some(host),
            Balancer::Command { host, .. } => host.as_deref(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Balancer::None => "none",
            Balancer::Varnish { .. } => "varnish",
            Balancer::Haproxy { .. } => "haproxy",
            Balancer::Command { .. } => "command",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HttpCache {
    Varnish {
        host: String,
        admin: String,
        secret: String,

        bans: Vec<String>,
    },
    Http {
        /// Where the request is sent from; `None` = the deploying machine.
        host: Option<String>,
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        expect_status: Option<u16>,
    },
    Command {
        host: Option<String>,
        commands: Vec<String>,
    },
}
