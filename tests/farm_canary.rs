//! The canary on the farm, under load, behind Varnish and HAProxy: a bad release is caught
//! from the balancer's own counters and rolled back with no other host switched; a good one
//! passes; an error burst on every host is not blamed on the canary (the same burst on the
//! canary alone is); too little traffic fails safe.
//!
//! The shop's nginx answers 500 on every page but /health when the release has
//! `config/answer-500`, or on a host with `shared/answer-500`: a release that passes its
//! health check and fails real traffic.

use crate::farm::load::{Load, Report};
use crate::farm::{Farm, Run, epoch, events};
use std::time::Duration;

/// The canary settings under test: fast intervals, a short soak.
fn with_canary(f: &Farm, stage: &str, canary: &str) {
    f.add_config(&format!(
        "\n[stages.{stage}.rolling]\ncanary = 1\nsoak = \"6s\"\n\n[stages.{stage}.canary]\ninterval = \"1s\"\nmin_requests = 20\n{canary}\n"
    ));
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_string()
}

/// A deploy of `stage` while 4 clients load the site through its balancer.
fn deploy_under_load(f: &Farm, stage: &str, args: &[&str]) -> (Run, Report) {
    let url = if stage.ends_with("haproxy") { f.haproxy_url() } else { f.varnish_url() };
    let load = Load::start(&addr(&url), "/", 4, Duration::from_secs(120));
    std::thread::sleep(Duration::from_millis(300));
    let mut all = vec![stage];
    all.extend_from_slice(args);
    let run = f.deploy_json(&all);
    let report = load.stop();
    eprintln!(
        "`deploy {stage}` under load: exit {}, {} ok, {} bad status, {} connection errors",
        run.code, report.ok, report.bad_status, report.conn_errors
    );
    (run, report)
}

fn switched(run: &Run) -> Vec<String> {
    events(&run.events, "host_switched", None).iter().filter_map(|e| e["host"].as_str().map(String::from)).collect()
}

fn verdict(run: &Run) -> serde_json::Value {
    events(&run.events, "canary_verdict", None).first().map(|e| (*e).clone()).unwrap_or_default()
}

fn all_in_haproxy(f: &Farm) -> bool {
    let stat = f.haproxy("show stat");
    f.hosts
        .iter()
        .all(|(host, _)| stat.lines().any(|line| line.starts_with(&format!("app,{host},")) && line.contains(",UP,")))
}

#[test]
fn a_bad_release_is_caught_by_its_canary_and_nothing_else_is_switched() {
    let f = Farm::start(3);
    assert_eq!(f.deploy_json(&["farm"]).code, 0);
    let good = f.common_release().expect("one release");
    for stage in ["farm", "farm-haproxy"] {
        with_canary(&f, stage, "");
        // `deploy check` reads the counters the soak will judge by.
        let o = f.deploy(&["check", stage]);
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(out.lines().any(|l| l.starts_with("lb ") && l.contains(" canary ") && l.contains(" ok ")), "{out}");
    }
    f.commit("a release that fails real traffic", &[("config/answer-500", Some("broken"))]);
    for stage in ["farm", "farm-haproxy"] {
        let (run, load) = deploy_under_load(&f, stage, &[]);
        assert_eq!(run.code, 1, "{stage}: {}", run.stderr);
        let verdict = verdict(&run);
        assert_eq!(verdict["verdict"], "fail", "{stage}: {verdict}");
        assert!(verdict["reason"].as_str().unwrap().contains("answers were errors"), "{verdict}");
        assert!(run.stderr.contains("canary failed"), "{}", run.stderr);
        // web1 went to the bad release and back; no other host was switched.
        assert_eq!(switched(&run), ["web1", "web1"], "{stage}");
        assert_eq!(f.common_release(), Some(good.clone()), "{stage}: every host on the good release");
        assert!(if stage == "farm" { f.all_in_varnish() } else { all_in_haproxy(&f) }, "{stage}: all in service");
        // The canary did answer real traffic with errors (what the balancer saw), and the
        // samples say so.
        assert!(load.bad_status > 0, "{stage}: the bad release was never hit: {load:?}");
        let failing = events(&run.events, "canary_sample", None).iter().filter(|e| e["verdict"] == "failing").count();
        assert!(failing >= 2, "{stage}: {failing} failing samples");
        let switch_ts = events(&run.events, "host_switched", Some("web1"))[0]["ts"].as_str().unwrap().to_string();
        let verdict_ts = verdict["ts"].as_str().unwrap();
        eprintln!(
            "{stage}: canary verdict {:.1} s after the switch; the bad release answered {} errors to the load ({} answers in the soak, {} errors)",
            epoch(verdict_ts) - epoch(&switch_ts),
            load.bad_status,
            verdict["requests"],
            verdict["errors"]
        );
    }
    // The control: without the canary, the same release reaches every host.
    let (run, _) = deploy_under_load(&f, "farm", &["--no-canary"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut hosts = switched(&run);
    hosts.sort();
    assert_eq!(hosts, ["web1", "web2", "web3"]);
    assert!(events(&run.events, "canary_sample", None).is_empty());
}

#[test]
fn a_good_release_passes_and_a_burst_on_every_host_is_not_blamed_on_the_canary() {
    let f = Farm::start(3);
    assert_eq!(f.deploy_json(&["farm"]).code, 0);
    let burst = |hosts: &[&str], on: bool| {
        for host in hosts {
            let file = f.root(host).join("shared/answer-500");
            if on {
                std::fs::write(&file, "down").unwrap()
            } else {
                let _ = std::fs::remove_file(&file);
            }
        }
    };
    for stage in ["farm-haproxy", "farm"] {
        with_canary(&f, stage, "");
        f.commit(&format!("a good release ({stage})"), &[("public/about.txt", Some(stage))]);
        let (run, load) = deploy_under_load(&f, stage, &[]);
        assert_eq!(run.code, 0, "{stage}: {}", run.stderr);
        assert_eq!(verdict(&run)["verdict"], "pass", "{stage}");
        assert_eq!(load.bad_status + load.conn_errors, 0, "{stage}: {load:?}");
        let samples = events(&run.events, "canary_sample", None);
        assert!(samples.len() >= 5 && samples.iter().all(|e| e["verdict"] == "ok"), "{stage}: {samples:?}");
        assert!(samples.iter().map(|e| e["requests"].as_u64().unwrap()).sum::<u64>() >= 20, "{stage}");
        assert_eq!(switched(&run).len(), 3, "{stage}");

        // Every host answers 500 (a database outage, say) while a good release soaks: the
        // canary is no worse than the others, so it passes.
        burst(&["web1", "web2", "web3"], true);
        f.commit(&format!("another good release ({stage})"), &[("public/about.txt", Some("2"))]);
        let (run, load) = deploy_under_load(&f, stage, &[]);
        burst(&["web1", "web2", "web3"], false);
        assert_eq!(run.code, 0, "{stage}: {}", run.stderr);
        assert_eq!(verdict(&run)["verdict"], "pass", "{stage}: {}", run.stderr);
        assert!(load.bad_status > 0, "{stage}: the burst was seen by the load");
        let peers_errors: u64 =
            events(&run.events, "canary_sample", None).iter().map(|e| e["peers_errors"].as_u64().unwrap()).sum();
        assert!(peers_errors > 0, "{stage}: the other hosts failed too");

        // The control: the same errors on the canary host alone fail it.
        burst(&["web1"], true);
        f.commit(&format!("a third good release ({stage})"), &[("public/about.txt", Some("3"))]);
        let before = f.common_release();
        let (run, _) = deploy_under_load(&f, stage, &[]);
        burst(&["web1"], false);
        assert_eq!(run.code, 1, "{stage}: {}", run.stderr);
        assert_eq!(verdict(&run)["verdict"], "fail", "{stage}");
        assert_eq!(f.common_release(), before, "{stage}");
    }
}

/// Ctrl-C during the soak: the canary goes back, nothing else was switched, exit 1.
#[test]
fn an_interrupt_during_the_soak_rolls_the_canary_back() {
    let f = Farm::start(3);
    assert_eq!(f.deploy_json(&["farm"]).code, 0);
    let good = f.common_release();
    f.add_config("\n[stages.farm.rolling]\ncanary = 1\nsoak = \"60s\"\n\n[stages.farm.canary]\ninterval = \"1s\"\n");
    f.commit("a release interrupted in its soak", &[("public/about.txt", Some("soaking"))]);
    let load = Load::start(&addr(&f.varnish_url()), "/", 2, Duration::from_secs(120));
    let mut sent = false;
    let run = f.deploy_watch(&["farm"], |event, pid| {
        if !sent && event["event"] == "canary_sample" && event["interval"] == 2 {
            let _ = std::process::Command::new("kill").args(["-INT", &pid.to_string()]).status();
            sent = true;
        }
    });
    let seen = load.stop();
    assert!(sent, "the soak never sampled");
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(events(&run.events, "canary_verdict", None).is_empty(), "no verdict: it was stopped");
    assert_eq!(switched(&run), ["web1", "web1"], "the canary went back, nothing else moved");
    assert_eq!(f.common_release(), good);
    assert!(f.all_in_varnish());
    assert_eq!(seen.bad_status + seen.conn_errors, 0, "{seen:?}");
}

#[test]
fn too_little_traffic_fails_safe_unless_told_to_pass() {
    let f = Farm::start(2);
    assert_eq!(f.deploy_json(&["farm"]).code, 0);
    let first = f.common_release();
    f.add_config(
        "\n[stages.farm.rolling]\ncanary = 1\nsoak = \"2s\"\n\n[stages.farm.canary]\ninterval = \"1s\"\nmin_requests = 50\nmax_soak = \"4s\"\n",
    );
    f.commit("a release nobody visits", &[("public/about.txt", Some("about"))]);
    // No load at all: nothing proves the release good.
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let verdict = verdict(&run);
    assert_eq!(verdict["verdict"], "fail");
    assert!(verdict["reason"].as_str().unwrap().contains("too little traffic"), "{verdict}");
    let samples = events(&run.events, "canary_sample", None);
    assert!(samples.len() >= 4, "the soak was extended to max_soak: {} samples", samples.len());
    assert_eq!(f.common_release(), first, "the canary was rolled back");
    // The control: `on_low_traffic = "pass"` goes on, with a warning.
    let text = std::fs::read_to_string(f.config())
        .unwrap()
        .replace("max_soak = \"4s\"", "max_soak = \"4s\"\non_low_traffic = \"pass\"");
    std::fs::write(f.config(), text).unwrap();
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(crate::farm::events(&run.events, "canary_verdict", None)[0]["verdict"], "pass_low_traffic");
    assert!(
        events(&run.events, "warning", None)
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("passed without proof"))
    );
    assert_ne!(f.common_release(), first);
}

/// `post_migrate` (the contract of expand/contract): once, after every host serves the
/// release, before the ban; never after a failed deploy nor one that leaves hosts on the old
/// release; a failure leaves every host on the release, records it, exits 1; a rollback past
/// it is refused without `--force`.
#[test]
fn post_migrate_runs_once_after_every_host_and_guards_the_rollback() {
    let f = Farm::start(3);
    let marker = "/var/www/shop/shared/var/log/post-migrate.log";
    f.add_config(&format!("\n[stages.farm.hooks]\npost_migrate = 'echo \"$DEPLOY_RELEASE\" >> {marker}'\n"));
    let runs = || std::fs::read_to_string(f.root("web1").join("shared/var/log/post-migrate.log")).unwrap_or_default();
    let first = f.deploy_json(&["farm"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    f.commit("expand and contract", &[("public/about.txt", Some("v2"))]);
    let second = f.deploy_json(&["farm"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    let release = second.release.clone().unwrap();
    assert_eq!(runs().lines().collect::<Vec<_>>(), [first.release.clone().unwrap(), release.clone()]);
    // After the last host is in service, before the ban.
    let at = |name: &str| second.events.iter().rposition(|e| e["event"] == name).unwrap_or_else(|| panic!("no {name}"));
    assert!(at("post_migrated") > at("host_in_service") && at("post_migrated") < at("cache_banned"));
    let log = std::fs::read_to_string(f.release_log("web2")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!((line["release"].as_str(), line["post_migrate"].as_str()), (Some(release.as_str()), Some("ran")));

    // A deploy that fails is rolled back and never contracts.
    f.commit("unhealthy on web2", &[("config/break-health-on", Some("web2"))]);
    let failed = f.deploy_json(&["farm"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(runs().lines().count(), 2, "post_migrate did not run");
    let log = std::fs::read_to_string(f.release_log("web1")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!(line["outcome"], "rolled back");
    assert!(line.get("post_migrate").is_none(), "{line}");
    // Nor one that leaves hosts on the old release.
    f.commit("healthy again", &[("config/break-health-on", None)]);
    let partial = f.deploy_json(&["farm", "--host", "web1"]);
    assert_eq!(partial.code, 0, "{}", partial.stderr);
    assert_eq!(runs().lines().count(), 2);
    assert!(events(&partial.events, "post_migrated", None).is_empty());

    // A rollback past a release whose post_migrate ran needs --force.
    let back = f.deploy_json(&["rollback", "farm"]);
    assert_eq!(back.code, 0, "web1 alone back to {release}: {}", back.stderr);
    let refused = f.deploy_json(&["rollback", "farm"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("post_migrate ran for") && refused.stderr.contains("--force"),
        "{}",
        refused.stderr
    );
    assert_eq!(f.common_release(), Some(release.clone()), "nothing was switched");
    let forced = f.deploy_json(&["rollback", "farm", "--force"]);
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(f.common_release(), first.release.clone());
    assert!(
        events(&forced.events, "warning", None)
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("post_migrate ran"))
    );

    // A post_migrate that fails: every host stays on the new release, the log says so, exit 1.
    let text = std::fs::read_to_string(f.config())
        .unwrap()
        .replace(&format!("echo \"$DEPLOY_RELEASE\" >> {marker}"), "exit 3");
    std::fs::write(f.config(), text).unwrap();
    f.commit("a contract that fails", &[("public/about.txt", Some("v3"))]);
    let contract = f.deploy_json(&["farm"]);
    assert_eq!(contract.code, 1, "{}", contract.stderr);
    assert!(contract.stderr.contains("every host serves the new release and stays on it"), "{}", contract.stderr);
    assert_eq!(f.common_release(), contract.release.clone(), "nothing was rolled back");
    let log = std::fs::read_to_string(f.release_log("web3")).unwrap();
    let line: serde_json::Value = serde_json::from_str(log.lines().last().unwrap()).unwrap();
    assert_eq!((line["outcome"].as_str(), line["post_migrate"].as_str()), (Some("success"), Some("failed")));
    assert!(events(&contract.events, "cache_banned", None).len() == 1 && f.no_locks());
}

/// One GET through `url` (`http://host:port`): status, Retry-After, body.
fn fetch(url: &str, path: &str) -> (u16, Option<String>, String) {
    let mut conn = crate::farm::http::Conn::open(&addr(url)).expect("connect");
    let resp = conn.get(path, &[("Cookie", "cart=maintenance")]).expect("answer");
    (resp.status, resp.header("Retry-After").map(String::from), resp.body.clone())
}

/// `deploy maintenance on|off`: every request through the balancer gets 503 with
/// Retry-After, the app hosts stay checked (`deploy check` passes), a deploy underneath
/// works and does not end it; `off` serves the site again. Varnish and HAProxy.
#[test]
fn maintenance_answers_503_and_lets_a_deploy_run_underneath() {
    let f = Farm::start(2);
    assert_eq!(f.deploy_json(&["farm"]).code, 0);
    for (stage, url) in [("farm", f.varnish_url()), ("farm-haproxy", f.haproxy_url())] {
        let mut on = vec!["maintenance", "on", stage];
        if stage == "farm" {
            on.extend(["--message", "Back at ten <b>", "--retry-after", "90s"]);
        }
        let o = f.deploy(&on);
        assert_eq!(o.status.code(), Some(0), "{stage}: {}", String::from_utf8_lossy(&o.stderr));
        let (status, retry, body) = fetch(&url, "/");
        assert_eq!(status, 503, "{stage}");
        if stage == "farm" {
            assert_eq!(retry.as_deref(), Some("90"));
            assert!(body.contains("Back at ten &lt;b&gt;"), "{body}");
        } else {
            assert_eq!(retry.as_deref(), Some("120"), "HAProxy's errorfile");
        }
        let check = f.deploy(&["check", stage]);
        assert_eq!(
            check.status.code(),
            Some(0),
            "{stage}: the hosts are still checked:\n{}",
            String::from_utf8_lossy(&check.stdout)
        );
        // A deploy underneath: it rolls, and the site stays in maintenance all along.
        f.commit(&format!("a release during {stage}'s maintenance"), &[("public/about.txt", Some(stage))]);
        let load = Load::start(&addr(&url), "/", 2, Duration::from_secs(120));
        let run = f.deploy_json(&[stage]);
        std::thread::sleep(Duration::from_millis(200));
        let seen = load.stop();
        assert_eq!(run.code, 0, "{stage}: {}", run.stderr);
        assert_eq!(seen.ok, 0, "{stage}: the site answered during maintenance: {seen:?}");
        assert!(seen.bad_status > 50 && seen.conn_errors == 0, "{stage}: {seen:?}");
        assert_eq!(fetch(&url, "/").0, 503, "{stage}: still in maintenance after the deploy");
        let o = f.deploy(&["maintenance", "off", stage]);
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
        let (status, _, _) = fetch(&url, "/about.txt");
        assert_eq!(status, 200, "{stage}: served again, the new release");
        assert_eq!(f.common_release(), run.release, "{stage}");
    }
    // What cannot be: a message HAProxy cannot show; a balancer without maintenance.
    let o = f.deploy(&["maintenance", "on", "farm-haproxy", "--message", "x"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(fetch(&f.haproxy_url(), "/about.txt").0, 200, "nothing changed");
}

/// The human view shows the soak's live counts (in a real terminal, tmux).
#[test]
fn the_human_view_shows_the_soaks_live_counts() {
    let f = Farm::start(3);
    assert_eq!(f.deploy_json(&["farm"]).code, 0);
    with_canary(&f, "farm", "");
    f.commit("a release watched at a terminal", &[("public/about.txt", Some("watched"))]);
    let load = Load::start(&addr(&f.varnish_url()), "/", 2, Duration::from_secs(120));
    let line = format!(
        "DEPLOY_CACHE_DIR={} {} -c {} farm; echo EXIT=$?; sleep 30",
        f.dir.join("cache").display(),
        env!("CARGO_BIN_EXE_deploy"),
        f.config().display()
    );
    let mut live: Vec<String> = Vec::new();
    let screen = crate::farm::Terminal::start("canary-live", &line, 120, 30).until_exit(
        &[],
        Duration::from_secs(90),
        |screen| live.extend(screen.lines().filter(|l| l.contains("soak · canary")).map(String::from)),
    );
    load.stop();
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        live.iter().any(|l| l.contains(" answers, 0 errors (0.0%) · others 0.0%")),
        "no live counts seen: {live:?}"
    );
    assert!(screen.contains("canary passed"), "the verdict is printed: {screen}");
}
