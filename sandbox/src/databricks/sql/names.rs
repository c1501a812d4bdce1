//! Unity Catalog's three-level names as the sandbox stores them, and the
//! SQLite identifiers of the tables holding their rows: the vocabulary every
//! other part of the SQL layer names objects with.

/// A fully qualified table, schema or volume name, lower case.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct FullName {
    pub catalog: String,
    pub schema: String,
    pub name: String,
}

impl FullName {
    pub fn new(catalog: &str, schema: &str, name: &str) -> Self {
        FullName {
            catalog: catalog.to_lowercase(),
            schema: schema.to_lowercase(),
            name: name.to_lowercase(),
        }
    }

    /// `catalog.schema.name`, which is also the SQLite table name of a table.
    pub fn dotted(&self) -> String {
        format!("{}.{}.{}", self.catalog, self.schema, self.name)
    }

    /// Quoted SQLite identifier of the table holding this table's rows.
    pub fn physical(&self) -> String {
        quote_ident(&self.dotted())
    }

    /// Parses `a.b.c` (no quoting).
    pub fn parse(text: &str) -> Option<Self> {
        let parts: Vec<&str> = text.split('.').collect();
        match parts.as_slice() {
            [c, s, n] if !c.is_empty() && !s.is_empty() && !n.is_empty() => {
                Some(FullName::new(c, s, n))
            }
            _ => None,
        }
    }
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}
