//! The Databricks double's SQL engine: Spark SQL (parsed with sqlparser's
//! Databricks dialect) run on an embedded SQLite database that also holds
//! the Unity Catalog metadata. One connection behind a mutex: a test double
//! runs one statement at a time, which also makes every statement atomic.

mod alter;
pub mod catalog;
mod cdf;
mod commands;
mod context;
mod copy_into;
mod copy_log;
pub mod drops;
pub mod error;
mod exec;
mod files;
mod functions;
pub mod grants;
pub mod history;
mod insert;
mod merge;
pub mod names;
mod parse;
mod policies;
pub mod privileges;
mod replace_where;
mod result;
mod retention;
mod rewrite;
mod select;
mod table_changes;
mod tokens;
pub mod types;
mod widening;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::Connection;

pub use error::{ErrorKind, SqlError};
pub use grants::Caller;
pub use result::{Column, Param, ResultSet};

use crate::clock::Clock;
use crate::databricks::paths::VolumePath;

/// The SQLite database and the directory that holds the volumes' files.
pub struct SqlEngine {
    conn: Mutex<Connection>,
    volumes_root: PathBuf,
    /// Interrupts the statement SQLite is running (statement cancel).
    interrupt: rusqlite::InterruptHandle,
    /// Tag of the statement running now, so a cancel interrupts only its own.
    running: Mutex<Option<String>>,
    /// Who runs seed scripts ([`SqlEngine::run_script`]).
    script_caller: Mutex<Caller>,
    /// The workspace's time (movable by tests).
    clock: Clock,
}

/// The principal that runs statements when nobody else is named: seed
/// scripts before a workspace names its admin, and engine tests.
pub const DEFAULT_PRINCIPAL: &str = "sandbox-admin@bridge.local";

/// Where a statement runs: the session's default catalog and schema, and
/// who runs it.
#[derive(Clone, Debug)]
pub struct SessionDefaults {
    pub catalog: String,
    pub schema: String,
    pub caller: Caller,
}

impl Default for SessionDefaults {
    fn default() -> Self {
        SessionDefaults {
            catalog: "main".into(),
            schema: "default".into(),
            caller: Caller::new(DEFAULT_PRINCIPAL, true),
        }
    }
}

impl SqlEngine {
    /// Opens (or creates) the database at `db_path`; volume files live under
    /// `volumes_root`. Creates the `main` catalog with its `default` schema,
    /// as a new Unity Catalog workspace has.
    pub fn open(db_path: &Path, volumes_root: &Path) -> Result<SqlEngine, SqlError> {
        std::fs::create_dir_all(volumes_root).map_err(SqlError::internal)?;
        let conn = Connection::open(db_path).map_err(SqlError::internal)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = OFF;")
            .map_err(SqlError::internal)?;
        catalog::init(&conn)?;
        conn.execute_batch(grants::SCHEMA_SQL)
            .map_err(SqlError::internal)?;
        conn.execute_batch(history::SCHEMA_SQL)
            .map_err(SqlError::internal)?;
        conn.execute_batch(copy_log::SCHEMA_SQL)
            .map_err(SqlError::internal)?;
        conn.execute_batch(retention::SCHEMA_SQL)
            .map_err(SqlError::internal)?;
        conn.execute_batch(policies::SCHEMA_SQL)
            .map_err(SqlError::internal)?;
        let clock = Clock::new();
        functions::register(&conn, &clock).map_err(SqlError::internal)?;
        // Owned by whoever the workspace names its admin (`adopt_unowned`).
        catalog::create_catalog(&conn, "main", Some("Main catalog (sandbox)"), true, None)?;
        catalog::create_schema(&conn, "main", "default", None, true, None)?;
        let interrupt = conn.get_interrupt_handle();
        Ok(SqlEngine {
            conn: Mutex::new(conn),
            volumes_root: volumes_root.to_path_buf(),
            interrupt,
            running: Mutex::new(None),
            script_caller: Mutex::new(Caller::new(DEFAULT_PRINCIPAL, true)),
            clock,
        })
    }

    /// The workspace's clock: commit timestamps, `current_timestamp()`,
    /// history retention and VACUUM follow it.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Makes `caller` the principal of seed scripts and the owner of every
    /// object that has none yet (the `main` catalog of a new workspace).
    pub fn set_script_caller(&self, caller: Caller) -> Result<(), SqlError> {
        catalog::adopt_unowned(&self.lock(), &caller.principal)?;
        *self.script_caller.lock().unwrap_or_else(|p| p.into_inner()) = caller;
        Ok(())
    }

    fn script_caller(&self) -> Caller {
        self.script_caller
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn volumes_root(&self) -> &Path {
        &self.volumes_root
    }

    /// The connection; a poisoned lock is recovered because every statement
    /// is rolled back on failure and leaves nothing half done.
    pub fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs one statement with parameters against the given defaults.
    pub fn execute(
        &self,
        sql: &str,
        defaults: &SessionDefaults,
        params: &[Param],
    ) -> Result<ResultSet, SqlError> {
        self.execute_in(sql, defaults, params).map(|(r, _)| r)
    }

    /// Runs one statement under a tag that [`SqlEngine::interrupt`] can name.
    pub fn execute_tagged(
        &self,
        sql: &str,
        defaults: &SessionDefaults,
        params: &[Param],
        tag: &str,
    ) -> Result<ResultSet, SqlError> {
        self.run_tagged(sql, defaults, params, Some(tag))
            .map(|(r, _)| r)
    }

    /// Interrupts the statement running under `tag`, if it is the one running;
    /// its changes are rolled back.
    pub fn interrupt(&self, tag: &str) {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running.as_deref() == Some(tag) {
            tracing::debug!(tag, "interrupting statement");
            self.interrupt.interrupt();
        }
    }

    fn execute_in(
        &self,
        sql: &str,
        defaults: &SessionDefaults,
        params: &[Param],
    ) -> Result<(ResultSet, exec::Effects), SqlError> {
        self.run_tagged(sql, defaults, params, None)
    }

    fn run_tagged(
        &self,
        sql: &str,
        defaults: &SessionDefaults,
        params: &[Param],
        tag: Option<&str>,
    ) -> Result<(ResultSet, exec::Effects), SqlError> {
        let conn = self.lock();
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = tag.map(str::to_string);
        let ex = context::Exec {
            conn: &conn,
            volumes_root: &self.volumes_root,
            catalog: &defaults.catalog,
            schema: &defaults.schema,
            params,
            caller: &defaults.caller,
        };
        let result = ex.run(sql);
        *self.running.lock().unwrap_or_else(|p| p.into_inner()) = None;
        drop(conn);
        let (rs, fx) = result?;
        for v in &fx.volumes_created {
            std::fs::create_dir_all(VolumePath::volume_dir(&self.volumes_root, &v.name))
                .map_err(SqlError::internal)?;
        }
        for v in &fx.volumes_dropped {
            let _ = std::fs::remove_dir_all(VolumePath::volume_dir(&self.volumes_root, &v.name));
        }
        Ok((rs, fx))
    }

    /// Runs a script of `;`-separated statements (seed files) as the
    /// workspace's admin; `USE` changes the defaults for the statements after it.
    pub fn run_script(&self, script: &str) -> Result<(), SqlError> {
        let mut defaults = SessionDefaults {
            caller: self.script_caller(),
            ..SessionDefaults::default()
        };
        for stmt in split_statements(script) {
            let (_, fx) = self
                .execute_in(&stmt, &defaults, &[])
                .map_err(|e| SqlError {
                    message: format!(
                        "{} (in: {})",
                        e.message,
                        stmt.chars().take(120).collect::<String>()
                    ),
                    ..e
                })?;
            if let Some(c) = fx.use_catalog {
                defaults.catalog = c;
            }
            if let Some(s) = fx.use_schema {
                defaults.schema = s;
            }
        }
        Ok(())
    }

    /// Creates a volume's directory (after a REST create).
    pub fn ensure_volume_dir(&self, name: &catalog::FullName) -> Result<(), SqlError> {
        std::fs::create_dir_all(VolumePath::volume_dir(&self.volumes_root, name))
            .map_err(SqlError::internal)
    }

    /// Removes a volume's files (after a REST delete).
    pub fn remove_volume_dir(&self, name: &catalog::FullName) {
        let _ = std::fs::remove_dir_all(VolumePath::volume_dir(&self.volumes_root, name));
    }
}

/// Splits a script on `;` outside quotes and comments; drops empty pieces.
pub fn split_statements(script: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = script.chars().peekable();
    let mut quote: Option<char> = None;
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                cur.push(c);
                if c == '\\' && q != '`' {
                    if let Some(n) = chars.next() {
                        cur.push(n);
                    }
                } else if c == q {
                    quote = None;
                }
            }
            None => match c {
                '\'' | '"' | '`' => {
                    quote = Some(c);
                    cur.push(c);
                }
                '-' if chars.peek() == Some(&'-') => {
                    for n in chars.by_ref() {
                        if n == '\n' {
                            cur.push('\n');
                            break;
                        }
                    }
                }
                ';' => {
                    if !cur.trim().is_empty() {
                        out.push(cur.trim().to_string());
                    }
                    cur.clear();
                }
                _ => cur.push(c),
            },
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

#[cfg(test)]
mod tests;
