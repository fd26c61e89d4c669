//! For the people who run it, on the farm with the real binary: `check`, `exec`, the JSON
//! event stream, the GitHub step summary, webhooks, every exit code from a real scenario,
//! escape-free output without a terminal, and the live human view in a real terminal (tmux).

use crate::farm::{Farm, Run, Terminal, events, webhook_listener};
use std::process::Command;
use std::time::{Duration, Instant};

fn run(f: &Farm, args: &[&str]) -> (i32, String, String) {
    let o = f.deploy(args);
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// The row of `deploy check` output for a host and check.
fn check_row<'a>(out: &'a str, host: &str, check: &str) -> Option<&'a str> {
    out.lines().find(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.first() == Some(&host) && l[host.len()..].trim_start().starts_with(check)
    })
}

#[test]
fn check_passes_on_a_healthy_farm_and_names_each_problem() {
    let f = Farm::start(3);
    let (code, _, err) = run(&f, &["farm"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&f, &["check", "farm"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("checks passed"), "{out}");
    for h in ["web1", "web2", "web3"] {
        for c in ["ssh", "deploy path", "disk", "tools", "shared files", "health"] {
            let r = check_row(&out, h, c).unwrap_or_else(|| panic!("no {c} row for {h}:\n{out}"));
            assert!(r.contains(" ok "), "{r}");
        }
    }
    assert!(out.lines().any(|l| l.starts_with("lb ") && l.contains("web2 is backend `web2`")), "{out}");

    // A backend name the balancer does not know.
    let hosts = f.hosts_toml();
    let secret = f.dir.join("varnish-secret");
    f.add_config(&format!(
        "\n[stages.bad-backend]\n{hosts}\n[stages.bad-backend.balancer]\nkind = \"varnish\"\nhost = \"lb\"\nadmin = \"{}:6082\"\nsecret = \"{}\"\nbackends = {{ web2 = \"web2-typo\" }}\n",
        f.lb,
        secret.display()
    ));
    let (code, out, _) = run(&f, &["check", "bad-backend"]);
    assert_eq!(code, 1, "{out}");
    let r = check_row(&out, "lb", "backend")
        .into_iter()
        .chain(out.lines().filter(|l| l.contains("web2-typo")))
        .last()
        .unwrap();
    assert!(r.contains("FAIL") && r.contains("no backend `web2-typo` for web2"), "{out}");

    // A health URL that does not answer 200.
    f.add_config(&format!(
        "\n[stages.bad-health]\n{hosts}\n[stages.bad-health.health]\nurl = \"http://{{address}}:8080/nope\"\n"
    ));
    let (code, out, _) = run(&f, &["check", "bad-health"]);
    assert_eq!(code, 1, "{out}");
    let r = check_row(&out, "web1", "health").unwrap();
    assert!(r.contains("FAIL") && r.contains("/nope → 404, expected 200"), "{r}");

    // A stopped host.
    f.kill_sshd("web2");
    let (code, out, _) = run(&f, &["check", "farm", "--output", "plain"]);
    assert_eq!(code, 1, "{out}");
    let r = check_row(&out, "web2", "ssh").unwrap();
    assert!(r.contains("FAIL") && r.contains("Connection refused"), "{r}");
    assert!(check_row(&out, "web1", "ssh").unwrap().contains(" ok "), "the others are still checked");
    // Read-only: nothing on any host changed.
    assert!(f.no_locks());
}

#[test]
fn exec_runs_everywhere_at_once_grouped_per_host() {
    let f = Farm::start(3);
    let (code, _, err) = run(&f, &["farm"]);
    assert_eq!(code, 0, "{err}");
    let release = f.current("web1").unwrap();
    // The seed question: clear every web server's cache at once, in the current release.
    let (code, out, _) = run(
        &f,
        &[
            "exec",
            "farm",
            "--role",
            "app",
            "--shell",
            "--",
            "rm -rf public/cache/* && echo cleared on $(hostname) in $(basename $(pwd -P))",
        ],
    );
    assert_eq!(code, 0, "{out}");
    for h in ["web1", "web2", "web3"] {
        let header =
            out.lines().position(|l| l.starts_with(&format!("── {h} (exit 0"))).unwrap_or_else(|| panic!("{out}"));
        assert_eq!(out.lines().nth(header + 1), Some(format!("cleared on {h} in {release}").as_str()), "{out}");
        assert!(std::fs::read_dir(f.root(h).join("shared/public/cache")).unwrap().next().is_none());
    }
    assert!(!out.contains("── lb"), "--role app leaves out the balancer: {out}");
    assert!(out.ends_with("3 of 3 hosts ok\n"), "{out}");
    // One host failing fails the command; --host picks hosts.
    let (code, out, _) =
        run(&f, &["exec", "farm", "--host", "web2", "--host", "web3", "--shell", "--", "test $(hostname) = web2"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("── web2 (exit 0") && out.contains("── web3 (exit 1") && out.contains("1 of 2 hosts ok"),
        "{out}"
    );
    let (code, _, err) = run(&f, &["exec", "farm", "--role", "cook", "--", "true"]);
    assert_eq!(code, 2, "{err}");
    // Without --shell, the words are the program and its arguments, exactly: nothing in them
    // is shell syntax on the host.
    let (code, out, _) =
        run(&f, &["exec", "farm", "--host", "web1", "--", "printf", "%s|", "a b", "$(id)", "'q'", ";"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("a b|$(id)|'q'|;|"), "{out}");
    let (code, out, _) = run(&f, &["exec", "farm", "--output", "json", "--", "echo", "hi"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["hosts"].as_array().unwrap().len(), 4);
    assert!(v["hosts"].as_array().unwrap().iter().all(|h| h["stdout"] == "hi\n" && h["status"] == 0));
}

#[test]
fn json_events_summary_and_webhooks() {
    let f = Farm::start(2);
    let (addr, got) = webhook_listener();
    // Webhooks at the top of the file: a JSON one, a Slack one, and one nobody listens to.
    let text = std::fs::read_to_string(f.config()).unwrap();
    let hooks = format!(
        "[[notify]]\nkind = \"json\"\nurl = \"http://{addr}/json\"\n\n[[notify]]\nkind = \"slack\"\nurl = \"http://{addr}/slack\"\non = [\"success\", \"failure\"]\n\n[[notify]]\nkind = \"json\"\nurl = \"http://127.0.0.1:1/nobody/secret-path\"\n\n[stages.farm]"
    );
    std::fs::write(f.config(), text.replacen("[stages.farm]", &hooks, 1)).unwrap();
    let summary = f.dir.join("step-summary.md");
    let run = f.deploy_json_env(&["farm"], &[("GITHUB_STEP_SUMMARY", &summary)]);
    assert_eq!(run.code, 0, "a failing webhook must not fail the deploy: {}", run.stderr);

    // Every line is JSON (the driver parses each), of a documented event, with exactly the
    // documented fields.
    let ev = &run.events;
    crate::farm::assert_documented(ev);
    // Order: started → host events → ban → finished.
    let pos = |name: &str| ev.iter().position(|e| e["event"] == name).unwrap_or_else(|| panic!("no {name}"));
    let last = |name: &str| ev.iter().rposition(|e| e["event"] == name).unwrap();
    assert!(pos("deploy_started") < pos("host_received"));
    assert!(pos("host_received") < pos("migrated") && pos("migrated") < pos("host_drained"));
    assert!(last("host_in_service") < pos("cache_banned"));
    assert_eq!(ev.last().unwrap()["event"], "finished");
    let warnings: Vec<&str> = events(ev, "warning", None).iter().map(|w| w["message"].as_str().unwrap()).collect();
    assert!(warnings.iter().any(|w| w.contains("notification to 127.0.0.1:1 failed")), "{warnings:?}");
    assert!(!ev.iter().any(|e| e.to_string().contains("secret-path")), "webhook paths are never printed");

    // The GitHub step summary.
    let md = std::fs::read_to_string(&summary).unwrap();
    let release = run.release.clone().expect("a release");
    let commit = crate::farm::git(&f.repo(), &["rev-parse", "HEAD"]);
    for want in [
        format!("| release | `{release}` |"),
        format!("| commit | `{commit}` |"),
        "| outcome | deployed (exit 0) |".into(),
        "| phase | time |".into(),
        "| roll |".into(),
        "| web1 | done |".into(),
        "| web2 | done |".into(),
    ] {
        assert!(md.contains(&want), "{want} missing in:\n{md}");
    }

    // The webhooks: json got start and success, slack only success.
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().len() < 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let got = got.lock().unwrap().clone();
    let json: Vec<&serde_json::Value> = got.iter().filter(|(p, _)| p == "/json").map(|(_, b)| b).collect();
    assert_eq!(json.iter().map(|b| b["moment"].as_str().unwrap()).collect::<Vec<_>>(), ["start", "success"], "{got:?}");
    assert_eq!(json[1]["release"], release.as_str());
    assert_eq!(json[1]["exit_code"], 0);
    assert_eq!(json[1]["hosts"]["web1"], "done");
    let slack: Vec<&serde_json::Value> = got.iter().filter(|(p, _)| p == "/slack").map(|(_, b)| b).collect();
    assert_eq!(slack.len(), 1, "{got:?}");
    let text = slack[0]["text"].as_str().unwrap();
    assert!(
        text.contains("shop") && text.contains(&release) && text.contains("deployed") && text.contains("tester@"),
        "{text}"
    );
}

#[test]
fn every_exit_code_from_a_real_scenario() {
    let f = Farm::start(3);
    // 0: deployed.
    let (code, _, err) = run(&f, &["farm"]);
    assert_eq!(code, 0, "{err}");
    let good = f.current("web1").unwrap();
    // 2: bad usage or config, nothing touched.
    let (code, _, err) = run(&f, &["frm"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("did you mean `farm`?"), "{err}");
    // 3: another deploy holds the lock.
    std::fs::create_dir_all(f.root("web1").join(".deploy/lock")).unwrap();
    std::fs::write(
        f.root("web1").join(".deploy/lock/owner.json"),
        r#"{"user":"carol","machine":"ci-runner-7","pid":99,"stage":"farm","started":"2026-11-26T05:00:00Z"}"#,
    )
    .unwrap();
    let (code, _, err) = run(&f, &["farm"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("carol@ci-runner-7 (pid 99), deploying farm since 2026-11-26T05:00:00Z"), "{err}");
    std::fs::remove_dir_all(f.root("web1").join(".deploy/lock")).unwrap();
    // 1: failed, every host back on a serving release.
    f.commit("unhealthy on web2", &[("config/break-health-on", Some("web2\n"))]);
    let (code, _, err) = run(&f, &["farm"]);
    assert_eq!(code, 1, "{err}");
    assert_eq!(f.common_release().as_deref(), Some(good.as_str()));
    // 4: failed and the switched host cannot be restored (its ssh is gone right after the switch).
    f.commit("healthy again", &[("config/break-health-on", None)]);
    let mut killed = false;
    let Run { code, stderr: err, .. } = f.deploy_watch(&["farm"], |e, _| {
        if !killed && e["event"] == "host_switched" && e["host"] == "web2" {
            f.kill_sshd("web2");
            killed = true;
        }
    });
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("a safe state could NOT be restored") && err.contains("web2: connection lost"), "{err}");
    assert!(err.contains("fix: ") && err.contains("deploy unlock farm"), "{err}");
    // …and the fix it names works once the host is back.
    f.start_sshd("web2");
    let (code, _, err) = run(&f, &["unlock", "farm"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&f, &["farm"]);
    assert_eq!(code, 0, "{err}");
    assert!(f.common_release().is_some() && f.no_locks());
}

#[test]
fn no_escape_codes_without_a_terminal_or_with_no_color() {
    let f = Farm::start(2);
    for (args, env) in [
        (vec!["farm"], vec![]),
        (vec!["farm", "--output", "human"], vec![("NO_COLOR", "1")]),
        (vec!["releases", "farm"], vec![]),
        (vec!["check", "farm"], vec![]),
    ] {
        let mut c = Command::new(env!("CARGO_BIN_EXE_deploy"));
        c.arg("-c").arg(f.config()).args(&args).env("DEPLOY_CACHE_DIR", f.dir.join("cache")).env_remove("NO_COLOR");
        for (k, v) in &env {
            c.env(k, v);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        let all = [o.stdout, o.stderr].concat();
        assert!(
            !all.contains(&0x1b),
            "escape codes in `deploy {}`:\n{}",
            args.join(" "),
            String::from_utf8_lossy(&all)
        );
    }
}

/// Runs a deploy to `f` in a tmux terminal of `rows` lines; `watch` sees every screen while it
/// runs; returns the last screen.
fn in_tmux(f: &Farm, rows: u16, watch: impl FnMut(&str)) -> String {
    let line = format!(
        "DEPLOY_CACHE_DIR={} {} -c {} farm; echo EXIT=$?; sleep 30",
        f.dir.join("cache").display(),
        env!("CARGO_BIN_EXE_deploy"),
        f.config().display()
    );
    Terminal::start(&format!("human-{rows}"), &line, 120, rows).until_exit(&[], Duration::from_secs(60), watch)
}

#[test]
fn human_mode_in_a_real_terminal() {
    let f = Farm::start(3);
    // While it runs: a live line per host.
    let mut live = false;
    let mut web2_lines: Vec<String> = Vec::new();
    let screen = in_tmux(&f, 30, |screen| {
        if screen.contains("roll") && ["web1", "web2", "web3"].iter().all(|h| screen.contains(h)) {
            web2_lines.extend(screen.lines().filter(|l| l.contains("web2")).map(String::from));
            live = true;
        }
    });
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(live, "no live per-host view seen");
    let roll_words =
        ["waiting for its turn", "drain", "idle", "switched", "activate", "healthy", "undrain", "in service"];
    assert!(
        web2_lines.iter().any(|l| roll_words.iter().any(|w| l.contains(w))),
        "web2's line during the roll: {web2_lines:?}"
    );
    // At the end: the summary and a result per host.
    assert!(screen.contains("deployed: release"), "{screen}");
    assert!(
        screen.contains("connect") && screen.contains("roll") && screen.contains("finish"),
        "phase times: {screen}"
    );
    for h in ["web1", "web2", "web3"] {
        assert!(screen.lines().any(|l| l.contains(h) && l.contains("✓ done")), "{h}: {screen}");
    }
}

#[test]
fn human_mode_with_more_hosts_than_lines_stays_on_one_line() {
    let f = Farm::start(3);
    // 8 lines: too few for a line per host plus the rest.
    let mut counts = Vec::new();
    let screen =
        in_tmux(&f, 8, |screen| counts.extend(screen.lines().filter(|l| l.contains(" of 3 ·")).map(String::from)));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        counts.iter().any(|l| l.contains("✓ 1 of 3") || l.contains("✓ 2 of 3")),
        "no progress count seen: {counts:?}"
    );
    assert!(counts.iter().all(|l| !l.contains("waiting for its turn")), "{counts:?}");
}

#[test]
fn secrets_from_the_environment_never_reach_the_output() {
    let f = Farm::start(2);
    let (code, _, err) = run(&f, &["farm"]);
    assert_eq!(code, 0, "{err}");
    let (addr, got) = webhook_listener();
    // A health URL carrying a token, and a release that fails it on web1: the token would be
    // in every error message.
    f.commit("unhealthy on web1", &[("config/break-health-on", Some("web1\n"))]);
    f.add_config(&format!(
        "\n[stages.secret]\n{}\n[stages.secret.health]\nfrom = \"local\"\nurl = \"http://{{address}}:8080/health?token=${{DEPLOY_TEST_TOKEN}}\"\nretries = 2\ninterval = \"10ms\"\n\n[[stages.secret.notify]]\nkind = \"json\"\nurl = \"http://{addr}/hook\"\n",
        f.hosts_toml()
    ));
    for output in ["plain", "json"] {
        let o = Command::new(env!("CARGO_BIN_EXE_deploy"))
            .arg("-c")
            .arg(f.config())
            .args(["secret", "-v", "--output", output])
            .env("DEPLOY_CACHE_DIR", f.dir.join("cache"))
            .env("DEPLOY_TEST_TOKEN", "tok-9f8e7d6c")
            .output()
            .unwrap();
        let all = format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
        assert_eq!(o.status.code(), Some(1), "{all}");
        assert!(all.contains("token=${DEPLOY_TEST_TOKEN}"), "the variable's name is shown instead: {all}");
        assert!(!all.contains("tok-9f8e7d6c"), "the secret was printed ({output}):\n{all}");
    }
    // Nor the webhooks, whose failure message quotes the health URL.
    let deadline = Instant::now() + Duration::from_secs(5);
    while got.lock().unwrap().len() < 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let bodies: Vec<String> = got.lock().unwrap().iter().map(|(_, b)| b.to_string()).collect();
    assert!(
        bodies.iter().any(|b| b.contains("\"moment\":\"failure\"") && b.contains("${DEPLOY_TEST_TOKEN}")),
        "{bodies:?}"
    );
    assert!(bodies.iter().all(|b| !b.contains("tok-9f8e7d6c")), "a webhook got the secret: {bodies:?}");
}

#[test]
fn a_stage_marked_confirm_asks_at_a_terminal() {
    let f = Farm::start(2);
    f.add_config(&format!("\n[stages.careful]\nconfirm = true\n{}", f.hosts_toml()));
    let session = format!("deploy-confirm-{}", std::process::id());
    let cmd = format!(
        "DEPLOY_CACHE_DIR={} {} -c {} careful; echo EXIT=$?; sleep 30",
        f.dir.join("cache").display(),
        env!("CARGO_BIN_EXE_deploy"),
        f.config().display()
    );
    let tmux = |args: &[&str]| Command::new("tmux").args(args).env_remove("CI").output().unwrap();
    assert!(tmux(&["new-session", "-d", "-s", &session, "-x", "120", "-y", "30", &cmd]).status.success());
    let capture = || String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned();
    let wait_for = |text: &str| {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && !capture().contains(text) {
            std::thread::sleep(Duration::from_millis(50));
        }
        capture()
    };
    let screen = wait_for("[y/N]");
    assert!(screen.contains("Deploy shop") && screen.contains("to careful (2 app hosts)? [y/N]"), "{screen}");
    tmux(&["send-keys", "-t", &session, "n", "Enter"]);
    let screen = wait_for("EXIT=");
    let _ = tmux(&["kill-session", "-t", &session]);
    assert!(screen.contains("not deployed") && screen.contains("EXIT=1"), "{screen}");
    assert!(f.current("web1").is_none(), "nothing was deployed");
    // --yes (and no terminal, and CI) never ask.
    let (code, _, err) = run(&f, &["careful", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("[y/N]"));
}

/// NO_COLOR in a real terminal: the human view keeps its live lines but has no colour or
/// style. The control: the same run without NO_COLOR does show colour, so the check sees it.
#[test]
fn no_color_in_a_real_terminal() {
    let f = Farm::start(2);
    let screen = |no_color: bool| {
        let line = format!(
            "{}DEPLOY_CACHE_DIR={} {} -c {} farm; echo EXIT=$?; sleep 30",
            if no_color { "NO_COLOR=1 " } else { "" },
            f.dir.join("cache").display(),
            env!("CARGO_BIN_EXE_deploy"),
            f.config().display()
        );
        let terminal = Terminal::start(&format!("nocolor-{no_color}"), &line, 120, 40);
        // `-e` keeps the colours and styles of the screen as escape sequences.
        let seen = terminal.until_exit(&["-e", "-S", "-"], Duration::from_secs(60), |_| {});
        assert!(seen.contains("EXIT=0"), "{seen}");
        seen
    };
    let plain = screen(true);
    assert!(plain.contains("web1") && plain.contains("web2"), "{plain}");
    assert!(!plain.contains('\u{1b}'), "colour or style with NO_COLOR:\n{plain:?}");
    let coloured = screen(false);
    assert!(coloured.contains('\u{1b}'), "the control shows no colour either: {coloured:?}");
}

/// Two stages listing the same hosts at the same path: `deploy plan` notes it, and a deploy
/// of the other stage is refused (exit 2) on the hosts' own release log, before anything is
/// switched; `--force` deploys anyway.
#[test]
fn a_stage_is_refused_where_another_stage_deployed_last() {
    let f = Farm::start(2);
    let (code, _, err) = run(&f, &["farm", "--output", "plain"]);
    assert_eq!(code, 0, "{err}");
    let first: Vec<Option<String>> = f.hosts.iter().map(|(host, _)| f.current(host)).collect();
    // A copy of the stage without the balancer: its deploy would switch production's
    // hosts without draining them.
    let other_site = f.hosts_toml().lines().filter(|line| !line.starts_with("site =")).collect::<Vec<_>>().join("\n");
    f.add_config(&format!("\n[stages.copy]\n{other_site}\n"));
    let (code, _, err) = run(&f, &["plan", "copy"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("note: stage `farm` also deploys to") && err.contains("farm-haproxy"), "{err}");
    f.commit("another release", &[("public/about.txt", Some("about"))]);
    let (code, _, err) = run(&f, &["copy", "--output", "plain"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("deployed by stage `farm`") && err.contains("--force"), "{err}");
    let after: Vec<Option<String>> = f.hosts.iter().map(|(host, _)| f.current(host)).collect();
    assert_eq!(after, first, "nothing was switched");
    for (host, _) in &f.hosts {
        assert_eq!(
            f.releases(host).len(),
            1,
            "{host}: the refused release was not left behind: {:?}",
            f.releases(host)
        );
    }
    // The stage that deployed last is not refused, and --force goes ahead.
    let (code, _, err) = run(&f, &["copy", "--force", "--output", "plain"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&f, &["farm", "--output", "plain"]);
    assert_eq!(code, 2, "now `copy` deployed last: {err}");
    assert!(err.contains("deployed by stage `copy`"), "{err}");
}

/// `deploy lock`: held by hand with a message, every deploy meets it (exit 3, the message
/// shown), `unlock` leaves it, `lock release` lets it go; a deploy's lock is not `release`'s.
#[test]
fn a_stage_held_by_hand_during_an_incident() {
    let f = Farm::start(2);
    let (code, out, err) = run(&f, &["lock", "status", "farm"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().filter(|line| line.ends_with("free")).count(), 2, "{out}");
    let (code, out, err) = run(&f, &["lock", "acquire", "farm", "--message", "incident 4711: \"do not\" deploy"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("incident 4711"), "{out}");
    let (_, out, _) = run(&f, &["lock", "status", "farm"]);
    assert_eq!(
        out.lines().filter(|line| line.contains("held by hand") && line.contains("incident 4711")).count(),
        2,
        "{out}"
    );
    let (code, _, err) = run(&f, &["farm", "--output", "plain"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("locked by hand") && err.contains("incident 4711"), "{err}");
    assert!(f.current("web1").is_none(), "nothing was deployed");
    let (code, _, err) = run(&f, &["rollback", "farm", "--output", "plain"]);
    assert_eq!(code, 3, "{err}");
    // `unlock` does not take a lock held by hand away; a second acquire is refused.
    let (code, _, err) = run(&f, &["unlock", "farm", "--output", "plain"]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("held by hand") && err.contains("deploy lock release"), "{err}");
    let (code, _, err) = run(&f, &["lock", "acquire", "farm", "-m", "again"]);
    assert_eq!(code, 3, "{err}");
    let (code, out, err) = run(&f, &["lock", "release", "farm"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("released on web1, web2"), "{out}");
    let (code, _, err) = run(&f, &["farm", "--output", "plain"]);
    assert_eq!(code, 0, "{err}");
    assert!(f.current("web1").is_some());
}

/// `--host`: one host first, by hand. The others are not contacted, keep their release and
/// stay in the balancer; `releases` shows the hosts disagree; a rollback then puts back that
/// host alone; a run without `--host` (the control) changes every host.
#[test]
fn one_host_first_by_hand_then_the_rest() {
    let f = Farm::start(3);
    let first = f.deploy_json(&["farm"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let old = f.common_release().expect("one release everywhere");
    f.commit("a release tried on one host", &[("public/about.txt", Some("about"))]);
    let untouched = |host: &str| (f.current(host), f.releases(host), std::fs::read_to_string(f.release_log(host)).ok());
    let (web2, web3) = (untouched("web2"), untouched("web3"));

    // web2 is not the migrate host: the migration would not run, so it is refused.
    let (code, _, err) = run(&f, &["farm", "--host", "web2", "--output", "plain"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("the migration runs on web1") && err.contains("--skip-migrations"), "{err}");
    let (code, _, err) = run(&f, &["farm", "--host", "web9", "--output", "plain"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("has no host web9"), "{err}");
    assert_eq!((untouched("web2"), untouched("web3")), (web2.clone(), web3.clone()), "refusals change nothing");

    let one = f.deploy_json(&["farm", "--host", "web1"]);
    assert_eq!(one.code, 0, "{}", one.stderr);
    let new = one.release.clone().expect("a release id");
    assert_eq!(f.current("web1").as_deref(), Some(new.as_str()));
    assert_eq!((untouched("web2"), untouched("web3")), (web2.clone(), web3.clone()), "web2 and web3 untouched");
    for name in ["host_drained", "host_switched", "host_healthy", "host_undrained"] {
        let hosts: Vec<&str> =
            events(&one.events, name, None).iter().filter_map(|event| event["host"].as_str()).collect();
        assert_eq!(hosts, ["web1"], "{name}");
    }
    let touched: std::collections::BTreeSet<&str> =
        one.events.iter().filter_map(|event| event["on"].as_str().or(event["host"].as_str())).collect();
    assert!(!touched.contains("web2") && !touched.contains("web3"), "contacted: {touched:?}");
    assert!(f.all_in_varnish(), "every host back in the balancer");
    let (code, out, _) = run(&f, &["releases", "farm"]);
    assert!(out.contains("disagree"), "exit {code}:\n{out}");

    // The rollback undoes what was deployed: web1 alone goes back.
    let back = f.deploy_json(&["rollback", "farm"]);
    assert_eq!(back.code, 0, "{}", back.stderr);
    let switched: Vec<&str> =
        events(&back.events, "host_switched", None).iter().filter_map(|event| event["host"].as_str()).collect();
    assert_eq!(switched, ["web1"]);
    assert_eq!(f.common_release(), Some(old.clone()));
    assert_eq!(f.current("web2"), web2.0, "web2 was not rolled");

    // The control: without --host every host is switched.
    let all = f.deploy_json(&["farm"]);
    assert_eq!(all.code, 0, "{}", all.stderr);
    let mut switched: Vec<&str> =
        events(&all.events, "host_switched", None).iter().filter_map(|event| event["host"].as_str()).collect();
    switched.sort();
    assert_eq!(switched, ["web1", "web2", "web3"]);
    assert_ne!(f.common_release(), Some(old));
}

/// `deploy setup`: a new deploy path is made ready (folders, shared folders, a shared file from
/// its template, never printed), and the web server's user is checked, as that user, for
/// write access where the app writes. Without ACLs (the control) it cannot write, setup says
/// so and exits 1; with them it passes; a second run touches nothing that exists; then a
/// deploy goes through.
#[test]
fn setup_prepares_new_servers_and_checks_the_web_user() {
    let f = Farm::start(2);
    let hosts = f.hosts_toml();
    let template = f.config().parent().unwrap().join("env.local.template");
    std::fs::write(&template, "APP_SECRET=from-the-template-7f3a\n").unwrap();
    f.add_config(&format!(
        "\n[stages.fresh]\n{hosts}\n[stages.fresh.app]\npath = \"/var/www/fresh\"\n\
         [stages.fresh.setup]\nweb_user = \"www-data\"\nwritable = [\"var/cache\", \"var/log\"]\n\
         templates = {{ \".env.local\" = \"env.local.template\" }}\n"
    ));
    let root = |host: &str| f.dir.join("hosts").join(host).join("www").join("fresh");
    assert!(!root("web1").exists());

    let (code, out, err) = run(&f, &["setup", "fresh"]);
    assert_eq!(code, 1, "{out}{err}");
    for host in ["web1", "web2"] {
        let layout = check_row(&out, host, "layout").unwrap_or_else(|| panic!("no layout row:\n{out}"));
        assert!(layout.contains(" ok ") && layout.contains("created /var/www/fresh "), "{layout}");
        for dir in ["releases", "shared", "shared/var/log", "shared/public/cache"] {
            assert!(root(host).join(dir).is_dir(), "{host}: {dir}");
        }
        assert_eq!(
            std::fs::read_to_string(root(host).join("shared/.env.local")).unwrap(),
            "APP_SECRET=from-the-template-7f3a\n"
        );
        let rows: Vec<&str> = out.lines().filter(|line| line.starts_with(host) && line.contains("web user")).collect();
        assert!(
            rows.iter()
                .any(|row| row.contains("FAIL") && row.contains("www-data cannot write var/cache in a new release")),
            "{out}"
        );
        assert!(
            rows.iter().any(|row| row.contains("FAIL") && row.contains("cannot write /var/www/fresh/shared/var/log"))
        );
        assert!(
            rows.iter()
                .any(|row| row.contains(" ok ") && row.contains("www-data reads /var/www/fresh/shared/.env.local"))
        );
        let left: Vec<_> = std::fs::read_dir(root(host).join("releases")).unwrap().collect();
        assert!(left.is_empty(), "{host}: the probe folder was left: {left:?}");
    }
    assert!(!out.contains("from-the-template") && !err.contains("from-the-template"), "the template is never printed");

    // What getting-started.md says: ACLs for the web server's user, default ones on releases/.
    for host in ["web1", "web2"] {
        let acl = |args: &[&str], path: &str| {
            let status = Command::new("setfacl").args(args).arg(root(host).join(path)).status().unwrap();
            assert!(status.success(), "setfacl {args:?} {path}");
        };
        acl(&["-m", "u:www-data:rwx,d:u:www-data:rwx"], "releases");
        acl(&["-R", "-m", "u:www-data:rwx,d:u:www-data:rwx"], "shared/var/log");
    }
    std::fs::write(root("web1").join("shared/.env.local"), "EDITED ON THE HOST\n").unwrap();
    let (code, out, err) = run(&f, &["setup", "fresh"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(check_row(&out, "web1", "layout").unwrap().contains("all there"), "{out}");
    assert_eq!(std::fs::read_to_string(root("web1").join("shared/.env.local")).unwrap(), "EDITED ON THE HOST\n");
    assert!(out.contains("www-data writes var/cache in a new release"), "{out}");

    // The real settings in place (the farm's, per host), then a deploy goes through (the
    // farm's web server serves the `farm` stage's path: it is deployed first, for the health
    // check).
    let (code, _, err) = run(&f, &["farm", "--output", "plain"]);
    assert_eq!(code, 0, "{err}");
    for host in ["web1", "web2"] {
        std::fs::copy(f.root(host).join("shared/.env.local"), root(host).join("shared/.env.local")).unwrap();
    }
    let (code, _, err) = run(&f, &["fresh", "--output", "plain"]);
    assert_eq!(code, 0, "a deploy to the prepared path: {err}");
    assert!(root("web2").join("current").exists());
}
