//! Tables, not only files: after a query's Parquet lands in a Volume, its
//! load spec (`queries/<name>.yaml`) puts it into a Unity Catalog Delta
//! table through the Statement Execution API, and keeps the table current:
//!
//! - **full**: `CREATE OR REPLACE TABLE ... AS SELECT` from the landed run,
//!   one atomic commit (readers see the old or the new contents)
//!   (https://docs.databricks.com/en/sql/language-manual/sql-ref-syntax-ddl-create-table-using.html);
//! - **append**: `COPY INTO` from the run's directory
//!   (https://docs.databricks.com/en/sql/language-manual/delta-copy-into.html);
//! - **incremental**: only the rows at or past the last cursor value (minus
//!   the lookback, in time, cursor units or last values) are read from SQL
//!   Server and `MERGE`d on the primary key; rows read again change nothing
//!   (https://docs.databricks.com/en/sql/language-manual/delta-merge-into.html);
//! - **change_tracking**: SQL Server Change Tracking's inserts, updates and
//!   deletes since the last synced version, merged including deletes
//!   (capped by `max_delete_rows`); a version older than the minimum valid
//!   one reloads the table in full, saying why.
//!
//! The first run of incremental and change_tracking is a full load (for
//! incremental a full read merged, so another query's rows in the same
//! table stay); so is a run whose table was dropped or re-created since
//! the last load (it says why). Where each query left each table is in a
//! Databricks state table (`state.rs`), so any bridge continues. Before changing an existing table its schema is compared with
//! the landed one (`DESCRIBE TABLE`): new columns are added, types Delta can
//! widen are widened, anything else fails the run naming the column.

pub(crate) mod source;
pub(crate) mod state;
pub mod stream;

use std::time::Duration;

use crate::databricks::names::UcName;
use crate::databricks::statements::{JsonResult, StatementError};
use crate::databricks::types;
use crate::databricks::Workspace;
use crate::queries::load::{LoadMode, LoadSpec};
use crate::sqlserver::Connection;
use source::CursorValue;
pub use state::{LoadState, StateTable, STATE_TABLE};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The spec or the query cannot be loaded this way.
    #[error("{0}")]
    Spec(String),
    /// The table's schema and the landed one disagree beyond widening.
    #[error("table {table}: {message}")]
    Drift { table: String, message: String },
    /// More deletes than `max_delete_rows`; nothing was changed.
    #[error("table {table}: the changes would delete {rows} rows, above max_delete_rows {max}; nothing was changed")]
    TooManyDeletes { table: String, rows: u64, max: u64 },
    /// Change Tracking cleaned up changes after they were asked for and
    /// before they were all read: the read may miss some; it is done again.
    #[error("{tracked}: change tracking cleaned up past version {version} while its changes were read (minimum valid version now {}); reading again", min.map(|m| m.to_string()).unwrap_or_else(|| "unknown".into()))]
    CleanedUpMeanwhile {
        tracked: String,
        version: i64,
        min: Option<i64>,
    },
    #[error("SQL Server: {0}")]
    SqlServer(String),
    #[error("Databricks: {0}")]
    Databricks(#[from] StatementError),
}

/// A landed column: its name and Spark type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub spark_type: String,
}

/// What a load will do, decided before the query runs.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The T-SQL to extract (the query, narrowed for incremental loads).
    pub sql: String,
    action: Action,
    /// Why this run does what it does (first run, expired version, ...).
    pub note: Option<String>,
    cursor_from: Option<String>,
    version_from: Option<i64>,
    version_to: Option<i64>,
    /// change_tracking: the tracked table, bracketed.
    tracked: Option<String>,
    /// change_tracking, reading changes: the same read as one batch that
    /// checks the version and reads in one SNAPSHOT transaction, when the
    /// tracked table's database (the connection's) allows it.
    pub snapshot_sql: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Replace,
    Append,
    Merge,
    Changes,
}

/// What a load did, for the job status, the manifest and the metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TableOutcome {
    /// catalog.schema.table
    pub table: String,
    /// full, append, incremental or change_tracking.
    pub mode: String,
    /// replaced, appended or merged.
    pub action: String,
    pub rows_inserted: u64,
    pub rows_updated: u64,
    pub rows_deleted: u64,
    /// incremental: the cursor value the run started after, and the new one.
    pub cursor_from: Option<String>,
    pub cursor_to: Option<String>,
    /// change_tracking: the versions synced from and to.
    pub version_from: Option<i64>,
    pub version_to: Option<i64>,
    /// The Delta table's version after the load.
    pub table_version: Option<i64>,
    /// Columns added or widened.
    pub schema_changes: Vec<String>,
    pub note: Option<String>,
}

/// Loads landed runs into tables.
#[derive(Clone)]
pub struct TableLoader {
    ws: Workspace,
    warehouse: String,
    state: StateTable,
    deadline: Duration,
    /// Written to the state table's `updated_by`.
    pub by: String,
}

/// `` `a`.`b`.`c` ``.
fn quoted(t: &UcName) -> String {
    [&t.catalog, &t.schema, &t.name]
        .iter()
        .map(|p| ident(p))
        .collect::<Vec<_>>()
        .join(".")
}

fn ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// `'text'` as a Spark SQL string literal.
fn string_literal(text: &str) -> String {
    format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn metric(r: &JsonResult, name: &str) -> u64 {
    r.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
        .and_then(|i| r.rows.first().and_then(|row| row.get(i).cloned().flatten()))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn first_cell(r: &JsonResult) -> Option<String> {
    r.rows
        .first()
        .and_then(|row| row.first().cloned().flatten())
}

/// The cursor kind of a Spark type (how its value is stored and reparsed).
fn cursor_kind(spark: &str) -> &'static str {
    let t = types::normalise(spark);
    match t.as_str() {
        "TINYINT" | "SMALLINT" | "INT" | "BIGINT" => "int",
        "DATE" => "date",
        "TIMESTAMP" | "TIMESTAMP_NTZ" => "timestamp",
        t if t.starts_with("DECIMAL") => "decimal",
        _ => "string",
    }
}

impl TableLoader {
    pub fn new(ws: Workspace, warehouse: &str, state_table: &UcName, by: &str) -> TableLoader {
        TableLoader {
            state: StateTable::new(ws.clone(), warehouse, state_table),
            ws,
            warehouse: warehouse.to_string(),
            deadline: Duration::from_secs(3600),
            by: by.to_string(),
        }
    }

    async fn run(&self, sql: &str) -> Result<JsonResult, LoadError> {
        Ok(self
            .ws
            .execute_json(&self.warehouse, sql, &[], self.deadline)
            .await?)
    }

    /// Decides what this run reads from SQL Server: the whole query, the
    /// rows from the cursor on, or the changes since the last version.
    /// `key` names the query (`<country>/<query>`) whose position is used.
    pub async fn prepare(
        &self,
        spec: &LoadSpec,
        key: &str,
        sql: &str,
        conn: &mut Connection,
    ) -> Result<Prepared, LoadError> {
        let whole = |action, note: Option<String>| Prepared {
            sql: sql.to_string(),
            action,
            note,
            cursor_from: None,
            version_from: None,
            version_to: None,
            tracked: None,
            snapshot_sql: None,
        };
        match &spec.mode {
            LoadMode::Full => Ok(whole(Action::Replace, None)),
            LoadMode::Append => Ok(whole(Action::Append, None)),
            LoadMode::Incremental { cursor, lookback } => {
                self.state.ensure().await?;
                let saved = self.state.get(&spec.table, key).await?.filter(|s| {
                    s.mode == "incremental"
                        && s.cursor_column
                            .as_deref()
                            .is_some_and(|c| c.eq_ignore_ascii_case(cursor))
                });
                let Some(saved) = saved else {
                    return Ok(whole(
                        Action::Merge,
                        Some(format!(
                            "first incremental run of {key} into {}: every row read, merged",
                            spec.table
                        )),
                    ));
                };
                if let Some(why) = self.discontinued(&spec.table, saved.table_version).await? {
                    return Ok(whole(Action::Merge, Some(why)));
                }
                let Some((value, kind)) = saved.cursor_value.zip(saved.cursor_kind) else {
                    return Ok(whole(
                        Action::Merge,
                        Some(
                            "no cursor value saved yet (no rows so far): every row read, merged"
                                .into(),
                        ),
                    ));
                };
                let after = CursorValue::parse(&kind, &value).ok_or_else(|| {
                    LoadError::Spec(format!(
                        "the state of {} holds a cursor value '{value}' that is not a {kind}",
                        spec.table
                    ))
                })?;
                Ok(Prepared {
                    sql: source::rows_after(sql, cursor, &after, lookback)?,
                    action: Action::Merge,
                    note: None,
                    cursor_from: Some(value),
                    version_from: None,
                    version_to: None,
                    tracked: None,
                    snapshot_sql: None,
                })
            }
            LoadMode::ChangeTracking { tracked_table, .. } => {
                self.state.ensure().await?;
                let tracked = match tracked_table {
                    Some(t) => source::tracked_name(t)?,
                    None => {
                        let tables = crate::auth::referenced_tables(sql)
                            .map_err(|e| LoadError::Spec(e.to_string()))?;
                        match tables.as_slice() {
                            [one] => source::tracked_name(&one.to_string())?,
                            _ => return Err(LoadError::Spec(format!(
                                "mode change_tracking: the query reads {} tables; name the tracked one in tracked_table",
                                tables.len()
                            ))),
                        }
                    }
                };
                let Versions {
                    current,
                    min,
                    snapshot,
                } = versions(conn, &tracked, Some(sql)).await?;
                let saved = self
                    .state
                    .get(&spec.table, key)
                    .await?
                    .filter(|s| s.mode == "change_tracking")
                    .and_then(|s| s.ct_version);
                let (action, note, sql) = match saved {
                    None => (
                        Action::Replace,
                        Some("first change-tracking run: a full load".to_string()),
                        sql.to_string(),
                    ),
                    Some(v) if v < min => (
                        Action::Replace,
                        Some(format!(
                            "the last synced version {v} is older than {tracked}'s minimum valid version {min} (its changes were cleaned up): a full reload"
                        )),
                        sql.to_string(),
                    ),
                    Some(v) => (
                        Action::Changes,
                        None,
                        source::changes_since(sql, &tracked, &spec.primary_key, v)?,
                    ),
                };
                let snapshot_sql = match (action, saved) {
                    (Action::Changes, Some(v)) if snapshot => {
                        Some(source::in_snapshot(&sql, &tracked, v))
                    }
                    _ => None,
                };
                Ok(Prepared {
                    sql,
                    action,
                    note,
                    cursor_from: None,
                    version_from: saved,
                    version_to: Some(current),
                    tracked: Some(tracked),
                    snapshot_sql,
                })
            }
        }
    }

    /// A read of [`Prepared::snapshot_sql`] failed: when it was its check
    /// (the version was cleaned up before the snapshot began), the run is
    /// done again (transient), and that run reloads in full.
    pub fn cleaned_up_before_read(prepared: &Prepared, message: &str) -> Option<LoadError> {
        let (Some(tracked), Some(version)) = (&prepared.tracked, prepared.version_from) else {
            return None;
        };
        let min = source::cleaned_up_in(message, tracked, version)?;
        Some(LoadError::CleanedUpMeanwhile {
            tracked: tracked.clone(),
            version,
            min,
        })
    }

    /// After the changes were read outside one SNAPSHOT transaction (the
    /// database does not allow it, or the read is partitioned over several
    /// connections): Change Tracking's cleanup may have run between the
    /// check of the last synced version and the read, removing changes the
    /// read needed. Checked again now (validate the version, read, validate
    /// again): still valid, the read was complete; otherwise it is done
    /// again (transient), and that run, finding the version expired,
    /// reloads in full
    /// (https://learn.microsoft.com/en-us/sql/relational-databases/track-changes/work-with-change-tracking-sql-server).
    pub async fn confirm(
        &self,
        prepared: &Prepared,
        conn: &mut Connection,
    ) -> Result<(), LoadError> {
        let (Action::Changes, Some(tracked), Some(version)) =
            (prepared.action, &prepared.tracked, prepared.version_from)
        else {
            return Ok(());
        };
        let min = versions(conn, tracked, None).await?.min;
        if version < min {
            return Err(LoadError::CleanedUpMeanwhile {
                tracked: tracked.clone(),
                version,
                min: Some(min),
            });
        }
        Ok(())
    }

    /// Loads the run at `location` (its columns `columns`) as `prepared`
    /// said, then saves where `key`'s query left the table. Every statement
    /// may run again with the same outcome, so a retry after a lost answer
    /// changes nothing twice.
    pub async fn load(
        &self,
        spec: &LoadSpec,
        key: &str,
        prepared: &Prepared,
        location: &str,
        columns: &[Column],
    ) -> Result<TableOutcome, LoadError> {
        let t = quoted(&spec.table);
        let src = format!("read_files({})", string_literal(location));
        let mut out = TableOutcome {
            table: spec.table.to_string(),
            mode: spec.mode.name().to_string(),
            cursor_from: prepared.cursor_from.clone(),
            version_from: prepared.version_from,
            version_to: prepared.version_to,
            note: prepared.note.clone(),
            ..TableOutcome::default()
        };
        // The query's own columns (the change columns aside).
        let own: Vec<&Column> = columns
            .iter()
            .filter(|c| !c.name.starts_with("_bridge_"))
            .collect();
        let exists = self.describe(&spec.table).await?;
        if let Some(existing) = &exists {
            out.schema_changes = self.evolve(spec, existing, &own).await?;
        }
        let list = |prefix: &str| {
            own.iter()
                .map(|c| format!("{prefix}{}", ident(&c.name)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match prepared.action {
            Action::Replace => {
                // A change-tracking reload replaces the table: the rows it
                // drops are deletes, under the same cap as the changes'.
                if let (
                    Some(_),
                    LoadMode::ChangeTracking {
                        max_delete_rows: Some(max),
                        ..
                    },
                ) = (&exists, &spec.mode)
                {
                    let on: Vec<String> = spec
                        .primary_key
                        .iter()
                        .map(|k| format!("t.{0} = s.{0}", ident(k)))
                        .collect();
                    let first = ident(&spec.primary_key[0]);
                    let r = self
                        .run(&format!(
                            "SELECT count(*) FROM {t} AS t LEFT JOIN (SELECT {} FROM {src}) AS s ON {} WHERE s.{first} IS NULL",
                            spec.primary_key.iter().map(|k| ident(k)).collect::<Vec<_>>().join(", "),
                            on.join(" AND ")
                        ))
                        .await?;
                    let n: u64 = first_cell(&r).and_then(|v| v.parse().ok()).unwrap_or(0);
                    if n > *max {
                        return Err(LoadError::TooManyDeletes {
                            table: spec.table.to_string(),
                            rows: n,
                            max: *max,
                        });
                    }
                }
                let r = self
                    .run(&format!(
                        "CREATE OR REPLACE TABLE {t} AS SELECT {} FROM {src}",
                        list("")
                    ))
                    .await?;
                out.action = "replaced".into();
                out.rows_inserted =
                    metric(&r, "num_inserted_rows").max(metric(&r, "num_affected_rows"));
            }
            Action::Append => {
                if exists.is_none() {
                    self.create(&t, &own).await?;
                }
                let r = self
                    .run(&format!(
                        "COPY INTO {t} FROM {} FILEFORMAT = PARQUET",
                        string_literal(location)
                    ))
                    .await?;
                out.action = "appended".into();
                out.rows_inserted =
                    metric(&r, "num_inserted_rows").max(metric(&r, "num_affected_rows"));
            }
            Action::Merge => {
                if exists.is_none() {
                    self.create(&t, &own).await?;
                }
                let on: Vec<String> = spec
                    .primary_key
                    .iter()
                    .map(|k| format!("t.{0} = s.{0}", ident(k)))
                    .collect();
                // Rows read again unchanged (the inclusive bound, the
                // lookback) are left alone: only real changes are updates.
                let same: Vec<String> = own
                    .iter()
                    .map(|c| format!("t.{0} <=> s.{0}", ident(&c.name)))
                    .collect();
                let r = self
                    .run(&format!(
                        "MERGE INTO {t} AS t USING (SELECT {} FROM {src}) AS s ON {} \
                         WHEN MATCHED AND NOT ({}) THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
                        list(""),
                        on.join(" AND "),
                        same.join(" AND ")
                    ))
                    .await?;
                out.action = "merged".into();
                out.rows_inserted = metric(&r, "num_inserted_rows");
                out.rows_updated = metric(&r, "num_updated_rows");
            }
            Action::Changes => {
                if exists.is_none() {
                    self.create(&t, &own).await?;
                }
                let on: Vec<String> = spec
                    .primary_key
                    .iter()
                    .map(|k| format!("t.{} = s.{}", ident(k), ident(&source::key_column(k))))
                    .collect();
                let on = on.join(" AND ");
                let present = ident(source::PRESENT);
                if let LoadMode::ChangeTracking {
                    max_delete_rows: Some(max),
                    ..
                } = &spec.mode
                {
                    let r = self
                        .run(&format!(
                            "SELECT count(*) FROM {t} AS t JOIN {src} AS s ON {on} WHERE NOT s.{present}"
                        ))
                        .await?;
                    let n: u64 = first_cell(&r).and_then(|v| v.parse().ok()).unwrap_or(0);
                    if n > *max {
                        return Err(LoadError::TooManyDeletes {
                            table: spec.table.to_string(),
                            rows: n,
                            max: *max,
                        });
                    }
                }
                let set: Vec<String> = own
                    .iter()
                    .map(|c| format!("t.{0} = s.{0}", ident(&c.name)))
                    .collect();
                let r = self
                    .run(&format!(
                        "MERGE INTO {t} AS t USING (SELECT * FROM {src}) AS s ON {on} \
                         WHEN MATCHED AND NOT s.{present} THEN DELETE \
                         WHEN MATCHED THEN UPDATE SET {} \
                         WHEN NOT MATCHED AND s.{present} THEN INSERT ({}) VALUES ({})",
                        set.join(", "),
                        list(""),
                        list("s.")
                    ))
                    .await?;
                out.action = "merged".into();
                out.rows_inserted = metric(&r, "num_inserted_rows");
                out.rows_updated = metric(&r, "num_updated_rows");
                out.rows_deleted = metric(&r, "num_deleted_rows");
            }
        }
        // Where the table is now.
        let mut saved = LoadState {
            mode: spec.mode.name().to_string(),
            ..LoadState::default()
        };
        match &spec.mode {
            LoadMode::Incremental { cursor, .. } => {
                let col = own
                    .iter()
                    .find(|c| c.name.eq_ignore_ascii_case(cursor))
                    .ok_or_else(|| {
                        LoadError::Spec(format!(
                            "the cursor column {cursor} is not in the query's result"
                        ))
                    })?;
                // The highest value this run read (not the table's: other
                // queries may load it too), never below where it started.
                let r = self
                    .run(&format!(
                        "SELECT CAST(max({}) AS STRING) FROM {src}",
                        ident(&col.name)
                    ))
                    .await?;
                let kind = cursor_kind(&col.spark_type);
                let landed = first_cell(&r);
                saved.cursor_column = Some(col.name.clone());
                saved.cursor_kind = Some(kind.to_string());
                saved.cursor_value = match (landed, prepared.cursor_from.clone()) {
                    (Some(l), Some(p)) => {
                        let higher = CursorValue::parse(kind, &l)
                            .zip(CursorValue::parse(kind, &p))
                            .and_then(|(a, b)| a.cmp_same_kind(&b))
                            .is_none_or(|o| o.is_ge());
                        Some(if higher { l } else { p })
                    }
                    (l, p) => l.or(p),
                };
                out.cursor_to = saved.cursor_value.clone();
            }
            LoadMode::ChangeTracking { .. } => saved.ct_version = prepared.version_to,
            LoadMode::Full | LoadMode::Append => {}
        }
        out.table_version = self.table_version(&t).await?;
        saved.table_version = out.table_version;
        if !matches!(spec.mode, LoadMode::Full | LoadMode::Append) {
            self.state.put(&spec.table, key, &saved, &self.by).await?;
        }
        Ok(out)
    }

    /// Why the table is no longer the one the last load left at
    /// `saved_version` — missing, at an older version, or re-created,
    /// replaced, truncated or restored since — or `None` when it is.
    async fn discontinued(
        &self,
        table: &UcName,
        saved_version: Option<i64>,
    ) -> Result<Option<String>, LoadError> {
        let t = quoted(table);
        let history = match self.run(&format!("DESCRIBE HISTORY {t} LIMIT 1")).await {
            Err(e) if missing(&e) => {
                return Ok(Some(format!(
                    "table {table} does not exist though a load of it was saved (it was dropped): a full reload"
                )))
            }
            r => r?,
        };
        let (Some(current), Some(saved)) = (version_of(&history, 0), saved_version) else {
            return Ok(None);
        };
        if current < saved {
            return Ok(Some(format!(
                "table {table} is at version {current}, before version {saved} the last load left (it was re-created): a full reload"
            )));
        }
        // Versions since the last load, as far as a thousand back.
        let since = current - saved;
        if since == 0 || since > 1000 {
            return Ok(None);
        }
        let r = self
            .run(&format!("DESCRIBE HISTORY {t} LIMIT {since}"))
            .await?;
        let col = |name: &str| r.columns.iter().position(|c| c.name == name);
        let (Some(op), Some(user)) = (col("operation"), col("userName")) else {
            return Ok(None);
        };
        for (i, row) in r.rows.iter().enumerate() {
            let operation = row.get(op).cloned().flatten().unwrap_or_default();
            let resets = operation.starts_with("CREATE")
                || operation.starts_with("REPLACE")
                || operation == "TRUNCATE"
                || operation == "RESTORE";
            if resets {
                return Ok(Some(format!(
                    "table {table} was changed by {operation} (version {}, by {}) after the last load: a full reload",
                    version_of(&r, i).map(|v| v.to_string()).unwrap_or_default(),
                    row.get(user).cloned().flatten().unwrap_or_default()
                )));
            }
        }
        Ok(None)
    }

    async fn create(&self, t: &str, cols: &[&Column]) -> Result<(), LoadError> {
        let defs: Vec<String> = cols
            .iter()
            .map(|c| format!("{} {}", ident(&c.name), c.spark_type))
            .collect();
        self.run(&format!(
            "CREATE TABLE IF NOT EXISTS {t} ({}) USING DELTA",
            defs.join(", ")
        ))
        .await?;
        Ok(())
    }

    /// The table's columns and types; `None` when it does not exist.
    async fn describe(&self, table: &UcName) -> Result<Option<Vec<Column>>, LoadError> {
        let r = match self.run(&format!("DESCRIBE TABLE {}", quoted(table))).await {
            Err(e) if missing(&e) => return Ok(None),
            r => r?,
        };
        Ok(Some(
            r.rows
                .iter()
                .filter_map(|row| {
                    let name = row.first().cloned().flatten()?;
                    let ty = row.get(1).cloned().flatten()?;
                    // Partition and detail sections start with '#'.
                    (!name.trim().is_empty() && !name.starts_with('#')).then_some(Column {
                        name,
                        spark_type: ty,
                    })
                })
                .collect(),
        ))
    }

    /// Adds new columns and widens types Delta can widen; fails on any
    /// other difference, naming the column, both types and what to do.
    async fn evolve(
        &self,
        spec: &LoadSpec,
        existing: &[Column],
        landed: &[&Column],
    ) -> Result<Vec<String>, LoadError> {
        let t = quoted(&spec.table);
        let mut add = Vec::new();
        let mut widen = Vec::new();
        for c in landed {
            match existing
                .iter()
                .find(|e| e.name.eq_ignore_ascii_case(&c.name))
            {
                None => add.push(*c),
                Some(e) if types::normalise(&e.spark_type) == types::normalise(&c.spark_type) => {}
                Some(e) if types::widens(&e.spark_type, &c.spark_type) => widen.push((e, *c)),
                Some(e) => {
                    let was = types::normalise(&e.spark_type);
                    return Err(LoadError::Drift {
                        table: spec.table.to_string(),
                        message: format!(
                            "column {} is {} in the table but the query now gives {}, which Delta cannot widen it to; \
                             change the query to return {} (CAST), or replace the table (mode full) or drop the column first",
                            c.name, was, c.spark_type, was
                        ),
                    });
                }
            }
        }
        let mut changes = Vec::new();
        if !add.is_empty() {
            let defs: Vec<String> = add
                .iter()
                .map(|c| format!("{} {}", ident(&c.name), c.spark_type))
                .collect();
            self.run(&format!(
                "ALTER TABLE {t} ADD COLUMNS ({})",
                defs.join(", ")
            ))
            .await?;
            changes.extend(
                add.iter()
                    .map(|c| format!("added {} {}", c.name, c.spark_type)),
            );
        }
        if !widen.is_empty() {
            self.run(&format!(
                "ALTER TABLE {t} SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')"
            ))
            .await?;
            for (e, c) in widen {
                self.run(&format!(
                    "ALTER TABLE {t} ALTER COLUMN {} TYPE {}",
                    ident(&e.name),
                    c.spark_type
                ))
                .await?;
                changes.push(format!(
                    "widened {} {} to {}",
                    e.name, e.spark_type, c.spark_type
                ));
            }
        }
        Ok(changes)
    }

    async fn table_version(&self, t: &str) -> Result<Option<i64>, LoadError> {
        let r = self.run(&format!("DESCRIBE HISTORY {t} LIMIT 1")).await?;
        Ok(version_of(&r, 0))
    }
}

/// The `version` of row `i` of a DESCRIBE HISTORY result.
fn version_of(r: &JsonResult, i: usize) -> Option<i64> {
    let c = r
        .columns
        .iter()
        .position(|c| c.name == "version")
        .unwrap_or(0);
    r.rows
        .get(i)
        .and_then(|row| row.get(c).cloned().flatten())
        .and_then(|v| v.parse().ok())
}

/// Whether Databricks said the table (or its schema) is not there.
fn missing(e: &LoadError) -> bool {
    matches!(e, LoadError::Databricks(StatementError::Failed { code, message })
        if ["TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND"]
            .iter()
            .any(|k| code.contains(k) || message.contains(k)))
}

/// What [`versions`] finds.
pub(crate) struct Versions {
    /// Change Tracking's current version (its database's).
    pub(crate) current: i64,
    /// The tracked table's minimum valid version.
    pub(crate) min: i64,
    /// Whether the changes can be read in one SNAPSHOT transaction: every
    /// database the query and the tracked table name allows snapshot
    /// isolation (`sys.databases.snapshot_isolation_state` 1; SQL Server
    /// refuses a snapshot transaction's read in any other, error 3952).
    pub(crate) snapshot: bool,
}

/// Change Tracking's current version and the tracked table's minimum
/// valid one. Both are per database, so they are asked in the tracked
/// table's database (`USE`; the caller discards the connection after).
/// With the query's text, also whether its read can be one SNAPSHOT
/// transaction.
pub(crate) async fn versions(
    conn: &mut Connection,
    tracked: &str,
    query: Option<&str>,
) -> Result<Versions, LoadError> {
    let parts = crate::sqlserver::names::split_name(tracked).unwrap_or_default();
    let (use_db, object) = match parts.as_slice() {
        [d, s, t] => (
            format!("USE {};\n", source::bracket(d)),
            format!("{}.{}", source::bracket(s), source::bracket(t)),
        ),
        _ => (String::new(), tracked.to_string()),
    };
    // The databases the read touches (the connection's, `@home`, for
    // names without one), when the query can be read as a whole.
    let databases: Option<Vec<String>> = query.and_then(|q| {
        let mut names: Vec<Option<String>> = crate::auth::referenced_tables(q)
            .ok()?
            .into_iter()
            .map(|t| t.database)
            .collect();
        names.push((parts.len() == 3).then(|| parts[0].clone()));
        let mut list: Vec<String> = names
            .into_iter()
            .map(|d| match d {
                Some(d) => format!("N'{}'", d.replace('\'', "''")),
                None => "@home".to_string(),
            })
            .collect();
        list.sort();
        list.dedup();
        Some(list)
    });
    let counts = match &databases {
        Some(list) => {
            let list = list.join(", ");
            format!(
                ", CAST((SELECT COUNT(*) FROM sys.databases WHERE name IN ({list})) AS bigint), \
                 CAST((SELECT COUNT(*) FROM sys.databases WHERE name IN ({list}) \
                 AND snapshot_isolation_state = 1) AS bigint)"
            )
        }
        None => String::new(),
    };
    let sql = format!(
        "DECLARE @home sysname = DB_NAME();\n{use_db}SELECT CHANGE_TRACKING_CURRENT_VERSION(), \
         CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID(N'{object}')), \
         CAST(OBJECT_ID(N'{object}') AS bigint){counts}",
        object = object.replace('\'', "''")
    );
    let row = async { conn.simple_query(sql).await?.into_row().await }
        .await
        .map_err(|e| LoadError::SqlServer(e.to_string()))?;
    let get = |i: usize| {
        row.as_ref()
            .and_then(|r| r.try_get::<i64, _>(i).ok().flatten())
    };
    let current = get(0).ok_or_else(|| {
        LoadError::Spec(format!(
            "change tracking is not enabled on the database of {tracked} (ALTER DATABASE ... SET CHANGE_TRACKING = ON)"
        ))
    })?;
    if get(2).is_none() {
        return Err(LoadError::Spec(format!(
            "{tracked} does not exist (or the login may not see it) in {}",
            if use_db.is_empty() {
                "the connection's database"
            } else {
                "its database"
            }
        )));
    }
    let min = get(1).ok_or_else(|| {
        LoadError::Spec(format!(
            "change tracking is not enabled on {tracked} (ALTER TABLE ... ENABLE CHANGE_TRACKING)"
        ))
    })?;
    let snapshot =
        matches!((get(3), get(4)), (Some(all), Some(allowing)) if all > 0 && all == allowing);
    Ok(Versions {
        current,
        min,
        snapshot,
    })
}
