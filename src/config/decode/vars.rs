//! `[vars]`: names a recipe gives defaults to and the file or a stage sets, written
//! `{{name}}` in any string value (a hook, a URL…). Substituted before `${VAR}` is read, so a
//! variable holding `${TOKEN}` is treated like `${TOKEN}` written where the variable is used.

use super::Decoder;
use crate::config::error::did_you_mean;
use crate::config::source::{Kind, Loc, Val};

/// How deep variables may refer to variables before it is taken for a loop.
const MAX_DEPTH: usize = 8;

/// A variable: its name, its text, and where that text was written.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: String,
    pub value: String,
    pub loc: Loc,
}

pub fn valid_var_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

impl Decoder<'_> {
    /// Reads the merged `[vars]` table; later string values may use its names.
    pub fn set_vars(&self, table: &Val) {
        let Kind::Table(entries) = &table.kind else {
            let message = format!("expected a table of names to strings, found {}", table.kind.describe());
            self.error(&table.loc, "vars", message, Some("write `[vars]` with `name = \"value\"` lines".into()));
            return;
        };
        let mut vars = Vec::new();
        for entry in entries {
            let path = format!("vars.{}", entry.key);
            if !valid_var_name(&entry.key) {
                self.error(
                    &entry.key_loc,
                    &path,
                    format!("`{}` is not a valid variable name", entry.key),
                    Some("names are letters, digits and `_`, e.g. `php_service`".into()),
                );
                continue;
            }
            match &entry.val.kind {
                Kind::Str(text) => {
                    vars.push(Var { name: entry.key.clone(), value: text.clone(), loc: entry.val.loc.clone() })
                }
                other => self.error(
                    &entry.val.loc,
                    &path,
                    format!("expected a string, found {}", other.describe()),
                    Some(format!("write `{} = \"…\"`", entry.key)),
                ),
            }
        }
        *self.vars.borrow_mut() = vars;
    }

    /// Replaces each `{{name}}` of a known variable; an unknown name is an error. Text between
    /// `{{` and `}}` that is not a name (`{{.Names}}`, `{{ json . }}`) is left as it is.
    pub fn substitute(&self, text: &str, loc: &Loc, key: &str) -> String {
        self.substitute_at(text, loc, key, 0, &mut Vec::new())
    }

    fn substitute_at(&self, text: &str, loc: &Loc, key: &str, depth: usize, seen: &mut Vec<String>) -> String {
        if !text.contains("{{") {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find("{{") {
            out.push_str(&rest[..at]);
            let after = &rest[at + 2..];
            let Some(end) = after.find("}}") else { break };
            let name = after[..end].trim();
            if !valid_var_name(name) {
                out.push_str("{{");
                rest = after;
                continue;
            }
            rest = &after[end + 2..];
            let found = self.vars.borrow().iter().find(|var| var.name == name).cloned();
            match found {
                Some(var) if seen.contains(&var.name) || depth >= MAX_DEPTH => {
                    let chain = seen.join("}} → {{");
                    self.error(
                        &var.loc,
                        &format!("vars.{name}"),
                        format!("variables refer to each other in a loop: {{{{{chain}}}}} → {{{{{name}}}}}"),
                        Some("give one of them a value without `{{…}}`".into()),
                    );
                }
                Some(var) => {
                    seen.push(var.name.clone());
                    out.push_str(&self.substitute_at(&var.value, &var.loc, key, depth + 1, seen));
                    seen.pop();
                }
                None => {
                    let known: Vec<String> = self.vars.borrow().iter().map(|var| var.name.clone()).collect();
                    let hint = match did_you_mean(name, known.iter().map(String::as_str)) {
                        Some(close) => format!("did you mean `{{{{{close}}}}}`? variables: {}", known.join(", ")),
                        None if known.is_empty() => {
                            format!("set it in `[vars]`, e.g. `[vars] {name} = \"…\"`")
                        }
                        None => format!("variables set here: {}; or add `{name}` to `[vars]`", known.join(", ")),
                    };
                    self.error(loc, key, format!("unknown variable `{{{{{name}}}}}`"), Some(hint));
                }
            }
        }
        out.push_str(rest);
        out
    }
}
