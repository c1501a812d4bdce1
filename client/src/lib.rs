//! The SQL-Databricks Bridge REST API from Rust.
//!
//! [`generated`] is what progenitor makes of `openapi.json` at build time
//! (never edited by hand); [`BridgeClient`] is the facade that reads like
//! the deck's SDK:
//!
//! ```no_run
//! # async fn demo() -> Result<(), sql_databricks_bridge_client::BridgeError> {
//! use std::time::Duration;
//! use sql_databricks_bridge_client::{types, BridgeClient};
//! let client = BridgeClient::new("http://localhost:8000", "your-api-token")?;
//! let job = client.extract(&types::ExtractRequest {
//!     queries_path: "./queries".into(), config_path: "./config".into(),
//!     country: "Colombia".into(), destination: "/Volumes/catalog/schema/volume".into(),
//!     queries: vec![], overwrite: None, partition_on: None, partitions: None,
//! }).await?;
//! let status = client.wait_for_job(&job.job_id, Duration::from_secs(1), Duration::from_secs(600)).await?;
//! println!("{:?}", status.state);
//! # Ok(()) }
//! ```

#[allow(clippy::all, clippy::pedantic, missing_docs, unused)]
pub mod generated {
    include!(concat!(env!("OUT_DIR"), "/codegen.rs"));
}

mod client;
mod error;

pub use client::{AuditFilter, BridgeClient, JobFilter, Retry, NOT_CALLS, OPERATIONS};
pub use error::{ApiError, BridgeError};
pub use generated::types;
