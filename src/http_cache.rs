//! Banning the HTTP cache once, after the last host: each configured cache as plan actions.

use crate::balancer::{ban_words, varnishadm};
use crate::config::HttpCache;
use crate::plan::{Action, Run, Target, Until, What};
use crate::remote::{Cmd, health};
use std::time::Duration;

const TIMEOUT: Duration = Duration::from_secs(10);

pub fn ban(cache: &HttpCache) -> Vec<Action> {
    match cache {
        HttpCache::Varnish { host, admin, secret, bans } => bans
            .iter()
            .map(|expr| {
                let cmd = varnishadm(admin, secret).arg("ban").args(ban_words(expr));
                Action::on_host(What::Ban, host, cmd)
            })
            .collect(),
        HttpCache::Http { host: Some(h), method, url, headers, expect_status } => {
            let cmd = health::request(method, url, headers, TIMEOUT);
            vec![Action::on_host(What::Ban, h, cmd).until(Until::Status {
                expect: expect_status.unwrap_or(200),
                retries: 1,
                interval: Duration::ZERO,
            })]
        }
        HttpCache::Http { host: None, method, url, headers, expect_status } => vec![Action {
            what: What::Ban,
            on: Target::Local,
            run: Run::Http {
                method: method.clone(),
                url: url.clone(),
                headers: headers.clone(),
                expect_status: *expect_status,
                timeout: TIMEOUT,
            },
            until: None,
            with_next: false,
        }],
        HttpCache::Command { host, commands } => commands
            .iter()
            .map(|c| {
                Action::shell(
                    What::Ban,
                    host.clone().map_or(Target::Local, Target::Host),
                    Cmd::new("sh").args(["-c", c]),
                )
            })
            .collect(),
    }
}
