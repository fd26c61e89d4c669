//! The command line resolved once into plain values: what to do ([`Task`]) and how to say it.
//! Only this module reads the clap definitions; the commands take a [`Settings`].

use crate::cli::{
    BuildArgs, Cli, Command, DeployArgs, LockAction, MaintenanceAction, OnlyArgs, OutputFormat, RunArgs, ShapeArgs,
};
use crate::config::{BatchSize, Role};
use crate::error::Error;
use std::path::PathBuf;
use std::time::Duration;

/// How a run speaks: human (live lines, a terminal), plain lines, or JSON events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    Human,
    Plain,
    Json,
}

#[derive(Debug)]
pub struct Settings {
    /// `-c PATH`; `None`: `Deploy.toml` found upward from the working directory.
    pub config: Option<PathBuf>,
    pub output: OutputMode,
    pub verbose: bool,
    pub quiet: bool,
    pub task: Task,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Task {
    Deploy {
        stage: String,
        build: BuildOptions,
        roll: RollOptions,
        assume_yes: bool,
    },
    Rollback {
        stage: String,
        to: Option<String>,
        roll: RollOptions,
    },
    /// `deploy plan`: the deploy plan, or with `rollback` the rollback plan (to `to`).
    Plan {
        stage: String,
        rollback: bool,
        to: Option<String>,
        revision: Option<String>,
        /// `--allow-dirty`: no note about uncommitted changes.
        allow_dirty: bool,
        roll: RollOptions,
    },
    Releases {
        stage: String,
    },
    /// `deploy lock status|acquire|release STAGE`.
    Lock {
        stage: String,
        action: LockTask,
    },
    /// `deploy config STAGE`: the merged values and where each came from.
    Config {
        stage: String,
    },
    Check {
        stage: String,
    },
    /// `deploy maintenance on|off STAGE`.
    Maintenance {
        stage: String,
        on: bool,
        message: Option<String>,
        retry_after: Option<Duration>,
    },
    /// `deploy setup STAGE`.
    Setup {
        stage: String,
    },
    Unlock {
        stage: String,
        force: bool,
    },
    Exec {
        stage: String,
        role: Option<Role>,
        hosts: Vec<String>,
        command: Vec<String>,
        /// `--shell`: the words are one shell line.
        shell: bool,
    },
    Init {
        recipe: String,
    },
    Completions {
        shell: clap_complete::Shell,
        cli: Box<clap::Command>,
    },
    Man {
        cli: Box<clap::Command>,
    },
    /// `deploy` with no stage: lists the stages, exit 2.
    Stages,
}

/// What `deploy lock` does.
#[derive(Debug)]
pub enum LockTask {
    Status,
    Acquire { message: String },
    Release,
}

/// What is built.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// `--revision`; `None`: the stage's `revision`, else `HEAD`.
    pub revision: Option<String>,
    pub allow_dirty: bool,
    pub rebuild: bool,
}

/// How the release rolls.
#[derive(Debug, Clone)]
pub struct RollOptions {
    /// `--batch`, its syntax checked (the host count is checked with the config).
    pub batch: Option<BatchSize>,
    pub skip_migrations: bool,
    /// `--no-canary`.
    pub no_canary: bool,
    pub no_ban: bool,
    /// After a failure in the roll, put switched hosts back (`--no-auto-rollback`: false).
    pub auto_rollback: bool,
    pub lock_wait: Option<Duration>,
    /// `--force`: deploy even where another stage deployed last.
    pub force: bool,
    /// `--host` (empty: every host) and `--role`: the hosts the run changes.
    pub hosts: Vec<String>,
    pub role: Option<Role>,
}

/// Is this run unattended (no prompts, no live lines)?
pub fn unattended() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty() && value != "false" && value != "0")
}

impl Settings {
    /// Resolves the parsed command line; bad values are usage errors (exit 2).
    pub fn from_cli(cli: Cli) -> Result<Settings, Error> {
        let global = cli.global;
        let output = match global.output {
            OutputFormat::Auto if console::Term::stderr().is_term() && !unattended() => OutputMode::Human,
            OutputFormat::Auto | OutputFormat::Plain => OutputMode::Plain,
            OutputFormat::Human => OutputMode::Human,
            OutputFormat::Json => OutputMode::Json,
        };
        let task = task(cli.command, cli.stage, cli.deploy)?;
        Ok(Settings { config: global.config, output, verbose: global.verbose > 0, quiet: global.quiet, task })
    }
}

fn task(command: Option<Command>, stage: Option<String>, deploy: DeployArgs) -> Result<Task, Error> {
    if let Some(command) = &command
        && let Some(option) = deploy.first_given()
    {
        let name = command_name(command);
        return Err(Error::Usage {
            message: format!("{option} is an option of `deploy STAGE`, not of `deploy {name}`"),
            hint: Some(format!("`deploy {name} --help` lists the options of `deploy {name}`")),
        });
    }
    Ok(match (command, stage) {
        (Some(Command::Rollback { stage, to, shape, run, only, force }), _) => Task::Rollback {
            stage,
            to: checked_id(to)?,
            roll: RollOptions { force, ..roll_options(&shape, &run, &only, false)? },
        },
        (Some(Command::Plan { stage, rollback, to, build, shape, only }), _) => {
            let to = if rollback { checked_id(to)? } else { to };
            let run = RunArgs { lock_wait: None, no_auto_rollback: false };
            let roll =
                RollOptions { no_canary: build.no_canary, ..roll_options(&shape, &run, &only, build.skip_migrations)? };
            Task::Plan { stage, rollback, to, revision: build.revision, allow_dirty: build.allow_dirty, roll }
        }
        (Some(Command::Releases { stage }), _) => Task::Releases { stage },
        (Some(Command::Config { stage }), _) => Task::Config { stage },
        (Some(Command::Lock { action }), _) => match action {
            LockAction::Status { stage } => Task::Lock { stage, action: LockTask::Status },
            LockAction::Acquire { stage, message } => Task::Lock { stage, action: LockTask::Acquire { message } },
            LockAction::Release { stage } => Task::Lock { stage, action: LockTask::Release },
        },
        (Some(Command::Check { stage }), _) => Task::Check { stage },
        (Some(Command::Setup { stage }), _) => Task::Setup { stage },
        (Some(Command::Maintenance { action }), _) => match action {
            MaintenanceAction::On { stage, message, retry_after } => {
                Task::Maintenance { stage, on: true, message, retry_after }
            }
            MaintenanceAction::Off { stage } => {
                Task::Maintenance { stage, on: false, message: None, retry_after: None }
            }
        },
        (Some(Command::Unlock { stage, force }), _) => Task::Unlock { stage, force },
        (Some(Command::Exec { stage, role, host, cmd, shell }), _) => {
            Task::Exec { stage, role: role.as_deref().map(checked_role).transpose()?, hosts: host, command: cmd, shell }
        }
        (Some(Command::Init { recipe }), _) => Task::Init { recipe },
        (Some(Command::Completions { shell }), _) => Task::Completions { shell, cli: Box::new(command_line()) },
        (Some(Command::Man), _) => Task::Man { cli: Box::new(command_line()) },
        (None, Some(stage)) => {
            let DeployArgs { build, shape, run, only, yes, force } = deploy;
            let roll = RollOptions {
                force,
                no_canary: build.no_canary,
                ..roll_options(&shape, &run, &only, build.skip_migrations)?
            };
            let BuildArgs { revision, allow_dirty, rebuild, .. } = build;
            Task::Deploy {
                stage,
                build: BuildOptions { revision, allow_dirty, rebuild },
                roll,
                assume_yes: yes || unattended(),
            }
        }
        // `deploy` alone: which stages there are (a usage error that lists them).
        (None, None) => Task::Stages,
    })
}

/// The command as typed after `deploy`.
fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Rollback { .. } => "rollback",
        Command::Plan { .. } => "plan",
        Command::Releases { .. } => "releases",
        Command::Config { .. } => "config",
        Command::Lock { .. } => "lock",
        Command::Check { .. } => "check",
        Command::Setup { .. } => "setup",
        Command::Maintenance { .. } => "maintenance",
        Command::Unlock { .. } => "unlock",
        Command::Exec { .. } => "exec",
        Command::Completions { .. } => "completions",
        Command::Man => "man",
        Command::Init { .. } => "init",
    }
}

/// The clap definitions as a value (completions and the man page are made from them).
fn command_line() -> clap::Command {
    <Cli as clap::CommandFactory>::command()
}

fn roll_options(
    shape: &ShapeArgs,
    run: &RunArgs,
    only: &OnlyArgs,
    skip_migrations: bool,
) -> Result<RollOptions, Error> {
    let batch = match &shape.batch {
        Some(text) => Some(
            BatchSize::parse(text)
                .map_err(|message| Error::Usage { message: format!("--batch {text}: {message}"), hint: None })?,
        ),
        None => None,
    };
    Ok(RollOptions {
        batch,
        skip_migrations,
        no_canary: false,
        no_ban: shape.no_ban,
        auto_rollback: !run.no_auto_rollback,
        lock_wait: run.lock_wait,
        force: false,
        hosts: checked_hosts(&only.hosts)?,
        role: only.role.as_deref().map(checked_role).transpose()?,
    })
}

/// `--host` names: an empty one (`--host "$UNSET"`) would widen the run to every host.
fn checked_hosts(hosts: &[String]) -> Result<Vec<String>, Error> {
    if hosts.iter().any(|name| name.trim().is_empty()) {
        return Err(Error::Usage {
            message: "--host: an empty host name".into(),
            hint: Some("name the hosts to change, e.g. --host web1 (repeatable, or web1,web2)".into()),
        });
    }
    Ok(hosts.to_vec())
}

fn checked_id(to: Option<String>) -> Result<Option<String>, Error> {
    match to {
        Some(id) if !crate::release_id::looks_like_release_id(&id) => Err(Error::Usage {
            message: format!("--to {id}: not a release id"),
            hint: Some("release ids look like 20261126T051944Z-1a2b3c4; `deploy releases STAGE` lists them".into()),
        }),
        to => Ok(to),
    }
}

fn checked_role(name: &str) -> Result<Role, Error> {
    Role::ALL.iter().find(|(known, _)| *known == name).map(|(_, role)| *role).ok_or_else(|| Error::Usage {
        message: format!("--role {name}: no such role"),
        hint: Some("roles are app, worker, migrate and balancer".into()),
    })
}
