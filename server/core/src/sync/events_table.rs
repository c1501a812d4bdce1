//! The events table in Databricks (`bridge.events.bridge_events` by
//! default), through the Statement Execution API with a named parameter
//! for every value. Claims are conditional UPDATEs checked by
//! `num_affected_rows`, so several bridges never take the same event.

use std::time::Duration;

use crate::databricks::statements::{JsonResult, Parameter, StatementError};
use crate::databricks::Workspace;

use super::event::{source_name, EventStatus, Operation, SyncEvent};

#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("events table {table}: {source}")]
    Statement {
        table: String,
        source: StatementError,
    },
    #[error("events table {0}: {1}")]
    Invalid(String, String),
    #[error("events table {0} does not exist; create it with `sql-databricks-bridge sync init`")]
    Missing(String),
}

/// Whether a statement lost a Delta commit race: two writers changed the
/// same files and the later commit was refused
/// (https://docs.databricks.com/en/optimizations/isolation-level.html#write-conflicts;
/// `ConcurrentAppendException`, `ConcurrentDeleteReadException`, ...,
/// error classes `DELTA_CONCURRENT_*`). For a claim that is a lost race,
/// not an error.
pub fn commit_conflict(e: &StatementError) -> bool {
    matches!(e, StatementError::Failed { code, message }
        if [
            "DELTA_CONCURRENT", "ConcurrentAppendException", "ConcurrentDeleteReadException",
            "ConcurrentDeleteDeleteException", "ConcurrentTransactionException",
            "ConcurrentWriteException", "MetadataChangedException", "DELTA_METADATA_CHANGED",
        ]
        .iter()
        .any(|k| code.contains(k) || message.contains(k)))
}

/// Which events a bridge takes: targets in the databases it holds, and
/// (when it is the one that does) targets that name no database.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routing {
    /// The databases on this bridge's SQL Server, as named there.
    pub databases: Vec<String>,
    /// Take targets without a database (they are in this bridge's own).
    pub unqualified: bool,
}

impl Routing {
    /// A condition on `target_table` and its parameters (prefixed `db`):
    /// the database part, plain, bracketed or double-quoted (every spelling
    /// `TargetTable::parse` accepts), compared case-insensitively
    /// as SQL Server compares names. It narrows the query so other
    /// regions' backlog cannot fill a poll; each event is checked exactly
    /// after it is read.
    fn condition(&self) -> (String, Vec<Parameter>) {
        let mut conds = Vec::new();
        let mut params = Vec::new();
        for (i, d) in self.databases.iter().enumerate() {
            let d = d.to_lowercase();
            for (j, prefix) in [format!("{d}."), format!("[{d}]."), format!("\"{d}\".")]
                .iter()
                .enumerate()
            {
                let name = format!("db{i}_{j}");
                // A prefix compared as a string, not a LIKE pattern: names
                // may hold `_` and `%`.
                conds.push(format!(
                    "substr(lower(trim(target_table)), 1, {}) = :{name}",
                    prefix.chars().count()
                ));
                params.push(Parameter::new(&name, prefix.clone()));
            }
        }
        if self.unqualified {
            // Not database.schema.table (a schema.table, or a name that
            // does not parse, which this bridge then fails with the
            // reason); dots inside brackets are rare and every event is
            // checked again after reading.
            conds.push("(NOT target_table LIKE '%.%.%' OR target_table LIKE '%.%.%.%')".into());
        }
        if conds.is_empty() {
            ("1 = 0".into(), params)
        } else {
            (format!("({})", conds.join(" OR ")), params)
        }
    }
}

/// Whether Databricks said the table (or its schema or catalog) is not there.
fn not_found(e: &StatementError) -> bool {
    matches!(e, StatementError::Failed { code, message }
        if ["TABLE_OR_VIEW_NOT_FOUND", "SCHEMA_NOT_FOUND", "CATALOG_NOT_FOUND", "NO_SUCH_CATALOG_EXCEPTION"]
            .iter()
            .any(|k| code.contains(k) || message.contains(k)))
}

const COLUMNS: &str = "event_id, operation, source_table, target_table, primary_keys, filter, \
columns, requested_by, status, rows_expected, rows_affected, discrepancy, error_message, attempts, \
claimed_by, claimed_at, created_at, completed_at";

/// The columns `sync init` creates (Delta; Spark types), with Change Data
/// Feed on: the feed and the table's history are how the bridge learns who
/// wrote each event (see `provenance`).
const DDL: &str = "(
    event_id       STRING NOT NULL,
    operation      STRING NOT NULL,
    source_table   STRING NOT NULL,
    target_table   STRING NOT NULL,
    primary_keys   ARRAY<STRING>,
    filter         STRING,
    columns        ARRAY<STRING>,
    requested_by   STRING,
    status         STRING,
    rows_expected  BIGINT,
    rows_affected  BIGINT,
    discrepancy    BIGINT,
    error_message  STRING,
    attempts       INT,
    claimed_by     STRING,
    claimed_at     TIMESTAMP,
    created_at     TIMESTAMP,
    completed_at   TIMESTAMP
) USING DELTA COMMENT 'SQL-Databricks Bridge sync events'
TBLPROPERTIES (delta.enableChangeDataFeed = true)";

/// What a caller asks for; the bridge fills in the rest.
#[derive(Clone, Debug)]
pub struct NewEvent {
    /// The event's id, chosen by the caller so that writing it again (a
    /// retry after a lost answer) finds it instead of adding a second one.
    pub event_id: String,
    pub operation: Operation,
    pub source_table: String,
    pub target_table: String,
    pub primary_keys: Vec<String>,
    pub columns: Option<Vec<String>>,
    pub requested_by: String,
}

/// What a claim got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    Won,
    Lost,
    /// The id is on this many rows; all were claimed.
    Duplicated(u64),
}

#[derive(Clone)]
pub struct EventsTable {
    ws: Workspace,
    warehouse: String,
    /// As configured (for messages).
    name: String,
    /// Backquoted, safe to paste.
    quoted: String,
    deadline: Duration,
}

fn ts(d: chrono::DateTime<chrono::Utc>) -> String {
    d.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

impl EventsTable {
    pub fn new(ws: Workspace, warehouse: &str, name: &str) -> Result<EventsTable, EventsError> {
        let quoted = source_name(name).map_err(|e| EventsError::Invalid(name.into(), e.0))?;
        Ok(EventsTable {
            ws,
            warehouse: warehouse.to_string(),
            name: name.to_string(),
            quoted,
            deadline: Duration::from_secs(120),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Backquoted, safe to paste into SQL.
    pub fn quoted(&self) -> &str {
        &self.quoted
    }

    pub(super) async fn run(
        &self,
        sql: &str,
        params: &[Parameter],
    ) -> Result<JsonResult, EventsError> {
        self.ws
            .execute_json(&self.warehouse, sql, params, self.deadline)
            .await
            .map_err(|source| self.error(source))
    }

    fn error(&self, source: StatementError) -> EventsError {
        if not_found(&source) {
            EventsError::Missing(self.name.clone())
        } else {
            EventsError::Statement {
                table: self.name.clone(),
                source,
            }
        }
    }

    /// Rows changed by a conditional UPDATE (`num_affected_rows`); safe to
    /// retry on 5xx, since a second run changes nothing the first did not.
    async fn dml(&self, sql: &str, params: &[Parameter]) -> Result<u64, EventsError> {
        let r = self
            .ws
            .execute_json_idempotent(&self.warehouse, sql, params, self.deadline)
            .await
            .map_err(|source| self.error(source))?;
        let i = r
            .columns
            .iter()
            .position(|c| c.name == "num_affected_rows")
            .unwrap_or(0);
        Ok(r.rows
            .first()
            .and_then(|row| row.get(i).cloned().flatten())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Creates the schema and table when missing, and turns Change Data
    /// Feed on for a table that has it off (`ALTER TABLE ... SET
    /// TBLPROPERTIES`,
    /// https://docs.databricks.com/en/delta/delta-change-data-feed.html#enable-change-data-feed);
    /// returns whether the table was created.
    pub async fn init(&self) -> Result<bool, EventsError> {
        let existed = self.exists().await?;
        let schema = self.quoted.rsplit_once('.').map(|(s, _)| s).unwrap_or("");
        self.run(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"), &[])
            .await?;
        self.run(
            &format!("CREATE TABLE IF NOT EXISTS {} {DDL}", self.quoted),
            &[],
        )
        .await?;
        if existed && !self.feed_on().await? {
            self.run(
                &format!(
                    "ALTER TABLE {} SET TBLPROPERTIES (delta.enableChangeDataFeed = true)",
                    self.quoted
                ),
                &[],
            )
            .await?;
        }
        Ok(!existed)
    }

    /// Whether Change Data Feed is on (`SHOW TBLPROPERTIES`).
    async fn feed_on(&self) -> Result<bool, EventsError> {
        let r = self
            .run(&format!("SHOW TBLPROPERTIES {}", self.quoted), &[])
            .await?;
        Ok(r.rows.iter().any(|row| {
            row.first()
                .cloned()
                .flatten()
                .is_some_and(|k| k.eq_ignore_ascii_case("delta.enableChangeDataFeed"))
                && row
                    .get(1)
                    .cloned()
                    .flatten()
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        }))
    }

    async fn exists(&self) -> Result<bool, EventsError> {
        match self
            .run(
                &format!("SELECT event_id FROM {} LIMIT 0", self.quoted),
                &[],
            )
            .await
        {
            Ok(_) => Ok(true),
            Err(EventsError::Missing(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Events to take, oldest first: pending ones, and claims older than
    /// `lease`, whose targets `routing` says are this bridge's.
    pub async fn claimable(
        &self,
        lease: Duration,
        limit: usize,
        routing: &Routing,
    ) -> Result<Vec<SyncEvent>, EventsError> {
        let cutoff = chrono::Utc::now() - chrono::Duration::from_std(lease).unwrap_or_default();
        let (mine, mut params) = routing.condition();
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE (status = 'pending' OR status IS NULL \
             OR (status = 'processing' AND (claimed_at IS NULL OR claimed_at < :cutoff))) \
             AND {mine} ORDER BY created_at LIMIT {}",
            self.quoted,
            limit.max(1)
        );
        params.push(Parameter::typed("cutoff", Some(ts(cutoff)), "TIMESTAMP"));
        let r = self.run(&sql, &params).await?;
        self.events(r)
    }

    /// Takes an event for `me`: `Won`, `Lost` to another instance, or
    /// `Duplicated` when its id is on several rows (all of them were taken,
    /// to be refused: nobody can tell which is meant).
    pub async fn claim(&self, id: &str, me: &str, lease: Duration) -> Result<Claim, EventsError> {
        let now = chrono::Utc::now();
        let cutoff = now - chrono::Duration::from_std(lease).unwrap_or_default();
        let sql = format!(
            "UPDATE {} SET status = 'processing', claimed_by = :me, claimed_at = :now, \
             attempts = coalesce(attempts, 0) + 1 \
             WHERE event_id = :id AND (status = 'pending' OR status IS NULL \
             OR (status = 'processing' AND (claimed_at IS NULL OR claimed_at < :cutoff)))",
            self.quoted
        );
        let n = self
            .dml(
                &sql,
                &[
                    Parameter::new("me", me),
                    Parameter::typed("now", Some(ts(now)), "TIMESTAMP"),
                    Parameter::new("id", id),
                    Parameter::typed("cutoff", Some(ts(cutoff)), "TIMESTAMP"),
                ],
            )
            .await;
        match n {
            Ok(1) => Ok(Claim::Won),
            Ok(0) => {
                // A claim retried after a lost answer finds the row already
                // taken — by itself. Only this process writes its id.
                Ok(match self.get(id).await? {
                    Some(e)
                        if e.status == EventStatus::Processing
                            && e.claimed_by.as_deref() == Some(me) =>
                    {
                        Claim::Won
                    }
                    _ => Claim::Lost,
                })
            }
            Ok(n) => Ok(Claim::Duplicated(n)),
            Err(EventsError::Statement { source, .. }) if commit_conflict(&source) => {
                Ok(Claim::Lost)
            }
            Err(e) => Err(e),
        }
    }

    /// Renews `me`'s claim while it applies the event, so a long apply is
    /// not taken over; false when the claim is no longer `me`'s.
    pub async fn renew(&self, id: &str, me: &str) -> Result<bool, EventsError> {
        let sql = format!(
            "UPDATE {} SET claimed_at = :now \
             WHERE event_id = :id AND claimed_by = :me AND status = 'processing'",
            self.quoted
        );
        let params = [
            Parameter::typed("now", Some(ts(chrono::Utc::now())), "TIMESTAMP"),
            Parameter::new("id", id),
            Parameter::new("me", me),
        ];
        Ok(self.dml_retrying_conflicts(&sql, &params).await? == 1)
    }

    /// Gives an event `me` holds back (pending, unclaimed; `attempts` keeps
    /// counting), with the last error, for a later poll to try again.
    pub async fn release(&self, id: &str, me: &str, error: &str) -> Result<bool, EventsError> {
        let sql = format!(
            "UPDATE {} SET status = 'pending', claimed_by = NULL, claimed_at = NULL, \
             error_message = :error WHERE event_id = :id AND claimed_by = :me AND status = 'processing'",
            self.quoted
        );
        let params = [
            Parameter::new("error", error),
            Parameter::new("id", id),
            Parameter::new("me", me),
        ];
        Ok(self.dml_retrying_conflicts(&sql, &params).await? == 1)
    }

    /// A conditional UPDATE of a row this bridge holds: a commit conflict
    /// (another bridge touched another row in the same files) is tried
    /// again, since the condition still decides.
    async fn dml_retrying_conflicts(
        &self,
        sql: &str,
        params: &[Parameter],
    ) -> Result<u64, EventsError> {
        let mut tries = 0;
        loop {
            match self.dml(sql, params).await {
                Err(EventsError::Statement { source, .. })
                    if commit_conflict(&source) && tries < 5 =>
                {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100 * (1 << tries))).await;
                }
                other => return other,
            }
        }
    }

    /// Records the outcome of an event `me` holds; false when the claim
    /// was lost (another instance took over after the lease).
    #[allow(clippy::too_many_arguments)]
    pub async fn finish(
        &self,
        id: &str,
        me: &str,
        status: EventStatus,
        rows_expected: Option<u64>,
        rows_affected: Option<u64>,
        error: Option<&str>,
    ) -> Result<bool, EventsError> {
        let discrepancy = match (rows_expected, rows_affected) {
            (Some(e), Some(a)) if e != a => Some((e as i64 - a as i64).to_string()),
            _ => None,
        };
        let sql = format!(
            "UPDATE {} SET status = :status, rows_expected = :expected, rows_affected = :affected, \
             discrepancy = :discrepancy, error_message = :error, completed_at = :now \
             WHERE event_id = :id AND claimed_by = :me AND status = 'processing'",
            self.quoted
        );
        let n = self
            .dml_retrying_conflicts(
                &sql,
                &[
                    Parameter::new("status", status.as_str()),
                    Parameter::typed("expected", rows_expected.map(|v| v.to_string()), "BIGINT"),
                    Parameter::typed("affected", rows_affected.map(|v| v.to_string()), "BIGINT"),
                    Parameter::typed("discrepancy", discrepancy, "BIGINT"),
                    Parameter::typed("error", error.map(str::to_string), "STRING"),
                    Parameter::typed("now", Some(ts(chrono::Utc::now())), "TIMESTAMP"),
                    Parameter::new("id", id),
                    Parameter::new("me", me),
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Writes a pending event unless its id is already there (so a retry
    /// after a lost answer writes nothing twice); returns it as stored.
    pub async fn insert(&self, e: &NewEvent) -> Result<SyncEvent, EventsError> {
        let id = e.event_id.clone();
        let mut params = vec![
            Parameter::new("id", &id),
            Parameter::new("operation", e.operation.as_str()),
            Parameter::new("source", &e.source_table),
            Parameter::new("target", &e.target_table),
            Parameter::new("requested_by", &e.requested_by),
            Parameter::typed("now", Some(ts(chrono::Utc::now())), "TIMESTAMP"),
        ];
        let array = |prefix: &str, items: &[String], params: &mut Vec<Parameter>| {
            let names: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let n = format!("{prefix}{i}");
                    params.push(Parameter::new(&n, v));
                    format!(":{n}")
                })
                .collect();
            if names.is_empty() {
                "CAST(array() AS ARRAY<STRING>)".to_string()
            } else {
                format!("array({})", names.join(", "))
            }
        };
        let keys = array("pk", &e.primary_keys, &mut params);
        let columns = match &e.columns {
            Some(c) => array("col", c, &mut params),
            None => "NULL".to_string(),
        };
        let sql = format!(
            "MERGE INTO {} AS t USING (SELECT :id AS event_id) AS s ON t.event_id = s.event_id \
             WHEN NOT MATCHED THEN INSERT (event_id, operation, source_table, target_table, primary_keys, columns, \
             requested_by, status, attempts, created_at) \
             VALUES (:id, :operation, :source, :target, {keys}, {columns}, :requested_by, 'pending', 0, :now)",
            self.quoted
        );
        self.ws
            .execute_json_idempotent(&self.warehouse, &sql, &params, self.deadline)
            .await
            .map_err(|source| self.error(source))?;
        self.get(&id).await?.ok_or_else(|| {
            EventsError::Invalid(
                self.name.clone(),
                format!("event {id} vanished after insert"),
            )
        })
    }

    pub async fn get(&self, id: &str) -> Result<Option<SyncEvent>, EventsError> {
        let r = self
            .run(
                &format!("SELECT {COLUMNS} FROM {} WHERE event_id = :id", self.quoted),
                &[Parameter::new("id", id)],
            )
            .await?;
        self.parse_events(r).into_iter().next().transpose()
    }

    /// Newest first, optionally one user's and one status.
    pub async fn list(
        &self,
        requested_by: Option<&str>,
        status: Option<EventStatus>,
        limit: usize,
    ) -> Result<Vec<SyncEvent>, EventsError> {
        let mut params = vec![];
        let mut conds = vec!["1 = 1".to_string()];
        if let Some(u) = requested_by {
            conds.push("requested_by = :user".into());
            params.push(Parameter::new("user", u));
        }
        if let Some(s) = status {
            conds.push("(status = :status OR (:status = 'pending' AND status IS NULL))".into());
            params.push(Parameter::new("status", s.as_str()));
        }
        let sql = format!(
            "SELECT {COLUMNS} FROM {} WHERE {} ORDER BY created_at DESC LIMIT {}",
            self.quoted,
            conds.join(" AND "),
            limit.clamp(1, 1000)
        );
        let r = self.run(&sql, &params).await?;
        self.events(r)
    }

    /// The rows as events; a row whose `status` is none the bridge knows
    /// (someone wrote it by hand) is left out with a warning, so one bad
    /// row does not break every list.
    fn events(&self, r: JsonResult) -> Result<Vec<SyncEvent>, EventsError> {
        Ok(self
            .parse_events(r)
            .into_iter()
            .filter_map(|e| {
                e.map_err(|e| tracing::warn!(error = %e, "events table row left out"))
                    .ok()
            })
            .collect())
    }

    fn parse_events(&self, r: JsonResult) -> Vec<Result<SyncEvent, EventsError>> {
        let idx = |name: &str| r.columns.iter().position(|c| c.name == name);
        let cols: Vec<Option<usize>> = COLUMNS.split(", ").map(|c| idx(c.trim())).collect();
        let mut out = Vec::with_capacity(r.rows.len());
        for row in &r.rows {
            let get = |i: usize| -> Option<String> {
                cols.get(i)
                    .copied()
                    .flatten()
                    .and_then(|j| row.get(j).cloned().flatten())
            };
            let num = |i: usize| get(i).and_then(|v| v.parse::<i64>().ok());
            let list = |i: usize| get(i).map(|v| parse_array(&v));
            // The deck's INSERT names no status: a new event is pending.
            let status = get(8).unwrap_or_else(|| "pending".into());
            let Some(status) = EventStatus::parse(&status) else {
                out.push(Err(EventsError::Invalid(
                    self.name.clone(),
                    format!(
                        "event {} has unknown status '{status}'",
                        get(0).unwrap_or_default()
                    ),
                )));
                continue;
            };
            out.push(Ok(SyncEvent {
                event_id: get(0).unwrap_or_default(),
                operation: get(1).unwrap_or_default(),
                source_table: get(2).unwrap_or_default(),
                target_table: get(3).unwrap_or_default(),
                primary_keys: list(4).unwrap_or_default(),
                filter: get(5).filter(|f| !f.trim().is_empty()),
                columns: list(6).filter(|c| !c.is_empty()),
                requested_by: get(7),
                status,
                rows_expected: num(9),
                rows_affected: num(10),
                discrepancy: num(11),
                error_message: get(12),
                attempts: num(13),
                claimed_by: get(14),
                claimed_at: get(15),
                created_at: get(16),
                completed_at: get(17),
            }));
        }
        out
    }
}

/// An ARRAY<STRING> as JSON_ARRAY results carry it: JSON text.
pub(super) fn parse_array(text: &str) -> Vec<String> {
    match serde_json::from_str::<Vec<Option<String>>>(text) {
        Ok(v) => v.into_iter().flatten().collect(),
        Err(_) => text
            .trim_matches(|c| c == '[' || c == ']')
            .split(',')
            .map(|s| s.trim().trim_matches('"').to_string())
            .filter(|s| !s.is_empty())
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_conflicts_are_told_from_other_failures() {
        let failed = |code: &str, message: &str| StatementError::Failed {
            code: code.into(),
            message: message.into(),
        };
        assert!(commit_conflict(&failed(
            "DELTA_CONCURRENT_APPEND",
            "[DELTA_CONCURRENT_APPEND] ConcurrentAppendException: Files were added ..."
        )));
        assert!(commit_conflict(&failed(
            "",
            "io.delta.exceptions.ConcurrentDeleteReadException: This transaction attempted to read one or more files that were deleted"
        )));
        assert!(!commit_conflict(&failed(
            "TABLE_OR_VIEW_NOT_FOUND",
            "no such table"
        )));
    }

    #[test]
    fn routing_narrows_by_database_prefix_and_unqualified_names() {
        let r = Routing {
            databases: vec!["KWP_Colombia".into()],
            unqualified: true,
        };
        let (cond, params) = r.condition();
        assert!(
            cond.contains("substr(lower(trim(target_table)), 1, 13) = :db0_0"),
            "{cond}"
        );
        assert!(cond.contains("NOT target_table LIKE '%.%.%'"));
        assert_eq!(params.len(), 3);
        let spelled: Vec<String> = params.iter().map(|p| format!("{p:?}")).collect();
        assert!(
            spelled.iter().any(|p| p.contains("\\\"kwp_colombia\\\".")),
            "{spelled:?}"
        );
        let none = Routing::default();
        assert_eq!(none.condition().0, "1 = 0");
    }
}
