//! SQL-Databricks Bridge: moves data both ways between Microsoft SQL Server
//! and Databricks.
//!
//! Layers, lower first (a layer never imports one above it):
//! `config` (settings, parameters) → `queries` (load and render `.sql` files)
//! → `sqlserver` and `databricks` (the two systems) → `tables` (loading landed
//! runs into Delta tables) → `extract` (the pipeline) → `operator` (the
//! library face, `BridgeOperator`). `auth` (tokens,
//! permissions, the tables a query reads) and `jobs` (the SQLite job store)
//! serve the API and the sync.

pub mod api;
pub mod auth;
pub mod config;
pub mod crypto;
pub mod databricks;
pub mod extract;
pub mod jobs;
pub mod metrics;
pub mod operator;
pub mod queries;
pub mod retry;
pub mod sqlserver;
pub mod sync;
pub mod tables;
