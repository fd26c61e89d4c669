//! `deploy lock status|acquire|release STAGE`: a stage held by hand during an incident or a
//! freeze. The lock is the deploys' own (`.deploy/lock` on every host that gets releases),
//! marked `manual` with who took it and why: deploys and rollbacks meet it and exit 3 with
//! the message, `deploy unlock` leaves it (without --force), and only `deploy lock release`
//! lets it go.

use super::connect::connect;
use crate::error::Error;
use crate::remote::{Layout, Target, lock};
use crate::runner::{Holder, RunError};
use crate::settings::{LockTask, Settings};
use crate::transport::{Live, Transport};

pub fn run(settings: &Settings, stage: &str, task: &LockTask) -> Result<i32, Error> {
    let cfg = super::load(settings, stage)?;
    let (hosts, release_hosts) = super::host_names(&cfg);
    let layout = Layout::new(&cfg.stage.app.path);
    super::runtime()?.block_on(async {
        let live = Live::new(connect(&cfg.stage, &hosts).await?, cfg.secrets.clone(), cfg.exports.clone());
        let result = match task {
            LockTask::Status => status(&live, &layout, &release_hosts).await,
            LockTask::Acquire { message } => acquire(&live, &layout, stage, &release_hosts, message).await,
            LockTask::Release => release(&live, &layout, &release_hosts).await,
        };
        live.ssh.close().await;
        result
    })
}

/// Each host's lock holder (owner JSON), `None` when free.
async fn holders(live: &Live, layout: &Layout, hosts: &[String]) -> Vec<(String, Option<String>)> {
    super::each_host(hosts, |host| async move {
        let read = live.run(&Target::host(host), &lock::holder(layout), None).await;
        let owner = read.ok().filter(|out| out.ok()).map(|out| lock::holder_owner(&out.stdout).to_string());
        (host.clone(), owner)
    })
    .await
}

async fn status(live: &Live, layout: &Layout, hosts: &[String]) -> Result<i32, Error> {
    let width = hosts.iter().map(String::len).max().unwrap_or(0);
    let mut text = String::new();
    for (host, owner) in holders(live, layout, hosts).await {
        let state = match owner {
            None => "free".to_string(),
            Some(owner) => format!("locked: {}", lock::describe_owner(&owner)),
        };
        text.push_str(&format!("{host:<width$}  {state}\n"));
    }
    super::out(&text);
    Ok(0)
}

async fn acquire(live: &Live, layout: &Layout, stage: &str, hosts: &[String], message: &str) -> Result<i32, Error> {
    // A deploy's owner record (who, where, since when), marked as held by hand, with the why.
    let who = crate::who::owner(stage, std::time::SystemTime::now());
    let mut record = serde_json::to_value(&who).expect("owner serializes");
    record["pid"] = serde_json::json!(0);
    record["manual"] = serde_json::json!(true);
    record["message"] = serde_json::json!(message);
    let owner = record.to_string();
    let token = format!("manual-{}", who.token);
    let mut taken: Vec<&String> = Vec::new();
    let mut refused = Vec::new();
    let cmd = lock::acquire(layout, &owner, &token);
    let cmd = &cmd;
    let got = super::each_host(hosts, |host| async move {
        (host, live.run(&Target::host(host), cmd, None).await.is_ok_and(|out| out.ok()))
    })
    .await;
    for (host, ok) in got {
        if ok {
            taken.push(host);
        } else {
            refused.push(host.clone());
        }
    }
    if refused.is_empty() {
        super::out(&format!(
            "{stage} is locked on {}: {message}\nrelease with: deploy lock release {stage}\n",
            hosts.join(", ")
        ));
        return Ok(0);
    }
    // All or nothing: give back what was taken, say who holds the rest.
    let release = lock::release_own(layout, &token);
    let release = &release;
    super::each_host(taken, |host| async move { live.run(&Target::host(host), release, None).await }).await;
    let holders = holders(live, layout, &refused)
        .await
        .into_iter()
        .map(|(host, owner)| Holder { host, owner: owner.unwrap_or_default() })
        .collect();
    Err(Error::Run(RunError::Locked { holders }))
}

async fn release(live: &Live, layout: &Layout, hosts: &[String]) -> Result<i32, Error> {
    let found = holders(live, layout, hosts).await;
    // Only a lock held by hand: a deploy's lock is `deploy unlock`'s, after its checks.
    if let Some((host, Some(owner))) =
        found.iter().find(|(_, owner)| owner.as_deref().is_some_and(|owner| !lock::is_manual(owner)))
    {
        return Err(Error::Usage {
            message: format!("the lock on {host} is a deploy's, not one held by hand: {}", lock::describe_owner(owner)),
            hint: Some("`deploy unlock STAGE` checks the hosts and removes a deploy's lock".into()),
        });
    }
    let mut released = Vec::new();
    for (host, owner) in &found {
        if owner.is_some() {
            let out = live.run(&Target::host(host), &lock::release(layout), None).await;
            if out.is_ok_and(|out| out.ok()) {
                released.push(host.clone());
            }
        }
    }
    let text = if released.is_empty() {
        "no lock held\n".to_string()
    } else {
        format!("released on {}\n", released.join(", "))
    };
    super::out(&text);
    Ok(0)
}
