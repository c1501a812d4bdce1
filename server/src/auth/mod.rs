//! Who may do what: bearer tokens per project, per-table permissions, and
//! the tables a query touches. Used by the API (issue 5) and the sync (issue 7).

pub mod audit;
pub mod permissions;
pub mod tables;

pub use audit::{AuditEvent, AuditLog, EventType};
pub use permissions::{Access, PermissionError, Permissions, User};
pub use tables::{referenced_tables, TableName, TablesError};
