//! What every statement runs with: the connection, where Volumes live, the
//! current catalog and schema, the bound parameters and the caller (an
//! [`Exec`]); and the steps statements share: typing parameters and
//! columns, binding, checking privileges, committing a version when rows
//! changed. Each kind of statement is its own file above this one, and
//! `exec.rs` dispatches to them.

use std::collections::HashMap;
use std::path::Path;

use rusqlite::Connection;
use sqlparser::ast::{self, AssignmentTarget, Expr, TableFactor};

use super::catalog::{self, column, quote_ident, FullName, TableInfo};
use super::error::{map_sqlite_error as db, SqlError};
use super::grants::{Access, Caller};
use super::history::{self, Operation};
use super::result::Param;
use super::rewrite::{self, name_parts, Scope, TempTypes};
use super::types::{Cell, DbxType};

pub struct Exec<'a> {
    pub conn: &'a Connection,
    pub volumes_root: &'a Path,
    pub catalog: &'a str,
    pub schema: &'a str,
    pub params: &'a [Param],
    /// Who runs the statement.
    pub caller: &'a Caller,
}

impl Exec<'_> {
    pub(super) fn scope<'s>(&'s self, param_types: &'s HashMap<String, DbxType>) -> Scope<'s> {
        Scope {
            conn: self.conn,
            catalog: self.catalog,
            schema: self.schema,
            volumes_root: self.volumes_root,
            param_types,
            params: self.params,
            caller: self.caller,
        }
    }

    pub(super) fn checks(&self) -> Access<'_> {
        Access {
            conn: self.conn,
            caller: self.caller,
        }
    }

    pub(super) fn param_types(&self) -> HashMap<String, DbxType> {
        self.params
            .iter()
            .map(|p| (p.name.clone(), p.ty.clone()))
            .collect()
    }

    pub(super) fn bind(&self, st: &mut rusqlite::Statement<'_>) -> Result<(), SqlError> {
        for i in 1..=st.parameter_count() {
            let Some(pname) = st.parameter_name(i).map(str::to_string) else {
                return Err(SqlError::syntax(
                    "positional parameter markers are not supported",
                ));
            };
            let bare = pname.trim_start_matches([':', '@', '$']);
            let p = self
                .params
                .iter()
                .find(|p| p.name == bare)
                .ok_or_else(|| SqlError::unbound_parameter(bare))?;
            let cell = match &p.value {
                None => Cell::Null,
                Some(v) => super::types::store(Cell::Text(v.clone()), &p.ty).map_err(|e| {
                    SqlError::invalid("INVALID_PARAMETER_VALUE", &e.to_string(), "22023")
                })?,
            };
            let v = match cell {
                Cell::Null => rusqlite::types::Value::Null,
                Cell::Int(i) => rusqlite::types::Value::Integer(i),
                Cell::Real(f) => rusqlite::types::Value::Real(f),
                Cell::Text(t) => rusqlite::types::Value::Text(t),
                Cell::Blob(b) => rusqlite::types::Value::Blob(b),
            };
            st.raw_bind_parameter(i, v).map_err(db)?;
        }
        Ok(())
    }

    /// Runs an SQL text that changes rows; returns the row count.
    pub(super) fn exec_count(&self, sql: &str) -> Result<u64, SqlError> {
        tracing::debug!(sql, "sqlite dml");
        let mut st = self.conn.prepare(sql).map_err(db)?;
        self.bind(&mut st)?;
        Ok(st.raw_execute().map_err(db)? as u64)
    }

    /// Commits a version when the statement changed rows; Delta commits no
    /// version for an UPDATE, DELETE or MERGE that touches nothing.
    pub(super) fn commit_if_changed(
        &self,
        commit: &history::Commit,
        changed: u64,
        op: Operation,
    ) -> Result<(), SqlError> {
        if changed == 0 {
            history::abandon(self.conn, commit)
        } else {
            history::finish(self.conn, commit, self.caller, &op)
        }
    }

    /// Column names of a table in the `temp` schema.
    pub(super) fn temp_columns(&self, table: &str) -> Result<Vec<String>, SqlError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name FROM pragma_table_info(?1, 'temp') ORDER BY cid")
            .map_err(db)?;
        let names = stmt
            .query_map([table], |r| r.get::<_, String>(0))
            .map_err(db)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(db)?;
        Ok(names)
    }

    pub(super) fn target_alias(tf: &TableFactor) -> Option<String> {
        match tf {
            TableFactor::Table { name, alias, .. } => Some(match alias {
                Some(a) => a.name.value.clone(),
                None => name_parts(name).pop().unwrap_or_default(),
            }),
            _ => None,
        }
    }

    pub(super) fn assignments(
        &self,
        table: &TableInfo,
        assignments: Vec<ast::Assignment>,
        scope: &Scope<'_>,
        temps: &mut TempTypes,
    ) -> Result<Vec<String>, SqlError> {
        let mut sets = Vec::new();
        for mut a in assignments {
            let col = match &a.target {
                AssignmentTarget::ColumnName(n) => name_parts(n).pop().unwrap_or_default(),
                AssignmentTarget::Tuple(_) => {
                    return Err(SqlError::unsupported("tuple assignment"))
                }
            };
            let c = column(table, &col)?;
            rewrite::rewrite(scope, temps, &mut a.value)?;
            sets.push(format!(
                "{} = __dbx_store({}, '{}')",
                quote_ident(&c.name),
                a.value,
                c.ty
            ));
        }
        Ok(sets)
    }

    /// Whether a statement part reads the given catalog table (an INSERT
    /// that reads its own target is no blind append).
    pub(super) fn names_table(
        &self,
        node: &impl ast::Visit,
        scope: &Scope<'_>,
        table: &FullName,
    ) -> bool {
        struct Names(Vec<ast::ObjectName>);
        impl ast::Visitor for Names {
            type Break = ();
            fn pre_visit_relation(&mut self, r: &ast::ObjectName) -> std::ops::ControlFlow<()> {
                self.0.push(r.clone());
                std::ops::ControlFlow::Continue(())
            }
        }
        let mut n = Names(vec![]);
        let _ = node.visit(&mut n);
        n.0.iter()
            .any(|r| scope.full_name(r).is_ok_and(|f| f == *table))
    }

    /// Columns of every catalog table a query names, for typing expressions.
    pub(super) fn column_types(
        &self,
        q: &impl ast::Visit,
        scope: &Scope<'_>,
    ) -> HashMap<String, DbxType> {
        struct Names(Vec<ast::ObjectName>);
        impl ast::Visitor for Names {
            type Break = ();
            fn pre_visit_relation(&mut self, r: &ast::ObjectName) -> std::ops::ControlFlow<()> {
                self.0.push(r.clone());
                std::ops::ControlFlow::Continue(())
            }
        }
        let mut n = Names(vec![]);
        let _ = q.visit(&mut n);
        let mut out = HashMap::new();
        for name in n.0 {
            if let Ok(Some(t)) = scope
                .full_name(&name)
                .and_then(|f| catalog::get_table(self.conn, &f))
            {
                for c in t.columns {
                    out.entry(c.name.to_lowercase()).or_insert(c.ty);
                }
            }
        }
        out
    }
}

/// An UPDATE or DELETE's `predicate` history parameter: the condition as a
/// one-element JSON array (`["(id = 1)"]`), `[]` without one.
pub(super) fn predicate_param(selection: Option<&Expr>) -> String {
    match selection {
        Some(w) => serde_json::json!([format!("({w})")]).to_string(),
        None => "[]".into(),
    }
}
