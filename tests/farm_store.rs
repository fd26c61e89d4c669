//! `[artifact] store`: the deploying machine puts the tarball in a real S3-compatible server
//! (s3s-fs, which checks SigV4 signatures and presigned URLs) or in nginx taking `PUT`s, once;
//! every host fetches it, checks its sha256 and unpacks it. A store that refuses, or bytes
//! that are not what was put, stop the deploy before any switch.

use crate::farm::{Farm, Run, events};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server this test started, stopped by its PID when the test ends: SIGTERM first, so
/// nginx's master stops its workers (a SIGKILLed master leaves them serving), then SIGKILL.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.0.id().to_string()]).status();
        let start = Instant::now();
        while matches!(self.0.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fails loudly when something already listens on `addr` (a server left by another run).
fn free(addr: &str) {
    assert!(std::net::TcpStream::connect(addr).is_err(), "{addr} is taken: a server from another run?");
}

/// Waits until `addr` accepts connections; panics (the server did not start) after 10 s.
fn listening(addr: &str, server: &mut Server, what: &str) {
    let start = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = server.0.try_wait() {
            panic!("{what} exited before it listened on {addr}: {status}");
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{what} does not listen on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const KEY: &str = "AKIDFARMSTORE";
const SECRET: &str = "farm-store-secret-0123456789";

/// s3s-fs (installed by scripts/install-deps) on the farm's own address, with a bucket
/// `releases`: (server, endpoint, the folder holding the bucket's objects).
fn s3_store(f: &Farm) -> (Server, String, PathBuf) {
    let binary = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain(std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo/bin")))
        .map(|dir| dir.join("s3s-fs"))
        .find(|path| path.is_file())
        .expect("s3s-fs is not installed: scripts/install-deps installs it (cargo install s3s-fs)");
    let root = f.dir.join("s3");
    std::fs::create_dir_all(root.join("releases")).unwrap();
    let host = format!("127.{}.0.250", f.env["FARM_ID"]);
    free(&format!("{host}:9000"));
    let child = Command::new(binary)
        .args(["--host", &host, "--port", "9000", "--access-key", KEY, "--secret-key", SECRET])
        .arg(&root)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(f.dir.join("s3s.log")).unwrap())
        .spawn()
        .expect("start s3s-fs");
    let mut server = Server(child);
    listening(&format!("{host}:9000"), &mut server, "s3s-fs");
    (server, format!("http://{host}:9000"), root.join("releases"))
}

/// nginx taking `PUT`s under /artifacts/ when the request has the bearer token.
fn http_store(f: &Farm) -> (Server, String, PathBuf) {
    let dir = f.dir.join("webdav");
    std::fs::create_dir_all(dir.join("data/artifacts")).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let addr = format!("127.{}.0.251:8080", f.env["FARM_ID"]);
    let d = dir.display();
    let conf = format!(
        r#"daemon off; user root; pid {d}/nginx.pid; error_log {d}/error.log;
events {{}}
http {{
  client_body_temp_path {d}/tmp; access_log {d}/access.log;
  server {{
    listen {addr}; root {d}/data; client_max_body_size 0;
    location /artifacts/ {{
      if ($http_authorization != "Bearer farm-token") {{ return 401; }}
      dav_methods PUT; create_full_put_path on; dav_access user:rw;
    }}
  }}
}}
"#
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    free(&addr);
    let child = Command::new("nginx")
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-p")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start nginx");
    let mut server = Server(child);
    listening(&addr, &mut server, "nginx");
    (server, format!("http://{addr}/artifacts/"), dir.join("data/artifacts"))
}

/// `deploy -v farm` with these variables (and no AWS files of this machine's user).
fn deploy(f: &Farm, vars: &[(&str, &str)]) -> Run {
    let mut env: Vec<(&str, &Path)> = vars.iter().map(|(name, value)| (*name, Path::new(*value))).collect();
    let none = f.dir.join("no-aws-files");
    env.push(("AWS_SHARED_CREDENTIALS_FILE", &none));
    env.push(("AWS_CONFIG_FILE", &none));
    f.deploy_json_env(&["-v", "farm"], &env)
}

/// Every host serves `release`, from the balancer; no hidden folder or lock is left.
fn all_on(f: &Farm, release: &str) {
    for (host, _) in &f.hosts {
        assert_eq!(f.current(host).as_deref(), Some(release), "{host}");
        let hidden: Vec<_> = std::fs::read_dir(f.root(host).join("releases"))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_name().to_string_lossy().starts_with('.'))
            .map(|entry| entry.file_name())
            .collect();
        assert!(hidden.is_empty(), "{host} kept {hidden:?}");
    }
    assert!(f.all_in_varnish());
    assert!(f.no_locks());
}

/// What a run said about its failure: the error, and each failed action's message and output.
fn why(run: &Run) -> String {
    let failed: Vec<String> = events(&run.events, "failed", None).iter().map(|event| event.to_string()).collect();
    format!("{}\n{}", run.stderr, failed.join("\n"))
}

/// No event shows a signature or a secret.
fn nothing_secret(run: &Run, secrets: &[&str]) {
    let text = format!("{}{:?}", run.stderr, run.events);
    for secret in secrets.iter().chain(&["X-Amz-Signature", "X-Amz-Credential"]) {
        assert!(!text.contains(secret), "`{secret}` was shown");
    }
}

#[test]
fn hosts_fetch_the_release_from_an_s3_store_put_there_once() {
    let f = Farm::start(3);
    let (_server, endpoint, bucket) = s3_store(&f);
    f.add_config(&format!("\n[artifact]\nstore = \"s3://releases/shop-builds\"\nendpoint = \"{endpoint}\"\n"));
    let keys = [("AWS_ACCESS_KEY_ID", KEY), ("AWS_SECRET_ACCESS_KEY", SECRET)];

    let run = deploy(&f, &keys);
    assert_eq!(run.code, 0, "{}", why(&run));
    let release = run.release.clone().unwrap();
    all_on(&f, &release);
    nothing_secret(&run, &[SECRET]);
    let stored = events(&run.events, "stored", None);
    assert_eq!(stored.len(), 1, "put once for every host: {stored:?}");
    assert_eq!(stored[0]["uploaded"], true);
    let built = &events(&run.events, "built", None)[0];
    let sent = events(&run.events, "sent", None);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|sent| sent["from"] == "store" && sent["bytes"] == stored[0]["bytes"]), "{sent:?}");
    // The object is named by the tarball's sha256, under the prefix and the app's name.
    let objects: Vec<PathBuf> = std::fs::read_dir(bucket.join("shop-builds/shop"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".tar.gz"))
        .collect();
    assert_eq!(objects.len(), 1, "{objects:?}");
    assert_eq!(objects[0].metadata().unwrap().len(), stored[0]["bytes"].as_u64().unwrap());
    assert!(built["bytes"].as_u64().unwrap() > 0);
    // Control: the store refuses a request without a signature, so hosts get in only with
    // the presigned URL deploy gave them.
    let name = objects[0].file_name().unwrap().to_string_lossy().to_string();
    let unsigned = format!("{endpoint}/releases/shop-builds/shop/{name}");
    let status =
        Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &unsigned]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "403");

    // The same build again: every host is on a release deploy made, so each needs only a
    // delta; hosts on the same release share one, put in the store once.
    let run = deploy(&f, &keys);
    assert_eq!(run.code, 0, "{}", why(&run));
    let again = run.release.clone().unwrap();
    assert_ne!(again, release);
    all_on(&f, &again);
    let stored = events(&run.events, "stored", None);
    assert_eq!((stored.len(), &stored[0]["uploaded"]), (1, &serde_json::json!(true)), "{stored:?}");
    let sent = events(&run.events, "sent", None);
    assert!(sent.iter().all(|sent| sent["from"] == "store" && sent["kind"] == "delta"), "{sent:?}");
    assert!(stored[0]["bytes"].as_u64().unwrap() < built["bytes"].as_u64().unwrap() / 2);
    let delta = bucket
        .join("shop-builds")
        .join(stored[0]["object"].as_str().unwrap().strip_prefix("s3://releases/shop-builds/").unwrap());
    assert!(delta.is_file(), "{delta:?}");

    // Once more: the same delta is in the store already, nothing is sent to it.
    let run = deploy(&f, &keys);
    assert_eq!(run.code, 0, "{}", why(&run));
    let again = run.release.clone().unwrap();
    all_on(&f, &again);
    let stored = events(&run.events, "stored", None);
    assert_eq!((stored.len(), &stored[0]["uploaded"]), (1, &serde_json::json!(false)), "{stored:?}");

    // Bytes in the store that are not what was put (same size): every host tries three
    // times, finds another sha256, and the deploy stops before any switch.
    let mut bytes = std::fs::read(&delta).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&delta, &bytes).unwrap();
    let run = deploy(&f, &keys);
    assert_eq!(run.code, 1, "{}", why(&run));
    all_on(&f, &again);
    let failed = events(&run.events, "failed", None);
    assert!(!failed.is_empty(), "{:?}", run.events);
    let said = why(&run);
    assert!(said.contains("checksum"), "{said}");
    assert!(said.contains("fetch 3 of 3 failed: got sha256"), "{said}");

    // Credentials the store refuses: the PUT fails on the deploying machine, nothing switched.
    f.commit("another", &[("src/Another.php", Some("<?php\n"))]);
    let run = deploy(&f, &[("AWS_ACCESS_KEY_ID", KEY), ("AWS_SECRET_ACCESS_KEY", "not-the-secret")]);
    assert_eq!(run.code, 1, "{}", why(&run));
    assert!(why(&run).contains("403"), "{}", why(&run));
    nothing_secret(&run, &["not-the-secret"]);
    all_on(&f, &again);

    // No credentials at all: refused before any host is contacted (exit 2).
    let run = deploy(&f, &[]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("no S3 credentials"), "{}", run.stderr);
    assert!(events(&run.events, "host_connected", None).is_empty());
    all_on(&f, &again);
}

#[test]
fn hosts_fetch_the_release_from_an_http_store_that_takes_put() {
    let f = Farm::start(2);
    let (_server, url, data) = http_store(&f);
    f.add_config(&format!(
        "\n[artifact]\nstore = \"{url}\"\nheaders = {{ Authorization = \"Bearer ${{STORE_TOKEN}}\" }}\n"
    ));

    // The plan says where hosts fetch from, and shows the token's variable, not its value.
    let plan = f.deploy_with(&["plan", "-v", "farm"], &[("STORE_TOKEN", "farm-token")]);
    let text = format!("{}{}", String::from_utf8_lossy(&plan.stdout), String::from_utf8_lossy(&plan.stderr));
    assert!(text.contains(&format!("in {url} once; each host fetches it")), "{text}");
    assert!(text.contains("curl -K -") && !text.contains("farm-token"), "{text}");

    let run = deploy(&f, &[("STORE_TOKEN", "farm-token")]);
    let log = std::fs::read_to_string(f.dir.join("webdav/error.log")).unwrap_or_default();
    assert_eq!(run.code, 0, "{}\nnginx: {log}", why(&run));
    let release = run.release.clone().unwrap();
    all_on(&f, &release);
    nothing_secret(&run, &["farm-token"]);
    let stored = events(&run.events, "stored", None);
    assert_eq!((stored.len(), &stored[0]["uploaded"]), (1, &serde_json::json!(true)));
    let object = data.join("shop").join(stored[0]["object"].as_str().unwrap().rsplit('/').next().unwrap());
    assert_eq!(object.metadata().unwrap().len(), stored[0]["bytes"].as_u64().unwrap());
    // One PUT from the deploying machine, one GET per host, all with the token.
    let log = std::fs::read_to_string(f.dir.join("webdav/access.log")).unwrap();
    let count = |method: &str| log.lines().filter(|line| line.contains(&format!("\"{method} /artifacts/"))).count();
    assert_eq!((count("PUT"), count("GET")), (1, 2), "{log}");
    assert!(!log.contains(" 401 "), "{log}");

    // A token the store refuses: nothing is switched, and the error says what the store said.
    f.commit("another", &[("src/Another.php", Some("<?php\n"))]);
    let run = deploy(&f, &[("STORE_TOKEN", "wrong")]);
    assert_eq!(run.code, 1, "{}", why(&run));
    assert!(why(&run).contains("HTTP 401"), "{}", why(&run));
    all_on(&f, &release);
}
