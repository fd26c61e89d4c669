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
    let mut command = tokio::process::Command::new("sh");
    command.arg("-c").arg(line).stdout(Stdio::piped()).stderr(Stdio::piped()).kill_on_drop(true);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    for (name, value) in env {
        command.env(name, value);
    }
    match super::stdin_file(stdin)? {
        Some(file) => command.stdin(Stdio::from(file)),
        None => command.stdin(Stdio::null()),
    };
    let out = command
        .output()
        .await
        .map_err(|err| TransportError { message: format!("cannot run sh: {err}"), lost: false })?;
    Ok(Output {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}
