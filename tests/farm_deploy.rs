//! End to end, on a local farm of real sshd hosts behind real Varnish and HAProxy: the
//! rolling release of the example shop, with the real binary.

use crate::farm::http::{get, get_with};
use crate::farm::load::Load;
use crate::farm::{self, Farm, Run, epoch, events};
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

/// A digest of a release folder as shipped (see `tree_listing`).
fn tree_digest(dir: &Path) -> String {
    deploy::artifact::hex(&Sha256::digest(tree_listing(dir).join("\n").as_bytes())[..8])
}

fn release_header(url: &str) -> String {
    let r = get(url);
    assert_eq!(r.status, 200, "GET {url}: {}", r.body);
    r.header("X-Release").unwrap_or("").to_string()
}

/// Every app host serves `release` directly, its page (through the per-host cache) shows it,
/// and no lock or journal is left.
fn assert_all_on(f: &Farm, release: &str) {
    for (h, addr) in &f.hosts {
        assert_eq!(f.current(h).as_deref(), Some(release), "{h}: current");
        let commit = std::fs::read_to_string(f.root(h).join("releases").join(release).join("REVISION")).unwrap();
        let page = get(&format!("http://{addr}:8080/"));
        assert!(page.body.contains(commit.trim()), "{h} serves a stale page: {}", page.body);
        assert_eq!(page.header("X-Host"), Some(h.as_str()));
        assert!(release_header(&format!("http://{addr}:8080/cart")).contains(release), "{h}: X-Release");
        let warm =
            std::fs::read_to_string(f.root(h).join("releases").join(release).join("var/cache/warmup.txt")).unwrap();
        assert_eq!(warm.trim(), format!("warmed on {h} for {release}"), "{h}: prepare hook");
        assert!(!f.root(h).join(".deploy/lock").exists(), "{h}: lock left behind");
        assert!(!f.root(h).join(".deploy/journal.json").exists(), "{h}: journal left behind");
    }
}

#[test]
fn rolling_release_behind_varnish() {
    let f = Farm::start(4);
    // Cache the home page in Varnish before the deploy: the ban must drop it.
    let Run { code, events: ev, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let first = release.expect("a release");
    let cached = get(&format!("{}/", f.varnish_url()));
    assert!(cached.body.contains(&first[17..]), "{}", cached.body);
    assert_eq!(get(&format!("{}/", f.varnish_url())).header("X-Cache"), Some("HIT"));

    // Three more releases (keep_releases = 3), each a new commit.
    let mut last = first.clone();
    let mut last_events = ev;
    for n in 2..=4 {
        f.commit(&format!("release {n}"), &[("templates/index.html", Some(&format!("<p>v{n} commit @COMMIT@</p>\n")))]);
        let Run { code, events: ev, stderr: err, release } = f.deploy_json(&["farm"]);
        assert_eq!(code, 0, "deploy {n}: {err}");
        last = release.expect("a release");
        last_events = ev;
    }
    assert_all_on(&f, &last);
    let ev = &last_events;

    // The same artifact everywhere: verified checksum on every host, identical trees.
    let sha = events(ev, "built", None)[0]["sha256"].as_str().unwrap().to_string();
    assert_eq!(sha.len(), 64);
    for (h, _) in &f.hosts {
        assert_eq!(events(ev, "host_received", Some(h)).len(), 1, "{h} received the artifact once");
    }
    let digests: Vec<String> =
        f.hosts.iter().map(|(h, _)| tree_digest(&f.root(h).join("releases").join(&last))).collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "release trees differ: {digests:?}");
    let revision = std::fs::read_to_string(f.root("web1").join("releases").join(&last).join("REVISION")).unwrap();
    assert_eq!(revision.trim(), farm::git(&f.repo(), &["rev-parse", "HEAD"]));

    // Migrations: one run per deploy, on web1 only; each migration applied once.
    let runs = std::fs::read_to_string(f.dir.join("db/migrate-runs.log")).unwrap();
    assert_eq!(runs.lines().count(), 4, "{runs}");
    assert!(runs.lines().all(|l| l.split_whitespace().nth(1) == Some("web1")), "{runs}");
    assert_eq!(std::fs::read_to_string(f.dir.join("db/applied")).unwrap(), "0001_create_carts.sql\n");
    assert_eq!(events(ev, "migrated", None).len(), 1);

    // Each host's cache was cleared while it was out of rotation (drained → undrained).
    for (h, _) in &f.hosts {
        let drained = epoch(events(ev, "host_drained", Some(h))[0]["ts"].as_str().unwrap());
        let undrained = epoch(events(ev, "host_undrained", Some(h))[0]["ts"].as_str().unwrap());
        let log = std::fs::read_to_string(f.root(h).join("shared/var/log/cache-clear.log")).unwrap();
        let cleared: f64 = log.lines().last().unwrap().split_whitespace().next().unwrap().parse().unwrap();
        assert!(
            drained - 0.01 <= cleared && cleared <= undrained + 0.01,
            "{h}: cleared at {cleared}, drained {drained}..{undrained}"
        );
    }
    // Host by host: each drained only after the previous one was back in service.
    let mut prev_back = 0.0;
    for (h, _) in &f.hosts {
        let drained = epoch(events(ev, "host_drained", Some(h))[0]["ts"].as_str().unwrap());
        assert!(drained >= prev_back, "{h} drained before the previous host was back");
        prev_back = epoch(events(ev, "host_in_service", Some(h))[0]["ts"].as_str().unwrap());
    }

    // The ban reached Varnish: the page cached before is gone, the new one is served.
    let after = get(&format!("{}/", f.varnish_url()));
    assert_eq!(after.header("X-Cache"), Some("MISS"), "the ban should have emptied the cache");
    assert!(after.body.contains(&last[17..]), "{}", after.body);
    assert!(f.varnishadm(&["ban.list"]).contains("req.url ~ ."));
    assert_eq!(events(ev, "cache_banned", None).len(), 1);

    // keep_releases = 3: the first release is gone everywhere, the last three remain.
    for (h, _) in &f.hosts {
        let rel = f.releases(h);
        assert_eq!(rel.len(), 3, "{h}: {rel:?}");
        assert!(!rel.contains(&first), "{h} still has {first}");
    }
    assert!(f.all_in_varnish(), "{}", f.varnishadm(&["backend.list"]));
    assert_eq!(ev.last().unwrap()["event"], "finished");
    assert_eq!(ev.last().unwrap()["exit_code"], 0);
}

#[test]
fn rolling_release_behind_haproxy() {
    let f = Farm::start(4);
    let Run { code, stderr: err, release, .. } = f.deploy_json(&["farm-haproxy"]);
    assert_eq!(code, 0, "{err}");
    let first = release.expect("a release");
    assert_all_on(&f, &first);
    f.commit("second", &[("templates/index.html", Some("<p>second @COMMIT@</p>\n"))]);
    let Run { code, events: ev, stderr: err, release } = f.deploy_json(&["farm-haproxy"]);
    assert_eq!(code, 0, "{err}");
    let second = release.expect("a release");
    assert_all_on(&f, &second);
    // Every server drained and made ready again through the runtime API.
    for (h, _) in &f.hosts {
        for e in ["host_drained", "host_idle", "host_switched", "host_healthy", "host_undrained", "host_in_service"] {
            assert_eq!(events(&ev, e, Some(h)).len(), 1, "{h}: {e}");
        }
    }
    let stat = f.haproxy("show stat");
    for (h, _) in &f.hosts {
        let row = stat.lines().find(|l| l.starts_with(&format!("app,{h},"))).unwrap();
        assert!(row.contains(",UP,"), "{h} not UP: {row}");
    }
    // `deploy releases` reads the release logs: both releases, the new one current everywhere.
    let o = f.deploy(&["releases", "farm-haproxy"]);
    let table = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{table}");
    let row = |id: &str| {
        table.lines().find(|l| l.starts_with(id)).unwrap_or_else(|| panic!("{id} missing:\n{table}")).to_string()
    };
    assert_eq!(row(&second).matches("* current").count(), 4, "{table}");
    assert_eq!(row(&first).matches('+').count(), 4, "{table}");
    assert!(row(&second).contains("tester@"), "who deployed: {table}");
    let o = f.deploy(&["releases", "farm-haproxy", "--output", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["agree"], true);
    assert!(v["hosts"].as_array().unwrap().iter().all(|h| h["current"] == second.as_str()));
    // The HTTP BAN reached Varnish.
    assert!(f.varnishadm(&["ban.list"]).contains("obj.status != 0"));
    let r = get(&format!("{}/", f.haproxy_url()));
    assert!(r.body.contains(&second[17..]), "{}", r.body);
}

/// Deploy while clients keep shopping; returns the load report.
fn deploy_under_load(f: &Farm, stage: &str, url_addr: &str) -> (farm::load::Report, i32, String) {
    let n = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    f.commit(&format!("next {n}"), &[("templates/index.html", Some(&format!("<p>next {n} @COMMIT@</p>\n")))]);
    let load = Load::start(url_addr, "/cart", 6, Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(300));
    let o = f.deploy(&[stage, "--output", "plain"]);
    std::thread::sleep(Duration::from_millis(300));
    let report = load.stop();
    eprintln!(
        "load during `deploy {stage}`: {} ok, {} bad status, {} connection errors, slowest {:?}, releases seen {}; {:?}",
        report.ok,
        report.bad_status,
        report.conn_errors,
        report.max_latency,
        report.releases.len(),
        report.samples
    );
    (report, o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// HAProxy's `timeout connect` on the farm: a request that was retried took at least this.
const HAPROXY_RETRY: Duration = Duration::from_secs(1);

/// The sum of HAProxy's retries, redispatches, connection and response errors over the app
/// servers (`show stat`: wretr, wredis, econ, eresp).
fn haproxy_trouble(f: &Farm) -> u64 {
    let stat = f.haproxy("show stat");
    let mut lines = stat.lines();
    let header: Vec<&str> = lines.next().unwrap().trim_start_matches("# ").split(',').collect();
    let column = |name: &str| header.iter().position(|c| *c == name).unwrap();
    let wanted = [column("wretr"), column("wredis"), column("econ"), column("eresp")];
    lines
        .map(|line| line.split(',').collect::<Vec<&str>>())
        .filter(|fields| fields[0] == "app" && fields[1] != "BACKEND")
        .flat_map(|fields| wanted.map(|at| fields.get(at).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)))
        .sum()
}

#[test]
fn zero_failed_requests_under_load_and_errors_without_draining() {
    let f = Farm::start(4);
    let Run { code, stderr: err, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let varnish = f.varnish_url().trim_start_matches("http://").to_string();

    // Through Varnish, drained host by host: not one failed request.
    let (r, code, err) = deploy_under_load(&f, "farm", &varnish);
    assert_eq!(code, 0, "{err}");
    assert!(r.ok > 200, "too little load to mean anything: {r:?}");
    assert_eq!((r.bad_status, r.conn_errors), (0, 0), "failed requests during a drained deploy: {r:?}");
    assert!(r.releases.len() >= 2, "the load saw the old and the new release: {:?}", r.releases);

    // Through HAProxy as well. HAProxy retries and redispatches a request whose server is
    // gone, so a deploy that never drained could still answer every request, only slower:
    // its own counters of retries, redispatches and server errors must not move, no request
    // may take as long as a retry, and both releases must have been served.
    let haproxy = f.haproxy_url().trim_start_matches("http://").to_string();
    let before = haproxy_trouble(&f);
    let (r, code, err) = deploy_under_load(&f, "farm-haproxy", &haproxy);
    assert_eq!(code, 0, "{err}");
    assert!(r.ok > 200, "{r:?}");
    assert_eq!((r.bad_status, r.conn_errors), (0, 0), "failed requests behind HAProxy: {r:?}");
    assert_eq!(haproxy_trouble(&f), before, "HAProxy retried or redispatched during a drained deploy");
    assert!(r.max_latency < HAPROXY_RETRY, "a request waited as long as a retry: {r:?}");
    assert!(r.releases.len() >= 2, "the load saw the old and the new release: {:?}", r.releases);

    // The control behind HAProxy: the same deploy without draining moves those counters (or
    // fails requests).
    let hosts = f.hosts_toml();
    f.add_config(&format!("\n[stages.haproxy-nodrain]\n{hosts}\n"));
    let before = haproxy_trouble(&f);
    let (r, code, err) = deploy_under_load(&f, "haproxy-nodrain", &haproxy);
    assert_eq!(code, 0, "{err}");
    assert!(
        haproxy_trouble(&f) > before || r.bad_status + r.conn_errors > 0 || r.max_latency >= HAPROXY_RETRY,
        "switching without draining went unseen behind HAProxy: {r:?}"
    );

    // The same harness catches a deploy that switches without draining: the app server's
    // reload (the activate hook) then drops requests that Varnish still sends it.
    let hosts = f.hosts_toml();
    f.add_config(&format!(
        "\n[stages.farm-nodrain]\n{hosts}\n[[stages.farm-nodrain.http_cache]]\nkind = \"http\"\nurl = \"{}/\"\n",
        f.varnish_url()
    ));
    let (r, code, err) = deploy_under_load(&f, "farm-nodrain", &varnish);
    assert_eq!(code, 0, "{err}");
    assert!(r.bad_status + r.conn_errors > 0, "switching without draining should fail requests: {r:?}");
}

#[test]
fn same_commit_reuses_the_artifact_then_a_new_commit_builds() {
    let f = Farm::start(2);
    let Run { code, events: ev1, stderr: err, release: first } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(events(&ev1, "built", None)[0]["reused"], false);
    std::thread::sleep(Duration::from_millis(1100)); // release ids have one-second resolution
    let Run { code, events: ev2, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let b2 = events(&ev2, "built", None)[0];
    assert_eq!(b2["reused"], true, "same commit, same build: {b2}");
    assert_eq!(b2["sha256"], events(&ev1, "built", None)[0]["sha256"]);
    let second = release.expect("a release");
    assert_ne!(second, first.expect("a release"));
    assert_all_on(&f, &second);

    let commit = f.commit("new page", &[("templates/index.html", Some("<p>brand new @COMMIT@</p>\n"))]);
    let Run { code, events: ev3, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let b3 = events(&ev3, "built", None)[0];
    assert_eq!(b3["reused"], false);
    assert_ne!(b3["sha256"], b2["sha256"]);
    let third = release.expect("a release");
    assert!(third.ends_with(&commit[..7]));
    assert_all_on(&f, &third);
    assert!(get(&format!("http://{}:8080/", f.hosts[0].1)).body.contains("brand new"));
}

#[test]
fn failed_migration_stops_before_any_switch() {
    let f = Farm::start(3);
    let Run { code, stderr: err, release, .. } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let good = release.expect("a release");
    f.commit("bad migration", &[("migrations/0002_broken.sql", Some("ALTER TABLE carts FAIL;\n"))]);
    let Run { code, events: ev, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("migrate on web1 failed"), "{err}");
    let failed = events(&ev, "failed", Some("web1"));
    assert!(failed[0]["output"].as_str().unwrap().contains("migration 0002_broken.sql failed"), "{failed:?}");
    let bad = release.expect("a release");
    for (h, _) in &f.hosts {
        assert_eq!(f.current(h).as_deref(), Some(good.as_str()), "{h} switched");
        assert!(!f.releases(h).contains(&bad), "{h} keeps the unused release");
    }
    assert!(events(&ev, "host_drained", None).is_empty() && events(&ev, "host_switched", None).is_empty());
    assert_all_on(&f, &good);
    assert!(f.all_in_varnish());
    let r = get_with(&format!("{}/cart", f.varnish_url()), &[("Cookie", "cart=1")]);
    assert!(r.header("X-Release").unwrap().contains(&good));
}

/// Every path of a release with its type, mode, content and link target, but not
/// `var/cache` (filled per host by the prepare hook).
pub fn tree_listing(dir: &Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &Path, rel: &str, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().filter_map(Result::ok).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = format!("{rel}/{}", e.file_name().to_string_lossy());
            if name == "/var/cache" {
                continue;
            }
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let mode = meta.permissions().mode() & 0o7777;
            if meta.file_type().is_symlink() {
                out.push(format!("{name} -> {}", std::fs::read_link(e.path()).unwrap().display()));
            } else if meta.is_dir() {
                out.push(format!("{name}/ {mode:o}"));
                walk(&e.path(), &name, out);
            } else {
                let sum = deploy::artifact::hex(&Sha256::digest(std::fs::read(e.path()).unwrap()));
                out.push(format!("{name} {mode:o} {sum}"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out
}

fn inode(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().ino()
}

#[test]
fn warm_release_is_identical_to_a_full_unpack() {
    let f = Farm::start(2);
    let removed = "config/routes.yaml";
    f.commit(
        "app files",
        &[
            ("src/Kernel.php", Some("<?php // kernel\n")),
            ("src/Stable.php", Some("<?php // stable\n")),
            (removed, Some("home: /\n")),
        ],
    );
    let Run { code, events: ev1, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let first = release.expect("a release");
    for s in events(&ev1, "sent", None) {
        assert_eq!(s["kind"], "full", "nothing to start from on a first deploy: {s}");
        assert_eq!(s["linked"], 0);
    }
    let web1 = f.root("web1");
    let before = tree_listing(&web1.join("releases").join(&first));

    // A commit that changes, adds, removes, and only re-modes files, and adds a symlink.
    let repo = f.repo();
    std::os::unix::fs::symlink("index.html", repo.join("templates/home.html")).unwrap();
    std::fs::set_permissions(repo.join("templates/index.html"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let commit = f.commit(
        "warm",
        &[("src/Kernel.php", Some("<?php // changed\n")), ("src/New.php", Some("<?php // new\n")), (removed, None)],
    );
    std::thread::sleep(Duration::from_millis(1100));
    let Run { code, events: ev2, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let warm = release.expect("a release");
    assert!(warm.ends_with(&commit[..7]));
    assert_all_on(&f, &warm);
    let sent = events(&ev2, "sent", None);
    assert_eq!(sent.len(), 2);
    for s in &sent {
        assert_eq!(s["kind"], "delta", "{s}");
        assert!(s["linked"].as_u64().unwrap() > 5, "unchanged files are linked: {s}");
        // Kernel.php, New.php, index.html (mode), the build's outputs that embed the commit.
        assert!(s["files"].as_u64().unwrap() <= 16, "only what changed is sent: {s}");
    }
    let warm_dir = web1.join("releases").join(&warm);
    assert!(!warm_dir.join(".git").exists(), "the bookkeeping is not left in the release");
    assert!(web1.join(".deploy/manifests").join(&warm).is_file(), "the manifest is kept outside the release");
    assert!(!warm_dir.join(removed).exists(), "a removed file is gone");
    // Taken from the live release as a copy of its own (`reuse = "copy"`, the default): same
    // bytes and mode, another inode, so nothing written into it can reach the live release.
    let (new_stable, old_stable) =
        (warm_dir.join("src/Stable.php"), web1.join("releases").join(&first).join("src/Stable.php"));
    assert_ne!(inode(&new_stable), inode(&old_stable), "an unchanged file is a copy, not a link");
    assert_eq!(std::fs::read(&new_stable).unwrap(), std::fs::read(&old_stable).unwrap());
    assert_ne!(
        inode(&warm_dir.join("src/Kernel.php")),
        inode(&web1.join("releases").join(&first).join("src/Kernel.php"))
    );
    assert_eq!(tree_listing(&web1.join("releases").join(&first)), before, "the previous release is untouched");

    // A file of web2's current release edited in place (and so also the first release's,
    // which shares it): web2 is sent that file too, instead of linking it.
    let stable = f.root("web2").join("releases").join(&warm).join("src/Stable.php");
    std::fs::write(&stable, "<?php // hot fix on the server\n").unwrap();
    f.commit("again", &[("src/Kernel.php", Some("<?php // changed again\n"))]);
    std::thread::sleep(Duration::from_millis(1100));
    let Run { code, events: ev, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let third = release.expect("a release");
    assert_all_on(&f, &third);
    let (s1, s2) = (events(&ev, "sent", Some("web1"))[0], events(&ev, "sent", Some("web2"))[0]);
    assert_eq!((&s1["kind"], &s2["kind"]), (&"delta".into(), &"delta".into()));
    assert_eq!(s2["files"].as_u64().unwrap(), s1["files"].as_u64().unwrap() + 1, "web1 {s1}, web2 {s2}");
    let fixed = f.root("web2").join("releases").join(&third).join("src/Stable.php");
    assert_eq!(std::fs::read_to_string(fixed).unwrap(), "<?php // stable\n");

    // The same commit again, with delta off: a full unpack. Both releases hold the same files.
    let toml = std::fs::read_to_string(f.config()).unwrap();
    assert!(toml.contains("\n[build]\n"));
    std::fs::write(f.config(), toml.replace("\n[build]\n", "\n[build]\ndelta = false\n")).unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let Run { code, events: ev3, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let full = release.expect("a release");
    for s in events(&ev3, "sent", None) {
        assert_eq!(s["kind"], "full", "{s}");
    }
    for h in ["web1", "web2"] {
        let r = f.root(h).join("releases");
        let (a, b) = (tree_listing(&r.join(&third)), tree_listing(&r.join(&full)));
        assert!(a.len() > 20, "{a:?}");
        assert_eq!(a, b, "{h}: the warm release differs from a full unpack");
    }

    // Delta on again; on web2 a trusted file cannot be hard-linked (immutable: link(2) says
    // EPERM, and its listing is unchanged). web2's unpack fails its link check, and web2 gets
    // the whole release instead; web1 still gets a delta.
    // Only hard links need write access to the source (a copy reads it): `reuse = "hardlink"`.
    std::fs::write(f.config(), toml.replacen("\n[build]\n", "\n[build]\nreuse = \"hardlink\"\n", 1)).unwrap();
    let pinned = f.root("web2").join("releases").join(&full).join("bin/console");
    let _guard = farm::Immutable::set(pinned);
    f.commit("once more", &[("src/Kernel.php", Some("<?php // and again\n"))]);
    std::thread::sleep(Duration::from_millis(1100));
    let Run { code, events: ev, stderr: err, release } = f.deploy_json(&["farm"]);
    assert_eq!(code, 0, "{err}");
    let last = release.expect("a release");
    assert_all_on(&f, &last);
    let warning = events(&ev, "warning", Some("web2"));
    assert!(
        warning.iter().any(|w| w["message"].as_str().unwrap().starts_with("warm release: hard-linking")),
        "{warning:?}"
    );
    assert_eq!(events(&ev, "sent", Some("web1"))[0]["kind"], "delta");
    let web2: Vec<_> = events(&ev, "sent", Some("web2")).iter().map(|s| s["kind"].clone()).collect();
    assert_eq!(web2, ["delta", "full"], "web2 got a delta, then the whole release");
    // The whole release is the same tree as the last one, but for what the commit changed.
    let r = f.root("web2").join("releases");
    // (The build writes the commit into some files: for those, path and mode.)
    let built = ["/src/Kernel.php ", "/REVISION ", "/vendor/", "/public/cart.json ", "/public/index.html "];
    let shape = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .map(|l| if built.iter().any(|b| l.starts_with(b)) { l.rsplit_once(' ').unwrap().0.to_string() } else { l })
            .collect()
    };
    let (a, b) = (tree_listing(&r.join(&last)), tree_listing(&r.join(&full)));
    assert_eq!(shape(a.clone()), shape(b));
    assert!(a.len() > 20 && a.iter().any(|l| l.starts_with("/src/Kernel.php ")), "{a:?}");
}
