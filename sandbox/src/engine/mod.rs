//! The sandbox's T-SQL engine: T-SQL parsed with sqlparser's MsSql dialect,
//! translated to SQLite and run on one shared database file, with the
//! declared SQL Server types kept in a catalog.

pub mod applock;
pub mod catalog;
pub mod change_tracking;
pub mod collation;
pub mod compile;
pub mod constraints;
pub mod context;
pub mod convert;
pub mod drops;
pub mod error;
pub mod functions;
pub mod isolation;
pub mod numeric;
pub mod parse;
pub mod session;
pub mod styles;
pub mod textfns;
pub mod translate;
pub mod triggers;
pub mod typename;

pub use error::{Abort, SqlError};
pub use session::{Engine, EnvChange, Output, OutputError, Param, Session};

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_change_tracking;
#[cfg(test)]
mod tests_collation;
#[cfg(test)]
mod tests_constraints;
#[cfg(test)]
mod tests_flow;
#[cfg(test)]
mod tests_isolation;
