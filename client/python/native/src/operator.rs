//! `_native.Operator`: the library's `BridgeOperator` with settings taken
//! from keyword arguments laid over the environment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use sql_databricks_bridge_core::entra::TokenSource;
use sql_databricks_bridge_core::extract::spill::Landed;
use sql_databricks_bridge_core::extract::Outcome;
use sql_databricks_bridge_core::operator::{BridgeOperator, OperatorError};
use sql_databricks_bridge_core::sqlserver::slots::Slots;
use sql_databricks_bridge_core::sync::SyncOutcome;
use sql_databricks_bridge_core::tables::stream::ChangeStream;

use crate::runtime::block_on;
use crate::stream::ArrowStream;

/// The bridge's operator: extraction from SQL Server and sync from
/// Databricks, with a connection pool kept across calls.
#[pyclass(module = "sql_databricks_bridge._native", frozen)]
pub struct Operator {
    op: BridgeOperator,
}

/// Settings from arguments, else the environment: an argument is the
/// variable the CLI reads (`SQLSERVER_HOST`, ...). An explicit connection
/// string stands alone: no `SQLSERVER_*` variable is laid over it.
fn lookup(args: HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
    let own_sql_server = args.contains_key("SQLSERVER_CONNECTION_STRING");
    move |key: &str| {
        if let Some(v) = args.get(key) {
            return Some(v.clone());
        }
        if own_sql_server && key.starts_with("SQLSERVER_") {
            return None;
        }
        std::env::var(key).ok()
    }
}

/// An Azure Identity credential of the caller's (`get_token(scope)`
/// answering an object with `.token`): on Databricks,
/// `dbutils.credentials.getServiceCredentialsProvider(name)`, the job's
/// own identity. Asked, with the GIL, for each new connection; it caches
/// and renews its tokens itself.
struct PyTokenSource(Py<PyAny>);

impl TokenSource for PyTokenSource {
    fn token(&self, scope: &str) -> Result<String, String> {
        Python::attach(|py| {
            self.0
                .call_method1(py, "get_token", (scope,))
                .and_then(|t| t.getattr(py, "token"))
                .and_then(|t| t.extract::<String>(py))
                .map_err(|e| format!("the credential's get_token failed: {e}"))
        })
    }
}

#[pymethods]
impl Operator {
    #[new]
    #[pyo3(signature = (
        sql_server_host=None, sql_server_database=None, sql_server_user=None,
        sql_server_password=None, *, sql_server_port=None, connection_string=None,
        sql_server_access_token=None, sql_server_authentication=None, sql_server_credential=None,
        encrypt=None, trust_server_certificate=None, ca_file=None,
        databricks_host=None, databricks_token=None, databricks_client_id=None,
        databricks_client_secret=None, databricks_profile=None, warehouse_id=None,
        max_delete_rows=None, table_lock=false,
        max_connections=None, connection_group=None, connection_wait=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        sql_server_host: Option<String>,
        sql_server_database: Option<String>,
        sql_server_user: Option<String>,
        sql_server_password: Option<String>,
        sql_server_port: Option<u16>,
        connection_string: Option<String>,
        sql_server_access_token: Option<String>,
        sql_server_authentication: Option<String>,
        sql_server_credential: Option<Py<PyAny>>,
        encrypt: Option<String>,
        trust_server_certificate: Option<bool>,
        ca_file: Option<PathBuf>,
        databricks_host: Option<String>,
        databricks_token: Option<String>,
        databricks_client_id: Option<String>,
        databricks_client_secret: Option<String>,
        databricks_profile: Option<String>,
        warehouse_id: Option<String>,
        max_delete_rows: Option<u64>,
        table_lock: bool,
        max_connections: Option<u32>,
        connection_group: Option<String>,
        connection_wait: Option<f64>,
    ) -> PyResult<Self> {
        let mut args: HashMap<&'static str, String> = HashMap::new();
        let mut put = |k: &'static str, v: Option<String>| {
            if let Some(v) = v {
                args.insert(k, v);
            }
        };
        put("SQLSERVER_HOST", sql_server_host);
        put("SQLSERVER_DATABASE", sql_server_database);
        put("SQLSERVER_USERNAME", sql_server_user);
        put("SQLSERVER_PASSWORD", sql_server_password);
        put("SQLSERVER_PORT", sql_server_port.map(|p| p.to_string()));
        put("SQLSERVER_CONNECTION_STRING", connection_string);
        put("SQLSERVER_ACCESS_TOKEN", sql_server_access_token);
        put("SQLSERVER_AUTHENTICATION", sql_server_authentication);
        put("SQLSERVER_ENCRYPT", encrypt);
        put(
            "SQLSERVER_TRUST_SERVER_CERTIFICATE",
            trust_server_certificate.map(|b| b.to_string()),
        );
        put(
            "SQLSERVER_CA_FILE",
            ca_file.map(|p| p.to_string_lossy().into_owned()),
        );
        put("DATABRICKS_HOST", databricks_host);
        put("DATABRICKS_TOKEN", databricks_token);
        put("DATABRICKS_CLIENT_ID", databricks_client_id);
        put("DATABRICKS_CLIENT_SECRET", databricks_client_secret);
        put("DATABRICKS_CONFIG_PROFILE", databricks_profile);
        put("DATABRICKS_WAREHOUSE_ID", warehouse_id);
        let mut op = BridgeOperator::from_lookup(&lookup(args)).map_err(crate::errors::to_py)?;
        if let Some(n) = max_delete_rows {
            op = op.with_max_delete_rows(n);
        }
        op = op.with_table_lock(table_lock);
        if let Some(cap) = max_connections {
            let wait = connection_wait.unwrap_or(3600.0);
            if !(wait.is_finite() && wait >= 0.0) {
                return Err(crate::errors::to_py(OperatorError::Argument(format!(
                    "connection_wait must be a number of seconds, not {wait}"
                ))));
            }
            let slots = Slots::new(
                connection_group.as_deref().unwrap_or("default"),
                cap,
                std::time::Duration::from_secs_f64(wait),
            )
            .map_err(|e| crate::errors::to_py(OperatorError::Argument(e)))?;
            op = op.with_slots(slots);
        }
        if let Some(credential) = sql_server_credential {
            op = op
                .with_token_source(Arc::new(PyTokenSource(credential)))
                .map_err(crate::errors::to_py)?;
        }
        Ok(Operator { op })
    }

    /// The Arrow schema of `query`'s result (no rows read), as a stream
    /// of no batches.
    fn result_schema(&self, py: Python<'_>, query: &str) -> PyResult<ArrowStream> {
        let op = &self.op;
        let schema = block_on(py, op.result_schema(query))?;
        Ok(ArrowStream::new(schema, vec![]))
    }

    /// A named query of `queries_dir` rendered for `country` with the
    /// parameters of `config_dir`: its SQL and its `partition_on` and
    /// `partitions` (None when it has none).
    #[staticmethod]
    fn named_query(
        queries_dir: PathBuf,
        config_dir: PathBuf,
        name: &str,
        country: &str,
    ) -> PyResult<(String, Option<(String, u32)>)> {
        sql_databricks_bridge_core::queries::named(&queries_dir, &config_dir, name, country)
            .map_err(|e| crate::errors::to_py(OperatorError::Argument(e)))
    }

    /// `query` cut into `count` statements over ranges of `column`, as the
    /// CLI's partitioned extraction cuts it.
    fn partition_queries(
        &self,
        py: Python<'_>,
        query: &str,
        column: &str,
        count: u32,
    ) -> PyResult<Vec<String>> {
        let op = &self.op;
        block_on(py, op.partition_queries(query, column, count))
    }

    /// A Change-Tracking-enabled table as a stream: {tracked, columns,
    /// keys, current, min, schema} (its bracketed name, columns, primary
    /// key, Change Tracking's current and minimum valid versions, and the
    /// batches' Arrow schema as an empty stream).
    fn change_stream<'py>(&self, py: Python<'py>, table: &str) -> PyResult<Bound<'py, PyDict>> {
        let op = &self.op;
        let (stream, versions, schema) = block_on(py, async {
            let (stream, versions) = op.change_stream(table).await?;
            let (schema, _) = op
                .extract_to_batches(&stream.schema_sql(versions.min))
                .await?;
            Ok((stream, versions, schema))
        })?;
        let d = PyDict::new(py);
        let schema = sql_databricks_bridge_core::tables::stream::nullable(&schema);
        d.set_item("schema", ArrowStream::new(schema, vec![]))?;
        d.set_item("tracked", &stream.tracked)?;
        d.set_item("columns", &stream.columns)?;
        d.set_item("keys", &stream.keys)?;
        d.set_item("current", versions.current)?;
        d.set_item("min", versions.min)?;
        Ok(d)
    }

    /// (current, minimum valid) Change Tracking versions of `tracked`.
    fn change_versions(&self, py: Python<'_>, tracked: &str) -> PyResult<(i64, i64)> {
        let op = &self.op;
        let v = block_on(py, op.change_versions(tracked))?;
        Ok((v.current, v.min))
    }

    /// One batch of the stream of `tracked` (its columns and keys as
    /// `change_stream` gave them): the whole table when `start` is None
    /// (its rows `S` with `resnapshot`, else `I`), else the net changes in
    /// (start, end].
    #[pyo3(signature = (tracked, columns, keys, start, end, resnapshot=false))]
    #[allow(clippy::too_many_arguments)]
    fn read_changes(
        &self,
        py: Python<'_>,
        tracked: &str,
        columns: Vec<String>,
        keys: Vec<String>,
        start: Option<i64>,
        end: i64,
        resnapshot: bool,
    ) -> PyResult<Py<PyAny>> {
        let stream = ChangeStream::new(tracked, columns, &keys)
            .map_err(|e| crate::errors::to_py(OperatorError::Changes(e.to_string())))?;
        // Either streams while it is read: the whole table as a range is
        // (declared nullable here), the net changes by the core's read.
        let (read, nullable) = match start {
            // `resnapshot`: the whole table marked `S` (replaces the copy).
            None if resnapshot => (Streamed::Query(stream.resnapshot_sql(end)), true),
            None => (Streamed::Query(stream.snapshot_sql(end)), true),
            Some(start) => (Streamed::Changes { stream, start, end }, false),
        };
        Ok(stream_from(py, &self.op, read, nullable)?
            .into_pyobject(py)?
            .into_any()
            .unbind())
    }

    /// Runs `query` and streams its rows as Arrow batches while it runs
    /// (memory a few batches deep, whatever the result's size), typed as
    /// the Parquet mapping types them.
    fn stream_arrow(&self, py: Python<'_>, query: &str) -> PyResult<crate::stream::StreamingArrow> {
        stream_query(py, &self.op, query, false)
    }

    /// Runs `query`; its rows as an Arrow stream typed as the Parquet
    /// mapping types them.
    fn extract_arrow(&self, py: Python<'_>, query: &str) -> PyResult<ArrowStream> {
        let op = &self.op;
        let (schema, batches) = block_on(py, op.extract_to_batches(query))?;
        Ok(ArrowStream::new(schema, batches))
    }

    /// Runs `query` into Parquet parts and `_manifest.json` in `path`.
    #[pyo3(signature = (query, path, overwrite=false))]
    fn extract_parquet<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        path: PathBuf,
        overwrite: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let op = if overwrite {
            // The Python operator never changes the other options.
            let options = sql_databricks_bridge_core::extract::ExtractOptions {
                overwrite: true,
                ..Default::default()
            };
            self.op.clone().with_options(options)
        } else {
            self.op.clone()
        };
        let out = block_on(py, async { op.extract_to_parquet(query, &path).await })?;
        outcome_dict(py, &out)
    }

    /// Runs `query`: ("memory", stream) while its Arrow buffers stay within
    /// `memory_limit` bytes, else ("files", outcome) with the parts in `path`.
    fn extract_spilling<'py>(
        &self,
        py: Python<'py>,
        query: &str,
        path: PathBuf,
        memory_limit: usize,
    ) -> PyResult<(&'static str, Bound<'py, PyAny>)> {
        let op = &self.op;
        match block_on(py, op.extract_spilling(query, &path, memory_limit))? {
            Landed::Memory { schema, batches } => Ok((
                "memory",
                Bound::new(py, ArrowStream::new(schema, batches))?.into_any(),
            )),
            Landed::Files(out) => Ok(("files", outcome_dict(py, &out)?.into_any())),
        }
    }

    /// Plans a write of a DataFrame's columns ((name, Spark type) pairs)
    /// into `target_table`, checked against the target before any row
    /// moves; `write_id` keys it in the ledger, `run` (the driver's, passed
    /// to every task; new when not given) names this run's stages.
    #[pyo3(signature = (write_id, target_table, operation, columns, primary_keys=None, run=None, stage_schema=None))]
    #[allow(clippy::too_many_arguments)]
    fn plan_write(
        &self,
        py: Python<'_>,
        write_id: &str,
        target_table: &str,
        operation: &str,
        columns: Vec<(String, String)>,
        primary_keys: Option<Vec<String>>,
        run: Option<String>,
        stage_schema: Option<String>,
    ) -> PyResult<crate::write::DistributedWrite> {
        let keys = primary_keys.unwrap_or_default();
        let run = run.unwrap_or_else(sql_databricks_bridge_core::sync::staged::new_run_id);
        let op = &self.op;
        let write = block_on(
            py,
            op.plan_write(
                write_id,
                &run,
                target_table,
                operation,
                &keys,
                &columns,
                stage_schema.as_deref(),
            ),
        )?;
        Ok(crate::write::DistributedWrite::new(self.op.clone(), write))
    }

    /// Applies a Databricks table to a SQL Server table in one transaction.
    /// With `sync_id`, the sync is recorded under it: the same id again
    /// writes nothing and returns the first counts.
    #[pyo3(signature = (source_table, target_table, operation, primary_keys=None, max_delete_rows=None, sync_id=None))]
    #[allow(clippy::too_many_arguments)]
    fn sync_to_sql_server<'py>(
        &self,
        py: Python<'py>,
        source_table: &str,
        target_table: &str,
        operation: &str,
        primary_keys: Option<Vec<String>>,
        max_delete_rows: Option<u64>,
        sync_id: Option<String>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let op = match max_delete_rows {
            Some(n) => self.op.clone().with_max_delete_rows(n),
            None => self.op.clone(),
        };
        let keys = primary_keys.unwrap_or_default();
        let out = block_on(py, async {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            match sync_id.as_deref() {
                Some(id) => {
                    op.sync_to_sql_server_once(id, source_table, target_table, operation, &keys)
                        .await
                }
                None => {
                    op.sync_to_sql_server(source_table, target_table, operation, &keys)
                        .await
                }
            }
        })?;
        sync_outcome_dict(py, &out)
    }
}

/// What [`stream_from`] reads.
enum Streamed {
    Query(String),
    /// A change stream's net changes in (start, end].
    Changes {
        stream: ChangeStream,
        start: i64,
        end: i64,
    },
}

/// Runs `sql` on the runtime and streams its batches to Python while it
/// runs (`nullable`: every column declared nullable, as a change stream's
/// batches all are).
fn stream_query(
    py: Python<'_>,
    op: &BridgeOperator,
    sql: &str,
    nullable: bool,
) -> PyResult<crate::stream::StreamingArrow> {
    stream_from(py, op, Streamed::Query(sql.to_string()), nullable)
}

/// Reads `what` on the runtime and streams its batches to Python while it
/// is read (`nullable` as [`stream_query`]'s).
fn stream_from(
    py: Python<'_>,
    op: &BridgeOperator,
    what: Streamed,
    nullable: bool,
) -> PyResult<crate::stream::StreamingArrow> {
    use crate::stream::Piece;
    use sql_databricks_bridge_core::extract::ExtractError;
    use sql_databricks_bridge_core::tables::stream::nullable as relaxed;

    let (tx, rx) = std::sync::mpsc::sync_channel::<Piece>(2);
    let op = op.clone();
    crate::runtime::runtime()?.spawn(async move {
        let batches = tx.clone();
        // The reader pulls from Python's thread; this worker waits for
        // room without stalling the runtime's other tasks.
        let mut sink = move |b: arrow_array::RecordBatch, _rows: u64| {
            let b = if nullable {
                arrow_array::RecordBatch::try_new(relaxed(&b.schema()), b.columns().to_vec())
                    .map_err(|e| ExtractError::Partition(e.to_string()))?
            } else {
                b
            };
            tokio::task::block_in_place(|| batches.send(Piece::Batch(b)))
                .map_err(|_| ExtractError::Stopped)
        };
        let read = match &what {
            Streamed::Query(sql) => op.extract_streaming(sql, &mut sink).await,
            Streamed::Changes { stream, start, end } => {
                op.stream_changes(stream, *start, *end, &mut sink).await
            }
        };
        let end = match read {
            Ok(schema) if nullable => Piece::End(relaxed(&schema)),
            Ok(schema) => Piece::End(schema),
            Err(e) => Piece::Failed(e),
        };
        let _ = tokio::task::block_in_place(|| tx.send(end));
    });
    crate::stream::StreamingArrow::start(py, rx)
}

/// What a sync or a distributed write did, as Python's `SyncResult` takes it.
pub fn sync_outcome_dict<'py>(py: Python<'py>, out: &SyncOutcome) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("rows_read", out.rows_expected)?;
    d.set_item("rows_affected", out.rows_affected)?;
    d.set_item("discrepancy", out.discrepancy())?;
    d.set_item("from_ledger", out.from_ledger)?;
    Ok(d)
}

fn outcome_dict<'py>(py: Python<'py>, out: &Outcome) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("path", out.output.to_string_lossy())?;
    d.set_item("rows_read", out.rows_read)?;
    d.set_item("rows_written", out.rows_written)?;
    d.set_item("bytes", out.bytes)?;
    d.set_item(
        "parts",
        out.parts.iter().map(|p| p.file.clone()).collect::<Vec<_>>(),
    )?;
    d.set_item("seconds", out.seconds)?;
    d.set_item("discrepancy", out.discrepancy.clone())?;
    d.set_item("types_from", out.types.from)?;
    Ok(d)
}
