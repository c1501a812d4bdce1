//! Test doubles for SQL-Databricks Bridge.
//!
//! The bridge's tests, benchmarks and demo run against these instead of a real
//! SQL Server and Databricks workspace. They are written from the public
//! protocol documents ([MS-TDS]) so that what passes here passes there.

pub mod clock;
pub mod databricks;
pub mod engine;
pub mod entra;
pub mod form;
pub mod generate;
pub mod http;
pub mod kdc;
pub mod sqlserver;
pub mod tds;
pub mod tls;
pub mod types;
