//! Balancer operations as values: where each command runs, what it is, and how its output
//! is read. The readers live beside the commands whose output they read (varnish.rs,
//! haproxy.rs); [`Reading`] says which one applies.

mod command;
mod counts;
mod haproxy;
pub mod maintenance;
mod varnish;

pub use counts::Counts;
pub use haproxy::cli_level as haproxy_cli_level;
pub use varnish::{NOT_FOUND_HINT as VARNISHSTAT_HINT, admin as varnishadm, cli_line};

use crate::config::Balancer;
use crate::remote::{Cmd, Target};
use serde::Serialize;

/// One balancer command and where it runs.
#[derive(Debug, Clone)]
pub struct Op {
    pub on: Target,
    pub cmd: Cmd,
    /// Success is exit 0 *and* no output (HAProxy's runtime API answers errors such as
    /// `Permission denied` on stdout while socat exits 0).
    pub silent: bool,
}

/// A drain or undrain is ended where it runs after this long, well before deploy's own limit
/// for balancer commands (60 s): one that hangs cannot land after deploy gave up on it and
/// put the host back.
pub const CHANGE_LIMIT: std::time::Duration = std::time::Duration::from_secs(45);

impl Op {
    fn limited(self) -> Op {
        Op { cmd: self.cmd.limited(CHANGE_LIMIT), ..self }
    }
}

fn on(host: &str) -> Target {
    Target::host(host)
}

/// How a waiting action reads its command's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "from")]
pub enum Reading {
    /// varnishstat `VBE.*.NAME.conn` lines, summed.
    VarnishStat,
    /// varnishadm `backend.list`: admin state, health and probe window per VCL.
    VarnishBackendList,
    /// HAProxy `show stat` CSV, the row of `backend/server`.
    HaproxyStat { backend: String, server: String },
    /// The command prints a number.
    Number,
    /// HAProxy `show stat` CSV: answer counters of every server of `backend` (cumulative).
    HaproxyCounters { backend: String },
    /// varnishncsa over a window: one line per backend fetch.
    VarnishLog,
    /// A `stats` command's JSON: answer counters per backend (cumulative).
    CountsJson,
    /// The command exits 0.
    ExitStatus,
}

impl Reading {
    fn unreadable<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("cannot read {what} from {self:?}"))
    }

    /// Requests still in flight to the backend.
    pub fn in_flight(&self, stdout: &str) -> Result<u64, String> {
        match self {
            Reading::VarnishStat => varnish::in_flight(stdout)
                .ok_or_else(|| "varnishstat shows no such backend (check the backend name and `instance`)".into()),
            Reading::HaproxyStat { backend, server } => haproxy::row(stdout, backend, server).map(|(now, _)| now),
            Reading::Number => {
                stdout.trim().parse().map_err(|_| format!("in_flight printed {:?}, not a number", stdout.trim()))
            }
            _ => self.unreadable("requests in flight"),
        }
    }

    /// Does the balancer's own health check pass for the backend (while it is drained)?
    pub fn probe_passes(&self, stdout: &str) -> Result<bool, String> {
        match self {
            Reading::VarnishBackendList => varnish::probe_full(stdout),
            Reading::HaproxyStat { backend, server } => haproxy::row(stdout, backend, server)
                .map(|(_, status)| status.starts_with("DRAIN") || status.starts_with("UP")),
            _ => self.unreadable("the balancer's check"),
        }
    }

    /// Does the balancer send the backend traffic?
    pub fn in_service(&self, stdout: &str) -> Result<bool, String> {
        match self {
            Reading::VarnishBackendList => varnish::in_service(stdout),
            Reading::HaproxyStat { backend, server } => {
                haproxy::row(stdout, backend, server).map(|(_, status)| status.starts_with("UP"))
            }
            _ => self.unreadable("whether it takes traffic"),
        }
    }

    /// Answers per backend name (for a canary). Cumulative unless [`Reading::windowed`].
    pub fn counts(&self, stdout: &str) -> Result<std::collections::BTreeMap<String, Counts>, String> {
        match self {
            Reading::HaproxyCounters { backend } => counts::haproxy(stdout, backend),
            Reading::VarnishLog => Ok(counts::varnish_log(stdout)),
            Reading::CountsJson => counts::json(stdout),
            _ => self.unreadable("answer counters"),
        }
    }

    /// Does each reading count only its own window (rather than since some moment)?
    pub fn windowed(&self) -> bool {
        *self == Reading::VarnishLog
    }

    /// How many of `backends` take traffic (the capacity check reads them all at once).
    pub fn count_in_service(&self, stdout: &str, backends: &[String]) -> Result<usize, String> {
        match self {
            Reading::VarnishBackendList => Ok(varnish::count_in_service(stdout, backends)),
            Reading::HaproxyStat { backend, .. } => Ok(haproxy::count_up(stdout, backend, backends)),
            _ => self.unreadable("which backends take traffic"),
        }
    }
}

/// Takes an app host's backend out of rotation; `None` for kind none.
pub fn drain(balancer: &Balancer, app_host: &str) -> Option<Op> {
    let backend = balancer.backend_of(app_host);
    let op = match balancer {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => {
            Some(Op { on: on(host), cmd: varnish::set_health(balancer, backend, "sick"), silent: false })
        }
        Balancer::Haproxy { host, backend: proxy, socket, .. } => {
            Some(Op { on: on(host), cmd: haproxy::set_state(socket, proxy, backend, "drain"), silent: true })
        }
        Balancer::Command { host, drain, .. } => Some(command::op(host, drain, app_host, backend)),
    };
    op.map(Op::limited)
}

/// Puts the backend back in rotation.
pub fn undrain(balancer: &Balancer, app_host: &str) -> Option<Op> {
    let backend = balancer.backend_of(app_host);
    let op = match balancer {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => {
            Some(Op { on: on(host), cmd: varnish::set_health(balancer, backend, "auto"), silent: false })
        }
        Balancer::Haproxy { host, backend: proxy, socket, .. } => {
            Some(Op { on: on(host), cmd: haproxy::set_state(socket, proxy, backend, "ready"), silent: true })
        }
        Balancer::Command { host, undrain, .. } => Some(command::op(host, undrain, app_host, backend)),
    };
    op.map(Op::limited)
}

/// How to read the number of requests still in flight to the backend.
pub fn in_flight(balancer: &Balancer, app_host: &str) -> Option<(Op, Reading)> {
    let backend = balancer.backend_of(app_host);
    match balancer {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => Some((
            Op { on: on(host), cmd: varnish::connections(balancer, backend), silent: false },
            Reading::VarnishStat,
        )),
        Balancer::Haproxy { host, backend: proxy, socket, .. } => Some((
            Op { on: on(host), cmd: haproxy::stat(socket), silent: false },
            Reading::HaproxyStat { backend: proxy.clone(), server: backend.to_string() },
        )),
        Balancer::Command { host, in_flight, .. } => {
            in_flight.as_ref().map(|template| (command::op(host, template, app_host, backend), Reading::Number))
        }
    }
}

/// How to read which backends take traffic (all of them at once), for the capacity check.
pub fn capacity(balancer: &Balancer) -> Option<(Op, Reading)> {
    match balancer {
        Balancer::Varnish { host, .. } => Some((
            Op { on: on(host), cmd: varnish::backend_list_all(balancer), silent: false },
            Reading::VarnishBackendList,
        )),
        Balancer::Haproxy { host, backend, socket, .. } => Some((
            Op { on: on(host), cmd: haproxy::stat(socket), silent: false },
            Reading::HaproxyStat { backend: backend.clone(), server: String::new() },
        )),
        _ => None,
    }
}

/// How a canary's soak reads what every backend answered. Varnish: the shared log for
/// `window` (the command lasts that long); HAProxy and `command`: cumulative counters.
pub fn stats(balancer: &Balancer, window: std::time::Duration) -> Option<(Op, Reading)> {
    match balancer {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => {
            Some((Op { on: on(host), cmd: varnish::answers(balancer, window), silent: false }, Reading::VarnishLog))
        }
        Balancer::Haproxy { host, backend, socket, .. } => Some((
            Op { on: on(host), cmd: haproxy::stat(socket), silent: false },
            Reading::HaproxyCounters { backend: backend.clone() },
        )),
        Balancer::Command { host, stats, .. } => {
            stats.as_ref().map(|template| (command::op(host, template, "", ""), Reading::CountsJson))
        }
    }
}

/// Does the output of [`capacity`]'s command list the backend at all (`deploy check`)?
pub fn lists_backend(balancer: &Balancer, stdout: &str, backend: &str) -> bool {
    match balancer {
        Balancer::Varnish { .. } => varnish::lists(stdout, backend),
        Balancer::Haproxy { backend: proxy, .. } => haproxy::row(stdout, proxy, backend).is_ok(),
        _ => true,
    }
}

/// How to see that the balancer's own health check passes for a drained host (before it
/// is put back): Varnish's probe window, HAProxy's checks. `None` when the kind has none.
pub fn probe(balancer: &Balancer, app_host: &str) -> Option<(Op, Reading)> {
    match balancer {
        Balancer::Varnish { .. } | Balancer::Haproxy { .. } => healthy(balancer, app_host),
        _ => None,
    }
}

/// How to see that the balancer considers the backend healthy again.
pub fn healthy(balancer: &Balancer, app_host: &str) -> Option<(Op, Reading)> {
    let backend = balancer.backend_of(app_host);
    match balancer {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => Some((
            Op { on: on(host), cmd: varnish::backend_list(balancer, backend), silent: false },
            Reading::VarnishBackendList,
        )),
        Balancer::Haproxy { host, backend: proxy, socket, .. } => Some((
            Op { on: on(host), cmd: haproxy::stat(socket), silent: false },
            Reading::HaproxyStat { backend: proxy.clone(), server: backend.to_string() },
        )),
        Balancer::Command { host, healthy, .. } => {
            healthy.as_ref().map(|template| (command::op(host, template, app_host, backend), Reading::ExitStatus))
        }
    }
}
