//! SQL-Databricks Bridge, the service: the REST API (`api`, with its web
//! console), the SQLite job store (`jobs`) and the binary's command line, on
//! top of the core library (`sql-databricks-bridge-core`), whose modules are
//! re-exported here under their own names so a program or test names one
//! crate.

pub use sql_databricks_bridge_core::{
    auth, config, databricks, extract, metrics, operator, queries, retry, sqlserver, sync, tables,
};

pub mod api;
pub mod jobs;
