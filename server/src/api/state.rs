//! What every handler shares.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use super::paths::Roots;
use crate::auth::{AuditLog, LakehouseRights, Permissions};
use crate::config::SqlServerSettings;
use crate::databricks::Workspace;
use crate::jobs::JobRunner;
use crate::metrics::{Counter, Histogram};
use crate::sqlserver::home::HomeDatabase;
use crate::sync::{EventWriters, EventsTable, SyncStats};
use crate::tables::TableLoader;

pub struct ServerState {
    pub permissions: Permissions,
    pub audit: Arc<AuditLog>,
    pub runner: JobRunner,
    pub roots: Roots,
    pub sqlserver: SqlServerSettings,
    /// The database names without one are in.
    pub home: HomeDatabase,
    /// Rights on the Databricks side; `None` without a workspace.
    pub lakehouse: Option<Arc<LakehouseRights>>,
    /// Loads queries with a load spec into tables; `None` without a
    /// workspace and a SQL warehouse.
    pub tables: Option<TableLoader>,
    /// The workspace, or why it is not configured.
    pub databricks: Result<Workspace, String>,
    /// The sync events table, the poller's counters and who wrote each
    /// event (the feed's reader), or why sync is off.
    pub sync: Result<(EventsTable, Arc<SyncStats>, Arc<EventWriters>), String>,
    /// How long each readiness check may take.
    pub ready_timeout: Duration,
    /// How long DELETE /jobs/{id} waits for the job to stop.
    pub cancel_wait: Duration,
    /// Seconds an `Idempotency-Key` and its answer are kept.
    pub idempotency_ttl: u64,
    pub http_requests: Counter,
    pub http_durations: Histogram,
    /// The OpenAPI document served at /openapi.json.
    pub spec: OnceLock<String>,
    pub started: Instant,
    /// GET /jobs/{id} answers of finished jobs (they never change again).
    pub finished_jobs: FinishedJobs,
    /// The last readiness checks, shared by the probes of a short window.
    pub readiness: super::health::ReadinessCache,
}

/// Finished jobs' status bodies by id, with their owner: a client polling a
/// job that has ended is answered from memory, without the job store. At
/// most [`FinishedJobs::CAP`] are kept (emptied when full; the store still
/// has them all).
#[derive(Default)]
pub struct FinishedJobs(
    std::sync::RwLock<std::collections::HashMap<String, (String, bytes::Bytes)>>,
);

impl FinishedJobs {
    pub const CAP: usize = 4096;

    /// The body kept for `id`, with its owner.
    pub fn get(&self, id: &str) -> Option<(String, bytes::Bytes)> {
        self.0.read().ok()?.get(id).cloned()
    }

    pub fn put(&self, id: &str, owner: &str, body: bytes::Bytes) {
        if let Ok(mut m) = self.0.write() {
            if m.len() >= Self::CAP {
                m.clear();
            }
            m.insert(id.to_string(), (owner.to_string(), body));
        }
    }
}

pub type AppState = Arc<ServerState>;
