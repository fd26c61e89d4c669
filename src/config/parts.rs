//! Decoding each table of the merged tree into its typed value.

use super::decode::{Str, Table};
use super::hosts::{NAME_RULE, valid_name};
use super::schema::*;
use super::source::{Kind, Loc};

pub fn app(table: &Table, dir: &std::path::Path) -> Option<App> {
    let name = table.string("name");
    let recipe = table.string("recipe").map(|text| text.value);
    let path = table.string("path");
    let keep = table.int_in("keep_releases", 1, 1000).map(|(count, _)| count as u32);
    let repository = table.string("repository");
    let revision = table.string("revision").map(|text| text.value);
    let name = match name {
        Some(name) if valid_name(&name.value) => Some(name.value),
        Some(name) => {
            table.decoder.error(
                &name.loc,
                &table.key_path("name"),
                format!("`{}` is not a valid app name", name.value),
                Some(NAME_RULE.into()),
            );
            None
        }
        None => {
            let folder = dir.file_name().map(|name| name.to_string_lossy().into_owned());
            let example = folder.filter(|folder| valid_name(folder)).unwrap_or_else(|| "shop".into());
            table.missing("name", Some(format!("e.g. `name = \"{example}\"`")));
            None
        }
    };
    let path = match path {
        Some(path) => check_deploy_path(table, &path),
        None => {
            let example = name.as_deref().unwrap_or("shop");
            table.missing("path", Some(format!("the deploy path on every host, e.g. `path = \"/var/www/{example}\"`")));
            None
        }
    };
    let repository = match repository {
        Some(repo) if repo.value.starts_with('/') => std::path::PathBuf::from(repo.value),
        Some(repo) => dir.join(repo.value),
        None => dir.to_path_buf(),
    };
    Some(App { name: name?, recipe, path: path?, keep_releases: keep.unwrap_or(5), repository, revision })
}

fn check_deploy_path(table: &Table, path: &Str) -> Option<String> {
    let key = table.key_path("path");
    let trimmed = path.value.trim_end_matches('/');
    if !path.value.starts_with('/') {
        table.decoder.error(
            &path.loc,
            &key,
            format!("deploy path `{}` is relative", path.value),
            Some(format!("use an absolute path, e.g. `/{}`", path.value.trim_start_matches("./"))),
        );
        return None;
    }
    if trimmed.is_empty() || trimmed.split('/').any(|part| part == ".." || part == ".") {
        table.decoder.error(
            &path.loc,
            &key,
            format!("deploy path `{}` must be a plain absolute folder (not `/`, no `.` or `..`)", path.value),
            None,
        );
        return None;
    }
    Some(trimmed.to_string())
}

pub fn build(table: Option<&Table>) -> Build {
    let Some(table) = table else { return Build::default() };
    let commands = non_empty_commands(table, "commands");
    let exclude: Vec<String> = table
        .strings("exclude")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pattern| {
            if pattern.value.split('/').any(|part| part == "..") || pattern.value.trim_matches('/').is_empty() {
                table.decoder.error(
                    &pattern.loc,
                    &table.key_path("exclude"),
                    format!("exclude pattern `{}` must name paths inside the build, without `..`", pattern.value),
                    Some("rsync-style: `/tests/` at the top, `__pycache__/` or `*.map` at any depth".into()),
                );
                None
            } else {
                Some(pattern.value)
            }
        })
        .collect();
    let reuse = match table.string("reuse") {
        None => Reuse::Copy,
        Some(how) => match how.value.as_str() {
            "copy" => Reuse::Copy,
            "hardlink" => Reuse::Hardlink,
            other => {
                table.decoder.error(
                    &how.loc,
                    &table.key_path("reuse"),
                    format!("unknown reuse `{other}`"),
                    Some("`copy` (the default: the new release has its own files) or `hardlink` (shared with the live release: nothing may write into it)".into()),
                );
                Reuse::Copy
            }
        },
    };
    Build { commands, exclude, delta: table.bool("delta").unwrap_or(true), reuse }
}

/// A list of shell commands, none of them blank.
fn non_empty_commands(table: &Table, key: &'static str) -> Vec<String> {
    table
        .shell_strings(key)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|command| {
            if command.value.trim().is_empty() {
                table.decoder.error(
                    &command.loc,
                    &table.key_path(key),
                    "empty command",
                    Some("remove the empty string from the list".into()),
                );
                None
            } else {
                Some(command.value)
            }
        })
        .collect()
}

pub fn shared(table: Option<&Table>) -> SharedPaths {
    let Some(table) = table else { return SharedPaths::default() };
    let dirs = relative_paths(table, "dirs", "shared path");
    let files = relative_paths(table, "files", "shared path");
    SharedPaths { dirs, files }
}

/// A list of paths relative to the release (`var/log`): not empty, not absolute, never out
/// of the release. `what` names them in errors.
pub fn relative_paths(table: &Table, key: &'static str, what: &str) -> Vec<String> {
    table
        .strings(key)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|path| {
            let trimmed = path.value.trim_end_matches('/');
            let bad = if trimmed.is_empty() {
                Some("is empty")
            } else if trimmed.starts_with('/') {
                Some("is absolute")
            } else if trimmed.split('/').any(|part| part == "..") {
                Some("escapes the release with `..`")
            } else if trimmed.split('/').any(|part| part == "." || part.is_empty()) {
                Some("has an empty or `.` component")
            } else {
                None
            };
            match bad {
                Some(why) => {
                    table.decoder.error(
                        &path.loc,
                        &table.key_path(key),
                        format!("{what} `{}` {why}", path.value),
                        Some(format!("{what}s are relative to the release, e.g. `var/log`")),
                    );
                    None
                }
                None => Some(trimmed.to_string()),
            }
        })
        .collect()
}

pub fn hooks(table: Option<&Table>) -> (Hooks, Option<Str>) {
    let Some(table) = table else {
        return (Hooks::default(), None);
    };
    let timeout = table.duration("timeout", false).unwrap_or(HOOK_TIMEOUT);
    let prepare = non_empty_commands(table, "prepare");
    let activate = non_empty_commands(table, "activate");
    let migrate = table.shell_string("migrate");
    // `migrate = ""` turns a recipe's migrations off.
    let migrate = migrate.filter(|command| !command.value.trim().is_empty());
    let post_migrate = table.shell_string("post_migrate").filter(|command| !command.value.trim().is_empty());
    let worker = match table.table("worker") {
        Some(worker) => {
            let hooks = WorkerHooks {
                prepare: non_empty_commands(&worker, "prepare"),
                activate: non_empty_commands(&worker, "activate"),
            };
            worker.finish();
            hooks
        }
        None => WorkerHooks::default(),
    };
    let command = migrate.as_ref().map(|command| command.value.clone());
    let post = post_migrate.as_ref().map(|command| command.value.clone());
    // Either one needs a host with the role `migrate`: the first found names the place.
    let loc = migrate.or(post_migrate);
    (Hooks { prepare, activate, migrate: command, post_migrate: post, worker, timeout }, loc)
}

pub fn health(table: Option<&Table>) -> Health {
    let mut health = Health {
        url: None,
        from: HealthFrom::Host,
        expect_status: 200,
        timeout: std::time::Duration::from_secs(5),
        retries: 20,
        interval: std::time::Duration::from_millis(500),
        headers: Vec::new(),
    };
    let Some(table) = table else { return health };
    health.headers = headers(table);
    if let Some(url) = table.string("url") {
        if url.value.is_empty() {
            // `url = ""` turns a recipe's health check off.
        } else if url.value.starts_with("http://") || url.value.starts_with("https://") {
            health.url = Some(url.value);
        } else {
            table.decoder.error(
                &url.loc,
                &table.key_path("url"),
                format!("`{}` is not an http(s) URL", url.value),
                Some("e.g. `url = \"http://{address}/health\"`".into()),
            );
        }
    }
    if let Some(from) = table.string("from") {
        match from.value.as_str() {
            "host" => health.from = HealthFrom::Host,
            "local" => health.from = HealthFrom::Local,
            other => table.decoder.error(
                &from.loc,
                &table.key_path("from"),
                format!("expected \"host\" or \"local\", found `{other}`"),
                None,
            ),
        }
    }
    if let Some((status, _)) = table.int_in("expect_status", 100, 599) {
        health.expect_status = status as u16;
    }
    if let Some(timeout) = table.duration("timeout", false) {
        health.timeout = timeout;
    }
    if let Some((retries, _)) = table.int_in("retries", 1, 10_000) {
        health.retries = retries as u32;
    }
    if let Some(interval) = table.duration("interval", true) {
        health.interval = interval;
    }
    health
}

/// `headers = { Name = "value" }`: names are HTTP tokens, values one line.
pub fn headers(table: &Table) -> Vec<(String, String)> {
    let entries = table.string_map("headers").unwrap_or_default();
    let path = table.key_path("headers");
    let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    entries
        .into_iter()
        .filter(|(name, value)| {
            if name.value.is_empty() || !name.value.chars().all(token) {
                let message = format!("`{}` is not an HTTP header name", name.value);
                table.decoder.error(&name.loc, &path, message, Some("e.g. `Host` or `X-Health-Token`".into()));
                false
            } else if value.value.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
                let message = format!("the value of header `{}` spans lines", name.value);
                table.decoder.error(&value.loc, &path, message, Some("a header value is one line".into()));
                false
            } else {
                true
            }
        })
        .map(|(name, value)| (name.value, value.value))
        .collect()
}

/// Rolling settings; also returns where `batch` and `min_in_service` were written, for the
/// cross-check against the host count.
pub fn rolling(table: Option<&Table>) -> (Rolling, Option<Loc>, Option<Loc>) {
    let mut rolling = Rolling {
        batch: BatchSize::Count(1),
        drain_timeout: std::time::Duration::from_secs(30),
        min_in_service: u32::MAX, // resolved by the caller from the host count
        canary: None,
        soak: None,
        canary_loc: None,
    };
    let Some(table) = table else { return (rolling, None, None) };
    let mut batch_loc = None;
    if let Some(value) = table.raw("batch") {
        batch_loc = Some(value.loc.clone());
        let parsed = match &value.kind {
            Kind::Int(count) if *count >= 0 && *count <= u32::MAX as i64 => BatchSize::parse(&count.to_string()),
            Kind::Int(count) => Err(format!("a batch of {count} hosts is not possible")),
            Kind::Str(text) => BatchSize::parse(text),
            other => {
                Err(format!("expected a number of hosts or a percentage like \"25%\", found {}", other.describe()))
            }
        };
        match parsed {
            Ok(batch) => rolling.batch = batch,
            Err(message) => table.decoder.error(&value.loc, &table.key_path("batch"), message, None),
        }
    }
    if let Some(timeout) = table.duration("drain_timeout", true) {
        rolling.drain_timeout = timeout;
    }
    let mut min_loc = None;
    if let Some((min, loc)) = table.int_in("min_in_service", 0, 10_000) {
        rolling.min_in_service = min as u32;
        min_loc = Some(loc);
    }
    (rolling.canary, rolling.soak, rolling.canary_loc) = super::canary::from_rolling(table);
    (rolling, batch_loc, min_loc)
}

pub fn ssh(table: Option<&Table>) -> Ssh {
    let Some(table) = table else { return Ssh::default() };
    Ssh {
        user: table.string("user").map(|text| text.value),
        config: table.string("config").map(|text| text.value),
        identity: table.string("identity").map(|text| text.value),
        known_hosts: table.string("known_hosts").map(|text| text.value),
        port: table.int_in("port", 1, 65535).map(|(port, _)| port as u16),
    }
}

/// The required `url` key: an http(s) URL.
pub fn required_url(table: &Table, example: &str) -> Option<String> {
    match table.string("url") {
        Some(url) if url.value.starts_with("http://") || url.value.starts_with("https://") => Some(url.value),
        Some(url) => {
            let message = format!("`{}` is not an http(s) URL", url.value);
            table.decoder.error(&url.loc, &table.key_path("url"), message, None);
            None
        }
        None => {
            table.missing("url", Some(example.into()));
            None
        }
    }
}
