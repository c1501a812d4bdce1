//! What a write does besides writing its rows, all inside the statement's
//! savepoint so a failure undoes the statement: CHECK and FOREIGN KEY
//! constraints checked once the statement's rows are written (error 547),
//! referential actions (CASCADE, SET NULL, SET DEFAULT), change tracking,
//! and AFTER triggers fired once per statement with `inserted` and
//! `deleted`.
//!
//! The rows a statement touches are captured by temporary SQLite triggers
//! created on the target for the statement only, gated by `__sb_capture`
//! so that only the statement's own writes of the expected kind are seen
//! (not, say, the IDENTITY trigger's UPDATE during an INSERT).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::{internal, map_sqlite, Failure, Output, Session};
use crate::engine::catalog::{self, quote_ident, ColumnDef, TableMeta};
use crate::engine::compile::Compiler;
use crate::engine::constraints::{self, CheckConstraint, ForeignKey, RefAction};
use crate::engine::error::{Abort, SqlError};
use crate::engine::translate::{self, DmlKind};
use crate::engine::triggers::{self, TriggerInfo};

/// Capture modes by capture id, read by `__sb_capture(id)`.
pub(super) type CaptureModes = Arc<Mutex<HashMap<u64, char>>>;

/// `__sb_capture(id)`: the kind of write (`I`, `U`, `D`) capture `id` is
/// recording now, or NULL.
pub(super) fn register_capture(
    conn: &rusqlite::Connection,
    modes: &CaptureModes,
) -> rusqlite::Result<()> {
    let m = modes.clone();
    conn.create_scalar_function(
        "__sb_capture",
        1,
        rusqlite::functions::FunctionFlags::SQLITE_UTF8,
        move |ctx| {
            let id: i64 = ctx.get(0)?;
            let guard = m.lock().map_err(|_| rusqlite::Error::InvalidQuery)?;
            Ok(guard.get(&(id as u64)).map(|c| c.to_string()))
        },
    )
}

/// How a write was asked for: ordinary statements check constraints and
/// fire triggers; a bulk load does so only when told (CHECK_CONSTRAINTS,
/// FIRE_TRIGGERS).
#[derive(Clone, Copy, Debug)]
pub(super) struct WriteOptions {
    pub check_constraints: bool,
    pub fire_triggers: bool,
}

impl WriteOptions {
    pub(super) const STATEMENT: WriteOptions = WriteOptions {
        check_constraints: true,
        fire_triggers: true,
    };
}

/// What a write to one table must do besides writing.
#[derive(Default)]
pub(super) struct Effects {
    checks: Vec<CheckConstraint>,
    fks: Vec<ForeignKey>,
    /// FOREIGN KEYs of other tables (or this one) that reference the target.
    referencing: Vec<(TableMeta, ForeignKey)>,
    triggers: Vec<TriggerInfo>,
    tracked: bool,
}

impl Effects {
    pub(super) fn any(&self) -> bool {
        !self.checks.is_empty()
            || !self.fks.is_empty()
            || !self.referencing.is_empty()
            || !self.triggers.is_empty()
            || self.tracked
    }

    /// Enabled constraints a bulk load skipped, which it marks not trusted.
    pub(super) fn skipped_constraint_ids(target: &TableMeta) -> Vec<i64> {
        target
            .checks
            .iter()
            .filter(|c| !c.disabled)
            .map(|c| c.object_id)
            .chain(
                target
                    .foreign_keys
                    .iter()
                    .filter(|f| !f.disabled)
                    .map(|f| f.object_id),
            )
            .filter(|id| *id != 0)
            .collect()
    }
}

/// A statement's captured rows: `new` holds (rid, old_rid, kind) of rows
/// inserted or updated, `old` the before-images of rows updated or deleted.
pub(super) struct Capture {
    id: u64,
    new: String,
    old: String,
    triggers: Vec<String>,
    modes: CaptureModes,
}

impl Capture {
    /// Starts (`Some`) or stops recording writes of one kind.
    pub(super) fn set_mode(&self, mode: Option<char>) {
        if let Ok(mut m) = self.modes.lock() {
            match mode {
                Some(c) => {
                    m.insert(self.id, c);
                }
                None => {
                    m.remove(&self.id);
                }
            }
        }
    }

    /// The capture mode for one SQLite statement of a write plan.
    pub(super) fn mode_of(sql: &str) -> Option<char> {
        let head = sql.trim_start();
        let kw = head
            .get(..6)
            .map(|s| s.to_ascii_uppercase())
            .unwrap_or_default();
        match kw.as_str() {
            "INSERT" => Some('I'),
            "UPDATE" => Some('U'),
            "DELETE" => Some('D'),
            _ => None,
        }
    }
}

/// Column list of a table's before-image.
fn image_columns(meta: &TableMeta) -> Vec<&ColumnDef> {
    meta.columns.iter().collect()
}

/// The SQLite table name inside a quoted physical name (`temp."#t"` → `#t`).
pub(super) fn bare_physical(physical: &str) -> String {
    let p = physical.strip_prefix("temp.").unwrap_or(physical);
    p.trim_matches('"').replace("\"\"", "\"")
}

/// `main."x"` for a permanent table, `temp."x"` for a temporary one.
fn qualified(meta: &TableMeta) -> String {
    if meta.physical.starts_with("temp.") {
        meta.physical.clone()
    } else {
        format!("main.{}", meta.physical)
    }
}

fn key_match(left: &str, lcols: &[String], right: &str, rcols: &[String]) -> String {
    lcols
        .iter()
        .zip(rcols)
        .map(|(l, r)| format!("{left}.{} = {right}.{}", quote_ident(l), quote_ident(r)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn not_null(alias: &str, cols: &[String]) -> String {
    cols.iter()
        .map(|c| format!("{alias}.{} IS NOT NULL", quote_ident(c)))
        .collect::<Vec<_>>()
        .join(" AND ")
}

fn same_table(fk: &ForeignKey, meta: &TableMeta) -> bool {
    fk.ref_db.eq_ignore_ascii_case(&meta.db)
        && fk.ref_schema.eq_ignore_ascii_case(&meta.schema)
        && fk.ref_table.eq_ignore_ascii_case(&meta.name)
}

fn mentions(cols: &[String], set_columns: &[String]) -> bool {
    cols.iter()
        .any(|c| set_columns.iter().any(|s| s.eq_ignore_ascii_case(c)))
}

/// An Output that keeps the first error (a bulk load's triggers write
/// nowhere; their error becomes the load's).
#[derive(Default)]
pub(super) struct FirstError {
    pub error: Option<SqlError>,
}

impl Output for FirstError {
    fn error(&mut self, e: &SqlError) -> Result<(), super::OutputError> {
        if self.error.is_none() {
            self.error = Some(e.clone());
        }
        Ok(())
    }
}

impl Session {
    /// What writing `target` involves for a statement of `kind`.
    pub(super) fn write_effects(
        &self,
        target: &TableMeta,
        kind: DmlKind,
        opts: WriteOptions,
    ) -> Result<Effects, SqlError> {
        let mut e = Effects::default();
        let (inserts, updates, deletes) = match kind {
            DmlKind::Insert => (true, false, false),
            DmlKind::Update => (false, true, false),
            DmlKind::Delete => (false, false, true),
            DmlKind::Merge {
                insert,
                update,
                delete,
            } => (insert, update, delete),
        };
        if opts.check_constraints && (inserts || updates) {
            e.checks = target
                .checks
                .iter()
                .filter(|c| !c.disabled)
                .cloned()
                .collect();
            e.fks = target
                .foreign_keys
                .iter()
                .filter(|f| !f.disabled)
                .cloned()
                .collect();
        }
        let Some(id) = target.object_id else {
            return Ok(e);
        };
        if updates || deletes {
            for (owner, fk) in constraints::referencing(&self.conn, id)? {
                if fk.disabled {
                    continue;
                }
                let child = catalog::find_by_id(&self.conn, owner)?.ok_or_else(|| {
                    SqlError::new(50000, 1, 16, "sandbox catalog: dangling foreign key")
                })?;
                e.referencing.push((child, fk));
            }
        }
        if opts.fire_triggers {
            e.triggers = triggers::for_table(&self.conn, id)?
                .into_iter()
                .filter(|t| {
                    !t.disabled
                        && ((inserts && t.events.insert)
                            || (updates && t.events.update)
                            || (deletes && t.events.delete))
                })
                .collect();
        }
        e.tracked = crate::engine::change_tracking::is_tracked(&self.conn, id)?;
        Ok(e)
    }

    /// Creates the capture tables and triggers on `target`.
    pub(super) fn capture_begin(&mut self, target: &TableMeta) -> Result<Capture, SqlError> {
        self.next_capture += 1;
        let id = self.next_capture;
        let new = format!("temp.\"__sb_new_{id}\"");
        let old = format!("temp.\"__sb_old_{id}\"");
        let cols = image_columns(target);
        let col_list: Vec<String> = cols.iter().map(|c| quote_ident(&c.name)).collect();
        let old_vals: Vec<String> = cols
            .iter()
            .map(|c| format!("OLD.{}", quote_ident(&c.name)))
            .collect();
        let table = qualified(target);
        let names = [
            format!("__sb_cap_i_{id}"),
            format!("__sb_cap_u_{id}"),
            format!("__sb_cap_d_{id}"),
        ];
        let ddl = [
            format!("CREATE TEMP TABLE {new} (\"__rid\" INTEGER, \"__old_rid\" INTEGER, \"__kind\" TEXT)"),
            format!(
                "CREATE TEMP TABLE {old} (\"__rid\" INTEGER, \"__kind\" TEXT{}{})",
                if col_list.is_empty() { "" } else { ", " },
                col_list.join(", ")
            ),
            format!(
                "CREATE TEMP TRIGGER {} AFTER INSERT ON {table} WHEN __sb_capture({id}) = 'I' BEGIN \
                 INSERT INTO \"__sb_new_{id}\" VALUES (NEW.rowid, NULL, 'I'); END",
                quote_ident(&names[0])
            ),
            format!(
                "CREATE TEMP TRIGGER {} AFTER UPDATE ON {table} WHEN __sb_capture({id}) = 'U' BEGIN \
                 INSERT INTO \"__sb_new_{id}\" VALUES (NEW.rowid, OLD.rowid, 'U'); \
                 INSERT INTO \"__sb_old_{id}\" VALUES (OLD.rowid, 'U'{}{}); END",
                quote_ident(&names[1]),
                if old_vals.is_empty() { "" } else { ", " },
                old_vals.join(", ")
            ),
            format!(
                "CREATE TEMP TRIGGER {} AFTER DELETE ON {table} WHEN __sb_capture({id}) = 'D' BEGIN \
                 INSERT INTO \"__sb_old_{id}\" VALUES (OLD.rowid, 'D'{}{}); END",
                quote_ident(&names[2]),
                if old_vals.is_empty() { "" } else { ", " },
                old_vals.join(", ")
            ),
        ];
        for d in &ddl {
            self.conn
                .execute_batch(d)
                .map_err(|e| map_sqlite(e, None))?;
        }
        Ok(Capture {
            id,
            new,
            old,
            triggers: names.to_vec(),
            modes: self.capture_modes.clone(),
        })
    }

    /// Drops a capture's triggers and tables.
    pub(super) fn capture_end(&mut self, c: Capture) {
        c.set_mode(None);
        for t in &c.triggers {
            let _ = self
                .conn
                .execute_batch(&format!("DROP TRIGGER IF EXISTS temp.{}", quote_ident(t)));
        }
        let _ = self.conn.execute_batch(&format!(
            "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS {}",
            c.new, c.old
        ));
    }

    /// Runs a write's SQLite statements against `target` with everything
    /// the write implies; returns the rows the statements changed. The
    /// caller holds the statement's savepoint.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn write_with_effects(
        &mut self,
        target: &TableMeta,
        kind: DmlKind,
        set_columns: &[String],
        sqls: &[String],
        params: &[super::Param],
        opts: WriteOptions,
        out: &mut dyn Output,
    ) -> Result<u64, Failure> {
        let effects = self.write_effects(target, kind, opts)?;
        if !effects.any() {
            return Ok(self.execute_counted(sqls, params, target, None)?);
        }
        let capture = self.capture_begin(target)?;
        let r = self
            .execute_counted(sqls, params, target, Some(&capture))
            .map_err(Failure::from)
            .and_then(|n| {
                self.after_write(target, &capture, &effects, kind, set_columns, n, out)
                    .map(|()| n)
            });
        self.capture_end(capture);
        r
    }

    /// Executes a write plan's statements, each recorded by `capture` under
    /// its own kind; returns SQLite's count of changed rows.
    pub(super) fn execute_counted(
        &mut self,
        sqls: &[String],
        params: &[super::Param],
        target: &TableMeta,
        capture: Option<&Capture>,
    ) -> Result<u64, SqlError> {
        let mut total = 0u64;
        for s in sqls {
            let mut st = self
                .conn
                .prepare(s)
                .map_err(|e| map_sqlite(e, Some(target)))?;
            self.bind_params(&mut st, params)?;
            if let Some(c) = capture {
                c.set_mode(Capture::mode_of(s));
            }
            let r = st.raw_execute().map_err(|e| map_sqlite(e, Some(target)));
            if let Some(c) = capture {
                c.set_mode(None);
            }
            total += r? as u64;
        }
        Ok(total)
    }

    /// Constraints, referential actions, change tracking and triggers for
    /// the rows `capture` recorded.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn after_write(
        &mut self,
        target: &TableMeta,
        capture: &Capture,
        effects: &Effects,
        kind: DmlKind,
        set_columns: &[String],
        rows: u64,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let statement = kind.statement();
        let alias = "\"__t\"";
        // CHECK: rows inserted, and rows updated in a column the condition mentions.
        for c in &effects.checks {
            let expr = translate::parse_expr(&c.definition)?;
            let kinds = if mentions(&constraints::mentioned_columns(&expr), set_columns)
                || matches!(kind, DmlKind::Insert)
            {
                "'I', 'U'"
            } else {
                "'I'"
            };
            let scope = translate::table_scope(target);
            let pred = Compiler::new(&self.ctx()).condition(&expr, &scope)?;
            let sql = format!(
                "SELECT 1 FROM {} AS {alias} WHERE {alias}.rowid IN (SELECT \"__rid\" FROM {} WHERE \"__kind\" IN ({kinds})) \
                 AND NOT coalesce(({pred}), 1) LIMIT 1",
                target.physical, capture.new
            );
            if self.exists(&sql)? {
                return Err(constraints::conflict(
                    statement,
                    "CHECK",
                    &c.name,
                    &target.db,
                    &schema_table(target),
                    c.column.as_deref(),
                )
                .into());
            }
        }
        // FOREIGN KEY, referencing side: every new or changed key must exist.
        for fk in &effects.fks {
            let kinds = if mentions(&fk.columns, set_columns) || matches!(kind, DmlKind::Insert) {
                "'I', 'U'"
            } else {
                "'I'"
            };
            let parent =
                catalog::find_table(&self.conn, &fk.ref_db, &fk.ref_schema, &fk.ref_table)?
                    .ok_or_else(|| SqlError::invalid_object(&fk.ref_table))?;
            let sql = format!(
                "SELECT 1 FROM {} AS {alias} WHERE {alias}.rowid IN (SELECT \"__rid\" FROM {} WHERE \"__kind\" IN ({kinds})) \
                 AND {} AND NOT EXISTS (SELECT 1 FROM {} AS \"__p\" WHERE {}) LIMIT 1",
                target.physical,
                capture.new,
                not_null(alias, &fk.columns),
                parent.physical,
                key_match("\"__p\"", &fk.ref_columns, alias, &fk.columns),
            );
            if self.exists(&sql)? {
                let same = same_table(fk, target);
                return Err(constraints::conflict(
                    statement,
                    if same {
                        "FOREIGN KEY SAME TABLE"
                    } else {
                        "FOREIGN KEY"
                    },
                    &fk.name,
                    &parent.db,
                    &schema_table(&parent),
                    fk.ref_columns.first().map(String::as_str),
                )
                .into());
            }
        }
        // FOREIGN KEY, referenced side: keys deleted or changed away. Each
        // referential action runs first (CASCADE, SET NULL, SET DEFAULT),
        // then whatever still references a vanished key violates NO ACTION.
        // learn.microsoft.com/sql/relational-databases/tables/primary-and-foreign-key-constraints#cascading-referential-integrity
        let (deletes, updates) = match kind {
            DmlKind::Delete => (true, false),
            DmlKind::Update => (false, true),
            DmlKind::Merge { update, delete, .. } => (delete, update),
            DmlKind::Insert => (false, false),
        };
        let mut gones = Vec::new();
        for (child, fk) in &effects.referencing {
            for (row_kind, action, update) in
                [('D', fk.on_delete, false), ('U', fk.on_update, true)]
            {
                let applies = if update {
                    updates && mentions(&fk.ref_columns, set_columns)
                } else {
                    deletes
                };
                if !applies {
                    continue;
                }
                self.next_capture += 1;
                let gone = format!("temp.\"__sb_gone_{}\"", self.next_capture);
                let keys: Vec<String> = fk
                    .ref_columns
                    .iter()
                    .enumerate()
                    .map(|(k, c)| format!("\"__o\".{} AS \"__key{k}\"", quote_ident(c)))
                    .collect();
                // An updated row's new key, for ON UPDATE CASCADE.
                let new_keys: Vec<String> = fk
                    .ref_columns
                    .iter()
                    .enumerate()
                    .map(|(k, c)| {
                        format!(
                            ", (SELECT \"__n\".{c} FROM {table} AS \"__n\" JOIN {new} AS \"__m\" ON \"__m\".\"__rid\" = \"__n\".rowid \
                             WHERE \"__m\".\"__old_rid\" = \"__o\".\"__rid\") AS \"__new{k}\"",
                            c = quote_ident(c),
                            table = target.physical,
                            new = capture.new,
                        )
                    })
                    .collect();
                self.conn
                    .execute_batch(&format!(
                        "CREATE TEMP TABLE {} AS SELECT DISTINCT {}{} FROM {} AS \"__o\" \
                         WHERE \"__o\".\"__kind\" = '{row_kind}' AND {} AND NOT EXISTS (SELECT 1 FROM {} AS \"__p\" WHERE {})",
                        gone.trim_start_matches("temp."),
                        keys.join(", "),
                        if update { new_keys.concat() } else { String::new() },
                        capture.old,
                        not_null("\"__o\"", &fk.ref_columns),
                        target.physical,
                        key_match("\"__p\"", &fk.ref_columns, "\"__o\"", &fk.ref_columns),
                    ))
                    .map_err(|e| map_sqlite(e, None))?;
                gones.push((child, fk, gone, action, update));
            }
        }
        for (child, fk, gone, action, update) in &gones {
            let matched = |c: &str| {
                format!(
                    "EXISTS (SELECT 1 FROM {gone} AS \"__g\" WHERE {})",
                    fk.columns
                        .iter()
                        .enumerate()
                        .map(|(k, col)| format!("\"__g\".\"__key{k}\" = {c}.{}", quote_ident(col)))
                        .collect::<Vec<_>>()
                        .join(" AND ")
                )
            };
            let (sql, child_kind) = match (action, update) {
                (RefAction::NoAction, _) => continue,
                (RefAction::Cascade, false) => (
                    format!(
                        "DELETE FROM {} WHERE rowid IN (SELECT \"__c\".rowid FROM {} AS \"__c\" WHERE {})",
                        child.physical,
                        child.physical,
                        matched("\"__c\"")
                    ),
                    DmlKind::Delete,
                ),
                (RefAction::Cascade, true) => {
                    let sets: Vec<String> = fk
                        .columns
                        .iter()
                        .enumerate()
                        .map(|(k, col)| {
                            let link: Vec<String> = fk
                                .columns
                                .iter()
                                .enumerate()
                                .map(|(j, c2)| format!("\"__g\".\"__key{j}\" = \"__c\".{}", quote_ident(c2)))
                                .collect();
                            format!(
                                "{} = (SELECT \"__g\".\"__new{k}\" FROM {gone} AS \"__g\" WHERE {})",
                                quote_ident(col),
                                link.join(" AND ")
                            )
                        })
                        .collect();
                    (
                        format!(
                            "UPDATE {} AS \"__c\" SET {} WHERE {}",
                            child.physical,
                            sets.join(", "),
                            matched("\"__c\"")
                        ),
                        DmlKind::Update,
                    )
                }
                (RefAction::SetNull | RefAction::SetDefault, _) => {
                    let mut sets = Vec::new();
                    for col in &fk.columns {
                        let default = child.column(col).and_then(|(_, d)| d.default.clone());
                        let v = match (action, default) {
                            (RefAction::SetDefault, Some(d)) => {
                                translate::scalar(&self.ctx(), &translate::parse_expr(&d)?)?.sql
                            }
                            _ => "NULL".to_string(),
                        };
                        sets.push(format!("{} = {v}", quote_ident(col)));
                    }
                    (
                        format!(
                            "UPDATE {} AS \"__c\" SET {} WHERE {}",
                            child.physical,
                            sets.join(", "),
                            matched("\"__c\"")
                        ),
                        DmlKind::Update,
                    )
                }
            };
            let set = if matches!(child_kind, DmlKind::Update) {
                fk.columns.clone()
            } else {
                vec![]
            };
            self.write_with_effects(
                child,
                child_kind,
                &set,
                &[sql],
                &[],
                WriteOptions::STATEMENT,
                out,
            )?;
        }
        for (child, fk, gone, _, _) in &gones {
            let sql = format!(
                "SELECT 1 FROM {gone} AS \"__g\" WHERE EXISTS (SELECT 1 FROM {} AS \"__c\" WHERE {}) LIMIT 1",
                child.physical,
                fk.columns
                    .iter()
                    .enumerate()
                    .map(|(k, col)| format!("\"__g\".\"__key{k}\" = \"__c\".{}", quote_ident(col)))
                    .collect::<Vec<_>>()
                    .join(" AND ")
            );
            let violated = self.exists(&sql)?;
            let _ = self
                .conn
                .execute_batch(&format!("DROP TABLE IF EXISTS {gone}"));
            if violated {
                let same = child.object_id == target.object_id;
                return Err(constraints::conflict(
                    statement,
                    if same {
                        "SAME TABLE REFERENCE"
                    } else {
                        "REFERENCE"
                    },
                    &fk.name,
                    &child.db,
                    &schema_table(child),
                    fk.columns.first().map(String::as_str),
                )
                .into());
            }
        }
        if effects.tracked {
            self.track_changes(target, &capture.new, &capture.old, set_columns)?;
        }
        if !effects.triggers.is_empty() {
            self.fire_triggers(target, capture, &effects.triggers, kind, rows, out)?;
        }
        Ok(())
    }

    /// Whether a query returns a row.
    pub(super) fn exists(&self, sql: &str) -> Result<bool, SqlError> {
        let mut st = self.conn.prepare(sql).map_err(|e| map_sqlite(e, None))?;
        let mut rows = st.raw_query();
        Ok(rows.next().map_err(|e| map_sqlite(e, None))?.is_some())
    }

    /// Fires the AFTER triggers of a statement: for a MERGE, once per action
    /// it names, each with that action's rows.
    fn fire_triggers(
        &mut self,
        target: &TableMeta,
        capture: &Capture,
        trigs: &[TriggerInfo],
        kind: DmlKind,
        rows: u64,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let actions: Vec<char> = match kind {
            DmlKind::Insert => vec!['I'],
            DmlKind::Update => vec!['U'],
            DmlKind::Delete => vec!['D'],
            DmlKind::Merge {
                insert,
                update,
                delete,
            } => [(insert, 'I'), (update, 'U'), (delete, 'D')]
                .into_iter()
                .filter(|(on, _)| *on)
                .map(|(_, c)| c)
                .collect(),
        };
        for action in actions {
            let fired: Vec<&TriggerInfo> = trigs
                .iter()
                .filter(|t| match action {
                    'I' => t.events.insert,
                    'U' => t.events.update,
                    _ => t.events.delete,
                })
                .collect();
            if fired.is_empty() {
                continue;
            }
            let count = if matches!(kind, DmlKind::Merge { .. }) {
                self.count_action(capture, action)?
            } else {
                rows
            };
            for t in fired {
                self.fire_trigger(target, capture, t, action, count, out)?;
            }
        }
        Ok(())
    }

    fn count_action(&self, capture: &Capture, action: char) -> Result<u64, SqlError> {
        let table = if action == 'D' {
            &capture.old
        } else {
            &capture.new
        };
        self.conn
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE \"__kind\" = '{action}'"),
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n as u64)
            .map_err(internal)
    }

    /// `inserted` or `deleted`: the target's columns, none computed or
    /// identity, in a temporary table.
    fn pseudo_table(
        &mut self,
        target: &TableMeta,
        name: &str,
        select: &str,
    ) -> Result<TableMeta, SqlError> {
        self.next_capture += 1;
        let physical = format!("temp.\"__sb_{name}_{}\"", self.next_capture);
        let columns: Vec<ColumnDef> = target
            .columns
            .iter()
            .map(|c| ColumnDef {
                nullable: true,
                identity: None,
                default: None,
                in_pk: false,
                computed: None,
                default_name: None,
                rowversion: false,
                ..c.clone()
            })
            .collect();
        let meta = TableMeta {
            db: "tempdb".into(),
            schema: "dbo".into(),
            name: name.to_string(),
            physical: physical.clone(),
            columns,
            pk_name: None,
            temp: true,
            object_id: None,
            unique_keys: vec![],
            checks: vec![],
            foreign_keys: vec![],
        };
        for ddl in catalog::sqlite_ddl(&meta) {
            self.conn
                .execute_batch(&ddl)
                .map_err(|e| map_sqlite(e, None))?;
        }
        let cols: Vec<String> = meta.columns.iter().map(|c| quote_ident(&c.name)).collect();
        self.conn
            .execute_batch(&format!(
                "INSERT INTO {physical} ({}) {select}",
                cols.join(", ")
            ))
            .map_err(|e| map_sqlite(e, None))?;
        Ok(meta)
    }

    /// Runs one trigger's body with `inserted` and `deleted` in scope, in
    /// the statement's transaction: @@TRANCOUNT is at least 1 inside; if
    /// the trigger ends with none (ROLLBACK), the batch is aborted with
    /// 3609. Direct recursion is off (RECURSIVE_TRIGGERS OFF, the default);
    /// nesting stops at 32 levels (217).
    fn fire_trigger(
        &mut self,
        target: &TableMeta,
        capture: &Capture,
        trig: &TriggerInfo,
        action: char,
        rows: u64,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        if self.firing.last() == Some(&trig.object_id) {
            return Ok(());
        }
        if self.proc_depth + self.firing.len() as u32 >= 32 {
            return Err(SqlError::new(
                217,
                1,
                16,
                "Maximum stored procedure, function, trigger, or view nesting level exceeded (limit 32).",
            )
            .into());
        }
        let cols: Vec<String> = target
            .columns
            .iter()
            .map(|c| format!("\"__t\".{}", quote_ident(&c.name)))
            .collect();
        let old_cols: Vec<String> = target
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        let ins_select = if action == 'D' {
            format!(
                "SELECT {} FROM {} AS \"__t\" WHERE 0",
                cols.join(", "),
                target.physical
            )
        } else {
            format!(
                "SELECT {} FROM {} AS \"__t\" WHERE \"__t\".rowid IN (SELECT \"__rid\" FROM {} WHERE \"__kind\" = '{action}')",
                cols.join(", "),
                target.physical,
                capture.new
            )
        };
        let del_select = if action == 'I' {
            format!(
                "SELECT {} FROM {} WHERE 0",
                old_cols.join(", "),
                capture.old
            )
        } else {
            format!(
                "SELECT {} FROM {} WHERE \"__kind\" = '{action}'",
                old_cols.join(", "),
                capture.old
            )
        };
        let before: HashSet<String> = self.temp.keys().cloned().collect();
        let saved_ins = self.temp.remove("inserted");
        let saved_del = self.temp.remove("deleted");
        let inserted = self.pseudo_table(target, "inserted", &ins_select)?;
        let deleted = self.pseudo_table(target, "deleted", &del_select)?;
        self.temp.insert("inserted".into(), inserted);
        self.temp.insert("deleted".into(), deleted);

        let blocks = translate::parse_batch(&trig.body);
        let outer_vars = self.swap_vars(HashMap::new());
        let nocount = self.nocount;
        let implicit = self.trancount == 0;
        if implicit {
            self.trancount = 1;
            self.implicit_tran = true;
        }
        let try_floor = std::mem::replace(&mut self.try_floor, self.try_depth);
        // The body runs in the trigger's own database, whatever the session's
        // (a trigger "is created only in the current database; however, a
        // trigger can reference objects outside the current database"), so
        // `INSERT bulk db.dbo.t` from master finds the trigger's tables:
        // https://learn.microsoft.com/en-us/sql/t-sql/statements/create-trigger-transact-sql#remarks-for-dml-triggers
        let outer_db = std::mem::replace(&mut self.db, target.db.clone());
        self.firing.push(trig.object_id);
        self.rowcount = rows as i64;
        let r = match blocks {
            Ok(b) => self.run_seq(b, &[], out),
            Err(e) => Err(Failure::Sql(e)),
        };
        self.db = outer_db;
        self.firing.pop();
        self.try_floor = try_floor;
        self.nocount = nocount;
        self.swap_vars(outer_vars);
        self.drop_created_since(&before);
        if let Some(m) = saved_ins {
            self.temp.insert("inserted".into(), m);
        }
        if let Some(m) = saved_del {
            self.temp.insert("deleted".into(), m);
        }
        self.rowcount = rows as i64;
        let ended = self.trancount == 0;
        if implicit && self.trancount == 1 {
            self.trancount = 0;
        }
        if implicit {
            self.implicit_tran = false;
        }
        match r {
            Ok(()) | Err(Failure::Return(_)) | Err(Failure::Break) | Err(Failure::Continue) => {}
            Err(Failure::Sql(e)) => {
                // An error a TRY around the firing statement takes: the
                // transaction does not survive it.
                self.rollback_all(out, !implicit)?;
                return Err(Failure::Sql(e));
            }
            Err(other) => return Err(other),
        }
        if ended {
            return Err(SqlError::new(
                3609,
                1,
                16,
                "The transaction ended in the trigger. The batch has been aborted.",
            )
            .batch()
            .into());
        }
        Ok(())
    }

    /// Inside a trigger, an error the trigger does not catch ends the
    /// transaction and the batch (SQL Server runs trigger bodies as if
    /// XACT_ABORT were on); RAISERROR does not (SET XACT_ABORT page).
    pub(super) fn trigger_error_aborts(&self, e: &SqlError) -> bool {
        let raiserror = e.number == 50000 && e.abort == Abort::Statement;
        !self.firing.is_empty() && !raiserror
    }
}

/// `schema.table` as error 547 names a table.
fn schema_table(meta: &TableMeta) -> String {
    if meta.temp {
        meta.name.clone()
    } else {
        format!("{}.{}", meta.schema, meta.name)
    }
}
