//! INSERT INTO (and INSERT ... REPLACE WHERE, `replace_where.rs`): values
//! or a query's rows cast to the table's columns, in one commit.

use sqlparser::ast::{self, Expr};

use super::catalog::{column, quote_ident, ColumnInfo};
use super::context::{predicate_param, Exec};
use super::error::{map_sqlite_error as db, SqlError};
use super::history::{self, Operation};
use super::result::{counts, ResultSet};
use super::rewrite::{self, name_parts, TempTypes};

impl Exec<'_> {
    pub(super) fn insert(
        &self,
        ins: ast::Insert,
        temps: &mut TempTypes,
    ) -> Result<ResultSet, SqlError> {
        self.insert_with(ins, temps, None)
    }

    /// INSERT INTO / INSERT OVERWRITE, and `INSERT INTO ... REPLACE WHERE
    /// predicate` when `replace` is given (`replace_where.rs`). An overwrite
    /// or replace computes its rows before it removes any, so a query that
    /// reads the target reads it as it was; the removal and the insert are
    /// one version (`WRITE`, mode `Overwrite`).
    pub(super) fn insert_with(
        &self,
        ins: ast::Insert,
        temps: &mut TempTypes,
        replace: Option<Expr>,
    ) -> Result<ResultSet, SqlError> {
        let pt = self.param_types();
        let scope = self.scope(&pt);
        let name = match &ins.table {
            ast::TableObject::TableName(n) => n.clone(),
            _ => return Err(SqlError::unsupported("INSERT INTO a table function")),
        };
        let table = scope.table(&name)?;
        let targets: Vec<&ColumnInfo> = if ins.columns.is_empty() {
            table.columns.iter().collect()
        } else {
            let mut v = Vec::new();
            for c in &ins.columns {
                let cname = name_parts(c).pop().unwrap_or_default();
                v.push(column(&table, &cname)?);
            }
            v
        };
        let Some(mut source) = ins.source else {
            return Err(SqlError::unsupported("INSERT without VALUES or SELECT"));
        };
        // REPLACE WHERE reads the rows it removes, as DELETE ... WHERE does.
        self.checks().modify_table(&table.name, replace.is_some())?;
        let reads_target = self.names_table(source.as_ref(), &scope, &table.name);
        let predicate = replace.as_ref().map(|p| predicate_param(Some(p)));
        let written = replace.as_ref().map(|p| p.to_string()).unwrap_or_default();
        let replace = match replace {
            Some(mut p) => {
                rewrite::rewrite(&scope, temps, &mut p)?;
                Some(p)
            }
            None => None,
        };
        rewrite::rewrite(&scope, temps, source.as_mut())?;
        let src_cols: Vec<String> = (1..=targets.len()).map(|i| format!("\"c{i}\"")).collect();
        let stores: Vec<String> = targets
            .iter()
            .enumerate()
            .map(|(i, c)| format!("__dbx_store(\"c{}\", '{}')", i + 1, c.ty))
            .collect();
        let names: Vec<String> = targets.iter().map(|c| quote_ident(&c.name)).collect();
        let overwrite = ins.overwrite || replace.is_some();
        let commit = history::begin(self.conn, &table.name)?;
        let n = if overwrite {
            let rows = "temp.\"__insert_rows\"";
            let alias = quote_ident(&table.name.name);
            let stored: Vec<String> = stores
                .iter()
                .zip(&names)
                .map(|(s, n)| format!("{s} AS {n}"))
                .collect();
            self.exec_count(&format!(
                "CREATE TABLE {rows} AS WITH \"__src\"({}) AS ({source}) SELECT {} FROM \"__src\"",
                src_cols.join(", "),
                stored.join(", ")
            ))?;
            temps.tables.insert(
                "__insert_rows".into(),
                targets
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.clone()))
                    .collect(),
            );
            if let Some(p) = &replace {
                // "validates that all rows match the predicate ... If any
                // values in the operation fall outside the constraint, this
                // operation fails with an error by default"
                // (https://docs.databricks.com/en/delta/selective-overwrite.html).
                let outside: i64 = self
                    .conn
                    .query_row(
                        &format!(
                            "SELECT count(*) FROM {rows} AS {alias} WHERE NOT coalesce(({p}), 0)"
                        ),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if outside > 0 {
                    return Err(SqlError::invalid(
                        "DELTA_REPLACE_WHERE_MISMATCH",
                        &format!(
                            "Written data does not conform to partial table overwrite condition or constraint '{written}'."
                        ),
                        "44000",
                    ));
                }
                self.exec_count(&format!(
                    "DELETE FROM {} AS {alias} WHERE {p}",
                    table.name.physical()
                ))?;
            } else {
                self.exec_count(&format!("DELETE FROM {}", table.name.physical()))?;
            }
            self.exec_count(&format!(
                "INSERT INTO {} ({}) SELECT {} FROM {rows}",
                table.name.physical(),
                names.join(", "),
                names.join(", ")
            ))?
        } else {
            self.exec_count(&format!(
                "WITH \"__src\"({}) AS ({source}) INSERT INTO {} ({}) SELECT {} FROM \"__src\"",
                src_cols.join(", "),
                table.name.physical(),
                names.join(", "),
                stores.join(", ")
            ))?
        };
        // An INSERT commits a WRITE even when it adds no row.
        let mode = if overwrite { "Overwrite" } else { "Append" };
        let mut op = Operation::new("WRITE")
            .param("mode", mode)
            .param("partitionBy", "[]");
        if let Some(p) = predicate {
            op = op.param("predicate", p);
        }
        history::finish(
            self.conn,
            &commit,
            self.caller,
            &op.metric("numOutputRows", n)
                .blind_append(!overwrite && !reads_target),
        )?;
        Ok(counts(&[
            ("num_affected_rows", n),
            ("num_inserted_rows", n),
        ]))
    }
}
