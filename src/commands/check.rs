//! `deploy check STAGE`: preflight, read-only. Per host: ssh, deploy path, disk, tools, sudo,
//! shared files, health; the balancer and its backends; the HTTP caches.

use super::{connect_each, runtime};
use crate::cli::{Global, Output, load};
use crate::config::{Balancer, HealthFrom, HttpCache, Role, StageConfig};
use crate::error::Error;
use crate::plan::Target;
use crate::remote::{Cmd, Layout, health, probe};
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

fn row(host: &str, check: &'static str, ok: bool, detail: impl Into<String>) -> Row {
    Row { host: host.to_string(), check, ok, warn: false, detail: detail.into() }
}

fn warn(host: &str, check: &'static str, detail: impl Into<String>) -> Row {
    Row { warn: true, ..row(host, check, true, detail) }
}

async fn sh(ssh: &Connections, host: &str, cmd: &Cmd) -> Result<crate::transport::Output, String> {
    ssh.run(host, &cmd.to_string(), None).await.map_err(|e| e.message)
}

/// A command that takes this long to do nothing means a slow login shell (rc files run
/// before every command), which a deploy pays hundreds of times.
const SLOW_COMMAND: Duration = Duration::from_millis(60);

async fn check_host(s: &StageConfig, ssh: &Connections, http: &Http, name: &str, need_kb: u64) -> Vec<Row> {
    let host = s.hosts.iter().find(|h| h.name == name).expect("host");
    let layout = Layout::new(&s.app.path);
    let mut rows = Vec::new();
    // ssh: the cost of one command, best of three.
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        if let Err(e) = ssh.run(name, "true", None).await {
            rows.push(row(name, "ssh", false, e.message));
            return rows;
        }
        best = best.min(t.elapsed());
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
        Ok(o) if o.ok() => {
            rows.push(row(name, "deploy path", true, format!("{} writable (at {})", layout.root(), o.stdout.trim())))
        }
        Ok(_) => {
            rows.push(row(name, "deploy path", false, format!("{} is not writable by the ssh user", layout.root())))
        }
        Err(e) => rows.push(row(name, "deploy path", false, e)),
    }
    match sh(ssh, name, &probe::free_kb(layout.root())).await.map(|o| o.stdout.trim().parse::<u64>()) {
        Ok(Ok(kb)) if kb >= need_kb => rows.push(row(name, "disk", true, format!("{} MB free", kb / 1024))),
        Ok(Ok(kb)) => rows.push(row(
            name,
            "disk",
            false,
            format!("{} MB free, a release needs about {} MB", kb / 1024, need_kb / 1024),
        )),
        Ok(Err(_)) => rows.push(row(name, "disk", false, "df printed no free space")),
        Err(e) => rows.push(row(name, "disk", false, e)),
    }
    let mut tools = vec!["tar", "gzip", "sha256sum", "readlink", "ln", "mv", "cp", "xargs", "env"];
    if s.health.url.is_some() && s.health.from == HealthFrom::Host {
        tools.push("curl");
    }
    match sh(ssh, name, &probe::missing_tools(&tools)).await {
        Ok(o) if o.stdout.trim().is_empty() => rows.push(row(name, "tools", true, tools.join(" "))),
        Ok(o) => rows.push(row(
            name,
            "tools",
            false,
            format!("missing: {}", o.stdout.split_whitespace().collect::<Vec<_>>().join(" ")),
        )),
        Err(e) => rows.push(row(name, "tools", false, e)),
    }
    let hooks = s.hooks.prepare.iter().chain(&s.hooks.activate).chain(&s.hooks.migrate).chain(&s.hooks.worker.activate);
    if hooks.clone().any(|h| h.split_whitespace().any(|w| w == "sudo")) {
        match sh(ssh, name, &probe::sudo()).await {
            Ok(o) if o.ok() => rows.push(row(name, "sudo", true, "sudo -n works (hooks use sudo)")),
            Ok(o) => {
                rows.push(row(name, "sudo", false, format!("hooks use sudo but `sudo -n true` fails: {}", o.tail(1))))
            }
            Err(e) => rows.push(row(name, "sudo", false, e)),
        }
    }
    if !s.shared.files.is_empty() {
        let files: Vec<String> = s.shared.files.iter().map(|f| format!("{}/{f}", layout.shared())).collect();
        let cmd = Cmd::new("ls").args(["-d", "--"]).args(files);
        match sh(ssh, name, &cmd).await {
            Ok(o) if o.ok() => rows.push(row(name, "shared files", true, s.shared.files.join(" "))),
            Ok(o) => rows.push(row(
                name,
                "shared files",
                false,
                format!("create them before deploying: {}", o.tail(2).replace('\n', "; ")),
            )),
            Err(e) => rows.push(row(name, "shared files", false, e)),
        }
    }
    if host.has(Role::App)
        && let Some(url) = s.health.url_for(host)
    {
        let status = match s.health.from {
            HealthFrom::Host => sh(ssh, name, &health::fetch_status(&url, s.health.timeout))
                .await
                .map(|o| crate::runner::readings::http_status(&o.stdout)),
            HealthFrom::Local => http
                .send(Request { method: "GET", url: &url, headers: &[], timeout: s.health.timeout })
                .await
                .map(Some)
                .map_err(|e| e.message),
        };
        rows.push(match status {
            Ok(Some(st)) if st == s.health.expect_status => row(name, "health", true, format!("{url} → {st}")),
            Ok(Some(st)) => row(name, "health", false, format!("{url} → {st}, expected {}", s.health.expect_status)),
            Ok(None) => row(name, "health", false, format!("{url} does not answer")),
            Err(e) => row(name, "health", false, format!("{url}: {e}")),
        });
    }
    rows
}

async fn check_balancer(s: &StageConfig, ssh: &Connections) -> Vec<Row> {
    let apps: Vec<&str> = s.hosts.iter().filter(|h| h.has(Role::App)).map(|h| h.name.as_str()).collect();
    let Some((op, _)) = crate::balancer::capacity(&s.balancer) else {
        return match &s.balancer {
            Balancer::None => vec![],
            b => vec![row(
                b.host().unwrap_or("local"),
                "balancer",
                true,
                "command balancer: not checked (its commands change state)",
            )],
        };
    };
    let Target::Host(lb) = &op.on else { return vec![] };
    let out = match sh(ssh, lb, &op.cmd).await {
        Ok(o) if o.ok() => o.stdout,
        Ok(o) => return vec![row(lb, "balancer", false, format!("{} failed: {}", s.balancer.kind(), o.tail(2)))],
        Err(e) => return vec![row(lb, "balancer", false, e)],
    };
    let mut rows = vec![row(lb, "balancer", true, format!("{} answers", s.balancer.kind()))];
    for h in apps {
        let backend = s.balancer.backend_of(h);
        let found = match &s.balancer {
            Balancer::Varnish { .. } => crate::runner::readings::varnish_backends(&out)
                .iter()
                .any(|r| r.name.rsplit_once('.').is_some_and(|(_, n)| n == backend)),
            Balancer::Haproxy { backend: be, .. } => crate::runner::readings::haproxy_row(&out, be, backend).is_ok(),
            _ => true,
        };
        rows.push(if found {
            row(lb, "backend", true, format!("{h} is backend `{backend}`"))
        } else {
            row(
                lb,
                "backend",
                false,
                format!("no backend `{backend}` for {h}: set `backends`/`servers` in the balancer table"),
            )
        });
    }
    // Draining needs the socket's admin level (`show cli level` says which it has).
    if let Balancer::Haproxy { socket, .. } = &s.balancer {
        let cmd = crate::remote::Cmd::new("printf")
            .args(["%s\\n", "show cli level"])
            .pipe(crate::remote::Cmd::new("socat").args(["-t", "5", "stdio", &format!("unix-connect:{socket}")]));
        let level = sh(ssh, lb, &cmd).await.map(|o| o.stdout.trim().to_string()).unwrap_or_default();
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
    // The drain waits on these counters: they must be readable (varnishd -n ⇒ `instance`).
    if let Balancer::Varnish { .. } = &s.balancer
        && let Some(h) = s.hosts.iter().find(|h| h.has(Role::App))
        && let Some((op, _)) = crate::balancer::in_flight(&s.balancer, &h.name)
    {
        let ok = sh(ssh, lb, &op.cmd)
            .await
            .ok()
            .and_then(|o| crate::runner::readings::varnish_in_flight(&o.stdout))
            .is_some();
        rows.push(row(
            lb,
            "varnishstat",
            ok,
            if ok { "in-flight counters readable" } else { "varnishstat shows no counters: check `instance`" },
        ));
    }
    rows
}

async fn check_caches(s: &StageConfig, ssh: &Connections, http: &Http) -> Vec<Row> {
    let mut rows = Vec::new();
    for c in &s.http_cache {
        match c {
            HttpCache::Varnish { host, admin, secret, .. } => {
                let cmd = crate::balancer::varnishadm(admin, secret).arg("ping");
                rows.push(match sh(ssh, host, &cmd).await {
                    Ok(o) if o.ok() => row(host, "http cache", true, format!("varnish at {admin} answers")),
                    Ok(o) => row(host, "http cache", false, format!("varnishadm ping: {}", o.tail(2))),
                    Err(e) => row(host, "http cache", false, e),
                });
            }
            HttpCache::Http { host, url, .. } => {
                // Reachable is enough: sending the ban itself would change state.
                let r = match host {
                    Some(h) => sh(ssh, h, &health::request("HEAD", url, &[], Duration::from_secs(5)))
                        .await
                        .map(|o| crate::runner::readings::http_status(&o.stdout).is_some()),
                    None => Ok(http
                        .send(Request { method: "HEAD", url, headers: &[], timeout: Duration::from_secs(5) })
                        .await
                        .is_ok()),
                };
                let at = host.clone().unwrap_or_else(|| "local".into());
                rows.push(match r {
                    Ok(true) => row(&at, "http cache", true, format!("{url} answers")),
                    Ok(false) => row(&at, "http cache", false, format!("{url} does not answer")),
                    Err(e) => row(&at, "http cache", false, e),
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

pub fn run(g: &Global, stage: &str) -> Result<i32, Error> {
    let cfg = load(g, stage)?;
    let s = &cfg.stage;
    let hosts: Vec<String> = s.hosts.iter().map(|h| h.name.clone()).collect();
    // Room for a release: 2× the newest build of this app (tarball + unpacked), at least 100 MB.
    let newest = crate::artifact::newest_size(&crate::artifact::cache_dir(), &s.app.name).unwrap_or(0);
    let need_kb = (newest * 2 / 1024).max(100 * 1024);
    let rt = runtime()?;
    let rows: Vec<Row> = rt.block_on(async {
        let (ssh, errors) = connect_each(s, &hosts).await;
        let http = Http::new();
        let mut rows: Vec<Row> = errors
            .iter()
            .map(|e| row(&e.host, "ssh", false, format!("{}: {}", e.destination, e.message.trim())))
            .collect();
        for h in &hosts {
            if errors.iter().any(|e| &e.host == h) {
                continue;
            }
            rows.extend(check_host(s, &ssh, &http, h, need_kb).await);
        }
        rows.extend(check_balancer(s, &ssh).await);
        rows.extend(check_caches(s, &ssh, &http).await);
        ssh.close().await;
        rows
    });
    let failed = rows.iter().filter(|r| !r.ok).count();
    if crate::commands::output_mode(g) == Output::Json {
        let v = serde_json::json!({"stage": stage, "ok": failed == 0, "checks": rows});
        super::out(&format!("{}\n", cfg.redact(&v.to_string())));
    } else {
        let hw = rows.iter().map(|r| r.host.len()).max().unwrap_or(4).max(4);
        let mut t = format!("{:<hw$}  {:<12}  {:<4}  detail\n", "host", "check", "ok");
        for r in &rows {
            t.push_str(&format!(
                "{:<hw$}  {:<12}  {:<4}  {}\n",
                r.host,
                r.check,
                if r.ok { "ok" } else { "FAIL" },
                r.detail
            ));
        }
        t.push_str(&if failed == 0 {
            format!("\nall {} checks passed\n", rows.len())
        } else {
            format!("\n{failed} of {} checks failed\n", rows.len())
        });
        super::out(&cfg.redact(&t));
    }
    Ok(if failed == 0 { 0 } else { 1 })
}
