//! `deploy plan STAGE [--rollback [--to ID]]`: every step and remote command, offline.

use super::plans;
use crate::error::Error;
use crate::settings::{OutputMode, RollOptions, Settings};
use std::time::SystemTime;

pub fn run(
    settings: &Settings,
    stage: &str,
    rollback: bool,
    to: Option<&str>,
    revision: Option<&str>,
    allow_dirty: bool,
    roll: &RollOptions,
) -> Result<i32, Error> {
    let mut cfg = super::load(settings, stage)?;
    plans::select(&mut cfg, roll, !rollback)?;
    let batch = plans::batch(roll, &cfg)?;
    let now = SystemTime::now();
    let owner = crate::who::owner(stage, now);
    for overlap in &cfg.overlaps {
        eprintln!(
            "note: stage `{}` also deploys to {} at {}: a {} of `{stage}` changes what `{}` serves there too",
            overlap.other_stage,
            overlap.address,
            overlap.path,
            if rollback { "rollback" } else { "deploy" },
            overlap.other_stage
        );
    }
    let plan = if rollback {
        plans::rollback(&cfg, roll, batch, to, None, &[], &owner)
    } else {
        let (revision, notes) = revision_with_notes(&cfg, stage, revision, allow_dirty);
        // What `deploy` would refuse is a note here: the plan still shows the rest.
        for note in notes {
            eprintln!("{}", cfg.redact(&format!("note: {note}")));
        }
        let id = crate::release_id::release_id(now, &revision.commit);
        plans::deploy(&cfg, roll, batch, &id, &revision, &owner)
    };
    let text = match settings.output {
        OutputMode::Json => {
            let value = cfg.redact_json(serde_json::to_value(&plan).expect("plan serializes"));
            format!("{}\n", serde_json::to_string_pretty(&value).expect("JSON value serializes"))
        }
        _ => {
            let detail = match (settings.verbose, settings.quiet) {
                (true, _) => crate::plan::Detail::Full,
                (_, true) => crate::plan::Detail::Brief,
                _ => crate::plan::Detail::Normal,
            };
            let text = cfg.secrets.redact_as_local(&plan.render(detail));
            if text.contains("<$") && !cfg.secrets.is_empty() {
                format!(
                    "{text}\n<$VAR>: a value read from this machine's environment when the plan was made (not shown);\n\
                     ${{VAR}}: expanded by the host's shell, from the value deploy sends with the command\n"
                )
            } else {
                text
            }
        }
    };
    super::out(&text);
    Ok(0)
}

/// The revision `deploy` would build, and what `deploy` would refuse about it: a revision
/// that does not resolve (planned as commit 000…), uncommitted changes in the working copy.
fn revision_with_notes(
    cfg: &crate::config::Config,
    stage: &str,
    revision: Option<&str>,
    allow_dirty: bool,
) -> (crate::plan::Revision, Vec<String>) {
    let repository = &cfg.stage.app.repository;
    let requested = plans::requested_revision(revision, &cfg.stage);
    let mut notes = Vec::new();
    let resolved = match crate::artifact::resolve(repository, &requested) {
        Ok(resolved) => resolved,
        Err(err) => {
            notes.push(format!(
                "`deploy {stage}` would refuse: revision `{requested}` does not resolve in {}: {}; the plan shows commit 000…",
                repository.display(),
                err.message
            ));
            crate::plan::Revision { requested: requested.clone(), commit: "0".repeat(40) }
        }
    };
    if requested == "HEAD" && !allow_dirty {
        match crate::artifact::uncommitted(repository) {
            Ok(files) if !files.is_empty() => notes.push(format!(
                "`deploy {stage}` would refuse: the working copy in {} has uncommitted changes, which would not be deployed: {} (commit them, or pass --allow-dirty to deploy HEAD without them)",
                repository.display(),
                files.join(", ")
            )),
            Ok(_) => {}
            Err(err) => notes.push(format!("`deploy {stage}` would refuse: {}", err.message)),
        }
    }
    (resolved, notes)
}
