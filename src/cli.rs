//! The command line (SPEC §2): clap definitions and what each command does.

use crate::config::{self, Batch, Config};
use crate::error::Error;
use crate::plan;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[derive(Debug, Parser)]
#[command(
    name = "deploy",
    version,
    about = "Rolling, zero-downtime releases to app servers behind Varnish or HAProxy",
    long_about = "Builds an artifact from a git revision once, uploads it to every host, runs the \
database migrations once, then rolls the release host by host (drain, wait, switch, clear \
caches, health check, undrain) and bans the HTTP cache at the end.",
    after_help = "Exit codes: 0 done; 1 failed, every host back on a serving release; 2 bad usage \
or config, nothing touched; 3 another deploy holds the lock; 4 failed and could not restore a \
safe state (the exact state is printed)."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Stage to deploy, e.g. `production`: build, upload, migrate once, roll, ban.
    pub stage: Option<String>,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Deploy.toml to use (default: found upward from the working directory).
    #[arg(short = 'c', long = "config", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Branch, tag or sha to deploy (default: the stage's `revision`, else HEAD).
    #[arg(long, global = true, value_name = "REV")]
    pub revision: Option<String>,
    /// Output: human on a terminal, plain lines otherwise, or JSON events.
    #[arg(long, global = true, value_enum, default_value_t = Output::Auto)]
    pub output: Output,
    /// Show remote commands and their output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Never prompt (implied without a TTY or with CI set).
    #[arg(long, global = true)]
    pub yes: bool,
    /// Hosts switched at a time: a number or a percentage like 25%.
    #[arg(long, global = true, value_name = "N|N%")]
    pub batch: Option<String>,
    /// Do not run the migrate hook.
    #[arg(long, global = true)]
    pub skip_migrations: bool,
    /// Do not ban the HTTP cache at the end.
    #[arg(long, global = true)]
    pub no_ban: bool,
    /// Deploy HEAD even though the working copy has uncommitted changes (they are not deployed).
    #[arg(long, global = true)]
    pub allow_dirty: bool,
    /// If another deploy holds the lock, wait up to this long (e.g. 10m) instead of exiting 3.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_wait)]
    pub lock_wait: Option<std::time::Duration>,
    /// After a failure in the roll, leave switched hosts on the new release (still in service).
    #[arg(long, global = true)]
    pub no_auto_rollback: bool,
    /// Build the artifact even if this commit and build were packed before.
    #[arg(long, global = true)]
    pub rebuild: bool,
}

fn parse_wait(s: &str) -> Result<std::time::Duration, String> {
    crate::config::decode::parse_duration(s).ok_or_else(|| format!("`{s}` is not a duration like 30s, 10m or 1h"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Auto,
    Human,
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Roll every app host back to the previous (or given) release.
    Rollback {
        stage: String,
        /// Release id to roll back to (default: the previous good release).
        #[arg(long, value_name = "ID")]
        to: Option<String>,
    },
    /// Print every step and remote command of a deploy (or rollback); touches nothing.
    Plan {
        stage: String,
        /// Show the rollback plan instead.
        #[arg(long)]
        rollback: bool,
        /// With --rollback: the release id to roll back to.
        #[arg(long, value_name = "ID", requires = "rollback")]
        to: Option<String>,
    },
    /// Table of releases per host; flags hosts that disagree.
    Releases { stage: String },
    /// Preflight: ssh, paths, disk, sudo, balancer, cache, health.
    Check { stage: String },
    /// Recover after a crash: undrain hosts the journal says are drained, drop the lock.
    Unlock {
        stage: String,
        /// Remove the lock even if its holder still runs on this machine.
        #[arg(long)]
        force: bool,
    },
    /// Run a command on the stage's hosts, in parallel.
    Exec {
        stage: String,
        /// Only hosts with this role.
        #[arg(long)]
        role: Option<String>,
        /// Only this host (repeatable).
        #[arg(long)]
        host: Vec<String>,
        /// The command (after `--`).
        #[arg(last = true, required = true)]
        cmd: Vec<String>,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
    /// Write a commented starter Deploy.toml.
    Init {
        /// Framework defaults to start from.
        #[arg(long, default_value = "symfony", value_parser = clap::builder::PossibleValuesParser::new(["symfony", "laravel", "rails", "django", "node", "static"]))]
        recipe: String,
    },
}

/// Runs the parsed command line; returns the exit code on success.
pub fn run(cli: Cli) -> Result<i32, Error> {
    match (&cli.command, &cli.stage) {
        (Some(Command::Plan { stage, rollback, to }), _) => plan_cmd(&cli.global, stage, *rollback, to.as_deref()),
        (Some(Command::Init { recipe }), _) => init_cmd(&cli.global, recipe),
        (Some(Command::Rollback { stage, to }), _) => {
            if let Some(id) = to {
                check_release_id(id)?;
            }
            crate::commands::rollback::run(&cli.global, stage, to.as_deref())
        }
        (Some(Command::Releases { stage }), _) => crate::commands::releases::run(&cli.global, stage),
        (Some(Command::Unlock { stage, force }), _) => crate::commands::unlock::run(&cli.global, stage, *force),
        (Some(Command::Check { stage }), _) => crate::commands::check::run(&cli.global, stage),
        (Some(Command::Exec { stage, role, host, cmd }), _) => {
            crate::commands::exec::run(&cli.global, stage, role.as_deref(), host, cmd)
        }
        (Some(Command::Completions { shell }), _) => {
            let mut c = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut c, "deploy", &mut std::io::stdout());
            Ok(0)
        }
        (Some(Command::Man), _) => {
            let c = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_mangen::Man::new(c).render(&mut buf).map_err(|e| Error::File {
                path: "man page".into(),
                action: "render",
                source: e,
            })?;
            crate::commands::out(&String::from_utf8_lossy(&buf));
            Ok(0)
        }
        (None, Some(stage)) => crate::commands::deploy::run(&cli.global, stage),
        (None, None) => Err(Error::Usage {
            message: "which stage? `deploy STAGE` deploys to it".into(),
            hint: Some("`deploy plan STAGE` shows what a deploy will do; `deploy --help` lists the commands".into()),
        }),
    }
}

/// Finds (or takes `-c`), reads and validates the config for `stage`.
pub fn load(g: &Global, stage: &str) -> Result<Config, Error> {
    let path = match &g.config {
        Some(p) => p.clone(),
        None => {
            let cwd = std::env::current_dir().map_err(|e| Error::File {
                path: ".".into(),
                action: "read the working directory",
                source: e,
            })?;
            config::find(&cwd).ok_or(Error::NoConfig { start: cwd })?
        }
    };
    load_file(&path, stage)
}

pub fn load_file(path: &Path, stage: &str) -> Result<Config, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::File {
        path: path.to_path_buf(),
        action: "read",
        source: e,
    })?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
    let env = |k: &str| std::env::var(k).ok();
    let mut cfg = config::parse(&path.display().to_string(), &text, &dir, stage, &env)?;
    cfg.file = path.to_path_buf();
    config::remember_secrets(&cfg.redactions);
    Ok(cfg)
}

pub fn batch_override(g: &Global, cfg: &Config) -> Result<Option<Batch>, Error> {
    let Some(b) = &g.batch else { return Ok(None) };
    let batch = Batch::parse(b).map_err(|m| Error::Usage { message: format!("--batch {b}: {m}"), hint: None })?;
    let apps = cfg.stage.hosts.iter().filter(|h| h.has(config::Role::App)).count();
    if !matches!(cfg.stage.balancer, config::Balancer::None) {
        config::check_rolling(apps, batch, cfg.stage.rolling.min_in_service).map_err(|m| Error::Usage {
            message: format!("--batch {b}: {m}"),
            hint: Some("use a smaller --batch".into()),
        })?;
    }
    Ok(Some(batch))
}

/// The deploy plan for these options: `deploy plan` prints exactly what `deploy` runs.
pub fn deploy_plan(
    g: &Global,
    s: &config::StageConfig,
    release: &str,
    revision: &plan::Revision,
    owner: &plan::Owner,
    batch: Option<Batch>,
) -> plan::Plan {
    plan::deploy(
        s,
        &plan::DeployInput {
            release,
            revision,
            owner,
            batch,
            skip_migrations: g.skip_migrations,
            no_ban: g.no_ban,
            upload_parallel: UPLOAD_PARALLEL,
        },
    )
}

/// Hosts receiving and unpacking the artifact at once.
const UPLOAD_PARALLEL: usize = 8;

fn check_release_id(id: &str) -> Result<(), Error> {
    if crate::release_id::looks_like_release_id(id) {
        Ok(())
    } else {
        Err(Error::Usage {
            message: format!("--to {id}: not a release id"),
            hint: Some("release ids look like 20261126T051944Z-1a2b3c4; `deploy releases STAGE` lists them".into()),
        })
    }
}

fn plan_cmd(g: &Global, stage: &str, rollback: bool, to: Option<&str>) -> Result<i32, Error> {
    let cfg = load(g, stage)?;
    let batch = batch_override(g, &cfg)?;
    let now = SystemTime::now();
    let owner = crate::who::owner(stage, now);
    let s = &cfg.stage;
    let p = if rollback {
        if let Some(id) = to {
            check_release_id(id)?;
        }
        plan::rollback(s, &plan::RollbackInput { target: to, from: None, owner: &owner, batch, no_ban: g.no_ban })
    } else {
        let rev = g.revision.clone().or_else(|| s.app.revision.clone()).unwrap_or_else(|| "HEAD".into());
        let revision = crate::revision::resolve(&s.app.repository, &rev)?;
        let id = crate::release_id::release_id(now, &revision.commit);
        deploy_plan(g, s, &id, &revision, &owner, batch)
    };
    let text = match g.output {
        Output::Json => format!("{}\n", p.to_json()),
        _ => p.to_string(),
    };
    crate::commands::out(&cfg.redact(&text));
    Ok(0)
}

fn init_cmd(g: &Global, recipe: &str) -> Result<i32, Error> {
    let path = g.config.clone().unwrap_or_else(|| PathBuf::from("Deploy.toml"));
    if path.exists() {
        return Err(Error::Exists { path });
    }
    let abs = std::path::absolute(&path).unwrap_or(path.clone());
    let name = abs
        .parent()
        .and_then(|d| d.file_name())
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "app".into());
    let text = crate::init::starter(recipe, &name);
    // create_new: never overwrite, even if the file appeared since the check above.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => Error::Exists { path: path.clone() },
        _ => Error::File { path: path.clone(), action: "write", source: e },
    })?;
    f.write_all(text.as_bytes()).map_err(|e| Error::File { path: path.clone(), action: "write", source: e })?;
    eprintln!("wrote {} (recipe {recipe}); edit the hosts, then run `deploy plan production`", path.display());
    Ok(0)
}
