//! Continuous HTTP load through the balancer while a deploy runs: several keep-alive
//! connections, each sending requests back to back, bounded in time, counting everything
//! that is not a 200.

use super::http::Conn;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
pub struct Report {
    pub ok: u64,
    /// Answered, but not with 200 (e.g. Varnish's 503 for a backend that went away).
    pub bad_status: u64,
    /// Connect, read or write errors.
    pub conn_errors: u64,
    /// Longest single request.
    pub max_latency: Duration,
    /// Distinct releases seen in the answers, in order of first sight.
    pub releases: Vec<String>,
    /// (host, release) pairs seen.
    pub served: Vec<(String, String)>,
    pub samples: Vec<String>,
    /// The time limit ended the load before `stop`: whatever came after went unobserved.
    pub cut_short: bool,
}

impl Report {
    /// Did `host` ever answer from `release`?
    pub fn served(&self, host: &str, release: &str) -> bool {
        self.served.iter().any(|(h, r)| h == host && r.contains(release))
    }
}

pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Report>>,
}

impl Load {
    /// `clients` connections to `addr` (host:port), requesting `path` (uncached carts hit a
    /// backend every time), for at most `limit`.
    pub fn start(addr: &str, path: &'static str, clients: usize, limit: Duration) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let threads = (0..clients)
            .map(|i| {
                let (stop, sent, addr) = (stop.clone(), sent.clone(), addr.to_string());
                std::thread::spawn(move || {
                    let mut r = Report::default();
                    let mut conn: Option<Conn> = None;
                    let cookie = format!("cart=c{i}");
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < limit {
                        if conn.is_none() {
                            match Conn::open(&addr) {
                                Ok(c) => conn = Some(c),
                                Err(e) => {
                                    r.conn_errors += 1;
                                    r.samples.push(format!("connect: {e}"));
                                    std::thread::sleep(Duration::from_millis(10));
                                    continue;
                                }
                            }
                        }
                        let t = Instant::now();
                        let res = conn.as_mut().unwrap().get(path, &[("Cookie", &cookie)]);
                        r.max_latency = r.max_latency.max(t.elapsed());
                        sent.fetch_add(1, Ordering::Relaxed);
                        match res {
                            Ok(resp) if resp.status == 200 => {
                                r.ok += 1;
                                if let Some(rel) = resp.header("X-Release") {
                                    if !r.releases.iter().any(|x| x == rel) {
                                        r.releases.push(rel.to_string());
                                    }
                                    let host = resp.header("X-Host").unwrap_or("?").to_string();
                                    if !r.served.iter().any(|(h, x)| *h == host && x == rel) {
                                        r.served.push((host, rel.to_string()));
                                    }
                                }
                                if resp.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                                    conn = None;
                                }
                            }
                            Ok(resp) => {
                                r.bad_status += 1;
                                if r.samples.len() < 5 {
                                    r.samples.push(format!("status {}", resp.status));
                                }
                                // An error page may close the connection too (HAProxy's
                                // errorfiles say `Connection: close`).
                                if resp.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close")) {
                                    conn = None;
                                }
                            }
                            Err(e) => {
                                r.conn_errors += 1;
                                if r.samples.len() < 5 {
                                    r.samples.push(format!("{e}"));
                                }
                                conn = None;
                            }
                        }
                    }
                    r.cut_short = !stop.load(Ordering::Relaxed);
                    r
                })
            })
            .collect();
        Load { stop, threads }
    }

    /// Stops the load and adds up what it saw. Panics when the time limit had already ended
    /// it: a test must not claim to have watched what came after.
    pub fn stop(self) -> Report {
        self.stop.store(true, Ordering::Relaxed);
        let mut total = Report::default();
        for t in self.threads {
            let r = t.join().expect("load thread");
            assert!(!r.cut_short, "the load hit its time limit before the test stopped it: raise the limit");
            total.ok += r.ok;
            total.bad_status += r.bad_status;
            total.conn_errors += r.conn_errors;
            total.max_latency = total.max_latency.max(r.max_latency);
            for rel in r.releases {
                if !total.releases.contains(&rel) {
                    total.releases.push(rel);
                }
            }
            for s in r.served {
                if !total.served.contains(&s) {
                    total.served.push(s);
                }
            }
            total.samples.extend(r.samples);
        }
        total
    }
}
