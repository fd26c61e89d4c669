//! `deploy check STAGE`: preflight, read-only. Per host: ssh, deploy path, disk, tools, sudo,
//! shared files, health; the balancer and its backends; the HTTP caches.

use super::connect::connect_each;
use crate::config::{Balancer, HealthFrom, HttpCache, Role, StageConfig};
use crate::error::Error;
use crate::remote::health::http_status;
use crate::remote::{Cmd, Layout, Target, health, probe};
use crate::settings::{OutputMode, Settings};
use crate::transport::{Connections, Http, Request};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub host: String,
    pub check: &'static str,
    pub ok: bool,
    /// Passes, but worth a look (a slow login shell…).
    pub warn: bool,
    pub detail: String,
}

pub(super) fn row(host: &str, check: &'static str, ok: bool, detail: impl Into<String>) -> Row {
    Row { host: host.to_string(), check, ok, warn: false, detail: detail.into() }
}

fn warn(host: &str, check: &'static str, detail: impl Into<String>) -> Row {
    Row { warn: true, ..row(host, check, true, detail) }
}

pub(super) async fn sh(ssh: &Connections, host: &str, cmd: &Cmd) -> Result<crate::transport::Output, String> {
    ssh.run(host, &cmd.to_string(), None, None).await.map_err(|err| err.message)
}

/// A command that takes this long to do nothing means a slow login shell (rc files run
/// before every command), which a deploy pays hundreds of times.
const SLOW_COMMAND: Duration = Duration::from_millis(60);

async fn check_host(stage: &StageConfig, ssh: &Connections, http: &Http, name: &str, need_kb: u64) -> Vec<Row> {
    let host = stage.hosts.iter().find(|host| host.name == name).expect("host");
    let layout = Layout::new(&stage.app.path);
    let mut rows = Vec::new();
    // ssh: the cost of one command, best of three.
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        if let Err(err) = ssh.run(name, "true", None, None).await {
            rows.push(row(name, "ssh", false, err.message));
            return rows;
        }
        best = best.min(started.elapsed());
    }
    let ms = best.as_secs_f64() * 1000.0;
    rows.push(if best > SLOW_COMMAND {
        warn(
            name,
            "ssh",
            format!(
                "{ms:.0} ms per command: a slow network, or a login shell rc file (e.g. ~/.bashrc) doing work; a deploy runs hundreds of commands"
            ),
        )
    } else {
        row(name, "ssh", true, format!("{ms:.1} ms per command"))
    });
    if !host.gets_release() {
        return rows;
    }
    match sh(ssh, name, &probe::writable(layout.root())).await {
        Ok(out) if out.ok() => {
            rows.push(row(name, "deploy path", true, format!("{} writable (at {})", layout.root(), out.stdout.trim())))
        }
        Ok(_) => {
            rows.push(row(name, "deploy path", false, format!("{} is not writable by the ssh user", layout.root())))
        }
        Err(err) => rows.push(row(name, "deploy path", false, err)),
    }
    match sh(ssh, name, &probe::free_kb(layout.root())).await.map(|out| out.stdout.trim().parse::<u64>()) {
        Ok(Ok(kb)) if kb >= need_kb => rows.push(row(name, "disk", true, format!("{} MB free", kb / 1024))),
        Ok(Ok(kb)) => rows.push(row(
            name,
            "disk",
            false,
            format!("{} MB free, a release needs about {} MB", kb / 1024, need_kb / 1024),
        )),
        Ok(Err(_)) => rows.push(row(name, "disk", false, "df printed no free space")),
        Err(err) => rows.push(row(name, "disk", false, err)),
    }
    // Besides the unpack and the switch (`tee` and `mkfifo` hash the tarball while it is
    // unpacked): `timeout` bounds every hook, `head` reads what a
    // command with private values gets on stdin, `stat` and `cmp` check a warm release.
    let mut tools = vec![
        "tar",
        "gzip",
        "sha256sum",
        "tee",
        "mkfifo",
        "readlink",
        "ln",
        "mv",
        "cp",
        "xargs",
        "env",
        "timeout",
        "head",
        "stat",
        "cmp",
    ];
    if stage.store.is_some() || (stage.health.url.is_some() && stage.health.from == HealthFrom::Host) {
        tools.push("curl");
    }
    match sh(ssh, name, &probe::missing_tools(&tools)).await {
        Ok(out) if out.stdout.trim().is_empty() => rows.push(row(name, "tools", true, tools.join(" "))),
        Ok(out) => rows.push(row(
            name,
            "tools",
            false,
            format!("missing: {}", out.stdout.split_whitespace().collect::<Vec<_>>().join(" ")),
        )),
        Err(err) => rows.push(row(name, "tools", false, err)),
    }
    rows.extend(sudo_row(stage, ssh, name).await);
    let shared_files = &stage.shared.files;
    if !shared_files.is_empty() {
        let files: Vec<String> = shared_files.iter().map(|file| format!("{}/{file}", layout.shared())).collect();
        let cmd = Cmd::new("ls").args(["-d", "--"]).args(files);
        match sh(ssh, name, &cmd).await {
            Ok(out) if out.ok() => rows.push(row(name, "shared files", true, shared_files.join(" "))),
            Ok(out) => rows.push(row(
                name,
                "shared files",
                false,
                format!("create them before deploying: {}", out.tail(2).replace('\n', "; ")),
            )),
            Err(err) => rows.push(row(name, "shared files", false, err)),
        }
    }
    if host.has(Role::App)
        && let Some(url) = stage.health.url_for(host)
    {
        let health_cfg = &stage.health;
        let headers = health_cfg.headers_for(host);
        let status = match health_cfg.from {
            HealthFrom::Host => sh(ssh, name, &health::fetch_status(&url, &headers, health_cfg.timeout))
                .await
                .map(|out| http_status(&out.stdout)),
            HealthFrom::Local => http
                .send(Request { method: "GET", url: &url, headers: &headers, timeout: health_cfg.timeout })
                .await
                .map(Some)
                .map_err(|err| err.message),
        };
        let expected = health_cfg.expect_status;
        rows.push(match status {
            Ok(Some(status)) if status == expected => row(name, "health", true, format!("{url} → {status}")),
            Ok(Some(status)) => row(name, "health", false, format!("{url} → {status}, expected {expected}")),
            Ok(None) => row(name, "health", false, format!("{url} does not answer")),
            Err(err) => row(name, "health", false, format!("{url}: {err}")),
        });
    }
    rows
}

/// When hooks use sudo: does `sudo -n` work (or is deploy root, which needs none)?
pub(super) async fn sudo_row(stage: &StageConfig, ssh: &Connections, name: &str) -> Option<Row> {
    let hooks = &stage.hooks;
    let mut all_hooks = hooks.prepare.iter().chain(&hooks.activate).chain(&hooks.migrate).chain(&hooks.worker.activate);
    if !all_hooks.any(|hook| hook.split_whitespace().any(|word| word == "sudo")) {
        return None;
    }
    Some(match sh(ssh, name, &probe::sudo()).await {
        Ok(out) if out.ok() && out.stdout.trim() == "root" => row(name, "sudo", true, "root: hooks need no sudo"),
        Ok(out) if out.ok() => row(name, "sudo", true, "sudo -n works (hooks use sudo)"),
        Ok(out) => row(name, "sudo", false, format!("hooks use sudo but `sudo -n true` fails: {}", out.tail(1))),
        Err(err) => row(name, "sudo", false, err),
    })
}

async fn check_balancer(stage: &StageConfig, ssh: &Connections) -> Vec<Row> {
    let balancer = &stage.balancer;
    let apps: Vec<&str> =
        stage.hosts.iter().filter(|host| host.has(Role::App)).map(|host| host.name.as_str()).collect();
    let Some((op, _)) = crate::balancer::capacity(balancer) else {
        return match balancer {
            Balancer::None => vec![],
            other => vec![row(
                other.host().unwrap_or("local"),
                "balancer",
                true,
                "command balancer: not checked (its commands change state)",
            )],
        };
    };
    let Target::Host(lb) = &op.on else { return vec![] };
    let listed = match sh(ssh, lb, &op.cmd).await {
        Ok(out) if out.ok() => out.stdout,
        Ok(out) => return vec![row(lb, "balancer", false, format!("{} failed: {}", balancer.kind(), out.tail(2)))],
        Err(err) => return vec![row(lb, "balancer", false, err)],
    };
    let mut rows = vec![row(lb, "balancer", true, format!("{} answers", balancer.kind()))];
    for host in &apps {
        let backend = balancer.backend_of(host);
        rows.push(if crate::balancer::lists_backend(balancer, &listed, backend) {
            row(lb, "backend", true, format!("{host} is backend `{backend}`"))
        } else {
            row(
                lb,
                "backend",
                false,
                format!("no backend `{backend}` for {host}: set `backends`/`servers` in the balancer table"),
            )
        });
    }
    // Draining needs the socket's admin level (`show cli level` says which it has).
    if let Balancer::Haproxy { socket, .. } = balancer {
        let asked = sh(ssh, lb, &crate::balancer::haproxy_cli_level(socket)).await;
        let level = asked.map(|out| out.stdout.trim().to_string()).unwrap_or_default();
        rows.push(if level == "admin" {
            row(lb, "admin level", true, "the stats socket is at level admin")
        } else {
            row(
                lb,
                "admin level",
                false,
                format!("the stats socket is at level `{level}`: add `level admin` or drains are refused"),
            )
        });
    }
    // A canary's soak reads the answer counters (Varnish: varnishncsa for a second here).
    if stage.canary.count(apps.len()) > 0
        && let Some((op, read)) = crate::balancer::stats(balancer, Duration::from_secs(1))
        && let Target::Host(on) = &op.on
    {
        rows.push(match sh(ssh, on, &op.cmd).await {
            Ok(out) if out.ok() && read.counts(&out.stdout).is_ok() => {
                row(on, "canary", true, "answer counters readable (the soak judges the canary by them)")
            }
            Ok(out) => row(on, "canary", false, format!("the soak cannot read the answer counters: {}", out.tail(2))),
            Err(err) => row(on, "canary", false, err),
        });
    }
    // The drain waits on these counters: they must be readable (varnishd -n ⇒ `instance`).
    if let Balancer::Varnish { .. } = balancer
        && let Some(host) = stage.hosts.iter().find(|host| host.has(Role::App))
        && let Some((op, read)) = crate::balancer::in_flight(balancer, &host.name)
    {
        let ok = sh(ssh, lb, &op.cmd).await.is_ok_and(|out| read.in_flight(&out.stdout).is_ok());
        rows.push(row(
            lb,
            "varnishstat",
            ok,
            if ok { "in-flight counters readable" } else { "varnishstat shows no counters: check `instance`" },
        ));
    }
    rows
}

async fn check_caches(stage: &StageConfig, ssh: &Connections, http: &Http) -> Vec<Row> {
    let mut rows = Vec::new();
    for cache in &stage.http_cache {
        match cache {
            HttpCache::Varnish { host, admin, secret, .. } => {
                let cmd = crate::balancer::varnishadm(admin, secret).arg("ping");
                rows.push(match sh(ssh, host, &cmd).await {
                    Ok(out) if out.ok() => row(host, "http cache", true, format!("varnish at {admin} answers")),
                    Ok(out) => row(host, "http cache", false, format!("varnishadm ping: {}", out.tail(2))),
                    Err(err) => row(host, "http cache", false, err),
                });
            }
            HttpCache::Http { host, url, .. } => {
                // Reachable is enough: sending the ban itself would change state.
                let answered = match host {
                    Some(host) => sh(ssh, host, &health::request("HEAD", url, &[], Duration::from_secs(5)))
                        .await
                        .map(|out| http_status(&out.stdout).is_some()),
                    None => Ok(http
                        .send(Request { method: "HEAD", url, headers: &[], timeout: Duration::from_secs(5) })
                        .await
                        .is_ok()),
                };
                let at = host.clone().unwrap_or_else(|| "local".into());
                rows.push(match answered {
                    Ok(true) => row(&at, "http cache", true, format!("{url} answers")),
                    Ok(false) => row(&at, "http cache", false, format!("{url} does not answer")),
                    Err(err) => row(&at, "http cache", false, err),
                });
            }
            HttpCache::Command { host, .. } => rows.push(row(
                host.as_deref().unwrap_or("local"),
                "http cache",
                true,
                "command cache: not checked (it changes state)",
            )),
        }
    }
    rows
}

pub fn run(settings: &Settings, stage: &str) -> Result<i32, Error> {
    let cfg = super::load(settings, stage)?;
    let stage_cfg = &cfg.stage;
    let (hosts, _) = super::host_names(&cfg);
    // Room for a release: 2× the newest build of this app (tarball + unpacked), at least 100 MB.
    let newest = crate::artifact::cache_dir()
        .ok()
        .and_then(|cache| crate::artifact::newest_size(&cache, &stage_cfg.app.name))
        .unwrap_or(0);
    let need_kb = (newest * 2 / 1024).max(100 * 1024);
    let rows: Vec<Row> = super::runtime()?.block_on(async {
        let (ssh, errors) = connect_each(stage_cfg, &hosts).await;
        let http = Http::new();
        let mut rows: Vec<Row> = errors
            .iter()
            .map(|err| row(&err.host, "ssh", false, format!("{}: {}", err.destination, err.message.trim())))
            .collect();
        let reached = hosts.iter().filter(|host| !errors.iter().any(|err| &err.host == *host));
        let checked = super::each_host(reached, |host| check_host(stage_cfg, &ssh, &http, host, need_kb)).await;
        rows.extend(checked.into_iter().flatten());
        rows.extend(check_balancer(stage_cfg, &ssh).await);
        rows.extend(check_caches(stage_cfg, &ssh, &http).await);
        ssh.close().await;
        rows
    });
    Ok(print_rows(settings, &cfg, stage, &rows))
}

/// Prints the rows (a table, or JSON); 0 when every row passed, else 1.
pub(super) fn print_rows(settings: &Settings, cfg: &crate::config::Config, stage: &str, rows: &[Row]) -> i32 {
    let failed = rows.iter().filter(|row| !row.ok).count();
    if settings.output == OutputMode::Json {
        let value = serde_json::json!({"stage": stage, "ok": failed == 0, "checks": rows});
        super::out(&format!("{}\n", cfg.redact_json(value)));
    } else {
        let width = rows.iter().map(|row| row.host.len()).max().unwrap_or(4).max(4);
        let mut text = format!("{:<width$}  {:<12}  {:<4}  detail\n", "host", "check", "ok");
        for row in rows {
            let ok = if row.ok { "ok" } else { "FAIL" };
            text.push_str(&format!("{:<width$}  {:<12}  {ok:<4}  {}\n", row.host, row.check, row.detail));
        }
        text.push_str(&if failed == 0 {
            format!("\nall {} checks passed\n", rows.len())
        } else {
            format!("\n{failed} of {} checks failed\n", rows.len())
        });
        super::out(&cfg.redact(&text));
    }
    if failed == 0 { 0 } else { 1 }
}
