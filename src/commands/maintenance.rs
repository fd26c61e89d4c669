//! `deploy maintenance on|off STAGE [--message TEXT] [--retry-after DURATION]`: the balancer
//! answers every request 503 with `Retry-After` (for a long migration), while it keeps
//! checking the app hosts. No lock is taken: a deploy can run while the site is in
//! maintenance, and its drains do not end it. See `balancer::maintenance`.

use super::connect::connect;
use crate::balancer::maintenance;
use crate::config::{Balancer, Role, StageConfig};
use crate::error::Error;
use crate::remote::Cmd;
use crate::settings::{OutputMode, Settings};
use crate::transport::Connections;
use std::time::{Duration, SystemTime};

/// What `deploy maintenance` was asked.
pub struct Ask<'a> {
    pub on: bool,
    pub message: Option<&'a str>,
    pub retry_after: Option<Duration>,
}

const DEFAULT_MESSAGE: &str = "We are updating the site and will be back in a few minutes.";
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(300);

pub fn run(settings: &Settings, stage: &str, ask: &Ask) -> Result<i32, Error> {
    let cfg = super::load(settings, stage)?;
    let stage_cfg = &cfg.stage;
    let host = match &stage_cfg.balancer {
        Balancer::Varnish { host, .. } => host.clone(),
        Balancer::Haproxy { host, .. } => {
            if ask.on && (ask.message.is_some() || ask.retry_after.is_some()) {
                return Err(Error::Usage {
                    message: "HAProxy answers maintenance with its own `errorfile 503`: --message and --retry-after cannot change it".into(),
                    hint: Some("put the page and a `Retry-After:` header in the errorfile (docs/balancers.md#maintenance)".into()),
                });
            }
            host.clone()
        }
        other => {
            return Err(Error::Usage {
                message: format!(
                    "maintenance mode needs a varnish or haproxy balancer; stage `{stage}` has {}",
                    other.kind()
                ),
                hint: None,
            });
        }
    };
    let said = super::runtime()?.block_on(async {
        let ssh = connect(stage_cfg, std::slice::from_ref(&host)).await?;
        let result = match &stage_cfg.balancer {
            Balancer::Varnish { .. } => varnish(stage_cfg, &ssh, &host, ask).await,
            _ => haproxy(stage_cfg, &ssh, &host, ask.on).await,
        };
        ssh.close().await;
        result
    })?;
    let text = match settings.output {
        OutputMode::Json => format!("{}\n", serde_json::json!({"stage": stage, "maintenance": ask.on, "said": said})),
        _ => format!("{said}\n"),
    };
    super::out(&cfg.redact(&text));
    Ok(0)
}

async fn sh(ssh: &Connections, host: &str, cmd: &Cmd, stdin: Option<&[u8]>) -> Result<String, Error> {
    let out = ssh
        .run(host, &cmd.to_string(), stdin, None)
        .await
        .map_err(|err| Error::Usage { message: format!("maintenance: {host}: {}", err.message), hint: None })?;
    if !out.ok() {
        return Err(Error::Usage {
            message: format!("maintenance: `{}` failed on {host}: {}", shown(cmd), out.tail(3)),
            hint: None,
        });
    }
    Ok(out.stdout)
}

/// The start of a command, for a message.
fn shown(cmd: &Cmd) -> String {
    cmd.to_string().split_whitespace().take(6).collect::<Vec<_>>().join(" ")
}

async fn varnish(stage: &StageConfig, ssh: &Connections, host: &str, ask: &Ask<'_>) -> Result<String, Error> {
    let balancer = &stage.balancer;
    let list = sh(ssh, host, &maintenance::vcl_list(balancer), None).await?;
    let active = maintenance::active_vcl(&list).ok_or_else(|| Error::Usage {
        message: format!("maintenance: varnishd on {host} has no active VCL"),
        hint: None,
    })?;
    let previous = maintenance::previous_vcl(&active).map(str::to_string);
    match (ask.on, previous) {
        (true, Some(previous)) => Ok(format!(
            "maintenance is already on for {}: varnish on {host} answers 503 (VCL {active}, in front of {previous}); `deploy maintenance off {}` ends it",
            stage.stage, stage.stage
        )),
        (true, None) => {
            let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |since| since.as_secs());
            let name = maintenance::vcl_name(&active, stamp);
            let retry = ask.retry_after.unwrap_or(DEFAULT_RETRY_AFTER).as_secs().max(1);
            let text = maintenance::inline_vcl(&name, ask.message.unwrap_or(DEFAULT_MESSAGE), retry);
            // varnishadm's exit status says nothing in this mode: the VCL list does.
            let loaded = sh(ssh, host, &maintenance::load_from_stdin(balancer), Some(text.as_bytes())).await?;
            let list = sh(ssh, host, &maintenance::vcl_list(balancer), None).await?;
            if !list.lines().any(|line| line.split_whitespace().any(|word| word == name)) {
                return Err(Error::Usage {
                    message: format!(
                        "maintenance: varnishd on {host} did not load the maintenance VCL: {}",
                        loaded.trim()
                    ),
                    hint: None,
                });
            }
            // The site's VCL stays warm: its backends keep being probed.
            sh(ssh, host, &maintenance::vcl(balancer, &["vcl.state", &active, "warm"]), None).await?;
            sh(ssh, host, &maintenance::vcl(balancer, &["vcl.use", &name]), None).await?;
            Ok(format!(
                "maintenance on for {}: varnish on {host} answers 503 with Retry-After: {retry} (VCL {name}); the app hosts are still probed; `deploy maintenance off {}` ends it",
                stage.stage, stage.stage
            ))
        }
        (false, None) => {
            Ok(format!("maintenance is not on for {}: varnish on {host} serves VCL {active}", stage.stage))
        }
        (false, Some(previous)) => {
            sh(ssh, host, &maintenance::vcl(balancer, &["vcl.use", &previous]), None).await?;
            sh(ssh, host, &maintenance::vcl(balancer, &["vcl.state", &previous, "auto"]), None).await?;
            // Discarding can wait for requests still using it; a failure leaves a cold VCL.
            let _ = sh(ssh, host, &maintenance::vcl(balancer, &["vcl.discard", &active]), None).await;
            Ok(format!("maintenance off for {}: varnish on {host} serves VCL {previous} again", stage.stage))
        }
    }
}

async fn haproxy(stage: &StageConfig, ssh: &Connections, host: &str, on: bool) -> Result<String, Error> {
    let Balancer::Haproxy { socket, backend, .. } = &stage.balancer else { unreachable!("an haproxy balancer") };
    let weight = if on { "0" } else { "100%" };
    let servers: Vec<&str> =
        stage.hosts.iter().filter(|app| app.has(Role::App)).map(|app| stage.balancer.backend_of(&app.name)).collect();
    let answer = sh(ssh, host, &maintenance::haproxy_weights(socket, backend, &servers, weight), None).await?;
    if !answer.trim().is_empty() {
        return Err(Error::Usage {
            message: format!("maintenance: HAProxy on {host} refused `set weight … {weight}`: {}", answer.trim()),
            hint: Some("the stats socket needs `level admin`".into()),
        });
    }
    Ok(if on {
        format!(
            "maintenance on for {}: HAProxy on {host} gives {} weight 0 and answers with its errorfile 503; checks go on; `deploy maintenance off {}` ends it",
            stage.stage,
            servers.join(", "),
            stage.stage
        )
    } else {
        format!(
            "maintenance off for {}: HAProxy on {host} gives {} their configured weight again",
            stage.stage,
            servers.join(", ")
        )
    })
}
