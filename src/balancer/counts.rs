//! Answers per backend, as the balancer saw them, for a canary's soak: HAProxy's `show stat`
//! counters (cumulative), Varnish's shared log over a window (one line per backend fetch),
//! or a `command` balancer's `stats` JSON (cumulative).

use std::collections::BTreeMap;

/// What one backend answered: every answer, the errors among them (5xx, failed fetches,
/// connection errors), and the mean response time where the balancer measures it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
    /// Mean response time in milliseconds.
    pub latency_ms: Option<f64>,
}

impl Counts {
    /// The share of errors (0 without answers).
    pub fn ratio(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }

    /// What happened between `before` and `self` (cumulative counters). A counter that went
    /// down (the balancer restarted) counts from zero. Latency is the newer reading.
    pub fn since(&self, before: &Counts) -> Counts {
        let diff = |now: u64, then: u64| if now >= then { now - then } else { now };
        Counts {
            requests: diff(self.requests, before.requests),
            errors: diff(self.errors, before.errors),
            latency_ms: self.latency_ms,
        }
    }

    /// The sum of several backends; latency weighted by answers.
    pub fn sum<'a>(all: impl IntoIterator<Item = &'a Counts>) -> Counts {
        let mut total = Counts::default();
        let (mut weighted, mut weight) = (0.0, 0u64);
        for counts in all {
            total.requests += counts.requests;
            total.errors += counts.errors;
            if let Some(latency) = counts.latency_ms {
                weighted += latency * counts.requests.max(1) as f64;
                weight += counts.requests.max(1);
            }
        }
        total.latency_ms = (weight > 0).then(|| weighted / weight as f64);
        total
    }
}

/// HAProxy `show stat`: every server of `backend`. Answers are the `hrsp_*` columns; errors
/// are `hrsp_5xx` plus `eresp` (response errors) and `econ` (connection errors); latency is
/// `rtime` (HAProxy's mean over the last 1024 answers).
pub fn haproxy(csv: &str, backend: &str) -> Result<BTreeMap<String, Counts>, String> {
    let mut lines = csv.lines();
    let header = lines.next().ok_or("empty show stat output")?;
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name).ok_or(format!("no {name} column in show stat"));
    let (proxy, server) = (column("pxname")?, column("svname")?);
    let answers: Vec<usize> = ["hrsp_1xx", "hrsp_2xx", "hrsp_3xx", "hrsp_4xx", "hrsp_5xx", "hrsp_other"]
        .iter()
        .map(|name| column(name))
        .collect::<Result<_, _>>()?;
    let errors: Vec<usize> = ["hrsp_5xx", "eresp", "econ"].iter().map(|name| column(name)).collect::<Result<_, _>>()?;
    let rtime = column("rtime").ok();
    let mut out = BTreeMap::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let name = fields.get(server).copied().unwrap_or("");
        if fields.get(proxy) != Some(&backend) || matches!(name, "FRONTEND" | "BACKEND" | "") {
            continue;
        }
        let number = |index: &usize| fields.get(*index).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
        // Connection errors never became answers: count them as answers too, so a backend
        // that refuses every connection shows a ratio of 1, not 0 of 0.
        let failed_to_answer = number(&errors[1]) + number(&errors[2]);
        let counts = Counts {
            requests: answers.iter().map(number).sum::<u64>() + failed_to_answer,
            errors: errors.iter().map(number).sum(),
            latency_ms: rtime.and_then(|index| fields.get(index)).and_then(|value| value.parse().ok()),
        };
        out.insert(name.to_string(), counts);
    }
    if out.is_empty() {
        return Err(format!("no server of backend {backend} in HAProxy's show stat"));
    }
    Ok(out)
}

/// A `command` balancer's `stats`: `{"web1": {"requests": 120, "errors": 3, "latency_ms": 41.5}, …}`
/// (`latency_ms` optional), cumulative.
pub fn json(stdout: &str) -> Result<BTreeMap<String, Counts>, String> {
    let value: serde_json::Value =
        serde_json::from_str(stdout.trim()).map_err(|err| format!("stats printed no JSON object: {err}"))?;
    let object = value.as_object().ok_or("stats printed JSON that is not an object of backends")?;
    let mut out = BTreeMap::new();
    for (backend, counts) in object {
        let number = |key: &str| counts.get(key).and_then(serde_json::Value::as_u64);
        let (Some(requests), Some(errors)) = (number("requests"), number("errors")) else {
            return Err(format!("stats: `{backend}` needs whole numbers `requests` and `errors`"));
        };
        let latency_ms = counts.get("latency_ms").and_then(serde_json::Value::as_f64);
        out.insert(backend.clone(), Counts { requests, errors, latency_ms });
    }
    Ok(out)
}

/// Varnish's shared log over a window: one line per backend fetch, `BACKEND STATUS
/// MICROSECONDS` (see `varnish::answers`). A fetch that failed (no answer, status `-` or
/// 503 made by Varnish) is an error. Backend names are VCL-qualified in the log
/// (`boot.web1`); the name after the last `.` is the backend.
pub fn varnish_log(stdout: &str) -> BTreeMap<String, Counts> {
    let mut out: BTreeMap<String, Counts> = BTreeMap::new();
    let mut micros: BTreeMap<String, (f64, u64)> = BTreeMap::new();
    for line in stdout.lines() {
        let mut words = line.split_whitespace();
        if line.starts_with("#fail ") {
            // Fetches that got no connection: answers that were errors.
            let (Some(backend), Some(count)) = (words.nth(1), words.next().and_then(|n| n.parse::<u64>().ok())) else {
                continue;
            };
            let backend = backend.rsplit('.').next().unwrap_or(backend);
            let counts = out.entry(backend.to_string()).or_default();
            counts.requests += count;
            counts.errors += count;
            continue;
        }
        let (Some(backend), Some(status)) = (words.next(), words.next()) else { continue };
        let backend = backend.rsplit('.').next().unwrap_or(backend);
        if backend == "-" || backend.is_empty() {
            continue;
        }
        let counts = out.entry(backend.to_string()).or_default();
        counts.requests += 1;
        if status.parse::<u16>().map_or(true, |code| code >= 500) {
            counts.errors += 1;
        }
        if let Some(took) = words.next().and_then(|value| value.parse::<f64>().ok()) {
            let entry = micros.entry(backend.to_string()).or_default();
            entry.0 += took;
            entry.1 += 1;
        }
    }
    for (backend, (total, count)) in micros {
        if let Some(counts) = out.get_mut(&backend) {
            counts.latency_ms = Some(total / count as f64 / 1000.0);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haproxy_counters_per_server() {
        let csv = "# pxname,svname,econ,eresp,status,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,rtime\n\
app,FRONTEND,,,OPEN,0,500,0,0,10,0,\n\
app,web1,1,2,UP,0,90,5,3,2,0,12\n\
app,web2,0,0,UP,0,100,0,0,0,0,8\n\
other,web1,0,0,UP,0,7,0,0,0,0,1\n\
app,BACKEND,1,2,UP,0,190,5,3,2,0,10\n";
        let counts = haproxy(csv, "app").unwrap();
        assert_eq!(counts.len(), 2);
        assert_eq!(counts["web1"], Counts { requests: 103, errors: 5, latency_ms: Some(12.0) });
        assert_eq!(counts["web2"].ratio(), 0.0);
        assert!(haproxy(csv, "nope").is_err());
        assert!(haproxy("# pxname,svname\n", "app").is_err());
    }

    #[test]
    fn deltas_sums_and_json() {
        let before = Counts { requests: 100, errors: 1, latency_ms: None };
        let now = Counts { requests: 150, errors: 6, latency_ms: Some(20.0) };
        assert_eq!(now.since(&before), Counts { requests: 50, errors: 5, latency_ms: Some(20.0) });
        // A restarted balancer: counting starts again.
        assert_eq!(before.since(&now).requests, 100);
        let sum = Counts::sum([&now.since(&before), &Counts { requests: 50, errors: 0, latency_ms: Some(10.0) }]);
        assert_eq!((sum.requests, sum.errors, sum.latency_ms), (100, 5, Some(15.0)));
        let parsed =
            json(r#"{"web1": {"requests": 3, "errors": 1, "latency_ms": 2.5}, "web2": {"requests": 0, "errors": 0}}"#)
                .unwrap();
        assert_eq!(parsed["web1"], Counts { requests: 3, errors: 1, latency_ms: Some(2.5) });
        assert!(json("[]").is_err() && json(r#"{"web1": {"requests": -1, "errors": 0}}"#).is_err());
    }

    #[test]
    fn varnish_log_lines() {
        let log =
            "boot.web1 200 1500\nboot.web1 503 2500\nweb2 200 1000\n- - -\nboot.web1 - 0\ngarbage\n#fail boot.web1 4\n";
        let counts = varnish_log(log);
        assert_eq!(counts["web1"].requests, 7);
        assert_eq!(counts["web1"].errors, 6);
        assert_eq!(counts["web1"].latency_ms, Some((1500.0 + 2500.0) / 3.0 / 1000.0));
        assert_eq!(counts["web2"], Counts { requests: 1, errors: 0, latency_ms: Some(1.0) });
    }
}
