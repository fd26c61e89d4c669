//! Secrets on the farm: hostile values read from the environment reach the hooks exactly,
//! never a process's command line on a host, and no fragment of them reaches any channel:
//! plain `-v` output, JSON events, the human view in a terminal, the final error, webhook
//! bodies, the GitHub step summary, and the release log on the hosts.

use crate::farm::{Farm, Run, Terminal};
use crate::secrets::{HOSTILE, assert_no_fragment};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Read by a prepare hook (quotes, backslash, space, newline, unicode).
const HOOK_VALUE: &str = HOSTILE[8];
/// In the health URL's query, checked from the hosts (quote and shell syntax).
const URL_VALUE: &str = "Kq7Zr'Wm9X$(Ab7Et)";

/// The hook writes what it read, says it on its output, and records every command line on
/// the host while it runs.
const HOOK: &str = r#"printf %s "${HOOK_SECRET}" > "$DEPLOY_PATH/seen"; echo "hook read ${HOOK_SECRET}"; { for p in /proc/[0-9]*; do tr "\000" " " < "$p/cmdline"; echo; done; } > "$DEPLOY_PATH/cmdlines" 2>/dev/null; true"#;

fn check_all(channel: &str, text: &str) {
    assert_no_fragment(channel, HOOK_VALUE, text);
    assert_no_fragment(channel, URL_VALUE, text);
}

fn secret_stage(f: &Farm, hook_addr: &str) {
    // The same, with the health check sent from here to a port nobody listens on: the HTTP
    // library's error quotes the URL, token included, in its own encoding.
    f.add_config(&format!(
        "\n[stages.refused]\n{}\n[stages.refused.health]\nfrom = \"local\"\nurl = \"http://{{address}}:1/health?token=${{URL_SECRET}}\"\nretries = 2\ninterval = \"10ms\"\n",
        f.hosts_toml()
    ));
    f.add_config(&format!(
        "\n[stages.secret]\n{}\n[stages.secret.hooks]\nprepare = ['sh bin/console cache:warmup', '{HOOK}']\n\n[stages.secret.health]\nurl = \"http://{{address}}:8080/health?token=${{URL_SECRET}}\"\nretries = 3\ninterval = \"10ms\"\n\n[[stages.secret.notify]]\nkind = \"json\"\nurl = \"http://{hook_addr}/hook\"\n",
        f.hosts_toml()
    ));
}

fn deploy(f: &Farm, args: &[&str], summary: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_deploy"))
        .arg("-c")
        .arg(f.config())
        .args(args)
        .env("DEPLOY_CACHE_DIR", f.dir.join("cache"))
        .env("HOOK_SECRET", HOOK_VALUE)
        .env("URL_SECRET", URL_VALUE)
        .env("GITHUB_STEP_SUMMARY", summary)
        .env("NO_COLOR", "1")
        .env_remove("CI")
        .output()
        .unwrap()
}

#[test]
fn hostile_secrets_reach_the_hooks_and_nothing_else() {
    let f = Farm::start(2);
    let (addr, got) = crate::farm::webhook_listener();
    secret_stage(&f, &addr);
    let summary = f.dir.join("summary.md");

    // A release that passes: plain output with every remote line (`-v`).
    let o = deploy(&f, &["secret", "-v", "--output", "plain"], &summary);
    let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(0), "{all}");
    check_all("plain -v", &all);
    assert!(all.contains("hook read ${HOOK_SECRET}"), "the hook's output names the variable: {all}");
    for (host, _) in &f.hosts {
        let root = f.root(host);
        // The hook read the exact value, from its environment.
        assert_eq!(std::fs::read_to_string(root.join("seen")).unwrap(), HOOK_VALUE, "{host}");
        // No process on the host had it on its command line while the hook ran; the scan saw
        // the hook's own shell (its text names the variable) and the line deploy sent.
        let lines = std::fs::read_to_string(root.join("cmdlines")).unwrap();
        check_all(&format!("{host}'s command lines"), &lines);
        assert!(lines.contains("HOOK_SECRET"), "the scan saw the hook itself: {lines}");
        assert!(lines.contains("timeout -k 10s"), "the hook as it ran: {lines}");
        let log = std::fs::read_to_string(root.join(".deploy/releases.jsonl")).unwrap();
        check_all(&format!("{host}'s release log"), &log);
    }

    // A release that fails web1's health check: the URL (with its token) is in every error.
    f.commit("unhealthy on web1", &[("config/break-health-on", Some("web1\n"))]);
    let o = deploy(&f, &["secret", "-v", "--output", "json"], &summary);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    check_all("JSON events", &out);
    check_all("final error", &err);
    assert!(format!("{out}{err}").contains("token=${URL_SECRET}"), "the name is shown instead: {out}{err}");
    // Failure events follow the documented schema too.
    let run = Run::new(1, out.lines().map(|l| serde_json::from_str(l).unwrap()).collect(), err.clone());
    for name in ["failed", "host_state", "waiting", "finished"] {
        assert!(run.events.iter().any(|e| e["event"] == name), "no {name} event in a failed deploy: {out}");
    }
    crate::farm::assert_documented(&run.events);

    // The human view in a real terminal, with the health check refused (the error quotes the
    // URL as the HTTP library writes it); and the same in plain text on stderr.
    let screen = in_tmux(&f);
    check_all("terminal", &screen);
    assert!(screen.contains("EXIT=1"), "{screen}");
    // (--no-auto-rollback: a rollback's health check would be refused as well, and exit 4.)
    let o = deploy(&f, &["refused", "--output", "plain", "--no-auto-rollback"], &summary);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    check_all("stderr, health refused", &err);
    assert!(err.contains("${URL_SECRET}"), "the error names the variable: {err}");

    check_all("step summary", &std::fs::read_to_string(&summary).unwrap());
    for (host, _) in &f.hosts {
        let log = std::fs::read_to_string(f.root(host).join(".deploy/releases.jsonl")).unwrap();
        check_all(&format!("{host}'s release log"), &log);
        assert!(log.contains("\"rolled back\""), "{log}");
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().len() < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let bodies: String = got.lock().unwrap().iter().map(|(path, body)| format!("{path} {body}\n")).collect();
    assert!(bodies.contains("failure"), "webhooks arrived: {bodies}");
    check_all("webhook bodies", &bodies);
}

/// Runs the failing deploy in a tmux terminal; returns everything it showed, from the
/// terminal's history.
fn in_tmux(f: &Farm) -> String {
    let script = f.dir.join("run-in-tmux.sh");
    let quote = |text: &str| deploy::remote::quote(text);
    std::fs::write(
        &script,
        format!(
            "export HOOK_SECRET={} URL_SECRET={} DEPLOY_CACHE_DIR={}\n{} -c {} refused -v --no-auto-rollback\necho EXIT=$?\nsleep 60\n",
            quote(HOOK_VALUE),
            quote(URL_VALUE),
            quote(&f.dir.join("cache").display().to_string()),
            env!("CARGO_BIN_EXE_deploy"),
            quote(&f.config().display().to_string()),
        ),
    )
    .unwrap();
    let terminal = Terminal::start("secret", &format!("sh {}", script.display()), 200, 50);
    let mut seen = String::new();
    let last = terminal.until_exit(&["-S", "-"], Duration::from_secs(120), |screen| seen.push_str(screen));
    seen.push_str(&last);
    seen
}
