//! CHANGETABLE as a row source of a FROM clause, typed as SQL Server
//! returns it: SYS_CHANGE_VERSION and SYS_CHANGE_CREATION_VERSION bigint,
//! SYS_CHANGE_OPERATION nchar(1), SYS_CHANGE_COLUMNS varbinary(4100),
//! SYS_CHANGE_CONTEXT varbinary(128), then the primary key columns as the
//! table declares them.
//! learn.microsoft.com/sql/relational-databases/system-functions/changetable-transact-sql
//!
//! The batch parser hands it over as `CHANGETABLE('CHANGES', 'table',
//! last_sync)` or `CHANGETABLE('VERSION', 'table', (keys), (values))`.

use sqlparser::ast::{self, Expr, FunctionArg, FunctionArgExpr, TableAlias, Value as AstValue};

use super::scope::{Source, SourceCol};
use super::{Compiler, Scope};
use crate::engine::catalog::quote_ident;
use crate::engine::change_tracking;
use crate::engine::context::Resolved;
use crate::engine::error::SqlError;
use crate::engine::parse;
use crate::types::{Len, SqlType};

fn sys_col(name: &str, ty: SqlType) -> SourceCol {
    SourceCol {
        name: name.to_string(),
        ty,
        nullable: true,
        identity: false,
        base: false,
        collation: None,
    }
}

fn text_arg(e: Option<&Expr>) -> Option<String> {
    match e {
        Some(Expr::Value(v)) => match &v.value {
            AstValue::SingleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn not_supported(name: &str) -> SqlError {
    SqlError::new(
        22107,
        1,
        16,
        format!("Object '{name}' is of a data type that is not supported by the CHANGETABLE function. The object must be a user-defined table."),
    )
}

/// A parenthesized list `(a, b)` or a single `(a)`.
fn list(e: Option<&Expr>) -> Vec<Expr> {
    match e {
        Some(Expr::Tuple(items)) => items.clone(),
        Some(Expr::Nested(inner)) => vec![(**inner).clone()],
        Some(other) => vec![other.clone()],
        None => vec![],
    }
}

/// Compiles the CHANGETABLE call; pushes its source into `scope`.
pub(super) fn factor(
    c: &Compiler<'_, '_>,
    args: &ast::TableFunctionArgs,
    alias: Option<&TableAlias>,
    outer: &Scope,
    scope: &mut Scope,
) -> Result<String, SqlError> {
    let alias = alias.ok_or_else(|| {
        SqlError::new(
            22104,
            1,
            16,
            "A table returned by the CHANGETABLE function must be aliased.",
        )
    })?;
    let exprs: Vec<&Expr> = args
        .args
        .iter()
        .filter_map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
            _ => None,
        })
        .collect();
    let kind =
        text_arg(exprs.first().copied()).ok_or_else(|| SqlError::syntax_near("CHANGETABLE"))?;
    let shown =
        text_arg(exprs.get(1).copied()).ok_or_else(|| SqlError::syntax_near("CHANGETABLE"))?;
    let name = parse::parse_object_name(&shown)?;
    if matches!(c.ctx.resolve(&name)?, Resolved::Temp(_)) || c.ctx.view(&name)?.is_some() {
        return Err(not_supported(&shown));
    }
    let meta = c.ctx.table(&name)?;
    let id = meta.object_id.ok_or_else(|| not_supported(&shown))?;
    if !change_tracking::is_tracked(c.ctx.conn, id)? {
        return Err(SqlError::new(
            22105,
            1,
            16,
            format!("Change tracking is not enabled on table '{}'.", meta.name),
        ));
    }
    let current = change_tracking::current_version_sql(&meta.db);
    let keys: Vec<SourceCol> = meta
        .columns
        .iter()
        .filter(|col| col.in_pk)
        .map(|col| SourceCol {
            name: col.name.clone(),
            ty: col.ty,
            nullable: false,
            identity: false,
            base: false,
            collation: col.collation,
        })
        .collect();
    let (sql, mut columns) = if kind == "CHANGES" {
        let last = exprs.get(2).ok_or_else(|| SqlError::syntax_near(")"))?;
        let v = c.value(last, outer)?;
        let track = change_tracking::tracks_columns(c.ctx.conn, id)?;
        let mut cols = vec![
            sys_col("SYS_CHANGE_VERSION", SqlType::BigInt),
            sys_col("SYS_CHANGE_CREATION_VERSION", SqlType::BigInt),
            sys_col("SYS_CHANGE_OPERATION", SqlType::NChar(1)),
            sys_col("SYS_CHANGE_COLUMNS", SqlType::VarBinary(Len::N(4100))),
            sys_col("SYS_CHANGE_CONTEXT", SqlType::VarBinary(Len::N(128))),
        ];
        cols.extend(keys);
        (
            change_tracking::changes_sql(&meta, id, &v.sql, &current, track),
            cols,
        )
    } else {
        let names = list(exprs.get(2).copied());
        let values = list(exprs.get(3).copied());
        let mut pairs = Vec::new();
        for n in &names {
            let col = match n {
                Expr::Identifier(i) => i.value.clone(),
                Expr::CompoundIdentifier(p) => {
                    p.last().map(|i| i.value.clone()).unwrap_or_default()
                }
                other => return Err(SqlError::syntax_near(&other.to_string())),
            };
            match meta.column(&col) {
                Some((_, def)) if def.in_pk => pairs.push(def.name.clone()),
                _ => {
                    return Err(SqlError::new(
                        22111,
                        1,
                        16,
                        format!("The column '{col}' specified in the CHANGETABLE(VERSION ...) function is not part of the primary key for table '{}'.", meta.name),
                    ))
                }
            }
        }
        if pairs.len() != keys.len() {
            return Err(SqlError::new(
                22110,
                1,
                16,
                format!("The number of columns specified in the CHANGETABLE(VERSION ...) function does not match the number of primary key columns for table '{}'.", meta.name),
            ));
        }
        if values.len() != pairs.len() {
            return Err(SqlError::new(
                22103,
                1,
                16,
                "The arguments supplied are not valid for the VERSION option of the CHANGETABLE function.",
            ));
        }
        let mut bound = Vec::new();
        for (col, v) in pairs.into_iter().zip(&values) {
            bound.push((col, c.value(v, outer)?.sql));
        }
        let mut cols = vec![
            sys_col("SYS_CHANGE_VERSION", SqlType::BigInt),
            sys_col("SYS_CHANGE_CONTEXT", SqlType::VarBinary(Len::N(128))),
        ];
        cols.extend(keys);
        (
            change_tracking::version_sql(&meta, id, &bound, &current),
            cols,
        )
    };
    // `AS c (a, b, ...)` renames the columns in order.
    let renames: Vec<String> = alias
        .columns
        .iter()
        .map(|col| col.name.value.clone())
        .collect();
    let mut projected = Vec::new();
    for (i, col) in columns.iter_mut().enumerate() {
        let from = col.name.clone();
        if let Some(n) = renames.get(i) {
            col.name = n.clone();
        }
        projected.push(format!(
            "{} AS {}",
            quote_ident(&from),
            quote_ident(&col.name)
        ));
    }
    let sql_alias = c.alias_name();
    scope.push(Source {
        qualifiers: vec![vec![alias.name.value.clone()]],
        sql_alias: sql_alias.clone(),
        columns,
    });
    Ok(format!(
        "(SELECT {} FROM ({sql})) AS {}",
        projected.join(", "),
        quote_ident(&sql_alias)
    ))
}
