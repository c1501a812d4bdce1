//! GET /health/live and GET /health/ready (for load balancers and service
//! managers; no token needed). Readiness asks both systems, each within a
//! timeout, and says which one failed.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::state::AppState;
use crate::sqlserver;

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Live {
    /// Always `ok` while the process serves requests.
    pub status: String,
    pub version: String,
    pub uptime_seconds: u64,
}

#[utoipa::path(
    get,
    operation_id = "health_live",
    path = "/health/live",
    tag = "health",
    responses((status = 200, description = "The process is up", body = Live))
)]
pub async fn live(State(state): State<AppState>) -> Json<Live> {
    Json(Live {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        uptime_seconds: state.started.elapsed().as_secs(),
    })
}

/// One dependency's check.
#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub ok: bool,
    pub latency_ms: u64,
    /// What answered, or why it failed.
    pub detail: String,
}

#[derive(Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Ready {
    /// `ready`, or `not_ready` when a check failed.
    pub status: String,
    pub sqlserver: Check,
    pub databricks: Check,
}

async fn timed<F, T, E>(timeout: std::time::Duration, what: &str, f: F) -> Check
where
    F: std::future::Future<Output = Result<T, E>>,
    T: std::fmt::Display,
    E: std::fmt::Display,
{
    let t0 = Instant::now();
    let r = tokio::time::timeout(timeout, f).await;
    let latency_ms = t0.elapsed().as_millis() as u64;
    let (ok, detail) = match r {
        Ok(Ok(v)) => (true, v.to_string()),
        Ok(Err(e)) => (false, e.to_string()),
        Err(_) => (
            false,
            format!("{what} did not answer within {} s", timeout.as_secs_f64()),
        ),
    };
    Check {
        ok,
        latency_ms,
        detail,
    }
}

#[utoipa::path(
    get,
    operation_id = "health_ready",
    path = "/health/ready",
    tag = "health",
    responses(
        (status = 200, description = "SQL Server and Databricks both answer", body = Ready),
        (status = 503, description = "A check failed; see which", body = Ready),
    )
)]
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Ready>) {
    let t = state.ready_timeout;
    let sql = timed(t, "SQL Server", async {
        sqlserver::probe(&state.sqlserver, t).await.map(|i| {
            format!(
                "{}:{} database '{}'",
                state.sqlserver.host, state.sqlserver.port, i.database
            )
        })
    });
    let dbx = timed(t, "Databricks", async {
        match &state.databricks {
            Ok(ws) => ws
                .list_warehouses()
                .await
                .map(|w| format!("{} ({} SQL warehouse(s))", ws.host(), w.len()))
                .map_err(|e| e.to_string()),
            Err(why) => Err(format!("not configured: {why}")),
        }
    });
    let (sqlserver, databricks) = tokio::join!(sql, dbx);
    let ok = sqlserver.ok && databricks.ok;
    (
        if ok {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        },
        Json(Ready {
            status: if ok { "ready" } else { "not_ready" }.into(),
            sqlserver,
            databricks,
        }),
    )
}
