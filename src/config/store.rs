//! `[artifact]`: where hosts fetch the artifact from, instead of receiving it over ssh. An
//! S3-compatible bucket (`store = "s3://BUCKET/PREFIX"`, presigned GET URLs for the hosts) or
//! any HTTP server that accepts `PUT` (`store = "https://…/"`, optional headers).

use super::decode::Table;
use serde::Serialize;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Store {
    pub kind: StoreKind,
    /// How long a presigned URL is valid (S3).
    #[serde(with = "super::duration::as_text")]
    pub expires: Duration,
    /// How many times a host tries the fetch before it fails the prepare step.
    pub tries: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum StoreKind {
    S3 {
        bucket: String,
        /// Inside the bucket, without slashes at either end (may be empty).
        prefix: String,
        /// `None`: AWS's own endpoint for the region.
        endpoint: Option<String>,
        /// `None`: as the AWS CLI finds it (AWS_REGION, AWS_DEFAULT_REGION, the profile),
        /// else `us-east-1`.
        region: Option<String>,
        path_style: bool,
        /// The AWS CLI profile for credentials (`None`: AWS_PROFILE, else `default`).
        profile: Option<String>,
    },
    Http {
        /// Ends with `/`.
        base: String,
        /// Sent with the PUT and with each host's GET.
        headers: Vec<(String, String)>,
    },
}

impl Store {
    /// The store in words, for plans and errors (never holds a credential: URLs with a user
    /// or password are refused).
    pub fn shown(&self) -> String {
        match &self.kind {
            StoreKind::S3 { bucket, prefix, .. } if prefix.is_empty() => format!("s3://{bucket}/"),
            StoreKind::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}/"),
            StoreKind::Http { base, .. } => base.clone(),
        }
    }
}

const HINT: &str = "`store = \"s3://BUCKET/PREFIX\"` (any S3-compatible store) or `store = \"https://HOST/PATH/\"` (a server that accepts PUT)";

pub fn store(table: &Table) -> Option<Store> {
    let path = |key: &str| table.key_path(key);
    let error = |loc: &super::source::Loc, key: &str, message: String, hint: &str| {
        table.decoder.error(loc, &path(key), message, Some(hint.to_string()));
    };
    // Each of `keys` that is written is an error: `why` says why it has no place here.
    let refuse = |keys: &[&'static str], why: &str| {
        for key in keys {
            if let Some(value) = table.raw(key) {
                error(&value.loc, key, format!("`{key}` {why}"), HINT);
            }
        }
    };
    let s3_only = ["endpoint", "region", "path_style", "profile"];
    let Some(store) = table.string("store") else {
        refuse(&[&s3_only[..], &["headers", "expires", "tries"]].concat(), "is set but `store` is not");
        return None;
    };
    let expires = table.duration("expires", false).unwrap_or(Duration::from_secs(15 * 60));
    if expires > Duration::from_secs(7 * 24 * 3600) {
        let loc = table.raw("expires").map(|value| value.loc.clone()).unwrap_or_else(|| table.loc().clone());
        error(&loc, "expires", "a presigned URL lasts at most 7 days".into(), "e.g. `expires = \"15m\"` (the default)");
    }
    let tries = table.int_in("tries", 1, 20).map_or(3, |(tries, _)| tries as u32);
    let kind = if let Some(rest) = store.value.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if !valid_bucket(bucket) {
            let message = format!("`{bucket}` is not an S3 bucket name");
            error(
                &store.loc,
                "store",
                message,
                "3 to 63 lower-case letters, digits, `.` and `-`: `s3://my-releases/shop`",
            );
            return None;
        }
        let prefix = prefix.trim_matches('/');
        if !valid_prefix(prefix) {
            let message = format!("the prefix `{prefix}` is not a plain path");
            error(
                &store.loc,
                "store",
                message,
                "letters, digits and `/._-`, no `..` or `//`: `s3://bucket/releases/shop`",
            );
            return None;
        }
        if let Some(value) = table.raw("headers") {
            error(&value.loc, "headers", "`headers` is for an HTTP store".into(), "an S3 store signs its requests");
        }
        let endpoint = table.string("endpoint").and_then(|endpoint| {
            let ok = plain_url(&endpoint.value).is_some_and(|rest| !rest.contains('/') || rest.ends_with('/'));
            if ok {
                return Some(endpoint.value.trim_end_matches('/').to_string());
            }
            let message = format!("`{}` is not an endpoint URL", endpoint.value);
            error(&endpoint.loc, "endpoint", message, "scheme and host, e.g. `https://minio.internal:9000`");
            None
        });
        let region = table.string("region").map(|region| region.value);
        let path_style = table.bool("path_style").unwrap_or(endpoint.is_some());
        let profile = table.string("profile").map(|profile| profile.value);
        StoreKind::S3 { bucket: bucket.to_string(), prefix: prefix.to_string(), endpoint, region, path_style, profile }
    } else if plain_url(&store.value).is_some() {
        refuse(&s3_only, "is for an S3 store");
        let base = if store.value.ends_with('/') { store.value.clone() } else { format!("{}/", store.value) };
        StoreKind::Http { base, headers: super::parts::headers(table) }
    } else {
        let message = if store.value.contains('@') && store.value.contains("://") {
            "a store URL may not hold a user or password".to_string()
        } else {
            format!("`{}` is not a store", store.value)
        };
        let hint = "`s3://BUCKET/PREFIX` or `https://HOST/PATH/`; credentials go in `headers` from `${VAR}`, or in the AWS CLI's environment or profile";
        error(&store.loc, "store", message, hint);
        return None;
    };
    Some(Store { kind, expires, tries })
}

/// The part after `http://` or `https://` when the URL has a host, no user or password, no
/// query or fragment, and nothing that would need quoting.
fn plain_url(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or("");
    let clean = rest.chars().all(|c| c.is_ascii_alphanumeric() || "-._~/:%[]".contains(c));
    (!host.is_empty() && clean && !rest.split('/').any(|part| part == "..")).then_some(rest)
}

/// S3's rules for bucket names (the DNS-compatible ones).
fn valid_bucket(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !name.contains("..")
}

fn valid_prefix(prefix: &str) -> bool {
    prefix.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && (prefix.is_empty() || prefix.split('/').all(|part| !part.is_empty() && part != "." && part != ".."))
}

#[cfg(test)]
mod tests {
    #[test]
    fn names() {
        assert!(super::valid_bucket("my-releases.eu"));
        for bad in ["ab", "My", "-a-", "a..b", "a_b", ""] {
            assert!(!super::valid_bucket(bad), "{bad}");
        }
        assert!(super::valid_prefix(""));
        assert!(super::valid_prefix("releases/shop"));
        for bad in ["a//b", "a/../b", "a b", "./a"] {
            assert!(!super::valid_prefix(bad), "{bad}");
        }
        assert_eq!(super::plain_url("http://127.0.0.1:8080/art/"), Some("127.0.0.1:8080/art/"));
        for bad in ["ftp://x/", "https://u:p@x/", "https:///x", "https://x/a?b", "https://x/../"] {
            assert!(super::plain_url(bad).is_none(), "{bad}");
        }
    }
}
