//! Real stacks on the farm (issue 12): examples/knifedepot (Symfony 5.4 on Apache with
//! mod_php, and on nginx with php-fpm; PHP with `opcache.validate_timestamps=0`) and
//! examples/djangodepot (Django on Gunicorn behind nginx), each behind Varnish with one PostgreSQL for the farm, deployed by
//! their built-in recipes.
//!
//! A release that changes a template, code, a route and adds a column goes out under load
//! through Varnish while a shopper fills a cart, then is rolled back the same way: no
//! request fails, each host serves the new template and code right after its own switch
//! (its activate step) and not before, the cart keeps every item, the migration ran once.
//! The control: the same release with the recipe's activate step (the reload) switched off leaves every host
//! serving the old code from `current` pointing at the new one.

use crate::farm::http::Conn;
use crate::farm::load::Load;
use crate::farm::{Farm, Run, epoch, events, git};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// `http://ADDR[:PORT]` → `ADDR:PORT`.
fn socket_of(url: &str) -> String {
    let rest = url.trim_start_matches("http://").trim_end_matches('/');
    if rest.contains(':') { rest.to_string() } else { format!("{rest}:80") }
}

/// What a page says it is: its template's edition line and the code's `X-Code` header.
#[derive(Clone, Debug, PartialEq)]
struct Version {
    edition: String,
    code: String,
}

fn version(edition: u8) -> Version {
    Version { edition: format!("edition {edition}"), code: format!("code-{edition}") }
}

/// One request to one host: when it started and ended, and what it showed (or why not).
#[derive(Clone, Debug)]
struct Seen {
    start: f64,
    end: f64,
    got: Result<Version, String>,
}

fn look(addr: &str) -> Result<Version, String> {
    let mut conn = Conn::open(addr).map_err(|err| format!("connect: {err}"))?;
    let page = conn.get("/", &[]).map_err(|err| format!("GET /: {err}"))?;
    if page.status != 200 {
        return Err(format!("status {}", page.status));
    }
    let at = page.body.find("<p id=\"edition\">").ok_or("no edition line")?;
    let edition = page.body[at + 16..].split('<').next().unwrap_or("").to_string();
    let code = page.header("X-Code").ok_or("no X-Code header")?.to_string();
    Ok(Version { edition, code })
}

/// Each app host asked for `/` directly, over and over, while a deploy runs.
struct Watch {
    stop: Arc<AtomicBool>,
    threads: Vec<(String, JoinHandle<Vec<Seen>>)>,
}

impl Watch {
    fn start(farm: &Farm) -> Watch {
        let stop = Arc::new(AtomicBool::new(false));
        let urls: Vec<String> = farm.env["FARM_APP_URLS"].split_whitespace().map(String::from).collect();
        let threads = farm
            .hosts
            .iter()
            .zip(urls)
            .map(|((name, _), url)| {
                let (stop, addr) = (stop.clone(), socket_of(&url));
                let thread = std::thread::spawn(move || {
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) && seen.len() < 100_000 {
                        let start = now();
                        let got = look(&addr);
                        seen.push(Seen { start, end: now(), got });
                        std::thread::sleep(Duration::from_millis(15));
                    }
                    seen
                });
                (name.clone(), thread)
            })
            .collect();
        Watch { stop, threads }
    }

    fn stop(self) -> Vec<(String, Vec<Seen>)> {
        self.stop.store(true, Ordering::Relaxed);
        self.threads.into_iter().map(|(name, thread)| (name, thread.join().expect("watch thread"))).collect()
    }
}

/// When a host's `current` moved (the switch step began) and when its activate step ended.
fn switch_window(run: &Run, host: &str) -> (f64, f64) {
    let at = |name: &str| {
        let event = events(&run.events, name, Some(host));
        let event = event.first().unwrap_or_else(|| panic!("no {name} event for {host}"));
        (epoch(event["ts"].as_str().unwrap()), event["seconds"].as_f64().unwrap())
    };
    let (switched, took) = at("host_switched");
    (switched - took, at("host_activated").0)
}

/// Each host showed `old` until its switch began and `new` from the end of its activate step,
/// never a page mixing two releases, and no request to it failed.
fn assert_each_host_switched(run: &Run, seen: &[(String, Vec<Seen>)], old: &Version, new: &Version) {
    for (host, seen) in seen {
        let (switch, activated) = switch_window(run, host);
        let failed: Vec<&Seen> = seen.iter().filter(|s| s.got.is_err()).collect();
        assert!(failed.is_empty(), "{host}: requests failed during the deploy: {failed:?}");
        let before: Vec<&Version> = seen.iter().filter(|s| s.end < switch).map(|s| s.got.as_ref().unwrap()).collect();
        let after: Vec<&Version> =
            seen.iter().filter(|s| s.start > activated).map(|s| s.got.as_ref().unwrap()).collect();
        assert!(before.len() >= 3, "{host}: too few looks before its switch to tell ({})", before.len());
        assert!(after.len() >= 3, "{host}: too few looks after its activate step to tell ({})", after.len());
        assert!(before.iter().all(|v| *v == old), "{host} served the new release before its own switch: {before:?}");
        let stale: Vec<_> = after.iter().filter(|v| **v != new).collect();
        assert!(stale.is_empty(), "{host} still served {stale:?} after its activate step (expected {new:?})");
        for s in seen {
            let v = s.got.as_ref().unwrap();
            assert!(v == old || v == new, "{host} served a page mixing releases: {v:?}");
        }
    }
}

/// A shopper through Varnish: one session, one item added every 40 ms, each answer checked.
struct Shopper {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(u32, Vec<String>, String)>,
}

impl Shopper {
    fn start(varnish: &str, sku: &'static str, cookie: Option<String>, items: u32) -> Shopper {
        let stop = Arc::new(AtomicBool::new(false));
        let (flag, addr) = (stop.clone(), socket_of(varnish));
        let thread = std::thread::spawn(move || {
            let (mut items, mut problems, mut cookie) = (items, Vec::new(), cookie.unwrap_or_default());
            let mut conn: Option<Conn> = None;
            while !flag.load(Ordering::Relaxed) && items < 5_000 {
                let mut open = match conn.take() {
                    Some(open) => open,
                    None => match Conn::open(&addr) {
                        Ok(open) => open,
                        Err(err) => {
                            problems.push(format!("connect: {err}"));
                            std::thread::sleep(Duration::from_millis(40));
                            continue;
                        }
                    },
                };
                let headers: Vec<(&str, &str)> =
                    if cookie.is_empty() { vec![] } else { vec![("Cookie", cookie.as_str())] };
                match open.post_form("/cart", &headers, &format!("sku={sku}")) {
                    Ok(answer) => {
                        if let Some(set) = answer.header("Set-Cookie") {
                            cookie = set.split(';').next().unwrap_or("").to_string();
                        }
                        let expected = format!("{} items", items + 1);
                        if answer.status == 200 && answer.body.trim() == expected {
                            items += 1;
                        } else {
                            problems.push(format!("status {} {:?}, expected {expected:?}", answer.status, answer.body));
                        }
                        conn = Some(open);
                    }
                    Err(err) => problems.push(format!("POST /cart: {err}")),
                }
                std::thread::sleep(Duration::from_millis(40));
            }
            (items, problems, cookie)
        });
        Shopper { stop, thread }
    }

    /// Items added, what went wrong, and the session cookie.
    fn stop(self) -> (u32, Vec<String>, String) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("shopper thread")
    }
}

fn cart_through_varnish(f: &Farm, cookie: &str) -> String {
    let mut conn = Conn::open(&socket_of(&f.varnish_url())).unwrap();
    conn.get("/cart", &[("Cookie", cookie)]).unwrap().body.trim().to_string()
}

fn sql(f: &Farm, query: &str) -> String {
    let out = std::process::Command::new("psql")
        .arg(&f.env["FARM_DB_URL"])
        .args(["-Atc", query])
        .output()
        .expect("psql (scripts/install-deps installs postgresql-client)");
    assert!(out.status.success(), "psql {query}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Replaces `from` by `to` in a file of the app, which must contain it.
fn edit(repo: &Path, file: &str, from: &str, to: &str) {
    let path = repo.join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{file}: {err}"));
    assert!(text.contains(from), "{file} has no {from:?}");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

fn write(repo: &Path, file: &str, text: &str) {
    let path = repo.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// What differs between the two apps.
struct Stack {
    name: &'static str,
    /// A sku the app sells.
    sku: &'static str,
    /// The products table.
    table: &'static str,
    /// The second release's changes: template, code, a route `/about`, a column `stock`.
    second: fn(&Path),
}

fn symfony_second(repo: &Path) {
    edit(repo, "templates/base.html.twig", "edition 1", "edition 2");
    edit(repo, "src/Release.php", "code-1", "code-2");
    edit(
        repo,
        "src/Repository/ProductRepository.php",
        "SELECT sku, name, price FROM",
        "SELECT sku, name, price, stock FROM",
    );
    edit(
        repo,
        "templates/product/index.html.twig",
        "<td class=\"name\">{{ product.name }}</td>",
        "<td class=\"name\">{{ product.name }}</td><td class=\"stock\">{{ product.stock }}</td>",
    );
    write(repo, "migrations/002_add_stock.sql", "ALTER TABLE product ADD COLUMN stock integer NOT NULL DEFAULT 7;\n");
    let routes = std::fs::read_to_string(repo.join("config/routes.yaml")).unwrap();
    write(
        repo,
        "config/routes.yaml",
        &format!(
            "{routes}\nabout:\n    path: /about\n    controller: App\\Controller\\AboutController\n    methods: [GET, HEAD]\n"
        ),
    );
    write(
        repo,
        "src/Controller/AboutController.php",
        "<?php\n\nnamespace App\\Controller;\n\nuse Symfony\\Component\\HttpFoundation\\Response;\n\nfinal class AboutController\n{\n    public function __invoke(): Response\n    {\n        return new Response(\"knifedepot: knives since edition 2\\n\", 200, ['Content-Type' => 'text/plain']);\n    }\n}\n",
    );
}

fn django_second(repo: &Path) {
    edit(repo, "templates/base.html", "edition 1", "edition 2");
    edit(repo, "depot/release.py", "code-1", "code-2");
    edit(repo, "shop/models.py", "    price = ", "    stock = models.IntegerField(default=7)\n    price = ");
    edit(
        repo,
        "depot/urls.py",
        "    path(\"health\"",
        "    path(\"about\", views.about, name=\"about\"),\n    path(\"health\"",
    );
    let views = std::fs::read_to_string(repo.join("shop/views.py")).unwrap();
    write(
        repo,
        "shop/views.py",
        &format!(
            "{views}\n\n@require_GET\ndef about(request):\n    return HttpResponse(\"djangodepot: knives since edition 2\\n\", content_type=\"text/plain\")\n"
        ),
    );
    write(
        repo,
        "shop/migrations/0002_product_stock.py",
        "from django.db import migrations, models\n\n\nclass Migration(migrations.Migration):\n    dependencies = [(\"shop\", \"0001_initial\")]\n    operations = [\n        migrations.AddField(model_name=\"product\", name=\"stock\", field=models.IntegerField(default=7)),\n        migrations.RunSQL(\"ALTER TABLE shop_product ALTER COLUMN stock SET DEFAULT 7\", migrations.RunSQL.noop),\n    ]\n",
    );
}

/// A deploy run under load, and what the load, the shopper and the watch saw.
struct Observed {
    run: Run,
    seen: Vec<(String, Vec<Seen>)>,
    /// Items in the cart, what went wrong, the session cookie.
    shopped: (u32, Vec<String>, String),
    load: crate::farm::load::Report,
}

/// Runs `deploy ARGS` under load through Varnish, with a shopper and the watch on every host.
fn under_load(f: &Farm, args: &[&str], sku: &'static str, cart: (Option<String>, u32)) -> Observed {
    let load = Load::start(&socket_of(&f.varnish_url()), "/", 3, Duration::from_secs(300));
    let shopper = Shopper::start(&f.varnish_url(), sku, cart.0, cart.1);
    let watch = Watch::start(f);
    std::thread::sleep(Duration::from_millis(500));
    let run = f.deploy_json(args);
    std::thread::sleep(Duration::from_millis(500));
    let seen = watch.stop();
    let shopped = shopper.stop();
    let load = load.stop();
    Observed { run, seen, shopped, load }
}

fn drained_seconds(run: &Run) -> Vec<(String, f64)> {
    events(&run.events, "host_drained", None)
        .iter()
        .map(|drained| {
            let host = drained["host"].as_str().unwrap();
            let back = events(&run.events, "host_undrained", Some(host));
            (host.to_string(), epoch(back[0]["ts"].as_str().unwrap()) - epoch(drained["ts"].as_str().unwrap()))
        })
        .collect()
}

fn release_rolls_and_rolls_back(stack: &Stack) {
    let f = Farm::start_stack(4, stack.name);
    let (v1, v2) = (version(1), version(2));
    let first = f.deploy_json(&["farm"]);
    assert_eq!(first.code, 0, "first deploy: {}", first.stderr);
    assert_eq!(sql(&f, "SELECT count(*) FROM migration_runs"), "1", "the first deploy migrated once");
    // Varnish caches the product list: the ban at the end of the next deploy must clear it.
    let varnish = socket_of(&f.varnish_url());
    assert_eq!(look(&varnish), Ok(v1.clone()));

    (stack.second)(&f.repo());
    git(&f.repo(), &["add", "-A"]);
    git(&f.repo(), &["commit", "-q", "-m", "edition 2: stock column, /about"]);
    let Observed { run, seen, shopped: (items, problems, cookie), load } =
        under_load(&f, &["farm"], stack.sku, (None, 0));
    assert_eq!(run.code, 0, "deploy: {}", run.stderr);
    let drained = drained_seconds(&run);
    eprintln!(
        "{}: deploy under load: {:.2} s, {} requests through Varnish, {} cart items; drained {drained:?}",
        stack.name,
        epoch(run.events.last().unwrap()["ts"].as_str().unwrap()) - epoch(run.events[0]["ts"].as_str().unwrap()),
        load.ok,
        items
    );
    assert_eq!((load.bad_status, load.conn_errors), (0, 0), "requests failed through Varnish: {:?}", load.samples);
    assert!(load.ok >= 100, "too little load to see the roll: {} requests", load.ok);
    assert!(problems.is_empty(), "the cart lost or failed: {problems:?}");
    assert!(items >= 10, "the shopper added only {items} items");
    assert_eq!(cart_through_varnish(&f, &cookie), format!("{items} items"));
    assert_each_host_switched(&run, &seen, &v1, &v2);
    assert_eq!(drained.len(), 4, "every host drained once: {drained:?}");
    // Migrated once, before any switch (the new code reads the new column everywhere).
    assert_eq!(sql(&f, "SELECT count(*) FROM migration_runs"), "2");
    assert_eq!(
        sql(
            &f,
            &format!(
                "SELECT count(*) FROM information_schema.columns WHERE table_name = '{}' AND column_name = 'stock'",
                stack.table
            )
        ),
        "1"
    );
    assert_eq!(look(&varnish), Ok(v2.clone()), "the ban cleared Varnish's cached page");
    for url in f.env["FARM_APP_URLS"].split_whitespace() {
        let about = Conn::open(&socket_of(url)).unwrap().get("/about", &[]).unwrap();
        assert_eq!(about.status, 200, "{url}/about");
    }

    // Rolled back the same careful way; the migration is not reversed and not run again.
    let Observed { run: back, seen, shopped: (total, problems, cookie), load } =
        under_load(&f, &["rollback", "farm"], stack.sku, (Some(cookie), items));
    assert_eq!(back.code, 0, "rollback: {}", back.stderr);
    assert_eq!((load.bad_status, load.conn_errors), (0, 0), "requests failed through Varnish: {:?}", load.samples);
    assert!(load.ok >= 100, "too little load to see the rollback: {} requests", load.ok);
    assert!(problems.is_empty(), "the cart lost or failed during the rollback: {problems:?}");
    assert!(total >= items + 10, "the shopper added only {} items", total - items);
    assert_eq!(cart_through_varnish(&f, &cookie), format!("{total} items"), "every item of both runs is kept");
    assert_each_host_switched(&back, &seen, &v2, &v1);
    assert_eq!(sql(&f, "SELECT count(*) FROM migration_runs"), "2", "a rollback runs no migration");
    assert_eq!(look(&varnish), Ok(v1.clone()), "the rollback's ban cleared Varnish");
    for url in f.env["FARM_APP_URLS"].split_whitespace() {
        let about = Conn::open(&socket_of(url)).unwrap().get("/about", &[]).unwrap();
        assert_eq!(about.status, 404, "{url}/about after the rollback");
    }

    // The control: the same release without the recipe's activate step (the reload). `current` moves
    // to edition 2 on every host, and every host goes on serving edition 1.
    let control = f.dir.join("no-reload.toml");
    let text = std::fs::read_to_string(f.config()).unwrap().replacen(
        "[app]\n",
        &format!("[app]\nrepository = \"{}\"\n", f.repo().display()),
        1,
    );
    std::fs::write(&control, format!("{text}\n[stages.farm.hooks]\nactivate = []\n")).unwrap();
    let off = f.deploy_json_config(&control, &["farm", "--skip-migrations"]);
    assert_eq!(off.code, 0, "control deploy: {}", off.stderr);
    let target = off.release.clone().unwrap();
    for ((host, _), url) in f.hosts.iter().zip(f.env["FARM_APP_URLS"].split_whitespace()) {
        assert_eq!(f.current(host).as_deref(), Some(target.as_str()), "{host}: current moved");
        assert_eq!(look(&socket_of(url)), Ok(v1.clone()), "{host}: without the reload PHP/Python kept the old code");
    }
}

#[test]
fn symfony_on_apache_mod_php_rolls_a_release_and_back_under_load() {
    release_rolls_and_rolls_back(&Stack { name: "symfony", sku: "chef-210", table: "product", second: symfony_second });
}

#[test]
fn symfony_on_nginx_php_fpm_rolls_a_release_and_back_under_load() {
    release_rolls_and_rolls_back(&Stack {
        name: "symfony-fpm",
        sku: "chef-210",
        table: "product",
        second: symfony_second,
    });
}

#[test]
fn django_on_gunicorn_rolls_a_release_and_back_under_load() {
    release_rolls_and_rolls_back(&Stack {
        name: "django",
        sku: "KN-100",
        table: "shop_product",
        second: django_second,
    });
}
