//! `BridgeOperator`: the bridge as a library, without a server — what the
//! deck's "Databricks Jobs" mode calls, and what a Rust program embeds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sql_databricks_bridge::operator::BridgeOperator;
//! let op = BridgeOperator::from_env()?;
//! let out = op.extract_to_parquet("SELECT * FROM KWP_Colombia.dbo.J_Ventas_CO", "./ventas".as_ref()).await?;
//! println!("{} rows in {}", out.rows_written, out.output.display());
//! let (_schema, batches) = op.extract_to_batches("SELECT TOP 10 * FROM dbo.Productos").await?;
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use crate::config::{SettingsError, SqlServerOverrides, SqlServerSettings};
use crate::extract::{self, ExtractError, ExtractOptions, Outcome};
use crate::retry::{retry, RetryPolicy};
use crate::sqlserver::pool::{self, Pool};
use crate::sqlserver::SqlServerError;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Connect(#[from] SqlServerError),
    #[error(transparent)]
    Extract(#[from] ExtractError),
}

impl OperatorError {
    fn transient(&self) -> bool {
        match self {
            OperatorError::Connect(e) => e.is_transient(),
            OperatorError::Extract(e) => e.is_transient(),
            OperatorError::Settings(_) => false,
        }
    }
}

/// Extraction from SQL Server for one program: a connection pool, options
/// and the retry policy, reused across calls.
#[derive(Clone)]
pub struct BridgeOperator {
    settings: SqlServerSettings,
    pool: Pool,
    options: ExtractOptions,
    retry: RetryPolicy,
    timeout: Duration,
}

/// Connections the operator keeps for concurrent calls.
const POOL_SIZE: usize = 4;

impl BridgeOperator {
    /// Connections open on first use, not here.
    pub fn new(settings: SqlServerSettings) -> Result<Self, SqlServerError> {
        let timeout = Duration::from_secs(30);
        Ok(BridgeOperator {
            pool: pool::pool(&settings, POOL_SIZE, timeout)?,
            settings,
            options: ExtractOptions::default(),
            retry: RetryPolicy::default(),
            timeout,
        })
    }

    /// Settings from `SQLSERVER_*` and `SQLSERVER_CONNECTION_STRING`.
    pub fn from_env() -> Result<Self, OperatorError> {
        let s =
            SqlServerSettings::resolve(&SqlServerOverrides::default(), &|k| std::env::var(k).ok())?;
        Ok(Self::new(s)?)
    }

    pub fn with_options(mut self, options: ExtractOptions) -> Self {
        self.options = options;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the connect and check timeout (a new pool is made).
    pub fn with_timeout(mut self, timeout: Duration) -> Result<Self, SqlServerError> {
        self.timeout = timeout;
        self.pool = pool::pool(&self.settings, POOL_SIZE, timeout)?;
        Ok(self)
    }

    /// Runs `sql` and writes Parquet part files and `_manifest.json` into
    /// `dir`, published only when complete (see [`extract::extract_into`]).
    pub async fn extract_to_parquet(
        &self,
        sql: &str,
        dir: &Path,
    ) -> Result<Outcome, OperatorError> {
        let label = dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("query")
            .to_string();
        retry(
            &self.retry,
            |_, _, _| {},
            || async {
                let attempt = async {
                    let mut conn = pool::get(&self.pool).await?;
                    Ok(extract::extract_into(
                        &mut conn,
                        &label,
                        "",
                        sql,
                        dir,
                        &self.options,
                        &|_| {},
                    )
                    .await?)
                }
                .await;
                attempt.map_err(|e: OperatorError| {
                    let t = e.transient();
                    (e, t)
                })
            },
        )
        .await
    }

    /// Runs `sql` and returns its rows as Arrow record batches, typed as
    /// the Parquet files would be.
    pub async fn extract_to_batches(
        &self,
        sql: &str,
    ) -> Result<(Arc<Schema>, Vec<RecordBatch>), OperatorError> {
        retry(
            &self.retry,
            |_, _, _| {},
            || async {
                let attempt = async {
                    let mut conn = pool::get(&self.pool).await?;
                    Ok(extract::extract_batches(&mut conn, sql, self.options.batch_rows).await?)
                }
                .await;
                attempt.map_err(|e: OperatorError| {
                    let t = e.transient();
                    (e, t)
                })
            },
        )
        .await
    }
}
