//! The runner against a recording transport: the order of every remote command, without a
//! network. (The farm tests prove the same against real servers; these pin the sequence.)

use deploy::artifact::{self, BuildSpec};
use deploy::config;
use deploy::plan::{self, DeployInput, Owner, Revision, Target};
use deploy::remote::Cmd;
use deploy::report::Silent;
use deploy::runner::{Aftermath, Clock, Context, FailureKind, RunError, Runner};
use deploy::transport::{Output, Request, Transport, TransportError};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

const PREV: &str = "20261101T000000Z-0000000";

/// Decides, from (host, command line), to answer something else than a healthy server.
type Override = Box<dyn Fn(&str, &str) -> Option<Output> + Send + Sync>;

/// Answers like healthy servers; `fail` turns chosen commands into failures.
struct Recording {
    log: Mutex<Vec<(String, String)>>,
    fail: Override,
    /// Commands containing this never finish.
    hang: Option<&'static str>,
}

impl Recording {
    fn new(fail: impl Fn(&str, &str) -> Option<Output> + Send + Sync + 'static) -> Arc<Recording> {
        Arc::new(Recording { log: Mutex::new(Vec::new()), fail: Box::new(fail), hang: None })
    }

    fn lines(&self) -> Vec<(String, String)> {
        self.log.lock().unwrap().clone()
    }
}

fn ok(stdout: &str) -> Output {
    Output { status: Some(0), stdout: stdout.into(), stderr: String::new() }
}

impl Transport for Recording {
    async fn run(&self, on: &Target, cmd: &Cmd, stdin: Option<&Path>) -> Result<Output, TransportError> {
        let (on, line) = (on.to_string(), cmd.to_string());
        self.log.lock().unwrap().push((on.clone(), line.clone()));
        if let Some(o) = (self.fail)(&on, &line) {
            return Ok(o);
        }
        if self.hang.is_some_and(|h| line.contains(h)) {
            std::future::pending::<()>().await;
        }
        Ok(if line.starts_with("readlink") || line.starts_with("sh -c 'readlink") {
            ok(&format!("releases/{PREV}\n"))
        } else if let Some(file) = stdin {
            // A receive: the host prints the sha256 of what arrived.
            use sha2::Digest;
            ok(&format!("{}  file\n", deploy::artifact::hex(&sha2::Sha256::digest(std::fs::read(file).unwrap()))))
        } else if line.contains("varnishstat") {
            ok("VBE.boot.web1.conn 0 . x\n")
        } else if line.contains("backend.list") {
            ok(
                "Backend name Admin Probe Health Last change\nboot.web1 probe 3/3 healthy x\nboot.web2 probe 3/3 healthy x\nboot.web3 probe 3/3 healthy x\n",
            )
        } else if line.contains("| curl -K -") {
            ok("200")
        } else {
            ok("")
        })
    }

    async fn http(&self, _req: Request<'_>) -> Result<u16, TransportError> {
        Ok(200)
    }
}

const CONFIG: &str = r#"
[app]
name = "shop"
path = "/srv/shop"

[hooks]
activate = ["clear-cache"]
migrate = "migrate-db"

[health]
url = "http://{address}/health"
retries = 2
interval = "10ms"

[stages.production]
hosts = [
  { name = "web1", address = "10.0.0.1", roles = ["app", "migrate"] },
  { name = "web2", address = "10.0.0.2", roles = ["app"] },
  { name = "web3", address = "10.0.0.3", roles = ["app"] },
  { name = "lb", address = "10.0.0.9", roles = ["balancer"] },
]

[stages.production.balancer]
kind = "varnish"
host = "lb"

[[stages.production.http_cache]]
kind = "varnish"
host = "lb"
"#;

/// Runs a deploy of a one-commit repository through `t`.
fn run(t: Arc<Recording>) -> (Result<(), RunError>, String) {
    run_on(t, tokio::runtime::Runtime::new().unwrap())
}

fn run_on(t: Arc<Recording>, rt: tokio::runtime::Runtime) -> (Result<(), RunError>, String) {
    let repo = tempfile::tempdir().unwrap();
    std::fs::write(repo.path().join("index.html"), "hi").unwrap();
    let git = |args: &[&str]| {
        let o = std::process::Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t"])
            .args(args)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(o.status.success());
        String::from_utf8(o.stdout).unwrap()
    };
    git(&["init", "-q"]);
    git(&["add", "-A"]);
    git(&["commit", "-qm", "x"]);
    let commit = git(&["rev-parse", "HEAD"]).trim().to_string();
    let cfg = config::parse("Deploy.toml", CONFIG, repo.path(), "production", &|_| None).unwrap();
    let rev = Revision { requested: "HEAD".into(), commit: commit.clone() };
    let owner = Owner {
        user: "t".into(),
        machine: "m".into(),
        pid: 1,
        stage: "production".into(),
        started: "now".into(),
        token: "t0k".into(),
    };
    let id = deploy::release_id::release_id(std::time::SystemTime::now(), &commit);
    let p = plan::deploy(
        &cfg.stage,
        &DeployInput {
            release: &id,
            revision: &rev,
            owner: &owner,
            batch: None,
            skip_migrations: false,
            no_ban: false,
            auto_rollback: true,
            upload_parallel: 8,
            other_stage_ok: false,
            no_canary: false,
        },
    );
    let cache = tempfile::tempdir().unwrap();
    let r = rt.block_on(async {
        let (repo_path, cache_path, commit2) = (repo.path().to_path_buf(), cache.path().to_path_buf(), commit.clone());
        let build = tokio::spawn(async move {
            let spec = BuildSpec {
                app: "shop",
                repository: &repo_path,
                commit: &commit2,
                commands: &[],
                exclude: &[],
                shared: &[],
                env: &[],
                rebuild: false,
            };
            let t0 = Instant::now();
            artifact::build(&spec, &cache_path).await.map(|a| (a, t0.elapsed()))
        });
        let ctx = Arc::new(Context::new(t.clone(), Arc::new(Silent), false));
        let run = Runner::new(ctx, &cfg.stage, &p);
        let mut clock = Clock::new(Instant::now());
        run.run(&mut clock, Some(build)).await
    });
    (r, id)
}

/// Index of the first recorded line on `on` that contains `needle`.
fn at(lines: &[(String, String)], on: &str, needle: &str) -> usize {
    lines
        .iter()
        .position(|(o, l)| o == on && l.contains(needle))
        .unwrap_or_else(|| panic!("no `{needle}` on {on}:\n{lines:#?}"))
}

fn count(lines: &[(String, String)], needle: &str) -> usize {
    lines.iter().filter(|(_, l)| l.contains(needle)).count()
}

#[test]
fn a_deploy_in_spec_order() {
    let t = Recording::new(|_, _| None);
    let (r, id) = run(t.clone());
    assert!(r.is_ok(), "{r:?}");
    let lines = t.lines();
    // Locked first, the first host before the others.
    let lock1 = at(&lines, "web1", "mkdir -- /srv/shop/.deploy/lock");
    assert!(lock1 < at(&lines, "web2", "mkdir -- /srv/shop/.deploy/lock"));
    // Migrations exactly once, on web1, after every upload and before any drain.
    assert_eq!(count(&lines, "migrate-db"), 1);
    let migrate = at(&lines, "web1", "migrate-db");
    for h in ["web1", "web2", "web3"] {
        assert!(at(&lines, h, "tar -xzf") < migrate, "{h} unpacked after the migration");
    }
    // Host by host: each step in order, and the next host only after the previous is back.
    let mut previous_back = migrate;
    for h in ["web1", "web2", "web3"] {
        let drain = at(&lines, "lb", &format!("backend.set_health {} sick", nested(&format!("*.{h}"))));
        let idle =
            lines.iter().skip(drain).position(|(o, l)| o == "lb" && l.contains(&format!("VBE.*.{h}.conn"))).unwrap()
                + drain;
        let switch = at(&lines, h, &format!("ln -sfn -- releases/{id}"));
        let activate = at(&lines, h, "clear-cache");
        let health = at(&lines, h, "| curl -K -");
        let undrain = at(&lines, "lb", &format!("backend.set_health {} auto", nested(&format!("*.{h}"))));
        assert!(previous_back < drain, "{h} drained before the previous host was back");
        assert!(
            drain < idle && idle < switch && switch < activate && activate < health && health < undrain,
            "{h}: order"
        );
        let journal_before_switch =
            lines[..=switch].iter().rposition(|(o, l)| o == h && l.contains("journal.json")).unwrap();
        assert!(lines[journal_before_switch].1.contains("switching"), "journal written before the switch");
        previous_back = undrain;
    }
    // One ban, after the last host; unlock at the very end.
    assert_eq!(count(&lines, " 'ban "), 1);
    assert!(at(&lines, "lb", " 'ban ") > previous_back);
    let last_unlock = lines.iter().rposition(|(_, l)| l.contains(UNLOCK)).unwrap();
    assert!(last_unlock > at(&lines, "lb", " 'ban "));
}

#[test]
fn a_failed_health_check_rolls_switched_hosts_back() {
    // The new release answers 500 on web2 (both tries); the old one, after the switch back, 200.
    let tries = std::sync::atomic::AtomicUsize::new(0);
    let t = Recording::new(move |on, line| {
        (on == "web2" && line.contains("| curl -K -") && tries.fetch_add(1, std::sync::atomic::Ordering::SeqCst) < 2)
            .then(|| ok("500"))
    });
    let (r, id) = run(t.clone());
    assert!(matches!(r, Err(RunError::Failed { aftermath: Aftermath::RolledBack, .. })), "{r:?}");
    let lines = t.lines();
    // web2 is switched back to the previous release, web1 too; web3 never touched.
    for h in ["web1", "web2"] {
        let to_new = at(&lines, h, &format!("ln -sfn -- releases/{id} "));
        let back = lines
            .iter()
            .rposition(|(o, l)| o == h && l.contains(&format!("ln -sfn -- releases/{PREV}")))
            .expect("switched back");
        assert!(back > to_new);
    }
    assert!(!lines.iter().any(|(o, l)| o == "web3" && l.contains("ln -sfn -- releases/")));
    // web2 was never put back in service on the new release: its first undrain comes after its switch back.
    let back2 = at(&lines, "web2", &format!("ln -sfn -- releases/{PREV}"));
    let undrain2 = at(&lines, "lb", &format!("backend.set_health {} auto", nested("*.web2")));
    assert!(undrain2 > back2);
    // The abandoned release is removed, the log says so, locks are gone.
    assert!(lines.iter().any(|(_, l)| l.starts_with("rm -rf --") && l.contains(&format!("releases/{id}"))));
    assert!(lines.iter().any(|(_, l)| l.contains("\"outcome\":\"rolled back\"")));
    assert_eq!(count(&lines, UNLOCK), 3);
    assert_eq!(count(&lines, " 'ban "), 0, "no ban after a failed deploy");
}

/// A word quoted inside a command that is itself quoted (drains and undrains run under
/// `timeout … sh -c`).
fn nested(word: &str) -> String {
    format!("'\\''{word}'\\''")
}

/// This run's unlock: its lock folder and token, removed only if the token is still there.
const UNLOCK: &str = r#"rm -rf -- "$1"' sh /srv/shop/.deploy/lock t0k"#;

#[test]
fn a_held_lock_stops_everything() {
    let t = Recording::new(|on, line| {
        (on == "web1" && line.contains("mkdir -- /srv/shop/.deploy/lock")).then(|| Output {
            status: Some(1),
            stdout: String::new(),
            stderr: "mkdir: cannot create directory '/srv/shop/.deploy/lock': File exists".into(),
        })
    });
    let (r, _) = run(t.clone());
    assert!(matches!(&r, Err(RunError::Locked { holders }) if holders[0].host == "web1"), "{r:?}");
    let lines = t.lines();
    assert!(!lines.iter().any(|(o, _)| o == "web2" || o == "web3"), "other hosts touched: {lines:#?}");
    assert!(!lines.iter().any(|(_, l)| l.contains("set_health") || l.contains("cat >")));
}

#[test]
fn a_hanging_balancer_command_is_a_failure_not_a_hang() {
    // Time is paused: the one-minute limit passes as soon as everything else waits.
    let mut t = Recording::new(|_, _| None);
    Arc::get_mut(&mut t).unwrap().hang = Some("*.web2'\\'' sick");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().start_paused(true).build().unwrap();
    let (r, _) = run_on(t.clone(), rt);
    match r {
        Err(err @ RunError::Failed { aftermath: Aftermath::RolledBack, .. }) => {
            let message = err.to_string();
            assert!(message.contains("drain on lb did not finish within 1m"), "{message}");
            assert!(message.contains("rolled back"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // web1 (already switched) went back; web2 was never switched, and since the drain may
    // have taken effect, it is put back in service anyway.
    let lines = t.lines();
    assert!(lines.iter().any(|(o, l)| o == "lb" && l.contains(&format!("{} auto", nested("*.web2")))), "{lines:#?}");
    assert!(lines.iter().any(|(o, l)| o == "web1" && l.contains(&format!("ln -sfn -- releases/{PREV}"))));
    assert!(!lines.iter().any(|(o, l)| o == "web2" && l.contains("ln -sfn -- releases/")));
}

#[test]
fn a_failed_capacity_check_stops_before_the_drain_and_clears_the_journal_written_beside_it() {
    // web2's capacity check (the second full `backend.list`) fails; its journal entry was
    // written at the same time.
    let lists = std::sync::atomic::AtomicUsize::new(0);
    let t = Recording::new(move |on, line| {
        (on == "lb"
            && line.ends_with("backend.list '*.*'")
            && lists.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1)
            .then(|| Output { status: Some(1), stdout: String::new(), stderr: "CLI communication error".into() })
    });
    let (r, _) = run(t.clone());
    assert!(matches!(r, Err(RunError::Failed { aftermath: Aftermath::RolledBack, .. })), "{r:?}");
    let lines = t.lines();
    let written = lines
        .iter()
        .position(|(o, l)| o == "web2" && l.contains("\"state\":\"draining\""))
        .expect("web2's journal written beside its capacity check");
    let cleared = lines
        .iter()
        .rposition(|(o, l)| o == "web2" && l.starts_with("rm -f -- /srv/shop/.deploy/journal.json"))
        .expect("web2's journal cleared");
    assert!(cleared > written);
    assert!(
        !lines.iter().any(|(_, l)| l.contains(&format!("set_health {} sick", nested("*.web2")))),
        "web2 was drained"
    );
    // web1, already rolled, is put back on the previous release.
    assert!(lines.iter().any(|(o, l)| o == "web1" && l.contains(&format!("ln -sfn -- releases/{PREV}"))));
}

#[test]
fn a_held_lock_is_asked_of_the_host_not_read_from_mkdirs_words() {
    // mkdir speaks German here: the lock is still known to be held, because the host says
    // its folder exists.
    let t = Recording::new(|on, line| {
        (on == "web1" && line.contains("mkdir -- /srv/shop/.deploy/lock")).then(|| Output {
            status: Some(1),
            stdout: String::new(),
            stderr: "mkdir: das Verzeichnis »/srv/shop/.deploy/lock« kann nicht angelegt werden: Die Datei existiert bereits"
                .into(),
        })
    });
    let (r, _) = run(t.clone());
    assert!(matches!(&r, Err(RunError::Locked { holders }) if holders[0].host == "web1"), "{r:?}");
    assert!(t.lines().iter().any(|(o, l)| o == "web1" && l == "test -d /srv/shop/.deploy/lock"));
}

#[test]
fn a_lock_that_cannot_be_made_is_not_a_held_lock() {
    // The control: the same failure, but the lock folder is not there (a read-only disk):
    // exit 1 naming the host, not exit 3 naming a holder; tried again before giving up.
    let t = Recording::new(|on, line| {
        if on != "web1" {
            return None;
        }
        let refused = Output { status: Some(1), stdout: String::new(), stderr: "Read-only file system".into() };
        if line.contains("mkdir -- /srv/shop/.deploy/lock") || line.starts_with("test -d /srv/shop/.deploy/lock") {
            return Some(refused);
        }
        None
    });
    let (r, _) = run(t.clone());
    let err = r.expect_err("the deploy cannot go on");
    assert!(matches!(err, RunError::Failed { aftermath: Aftermath::LocksReleased, .. }), "{err:?}");
    assert_eq!(err.code(), 1);
    assert!(err.to_string().contains("could not lock web1"), "{err}");
    assert_eq!(count(&t.lines(), "mkdir -- /srv/shop/.deploy/lock"), 3, "tried three times");
    assert!(!t.lines().iter().any(|(o, _)| o == "web2"), "other hosts touched");
}

/// An artifact that arrives with another sha256 than was sent is never put in place (its
/// hidden folder is never renamed to a release): the deploy stops before any switch, says
/// which host got what, and removes the hidden folder.
#[test]
fn a_corrupted_upload_is_never_unpacked() {
    let t = Recording::new(|on, line| {
        (on == "web2" && line.contains("sha256sum")).then(|| Output {
            status: Some(0),
            stdout: format!("{}  file\n", "0".repeat(64)),
            stderr: String::new(),
        })
    });
    let (r, id) = run(t.clone());
    match &r {
        Err(RunError::Failed { cause, aftermath: Aftermath::NothingSwitched }) => {
            let failure = &cause.failures()[0];
            assert_eq!((failure.host.as_str(), &failure.kind), ("web2", &FailureKind::ChecksumMismatch), "{failure:?}");
        }
        other => panic!("{other:?}"),
    }
    let lines = t.lines();
    assert!(!lines.iter().any(|(o, l)| o == "web2" && l.contains("mv -T --")), "put in place: {lines:#?}");
    assert!(
        !lines.iter().any(|(_, l)| l.contains("ln -sfn -- releases/") || l.contains("set_health")),
        "switched or drained"
    );
    // What it left is removed on every host.
    for host in ["web1", "web2", "web3"] {
        assert!(
            lines.iter().any(|(o, l)| o == host
                && l.starts_with("rm -rf --")
                && l.contains(&format!("releases/.{id}.partial")))
        );
    }
}
