//! `deploy config STAGE`: every value of a stage after the merge (recipe < file < stage),
//! as written, with where it was written. Values are the source text: `${VAR}` and
//! `{{name}}` show as written, so no secret read from the environment is printed.

use super::load::parse;
use super::recipes;
use super::source::{self, Kind, Sources, Val};
use super::{ConfigErrors, decode::EnvLookup};
use std::path::Path;

/// One value of the merged config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `app.name`, `hooks.activate`, `hosts[0].address`…
    pub key: String,
    /// The value as written in its file.
    pub value: String,
    /// `Deploy.toml:12`, `Deploy.toml:40 (stage production)`, `recipe symfony (built in):23`.
    pub from: String,
}

/// The stage's merged values, checked first like any command's config (errors as usual).
pub fn origins(name: &str, text: &str, dir: &Path, stage: &str, env: EnvLookup) -> Result<Vec<Origin>, ConfigErrors> {
    parse(name, text, dir, stage, env)?;
    let mut sources = Sources::default();
    let file = sources.add(name, text);
    let mut recipe_ids = Vec::new();
    for (recipe, recipe_text) in recipes::ALL {
        recipe_ids.push((*recipe, sources.add(format!("recipe {recipe} (built in)"), *recipe_text)));
    }
    let top = source::parse(file, text).expect("checked by parse");
    let stage_val = top.get("stages").and_then(|stages| stages.get(stage)).expect("checked by parse");
    let scope: std::rc::Rc<str> = std::rc::Rc::from(format!("stages.{stage}."));
    let scoped = source::rescope(stage_val, &scope);
    let over = super::stage::file_and_stage(&top, &scoped);
    let recipe = over.get("app").and_then(|app| app.get("recipe")).and_then(Val::as_str).and_then(|wanted| {
        recipe_ids
            .iter()
            .find(|(known, _)| *known == wanted)
            .map(|(_, id)| source::parse(*id, sources.text(*id)).expect("built-in recipe parses"))
    });
    let merged = match &recipe {
        Some(base) => source::merge(base, &over),
        None => over,
    };
    let mut out = Vec::new();
    // The stage's own keys first, then everything merged.
    for key in super::stage::STAGE_ONLY {
        if let Some(value) = scoped.get(key) {
            flatten(&sources, key, value, stage, &mut out);
        }
    }
    if let Kind::Table(entries) = &merged.kind {
        for entry in entries {
            flatten(&sources, &entry.key, &entry.val, stage, &mut out);
        }
    }
    Ok(out)
}

fn flatten(sources: &Sources, key: &str, value: &Val, stage: &str, out: &mut Vec<Origin>) {
    match &value.kind {
        Kind::Table(entries) if !entries.is_empty() && !inline(sources, value) => {
            for entry in entries {
                flatten(sources, &format!("{key}.{}", entry.key), &entry.val, stage, out);
            }
        }
        Kind::Array(items) if items.iter().all(|item| matches!(item.kind, Kind::Table(_))) && !items.is_empty() => {
            for (index, item) in items.iter().enumerate() {
                flatten(sources, &format!("{key}[{index}]"), item, stage, out);
            }
        }
        _ => {
            let text = sources.text(value.loc.src).get(value.loc.span.clone()).unwrap_or("");
            let (line, _) = sources.line_col(&value.loc);
            let staged = if value.loc.scope.is_empty() { String::new() } else { format!(" (stage {stage})") };
            out.push(Origin {
                key: key.to_string(),
                value: one_line(text),
                from: format!("{}:{line}{staged}", sources.name(value.loc.src)),
            });
        }
    }
}

/// An inline table (`{ name = "web1", … }`) prints as one value only when it has no tables
/// inside; a `[table]` header always opens.
fn inline(sources: &Sources, value: &Val) -> bool {
    let text = sources.text(value.loc.src).get(value.loc.span.clone()).unwrap_or("");
    text.starts_with('{') && text.len() < 100
}

/// A multi-line value (an array over lines) on one line, its blanks and comments squeezed.
fn one_line(text: &str) -> String {
    if !text.contains('\n') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.split(" #").next().unwrap_or(line).trim();
        if !out.is_empty() && !out.ends_with('[') && !line.starts_with(']') {
            out.push(' ');
        }
        out.push_str(line);
    }
    out
}
