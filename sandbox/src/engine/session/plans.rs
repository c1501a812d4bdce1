//! What each planned statement does, one method per kind of statement:
//! `Session::execute_statement` plans a statement and dispatches here.

use sqlparser::ast::ObjectName;

use super::*;

impl Session {
    /// `SELECT ... INTO`: creates the table, then fills it; a failed fill drops it again.
    pub(super) fn select_into(
        &mut self,
        table: Box<TableMeta>,
        insert: String,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        self.begin_implicit(out)?;
        self.create_table(&table)?;
        let run = DmlPlan {
            sqls: vec![insert],
            setup: vec![],
            cleanup: vec![],
            target: table,
            key_probe: None,
            kind: DmlKind::Insert,
            set_columns: vec![],
        };
        let n = match self.run_dml(&run, params, out) {
            Ok(n) => n,
            Err(e) => {
                self.drop_created(&run.target);
                return Err(e);
            }
        };
        self.rowcount = n as i64;
        out.done((!self.nocount).then_some(n), false)?;
        Ok(())
    }

    /// A query: its rows sent with the columns SQL Server describes.
    pub(super) fn query_planned(
        &mut self,
        sql: &str,
        columns: &[ColumnMeta],
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        self.begin_implicit(out)?;
        let n = self.run_query(sql, columns, params, out)?;
        self.rowcount = n as i64;
        out.done(Some(n), false)?;
        Ok(())
    }

    /// INSERT, UPDATE, DELETE or MERGE: the rows written, counted unless
    /// NOCOUNT is on.
    pub(super) fn dml_planned(
        &mut self,
        dml: &DmlPlan,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        self.begin_implicit(out)?;
        let n = self.run_dml(dml, params, out)?;
        self.rowcount = n as i64;
        out.done((!self.nocount).then_some(n), false)?;
        Ok(())
    }

    /// `CREATE TABLE`, with the warnings creating it gives.
    pub(super) fn create_table_planned(
        &mut self,
        meta: Box<TableMeta>,
        infos: Vec<SqlError>,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        self.begin_implicit(out)?;
        for i in &infos {
            out.info(i)?;
        }
        self.create_table(&meta)?;
        self.rowcount = 0;
        out.done(None, false)?;
        Ok(())
    }

    /// `DECLARE @t TABLE (...)`: 134 when the name is taken.
    pub(super) fn declare_table(
        &mut self,
        meta: Box<TableMeta>,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        if self.temp.contains_key(&meta.name) {
            return Err(SqlError::new(
                134,
                1,
                15,
                format!(
                    "The variable name '{}' has already been declared. Variable names must be unique within a query batch or stored procedure.",
                    meta.name
                ),
            )
            .into());
        }
        self.create_table(&meta)?;
        out.done(None, false)?;
        Ok(())
    }

    /// `DROP TABLE [IF EXISTS] a, b`: temp tables, table variables and catalog tables.
    pub(super) fn drop_tables(
        &mut self,
        names: Vec<(ObjectName, Option<Resolved>)>,
        if_exists: bool,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        for (shown, resolved) in names {
            let result = match resolved {
                Some(Resolved::Temp(t)) => match self.temp.remove(&t) {
                    Some(meta) => self
                        .conn
                        .execute(&format!("DROP TABLE {}", meta.physical), [])
                        .map(|_| ())
                        .map_err(|e| map_sqlite(e, None)),
                    None => Err(drop_missing(&shown.to_string())),
                },
                Some(Resolved::Table { db, schema, name }) => {
                    self.globals.retain(|g| {
                        !(g.0.eq_ignore_ascii_case(&db)
                            && g.1.eq_ignore_ascii_case(&schema)
                            && g.2.eq_ignore_ascii_case(&name))
                    });
                    self.in_savepoint(|c| drops::drop_table(c, &db, &schema, &name))
                }
                None => Err(drop_missing(&shown.to_string())),
            };
            match result {
                Err(e) if if_exists && e.number == 3701 => {}
                other => other?,
            }
        }
        out.done(None, false)?;
        Ok(())
    }

    /// `DROP VIEW | PROCEDURE | FUNCTION | TRIGGER ...`: 3701 for a missing one unless `IF EXISTS`.
    pub(super) fn drop_objects(
        &mut self,
        kind: &'static str,
        names: Vec<ObjectName>,
        if_exists: bool,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        for n in names {
            let shown = translate::ident_values(&n).join(".");
            let r = match self.ctx().resolve(&n) {
                Ok(Resolved::Table { db, schema, name }) => {
                    self.in_savepoint(|c| catalog::drop_object(c, kind, &db, &schema, &name))
                }
                _ => Err(SqlError::new(3701, 5, 11, String::new())),
            };
            match r {
                Ok(()) => {}
                Err(_) if if_exists => {}
                Err(_) => {
                    return Err(SqlError::new(
                        3701,
                        5,
                        11,
                        format!("Cannot drop the {kind} '{shown}', because it does not exist or you do not have permission."),
                    )
                    .into())
                }
            }
        }
        out.done(None, false)?;
        Ok(())
    }

    /// `TRUNCATE TABLE`: 4712 on a table a FOREIGN KEY references; Change Tracking told.
    pub(super) fn truncate(
        &mut self,
        meta: Box<TableMeta>,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        if let Some(id) = meta.object_id {
            // TRUNCATE TABLE page: not on a table a FOREIGN KEY references.
            if crate::engine::constraints::referenced_by_other(&self.conn, id)?.is_some() {
                return Err(SqlError::new(
                    4712,
                    1,
                    16,
                    format!(
                        "Cannot truncate table '{}' because it is being referenced by a FOREIGN KEY constraint.",
                        meta.full_name()
                    ),
                )
                .into());
            }
        }
        let db = meta.db.clone();
        self.in_savepoint(|c| {
            c.execute(&format!("DELETE FROM {}", meta.physical), [])
                .map_err(|e| map_sqlite(e, Some(&meta)))?;
            match meta.object_id {
                Some(id) => crate::engine::change_tracking::truncated(c, &db, id),
                None => Ok(()),
            }
        })?;
        out.done(None, false)?;
        Ok(())
    }

    /// `CREATE DATABASE [COLLATE ...]`: 226 inside a transaction.
    pub(super) fn create_database_planned(
        &mut self,
        name: String,
        collation: Option<String>,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        if self.trancount > 0 {
            return Err(SqlError::new(
                226,
                6,
                16,
                "CREATE DATABASE statement not allowed within multi-statement transaction.",
            )
            .into());
        }
        let coll = match collation {
            Some(c) => Some(
                crate::engine::collation::parse(&c)
                    .ok_or_else(|| crate::engine::collation::invalid(&c))?,
            ),
            None => None,
        };
        catalog::create_database(&self.conn, &name, coll.as_ref())?;
        out.done(None, false)?;
        Ok(())
    }

    /// `DROP DATABASE`: 3702 for the database in use.
    pub(super) fn drop_database_planned(
        &mut self,
        name: String,
        if_exists: bool,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        if name.eq_ignore_ascii_case(&self.db) {
            return Err(SqlError::new(
                3702,
                4,
                16,
                format!("Cannot drop database \"{name}\" because it is currently in use."),
            )
            .into());
        }
        match self.in_savepoint(|c| drops::drop_database(c, &name)) {
            Err(e) if if_exists && e.number == 3701 => {}
            other => other?,
        }
        out.done(None, false)?;
        Ok(())
    }

    /// `USE db`: the ENVCHANGEs for the database and its collation.
    pub(super) fn use_database(
        &mut self,
        name: String,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let new = catalog::database_name(&self.conn, &name)?
            .ok_or_else(|| SqlError::no_such_database(&name))?;
        let old = std::mem::replace(&mut self.db, new.clone());
        out.env(EnvChange::Database {
            old,
            new: new.clone(),
        })?;
        out.env(EnvChange::Collation(self.collation()))?;
        out.done(None, false)?;
        Ok(())
    }

    /// `SAVE TRANSACTION`: 628 outside a transaction.
    pub(super) fn save_transaction(
        &mut self,
        name: String,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        if self.trancount == 0 {
            return Err(SqlError::new(
                628,
                0,
                16,
                "Cannot issue SAVE TRANSACTION when there is no active transaction.",
            )
            .into());
        }
        self.conn
            .execute_batch(&format!("SAVEPOINT {}", quote_ident(&name)))
            .map_err(internal)?;
        out.done(None, false)?;
        Ok(())
    }

    /// `DECLARE @v type [= expr], ...`.
    pub(super) fn declare(
        &mut self,
        decls: Vec<(String, SqlType, Option<String>)>,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        for (name, ty, init) in decls {
            let value = match init {
                Some(expr) => self.eval_scalar(&expr, &ty, params)?,
                None => Value::Null,
            };
            self.set_var(&name, ty, value);
        }
        out.done(None, false)?;
        Ok(())
    }

    /// `SET @v = expr`: 137 for an undeclared variable.
    pub(super) fn set_variable(
        &mut self,
        name: String,
        expr: String,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let key = name.to_ascii_lowercase();
        let ty = self.var(&key).map(|(t, _)| t).ok_or_else(|| {
            SqlError::new(
                137,
                1,
                15,
                format!("Must declare the scalar variable \"{name}\"."),
            )
            .batch()
        })?;
        let value = self.eval_scalar(&expr, &ty, params)?;
        self.set_var(&key, ty, value);
        out.done(None, false)?;
        Ok(())
    }

    /// `SELECT @v = expr ... [FROM ...]`, row by row.
    pub(super) fn assign(
        &mut self,
        sql: String,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let mut st = self.conn.prepare(&sql).map_err(|e| map_sqlite(e, None))?;
        self.bind_params(&mut st, params)?;
        let mut rows = st.raw_query();
        let mut n = 0u64;
        while rows.next().map_err(|e| map_sqlite(e, None))?.is_some() {
            n += 1;
        }
        self.rowcount = n as i64;
        out.done((!self.nocount).then_some(n), false)?;
        Ok(())
    }

    /// `PRINT expr`: an INFO message.
    pub(super) fn print(
        &mut self,
        expr: String,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let ty = SqlType::NVarChar(Len::Max);
        let text = match self.eval_scalar(&expr, &ty, params)? {
            Value::String(s) => s,
            _ => String::new(),
        };
        out.info(&SqlError::new(0, 1, 0, text))?;
        Ok(())
    }

    /// `RAISERROR(message, severity, state, args...)`: an INFO up to severity 10, an error above.
    pub(super) fn raise(
        &mut self,
        message: String,
        severity: String,
        state: String,
        args: Vec<String>,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let int = |v: Value| match v {
            Value::Int(i) => i,
            _ => 0,
        };
        let severity = int(self.eval_scalar(&severity, &SqlType::Int, params)?);
        let state = int(self.eval_scalar(&state, &SqlType::Int, params)?);
        let ty = SqlType::NVarChar(Len::Max);
        let fmt = match self.eval_scalar(&message, &ty, params)? {
            Value::String(s) => s,
            _ => String::new(),
        };
        let mut values = Vec::new();
        for a in &args {
            values.push(match self.eval_scalar(a, &ty, params)? {
                Value::String(s) => s,
                _ => "(null)".to_string(),
            });
        }
        let text = raiserror_text(&fmt, &values);
        let e = SqlError::new(
            50000,
            state.clamp(0, 255) as u8,
            severity.clamp(0, 25) as u8,
            text,
        );
        if severity <= 10 {
            out.info(&e)?;
        } else {
            return Err(e.into());
        }
        Ok(())
    }

    /// `THROW n, message, state`, or a bare `THROW` re-raising the caught error.
    pub(super) fn throw(
        &mut self,
        parts: Option<(String, String, String)>,
        params: &[Param],
    ) -> Result<(), Failure> {
        let e = match parts {
            None => self.caught.clone().ok_or_else(|| {
                SqlError::new(
                    10704,
                    1,
                    15,
                    "To rethrow an error, a THROW statement must be used inside a CATCH block. Insert the THROW statement inside a CATCH block, or add error parameters to the THROW statement.",
                )
            })?,
            Some((n, m, st)) => {
                let int = |v: Value| match v {
                    Value::Int(i) => i,
                    _ => 0,
                };
                let number = int(self.eval_scalar(&n, &SqlType::Int, params)?);
                let state = int(self.eval_scalar(&st, &SqlType::TinyInt, params)?);
                let text = match self.eval_scalar(&m, &SqlType::NVarChar(Len::Max), params)? {
                    Value::String(s) => s,
                    _ => String::new(),
                };
                SqlError::new(number as i32, state as u8, 16, text)
            }
        };
        Err(e.batch().into())
    }
}
