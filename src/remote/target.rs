//! Where a command runs: on an ssh host, or on the deploying machine.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "host")]
pub enum Target {
    Local,
    Host(String),
}

impl Target {
    pub fn host(name: &str) -> Target {
        Target::Host(name.to_string())
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Local => f.write_str("local"),
            Target::Host(host) => f.write_str(host),
        }
    }
}
