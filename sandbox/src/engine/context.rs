//! What translating and compiling a statement needs to know about the
//! session (a [`Ctx`]), and how a table name written in T-SQL resolves in
//! it. Below both the translator (`translate/`) and the compiler
//! (`compile/`), which each receive one.

use std::collections::HashMap;

use sqlparser::ast::ObjectName;

use super::catalog::{self, TableMeta};
use super::error::SqlError;
use super::parse::ident_values;
use crate::types::SqlType;

pub(crate) const VERSION: &str =
    "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) \n\tbridge-sandbox (SQLite engine)\n";

/// What the translator needs to know about the session.
pub struct Ctx<'a> {
    pub conn: &'a rusqlite::Connection,
    pub db: &'a str,
    /// The current database's collation: literals' and variables' (the
    /// coercible-default label), and new columns'.
    pub collation: crate::types::Collation,
    pub temp: &'a HashMap<String, TableMeta>,
    pub rowcount: i64,
    pub trancount: i64,
    pub spid: u16,
    pub identity_insert: Option<&'a str>,
    /// The SQL login of the session, for SUSER_SNAME().
    pub login: &'a str,
    /// The client's application name, for APP_NAME().
    pub app_name: &'a str,
    /// Declared types of the RPC parameters in scope.
    pub params: Vec<(String, SqlType)>,
    /// Declared types of the variables in scope, by lower-case name.
    pub var_types: HashMap<String, SqlType>,
    /// The error a CATCH block handles (ERROR_NUMBER() and friends).
    pub caught: Option<SqlError>,
    /// Recursion levels a recursive CTE may add: the statement's
    /// `OPTION (MAXRECURSION n)`, 100 without it, 0 for no limit
    /// (https://learn.microsoft.com/en-us/sql/t-sql/queries/hints-transact-sql-query#maxrecursion-integer_value).
    pub max_recursion: u32,
    /// What SNAPSHOT isolation asks of each user table the statement reads.
    pub snapshot: crate::engine::isolation::SnapshotCheck,
}

/// SQL Server's recursion limit for a statement without MAXRECURSION.
pub const DEFAULT_MAX_RECURSION: u32 = 100;

/// A resolved table name.
#[derive(Clone, Debug)]
pub enum Resolved {
    Temp(String),
    Table {
        db: String,
        schema: String,
        name: String,
    },
}

impl Ctx<'_> {
    /// Resolves a table name as SQL Server would: `t`, `s.t`, `d.s.t`,
    /// `d..t`, `#t`, `##t`, `@t`; the current database and `dbo` fill in
    /// what is missing.
    pub fn resolve(&self, name: &ObjectName) -> Result<Resolved, SqlError> {
        let parts = ident_values(name);
        let shown = parts.join(".");
        let (db, schema, table) = match parts.as_slice() {
            [t] => (self.db.to_string(), "dbo".to_string(), t.clone()),
            [s, t] => (self.db.to_string(), s.clone(), t.clone()),
            [d, s, t] | [_, d, s, t] => (
                d.clone(),
                if s.is_empty() {
                    "dbo".to_string()
                } else {
                    s.clone()
                },
                t.clone(),
            ),
            _ => return Err(SqlError::invalid_object(&shown)),
        };
        if table.starts_with("##") {
            // Global temporary tables: visible to every session, in tempdb.
            return Ok(Resolved::Table {
                db: "tempdb".into(),
                schema: "dbo".into(),
                name: table,
            });
        }
        // Inside a trigger, `inserted` and `deleted` are the statement's rows.
        // learn.microsoft.com/sql/relational-databases/triggers/use-the-inserted-and-deleted-tables
        let lower = table.to_ascii_lowercase();
        if parts.len() == 1
            && (lower == "inserted" || lower == "deleted")
            && self.temp.contains_key(&lower)
        {
            return Ok(Resolved::Temp(lower));
        }
        if table.starts_with('#') || (parts.len() == 1 && table.starts_with('@')) {
            return Ok(Resolved::Temp(table.to_ascii_lowercase()));
        }
        let db = match catalog::database_name(self.conn, &db)? {
            Some(d) => d,
            None => return Err(SqlError::invalid_object(&shown)),
        };
        let schema = if schema.is_empty() {
            "dbo".to_string()
        } else {
            schema
        };
        Ok(Resolved::Table {
            db,
            schema,
            name: table,
        })
    }

    /// The table behind a name, or error 208 naming it as written.
    pub fn table(&self, name: &ObjectName) -> Result<TableMeta, SqlError> {
        let shown = ident_values(name).join(".");
        match self.resolve(name)? {
            Resolved::Temp(t) => self.temp.get(&t).cloned().ok_or_else(|| {
                if t.starts_with('@') {
                    SqlError::new(
                        1087,
                        1,
                        15,
                        format!("Must declare the table variable \"{shown}\"."),
                    )
                    .batch()
                } else {
                    SqlError::invalid_object(&shown)
                }
            }),
            Resolved::Table { db, schema, name } => {
                let meta = catalog::find_table(self.conn, &db, &schema, &name)?
                    .ok_or_else(|| SqlError::invalid_object(&shown))?;
                self.snapshot_may_read(&meta.db)?;
                Ok(meta)
            }
        }
    }

    /// Under SNAPSHOT, a user table's database must allow it: SQL Server
    /// raises 3952 (or 3951) at the first statement that reads one, not at
    /// SET or BEGIN TRAN, and not for the system catalog or #temp tables.
    fn snapshot_may_read(&self, db: &str) -> Result<(), SqlError> {
        use crate::engine::isolation::SnapshotCheck;
        match self.snapshot {
            SnapshotCheck::None => Ok(()),
            SnapshotCheck::NotStartedInSnapshot => Err(SqlError::snapshot_not_started(db)),
            SnapshotCheck::Allowed => {
                if catalog::snapshot_allowed(self.conn, db)? {
                    Ok(())
                } else {
                    Err(SqlError::snapshot_not_allowed(db))
                }
            }
        }
    }

    /// A view's column names and definition, when `name` is a view.
    pub fn view(&self, name: &ObjectName) -> Result<Option<(String, String)>, SqlError> {
        match self.resolve(name) {
            Ok(Resolved::Table { db, schema, name }) => {
                catalog::find_view(self.conn, &db, &schema, &name)
            }
            _ => Ok(None),
        }
    }

    /// The object id of a stored procedure, for OBJECT_ID().
    pub fn procedure_id(&self, name: &ObjectName) -> Option<i64> {
        match self.resolve(name) {
            Ok(Resolved::Table { db, schema, name }) => {
                catalog::find_procedure(self.conn, &db, &schema, &name)
                    .ok()
                    .flatten()
                    .map(|p| p.object_id)
            }
            _ => None,
        }
    }
}
