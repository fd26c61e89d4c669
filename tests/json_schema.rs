//! docs/json-events.md documents exactly the events and fields of `src/report/schema.rs`.
//! (tests/farm_operator.rs checks that a real deploy prints exactly those.)

use deploy::report::schema;

#[test]
fn the_documentation_lists_every_event_and_field() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/json-events.md")).unwrap();
    let mut documented: Vec<(String, Vec<String>)> = Vec::new();
    let mut lines = doc.lines().peekable();
    while let Some(l) = lines.next() {
        let Some(name) = l.strip_prefix("### `").and_then(|r| r.strip_suffix('`')) else { continue };
        let fields = lines
            .by_ref()
            .find_map(|l| l.strip_prefix("fields: "))
            .unwrap_or_else(|| panic!("{name}: no `fields:` line"))
            .split(", ")
            .map(|f| f.trim_matches('`').to_string())
            .collect();
        documented.push((name.to_string(), fields));
    }
    let code: Vec<(String, Vec<String>)> =
        schema::EVENTS.iter().map(|(n, f)| (n.to_string(), f.iter().map(|x| x.to_string()).collect())).collect();
    assert_eq!(documented, code, "docs/json-events.md and src/report/schema.rs differ");
    assert!(doc.contains(&format!("\"v\": {}", schema::VERSION)), "the version is documented");
}
