//! T-SQL text parsed with sqlparser's MsSql dialect, and a parser's error
//! as SQL Server words it (102, "Incorrect syntax near ..."): shared by the
//! translator, the compiler (view definitions, names inside strings) and
//! the session, below all of them.

use sqlparser::ast::{Expr, ObjectName, Query};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::{Parser, ParserError, ParserOptions};

use super::error::SqlError;

/// T-SQL needs no semicolon between statements.
pub(crate) fn options() -> ParserOptions {
    ParserOptions {
        require_semicolon_stmt_delimiter: false,
        ..ParserOptions::default()
    }
}

/// A parser's error as SQL Server reports a syntax error.
pub fn syntax(e: ParserError) -> SqlError {
    let text = e.to_string();
    // sqlparser: "... Expected: X, found: TOKEN at Line: 1, Column: 5"
    if let Some(rest) = text.split("found: ").nth(1) {
        let tok = rest.split(" at Line").next().unwrap_or(rest).trim();
        if tok == "EOF" {
            return SqlError::new(102, 1, 15, "Incorrect syntax near ')'.".replace(")'", ""))
                .batch();
        }
        return SqlError::syntax_near(tok.trim_matches('\''));
    }
    SqlError::new(102, 1, 15, format!("Incorrect syntax: {text}")).batch()
}

pub(crate) fn parse_expr(sql: &str) -> Result<Expr, SqlError> {
    Parser::new(&MsSqlDialect {})
        .with_options(options())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(syntax)
}

/// A stored query text (a view's definition).
pub(crate) fn parse_query_text(sql: &str) -> Result<Query, SqlError> {
    Parser::new(&MsSqlDialect {})
        .with_options(options())
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .map(|b| *b)
        .map_err(syntax)
}

/// An object name that is the whole of `text` (`[dbo].[t]x` is none).
pub(crate) fn parse_object_name(text: &str) -> Result<ObjectName, SqlError> {
    Parser::new(&MsSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| {
            let name = p.parse_object_name(false)?;
            p.expect_token(&sqlparser::tokenizer::Token::EOF)?;
            Ok(name)
        })
        .map_err(syntax)
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
