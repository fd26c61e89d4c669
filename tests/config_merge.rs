//! Precedence: recipe < Deploy.toml < stage override, key by key; `${VAR}` expansion.

use deploy::config::{self, Balancer, BatchSize, HealthFrom};
use std::path::Path;
use std::time::Duration;

const TEXT: &str = r#"
[app]
name = "shop"
recipe = "symfony"
path = "/var/www/shop"

[hooks]
activate = ["sudo systemctl reload php8.3-fpm"]

[health]
url = "http://{address}:8080/health"
retries = 7

[rolling]
batch = 2
drain_timeout = "45s"

[ssh]
user = "${DEPLOY_USER}"

[balancer]
kind = "varnish"
host = "lb"
admin = "127.0.0.1:6082"

[stages.production]
hosts = [
  { name = "web1", address = "10.0.0.11", roles = ["app", "migrate"] },
  { name = "web2", address = "10.0.0.12", roles = ["app"] },
  { name = "web3", address = "10.0.0.13", roles = ["app"] },
  { name = "lb", address = "10.0.0.2", roles = ["balancer"] },
]

[stages.staging]
revision = "develop"
hosts = [
  { name = "s1", address = "10.0.1.11", roles = ["app", "migrate"] },
  { name = "lb", address = "10.0.1.2", roles = ["balancer"] },
]

[stages.staging.app]
path = "/var/www/shop-staging"

[stages.staging.rolling]
batch = "100%"
min_in_service = 0

[stages.staging.health]
from = "local"

[stages.staging.balancer]
kind = "haproxy"
host = "lb"
"#;

fn load(stage: &str) -> config::StageConfig {
    let env = |k: &str| (k == "DEPLOY_USER").then(|| "deployer".to_string());
    match config::parse("Deploy.toml", TEXT, Path::new("/src/shop"), stage, &env) {
        Ok(c) => c.stage,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn file_wins_over_recipe_key_by_key() {
    let p = load("production");
    // From the recipe, untouched by the file:
    assert_eq!(p.shared.files, [".env.local"]);
    assert_eq!(p.hooks.prepare.len(), 2);
    assert!(p.hooks.migrate.as_deref().unwrap().contains("doctrine:migrations:migrate"));
    assert!(p.build.commands[0].contains("APP_ENV=prod composer install"));
    // Replaced by the file (arrays replace whole):
    assert_eq!(p.hooks.activate, ["sudo systemctl reload php8.3-fpm"]);
    assert_eq!(p.health.url.as_deref(), Some("http://{address}:8080/health"));
    assert_eq!(p.health.retries, 7);
    assert_eq!(p.rolling.batch, BatchSize::Count(2));
    assert_eq!(p.rolling.drain_timeout, Duration::from_secs(45));
    assert_eq!(p.rolling.min_in_service, 1, "default with a balancer and 3 app hosts");
    assert_eq!(p.ssh.user.as_deref(), Some("deployer"));
    assert_eq!(p.app.repository, Path::new("/src/shop"));
    assert!(matches!(p.balancer, Balancer::Varnish { .. }));
}

#[test]
fn stage_wins_over_file_key_by_key() {
    let s = load("staging");
    assert_eq!(s.app.path, "/var/www/shop-staging");
    assert_eq!(s.app.name, "shop", "inherited next to the overridden path");
    assert_eq!(s.app.revision.as_deref(), Some("develop"));
    assert_eq!(s.rolling.batch, BatchSize::Percent(100));
    assert_eq!(s.rolling.min_in_service, 0);
    assert_eq!(s.rolling.drain_timeout, Duration::from_secs(45), "inherited from the file");
    assert_eq!(s.health.from, HealthFrom::Local);
    assert_eq!(s.health.retries, 7, "inherited from the file");
    // A different balancer kind replaces the table whole: no varnish `admin` leaks into haproxy.
    match s.balancer {
        Balancer::Haproxy { host, socket, backend, .. } => {
            assert_eq!((host.as_str(), socket.as_str(), backend.as_str()), ("lb", "/run/haproxy/admin.sock", "app"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn literal_dollar_brace_and_plain_dollars() {
    let text = TEXT.replace(
        "activate = [\"sudo systemctl reload php8.3-fpm\"]",
        "activate = [\"echo $${HOME} $HOME $(date) ${DEPLOY_USER}\"]",
    );
    let env = |k: &str| (k == "DEPLOY_USER").then(|| "deployer".to_string());
    let c = config::parse("Deploy.toml", &text, Path::new("/x"), "production", &env).unwrap();
    // Shell code keeps `${VAR}` for the host's shell, which gets VAR in its environment.
    assert_eq!(c.stage.hooks.activate, ["echo ${HOME} $HOME $(date) ${DEPLOY_USER}"]);
    assert_eq!(c.exports, [("DEPLOY_USER".to_string(), "deployer".to_string())]);
    assert_eq!(c.redact("user deployer"), "user ${DEPLOY_USER}");
}

#[test]
fn every_recipe_is_valid_on_its_own() {
    for name in config::recipes::names() {
        let text = format!(
            "[app]\nname = \"a\"\nrecipe = \"{name}\"\npath = \"/srv/a\"\n[stages.production]\nhosts = [{{ name = \"w\", address = \"10.0.0.1\", roles = [\"app\", \"migrate\"] }}]\n"
        );
        let c = config::parse("Deploy.toml", &text, Path::new("/x"), "production", &|_| None);
        assert!(c.is_ok(), "recipe {name}: {}", c.unwrap_err());
    }
}

/// A Varnish cache on the Varnish balancer's host is the same varnishd: it takes the
/// balancer's `admin` and `secret` unless it sets its own (before, the ban went to the
/// defaults and failed with only a warning).
#[test]
fn a_varnish_cache_on_the_balancer_host_uses_its_admin_and_secret() {
    let text = |cache: &str| {
        format!(
            r#"
[app]
name = "shop"
path = "/srv/shop"

[stages.p]
hosts = [{{ name = "web1", address = "10.0.0.11", roles = ["app"] }}, {{ name = "lb1", address = "10.0.0.2", roles = ["balancer"] }}]

[stages.p.balancer]
kind = "varnish"
host = "lb1"
admin = "127.0.0.1:6083"
secret = "/etc/varnish/other-secret"

[[stages.p.http_cache]]
kind = "varnish"
host = "lb1"
{cache}
"#
        )
    };
    let env = |_: &str| None;
    let caches =
        |cache: &str| config::parse("Deploy.toml", &text(cache), Path::new("/x"), "p", &env).unwrap().stage.http_cache;
    match &caches("")[0] {
        config::HttpCache::Varnish { admin, secret, .. } => {
            assert_eq!((admin.as_str(), secret.as_str()), ("127.0.0.1:6083", "/etc/varnish/other-secret"));
        }
        other => panic!("{other:?}"),
    }
    match &caches("admin = \"127.0.0.1:7000\"\nsecret = \"/etc/mine\"")[0] {
        config::HttpCache::Varnish { admin, secret, .. } => {
            assert_eq!((admin.as_str(), secret.as_str()), ("127.0.0.1:7000", "/etc/mine"), "its own win");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn variables_merge_recipe_file_stage_and_land_in_hooks() {
    let text = r#"
[app]
name = "shop"
recipe = "symfony"
path = "/var/www/shop"

[vars]
php_service = "php8.2-fpm"

[stages.production]
hosts = [{ name = "web1", address = "10.0.0.11", roles = ["app", "migrate"] }]

[stages.staging]
hosts = [{ name = "s1", address = "10.0.1.11", roles = ["app", "migrate"] }]

[stages.staging.vars]
reload = "apache2ctl -k graceful"
console = "php8.3 bin/console"
"#;
    let env = |_: &str| None;
    let load = |stage: &str| match config::parse("Deploy.toml", text, Path::new("/src/shop"), stage, &env) {
        Ok(c) => c.stage,
        Err(e) => panic!("{e}"),
    };
    let production = load("production");
    // The recipe's reload, with the file's service name, and nothing left unsubstituted.
    let activate = &production.hooks.activate[0];
    assert!(
        activate.contains("; $([ \"$(id -u)\" = 0 ] || echo sudo -n) service php8.2-fpm reload || exit;"),
        "{activate}"
    );
    assert!(activate.contains("-x php8.2-fpm -P"), "php_process defaults to php_service: {activate}");
    assert!(!activate.contains("{{"), "{activate}");
    assert_eq!(production.hooks.prepare[0], "php bin/console cache:clear --no-warmup --no-interaction");
    // The stage's own reload and console win over the file and the recipe.
    let staging = load("staging");
    assert!(staging.hooks.activate[0].contains("; apache2ctl -k graceful || exit;"), "{:?}", staging.hooks.activate);
    assert_eq!(staging.hooks.prepare[1], "php8.3 bin/console cache:warmup --no-interaction");
    assert!(staging.hooks.migrate.as_deref().unwrap().starts_with("php8.3 bin/console doctrine:migrations:migrate"));
}

#[test]
fn a_variable_holding_an_environment_value_stays_private_in_shell_code() {
    let text = r#"
[app]
name = "shop"
path = "/var/www/shop"

[vars]
purge = 'curl -H "X-Token: ${PURGE_TOKEN}" http://localhost/purge'
go_template = "unused"

[hooks]
activate = ["{{purge}}", "docker ps --format '{{.Names}}'"]

[stages.production]
hosts = [{ name = "web1", address = "10.0.0.11", roles = ["app"] }]
"#;
    let env = |key: &str| (key == "PURGE_TOKEN").then(|| "s3cr3t-value".to_string());
    let cfg = config::parse("Deploy.toml", text, Path::new("/src/shop"), "production", &env)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(cfg.stage.hooks.activate[0], "curl -H \"X-Token: ${PURGE_TOKEN}\" http://localhost/purge");
    assert_eq!(cfg.stage.hooks.activate[1], "docker ps --format '{{.Names}}'", "not a variable name: left alone");
    assert_eq!(cfg.exports, [("PURGE_TOKEN".to_string(), "s3cr3t-value".to_string())]);
}

#[test]
fn health_headers_are_read_checked_and_filled_per_host() {
    let text = |headers: &str| {
        format!(
            "[app]\nname = \"shop\"\npath = \"/var/www/shop\"\n\n[health]\nurl = \"http://{{address}}/\"\nheaders = {headers}\n\n[stages.production]\nhosts = [{{ name = \"web1\", address = \"10.0.0.11\", roles = [\"app\"] }}]\n"
        )
    };
    let env = |_: &str| None;
    let cfg = config::parse(
        "Deploy.toml",
        &text("{ Host = \"shop.example.com\", X-Backend = \"{host}\" }"),
        Path::new("/src"),
        "production",
        &env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let host = &cfg.stage.hosts[0];
    assert_eq!(
        cfg.stage.health.headers_for(host),
        [("Host".to_string(), "shop.example.com".to_string()), ("X-Backend".to_string(), "web1".to_string())]
    );
    for (bad, says) in
        [("{ \"Host Name\" = \"x\" }", "is not an HTTP header name"), ("{ Host = \"a\\nb\" }", "spans lines")]
    {
        let err =
            config::parse("Deploy.toml", &text(bad), Path::new("/src"), "production", &env).unwrap_err().to_string();
        assert!(err.contains(says) && err.contains("health.headers"), "{bad}: {err}");
    }
}
