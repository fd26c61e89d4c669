//! Varnish through varnishadm and varnishstat, run on the balancer host.

use crate::config::Balancer;
use crate::remote::Cmd;

/// `varnishadm -T ADMIN -S SECRET` (varnishadm refuses `-n` together with `-T`/`-S`; the
/// instance name is only for varnishstat).
pub fn admin(admin: &str, secret: &str) -> Cmd {
    Cmd::new("varnishadm").args(["-T", admin, "-S", secret])
}

fn base(b: &Balancer) -> Cmd {
    match b {
        Balancer::Varnish { admin: a, secret, .. } => admin(a, secret),
        _ => unreachable!("varnish command for a {} balancer", b.kind()),
    }
}

/// Backends are named `VCL.backend`; `*.NAME` matches the backend in every loaded VCL, so a
/// VCL reload cannot silently undo a drain.
fn pattern(backend: &str) -> String {
    format!("*.{backend}")
}

pub fn set_health(b: &Balancer, backend: &str, state: &str) -> Cmd {
    base(b).args(["backend.set_health", &pattern(backend), state])
}

pub fn backend_list(b: &Balancer, backend: &str) -> Cmd {
    base(b).args(["backend.list", &pattern(backend)])
}

/// Every backend of every VCL.
pub fn backend_list_all(b: &Balancer) -> Cmd {
    base(b).arg("backend.list")
}

/// Open connections to the backend, in every VCL.
pub fn connections(b: &Balancer, backend: &str) -> Cmd {
    let mut c = Cmd::new("varnishstat");
    if let Balancer::Varnish { instance: Some(n), .. } = b {
        c = c.args(["-n", n]);
    }
    c.args(["-1", "-f", &format!("VBE.*.{backend}.conn")])
}

/// Splits a ban expression into the words of the varnish CLI (`req.url ~ "^/a b"` →
/// `req.url`, `~`, `^/a b`); varnishadm quotes each word again for the CLI.
pub fn ban_words(expr: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_quotes = false;
    let mut started = false;
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                started = true;
            }
            '\\' if in_quotes => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            c if c.is_whitespace() && !in_quotes => {
                if started {
                    words.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            c => {
                cur.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(cur);
    }
    words
}
