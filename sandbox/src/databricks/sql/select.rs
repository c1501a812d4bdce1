//! SELECT: a query rewritten for SQLite (`rewrite.rs`), run, and its
//! columns typed as Spark types them.

use sqlparser::ast::{Expr, Query, SelectItem, SetExpr};

use super::catalog::{self};
use super::context::Exec;
use super::error::{map_sqlite_error as db, SqlError};
use super::result::{Column, ResultSet};
use super::rewrite::{self, expr_type, name_parts, TempTypes};
use super::types::{Cell, DbxType};

impl Exec<'_> {
    pub(super) fn query(&self, q: Query, temps: &mut TempTypes) -> Result<ResultSet, SqlError> {
        let pt = self.param_types();
        let scope = self.scope(&pt);
        let original = q.clone();
        let mut q = q;
        rewrite::rewrite(&scope, temps, &mut q)?;
        let col_types = self.column_types(&original, &scope);
        // Per select item: (Spark's column name, type from the syntax).
        let mut hints: Option<Vec<(Option<String>, Option<DbxType>)>> = None;
        if let SetExpr::Select(sel) = original.body.as_ref() {
            let mut v = Vec::new();
            for item in &sel.projection {
                match item {
                    SelectItem::UnnamedExpr(e) => {
                        let name = match e {
                            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => None,
                            other => Some(spark_column_name(other)),
                        };
                        v.push((name, expr_type(e, &scope, &col_types)));
                    }
                    SelectItem::ExprWithAlias { expr, .. } => {
                        v.push((None, expr_type(expr, &scope, &col_types)))
                    }
                    _ => {
                        v.clear();
                        break;
                    }
                }
            }
            if !v.is_empty() {
                hints = Some(v);
            }
        }
        let sql = q.to_string();
        tracing::debug!(sql, "sqlite query");
        let mut st = self.conn.prepare(&sql).map_err(db)?;
        let n = st.column_count();
        let mut columns: Vec<(String, Option<DbxType>)> = Vec::with_capacity(n);
        for (i, meta) in st.columns_with_metadata().enumerate() {
            let mut name = meta.name().to_string();
            let mut ty = match (meta.table_name(), meta.origin_name()) {
                (Some(t), Some(o)) => temps
                    .tables
                    .get(t)
                    .and_then(|cols| cols.iter().find(|(c, _)| c == o).map(|(_, t)| t.clone()))
                    .or_else(|| catalog::physical_column_type(self.conn, t, o)),
                _ => None,
            };
            if let Some(h) = hints.as_ref().filter(|h| h.len() == n) {
                if let Some(spark_name) = &h[i].0 {
                    name = spark_name.clone();
                }
                if ty.is_none() {
                    ty = h[i].1.clone();
                }
            }
            columns.push((name, ty));
        }
        self.bind(&mut st)?;
        let mut rows_out = Vec::new();
        let mut rows = st.raw_query();
        while let Some(row) = rows.next().map_err(db)? {
            let mut r = Vec::with_capacity(n);
            for i in 0..n {
                r.push(Cell::from(row.get_ref(i).map_err(db)?));
            }
            rows_out.push(r);
        }
        let columns = columns
            .into_iter()
            .enumerate()
            .map(|(i, (name, ty))| Column {
                name,
                ty: ty
                    .filter(|t| *t != DbxType::Void || rows_out.iter().all(|r| r[i] == Cell::Null))
                    .unwrap_or_else(|| infer_type(&rows_out, i)),
            })
            .collect();
        Ok(ResultSet {
            columns,
            rows: rows_out,
        })
    }
}

/// Spark's name for an unaliased expression column (`count(1)`, `uuid()`).
fn spark_column_name(e: &Expr) -> String {
    let text = e.to_string();
    let lower = text.to_lowercase();
    if lower == "count(*)" {
        return "count(1)".into();
    }
    match e {
        Expr::Function(f) => {
            let name = name_parts(&f.name).join(".").to_lowercase();
            match text.find('(') {
                Some(i) => format!("{name}{}", &text[i..]),
                None => format!("{name}()"),
            }
        }
        _ => text,
    }
}

/// A column type read off the values when the syntax says nothing.
fn infer_type(rows: &[Vec<Cell>], i: usize) -> DbxType {
    for r in rows {
        match &r[i] {
            Cell::Null => continue,
            Cell::Int(_) => return DbxType::Long,
            Cell::Real(_) => return DbxType::Double,
            Cell::Text(_) => return DbxType::String,
            Cell::Blob(_) => return DbxType::Binary,
        }
    }
    DbxType::String
}
