//! Unity Catalog row filters and column masks, on SQL user-defined
//! functions (https://docs.databricks.com/en/tables/row-and-column-filters.html,
//! https://docs.databricks.com/en/sql/language-manual/sql-ref-syntax-ddl-create-sql-function.html):
//!
//! - `CREATE [OR REPLACE] FUNCTION [IF NOT EXISTS] c.s.f (p TYPE, ...)
//!   RETURNS TYPE [LANGUAGE SQL | DETERMINISTIC | COMMENT '...' ...] RETURN
//!   expression`, `DROP FUNCTION [IF EXISTS] c.s.f` (CREATE FUNCTION on the
//!   schema, with USE CATALOG and USE SCHEMA);
//! - `ALTER TABLE t SET ROW FILTER f ON (col, ...)`, `ALTER TABLE t DROP
//!   ROW FILTER`, `ALTER TABLE t ALTER COLUMN c SET MASK f [USING COLUMNS
//!   (col, ...)]`, `ALTER TABLE t ALTER COLUMN c DROP MASK` (the table's
//!   owner, or MANAGE);
//! - every read of the table — a query, an INSERT's or MERGE's source, a
//!   subquery — sees only the rows the filter returns true for and each
//!   masked column as its mask returns it, both evaluated for the caller
//!   (`current_user()`, `is_account_group_member()` are the caller's);
//! - `information_schema.row_filters` and `information_schema.column_masks`
//!   list them, for the tables the caller may read
//!   (https://docs.databricks.com/sql/language-manual/information-schema/row_filters.html,
//!   .../column_masks.html).
//!
//! Groups are not modelled: `is_account_group_member` and `is_member` are
//! true for `admins` when the caller is a workspace admin, false otherwise.

use std::ops::ControlFlow;

use rusqlite::{params, Connection, OptionalExtension};
use sqlparser::ast::{Expr, Ident, VisitMut, VisitorMut};

use super::catalog::{FullName, TableInfo};
use super::error::SqlError;
use super::types::DbxType;

pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS __dbx_functions (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, name TEXT NOT NULL, params TEXT NOT NULL,
    returns TEXT NOT NULL, body TEXT NOT NULL, owner TEXT, PRIMARY KEY (catalog, schema, name));
CREATE TABLE IF NOT EXISTS __dbx_row_filters (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, tbl TEXT NOT NULL, fcatalog TEXT NOT NULL,
    fschema TEXT NOT NULL, fname TEXT NOT NULL, columns TEXT NOT NULL,
    PRIMARY KEY (catalog, schema, tbl));
CREATE TABLE IF NOT EXISTS __dbx_column_masks (
    catalog TEXT NOT NULL, schema TEXT NOT NULL, tbl TEXT NOT NULL, col TEXT NOT NULL,
    fcatalog TEXT NOT NULL, fschema TEXT NOT NULL, fname TEXT NOT NULL, using_columns TEXT NOT NULL,
    PRIMARY KEY (catalog, schema, tbl, col));
";

fn db(e: rusqlite::Error) -> SqlError {
    SqlError::internal(e)
}

/// A SQL function: its parameters (name, type), return type and body.
#[derive(Clone, Debug, PartialEq)]
pub struct Function {
    pub name: FullName,
    pub params: Vec<(String, String)>,
    pub returns: String,
    pub body: String,
}

fn routine_not_found(name: &FullName) -> SqlError {
    SqlError::invalid(
        "ROUTINE_NOT_FOUND",
        &format!(
            "The routine `{}`.`{}`.`{}` cannot be found. Verify the spelling and correctness of the schema and catalog.",
            name.catalog, name.schema, name.name
        ),
        "42883",
    )
}

pub fn get_function(conn: &Connection, name: &FullName) -> Result<Option<Function>, SqlError> {
    conn.query_row(
        "SELECT params, returns, body FROM __dbx_functions WHERE catalog = ?1 AND schema = ?2 AND name = ?3",
        [&name.catalog, &name.schema, &name.name],
        |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)),
    )
    .optional()
    .map_err(db)?
    .map(|(p, returns, body)| {
        Ok(Function {
            name: name.clone(),
            params: serde_json::from_str(&p).map_err(SqlError::internal)?,
            returns,
            body,
        })
    })
    .transpose()
}

pub fn create_function(
    conn: &Connection,
    f: &Function,
    owner: &str,
    replace: bool,
    if_not_exists: bool,
) -> Result<(), SqlError> {
    if get_function(conn, &f.name)?.is_some() {
        if if_not_exists {
            return Ok(());
        }
        if !replace {
            return Err(SqlError::invalid(
                "ROUTINE_ALREADY_EXISTS",
                &format!(
                    "Cannot create the routine `{}`.`{}`.`{}` because it already exists.",
                    f.name.catalog, f.name.schema, f.name.name
                ),
                "42723",
            ));
        }
    }
    // The body must be one expression of the parameters.
    super::parse::parse_expr(&f.body)?;
    conn.execute(
        "INSERT OR REPLACE INTO __dbx_functions (catalog, schema, name, params, returns, body, owner) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            f.name.catalog,
            f.name.schema,
            f.name.name,
            serde_json::to_string(&f.params).map_err(SqlError::internal)?,
            f.returns,
            f.body,
            owner
        ],
    )
    .map_err(db)?;
    Ok(())
}

pub fn drop_function(conn: &Connection, name: &FullName, if_exists: bool) -> Result<(), SqlError> {
    let n = conn
        .execute(
            "DELETE FROM __dbx_functions WHERE catalog = ?1 AND schema = ?2 AND name = ?3",
            [&name.catalog, &name.schema, &name.name],
        )
        .map_err(db)?;
    if n == 0 && !if_exists {
        return Err(routine_not_found(name));
    }
    Ok(())
}

fn check_columns(table: &TableInfo, columns: &[String]) -> Result<Vec<String>, SqlError> {
    columns
        .iter()
        .map(|c| super::catalog::column(table, c).map(|info| info.name.clone()))
        .collect()
}

fn function_for(
    conn: &Connection,
    name: &FullName,
    arguments: usize,
) -> Result<Function, SqlError> {
    let f = get_function(conn, name)?.ok_or_else(|| routine_not_found(name))?;
    if f.params.len() != arguments {
        return Err(SqlError::invalid(
            "WRONG_NUM_ARGS.WITHOUT_SUGGESTION",
            &format!(
                "The `{}` requires {} parameters but the actual number is {arguments}.",
                f.name.dotted(),
                f.params.len()
            ),
            "42605",
        ));
    }
    Ok(f)
}

/// ALTER TABLE ... SET ROW FILTER f ON (columns).
pub fn set_row_filter(
    conn: &Connection,
    table: &TableInfo,
    function: &FullName,
    columns: &[String],
) -> Result<(), SqlError> {
    let columns = check_columns(table, columns)?;
    let f = function_for(conn, function, columns.len())?;
    if !DbxType::parse(&f.returns).is_some_and(|t| t == DbxType::Boolean) {
        return Err(SqlError::invalid(
            "ROW_LEVEL_SECURITY_INVALID_FILTER_RETURN_TYPE",
            &format!(
                "The row filter function {} must return BOOLEAN, not {}.",
                f.name.dotted(),
                f.returns
            ),
            "42K0D",
        ));
    }
    let t = &table.name;
    conn.execute(
        "INSERT OR REPLACE INTO __dbx_row_filters (catalog, schema, tbl, fcatalog, fschema, fname, columns) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![t.catalog, t.schema, t.name, function.catalog, function.schema, function.name, columns.join(",")],
    )
    .map_err(db)?;
    Ok(())
}

pub fn drop_row_filter(conn: &Connection, table: &FullName) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_row_filters WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
        [&table.catalog, &table.schema, &table.name],
    )
    .map_err(db)?;
    Ok(())
}

/// ALTER TABLE ... ALTER COLUMN c SET MASK f [USING COLUMNS (columns)]:
/// the masked column is the function's first argument, the others follow.
pub fn set_mask(
    conn: &Connection,
    table: &TableInfo,
    column: &str,
    function: &FullName,
    using: &[String],
) -> Result<(), SqlError> {
    let column = check_columns(table, &[column.to_string()])?.remove(0);
    let using = check_columns(table, using)?;
    function_for(conn, function, using.len() + 1)?;
    let t = &table.name;
    conn.execute(
        "INSERT OR REPLACE INTO __dbx_column_masks (catalog, schema, tbl, col, fcatalog, fschema, fname, using_columns) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![t.catalog, t.schema, t.name, column, function.catalog, function.schema, function.name, using.join(",")],
    )
    .map_err(db)?;
    Ok(())
}

pub fn drop_mask(conn: &Connection, table: &TableInfo, column: &str) -> Result<(), SqlError> {
    let column = check_columns(table, &[column.to_string()])?.remove(0);
    let t = &table.name;
    conn.execute(
        "DELETE FROM __dbx_column_masks WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3 AND col = ?4",
        [&t.catalog, &t.schema, &t.name, &column],
    )
    .map_err(db)?;
    Ok(())
}

/// Forgets a dropped table's filter and masks.
pub fn forget(conn: &Connection, table: &FullName) -> Result<(), SqlError> {
    for t in ["__dbx_row_filters", "__dbx_column_masks"] {
        conn.execute(
            &format!("DELETE FROM {t} WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3"),
            [&table.catalog, &table.schema, &table.name],
        )
        .map_err(db)?;
    }
    Ok(())
}

/// A table's row filter: the function and the columns passed to it.
fn row_filter(
    conn: &Connection,
    t: &FullName,
) -> Result<Option<(FullName, Vec<String>)>, SqlError> {
    conn.query_row(
        "SELECT fcatalog, fschema, fname, columns FROM __dbx_row_filters WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3",
        [&t.catalog, &t.schema, &t.name],
        |r| {
            Ok((
                FullName::new(&r.get::<_, String>(0)?, &r.get::<_, String>(1)?, &r.get::<_, String>(2)?),
                split(&r.get::<_, String>(3)?),
            ))
        },
    )
    .optional()
    .map_err(db)
}

/// A table's masks: column → (function, the columns after it).
fn masks(
    conn: &Connection,
    t: &FullName,
) -> Result<Vec<(String, FullName, Vec<String>)>, SqlError> {
    let mut st = conn
        .prepare("SELECT col, fcatalog, fschema, fname, using_columns FROM __dbx_column_masks WHERE catalog = ?1 AND schema = ?2 AND tbl = ?3")
        .map_err(db)?;
    let rows = st
        .query_map([&t.catalog, &t.schema, &t.name], |r| {
            Ok((
                r.get::<_, String>(0)?,
                FullName::new(
                    &r.get::<_, String>(1)?,
                    &r.get::<_, String>(2)?,
                    &r.get::<_, String>(3)?,
                ),
                split(&r.get::<_, String>(4)?),
            ))
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok(rows)
}

fn split(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

fn backticked(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// The function's body with its parameters bound to `arguments` (column
/// names), as Spark SQL text.
fn applied(
    conn: &Connection,
    function: &FullName,
    arguments: &[String],
) -> Result<String, SqlError> {
    struct Bind<'a>(&'a [(String, String)]);
    impl VisitorMut for Bind<'_> {
        type Break = ();
        fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
            if let Expr::Identifier(id) = e {
                if let Some((_, column)) = self
                    .0
                    .iter()
                    .find(|(p, _)| p.eq_ignore_ascii_case(&id.value))
                {
                    *e = Expr::Identifier(Ident::with_quote('`', column.clone()));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let f = function_for(conn, function, arguments.len())?;
    let mut body = super::parse::parse_expr(&f.body)?;
    let bound: Vec<(String, String)> = f
        .params
        .iter()
        .map(|(p, _)| p.clone())
        .zip(arguments.iter().cloned())
        .collect();
    let _ = body.visit(&mut Bind(&bound));
    Ok(format!("({body})"))
}

/// What a read of `table` becomes when it has a row filter or masks: a
/// SELECT of its columns (masked ones as their mask returns them) from
/// `source` (the table itself, named so the rewriter does not govern it
/// again) where the filter holds; `None` when it has neither.
pub fn governed_select(
    conn: &Connection,
    table: &TableInfo,
    source: &str,
) -> Result<Option<String>, SqlError> {
    let filter = row_filter(conn, &table.name)?;
    let masks = masks(conn, &table.name)?;
    if filter.is_none() && masks.is_empty() {
        return Ok(None);
    }
    let mut items = Vec::with_capacity(table.columns.len());
    for c in &table.columns {
        match masks
            .iter()
            .find(|(col, _, _)| col.eq_ignore_ascii_case(&c.name))
        {
            Some((col, f, using)) => {
                let mut args = vec![col.clone()];
                args.extend(using.iter().cloned());
                items.push(format!(
                    "CAST({} AS {}) AS {}",
                    applied(conn, f, &args)?,
                    c.ty,
                    backticked(&c.name)
                ));
            }
            None => items.push(backticked(&c.name)),
        }
    }
    let filter = match filter {
        Some((f, columns)) => format!(" WHERE coalesce({}, false)", applied(conn, &f, &columns)?),
        None => String::new(),
    };
    Ok(Some(format!(
        "SELECT {} FROM {}{filter}",
        items.join(", "),
        backticked(source)
    )))
}

/// The rows of `query` (text columns; `?1` is the catalog) for the tables
/// `visible` says the caller may read (its first three columns name them).
fn listed(
    conn: &Connection,
    query: &str,
    catalog: &str,
    visible: &dyn Fn(&FullName) -> bool,
) -> Result<Vec<Vec<String>>, SqlError> {
    let mut st = conn.prepare(query).map_err(db)?;
    let n = st.column_count();
    let rows: Vec<Vec<String>> = st
        .query_map([catalog], |r| {
            (0..n).map(|i| r.get::<_, String>(i)).collect()
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    Ok(rows
        .into_iter()
        .filter(|r| visible(&FullName::new(&r[0], &r[1], &r[2])))
        .collect())
}

/// `information_schema.row_filters` of `catalog`: one row per table with
/// a filter, among the tables `visible` says the caller may read.
pub fn row_filter_rows(
    conn: &Connection,
    catalog: &str,
    visible: &dyn Fn(&FullName) -> bool,
) -> Result<Vec<Vec<String>>, SqlError> {
    listed(
        conn,
        "SELECT catalog, schema, tbl, fcatalog, fschema, fname, columns FROM __dbx_row_filters WHERE catalog = ?1 ORDER BY schema, tbl",
        catalog,
        visible,
    )
}

/// `information_schema.column_masks` of `catalog`.
pub fn column_mask_rows(
    conn: &Connection,
    catalog: &str,
    visible: &dyn Fn(&FullName) -> bool,
) -> Result<Vec<Vec<String>>, SqlError> {
    listed(
        conn,
        "SELECT catalog, schema, tbl, col, fcatalog, fschema, fname, using_columns FROM __dbx_column_masks WHERE catalog = ?1 ORDER BY schema, tbl, col",
        catalog,
        visible,
    )
}

/// The columns of the two information_schema relations.
pub const ROW_FILTER_COLUMNS: [&str; 7] = [
    "catalog_name",
    "schema_name",
    "table_name",
    "filter_catalog",
    "filter_schema",
    "filter_name",
    "filter_col_usage",
];
pub const COLUMN_MASK_COLUMNS: [&str; 8] = [
    "catalog_name",
    "schema_name",
    "table_name",
    "column_name",
    "mask_catalog",
    "mask_schema",
    "mask_name",
    "mask_col_usage",
];

/// `CREATE FUNCTION`'s parameter list: `name TYPE [DEFAULT ...] [COMMENT
/// '...']`, split on commas outside parentheses.
pub fn parse_params(list: &str) -> Result<Vec<(String, String)>, SqlError> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut cur = String::new();
    let mut pieces = Vec::new();
    for ch in list.chars() {
        match ch {
            '(' | '<' => depth += 1,
            ')' | '>' => depth -= 1,
            ',' if depth == 0 => {
                pieces.push(std::mem::take(&mut cur));
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        pieces.push(cur);
    }
    for p in pieces {
        let p = p.trim();
        let (name, rest) = p.split_once(char::is_whitespace).ok_or_else(|| {
            SqlError::syntax(&format!("a function parameter needs a type: '{p}'"))
        })?;
        let upper = rest.to_ascii_uppercase();
        let end = [" DEFAULT ", " COMMENT "]
            .iter()
            .filter_map(|k| upper.find(k))
            .min()
            .unwrap_or(rest.len());
        let ty = rest[..end].trim();
        if DbxType::parse(ty).is_none() {
            return Err(SqlError::syntax(&format!(
                "unknown type {ty} of parameter {name}"
            )));
        }
        out.push((name.trim_matches('`').to_string(), ty.to_string()));
    }
    Ok(out)
}
