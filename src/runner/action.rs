//! Running one action: a command, an HTTP request, or a wait that polls until the output
//! says so. Every failure comes back typed ([`FailureKind`]).

use super::Context;
use super::failure::{Failure, FailureKind};
use crate::config::format_duration;
use crate::plan::{Action, Reading, Run, Until, What};
use crate::remote::health::http_status;
use crate::report::Event;
use crate::transport::{Output, Request, Transport};
use std::path::Path;
use std::time::{Duration, Instant};

const POLL: Duration = Duration::from_millis(100);

impl<T: Transport> Context<T> {
    async fn shell(
        &self,
        host: &str,
        action: &Action,
        stdin: Option<&Path>,
        stoppable: bool,
    ) -> Result<Output, Failure> {
        let Run::Shell { cmd, .. } = &action.run else { unreachable!("shell() on a {:?}", action.run) };
        let run = self.transport.run(&action.on, cmd, stdin);
        // Bookkeeping and balancer commands answer at once; one that hangs (a stuck `command`
        // balancer, a wedged varnishadm) must not hold the roll past every time limit. Hooks
        // are killed on the host past `[hooks] timeout` (`hooks::run`); deploy gives up a
        // little later in case the host cannot even say so.
        let limit = command_limit(action.what, self.hook_timeout);
        let timed = async {
            match tokio::time::timeout(limit, run).await {
                Ok(result) => result.map_err(|err| Failure::transport(host, action.what, err)),
                Err(_) => {
                    let message = format!(
                        "{} on {} did not finish within {}",
                        action.what.label(),
                        action.on,
                        format_duration(limit)
                    );
                    Err(Failure::new(host, action.what, FailureKind::TimedOut { limit }, message))
                }
            }
        };
        // A prepare or activate hook of the run going forward is stopped on the host at the
        // first interrupt: nothing waits for a hook that may take its full timeout. Hooks that
        // put a host back are not (that is what the interrupt asked for). A migration is let
        // finish (bounded by the same timeout): stopped half-way it can leave the database
        // half-migrated.
        let out = if stoppable && matches!(action.what, What::Prepare | What::Activate) {
            tokio::select! {
                out = timed => out?,
                () = self.cancel.wait() => {
                    if let Some(stop) = &self.hook_stop {
                        let _ = tokio::time::timeout(Duration::from_secs(15), self.transport.run(&action.on, stop, None)).await;
                    }
                    let message = format!(
                        "{} on {} stopped by Ctrl-C, SIGTERM or SIGHUP: the hook was killed on the host",
                        action.what.label(),
                        action.on
                    );
                    return Err(Failure::new(host, action.what, FailureKind::Interrupted, message));
                }
            }
        } else {
            timed.await?
        };
        if self.verbose {
            self.report.event(&Event::Output {
                on: action.on.to_string(),
                cmd: cmd.to_string(),
                status: out.status,
                stdout: out.stdout.clone(),
                stderr: out.stderr.clone(),
            });
        }
        Ok(out)
    }

    /// Runs `action` about `host`; reports it done. `stdin` is the artifact for a receive.
    pub async fn exec(&self, host: &str, action: &Action, stdin: Option<&Path>) -> Result<Output, Failure> {
        self.exec_as(host, action, stdin, false).await
    }

    /// [`Context::exec`]; `stoppable`: a hook is stopped on the host at the first interrupt
    /// (the run going forward, not one putting hosts back).
    pub async fn exec_as(
        &self,
        host: &str,
        action: &Action,
        stdin: Option<&Path>,
        stoppable: bool,
    ) -> Result<Output, Failure> {
        let start = Instant::now();
        let what = action.what;
        let out = match (&action.run, &action.until) {
            (Run::Shell { .. }, None) => {
                let out = self.shell(host, action, stdin, stoppable).await?;
                if matches!(what, What::Prepare | What::Activate | What::Migrate | What::PostMigrate)
                    && crate::remote::hooks::timed_out(out.status)
                {
                    let limit = self.hook_timeout;
                    let message = format!(
                        "{} on {} did not finish within {} ([hooks] timeout): killed on the host with every process it started",
                        what.label(),
                        action.on,
                        format_duration(limit)
                    );
                    let kind = FailureKind::TimedOut { limit };
                    return Err(Failure::new(host, what, kind, message).with_output(out.tail(15)));
                }
                if !out.ok() {
                    let status = out.status.map_or("killed".to_string(), |code| format!("exit {code}"));
                    let message = format!("{} failed ({status}) on {}", what.label(), action.on);
                    let kind = FailureKind::Exited { status: out.status };
                    return Err(Failure::new(host, what, kind, message).with_output(out.tail(15)));
                }
                out
            }
            (Run::Shell { .. }, Some(Until::Silent)) => {
                let out = self.shell(host, action, None, false).await?;
                if !out.ok() || !out.stdout.trim().is_empty() {
                    let message = format!("{} on {} answered: {}", what.label(), action.on, out.stdout.trim());
                    let kind =
                        if out.ok() { FailureKind::Answered } else { FailureKind::Exited { status: out.status } };
                    return Err(Failure::new(host, what, kind, message).with_output(out.tail(5)));
                }
                out
            }
            (Run::Shell { .. }, Some(Until::Canary { read, canary, peers, rules, check })) => {
                let spec = super::soak::SoakSpec { read, canary, peers, rules, check: check.as_ref() };
                self.soak(host, action, spec).await?
            }
            (Run::Shell { .. }, Some(Until::Status { expect, retries, interval })) => {
                self.until_status(host, action, *expect, *retries, *interval).await?
            }
            (
                Run::Shell { .. },
                Some(
                    until @ (Until::Idle { read, timeout }
                    | Until::ProbeHealthy { read, timeout }
                    | Until::InService { read, timeout }
                    | Until::Capacity { read, timeout, .. }),
                ),
            ) => self.wait(host, action, until, read, *timeout).await?,
            (Run::Http { method, url, headers, expect_status, timeout }, until) => {
                let (expect, retries, interval) = match until {
                    Some(Until::Status { expect, retries, interval }) => (Some(*expect), *retries, *interval),
                    _ => (*expect_status, 1, Duration::ZERO),
                };
                let request = Request { method, url, headers, timeout: *timeout };
                self.request(host, what, request, expect, retries, interval).await?
            }
            (Run::Ssh { .. } | Run::Export { .. } | Run::Pack { .. } | Run::Cleanup { .. }, _) => {
                unreachable!("{:?} is run by its phase", action.what)
            }
        };
        self.report.event(&Event::Done { host: host.into(), what, on: action.on.to_string(), took: start.elapsed() });
        Ok(out)
    }

    /// A command that prints an HTTP status, tried until it prints `expect`.
    async fn until_status(
        &self,
        host: &str,
        action: &Action,
        expect: u16,
        retries: u32,
        interval: Duration,
    ) -> Result<Output, Failure> {
        let mut last = String::new();
        for attempt in 0..retries {
            let out = self.shell(host, action, None, false).await?;
            match http_status(&out.stdout) {
                Some(status) if status == expect => return Ok(out),
                Some(status) => last = format!("status {status}"),
                None => last = out.tail(3),
            }
            if attempt + 1 < retries {
                let detail = format!("try {}/{retries}: {last}", attempt + 1);
                self.report.event(&Event::Waiting { host: host.into(), what: action.what, detail });
                tokio::time::sleep(interval).await;
            }
        }
        let message = format!("expected status {expect} after {retries} tries, last: {last}");
        Err(Failure::new(host, action.what, FailureKind::NotReached, message))
    }

    /// Polls a balancer reading until `until` is reached (a drain's wait for idle gives up
    /// after its timeout and goes on; every other wait fails).
    async fn wait(
        &self,
        host: &str,
        action: &Action,
        until: &Until,
        read: &Reading,
        timeout: Duration,
    ) -> Result<Output, Failure> {
        let deadline = Instant::now() + timeout;
        let mut next_report = Instant::now() + Duration::from_secs(1);
        loop {
            let out = self.shell(host, action, None, false).await?;
            match judge(until, read, &out) {
                Ok(true) => return Ok(out),
                Ok(false) => {}
                Err(message) => {
                    let kind =
                        if out.ok() { FailureKind::Answered } else { FailureKind::Exited { status: out.status } };
                    return Err(Failure::new(host, action.what, kind, message).with_output(out.tail(5)));
                }
            }
            if Instant::now() >= deadline {
                if let Until::Idle { .. } = until {
                    // drain_timeout is the longest wait, not an error: go on.
                    self.report.event(&Event::Warning {
                        host: Some(host.into()),
                        message: format!("requests still in flight after {}; going on", format_duration(timeout)),
                    });
                    return Ok(out);
                }
                let message = format!("not {} after {}", goal(until), format_duration(timeout));
                return Err(Failure::new(host, action.what, FailureKind::NotReached, message).with_output(out.tail(5)));
            }
            if Instant::now() >= next_report {
                let detail = goal(until).to_string();
                self.report.event(&Event::Waiting { host: host.into(), what: action.what, detail });
                next_report += Duration::from_secs(1);
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// An HTTP request from the deploying machine, tried `retries` times until its status
    /// is `expect` (any 2xx when `None`).
    async fn request(
        &self,
        host: &str,
        what: What,
        request: Request<'_>,
        expect: Option<u16>,
        retries: u32,
        interval: Duration,
    ) -> Result<Output, Failure> {
        let mut last = String::new();
        for attempt in 0..retries.max(1) {
            match self.transport.http(request.clone()).await {
                Ok(status) if expect.map_or((200..300).contains(&status), |want| want == status) => {
                    return Ok(Output { status: Some(0), ..Default::default() });
                }
                Ok(status) => last = format!("status {status}"),
                Err(err) => last = err.message,
            }
            if attempt + 1 < retries {
                let detail = format!("try {}/{retries}: {last}", attempt + 1);
                self.report.event(&Event::Waiting { host: host.into(), what, detail });
                tokio::time::sleep(interval).await;
            }
        }
        let want = expect.map_or("a 2xx status".to_string(), |status| format!("status {status}"));
        let message = format!("{} {}: expected {want}, last: {last}", request.method, request.url);
        Err(Failure::new(host, what, FailureKind::NotReached, message))
    }
}

/// How long deploy waits for one command of this kind before it gives up on it.
fn command_limit(what: What, hook_timeout: Duration) -> Duration {
    match what {
        // The host kills the hook at its timeout, TERM then KILL: a margin beyond both.
        What::Prepare | What::Activate | What::Migrate | What::PostMigrate => {
            hook_timeout + crate::remote::hooks::KILL_AFTER + Duration::from_secs(30)
        }
        // Sending, checking and unpacking a release: generous, but not forever.
        What::Receive | What::Unpack | What::LinkShared => Duration::from_secs(30 * 60),
        // Bookkeeping and balancer commands answer at once.
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
        | What::CheckRelease => Duration::from_secs(60),
        _ => Duration::from_secs(10 * 60),
    }
}

fn goal(until: &Until) -> &'static str {
    match until {
        Until::Idle { .. } => "idle",
        Until::ProbeHealthy { .. } => "healthy in the balancer's check",
        Until::InService { .. } => "taking traffic",
        Until::Status { .. } | Until::Silent => "answering",
        Until::Canary { .. } => "judged",
        Until::Capacity { .. } => "enough backends in service to drain",
    }
}

/// Has the wait reached its goal? `Err` = the output makes no sense (wrong backend name…).
fn judge(until: &Until, read: &Reading, out: &Output) -> Result<bool, String> {
    if *read == Reading::ExitStatus {
        return Ok(out.ok());
    }
    if !out.ok() {
        let status = out.status.map_or("-".into(), |code| code.to_string());
        if *read == Reading::VarnishStat {
            return Err(format!("varnishstat failed (exit {status}): {}", crate::balancer::VARNISHSTAT_HINT));
        }
        return Err(format!("balancer command failed (exit {status})"));
    }
    let stdout = &out.stdout;
    match until {
        Until::Idle { .. } => read.in_flight(stdout).map(|requests| requests == 0),
        Until::ProbeHealthy { .. } => read.probe_passes(stdout),
        Until::InService { .. } => read.in_service(stdout),
        Until::Capacity { own, others, min, .. } => Ok(read.count_in_service(stdout, std::slice::from_ref(own))? == 0
            || read.count_in_service(stdout, others)? >= *min as usize),
        Until::Status { .. } | Until::Silent | Until::Canary { .. } => {
            Err(format!("cannot wait for {} with {read:?}", goal(until)))
        }
    }
}
