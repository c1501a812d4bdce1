//! The typed T-SQL compiler: turns sqlparser's AST into SQLite SQL while
//! deriving every expression's SQL Server type by Microsoft's documented
//! rules (`rules.rs`). The same derivation answers COLMETADATA and
//! sp_describe_first_result_set, and picks the value function that computes
//! each operator exactly (`numeric.rs`), so what a client is told and what
//! it receives agree.
//!
//! - `scope.rs`: the row sources in scope and column resolution
//! - `expr.rs`: expressions, operators, predicates, CASE, CAST/CONVERT
//! - `func.rs`: built-in scalar, aggregate and window functions
//! - `query.rs`: SELECT, set operations, CTEs, FROM/JOIN, ORDER BY, TOP
//! - `system.rs`: the typed catalog views (INFORMATION_SCHEMA, sys.*)
//! - `changetable.rs`: CHANGETABLE(CHANGES ...) and CHANGETABLE(VERSION ...)

pub mod builtins;
mod changetable;
mod expr;
mod func;
mod operators;
mod query;
pub mod rules;
pub mod scope;
mod system;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

use sqlparser::ast::{Expr, Query};

use super::catalog::quote_str;
pub use super::collation::Label;
use super::collation::{self, Collation};
use super::context::Ctx;
use super::error::SqlError;
use crate::types::{ColumnMeta, SqlType};
pub use scope::{Scope, Source, SourceCol};

/// A compiled expression: its SQLite text and its SQL Server type.
#[derive(Clone, Debug)]
pub struct Typed {
    pub sql: String,
    pub ty: SqlType,
    pub nullable: bool,
    /// A bare NULL: typeless in CASE/COALESCE/UNION, int on its own.
    pub null_literal: bool,
    /// Digits of an integer literal (the constant rule of decimal arithmetic).
    pub int_const: Option<u8>,
    /// A search condition (comparison, IN, LIKE, ...): not a value.
    pub predicate: bool,
    /// The base-table column this is, for result metadata.
    pub base: Option<SourceCol>,
    /// A string's collation label (collation precedence page).
    pub coll: Label,
}

impl Typed {
    pub fn new(sql: impl Into<String>, ty: SqlType) -> Self {
        Typed {
            sql: sql.into(),
            ty,
            nullable: true,
            null_literal: false,
            int_const: None,
            predicate: false,
            base: None,
            coll: Label::Default,
        }
    }

    pub fn not_null(mut self) -> Self {
        self.nullable = false;
        self
    }

    fn predicate(sql: impl Into<String>) -> Self {
        Typed {
            predicate: true,
            ..Typed::new(sql, SqlType::Bit)
        }
    }

    fn operand(&self) -> rules::Operand {
        rules::Operand {
            ty: self.ty,
            int_const_digits: self.int_const,
        }
    }
}

/// A compiled query: SQLite text and the result columns as SQL Server
/// describes them.
#[derive(Clone, Debug)]
pub struct CompiledQuery {
    pub sql: String,
    pub columns: Vec<ColumnMeta>,
    /// The SQLite name of each output column (the T-SQL name, or `__cN`).
    pub sql_names: Vec<String>,
    /// Per column: the base column it reads, if any (for derived tables).
    pub bases: Vec<Option<SourceCol>>,
    /// Per column: its collation label (UNION resolves these).
    pub labels: Vec<Label>,
}

/// A CTE visible to the query being compiled.
#[derive(Clone, Debug)]
struct CteDef {
    sql_name: String,
    columns: Vec<SourceCol>,
}

/// The recursive member being compiled: the CTE it refers to, and where
/// that reference was found (its SQLite alias, at which query depth), so
/// the member's SELECT can carry the recursion level on.
#[derive(Debug)]
struct Recursing {
    cte: String,
    /// The query depth of the member's own SELECT.
    depth: u32,
    found: Option<(String, u32)>,
    /// The level column was added to the member's SELECT.
    carried: bool,
}

/// Compiles statements of one session; holds what a statement's parts share.
pub struct Compiler<'c, 'a> {
    pub ctx: &'c Ctx<'a>,
    next_alias: Cell<u32>,
    ctes: RefCell<Vec<HashMap<String, CteDef>>>,
    /// The SQLite text of the CTEs in scope, outermost first (whether
    /// recursive, `name(cols) AS (sql)` each), for planning a fragment
    /// of the query on its own.
    cte_sql: RefCell<Vec<(bool, Vec<String>)>>,
    /// Nesting of queries: above 1 is a subquery, derived table, CTE or view.
    depth: Cell<u32>,
    recursing: RefCell<Option<Recursing>>,
    /// Variables read through `__var('@x')` (assignment SELECT) instead of
    /// bound once per statement.
    pub vars_as_calls: bool,
}

impl<'c, 'a> Compiler<'c, 'a> {
    pub fn new(ctx: &'c Ctx<'a>) -> Self {
        Compiler {
            ctx,
            next_alias: Cell::new(0),
            ctes: RefCell::new(Vec::new()),
            cte_sql: RefCell::new(Vec::new()),
            depth: Cell::new(0),
            recursing: RefCell::new(None),
            vars_as_calls: false,
        }
    }

    /// `sql` preceded by the CTEs in scope, so it can be prepared alone.
    pub fn with_ctes(&self, sql: &str) -> String {
        let frames = self.cte_sql.borrow();
        let parts: Vec<&str> = frames
            .iter()
            .flat_map(|(_, p)| p.iter().map(String::as_str))
            .collect();
        if parts.is_empty() {
            return sql.to_string();
        }
        let recursive = frames.iter().any(|(r, _)| *r);
        format!(
            "WITH {}{} {sql}",
            if recursive { "RECURSIVE " } else { "" },
            parts.join(", ")
        )
    }

    /// The current database's collation (coercible-default strings').
    pub fn default_collation(&self) -> Collation {
        self.ctx.collation
    }

    /// The collation a string is compared, sorted or grouped under; a
    /// value with no collation (two implicit ones met) is error 468.
    pub fn collation_of(&self, t: &Typed, operation: &str) -> Result<Collation, SqlError> {
        collation::of(t.coll, self.ctx.collation)
            .map_err(|(x, y)| collation::conflict(&x, &y, operation))
    }

    /// A fresh SQLite alias for a row source.
    pub(crate) fn alias_name(&self) -> String {
        self.alias()
    }

    fn alias(&self) -> String {
        let n = self.next_alias.get() + 1;
        self.next_alias.set(n);
        format!("_t{n}")
    }

    /// Compiles a query at the top level or inside `outer` (a subquery).
    pub fn query(&self, q: &Query, outer: &Scope) -> Result<CompiledQuery, SqlError> {
        query::compile_query(self, q, outer)
    }

    /// Compiles a query nested in another (ORDER BY needs TOP/OFFSET there).
    fn nested<T>(&self, f: impl FnOnce() -> Result<T, SqlError>) -> Result<T, SqlError> {
        self.depth.set(self.depth.get() + 1);
        let r = f();
        self.depth.set(self.depth.get() - 1);
        r
    }

    /// Compiles an expression that may reference the sources of `scope`.
    pub fn expr(&self, e: &Expr, scope: &Scope) -> Result<Typed, SqlError> {
        let t = expr::compile(self, e, scope)?;
        Ok(t)
    }

    /// A value expression (not a bare search condition).
    pub fn value(&self, e: &Expr, scope: &Scope) -> Result<Typed, SqlError> {
        let t = self.expr(e, scope)?;
        if t.predicate {
            return Err(SqlError::syntax_near(&first_token(e)));
        }
        Ok(t)
    }

    /// A search condition (WHERE, ON, HAVING, IF, WHILE, CASE WHEN).
    pub fn condition(&self, e: &Expr, scope: &Scope) -> Result<String, SqlError> {
        let t = self.expr(e, scope)?;
        if !t.predicate {
            return Err(SqlError::new(
                4145,
                1,
                15,
                format!(
                    "An expression of non-boolean type specified in a context where a condition is expected, near '{}'.",
                    last_token(e)
                ),
            )
            .batch());
        }
        Ok(t.sql)
    }
}

/// The FROM items of an UPDATE/DELETE/MERGE, added to `scope`; one SQL
/// text per item.
pub fn from_clause(
    c: &Compiler<'_, '_>,
    items: &[sqlparser::ast::TableWithJoins],
    scope: &mut Scope,
) -> Result<Vec<String>, SqlError> {
    let outer = Scope::default();
    items
        .iter()
        .map(|twj| query::from_item(c, twj, &outer, scope))
        .collect()
}

/// A base table as a row source named by `qualifiers`.
pub fn table_source(
    meta: &super::catalog::TableMeta,
    qualifiers: Vec<Vec<String>>,
    sql_alias: &str,
) -> Source {
    Source {
        qualifiers,
        sql_alias: sql_alias.to_string(),
        columns: meta
            .columns
            .iter()
            .map(|col| SourceCol {
                name: col.name.clone(),
                ty: col.ty,
                nullable: col.nullable,
                identity: col.identity.is_some(),
                base: col.computed.is_none(),
                collation: col.collation,
            })
            .collect(),
    }
}

/// A value as text in its type's default style (PRINT, CONCAT, LEN, ...).
pub fn func_text(t: &Typed) -> Typed {
    builtins::to_text(t)
}

/// `t` converted to the string type `to` with its default style.
pub fn func_styled(t: &Typed, to: &SqlType) -> String {
    builtins::styled(t, to, None)
}

fn first_token(e: &Expr) -> String {
    e.to_string()
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string()
}

fn last_token(e: &Expr) -> String {
    e.to_string()
        .split_whitespace()
        .last()
        .unwrap_or("")
        .to_string()
}

/// SQL text for a value of `t` converted to `to`: nothing when the stored
/// form already reads correctly as `to` (narrower integers into wider ones,
/// exact numbers into floats, a string into a longer string of the same
/// kind), `__conv` — CAST's semantics — otherwise.
pub fn convert_sql(t: &Typed, to: &SqlType) -> String {
    if t.null_literal {
        return "NULL".to_string();
    }
    if !needs_conversion(&t.ty, to) {
        return t.sql.clone();
    }
    format!(
        "__conv({}, {}, NULL, {})",
        t.sql,
        quote_str(&to.type_name()),
        quote_str(&t.ty.type_name())
    )
}

fn int_rank(t: &SqlType) -> Option<u8> {
    match t {
        SqlType::Bit => Some(0),
        SqlType::TinyInt => Some(1),
        SqlType::SmallInt => Some(2),
        SqlType::Int => Some(3),
        SqlType::BigInt => Some(4),
        _ => None,
    }
}

pub fn needs_conversion(from: &SqlType, to: &SqlType) -> bool {
    use SqlType::*;
    if from == to {
        return false;
    }
    if let (Some(a), Some(b)) = (int_rank(from), int_rank(to)) {
        return a > b || (b == 0 && a != 0);
    }
    match (from, to) {
        (
            Bit | TinyInt | SmallInt | Int | BigInt | Decimal { .. } | Money | SmallMoney,
            Float | Real,
        ) => matches!(to, Real),
        // Integers are exact in any decimal that has room for them.
        (
            TinyInt | SmallInt | Int | BigInt | Bit,
            Decimal {
                precision, scale, ..
            },
        ) => {
            let (p, _) = rules::exact_ps(from).unwrap_or((19, 0));
            precision.saturating_sub(*scale) < p
        }
        (TinyInt | SmallInt | Int | Bit, Money | SmallMoney) => matches!(to, SmallMoney),
        (
            Decimal {
                precision: p1,
                scale: s1,
                ..
            },
            Decimal {
                precision: p2,
                scale: s2,
                ..
            },
        ) => s2 < s1 || p2.saturating_sub(*s2) < p1.saturating_sub(*s1),
        (SmallMoney, Money) => false,
        (
            Decimal {
                precision, scale, ..
            },
            Money,
        ) => *scale > 4 || precision - scale > 15,
        (Char(_) | VarChar(_) | NChar(_) | NVarChar(_), VarChar(l) | NVarChar(l)) => {
            match (from, l) {
                (_, crate::types::Len::Max) => false,
                (Char(n) | NChar(n), crate::types::Len::N(m)) => n > m,
                (
                    VarChar(crate::types::Len::N(n)) | NVarChar(crate::types::Len::N(n)),
                    crate::types::Len::N(m),
                ) => n > m,
                _ => true,
            }
        }
        (DateTime2(a), DateTime2(b))
        | (DateTimeOffset(a), DateTimeOffset(b))
        | (Time(a), Time(b)) => b < a,
        (SmallDateTime, DateTime2(_)) => false,
        (DateTime, DateTime2(b)) if *b >= 3 => false,
        (SmallDateTime, DateTime) => false,
        (Xml, NVarChar(crate::types::Len::Max)) => false,
        _ => true,
    }
}

/// Quotes a string as a SQLite literal; strings holding control characters
/// travel as UTF-8 hex through `__utf8`.
pub fn sql_string(s: &str) -> String {
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        let hex: String = s.bytes().map(|b| format!("{b:02X}")).collect();
        return format!("__utf8(X'{hex}')");
    }
    quote_str(s)
}
