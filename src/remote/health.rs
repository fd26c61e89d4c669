//! Health checks fetched on the app host itself.

use super::Cmd;
use std::time::Duration;

/// Prints the HTTP status of `url` fetched with `headers` (000 when nothing answered); read it
/// with [`http_status`].
pub fn fetch_status(url: &str, headers: &[(String, String)], timeout: Duration) -> Cmd {
    curl(&curl_options(url, headers), timeout, &[])
}

/// A request with a method and headers (HTTP cache purges sent from a host); prints the status.
pub fn request(method: &str, url: &str, headers: &[(String, String)], timeout: Duration) -> Cmd {
    curl(&curl_options(url, headers), timeout, &["-X", method])
}

/// curl's config lines for a URL and headers.
pub(super) fn curl_options(url: &str, headers: &[(String, String)]) -> Vec<(&'static str, String)> {
    let mut options = vec![("url", url.to_string())];
    options.extend(headers.iter().map(|(name, value)| ("header", format!("{name}: {value}"))));
    options
}

/// curl with its URL and headers in a config read from stdin (`-K -`), written by the
/// shell's `printf` builtin: a token in a URL or a header never becomes an argument of a
/// process, where any user of the host could read it.
fn curl(options: &[(&str, String)], timeout: Duration, flags: &[&str]) -> Cmd {
    let lines = options.iter().map(|(key, value)| format!("{key} = \"{}\"", curl_escape(value)));
    Cmd::new("printf").arg("%s\\n").args(lines).pipe(
        Cmd::new("curl")
            .args(["-K", "-", "-sS", "-g", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(flags.iter().copied())
            .arg("--max-time")
            .arg(seconds(timeout)),
    )
}

/// A value inside double quotes in a curl config file.
pub(super) fn curl_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for character in value.chars() {
        match character {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            other => out.push(other),
        }
    }
    out
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
