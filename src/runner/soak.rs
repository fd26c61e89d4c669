//! The canary's soak: read what every backend answered each interval, judge the canary
//! hosts against the hosts still on the old release, and decide: go on, roll back, or (with
//! too little traffic, extended up to `max_soak`) whatever `on_low_traffic` says.

use super::Context;
use super::failure::{Failure, FailureKind};
use crate::balancer::Counts;
use crate::config::canary::{Canary, LowTraffic};
use crate::config::format_duration;
use crate::plan::{Action, Reading, Run, Target, What};
use crate::remote::Cmd;
use crate::report::{Event, Sample};
use crate::transport::{Output, Transport};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How one interval went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interval {
    Ok,
    /// Over the limits: counts toward `failures`.
    Failing,
}

/// The soak's end.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// The canary passed: the rest rolls.
    Pass,
    /// Too little traffic, and `on_low_traffic = "pass"`: the rest rolls, with a warning.
    PassLowTraffic(String),
    /// Roll the canary back.
    Fail(String),
}

/// The judge of a soak: fed one interval at a time.
pub struct Judge<'r> {
    rules: &'r Canary,
    in_a_row: u32,
    /// Every answer of the canary hosts so far.
    pub total: Counts,
}

/// One interval's numbers, and what the check command said (`None`: no check).
pub struct Window {
    pub canary: Counts,
    pub peers: Counts,
    pub check_passed: Option<bool>,
}

impl<'r> Judge<'r> {
    pub fn new(rules: &'r Canary) -> Judge<'r> {
        Judge { rules, in_a_row: 0, total: Counts::default() }
    }

    /// Why this interval fails, if it does.
    pub fn failing(&self, window: &Window) -> Option<String> {
        let rules = self.rules;
        let (canary, peers) = (&window.canary, &window.peers);
        let (ratio, peer_ratio) = (canary.ratio(), peers.ratio());
        if canary.errors > 0 && ratio > rules.max_error_ratio && ratio > peer_ratio * rules.max_error_ratio_vs_peers {
            return Some(format!(
                "{} of {} answers were errors ({}), the other hosts {} (limits: {}, and {}× the others)",
                canary.errors,
                canary.requests,
                percent(ratio),
                percent(peer_ratio),
                percent(rules.max_error_ratio),
                rules.max_error_ratio_vs_peers
            ));
        }
        if let (Some(limit), Some(latency)) = (rules.max_latency, canary.latency_ms)
            && canary.requests > 0
            && latency > limit.as_secs_f64() * 1000.0
        {
            return Some(format!(
                "mean response time {latency:.0} ms, over {} (the other hosts: {})",
                format_duration(limit),
                peers.latency_ms.map_or("-".to_string(), |peer| format!("{peer:.0} ms"))
            ));
        }
        if window.check_passed == Some(false) {
            return Some("the check command failed".into());
        }
        None
    }

    /// Takes one interval that ended `elapsed` into the soak: how it went, and the verdict
    /// once there is one.
    pub fn interval(&mut self, window: &Window, elapsed: Duration) -> (Interval, Option<Verdict>) {
        let rules = self.rules;
        self.total.requests += window.canary.requests;
        self.total.errors += window.canary.errors;
        if let Some(reason) = self.failing(window) {
            self.in_a_row += 1;
            if self.in_a_row >= rules.failures {
                let intervals = if rules.failures == 1 {
                    "an interval".to_string()
                } else {
                    format!("{} intervals in a row", rules.failures)
                };
                return (Interval::Failing, Some(Verdict::Fail(format!("{reason}, in {intervals}"))));
            }
            return (Interval::Failing, None);
        }
        self.in_a_row = 0;
        if elapsed < rules.soak {
            return (Interval::Ok, None);
        }
        if self.total.requests >= rules.min_requests {
            return (Interval::Ok, Some(Verdict::Pass));
        }
        if elapsed < rules.max_soak {
            return (Interval::Ok, None);
        }
        let thin = format!(
            "only {} answers in {} (min_requests = {})",
            self.total.requests,
            format_duration(elapsed),
            rules.min_requests
        );
        (
            Interval::Ok,
            Some(match rules.on_low_traffic {
                LowTraffic::Fail => Verdict::Fail(format!("{thin}: too little traffic to judge the release")),
                LowTraffic::Pass => {
                    Verdict::PassLowTraffic(format!("{thin}: passed without proof (on_low_traffic = \"pass\")"))
                }
            }),
        )
    }
}

fn percent(ratio: f64) -> String {
    format!("{:.1}%", ratio * 100.0)
}

/// The answers of `backends`, summed.
fn of(counts: &BTreeMap<String, Counts>, backends: &[String]) -> Counts {
    Counts::sum(backends.iter().filter_map(|backend| counts.get(backend)))
}

/// What a canary's soak needs from its action.
pub(super) struct SoakSpec<'a> {
    pub read: &'a Reading,
    pub canary: &'a [String],
    pub peers: &'a [String],
    pub rules: &'a Canary,
    pub check: Option<&'a Cmd>,
}

impl<T: Transport> Context<T> {
    /// Runs a soak to its verdict. An interrupt fails it (the canary goes back).
    pub(super) async fn soak(&self, host: &str, action: &Action, spec: SoakSpec<'_>) -> Result<Output, Failure> {
        let Run::Shell { cmd, .. } = &action.run else { unreachable!("a soak reads with a command") };
        let started = Instant::now();
        let mut judge = Judge::new(spec.rules);
        // A reading lasts at most its window (Varnish's log) plus a minute.
        let limit = spec.rules.interval + Duration::from_secs(60);
        let windowed = spec.read.windowed();
        let mut before = if windowed { None } else { Some(self.sample(host, action, cmd, spec.read, limit).await?) };
        let interrupted = || {
            Failure::new(
                host,
                What::Soak,
                FailureKind::Interrupted,
                "the soak was stopped by Ctrl-C, SIGTERM or SIGHUP",
            )
        };
        for index in 1u32.. {
            if !windowed {
                tokio::select! {
                    () = tokio::time::sleep(spec.rules.interval) => {}
                    () = self.cancel.wait() => return Err(interrupted()),
                }
            }
            let now = tokio::select! {
                now = self.sample(host, action, cmd, spec.read, limit) => now?,
                () = self.cancel.wait() => return Err(interrupted()),
            };
            let window_counts: BTreeMap<String, Counts> = match &before {
                Some(before) => now
                    .iter()
                    .map(|(name, counts)| (name.clone(), counts.since(before.get(name).unwrap_or(&Counts::default()))))
                    .collect(),
                None => now.clone(),
            };
            if !windowed {
                before = Some(now);
            }
            let check_passed = match spec.check {
                Some(check) => Some(self.transport.run(&Target::Local, check, None).await.is_ok_and(|out| out.ok())),
                None => None,
            };
            let window =
                Window { canary: of(&window_counts, spec.canary), peers: of(&window_counts, spec.peers), check_passed };
            let elapsed = started.elapsed();
            let (interval, verdict) = judge.interval(&window, elapsed);
            self.report.event(&Event::CanarySample(Sample {
                interval: index,
                elapsed,
                canary: window.canary,
                peers: window.peers,
                check: check_passed,
                failing: interval == Interval::Failing,
                total: judge.total,
            }));
            let Some(verdict) = verdict else { continue };
            let (name, reason) = match &verdict {
                Verdict::Pass => ("pass", String::new()),
                Verdict::PassLowTraffic(reason) => ("pass_low_traffic", reason.clone()),
                Verdict::Fail(reason) => ("fail", reason.clone()),
            };
            self.report.event(&Event::CanaryVerdict {
                verdict: name,
                reason: reason.clone(),
                elapsed,
                total: judge.total,
            });
            return match verdict {
                Verdict::Fail(reason) => {
                    Err(Failure::new(host, What::Soak, FailureKind::Judged, format!("canary failed: {reason}")))
                }
                Verdict::PassLowTraffic(reason) => {
                    self.report.event(&Event::Warning { host: None, message: format!("canary: {reason}") });
                    Ok(Output { status: Some(0), ..Default::default() })
                }
                Verdict::Pass => Ok(Output { status: Some(0), ..Default::default() }),
            };
        }
        unreachable!("the soak ends with a verdict")
    }

    /// One reading of the balancer's answer counters.
    async fn sample(
        &self,
        host: &str,
        action: &Action,
        cmd: &Cmd,
        read: &Reading,
        limit: Duration,
    ) -> Result<BTreeMap<String, Counts>, Failure> {
        let out = match tokio::time::timeout(limit, self.transport.run(&action.on, cmd, None)).await {
            Ok(out) => out.map_err(|err| Failure::transport(host, What::Soak, err))?,
            Err(_) => {
                let message = format!(
                    "reading the balancer's counters on {} did not finish within {}",
                    action.on,
                    format_duration(limit)
                );
                return Err(Failure::new(host, What::Soak, FailureKind::TimedOut { limit }, message));
            }
        };
        if !out.ok() {
            let status = out.status.map_or("killed".to_string(), |code| format!("exit {code}"));
            let message = format!("reading the balancer's counters failed ({status}) on {}", action.on);
            return Err(Failure::new(host, What::Soak, FailureKind::Exited { status: out.status }, message)
                .with_output(out.tail(5)));
        }
        read.counts(&out.stdout)
            .map_err(|message| Failure::new(host, What::Soak, FailureKind::Answered, message).with_output(out.tail(5)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(requests: u64, errors: u64) -> Counts {
        Counts { requests, errors, latency_ms: None }
    }

    fn window(canary: Counts, peers: Counts) -> Window {
        Window { canary, peers, check_passed: None }
    }

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_bad_canary_fails_after_failures_in_a_row_and_not_before() {
        let rules = Canary { soak: 60 * S, failures: 2, ..Canary::default() };
        let mut judge = Judge::new(&rules);
        assert_eq!(judge.interval(&window(counts(100, 10), counts(300, 0)), 10 * S), (Interval::Failing, None));
        let (interval, verdict) = judge.interval(&window(counts(100, 9), counts(300, 1)), 20 * S);
        assert_eq!(interval, Interval::Failing);
        assert!(
            matches!(verdict, Some(Verdict::Fail(reason)) if reason.contains("9 of 100") && reason.contains("2 intervals in a row"))
        );
        // One good interval in between resets the count.
        let mut judge = Judge::new(&rules);
        judge.interval(&window(counts(100, 10), counts(300, 0)), 10 * S);
        assert_eq!(judge.interval(&window(counts(100, 0), counts(300, 0)), 20 * S), (Interval::Ok, None));
        assert_eq!(judge.interval(&window(counts(100, 10), counts(300, 0)), 30 * S), (Interval::Failing, None));
    }

    #[test]
    fn a_site_wide_burst_is_not_blamed_on_the_canary() {
        let rules = Canary { soak: 60 * S, failures: 1, ..Canary::default() };
        let judge = Judge::new(&rules);
        // 10% on the canary, 8% on the others: not 2× worse.
        assert_eq!(judge.failing(&window(counts(100, 10), counts(300, 24))), None);
        // 10% against 4%: it is.
        assert!(judge.failing(&window(counts(100, 10), counts(300, 12))).is_some());
        // Under max_error_ratio: fine whatever the others do.
        assert_eq!(judge.failing(&window(counts(1000, 5), counts(300, 0))), None);
    }

    #[test]
    fn thin_traffic_extends_the_soak_then_fails_safe_or_passes_as_told() {
        let rules = Canary { soak: 30 * S, max_soak: 60 * S, min_requests: 50, ..Canary::default() };
        let mut judge = Judge::new(&rules);
        assert_eq!(judge.interval(&window(counts(10, 0), counts(30, 0)), 30 * S), (Interval::Ok, None), "extended");
        let (_, verdict) = judge.interval(&window(counts(10, 0), counts(30, 0)), 60 * S);
        assert!(matches!(verdict, Some(Verdict::Fail(reason)) if reason.contains("only 20 answers")));
        let passing = Canary { on_low_traffic: LowTraffic::Pass, ..rules.clone() };
        let mut judge = Judge::new(&passing);
        let (_, verdict) = judge.interval(&window(counts(20, 0), counts(30, 0)), 60 * S);
        assert!(matches!(verdict, Some(Verdict::PassLowTraffic(_))));
        // Enough answers by the end of the soak: pass.
        let mut judge = Judge::new(&rules);
        judge.interval(&window(counts(40, 0), counts(30, 0)), 10 * S);
        assert_eq!(judge.interval(&window(counts(40, 0), counts(30, 0)), 30 * S), (Interval::Ok, Some(Verdict::Pass)));
    }

    #[test]
    fn latency_and_the_check_command_vote_too() {
        let rules = Canary { max_latency: Some(Duration::from_millis(200)), ..Canary::default() };
        let judge = Judge::new(&rules);
        let slow = Counts { requests: 10, errors: 0, latency_ms: Some(450.0) };
        assert!(judge.failing(&window(slow, counts(10, 0))).unwrap().contains("450 ms"));
        let failed_check = Window { canary: counts(10, 0), peers: counts(10, 0), check_passed: Some(false) };
        assert_eq!(judge.failing(&failed_check).as_deref(), Some("the check command failed"));
    }
}
