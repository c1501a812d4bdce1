//! SQL Server's names as SQL Server reads and compares them: dotted,
//! `[bracketed]` or `"quoted"` parts, and table names resolved in a
//! database before they are compared. Every parser of a T-SQL name is here.

/// A table name as written, split into its parts; `schema` defaults to
/// `dbo`, `database` is `None` when the name does not give one.
///
/// Names are kept lower-cased with brackets and quotes removed: SQL Server
/// compares identifiers under the database's collation, case-insensitive
/// by default (`SQL_Latin1_General_CP1_CI_AS`), and ignores trailing spaces
/// when comparing strings
/// (https://learn.microsoft.com/en-us/sql/relational-databases/databases/database-identifiers,
/// https://learn.microsoft.com/en-us/sql/t-sql/language-elements/string-comparison-assignment).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TableName {
    pub database: Option<String>,
    pub schema: String,
    pub table: String,
}

/// How an identifier compares: lower case, trailing spaces dropped.
pub(crate) fn fold(s: &str) -> String {
    s.trim_end().to_lowercase()
}

impl TableName {
    /// Parses `t`, `s.t`, `d.s.t`, `d..t` and bracketed forms, lower-cased.
    /// A four-part (linked server) name is not a table of this server.
    pub fn parse(text: &str) -> Option<TableName> {
        let parts: Vec<String> = split_name(text)?;
        Self::from_parts(&parts)
    }

    pub(crate) fn from_parts(parts: &[String]) -> Option<TableName> {
        let (database, schema, table) = match parts {
            [t] => (None, String::new(), fold(t)),
            [s, t] => (None, fold(s), fold(t)),
            [d, s, t] => (Some(fold(d)), fold(s), fold(t)),
            _ => return None,
        };
        if table.is_empty() || database.as_deref() == Some("") {
            return None;
        }
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

    /// The name as SQL Server resolves it when `database` is the current
    /// one: a name without a database is in that database.
    pub fn in_database(&self, database: &str) -> TableName {
        TableName {
            database: Some(self.database.clone().unwrap_or_else(|| fold(database))),
            ..self.clone()
        }
    }

    /// Whether a grant on `granted` covers this table, both resolved in
    /// `database` first: a grant without a database means that database
    /// and no other.
    pub fn covered_by(&self, granted: &TableName, database: &str) -> bool {
        self.in_database(database) == granted.in_database(database)
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

/// Splits a dotted name with `[bracketed]` (`]]` for `]`) or `"quoted"`
/// (`""` for `"`) parts, case kept; `None` for an unterminated part, or
/// for a space between two pieces of one part (`dbo.my table`: a space in
/// a name needs brackets).
pub fn split_name(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    // Whether this part had something, then a space.
    let mut spaced = false;
    let mut chars = text.trim().chars().peekable();
    while let Some(c) = chars.next() {
        if spaced && c != '.' && !c.is_whitespace() {
            return None;
        }
        match c {
            '[' | '"' => {
                let close = if c == '[' { ']' } else { '"' };
                let mut closed = false;
                while let Some(c) = chars.next() {
                    if c == close {
                        if chars.peek() == Some(&close) {
                            chars.next();
                            cur.push(close);
                            continue;
                        }
                        closed = true;
                        break;
                    }
                    cur.push(c);
                }
                if !closed {
                    return None;
                }
            }
            '.' => {
                parts.push(std::mem::take(&mut cur));
                spaced = false;
            }
            c if c.is_whitespace() => spaced = !cur.is_empty() || spaced,
            c => cur.push(c),
        }
    }
    parts.push(cur);
    (!parts.last()?.is_empty()).then_some(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(text: &str) -> Option<Vec<String>> {
        split_name(text)
    }

    #[test]
    fn parts_are_bracketed_quoted_or_bare() {
        let v = |p: &[&str]| Some(p.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(split("dbo.t"), v(&["dbo", "t"]));
        assert_eq!(split(" dbo . t "), v(&["dbo", "t"]));
        assert_eq!(split("[sales].[order lines]"), v(&["sales", "order lines"]));
        assert_eq!(split("\"a\"\"b\".[c]]d]"), v(&["a\"b", "c]d"]));
        assert_eq!(split("d..t"), v(&["d", "", "t"]));
        assert_eq!(split("[unterminated"), None);
    }

    /// A bare part cannot hold a space: `sales.order lines` is not the
    /// table `orderlines` (nor, as T-SQL would read it, `sales.order`
    /// aliased `lines`). Refused, so a write never lands in a table the
    /// caller did not name.
    #[test]
    fn a_space_inside_a_bare_part_is_refused() {
        for bad in [
            "sales.order lines",
            "dbo.my table",
            "my db.dbo.t",
            "[dbo] x.t",
            "dbo.[t] x",
        ] {
            assert_eq!(split(bad), None, "{bad}");
            assert_eq!(TableName::parse(bad), None, "{bad}");
        }
    }
}
