//! SQLite functions the rewritten SQL calls: storage conversion with Spark's
//! cast errors, `uuid()`, `current_timestamp()`, `current_date()` and
//! `array_contains`.

use rusqlite::functions::FunctionFlags;
use rusqlite::types::{ToSqlOutput, Value};
use rusqlite::Connection;

use super::types::{self, Cell, DbxType};
use crate::clock::Clock;

fn to_value(c: Cell) -> Value {
    match c {
        Cell::Null => Value::Null,
        Cell::Int(i) => Value::Integer(i),
        Cell::Real(f) => Value::Real(f),
        Cell::Text(t) => Value::Text(t),
        Cell::Blob(b) => Value::Blob(b),
    }
}

fn convert(ctx: &rusqlite::functions::Context<'_>) -> rusqlite::Result<ToSqlOutput<'static>> {
    let cell = Cell::from(ctx.get_raw(0));
    let ty_text: String = ctx.get(1)?;
    let ty = DbxType::parse(&ty_text).ok_or_else(|| {
        rusqlite::Error::UserFunctionError(format!("unknown type {ty_text}").into())
    })?;
    types::store(cell, &ty)
        .map(|c| ToSqlOutput::Owned(to_value(c)))
        .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))
}

/// Registers the sandbox's functions on a connection; `clock` is the
/// workspace's time (`current_timestamp()`, commit timestamps).
pub fn register(conn: &Connection, clock: &Clock) -> rusqlite::Result<()> {
    let det = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("__dbx_store", 2, det, |ctx| convert(ctx))?;
    conn.create_scalar_function("__dbx_cast", 2, det, |ctx| convert(ctx))?;
    conn.create_scalar_function("__dbx_uuid", 0, FunctionFlags::SQLITE_UTF8, |_| {
        Ok(uuid::Uuid::new_v4().to_string())
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__dbx_now", 0, FunctionFlags::SQLITE_UTF8, move |_| {
        Ok(types::timestamp_text(&c.now_utc()))
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__dbx_today", 0, FunctionFlags::SQLITE_UTF8, move |_| {
        Ok(c.now().format("%Y-%m-%d").to_string())
    })?;
    let c = clock.clone();
    conn.create_scalar_function("__dbx_clock_ms", 0, FunctionFlags::SQLITE_UTF8, move |_| {
        Ok(c.now().timestamp_millis())
    })?;
    conn.create_scalar_function("__dbx_array_contains", 2, det, |ctx| {
        let arr = Cell::from(ctx.get_raw(0));
        let needle = Cell::from(ctx.get_raw(1));
        let Some(items) = types::array_items(&arr) else {
            return Ok(None);
        };
        let needle = match needle {
            Cell::Null => return Ok(None),
            Cell::Int(i) => i.to_string(),
            Cell::Real(f) => types::render_double(f),
            Cell::Text(t) => t,
            Cell::Blob(b) => String::from_utf8_lossy(&b).into_owned(),
        };
        Ok(Some(items.iter().any(|i| i.as_deref() == Some(&needle))))
    })?;
    Ok(())
}

/// The workspace's time, read through the connection's clock function (so
/// code holding only the connection sees the same, movable, clock).
pub fn now(conn: &Connection) -> chrono::NaiveDateTime {
    conn.query_row("SELECT __dbx_clock_ms()", [], |r| r.get::<_, i64>(0))
        .ok()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .unwrap_or_else(chrono::Utc::now)
        .naive_utc()
}
