//! The plan excerpts in the README's quick tour and in getting-started.md are what `deploy
//! plan` prints for the config shown beside them: each excerpt line is a line of the real
//! plan, in order (release ids and commits aside; a line ending in `…` is a prefix; `…`
//! alone stands for lines left out).

use crate::support::*;
use std::path::Path;

fn doc(name: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(name)).unwrap()
}

/// The first fenced block after `marker` whose opening fence is `fence`.
fn block_after(text: &str, marker: &str, fence: &str) -> String {
    let from = text.find(marker).unwrap_or_else(|| panic!("no {marker:?}"));
    let start = text[from..].find(&format!("\n{fence}\n")).map(|at| from + at + fence.len() + 2).unwrap();
    let end = text[start..].find("\n```").map(|at| start + at).unwrap();
    text[start..end].to_string()
}

/// Release ids and commits as placeholders, so that an example matches any run.
fn normalized(line: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = line.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        let rest: String = chars[at..].iter().collect();
        let id = rest.len() >= 24
            && rest.as_bytes()[..8].iter().all(u8::is_ascii_digit)
            && rest.get(8..9) == Some("T")
            && rest.as_bytes()[9..15].iter().all(u8::is_ascii_digit)
            && rest.get(15..17) == Some("Z-");
        let hex = rest.chars().take_while(char::is_ascii_hexdigit).count();
        if id {
            out.push_str("RELEASE");
            at += 24;
        } else if hex == 40 {
            out.push_str("COMMIT");
            at += 40;
        } else {
            out.push(chars[at]);
            at += 1;
        }
    }
    out
}

fn assert_excerpt(name: &str, config: &str, excerpt: &str) {
    let repo = git_repo(&[("Deploy.toml", config)]);
    let o = deploy(repo.path(), &["plan", "production"]);
    assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
    let plan: Vec<String> = stdout(&o).lines().map(normalized).collect();
    let mut from = 0;
    for line in excerpt.lines().map(normalized) {
        if line.trim().is_empty() || line.trim() == "…" {
            continue;
        }
        let found = match line.strip_suffix('…') {
            Some(prefix) => plan[from..].iter().position(|real| real.starts_with(prefix)),
            None => plan[from..].iter().position(|real| *real == line),
        };
        match found {
            Some(at) => from += at + 1,
            None => panic!(
                "{name}: the plan excerpt has a line the plan does not print (in this order):\n{line}\n\nthe plan:\n{}",
                plan.join("\n")
            ),
        }
    }
}

#[test]
fn the_readme_plan_excerpt_is_what_plan_prints() {
    let readme = doc("README.md");
    let config = block_after(&readme, "## A quick tour", "```toml");
    let excerpt = block_after(&readme, "`deploy plan production` prints", "```");
    assert_excerpt("README.md", &config, &excerpt);
}

#[test]
fn the_getting_started_plan_excerpt_is_what_plan_prints() {
    let guide = doc("docs/getting-started.md");
    let config = block_after(&guide, "## Write `Deploy.toml`", "```toml");
    let excerpt = block_after(&guide, "## See the plan, offline", "```text");
    assert_excerpt("docs/getting-started.md", &config, &excerpt);
}
