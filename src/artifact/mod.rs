//! The artifact: a commit's tree exported (no `.git`, nothing untracked), built, scanned into
//! a manifest, and packed as `.tar.gz` tarballs on demand (the whole release, or only what a
//! host lacks), kept in a local cache so the same commit and build are built only once.
//!
//! `revision` resolves what to build, `export` writes the commit's tree, `cache` builds and
//! keeps builds, `scan` hashes a build into its manifest, `pack` makes the tarballs.

mod cache;
mod export;
pub mod index;
mod pack;
pub mod revision;
mod scan;
pub mod store;

pub use cache::{build, cache_dir, newest_size};
pub use export::{Ancestor, export};
pub use index::{Exported, Index};
pub use pack::Packed;
pub use revision::{RevisionError, resolve, uncommitted};
pub use scan::{FileEntry, excluded, manifest_text, parse_listing, parse_manifest};
pub use store::{ArtifactStore, Stored};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A built release: the build folder kept in the local cache, its entries (exclusions
/// applied) and its manifest. Tarballs are packed from it on demand: the full one for a host
/// with nothing to start from, a delta (changed files only) for a host whose current release
/// has a manifest. Clones share the packs made so far.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The build folder.
    pub tree: PathBuf,
    /// sha256 of the manifest: names the release's content.
    pub sha256: String,
    /// Total size of the release's files.
    pub bytes: u64,
    pub files: usize,
    /// Taken from the cache: nothing was built.
    pub reused: bool,
    /// Files the export copied from an ancestor commit's build instead of writing them from
    /// git (0 without one).
    pub copied: usize,
    /// Files the build read and hashed (the others were known from the export).
    pub hashed: usize,
    contents: Arc<Contents>,
}

/// What an artifact's tarballs are made of, shared by its clones.
#[derive(Debug)]
struct Contents {
    entries: Vec<scan::TreeEntry>,
    files: Vec<FileEntry>,
    manifest: String,
    mtime: u64,
    /// The build's folder in the cache, where its tarballs are kept.
    dir: PathBuf,
    packs: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Packed>>>>,
    /// This process's mark on the build while it is used (see `cache::InUse`).
    user: Option<cache::InUse>,
}

pub struct BuildSpec<'a> {
    pub app: &'a str,
    pub repository: &'a Path,
    pub commit: &'a str,
    pub commands: &'a [String],
    pub exclude: &'a [String],
    /// The shared paths (`[shared]` dirs and files): no symlink may be their parent.
    pub shared: &'a [String],
    /// Variables the build commands see (DEPLOY_STAGE, DEPLOY_COMMIT); part of the cache key.
    pub env: &'a [(&'a str, &'a str)],
    /// Build even if this commit and build were packed before (`--rebuild`).
    pub rebuild: bool,
}

#[derive(Debug)]
pub enum BuildError {
    Git(String),
    Io(String),
    Command {
        command: String,
        status: Option<i32>,
        output: String,
    },
    /// The build holds something no release may ship (a symlink out of the release…): bad
    /// input, refused before anything is sent.
    Refused(String),
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Git(message) | BuildError::Io(message) | BuildError::Refused(message) => out.write_str(message),
            BuildError::Command { command, status, output } => {
                let status = status.map_or("signal".into(), |code| code.to_string());
                write!(out, "build command `{command}` failed (exit {status})")?;
                if !output.is_empty() {
                    write!(out, ":\n{output}")?;
                }
                Ok(())
            }
        }
    }
}

fn io_err(what: &str, path: &Path) -> impl Fn(std::io::Error) -> BuildError {
    let context = format!("{what} {}", path.display());
    move |err| BuildError::Io(format!("{context}: {err}"))
}

impl Artifact {
    /// Writes `bytes` to a file only this user can read, in the build's private folder (what
    /// a host reads on stdin that must not be on a command line); the caller removes it.
    pub fn private_file(&self, name: &str, bytes: &[u8]) -> Result<PathBuf, BuildError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = self.contents.dir.join(format!(".{name}.{}", std::process::id()));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err("create", &path))?;
        file.write_all(bytes).map_err(io_err("write", &path))?;
        Ok(path)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[(byte >> 4) as usize] as char);
        text.push(DIGITS[(byte & 15) as usize] as char);
    }
    text
}
