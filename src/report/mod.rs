//! What a run tells its user: typed events, shown by a human, plain or JSON reporter; and
//! what a finished run tells the outside (the GitHub step summary, webhooks).

mod human;
pub mod notify;
mod plain;
pub mod schema;
pub mod summary;
mod tally;

pub use human::Human;
pub use plain::{Json, Plain};
pub use summary::RunSummary;
pub use tally::{HostResult, Tally};

use crate::balancer::Counts;
use crate::plan::{Phase, What};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone)]
pub enum Event {
    Started {
        kind: &'static str,
        app: String,
        stage: String,
        release: String,
        commit: Option<String>,
        hosts: Vec<String>,
    },
    PhaseStarted {
        phase: Phase,
    },
    PhaseFinished {
        phase: Phase,
        took: Duration,
    },
    Built {
        file: String,
        bytes: u64,
        sha256: String,
        reused: bool,
        took: Duration,
    },
    /// A tarball was put in the artifact store (or was there already), once per run.
    Stored {
        /// The object, without any signature.
        object: String,
        bytes: u64,
        /// Sent by this run (false: the store had it).
        uploaded: bool,
        took: Duration,
    },
    /// A tarball reached a host: the whole release, or only what its current release lacks.
    Sent {
        host: String,
        /// Fetched by the host from the artifact store (else streamed over ssh).
        from_store: bool,
        /// `full` or `delta`.
        kind: &'static str,
        bytes: u64,
        files: usize,
        linked: usize,
        linked_bytes: u64,
    },
    /// One action finished on (or about) a host.
    Done {
        host: String,
        what: What,
        on: String,
        took: Duration,
    },
    /// A wait or retry is still going on (for live lines).
    Waiting {
        host: String,
        what: What,
        detail: String,
    },
    /// A command's output (with `-v`).
    Output {
        on: String,
        cmd: String,
        status: Option<i32>,
        stdout: String,
        stderr: String,
    },
    Warning {
        host: Option<String>,
        message: String,
    },
    /// An action failed; `output` is the last lines the command printed.
    Failed {
        host: String,
        what: What,
        message: String,
        output: String,
    },
    /// Where a host stands after a failure was handled.
    HostState {
        host: String,
        release: Option<String>,
        in_service: bool,
        note: String,
    },
    /// One interval of a canary's soak.
    CanarySample(Sample),
    /// How the soak ended: `pass`, `pass_low_traffic` or `fail`.
    CanaryVerdict {
        verdict: &'static str,
        reason: String,
        elapsed: Duration,
        total: Counts,
    },
    Finished {
        outcome: &'static str,
        exit_code: i32,
        took: Duration,
        phases: Vec<(Phase, Duration)>,
        release: String,
    },
}

/// One interval of a soak: the canary hosts' answers and the others', summed.
#[derive(Debug, Clone)]
pub struct Sample {
    /// 1, 2, … (the soak's intervals).
    pub interval: u32,
    /// Since the soak began.
    pub elapsed: Duration,
    pub canary: Counts,
    pub peers: Counts,
    /// What `[canary] check` said (`None`: no check).
    pub check: Option<bool>,
    /// Over the limits (counts toward `failures`).
    pub failing: bool,
    /// The canary's answers since the soak began.
    pub total: Counts,
}

impl Sample {
    /// `canary 240 answers, 3 errors (1.2%) · others 0.4% · 40.0s in`, for the live lines.
    pub fn summary(&self) -> String {
        format!(
            "canary {} answers, {} errors ({:.1}%) · others {:.1}% · {} in{}",
            self.canary.requests,
            self.canary.errors,
            self.canary.ratio() * 100.0,
            self.peers.ratio() * 100.0,
            human_duration(self.elapsed),
            if self.failing { " · FAILING" } else { "" }
        )
    }
}

pub trait Reporter: Send + Sync {
    fn event(&self, event: &Event);
}

/// Reports nothing (tests, `--quiet` internals).
pub struct Silent;

impl Reporter for Silent {
    fn event(&self, _: &Event) {}
}

/// The JSON event name of a finished action.
pub fn done_name(what: What) -> &'static str {
    match what {
        What::Connect => "host_connected",
        What::Lock => "host_locked",
        What::Export | What::Build | What::Pack => "built",
        What::ReadCurrent => "host_current",
        What::Receive => "host_received",
        What::Unpack => "host_unpacked",
        What::LinkShared => "host_linked",
        What::Prepare => "host_prepared",
        What::CheckRelease => "host_checked",
        What::Migrate => "migrated",
        What::PostMigrate => "post_migrated",
        What::Journal => "host_journal",
        What::Capacity => "host_capacity_ok",
        What::Drain => "host_drained",
        What::WaitDrained => "host_idle",
        What::Switch => "host_switched",
        What::Activate => "host_activated",
        What::Health => "host_healthy",
        What::WaitProbe => "host_probe_healthy",
        What::Undrain => "host_undrained",
        What::WaitHealthy => "host_in_service",
        What::Soak => "canary_soaked",
        What::Ban => "cache_banned",
        What::Record => "host_recorded",
        What::Cleanup => "host_cleaned",
        What::Unlock => "host_unlocked",
    }
}

fn secs(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

impl Event {
    /// The event as one JSON object (without `ts`).
    pub fn to_json(&self) -> Value {
        match self {
            Event::Started { kind, app, stage, release, commit, hosts } => {
                json!({"event": format!("{kind}_started"), "app": app, "stage": stage, "release": release, "commit": commit, "hosts": hosts})
            }
            Event::PhaseStarted { phase } => json!({"event": "phase_started", "phase": phase.name()}),
            Event::PhaseFinished { phase, took } => {
                json!({"event": "phase_finished", "phase": phase.name(), "seconds": secs(*took)})
            }
            Event::Built { file, bytes, sha256, reused, took } => {
                json!({"event": "built", "file": file, "bytes": bytes, "sha256": sha256, "reused": reused, "seconds": secs(*took)})
            }
            Event::Stored { object, bytes, uploaded, took } => {
                json!({"event": "stored", "object": object, "bytes": bytes, "uploaded": uploaded, "seconds": secs(*took)})
            }
            Event::Sent { host, from_store, kind, bytes, files, linked, linked_bytes } => {
                let from = if *from_store { "store" } else { "ssh" };
                json!({"event": "sent", "host": host, "from": from, "kind": kind, "bytes": bytes, "files": files, "linked": linked, "linked_bytes": linked_bytes})
            }
            Event::Done { host, what, on, took } => {
                json!({"event": done_name(*what), "host": host, "action": what.label(), "on": on, "seconds": secs(*took)})
            }
            Event::Waiting { host, what, detail } => {
                json!({"event": "waiting", "host": host, "action": what.label(), "detail": detail})
            }
            Event::Output { on, cmd, status, stdout, stderr } => {
                json!({"event": "command", "on": on, "cmd": cmd, "status": status, "stdout": stdout, "stderr": stderr})
            }
            Event::Warning { host, message } => json!({"event": "warning", "host": host, "message": message}),
            Event::Failed { host, what, message, output } => {
                json!({"event": "failed", "host": host, "action": what.label(), "message": message, "output": output})
            }
            Event::HostState { host, release, in_service, note } => {
                json!({"event": "host_state", "host": host, "release": release, "in_service": in_service, "note": note})
            }
            Event::CanarySample(sample) => {
                let ratio = |counts: &Counts| (counts.ratio() * 10_000.0).round() / 10_000.0;
                let (canary, peers) = (&sample.canary, &sample.peers);
                json!({"event": "canary_sample", "interval": sample.interval, "seconds": secs(sample.elapsed),
                    "requests": canary.requests, "errors": canary.errors, "ratio": ratio(canary), "latency_ms": canary.latency_ms,
                    "peers_requests": peers.requests, "peers_errors": peers.errors, "peers_ratio": ratio(peers),
                    "peers_latency_ms": peers.latency_ms, "check": sample.check,
                    "verdict": if sample.failing { "failing" } else { "ok" }, "total_requests": sample.total.requests,
                    "total_errors": sample.total.errors})
            }
            Event::CanaryVerdict { verdict, reason, elapsed, total } => {
                json!({"event": "canary_verdict", "verdict": verdict, "reason": reason, "seconds": secs(*elapsed),
                    "requests": total.requests, "errors": total.errors})
            }
            Event::Finished { outcome, exit_code, took, phases, release } => {
                let timed: serde_json::Map<String, Value> =
                    phases.iter().map(|(phase, took)| (phase.name().to_string(), json!(secs(*took)))).collect();
                json!({"event": "finished", "outcome": outcome, "exit_code": exit_code, "release": release, "seconds": secs(*took), "phases": timed})
            }
        }
    }
}

/// `2026-11-26T05:19:44.123Z`.
pub fn timestamp(time: SystemTime) -> String {
    let ms = time.duration_since(UNIX_EPOCH).map(|since| since.subsec_millis()).unwrap_or(0);
    let seconds = crate::release_id::rfc3339(time);
    format!("{}.{ms:03}Z", seconds.trim_end_matches('Z'))
}

/// `1.2s`, `340ms`, `2m05s`.
pub fn human_duration(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", duration.as_secs_f64())
    } else {
        format!("{}m{:02}s", ms / 60_000, ms % 60_000 / 1000)
    }
}
