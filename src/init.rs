//! `deploy init`: a commented starter `Deploy.toml`.

use crate::config::recipes;

/// An app name from a folder name: letters, digits, `.`, `_`, `-`.
fn app_name(folder: &str) -> String {
    let s: String = folder
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c.to_ascii_lowercase() } else { '-' })
        .collect();
    let s = s.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_string();
    if s.is_empty() { "app".into() } else { s }
}

/// The starter file for `recipe`, with the recipe's defaults shown as comments.
pub fn starter(recipe: &str, folder: &str) -> String {
    let name = app_name(folder);
    let mut defaults: String = recipes::get(recipe)
        .unwrap_or("")
        .lines()
        .map(|l| if l.is_empty() { "#\n".to_string() } else { format!("# {l}\n") })
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
