//! Secrets read from the environment (`${VAR}`) are shown as the variable's name, never
//! their value, in any of the forms `deploy` writes text in: raw, shell-quoted, JSON- or
//! Rust-escaped, percent-encoded, and line by line for a value that spans lines.
//!
//! Structured output (JSON events, the JSON plan, webhook bodies, the release log) is
//! redacted value by value before it is serialised ([`Secrets::redact_json`]); text that was
//! already rendered (remote output, error messages, the human plan) goes through
//! [`Secrets::redact`], which knows every escaped form a value can take on its way there.

use serde_json::Value;

/// Shorter values are not treated as secrets: replacing every `a` or `10` in the output
/// would hide everything and protect nothing.
pub const MIN_SECRET_LEN: usize = 3;

/// One value read from the environment, and the `${VAR}` shown in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Secret {
    name: String,
    /// Every form of the value that can appear in rendered text, longest first.
    forms: Vec<String>,
}

/// The secrets of one loaded config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Secrets {
    /// Longest value first, so a secret containing another is replaced whole.
    list: Vec<(String, Secret)>,
}

impl Secrets {
    /// Adds `value`, read from `${name}`; values shorter than [`MIN_SECRET_LEN`] are ignored.
    pub fn add(&mut self, value: &str, name: &str) {
        if value.chars().count() < MIN_SECRET_LEN || self.list.iter().any(|(known, _)| known == value) {
            return;
        }
        let secret = Secret { name: format!("${{{name}}}"), forms: forms(value) };
        self.list.push((value.to_string(), secret));
        self.list.sort_by_key(|(known, _)| std::cmp::Reverse(known.len()));
    }

    /// Adds every secret of `other` (its forms are already worked out).
    pub fn merge(&mut self, other: &Secrets) {
        for entry in &other.list {
            if !self.list.iter().any(|(known, _)| *known == entry.0) {
                self.list.push(entry.clone());
            }
        }
        self.list.sort_by_key(|(known, _)| std::cmp::Reverse(known.len()));
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Whether `text` holds a secret, in any of the forms [`Secrets::redact`] knows.
    pub fn found_in(&self, text: &str) -> bool {
        self.list.iter().any(|(_, secret)| secret.forms.iter().any(|form| text.contains(form.as_str())))
    }

    /// Replaces every form of every secret in `text` with its `${VAR}`.
    pub fn redact(&self, text: &str) -> String {
        self.replaced(text, |secret| secret.name.clone())
    }

    /// Like [`Secrets::redact`], but marks each value as read here, now: `<$VAR>`. The human
    /// plan shows them so, apart from `${VAR}` in shell code, which the host's shell expands.
    pub fn redact_as_local(&self, text: &str) -> String {
        self.replaced(text, |secret| format!("<${}>", secret.name.trim_start_matches("${").trim_end_matches('}')))
    }

    /// Every form of every secret in `text` replaced with what `shown` makes of the secret.
    fn replaced(&self, text: &str, shown: impl Fn(&Secret) -> String) -> String {
        let mut out = text.to_string();
        for (_, secret) in &self.list {
            for form in &secret.forms {
                if out.contains(form.as_str()) {
                    out = out.replace(form.as_str(), &shown(secret));
                }
            }
        }
        out
    }

    /// Redacts every string (and key) in a JSON value before it is serialised, so the
    /// serialiser's escapes cannot hide a value from [`Secrets::redact`].
    pub fn redact_json(&self, value: Value) -> Value {
        if self.is_empty() {
            return value;
        }
        match value {
            Value::String(text) => Value::String(self.redact(&text)),
            Value::Array(items) => Value::Array(items.into_iter().map(|item| self.redact_json(item)).collect()),
            Value::Object(fields) => Value::Object(
                fields.into_iter().map(|(key, item)| (self.redact(&key), self.redact_json(item))).collect(),
            ),
            other => other,
        }
    }
}

/// The forms a value takes in text `deploy` renders or relays: as it is; inside single
/// quotes (`'\''`, and `'"'"'` as `sh -x` and others write it); JSON- and Rust-escaped, of
/// either; percent-encoded; and each line of a value that spans lines.
fn forms(value: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    // Every escape, and every escape of an escape: a JSON string holding a shell line, a
    // shell word holding a curl or JSON string.
    let escapes: [fn(&str) -> String; 6] = [
        str::to_string,
        |text| text.replace('\'', "'\\''"),
        |text| text.replace('\'', "'\"'\"'"),
        json_body,
        |text| text.escape_debug().to_string(),
        |text| text.escape_default().to_string(),
    ];
    for outer in escapes {
        for inner in escapes {
            out.push(outer(&inner(value)));
        }
    }
    out.push(percent(value, false));
    out.push(percent(value, true));
    // As a URL parser writes it back (the WHATWG sets: what an HTTP library prints in an
    // error), and form-encoded.
    // A URL parser drops tabs and newlines, and in the path of an http(s) URL turns `\`
    // into `/`.
    let stripped = value.replace(['\t', '\n', '\r'], "");
    for text in [value, stripped.as_str()] {
        for set in [URL_QUERY, URL_PATH, URL_USERINFO] {
            out.push(url_encoded(text, set));
        }
        out.push(url_encoded(&text.replace('\\', "/"), URL_PATH));
    }
    out.push(percent(value, false).replace("%20", "+"));
    if value.contains('\n') || value.contains('\r') {
        for line in value.lines().map(|line| line.trim_end_matches('\r')) {
            if line.trim().chars().count() >= MIN_SECRET_LEN {
                out.push(line.to_string());
                out.push(line.replace('\'', "'\\''"));
                out.push(json_body(line));
            }
        }
    }
    out.sort_by_key(|form| std::cmp::Reverse(form.len()));
    out.dedup();
    out.retain(|form| !form.is_empty());
    out
}

fn json_body(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted[1..quoted.len() - 1].to_string()
}

/// Bytes a URL parser percent-encodes in a query, a path and the user info (besides
/// controls, space and non-ASCII, which it always encodes).
const URL_QUERY: &[u8] = b"\"#<>'";
const URL_PATH: &[u8] = b"\"#<>?`{}";
const URL_USERINFO: &[u8] = b"\"#<>?`{}/:;=@[\\]^|";

fn url_encoded(text: &str, set: &[u8]) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte <= b' ' || byte >= 0x7f || set.contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(byte as char);
        }
    }
    out
}

fn percent(text: &str, lower: bool) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else if lower {
            out.push_str(&format!("%{byte:02x}"));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The secrets of the config this process loaded, for text printed far from the config
/// (the final error message).
static LOADED: std::sync::OnceLock<Secrets> = std::sync::OnceLock::new();

/// Remembers the loaded config's secrets (first load wins).
pub fn remember_secrets(secrets: &Secrets) {
    let _ = LOADED.set(secrets.clone());
}

/// [`Secrets::redact`] with the secrets of the config this process loaded.
pub fn redact_loaded(text: &str) -> String {
    LOADED.get().map_or_else(|| text.to_string(), |secrets| secrets.redact(text))
}
