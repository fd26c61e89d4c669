//! `deploy plan`: the plan as text a person can check before running it, at three levels of
//! detail: [`Detail::Brief`] (one screen: the steps), [`Detail::Normal`] (each host's
//! actions in words, with the commands that are the user's own: hooks, balancer commands,
//! health URLs) and [`Detail::Full`] (every command as it runs; also the `Display` form).

use super::*;
use std::fmt::{self, Write};

/// How much of the plan to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// `deploy plan -q`: the header and the steps' titles.
    Brief,
    /// `deploy plan`: each action in words, the commands that matter in full.
    Normal,
    /// `deploy plan -v`: every command.
    Full,
}

impl Plan {
    /// The plan as text, at `detail`.
    pub fn render(&self, detail: Detail) -> String {
        Rendered { plan: self, detail }.to_string()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(out, "{}", Rendered { plan: self, detail: Detail::Full })
    }
}

struct Rendered<'a> {
    plan: &'a Plan,
    detail: Detail,
}

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self.detail;
        let plan = self.plan;
        let verb = match plan.kind {
            PlanKind::Deploy => "deploy",
            PlanKind::Rollback => "rollback",
        };
        writeln!(out, "{verb} {} to {}", plan.app, plan.stage)?;
        if let Some(revision) = &plan.revision {
            writeln!(out, "  revision  {} → {}", revision.requested, revision.commit)?;
        }
        writeln!(out, "  release   {}", plan.release)?;
        writeln!(out, "  path      {}", plan.path)?;
        writeln!(out, "  balancer  {}", plan.balancer)?;
        let name_width = plan.hosts.iter().map(|host| host.name.len()).max().unwrap_or(0);
        let dest_width = plan.hosts.iter().map(|host| host.destination.len()).max().unwrap_or(0);
        for (index, host) in plan.hosts.iter().enumerate() {
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
        for note in &plan.notes {
            writeln!(out, "  note      {note}")?;
        }
        if detail == Detail::Brief {
            writeln!(out)?;
        }
        for (index, step) in plan.steps.iter().enumerate() {
            if detail == Detail::Brief {
                writeln!(out, "{}. {} — {}", index + 1, step.phase.name(), step.title)?;
                if matches!(step.phase, Phase::Roll | Phase::Canary) {
                    let batches: Vec<String> = step
                        .batches
                        .iter()
                        .map(|batch| batch.hosts.iter().map(|host| host.host.as_str()).collect::<Vec<_>>().join(", "))
                        .collect();
                    writeln!(out, "   {}", batches.join(" → "))?;
                }
                continue;
            }
            writeln!(out)?;
            writeln!(out, "{}. {} — {}", index + 1, step.phase.name(), step.title)?;
            writeln!(out, "   on failure: {}", step.on_failure.describe())?;
            write_step(out, step, detail, &plan.release)?;
        }
        if detail != Detail::Full {
            writeln!(out)?;
            match detail {
                Detail::Brief => writeln!(out, "(`deploy plan` shows each host's actions, `-v` every command)")?,
                _ => writeln!(out, "(`-v` shows every command as it runs, journal writes included)")?,
            }
        }
        Ok(())
    }
}

fn write_step(out: &mut fmt::Formatter<'_>, step: &Step, detail: Detail, release: &str) -> fmt::Result {
    let line_of = |action: &Action, group: Option<&str>| match detail {
        Detail::Full => Some(action_line(action, group)),
        _ => action_words(action, group, release),
    };
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
    if matches!(step.phase, Phase::Roll | Phase::Canary) {
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
                    let Some(line) = line_of(action, None) else { continue };
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
            let lines: Vec<String> =
                host.actions.iter().filter_map(|action| line_of(action, Some(&host.host))).collect();
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
        let _ = write!(line, "\n{:<18}at the same time as the line below", "");
    }
    line
}

/// One action in words for the default plan; the commands that are the user's own (hooks,
/// balancer and cache commands) in full. `None`: not shown (journal writes).
fn action_words(action: &Action, group_host: Option<&str>, release: &str) -> Option<String> {
    let at = match (&action.on, group_host) {
        (Target::Host(host), Some(group)) if host == group => "$".to_string(),
        (Target::Host(host), _) => format!("{host}$"),
        (Target::Local, _) => "local$".to_string(),
    };
    let command = || match &action.run {
        Run::Shell { cmd, .. } => cmd.to_string(),
        _ => String::new(),
    };
    let words = match action.what {
        What::Journal => return None,
        What::Build | What::Prepare | What::Migrate | What::PostMigrate | What::Activate => {
            format!("{at} {}", action.shown.clone().unwrap_or_else(command))
        }
        What::Drain | What::Undrain | What::Ban => match &action.run {
            Run::Shell { .. } => format!("{at} {}", command()),
            _ => return Some(action_line(action, group_host)),
        },
        What::Health => match (&action.shown, &action.run) {
            (Some(shown), _) => format!("{at} {shown}"),
            _ => return Some(action_line(action, group_host)),
        },
        What::Capacity | What::WaitDrained | What::WaitProbe | What::WaitHealthy => String::new(),
        What::Soak => format!("{at} {}", action.shown.clone().unwrap_or_else(command)),
        What::Connect | What::Export | What::Pack => return Some(action_line(action, group_host)),
        What::Lock => "take the deploy lock".into(),
        What::ReadCurrent => "read where `current` points".into(),
        What::Receive => {
            "receive the artifact (whole or only what the host lacks), unpacking it into a hidden folder while \
             hashing it; sha256 checked"
                .into()
        }
        What::Unpack => format!("finish the release and rename it to releases/{release}"),
        What::LinkShared => "link the shared files and folders".into(),
        What::CheckRelease => action.shown.clone().unwrap_or_else(command),
        What::Switch => format!("point `current` at releases/{release}"),
        What::Record => "append to the release log".into(),
        What::Cleanup => match &action.run {
            Run::Cleanup { keep, .. } => {
                format!("remove all but the {keep} newest releases (never current or the rollback target)")
            }
            _ => "remove old releases".into(),
        },
        What::Unlock => "release the deploy lock".into(),
    };
    let mut line = format!("{:<12} {words}", action.what.label());
    if let Some(until) = &action.until {
        let text = until_text(until);
        if words.is_empty() {
            line = format!("{:<12} {text}", action.what.label());
        } else {
            let _ = write!(line, "\n{:<18}{text}", "");
        }
    }
    Some(line.trim_end().to_string())
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
        Until::Canary { canary, peers, rules, .. } => format!(
            "backends {} against {}: every {} for {} (up to {}), rolled back after {} failing interval{} in a row",
            canary.join(", "),
            if peers.is_empty() { "nothing".to_string() } else { peers.join(", ") },
            duration(rules.interval),
            duration(rules.soak),
            duration(rules.max_soak),
            rules.failures,
            if rules.failures == 1 { "" } else { "s" }
        ),
    }
}
