//! A build folder as a release: its entries (exclusions applied) and the manifest of its
//! files (path, mode, size, sha256); the listing format hosts keep of unpacked files.

use super::{BuildError, hex, io_err};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// One regular file of a release, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone)]
pub(super) enum EntryKind {
    Dir,
    Symlink(PathBuf),
    /// Index into the file list.
    File(usize),
}

/// One folder, symlink or file of the build folder, in tarball order.
#[derive(Debug, Clone)]
pub(super) struct TreeEntry {
    pub rel: String,
    pub mode: u32,
    pub kind: EntryKind,
}

/// A build folder scanned: its entries, its files, and how many of them were read and
/// hashed (the others were known from the export).
pub(super) type Scanned = (Vec<TreeEntry>, Vec<FileEntry>, usize);

/// Walks the build folder (sorted; `exclude` and a top-level `.git` left out) and hashes
/// every regular file, but for those `known` says are still as the export wrote them.
/// Refuses symlinks out of the release and symlinks above a `shared` path.
pub(super) fn scan(
    tree: &Path,
    exclude: &[String],
    shared: &[String],
    known: Option<&super::index::Index>,
) -> Result<Scanned, BuildError> {
    let mut entries = Vec::new();
    let mut files = Vec::new();
    let mut hashed = 0;
    walk(tree, "", exclude, known, &mut entries, &mut files, &mut hashed)?;
    check_written_paths(&entries, shared)?;
    Ok((entries, files, hashed))
}

fn walk(
    root: &Path,
    rel: &str,
    exclude: &[String],
    known: Option<&super::index::Index>,
    entries: &mut Vec<TreeEntry>,
    files: &mut Vec<FileEntry>,
    hashed: &mut usize,
) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let mut list: Vec<_> = fs::read_dir(&dir).map_err(io_err("read", &dir))?.filter_map(Result::ok).collect();
    list.sort_by_key(|entry| entry.file_name());
    for entry in list {
        let name = entry.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let path = entry.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        let file_type = meta.file_type();
        if excluded(&child, file_type.is_dir(), exclude) || (rel.is_empty() && child == ".git") {
            continue;
        }
        // setuid and setgid never ship: a release is the deploy user's files, run as it.
        let mode = meta.permissions().mode() & 0o1777;
        if file_type.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err("readlink", &path))?;
            if let Some(why) = escapes(&child, &target) {
                return Err(BuildError::Refused(format!(
                    "`{child}` is a symlink to `{}`, {why}: a host would write through it, outside the release. \
                     Make it a link inside the release, add it to `[build] exclude`, or create it in a hook",
                    target.display()
                )));
            }
            entries.push(TreeEntry { rel: child, mode, kind: EntryKind::Symlink(target) });
        } else if file_type.is_dir() {
            entries.push(TreeEntry { rel: child.clone(), mode, kind: EntryKind::Dir });
            walk(root, &child, exclude, known, entries, files, hashed)?;
        } else if file_type.is_file() {
            let sha256 = match known.and_then(|known| known.known(&child, &meta)) {
                Some(sha256) => sha256.to_string(),
                None => {
                    *hashed += 1;
                    let mut hash = Sha256::new();
                    let mut file = fs::File::open(&path).map_err(io_err("open", &path))?;
                    io::copy(&mut file, &mut HashWriter(&mut hash)).map_err(io_err("read", &path))?;
                    hex(&hash.finalize())
                }
            };
            entries.push(TreeEntry { rel: child.clone(), mode, kind: EntryKind::File(files.len()) });
            files.push(FileEntry { path: child, mode, size: meta.len(), sha256 });
        }
        // sockets, fifos, devices: never part of a release
    }
    Ok(())
}

/// Why a symlink at `rel` pointing to `target` leaves the release (absolute, or `..` past
/// its top); `None` when it stays inside.
pub(super) fn escapes(rel: &str, target: &Path) -> Option<&'static str> {
    use std::path::Component;
    if target.is_absolute() {
        return Some("an absolute path");
    }
    // Where the link sits: its folder's depth below the release's top.
    let mut depth = rel.split('/').count() as i64 - 1;
    for part in target.components() {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return Some("which leaves the release");
        }
    }
    None
}

/// Refuses a release where a path deploy writes through is a symlink: a shared path's parent
/// folder (linking it removes and replaces what is there) or `REVISION`.
pub(super) fn check_written_paths(entries: &[TreeEntry], shared: &[String]) -> Result<(), BuildError> {
    for entry in entries.iter().filter(|entry| matches!(entry.kind, EntryKind::Symlink(_))) {
        let under = |path: &str| path.strip_prefix(entry.rel.as_str()).is_some_and(|rest| rest.starts_with('/'));
        if let Some(path) = shared.iter().find(|path| under(path)) {
            return Err(BuildError::Refused(format!(
                "`{}` is a symlink, and the shared path `{path}` is below it: linking the shared path would \
                 remove and replace files wherever the link points. Commit `{}` as a folder",
                entry.rel, entry.rel
            )));
        }
    }
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The manifest: one JSON object per regular file, sorted by path.
pub fn manifest_text(files: &[FileEntry]) -> String {
    let mut text = String::with_capacity(files.len() * 120);
    for file in files {
        text.push_str(&serde_json::to_string(file).expect("manifest entry serializes"));
        text.push('\n');
    }
    text
}

/// Reads a manifest written by [`manifest_text`]; `None` if any line is not one.
pub fn parse_manifest(text: &str) -> Option<Vec<FileEntry>> {
    text.lines().filter(|line| !line.is_empty()).map(|line| serde_json::from_str(line).ok()).collect()
}

/// A name that reads back unchanged from a line-based listing.
pub(super) fn plain_name(path: &str) -> bool {
    !path.contains(['\\', '\n', '\r'])
}

/// Files on a host as `remote::release::STAT_FORMAT` lists them: inode, size, time, mode,
/// owner, group, `./path`. Unchanged since a release was unpacked (and its tarball's sha256
/// checked) means not written to since: an edit in place changes the time, a replacement the
/// inode. Keyed by path, without the leading `./`.
pub fn parse_listing(text: &str) -> HashMap<&str, &str> {
    text.split('\0')
        .filter_map(|record| {
            let path = record.splitn(7, ' ').nth(6)?;
            Some((path.strip_prefix("./").unwrap_or(path), record))
        })
        .collect()
}

/// Does `rel` (a path in the build folder, `/`-separated) match an exclude pattern? Close to
/// rsync's rules: a pattern with a `/` inside or at the start is matched against the whole
/// path from the top (`/tests/`, `public/build/*.map`; rsync would also try deeper); any other
/// matches the name at any depth (`*.map`, `__pycache__/`). A trailing `/` matches folders
/// only. `*` and `?` do not cross `/`; `**` does.
pub fn excluded(rel: &str, is_dir: bool, patterns: &[String]) -> bool {
    patterns.iter().any(|pattern| {
        let (pattern, dir_only) = match pattern.strip_suffix('/') {
            Some(stem) => (stem, true),
            None => (pattern.as_str(), false),
        };
        if dir_only && !is_dir {
            return false;
        }
        if let Some(anchored) = pattern.strip_prefix('/') {
            glob(anchored.as_bytes(), rel.as_bytes())
        } else if pattern.contains('/') {
            glob(pattern.trim_start_matches("**/").as_bytes(), rel.as_bytes())
                || glob(pattern.as_bytes(), rel.as_bytes())
                || (pattern.starts_with("**/")
                    && rel.match_indices('/').any(|(at, _)| glob(&pattern.as_bytes()[3..], &rel.as_bytes()[at + 1..])))
        } else {
            glob(pattern.as_bytes(), rel.rsplit('/').next().unwrap_or(rel).as_bytes())
        }
    })
}

/// `*` and `?` within a path component, `**` across components.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some(b'*'), _) if pattern.get(1) == Some(&b'*') => {
            let rest = &pattern[2..];
            (0..=text.len()).any(|skip| glob(rest, &text[skip..]))
        }
        (Some(b'*'), _) => {
            let rest = &pattern[1..];
            let limit = text.iter().position(|byte| *byte == b'/').unwrap_or(text.len());
            (0..=limit).any(|skip| glob(rest, &text[skip..]))
        }
        (Some(b'?'), Some(byte)) if *byte != b'/' => glob(&pattern[1..], &text[1..]),
        (Some(want), Some(got)) if want == got => glob(&pattern[1..], &text[1..]),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::excluded;

    #[test]
    fn listing_records_by_path() {
        let listing = super::parse_listing("12 5 1700000000 644 0 0 ./a b.php\x0013 0 1 755 33 33 ./src/x\x00");
        assert_eq!(listing.get("a b.php"), Some(&"12 5 1700000000 644 0 0 ./a b.php"));
        assert_eq!(listing.get("src/x"), Some(&"13 0 1 755 33 33 ./src/x"));
        assert_eq!(listing.len(), 2);
    }

    #[test]
    fn exclude_patterns() {
        let patterns: Vec<String> =
            ["/tests/", "__pycache__/", "/.env.local", "*.map", "public/build/*.tmp", "**/cache/*.bin"]
                .iter()
                .map(|pattern| pattern.to_string())
                .collect();
        assert!(excluded("tests", true, &patterns));
        assert!(!excluded("tests", false, &patterns), "a file named tests is not the folder");
        assert!(!excluded("src/tests", true, &patterns), "anchored at the top");
        assert!(excluded("app/__pycache__", true, &patterns), "unanchored: any depth");
        assert!(excluded("__pycache__", true, &patterns));
        assert!(excluded(".env.local", false, &patterns));
        assert!(!excluded("config/.env.local", false, &patterns));
        assert!(excluded("app.js.map", false, &patterns) && excluded("public/js/app.js.map", false, &patterns));
        assert!(!excluded("app.js.mapx", false, &patterns));
        assert!(
            excluded("public/build/a.tmp", false, &patterns) && !excluded("public/build/x/a.tmp", false, &patterns)
        );
        assert!(excluded("var/cache/x.bin", false, &patterns) && excluded("a/b/cache/y.bin", false, &patterns));
        assert!(!excluded("cache.bin", false, &patterns));
    }

    use super::escapes;
    use std::path::Path;

    #[test]
    fn links_that_leave_the_release() {
        for (at, target) in [("REVISION", "../../shared/x"), ("a/b", "../../x"), ("a", "/etc"), ("a/b", "c/../../../x")]
        {
            assert!(escapes(at, Path::new(target)).is_some(), "{at} -> {target}");
        }
        for (at, target) in [("REVISION", "public/rev"), ("a/b", "../x"), ("a/b/c", "../../x"), ("a", "./b/../c")] {
            assert_eq!(escapes(at, Path::new(target)), None, "{at} -> {target}");
        }
    }
}
