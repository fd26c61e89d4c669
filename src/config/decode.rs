//! Reading typed values out of a located tree, collecting every error with its key path.
//!
//! A [`Table`] remembers every key it was asked for; [`Table::finish`] then reports each key
//! that nobody asked for as unknown, with the closest known key as the suggested fix. The
//! schema is therefore exactly the code that reads it.

use super::error::{ConfigError, did_you_mean};
use super::source::{Kind, Loc, Sources, Val};
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
    secrets: RefCell<Vec<(String, String)>>,
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
            secrets: RefCell::new(Vec::new()),
            asked: RefCell::default(),
        }
    }

    /// Records an error at `loc`; `key` is the path below the scope the value was written in.
    pub fn error(&self, loc: &Loc, key: &str, message: impl Into<String>, hint: Option<String>) {
        let full = format!("{}{key}", loc.scope);
        let e = ConfigError::at(self.sources, loc, full.trim_end_matches('.'), message.into(), hint);
        let mut errors = self.errors.borrow_mut();
        if !errors.contains(&e) {
            errors.push(e);
        }
    }

    pub fn has_errors(&self) -> bool {
        !self.errors.borrow().is_empty()
    }

    pub fn into_parts(self) -> (Vec<ConfigError>, Vec<(String, String)>) {
        (self.errors.into_inner(), self.secrets.into_inner())
    }

    pub fn table<'v>(&'a self, path: impl Into<String>, val: &'v Val) -> Option<Table<'a, 'v>> {
        let path = path.into();
        match &val.kind {
            Kind::Table(_) => Some(Table { d: self, path, val, known: RefCell::new(Vec::new()) }),
            other => {
                self.error(&val.loc, &path, format!("expected a table, found {}", other.describe()), None);
                None
            }
        }
    }

    /// Expands `${VAR}` from the environment; `$${` is a literal `${`.
    pub fn expand(&self, s: &str, loc: &Loc, key: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let tail = &rest[i..];
            if let Some(t) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = t;
            } else if let Some(t) = tail.strip_prefix("${") {
                let Some(end) = t.find('}') else {
                    self.error(
                        loc,
                        key,
                        "unclosed `${` in a string",
                        Some("write `${NAME}` to read an environment variable, or `$${` for a literal `${`".into()),
                    );
                    return s.to_string();
                };
                let name = &t[..end];
                let valid = !name.is_empty()
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                    && !name.starts_with(|c: char| c.is_ascii_digit());
                if !valid {
                    self.error(
                        loc,
                        key,
                        format!("`${{{name}}}` is not a valid environment variable name"),
                        Some(
                            "names are letters, digits and `_`, e.g. `${DEPLOY_TOKEN}`; write `$${` for a literal `${`"
                                .into(),
                        ),
                    );
                } else {
                    match (self.env)(name) {
                        Some(v) => {
                            if v.len() >= 3 {
                                self.secrets.borrow_mut().push((v.clone(), format!("${{{name}}}")));
                            }
                            out.push_str(&v);
                        }
                        None if self.strict_env => self.error(
                            loc,
                            key,
                            format!("environment variable `{name}` is not set"),
                            Some(format!("export {name}=… before running deploy, or write `$${{{name}}}` for a literal `${{{name}}}`")),
                        ),
                        None => out.push_str(&format!("${{{name}}}")),
                    }
                }
                rest = &t[end + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }
}

/// A table being read; see the module docs.
pub struct Table<'d, 'v> {
    pub d: &'d Decoder<'d>,
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
            for c in self.path.chars() {
                match c {
                    '[' => {
                        skip = true;
                        out.push_str("[]");
                    }
                    ']' => skip = false,
                    c if !skip => out.push(c),
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
        self.d.asked.borrow_mut().insert((self.section(), key));
        self.val.get(key)
    }

    fn type_error(&self, key: &str, val: &Val, expected: &str, hint: Option<String>) {
        self.d.error(
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
        self.d.error(self.loc(), &self.key_path(key), format!("missing key `{key}`"), hint);
    }

    pub fn string(&self, key: &'static str) -> Option<Str> {
        let v = self.raw(key)?;
        self.d.string_value(v, &self.key_path(key))
    }

    pub fn strings(&self, key: &'static str) -> Option<Vec<Str>> {
        let v = self.raw(key)?;
        let path = self.key_path(key);
        match &v.kind {
            Kind::Array(items) => Some(
                items.iter().enumerate().filter_map(|(i, x)| self.d.string_value(x, &format!("{path}[{i}]"))).collect(),
            ),
            _ => {
                self.type_error(key, v, "an array of strings", Some(format!("write `{key} = [\"…\"]`")));
                None
            }
        }
    }

    pub fn int(&self, key: &'static str) -> Option<(i64, Loc)> {
        let v = self.raw(key)?;
        match v.kind {
            Kind::Int(n) => Some((n, v.loc.clone())),
            _ => {
                self.type_error(key, v, "an integer", None);
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn int_in(&self, key: &'static str, min: i64, max: i64) -> Option<(i64, Loc)> {
        let (n, loc) = self.int(key)?;
        if n < min || n > max {
            let range = if max == i64::MAX { format!("at least {min}") } else { format!("from {min} to {max}") };
            self.d.error(&loc, &self.key_path(key), format!("expected a number {range}, found {n}"), None);
            return None;
        }
        Some((n, loc))
    }

    pub fn bool(&self, key: &'static str) -> Option<bool> {
        let v = self.raw(key)?;
        match v.kind {
            Kind::Bool(b) => Some(b),
            _ => {
                self.type_error(key, v, "true or false", None);
                None
            }
        }
    }

    /// A duration string like `"30s"`; zero is refused unless `allow_zero`.
    pub fn duration(&self, key: &'static str, allow_zero: bool) -> Option<Duration> {
        let v = self.raw(key)?;
        let hint = Some(format!("write it as a string with a unit, e.g. `{key} = \"30s\"` or `\"500ms\"`"));
        let Kind::Str(s) = &v.kind else {
            self.type_error(key, v, "a duration string like \"30s\"", hint);
            return None;
        };
        match parse_duration(s) {
            Some(d) if allow_zero || !d.is_zero() => Some(d),
            Some(_) => {
                self.d.error(&v.loc, &self.key_path(key), "expected a duration above zero", None);
                None
            }
            None => {
                self.d.error(
                    &v.loc,
                    &self.key_path(key),
                    format!("`{s}` is not a duration"),
                    Some("units are ms, s, m and h, e.g. \"500ms\", \"30s\", \"1m30s\"".into()),
                );
                None
            }
        }
    }

    pub fn table(&self, key: &'static str) -> Option<Table<'d, 'v>> {
        let v = self.raw(key)?;
        self.d.table(self.key_path(key), v)
    }

    pub fn tables(&self, key: &'static str) -> Option<Vec<Table<'d, 'v>>> {
        let v = self.raw(key)?;
        let path = self.key_path(key);
        match &v.kind {
            Kind::Array(items) => {
                Some(items.iter().enumerate().filter_map(|(i, x)| self.d.table(format!("{path}[{i}]"), x)).collect())
            }
            _ => {
                self.type_error(key, v, "an array of tables", Some(format!("write `[[{path}]]` tables")));
                None
            }
        }
    }

    /// A table whose keys are free (names) and whose values are strings.
    pub fn string_map(&self, key: &'static str) -> Option<Vec<(Str, Str)>> {
        let v = self.raw(key)?;
        let path = self.key_path(key);
        match &v.kind {
            Kind::Table(entries) => Some(
                entries
                    .iter()
                    .filter_map(|e| {
                        let val = self.d.string_value(&e.val, &format!("{path}.{}", e.key))?;
                        Some((Str { value: e.key.clone(), loc: e.key_loc.clone() }, val))
                    })
                    .collect(),
            ),
            _ => {
                self.type_error(
                    key,
                    v,
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
        known.retain(|k| {
            let new = !seen.contains(k);
            seen.push(*k);
            new
        });
        for e in self.val.entries().unwrap_or_default() {
            if known.contains(&e.key.as_str()) {
                continue;
            }
            let hint = match did_you_mean(&e.key, known.iter().copied()) {
                Some(k) => format!("did you mean `{k}`?"),
                None if known.is_empty() => "this table takes no keys".to_string(),
                None => format!("known keys here: {}", known.join(", ")),
            };
            self.d.error(&e.key_loc, &self.key_path(&e.key), format!("unknown key `{}`", e.key), Some(hint));
        }
    }
}

impl Decoder<'_> {
    fn string_value(&self, v: &Val, path: &str) -> Option<Str> {
        match &v.kind {
            Kind::Str(s) => Some(Str { value: self.expand(s, &v.loc, path), loc: v.loc.clone() }),
            other => {
                self.error(&v.loc, path, format!("expected a string, found {}", other.describe()), None);
                None
            }
        }
    }
}

/// Parses `"500ms"`, `"30s"`, `"2m"`, `"1h"`, `"1m30s"`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let part = match &rest[..unit] {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n.checked_mul(60)?),
            "h" => Duration::from_secs(n.checked_mul(3600)?),
            _ => return None,
        };
        total = total.checked_add(part)?;
        rest = &rest[unit..];
    }
    Some(total)
}

/// Renders a duration the way the config writes it.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 != 0 {
        format!("{ms}ms")
    } else if ms % 60_000 != 0 || ms == 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{}m", ms / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("30"), None);
        assert_eq!(parse_duration("s"), None);
        assert_eq!(parse_duration("3 s"), None);
        assert_eq!(parse_duration("1d"), None);
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_secs(30)), "30s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
    }
}
