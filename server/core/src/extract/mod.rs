//! Extraction: one rendered query → Parquet part files and a manifest in a
//! destination directory, published only when complete.
//!
//! Layout: `<destination>/<country>/<query>/part-NNNNN.parquet` and
//! `_manifest.json`. Parts are written to a staging directory next to the
//! final one and renamed into place after the manifest, so a reader never
//! takes a half-written output for a finished one.

pub(crate) mod batch;
pub(crate) mod cardinality;
#[cfg(feature = "polars")]
pub mod frame;
pub(crate) mod lease;
pub(crate) mod partition;
pub(crate) mod result;
pub mod run;
pub mod spill;
pub(crate) mod volume;
pub(crate) mod writer;

use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};

use crate::sqlserver::Connection;
use crate::types::to_parquet::{self as schema, SourceColumn};
use result::{ResultReader, TypeSource};
pub use volume::{
    check_volume, publish_to_volume, record_table, PublishError, Published, VolumeRoot,
};
pub use writer::{Codec, Part};

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{message}")]
    Sql { message: String, transient: bool },
    #[error(transparent)]
    Schema(#[from] schema::SchemaError),
    #[error(transparent)]
    Batch(#[from] batch::BatchError),
    #[error(transparent)]
    Result(#[from] result::ResultError),
    #[error(transparent)]
    Write(#[from] writer::WriteError),
    #[error("output {0} already exists; pass --overwrite to replace it")]
    Exists(PathBuf),
    #[error("{path}: {message}")]
    Io { path: PathBuf, message: String },
    #[error("the query returned no result set")]
    NoResult,
    /// A partitioned read that cannot run as asked.
    #[error("{0}")]
    Partition(String),
    /// Whoever the batches were for stopped taking them.
    #[error("the reader of the result stopped; the query was cancelled")]
    Stopped,
}

fn sql_err(e: tiberius::error::Error) -> ExtractError {
    ExtractError::Sql {
        transient: crate::sqlserver::is_transient(&e),
        message: e.to_string(),
    }
}

impl ExtractError {
    /// Whether running the query again may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ExtractError::Sql {
                transient: true,
                ..
            }
        )
    }
}

fn io_err(path: &Path, e: std::io::Error) -> ExtractError {
    ExtractError::Io {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Rows per Arrow batch: 16,384 rows of a 10-column table are ~2 MiB, so a
/// batch being filled and one being encoded stay in cache and cost little
/// memory (65,536-row batches used ~12 MiB more per reader for no speed).
pub const DEFAULT_BATCH_ROWS: usize = 16_384;
/// Rows per Parquet row group, independent of the batch size.
pub const DEFAULT_ROW_GROUP_ROWS: usize = 65_536;

/// Tuning that does not change what is written.
#[derive(Clone, Debug)]
pub struct ExtractOptions {
    /// Rows per Arrow batch handed from the reader to the writer: bounds
    /// the reader's memory.
    pub batch_rows: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Rows per part file.
    pub rows_per_file: u64,
    pub codec: Codec,
    pub overwrite: bool,
}

impl ExtractOptions {
    pub fn layout(&self) -> writer::Layout {
        writer::Layout {
            codec: self.codec,
            row_group_rows: self.row_group_rows,
            rows_per_file: self.rows_per_file,
        }
    }
}

impl Default for ExtractOptions {
    fn default() -> Self {
        ExtractOptions {
            batch_rows: DEFAULT_BATCH_ROWS,
            row_group_rows: DEFAULT_ROW_GROUP_ROWS,
            rows_per_file: 5_000_000,
            codec: Codec::Zstd,
            overwrite: false,
        }
    }
}

/// What one extraction produced.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub query: String,
    pub output: PathBuf,
    pub rows_read: u64,
    pub rows_written: u64,
    pub bytes: u64,
    pub parts: Vec<Part>,
    pub seconds: f64,
    /// Rows read, written and declared that do not agree (reported, not fatal).
    pub discrepancy: Option<String>,
    /// Where the column types came from (also in the manifest).
    #[serde(skip)]
    pub types: TypeSource,
    /// Where the parts are, when not in `output` itself (a Volume run
    /// directory).
    pub location: Option<PathBuf>,
    /// The landed columns and their Parquet (Arrow) types.
    #[serde(skip)]
    pub columns: Vec<(String, arrow_schema::DataType)>,
    /// What loading it into a table did (queries with a load spec).
    pub table: Option<crate::tables::TableOutcome>,
}

/// Asks the server for the declared types of the query's columns.
pub async fn describe(conn: &mut Connection, sql: &str) -> Result<Vec<SourceColumn>, ExtractError> {
    let rows = conn
        .query("EXEC sp_describe_first_result_set @tsql = @P1", &[&sql])
        .await
        .map_err(sql_err)?
        .into_first_result()
        .await
        .map_err(sql_err)?;
    let mut cols = Vec::with_capacity(rows.len());
    for r in rows {
        let hidden = r
            .try_get::<bool, _>("is_hidden")
            .ok()
            .flatten()
            .unwrap_or(false);
        if hidden {
            continue;
        }
        cols.push(SourceColumn {
            name: r
                .try_get::<&str, _>("name")
                .ok()
                .flatten()
                .unwrap_or("")
                .to_string(),
            type_name: r
                .try_get::<&str, _>("system_type_name")
                .ok()
                .flatten()
                .unwrap_or("")
                .to_string(),
            precision: r.try_get::<u8, _>("precision").ok().flatten().unwrap_or(0),
            scale: r.try_get::<u8, _>("scale").ok().flatten().unwrap_or(0),
            nullable: r
                .try_get::<bool, _>("is_nullable")
                .ok()
                .flatten()
                .unwrap_or(true),
        });
    }
    Ok(cols)
}

/// The query's columns as SQL Server describes them, or why it cannot
/// (temp tables the batch fills, dynamic SQL, a server without
/// sp_describe_first_result_set): then the result's own metadata types it.
/// Transient failures are errors, to be retried.
pub async fn describe_or_reason(
    conn: &mut Connection,
    sql: &str,
) -> Result<Result<Vec<SourceColumn>, String>, ExtractError> {
    match describe(conn, sql).await {
        Ok(cols) if cols.is_empty() => Ok(Err(
            "sp_describe_first_result_set found no result set in the batch".to_string(),
        )),
        Ok(cols) => Ok(Ok(cols)),
        Err(e) if e.is_transient() => Err(e),
        Err(e) => Ok(Err(format!("sp_describe_first_result_set: {e}"))),
    }
}

/// Where one query's output goes in a local destination.
pub fn output_dir(destination: &Path, country: &str, query: &str) -> PathBuf {
    destination.join(country).join(query)
}

/// Runs one query and publishes its output directory.
pub async fn extract_query(
    conn: &mut Connection,
    query: &str,
    sql: &str,
    destination: &Path,
    country: &str,
    opts: &ExtractOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Outcome, ExtractError> {
    let final_dir = output_dir(destination, country, query);
    extract_into(conn, query, country, sql, &final_dir, opts, progress).await
}

/// Runs one query into exactly `final_dir` (parts and manifest), published
/// only when complete. `query` and `country` label the manifest.
pub async fn extract_into(
    conn: &mut Connection,
    query: &str,
    country: &str,
    sql: &str,
    final_dir: &Path,
    opts: &ExtractOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Outcome, ExtractError> {
    land(query, country, sql, final_dir, opts, |staging| async move {
        run_into(conn, sql, &staging, opts, progress).await
    })
    .await
}

/// As [`extract_into`], the query split on a column into partitions read
/// concurrently on pooled connections (see [`partition`]); each partition
/// is retried alone by `policy`, and `note` hears about it.
#[allow(clippy::too_many_arguments)]
pub async fn extract_partitioned_into(
    pool: &crate::sqlserver::pool::Pool,
    query: &str,
    country: &str,
    sql: &str,
    final_dir: &Path,
    opts: &ExtractOptions,
    part: &partition::Partitioning,
    policy: &crate::retry::RetryPolicy,
    progress: &(dyn Fn(u64) + Send + Sync),
    note: &(dyn Fn(&str) + Send + Sync),
) -> Result<Outcome, ExtractError> {
    let sqls = partition::plan(pool, sql, part).await?;
    note(&format!(
        "reading {} partition(s) on {} concurrently",
        sqls.len(),
        part.column
    ));
    land(query, country, sql, final_dir, opts, |staging| async move {
        partition::run_partitions(pool, &sqls, &staging, opts, policy, progress, note).await
    })
    .await
}

/// Stages a run in a hidden directory beside `final_dir`, writes its
/// manifest and publishes it; nothing is left behind on failure or when
/// the future is dropped (a cancelled job).
async fn land<F, Fut>(
    query: &str,
    country: &str,
    sql: &str,
    final_dir: &Path,
    opts: &ExtractOptions,
    run: F,
) -> Result<Outcome, ExtractError>
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: std::future::Future<Output = Result<RunOutput, ExtractError>>,
{
    let started = Instant::now();
    let started_at = chrono::Utc::now();
    let final_dir = final_dir.to_path_buf();
    let destination = final_dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    let query_label = final_dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(query)
        .to_string();
    if final_dir.exists() && !opts.overwrite {
        return Err(ExtractError::Exists(final_dir));
    }
    let parent = destination;
    std::fs::create_dir_all(&parent).map_err(|e| io_err(&parent, e))?;
    let staging = parent.join(format!(
        ".{query_label}.staging-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&staging).map_err(|e| io_err(&staging, e))?;
    let guard = RemoveOnDrop::new(staging.clone());
    let (cols, types, parts, rows_read) = run(staging.clone()).await?;
    let landed = Landing {
        query,
        country,
        sql,
        cols: &cols,
        types,
        parts,
        rows_read,
        started_at,
    };
    let outcome = landed.write_manifest(&staging, opts)?;
    publish(&staging, &final_dir, &query_label)?;
    guard.disarm();
    Ok(Outcome {
        output: final_dir,
        seconds: started.elapsed().as_secs_f64(),
        ..outcome
    })
}

/// A finished run's parts and what describes them, before its manifest.
pub(crate) struct Landing<'a> {
    pub query: &'a str,
    pub country: &'a str,
    pub sql: &'a str,
    pub cols: &'a [SourceColumn],
    pub types: TypeSource,
    pub parts: Vec<Part>,
    pub rows_read: u64,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

impl Landing<'_> {
    /// Writes `_manifest.json` into `dir` (last, after the parts) and
    /// returns the outcome, its output `dir` and time left for the caller.
    pub(crate) fn write_manifest(
        self,
        dir: &Path,
        opts: &ExtractOptions,
    ) -> Result<Outcome, ExtractError> {
        let rows_written: u64 = self.parts.iter().map(|p| p.rows).sum();
        let bytes: u64 = self.parts.iter().map(|p| p.bytes).sum();
        let finished_at = chrono::Utc::now();
        let manifest = serde_json::json!({
            "query": self.query,
            "country": self.country,
            "rows": rows_written,
            "bytes": bytes,
            "parts": self.parts,
            "schema": self.cols.iter().map(|c| serde_json::json!({
                "name": c.name,
                "sql_type": c.type_name,
                "parquet_type": schema::target(c).map(|t| t.data_type().to_string()).unwrap_or_default(),
                "nullable": c.nullable,
            })).collect::<Vec<_>>(),
            "types": &self.types,
            "compression": opts.codec,
            "sql_sha256": format!("{:x}", Sha256::digest(self.sql.as_bytes())),
            "started_at": self.started_at.to_rfc3339(),
            "finished_at": finished_at.to_rfc3339(),
            "writer": concat!("sql-databricks-bridge ", env!("CARGO_PKG_VERSION")),
        });
        let manifest_path = dir.join("_manifest.json");
        let text = serde_json::to_vec_pretty(&manifest).map_err(|e| ExtractError::Io {
            path: manifest_path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&manifest_path, text).map_err(|e| io_err(&manifest_path, e))?;
        let discrepancy = (self.rows_read != rows_written).then(|| {
            format!(
                "read {} rows from SQL Server but wrote {rows_written}",
                self.rows_read
            )
        });
        Ok(Outcome {
            query: self.query.to_string(),
            output: dir.to_path_buf(),
            rows_read: self.rows_read,
            rows_written,
            bytes,
            parts: self.parts,
            seconds: 0.0,
            discrepancy,
            types: self.types,
            location: None,
            columns: self
                .cols
                .iter()
                .filter_map(|c| {
                    schema::target(c)
                        .ok()
                        .map(|t| (c.name.clone(), t.data_type()))
                })
                .collect(),
            table: None,
        })
    }
}

/// A directory removed when this goes out of scope, unless disarmed.
pub struct RemoveOnDrop(Option<PathBuf>);

impl RemoveOnDrop {
    pub fn new(dir: PathBuf) -> Self {
        RemoveOnDrop(Some(dir))
    }

    pub fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        if let Some(d) = self.0.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `SELECT ... FROM (<sql>) AS q` with money columns cast to decimal.
fn money_as_decimal(sql: &str, cols: &[SourceColumn]) -> String {
    let list: Vec<String> = cols
        .iter()
        .map(|c| {
            let q = format!("[{}]", c.name.replace(']', "]]"));
            match schema::target(c) {
                Ok(schema::Target::Money { precision }) => {
                    format!("CAST(q.{q} AS decimal({precision},4)) AS {q}")
                }
                _ => format!("q.{q}"),
            }
        })
        .collect();
    // The newline ends a trailing `--` comment in the user's SQL.
    format!(
        "SELECT {} FROM (\n{}\n) AS q",
        list.join(", "),
        sql.trim_end().trim_end_matches(';')
    )
}

/// Renames the staged output into place, replacing an old one last.
fn publish(staging: &Path, final_dir: &Path, query: &str) -> Result<(), ExtractError> {
    if final_dir.exists() {
        let old =
            final_dir.with_file_name(format!(".{query}.old-{}", uuid::Uuid::new_v4().simple()));
        std::fs::rename(final_dir, &old).map_err(|e| io_err(final_dir, e))?;
        std::fs::rename(staging, final_dir).map_err(|e| io_err(final_dir, e))?;
        let _ = std::fs::remove_dir_all(&old);
    } else {
        std::fs::rename(staging, final_dir).map_err(|e| io_err(final_dir, e))?;
    }
    Ok(())
}

/// Runs a query and keeps its rows in memory as Arrow batches (for callers
/// that want the data, not files).
pub async fn extract_batches(
    conn: &mut Connection,
    sql: &str,
    batch_rows: usize,
) -> Result<
    (
        std::sync::Arc<arrow_schema::Schema>,
        Vec<arrow_array::RecordBatch>,
    ),
    ExtractError,
> {
    let mut out = Vec::new();
    let reader = stream_result(conn, sql, batch_rows, &mut |b, _| {
        out.push(b);
        Ok(())
    })
    .await?;
    let schema = reader.schema().ok_or(ExtractError::NoResult)?;
    if out.is_empty() {
        out.push(arrow_array::RecordBatch::new_empty(schema.clone()));
    }
    Ok((schema, out))
}

/// What [`stream_result`] hands each batch to, with the rows read so far.
pub type BatchSink<'a> =
    dyn FnMut(arrow_array::RecordBatch, u64) -> Result<(), ExtractError> + Send + 'a;

/// Runs a query (typed, money cast on the server) and hands each Arrow
/// batch to `sink` as it completes, so the caller decides where rows go
/// and memory stays one batch deep. Returns the reader: columns, types,
/// schema and rows read.
pub async fn stream_result(
    conn: &mut Connection,
    sql: &str,
    batch_rows: usize,
    sink: &mut BatchSink<'_>,
) -> Result<ResultReader, ExtractError> {
    let (mut reader, mut stream) = open_result(conn, sql, batch_rows).await?;
    while let Some(item) = stream.try_next().await.map_err(sql_err)? {
        for b in reader.push(item)? {
            sink(b, reader.rows())?;
        }
    }
    for b in reader.finish()? {
        sink(b, reader.rows())?;
    }
    Ok(reader)
}

/// Describes `sql`, then runs it (money cast on the server): the reader
/// that types its rows and the stream they come on.
async fn open_result<'c>(
    conn: &'c mut Connection,
    sql: &str,
    batch_rows: usize,
) -> Result<(ResultReader, tiberius::QueryStream<'c>), ExtractError> {
    let described = describe_or_reason(conn, sql).await?;
    let to_run = match &described {
        Ok(cols) => prepare_sql(conn, sql, cols).await,
        Err(_) => sql.to_string(),
    };
    let reader = ResultReader::new(described, batch_rows);
    let stream = conn.simple_query(to_run).await.map_err(sql_err)?;
    Ok((reader, stream))
}

/// The schema of a batch's first result as the extraction types it, read
/// by running the batch up to its first row (or its end): for a batch that
/// cannot be a derived table (`DECLARE ...; SELECT ...`). The connection
/// is left mid-result: the caller closes it.
pub async fn first_result_schema(
    conn: &mut Connection,
    sql: &str,
    batch_rows: usize,
) -> Result<std::sync::Arc<arrow_schema::Schema>, ExtractError> {
    let (mut reader, mut stream) = open_result(conn, sql, batch_rows).await?;
    while let Some(item) = stream.try_next().await.map_err(sql_err)? {
        reader.push(item)?;
        if let Some(schema) = reader.schema() {
            return Ok(schema);
        }
    }
    reader.finish()?;
    reader.schema().ok_or(ExtractError::NoResult)
}

/// The SQL to stream. The driver reads money as f64, so money columns are
/// cast to decimal on the server, where every digit survives; a query that
/// cannot be a derived table (a top-level ORDER BY, for one) runs as written.
async fn prepare_sql(conn: &mut Connection, sql: &str, cols: &[SourceColumn]) -> String {
    if cols
        .iter()
        .any(|c| matches!(schema::target(c), Ok(schema::Target::Money { .. })))
    {
        let wrapped = money_as_decimal(sql, cols);
        match describe(conn, &wrapped).await {
            Ok(_) => return wrapped,
            Err(e) => tracing::debug!(error = %e, "query cannot be wrapped; money is read as f64"),
        }
    }
    sql.to_string()
}

pub(crate) type RunOutput = (Vec<SourceColumn>, TypeSource, Vec<Part>, u64);

pub(crate) async fn run_into(
    conn: &mut Connection,
    sql: &str,
    dir: &Path,
    opts: &ExtractOptions,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<RunOutput, ExtractError> {
    let mut writer = writer::BackgroundWriter::spawn(dir, opts.layout())?;
    let reader = stream_result(conn, sql, opts.batch_rows, &mut |b, rows| {
        writer.write(b)?;
        progress(rows);
        Ok(())
    })
    .await?;
    let schema = reader.schema().ok_or(ExtractError::NoResult)?;
    let parts = writer.finish(schema).await?;
    progress(reader.rows());
    Ok((
        reader.columns().to_vec(),
        reader.type_source().clone(),
        parts,
        reader.rows(),
    ))
}
