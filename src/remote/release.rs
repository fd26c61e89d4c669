//! Receiving, unpacking and switching releases; the release log; cleanup.

use super::{Cmd, Layout};

/// Receives the artifact on stdin and prints its sha256, which the runner compares with the
/// local one before anything is unpacked.
pub fn receive(l: &Layout, id: &str) -> Cmd {
    let file = l.incoming(id);
    let dir = file.rsplit_once('/').map(|(d, _)| d.to_string()).unwrap_or_default();
    Cmd::new("mkdir")
        .args(["-p", "--", &dir, &l.shared()])
        .and(Cmd::new("cat").write_to(&file))
        .and(Cmd::new("sha256sum").args(["--", &file]))
}

/// How a file is listed: inode, size, modification time (seconds), mode, owner, group, path
/// (`./…`), NUL-terminated. An edit in place changes the time, a replacement the inode, a
/// `chmod` or `chown` the rest; hard-linking does not change it.
pub const STAT_FORMAT: &str = "%i %s %Y %a %u %g %n\\0";

/// Hard-links the files a delta leaves out from the current release, then checks that each
/// linked file is the very file deploy decided to trust (listed as `expect`); any problem
/// exits 3 with a line starting `warm release:`, and deploy then sends the whole release.
/// Args: current, new release, its `.git/deploy` folder. Nothing to link: nothing done.
const LINK_SCRIPT: &str = r#"cur=$1 rel=$2 meta=$3
[ -s "$meta/links" ] || exit 0
cd "$cur" 2>/dev/null || { echo "warm release: cannot enter $cur" >&2; exit 3; }
xargs -0 cp -l --parents -t "$rel" -- < "$meta/links" || { echo "warm release: hard-linking from $cur failed" >&2; exit 3; }
cd "$rel" && xargs -0 stat --printf "$4" -- < "$meta/links" > "$meta/got" || { echo "warm release: cannot list the linked files" >&2; exit 3; }
cmp -s "$meta/expect" "$meta/got" || { echo "warm release: files of $cur changed since deploy read them" >&2; exit 3; }"#;

/// Lists every file of a release (`STAT_FORMAT`) into a file; never fails the unpack: without
/// a listing the next deploy trusts nothing and sends every file. Args: release, output file.
const LISTING_SCRIPT: &str =
    r#"cd "$1" && find . -type f -print0 | xargs -0 -r stat --printf "$3" -- > "$2" || rm -f -- "$2"; true"#;

/// Unpacks the verified tarball into a new `releases/<id>`; hard-links the files it leaves
/// out (a delta) from the current release and checks them; keeps the manifest outside the
/// release, with a listing of every file (what the next delta trusts); writes `REVISION`.
/// A full tarball lists no links, so nothing is read from `current`.
pub fn unpack(l: &Layout, id: &str, commit: &str) -> Cmd {
    let file = l.incoming(id);
    let dir = l.release(id);
    let meta = format!("{dir}/{}", crate::artifact::META_DIR);
    // `mkdir` without -p: never unpack over an existing (maybe live) release.
    Cmd::new("mkdir")
        .args(["-p", "--", &l.releases(), &l.manifests()])
        .and(Cmd::new("mkdir").args(["--", &dir]))
        .and(Cmd::new("tar").args(["-xzf", &file, "-C", &dir]))
        .and(Cmd::new("sh").args(["-c", LINK_SCRIPT, "sh", &l.current(), &dir, &meta, STAT_FORMAT]))
        .and(Cmd::new("mv").args(["-f", "--", &format!("{meta}/manifest"), &l.manifest(id)]))
        .and(Cmd::new("rm").args(["-rf", "--", &format!("{dir}/.git"), &file]))
        .and(Cmd::new("sh").args(["-c", LISTING_SCRIPT, "sh", &dir, &l.listing(id), STAT_FORMAT]))
        .and(Cmd::new("printf").args(["%s\\n", commit]).write_to(format!("{dir}/REVISION")))
}

/// The manifest of a release on the host (none for releases made before manifests).
pub fn manifest(l: &Layout, id: &str) -> Cmd {
    Cmd::new("cat").args(["--", &l.manifest(id)])
}

/// The listing written when a release was unpacked.
pub fn unpacked_listing(l: &Layout, id: &str) -> Cmd {
    Cmd::new("cat").args(["--", &l.listing(id)])
}

/// The same listing of the current release, now.
pub fn current_listing(l: &Layout) -> Cmd {
    Cmd::new("sh").args([
        "-c",
        r#"cd "$1" && find . -type f -print0 | xargs -0 -r stat --printf "$2" --"#,
        "sh",
        &l.current(),
        STAT_FORMAT,
    ])
}

/// The release `current` points to (`releases/<id>`), if any.
pub fn current(l: &Layout) -> Cmd {
    Cmd::new("readlink").args(["--", &l.current()])
}

/// Switches `current` atomically: a new link under a temporary name, renamed over `current`.
pub fn switch(l: &Layout, id: &str) -> Cmd {
    Cmd::new("ln").args(["-sfn", "--", &format!("releases/{id}"), &l.current_tmp()]).and(Cmd::new("mv").args([
        "-fT",
        "--",
        &l.current_tmp(),
        &l.current(),
    ]))
}

/// Fails, naming the folder, unless the release exists (used before a rollback).
pub fn exists(l: &Layout, id: &str) -> Cmd {
    Cmd::new("test").args(["-d", &l.release(id)])
}

/// Lists the release folders, one per line.
pub fn list(l: &Layout) -> Cmd {
    Cmd::new("ls").args(["-1", "--", &l.releases()])
}

/// Removes the given releases (chosen by the runner: never `current` or the rollback target).
pub fn remove(l: &Layout, ids: &[String]) -> Cmd {
    Cmd::new("rm").args(["-rf", "--"]).args(ids.iter().flat_map(|id| [l.release(id), l.manifest(id), l.listing(id)]))
}

/// Appends one JSON line to the release log.
pub fn record(l: &Layout, json_line: &str) -> Cmd {
    Cmd::new("mkdir")
        .args(["-p", "--", &l.state_dir()])
        .and(Cmd::new("printf").args(["%s\\n", json_line]).append_to(l.release_log()))
}

/// The release log (one JSON object per line).
pub fn log(l: &Layout) -> Cmd {
    Cmd::new("cat").args(["--", &l.release_log()])
}
