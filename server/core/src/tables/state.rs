//! Where a table load left off, kept in Databricks (a Delta table,
//! `bridge.state.table_loads` by default) so that any bridge — another
//! region's, a restarted one — continues from it. One row per target
//! table and query (`<country>/<query>`: two queries loading one table
//! each keep their own cursor), written after the table's own change; if a
//! bridge dies between the two, the next run reads the same rows again and
//! the MERGE is idempotent. Only bridges should be granted MODIFY on it: a changed row
//! can make a load skip or repeat rows (never run SQL: values are re-parsed
//! as the cursor's type before use).

use std::time::Duration;

use crate::databricks::names::UcName;
use crate::databricks::statements::{JsonResult, Parameter, StatementError};
use crate::databricks::Workspace;

/// The default state table.
pub const STATE_TABLE: &str = "bridge.state.table_loads";

const DDL: &str = "(
    table_name    STRING NOT NULL,
    query         STRING,
    mode          STRING,
    cursor_column STRING,
    cursor_value  STRING,
    cursor_kind   STRING,
    ct_version    BIGINT,
    table_version BIGINT,
    updated_at    TIMESTAMP,
    updated_by    STRING
) USING DELTA COMMENT 'SQL-Databricks Bridge: where each table load left off'";

/// One table's saved position.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadState {
    pub mode: String,
    pub cursor_column: Option<String>,
    pub cursor_value: Option<String>,
    pub cursor_kind: Option<String>,
    pub ct_version: Option<i64>,
    /// The table's Delta version the load left.
    pub table_version: Option<i64>,
}

#[derive(Clone)]
pub struct StateTable {
    ws: Workspace,
    warehouse: String,
    quoted: String,
    deadline: Duration,
}

fn quote(name: &UcName) -> String {
    [&name.catalog, &name.schema, &name.name]
        .iter()
        .map(|p| format!("`{}`", p.replace('`', "``")))
        .collect::<Vec<_>>()
        .join(".")
}

impl StateTable {
    pub fn new(ws: Workspace, warehouse: &str, name: &UcName) -> StateTable {
        StateTable {
            ws,
            warehouse: warehouse.to_string(),
            quoted: quote(name),
            deadline: Duration::from_secs(300),
        }
    }

    async fn run(&self, sql: &str, params: &[Parameter]) -> Result<JsonResult, StatementError> {
        self.ws
            .execute_json(&self.warehouse, sql, params, self.deadline)
            .await
    }

    /// Creates the schema and table when missing.
    pub async fn ensure(&self) -> Result<(), StatementError> {
        let schema = self.quoted.rsplit_once('.').map(|(s, _)| s).unwrap_or("");
        self.run(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"), &[])
            .await?;
        self.run(
            &format!("CREATE TABLE IF NOT EXISTS {} {DDL}", self.quoted),
            &[],
        )
        .await?;
        Ok(())
    }

    /// The saved position of `query` loading `table`, if any.
    pub async fn get(
        &self,
        table: &UcName,
        query: &str,
    ) -> Result<Option<LoadState>, StatementError> {
        let r = self
            .run(
                &format!(
                    "SELECT mode, cursor_column, cursor_value, cursor_kind, ct_version, table_version FROM {} \
                     WHERE table_name = :t AND query = :q ORDER BY updated_at DESC LIMIT 1",
                    self.quoted
                ),
                &[
                    Parameter::new("t", table.to_string()),
                    Parameter::new("q", query),
                ],
            )
            .await?;
        Ok(r.rows.first().map(|row| {
            let get = |i: usize| row.get(i).cloned().flatten();
            LoadState {
                mode: get(0).unwrap_or_default(),
                cursor_column: get(1),
                cursor_value: get(2),
                cursor_kind: get(3),
                ct_version: get(4).and_then(|v| v.parse().ok()),
                table_version: get(5).and_then(|v| v.parse().ok()),
            }
        }))
    }

    /// Saves where `query` left `table` after a load.
    pub async fn put(
        &self,
        table: &UcName,
        query: &str,
        s: &LoadState,
        by: &str,
    ) -> Result<(), StatementError> {
        let table_version = s.table_version;
        let sql = format!(
            "MERGE INTO {} AS t USING (SELECT :t AS table_name, :q AS query) AS s \
             ON t.table_name = s.table_name AND t.query = s.query \
             WHEN MATCHED THEN UPDATE SET mode = :m, cursor_column = :cc, cursor_value = :cv, \
               cursor_kind = :ck, ct_version = :ctv, table_version = :tv, updated_at = current_timestamp(), updated_by = :by \
             WHEN NOT MATCHED THEN INSERT (table_name, query, mode, cursor_column, cursor_value, cursor_kind, \
               ct_version, table_version, updated_at, updated_by) \
               VALUES (:t, :q, :m, :cc, :cv, :ck, :ctv, :tv, current_timestamp(), :by)",
            self.quoted
        );
        self.run(
            &sql,
            &[
                Parameter::new("t", table.to_string()),
                Parameter::new("q", query),
                Parameter::new("m", &s.mode),
                Parameter::typed("cc", s.cursor_column.clone(), "STRING"),
                Parameter::typed("cv", s.cursor_value.clone(), "STRING"),
                Parameter::typed("ck", s.cursor_kind.clone(), "STRING"),
                Parameter::typed("ctv", s.ct_version.map(|v| v.to_string()), "BIGINT"),
                Parameter::typed("tv", table_version.map(|v| v.to_string()), "BIGINT"),
                Parameter::new("by", by),
            ],
        )
        .await?;
        Ok(())
    }
}
