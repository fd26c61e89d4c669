//! Receiving, unpacking and switching releases; the release log; cleanup. Each command's
//! output is read by the parser beside it.

use super::{Cmd, Layout};
use serde::{Deserialize, Serialize};

/// Where the release's bookkeeping travels inside a tarball: `.git` is never part of an
/// export, so these names cannot clash with the app's files. The host moves the manifest out
/// and removes `.git` before anything else sees the release.
pub const META_DIR: &str = ".git/deploy";

/// Receives the artifact on stdin and unpacks it in the same pass into a hidden folder
/// (`releases/.<id>.partial`), hashing the bytes on the way (`tee` into a pipe `sha256sum`
/// reads): the tarball is never written to the host's disk. Prints the sha256 (read with
/// [`received_sha256`]), which the runner compares with the one it sent before [`unpack`]
/// renames the folder into place; a failed or mismatched receive is removed with the release
/// ([`remove`]). The hidden folder is made with `mkdir` without `-p`: never unpacked over.
pub fn receive(layout: &Layout, id: &str) -> Cmd {
    arriving(layout, id, RECEIVE_SCRIPT, None)
}

/// The folders a release arrives in, then `script` with the hidden folder, the pipe and
/// `tries` (a fetch's) as arguments.
fn arriving(layout: &Layout, id: &str, script: &str, tries: Option<u32>) -> Cmd {
    let fifo = layout.incoming(id);
    let dir = fifo.rsplit_once('/').map(|(dir, _)| dir.to_string()).unwrap_or_default();
    let tries = tries.map(|tries| tries.max(1).to_string());
    Cmd::new("mkdir")
        .args(["-p", "--", &dir, &layout.releases(), &layout.shared()])
        .and(Cmd::new("sh").args(["-c", script, "sh", &layout.partial(id), &fifo]).args(tries))
}

/// Unpacks stdin into `$1` while `sha256sum` hashes the same bytes through the pipe `$2`, and
/// prints the sum. tar's status is the script's; after tar, the rest of the input is read, so
/// the sum always covers every byte sent (and a mismatch, not a hang, follows a short read).
const RECEIVE_SCRIPT: &str = r#"mkdir -- "$1" && rm -f -- "$2" && mkfifo -- "$2" || exit 1
sha256sum < "$2" & sum=$!
tee -- "$2" | { tar -xzf - -C "$1"; status=$?; cat > /dev/null; exit $status; }
status=$?
wait "$sum" || status=1
rm -f -- "$2"
exit $status"#;

/// The exit status of [`fetch`] when every try got other bytes than the sha256 it was given.
pub const FETCH_MISMATCH: i32 = 66;

/// Like [`receive`], but the host fetches the tarball itself from the artifact store with
/// curl. Stdin holds the sha256 it must get, then curl's config ([`fetch_input`]): the URL
/// and headers never reach a command line. Each try unpacks into a fresh hidden folder while
/// hashing; a try that fails (curl, tar, or another sha256) is retried after a pause, up to
/// `tries` times, then the fetch fails (exit [`FETCH_MISMATCH`] when the bytes were wrong).
pub fn fetch(layout: &Layout, id: &str, tries: u32) -> Cmd {
    arriving(layout, id, FETCH_SCRIPT, Some(tries))
}

/// Args: the hidden folder, the pipe, the number of tries. curl fails on an HTTP error
/// (`-f`), gives up on a connection after 10 s and on a transfer slower than 1 KB/s for 30 s.
const FETCH_SCRIPT: &str = r#"IFS= read -r want || exit 1
conf=$(cat)
n=0
while :; do
  n=$((n + 1))
  [ "$n" = 1 ] || rm -rf -- "$1" || exit 1
  mkdir -- "$1" && rm -f -- "$2" && mkfifo -- "$2" || exit 1
  sha256sum < "$2" > "$2.sum" & sum=$!
  { printf '%s\n' "$conf" | curl -K - -fsS -g --connect-timeout 10 --speed-limit 1024 --speed-time 30; echo $? > "$2.curl"; } | tee -- "$2" | { tar -xzf - -C "$1"; status=$?; cat > /dev/null; exit $status; }
  status=$?
  wait "$sum" || status=1
  fetched=$(cat -- "$2.curl" 2>/dev/null) got=$(cut -d ' ' -f 1 < "$2.sum" 2>/dev/null)
  rm -f -- "$2" "$2.curl" "$2.sum"
  if [ "$fetched" = 0 ] && [ "$status" = 0 ] && [ "$got" = "$want" ]; then echo "$got  -"; exit 0; fi
  bad=1
  if [ "$fetched" != 0 ]; then why="curl exit $fetched"; elif [ "$got" != "$want" ]; then why="got sha256 $got, expected $want"; bad=66; else why="tar exit $status"; fi
  echo "fetch $n of $3 failed: $why" >&2
  [ "$n" -lt "$3" ] || exit $bad
  sleep "$n"
done"#;

/// What [`fetch`] reads on stdin: the sha256, then curl's config lines.
pub fn fetch_input(sha256: &str, url: &str, headers: &[(String, String)]) -> String {
    let mut input = format!("{sha256}\n");
    for (key, value) in super::health::curl_options(url, headers) {
        input.push_str(&format!("{key} = \"{}\"\n", super::health::curl_escape(&value)));
    }
    input
}

/// The sha256 in [`receive`]'s output (`None`: the host printed nothing).
pub fn received_sha256(stdout: &str) -> Option<&str> {
    stdout.split_whitespace().next()
}

/// How a file is listed: inode, size, modification time (seconds), mode, owner, group, path
/// (`./…`), NUL-terminated. An edit in place changes the time, a replacement the inode, a
/// `chmod` or `chown` the rest; hard-linking does not change it.
pub const STAT_FORMAT: &str = "%i %s %Y %a %u %g %n\\0";

/// The exit status of [`unpack`] when the files a delta leaves out cannot be hard-linked from
/// the current release, or changed there since deploy read them: the host then gets the whole
/// release. No other part of the unpack exits with it (tar exits 0–2, the others 0 or 1).
pub const WARM_RELEASE_REFUSED: i32 = 3;

/// Did [`unpack`] refuse the warm release (see [`WARM_RELEASE_REFUSED`])?
pub fn refused_warm_release(status: Option<i32>) -> bool {
    status == Some(WARM_RELEASE_REFUSED)
}

/// Takes the files a delta leaves out from the current release, and checks that each is
/// unchanged since that release was unpacked: its `stat` line (inode, size, time, mode,
/// owner, path) must be in the host's own listing of the release, written when it was
/// unpacked. Any problem exits [`WARM_RELEASE_REFUSED`] with a line starting `warm release:`
/// (shown to the user). `copy`: the source files are checked before and after
/// `cp --reflink=auto`, which gives the new release its own inodes (with the mode and time of
/// the source). `hardlink`: the links are checked, and kept in the manifests folder for
/// [`check_links`]. Args: current, new release, its `.git/deploy` folder, the stat format,
/// copy|hardlink, the file to keep the link list in, the manifests folder. Nothing to take:
/// nothing done.
fn link_script() -> String {
    format!(
        r#"cur=$1 rel=$2 meta=$3 fmt=$4 how=$5 keep=$6
[ -s "$meta/links" ] || exit 0
id=$(readlink -- "$cur") && tr '\0' '\n' < "$7/${{id##*/}}.files" > "$meta/trusted" || {{ echo "warm release: no listing of the current release" >&2; exit {refused}; }}
cd "$cur" 2>/dev/null || {{ echo "warm release: cannot enter $cur" >&2; exit {refused}; }}
same() {{ xargs -0 stat --printf "$fmt" -- < "$meta/links" > "$meta/got" && tr '\0' '\n' < "$meta/got" > "$meta/got.lines" && ! grep -qvxF -f "$meta/trusted" "$meta/got.lines"; }}
if [ "$how" = hardlink ]; then
  xargs -0 cp -l --parents -t "$rel" -- < "$meta/links" || {{ echo "warm release: hard-linking from $cur failed" >&2; exit {refused}; }}
  cd "$rel" && same || {{ echo "warm release: files of $cur changed since it was unpacked" >&2; exit {refused}; }}
  cp -- "$meta/links" "$keep.links" && cp -- "$meta/got" "$keep.expect" || {{ echo "warm release: cannot keep the list of links" >&2; exit {refused}; }}
else
  same || {{ echo "warm release: files of $cur changed since it was unpacked" >&2; exit {refused}; }}
  xargs -0 cp --reflink=auto --preserve=mode,timestamps --parents -t "$rel" -- < "$meta/links" || {{ echo "warm release: copying from $cur failed" >&2; exit {refused}; }}
  same || {{ echo "warm release: files of $cur changed while they were copied" >&2; exit {refused}; }}
fi"#,
        refused = WARM_RELEASE_REFUSED
    )
}

/// With `reuse = "hardlink"`: checks, after the prepare hooks, that no file the new release
/// shares with the live one was written, truncated or `chmod`ed through it. Fails naming the
/// first ten that were (the live release was changed with them).
pub fn check_links(layout: &Layout, id: &str) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        r#"keep=$2
[ -s "$keep.links" ] || exit 0
cd "$1" && xargs -0 stat --printf "$3" -- < "$keep.links" > "$keep.got" || exit 1
cmp -s "$keep.expect" "$keep.got" && exit 0
echo 'reuse = "hardlink": a prepare hook wrote into files this release shares with the live one, which changed too:' >&2
tr '\0' '\n' < "$keep.expect" > "$keep.expect.lines"; tr '\0' '\n' < "$keep.got" | grep -vxF -f "$keep.expect.lines" | cut -d' ' -f7- | head -n 10 >&2; rm -f -- "$keep.expect.lines"
echo 'set [build] reuse = "copy" (the default), or keep hooks from writing into shipped files' >&2
exit 1"#,
        "sh",
        &layout.release(id),
        &format!("{}/{id}", layout.manifests()),
        STAT_FORMAT,
    ])
}

/// Lists every file of a release (`STAT_FORMAT`) into a file; never fails the unpack: without
/// a listing the next deploy trusts nothing and sends every file. Args: release, output file.
const LISTING_SCRIPT: &str =
    r#"cd "$1" && find . -type f -print0 | xargs -0 -r stat --printf "$3" -- > "$2" || rm -f -- "$2"; true"#;

/// Finishes the verified release in its hidden folder: hard-links (or copies) the files a
/// delta leaves out from the current release and checks them; keeps the manifest outside the
/// release; writes `REVISION`; then renames the folder to `releases/<id>` (`mv -T` fails on a
/// folder of that name that is not empty: never over a live release) and lists every file
/// (what the next delta trusts). A full tarball lists no links, so nothing is read from
/// `current`. `hard_links`: share the unchanged files' inodes with the current release
/// (`reuse = "hardlink"`) instead of copying them.
pub fn unpack(layout: &Layout, id: &str, commit: &str, hard_links: bool) -> Cmd {
    let part = layout.partial(id);
    let dir = layout.release(id);
    let meta = format!("{part}/{META_DIR}");
    Cmd::new("mkdir")
        .args(["-p", "--", &layout.manifests()])
        .and(Cmd::new("sh").args([
            "-c",
            &link_script(),
            "sh",
            &layout.current(),
            &part,
            &meta,
            STAT_FORMAT,
            if hard_links { "hardlink" } else { "copy" },
            &format!("{}/{id}", layout.manifests()),
            &layout.manifests(),
        ]))
        // REVISION is written beside the manifest and renamed into place: a `REVISION` symlink
        // in the release is replaced, never written through.
        .and(Cmd::new("printf").args(["%s\\n", commit]).write_to(format!("{meta}/REVISION")))
        .and(Cmd::new("mv").args(["-fT", "--", &format!("{meta}/REVISION"), &format!("{part}/REVISION")]))
        .and(Cmd::new("mv").args(["-f", "--", &format!("{meta}/manifest"), &layout.manifest(id)]))
        .and(Cmd::new("rm").args(["-rf", "--", &format!("{part}/.git")]))
        .and(Cmd::new("mv").args(["-T", "--", &part, &dir]))
        .and(Cmd::new("sh").args(["-c", LISTING_SCRIPT, "sh", &dir, &layout.listing(id), STAT_FORMAT]))
}

/// The manifest of a release on the host (none for releases made before manifests).
pub fn manifest(layout: &Layout, id: &str) -> Cmd {
    Cmd::new("cat").args(["--", &layout.manifest(id)])
}

/// The listing written when a release was unpacked.
pub fn unpacked_listing(layout: &Layout, id: &str) -> Cmd {
    Cmd::new("cat").args(["--", &layout.listing(id)])
}

/// The same listing of the current release, now.
pub fn current_listing(layout: &Layout) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        r#"cd "$1" && find . -type f -print0 | xargs -0 -r stat --printf "$2" --"#,
        "sh",
        &layout.current(),
        STAT_FORMAT,
    ])
}

/// The release `current` points to (`releases/<id>`), if any: read with [`current_release`].
pub fn current(layout: &Layout) -> Cmd {
    Cmd::new("readlink").args(["--", &layout.current()])
}

/// The exit status of [`current_for_site`] when another site deployed here last.
pub const OTHER_STAGE: i32 = 65;

/// [`current`], refused (exit [`OTHER_STAGE`], the reason on stderr) when the release log's
/// last line is another site's: two stages of different sites that list the same host and
/// path would replace each other's release (a staging deploy taking production's hosts,
/// without its balancer). A line without a site (written before sites) counts its stage.
pub fn current_for_site(layout: &Layout, stage: &str, site: &str) -> Cmd {
    const SCRIPT: &str = r#"readlink -- "$1" || true
last=$(tail -n 1 -- "$2" 2>/dev/null)
site=$(printf '%s\n' "$last" | sed -n 's/.*"site":"\([^"]*\)".*/\1/p')
other=$(printf '%s\n' "$last" | sed -n 's/.*"stage":"\([^"]*\)".*/\1/p')
[ -n "$site" ] || site=$other
if [ -n "$site" ] && [ "$site" != "$4" ]; then
  printf 'the last release here was deployed by stage `%s`; deploying stage `%s` would replace what `%s` serves\n' "$other" "$3" "$other" >&2
  exit 65
fi"#;
    Cmd::new("sh").args(["-c", SCRIPT, "sh", &layout.current(), &layout.release_log(), stage, site])
}

/// The release id in [`current`]'s output; `None` when `current` names no release.
pub fn current_release(stdout: &str) -> Option<String> {
    let id = stdout.trim().rsplit('/').next()?;
    crate::release_id::looks_like_release_id(id).then(|| id.to_string())
}

/// Switches `current` atomically: a new link under a temporary name, renamed over `current`.
pub fn switch(layout: &Layout, id: &str) -> Cmd {
    Cmd::new("ln").args(["-sfn", "--", &format!("releases/{id}"), &layout.current_tmp()]).and(Cmd::new("mv").args([
        "-fT",
        "--",
        &layout.current_tmp(),
        &layout.current(),
    ]))
}

/// Fails, naming the folder, unless the release exists (used before a rollback).
pub fn exists(layout: &Layout, id: &str) -> Cmd {
    Cmd::new("test").args(["-d", &layout.release(id)])
}

/// Lists the release folders, one per line, hidden ones too: read with [`release_ids`] and
/// [`stale_partials`].
pub fn list(layout: &Layout) -> Cmd {
    Cmd::new("ls").args(["-1a", "--", &layout.releases()])
}

/// The ids of the hidden `.ID.partial` folders in [`list`]'s output: releases a deploy that
/// was killed while they arrived left behind (a deploy that fails removes its own).
pub fn stale_partials(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter_map(|line| line.trim().strip_prefix('.')?.strip_suffix(".partial"))
        .filter(|id| crate::release_id::looks_like_release_id(id))
        .map(String::from)
        .collect()
}

/// Removes the hidden folders (and pipes) of releases that never arrived.
pub fn remove_partials(layout: &Layout, ids: &[String]) -> Cmd {
    Cmd::new("rm").args(["-rf", "--"]).args(ids.iter().flat_map(|id| [layout.partial(id), layout.incoming(id)]))
}

/// The release ids in [`list`]'s output, oldest first (anything else in the folder is left out).
pub fn release_ids(stdout: &str) -> Vec<String> {
    let mut ids: Vec<String> = stdout
        .lines()
        .map(str::trim)
        .filter(|line| crate::release_id::looks_like_release_id(line))
        .map(String::from)
        .collect();
    ids.sort();
    ids
}

/// Removes the given releases (chosen by the runner: never `current` or the rollback target).
pub fn remove(layout: &Layout, ids: &[String]) -> Cmd {
    Cmd::new("rm").args(["-rf", "--"]).args(ids.iter().flat_map(|id| {
        let kept = |what: &str| format!("{}.{what}", layout.manifest(id));
        [
            layout.release(id),
            layout.manifest(id),
            layout.listing(id),
            kept("links"),
            kept("expect"),
            kept("got"),
            layout.partial(id),
            layout.incoming(id),
        ]
    }))
}

/// Appends one JSON line to the release log.
pub fn record(layout: &Layout, json_line: &str) -> Cmd {
    Cmd::new("mkdir")
        .args(["-p", "--", &layout.state_dir()])
        .and(Cmd::new("printf").args(["%s\\n", json_line]).append_to(layout.release_log()))
}

/// The release log (one JSON object per line): read with [`parse_log`].
pub fn log(layout: &Layout) -> Cmd {
    Cmd::new("cat").args(["--", &layout.release_log()])
}

/// One line of `.deploy/releases.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LogEntry {
    #[serde(default)]
    pub kind: String,
    pub release: String,
    #[serde(default)]
    pub commit: Option<String>,
    #[serde(default)]
    pub who: Option<String>,
    #[serde(default)]
    pub when: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    /// For a rollback: the release rolled back from (marked bad).
    #[serde(default)]
    pub from: Option<String>,
    /// For a deploy with `post_migrate`: `ran` or `failed` (the database was contracted, or
    /// partly, for this release).
    #[serde(default)]
    pub post_migrate: Option<String>,
}

/// The entries of [`log`]'s output; lines that are not entries are left out.
pub fn parse_log(stdout: &str) -> Vec<LogEntry> {
    stdout.lines().filter_map(|line| serde_json::from_str(line).ok()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn link_script_refuses_with_the_one_status() {
        let script = super::link_script();
        let exits: Vec<&str> = script.match_indices("exit ").map(|(at, _)| &script[at + 5..at + 6]).collect();
        assert_eq!(exits, ["0", "3", "3", "3", "3", "3", "3", "3", "3"]);
        assert_eq!(super::WARM_RELEASE_REFUSED, 3);
    }

    #[test]
    fn reads_current_and_lists() {
        assert_eq!(
            super::current_release("releases/20261126T051944Z-1a2b3c4\n").as_deref(),
            Some("20261126T051944Z-1a2b3c4")
        );
        assert_eq!(super::current_release("releases/tmp\n"), None);
        assert_eq!(
            super::release_ids("20261126T051944Z-bbbbbbb\nlost+found\n20261125T051944Z-aaaaaaa\n"),
            ["20261125T051944Z-aaaaaaa", "20261126T051944Z-bbbbbbb"]
        );
    }
}
