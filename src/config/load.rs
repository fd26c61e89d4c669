//! From `Deploy.toml` text to a validated [`Config`] for one stage.

use super::decode::{Decoder, EnvLookup, Table};
use super::error::{ConfigError, ConfigErrors, did_you_mean};
use super::schema::*;
use super::source::{self, Kind, Sources, Val};
use super::{parts, recipes, traffic};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Names a stage may not have: `deploy NAME` would be read as the command.
pub const COMMAND_NAMES: &[&str] =
    &["rollback", "plan", "releases", "check", "unlock", "exec", "init", "help", "completions", "man"];

/// Tables a stage may override.
const OVERRIDABLE: &[&str] =
    &["app", "build", "shared", "hooks", "health", "rolling", "ssh", "balancer", "http_cache", "notify"];

/// Keys only a stage has.
const STAGE_ONLY: &[&str] = &["hosts", "revision", "confirm"];

/// A validated config, resolved for one stage.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    /// Every stage in the file, in file order.
    pub stages: Vec<String>,
    pub stage: StageConfig,
    /// Values read from the environment and the `${VAR}` to show instead of them.
    pub redactions: Vec<(String, String)>,
}

impl Config {
    /// Replaces every secret read from the environment with its `${VAR}`.
    pub fn redact(&self, text: &str) -> String {
        redact(&self.redactions, text)
    }
}

/// The secrets of the config this process loaded, for text printed far from the config
/// (the final error message).
static LOADED: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Remembers the loaded config's secrets (first load wins).
pub fn remember_secrets(redactions: &[(String, String)]) {
    let _ = LOADED.set(redactions.to_vec());
}

/// [`redact`] with the secrets of the config this process loaded.
pub fn redact_loaded(text: &str) -> String {
    LOADED.get().map_or_else(|| text.to_string(), |r| redact(r, text))
}

pub fn redact(redactions: &[(String, String)], text: &str) -> String {
    let mut out = text.to_string();
    for (value, name) in redactions {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), name);
        }
    }
    out
}

/// Every (table, key) the schema reads, found by decoding `text` (every stage of it): the
/// source of truth the reference docs are checked against.
pub fn schema_keys(text: &str) -> std::collections::BTreeSet<(String, &'static str)> {
    let mut sources = Sources::default();
    let file = sources.add("Deploy.toml", text);
    let top = source::parse(file, text).expect("valid TOML");
    let mut keys = std::collections::BTreeSet::new();
    for e in top.get("stages").and_then(Val::entries).unwrap_or_default() {
        let d = Decoder::new(&sources, &e.key, &|_| Some("x".into()), false);
        decode_stage(&d, &top, &e.key, &e.key_loc, &e.val, Path::new("/"), &[]);
        keys.extend(d.asked.into_inner());
    }
    keys
}

/// `Deploy.toml` in `start` or the nearest folder above it.
pub fn find(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|d| d.join("Deploy.toml")).find(|p| p.is_file())
}

/// Parses and validates `text` (read from `name`, in folder `dir`) for `stage`.
pub fn parse(name: &str, text: &str, dir: &Path, stage: &str, env: EnvLookup) -> Result<Config, ConfigErrors> {
    let mut sources = Sources::default();
    let file = sources.add(name, text);
    let mut recipe_srcs = Vec::new();
    for (rname, rtext) in recipes::ALL {
        recipe_srcs.push((*rname, sources.add(format!("recipe {rname} (built in)"), *rtext)));
    }
    let top = source::parse(file, text).map_err(|e| {
        let at = ConfigError::at(&sources, &e.loc, "", format!("invalid TOML: {}", e.message), None);
        ConfigErrors(vec![at])
    })?;

    let mut errors: Vec<ConfigError> = Vec::new();
    let mut redactions = Vec::new();
    let mut chosen = None;

    // Recipes are parsed once; they are tested to be valid.
    let recipe_trees: Vec<(&str, Val)> = recipe_srcs
        .iter()
        .map(|(n, id)| (*n, source::parse(*id, sources.text(*id)).expect("built-in recipe parses")))
        .collect();

    let stage_entries = match top.get("stages") {
        Some(Val { kind: Kind::Table(e), .. }) if !e.is_empty() => e.clone(),
        Some(v @ Val { kind: Kind::Table(_), .. }) => {
            errors.push(ConfigError::at(&sources, &v.loc, "stages", "no stages defined".into(), Some(stage_example())));
            vec![]
        }
        Some(v) => {
            errors.push(ConfigError::at(
                &sources,
                &v.loc,
                "stages",
                format!("expected a table of stages, found {}", v.kind.describe()),
                Some(stage_example()),
            ));
            vec![]
        }
        None => {
            errors.push(ConfigError::at(
                &sources,
                &top.loc,
                "stages",
                "no `[stages.NAME]` table: nothing to deploy to".into(),
                Some(stage_example()),
            ));
            vec![]
        }
    };
    let names: Vec<String> = stage_entries.iter().map(|e| e.key.clone()).collect();

    for e in &stage_entries {
        let strict = e.key == stage;
        let d = Decoder::new(&sources, &e.key, env, strict);
        let cfg = decode_stage(&d, &top, &e.key, &e.key_loc, &e.val, dir, &recipe_trees);
        let (errs, secrets) = d.into_parts();
        for err in errs {
            if !errors.contains(&err) {
                errors.push(err);
            }
        }
        if strict {
            redactions = secrets;
            chosen = cfg;
        }
    }
    if !names.is_empty() && !names.iter().any(|n| n == stage) {
        let hint = match did_you_mean(stage, names.iter().map(String::as_str)) {
            Some(n) => format!("did you mean `{n}`? stages: {}", names.join(", ")),
            None => format!("stages in this file: {}", names.join(", ")),
        };
        let loc = top.get("stages").map(|s| s.loc.clone()).unwrap_or_default();
        errors.push(ConfigError::at(&sources, &loc, "stages", format!("no stage named `{stage}`"), Some(hint)));
    }
    errors.sort_by_key(|e| (e.file != name, e.line, e.col));
    match chosen {
        Some(stage) if errors.is_empty() => {
            // Longest first, so a secret containing another is replaced whole.
            redactions.sort_by_key(|(v, _): &(String, String)| std::cmp::Reverse(v.len()));
            Ok(Config { file: PathBuf::from(name), stages: names, stage, redactions })
        }
        _ => Err(ConfigErrors(errors)),
    }
}

fn stage_example() -> String {
    "add a stage, e.g.\n  [stages.production]\n  hosts = [{ name = \"web1\", address = \"10.0.0.11\", roles = [\"app\", \"migrate\"] }]".into()
}

fn decode_stage(
    d: &Decoder,
    top: &Val,
    name: &str,
    name_loc: &source::Loc,
    stage_val: &Val,
    dir: &Path,
    recipes: &[(&str, Val)],
) -> Option<StageConfig> {
    if COMMAND_NAMES.contains(&name) {
        d.error(
            name_loc,
            &format!("stages.{name}"),
            format!("a stage may not be named `{name}`: `deploy {name}` is a command"),
            Some(format!("rename it, e.g. `[stages.{name}-site]`")),
        );
    } else if !parts::valid_name(name) {
        d.error(
            name_loc,
            &format!("stages.{name}"),
            format!("`{name}` is not a valid stage name"),
            Some("use letters, digits, `.`, `_` and `-`".into()),
        );
    }
    let scope: Rc<str> = Rc::from(format!("stages.{name}."));
    let scoped = source::rescope(stage_val, &scope);
    let st = d.table("", &scoped)?;

    // Stage-only keys.
    let host_tables = st.tables("hosts");
    let revision = st.string("revision").map(|s| s.value);
    let confirm = st.bool("confirm").unwrap_or(false);
    for k in OVERRIDABLE {
        st.raw(k);
    }
    let hosts_loc = st.raw("hosts").map(|v| v.loc.clone()).unwrap_or_else(|| st.loc().clone());
    if host_tables.is_none() && st.raw("hosts").is_none() {
        st.missing(
            "hosts",
            Some("e.g. `hosts = [{ name = \"web1\", address = \"10.0.0.11\", roles = [\"app\"] }]`".into()),
        );
    }
    st.finish();

    // recipe < file < stage
    let over = source::merge(&source::without(top, &["stages"]), &source::without(&scoped, STAGE_ONLY));
    let recipe = over.get("app").and_then(|a| a.get("recipe"));
    let base = match recipe {
        Some(r) => match r.as_str() {
            Some(rn) => match recipes.iter().find(|(n, _)| *n == rn) {
                Some((_, tree)) => Some(tree),
                None => {
                    let names: Vec<&str> = recipes.iter().map(|(n, _)| *n).collect();
                    let hint = match did_you_mean(rn, names.iter().copied()) {
                        Some(n) => {
                            format!("did you mean `{n}`? known recipes: {}", names.join(", "))
                        }
                        None => format!("known recipes: {}", names.join(", ")),
                    };
                    d.error(&r.loc, "app.recipe", format!("unknown recipe `{rn}`"), Some(hint));
                    None
                }
            },
            None => None, // the type error is reported when `app` is read
        },
        None => None,
    };
    let mut merged = match base {
        Some(b) => source::merge(b, &over),
        None => over,
    };
    // The merged root is the file's top level (its own tables keep where they were written).
    merged.loc = top.loc.clone();
    let eff = d.table("", &merged)?;
    eff.raw("stages");

    let hosts = decode_hosts(d, host_tables.unwrap_or_default());
    if hosts.is_empty() && st.raw("hosts").is_some_and(|h| matches!(&h.kind, Kind::Array(a) if a.is_empty())) {
        d.error(&hosts_loc, "hosts", "the host list is empty", Some("add at least one host with role `app`".into()));
    }

    let app = with_table(&eff, "app", |t| parts::app(t, dir));
    if eff.raw("app").is_none() {
        eff.missing("app", Some("add an `[app]` table with `name` and `path`".into()));
    }
    let build = with_table(&eff, "build", |t| Some(parts::build(Some(t)))).unwrap_or_default();
    let shared = with_table(&eff, "shared", |t| Some(parts::shared(Some(t)))).unwrap_or_default();
    let (hooks, migrate_loc) = with_table(&eff, "hooks", |t| Some(parts::hooks(Some(t)))).unwrap_or_default();
    let health = with_table(&eff, "health", |t| Some(parts::health(Some(t)))).unwrap_or_else(|| parts::health(None));
    let (mut rolling, batch_loc, min_loc) =
        with_table(&eff, "rolling", |t| Some(parts::rolling(Some(t)))).unwrap_or_else(|| parts::rolling(None));
    let ssh = with_table(&eff, "ssh", |t| Some(parts::ssh(Some(t)))).unwrap_or_default();
    let balancer = match eff.table("balancer") {
        Some(t) => traffic::balancer(Some(t), &hosts),
        None => Some(Balancer::None),
    };
    let http_cache: Vec<HttpCache> = eff
        .tables("http_cache")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| traffic::http_cache(t, &hosts))
        .collect();
    let notify: Vec<Notify> = eff
        .tables("notify")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|t| {
            let n = parts::notify(&t);
            t.finish();
            n
        })
        .collect();
    eff.finish();

    // Cross-checks between tables.
    let app_hosts = hosts.iter().filter(|h| h.has(Role::App)).count();
    if !hosts.is_empty() && app_hosts == 0 {
        d.error(
            &hosts_loc,
            "hosts",
            "no host has the role `app`",
            Some("give the hosts that serve traffic `roles = [\"app\"]`".into()),
        );
    }
    if let Some(m) = &migrate_loc {
        if !hosts.iter().any(|h| h.has(Role::Migrate)) && !hosts.is_empty() {
            d.error(
                &m.loc,
                "hooks.migrate",
                format!("`hooks.migrate` is set but no host of stage `{name}` has the role `migrate`"),
                Some("add \"migrate\" to the roles of one app host, e.g. `roles = [\"app\", \"migrate\"]`".into()),
            );
        }
    }
    let balanced = balancer.as_ref().is_some_and(|b| !matches!(b, Balancer::None));
    if rolling.min_in_service == u32::MAX {
        rolling.min_in_service = u32::from(balanced && app_hosts >= 2);
    }
    if balanced && app_hosts > 0 {
        if let Err(msg) = check_rolling(app_hosts, rolling.batch, rolling.min_in_service) {
            let (loc, key) = match (&min_loc, &batch_loc) {
                (Some(l), _) => (l, "rolling.min_in_service"),
                (None, Some(l)) => (l, "rolling.batch"),
                (None, None) => (&hosts_loc, "hosts"),
            };
            d.error(
                loc,
                key,
                format!("in stage `{name}`: {msg}"),
                Some("lower `rolling.batch` or `rolling.min_in_service` (0 accepts downtime)".into()),
            );
        }
    }

    if d.has_errors() {
        return None;
    }
    let mut app = app?;
    if revision.is_some() {
        app.revision = revision;
    }
    Some(StageConfig {
        stage: name.to_string(),
        app,
        build,
        shared,
        hooks,
        health,
        rolling,
        ssh,
        hosts,
        balancer: balancer?,
        http_cache,
        notify,
        confirm,
    })
}

/// Reads a sub-table with `f` and reports its unknown keys.
fn with_table<T>(eff: &Table, key: &'static str, f: impl FnOnce(&Table) -> Option<T>) -> Option<T> {
    let t = eff.table(key)?;
    let out = f(&t);
    t.finish();
    out
}

fn decode_hosts(d: &Decoder, tables: Vec<Table>) -> Vec<Host> {
    let mut hosts: Vec<Host> = Vec::new();
    let mut seen: Vec<(String, String, source::Loc)> = Vec::new();
    for t in tables {
        let decoded = parts::host(&t);
        t.finish();
        let Some((host, name)) = decoded else {
            continue;
        };
        if let Some((_, _, first)) = seen.iter().find(|(n, _, _)| *n == host.name) {
            let (line, _) = d.sources.line_col(first);
            d.error(
                &name.loc,
                &t.key_path("name"),
                format!("duplicate host name `{}`", host.name),
                Some(format!("first defined on line {line}; host names must be unique")),
            );
            continue;
        }
        let addr = format!("{}:{}", host.address, host.port.unwrap_or(0));
        if let Some((other, _, _)) = seen.iter().find(|(_, a, _)| *a == addr) {
            let at = t.raw("address").map(|v| v.loc.clone()).unwrap_or_default();
            d.error(
                &at,
                &t.key_path("address"),
                format!("hosts `{other}` and `{}` have the same address `{}`", host.name, host.address),
                Some("each host is a separate machine; list it once with all its roles".into()),
            );
            continue;
        }
        if host.has(Role::Migrate) && !host.gets_release() {
            let at = t.raw("roles").map(|v| v.loc.clone()).unwrap_or_default();
            d.error(
                &at,
                &t.key_path("roles"),
                format!("host `{}` has the role `migrate` but gets no release", host.name),
                Some("migrations run in the new release: add \"app\" or \"worker\" to its roles".into()),
            );
        }
        seen.push((host.name.clone(), addr, name.loc.clone()));
        hosts.push(host);
    }
    hosts
}

/// Can `n` app hosts roll `batch` at a time and keep `min` in service?
pub fn check_rolling(n: usize, batch: Batch, min: u32) -> Result<(), String> {
    let b = batch.size(n);
    let left = n - b;
    if (left as u64) < u64::from(min) {
        let plural = if n == 1 { "" } else { "s" };
        return Err(if min as usize > n {
            format!("min_in_service = {min} is more than the {n} app host{plural} of this stage")
        } else {
            format!(
                "rolling is impossible: with {n} app host{plural} and batch {batch} ({b} at a time), only {left} stay{} in service while a batch is drained, but min_in_service = {min}",
                if left == 1 { "s" } else { "" }
            )
        });
    }
    Ok(())
}
