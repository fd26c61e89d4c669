//! From `Deploy.toml` text to a validated [`Config`] for one stage.

use super::decode::{Decoder, EnvLookup};
use super::error::{ConfigError, ConfigErrors, did_you_mean};
use super::recipes;
use super::schema::*;
use super::source::{self, Kind, Sources, Val};
use super::stage::decode_stage;
use crate::secrets::Secrets;
use std::path::{Path, PathBuf};

/// Names a stage may not have: `deploy NAME` would be read as the command.
pub const COMMAND_NAMES: &[&str] = &[
    "rollback",
    "plan",
    "releases",
    "check",
    "unlock",
    "exec",
    "init",
    "help",
    "completions",
    "man",
    "config",
    "lock",
    "setup",
    "maintenance",
];

/// A validated config, resolved for one stage.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    /// Every stage in the file, in file order.
    pub stages: Vec<String>,
    pub stage: StageConfig,
    /// Values read from the environment and the `${VAR}` to show instead of them.
    pub secrets: Secrets,
    /// The variables the stage's shell code reads (`${VAR}` in hooks, build and balancer
    /// commands), with their values: sent privately to the hosts with that code.
    pub exports: Vec<(String, String)>,
    /// Other stages that deploy to one of this stage's hosts at the same path: a deploy of
    /// either changes what the other serves.
    pub overlaps: Vec<Overlap>,
}

/// A host address and deploy path this stage shares with another stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlap {
    pub other_stage: String,
    pub address: String,
    pub path: String,
}

impl Config {
    /// Replaces every secret read from the environment with its `${VAR}`.
    pub fn redact(&self, text: &str) -> String {
        self.secrets.redact(text)
    }

    /// Redacts every string in a JSON value, before it is serialised.
    pub fn redact_json(&self, value: serde_json::Value) -> serde_json::Value {
        self.secrets.redact_json(value)
    }
}

/// Every (table, key) the schema reads, found by decoding `text` (every stage of it): the
/// source of truth the reference docs are checked against.
pub fn schema_keys(text: &str) -> std::collections::BTreeSet<(String, &'static str)> {
    let mut sources = Sources::default();
    let file = sources.add("Deploy.toml", text);
    let top = source::parse(file, text).expect("valid TOML");
    let mut keys = std::collections::BTreeSet::new();
    for entry in top.get("stages").and_then(Val::entries).unwrap_or_default() {
        let decoder = Decoder::new(&sources, &entry.key, &|_| Some("x".into()), false);
        decode_stage(&decoder, &top, &entry.key, &entry.key_loc, &entry.val, Path::new("/"), &[]);
        keys.extend(decoder.asked.into_inner());
    }
    keys
}

/// `Deploy.toml` in `start` or the nearest folder above it.
pub fn find(start: &Path) -> Option<PathBuf> {
    start.ancestors().map(|dir| dir.join("Deploy.toml")).find(|path| path.is_file())
}

/// Parses and validates `text` (read from `name`, in folder `dir`) for `stage`.
pub fn parse(name: &str, text: &str, dir: &Path, stage: &str, env: EnvLookup) -> Result<Config, ConfigErrors> {
    let mut sources = Sources::default();
    let file = sources.add(name, text);
    let mut recipe_srcs = Vec::new();
    for (recipe, recipe_text) in recipes::ALL {
        recipe_srcs.push((*recipe, sources.add(format!("recipe {recipe} (built in)"), *recipe_text)));
    }
    let top = source::parse(file, text).map_err(|err| {
        let at = ConfigError::at(&sources, &err.loc, "", format!("invalid TOML: {}", err.message), None);
        ConfigErrors(vec![at])
    })?;

    let mut errors: Vec<ConfigError> = Vec::new();
    let mut secrets_of_stage = Secrets::default();
    // Every stage's values, for the errors: another stage's error can quote one too.
    let mut every_secret = Secrets::default();
    let mut exports_of_stage = Vec::new();
    let mut chosen = None;
    // (stage, site, address, path) of every host that gets releases, for the overlap check.
    let mut places: Vec<Place> = Vec::new();

    // Recipes are parsed once; they are tested to be valid.
    let recipe_trees: Vec<(&str, Val)> = recipe_srcs
        .iter()
        .map(|(recipe, id)| (*recipe, source::parse(*id, sources.text(*id)).expect("built-in recipe parses")))
        .collect();

    let problem =
        |loc: &source::Loc, message: String| ConfigError::at(&sources, loc, "stages", message, Some(stage_example()));
    let stage_entries = match top.get("stages") {
        Some(Val { kind: Kind::Table(entries), .. }) if !entries.is_empty() => entries.clone(),
        Some(value @ Val { kind: Kind::Table(_), .. }) => {
            errors.push(problem(&value.loc, "no stages defined".into()));
            vec![]
        }
        Some(value) => {
            let message = format!("expected a table of stages, found {}", value.kind.describe());
            errors.push(problem(&value.loc, message));
            vec![]
        }
        None => {
            errors.push(problem(&top.loc, "no `[stages.NAME]` table: nothing to deploy to".into()));
            vec![]
        }
    };
    let names: Vec<String> = stage_entries.iter().map(|entry| entry.key.clone()).collect();

    for entry in &stage_entries {
        let strict = entry.key == stage;
        let decoder = Decoder::new(&sources, &entry.key, env, strict);
        let cfg = decode_stage(&decoder, &top, &entry.key, &entry.key_loc, &entry.val, dir, &recipe_trees);
        if let Some(cfg) = &cfg {
            for host in cfg.hosts.iter().filter(|host| host.gets_release()) {
                places.push(Place {
                    stage: entry.key.clone(),
                    site: cfg.site.clone(),
                    address: host.address.clone(),
                    path: cfg.app.path.clone(),
                });
            }
        }
        let (found, secrets, exports) = decoder.into_parts();
        every_secret.merge(&secrets);
        for err in found {
            if !errors.contains(&err) {
                errors.push(err);
            }
        }
        if strict {
            secrets_of_stage = secrets;
            exports_of_stage = exports;
            chosen = cfg;
        }
    }
    if !names.is_empty() && !names.iter().any(|known| known == stage) {
        let hint = match did_you_mean(stage, names.iter().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`? stages: {}", names.join(", ")),
            None => format!("stages in this file: {}", names.join(", ")),
        };
        // The mistake is on the command line, not in the file.
        errors.push(ConfigError {
            file: "the command line".into(),
            line: 0,
            col: 0,
            key: String::new(),
            message: format!("no stage named `{stage}` in {name}"),
            hint: Some(hint),
            excerpt: String::new(),
            width: 1,
        });
    }
    errors.sort_by_key(|err| (err.file != name, err.line, err.col));
    let overlaps = overlaps(&places, stage);
    match chosen {
        Some(chosen) if errors.is_empty() => Ok(Config {
            file: PathBuf::from(name),
            stages: names,
            stage: chosen,
            secrets: secrets_of_stage,
            exports: exports_of_stage,
            overlaps,
        }),
        _ => Err(ConfigErrors(errors.into_iter().map(|err| err.redacted(&every_secret)).collect())),
    }
}

/// Where a stage puts releases: one host's address and the deploy path.
struct Place {
    stage: String,
    site: String,
    address: String,
    path: String,
}

/// The other sites' stages that deploy to one of `stage`'s hosts, at the same deploy path.
fn overlaps(places: &[Place], stage: &str) -> Vec<Overlap> {
    let mut found: Vec<Overlap> = Vec::new();
    for mine in places.iter().filter(|place| place.stage == stage) {
        let same = |other: &&Place| {
            other.stage != stage && other.site != mine.site && other.address == mine.address && other.path == mine.path
        };
        for other in places.iter().filter(same) {
            let overlap =
                Overlap { other_stage: other.stage.clone(), address: mine.address.clone(), path: mine.path.clone() };
            if !found.contains(&overlap) {
                found.push(overlap);
            }
        }
    }
    found
}

fn stage_example() -> String {
    "add a stage, e.g.\n  [stages.production]\n  hosts = [{ name = \"web1\", address = \"10.0.0.11\", roles = [\"app\", \"migrate\"] }]".into()
}
