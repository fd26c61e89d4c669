//! The command line (SPEC §2): the clap definitions, nothing else. `settings` resolves what
//! they parse, once, into the plain values the commands take.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

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
    #[command(flatten)]
    pub deploy: DeployArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
    /// The stage to deploy, as named in Deploy.toml (`[stages.NAME]`), e.g. `production`:
    /// build, upload, migrate once, roll, ban.
    pub stage: Option<String>,
}

/// Options of every command.
#[derive(Debug, Args)]
pub struct Global {
    /// Deploy.toml to use (default: found upward from the working directory).
    #[arg(short = 'c', long = "config", global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Output: human on a terminal, plain lines otherwise, or JSON events.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Auto)]
    pub output: OutputFormat,
    /// Show remote commands and their output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only errors and the final result.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// `deploy STAGE`'s options (given with a command, they are an error).
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    pub build: BuildArgs,
    #[command(flatten)]
    pub shape: ShapeArgs,
    #[command(flatten)]
    pub run: RunArgs,
    #[command(flatten)]
    pub only: OnlyArgs,
    /// Never prompt (implied without a TTY or with CI set).
    #[arg(long)]
    pub yes: bool,
    /// Deploy even where the hosts' release log says another stage deployed last (two stages
    /// listing the same host and path).
    #[arg(long)]
    pub force: bool,
}

impl DeployArgs {
    /// The first option given, as written on the command line.
    pub fn first_given(&self) -> Option<&'static str> {
        let given = [
            (self.build.revision.is_some(), "--revision"),
            (self.build.allow_dirty, "--allow-dirty"),
            (self.build.rebuild, "--rebuild"),
            (self.build.skip_migrations, "--skip-migrations"),
            (self.build.no_canary, "--no-canary"),
            (self.shape.batch.is_some(), "--batch"),
            (self.shape.no_ban, "--no-ban"),
            (self.run.lock_wait.is_some(), "--lock-wait"),
            (self.run.no_auto_rollback, "--no-auto-rollback"),
            (!self.only.hosts.is_empty(), "--host"),
            (self.only.role.is_some(), "--role"),
            (self.yes, "--yes"),
            (self.force, "--force"),
        ];
        given.into_iter().find(|(set, _)| *set).map(|(_, name)| name)
    }
}

/// What is built and migrated: `deploy STAGE` and `deploy plan`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Branch, tag or sha to deploy (default: the stage's `revision`, else HEAD).
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Deploy HEAD even though the working copy has uncommitted changes (they are not deployed).
    #[arg(long)]
    pub allow_dirty: bool,
    /// Build the artifact even if this commit and build were packed before.
    #[arg(long)]
    pub rebuild: bool,
    /// Do not run the migrate hook.
    #[arg(long)]
    pub skip_migrations: bool,
    /// Roll every host without the canary and its soak (`[rolling] canary`), this once.
    #[arg(long)]
    pub no_canary: bool,
}

/// How the roll goes: `deploy STAGE`, `deploy rollback` and `deploy plan`.
#[derive(Debug, Args)]
pub struct ShapeArgs {
    /// Hosts switched at a time: a number or a percentage like 25%.
    #[arg(long, value_name = "N|N%")]
    pub batch: Option<String>,
    /// Do not ban the HTTP cache at the end.
    #[arg(long)]
    pub no_ban: bool,
}

/// Which hosts a run changes: `deploy STAGE`, `deploy rollback` and `deploy plan`.
#[derive(Debug, Args)]
pub struct OnlyArgs {
    /// Only this host (repeatable, or comma-separated): the others keep their release and stay
    /// in service (one host first, by hand).
    #[arg(long = "host", value_name = "NAME", value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// Only hosts with this role: app, worker or migrate (with --host: hosts that have both).
    #[arg(long, value_name = "ROLE")]
    pub role: Option<String>,
}

/// How a run that changes hosts behaves: `deploy STAGE` and `deploy rollback`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// If another deploy holds the lock, wait up to this long (e.g. 10m) instead of exiting 3.
    #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
    pub lock_wait: Option<std::time::Duration>,
    /// After a failure in the roll, leave switched hosts on the new release (still in service).
    #[arg(long)]
    pub no_auto_rollback: bool,
}

fn parse_wait(text: &str) -> Result<std::time::Duration, String> {
    crate::config::parse_duration(text).ok_or_else(|| format!("`{text}` is not a duration like 30s, 10m or 1h"))
}

/// `--output`, as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Auto,
    Human,
    Plain,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Roll every app host back to the previous (or given) release.
    #[command(after_help = "Migrations are not reversed: the database stays as the newer release left it. \
`deploy releases STAGE` lists the release ids `--to` takes.")]
    Rollback {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
        /// Release id to roll back to (default: the previous good release; `deploy releases
        /// STAGE` lists them).
        #[arg(long, value_name = "ID")]
        to: Option<String>,
        #[command(flatten)]
        shape: ShapeArgs,
        #[command(flatten)]
        run: RunArgs,
        #[command(flatten)]
        only: OnlyArgs,
        /// Roll back past a release whose post_migrate ran (the database was contracted for
        /// it): check first that the older code works with today's schema.
        #[arg(long)]
        force: bool,
    },
    /// Print every step and remote command of a deploy (or rollback); touches nothing.
    Plan {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
        /// Show the rollback plan instead.
        #[arg(long)]
        rollback: bool,
        /// With --rollback: the release id to roll back to.
        #[arg(long, value_name = "ID", requires = "rollback")]
        to: Option<String>,
        #[command(flatten)]
        build: BuildArgs,
        #[command(flatten)]
        shape: ShapeArgs,
        #[command(flatten)]
        only: OnlyArgs,
    },
    /// The stage's configuration after the merge (recipe < file < stage): every value as
    /// written, with where it was written. Offline; `${VAR}` shows as written.
    Config {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
    },
    /// Table of releases per host; flags hosts that disagree.
    Releases {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
    },
    /// Preflight: ssh, paths, disk, sudo, balancer, cache, health. Changes nothing.
    Check {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
    },
    /// Prepare new servers: create the deploy path, releases/, shared/ and the shared folders
    /// and files (from [setup] templates, else empty; nothing that exists is touched), then
    /// check sudo and, as [setup] web_user, that the web server can write where the app writes.
    Setup {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
    },
    /// Recover after a crash: undrain hosts the journal says are drained, drop the lock.
    Unlock {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
        /// Remove the lock even if its holder still runs on this machine.
        #[arg(long)]
        force: bool,
    },
    /// Hold a stage by hand (an incident, a freeze), see who holds it and why, let it go.
    Lock {
        #[command(subcommand)]
        action: LockAction,
    },
    /// Maintenance mode: the balancer answers every request 503 with Retry-After (for a long
    /// migration) and keeps checking the app hosts; deploys can run meanwhile.
    Maintenance {
        #[command(subcommand)]
        action: MaintenanceAction,
    },
    /// Run a command on the stage's hosts, in parallel.
    Exec {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
        /// Only hosts with this role.
        #[arg(long)]
        role: Option<String>,
        /// Only this host (repeatable).
        #[arg(long)]
        host: Vec<String>,
        /// Run the command as one shell line (`sh -c`), for pipes, `&&` or `$VARS`; without it
        /// the words after `--` are the program and its arguments, passed as they are.
        #[arg(long)]
        shell: bool,
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

/// `deploy maintenance …`.
#[derive(Debug, Subcommand)]
pub enum MaintenanceAction {
    /// Answer every request with the maintenance page (503, Retry-After).
    On {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
        /// The page's text (Varnish; HAProxy serves its own errorfile).
        #[arg(long, short)]
        message: Option<String>,
        /// The Retry-After the page sends (default 5m; Varnish).
        #[arg(long, value_name = "DURATION", value_parser = parse_wait)]
        retry_after: Option<std::time::Duration>,
    },
    /// Serve the site again.
    Off {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
    },
}

/// `deploy lock …`.
#[derive(Debug, Subcommand)]
pub enum LockAction {
    /// Who holds the stage's lock on each host, since when, and why. Changes nothing.
    Status {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
    },
    /// Take the stage's lock on every host and keep it until `deploy lock release`: deploys,
    /// rollbacks and `deploy unlock` (without --force) exit 3, showing the message.
    Acquire {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
        /// Why, for whoever meets the lock (e.g. "incident 4711: do not deploy").
        #[arg(long, short)]
        message: String,
    },
    /// Let go of a lock taken with `deploy lock acquire` (a deploy's lock: `deploy unlock`).
    Release {
        /// The stage, as named in Deploy.toml (`[stages.NAME]`).
        stage: String,
    },
}
