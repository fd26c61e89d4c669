//! Linking shared folders and files (outside releases) into a release.

use super::{Cmd, Layout};

fn parent(path: &str) -> Option<&str> {
    path.rsplit_once('/').map(|(dir, _)| dir)
}

/// One command that links every shared path into `releases/<id>`. Shared folders are
/// created when missing; shared files must already exist (`ls` names any that do not), since
/// an empty `.env.local` would start the app with the wrong settings.
pub fn link(layout: &Layout, id: &str, dirs: &[String], files: &[String]) -> Option<Cmd> {
    let shared = layout.shared();
    let release = layout.release(id);
    let mut cmds = Vec::new();
    if !files.is_empty() {
        cmds.push(
            Cmd::new("ls")
                .args(["-d", "--"])
                .args(files.iter().map(|file| format!("{shared}/{file}")))
                .write_to("/dev/null"),
        );
    }
    for dir in dirs {
        cmds.push(Cmd::new("mkdir").args(["-p", "--", &format!("{shared}/{dir}")]));
    }
    for path in dirs.iter().chain(files) {
        let target = format!("{release}/{path}");
        cmds.push(Cmd::new("rm").args(["-rf", "--", &target]));
        if let Some(dir) = parent(path) {
            cmds.push(Cmd::new("mkdir").args(["-p", "--", &format!("{release}/{dir}")]));
        }
        cmds.push(Cmd::new("ln").args(["-s", "--", &format!("{shared}/{path}"), &target]));
    }
    Cmd::all(cmds)
}
