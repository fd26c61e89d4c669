//! docs/plan-json.md documents every field of `deploy plan --output json`, every kind of
//! run and wait, and names actions as the text plan and the events do.

use crate::support::*;
use std::collections::BTreeSet;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn plan(args: &[&str]) -> serde_json::Value {
    let mut all = vec!["plan"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--output", "json"]);
    let o = deploy(root(), &all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    serde_json::from_slice(&o.stdout).expect("JSON")
}

/// Every field path (`steps[].batches[].hosts[].actions[].what`…) and every value at `leaf`
/// paths asked for.
fn walk(value: &serde_json::Value, path: &str, paths: &mut BTreeSet<String>, values: &mut BTreeSet<(String, String)>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, inner) in map {
                let at = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                if let serde_json::Value::String(text) = inner {
                    values.insert((at.clone(), text.clone()));
                }
                paths.insert(at.clone());
                walk(inner, &at, paths, values);
            }
        }
        serde_json::Value::Array(items) => {
            items.iter().for_each(|item| walk(item, &format!("{path}[]"), paths, values))
        }
        _ => {}
    }
}

#[test]
fn the_plan_json_is_documented_and_named_like_the_events() {
    let doc = std::fs::read_to_string(root().join("docs/plan-json.md")).unwrap();
    let (mut paths, mut values) = (BTreeSet::new(), BTreeSet::new());
    // A stage with a canary and a check command, in a copy of the bundled file.
    let dir = tempfile::tempdir().unwrap();
    let canary = dir.path().join("Deploy.toml");
    let text = std::fs::read_to_string(root().join("Deploy.toml")).unwrap();
    std::fs::write(&canary, format!("{text}\n[stages.production.rolling]\ncanary = 1\n[stages.production.canary]\ncheck = \"true\"\nmax_latency = \"800ms\"\n[stages.production.hooks]\npost_migrate = \"php bin/console app:contract\"\n")).unwrap();
    let canary = canary.display().to_string();
    for args in [
        &["production"][..],
        &["staging"],
        &["production", "--rollback", "--to", "20261120T101010Z-0f0f0f0"],
        &["production", "-c", &canary],
    ] {
        let mut json = plan(args);
        json.as_object_mut().unwrap().remove("record");
        walk(&json, "", &mut paths, &mut values);
    }
    let missing: Vec<&String> = paths
        .iter()
        .filter(|path| !path.starts_with("balancer."))
        .filter(|path| !doc.contains(&format!("`{path}`")))
        .collect();
    assert!(missing.is_empty(), "fields not in docs/plan-json.md: {missing:?}");
    let action = "steps[].batches[].hosts[].actions[]";
    for (path, value) in &values {
        let listed = match path.strip_prefix(action) {
            Some(".run.type") | Some(".until.until") => {
                doc.contains(&format!("- `{value}`")) || doc.contains(&format!(", `{value}`"))
            }
            Some(".what") => doc.contains(&format!("`{value}`")),
            _ => true,
        };
        assert!(listed, "{path} = {value:?} is not in docs/plan-json.md");
    }
    // The same names as the text plan's labels and the events' `action`.
    let whats: BTreeSet<&str> =
        values.iter().filter(|(path, _)| path == &format!("{action}.what")).map(|(_, value)| value.as_str()).collect();
    for name in ["wait idle", "shared", "current", "in service", "drain", "switch"] {
        assert!(whats.contains(name), "{name} missing from {whats:?}");
    }
    let text: String = [
        &["production"][..],
        &["staging"],
        &["production", "--rollback", "--to", "20261120T101010Z-0f0f0f0"],
        &["production", "-c", &canary],
    ]
    .iter()
    .map(|args| {
        let mut all = vec!["plan", "-v"];
        all.extend_from_slice(args);
        stdout(&deploy(root(), &all))
    })
    .collect();
    // (The connect step is laid out as a table of ssh destinations, without labels.)
    for name in whats.iter().filter(|name| **name != "connect") {
        assert!(text.contains(&format!("     {name:<12} ")), "`{name}` is not a label of the text plan");
    }
    // `parallel` is never more than the step's hosts.
    let json = plan(&["production"]);
    for step in json["steps"].as_array().unwrap() {
        let hosts =
            step["batches"].as_array().unwrap().iter().map(|b| b["hosts"].as_array().unwrap().len()).max().unwrap();
        assert!(step["parallel"].as_u64().unwrap() as usize <= hosts.max(1), "{}", step["phase"]);
    }
    assert_eq!(json["balancer"]["kind"], "varnish", "the balancer is an object");
}
