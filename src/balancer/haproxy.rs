//! HAProxy through its runtime API socket (socat on the balancer host), and the reader of
//! its `show stat` CSV.
//!
//! The runtime API line is built from backend and server names that the config check
//! restricts to letters, digits, `.`, `_` and `-`, so it cannot carry a second API command.

use crate::remote::Cmd;

pub(super) fn api(socket: &str, line: &str) -> Cmd {
    Cmd::new("printf").args(["%s\\n", line]).pipe(Cmd::new("socat").args([
        "-t",
        "5",
        "stdio",
        &format!("unix-connect:{socket}"),
    ]))
}

/// `set server BACKEND/SERVER state drain|ready`.
pub fn set_state(socket: &str, backend: &str, server: &str, state: &str) -> Cmd {
    api(socket, &format!("set server {backend}/{server} state {state}"))
}

/// The stats CSV (`scur` = current sessions, `status` = UP/DOWN/DRAIN/MAINT): read with [`row`].
pub fn stat(socket: &str) -> Cmd {
    api(socket, "show stat")
}

/// The socket's level (`admin` is needed to drain): printed as one word.
pub fn cli_level(socket: &str) -> Cmd {
    api(socket, "show cli level")
}

/// The `show stat` row of `backend/server`: (current sessions, status).
pub fn row(csv: &str, backend: &str, server: &str) -> Result<(u64, String), String> {
    let mut lines = csv.lines();
    let header = lines.next().ok_or("empty show stat output")?;
    let columns: Vec<&str> = header.trim_start_matches("# ").split(',').collect();
    let column = |name: &str| columns.iter().position(|c| *c == name).ok_or(format!("no {name} column in show stat"));
    let (proxy, server_column, sessions, status) =
        (column("pxname")?, column("svname")?, column("scur")?, column("status")?);
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        if fields.get(proxy) == Some(&backend) && fields.get(server_column) == Some(&server) {
            let current = fields.get(sessions).and_then(|v| v.parse().ok()).unwrap_or(0);
            return Ok((current, fields.get(status).unwrap_or(&"").to_string()));
        }
    }
    Err(format!("no server {backend}/{server} in HAProxy"))
}

/// How many of `servers` in `backend` are UP.
pub fn count_up(csv: &str, backend: &str, servers: &[String]) -> usize {
    servers.iter().filter(|server| row(csv, backend, server).is_ok_and(|(_, status)| status.starts_with("UP"))).count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status\n\
app,web1,0,0,3,5,,10,0,0,,0,,0,0,0,0,DRAIN\napp,web2,0,0,0,5,,10,0,0,,0,,0,0,0,0,UP\n";
        assert_eq!(super::row(csv, "app", "web1"), Ok((3, "DRAIN".into())));
        assert_eq!(super::row(csv, "app", "web2"), Ok((0, "UP".into())));
        assert!(super::row(csv, "app", "web9").is_err());
        assert_eq!(super::count_up(csv, "app", &["web1".into(), "web2".into()]), 1);
    }
}
