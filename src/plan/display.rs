//! `deploy plan`: the plan as text a person can check before running it.

use super::*;
use std::fmt::{self, Write};

impl fmt::Display for Plan {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.kind {
            PlanKind::Deploy => "deploy",
            PlanKind::Rollback => "rollback",
        };
        writeln!(out, "{verb} {} to {}", self.app, self.stage)?;
        if let Some(revision) = &self.revision {
            writeln!(out, "  revision  {} → {}", revision.requested, revision.commit)?;
        }
        writeln!(out, "  release   {}", self.release)?;
        writeln!(out, "  path      {}", self.path)?;
        writeln!(out, "  balancer  {}", self.balancer)?;
        let name_width = self.hosts.iter().map(|host| host.name.len()).max().unwrap_or(0);
        let dest_width = self.hosts.iter().map(|host| host.destination.len()).max().unwrap_or(0);
        for (index, host) in self.hosts.iter().enumerate() {
            let roles: Vec<&str> = host.roles.iter().map(|role| role.name()).collect();
            let label = if index == 0 { "  hosts     " } else { "            " };
            writeln!(
                out,
                "{label}{:<name_width$}  {:<dest_width$}  {}",
                host.name,
                host.destination,
                roles.join(", ")
            )?;
        }
        for note in &self.notes {
            writeln!(out, "  note      {note}")?;
        }
        for (index, step) in self.steps.iter().enumerate() {
            writeln!(out)?;
            writeln!(out, "{}. {} — {}", index + 1, step.phase.name(), step.title)?;
            writeln!(out, "   on failure: {}", step.on_failure.describe())?;
            write_step(out, step)?;
        }
        Ok(())
    }
}

fn write_step(out: &mut fmt::Formatter<'_>, step: &Step) -> fmt::Result {
    if step.phase == Phase::Connect {
        let width = step.hosts().map(|host| host.host.len()).max().unwrap_or(0);
        for host in step.hosts() {
            for action in &host.actions {
                if let Run::Ssh { destination } = &action.run {
                    writeln!(out, "     {:<width$}  ssh {destination}", host.host)?;
                }
            }
        }
        writeln!(out, "     (side by side; ControlMaster per host; host keys checked strictly)")?;
        return Ok(());
    }
    if step.phase == Phase::Roll {
        let count = step.batches.len();
        for (index, batch) in step.batches.iter().enumerate() {
            let names: Vec<&str> = batch.hosts.iter().map(|host| host.host.as_str()).collect();
            writeln!(out, "   batch {}/{count}: {}", index + 1, names.join(", "))?;
            let nested = batch.hosts.len() > 1;
            for host in &batch.hosts {
                if nested {
                    writeln!(out, "     {}:", host.host)?;
                }
                for action in &host.actions {
                    let line = action_line(action, None);
                    let pad = if nested { "       " } else { "     " };
                    writeln!(out, "{pad}{}", line.replace('\n', &format!("\n{}", &pad[5..])))?;
                }
            }
        }
        return Ok(());
    }
    for batch in &step.batches {
        // Hosts whose actions read the same (with the host itself as `$`) share one listing.
        let mut groups: Vec<(Vec<&str>, Vec<String>)> = Vec::new();
        for host in &batch.hosts {
            let lines: Vec<String> = host.actions.iter().map(|action| action_line(action, Some(&host.host))).collect();
            match groups.iter_mut().find(|(_, group)| *group == lines) {
                Some((names, _)) => names.push(&host.host),
                None => groups.push((vec![&host.host], lines)),
            }
        }
        let single_target = batch.hosts.len() == 1 && matches!(step.phase, Phase::Build | Phase::Ban);
        for (names, lines) in groups {
            if !single_target {
                let each = if names.len() > 1 && step.parallel > 1 {
                    if step.parallel < batch.hosts.len() {
                        format!(" (side by side, at most {} at once)", step.parallel)
                    } else {
                        " (side by side)".to_string()
                    }
                } else {
                    String::new()
                };
                writeln!(out, "   on {}{each}:", names.join(", "))?;
            }
            for line in lines {
                writeln!(out, "     {line}")?;
            }
        }
    }
    Ok(())
}

/// One action as `label  where$ command`; `$` alone means "on the host of this group".
fn action_line(action: &Action, group_host: Option<&str>) -> String {
    let at = match (&action.on, group_host) {
        (Target::Host(host), Some(group)) if host == group => "$".to_string(),
        (Target::Host(host), _) => format!("{host}$"),
        (Target::Local, _) => "local$".to_string(),
    };
    let mut line = format!("{:<12} ", action.what.label());
    match &action.run {
        Run::Shell { cmd, stdin } => {
            let _ = write!(line, "{at} {cmd}");
            if let Some(input) = stdin {
                let _ = write!(line, "   (stdin: {input})");
            }
        }
        Run::Ssh { destination } => {
            let _ = write!(line, "ssh {destination} (ControlMaster; host key checked strictly)");
        }
        Run::Export { commit } => {
            let _ = write!(line, "git tree of {commit} into a clean folder (no .git, nothing untracked)");
        }
        Run::Pack { file, exclude } => {
            let _ = write!(line, "manifest of every file (path, mode, size, sha256)");
            if !exclude.is_empty() {
                let _ = write!(line, " without {}", exclude.join(" "));
            }
            let _ = write!(
                line,
                "; {file} packed on demand, whole or only what a host lacks (reused if this commit and build were built before)"
            );
        }
        Run::Http { method, url, headers, expect_status, timeout } => {
            let _ = write!(line, "local$ {method} {url}");
            for (name, value) in headers {
                let _ = write!(line, " -H '{name}: {value}'");
            }
            let _ = write!(line, " (timeout {})", crate::config::format_duration(*timeout));
            if let (Some(expect), None) = (expect_status, &action.until) {
                let _ = write!(line, ", expect {expect}");
            }
        }
        Run::Cleanup { keep, list } => {
            let _ = write!(
                line,
                "{at} {list}   then rm -rf all but the {keep} newest (never current or the rollback target)"
            );
        }
    }
    if let Some(until) = &action.until {
        let _ = write!(line, "\n{:<18}{}", "", until_text(until));
    }
    if action.with_next {
        let _ = write!(line, "\n{:<18}at the same time as the next step", "");
    }
    line
}

/// What a waiting action waits for.
fn until_text(until: &Until) -> String {
    let duration = crate::config::format_duration;
    match until {
        Until::Idle { timeout, .. } => format!("until no request is in flight (at most {})", duration(*timeout)),
        Until::ProbeHealthy { timeout, .. } => {
            format!("until the balancer's own check passes, still drained (at most {})", duration(*timeout))
        }
        Until::Capacity { others, min, timeout, .. } => format!(
            "until at least {min} of {} take traffic, else stop before draining (at most {})",
            others.join(", "),
            duration(*timeout)
        ),
        Until::InService { timeout, .. } => {
            format!("until the balancer sends it traffic (at most {})", duration(*timeout))
        }
        Until::Status { expect, retries, interval } if *retries > 1 => {
            format!("until status {expect} ({retries} tries, {} apart)", duration(*interval))
        }
        Until::Status { expect, .. } => format!("expect status {expect}"),
        Until::Silent => "expect no output (an answer is an error)".to_string(),
    }
}
