//! A Change-Tracking-enabled table as a stream whose offsets are Change
//! Tracking versions (the Spark data source's `readStream`): a first batch
//! that is the table itself, then for each range of versions (start, end]
//! the net change of every key whose last change falls in it, with its
//! operation
//! (https://learn.microsoft.com/en-us/sql/relational-databases/system-functions/changetable-transact-sql,
//! https://learn.microsoft.com/en-us/sql/relational-databases/track-changes/work-with-change-tracking-sql-server).
//!
//! A key changed again after `end` is left to the batch whose range holds
//! its last change: its values are then read as of that change, so every
//! row a batch returns is as the table held it at the batch's end (a
//! deleted row: its key only). Applied in order by key, the batches leave a
//! copy equal to the table. A batch read again (a failed micro-batch) may
//! return fewer rows, never different ones, and the next returns the rest.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{Field, Schema};

use super::source::{bracket, tracked_name};
use super::LoadError;

/// Every column nullable: a stream's batches must all have one schema, and
/// a column NOT NULL in the table is NULL in a deleted row (SQL Server's
/// own result metadata says so for the changes, not for the snapshot).
pub fn nullable(schema: &Schema) -> Arc<Schema> {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| Field::clone(f).with_nullable(true))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// `batches` under their [`nullable`] schema (the same buffers).
pub fn with_nullable(
    batches: Vec<RecordBatch>,
    schema: &Arc<Schema>,
) -> Result<Vec<RecordBatch>, arrow_schema::ArrowError> {
    batches
        .into_iter()
        .map(|b| RecordBatch::try_new(schema.clone(), b.columns().to_vec()))
        .collect()
}

/// The operation column: `I`, `U` or `D` (the snapshot's rows are `I`).
pub const OPERATION: &str = "_change_operation";
/// The Change Tracking version of the row's last change (the snapshot's:
/// the version it was planned at).
pub const VERSION: &str = "_change_version";

/// A tracked table's stream: its name, columns and primary key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeStream {
    /// `[db].[schema].[table]` as given, bracketed.
    pub tracked: String,
    pub columns: Vec<String>,
    /// The primary key, as CHANGETABLE returns it.
    pub keys: Vec<String>,
}

impl ChangeStream {
    /// The table's name checked; columns and keys as SQL Server describes
    /// them (see [`ChangeStream::describe_sql`]).
    pub fn new(
        table: &str,
        columns: Vec<String>,
        changes_columns: &[String],
    ) -> Result<ChangeStream, LoadError> {
        let tracked = tracked_name(table)?;
        // CHANGETABLE(CHANGES ...) returns its SYS_CHANGE_* columns, then
        // the tracked table's primary key columns.
        let keys: Vec<String> = changes_columns
            .iter()
            .filter(|c| !c.to_ascii_uppercase().starts_with("SYS_CHANGE_"))
            .cloned()
            .collect();
        if keys.is_empty() {
            return Err(LoadError::Spec(format!(
                "{tracked}: CHANGETABLE returned no primary key columns"
            )));
        }
        for name in [OPERATION, VERSION] {
            if columns.iter().any(|c| c.eq_ignore_ascii_case(name)) {
                return Err(LoadError::Spec(format!(
                    "{tracked} has a column named {name}, which the stream adds itself"
                )));
            }
        }
        Ok(ChangeStream {
            tracked,
            columns,
            keys,
        })
    }

    /// The queries whose empty results describe the table and its
    /// changes, at a version Change Tracking still holds. Written out, not
    /// wrapped: T-SQL parsers (sqlparser's among them) do not know
    /// CHANGETABLE.
    pub fn describe_sql(table: &str, min_valid: i64) -> Result<(String, String), LoadError> {
        let tracked = tracked_name(table)?;
        Ok((
            format!("SELECT TOP (0) * FROM {tracked}"),
            format!(
                "SELECT TOP (0) * FROM CHANGETABLE(CHANGES {tracked}, {min_valid}) AS [__bridge_ct]"
            ),
        ))
    }

    /// The batches' columns, as an empty result of the changes' query.
    pub fn schema_sql(&self, version: i64) -> String {
        let sql = self.changes_sql(version, version);
        format!("SELECT TOP (0) {}", &sql["SELECT ".len()..])
    }

    fn is_key(&self, column: &str) -> bool {
        self.keys.iter().any(|k| k.eq_ignore_ascii_case(column))
    }

    /// The first batch: every row, as operation `I` at `version`.
    pub fn snapshot_sql(&self, version: i64) -> String {
        self.marked_snapshot_sql(version, "I")
    }

    /// A batch that replaces the copy (its changes were cleaned up before
    /// they were read): every row, as operation `S` at `version` — the
    /// table as it is; a key the copy holds and this batch lacks is gone.
    pub fn resnapshot_sql(&self, version: i64) -> String {
        self.marked_snapshot_sql(version, "S")
    }

    fn marked_snapshot_sql(&self, version: i64, operation: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| format!("[__bridge_t].{}", bracket(c)))
            .collect();
        format!(
            "SELECT CAST(N'{operation}' AS nchar(1)) AS {}, CAST({version} AS bigint) AS {}, {} FROM {} AS [__bridge_t]",
            bracket(OPERATION),
            bracket(VERSION),
            cols.join(", "),
            self.tracked
        )
    }

    /// The net changes of the keys whose last change is in (start, end]:
    /// the operation, its version, the key (from Change Tracking, so a
    /// deleted row keeps it) and the row's other columns (NULL once
    /// deleted).
    pub fn changes_sql(&self, start: i64, end: i64) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let side = if self.is_key(c) {
                    "[__bridge_ct]"
                } else {
                    "[__bridge_t]"
                };
                format!("{side}.{0} AS {0}", bracket(c))
            })
            .collect();
        let on: Vec<String> = self
            .keys
            .iter()
            .map(|k| format!("[__bridge_t].{0} = [__bridge_ct].{0}", bracket(k)))
            .collect();
        format!(
            "SELECT [__bridge_ct].SYS_CHANGE_OPERATION AS {}, CAST([__bridge_ct].SYS_CHANGE_VERSION AS bigint) AS {}, {} \
             FROM CHANGETABLE(CHANGES {tracked}, {start}) AS [__bridge_ct] \
             LEFT JOIN {tracked} AS [__bridge_t] ON {} \
             WHERE [__bridge_ct].SYS_CHANGE_VERSION <= {end}",
            bracket(OPERATION),
            bracket(VERSION),
            cols.join(", "),
            on.join(" AND "),
            tracked = self.tracked,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> ChangeStream {
        ChangeStream::new(
            "Db.dbo.t",
            vec!["id".into(), "name]x".into()],
            &[
                "SYS_CHANGE_VERSION".into(),
                "SYS_CHANGE_CREATION_VERSION".into(),
                "SYS_CHANGE_OPERATION".into(),
                "SYS_CHANGE_COLUMNS".into(),
                "SYS_CHANGE_CONTEXT".into(),
                "id".into(),
            ],
        )
        .unwrap()
    }

    #[test]
    fn keys_come_from_changetable_and_deleted_rows_keep_them() {
        let s = stream();
        assert_eq!(s.tracked, "[Db].[dbo].[t]");
        assert_eq!(s.keys, vec!["id".to_string()]);
        let sql = s.changes_sql(7, 12);
        assert!(sql.contains("[__bridge_ct].[id] AS [id]"), "{sql}");
        assert!(sql.contains("[__bridge_t].[name]]x] AS [name]]x]"), "{sql}");
        assert!(
            sql.contains("CHANGETABLE(CHANGES [Db].[dbo].[t], 7)"),
            "{sql}"
        );
        assert!(sql.ends_with("SYS_CHANGE_VERSION <= 12"), "{sql}");
        assert!(s
            .schema_sql(3)
            .starts_with("SELECT TOP (0) [__bridge_ct].SYS_CHANGE_OPERATION"));
        let snap = s.snapshot_sql(12);
        assert!(
            snap.starts_with(
                "SELECT CAST(N'I' AS nchar(1)) AS [_change_operation], CAST(12 AS bigint)"
            ),
            "{snap}"
        );
    }

    #[test]
    fn a_table_without_key_or_with_the_stream_s_columns_is_refused() {
        let e = ChangeStream::new("dbo.t", vec!["a".into()], &["SYS_CHANGE_VERSION".into()])
            .unwrap_err();
        assert!(e.to_string().contains("no primary key"), "{e}");
        let e = ChangeStream::new(
            "dbo.t",
            vec!["id".into(), "_Change_Version".into()],
            &["id".into()],
        )
        .unwrap_err();
        assert!(e.to_string().contains("adds itself"), "{e}");
        assert!(ChangeStream::new("a.b.c.d", vec![], &["id".into()]).is_err());
    }
}
