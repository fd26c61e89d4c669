//! The JSON event schema (`--output json`): every event name and the fields it carries.
//! docs/json-events.md documents exactly this list; tests/json_schema.rs keeps the two, and
//! what a real deploy prints, in step.

/// Bumped when a field is removed or changes meaning (adding fields or events is not a break).
pub const VERSION: u64 = 1;

/// On every event.
pub const COMMON: &[&str] = &["v", "ts", "event"];

const STEP: &[&str] = &["host", "action", "on", "seconds"];

/// Every event and its fields (besides [`COMMON`]).
pub const EVENTS: &[(&str, &[&str])] = &[
    ("deploy_started", &["app", "stage", "release", "commit", "hosts"]),
    ("rollback_started", &["app", "stage", "release", "commit", "hosts"]),
    ("phase_started", &["phase"]),
    ("phase_finished", &["phase", "seconds"]),
    ("built", &["file", "bytes", "sha256", "reused", "seconds"]),
    ("stored", &["object", "bytes", "uploaded", "seconds"]),
    ("sent", &["host", "from", "kind", "bytes", "files", "linked", "linked_bytes"]),
    ("host_connected", STEP),
    ("host_locked", STEP),
    ("host_current", STEP),
    ("host_received", STEP),
    ("host_unpacked", STEP),
    ("host_linked", STEP),
    ("host_prepared", STEP),
    ("host_checked", STEP),
    ("migrated", STEP),
    ("post_migrated", STEP),
    ("host_journal", STEP),
    ("host_capacity_ok", STEP),
    ("host_drained", STEP),
    ("host_idle", STEP),
    ("host_switched", STEP),
    ("host_activated", STEP),
    ("host_healthy", STEP),
    ("host_probe_healthy", STEP),
    ("host_undrained", STEP),
    ("host_in_service", STEP),
    ("cache_banned", STEP),
    ("host_recorded", STEP),
    ("host_cleaned", STEP),
    ("host_unlocked", STEP),
    ("waiting", &["host", "action", "detail"]),
    ("command", &["on", "cmd", "status", "stdout", "stderr"]),
    ("warning", &["host", "message"]),
    ("failed", &["host", "action", "message", "output"]),
    ("host_state", &["host", "release", "in_service", "note"]),
    (
        "canary_sample",
        &[
            "interval",
            "seconds",
            "requests",
            "errors",
            "ratio",
            "latency_ms",
            "peers_requests",
            "peers_errors",
            "peers_ratio",
            "peers_latency_ms",
            "check",
            "verdict",
            "total_requests",
            "total_errors",
        ],
    ),
    ("canary_soaked", STEP),
    ("canary_verdict", &["verdict", "reason", "seconds", "requests", "errors"]),
    ("finished", &["outcome", "exit_code", "release", "seconds", "phases"]),
];

pub fn fields(event: &str) -> Option<&'static [&'static str]> {
    EVENTS.iter().find(|(name, _)| *name == event).map(|(_, fields)| *fields)
}

#[cfg(test)]
mod tests {
    use crate::plan::What;

    #[test]
    fn every_step_event_is_in_the_schema() {
        for what in What::ALL {
            let name = super::super::done_name(what);
            assert!(super::fields(name).is_some(), "{name} is not in the schema");
        }
    }
}
