//! Every remote command builder, as the exact line the shell receives, and proof with a real
//! `/bin/sh` that hostile values stay data.

use deploy::config::{Balancer, HttpCache};
use deploy::http_cache::Ban;
use deploy::remote::Target;
use deploy::remote::hooks::{HookEnv, run as hook, templated};
use deploy::remote::{Cmd, Layout, health, journal, lock, quote, release, shared};
use std::process::Command;
use std::time::Duration;

/// Values a config or a user could hand us, each trying to break out of its word.
const HOSTILE: &[&str] = &[
    "plain",
    "with space",
    "it's",
    "\"double\"",
    "$(touch /tmp/deploy-pwned)",
    "`touch /tmp/deploy-pwned`",
    "a; touch /tmp/deploy-pwned",
    "a && touch /tmp/deploy-pwned",
    "line1\nline2",
    "back\\slash",
    "$HOME ${HOME}",
    "*",
    "~root",
    "-rf",
    "",
    "'; touch /tmp/deploy-pwned; '",
    "|>&<",
];

fn sh(line: &str) -> String {
    let o = Command::new("/bin/sh").arg("-c").arg(line).output().expect("sh runs");
    assert!(o.status.success(), "sh -c {line:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn quoted_words_reach_the_program_unchanged() {
    for v in HOSTILE {
        let line = Cmd::new("printf").args(["%s", v]).to_string();
        assert_eq!(sh(&line), *v, "through {line}");
    }
    // Several words at once, and through `&&` and a pipe.
    let line = Cmd::new("printf").args(["%s|"]).args(HOSTILE.iter().copied()).pipe(Cmd::new("cat")).to_string();
    let want: String = HOSTILE.iter().map(|v| format!("{v}|")).collect();
    assert_eq!(sh(&line), want);
    assert!(!std::path::Path::new("/tmp/deploy-pwned").exists());
}

#[test]
fn quoting_rules() {
    assert_eq!(quote("abc-1.2_3/x:y,z@h%+="), "abc-1.2_3/x:y,z@h%+=");
    assert_eq!(quote(""), "''");
    assert_eq!(quote("a b"), "'a b'");
    assert_eq!(quote("it's"), "'it'\\''s'");
    assert_eq!(quote("$(x)"), "'$(x)'");
    assert_eq!(quote("a;b"), "'a;b'");
    assert_eq!(quote("a\nb"), "'a\nb'");
    assert_eq!(quote("~"), "'~'");
    assert_eq!(quote("*"), "'*'");
}

#[test]
fn operators_and_redirections() {
    let c = Cmd::new("a")
        .arg("1")
        .and(Cmd::new("b").write_to("/x y"))
        .pipe(Cmd::new("c").append_to("z"))
        .and(Cmd::new("d").read_from("in"));
    assert_eq!(c.to_string(), "a 1 && b > '/x y' | c >> z && d < in");
    assert_eq!(Cmd::all(Vec::<Cmd>::new()), None);
}

fn l() -> Layout {
    Layout::new("/var/www/shop")
}

const ID: &str = "20261126T051944Z-1a2b3c4";

#[test]
fn lock_commands() {
    assert_eq!(
        lock::acquire(&l(), r#"{"user":"o'hara"}"#, "t0k").to_string(),
        r#"mkdir -p -- /var/www/shop/.deploy && mkdir -- /var/www/shop/.deploy/lock && printf '%s\n' '{"user":"o'\''hara"}' > /var/www/shop/.deploy/lock/owner.json && printf '%s\n' t0k > /var/www/shop/.deploy/lock/token && touch -- /var/www/shop/.deploy/lock/lease"#
    );
    assert_eq!(lock::owner(&l()).to_string(), "cat -- /var/www/shop/.deploy/lock/owner.json");
    assert_eq!(lock::release(&l()).to_string(), "rm -rf -- /var/www/shop/.deploy/lock");
}

/// The lock's token and lease, run by a real shell: only the token's deploy renews or
/// removes the lock; the lease's age is read by the host's clock.
#[test]
fn lock_tokens_and_leases_on_a_real_folder() {
    let dir = tempfile::tempdir().unwrap();
    let layout = deploy::remote::Layout::new(dir.path().to_str().unwrap());
    let sh = |cmd: deploy::remote::Cmd| {
        let out = std::process::Command::new("sh").args(["-c", &cmd.to_string()]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let lock_dir = dir.path().join(".deploy/lock");
    assert_eq!(sh(lock::refresh(&layout, "mine")).0, Some(0), "no lock: nothing to renew");
    assert_eq!(sh(lock::holder(&layout)), (Some(1), String::new()), "no lock, no lease");
    assert_eq!(sh(lock::acquire(&layout, "{}", "mine")).0, Some(0));
    assert_eq!(sh(lock::acquire(&layout, "{}", "theirs")).0, Some(1), "held");
    let age = lock::lease_age(&sh(lock::holder(&layout)).1).expect("an age");
    assert!(age < lock::LEASE_FRESH, "{age:?}");
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(120);
    std::fs::File::options().write(true).open(lock_dir.join("lease")).unwrap().set_modified(old).unwrap();
    assert!(lock::lease_age(&sh(lock::holder(&layout)).1).unwrap() >= std::time::Duration::from_secs(119));
    assert_eq!(sh(lock::refresh(&layout, "theirs")).0, Some(lock::NOT_OURS));
    assert_eq!(sh(lock::release_own(&layout, "theirs")).0, Some(lock::NOT_OURS));
    assert!(lock_dir.exists(), "another token removes nothing");
    assert_eq!(sh(lock::refresh(&layout, "mine")).0, Some(0));
    assert!(lock::lease_age(&sh(lock::holder(&layout)).1).unwrap() < lock::LEASE_FRESH, "renewed");
    assert_eq!(sh(lock::abandon(&layout, "mine")).0, Some(0));
    let held = sh(lock::holder(&layout)).1;
    assert_eq!((lock::holder_owner(&held), lock::lease_age(&held)), ("{}", None), "given up");
    assert!(lock_dir.exists(), "the lock stays");
    assert_eq!(sh(lock::release_own(&layout, "mine")).0, Some(0));
    assert!(!lock_dir.exists());

    // A refresh that meets a release half-way (the lease removed, the folder not yet) never
    // makes a new lease: the folder can still go, and no lockless `lease` is left to read as
    // a lock held by an unknown deploy (seen at 64 hosts, before `touch -c`).
    assert_eq!(sh(lock::acquire(&layout, "{}", "mine")).0, Some(0));
    std::fs::remove_file(lock_dir.join("lease")).unwrap();
    assert_eq!(sh(lock::refresh(&layout, "mine")).0, Some(0));
    assert!(!lock_dir.join("lease").exists(), "the refresh made a lease");
}

#[test]
fn release_commands() {
    assert_eq!(
        release::receive(&l(), ID).to_string(),
        "mkdir -p -- /var/www/shop/.deploy/incoming /var/www/shop/releases /var/www/shop/shared && sh -c 'mkdir -- \"$1\" && rm -f -- \"$2\" && mkfifo -- \"$2\" || exit 1\nsha256sum < \"$2\" & sum=$!\ntee -- \"$2\" | { tar -xzf - -C \"$1\"; status=$?; cat > /dev/null; exit $status; }\nstatus=$?\nwait \"$sum\" || status=1\nrm -f -- \"$2\"\nexit $status' sh /var/www/shop/releases/.20261126T051944Z-1a2b3c4.partial /var/www/shop/.deploy/incoming/20261126T051944Z-1a2b3c4.fifo"
    );
    // The rest of the unpack: these parts, in this order; the link and listing scripts are
    // constants and every path is an argument after them. The folder is renamed into place
    // last, before the listing.
    let unpack = release::unpack(&l(), ID, "1a2b3c4d", false).to_string();
    let r = "/var/www/shop/releases/.20261126T051944Z-1a2b3c4.partial";
    let done = "/var/www/shop/releases/20261126T051944Z-1a2b3c4";
    let mut at = 0;
    for part in [
        "mkdir -p -- /var/www/shop/.deploy/manifests && ".to_string(),
        "sh -c 'cur=$1 rel=$2 meta=$3 fmt=$4 how=$5 keep=$6\n".to_string(),
        "cp --reflink=auto --preserve=mode,timestamps --parents".to_string(),
        format!("' sh /var/www/shop/current {r} {r}/.git/deploy '%i %s %Y %a %u %g %n\\0' copy /var/www/shop/.deploy/manifests/20261126T051944Z-1a2b3c4 /var/www/shop/.deploy/manifests && "),
        format!("printf '%s\\n' 1a2b3c4d > {r}/.git/deploy/REVISION && "),
        format!("mv -fT -- {r}/.git/deploy/REVISION {r}/REVISION && "),
        format!("mv -f -- {r}/.git/deploy/manifest /var/www/shop/.deploy/manifests/20261126T051944Z-1a2b3c4 && "),
        format!("rm -rf -- {r}/.git && "),
        format!("mv -T -- {r} {done} && "),
        "sh -c 'cd \"$1\" && find . -type f -print0 | xargs -0 -r stat --printf \"$3\" -- > \"$2\" || rm -f -- \"$2\"; true' "
            .to_string(),
        format!("sh {done} /var/www/shop/.deploy/manifests/20261126T051944Z-1a2b3c4.files '%i %s %Y %a %u %g %n\\0'"),
    ] {
        let i = unpack[at..].find(&part).unwrap_or_else(|| panic!("`{part}` not in order in:\n{unpack}"));
        at += i + part.len();
    }
    assert_eq!(at, unpack.len(), "nothing after the listing: {unpack}");
    assert_eq!(
        release::manifest(&l(), ID).to_string(),
        "cat -- /var/www/shop/.deploy/manifests/20261126T051944Z-1a2b3c4"
    );
    assert_eq!(
        release::current_listing(&l()).to_string(),
        r#"sh -c 'cd "$1" && find . -type f -print0 | xargs -0 -r stat --printf "$2" --' sh /var/www/shop/current '%i %s %Y %a %u %g %n\0'"#
    );
    assert_eq!(release::current(&l()).to_string(), "readlink -- /var/www/shop/current");
    assert_eq!(
        release::switch(&l(), ID).to_string(),
        "ln -sfn -- releases/20261126T051944Z-1a2b3c4 /var/www/shop/.current.tmp && mv -fT -- /var/www/shop/.current.tmp /var/www/shop/current"
    );
    assert_eq!(release::exists(&l(), ID).to_string(), "test -d /var/www/shop/releases/20261126T051944Z-1a2b3c4");
    assert_eq!(release::list(&l()).to_string(), "ls -1a -- /var/www/shop/releases");
    assert_eq!(
        release::stale_partials(".\n..\n.20261126T051944Z-1a2b3c4.partial\n20261125T051944Z-aaaaaaa\n.x.partial\n"),
        ["20261126T051944Z-1a2b3c4"]
    );
    assert_eq!(
        release::remove_partials(&l(), &["a".into()]).to_string(),
        "rm -rf -- /var/www/shop/releases/.a.partial /var/www/shop/.deploy/incoming/a.fifo"
    );
    assert_eq!(
        release::remove(&l(), &["a".into(), "b c".into()]).to_string(),
        "rm -rf -- /var/www/shop/releases/a /var/www/shop/.deploy/manifests/a /var/www/shop/.deploy/manifests/a.files /var/www/shop/.deploy/manifests/a.links /var/www/shop/.deploy/manifests/a.expect /var/www/shop/.deploy/manifests/a.got /var/www/shop/releases/.a.partial /var/www/shop/.deploy/incoming/a.fifo '/var/www/shop/releases/b c' '/var/www/shop/.deploy/manifests/b c' '/var/www/shop/.deploy/manifests/b c.files' '/var/www/shop/.deploy/manifests/b c.links' '/var/www/shop/.deploy/manifests/b c.expect' '/var/www/shop/.deploy/manifests/b c.got' '/var/www/shop/releases/.b c.partial' '/var/www/shop/.deploy/incoming/b c.fifo'"
    );
    assert_eq!(
        release::record(&l(), r#"{"release":"x"}"#).to_string(),
        r#"mkdir -p -- /var/www/shop/.deploy && printf '%s\n' '{"release":"x"}' >> /var/www/shop/.deploy/releases.jsonl"#
    );
    assert_eq!(release::log(&l()).to_string(), "cat -- /var/www/shop/.deploy/releases.jsonl");
}

#[test]
fn paths_with_spaces_and_quotes_stay_one_word() {
    let odd = Layout::new("/srv/my shop's $(app)/");
    assert_eq!(odd.root(), "/srv/my shop's $(app)");
    assert_eq!(
        release::switch(&odd, ID).to_string(),
        "ln -sfn -- releases/20261126T051944Z-1a2b3c4 '/srv/my shop'\\''s $(app)/.current.tmp' && mv -fT -- '/srv/my shop'\\''s $(app)/.current.tmp' '/srv/my shop'\\''s $(app)/current'"
    );
}

#[test]
fn switch_is_atomic_and_works_on_a_real_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("app dir; $(x)");
    std::fs::create_dir_all(root.join("releases/r1")).unwrap();
    std::fs::create_dir_all(root.join("releases/r2")).unwrap();
    let lay = Layout::new(root.to_str().unwrap());
    sh(&release::switch(&lay, "r1").to_string());
    assert_eq!(std::fs::read_link(root.join("current")).unwrap().to_str(), Some("releases/r1"));
    sh(&release::switch(&lay, "r2").to_string());
    assert_eq!(std::fs::read_link(root.join("current")).unwrap().to_str(), Some("releases/r2"));
    assert!(!root.join(".current.tmp").exists());
}

#[test]
fn shared_links() {
    assert_eq!(shared::link(&l(), ID, &[], &[]), None);
    assert_eq!(
        shared::link(&l(), ID, &["var/log".into()], &[".env.local".into()]).unwrap().to_string(),
        "ls -d -- /var/www/shop/shared/.env.local > /dev/null && mkdir -p -- /var/www/shop/shared/var/log && rm -rf -- /var/www/shop/releases/20261126T051944Z-1a2b3c4/var/log && mkdir -p -- /var/www/shop/releases/20261126T051944Z-1a2b3c4/var && ln -s -- /var/www/shop/shared/var/log /var/www/shop/releases/20261126T051944Z-1a2b3c4/var/log && rm -rf -- /var/www/shop/releases/20261126T051944Z-1a2b3c4/.env.local && ln -s -- /var/www/shop/shared/.env.local /var/www/shop/releases/20261126T051944Z-1a2b3c4/.env.local"
    );
}

#[test]
fn shared_links_work_on_a_real_release_and_name_a_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let lay = Layout::new(&root);
    std::fs::create_dir_all(dir.path().join("releases/r1/var/log")).unwrap();
    std::fs::write(dir.path().join("releases/r1/var/log/old"), "from the build").unwrap();
    let cmd = shared::link(&lay, "r1", &["var/log".into()], &["config/.env.local".into()]).unwrap().to_string();
    let o = Command::new("/bin/sh").arg("-c").arg(&cmd).output().unwrap();
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("shared/config/.env.local"),
        "the error names the missing file"
    );
    std::fs::create_dir_all(dir.path().join("shared/config")).unwrap();
    std::fs::write(dir.path().join("shared/config/.env.local"), "APP_ENV=prod").unwrap();
    sh(&cmd);
    let log = dir.path().join("releases/r1/var/log");
    assert_eq!(std::fs::read_link(&log).unwrap(), dir.path().join("shared/var/log"));
    assert_eq!(std::fs::read_to_string(dir.path().join("releases/r1/config/.env.local")).unwrap(), "APP_ENV=prod");
}

#[test]
fn hooks_run_in_the_release_with_their_environment() {
    let env = HookEnv { stage: "production", release: ID, path: "/var/www/shop", timeout: Duration::from_secs(900) };
    assert_eq!(
        hook("/var/www/shop/releases/x", "php bin/console cache:clear && echo 'done'", &env).to_string(),
        r#"cd -- /var/www/shop/releases/x && sh -c 'echo "$PPID" > "$1" 2>/dev/null; true' sh /var/www/shop/.deploy/hook.pid && exec env DEPLOY_STAGE=production DEPLOY_RELEASE=20261126T051944Z-1a2b3c4 DEPLOY_PATH=/var/www/shop timeout -k 10s 900s sh -c 'php bin/console cache:clear && echo '\''done'\'''"#
    );
    // For real: the hook sees its folder and variables, and a hostile stage name stays data.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let env = HookEnv {
        stage: "a; touch /tmp/deploy-pwned",
        release: "r$(id)",
        path: "/x",
        timeout: Duration::from_secs(60),
    };
    let out = sh(&hook(d, "pwd; echo \"$DEPLOY_STAGE|$DEPLOY_RELEASE|$DEPLOY_PATH\"", &env).to_string());
    assert_eq!(out, format!("{d}\na; touch /tmp/deploy-pwned|r$(id)|/x\n"));
    assert!(!std::path::Path::new("/tmp/deploy-pwned").exists());
}

#[test]
fn templated_commands_quote_their_placeholders() {
    assert_eq!(
        templated("lb-cli drain --target {backend} # {host}", "web1", "pool/web 1").to_string(),
        "sh -c 'lb-cli drain --target '\\''pool/web 1'\\'' # web1'"
    );
    let out = sh(&templated("printf '%s|' {host} {backend}", "web1", "$(touch /tmp/deploy-pwned)").to_string());
    assert_eq!(out, "web1|$(touch /tmp/deploy-pwned)|");
}

#[test]
fn journal_commands() {
    let e = journal::Entry { stage: "production", host: "web1", release: ID, state: journal::State::Switching };
    assert_eq!(
        journal::write(&l(), &e).to_string(),
        r#"printf '%s\n' '{"stage":"production","host":"web1","release":"20261126T051944Z-1a2b3c4","state":"switching"}' > /var/www/shop/.deploy/journal.json.tmp && mv -f -- /var/www/shop/.deploy/journal.json.tmp /var/www/shop/.deploy/journal.json"#
    );
    assert_eq!(journal::clear(&l()).to_string(), "rm -f -- /var/www/shop/.deploy/journal.json");
    assert_eq!(journal::read(&l()).to_string(), "cat -- /var/www/shop/.deploy/journal.json");
}

#[test]
fn health_commands() {
    assert_eq!(
        health::fetch_status("http://127.0.0.1:8080/health?x=1&y=$(id)", &[], Duration::from_millis(2500)).to_string(),
        r#"printf '%s\n' 'url = "http://127.0.0.1:8080/health?x=1&y=$(id)"' | curl -K - -sS -g -o /dev/null -w '%{http_code}' --max-time 2.500"#
    );
    assert_eq!(
        health::request(
            "PURGE",
            "http://cache/",
            &[("X-Token".into(), "s3cr'et \"q\" \\".into())],
            Duration::from_secs(10)
        )
        .to_string(),
        r#"printf '%s\n' 'url = "http://cache/"' 'header = "X-Token: s3cr'\''et \"q\" \\"' | curl -K - -sS -g -o /dev/null -w '%{http_code}' -X PURGE --max-time 10"#
    );
}

fn varnish() -> Balancer {
    Balancer::Varnish {
        host: "lb1".into(),
        admin: "127.0.0.1:6082".into(),
        secret: "/etc/varnish/secret".into(),
        instance: Some("/var/lib/varnish/my inst".into()),
        backends: vec![("web2".into(), "app_2".into())],
    }
}

fn shell(op: deploy::balancer::Op) -> (Target, String) {
    (op.on, op.cmd.to_string())
}

#[test]
fn varnish_balancer_commands() {
    let b = varnish();
    let lb = Target::Host("lb1".into());
    assert_eq!(
        shell(deploy::balancer::drain(&b, "web1").unwrap()),
        (
            lb.clone(),
            r"timeout -k 5s 45s sh -c 'varnishadm -T 127.0.0.1:6082 -S /etc/varnish/secret backend.set_health '\''*.web1'\'' sick'"
                .into()
        )
    );
    assert_eq!(
        shell(deploy::balancer::undrain(&b, "web2").unwrap()).1,
        r"timeout -k 5s 45s sh -c 'varnishadm -T 127.0.0.1:6082 -S /etc/varnish/secret backend.set_health '\''*.app_2'\'' auto'"
    );
    let (op, read) = deploy::balancer::in_flight(&b, "web1").unwrap();
    assert_eq!(op.cmd.to_string(), "varnishstat -n '/var/lib/varnish/my inst' -1 -f 'VBE.*.web1.conn'");
    assert_eq!(read, deploy::balancer::Reading::VarnishStat);
    let (op, _) = deploy::balancer::healthy(&b, "web1").unwrap();
    assert_eq!(op.cmd.to_string(), "varnishadm -T 127.0.0.1:6082 -S /etc/varnish/secret backend.list '*.web1'");
}

#[test]
fn haproxy_balancer_commands() {
    let b = Balancer::Haproxy {
        host: "lb1".into(),
        socket: "/run/haproxy/admin.sock".into(),
        backend: "app".into(),
        servers: vec![],
    };
    assert_eq!(
        shell(deploy::balancer::drain(&b, "web1").unwrap()).1,
        r#"timeout -k 5s 45s sh -c 'printf '\''%s\n'\'' '\''set server app/web1 state drain'\'' | socat -t 5 stdio unix-connect:/run/haproxy/admin.sock'"#
    );
    assert_eq!(
        shell(deploy::balancer::undrain(&b, "web1").unwrap()).1,
        r#"timeout -k 5s 45s sh -c 'printf '\''%s\n'\'' '\''set server app/web1 state ready'\'' | socat -t 5 stdio unix-connect:/run/haproxy/admin.sock'"#
    );
    let (op, read) = deploy::balancer::in_flight(&b, "web1").unwrap();
    assert_eq!(
        op.cmd.to_string(),
        "printf '%s\\n' 'show stat' | socat -t 5 stdio unix-connect:/run/haproxy/admin.sock"
    );
    assert_eq!(read, deploy::balancer::Reading::HaproxyStat { backend: "app".into(), server: "web1".into() });
}

#[test]
fn command_balancer_runs_locally_or_on_its_host() {
    let b = Balancer::Command {
        host: None,
        drain: "aws elbv2 deregister-targets --targets Id={backend}".into(),
        undrain: "lb add {host}".into(),
        in_flight: Some("lb conns {backend}".into()),
        healthy: None,
        stats: None,
        backends: vec![("web1".into(), "i-0abc".into())],
    };
    let (on, cmd) = shell(deploy::balancer::drain(&b, "web1").unwrap());
    assert_eq!(on, Target::Local);
    assert_eq!(cmd, r"timeout -k 5s 45s sh -c 'sh -c '\''aws elbv2 deregister-targets --targets Id=i-0abc'\'''");
    assert_eq!(
        shell(deploy::balancer::undrain(&b, "web1").unwrap()).1,
        r"timeout -k 5s 45s sh -c 'sh -c '\''lb add web1'\'''"
    );
    assert!(deploy::balancer::healthy(&b, "web1").is_none());
    assert!(deploy::balancer::drain(&Balancer::None, "web1").is_none());
}

#[test]
fn varnish_ban_words() {
    use deploy::config::ban::words as ban_words;
    assert_eq!(ban_words("req.http.host ~ knifedepot.com"), ["req.http.host", "~", "knifedepot.com"]);
    assert_eq!(
        ban_words(r#"req.url ~ "^/a b" && obj.status != 0"#),
        ["req.url", "~", "^/a b", "&&", "obj.status", "!=", "0"]
    );
    assert_eq!(ban_words(r#"req.url == "say \"hi\"""#), ["req.url", "==", "say \"hi\""]);
    assert_eq!(ban_words(r#"req.url == """#), ["req.url", "==", ""]);
}

#[test]
fn cache_bans() {
    let v = HttpCache::Varnish {
        host: "lb1".into(),
        admin: "127.0.0.1:6082".into(),
        secret: "/etc/varnish/secret".into(),
        bans: vec!["req.http.host ~ shop.example".into(), "req.url ~ ^/api; rm -rf /".into()],
    };
    let lines: Vec<String> = deploy::http_cache::bans(&v)
        .into_iter()
        .map(|ban| match ban {
            Ban::Shell { cmd, .. } => cmd.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        lines,
        [
            "varnishadm -T 127.0.0.1:6082 -S /etc/varnish/secret 'ban req.http.host ~ shop.example'",
            "varnishadm -T 127.0.0.1:6082 -S /etc/varnish/secret 'ban req.url ~ ^/api; rm -rf /'",
        ]
    );
    let c = HttpCache::Command { host: Some("lb1".into()), commands: vec!["cdn purge --all".into()] };
    let bans = deploy::http_cache::bans(&c);
    assert!(matches!(&bans[0], Ban::Shell { on, cmd, .. }
        if *on == Target::Host("lb1".into()) && cmd.to_string() == "sh -c 'cdn purge --all'"));
    let h = HttpCache::Http {
        host: None,
        method: "BAN".into(),
        url: "http://127.0.0.1:6081/".into(),
        headers: vec![],
        expect_status: None,
    };
    assert!(matches!(&deploy::http_cache::bans(&h)[0], Ban::Http { method, .. } if method == "BAN"));
}

/// A drain or undrain cut off where it runs cannot take effect later: `Cmd::limited` ends it
/// (and what it started) at its limit. Run by a real shell; the control runs the same
/// command without the limit and sees it land.
#[test]
fn a_limited_command_cannot_land_late() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("landed");
    let late = Cmd::new("sh").args(["-c", "sleep 2; touch \"$1\"", "sh", marker.to_str().unwrap()]);
    let status = std::process::Command::new("sh")
        .args(["-c", &late.clone().limited(Duration::from_secs(1)).to_string()])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(124), "timeout says it cut the command off");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!marker.exists(), "the command landed after its limit");
    // The control: without the limit it lands.
    std::process::Command::new("sh").args(["-c", &late.to_string()]).status().unwrap();
    assert!(marker.exists());
    // Every drain and undrain is limited so, below deploy's own 60 s.
    let haproxy = Balancer::Haproxy {
        host: "lb1".into(),
        socket: "/run/haproxy/admin.sock".into(),
        backend: "app".into(),
        servers: vec![],
    };
    for balancer in [varnish(), haproxy] {
        let drain = deploy::balancer::drain(&balancer, "web2").unwrap().cmd.to_string();
        let undrain = deploy::balancer::undrain(&balancer, "web2").unwrap().cmd.to_string();
        assert!(
            drain.starts_with("timeout -k 5s 45s sh -c ") && undrain.starts_with("timeout -k 5s 45s sh -c "),
            "{drain}"
        );
    }
}

/// Without `instance`, the in-flight count asks the varnishd that runs on the host for its
/// `-n` folder; the script ends in varnishstat whatever it finds (a fake one here, on PATH).
#[test]
fn varnishstat_finds_the_running_varnishd() {
    let b = Balancer::Varnish {
        host: "lb1".into(),
        admin: "127.0.0.1:6082".into(),
        secret: "/etc/varnish/secret".into(),
        instance: None,
        backends: vec![],
    };
    let (op, _) = deploy::balancer::in_flight(&b, "web1").unwrap();
    let bin = tempfile::tempdir().unwrap();
    let fake = bin.path().join("varnishstat");
    std::fs::write(&fake, "#!/bin/sh\necho varnishstat \"$@\"\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", bin.path().display(), std::env::var("PATH").unwrap());
    let out = Command::new("sh").args(["-c", &op.cmd.to_string()]).env("PATH", &path).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.starts_with("varnishstat ") && said.trim_end().ends_with("-1 -f VBE.*.web1.conn"), "{said}");
    // A varnishd running with `-n` (a stand-in whose command line says so, found by a fake
    // pgrep): its folder is the one varnishstat gets.
    let mut stand_in =
        Command::new("python3").args(["-c", "import time; time.sleep(30)", "-n", "/tmp/my inst"]).spawn().unwrap();
    let pgrep = bin.path().join("pgrep");
    std::fs::write(&pgrep, format!("#!/bin/sh\necho {}\n", stand_in.id())).unwrap();
    std::fs::set_permissions(&pgrep, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = Command::new("sh").args(["-c", &op.cmd.to_string()]).env("PATH", &path).output().unwrap();
    let _ = stand_in.kill();
    let _ = stand_in.wait();
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(said.trim_end(), "varnishstat -n /tmp/my inst -1 -f VBE.*.web1.conn");
}

/// The health check's headers reach the server: real curl, from the command deploy sends,
/// against a listener that answers 200 only with the right `Host`.
#[test]
fn health_check_sends_its_headers() {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut request = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line.trim().is_empty() {
                break;
            }
            request.push(line.trim().to_string());
        }
        let right = request.iter().any(|line| line == "Host: shop.example.com");
        let status = if right { "200 OK" } else { "421 Misdirected Request" };
        write!(reader.get_mut(), "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
        request
    });
    let headers =
        [("Host".to_string(), "shop.example.com".to_string()), ("X-Check".to_string(), "it's \"on\"".to_string())];
    let cmd = health::fetch_status(&format!("http://127.0.0.1:{port}/health"), &headers, Duration::from_secs(5));
    let out = Command::new("sh").args(["-c", &cmd.to_string()]).output().unwrap();
    let request = server.join().unwrap();
    assert_eq!(health::http_status(&String::from_utf8_lossy(&out.stdout)), Some(200), "{request:?}");
    assert!(request.contains(&"X-Check: it's \"on\"".to_string()), "{request:?}");
}

/// The stage guard before an upload, run by a real shell on a real deploy folder.
#[test]
fn another_stage_deployed_last_is_refused_on_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap();
    let layout = Layout::new(root);
    std::fs::create_dir_all(dir.path().join("releases/20261126T051944Z-1a2b3c4")).unwrap();
    std::os::unix::fs::symlink("releases/20261126T051944Z-1a2b3c4", dir.path().join("current")).unwrap();
    let run = |stage: &str| {
        let site = if stage == "production-haproxy" { "production" } else { stage };
        let out = Command::new("sh")
            .args(["-c", &release::current_for_site(&layout, stage, site).to_string()])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // No release log yet: any stage may deploy.
    assert_eq!(run("staging").0, Some(0));
    std::fs::create_dir_all(dir.path().join(".deploy")).unwrap();
    std::fs::write(
        layout.release_log(),
        "{\"kind\":\"deploy\",\"release\":\"20261120T000000Z-0f0f0f0\",\"stage\":\"staging\"}\n{\"kind\":\"deploy\",\"release\":\"20261126T051944Z-1a2b3c4\",\"stage\":\"production\",\"site\":\"production\",\"outcome\":\"success\"}\n",
    )
    .unwrap();
    let (code, stdout, _) = run("production");
    assert_eq!(code, Some(0));
    assert_eq!(release::current_release(&stdout).as_deref(), Some("20261126T051944Z-1a2b3c4"));
    let (code, _, stderr) = run("staging");
    assert_eq!(code, Some(release::OTHER_STAGE));
    assert!(stderr.contains("deployed by stage `production`; deploying stage `staging`"), "{stderr}");
    // Another stage of the same site (the same site behind another balancer) may deploy.
    assert_eq!(run("production-haproxy").0, Some(0));
}

/// Runs `cmd` in /bin/sh with `input` on stdin: (exit status, stdout).
fn sh_fed(cmd: &str, input: &[u8]) -> (Option<i32>, String) {
    use std::io::Write;
    let mut child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // A receive that fails early closes its end: the rest of the input is not its problem.
    let _ = stdin.write_all(input);
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8(out.stdout).unwrap())
}

/// The receive unpacks and hashes in one pass: the release's files appear in the hidden
/// folder, the sum printed is that of every byte sent (trailing bytes too), and no tarball is
/// kept. A truncated tarball fails; the unpack renames the folder into place, never over a
/// folder that holds files.
#[test]
fn receive_unpacks_and_hashes_in_one_pass_and_renames_into_place() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_str().unwrap().to_string();
    let lay = Layout::new(&root);
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("public")).unwrap();
    std::fs::write(src.join("public/index.php"), "<?php echo 1;\n".repeat(5000)).unwrap();
    std::fs::create_dir_all(src.join(release::META_DIR)).unwrap();
    std::fs::write(src.join(release::META_DIR).join("manifest"), "manifest\n").unwrap();
    let tarball = Command::new("tar").args(["-czf", "-", "-C", src.to_str().unwrap(), "."]).output().unwrap().stdout;
    let hex = |bytes: &[u8]| deploy::artifact::hex(&Sha256::digest(bytes));

    let (status, out) = sh_fed(&release::receive(&lay, "r1").to_string(), &tarball);
    assert_eq!(status, Some(0));
    assert_eq!(release::received_sha256(&out), Some(hex(&tarball).as_str()), "{out}");
    let part = dir.path().join("releases/.r1.partial");
    assert!(part.join("public/index.php").is_file());
    assert!(!dir.path().join("releases/r1").exists(), "not in place before the unpack");
    let incoming: Vec<_> = std::fs::read_dir(dir.path().join(".deploy/incoming")).unwrap().collect();
    assert!(incoming.is_empty(), "nothing kept: {incoming:?}");

    let (status, _) = sh_fed(&release::unpack(&lay, "r1", "abc", false).to_string(), b"");
    assert_eq!(status, Some(0));
    assert!(!part.exists());
    assert_eq!(std::fs::read_to_string(dir.path().join("releases/r1/REVISION")).unwrap(), "abc\n");
    assert!(dir.path().join("releases/r1/public/index.php").is_file());
    assert!(!dir.path().join("releases/r1/.git").exists());
    assert_eq!(std::fs::read_to_string(lay.manifest("r1")).unwrap(), "manifest\n");

    // Bytes after the archive still count in the sum: what was sent is what is checked.
    let mut padded = tarball.clone();
    padded.extend_from_slice(&[0; 70_000]);
    let (status, out) = sh_fed(&release::receive(&lay, "r2").to_string(), &padded);
    assert_eq!(status, Some(0));
    assert_eq!(release::received_sha256(&out), Some(hex(&padded).as_str()));

    // A tarball cut short fails the receive.
    let (status, _) = sh_fed(&release::receive(&lay, "r3").to_string(), &tarball[..tarball.len() / 2]);
    assert_ne!(status, Some(0));
    // The same id twice is refused: a hidden folder is never unpacked into again.
    let (status, _) = sh_fed(&release::receive(&lay, "r2").to_string(), &tarball);
    assert_ne!(status, Some(0));

    // Never renamed over a release folder that holds files.
    std::fs::create_dir_all(dir.path().join("releases/r2/live")).unwrap();
    let (status, _) = sh_fed(&release::unpack(&lay, "r2", "abc", false).to_string(), b"");
    assert_ne!(status, Some(0));
    assert!(dir.path().join("releases/r2/live").is_dir());

    // What a failed receive left is removed with the release.
    let (status, _) = sh_fed(&release::remove(&lay, &["r3".into()]).to_string(), b"");
    assert_eq!(status, Some(0));
    assert!(!dir.path().join("releases/.r3.partial").exists());
}

/// The store fetch on a real shell and curl (a `file://` URL): it unpacks while hashing and
/// prints the sum; a try that fails is tried again and can succeed; bytes that are not the
/// expected ones fail every try, with the mismatch status; a URL curl cannot fetch fails;
/// nothing is left behind.
#[test]
fn fetch_retries_and_checks_the_sha256_on_the_host() {
    use sha2::{Digest, Sha256};
    let dir = tempfile::tempdir().unwrap();
    let lay = Layout::new(dir.path().to_str().unwrap());
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("public")).unwrap();
    std::fs::write(src.join("public/index.php"), "<?php echo 2;\n").unwrap();
    let tarball = Command::new("tar").args(["-czf", "-", "-C", src.to_str().unwrap(), "."]).output().unwrap().stdout;
    let sha = deploy::artifact::hex(&Sha256::digest(&tarball));
    let object = dir.path().join("object.tar.gz");
    std::fs::write(&object, &tarball).unwrap();
    let url = format!("file://{}", object.display());
    let input = release::fetch_input(&sha, &url, &[("X-Token".into(), "a \"quoted\" value".into())]);
    assert_eq!(input.lines().count(), 3, "{input}");

    let (status, out) = sh_fed(&release::fetch(&lay, "r1", 2).to_string(), input.as_bytes());
    assert_eq!((status, release::received_sha256(&out)), (Some(0), Some(sha.as_str())));
    assert!(dir.path().join("releases/.r1.partial/public/index.php").is_file());

    let mut wrong = tarball.clone();
    let last = wrong.len() - 1;
    wrong[last] ^= 1;
    std::fs::write(&object, &wrong).unwrap();
    let (status, _) = sh_fed(&release::fetch(&lay, "r2", 2).to_string(), input.as_bytes());
    assert_eq!(status, Some(release::FETCH_MISMATCH));

    // A try that fails is tried again: the object appears while the first try's pause runs.
    let late = dir.path().join("late.tar.gz");
    let later = release::fetch_input(&sha, &format!("file://{}", late.display()), &[]);
    let writer = {
        let (late, tarball) = (late.clone(), tarball.clone());
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            std::fs::write(late, tarball).unwrap();
        })
    };
    let (status, out) = sh_fed(&release::fetch(&lay, "r4", 2).to_string(), later.as_bytes());
    writer.join().unwrap();
    assert_eq!((status, release::received_sha256(&out)), (Some(0), Some(sha.as_str())), "the second try");

    let gone = release::fetch_input(&sha, &format!("file://{}/missing", dir.path().display()), &[]);
    let (status, _) = sh_fed(&release::fetch(&lay, "r3", 1).to_string(), gone.as_bytes());
    assert_eq!(status, Some(1));
    let left: Vec<_> = std::fs::read_dir(dir.path().join(".deploy/incoming")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A warm release takes the files its tarball leaves out from the current release only if
/// each is exactly as it was when that release was unpacked (its line in the host's own
/// listing): a file touched since then refuses the warm release (exit 3), copied or linked.
#[test]
fn a_warm_release_takes_only_files_unchanged_since_their_release_was_unpacked() {
    let dir = tempfile::tempdir().unwrap();
    let lay = Layout::new(dir.path().to_str().unwrap());
    // A tarball of `files` with the release's bookkeeping (a manifest and the links).
    let tarball = |name: &str, files: &[(&str, &str)], links: &[&str]| {
        let src = dir.path().join(name);
        std::fs::create_dir_all(src.join(release::META_DIR)).unwrap();
        for (path, text) in files {
            std::fs::write(src.join(path), text).unwrap();
        }
        std::fs::write(src.join(release::META_DIR).join("manifest"), "m\n").unwrap();
        let links: String = links.iter().map(|path| format!("./{path}\0")).collect();
        std::fs::write(src.join(release::META_DIR).join("links"), links).unwrap();
        Command::new("tar").args(["-czf", "-", "-C", src.to_str().unwrap(), "."]).output().unwrap().stdout
    };
    let release_in = |id: &str, bytes: &[u8], hard_links: bool| -> Option<i32> {
        let (status, _) = sh_fed(&release::receive(&lay, id).to_string(), bytes);
        assert_eq!(status, Some(0));
        sh_fed(&release::unpack(&lay, id, "c0ffee", hard_links).to_string(), b"").0
    };
    let full = tarball("full", &[("a.txt", "a\n"), ("b.txt", "b\n")], &[]);
    assert_eq!(release_in("r1", &full, false), Some(0));
    sh(&release::switch(&lay, "r1").to_string());

    let delta = tarball("delta", &[("c.txt", "c\n")], &["a.txt", "b.txt"]);
    for (id, hard_links) in [("r2", false), ("r3", true)] {
        assert_eq!(release_in(id, &delta, hard_links), Some(0), "{id}");
        for (path, text) in [("a.txt", "a\n"), ("b.txt", "b\n"), ("c.txt", "c\n")] {
            assert_eq!(std::fs::read_to_string(dir.path().join("releases").join(id).join(path)).unwrap(), text);
        }
    }

    // Touched on the server since r1 was unpacked (same content, a new time): refused.
    let b = dir.path().join("releases/r1/b.txt");
    let later = std::time::SystemTime::now() + Duration::from_secs(60);
    std::fs::File::options().write(true).open(&b).unwrap().set_modified(later).unwrap();
    for (id, hard_links) in [("r4", false), ("r5", true)] {
        assert_eq!(release_in(id, &delta, hard_links), Some(release::WARM_RELEASE_REFUSED), "{id}");
    }
}
