//! The local build cache: one folder per commit and build, built aside and renamed into
//! place, the newest few kept per app.

use super::{Artifact, BuildError, BuildSpec, export, hex, io_err, scan};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// Where artifacts are kept: `$DEPLOY_CACHE_DIR`, else `$XDG_CACHE_HOME/deploy`, else
/// `~/.cache/deploy`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DEPLOY_CACHE_DIR") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("deploy");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache/deploy")
}

/// The cache key: the commit and everything about the build that changes its output.
fn key(spec: &BuildSpec) -> String {
    let mut hash = Sha256::new();
    hash.update(spec.commit.as_bytes());
    for (name, value) in spec.env {
        hash.update(format!("\0env\0{name}={value}").as_bytes());
    }
    for command in spec.commands {
        hash.update(b"\0cmd\0");
        hash.update(command.as_bytes());
    }
    for pattern in spec.exclude {
        hash.update(b"\0exclude\0");
        hash.update(pattern.as_bytes());
    }
    hex(&hash.finalize()[..8])
}

/// Builds kept per app in the cache (the newest; older ones are removed after a build).
const KEEP_BUILDS: usize = 3;

/// Returns the cached build for this commit and build, or builds it.
pub async fn build(spec: &BuildSpec<'_>, cache: &Path) -> Result<Artifact, BuildError> {
    let app_dir = cache.join(spec.app);
    let name = format!("{}-{}", &spec.commit[..spec.commit.len().min(12)], key(spec));
    let dir = app_dir.join(&name);
    let tree = dir.join("tree");
    let done = dir.join("built");
    if !spec.rebuild
        && let Ok(text) = fs::read_to_string(&done)
        && let Ok(mtime) = text.trim().parse::<u64>()
    {
        let (entries, files) = scan::scan(&tree, spec.exclude, spec.shared)?;
        let _ = fs::write(&done, format!("{mtime}\n")); // newest use, for pruning
        return Ok(Artifact::new(tree, dir, entries, files, mtime, true));
    }

    // Built aside, then renamed into place: two deploys of one commit may build at once.
    let work = app_dir.join(format!(".build-{}-{name}", std::process::id()));
    let work_tree = work.join("tree");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work_tree).map_err(io_err("create", &work_tree))?;
    let result = async {
        let mtime = export(spec.repository, spec.commit, &work_tree)?;
        for command in spec.commands {
            let out = crate::transport::run_local(command, Some(&work_tree), spec.env, None)
                .await
                .map_err(|err| BuildError::Io(err.message))?;
            if !out.ok() {
                return Err(BuildError::Command { command: command.clone(), status: out.status, output: out.tail(20) });
            }
        }
        let built = work.join("built");
        fs::write(&built, format!("{mtime}\n")).map_err(io_err("write", &built))?;
        if spec.rebuild {
            let _ = fs::remove_dir_all(&dir);
        }
        if fs::rename(&work, &dir).is_err() && !done.exists() {
            let _ = fs::remove_dir_all(&dir); // a build that never finished
            fs::rename(&work, &dir).map_err(io_err("rename", &work))?;
        }
        // Else another deploy finished the same build first: use that one.
        let (entries, files) = scan::scan(&tree, spec.exclude, spec.shared)?;
        Ok(Artifact::new(tree.clone(), dir.clone(), entries, files, mtime, false))
    }
    .await;
    let _ = fs::remove_dir_all(&work);
    prune(&app_dir, &name);
    result
}

/// Removes all but the newest builds of an app (never `keep`), and tarballs of the older
/// cache format.
fn prune(app_dir: &Path, keep: &str) {
    let Ok(listing) = fs::read_dir(app_dir) else { return };
    let mut builds: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for entry in listing.filter_map(Result::ok) {
        let path = entry.path();
        let file_name = entry.file_name().to_string_lossy().into_owned();
        if file_name.starts_with(".build-") {
            // One in progress, or left by a deploy that was killed (after a day).
            let age = fs::metadata(&path).and_then(|meta| meta.modified()).ok().and_then(|t| t.elapsed().ok());
            if age.is_some_and(|age| age.as_secs() > 86_400) {
                let _ = fs::remove_dir_all(&path);
            }
            continue;
        }
        if file_name == keep {
            continue;
        }
        if path.is_dir() {
            let built = fs::metadata(path.join("built")).and_then(|meta| meta.modified());
            builds.push((built.unwrap_or(std::time::UNIX_EPOCH), path));
        } else {
            let _ = fs::remove_file(&path);
        }
    }
    builds.sort();
    let excess = builds.len().saturating_sub(KEEP_BUILDS - 1);
    for (_, path) in builds.into_iter().take(excess) {
        let _ = fs::remove_dir_all(path);
    }
}

/// Unpacked size of the newest build of an app in the cache, if any (`deploy check`).
pub fn newest_size(cache: &Path, app: &str) -> Option<u64> {
    let newest = fs::read_dir(cache.join(app))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| Some((fs::metadata(entry.path().join("built")).ok()?.modified().ok()?, entry.path())))
        .max()?;
    let (_, files) = scan::scan(&newest.1.join("tree"), &[], &[]).ok()?;
    Some(files.iter().map(|file| file.size).sum())
}
