//! Resolving a revision (branch, tag, sha, `HEAD`) to a commit, with git2.

use crate::error::Error;
use crate::plan::Revision;
use std::path::Path;

/// Resolves `rev` in the repository at (or above) `repo`.
pub fn resolve(repo: &Path, rev: &str) -> Result<Revision, Error> {
    let err = |message: String| Error::Revision { repository: repo.to_path_buf(), revision: rev.to_string(), message };
    let r = git2::Repository::discover(repo).map_err(|e| err(e.message().to_string()))?;
    let obj = r.revparse_single(rev).map_err(|e| err(e.message().to_string()))?;
    let commit = obj.peel_to_commit().map_err(|e| err(e.message().to_string()))?;
    Ok(Revision { requested: rev.to_string(), commit: commit.id().to_string() })
}

/// Tracked files with uncommitted changes (staged or not) in the working copy.
pub fn uncommitted(repo: &Path) -> Result<Vec<String>, Error> {
    let err = |e: git2::Error| Error::Revision {
        repository: repo.to_path_buf(),
        revision: "HEAD".into(),
        message: e.message().to_string(),
    };
    let r = git2::Repository::discover(repo).map_err(err)?;
    if r.is_bare() {
        return Ok(vec![]);
    }
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(false).include_ignored(false);
    let statuses = r.statuses(Some(&mut opts)).map_err(err)?;
    Ok(statuses
        .iter()
        .filter(|s| s.status() != git2::Status::CURRENT)
        .filter_map(|s| s.path().ok().map(String::from))
        .collect())
}
