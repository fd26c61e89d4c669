//! `deploy plan`: the plan as text a person can check before running it.

use super::*;
use std::fmt::{self, Write};

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = match self.kind {
            PlanKind::Deploy => "deploy",
            PlanKind::Rollback => "rollback",
        };
        writeln!(f, "{verb} {} to {}", self.app, self.stage)?;
        if let Some(r) = &self.revision {
            writeln!(f, "  revision  {} → {}", r.requested, r.commit)?;
        }
        writeln!(f, "  release   {}", self.release)?;
        writeln!(f, "  path      {}", self.path)?;
        writeln!(f, "  balancer  {}", self.balancer)?;
        let w = self.hosts.iter().map(|h| h.name.len()).max().unwrap_or(0);
        let dw = self.hosts.iter().map(|h| h.destination.len()).max().unwrap_or(0);
        for (i, h) in self.hosts.iter().enumerate() {
            let roles: Vec<&str> = h.roles.iter().map(|r| r.name()).collect();
            let label = if i == 0 { "  hosts     " } else { "            " };
            writeln!(f, "{label}{:<w$}  {:<dw$}  {}", h.name, h.destination, roles.join(", "))?;
        }
        for n in &self.notes {
            writeln!(f, "  note      {n}")?;
        }
        for (i, step) in self.steps.iter().enumerate() {
            writeln!(f)?;
            writeln!(f, "{}. {} — {}", i + 1, step.phase.name(), step.title)?;
            write_step(f, step)?;
        }
        Ok(())
    }
}

fn write_step(f: &mut fmt::Formatter<'_>, step: &Step) -> fmt::Result {
    if step.phase == Phase::Connect {
        let w = step.batches.iter().flat_map(|b| &b.hosts).map(|h| h.host.len()).max().unwrap_or(0);
        for h in step.batches.iter().flat_map(|b| &b.hosts) {
            for a in &h.actions {
                if let Run::Ssh { destination } = &a.run {
                    writeln!(f, "     {:<w$}  ssh {destination}", h.host)?;
                }
            }
        }
        writeln!(f, "     (side by side; ControlMaster per host; host keys checked strictly)")?;
        return Ok(());
    }
    if step.phase == Phase::Roll {
        let n = step.batches.len();
        for (i, b) in step.batches.iter().enumerate() {
            let names: Vec<&str> = b.hosts.iter().map(|h| h.host.as_str()).collect();
            writeln!(f, "   batch {}/{n}: {}", i + 1, names.join(", "))?;
            let nested = b.hosts.len() > 1;
            for h in &b.hosts {
                if nested {
                    writeln!(f, "     {}:", h.host)?;
                }
                for a in &h.actions {
                    let line = action_line(a, None);
                    let pad = if nested { "       " } else { "     " };
                    writeln!(f, "{pad}{}", line.replace('\n', &format!("\n{}", &pad[5..])))?;
                }
            }
        }
        return Ok(());
    }
    for b in &step.batches {
        // Hosts whose actions read the same (with the host itself as `$`) share one listing.
        let mut groups: Vec<(Vec<&str>, Vec<String>)> = Vec::new();
        for h in &b.hosts {
            let lines: Vec<String> = h.actions.iter().map(|a| action_line(a, Some(&h.host))).collect();
            match groups.iter_mut().find(|(_, l)| *l == lines) {
                Some((names, _)) => names.push(&h.host),
                None => groups.push((vec![&h.host], lines)),
            }
        }
        let single_target = b.hosts.len() == 1 && matches!(step.phase, Phase::Build | Phase::Ban);
        for (names, lines) in groups {
            if !single_target {
                let each = if names.len() > 1 && step.parallel > 1 {
                    if step.parallel < b.hosts.len() {
                        format!(" (side by side, at most {} at once)", step.parallel)
                    } else {
                        " (side by side)".to_string()
                    }
                } else {
                    String::new()
                };
                writeln!(f, "   on {}{each}:", names.join(", "))?;
            }
            for l in lines {
                writeln!(f, "     {l}")?;
            }
        }
    }
    Ok(())
}

/// One action as `label  where$ command`; `$` alone means "on the host of this group".
fn action_line(a: &Action, group_host: Option<&str>) -> String {
    let at = match (&a.on, group_host) {
        (Target::Host(h), Some(g)) if h == g => "$".to_string(),
        (Target::Host(h), _) => format!("{h}$"),
        (Target::Local, _) => "local$".to_string(),
    };
    let mut s = format!("{:<12} ", a.what.label());
    match &a.run {
        Run::Shell { cmd, stdin } => {
            let _ = write!(s, "{at} {cmd}");
            if let Some(i) = stdin {
                let _ = write!(s, "   (stdin: {i})");
            }
        }
        Run::Ssh { destination } => {
            let _ = write!(s, "ssh {destination} (ControlMaster; host key checked strictly)");
        }
        Run::Export { commit } => {
            let _ = write!(s, "git tree of {commit} into a clean folder (no .git, nothing untracked)");
        }
        Run::Pack { file, exclude } => {
            let _ = write!(s, "manifest of every file (path, mode, size, sha256)");
            if !exclude.is_empty() {
                let _ = write!(s, " without {}", exclude.join(" "));
            }
            let _ = write!(
                s,
                "; {file} packed on demand, whole or only what a host lacks (reused if this commit and build were built before)"
            );
        }
        Run::Http { method, url, headers, expect_status, timeout } => {
            let _ = write!(s, "local$ {method} {url}");
            for (k, v) in headers {
                let _ = write!(s, " -H '{k}: {v}'");
            }
            let _ = write!(s, " (timeout {})", crate::config::decode::format_duration(*timeout));
            if let (Some(e), None) = (expect_status, &a.until) {
                let _ = write!(s, ", expect {e}");
            }
        }
        Run::Cleanup { keep, list } => {
            let _ =
                write!(s, "{at} {list}   then rm -rf all but the {keep} newest (never current or the rollback target)");
        }
    }
    if let Some(u) = &a.until {
        let fd = crate::config::decode::format_duration;
        let _ = match u {
            Until::Idle { timeout, .. } => {
                write!(s, "\n{:<18}until no request is in flight (at most {})", "", fd(*timeout))
            }
            Until::ProbeHealthy { timeout, .. } => {
                write!(s, "\n{:<18}until the balancer's own check passes, still drained (at most {})", "", fd(*timeout))
            }
            Until::Capacity { others, min, timeout, .. } => write!(
                s,
                "\n{:<18}until at least {min} of {} take traffic, else stop before draining (at most {})",
                "",
                others.join(", "),
                fd(*timeout)
            ),
            Until::InService { timeout, .. } => {
                write!(s, "\n{:<18}until the balancer sends it traffic (at most {})", "", fd(*timeout))
            }
            Until::Status { expect, retries, interval } if *retries > 1 => {
                write!(s, "\n{:<18}until status {expect} ({retries} tries, {} apart)", "", fd(*interval))
            }
            Until::Status { expect, .. } => write!(s, "\n{:<18}expect status {expect}", ""),
            Until::Silent => write!(s, "\n{:<18}expect no output (an answer is an error)", ""),
        };
    }
    if a.with_next {
        let _ = write!(s, "\n{:<18}at the same time as the next step", "");
    }
    s
}
