//! Engine and sessions: one SQLite file shared by every connection (WAL,
//! so readers never see another session's uncommitted rows), one SQLite
//! connection per TDS session.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{Value as Sv, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};

use super::catalog::{self, quote_ident, TableMeta};
use super::convert::{convert, from_storage, to_storage, Overlong};
use super::drops;
use super::error::SqlError;
use super::functions;
use super::isolation::{Isolation, SnapshotCheck};
use super::translate::{self, Ctx, DmlKind, DmlPlan, Plan, Resolved};
use crate::clock::Clock;
use crate::types::{ColumnMeta, Len, SqlType, Value};

mod bulk;
mod effects;
mod flow;
mod plans;
mod schema;
mod tracking;
pub use bulk::{BulkOptions, BulkTarget};
pub use flow::{ArgValue, ProcOutcome};

/// Why an [`Output`] stopped taking results.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The client sent an attention (cancel).
    #[error("cancelled by the client")]
    Cancelled,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A change of session state the client is told about (TDS ENVCHANGE).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EnvChange {
    Database {
        old: String,
        new: String,
    },
    /// The new database's collation (sent after a database change).
    Collation(crate::types::Collation),
    BeginTran(u64),
    CommitTran(u64),
    RollbackTran(u64),
}

/// Where a session writes results, in the order SQL Server produces them.
/// Every method defaults to ignoring what it is given.
pub trait Output {
    fn columns(&mut self, _cols: &[ColumnMeta]) -> Result<(), OutputError> {
        Ok(())
    }
    fn row(&mut self, _values: &[Value]) -> Result<(), OutputError> {
        Ok(())
    }
    /// One statement finished; `rows` is its row count when one is reported.
    fn done(&mut self, _rows: Option<u64>, _error: bool) -> Result<(), OutputError> {
        Ok(())
    }
    fn error(&mut self, _e: &SqlError) -> Result<(), OutputError> {
        Ok(())
    }
    fn env(&mut self, _change: EnvChange) -> Result<(), OutputError> {
        Ok(())
    }
    /// An informational message (PRINT, RAISERROR with severity 10 or less).
    fn info(&mut self, _e: &SqlError) -> Result<(), OutputError> {
        Ok(())
    }
    /// A stored procedure's return status (EXEC in a batch).
    fn return_status(&mut self, _status: i32) -> Result<(), OutputError> {
        Ok(())
    }
}

/// A bound parameter (sp_executesql and friends).
#[derive(Clone, Debug, PartialEq)]
pub struct Param {
    pub name: String,
    pub sql_type: SqlType,
    pub value: Value,
}

struct DeadlockRule {
    pattern: regex::Regex,
    remaining: u32,
}

/// Another session's script that runs, committed, just before a batch
/// matching `pattern` (a fault: what a concurrent session or SQL Server's
/// own background work does at the worst moment).
struct InterleaveRule {
    pattern: regex::Regex,
    script: String,
    remaining: u32,
}

struct EngineInner {
    path: PathBuf,
    owned_dir: Option<PathBuf>,
    next_spid: AtomicU16,
    next_tran: AtomicU64,
    lock_timeout: Duration,
    deadlocks: Mutex<Vec<DeadlockRule>>,
    interleaved: Mutex<Vec<InterleaveRule>>,
    /// The server's time (movable by tests).
    clock: Clock,
    /// When (clock milliseconds) Change Tracking's automatic cleanup last ran.
    ct_cleaned_at: AtomicI64,
    /// sp_getapplock's locks, across sessions.
    app_locks: super::applock::AppLocks,
}

impl Drop for EngineInner {
    fn drop(&mut self) {
        if let Some(dir) = &self.owned_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// The shared database behind every session.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<EngineInner>,
}

fn internal(e: rusqlite::Error) -> SqlError {
    SqlError::new(50000, 1, 16, format!("sandbox engine: {e}"))
}

static DIR_COUNTER: AtomicU64 = AtomicU64::new(0);

impl Engine {
    /// Opens (or creates) the database in `dir`; with `None`, in a fresh
    /// temporary directory removed when the engine is dropped.
    pub fn open(dir: Option<&Path>) -> Result<Engine, SqlError> {
        let (dir, owned) = match dir {
            Some(d) => (d.to_path_buf(), None),
            None => {
                let d = std::env::temp_dir().join(format!(
                    "bridge-sandbox-{}-{}",
                    std::process::id(),
                    DIR_COUNTER.fetch_add(1, Ordering::Relaxed)
                ));
                (d.clone(), Some(d))
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| {
            SqlError::new(
                5120,
                101,
                16,
                format!(
                    "Unable to open the physical file \"{}\": {e}",
                    dir.display()
                ),
            )
        })?;
        let engine = Engine {
            inner: Arc::new(EngineInner {
                path: dir.join("sandbox.sqlite"),
                owned_dir: owned,
                next_spid: AtomicU16::new(51),
                next_tran: AtomicU64::new(1),
                lock_timeout: Duration::from_secs(30),
                deadlocks: Mutex::new(Vec::new()),
                interleaved: Mutex::new(Vec::new()),
                clock: Clock::new(),
                ct_cleaned_at: AtomicI64::new(0),
                app_locks: Default::default(),
            }),
        };
        let conn = engine.connect()?;
        conn.execute_batch("PRAGMA journal_mode=WAL;")
            .map_err(internal)?;
        catalog::install(&conn)?;
        for db in ["master", "tempdb", "model", "msdb"] {
            if catalog::database_name(&conn, db)?.is_none() {
                catalog::create_database(&conn, db, None)?;
            }
        }
        // Always on in master and msdb (catalog::set_allow_snapshot).
        for db in ["master", "msdb"] {
            catalog::set_allow_snapshot(&conn, db, true)?;
        }
        Ok(engine)
    }

    fn connect(&self) -> Result<Connection, SqlError> {
        let conn = Connection::open_with_flags(
            &self.inner.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(internal)?;
        conn.busy_timeout(self.inner.lock_timeout)
            .map_err(internal)?;
        // SQL Server keeps one buffer pool for every session
        // (https://learn.microsoft.com/en-us/sql/relational-databases/memory-management-architecture-guide#buffer-management):
        // a page one login read is in memory for the next. SQLite's page
        // cache is per connection, so each new login started cold and read
        // the table again (an UPDATE of 100k rows in a 1M-row table: 0.82 s on
        // a new connection, 0.58 s on one that had just counted the table).
        // Memory-mapped reads (https://www.sqlite.org/mmap.html) come from
        // the operating system's cache, which every connection shares.
        conn.execute_batch(
            "PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-65536; \
             PRAGMA mmap_size=4294967296;",
        )
        .map_err(internal)?;
        functions::register(&conn).map_err(internal)?;
        super::compile::builtins::register(&conn, &self.inner.clock).map_err(internal)?;
        Ok(conn)
    }

    /// The server's clock: GETDATE() and Change Tracking's retention follow it.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Opens a session on `database` (error 4060 when it does not exist).
    pub fn session(&self, database: &str) -> Result<Session, SqlError> {
        let conn = self.connect()?;
        let db = catalog::database_name(&conn, database)?
            .ok_or_else(|| SqlError::cannot_open_database(database))?;
        let spid = self.inner.next_spid.fetch_add(1, Ordering::Relaxed);
        let vars: Vars = Arc::new(Mutex::new(HashMap::new()));
        register_vars(&conn, &vars).map_err(internal)?;
        let capture_modes: effects::CaptureModes = Arc::new(Mutex::new(HashMap::new()));
        effects::register_capture(&conn, &capture_modes).map_err(internal)?;
        Ok(Session {
            engine: self.clone(),
            conn,
            db,
            spid,
            trancount: 0,
            tran_descriptor: 0,
            nocount: false,
            rowcount: 0,
            implicit_transactions: false,
            xact_abort: false,
            fmtonly: false,
            describing: false,
            login: "sa".to_string(),
            app_name: String::new(),
            identity_insert: None,
            temp: HashMap::new(),
            globals: Vec::new(),
            vars,
            try_depth: 0,
            caught: None,
            proc_depth: 0,
            next_capture: 0,
            capture_modes,
            firing: Vec::new(),
            try_floor: 0,
            implicit_tran: false,
            ct_dirty: std::cell::Cell::new(false),
            ct_context: None,
            isolation: Isolation::default(),
            tran_isolation: Isolation::default(),
        })
    }

    /// Runs a T-SQL script with `GO` separators; the first error stops it.
    pub fn run_script(&self, script: &str) -> Result<(), SqlError> {
        let mut s = self.session("master")?;
        for batch in translate::split_go(script) {
            let mut sink = FirstColumns::default();
            s.run_request(&batch, &[], &mut sink)
                .map_err(|e| SqlError::new(50000, 1, 16, e.to_string()))?;
            if let Some(e) = sink.error {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Whether a login created with CREATE LOGIN has this password.
    pub fn login_ok(&self, name: &str, password: &str) -> Result<bool, SqlError> {
        let conn = self.connect()?;
        catalog::login_matches(&conn, name, password)
    }

    /// The Windows login created with this name, as it was written.
    pub fn windows_login(&self, name: &str) -> Result<Option<String>, SqlError> {
        let conn = self.connect()?;
        catalog::windows_login(&conn, name)
    }

    /// The login created FROM EXTERNAL PROVIDER for an Entra principal
    /// known by any of `ids` (its object id, its application id).
    pub fn external_login(&self, ids: &[&str]) -> Result<Option<String>, SqlError> {
        let conn = self.connect()?;
        catalog::external_login(&conn, ids)
    }

    /// The contained user of database `db` created FROM EXTERNAL PROVIDER
    /// for an Entra principal known by any of `ids`.
    pub fn external_user(&self, db: &str, ids: &[&str]) -> Result<Option<String>, SqlError> {
        let conn = self.connect()?;
        catalog::external_user(&conn, db, ids)
    }

    pub fn database_exists(&self, name: &str) -> Result<bool, SqlError> {
        let conn = self.connect()?;
        Ok(catalog::database_name(&conn, name)?.is_some())
    }

    /// Rows in a permanent table; for tests and the CLI's summary.
    pub fn count_rows(&self, db: &str, schema: &str, table: &str) -> Result<u64, SqlError> {
        let conn = self.connect()?;
        let meta = catalog::find_table(&conn, db, schema, table)?
            .ok_or_else(|| SqlError::invalid_object(&format!("{db}.{schema}.{table}")))?;
        conn.query_row(
            &format!("SELECT count(*) FROM {}", meta.physical),
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n as u64)
        .map_err(internal)
    }

    /// Answers deadlock 1205 to the next `times` batches whose text matches `pattern`.
    pub fn inject_deadlock(&self, pattern: &str, times: u32) -> Result<(), regex::Error> {
        let pattern = regex::Regex::new(pattern)?;
        if let Ok(mut d) = self.inner.deadlocks.lock() {
            d.push(DeadlockRule {
                pattern,
                remaining: times,
            });
        }
        Ok(())
    }

    /// Before each of the next `times` batches whose text matches
    /// `pattern`, runs `script` (GO-separated batches) in a session of its
    /// own, committed: another session's work landing just then.
    pub fn interleave(&self, pattern: &str, script: &str, times: u32) -> Result<(), regex::Error> {
        let pattern = regex::Regex::new(pattern)?;
        if let Ok(mut d) = self.inner.interleaved.lock() {
            d.push(InterleaveRule {
                pattern,
                script: script.to_string(),
                remaining: times,
            });
        }
        Ok(())
    }

    /// Forgets the deadlocks and interleaved scripts armed and not yet fired.
    pub fn clear_faults(&self) {
        if let Ok(mut d) = self.inner.deadlocks.lock() {
            d.clear();
        }
        if let Ok(mut d) = self.inner.interleaved.lock() {
            d.clear();
        }
    }

    fn take_interleaved(&self, sql: &str) -> Option<String> {
        let mut rules = self.inner.interleaved.lock().ok()?;
        let r = rules
            .iter_mut()
            .find(|r| r.remaining > 0 && r.pattern.is_match(sql))?;
        r.remaining -= 1;
        Some(r.script.clone())
    }

    fn take_deadlock(&self, sql: &str) -> bool {
        let Ok(mut rules) = self.inner.deadlocks.lock() else {
            return false;
        };
        for r in rules.iter_mut() {
            if r.remaining > 0 && r.pattern.is_match(sql) {
                r.remaining -= 1;
                return true;
            }
        }
        false
    }
}

/// Throws results away.
pub struct Discard;

impl Output for Discard {}

/// Keeps the first result set's columns and the first error (seed scripts
/// and sp_describe_first_result_set).
#[derive(Default)]
struct FirstColumns {
    columns: Option<Vec<ColumnMeta>>,
    error: Option<SqlError>,
}

impl Output for FirstColumns {
    fn columns(&mut self, cols: &[ColumnMeta]) -> Result<(), OutputError> {
        if self.columns.is_none() {
            self.columns = Some(cols.to_vec());
        }
        Ok(())
    }
    fn error(&mut self, e: &SqlError) -> Result<(), OutputError> {
        if self.error.is_none() && self.columns.is_none() {
            self.error = Some(e.clone());
        }
        Ok(())
    }
}

/// The result of sp_describe_first_result_set: the documented leading
/// columns (learn.microsoft.com/sql/relational-databases/system-stored-procedures/sp-describe-first-result-set-transact-sql).
fn describe_columns(cols: &[ColumnMeta], out: &mut dyn Output) -> Result<(), OutputError> {
    let not_null = |name: &str, t: SqlType| ColumnMeta {
        nullable: false,
        ..ColumnMeta::new(name, t)
    };
    let meta = vec![
        not_null("is_hidden", SqlType::Bit),
        not_null("column_ordinal", SqlType::Int),
        ColumnMeta::new("name", SqlType::NVarChar(Len::N(128))),
        not_null("is_nullable", SqlType::Bit),
        not_null("system_type_id", SqlType::Int),
        ColumnMeta::new("system_type_name", SqlType::NVarChar(Len::N(256))),
        not_null("max_length", SqlType::SmallInt),
        not_null("precision", SqlType::TinyInt),
        not_null("scale", SqlType::TinyInt),
        ColumnMeta::new("collation_name", SqlType::NVarChar(Len::N(128))),
        ColumnMeta::new("is_identity_column", SqlType::Bit),
        ColumnMeta::new("is_updateable", SqlType::Bit),
    ];
    out.columns(&meta)?;
    for (i, c) in cols.iter().enumerate() {
        let (type_id, max_len, precision, scale) = c.sql_type.sys_facts();
        out.row(&[
            Value::Bit(false),
            Value::Int(i as i64 + 1),
            if c.name.is_empty() {
                Value::Null
            } else {
                Value::String(c.name.clone())
            },
            Value::Bit(c.nullable),
            Value::Int(type_id),
            Value::String(c.sql_type.type_name()),
            Value::Int(max_len),
            Value::Int(precision),
            Value::Int(scale),
            if c.sql_type.is_string() {
                Value::String(super::collation::name(
                    &c.collation.unwrap_or(crate::types::Collation::SERVER),
                ))
            } else {
                Value::Null
            },
            Value::Bit(c.identity),
            Value::Bit(c.updateable),
        ])?;
    }
    out.done(Some(cols.len() as u64), false)
}

/// One client connection's state.
pub struct Session {
    engine: Engine,
    conn: Connection,
    db: String,
    spid: u16,
    trancount: i64,
    tran_descriptor: u64,
    nocount: bool,
    rowcount: i64,
    implicit_transactions: bool,
    xact_abort: bool,
    /// SET FMTONLY ON: queries return their metadata only; nothing else runs.
    fmtonly: bool,
    /// Inside sp_describe_first_result_set: what it cannot see through
    /// (temp tables the batch creates, dynamic SQL) is an error, 11526/11514.
    describing: bool,
    login: String,
    app_name: String,
    identity_insert: Option<String>,
    temp: HashMap<String, TableMeta>,
    /// `##global` temporary tables this session created: dropped when it ends.
    globals: Vec<(String, String, String)>,
    /// T-SQL variables by lower-case name; shared with the `__var` and
    /// `__setvar` SQLite functions of this session's connection.
    vars: Vars,
    /// Nesting of TRY blocks: errors go to the CATCH block instead of the client.
    try_depth: u32,
    /// The error the running CATCH block handles.
    caught: Option<SqlError>,
    /// Nesting of stored procedure calls.
    proc_depth: u32,
    /// Numbers the temporary objects of statement captures.
    next_capture: u64,
    /// What each open capture records now (read by `__sb_capture`).
    capture_modes: effects::CaptureModes,
    /// The triggers running, innermost last.
    firing: Vec<i64>,
    /// The TRY depth when the innermost trigger started: errors at that
    /// depth are the trigger's own.
    try_floor: u32,
    /// A trigger of an autocommit statement runs with @@TRANCOUNT 1 that
    /// the client never saw begin.
    implicit_tran: bool,
    /// The open transaction recorded change tracking records, which its
    /// commit must stamp with a version.
    ct_dirty: std::cell::Cell<bool>,
    /// The `WITH CHANGE_TRACKING_CONTEXT` value of the running statement.
    ct_context: Option<Vec<u8>>,
    /// SET TRANSACTION ISOLATION LEVEL (or a TDS BEGIN's level).
    isolation: Isolation,
    /// The level the open transaction began at.
    tran_isolation: Isolation,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Session-owned application locks end with the session.
        self.engine.inner.app_locks.release_all(self.spid, false);
        for (db, schema, name) in std::mem::take(&mut self.globals) {
            let _ = drops::drop_table(&self.conn, &db, &schema, &name);
        }
    }
}

type Vars = Arc<Mutex<HashMap<String, (SqlType, Value)>>>;

/// `__var('@x')` and `__setvar('@x', v)`: variables read and written inside
/// a statement, row by row (assignment SELECT).
fn register_vars(conn: &Connection, vars: &Vars) -> rusqlite::Result<()> {
    let flags = rusqlite::functions::FunctionFlags::SQLITE_UTF8;
    let read = vars.clone();
    conn.create_scalar_function("__var", 1, flags, move |ctx| {
        let name: String = ctx.get(0)?;
        let guard = read.lock().map_err(|_| rusqlite::Error::InvalidQuery)?;
        Ok(guard
            .get(&name.to_ascii_lowercase())
            .map(|(_, v)| to_storage(v))
            .unwrap_or(Sv::Null))
    })?;
    let write = vars.clone();
    conn.create_scalar_function("__setvar", 2, flags, move |ctx| {
        let name: String = ctx.get(0)?;
        let key = name.to_ascii_lowercase();
        let mut guard = write.lock().map_err(|_| rusqlite::Error::InvalidQuery)?;
        let ty = guard.get(&key).map(|(t, _)| *t).ok_or_else(|| {
            SqlError::new(
                137,
                1,
                15,
                format!("Must declare the scalar variable \"{name}\"."),
            )
            .to_fn_error()
        })?;
        let v = convert(ctx.get_raw(1), &ty, Overlong::Truncate).map_err(|e| e.to_fn_error())?;
        guard.insert(key, (ty, v));
        Ok(Sv::Null)
    })?;
    Ok(())
}

/// Runs per-row work in `f`, turning SQLite's errors into SQL Server's.
fn map_sqlite(e: rusqlite::Error, target: Option<&TableMeta>) -> SqlError {
    let msg = match &e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => m.clone(),
        other => other.to_string(),
    };
    if let Some(err) = SqlError::from_fn_error(&msg) {
        return err;
    }
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        // SQLITE_BUSY_SNAPSHOT: a SNAPSHOT transaction writes after another
        // session committed (engine::isolation).
        if f.extended_code == rusqlite::ffi::SQLITE_BUSY_SNAPSHOT {
            let (table, db) = target
                .map(|t| (format!("{}.{}", t.schema, t.name), t.db.clone()))
                .unwrap_or_default();
            return SqlError::snapshot_update_conflict(&table, &db);
        }
        if matches!(f.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) {
            return SqlError::lock_timeout();
        }
    }
    if let Some(rest) = msg.strip_prefix("NOT NULL constraint failed: ") {
        let col = rest.rsplit('.').next().unwrap_or(rest);
        let table = target.map(|t| t.full_name()).unwrap_or_default();
        return SqlError::null_not_allowed(col, &table, "INSERT");
    }
    if msg.starts_with("UNIQUE constraint failed") || msg.starts_with("PRIMARY KEY") {
        let (pk, obj) = target
            .map(|t| {
                (
                    t.pk_name.clone().unwrap_or_default(),
                    if t.temp {
                        t.name.clone()
                    } else {
                        format!("{}.{}", t.schema, t.name)
                    },
                )
            })
            .unwrap_or_default();
        return SqlError::duplicate_key(&pk, &obj, "");
    }
    if let Some(rest) = msg.strip_prefix("no such column: ") {
        // Newer SQLite adds " in <statement>" and/or " at offset N".
        let rest = rest.split(" in ").next().unwrap_or(rest);
        let rest = match rest.rfind(" at offset ") {
            Some(i) => &rest[..i],
            None => rest,
        };
        let col = rest.rsplit('.').next().unwrap_or(rest).trim_matches('"');
        return SqlError::invalid_column(col);
    }
    if let Some(rest) = msg.strip_prefix("ambiguous column name: ") {
        return SqlError::new(209, 1, 16, format!("Ambiguous column name '{rest}'.")).batch();
    }
    if let Some(rest) = msg.strip_prefix("no such table: ") {
        return SqlError::invalid_object(rest.trim_matches('"'));
    }
    if let Some(rest) = msg.strip_prefix("no such function: ") {
        return SqlError::new(
            195,
            10,
            15,
            format!("'{rest}' is not a recognized built-in function name."),
        )
        .batch();
    }
    if msg.contains("syntax error") {
        let near = msg.split('"').nth(1).unwrap_or("").to_string();
        return SqlError::syntax_near(&near);
    }
    if msg.contains("values for") && msg.contains("columns") {
        return SqlError::new(
            121,
            1,
            15,
            "The select list for the INSERT statement contains more items than the insert list. The number of SELECT values must match the number of INSERT columns.",
        )
        .batch();
    }
    SqlError::new(
        50000,
        1,
        16,
        format!("Statement failed in the sandbox engine: {msg}"),
    )
}

impl Session {
    /// Records the SQL login the client authenticated as.
    /// Records the client's application name (LOGIN7), for APP_NAME().
    pub fn set_app_name(&mut self, name: &str) {
        self.app_name = name.to_string();
    }

    pub fn set_login(&mut self, login: &str) {
        self.login = login.to_string();
    }

    pub fn spid(&self) -> u16 {
        self.spid
    }

    pub fn database(&self) -> &str {
        &self.db
    }

    /// The current database's collation (the login's ENVCHANGE carries it).
    pub fn collation(&self) -> crate::types::Collation {
        catalog::database_collation(&self.conn, &self.db).unwrap_or(crate::types::Collation::SERVER)
    }

    pub fn in_transaction(&self) -> bool {
        self.trancount > 0
    }

    pub fn transaction_descriptor(&self) -> u64 {
        if self.trancount > 0 {
            self.tran_descriptor
        } else {
            0
        }
    }

    fn ctx(&self) -> Ctx<'_> {
        self.ctx_with(&[])
    }

    /// The translator's view of the session, with the RPC parameters in scope.
    fn ctx_with(&self, params: &[Param]) -> Ctx<'_> {
        let var_types = self
            .vars
            .lock()
            .map(|v| v.iter().map(|(k, (t, _))| (k.clone(), *t)).collect())
            .unwrap_or_default();
        Ctx {
            conn: &self.conn,
            db: &self.db,
            collation: catalog::database_collation(&self.conn, &self.db)
                .unwrap_or(crate::types::Collation::SERVER),
            temp: &self.temp,
            rowcount: self.rowcount,
            trancount: self.trancount,
            spid: self.spid,
            identity_insert: self.identity_insert.as_deref(),
            login: &self.login,
            app_name: &self.app_name,
            params: params
                .iter()
                .map(|p| (p.name.clone(), p.sql_type))
                .collect(),
            var_types,
            caught: self.caught.clone(),
            max_recursion: translate::DEFAULT_MAX_RECURSION,
            snapshot: self.snapshot_check(),
        }
    }

    /// What SNAPSHOT asks of the tables the next statement reads.
    fn snapshot_check(&self) -> SnapshotCheck {
        if self.isolation != Isolation::Snapshot || self.fmtonly || self.describing {
            SnapshotCheck::None
        } else if self.trancount > 0 && self.tran_isolation != Isolation::Snapshot {
            SnapshotCheck::NotStartedInSnapshot
        } else {
            SnapshotCheck::Allowed
        }
    }

    /// Runs a client's request (a SQL batch, or an RPC's statement) in a
    /// fresh batch scope: variables and table variables last for one batch.
    pub fn run_request(
        &mut self,
        sql: &str,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), OutputError> {
        self.clear_vars();
        self.end_batch_scope(&HashSet::new());
        let r = self.execute_batch(sql, params, out);
        self.clear_vars();
        self.end_batch_scope(&HashSet::new());
        r
    }

    fn clear_vars(&mut self) {
        if let Ok(mut v) = self.vars.lock() {
            v.clear();
        }
    }

    /// Drops the table variables declared since `keep` (the table
    /// variables that existed before) was taken.
    pub(super) fn end_batch_scope(&mut self, keep: &HashSet<String>) {
        let gone: Vec<String> = self
            .temp
            .keys()
            .filter(|k| k.starts_with('@') && !keep.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(meta) = self.temp.remove(&k) {
                let _ = self
                    .conn
                    .execute(&format!("DROP TABLE IF EXISTS {}", meta.physical), []);
            }
        }
    }

    /// The table variables in scope now.
    pub(super) fn table_vars(&self) -> HashSet<String> {
        self.temp
            .keys()
            .filter(|k| k.starts_with('@'))
            .cloned()
            .collect()
    }

    /// Drops the local temp tables and table variables created since
    /// `before` (every one that existed then): a procedure's own go away
    /// when it returns, as in SQL Server.
    pub(super) fn drop_created_since(&mut self, before: &HashSet<String>) {
        let gone: Vec<String> = self
            .temp
            .keys()
            .filter(|k| !before.contains(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some(meta) = self.temp.remove(&k) {
                let _ = self
                    .conn
                    .execute(&format!("DROP TABLE IF EXISTS {}", meta.physical), []);
            }
        }
    }

    /// When an injected deadlock matches `sql` (a batch, or an INSERT BULK
    /// statement: a bulk load can be chosen as the victim too), answers
    /// 1205 and rolls the transaction back as SQL Server does with a
    /// deadlock victim
    /// (https://learn.microsoft.com/en-us/sql/relational-databases/sql-server-deadlocks-guide);
    /// true when it did.
    pub fn deadlock_victim(
        &mut self,
        sql: &str,
        out: &mut dyn Output,
    ) -> Result<bool, OutputError> {
        // Metadata-only runs (FMTONLY, sp_describe_first_result_set) take no locks.
        if self.fmtonly || !self.engine.take_deadlock(sql) {
            return Ok(false);
        }
        let had_tran = self.trancount > 0;
        self.rollback_all(out, had_tran)?;
        out.error(&SqlError::deadlock(self.spid))?;
        out.done(None, true)?;
        Ok(true)
    }

    /// Runs a batch, writing each statement's results, errors and state
    /// changes to `out`. Only an output failure (I/O, cancel) is returned.
    pub fn execute_batch(
        &mut self,
        sql: &str,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), OutputError> {
        if self.deadlock_victim(sql, out)? {
            return Ok(());
        }
        if !self.fmtonly {
            if let Some(script) = self.engine.take_interleaved(sql) {
                if let Err(e) = self.engine.run_script(&script) {
                    tracing::warn!(error = %e.message, "interleaved script failed");
                }
            }
        }
        self.change_tracking_auto_cleanup();
        let blocks = match translate::parse_batch(sql) {
            Ok(s) => s,
            Err(e) => {
                out.error(&e)?;
                return out.done(None, true);
            }
        };
        match self.run_seq(blocks, params, out) {
            Err(Failure::Output(e)) => {
                if matches!(e, OutputError::Cancelled) && self.trancount == 0 {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
                Err(e)
            }
            Err(Failure::Sql(e)) => {
                // Only reachable inside a TRY block of an enclosing batch.
                out.error(&e)?;
                out.done(None, true)
            }
            Ok(()) | Err(_) => Ok(()),
        }
    }

    /// Change Tracking's automatic cleanup: "invoked automatically every 30
    /// minutes", it drops from each tracked table of a database with
    /// AUTO_CLEANUP = ON the changes older than its CHANGE_RETENTION, which
    /// moves the table's minimum valid version
    /// (https://learn.microsoft.com/en-us/archive/blogs/sql_server_team/change-tracking-cleanup-part-1).
    /// SQL Server runs it on a background thread; the sandbox runs it before
    /// the first batch that starts once 30 minutes have passed on its clock
    /// (a test moves the clock to let it run), outside any transaction.
    fn change_tracking_auto_cleanup(&mut self) {
        const EVERY_MS: i64 = 30 * 60 * 1000;
        if self.trancount > 0 {
            return;
        }
        let inner = &self.engine.inner;
        let now = inner.clock.now().timestamp_millis();
        let last = inner.ct_cleaned_at.load(Ordering::SeqCst);
        if now - last < EVERY_MS
            || inner
                .ct_cleaned_at
                .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
                .is_err()
        {
            return;
        }
        let run = || -> Result<u64, SqlError> {
            let dbs: Vec<String> = {
                let mut st = self
                    .conn
                    .prepare("SELECT db FROM __sb_ct_databases WHERE auto_cleanup = 1")
                    .map_err(internal)?;
                let rows = st.query_map([], |r| r.get(0)).map_err(internal)?;
                rows.collect::<Result<_, _>>().map_err(internal)?
            };
            let mut removed = 0;
            for db in dbs {
                for id in super::change_tracking::tracked_tables(&self.conn, &db)? {
                    removed +=
                        self.in_savepoint(|c| super::change_tracking::cleanup(c, &db, id, None))?;
                }
            }
            Ok(removed)
        };
        match run() {
            Ok(n) if n > 0 => tracing::debug!(rows = n, "change tracking auto cleanup"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.message, "change tracking auto cleanup failed"),
        }
    }

    fn bind_params(
        &self,
        stmt: &mut rusqlite::Statement<'_>,
        params: &[Param],
    ) -> Result<(), SqlError> {
        for i in 1..=stmt.parameter_count() {
            let Some(name) = stmt.parameter_name(i).map(str::to_string) else {
                return Err(SqlError::new(
                    8178,
                    1,
                    16,
                    format!(
                        "The parameterized query expects parameter #{i}, which was not supplied."
                    ),
                ));
            };
            let value = params
                .iter()
                .find(|p| p.name.eq_ignore_ascii_case(&name))
                .map(|p| to_storage(&p.value))
                .or_else(|| self.var(&name).map(|(_, v)| to_storage(&v)))
                .ok_or_else(|| {
                    SqlError::new(
                        137,
                        2,
                        15,
                        format!("Must declare the scalar variable \"{name}\"."),
                    )
                    .batch()
                })?;
            stmt.raw_bind_parameter(i, value).map_err(internal)?;
        }
        Ok(())
    }

    fn begin_implicit(&mut self, out: &mut dyn Output) -> Result<(), Failure> {
        if self.implicit_transactions && self.trancount == 0 {
            self.begin(out)?;
        }
        Ok(())
    }

    fn execute_statement(
        &mut self,
        stmt: sqlparser::ast::Statement,
        hints: translate::batch::StmtHints,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let shown = self.describing.then(|| stmt.to_string());
        let mut ctx = self.ctx_with(params);
        if let Some(n) = hints.max_recursion {
            ctx.max_recursion = n;
        }
        let plan = match translate::plan(&ctx, stmt, hints.delete_top) {
            Ok(p) => p,
            Err(e) if self.describing && e.number == 208 && e.message.contains("'#") => {
                // sp_describe_first_result_set cannot see temp tables the batch creates.
                return Err(SqlError::new(
                    11526,
                    1,
                    16,
                    format!(
                        "The metadata could not be determined because statement '{}' uses a temp table.",
                        shown.unwrap_or_default()
                    ),
                )
                .into());
            }
            Err(e) => return Err(e.into()),
        };
        if self.fmtonly
            && !matches!(
                plan,
                Plan::Query { .. }
                    | Plan::SetOption(..)
                    | Plan::Use(_)
                    | Plan::Declare(_)
                    | Plan::DeclareTable(_)
                    | Plan::SetVar(..)
            )
        {
            return Ok(out.done(None, false)?);
        }
        match plan {
            Plan::Query { sql, columns } => self.query_planned(&sql, &columns, params, out)?,
            Plan::Dml(dml) => self.dml_planned(&dml, params, out)?,
            Plan::SelectInto { table, insert } => self.select_into(table, insert, params, out)?,
            Plan::CreateTable(meta, infos) => self.create_table_planned(meta, infos, out)?,
            Plan::DeclareTable(meta) => self.declare_table(meta, out)?,
            Plan::DropTables { names, if_exists } => self.drop_tables(names, if_exists, out)?,
            Plan::DropObjects {
                kind,
                names,
                if_exists,
            } => self.drop_objects(kind, names, if_exists, out)?,
            Plan::Truncate(meta) => self.truncate(meta, out)?,
            Plan::CreateDatabase(name, collation) => {
                self.create_database_planned(name, collation, out)?
            }
            Plan::DropDatabase(name, if_exists) => {
                self.drop_database_planned(name, if_exists, out)?
            }
            Plan::CreateSchema(name) => {
                let db = self.db.clone();
                self.in_savepoint(|c| catalog::create_schema(c, &db, &name))?;
                out.done(None, false)?;
            }
            Plan::Use(name) => self.use_database(name, out)?,
            Plan::Begin => {
                self.begin(out)?;
                out.done(None, false)?;
            }
            Plan::Commit => {
                self.commit(out)?;
                out.done(None, false)?;
            }
            Plan::Rollback(savepoint) => {
                self.rollback(savepoint.as_deref(), out)?;
                out.done(None, false)?;
            }
            Plan::Save(name) => self.save_transaction(name, out)?,
            Plan::SetOption(opt, val) => {
                self.set_option(&opt, &val)?;
                out.done(None, false)?;
            }
            Plan::SetIsolation(level) => {
                self.isolation = level;
                out.done(None, false)?;
            }
            Plan::Declare(decls) => self.declare(decls, params, out)?,
            Plan::SetVar(name, expr) => self.set_variable(name, expr, params, out)?,
            Plan::Nothing => out.done(None, false)?,
            Plan::Assign { sql } => self.assign(sql, params, out)?,
            Plan::Print(expr) => self.print(expr, params, out)?,
            Plan::Raise {
                message,
                severity,
                state,
                args,
            } => self.raise(message, severity, state, args, params, out)?,
            Plan::Throw(parts) => self.throw(parts, params)?,
            Plan::WaitFor(expr) => {
                self.wait_for(&expr, params)?;
                out.done(None, false)?;
            }
        }
        Ok(())
    }

    /// Creates a table: a `#temp` or `@table` variable in the connection's
    /// temp schema, anything else in the catalog (`##global` ones are
    /// dropped when this session ends).
    fn create_table(&mut self, meta: &TableMeta) -> Result<(), SqlError> {
        if meta.temp {
            if self.temp.contains_key(&meta.name) {
                return Err(SqlError::object_exists(&meta.name));
            }
            for ddl in catalog::sqlite_ddl(meta) {
                self.conn
                    .execute(&ddl, [])
                    .map_err(|e| map_sqlite(e, None))?;
            }
            self.temp.insert(meta.name.clone(), meta.clone());
            return Ok(());
        }
        self.in_savepoint(|c| catalog::create_table(c, meta))?;
        if meta.name.starts_with("##") {
            self.globals
                .push((meta.db.clone(), meta.schema.clone(), meta.name.clone()));
        }
        Ok(())
    }

    /// Undoes [`Session::create_table`] (a SELECT INTO that failed).
    fn drop_created(&mut self, meta: &TableMeta) {
        if meta.temp {
            if self.temp.remove(&meta.name).is_some() {
                let _ = self
                    .conn
                    .execute(&format!("DROP TABLE IF EXISTS {}", meta.physical), []);
            }
        } else {
            let _ = drops::drop_table(&self.conn, &meta.db, &meta.schema, &meta.name);
        }
    }

    /// The columns the first result set of `sql` would have, without running
    /// it (as with SET FMTONLY ON).
    fn first_result_columns(&mut self, sql: &str) -> Result<Vec<ColumnMeta>, SqlError> {
        let mut capture = FirstColumns::default();
        let was = std::mem::replace(&mut self.fmtonly, true);
        let was_describing = std::mem::replace(&mut self.describing, true);
        let r = self.execute_batch(sql, &[], &mut capture);
        self.fmtonly = was;
        self.describing = was_describing;
        r.map_err(|e| SqlError::new(50000, 1, 16, e.to_string()))?;
        if let Some(e) = capture.error {
            if matches!(e.number, 11514 | 11526) {
                return Err(e);
            }
            return Err(SqlError::new(
                11501,
                1,
                16,
                format!(
                    "The batch could not be analyzed because of compile errors: {}",
                    e.message
                ),
            ));
        }
        Ok(capture.columns.unwrap_or_default())
    }

    fn var(&self, name: &str) -> Option<(SqlType, Value)> {
        self.vars
            .lock()
            .ok()?
            .get(&name.to_ascii_lowercase())
            .cloned()
    }

    fn set_var(&self, name: &str, ty: SqlType, value: Value) {
        if let Ok(mut v) = self.vars.lock() {
            v.insert(name.to_ascii_lowercase(), (ty, value));
        }
    }

    fn eval_scalar(&self, expr: &str, ty: &SqlType, params: &[Param]) -> Result<Value, SqlError> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {expr}"))
            .map_err(|e| map_sqlite(e, None))?;
        self.bind_params(&mut st, params)?;
        let mut rows = st.raw_query();
        let row = rows.next().map_err(|e| map_sqlite(e, None))?;
        match row {
            Some(r) => {
                let v = r.get_ref(0).map_err(internal)?;
                convert(v, ty, Overlong::Truncate)
            }
            None => Ok(Value::Null),
        }
    }

    fn set_option(&mut self, opt: &str, val: &str) -> Result<(), SqlError> {
        let on = val.eq_ignore_ascii_case("ON");
        match opt {
            "NOCOUNT" => self.nocount = on,
            "IMPLICIT_TRANSACTIONS" => self.implicit_transactions = on,
            "XACT_ABORT" => self.xact_abort = on,
            "FMTONLY" => self.fmtonly = on,
            "LOCK_TIMEOUT" => {
                let ms: i64 = val.trim().parse().map_err(|_| SqlError::syntax_near(val))?;
                let d = if ms < 0 {
                    Duration::from_secs(3600)
                } else {
                    Duration::from_millis(ms as u64)
                };
                self.conn.busy_timeout(d).map_err(internal)?;
            }
            "IDENTITY_INSERT" => {
                let (table, state) = val
                    .rsplit_once(' ')
                    .ok_or_else(|| SqlError::syntax_near(val))?;
                let name = sqlparser::parser::Parser::new(&sqlparser::dialect::MsSqlDialect {})
                    .try_with_sql(table)
                    .and_then(|mut p| p.parse_object_name(false))
                    .map_err(|_| SqlError::syntax_near(table))?;
                let meta = self.ctx().table(&name)?;
                self.identity_insert = state.eq_ignore_ascii_case("ON").then(|| meta.full_name());
            }
            // Options drivers send at connect time that do not change results here.
            "ANSI_NULLS"
            | "ANSI_WARNINGS"
            | "ANSI_PADDING"
            | "ANSI_NULL_DFLT_ON"
            | "ANSI_DEFAULTS"
            | "CONCAT_NULL_YIELDS_NULL"
            | "QUOTED_IDENTIFIER"
            | "ARITHABORT"
            | "ARITHIGNORE"
            | "TEXTSIZE"
            | "DATEFORMAT"
            | "DATEFIRST"
            | "LANGUAGE"
            | "CURSOR_CLOSE_ON_COMMIT"
            | "NUMERIC_ROUNDABORT"
            | "DEADLOCK_PRIORITY"
            | "STATISTICS"
            | "SHOWPLAN_ALL"
            | "NOEXEC"
            | "ROWCOUNT"
            | "TRANSACTION"
            | "CONTEXT_INFO" => {}
            other => {
                return Err(SqlError::new(
                    195,
                    7,
                    15,
                    format!("'{other}' is not a recognized SET option."),
                )
                .batch())
            }
        }
        Ok(())
    }

    /// Opens a statement's savepoint. Outside a transaction a write takes
    /// SQLite's write lock first (BEGIN IMMEDIATE), so it waits for other
    /// writers (LOCK_TIMEOUT) instead of failing when its snapshot is stale.
    /// Returns whether it opened that outer transaction.
    fn stmt_begin(&self, name: &str, writes_shared: bool) -> Result<bool, SqlError> {
        let outer = writes_shared && self.conn.is_autocommit();
        if outer {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| map_sqlite(e, None))?;
        }
        if let Err(e) = self.conn.execute_batch(&format!("SAVEPOINT {name}")) {
            if outer {
                let _ = self.conn.execute_batch("ROLLBACK");
            }
            return Err(map_sqlite(e, None));
        }
        Ok(outer)
    }

    /// Closes [`Session::stmt_begin`]'s savepoint, keeping or undoing its work.
    fn stmt_end(&self, name: &str, keep: bool, outer: bool) -> Result<(), SqlError> {
        let r = if keep {
            self.conn.execute_batch(&format!("RELEASE {name}"))
        } else {
            self.conn
                .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
        };
        if outer {
            let stamped = if r.is_ok() {
                self.stamp_changes()
            } else {
                self.ct_dirty.set(false);
                Ok(())
            };
            let end = if r.is_ok() && stamped.is_ok() {
                "COMMIT"
            } else {
                "ROLLBACK"
            };
            self.conn
                .execute_batch(end)
                .map_err(|e| map_sqlite(e, None))?;
            stamped?;
        }
        r.map_err(|e| map_sqlite(e, None))
    }

    fn in_savepoint<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let outer = self.stmt_begin("__stmt", true)?;
        match f(&self.conn) {
            Ok(v) => {
                self.stmt_end("__stmt", true, outer)?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.stmt_end("__stmt", false, outer);
                Err(e)
            }
        }
    }

    /// Runs a write statement in its savepoint: its rows, then what they
    /// imply (constraints, referential actions, change tracking, triggers).
    fn run_dml(
        &mut self,
        run: &DmlPlan,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<u64, Failure> {
        let target: &TableMeta = &run.target;
        let outer = self.stmt_begin("__stmt", !target.temp)?;
        let result = (|| -> Result<u64, Failure> {
            for s in &run.setup {
                let mut st = self
                    .conn
                    .prepare(s)
                    .map_err(|e| map_sqlite(e, Some(target)))?;
                self.bind_params(&mut st, params)?;
                st.raw_execute().map_err(|e| map_sqlite(e, Some(target)))?;
            }
            self.write_with_effects(
                target,
                run.kind,
                &run.set_columns,
                &run.sqls,
                params,
                effects::WriteOptions::STATEMENT,
                out,
            )
        })();
        if self.conn.is_autocommit() {
            // A trigger ended the transaction (ROLLBACK or an error that
            // dooms it): the savepoint went with it.
            for c in &run.cleanup {
                let _ = self.conn.execute_batch(c);
            }
            return result;
        }
        let result = match result {
            Err(Failure::Sql(mut e)) => {
                let _ = self.conn.execute_batch("ROLLBACK TO __stmt");
                if e.number == 2627 {
                    let key = run
                        .key_probe
                        .as_deref()
                        .and_then(|p| self.probe_key(p, params))
                        .unwrap_or_default();
                    e = SqlError::duplicate_key(
                        &target.pk_name.clone().unwrap_or_default(),
                        &if target.temp {
                            target.name.clone()
                        } else {
                            format!("{}.{}", target.schema, target.name)
                        },
                        &key,
                    );
                }
                Err(Failure::Sql(e))
            }
            Err(other) => {
                let _ = self.conn.execute_batch("ROLLBACK TO __stmt");
                Err(other)
            }
            ok => ok,
        };
        for c in &run.cleanup {
            let _ = self.conn.execute_batch(c);
        }
        self.stmt_end("__stmt", true, outer)?;
        result
    }

    /// Finds which key an INSERT duplicated, for error 2627's text.
    fn probe_key(&self, probe: &str, params: &[Param]) -> Option<String> {
        let mut st = self.conn.prepare(probe).ok()?;
        self.bind_params(&mut st, params).ok()?;
        let n = st.column_count();
        let mut rows = st.raw_query();
        let row = rows.next().ok()??;
        let mut parts = Vec::new();
        for i in 0..n {
            parts.push(match row.get_ref(i).ok()? {
                ValueRef::Null => "<NULL>".to_string(),
                ValueRef::Integer(i) => i.to_string(),
                ValueRef::Real(f) => super::convert::format_float(f),
                ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
                ValueRef::Blob(_) => "0x".to_string(),
            });
        }
        Some(parts.join(", "))
    }

    /// Runs a query and streams its rows in the types the compiler derived;
    /// returns how many were sent.
    fn run_query(
        &mut self,
        sql: &str,
        columns: &[ColumnMeta],
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<u64, Failure> {
        let mut st = self.conn.prepare(sql).map_err(|e| map_sqlite(e, None))?;
        self.bind_params(&mut st, params)?;
        out.columns(columns)?;
        if self.fmtonly {
            return Ok(0);
        }
        let mut rows = st.raw_query();
        let mut values: Vec<Value> = Vec::with_capacity(columns.len());
        let mut count = 0u64;
        while let Some(r) = rows.next().map_err(|e| map_sqlite(e, None))? {
            values.clear();
            for (i, c) in columns.iter().enumerate() {
                values.push(from_storage(r.get_ref(i).map_err(internal)?, &c.sql_type)?);
            }
            out.row(&values)?;
            count += 1;
        }
        Ok(count)
    }

    fn begin(&mut self, out: &mut dyn Output) -> Result<(), Failure> {
        if self.trancount == 0 {
            // SNAPSHOT: deferred, so the first read fixes the snapshot
            // (engine::isolation); the others take the write lock now.
            let begin = if self.isolation == Isolation::Snapshot {
                "BEGIN DEFERRED"
            } else {
                "BEGIN IMMEDIATE"
            };
            self.conn
                .execute_batch(begin)
                .map_err(|e| map_sqlite(e, None))?;
            self.tran_isolation = self.isolation;
            self.tran_descriptor = self.engine.inner.next_tran.fetch_add(1, Ordering::Relaxed);
            out.env(EnvChange::BeginTran(self.tran_descriptor))?;
        }
        self.trancount += 1;
        Ok(())
    }

    fn commit(&mut self, out: &mut dyn Output) -> Result<(), Failure> {
        if self.trancount == 0 {
            return Err(SqlError::new(
                3902,
                1,
                16,
                "The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            )
            .into());
        }
        self.trancount -= 1;
        if self.trancount == 0 {
            self.stamp_changes()?;
            self.conn
                .execute_batch("COMMIT")
                .map_err(|e| map_sqlite(e, None))?;
            self.end_transaction_locks();
            out.env(EnvChange::CommitTran(self.tran_descriptor))?;
        }
        Ok(())
    }

    /// Releases the application locks the ended transaction owned.
    pub(super) fn end_transaction_locks(&self) {
        self.engine.inner.app_locks.release_all(self.spid, true);
    }

    /// Gives the committing transaction's change tracking records their
    /// version (nothing to do when it changed no tracked table).
    fn stamp_changes(&self) -> Result<(), SqlError> {
        if self.ct_dirty.replace(false) {
            super::change_tracking::stamp(&self.conn)?;
        }
        Ok(())
    }

    fn rollback(&mut self, savepoint: Option<&str>, out: &mut dyn Output) -> Result<(), Failure> {
        if self.trancount == 0 {
            return Err(SqlError::new(
                3903,
                1,
                16,
                "The ROLLBACK TRANSACTION request has no corresponding BEGIN TRANSACTION.",
            )
            .into());
        }
        if let Some(sp) = savepoint {
            if self
                .conn
                .execute_batch(&format!("ROLLBACK TO {}", quote_ident(sp)))
                .is_ok()
            {
                self.reconcile_temp();
                return Ok(());
            }
        }
        self.rollback_all(out, true)?;
        Ok(())
    }

    fn rollback_all(&mut self, out: &mut dyn Output, notify: bool) -> Result<(), OutputError> {
        if self.trancount > 0 {
            self.ct_dirty.set(false);
            let _ = self.conn.execute_batch("ROLLBACK");
            self.trancount = 0;
            self.end_transaction_locks();
            self.reconcile_temp();
            if notify && !std::mem::take(&mut self.implicit_tran) {
                out.env(EnvChange::RollbackTran(self.tran_descriptor))?;
            }
        }
        Ok(())
    }

    /// After a rollback, forgets temp tables whose creation was undone.
    fn reconcile_temp(&mut self) {
        let existing: Vec<String> = self
            .conn
            .prepare("SELECT name FROM temp.sqlite_master WHERE type = 'table'")
            .and_then(|mut st| {
                st.query_map([], |r| r.get::<_, String>(0))?
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap_or_default();
        self.temp.retain(|_, m| {
            let name = effects::bare_physical(&m.physical);
            existing.iter().any(|e| e.eq_ignore_ascii_case(&name))
        });
    }

    /// Begins a transaction for a TDS transaction-manager request, at the
    /// isolation level it asks for (which stays the session's, as SET
    /// TRANSACTION ISOLATION LEVEL would) or the session's.
    pub fn tm_begin(
        &mut self,
        isolation: Option<Isolation>,
        out: &mut dyn Output,
    ) -> Result<Result<(), SqlError>, OutputError> {
        if let Some(level) = isolation {
            self.isolation = level;
        }
        match self.begin(out) {
            Ok(()) => Ok(Ok(())),
            Err(Failure::Sql(e)) => Ok(Err(e)),
            Err(Failure::Output(e)) => Err(e),
            Err(_) => Ok(Ok(())),
        }
    }

    pub fn tm_commit(&mut self, out: &mut dyn Output) -> Result<Result<(), SqlError>, OutputError> {
        // A TM commit ends the whole transaction, whatever its nesting.
        if self.trancount > 1 {
            self.trancount = 1;
        }
        match self.commit(out) {
            Ok(()) => Ok(Ok(())),
            Err(Failure::Sql(e)) => Ok(Err(e)),
            Err(Failure::Output(e)) => Err(e),
            Err(_) => Ok(Ok(())),
        }
    }

    pub fn tm_rollback(
        &mut self,
        out: &mut dyn Output,
    ) -> Result<Result<(), SqlError>, OutputError> {
        match self.rollback(None, out) {
            Ok(()) => Ok(Ok(())),
            Err(Failure::Sql(e)) => Ok(Err(e)),
            Err(Failure::Output(e)) => Err(e),
            Err(_) => Ok(Ok(())),
        }
    }

    /// Rolls back whatever is open, e.g. when the client disconnects or
    /// resets the connection.
    pub fn reset(&mut self) {
        self.ct_dirty.set(false);
        if self.trancount > 0 {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.trancount = 0;
            self.end_transaction_locks();
        }
        for meta in std::mem::take(&mut self.temp).values() {
            let _ = self
                .conn
                .execute(&format!("DROP TABLE IF EXISTS {}", meta.physical), []);
        }
        if let Ok(mut v) = self.vars.lock() {
            v.clear();
        }
        self.nocount = false;
        // "Starting with SQL Server 2014, for client drivers with TDS 7.3
        // or higher, the isolation level is reset to the default" on a
        // pooled connection's reset.
        self.isolation = Isolation::default();
        self.implicit_transactions = false;
        self.xact_abort = false;
        self.fmtonly = false;
        self.identity_insert = None;
    }
}

/// The index of the `)` closing the `(` at `open` (quotes and brackets skipped).
fn matching_paren(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    for (i, c) in s.char_indices().skip_while(|(i, _)| *i < open) {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '[' => quote = Some(']'),
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(i);
                    }
                }
                _ => {}
            },
        }
    }
    None
}

fn translate_default(ctx: &Ctx<'_>, d: &str) -> Result<String, SqlError> {
    let t = translate::scalar(ctx, &translate::parse_expr(d)?)?;
    Ok(format!("({})", t.sql))
}

/// RAISERROR's message with its printf-style arguments (%d, %i, %s, %u,
/// %x, with optional width) filled in order.
fn raiserror_text(fmt: &str, args: &[String]) -> String {
    let mut out = String::new();
    let mut it = args.iter();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        if chars.peek() == Some(&'%') {
            chars.next();
            out.push('%');
            continue;
        }
        while chars
            .peek()
            .is_some_and(|c| c.is_ascii_digit() || matches!(c, '-' | '+' | ' ' | '#' | '.' | '*'))
        {
            chars.next();
        }
        match chars.next() {
            Some('d' | 'i' | 's' | 'u' | 'o' | 'x' | 'X' | 'I') => {
                out.push_str(it.next().map(String::as_str).unwrap_or("(null)"))
            }
            Some(other) => {
                out.push('%');
                out.push(other);
            }
            None => out.push('%'),
        }
    }
    out
}

fn drop_missing(name: &str) -> SqlError {
    SqlError::new(
        3701,
        5,
        11,
        format!("Cannot drop the table '{name}', because it does not exist or you do not have permission."),
    )
}

/// A statement failed either in SQL (reported, batch may go on) or on output.
enum Failure {
    Sql(SqlError),
    Output(OutputError),
    /// A batch-aborting error was reported: stop the batch.
    Aborted,
    /// RETURN, with its status.
    Return(Option<i64>),
    Break,
    Continue,
}

impl From<SqlError> for Failure {
    fn from(e: SqlError) -> Self {
        Failure::Sql(e)
    }
}

impl From<OutputError> for Failure {
    fn from(e: OutputError) -> Self {
        Failure::Output(e)
    }
}
