//! The real binary: help, init, plan, exit codes.

use crate::support::*;
use std::path::Path;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn help_lists_every_command_and_global_option() {
    let o = deploy(root(), &["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    for c in ["rollback", "plan", "releases", "check", "unlock", "exec", "init"] {
        assert!(out.contains(&format!("\n  {c} ")), "--help lacks {c}:\n{out}");
    }
    for opt in [
        "--config",
        "--revision",
        "--output",
        "--verbose",
        "--quiet",
        "--yes",
        "--batch",
        "--skip-migrations",
        "--no-ban",
    ] {
        assert!(out.contains(opt), "--help lacks {opt}");
    }
    assert!(out.contains("Exit codes"), "{out}");
    let o = deploy(root(), &["plan", "--help"]);
    assert!(stdout(&o).contains("--rollback"));
    let o = deploy(root(), &["--version"]);
    assert!(stdout(&o).starts_with("deploy "));
}

#[test]
fn each_command_offers_only_its_own_options() {
    let help = |args: &[&str]| {
        let o = deploy(root(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        stdout(&o)
    };
    let rollback = help(&["rollback", "--help"]);
    for absent in ["--revision", "--rebuild", "--allow-dirty", "--skip-migrations", "--yes"] {
        assert!(!rollback.contains(absent), "rollback --help offers {absent}:\n{rollback}");
    }
    for present in ["--to", "--batch", "--no-ban", "--lock-wait", "--no-auto-rollback", "--config", "<STAGE>"] {
        assert!(rollback.contains(present), "rollback --help lacks {present}:\n{rollback}");
    }
    assert!(
        rollback.contains("Migrations are not reversed") && rollback.contains("deploy releases STAGE"),
        "{rollback}"
    );
    for command in ["check", "releases", "unlock", "exec"] {
        let text = help(&[command, "--help"]);
        for absent in ["--batch", "--no-ban", "--revision", "--skip-migrations", "--lock-wait"] {
            assert!(!text.contains(absent), "{command} --help offers {absent}:\n{text}");
        }
        assert!(text.contains("as named in Deploy.toml"), "{command} --help does not say what <STAGE> is:\n{text}");
    }
    let plan = help(&["plan", "--help"]);
    for present in ["--revision", "--batch", "--skip-migrations", "--no-ban", "--rollback"] {
        assert!(plan.contains(present), "plan --help lacks {present}");
    }
    assert!(!plan.contains("--lock-wait") && !plan.contains("--no-auto-rollback"), "{plan}");
    // An option that does not apply is an error, before anything is read or contacted.
    let cases: &[(&[&str], &str)] = &[
        (&["init", "--batch", "3", "--revision", "foo"], "--batch"),
        (&["check", "production", "--batch", "2"], "--batch"),
        (&["releases", "production", "--no-ban"], "--no-ban"),
        (&["rollback", "production", "--revision", "main"], "--revision"),
        (
            &["--batch", "3", "rollback", "production"],
            "--batch is an option of `deploy STAGE`, not of `deploy rollback`",
        ),
        (&["--yes", "unlock", "production"], "--yes is an option of `deploy STAGE`"),
    ];
    for (args, says) in cases {
        let o = deploy(root(), args);
        assert_eq!(o.status.code(), Some(2), "deploy {args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "deploy {args:?} should say {says:?}:\n{}", stderr(&o));
        assert!(o.stdout.is_empty(), "deploy {args:?} printed to stdout");
    }
}

#[test]
fn no_stage_is_a_usage_error() {
    let o = deploy(root(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("which stage?"));
    // The stages of the config found are listed, with their hosts and balancer.
    assert!(stderr(&o).contains("production (5 hosts, varnish)") && stderr(&o).contains("staging ("), "{}", stderr(&o));
    let elsewhere = tempfile::tempdir().unwrap();
    let o = deploy(elsewhere.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("which stage?") && !stderr(&o).contains("stages in"), "{}", stderr(&o));
    let o = deploy(root(), &["plan"]);
    assert_eq!(o.status.code(), Some(2), "clap reports a missing stage with 2");
    let o = deploy(root(), &["--output", "yaml", "plan", "production"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn plan_of_the_bundled_example() {
    let o = deploy(root(), &["plan", "production"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("deploy knifedepot to production\n"), "{out}");
    // Every SPEC §5 phase, in order.
    let mut at = 0;
    for phase in ["connect —", "lock —", "build —", "upload —", "migrate —", "roll —", "workers —", "ban —", "finish —"]
    {
        let i = out[at..].find(phase).unwrap_or_else(|| panic!("{phase} missing or out of order:\n{out}"));
        at += i;
    }
    assert!(out.contains(
        r"timeout -k 5s 45s sh -c 'varnishadm -T 127.0.0.1:6082 -S /etc/varnish/secret backend.set_health '\''*.web2'\'' sick'"
    ));
    assert!(out.contains("batch 3/3: web3"));
    // Offline: the same from a subfolder (Deploy.toml found upward).
    let o = deploy(&root().join("src"), &["plan", "staging"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("haproxy on stage-lb"));
}

#[test]
fn plan_as_json_parses() {
    let o = deploy(root(), &["plan", "production", "--output", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("valid JSON");
    assert_eq!(v["kind"], "deploy");
    assert_eq!(v["stage"], "production");
    let phases: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["connect", "lock", "build", "upload", "migrate", "roll", "workers", "ban", "finish"]);
    let head = String::from_utf8(
        std::process::Command::new("git").args(["rev-parse", "HEAD"]).current_dir(root()).output().unwrap().stdout,
    )
    .unwrap();
    assert_eq!(v["revision"]["commit"], head.trim());
}

#[test]
fn plan_options_change_the_plan() {
    let o = deploy(root(), &["plan", "production", "--skip-migrations", "--no-ban", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let phases: Vec<&str> = v["steps"].as_array().unwrap().iter().map(|s| s["phase"].as_str().unwrap()).collect();
    assert!(!phases.contains(&"migrate") && !phases.contains(&"ban"), "{phases:?}");
    let o = deploy(root(), &["plan", "production", "--rollback", "--to", "20261120T101010Z-0f0f0f0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.starts_with("rollback knifedepot to production"));
    assert!(out.contains("check that releases/20261120T101010Z-0f0f0f0 is there"), "{out}");
    let full = stdout(&deploy(root(), &["plan", "production", "--rollback", "--to", "20261120T101010Z-0f0f0f0", "-v"]));
    assert!(full.contains("test -d /var/www/knifedepot/releases/20261120T101010Z-0f0f0f0"), "{full}");
    assert!(out.contains("migrations are NOT reversed"));
    assert!(!out.contains("build —") && !out.contains("upload —"));
}

#[test]
fn bad_arguments_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (&["plan", "prod"], "did you mean `production`?"),
        (&["plan", "production", "--batch", "0"], "--batch 0"),
        (&["plan", "production", "--batch", "2"], "rolling is impossible"),
        (&["plan", "production", "--rollback", "--to", "../../etc"], "not a release id"),
        (&["plan", "production", "-c", "/nonexistent/Deploy.toml"], "cannot read /nonexistent/Deploy.toml"),
    ];
    // (Never `deploy production` here: the bundled example's hosts are not ours to contact.)
    for (args, says) in cases {
        let o = deploy(root(), args);
        assert_eq!(o.status.code(), Some(2), "deploy {args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "deploy {args:?} should say {says:?}:\n{}", stderr(&o));
        assert!(o.stdout.is_empty(), "deploy {args:?} printed to stdout");
    }
}

#[test]
fn no_config_found() {
    let dir = tempfile::tempdir().unwrap();
    let o = deploy(dir.path(), &["plan", "production"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no Deploy.toml in"), "{}", stderr(&o));
    assert!(stderr(&o).contains("deploy init"));
}

#[test]
fn init_writes_a_starter_that_plans_and_refuses_to_overwrite() {
    for recipe in ["symfony", "laravel", "rails", "django", "node", "static"] {
        let repo = git_repo(&[("index.html", "hi")]);
        let o = deploy(repo.path(), &["init", "--recipe", recipe]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let written = std::fs::read_to_string(repo.path().join("Deploy.toml")).unwrap();
        assert!(written.contains(&format!("recipe = \"{recipe}\"")));
        let o = deploy(repo.path(), &["plan", "production"]);
        assert_eq!(o.status.code(), Some(0), "starter for {recipe} does not plan:\n{}", stderr(&o));
        // A second init changes nothing.
        std::fs::write(repo.path().join("Deploy.toml"), "# mine\n").unwrap();
        let o = deploy(repo.path(), &["init", "--recipe", recipe]);
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains("already exists"));
        assert_eq!(std::fs::read_to_string(repo.path().join("Deploy.toml")).unwrap(), "# mine\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let o = deploy(dir.path(), &["init", "--recipe", "wordpress"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("symfony"), "lists the recipes: {}", stderr(&o));
}

#[test]
fn secrets_from_the_environment_are_not_printed() {
    let repo = git_repo(&[("index.html", "hi")]);
    let text = r#"
[app]
name = "shop"
path = "/srv/shop"

[stages.production]
hosts = [{ name = "web1", address = "127.0.0.1", roles = ["app"] }]

[hooks]
activate = ["curl -fsS -H \"X-Key: ${HOOK_KEY}\" http://localhost/reset"]

[[stages.production.http_cache]]
kind = "http"
url = "https://cdn.example/purge"
headers = { Authorization = "Bearer ${CDN_TOKEN}" }
"#;
    std::fs::write(repo.path().join("Deploy.toml"), text).unwrap();
    let env = [("CDN_TOKEN", "s3cr3t-value"), ("HOOK_KEY", "hook-s3cr3t")];
    let o = deploy_env(repo.path(), &["plan", "production"], &env);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // The human plan tells a value read here, now (`<$CDN_TOKEN>`, in the ban's header) from
    // one the host's shell expands (`${HOOK_KEY}`, in the hook), and says which is which.
    let human = stdout(&o);
    assert!(human.contains("Bearer <$CDN_TOKEN>") && !human.contains("${CDN_TOKEN}"), "{human}");
    assert!(human.contains("X-Key: ${HOOK_KEY}") && !human.contains("<$HOOK_KEY>"), "{human}");
    assert!(human.contains("<$VAR>: a value read from this machine's environment"), "{human}");
    for args in [&["plan", "production", "-v"][..], &["plan", "production", "--output", "json"]] {
        let o = deploy_env(repo.path(), args, &env);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!all.contains("s3cr3t-value") && !all.contains("hook-s3cr3t"), "secret printed by {args:?}");
        assert!(all.contains("CDN_TOKEN"), "{all}");
    }
    // Without the variable: a config error naming it, exit 2.
    let o = deploy(repo.path(), &["plan", "production"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("environment variable `CDN_TOKEN` is not set"));
}

#[test]
fn other_stages_do_not_need_their_secrets() {
    let repo = git_repo(&[("index.html", "hi")]);
    let text = r#"
[app]
name = "shop"
path = "/srv/shop"

[stages.production]
hosts = [{ name = "web1", address = "127.0.0.1", roles = ["app"] }]

[stages.staging]
hosts = [{ name = "s1", address = "127.0.0.2", roles = ["app"], user = "${STAGING_USER}" }]
"#;
    std::fs::write(repo.path().join("Deploy.toml"), text).unwrap();
    let o = deploy(repo.path(), &["plan", "production"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = deploy(repo.path(), &["plan", "staging"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("STAGING_USER"));
}

#[test]
fn completions_and_man_page_come_from_the_same_definitions() {
    let o = deploy(root(), &["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0));
    let out = stdout(&o);
    assert!(out.contains("_deploy()") && out.contains("rollback") && out.contains("--lock-wait"), "{out}");
    for shell in ["zsh", "fish"] {
        let o = deploy(root(), &["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        assert!(stdout(&o).contains("unlock"), "{shell}");
    }
    let o = deploy(root(), &["completions", "tcsh"]);
    assert_eq!(o.status.code(), Some(2));
    let o = deploy(root(), &["man"]);
    let out = stdout(&o);
    assert!(out.starts_with(".ie") || out.contains(".TH deploy 1"), "{out}");
    assert!(out.contains("rollback") && out.contains("Exit codes"), "{out}");
}

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    // The reading end is closed before deploy starts, so its first write fails (EPIPE).
    let cases: &[&[&str]] =
        &[&["completions", "bash"], &["completions", "zsh"], &["man"], &["--help"], &["plan", "production"]];
    for args in cases {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_deploy"))
            .args(*args)
            .current_dir(root())
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        assert!(!stderr(&o).contains("panicked"), "deploy {args:?} panicked: {}", stderr(&o));
        assert_eq!(o.status.code(), Some(0), "deploy {args:?}: {}", stderr(&o));
    }
}

#[test]
fn errors_point_at_what_the_user_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let write = |text: &str| std::fs::write(dir.path().join("Deploy.toml"), text).unwrap();
    // A missing environment variable is one problem, not also an empty address.
    write(
        "[app]\nname = \"bakery\"\npath = \"/srv/bakery\"\n\n[stages.production]\nhosts = [{ name = \"web1\", address = \"${DEPLOY_TEST_NEVER_SET_IP}\", roles = [\"app\"] }]\n",
    );
    let o = deploy(dir.path(), &["plan", "production"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.matches("DEPLOY_TEST_NEVER_SET_IP` is not set").count(), 1, "{err}");
    assert!(!err.contains("host address") && !err.contains("problems in the config"), "{err}");
    // A stage mistyped on the command line is the command line's mistake.
    let o = deploy(dir.path(), &["plan", "prodution"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no stage named `prodution`") && err.contains("--> the command line"), "{err}");
    assert!(err.contains("did you mean `production`?") && !err.contains("Deploy.toml:"), "{err}");
    // Hints speak of the user's app, not of an example's.
    write(
        "[app]\nname = \"bakery\"\npath = \"srv/bakery\"\n\n[stages.production]\nhosts = [{ name = \"web1\", address = \"10.1.2.3\", roles = [\"app\"] }]\n",
    );
    let err = stderr(&deploy(dir.path(), &["plan", "production"]));
    assert!(err.contains("e.g. `/srv/bakery`") && !err.contains("knifedepot"), "{err}");
    write(
        "[app]\nname = \"bakery\"\n\n[stages.production]\nhosts = [{ name = \"web1\", address = \"10.1.2.3\", roles = [\"app\"] }]\n",
    );
    let err = stderr(&deploy(dir.path(), &["plan", "production"]));
    assert!(err.contains("`path = \"/var/www/bakery\"`") && !err.contains("knifedepot"), "{err}");
}

#[test]
fn plan_notes_what_deploy_would_refuse_and_still_plans() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path();
    std::fs::write(
        repo.join("Deploy.toml"),
        "[app]\nname = \"bakery\"\npath = \"/srv/bakery\"\n\n[stages.production]\nhosts = [{ name = \"web1\", address = \"10.1.2.3\", roles = [\"app\"] }]\n",
    )
    .unwrap();
    std::fs::write(repo.join("index.html"), "v1").unwrap();
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "one"]);
    let clean = deploy(repo, &["plan", "production"]);
    assert_eq!(clean.status.code(), Some(0), "{}", stderr(&clean));
    assert!(!stderr(&clean).contains("note:"), "{}", stderr(&clean));
    // A changed file and a changed Deploy.toml: deploy would refuse both; plan says so.
    std::fs::write(repo.join("index.html"), "v2").unwrap();
    let text = std::fs::read_to_string(repo.join("Deploy.toml")).unwrap();
    std::fs::write(repo.join("Deploy.toml"), text + "# edited\n").unwrap();
    let dirty = deploy(repo, &["plan", "production"]);
    let err = stderr(&dirty);
    assert_eq!(dirty.status.code(), Some(0), "{err}");
    assert!(
        err.contains("note: `deploy production` would refuse")
            && err.contains("index.html")
            && err.contains("Deploy.toml"),
        "{err}"
    );
    assert!(stdout(&dirty).starts_with("deploy bakery to production"), "the plan is still shown");
    assert!(!stderr(&deploy(repo, &["plan", "production", "--allow-dirty"])).contains("note:"));
    // A revision that does not resolve: a note, and the plan of commit 000….
    let missing = deploy(repo, &["plan", "production", "--revision", "no-such-branch", "--allow-dirty"]);
    assert_eq!(missing.status.code(), Some(0), "{}", stderr(&missing));
    assert!(stderr(&missing).contains("revision `no-such-branch` does not resolve"), "{}", stderr(&missing));
    assert!(stdout(&missing).contains("0000000"), "{}", stdout(&missing));
}

#[test]
fn plan_notes_a_host_and_path_another_stage_deploys_to() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[app]\nname = \"shop\"\npath = \"/var/www/shop\"\n\n[stages.production]\nhosts = [\n  { name = \"web1\", address = \"10.0.0.11\", roles = [\"app\"] },\n  { name = \"web2\", address = \"10.0.0.12\", roles = [\"app\"] },\n]\n\n[stages.staging]\nhosts = [{ name = \"s1\", address = \"10.0.0.12\", roles = [\"app\"] }]\n\n[stages.demo]\nhosts = [{ name = \"d1\", address = \"10.0.0.11\", roles = [\"app\"] }]\n\n[stages.demo.app]\npath = \"/var/www/shop-demo\"\n";
    std::fs::write(dir.path().join("Deploy.toml"), text).unwrap();
    let o = deploy(dir.path(), &["plan", "staging", "--revision", "HEAD"]);
    let err = stderr(&o);
    assert!(err.contains("note: stage `production` also deploys to 10.0.0.12 at /var/www/shop"), "{err}");
    let o = deploy(dir.path(), &["plan", "production", "--rollback"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("stage `staging` also deploys to 10.0.0.12 at /var/www/shop: a rollback"), "{err}");
    assert!(!err.contains("`demo`"), "another path on the same machine is no overlap: {err}");
}

#[test]
fn the_plan_reads_at_three_levels_of_detail() {
    let lines = |args: &[&str]| {
        let o = deploy(root(), args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        stdout(&o)
    };
    let normal = lines(&["plan", "production"]);
    let full = lines(&["plan", "production", "-v"]);
    let brief = lines(&["plan", "production", "-q"]);
    // Default: the user's own commands as written, no journal writes, no wrappers.
    assert!(normal.contains("prepare      $ php bin/console cache:warmup"), "{normal}");
    assert!(normal.contains("backend.set_health '\\''*.web1'\\'' sick"), "{normal}");
    assert!(!normal.contains("journal.json") && !normal.contains("hook.pid"), "{normal}");
    assert!(normal.contains("point `current` at releases/"), "{normal}");
    // -v: every command as it runs.
    assert!(full.contains("journal.json") && full.contains("hook.pid") && full.contains("mv -fT"), "{full}");
    assert!(!full.contains("at the same time as the next step"), "{full}");
    // -q: one screen, every step named.
    assert!(brief.lines().count() <= 30, "{brief}");
    for phase in ["1. connect", "3. build", "6. roll", "9. finish"] {
        assert!(brief.contains(phase), "{brief}");
    }
    assert!(brief.contains("web1 → web2 → web3"), "{brief}");
    assert!(normal.lines().count() < full.lines().count() && brief.lines().count() < normal.lines().count());
    // A stage that keeps no host in service says so in words.
    let staging = lines(&["plan", "staging"]);
    assert!(staging.contains("no host has to stay in service") && !staging.contains("at least 0"), "{staging}");
}

#[test]
fn config_shows_each_merged_value_and_where_it_was_written() {
    let o = deploy(root(), &["config", "production"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let line = |key: &str| {
        out.lines().find(|line| line.starts_with(&format!("{key} = "))).unwrap_or_else(|| panic!("no {key}:\n{out}"))
    };
    assert!(line("app.name").contains("\"knifedepot\"") && line("app.name").contains("Deploy.toml:"), "{out}");
    assert!(line("vars.console").contains("# recipe symfony (built in):"), "{out}");
    assert!(line("balancer.kind").contains("(stage production)"), "{out}");
    assert!(line("hosts[0]").contains("web1"), "{out}");
    // Values as written: a secret from the environment is never printed.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Deploy.toml"),
        "[app]\nname = \"bakery\"\npath = \"/srv/bakery\"\n\n[health]\nurl = \"http://{address}/health?token=${DEPLOY_TEST_TOKEN}\"\n\n[stages.production]\nhosts = [{ name = \"web1\", address = \"10.1.2.3\", roles = [\"app\"] }]\n\n[stages.production.health]\nretries = 3\n",
    )
    .unwrap();
    let o = deploy_env(dir.path(), &["config", "production"], &[("DEPLOY_TEST_TOKEN", "s3cr3t-value")]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(out.contains("health.url = \"http://{address}/health?token=${DEPLOY_TEST_TOKEN}\""), "{out}");
    assert!(out.contains("health.retries = 3") && out.contains("(stage production)"), "{out}");
    assert!(!out.contains("s3cr3t-value"), "{out}");
    let o = deploy(dir.path(), &["config", "prodution"]);
    assert_eq!(o.status.code(), Some(2));
}

/// `--host`/`--role`: the plan changes only the chosen hosts, connects only to them and the
/// balancer, counts the others as in service, and says so; what cannot be met is exit 2.
#[test]
fn host_and_role_narrow_a_run_to_the_hosts_chosen() {
    let plan = |args: &[&str]| {
        let mut all = vec!["plan", "production"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--output", "json"]);
        let o = deploy(root(), &all);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let hosts_of = |plan: &serde_json::Value, phase: &str| -> Vec<String> {
        let Some(step) = plan["steps"].as_array().unwrap().iter().find(|step| step["phase"] == phase) else {
            return vec![];
        };
        step["batches"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|batch| batch["hosts"].as_array().unwrap())
            .map(|host| host["host"].as_str().unwrap().to_string())
            .collect()
    };
    let all = plan(&[]);
    assert_eq!(hosts_of(&all, "roll"), ["web1", "web2", "web3"], "the control: every app host");
    assert_eq!(hosts_of(&all, "upload"), ["web1", "web2", "web3", "jobs1"]);

    let one = plan(&["--host", "web2", "--skip-migrations"]);
    assert_eq!(hosts_of(&one, "connect"), ["web2", "lb1"]);
    for phase in ["lock", "upload", "roll", "finish"] {
        assert_eq!(hosts_of(&one, phase), ["web2"], "{phase}");
    }
    assert!(hosts_of(&one, "workers").is_empty());
    assert_eq!(one["record"]["only"], serde_json::json!(["web2"]));
    let roll = one["steps"].as_array().unwrap().iter().find(|step| step["phase"] == "roll").unwrap();
    assert!(roll["title"].as_str().unwrap().starts_with("roll 1 of 3 app hosts"), "{roll}");
    let capacity = &roll["batches"][0]["hosts"][0]["actions"][0];
    assert_eq!(capacity["what"], "capacity");
    assert_eq!(capacity["until"]["others"], serde_json::json!(["web1", "web3"]), "the others count as in service");
    let notes = one["notes"].to_string();
    assert!(notes.contains("web1, web3, jobs1 keep their release and stay in service"), "{notes}");

    let workers = plan(&["--role", "worker", "--skip-migrations"]);
    assert_eq!(hosts_of(&workers, "workers"), ["jobs1"]);
    assert!(hosts_of(&workers, "roll").is_empty());
    let migrate = plan(&["--host", "web1,web3"]);
    assert_eq!(hosts_of(&migrate, "migrate"), ["web1"]);
    assert_eq!(hosts_of(&migrate, "roll"), ["web1", "web3"]);
    let text = stdout(&deploy(root(), &["plan", "production", "--rollback", "--host", "web3"]));
    assert!(text.contains("only web3 (--host web3)"), "{text}");

    let cases: &[(&[&str], &str)] = &[
        (&["plan", "production", "--host", "web2"], "the migration runs on web1 (role migrate)"),
        (&["plan", "production", "--host", "web9"], "has no host web9 (did you mean web1?)"),
        (&["plan", "production", "--host", "lb1"], "lb1 gets no release"),
        (&["plan", "production", "--host", ""], "--host: an empty host name"),
        (&["plan", "production", "--host", "web2", "--role", "worker"], "no host of stage `production`"),
        (&["plan", "production", "--role", "cook"], "--role cook: no such role"),
        (&["rollback", "production", "--host", "web9"], "has no host web9"),
        (&["--host", "web1", "check", "production"], "--host is an option of `deploy STAGE`"),
    ];
    for (args, says) in cases {
        let o = deploy(root(), args);
        assert_eq!(o.status.code(), Some(2), "deploy {args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "deploy {args:?} should say {says:?}:\n{}", stderr(&o));
    }
}
