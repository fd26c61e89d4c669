//! What an export wrote (`exported` in a build's folder): for each regular file, its git
//! blob, mode and sha256, and how it stood on disk right after the export (size, inode,
//! change time). A later build uses it twice: to copy files whose blob did not change from
//! an ancestor commit's build instead of writing them from git, and to skip hashing the files
//! its build commands left as they were exported. The change time (ctime) moves on any write,
//! truncation, `chmod` or rename and cannot be set back by a program: a file whose ctime,
//! inode and size are as recorded is the file the export wrote. As in git's "racy git"
//! rule, a record is trusted only if its ctime is older than the index's stamp (a file made
//! once the export was done): the clock behind ctime ticks every few milliseconds, so a file
//! changed in the tick it was written in would otherwise look untouched.

use std::collections::HashMap;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// The git blob it was written from.
    pub oid: String,
    pub mode: i32,
    /// `None` for a blob streamed to disk: hashed by the scan.
    pub sha256: Option<String>,
    pub size: u64,
    pub ino: u64,
    /// The change time: seconds, nanoseconds.
    pub ctime: (i64, i64),
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Index {
    pub files: HashMap<String, Exported>,
    /// The ctime of a file made after the export: records as new as it are not trusted.
    pub stamp: (i64, i64),
}

/// A file's change time: seconds, nanoseconds.
pub fn ctime(meta: &Metadata) -> (i64, i64) {
    (meta.ctime(), meta.ctime_nsec())
}

impl Exported {
    /// The record of a file just written, as `meta` says it stands.
    pub fn new(oid: String, mode: i32, sha256: Option<String>, meta: &Metadata) -> Exported {
        Exported { oid, mode, sha256, size: meta.len(), ino: meta.ino(), ctime: ctime(meta) }
    }

    /// Is the file `meta` describes still the one the export wrote (`stamp`: the index's)?
    pub fn untouched(&self, meta: &Metadata, stamp: (i64, i64)) -> bool {
        self.ctime < stamp
            && meta.is_file()
            && meta.len() == self.size
            && meta.ino() == self.ino
            && ctime(meta) == self.ctime
    }
}

impl Index {
    /// The sha256 of `rel` if the file `meta` describes is still as exported.
    pub fn known(&self, rel: &str, meta: &Metadata) -> Option<&str> {
        let file = self.files.get(rel)?;
        file.untouched(meta, self.stamp).then_some(file.sha256.as_deref()?)
    }

    /// The stamp line (`stamp SECONDS NANOSECONDS`), then one line per file: `oid mode size ino
    /// ctime-seconds ctime-nanoseconds sha256|- path` (paths with a newline are left out: they
    /// are exported and hashed the plain way).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = format!("stamp {} {}\n", self.stamp.0, self.stamp.1);
        for (rel, file) in &self.files {
            if rel.contains('\n') {
                continue;
            }
            let sha = file.sha256.as_deref().unwrap_or("-");
            let (oid, mode, size, ino, (secs, nanos)) = (&file.oid, file.mode, file.size, file.ino, file.ctime);
            text.push_str(&format!("{oid} {mode:o} {size} {ino} {secs} {nanos} {sha} {rel}\n"));
        }
        std::fs::write(path, text)
    }

    /// The index written by [`Index::write`]; `None` when it is missing or unreadable.
    pub fn read(path: &Path) -> Option<Index> {
        let text = std::fs::read_to_string(path).ok()?;
        let mut lines = text.lines();
        let mut stamp = lines.next()?.strip_prefix("stamp ")?.split(' ');
        let stamp = (stamp.next()?.parse().ok()?, stamp.next()?.parse().ok()?);
        let mut files = HashMap::new();
        for line in lines {
            let fields: Vec<&str> = line.splitn(8, ' ').collect();
            let [oid, mode, size, ino, secs, nanos, sha, rel] = fields[..] else { return None };
            let sha256 = (sha != "-").then(|| sha.to_string());
            let file = Exported {
                oid: oid.to_string(),
                mode: i32::from_str_radix(mode, 8).ok()?,
                sha256,
                size: size.parse().ok()?,
                ino: ino.parse().ok()?,
                ctime: (secs.parse().ok()?, nanos.parse().ok()?),
            };
            files.insert(rel.to_string(), file);
        }
        Some(Index { files, stamp })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_and_read_back_and_a_touched_file_is_not_known() {
        let dir = std::env::temp_dir().join(format!("deploy-index-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a b.txt");
        std::fs::write(&file, "hello").unwrap();
        let meta = std::fs::metadata(&file).unwrap();
        let mut index = Index::default();
        index.files.insert("src/a b.txt".into(), Exported::new("0123abcd".into(), 0o100644, Some("5ha".into()), &meta));
        index.files.insert("big.bin".into(), Exported::new("4567".into(), 0o100755, None, &meta));
        // Racy: the stamp is no newer than the file.
        index.stamp = ctime(&meta);
        assert_eq!(index.known("src/a b.txt", &meta), None, "written in the stamp's tick");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(dir.join("stamp"), "").unwrap();
        index.stamp = ctime(&std::fs::metadata(dir.join("stamp")).unwrap());
        index.write(&dir.join("exported")).unwrap();
        let read = Index::read(&dir.join("exported")).unwrap();
        assert_eq!(read, index);
        assert_eq!(read.known("src/a b.txt", &meta), Some("5ha"));
        assert_eq!(read.known("big.bin", &meta), None, "no sha256 recorded");
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&file, "hellO").unwrap(); // same size, new content
        assert_eq!(read.known("src/a b.txt", &std::fs::metadata(&file).unwrap()), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
