//! docs/configuration.md documents every key the config decoder reads, under the right
//! heading, and no key it does not read. The decoder is the schema; this keeps the reference
//! honest.

use std::collections::BTreeSet;

/// One stage per balancer and cache kind, every table present, so the decoder asks for every key.
const EVERYTHING: &str = r#"
[app]
name = "shop"
path = "/srv/shop"
[build]
[shared]
[hooks]
[hooks.worker]
[health]
[rolling]
[ssh]
[[notify]]
kind = "json"
url = "http://127.0.0.1/"

[stages.a]
hosts = [{ name = "w", address = "10.0.0.1", roles = ["app"] }]
[stages.a.balancer]
kind = "varnish"
host = "w"
[[stages.a.http_cache]]
kind = "varnish"
host = "w"

[stages.b]
hosts = [{ name = "w", address = "10.0.0.1", roles = ["app"] }]
[stages.b.balancer]
kind = "haproxy"
host = "w"
[[stages.b.http_cache]]
kind = "http"
url = "http://127.0.0.1/"

[stages.c]
hosts = [{ name = "w", address = "10.0.0.1", roles = ["app"] }]
[stages.c.balancer]
kind = "command"
drain = "x"
undrain = "y"
[[stages.c.http_cache]]
kind = "command"
commands = ["z"]

[stages.d]
hosts = [{ name = "w", address = "10.0.0.1", roles = ["app"] }]
[stages.d.balancer]
kind = "none"
"#;

/// The doc heading each table's keys are listed under.
fn heading(section: &str) -> &'static str {
    match section {
        "" => "## Layout of the file",
        "app" => "## `[app]`",
        "build" => "## `[build]`",
        "shared" => "## `[shared]`",
        "hooks" | "hooks.worker" => "## `[hooks]` and `[hooks.worker]`",
        "health" => "## `[health]`",
        "rolling" => "## `[rolling]`",
        "ssh" => "## `[ssh]`",
        "stages.*" => "## `[stages.NAME]`",
        "stages.*.hosts[]" => "### Hosts",
        "balancer" => "## `[balancer]`",
        "http_cache[]" => "## `[[http_cache]]`",
        "notify[]" => "## `[[notify]]`",
        other => panic!("no heading for table {other:?}: add it to the reference and here"),
    }
}

/// The text of a `## ` section (with its `### ` subsections).
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start =
        doc.find(&format!("\n{title}\n")).unwrap_or_else(|| panic!("docs/configuration.md has no `{title}` heading"));
    let rest = &doc[start + title.len() + 2..];
    let level = if title.starts_with("### ") { "\n### " } else { "\n## " };
    let end = rest.find(level).map_or(rest.len(), |i| i);
    let end = if title.starts_with("### ") { end.min(rest.find("\n## ").unwrap_or(rest.len())) } else { end };
    &rest[..end]
}

#[test]
fn every_key_is_documented_where_it_belongs() {
    let keys = deploy::config::schema_keys(EVERYTHING);
    assert!(keys.len() > 60, "the sample should reach every table: {keys:?}");
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    let mut missing = Vec::new();
    for (table, key) in &keys {
        let text = section(&doc, heading(table));
        // A row `| `key`` (or `| `table.key``); a stage's override tables are named in its prose.
        let row = text.contains(&format!("| `{key}`")) || text.contains(&format!("| `{table}.{key}`"));
        let prose = table == "stages.*" && text.contains(&format!("`{key}`"));
        if !row && !prose {
            missing.push(format!("{table}.{key} (under {})", heading(table)));
        }
    }
    assert!(missing.is_empty(), "keys read by the decoder but not documented:\n{}", missing.join("\n"));
}

#[test]
fn no_documented_key_is_unknown() {
    let keys = deploy::config::schema_keys(EVERYTHING);
    let known: BTreeSet<&str> = keys.iter().map(|(_, k)| *k).collect();
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    // Key rows of the reference tables: `| `key` | type | …`.
    let mut unknown = Vec::new();
    for title in [
        "## `[app]`",
        "## `[build]`",
        "## `[shared]`",
        "## `[health]`",
        "## `[rolling]`",
        "## `[ssh]`",
        "## `[balancer]`",
        "## `[[http_cache]]`",
    ] {
        for l in section(&doc, title).lines() {
            if let Some(k) = l.strip_prefix("| `").and_then(|r| r.split('`').next())
                && !known.contains(k)
                && !k.contains(' ')
                && !k.contains('=')
            {
                unknown.push(format!("{title}: {k}"));
            }
        }
    }
    assert!(unknown.is_empty(), "documented keys the decoder does not read: {unknown:?}");
}
