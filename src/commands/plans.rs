//! The one place the settings become plan inputs, so `deploy plan` prints exactly what
//! `deploy` and `deploy rollback` run.

use crate::config::{self, Balancer, BatchSize, Config, Role, StageConfig};
use crate::error::Error;
use crate::plan::{self, DeployInput, Owner, Plan, Revision, RollbackInput};
use crate::settings::{BuildOptions, RollOptions};

/// Hosts receiving and unpacking the artifact at once.
const UPLOAD_PARALLEL: usize = 8;

/// `--batch`, checked against the stage's app hosts and `min_in_service`.
pub fn batch(roll: &RollOptions, cfg: &Config) -> Result<Option<BatchSize>, Error> {
    let Some(batch) = roll.batch else { return Ok(None) };
    let stage = &cfg.stage;
    let apps = stage.hosts.iter().filter(|host| host.has(Role::App)).count();
    if !matches!(stage.balancer, Balancer::None) {
        config::check_rolling(apps, batch, stage.rolling.min_in_service).map_err(|message| Error::Usage {
            message: format!("--batch {batch}: {message}"),
            hint: Some("use a smaller --batch".into()),
        })?;
    }
    Ok(Some(batch))
}

/// What to build: `--revision`, else the stage's `revision`, else `HEAD`.
pub fn requested_revision(build: Option<&str>, stage: &StageConfig) -> String {
    build.map(str::to_string).or_else(|| stage.app.revision.clone()).unwrap_or_else(|| "HEAD".into())
}

/// The revision to deploy, resolved; `HEAD` with uncommitted changes is refused unless
/// `--allow-dirty`.
pub fn revision(build: &BuildOptions, stage: &StageConfig) -> Result<Revision, Error> {
    let requested = requested_revision(build.revision.as_deref(), stage);
    let revision = crate::artifact::resolve(&stage.app.repository, &requested)?;
    if requested == "HEAD" && !build.allow_dirty {
        let files = crate::artifact::uncommitted(&stage.app.repository)?;
        if !files.is_empty() {
            return Err(Error::Dirty { repository: stage.app.repository.clone(), files });
        }
    }
    Ok(revision)
}

/// The deploy plan for these settings. What the plan writes on the hosts (the release log
/// line) holds no secret.
pub fn deploy(
    cfg: &Config,
    roll: &RollOptions,
    batch: Option<BatchSize>,
    release: &str,
    revision: &Revision,
    owner: &Owner,
) -> Plan {
    let plan = plan::deploy(
        &cfg.stage,
        &DeployInput {
            release,
            revision,
            owner,
            batch,
            skip_migrations: roll.skip_migrations,
            no_ban: roll.no_ban,
            auto_rollback: roll.auto_rollback,
            upload_parallel: UPLOAD_PARALLEL,
            other_stage_ok: roll.force,
        },
    );
    without_secrets(cfg, plan)
}

fn without_secrets(cfg: &Config, mut plan: Plan) -> Plan {
    plan.record = cfg.redact_json(std::mem::take(&mut plan.record));
    plan
}

/// The rollback plan for these settings: to `target` (`None`: chosen at run time), from `from`.
pub fn rollback(
    cfg: &Config,
    roll: &RollOptions,
    batch: Option<BatchSize>,
    target: Option<&str>,
    from: Option<&str>,
    owner: &Owner,
) -> Plan {
    let plan = plan::rollback(
        &cfg.stage,
        &RollbackInput { target, from, owner, batch, no_ban: roll.no_ban, auto_rollback: roll.auto_rollback },
    );
    without_secrets(cfg, plan)
}
