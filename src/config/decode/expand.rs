//! `${VAR}` in a config value: read from the environment on the deploying machine, and
//! remembered as a secret; in shell code, left for the shell and exported to it.

use super::Decoder;
use crate::config::source::Loc;

impl Decoder<'_> {
    /// Expands `${VAR}` from the environment; `$${` is a literal `${`.
    pub fn expand(&self, text: &str, loc: &Loc, key: &str) -> String {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..at]);
            let tail = &rest[at..];
            if let Some(after) = tail.strip_prefix("$${") {
                out.push_str("${");
                rest = after;
            } else if let Some(after) = tail.strip_prefix("${") {
                let Some(end) = after.find('}') else {
                    self.error(
                        loc,
                        key,
                        "unclosed `${` in a string",
                        Some("write `${NAME}` to read an environment variable, or `$${` for a literal `${`".into()),
                    );
                    return text.to_string();
                };
                let name = &after[..end];
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
                        Some(value) if self.shell.get() => {
                            // Shell code reads the variable itself, from an environment that
                            // deploy sends privately: its value is never pasted into code.
                            self.secrets.borrow_mut().add(&value, name);
                            let mut exports = self.exports.borrow_mut();
                            if !exports.iter().any(|(known, _)| known == name) {
                                exports.push((name.to_string(), value));
                            }
                            out.push_str(&format!("${{{name}}}"));
                        }
                        Some(value) => {
                            self.secrets.borrow_mut().add(&value, name);
                            out.push_str(&value);
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
                rest = &after[end + 1..];
            } else {
                out.push('$');
                rest = &tail[1..];
            }
        }
        out.push_str(rest);
        out
    }
}
