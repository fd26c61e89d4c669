//! Malformed configs: each must exit 2 with `file:line:col`, the key path and what is wrong,
//! and must neither connect to any host nor run any program.
//!
//! The expected location of each error is marked in the case's text with `«` (removed
//! before the file is written), so the line and column asserted are exactly where the
//! offending token stands.

use crate::support::*;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::Path;

const BASE: &str = r#"[app]
name = "shop"
path = "/var/www/shop"
keep_releases = 3

[build]
commands = ["make assets"]
exclude = ["tests/"]

[shared]
dirs = ["var/log"]
files = [".env.local"]

[hooks]
prepare = ["php bin/console cache:warmup"]
activate = ["php bin/console cache:clear"]
migrate = "php bin/console doctrine:migrations:migrate"

[hooks.worker]
activate = ["php bin/console messenger:stop-workers"]

[health]
url = "http://{address}:8080/health"
timeout = "5s"
expect_status = 200
retries = 10

[rolling]
batch = 1
drain_timeout = "10s"

[ssh]
user = "deploy"
port = @PORT@

[stages.production]
hosts = [
  { name = "web1", address = "127.0.0.1", roles = ["app", "migrate"] },
  { name = "web2", address = "127.0.0.2", roles = ["app"] },
  { name = "web3", address = "127.0.0.3", roles = ["app"] },
  { name = "lb1", address = "127.0.0.4", roles = ["balancer"] },
]

[stages.production.balancer]
kind = "varnish"
host = "lb1"
admin = "127.0.0.1:6082"

[[stages.production.http_cache]]
kind = "varnish"
host = "lb1"
bans = ["req.url ~ ."]
"#;

struct Case {
    name: &'static str,
    /// (text in BASE, replacement); the replacement holds the `«` marker.
    edits: &'static [(&'static str, &'static str)],
    key: &'static str,
    says: &'static str,
}

const fn case(
    name: &'static str,
    edits: &'static [(&'static str, &'static str)],
    key: &'static str,
    says: &'static str,
) -> Case {
    Case { name, edits, key, says }
}

const HOSTS: &str = "  { name = \"web1\", address = \"127.0.0.1\", roles = [\"app\", \"migrate\"] },";
const WEB2: &str = "  { name = \"web2\", address = \"127.0.0.2\", roles = [\"app\"] },";
const LB1: &str = "  { name = \"lb1\", address = \"127.0.0.4\", roles = [\"balancer\"] },";

const CASES: &[Case] = &[
    case(
        "artifact store: a bucket S3 cannot have",
        &[("[shared]\n", "[artifact]\nstore = «\"s3://Bad_Bucket/x\"\n\n[shared]\n")],
        "artifact.store",
        "`Bad_Bucket` is not an S3 bucket name",
    ),
    case(
        "artifact store: a password in the URL",
        &[("[shared]\n", "[artifact]\nstore = «\"https://me:pw@store.example/x/\"\n\n[shared]\n")],
        "artifact.store",
        "a store URL may not hold a user or password",
    ),
    case(
        "artifact store: no such kind of store",
        &[("[shared]\n", "[artifact]\nstore = «\"ftp://store.example/x/\"\n\n[shared]\n")],
        "artifact.store",
        "`ftp://store.example/x/` is not a store",
    ),
    case(
        "artifact store: headers for S3",
        &[("[shared]\n", "[artifact]\nstore = \"s3://releases/x\"\nheaders = «{ A = \"b\" }\n\n[shared]\n")],
        "artifact.headers",
        "`headers` is for an HTTP store",
    ),
    case(
        "artifact store: a region for an HTTP store",
        &[("[shared]\n", "[artifact]\nstore = \"https://store.example/x/\"\nregion = «\"eu-west-3\"\n\n[shared]\n")],
        "artifact.region",
        "`region` is for an S3 store",
    ),
    case(
        "artifact store: tries without a store",
        &[("[shared]\n", "[artifact]\ntries = «5\n\n[shared]\n")],
        "artifact.tries",
        "`tries` is set but `store` is not",
    ),
    case(
        "artifact store: URLs valid for longer than S3 allows",
        &[("[shared]\n", "[artifact]\nstore = \"s3://releases/x\"\nexpires = «\"200h\"\n\n[shared]\n")],
        "artifact.expires",
        "a presigned URL lasts at most 7 days",
    ),
    case(
        "unknown variable in a hook",
        &[(
            "prepare = [\"php bin/console cache:warmup\"]",
            "prepare = [«\"{{consol}} cache:warmup\"]\n[vars]\nconsole = \"php bin/console\"\n[hooks.x]",
        )],
        "hooks.prepare[0]",
        "did you mean `{{console}}`?",
    ),
    case(
        "variables in a loop",
        &[("[app]\n", "[vars]\na = «\"{{b}}\"\nb = \"{{a}}\"\n[app]\n"), ("cache:warmup\"]", "{{a}}\"]")],
        "vars.a",
        "variables refer to each other in a loop",
    ),
    case(
        "a variable that is not text",
        &[("[app]\n", "[vars]\nsvc = «3\n[app]\n")],
        "vars.svc",
        "expected a string, found",
    ),
    case(
        "a setup template for a file that is not shared",
        &[("[ssh]\n", "[setup]\ntemplates = { «\".env\" = \"env.dist\" }\n[ssh]\n")],
        "setup.templates",
        "`.env` is not a shared file",
    ),
    case(
        "a web user that is not a user name",
        &[("[ssh]\n", "[setup]\nweb_user = «\"www data\"\n[ssh]\n")],
        "setup.web_user",
        "`www data` is not a user name",
    ),
    case(
        "a writable path out of the release",
        &[("[ssh]\n", "[setup]\nwritable = [«\"../var\"]\n[ssh]\n")],
        "setup.writable",
        "writable path `../var` escapes the release",
    ),
    case("unknown top-level key", &[("[app]\n", "«colour = \"red\"\n[app]\n")], "colour", "unknown key `colour`"),
    case(
        "typo in app key",
        &[("keep_releases = 3", "«keep_release = 3")],
        "app.keep_release",
        "did you mean `keep_releases`?",
    ),
    case(
        "unknown stage key",
        &[("[stages.production]\n", "[stages.production]\n«host = \"x\"\n")],
        "stages.production.host",
        "did you mean `hosts`?",
    ),
    case(
        "unknown host key",
        &[(WEB2, "  { name = \"web2\", «adress = \"127.0.0.2\", roles = [\"app\"] },")],
        "stages.production.hosts[1].adress",
        "did you mean `address`?",
    ),
    case(
        "unknown balancer key",
        &[("admin = \"127.0.0.1:6082\"", "«admn = \"127.0.0.1:6082\"")],
        "stages.production.balancer.admn",
        "did you mean `admin`?",
    ),
    case(
        "unknown http_cache key",
        &[("bans = [", "«banz = [")],
        "stages.production.http_cache[0].banz",
        "did you mean `bans`?",
    ),
    case(
        "unknown worker hook key",
        &[("activate = [\"php bin/console messenger", "«activte = [\"php bin/console messenger")],
        "hooks.worker.activte",
        "did you mean `activate`?",
    ),
    case("unknown ssh key", &[("user = \"deploy\"", "«usr = \"deploy\"")], "ssh.usr", "did you mean `user`?"),
    case("name is a number", &[("name = \"shop\"", "name = «42")], "app.name", "expected a string, found an integer"),
    case("invalid app name", &[("name = \"shop\"", "name = «\"my shop\"")], "app.name", "not a valid app name"),
    case(
        "keep_releases is a string",
        &[("keep_releases = 3", "keep_releases = «\"3\"")],
        "app.keep_releases",
        "expected an integer, found a string",
    ),
    case(
        "keep_releases is zero",
        &[("keep_releases = 3", "keep_releases = «0")],
        "app.keep_releases",
        "from 1 to 1000, found 0",
    ),
    case(
        "relative deploy path",
        &[("path = \"/var/www/shop\"", "path = «\"var/www/shop\"")],
        "app.path",
        "is relative",
    ),
    case(
        "deploy path with ..",
        &[("path = \"/var/www/shop\"", "path = «\"/var/www/../shop\"")],
        "app.path",
        "plain absolute folder",
    ),
    case(
        "deploy path missing",
        &[("[app]\nname", "«[app]\nname"), ("path = \"/var/www/shop\"\n", "")],
        "app.path",
        "missing key `path`",
    ),
    case(
        "unknown recipe",
        &[("name = \"shop\"", "name = \"shop\"\nrecipe = «\"symfoni\"")],
        "app.recipe",
        "did you mean `symfony`? known recipes: symfony, laravel, rails, django, node, static",
    ),
    case(
        "build commands is a string",
        &[("commands = [\"make assets\"]", "commands = «\"make assets\"")],
        "build.commands",
        "expected an array of strings, found a string",
    ),
    case(
        "empty build command",
        &[("commands = [\"make assets\"]", "commands = [«\"  \"]")],
        "build.commands",
        "empty command",
    ),
    case(
        "exclude escapes the repo",
        &[("exclude = [\"tests/\"]", "exclude = [«\"../secrets\"]")],
        "build.exclude",
        "without `..`",
    ),
    case(
        "shared dir escapes the release",
        &[("dirs = [\"var/log\"]", "dirs = [«\"../../etc\"]")],
        "shared.dirs",
        "escapes the release",
    ),
    case(
        "shared file is absolute",
        &[("files = [\".env.local\"]", "files = [«\"/etc/passwd\"]")],
        "shared.files",
        "is absolute",
    ),
    case(
        "prepare is not an array",
        &[("prepare = [\"php bin/console cache:warmup\"]", "prepare = «\"php bin/console cache:warmup\"")],
        "hooks.prepare",
        "expected an array of strings",
    ),
    case(
        "migrate without a migrate host",
        &[
            (HOSTS, "  { name = \"web1\", address = \"127.0.0.1\", roles = [\"app\"] },"),
            ("migrate = \"php", "migrate = «\"php"),
        ],
        "hooks.migrate",
        "no host of stage `production` has the role `migrate`",
    ),
    case(
        "migrate role on a host without a release",
        &[
            (HOSTS, "  { name = \"web1\", address = \"127.0.0.1\", roles = [\"app\"] },"),
            (LB1, "  { name = \"lb1\", address = \"127.0.0.4\", roles = «[\"balancer\", \"migrate\"] },"),
        ],
        "stages.production.hosts[3].roles",
        "gets no release",
    ),
    case(
        "health url is not http",
        &[("url = \"http://{address}:8080/health\"", "url = «\"{address}:8080/health\"")],
        "health.url",
        "not an http(s) URL",
    ),
    case(
        "health from is unknown",
        &[("[health]\n", "[health]\nfrom = «\"remote\"\n")],
        "health.from",
        "expected \"host\" or \"local\"",
    ),
    case(
        "expect_status out of range",
        &[("expect_status = 200", "expect_status = «99")],
        "health.expect_status",
        "from 100 to 599, found 99",
    ),
    case(
        "timeout without unit",
        &[("timeout = \"5s\"", "timeout = «\"5\"")],
        "health.timeout",
        "`5` is not a duration",
    ),
    case(
        "timeout is a number",
        &[("timeout = \"5s\"", "timeout = «5")],
        "health.timeout",
        "expected a duration string",
    ),
    case("retries is zero", &[("retries = 10", "retries = «0")], "health.retries", "found 0"),
    case("batch of zero", &[("batch = 1", "batch = «0")], "rolling.batch", "a batch of 0 hosts"),
    case("batch over 100%", &[("batch = 1", "batch = «\"150%\"")], "rolling.batch", "over 100%"),
    case("batch is nonsense", &[("batch = 1", "batch = «\"half\"")], "rolling.batch", "not a batch size"),
    case("batch is a float", &[("batch = 1", "batch = «1.5")], "rolling.batch", "found a float"),
    case(
        "min_in_service makes rolling impossible",
        &[("batch = 1", "batch = 1\nmin_in_service = «3")],
        "rolling.min_in_service",
        "only 2 stay in service",
    ),
    case(
        "batch leaves nobody in service",
        &[("batch = 1", "batch = «\"100%\"")],
        "rolling.batch",
        "only 0 stay in service",
    ),
    case(
        "min_in_service over the host count",
        &[("batch = 1", "batch = 1\nmin_in_service = «5")],
        "rolling.min_in_service",
        "more than the 3 app hosts",
    ),
    case(
        "drain_timeout unit",
        &[("drain_timeout = \"10s\"", "drain_timeout = «\"10 seconds\"")],
        "rolling.drain_timeout",
        "not a duration",
    ),
    case("ssh port out of range", &[("port = @PORT@", "port = «70000")], "ssh.port", "from 1 to 65535"),
    case(
        "empty host list",
        &[
            ("hosts = [\n", "hosts = «[\n"),
            (HOSTS, ""),
            (WEB2, ""),
            ("  { name = \"web3\", address = \"127.0.0.3\", roles = [\"app\"] },", ""),
            (LB1, ""),
        ],
        "stages.production.hosts",
        "the host list is empty",
    ),
    case(
        "duplicate host name",
        &[(WEB2, "  { name = «\"web1\", address = \"127.0.0.2\", roles = [\"app\"] },")],
        "stages.production.hosts[1].name",
        "duplicate host name `web1`",
    ),
    case(
        "duplicate address",
        &[(WEB2, "  { name = \"web2\", address = «\"127.0.0.1\", roles = [\"app\"] },")],
        "stages.production.hosts[1].address",
        "same address",
    ),
    case(
        "no app host",
        &[
            ("hosts = [\n", "hosts = «[\n"),
            ("roles = [\"app\", \"migrate\"]", "roles = [\"worker\", \"migrate\"]"),
            ("roles = [\"app\"] },\n  { name = \"web3\"", "roles = [\"worker\"] },\n  { name = \"web3\""),
            ("127.0.0.3\", roles = [\"app\"]", "127.0.0.3\", roles = [\"worker\"]"),
        ],
        "stages.production.hosts",
        "no host has the role `app`",
    ),
    case(
        "unknown role",
        &[(WEB2, "  { name = \"web2\", address = \"127.0.0.2\", roles = [«\"ap\"] },")],
        "stages.production.hosts[1].roles[0]",
        "did you mean `app`?",
    ),
    case(
        "no roles",
        &[(WEB2, "  { name = \"web2\", address = \"127.0.0.2\", roles = «[] },")],
        "stages.production.hosts[1].roles",
        "at least one role",
    ),
    case(
        "host without address",
        &[(WEB2, "  «{ name = \"web2\", roles = [\"app\"] },")],
        "stages.production.hosts[1].address",
        "missing key `address`",
    ),
    case(
        "invalid host name",
        &[(WEB2, "  { name = «\"web 2\", address = \"127.0.0.2\", roles = [\"app\"] },")],
        "stages.production.hosts[1].name",
        "not a valid host name",
    ),
    case(
        "balancer host not defined",
        &[("kind = \"varnish\"\nhost = \"lb1\"\nadmin", "kind = \"varnish\"\nhost = «\"lb2\"\nadmin")],
        "stages.production.balancer.host",
        "did you mean `lb1`?",
    ),
    case(
        "unknown balancer kind",
        &[("kind = \"varnish\"\nhost = \"lb1\"\nadmin", "kind = «\"nginx\"\nhost = \"lb1\"\nadmin")],
        "stages.production.balancer.kind",
        "kinds are varnish, haproxy, command, none",
    ),
    case(
        "backend mapping names an unknown host",
        &[("admin = \"127.0.0.1:6082\"", "admin = \"127.0.0.1:6082\"\nbackends = { «web9 = \"web9\" }")],
        "stages.production.balancer.backends.web9",
        "not a host of stage `production`",
    ),
    case(
        "varnish admin is not host:port",
        &[("admin = \"127.0.0.1:6082\"", "admin = «\"127.0.0.1\"")],
        "stages.production.balancer.admin",
        "not HOST:PORT",
    ),
    case(
        "haproxy socket is relative",
        &[(
            "kind = \"varnish\"\nhost = \"lb1\"\nadmin = \"127.0.0.1:6082\"",
            "kind = \"haproxy\"\nhost = \"lb1\"\nsocket = «\"admin.sock\"",
        )],
        "stages.production.balancer.socket",
        "absolute path",
    ),
    case(
        "haproxy socket carries socat options",
        &[(
            "kind = \"varnish\"\nhost = \"lb1\"\nadmin = \"127.0.0.1:6082\"",
            "kind = \"haproxy\"\nhost = \"lb1\"\nsocket = «\"/run/haproxy.sock,unlink-early\"",
        )],
        "stages.production.balancer.socket",
        "cannot hold `,` or `!`",
    ),
    case(
        "address starting with -",
        &[("address = \"127.0.0.2\"", "address = «\"-oProxyCommand=touch /tmp/x\"")],
        "stages.production.hosts[1].address",
        "a leading `-` would be read as an option",
    ),
    case(
        "address with a scheme",
        &[("address = \"127.0.0.2\"", "address = «\"http://127.0.0.2\"")],
        "stages.production.hosts[1].address",
        "without a scheme",
    ),
    case(
        "address with a user",
        &[("address = \"127.0.0.2\"", "address = «\"deploy@127.0.0.2\"")],
        "stages.production.hosts[1].address",
        "the ssh user goes in",
    ),
    case(
        "address with a port",
        &[("address = \"127.0.0.2\"", "address = «\"127.0.0.2:2222\"")],
        "stages.production.hosts[1].address",
        "the ssh port goes in the host's `port = 2222`",
    ),
    case(
        "address that is a network",
        &[("address = \"127.0.0.2\"", "address = «\"127.0.0.0/24\"")],
        "stages.production.hosts[1].address",
        "not a network",
    ),
    case(
        "command balancer without drain",
        &[(
            "[stages.production.balancer]\nkind = \"varnish\"\nhost = \"lb1\"\nadmin = \"127.0.0.1:6082\"",
            "«[stages.production.balancer]\nkind = \"command\"\nundrain = \"lb undrain {backend}\"",
        )],
        "stages.production.balancer.drain",
        "missing key `drain`",
    ),
    case(
        "http_cache host not defined",
        &[("kind = \"varnish\"\nhost = \"lb1\"\nbans", "kind = \"varnish\"\nhost = «\"cache9\"\nbans")],
        "stages.production.http_cache[0].host",
        "not a host of stage `production`",
    ),
    case(
        "http_cache url is not http",
        &[("kind = \"varnish\"\nhost = \"lb1\"\nbans = [\"req.url ~ .\"]", "kind = \"http\"\nurl = «\"ftp://cache/\"")],
        "stages.production.http_cache[0].url",
        "not an http(s) URL",
    ),
    case(
        "stage named like a command",
        &[(
            "[stages.production]\n",
            "[stages.«rollback]\nhosts = [{ name = \"w\", address = \"127.0.0.9\", roles = [\"app\"] }]\n\n[stages.production]\n",
        )],
        "stages.rollback",
        "`deploy rollback` is a command",
    ),
    case(
        "confirm is not a boolean",
        &[("[stages.production]\n", "[stages.production]\nconfirm = «\"yes\"\n")],
        "stages.production.confirm",
        "expected true or false",
    ),
    case(
        "stage override: unknown key",
        &[("[stages.production.balancer]", "[stages.production.rolling]\n«bach = 2\n\n[stages.production.balancer]")],
        "stages.production.rolling.bach",
        "did you mean `batch`?",
    ),
    case(
        "stage override: wrong type",
        &[(
            "[stages.production.balancer]",
            "[stages.production.health]\nretries = «\"many\"\n\n[stages.production.balancer]",
        )],
        "stages.production.health.retries",
        "expected an integer",
    ),
    case(
        "missing environment variable",
        &[("user = \"deploy\"", "user = «\"${DEPLOY_TEST_SURELY_UNSET}\"")],
        "ssh.user",
        "environment variable `DEPLOY_TEST_SURELY_UNSET` is not set",
    ),
    case("unclosed variable", &[("user = \"deploy\"", "user = «\"${DEPLOY_USER\"")], "ssh.user", "unclosed `${`"),
    case(
        "no stages at all",
        &[
            ("[stages.production]\n", "[other]\n"),
            ("hosts = [\n", "hosts = [\n"),
            ("[stages.production.balancer]", "[other.balancer]"),
            ("[[stages.production.http_cache]]", "[[other.http_cache]]"),
            ("[app]\n", "«[app]\n"),
        ],
        "stages",
        "no `[stages.NAME]` table",
    ),
];

/// Location of the marker: 1-based line and column, and the text without it.
fn locate(text: &str) -> (usize, usize, String) {
    let at = text.find('«').expect("case has a « marker");
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..].chars().count() + 1;
    (line, col, text.replacen('«', "", 1))
}

/// Programs a deploy might run; each records that it ran.
fn trap_path(dir: &Path) -> String {
    let bin = dir.join("trap-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("executed.log");
    for p in [
        "ssh",
        "scp",
        "sftp",
        "rsync",
        "sh",
        "bash",
        "git",
        "tar",
        "curl",
        "varnishadm",
        "socat",
        "composer",
        "php",
        "npm",
    ] {
        let f = bin.join(p);
        std::fs::write(&f, format!("#!/bin/sh\necho \"{p} $*\" >> '{}'\nexit 99\n", log.display())).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default())
}

#[test]
fn base_config_is_valid() {
    let repo = git_repo(&[("README", "x")]);
    let text = BASE.replace("@PORT@", "2222");
    std::fs::write(repo.path().join("Deploy.toml"), text).unwrap();
    let o = deploy(repo.path(), &["plan", "production"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn malformed_configs_exit_2_with_location_and_key() {
    assert!(CASES.len() >= 40, "only {} cases", CASES.len());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let dir = tempfile::tempdir().unwrap();
    let path = trap_path(dir.path());
    let mut failures = Vec::new();
    for c in CASES {
        let mut text = BASE.to_string();
        for (from, to) in c.edits {
            assert!(text.contains(from), "case {:?}: BASE has no {from:?}", c.name);
            text = text.replacen(from, to, 1);
        }
        let (line, col, text) = locate(&text.replace("@PORT@", &port));
        let file = dir.path().join("Deploy.toml");
        std::fs::write(&file, &text).unwrap();
        let want_loc = format!("Deploy.toml:{line}:{col}");
        for args in [&["production"][..], &["plan", "production"]] {
            let o = deploy_env(dir.path(), args, &[("PATH", &path)]);
            let err = stderr(&o);
            // The error block that names the key must also carry the location and the text.
            let block = err
                .split("\nerror: ")
                .map(|b| b.trim_start_matches("error: "))
                .find(|b| b.starts_with(&format!("{}:", c.key)));
            let ok = o.status.code() == Some(2)
                && o.stdout.is_empty()
                && block.is_some_and(|b| b.contains(&want_loc) && b.contains(c.says));
            if !ok {
                failures.push(format!(
                    "case {:?} (deploy {}): want exit 2, `{}`, {want_loc}, {:?}; got exit {:?}:\n{err}",
                    c.name,
                    args.join(" "),
                    c.key,
                    c.says,
                    o.status.code()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n\n{}", failures.len(), CASES.len(), failures.join("\n"));
    // Nothing connected, nothing executed.
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("something connected to the hosts' ssh port: {other:?}"),
    }
    let log = dir.path().join("executed.log");
    assert!(!log.exists(), "programs ran: {}", std::fs::read_to_string(log).unwrap_or_default());
}

#[test]
fn toml_syntax_error_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Deploy.toml"), "[app]\nname = \"shop\npath = \"/x\"\n").unwrap();
    let o = deploy(dir.path(), &["plan", "production"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("invalid TOML"), "{err}");
    assert!(err.contains("Deploy.toml:2:"), "{err}");
}

#[test]
fn duplicate_toml_key_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Deploy.toml"), "[app]\nname = \"a\"\nname = \"b\"\n").unwrap();
    let o = deploy(dir.path(), &["plan", "production"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("Deploy.toml:3:1"), "{err}");
    assert!(err.contains("duplicate key"), "{err}");
}

#[test]
fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        BASE.replace("@PORT@", "22").replace("keep_releases = 3", "keep_release = 3").replace("batch = 1", "batch = 0");
    std::fs::write(dir.path().join("Deploy.toml"), text).unwrap();
    let o = deploy(dir.path(), &["plan", "production"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(err.contains("app.keep_release:") && err.contains("rolling.batch:"), "{err}");
    assert!(err.contains("2 problems in the config"), "{err}");
}
