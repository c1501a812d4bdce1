//! What the engine's tests share: an [`Output`] that keeps everything a
//! batch sends back, and the ways they run T-SQL through a session.

use super::*;
use crate::types::{ColumnMeta, Value};

#[derive(Default, Debug)]
pub(super) struct Collect {
    /// Each result set: its columns and rows.
    pub results: Vec<(Vec<ColumnMeta>, Vec<Vec<Value>>)>,
    pub dones: Vec<(Option<u64>, bool)>,
    pub errors: Vec<SqlError>,
    /// Messages of severity 10 or less (PRINT, warnings).
    pub infos: Vec<SqlError>,
    pub envs: Vec<EnvChange>,
    pub statuses: Vec<i32>,
}

impl Output for Collect {
    fn columns(&mut self, cols: &[ColumnMeta]) -> Result<(), OutputError> {
        self.results.push((cols.to_vec(), vec![]));
        Ok(())
    }
    fn row(&mut self, values: &[Value]) -> Result<(), OutputError> {
        if let Some(r) = self.results.last_mut() {
            r.1.push(values.to_vec());
        }
        Ok(())
    }
    fn done(&mut self, rows: Option<u64>, error: bool) -> Result<(), OutputError> {
        self.dones.push((rows, error));
        Ok(())
    }
    fn error(&mut self, e: &SqlError) -> Result<(), OutputError> {
        self.errors.push(e.clone());
        Ok(())
    }
    fn info(&mut self, e: &SqlError) -> Result<(), OutputError> {
        self.infos.push(e.clone());
        Ok(())
    }
    fn env(&mut self, change: EnvChange) -> Result<(), OutputError> {
        self.envs.push(change);
        Ok(())
    }
    fn return_status(&mut self, status: i32) -> Result<(), OutputError> {
        self.statuses.push(status);
        Ok(())
    }
}

/// Runs a batch, whatever it returns.
pub(super) fn run(s: &mut Session, sql: &str) -> Collect {
    let mut c = Collect::default();
    s.execute_batch(sql, &[], &mut c).unwrap();
    c
}

/// Runs a batch that must raise no error.
pub(super) fn ok(s: &mut Session, sql: &str) -> Collect {
    let c = run(s, sql);
    assert!(c.errors.is_empty(), "{sql}: {:?}", c.errors);
    c
}

/// The first error a batch raises (it must raise one).
pub(super) fn err(s: &mut Session, sql: &str) -> SqlError {
    run(s, sql)
        .errors
        .first()
        .cloned()
        .unwrap_or_else(|| panic!("{sql}: no error"))
}

/// The rows of a batch's last result set.
pub(super) fn rows(s: &mut Session, sql: &str) -> Vec<Vec<Value>> {
    ok(s, sql).results.pop().map(|r| r.1).unwrap_or_default()
}

/// The first value of a batch's last result set (NULL when there is none).
pub(super) fn one(s: &mut Session, sql: &str) -> Value {
    rows(s, sql)
        .first()
        .and_then(|r| r.first())
        .cloned()
        .unwrap_or(Value::Null)
}

/// A new engine and a session in a database made by `create` and used.
pub(super) fn session_in(create: &str, db: &str) -> (Engine, Session) {
    let e = Engine::open(None).unwrap();
    let mut s = e.session("master").unwrap();
    ok(&mut s, create);
    ok(&mut s, &format!("USE {db}"));
    (e, s)
}
