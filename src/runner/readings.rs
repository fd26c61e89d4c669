//! Reading balancer output: requests in flight, probe state, whether a backend takes traffic.

/// Sum of `VBE.*.NAME.conn` values in `varnishstat -1` output; `None` when no line matched
/// (the backend name is wrong).
pub fn varnish_in_flight(out: &str) -> Option<u64> {
    let mut found = false;
    let mut sum = 0;
    for l in out.lines() {
        let mut f = l.split_whitespace();
        if let (Some(name), Some(v)) = (f.next(), f.next())
            && name.starts_with("VBE.")
            && name.ends_with(".conn")
        {
            found = true;
            sum += v.parse::<u64>().unwrap_or(0);
        }
    }
    found.then_some(sum)
}

/// One row of `varnishadm backend.list`.
#[derive(Debug, PartialEq, Eq)]
pub struct VarnishBackend {
    pub name: String,
    /// `probe`/`auto`, `sick` or `healthy`.
    pub admin: String,
    /// Good probes and window, e.g. (3, 3).
    pub probe: Option<(u32, u32)>,
    pub healthy: bool,
}

/// Rows of `backend.list` (Varnish 6 and 7 layouts).
pub fn varnish_backends(out: &str) -> Vec<VarnishBackend> {
    let mut rows = Vec::new();
    for l in out.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() < 3 || f[0] == "Backend" || !f[0].contains('.') {
            continue;
        }
        let probe = f.iter().find_map(|w| {
            let (g, n) = w.split_once('/')?;
            Some((g.parse().ok()?, n.parse().ok()?))
        });
        let healthy = f[2..].iter().any(|w| w.eq_ignore_ascii_case("healthy"))
            && !f[2..].iter().any(|w| w.eq_ignore_ascii_case("sick"));
        rows.push(VarnishBackend { name: f[0].to_string(), admin: f[1].to_ascii_lowercase(), probe, healthy });
    }
    rows
}

/// Every row's probe window is full of good probes (ignoring the admin state).
pub fn varnish_probe_full(out: &str) -> Result<bool, String> {
    let rows = varnish_backends(out);
    if rows.is_empty() {
        return Err("no such backend in backend.list".into());
    }
    Ok(rows.iter().all(|r| match r.probe {
        Some((g, n)) => n > 0 && g == n,
        None => r.healthy,
    }))
}

/// Every row takes traffic: admin state `probe`/`auto` and healthy (or admin `healthy`).
pub fn varnish_in_service(out: &str) -> Result<bool, String> {
    let rows = varnish_backends(out);
    if rows.is_empty() {
        return Err("no such backend in backend.list".into());
    }
    Ok(rows.iter().all(|r| r.admin == "healthy" || ((r.admin == "probe" || r.admin == "auto") && r.healthy)))
}

/// How many of `backends` take traffic in every VCL that has them.
pub fn varnish_count_in_service(out: &str, backends: &[String]) -> usize {
    let rows = varnish_backends(out);
    backends
        .iter()
        .filter(|b| {
            let mine: Vec<&VarnishBackend> =
                rows.iter().filter(|r| r.name.rsplit_once('.').is_some_and(|(_, n)| n == b.as_str())).collect();
            !mine.is_empty()
                && mine.iter().all(|r| r.admin == "healthy" || ((r.admin == "probe" || r.admin == "auto") && r.healthy))
        })
        .count()
}

/// How many of `servers` in `backend` are UP in `show stat`.
pub fn haproxy_count_up(csv: &str, backend: &str, servers: &[String]) -> usize {
    servers.iter().filter(|s| haproxy_row(csv, backend, s).is_ok_and(|(_, st)| st.starts_with("UP"))).count()
}

/// The `show stat` CSV row of `backend/server`: (current sessions, status).
pub fn haproxy_row(csv: &str, backend: &str, server: &str) -> Result<(u64, String), String> {
    let mut lines = csv.lines();
    let header = lines.next().ok_or("empty show stat output")?;
    let cols: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let idx = |name: &str| cols.iter().position(|c| *c == name).ok_or(format!("no {name} column in show stat"));
    let (px, sv, scur, status) = (idx("pxname")?, idx("svname")?, idx("scur")?, idx("status")?);
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        if f.get(px) == Some(&backend) && f.get(sv) == Some(&server) {
            let cur = f.get(scur).and_then(|v| v.parse().ok()).unwrap_or(0);
            return Ok((cur, f.get(status).unwrap_or(&"").to_string()));
        }
    }
    Err(format!("no server {backend}/{server} in HAProxy"))
}

/// An HTTP status printed by curl `-w '%{http_code}'` (`000` = no answer).
pub fn http_status(out: &str) -> Option<u16> {
    out.trim().parse().ok().filter(|s| *s > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V7: &str = "Backend name   Admin    Probe    Health    Last change\n\
boot.web1      sick     3/3      sick      Thu, 26 Nov 2026 07:09:39 GMT\n\
reload_1.web1  probe    2/3      healthy   Thu, 26 Nov 2026 07:09:39 GMT\n";

    #[test]
    fn varnish() {
        assert_eq!(varnish_in_flight("VBE.boot.web1.conn 2 . x\nVBE.reload.web1.conn 1 . x\n"), Some(3));
        assert_eq!(varnish_in_flight(""), None);
        let rows = varnish_backends(V7);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            VarnishBackend { name: "boot.web1".into(), admin: "sick".into(), probe: Some((3, 3)), healthy: false }
        );
        assert_eq!(varnish_probe_full(V7), Ok(false), "one VCL's window is not full");
        assert_eq!(varnish_in_service(V7), Ok(false));
        let ok = "Backend name Admin Probe Health Last change\nboot.web1 probe 3/3 healthy Thu\n";
        assert_eq!(varnish_probe_full(ok), Ok(true));
        assert_eq!(varnish_in_service(ok), Ok(true));
        let v6 = "Backend name                   Admin      Probe                Last updated\nboot.web1                      probe      Healthy 5/5          Thu\n";
        assert_eq!(varnish_in_service(v6), Ok(true));
        assert!(varnish_in_service("Backend name Admin Probe Health Last change\n\n").is_err());
        let all = "Backend name Admin Probe Health Last change\nboot.web1 probe 3/3 healthy x\nboot.web2 sick 3/3 sick x\nboot.web3 probe 1/3 sick x\nboot.web10 probe 3/3 healthy x\n";
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(varnish_count_in_service(all, &names(&["web1", "web2", "web3"])), 1);
        assert_eq!(varnish_count_in_service(all, &names(&["web1", "web10", "web9"])), 2);
    }

    #[test]
    fn haproxy() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\n\
app,web1,0,0,3,5,,10,0,0,,0,,0,0,0,0,DRAIN\napp,web2,0,0,0,5,,10,0,0,,0,,0,0,0,0,UP\n";
        assert_eq!(haproxy_row(csv, "app", "web1"), Ok((3, "DRAIN".into())));
        assert_eq!(haproxy_row(csv, "app", "web2"), Ok((0, "UP".into())));
        assert!(haproxy_row(csv, "app", "web9").is_err());
    }

    #[test]
    fn statuses() {
        assert_eq!(http_status("200"), Some(200));
        assert_eq!(http_status("000"), None);
        assert_eq!(http_status("curl: (7) failed"), None);
    }
}
