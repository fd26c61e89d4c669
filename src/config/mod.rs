//! `Deploy.toml`: located parsing, recipes, stage overrides, `${VAR}`, validation.

pub mod ban;
pub mod canary;
pub mod decode;
mod duration;
pub mod error;
mod hosts;
mod load;
mod origins;
mod parts;
pub mod recipes;
pub mod schema;
mod selection;
mod setup;
pub mod source;
mod stage;
mod store;
mod traffic;

pub use crate::secrets::{Secrets, redact_loaded, remember_secrets};
pub use duration::{format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors};
pub use load::{COMMAND_NAMES, Config, find, parse, schema_keys};
pub use origins::{Origin, origins};
pub use schema::*;
pub use selection::{Selection, SelectionError};
pub use setup::Setup;
pub use stage::check_rolling;
pub use store::{Store, StoreKind};
