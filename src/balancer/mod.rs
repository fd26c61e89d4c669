//! Balancer operations as plan values: where each command runs, what it is, and how the
//! runner reads its output.

mod command;
mod haproxy;
mod varnish;

use crate::config::Balancer;
use crate::plan::{Reading, Target};
use crate::remote::Cmd;

/// One balancer command and where it runs.
#[derive(Debug, Clone)]
pub struct Op {
    pub on: Target,
    pub cmd: Cmd,
    /// Success is exit 0 *and* no output (HAProxy's runtime API answers errors such as
    /// `Permission denied` on stdout while socat exits 0).
    pub silent: bool,
}

fn on(host: &str) -> Target {
    Target::Host(host.to_string())
}

/// Takes an app host's backend out of rotation; `None` for kind none.
pub fn drain(b: &Balancer, app_host: &str) -> Option<Op> {
    let backend = b.backend_of(app_host);
    match b {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => {
            Some(Op { on: on(host), cmd: varnish::set_health(b, backend, "sick"), silent: false })
        }
        Balancer::Haproxy { host, backend: be, socket, .. } => {
            Some(Op { on: on(host), cmd: haproxy::set_state(socket, be, backend, "drain"), silent: true })
        }
        Balancer::Command { host, drain, .. } => Some(command::op(host, drain, app_host, backend)),
    }
}

/// Puts `backend` back in rotation.
pub fn undrain(b: &Balancer, app_host: &str) -> Option<Op> {
    let backend = b.backend_of(app_host);
    match b {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => {
            Some(Op { on: on(host), cmd: varnish::set_health(b, backend, "auto"), silent: false })
        }
        Balancer::Haproxy { host, backend: be, socket, .. } => {
            Some(Op { on: on(host), cmd: haproxy::set_state(socket, be, backend, "ready"), silent: true })
        }
        Balancer::Command { host, undrain, .. } => Some(command::op(host, undrain, app_host, backend)),
    }
}

/// How to read the number of requests still in flight to `backend`.
pub fn in_flight(b: &Balancer, app_host: &str) -> Option<(Op, Reading)> {
    let backend = b.backend_of(app_host);
    match b {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => {
            Some((Op { on: on(host), cmd: varnish::connections(b, backend), silent: false }, Reading::VarnishStat))
        }
        Balancer::Haproxy { host, backend: be, socket, .. } => Some((
            Op { on: on(host), cmd: haproxy::stat(socket), silent: false },
            Reading::HaproxyStat { backend: be.clone(), server: backend.to_string() },
        )),
        Balancer::Command { host, in_flight, .. } => {
            in_flight.as_ref().map(|c| (command::op(host, c, app_host, backend), Reading::Number))
        }
    }
}

/// How to read which backends take traffic (all of them at once), for the capacity check.
pub fn capacity(b: &Balancer) -> Option<(Op, Reading)> {
    match b {
        Balancer::Varnish { host, .. } => {
            Some((Op { on: on(host), cmd: varnish::backend_list_all(b), silent: false }, Reading::VarnishBackendList))
        }
        Balancer::Haproxy { host, backend, socket, .. } => Some((
            Op { on: on(host), cmd: haproxy::stat(socket), silent: false },
            Reading::HaproxyStat { backend: backend.clone(), server: String::new() },
        )),
        _ => None,
    }
}

/// How to see that the balancer's own health check passes for a drained host (before it
/// is put back): Varnish's probe window, HAProxy's checks. `None` when the kind has none.
pub fn probe(b: &Balancer, app_host: &str) -> Option<(Op, Reading)> {
    match b {
        Balancer::Varnish { .. } | Balancer::Haproxy { .. } => healthy(b, app_host),
        _ => None,
    }
}

/// How to see that the balancer considers `backend` healthy again.
pub fn healthy(b: &Balancer, app_host: &str) -> Option<(Op, Reading)> {
    let backend = b.backend_of(app_host);
    match b {
        Balancer::None => None,
        Balancer::Varnish { host, .. } => Some((
            Op { on: on(host), cmd: varnish::backend_list(b, backend), silent: false },
            Reading::VarnishBackendList,
        )),
        Balancer::Haproxy { host, backend: be, socket, .. } => Some((
            Op { on: on(host), cmd: haproxy::stat(socket), silent: false },
            Reading::HaproxyStat { backend: be.clone(), server: backend.to_string() },
        )),
        Balancer::Command { host, healthy, .. } => {
            healthy.as_ref().map(|c| (command::op(host, c, app_host, backend), Reading::ExitStatus))
        }
    }
}

pub use varnish::{admin as varnishadm, ban_words};
