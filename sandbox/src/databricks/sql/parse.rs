//! Expressions the sandbox writes itself for SQLite (replacement templates,
//! the bodies of row filter and mask functions), parsed back into the AST
//! the rewriter works on.

use sqlparser::ast::Expr;
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::error::SqlError;

/// Parses an expression written for SQLite (templates for replacements).
pub fn parse_expr(sql: &str) -> Result<Expr, SqlError> {
    Parser::new(&GenericDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(|e| SqlError::internal(format!("rewriting {sql}: {e}")))
}
