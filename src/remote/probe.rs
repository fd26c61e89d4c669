//! Read-only probes for `deploy check`. Each is a constant script with the values passed as
//! arguments (`sh -c SCRIPT sh ARG…`), so nothing from the config becomes shell syntax.

use super::Cmd;

fn script(body: &str, args: &[&str]) -> Cmd {
    Cmd::new("sh").args(["-c", body, "sh"]).args(args.iter().copied())
}

/// Exits 0 if `path` is writable, or does not exist yet and its nearest existing parent is.
pub fn writable(path: &str) -> Cmd {
    script(
        r#"p=$1; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; test -w "$p" && test -d "$p" && echo "$p""#,
        &[path],
    )
}

/// Prints the free kilobytes of the filesystem holding `path` (or its nearest parent).
pub fn free_kb(path: &str) -> Cmd {
    script(r#"p=$1; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; df -Pk "$p" | awk 'NR==2 {print $4}'"#, &[path])
}

/// Prints each of `tools` that is not on the PATH.
pub fn missing_tools(tools: &[&str]) -> Cmd {
    script(r#"for t; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done"#, tools)
}

/// Prints `root` for root (who needs no sudo); else exits 0 if sudo works without a password.
pub fn sudo() -> Cmd {
    script(r#"if [ "$(id -u)" = 0 ]; then echo root; else sudo -n true; fi"#, &[])
}

/// Runs `cmd` (user shell code) in `dir` if it exists, else in the login folder.
pub fn in_dir(dir: &str, cmd: &str) -> Cmd {
    script(r#"if [ -d "$1" ]; then cd "$1" || exit 1; fi; eval "$2""#, &[dir, cmd])
}

/// Runs the program `words[0]` with the other words as its arguments, each exactly as
/// given (no shell reads them), in `dir` if it exists, else in the login folder.
pub fn words_in_dir(dir: &str, words: &[String]) -> Cmd {
    let mut args: Vec<&str> = vec![dir];
    args.extend(words.iter().map(String::as_str));
    script(r#"if [ -d "$1" ]; then cd "$1" || exit 1; fi; shift; exec "$@""#, &args)
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_are_arguments() {
        assert_eq!(
            super::writable("/var/www/my shop").to_string(),
            r#"sh -c 'p=$1; while [ ! -e "$p" ]; do p=$(dirname "$p"); done; test -w "$p" && test -d "$p" && echo "$p"' sh '/var/www/my shop'"#
        );
        assert_eq!(
            super::missing_tools(&["tar", "gzip"]).to_string(),
            r#"sh -c 'for t; do command -v "$t" >/dev/null 2>&1 || echo "$t"; done' sh tar gzip"#
        );
    }
}
