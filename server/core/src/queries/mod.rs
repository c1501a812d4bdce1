//! The `.sql` files a user extracts: found by name, rendered with trusted
//! parameters.

pub mod catalog;
pub(crate) mod derived;
pub mod load;
pub(crate) mod loader;
pub(crate) mod partitioning;
pub(crate) mod render;

pub use loader::{load_queries, select, QueryError, QueryFile};
pub use render::{placeholders, render, RenderError};
