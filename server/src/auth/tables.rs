//! The tables a T-SQL query reads, found by parsing it with sqlparser's
//! MsSql dialect (three-part and bracketed names, aliases, joins, CTEs and
//! subqueries), so extraction can require `read` on each before any SQL runs.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{visit_relations, Query, Statement, Visit, Visitor};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::Parser;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TablesError {
    #[error("the query cannot be checked for permissions because it does not parse: {0}")]
    Parse(String),
    #[error("only SELECT queries can be extracted; found {0}")]
    NotAQuery(String),
}

/// A table name as written, split into its parts; `schema` defaults to `dbo`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub database: Option<String>,
    pub schema: String,
    pub table: String,
}

impl TableName {
    /// Parses `t`, `s.t`, `d.s.t`, `d..t` and bracketed forms, lower-cased.
    pub fn parse(text: &str) -> Option<TableName> {
        let parts: Vec<String> = split_name(text)?;
        Self::from_parts(&parts)
    }

    fn from_parts(parts: &[String]) -> Option<TableName> {
        let low = |s: &String| s.to_lowercase();
        let (database, schema, table) = match parts {
            [t] => (None, "dbo".to_string(), low(t)),
            [s, t] => (None, low(s), low(t)),
            [d, s, t] | [_, d, s, t] => (Some(low(d)), low(s), low(t)),
            _ => return None,
        };
        let schema = if schema.is_empty() {
            "dbo".to_string()
        } else {
            schema
        };
        Some(TableName {
            database,
            schema,
            table,
        })
    }

    /// Whether a permission for `granted` covers this table: schema and
    /// table must match; a database is compared only when both name one.
    pub fn covered_by(&self, granted: &TableName) -> bool {
        self.schema == granted.schema
            && self.table == granted.table
            && match (&self.database, &granted.database) {
                (Some(a), Some(b)) => a == b,
                _ => true,
            }
    }
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.database {
            Some(d) => write!(f, "{d}.{}.{}", self.schema, self.table),
            None => write!(f, "{}.{}", self.schema, self.table),
        }
    }
}

/// Splits a dotted name with `[bracketed]` or `"quoted"` parts, case kept.
pub fn split_name(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '[' => {
                for c in chars.by_ref() {
                    if c == ']' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                for c in chars.by_ref() {
                    if c == '"' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '.' => parts.push(std::mem::take(&mut cur)),
            c if c.is_whitespace() => {}
            c => cur.push(c),
        }
    }
    parts.push(cur);
    (!parts.last()?.is_empty()).then_some(parts)
}

/// Collects the names of CTEs so references to them are not tables.
struct Ctes(HashSet<String>);

impl Visitor for Ctes {
    type Break = ();

    fn pre_visit_query(&mut self, q: &Query) -> ControlFlow<()> {
        if let Some(w) = &q.with {
            for c in &w.cte_tables {
                self.0.insert(c.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }
}

/// Every table a SELECT (or several) reads, de-duplicated and sorted.
pub fn referenced_tables(sql: &str) -> Result<Vec<TableName>, TablesError> {
    let stmts =
        Parser::parse_sql(&MsSqlDialect {}, sql).map_err(|e| TablesError::Parse(e.to_string()))?;
    let mut out = HashSet::new();
    for stmt in &stmts {
        if !matches!(stmt, Statement::Query(_)) {
            let head: String = stmt
                .to_string()
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            return Err(TablesError::NotAQuery(head));
        }
        let mut ctes = Ctes(HashSet::new());
        let _ = stmt.visit(&mut ctes);
        let _ = visit_relations(stmt, |name| {
            let parts: Vec<String> = name
                .0
                .iter()
                .map(|p| {
                    p.as_ident()
                        .map(|i| i.value.clone())
                        .unwrap_or_else(|| p.to_string())
                })
                .collect();
            let is_cte = parts.len() == 1 && ctes.0.contains(&parts[0].to_lowercase());
            if !is_cte {
                if let Some(t) = TableName::from_parts(&parts) {
                    out.insert(t);
                }
            }
            ControlFlow::<()>::Continue(())
        });
    }
    let mut v: Vec<TableName> = out.into_iter().collect();
    v.sort();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(sql: &str) -> Vec<String> {
        referenced_tables(sql)
            .unwrap()
            .iter()
            .map(|t| t.to_string())
            .collect()
    }

    #[test]
    fn finds_tables_in_every_position() {
        assert_eq!(
            names("SELECT v.id, p.nombre FROM KWP_Colombia.dbo.J_Ventas_CO AS v JOIN [dbo].[Productos] p ON p.id = v.id"),
            ["dbo.productos", "kwp_colombia.dbo.j_ventas_co"]
        );
        assert_eq!(
            names("WITH c AS (SELECT * FROM ventas) SELECT * FROM c WHERE id IN (SELECT id FROM sales.hist) AND EXISTS (SELECT 1 FROM x.dbo.y)"),
            ["dbo.ventas", "sales.hist", "x.dbo.y"]
        );
        assert_eq!(
            names("SELECT * FROM (SELECT * FROM a) AS q, b"),
            ["dbo.a", "dbo.b"]
        );
        assert_eq!(names("SELECT * FROM db..t"), ["db.dbo.t"]);
    }

    #[test]
    fn refuses_what_it_cannot_check() {
        assert!(matches!(
            referenced_tables("SELEC * FROM t"),
            Err(TablesError::Parse(_))
        ));
        assert!(matches!(
            referenced_tables("DELETE FROM t"),
            Err(TablesError::NotAQuery(_))
        ));
        assert!(matches!(
            referenced_tables("SELECT 1; DROP TABLE t"),
            Err(TablesError::NotAQuery(_))
        ));
    }

    #[test]
    fn coverage_ignores_case_and_missing_database() {
        let t = TableName::parse("KWP_Colombia.dbo.J_Ventas_CO").unwrap();
        assert!(t.covered_by(&TableName::parse("dbo.j_ventas_co").unwrap()));
        assert!(t.covered_by(&TableName::parse("[KWP_Colombia].[dbo].[J_Ventas_CO]").unwrap()));
        assert!(!t.covered_by(&TableName::parse("KWP_Mexico.dbo.J_Ventas_CO").unwrap()));
        assert!(!t.covered_by(&TableName::parse("sales.J_Ventas_CO").unwrap()));
    }
}
