//! `deploy setup`: the commands that prepare a new server (the deploy path, `releases/`,
//! `shared/`, shared folders and files) and check, as the web server's user, what it can read
//! and write. Each is a constant script with the values as arguments.

use super::{Cmd, Layout};

fn script(body: &str, args: impl IntoIterator<Item = String>) -> Cmd {
    Cmd::new("sh").args(["-c", body, "sh"]).args(args)
}

/// Creates the deploy path, `releases/`, `shared/` and each shared folder, and each shared
/// file that is missing, empty. Nothing that exists is touched. Prints `created PATH` or
/// `exists PATH` per item.
pub fn make_layout(layout: &Layout, dirs: &[String], files: &[String]) -> Cmd {
    let mut args = vec![layout.root().to_string(), layout.releases(), layout.shared()];
    args.extend(dirs.iter().map(|dir| format!("d:{}/{dir}", layout.shared())));
    args.extend(files.iter().map(|file| format!("f:{}/{file}", layout.shared())));
    script(
        r#"set -e
mk() { if [ -d "$1" ]; then echo "exists $1"; else mkdir -p -- "$1"; echo "created $1"; fi; }
mk "$1"; mk "$2"; mk "$3"; shift 3
for item; do
  path=${item#?:}
  case $item in
    d:*) mk "$path" ;;
    f:*) if [ -e "$path" ] || [ -L "$path" ]; then echo "exists $path"
         else mkdir -p -- "$(dirname -- "$path")"; : > "$path"; echo "created $path"; fi ;;
  esac
done"#,
        args,
    )
}

/// Writes stdin to `path` unless it exists (then stdin is read and dropped). Prints
/// `created PATH` or `exists PATH`.
pub fn fill_missing(path: &str) -> Cmd {
    script(
        r#"set -e
if [ -e "$1" ] || [ -L "$1" ]; then cat > /dev/null; echo "exists $1"; exit 0; fi
mkdir -p -- "$(dirname -- "$1")"
cat > "$1.deploy-setup"
mv -- "$1.deploy-setup" "$1"
echo "created $1""#,
        [path.to_string()],
    )
}

/// The exit status of [`access`] when the check cannot run as that user (neither root nor
/// `sudo -n -u USER`).
pub const CANNOT_SWITCH_USER: i32 = 3;
/// The exit status of [`access`] when the user does not exist on the host.
pub const NO_SUCH_USER: i32 = 4;

/// What `user` can do, tested as that user: each check is `r:PATH` (read) or `w:PATH` (write;
/// `n:PATH` writes in a folder made the way a prepare hook makes one, under `releases/`,
/// then removed). Prints `ok CHECK` or `no CHECK` per check, in order.
pub fn access(layout: &Layout, user: &str, checks: &[String]) -> Cmd {
    let mut args = vec![user.to_string(), layout.releases()];
    args.extend(checks.iter().cloned());
    script(
        format!(
            r#"u=$1; releases=$2; shift 2
id -u "$u" > /dev/null 2>&1 || exit {NO_SUCH_USER}
if [ "$(id -u)" = 0 ]; then
  if command -v runuser > /dev/null 2>&1; then as() {{ runuser -u "$u" -- "$@"; }}
  else as() {{ su -s /bin/sh -c '"$0" "$@"' "$u" -- "$@"; }}; fi
elif sudo -n -u "$u" test -e / 2> /dev/null; then as() {{ sudo -n -u "$u" -- "$@"; }}
else exit {CANNOT_SWITCH_USER}; fi
probe=
for check; do
  mode=${{check%%:*}}; path=${{check#?:}}
  case $mode in
    r) as test -r "$path" && echo "ok $check" || echo "no $check" ;;
    w) as test -w "$path" && echo "ok $check" || echo "no $check" ;;
    n) # made as a release folder is (mkdir, not mktemp's 0700), so default ACLs apply
       [ -n "$probe" ] || {{ probe=$releases/.setup-check.$$; mkdir -- "$probe" || exit 1; }}
       mkdir -p -- "$probe/$path"
       as test -w "$probe/$path" && echo "ok $check" || echo "no $check" ;;
  esac
done
[ -z "$probe" ] || rm -rf -- "$probe""#
        )
        .as_str(),
        args,
    )
}

/// `(check, ok)` per line of [`access`]'s output.
pub fn parse_access(stdout: &str) -> Vec<(String, bool)> {
    stdout
        .lines()
        .filter_map(|line| {
            let (verdict, check) = line.split_once(' ')?;
            match verdict {
                "ok" => Some((check.to_string(), true)),
                "no" => Some((check.to_string(), false)),
                _ => None,
            }
        })
        .collect()
}

/// `(created, path)` per line of [`make_layout`] or [`fill_missing`]'s output.
pub fn parse_made(stdout: &str) -> Vec<(bool, String)> {
    stdout
        .lines()
        .filter_map(|line| {
            let (verdict, path) = line.split_once(' ')?;
            match verdict {
                "created" => Some((true, path.to_string())),
                "exists" => Some((false, path.to_string())),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_arguments_and_outputs_parse() {
        let layout = Layout::new("/var/www/my shop");
        let cmd = make_layout(&layout, &["var/log".into()], &[".env.local".into()]).to_string();
        assert!(cmd.ends_with(
            "sh '/var/www/my shop' '/var/www/my shop/releases' '/var/www/my shop/shared' 'd:/var/www/my shop/shared/var/log' 'f:/var/www/my shop/shared/.env.local'"
        ), "{cmd}");
        assert_eq!(
            parse_made("created /a\nexists /b\nnoise\n"),
            vec![(true, "/a".to_string()), (false, "/b".to_string())]
        );
        assert_eq!(
            parse_access("ok w:/x y\nno n:var/cache\n"),
            vec![("w:/x y".to_string(), true), ("n:var/cache".to_string(), false)]
        );
    }
}
