//! Linking shared folders and files (outside releases) into a release.

use super::{Cmd, Layout};

fn parent(p: &str) -> Option<&str> {
    p.rsplit_once('/').map(|(d, _)| d)
}

/// One command that links every shared path into `releases/<id>`. Shared folders are
/// created when missing; shared files must already exist (`ls` names any that do not), since
/// an empty `.env.local` would start the app with the wrong settings.
pub fn link(l: &Layout, id: &str, dirs: &[String], files: &[String]) -> Option<Cmd> {
    let shared = l.shared();
    let release = l.release(id);
    let mut cmds = Vec::new();
    if !files.is_empty() {
        cmds.push(
            Cmd::new("ls").args(["-d", "--"]).args(files.iter().map(|f| format!("{shared}/{f}"))).write_to("/dev/null"),
        );
    }
    for d in dirs {
        cmds.push(Cmd::new("mkdir").args(["-p", "--", &format!("{shared}/{d}")]));
    }
    for p in dirs.iter().chain(files) {
        let target = format!("{release}/{p}");
        cmds.push(Cmd::new("rm").args(["-rf", "--", &target]));
        if let Some(dir) = parent(p) {
            cmds.push(Cmd::new("mkdir").args(["-p", "--", &format!("{release}/{dir}")]));
        }
        cmds.push(Cmd::new("ln").args(["-s", "--", &format!("{shared}/{p}"), &target]));
    }
    Cmd::all(cmds)
}
