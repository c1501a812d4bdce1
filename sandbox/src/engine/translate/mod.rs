//! T-SQL → SQLite translation.
//!
//! A batch is parsed into blocks (`batch.rs`); each statement is planned
//! here: queries go through the typed compiler (`compile/`), writes through
//! `dml.rs`, definitions through `ddl.rs`. The session runs the plans and
//! the control-of-flow blocks.

pub mod alter;
pub mod batch;
mod cte_dml;
mod ddl;
mod dml;

use std::collections::HashMap;

use sqlparser::ast::{self, Expr, ObjectName, ObjectType, Query, Statement};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::{Parser, ParserOptions};

use super::catalog::{self, TableMeta};
use super::compile::{self, Compiler, Scope, Typed};
use super::error::SqlError;
use crate::types::{ColumnMeta, SqlType};

pub use alter::{AddItem, AlterAction, AlterDatabase, AlterTable, DatabaseOption, TriggerDef};
pub use batch::{parse_batch, split_go, Block, ExecArg, ExecCall, ProcDef, ProcParam, ViewDef};
pub(crate) use ddl::{added_column, check_constraint, foreign_key, table_scope};
pub(crate) use dml::stored_default;

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

/// A statement ready to run.
#[derive(Debug)]
pub enum Plan {
    /// A statement that returns rows, with its columns as SQL Server
    /// describes them.
    Query {
        sql: String,
        columns: Vec<ColumnMeta>,
    },
    /// Writes; the row count is the sum of SQLite's changes over `sqls`,
    /// run inside one savepoint.
    Dml {
        sqls: Vec<String>,
        /// Run before `sqls` and not counted (e.g. materialising a MERGE source).
        setup: Vec<String>,
        cleanup: Vec<String>,
        /// For 2627 messages: the table written.
        target: Box<TableMeta>,
        /// For an INSERT ... VALUES: key probes to name the duplicate key.
        key_probe: Option<String>,
        /// Which statement this is (the triggers it fires, the constraints it checks).
        kind: DmlKind,
        /// The columns an UPDATE (or MERGE's UPDATE) assigns.
        set_columns: Vec<String>,
    },
    /// `SELECT ... INTO t`: create `table`, then fill it with `insert`.
    SelectInto {
        table: Box<TableMeta>,
        insert: String,
    },
    /// The table, and the warnings creating it gives (1756 for a temporary
    /// table's FOREIGN KEY).
    CreateTable(Box<TableMeta>, Vec<SqlError>),
    DropTables {
        names: Vec<(ObjectName, Option<Resolved>)>,
        if_exists: bool,
    },
    DropObjects {
        kind: &'static str,
        names: Vec<ObjectName>,
        if_exists: bool,
    },
    Truncate(Box<TableMeta>),
    /// A new database and its COLLATE clause.
    CreateDatabase(String, Option<String>),
    DropDatabase(String, bool),
    CreateSchema(String),
    Use(String),
    Begin,
    Commit,
    Rollback(Option<String>),
    Save(String),
    SetOption(String, String),
    /// `SET TRANSACTION ISOLATION LEVEL ...`.
    SetIsolation(crate::engine::isolation::Isolation),
    /// Variables with their initial value (SQLite text).
    Declare(Vec<(String, SqlType, Option<String>)>),
    /// `DECLARE @t TABLE (...)`.
    DeclareTable(Box<TableMeta>),
    SetVar(String, String),
    /// `SELECT @v = expr, ... [FROM ...]`: runs `sql`, whose projection sets
    /// the variables row by row through `__setvar`.
    Assign {
        sql: String,
    },
    /// PRINT: the message (SQLite text).
    Print(String),
    /// RAISERROR(message, severity, state, args...): SQLite texts.
    Raise {
        message: String,
        severity: String,
        state: String,
        args: Vec<String>,
    },
    /// THROW number, message, state (or a bare THROW, re-raising).
    Throw(Option<(String, String, String)>),
    WaitFor(String),
    /// Statements that only change options SQL Server keeps and the sandbox
    /// does not need (ANSI_NULLS and friends).
    Nothing,
}

/// The kind of a write statement. A MERGE fires the triggers of each
/// action it names (CREATE TRIGGER page: "For every insert, update, or
/// delete action specified in the MERGE statement ... fires any
/// corresponding AFTER triggers").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DmlKind {
    Insert,
    Update,
    Delete,
    Merge {
        insert: bool,
        update: bool,
        delete: bool,
    },
}

impl DmlKind {
    /// The statement's name in error 547.
    pub fn statement(self) -> &'static str {
        match self {
            DmlKind::Insert => "INSERT",
            DmlKind::Update => "UPDATE",
            DmlKind::Delete => "DELETE",
            DmlKind::Merge { .. } => "MERGE",
        }
    }
}

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

fn dialect_options() -> ParserOptions {
    ParserOptions {
        require_semicolon_stmt_delimiter: false,
        ..ParserOptions::default()
    }
}

pub(crate) fn parse_expr(sql: &str) -> Result<Expr, SqlError> {
    Parser::new(&MsSqlDialect {})
        .with_options(dialect_options())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(batch::syntax)
}

/// A stored query text (a view's definition).
pub(crate) fn parse_query_text(sql: &str) -> Result<Query, SqlError> {
    Parser::new(&MsSqlDialect {})
        .with_options(dialect_options())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .map(|b| *b)
        .map_err(batch::syntax)
}

pub(crate) fn parse_object_name(text: &str) -> Result<ObjectName, SqlError> {
    Parser::new(&MsSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_object_name(false))
        .map_err(batch::syntax)
}

pub(crate) fn ident_values(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => i.value.clone(),
            None => p.to_string(),
        })
        .collect()
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

/// Compiles a value expression with no table in scope (SET, DECLARE, EXEC
/// arguments, PRINT).
pub fn scalar(ctx: &Ctx<'_>, e: &Expr) -> Result<Typed, SqlError> {
    Compiler::new(ctx).value(e, &Scope::default())
}

/// A scalar converted to `ty` (assignments to variables and parameters).
pub fn scalar_as(ctx: &Ctx<'_>, e: &Expr, ty: &SqlType) -> Result<String, SqlError> {
    let t = scalar(ctx, e)?;
    Ok(assign_sql(&t, ty))
}

/// The SQLite text storing `t` into something of type `ty`: strings get
/// the source type's default style (dates, money, floats).
pub fn assign_sql(t: &Typed, ty: &SqlType) -> String {
    if ty.is_string() && !t.ty.is_string() && !t.null_literal {
        return compile::func_styled(t, ty);
    }
    t.sql.clone()
}

/// A search condition with no table in scope (IF, WHILE).
pub fn condition(ctx: &Ctx<'_>, e: &Expr) -> Result<String, SqlError> {
    Compiler::new(ctx).condition(e, &Scope::default())
}

/// Translates one parsed statement.
pub fn plan(ctx: &Ctx<'_>, stmt: Statement, delete_top: Option<String>) -> Result<Plan, SqlError> {
    match stmt {
        Statement::Query(mut q)
            if matches!(
                *q.body,
                ast::SetExpr::Insert(_)
                    | ast::SetExpr::Update(_)
                    | ast::SetExpr::Delete(_)
                    | ast::SetExpr::Merge(_)
            ) =>
        {
            let with = q.with.take();
            let (ast::SetExpr::Insert(write)
            | ast::SetExpr::Update(write)
            | ast::SetExpr::Delete(write)
            | ast::SetExpr::Merge(write)) = *q.body
            else {
                return Err(SqlError::syntax_near("WITH").batch());
            };
            let write = match with {
                Some(w) => cte_dml::attach(w, write)?,
                None => write,
            };
            plan(ctx, write, delete_top)
        }
        Statement::Query(q) => dml::plan_query(ctx, *q),
        Statement::Insert(ins) => dml::plan_insert(ctx, ins),
        Statement::Update(upd) => dml::plan_update(ctx, upd),
        Statement::Delete(del) => dml::plan_delete(ctx, del, delete_top),
        Statement::Merge(m) => dml::plan_merge(ctx, m),
        Statement::CreateTable(ct) => ddl::plan_create_table(ctx, ct),
        Statement::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => match object_type {
            ObjectType::Table => {
                let mut out = Vec::new();
                for n in names {
                    let r = ctx.resolve(&n).ok();
                    out.push((n, r));
                }
                Ok(Plan::DropTables {
                    names: out,
                    if_exists,
                })
            }
            ObjectType::View => Ok(Plan::DropObjects {
                kind: "view",
                names,
                if_exists,
            }),
            ObjectType::Database => {
                let n = names
                    .first()
                    .map(|n| ident_values(n).join("."))
                    .unwrap_or_default();
                Ok(Plan::DropDatabase(n, if_exists))
            }
            other => Err(SqlError::unsupported(&format!("DROP {other}"))),
        },
        Statement::DropProcedure {
            if_exists,
            proc_desc,
            ..
        } => Ok(Plan::DropObjects {
            kind: "procedure",
            names: proc_desc.into_iter().map(|d| d.name).collect(),
            if_exists,
        }),
        Statement::Truncate(t) => {
            let name = t
                .table_names
                .first()
                .map(|t| t.name.clone())
                .ok_or_else(|| SqlError::syntax_near("TRUNCATE"))?;
            Ok(Plan::Truncate(Box::new(ctx.table(&name)?)))
        }
        Statement::CreateDatabase {
            db_name,
            default_collation,
            ..
        } => Ok(Plan::CreateDatabase(
            ident_values(&db_name).join("."),
            default_collation,
        )),
        Statement::CreateSchema { schema_name, .. } => {
            let name = match schema_name {
                ast::SchemaName::Simple(n) => ident_values(&n).join("."),
                ast::SchemaName::UnnamedAuthorization(a) => a.value,
                ast::SchemaName::NamedAuthorization(n, _) => ident_values(&n).join("."),
            };
            Ok(Plan::CreateSchema(name))
        }
        Statement::Use(u) => {
            let text = u.to_string();
            let name = text
                .trim()
                .strip_prefix("USE ")
                .unwrap_or(&text)
                .trim()
                .trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_string();
            Ok(Plan::Use(name))
        }
        Statement::StartTransaction { .. } => Ok(Plan::Begin),
        Statement::Commit { .. } => Ok(Plan::Commit),
        Statement::Rollback { savepoint, .. } => Ok(Plan::Rollback(savepoint.map(|s| s.value))),
        Statement::Savepoint { name } => Ok(Plan::Save(name.value)),
        Statement::Declare { stmts } => ddl::plan_declare(ctx, stmts),
        Statement::Set(set) => plan_set(ctx, set),
        Statement::Print(p) => Ok(Plan::Print(
            compile::func_text(&scalar(ctx, &p.message)?).sql,
        )),
        Statement::RaisError {
            message,
            severity,
            state,
            arguments,
            ..
        } => {
            let args = arguments
                .iter()
                .map(|a| scalar(ctx, a).map(|t| compile::func_text(&t).sql))
                .collect::<Result<_, _>>()?;
            Ok(Plan::Raise {
                message: compile::func_text(&scalar(ctx, &message)?).sql,
                severity: scalar(ctx, &severity)?.sql,
                state: scalar(ctx, &state)?.sql,
                args,
            })
        }
        Statement::Throw(t) => match (t.error_number, t.message, t.state) {
            (Some(n), Some(m), Some(s)) => Ok(Plan::Throw(Some((
                scalar(ctx, &n)?.sql,
                compile::func_text(&scalar(ctx, &m)?).sql,
                scalar(ctx, &s)?.sql,
            )))),
            _ => Ok(Plan::Throw(None)),
        },
        Statement::WaitFor(w) => {
            let text = w.to_string();
            let e = text
                .split_whitespace()
                .skip(2)
                .collect::<Vec<_>>()
                .join(" ");
            Ok(Plan::WaitFor(scalar(ctx, &parse_expr(&e)?)?.sql))
        }
        other => {
            let text = other.to_string();
            let head: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            Err(SqlError::unsupported(&head))
        }
    }
}

fn plan_set(ctx: &Ctx<'_>, set: ast::Set) -> Result<Plan, SqlError> {
    let text = set.to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    match &set {
        ast::Set::SingleAssignment {
            variable, values, ..
        } if variable.to_string().starts_with('@') => {
            let name = variable.to_string();
            let e = values
                .first()
                .cloned()
                .ok_or_else(|| SqlError::syntax_near("SET"))?;
            let ty = ctx
                .var_types
                .get(&name.to_ascii_lowercase())
                .copied()
                .ok_or_else(|| {
                    SqlError::new(
                        137,
                        1,
                        15,
                        format!("Must declare the scalar variable \"{name}\"."),
                    )
                    .batch()
                })?;
            return Ok(Plan::SetVar(name, scalar_as(ctx, &e, &ty)?));
        }
        ast::Set::SetTransaction { modes, .. } => {
            use crate::engine::isolation::Isolation;
            use ast::{TransactionIsolationLevel as L, TransactionMode};
            let level = modes.iter().find_map(|m| match m {
                TransactionMode::IsolationLevel(l) => Some(*l),
                TransactionMode::AccessMode(_) => None,
            });
            return Ok(match level {
                Some(L::ReadUncommitted) => Plan::SetIsolation(Isolation::ReadUncommitted),
                Some(L::ReadCommitted) => Plan::SetIsolation(Isolation::ReadCommitted),
                Some(L::RepeatableRead) => Plan::SetIsolation(Isolation::RepeatableRead),
                Some(L::Serializable) => Plan::SetIsolation(Isolation::Serializable),
                Some(L::Snapshot) => Plan::SetIsolation(Isolation::Snapshot),
                _ => return Err(SqlError::syntax_near("TRANSACTION")),
            });
        }
        _ => {}
    }
    let (opt, val) = match words.as_slice() {
        ["SET", opt, val] => (opt.to_ascii_uppercase(), val.to_string()),
        ["SET", opt, "=", val] => (opt.to_ascii_uppercase(), val.to_string()),
        ["SET", opt, rest @ ..] if !rest.is_empty() => (opt.to_ascii_uppercase(), rest.join(" ")),
        _ => return Err(SqlError::syntax_near("SET")),
    };
    Ok(Plan::SetOption(opt, val))
}
