//! Hooks and migrations: user shell commands, run in a release folder.

use super::Cmd;

/// What a hook can read from its environment.
#[derive(Debug, Clone)]
pub struct HookEnv<'a> {
    pub stage: &'a str,
    pub release: &'a str,
    pub path: &'a str,
}

/// `cd` into `dir`, then run the user's command with `sh -c`: the hook is shell code by
/// design, passed as one quoted word, so nothing around it can change its meaning.
pub fn run(dir: &str, hook: &str, env: &HookEnv) -> Cmd {
    Cmd::new("cd").args(["--", dir]).and(
        Cmd::new("env")
            .arg(format!("DEPLOY_STAGE={}", env.stage))
            .arg(format!("DEPLOY_RELEASE={}", env.release))
            .arg(format!("DEPLOY_PATH={}", env.path))
            .shell(hook),
    )
}

/// A user command with `{host}`/`{backend}` placeholders (command balancers and caches):
/// each placeholder becomes the quoted value, then the whole runs with `sh -c`.
pub fn templated(template: &str, host: &str, backend: &str) -> Cmd {
    let filled = template.replace("{host}", &super::quote(host)).replace("{backend}", &super::quote(backend));
    Cmd::script(filled)
}
