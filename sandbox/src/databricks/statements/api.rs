//! HTTP handlers of the Statement Execution API
//! (https://docs.databricks.com/api/workspace/statementexecution and the
//! tutorial https://docs.databricks.com/dev-tools/sql-execution-tutorial.html):
//! execute, get, get result chunk, cancel; plus the unauthenticated result
//! links EXTERNAL_LINKS hands out.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{encode, transition, Disposition, Entry, Format, Link, Phase, Request, Results};
use crate::databricks::error::ApiError;
use crate::databricks::sql::types::DbxType;
use crate::databricks::sql::{Param, SessionDefaults};
use crate::databricks::Shared;

#[derive(Deserialize)]
struct ParamBody {
    name: String,
    value: Option<String>,
    #[serde(rename = "type")]
    ty: Option<String>,
}

#[derive(Deserialize)]
struct ExecuteBody {
    statement: Option<String>,
    warehouse_id: Option<String>,
    catalog: Option<String>,
    schema: Option<String>,
    parameters: Option<Vec<ParamBody>>,
    wait_timeout: Option<String>,
    on_wait_timeout: Option<String>,
    format: Option<String>,
    disposition: Option<String>,
    row_limit: Option<i64>,
    byte_limit: Option<i64>,
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::bad_request(msg)
}

/// `wait_timeout`: `0s` or 5–50 seconds (default 10s).
fn parse_wait(v: Option<&str>) -> Result<Duration, ApiError> {
    let v = v.unwrap_or("10s");
    let secs: u64 = v
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| invalid(format!("wait_timeout must be of the form <n>s, got '{v}'")))?;
    if secs != 0 && !(5..=50).contains(&secs) {
        return Err(invalid(format!(
            "wait_timeout must be 0s or between 5s and 50s, got '{v}'"
        )));
    }
    Ok(Duration::from_secs(secs))
}

/// `POST /api/2.0/sql/statements`: the statement runs as the caller.
pub async fn execute(
    State(shared): State<Arc<Shared>>,
    axum::Extension(caller): axum::Extension<crate::databricks::sql::Caller>,
    body: String,
) -> Result<Response, ApiError> {
    let b: ExecuteBody = serde_json::from_str(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            format!("Invalid JSON body: {e}"),
        )
    })?;
    let statement = b
        .statement
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| invalid("statement is required"))?;
    if statement.len() > 16 * 1024 * 1024 {
        return Err(invalid(
            "The statement text exceeds the maximum size of 16 MiB.",
        ));
    }
    let wid = b
        .warehouse_id
        .ok_or_else(|| invalid("warehouse_id is required"))?;
    if wid != shared.warehouse_id {
        return Err(invalid(format!(
            "warehouse_id '{wid}' is not a valid SQL warehouse in this workspace."
        )));
    }
    let wait = parse_wait(b.wait_timeout.as_deref())?;
    let cancel_on_timeout = match b.on_wait_timeout.as_deref().unwrap_or("CONTINUE") {
        "CONTINUE" => false,
        "CANCEL" => true,
        other => {
            return Err(invalid(format!(
                "on_wait_timeout must be CONTINUE or CANCEL, got '{other}'"
            )))
        }
    };
    let format = match b.format.as_deref().unwrap_or("JSON_ARRAY") {
        "JSON_ARRAY" => Format::JsonArray,
        "ARROW_STREAM" => Format::ArrowStream,
        "CSV" => Format::Csv,
        other => {
            return Err(invalid(format!(
                "format must be JSON_ARRAY, ARROW_STREAM or CSV, got '{other}'"
            )))
        }
    };
    let disposition = match b.disposition.as_deref().unwrap_or("INLINE") {
        "INLINE" => Disposition::Inline,
        "EXTERNAL_LINKS" => Disposition::ExternalLinks,
        other => {
            return Err(invalid(format!(
                "disposition must be INLINE or EXTERNAL_LINKS, got '{other}'"
            )))
        }
    };
    if disposition == Disposition::Inline && format != Format::JsonArray {
        return Err(invalid(format!(
            "The INLINE disposition only supports the JSON_ARRAY format, not {}.",
            format.name()
        )));
    }
    let limit = |v: Option<i64>, name: &str| -> Result<Option<u64>, ApiError> {
        match v {
            None => Ok(None),
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            Some(n) => Err(invalid(format!("{name} must not be negative, got {n}"))),
        }
    };
    let row_limit = limit(b.row_limit, "row_limit")?;
    let byte_limit = limit(b.byte_limit, "byte_limit")?;
    let mut params = Vec::new();
    for p in b.parameters.unwrap_or_default() {
        let tytext = p.ty.unwrap_or_else(|| "STRING".into());
        let ty = DbxType::parse(&tytext).ok_or_else(|| {
            invalid(format!(
                "Unsupported type '{tytext}' for parameter '{}'.",
                p.name
            ))
        })?;
        params.push(Param {
            name: p.name,
            ty,
            value: p.value,
        });
    }
    let defaults = SessionDefaults {
        catalog: b.catalog.unwrap_or_else(|| "main".into()).to_lowercase(),
        schema: b.schema.unwrap_or_else(|| "default".into()).to_lowercase(),
        caller,
    };
    shared.statements.sweep(shared.config.result_ttl);
    let entry = shared.statements.insert(Request {
        statement,
        format,
        disposition,
        row_limit,
        byte_limit,
    });
    tracing::debug!(id = %entry.id, "statement submitted");
    *entry.lose_answer.lock().unwrap_or_else(|p| p.into_inner()) =
        shared.faults.take_lost_statement(&entry.request.statement);
    tokio::spawn(run(shared.clone(), entry.clone(), defaults, params));
    if !wait.is_zero() {
        let mut rx = entry.phase.subscribe();
        let finished = tokio::time::timeout(wait, rx.wait_for(|p| p.is_terminal()))
            .await
            .is_ok();
        if !finished && cancel_on_timeout && transition(&entry, Phase::Canceled) {
            interrupt(&shared, &entry.id).await;
        }
    }
    if let Some(e) = entry.take_lost_answer() {
        return Err(e);
    }
    Ok(Json(statement_json(&shared, &entry)).into_response())
}

/// Executes a statement after the configured delay.
async fn run(
    shared: Arc<Shared>,
    entry: Arc<Entry>,
    defaults: SessionDefaults,
    params: Vec<Param>,
) {
    let delay = shared.execution_delay();
    tokio::time::sleep(delay / 2).await;
    if !transition(&entry, Phase::Running) {
        return;
    }
    tokio::time::sleep(delay - delay / 2).await;
    if entry.phase.borrow().is_terminal() {
        return;
    }
    if shared.faults.take_statement(&entry.request.statement) {
        transition(
            &entry,
            Phase::Failed {
                error_code: "INTERNAL_ERROR".into(),
                message: crate::databricks::sql::SqlError::injected(&entry.request.statement)
                    .message,
                sql_state: Some("XX000".into()),
            },
        );
        return;
    }
    let sh = shared.clone();
    let req = entry.request.clone();
    let id = entry.id.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let rs = sh
            .engine
            .execute_tagged(&req.statement, &defaults, &params, &id)?;
        let chunk_bytes = match req.disposition {
            Disposition::Inline => sh.config.inline_chunk_bytes,
            Disposition::ExternalLinks => sh.config.external_chunk_bytes,
        };
        Ok::<_, crate::databricks::sql::SqlError>(Results::build(
            rs,
            req.row_limit,
            req.byte_limit,
            chunk_bytes,
        ))
    })
    .await;
    let phase = match outcome {
        Ok(Ok(results)) => {
            if entry.request.disposition == Disposition::Inline
                && results.total_bytes > shared.config.inline_limit_bytes
            {
                // FAILED with BAD_REQUEST and this text, as a real workspace
                // answers (quoted in github.com/databrickslabs/ucx/issues/3447).
                Phase::Failed {
                    error_code: "BAD_REQUEST".into(),
                    message: format!(
                        "Inline byte limit exceeded. Statements executed with disposition=INLINE can have a result size of at most {} bytes. Please execute the statement with disposition=EXTERNAL_LINKS if you want to download the full result.",
                        shared.config.inline_limit_bytes
                    ),
                    sql_state: None,
                }
            } else {
                Phase::Succeeded(Arc::new(results))
            }
        }
        Ok(Err(e)) => Phase::Failed {
            error_code: match e.kind {
                crate::databricks::sql::ErrorKind::Internal => "INTERNAL_ERROR".into(),
                // A missing privilege: the ServiceErrorCode the API reference
                // lists for it.
                crate::databricks::sql::ErrorKind::PermissionDenied => "PERMISSION_DENIED".into(),
                _ => "BAD_REQUEST".into(),
            },
            message: e.message,
            sql_state: Some(e.sql_state),
        },
        Err(join) => Phase::Failed {
            error_code: "INTERNAL_ERROR".into(),
            message: format!("statement execution crashed: {join}"),
            sql_state: None,
        },
    };
    tracing::debug!(id = %entry.id, state = phase.state(), "statement finished");
    transition(&entry, phase);
}

/// Stops a canceled statement that is already executing (off the async
/// workers: the engine's interrupt takes a short lock).
async fn interrupt(shared: &Arc<Shared>, id: &str) {
    let sh = shared.clone();
    let id = id.to_string();
    let _ = tokio::task::spawn_blocking(move || sh.engine.interrupt(&id)).await;
}

fn manifest_json(entry: &Entry, r: &Results) -> Value {
    let columns: Vec<Value> = r
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut v = json!({
                "name": c.name,
                "type_name": c.ty.type_name().replace("TIMESTAMP_NTZ", "TIMESTAMP"),
                "type_text": c.ty.to_string(),
                "position": i,
            });
            if let DbxType::Decimal { precision, scale } = c.ty {
                v["type_precision"] = json!(precision);
                v["type_scale"] = json!(scale);
            }
            v
        })
        .collect();
    let chunks: Vec<Value> = r
        .chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "chunk_index": i,
                "row_offset": c.row_offset,
                "row_count": c.row_count,
                "byte_count": c.byte_count,
            })
        })
        .collect();
    json!({
        "format": entry.request.format.name(),
        "schema": { "column_count": r.columns.len(), "columns": columns },
        "total_chunk_count": r.chunks.len(),
        "total_row_count": r.rows.len(),
        "total_byte_count": r.total_bytes,
        "truncated": r.truncated,
        "chunks": chunks,
    })
}

fn chunk_link(entry: &Entry, idx: usize) -> String {
    format!("/api/2.0/sql/statements/{}/result/chunks/{idx}", entry.id)
}

/// `ResultData` of chunk `idx` (rows inline, or an external link).
fn chunk_json(shared: &Shared, entry: &Entry, r: &Results, idx: usize) -> Value {
    let c = r.chunks[idx];
    let mut v = json!({
        "chunk_index": idx,
        "row_offset": c.row_offset,
        "row_count": c.row_count,
        "byte_count": c.byte_count,
    });
    if idx + 1 < r.chunks.len() {
        v["next_chunk_index"] = json!(idx + 1);
        v["next_chunk_internal_link"] = json!(chunk_link(entry, idx + 1));
    }
    match entry.request.disposition {
        Disposition::Inline => {
            v["data_array"] = encode::json_rows(&r.columns, r.chunk_rows(idx));
            v
        }
        Disposition::ExternalLinks => {
            let expires = if shared.faults.links_expired() {
                SystemTime::now() - Duration::from_secs(1)
            } else {
                SystemTime::now() + shared.config.external_link_ttl
            };
            let headers: Vec<(String, String)> = shared
                .config
                .link_headers
                .iter()
                .map(|h| {
                    let value = h
                        .value
                        .clone()
                        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
                    (h.name.clone(), value)
                })
                .collect();
            let token = shared.statements.issue_link(Link {
                statement_id: entry.id.clone(),
                chunk: idx,
                expires,
                headers: headers.clone(),
            });
            let exp: chrono::DateTime<chrono::Utc> = expires.into();
            let mut link = v.clone();
            link["external_link"] = json!(format!("{}/sandbox/results/{token}", shared.base_url));
            link["expiration"] = json!(exp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
            let http_headers: serde_json::Map<String, Value> = headers
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect();
            link["http_headers"] = Value::Object(http_headers);
            json!({ "external_links": [link] })
        }
    }
}

fn statement_json(shared: &Shared, entry: &Entry) -> Value {
    let phase = entry.phase.borrow().clone();
    let mut status = json!({ "state": phase.state() });
    let mut out = json!({ "statement_id": entry.id });
    match &phase {
        Phase::Failed {
            error_code,
            message,
            sql_state,
        } => {
            status["error"] = json!({ "error_code": error_code, "message": message });
            if let Some(s) = sql_state {
                status["sql_state"] = json!(s);
            }
        }
        Phase::Succeeded(r) => {
            out["manifest"] = manifest_json(entry, r);
            out["result"] = chunk_json(shared, entry, r, 0);
        }
        _ => {}
    }
    out["status"] = status;
    out
}

fn statement_not_found(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("The statement {id} does not exist."),
    )
}

/// `GET /api/2.0/sql/statements/{statement_id}`.
pub async fn get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let entry = shared
        .statements
        .get(&id, shared.config.result_ttl)
        .ok_or_else(|| statement_not_found(&id))?;
    if let Some(e) = entry.take_lost_answer() {
        return Err(e);
    }
    Ok(Json(statement_json(&shared, &entry)).into_response())
}

/// `GET /api/2.0/sql/statements/{statement_id}/result/chunks/{chunk_index}`.
pub async fn chunk(
    State(shared): State<Arc<Shared>>,
    Path((id, idx)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let entry = shared
        .statements
        .get(&id, shared.config.result_ttl)
        .ok_or_else(|| statement_not_found(&id))?;
    let idx: usize = idx.parse().map_err(|_| {
        invalid(format!(
            "chunk_index must be a non-negative integer, got '{idx}'"
        ))
    })?;
    let phase = entry.phase.borrow().clone();
    let Phase::Succeeded(r) = phase else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_STATE",
            format!(
                "The statement {id} is {}; result chunks are only available for SUCCEEDED statements.",
                phase.state()
            ),
        ));
    };
    if idx >= r.chunks.len() {
        return Err(invalid(format!(
            "chunk_index {idx} is out of range: the result has {} chunk(s).",
            r.chunks.len()
        )));
    }
    let sh = shared.clone();
    let e = entry.clone();
    let v = tokio::task::spawn_blocking(move || chunk_json(&sh, &e, &r, idx))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(v).into_response())
}

/// `POST /api/2.0/sql/statements/{statement_id}/cancel`: empty answer; the
/// caller polls for the final state.
pub async fn cancel(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let entry = shared
        .statements
        .get(&id, shared.config.result_ttl)
        .ok_or_else(|| statement_not_found(&id))?;
    if transition(&entry, Phase::Canceled) {
        interrupt(&shared, &id).await;
    }
    Ok(Json(json!({})).into_response())
}

fn link_refused(status: StatusCode, code: &str, message: &str) -> Response {
    // Shaped like the cloud storage error a pre-signed URL answers with.
    (
        status,
        [(header::CONTENT_TYPE, "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
    )
        .into_response()
}

/// `GET /sandbox/results/{token}`: an external link. No bearer token (the
/// documentation says not to send one); refused once expired, and without
/// the `http_headers` the link was issued with (403, as storage refuses a
/// request missing its encryption key headers).
pub async fn download(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    request_headers: axum::http::HeaderMap,
) -> Response {
    let Some(link) = shared.statements.link(&token) else {
        return link_refused(StatusCode::FORBIDDEN, "AccessDenied", "Invalid link");
    };
    if SystemTime::now() > link.expires {
        return link_refused(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    for (name, value) in &link.headers {
        let sent = request_headers
            .get(name.as_str())
            .and_then(|v| v.to_str().ok());
        if sent != Some(value.as_str()) {
            return link_refused(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                &format!("The request must carry the {name} header this link was issued with"),
            );
        }
    }
    let Some(entry) = shared
        .statements
        .get(&link.statement_id, shared.config.result_ttl)
    else {
        return link_refused(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The result no longer exists",
        );
    };
    let phase = entry.phase.borrow().clone();
    let Phase::Succeeded(r) = phase else {
        return link_refused(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The result no longer exists",
        );
    };
    let format = entry.request.format;
    let idx = link.chunk;
    let encoded = tokio::task::spawn_blocking(move || {
        let rows = r.chunk_rows(idx);
        match format {
            Format::ArrowStream => {
                encode::arrow_stream(&r.columns, rows).map_err(|e| e.to_string())
            }
            Format::Csv => Ok(encode::csv_rows(&r.columns, rows)),
            Format::JsonArray => {
                serde_json::to_vec(&encode::json_rows(&r.columns, rows)).map_err(|e| e.to_string())
            }
        }
    })
    .await;
    let data = match encoded {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return ApiError::internal(e).into_response(),
        Err(e) => return ApiError::internal(e.to_string()).into_response(),
    };
    let ctype = match format {
        Format::ArrowStream => "application/vnd.apache.arrow.stream",
        Format::Csv => "text/csv",
        Format::JsonArray => "application/json",
    };
    let len = data.len();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CONTENT_LENGTH, len.to_string())
        .body(crate::databricks::cut::bytes_body(
            data,
            shared.faults.cut_after(),
        ))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
