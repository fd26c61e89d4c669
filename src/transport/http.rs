//! HTTP from the deploying machine: health checks `from = "local"`, purge APIs.

use super::{Request, TransportError};

pub struct Http {
    /// The client, or why none could be made (a machine without CA certificates): every
    /// request then fails with that reason, nothing panics.
    client: Result<reqwest::Client, String>,
}

impl Http {
    pub fn new() -> Http {
        // ring, not aws-lc: a smaller, faster build; installed once per process.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .user_agent(concat!("deploy/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|err| format!("no HTTP client on this machine: {}", error_chain(&err)));
        Http { client }
    }

    /// The client, or why there is none.
    pub fn client(&self) -> Result<&reqwest::Client, &str> {
        self.client.as_ref().map_err(String::as_str)
    }

    pub async fn send(&self, req: Request<'_>) -> Result<u16, TransportError> {
        let client = self.client().map_err(|why| TransportError { message: why.to_string(), lost: false })?;
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| TransportError { message: format!("bad HTTP method {}", req.method), lost: false })?;
        let mut request = client.request(method, req.url).timeout(req.timeout);
        for (name, value) in req.headers {
            request = request.header(name, value);
        }
        match request.send().await {
            Ok(response) => Ok(response.status().as_u16()),
            Err(err) => Err(TransportError {
                message: format!("{} {}: {}", req.method, req.url, error_chain(&err)),
                lost: false,
            }),
        }
    }
}

impl Default for Http {
    fn default() -> Self {
        Http::new()
    }
}

/// An error and its causes, `: `-separated.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(next) = cause {
        text.push_str(": ");
        text.push_str(&next.to_string());
        cause = next.source();
    }
    text
}
