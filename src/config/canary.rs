//! `[rolling] canary` and `soak`, and the `[canary]` table: how many hosts take the release
//! first, how long they serve real traffic, and how that traffic is judged (from the
//! balancer's own counters).

use super::decode::Table;
use super::schema::BatchSize;
use super::source::{Kind, Loc};
use serde::Serialize;
use std::time::Duration;

/// What a canary does when its soak saw fewer answers than `min_requests`, even extended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LowTraffic {
    /// Roll the canary back: nothing proved the release good (the default).
    Fail,
    /// Go on, with a warning.
    Pass,
}

/// The canary of a stage; `hosts: None` = no canary.
#[derive(Debug, Clone, Serialize)]
pub struct Canary {
    /// App hosts switched first (`[rolling] canary`).
    pub hosts: Option<BatchSize>,
    /// How long they serve real traffic before the rest goes (`[rolling] soak`).
    #[serde(with = "super::duration::as_text")]
    pub soak: Duration,
    /// Largest share of errors (5xx, backend errors) from the canary hosts in an interval.
    pub max_error_ratio: f64,
    /// …and only when also this many times the share of the hosts still on the old release.
    pub max_error_ratio_vs_peers: f64,
    /// Fewer answers in the soak than this is inconclusive.
    pub min_requests: u64,
    pub on_low_traffic: LowTraffic,
    /// The soak is extended up to this long while traffic is too thin.
    #[serde(with = "super::duration::as_text")]
    pub max_soak: Duration,
    #[serde(with = "super::duration::as_text")]
    pub interval: Duration,
    /// Failing intervals in a row before the canary is rolled back.
    pub failures: u32,
    /// Run on the deploying machine each interval; a non-zero exit fails the interval.
    pub check: Option<String>,
    /// Largest mean response time of the canary hosts, where the balancer measures it.
    #[serde(with = "super::duration::as_text_opt")]
    pub max_latency: Option<Duration>,
}

pub const DEFAULT_SOAK: Duration = Duration::from_secs(120);
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

impl Default for Canary {
    fn default() -> Canary {
        Canary {
            hosts: None,
            soak: DEFAULT_SOAK,
            max_error_ratio: 0.01,
            max_error_ratio_vs_peers: 2.0,
            min_requests: 50,
            on_low_traffic: LowTraffic::Fail,
            max_soak: DEFAULT_SOAK * 3,
            interval: DEFAULT_INTERVAL,
            failures: 2,
            check: None,
            max_latency: None,
        }
    }
}

impl Canary {
    /// How many of `apps` app hosts are canaries (0: no canary).
    pub fn count(&self, apps: usize) -> usize {
        self.hosts.map_or(0, |hosts| hosts.size(apps))
    }
}

/// `[rolling] canary` and `soak`: `(canary, soak, where canary was written)`.
pub fn from_rolling(table: &Table) -> (Option<BatchSize>, Option<Duration>, Option<Loc>) {
    let mut hosts = None;
    let mut loc = None;
    if let Some(value) = table.raw("canary") {
        loc = Some(value.loc.clone());
        let parsed = match &value.kind {
            Kind::Int(0) => Ok(None),
            Kind::Int(count) if *count > 0 && *count <= i64::from(u32::MAX) => {
                BatchSize::parse(&count.to_string()).map(Some)
            }
            Kind::Str(text) => BatchSize::parse(text).map(Some),
            other => {
                Err(format!("expected a number of hosts or a percentage like \"25%\", found {}", other.describe()))
            }
        };
        match parsed {
            Ok(size) => hosts = size,
            Err(message) => table.decoder.error(&value.loc, &table.key_path("canary"), message, None),
        }
    }
    (hosts, table.duration("soak", false), loc)
}

/// The `[canary]` table over the defaults, with `[rolling]`'s `canary` and `soak`.
pub fn canary(table: Option<&Table>, hosts: Option<BatchSize>, soak: Option<Duration>) -> Canary {
    let soak = soak.unwrap_or(DEFAULT_SOAK);
    let mut canary = Canary { hosts, soak, max_soak: soak * 3, ..Canary::default() };
    let Some(table) = table else { return canary };
    if let Some((ratio, _)) = table.number_in("max_error_ratio", 0.0, 1.0, true) {
        canary.max_error_ratio = ratio;
    }
    if let Some((times, _)) = table.number_in("max_error_ratio_vs_peers", 1.0, 1000.0, false) {
        canary.max_error_ratio_vs_peers = times;
    }
    if let Some((count, _)) = table.int_in("min_requests", 0, i64::MAX) {
        canary.min_requests = count as u64;
    }
    if let Some(text) = table.string("on_low_traffic") {
        match text.value.as_str() {
            "fail" => canary.on_low_traffic = LowTraffic::Fail,
            "pass" => canary.on_low_traffic = LowTraffic::Pass,
            other => table.decoder.error(
                &text.loc,
                &table.key_path("on_low_traffic"),
                format!("`{other}` is neither \"fail\" nor \"pass\""),
                Some("\"fail\" rolls the canary back (the default), \"pass\" goes on with a warning".into()),
            ),
        }
    }
    if let Some(interval) = table.duration("interval", false) {
        canary.interval = interval;
    }
    if let Some(max_soak) = table.duration("max_soak", false) {
        canary.max_soak = max_soak;
    }
    if let Some((count, _)) = table.int_in("failures", 1, 1000) {
        canary.failures = count as u32;
    }
    canary.check = table.shell_string("check").map(|text| text.value);
    canary.max_latency = table.duration("max_latency", false);
    if canary.max_soak < canary.soak {
        let loc = table.raw("max_soak").map_or_else(|| table.loc().clone(), |value| value.loc.clone());
        table.decoder.error(
            &loc,
            &table.key_path("max_soak"),
            "`max_soak` is shorter than `[rolling] soak`",
            Some("max_soak is how far a soak with too little traffic may be extended".into()),
        );
    }
    canary
}
