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

/// Unpacks the verified tarball into a new `releases/<id>`, then hard-links the files it
/// leaves out (a delta) from the current release, keeps the manifest outside the release with
/// a listing of every file's inode, size and time (what the next delta trusts), and writes
/// `REVISION`. A full tarball lists no links, so nothing is read from `current`.
pub fn unpack(l: &Layout, id: &str, commit: &str) -> Cmd {
    let file = l.incoming(id);
    let dir = l.release(id);
    let meta = format!("{dir}/{}", crate::artifact::META_DIR);
    // `mkdir` without -p: never unpack over an existing (maybe live) release.
    Cmd::new("mkdir")
        .args(["-p", "--", &l.releases(), &l.manifests()])
        .and(Cmd::new("mkdir").args(["--", &dir]))
        .and(Cmd::new("tar").args(["-xzf", &file, "-C", &dir]))
        .and(Cmd::new("xargs").args(["-0", "-r", "-a", &format!("{meta}/links")]).args([
            "env",
            "-C",
            &l.current(),
            "cp",
            "-l",
            "--parents",
            "-t",
            &dir,
            "--",
        ]))
        .and(Cmd::new("mv").args(["-f", "--", &format!("{meta}/manifest"), &l.manifest(id)]))
        .and(Cmd::new("rm").args(["-rf", "--", &format!("{dir}/.git"), &file]))
        .and(listing(&dir).write_to(l.listing(id)))
        .and(Cmd::new("printf").args(["%s\\n", commit]).write_to(format!("{dir}/REVISION")))
}

/// Every file under `dir`: `inode size mtime ./path`, NUL-terminated.
fn listing(dir: &str) -> Cmd {
    Cmd::new("env").args(["-C", dir, "find", ".", "-type", "f", "-printf", "%i %s %T@ %p\\0"])
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
    listing(&l.current())
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
