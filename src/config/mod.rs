//! `Deploy.toml`: located parsing, recipes, stage overrides, `${VAR}`, validation.

pub mod decode;
pub mod error;
mod load;
mod parts;
pub mod recipes;
pub mod schema;
pub mod source;
mod traffic;

pub use error::{ConfigError, ConfigErrors};
pub use load::{
    COMMAND_NAMES, Config, check_rolling, find, parse, redact, redact_loaded, remember_secrets, schema_keys,
};
pub use schema::*;
