//! The artifact: a commit's tree exported (no `.git`, nothing untracked), built, packed as
//! `.tar.gz` with its sha256, and kept in a local cache so the same commit and build are
//! packed only once.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
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
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    entries: Vec<Entry>,
    files: Vec<FileEntry>,
    manifest: String,
    mtime: u64,
    dir: PathBuf,
    packs: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Packed>>>>,
}

/// One regular file of a release, as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub mode: u32,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    Symlink(PathBuf),
    /// Index into the file list.
    File(usize),
}

#[derive(Debug, Clone)]
struct Entry {
    rel: String,
    mode: u32,
    kind: Kind,
}

/// A tarball made from an artifact, ready to stream to a host.
#[derive(Debug, Clone)]
pub struct Packed {
    pub file: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    /// Files inside the tarball.
    pub sent: usize,
    /// Files the host hard-links from its current release instead.
    pub linked: usize,
    /// Bytes of those files.
    pub linked_bytes: u64,
}

/// Where the release's bookkeeping travels inside a tarball: `.git` is never part of an
/// export, so these names cannot clash with the app's files. The host moves the manifest out
/// and removes `.git` before anything else sees the release.
pub const META_DIR: &str = ".git/deploy";

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
        && let Ok(t) = fs::read_to_string(&done)
        && let Ok(mtime) = t.trim().parse::<u64>()
    {
        let (entries, files) = scan(&tree, spec.exclude)?;
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
        for c in spec.commands {
            let out = crate::transport::run_local(c, Some(&work_tree), spec.env, None)
                .await
                .map_err(|e| BuildError::Io(e.message))?;
            if !out.ok() {
                return Err(BuildError::Command { command: c.clone(), status: out.status, output: out.tail(20) });
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
        let (entries, files) = scan(&tree, spec.exclude)?;
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
    let Ok(rd) = fs::read_dir(app_dir) else { return };
    let mut builds: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
    for e in rd.filter_map(Result::ok) {
        let p = e.path();
        let file_name = e.file_name().to_string_lossy().into_owned();
        if file_name.starts_with(".build-") {
            // One in progress, or left by a deploy that was killed (after a day).
            let age = fs::metadata(&p).and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok());
            if age.is_some_and(|a| a.as_secs() > 86_400) {
                let _ = fs::remove_dir_all(&p);
            }
            continue;
        }
        if file_name == keep {
            continue;
        }
        if p.is_dir() {
            let t = fs::metadata(p.join("built")).and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH);
            builds.push((t, p));
        } else {
            let _ = fs::remove_file(&p);
        }
    }
    builds.sort();
    let excess = builds.len().saturating_sub(KEEP_BUILDS - 1);
    for (_, p) in builds.into_iter().take(excess) {
        let _ = fs::remove_dir_all(p);
    }
}

/// Unpacked size of the newest build of an app in the cache, if any (`deploy check`).
pub fn newest_size(cache: &Path, app: &str) -> Option<u64> {
    let newest = fs::read_dir(cache.join(app))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| Some((fs::metadata(e.path().join("built")).ok()?.modified().ok()?, e.path())))
        .max()?;
    let (_, files) = scan(&newest.1.join("tree"), &[]).ok()?;
    Some(files.iter().map(|f| f.size).sum())
}

/// Walks the build folder (sorted; `exclude` and a top-level `.git` left out) and hashes
/// every regular file.
fn scan(tree: &Path, exclude: &[String]) -> Result<(Vec<Entry>, Vec<FileEntry>), BuildError> {
    let mut entries = Vec::new();
    let mut files = Vec::new();
    walk(tree, "", exclude, &mut entries, &mut files)?;
    Ok((entries, files))
}

fn walk(
    root: &Path,
    rel: &str,
    exclude: &[String],
    entries: &mut Vec<Entry>,
    files: &mut Vec<FileEntry>,
) -> Result<(), BuildError> {
    use std::os::unix::fs::PermissionsExt;
    let dir = if rel.is_empty() { root.to_path_buf() } else { root.join(rel) };
    let mut list: Vec<_> = fs::read_dir(&dir).map_err(io_err("read", &dir))?.filter_map(Result::ok).collect();
    list.sort_by_key(|e| e.file_name());
    for e in list {
        let name = e.file_name().to_string_lossy().into_owned();
        let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
        let path = e.path();
        let meta = fs::symlink_metadata(&path).map_err(io_err("stat", &path))?;
        let ft = meta.file_type();
        if excluded(&child, ft.is_dir(), exclude) || (rel.is_empty() && child == ".git") {
            continue;
        }
        let mode = meta.permissions().mode() & 0o7777;
        if ft.is_symlink() {
            let target = fs::read_link(&path).map_err(io_err("readlink", &path))?;
            entries.push(Entry { rel: child, mode, kind: Kind::Symlink(target) });
        } else if ft.is_dir() {
            entries.push(Entry { rel: child.clone(), mode, kind: Kind::Dir });
            walk(root, &child, exclude, entries, files)?;
        } else if ft.is_file() {
            let mut h = Sha256::new();
            let mut f = fs::File::open(&path).map_err(io_err("open", &path))?;
            io::copy(&mut f, &mut HashWriter(&mut h)).map_err(io_err("read", &path))?;
            entries.push(Entry { rel: child.clone(), mode, kind: Kind::File(files.len()) });
            files.push(FileEntry { path: child, mode, size: meta.len(), sha256: hex(&h.finalize()) });
        }
        // sockets, fifos, devices: never part of a release
    }
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The manifest: one JSON object per regular file, sorted by path.
pub fn manifest_text(files: &[FileEntry]) -> String {
    let mut s = String::with_capacity(files.len() * 120);
    for f in files {
        s.push_str(&serde_json::to_string(f).expect("manifest entry serializes"));
        s.push('\n');
    }
    s
}

/// Reads a manifest written by [`manifest_text`]; `None` if any line is not one.
pub fn parse_manifest(text: &str) -> Option<Vec<FileEntry>> {
    text.lines().filter(|l| !l.is_empty()).map(|l| serde_json::from_str(l).ok()).collect()
}

/// A name that reads back unchanged from a line-based listing.
fn plain_name(p: &str) -> bool {
    !p.contains(['\\', '\n', '\r'])
}

/// Files on a host as `remote::release::STAT_FORMAT` lists them: inode, size, time, mode,
/// owner, group, `./path`. Unchanged since a release was unpacked (and its tarball's sha256
/// checked) means not written to since: an edit in place changes the time, a replacement the
/// inode. Keyed by path, without the leading `./`.
pub fn parse_listing(text: &str) -> HashMap<&str, &str> {
    text.split('\0')
        .filter_map(|rec| {
            let path = rec.splitn(7, ' ').nth(6)?;
            Some((path.strip_prefix("./").unwrap_or(path), rec))
        })
        .collect()
}

impl Artifact {
    fn new(tree: PathBuf, dir: PathBuf, entries: Vec<Entry>, files: Vec<FileEntry>, mtime: u64, reused: bool) -> Self {
        let manifest = manifest_text(&files);
        let sha256 = hex(&Sha256::digest(manifest.as_bytes()));
        Artifact {
            tree,
            bytes: files.iter().map(|f| f.size).sum(),
            files: files.len(),
            sha256,
            reused,
            inner: Arc::new(Inner { entries, files, manifest, mtime, dir, packs: Mutex::new(HashMap::new()) }),
        }
    }

    /// The whole release as one tarball (packed once, then kept in the cache).
    pub async fn full(&self) -> Result<Packed, BuildError> {
        self.packed("full".into(), None).await
    }

    /// A tarball holding only what differs from `base` (the manifest text of the host's current
    /// release), and every file not in `trusted` (path → its listing record, for the files
    /// unchanged on the host since that release was unpacked); the host hard-links the other
    /// files from its current release and checks each against its record. One pack per base
    /// and trusted set (records hold inode numbers: in practice one per host).
    pub async fn delta(&self, base: &str, trusted: &BTreeMap<String, String>) -> Result<Packed, BuildError> {
        let mut h = Sha256::new();
        h.update(base.as_bytes());
        for r in trusted.values() {
            h.update(b"\0");
            h.update(r.as_bytes());
        }
        let key = format!("delta-{}", &hex(&h.finalize())[..16]);
        self.packed(key, Some((base.to_string(), trusted.clone()))).await
    }

    async fn packed(
        &self,
        key: String,
        base: Option<(String, BTreeMap<String, String>)>,
    ) -> Result<Packed, BuildError> {
        let cell = self.inner.packs.lock().unwrap().entry(key.clone()).or_default().clone();
        let inner = self.inner.clone();
        let tree = self.tree.clone();
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || inner.pack(&tree, &key, base.as_ref().map(|(b, u)| (b.as_str(), u))))
                .await
                .map_err(|e| BuildError::Io(format!("pack: {e}")))?
        })
        .await
        .cloned()
    }
}

impl Inner {
    fn pack(
        &self,
        tree: &Path,
        key: &str,
        base: Option<(&str, &BTreeMap<String, String>)>,
    ) -> Result<Packed, BuildError> {
        // Which files the host can take from its current release: same path, mode and content,
        // and not changed there since.
        let trusted = base.map(|(_, t)| t);
        let base_files: Vec<FileEntry> = base.and_then(|(b, _)| parse_manifest(b)).unwrap_or_default();
        let base: HashMap<&str, (u32, &str)> =
            base_files.iter().map(|f| (f.path.as_str(), (f.mode, f.sha256.as_str()))).collect();
        let linked: Vec<bool> = self
            .files
            .iter()
            .map(|f| {
                f.path != "REVISION"
                    && plain_name(&f.path)
                    && trusted.is_some_and(|t| t.contains_key(&f.path))
                    && base.get(f.path.as_str()).is_some_and(|(m, s)| *m == f.mode && *s == f.sha256)
            })
            .collect();
        // `./path`: never read as an option; the host lists each linked file as `expect` says.
        let mut links = Vec::new();
        let mut expect = Vec::new();
        let mut linked_bytes = 0;
        for (f, _) in self.files.iter().zip(&linked).filter(|(_, l)| **l) {
            links.extend_from_slice(format!("./{}\0", f.path).as_bytes());
            if let Some(r) = trusted.and_then(|t| t.get(&f.path)) {
                expect.extend_from_slice(r.as_bytes());
                expect.push(0);
            }
            linked_bytes += f.size;
        }

        let out = self.dir.join(format!("{key}.tar.gz"));
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let f = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        let hashing = Hashing { inner: io::BufWriter::with_capacity(1 << 20, f), hash: Sha256::new(), bytes: 0 };
        let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut sent = 0;
        let err = io_err("pack", &tmp);
        for e in &self.entries {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(self.mtime);
            h.set_mode(e.mode);
            h.set_uid(0);
            h.set_gid(0);
            match &e.kind {
                Kind::Dir => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    tar.append_data(&mut h, &e.rel, io::empty()).map_err(&err)?;
                }
                Kind::Symlink(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    tar.append_link(&mut h, &e.rel, target).map_err(&err)?;
                }
                Kind::File(i) if linked[*i] => {}
                Kind::File(i) => {
                    let path = tree.join(&e.rel);
                    let file = fs::File::open(&path).map_err(io_err("open", &path))?;
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(self.files[*i].size);
                    tar.append_data(&mut h, &e.rel, io::BufReader::new(file)).map_err(&err)?;
                    sent += 1;
                }
            }
        }
        for (name, mode, data) in [
            (".git", 0o700, None),
            (META_DIR, 0o700, None),
            (&*format!("{META_DIR}/manifest"), 0o600, Some(self.manifest.as_bytes())),
            (&*format!("{META_DIR}/links"), 0o600, Some(&links[..])),
            (&*format!("{META_DIR}/expect"), 0o600, Some(&expect[..])),
        ] {
            let mut h = tar::Header::new_gnu();
            h.set_mtime(self.mtime);
            h.set_mode(mode);
            h.set_uid(0);
            h.set_gid(0);
            h.set_entry_type(if data.is_some() { tar::EntryType::Regular } else { tar::EntryType::Directory });
            h.set_size(data.map_or(0, |d| d.len() as u64));
            tar.append_data(&mut h, name, data.unwrap_or_default()).map_err(&err)?;
        }
        let gz = tar.into_inner().map_err(&err)?;
        let mut hashing = gz.finish().map_err(&err)?;
        hashing.flush().map_err(io_err("write", &tmp))?;
        drop(hashing.inner);
        fs::rename(&tmp, &out).map_err(io_err("rename", &tmp))?;
        Ok(Packed {
            file: out,
            sha256: hex(&hashing.hash.finalize()),
            bytes: hashing.bytes,
            sent,
            linked: linked.iter().filter(|l| **l).count(),
            linked_bytes,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::excluded;

    #[test]
    fn listing_records_by_path() {
        let l = super::parse_listing("12 5 1700000000 644 0 0 ./a b.php\x0013 0 1 755 33 33 ./src/x\x00");
        assert_eq!(l.get("a b.php"), Some(&"12 5 1700000000 644 0 0 ./a b.php"));
        assert_eq!(l.get("src/x"), Some(&"13 0 1 755 33 33 ./src/x"));
        assert_eq!(l.len(), 2);
    }

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
