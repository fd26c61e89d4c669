//! Secrets read from the environment (`${VAR}`) are shown as the variable's name, never
//! their value.

/// The secrets of the config this process loaded, for text printed far from the config
/// (the final error message).
static LOADED: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// Remembers the loaded config's secrets (first load wins).
pub fn remember_secrets(redactions: &[(String, String)]) {
    let _ = LOADED.set(redactions.to_vec());
}

/// [`redact`] with the secrets of the config this process loaded.
pub fn redact_loaded(text: &str) -> String {
    LOADED.get().map_or_else(|| text.to_string(), |redactions| redact(redactions, text))
}

/// Replaces every secret value in `text` with its `${VAR}`.
pub fn redact(redactions: &[(String, String)], text: &str) -> String {
    let mut out = text.to_string();
    for (value, name) in redactions {
        if out.contains(value.as_str()) {
            out = out.replace(value.as_str(), name);
        }
    }
    out
}
