//! What a release may never do to another: a prepare hook that writes into the new release
//! (append, truncate, rewrite in place, chmod) leaves the live and older releases as they
//! were deployed, after a failed deploy and after a successful one. With `reuse = "hardlink"`
//! the same hook changes the live release, and the deploy says so and fails: the control.

use crate::farm::{Farm, Run};
use crate::farm_deploy::tree_listing;
use std::time::Duration;

/// Writes into four files the new release has unchanged from the live one.
const WRITER: &str = "printf x >> README.md; : > migrations/0001_create_carts.sql; \
    { cat templates/index.html; echo rewritten; } > ../rewrite.tmp && cat ../rewrite.tmp > templates/index.html; \
    rm -f ../rewrite.tmp; chmod -R g+w,o-r bin";

fn with_hook(f: &Farm, hook: &str, reuse: &str) {
    let toml = std::fs::read_to_string(f.config()).unwrap();
    let toml: String =
        toml.lines().filter(|line| !line.starts_with("reuse = ")).map(|line| format!("{line}\n")).collect();
    let start = toml.find("\n[hooks]\nprepare = [").unwrap() + "\n[hooks]\nprepare = [".len();
    let end = start + toml[start..].find("]\n").unwrap();
    let toml = format!("{}\"sh bin/console cache:warmup\", \"{hook}\"{}", &toml[..start], &toml[end..]);
    let toml = toml.replacen("\n[build]\n", &format!("\n[build]\nreuse = \"{reuse}\"\n"), 1);
    std::fs::write(f.config(), toml).unwrap();
}

#[test]
fn a_write_into_the_new_release_never_changes_the_live_one() {
    let f = Farm::start(2);
    let Run { code, stderr, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{stderr}");
    let live = release.unwrap();
    let listing = |host: &str, id: &str| tree_listing(&f.root(host).join("releases").join(id));
    let deployed: Vec<_> = ["web1", "web2"].iter().map(|h| listing(h, &live)).collect();
    assert!(deployed[0].iter().any(|l| l.starts_with("/README.md ")), "{:?}", deployed[0]);

    // A hook that writes into the shipped files, then fails: the deploy stops before any
    // switch; the live release is as deployed.
    with_hook(&f, &format!("{WRITER}; exit 1"), "copy");
    f.commit("second", &[("src/Second.php", Some("<?php // second\n"))]);
    std::thread::sleep(Duration::from_millis(1100));
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let sent = crate::farm::events(&run.events, "sent", None);
    assert!(sent.iter().all(|s| s["kind"] == "delta" && s["linked"].as_u64().unwrap() > 3), "a warm release: {sent:?}");
    for (index, host) in ["web1", "web2"].iter().enumerate() {
        assert_eq!(f.current(host).as_deref(), Some(live.as_str()));
        assert_eq!(listing(host, &live), deployed[index], "{host}: the live release changed under a failed deploy");
    }

    // The same hook, succeeding: the new release has the hook's writes; the previous one (the
    // rollback target) is still as deployed, byte for byte and mode for mode.
    with_hook(&f, WRITER, "copy");
    std::thread::sleep(Duration::from_millis(1100));
    let Run { code, stderr, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{stderr}");
    let second = release.unwrap();
    for (index, host) in ["web1", "web2"].iter().enumerate() {
        assert_eq!(f.current(host).as_deref(), Some(second.as_str()));
        assert_eq!(listing(host, &live), deployed[index], "{host}: the rollback release changed");
        let readme = std::fs::read_to_string(f.root(host).join("releases").join(&second).join("README.md")).unwrap();
        assert!(readme.ends_with('x'), "the hook did write into the new release");
    }

    // The control: hard links share the files, so a hook like it changes the live release.
    // (Files the last hook wrote are not trusted any more and are sent again: this one writes
    // into two the live release still has as deployed.) The deploy sees it after the prepare
    // hooks, fails before any switch, and names the files.
    with_hook(&f, "printf x >> src/Second.php; chmod g+w public/health.txt", "hardlink");
    let before: Vec<_> = ["web1", "web2"].iter().map(|h| listing(h, &second)).collect();
    f.commit("third", &[("src/Third.php", Some("<?php // third\n"))]);
    std::thread::sleep(Duration::from_millis(1100));
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let failed: String = crate::farm::events(&run.events, "failed", None).iter().map(|e| e.to_string()).collect();
    assert!(failed.contains("reuse = \\\"hardlink\\\": a prepare hook wrote into files"), "{failed}");
    assert!(failed.contains("src/Second.php"), "the files are named: {failed}");
    for (index, host) in ["web1", "web2"].iter().enumerate() {
        assert_eq!(f.current(host).as_deref(), Some(second.as_str()), "{host}: nothing switched");
        assert_ne!(listing(host, &second), before[index], "{host}: with hard links the live release changed");
    }
}

/// Symlinks committed in the repository are never written through: one out of the release is
/// refused when packing (exit 2, naming it), as is one above a shared path; nothing changes on
/// any host. One inside the release named `REVISION` is replaced, not written through.
#[test]
fn symlinks_in_the_repository_are_never_written_through() {
    let f = Farm::start(2);
    let Run { code, stderr, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{stderr}");
    let live = release.unwrap();
    // A file beside the releases that a link could reach.
    let victim = |host: &str| f.root(host).join("shared/victim.txt");
    for host in ["web1", "web2"] {
        std::fs::write(victim(host), "untouched\n").unwrap();
    }
    let repo = f.repo();
    let unchanged = |what: &str| {
        for host in ["web1", "web2"] {
            assert_eq!(f.current(host).as_deref(), Some(live.as_str()), "{what}: {host} was switched");
            assert_eq!(f.releases(host).len(), 1, "{what}: a release was left on {host}");
            assert_eq!(std::fs::read_to_string(victim(host)).unwrap(), "untouched\n", "{what}: written through");
        }
        assert!(f.no_locks(), "{what}: a lock was left");
    };

    // `REVISION -> ../shared/victim.txt` (from the release folder: out of the release).
    std::os::unix::fs::symlink("../../shared/victim.txt", repo.join("REVISION")).unwrap();
    f.commit("a link out", &[]);
    let o = f.deploy(&["farm"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`REVISION` is a symlink to `../../shared/victim.txt`"), "{err}");
    unchanged("a link out of the release");
    std::fs::remove_file(repo.join("REVISION")).unwrap();

    // `var -> store`: inside the release, but the shared dir `var/log` is below it, and linking
    // it would `rm -rf` store/log.
    std::fs::rename(repo.join("var"), repo.join("store")).ok();
    std::fs::create_dir_all(repo.join("store/log")).unwrap();
    std::fs::write(repo.join("store/log/keep.txt"), "kept\n").unwrap();
    std::os::unix::fs::symlink("store", repo.join("var")).unwrap();
    f.commit("a link above a shared path", &[]);
    let o = f.deploy(&["farm"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("`var` is a symlink, and the shared path `var/log` is below it"), "{err}");
    unchanged("a link above a shared path");
    std::fs::remove_file(repo.join("var")).unwrap();
    std::fs::remove_dir_all(repo.join("store")).unwrap();

    // `REVISION -> public/rev.txt`, inside the release: allowed; deploy's REVISION replaces
    // the link, and the file it pointed to keeps its content.
    std::fs::write(repo.join("public/rev.txt"), "mine\n").unwrap();
    std::os::unix::fs::symlink("public/rev.txt", repo.join("REVISION")).unwrap();
    let commit = f.commit("a link inside", &[]);
    let Run { code, stderr, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{stderr}");
    let new = f.root("web1").join("releases").join(release.unwrap());
    assert_eq!(std::fs::read_to_string(new.join("public/rev.txt")).unwrap(), "mine\n");
    let revision = std::fs::symlink_metadata(new.join("REVISION")).unwrap();
    assert!(revision.is_file(), "REVISION is a file of its own");
    assert_eq!(std::fs::read_to_string(new.join("REVISION")).unwrap(), format!("{commit}\n"));
}

/// Ban expressions reach Varnish as written: quotes, backslashes and blanks inside quotes
/// survive varnishadm and the manager process (`ban.list` shows what arrived); a newline is
/// refused before anything runs.
#[test]
fn ban_expressions_reach_varnish_as_written() {
    let f = Farm::start(1);
    let bans = [
        // (as written in Deploy.toml, as ban.list shows it)
        (r#"req.url ~ "\.html$""#, r"req.url ~ \.html$"),
        (r#"obj.http.x-tag ~ "say \"hi\" now""#, r#"obj.http.x-tag ~ say\x20"hi"\x20now"#),
        (r#"obj.http.x-path == "C:\\shop""#, r"obj.http.x-path == C:\shop"),
        (r#"req.url ~ "^/a b" && obj.status != 0"#, r"req.url ~ ^/a\x20b && obj.status != 0"),
    ];
    let toml = std::fs::read_to_string(f.config()).unwrap();
    let list: Vec<String> = bans.iter().map(|(written, _)| format!("'{written}'")).collect();
    let with = toml.replacen("bans = [\"req.url ~ .\"]", &format!("bans = [{}]", list.join(", ")), 1);
    assert_ne!(with, toml);
    assert_eq!(f.deploy_json(&["farm"]).code, 0);
    std::fs::write(f.config(), &with).unwrap();
    // An object in the cache keeps every newer ban listed (Varnish drops unreferenced bans).
    for _ in 0..2 {
        assert_eq!(crate::farm::http::get(&format!("{}/", f.varnish_url())).status, 200);
    }
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let warnings = crate::farm::events(&run.events, "warning", None);
    assert!(warnings.is_empty(), "every ban was accepted: {warnings:?}");
    let listed = f.varnishadm(&["ban.list"]);
    for (written, shown) in bans {
        assert!(listed.lines().any(|l| l.ends_with(&format!("  {shown}"))), "{written} arrived otherwise:\n{listed}");
    }

    // A newline inside quotes would be a second CLI command: refused, exit 2, nothing run.
    let evil = with.replacen("bans = [", "bans = [\"req.url ~ \\\"a\\nban req.url ~ .\\\"\", ", 1);
    std::fs::write(f.config(), evil).unwrap();
    let o = f.deploy(&["farm"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("control character"), "{err}");
}

/// The lock belongs to a live owner: the deploy holding it renews a lease, and `deploy
/// unlock` run from another machine (here: the holder's owner.json names another machine, so
/// the pid check cannot see it) refuses with exit 3 while the lease is fresh. `--force`
/// removes it; the first deploy then leaves alone the lock another deploy took since.
#[test]
fn unlock_refuses_a_live_lease_from_any_machine() {
    let f = Farm::start(2);
    f.commit("slow on web1", &[("config/slow-activate-on", Some("web1\n"))]);
    let lock = |host: &str| f.root(host).join(".deploy/lock");
    let mtime = |path: &std::path::Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut checked = false;
    let run = f.deploy_watch(&["farm"], |e, _| {
        if checked || e["event"] != "host_switched" || e["host"] != "web1" {
            return;
        }
        checked = true;
        // web1's activate hook now sleeps 30 s. The lease is renewed meanwhile.
        let first = mtime(&lock("web1").join("lease")).expect("a lease");
        std::thread::sleep(lock_refresh() + Duration::from_secs(1));
        assert!(mtime(&lock("web1").join("lease")).unwrap() > first, "the lease was renewed");
        // As if the deploy ran on a laptop and unlock on a CI runner.
        for host in ["web1", "web2"] {
            let owner = lock(host).join("owner.json");
            let text = std::fs::read_to_string(&owner).unwrap();
            let machine =
                serde_json::from_str::<serde_json::Value>(&text).unwrap()["machine"].as_str().unwrap().to_string();
            std::fs::write(&owner, text.replace(&format!("\"{machine}\""), "\"a-laptop\"")).unwrap();
        }
        let o = f.deploy(&["unlock", "farm"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{err}");
        assert!(err.contains("still running") && err.contains("lease was renewed"), "{err}");
        assert!(lock("web1").exists() && lock("web2").exists(), "the lock is kept");

        // --force removes it, saying what it risks; then another deploy takes web1's lock.
        let o = f.deploy(&["unlock", "farm", "--force", "--output", "plain"]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{err}");
        assert!(err.contains("--force: the deploy holding this lock is alive"), "{err}");
        assert!(!lock("web1").exists());
        std::fs::create_dir(lock("web1")).unwrap();
        std::fs::write(lock("web1").join("token"), "another-deploy\n").unwrap();
    });
    assert!(checked, "web1 was switched: {}", run.stderr);
    // The first deploy went on; at its end it left the other deploy's lock where it was.
    assert!(lock("web1").exists(), "the other deploy's lock was removed");
    assert_eq!(std::fs::read_to_string(lock("web1").join("token")).unwrap(), "another-deploy\n");
    let warnings: Vec<String> =
        crate::farm::events(&run.events, "warning", Some("web1")).iter().map(|w| w.to_string()).collect();
    assert!(warnings.iter().any(|w| w.contains("not this deploy's any more")), "{warnings:?}");
}

fn lock_refresh() -> Duration {
    deploy::remote::lock::LEASE_REFRESH
}

/// A failed upload leaves nothing in `.deploy/incoming` and no hidden half-received
/// release, a failed unpack no release folder, on any host. (`chattr +i` makes a folder refuse new files, even to root.)
#[test]
fn failures_leave_nothing_behind() {
    let f = Farm::start(2);
    let Run { code, stderr, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{stderr}");
    let live = release.unwrap();
    let clean = |what: &str| {
        for host in ["web1", "web2"] {
            assert_eq!(f.releases(host), std::slice::from_ref(&live), "{what}: a release folder was left on {host}");
            let incoming: Vec<_> = std::fs::read_dir(f.root(host).join(".deploy/incoming"))
                .map(|dir| dir.filter_map(Result::ok).map(|entry| entry.file_name()).collect())
                .unwrap_or_default();
            assert!(incoming.is_empty(), "{what}: {host} kept {incoming:?}");
            let hidden: Vec<_> = std::fs::read_dir(f.root(host).join("releases"))
                .unwrap()
                .filter_map(Result::ok)
                .map(|entry| entry.file_name())
                .filter(|name| name.to_string_lossy().starts_with('.'))
                .collect();
            assert!(hidden.is_empty(), "{what}: {host} kept {hidden:?}");
            assert_eq!(f.current(host).as_deref(), Some(live.as_str()));
        }
        assert!(f.no_locks(), "{what}");
    };

    // web2 cannot store the upload: web1 received and unpacked it, web2 failed.
    std::fs::create_dir_all(f.root("web2").join(".deploy/incoming")).unwrap();
    let guard = crate::farm::Immutable::set(f.root("web2").join(".deploy/incoming"));
    f.commit("second", &[("src/Second.php", Some("<?php\n"))]);
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    drop(guard);
    clean("a failed upload");

    // web2 unpacks, but cannot keep the release's manifest: the unpack fails half-way.
    let guard = crate::farm::Immutable::set(f.root("web2").join(".deploy/manifests"));
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!crate::farm::events(&run.events, "failed", Some("web2")).is_empty(), "{:?}", run.events);
    drop(guard);
    clean("a failed unpack");

    // What a killed deploy left while its release arrived goes with the next success.
    let stale = f.root("web1").join("releases/.20200101T000000Z-0000000.partial");
    std::fs::create_dir_all(stale.join("public")).unwrap();
    let run = f.deploy_json(&["farm"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(!stale.exists(), "a stale hidden release was kept");
}
