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
        let mut text = String::new();
        if let Some(user) = &self.user {
            text.push_str(user);
            text.push('@');
        }
        text.push_str(&self.address);
        if let Some(port) = self.port {
            text.push_str(&format!(":{port}"));
        }
        text
    }
}

/// Why ssh could not connect. ssh exits 255 for all of these, so its own messages are read:
/// OpenSSH prints them in English whatever the locale.
fn classify(stderr: &str) -> ConnectProblem {
    let text = stderr.to_ascii_lowercase();
    if text.contains("host key verification failed")
        || text.contains("remote host identification has changed")
        || text.contains("host key is known")
        || text.contains("no matching host key")
    {
        ConnectProblem::HostKey
    } else if text.contains("permission denied") || text.contains("too many authentication failures") {
        ConnectProblem::Auth
    } else {
        ConnectProblem::Unreachable
    }
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
        raise_open_files();
        let mut set = tokio::task::JoinSet::new();
        let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
        for dest in dests {
            let opts = opts.clone();
            let opening = opening.clone();
            set.spawn(async move {
                let _slot = opening.acquire_owned().await.expect("semaphore");
                let mut builder = SessionBuilder::default();
                // A master left behind by a killed deploy goes away on its own after 10 idle minutes.
                builder
                    .known_hosts_check(KnownHosts::Strict)
                    .connect_timeout(Duration::from_secs(10))
                    .server_alive_interval(Duration::from_secs(5))
                    .control_persist(ControlPersist::IdleFor(std::num::NonZeroUsize::new(600).expect("non-zero")));
                if let Some(config) = &opts.config {
                    builder.config_file(config);
                }
                if let Some(key) = &opts.identity {
                    builder.keyfile(key);
                }
                if let Some(known) = &opts.known_hosts {
                    builder.user_known_hosts_file(known);
                }
                if let Some(user) = &dest.user {
                    builder.user(user.clone());
                }
                if let Some(port) = dest.port {
                    builder.port(port);
                }
                let session = builder.connect_mux(&dest.address).await;
                (dest, session)
            });
        }
        let mut hosts = HashMap::new();
        let mut errors = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (dest, session) = joined.expect("connect task");
            match session {
                Ok(session) => {
                    let conn = Conn { session, slots: Semaphore::new(IN_FLIGHT_PER_HOST) };
                    hosts.insert(dest.host.clone(), Arc::new(conn));
                }
                Err(err) => {
                    let message = super::error_chain(&err);
                    errors.push(ConnectError {
                        problem: classify(&message),
                        destination: dest.display(),
                        host: dest.host,
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
        self.hosts.values().map(|conn| conn.session.control_socket().to_path_buf()).collect()
    }

    pub fn hosts(&self) -> impl Iterator<Item = &str> {
        self.hosts.keys().map(String::as_str)
    }

    /// Runs a shell line on `host`, with `private` bytes written to its stdin before the
    /// `stdin` file (the values a line reads from its environment, see `Wire::preamble`);
    /// retries a refused channel open (sshd's session limit) with backoff.
    pub async fn run(
        &self,
        host: &str,
        line: &str,
        private: Option<&[u8]>,
        stdin: Option<&Path>,
    ) -> Result<Output, TransportError> {
        let conn = self
            .hosts
            .get(host)
            .ok_or_else(|| TransportError { message: format!("not connected to {host}"), lost: true })?;
        let _slot = conn.slots.acquire().await.expect("semaphore open");
        let mut delay = Duration::from_millis(20);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut command = conn.session.raw_command(line);
            command.stdout(Stdio::piped()).stderr(Stdio::piped());
            let file = super::stdin_file(stdin)?;
            match (&file, private) {
                (None, None) => command.stdin(Stdio::null()),
                (Some(_), None) | (_, Some(_)) => command.stdin(Stdio::piped()),
            };
            let spawned = match command.spawn().await {
                Ok(child) => child,
                Err(err) => {
                    let text = super::error_chain(&err);
                    // A channel refused while the master lives: the command never started,
                    // so trying again cannot run it twice. A dead master: lost.
                    let master_alive = conn.session.check().await.is_ok();
                    if master_alive && attempt < 6 {
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                        continue;
                    }
                    return Err(TransportError { message: format!("ssh to {host}: {text}"), lost: !master_alive });
                }
            };
            let mut child = spawned;
            let writer = child.stdin().take().map(|mut input| {
                let private = private.map(<[u8]>::to_vec);
                tokio::spawn(async move {
                    use tokio::io::AsyncWriteExt;
                    if let Some(bytes) = private {
                        input.write_all(&bytes).await?;
                    }
                    if let Some(file) = file {
                        let mut file = tokio::fs::File::from_std(file);
                        tokio::io::copy(&mut file, &mut input).await?;
                    }
                    input.shutdown().await
                })
            });
            let result = child.wait_with_output().await;
            if let Some(writer) = writer {
                // A command that exits without reading all its input closes the pipe: that is
                // its own business, reported by its status.
                let _ = writer.await;
            }
            return match result {
                Ok(out) => Ok(Output {
                    status: out.status.code(),
                    stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                    stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                }),
                Err(err) => {
                    let text = super::error_chain(&err);
                    let master_alive = conn.session.check().await.is_ok();
                    Err(TransportError { message: format!("ssh to {host}: {text}"), lost: !master_alive })
                }
            };
        }
    }

    /// Closes every master connection, all at once (one at a time, 8 hosts took 0.2 s).
    pub async fn close(self) {
        let mut set = tokio::task::JoinSet::new();
        for (_, conn) in self.hosts {
            if let Ok(conn) = Arc::try_unwrap(conn) {
                set.spawn(async move {
                    let _ = conn.session.close().await;
                });
            }
        }
        set.join_all().await;
    }
}

/// Raises this process's soft limit of open files to its hard limit (never lowers it), as
/// Go's runtime does for its programs: each host costs deploy about five descriptors while
/// its commands run (the master connection's socket, each command's pipes), so 256 hosts
/// need ~1,400, past the 1,024 a login shell usually allows. Returns the soft limit now.
pub fn raise_open_files() -> Option<u64> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current.is_some() && limit.current != limit.maximum {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: limit.maximum, maximum: limit.maximum });
    }
    getrlimit(Resource::Nofile).current
}

#[cfg(test)]
mod limit_tests {
    #[test]
    fn the_soft_limit_of_open_files_is_raised_to_the_hard_one() {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let hard = getrlimit(Resource::Nofile).maximum;
        setrlimit(Resource::Nofile, Rlimit { current: Some(256), maximum: hard }).unwrap();
        assert_eq!(getrlimit(Resource::Nofile).current, Some(256));
        assert_eq!(super::raise_open_files(), hard);
    }
}
