//! `[setup]`: what `deploy setup STAGE` prepares and checks on a new server: the web server's
//! user, where the app writes at run time, and the content of shared files a host lacks.

use super::decode::Table;
use super::parts::relative_paths;
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, Serialize)]
pub struct Setup {
    /// The user the web server or PHP runs as (`www-data`): `deploy setup` checks, as that
    /// user, that it can write `writable` and read the shared files.
    pub web_user: Option<String>,
    /// Paths relative to the release that the app writes at run time (`var/cache`).
    pub writable: Vec<String>,
    /// Shared file → a local file (relative to `Deploy.toml`) written to hosts that lack it.
    pub templates: Vec<(String, PathBuf)>,
}

pub fn setup(table: &Table, dir: &Path, shared_files: &[String]) -> Setup {
    let web_user = table.string("web_user").and_then(|user| {
        if valid_user(&user.value) {
            return Some(user.value);
        }
        table.decoder.error(
            &user.loc,
            &table.key_path("web_user"),
            format!("`{}` is not a user name", user.value),
            Some("the user the web server runs as, e.g. `web_user = \"www-data\"`".into()),
        );
        None
    });
    let writable = relative_paths(table, "writable", "writable path");
    let templates = table
        .string_map("templates")
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(file, local)| {
            let path = table.key_path("templates");
            if !shared_files.contains(&file.value) {
                let files = if shared_files.is_empty() { "none".to_string() } else { shared_files.join(", ") };
                table.decoder.error(
                    &file.loc,
                    &path,
                    format!("`{}` is not a shared file", file.value),
                    Some(format!("templates are for `[shared] files` (here: {files})")),
                );
                return None;
            }
            if local.value.trim().is_empty() {
                table.decoder.error(&local.loc, &path, "an empty template path", None);
                return None;
            }
            Some((file.value, dir.join(local.value)))
        })
        .collect();
    Setup { web_user, writable, templates }
}

/// A POSIX-ish user name, as `useradd` takes it.
fn valid_user(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|first| first.is_ascii_lowercase() || first == '_')
        && name.len() <= 32
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-' | '.'))
}
