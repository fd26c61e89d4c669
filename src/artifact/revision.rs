//! Resolving a revision (branch, tag, sha, `HEAD`) to a commit, with git2.

use crate::plan::Revision;
use std::path::{Path, PathBuf};

/// A revision that cannot be resolved, or a working copy that cannot be read.
#[derive(Debug)]
pub struct RevisionError {
    pub repository: PathBuf,
    pub revision: String,
    pub message: String,
}

/// Resolves `rev` in the repository at (or above) `repo`.
pub fn resolve(repo: &Path, rev: &str) -> Result<Revision, RevisionError> {
    let err = |message: String| RevisionError { repository: repo.to_path_buf(), revision: rev.to_string(), message };
    let repository = git2::Repository::discover(repo).map_err(|e| err(e.message().to_string()))?;
    let object = repository.revparse_single(rev).map_err(|e| err(e.message().to_string()))?;
    let commit = object.peel_to_commit().map_err(|e| err(e.message().to_string()))?;
    Ok(Revision { requested: rev.to_string(), commit: commit.id().to_string() })
}

/// Tracked files with uncommitted changes (staged or not) in the working copy.
pub fn uncommitted(repo: &Path) -> Result<Vec<String>, RevisionError> {
    let err = |e: git2::Error| RevisionError {
        repository: repo.to_path_buf(),
        revision: "HEAD".into(),
        message: e.message().to_string(),
    };
    let repository = git2::Repository::discover(repo).map_err(err)?;
    if repository.is_bare() {
        return Ok(vec![]);
    }
    let mut opts = git2::StatusOptions::new();
    opts.include_untracked(false).include_ignored(false);
    let statuses = repository.statuses(Some(&mut opts)).map_err(err)?;
    Ok(statuses
        .iter()
        .filter(|entry| entry.status() != git2::Status::CURRENT)
        .filter_map(|entry| entry.path().ok().map(String::from))
        .collect())
}
