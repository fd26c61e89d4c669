//! The artifact: a commit's tree exported (no `.git`, nothing untracked), built, packed as
//! `.tar.gz` with its sha256, and kept in a local cache so the same commit and build are
//! packed only once.

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone)]
pub struct Artifact {
    pub file: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    /// Taken from the cache: nothing was built.
    pub reused: bool,
}

pub struct BuildSpec<'a> {
    pub app: &'a str,
    pub repository: &'a Path,
    pub commit: &'a str,
    pub commands: &'a [String],
    pub exclude: &'a [String],
    /// Variables the build commands see (DEPLOY_STAGE, DEPLOY_COMMIT); part of the cache key.
    pub env: &'a [(&'a str, &'a str)],
    /// Build even if this commit and build were packed before (`--rebuild`).
    pub rebuild: bool,
}

#[derive(Debug)]
pub enum BuildError {
    Git(String),
    Io(String),
    Command { command: String, status: Option<i32>, output: String },
}

impl std::fmt::Display for BuildError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BuildError::Git(m) | BuildError::Io(m) => f.write_str(m),
            BuildError::Command { command, status, output } => {
                write!(
                    f,
                    "build command `{command}` failed (exit {})",
                    status.map_or("signal".into(), |s| s.to_string())
                )?;
                if !output.is_empty() {
                    write!(f, ":\n{output}")?;
                }
                Ok(())
            }
        }
    }
}

fn io_err(what: &str, p: &Path) -> impl Fn(io::Error) -> BuildError {
    let s = format!("{what} {}", p.display());
    move |e| BuildError::Io(format!("{s}: {e}"))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// Where artifacts are kept: `$DEPLOY_CACHE_DIR`, else `$XDG_CACHE_HOME/deploy`, else
/// `~/.cache/deploy`.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("DEPLOY_CACHE_DIR") {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(d).join("deploy");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
    home.join(".cache/deploy")
}

/// The cache key: the commit and everything about the build that changes its output.
fn key(spec: &BuildSpec) -> String {
    let mut h = Sha256::new();
    h.update(spec.commit.as_bytes());
    for (k, v) in spec.env {
        h.update(format!("\0env\0{k}={v}").as_bytes());
    }
    for c in spec.commands {
        h.update(b"\0cmd\0");
        h.update(c.as_bytes());
    }
    for e in spec.exclude {
        h.update(b"\0exclude\0");
        h.update(e.as_bytes());
    }
    hex(&h.finalize()[..8])
}

/// Returns the cached artifact for this commit and build, or builds it.
pub async fn build(spec: &BuildSpec<'_>, cache: &Path) -> Result<Artifact, BuildError> {
    let dir = cache.join(spec.app);
    fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
    let name = format!("{}-{}", &spec.commit[..spec.commit.len().min(12)], key(spec));
    let file = dir.join(format!("{name}.tar.gz"));
    let sum_file = dir.join(format!("{name}.tar.gz.sha256"));
    if let (false, Ok(meta), Ok(sum)) = (spec.rebuild, fs::metadata(&file), fs::read_to_string(&sum_file)) {
        let mut parts = sum.split_whitespace();
        if let (Some(sha), Some(size)) = (parts.next(), parts.next())
            && size.parse::<u64>().ok() == Some(meta.len())
        {
            return Ok(Artifact { file, sha256: sha.to_string(), bytes: meta.len(), reused: true });
        }
    }

    let work = dir.join(format!(".build-{}-{}", std::process::id(), key(spec)));
    let _ = fs::remove_dir_all(&work);
    fs::create_dir_all(&work).map_err(io_err("create", &work))?;
    let result = async {
        let mtime = export(spec.repository, spec.commit, &work)?;
        for c in spec.commands {
            let out = crate::transport::run_local(c, Some(&work), spec.env, None)
                .await
                .map_err(|e| BuildError::Io(e.message))?;
            if !out.ok() {
                return Err(BuildError::Command { command: c.clone(), status: out.status, output: out.tail(20) });
            }
        }
        let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let (sha, bytes) = pack(&work, spec.exclude, &tmp, mtime)?;
        fs::rename(&tmp, &file).map_err(io_err("rename", &tmp))?;
        fs::write(&sum_file, format!("{sha} {bytes}\n")).map_err(io_err("write", &sum_file))?;
        Ok(Artifact { file: file.clone(), sha256: sha, bytes, reused: false })
    }
    .await;
    let _ = fs::remove_dir_all(&work);
    result
}

/// Writes the commit's tree into `dest`: files with their modes, symlinks as symlinks;
/// submodules are left out. Returns the commit's time (seconds since the epoch).
pub fn export(repository: &Path, commit: &str, dest: &Path) -> Result<u64, BuildError> {
    let git = |e: git2::Error| BuildError::Git(format!("git: {}", e.message()));
    let repo = git2::Repository::discover(repository).map_err(git)?;
    let oid = git2::Oid::from_str(commit).map_err(git)?;
    let c = repo.find_commit(oid).map_err(git)?;
    let time = c.time().seconds().max(0) as u64;
    let tree = c.tree().map_err(git)?;
    let mut failure: Option<BuildError> = None;
    tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
        let Ok(name) = entry.name() else { return git2::TreeWalkResult::Skip };
        let path = dest.join(root).join(name);
        let r: Result<(), BuildError> = (|| {
            match entry.kind() {
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
            }
        })();
        match r {
            Ok(()) => git2::TreeWalkResult::Ok,
            Err(e) => {
                failure = Some(e);
                git2::TreeWalkResult::Abort
            }
        }
    })
    .map_err(|e| failure.take().unwrap_or_else(|| git(e)))?;
    match failure {
        Some(e) => Err(e),
        None => Ok(time),
    }
}

/// Does `rel` (a path in the build folder, `/`-separated) match an exclude pattern? Close to
/// rsync's rules: a pattern with a `/` inside or at the start is matched against the whole
/// path from the top (`/tests/`, `public/build/*.map`; rsync would also try deeper); any other
/// matches the name at any depth (`*.map`, `__pycache__/`). A trailing `/` matches folders only. `*` and `?` do not cross
/// `/`; `**` does.
pub fn excluded(rel: &str, is_dir: bool, patterns: &[String]) -> bool {
    patterns.iter().any(|p| {
        let (p, dir_only) = match p.strip_suffix('/') {
            Some(s) => (s, true),
            None => (p.as_str(), false),
        };
        if dir_only && !is_dir {
            return false;
        }
        if let Some(anchored) = p.strip_prefix('/') {
            glob(anchored.as_bytes(), rel.as_bytes())
        } else if p.contains('/') {
            glob(p.trim_start_matches("**/").as_bytes(), rel.as_bytes())
                || glob(p.as_bytes(), rel.as_bytes())
                || (p.starts_with("**/")
                    && rel.match_indices('/').any(|(i, _)| glob(&p.as_bytes()[3..], &rel.as_bytes()[i + 1..])))
        } else {
            glob(p.as_bytes(), rel.rsplit('/').next().unwrap_or(rel).as_bytes())
        }
    })
}

/// `*` and `?` within a path component, `**` across components.
fn glob(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) if p.get(1) == Some(&b'*') => {
            let rest = &p[2..];
            (0..=s.len()).any(|i| glob(rest, &s[i..]))
        }
        (Some(b'*'), _) => {
            let rest = &p[1..];
            let limit = s.iter().position(|c| *c == b'/').unwrap_or(s.len());
            (0..=limit).any(|i| glob(rest, &s[i..]))
        }
        (Some(b'?'), Some(c)) if *c != b'/' => glob(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => glob(&p[1..], &s[1..]),
        _ => false,
    }
}

struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Packs `dir` (sorted, owner root, permission bits kept, every entry stamped with the
/// commit's time) into a gzip
/// tarball; returns its sha256 and size. The commit time, not a constant: web servers build
/// ETags from size and time, and a changed file of the same size must get a new one.
pub fn pack(dir: &Path, exclude: &[String], out: &Path, mtime: u64) -> Result<(String, u64), BuildError> {
    let f = fs::File::create(out).map_err(io_err("create", out))?;
    let hashing = Hashing { inner: io::BufWriter::with_capacity(1 << 20, f), hash: Sha256::new(), bytes: 0 };
    let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    add_dir(&mut tar, dir, "", exclude, mtime)?;
    let gz = tar.into_inner().map_err(io_err("pack", out))?;
    let mut hashing = gz.finish().map_err(io_err("pack", out))?;
    hashing.flush().map_err(io_err("write", out))?;
    Ok((hex(&hashing.hash.finalize()), hashing.bytes))
}

fn add_dir<W: Write>(
    tar: &mut tar::Builder<W>,
    root: &Path,
    rel: &str,
    exclude: &[String],
    mtime: u64,
) -> Result<(), BuildError> {
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let mut entries: Vec<_> = fs::read_dir(&dir).map_err(io_err("read", &dir))?.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let path = e.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        let ft = meta.file_type();
        if excluded(&child, ft.is_dir(), exclude) || (rel.is_empty() && child == ".git") {
            continue;
        }
        let mut h = tar::Header::new_gnu();
        h.set_metadata_in_mode(&meta, tar::HeaderMode::Deterministic);
        h.set_mtime(mtime);
        {
            use std::os::unix::fs::PermissionsExt;
            h.set_mode(meta.permissions().mode() & 0o7777);
        }
        let r = if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err("readlink", &path))?;
            h.set_size(0);
            tar.append_link(&mut h, &child, target)
        } else if ft.is_dir() {
            h.set_size(0);
            tar.append_data(&mut h, &child, io::empty())
        } else {
            let f = fs::File::open(&path).map_err(io_err("open", &path))?;
            tar.append_data(&mut h, &child, io::BufReader::new(f))
        };
        r.map_err(io_err("pack", &path))?;
        if ft.is_dir() {
            add_dir(tar, root, &child, exclude, mtime)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::excluded;

    #[test]
    fn exclude_patterns() {
        let p: Vec<String> =
            ["/tests/", "__pycache__/", "/.env.local", "*.map", "public/build/*.tmp", "**/cache/*.bin"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert!(excluded("tests", true, &p));
        assert!(!excluded("tests", false, &p), "a file named tests is not the folder");
        assert!(!excluded("src/tests", true, &p), "anchored at the top");
        assert!(excluded("app/__pycache__", true, &p), "unanchored: any depth");
        assert!(excluded("__pycache__", true, &p));
        assert!(excluded(".env.local", false, &p));
        assert!(!excluded("config/.env.local", false, &p));
        assert!(excluded("app.js.map", false, &p) && excluded("public/js/app.js.map", false, &p));
        assert!(!excluded("app.js.mapx", false, &p));
        assert!(excluded("public/build/a.tmp", false, &p) && !excluded("public/build/x/a.tmp", false, &p));
        assert!(excluded("var/cache/x.bin", false, &p) && excluded("a/b/cache/y.bin", false, &p));
        assert!(!excluded("cache.bin", false, &p));
    }
}
