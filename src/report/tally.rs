//! Remembers how each host ended, for summaries (GitHub step summary, notifications).

use super::{Event, Reporter};
use crate::plan::What;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone, Default)]
pub struct HostResult {
    pub last: Option<What>,
    pub failed: Option<String>,
    pub note: Option<String>,
    pub in_service: Option<bool>,
}

impl HostResult {
    /// One short phrase: `deployed`, `rolled back`, `failed at health: …`.
    pub fn describe(&self) -> String {
        match (&self.note, &self.failed, self.last) {
            (Some(note), _, _) => note.clone(),
            (None, Some(failed), _) => format!("failed: {failed}"),
            (None, None, Some(What::Unlock | What::Cleanup | What::Record)) => "done".into(),
            (None, None, Some(what)) => format!("stopped after {}", what.label()),
            (None, None, None) => "untouched".into(),
        }
    }
}

/// Passes every event on and keeps the per-host outcome.
pub struct Tally {
    inner: Arc<dyn Reporter>,
    hosts: Mutex<BTreeMap<String, HostResult>>,
}

impl Tally {
    pub fn new(inner: Arc<dyn Reporter>) -> Arc<Tally> {
        Arc::new(Tally { inner, hosts: Mutex::new(BTreeMap::new()) })
    }

    pub fn results(&self) -> BTreeMap<String, HostResult> {
        self.hosts.lock().unwrap().clone()
    }
}

impl Reporter for Tally {
    fn event(&self, event: &Event) {
        {
            let mut hosts = self.hosts.lock().unwrap();
            match event {
                Event::Done { host, what, .. } => hosts.entry(host.clone()).or_default().last = Some(*what),
                Event::Failed { host, what, message, .. } => {
                    hosts.entry(host.clone()).or_default().failed = Some(format!("{} — {message}", what.label()))
                }
                Event::HostState { host, in_service, note, .. } => {
                    let result = hosts.entry(host.clone()).or_default();
                    result.note = Some(note.clone());
                    result.in_service = Some(*in_service);
                }
                _ => {}
            }
        }
        self.inner.event(event);
    }
}
