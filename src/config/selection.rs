//! `--host`/`--role` on `deploy STAGE`, `deploy rollback` and `deploy plan`: the hosts one run
//! changes. The others keep their release, stay in service and are counted as such by the
//! capacity check; the run does not even connect to them unless the balancer or a cache
//! runs there.

use super::error::did_you_mean;
use super::schema::{Host, HttpCache, Role, StageConfig};
use serde::Serialize;

/// The hosts a run changes, and how the command line asked for them (`--host web1`).
#[derive(Debug, Clone, Serialize)]
pub struct Selection {
    pub hosts: Vec<String>,
    pub said: String,
}

impl StageConfig {
    /// Does this run put a release on `host` and switch it?
    pub fn changes(&self, host: &Host) -> bool {
        host.gets_release() && self.only.as_ref().is_none_or(|only| only.hosts.contains(&host.name))
    }

    /// Does this run talk to `host`: it changes it, it gets no release (balancer hosts), or
    /// the balancer or an HTTP cache is driven there.
    pub fn touches(&self, host: &Host) -> bool {
        let driven_there = |name: Option<&str>| name == Some(host.name.as_str());
        self.changes(host)
            || !host.gets_release()
            || driven_there(self.balancer.host())
            || self.http_cache.iter().any(|cache| driven_there(cache_host(cache)))
    }

    /// Hosts that get releases but are left alone by `--host`/`--role`.
    pub fn left_alone(&self) -> Vec<&str> {
        self.hosts
            .iter()
            .filter(|host| host.gets_release() && !self.changes(host))
            .map(|host| host.name.as_str())
            .collect()
    }

    /// Narrows the run to `hosts` (all when empty) that have `role` (any when `None`). An
    /// error names what on the command line cannot be met.
    pub fn select(&mut self, hosts: &[String], role: Option<Role>) -> Result<(), SelectionError> {
        if hosts.is_empty() && role.is_none() {
            return Ok(());
        }
        let release_hosts: Vec<&Host> = self.hosts.iter().filter(|host| host.gets_release()).collect();
        let names = || release_hosts.iter().map(|host| host.name.as_str()).collect::<Vec<_>>().join(", ");
        for name in hosts {
            match self.hosts.iter().find(|host| &host.name == name) {
                None => {
                    let known = self.hosts.iter().map(|host| host.name.as_str());
                    let guess = did_you_mean(name, known).map(|guess| format!(" (did you mean {guess}?)"));
                    return Err(SelectionError {
                        message: format!(
                            "--host {name}: stage `{}` has no host {name}{}",
                            self.stage,
                            guess.unwrap_or_default()
                        ),
                        hint: format!("the hosts that get releases: {}", names()),
                    });
                }
                Some(host) if !host.gets_release() => {
                    return Err(SelectionError {
                        message: format!("--host {name}: {name} gets no release (it is neither app nor worker)"),
                        hint: format!("the hosts that get releases: {}", names()),
                    });
                }
                Some(_) => {}
            }
        }
        let chosen: Vec<String> = release_hosts
            .iter()
            .filter(|host| hosts.is_empty() || hosts.contains(&host.name))
            .filter(|host| role.is_none_or(|role| host.has(role)))
            .map(|host| host.name.clone())
            .collect();
        let mut said: Vec<String> = hosts.iter().map(|name| format!("--host {name}")).collect();
        said.extend(role.map(|role| format!("--role {}", role.name())));
        let said = said.join(" ");
        if chosen.is_empty() {
            return Err(SelectionError {
                message: format!("{said}: no host of stage `{}` that gets releases matches", self.stage),
                hint: match role {
                    Some(role) => format!(
                        "hosts with role {}: {}",
                        role.name(),
                        with_role(&release_hosts, role).unwrap_or_else(|| "none".into())
                    ),
                    None => format!("the hosts that get releases: {}", names()),
                },
            });
        }
        self.only = Some(Selection { hosts: chosen, said });
        Ok(())
    }
}

/// Why `--host`/`--role` cannot be met.
#[derive(Debug)]
pub struct SelectionError {
    pub message: String,
    pub hint: String,
}

fn with_role(hosts: &[&Host], role: Role) -> Option<String> {
    let names: Vec<&str> = hosts.iter().filter(|host| host.has(role)).map(|host| host.name.as_str()).collect();
    (!names.is_empty()).then(|| names.join(", "))
}

fn cache_host(cache: &HttpCache) -> Option<&str> {
    match cache {
        HttpCache::Varnish { host, .. } => Some(host),
        HttpCache::Http { host, .. } | HttpCache::Command { host, .. } => host.as_deref(),
    }
}
