//! A deploy can never leave the site half-done: rollback, automatic rollback on failure,
//! interruption, recovery with `deploy unlock`, lock contention. Every scenario runs under
//! continuous HTTP load through Varnish and ends with every host healthy and in the balancer,
//! all hosts on one release, no lock left, and not one failed request.

use crate::farm::load::{Load, Report};
use crate::farm::{Farm, Run, events};
use std::time::Duration;

/// A farm with one good release deployed, and load running through Varnish.
fn loaded_farm(hosts: usize) -> (Farm, String, Load) {
    let f = Farm::start(hosts);
    let Run { code, stderr: err, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let good = release.expect("a release");
    let addr = f.varnish_url().trim_start_matches("http://").to_string();
    let load = Load::start(&addr, "/cart", 4, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(300));
    (f, good, load)
}

fn commit(f: &Farm, what: &str, extra: &[(&str, Option<&str>)]) -> String {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let mut changes = vec![("templates/index.html", Some(format!("<p>{what} {n} @COMMIT@</p>\n")))];
    changes.extend(extra.iter().map(|(p, t)| (*p, t.map(String::from))));
    let refs: Vec<(&str, Option<&str>)> = changes.iter().map(|(p, t)| (*p, t.as_deref())).collect();
    f.commit(what, &refs)
}

/// The end state every scenario must reach.
fn assert_safe(f: &Farm, load: Load, release: &str) -> Report {
    std::thread::sleep(Duration::from_millis(300));
    let r = load.stop();
    eprintln!("load: {} ok, {} bad status, {} connection errors; {:?}", r.ok, r.bad_status, r.conn_errors, r.samples);
    assert_eq!(
        f.common_release().as_deref(),
        Some(release),
        "hosts not all on {release}: {:?}",
        f.hosts.iter().map(|(h, _)| f.current(h)).collect::<Vec<_>>()
    );
    assert!(f.no_locks(), "a lock or journal was left behind");
    for _ in 0..30 {
        if f.all_in_varnish() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(f.all_in_varnish(), "not every host is in the balancer:\n{}", f.varnishadm(&["backend.list"]));
    assert!(r.ok > 100, "too little load to mean anything: {r:?}");
    assert_eq!((r.bad_status, r.conn_errors), (0, 0), "failed requests: {:?}", r.samples);
    r
}

#[test]
fn rollback_goes_back_and_never_bounces() {
    let (f, first, load) = loaded_farm(3);
    commit(&f, "second", &[]);
    let Run { code, stderr: err, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let second = release.expect("a release");
    commit(&f, "third", &[]);
    let Run { code, stderr: err, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let third = release.expect("a release");

    // third → second; no build, no upload, no migration; says migrations stay.
    let Run { code, events: ev, stderr: err, .. } = f.deploy_json(&["rollback", "farm"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(f.common_release().as_deref(), Some(second.as_str()));
    assert!(events(&ev, "built", None).is_empty() && events(&ev, "host_received", None).is_empty());
    assert!(events(&ev, "migrated", None).is_empty());
    assert!(
        events(&ev, "warning", None)
            .iter()
            .any(|w| w["message"].as_str().unwrap().contains("migrations are NOT reversed"))
    );
    assert_eq!(events(&ev, "host_drained", None).len(), 3, "rolled like a deploy");
    // A second rollback goes to the one before, not back to the bad one.
    let Run { code, stderr: err, .. } = f.deploy_json(&["rollback", "farm"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(f.common_release().as_deref(), Some(first.as_str()));
    // --to goes anywhere that is on every host.
    let Run { code, stderr: err, .. } = f.deploy_json(&["rollback", "farm", "--to", &third]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(f.common_release().as_deref(), Some(third.as_str()));
    // An id missing on a host is refused, naming the host, with nothing changed.
    std::fs::remove_dir_all(f.root("web2").join("releases").join(&second)).unwrap();
    let o = f.deploy(&["rollback", "farm", "--to", &second]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("release {second} is not on web2")), "{err}");
    assert_safe(&f, load, &third);
}

fn failing_release(f: &Farm, file: &str, host: &str, extra: &[&str]) -> (i32, Vec<serde_json::Value>, String, String) {
    commit(f, "bad", &[(file, Some(&format!("{host}\n")))]);
    let mut args = vec!["farm"];
    args.extend(extra);
    let Run { code, events: ev, stderr: err, release } = f.deploy_json(&args);
    let bad = release.expect("a release");
    (code, ev, err, bad)
}

#[test]
fn health_check_failing_on_the_second_host_rolls_back() {
    let (f, good, load) = loaded_farm(3);
    let (code, ev, err, bad) = failing_release(&f, "config/break-health-on", "web2", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("health on web2") && err.contains("rolled back"), "{err}");
    let failed = events(&ev, "failed", Some("web2"));
    assert_eq!(failed[0]["action"], "health", "{failed:?}");
    // web1 was switched and is back; web3 was never touched.
    let states = events(&ev, "host_state", None);
    assert!(
        states.iter().any(|s| s["host"] == "web1" && s["release"] == good.as_str() && s["in_service"] == true),
        "{states:?}"
    );
    assert!(events(&ev, "host_switched", Some("web3")).is_empty());
    let r = assert_safe(&f, load, &good);
    assert!(!r.served("web2", &bad), "web2 served the bad release");
    // The abandoned release is gone, and the log says what happened to it.
    for (h, _) in &f.hosts {
        assert!(!f.releases(h).contains(&bad), "{h} keeps {bad}");
        let log = std::fs::read_to_string(f.root(h).join(".deploy/releases.jsonl")).unwrap();
        assert!(log.lines().any(|l| l.contains(&bad) && l.contains("\"outcome\":\"rolled back\"")), "{h}: {log}");
    }
}

#[test]
fn without_auto_rollback_the_bad_release_stays_served() {
    // The same failure with --no-auto-rollback: the test above would catch it.
    let (f, good, load) = loaded_farm(3);
    let (code, ev, err, bad) = failing_release(&f, "config/break-health-on", "web2", &["--no-auto-rollback"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("--no-auto-rollback"), "{err}");
    assert!(
        events(&ev, "host_state", None)
            .iter()
            .any(|s| s["host"] == "web1" && s["note"].as_str().unwrap().contains("left on the new release"))
    );
    std::thread::sleep(Duration::from_millis(300));
    let r = load.stop();
    assert_eq!(f.current("web1").as_deref(), Some(bad.as_str()), "web1 stays on the bad release");
    assert_eq!(f.current("web3").as_deref(), Some(good.as_str()));
    assert!(r.served("web1", &bad), "the bad release is served");
    assert_ne!(f.common_release(), Some(good));
    assert!(f.no_locks());
}

#[test]
fn failing_activate_hook_rolls_back() {
    let (f, good, load) = loaded_farm(3);
    let (code, ev, err, bad) = failing_release(&f, "config/fail-activate-on", "web3", &[]);
    assert_eq!(code, 1, "{err}");
    let failed = events(&ev, "failed", Some("web3"));
    assert_eq!(failed[0]["action"], "activate");
    assert!(failed[0]["output"].as_str().unwrap().contains("cache:clear failed on web3"), "{failed:?}");
    // web1 and web2 had been switched (and served the new release), then went back; web3
    // was switched, failed, and went back too.
    for host in ["web1", "web2", "web3"] {
        assert_eq!(events(&ev, "host_switched", Some(host)).len(), 2, "{host}: switched, then back: {ev:?}");
        let states = events(&ev, "host_state", Some(host));
        assert!(
            states.iter().any(|s| s["release"] == good.as_str() && s["in_service"] == true),
            "{host} back on {good}, in service: {states:?}"
        );
    }
    let r = assert_safe(&f, load, &good);
    assert!(r.served("web1", &bad) && r.served("web2", &bad), "web1 and web2 served the new release first");
    assert!(!r.served("web3", &bad));
}

#[test]
fn lost_host_mid_roll_leaves_the_others_serving_the_old_release() {
    let (f, good, load) = loaded_farm(3);
    commit(&f, "next", &[]);
    let mut killed = false;
    let Run { code, stderr: err, .. } = f.deploy_watch(&["farm"], |e, _| {
        // After web1: web2's whole roll (over half a second) separates the kill from web3.
        if !killed && e["event"] == "host_in_service" && e["host"] == "web1" {
            f.kill_sshd("web3");
            killed = true;
        }
    });
    assert!(killed, "the roll never got past web1: {err}");
    assert!(code == 1 || code == 4, "exit {code}: {err}");
    assert!(err.contains("web3"), "{err}");
    for h in ["web1", "web2"] {
        assert_eq!(f.current(h).as_deref(), Some(good.as_str()), "{h} was not rolled back");
    }
    assert_eq!(f.current("web3").as_deref(), Some(good.as_str()), "web3 was never switched");
    if code == 4 {
        assert!(err.contains("deploy unlock farm"), "exit 4 says how to fix: {err}");
    }
    // The host comes back; `deploy unlock` clears what the lost connection left.
    f.start_sshd("web3");
    let o = f.deploy(&["unlock", "farm"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_safe(&f, load, &good);
}

#[test]
fn first_interrupt_rolls_back_cleanly() {
    let (f, good, load) = loaded_farm(3);
    commit(&f, "next", &[]);
    let mut sent = false;
    let Run { code, events: ev, stderr: err, .. } = f.deploy_watch(&["farm"], |e, pid| {
        if !sent && e["event"] == "host_switched" && e["host"] == "web2" {
            let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
            sent = true;
        }
    });
    assert!(sent);
    assert_eq!(code, 1, "{err}");
    assert!(
        events(&ev, "warning", None)
            .iter()
            .any(|w| w["message"].as_str().unwrap().contains("then every switched host is put back"))
    );
    assert!(events(&ev, "host_switched", Some("web3")).is_empty(), "went on after the interrupt");
    assert_safe(&f, load, &good);
}

#[test]
fn second_interrupt_stops_at_once_and_unlock_recovers() {
    let (f, _, load) = loaded_farm(3);
    // web2's activate hook takes 30 s: a run that waited for it would end with exit 1.
    commit(&f, "slow", &[("config/slow-activate-on", Some("web2\n"))]);
    let mut sent = 0;
    let Run { code, events: ev, stderr: err, .. } = f.deploy_watch(&["farm"], |e, pid| {
        let interrupt = || std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
        if sent == 0 && e["event"] == "host_switched" && e["host"] == "web2" {
            let _ = interrupt();
            sent = 1;
        } else if sent == 1 && e["event"] == "warning" {
            let _ = interrupt();
            sent = 2;
        }
    });
    assert_eq!(sent, 2, "both interrupts sent: {err}");
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("interrupted twice: stopped at once without restoring; run `deploy unlock farm`"), "{err}");
    // At once: web2's hook never finished, and the run still ended with its final event.
    assert!(events(&ev, "host_activated", Some("web2")).is_empty(), "waited for the hook");
    let last = ev.last().unwrap();
    assert_eq!((last["event"].as_str(), last["exit_code"].as_i64()), (Some("finished"), Some(4)), "{last}");
    // Left for `deploy unlock`: the lock, and web2 drained with its journal.
    assert!(f.root("web1").join(".deploy/lock").exists());
    assert!(f.root("web2").join(".deploy/journal.json").exists());
    let o = f.deploy(&["unlock", "farm", "--output", "plain"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let Run { code, stderr: err, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    assert_safe(&f, load, &release.expect("a release"));
}

#[test]
fn killed_deploy_is_recovered_by_unlock_then_deploys_again() {
    let (f, good, load) = loaded_farm(3);
    commit(&f, "next", &[]);
    let mut killed = false;
    let Run { code, .. } = f.deploy_watch(&["farm"], |e, pid| {
        if !killed && e["event"] == "host_drained" && e["host"] == "web2" {
            let _ = std::process::Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            killed = true;
        }
    });
    assert!(killed);
    assert_eq!(code, 128 + 9);
    // Left behind: the lock, and web2 drained with its journal saying so (the kill lands a
    // moment after the event: web2 may also have been switched by then).
    assert!(f.root("web1").join(".deploy/lock").exists());
    let journal = std::fs::read_to_string(f.root("web2").join(".deploy/journal.json")).unwrap();
    assert!(journal.contains("\"draining\"") || journal.contains("\"switching\""), "{journal}");
    assert!(!f.all_in_varnish());
    // A new deploy is refused (exit 3) while the lock is there…
    let o = f.deploy(&["farm"]);
    assert_eq!(o.status.code(), Some(3), "{}", String::from_utf8_lossy(&o.stderr));
    // …`deploy unlock` puts web2 back in service and drops the lock…
    let o = f.deploy(&["unlock", "farm", "--output", "plain"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("web2: on") && err.contains("in service — healthy again"), "{err}");
    // web1 had been switched before the kill and web3 never is (web2 may be either): unlock
    // always finds the hosts on different releases, and says so.
    assert_ne!(f.current("web1").as_deref(), Some(good.as_str()));
    assert_eq!(f.current("web3").as_deref(), Some(good.as_str()));
    assert!(err.contains("hosts disagree"), "{err}");
    // …and a new deploy succeeds.
    let Run { code, stderr: err, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    assert_safe(&f, load, &release.expect("a release"));
}

#[test]
fn two_deploys_at_once_one_runs_the_other_exits_3_or_waits() {
    let (f, _, load) = loaded_farm(3);
    commit(&f, "next", &[]);
    let spawn = |extra: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_deploy"));
        c.arg("-c").arg(f.config()).arg("farm").args(extra).args(["--output", "plain"]);
        c.env("DEPLOY_CACHE_DIR", f.dir.join("cache")).env("USER", "tester").env_remove("CI");
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap()
    };
    let (a, b) = (spawn(&[]), spawn(&[]));
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code().unwrap(), b.status.code().unwrap()];
    codes.sort();
    assert_eq!(codes, [0, 3], "a: {}\nb: {}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    let loser = if a.status.code() == Some(3) { &a } else { &b };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(
        err.contains("is locked by another deploy: tester@")
            && err.contains("(pid ")
            && err.contains("deploying farm since"),
        "{err}"
    );
    let first = f.common_release().unwrap();

    // With --lock-wait the second one waits, then runs: it starts once the first holds the lock.
    commit(&f, "after", &[]);
    let mut b = None;
    let Run { code, stderr: err, release, .. } = f.deploy_watch(&["farm"], |e, _| {
        if b.is_none() && e["event"] == "deploy_started" {
            b = Some(spawn(&["--lock-wait", "2m"]));
        }
    });
    assert_eq!(code, 0, "{err}");
    let a_release = release.expect("a release");
    let b = b.expect("the second deploy started").wait_with_output().unwrap();
    let b_err = String::from_utf8_lossy(&b.stderr);
    assert_eq!(b.status.code(), Some(0), "{b_err}");
    assert!(
        b_err.contains("web1: locked by tester@") && b_err.contains("waiting up to 2m (--lock-wait)"),
        "it waited: {b_err}"
    );
    let b_release =
        b_err.lines().find_map(|l| l.split("release ").nth(1)).unwrap().split_whitespace().next().unwrap().to_string();
    assert_ne!(first, b_release);
    assert_ne!(a_release, b_release, "two releases, one after the other");
    assert_safe(&f, load, &b_release);
}

#[test]
fn build_and_migration_failures_change_nothing() {
    let (f, good, load) = loaded_farm(3);
    commit(&f, "broken build", &[("config/break-build", Some("syntax error in app.js"))]);
    let Run { code, events: ev, stderr: err, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("build failed") && err.contains("syntax error in app.js"), "{err}");
    assert!(events(&ev, "host_drained", None).is_empty() && events(&ev, "host_switched", None).is_empty());
    assert!(events(&ev, "host_received", None).is_empty(), "nothing uploaded");

    commit(
        &f,
        "fixed build, broken migration",
        &[("config/break-build", None), ("migrations/0002_x.sql", Some("ALTER FAIL;\n"))],
    );
    let Run { code, events: ev, stderr: err, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("migrate on web1 failed"), "{err}");
    assert!(events(&ev, "host_drained", None).is_empty() && events(&ev, "host_switched", None).is_empty());
    for (h, _) in &f.hosts {
        assert_eq!(f.releases(h).len(), 1, "{h}: the unused release was removed");
    }
    assert_safe(&f, load, &good);
}

#[test]
fn host_lost_during_upload_stops_before_any_switch() {
    let (f, good, load) = loaded_farm(3);
    commit(&f, "next", &[]);
    let mut killed = false;
    let Run { code, events: ev, stderr: err, release } = f.deploy_watch(&["farm"], |e, _| {
        if !killed && e["event"] == "deploy_started" {
            f.kill_sshd("web2");
            killed = true;
        }
    });
    assert!(killed);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no host was switched"), "{err}");
    let bad = release.expect("a release");
    assert!(events(&ev, "host_drained", None).is_empty() && events(&ev, "host_switched", None).is_empty());
    for h in ["web1", "web3"] {
        assert!(!f.root(h).join(".deploy/lock").exists(), "{h}: lock left on a reachable host");
        assert!(!f.releases(h).contains(&bad), "{h}: half-made release left");
    }
    // web2 comes back: its lock is the only thing left, and unlock clears it.
    f.start_sshd("web2");
    let o = f.deploy(&["unlock", "farm"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_safe(&f, load, &good);
}

#[test]
fn a_balancer_that_refuses_the_drain_stops_the_deploy() {
    // HAProxy answers `Permission denied` on a socket without `level admin`, and socat still
    // exits 0: the answer itself must fail the drain, or hosts would be switched in service.
    let f = Farm::start(2);
    let (code, _, err) = run_json(&f, &["farm-haproxy"]);
    assert_eq!(code, 0, "{err}");
    let good = f.current("web1").unwrap();
    f.add_config(&format!(
        "\n[stages.operator]\n{}\n[stages.operator.balancer]\nkind = \"haproxy\"\nhost = \"lb\"\nsocket = \"{}\"\n",
        f.hosts_toml(),
        f.dir.join("haproxy-operator.sock").display()
    ));
    let o = f.deploy(&["check", "operator"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.lines().any(|l| l.contains("admin level") && l.contains("FAIL")), "{out}");
    commit(&f, "next", &[]);
    let (code, ev, err) = run_json(&f, &["operator"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("drain on lb answered: Permission denied"), "{err}");
    assert!(events(&ev, "host_switched", None).is_empty(), "nothing switched after a refused drain");
    assert_eq!(f.common_release().as_deref(), Some(good.as_str()));
    assert!(f.no_locks());
}

fn run_json(f: &Farm, args: &[&str]) -> (i32, Vec<serde_json::Value>, String) {
    let run = f.deploy_json(args);
    (run.code, run.events, run.stderr)
}
