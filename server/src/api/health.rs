//! GET /health/live and GET /health/ready (for load balancers and service
//! managers; no token needed). Readiness asks both systems, each within a
//! timeout, and says which one failed. Hosts, ports, database names and
//! error texts map the network behind the bridge, so only a caller with a
//! valid token sees them; anyone else gets `ok` per check. Anyone may ask
//! as often as they like, so the systems are asked at most once per
//! [`READY_FRESH`]: probes in between, and those arriving while a check
//! runs, share its answer.

use std::time::Instant;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::caller::MaybeCaller;
use super::state::AppState;
use crate::sqlserver::{self, pool, SqlServerError};

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
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub ok: bool,
    /// How long the check took; only for a caller with a valid token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub latency_ms: Option<u64>,
    /// What answered (host, port, database), or why it failed; only for a
    /// caller with a valid token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub detail: Option<String>,
}

impl Check {
    /// What a caller without a valid token may see.
    fn anonymous(self) -> Check {
        Check {
            ok: self.ok,
            latency_ms: None,
            detail: None,
        }
    }
}

/// How long one readiness check answers every probe.
pub const READY_FRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// The last checks and when they ran; the lock makes probes that arrive
/// while a check runs wait for it rather than start their own.
#[derive(Default)]
pub struct ReadinessCache(tokio::sync::Mutex<Option<(Instant, Check, Check)>>);

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
        latency_ms: Some(latency_ms),
        detail: Some(detail),
    }
}

/// SQL Server answers on a connection of the server's pool: probes reuse
/// one login instead of logging in each time (a load balancer probing
/// every few seconds would otherwise fill SQL Server's login audit).
async fn sqlserver_answers(state: &AppState) -> Result<String, SqlServerError> {
    let settings = &state.sqlserver;
    let at = format!("{}:{}", settings.host, settings.port);
    let pool = state.runner.pool();
    let status = pool.status();
    if status.available == 0 && status.size >= status.max_size {
        // Waiting would report a busy server as down: every connection is
        // checked out, by jobs that reached SQL Server with it.
        return Ok(format!(
            "{at}: all {} pooled connections are in use by jobs",
            status.max_size
        ));
    }
    let mut conn = pool::get(pool).await?;
    let row = async {
        conn.simple_query("SELECT DB_NAME(), SUSER_SNAME()")
            .await?
            .into_row()
            .await
    }
    .await
    .map_err(|e| sqlserver::classify(e, settings))?;
    let text = |i: usize| {
        row.as_ref()
            .and_then(|r| r.get::<&str, _>(i).map(str::to_string))
            .unwrap_or_default()
    };
    Ok(format!(
        "{at} database '{}' as '{}' ({})",
        text(0),
        text(1),
        settings.authentication
    ))
}

/// Asks both systems, each within the timeout.
async fn check_both(state: &AppState) -> (Check, Check) {
    let t = state.ready_timeout;
    // Boxed: a pooled connection's future is large, and the handler's
    // would otherwise overflow a worker thread's stack in debug builds.
    let sql = timed(t, "SQL Server", Box::pin(sqlserver_answers(state)));
    let dbx = timed(t, "Databricks", async {
        match &state.databricks {
            Ok(ws) => tokio::try_join!(ws.current_principal(), ws.list_warehouses())
                .map(|(principal, w)| {
                    format!(
                        "{} as '{principal}' ({}) ({} SQL warehouse(s))",
                        ws.host(),
                        ws.auth_method(),
                        w.len()
                    )
                })
                .map_err(|e| e.to_string()),
            Err(why) => Err(format!("not configured: {why}")),
        }
    });
    tokio::join!(sql, dbx)
}

#[utoipa::path(
    get,
    operation_id = "health_ready",
    path = "/health/ready",
    tag = "health",
    security((), ("bearer" = [])),
    responses(
        (status = 200, description = "SQL Server and Databricks both answer. Each check's `detail` and `latency_ms` only with a valid token", body = Ready),
        (status = 503, description = "A check failed; see which (and, with a valid token, why)", body = Ready),
    )
)]
pub async fn ready(
    State(state): State<AppState>,
    caller: MaybeCaller,
) -> (StatusCode, Json<Ready>) {
    let (mut sqlserver, mut databricks) = {
        let mut last = state.readiness.0.lock().await;
        match last.as_ref() {
            Some((at, s, d)) if at.elapsed() < READY_FRESH => (s.clone(), d.clone()),
            _ => {
                let (s, d) = check_both(&state).await;
                *last = Some((Instant::now(), s.clone(), d.clone()));
                (s, d)
            }
        }
    };
    let ok = sqlserver.ok && databricks.ok;
    if caller.0.is_none() {
        sqlserver = sqlserver.anonymous();
        databricks = databricks.anonymous();
    }
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
