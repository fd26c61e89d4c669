//! Config text as a tree of located values, so every later error can point at a line.
//!
//! The TOML is parsed with `toml`'s spanned parser, then copied into [`Val`], which also
//! records which file the value came from: the merged tree mixes a recipe's values with
//! `Deploy.toml`'s, and an error must name the right one.

use std::ops::Range;
use std::rc::Rc;
use toml::de::{DeTable, DeValue};

/// Which source a value came from, as an index into [`Sources`].
pub type SrcId = usize;

/// Where a value is: a source, a byte range in it, and the key path of the table the value
/// was written under (`stages.production.` for a stage override, empty at the top), so an
/// error in a merged tree still names the key as the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loc {
    pub src: SrcId,
    pub span: Range<usize>,
    pub scope: Rc<str>,
}

/// The texts the config was read from: `Deploy.toml` first, then any embedded recipe.
#[derive(Debug, Default)]
pub struct Sources {
    files: Vec<(String, String)>,
}

impl Sources {
    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> SrcId {
        self.files.push((name.into(), text.into()));
        self.files.len() - 1
    }

    pub fn name(&self, src: SrcId) -> &str {
        &self.files[src].0
    }

    pub fn text(&self, src: SrcId) -> &str {
        &self.files[src].1
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, loc: &Loc) -> (usize, usize) {
        let text = self.text(loc.src);
        let at = loc.span.start.min(text.len());
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |at| at + 1);
        let col = text[line_start..at].chars().count() + 1;
        (line, col)
    }

    /// The whole source line a location starts on, without its newline.
    pub fn line_text(&self, loc: &Loc) -> &str {
        let text = self.text(loc.src);
        let at = loc.span.start.min(text.len());
        let start = text[..at].rfind('\n').map_or(0, |newline| newline + 1);
        let end = text[at..].find('\n').map_or(text.len(), |newline| at + newline);
        &text[start..end]
    }
}

/// A located TOML value.
#[derive(Debug, Clone)]
pub struct Val {
    pub kind: Kind,
    pub loc: Loc,
}

#[derive(Debug, Clone)]
pub enum Kind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Val>),
    Table(Vec<TableEntry>),
}

/// One `key = value` of a table.
#[derive(Debug, Clone)]
pub struct TableEntry {
    pub key: String,
    pub key_loc: Loc,
    pub val: Val,
}

impl Kind {
    /// The word a type error uses for what was found.
    pub fn describe(&self) -> &'static str {
        match self {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime(_) => "a datetime",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }
}

impl Val {
    pub fn entries(&self) -> Option<&[TableEntry]> {
        match &self.kind {
            Kind::Table(entries) => Some(entries),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Val> {
        self.entries()?.iter().find(|entry| entry.key == key).map(|entry| &entry.val)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(text) => Some(text),
            _ => None,
        }
    }

    pub fn empty_table(loc: Loc) -> Val {
        Val { kind: Kind::Table(Vec::new()), loc }
    }
}

/// A TOML syntax error, located.
#[derive(Debug)]
pub struct SyntaxError {
    pub loc: Loc,
    pub message: String,
}

/// Parses one TOML text into a located tree.
pub fn parse(src: SrcId, text: &str) -> Result<Val, SyntaxError> {
    match DeTable::parse(text) {
        Ok(table) => {
            let span = 0..text.len();
            Ok(Val {
                kind: Kind::Table(convert_table(src, table.get_ref())),
                loc: Loc { src, span, scope: Rc::default() },
            })
        }
        Err(err) => Err(SyntaxError {
            loc: Loc { src, span: err.span().unwrap_or(0..0), scope: Rc::default() },
            message: err.message().trim().to_string(),
        }),
    }
}

fn convert_table(src: SrcId, table: &DeTable<'_>) -> Vec<TableEntry> {
    table
        .iter()
        .map(|(key, value)| TableEntry {
            key: key.get_ref().to_string(),
            key_loc: Loc { src, span: key.span(), scope: Rc::default() },
            val: convert(src, value.get_ref(), value.span()),
        })
        .collect()
}

fn convert(src: SrcId, value: &DeValue<'_>, span: Range<usize>) -> Val {
    let kind = match value {
        DeValue::String(text) => Kind::Str(text.to_string()),
        DeValue::Integer(int) => match i64::from_str_radix(int.as_str(), int.radix()) {
            Ok(number) => Kind::Int(number),
            // Out of i64 range: keep it as a float-looking number so the type check speaks.
            Err(_) => Kind::Float(f64::INFINITY),
        },
        DeValue::Float(float) => Kind::Float(float.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(flag) => Kind::Bool(*flag),
        DeValue::Datetime(datetime) => Kind::Datetime(datetime.to_string()),
        DeValue::Array(items) => {
            Kind::Array(items.iter().map(|item| convert(src, item.get_ref(), item.span())).collect())
        }
        DeValue::Table(table) => Kind::Table(convert_table(src, table)),
    };
    Val { kind, loc: Loc { src, span, scope: Rc::default() } }
}

/// A copy of `v` whose every location says it was written under `scope` (e.g.
/// `stages.production.`).
pub fn rescope(value: &Val, scope: &Rc<str>) -> Val {
    let kind = match &value.kind {
        Kind::Array(items) => Kind::Array(items.iter().map(|item| rescope(item, scope)).collect()),
        Kind::Table(entries) => Kind::Table(
            entries
                .iter()
                .map(|entry| TableEntry {
                    key: entry.key.clone(),
                    key_loc: Loc { scope: scope.clone(), ..entry.key_loc.clone() },
                    val: rescope(&entry.val, scope),
                })
                .collect(),
        ),
        other => other.clone(),
    };
    Val { kind, loc: Loc { scope: scope.clone(), ..value.loc.clone() } }
}

/// A copy of a table without some keys.
pub fn without(value: &Val, keys: &[&str]) -> Val {
    match &value.kind {
        Kind::Table(entries) => Val {
            kind: Kind::Table(entries.iter().filter(|entry| !keys.contains(&entry.key.as_str())).cloned().collect()),
            loc: value.loc.clone(),
        },
        _ => value.clone(),
    }
}

/// Lays `over` on top of `base`: tables merge key by key (recursively), anything else in
/// `over` replaces what `base` had. A table whose `kind` differs from the base's replaces it
/// whole, so a stage switching its balancer from varnish to haproxy does not inherit
/// varnish-only keys.
pub fn merge(base: &Val, over: &Val) -> Val {
    let (Kind::Table(below), Kind::Table(above)) = (&base.kind, &over.kind) else {
        return over.clone();
    };
    let kind_of = |value: &Val| value.get("kind").and_then(Val::as_str).map(str::to_owned);
    if kind_of(over).is_some() && kind_of(over) != kind_of(base) {
        return over.clone();
    }
    let mut out: Vec<TableEntry> = below.clone();
    for entry in above {
        match out.iter_mut().find(|merged| merged.key == entry.key) {
            Some(merged) => {
                merged.val = merge(&merged.val, &entry.val);
                merged.key_loc = entry.key_loc.clone();
            }
            None => out.push(entry.clone()),
        }
    }
    Val { kind: Kind::Table(out), loc: over.loc.clone() }
}
