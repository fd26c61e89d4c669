//! Nothing from outside makes deploy panic: the config loader on any text, and every parser
//! of what a host or a balancer prints, on arbitrary text (non-ASCII, control characters)
//! and on real outputs cut short or with a character changed.

use deploy::balancer::Reading;
use deploy::remote::{health, journal, lock, release};
use proptest::prelude::*;
use std::path::Path;

const SAMPLES: &[&str] = &[
    "releases/20261126T051944Z-1a2b3c4\n",
    "20261125T051944Z-aaaaaaa\n20261126T051944Z-bbbbbbb\nlost+found\n",
    "{\"kind\":\"deploy\",\"release\":\"20261126T051944Z-1a2b3c4\",\"commit\":\"1a2b3c4d\",\"stage\":\"production\",\"who\":\"é@ü\",\"when\":\"2026-11-26T05:19:44Z\",\"outcome\":\"success\"}\n",
    "{\"stage\":\"production\",\"host\":\"web1\",\"release\":\"20261126T051944Z-1a2b3c4\",\"state\":\"switching\"}",
    "{\"user\":\"alice\",\"machine\":\"laptop\",\"pid\":4242,\"stage\":\"production\",\"started\":\"2026-11-26T05:19:44Z\"}\n",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  /srv/x.tar.gz\n",
    "200",
    "17\n",
    "{\"path\":\"src/Kernel.php\",\"mode\":420,\"size\":5,\"sha256\":\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}\n",
    "12 5 1700000000 644 0 0 ./a b.php\u{0}13 0 1 755 33 33 ./src/x\u{0}",
    "Backend name                   Admin      Probe    Health     Last change\n\
boot.web1                      probe      5/5      healthy    Mon, 30 Nov 2026 21:00:00 GMT\n\
boot.web2                      sick       0/5      sick       Mon, 30 Nov 2026 21:00:01 GMT\n",
    "VBE.boot.web1.conn 3 . Concurrent connections used\nVBE.reload_2.web1.conn 1 . x\n",
    "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\n\
app,web1,0,0,3,5,,10,0,0,,0,,0,0,0,0,DRAIN\napp,web2,0,0,0,5,,10,0,0,,0,,0,0,0,0,UP\n",
];

fn damaged() -> impl Strategy<Value = String> {
    (prop::sample::select(SAMPLES.to_vec()), any::<prop::sample::Index>(), any::<char>(), any::<bool>()).prop_map(
        |(text, at, other, cut)| {
            let chars: Vec<char> = text.chars().collect();
            let at = at.index(chars.len());
            if cut {
                chars[..at].iter().collect()
            } else {
                let mut changed = chars;
                changed[at] = other;
                changed.into_iter().collect()
            }
        },
    )
}

fn parse_all(text: &str) {
    let _ = release::current_release(text);
    let _ = release::release_ids(text);
    let _ = release::parse_log(text);
    let _ = release::received_sha256(text);
    let _ = journal::parse(text);
    let _ = lock::lease_age(text);
    let _ = lock::holder_owner(text);
    let _ = lock::describe_owner(text);
    let _ = lock::owner_process(text);
    let _ = health::http_status(text);
    let _ = deploy::artifact::parse_manifest(text);
    let _ = deploy::artifact::parse_listing(text);
    let _ = deploy::config::ban::words(text);
    let _ = deploy::config::ban::problem(text);
    let names = ["web1".to_string(), "web2".to_string(), String::new()];
    let haproxy = Reading::HaproxyStat { backend: "app".into(), server: "web1".into() };
    for reading in [Reading::VarnishStat, Reading::VarnishBackendList, haproxy, Reading::Number, Reading::ExitStatus] {
        let _ = reading.in_flight(text);
        let _ = reading.probe_passes(text);
        let _ = reading.in_service(text);
        let _ = reading.count_in_service(text, &names);
    }
}

/// A valid config to damage.
const CONFIG: &str = r#"
[app]
name = "shop"
path = "/srv/shop"

[hooks]
prepare = ["echo ${HOME}"]

[stages.production]
hosts = [{ name = "web1", address = "10.0.0.11", roles = ["app", "migrate"] }]

[stages.production.balancer]
kind = "haproxy"
host = "web1"
backend = "app"

[[stages.production.http_cache]]
kind = "varnish"
host = "web1"
bans = ['req.url ~ "^/a b"']
"#;

fn config_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        (any::<prop::sample::Index>(), any::<String>()).prop_map(|(at, inserted)| {
            let chars: Vec<char> = CONFIG.chars().collect();
            let at = at.index(chars.len());
            let mut text: String = chars[..at].iter().collect();
            text.push_str(&inserted);
            text.extend(&chars[at..]);
            text
        }),
        any::<prop::sample::Index>().prop_map(|at| CONFIG.chars().take(at.index(CONFIG.len())).collect()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic_on_any_text(text in any::<String>()) {
        parse_all(&text);
    }

    #[test]
    fn parsers_never_panic_on_damaged_output(text in damaged()) {
        parse_all(&text);
    }

    #[test]
    fn the_config_loader_answers_anything_with_a_config_or_errors(text in config_text()) {
        let env = |name: &str| (name == "HOME").then(|| "/home/x".to_string());
        let _ = deploy::config::parse("Deploy.toml", &text, Path::new("/x"), "production", &env);
    }
}

/// Non-ASCII text in a host's release log is read, not a crash (a `who` of `é@ü`).
#[test]
fn a_release_log_with_non_ascii_text_is_read() {
    let entries = release::parse_log(SAMPLES[2]);
    assert_eq!(entries.len(), 1);
}

/// A machine without CA certificates: requests fail with a reason, nothing panics.
#[test]
fn no_ca_certificates_is_an_error_not_a_panic() {
    // nextest runs each test in a process of its own: changing the environment is safe here.
    unsafe {
        std::env::set_var("SSL_CERT_FILE", "/nonexistent/ca.pem");
        std::env::set_var("SSL_CERT_DIR", "/nonexistent");
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = deploy::transport::Http::new();
    let request = deploy::transport::Request {
        method: "GET",
        url: "https://127.0.0.1:1/health",
        headers: &[],
        timeout: std::time::Duration::from_secs(2),
    };
    let sent = rt.block_on(http.send(request));
    assert!(sent.is_err(), "{sent:?}");
}
