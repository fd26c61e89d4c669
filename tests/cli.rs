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
fn no_stage_is_a_usage_error() {
    let o = deploy(root(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("which stage?"));
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
    assert!(out.contains("test -d /var/www/knifedepot/releases/20261120T101010Z-0f0f0f0"));
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
        (&["plan", "production", "--revision", "no-such-branch"], "cannot resolve revision `no-such-branch`"),
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

[[stages.production.http_cache]]
kind = "http"
url = "https://cdn.example/purge"
headers = { Authorization = "Bearer ${CDN_TOKEN}" }
"#;
    std::fs::write(repo.path().join("Deploy.toml"), text).unwrap();
    let o = deploy_env(repo.path(), &["plan", "production"], &[("CDN_TOKEN", "s3cr3t-value")]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for args in [&["plan", "production"][..], &["plan", "production", "--output", "json"]] {
        let o = deploy_env(repo.path(), args, &[("CDN_TOKEN", "s3cr3t-value")]);
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(!all.contains("s3cr3t-value"), "secret printed by {args:?}");
        assert!(all.contains("${CDN_TOKEN}"));
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
