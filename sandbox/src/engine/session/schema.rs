//! DDL the session runs itself: ALTER TABLE (constraints, CHECK/NOCHECK,
//! change tracking, triggers), CREATE/ALTER/DROP/ENABLE/DISABLE TRIGGER and
//! ALTER DATABASE. Each runs in a savepoint, so a failure changes nothing.
//! learn.microsoft.com/sql/t-sql/statements/alter-table-transact-sql

use sqlparser::ast::{ObjectName, TableConstraint};

use super::{Failure, Output, Session};
use crate::engine::catalog::{self, quote_ident, TableMeta};
use crate::engine::compile::Compiler;
use crate::engine::constraints::{self, CheckConstraint, ForeignKey};
use crate::engine::error::SqlError;
use crate::engine::translate::{
    self, AddItem, AlterAction, AlterDatabase, AlterTable, Resolved, TriggerDef,
};
use crate::engine::triggers::{self, TriggerInfo};

/// `schema.table` as messages name a table.
fn schema_table(meta: &TableMeta) -> String {
    if meta.temp {
        meta.name.clone()
    } else {
        format!("{}.{}", meta.schema, meta.name)
    }
}

fn no_constraint(name: &str) -> SqlError {
    SqlError::new(4917, 0, 16, format!("Constraint '{name}' does not exist."))
}

impl Session {
    pub(super) fn alter_table(
        &mut self,
        a: AlterTable,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let meta = self.ctx().table(&a.table)?;
        match a.action {
            AlterAction::Add { with_check, items } => {
                for item in items {
                    self.add_item(&meta, with_check.unwrap_or(true), item, out)?;
                }
            }
            AlterAction::SetConstraints {
                with_check,
                enable,
                names,
            } => self.set_constraints(&meta, with_check.unwrap_or(false), enable, names)?,
            AlterAction::DropConstraints { names, if_exists } => {
                for n in names {
                    self.drop_constraint(&meta, &n, if_exists)?;
                }
            }
            AlterAction::ChangeTracking {
                enable,
                track_columns,
            } => {
                let db = meta.db.clone();
                self.in_savepoint(|c| {
                    if enable {
                        crate::engine::change_tracking::enable_table(c, &db, &meta, track_columns)
                    } else {
                        crate::engine::change_tracking::disable_table(c, &meta)
                    }
                })?;
            }
            AlterAction::Triggers { enable, names } => self.set_triggers(&meta, enable, names)?,
        }
        out.done(None, false)?;
        Ok(())
    }

    /// The table again (after an earlier ADD changed it).
    fn reload(&self, name: &str, old: &TableMeta) -> Result<TableMeta, SqlError> {
        if old.temp {
            return self
                .temp
                .get(&old.name)
                .cloned()
                .ok_or_else(|| SqlError::invalid_object(name));
        }
        catalog::find_table(&self.conn, &old.db, &old.schema, &old.name)?
            .ok_or_else(|| SqlError::invalid_object(name))
    }

    fn add_item(
        &mut self,
        table: &TableMeta,
        with_check: bool,
        item: AddItem,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let meta = self.reload(&table.name, table)?;
        match item {
            AddItem::Constraint(TableConstraint::Check(cc)) => {
                let mut c = translate::check_constraint(
                    &self.ctx(),
                    &meta,
                    cc.name.as_ref().map(|n| n.value.clone()),
                    &cc.expr,
                    None,
                )?;
                if with_check {
                    self.validate_check(&meta, &c, "ALTER TABLE")?;
                } else {
                    c.not_trusted = true;
                }
                if meta.temp {
                    if c.system_named {
                        c.name = constraints::system_name(
                            "CK",
                            &meta.name,
                            None,
                            meta.checks.len() as i64 + 1,
                        );
                    }
                    if let Some(m) = self.temp.get_mut(&meta.name) {
                        m.checks.push(c);
                    }
                    return Ok(());
                }
                let id = meta.object_id.unwrap_or_default();
                self.in_savepoint(|conn| catalog::add_constraints(conn, &meta, id, &[c], &[]))?;
            }
            AddItem::Constraint(TableConstraint::ForeignKey(fk)) => {
                if meta.temp {
                    out.info(&SqlError::new(
                        1756,
                        0,
                        10,
                        format!(
                            "Skipping FOREIGN KEY constraint '{}' definition for temporary table. FOREIGN KEY constraints are not enforced on local or global temporary tables.",
                            fk.name.as_ref().map(|n| n.value.clone()).unwrap_or_else(|| meta.name.clone())
                        ),
                    ))?;
                    return Ok(());
                }
                let mut k = translate::foreign_key(
                    &self.ctx(),
                    &meta,
                    fk.name.as_ref().map(|n| n.value.clone()),
                    fk.columns.iter().map(|c| c.value.clone()).collect(),
                    &fk,
                )?;
                if with_check {
                    self.validate_foreign_key(&meta, &k, "ALTER TABLE")?;
                } else {
                    k.not_trusted = true;
                }
                let id = meta.object_id.unwrap_or_default();
                self.in_savepoint(|conn| catalog::add_constraints(conn, &meta, id, &[], &[k]))?;
            }
            AddItem::Constraint(TableConstraint::Unique(u)) => {
                let cols: Vec<String> = u
                    .columns
                    .iter()
                    .map(|ic| {
                        ic.column
                            .expr
                            .to_string()
                            .trim_matches(|c| c == '[' || c == ']' || c == '"')
                            .to_string()
                    })
                    .collect();
                for c in &cols {
                    meta.column(c).ok_or_else(|| SqlError::invalid_column(c))?;
                }
                if meta.temp {
                    if let Some(m) = self.temp.get_mut(&meta.name) {
                        m.unique_keys.push(cols);
                    }
                    return Ok(());
                }
                let mut keys = meta.unique_keys.clone();
                keys.push(cols);
                let json = serde_json::to_string(&keys)
                    .map_err(|e| SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}")))?;
                let id = meta.object_id.unwrap_or_default();
                self.in_savepoint(|conn| {
                    conn.execute(
                        "UPDATE __sb_tables SET unique_keys = ?1 WHERE object_id = ?2",
                        rusqlite::params![json, id],
                    )
                    .map(|_| ())
                    .map_err(|e| SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}")))
                })?;
            }
            AddItem::Default { name, expr, column } => {
                let (ord, col) = meta
                    .column(&column)
                    .map(|(i, c)| (i, c.clone()))
                    .ok_or_else(|| SqlError::invalid_column(&column))?;
                if col.default.is_some() {
                    return Err(SqlError::new(
                        1781,
                        1,
                        16,
                        "Column already has a DEFAULT bound to it.",
                    )
                    .into());
                }
                // The default must compile as a value with no table in scope.
                translate::scalar(&self.ctx(), &expr)?;
                let text = expr.to_string();
                if meta.temp {
                    if let Some(m) = self.temp.get_mut(&meta.name) {
                        m.columns[ord].default = Some(text);
                        m.columns[ord].default_name = name;
                    }
                    return Ok(());
                }
                let id = meta.object_id.unwrap_or_default();
                let dname = name.unwrap_or_else(|| {
                    constraints::system_name(
                        "DF",
                        &meta.name,
                        Some(&col.name),
                        id * 1024 + ord as i64 + 1,
                    )
                });
                self.in_savepoint(|conn| {
                    conn.execute(
                        "UPDATE __sb_columns SET default_sql = ?1, default_name = ?2 WHERE object_id = ?3 AND ordinal = ?4",
                        rusqlite::params![text, dname, id, ord as i64 + 1],
                    )
                    .map(|_| ())
                    .map_err(|e| SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}")))
                })?;
            }
            AddItem::Constraint(other) => {
                let head = other.to_string();
                let head = head.split('(').next().unwrap_or("").trim().to_string();
                return Err(SqlError::unsupported(&format!("ALTER TABLE ADD {head}")).into());
            }
            AddItem::Column(c) => {
                // https://learn.microsoft.com/en-us/sql/t-sql/statements/alter-table-transact-sql
                if meta.temp {
                    return Err(SqlError::unsupported(
                        "ALTER TABLE ADD column on a temporary table",
                    )
                    .into());
                }
                let def = translate::added_column(&self.ctx(), &c, &meta.db)?;
                if meta.column(&def.name).is_some() {
                    return Err(SqlError::new(
                        2705,
                        4,
                        16,
                        format!(
                            "Column names in each table must be unique. Column name '{}' in table '{}' is specified more than once.",
                            def.name,
                            schema_table(&meta)
                        ),
                    )
                    .into());
                }
                // Existing rows: NULL, or the DEFAULT of a NOT NULL column.
                let fill = match (&def.default, def.nullable) {
                    (_, true) => None,
                    (Some(_), false) => {
                        let expr = translate::stored_default(&self.ctx(), &meta, &def)?
                            .unwrap_or_else(|| "NULL".into());
                        let v: rusqlite::types::Value = self
                            .conn
                            .query_row(&format!("SELECT {expr}"), [], |r| r.get(0))
                            .map_err(|e| super::map_sqlite(e, None))?;
                        Some(sqlite_literal(&v))
                    }
                    (None, false) => {
                        let empty =
                            !self.exists(&format!("SELECT 1 FROM {} LIMIT 1", meta.physical))?;
                        if !empty {
                            return Err(SqlError::new(
                                4901,
                                1,
                                16,
                                format!(
                                    "ALTER TABLE only allows columns to be added that can contain nulls, or have a DEFAULT definition specified, or the column being added is an identity or timestamp column, or alternatively if none of the previous conditions are satisfied the table must be empty to allow addition of this column. Column '{}' cannot be added to non-empty table '{}' because it does not satisfy these conditions.",
                                    def.name, meta.name
                                ),
                            )
                            .into());
                        }
                        return Err(SqlError::unsupported(
                            "ALTER TABLE ADD of a NOT NULL column without DEFAULT (even to an empty table)",
                        )
                        .into());
                    }
                };
                self.in_savepoint(|conn| catalog::add_column(conn, &meta, &def, fill.as_deref()))?;
            }
        }
        Ok(())
    }

    /// WITH CHECK: every row must satisfy the condition (547 otherwise).
    fn validate_check(
        &self,
        meta: &TableMeta,
        c: &CheckConstraint,
        statement: &str,
    ) -> Result<(), SqlError> {
        let expr = translate::parse_expr(&c.definition)?;
        let pred = Compiler::new(&self.ctx()).condition(&expr, &translate::table_scope(meta))?;
        let sql = format!(
            "SELECT 1 FROM {} WHERE NOT coalesce(({pred}), 1) LIMIT 1",
            meta.physical
        );
        if self.exists(&sql)? {
            return Err(constraints::conflict(
                statement,
                "CHECK",
                &c.name,
                &meta.db,
                &schema_table(meta),
                c.column.as_deref(),
            ));
        }
        Ok(())
    }

    /// WITH CHECK: every non-NULL key must exist in the referenced table.
    fn validate_foreign_key(
        &self,
        meta: &TableMeta,
        fk: &ForeignKey,
        statement: &str,
    ) -> Result<(), SqlError> {
        let parent = catalog::find_table(&self.conn, &fk.ref_db, &fk.ref_schema, &fk.ref_table)?
            .unwrap_or_else(|| meta.clone());
        let sql = format!(
            "SELECT 1 FROM {} AS \"__t\" WHERE {} AND NOT EXISTS (SELECT 1 FROM {} AS \"__p\" WHERE {}) LIMIT 1",
            meta.physical,
            fk.columns
                .iter()
                .map(|c| format!("\"__t\".{} IS NOT NULL", quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" AND "),
            parent.physical,
            fk.columns
                .iter()
                .zip(&fk.ref_columns)
                .map(|(c, r)| format!("\"__p\".{} = \"__t\".{}", quote_ident(r), quote_ident(c)))
                .collect::<Vec<_>>()
                .join(" AND "),
        );
        if self.exists(&sql)? {
            let same = parent.name.eq_ignore_ascii_case(&meta.name)
                && parent.schema.eq_ignore_ascii_case(&meta.schema);
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
            ));
        }
        Ok(())
    }

    /// `{CHECK | NOCHECK} CONSTRAINT`: NOCHECK disables (and distrusts);
    /// CHECK enables, trusted again only WITH CHECK after every row passes.
    fn set_constraints(
        &mut self,
        meta: &TableMeta,
        with_check: bool,
        enable: bool,
        names: Option<Vec<String>>,
    ) -> Result<(), SqlError> {
        let mut chosen_checks = Vec::new();
        let mut chosen_fks = Vec::new();
        match &names {
            None => {
                chosen_checks = meta.checks.clone();
                chosen_fks = meta.foreign_keys.clone();
            }
            Some(ns) => {
                for n in ns {
                    if let Some(c) = meta.checks.iter().find(|c| c.name.eq_ignore_ascii_case(n)) {
                        chosen_checks.push(c.clone());
                    } else if let Some(f) = meta
                        .foreign_keys
                        .iter()
                        .find(|f| f.name.eq_ignore_ascii_case(n))
                    {
                        chosen_fks.push(f.clone());
                    } else {
                        return Err(no_constraint(n));
                    }
                }
            }
        }
        if enable && with_check {
            for c in &chosen_checks {
                self.validate_check(meta, c, "ALTER TABLE")?;
            }
            for f in &chosen_fks {
                self.validate_foreign_key(meta, f, "ALTER TABLE")?;
            }
        }
        let states: Vec<(i64, String, bool, bool)> = chosen_checks
            .iter()
            .map(|c| (c.object_id, c.name.clone(), c.disabled, c.not_trusted))
            .chain(
                chosen_fks
                    .iter()
                    .map(|f| (f.object_id, f.name.clone(), f.disabled, f.not_trusted)),
            )
            .collect();
        if meta.temp {
            if let Some(m) = self.temp.get_mut(&meta.name) {
                for c in m.checks.iter_mut() {
                    if states.iter().any(|s| s.1.eq_ignore_ascii_case(&c.name)) {
                        let was = c.disabled || c.not_trusted;
                        c.disabled = !enable;
                        c.not_trusted = !enable || (!with_check && was);
                    }
                }
            }
            return Ok(());
        }
        self.in_savepoint(|conn| {
            for (id, _, disabled, not_trusted) in &states {
                let untrusted = !enable || (!with_check && (*disabled || *not_trusted));
                constraints::set_state(conn, *id, !enable, untrusted)?;
            }
            Ok(())
        })
    }

    fn drop_constraint(
        &mut self,
        meta: &TableMeta,
        name: &str,
        if_exists: bool,
    ) -> Result<(), SqlError> {
        let missing = || SqlError::new(3728, 1, 16, format!("'{name}' is not a constraint."));
        if meta.temp {
            let Some(m) = self.temp.get_mut(&meta.name) else {
                return Err(missing());
            };
            let before = m.checks.len();
            m.checks.retain(|c| !c.name.eq_ignore_ascii_case(name));
            let mut found = m.checks.len() != before;
            for c in m.columns.iter_mut() {
                if c.default_name
                    .as_deref()
                    .is_some_and(|d| d.eq_ignore_ascii_case(name))
                {
                    c.default = None;
                    c.default_name = None;
                    found = true;
                }
            }
            return if found || if_exists {
                Ok(())
            } else {
                Err(missing())
            };
        }
        let id = meta.object_id.unwrap_or_default();
        if meta
            .pk_name
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(name))
        {
            return Err(SqlError::unsupported(
                "ALTER TABLE DROP CONSTRAINT of a PRIMARY KEY",
            ));
        }
        let default_col = meta.columns.iter().position(|c| {
            c.default_name
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(name))
        });
        self.in_savepoint(|conn| {
            if let Some((obj, _)) = constraints::find(conn, id, name)? {
                return constraints::delete(conn, obj);
            }
            if let Some(ord) = default_col {
                conn.execute(
                    "UPDATE __sb_columns SET default_sql = NULL, default_name = NULL WHERE object_id = ?1 AND ordinal = ?2",
                    rusqlite::params![id, ord as i64 + 1],
                )
                .map_err(|e| SqlError::new(50000, 1, 16, format!("sandbox catalog: {e}")))?;
                return Ok(());
            }
            if if_exists {
                Ok(())
            } else {
                Err(missing())
            }
        })
    }

    fn set_triggers(
        &mut self,
        meta: &TableMeta,
        enable: bool,
        names: Option<Vec<String>>,
    ) -> Result<(), SqlError> {
        let Some(id) = meta.object_id else {
            return Err(SqlError::new(
                167,
                1,
                15,
                "Cannot create trigger on a temporary object.",
            ));
        };
        self.in_savepoint(|conn| {
            match &names {
                None => {
                    triggers::set_disabled(conn, id, None, !enable)?;
                }
                Some(ns) => {
                    for n in ns {
                        if triggers::set_disabled(conn, id, Some(n), !enable)? == 0 {
                            return Err(SqlError::new(
                                3701,
                                5,
                                11,
                                format!("Cannot find the object \"{n}\" because it does not exist or you do not have permissions."),
                            ));
                        }
                    }
                }
            }
            Ok(())
        })
    }

    /// `{ENABLE | DISABLE} TRIGGER {ALL | names} ON table`.
    pub(super) fn enable_trigger(
        &mut self,
        enable: bool,
        names: Option<Vec<String>>,
        table: &ObjectName,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let meta = self.ctx().table(table)?;
        self.set_triggers(&meta, enable, names)?;
        out.done(None, false)?;
        Ok(())
    }

    /// CREATE [OR ALTER] TRIGGER / ALTER TRIGGER: AFTER (FOR) triggers on a
    /// permanent table of the current database.
    pub(super) fn create_trigger(
        &mut self,
        def: TriggerDef,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let shown = translate::ident_values(&def.name).join(".");
        let table = match self.ctx().resolve(&def.table)? {
            Resolved::Temp(_) => {
                return Err(SqlError::new(
                    167,
                    1,
                    15,
                    "Cannot create trigger on a temporary object.",
                )
                .into())
            }
            Resolved::Table { .. } => self.ctx().table(&def.table).map_err(|_| {
                SqlError::new(
                    8197,
                    4,
                    16,
                    format!(
                        "The object '{}' does not exist or is invalid for this operation.",
                        translate::ident_values(&def.table).join(".")
                    ),
                )
            })?,
        };
        if def.instead_of {
            return Err(SqlError::unsupported("INSTEAD OF triggers").into());
        }
        let parts = translate::ident_values(&def.name);
        let (schema, name) = match parts.as_slice() {
            [n] => (table.schema.clone(), n.clone()),
            [s, n] => (s.clone(), n.clone()),
            _ => return Err(SqlError::syntax_near(&shown).into()),
        };
        if !schema.eq_ignore_ascii_case(&table.schema) {
            return Err(SqlError::new(
                2103,
                1,
                15,
                format!("Cannot create trigger '{shown}' because its schema is different from the schema of the target table or view."),
            )
            .into());
        }
        // The body must parse now, as CREATE TRIGGER compiles it.
        translate::parse_batch(&def.body)?;
        let db = table.db.clone();
        let table_id = table.object_id.unwrap_or_default();
        self.in_savepoint(|conn| {
            let existing = triggers::find(conn, &db, &schema, &name)?;
            let (object_id, replace) = match existing {
                Some((id, _)) if def.replace => (id, true),
                Some(_) => return Err(SqlError::object_exists(&name)),
                None if def.must_exist => {
                    return Err(SqlError::new(
                        8197,
                        4,
                        16,
                        format!(
                            "The object '{shown}' does not exist or is invalid for this operation."
                        ),
                    ))
                }
                None => {
                    if catalog::find_table(conn, &db, &schema, &name)?.is_some() {
                        return Err(SqlError::object_exists(&name));
                    }
                    (catalog::next_object_id(conn)?, false)
                }
            };
            triggers::save(
                conn,
                &db,
                &schema,
                &TriggerInfo {
                    object_id,
                    name: name.clone(),
                    table_id,
                    events: def.events,
                    disabled: false,
                    body: def.body.clone(),
                },
                replace,
            )
        })?;
        out.done(None, false)?;
        Ok(())
    }

    /// DROP TRIGGER [IF EXISTS] names.
    pub(super) fn drop_triggers(
        &mut self,
        names: &[ObjectName],
        if_exists: bool,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        for n in names {
            let shown = translate::ident_values(n).join(".");
            let found = match self.ctx().resolve(n) {
                Ok(Resolved::Table { db, schema, name }) => {
                    triggers::find(&self.conn, &db, &schema, &name)?
                }
                _ => None,
            };
            match found {
                Some((id, _)) => self.in_savepoint(|c| triggers::delete(c, id))?,
                None if if_exists => {}
                None => {
                    return Err(SqlError::new(
                        3701,
                        5,
                        11,
                        format!("Cannot drop the trigger '{shown}', because it does not exist or you do not have permission."),
                    )
                    .into())
                }
            }
        }
        out.done(None, false)?;
        Ok(())
    }

    /// ALTER DATABASE: COLLATE, SET CHANGE_TRACKING, SET
    /// ALLOW_SNAPSHOT_ISOLATION, other SET options (accepted, no effect here).
    pub(super) fn alter_database(
        &mut self,
        a: AlterDatabase,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let name = match &a.name {
            None => self.db.clone(),
            Some(n) => catalog::database_name(&self.conn, n)?
                .ok_or_else(|| SqlError::no_such_database(n))?,
        };
        let settles = matches!(
            a.option,
            translate::DatabaseOption::ChangeTracking { .. }
                | translate::DatabaseOption::AllowSnapshot(_)
        );
        if settles && self.trancount > 0 {
            return Err(SqlError::new(
                226,
                6,
                16,
                "ALTER DATABASE statement not allowed within multi-statement transaction.",
            )
            .into());
        }
        match a.option {
            translate::DatabaseOption::ChangeTracking {
                on,
                retention,
                auto_cleanup,
            } => {
                self.in_savepoint(|c| {
                    crate::engine::change_tracking::set_database(
                        c,
                        &name,
                        on,
                        retention.as_ref(),
                        auto_cleanup,
                    )
                })?;
            }
            translate::DatabaseOption::Collate(coll) => {
                self.in_savepoint(|c| catalog::set_database_collation(c, &name, &coll))?;
            }
            translate::DatabaseOption::AllowSnapshot(on) => {
                self.in_savepoint(|c| catalog::set_allow_snapshot(c, &name, on))?;
            }
            translate::DatabaseOption::Other(_) => {}
        }
        out.done(None, false)?;
        Ok(())
    }
}

/// A stored value as a SQLite literal (for a column's DEFAULT clause).
fn sqlite_literal(v: &rusqlite::types::Value) -> String {
    use rusqlite::types::Value as V;
    match v {
        V::Null => "NULL".into(),
        V::Integer(i) => i.to_string(),
        V::Real(f) => format!("{f:e}"),
        V::Text(t) => format!("'{}'", t.replace('\'', "''")),
        V::Blob(b) => format!(
            "X'{}'",
            b.iter().map(|x| format!("{x:02X}")).collect::<String>()
        ),
    }
}
