//! The rollback plan: no build, no upload, no migrations; check the target is on every host,
//! then roll to it exactly as a deploy rolls.

use super::steps::{
    balancer_summary, ban_step, common_notes, connect_step, finish_step, host_infos, lock_step, workers_step,
};
use super::*;
use crate::config::{BatchSize, StageConfig};
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
    /// After a failure in the roll, put switched hosts back (`--no-auto-rollback`: false).
    pub auto_rollback: bool,
}

/// Placeholder shown for the target when it is chosen at run time.
pub const PREVIOUS: &str = "<previous>";

pub fn rollback(cfg: &StageConfig, input: &RollbackInput) -> Plan {
    let layout = Layout::new(&cfg.app.path);
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
        .filter(|host| host.gets_release())
        .map(|host| HostActions {
            host: host.name.clone(),
            actions: vec![Action::on_host(What::CheckRelease, &host.name, release::exists(&layout, id))],
        })
        .collect();
    steps.push(Step::parallel(
        Phase::Check,
        format!("check release {id} is present on every host"),
        cfg.hosts.len().max(1),
        OnFailure::Abort,
        check,
    ));
    let after_switch = OnFailure::after_switch(input.auto_rollback);
    let batch = input.batch.unwrap_or(cfg.rolling.batch);
    let (roll, size) = super::roll::roll_step(cfg, &layout, id, batch, &env, after_switch);
    steps.push(roll);
    if let Some(workers) = workers_step(cfg, &layout, id, &env, after_switch) {
        steps.push(workers);
    }
    if input.no_ban {
        notes.push("HTTP cache not banned (--no-ban)".into());
    } else if let Some(ban) = ban_step(cfg) {
        steps.push(ban);
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
    steps.push(finish_step(cfg, &layout, &record.to_string()));
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
