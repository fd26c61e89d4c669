//! Webhooks (`[[notify]]`) on start, success, failure and rollback. A webhook that fails is a
//! warning: it never fails a deploy.

use crate::config::{Notify, NotifyKind, NotifyOn};
use crate::report::summary::Run;
use std::time::Duration;

/// Sends `run` to every webhook that wants `moment`; returns one warning per failure.
/// The body goes out with every secret read from the environment shown as `${VAR}`
/// (`redactions`), like everything else deploy prints: failure messages can quote them.
pub async fn send(
    client: &reqwest::Client,
    hooks: &[Notify],
    moment: NotifyOn,
    run: &Run,
    redactions: &[(String, String)],
) -> Vec<String> {
    let name = match moment {
        NotifyOn::Start => "start",
        NotifyOn::Success => "success",
        NotifyOn::Failure => "failure",
        NotifyOn::Rollback => "rollback",
    };
    let mut warnings = Vec::new();
    for h in hooks.iter().filter(|h| h.on.contains(&moment)) {
        let body = match h.kind {
            NotifyKind::Slack => serde_json::json!({ "text": run.headline() }),
            NotifyKind::Json => run.json(name),
        };
        let body = crate::config::redact(redactions, &body.to_string());
        let r = client
            .post(&h.url)
            .timeout(Duration::from_secs(5))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        match r {
            Ok(resp) if resp.status().is_success() => {}
            Ok(resp) => {
                warnings.push(format!("notification to {} answered {}", host_of(&h.url), resp.status().as_u16()))
            }
            // Without the URL: its path is often the secret (Slack, Teams…).
            Err(e) => warnings.push(format!(
                "notification to {} failed: {}",
                host_of(&h.url),
                crate::transport::error_chain(&e.without_url())
            )),
        }
    }
    warnings
}

/// The host part of a URL, so a secret path or token is never printed.
fn host_of(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
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
