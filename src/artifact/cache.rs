//! The local build cache: one folder per commit and build, built aside and renamed into
//! place, the newest few kept per app.

use super::export::Ancestor;
use super::index::Index;
use super::{Artifact, BuildError, BuildSpec, export, hex, io_err, scan};
use sha2::{Digest, Sha256};
use std::fs;
use std::path::{Path, PathBuf};

/// Where artifacts are kept: `$DEPLOY_CACHE_DIR`, else `$XDG_CACHE_HOME/deploy`, else
/// `~/.cache/deploy` (the home folder from `$HOME`, else from the password database). Never
/// a shared folder like `/tmp`: what is in the cache is what gets deployed.
pub fn cache_dir() -> Result<PathBuf, BuildError> {
    if let Some(dir) = std::env::var_os("DEPLOY_CACHE_DIR").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("deploy"));
    }
    crate::local_user::home()
        .map(|home| home.join(".cache/deploy"))
        .ok_or_else(|| BuildError::Refused("no folder for the build cache: set HOME or DEPLOY_CACHE_DIR".into()))
}

/// Makes `dir` (and missing parents) and keeps it private: it must belong to this user, and
/// nobody else may read or write it (0700). Another user who could write there could change
/// what is deployed.
fn private(dir: &Path) -> Result<(), BuildError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    fs::create_dir_all(dir).map_err(io_err("create", dir))?;
    let meta = fs::symlink_metadata(dir).map_err(io_err("stat", dir))?;
    if !meta.is_dir() {
        return Err(BuildError::Refused(format!("the build cache {} is not a folder", dir.display())));
    }
    if crate::local_user::uid().is_some_and(|uid| uid != meta.uid()) {
        return Err(BuildError::Refused(format!(
            "the build cache {} belongs to uid {}, not to you: another user could change what you deploy; \
             set DEPLOY_CACHE_DIR to a folder of your own",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err("chmod", dir))?;
    }
    Ok(())
}

/// The cache key: the commit and everything about the build that changes its output.
fn key(spec: &BuildSpec) -> String {
    digest(spec, true)
}

/// What a build does whatever the commit (its commands, exclusions and environment but for
/// `DEPLOY_COMMIT`): builds of two commits with the same recipe can share exported files.
fn recipe(spec: &BuildSpec) -> String {
    digest(spec, false)
}

fn digest(spec: &BuildSpec, with_commit: bool) -> String {
    let mut hash = Sha256::new();
    if with_commit {
        hash.update(spec.commit.as_bytes());
    }
    for (name, value) in spec.env.iter().filter(|(name, _)| with_commit || *name != "DEPLOY_COMMIT") {
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

/// The newest cached build of an ancestor of `spec.commit` with the same recipe, marked as
/// used while this build reads it: (its folder, what its export wrote).
fn ancestor(spec: &BuildSpec, app_dir: &Path) -> Option<(PathBuf, Index, InUse)> {
    let repo = git2::Repository::discover(spec.repository).ok()?;
    let commit = git2::Oid::from_str(spec.commit).ok()?;
    let recipe = recipe(spec);
    let mut found: Vec<(std::time::SystemTime, PathBuf, git2::Oid)> = Vec::new();
    for entry in fs::read_dir(app_dir).ok()?.filter_map(Result::ok) {
        let dir = entry.path();
        let Ok(built) = fs::metadata(dir.join("built")).and_then(|meta| meta.modified()) else { continue };
        let same = fs::read_to_string(dir.join("recipe")).is_ok_and(|text| text.trim() == recipe);
        let Some(oid) =
            fs::read_to_string(dir.join("commit")).ok().and_then(|text| git2::Oid::from_str(text.trim()).ok())
        else {
            continue;
        };
        if same && oid != commit && repo.graph_descendant_of(commit, oid).unwrap_or(false) {
            found.push((built, dir, oid));
        }
    }
    found.sort();
    let (_, dir, _) = found.pop()?;
    let user = InUse::take(&dir).ok()?;
    let index = Index::read(&dir.join("exported"))?;
    Some((dir, index, user))
}

/// The index's stamp: the change time of a file written once every exported file is, newer
/// than all of them. The clock behind change times ticks every few milliseconds: the file is
/// written again until its time has moved past the newest export's (a few ms at most), so
/// that every record is trusted and only what the build touches is hashed again.
fn stamp(path: &Path, index: &Index) -> Result<(i64, i64), BuildError> {
    let newest = index.files.values().map(|file| file.ctime).max().unwrap_or_default();
    let mut stamp = (0, 0);
    for attempt in 0..200 {
        fs::write(path, format!("{attempt}\n")).map_err(io_err("write", path))?;
        stamp = super::index::ctime(&fs::metadata(path).map_err(io_err("stat", path))?);
        if stamp > newest {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    Ok(stamp)
}

/// Builds kept per app in the cache (the newest; older ones are removed after a build).
const KEEP_BUILDS: usize = 3;

/// Returns the cached build for this commit and build, or builds it. A cached build is used
/// only if its files still hash to the manifest recorded when it was built; while a deploy
/// uses a build, no other deploy removes or replaces it (see [`InUse`]).
pub async fn build(spec: &BuildSpec<'_>, cache: &Path) -> Result<Artifact, BuildError> {
    private(cache)?;
    let app_dir = cache.join(spec.app);
    let name = format!("{}-{}", &spec.commit[..spec.commit.len().min(12)], key(spec));
    let dir = app_dir.join(&name);
    let tree = dir.join("tree");
    let done = dir.join("built");
    if !spec.rebuild
        && let Ok(text) = fs::read_to_string(&done)
        && let Some((mtime, recorded)) = parse_built(&text)
    {
        let user = InUse::take(&dir)?;
        let (entries, files, _) = scan::scan(&tree, spec.exclude, spec.shared, None)?;
        let artifact = Artifact::new(tree, dir.clone(), entries, files, mtime, true).used_by(user);
        if artifact.sha256 == recorded {
            let _ = fs::write(&done, format!("{mtime} {recorded}\n")); // newest use, for pruning
            return Ok(artifact);
        }
        // Changed since it was built (or from an older deploy): build it again, aside.
    }

    // Built aside, then renamed into place: two deploys of one commit may build at once.
    let work = app_dir.join(format!(".build-{}-{name}", std::process::id()));
    let work_tree = work.join("tree");
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work_tree).map_err(io_err("create", &work_tree))?;
    let result = async {
        let from = ancestor(spec, &app_dir).map(|(dir, index, user)| (dir.join("tree"), index, user));
        let ancestor = from.as_ref().map(|(tree, index, _)| Ancestor { tree, index });
        let (mtime, mut index, copied) = export(spec.repository, spec.commit, &work_tree, ancestor)?;
        drop(from);
        index.stamp = stamp(&work.join("exported.stamp"), &index)?;
        let exported = work.join("exported");
        index.write(&exported).map_err(io_err("write", &exported))?;
        for (name, text) in [("commit", spec.commit.to_string()), ("recipe", recipe(spec))] {
            fs::write(work.join(name), text).map_err(io_err("write", &work.join(name)))?;
        }
        for command in spec.commands {
            let out = crate::transport::run_local(command, Some(&work_tree), spec.env, None)
                .await
                .map_err(|err| BuildError::Io(err.message))?;
            if !out.ok() {
                return Err(BuildError::Command { command: command.clone(), status: out.status, output: out.tail(20) });
            }
        }
        let (entries, files, hashed) = scan::scan(&work_tree, spec.exclude, spec.shared, Some(&index))?;
        let sha256 = hex(&Sha256::digest(scan::manifest_text(&files).as_bytes()));
        let built = work.join("built");
        fs::write(&built, format!("{mtime} {sha256}\n")).map_err(io_err("write", &built))?;
        // Marked as used before it is renamed into place, so that no other deploy removes it
        // in between. The place is taken unless another deploy uses what is there: then this
        // build gets a name of its own, and the other keeps its files.
        let _building = InUse::take(&work)?;
        let target =
            if InUse::anyone(&dir) { app_dir.join(format!("{name}-{}", std::process::id())) } else { dir.clone() };
        let _ = fs::remove_dir_all(&target);
        fs::rename(&work, &target).map_err(io_err("rename", &work))?;
        let user = InUse::take(&target)?;
        let artifact = Artifact::new(target.join("tree"), target.clone(), entries, files, mtime, false);
        Ok(Artifact { copied, hashed, ..artifact }.used_by(user))
    }
    .await;
    let _ = fs::remove_dir_all(&work);
    prune(&app_dir, &name);
    result
}

/// `built`: the export's time and the manifest's sha256 (`None`: an older format).
fn parse_built(text: &str) -> Option<(u64, String)> {
    let mut fields = text.split_whitespace();
    let mtime = fields.next()?.parse().ok()?;
    let sha256 = fields.next()?.to_string();
    (sha256.len() == 64).then_some((mtime, sha256))
}

/// A deploy using a build: `users/PID` in the build's folder while the artifact lives.
/// Pruning and rebuilding leave alone a build with a live user.
#[derive(Debug)]
pub struct InUse(PathBuf);

impl InUse {
    fn take(dir: &Path) -> Result<InUse, BuildError> {
        let users = dir.join("users");
        fs::create_dir_all(&users).map_err(io_err("create", &users))?;
        let mark = users.join(std::process::id().to_string());
        fs::write(&mark, "").map_err(io_err("write", &mark))?;
        Ok(InUse(mark))
    }

    /// Whether a running process other than this one uses the build in `dir`.
    fn anyone(dir: &Path) -> bool {
        let Ok(users) = fs::read_dir(dir.join("users")) else { return false };
        users.filter_map(Result::ok).any(|user| {
            let pid = user.file_name().to_string_lossy().into_owned();
            pid != std::process::id().to_string() && Path::new("/proc").join(&pid).exists()
        })
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
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
        if file_name == keep || InUse::anyone(&path) {
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
    let (_, files, _) = scan::scan(&newest.1.join("tree"), &[], &[], None).ok()?;
    Some(files.iter().map(|file| file.size).sum())
}
