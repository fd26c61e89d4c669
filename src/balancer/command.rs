//! A balancer driven by the user's own commands (nginx, a cloud load balancer's CLI…).

use super::Op;
use crate::remote::Target;
use crate::remote::hooks::templated;

/// Runs on the configured host, or on the deploying machine when none is set.
pub fn op(host: &Option<String>, template: &str, app_host: &str, backend: &str) -> Op {
    Op {
        on: host.clone().map_or(Target::Local, Target::Host),
        cmd: templated(template, app_host, backend),
        silent: false,
    }
}
