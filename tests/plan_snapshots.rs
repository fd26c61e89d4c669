//! `deploy plan` output for every recipe and for batch 1, 2 and "50%", as reviewed snapshots.
//! The plan is built with a fixed release id, commit and owner, so the text is stable.

use deploy::config::{self, BatchSize};
use deploy::plan::{self, DeployInput, Owner, Phase, Revision, RollbackInput, Run, What};
use std::path::Path;

const COMMIT: &str = "1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d";
const ID: &str = "20261126T051944Z-1a2b3c4";

fn owner() -> Owner {
    Owner {
        user: "alice".into(),
        machine: "laptop".into(),
        pid: 4242,
        stage: "production".into(),
        started: "2026-11-26T05:19:44Z".into(),
        token: "0123456789abcdef0123456789abcdef".into(),
    }
}

fn load(text: &str) -> config::Config {
    let env = |k: &str| (k == "CDN_TOKEN").then(|| "tok-SECRET-123".to_string());
    match config::parse("Deploy.toml", text, Path::new("/src/shop"), "production", &env) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    }
}

fn deploy_plan(cfg: &config::Config, batch: Option<BatchSize>) -> plan::Plan {
    let rev = Revision { requested: "main".into(), commit: COMMIT.into() };
    plan::deploy(
        &cfg.stage,
        &DeployInput {
            release: ID,
            revision: &rev,
            owner: &owner(),
            batch,
            skip_migrations: false,
            no_ban: false,
            auto_rollback: true,
            upload_parallel: 8,
            other_stage_ok: false,
            no_canary: false,
        },
    )
}

fn recipe_config(recipe: &str) -> String {
    format!(
        r#"
[app]
name = "shop"
recipe = "{recipe}"
path = "/var/www/shop"

[stages.production]
hosts = [
  {{ name = "web1", address = "10.0.0.11", roles = ["app", "migrate"] }},
  {{ name = "web2", address = "10.0.0.12", roles = ["app"] }},
  {{ name = "jobs1", address = "10.0.0.21", roles = ["worker"] }},
  {{ name = "lb1", address = "10.0.0.2", roles = ["balancer"] }},
]

[stages.production.balancer]
kind = "varnish"
host = "lb1"

[[stages.production.http_cache]]
kind = "varnish"
host = "lb1"
"#
    )
}

#[test]
fn every_recipe() {
    for recipe in config::recipes::names() {
        let cfg = load(&recipe_config(recipe));
        let p = deploy_plan(&cfg, None);
        insta::assert_snapshot!(format!("recipe_{recipe}"), cfg.redact(&p.to_string()));
    }
}

const FOUR_BEHIND_HAPROXY: &str = r#"
[app]
name = "shop"
path = "/srv/shop"
keep_releases = 3

[shared]
dirs = ["var/log"]

[hooks]
activate = ["rm -rf var/cache/prod/twig"]

[health]
url = "http://{address}:8080/health"
from = "local"
retries = 5

[rolling]
batch = 1
min_in_service = 2

[ssh]
user = "deploy"
port = 2222

[stages.production]
hosts = [
  { name = "web1", address = "127.0.0.11", roles = ["app"] },
  { name = "web2", address = "127.0.0.12", roles = ["app"] },
  { name = "web3", address = "127.0.0.13", roles = ["app"] },
  { name = "web4", address = "127.0.0.14", roles = ["app"], port = 2223, user = "ops" },
  { name = "lb", address = "127.0.0.1", roles = ["balancer"] },
]

[stages.production.balancer]
kind = "haproxy"
host = "lb"
backend = "shop"
servers = { web4 = "shop4" }

[[stages.production.http_cache]]
kind = "http"
method = "PURGE"
url = "https://api.cdn.example/purge"
headers = { Authorization = "Bearer ${CDN_TOKEN}" }
"#;

#[test]
fn batches() {
    let cfg = load(FOUR_BEHIND_HAPROXY);
    for (name, batch) in
        [("batch_1", None), ("batch_2", Some(BatchSize::Count(2))), ("batch_50_percent", Some(BatchSize::Percent(50)))]
    {
        let p = deploy_plan(&cfg, batch);
        insta::assert_snapshot!(name, cfg.redact(&p.to_string()));
    }
}

#[test]
fn batch_shapes() {
    let cfg = load(FOUR_BEHIND_HAPROXY);
    let hosts_per_batch = |b| {
        let p = deploy_plan(&cfg, b);
        let roll = p.step(Phase::Roll).unwrap();
        roll.batches.iter().map(|b| b.hosts.iter().map(|h| h.host.clone()).collect::<Vec<_>>()).collect::<Vec<_>>()
    };
    assert_eq!(hosts_per_batch(None), [["web1"], ["web2"], ["web3"], ["web4"]]);
    assert_eq!(hosts_per_batch(Some(BatchSize::Count(2))), [["web1", "web2"], ["web3", "web4"]]);
    assert_eq!(hosts_per_batch(Some(BatchSize::Percent(50))), [["web1", "web2"], ["web3", "web4"]]);
    assert_eq!(hosts_per_batch(Some(BatchSize::Percent(10))), [["web1"], ["web2"], ["web3"], ["web4"]]);
}

#[test]
fn secrets_never_reach_the_output() {
    let cfg = load(FOUR_BEHIND_HAPROXY);
    let p = deploy_plan(&cfg, None);
    let text = cfg.redact(&p.to_string());
    let json = cfg.redact(&p.to_json());
    assert!(!text.contains("tok-SECRET-123") && !json.contains("tok-SECRET-123"));
    assert!(text.contains("Bearer ${CDN_TOKEN}"), "{text}");
    // …while the plan itself carries the real value for the runner.
    assert!(p.to_json().contains("tok-SECRET-123"));
}

#[test]
fn steps_in_spec_order_and_per_host_order() {
    let cfg = load(&recipe_config("symfony"));
    let p = deploy_plan(&cfg, None);
    let phases: Vec<Phase> = p.steps.iter().map(|s| s.phase).collect();
    assert_eq!(
        phases,
        [
            Phase::Connect,
            Phase::Lock,
            Phase::Build,
            Phase::Upload,
            Phase::Migrate,
            Phase::Roll,
            Phase::Workers,
            Phase::Ban,
            Phase::Finish
        ]
    );
    // Migrate once, on the migrate host only.
    let migrate: Vec<_> = p.steps.iter().flat_map(|s| s.actions()).filter(|a| a.what == What::Migrate).collect();
    assert_eq!(migrate.len(), 1);
    assert_eq!(migrate[0].on.to_string(), "web1");
    // Each rolled host: capacity check → drain → wait idle → switch → activate → health → wait for the balancer's
    // own check (still drained) → undrain → in service.
    let roll = p.step(Phase::Roll).unwrap();
    for b in &roll.batches {
        for h in &b.hosts {
            let order: Vec<What> = h.actions.iter().map(|a| a.what).filter(|w| *w != What::Journal).collect();
            assert_eq!(
                order,
                [
                    What::Capacity,
                    What::Drain,
                    What::WaitDrained,
                    What::Switch,
                    What::Activate,
                    What::Health,
                    What::WaitProbe,
                    What::Undrain,
                    What::WaitHealthy
                ],
                "{}",
                h.host
            );
            // The journal is written before each state change: just before the drain and the
            // undrain, and by the switch command itself, first.
            let whats: Vec<What> = h.actions.iter().map(|a| a.what).collect();
            for w in [What::Drain, What::Undrain] {
                let i = whats.iter().position(|x| *x == w).unwrap();
                assert_eq!(whats[i - 1], What::Journal, "journal before {w:?} on {}", h.host);
                assert!(!h.actions[i - 1].with_next, "the journal is written before {w:?} starts");
            }
            let switch = h.actions.iter().find(|a| a.what == What::Switch).unwrap();
            let Run::Shell { cmd, .. } = &switch.run else { panic!("switch is a command") };
            let cmd = cmd.to_string();
            assert!(cmd.find("journal.json").unwrap() < cmd.find("ln -sfn").unwrap(), "{cmd}");
        }
    }
    // Workers are not drained; the ban comes once, after the last host.
    let workers = p.step(Phase::Workers).unwrap();
    assert!(workers.actions().all(|a| a.what != What::Drain));
    assert_eq!(p.steps.iter().flat_map(|s| s.actions()).filter(|a| a.what == What::Ban).count(), 1);
}

#[test]
fn rollback_plan() {
    let cfg = load(&recipe_config("symfony"));
    let p = plan::rollback(
        &cfg.stage,
        &RollbackInput {
            target: Some("20261120T101010Z-0f0f0f0"),
            from: Some("20261126T051944Z-1a2b3c4"),
            owner: &owner(),
            batch: None,
            no_ban: false,
            auto_rollback: true,
            settled: &[],
        },
    );
    let phases: Vec<Phase> = p.steps.iter().map(|s| s.phase).collect();
    assert!(!phases.contains(&Phase::Build) && !phases.contains(&Phase::Upload) && !phases.contains(&Phase::Migrate));
    assert!(p.notes.iter().any(|n| n.contains("migrations are NOT reversed")));
    insta::assert_snapshot!("rollback_to", p.to_string());
    // Hosts already on the target are not rolled (after a deploy to one host).
    let settled = ["web1".to_string()];
    let narrowed = plan::rollback(
        &cfg.stage,
        &RollbackInput {
            target: Some("20261120T101010Z-0f0f0f0"),
            from: None,
            owner: &owner(),
            batch: None,
            no_ban: false,
            auto_rollback: true,
            settled: &settled,
        },
    );
    let rolled: Vec<&str> = narrowed.step(Phase::Roll).unwrap().hosts().map(|host| host.host.as_str()).collect();
    let all: Vec<&str> = p.step(Phase::Roll).unwrap().hosts().map(|host| host.host.as_str()).collect();
    assert!(all.contains(&"web1") && !rolled.contains(&"web1") && rolled.len() + 1 == all.len(), "{rolled:?}");
    assert!(narrowed.notes.iter().any(|note| note.starts_with("web1 already on 20261120T101010Z-0f0f0f0")));
}

#[test]
fn plan_as_json() {
    let cfg = load(&recipe_config("laravel"));
    let p = deploy_plan(&cfg, None);
    let v: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
    assert_eq!(v["kind"], "deploy");
    assert_eq!(v["release"], ID);
    assert_eq!(v["revision"]["commit"], COMMIT);
    assert_eq!(v["steps"].as_array().unwrap().len(), p.steps.len());
    insta::assert_snapshot!("json_laravel", p.to_json());
}

#[test]
fn each_step_says_what_its_failure_does() {
    use deploy::plan::OnFailure;
    let cfg = load(&recipe_config("symfony"));
    let policies = |p: &plan::Plan| p.steps.iter().map(|s| (s.phase, s.on_failure)).collect::<Vec<_>>();
    let expected = |after_switch| {
        vec![
            (Phase::Connect, OnFailure::Stop),
            (Phase::Lock, OnFailure::ReleaseLocks),
            (Phase::Build, OnFailure::Abort),
            (Phase::Upload, OnFailure::Abort),
            (Phase::Migrate, OnFailure::Abort),
            (Phase::Roll, after_switch),
            (Phase::Workers, after_switch),
            (Phase::Ban, OnFailure::Warn),
            (Phase::Finish, OnFailure::Warn),
        ]
    };
    assert_eq!(policies(&deploy_plan(&cfg, None)), expected(OnFailure::RollBack));
    // --no-auto-rollback is in the plan, so `deploy plan` shows what the run will do.
    let rev = Revision { requested: "main".into(), commit: COMMIT.into() };
    let input = DeployInput {
        release: ID,
        revision: &rev,
        owner: &owner(),
        batch: None,
        skip_migrations: false,
        no_ban: false,
        auto_rollback: false,
        upload_parallel: 8,
        other_stage_ok: false,
        no_canary: false,
    };
    let leave = plan::deploy(&cfg.stage, &input);
    assert_eq!(policies(&leave), expected(OnFailure::LeaveSwitched));
    let text = leave.to_string();
    assert!(
        text.contains("   on failure: put drained hosts back in service, leave switched hosts on the new release"),
        "{text}"
    );
    assert_eq!(text.matches("\n   on failure: ").count(), leave.steps.len(), "one line per step:\n{text}");
    let json: serde_json::Value = serde_json::from_str(&leave.to_json()).unwrap();
    assert_eq!(json["steps"][5]["on_failure"], "leave_switched");
}
