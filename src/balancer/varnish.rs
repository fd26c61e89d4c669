//! Varnish through varnishadm and varnishstat, run on the balancer host, and the readers of
//! what they print.

use crate::config::Balancer;
use crate::remote::Cmd;

/// `varnishadm -T ADMIN -S SECRET` (varnishadm refuses `-n` together with `-T`/`-S`; the
/// instance name is only for varnishstat).
pub fn admin(admin: &str, secret: &str) -> Cmd {
    Cmd::new("varnishadm").args(["-T", admin, "-S", secret])
}

pub(super) fn base(balancer: &Balancer) -> Cmd {
    match balancer {
        Balancer::Varnish { admin: address, secret, .. } => admin(address, secret),
        _ => unreachable!("varnish command for a {} balancer", balancer.kind()),
    }
}

/// Backends are named `VCL.backend`; `*.NAME` matches the backend in every loaded VCL, so a
/// VCL reload cannot silently undo a drain.
fn pattern(backend: &str) -> String {
    format!("*.{backend}")
}

pub fn set_health(balancer: &Balancer, backend: &str, state: &str) -> Cmd {
    base(balancer).args(["backend.set_health", &pattern(backend), state])
}

/// One backend in every VCL: read with [`probe_full`] and [`in_service`].
pub fn backend_list(balancer: &Balancer, backend: &str) -> Cmd {
    base(balancer).args(["backend.list", &pattern(backend)])
}

/// Every backend of every VCL: read with [`count_in_service`].
pub fn backend_list_all(balancer: &Balancer) -> Cmd {
    // `*.*`: the backends of every warm VCL, not only the active one; during maintenance the
    // active VCL is deploy's, which has none (see `maintenance`).
    base(balancer).args(["backend.list", "*.*"])
}

/// Open connections to the backend, in every VCL: read with [`in_flight`]. Without an
/// `instance`, the `-n` folder of the one varnishd running on the host is used (from its
/// command line); with none or several, varnishstat's own default.
pub fn connections(balancer: &Balancer, backend: &str) -> Cmd {
    let field = format!("VBE.*.{backend}.conn");
    match balancer {
        Balancer::Varnish { instance: Some(name), .. } => {
            Cmd::new("varnishstat").args(["-n", name.as_str(), "-1", "-f", field.as_str()])
        }
        _ => with_instance(balancer, STAT, &[&field]),
    }
}

/// `sh -c 'FIND_N BODY' sh INSTANCE ARGS…`: the body runs with `$n` set to the `-n` folder
/// (empty: varnish's default) and the other arguments as `$1`….
fn with_instance(balancer: &Balancer, body: &str, args: &[&str]) -> Cmd {
    let instance = match balancer {
        Balancer::Varnish { instance: Some(name), .. } => name.as_str(),
        _ => "",
    };
    let script = format!("{FIND_N}{body}");
    Cmd::new("sh").args(["-c", script.as_str(), "sh", instance]).args(args.iter().copied())
}

/// Sets `n` to the given instance, else to the `-n` of the one varnishd running here
/// (manager and child share it; none, several or the default: empty). It runs at every poll
/// of the drain wait: `pgrep` finds the few varnishd processes, instead of a shell loop over
/// every process on the host.
const FIND_N: &str = r#"n=$1; shift
if [ -z "$n" ]; then
  n=$(for p in $(pgrep -x varnishd 2>/dev/null); do
    tr '\000' '\n' < "/proc/$p/cmdline" 2>/dev/null | awk 'f {print; d=1; exit} $0 == "-n" {f=1; next} /^-n./ {print substr($0, 3); d=1; exit} END {if (!d) print "-"}'
  done | sort -u)
  { [ "$(printf '%s\n' "$n" | grep -c .)" = 1 ] && [ "$n" != - ]; } || n=
fi
"#;

const STAT: &str = r#"if [ -n "$n" ]; then exec varnishstat -n "$n" -1 -f "$1"; fi
exec varnishstat -1 -f "$1""#;

/// What every backend answered for `window`: varnishncsa in backend mode for that long, one
/// line per fetch (`BACKEND STATUS MICROSECONDS`), then `#fail BACKEND N` for each backend
/// whose `VBE.*.fail` counter (fetches that got no connection, so no log line names the
/// backend) grew meanwhile. Read with `counts::varnish_log`.
pub fn answers(balancer: &Balancer, window: std::time::Duration) -> Cmd {
    let seconds = window.as_secs().max(1).to_string();
    with_instance(balancer, ANSWERS, &[&seconds])
}

const ANSWERS: &str = r##"secs=$1
fails() { if [ -n "$n" ]; then varnishstat -n "$n" -1 -f 'VBE.*.fail'; else varnishstat -1 -f 'VBE.*.fail'; fi; }
before=$(fails) || exit
fmt='%{VSL:BackendOpen[2]}x %s %D'
if [ -n "$n" ]; then timeout -s INT "$secs" varnishncsa -n "$n" -b -F "$fmt"; else timeout -s INT "$secs" varnishncsa -b -F "$fmt"; fi
rc=$?; [ "$rc" = 0 ] || [ "$rc" = 124 ] || exit "$rc"
after=$(fails) || exit
printf '%s\n--\n%s\n' "$before" "$after" | awk '$0 == "--" {a = 1; next} !a {b[$1] = $2; next} {d = $2 - b[$1]; if (d > 0) {name = $1; sub(/^VBE\./, "", name); sub(/\.fail$/, "", name); print "#fail", name, d}}'"##;

/// What to say when varnishstat fails: it could not find varnishd's shared memory.
pub const NOT_FOUND_HINT: &str = "varnishstat cannot find varnishd: set the balancer's `instance` to varnishd's -n folder \
     (its command line shows it: `ps -o args= -C varnishd`)";

/// One Varnish CLI command, as one argument of `varnishadm`: varnishadm joins its arguments
/// with spaces and does not quote them, so the quoting for the CLI is done here. A word that
/// is empty or holds a blank, `"` or `\\` goes in double quotes, with `"` and `\\` escaped.
/// (Control characters are refused when the config is read: the CLI ends a command at a
/// newline.)
pub fn cli_line(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|word| {
            let plain = !word.is_empty() && !word.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\');
            if plain {
                return word.clone();
            }
            let mut out = String::from('"');
            for character in word.chars() {
                if character == '"' || character == '\\' {
                    out.push('\\');
                }
                out.push(character);
            }
            out.push('"');
            out
        })
        .collect();
    quoted.join(" ")
}

/// Sum of the `VBE.*.NAME.conn` values [`connections`] printed; `None` when no line matched
/// (the backend name is wrong).
pub fn in_flight(stdout: &str) -> Option<u64> {
    let mut found = false;
    let mut sum = 0;
    for line in stdout.lines() {
        let mut fields = line.split_whitespace();
        if let (Some(name), Some(value)) = (fields.next(), fields.next())
            && name.starts_with("VBE.")
            && name.ends_with(".conn")
        {
            found = true;
            sum += value.parse::<u64>().unwrap_or(0);
        }
    }
    found.then_some(sum)
}

/// One row of `varnishadm backend.list`.
#[derive(Debug, PartialEq, Eq)]
pub struct BackendRow {
    pub name: String,
    /// `probe`/`auto`, `sick` or `healthy`.
    pub admin: String,
    /// Good probes and window, e.g. (3, 3).
    pub probe: Option<(u32, u32)>,
    pub healthy: bool,
}

impl BackendRow {
    /// Takes traffic: admin state `probe`/`auto` and healthy, or admin `healthy`.
    fn in_service(&self) -> bool {
        self.admin == "healthy" || ((self.admin == "probe" || self.admin == "auto") && self.healthy)
    }
}

/// Rows of `backend.list` (Varnish 6 and 7 layouts).
pub fn backends(stdout: &str) -> Vec<BackendRow> {
    let mut rows = Vec::new();
    for line in stdout.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.len() < 3 || fields[0] == "Backend" || !fields[0].contains('.') {
            continue;
        }
        let probe = fields.iter().find_map(|word| {
            let (good, window) = word.split_once('/')?;
            Some((good.parse().ok()?, window.parse().ok()?))
        });
        let healthy = fields[2..].iter().any(|word| word.eq_ignore_ascii_case("healthy"))
            && !fields[2..].iter().any(|word| word.eq_ignore_ascii_case("sick"));
        rows.push(BackendRow { name: fields[0].to_string(), admin: fields[1].to_ascii_lowercase(), probe, healthy });
    }
    rows
}

/// Every row's probe window is full of good probes (ignoring the admin state).
pub fn probe_full(stdout: &str) -> Result<bool, String> {
    let rows = backends(stdout);
    if rows.is_empty() {
        return Err("no such backend in backend.list".into());
    }
    Ok(rows.iter().all(|row| match row.probe {
        Some((good, window)) => window > 0 && good == window,
        None => row.healthy,
    }))
}

/// Every row takes traffic.
pub fn in_service(stdout: &str) -> Result<bool, String> {
    let rows = backends(stdout);
    if rows.is_empty() {
        return Err("no such backend in backend.list".into());
    }
    Ok(rows.iter().all(BackendRow::in_service))
}

/// Is `backend` in the list (in any VCL)?
pub fn lists(stdout: &str, backend: &str) -> bool {
    backends(stdout).iter().any(|row| row.name.rsplit_once('.').is_some_and(|(_, name)| name == backend))
}

/// How many of `names` take traffic in every VCL that has them.
pub fn count_in_service(stdout: &str, names: &[String]) -> usize {
    let rows = backends(stdout);
    names
        .iter()
        .filter(|backend| {
            let mine: Vec<&BackendRow> = rows
                .iter()
                .filter(|row| row.name.rsplit_once('.').is_some_and(|(_, name)| name == backend.as_str()))
                .collect();
            !mine.is_empty() && mine.iter().all(|row| row.in_service())
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const V7: &str = "Backend name   Admin    Probe    Health    Last change\n\
boot.web1      sick     3/3      sick      Thu, 26 Nov 2026 07:09:39 GMT\n\
reload_1.web1  probe    2/3      healthy   Thu, 26 Nov 2026 07:09:39 GMT\n";

    #[test]
    fn readings() {
        assert_eq!(in_flight("VBE.boot.web1.conn 2 . x\nVBE.reload.web1.conn 1 . x\n"), Some(3));
        assert_eq!(in_flight(""), None);
        let rows = backends(V7);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            BackendRow { name: "boot.web1".into(), admin: "sick".into(), probe: Some((3, 3)), healthy: false }
        );
        assert_eq!(probe_full(V7), Ok(false), "one VCL's window is not full");
        assert_eq!(in_service(V7), Ok(false));
        let ok = "Backend name Admin Probe Health Last change\nboot.web1 probe 3/3 healthy Thu\n";
        assert_eq!(probe_full(ok), Ok(true));
        assert_eq!(in_service(ok), Ok(true));
        let v6 = "Backend name                   Admin      Probe                Last updated\nboot.web1                      probe      Healthy 5/5          Thu\n";
        assert_eq!(in_service(v6), Ok(true));
        assert!(in_service("Backend name Admin Probe Health Last change\n\n").is_err());
        let all = "Backend name Admin Probe Health Last change\nboot.web1 probe 3/3 healthy x\nboot.web2 sick 3/3 sick x\nboot.web3 probe 1/3 sick x\nboot.web10 probe 3/3 healthy x\n";
        let names = |list: &[&str]| list.iter().map(|name| name.to_string()).collect::<Vec<_>>();
        assert_eq!(count_in_service(all, &names(&["web1", "web2", "web3"])), 1);
        assert_eq!(count_in_service(all, &names(&["web1", "web10", "web9"])), 2);
        assert!(lists(all, "web10") && !lists(all, "web9"));
    }
}
