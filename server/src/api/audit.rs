//! GET /audit: the audit trail, searched. A caller reads the lines about
//! itself (its requests, their refusals, its jobs and events); a user with
//! `audit: all` in permissions.yaml reads everyone's and the anonymous
//! refusals. Asking for another user's lines without that is refused (403)
//! and audited.

use axum::extract::State;
use axum::Json;

use super::caller::Caller;
use super::error::{ApiError, ErrorBody};
use super::input::ApiQuery;
use super::state::AppState;
use crate::auth::permissions::AuditScope;
use crate::auth::EventType;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchAudit {
    /// Only lines about this user (needs `audit: all` unless it is the caller).
    pub user: Option<String>,
    /// Only lines whose resource contains this text (a table, a job id, a path).
    pub resource: Option<String>,
    /// Only this action (`read`, `write`, `extract`, `GET`, ...).
    pub action: Option<String>,
    /// Only this kind of line (`auth_failure`, `permission_denied`, `job_failed`, ...).
    pub event_type: Option<String>,
    /// Only this outcome: `success`, `denied`, `failure` or `cancelled`.
    pub outcome: Option<String>,
    /// Only lines at or after this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<String>,
    /// Only lines before this time (RFC 3339).
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<String>,
    /// At most this many, newest first: 1..=1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// One audit line, as the trail holds it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct AuditLine {
    pub timestamp: String,
    pub event_type: String,
    pub user_name: Option<String>,
    pub source_ip: Option<String>,
    pub resource: String,
    pub action: String,
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub missing_right: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Matching lines, newest first.
    pub lines: Vec<AuditLine>,
    /// Whether older matching lines were left out (the limit was reached).
    pub more: bool,
}

fn time(
    field: &str,
    v: &Option<String>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, ApiError> {
    v.as_deref()
        .map(|t| {
            chrono::DateTime::parse_from_rfc3339(t)
                .map(|d| d.with_timezone(&chrono::Utc))
                .map_err(|e| {
                    ApiError::invalid(field, format!("{field} '{t}' is not an RFC 3339 time: {e}"))
                })
        })
        .transpose()
}

#[utoipa::path(
    get,
    operation_id = "search_audit",
    path = "/audit",
    tag = "audit",
    params(SearchAudit),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Matching audit lines the caller may read, newest first", body = AuditPage),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "Another user's lines, without `audit: all`", body = ErrorBody),
        (status = 422, description = "A bad filter or limit", body = ErrorBody),
        (status = 503, description = "This server keeps no audit file", body = ErrorBody),
    )
)]
pub async fn search_audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<SearchAudit>,
) -> Result<Json<AuditPage>, ApiError> {
    // An empty text filter is no filter (times must be times).
    for f in [
        &mut q.user,
        &mut q.resource,
        &mut q.action,
        &mut q.event_type,
        &mut q.outcome,
    ] {
        if f.as_deref().is_some_and(|v| v.trim().is_empty()) {
            *f = None;
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    let since = time("since", &q.since)?;
    let until = time("until", &q.until)?;
    let everyone = caller.user.audit == AuditScope::All;
    let user = match (&q.user, everyone) {
        (Some(u), false) if *u != caller.user.name => {
            state.audit.record(
                caller
                    .event(EventType::PermissionDenied, &format!("audit:{u}"), "read")
                    .missing("audit: all"),
            );
            return Err(ApiError::forbidden(format!(
                "reading {u}'s audit lines needs `audit: all` in permissions.yaml"
            )));
        }
        (Some(u), _) => Some(u.clone()),
        (None, true) => None,
        (None, false) => Some(caller.user.name.clone()),
    };
    let files = state.audit.files();
    if files.is_empty() {
        return Err(ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server writes its audit trail to the log only",
        ));
    }
    let audit = state.audit.clone();
    let want = move |l: &AuditLine| {
        user.as_deref()
            .is_none_or(|u| l.user_name.as_deref() == Some(u))
            && q.resource.as_deref().is_none_or(|r| l.resource.contains(r))
            && q.action
                .as_deref()
                .is_none_or(|a| l.action.eq_ignore_ascii_case(a))
            && q.event_type.as_deref().is_none_or(|e| l.event_type == e)
            && q.outcome.as_deref().is_none_or(|o| l.outcome == o)
            && chrono::DateTime::parse_from_rfc3339(&l.timestamp)
                .map(|t| {
                    let t = t.with_timezone(&chrono::Utc);
                    since.is_none_or(|s| t >= s) && until.is_none_or(|u| t < u)
                })
                .unwrap_or(false)
    };
    // Files are read off the async threads; lines still in the writer's
    // queue are written first, so a search sees everything recorded.
    let page = tokio::task::spawn_blocking(move || {
        audit.flush();
        let mut lines = Vec::new();
        let mut more = false;
        'files: for f in files {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            for raw in text.lines().rev() {
                let Ok(l) = serde_json::from_str::<AuditLine>(raw) else {
                    continue;
                };
                if want(&l) {
                    if lines.len() == limit as usize {
                        more = true;
                        break 'files;
                    }
                    lines.push(l);
                }
            }
        }
        AuditPage { lines, more }
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(Json(page))
}
