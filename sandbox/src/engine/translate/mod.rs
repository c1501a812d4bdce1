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

use sqlparser::ast::{self, Expr, ObjectName, ObjectType, Statement};

use super::catalog::TableMeta;
use super::compile::{self, Compiler, Scope, Typed};
pub use super::context::{Ctx, Resolved, DEFAULT_MAX_RECURSION};
use super::error::SqlError;
pub(crate) use super::parse::{ident_values, parse_expr, parse_object_name, parse_query_text};
use crate::types::{ColumnMeta, SqlType};

pub use alter::{AddItem, AlterAction, AlterDatabase, AlterTable, DatabaseOption, TriggerDef};
pub use batch::{parse_batch, split_go, Block, ExecArg, ExecCall, ProcDef, ProcParam, ViewDef};
pub(crate) use ddl::{added_column, check_constraint, foreign_key, table_scope};
pub(crate) use dml::stored_default;

/// A write statement ready to run: its SQLite statements and what the
/// session needs to check and report around them.
#[derive(Debug)]
pub struct DmlPlan {
    pub sqls: Vec<String>,
    /// Run before `sqls` and not counted (e.g. materialising a MERGE source).
    pub setup: Vec<String>,
    pub cleanup: Vec<String>,
    /// For 2627 messages: the table written.
    pub target: Box<TableMeta>,
    /// For an INSERT ... VALUES: key probes to name the duplicate key.
    pub key_probe: Option<String>,
    /// Which statement this is (the triggers it fires, the constraints it checks).
    pub kind: DmlKind,
    /// The columns an UPDATE (or MERGE's UPDATE) assigns.
    pub set_columns: Vec<String>,
}

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
    Dml(DmlPlan),
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
