//! Tarballs from an artifact: the whole release, or a delta holding only what a host's
//! current release lacks (the host hard-links the rest and checks each linked file).

use super::scan::{EntryKind, TreeEntry, manifest_text, parse_manifest, plain_name};
use super::{Artifact, BuildError, Contents, FileEntry, hex, io_err};
use crate::remote::release::META_DIR;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

/// What a delta is made against: the host's current release's manifest, and which of its
/// files (in the manifest's order) are unchanged on the host since it was unpacked.
type DeltaBase = (String, Vec<bool>);

impl Artifact {
    pub(super) fn new(
        tree: PathBuf,
        dir: PathBuf,
        entries: Vec<TreeEntry>,
        files: Vec<FileEntry>,
        mtime: u64,
        reused: bool,
    ) -> Self {
        let manifest = manifest_text(&files);
        let sha256 = hex(&Sha256::digest(manifest.as_bytes()));
        Artifact {
            tree,
            bytes: files.iter().map(|file| file.size).sum(),
            files: files.len(),
            sha256,
            reused,
            copied: 0,
            hashed: 0,
            contents: Arc::new(Contents {
                entries,
                files,
                manifest,
                mtime,
                dir,
                packs: Mutex::new(HashMap::new()),
                user: None,
            }),
        }
    }

    /// The artifact keeps the build marked as used (`cache::InUse`) until its last clone goes.
    pub(super) fn used_by(mut self, user: super::cache::InUse) -> Self {
        if let Some(contents) = Arc::get_mut(&mut self.contents) {
            contents.user = Some(user);
        }
        self
    }

    /// The whole release as one tarball (packed once, then kept in the cache).
    pub async fn full(&self) -> Result<Packed, BuildError> {
        self.packed("full".into(), None).await
    }

    /// A tarball holding only what differs from `base` (the manifest text of the host's current
    /// release), and every file not `trusted` (one bit per file of `base`, in its order: set
    /// for the files unchanged on the host since that release was unpacked); the host takes
    /// the other files from its current release and checks each against its own listing of
    /// that release. One pack per base and trusted set: every host on the same release whose
    /// files are untouched shares one tarball.
    pub async fn delta(&self, base: &str, trusted: &[bool]) -> Result<Packed, BuildError> {
        let mut hash = Sha256::new();
        hash.update(base.as_bytes());
        hash.update(b"\0");
        hash.update(trusted.iter().map(|bit| if *bit { b'1' } else { b'0' }).collect::<Vec<u8>>());
        let key = format!("delta-{}", &hex(&hash.finalize())[..16]);
        self.packed(key, Some((base.to_string(), trusted.to_vec()))).await
    }

    async fn packed(&self, key: String, base: Option<DeltaBase>) -> Result<Packed, BuildError> {
        let cell = self.contents.packs.lock().unwrap().entry(key.clone()).or_default().clone();
        let contents = self.contents.clone();
        let tree = self.tree.clone();
        cell.get_or_try_init(|| async move {
            tokio::task::spawn_blocking(move || contents.pack(&tree, &key, base.as_ref()))
                .await
                .map_err(|err| BuildError::Io(format!("pack: {err}")))?
        })
        .await
        .cloned()
    }
}

impl Contents {
    /// Which files the host can take from its current release: same path, mode and content,
    /// and not changed there since.
    fn linkable(&self, base: Option<&DeltaBase>) -> Vec<bool> {
        let trusted: &[bool] = base.map(|(_, trusted)| trusted.as_slice()).unwrap_or_default();
        let base_files: Vec<FileEntry> = base.and_then(|(manifest, _)| parse_manifest(manifest)).unwrap_or_default();
        let base: HashMap<&str, (u32, &str)> = base_files
            .iter()
            .zip(trusted)
            .filter(|(_, trusted)| **trusted)
            .map(|(file, _)| (file.path.as_str(), (file.mode, file.sha256.as_str())))
            .collect();
        self.files
            .iter()
            .map(|file| {
                file.path != "REVISION"
                    && plain_name(&file.path)
                    && base.get(file.path.as_str()).is_some_and(|(mode, sha)| *mode == file.mode && *sha == file.sha256)
            })
            .collect()
    }

    fn pack(&self, tree: &Path, key: &str, base: Option<&DeltaBase>) -> Result<Packed, BuildError> {
        let linked = self.linkable(base);
        // `./path`: never read as an option; the host lists each linked file as its listing of
        // the current release says.
        let mut links = Vec::new();
        let mut linked_bytes = 0;
        for (file, _) in self.files.iter().zip(&linked).filter(|(_, linked)| **linked) {
            links.extend_from_slice(format!("./{}\0", file.path).as_bytes());
            linked_bytes += file.size;
        }

        let out = self.dir.join(format!("{key}.tar.gz"));
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        let file = fs::File::create(&tmp).map_err(io_err("create", &tmp))?;
        let hashing = Hashing { inner: io::BufWriter::with_capacity(1 << 20, file), hash: Sha256::new(), bytes: 0 };
        let gz = flate2::write::GzEncoder::new(hashing, flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut sent = 0;
        let err = io_err("pack", &tmp);
        for entry in &self.entries {
            let mut header = self.header(entry.mode);
            match &entry.kind {
                EntryKind::Dir => {
                    header.set_entry_type(tar::EntryType::Directory);
                    header.set_size(0);
                    tar.append_data(&mut header, &entry.rel, io::empty()).map_err(&err)?;
                }
                EntryKind::Symlink(target) => {
                    header.set_entry_type(tar::EntryType::Symlink);
                    header.set_size(0);
                    tar.append_link(&mut header, &entry.rel, target).map_err(&err)?;
                }
                EntryKind::File(index) if linked[*index] => {}
                EntryKind::File(index) => {
                    let path = tree.join(&entry.rel);
                    let source = fs::File::open(&path).map_err(io_err("open", &path))?;
                    header.set_entry_type(tar::EntryType::Regular);
                    header.set_size(self.files[*index].size);
                    tar.append_data(&mut header, &entry.rel, io::BufReader::new(source)).map_err(&err)?;
                    sent += 1;
                }
            }
        }
        for (name, mode, data) in [
            (".git", 0o700, None),
            (META_DIR, 0o700, None),
            (&*format!("{META_DIR}/manifest"), 0o600, Some(self.manifest.as_bytes())),
            (&*format!("{META_DIR}/links"), 0o600, Some(&links[..])),
        ] {
            let mut header = self.header(mode);
            header.set_entry_type(if data.is_some() { tar::EntryType::Regular } else { tar::EntryType::Directory });
            header.set_size(data.map_or(0, |data| data.len() as u64));
            tar.append_data(&mut header, name, data.unwrap_or_default()).map_err(&err)?;
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
            linked: linked.iter().filter(|linked| **linked).count(),
            linked_bytes,
        })
    }

    /// A tar header with the release's fixed time and owner.
    fn header(&self, mode: u32) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.set_mtime(self.mtime);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header
    }
}

/// Counts and hashes what passes through.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hash.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
