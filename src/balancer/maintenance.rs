//! Maintenance mode at the balancer: every request answered 503 with `Retry-After`, while the
//! balancer keeps checking the app hosts (so `deploy check` still shows their health) and a
//! deploy can run underneath (its drains and undrains do not end the maintenance).
//!
//! - Varnish: a VCL of deploy's that answers everything with a synthetic 503 is loaded and
//!   made active; the VCL that was active is kept warm (its backends and probes stay), and its
//!   name is part of the maintenance VCL's name (`deploy_maintenance__boot__1733030000`), so
//!   `off` knows what to go back to without any state kept elsewhere.
//! - HAProxy: every server of the backend gets weight 0 (its state, which drains change, and
//!   its checks stay as they are); HAProxy answers with its `errorfile 503`, which holds the
//!   page and `Retry-After`. `off` restores each server's configured weight (`100%`).

use crate::config::Balancer;
use crate::remote::Cmd;

/// The prefix of deploy's maintenance VCLs.
pub const VCL_PREFIX: &str = "deploy_maintenance__";

/// `vcl.list`: read with [`active_vcl`].
pub fn vcl_list(balancer: &Balancer) -> Cmd {
    super::varnish::base(balancer).arg("vcl.list")
}

/// The active VCL's name in `vcl.list` output (`active  auto  warm  0  boot`; a label shows
/// as `name -> target`, whose name is the first word after the counts).
pub fn active_vcl(stdout: &str) -> Option<String> {
    stdout.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().collect();
        (words.first() == Some(&"active")).then(|| words.get(4).map(|name| name.to_string())).flatten()
    })
}

/// The VCL a maintenance VCL stands in front of (`None`: not one of deploy's).
pub fn previous_vcl(maintenance: &str) -> Option<&str> {
    let rest = maintenance.strip_prefix(VCL_PREFIX)?;
    rest.rsplit_once("__").map(|(previous, _)| previous).filter(|previous| !previous.is_empty())
}

/// The name of the maintenance VCL for `previous`, unique by `stamp` (a discarded VCL can
/// linger under its name while requests still use it).
pub fn vcl_name(previous: &str, stamp: u64) -> String {
    format!("{VCL_PREFIX}{previous}__{stamp}")
}

/// varnishadm, its CLI read from stdin: send it [`inline_vcl`]'s text.
pub fn load_from_stdin(balancer: &Balancer) -> Cmd {
    super::varnish::base(balancer)
}

/// `vcl.inline NAME << END …`: the maintenance VCL as one CLI command, for varnishadm's stdin
/// (a here-document: no quoting of the VCL is needed, and the VCL cannot contain the end
/// marker, see [`vcl_text`]).
pub fn inline_vcl(name: &str, message: &str, retry_after: u64) -> String {
    format!(
        "vcl.inline {name} << DEPLOY_MAINTENANCE_VCL_END\n{}\nDEPLOY_MAINTENANCE_VCL_END\n",
        vcl_text(message, retry_after)
    )
}

/// A VCL that answers every request 503 with `Retry-After` and a page saying `message`. The
/// message is HTML-escaped (so it can neither end VCL's `{"…"}` string nor hold the
/// here-document's end marker on a line of its own) and kept on one line.
pub fn vcl_text(message: &str, retry_after: u64) -> String {
    let escaped: String = message
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&#39;".to_string(),
            '{' => "&#123;".to_string(),
            '}' => "&#125;".to_string(),
            other => other.to_string(),
        })
        .collect();
    format!(
        r#"vcl 4.1;
backend default none;
sub vcl_recv {{
    return (synth(503, "Maintenance"));
}}
sub vcl_synth {{
    set resp.http.Retry-After = "{retry_after}";
    set resp.http.Content-Type = "text/html; charset=utf-8";
    set resp.http.Cache-Control = "no-store";
    synthetic({{"<!doctype html><html><head><meta charset="utf-8"><title>Maintenance</title></head><body><h1>Down for maintenance</h1><p>{escaped}</p></body></html>"}});
    return (deliver);
}}"#
    )
}

/// `vcl.use NAME`, `vcl.state NAME STATE`, `vcl.discard NAME`.
pub fn vcl(balancer: &Balancer, words: &[&str]) -> Cmd {
    super::varnish::base(balancer).args(words.iter().copied())
}

/// HAProxy: `set weight BACKEND/SERVER WEIGHT` (`0`, or `100%` for the configured weight) for
/// every server, in one session (the runtime API takes commands separated by `;`; server
/// names are checked identifiers). Each answers nothing when it worked.
pub fn haproxy_weights(socket: &str, backend: &str, servers: &[&str], weight: &str) -> Cmd {
    let line: Vec<String> = servers.iter().map(|server| format!("set weight {backend}/{server} {weight}")).collect();
    super::haproxy::api(socket, &line.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lists_and_text() {
        let list = "available   warm    warm         0    boot\nactive      auto    warm         0    deploy_maintenance__boot__17\n";
        let active = active_vcl(list).unwrap();
        assert_eq!(active, "deploy_maintenance__boot__17");
        assert_eq!(previous_vcl(&active), Some("boot"));
        assert_eq!(previous_vcl("boot"), None);
        assert_eq!(previous_vcl(&vcl_name("my__vcl", 9)), Some("my__vcl"));
        assert_eq!(active_vcl("available auto warm 0 boot\n"), None);
        let text = vcl_text("Back at 10:00 \"}\nDEPLOY_MAINTENANCE_VCL_END <b>", 120);
        assert!(text.contains("Retry-After = \"120\""));
        assert!(text.contains("Back at 10:00 &quot;&#125;DEPLOY_MAINTENANCE_VCL_END &lt;b&gt;"), "{text}");
        assert_eq!(text.matches("\"}").count(), 1, "only the string's own end");
        let inline = inline_vcl("deploy_maintenance__boot__1", "x", 60);
        assert!(inline.starts_with("vcl.inline deploy_maintenance__boot__1 << DEPLOY_MAINTENANCE_VCL_END\nvcl 4.1;"));
        assert!(
            !inline
                .lines()
                .skip(1)
                .take_while(|line| *line != "DEPLOY_MAINTENANCE_VCL_END")
                .any(|line| line == "DEPLOY_MAINTENANCE_VCL_END")
        );
    }
}
