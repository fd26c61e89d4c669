//! HAProxy through its runtime API socket (socat on the balancer host).
//!
//! The runtime API line is built from backend and server names that the config check
//! restricts to letters, digits, `.`, `_` and `-`, so it cannot carry a second API command.

use crate::remote::Cmd;

fn api(socket: &str, line: &str) -> Cmd {
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

/// The stats CSV (`scur` = current sessions, `status` = UP/DOWN/DRAIN/MAINT).
pub fn stat(socket: &str) -> Cmd {
    api(socket, "show stat")
}
