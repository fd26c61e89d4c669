//! Decoding each table of the merged tree into its typed value.

use super::decode::{Str, Table};
use super::schema::*;
use crate::config::error::did_you_mean;

/// Names a host, stage or backend may have: they end up in paths, balancer commands and logs.
pub fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric())
}

const NAME_RULE: &str = "use letters, digits, `.`, `_` and `-`, starting with a letter or digit";

pub fn app(t: &Table, dir: &std::path::Path) -> Option<App> {
    let name = t.string("name");
    let recipe = t.string("recipe").map(|s| s.value);
    let path = t.string("path");
    let keep = t.int_in("keep_releases", 1, 1000).map(|(n, _)| n as u32);
    let repository = t.string("repository");
    let revision = t.string("revision").map(|s| s.value);
    let name = match name {
        Some(n) if valid_name(&n.value) => Some(n.value),
        Some(n) => {
            t.d.error(
                &n.loc,
                &t.key_path("name"),
                format!("`{}` is not a valid app name", n.value),
                Some(NAME_RULE.into()),
            );
            None
        }
        None => {
            t.missing("name", Some("e.g. `name = \"knifedepot\"`".into()));
            None
        }
    };
    let path = match path {
        Some(p) => check_deploy_path(t, &p),
        None => {
            t.missing("path", Some("the deploy path on every host, e.g. `path = \"/var/www/knifedepot\"`".into()));
            None
        }
    };
    let repository = match repository {
        Some(r) if r.value.starts_with('/') => std::path::PathBuf::from(r.value),
        Some(r) => dir.join(r.value),
        None => dir.to_path_buf(),
    };
    Some(App { name: name?, recipe, path: path?, keep_releases: keep.unwrap_or(5), repository, revision })
}

fn check_deploy_path(t: &Table, p: &Str) -> Option<String> {
    let key = t.key_path("path");
    let v = p.value.trim_end_matches('/');
    if !p.value.starts_with('/') {
        t.d.error(
            &p.loc,
            &key,
            format!("deploy path `{}` is relative", p.value),
            Some("use an absolute path, e.g. `/var/www/knifedepot`".into()),
        );
        return None;
    }
    if v.is_empty() || v.split('/').any(|c| c == ".." || c == ".") {
        t.d.error(
            &p.loc,
            &key,
            format!("deploy path `{}` must be a plain absolute folder (not `/`, no `.` or `..`)", p.value),
            None,
        );
        return None;
    }
    Some(v.to_string())
}

pub fn build(t: Option<&Table>) -> Build {
    let Some(t) = t else { return Build::default() };
    let commands = non_empty_commands(t, "commands");
    let exclude: Vec<String> = t
        .strings("exclude")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| {
            if s.value.split('/').any(|c| c == "..") || s.value.trim_matches('/').is_empty() {
                t.d.error(
                    &s.loc,
                    &t.key_path("exclude"),
                    format!("exclude pattern `{}` must name paths inside the build, without `..`", s.value),
                    Some("rsync-style: `/tests/` at the top, `__pycache__/` or `*.map` at any depth".into()),
                );
                None
            } else {
                Some(s.value)
            }
        })
        .collect();
    Build { commands, exclude, delta: t.bool("delta").unwrap_or(true) }
}

/// A list of shell commands, none of them blank.
fn non_empty_commands(t: &Table, key: &'static str) -> Vec<String> {
    t.strings(key)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|s| {
            if s.value.trim().is_empty() {
                t.d.error(
                    &s.loc,
                    &t.key_path(key),
                    "empty command",
                    Some("remove the empty string from the list".into()),
                );
                None
            } else {
                Some(s.value)
            }
        })
        .collect()
}

pub fn shared(t: Option<&Table>) -> Shared {
    let Some(t) = t else { return Shared::default() };
    let check = |key: &'static str| -> Vec<String> {
        t.strings(key)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|s| {
                let v = s.value.trim_end_matches('/');
                let bad = if v.is_empty() {
                    Some("is empty")
                } else if v.starts_with('/') {
                    Some("is absolute")
                } else if v.split('/').any(|c| c == "..") {
                    Some("escapes the release with `..`")
                } else if v.split('/').any(|c| c == "." || c.is_empty()) {
                    Some("has an empty or `.` component")
                } else {
                    None
                };
                match bad {
                    Some(why) => {
                        t.d.error(
                            &s.loc,
                            &t.key_path(key),
                            format!("shared path `{}` {why}", s.value),
                            Some("shared paths are relative to the release, e.g. `var/log`".into()),
                        );
                        None
                    }
                    None => Some(v.to_string()),
                }
            })
            .collect()
    };
    let dirs = check("dirs");
    let files = check("files");
    Shared { dirs, files }
}

pub fn hooks(t: Option<&Table>) -> (Hooks, Option<Str>) {
    let Some(t) = t else {
        return (Hooks::default(), None);
    };
    let prepare = non_empty_commands(t, "prepare");
    let activate = non_empty_commands(t, "activate");
    let migrate = t.string("migrate");
    // `migrate = ""` turns a recipe's migrations off.
    let migrate = migrate.filter(|m| !m.value.trim().is_empty());
    let worker = match t.table("worker") {
        Some(w) => {
            let h = WorkerHooks {
                prepare: non_empty_commands(&w, "prepare"),
                activate: non_empty_commands(&w, "activate"),
            };
            w.finish();
            h
        }
        None => WorkerHooks::default(),
    };
    (Hooks { prepare, activate, migrate: migrate.as_ref().map(|m| m.value.clone()), worker }, migrate)
}

pub fn health(t: Option<&Table>) -> Health {
    let mut h = Health {
        url: None,
        from: HealthFrom::Host,
        expect_status: 200,
        timeout: std::time::Duration::from_secs(5),
        retries: 20,
        interval: std::time::Duration::from_millis(500),
    };
    let Some(t) = t else { return h };
    if let Some(u) = t.string("url") {
        if u.value.is_empty() {
            // `url = ""` turns a recipe's health check off.
        } else if u.value.starts_with("http://") || u.value.starts_with("https://") {
            h.url = Some(u.value);
        } else {
            t.d.error(
                &u.loc,
                &t.key_path("url"),
                format!("`{}` is not an http(s) URL", u.value),
                Some("e.g. `url = \"http://{address}/health\"`".into()),
            );
        }
    }
    if let Some(f) = t.string("from") {
        match f.value.as_str() {
            "host" => h.from = HealthFrom::Host,
            "local" => h.from = HealthFrom::Local,
            other => {
                t.d.error(&f.loc, &t.key_path("from"), format!("expected \"host\" or \"local\", found `{other}`"), None)
            }
        }
    }
    if let Some((n, _)) = t.int_in("expect_status", 100, 599) {
        h.expect_status = n as u16;
    }
    if let Some(d) = t.duration("timeout", false) {
        h.timeout = d;
    }
    if let Some((n, _)) = t.int_in("retries", 1, 10_000) {
        h.retries = n as u32;
    }
    if let Some(d) = t.duration("interval", true) {
        h.interval = d;
    }
    h
}

/// Rolling settings; also returns where `batch` and `min_in_service` were written, for the
/// cross-check against the host count.
pub fn rolling(t: Option<&Table>) -> (Rolling, Option<super::source::Loc>, Option<super::source::Loc>) {
    let mut r = Rolling {
        batch: Batch::Count(1),
        drain_timeout: std::time::Duration::from_secs(30),
        min_in_service: u32::MAX, // resolved by the caller from the host count
    };
    let Some(t) = t else { return (r, None, None) };
    let mut batch_loc = None;
    if let Some(v) = t.raw("batch") {
        batch_loc = Some(v.loc.clone());
        let parsed = match &v.kind {
            super::source::Kind::Int(n) if *n >= 0 && *n <= u32::MAX as i64 => Batch::parse(&n.to_string()),
            super::source::Kind::Int(n) => Err(format!("a batch of {n} hosts is not possible")),
            super::source::Kind::Str(s) => Batch::parse(s),
            other => {
                Err(format!("expected a number of hosts or a percentage like \"25%\", found {}", other.describe()))
            }
        };
        match parsed {
            Ok(b) => r.batch = b,
            Err(e) => t.d.error(&v.loc, &t.key_path("batch"), e, None),
        }
    }
    if let Some(d) = t.duration("drain_timeout", true) {
        r.drain_timeout = d;
    }
    let mut min_loc = None;
    if let Some((n, loc)) = t.int_in("min_in_service", 0, 10_000) {
        r.min_in_service = n as u32;
        min_loc = Some(loc);
    }
    (r, batch_loc, min_loc)
}

pub fn ssh(t: Option<&Table>) -> Ssh {
    let Some(t) = t else { return Ssh::default() };
    Ssh {
        user: t.string("user").map(|s| s.value),
        config: t.string("config").map(|s| s.value),
        identity: t.string("identity").map(|s| s.value),
        known_hosts: t.string("known_hosts").map(|s| s.value),
        port: t.int_in("port", 1, 65535).map(|(n, _)| n as u16),
    }
}

/// One `{ name, address, roles }` host, with where its name was written.
pub fn host(t: &Table) -> Option<(Host, Str)> {
    let name = t.string("name");
    let address = t.string("address");
    let roles = t.strings("roles");
    let port = t.int_in("port", 1, 65535).map(|(n, _)| n as u16);
    let user = t.string("user").map(|s| s.value);
    let name = match name {
        Some(n) if valid_name(&n.value) => Some(n),
        Some(n) => {
            t.d.error(
                &n.loc,
                &t.key_path("name"),
                format!("`{}` is not a valid host name", n.value),
                Some(NAME_RULE.into()),
            );
            None
        }
        None => {
            t.missing("name", Some("every host needs `name`, `address` and `roles`, e.g. `{ name = \"web1\", address = \"10.0.0.11\", roles = [\"app\"] }`".into()));
            None
        }
    };
    let address = match address {
        Some(a) if !a.value.trim().is_empty() && !a.value.contains(char::is_whitespace) => Some(a.value),
        Some(a) => {
            t.d.error(
                &a.loc,
                &t.key_path("address"),
                format!("`{}` is not a host address", a.value),
                Some("an IP address or a DNS name".into()),
            );
            None
        }
        None => {
            t.missing("address", Some("the IP address or DNS name ssh connects to".into()));
            None
        }
    };
    let roles = match roles {
        Some(list) if list.is_empty() => {
            t.d.error(
                t.raw("roles").map(|v| &v.loc).unwrap_or(t.loc()),
                &t.key_path("roles"),
                "a host needs at least one role",
                Some("roles are app, worker, migrate and balancer".into()),
            );
            None
        }
        Some(list) => {
            let mut out = Vec::new();
            for (i, r) in list.iter().enumerate() {
                match Role::ALL.iter().find(|(n, _)| *n == r.value) {
                    Some((_, role)) if !out.contains(role) => out.push(*role),
                    Some(_) => {}
                    None => {
                        let names = Role::ALL.map(|(n, _)| n);
                        let hint = match did_you_mean(&r.value, names) {
                            Some(n) => format!("did you mean `{n}`?"),
                            None => format!("roles are {}", names.join(", ")),
                        };
                        t.d.error(
                            &r.loc,
                            &format!("{}[{i}]", t.key_path("roles")),
                            format!("unknown role `{}`", r.value),
                            Some(hint),
                        );
                    }
                }
            }
            Some(out)
        }
        None => {
            t.missing("roles", Some("e.g. `roles = [\"app\"]`".into()));
            None
        }
    };
    let name = name?;
    Some((Host { name: name.value.clone(), address: address?, roles: roles?, port, user }, name))
}

/// One `[[notify]]` webhook.
pub fn notify(t: &Table) -> Option<Notify> {
    let kind = match t.string("kind") {
        Some(k) => match k.value.as_str() {
            "slack" => Some(NotifyKind::Slack),
            "json" => Some(NotifyKind::Json),
            other => {
                let hint = did_you_mean(other, ["slack", "json"])
                    .map_or("kinds are slack and json".to_string(), |x| format!("did you mean `{x}`?"));
                t.d.error(&k.loc, &t.key_path("kind"), format!("unknown kind `{other}`"), Some(hint));
                None
            }
        },
        None => {
            t.missing("kind", Some("`slack` (Slack-compatible `{\"text\": …}`) or `json`".into()));
            None
        }
    };
    let url = required_url(t, "e.g. `url = \"${SLACK_WEBHOOK_URL}\"`");
    let on = match t.strings("on") {
        Some(list) => {
            let mut out = Vec::new();
            for (i, s) in list.iter().enumerate() {
                match NotifyOn::ALL.iter().find(|(n, _)| *n == s.value) {
                    Some((_, o)) => out.push(*o),
                    None => {
                        let names = NotifyOn::ALL.map(|(n, _)| n);
                        let hint = did_you_mean(&s.value, names)
                            .map_or(format!("moments are {}", names.join(", ")), |x| format!("did you mean `{x}`?"));
                        t.d.error(
                            &s.loc,
                            &format!("{}[{i}]", t.key_path("on")),
                            format!("unknown moment `{}`", s.value),
                            Some(hint),
                        );
                    }
                }
            }
            out
        }
        None => NotifyOn::ALL.iter().map(|(_, o)| *o).collect(),
    };
    Some(Notify { kind: kind?, url: url?, on })
}

/// The required `url` key: an http(s) URL.
pub fn required_url(t: &Table, example: &str) -> Option<String> {
    match t.string("url") {
        Some(u) if u.value.starts_with("http://") || u.value.starts_with("https://") => Some(u.value),
        Some(u) => {
            t.d.error(&u.loc, &t.key_path("url"), format!("`{}` is not an http(s) URL", u.value), None);
            None
        }
        None => {
            t.missing("url", Some(example.into()));
            None
        }
    }
}
