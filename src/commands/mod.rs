//! The commands that talk to servers.

pub mod check;
pub mod deploy;
pub mod exec;
pub mod releases;
pub mod rollback;
pub mod unlock;

use crate::cli::{Global, Output};
use crate::config::{Config, StageConfig};
use crate::error::Error;
use crate::report::{Human, Json, Plain, Reporter};
use crate::transport::{Connections, Destination, SshOptions};
use std::path::PathBuf;
use std::sync::Arc;

/// `~/x` → `$HOME/x`.
pub fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(p),
    }
}

pub fn ssh_options(s: &StageConfig) -> SshOptions {
    SshOptions {
        config: s.ssh.config.as_deref().map(expand_home),
        identity: s.ssh.identity.as_deref().map(expand_home),
        known_hosts: s.ssh.known_hosts.as_deref().map(expand_home),
    }
}

fn destinations(s: &StageConfig, names: &[String]) -> Vec<Destination> {
    s.hosts
        .iter()
        .filter(|h| names.contains(&h.name))
        .map(|h| Destination {
            host: h.name.clone(),
            user: h.user.clone().or_else(|| s.ssh.user.clone()),
            address: h.address.clone(),
            port: h.port.or(s.ssh.port),
        })
        .collect()
}

/// Opens one connection per named host (all at once); any failure is an error.
pub async fn connect(s: &StageConfig, names: &[String]) -> Result<Connections, Error> {
    Connections::open(&ssh_options(s), destinations(s, names)).await.map_err(|errors| Error::Connect { errors })
}

/// Connects to what it can (for `check` and `exec`, which report per host).
pub async fn connect_each(s: &StageConfig, names: &[String]) -> (Connections, Vec<crate::transport::ConnectError>) {
    Connections::open_each(&ssh_options(s), destinations(s, names)).await
}

/// Is this run unattended (no prompts, no live lines)?
pub fn unattended() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

pub fn output_mode(g: &Global) -> Output {
    match g.output {
        Output::Auto if console::Term::stderr().is_term() && !unattended() => Output::Human,
        Output::Auto => Output::Plain,
        o => o,
    }
}

pub fn reporter(g: &Global, cfg: &Config, hosts: &[String]) -> Arc<dyn Reporter> {
    if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) || !console::Term::stderr().is_term() {
        console::set_colors_enabled(false);
        console::set_colors_enabled_stderr(false);
    }
    let verbose = g.verbose > 0;
    match output_mode(g) {
        Output::Json => Arc::new(Json::new(verbose, cfg.redactions.clone())),
        Output::Human => Arc::new(Human::new(hosts, verbose, g.quiet, cfg.redactions.clone())),
        _ => Arc::new(Plain::new(verbose, g.quiet, cfg.redactions.clone())),
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| Error::File {
        path: "tokio runtime".into(),
        action: "start",
        source: e,
    })
}

/// The first Ctrl-C or SIGTERM asks the run to stop after the action in flight and undo; the
/// second stops at once (closing the ssh masters) and says how to recover.
pub fn watch_signals(
    cancel: Arc<std::sync::atomic::AtomicBool>,
    report: Arc<dyn Reporter>,
    sockets: Vec<PathBuf>,
    stage: String,
) -> tokio::task::JoinHandle<()> {
    use tokio::signal::unix::{SignalKind, signal};
    tokio::spawn(async move {
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        let mut n = 0;
        loop {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
            n += 1;
            if n == 1 {
                cancel.store(true, std::sync::atomic::Ordering::SeqCst);
                report.event(&crate::report::Event::Warning {
                    host: None,
                    message: "stopping after the step in flight, then putting every switched host back; press Ctrl-C again to stop at once".into(),
                });
            } else {
                report.event(&crate::report::Event::Warning {
                    host: None,
                    message: format!("stopped at once: hosts may be drained or switched, the journal on each host says where; run `deploy unlock {stage}`"),
                });
                for s in &sockets {
                    let _ = std::process::Command::new("ssh")
                        .arg("-S")
                        .arg(s)
                        .args(["-O", "exit", "deploy-master"])
                        .output();
                }
                eprintln!("error: interrupted twice: stopped at once without restoring; run `deploy unlock {stage}`");
                std::process::exit(4);
            }
        }
    })
}

/// Writes to stdout; a closed pipe (`deploy releases | head`) is not an error.
pub fn out(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes()).and_then(|()| o.flush());
}

/// Tells the webhooks that want `moment` about `run`; a failure is a warning.
pub async fn announce(
    s: &StageConfig,
    moment: crate::config::NotifyOn,
    run: &crate::report::summary::Run,
    redactions: &[(String, String)],
    report: &dyn Reporter,
) {
    if s.notify.is_empty() {
        return;
    }
    let http = crate::transport::Http::new();
    for w in crate::notify::send(http.client(), &s.notify, moment, run, redactions).await {
        report.event(&crate::report::Event::Warning { host: None, message: w });
    }
}

/// Appends the run's Markdown summary to `$GITHUB_STEP_SUMMARY` when GitHub Actions set it.
pub fn github_summary(run: &crate::report::summary::Run, redactions: &[(String, String)], report: &dyn Reporter) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else { return };
    use std::io::Write;
    let text = crate::config::redact(redactions, &run.markdown());
    let r = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    if let Err(e) = r {
        report.event(&crate::report::Event::Warning {
            host: None,
            message: format!("could not write the step summary to {}: {e}", PathBuf::from(path).display()),
        });
    }
}
