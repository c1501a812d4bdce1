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
use crate::sqlserver::{self, SqlServerError};

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
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
        }
    }
}

/// Extraction from SQL Server for one program: settings, options and the
/// retry policy, reused across calls.
#[derive(Clone, Debug)]
pub struct BridgeOperator {
    settings: SqlServerSettings,
    options: ExtractOptions,
    retry: RetryPolicy,
    timeout: Duration,
}

impl BridgeOperator {
    pub fn new(settings: SqlServerSettings) -> Self {
        BridgeOperator {
            settings,
            options: ExtractOptions::default(),
            retry: RetryPolicy::default(),
            timeout: Duration::from_secs(30),
        }
    }

    /// Settings from `SQLSERVER_*` and `SQLSERVER_CONNECTION_STRING`.
    pub fn from_env() -> Result<Self, SettingsError> {
        let s =
            SqlServerSettings::resolve(&SqlServerOverrides::default(), &|k| std::env::var(k).ok())?;
        Ok(Self::new(s))
    }

    pub fn with_options(mut self, options: ExtractOptions) -> Self {
        self.options = options;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
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
                    let mut conn = sqlserver::connect(&self.settings, self.timeout).await?;
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
                    let mut conn = sqlserver::connect(&self.settings, self.timeout).await?;
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
