//! Plain lines (CI logs) and JSON lines.

use super::{Event, Reporter, human_duration, timestamp};
use std::io::Write;
use std::sync::Mutex;
use std::time::SystemTime;

/// One timestamped line per event, on stderr (stdout stays for results).
pub struct Plain {
    pub verbose: bool,
    pub quiet: bool,
    pub secrets: crate::config::Secrets,
    lock: Mutex<()>,
}

impl Plain {
    pub fn new(verbose: bool, quiet: bool, secrets: crate::config::Secrets) -> Plain {
        Plain { verbose, quiet, secrets, lock: Mutex::new(()) }
    }
}

/// The text of an event for people (plain and human reporters); `None` = not shown.
pub fn line(event: &Event, verbose: bool) -> Option<String> {
    Some(match event {
        Event::Started { kind, app, stage, release, commit, hosts } => format!(
            "{kind} {app} to {stage}: release {release}{} on {}",
            commit.as_ref().map(|commit| format!(" ({})", &commit[..commit.len().min(12)])).unwrap_or_default(),
            hosts.join(", ")
        ),
        Event::PhaseStarted { phase } => format!("{} …", phase.name()),
        Event::PhaseFinished { phase, took } => format!("{} done in {}", phase.name(), human_duration(*took)),
        Event::Built { file, bytes, sha256, reused, took } => format!(
            "artifact {} ({:.1} MB, sha256 {}){}",
            file.rsplit('/').next().unwrap_or(file),
            *bytes as f64 / 1e6,
            &sha256[..12],
            if *reused { " reused from the cache".to_string() } else { format!(" built in {}", human_duration(*took)) }
        ),
        Event::Sent { host, kind: "delta", bytes, files, linked, linked_bytes, .. } => format!(
            "{host}: sent {files} changed files ({:.1} MB); {linked} unchanged files ({:.1} MB) hard-linked from the current release",
            *bytes as f64 / 1e6,
            *linked_bytes as f64 / 1e6
        ),
        Event::Stored { object, bytes, uploaded: true, took } => {
            format!("stored {object} ({:.1} MB) in {}", *bytes as f64 / 1e6, human_duration(*took))
        }
        Event::Stored { object, .. } => format!("{object} is in the store already"),
        Event::Sent { host, from_store: true, bytes, files, .. } => {
            format!("{host}: fetched the whole release from the store ({files} files, {:.1} MB)", *bytes as f64 / 1e6)
        }
        Event::Sent { host, bytes, files, .. } => {
            format!("{host}: sent the whole release ({files} files, {:.1} MB)", *bytes as f64 / 1e6)
        }
        Event::Done { host, what, on, took } => {
            if !verbose && matches!(what, crate::plan::What::Journal | crate::plan::What::ReadCurrent) {
                return None;
            }
            let at = if on != host { format!(" (on {on})") } else { String::new() };
            format!("{host}: {} ok{at} {}", what.label(), human_duration(*took))
        }
        Event::Waiting { host, what, detail } => {
            if !verbose {
                return None;
            }
            format!("{host}: {} {detail}", what.label())
        }
        Event::Output { on, cmd, status, stdout, stderr } => {
            if !verbose {
                return None;
            }
            let mut text = format!("{on}$ {cmd}  [exit {}]", status.map_or("-".into(), |code| code.to_string()));
            for line in stdout.lines().chain(stderr.lines()) {
                text.push_str(&format!("\n    {line}"));
            }
            text
        }
        Event::Warning { host, message } => {
            format!("warning: {}{message}", host.as_ref().map(|host| format!("{host}: ")).unwrap_or_default())
        }
        Event::Failed { host, what, message, output } => {
            let mut text = format!("FAILED {host}: {} — {message}", what.label());
            for line in output.lines() {
                text.push_str(&format!("\n    | {line}"));
            }
            text
        }
        Event::HostState { host, release, in_service, note } => format!(
            "{host}: on {}, {}{}",
            release.as_deref().unwrap_or("no release"),
            if *in_service { "in service" } else { "NOT in service" },
            if note.is_empty() { String::new() } else { format!(" — {note}") }
        ),
        Event::CanarySample(sample) => format!("canary: interval {}: {}", sample.interval, sample.summary()),
        Event::CanaryVerdict { verdict, reason, elapsed, total } => format!(
            "canary {}: {} answers, {} errors in {}{}",
            match *verdict {
                "pass" => "passed",
                "pass_low_traffic" => "passed with too little traffic",
                _ => "FAILED",
            },
            total.requests,
            total.errors,
            human_duration(*elapsed),
            if reason.is_empty() { String::new() } else { format!(": {reason}") }
        ),
        Event::Finished { outcome, exit_code, took, phases, release } => {
            let timed: Vec<String> =
                phases.iter().map(|(phase, took)| format!("{} {}", phase.name(), human_duration(*took))).collect();
            let phases = if timed.is_empty() { String::new() } else { format!("; {}", timed.join(", ")) };
            format!("{outcome}: release {release} in {} (exit {exit_code}{phases})", human_duration(*took))
        }
    })
}

impl Reporter for Plain {
    fn event(&self, event: &Event) {
        if self.quiet
            && !matches!(
                event,
                Event::Failed { .. } | Event::Finished { .. } | Event::HostState { .. } | Event::Warning { .. }
            )
        {
            return;
        }
        if let Some(text) = line(event, self.verbose) {
            let text = self.secrets.redact(&text);
            let _guard = self.lock.lock();
            let mut err = std::io::stderr().lock();
            for (index, part) in text.lines().enumerate() {
                if index == 0 {
                    let _ = writeln!(err, "{} {part}", timestamp(SystemTime::now()));
                } else {
                    let _ = writeln!(err, "{part}");
                }
            }
        }
    }
}

/// One JSON object per line on stdout.
pub struct Json {
    pub verbose: bool,
    pub secrets: crate::config::Secrets,
    lock: Mutex<()>,
}

impl Json {
    pub fn new(verbose: bool, secrets: crate::config::Secrets) -> Json {
        Json { verbose, secrets, lock: Mutex::new(()) }
    }
}

impl Reporter for Json {
    fn event(&self, event: &Event) {
        if matches!(event, Event::Output { .. } | Event::Waiting { .. }) && !self.verbose {
            return;
        }
        let mut value = event.to_json();
        if let Some(fields) = value.as_object_mut() {
            let mut with_ts = serde_json::Map::new();
            with_ts.insert("v".into(), serde_json::Value::from(super::schema::VERSION));
            with_ts.insert("ts".into(), serde_json::Value::String(timestamp(SystemTime::now())));
            with_ts.append(fields);
            value = serde_json::Value::Object(with_ts);
        }
        let text = self.secrets.redact_json(value).to_string();
        let _guard = self.lock.lock();
        let _ = writeln!(std::io::stdout().lock(), "{text}");
    }
}
