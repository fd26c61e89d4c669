//! Running one action: a command, an HTTP request, or a wait that polls until the output
//! says so.

use super::Ctx;
use super::readings;
use crate::plan::{Action, Reading, Run, Until, What};
use crate::report::Event;
use crate::transport::{Output, Request, Transport};
use std::path::Path;
use std::time::{Duration, Instant};

/// Why an action failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub host: String,
    pub what: What,
    pub message: String,
    /// The last lines the command printed.
    pub output: String,
    /// The ssh connection to the host is gone.
    pub lost: bool,
}

const POLL: Duration = Duration::from_millis(100);

impl<T: Transport> Ctx<T> {
    fn fail(&self, host: &str, what: What, message: impl Into<String>, output: String, lost: bool) -> Failure {
        Failure { host: host.to_string(), what, message: message.into(), output, lost }
    }

    async fn shell(&self, host: &str, a: &Action, stdin: Option<&Path>) -> Result<Output, Failure> {
        let Run::Shell { cmd, .. } = &a.run else { unreachable!("shell() on a {:?}", a.run) };
        let run = self.t.run(&a.on, cmd, stdin);
        // Bookkeeping and balancer commands answer at once; one that hangs (a stuck `command`
        // balancer, a wedged varnishadm) must not hold the roll past every time limit. Hooks,
        // migrations and uploads take as long as they take.
        let out = match command_limit(a.what) {
            Some(limit) => match tokio::time::timeout(limit, run).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(self.fail(
                        host,
                        a.what,
                        format!("{} on {} {DID_NOT_FINISH} {}s", a.what.label(), a.on, limit.as_secs()),
                        String::new(),
                        false,
                    ));
                }
            },
            None => run.await,
        }
        .map_err(|e| self.fail(host, a.what, e.message, String::new(), e.lost))?;
        if self.verbose {
            self.report.event(&Event::Output {
                on: a.on.to_string(),
                cmd: cmd.to_string(),
                status: out.status,
                stdout: out.stdout.clone(),
                stderr: out.stderr.clone(),
            });
        }
        Ok(out)
    }

    /// Runs `a` about `host`; reports it done. `stdin` is the artifact for a receive.
    pub async fn exec(&self, host: &str, a: &Action, stdin: Option<&Path>) -> Result<Output, Failure> {
        let start = Instant::now();
        let out = match (&a.run, &a.until) {
            (Run::Shell { .. }, None) => {
                let out = self.shell(host, a, stdin).await?;
                if !out.ok() {
                    let status = out.status.map_or("killed".to_string(), |s| format!("exit {s}"));
                    return Err(self.fail(
                        host,
                        a.what,
                        format!("{} failed ({status}) on {}", a.what.label(), a.on),
                        out.tail(15),
                        false,
                    ));
                }
                out
            }
            (Run::Shell { .. }, Some(Until::Silent)) => {
                let out = self.shell(host, a, None).await?;
                if !out.ok() || !out.stdout.trim().is_empty() {
                    let said = out.stdout.trim().to_string();
                    return Err(self.fail(
                        host,
                        a.what,
                        format!("{} on {} answered: {said}", a.what.label(), a.on),
                        out.tail(5),
                        false,
                    ));
                }
                out
            }
            (Run::Shell { .. }, Some(Until::Status { expect, retries, interval })) => {
                let mut last = String::new();
                let mut ok = None;
                for i in 0..*retries {
                    let out = self.shell(host, a, None).await?;
                    match readings::http_status(&out.stdout) {
                        Some(s) if s == *expect => {
                            ok = Some(out);
                            break;
                        }
                        Some(s) => last = format!("status {s}"),
                        None => last = out.tail(3),
                    }
                    if i + 1 < *retries {
                        self.report.event(&Event::Waiting {
                            host: host.into(),
                            what: a.what,
                            detail: format!("try {}/{retries}: {last}", i + 1),
                        });
                        tokio::time::sleep(*interval).await;
                    }
                }
                match ok {
                    Some(o) => o,
                    None => {
                        return Err(self.fail(
                            host,
                            a.what,
                            format!("expected status {expect} after {retries} tries, last: {last}"),
                            String::new(),
                            false,
                        ));
                    }
                }
            }
            (
                Run::Shell { .. },
                Some(
                    u @ (Until::Idle { read, timeout }
                    | Until::ProbeHealthy { read, timeout }
                    | Until::InService { read, timeout }
                    | Until::Capacity { read, timeout, .. }),
                ),
            ) => {
                let deadline = Instant::now() + *timeout;
                let mut next_report = Instant::now() + Duration::from_secs(1);
                loop {
                    let out = self.shell(host, a, None).await?;
                    let verdict = judge(u, read, &out);
                    match verdict {
                        Ok(true) => break out,
                        Ok(false) => {}
                        Err(e) => return Err(self.fail(host, a.what, e, out.tail(5), false)),
                    }
                    if Instant::now() >= deadline {
                        if let Until::Idle { .. } = u {
                            // drain_timeout is the longest wait, not an error: go on.
                            self.report.event(&Event::Warning {
                                host: Some(host.into()),
                                message: format!(
                                    "requests still in flight after {}; going on",
                                    crate::config::decode::format_duration(*timeout)
                                ),
                            });
                            break out;
                        }
                        return Err(self.fail(
                            host,
                            a.what,
                            format!("not {} after {}", goal(u), crate::config::decode::format_duration(*timeout)),
                            out.tail(5),
                            false,
                        ));
                    }
                    if Instant::now() >= next_report {
                        self.report.event(&Event::Waiting {
                            host: host.into(),
                            what: a.what,
                            detail: goal(u).to_string(),
                        });
                        next_report += Duration::from_secs(1);
                    }
                    tokio::time::sleep(POLL).await;
                }
            }
            (Run::Http { method, url, headers, expect_status, timeout }, until) => {
                let (expect, retries, interval) = match until {
                    Some(Until::Status { expect, retries, interval }) => (Some(*expect), *retries, *interval),
                    _ => (*expect_status, 1, Duration::ZERO),
                };
                let mut last = String::new();
                let mut done = false;
                for i in 0..retries.max(1) {
                    let req = Request { method, url, headers, timeout: *timeout };
                    match self.t.http(req).await {
                        Ok(s) if expect.map_or((200..300).contains(&s), |e| e == s) => {
                            done = true;
                            break;
                        }
                        Ok(s) => last = format!("status {s}"),
                        Err(e) => last = e.message,
                    }
                    if i + 1 < retries {
                        self.report.event(&Event::Waiting {
                            host: host.into(),
                            what: a.what,
                            detail: format!("try {}/{retries}: {last}", i + 1),
                        });
                        tokio::time::sleep(interval).await;
                    }
                }
                if !done {
                    let want = expect.map_or("a 2xx status".to_string(), |e| format!("status {e}"));
                    return Err(self.fail(
                        host,
                        a.what,
                        format!("{method} {url}: expected {want}, last: {last}"),
                        String::new(),
                        false,
                    ));
                }
                Output { status: Some(0), ..Default::default() }
            }
            (Run::Ssh { .. } | Run::Export { .. } | Run::Pack { .. } | Run::Cleanup { .. }, _) => {
                unreachable!("{:?} is run by its phase", a.what)
            }
        };
        self.report.event(&Event::Done {
            host: host.into(),
            what: a.what,
            on: a.on.to_string(),
            took: start.elapsed(),
        });
        Ok(out)
    }
}

/// Says that a command timed out (its effect is unknown).
pub const DID_NOT_FINISH: &str = "did not finish within";

impl Failure {
    /// The command could not be run (or its connection was lost).
    pub fn transport(host: &str, what: What, e: crate::transport::TransportError) -> Failure {
        Failure { host: host.to_string(), what, message: e.message, output: String::new(), lost: e.lost }
    }

    /// The tarball for a host could not be made (locally).
    pub fn packing(host: &str, what: What, e: crate::artifact::BuildError) -> Failure {
        Failure {
            host: host.to_string(),
            what,
            message: format!("packing the release: {e}"),
            output: String::new(),
            lost: false,
        }
    }

    /// The command ran to its end (and failed): its effect is known not to have happened.
    /// A lost connection or a timeout leaves it unknown.
    pub fn completed(&self) -> bool {
        !self.lost && !self.message.contains(DID_NOT_FINISH)
    }
}

/// The longest one command of this kind may take (`None`: no limit).
fn command_limit(what: What) -> Option<Duration> {
    match what {
        What::Capacity
        | What::Drain
        | What::WaitDrained
        | What::WaitProbe
        | What::Undrain
        | What::WaitHealthy
        | What::Ban
        | What::Lock
        | What::Unlock
        | What::Journal
        | What::Switch
        | What::ReadCurrent
        | What::CheckRelease => Some(Duration::from_secs(60)),
        _ => None,
    }
}

fn goal(u: &Until) -> &'static str {
    match u {
        Until::Idle { .. } => "idle",
        Until::ProbeHealthy { .. } => "healthy in the balancer's check",
        Until::InService { .. } => "taking traffic",
        Until::Status { .. } | Until::Silent => "answering",
        Until::Capacity { .. } => "enough backends in service to drain",
    }
}

/// Has the wait reached its goal? `Err` = the output makes no sense (wrong backend name…).
fn judge(u: &Until, read: &Reading, out: &Output) -> Result<bool, String> {
    match (u, read) {
        (_, Reading::ExitStatus) => Ok(out.ok()),
        (_, _) if !out.ok() => {
            Err(format!("balancer command failed (exit {})", out.status.map_or("-".into(), |s| s.to_string())))
        }
        (Until::Idle { .. }, Reading::VarnishStat) => readings::varnish_in_flight(&out.stdout)
            .map(|n| n == 0)
            .ok_or_else(|| "varnishstat shows no such backend (check the backend name and `instance`)".to_string()),
        (Until::Idle { .. }, Reading::HaproxyStat { backend, server }) => {
            readings::haproxy_row(&out.stdout, backend, server).map(|(cur, _)| cur == 0)
        }
        (Until::Idle { .. }, Reading::Number) => out
            .stdout
            .trim()
            .parse::<u64>()
            .map(|n| n == 0)
            .map_err(|_| format!("in_flight printed {:?}, not a number", out.stdout.trim())),
        (Until::Capacity { own, others, min, .. }, Reading::VarnishBackendList) => {
            let own = std::slice::from_ref(own);
            Ok(readings::varnish_count_in_service(&out.stdout, own) == 0
                || readings::varnish_count_in_service(&out.stdout, others) >= *min as usize)
        }
        (Until::Capacity { own, others, min, .. }, Reading::HaproxyStat { backend, .. }) => {
            let own = std::slice::from_ref(own);
            Ok(readings::haproxy_count_up(&out.stdout, backend, own) == 0
                || readings::haproxy_count_up(&out.stdout, backend, others) >= *min as usize)
        }
        (Until::ProbeHealthy { .. }, Reading::VarnishBackendList) => readings::varnish_probe_full(&out.stdout),
        (Until::InService { .. }, Reading::VarnishBackendList) => readings::varnish_in_service(&out.stdout),
        (Until::ProbeHealthy { .. }, Reading::HaproxyStat { backend, server }) => {
            readings::haproxy_row(&out.stdout, backend, server)
                .map(|(_, st)| st.starts_with("DRAIN") || st.starts_with("UP"))
        }
        (Until::InService { .. }, Reading::HaproxyStat { backend, server }) => {
            readings::haproxy_row(&out.stdout, backend, server).map(|(_, st)| st.starts_with("UP"))
        }
        (u, r) => Err(format!("cannot wait for {} with {r:?}", goal(u))),
    }
}
