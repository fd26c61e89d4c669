//! The one place the settings become plan inputs, so `deploy plan` prints exactly what
//! `deploy` and `deploy rollback` run.

use crate::config::{self, Balancer, BatchSize, Config, Role, StageConfig};
use crate::error::Error;
use crate::plan::{self, DeployInput, Owner, Plan, Revision, RollbackInput};
use crate::settings::{BuildOptions, RollOptions};

/// Hosts receiving and unpacking the artifact at once: over ssh, the deploying machine's
/// uplink is shared by them; from an artifact store, it only hands each host a URL.
const UPLOAD_PARALLEL: usize = 8;
const FETCH_PARALLEL: usize = 32;

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

/// `--host`/`--role`: narrows the run to those hosts. When `migrates` (a deploy whose migrate
/// hook runs), the migrate host must be among them: the migration runs in the new release,
/// which only the chosen hosts get.
pub fn select(cfg: &mut Config, roll: &RollOptions, migrates: bool) -> Result<(), Error> {
    let stage = &mut cfg.stage;
    stage.select(&roll.hosts, roll.role).map_err(|err| Error::Usage { message: err.message, hint: Some(err.hint) })?;
    let Some(only) = &stage.only else { return Ok(()) };
    let migrate_host = stage.hosts.iter().find(|host| host.has(Role::Migrate));
    if let (true, Some(_), Some(host)) = (migrates && !roll.skip_migrations, &stage.hooks.migrate, migrate_host)
        && !only.hosts.contains(&host.name)
    {
        return Err(Error::Usage {
            message: format!(
                "{}: the migration runs on {} (role migrate), which this run leaves out",
                only.said, host.name
            ),
            hint: Some(format!(
                "add --host {}, or add --skip-migrations if this release has no migration (a later deploy that \
                 includes {} runs it)",
                host.name, host.name
            )),
        });
    }
    Ok(())
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
            upload_parallel: if cfg.stage.store.is_some() { FETCH_PARALLEL } else { UPLOAD_PARALLEL },
            other_stage_ok: roll.force,
            no_canary: roll.no_canary,
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
    settled: &[String],
    owner: &Owner,
) -> Plan {
    let plan = plan::rollback(
        &cfg.stage,
        &RollbackInput { target, from, owner, batch, no_ban: roll.no_ban, auto_rollback: roll.auto_rollback, settled },
    );
    without_secrets(cfg, plan)
}
