//! Resolving a revision (branch, tag, sha, `HEAD`) to a commit, with git2.

use crate::error::Error;
use crate::plan::Revision;
use std::path::Path;

/// Resolves `rev` in the repository at (or above) `repo`.
pub fn resolve(repo: &Path, rev: &str) -> Result<Revision, Error> {
    let err = |message: String| Error::Revision {
        repository: repo.to_path_buf(),
        revision: rev.to_string(),
        message,
    };
    let r = git2::Repository::discover(repo).map_err(|e| err(e.message().to_string()))?;
    let obj = r
        .revparse_single(rev)
        .map_err(|e| err(e.message().to_string()))?;
    let commit = obj
        .peel_to_commit()
        .map_err(|e| err(e.message().to_string()))?;
    Ok(Revision {
        requested: rev.to_string(),
        commit: commit.id().to_string(),
    })
}
