//! Figures on the local farm (not a test: nothing is asserted). Run as root with the farm's
//! packages installed (scripts/test installs them):
//!
//!     cargo bench --bench farm            # 4 and 8 hosts, 3 deploys each
//!     BENCH_RUNS=5 cargo bench --bench farm
//!
//! Prints: wall time and phase breakdown of a deploy of a ~20 MB, ~2,000-file app (a fresh
//! commit each run, so every run builds, uploads and unpacks a new artifact) to 4 and 8 hosts
//! behind Varnish; the latency of one remote command over the multiplexed connection.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Farm {
    dir: PathBuf,
}

impl Farm {
    fn up(hosts: usize) -> Farm {
        let dir = std::env::temp_dir().join(format!("deploy-bench-{}-{hosts}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let o = Command::new(script()).arg("up").arg(&dir).arg(hosts.to_string()).output().unwrap();
        assert!(o.status.success(), "farm: {}", String::from_utf8_lossy(&o.stderr));
        Farm { dir }
    }
}

impl Drop for Farm {
    fn drop(&mut self) {
        let _ = Command::new(script()).arg("down").arg(&self.dir).output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/farm/farm.sh")
}

fn git(dir: &Path, args: &[&str]) {
    let o = Command::new("git")
        .args(["-c", "user.name=b", "-c", "user.email=b@localhost"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}");
}

/// ~20 MB in 2,000 files: half text (compresses), half random bytes (does not).
fn fill_app(repo: &Path) {
    let mut seed: u64 = 0x9e3779b97f4a7c15;
    for i in 0..2000 {
        let dir = repo.join(format!("src/mod{:02}", i % 40));
        std::fs::create_dir_all(&dir).unwrap();
        let body: Vec<u8> = if i % 2 == 0 {
            (0..200)
                .flat_map(|l| format!("<?php // line {l} of file {i}: some template text that repeats\n").into_bytes())
                .collect()
        } else {
            (0..10_000)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect()
        };
        std::fs::write(dir.join(format!("f{i}.{}", if i % 2 == 0 { "php" } else { "bin" })), body).unwrap();
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-q", "-m", "20 MB app"]);
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn deploy_runs(hosts: usize, runs: usize) {
    let f = Farm::up(hosts);
    let repo = f.dir.join("shop");
    fill_app(&repo);
    let mut walls = Vec::new();
    let mut phases: std::collections::BTreeMap<String, Vec<f64>> = Default::default();
    let mut bytes = 0;
    for r in 0..runs {
        std::fs::write(repo.join("templates/index.html"), format!("<p>run {r} @COMMIT@</p>\n")).unwrap();
        git(&repo, &["commit", "-qam", &format!("run {r}")]);
        let t = Instant::now();
        let o = Command::new(env!("CARGO_BIN_EXE_deploy"))
            .args(["-c"])
            .arg(f.dir.join("Deploy.toml"))
            .args(["farm", "--output", "json"])
            .env("DEPLOY_CACHE_DIR", f.dir.join("cache"))
            .output()
            .unwrap();
        let wall = t.elapsed().as_secs_f64();
        assert!(o.status.success(), "deploy: {}", String::from_utf8_lossy(&o.stderr));
        walls.push(wall);
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            if v["event"] == "finished" {
                for (k, s) in v["phases"].as_object().unwrap() {
                    phases.entry(k.clone()).or_default().push(s.as_f64().unwrap());
                }
            }
            if v["event"] == "built" {
                bytes = v["bytes"].as_u64().unwrap();
                phases.entry("(build itself)".into()).or_default().push(v["seconds"].as_f64().unwrap());
            }
        }
    }
    println!("\n{hosts} hosts, {runs} deploys, artifact {:.1} MB (~2,000 files + the shop):", bytes as f64 / 1e6);
    let mut w = walls.clone();
    println!(
        "  wall             median {:.2}s   min {:.2}s   max {:.2}s",
        median(&mut w),
        walls.iter().cloned().fold(f64::MAX, f64::min),
        walls.iter().cloned().fold(0.0, f64::max)
    );
    for (k, mut v) in phases {
        println!("  {k:<16} median {:.3}s", median(&mut v));
    }
}

fn mux_latency() {
    let f = Farm::up(2);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let env = std::fs::read_to_string(f.dir.join("farm.env")).unwrap();
        let addr = env
            .lines()
            .find_map(|l| l.strip_prefix("FARM_APP_ADDRS="))
            .unwrap()
            .trim_matches('"')
            .split(' ')
            .next()
            .unwrap()
            .to_string();
        let opts =
            deploy::transport::SshOptions { config: Some(f.dir.join("ssh_config")), identity: None, known_hosts: None };
        let t = Instant::now();
        let conns = deploy::transport::Connections::open(
            &opts,
            vec![deploy::transport::Destination { host: "web1".into(), user: None, address: addr, port: None }],
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        let connect = t.elapsed();
        let mut lat = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            let o = conns.run("web1", "true", None).await.unwrap();
            assert!(o.ok());
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        let p = |v: &mut Vec<f64>, q: f64| {
            v.sort_by(|a, b| a.partial_cmp(b).unwrap());
            v[((v.len() as f64 - 1.0) * q) as usize]
        };
        let conns = std::sync::Arc::new(conns);
        let t = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let c = conns.clone();
            set.spawn(async move {
                for _ in 0..100 {
                    c.run("web1", "true", None).await.unwrap();
                }
            });
        }
        while set.join_next().await.is_some() {}
        let par = t.elapsed();
        println!("\nremote command over the multiplexed connection (`true`, 300 runs):");
        println!("  first connection  {:.0} ms", connect.as_secs_f64() * 1000.0);
        println!(
            "  one command       median {:.2} ms   p90 {:.2} ms   max {:.2} ms",
            p(&mut lat, 0.5),
            p(&mut lat, 0.9),
            p(&mut lat, 1.0)
        );
        println!("  4 in flight       {:.0} commands/s", 400.0 / par.as_secs_f64());
    });
    let _ = Duration::ZERO;
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench -- --list` / test discovery
    }
    let runs: usize = std::env::var("BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "deploy farm benchmark; load average before: {}",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    mux_latency();
    for hosts in [4, 8] {
        deploy_runs(hosts, runs);
    }
}
