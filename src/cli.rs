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
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Auto)]
    pub output: OutputFormat,
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
