//! `deploy`: rolling, zero-downtime releases to app servers behind a balancer.
//!
//! Config → Plan (pure data) → Runner. ARCHITECTURE.md is the map: which folder holds what,
//! the direction of dependencies, and the invariants.

pub mod artifact;
pub mod balancer;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod http_cache;
pub mod local_user;
pub mod plan;
pub mod release_id;
pub mod remote;
pub mod report;
pub mod runner;
pub mod secrets;
pub mod settings;
pub mod transport;
pub mod who;

pub use error::Error;
