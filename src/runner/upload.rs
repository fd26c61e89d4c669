//! The upload: what each host's current release is and what a delta needs of it (read while
//! the build runs), the tarball for each host (a delta or the whole release), sending it and
//! checking the sha256 the host computed; a warm release the host refuses is replaced by the
//! whole release.

use super::Context;
use super::failure::{Failure, FailureKind};
use super::host::{HostRun, Received};
use super::progress::{Base, BaseManifest, SharedProgress};
use crate::artifact::{Artifact, ArtifactStore, Packed, parse_listing, parse_manifest};
use crate::plan::{Action, HostActions, Run, What};
use crate::remote::{Layout, release};
use crate::report::Event;
use crate::transport::{Output, Transport};
use std::sync::Arc;

impl<T: Transport> Context<T> {
    /// The release `current` points to; no `current` yet (a first deploy) is not an error.
    pub(super) async fn read_current(&self, host: &str, action: &Action) -> Result<Option<String>, Failure> {
        let Run::Shell { cmd, .. } = &action.run else { unreachable!("read current is a command") };
        let out = self
            .transport
            .run(&action.on, cmd, None)
            .await
            .map_err(|err| Failure::transport(host, action.what, err))?;
        if out.status == Some(release::OTHER_STAGE) {
            let reason = out.stderr.trim();
            let message = format!("{reason}; pass --force to deploy here anyway (`deploy plan` notes the overlap)");
            return Err(Failure::new(host, action.what, FailureKind::Refused, message));
        }
        Ok(if out.ok() { release::current_release(&out.stdout) } else { None })
    }

    /// Reads, for one host, its current release and (with `build.delta`) what a delta
    /// against it needs; failures are left for the upload step to meet and report.
    pub(super) async fn prefetch(&self, host: &HostActions, progress: &SharedProgress, layout: &Layout) {
        let Some(action) = host.actions.iter().find(|action| action.what == What::ReadCurrent) else { return };
        let Ok(previous) = self.read_current(&host.host, action).await else { return };
        let base = match &previous {
            Some(id) if self.delta => self.base(action, id, layout, progress).await,
            _ => None,
        };
        progress.lock().unwrap().prefetched.insert(host.host.clone(), (previous, base));
    }

    /// The current release's manifest, and which of its files changed on the host since it
    /// was unpacked (its listing then and now, read at once); `None` without a manifest.
    async fn base(&self, action: &Action, id: &str, layout: &Layout, progress: &SharedProgress) -> Option<Base> {
        let cell = progress.lock().unwrap().manifests.entry(id.to_string()).or_default().clone();
        let manifest = async {
            cell.get_or_init(|| async {
                let read = self.transport.run(&action.on, &release::manifest(layout, id), None).await;
                let out = read.ok().filter(|out| out.ok())?;
                let files = parse_manifest(&out.stdout).filter(|files| !files.is_empty())?;
                Some(Arc::new(BaseManifest { text: out.stdout, files }))
            })
            .await
            .clone()
        };
        let (unpacked, now) = (release::unpacked_listing(layout, id), release::current_listing(layout));
        let (manifest, then, now) = tokio::join!(
            manifest,
            self.transport.run(&action.on, &unpacked, None),
            self.transport.run(&action.on, &now, None)
        );
        let manifest = manifest?;
        let (then, now) = (then.ok().filter(|out| out.ok()), now.ok().filter(|out| out.ok()));
        let then = then.as_ref().map(|out| parse_listing(&out.stdout)).unwrap_or_default();
        let now = now.as_ref().map(|out| parse_listing(&out.stdout)).unwrap_or_default();
        let trusted = manifest
            .files
            .iter()
            .map(|file| then.get(file.path.as_str()).is_some_and(|record| now.get(file.path.as_str()) == Some(record)))
            .collect();
        Some(Base { manifest, trusted })
    }
}

impl<T: Transport> HostRun<'_, T> {
    fn artifact(&self) -> &Artifact {
        self.artifact.expect("the upload runs after the build")
    }

    /// Packs this host's tarball and sends it.
    pub(super) async fn receive<'a>(&self, action: &'a Action) -> Result<Received<'a>, Failure> {
        let packed = self.pack(action).await?;
        self.send(action, &packed).await?;
        Ok(Received { action, delta: packed.linked > 0 })
    }

    /// Unpacks a delta. If the host refuses it (its files changed since they were unpacked, or
    /// hard links fail), removes what was made and sends the whole release instead.
    pub(super) async fn unpack_warm(&self, unpack: &Action, receive: &Action) -> Result<(), Failure> {
        let Err(failure) = self.plain(unpack).await else { return Ok(()) };
        if !matches!(failure.kind, FailureKind::Exited { status } if release::refused_warm_release(status)) {
            return Err(failure);
        }
        let why =
            failure.output.lines().find(|line| line.starts_with("warm release:")).unwrap_or("warm release refused");
        self.context.report.event(&Event::Warning {
            host: Some(self.actions.host.clone()),
            message: format!("{why}; sending the whole release instead"),
        });
        let id = self.progress.lock().unwrap().release.clone();
        let remove = release::remove(self.layout, std::slice::from_ref(&id));
        let host = &self.actions.host;
        let gone = self
            .context
            .transport
            .run(&unpack.on, &remove, None)
            .await
            .map_err(|err| Failure::transport(host, unpack.what, err))?;
        if !gone.ok() {
            return Err(failure);
        }
        let full = self.artifact().full().await.map_err(|err| Failure::packing(host, unpack.what, err))?;
        self.send(receive, &full).await?;
        self.plain(unpack).await
    }

    /// The tarball for this host: a delta against its current release when that release has
    /// a manifest (and `build.delta` is on), else the whole release.
    async fn pack(&self, action: &Action) -> Result<Packed, Failure> {
        let host = &self.actions.host;
        let (current, prefetched) = {
            let progress = self.progress.lock().unwrap();
            (progress.previous.get(host).cloned().flatten(), progress.prefetched.get(host).map(|read| read.1.clone()))
        };
        let base = match (prefetched, current) {
            (Some(base), _) => base,
            (None, Some(id)) if self.context.delta => self.context.base(action, &id, self.layout, self.progress).await,
            _ => None,
        };
        let packed = match base {
            Some(base) => self.artifact().delta(&base.manifest.text, &base.trusted).await,
            None => self.artifact().full().await,
        };
        packed.map_err(|err| Failure::packing(host, action.what, err))
    }

    /// Streams a tarball to the host (or, with a store, puts it there once and has the host
    /// fetch it) and checks the sha256 the host computed.
    async fn send(&self, action: &Action, packed: &Packed) -> Result<(), Failure> {
        let host = &self.actions.host;
        let out = match &self.context.store {
            None => self.context.exec(host, action, Some(&packed.file)).await?,
            Some(store) => self.fetch(action, packed, store).await?,
        };
        let got = release::received_sha256(&out.stdout).unwrap_or("");
        if got != packed.sha256 {
            let got = if got.is_empty() { "nothing" } else { got };
            let message = format!("checksum mismatch: sent {}, host has {got}", packed.sha256);
            return Err(
                Failure::new(host, action.what, FailureKind::ChecksumMismatch, message).with_output(out.tail(5))
            );
        }
        self.context.report.event(&Event::Sent {
            host: host.clone(),
            from_store: self.context.store.is_some(),
            kind: if packed.linked > 0 { "delta" } else { "full" },
            bytes: packed.bytes,
            files: packed.sent,
            linked: packed.linked,
            linked_bytes: packed.linked_bytes,
        });
        Ok(())
    }

    /// Puts the tarball in the store (once per run and tarball: the first host to need it
    /// sends it, the others wait) and has the host fetch it: the host reads the sha256 it
    /// must get and curl's config on stdin, from a private file that is removed at once.
    async fn fetch(&self, action: &Action, packed: &Packed, store: &ArtifactStore) -> Result<Output, Failure> {
        let host = &self.actions.host;
        let (stored, made) =
            store.put(packed).await.map_err(|message| Failure::new(host, action.what, FailureKind::Store, message))?;
        if made {
            self.context.report.event(&Event::Stored {
                object: stored.shown.clone(),
                bytes: stored.bytes,
                uploaded: stored.uploaded,
                took: stored.took,
            });
        }
        let input = store.fetch_input(&stored, &packed.sha256);
        let file = self
            .artifact()
            .private_file(&format!("fetch-{host}"), input.as_bytes())
            .map_err(|err| Failure::packing(host, action.what, err))?;
        let out = self.context.exec(host, action, Some(&file)).await;
        let _ = std::fs::remove_file(&file);
        out.map_err(|failure| match failure.kind {
            FailureKind::Exited { status: Some(release::FETCH_MISMATCH) } => Failure {
                kind: FailureKind::ChecksumMismatch,
                message: format!(
                    "checksum mismatch: {host} fetched other bytes than {} on every try (expected sha256 {})",
                    stored.shown, packed.sha256
                ),
                ..failure
            },
            _ => failure,
        })
    }
}
