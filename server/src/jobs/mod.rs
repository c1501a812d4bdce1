//! Jobs: what the API starts and reports on, kept in an embedded SQLite
//! file so a restart loses no history.

pub mod store;

pub use store::{Job, JobState, JobStore, StoreError};
