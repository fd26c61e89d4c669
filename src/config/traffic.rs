//! Decoding `[balancer]` and `[[http_cache]]`, whose hosts must be hosts of the stage.

use super::decode::{Str, Table};
use super::error::did_you_mean;
use super::schema::{Balancer, Host, HttpCache};

const BALANCER_KINDS: [&str; 4] = ["varnish", "haproxy", "command", "none"];
const CACHE_KINDS: [&str; 3] = ["varnish", "http", "command"];

fn kind<'a>(t: &Table, kinds: &[&'a str]) -> Option<&'a str> {
    let Some(k) = t.string("kind") else {
        t.missing("kind", Some(format!("one of: {}", kinds.join(", "))));
        return None;
    };
    match kinds.iter().find(|x| **x == k.value) {
        Some(x) => Some(x),
        None => {
            let hint = match did_you_mean(&k.value, kinds.iter().copied()) {
                Some(x) => format!("did you mean `{x}`?"),
                None => format!("kinds are {}", kinds.join(", ")),
            };
            t.d.error(&k.loc, &t.key_path("kind"), format!("unknown kind `{}`", k.value), Some(hint));
            None
        }
    }
}

/// Checks that a name refers to a host of the stage.
fn known_host(t: &Table, key: &str, s: &Str, hosts: &[Host]) -> Option<String> {
    if hosts.iter().any(|h| h.name == s.value) {
        return Some(s.value.clone());
    }
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let hint = match did_you_mean(&s.value, names.iter().copied()) {
        Some(n) => format!("did you mean `{n}`?"),
        None if names.is_empty() => "the stage defines no hosts".into(),
        None => format!("hosts of this stage: {}", names.join(", ")),
    };
    t.d.error(&s.loc, key, format!("`{}` is not a host of stage `{}`", s.value, t.d.stage), Some(hint));
    None
}

fn required_host(t: &Table, hosts: &[Host]) -> Option<String> {
    match t.string("host") {
        Some(h) => known_host(t, &t.key_path("host"), &h, hosts),
        None => {
            t.missing("host", Some("the host where the admin commands run, e.g. `host = \"lb1\"`".into()));
            None
        }
    }
}

fn optional_host(t: &Table, hosts: &[Host]) -> Result<Option<String>, ()> {
    match t.string("host") {
        Some(h) => known_host(t, &t.key_path("host"), &h, hosts).map(Some).ok_or(()),
        None => Ok(None),
    }
}

/// `host → name` mapping; every key must be a host of the stage, every name valid.
fn mapping(t: &Table, key: &'static str, hosts: &[Host]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (h, name) in t.string_map(key).unwrap_or_default() {
        let path = format!("{}.{}", t.key_path(key), h.value);
        if known_host(t, &path, &h, hosts).is_none() {
            continue;
        }
        if !super::parts::valid_name(&name.value) {
            t.d.error(
                &name.loc,
                &path,
                format!("`{}` is not a valid backend name", name.value),
                Some("letters, digits, `.`, `_` and `-`".into()),
            );
            continue;
        }
        out.push((h.value, name.value));
    }
    out
}

fn admin_address(t: &Table) -> String {
    match t.string("admin") {
        Some(a) => {
            let ok =
                a.value.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
            if !ok {
                t.d.error(
                    &a.loc,
                    &t.key_path("admin"),
                    format!("`{}` is not HOST:PORT", a.value),
                    Some("the varnishd -T address, e.g. `admin = \"127.0.0.1:6082\"`".into()),
                );
            }
            a.value
        }
        None => "127.0.0.1:6082".into(),
    }
}

fn absolute(t: &Table, key: &'static str, default: &str) -> String {
    match t.string(key) {
        Some(s) if s.value.starts_with('/') => s.value,
        Some(s) => {
            t.d.error(&s.loc, &t.key_path(key), format!("`{}` must be an absolute path on the host", s.value), None);
            s.value
        }
        None => default.to_string(),
    }
}

fn instance(t: &Table) -> Option<String> {
    t.string("instance").map(|s| s.value)
}

fn command(t: &Table, key: &'static str, required: bool) -> Option<String> {
    match t.string(key) {
        Some(s) if s.value.trim().is_empty() => {
            t.d.error(&s.loc, &t.key_path(key), "empty command", None);
            None
        }
        Some(s) => Some(s.value),
        None if required => {
            t.missing(key, Some(format!("a shell command; `{{host}}` and `{{backend}}` are replaced, e.g. `{key} = \"lb-cli {key} {{backend}}\"`")));
            None
        }
        None => None,
    }
}

/// Decodes `[balancer]` (absent = kind none); reports its unknown keys once the kind is known.
pub fn balancer(t: Option<Table>, hosts: &[Host]) -> Option<Balancer> {
    let Some(t) = t else {
        return Some(Balancer::None);
    };
    let k = kind(&t, &BALANCER_KINDS)?;
    let b = balancer_of(&t, k, hosts);
    t.finish();
    b
}

fn balancer_of(t: &Table, kind: &str, hosts: &[Host]) -> Option<Balancer> {
    let b = match kind {
        "none" => Balancer::None,
        "varnish" => {
            let host = required_host(t, hosts);
            Balancer::Varnish {
                admin: admin_address(t),
                secret: absolute(t, "secret", "/etc/varnish/secret"),
                instance: instance(t),
                backends: mapping(t, "backends", hosts),
                host: host?,
            }
        }
        "haproxy" => {
            let host = required_host(t, hosts);
            let socket = absolute(t, "socket", "/run/haproxy/admin.sock");
            let backend = match t.string("backend") {
                Some(b) if super::parts::valid_name(&b.value) => b.value,
                Some(b) => {
                    t.d.error(
                        &b.loc,
                        &t.key_path("backend"),
                        format!("`{}` is not a valid HAProxy backend name", b.value),
                        None,
                    );
                    b.value
                }
                None => "app".into(),
            };
            Balancer::Haproxy { socket, backend, servers: mapping(t, "servers", hosts), host: host? }
        }
        _ => {
            let host = optional_host(t, hosts);
            let drain = command(t, "drain", true);
            let undrain = command(t, "undrain", true);
            Balancer::Command {
                in_flight: command(t, "in_flight", false),
                healthy: command(t, "healthy", false),
                backends: mapping(t, "backends", hosts),
                host: host.ok()?,
                drain: drain?,
                undrain: undrain?,
            }
        }
    };
    Some(b)
}

/// Decodes one `[[http_cache]]`; reports its unknown keys once the kind is known.
pub fn http_cache(t: Table, hosts: &[Host]) -> Option<HttpCache> {
    let k = kind(&t, &CACHE_KINDS)?;
    let c = http_cache_of(&t, k, hosts);
    t.finish();
    c
}

fn http_cache_of(t: &Table, kind: &str, hosts: &[Host]) -> Option<HttpCache> {
    let c = match kind {
        "varnish" => {
            let host = required_host(t, hosts);
            let bans = t.strings("bans");
            let bans = match bans {
                Some(list) if list.iter().any(|b| b.value.trim().is_empty()) => {
                    t.d.error(t.loc(), &t.key_path("bans"), "empty ban expression", None);
                    vec![]
                }
                Some(list) => list.into_iter().map(|b| b.value).collect(),
                None => vec!["obj.status != 0".to_string()],
            };
            HttpCache::Varnish {
                admin: admin_address(t),
                secret: absolute(t, "secret", "/etc/varnish/secret"),
                bans,
                host: host?,
            }
        }
        "http" => {
            let host = optional_host(t, hosts);
            let url = super::parts::required_url(t, "e.g. `url = \"http://127.0.0.1/\"`");
            let method = t.string("method").map(|m| m.value).unwrap_or_else(|| "BAN".into());
            if !method.chars().all(|c| c.is_ascii_alphabetic()) || method.is_empty() {
                t.d.error(
                    t.loc(),
                    &t.key_path("method"),
                    format!("`{method}` is not an HTTP method"),
                    Some("e.g. `method = \"PURGE\"`".into()),
                );
            }
            let headers: Vec<(String, String)> =
                t.string_map("headers").unwrap_or_default().into_iter().map(|(k, v)| (k.value, v.value)).collect();
            let expect_status = Some(t.int_in("expect_status", 100, 599).map_or(200, |(n, _)| n as u16));

            HttpCache::Http { host: host.ok()?, method: method.to_ascii_uppercase(), url: url?, headers, expect_status }
        }
        _ => {
            let host = optional_host(t, hosts);
            let commands: Vec<String> =
                t.strings("commands").unwrap_or_default().into_iter().map(|s| s.value).collect();
            if commands.is_empty() || commands.iter().any(|c| c.trim().is_empty()) {
                t.d.error(
                    t.loc(),
                    &t.key_path("commands"),
                    "a command cache needs non-empty `commands`",
                    Some("e.g. `commands = [\"cdn purge --all\"]`".into()),
                );
            }
            HttpCache::Command { host: host.ok()?, commands }
        }
    };
    Some(c)
}
