//! `deploy init [--recipe NAME]`: a commented starter `Deploy.toml`, never over an
//! existing file.

use crate::config::recipes;
use crate::error::Error;
use crate::settings::Settings;
use std::io::Write;
use std::path::PathBuf;

pub fn run(settings: &Settings, recipe: &str) -> Result<i32, Error> {
    let path = settings.config.clone().unwrap_or_else(|| PathBuf::from("Deploy.toml"));
    if path.exists() {
        return Err(Error::Exists { path });
    }
    let absolute = std::path::absolute(&path).unwrap_or(path.clone());
    let name = absolute
        .parent()
        .and_then(|dir| dir.file_name())
        .map(|name| name.to_string_lossy().to_string())
        .unwrap_or_else(|| "app".into());
    let text = starter(recipe, &name);
    // create_new: never overwrite, even if the file appeared since the check above.
    let mut file =
        std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Exists { path: path.clone() },
            _ => Error::File { path: path.clone(), action: "write", source },
        })?;
    file.write_all(text.as_bytes()).map_err(|source| Error::File { path: path.clone(), action: "write", source })?;
    eprintln!("wrote {} (recipe {recipe}); edit the hosts, then run `deploy plan production`", path.display());
    Ok(0)
}

/// An app name from a folder name: letters, digits, `.`, `_`, `-`.
fn app_name(folder: &str) -> String {
    let name: String = folder
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let name = name.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if name.is_empty() { "app".into() } else { name }
}

/// The starter file for `recipe`, with the recipe's defaults shown as comments.
fn starter(recipe: &str, folder: &str) -> String {
    let name = app_name(folder);
    let mut defaults: String = recipes::get(recipe)
        .unwrap_or("")
        .lines()
        .map(|line| if line.is_empty() { "#\n".to_string() } else { format!("# {line}\n") })
        .collect();
    if !defaults.ends_with('\n') {
        defaults.push('\n');
    }
    format!(
        r#"# Deploy.toml: how `deploy` releases {name}. Reference: docs/configuration.md
# Check it offline with `deploy plan production`; nothing connects until `deploy production`.

[app]
name = "{name}"
recipe = "{recipe}"             # defaults below; anything set in this file wins
path = "/var/www/{name}"        # deploy path on every app host (absolute)
keep_releases = 5               # old releases kept for `deploy rollback`

# Uncomment and edit to override the recipe:
# [build]                       # runs locally, in a clean export of the revision
# commands = ["…"]
# [shared]                      # lives outside releases, linked into each one
# dirs = ["var/log"]
# files = [".env.local"]
# [hooks]
# prepare = ["…"]               # every app host, in the new release, before it goes live
# activate = ["…"]              # every app host, while drained, right after the switch
# migrate = "…"                 # once, on the host with the `migrate` role; "" = none

[health]                        # the recipe's URL (see below) unless set here
# url = "http://{{address}}/health"   # {{host}} and {{address}} are the app host's; "" = no check
expect_status = 200

[rolling]
batch = 1                       # hosts switched at a time (a number or "25%")
drain_timeout = "30s"           # longest wait for in-flight requests to finish

[ssh]
user = "deploy"

[stages.production]
# confirm = true                # ask before deploying (skipped with --yes)
hosts = [
  {{ name = "web1", address = "192.0.2.11", roles = ["app", "migrate"] }},
  {{ name = "web2", address = "192.0.2.12", roles = ["app"] }},
  {{ name = "lb1",  address = "192.0.2.2",  roles = ["balancer"] }},
]

[stages.production.balancer]   # kinds: varnish, haproxy, command, none
kind = "varnish"
host = "lb1"                    # varnishadm runs there, over ssh
admin = "127.0.0.1:6082"
secret = "/etc/varnish/secret"

[[stages.production.http_cache]]
kind = "varnish"
host = "lb1"
bans = ["req.url ~ ."]

# The recipe `{recipe}` sets these defaults:
#
{defaults}"#
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_folders() {
        assert_eq!(super::app_name("My Shop!"), "my-shop");
        assert_eq!(super::app_name("___"), "app");
        assert_eq!(super::app_name("knifedepot"), "knifedepot");
    }
}
