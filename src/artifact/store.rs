//! The artifact store (`[artifact] store`): the deploying machine puts each tarball there
//! once, named by its sha256; hosts fetch it themselves, in parallel. An S3-compatible bucket
//! is signed with SigV4 by `rusty-s3` (presigned URLs: hosts get a GET URL that expires soon,
//! never a credential); an HTTP store gets plain `PUT`s and `GET`s with the configured headers.

mod aws;

pub use aws::{Aws, Keys};

use super::Packed;
use crate::config::{Store, StoreKind};
use crate::transport::error_chain;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// An opened store: where objects go and how requests are signed.
pub struct ArtifactStore {
    config: Store,
    /// The app's name: objects are `APP/SHA256.tar.gz` under the prefix.
    app: String,
    location: Location,
    /// Made when the store is opened: a machine without CA certificates fails there.
    client: reqwest::Client,
    /// One upload per object, shared by every host that needs it.
    uploads: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Stored>>>>,
}

enum Location {
    S3 { bucket: rusty_s3::Bucket, credentials: rusty_s3::Credentials, prefix: String },
    Http { base: String, headers: Vec<(String, String)> },
}

/// An object in the store, ready for hosts to fetch.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The object in words (`s3://bucket/prefix/app/SHA.tar.gz`): no signature.
    pub shown: String,
    key: String,
    pub bytes: u64,
    /// Sent by this run (false: it was there already).
    pub uploaded: bool,
    /// How long the check and the upload took.
    pub took: Duration,
}

/// How long one PUT or HEAD may take: an artifact of a few GB on a slow uplink.
const REQUEST_LIMIT: Duration = Duration::from_secs(30 * 60);
const PUT_TRIES: u32 = 3;

impl ArtifactStore {
    /// Opens the store: reads the S3 credentials and region as the AWS CLI does (`env` reads
    /// the environment). Fails, saying where it looked, without credentials.
    pub fn open(config: &Store, app: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<ArtifactStore, String> {
        let location = match &config.kind {
            StoreKind::S3 { bucket, prefix, endpoint, region, path_style, profile } => {
                let aws = Aws { env, home: crate::local_user::home() };
                let keys = aws.keys(profile.as_deref())?;
                let region = aws.region(region.as_deref(), profile.as_deref());
                let endpoint = endpoint.clone().unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
                let url = reqwest::Url::parse(&endpoint).map_err(|err| format!("endpoint {endpoint}: {err}"))?;
                let style = if *path_style { rusty_s3::UrlStyle::Path } else { rusty_s3::UrlStyle::VirtualHost };
                let bucket = rusty_s3::Bucket::new(url, style, bucket.clone(), region)
                    .map_err(|err| format!("bucket {bucket} at {endpoint}: {err}"))?;
                let credentials = match keys.token {
                    Some(token) => rusty_s3::Credentials::new_with_token(keys.key, keys.secret, token),
                    None => rusty_s3::Credentials::new(keys.key, keys.secret),
                };
                Location::S3 { bucket, credentials, prefix: prefix.clone() }
            }
            StoreKind::Http { base, headers } => Location::Http { base: base.clone(), headers: headers.clone() },
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("deploy/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|err| format!("no HTTP client on this machine: {}", error_chain(&err)))?;
        Ok(ArtifactStore {
            config: config.clone(),
            app: app.to_string(),
            location,
            client,
            uploads: Mutex::new(HashMap::new()),
        })
    }

    /// The object name of a tarball: `APP/SHA256.tar.gz` under the prefix. Named by content,
    /// so a tarball already in the store is not sent again.
    fn key(&self, sha256: &str) -> String {
        format!("{}{}/{sha256}.tar.gz", self.prefix(), self.app)
    }

    /// The prefix the store's objects are named under, with its slash (`""`: none).
    fn prefix(&self) -> String {
        match &self.location {
            Location::S3 { prefix, .. } if !prefix.is_empty() => format!("{prefix}/"),
            _ => String::new(),
        }
    }

    /// An object in words (`s3://bucket/prefix/KEY`), for events and errors: no signature.
    fn shown(&self, key: &str) -> String {
        format!("{}{}", self.config.shown(), key.strip_prefix(&self.prefix()).unwrap_or(key))
    }

    /// Puts `packed` in the store unless it is there already (same name and size); once per
    /// object for every host of the run. True with the object for the one call that did it.
    pub async fn put(&self, packed: &Packed) -> Result<(Stored, bool), String> {
        let key = self.key(&packed.sha256);
        let cell = self.uploads.lock().unwrap().entry(key.clone()).or_default().clone();
        let made = std::sync::atomic::AtomicBool::new(false);
        let stored = cell
            .get_or_try_init(|| async {
                made.store(true, std::sync::atomic::Ordering::Relaxed);
                let started = std::time::Instant::now();
                let shown = self.shown(&key);
                let stored = |uploaded| Stored {
                    shown: shown.clone(),
                    key: key.clone(),
                    bytes: packed.bytes,
                    uploaded,
                    took: started.elapsed(),
                };
                if self.size(&key).await? == Some(packed.bytes) {
                    return Ok(stored(false));
                }
                let mut attempt = 1;
                loop {
                    match self.put_once(&key, packed).await {
                        Ok(()) => return Ok(stored(true)),
                        Err((_, true)) if attempt < PUT_TRIES => {
                            tokio::time::sleep(Duration::from_secs(u64::from(attempt))).await;
                            attempt += 1;
                        }
                        Err((message, _)) => return Err(format!("PUT {shown}: {message}")),
                    }
                }
            })
            .await?
            .clone();
        Ok((stored, made.into_inner()))
    }

    /// The URL a request for `key` goes to, and the headers it carries.
    fn request(&self, method: rusty_s3::Method, key: &str) -> (String, Vec<(String, String)>) {
        use rusty_s3::S3Action;
        match &self.location {
            Location::S3 { bucket, credentials, .. } => {
                let url = match method {
                    rusty_s3::Method::Put => bucket.put_object(Some(credentials), key).sign(self.config.expires),
                    rusty_s3::Method::Head => bucket.head_object(Some(credentials), key).sign(self.config.expires),
                    _ => bucket.get_object(Some(credentials), key).sign(self.config.expires),
                };
                (url.to_string(), Vec::new())
            }
            Location::Http { base, headers } => (format!("{base}{key}"), headers.clone()),
        }
    }

    /// The size of the object, `None` when there is none.
    async fn size(&self, key: &str) -> Result<Option<u64>, String> {
        let (url, headers) = self.request(rusty_s3::Method::Head, key);
        let mut request = self.client.head(&url).timeout(Duration::from_secs(60));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let shown = self.shown(key);
        let response = request.send().await.map_err(|err| format!("HEAD {shown}: {}", Self::redact(err)))?;
        match response.status().as_u16() {
            200 => Ok(response
                .headers()
                .get(reqwest::header::CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok()?.parse().ok())),
            404 => Ok(None),
            status => Err(format!("HEAD {shown}: HTTP {status}{}", access_hint(status))),
        }
    }

    /// One PUT, streamed from the tarball on disk. Err: the reason and whether to try again.
    async fn put_once(&self, key: &str, packed: &Packed) -> Result<(), (String, bool)> {
        let (url, headers) = self.request(rusty_s3::Method::Put, key);
        let file = tokio::fs::File::open(&packed.file)
            .await
            .map_err(|err| (format!("open {}: {err}", packed.file.display()), false))?;
        let mut request = self
            .client
            .put(&url)
            .timeout(REQUEST_LIMIT)
            .header(reqwest::header::CONTENT_LENGTH, packed.bytes)
            .header(reqwest::header::CONTENT_TYPE, "application/gzip")
            .body(reqwest::Body::from(file));
        for (name, value) in &headers {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|err| (Self::redact(err), true))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let code = body.split("<Code>").nth(1).and_then(|rest| rest.split('<').next()).unwrap_or("");
        let code = if code.is_empty() { String::new() } else { format!(" ({code})") };
        Err((format!("HTTP {status}{code}{}", access_hint(status)), status >= 500 || status == 429))
    }

    /// A transport error without the presigned URL it may quote.
    fn redact(err: reqwest::Error) -> String {
        error_chain(&err.without_url())
    }

    /// What a host reads on stdin before it fetches `stored`: the sha256 it must get, then
    /// curl's config (the URL, presigned for S3, and the HTTP store's headers).
    pub fn fetch_input(&self, stored: &Stored, sha256: &str) -> String {
        let (url, headers) = self.request(rusty_s3::Method::Get, &stored.key);
        crate::remote::release::fetch_input(sha256, &url, &headers)
    }
}

fn access_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => ": the store refused the credentials (check the keys, the region and the clock)",
        404 => ": no such bucket or path",
        _ => "",
    }
}
