//! Decoding `[balancer]` and `[[http_cache]]`, whose hosts must be hosts of the stage.

use super::decode::{Str, Table};
use super::error::did_you_mean;
use super::hosts::valid_name;
use super::schema::{Balancer, Host, HttpCache};

const BALANCER_KINDS: [&str; 4] = ["varnish", "haproxy", "command", "none"];
const CACHE_KINDS: [&str; 3] = ["varnish", "http", "command"];

fn kind<'a>(table: &Table, kinds: &[&'a str]) -> Option<&'a str> {
    let Some(written) = table.string("kind") else {
        table.missing("kind", Some(format!("one of: {}", kinds.join(", "))));
        return None;
    };
    match kinds.iter().find(|kind| **kind == written.value) {
        Some(kind) => Some(kind),
        None => {
            let hint = match did_you_mean(&written.value, kinds.iter().copied()) {
                Some(kind) => format!("did you mean `{kind}`?"),
                None => format!("kinds are {}", kinds.join(", ")),
            };
            let message = format!("unknown kind `{}`", written.value);
            table.decoder.error(&written.loc, &table.key_path("kind"), message, Some(hint));
            None
        }
    }
}

/// Checks that a name refers to a host of the stage.
fn known_host(table: &Table, key: &str, name: &Str, hosts: &[Host]) -> Option<String> {
    if hosts.iter().any(|host| host.name == name.value) {
        return Some(name.value.clone());
    }
    let names: Vec<&str> = hosts.iter().map(|host| host.name.as_str()).collect();
    let hint = match did_you_mean(&name.value, names.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None if names.is_empty() => "the stage defines no hosts".into(),
        None => format!("hosts of this stage: {}", names.join(", ")),
    };
    let message = format!("`{}` is not a host of stage `{}`", name.value, table.decoder.stage);
    table.decoder.error(&name.loc, key, message, Some(hint));
    None
}

fn required_host(table: &Table, hosts: &[Host]) -> Option<String> {
    match table.string("host") {
        Some(host) => known_host(table, &table.key_path("host"), &host, hosts),
        None => {
            table.missing("host", Some("the host where the admin commands run, e.g. `host = \"lb1\"`".into()));
            None
        }
    }
}

fn optional_host(table: &Table, hosts: &[Host]) -> Result<Option<String>, ()> {
    match table.string("host") {
        Some(host) => known_host(table, &table.key_path("host"), &host, hosts).map(Some).ok_or(()),
        None => Ok(None),
    }
}

/// `host → name` mapping; every key must be a host of the stage, every name valid.
fn mapping(table: &Table, key: &'static str, hosts: &[Host]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (host, name) in table.string_map(key).unwrap_or_default() {
        let path = format!("{}.{}", table.key_path(key), host.value);
        if known_host(table, &path, &host, hosts).is_none() {
            continue;
        }
        if !valid_name(&name.value) {
            table.decoder.error(
                &name.loc,
                &path,
                format!("`{}` is not a valid backend name", name.value),
                Some("letters, digits, `.`, `_` and `-`".into()),
            );
            continue;
        }
        out.push((host.value, name.value));
    }
    out
}

/// Varnish addresses backends by their VCL name (`backend.set_health '*.NAME'`): a name that
/// is not a VCL identifier (a letter, then letters, digits, `_`, `-`) can match no backend,
/// and the drain would fail at the first host, after the uploads.
fn vcl_names(table: &Table, hosts: &[Host], backends: &[(String, String)]) {
    let identifier = |name: &str| {
        name.starts_with(|c: char| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let entries = table.raw("backends").and_then(|map| map.entries()).unwrap_or_default();
    for host in hosts.iter().filter(|host| host.has(crate::config::Role::App)) {
        let mapped = backends.iter().find(|(name, _)| *name == host.name);
        let backend = mapped.map_or(host.name.as_str(), |(_, backend)| backend.as_str());
        if identifier(backend) {
            continue;
        }
        let at = entries.iter().find(|entry| entry.key == host.name).map_or(table.loc(), |entry| &entry.val.loc);
        let message = match mapped {
            Some(_) => format!("`{backend}` cannot be the name of a Varnish backend"),
            None => format!("host `{}` is the backend name by default, and cannot be a Varnish backend's", host.name),
        };
        table.decoder.error(
            at,
            &table.key_path("backends"),
            message,
            Some(format!(
                "VCL names are a letter, then letters, digits, `_` and `-`: write the backend's name from your VCL, e.g. `backends = {{ \"{}\" = \"{}\" }}`",
                host.name,
                host.name.replace(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'), "_").trim_start_matches(|c: char| !c.is_ascii_alphabetic())
            )),
        );
    }
}

fn admin_address(table: &Table) -> String {
    match table.string("admin") {
        Some(admin) => {
            let ok = admin
                .value
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|port| port > 0));
            if !ok {
                table.decoder.error(
                    &admin.loc,
                    &table.key_path("admin"),
                    format!("`{}` is not HOST:PORT", admin.value),
                    Some("the varnishd -T address, e.g. `admin = \"127.0.0.1:6082\"`".into()),
                );
            }
            admin.value
        }
        None => "127.0.0.1:6082".into(),
    }
}

fn absolute(table: &Table, key: &'static str, default: &str) -> String {
    match table.string(key) {
        // socat reads `,` and `!!` in an address as options and a second address.
        Some(path) if key == "socket" && path.value.contains([',', '!', '\n', '\r']) => {
            let message = format!(
                "`{}`: a socket path cannot hold `,` or `!` (socat would read options)",
                path.value.escape_debug()
            );
            table.decoder.error(&path.loc, &table.key_path(key), message, None);
            path.value
        }
        Some(path) if path.value.starts_with('/') => path.value,
        Some(path) => {
            let message = format!("`{}` must be an absolute path on the host", path.value);
            table.decoder.error(&path.loc, &table.key_path(key), message, None);
            path.value
        }
        None => default.to_string(),
    }
}

fn instance(table: &Table) -> Option<String> {
    table.string("instance").map(|name| name.value)
}

fn command(table: &Table, key: &'static str, required: bool) -> Option<String> {
    match table.shell_string(key) {
        Some(command) if command.value.trim().is_empty() => {
            table.decoder.error(&command.loc, &table.key_path(key), "empty command", None);
            None
        }
        Some(command) => Some(command.value),
        None if required => {
            table.missing(key, Some(format!("a shell command; `{{host}}` and `{{backend}}` are replaced, e.g. `{key} = \"lb-cli {key} {{backend}}\"`")));
            None
        }
        None => None,
    }
}

/// Decodes `[balancer]` (absent = kind none); reports its unknown keys once the kind is known.
pub fn balancer(table: Option<Table>, hosts: &[Host]) -> Option<Balancer> {
    let Some(table) = table else {
        return Some(Balancer::None);
    };
    let kind = kind(&table, &BALANCER_KINDS)?;
    let balancer = balancer_of(&table, kind, hosts);
    table.finish();
    balancer
}

fn balancer_of(table: &Table, kind: &str, hosts: &[Host]) -> Option<Balancer> {
    let balancer = match kind {
        "none" => Balancer::None,
        "varnish" => {
            let host = required_host(table, hosts);
            let backends = mapping(table, "backends", hosts);
            vcl_names(table, hosts, &backends);
            Balancer::Varnish {
                admin: admin_address(table),
                secret: absolute(table, "secret", "/etc/varnish/secret"),
                instance: instance(table),
                backends,
                host: host?,
            }
        }
        "haproxy" => {
            let host = required_host(table, hosts);
            let socket = absolute(table, "socket", "/run/haproxy/admin.sock");
            let backend = match table.string("backend") {
                Some(backend) if valid_name(&backend.value) => backend.value,
                Some(backend) => {
                    table.decoder.error(
                        &backend.loc,
                        &table.key_path("backend"),
                        format!("`{}` is not a valid HAProxy backend name", backend.value),
                        None,
                    );
                    backend.value
                }
                None => "app".into(),
            };
            Balancer::Haproxy { socket, backend, servers: mapping(table, "servers", hosts), host: host? }
        }
        _ => {
            let host = optional_host(table, hosts);
            let drain = command(table, "drain", true);
            let undrain = command(table, "undrain", true);
            Balancer::Command {
                in_flight: command(table, "in_flight", false),
                healthy: command(table, "healthy", false),
                stats: command(table, "stats", false),
                backends: mapping(table, "backends", hosts),
                host: host.ok()?,
                drain: drain?,
                undrain: undrain?,
            }
        }
    };
    Some(balancer)
}

/// Decodes one `[[http_cache]]`; reports its unknown keys once the kind is known.
/// A Varnish cache on the balancer's host takes the balancer's `admin` and `secret` unless it
/// sets its own: it is the same varnishd.
pub fn http_cache(table: Table, hosts: &[Host], balancer: Option<&Balancer>) -> Option<HttpCache> {
    let kind = kind(&table, &CACHE_KINDS)?;
    let cache = http_cache_of(&table, kind, hosts, balancer);
    table.finish();
    cache
}

fn http_cache_of(table: &Table, kind: &str, hosts: &[Host], balancer: Option<&Balancer>) -> Option<HttpCache> {
    let cache = match kind {
        "varnish" => {
            let host = required_host(table, hosts);
            let bans = table.strings("bans");
            let bans = match bans {
                Some(list) if list.iter().any(|ban| ban.value.trim().is_empty()) => {
                    table.decoder.error(table.loc(), &table.key_path("bans"), "empty ban expression", None);
                    vec![]
                }
                Some(list) => list
                    .into_iter()
                    .filter_map(|ban| match super::ban::problem(&ban.value) {
                        Some(problem) => {
                            let hint = "one ban per string, e.g. `req.url ~ \"^/product/\"`; inside quotes write `\\\"` and `\\\\`";
                            table.decoder.error(&ban.loc, &table.key_path("bans"), problem, Some(hint.into()));
                            None
                        }
                        None => Some(ban.value),
                    })
                    .collect(),
                None => vec!["obj.status != 0".to_string()],
            };
            let host = host?;
            let same = match balancer {
                Some(Balancer::Varnish { host: at, admin, secret, .. }) if *at == host => Some((admin, secret)),
                _ => None,
            };
            let admin = match (table.raw("admin"), same) {
                (None, Some((admin, _))) => admin.clone(),
                _ => admin_address(table),
            };
            let secret = match (table.raw("secret"), same) {
                (None, Some((_, secret))) => secret.clone(),
                _ => absolute(table, "secret", "/etc/varnish/secret"),
            };
            HttpCache::Varnish { admin, secret, bans, host }
        }
        "http" => {
            let host = optional_host(table, hosts);
            let url = super::parts::required_url(table, "e.g. `url = \"http://127.0.0.1/\"`");
            let method = table.string("method").map(|method| method.value).unwrap_or_else(|| "BAN".into());
            if !method.chars().all(|c| c.is_ascii_alphabetic()) || method.is_empty() {
                table.decoder.error(
                    table.loc(),
                    &table.key_path("method"),
                    format!("`{method}` is not an HTTP method"),
                    Some("e.g. `method = \"PURGE\"`".into()),
                );
            }
            let headers = super::parts::headers(table);
            let expect_status = Some(table.int_in("expect_status", 100, 599).map_or(200, |(status, _)| status as u16));

            HttpCache::Http { host: host.ok()?, method: method.to_ascii_uppercase(), url: url?, headers, expect_status }
        }
        _ => {
            let host = optional_host(table, hosts);
            let commands: Vec<String> =
                table.shell_strings("commands").unwrap_or_default().into_iter().map(|command| command.value).collect();
            if commands.is_empty() || commands.iter().any(|command| command.trim().is_empty()) {
                table.decoder.error(
                    table.loc(),
                    &table.key_path("commands"),
                    "a command cache needs non-empty `commands`",
                    Some("e.g. `commands = [\"cdn purge --all\"]`".into()),
                );
            }
            HttpCache::Command { host: host.ok()?, commands }
        }
    };
    Some(cache)
}
