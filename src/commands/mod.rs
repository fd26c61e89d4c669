//! The commands. `run` dispatches the resolved settings; each command is one file. A deploy
//! and a rollback share one [`session::Session`] (runtime, connections, signals, lock,
//! webhooks, the final event); `plans` builds their plans for them and for `deploy plan`.

pub mod check;
mod config_origins;
mod connect;
pub mod deploy;
mod docs;
pub mod exec;
mod history;
pub mod init;
mod maintenance;
pub mod plan;
mod plans;
pub mod releases;
pub mod rollback;
mod session;
mod setup;
mod stage_lock;
mod stages;
pub mod unlock;

use crate::config::{self, Config};
use crate::error::Error;
use crate::report::{Human, Json, Plain, Reporter};
use crate::settings::{OutputMode, Settings, Task};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Runs what the settings ask for; returns the exit code on success.
pub fn run(settings: &Settings) -> Result<i32, Error> {
    match &settings.task {
        Task::Deploy { stage, build, roll, assume_yes } => deploy::run(settings, stage, build, roll, *assume_yes),
        Task::Rollback { stage, to, roll } => rollback::run(settings, stage, to.as_deref(), roll),
        Task::Plan { stage, rollback, to, revision, allow_dirty, roll } => {
            plan::run(settings, stage, *rollback, to.as_deref(), revision.as_deref(), *allow_dirty, roll)
        }
        Task::Releases { stage } => releases::run(settings, stage),
        Task::Config { stage } => config_origins::run(settings, stage),
        Task::Lock { stage, action } => stage_lock::run(settings, stage, action),
        Task::Check { stage } => check::run(settings, stage),
        Task::Setup { stage } => setup::run(settings, stage),
        Task::Maintenance { stage, on, message, retry_after } => maintenance::run(
            settings,
            stage,
            &maintenance::Ask { on: *on, message: message.as_deref(), retry_after: *retry_after },
        ),
        Task::Unlock { stage, force } => unlock::run(settings, stage, *force),
        Task::Exec { stage, role, hosts, command, shell } => exec::run(settings, stage, *role, hosts, command, *shell),
        Task::Init { recipe } => init::run(settings, recipe),
        Task::Completions { shell, cli } => docs::completions(*shell, cli),
        Task::Man { cli } => docs::man(cli),
        Task::Stages => stages::run(settings),
    }
}

/// Finds (or takes `-c`), reads and validates the config for `stage`.
pub fn load(settings: &Settings, stage: &str) -> Result<Config, Error> {
    let path = match &settings.config {
        Some(path) => path.clone(),
        None => {
            let cwd = std::env::current_dir().map_err(|source| Error::File {
                path: ".".into(),
                action: "read the working directory",
                source,
            })?;
            config::find(&cwd).ok_or(Error::NoConfig { start: cwd })?
        }
    };
    load_file(&path, stage)
}

pub fn load_file(path: &Path, stage: &str) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::File {
        path: path.to_path_buf(),
        action: "read",
        source,
    })?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let env = |name: &str| std::env::var(name).ok();
    let mut cfg = config::parse(&path.display().to_string(), &text, &dir, stage, &env)?;
    cfg.file = path.to_path_buf();
    config::remember_secrets(&cfg.secrets);
    Ok(cfg)
}

/// The reporter the settings ask for; `hosts` get a live line each in human mode.
pub fn reporter(settings: &Settings, cfg: &Config, hosts: &[String]) -> Arc<dyn Reporter> {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|value| !value.is_empty());
    if no_color || !console::Term::stderr().is_term() {
        console::set_colors_enabled(false);
        console::set_colors_enabled_stderr(false);
    }
    let redactions = cfg.secrets.clone();
    match settings.output {
        OutputMode::Json => Arc::new(Json::new(settings.verbose, redactions)),
        OutputMode::Human => Arc::new(Human::new(hosts, settings.verbose, settings.quiet, redactions)),
        OutputMode::Plain => Arc::new(Plain::new(settings.verbose, settings.quiet, redactions)),
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|source| Error::File {
        path: "tokio runtime".into(),
        action: "start",
        source,
    })
}

/// Hosts a command visits side by side, at most this many at once (like the connections).
const HOSTS_AT_ONCE: usize = 16;

/// Runs `visit` for each item, up to [`HOSTS_AT_ONCE`] at once; the answers in the items'
/// order. `deploy check`, `setup` and `lock` at 256 hosts: seconds, not minutes.
pub async fn each_host<I, T, F, Fut>(items: I, visit: F) -> Vec<T>
where
    I: IntoIterator,
    F: FnMut(I::Item) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    use futures_util::stream::{self, StreamExt};
    stream::iter(items).map(visit).buffered(HOSTS_AT_ONCE).collect().await
}

/// Writes to stdout; a closed pipe (`deploy releases | head`) is not an error.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// The names of the hosts a run talks to, and of those it changes (every host, and every
/// host that gets releases, without `--host`/`--role`).
fn host_names(cfg: &Config) -> (Vec<String>, Vec<String>) {
    let stage = &cfg.stage;
    let all = stage.hosts.iter().filter(|host| stage.touches(host)).map(|host| host.name.clone()).collect();
    let release = stage.hosts.iter().filter(|host| stage.changes(host)).map(|host| host.name.clone()).collect();
    (all, release)
}
