//! The `.sql` files a user extracts: found by name, rendered with trusted
//! parameters.

pub mod catalog;
pub mod derived;
pub mod load;
pub mod loader;
pub mod partitioning;
pub mod render;

pub use loader::{load_queries, select, QueryError, QueryFile};
pub use render::{placeholders, render, RenderError};
