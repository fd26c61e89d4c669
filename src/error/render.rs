//! The one renderer: every error, config errors and run failures included, is first said as
//! its parts ([`Said`]), then laid out here the same way:
//!
//! ```text
//! error: what went wrong           (one line per problem; a located one shows its source)
//!     details, one per line
//!   = notes
//!   = hint: what to do
//!   = fix: the command that repairs it
//! ```

use super::Error;
use crate::config::{ConfigError, ConfigErrors};
use crate::remote::lock::describe_owner;
use crate::runner::{Aftermath, Cause, RunError};
use crate::transport::ConnectProblem;
use std::fmt;

/// One `error:` line, with where it is in a file when it is about one.
struct Problem<'a> {
    message: String,
    at: Option<&'a ConfigError>,
}

/// What an error says, before layout.
#[derive(Default)]
struct Said<'a> {
    problems: Vec<Problem<'a>>,
    details: Vec<String>,
    notes: Vec<String>,
    hint: Option<String>,
    fix: Option<String>,
    /// A last line after a blank one.
    footer: Option<String>,
}

impl<'a> Said<'a> {
    fn error(message: impl Into<String>) -> Said<'a> {
        Said { problems: vec![Problem { message: message.into(), at: None }], ..Said::default() }
    }

    fn hint(mut self, hint: impl Into<String>) -> Said<'a> {
        self.hint = Some(hint.into());
        self
    }
}

fn write_said(out: &mut fmt::Formatter<'_>, said: &Said) -> fmt::Result {
    for (index, problem) in said.problems.iter().enumerate() {
        if index > 0 && problem.at.is_some() {
            writeln!(out)?;
        }
        writeln!(out, "error: {}", problem.message)?;
        if let Some(at) = problem.at {
            write_location(out, at)?;
        }
    }
    for line in said.details.iter().flat_map(|detail| detail.lines()) {
        writeln!(out, "    {line}")?;
    }
    for note in &said.notes {
        writeln!(out, "  = {note}")?;
    }
    if let Some(hint) = &said.hint {
        writeln!(out, "  = hint: {hint}")?;
    }
    if let Some(fix) = &said.fix {
        writeln!(out, "  = fix: {fix}")?;
    }
    if let Some(footer) = &said.footer {
        writeln!(out, "\n{footer}")?;
    }
    Ok(())
}

/// `--> file:line:col`, the source line, a caret under the value, the problem's own hint.
fn write_location(out: &mut fmt::Formatter<'_>, err: &ConfigError) -> fmt::Result {
    let number = err.line.to_string();
    let pad = " ".repeat(number.len());
    if err.line == 0 {
        // Not in a file: the command line.
        writeln!(out, "{pad}--> {}", err.file)?;
    } else {
        writeln!(out, "{pad}--> {}:{}:{}", err.file, err.line, err.col)?;
    }
    if !err.excerpt.is_empty() {
        writeln!(out, "{pad} |")?;
        writeln!(out, "{number} | {}", err.excerpt)?;
        let lead: String = err.excerpt.chars().take(err.col - 1).map(|c| if c == '\t' { '\t' } else { ' ' }).collect();
        writeln!(out, "{pad} | {lead}{}", "^".repeat(err.width))?;
    }
    if let Some(hint) = &err.hint {
        writeln!(out, "{pad} = hint: {hint}")?;
    }
    Ok(())
}

fn config_problem(err: &ConfigError) -> Problem<'_> {
    let message = if err.key.is_empty() { err.message.clone() } else { format!("{}: {}", err.key, err.message) };
    Problem { message, at: Some(err) }
}

fn config(errors: &ConfigErrors) -> Said<'_> {
    let count = errors.0.len();
    Said {
        problems: errors.0.iter().map(config_problem).collect(),
        footer: (count > 1).then(|| format!("{count} problems in the config; nothing was changed on any host.")),
        ..Said::default()
    }
}

fn run(err: &RunError) -> Said<'static> {
    match err {
        RunError::Locked { holders } => Said {
            problems: holders
                .iter()
                .map(|holder| Problem {
                    message: if crate::remote::lock::is_manual(&holder.owner) {
                        format!("{} is locked by hand: {}", holder.host, describe_owner(&holder.owner))
                    } else {
                        format!("{} is locked by another deploy: {}", holder.host, describe_owner(&holder.owner))
                    },
                    at: None,
                })
                .collect(),
            notes: vec!["nothing was changed; locks this run took were released".into()],
            ..Said::default()
        }
        .hint("wait for it (`--lock-wait 10m`), or if it crashed: deploy unlock STAGE"),
        RunError::Failed { aftermath: Aftermath::NotRestored { problems, fix }, .. } => Said {
            details: problems.clone(),
            fix: Some(fix.clone()),
            ..Said::error("the deploy failed and a safe state could NOT be restored on every host:")
        },
        RunError::Failed { cause, aftermath } => Said::error(failed(cause, aftermath)),
    }
}

/// What failed and where that left the hosts, in one line.
fn failed(cause: &Cause, aftermath: &Aftermath) -> String {
    let failures = cause.failures();
    let each = |with_message: bool| {
        failures
            .iter()
            .map(|failure| match with_message {
                true => format!("{} on {}: {}", failure.what.label(), failure.host, failure.message),
                false => format!("{} on {}", failure.what.label(), failure.host),
            })
            .collect::<Vec<_>>()
    };
    match (cause, aftermath) {
        (Cause::Interrupted(phase), _) => format!("interrupted before {}; no host was switched", phase.name()),
        (_, Aftermath::LocksReleased) => {
            let hosts: Vec<&str> = failures.iter().map(|failure| failure.host.as_str()).collect();
            format!("could not lock {}", hosts.join(", "))
        }
        (_, Aftermath::NothingSwitched) => match failures.first() {
            Some(failure) if failure.what == crate::plan::What::Build => format!("build failed: {}", failure.message),
            _ => format!("{} failed; no host was switched", each(false).join(", ")),
        },
        (_, Aftermath::RolledBack) => {
            format!("{}; every switched host was rolled back and every host is in service", each(true).join("; "))
        }
        (_, Aftermath::LeftSwitched { switched, release }) => format!(
            "{}; --no-auto-rollback: {} switched to {release} and left there, every host in service",
            each(true).join("; "),
            if switched.is_empty() { "no host was".to_string() } else { switched.join(", ") + " were" },
        ),
        (_, Aftermath::Deployed) => format!(
            "{}; every host serves the new release and stays on it (nothing is rolled back: the database may be \
             partly contracted), and the release log says post_migrate failed",
            each(true).join("; ")
        ),
        (_, Aftermath::NotRestored { .. }) => unreachable!("said with its problems"),
    }
}

impl Error {
    fn said(&self) -> Said<'_> {
        match self {
            Error::Config(errors) => config(errors),
            Error::NoConfig { start } => {
                Said::error(format!("no Deploy.toml in {} or any folder above it", start.display()))
                    .hint("run `deploy init --recipe symfony` to write one, or pass `-c PATH`")
            }
            Error::File { path, action, source } => {
                Said::error(format!("cannot {action} {}: {source}", path.display()))
            }
            Error::Usage { message, hint } => Said { hint: hint.clone(), ..Said::error(message.clone()) },
            Error::Revision(err) => Said::error(format!(
                "cannot resolve revision `{}` in {}: {}",
                err.revision,
                err.repository.display(),
                err.message
            ))
            .hint("pass an existing branch, tag or sha with `--revision`, or set `app.repository`"),
            Error::Exists { path } => Said::error(format!("{} already exists; not overwriting it", path.display()))
                .hint("remove it first, or write elsewhere with `deploy init -c PATH`"),
            Error::Connect { errors } => {
                let problems = errors
                    .iter()
                    .map(|err| {
                        let what = match err.problem {
                            ConnectProblem::HostKey => "unknown or changed host key for",
                            ConnectProblem::Auth => "authentication refused by",
                            ConnectProblem::Unreachable => "cannot reach",
                        };
                        let message = format!("{what} {} ({}): {}", err.host, err.destination, err.message.trim());
                        Problem { message, at: None }
                    })
                    .collect();
                let hint = if errors.iter().any(|err| err.problem == ConnectProblem::HostKey) {
                    "check the host key (ssh-keyscan HOST, compare the fingerprint, add it to known_hosts); keys are checked strictly"
                } else if errors.iter().any(|err| err.problem == ConnectProblem::Auth) {
                    "check ssh.user, ssh.identity or your agent (ssh-add -l)"
                } else {
                    "check the address and that sshd runs; try `ssh HOST true`"
                };
                Said { problems, notes: vec!["nothing was changed on any host".into()], ..Said::default() }.hint(hint)
            }
            Error::Dirty { repository, files } => {
                let mut details: Vec<String> = files.iter().take(10).cloned().collect();
                if files.len() > 10 {
                    details.push(format!("… and {} more", files.len() - 10));
                }
                Said {
                    details,
                    ..Said::error(format!(
                        "the working copy in {} has uncommitted changes, which would not be deployed:",
                        repository.display()
                    ))
                }
                .hint("commit them, deploy an explicit revision (`--revision main`), or pass --allow-dirty to deploy HEAD as committed")
            }
            Error::Run(err) => run(err),
            Error::NotRestored { problems, fix } => Said {
                details: problems.clone(),
                fix: Some(fix.clone()),
                ..Said::error("not every host could be put back in service:")
            },
            Error::Busy { host, owner, .. } if crate::remote::lock::is_manual(owner) => {
                Said::error(format!("the lock on {host} is held by hand: {}", describe_owner(owner)))
                    .hint("`deploy lock release STAGE` lets it go; `deploy unlock STAGE --force` removes it anyway")
            }
            Error::Busy { host, owner, lease } => Said::error(format!(
                "the deploy holding the lock on {host} is still running: {}{}",
                describe_owner(owner),
                lease.map(|age| format!(" (its lease was renewed {}s ago)", age.as_secs())).unwrap_or_default()
            ))
            .hint(format!(
                "wait for it or stop it (Ctrl-C); a deploy that was killed stops renewing its lease, which \
                 expires {}s later; `deploy unlock STAGE --force` removes the lock anyway, while the other deploy \
                 may still be changing hosts",
                crate::remote::lock::LEASE_FRESH.as_secs()
            )),
            Error::Interrupted { stage } => Said::error(format!(
                "interrupted twice: stopped at once without restoring; run `deploy unlock {stage}`"
            )),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_said(out, &self.said())
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_said(out, &config(self))
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_said(out, &run(self))
    }
}
