//! Reading typed values out of a located tree, collecting every error with its key path.
//!
//! A [`Table`] remembers every key it was asked for; [`Table::finish`] then reports each key
//! that nobody asked for as unknown, with the closest known key as the suggested fix. The
//! schema is therefore exactly the code that reads it.

mod expand;
mod vars;

use super::duration::parse_duration;
use super::error::{ConfigError, did_you_mean};
use super::source::{Kind, Loc, Sources, Val};
use crate::secrets::Secrets;
use std::cell::RefCell;
use std::time::Duration;

/// Looks up an environment variable (a closure, so tests can pass their own).
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// A string value with where it came from.
#[derive(Debug, Clone)]
pub struct Str {
    pub value: String,
    pub loc: Loc,
}

pub struct Decoder<'a> {
    pub sources: &'a Sources,
    /// The stage being decoded (named in errors that depend on its hosts).
    pub stage: String,
    errors: RefCell<Vec<ConfigError>>,
    env: EnvLookup<'a>,
    /// Missing `${VAR}`s are errors only for the stage being used; other stages are still
    /// checked for everything else.
    strict_env: bool,
    /// Values read from the environment, with the `${VAR}` they came from, for redaction.
    secrets: RefCell<Secrets>,
    /// Reading shell code: `${VAR}` is left for the shell and VAR goes in `exports`.
    shell: std::cell::Cell<bool>,
    /// Variables that shell code reads, with their values: sent to the hosts in the
    /// environment of that code, never in its text.
    exports: RefCell<Vec<(String, String)>>,
    /// `[vars]` of the stage, once read: `{{name}}` in string values.
    vars: RefCell<Vec<vars::Var>>,
    /// Every (table, key) the schema asked for: the schema itself, for the reference docs.
    pub asked: RefCell<std::collections::BTreeSet<(String, &'static str)>>,
}

impl<'a> Decoder<'a> {
    pub fn new(sources: &'a Sources, stage: &str, env: EnvLookup<'a>, strict_env: bool) -> Self {
        Decoder {
            sources,
            stage: stage.to_string(),
            errors: RefCell::new(Vec::new()),
            env,
            strict_env,
            secrets: RefCell::new(Secrets::default()),
            shell: std::cell::Cell::new(false),
            exports: RefCell::default(),
            vars: RefCell::default(),
            asked: RefCell::default(),
        }
    }

    /// Records an error at `loc`; `key` is the path below the scope the value was written in.
    pub fn error(&self, loc: &Loc, key: &str, message: impl Into<String>, hint: Option<String>) {
        let full = format!("{}{key}", loc.scope);
        let error = ConfigError::at(self.sources, loc, full.trim_end_matches('.'), message.into(), hint);
        let mut errors = self.errors.borrow_mut();
        // One problem per place: a value already found wrong (a missing `${VAR}`) is not
        // also reported for what it then fails to be (an empty address).
        if !errors.iter().any(|known| (&known.file, known.line, known.col) == (&error.file, error.line, error.col)) {
            errors.push(error);
        }
    }

    /// Is this the stage being used (its `${VAR}`s read, a missing one an error)?
    pub fn reads_environment(&self) -> bool {
        self.strict_env
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    pub fn into_parts(self) -> (Vec<ConfigError>, Secrets, Vec<(String, String)>) {
        (self.errors.into_inner(), self.secrets.into_inner(), self.exports.into_inner())
    }

    pub fn table<'v>(&'a self, path: impl Into<String>, val: &'v Val) -> Option<Table<'a, 'v>> {
        let path = path.into();
        match &val.kind {
            Kind::Table(_) => Some(Table { decoder: self, path, val, known: RefCell::new(Vec::new()) }),
            other => {
                self.error(&val.loc, &path, format!("expected a table, found {}", other.describe()), None);
                None
            }
        }
    }
}

/// A table being read; see the module docs.
pub struct Table<'d, 'v> {
    pub decoder: &'d Decoder<'d>,
    pub path: String,
    pub val: &'v Val,
    known: RefCell<Vec<&'static str>>,
}

impl<'d, 'v> Table<'d, 'v> {
    /// The table as the reference names it: `app`, `hooks.worker`, `stages.*`, `stages.*.hosts[]`…
    fn section(&self) -> String {
        let path: String = {
            let mut out = String::new();
            let mut skip = false;
            for character in self.path.chars() {
                match character {
                    '[' => {
                        skip = true;
                        out.push_str("[]");
                    }
                    ']' => skip = false,
                    kept if !skip => out.push(kept),
                    _ => {}
                }
            }
            out
        };
        let staged = !self.val.loc.scope.is_empty();
        match (path.is_empty(), staged, path.starts_with("hosts")) {
            (true, true, _) => "stages.*".into(),
            (false, _, true) => format!("stages.*.{path}"),
            _ => path,
        }
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    pub fn loc(&self) -> &Loc {
        &self.val.loc
    }

    /// The raw value of a key, registering the key as known.
    pub fn raw(&self, key: &'static str) -> Option<&'v Val> {
        self.known.borrow_mut().push(key);
        self.decoder.asked.borrow_mut().insert((self.section(), key));
        self.val.get(key)
    }

    fn type_error(&self, key: &str, val: &Val, expected: &str, hint: Option<String>) {
        self.decoder.error(
            &val.loc,
            &self.key_path(key),
            format!("expected {expected}, found {}", val.kind.describe()),
            hint,
        );
    }

    /// Reports a required key as missing (unless it is there with a wrong type, which was
    /// reported already).
    pub fn missing(&self, key: &str, hint: Option<String>) {
        if self.val.get(key).is_some() {
            return;
        }
        self.decoder.error(self.loc(), &self.key_path(key), format!("missing key `{key}`"), hint);
    }

    pub fn string(&self, key: &'static str) -> Option<Str> {
        let value = self.raw(key)?;
        self.decoder.string_value(value, &self.key_path(key))
    }

    /// [`Table::string`] of shell code: `${VAR}` stays in the text for the shell to expand,
    /// and VAR is exported to it.
    pub fn shell_string(&self, key: &'static str) -> Option<Str> {
        self.decoder.shell.set(true);
        let read = self.string(key);
        self.decoder.shell.set(false);
        read
    }

    /// [`Table::strings`] of shell code (see [`Table::shell_string`]).
    pub fn shell_strings(&self, key: &'static str) -> Option<Vec<Str>> {
        self.decoder.shell.set(true);
        let read = self.strings(key);
        self.decoder.shell.set(false);
        read
    }

    pub fn strings(&self, key: &'static str) -> Option<Vec<Str>> {
        let value = self.raw(key)?;
        let path = self.key_path(key);
        match &value.kind {
            Kind::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(index, item)| self.decoder.string_value(item, &format!("{path}[{index}]")))
                    .collect(),
            ),
            _ => {
                self.type_error(key, value, "an array of strings", Some(format!("write `{key} = [\"…\"]`")));
                None
            }
        }
    }

    pub fn int(&self, key: &'static str) -> Option<(i64, Loc)> {
        let value = self.raw(key)?;
        match value.kind {
            Kind::Int(number) => Some((number, value.loc.clone())),
            _ => {
                self.type_error(key, value, "an integer", None);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn int_in(&self, key: &'static str, min: i64, max: i64) -> Option<(i64, Loc)> {
        let (number, loc) = self.int(key)?;
        if number < min || number > max {
            let range = if max == i64::MAX { format!("at least {min}") } else { format!("from {min} to {max}") };
            self.decoder.error(&loc, &self.key_path(key), format!("expected a number {range}, found {number}"), None);
            return None;
        }
        Some((number, loc))
    }

    /// A number in `min..=max`: an integer, a float, or (with `percent`) a string like `"1%"`,
    /// read as a fraction (0.01).
    pub fn number_in(&self, key: &'static str, min: f64, max: f64, percent: bool) -> Option<(f64, Loc)> {
        let value = self.raw(key)?;
        let number = match &value.kind {
            Kind::Int(number) => *number as f64,
            Kind::Float(number) => *number,
            Kind::Str(text) if percent && text.trim().ends_with('%') => {
                match text.trim().trim_end_matches('%').trim().parse::<f64>() {
                    Ok(number) => number / 100.0,
                    Err(_) => {
                        self.decoder.error(
                            &value.loc,
                            &self.key_path(key),
                            format!("`{text}` is not a percentage"),
                            None,
                        );
                        return None;
                    }
                }
            }
            _ => {
                let expected = if percent { "a number like 0.01 or a percentage like \"1%\"" } else { "a number" };
                self.type_error(key, value, expected, None);
                return None;
            }
        };
        if !number.is_finite() || number < min || number > max {
            self.decoder.error(
                &value.loc,
                &self.key_path(key),
                format!("expected a number from {min} to {max}, found {number}"),
                None,
            );
            return None;
        }
        Some((number, value.loc.clone()))
    }

    pub fn bool(&self, key: &'static str) -> Option<bool> {
        let value = self.raw(key)?;
        match value.kind {
            Kind::Bool(flag) => Some(flag),
            _ => {
                self.type_error(key, value, "true or false", None);
                None
            }
        }
    }

    /// A duration string like `"30s"`; zero is refused unless `allow_zero`.
    pub fn duration(&self, key: &'static str, allow_zero: bool) -> Option<Duration> {
        let value = self.raw(key)?;
        let hint = Some(format!("write it as a string with a unit, e.g. `{key} = \"30s\"` or `\"500ms\"`"));
        let Kind::Str(text) = &value.kind else {
            self.type_error(key, value, "a duration string like \"30s\"", hint);
            return None;
        };
        match parse_duration(text) {
            Some(duration) if allow_zero || !duration.is_zero() => Some(duration),
            Some(_) => {
                self.decoder.error(&value.loc, &self.key_path(key), "expected a duration above zero", None);
                None
            }
            None => {
                self.decoder.error(
                    &value.loc,
                    &self.key_path(key),
                    format!("`{text}` is not a duration"),
                    Some("units are ms, s, m and h, e.g. \"500ms\", \"30s\", \"1m30s\"".into()),
                );
                None
            }
        }
    }

    pub fn table(&self, key: &'static str) -> Option<Table<'d, 'v>> {
        let value = self.raw(key)?;
        self.decoder.table(self.key_path(key), value)
    }

    pub fn tables(&self, key: &'static str) -> Option<Vec<Table<'d, 'v>>> {
        let value = self.raw(key)?;
        let path = self.key_path(key);
        match &value.kind {
            Kind::Array(items) => Some(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(index, item)| self.decoder.table(format!("{path}[{index}]"), item))
                    .collect(),
            ),
            _ => {
                self.type_error(key, value, "an array of tables", Some(format!("write `[[{path}]]` tables")));
                None
            }
        }
    }

    /// A table whose keys are free (names) and whose values are strings.
    pub fn string_map(&self, key: &'static str) -> Option<Vec<(Str, Str)>> {
        let value = self.raw(key)?;
        let path = self.key_path(key);
        match &value.kind {
            Kind::Table(entries) => Some(
                entries
                    .iter()
                    .filter_map(|entry| {
                        let val = self.decoder.string_value(&entry.val, &format!("{path}.{}", entry.key))?;
                        Some((Str { value: entry.key.clone(), loc: entry.key_loc.clone() }, val))
                    })
                    .collect(),
            ),
            _ => {
                self.type_error(
                    key,
                    value,
                    "a table of names to strings",
                    Some(format!("write `{key} = {{ name = \"value\" }}`")),
                );
                None
            }
        }
    }

    /// Reports every key present that no reader asked for.
    pub fn finish(&self) {
        let mut known = self.known.borrow().clone();
        let mut seen = Vec::new();
        known.retain(|key| {
            let new = !seen.contains(key);
            seen.push(*key);
            new
        });
        for entry in self.val.entries().unwrap_or_default() {
            if known.contains(&entry.key.as_str()) {
                continue;
            }
            let hint = match did_you_mean(&entry.key, known.iter().copied()) {
                Some(key) => format!("did you mean `{key}`?"),
                None if known.is_empty() => "this table takes no keys".to_string(),
                None => format!("known keys here: {}", known.join(", ")),
            };
            let message = format!("unknown key `{}`", entry.key);
            self.decoder.error(&entry.key_loc, &self.key_path(&entry.key), message, Some(hint));
        }
    }
}

impl Decoder<'_> {
    fn string_value(&self, value: &Val, path: &str) -> Option<Str> {
        match &value.kind {
            Kind::Str(text) => {
                let text = self.substitute(text, &value.loc, path);
                Some(Str { value: self.expand(&text, &value.loc, path), loc: value.loc.clone() })
            }
            other => {
                self.error(&value.loc, path, format!("expected a string, found {}", other.describe()), None);
                None
            }
        }
    }
}
