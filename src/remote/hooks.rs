//! Hooks and migrations: user shell commands, run in a release folder.

use super::{Cmd, Layout};
use std::time::Duration;

/// What a hook can read from its environment, and how long it may run.
#[derive(Debug, Clone)]
pub struct HookEnv<'a> {
    pub stage: &'a str,
    pub release: &'a str,
    pub path: &'a str,
    /// `[hooks] timeout`.
    pub timeout: Duration,
}

/// Grace between the TERM that ends a hook past its time and the KILL.
pub const KILL_AFTER: Duration = Duration::from_secs(10);

/// The exit statuses of `timeout` when it cut the hook off (TERM, then KILL).
pub fn timed_out(status: Option<i32>) -> bool {
    matches!(status, Some(124 | 137))
}

/// `cd` into `dir`, then run the user's command with `sh -c`: the hook is shell code by
/// design, passed as one quoted word, so nothing around it can change its meaning.
///
/// It runs under `timeout`, which makes itself a process group and, past `env.timeout`,
/// ends the whole group (TERM, then KILL [`KILL_AFTER`] later): a hook that hangs is killed
/// on the host with everything it started. The shell writes its pid to the host's
/// `hook.pid` and `exec`s `timeout` in its place, so that pid is the group's, for [`stop`].
pub fn run(dir: &str, hook: &str, env: &HookEnv) -> Cmd {
    let pid_file = Layout::new(env.path).hook_pid();
    Cmd::new("cd")
        .args(["--", dir])
        .and(Cmd::new("sh").args(["-c", r#"echo "$PPID" > "$1" 2>/dev/null; true"#, "sh", &pid_file]))
        .and(
            Cmd::new("exec")
                .arg("env")
                .arg(format!("DEPLOY_STAGE={}", env.stage))
                .arg(format!("DEPLOY_RELEASE={}", env.release))
                .arg(format!("DEPLOY_PATH={}", env.path))
                .args(["timeout", "-k", &seconds(KILL_AFTER), &seconds(env.timeout)])
                .shell(hook),
        )
}

/// Stops the hook running on the host (Ctrl-C, SIGTERM or SIGHUP reached deploy): TERM to
/// its process group, KILL 5 s later if anything is left. Only a pid that is still a
/// `timeout` process is signalled (the file may be stale).
pub fn stop(layout: &Layout) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        r#"p=$(cat -- "$1" 2>/dev/null) || exit 0
[ "$(cat "/proc/$p/comm" 2>/dev/null)" = timeout ] || exit 0
kill -TERM -- "-$p" 2>/dev/null
for try in 1 2 3 4 5 6 7 8 9 10; do kill -0 -- "-$p" 2>/dev/null || exit 0; sleep 0.5; done
kill -KILL -- "-$p" 2>/dev/null; true"#,
        "sh",
        &layout.hook_pid(),
    ])
}

fn seconds(duration: Duration) -> String {
    format!("{}s", duration.as_secs().max(1))
}

/// A user command with `{host}`/`{backend}` placeholders (command balancers and caches):
/// each placeholder becomes the quoted value, then the whole runs with `sh -c`.
pub fn templated(template: &str, host: &str, backend: &str) -> Cmd {
    let filled = template.replace("{host}", &super::quote(host)).replace("{backend}", &super::quote(backend));
    Cmd::script(filled)
}
