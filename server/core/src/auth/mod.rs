//! Who may do what: bearer tokens per project, per-table permissions on
//! SQL Server, rights on the Databricks side, and the tables a query
//! touches. Used by the API and the sync poller.

pub mod audit;
pub(crate) mod lakehouse;
pub mod permissions;
pub(crate) mod tables;

pub use crate::sqlserver::names::TableName;
pub use audit::{AuditEvent, AuditLog, EventType};
pub use lakehouse::{Grounds, LakehouseDenied, LakehouseRights};
pub use permissions::{Access, PermissionError, Permissions, User};
pub use tables::{referenced_tables, TablesError};
