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
    roll: &RollOptions,
) -> Result<i32, Error> {
    let cfg = super::load(settings, stage)?;
    let batch = plans::batch(roll, &cfg)?;
    let now = SystemTime::now();
    let owner = crate::who::owner(stage, now);
    let plan = if rollback {
        plans::rollback(&cfg, roll, batch, to, None, &owner)
    } else {
        let requested = plans::requested_revision(revision, &cfg.stage);
        let revision = crate::artifact::resolve(&cfg.stage.app.repository, &requested)?;
        let id = crate::release_id::release_id(now, &revision.commit);
        plans::deploy(&cfg, roll, batch, &id, &revision, &owner)
    };
    let text = match settings.output {
        OutputMode::Json => {
            let value = cfg.redact_json(serde_json::to_value(&plan).expect("plan serializes"));
            format!("{}\n", serde_json::to_string_pretty(&value).expect("JSON value serializes"))
        }
        _ => cfg.redact(&plan.to_string()),
    };
    super::out(&text);
    Ok(0)
}
