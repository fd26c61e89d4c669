//! Writing a commit's tree into a clean folder (no `.git`, nothing untracked).

use super::{BuildError, io_err};
use std::fs;
use std::path::Path;

/// Writes the commit's tree into `dest`: files with their modes, symlinks as symlinks;
/// submodules are left out. Returns the commit's time (seconds since the epoch).
pub fn export(repository: &Path, commit: &str, dest: &Path) -> Result<u64, BuildError> {
    let git = |err: git2::Error| BuildError::Git(format!("git: {}", err.message()));
    let repo = git2::Repository::discover(repository).map_err(git)?;
    let oid = git2::Oid::from_str(commit).map_err(git)?;
    let found = repo.find_commit(oid).map_err(git)?;
    let time = found.time().seconds().max(0) as u64;
    let tree = found.tree().map_err(git)?;
    let mut failure: Option<BuildError> = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        let Ok(name) = entry.name() else { return git2::TreeWalkResult::Skip };
        let path = dest.join(root).join(name);
        let written: Result<(), BuildError> = (|| match entry.kind() {
            Some(git2::ObjectType::Tree) => fs::create_dir_all(&path).map_err(io_err("create", &path)),
            Some(git2::ObjectType::Blob) => {
                let blob = repo.find_blob(entry.id()).map_err(git)?;
                let mode = entry.filemode();
                if mode == 0o120000 {
                    let target = String::from_utf8_lossy(blob.content()).into_owned();
                    std::os::unix::fs::symlink(target, &path).map_err(io_err("symlink", &path))
                } else {
                    fs::write(&path, blob.content()).map_err(io_err("write", &path))?;
                    if mode == 0o100755 {
                        use std::os::unix::fs::PermissionsExt;
                        fs::set_permissions(&path, fs::Permissions::from_mode(0o755))
                            .map_err(io_err("chmod", &path))?;
                    }
                    Ok(())
                }
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
        None => Ok(time),
    }
}
