//! Writing a commit's tree into a clean folder (no `.git`, nothing untracked).

use super::index::{Exported, Index};
use super::{BuildError, hex, io_err};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

/// A build to take unchanged files from: its folder and what its export wrote.
pub struct Ancestor<'a> {
    pub tree: &'a Path,
    pub index: &'a Index,
}

/// Writes the commit's tree into `dest`: files with their modes, symlinks as symlinks;
/// submodules are left out. Returns the commit's time (seconds since the epoch) and what was
/// written (without its stamp, which the caller sets once the export is done) and how many
/// files were copied from `ancestor`. A file whose
/// blob and mode are those `ancestor`'s export wrote, and which is still as written there,
/// is copied from it (in the kernel: `copy_file_range`, a reflink where the filesystem has
/// them) and not hashed again; every other file is written from git and hashed.
pub fn export(
    repository: &Path,
    commit: &str,
    dest: &Path,
    ancestor: Option<Ancestor>,
) -> Result<(u64, Index, usize), BuildError> {
    let git = |err: git2::Error| BuildError::Git(format!("git: {}", err.message()));
    let repo = git2::Repository::discover(repository).map_err(git)?;
    let oid = git2::Oid::from_str(commit).map_err(git)?;
    let found = repo.find_commit(oid).map_err(git)?;
    let time = found.time().seconds().max(0) as u64;
    let tree = found.tree().map_err(git)?;
    let mut failure: Option<BuildError> = None;
    let mut index = Index::default();
    let mut copied_files = 0;
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        let Ok(name) = entry.name() else { return git2::TreeWalkResult::Skip };
        let path = dest.join(root).join(name);
        let rel = format!("{root}{name}");
        let written: Result<(), BuildError> = (|| match entry.kind() {
            Some(git2::ObjectType::Tree) => fs::create_dir_all(&path).map_err(io_err("create", &path)),
            Some(git2::ObjectType::Blob) => {
                let (mode, oid) = (entry.filemode(), entry.id().to_string());
                let record = |sha256: Option<String>| -> Result<Exported, BuildError> {
                    let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
                    Ok(Exported::new(oid.clone(), mode, sha256, &meta))
                };
                if mode == 0o120000 {
                    let blob = repo.find_blob(entry.id()).map_err(git)?;
                    let target = String::from_utf8_lossy(blob.content()).into_owned();
                    return std::os::unix::fs::symlink(target, &path).map_err(io_err("symlink", &path));
                }
                if let Some(sha256) = ancestor.as_ref().and_then(|ancestor| copied(ancestor, &rel, &oid, mode, &path)) {
                    finish_file(&path, mode)?;
                    index.files.insert(rel, record(Some(sha256))?);
                    copied_files += 1;
                    return Ok(());
                }
                if big(&repo, entry.id()) {
                    stream_blob(&repo, entry.id(), &path)?;
                    finish_file(&path, mode)?;
                    index.files.insert(rel, record(None)?);
                    return Ok(());
                }
                let blob = repo.find_blob(entry.id()).map_err(git)?;
                fs::write(&path, blob.content()).map_err(io_err("write", &path))?;
                finish_file(&path, mode)?;
                index.files.insert(rel, record(Some(hex(&Sha256::digest(blob.content()))))?);
                Ok(())
            }
            _ => Ok(()), // submodule commits: not part of the tree's content
        })();
        match written {
            Ok(()) => git2::TreeWalkResult::Ok,
            Err(err) => {
                failure = Some(err);
                git2::TreeWalkResult::Abort
            }
        }
    })
    .map_err(|err| failure.take().unwrap_or_else(|| git(err)))?;
    match failure {
        Some(err) => Err(err),
        None => Ok((time, index, copied_files)),
    }
}

/// Copies `rel` from the ancestor's build if its export wrote the same blob with the same
/// mode there and the file is still as written; returns its sha256. A new file is made (so it
/// gets the mode a fresh export gives) and filled by `io::copy`, which copies in the kernel.
fn copied(ancestor: &Ancestor, rel: &str, oid: &str, mode: i32, path: &Path) -> Option<String> {
    let old = ancestor.index.files.get(rel)?;
    let sha256 = old.sha256.clone()?;
    if old.oid != oid || old.mode != mode {
        return None;
    }
    let source = ancestor.tree.join(rel);
    let mut from = fs::File::open(&source).ok()?;
    if !old.untouched(&from.metadata().ok()?, ancestor.index.stamp) {
        return None;
    }
    let mut to = fs::File::create(path).ok()?;
    match std::io::copy(&mut from, &mut to) {
        Ok(bytes) if bytes == old.size => Some(sha256),
        _ => {
            let _ = fs::remove_file(path);
            None
        }
    }
}

/// Blobs from this size on are streamed to their file instead of held in memory whole (a
/// 200 MB file cost deploy 400 MB of memory: the compressed object and its content).
const STREAM_FROM: usize = 8 << 20;

fn big(repo: &git2::Repository, oid: git2::Oid) -> bool {
    repo.odb().and_then(|odb| odb.read_header(oid)).is_ok_and(|(size, _)| size >= STREAM_FROM)
}

/// Writes a big blob to `path` in pieces: `git cat-file blob` streams it from a loose or a
/// packed object (libgit2 holds a loose object's compressed bytes, or a packed object, whole);
/// without git, libgit2's stream where it has one, else whole, as before.
fn stream_blob(repo: &git2::Repository, oid: git2::Oid, path: &Path) -> Result<(), BuildError> {
    let create = || fs::File::create(path).map_err(io_err("write", path));
    // git streams only blobs over `core.bigFileThreshold` (512 MB by default: smaller ones it
    // reads whole), and maps packs 1 GiB at a time: both lowered, so it holds a few MB.
    let streamed = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(repo.path())
        .args(["-c", "core.packedGitWindowSize=1m", "-c", "core.packedGitLimit=32m", "-c", "core.bigFileThreshold=8m"])
        .args(["cat-file", "blob", &oid.to_string()])
        .stdout(create()?)
        .stderr(std::process::Stdio::null())
        .status();
    if streamed.is_ok_and(|status| status.success()) {
        return Ok(());
    }
    if let Ok(odb) = repo.odb()
        && let Ok((mut reader, _, _)) = odb.reader(oid)
    {
        let mut file = create()?;
        std::io::copy(&mut reader, &mut file).map_err(io_err("write", path))?;
        return Ok(());
    }
    let blob = repo.find_blob(oid).map_err(|err| BuildError::Git(format!("git: {}", err.message())))?;
    fs::write(path, blob.content()).map_err(io_err("write", path))
}

/// An executable file gets 0755.
fn finish_file(path: &Path, mode: i32) -> Result<(), BuildError> {
    if mode == 0o100755 {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o755)).map_err(io_err("chmod", path))?;
    }
    Ok(())
}
