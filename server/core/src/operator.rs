//! `BridgeOperator`: the bridge as a library, without a server — what the
//! deck's "Databricks Jobs" mode calls, and what a Rust program embeds.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sql_databricks_bridge_core::operator::BridgeOperator;
//! let op = BridgeOperator::from_env()?;
//! let out = op.extract_to_parquet("SELECT * FROM KWP_Colombia.dbo.J_Ventas_CO", "./ventas".as_ref()).await?;
//! println!("{} rows in {}", out.rows_written, out.output.display());
//! let (_schema, batches) = op.extract_to_batches("SELECT TOP 10 * FROM dbo.Productos").await?;
//! // Databricks → SQL Server (DATABRICKS_HOST and a token or OAuth client in the environment):
//! let r = op.sync_to_sql_server("catalog.schema.calibrated_panel", "dbo.CalibrationResults",
//!                               "INSERT", &["id_hogar", "periodo"]).await?;
//! println!("{} rows synced", r.rows_affected);
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::Schema;

use crate::config::{DatabricksSettings, SettingsError, SqlServerOverrides, SqlServerSettings};
use crate::databricks::{DatabricksError, Workspace};
use crate::extract::spill::Landed;
use crate::extract::{self, ExtractError, ExtractOptions, Outcome};
use crate::retry::{retry, RetryPolicy};
use crate::sqlserver::pool::{self, Pool};
use crate::sqlserver::slots::Slots;
use crate::sqlserver::SqlServerError;
use crate::sync::staged::{StagedWrite, WriteRequest};
use crate::sync::StageRef;
use crate::tables::stream::ChangeStream;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Settings(#[from] SettingsError),
    #[error(transparent)]
    Connect(#[from] SqlServerError),
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Databricks(#[from] DatabricksError),
    #[error("sync needs Databricks: set DATABRICKS_HOST and credentials, or call with_databricks")]
    NoDatabricks,
    #[error("{0}")]
    Warehouse(String),
    #[error(transparent)]
    Sync(#[from] crate::sync::SyncError),
    /// An argument the caller passed is not valid.
    #[error("{0}")]
    Argument(String),
    /// Change Tracking cannot be read as asked (not enabled on the
    /// database or the table, the table has no primary key, ...).
    #[error("{0}")]
    Changes(String),
    /// The changes after `version` were cleaned up: reading on would miss
    /// some.
    #[error("Change Tracking no longer holds the changes of {tracked} after version {version} (its minimum valid version is {min}: they were older than the database's CHANGE_RETENTION and were cleaned up). The stream cannot continue without missing changes: start it again with a new checkpoint location (its first batch is the whole table), and run it more often than the retention period")]
    ChangesExpired {
        tracked: String,
        version: i64,
        min: String,
    },
    /// The rows could not become a DataFrame (feature `polars`). Not
    /// feature-gated itself, so a match on this enum compiles either way.
    #[error("{0}")]
    Frame(String),
    /// No connection slot of the group came free in time
    /// ([`crate::sqlserver::slots`]).
    #[error("no SQL Server connection slot of group '{group}' came free within {waited:?} (max_connections {cap}: that many connections of the group were working the whole time); raise max_connections or the wait, or run fewer tasks at once")]
    NoSlot {
        group: String,
        cap: u32,
        waited: Duration,
    },
    #[error("taking a SQL Server connection slot: {0}")]
    Slot(#[from] crate::sqlserver::slots::SlotError),
}

impl OperatorError {
    fn transient(&self) -> bool {
        match self {
            OperatorError::Connect(e) => e.is_transient(),
            OperatorError::Extract(e) => e.is_transient(),
            _ => false,
        }
    }
}

/// Change Tracking's versions for a tracked table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeVersions {
    /// The database's current version.
    pub current: i64,
    /// The table's minimum valid version.
    pub min: i64,
}

fn changes(e: crate::tables::LoadError) -> OperatorError {
    OperatorError::Changes(e.to_string())
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
    databricks: Option<Workspace>,
    warehouse: Option<String>,
    max_delete_rows: Option<u64>,
    table_lock: bool,
    /// A cap on this program's (and its group's) working connections.
    slots: Option<Slots>,
}

/// The most rows a library DELETE removes unless the caller says otherwise,
/// as the deck's `permissions.yaml` caps its users.
pub const DEFAULT_MAX_DELETE_ROWS: u64 = 10_000;

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
            databricks: None,
            warehouse: None,
            max_delete_rows: Some(DEFAULT_MAX_DELETE_ROWS),
            table_lock: false,
            slots: None,
        })
    }

    /// Settings from `SQLSERVER_*` and `SQLSERVER_CONNECTION_STRING`; and,
    /// when `DATABRICKS_HOST` is set, Databricks (token, OAuth client or
    /// ~/.databrickscfg profile) with `DATABRICKS_WAREHOUSE_ID` for sync.
    pub fn from_env() -> Result<Self, OperatorError> {
        Self::from_lookup(&|k: &str| std::env::var(k).ok())
    }

    /// As [`from_env`](Self::from_env), with the variables looked up in
    /// `env` (a binding lays its arguments over the environment this way).
    pub fn from_lookup(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, OperatorError> {
        let s = SqlServerSettings::resolve(&SqlServerOverrides::default(), env)?;
        let mut op = Self::new(s)?;
        if env("DATABRICKS_HOST").is_some() {
            let cfg = std::env::var_os("HOME")
                .map(|h| std::path::PathBuf::from(h).join(".databrickscfg"))
                .and_then(|p| std::fs::read_to_string(p).ok());
            let d = DatabricksSettings::resolve(None, None, env, cfg.as_deref())?;
            op = op.with_databricks(&d)?;
        }
        op.warehouse = env("DATABRICKS_WAREHOUSE_ID");
        Ok(op)
    }

    /// Databricks for `sync_to_sql_server`.
    pub fn with_databricks(mut self, settings: &DatabricksSettings) -> Result<Self, OperatorError> {
        self.databricks = Some(Workspace::new(
            settings,
            self.timeout.max(Duration::from_secs(60)),
        )?);
        Ok(self)
    }

    /// The SQL warehouse for sync statements (default: a running one).
    pub fn with_warehouse(mut self, id: &str) -> Self {
        self.warehouse = Some(id.to_string());
        self
    }

    /// Caps the rows a DELETE may remove (sync and distributed writes;
    /// [`DEFAULT_MAX_DELETE_ROWS`] unless set): above it nothing is deleted.
    pub fn with_max_delete_rows(mut self, n: u64) -> Self {
        self.max_delete_rows = Some(n);
        self
    }

    /// Sync bulk loads take a table lock (TABLOCK): faster, but other
    /// writers and most readers of the target wait for the sync's commit.
    pub fn with_table_lock(mut self, on: bool) -> Self {
        self.table_lock = on;
        self
    }

    /// Caps the connections that stream a read, a change batch or a
    /// stage at once, across every program of the group
    /// ([`crate::sqlserver::slots`]); each such read then closes its
    /// connection when done rather than keeping it idle in the pool.
    pub fn with_slots(mut self, slots: Slots) -> Self {
        self.slots = Some(slots);
        self
    }

    /// A connection to work on: with slots, one holding a slot (waiting
    /// without a connection while all are taken), and the slot.
    async fn working(&self) -> Result<(pool::PooledConnection, Option<u32>), OperatorError> {
        let Some(slots) = &self.slots else {
            return Ok((self.retrying(|c| async move { Ok(c) }).await?, None));
        };
        let started = std::time::Instant::now();
        for attempt in 0.. {
            let mut conn = self.retrying(|c| async move { Ok(c) }).await?;
            if let Some(i) = slots.try_take(&mut conn).await? {
                return Ok((conn, Some(i)));
            }
            // Not kept idle while waiting: closed.
            drop(deadpool::managed::Object::take(conn));
            if started.elapsed() >= slots.wait {
                break;
            }
            let pause = Slots::pause(attempt).min(slots.wait.saturating_sub(started.elapsed()));
            tracing::debug!(
                group = slots.group(),
                ?pause,
                "every connection slot is taken; waiting"
            );
            tokio::time::sleep(pause).await;
        }
        Err(OperatorError::NoSlot {
            group: slots.group().to_string(),
            cap: slots.cap(),
            waited: started.elapsed(),
        })
    }

    /// Ends work on `conn`: its slot given back and the connection closed
    /// (with slots), or back in the pool; closed either way when the work
    /// failed (perhaps mid-result; SQL Server frees the slot with the
    /// session).
    async fn done_working(&self, mut conn: pool::PooledConnection, slot: Option<u32>, ok: bool) {
        match (&self.slots, slot) {
            (Some(slots), Some(i)) => {
                if ok {
                    if let Err(e) = slots.give_back(&mut conn, i).await {
                        tracing::warn!(error = %e, "giving a connection slot back failed; closing its connection frees it");
                    }
                }
                drop(deadpool::managed::Object::take(conn));
            }
            _ if !ok => drop(deadpool::managed::Object::take(conn)),
            _ => drop(conn),
        }
    }

    /// Applies a Databricks table to a SQL Server table — INSERT, UPDATE,
    /// DELETE or UPSERT by `primary_keys` — in one transaction, with the
    /// same checks and ledger as the server's sync events.
    /// Each call is a new sync: called twice, it writes twice.
    pub async fn sync_to_sql_server(
        &self,
        source_table: &str,
        target_table: &str,
        operation: &str,
        primary_keys: &[&str],
    ) -> Result<crate::sync::SyncOutcome, OperatorError> {
        self.sync_once(None, source_table, target_table, operation, primary_keys)
            .await
    }

    /// As [`sync_to_sql_server`](Self::sync_to_sql_server), identified by
    /// `sync_id` (1–90 characters of `A-Z a-z 0-9 . _ : -`, for example a
    /// job run's id): the ledger in the target database records it, so the
    /// same `sync_id` again — a retried job — writes nothing and returns the
    /// first application's counts (`from_ledger`).
    pub async fn sync_to_sql_server_once(
        &self,
        sync_id: &str,
        source_table: &str,
        target_table: &str,
        operation: &str,
        primary_keys: &[&str],
    ) -> Result<crate::sync::SyncOutcome, OperatorError> {
        crate::sync::staged::check_id("sync_id", sync_id).map_err(OperatorError::Argument)?;
        self.sync_once(
            Some(sync_id),
            source_table,
            target_table,
            operation,
            primary_keys,
        )
        .await
    }

    async fn sync_once(
        &self,
        sync_id: Option<&str>,
        source_table: &str,
        target_table: &str,
        operation: &str,
        primary_keys: &[&str],
    ) -> Result<crate::sync::SyncOutcome, OperatorError> {
        let ws = self.databricks.clone().ok_or(OperatorError::NoDatabricks)?;
        let warehouse = crate::sync::resolve_warehouse(&ws, self.warehouse.as_deref())
            .await
            .map_err(OperatorError::Warehouse)?;
        let core = crate::sync::SyncCore {
            ws: ws.with_retry(self.retry.clone()),
            warehouse,
            pool: self.pool.clone(),
            retry: self.retry.clone(),
            deadline: Duration::from_secs(3600),
            upsert: crate::sync::UpsertMethod::default(),
            table_lock: self.table_lock,
        };
        let mut event = crate::sync::SyncEvent::direct(
            operation,
            source_table,
            target_table,
            primary_keys.iter().map(|k| k.to_string()).collect(),
        );
        if let Some(id) = sync_id {
            event.event_id = format!("direct-{id}");
        }
        let plan = core
            .plan(
                &event,
                crate::sync::Authority::Library {
                    max_delete_rows: self.max_delete_rows,
                },
            )
            .await?;
        Ok(core.execute(&plan).await?)
    }

    /// Plans a distributed write of a DataFrame's columns (name and Spark
    /// type) into `target_table`, identified by `write_id` (and this run of
    /// it by `run`, the same on the driver and every task): checked against
    /// the target before any row moves. Tasks then [`stage`](Self::stage)
    /// their rows and the driver [`commit`](Self::commit_stages)s once.
    #[allow(clippy::too_many_arguments)]
    pub async fn plan_write(
        &self,
        write_id: &str,
        run: &str,
        target_table: &str,
        operation: &str,
        primary_keys: &[String],
        columns: &[(String, String)],
        stage_schema: Option<&str>,
    ) -> Result<StagedWrite, OperatorError> {
        let request = WriteRequest {
            stage_schema,
            write_id,
            operation,
            target_table,
            primary_keys,
            columns,
            max_delete_rows: self.max_delete_rows,
            table_lock: self.table_lock,
            applied_by: "library",
            run,
        };
        Ok(StagedWrite::plan(&self.pool, &request).await?)
    }

    /// Loads one task's batches (until the sender closes) into the stage
    /// table of its partition and attempt.
    pub async fn stage(
        &self,
        write: &StagedWrite,
        partition: u64,
        attempt: u64,
        batches: &mut tokio::sync::mpsc::Receiver<RecordBatch>,
    ) -> Result<StageRef, OperatorError> {
        let (mut conn, slot) = self.working().await?;
        let staged = write.stage_on(&mut conn, partition, attempt, batches).await;
        self.done_working(conn, slot, staged.is_ok()).await;
        Ok(staged?)
    }

    /// Applies the stages the tasks reported (table name and rows), exactly
    /// once per write id, and drops all the write's stage tables.
    pub async fn commit_stages(
        &self,
        write: &StagedWrite,
        stages: &[(String, u64)],
    ) -> Result<crate::sync::SyncOutcome, OperatorError> {
        let refs = stages
            .iter()
            .map(|(name, rows)| write.stage_ref(name, *rows))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(write.commit(&self.pool, &self.retry, &refs).await?)
    }

    /// Opens the write's run (the driver, before its tasks stage).
    pub async fn open_write(&self, write: &StagedWrite) -> Result<(), OperatorError> {
        Ok(write.open(&self.pool).await?)
    }

    /// Aborts the write's run: closed, its stage tables dropped; how many.
    pub async fn abort_stages(&self, write: &StagedWrite) -> Result<u64, OperatorError> {
        Ok(write.abort(&self.pool).await?)
    }

    /// Runs `sql`, handing each Arrow batch to `sink` as it completes, so
    /// memory stays a batch deep however large the result; its schema.
    /// Only getting a connection is retried: once rows were handed over, a
    /// failure is for the caller to retry whole (as Spark retries a task).
    pub async fn extract_streaming(
        &self,
        sql: &str,
        sink: &mut extract::BatchSink<'_>,
    ) -> Result<Arc<Schema>, OperatorError> {
        let (mut conn, slot) = self.working().await?;
        let read = extract::stream_result(&mut conn, sql, self.options.batch_rows, sink).await;
        // Possibly mid-result on failure: closed, not returned to the pool.
        self.done_working(conn, slot, read.is_ok()).await;
        Ok(read?.schema().ok_or(ExtractError::NoResult)?)
    }

    /// A Change-Tracking-enabled table as a stream: its columns and
    /// primary key (as CHANGETABLE gives it), with Change Tracking's
    /// current version and the table's minimum valid one.
    pub async fn change_stream(
        &self,
        table: &str,
    ) -> Result<(ChangeStream, ChangeVersions), OperatorError> {
        let tracked = crate::tables::source::tracked_name(table).map_err(changes)?;
        let versions = self.change_versions(&tracked).await?;
        let (table_sql, changes_sql) =
            ChangeStream::describe_sql(table, versions.min).map_err(changes)?;
        let names = |s: Arc<Schema>| -> Vec<String> {
            s.fields().iter().map(|f| f.name().clone()).collect()
        };
        let columns = names(self.extract_to_batches(&table_sql).await?.0);
        let described = names(self.extract_to_batches(&changes_sql).await?.0);
        let stream = ChangeStream::new(table, columns, &described).map_err(changes)?;
        Ok((stream, versions))
    }

    /// Change Tracking's current version and `tracked`'s minimum valid one
    /// (asked in the table's database, on a connection closed after).
    pub async fn change_versions(&self, tracked: &str) -> Result<ChangeVersions, OperatorError> {
        self.retrying(|conn| async move {
            let mut conn = deadpool::managed::Object::take(conn);
            let v = crate::tables::versions(&mut conn, tracked, None)
                .await
                .map_err(changes)?;
            Ok(ChangeVersions {
                current: v.current,
                min: v.min,
            })
        })
        .await
    }

    /// One batch of the stream: the whole table (`start` None) or the net
    /// changes of the keys whose last change is in (start, end]. Refused
    /// when Change Tracking no longer holds the changes after `start` —
    /// checked in the read's own SNAPSHOT transaction where the database
    /// allows one, otherwise before and after the read — so no batch ever
    /// silently misses a change.
    pub async fn read_changes(
        &self,
        stream: &ChangeStream,
        start: Option<i64>,
        end: i64,
    ) -> Result<(Arc<Schema>, Vec<RecordBatch>), OperatorError> {
        let (schema, batches) = self.read_changes_as_given(stream, start, end).await?;
        let schema = crate::tables::stream::nullable(&schema);
        let batches = crate::tables::stream::with_nullable(batches, &schema)
            .map_err(|e| OperatorError::Changes(e.to_string()))?;
        Ok((schema, batches))
    }

    /// [`read_changes`](Self::read_changes) with SQL Server's nullability.
    async fn read_changes_as_given(
        &self,
        stream: &ChangeStream,
        start: Option<i64>,
        end: i64,
    ) -> Result<(Arc<Schema>, Vec<RecordBatch>), OperatorError> {
        let Some(start) = start else {
            return self.extract_to_batches(&stream.snapshot_sql(end)).await;
        };
        // Held whole, so a transient failure retries the whole read.
        self.retrying(|conn| async move {
            let mut conn = deadpool::managed::Object::take(conn);
            let mut out = Vec::new();
            let schema = self
                .changes_on(&mut conn, stream, start, end, &mut |b, _| {
                    out.push(b);
                    Ok(())
                })
                .await?;
            if out.is_empty() {
                out.push(RecordBatch::new_empty(schema.clone()));
            }
            Ok((schema, out))
        })
        .await
    }

    /// The net changes in (start, end], each batch handed to `sink` as it
    /// is read (memory a batch deep), declared nullable as every batch of
    /// the stream is; the schema. Refused as [`read_changes`](Self::read_changes)
    /// is — when the check that follows the read fails, rows were handed
    /// over already: the caller fails whole (a Spark task does), and
    /// nothing it handed on is kept. Only getting a connection is retried.
    pub async fn stream_changes(
        &self,
        stream: &ChangeStream,
        start: i64,
        end: i64,
        sink: &mut extract::BatchSink<'_>,
    ) -> Result<Arc<Schema>, OperatorError> {
        let (mut conn, slot) = self.working().await?;
        let mut relaxed = |b: RecordBatch, rows: u64| {
            let schema = crate::tables::stream::nullable(&b.schema());
            let b = RecordBatch::try_new(schema, b.columns().to_vec())
                .map_err(|e| ExtractError::Partition(e.to_string()))?;
            sink(b, rows)
        };
        let read = self
            .changes_on(&mut conn, stream, start, end, &mut relaxed)
            .await;
        // SNAPSHOT isolation and USE stay with the connection: never
        // returned to the pool (`ok` false closes it, and so frees its slot).
        self.done_working(conn, slot, false).await;
        Ok(crate::tables::stream::nullable(&*read?))
    }

    /// Reads the net changes in (start, end] on `conn` (taken out of the
    /// pool: SNAPSHOT isolation and USE stay with it), checking that Change
    /// Tracking still holds them: in the read's own SNAPSHOT transaction
    /// where the database allows one, else before and after the read.
    async fn changes_on(
        &self,
        conn: &mut crate::sqlserver::Connection,
        stream: &ChangeStream,
        start: i64,
        end: i64,
        sink: &mut extract::BatchSink<'_>,
    ) -> Result<Arc<Schema>, OperatorError> {
        let sql = stream.changes_sql(start, end);
        let tracked = stream.tracked.as_str();
        let expired = |min: Option<i64>| OperatorError::ChangesExpired {
            tracked: tracked.to_string(),
            version: start,
            min: min.map_or_else(|| "unknown".into(), |m| m.to_string()),
        };
        let batch_rows = self.options.batch_rows;
        let v = crate::tables::versions(conn, tracked, Some(&sql))
            .await
            .map_err(changes)?;
        if start < v.min {
            return Err(expired(Some(v.min)));
        }
        if v.snapshot {
            let read = crate::tables::source::in_snapshot(&sql, tracked, start);
            let reader = extract::stream_result(conn, &read, batch_rows, sink)
                .await
                .map_err(|e| {
                    match crate::tables::source::cleaned_up_in(&e.to_string(), tracked, start) {
                        Some(min) => expired(min),
                        None => e.into(),
                    }
                })?;
            return Ok(reader.schema().ok_or(ExtractError::NoResult)?);
        }
        let reader = extract::stream_result(conn, &sql, batch_rows, sink).await?;
        // Validate, read, validate again: cleanup may have run between the
        // check and the read.
        let after = crate::tables::versions(conn, tracked, None)
            .await
            .map_err(changes)?;
        if start < after.min {
            return Err(expired(Some(after.min)));
        }
        Ok(reader.schema().ok_or(ExtractError::NoResult)?)
    }

    pub fn with_options(mut self, options: ExtractOptions) -> Self {
        self.options = options;
        self
    }

    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Signs in to SQL Server with Microsoft Entra ID tokens from `source`
    /// (a new pool is made): the program's own credential — on Databricks
    /// a Unity Catalog service credential, the job's identity.
    pub fn with_token_source(
        mut self,
        source: Arc<dyn crate::entra::TokenSource>,
    ) -> Result<Self, OperatorError> {
        let sign_in = crate::entra::provide(source).map_err(|e| {
            OperatorError::Connect(SqlServerError::EntraToken {
                method: "Entra ID credential given by the caller".into(),
                message: e.0,
            })
        })?;
        self.settings.authentication = crate::config::Authentication::Entra(sign_in);
        self.settings.username.clear();
        self.settings.password.clear();
        self.pool = pool::pool(&self.settings, POOL_SIZE, self.timeout)?;
        Ok(self)
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
        let label = &label;
        self.retrying(|mut conn| async move {
            Ok(
                extract::extract_into(&mut conn, label, "", sql, dir, &self.options, &|_| {})
                    .await?,
            )
        })
        .await
    }

    /// Runs `sql` and returns its rows as Arrow record batches, typed as
    /// the Parquet files would be.
    pub async fn extract_to_batches(
        &self,
        sql: &str,
    ) -> Result<(Arc<Schema>, Vec<RecordBatch>), OperatorError> {
        self.retrying(|mut conn| async move {
            Ok(extract::extract_batches(&mut conn, sql, self.options.batch_rows).await?)
        })
        .await
    }

    /// Runs `sql`; returns the batches while their Arrow buffers stay within
    /// `memory_limit` bytes, else Parquet parts and a manifest written into
    /// `dir` (which must not exist; see [`extract::spill`]).
    pub async fn extract_spilling(
        &self,
        sql: &str,
        dir: &Path,
        memory_limit: usize,
    ) -> Result<Landed, OperatorError> {
        self.retrying(|mut conn| async move {
            Ok(
                extract::spill::extract_spilling(&mut conn, sql, dir, &self.options, memory_limit)
                    .await?,
            )
        })
        .await
    }

    /// The Arrow schema of `sql`'s result, typed as the Parquet mapping
    /// types it: what a Spark data source declares on the driver. A query
    /// that can be a derived table is read as `TOP (0)` of it (no rows),
    /// after its columns' names pass the extraction's checks (the derived
    /// table would fail on a missing or repeated name with SQL Server's
    /// words, not the CLI's). Any other batch the CLI would run
    /// (`DECLARE ...; SELECT ...`) is run up to its first row.
    pub async fn result_schema(&self, sql: &str) -> Result<Arc<Schema>, OperatorError> {
        let Ok(derived) = crate::queries::derived::Derived::of(sql, "the result's schema") else {
            let (mut conn, slot) = self.working().await?;
            let schema =
                extract::first_result_schema(&mut conn, sql, self.options.batch_rows).await;
            // Left mid-result: closed, not returned to the pool.
            self.done_working(conn, slot, false).await;
            return Ok(schema?);
        };
        let described = self
            .retrying(
                |mut conn| async move { Ok(extract::describe_or_reason(&mut conn, sql).await?) },
            )
            .await?;
        if let Ok(cols) = described {
            crate::types::to_parquet::arrow_schema(&cols)
                .map_err(|e| OperatorError::Extract(ExtractError::from(e)))?;
        }
        let empty = derived.select("SELECT TOP (0) * FROM [__bridge_q]");
        Ok(self.extract_to_batches(&empty).await?.0)
    }

    /// `sql` cut into `count` statements over ranges of `column`, as the
    /// CLI's partitioned extraction cuts it (one when the column is empty
    /// or all NULL): the plan a Spark data source hands its executors.
    pub async fn partition_queries(
        &self,
        sql: &str,
        column: &str,
        count: u32,
    ) -> Result<Vec<String>, OperatorError> {
        let part = crate::queries::partitioning::Partitioning::new(column, count, "partition_on")
            .map_err(OperatorError::Argument)?;
        Ok(extract::partition::plan(&self.pool, sql, &part).await?)
    }

    /// Runs `sql` and returns its rows as a polars DataFrame, typed as the
    /// Parquet files would be (decimals stay exact decimals), built from
    /// the Arrow batches without copying their fixed-width buffers.
    #[cfg(feature = "polars")]
    pub async fn extract_to_dataframe(
        &self,
        sql: &str,
    ) -> Result<polars::prelude::DataFrame, OperatorError> {
        let (schema, batches) = self.extract_to_batches(sql).await?;
        extract::frame::to_dataframe(&schema, &batches)
            .map_err(|e| OperatorError::Frame(e.to_string()))
    }

    /// Runs `f` on a pooled connection with the retry policy: transient
    /// failures (connection loss, deadlocks, throttling) run it again.
    async fn retrying<'a, T, F, Fut>(&'a self, f: F) -> Result<T, OperatorError>
    where
        F: Fn(pool::PooledConnection) -> Fut,
        Fut: std::future::Future<Output = Result<T, OperatorError>> + 'a,
    {
        retry(
            &self.retry,
            |_, _, _| {},
            || async {
                // Boxed: an extraction's future is large, and a caller's stack (a
                // test thread's 2 MiB in debug builds) need not hold it.
                let attempt = async { Box::pin(f(pool::get(&self.pool).await?)).await }.await;
                attempt.map_err(|e: OperatorError| {
                    let t = e.transient();
                    (e, t)
                })
            },
        )
        .await
    }
}
