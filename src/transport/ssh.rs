//! One multiplexed OpenSSH connection per host (ControlMaster, via the openssh crate), every
//! command over it. The user's ssh config, agent and known_hosts apply; host keys are
//! checked strictly.

use super::{Output, TransportError};
use openssh::{ControlPersist, KnownHosts, Session, SessionBuilder, Stdio};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// sshd allows 10 sessions per connection by default (`MaxSessions`); stay well below.
const IN_FLIGHT_PER_HOST: usize = 4;
/// Connections being opened at once: a key exchange costs both ends CPU, and a hundred at
/// once from one machine would time out on their own load.
const OPENING_AT_ONCE: usize = 16;

#[derive(Debug, Clone, Default)]
pub struct SshOptions {
    pub config: Option<PathBuf>,
    pub identity: Option<PathBuf>,
    pub known_hosts: Option<PathBuf>,
}

/// Why a host could not be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectProblem {
    /// Unknown or changed host key: a config or security problem, nothing was done.
    HostKey,
    /// Key refused.
    Auth,
    /// Refused, timed out, no route, DNS…
    Unreachable,
}

#[derive(Debug, Clone)]
pub struct ConnectError {
    pub host: String,
    pub destination: String,
    pub problem: ConnectProblem,
    pub message: String,
}

struct Conn {
    session: Session,
    slots: Semaphore,
}

pub struct Connections {
    hosts: HashMap<String, Arc<Conn>>,
}

/// One host to connect to: its name and `[user@]address[:port]` parts.
pub struct Destination {
    pub host: String,
    pub user: Option<String>,
    pub address: String,
    pub port: Option<u16>,
}

impl Destination {
    pub fn display(&self) -> String {
        let mut s = String::new();
        if let Some(u) = &self.user {
            s.push_str(u);
            s.push('@');
        }
        s.push_str(&self.address);
        if let Some(p) = self.port {
            s.push_str(&format!(":{p}"));
        }
        s
    }
}

fn classify(stderr: &str) -> ConnectProblem {
    let s = stderr.to_ascii_lowercase();
    if s.contains("host key verification failed")
        || s.contains("remote host identification has changed")
        || s.contains("host key is known")
        || s.contains("no matching host key")
    {
        ConnectProblem::HostKey
    } else if s.contains("permission denied") || s.contains("too many authentication failures") {
        ConnectProblem::Auth
    } else {
        ConnectProblem::Unreachable
    }
}

fn error_text(e: &openssh::Error) -> String {
    super::error_chain(e)
}

impl Connections {
    /// Opens every connection at once; returns all failures, not just the first.
    pub async fn open(opts: &SshOptions, dests: Vec<Destination>) -> Result<Connections, Vec<ConnectError>> {
        let (conns, errors) = Connections::open_each(opts, dests).await;
        if errors.is_empty() {
            Ok(conns)
        } else {
            conns.close().await;
            Err(errors)
        }
    }

    /// Opens what it can: the connections that worked, and the errors of the others.
    pub async fn open_each(opts: &SshOptions, dests: Vec<Destination>) -> (Connections, Vec<ConnectError>) {
        let mut set = tokio::task::JoinSet::new();
        let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
        for d in dests {
            let opts = opts.clone();
            let opening = opening.clone();
            set.spawn(async move {
                let _slot = opening.acquire_owned().await.expect("semaphore");
                let mut b = SessionBuilder::default();
                // A master left behind by a killed deploy goes away on its own after 10 idle minutes.
                b.known_hosts_check(KnownHosts::Strict)
                    .connect_timeout(Duration::from_secs(10))
                    .server_alive_interval(Duration::from_secs(5))
                    .control_persist(ControlPersist::IdleFor(std::num::NonZeroUsize::new(600).expect("non-zero")));
                if let Some(c) = &opts.config {
                    b.config_file(c);
                }
                if let Some(k) = &opts.identity {
                    b.keyfile(k);
                }
                if let Some(k) = &opts.known_hosts {
                    b.user_known_hosts_file(k);
                }
                if let Some(u) = &d.user {
                    b.user(u.clone());
                }
                if let Some(p) = d.port {
                    b.port(p);
                }
                let r = b.connect_mux(&d.address).await;
                (d, r)
            });
        }
        let mut hosts = HashMap::new();
        let mut errors = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (d, r) = joined.expect("connect task");
            match r {
                Ok(session) => {
                    hosts.insert(d.host.clone(), Arc::new(Conn { session, slots: Semaphore::new(IN_FLIGHT_PER_HOST) }));
                }
                Err(e) => {
                    let message = error_text(&e);
                    errors.push(ConnectError {
                        problem: classify(&message),
                        destination: d.display(),
                        host: d.host,
                        message,
                    });
                }
            }
        }
        errors.sort_by(|a, b| a.host.cmp(&b.host));
        (Connections { hosts }, errors)
    }

    /// The control sockets of the master connections (to stop them from a signal handler).
    pub fn control_sockets(&self) -> Vec<PathBuf> {
        self.hosts.values().map(|c| c.session.control_socket().to_path_buf()).collect()
    }

    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// Runs a shell line on `host`, retrying a refused channel open (sshd's session limit)
    /// with backoff.
    pub async fn run(&self, host: &str, line: &str, stdin: Option<&Path>) -> Result<Output, TransportError> {
        let conn = self
            .hosts
            .get(host)
            .ok_or_else(|| TransportError { message: format!("not connected to {host}"), lost: true })?;
        let _slot = conn.slots.acquire().await.expect("semaphore open");
        let mut delay = Duration::from_millis(20);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut c = conn.session.raw_command(line);
            c.stdout(Stdio::piped()).stderr(Stdio::piped());
            match super::stdin_file(stdin)? {
                Some(f) => c.stdin(Stdio::from(f)),
                None => c.stdin(Stdio::null()),
            };
            match c.output().await {
                Ok(out) => {
                    return Ok(Output {
                        status: out.status.code(),
                        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                    });
                }
                Err(e) => {
                    let text = error_text(&e);
                    // A channel refused while the master lives: retry. A dead master: lost.
                    let master_alive = conn.session.check().await.is_ok();
                    if master_alive && attempt < 6 {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        continue;
                    }
                    return Err(TransportError { message: format!("ssh to {host}: {text}"), lost: !master_alive });
                }
            }
        }
    }

    /// Closes every master connection.
    /// Closes every master connection, all at once (one at a time, 8 hosts took 0.2 s).
    pub async fn close(self) {
        let mut set = tokio::task::JoinSet::new();
        for (_, c) in self.hosts {
            if let Ok(c) = Arc::try_unwrap(c) {
                set.spawn(async move {
                    let _ = c.session.close().await;
                });
            }
        }
        set.join_all().await;
    }
}
