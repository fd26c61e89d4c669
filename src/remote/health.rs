//! Health checks fetched on the app host itself.

use super::Cmd;
use std::time::Duration;

/// Prints the HTTP status of `url` (000 when nothing answered); read it with [`http_status`].
pub fn fetch_status(url: &str, timeout: Duration) -> Cmd {
    Cmd::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time"])
        .arg(seconds(timeout))
        .args(["--url", url])
}

/// A request with a method and headers (HTTP cache purges sent from a host); prints the status.
pub fn request(method: &str, url: &str, headers: &[(String, String)], timeout: Duration) -> Cmd {
    let mut cmd = Cmd::new("curl")
        .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", method, "--max-time"])
        .arg(seconds(timeout));
    for (name, value) in headers {
        cmd = cmd.args(["-H".to_string(), format!("{name}: {value}")]);
    }
    cmd.args(["--url", url])
}

/// The status printed by [`fetch_status`] or [`request`] (`000` = no answer: `None`).
pub fn http_status(stdout: &str) -> Option<u16> {
    stdout.trim().parse().ok().filter(|status| *status > 0)
}

fn seconds(duration: Duration) -> String {
    let ms = duration.as_millis();
    if ms % 1000 == 0 { (ms / 1000).to_string() } else { format!("{:.3}", duration.as_secs_f64()) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn statuses() {
        assert_eq!(super::http_status("200"), Some(200));
        assert_eq!(super::http_status("000"), None);
        assert_eq!(super::http_status("curl: (7) failed"), None);
    }
}
