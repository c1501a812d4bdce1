//! DML triggers as the catalog keeps them: `CREATE TRIGGER ... ON table
//! {AFTER | FOR} {INSERT, UPDATE, DELETE} AS body`. The session fires them
//! once per statement, after the statement's rows are written and its
//! constraints checked, with `inserted` and `deleted` in scope.
//! learn.microsoft.com/sql/t-sql/statements/create-trigger-transact-sql

use rusqlite::{params, Connection, OptionalExtension};

use super::error::SqlError;

/// The statement kinds a trigger fires for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Events {
    pub insert: bool,
    pub update: bool,
    pub delete: bool,
}

/// A DML trigger.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerInfo {
    pub object_id: i64,
    pub name: String,
    pub table_id: i64,
    pub events: Events,
    pub disabled: bool,
    /// The T-SQL after `AS`.
    pub body: String,
}

fn sqlite_err(e: rusqlite::Error) -> SqlError {
    SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}"))
}

/// A table's triggers, oldest first (SQL Server's order when none is set
/// with sp_settriggerorder is undefined; creation order is one of them).
pub fn for_table(conn: &Connection, table_id: i64) -> Result<Vec<TriggerInfo>, SqlError> {
    let mut st = conn
        .prepare_cached(
            "SELECT object_id, name, table_id, on_insert, on_update, on_delete, is_disabled, body
             FROM __sb_triggers WHERE table_id = ?1 ORDER BY object_id",
        )
        .map_err(sqlite_err)?;
    let it = st
        .query_map([table_id], |r| {
            Ok(TriggerInfo {
                object_id: r.get(0)?,
                name: r.get(1)?,
                table_id: r.get(2)?,
                events: Events {
                    insert: r.get(3)?,
                    update: r.get(4)?,
                    delete: r.get(5)?,
                },
                disabled: r.get(6)?,
                body: r.get(7)?,
            })
        })
        .map_err(sqlite_err)?;
    it.collect::<Result<Vec<_>, _>>().map_err(sqlite_err)
}

/// A trigger by its schema-qualified name: its object id and table.
pub fn find(
    conn: &Connection,
    db: &str,
    schema: &str,
    name: &str,
) -> Result<Option<(i64, i64)>, SqlError> {
    conn.query_row(
        "SELECT object_id, table_id FROM __sb_triggers WHERE db = ?1 AND schema = ?2 AND name = ?3",
        [db, schema, name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(sqlite_err)
}

/// Stores a trigger; with `replace`, an existing one of that name (CREATE
/// OR ALTER, ALTER TRIGGER) keeps its object id.
pub fn save(
    conn: &Connection,
    db: &str,
    schema: &str,
    t: &TriggerInfo,
    replace: bool,
) -> Result<(), SqlError> {
    if replace {
        conn.execute(
            "DELETE FROM __sb_triggers WHERE object_id = ?1",
            [t.object_id],
        )
        .map_err(sqlite_err)?;
    }
    conn.execute(
        "INSERT INTO __sb_triggers(object_id, db, schema, name, table_id, on_insert, on_update,
             on_delete, is_disabled, body, created, modified)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, __sysdatetime(), __sysdatetime())",
        params![
            t.object_id,
            db,
            schema,
            t.name,
            t.table_id,
            t.events.insert,
            t.events.update,
            t.events.delete,
            t.disabled,
            t.body
        ],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

pub fn delete(conn: &Connection, object_id: i64) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __sb_triggers WHERE object_id = ?1",
        [object_id],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// DROP TABLE drops the table's triggers.
/// Forgets a dropped database's triggers.
pub fn delete_for_database(conn: &Connection, db: &str) -> Result<(), SqlError> {
    conn.execute("DELETE FROM __sb_triggers WHERE db = ?1", [db])
        .map_err(sqlite_err)?;
    Ok(())
}

pub fn delete_for_table(conn: &Connection, table_id: i64) -> Result<(), SqlError> {
    conn.execute("DELETE FROM __sb_triggers WHERE table_id = ?1", [table_id])
        .map_err(sqlite_err)?;
    Ok(())
}

/// ENABLE / DISABLE TRIGGER; `name` None is ALL.
pub fn set_disabled(
    conn: &Connection,
    table_id: i64,
    name: Option<&str>,
    disabled: bool,
) -> Result<usize, SqlError> {
    match name {
        Some(n) => conn.execute(
            "UPDATE __sb_triggers SET is_disabled = ?3 WHERE table_id = ?1 AND name = ?2",
            params![table_id, n, disabled],
        ),
        None => conn.execute(
            "UPDATE __sb_triggers SET is_disabled = ?2 WHERE table_id = ?1",
            params![table_id, disabled],
        ),
    }
    .map_err(sqlite_err)
}
