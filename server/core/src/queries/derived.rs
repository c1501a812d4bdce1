//! A user's query as a derived table, so the bridge can run its own SELECT
//! around it (narrowed past a cursor, joined to Change Tracking, split into
//! partitions, its range measured): `WITH <the query's CTEs>, [__bridge_q]
//! AS (<its body>) <ours>`. The query must be one SELECT; its ORDER BY is
//! dropped (it does not order a result filtered again, and T-SQL forbids it
//! in a derived table).

use sqlparser::ast::{SetExpr, Statement};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::{Parser, ParserOptions};

/// `[name]` with `]` doubled.
pub fn bracket(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

/// The query as `WITH <its CTEs> [, ...]` and a body that can be a derived
/// table named `[__bridge_q]`.
#[derive(Clone, Debug)]
pub struct Derived {
    ctes: Option<String>,
    body: String,
}

impl Derived {
    /// `sql` shaped as a derived table; `purpose` (what needs it: `mode
    /// incremental`, `partition_on`) leads each error.
    pub fn of(sql: &str, purpose: &str) -> Result<Derived, String> {
        let stmts = Parser::new(&MsSqlDialect {})
            .with_options(ParserOptions {
                require_semicolon_stmt_delimiter: false,
                ..ParserOptions::default()
            })
            .try_with_sql(sql)
            .and_then(|mut p| p.parse_statements())
            .map_err(|e| format!("{purpose}: the query does not parse: {e}"))?;
        let [Statement::Query(q)] = stmts.as_slice() else {
            return Err(format!(
                "{purpose} needs a query that is one SELECT (it is used as a derived table); this one has {} statements",
                stmts.len()
            ));
        };
        if let SetExpr::Select(s) = q.body.as_ref() {
            if s.into.is_some() {
                return Err(format!(
                    "{purpose} needs a query that is one SELECT without INTO"
                ));
            }
        }
        let mut q = q.clone();
        let with = q.with.take();
        q.order_by = None;
        let plain = with.is_none() && !sql.to_ascii_uppercase().contains("ORDER BY");
        Ok(Derived {
            ctes: with.map(|w| w.to_string()),
            // The user's own text when nothing had to change.
            body: if plain {
                sql.trim().trim_end_matches(';').to_string()
            } else {
                q.to_string()
            },
        })
    }

    /// `tail` (a SELECT reading `[__bridge_q]`) over the query.
    pub fn select(&self, tail: &str) -> String {
        match &self.ctes {
            Some(w) => format!("{w}, [__bridge_q] AS ({}) {tail}", self.body),
            None => format!("WITH [__bridge_q] AS ({}) {tail}", self.body),
        }
    }
}
