//! The tables a T-SQL query reads, found by parsing it with sqlparser's
//! MsSql dialect (three-part and bracketed names, aliases, joins, CTEs and
//! subqueries), so extraction can require `read` on each before any SQL runs.

use std::collections::HashSet;
use std::ops::ControlFlow;

use sqlparser::ast::{
    visit_expressions, visit_relations, Expr, FromTable, ObjectName, Query, SetExpr, Statement,
    TableFactor, TableObject, Use, Visit, Visitor,
};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::{Parser, ParserOptions};

use crate::sqlserver::names::{fold, TableName};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TablesError {
    #[error("the query cannot be checked for permissions because it does not parse: {0}")]
    Parse(String),
    #[error("an extraction may only read (and fill its own #temp tables); found {0}")]
    NotAQuery(String),
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
/// tables and views its SELECTs name, the table-valued and scalar
/// user-defined functions it calls and the stored procedures it EXECs (the
/// bridge cannot see inside them, so the object itself is what a user
/// needs `read` on). What it may do besides reading: SET options and
/// variables, DECLARE, PRINT, IF/WHILE, `USE` a database (names after it
/// are in that database), and write its own `#temp` tables and table
/// variables. Writes to any other table, dynamic SQL (which cannot be
/// checked before it runs), linked servers and ad hoc remote sources
/// (`OPENQUERY`, `OPENROWSET`, `OPENDATASOURCE`) and anything that does
/// not parse are refused. Names without a database are returned so; the
/// caller resolves them in the database the batch runs in.
pub fn referenced_tables(sql: &str) -> Result<Vec<TableName>, TablesError> {
    let stmts = Parser::new(&MsSqlDialect {})
        .with_options(ParserOptions {
            require_semicolon_stmt_delimiter: false,
            ..ParserOptions::default()
        })
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_statements())
        .map_err(|e| TablesError::Parse(e.to_string()))?;
    let mut walk = Walk::default();
    for stmt in &stmts {
        walk.statement(stmt, true)?;
    }
    if let Some(e) = walk.error {
        return Err(e);
    }
    let mut v: Vec<TableName> = walk.out.into_iter().collect();
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

/// Rowset functions that read another server or a file, outside SQL
/// Server's permission checks on this server's tables
/// (https://learn.microsoft.com/en-us/sql/t-sql/functions/rowset-functions-transact-sql).
const REMOTE_ROWSETS: [&str; 3] = ["openquery", "openrowset", "opendatasource"];

/// What a batch reads so far, and the database its names are in.
#[derive(Default)]
struct Walk {
    out: HashSet<TableName>,
    /// Set by `USE`; names without a database are in it from then on.
    database: Option<String>,
    error: Option<TablesError>,
}

impl Walk {
    fn object(&mut self, parts: &[String]) {
        match TableName::from_parts(parts) {
            Some(mut t) => {
                if t.database.is_none() {
                    t.database = self.database.clone();
                }
                self.out.insert(t);
            }
            None if parts.len() == 4 => {
                self.error.get_or_insert(TablesError::NotAQuery(format!(
                    "a linked-server name ({})",
                    parts.join(".")
                )));
            }
            None => {
                self.error.get_or_insert(TablesError::NotAQuery(format!(
                    "an unusable object name ({})",
                    parts.join(".")
                )));
            }
        }
    }

    /// Adds the objects a statement reads (CTEs and scratch objects aside).
    fn reads(&mut self, stmt: &impl Visit, skip: Option<&ObjectName>) {
        let mut ctes = Ctes(HashSet::new());
        let _ = stmt.visit(&mut ctes);
        let mut found: Vec<Vec<String>> = Vec::new();
        let _ = visit_relations(stmt, |name| {
            let parts = name_parts(name);
            let is_cte = parts.len() == 1 && ctes.0.contains(&parts[0].to_lowercase());
            if !is_cte && !is_scratch(name) && skip != Some(name) {
                found.push(parts);
            }
            ControlFlow::<()>::Continue(())
        });
        // Scalar user-defined functions are called with at least a schema
        // (https://learn.microsoft.com/en-us/sql/relational-databases/user-defined-functions/execute-user-defined-functions);
        // built-in functions have one-part names.
        let _ = visit_expressions(stmt, |e| {
            if let Expr::Function(f) = e {
                let parts = name_parts(&f.name);
                if parts.len() > 1 {
                    found.push(parts);
                }
            }
            ControlFlow::<()>::Continue(())
        });
        for parts in found {
            if parts.len() == 1 && REMOTE_ROWSETS.contains(&parts[0].to_lowercase().as_str()) {
                self.error.get_or_insert(TablesError::NotAQuery(format!(
                    "{} (a remote source)",
                    parts[0].to_uppercase()
                )));
            } else {
                self.object(&parts);
            }
        }
    }

    fn statement(&mut self, stmt: &Statement, top: bool) -> Result<(), TablesError> {
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
                self.reads(stmt, None);
            }
            Statement::Set(_) | Statement::Declare { .. } | Statement::Print(_) => {
                self.reads(stmt, None)
            }
            Statement::Use(u) => {
                let name = match u {
                    Use::Object(n) | Use::Database(n) | Use::Catalog(n) => name_parts(n),
                    _ => return refuse(),
                };
                // Inside IF or WHILE the database after it is not known
                // before the batch runs.
                if !top || name.len() != 1 || name[0].trim().is_empty() {
                    return refuse();
                }
                self.database = Some(fold(&name[0]));
            }
            Statement::Insert(ins) => match &ins.table {
                TableObject::TableName(n) if is_scratch(n) => self.reads(stmt, Some(n)),
                _ => return refuse(),
            },
            Statement::Update(u) => match &u.table.relation {
                TableFactor::Table { name, .. } if is_scratch(name) => self.reads(stmt, Some(name)),
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
                self.reads(stmt, targets.first().copied());
            }
            Statement::CreateTable(ct) if is_scratch(&ct.name) => self.reads(stmt, Some(&ct.name)),
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
                self.object(&parts);
                for p in parameters {
                    self.reads(p, None);
                }
            }
            Statement::Execute { name: None, .. } => {
                return Err(TablesError::NotAQuery("dynamic SQL (EXEC)".to_string()))
            }
            Statement::If(i) => {
                self.reads(&i.if_block.condition, None);
                for s in i.if_block.conditional_statements.statements() {
                    self.statement(s, false)?;
                }
                for b in &i.elseif_blocks {
                    self.reads(&b.condition, None);
                    for s in b.conditional_statements.statements() {
                        self.statement(s, false)?;
                    }
                }
                if let Some(b) = &i.else_block {
                    for s in b.conditional_statements.statements() {
                        self.statement(s, false)?;
                    }
                }
            }
            Statement::While(w) => {
                self.reads(&w.while_block.condition, None);
                for s in w.while_block.conditional_statements.statements() {
                    self.statement(s, false)?;
                }
            }
            _ => return refuse(),
        }
        Ok(())
    }
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
    fn names_are_resolved_in_the_database_before_they_are_compared() {
        let t = TableName::parse("KWP_Colombia.dbo.J_Ventas_CO").unwrap();
        let grant = |g: &str| TableName::parse(g).unwrap();
        // A grant without a database means the bridge's database, nothing else.
        assert!(t.covered_by(&grant("dbo.j_ventas_co"), "KWP_Colombia"));
        assert!(!t.covered_by(&grant("dbo.j_ventas_co"), "KWP_Mexico"));
        assert!(t.covered_by(&grant("[KWP_Colombia].[dbo].[J_Ventas_CO]"), "master"));
        assert!(!t.covered_by(&grant("KWP_Mexico.dbo.J_Ventas_CO"), "KWP_Mexico"));
        assert!(!t.covered_by(&grant("sales.J_Ventas_CO"), "KWP_Colombia"));
        // A name without a database is in the bridge's database.
        let bare = TableName::parse("[dbo].[T]").unwrap();
        assert!(bare.covered_by(&grant("kwp_colombia.DBO.t"), "KWP_Colombia"));
        assert!(!bare.covered_by(&grant("KWP_Colombia.dbo.T"), "KWP_Mexico"));
        // Case, brackets, quotes, `d..t` and trailing spaces as SQL Server compares them.
        assert!(grant("\"KWP_Colombia\"..[T ]").covered_by(&grant("kwp_colombia.dbo.t"), "x"));
        assert_eq!(grant("[a]]b].[c\"\"d]").to_string(), "a]b.c\"\"d");
        assert_eq!(grant("\"a\"\"b\".t").schema, "a\"b");
        assert!(TableName::parse("[unterminated").is_none());
        assert!(TableName::parse("srv.db.dbo.t").is_none());
    }

    #[test]
    fn use_linked_servers_remote_rowsets_and_functions() {
        assert_eq!(
            names(
                "SELECT * FROM t; USE [KWP_Mexico]; SELECT * FROM dbo.Productos JOIN x.s.y ON 1=1"
            ),
            ["dbo.t", "kwp_mexico.dbo.productos", "x.s.y"]
        );
        for bad in [
            "SELECT * FROM srv.KWP_Mexico.dbo.Productos",
            "SELECT * FROM OPENQUERY(srv, 'SELECT * FROM hr.salaries')",
            "IF 1 = 1 USE KWP_Mexico; SELECT * FROM t",
        ] {
            assert!(
                matches!(referenced_tables(bad), Err(TablesError::NotAQuery(_))),
                "{bad}"
            );
        }
        assert_eq!(
            names("SELECT dbo.salario(id), UPPER(n) FROM dbo.t CROSS APPLY hr.fn_detalle(id) d"),
            ["dbo.salario", "dbo.t", "hr.fn_detalle"]
        );
    }
}
