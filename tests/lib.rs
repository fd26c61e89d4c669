//! Every integration test, in one binary: the crate is linked once, and the helpers are
//! plain modules. `support` runs the real binary in a scratch folder; `farm` starts the local
//! farm (real sshd hosts, Varnish, HAProxy) and drives the binary against it.

mod support;

mod farm;

mod garbage;

mod architecture;
mod artifact_trust;
mod cli;
mod config_errors;
mod config_merge;
mod config_reference;
mod doc_examples;
mod farm_canary;
mod farm_connect;
mod farm_deploy;
mod farm_failures;
mod farm_operator;
mod farm_secrets;
mod farm_stacks;
mod farm_stops;
mod farm_store;
mod farm_trust;
mod json_schema;
mod plan_json;
mod plan_snapshots;
mod remote_commands;
mod runner_order;
mod secrets;
