//! The sandbox's T-SQL engine: T-SQL parsed with sqlparser's MsSql dialect,
//! translated to SQLite and run on one shared database file, with the
//! declared SQL Server types kept in a catalog.

pub mod catalog;
pub mod convert;
pub mod error;
pub mod functions;
pub mod session;
pub mod translate;
pub mod typename;

pub use error::{Abort, SqlError};
pub use session::{Engine, EnvChange, Output, OutputError, Param, Session};

#[cfg(test)]
mod tests;
