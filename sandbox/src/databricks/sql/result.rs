//! What a statement gives back: its columns and rows, and the named
//! parameters it was bound with. Below every statement's implementation,
//! so the stores that answer with rows (history) need not know the runner.

use super::types::{Cell, DbxType};

/// A named statement parameter (`:name`), already typed.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub ty: DbxType,
    /// `None` binds NULL.
    pub value: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Column {
    pub name: String,
    pub ty: DbxType,
}

/// A statement's result: columns and rows (empty for DDL).
#[derive(Clone, Debug, Default)]
pub struct ResultSet {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
}

/// A one-row result of counts (`num_affected_rows`, ...).
pub(super) fn counts(items: &[(&str, u64)]) -> ResultSet {
    ResultSet {
        columns: items
            .iter()
            .map(|(n, _)| Column {
                name: n.to_string(),
                ty: DbxType::Long,
            })
            .collect(),
        rows: vec![items.iter().map(|(_, v)| Cell::Int(*v as i64)).collect()],
    }
}

/// A cell as SQLite binds it.
pub(super) fn cell_value(c: Cell) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match c {
        Cell::Null => V::Null,
        Cell::Int(i) => V::Integer(i),
        Cell::Real(f) => V::Real(f),
        Cell::Text(t) => V::Text(t),
        Cell::Blob(b) => V::Blob(b),
    }
}
