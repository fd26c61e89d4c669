//! Webhooks (`[[notify]]`) on start, success, failure and rollback. A webhook that fails is a
//! warning: it never fails a deploy.

use super::summary::RunSummary;
use crate::config::{Notify, NotifyKind, NotifyOn};
use std::time::Duration;

/// Sends `run` to every webhook that wants `moment`; returns one warning per failure.
/// The body goes out with every secret read from the environment shown as `${VAR}`
/// (`secrets`), like everything else deploy prints: failure messages can quote them.
pub async fn send(
    client: &reqwest::Client,
    hooks: &[Notify],
    moment: NotifyOn,
    run: &RunSummary,
    secrets: &crate::config::Secrets,
) -> Vec<String> {
    let name = match moment {
        NotifyOn::Start => "start",
        NotifyOn::Success => "success",
        NotifyOn::Failure => "failure",
        NotifyOn::Rollback => "rollback",
    };
    let mut warnings = Vec::new();
    for hook in hooks.iter().filter(|hook| hook.on.contains(&moment)) {
        let body = match hook.kind {
            NotifyKind::Slack => serde_json::json!({ "text": run.headline() }),
            NotifyKind::Json => run.json(name),
        };
        let body = secrets.redact_json(body).to_string();
        let sent = client
            .post(&hook.url)
            .timeout(Duration::from_secs(5))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => {}
            Ok(response) => {
                warnings.push(format!("notification to {} answered {}", host_of(&hook.url), response.status().as_u16()))
            }
            // Without the URL: its path is often the secret (Slack, Teams…).
            Err(err) => warnings.push(format!(
                "notification to {} failed: {}",
                host_of(&hook.url),
                crate::transport::error_chain(&err.without_url())
            )),
        }
    }
    warnings
}

/// The host part of a URL, so a secret path or token is never printed.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // Never the `user:token@` part either.
    authority.rsplit('@').next().unwrap_or(authority)
}

#[cfg(test)]
mod tests {
    #[test]
    fn never_prints_the_path() {
        assert_eq!(super::host_of("https://hooks.slack.com/services/T000/B000/XXXX"), "hooks.slack.com");
        assert_eq!(super::host_of("http://127.0.0.1:9/x?token=1"), "127.0.0.1:9");
        assert_eq!(super::host_of("https://user:s3cret@hooks.example.com/x"), "hooks.example.com");
    }
}
