//! What a run has done so far, per host: what a failure has to undo, and what the upload
//! read from each host while the build ran.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Progress {
    pub locked: Vec<String>,
    /// The release each host served before (from `current`); `None` = first deploy.
    pub previous: BTreeMap<String, Option<String>>,
    /// Hosts switched to the new release, in order.
    pub switched: Vec<String>,
    pub drained: BTreeSet<String>,
    /// Releases cleanup must never remove (the one being rolled out).
    pub protect: Vec<String>,
    /// The release this run makes or rolls to.
    pub release: String,
    /// Read while the build ran: each host's current release, and what a delta needs of it.
    pub prefetched: BTreeMap<String, (Option<String>, Option<Base>)>,
    /// Manifests by release id, read from the first host that has the release and shared by
    /// the others (64 hosts on one release hold one copy).
    pub manifests: BTreeMap<String, Arc<tokio::sync::OnceCell<Option<Arc<BaseManifest>>>>>,
}

/// [`Progress`] as the hosts of a step share it.
pub type SharedProgress = Arc<Mutex<Progress>>;

/// A release's manifest as read from a host.
#[derive(Debug)]
pub struct BaseManifest {
    pub text: String,
    pub files: Vec<crate::artifact::FileEntry>,
}

/// What a delta for one host is made against.
#[derive(Debug, Clone)]
pub struct Base {
    pub manifest: Arc<BaseManifest>,
    /// Which of the manifest's files (in its order) are unchanged on the host since the
    /// release was unpacked: one bit each, so hundreds of hosts cost little to remember.
    pub trusted: Vec<bool>,
}
