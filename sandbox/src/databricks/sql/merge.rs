//! MERGE INTO, as the Databricks SQL reference describes it
//! (https://docs.databricks.com/en/sql/language-manual/delta-merge-into.html):
//!
//! ```text
//! MERGE INTO target [alias] USING source [alias] ON merge_condition
//!   { WHEN MATCHED [AND cond] THEN { DELETE | UPDATE SET * | UPDATE SET col = expr [, ...] }
//!   | WHEN NOT MATCHED [BY TARGET] [AND cond] THEN { INSERT * | INSERT (cols) VALUES (exprs) }
//!   | WHEN NOT MATCHED BY SOURCE [AND cond] THEN { DELETE | UPDATE SET col = expr [, ...] } } [...]
//! ```
//!
//! The source is a table, a subquery, `read_files('/Volumes/...')` or a
//! ``parquet.`/Volumes/...` `` path (the rewriter turns the last two into
//! temporary tables). Every decision is taken on the table as it was before
//! the statement: the source is materialised, the (target, source) pairs
//! satisfying the ON condition are computed, and for each target row,
//! source row and unmatched target row the first clause whose condition
//! holds is recorded ("the action for the first clause satisfied is
//! executed", in clause order); only then are the rows changed. The whole
//! statement runs in the statement's savepoint, so it commits one version
//! or nothing.

use sqlparser::ast::{self, Expr, MergeAction, MergeClauseKind, MergeInsertKind, TableFactor};

use super::catalog::column;
use super::catalog::{quote_ident, ColumnInfo, TableInfo};
use super::context::Exec;
use super::error::map_sqlite_error as db;
use super::error::SqlError;
use super::history::{self, Operation};
use super::result::{counts, ResultSet};
use super::rewrite::{self, name_parts, Scope, TempTypes};

const SRC: &str = "temp.\"__merge_src\"";
const PAIRS: &str = "temp.\"__merge_pairs\"";
const MATCHED: &str = "temp.\"__merge_matched\"";
const BY_SOURCE: &str = "temp.\"__merge_by_source\"";
const INSERTS: &str = "temp.\"__merge_inserts\"";
/// The target row a source row of a matched UPDATE's FROM belongs to.
const TID: &str = "\"__merge_tid\"";

/// The error Delta raises when one target row is matched by several source
/// rows and a matched clause could modify it ambiguously; SQLSTATE 21506
/// (https://docs.databricks.com/en/error-messages/error-classes.html).
fn multiple_matches() -> SqlError {
    SqlError::invalid(
        "DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE",
        "Cannot perform Merge as multiple source rows matched and attempted to modify the same target row in the Delta table in possibly conflicting ways. By SQL semantics of Merge, when multiple source rows match on the same target row, the result may be ambiguous as it is unclear which source row should be used to update or delete the matching target row. You can preprocess the source table to eliminate the possibility of multiple matches. Please refer to https://docs.databricks.com/delta/merge.html#merge-error",
        "21506",
    )
}

/// `MERGE WITH SCHEMA EVOLUTION` (Databricks Runtime 15.2 and above) evolves
/// the target's schema to the source's; the double does not, and says so
/// rather than failing to parse it.
pub(super) fn refuse_schema_evolution(text: &str) -> Result<(), SqlError> {
    let words: Vec<&str> = text.split_whitespace().take(4).collect();
    let wanted = ["MERGE", "WITH", "SCHEMA", "EVOLUTION"];
    if words.len() == 4
        && words
            .iter()
            .zip(wanted)
            .all(|(w, k)| w.eq_ignore_ascii_case(k))
    {
        return Err(SqlError::unsupported("MERGE WITH SCHEMA EVOLUTION"));
    }
    Ok(())
}

/// Which clauses a NON_LAST_* rule covers.
type ClauseKindTest = fn(&MergeClauseKind) -> bool;

/// "Each WHEN MATCHED clause, except the last one, must have a
/// matched_condition" (and likewise for the two NOT MATCHED kinds); the
/// reference names these error classes, SQLSTATE 42613. Also refuses the
/// actions the grammar does not allow for a clause kind.
fn check_conditions(m: &ast::Merge) -> Result<(), SqlError> {
    let kinds: [(&str, &str, ClauseKindTest); 3] = [
        ("NON_LAST_MATCHED_CLAUSE_OMIT_CONDITION", "MATCHED", |k| {
            *k == MergeClauseKind::Matched
        }),
        (
            "NON_LAST_NOT_MATCHED_BY_TARGET_CLAUSE_OMIT_CONDITION",
            "NOT MATCHED [BY TARGET]",
            |k| {
                matches!(
                    k,
                    MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget
                )
            },
        ),
        (
            "NON_LAST_NOT_MATCHED_BY_SOURCE_CLAUSE_OMIT_CONDITION",
            "NOT MATCHED BY SOURCE",
            |k| *k == MergeClauseKind::NotMatchedBySource,
        ),
    ];
    for (class, what, is) in kinds {
        let clauses: Vec<&ast::MergeClause> =
            m.clauses.iter().filter(|c| is(&c.clause_kind)).collect();
        if clauses.len() > 1
            && clauses[..clauses.len() - 1]
                .iter()
                .any(|c| c.predicate.is_none())
        {
            return Err(SqlError::invalid(
                class,
                &format!("When there are more than one {what} clauses in a MERGE statement, only the last {what} clause can omit the condition."),
                "42613",
            ));
        }
    }
    for c in &m.clauses {
        let ok = matches!(
            (&c.clause_kind, &c.action),
            (
                MergeClauseKind::Matched,
                MergeAction::Update(_) | MergeAction::Delete { .. }
            ) | (
                MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget,
                MergeAction::Insert(_)
            ) | (
                MergeClauseKind::NotMatchedBySource,
                MergeAction::Delete { .. }
            )
        ) || matches!(
            (&c.clause_kind, &c.action),
            (MergeClauseKind::NotMatchedBySource, MergeAction::Update(u))
                if matches!(u.kind, ast::MergeUpdateKind::Set(_))
        );
        if !ok {
            // Not in the grammar: NOT MATCHED BY SOURCE takes DELETE or
            // UPDATE SET col = expr only, NOT MATCHED only INSERT.
            return Err(SqlError::syntax(&format!(
                "WHEN {} THEN {} is not a MERGE clause",
                c.clause_kind, c.action
            )));
        }
    }
    Ok(())
}

/// `UPDATE SET *` / `INSERT *`: every target column takes the source
/// column of the same name (case-insensitive); a target column the source
/// lacks is an error and extra source columns are ignored, as without
/// schema evolution
/// (https://docs.databricks.com/en/sql/language-manual/delta-merge-into.html,
/// https://docs.databricks.com/en/delta/schema-validation.html).
fn star_columns<'t>(
    table: &'t TableInfo,
    src_cols: &[String],
    source_alias: &str,
    clause: &str,
) -> Result<Vec<(&'t ColumnInfo, String)>, SqlError> {
    table
        .columns
        .iter()
        .map(|c| {
            let Some(s) = src_cols.iter().find(|s| s.eq_ignore_ascii_case(&c.name)) else {
                return Err(SqlError::invalid(
                    "DELTA_MERGE_UNRESOLVED_EXPRESSION",
                    &format!(
                        "Cannot resolve {} in {clause} clause given columns {}.",
                        c.name,
                        src_cols.join(", ")
                    ),
                    "42601",
                ));
            };
            Ok((
                c,
                format!("__dbx_store({source_alias}.{}, '{}')", quote_ident(s), c.ty),
            ))
        })
        .collect()
}

/// MERGE's history parameters: the join condition and each clause's
/// action and condition.
fn merge_parameters(m: &ast::Merge) -> Vec<(String, String)> {
    let mut matched = Vec::new();
    let mut not_matched = Vec::new();
    let mut by_source = Vec::new();
    for c in &m.clauses {
        let action = match &c.action {
            MergeAction::Update(_) => "update",
            MergeAction::Delete { .. } => "delete",
            MergeAction::Insert(_) => "insert",
            _ => "none",
        };
        let mut v = serde_json::json!({ "actionType": action });
        if let Some(p) = &c.predicate {
            v["predicate"] = serde_json::json!(format!("({p})"));
        }
        match c.clause_kind {
            MergeClauseKind::Matched => matched.push(v),
            MergeClauseKind::NotMatchedBySource => by_source.push(v),
            _ => not_matched.push(v),
        }
    }
    vec![
        (
            "predicate".into(),
            serde_json::json!([format!("({})", m.on)]).to_string(),
        ),
        (
            "matchedPredicates".into(),
            serde_json::Value::Array(matched).to_string(),
        ),
        (
            "notMatchedPredicates".into(),
            serde_json::Value::Array(not_matched).to_string(),
        ),
        (
            "notMatchedBySourcePredicates".into(),
            serde_json::Value::Array(by_source).to_string(),
        ),
    ]
}

/// `DEFAULT` in an INSERT's VALUES: the column's default, which is NULL for
/// every column of the double (it has no DEFAULT clauses).
fn is_default(e: &Expr) -> bool {
    matches!(e, Expr::Identifier(i) if i.quote_style.is_none() && i.value.eq_ignore_ascii_case("DEFAULT"))
}

/// Row counts of one MERGE, by what changed them.
#[derive(Default)]
struct Counts {
    matched_updated: u64,
    matched_deleted: u64,
    by_source_updated: u64,
    by_source_deleted: u64,
    inserted: u64,
}

impl Counts {
    fn updated(&self) -> u64 {
        self.matched_updated + self.by_source_updated
    }
    fn deleted(&self) -> u64 {
        self.matched_deleted + self.by_source_deleted
    }
}

/// A clause's condition rewritten for SQLite (`1` without one).
fn condition(
    clause: &ast::MergeClause,
    scope: &Scope<'_>,
    temps: &mut TempTypes,
) -> Result<String, SqlError> {
    match &clause.predicate {
        Some(p) => {
            let mut p = p.clone();
            rewrite::rewrite(scope, temps, &mut p)?;
            Ok(format!("({p})"))
        }
        None => Ok("1".into()),
    }
}

impl Exec<'_> {
    /// MERGE INTO: result columns `num_affected_rows`, `num_updated_rows`,
    /// `num_deleted_rows`, `num_inserted_rows`; history operation `MERGE`.
    pub(super) fn merge(
        &self,
        m: ast::Merge,
        temps: &mut TempTypes,
    ) -> Result<ResultSet, SqlError> {
        let pt = self.param_types();
        let scope = self.scope(&pt);
        let TableFactor::Table { name, .. } = &m.table else {
            return Err(SqlError::unsupported("MERGE into a derived table"));
        };
        let table = scope.table(name)?;
        check_conditions(&m)?;
        // MERGE reads the rows it changes: MODIFY and SELECT on the target
        // (the source is checked as it is read, by the rewriter).
        self.checks().modify_table(&table.name, true)?;
        let talias = quote_ident(&Self::target_alias(&m.table).unwrap_or_default());
        let merge_params = merge_parameters(&m);
        let mut source = m.source.clone();
        let salias = match &source {
            TableFactor::Table { alias: Some(a), .. }
            | TableFactor::Derived { alias: Some(a), .. } => a.name.value.clone(),
            TableFactor::Table { name, args, .. } => {
                if args.is_some() {
                    // An unaliased table function is named after itself.
                    name_parts(name).join(".").to_ascii_lowercase()
                } else {
                    name_parts(name).pop().unwrap_or_default()
                }
            }
            _ => return Err(SqlError::syntax("MERGE source needs an alias")),
        };
        let qs = quote_ident(&salias);
        rewrite::rewrite(&scope, temps, &mut source)?;
        let src_sql = match &source {
            TableFactor::Table { name, .. } => format!("SELECT * FROM {name}"),
            TableFactor::Derived { subquery, .. } => subquery.to_string(),
            _ => return Err(SqlError::unsupported("MERGE source")),
        };
        let mut on = (*m.on).clone();
        rewrite::rewrite(&scope, temps, &mut on)?;
        let target = table.name.physical();
        let result = (|| -> Result<(Counts, u64, history::Commit), SqlError> {
            self.conn
                .execute_batch(&format!(
                    "DROP TABLE IF EXISTS {SRC}; DROP TABLE IF EXISTS {PAIRS}; DROP TABLE IF EXISTS {MATCHED};
                     DROP TABLE IF EXISTS {BY_SOURCE}; DROP TABLE IF EXISTS {INSERTS};
                     CREATE TABLE {PAIRS} (tid INTEGER NOT NULL, sid INTEGER NOT NULL);
                     CREATE TABLE {MATCHED} (tid INTEGER PRIMARY KEY, sid INTEGER NOT NULL, clause INTEGER NOT NULL);
                     CREATE TABLE {BY_SOURCE} (tid INTEGER PRIMARY KEY, clause INTEGER NOT NULL);
                     CREATE TABLE {INSERTS} (sid INTEGER PRIMARY KEY, clause INTEGER NOT NULL);"
                ))
                .map_err(db)?;
            self.exec_count(&format!("CREATE TABLE {SRC} AS {src_sql}"))?;
            let source_rows: i64 = self
                .conn
                .query_row(&format!("SELECT count(*) FROM {SRC}"), [], |r| r.get(0))
                .map_err(db)?;
            let src_cols = self.temp_columns("__merge_src")?;
            self.exec_count(&format!(
                "INSERT INTO {PAIRS} (tid, sid) SELECT {talias}.rowid, {qs}.rowid FROM {target} AS {talias} JOIN {SRC} AS {qs} ON {on}"
            ))?;
            let matched: Vec<(usize, &ast::MergeClause)> = m
                .clauses
                .iter()
                .enumerate()
                .filter(|(_, c)| c.clause_kind == MergeClauseKind::Matched)
                .collect();
            // "Multiple matches are allowed when matches are unconditionally
            // deleted": the only case where several source rows may match one
            // target row; a merge without WHEN MATCHED clauses changes no
            // matched row either.
            let delete_only = matched.iter().all(|(_, c)| {
                matches!(c.action, MergeAction::Delete { .. }) && c.predicate.is_none()
            });
            if !matched.is_empty() && !delete_only {
                let multi: i64 = self
                    .conn
                    .query_row(
                        &format!("SELECT count(*) FROM (SELECT tid FROM {PAIRS} GROUP BY tid HAVING count(*) > 1)"),
                        [],
                        |r| r.get(0),
                    )
                    .map_err(db)?;
                if multi > 0 {
                    return Err(multiple_matches());
                }
            }
            // Decisions, in clause order, before any row changes.
            for (i, clause) in m.clauses.iter().enumerate() {
                let cond = condition(clause, &scope, temps)?;
                match clause.clause_kind {
                    MergeClauseKind::Matched => self.exec_count(&format!(
                        "INSERT OR IGNORE INTO {MATCHED} (tid, sid, clause) SELECT p.tid, p.sid, {i} FROM {PAIRS} p \
                         JOIN {target} AS {talias} ON {talias}.rowid = p.tid JOIN {SRC} AS {qs} ON {qs}.rowid = p.sid WHERE {cond}"
                    ))?,
                    MergeClauseKind::NotMatchedBySource => self.exec_count(&format!(
                        "INSERT OR IGNORE INTO {BY_SOURCE} (tid, clause) SELECT {talias}.rowid, {i} FROM {target} AS {talias} \
                         WHERE {talias}.rowid NOT IN (SELECT tid FROM {PAIRS}) AND {cond}"
                    ))?,
                    _ => self.exec_count(&format!(
                        "INSERT OR IGNORE INTO {INSERTS} (sid, clause) SELECT {qs}.rowid, {i} FROM {SRC} AS {qs} \
                         WHERE {qs}.rowid NOT IN (SELECT sid FROM {PAIRS}) AND {cond}"
                    ))?,
                };
            }
            // The version being committed: the change data feed triggers
            // read it while the rows change.
            let commit = history::begin(self.conn, &table.name)?;
            let mut n = Counts::default();
            // Changes to existing rows first: rows inserted below get rowids
            // the decisions above never name.
            for (i, clause) in m.clauses.iter().enumerate() {
                match (&clause.clause_kind, &clause.action) {
                    (MergeClauseKind::Matched, MergeAction::Update(u)) => {
                        let sets = match &u.kind {
                            ast::MergeUpdateKind::Set(assignments) => {
                                self.assignments(&table, assignments.clone(), &scope, temps)?
                            }
                            ast::MergeUpdateKind::Wildcard => {
                                star_columns(&table, &src_cols, &qs, "UPDATE")?
                                    .into_iter()
                                    .map(|(c, v)| format!("{} = {v}", quote_ident(&c.name)))
                                    .collect()
                            }
                        };
                        n.matched_updated += self.exec_count(&format!(
                            "UPDATE {target} AS {talias} SET {} FROM (SELECT d.tid AS {TID}, s.* FROM {MATCHED} d \
                             JOIN {SRC} s ON s.rowid = d.sid WHERE d.clause = {i}) AS {qs} WHERE {talias}.rowid = {qs}.{TID}",
                            sets.join(", ")
                        ))?;
                    }
                    (MergeClauseKind::Matched, MergeAction::Delete { .. }) => {
                        n.matched_deleted += self.exec_count(&format!(
                            "DELETE FROM {target} WHERE rowid IN (SELECT tid FROM {MATCHED} WHERE clause = {i})"
                        ))?;
                    }
                    (MergeClauseKind::NotMatchedBySource, MergeAction::Update(u)) => {
                        let ast::MergeUpdateKind::Set(assignments) = &u.kind else {
                            return Err(SqlError::syntax(
                                "NOT MATCHED BY SOURCE takes UPDATE SET col = expr",
                            ));
                        };
                        let sets = self.assignments(&table, assignments.clone(), &scope, temps)?;
                        n.by_source_updated += self.exec_count(&format!(
                            "UPDATE {target} AS {talias} SET {} WHERE {talias}.rowid IN (SELECT tid FROM {BY_SOURCE} WHERE clause = {i})",
                            sets.join(", ")
                        ))?;
                    }
                    (MergeClauseKind::NotMatchedBySource, MergeAction::Delete { .. }) => {
                        n.by_source_deleted += self.exec_count(&format!(
                            "DELETE FROM {target} WHERE rowid IN (SELECT tid FROM {BY_SOURCE} WHERE clause = {i})"
                        ))?;
                    }
                    _ => {}
                }
            }
            for (i, clause) in m.clauses.iter().enumerate() {
                let MergeAction::Insert(ins) = &clause.action else {
                    continue;
                };
                let (cols, vals): (Vec<&ColumnInfo>, Vec<String>) = match &ins.kind {
                    MergeInsertKind::Wildcard => star_columns(&table, &src_cols, &qs, "INSERT")?
                        .into_iter()
                        .unzip(),
                    MergeInsertKind::Values(values) => {
                        let cols: Vec<&ColumnInfo> = if ins.columns.is_empty() {
                            table.columns.iter().collect()
                        } else {
                            ins.columns
                                .iter()
                                .map(|c| column(&table, &name_parts(c).pop().unwrap_or_default()))
                                .collect::<Result<_, _>>()?
                        };
                        let values: Vec<Expr> = values
                            .rows
                            .first()
                            .map(|r| r.content.clone())
                            .unwrap_or_default();
                        if values.len() != cols.len() {
                            return Err(SqlError::invalid(
                                "INSERT_COLUMN_ARITY_MISMATCH",
                                "The MERGE INSERT clause has a different number of columns and values.",
                                "21S01",
                            ));
                        }
                        let mut vals = Vec::new();
                        for (mut e, c) in values.into_iter().zip(&cols) {
                            if is_default(&e) {
                                vals.push("NULL".to_string());
                                continue;
                            }
                            rewrite::rewrite(&scope, temps, &mut e)?;
                            vals.push(format!("__dbx_store({e}, '{}')", c.ty));
                        }
                        (cols, vals)
                    }
                    MergeInsertKind::Row => {
                        return Err(SqlError::unsupported("MERGE ... INSERT ROW"))
                    }
                };
                let names: Vec<String> = cols.iter().map(|c| quote_ident(&c.name)).collect();
                n.inserted += self.exec_count(&format!(
                    "INSERT INTO {target} ({}) SELECT {} FROM {SRC} AS {qs} WHERE {qs}.rowid IN (SELECT sid FROM {INSERTS} WHERE clause = {i})",
                    names.join(", "),
                    vals.join(", ")
                ))?;
            }
            Ok((n, source_rows.max(0) as u64, commit))
        })();
        let _ = self.conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS {SRC}; DROP TABLE IF EXISTS {PAIRS}; DROP TABLE IF EXISTS {MATCHED};
             DROP TABLE IF EXISTS {BY_SOURCE}; DROP TABLE IF EXISTS {INSERTS};"
        ));
        let (n, source_rows, commit) = result?;
        self.finish_merge(&commit, n, source_rows, merge_params)
    }

    /// Commits the MERGE's version (none when it changed no row, as in
    /// Delta) with the metrics DESCRIBE HISTORY shows for MERGE
    /// (https://docs.databricks.com/aws/en/tables/history-schema).
    fn finish_merge(
        &self,
        commit: &history::Commit,
        n: Counts,
        source_rows: u64,
        params: Vec<(String, String)>,
    ) -> Result<ResultSet, SqlError> {
        let mut op = Operation::new("MERGE");
        for (k, v) in params {
            op = op.param(&k, v);
        }
        let op = op
            .metric("numSourceRows", source_rows)
            .metric("numTargetRowsInserted", n.inserted)
            .metric("numTargetRowsUpdated", n.updated())
            .metric("numTargetRowsMatchedUpdated", n.matched_updated)
            .metric(
                "numTargetRowsNotMatchedBySourceUpdated",
                n.by_source_updated,
            )
            .metric("numTargetRowsDeleted", n.deleted())
            .metric("numTargetRowsMatchedDeleted", n.matched_deleted)
            .metric(
                "numTargetRowsNotMatchedBySourceDeleted",
                n.by_source_deleted,
            )
            .metric("numOutputRows", n.inserted + n.updated());
        let affected = n.updated() + n.deleted() + n.inserted;
        self.commit_if_changed(commit, affected, op)?;
        Ok(counts(&[
            ("num_affected_rows", affected),
            ("num_updated_rows", n.updated()),
            ("num_deleted_rows", n.deleted()),
            ("num_inserted_rows", n.inserted),
        ]))
    }
}
