//! A canary's soak: after the canary hosts are rolled, they serve real traffic while the
//! balancer's own counters are read each interval and judged against the hosts still on the
//! old release. Failing, the step rolls the canary hosts back and nothing else is switched.

use super::*;
use crate::config::{Balancer, Host, StageConfig, format_duration};

/// The soak step for `canaries` (`None`: no canary, or a balancer that counts nothing).
pub(super) fn soak_step(cfg: &StageConfig, id: &str, canaries: &[&Host], on_failure: OnFailure) -> Option<Step> {
    if canaries.is_empty() {
        return None;
    }
    let rules = &cfg.canary;
    let (op, read) = crate::balancer::stats(&cfg.balancer, rules.interval)?;
    let balancer = &cfg.balancer;
    let names: Vec<&str> = canaries.iter().map(|host| host.name.as_str()).collect();
    let canary: Vec<String> = names.iter().map(|name| balancer.backend_of(name).to_string()).collect();
    let peers = super::roll::other_app_backends(cfg, &names);
    let check = rules.check.as_ref().map(|check| {
        let env = [
            format!("DEPLOY_STAGE={}", cfg.stage),
            format!("DEPLOY_RELEASE={id}"),
            format!("DEPLOY_CANARY_HOSTS={}", names.join(" ")),
        ];
        Cmd::new("env").args(env).shell(check.as_str())
    });
    let source = match balancer {
        Balancer::Varnish { .. } => "Varnish's log",
        Balancer::Haproxy { .. } => "HAProxy's counters",
        _ => "the balancer's stats command",
    };
    let title = format!(
        "soak: {} serve{} real traffic for {} (up to {} while under {} answers), read every {} from {source}; \
         fail after {} interval{} in a row over {:.1}% errors and over {}× the other hosts' share{}{}",
        names.join(", "),
        if names.len() == 1 { "s" } else { "" },
        format_duration(rules.soak),
        format_duration(rules.max_soak),
        rules.min_requests,
        format_duration(rules.interval),
        rules.failures,
        if rules.failures == 1 { "" } else { "s" },
        rules.max_error_ratio * 100.0,
        rules.max_error_ratio_vs_peers,
        rules
            .max_latency
            .map_or(String::new(), |limit| format!(", or over {} mean response time", format_duration(limit))),
        rules.check.as_ref().map_or(String::new(), |check| format!(", or when `{check}` fails")),
    );
    let action = Action {
        what: What::Soak,
        on: op.on,
        run: Run::Shell { cmd: op.cmd, stdin: None },
        until: Some(Until::Canary { read, canary, peers, rules: Box::new(rules.clone()), check }),
        with_next: false,
        shown: Some(format!("judge {} against the others every {}", names.join(", "), format_duration(rules.interval))),
    };
    Some(Step::parallel(
        Phase::Soak,
        title,
        1,
        on_failure,
        vec![HostActions { host: "canary".into(), actions: vec![action] }],
    ))
}
