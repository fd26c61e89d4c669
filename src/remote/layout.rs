//! Where things live under the deploy path on a host (SPEC §4).

/// The deploy path of one app on a host, and the paths derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: String,
}

impl Layout {
    /// `root` is absolute, without a trailing slash (the config guarantees both).
    pub fn new(root: &str) -> Self {
        Layout { root: root.trim_end_matches('/').to_string() }
    }

    pub fn root(&self) -> &str {
        &self.root
    }

    pub fn releases(&self) -> String {
        format!("{}/releases", self.root)
    }

    pub fn release(&self, id: &str) -> String {
        format!("{}/releases/{id}", self.root)
    }

    pub fn shared(&self) -> String {
        format!("{}/shared", self.root)
    }

    pub fn current(&self) -> String {
        format!("{}/current", self.root)
    }

    /// Temporary link name used to switch `current` atomically.
    pub fn current_tmp(&self) -> String {
        format!("{}/.current.tmp", self.root)
    }

    pub fn state_dir(&self) -> String {
        format!("{}/.deploy", self.root)
    }

    /// The pid of the hook running on the host (see `hooks::run`).
    pub fn hook_pid(&self) -> String {
        format!("{}/.deploy/hook.pid", self.root)
    }

    pub fn lock_dir(&self) -> String {
        format!("{}/.deploy/lock", self.root)
    }

    pub fn lock_owner(&self) -> String {
        format!("{}/.deploy/lock/owner.json", self.root)
    }

    pub fn journal(&self) -> String {
        format!("{}/.deploy/journal.json", self.root)
    }

    pub fn release_log(&self) -> String {
        format!("{}/.deploy/releases.jsonl", self.root)
    }

    /// The manifests of the releases on this host (outside the releases, which stay exactly
    /// the app's files).
    pub fn manifests(&self) -> String {
        format!("{}/.deploy/manifests", self.root)
    }

    pub fn manifest(&self, id: &str) -> String {
        format!("{}/.deploy/manifests/{id}", self.root)
    }

    /// Inode, size and time of every file of a release, as unpacked.
    pub fn listing(&self, id: &str) -> String {
        format!("{}/.deploy/manifests/{id}.files", self.root)
    }

    /// Where a release is unpacked while it arrives: hidden, renamed to `releases/<id>` only
    /// once its sha256 is checked and its files are complete.
    pub fn partial(&self, id: &str) -> String {
        format!("{}/releases/.{id}.partial", self.root)
    }

    /// The pipe the arriving tarball is hashed through while it is unpacked.
    pub fn incoming(&self, id: &str) -> String {
        format!("{}/.deploy/incoming/{id}.fifo", self.root)
    }
}
