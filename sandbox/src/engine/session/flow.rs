//! Control of flow and procedures: blocks (BEGIN/END, IF, WHILE, BREAK,
//! CONTINUE, TRY/CATCH, RETURN), EXEC of stored procedures (positional,
//! named, DEFAULT and OUTPUT arguments, the return status) and of the
//! system procedures the sandbox keeps (sp_executesql,
//! sp_describe_first_result_set, sp_tablecollations_100), and the
//! definitions CREATE PROCEDURE and CREATE VIEW store.

use std::collections::HashMap;
use std::time::Duration;

use rusqlite::types::ValueRef;
use sqlparser::ast::{Expr, ObjectName};

use super::{describe_columns, Failure, Output, Param, Session};
use crate::engine::catalog::{self, ProcInfo};
use crate::engine::convert::{convert, to_storage, Overlong};
use crate::engine::error::{Abort, SqlError};
use crate::engine::translate::{self, Block, ExecCall, Resolved};
use crate::types::{ColumnMeta, Len, SqlType, Value};

/// A procedure's outcome: its return status and the values of its OUTPUT
/// parameters, by parameter name.
pub struct ProcOutcome {
    pub status: i32,
    pub outputs: Vec<(String, SqlType, Value)>,
}

/// An argument already evaluated (from T-SQL text or an RPC call).
#[derive(Clone, Debug)]
pub struct ArgValue {
    pub name: Option<String>,
    /// `None` for DEFAULT.
    pub value: Option<Value>,
    pub output: bool,
}

impl Session {
    /// Runs blocks in order. A statement's error is reported and the next
    /// statement runs, unless the error aborts the batch, XACT_ABORT is on,
    /// or a TRY block is active (then its CATCH takes it).
    pub(super) fn run_seq(
        &mut self,
        blocks: Vec<Block>,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        for b in blocks {
            match self.run_block(b, params, out) {
                Ok(()) => {}
                // In a trigger fired inside a TRY, the TRY takes the error.
                Err(Failure::Sql(e)) if self.try_depth == self.try_floor && self.try_floor > 0 => {
                    return Err(Failure::Sql(e));
                }
                Err(Failure::Sql(e)) if self.try_depth == self.try_floor => {
                    out.error(&e)?;
                    out.done(None, true)?;
                    if self.trigger_error_aborts(&e) {
                        self.rollback_all(out, true)?;
                        return Err(Failure::Aborted);
                    }
                    if self.xact_abort && self.trancount > 0 {
                        self.rollback_all(out, true)?;
                        return Err(Failure::Aborted);
                    }
                    if e.abort == Abort::Batch {
                        return Err(Failure::Aborted);
                    }
                }
                Err(other) => return Err(other),
            }
        }
        Ok(())
    }

    fn run_block(
        &mut self,
        b: Block,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        match b {
            Block::Stmt(stmt, hints) => {
                let r = self.execute_statement(*stmt, hints, params, out);
                if let Err(Failure::Sql(e)) = &r {
                    // A SNAPSHOT write conflict ends the transaction.
                    if e.number == 3960 {
                        self.rollback_all(out, true)?;
                    }
                }
                r
            }
            Block::Seq(v) => self.run_seq(v, params, out),
            Block::If {
                cond,
                then,
                otherwise,
            } => {
                if self.truth(&cond, params)? {
                    self.run_seq(vec![*then], params, out)
                } else if let Some(o) = otherwise {
                    self.run_seq(vec![*o], params, out)
                } else {
                    Ok(())
                }
            }
            Block::While { cond, body } => {
                let mut guard = 0u64;
                while self.truth(&cond, params)? {
                    guard += 1;
                    if guard > 100_000_000 {
                        return Err(SqlError::new(
                            50000,
                            1,
                            16,
                            "WHILE loop limit reached in the sandbox",
                        )
                        .into());
                    }
                    match self.run_seq(vec![(*body).clone()], params, out) {
                        Ok(()) | Err(Failure::Continue) => {}
                        Err(Failure::Break) => break,
                        Err(other) => return Err(other),
                    }
                }
                Ok(())
            }
            Block::Break => Err(Failure::Break),
            Block::Continue => Err(Failure::Continue),
            Block::TryCatch { body, handler } => {
                self.try_depth += 1;
                let r = self.run_seq(body, params, out);
                self.try_depth -= 1;
                match r {
                    Err(Failure::Sql(e)) => {
                        let saved = self.caught.replace(e);
                        let r = self.run_seq(handler, params, out);
                        self.caught = saved;
                        r
                    }
                    other => other,
                }
            }
            Block::Return(v) => {
                let status = match v {
                    Some(e) => {
                        let sql = translate::scalar_as(&self.ctx_with(params), &e, &SqlType::Int)?;
                        match self.eval_scalar(&sql, &SqlType::Int, params)? {
                            Value::Int(i) => Some(i),
                            _ => None,
                        }
                    }
                    None => None,
                };
                Err(Failure::Return(status))
            }
            Block::ExecDynamic(e) => {
                if self.describing {
                    return Err(dynamic_sql_error(&format!("EXEC {e}")).into());
                }
                let sql = self.eval_text(&e, params)?;
                // Dynamic SQL sees neither the caller's parameters nor its variables.
                let outer = self.swap_vars(HashMap::new());
                let tables = self.table_vars();
                let r = self.execute_batch(&sql, &[], out);
                self.end_batch_scope(&tables);
                self.swap_vars(outer);
                r?;
                Ok(())
            }
            Block::Exec(call) => self.exec_call(call, params, out),
            Block::CreateProcedure(def) => {
                let name = self.ctx().resolve(&def.name)?;
                let Resolved::Table { db, schema, name } = name else {
                    return Err(SqlError::new(
                        2760,
                        1,
                        16,
                        "Temporary procedures are not supported.",
                    )
                    .into());
                };
                let r = self.in_savepoint(|c| {
                    catalog::create_procedure(
                        c,
                        &db,
                        &schema,
                        &name,
                        &def.params,
                        &def.body,
                        def.or_alter,
                    )
                });
                r?;
                out.done(None, false)?;
                Ok(())
            }
            Block::CreateLogin { name, password } => {
                self.in_savepoint(|c| catalog::create_login(c, &name, &password))?;
                out.done(None, false)?;
                Ok(())
            }
            Block::CreateWindowsLogin(name) => {
                self.in_savepoint(|c| catalog::create_windows_login(c, &name))?;
                out.done(None, false)?;
                Ok(())
            }
            Block::CreateExternalLogin { name, object_id } => {
                self.in_savepoint(|c| catalog::create_external_login(c, &name, &object_id))?;
                out.done(None, false)?;
                Ok(())
            }
            Block::CreateExternalUser { name, object_id } => {
                let db = self.database().to_string();
                self.in_savepoint(|c| catalog::create_external_user(c, &db, &name, &object_id))?;
                out.done(None, false)?;
                Ok(())
            }
            Block::DropLogin(name) => {
                self.in_savepoint(|c| catalog::drop_login(c, &name))?;
                out.done(None, false)?;
                Ok(())
            }
            Block::AlterTable(a) => self.alter_table(a, out),
            Block::CreateTrigger(def) => self.create_trigger(def, out),
            Block::DropTrigger { names, if_exists } => self.drop_triggers(&names, if_exists, out),
            Block::EnableTrigger {
                enable,
                names,
                table,
            } => self.enable_trigger(enable, names, &table, out),
            Block::AlterDatabase(a) => self.alter_database(a, out),
            Block::TrackingContext { context, body } => {
                let ty = SqlType::VarBinary(crate::types::Len::N(128));
                let sql = translate::scalar_as(&self.ctx_with(params), &context, &ty)?;
                let value = match self.eval_scalar(&sql, &ty, params)? {
                    Value::Binary(b) => Some(b),
                    _ => None,
                };
                let outer = std::mem::replace(&mut self.ct_context, value);
                let r = self.run_block(*body, params, out);
                self.ct_context = outer;
                r
            }
            Block::CreateView(def) => {
                let resolved = self.ctx().resolve(&def.name)?;
                let Resolved::Table { db, schema, name } = resolved else {
                    return Err(SqlError::syntax_near("VIEW").into());
                };
                // The view must compile now, and its columns need names.
                let q = translate::parse_query_text(&def.body)?;
                let r = crate::engine::compile::Compiler::new(&self.ctx())
                    .query(&q, &crate::engine::compile::Scope::default())?;
                if !def.columns.is_empty() && def.columns.len() != r.columns.len() {
                    return Err(SqlError::new(
                        8159,
                        1,
                        16,
                        format!(
                            "'{name}' has fewer columns than were specified in the column list."
                        ),
                    )
                    .into());
                }
                let names: Vec<String> = if def.columns.is_empty() {
                    r.columns.iter().map(|c| c.name.clone()).collect()
                } else {
                    def.columns.clone()
                };
                if let Some(i) = names.iter().position(String::is_empty) {
                    return Err(SqlError::new(
                        4511,
                        1,
                        16,
                        format!("Create View or Function failed because no column name was specified for column {}.", i + 1),
                    )
                    .into());
                }
                let r = self.in_savepoint(|c| {
                    catalog::create_view(
                        c,
                        &db,
                        &schema,
                        &name,
                        &names.join(","),
                        &def.body,
                        def.or_alter,
                    )
                });
                r?;
                out.done(None, false)?;
                Ok(())
            }
        }
    }

    fn truth(&mut self, cond: &Expr, params: &[Param]) -> Result<bool, SqlError> {
        let c = translate::condition(&self.ctx_with(params), cond)?;
        let v = self.eval_scalar(
            &format!("CASE WHEN {c} THEN 1 ELSE 0 END"),
            &SqlType::Int,
            params,
        )?;
        Ok(v == Value::Int(1))
    }

    /// A string-valued expression (dynamic SQL, a statement text).
    fn eval_text(&mut self, e: &Expr, params: &[Param]) -> Result<String, SqlError> {
        let ty = SqlType::NVarChar(Len::Max);
        let sql = translate::scalar_as(&self.ctx_with(params), e, &ty)?;
        Ok(match self.eval_scalar(&sql, &ty, params)? {
            Value::String(s) => s,
            _ => String::new(),
        })
    }

    fn eval_value(&mut self, e: &Expr, params: &[Param]) -> Result<(SqlType, Value), SqlError> {
        let t = translate::scalar(&self.ctx_with(params), e)?;
        let v = self.eval_scalar(&t.sql, &t.ty, params)?;
        Ok((t.ty, v))
    }

    /// Replaces the session's variables, returning the old ones.
    pub(super) fn swap_vars(
        &mut self,
        new: HashMap<String, (SqlType, Value)>,
    ) -> HashMap<String, (SqlType, Value)> {
        self.vars
            .lock()
            .map(|mut v| std::mem::replace(&mut *v, new))
            .unwrap_or_default()
    }

    fn exec_call(
        &mut self,
        call: ExecCall,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let parts = translate::ident_values(&call.name);
        let proc = parts
            .last()
            .cloned()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match proc.as_str() {
            "sp_executesql" => return self.exec_sql(call, params, out),
            "sp_describe_first_result_set" => {
                let tsql = call
                    .args
                    .iter()
                    .enumerate()
                    .find(|(i, a)| {
                        a.name
                            .as_deref()
                            .map(|n| n.eq_ignore_ascii_case("@tsql"))
                            .unwrap_or(*i == 0)
                    })
                    .and_then(|(_, a)| a.value.clone())
                    .ok_or_else(|| {
                        SqlError::new(
                            201,
                            4,
                            16,
                            "Procedure or function 'sp_describe_first_result_set' expects parameter '@tsql', which was not supplied.",
                        )
                    })?;
                let sql = self.eval_text(&tsql, params)?;
                let cols = self.first_result_columns(&sql)?;
                describe_columns(&cols, out)?;
                return Ok(());
            }
            "sp_sandbox_change_tracking_cleanup" | "sp_flush_ct_internal_table_on_demand" => {
                return self.change_tracking_cleanup(&proc, &call, params, out);
            }
            "sp_getapplock" | "sp_releaseapplock" => {
                let status = self.app_lock(&proc, &call, params)?;
                out.return_status(status)?;
                return self.store_status(&call, status);
            }
            "sp_tablecollations_100" | "sp_tablecollations" => {
                let arg = call
                    .args
                    .first()
                    .and_then(|a| a.value.clone())
                    .ok_or_else(|| SqlError::syntax_near(&proc))?;
                let text = self.eval_text(&arg, params)?;
                let meta = self.ctx().table(&translate::parse_object_name(&text)?)?;
                return self.table_collations(&meta, out);
            }
            _ => {}
        }
        let mut args = Vec::new();
        let mut targets = Vec::new();
        for a in &call.args {
            let value = match &a.value {
                Some(e) => Some(self.eval_value(e, params)?.1),
                None => None,
            };
            if a.output {
                if let Some(Expr::Identifier(i)) = &a.value {
                    if i.value.starts_with('@') {
                        targets.push((a.name.clone(), args.len(), i.value.clone()));
                    }
                }
            }
            args.push(ArgValue {
                name: a.name.clone(),
                value,
                output: a.output,
            });
        }
        let outcome = self.call_procedure(&call.name, &args, out)?;
        out.return_status(outcome.status)?;
        // OUTPUT arguments receive the parameters' final values.
        for (name, pos, var) in targets {
            let found = match &name {
                Some(n) => outcome
                    .outputs
                    .iter()
                    .find(|(p, _, _)| p.eq_ignore_ascii_case(n)),
                None => outcome.outputs.get(pos),
            };
            if let (Some((_, _, v)), Some((ty, _))) = (found, self.var(&var)) {
                let stored = to_storage(v);
                let v = convert(ValueRef::from(&stored), &ty, Overlong::Truncate)?;
                self.set_var(&var, ty, v);
            }
        }
        self.store_status(&call, outcome.status)
    }

    /// `EXEC @rc = proc`: the return status into `@rc`.
    fn store_status(&mut self, call: &ExecCall, status: i32) -> Result<(), Failure> {
        if let Some(var) = &call.status_var {
            let ty = self.var(var).map(|(t, _)| t).ok_or_else(|| {
                SqlError::new(
                    137,
                    1,
                    15,
                    format!("Must declare the scalar variable \"{var}\"."),
                )
                .batch()
            })?;
            self.set_var(var, ty, Value::Int(i64::from(status)));
        }
        Ok(())
    }

    /// Runs a stored procedure with evaluated arguments; the RPC path and
    /// EXEC share it.
    fn call_procedure(
        &mut self,
        name: &ObjectName,
        args: &[ArgValue],
        out: &mut dyn Output,
    ) -> Result<ProcOutcome, Failure> {
        let shown = translate::ident_values(name).join(".");
        let not_found = || {
            SqlError::new(
                2812,
                62,
                16,
                format!("Could not find stored procedure '{shown}'."),
            )
        };
        let info: ProcInfo = match self.ctx().resolve(name) {
            Ok(Resolved::Table { db, schema, name }) => {
                catalog::find_procedure(&self.conn, &db, &schema, &name)?.ok_or_else(not_found)?
            }
            _ => return Err(not_found().into()),
        };
        let pname = info.name.clone();
        // Bind: positional arguments first, then named ones, then defaults.
        let mut bound: Vec<Option<(SqlType, Value)>> = vec![None; info.params.len()];
        let mut named = false;
        for (i, a) in args.iter().enumerate() {
            let idx = match &a.name {
                Some(n) => {
                    named = true;
                    info.params
                        .iter()
                        .position(|p| p.name.eq_ignore_ascii_case(n))
                        .ok_or_else(|| {
                            SqlError::new(
                                8145,
                                2,
                                16,
                                format!("{n} is not a parameter for procedure {pname}."),
                            )
                        })?
                }
                None => {
                    if named {
                        return Err(SqlError::new(
                            119,
                            1,
                            15,
                            "Must pass parameter number 2 and subsequent parameters as '@name = value'. After the form '@name = value' has been used, all subsequent parameters must be passed in the form '@name = value'.",
                        )
                        .into());
                    }
                    if i >= info.params.len() {
                        return Err(SqlError::new(
                            8144,
                            2,
                            16,
                            format!(
                                "Procedure or function {pname} has too many arguments specified."
                            ),
                        )
                        .into());
                    }
                    i
                }
            };
            let p = &info.params[idx];
            if let Some(v) = &a.value {
                let stored = to_storage(v);
                let v = convert(ValueRef::from(&stored), &p.ty, Overlong::Truncate)?;
                bound[idx] = Some((p.ty, v));
            }
        }
        let mut vars = HashMap::new();
        for (p, b) in info.params.iter().zip(bound) {
            let v = match b {
                Some((_, v)) => v,
                None => match &p.default {
                    Some(d) => {
                        let e = translate::parse_expr(d)?;
                        let sql = translate::scalar_as(&self.ctx(), &e, &p.ty)?;
                        self.eval_scalar(&sql, &p.ty, &[])?
                    }
                    None if p.output => Value::Null,
                    None => {
                        return Err(SqlError::new(
                            201,
                            4,
                            16,
                            format!(
                                "Procedure or function '{pname}' expects parameter '{}', which was not supplied.",
                                p.name
                            ),
                        )
                        .into())
                    }
                },
            };
            vars.insert(p.name.to_ascii_lowercase(), (p.ty, v));
        }
        if self.proc_depth >= 32 {
            return Err(SqlError::new(
                217,
                1,
                16,
                "Maximum stored procedure, function, trigger, or view nesting level exceeded (limit 32).",
            )
            .into());
        }
        let blocks = translate::parse_batch(&info.body)?;
        let outer = self.swap_vars(vars);
        let tables: std::collections::HashSet<String> = self.temp.keys().cloned().collect();
        let nocount = self.nocount;
        self.proc_depth += 1;
        let r = self.run_seq(blocks, &[], out);
        self.proc_depth -= 1;
        self.drop_created_since(&tables);
        self.nocount = nocount;
        let status = match r {
            Ok(()) => Ok(0),
            Err(Failure::Return(s)) => Ok(s.unwrap_or(0) as i32),
            Err(Failure::Break) | Err(Failure::Continue) => Ok(0),
            Err(other) => Err(other),
        };
        let outputs: Vec<(String, SqlType, Value)> = info
            .params
            .iter()
            .filter(|p| p.output)
            .map(|p| {
                let v = self.var(&p.name).map(|(_, v)| v).unwrap_or(Value::Null);
                (p.name.clone(), p.ty, v)
            })
            .collect();
        self.swap_vars(outer);
        let status = status?;
        Ok(ProcOutcome { status, outputs })
    }

    /// An RPC call of a stored procedure by name: its outcome, or the error
    /// that stopped it (already written to `out` when it was reported there).
    pub fn rpc_procedure(
        &mut self,
        name: &str,
        args: Vec<ArgValue>,
        out: &mut dyn Output,
    ) -> Result<Result<ProcOutcome, SqlError>, super::OutputError> {
        let name = match translate::parse_object_name(name) {
            Ok(n) => n,
            Err(e) => return Ok(Err(e)),
        };
        match self.call_procedure(&name, &args, out) {
            Ok(o) => Ok(Ok(o)),
            Err(Failure::Sql(e)) => Ok(Err(e)),
            Err(Failure::Output(e)) => Err(e),
            Err(_) => Ok(Ok(ProcOutcome {
                status: 0,
                outputs: vec![],
            })),
        }
    }

    /// `EXEC sp_executesql @stmt, @params, @p1 = v1, ...` in T-SQL text.
    fn exec_sql(
        &mut self,
        call: ExecCall,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let mut it = call.args.into_iter();
        let stmt = it.next().and_then(|a| a.value).ok_or_else(|| {
            SqlError::new(
                201,
                4,
                16,
                "Procedure or function 'sp_executesql' expects parameter '@statement', which was not supplied.",
            )
        })?;
        let sql = self.eval_text(&stmt, params)?;
        let decls = match it.next().and_then(|a| a.value) {
            Some(d) => self.eval_text(&d, params)?,
            None => String::new(),
        };
        let declared = if decls.trim().is_empty() {
            vec![]
        } else {
            crate::engine::typename::parse_param_decls(&decls).ok_or_else(|| {
                SqlError::new(
                    8178,
                    1,
                    16,
                    format!("The parameterized query '({decls})' has a malformed parameter declaration."),
                )
            })?
        };
        let mut bound = Vec::new();
        let mut outputs = Vec::new();
        for (i, a) in it.enumerate() {
            let decl = match &a.name {
                Some(n) => declared.iter().find(|d| d.0.eq_ignore_ascii_case(n)),
                None => declared.get(i),
            }
            .ok_or_else(|| {
                SqlError::new(
                    8144,
                    2,
                    16,
                    "Procedure or function has too many arguments specified.",
                )
            })?;
            let value = match &a.value {
                Some(e) => {
                    let sql = translate::scalar_as(&self.ctx_with(params), e, &decl.1)?;
                    self.eval_scalar(&sql, &decl.1, params)?
                }
                None => Value::Null,
            };
            if decl.2 {
                if let Some(Expr::Identifier(id)) = &a.value {
                    if id.value.starts_with('@') {
                        outputs.push((decl.0.clone(), id.value.clone()));
                    }
                }
            }
            bound.push(Param {
                name: decl.0.clone(),
                sql_type: decl.1,
                value,
            });
        }
        // The statement runs in its own variable scope, its parameters as variables.
        let inner: HashMap<String, (SqlType, Value)> = bound
            .iter()
            .map(|p| (p.name.to_ascii_lowercase(), (p.sql_type, p.value.clone())))
            .collect();
        let outer = self.swap_vars(inner);
        let tables = self.table_vars();
        let result = self.execute_batch(&sql, &bound, out);
        self.end_batch_scope(&tables);
        let produced: Vec<(String, Option<(SqlType, Value)>)> = outputs
            .iter()
            .map(|(p, v)| (v.clone(), self.var(p)))
            .collect();
        self.swap_vars(outer);
        result?;
        for (target, value) in produced {
            if let (Some((_, v)), Some((ty, _))) = (value, self.var(&target)) {
                let stored = to_storage(&v);
                let v = convert(ValueRef::from(&stored), &ty, Overlong::Truncate)?;
                self.set_var(&target, ty, v);
            }
        }
        Ok(())
    }

    fn table_collations(
        &mut self,
        meta: &catalog::TableMeta,
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let cols = vec![
            ColumnMeta::new("colid", SqlType::SmallInt),
            ColumnMeta::new("name", SqlType::NVarChar(Len::N(128))),
            ColumnMeta::new("tds_collation_28", SqlType::Binary(5)),
            ColumnMeta::new("tds_collation_100", SqlType::Binary(5)),
            ColumnMeta::new("collation_name", SqlType::NVarChar(Len::N(128))),
        ];
        out.columns(&cols)?;
        for (i, c) in meta.columns.iter().enumerate() {
            let (coll, name) = match (c.ty.is_string(), c.collation) {
                (true, coll) => {
                    let coll = coll.unwrap_or(crate::types::Collation::SERVER);
                    (
                        Value::Binary(coll.to_tds().to_vec()),
                        Value::String(crate::engine::collation::name(&coll)),
                    )
                }
                _ => (Value::Null, Value::Null),
            };
            out.row(&[
                Value::Int(i as i64 + 1),
                Value::String(c.name.clone()),
                coll.clone(),
                coll,
                name,
            ])?;
        }
        out.done(Some(meta.columns.len() as u64), false)?;
        Ok(())
    }

    /// `sp_getapplock [@Resource =] N'r', [@LockMode =] 'mode' [,
    /// [@LockOwner =] 'Transaction' | 'Session'] [, [@LockTimeout =] ms] [,
    /// [@DbPrincipal =] N'p']` and `sp_releaseapplock [@Resource =] N'r' [,
    /// [@LockOwner =] ...] [, [@DbPrincipal =] ...]`, as
    /// `engine::applock` holds them; the return code. A Transaction-owned
    /// request outside a transaction, an unknown mode or owner, a NULL
    /// resource: -999, as the documentation's table says.
    fn app_lock(&mut self, proc: &str, call: &ExecCall, params: &[Param]) -> Result<i32, Failure> {
        use crate::engine::applock::{Mode, Owner};
        let get = proc == "sp_getapplock";
        let names: &[&str] = if get {
            &[
                "@Resource",
                "@LockMode",
                "@LockOwner",
                "@LockTimeout",
                "@DbPrincipal",
            ]
        } else {
            &["@Resource", "@LockOwner", "@DbPrincipal"]
        };
        let mut values: Vec<Option<Value>> = vec![None; names.len()];
        for (i, a) in call.args.iter().enumerate() {
            let at = match &a.name {
                Some(n) => names.iter().position(|x| n.eq_ignore_ascii_case(x)),
                None => (i < names.len()).then_some(i),
            };
            let Some(at) = at else {
                let shown = a.name.clone().unwrap_or_else(|| format!("#{}", i + 1));
                return Err(SqlError::new(
                    8145,
                    2,
                    16,
                    format!("{shown} is not a parameter for procedure {proc}."),
                )
                .into());
            };
            values[at] = match &a.value {
                Some(e) => Some(self.eval_value(e, params)?.1),
                None => None,
            };
        }
        let text = |v: &Option<Value>| match v {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Int(i)) => Some(i.to_string()),
            _ => None,
        };
        if get && values[1].is_none() {
            return Err(SqlError::new(
                201,
                4,
                16,
                "Procedure or function 'sp_getapplock' expects parameter '@LockMode', which was not supplied.",
            )
            .into());
        }
        let owner_at = if get { 2 } else { 1 };
        let principal = text(&values[names.len() - 1]).unwrap_or_else(|| "public".into());
        let Some(resource) = text(&values[0]) else {
            return Ok(-999);
        };
        let owner = match text(&values[owner_at])
            .unwrap_or_else(|| "Transaction".into())
            .trim()
            .to_ascii_lowercase()
            .as_str()
        {
            "session" => Owner::Session(self.spid),
            "transaction" if self.trancount > 0 => {
                Owner::Transaction(self.spid, self.tran_descriptor)
            }
            _ => return Ok(-999),
        };
        let locks = &self.engine.inner.app_locks;
        if !get {
            if locks.release(&self.db, &principal, &resource, owner) {
                return Ok(0);
            }
            return Err(SqlError::new(
                1223,
                1,
                16,
                format!(
                    "Cannot release the application lock (Database Principal: '{principal}', Resource: '{resource}') because it is not currently held."
                ),
            )
            .into());
        }
        let Some(mode) = text(&values[1]).as_deref().and_then(Mode::parse) else {
            return Ok(-999);
        };
        // @LockTimeout: milliseconds; -1 (the default, as @@LOCK_TIMEOUT's)
        // waits until granted.
        let timeout = match &values[3] {
            Some(Value::Int(ms)) if *ms >= 0 => Some(Duration::from_millis(*ms as u64)),
            Some(Value::Int(_)) | None | Some(Value::Null) => None,
            Some(_) => return Ok(-999),
        };
        Ok(locks.acquire(&self.db, &principal, &resource, owner, mode, timeout))
    }

    /// Change tracking cleanup on demand.
    /// `sp_sandbox_change_tracking_cleanup [@table_name =] 'table' | NULL,
    /// [@version =] n` is the sandbox's own (not in SQL Server): it drops
    /// the records of versions up to n (without it, those older than
    /// CHANGE_RETENTION) of one table or every tracked table, and makes n
    /// their minimum valid version, so tests can move it deterministically.
    /// `sp_flush_CT_internal_table_on_demand [@TableToClean =] 'table'` is
    /// SQL Server's manual cleanup by retention.
    /// learn.microsoft.com/sql/relational-databases/system-stored-procedures/sys-sp-flush-ct-internal-table-on-demand-transact-sql
    fn change_tracking_cleanup(
        &mut self,
        proc: &str,
        call: &ExecCall,
        params: &[Param],
        out: &mut dyn Output,
    ) -> Result<(), Failure> {
        let arg = |i: usize, names: &[&str]| {
            call.args
                .iter()
                .enumerate()
                .find(|(j, a)| match &a.name {
                    Some(n) => names.iter().any(|x| n.eq_ignore_ascii_case(x)),
                    None => *j == i,
                })
                .and_then(|(_, a)| a.value.clone())
        };
        let table = match arg(0, &["@table_name", "@TableToClean"]) {
            Some(e) => match self.eval_value(&e, params)?.1 {
                Value::String(s) => Some(s),
                _ => None,
            },
            None => None,
        };
        let version = if proc == "sp_sandbox_change_tracking_cleanup" {
            match arg(1, &["@version"]) {
                Some(e) => match self.eval_value(&e, params)?.1 {
                    Value::Int(i) => Some(i),
                    Value::Null => None,
                    _ => {
                        return Err(SqlError::new(
                            8114,
                            1,
                            16,
                            "Error converting data type to bigint.",
                        )
                        .into())
                    }
                },
                None => None,
            }
        } else {
            None
        };
        let ids: Vec<(String, i64)> = match &table {
            Some(t) => {
                let meta = self.ctx().table(&translate::parse_object_name(t)?)?;
                let id = meta.object_id.unwrap_or_default();
                if !crate::engine::change_tracking::is_tracked(&self.conn, id)? {
                    return Err(SqlError::new(
                        22105,
                        1,
                        16,
                        format!("Change tracking is not enabled on table '{}'.", meta.name),
                    )
                    .into());
                }
                vec![(meta.db.clone(), id)]
            }
            None => crate::engine::change_tracking::tracked_tables(&self.conn, &self.db)?
                .into_iter()
                .map(|id| (self.db.clone(), id))
                .collect(),
        };
        self.in_savepoint(|c| {
            for (db, id) in &ids {
                crate::engine::change_tracking::cleanup(c, db, *id, version)?;
            }
            Ok(())
        })?;
        out.return_status(0)?;
        out.done(None, false)?;
        Ok(())
    }

    /// WAITFOR DELAY 'hh:mm:ss[.mmm]' (and TIME, as a delay until then).
    pub(super) fn wait_for(&mut self, sql: &str, params: &[Param]) -> Result<(), SqlError> {
        let v = self.eval_scalar(sql, &SqlType::Time(3), params)?;
        if let Value::Time(t) = v {
            use chrono::Timelike;
            let ms = u64::from(t.num_seconds_from_midnight()) * 1000
                + u64::from(t.nanosecond() / 1_000_000);
            std::thread::sleep(Duration::from_millis(ms.min(600_000)));
        }
        Ok(())
    }
}

/// Error 11514: sp_describe_first_result_set cannot see through dynamic SQL.
pub(super) fn dynamic_sql_error(stmt: &str) -> SqlError {
    SqlError::new(
        11514,
        1,
        16,
        format!(
            "The metadata could not be determined because statement '{stmt}' contains dynamic SQL. Consider using the WITH RESULT SETS clause to explicitly describe the result set."
        ),
    )
}
