//! RPC requests: sp_executesql and the prepared-statement procedures
//! drivers use (sp_prepare, sp_prepexec, sp_execute, sp_unprepare).

use crate::engine::session::ArgValue;
use crate::engine::typename::parse_param_decls;
use crate::engine::{Output, OutputError, Param, SqlError};
use crate::tds::rpc::{
    RpcCall, RpcParam, RpcRequest, SP_EXECUTE, SP_EXECUTESQL, SP_PREPARE, SP_PREPEXEC, SP_UNPREPARE,
};
use crate::tds::{tokens, TdsError};
use crate::types::{SqlType, Value};

use super::connection::Conn;
use super::output::TdsOutput;

fn text(p: Option<&RpcParam>) -> String {
    match p.map(|p| &p.value) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn int(p: Option<&RpcParam>) -> Option<i32> {
    match p.map(|p| &p.value) {
        Some(Value::Int(i)) => i32::try_from(*i).ok(),
        _ => None,
    }
}

/// Names the values of a call after the declarations in `decls`.
fn bind(decls: &str, values: &[RpcParam]) -> Result<Vec<Param>, SqlError> {
    let declared = if decls.trim().is_empty() {
        vec![]
    } else {
        parse_param_decls(decls).ok_or_else(|| {
            SqlError::new(
                8178,
                1,
                16,
                format!(
                    "The parameterized query '({decls})' has a malformed parameter declaration."
                ),
            )
        })?
    };
    let mut out = Vec::new();
    for (i, v) in values.iter().enumerate() {
        let (name, ty) = if v.name.is_empty() {
            let d = declared.get(i).ok_or_else(|| {
                SqlError::new(
                    8144,
                    2,
                    16,
                    "Procedure or function has too many arguments specified.",
                )
            })?;
            (d.0.clone(), d.1)
        } else {
            let ty = declared
                .iter()
                .find(|d| d.0.eq_ignore_ascii_case(&v.name))
                .map(|d| d.1)
                .unwrap_or(v.sql_type);
            (v.name.clone(), ty)
        };
        out.push(Param {
            name,
            sql_type: ty,
            value: v.value.clone(),
        });
    }
    // Declared parameters the call left out are an error, as in SQL Server.
    for d in &declared {
        if !out.iter().any(|p| p.name.eq_ignore_ascii_case(&d.0)) {
            return Err(SqlError::new(
                8178,
                1,
                16,
                format!(
                    "The parameterized query '({decls})' expects the parameter '{}', which was not supplied.",
                    d.0
                ),
            ));
        }
    }
    Ok(out)
}

enum CallOutcome {
    /// The call ran: its return status and the output parameters to return.
    Ran(i32, Vec<(u16, String, SqlType, Value)>),
    /// The call failed before running anything.
    Failed(SqlError),
    Cancelled,
}

/// Runs every call of an RPC request and ends the response.
pub(super) fn run(
    conn: &mut Conn,
    req: RpcRequest,
    mut out: TdsOutput<'_>,
) -> Result<(), TdsError> {
    out.in_proc = true;
    let n = req.calls.len();
    if n == 0 {
        return out.finish(None).map_err(TdsError::Io);
    }
    for (i, call) in req.calls.into_iter().enumerate() {
        let outcome = run_call(conn, &call, &mut out)?;
        let status = match outcome {
            CallOutcome::Cancelled => return out.finish(None).map_err(TdsError::Io),
            CallOutcome::Failed(e) => {
                out.error(&e).map_err(output_err)?;
                tokens::DONE_ERROR
            }
            CallOutcome::Ran(status, outputs) => {
                out.tokens(|b| tokens::return_status(b, status))?;
                for (ordinal, name, ty, value) in outputs {
                    let mut res = Ok(());
                    out.tokens(|b| res = tokens::return_value(b, ordinal, &name, &ty, &value, 1))?;
                    res?;
                }
                0
            }
        };
        if i + 1 == n {
            return out.finish(Some((status, 0))).map_err(TdsError::Io);
        }
        out.tokens(|b| tokens::done_proc(b, status | tokens::DONE_MORE, 0, 0))?;
    }
    Ok(())
}

fn output_err(e: OutputError) -> TdsError {
    match e {
        OutputError::Io(e) => TdsError::Io(e),
        OutputError::Cancelled => TdsError::Protocol("cancelled".into()),
    }
}

fn exec(
    conn: &mut Conn,
    sql: &str,
    params: &[Param],
    out: &mut TdsOutput<'_>,
) -> Result<Option<CallOutcome>, TdsError> {
    match conn.session.run_request(sql, params, out) {
        Ok(()) => Ok(None),
        Err(OutputError::Cancelled) => Ok(Some(CallOutcome::Cancelled)),
        Err(OutputError::Io(e)) => Err(TdsError::Io(e)),
    }
}

fn run_call(
    conn: &mut Conn,
    call: &RpcCall,
    out: &mut TdsOutput<'_>,
) -> Result<CallOutcome, TdsError> {
    let p = &call.params;
    let id = call.proc.well_known_id();
    match id {
        Some(SP_EXECUTESQL) => {
            let sql = text(p.first());
            let decls = text(p.get(1));
            let params = match bind(&decls, p.get(2..).unwrap_or(&[])) {
                Ok(v) => v,
                Err(e) => return Ok(CallOutcome::Failed(e)),
            };
            if let Some(c) = exec(conn, &sql, &params, out)? {
                return Ok(c);
            }
            Ok(CallOutcome::Ran(0, vec![]))
        }
        Some(SP_PREPARE) => {
            let decls = text(p.get(1));
            let sql = text(p.get(2));
            let handle = conn.next_handle;
            conn.next_handle += 1;
            conn.prepared.insert(handle, (decls, sql));
            Ok(CallOutcome::Ran(
                0,
                vec![(
                    0,
                    name_of(p.first()),
                    SqlType::Int,
                    Value::Int(i64::from(handle)),
                )],
            ))
        }
        Some(SP_PREPEXEC) => {
            let decls = text(p.get(1));
            let sql = text(p.get(2));
            let handle = conn.next_handle;
            conn.next_handle += 1;
            conn.prepared.insert(handle, (decls.clone(), sql.clone()));
            let params = match bind(&decls, p.get(3..).unwrap_or(&[])) {
                Ok(v) => v,
                Err(e) => return Ok(CallOutcome::Failed(e)),
            };
            if let Some(c) = exec(conn, &sql, &params, out)? {
                return Ok(c);
            }
            Ok(CallOutcome::Ran(
                0,
                vec![(
                    0,
                    name_of(p.first()),
                    SqlType::Int,
                    Value::Int(i64::from(handle)),
                )],
            ))
        }
        Some(SP_EXECUTE) => {
            let Some((decls, sql)) = int(p.first()).and_then(|h| conn.prepared.get(&h)).cloned()
            else {
                return Ok(CallOutcome::Failed(SqlError::new(
                    8179,
                    4,
                    16,
                    format!(
                        "Could not find prepared statement with handle {}.",
                        int(p.first()).unwrap_or(0)
                    ),
                )));
            };
            let params = match bind(&decls, p.get(1..).unwrap_or(&[])) {
                Ok(v) => v,
                Err(e) => return Ok(CallOutcome::Failed(e)),
            };
            if let Some(c) = exec(conn, &sql, &params, out)? {
                return Ok(c);
            }
            Ok(CallOutcome::Ran(0, vec![]))
        }
        Some(SP_UNPREPARE) => {
            if let Some(h) = int(p.first()) {
                conn.prepared.remove(&h);
            }
            Ok(CallOutcome::Ran(0, vec![]))
        }
        _ => {
            // A stored procedure by name: parameters by name or position,
            // OUTPUT parameters returned as RETURNVALUE tokens.
            let name = call.proc.name().to_string();
            let args: Vec<ArgValue> = p
                .iter()
                .map(|a| ArgValue {
                    name: (!a.name.is_empty()).then(|| a.name.clone()),
                    value: (!a.default).then(|| a.value.clone()),
                    output: a.output,
                })
                .collect();
            match conn.session.rpc_procedure(&name, args, out) {
                Ok(Ok(o)) => {
                    let outputs = p
                        .iter()
                        .enumerate()
                        .filter(|(_, a)| a.output)
                        .filter_map(|(i, a)| {
                            let found = if a.name.is_empty() {
                                o.outputs.get(i)
                            } else {
                                o.outputs
                                    .iter()
                                    .find(|(n, _, _)| n.eq_ignore_ascii_case(&a.name))
                            };
                            found.map(|(n, t, v)| (i as u16, n.clone(), *t, v.clone()))
                        })
                        .collect();
                    Ok(CallOutcome::Ran(o.status, outputs))
                }
                Ok(Err(e)) => Ok(CallOutcome::Failed(e)),
                Err(OutputError::Cancelled) => Ok(CallOutcome::Cancelled),
                Err(OutputError::Io(e)) => Err(TdsError::Io(e)),
            }
        }
    }
}

fn name_of(p: Option<&RpcParam>) -> String {
    p.map(|p| p.name.clone()).unwrap_or_default()
}
