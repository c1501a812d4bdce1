//! GET /metrics (Prometheus text format) and the middleware that counts
//! and times every request — and gives axum's own bare error responses
//! (404, 405, 413, panics) the API's JSON error shape.

use std::fmt::Write;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::state::AppState;
use crate::jobs::JobState;
use crate::metrics::label;

#[utoipa::path(
    get,
    operation_id = "metrics",
    path = "/metrics",
    tag = "health",
    responses((status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain"))
)]
pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP bridge_jobs Jobs in the store by state.\n# TYPE bridge_jobs gauge"
    );
    let counts = state.runner.store().count_by_state().unwrap_or_default();
    for s in [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
        JobState::Interrupted,
    ] {
        let n = counts.iter().find(|(k, _)| *k == s).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "bridge_jobs{{state=\"{}\"}} {n}", s.as_str());
    }
    let stats = state.runner.stats();
    stats.rows.render(
        &mut out,
        "bridge_rows_extracted_total",
        "Rows written to Parquet by finished queries.",
    );
    stats.bytes.render(
        &mut out,
        "bridge_bytes_extracted_total",
        "Parquet bytes written by finished queries.",
    );
    stats.durations.render(
        &mut out,
        "bridge_job_duration_seconds",
        "Time from a job's start to its end, by final state.",
    );
    stats.table_rows.render(
        &mut out,
        "bridge_table_rows_total",
        "Rows table loads inserted, updated and deleted, by load mode.",
    );
    if let Ok((_, sync, _)) = &state.sync {
        sync.events.render(
            &mut out,
            "bridge_sync_events_total",
            "Sync events this server's poller finished, by outcome.",
        );
        sync.rows.render(
            &mut out,
            "bridge_rows_synced_total",
            "Rows SQL Server reported affected by completed sync events, by operation.",
        );
    }
    state.http_requests.render(
        &mut out,
        "bridge_http_requests_total",
        "HTTP requests by method (HTTP's own, else other), route template (else unmatched) and status.",
    );
    state.http_durations.render(
        &mut out,
        "bridge_http_request_duration_seconds",
        "HTTP request latency by method and route template (closed sets, as for the request count).",
    );
    let _ = writeln!(
        out,
        "# HELP bridge_uptime_seconds Seconds since the server started.\n# TYPE bridge_uptime_seconds gauge\nbridge_uptime_seconds {}",
        state.started.elapsed().as_secs()
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response()
}

/// The `method` label: one of the methods HTTP defines, else `other`. A
/// client can send any token as a method, and every distinct label value is
/// a series Prometheus keeps forever, so the set is closed.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The `route` label: the template of the route that matched
/// (`/jobs/{job_id}`), never the path asked for, else `unmatched` — for the
/// same reason as [`method_label`].
pub fn route_label(matched: Option<&MatchedPath>) -> String {
    matched.map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string())
}

/// Counts and times each request; replaces a non-JSON error body.
pub async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let t0 = Instant::now();
    let method = method_label(req.method());
    let route = route_label(req.extensions().get::<MatchedPath>());
    let mut resp = next.run(req).await;
    let status = resp.status();
    if (status.is_client_error() || status.is_server_error()) && !is_json(&resp) {
        let headers = std::mem::take(resp.headers_mut());
        resp = ApiError::for_status(status).into_response();
        for name in [header::ALLOW, header::WWW_AUTHENTICATE, header::RETRY_AFTER] {
            if let Some(v) = headers.get(&name) {
                resp.headers_mut().insert(name, v.clone());
            }
        }
    }
    let labels = format!("method=\"{method}\",route=\"{}\"", label(&route));
    state
        .http_requests
        .add(&format!("{labels},status=\"{}\"", status.as_u16()), 1);
    state
        .http_durations
        .observe(&labels, t0.elapsed().as_secs_f64());
    resp
}

fn is_json(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"))
}
