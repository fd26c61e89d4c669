//! The local farm for end-to-end tests: `farm.sh up` on start, `farm.sh down` on drop (also
//! when the test panics). A farm that cannot start fails the test with the reason.

pub mod http;
pub mod load;

pub use crate::support::git;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

pub struct Farm {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub env: HashMap<String, String>,
    /// (name, address) of the app hosts.
    pub hosts: Vec<(String, String)>,
    pub lb: String,
    /// What the app hosts run: `shop`, `symfony` or `django` (see farm.sh).
    pub stack: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/farm/farm.sh")
}

impl Farm {
    pub fn start(n: usize) -> Farm {
        Farm::start_stack(n, "shop")
    }

    /// A farm whose app hosts run `stack`, with its example app's repository and database.
    pub fn start_stack(n: usize, stack: &str) -> Farm {
        let tmp = tempfile::Builder::new().prefix("deploy-farm-").tempdir().expect("tempdir");
        let dir = tmp.path().join("farm");
        let o = Command::new(script()).arg("up").arg(&dir).arg(n.to_string()).arg(stack).output().expect("run farm.sh");
        if !o.status.success() {
            let _ = Command::new(script()).arg("down").arg(&dir).output();
            panic!(
                "the farm did not start (exit {:?}): {}{}",
                o.status.code(),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let env: HashMap<String, String> = std::fs::read_to_string(dir.join("farm.env"))
            .expect("farm.env")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
            .collect();
        let names: Vec<String> = env["FARM_APP_HOSTS"].split_whitespace().map(String::from).collect();
        let addrs: Vec<String> = env["FARM_APP_ADDRS"].split_whitespace().map(String::from).collect();
        let lb = env["FARM_LB"].clone();
        Farm { _tmp: tmp, dir, env, hosts: names.into_iter().zip(addrs).collect(), lb, stack: stack.to_string() }
    }

    /// The example app's name: its folder in the repository and on the hosts.
    pub fn app(&self) -> &str {
        &self.env["FARM_APP"]
    }

    /// The shop's Deploy.toml is beside its repository; a real app's is in it.
    pub fn config(&self) -> PathBuf {
        if self.stack == "shop" { self.dir.join("Deploy.toml") } else { self.repo().join("Deploy.toml") }
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.join(self.app())
    }

    /// Appends TOML to the farm's Deploy.toml (an extra stage…).
    pub fn add_config(&self, text: &str) {
        let mut t = std::fs::read_to_string(self.config()).unwrap();
        t.push_str(text);
        std::fs::write(self.config(), t).unwrap();
    }

    /// The stage's host list as written in Deploy.toml, for extra stages.
    /// The stage's `site` and host list as written in Deploy.toml, for extra stages: they
    /// are the same site, so they may deploy where `farm` did.
    pub fn hosts_toml(&self) -> String {
        let t = std::fs::read_to_string(self.config()).unwrap();
        let start = t.find("[stages.farm]\n").unwrap() + "[stages.farm]\n".len();
        let end = start + t[start..].find("\n]\n").unwrap() + 3;
        t[start..end].to_string()
    }

    /// The real `deploy` binary, set up for this farm.
    fn command(&self, args: &[&str]) -> Command {
        self.command_at(&self.config(), args)
    }

    fn command_at(&self, config: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_deploy"));
        command.arg("-c").arg(config).args(args);
        command.env("DEPLOY_CACHE_DIR", self.dir.join("cache")).env("NO_COLOR", "1").env("USER", "tester");
        command.env_remove("CI");
        command
    }

    /// Runs the real `deploy` binary against this farm.
    pub fn deploy(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run deploy")
    }

    /// [`Farm::deploy`] with more environment variables.
    pub fn deploy_with(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        self.command(args).envs(env.iter().copied()).output().expect("run deploy")
    }

    /// Runs `deploy ARGS --output json` to its end.
    pub fn deploy_json(&self, args: &[&str]) -> Run {
        self.deploy_json_env(args, &[])
    }

    /// [`Farm::deploy_json`] with another config file.
    pub fn deploy_json_config(&self, config: &Path, args: &[&str]) -> Run {
        let mut command = self.command_at(config, args);
        command.args(["--output", "json"]);
        json_run(command)
    }

    /// [`Farm::deploy_json`] with more environment variables.
    pub fn deploy_json_env(&self, args: &[&str], env: &[(&str, &Path)]) -> Run {
        let mut command = self.command(args);
        command.args(["--output", "json"]);
        for (name, value) in env {
            command.env(name, value);
        }
        json_run(command)
    }

    /// Commits changes to the example app: (path, Some(text)) writes, (path, None) deletes.
    pub fn commit(&self, message: &str, changes: &[(&str, Option<&str>)]) -> String {
        let repo = self.repo();
        for (p, text) in changes {
            let f = repo.join(p);
            match text {
                Some(t) => {
                    std::fs::create_dir_all(f.parent().unwrap()).unwrap();
                    std::fs::write(&f, t).unwrap();
                }
                None => {
                    let _ = std::fs::remove_file(&f);
                }
            }
        }
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", message]);
        git(&repo, &["rev-parse", "HEAD"])
    }

    /// The deploy root of a host as the host sees `/var/www/APP`.
    pub fn root(&self, host: &str) -> PathBuf {
        self.dir.join("hosts").join(host).join("www").join(self.app())
    }

    /// The release id `current` points to on a host.
    pub fn current(&self, host: &str) -> Option<String> {
        std::fs::read_link(self.root(host).join("current"))
            .ok()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
    }

    /// The host's release log (`.deploy/releases.jsonl`).
    pub fn release_log(&self, host: &str) -> PathBuf {
        self.root(host).join(".deploy/releases.jsonl")
    }

    pub fn releases(&self, host: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.root(host).join("releases"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn varnishadm(&self, args: &[&str]) -> String {
        let o = Command::new("varnishadm")
            .args(["-T", &format!("{}:6082", self.lb), "-S"])
            .arg(self.dir.join("varnish-secret"))
            .args(args)
            .output()
            .expect("varnishadm");
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn haproxy(&self, line: &str) -> String {
        let mut c = Command::new("socat")
            .args(["-t", "2", "stdio", &format!("unix-connect:{}", self.dir.join("haproxy.sock").display())])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("socat");
        use std::io::Write;
        writeln!(c.stdin.take().unwrap(), "{line}").unwrap();
        String::from_utf8_lossy(&c.wait_with_output().unwrap().stdout).into_owned()
    }

    /// Every app backend is healthy and taking traffic in Varnish.
    pub fn all_in_varnish(&self) -> bool {
        let list = self.varnishadm(&["backend.list"]);
        self.hosts.iter().all(|(h, _)| {
            list.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&format!("boot.{h}").as_str()) && f.get(1) == Some(&"probe") && l.contains("healthy")
            })
        })
    }

    pub fn varnish_url(&self) -> String {
        self.env["FARM_VARNISH"].clone()
    }

    pub fn haproxy_url(&self) -> String {
        self.env["FARM_HAPROXY"].clone()
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        let o = Command::new(script()).arg("down").arg(&self.dir).output();
        if let Ok(o) = o
            && !o.status.success()
        {
            eprintln!("farm.sh down: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
}

/// Runs a `deploy … --output json` command to its end.
fn json_run(mut command: Command) -> Run {
    let out = command.output().expect("run deploy");
    let events = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}")))
        .collect();
    Run::new(out.status.code().unwrap_or(-1), events, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// One run of the real binary: how it ended, what it said, and the release it made or rolled
/// to (from its `deploy_started` or `rollback_started` event).
pub struct Run {
    pub code: i32,
    pub events: Vec<serde_json::Value>,
    pub stderr: String,
    /// `None`: the run stopped before it chose a release.
    pub release: Option<String>,
}

impl Run {
    pub fn new(code: i32, events: Vec<serde_json::Value>, stderr: String) -> Run {
        let started = events.iter().find(|event| {
            event["event"].as_str().is_some_and(|name| name.ends_with("_started")) && event["release"].is_string()
        });
        let release = started.map(|event| event["release"].as_str().unwrap().to_string());
        Run { code, events, stderr, release }
    }
}

/// Events named `name` (and about `host`, when given).
pub fn events<'a>(all: &'a [serde_json::Value], name: &str, host: Option<&str>) -> Vec<&'a serde_json::Value> {
    all.iter().filter(|e| e["event"] == name && host.is_none_or(|h| e["host"] == h)).collect()
}

/// `2026-11-26T07:14:19.864Z` → seconds since the epoch.
pub fn epoch(ts: &str) -> f64 {
    let (date, time) = ts.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let (y, m, day) = (d[0], d[1], d[2]);
    // Days from civil (Howard Hinnant).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let t: Vec<f64> = time.split(':').map(|x| x.parse().unwrap()).collect();
    days as f64 * 86400.0 + t[0] * 3600.0 + t[1] * 60.0 + t[2]
}

impl Farm {
    fn ns_pid(&self, host: &str) -> String {
        std::fs::read_to_string(self.dir.join("pids").join(format!("ns-{host}"))).unwrap().trim().to_string()
    }

    /// Kills every sshd of a host (the listener and the sessions): the host drops off the
    /// network for ssh, as if it crashed, while nginx keeps serving.
    pub fn kill_sshd(&self, host: &str) {
        let ns = std::fs::read_link(format!("/proc/{}/ns/mnt", self.ns_pid(host))).unwrap();
        for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
            let pid = e.file_name().to_string_lossy().to_string();
            if !pid.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            let same_ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).is_ok_and(|n| n == ns);
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if same_ns && comm.trim() == "sshd" {
                let _ = Command::new("kill").args(["-KILL", &pid]).status();
            }
        }
    }

    /// Starts a host's sshd again.
    pub fn start_sshd(&self, host: &str) {
        let conf = self.dir.join("hosts").join(host).join("sshd_config");
        let o = Command::new("nsenter")
            .args(["-t", &self.ns_pid(host), "-m", "-u", "--", "/usr/sbin/sshd", "-f"])
            .arg(conf)
            .output()
            .unwrap();
        assert!(o.status.success(), "sshd: {}", String::from_utf8_lossy(&o.stderr));
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    /// Starts `deploy ARGS --output json` and calls `on_event` for each event as it comes.
    pub fn deploy_watch(&self, args: &[&str], mut on_event: impl FnMut(&serde_json::Value, u32)) -> Run {
        use std::io::BufRead;
        let mut c = self.command(args);
        c.args(["--output", "json"]);
        c.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        let mut child = c.spawn().expect("spawn deploy");
        let pid = child.id();
        let stderr = child.stderr.take().unwrap();
        let err_thread = std::thread::spawn(move || {
            let mut s = String::new();
            use std::io::Read;
            let _ = std::io::BufReader::new(stderr).read_to_string(&mut s);
            s
        });
        let mut events = Vec::new();
        for l in std::io::BufReader::new(child.stdout.take().unwrap()).lines() {
            let Ok(l) = l else { break };
            let v: serde_json::Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            on_event(&v, pid);
            events.push(v);
        }
        let status = child.wait().unwrap();
        use std::os::unix::process::ExitStatusExt;
        let code = status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
        Run::new(code, events, err_thread.join().unwrap())
    }

    /// The release every app host is on, if they agree.
    pub fn common_release(&self) -> Option<String> {
        let c: Vec<Option<String>> = self.hosts.iter().map(|(h, _)| self.current(h)).collect();
        c.windows(2).all(|w| w[0] == w[1]).then(|| c[0].clone()).flatten()
    }

    /// No lock and no journal left on any app host.
    pub fn no_locks(&self) -> bool {
        self.hosts.iter().all(|(h, _)| {
            !self.root(h).join(".deploy/lock").exists() && !self.root(h).join(".deploy/journal.json").exists()
        })
    }
}

/// (path, JSON body) of every request received.
pub type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A tiny HTTP server that stores every request body it gets.
pub fn webhook_listener() -> (String, Received) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let got = Arc::new(Mutex::new(Vec::new()));
    let store = got.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            let mut r = BufReader::new(s);
            let mut line = String::new();
            if r.read_line(&mut line).is_err() {
                continue;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut len = 0;
            loop {
                let mut h = String::new();
                if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            let _ = r.read_exact(&mut body);
            store.lock().unwrap().push((path, serde_json::from_slice(&body).unwrap_or_default()));
            let _ = r.get_mut().write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
        }
    });
    (addr, got)
}

/// Every event is documented, with exactly the documented fields, the schema version and a
/// UTC time.
pub fn assert_documented(all: &[serde_json::Value]) {
    use deploy::report::schema;
    for e in all {
        let name = e["event"].as_str().unwrap();
        let fields = schema::fields(name).unwrap_or_else(|| panic!("undocumented event {name}"));
        let mut want: Vec<&str> = schema::COMMON.iter().chain(fields).copied().collect();
        let mut have: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
        want.sort();
        have.sort();
        assert_eq!(have, want, "{name}: {e}");
        assert_eq!(e["v"], schema::VERSION);
        assert!(e["ts"].as_str().unwrap().ends_with('Z'));
    }
}

/// Undoes `chattr +i` on drop, whatever the test did.
pub struct Immutable(std::path::PathBuf);

impl Immutable {
    pub fn set(path: std::path::PathBuf) -> Immutable {
        let ok = std::process::Command::new("chattr").arg("+i").arg(&path).status().expect("chattr (e2fsprogs)");
        assert!(ok.success(), "chattr +i {}", path.display());
        Immutable(path)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// A real terminal: a detached tmux session running one shell line. Ended when dropped (the
/// terminal closes: what runs in it gets SIGHUP).
pub struct Terminal {
    session: String,
}

impl Terminal {
    /// Starts `line` in a terminal of `cols`×`rows`; `name` keeps sessions of parallel tests
    /// apart.
    pub fn start(name: &str, line: &str, cols: u16, rows: u16) -> Terminal {
        let session = format!("deploy-{name}-{}", std::process::id());
        let ok = Command::new("tmux")
            .args(["new-session", "-d", "-s", &session, "-x", &cols.to_string(), "-y", &rows.to_string(), line])
            .env_remove("CI")
            .env_remove("NO_COLOR")
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "tmux did not start (scripts/test installs it)");
        Terminal { session }
    }

    /// What it shows; `flags` as for `tmux capture-pane` (`-e` keeps colours and styles as
    /// escape sequences, `-S -` adds the scrollback).
    pub fn capture(&self, flags: &[&str]) -> String {
        let out = Command::new("tmux").args(["capture-pane", "-p", "-t", &self.session]).args(flags).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Captures until the line has printed `EXIT=` (it echoes its status so), for at most
    /// `limit`; `watch` sees every capture before that. Returns the last one.
    pub fn until_exit(&self, flags: &[&str], limit: std::time::Duration, mut watch: impl FnMut(&str)) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let screen = self.capture(flags);
            if screen.contains("EXIT=") || std::time::Instant::now() > deadline {
                return screen;
            }
            watch(&screen);
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = Command::new("tmux").args(["kill-session", "-t", &self.session]).status();
    }
}
