//! CHECK and FOREIGN KEY constraints: what the catalog keeps of them, the
//! names SQL Server gives unnamed ones, and the errors a violation raises.
//!
//! Constraints are checked once per statement, after all its rows are
//! written (a self-referencing `INSERT tree VALUES (1, NULL), (2, 1)`
//! succeeds, as in SQL Server), by `session::effects`.
//! learn.microsoft.com/sql/relational-databases/tables/create-foreign-key-relationships
//! learn.microsoft.com/sql/relational-databases/tables/create-check-constraints

use rusqlite::{params, Connection, OptionalExtension};

use super::error::SqlError;

/// What a FOREIGN KEY does to referencing rows when the referenced key is
/// deleted or updated; the codes of sys.foreign_keys'
/// `delete_referential_action` / `update_referential_action`.
/// learn.microsoft.com/sql/relational-databases/system-catalog-views/sys-foreign-keys-transact-sql
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefAction {
    NoAction,
    Cascade,
    SetNull,
    SetDefault,
}

impl RefAction {
    pub fn code(self) -> i64 {
        match self {
            RefAction::NoAction => 0,
            RefAction::Cascade => 1,
            RefAction::SetNull => 2,
            RefAction::SetDefault => 3,
        }
    }

    pub fn from_code(c: i64) -> RefAction {
        match c {
            1 => RefAction::Cascade,
            2 => RefAction::SetNull,
            3 => RefAction::SetDefault,
            _ => RefAction::NoAction,
        }
    }

    /// T-SQL has no RESTRICT; it is NO ACTION's other name in sqlparser's AST.
    pub fn from_ast(a: Option<&sqlparser::ast::ReferentialAction>) -> RefAction {
        use sqlparser::ast::ReferentialAction as R;
        match a {
            Some(R::Cascade) => RefAction::Cascade,
            Some(R::SetNull) => RefAction::SetNull,
            Some(R::SetDefault) => RefAction::SetDefault,
            _ => RefAction::NoAction,
        }
    }
}

/// A CHECK constraint.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckConstraint {
    /// 0 for a temporary table's constraint (never in the catalog).
    pub object_id: i64,
    pub name: String,
    /// The condition as T-SQL text, in parentheses as sys.check_constraints shows it.
    pub definition: String,
    /// The column of a column-level constraint (named in error 547).
    pub column: Option<String>,
    pub disabled: bool,
    pub not_trusted: bool,
    pub system_named: bool,
}

/// A FOREIGN KEY constraint of a table (the referencing side).
#[derive(Clone, Debug, PartialEq)]
pub struct ForeignKey {
    pub object_id: i64,
    pub name: String,
    pub columns: Vec<String>,
    /// The referenced table, `db.schema.table`.
    pub ref_db: String,
    pub ref_schema: String,
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    pub on_delete: RefAction,
    pub on_update: RefAction,
    pub disabled: bool,
    pub not_trusted: bool,
    pub system_named: bool,
}

fn sqlite_err(e: rusqlite::Error) -> SqlError {
    SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}"))
}

fn json_err(e: serde_json::Error) -> SqlError {
    SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}"))
}

/// The name SQL Server gives an unnamed constraint: prefix, up to 9
/// characters of the table, the column cut so the name stays 30
/// characters, and the object id in hexadecimal (e.g.
/// `FK__students__dep_id__19DFD96B`).
pub fn system_name(prefix: &str, table: &str, column: Option<&str>, object_id: i64) -> String {
    let table: String = table.trim_start_matches('#').chars().take(9).collect();
    let hex = format!("{:08X}", object_id as u32);
    match column {
        Some(c) => {
            let room = 14usize.saturating_sub(table.chars().count()).max(1);
            let col: String = c.chars().take(room).collect();
            format!("{prefix}__{table}__{col}__{hex}")
        }
        None => format!("{prefix}__{table}__{hex}"),
    }
}

/// Error 547: a statement left a row that violates a constraint.
/// `kind` is `CHECK`, `FOREIGN KEY`, `FOREIGN KEY SAME TABLE`, `REFERENCE`
/// or `SAME TABLE REFERENCE`; `table` is `schema.table`.
/// learn.microsoft.com/sql/relational-databases/errors-events/database-engine-events-and-errors-0-to-999
pub fn conflict(
    statement: &str,
    kind: &str,
    name: &str,
    db: &str,
    table: &str,
    column: Option<&str>,
) -> SqlError {
    let column = column
        .map(|c| format!(", column '{c}'"))
        .unwrap_or_default();
    SqlError::new(
        547,
        0,
        16,
        format!(
            "The {statement} statement conflicted with the {kind} constraint \"{name}\". The conflict occurred in database \"{db}\", table \"{table}\"{column}."
        ),
    )
}

/// One catalog row of `__sb_constraints`, as stored.
struct Row {
    object_id: i64,
    name: String,
    kind: String,
    definition: Option<String>,
    column: Option<String>,
    columns: Option<String>,
    ref_table_id: Option<i64>,
    ref_columns: Option<String>,
    on_delete: i64,
    on_update: i64,
    disabled: bool,
    not_trusted: bool,
    system_named: bool,
}

fn rows(conn: &Connection, where_: &str, id: i64) -> Result<Vec<Row>, SqlError> {
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT object_id, name, kind, definition, column_name, columns, ref_table_id, ref_columns,
                    on_delete, on_update, is_disabled, is_not_trusted, is_system_named
             FROM __sb_constraints WHERE {where_} ORDER BY object_id"
        ))
        .map_err(sqlite_err)?;
    let it = st
        .query_map([id], |r| {
            Ok(Row {
                object_id: r.get(0)?,
                name: r.get(1)?,
                kind: r.get(2)?,
                definition: r.get(3)?,
                column: r.get(4)?,
                columns: r.get(5)?,
                ref_table_id: r.get(6)?,
                ref_columns: r.get(7)?,
                on_delete: r.get(8)?,
                on_update: r.get(9)?,
                disabled: r.get(10)?,
                not_trusted: r.get(11)?,
                system_named: r.get(12)?,
            })
        })
        .map_err(sqlite_err)?;
    it.collect::<Result<Vec<_>, _>>().map_err(sqlite_err)
}

fn table_name(conn: &Connection, id: i64) -> Result<(String, String, String), SqlError> {
    conn.query_row(
        "SELECT db, schema, name FROM __sb_tables WHERE object_id = ?1",
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .map_err(sqlite_err)
}

fn names(json: Option<&str>) -> Result<Vec<String>, SqlError> {
    match json {
        Some(j) => serde_json::from_str(j).map_err(json_err),
        None => Ok(vec![]),
    }
}

fn foreign_key(conn: &Connection, r: Row) -> Result<ForeignKey, SqlError> {
    let (ref_db, ref_schema, ref_table) = table_name(conn, r.ref_table_id.unwrap_or_default())?;
    Ok(ForeignKey {
        object_id: r.object_id,
        name: r.name,
        columns: names(r.columns.as_deref())?,
        ref_db,
        ref_schema,
        ref_table,
        ref_columns: names(r.ref_columns.as_deref())?,
        on_delete: RefAction::from_code(r.on_delete),
        on_update: RefAction::from_code(r.on_update),
        disabled: r.disabled,
        not_trusted: r.not_trusted,
        system_named: r.system_named,
    })
}

/// A table's CHECK and FOREIGN KEY constraints.
pub fn load(
    conn: &Connection,
    table_id: i64,
) -> Result<(Vec<CheckConstraint>, Vec<ForeignKey>), SqlError> {
    let mut checks = Vec::new();
    let mut fks = Vec::new();
    for r in rows(conn, "table_id = ?1", table_id)? {
        if r.kind == "C" {
            checks.push(CheckConstraint {
                object_id: r.object_id,
                name: r.name,
                definition: r.definition.unwrap_or_default(),
                column: r.column,
                disabled: r.disabled,
                not_trusted: r.not_trusted,
                system_named: r.system_named,
            });
        } else {
            fks.push(foreign_key(conn, r)?);
        }
    }
    Ok((checks, fks))
}

/// The FOREIGN KEYs that reference `table_id`, with the id of the table
/// each belongs to.
pub fn referencing(conn: &Connection, table_id: i64) -> Result<Vec<(i64, ForeignKey)>, SqlError> {
    let mut out = Vec::new();
    for r in rows(conn, "kind = 'F' AND ref_table_id = ?1", table_id)? {
        let owner: i64 = conn
            .query_row(
                "SELECT table_id FROM __sb_constraints WHERE object_id = ?1",
                [r.object_id],
                |row| row.get(0),
            )
            .map_err(sqlite_err)?;
        out.push((owner, foreign_key(conn, r)?));
    }
    Ok(out)
}

/// Stores a CHECK constraint of a permanent table.
pub fn insert_check(
    conn: &Connection,
    db: &str,
    schema: &str,
    table_id: i64,
    c: &CheckConstraint,
) -> Result<(), SqlError> {
    conn.execute(
        "INSERT INTO __sb_constraints(object_id, db, schema, name, table_id, kind, definition,
             column_name, is_disabled, is_not_trusted, is_system_named, created)
         VALUES (?1, ?2, ?3, ?4, ?5, 'C', ?6, ?7, ?8, ?9, ?10, __sysdatetime())",
        params![
            c.object_id,
            db,
            schema,
            c.name,
            table_id,
            c.definition,
            c.column,
            c.disabled,
            c.not_trusted,
            c.system_named
        ],
    )
    .map_err(|e| unique_name(e, &c.name))?;
    Ok(())
}

/// Stores a FOREIGN KEY of a permanent table.
pub fn insert_foreign_key(
    conn: &Connection,
    db: &str,
    schema: &str,
    table_id: i64,
    ref_table_id: i64,
    fk: &ForeignKey,
) -> Result<(), SqlError> {
    conn.execute(
        "INSERT INTO __sb_constraints(object_id, db, schema, name, table_id, kind, columns,
             ref_table_id, ref_columns, on_delete, on_update, is_disabled, is_not_trusted,
             is_system_named, created)
         VALUES (?1, ?2, ?3, ?4, ?5, 'F', ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, __sysdatetime())",
        params![
            fk.object_id,
            db,
            schema,
            fk.name,
            table_id,
            serde_json::to_string(&fk.columns).map_err(json_err)?,
            ref_table_id,
            serde_json::to_string(&fk.ref_columns).map_err(json_err)?,
            fk.on_delete.code(),
            fk.on_update.code(),
            fk.disabled,
            fk.not_trusted,
            fk.system_named
        ],
    )
    .map_err(|e| unique_name(e, &fk.name))?;
    Ok(())
}

fn unique_name(e: rusqlite::Error, name: &str) -> SqlError {
    if e.to_string().contains("UNIQUE") {
        SqlError::object_exists(name)
    } else {
        sqlite_err(e)
    }
}

/// Marks constraints trusted or not, enabled or disabled.
pub fn set_state(
    conn: &Connection,
    object_id: i64,
    disabled: bool,
    not_trusted: bool,
) -> Result<(), SqlError> {
    conn.execute(
        "UPDATE __sb_constraints SET is_disabled = ?2, is_not_trusted = ?3 WHERE object_id = ?1",
        params![object_id, disabled, not_trusted],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// A constraint of `table_id` by name: its object id and kind (`C`, `F`).
pub fn find(
    conn: &Connection,
    table_id: i64,
    name: &str,
) -> Result<Option<(i64, String)>, SqlError> {
    conn.query_row(
        "SELECT object_id, kind FROM __sb_constraints WHERE table_id = ?1 AND name = ?2",
        params![table_id, name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(sqlite_err)
}

pub fn delete(conn: &Connection, object_id: i64) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __sb_constraints WHERE object_id = ?1",
        [object_id],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// Removes a table's own constraints (DROP TABLE).
/// Forgets a dropped database's constraints.
pub fn delete_for_database(conn: &Connection, db: &str) -> Result<(), SqlError> {
    conn.execute("DELETE FROM __sb_constraints WHERE db = ?1", [db])
        .map_err(sqlite_err)?;
    Ok(())
}

pub fn delete_for_table(conn: &Connection, table_id: i64) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __sb_constraints WHERE table_id = ?1",
        [table_id],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// The name of a FOREIGN KEY of another table that references `table_id`,
/// if any (DROP TABLE and TRUNCATE TABLE refuse then).
pub fn referenced_by_other(conn: &Connection, table_id: i64) -> Result<Option<String>, SqlError> {
    conn.query_row(
        "SELECT name FROM __sb_constraints WHERE kind = 'F' AND ref_table_id = ?1 AND table_id <> ?1 LIMIT 1",
        [table_id],
        |r| r.get(0),
    )
    .optional()
    .map_err(sqlite_err)
}

/// The column names a CHECK condition mentions (to know whether an UPDATE
/// touched them).
pub fn mentioned_columns(expr: &sqlparser::ast::Expr) -> Vec<String> {
    let mut out = Vec::new();
    let _ = sqlparser::ast::visit_expressions(expr, |e| {
        match e {
            sqlparser::ast::Expr::Identifier(i) => out.push(i.value.clone()),
            sqlparser::ast::Expr::CompoundIdentifier(p) => {
                if let Some(i) = p.last() {
                    out.push(i.value.clone());
                }
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_names_follow_sql_servers_pattern() {
        assert_eq!(
            system_name("FK", "students", Some("dep_id"), 0x19DF_D96B),
            "FK__students__dep_id__19DFD96B"
        );
        assert_eq!(
            system_name("FK", "QuestionData", Some("ThreadId"), 0x5AEE_82B9),
            "FK__QuestionD__Threa__5AEE82B9"
        );
        assert_eq!(system_name("CK", "t", None, 255), "CK__t__000000FF");
    }

    #[test]
    fn conflict_message_names_the_column_when_there_is_one() {
        let e = conflict("INSERT", "CHECK", "ck", "db", "dbo.t", Some("a"));
        assert_eq!(e.number, 547);
        assert_eq!(
            e.message,
            "The INSERT statement conflicted with the CHECK constraint \"ck\". The conflict occurred in database \"db\", table \"dbo.t\", column 'a'."
        );
        let e = conflict("DELETE", "REFERENCE", "fk", "db", "dbo.c", None);
        assert!(e.message.ends_with("table \"dbo.c\"."));
    }
}
