//! `deploy exec STAGE [--role R] [--host H] -- CMD`: one command on many hosts at once, in the
//! current release folder when there is one; output grouped per host.

use super::{connect_each, runtime};
use crate::cli::{Global, Output, load};
use crate::config::Role;
use crate::error::Error;
use crate::remote::{Layout, probe};
use crate::report::human_duration;
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

pub fn run(g: &Global, stage: &str, role: Option<&str>, only: &[String], cmd: &[String]) -> Result<i32, Error> {
    let cfg = load(g, stage)?;
    let s = &cfg.stage;
    let role = match role {
        None => None,
        Some(r) => Some(Role::ALL.iter().find(|(n, _)| *n == r).map(|(_, x)| *x).ok_or_else(|| Error::Usage {
            message: format!("--role {r}: no such role"),
            hint: Some("roles are app, worker, migrate and balancer".into()),
        })?),
    };
    for h in only {
        if !s.hosts.iter().any(|x| &x.name == h) {
            let names: Vec<&str> = s.hosts.iter().map(|x| x.name.as_str()).collect();
            return Err(Error::Usage {
                message: format!("--host {h}: not a host of stage `{stage}`"),
                hint: Some(format!("hosts: {}", names.join(", "))),
            });
        }
    }
    let hosts: Vec<String> = s
        .hosts
        .iter()
        .filter(|h| role.is_none_or(|r| h.has(r)) && (only.is_empty() || only.contains(&h.name)))
        .map(|h| h.name.clone())
        .collect();
    if hosts.is_empty() {
        return Err(Error::Usage { message: "no host matches --role/--host".into(), hint: None });
    }
    let line = cmd.join(" ");
    let current = Layout::new(&s.app.path).current();
    let remote = probe::in_dir(&current, &line).to_string();
    let rt = runtime()?;
    let (ran, errors) = rt.block_on(async {
        let (ssh, errors) = connect_each(s, &hosts).await;
        let ssh = std::sync::Arc::new(ssh);
        let mut set = tokio::task::JoinSet::new();
        for h in hosts.iter().filter(|h| !errors.iter().any(|e| &e.host == *h)) {
            let (ssh, h, remote) = (ssh.clone(), h.clone(), remote.clone());
            set.spawn(async move {
                let t = Instant::now();
                let r = ssh.run(&h, &remote, None).await;
                let secs = t.elapsed().as_secs_f64();
                match r {
                    Ok(o) => Ran { host: h, status: o.status, stdout: o.stdout, stderr: o.stderr, seconds: secs },
                    Err(e) => Ran { host: h, status: None, stdout: String::new(), stderr: e.message, seconds: secs },
                }
            });
        }
        let mut ran = Vec::new();
        while let Some(r) = set.join_next().await {
            ran.push(r.expect("exec task"));
        }
        if let Ok(ssh) = std::sync::Arc::try_unwrap(ssh) {
            ssh.close().await;
        }
        (ran, errors)
    });
    let mut ran = ran;
    ran.extend(errors.iter().map(|e| Ran {
        host: e.host.clone(),
        status: None,
        stdout: String::new(),
        stderr: e.message.clone(),
        seconds: 0.0,
    }));
    let order = |h: &str| hosts.iter().position(|x| x == h).unwrap_or(usize::MAX);
    ran.sort_by_key(|r| order(&r.host));
    let failed = ran.iter().filter(|r| r.status != Some(0)).count();
    if crate::commands::output_mode(g) == Output::Json {
        super::out(&format!(
            "{}\n",
            cfg.redact(&serde_json::json!({"stage": stage, "command": line, "hosts": ran}).to_string())
        ));
    } else {
        let mut t = String::new();
        for r in &ran {
            let st =
                r.status.map_or("no exit status (not run or connection lost)".to_string(), |c| format!("exit {c}"));
            t.push_str(&format!(
                "── {} ({st}, {})\n",
                r.host,
                human_duration(std::time::Duration::from_secs_f64(r.seconds))
            ));
            for l in r.stdout.lines().chain(r.stderr.lines()) {
                t.push_str(&format!("{l}\n"));
            }
        }
        t.push_str(&format!("{} of {} hosts ok\n", ran.len() - failed, ran.len()));
        super::out(&cfg.redact(&t));
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
