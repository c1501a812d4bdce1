//! The bridge's integration tests, one binary (linking is most of a test
//! build on two cores): each module tests one face end to end against the
//! real sandboxes, the real server binary or the real library. Run one
//! module with `cargo test -p sql-databricks-bridge --test it -- <module>::`.

mod common;

mod api;
mod api_hardening;
mod authorization;
mod cli_queries;
mod client;
mod corpus;
mod entra;
mod extract_local;
mod extract_volume;
mod kerberos;
mod operator;
mod partitions;
mod regions;
mod simulation;
mod statements;
mod sync;
mod tables;
mod test_connection;
mod transfers;
