//! Every remote command `deploy` runs, built from quoted words in one place per concern, and
//! the parser of each command's output beside the command that produces it.

pub mod cmd;
pub mod health;
pub mod hooks;
pub mod journal;
pub mod layout;
pub mod lock;
pub mod probe;
pub mod release;
pub mod setup;
pub mod shared;
pub mod target;

pub use cmd::{Cmd, quote};
pub use layout::Layout;
pub use target::Target;
