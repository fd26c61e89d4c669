//! `deploy`: rolling, zero-downtime releases to app servers behind a balancer.
//!
//! Config → Plan (pure data) → Runner. This crate holds the config, the plan and every
//! remote command; the binary in `main.rs` is the command line around it.

pub mod artifact;
pub mod balancer;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod http_cache;
pub mod init;
pub mod notify;
pub mod plan;
pub mod release_id;
pub mod remote;
pub mod report;
pub mod revision;
pub mod runner;
pub mod transport;
pub mod who;

pub use error::Error;
