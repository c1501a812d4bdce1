//! The tables a T-SQL query reads, found by parsing it with sqlparser's
//! MsSql dialect (three-part and bracketed names, aliases, joins, CTEs and
//! subqueries), so extraction can require `read` on each before any SQL runs.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    visit_relations, Expr, FromTable, ObjectName, Query, SetExpr, Statement, TableFactor,
    TableObject, Visit, Visitor,
};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::{Parser, ParserOptions};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TablesError {
    #[error("the query cannot be checked for permissions because it does not parse: {0}")]
    Parse(String),
    #[error("an extraction may only read (and fill its own #temp tables); found {0}")]
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

/// Every object an extraction batch reads, de-duplicated and sorted: the
/// tables and views its SELECTs name, and the stored procedures it EXECs
/// (the bridge cannot see inside a procedure, so the procedure is the
/// object a user needs `read` on). What it may do besides reading: SET
/// options and variables, DECLARE, PRINT, IF/WHILE, and write its own
/// `#temp` tables and table variables. Writes to any other table, dynamic
/// SQL (which cannot be checked before it runs) and anything that does not
/// parse are refused.
pub fn referenced_tables(sql: &str) -> Result<Vec<TableName>, TablesError> {
    let stmts = Parser::new(&MsSqlDialect {})
        .with_options(ParserOptions {
            require_semicolon_stmt_delimiter: false,
            ..ParserOptions::default()
        })
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| TablesError::Parse(e.to_string()))?;
    let mut out = HashSet::new();
    for stmt in &stmts {
        check_statement(stmt, &mut out)?;
    }
    let mut v: Vec<TableName> = out.into_iter().collect();
    v.sort();
    Ok(v)
}

fn head(stmt: &Statement) -> String {
    stmt.to_string()
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| {
            p.as_ident()
                .map(|i| i.value.clone())
                .unwrap_or_else(|| p.to_string())
        })
        .collect()
}

/// A session's own scratch objects: `#temp` tables and `@table` variables.
fn is_scratch(name: &ObjectName) -> bool {
    name_parts(name)
        .last()
        .is_some_and(|t| (t.starts_with('#') && !t.starts_with("##")) || t.starts_with('@'))
}

/// Adds the tables a statement reads (CTEs and scratch objects aside).
fn reads(stmt: &impl Visit, out: &mut HashSet<TableName>, skip: Option<&ObjectName>) {
    let mut ctes = Ctes(HashSet::new());
    let _ = stmt.visit(&mut ctes);
    let _ = visit_relations(stmt, |name| {
        let parts = name_parts(name);
        let is_cte = parts.len() == 1 && ctes.0.contains(&parts[0].to_lowercase());
        if !is_cte && !is_scratch(name) && skip != Some(name) {
            if let Some(t) = TableName::from_parts(&parts) {
                out.insert(t);
            }
        }
        ControlFlow::<()>::Continue(())
    });
}

fn check_statement(stmt: &Statement, out: &mut HashSet<TableName>) -> Result<(), TablesError> {
    let refuse = || Err(TablesError::NotAQuery(head(stmt)));
    match stmt {
        Statement::Query(q) => {
            if let SetExpr::Select(s) = q.body.as_ref() {
                if let Some(into) = &s.into {
                    let scratch = into.targets.iter().all(|t| match t {
                        Expr::Identifier(i) => {
                            i.value.starts_with('#') && !i.value.starts_with("##")
                        }
                        Expr::CompoundIdentifier(p) => p.last().is_some_and(|i| {
                            i.value.starts_with('#') && !i.value.starts_with("##")
                        }),
                        _ => false,
                    });
                    if !scratch {
                        return refuse();
                    }
                }
            }
            reads(stmt, out, None);
        }
        Statement::Set(_) | Statement::Declare { .. } | Statement::Print(_) => {
            reads(stmt, out, None)
        }
        Statement::Insert(ins) => match &ins.table {
            TableObject::TableName(n) if is_scratch(n) => reads(stmt, out, Some(n)),
            _ => return refuse(),
        },
        Statement::Update(u) => match &u.table.relation {
            TableFactor::Table { name, .. } if is_scratch(name) => reads(stmt, out, Some(name)),
            _ => return refuse(),
        },
        Statement::Delete(d) => {
            let targets: Vec<&ObjectName> = if d.tables.is_empty() {
                match &d.from {
                    FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f
                        .first()
                        .and_then(|t| match &t.relation {
                            TableFactor::Table { name, .. } => Some(name),
                            _ => None,
                        })
                        .into_iter()
                        .collect(),
                }
            } else {
                d.tables.iter().collect()
            };
            if targets.is_empty() || !targets.iter().all(|n| is_scratch(n)) {
                return refuse();
            }
            reads(stmt, out, targets.first().copied());
        }
        Statement::CreateTable(ct) if is_scratch(&ct.name) => reads(stmt, out, Some(&ct.name)),
        Statement::Drop {
            object_type: sqlparser::ast::ObjectType::Table,
            names,
            ..
        } if names.iter().all(is_scratch) => {}
        Statement::Truncate(t) if t.table_names.iter().all(|n| is_scratch(&n.name)) => {}
        Statement::Execute {
            name: Some(name),
            parameters,
            ..
        } => {
            let parts = name_parts(name);
            let proc = parts.last().map(|p| p.to_lowercase()).unwrap_or_default();
            if proc == "sp_executesql" {
                return Err(TablesError::NotAQuery(
                    "dynamic SQL (sp_executesql)".to_string(),
                ));
            }
            if let Some(t) = TableName::from_parts(&parts) {
                out.insert(t);
            }
            for p in parameters {
                reads(p, out, None);
            }
        }
        Statement::Execute { name: None, .. } => {
            return Err(TablesError::NotAQuery("dynamic SQL (EXEC)".to_string()))
        }
        Statement::If(i) => {
            reads(&i.if_block.condition, out, None);
            for s in i.if_block.conditional_statements.statements() {
                check_statement(s, out)?;
            }
            for b in &i.elseif_blocks {
                reads(&b.condition, out, None);
                for s in b.conditional_statements.statements() {
                    check_statement(s, out)?;
                }
            }
            if let Some(b) = &i.else_block {
                for s in b.conditional_statements.statements() {
                    check_statement(s, out)?;
                }
            }
        }
        Statement::While(w) => {
            reads(&w.while_block.condition, out, None);
            for s in w.while_block.conditional_statements.statements() {
                check_statement(s, out)?;
            }
        }
        _ => return refuse(),
    }
    Ok(())
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
    fn batches_read_through_temp_tables_and_procedures() {
        assert_eq!(
            names("SET NOCOUNT ON\nDECLARE @d date = '2024-01-01'\nSELECT id, monto INTO #t FROM dbo.ventas WHERE fecha >= @d\nINSERT INTO #t SELECT id, monto FROM hist.ventas\nSELECT * FROM #t"),
            ["dbo.ventas", "hist.ventas"]
        );
        assert_eq!(
            names("EXEC dbo.ventas_por_pais @pais = 'CO'"),
            ["dbo.ventas_por_pais"]
        );
        assert!(matches!(
            referenced_tables("SELECT * INTO dbo.copia FROM dbo.ventas"),
            Err(TablesError::NotAQuery(_))
        ));
        assert!(matches!(
            referenced_tables("INSERT INTO dbo.t SELECT * FROM #x"),
            Err(TablesError::NotAQuery(_))
        ));
        assert!(matches!(
            referenced_tables("EXEC ('SELECT * FROM hr.salaries')"),
            Err(TablesError::NotAQuery(_))
        ));
        assert!(matches!(
            referenced_tables("EXEC sp_executesql N'SELECT * FROM hr.salaries'"),
            Err(TablesError::NotAQuery(_))
        ));
        assert!(matches!(
            referenced_tables("SELECT 1 INTO ##shared"),
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
