//! Nothing waits forever and every stop is clean: a hook past `[hooks] timeout` is killed on
//! the host with its process group; SIGHUP (the operator's terminal closed) in the middle of
//! a long activate hook stops it on the host, puts the hosts back and ends with exit 1.

use crate::farm::{Farm, Terminal, events};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Processes on this machine whose command line is exactly `words` (the farm's hosts are
/// local sshd instances, so their processes are here too).
fn running(words: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(line) = std::fs::read(entry.path().join("cmdline")) else { continue };
        let line: Vec<String> = line
            .split(|byte| *byte == 0)
            .filter(|part| !part.is_empty())
            .map(|part| String::from_utf8_lossy(part).into())
            .collect();
        if line.join(" ") == words {
            found.push(pid);
        }
    }
    found
}

fn gone_soon(words: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if running(words).is_empty() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_hook_past_its_timeout_is_killed_on_the_host_with_its_group() {
    let f = Farm::start(1);
    let first = f.deploy_json(&["farm"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    // A prepare hook that hangs, with a child in its group and one that leaves the group
    // (the control: the scan below does see a process that survives).
    let hook = "setsid sleep 3118 </dev/null >/dev/null 2>&1 & sleep 3117 & sleep 3119";
    let toml = std::fs::read_to_string(f.config()).unwrap();
    let toml = toml.replacen("\n[hooks]\n", &format!("\n[hooks]\ntimeout = \"2s\"\nprepare = [\"{hook}\"]\n"), 1);
    let toml = toml.replacen("prepare = [\"sh bin/console cache:warmup\"]\n", "", 1);
    std::fs::write(f.config(), toml).unwrap();
    f.commit("next", &[("src/Next.php", Some("<?php\n"))]);
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed: String = events(&run.events, "failed", None).iter().map(|e| e.to_string()).collect();
    assert!(failed.contains("did not finish within 2s ([hooks] timeout): killed on the host"), "{failed}");
    assert!(gone_soon("sleep 3119") && gone_soon("sleep 3117"), "the hook and its child were killed");
    let escaped = running("sleep 3118");
    assert_eq!(escaped.len(), 1, "the control: a process that left the group is still seen");
    for pid in escaped {
        let _ = Command::new("kill").arg(pid.to_string()).status();
    }
    assert_eq!(f.current("web1"), first.release, "nothing was switched");
    assert!(f.no_locks());
}

/// Runs `deploy farm --output json` in a tmux terminal, events to a file.
fn in_terminal(f: &Farm, events: &Path) -> Terminal {
    let line = format!(
        "DEPLOY_CACHE_DIR={} {} -c {} farm --output json > {} 2>&1",
        f.dir.join("cache").display(),
        env!("CARGO_BIN_EXE_deploy"),
        f.config().display(),
        events.display()
    );
    Terminal::start("hup", &line, 80, 24)
}

fn read_events(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

#[test]
fn closing_the_terminal_mid_hook_stops_the_hook_and_restores() {
    let f = Farm::start(2);
    let good = f.deploy_json(&["farm"]).release.expect("a first release");
    // web2's activate hook sleeps 30 s (once).
    f.commit("slow on web2", &[("config/slow-activate-on", Some("web2\n"))]);
    let file = f.dir.join("hup.jsonl");
    let terminal = in_terminal(&f, &file);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !read_events(&file).iter().any(|e| e["event"] == "host_switched" && e["host"] == "web2") {
        assert!(Instant::now() < deadline, "web2 was never switched: {:?}", std::fs::read_to_string(&file));
        std::thread::sleep(Duration::from_millis(50));
    }
    let marker = f.root("web2").join("shared/var/log/slow-activate-web2");
    while !marker.exists() {
        assert!(Instant::now() < deadline, "web2's slow hook never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The terminal goes away: SIGHUP to deploy.
    drop(terminal);
    while !read_events(&file).iter().any(|e| e["event"] == "finished") {
        assert!(Instant::now() < deadline, "deploy did not finish: {:?}", std::fs::read_to_string(&file));
        std::thread::sleep(Duration::from_millis(100));
    }
    let ev = read_events(&file);
    let finished = ev.iter().find(|e| e["event"] == "finished").unwrap();
    assert_eq!(finished["exit_code"], 1, "{finished}");
    // web2's hook was stopped on the host: it never finished (the line it writes after its
    // sleep is missing), and no process of it is left in web2's releases.
    let releases = f.root("web2").join("releases");
    let left: Vec<u32> = running("sleep 30")
        .into_iter()
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|cwd| cwd.starts_with(&releases)))
        .collect();
    assert!(left.is_empty(), "the hook's sleep is still running: {left:?}");
    let log = std::fs::read_to_string(f.root("web2").join("shared/var/log/cache-clear.log")).unwrap_or_default();
    let new = events(&ev, "deploy_started", None)[0]["release"].as_str().unwrap().to_string();
    assert!(!log.contains(&format!("web2 {new}")), "the rest of the hook ran: {log}");
    // Everything back as before, in service, unlocked.
    for host in ["web1", "web2"] {
        assert_eq!(f.current(host).as_deref(), Some(good.as_str()), "{host}");
    }
    assert!(f.all_in_varnish(), "every host back in the balancer");
    assert!(f.no_locks());
}
