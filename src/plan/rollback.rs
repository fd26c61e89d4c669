//! The rollback plan: no build, no upload, no migrations; check the target is on every host,
//! then roll to it exactly as a deploy rolls.

use super::deploy::*;
use super::*;
use crate::config::{Batch as BatchSize, StageConfig};
use crate::remote::hooks::HookEnv;
use crate::remote::{Layout, release};

pub struct RollbackInput<'a> {
    /// `--to ID`; `None` = the previous good release, read from the release log at run time.
    pub target: Option<&'a str>,
    /// The release rolled back from (recorded, so the next rollback skips it).
    pub from: Option<&'a str>,
    pub owner: &'a Owner,
    pub batch: Option<BatchSize>,
    pub no_ban: bool,
}

/// Placeholder shown for the target when it is chosen at run time.
pub const PREVIOUS: &str = "<previous>";

pub fn rollback(cfg: &StageConfig, input: &RollbackInput) -> Plan {
    let l = Layout::new(&cfg.app.path);
    let id = input.target.unwrap_or(PREVIOUS);
    let env = HookEnv { stage: &cfg.stage, release: id, path: &cfg.app.path };
    let mut notes = common_notes(cfg);
    if input.target.is_none() {
        notes.push("the target is the newest release before the current one that was not rolled back, read from the release log".into());
    }
    notes.push(
        "no build, no upload, and migrations are NOT reversed: the database stays as the newer release left it".into(),
    );
    let mut steps = vec![connect_step(cfg), lock_step(cfg, input.owner)];
    let check = cfg
        .hosts
        .iter()
        .filter(|h| h.gets_release())
        .map(|h| HostActions {
            host: h.name.clone(),
            actions: vec![Action::on_host(What::CheckRelease, &h.name, release::exists(&l, id))],
        })
        .collect();
    steps.push(Step::parallel(
        Phase::Check,
        format!("check release {id} is present on every host"),
        cfg.hosts.len().max(1),
        check,
    ));
    let (roll, size) = roll_step(cfg, &l, id, input.batch.unwrap_or(cfg.rolling.batch), &env);
    steps.push(roll);
    if let Some(w) = workers_step(cfg, &l, id, &env) {
        steps.push(w);
    }
    if input.no_ban {
        notes.push("HTTP cache not banned (--no-ban)".into());
    } else if let Some(b) = ban_step(cfg) {
        steps.push(b);
    }
    let record = serde_json::json!({
        "kind": "rollback",
        "release": id,
        "from": input.from,
        "stage": cfg.stage,
        "who": format!("{}@{}", input.owner.user, input.owner.machine),
        "when": input.owner.started,
        "outcome": "success",
    });
    steps.push(finish_step(cfg, &l, &record.to_string()));
    Plan {
        kind: PlanKind::Rollback,
        app: cfg.app.name.clone(),
        stage: cfg.stage.clone(),
        path: cfg.app.path.clone(),
        release: id.to_string(),
        revision: None,
        hosts: host_infos(cfg),
        balancer: balancer_summary(cfg),
        batch_size: size,
        steps,
        notes,
        record,
    }
}
