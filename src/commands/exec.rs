//! `deploy exec STAGE [--role R] [--host H] -- CMD`: one command on many hosts at once, in the
//! current release folder when there is one; output grouped per host.

use super::connect::connect_each;
use crate::config::Role;
use crate::error::Error;
use crate::remote::{Layout, probe};
use crate::report::human_duration;
use crate::settings::{OutputMode, Settings};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize)]
struct Ran {
    host: String,
    status: Option<i32>,
    stdout: String,
    stderr: String,
    seconds: f64,
}

pub fn run(
    settings: &Settings,
    stage: &str,
    role: Option<Role>,
    only: &[String],
    command: &[String],
    shell: bool,
) -> Result<i32, Error> {
    let cfg = super::load(settings, stage)?;
    let stage_cfg = &cfg.stage;
    for name in only {
        if !stage_cfg.hosts.iter().any(|host| &host.name == name) {
            let names: Vec<&str> = stage_cfg.hosts.iter().map(|host| host.name.as_str()).collect();
            return Err(Error::Usage {
                message: format!("--host {name}: not a host of stage `{stage}`"),
                hint: Some(format!("hosts: {}", names.join(", "))),
            });
        }
    }
    let hosts: Vec<String> = stage_cfg
        .hosts
        .iter()
        .filter(|host| role.is_none_or(|role| host.has(role)) && (only.is_empty() || only.contains(&host.name)))
        .map(|host| host.name.clone())
        .collect();
    if hosts.is_empty() {
        return Err(Error::Usage { message: "no host matches --role/--host".into(), hint: None });
    }
    let current = Layout::new(&stage_cfg.app.path).current();
    let remote = if shell {
        probe::in_dir(&current, &command.join(" ")).to_string()
    } else {
        probe::words_in_dir(&current, command).to_string()
    };
    let (mut ran, errors) = super::runtime()?.block_on(async {
        let (ssh, errors) = connect_each(stage_cfg, &hosts).await;
        let ssh = std::sync::Arc::new(ssh);
        let mut set = tokio::task::JoinSet::new();
        for host in hosts.iter().filter(|host| !errors.iter().any(|err| &err.host == *host)) {
            let (ssh, host, remote) = (ssh.clone(), host.clone(), remote.clone());
            set.spawn(async move {
                let started = Instant::now();
                let out = ssh.run(&host, &remote, None, None).await;
                let seconds = started.elapsed().as_secs_f64();
                match out {
                    Ok(out) => Ran { host, status: out.status, stdout: out.stdout, stderr: out.stderr, seconds },
                    Err(err) => Ran { host, status: None, stdout: String::new(), stderr: err.message, seconds },
                }
            });
        }
        let mut ran = Vec::new();
        while let Some(done) = set.join_next().await {
            ran.push(done.expect("exec task"));
        }
        if let Ok(ssh) = std::sync::Arc::try_unwrap(ssh) {
            ssh.close().await;
        }
        (ran, errors)
    });
    ran.extend(errors.iter().map(|err| Ran {
        host: err.host.clone(),
        status: None,
        stdout: String::new(),
        stderr: err.message.clone(),
        seconds: 0.0,
    }));
    let order = |name: &str| hosts.iter().position(|host| host == name).unwrap_or(usize::MAX);
    ran.sort_by_key(|done| order(&done.host));
    let failed = ran.iter().filter(|done| done.status != Some(0)).count();
    if settings.output == OutputMode::Json {
        let value = serde_json::json!({"stage": stage, "command": command.join(" "), "hosts": ran});
        super::out(&format!("{}\n", cfg.redact_json(value)));
    } else {
        let mut text = String::new();
        for done in &ran {
            let status = done
                .status
                .map_or("no exit status (not run or connection lost)".to_string(), |code| format!("exit {code}"));
            let took = human_duration(std::time::Duration::from_secs_f64(done.seconds));
            text.push_str(&format!("── {} ({status}, {took})\n", done.host));
            for line in done.stdout.lines().chain(done.stderr.lines()) {
                text.push_str(&format!("{line}\n"));
            }
        }
        text.push_str(&format!("{} of {} hosts ok\n", ran.len() - failed, ran.len()));
        super::out(&cfg.redact(&text));
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
