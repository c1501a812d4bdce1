//! GET /jobs/{id}, DELETE /jobs/{id}, GET /jobs. A caller sees and cancels
//! only its own jobs; anyone else's are "not found".

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::caller::Caller;
use super::constraints::cursor;
use super::error::{ApiError, ErrorBody};
use super::input::ApiQuery;
use super::model::{JobList, JobStatus, ListJobs};
use super::state::AppState;
use crate::auth::EventType;
use crate::jobs::runner::Cancelled;
use crate::jobs::{Job, Page, StoreError};

fn store_error(e: StoreError) -> ApiError {
    match e {
        StoreError::BadCursor(_) => ApiError::invalid("cursor", e.to_string()),
        e => ApiError::internal(e),
    }
}

/// The caller's job, or 404 (also for someone else's, which is audited).
fn own_job(state: &AppState, caller: &Caller, id: &str, action: &str) -> Result<Job, ApiError> {
    let job = state.runner.store().get(id).map_err(store_error)?;
    match job {
        Some(j) if j.owner == caller.user.name => Ok(j),
        other => {
            if other.is_some() {
                state.audit.record(
                    caller
                        .event(EventType::PermissionDenied, &format!("job:{id}"), action)
                        .detail("the job belongs to another user"),
                );
            }
            Err(ApiError::not_found(format!("no job {id}")))
        }
    }
}

fn status_of(state: &AppState, job: Job) -> Result<JobStatus, ApiError> {
    let queries = state.runner.queries(&job);
    Ok(JobStatus::new(job, queries))
}

#[utoipa::path(
    get,
    operation_id = "get_job_status",
    path = "/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The id POST /extract returned")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job", body = JobStatus),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such job for this caller", body = ErrorBody),
    )
)]
pub async fn get_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let json = |body: bytes::Bytes| {
        (
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    };
    // A finished job's answer never changes: kept once, served from memory.
    if let Some((owner, body)) = state.finished_jobs.get(&job_id) {
        if owner == caller.user.name {
            return Ok(json(body));
        }
    }
    let job = own_job(&state, &caller, &job_id, "read")?;
    let finished = job.state.is_final().then(|| job.owner.clone());
    let status = status_of(&state, job)?;
    let body = bytes::Bytes::from(serde_json::to_vec(&status).map_err(ApiError::internal)?);
    if let Some(owner) = finished {
        state.finished_jobs.put(&job_id, &owner, body.clone());
    }
    Ok(json(body))
}

#[utoipa::path(
    delete,
    operation_id = "cancel_job",
    path = "/jobs/{job_id}",
    tag = "jobs",
    params(("job_id" = String, Path, description = "The job to cancel")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cancelled: running queries stopped, nothing partial published", body = JobStatus),
        (status = 202, description = "Cancel requested; the job is still stopping", body = JobStatus),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such job for this caller", body = ErrorBody),
        (status = 409, description = "The job had already finished", body = ErrorBody),
    )
)]
pub async fn cancel_job(
    State(state): State<AppState>,
    caller: Caller,
    Path(job_id): Path<String>,
) -> Result<(StatusCode, Json<JobStatus>), ApiError> {
    let job = own_job(&state, &caller, &job_id, "cancel")?;
    state.audit.record(caller.event(
        EventType::JobCancelled,
        &format!("job:{job_id}"),
        "cancel_requested",
    ));
    match state
        .runner
        .cancel(job, state.cancel_wait)
        .await
        .map_err(store_error)?
    {
        Cancelled::Stopped(j) => Ok((StatusCode::OK, Json(status_of(&state, j)?))),
        Cancelled::Stopping(j) => Ok((StatusCode::ACCEPTED, Json(status_of(&state, j)?))),
        Cancelled::AlreadyFinished(j) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("job {} already finished ({})", j.id, j.state.as_str()),
        )
        .details(serde_json::json!({ "state": j.state }))),
    }
}

#[utoipa::path(
    get,
    operation_id = "list_jobs",
    path = "/jobs",
    tag = "jobs",
    params(ListJobs),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's jobs, newest first", body = JobList),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "A bad filter or paging value", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListJobs>,
) -> Result<Json<JobList>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    if let Some(c) = &q.cursor {
        if cursor(c).is_none() {
            return Err(ApiError::invalid(
                "cursor",
                format!("cursor '{c}' is not one this server gave out"),
            ));
        }
    }
    // A cursor and an offset combine (the page starts `offset` jobs after
    // the cursor), so every request the document allows has an answer.
    if q.offset.is_some_and(|o| o < 0) {
        return Err(ApiError::invalid("offset", "offset must not be negative"));
    }
    let skip = |o: i64| usize::try_from(o).unwrap_or(usize::MAX);
    let page = match (q.cursor.as_deref(), q.offset) {
        (Some(c), Some(o)) => Page::CursorOffset(c, skip(o)),
        (None, Some(o)) => Page::Offset(skip(o)),
        (c, None) => Page::Cursor(c),
    };
    let (jobs, next) = state
        .runner
        .store()
        .list(Some(&caller.user.name), q.state, limit as usize, page)
        .map_err(store_error)?;
    let jobs = jobs
        .into_iter()
        .map(|j| status_of(&state, j))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(JobList {
        jobs,
        next_cursor: next,
    }))
}
