//! Before anything changes: host keys checked strictly, authentication, unreachable hosts,
//! a dirty working copy. Each must stop the deploy with nothing changed on any host.

use crate::farm::Farm;
use std::process::Command;

/// Adds a stage `NAME` to the farm's config whose ssh config is the farm's, edited by `edit`.
fn stage_with_ssh_config(f: &Farm, name: &str, edit: impl Fn(String) -> String) {
    let text = std::fs::read_to_string(f.dir.join("ssh_config")).unwrap();
    let path = f.dir.join(format!("ssh_config_{name}"));
    std::fs::write(&path, edit(text)).unwrap();
    f.add_config(&format!(
        "\n[stages.{name}]\n{}\n[stages.{name}.balancer]\nkind = \"varnish\"\nhost = \"lb\"\nadmin = \"{}:6082\"\nsecret = \"{}\"\n\n[stages.{name}.ssh]\nconfig = \"{}\"\n",
        f.hosts_toml(),
        f.lb,
        f.dir.join("varnish-secret").display(),
        path.display()
    ));
}

/// Nothing was changed: no lock, no release, no journal on any app host.
fn untouched(f: &Farm) {
    for (h, _) in &f.hosts {
        let root = f.root(h);
        assert!(!root.join(".deploy/lock").exists(), "{h}: lock");
        assert!(f.releases(h).is_empty(), "{h}: releases {:?}", f.releases(h));
        assert!(f.current(h).is_none(), "{h}: current");
    }
}

fn run(f: &Farm, stage: &str) -> (i32, String) {
    let o = f.deploy(&[stage, "--output", "plain"]);
    (o.status.code().unwrap_or(-1), String::from_utf8_lossy(&o.stderr).into_owned())
}

#[test]
fn unknown_changed_key_bad_auth_and_unreachable_change_nothing() {
    let f = Farm::start(2);
    let known = f.dir.join("known_hosts").display().to_string();

    // Unknown host keys: an empty known_hosts.
    std::fs::write(f.dir.join("empty_known_hosts"), "").unwrap();
    stage_with_ssh_config(&f, "unknown-key", |t| {
        t.replace(&known, &f.dir.join("empty_known_hosts").display().to_string())
    });
    let (code, err) = run(&f, "unknown-key");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("unknown or changed host key for web1") && err.contains("Host key verification failed"),
        "{err}"
    );
    untouched(&f);

    // A changed host key: web2's entry replaced by another key.
    let other = f.dir.join("other_host_key");
    let o = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&other).output().unwrap();
    assert!(o.status.success());
    let pubkey = std::fs::read_to_string(other.with_extension("pub")).unwrap();
    let web2 = &f.hosts[1].1;
    let changed: String = std::fs::read_to_string(&known)
        .unwrap()
        .lines()
        .map(|l| {
            if l.starts_with(&format!("{web2} ")) {
                format!("{web2} {}\n", pubkey.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    std::fs::write(f.dir.join("changed_known_hosts"), changed).unwrap();
    stage_with_ssh_config(&f, "changed-key", |t| {
        t.replace(&known, &f.dir.join("changed_known_hosts").display().to_string())
    });
    let (code, err) = run(&f, "changed-key");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown or changed host key for web2"), "{err}");
    assert!(!err.contains("for web1"), "web1's key is fine: {err}");
    untouched(&f);

    // Authentication refused: a key the hosts do not know.
    let stranger = f.dir.join("stranger_key");
    Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&stranger).output().unwrap();
    let id = f.dir.join("id_ed25519").display().to_string();
    stage_with_ssh_config(&f, "bad-auth", |t| {
        t.replace(&format!("IdentityFile {id}"), &format!("IdentityFile {}", stranger.display()))
    });
    let (code, err) = run(&f, "bad-auth");
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("authentication refused by web1") && err.contains("Permission denied"), "{err}");
    untouched(&f);

    // Unreachable: web2's sshd stopped. Exit 1, and web1 is not left locked either.
    let pid = std::fs::read_to_string(f.dir.join("hosts/web2/sshd.pid")).unwrap();
    Command::new("kill").arg(pid.trim()).status().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (code, err) = run(&f, "farm");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cannot reach web2") && err.contains("Connection refused"), "{err}");
    assert!(err.contains("nothing was changed on any host"), "{err}");
    untouched(&f);
}

#[test]
fn dirty_working_copy_is_refused_unless_allowed() {
    let f = Farm::start(2);
    let tpl = f.repo().join("templates/index.html");
    let committed = std::fs::read_to_string(&tpl).unwrap();
    std::fs::write(&tpl, format!("{committed}<p>UNCOMMITTED</p>\n")).unwrap();
    let (code, err) = run(&f, "farm");
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("uncommitted changes") && err.contains("templates/index.html") && err.contains("--allow-dirty"),
        "{err}"
    );
    untouched(&f);
    // An explicit revision is not the working copy: no refusal.
    let o = f.deploy(&["farm", "--revision", "main", "--output", "plain"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    // --allow-dirty deploys HEAD as committed, without the local change.
    let o = f.deploy(&["farm", "--allow-dirty", "--output", "plain"]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let page = crate::farm::http::get(&format!("http://{}:8080/", f.hosts[0].1));
    assert!(!page.body.contains("UNCOMMITTED"), "{}", page.body);
}
