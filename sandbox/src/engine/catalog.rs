//! The sandbox's system catalog: databases, schemas, tables and their
//! declared T-SQL column types, kept in SQLite tables next to the data so
//! DDL is transactional like everything else.

use rusqlite::{params, Connection, OptionalExtension};

use super::collation::{self, Collation};
use super::constraints::{self, CheckConstraint, ForeignKey};
use super::error::SqlError;
use super::typename::parse_sql_type;
use crate::types::{ColumnMeta, SqlType};

pub(crate) const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS __sb_databases(
    name TEXT PRIMARY KEY COLLATE NOCASE, database_id INTEGER NOT NULL, created TEXT NOT NULL,
    collation TEXT, allow_snapshot INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS __sb_dbts(db TEXT PRIMARY KEY COLLATE NOCASE, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS __sb_schemas(
    db TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE, schema_id INTEGER NOT NULL,
    PRIMARY KEY(db, name));
CREATE TABLE IF NOT EXISTS __sb_tables(
    object_id INTEGER PRIMARY KEY, db TEXT NOT NULL COLLATE NOCASE, schema TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, pk_name TEXT, created TEXT NOT NULL, unique_keys TEXT,
    UNIQUE(db, schema, name));
CREATE TABLE IF NOT EXISTS __sb_columns(
    object_id INTEGER NOT NULL, ordinal INTEGER NOT NULL, name TEXT NOT NULL COLLATE NOCASE,
    type TEXT NOT NULL, nullable INTEGER NOT NULL, is_identity INTEGER NOT NULL,
    identity_seed INTEGER, identity_increment INTEGER, default_sql TEXT, in_pk INTEGER NOT NULL,
    computed_sql TEXT, default_name TEXT, collation TEXT, PRIMARY KEY(object_id, ordinal));
CREATE TABLE IF NOT EXISTS __sb_constraints(
    object_id INTEGER PRIMARY KEY, db TEXT NOT NULL COLLATE NOCASE, schema TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, table_id INTEGER NOT NULL, kind TEXT NOT NULL,
    definition TEXT, column_name TEXT, columns TEXT, ref_table_id INTEGER, ref_columns TEXT,
    on_delete INTEGER NOT NULL DEFAULT 0, on_update INTEGER NOT NULL DEFAULT 0,
    is_disabled INTEGER NOT NULL DEFAULT 0, is_not_trusted INTEGER NOT NULL DEFAULT 0,
    is_system_named INTEGER NOT NULL DEFAULT 0, created TEXT NOT NULL, UNIQUE(db, schema, name));
CREATE TABLE IF NOT EXISTS __sb_triggers(
    object_id INTEGER PRIMARY KEY, db TEXT NOT NULL COLLATE NOCASE, schema TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, table_id INTEGER NOT NULL, on_insert INTEGER NOT NULL,
    on_update INTEGER NOT NULL, on_delete INTEGER NOT NULL, is_disabled INTEGER NOT NULL,
    body TEXT NOT NULL, created TEXT NOT NULL, modified TEXT NOT NULL, UNIQUE(db, schema, name));
CREATE TABLE IF NOT EXISTS __sb_ct_databases(
    db TEXT PRIMARY KEY COLLATE NOCASE, retention INTEGER NOT NULL, retention_units INTEGER NOT NULL,
    auto_cleanup INTEGER NOT NULL, current_version INTEGER NOT NULL,
    max_cleanup_version INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS __sb_ct_tables(
    object_id INTEGER PRIMARY KEY, db TEXT NOT NULL COLLATE NOCASE, track_columns INTEGER NOT NULL,
    begin_version INTEGER NOT NULL, cleanup_version INTEGER NOT NULL, min_valid_version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS __sb_ct_commits(
    db TEXT NOT NULL COLLATE NOCASE, version INTEGER NOT NULL, committed TEXT NOT NULL,
    PRIMARY KEY(db, version));
CREATE TABLE IF NOT EXISTS __sb_logins(
    principal_id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE, password TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS __sb_external_logins(
    name TEXT PRIMARY KEY COLLATE NOCASE, object_id TEXT NOT NULL UNIQUE COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS __sb_windows_logins(name TEXT PRIMARY KEY COLLATE NOCASE);
CREATE TABLE IF NOT EXISTS __sb_external_users(
    db TEXT NOT NULL COLLATE NOCASE, name TEXT NOT NULL COLLATE NOCASE,
    object_id TEXT NOT NULL COLLATE NOCASE, PRIMARY KEY(db, name), UNIQUE(db, object_id));
CREATE TABLE IF NOT EXISTS __sb_views(
    object_id INTEGER PRIMARY KEY, db TEXT NOT NULL COLLATE NOCASE, schema TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, columns TEXT NOT NULL, definition TEXT NOT NULL,
    UNIQUE(db, schema, name));
CREATE TABLE IF NOT EXISTS __sb_procedures(
    object_id INTEGER PRIMARY KEY, db TEXT NOT NULL COLLATE NOCASE, schema TEXT NOT NULL COLLATE NOCASE,
    name TEXT NOT NULL COLLATE NOCASE, params TEXT NOT NULL, body TEXT NOT NULL,
    UNIQUE(db, schema, name));
";

/// The views behind INFORMATION_SCHEMA and sys.*, recreated at every start so
/// a kept database file gets the current definitions.
pub(crate) const VIEWS_SQL: &str = "
DROP VIEW IF EXISTS __sb_is_tables; DROP VIEW IF EXISTS __sb_is_columns;
DROP VIEW IF EXISTS __sb_sys_tables; DROP VIEW IF EXISTS __sb_sys_columns;
DROP VIEW IF EXISTS __sb_sys_schemas; DROP VIEW IF EXISTS __sb_sys_databases;
CREATE VIEW __sb_is_tables AS
    SELECT db AS TABLE_CATALOG, schema AS TABLE_SCHEMA, name AS TABLE_NAME, 'BASE TABLE' AS TABLE_TYPE
    FROM __sb_tables;
CREATE VIEW __sb_is_columns AS
    SELECT t.db AS TABLE_CATALOG, t.schema AS TABLE_SCHEMA, t.name AS TABLE_NAME,
           c.name AS COLUMN_NAME, c.ordinal AS ORDINAL_POSITION, c.default_sql AS COLUMN_DEFAULT,
           CASE c.nullable WHEN 1 THEN 'YES' ELSE 'NO' END AS IS_NULLABLE,
           __type_part(c.type, 'name') AS DATA_TYPE,
           __type_part(c.type, 'chars') AS CHARACTER_MAXIMUM_LENGTH,
           __type_part(c.type, 'precision') AS NUMERIC_PRECISION,
           __type_part(c.type, 'scale') AS NUMERIC_SCALE,
           __type_part(c.type, 'dtprecision') AS DATETIME_PRECISION,
           CASE WHEN __type_part(c.type, 'name') IN ('char', 'varchar', 'nchar', 'nvarchar', 'text', 'ntext')
                THEN coalesce(c.collation, 'SQL_Latin1_General_CP1_CI_AS') END AS COLLATION_NAME
    FROM __sb_tables t JOIN __sb_columns c ON c.object_id = t.object_id;
CREATE VIEW __sb_sys_tables AS
    SELECT t.db AS db, t.name AS name, t.object_id AS object_id, s.schema_id AS schema_id,
           'U' AS type, 'USER_TABLE' AS type_desc, t.created AS create_date
    FROM __sb_tables t JOIN __sb_schemas s ON s.db = t.db AND s.name = t.schema;
CREATE VIEW __sb_sys_columns AS
    SELECT t.db AS db, c.object_id AS object_id, c.name AS name, c.ordinal AS column_id,
           __type_part(c.type, 'name') AS type_name, __type_part(c.type, 'bytes') AS max_length,
           __type_part(c.type, 'sys_precision') AS precision,
           __type_part(c.type, 'sys_scale') AS scale,
           c.nullable AS is_nullable, c.is_identity AS is_identity,
           CASE WHEN __type_part(c.type, 'name') IN ('char', 'varchar', 'nchar', 'nvarchar', 'text', 'ntext')
                THEN coalesce(c.collation, 'SQL_Latin1_General_CP1_CI_AS') END AS collation_name
    FROM __sb_tables t JOIN __sb_columns c ON c.object_id = t.object_id;
CREATE VIEW __sb_sys_schemas AS
    SELECT db, name, schema_id, 1 AS principal_id FROM __sb_schemas;
CREATE VIEW __sb_sys_databases AS
    SELECT name, database_id, created AS create_date,
           coalesce(collation, 'SQL_Latin1_General_CP1_CI_AS') AS collation_name,
           'ONLINE' AS state_desc, allow_snapshot AS snapshot_isolation_state,
           CASE allow_snapshot WHEN 1 THEN 'ON' ELSE 'OFF' END AS snapshot_isolation_state_desc,
           0 AS is_read_committed_snapshot_on
    FROM __sb_databases;
";

/// A column as declared in CREATE TABLE.
#[derive(Clone, Debug, PartialEq)]
pub struct ColumnDef {
    pub name: String,
    pub ty: SqlType,
    pub nullable: bool,
    pub identity: Option<(i64, i64)>,
    /// The DEFAULT expression as T-SQL text.
    pub default: Option<String>,
    pub in_pk: bool,
    /// A computed column (`c AS (expr)`): the expression as T-SQL text, and
    /// as SQLite text while the table is being created.
    pub computed: Option<Computed>,
    /// The DEFAULT constraint's name (`CONSTRAINT df DEFAULT ...`); a
    /// system name is made when the table is created.
    pub default_name: Option<String>,
    /// A string column's collation: its COLLATE clause, else its
    /// database's (tempdb's, the server's, for a #temp table).
    pub collation: Option<Collation>,
    /// A `rowversion` (`timestamp`) column: binary(8) that the engine sets
    /// from the database's counter on every insert and update of the row
    /// (https://learn.microsoft.com/en-us/sql/t-sql/data-types/rowversion-transact-sql).
    pub rowversion: bool,
}

/// How sys.columns, INFORMATION_SCHEMA and sp_describe_first_result_set
/// name a rowversion column's type.
pub const ROWVERSION_TYPE: &str = "timestamp";

impl ColumnDef {
    /// The column's type as the catalog records and reports it.
    pub fn type_text(&self) -> String {
        if self.rowversion {
            ROWVERSION_TYPE.to_string()
        } else {
            self.ty.type_name()
        }
    }

    /// A nullable column with nothing else declared.
    pub fn new(name: &str, ty: SqlType) -> ColumnDef {
        ColumnDef {
            name: name.to_string(),
            ty,
            nullable: true,
            identity: None,
            default: None,
            in_pk: false,
            computed: None,
            default_name: None,
            rowversion: false,
            collation: None,
        }
    }
}

/// A computed column's expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Computed {
    pub tsql: String,
    /// Compiled over the table's own columns; empty once loaded from the catalog.
    pub sql: String,
}

/// A table's declared shape and where its rows live in SQLite.
#[derive(Clone, Debug, PartialEq)]
pub struct TableMeta {
    pub db: String,
    pub schema: String,
    pub name: String,
    /// The SQLite table name, already quoted, e.g. `"KWP_Colombia.dbo.t"` or `temp."#t"`.
    pub physical: String,
    pub columns: Vec<ColumnDef>,
    pub pk_name: Option<String>,
    pub temp: bool,
    /// The catalog's object id (None for temporary tables and table variables).
    pub object_id: Option<i64>,
    /// UNIQUE constraints' column lists: candidate keys a FOREIGN KEY may reference.
    pub unique_keys: Vec<Vec<String>>,
    pub checks: Vec<CheckConstraint>,
    pub foreign_keys: Vec<ForeignKey>,
}

impl TableMeta {
    /// `db.schema.table` as SQL Server's messages name objects.
    pub fn full_name(&self) -> String {
        if self.temp {
            self.name.clone()
        } else {
            format!("{}.{}.{}", self.db, self.schema, self.name)
        }
    }

    pub fn column(&self, name: &str) -> Option<(usize, &ColumnDef)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name.eq_ignore_ascii_case(name))
    }

    pub fn column_meta(&self) -> Vec<ColumnMeta> {
        self.columns
            .iter()
            .map(|c| ColumnMeta {
                name: c.name.clone(),
                sql_type: c.ty,
                nullable: c.nullable,
                identity: c.identity.is_some(),
                updateable: c.identity.is_none() && c.computed.is_none() && !c.rowversion,
                collation: c.collation,
            })
            .collect()
    }
}

/// SQLite table name for a permanent table.
pub fn physical_name(db: &str, schema: &str, name: &str) -> String {
    quote_ident(&format!("{db}.{schema}.{name}"))
}

pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn quote_str(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn sqlite_err(e: rusqlite::Error) -> SqlError {
    SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}"))
}

/// Creates the catalog, adding the columns later versions keep to a
/// database file an older sandbox wrote (`--data-dir`).
pub(crate) fn install(conn: &Connection) -> Result<(), SqlError> {
    conn.execute_batch(SCHEMA_SQL).map_err(sqlite_err)?;
    for (table, column, ty) in [
        ("__sb_databases", "collation", "TEXT"),
        (
            "__sb_databases",
            "allow_snapshot",
            "INTEGER NOT NULL DEFAULT 0",
        ),
        ("__sb_tables", "unique_keys", "TEXT"),
        ("__sb_columns", "default_name", "TEXT"),
        ("__sb_columns", "collation", "TEXT"),
    ] {
        let present: bool = conn
            .query_row(
                &format!("SELECT count(*) FROM pragma_table_info('{table}') WHERE name = ?1"),
                [column],
                |r| r.get::<_, i64>(0),
            )
            .map_err(sqlite_err)?
            > 0;
        if !present {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {ty}"))
                .map_err(sqlite_err)?;
        }
    }
    conn.execute_batch(VIEWS_SQL).map_err(sqlite_err)
}

/// The catalog's database row, or `None`.
pub fn database_name(conn: &Connection, name: &str) -> Result<Option<String>, SqlError> {
    conn.query_row(
        "SELECT name FROM __sb_databases WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()
    .map_err(sqlite_err)
}

/// CREATE DATABASE; without COLLATE the database takes the server's
/// collation (model's).
pub fn create_database(
    conn: &Connection,
    name: &str,
    collation: Option<&Collation>,
) -> Result<(), SqlError> {
    if database_name(conn, name)?.is_some() {
        return Err(SqlError::new(
            1801,
            3,
            16,
            format!("Database '{name}' already exists. Choose a different database name."),
        ));
    }
    let id: i64 = conn
        .query_row(
            "SELECT coalesce(max(database_id), 4) + 1 FROM __sb_databases",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_err)?;
    conn.execute(
        "INSERT INTO __sb_databases(name, database_id, created, collation) VALUES (?1, ?2, __sysdatetime(), ?3)",
        params![
            name,
            id,
            collation::name(collation.unwrap_or(&Collation::SERVER))
        ],
    )
    .map_err(sqlite_err)?;
    for (schema, sid) in [("dbo", 1), ("sys", 4), ("INFORMATION_SCHEMA", 3)] {
        conn.execute(
            "INSERT INTO __sb_schemas(db, name, schema_id) VALUES (?1, ?2, ?3)",
            params![name, schema, sid],
        )
        .map_err(sqlite_err)?;
    }
    Ok(())
}

/// The names (schema, table) of a database's tables.
pub fn table_names(conn: &Connection, db: &str) -> Result<Vec<(String, String)>, SqlError> {
    let mut st = conn
        .prepare("SELECT schema, name FROM __sb_tables WHERE db = ?1")
        .map_err(sqlite_err)?;
    let rows = st
        .query_map([db], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(sqlite_err)?;
    rows.collect::<Result<_, _>>().map_err(sqlite_err)
}

/// Removes a database's schemas and its own row (its tables, and what the
/// other stores keep about it, are removed first: `drops.rs`).
pub fn delete_database(conn: &Connection, name: &str) -> Result<(), SqlError> {
    conn.execute("DELETE FROM __sb_schemas WHERE db = ?1", [name])
        .map_err(sqlite_err)?;
    conn.execute("DELETE FROM __sb_databases WHERE name = ?1", [name])
        .map_err(sqlite_err)?;
    Ok(())
}

pub fn schema_exists(conn: &Connection, db: &str, schema: &str) -> Result<bool, SqlError> {
    conn.query_row(
        "SELECT 1 FROM __sb_schemas WHERE db = ?1 AND name = ?2",
        [db, schema],
        |_| Ok(()),
    )
    .optional()
    .map(|o| o.is_some())
    .map_err(sqlite_err)
}

pub fn create_schema(conn: &Connection, db: &str, schema: &str) -> Result<(), SqlError> {
    if schema_exists(conn, db, schema)? {
        return Err(SqlError::new(
            2714,
            6,
            16,
            format!("There is already an object named '{schema}' in the database."),
        ));
    }
    conn.execute(
        "INSERT INTO __sb_schemas(db, name, schema_id)
         SELECT ?1, ?2, coalesce(max(schema_id), 4) + 1 FROM __sb_schemas WHERE db = ?1 AND schema_id < 16384",
        [db, schema],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// Looks a permanent table up by its (case-insensitive) three-part name.
pub fn find_table(
    conn: &Connection,
    db: &str,
    schema: &str,
    name: &str,
) -> Result<Option<TableMeta>, SqlError> {
    type Found = (i64, String, String, String, Option<String>, Option<String>);
    let row: Option<Found> = conn
        .query_row(
            "SELECT object_id, db, schema, name, pk_name, unique_keys FROM __sb_tables
             WHERE db = ?1 AND schema = ?2 AND name = ?3",
            [db, schema, name],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                ))
            },
        )
        .optional()
        .map_err(sqlite_err)?;
    let Some((object_id, db, schema, name, pk_name, uniques)) = row else {
        return Ok(None);
    };
    let columns = load_columns(conn, object_id)?;
    let unique_keys = match uniques {
        Some(j) => serde_json::from_str(&j)
            .map_err(|e| SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}")))?,
        None => vec![],
    };
    let (checks, foreign_keys) = constraints::load(conn, object_id)?;
    Ok(Some(TableMeta {
        physical: physical_name(&db, &schema, &name),
        db,
        schema,
        name,
        columns,
        pk_name,
        temp: false,
        object_id: Some(object_id),
        unique_keys,
        checks,
        foreign_keys,
    }))
}

/// A permanent table by its object id.
pub fn find_by_id(conn: &Connection, object_id: i64) -> Result<Option<TableMeta>, SqlError> {
    let row: Option<(String, String, String)> = conn
        .query_row(
            "SELECT db, schema, name FROM __sb_tables WHERE object_id = ?1",
            [object_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()
        .map_err(sqlite_err)?;
    match row {
        Some((db, schema, name)) => find_table(conn, &db, &schema, &name),
        None => Ok(None),
    }
}

/// Finds a permanent table from the name SQLite reports as a column's origin.
pub fn find_by_physical(conn: &Connection, physical: &str) -> Result<Option<TableMeta>, SqlError> {
    let mut parts = physical.splitn(3, '.');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(db), Some(schema), Some(name)) => find_table(conn, db, schema, name),
        _ => Ok(None),
    }
}

fn load_columns(conn: &Connection, object_id: i64) -> Result<Vec<ColumnDef>, SqlError> {
    let mut st = conn
        .prepare_cached(
            "SELECT name, type, nullable, is_identity, identity_seed, identity_increment, default_sql, in_pk, computed_sql,
                    default_name, collation
             FROM __sb_columns WHERE object_id = ?1 ORDER BY ordinal",
        )
        .map_err(sqlite_err)?;
    let rows = st
        .query_map([object_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, bool>(2)?,
                r.get::<_, bool>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
                r.get::<_, bool>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })
        .map_err(sqlite_err)?;
    let mut out = Vec::new();
    for row in rows {
        let (name, ty, nullable, ident, seed, inc, default, in_pk, computed, default_name, coll) =
            row.map_err(sqlite_err)?;
        // A rowversion column is recorded as SQL Server reports its type.
        let rowversion = ty.eq_ignore_ascii_case(ROWVERSION_TYPE);
        let ty = parse_sql_type(&ty).ok_or_else(|| {
            SqlError::new(50000, 1, 16, format!("sandbox catalog: bad type {ty}"))
        })?;
        out.push(ColumnDef {
            name,
            ty,
            rowversion,
            nullable,
            identity: ident.then(|| (seed.unwrap_or(1), inc.unwrap_or(1))),
            default,
            in_pk,
            computed: computed.map(|tsql| Computed {
                tsql,
                sql: String::new(),
            }),
            default_name,
            // Files written before collations were kept hold the server's.
            collation: ty.is_string().then(|| {
                coll.as_deref()
                    .and_then(collation::parse)
                    .unwrap_or(Collation::SERVER)
            }),
        });
    }
    Ok(out)
}

/// SQLite column declaration for a T-SQL type: the affinity that keeps the
/// storage encodings of `convert.rs` unchanged, and case-insensitive text.
fn sqlite_decl(ty: &SqlType, coll: Option<&Collation>) -> String {
    if ty.is_string() {
        let c = coll.unwrap_or(&Collation::SERVER);
        return format!("TEXT COLLATE {}", collation::sqlite_name(c));
    }
    match ty {
        SqlType::Bit | SqlType::TinyInt | SqlType::SmallInt | SqlType::Int | SqlType::BigInt => {
            "INTEGER"
        }
        SqlType::Float | SqlType::Real => "REAL",
        SqlType::Decimal { .. } | SqlType::Money | SqlType::SmallMoney => "",
        SqlType::Char(_) | SqlType::VarChar(_) | SqlType::NChar(_) | SqlType::NVarChar(_) => "TEXT",
        SqlType::Xml => "TEXT",
        SqlType::Binary(_) | SqlType::VarBinary(_) => "BLOB",
        SqlType::UniqueIdentifier => "TEXT COLLATE NOCASE",
        SqlType::Date
        | SqlType::Time(_)
        | SqlType::DateTime
        | SqlType::SmallDateTime
        | SqlType::DateTime2(_)
        | SqlType::DateTimeOffset(_) => "TEXT",
    }
    .to_string()
}

/// The SQLite DDL for a table, plus the trigger that numbers IDENTITY columns.
pub fn sqlite_ddl(meta: &TableMeta) -> Vec<String> {
    let mut cols: Vec<String> = meta
        .columns
        .iter()
        .map(|c| {
            let mut s = format!(
                "{} {}",
                quote_ident(&c.name),
                sqlite_decl(&c.ty, c.collation.as_ref())
            );
            if let Some(comp) = &c.computed {
                s.push_str(&format!(" GENERATED ALWAYS AS ({}) VIRTUAL", comp.sql));
            } else if !c.nullable && c.identity.is_none() && !c.rowversion {
                // Engine-numbered columns are NULL until their trigger runs.
                s.push_str(" NOT NULL");
            }
            s
        })
        .collect();
    let pk: Vec<String> = meta
        .columns
        .iter()
        .filter(|c| c.in_pk)
        .map(|c| quote_ident(&c.name))
        .collect();
    if !pk.is_empty() {
        cols.push(format!("PRIMARY KEY ({})", pk.join(", ")));
    }
    let mut out = vec![format!(
        "CREATE TABLE {} ({})",
        meta.physical,
        cols.join(", ")
    )];
    for c in &meta.columns {
        if let Some((seed, inc)) = c.identity {
            let (schema, trig) = if meta.temp {
                ("temp.", format!("{}__identity_{}", meta.name, c.name))
            } else {
                ("", format!("{}__identity_{}", meta.full_name(), c.name))
            };
            let table = if meta.temp {
                quote_ident(&meta.name)
            } else {
                meta.physical.clone()
            };
            let col = quote_ident(&c.name);
            out.push(format!(
                "CREATE TRIGGER {schema}{trig} AFTER INSERT ON {table} WHEN NEW.{col} IS NULL BEGIN \
                 UPDATE {table} SET {col} = (SELECT coalesce(max({col}), {start}) + {inc} FROM {table}) \
                 WHERE rowid = NEW.rowid; END",
                trig = quote_ident(&trig),
                start = seed - inc,
            ));
        }
    }
    if let Some(c) = meta.columns.iter().find(|c| c.rowversion) {
        out.extend(rowversion_ddl(meta, c));
    }
    out
}

/// The database rowversion a new database starts from (its first row gets
/// the next one). SQL Server does not document the starting value.
pub(crate) const FIRST_DBTS: i64 = 2000;

/// A rowversion column's numbering: the database's counter (`@@DBTS`) is
/// incremented and stored in the column for every inserted row, and for
/// every updated one whatever the UPDATE changed
/// (https://learn.microsoft.com/en-us/sql/t-sql/data-types/rowversion-transact-sql).
fn rowversion_ddl(meta: &TableMeta, c: &ColumnDef) -> Vec<String> {
    let (schema, prefix, table) = if meta.temp {
        (
            "temp.",
            format!("{}__rowversion", meta.name),
            quote_ident(&meta.name),
        )
    } else {
        (
            "",
            format!("{}__rowversion", meta.full_name()),
            meta.physical.clone(),
        )
    };
    let db = quote_str(if meta.temp { "tempdb" } else { &meta.db });
    let col = quote_ident(&c.name);
    let stamp = format!(
        "UPDATE __sb_dbts SET value = value + 1 WHERE db = {db}; \
         UPDATE {table} SET {col} = __sb_rowversion((SELECT value FROM __sb_dbts WHERE db = {db})) \
         WHERE rowid = NEW.rowid;"
    );
    // Every column an UPDATE can set (the trigger's own update sets only
    // the rowversion column, so it does not fire again).
    let settable: Vec<String> = meta
        .columns
        .iter()
        .filter(|o| !o.rowversion && o.computed.is_none() && o.identity.is_none())
        .map(|o| quote_ident(&o.name))
        .collect();
    let mut out = vec![
        format!("INSERT OR IGNORE INTO __sb_dbts(db, value) VALUES ({db}, {FIRST_DBTS})"),
        format!(
            "CREATE TRIGGER {schema}{} AFTER INSERT ON {table} BEGIN {stamp} END",
            quote_ident(&format!("{prefix}_insert"))
        ),
    ];
    if !settable.is_empty() {
        out.push(format!(
            "CREATE TRIGGER {schema}{} AFTER UPDATE OF {} ON {table} BEGIN {stamp} END",
            quote_ident(&format!("{prefix}_update")),
            settable.join(", ")
        ));
    }
    out
}

/// Records a new permanent table and creates its SQLite table.
pub fn create_table(conn: &Connection, meta: &TableMeta) -> Result<(), SqlError> {
    if find_table(conn, &meta.db, &meta.schema, &meta.name)?.is_some() {
        return Err(SqlError::object_exists(&meta.name));
    }
    if object_kind(conn, &meta.db, &meta.schema, &meta.name)?.is_some() {
        return Err(SqlError::object_exists(&meta.name));
    }
    let object_id = next_object_id(conn)?;
    let uniques = serde_json::to_string(&meta.unique_keys)
        .map_err(|e| SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}")))?;
    conn.execute(
        "INSERT INTO __sb_tables(object_id, db, schema, name, pk_name, created, unique_keys)
         VALUES (?5, ?1, ?2, ?3, ?4, __sysdatetime(), ?6)",
        params![
            meta.db,
            meta.schema,
            meta.name,
            meta.pk_name,
            object_id,
            uniques
        ],
    )
    .map_err(sqlite_err)?;
    for (i, c) in meta.columns.iter().enumerate() {
        let default_name = match (&c.default, &c.default_name) {
            (Some(_), Some(n)) => Some(n.clone()),
            (Some(_), None) => Some(constraints::system_name(
                "DF",
                &meta.name,
                Some(&c.name),
                object_id * 1024 + i as i64 + 1,
            )),
            (None, _) => None,
        };
        conn.execute(
            "INSERT INTO __sb_columns(object_id, ordinal, name, type, nullable, is_identity,
                 identity_seed, identity_increment, default_sql, in_pk, computed_sql, default_name,
                 collation)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                object_id,
                i as i64 + 1,
                c.name,
                c.type_text(),
                c.nullable,
                c.identity.is_some(),
                c.identity.map(|x| x.0),
                c.identity.map(|x| x.1),
                c.default,
                c.in_pk,
                c.computed.as_ref().map(|x| x.tsql.clone()),
                default_name,
                c.collation.as_ref().map(collation::name)
            ],
        )
        .map_err(sqlite_err)?;
    }
    add_constraints(conn, meta, object_id, &meta.checks, &meta.foreign_keys)?;
    for ddl in sqlite_ddl(meta) {
        conn.execute(&ddl, []).map_err(sqlite_err)?;
    }
    Ok(())
}

/// Adds a column to the permanent table `meta` (last), with its SQLite
/// column; `sqlite_default` is the stored value existing rows take (a
/// NOT NULL column with a DEFAULT), as a SQLite literal.
pub fn add_column(
    conn: &Connection,
    meta: &TableMeta,
    c: &ColumnDef,
    sqlite_default: Option<&str>,
) -> Result<(), SqlError> {
    let object_id = meta.object_id.unwrap_or_default();
    let ordinal = meta.columns.len() as i64 + 1;
    let default_name = c.default.as_ref().map(|_| {
        c.default_name.clone().unwrap_or_else(|| {
            constraints::system_name("DF", &meta.name, Some(&c.name), object_id * 1024 + ordinal)
        })
    });
    conn.execute(
        "INSERT INTO __sb_columns(object_id, ordinal, name, type, nullable, is_identity,
             identity_seed, identity_increment, default_sql, in_pk, computed_sql, default_name,
             collation)
         VALUES (?1, ?2, ?3, ?4, ?5, 0, NULL, NULL, ?6, 0, NULL, ?7, ?8)",
        params![
            object_id,
            ordinal,
            c.name,
            c.ty.type_name(),
            c.nullable,
            c.default,
            default_name,
            c.collation.as_ref().map(collation::name)
        ],
    )
    .map_err(sqlite_err)?;
    let mut decl = format!(
        "{} {}",
        quote_ident(&c.name),
        sqlite_decl(&c.ty, c.collation.as_ref())
    );
    if let Some(d) = sqlite_default {
        decl.push_str(&format!(" NOT NULL DEFAULT {d}"));
    }
    conn.execute(
        &format!("ALTER TABLE {} ADD COLUMN {decl}", meta.physical),
        [],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// Stores new CHECK and FOREIGN KEY constraints of the permanent table
/// `table_id`, giving the unnamed ones SQL Server's system names.
pub fn add_constraints(
    conn: &Connection,
    meta: &TableMeta,
    table_id: i64,
    checks: &[CheckConstraint],
    fks: &[ForeignKey],
) -> Result<(), SqlError> {
    for c in checks {
        let mut c = c.clone();
        c.object_id = next_object_id(conn)?;
        if c.system_named {
            c.name = constraints::system_name("CK", &meta.name, c.column.as_deref(), c.object_id);
        }
        if object_kind(conn, &meta.db, &meta.schema, &c.name)?.is_some()
            || find_table(conn, &meta.db, &meta.schema, &c.name)?.is_some()
        {
            return Err(SqlError::object_exists(&c.name));
        }
        constraints::insert_check(conn, &meta.db, &meta.schema, table_id, &c)?;
    }
    for fk in fks {
        let mut fk = fk.clone();
        fk.object_id = next_object_id(conn)?;
        if fk.system_named {
            fk.name = constraints::system_name(
                "FK",
                &meta.name,
                fk.columns.first().map(String::as_str),
                fk.object_id,
            );
        }
        if object_kind(conn, &meta.db, &meta.schema, &fk.name)?.is_some()
            || find_table(conn, &meta.db, &meta.schema, &fk.name)?.is_some()
        {
            return Err(SqlError::object_exists(&fk.name));
        }
        let same = fk.ref_db.eq_ignore_ascii_case(&meta.db)
            && fk.ref_schema.eq_ignore_ascii_case(&meta.schema)
            && fk.ref_table.eq_ignore_ascii_case(&meta.name);
        let ref_id = if same {
            table_id
        } else {
            find_table(conn, &fk.ref_db, &fk.ref_schema, &fk.ref_table)?
                .and_then(|t| t.object_id)
                .ok_or_else(|| {
                    SqlError::new(
                        1767,
                        0,
                        16,
                        format!(
                            "Foreign key '{}' references invalid table '{}'.",
                            fk.name, fk.ref_table
                        ),
                    )
                })?
        };
        constraints::insert_foreign_key(conn, &meta.db, &meta.schema, table_id, ref_id, &fk)?;
    }
    Ok(())
}

/// Removes a table's columns, its registration and its rows (what the
/// other stores keep about it is removed first: `drops.rs`).
pub fn delete_table(conn: &Connection, meta: &TableMeta) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __sb_columns WHERE object_id IN
           (SELECT object_id FROM __sb_tables WHERE db = ?1 AND schema = ?2 AND name = ?3)",
        [&meta.db, &meta.schema, &meta.name],
    )
    .map_err(sqlite_err)?;
    conn.execute(
        "DELETE FROM __sb_tables WHERE db = ?1 AND schema = ?2 AND name = ?3",
        [&meta.db, &meta.schema, &meta.name],
    )
    .map_err(sqlite_err)?;
    conn.execute(&format!("DROP TABLE {}", meta.physical), [])
        .map_err(sqlite_err)?;
    Ok(())
}

/// Object ids are unique across tables, views, procedures, constraints and
/// triggers, as in sys.objects.
pub(crate) fn next_object_id(conn: &Connection) -> Result<i64, SqlError> {
    conn.query_row(
        "SELECT max(coalesce((SELECT max(object_id) FROM __sb_tables), 0),
                    coalesce((SELECT max(object_id) FROM __sb_views), 0),
                    coalesce((SELECT max(object_id) FROM __sb_procedures), 0),
                    coalesce((SELECT max(object_id) FROM __sb_constraints), 0),
                    coalesce((SELECT max(object_id) FROM __sb_triggers), 0)) + 1",
        [],
        |r| r.get(0),
    )
    .map_err(sqlite_err)
}

/// What kind of object (`view`, `procedure`) holds a name, if a view or procedure does.
fn object_kind(
    conn: &Connection,
    db: &str,
    schema: &str,
    name: &str,
) -> Result<Option<&'static str>, SqlError> {
    for (kind, table) in [
        ("view", "__sb_views"),
        ("procedure", "__sb_procedures"),
        ("constraint", "__sb_constraints"),
        ("trigger", "__sb_triggers"),
    ] {
        let found: Option<i64> = conn
            .query_row(
                &format!(
                    "SELECT object_id FROM {table} WHERE db = ?1 AND schema = ?2 AND name = ?3"
                ),
                [db, schema, name],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlite_err)?;
        if found.is_some() {
            return Ok(Some(kind));
        }
    }
    Ok(None)
}

/// A view's column names (comma-separated) and its definition.
pub fn find_view(
    conn: &Connection,
    db: &str,
    schema: &str,
    name: &str,
) -> Result<Option<(String, String)>, SqlError> {
    conn.query_row(
        "SELECT columns, definition FROM __sb_views WHERE db = ?1 AND schema = ?2 AND name = ?3",
        [db, schema, name],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(sqlite_err)
}

/// A stored procedure as CREATE PROCEDURE defined it.
#[derive(Clone, Debug)]
pub struct ProcInfo {
    pub object_id: i64,
    pub name: String,
    pub params: Vec<ProcParam>,
    pub body: String,
}

pub fn find_procedure(
    conn: &Connection,
    db: &str,
    schema: &str,
    name: &str,
) -> Result<Option<ProcInfo>, SqlError> {
    let row: Option<(i64, String, String, String)> = conn
        .query_row(
            "SELECT object_id, name, params, body FROM __sb_procedures WHERE db = ?1 AND schema = ?2 AND name = ?3",
            [db, schema, name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()
        .map_err(sqlite_err)?;
    let Some((object_id, name, params, body)) = row else {
        return Ok(None);
    };
    let raw: Vec<(String, String, bool, Option<String>)> = serde_json::from_str(&params)
        .map_err(|e| SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}")))?;
    let params = raw
        .into_iter()
        .map(|(n, t, output, default)| ProcParam {
            name: n,
            ty: parse_sql_type(&t).unwrap_or(SqlType::Int),
            default,
            output,
        })
        .collect();
    Ok(Some(ProcInfo {
        object_id,
        name,
        params,
        body,
    }))
}

fn replace_or_fail(
    conn: &Connection,
    table: &str,
    kind: &str,
    db: &str,
    schema: &str,
    name: &str,
    or_alter: bool,
) -> Result<Option<i64>, SqlError> {
    if find_table(conn, db, schema, name)?.is_some() {
        return Err(SqlError::object_exists(name));
    }
    match object_kind(conn, db, schema, name)? {
        Some(k) if k == kind && or_alter => {
            let id: i64 = conn
                .query_row(
                    &format!(
                        "SELECT object_id FROM {table} WHERE db = ?1 AND schema = ?2 AND name = ?3"
                    ),
                    [db, schema, name],
                    |r| r.get(0),
                )
                .map_err(sqlite_err)?;
            conn.execute(&format!("DELETE FROM {table} WHERE object_id = ?1"), [id])
                .map_err(sqlite_err)?;
            Ok(Some(id))
        }
        Some(_) => Err(SqlError::object_exists(name)),
        None => Ok(None),
    }
}

pub fn create_procedure(
    conn: &Connection,
    db: &str,
    schema: &str,
    name: &str,
    params: &[ProcParam],
    body: &str,
    or_alter: bool,
) -> Result<(), SqlError> {
    if !schema_exists(conn, db, schema)? {
        return Err(SqlError::new(
            2760,
            1,
            16,
            format!("The specified schema name \"{schema}\" either does not exist or you do not have permission to use it."),
        ));
    }
    let id = match replace_or_fail(
        conn,
        "__sb_procedures",
        "procedure",
        db,
        schema,
        name,
        or_alter,
    )? {
        Some(id) => id,
        None => next_object_id(conn)?,
    };
    let raw: Vec<(String, String, bool, Option<String>)> = params
        .iter()
        .map(|p| {
            (
                p.name.clone(),
                p.ty.type_name(),
                p.output,
                p.default.clone(),
            )
        })
        .collect();
    let json = serde_json::to_string(&raw)
        .map_err(|e| SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}")))?;
    conn.execute(
        "INSERT INTO __sb_procedures(object_id, db, schema, name, params, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, db, schema, name, json, body],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

pub fn create_view(
    conn: &Connection,
    db: &str,
    schema: &str,
    name: &str,
    columns: &str,
    definition: &str,
    or_alter: bool,
) -> Result<(), SqlError> {
    if !schema_exists(conn, db, schema)? {
        return Err(SqlError::new(
            2760,
            1,
            16,
            format!("The specified schema name \"{schema}\" either does not exist or you do not have permission to use it."),
        ));
    }
    let id = match replace_or_fail(conn, "__sb_views", "view", db, schema, name, or_alter)? {
        Some(id) => id,
        None => next_object_id(conn)?,
    };
    conn.execute(
        "INSERT INTO __sb_views(object_id, db, schema, name, columns, definition) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, db, schema, name, columns, definition],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// DROP VIEW / DROP PROCEDURE.
pub fn drop_object(
    conn: &Connection,
    kind: &str,
    db: &str,
    schema: &str,
    name: &str,
) -> Result<(), SqlError> {
    let table = if kind == "view" {
        "__sb_views"
    } else {
        "__sb_procedures"
    };
    let n = conn
        .execute(
            &format!("DELETE FROM {table} WHERE db = ?1 AND schema = ?2 AND name = ?3"),
            [db, schema, name],
        )
        .map_err(sqlite_err)?;
    if n == 0 {
        return Err(SqlError::new(3701, 5, 11, format!("Cannot drop the {kind} '{name}', because it does not exist or you do not have permission.")));
    }
    Ok(())
}

/// 15025 when a server principal of that name exists (SQL or external).
fn refuse_existing_login(conn: &Connection, name: &str) -> Result<(), SqlError> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM __sb_logins WHERE name = ?1 UNION ALL SELECT name FROM __sb_external_logins WHERE name = ?1 UNION ALL SELECT name FROM __sb_windows_logins WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite_err)?;
    if exists.is_some() {
        return Err(SqlError::new(
            15025,
            1,
            16,
            format!("The server principal '{name}' already exists."),
        ));
    }
    Ok(())
}

/// CREATE LOGIN [domain\user] FROM WINDOWS: a Windows (Kerberos)
/// principal's login; 15407 for a name without its domain
/// (https://learn.microsoft.com/en-us/sql/t-sql/statements/create-login-transact-sql).
pub fn create_windows_login(conn: &Connection, name: &str) -> Result<(), SqlError> {
    match name.split_once('\\') {
        Some((domain, user)) if !domain.is_empty() && !user.is_empty() => {}
        _ => {
            return Err(SqlError::new(
                15407,
                1,
                16,
                format!("'{name}' is not a valid Windows NT name. Give the complete name: <domain\\username>."),
            ))
        }
    }
    refuse_existing_login(conn, name)?;
    conn.execute("INSERT INTO __sb_windows_logins(name) VALUES (?1)", [name])
        .map_err(sqlite_err)?;
    Ok(())
}

/// The Windows login named `name` (case-insensitively), as created.
pub fn windows_login(conn: &Connection, name: &str) -> Result<Option<String>, SqlError> {
    conn.query_row(
        "SELECT name FROM __sb_windows_logins WHERE name = ?1",
        [name],
        |r| r.get(0),
    )
    .optional()
    .map_err(sqlite_err)
}

/// CREATE LOGIN name FROM EXTERNAL PROVIDER WITH OBJECT_ID = '...': a
/// Microsoft Entra principal signing in with an access token whose `oid`
/// (or, for an application, `appid`) is `object_id`
/// (https://learn.microsoft.com/en-us/sql/t-sql/statements/create-login-transact-sql?view=azuresqldb-current).
pub fn create_external_login(
    conn: &Connection,
    name: &str,
    object_id: &str,
) -> Result<(), SqlError> {
    refuse_existing_login(conn, name)?;
    conn.execute(
        "INSERT INTO __sb_external_logins(name, object_id) VALUES (?1, ?2)",
        [name, object_id],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// CREATE USER name FROM EXTERNAL PROVIDER WITH OBJECT_ID = '...': a
/// contained user of `db` for a Microsoft Entra principal, who signs in
/// to that database with a token and no login
/// (https://learn.microsoft.com/en-us/sql/t-sql/statements/create-user-transact-sql?view=azuresqldb-current);
/// 15023 when the name is a user there already.
pub fn create_external_user(
    conn: &Connection,
    db: &str,
    name: &str,
    object_id: &str,
) -> Result<(), SqlError> {
    let exists: Option<String> = conn
        .query_row(
            "SELECT name FROM __sb_external_users WHERE db = ?1 AND name = ?2",
            [db, name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite_err)?;
    if exists.is_some() {
        return Err(SqlError::new(
            15023,
            1,
            16,
            format!("User, group, or role '{name}' already exists in the current database."),
        ));
    }
    conn.execute(
        "INSERT INTO __sb_external_users(db, name, object_id) VALUES (?1, ?2, ?3)",
        [db, name, object_id],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// The contained user of `db` for an Entra principal, by any of its ids.
pub fn external_user(
    conn: &Connection,
    db: &str,
    ids: &[&str],
) -> Result<Option<String>, SqlError> {
    principal_by_id(conn, "__sb_external_users", Some(db), ids)
}

/// The external login of an Entra principal, by any of its ids.
pub fn external_login(conn: &Connection, ids: &[&str]) -> Result<Option<String>, SqlError> {
    principal_by_id(conn, "__sb_external_logins", None, ids)
}

/// The name in `table` (of `db`, for users) whose object id is one of `ids`.
fn principal_by_id(
    conn: &Connection,
    table: &str,
    db: Option<&str>,
    ids: &[&str],
) -> Result<Option<String>, SqlError> {
    let sql = format!(
        "SELECT name FROM {table} WHERE object_id = ?1{}",
        if db.is_some() { " AND db = ?2" } else { "" }
    );
    for id in ids.iter().filter(|i| !i.is_empty()) {
        let mut params: Vec<&str> = vec![id];
        params.extend(db);
        let name: Option<String> = conn
            .query_row(&sql, rusqlite::params_from_iter(params), |r| r.get(0))
            .optional()
            .map_err(sqlite_err)?;
        if name.is_some() {
            return Ok(name);
        }
    }
    Ok(None)
}

/// CREATE LOGIN: a SQL login with its password (CREATE LOGIN page: 15025
/// when the name exists).
pub fn create_login(conn: &Connection, name: &str, password: &str) -> Result<(), SqlError> {
    refuse_existing_login(conn, name)?;
    conn.execute(
        "INSERT INTO __sb_logins(principal_id, name, password) VALUES ((SELECT coalesce(max(principal_id), 266) + 1 FROM __sb_logins), ?1, ?2)",
        [name, password],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

pub fn drop_login(conn: &Connection, name: &str) -> Result<(), SqlError> {
    let n = conn
        .execute("DELETE FROM __sb_logins WHERE name = ?1", [name])
        .map_err(sqlite_err)?
        + conn
            .execute("DELETE FROM __sb_external_logins WHERE name = ?1", [name])
            .map_err(sqlite_err)?
        + conn
            .execute("DELETE FROM __sb_windows_logins WHERE name = ?1", [name])
            .map_err(sqlite_err)?;
    if n == 0 {
        return Err(SqlError::new(
            15151,
            1,
            16,
            format!("Cannot drop the login '{name}', because it does not exist or you do not have permission."),
        ));
    }
    Ok(())
}

/// Whether `name`/`password` is a login created with CREATE LOGIN.
pub fn login_matches(conn: &Connection, name: &str, password: &str) -> Result<bool, SqlError> {
    let stored: Option<String> = conn
        .query_row(
            "SELECT password FROM __sb_logins WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(sqlite_err)?;
    Ok(stored.is_some_and(|p| p == password))
}

/// ALTER DATABASE ... COLLATE: the default for new columns and for
/// literals and variables; existing columns keep theirs.
/// learn.microsoft.com/sql/relational-databases/collations/set-or-change-the-database-collation
pub fn set_database_collation(
    conn: &Connection,
    db: &str,
    collation: &str,
) -> Result<(), SqlError> {
    let c = collation::parse(collation).ok_or_else(|| collation::invalid(collation))?;
    conn.execute(
        "UPDATE __sb_databases SET collation = ?2 WHERE name = ?1",
        [db, &collation::name(&c)],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// Whether a database allows SNAPSHOT transactions (ALLOW_SNAPSHOT_ISOLATION).
/// An unknown database answers false; the caller names it.
pub fn snapshot_allowed(conn: &Connection, db: &str) -> Result<bool, SqlError> {
    let on: Option<i64> = conn
        .prepare_cached("SELECT allow_snapshot FROM __sb_databases WHERE name = ?1")
        .and_then(|mut st| st.query_row([db], |r| r.get(0)).optional())
        .map_err(sqlite_err)?;
    Ok(on == Some(1))
}

/// `ALTER DATABASE ... SET ALLOW_SNAPSHOT_ISOLATION {ON | OFF}`. "In the
/// master and msdb databases, ALLOW_SNAPSHOT_ISOLATION is set to ON and
/// cannot be changed" (error 5058 when asked to turn it off)
/// (https://learn.microsoft.com/en-us/sql/relational-databases/databases/msdb-database).
/// The sandbox applies it at once: SQL Server's PENDING_ON, while
/// transactions that write are open, is not modelled.
pub fn set_allow_snapshot(conn: &Connection, db: &str, on: bool) -> Result<(), SqlError> {
    if !on && (db.eq_ignore_ascii_case("master") || db.eq_ignore_ascii_case("msdb")) {
        return Err(SqlError::new(
            5058,
            1,
            16,
            format!("Option 'ALLOW_SNAPSHOT_ISOLATION' cannot be set in database '{db}'."),
        ));
    }
    conn.execute(
        "UPDATE __sb_databases SET allow_snapshot = ?2 WHERE name = ?1",
        params![db, on as i64],
    )
    .map_err(sqlite_err)?;
    Ok(())
}

/// A database's default collation (tempdb's is the server's).
pub fn database_collation(conn: &Connection, db: &str) -> Result<Collation, SqlError> {
    let name: Option<String> = conn
        .prepare_cached("SELECT collation FROM __sb_databases WHERE name = ?1")
        .and_then(|mut st| st.query_row([db], |r| r.get(0)).optional())
        .map_err(sqlite_err)?
        .flatten();
    Ok(name
        .as_deref()
        .and_then(collation::parse)
        .unwrap_or(Collation::SERVER))
}

/// One parameter of CREATE PROCEDURE.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcParam {
    pub name: String,
    pub ty: SqlType,
    /// The default's T-SQL text.
    pub default: Option<String>,
    pub output: bool,
}
