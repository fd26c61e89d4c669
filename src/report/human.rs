//! A live line per host (what it is doing, spinner, elapsed) and a summary at the end.

use super::plain::line;
use super::{Event, Reporter, human_duration};
use crate::plan::{Phase, What};
use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

pub struct Human {
    multi: MultiProgress,
    phase: ProgressBar,
    bars: BTreeMap<String, ProgressBar>,
    /// More hosts than the terminal has lines: one line with counts and the hosts at work.
    compact: Option<Compact>,
    /// Hosts whose roll is over (in service on the new release, or done).
    state: Mutex<BTreeMap<String, &'static str>>,
    verbose: bool,
    quiet: bool,
    secrets: crate::config::Secrets,
}

impl Human {
    /// `hosts`: the hosts that get the release, one line each.
    pub fn new(hosts: &[String], verbose: bool, quiet: bool, secrets: crate::config::Secrets) -> Human {
        let multi = MultiProgress::new();
        let phase = multi.add(ProgressBar::new_spinner());
        phase.set_style(ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}").unwrap());
        phase.enable_steady_tick(Duration::from_millis(100));
        let width = hosts.iter().map(String::len).max().unwrap_or(4);
        let mut bars = BTreeMap::new();
        let rows = console::Term::stderr().size_checked().map_or(24, |(rows, _)| rows as usize);
        let compact = (!quiet && hosts.len() + 6 > rows).then(|| {
            let line = multi.add(ProgressBar::new_spinner());
            line.set_style(ProgressStyle::with_template("  {spinner:.green} {msg}").unwrap());
            line.enable_steady_tick(Duration::from_millis(120));
            Compact { line, total: hosts.len(), work: Mutex::new(BTreeMap::new()), done: Mutex::new(Vec::new()) }
        });
        if !quiet && compact.is_none() {
            for host in hosts {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(&format!("  {{spinner:.green}} {{prefix:<{width}}}  {{msg}}"))
                        .unwrap(),
                );
                bar.set_prefix(host.clone());
                bar.set_message(style("connecting").dim().to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert(host.clone(), bar);
            }
        }
        Human { multi, phase, bars, compact, state: Mutex::new(BTreeMap::new()), verbose, quiet, secrets }
    }

    fn println(&self, text: &str) {
        let _ = self.multi.println(self.secrets.redact(text));
    }

    /// What a host's line says; `done`: its roll or run is over.
    fn set(&self, host: &str, message: String, done: bool) {
        let message = self.secrets.redact(&message);
        if let Some(bar) = self.bars.get(host) {
            bar.set_message(message.clone());
        }
        if let Some(compact) = &self.compact {
            compact.set(host, message, done);
        }
    }
}

/// The one-line view for many hosts: `✓ 12 of 40 · web13 switched · web14 drained, …`.
struct Compact {
    line: ProgressBar,
    total: usize,
    work: Mutex<BTreeMap<String, String>>,
    done: Mutex<Vec<String>>,
}

impl Compact {
    fn set(&self, host: &str, message: String, finished: bool) {
        {
            let mut work = self.work.lock().unwrap();
            let mut done = self.done.lock().unwrap();
            if finished {
                work.remove(host);
                if !done.iter().any(|name| name == host) {
                    done.push(host.to_string());
                }
            } else {
                work.insert(host.to_string(), message);
            }
        }
        self.render();
    }

    fn phase(&self) {
        self.work.lock().unwrap().clear();
        self.done.lock().unwrap().clear();
        self.render();
    }

    fn render(&self) {
        let work = self.work.lock().unwrap();
        let done = self.done.lock().unwrap().len();
        let shown: Vec<String> = work.iter().take(4).map(|(host, doing)| format!("{host} {doing}")).collect();
        let more = if work.len() > 4 { format!(" · +{} more", work.len() - 4) } else { String::new() };
        self.line.set_message(format!("✓ {done} of {} · {}{more}", self.total, shown.join(" · ")));
    }
}

/// What a host line says once an action is done.
fn after(what: What) -> Option<String> {
    Some(match what {
        What::Lock => style("locked").dim().to_string(),
        What::Receive => "artifact received, checksum ok".into(),
        What::Unpack => "unpacked".into(),
        What::LinkShared => "shared paths linked".into(),
        What::Prepare => "prepare hooks".into(),
        What::Migrate => "migrated".into(),
        What::PostMigrate => "post-migrated".into(),
        What::Capacity => "draining…".into(),
        What::Drain => "drained, waiting for in-flight requests".into(),
        What::WaitDrained => "idle, switching".into(),
        What::Switch => style("switched").bold().to_string(),
        What::Activate => "activate hooks".into(),
        What::Health => "healthy, waiting for the balancer's check".into(),
        What::WaitProbe => "undraining".into(),
        What::Undrain => "undrained".into(),
        What::WaitHealthy => style("✓ in service").green().to_string(),
        What::Record | What::Cleanup => return None,
        What::Unlock => style("✓ done").green().to_string(),
        _ => return None,
    })
}

impl Reporter for Human {
    fn event(&self, event: &Event) {
        match event {
            Event::PhaseStarted { phase } => {
                self.phase.set_message(style(phase.name()).bold().to_string());
                if let Some(compact) = &self.compact {
                    compact.phase();
                }
                let state = self.state.lock().unwrap();
                let queued = match phase {
                    Phase::Upload => Some("uploading"),
                    Phase::Roll | Phase::Canary => Some("waiting for its turn"),
                    _ => None,
                };
                if let Some(queued) = queued {
                    for host in self.bars.keys() {
                        if !state.contains_key(host.as_str()) {
                            self.set(host, style(queued).dim().to_string(), false);
                        }
                    }
                }
            }
            Event::Done { host, what, .. } => {
                if *what == What::WaitHealthy {
                    self.state.lock().unwrap().insert(host.clone(), "rolled");
                }
                if let Some(message) = after(*what) {
                    self.set(host, message, matches!(what, What::WaitHealthy | What::Unlock));
                }
                if self.verbose
                    && let Some(text) = line(event, true)
                {
                    self.println(&text);
                }
            }
            Event::Waiting { host, what, detail } => {
                self.set(host, format!("{} {}", what.label(), style(detail).dim()), false)
            }
            Event::Failed { host, .. } => {
                self.set(host, style("✗ failed").red().bold().to_string(), false);
                if let Some(text) = line(event, true) {
                    self.println(&style(text).red().to_string());
                }
            }
            Event::HostState { host, in_service, note, .. } => {
                let mark = if *in_service {
                    style(format!("↺ {note}, in service")).yellow()
                } else {
                    style(format!("✗ NOT in service: {note}")).red().bold()
                };
                self.set(host, mark.to_string(), false);
                if let Some(text) = line(event, true) {
                    self.println(&text);
                }
            }
            Event::Finished { outcome, took, phases, exit_code, release } => {
                self.phase.finish_and_clear();
                for bar in self.bars.values() {
                    bar.finish();
                }
                if let Some(compact) = &self.compact {
                    compact.line.finish_and_clear();
                }
                let ok = *exit_code == 0;
                let head = format!("{outcome}: release {release} in {}", human_duration(*took));
                let mut text = if ok { style(head).green().bold() } else { style(head).red().bold() }.to_string();
                let cells: Vec<String> = phases
                    .iter()
                    .map(|(phase, took)| format!("{} {}", phase.name(), style(human_duration(*took)).dim()))
                    .collect();
                text.push_str(&format!("\n  {}", cells.join("  ")));
                self.println(&text);
            }
            Event::Output { .. }
            | Event::Warning { .. }
            | Event::Built { .. }
            | Event::Sent { .. }
            | Event::Stored { .. }
            | Event::Started { .. } => {
                if self.quiet && !matches!(event, Event::Warning { .. }) {
                    return;
                }
                if matches!(event, Event::Sent { .. }) && !self.verbose {
                    return; // one line per host: the summary and `-v` say it
                }
                if let Some(text) = line(event, self.verbose) {
                    self.println(&text);
                }
            }
            Event::CanarySample(sample) => {
                self.phase.set_message(format!("{} · {}", style("soak").bold(), sample.summary()));
            }
            Event::CanaryVerdict { .. } => {
                if let Some(text) = line(event, self.verbose) {
                    self.println(&text);
                }
            }
            Event::PhaseFinished { .. } => {}
        }
    }
}
