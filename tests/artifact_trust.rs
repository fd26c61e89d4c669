//! The artifact as the hosts will get it: no setuid or setgid bit ships, whatever the build
//! did; the build cache is private to its owner and checked before reuse.

use crate::support::git_repo;
use deploy::artifact::{self, BuildSpec};

fn spec<'a>(repo: &'a std::path::Path, commit: &'a str, commands: &'a [String], rebuild: bool) -> BuildSpec<'a> {
    BuildSpec { app: "shop", repository: repo, commit, commands, exclude: &[], shared: &[], env: &[], rebuild }
}

fn head(repo: &std::path::Path) -> String {
    crate::support::git(repo, &["rev-parse", "HEAD"]).trim().to_string()
}

/// Every entry of a `.tar.gz` with its mode.
fn modes(file: &std::path::Path) -> Vec<(String, u32)> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap()));
    archive
        .entries()
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.path().unwrap().display().to_string(), entry.header().mode().unwrap())
        })
        .collect()
}

#[test]
fn setuid_and_setgid_bits_never_ship() {
    let repo = git_repo(&[("bin/tool", "#!/bin/sh\n"), ("bin/other", "#!/bin/sh\n")]);
    let commit = head(repo.path());
    let cache = tempfile::tempdir().unwrap();
    let commands = ["chmod 4755 bin/tool && chmod 2775 bin/other && chmod 1777 bin".to_string()];
    let rt = tokio::runtime::Runtime::new().unwrap();
    let built = rt.block_on(artifact::build(&spec(repo.path(), &commit, &commands, false), cache.path())).unwrap();
    let packed = rt.block_on(built.full()).unwrap();
    let modes = modes(&packed.file);
    let mode = |name: &str| modes.iter().find(|(path, _)| path.trim_end_matches('/') == name).map(|(_, mode)| *mode);
    assert_eq!(mode("bin/tool"), Some(0o755), "{modes:?}");
    assert_eq!(mode("bin/other"), Some(0o775), "{modes:?}");
    assert_eq!(mode("bin"), Some(0o1777), "the sticky bit is kept: {modes:?}");
    assert!(modes.iter().all(|(_, mode)| mode & 0o6000 == 0), "{modes:?}");
}
