//! `WITH ... INSERT | UPDATE | DELETE | MERGE`: common table expressions
//! before a write (https://learn.microsoft.com/en-us/sql/t-sql/queries/with-common-table-expression-transact-sql:
//! "Specifies a temporary named result set ... defined within the execution
//! scope of a single SELECT, INSERT, UPDATE, MERGE, or DELETE statement").
//!
//! The write planners compile queries, not statements with a WITH of their
//! own, so the CTEs are moved to where the queries are: an INSERT's source
//! query takes the WITH clause as it is (recursive CTEs included); in the
//! other writes each reference to a CTE becomes a derived table holding its
//! query, which means the same thing for a CTE that does not refer to itself.

use std::ops::ControlFlow;

use sqlparser::ast::{self, Cte, Statement, TableFactor, VisitMut, VisitorMut, With};

use super::super::error::SqlError;

/// The write `stmt` with the CTEs of `with` made part of it.
pub fn attach(with: With, stmt: Statement) -> Result<Statement, SqlError> {
    if let Some(target) = written_table(&stmt) {
        if with
            .cte_tables
            .iter()
            .any(|c| c.alias.name.value.eq_ignore_ascii_case(&target))
        {
            // SQL Server writes through such a CTE to its base table.
            return Err(SqlError::unsupported(
                "common table expression as the table written",
            ));
        }
    }
    match stmt {
        Statement::Insert(mut ins) => {
            let Some(source) = ins.source.as_mut() else {
                return Err(SqlError::syntax_near("INSERT").batch());
            };
            match source.with.as_mut() {
                None => source.with = Some(with),
                Some(own) => {
                    let mut ctes = with.cte_tables;
                    ctes.append(&mut own.cte_tables);
                    own.cte_tables = ctes;
                    own.recursive |= with.recursive;
                }
            }
            Ok(Statement::Insert(ins))
        }
        mut stmt @ (Statement::Update(_) | Statement::Delete(_) | Statement::Merge(_)) => {
            let mut ctes: Vec<Cte> = Vec::new();
            for mut cte in with.cte_tables {
                if refers_to_itself(&cte) {
                    return Err(SqlError::unsupported(
                        "recursive common table expression before UPDATE, DELETE or MERGE",
                    ));
                }
                // A CTE may read the ones before it.
                let _ = cte.query.visit(&mut Inline { ctes: &ctes });
                ctes.push(cte);
            }
            let _ = stmt.visit(&mut Inline { ctes: &ctes });
            Ok(stmt)
        }
        _ => Err(SqlError::syntax_near("WITH").batch()),
    }
}

/// The one-part name of the table a write names as its target, if any.
fn written_table(stmt: &Statement) -> Option<String> {
    let one_part = |n: &ast::ObjectName| {
        (n.0.len() == 1)
            .then(|| n.0[0].as_ident().map(|i| i.value.clone()))
            .flatten()
    };
    let factor = |f: &TableFactor| match f {
        TableFactor::Table { name, .. } => one_part(name),
        _ => None,
    };
    match stmt {
        Statement::Insert(ins) => match &ins.table {
            ast::TableObject::TableName(n) => one_part(n),
            _ => None,
        },
        Statement::Update(u) => factor(&u.table.relation),
        Statement::Delete(d) => d.tables.first().and_then(one_part).or_else(|| {
            let (ast::FromTable::WithFromKeyword(t) | ast::FromTable::WithoutKeyword(t)) = &d.from;
            t.first().and_then(|t| factor(&t.relation))
        }),
        Statement::Merge(m) => factor(&m.table),
        _ => None,
    }
}

fn refers_to_itself(cte: &Cte) -> bool {
    let name = &cte.alias.name.value;
    let mut found = false;
    let _ = ast::visit_relations(&cte.query, |r| {
        if r.0.len() == 1
            && r.0[0]
                .as_ident()
                .is_some_and(|i| i.value.eq_ignore_ascii_case(name))
        {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// Replaces each one-part table name that names a CTE with the CTE's query,
/// aliased as the reference was (or by the CTE's name) with the CTE's
/// column list. After the visit of the name, so the query put in its place
/// (whose names mean what they meant where the CTE was defined) is not
/// visited again.
struct Inline<'a> {
    ctes: &'a [Cte],
}

impl VisitorMut for Inline<'_> {
    type Break = ();

    fn post_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let TableFactor::Table { name, alias, .. } = factor else {
            return ControlFlow::Continue(());
        };
        if name.0.len() != 1 {
            return ControlFlow::Continue(());
        }
        let Some(part) = name.0[0].as_ident() else {
            return ControlFlow::Continue(());
        };
        let Some(cte) = self
            .ctes
            .iter()
            .rev()
            .find(|c| c.alias.name.value.eq_ignore_ascii_case(&part.value))
        else {
            return ControlFlow::Continue(());
        };
        let mut as_alias = cte.alias.clone();
        if let Some(a) = alias {
            as_alias.name = a.name.clone();
        }
        *factor = TableFactor::Derived {
            lateral: false,
            subquery: cte.query.clone(),
            alias: Some(as_alias),
            sample: None,
        };
        ControlFlow::Continue(())
    }
}
