//! The shape of the source, checked: what ARCHITECTURE.md promises stays true as the code
//! changes. Each check reads `src/` as text and names every place that breaks it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every top-level module and the modules it may use, in dependency order: a module may
/// only use modules listed before it, so dependencies run one way.
const LAYERS: &[(&str, &[&str])] = &[
    ("release_id", &[]),
    ("secrets", &[]),
    ("local_user", &[]),
    ("config", &["secrets"]),
    ("remote", &["release_id", "secrets"]),
    ("transport", &["remote", "secrets"]),
    ("balancer", &["config", "remote"]),
    ("http_cache", &["balancer", "config", "remote"]),
    ("plan", &["balancer", "config", "http_cache", "remote"]),
    ("artifact", &["config", "local_user", "plan", "remote", "transport"]),
    ("who", &["local_user", "plan", "release_id"]),
    ("report", &["balancer", "config", "plan", "release_id", "transport"]),
    ("runner", &["artifact", "balancer", "config", "plan", "release_id", "remote", "report", "transport"]),
    ("error", &["artifact", "config", "plan", "remote", "runner", "transport"]),
    ("cli", &["config"]),
    ("settings", &["cli", "config", "error", "release_id"]),
    (
        "commands",
        &[
            "artifact",
            "balancer",
            "config",
            "error",
            "plan",
            "release_id",
            "remote",
            "report",
            "runner",
            "settings",
            "transport",
            "who",
        ],
    ),
];

const MAX_LINES: usize = 400;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `src/`, with its text.
fn sources() -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, files: &mut Vec<(PathBuf, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().map(|entry| entry.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path, text));
            }
        }
    }
    let mut files = Vec::new();
    walk(&src(), &mut files);
    files
}

fn relative(path: &Path) -> String {
    path.strip_prefix(src()).unwrap().display().to_string()
}

/// The top-level module a file belongs to (`runner/host.rs` → `runner`); `None` for the crate
/// root and the binary.
fn module_of(path: &Path) -> Option<String> {
    let rel = relative(path);
    let first = rel.split('/').next().unwrap().trim_end_matches(".rs").to_string();
    (first != "lib" && first != "main").then_some(first)
}

/// Lines of code: comments and doc comments left out.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(index, line)| (index + 1, line)).filter(|(_, line)| {
        let trimmed = line.trim_start();
        !trimmed.starts_with("//")
    })
}

#[test]
fn no_source_file_is_over_400_lines() {
    let long: Vec<String> = sources()
        .iter()
        .filter(|(_, text)| text.lines().count() > MAX_LINES)
        .map(|(path, text)| format!("{}: {} lines", relative(path), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "files over {MAX_LINES} lines (split them by concern):\n{}", long.join("\n"));
}

/// The crate modules a line names: `crate::plan::What`, `crate::{plan, remote::Cmd}`.
fn crate_modules(line: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for item in inner.split(',') {
                let name: String = item.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    found.push(name);
                }
            }
        } else {
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.push(name);
        }
        rest = after;
    }
    found
}

#[test]
fn dependencies_run_one_way() {
    // The table itself runs one way: a module may use only modules listed before it.
    for (index, (module, uses)) in LAYERS.iter().enumerate() {
        for used in *uses {
            let before = LAYERS[..index].iter().any(|(earlier, _)| earlier == used);
            assert!(before, "LAYERS: {module} uses {used}, which is not listed before it");
        }
    }
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for (path, text) in sources() {
        let Some(module) = module_of(&path) else { continue };
        let Some(uses) = allowed.get(module.as_str()) else {
            problems.push(format!("{}: module `{module}` is not in LAYERS", relative(&path)));
            continue;
        };
        for (number, line) in code_lines(&text) {
            for used in crate_modules(line) {
                if used != module && used != "Error" && !uses.contains(&used.as_str()) {
                    problems.push(format!("{}:{number}: `{module}` uses `{used}`: {}", relative(&path), line.trim()));
                }
            }
        }
    }
    assert!(problems.is_empty(), "dependencies against the grain (see ARCHITECTURE.md):\n{}", problems.join("\n"));
}

#[test]
fn one_place_builds_the_plans_that_run() {
    // `deploy plan` prints what `deploy` runs only if both get their plan from one builder.
    let builders: Vec<String> = sources()
        .iter()
        .filter(|(path, _)| !relative(path).starts_with("plan/"))
        .flat_map(|(path, text)| {
            code_lines(text)
                .filter(|(_, line)| line.contains("plan::deploy(") || line.contains("plan::rollback("))
                .map(|(number, line)| format!("{}:{number}: {}", relative(path), line.trim()))
                .collect::<Vec<_>>()
        })
        .collect();
    let elsewhere: Vec<&String> = builders.iter().filter(|at| !at.starts_with("commands/plans.rs:")).collect();
    assert!(elsewhere.is_empty(), "plans built outside commands/plans.rs: {elsewhere:#?}");
    assert_eq!(builders.len(), 2, "one deploy and one rollback builder: {builders:#?}");
}

#[test]
fn architecture_md_shows_the_same_order() {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md")).unwrap();
    let section = page.split("## Dependencies run one way").nth(1).expect("the section");
    let chain = section.split("```").nth(1).expect("its chain");
    let shown: Vec<&str> =
        chain.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    let order: Vec<&str> = LAYERS.iter().map(|(module, _)| *module).collect();
    assert_eq!(shown, order, "ARCHITECTURE.md and LAYERS disagree");
}

#[test]
fn no_type_name_is_defined_twice() {
    let mut defined: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (path, text) in sources() {
        for (number, line) in code_lines(&text) {
            let words: Vec<&str> = line.split_whitespace().collect();
            for (index, word) in words.iter().enumerate() {
                if matches!(*word, "struct" | "enum" | "trait" | "type")
                    && (index == 0 || words[index - 1].starts_with("pub"))
                    && let Some(name) = words.get(index + 1)
                {
                    let name: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                    defined.entry(name).or_default().push(format!("{}:{number}", relative(&path)));
                }
            }
        }
    }
    let twice: Vec<String> = defined
        .iter()
        .filter(|(_, places)| places.len() > 1)
        .map(|(name, places)| format!("{name}: {}", places.join(", ")))
        .collect();
    assert!(twice.is_empty(), "one name, several types:\n{}", twice.join("\n"));
}

/// One-letter names where a binding is made: `let x`, `for x in`, `Some(x)`, `|x| {` opening a
/// closure of several lines, a parameter or field `x: T`. A closure that fits on its line may
/// keep its `|x|`.
fn one_letter_bindings(line: &str) -> Vec<String> {
    let is_letter = |word: &str| word.len() == 1 && word.chars().all(|c| c.is_ascii_lowercase());
    let mut found = Vec::new();
    let tokens: Vec<String> = line
        .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '\''))
        .filter(|token| !token.is_empty())
        .map(String::from)
        .collect();
    // `let x`, `let mut x`, `for x in`, `let (x, y)`, `for (x, y) in`.
    let trimmed = line.trim_start();
    for keyword in ["let ", "for ", "if let ", "while let ", "} else if let "] {
        if let Some(rest) = trimmed.strip_prefix(keyword) {
            let pattern = match keyword {
                "for " => rest.split(" in ").next().unwrap_or(""),
                _ => rest.split('=').next().unwrap_or(""),
            };
            let pattern = pattern.split(':').next().unwrap_or("");
            for word in pattern.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if is_letter(word) {
                    found.push(format!("`{word}` bound by {}", keyword.trim()));
                }
            }
        }
    }
    // `Some(x)`, `Ok((x, _))`, `Err(x)` in patterns.
    for wrapper in ["Some(", "Ok(", "Err("] {
        for (at, _) in line.match_indices(wrapper) {
            let inner: String = line[at + wrapper.len()..].chars().take_while(|c| *c != '=' && *c != '|').collect();
            let inner = inner.split("))").next().unwrap_or("").split(") ").next().unwrap_or("");
            let arm = line[at..].contains("=>") || trimmed.starts_with("if let") || trimmed.starts_with("let");
            if arm && !inner.contains(['\'', '"']) {
                for word in inner.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                    if is_letter(word) {
                        found.push(format!("`{word}` bound by {wrapper}…)"));
                    }
                }
            }
        }
    }
    // `|x| {` opening a closure of several lines.
    if let Some(open) = line.trim_end().strip_suffix('{') {
        if let Some(params) = open.trim_end().strip_suffix('|').and_then(|head| head.rsplit_once('|')) {
            for word in params.1.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
                if is_letter(word) {
                    found.push(format!("`{word}` bound by a closure of several lines"));
                }
            }
        }
    }
    // `x: T` as a parameter or a field.
    for (index, token) in tokens.iter().enumerate() {
        if is_letter(token) && index + 1 < tokens.len() {
            let after = line.split(token.as_str()).nth(1).unwrap_or("");
            let before_ok = line.contains(&format!("({token}:"))
                || line.contains(&format!(", {token}:"))
                || trimmed.starts_with(&format!("{token}:"))
                || trimmed.starts_with(&format!("mut {token}:"));
            if before_ok && after.starts_with(": ") && !after.starts_with(": :") {
                found.push(format!("`{token}` as a parameter or field"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

#[test]
fn bindings_have_names() {
    let mut problems = Vec::new();
    for (path, text) in sources() {
        for (number, line) in code_lines(&text) {
            for problem in one_letter_bindings(line) {
                problems.push(format!("{}:{number}: {problem}: {}", relative(&path), line.trim()));
            }
        }
    }
    assert!(problems.is_empty(), "name what is bound ({} places):\n{}", problems.len(), problems.join("\n"));
}

#[test]
fn the_checks_see_what_they_look_for() {
    // Each check fails on the thing it forbids (its control).
    assert_eq!(crate_modules("use crate::{plan, remote::Cmd};"), ["plan", "remote"]);
    assert_eq!(crate_modules("let x = crate::cli::Cli::parse();"), ["cli"]);
    for bad in [
        "let x = 1;",
        "for (i, line) in lines {",
        "if let Some(e) = found {",
        "Err(e) => return Err(e),",
        "Some((g, n)) => g == n,",
        "fn run(g: &Global) {",
        "set.spawn(async move |h| {",
    ] {
        assert!(!one_letter_bindings(bad).is_empty(), "not caught: {bad}");
    }
    for good in [
        "let names = hosts.iter().map(|h| h.name.clone()).collect();",
        "fn fmt(&self, out: &mut fmt::Formatter<'_>) -> fmt::Result {",
        "impl<'a, T: Transport> Runner<'a, T> {",
        "let line = format!(\"{x}\");",
    ] {
        assert!(one_letter_bindings(good).is_empty(), "caught wrongly: {good}: {:?}", one_letter_bindings(good));
    }
}
