//! A deadpool pool of tiberius connections: connections are reused between
//! queries and checked with `SELECT 1` before reuse, so one that a failure
//! left in a bad state is dropped rather than handed out.

use std::time::Duration;

use deadpool::managed::{Metrics, Object, PoolError, RecycleError, RecycleResult};

use super::{connect, Connection, SqlServerError};
use crate::config::SqlServerSettings;

pub struct Manager {
    settings: SqlServerSettings,
    timeout: Duration,
}

impl deadpool::managed::Manager for Manager {
    type Type = Connection;
    type Error = SqlServerError;

    /// The login runs as a task of its own: its TLS and TDS handshakes poll
    /// deeply, and nested under a caller's futures (a test thread's 2 MiB
    /// stack in debug builds) they overflowed. Dropping the caller drops
    /// the join handle and aborts the task.
    async fn create(&self) -> Result<Connection, SqlServerError> {
        let settings = self.settings.clone();
        let timeout = self.timeout;
        let task = tokio::spawn(async move { connect(&settings, timeout).await });
        let abort = AbortOnDrop(task.abort_handle());
        let out = task
            .await
            .map_err(|e| SqlServerError::Other(format!("connection task failed: {e}")))?;
        drop(abort);
        out
    }

    async fn recycle(&self, conn: &mut Connection, _: &Metrics) -> RecycleResult<SqlServerError> {
        let alive = async {
            conn.simple_query("SELECT 1")
                .await?
                .into_row()
                .await
                .map(|_| ())
        };
        match tokio::time::timeout(self.timeout, alive).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(RecycleError::message(format!(
                "connection check failed: {e}"
            ))),
            Err(_) => Err(RecycleError::message("connection check timed out")),
        }
    }
}

pub type Pool = deadpool::managed::Pool<Manager>;
pub type PooledConnection = Object<Manager>;

/// A pool of at most `size` connections.
pub fn pool(
    settings: &SqlServerSettings,
    size: usize,
    timeout: Duration,
) -> Result<Pool, SqlServerError> {
    Pool::builder(Manager {
        settings: settings.clone(),
        timeout,
    })
    .max_size(size.max(1))
    .build()
    .map_err(|e| SqlServerError::Other(format!("cannot build the connection pool: {e}")))
}

/// A connection from the pool, with the pool's errors as the driver's.
pub async fn get(pool: &Pool) -> Result<PooledConnection, SqlServerError> {
    pool.get().await.map_err(|e| match e {
        PoolError::Backend(e) => e,
        other => SqlServerError::Other(format!("connection pool: {other}")),
    })
}

/// Aborts a spawned task when the future awaiting it is dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
