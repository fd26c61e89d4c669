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

#[test]
fn the_cache_is_private_to_its_owner() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let repo = git_repo(&[("index.html", "hi")]);
    let commit = head(repo.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let base = tempfile::tempdir().unwrap();
    // Made private, and a cache left open to others is closed again.
    let cache = base.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o777)).unwrap();
    rt.block_on(artifact::build(&spec(repo.path(), &commit, &[], false), &cache)).unwrap();
    assert_eq!(std::fs::metadata(&cache).unwrap().mode() & 0o777, 0o700);
    // Someone else's cache is refused (the tests run as root, who can give it away).
    let theirs = base.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).expect("chown (the tests run as root)");
    let err = rt.block_on(artifact::build(&spec(repo.path(), &commit, &[], false), &theirs)).unwrap_err();
    assert!(matches!(err, artifact::BuildError::Refused(_)), "{err}");
    assert!(err.to_string().contains("belongs to uid 65534, not to you"), "{err}");
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0, "nothing was written there");
}

#[test]
fn without_home_the_cache_is_not_in_tmp() {
    // nextest runs each test in a process of its own: changing the environment is safe here.
    unsafe {
        std::env::remove_var("DEPLOY_CACHE_DIR");
        std::env::remove_var("XDG_CACHE_HOME");
        std::env::remove_var("HOME");
    }
    let dir = artifact::cache_dir().expect("the home folder from /etc/passwd");
    assert!(!dir.starts_with(std::env::temp_dir()), "{}", dir.display());
    assert!(dir.ends_with(".cache/deploy"), "{}", dir.display());
}

#[test]
fn a_cached_build_is_checked_before_it_is_used_again() {
    let repo = git_repo(&[("index.html", "the real page\n")]);
    let commit = head(repo.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cache = tempfile::tempdir().unwrap();
    let first = rt.block_on(artifact::build(&spec(repo.path(), &commit, &[], false), cache.path())).unwrap();
    let (tree, sha) = (first.tree.clone(), first.sha256.clone());
    drop(first);
    // Unchanged: reused.
    let again = rt.block_on(artifact::build(&spec(repo.path(), &commit, &[], false), cache.path())).unwrap();
    assert!(again.reused && again.sha256 == sha);
    drop(again);
    // Changed in the cache after it was built: built again from the commit.
    std::fs::write(tree.join("index.html"), "tampered\n").unwrap();
    let rebuilt = rt.block_on(artifact::build(&spec(repo.path(), &commit, &[], false), cache.path())).unwrap();
    assert!(!rebuilt.reused, "a tampered build was reused");
    assert_eq!(rebuilt.sha256, sha);
    assert_eq!(std::fs::read_to_string(rebuilt.tree.join("index.html")).unwrap(), "the real page\n");
}

#[test]
fn a_rebuild_never_swaps_the_build_under_a_running_deploy() {
    let repo = git_repo(&[("index.html", "v1\n")]);
    let commit = head(repo.path());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let cache = tempfile::tempdir().unwrap();
    // A deploy holds its build (another process: its mark names a live pid, here pid 1).
    let first = rt.block_on(artifact::build(&spec(repo.path(), &commit, &[], false), cache.path())).unwrap();
    let users = first.tree.parent().unwrap().join("users");
    std::fs::write(users.join("1"), "").unwrap();
    let listing = std::fs::read_dir(&first.tree).unwrap().count();
    // `--rebuild` of the same commit meanwhile: built elsewhere, the first build untouched.
    let rebuilt = rt.block_on(artifact::build(&spec(repo.path(), &commit, &[], true), cache.path())).unwrap();
    assert_ne!(rebuilt.tree, first.tree);
    assert_eq!(std::fs::read_to_string(first.tree.join("index.html")).unwrap(), "v1\n");
    assert_eq!(std::fs::read_dir(&first.tree).unwrap().count(), listing);
    // And builds of other commits do not prune it while it is used.
    for n in 0..4 {
        std::fs::write(repo.path().join("index.html"), format!("v{n}\n")).unwrap();
        crate::support::git(repo.path(), &["commit", "-qam", "next"]);
        let commit = head(repo.path());
        drop(rt.block_on(artifact::build(&spec(repo.path(), &commit, &[], false), cache.path())).unwrap());
    }
    assert!(first.tree.join("index.html").exists(), "a build in use was pruned");
    std::fs::remove_file(users.join("1")).unwrap();
}

/// Big files are streamed out of git (a loose object, then the same once packed): the export
/// holds exactly the committed bytes and modes, whichever way they were read.
#[test]
fn big_files_are_exported_byte_for_byte_loose_and_packed() {
    use std::os::unix::fs::PermissionsExt;
    let repo = git_repo(&[("README", "small")]);
    // Not compressible, above the size from which blobs are streamed.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let big: Vec<u8> = (0..12 << 20)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(repo.path().join("big.bin"), &big).unwrap();
    std::fs::write(repo.path().join("tool"), &big[..9 << 20]).unwrap();
    std::fs::set_permissions(repo.path().join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
    crate::support::git(repo.path(), &["add", "-A"]);
    crate::support::git(repo.path(), &["commit", "-q", "-m", "big"]);
    let commit = head(repo.path());
    for how in ["loose", "packed"] {
        if how == "packed" {
            crate::support::git(repo.path(), &["gc", "-q"]);
            let objects = crate::support::git(repo.path(), &["count-objects", "-v"]);
            assert!(objects.lines().any(|line| line == "count: 0"), "{objects}");
        }
        let out = tempfile::tempdir().unwrap();
        artifact::export(repo.path(), &commit, out.path(), None).unwrap();
        assert!(std::fs::read(out.path().join("big.bin")).unwrap() == big, "{how}: big.bin differs");
        assert!(std::fs::read(out.path().join("tool")).unwrap() == big[..9 << 20], "{how}: tool differs");
        let mode = std::fs::metadata(out.path().join("tool")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{how}");
        assert_eq!(std::fs::read_to_string(out.path().join("README")).unwrap(), "small");
    }
}

/// A warm build copies the files whose blob did not change from the cached build of an
/// ancestor commit (those its build commands left alone), hashes only what the export did not
/// write itself or the build touched, and gives the very release a build from scratch gives.
/// The build rewrites `keep.txt` with other bytes of the same size right after the export:
/// taken as known, it would ship with the wrong sha256 (the control).
#[test]
fn a_warm_build_takes_unchanged_files_from_an_ancestors_build_and_equals_a_cold_one() {
    let mut files: Vec<(String, String)> =
        (0..200).map(|i| (format!("src/f{i:03}.php"), format!("<?php // file {i}\n").repeat(40))).collect();
    files.push(("keep.txt".into(), "same\n".into()));
    files.push((
        "bin/build".into(),
        "mkdir -p public && printf 'built %s\\n' \"$DEPLOY_COMMIT\" > public/built.txt && printf 'SAME\\n' > keep.txt\n"
            .into(),
    ));
    let refs: Vec<(&str, &str)> = files.iter().map(|(path, text)| (path.as_str(), text.as_str())).collect();
    let repo = git_repo(&refs);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let commands = ["sh bin/build".to_string()];
    let build = |commit: &str, cache: &std::path::Path| {
        let env = [("DEPLOY_COMMIT", commit)];
        let spec = BuildSpec {
            app: "shop",
            repository: repo.path(),
            commit,
            commands: &commands,
            exclude: &[],
            shared: &[],
            env: &env,
            rebuild: false,
        };
        let built = rt.block_on(artifact::build(&spec, cache)).unwrap();
        let packed = rt.block_on(built.full()).unwrap();
        (built, packed.sha256)
    };
    let cache = tempfile::tempdir().unwrap();
    let (cold, _) = build(&head(repo.path()), cache.path());
    assert_eq!((cold.copied, cold.hashed), (0, 2), "a cold build hashes only what the export did not write");

    std::fs::write(repo.path().join("src/f001.php"), "<?php // changed\n").unwrap();
    std::fs::write(repo.path().join("src/f002.php"), "<?php // changed too\n").unwrap();
    std::fs::write(repo.path().join("src/new.php"), "<?php // new\n").unwrap();
    std::fs::remove_file(repo.path().join("src/f003.php")).unwrap();
    crate::support::git(repo.path(), &["add", "-A"]);
    crate::support::git(repo.path(), &["commit", "-q", "-m", "second"]);
    let commit = head(repo.path());
    let (warm, warm_tarball) = build(&commit, cache.path());
    // 197 unchanged source files and bin/build; keep.txt was rewritten by the first build.
    assert_eq!(warm.copied, 198, "copied from the ancestor's build");
    assert_eq!(warm.hashed, 2, "public/built.txt and keep.txt, which the build wrote");

    let scratch = tempfile::tempdir().unwrap();
    let (cold, cold_tarball) = build(&commit, scratch.path());
    assert_eq!(cold.copied, 0);
    assert_eq!(warm.sha256, cold.sha256, "the same manifest as a build from scratch");
    assert_eq!(warm_tarball, cold_tarball, "the same tarball, byte for byte");
    assert_eq!(std::fs::read_to_string(warm.tree.join("keep.txt")).unwrap(), "SAME\n");
}
