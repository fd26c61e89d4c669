//! `deploy setup STAGE`: prepares new servers, and checks what it must not change. On every
//! host that gets releases: creates the deploy path, `releases/`, `shared/`, the shared
//! folders, and the shared files that are missing (from `[setup] templates`, else empty);
//! nothing that exists is touched. Then checks, without changing them, sudo (when hooks use
//! it) and, as `[setup] web_user`, that the web server can write where the app writes and read
//! the shared files. Run it again at any time: it only fills what is missing.

use super::check::{Row, print_rows, row, sh, sudo_row};
use super::connect::connect_each;
use crate::config::StageConfig;
use crate::error::Error;
use crate::remote::{Layout, setup};
use crate::settings::Settings;
use crate::transport::Connections;

pub fn run(settings: &Settings, stage: &str) -> Result<i32, Error> {
    let cfg = super::load(settings, stage)?;
    let stage_cfg = &cfg.stage;
    // Templates are read before anything is contacted: a missing one changes nothing.
    let mut templates = Vec::new();
    for (file, local) in &stage_cfg.setup.templates {
        let content = std::fs::read(local).map_err(|err| Error::Usage {
            message: format!("[setup] templates: cannot read {} (for shared file {file}): {err}", local.display()),
            hint: Some("template paths are relative to the folder holding Deploy.toml".into()),
        })?;
        templates.push((file.clone(), content));
    }
    let (_, hosts) = super::host_names(&cfg);
    let rows: Vec<Row> = super::runtime()?.block_on(async {
        let (ssh, errors) = connect_each(stage_cfg, &hosts).await;
        let mut rows: Vec<Row> = errors
            .iter()
            .map(|err| row(&err.host, "ssh", false, format!("{}: {}", err.destination, err.message.trim())))
            .collect();
        let reached = hosts.iter().filter(|host| !errors.iter().any(|err| &err.host == *host));
        let done = super::each_host(reached, |host| setup_host(stage_cfg, &ssh, host, &templates)).await;
        rows.extend(done.into_iter().flatten());
        ssh.close().await;
        rows
    });
    Ok(print_rows(settings, &cfg, stage, &rows))
}

async fn setup_host(stage: &StageConfig, ssh: &Connections, name: &str, templates: &[(String, Vec<u8>)]) -> Vec<Row> {
    let layout = Layout::new(&stage.app.path);
    let shared = &stage.shared;
    let mut rows = Vec::new();
    // Empty files only for the shared files no template fills.
    let empty: Vec<String> = shared
        .files
        .iter()
        .filter(|file| !templates.iter().any(|(templated, _)| templated == *file))
        .cloned()
        .collect();
    let mut made = Vec::new();
    match sh(ssh, name, &setup::make_layout(&layout, &shared.dirs, &empty)).await {
        Ok(out) if out.ok() => made.extend(setup::parse_made(&out.stdout)),
        Ok(out) => {
            rows.push(row(name, "layout", false, format!("could not create it: {}", out.tail(2).replace('\n', "; "))));
            return rows;
        }
        Err(err) => {
            rows.push(row(name, "layout", false, err));
            return rows;
        }
    }
    for (file, content) in templates {
        let path = format!("{}/{file}", layout.shared());
        let cmd = setup::fill_missing(&path).to_string();
        match ssh.run(name, &cmd, Some(content), None).await {
            Ok(out) if out.ok() => made.extend(setup::parse_made(&out.stdout)),
            Ok(out) => rows.push(row(name, "layout", false, format!("{path}: {}", out.tail(1)))),
            Err(err) => rows.push(row(name, "layout", false, format!("{path}: {}", err.message))),
        }
    }
    let named = |created: bool| -> Vec<&str> {
        made.iter().filter(|(new, _)| *new == created).map(|(_, path)| path.as_str()).collect()
    };
    let (created, existed) = (named(true), named(false));
    rows.push(row(
        name,
        "layout",
        true,
        match (created.is_empty(), existed.is_empty()) {
            (true, _) => format!("all there ({} paths)", existed.len()),
            (false, true) => format!("created {}", created.join(" ")),
            (false, false) => format!("created {}; {} already there", created.join(" "), existed.len()),
        },
    ));
    rows.extend(sudo_row(stage, ssh, name).await);
    rows.extend(web_user_rows(stage, ssh, name, &layout).await);
    rows
}

/// As `[setup] web_user`: writes each writable path (in `shared/` when it is shared, else in
/// a folder made under `releases/` the way a prepare hook makes one) and reads each shared file.
async fn web_user_rows(stage: &StageConfig, ssh: &Connections, name: &str, layout: &Layout) -> Vec<Row> {
    let shared = &stage.shared;
    let Some(user) = &stage.setup.web_user else {
        return vec![Row {
            warn: true,
            ..row(name, "web user", true, "not checked: set [setup] web_user to the user the web server runs as")
        }];
    };
    let mut checks = Vec::new();
    for path in &stage.setup.writable {
        let in_shared = shared.dirs.iter().chain(&shared.files).any(|shared| shared == path);
        checks.push(if in_shared { format!("w:{}/{path}", layout.shared()) } else { format!("n:{path}") });
    }
    checks.extend(shared.files.iter().map(|file| format!("r:{}/{file}", layout.shared())));
    if checks.is_empty() {
        return vec![];
    }
    let out = match sh(ssh, name, &setup::access(layout, user, &checks)).await {
        Ok(out) => out,
        Err(err) => return vec![row(name, "web user", false, err)],
    };
    match out.status {
        Some(0) => {}
        Some(setup::NO_SUCH_USER) => {
            return vec![row(name, "web user", false, format!("no user `{user}` on this host ([setup] web_user)"))];
        }
        Some(setup::CANNOT_SWITCH_USER) => {
            return vec![Row {
                warn: true,
                ..row(
                    name,
                    "web user",
                    true,
                    format!("not checked: needs root or `sudo -n -u {user}` to test as {user}"),
                )
            }];
        }
        _ => return vec![row(name, "web user", false, format!("the check failed: {}", out.tail(2)))],
    }
    setup::parse_access(&out.stdout)
        .into_iter()
        .map(|(check, ok)| {
            let (mode, path) = check.split_once(':').unwrap_or(("", check.as_str()));
            let (verb, place) = match mode {
                "r" => ("reads", path.to_string()),
                "w" => ("writes", path.to_string()),
                _ => ("writes", format!("{path} in a new release (a folder a prepare hook makes)")),
            };
            if ok {
                row(name, "web user", true, format!("{user} {verb} {place}"))
            } else {
                let fix = if mode == "r" {
                    format!("make it readable to {user} (group or ACL)")
                } else {
                    "give it write access: ACLs or a shared group and umask (docs/getting-started.md)".to_string()
                };
                row(name, "web user", false, format!("{user} cannot {} {place}: {fix}", &verb[..verb.len() - 1]))
            }
        })
        .collect()
}
