//! Jobs: what the API starts and reports on, kept in an embedded SQLite
//! file so a restart loses no history.

pub mod idempotency;
pub mod runner;
pub mod store;

pub use idempotency::{Reservation, StoredAnswer};
pub use runner::{ExtractJob, JobRunner, QueryState, QueryStatus, RunnerConfig};
pub use store::{Job, JobState, JobStore, Page, StoreError};
