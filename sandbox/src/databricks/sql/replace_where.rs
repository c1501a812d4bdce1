//! `INSERT INTO [TABLE] t REPLACE WHERE predicate query`
//! (https://docs.databricks.com/en/sql/language-manual/sql-ref-syntax-dml-insert-into.html,
//! https://docs.databricks.com/en/delta/selective-overwrite.html): atomically
//! replaces the rows matching the predicate with the query's rows, which
//! must all match it (`DELTA_REPLACE_WHERE_MISMATCH` otherwise). sqlparser
//! does not read the clause, so the statement is split here: the predicate
//! and `INSERT INTO t query` are each parsed by sqlparser and run by
//! [`Exec::insert_with`].

use sqlparser::ast::Statement;
use sqlparser::dialect::DatabricksDialect;
use sqlparser::parser::Parser;

use super::context::Exec;
use super::error::SqlError;
use super::result::ResultSet;
use super::rewrite::TempTypes;
use super::tokens::{tokenize_spans, Tok};

/// The two parts of a REPLACE WHERE statement: `INSERT INTO t query` and
/// the predicate's text.
fn split(text: &str) -> Option<Result<(String, String), SqlError>> {
    let spans = tokenize_spans(text)?;
    let word = |i: usize, kw: &str| matches!(spans.get(i), Some((Tok::Word(w), _)) if w.eq_ignore_ascii_case(kw));
    if !(word(0, "INSERT") && word(1, "INTO")) {
        return None;
    }
    let mut i = 2;
    if word(i, "TABLE") {
        i += 1;
    }
    let name_start = i;
    // The table name: identifiers joined by dots.
    loop {
        if !matches!(spans.get(i), Some((Tok::Word(_) | Tok::Quoted(_), _))) {
            return None;
        }
        i += 1;
        if matches!(spans.get(i), Some((Tok::Punct('.'), _))) {
            i += 1;
        } else {
            break;
        }
    }
    if !word(i, "REPLACE") {
        return None;
    }
    if word(i + 1, "USING") || word(i + 1, "ON") {
        return Some(Err(SqlError::unsupported(
            "INSERT INTO ... REPLACE USING / REPLACE ON",
        )));
    }
    if !word(i + 1, "WHERE") {
        return None;
    }
    let name = &text[spans[name_start].1.start..spans[i - 1].1.end];
    let pred_start = i + 2;
    let mut depth = 0i32;
    let mut query_at = None;
    for (j, (t, _)) in spans.iter().enumerate().skip(pred_start) {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Word(w)
                if depth == 0
                    && ["SELECT", "VALUES", "WITH", "TABLE", "FROM"]
                        .iter()
                        .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                query_at = Some(j);
                break;
            }
            _ => {}
        }
    }
    let Some(q) = query_at.filter(|q| *q > pred_start) else {
        return Some(Err(SqlError::syntax(
            "INSERT INTO ... REPLACE WHERE needs a predicate and a query",
        )));
    };
    let predicate = text[spans[pred_start].1.start..spans[q - 1].1.end].to_string();
    let insert = format!("INSERT INTO {name} {}", &text[spans[q].1.start..]);
    Some(Ok((insert, predicate)))
}

impl Exec<'_> {
    /// Runs the statement if it is an INSERT INTO ... REPLACE WHERE.
    pub(super) fn replace_where(
        &self,
        text: &str,
        temps: &mut TempTypes,
    ) -> Option<Result<ResultSet, SqlError>> {
        let parts = split(text)?;
        Some(parts.and_then(|(insert, predicate)| {
            let dialect = DatabricksDialect {};
            let pred = Parser::new(&dialect)
                .try_with_sql(&predicate)
                .and_then(|mut p| p.parse_expr())
                .map_err(|e| SqlError::syntax(&e.to_string()))?;
            let mut stmts = Parser::parse_sql(&dialect, &insert)
                .map_err(|e| SqlError::syntax(&e.to_string()))?;
            match (stmts.pop(), stmts.is_empty()) {
                (Some(Statement::Insert(ins)), true) => self.insert_with(ins, temps, Some(pred)),
                _ => Err(SqlError::syntax(
                    "INSERT INTO ... REPLACE WHERE takes one query",
                )),
            }
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_predicate_and_query() {
        let (ins, pred) = split(
            "INSERT INTO TABLE main.l.`t x` REPLACE WHERE d >= '2024-01-01' AND id IN (SELECT 1) SELECT * FROM s",
        )
        .and_then(Result::ok)
        .unwrap_or_default();
        assert_eq!(ins, "INSERT INTO main.l.`t x` SELECT * FROM s");
        assert_eq!(pred, "d >= '2024-01-01' AND id IN (SELECT 1)");
        assert!(split("INSERT INTO t SELECT 1").is_none());
        assert!(matches!(
            split("INSERT INTO t REPLACE USING (id) SELECT 1"),
            Some(Err(_))
        ));
    }
}
