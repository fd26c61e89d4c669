//! Banning the HTTP cache once, after the last host: what each configured cache is sent.
//! The plan turns each [`Ban`] into an action.

use crate::balancer::{cli_line, varnishadm};
use crate::config::HttpCache;
use crate::remote::{Cmd, Target, health};
use std::time::Duration;

/// The longest a ban may take.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// One ban.
#[derive(Debug, Clone)]
pub enum Ban {
    /// A command on `on`. `expect_status`: it prints an HTTP status that must be this one
    /// (a purge request sent from a host); else it must exit 0.
    Shell { on: Target, cmd: Cmd, expect_status: Option<u16> },
    /// A request from the deploying machine; any 2xx status unless `expect_status` is set.
    Http { method: String, url: String, headers: Vec<(String, String)>, expect_status: Option<u16> },
}

pub fn bans(cache: &HttpCache) -> Vec<Ban> {
    match cache {
        HttpCache::Varnish { host, admin, secret, bans } => bans
            .iter()
            .map(|expr| Ban::Shell {
                on: Target::host(host),
                cmd: varnishadm(admin, secret)
                    .arg(cli_line(&[vec!["ban".to_string()], crate::config::ban::words_for_varnish(expr)].concat())),
                expect_status: None,
            })
            .collect(),
        HttpCache::Http { host: Some(host), method, url, headers, expect_status } => vec![Ban::Shell {
            on: Target::host(host),
            cmd: health::request(method, url, headers, TIMEOUT),
            expect_status: Some(expect_status.unwrap_or(200)),
        }],
        HttpCache::Http { host: None, method, url, headers, expect_status } => vec![Ban::Http {
            method: method.clone(),
            url: url.clone(),
            headers: headers.clone(),
            expect_status: *expect_status,
        }],
        HttpCache::Command { host, commands } => commands
            .iter()
            .map(|command| Ban::Shell {
                on: host.clone().map_or(Target::Local, Target::Host),
                cmd: Cmd::script(command.as_str()),
                expect_status: None,
            })
            .collect(),
    }
}
