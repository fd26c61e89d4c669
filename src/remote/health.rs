//! Health checks fetched on the app host itself.

use super::Cmd;
use std::time::Duration;

/// Prints the HTTP status of `url` (000 when nothing answered); the runner compares it.
pub fn fetch_status(url: &str, timeout: Duration) -> Cmd {
    Cmd::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time"])
        .arg(seconds(timeout))
        .args(["--url", url])
}

/// A request with a method and headers (HTTP cache purges sent from a host); prints the status.
pub fn request(method: &str, url: &str, headers: &[(String, String)], timeout: Duration) -> Cmd {
    let mut c = Cmd::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--max-time"])
        .arg(seconds(timeout));
    for (k, v) in headers {
        c = c.args(["-H".to_string(), format!("{k}: {v}")]);
    }
    c.args(["--url", url])
}

fn seconds(d: Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 { (ms / 1000).to_string() } else { format!("{:.3}", d.as_secs_f64()) }
}
