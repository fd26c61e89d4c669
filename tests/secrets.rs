//! Secrets read from the environment: no fragment of a hostile value in any form deploy
//! writes (plan text and JSON, config errors, escaped forms), and none on a command line
//! sent to a host. The farm half (events, `-v`, the terminal, webhooks, the step summary,
//! the hosts' files and process lists) is in `farm_secrets.rs`.

use crate::support::*;
use deploy::config::Secrets;
use deploy::remote::{Cmd, health, hooks, quote};
use std::time::Duration;

/// Values a review would try: quotes, backslash, space, newline, unicode, shell syntax, JSON
/// and URL syntax. Each is built from runs like `Kq7Z` that appear nowhere else, so a
/// fragment of the value is easy to look for.
pub const HOSTILE: &[&str] = &[
    "Kq7Zr'Wm9X",
    "Tn6H\"Jd5Q",
    "Bx4V\\Lc8P",
    "Gy3N Rf2Ks",
    "Zp5Y\nMu6Cw",
    "Qe8€Hv1Dn",
    "Wr2$(Ab7Et)`Fo9`",
    "Jc4{\"k\":'Ul3'}\\n%Yt6&Sa1=",
    "Np7'\"\\ \n€Vi2",
];

/// The runs of letters and digits in `value` (at least three long): what may never appear.
pub fn fragments(value: &str) -> Vec<String> {
    value.split(|c: char| !c.is_ascii_alphanumeric()).filter(|run| run.len() >= 3).map(str::to_string).collect()
}

/// Panics naming the channel when any fragment of `value` is in `text`.
pub fn assert_no_fragment(channel: &str, value: &str, text: &str) {
    for fragment in fragments(value) {
        assert!(!text.contains(&fragment), "{channel}: `{fragment}` of {value:?} appears in:\n{text}");
    }
}

fn secrets(value: &str) -> Secrets {
    let mut secrets = Secrets::default();
    secrets.add(value, "TOKEN");
    secrets
}

#[test]
fn every_escaped_form_is_redacted() {
    for value in HOSTILE {
        let secrets = secrets(value);
        let inside = format!("Bearer {value}!");
        let rendered = [
            ("as is", inside.clone()),
            ("shell-quoted", quote(&inside)),
            ("a command", Cmd::new("curl").arg("-H").arg(&inside).to_string()),
            ("JSON", serde_json::to_string(&inside).unwrap()),
            ("JSON of a command", serde_json::to_string(&Cmd::script(format!("echo '{inside}'"))).unwrap()),
            ("Debug", format!("{inside:?}")),
            (
                "curl config",
                health::request("GET", "http://x/", &[("A".into(), inside.clone())], Duration::from_secs(1))
                    .to_string(),
            ),
            ("percent-encoded URL", format!("http://x/?t={}", percent(&inside))),
            ("a URL as an HTTP library prints it", url(&format!("http://x/?t={inside}"))),
            ("a URL path as an HTTP library prints it", url(&format!("http://x/{inside}/h"))),
            ("line by line", inside.lines().map(|line| format!("web1 | {line}\n")).collect()),
            ("sh -x", format!("+ curl -H '{}'", inside.replace('\'', "'\"'\"'"))),
        ];
        for (channel, text) in rendered {
            let shown = secrets.redact(&text);
            assert_no_fragment(channel, value, &shown);
            assert!(shown.contains("${TOKEN}"), "{channel}: {shown}");
        }
        // JSON redacted value by value before it is written.
        let json = serde_json::json!({ "message": inside, "nested": [{ "cmd": quote(&inside) }] });
        assert_no_fragment("JSON value", value, &secrets.redact_json(json).to_string());
    }
}

/// `text` parsed and printed again by reqwest's URL type (what its errors show).
fn url(text: &str) -> String {
    reqwest::Url::parse(text).map(|url| url.to_string()).unwrap_or_else(|_| text.to_string())
}

fn percent(text: &str) -> String {
    text.bytes()
        .map(|byte| if byte.is_ascii_alphanumeric() { (byte as char).to_string() } else { format!("%{byte:02X}") })
        .collect()
}

#[test]
fn no_secret_on_a_remote_command_line() {
    for value in HOSTILE {
        let secrets = secrets(value);
        let hook = hooks::run(
            "/srv/app/releases/1",
            &format!("curl -H 'X: {}' https://x", value.replace('\'', "'\\''")),
            &hooks::HookEnv { stage: "p", release: "1", path: "/srv/app", timeout: Duration::from_secs(60) },
        );
        let header =
            health::request("PURGE", "http://x/", &[("X-Token".into(), value.to_string())], Duration::from_secs(1));
        let url = health::fetch_status(&format!("http://x/health?t={value}"), &[], Duration::from_secs(1));
        let exports = [("TOKEN".to_string(), value.to_string())];
        for (what, cmd) in [("hook", hook), ("header", header), ("url", url)] {
            let wire = cmd.wire(&secrets, &exports);
            assert_no_fragment(what, value, &wire.line);
            let (line, stdin) = wire.preamble().expect("private values go on stdin");
            assert_no_fragment(what, value, &line);
            assert!(line.starts_with("eval \"$(head -c "), "{line}");
            // The value (or its escaped form) travels privately instead.
            assert!(wire.private.iter().any(|(_, private)| secrets.found_in(private)), "{what}: {:?}", wire.private);
            let stdin = String::from_utf8(stdin).unwrap();
            assert!(stdin.ends_with(&format!("{}\n", wire.line)), "{stdin}");
        }
    }
    // A command without a secret goes as it is.
    let plain = Cmd::new("ls").arg("/srv");
    let wire = plain.wire(&secrets("Kq7Zr'Wm9X"), &[]);
    assert_eq!((wire.line.as_str(), wire.preamble()), ("ls /srv", None));
}

/// The preamble, run by a real shell, gives the command exactly the value: nothing is lost
/// or changed on the way, whatever the value holds.
#[test]
fn the_host_shell_reads_the_exact_value() {
    for value in HOSTILE {
        let secrets = secrets(value);
        // A hook reading the variable, and an argument holding the value.
        let cmd = Cmd::script("printf '%s|' \"$TOKEN\"").and(Cmd::new("printf").arg("%s").arg(*value));
        let wire = cmd.wire(&secrets, &[("TOKEN".to_string(), value.to_string())]);
        let (line, stdin) = wire.preamble().unwrap();
        let mut child = std::process::Command::new("sh")
            .args(["-c", &line])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{value}|{value}"), "{line}");
    }
}

const CONFIG: &str = r#"
[app]
name = "shop"
path = "/srv/shop"

[hooks]
prepare = ["curl -fsS -H \"Authorization: Bearer ${TOKEN}\" https://license.example/check"]

[health]
url = "http://{address}/health?token=${TOKEN}"

[stages.production]
hosts = [{ name = "web1", address = "127.0.0.1", roles = ["app"] }]

[[stages.production.http_cache]]
kind = "http"
url = "https://cdn.example/purge"
headers = { Authorization = "Bearer ${TOKEN}" }
"#;

#[test]
fn plans_and_config_errors_show_the_name() {
    let repo = git_repo(&[("index.html", "hi")]);
    std::fs::write(repo.path().join("Deploy.toml"), CONFIG).unwrap();
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-qm", "config"]);
    for value in HOSTILE {
        for args in
            [&["plan", "production"][..], &["plan", "production", "--output", "json"], &["plan", "production", "-v"]]
        {
            let o = deploy_env(repo.path(), args, &[("TOKEN", value)]);
            let all = format!("{}{}", stdout(&o), stderr(&o));
            assert_no_fragment(&format!("deploy {}", args.join(" ")), value, &all);
            assert!(all.contains("${TOKEN}"), "{all}");
            if value.contains(['\n', '\r']) {
                // A header value is one line: a token that spans lines is refused, unquoted.
                assert_eq!(o.status.code(), Some(2), "{all}");
                assert!(all.contains("spans lines"), "{all}");
            } else {
                assert_eq!(o.status.code(), Some(0), "{all}");
            }
        }
        // A config error quoting the expanded value: a notify URL that is not a URL.
        let broken = format!("{CONFIG}\n[[stages.production.notify]]\nkind = \"json\"\nurl = \"${{TOKEN}}\"\n");
        std::fs::write(repo.path().join("Deploy.toml"), &broken).unwrap();
        let o = deploy_env(repo.path(), &["plan", "production"], &[("TOKEN", value)]);
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert!(stderr(&o).contains("notify"), "{}", stderr(&o));
        assert_no_fragment("config error", value, &stderr(&o));
        std::fs::write(repo.path().join("Deploy.toml"), CONFIG).unwrap();
    }
}
