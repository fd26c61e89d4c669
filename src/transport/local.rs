//! Commands on the deploying machine (build commands, local balancer commands).

use super::{Output, TransportError};
use std::path::Path;
use std::process::Stdio;

/// Runs a shell line with `sh -c`, in `dir` when given, with extra environment variables.
pub async fn run_local(
    line: &str,
    dir: Option<&Path>,
    env: &[(&str, &str)],
    stdin: Option<&Path>,
) -> Result<Output, TransportError> {
    let mut c = tokio::process::Command::new("sh");
    c.arg("-c").arg(line).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    if let Some(d) = dir {
        c.current_dir(d);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    match super::stdin_file(stdin)? {
        Some(f) => c.stdin(Stdio::from(f)),
        None => c.stdin(Stdio::null()),
    };
    let out = c.output().await.map_err(|e| TransportError { message: format!("cannot run sh: {e}"), lost: false })?;
    Ok(Output {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
