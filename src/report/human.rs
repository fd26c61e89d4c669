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
    /// Hosts whose roll is over (in service on the new release, or done).
    state: Mutex<BTreeMap<String, &'static str>>,
    verbose: bool,
    quiet: bool,
    redactions: Vec<(String, String)>,
}

impl Human {
    /// `hosts`: the hosts that get the release, one line each.
    pub fn new(hosts: &[String], verbose: bool, quiet: bool, redactions: Vec<(String, String)>) -> Human {
        let multi = MultiProgress::new();
        let phase = multi.add(ProgressBar::new_spinner());
        phase.set_style(ProgressStyle::with_template("{spinner:.cyan} {msg} {elapsed:.dim}").unwrap());
        phase.enable_steady_tick(Duration::from_millis(100));
        let width = hosts.iter().map(String::len).max().unwrap_or(4);
        let mut bars = BTreeMap::new();
        if !quiet {
            for h in hosts {
                let b = multi.add(ProgressBar::new_spinner());
                b.set_style(
                    ProgressStyle::with_template(&format!("  {{spinner:.green}} {{prefix:<{width}}}  {{msg}}"))
                        .unwrap(),
                );
                b.set_prefix(h.clone());
                b.set_message(style("connecting").dim().to_string());
                b.enable_steady_tick(Duration::from_millis(120));
                bars.insert(h.clone(), b);
            }
        }
        Human { multi, phase, bars, state: Mutex::new(BTreeMap::new()), verbose, quiet, redactions }
    }

    fn println(&self, s: &str) {
        let s = crate::config::redact(&self.redactions, s);
        let _ = self.multi.println(s);
    }

    fn set(&self, host: &str, msg: String) {
        if let Some(b) = self.bars.get(host) {
            b.set_message(msg);
        }
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
    fn event(&self, e: &Event) {
        match e {
            Event::PhaseStarted { phase } => {
                self.phase.set_message(style(phase.name()).bold().to_string());
                let state = self.state.lock().unwrap();
                let queued = match phase {
                    Phase::Upload => Some("uploading"),
                    Phase::Roll => Some("waiting for its turn"),
                    _ => None,
                };
                if let Some(q) = queued {
                    for h in self.bars.keys() {
                        if !state.contains_key(h.as_str()) {
                            self.set(h, style(q).dim().to_string());
                        }
                    }
                }
            }
            Event::Done { host, what, .. } => {
                if *what == What::WaitHealthy {
                    self.state.lock().unwrap().insert(host.clone(), "rolled");
                }
                if let Some(m) = after(*what) {
                    self.set(host, m);
                }
                if self.verbose
                    && let Some(l) = line(e, true)
                {
                    self.println(&l);
                }
            }
            Event::Waiting { host, what, detail } => {
                self.set(host, format!("{} {}", what.label(), style(detail).dim()))
            }
            Event::Failed { host, .. } => {
                self.set(host, style("✗ failed").red().bold().to_string());
                if let Some(l) = line(e, true) {
                    self.println(&style(l).red().to_string());
                }
            }
            Event::HostState { host, in_service, note, .. } => {
                let mark = if *in_service {
                    style(format!("↺ {note}, in service")).yellow()
                } else {
                    style(format!("✗ NOT in service: {note}")).red().bold()
                };
                self.set(host, mark.to_string());
                if let Some(l) = line(e, true) {
                    self.println(&l);
                }
            }
            Event::Finished { outcome, took, phases, exit_code, release } => {
                self.phase.finish_and_clear();
                for b in self.bars.values() {
                    b.finish();
                }
                let ok = *exit_code == 0;
                let head = format!("{outcome}: release {release} in {}", human_duration(*took));
                let mut s = if ok { style(head).green().bold() } else { style(head).red().bold() }.to_string();
                let cells: Vec<String> =
                    phases.iter().map(|(ph, d)| format!("{} {}", ph.name(), style(human_duration(*d)).dim())).collect();
                s.push_str(&format!("\n  {}", cells.join("  ")));
                self.println(&s);
            }
            Event::Output { .. } | Event::Warning { .. } | Event::Built { .. } | Event::Started { .. } => {
                if self.quiet && !matches!(e, Event::Warning { .. }) {
                    return;
                }
                if let Some(l) = line(e, self.verbose) {
                    self.println(&l);
                }
            }
            Event::PhaseFinished { .. } => {}
        }
    }
}
