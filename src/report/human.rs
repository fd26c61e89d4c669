//! A live line per host (phase, spinner, elapsed) and a summary table at the end.

use super::plain::line;
use super::{Event, Reporter, human_duration};
use crate::plan::What;
use console::style;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Human {
    multi: MultiProgress,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
    phase: ProgressBar,
    results: Mutex<BTreeMap<String, (String, Duration)>>,
    order: Vec<String>,
    verbose: bool,
    quiet: bool,
    redactions: Vec<(String, String)>,
    started: Instant,
}

impl Human {
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
                    ProgressStyle::with_template(&format!(
                        "  {{spinner:.green}} {{prefix:<{width}}} {{msg}} {{elapsed:.dim}}"
                    ))
                    .unwrap(),
                );
                b.set_prefix(h.clone());
                b.set_message(style("waiting").dim().to_string());
                b.enable_steady_tick(Duration::from_millis(120));
                bars.insert(h.clone(), b);
            }
        }
        Human {
            multi,
            bars: Mutex::new(bars),
            phase,
            results: Mutex::new(BTreeMap::new()),
            order: hosts.to_vec(),
            verbose,
            quiet,
            redactions,
            started: Instant::now(),
        }
    }

    fn println(&self, s: &str) {
        let s = crate::config::redact(&self.redactions, s);
        let _ = self.multi.println(s);
    }
}

impl Reporter for Human {
    fn event(&self, e: &Event) {
        match e {
            Event::PhaseStarted { phase } => self.phase.set_message(style(phase.name()).bold().to_string()),
            Event::Done { host, what, .. } => {
                if let Some(b) = self.bars.lock().unwrap().get(host) {
                    let msg = match what {
                        What::Unlock => style("done").green().to_string(),
                        w => w.label().to_string(),
                    };
                    b.set_message(msg);
                    if *what == What::Unlock {
                        b.finish();
                    }
                }
                self.results.lock().unwrap().insert(host.clone(), (what.label().to_string(), self.started.elapsed()));
                if self.verbose {
                    if let Some(l) = line(e, true) {
                        self.println(&l);
                    }
                }
            }
            Event::Waiting { host, what, detail } => {
                if let Some(b) = self.bars.lock().unwrap().get(host) {
                    b.set_message(format!("{} {}", what.label(), style(detail).dim()));
                }
            }
            Event::Failed { host, .. } => {
                if let Some(b) = self.bars.lock().unwrap().get(host) {
                    b.set_message(style("failed").red().bold().to_string());
                }
                if let Some(l) = line(e, true) {
                    self.println(&style(l).red().to_string());
                }
            }
            Event::Finished { outcome, took, phases, exit_code, release } => {
                self.phase.finish_and_clear();
                for b in self.bars.lock().unwrap().values() {
                    b.finish();
                }
                let mut s = String::new();
                let ok = *exit_code == 0;
                let head = format!("{outcome}: release {release} in {}", human_duration(*took));
                s.push_str(&if ok { style(head).green().bold() } else { style(head).red().bold() }.to_string());
                s.push('\n');
                for (ph, d) in phases {
                    s.push_str(&format!("  {:<9} {:>8}\n", ph.name(), human_duration(*d)));
                }
                let _ = &self.order;
                self.println(s.trim_end());
            }
            Event::Output { .. }
            | Event::Warning { .. }
            | Event::HostState { .. }
            | Event::Built { .. }
            | Event::Started { .. } => {
                if self.quiet && !matches!(e, Event::Warning { .. } | Event::HostState { .. }) {
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
