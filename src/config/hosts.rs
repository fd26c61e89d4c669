//! Decoding hosts (`{ name, address, roles }`) and webhooks (`[[notify]]`).

use super::decode::{Str, Table};
use super::error::did_you_mean;
use super::parts::required_url;
use super::schema::*;

/// Names a host, stage or backend may have: they end up in paths, balancer commands and logs.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
}

pub const NAME_RULE: &str = "use letters, digits, `.`, `_` and `-`, starting with a letter or digit";

/// One `{ name, address, roles }` host, with where its name was written.
pub fn host(table: &Table) -> Option<(Host, Str)> {
    let name = table.string("name");
    let address = table.string("address");
    let roles = table.strings("roles");
    let port = table.int_in("port", 1, 65535).map(|(port, _)| port as u16);
    let user = table.string("user").map(|text| text.value);
    let name = match name {
        Some(name) if valid_name(&name.value) => Some(name),
        Some(name) => {
            table.decoder.error(
                &name.loc,
                &table.key_path("name"),
                format!("`{}` is not a valid host name", name.value),
                Some(NAME_RULE.into()),
            );
            None
        }
        None => {
            table.missing("name", Some("every host needs `name`, `address` and `roles`, e.g. `{ name = \"web1\", address = \"10.0.0.11\", roles = [\"app\"] }`".into()));
            None
        }
    };
    let address = match address {
        // `${VAR}` still in the text: a stage not being used, whose variables are not read;
        // it is checked when it is used.
        Some(address) if !table.decoder.reads_environment() && address.value.contains("${") => Some(address.value),
        Some(address) => match address_problem(&address.value) {
            None => Some(address.value),
            Some(hint) => {
                table.decoder.error(
                    &address.loc,
                    &table.key_path("address"),
                    format!("`{}` is not a host address", address.value),
                    Some(hint),
                );
                None
            }
        },
        None => {
            table.missing("address", Some("the IP address or DNS name ssh connects to".into()));
            None
        }
    };
    let roles = match roles {
        Some(list) if list.is_empty() => {
            table.decoder.error(
                table.raw("roles").map(|value| &value.loc).unwrap_or(table.loc()),
                &table.key_path("roles"),
                "a host needs at least one role",
                Some("roles are app, worker, migrate and balancer".into()),
            );
            None
        }
        Some(list) => Some(roles_of(table, &list)),
        None => {
            table.missing("roles", Some("e.g. `roles = [\"app\"]`".into()));
            None
        }
    };
    let name = name?;
    Some((Host { name: name.value.clone(), address: address?, roles: roles?, port, user }, name))
}

/// The known roles in `list`, each once; an unknown one is an error.
fn roles_of(table: &Table, list: &[Str]) -> Vec<Role> {
    let mut roles = Vec::new();
    for (index, written) in list.iter().enumerate() {
        match Role::ALL.iter().find(|(name, _)| *name == written.value) {
            Some((_, role)) if !roles.contains(role) => roles.push(*role),
            Some(_) => {}
            None => {
                let names = Role::ALL.map(|(name, _)| name);
                let hint = match did_you_mean(&written.value, names) {
                    Some(name) => format!("did you mean `{name}`?"),
                    None => format!("roles are {}", names.join(", ")),
                };
                table.decoder.error(
                    &written.loc,
                    &format!("{}[{index}]", table.key_path("roles")),
                    format!("unknown role `{}`", written.value),
                    Some(hint),
                );
            }
        }
    }
    roles
}

/// One `[[notify]]` webhook.
pub fn notify(table: &Table) -> Option<Notify> {
    let kind = match table.string("kind") {
        Some(kind) => match kind.value.as_str() {
            "slack" => Some(NotifyKind::Slack),
            "json" => Some(NotifyKind::Json),
            other => {
                let hint = did_you_mean(other, ["slack", "json"])
                    .map_or("kinds are slack and json".to_string(), |name| format!("did you mean `{name}`?"));
                table.decoder.error(&kind.loc, &table.key_path("kind"), format!("unknown kind `{other}`"), Some(hint));
                None
            }
        },
        None => {
            table.missing("kind", Some("`slack` (Slack-compatible `{\"text\": …}`) or `json`".into()));
            None
        }
    };
    let url = required_url(table, "e.g. `url = \"${SLACK_WEBHOOK_URL}\"`");
    let on = match table.strings("on") {
        Some(list) => {
            let mut moments = Vec::new();
            for (index, written) in list.iter().enumerate() {
                match NotifyOn::ALL.iter().find(|(name, _)| *name == written.value) {
                    Some((_, moment)) => moments.push(*moment),
                    None => {
                        let names = NotifyOn::ALL.map(|(name, _)| name);
                        let hint = did_you_mean(&written.value, names)
                            .map_or(format!("moments are {}", names.join(", ")), |name| {
                                format!("did you mean `{name}`?")
                            });
                        table.decoder.error(
                            &written.loc,
                            &format!("{}[{index}]", table.key_path("on")),
                            format!("unknown moment `{}`", written.value),
                            Some(hint),
                        );
                    }
                }
            }
            moments
        }
        None => NotifyOn::ALL.iter().map(|(_, moment)| *moment).collect(),
    };
    Some(Notify { kind: kind?, url: url?, on })
}

/// Why `text` is not an IPv4 or IPv6 address or a DNS name (ssh gets it as its destination,
/// the health URL as its host): the hint for the error, naming where a user, a port or a
/// scheme goes instead.
pub fn address_problem(text: &str) -> Option<String> {
    let plain = "an IPv4 or IPv6 address or a DNS name, e.g. `10.0.0.11` or `web1.example.com`";
    if text.parse::<std::net::IpAddr>().is_ok() {
        return None;
    }
    if text.starts_with('-') {
        return Some(format!("{plain}; a leading `-` would be read as an option"));
    }
    if text.contains("://") {
        return Some(format!("{plain}, without a scheme: the health URL is `[health] url`"));
    }
    if text.contains('@') {
        return Some(format!("{plain}; the ssh user goes in the host's `user = \"…\"` or in `[ssh] user`"));
    }
    if text.contains('/') {
        return Some(format!("{plain}, not a network"));
    }
    if let Some((host, port)) = text.rsplit_once(':')
        && port.parse::<u16>().is_ok()
        && !host.contains(':')
    {
        return Some(format!("{plain}; the ssh port goes in the host's `port = {port}` or in `[ssh] port`"));
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    };
    let name = text.strip_suffix('.').unwrap_or(text);
    let dns = !name.is_empty() && name.len() <= 253 && name.split('.').all(label_ok);
    (!dns).then(|| plain.to_string())
}
