//! What a finished run says to the outside: a Markdown summary (GitHub Actions'
//! `$GITHUB_STEP_SUMMARY`) and the webhook payloads.

use super::HostResult;
use super::human_duration;
use crate::plan::Phase;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything about one finished (or starting) run.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// `deploy` or `rollback`.
    pub kind: &'static str,
    pub app: String,
    pub stage: String,
    pub release: String,
    pub commit: Option<String>,
    pub who: String,
    /// `started`, `deployed`, `rolled back`, `failed`.
    pub outcome: String,
    pub exit_code: Option<i32>,
    pub took: Duration,
    pub phases: Vec<(Phase, Duration)>,
    pub hosts: BTreeMap<String, HostResult>,
    pub message: Option<String>,
}

impl RunSummary {
    fn icon(&self) -> &'static str {
        match self.exit_code {
            None => "🚀",
            Some(0) => "✅",
            Some(1) => "↩️",
            _ => "🚨",
        }
    }

    /// One line for people: `✅ shop deploy 20261126T051944Z-1a2b3c4 to production: deployed by alice@laptop in 12.3s`.
    pub fn headline(&self) -> String {
        let what = match self.exit_code {
            None => format!("{} {} started to {}", self.kind, self.release, self.stage),
            Some(_) => format!("{} {} to {}: {}", self.kind, self.release, self.stage, self.outcome),
        };
        let took = if self.exit_code.is_some() { format!(" in {}", human_duration(self.took)) } else { String::new() };
        format!("{} {} {what} by {}{took}", self.icon(), self.app, self.who)
    }

    /// Markdown for `$GITHUB_STEP_SUMMARY`.
    pub fn markdown(&self) -> String {
        let mut text = format!("### {}\n\n", self.headline());
        text.push_str("| | |\n|---|---|\n");
        text.push_str(&format!("| release | `{}` |\n", self.release));
        if let Some(commit) = &self.commit {
            text.push_str(&format!("| commit | `{commit}` |\n"));
        }
        text.push_str(&format!(
            "| stage | {} |\n| outcome | {} (exit {}) |\n",
            self.stage,
            self.outcome,
            self.exit_code.unwrap_or(0)
        ));
        if let Some(message) = &self.message {
            text.push_str(&format!("| error | {} |\n", message.lines().next().unwrap_or("").replace('|', "\\|")));
        }
        if !self.phases.is_empty() {
            text.push_str("\n| phase | time |\n|---|---|\n");
            for (phase, took) in &self.phases {
                text.push_str(&format!("| {} | {} |\n", phase.name(), human_duration(*took)));
            }
        }
        if !self.hosts.is_empty() {
            text.push_str("\n| host | result |\n|---|---|\n");
            for (host, result) in &self.hosts {
                text.push_str(&format!("| {host} | {} |\n", result.describe().replace('|', "\\|")));
            }
        }
        text.push('\n');
        text
    }

    /// The `json` webhook body.
    pub fn json(&self, moment: &str) -> Value {
        let hosts: BTreeMap<&String, String> =
            self.hosts.iter().map(|(host, result)| (host, result.describe())).collect();
        let phases: serde_json::Map<String, Value> = self
            .phases
            .iter()
            .map(|(phase, took)| (phase.name().to_string(), json!((took.as_secs_f64() * 1000.0).round() / 1000.0)))
            .collect();
        json!({
            "v": 1,
            "moment": moment,
            "kind": self.kind,
            "app": self.app,
            "stage": self.stage,
            "release": self.release,
            "commit": self.commit,
            "who": self.who,
            "outcome": self.outcome,
            "exit_code": self.exit_code,
            "seconds": (self.took.as_secs_f64() * 1000.0).round() / 1000.0,
            "phases": phases,
            "hosts": hosts,
            "message": self.message,
        })
    }
}
