//! The rollback plan: no build, no upload, no migrations; check the target is on every host,
//! then roll to it exactly as a deploy rolls.

use super::steps::{Head, RollInput, common_notes, connect_step, lock_step, on_release_hosts, roll_and_finish};
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
    /// Hosts already on the target: left as they are (known at run time, after the lock).
    pub settled: &'a [String],
}

/// Placeholder shown for the target when it is chosen at run time.
pub const PREVIOUS: &str = "<previous>";

pub fn rollback(cfg: &StageConfig, input: &RollbackInput) -> Plan {
    let layout = Layout::new(&cfg.app.path);
    let id = input.target.unwrap_or(PREVIOUS);
    let env = HookEnv { stage: &cfg.stage, release: id, path: &cfg.app.path, timeout: cfg.hooks.timeout };
    let mut notes = common_notes(cfg);
    if input.target.is_none() {
        notes.push("the target is the newest release before the current one that was not rolled back, read from the release log".into());
    }
    notes.push(
        "no build, no upload, and migrations are NOT reversed: the database stays as the newer release left it".into(),
    );
    let mut steps = vec![connect_step(cfg), lock_step(cfg, input.owner)];
    let check = on_release_hosts(cfg, |host| {
        vec![
            Action::on_host(What::CheckRelease, &host.name, release::exists(&layout, id))
                .shown(format!("check that releases/{id} is there")),
        ]
    });
    steps.push(Step::parallel(
        Phase::Check,
        format!("check release {id} is present on every host"),
        cfg.hosts.len().max(1),
        OnFailure::Abort,
        check,
    ));
    let record = serde_json::json!({
        "kind": "rollback",
        "release": id,
        "from": input.from,
        "stage": cfg.stage,
        "site": cfg.site,
        "who": format!("{}@{}", input.owner.user, input.owner.machine),
        "when": input.owner.started,
        "outcome": "success",
    });
    let roll = RollInput {
        batch: input.batch,
        auto_rollback: input.auto_rollback,
        no_ban: input.no_ban,
        settled: input.settled,
        canary: false,
    };
    let token = input.owner.token.clone();
    let head = Head { kind: PlanKind::Rollback, id, revision: None, steps, notes, record, token, post_migrate: None };
    roll_and_finish(cfg, &env, roll, head)
}
