//! The core of SQL-Databricks Bridge: everything that moves data between
//! Microsoft SQL Server and Databricks, with no server around it. The
//! service (`sql-databricks-bridge`: the REST API, the job store, the CLI)
//! and the Python wheel (`BridgeOperator`) are built on it.
//!
//! Layers, lower first (a layer never imports one above it):
//! `config` (settings, parameters) → `entra` (Microsoft Entra ID tokens for
//! the bridge's own identity) → `sqlserver` and `databricks` (the two
//! systems, each with its names, types and errors) → `types` (the three
//! type mappings between them, one table each) → `queries` (load and
//! render `.sql` files) → `auth` (permissions, the tables a query reads, the
//! audit log) → `tables` (loading landed runs
//! into Delta tables) → `extract` (the pipeline) → `sync` (Databricks to SQL
//! Server, exactly once) → `operator` (the library face, `BridgeOperator`).
//! `retry`, `crypto` and `metrics` serve all of them.
//!
//! The public surface is what the service, the wheel, the benchmarks and
//! the tests use; the pipeline's inner parts (batch building, Parquet
//! writing, leases, partition ranges, the sync's ledger and bulk load, the
//! type tables, ...) are `pub(crate)`: 24 public modules of 58.
//!
//! Features: `openapi` derives the API's schemas of the core's types,
//! `cli` the command line's value enums, `polars` adds
//! `BridgeOperator::extract_to_dataframe`.

pub mod auth;
pub mod config;
pub(crate) mod crypto;
pub mod databricks;
pub mod entra;
pub mod extract;
pub mod metrics;
pub mod operator;
pub mod queries;
pub mod retry;
pub mod sqlserver;
pub mod sync;
pub mod tables;
pub(crate) mod types;
