//! The sandboxes' integration tests, one binary: each module drives a
//! sandbox over its real protocol (TDS through tiberius, HTTP), as clients
//! do. Run one module with `cargo test -p bridge-sandbox --test it -- <module>::`.

mod dbx;

mod databricks_bandwidth;
mod databricks_faults;
mod databricks_history_cdf;
mod databricks_identity_grants;
mod databricks_large;
mod databricks_loading;
mod databricks_uploads;
mod entra;
mod robustness;
mod sqlserver_app_locks;
mod sqlserver_bulk_options;
mod sqlserver_change_tracking;
mod sqlserver_collations;
mod sqlserver_rowversion;
mod tiberius_client;
