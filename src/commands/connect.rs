//! Connecting to a stage's hosts with the stage's ssh settings.

use crate::config::StageConfig;
use crate::error::Error;
use crate::transport::{ConnectError, Connections, Destination, SshOptions};
use std::path::PathBuf;

/// `~/x` → `$HOME/x`.
pub fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

fn ssh_options(stage: &StageConfig) -> SshOptions {
    SshOptions {
        config: stage.ssh.config.as_deref().map(expand_home),
        identity: stage.ssh.identity.as_deref().map(expand_home),
        known_hosts: stage.ssh.known_hosts.as_deref().map(expand_home),
    }
}

fn destinations(stage: &StageConfig, names: &[String]) -> Vec<Destination> {
    stage
        .hosts
        .iter()
        .filter(|host| names.contains(&host.name))
        .map(|host| Destination {
            host: host.name.clone(),
            user: host.user.clone().or_else(|| stage.ssh.user.clone()),
            address: host.address.clone(),
            port: host.port.or(stage.ssh.port),
        })
        .collect()
}

/// Opens one connection per named host (all at once); any failure is an error.
pub async fn connect(stage: &StageConfig, names: &[String]) -> Result<Connections, Error> {
    Connections::open(&ssh_options(stage), destinations(stage, names)).await.map_err(|errors| Error::Connect { errors })
}

/// Connects to what it can (for `check` and `exec`, which report per host).
pub async fn connect_each(stage: &StageConfig, names: &[String]) -> (Connections, Vec<ConnectError>) {
    Connections::open_each(&ssh_options(stage), destinations(stage, names)).await
}
