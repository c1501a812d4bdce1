//! Name resolution for the compiler: the row sources a query's FROM clause
//! brings into scope (tables, derived tables, CTEs, views), each with typed
//! columns, and the outer scopes a correlated subquery sees.

use crate::engine::error::SqlError;
use crate::types::SqlType;

/// One column of a row source.
#[derive(Clone, Debug)]
pub struct SourceCol {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    pub identity: bool,
    /// True for a column read straight from a base table.
    pub base: bool,
    /// A string column's collation (its references are implicit-labelled).
    pub collation: Option<crate::types::Collation>,
}

/// One row source of a FROM clause.
#[derive(Clone, Debug)]
pub struct Source {
    /// Names that may qualify a column: the alias, or for an unaliased table
    /// its name parts (`t`, `dbo.t`, `db.dbo.t` all match).
    pub qualifiers: Vec<Vec<String>>,
    /// The SQLite alias the generated SQL uses for this source.
    pub sql_alias: String,
    pub columns: Vec<SourceCol>,
}

impl Source {
    fn matches(&self, qualifier: &[String]) -> bool {
        self.qualifiers.iter().any(|q| {
            q.len() >= qualifier.len()
                && q[q.len() - qualifier.len()..]
                    .iter()
                    .zip(qualifier)
                    .all(|(a, b)| a.eq_ignore_ascii_case(b))
        })
    }

    pub fn column(&self, name: &str) -> Option<(usize, &SourceCol)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name.eq_ignore_ascii_case(name))
    }
}

/// A resolved column reference.
#[derive(Clone, Debug)]
pub struct ColumnRef {
    pub sql: String,
    pub col: SourceCol,
}

/// The sources visible at one query level, with the enclosing levels.
#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub levels: Vec<Vec<Source>>,
}

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A column reference; with an empty alias, the bare column (a computed
/// column's expression refers to its table's columns that way).
pub fn col_sql(alias: &str, col: &str) -> String {
    if alias.is_empty() {
        return quote(col);
    }
    format!("{}.{}", quote(alias), quote(col))
}

impl Scope {
    /// A scope nested inside `self` (for a subquery), starting empty.
    pub fn child(&self) -> Scope {
        let mut levels = self.levels.clone();
        levels.push(Vec::new());
        Scope { levels }
    }

    pub fn current(&self) -> &[Source] {
        self.levels.last().map(Vec::as_slice).unwrap_or(&[])
    }

    pub fn push(&mut self, s: Source) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        if let Some(l) = self.levels.last_mut() {
            l.push(s);
        }
    }

    /// Resolves `a`, `t.a`, `s.t.a` or `d.s.t.a` innermost level first, as
    /// SQL Server does; 209 when ambiguous, 207/4104 when unknown.
    pub fn resolve(&self, parts: &[String]) -> Result<ColumnRef, SqlError> {
        let (qualifier, name) = match parts.split_last() {
            Some((n, q)) => (q, n),
            None => return Err(SqlError::invalid_column("")),
        };
        for level in self.levels.iter().rev() {
            let mut found: Option<ColumnRef> = None;
            for src in level {
                if !qualifier.is_empty() && !src.matches(qualifier) {
                    continue;
                }
                if let Some((_, c)) = src.column(name) {
                    if found.is_some() {
                        return Err(SqlError::new(
                            209,
                            1,
                            16,
                            format!("Ambiguous column name '{name}'."),
                        )
                        .batch());
                    }
                    found = Some(ColumnRef {
                        sql: col_sql(&src.sql_alias, &c.name),
                        col: c.clone(),
                    });
                }
            }
            if let Some(f) = found {
                return Ok(f);
            }
        }
        if !qualifier.is_empty() && !self.levels.iter().flatten().any(|s| s.matches(qualifier)) {
            return Err(SqlError::new(
                4104,
                1,
                16,
                format!(
                    "The multi-part identifier \"{}\" could not be bound.",
                    parts.join(".")
                ),
            )
            .batch());
        }
        Err(SqlError::invalid_column(name))
    }

    /// The sources `q.*` (or `*` when `qualifier` is empty) expands to.
    pub fn star(&self, qualifier: &[String]) -> Result<Vec<(String, SourceCol)>, SqlError> {
        let mut out = Vec::new();
        let mut any = false;
        for src in self.current() {
            if !qualifier.is_empty() && !src.matches(qualifier) {
                continue;
            }
            any = true;
            for c in &src.columns {
                out.push((col_sql(&src.sql_alias, &c.name), c.clone()));
            }
        }
        if !any {
            return Err(if qualifier.is_empty() {
                SqlError::new(263, 1, 16, "Must specify table to select from.").batch()
            } else {
                SqlError::new(
                    4104,
                    1,
                    16,
                    format!(
                        "The multi-part identifier \"{}\" could not be bound.",
                        qualifier.join(".")
                    ),
                )
                .batch()
            });
        }
        Ok(out)
    }
}
