//! Decoding one stage: the recipe, the file and the stage's overrides merged key by key,
//! each table read into its typed value, then the checks between tables.

use super::decode::{Decoder, Table};
use super::error::did_you_mean;
use super::hosts::valid_name;
use super::load::COMMAND_NAMES;
use super::schema::*;
use super::source::{self, Kind, Val};
use super::{hosts, parts, traffic};
use std::path::Path;
use std::rc::Rc;

/// Tables a stage may override.
const OVERRIDABLE: &[&str] = &[
    "app",
    "vars",
    "build",
    "artifact",
    "shared",
    "hooks",
    "health",
    "rolling",
    "canary",
    "ssh",
    "setup",
    "balancer",
    "http_cache",
    "notify",
];

/// Keys only a stage has.
pub(super) const STAGE_ONLY: &[&str] = &["site", "revision", "confirm", "hosts"];

pub(super) fn decode_stage(
    decoder: &Decoder,
    top: &Val,
    name: &str,
    name_loc: &source::Loc,
    stage_val: &Val,
    dir: &Path,
    recipes: &[(&str, Val)],
) -> Option<StageConfig> {
    if COMMAND_NAMES.contains(&name) {
        decoder.error(
            name_loc,
            &format!("stages.{name}"),
            format!("a stage may not be named `{name}`: `deploy {name}` is a command"),
            Some(format!("rename it, e.g. `[stages.{name}-site]`")),
        );
    } else if !valid_name(name) {
        decoder.error(
            name_loc,
            &format!("stages.{name}"),
            format!("`{name}` is not a valid stage name"),
            Some("use letters, digits, `.`, `_` and `-`".into()),
        );
    }
    let scope: Rc<str> = Rc::from(format!("stages.{name}."));
    let scoped = source::rescope(stage_val, &scope);
    let stage_table = decoder.table("", &scoped)?;

    // Stage-only keys.
    let host_tables = stage_table.tables("hosts");
    let revision = stage_table.string("revision").map(|text| text.value);
    let confirm = stage_table.bool("confirm").unwrap_or(false);
    let site = match stage_table.string("site") {
        Some(site) if valid_name(&site.value) => site.value,
        Some(site) => {
            decoder.error(
                &site.loc,
                &format!("stages.{name}.site"),
                format!("`{}` is not a valid site name", site.value),
                Some("use letters, digits, `.`, `_` and `-`".into()),
            );
            name.to_string()
        }
        None => name.to_string(),
    };
    for key in OVERRIDABLE {
        stage_table.raw(key);
    }
    let hosts_loc =
        stage_table.raw("hosts").map(|value| value.loc.clone()).unwrap_or_else(|| stage_table.loc().clone());
    if host_tables.is_none() && stage_table.raw("hosts").is_none() {
        stage_table.missing(
            "hosts",
            Some("e.g. `hosts = [{ name = \"web1\", address = \"10.0.0.11\", roles = [\"app\"] }]`".into()),
        );
    }
    stage_table.finish();

    // recipe < file < stage
    let over = file_and_stage(top, &scoped);
    let recipe = recipe_tree(decoder, &over, recipes);
    let mut merged = match recipe {
        Some(base) => source::merge(base, &over),
        None => over,
    };
    // The merged root is the file's top level (its own tables keep where they were written).
    merged.loc = top.loc.clone();
    let effective = decoder.table("", &merged)?;
    effective.raw("stages");
    if let Some(vars) = effective.raw("vars") {
        decoder.set_vars(vars);
    }

    let hosts = decode_hosts(decoder, host_tables.unwrap_or_default());
    let empty_list =
        stage_table.raw("hosts").is_some_and(|list| matches!(&list.kind, Kind::Array(items) if items.is_empty()));
    if hosts.is_empty() && empty_list {
        decoder.error(
            &hosts_loc,
            "hosts",
            "the host list is empty",
            Some("add at least one host with role `app`".into()),
        );
    }

    let app = with_table(&effective, "app", |table| parts::app(table, dir));
    if effective.raw("app").is_none() {
        effective.missing("app", Some("add an `[app]` table with `name` and `path`".into()));
    }
    let build = with_table(&effective, "build", |table| Some(parts::build(Some(table)))).unwrap_or_default();
    let store = with_table(&effective, "artifact", super::store::store);
    let shared = with_table(&effective, "shared", |table| Some(parts::shared(Some(table)))).unwrap_or_default();
    let (hooks, migrate_loc) =
        with_table(&effective, "hooks", |table| Some(parts::hooks(Some(table)))).unwrap_or_default();
    let health = with_table(&effective, "health", |table| Some(parts::health(Some(table))))
        .unwrap_or_else(|| parts::health(None));
    let (mut rolling, batch_loc, min_loc) =
        with_table(&effective, "rolling", |table| Some(parts::rolling(Some(table))))
            .unwrap_or_else(|| parts::rolling(None));
    let canary = with_table(&effective, "canary", |table| {
        Some(super::canary::canary(Some(table), rolling.canary, rolling.soak))
    })
    .unwrap_or_else(|| super::canary::canary(None, rolling.canary, rolling.soak));
    let ssh = with_table(&effective, "ssh", |table| Some(parts::ssh(Some(table)))).unwrap_or_default();
    let setup = with_table(&effective, "setup", |table| Some(super::setup::setup(table, dir, &shared.files)))
        .unwrap_or_default();
    let balancer = match effective.table("balancer") {
        Some(table) => traffic::balancer(Some(table), &hosts),
        None => Some(Balancer::None),
    };
    let http_cache: Vec<HttpCache> = effective
        .tables("http_cache")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|table| traffic::http_cache(table, &hosts, balancer.as_ref()))
        .collect();
    let notify: Vec<Notify> = effective
        .tables("notify")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|table| {
            let webhook = hosts::notify(&table);
            table.finish();
            webhook
        })
        .collect();
    effective.finish();

    // Cross-checks between tables.
    let app_hosts = hosts.iter().filter(|host| host.has(Role::App)).count();
    if !hosts.is_empty() && app_hosts == 0 {
        decoder.error(
            &hosts_loc,
            "hosts",
            "no host has the role `app`",
            Some("give the hosts that serve traffic `roles = [\"app\"]`".into()),
        );
    }
    if let Some(migrate) = &migrate_loc
        && !hosts.iter().any(|host| host.has(Role::Migrate))
        && !hosts.is_empty()
    {
        let key = if hooks.migrate.is_some() { "hooks.migrate" } else { "hooks.post_migrate" };
        decoder.error(
            &migrate.loc,
            key,
            format!("`{key}` is set but no host of stage `{name}` has the role `migrate`"),
            Some("add \"migrate\" to the roles of one app host, e.g. `roles = [\"app\", \"migrate\"]`".into()),
        );
    }
    let balanced = balancer.as_ref().is_some_and(|balancer| !matches!(balancer, Balancer::None));
    if rolling.min_in_service == u32::MAX {
        rolling.min_in_service = u32::from(balanced && app_hosts >= 2);
    }
    if balanced
        && app_hosts > 0
        && let Err(message) = check_rolling(app_hosts, rolling.batch, rolling.min_in_service)
    {
        let (loc, key) = match (&min_loc, &batch_loc) {
            (Some(loc), _) => (loc, "rolling.min_in_service"),
            (None, Some(loc)) => (loc, "rolling.batch"),
            (None, None) => (&hosts_loc, "hosts"),
        };
        decoder.error(
            loc,
            key,
            format!("in stage `{name}`: {message}"),
            Some("lower `rolling.batch` or `rolling.min_in_service` (0 accepts downtime)".into()),
        );
    }

    if let Some(loc) = &rolling.canary_loc {
        check_canary(decoder, loc, &canary, balancer.as_ref(), app_hosts);
    }

    if decoder.has_errors() {
        return None;
    }
    let mut app = app?;
    if revision.is_some() {
        app.revision = revision;
    }
    Some(StageConfig {
        stage: name.to_string(),
        site,
        app,
        build,
        store,
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
        canary,
        setup,
        only: None,
    })
}

/// The tree of the recipe `app.recipe` names, if any (an unknown name is an error).
fn recipe_tree<'r>(decoder: &Decoder, over: &Val, recipes: &'r [(&str, Val)]) -> Option<&'r Val> {
    let written = over.get("app").and_then(|app| app.get("recipe"))?;
    let name = written.as_str()?; // the type error is reported when `app` is read
    if let Some((_, tree)) = recipes.iter().find(|(known, _)| *known == name) {
        return Some(tree);
    }
    let names: Vec<&str> = recipes.iter().map(|(known, _)| *known).collect();
    let hint = match did_you_mean(name, names.iter().copied()) {
        Some(close) => format!("did you mean `{close}`? known recipes: {}", names.join(", ")),
        None => format!("known recipes: {}", names.join(", ")),
    };
    decoder.error(&written.loc, "app.recipe", format!("unknown recipe `{name}`"), Some(hint));
    None
}

/// The file's tables with the stage's over them, key by key (the stage-only keys left out):
/// what the recipe, if any, goes under.
pub(super) fn file_and_stage(top: &Val, scoped: &Val) -> Val {
    source::merge(&source::without(top, &["stages"]), &source::without(scoped, STAGE_ONLY))
}

/// A canary needs a balancer that counts answers per backend, and hosts left on the old
/// release to compare with.
fn check_canary(
    decoder: &Decoder,
    loc: &source::Loc,
    canary: &super::canary::Canary,
    balancer: Option<&Balancer>,
    apps: usize,
) {
    let count = canary.count(apps);
    if count == 0 {
        return;
    }
    let counts = match balancer {
        Some(Balancer::Varnish { .. } | Balancer::Haproxy { .. }) => true,
        Some(Balancer::Command { stats, .. }) => stats.is_some(),
        Some(Balancer::None) | None => false,
    };
    if !counts {
        decoder.error(
            loc,
            "rolling.canary",
            "a canary is judged from the balancer's counters, and this stage's balancer has none",
            Some("use a varnish or haproxy balancer, or give a command balancer a `stats` command".into()),
        );
    } else if count >= apps {
        decoder.error(
            loc,
            "rolling.canary",
            format!("a canary of {count} of {apps} app hosts leaves none on the old release to compare with"),
            Some("a canary is fewer hosts than the stage has, e.g. `canary = 1`".into()),
        );
    }
}

/// Reads a sub-table with `read` and reports its unknown keys.
fn with_table<T>(effective: &Table, key: &'static str, read: impl FnOnce(&Table) -> Option<T>) -> Option<T> {
    let table = effective.table(key)?;
    let out = read(&table);
    table.finish();
    out
}

fn decode_hosts(decoder: &Decoder, tables: Vec<Table>) -> Vec<Host> {
    let mut hosts: Vec<Host> = Vec::new();
    let mut seen: Vec<(String, String, source::Loc)> = Vec::new();
    for table in tables {
        let decoded = hosts::host(&table);
        table.finish();
        let Some((host, name)) = decoded else {
            continue;
        };
        if let Some((_, _, first)) = seen.iter().find(|(known, _, _)| *known == host.name) {
            let (line, _) = decoder.sources.line_col(first);
            decoder.error(
                &name.loc,
                &table.key_path("name"),
                format!("duplicate host name `{}`", host.name),
                Some(format!("first defined on line {line}; host names must be unique")),
            );
            continue;
        }
        let address = format!("{}:{}", host.address, host.port.unwrap_or(0));
        if let Some((other, _, _)) = seen.iter().find(|(_, known, _)| *known == address) {
            let at = table.raw("address").map(|value| value.loc.clone()).unwrap_or_default();
            decoder.error(
                &at,
                &table.key_path("address"),
                format!("hosts `{other}` and `{}` have the same address `{}`", host.name, host.address),
                Some("each host is a separate machine; list it once with all its roles".into()),
            );
            continue;
        }
        if host.has(Role::Migrate) && !host.gets_release() {
            let at = table.raw("roles").map(|value| value.loc.clone()).unwrap_or_default();
            decoder.error(
                &at,
                &table.key_path("roles"),
                format!("host `{}` has the role `migrate` but gets no release", host.name),
                Some("migrations run in the new release: add \"app\" or \"worker\" to its roles".into()),
            );
        }
        seen.push((host.name.clone(), address, name.loc.clone()));
        hosts.push(host);
    }
    hosts
}

/// Can `hosts` app hosts roll `batch` at a time and keep `min` in service?
pub fn check_rolling(hosts: usize, batch: BatchSize, min: u32) -> Result<(), String> {
    let size = batch.size(hosts);
    let left = hosts - size;
    if (left as u64) < u64::from(min) {
        let plural = if hosts == 1 { "" } else { "s" };
        return Err(if min as usize > hosts {
            format!("min_in_service = {min} is more than the {hosts} app host{plural} of this stage")
        } else {
            format!(
                "rolling is impossible: with {hosts} app host{plural} and batch {batch} ({size} at a time), only {left} stay{} in service while a batch is drained, but min_in_service = {min}",
                if left == 1 { "s" } else { "" }
            )
        });
    }
    Ok(())
}
