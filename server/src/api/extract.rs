//! POST /extract: checks everything a job needs — paths inside the roots,
//! parameters, queries, `read` on every table the rendered SQL touches —
//! before queuing it, so a refused request runs no SQL.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::authorize::{home_database, require_table_load, require_tables, require_volume_write};
use super::caller::Caller;
use super::constraints::{require_columns, require_not_blank};
use super::error::{ApiError, ErrorBody};
use super::idempotency::{self, Answer, IdempotencyKey};
use super::input::ApiJson;
use super::model::{ExtractRequest, JobAccepted};
use super::paths::{existing_inside, file_inside, new_inside};
use super::state::AppState;
use crate::auth::{referenced_tables, EventType};
use crate::config::ParamError;
use crate::databricks::names::VolumePath;
use crate::extract::run::{
    apply_partitioning, render_queries, Destination, DestinationPath, RenderedQuery, RunError,
};
use crate::jobs::ExtractJob;
use crate::queries::QueryError;

#[utoipa::path(
    post,
    operation_id = "extract",
    path = "/extract",
    tag = "jobs",
    request_body = ExtractRequest,
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "Makes retries safe (draft-ietf-httpapi-idempotency-key-header): a retry with the same key by the same user gets the first answer (the same job) and queues nothing; the key with another request is 422, while its first request is still being processed 409. Kept 24 hours (the server's --idempotency-ttl). 1 to 255 visible ASCII characters, e.g. a UUID; a quoted Structured Field String is unquoted"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued; follow it at status_url (a retry with the same Idempotency-Key gets this answer again)", body = JobAccepted,
            headers(("Location" = String, description = "/jobs/{job_id}"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "A table the queries read is not granted `read` (names resolved in the bridge's database), the Volume path is not granted `write`, or a path is outside the server's roots", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: the first request with this Idempotency-Key is still being processed; retry after Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 415, description = "Body is not JSON", body = ErrorBody),
        (status = 422, description = "A field is wrong: unknown country or query, missing parameter, bad destination; or `idempotency_key_reused`: the Idempotency-Key came with a different request", body = ErrorBody),
        (status = 503, description = "A Volume destination but Databricks is not configured, or a right cannot be checked now", body = ErrorBody),
    )
)]
pub async fn start_extract(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(req): ApiJson<ExtractRequest>,
) -> Result<Response, ApiError> {
    let request = serde_json::to_value(&req).map_err(ApiError::internal)?;
    let owner = caller.user.name.clone();
    let work = queue_extract(state.clone(), caller, req, request.clone());
    idempotency::once(&state, &owner, key, "POST /extract", &request, work).await
}

/// Checks the request and queues its job.
async fn queue_extract(
    state: AppState,
    caller: Caller,
    req: ExtractRequest,
    request: serde_json::Value,
) -> Result<Answer, ApiError> {
    for (field, value) in [
        ("queries_path", &req.queries_path),
        ("config_path", &req.config_path),
        ("country", &req.country),
        ("destination", &req.destination),
    ] {
        require_not_blank(field, value)?;
    }
    for q in &req.queries {
        require_not_blank("queries", q)?;
    }
    let roots = &state.roots;
    let queries_dir = existing_inside(&roots.queries, &req.queries_path, "queries_path")
        .inspect_err(|e| deny_path(&state, &caller, e, &req.queries_path))?;
    let config_dir = existing_inside(&roots.config, &req.config_path, "config_path")
        .inspect_err(|e| deny_path(&state, &caller, e, &req.config_path))?;
    let destination = destination(&state, &caller, &req.destination)?;
    if let Some(c) = &req.partition_on {
        require_columns("partition_on", std::slice::from_ref(c))?;
    }
    let (params, mut queries) =
        render_queries(&queries_dir, &config_dir, &req.country, &req.queries)
            .map_err(request_error)?;
    apply_partitioning(
        &mut queries,
        req.partition_on.as_deref(),
        req.partitions,
        "partition_on/partitions",
    )
    .map_err(|e| {
        let field = if req.partition_on.is_some() && req.partitions.is_none() {
            "partition_on"
        } else {
            "partitions"
        };
        ApiError::invalid(field, e.to_string())
    })?;
    for f in &params.files {
        file_inside(&roots.config, f, "config_path")?;
    }
    for q in &queries {
        file_inside(&roots.queries, &q.path, "queries_path")?;
    }
    check_reads(&state, &caller, &queries).await?;
    if let Destination::Volume(root, _) = &destination {
        // The job writes (and with overwrite, replaces) under <root>/<country>.
        let path = VolumePath::parse(&format!("{}/{}", root.0, req.country))
            .map_err(|e| ApiError::invalid("destination", e))?;
        require_volume_write(
            &state,
            &caller,
            &path,
            &format!("extract {} to {}", req.country, req.destination),
        )
        .await?;
    }

    for q in &queries {
        if let Some(spec) = &q.load {
            require_table_load(
                &state,
                &caller,
                &spec.table,
                &format!("query '{}' ({})", q.name, spec.mode.name()),
            )
            .await?;
        }
    }
    let tables = if queries.iter().any(|q| q.load.is_some()) {
        match (&destination, &state.tables) {
            (Destination::Volume(..), Some(t)) => Some(t.clone()),
            (Destination::Volume(..), None) => {
                return Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "this server cannot load tables (no Databricks workspace or SQL warehouse); the queries asked for have load specs",
                ))
            }
            _ => {
                return Err(ApiError::invalid(
                    "destination",
                    "queries with a load spec (<name>.yaml) need a Volume destination (/Volumes/...)",
                ))
            }
        }
    } else {
        None
    };
    let job = ExtractJob {
        tables,
        country: req.country.clone(),
        destination,
        queries,
        overwrite: req.overwrite,
    };
    let record = state
        .runner
        .submit(&caller.user.name, job, &request)
        .map_err(ApiError::internal)?;
    state.audit.record(
        caller
            .event(
                EventType::JobSubmitted,
                &format!("job:{}", record.id),
                "extract",
            )
            .detail(format!("country {} to {}", req.country, req.destination)),
    );
    let url = format!("/jobs/{}", record.id);
    let body = serde_json::to_value(JobAccepted {
        job_id: record.id,
        state: record.state,
        status_url: url.clone(),
    })
    .map_err(ApiError::internal)?;
    Ok(Answer {
        status: StatusCode::ACCEPTED,
        body,
        location: Some(url),
    })
}

fn deny_path(state: &AppState, caller: &Caller, e: &ApiError, requested: &str) {
    if e.status == StatusCode::FORBIDDEN {
        state.audit.record(
            caller
                .event(EventType::PermissionDenied, requested, "read")
                .detail(e.body.message.clone()),
        );
    }
}

fn destination(state: &AppState, caller: &Caller, dest: &str) -> Result<Destination, ApiError> {
    match DestinationPath::parse(dest)
        .map_err(|e| ApiError::invalid("destination", e.to_string()))?
    {
        DestinationPath::Volume(root) => match &state.databricks {
            Ok(ws) => Ok(Destination::Volume(root, ws.clone())),
            Err(why) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                format!("this server cannot write to Volumes: {why}"),
            )
            .details(serde_json::json!({ "field": "destination" }))),
        },
        DestinationPath::Local(p) => {
            let Some(root) = &state.roots.output else {
                return Err(ApiError::invalid(
                    "destination",
                    "this server writes only to Unity Catalog Volumes (/Volumes/...); start it with --output-root to allow local directories",
                ));
            };
            let requested = p.display().to_string();
            new_inside(root, &requested, "destination")
                .inspect_err(|e| deny_path(state, caller, e, &requested))
                .map(Destination::Local)
        }
    }
}

/// Maps what rendering refuses to 422s naming the request field.
pub(super) fn request_error(e: RunError) -> ApiError {
    let field = match &e {
        RunError::Params(ParamError::UnknownCountry { .. }) => "country",
        RunError::Params(_) => "config_path",
        RunError::Queries(QueryError::Unknown { .. }) => "queries",
        RunError::Queries(_) => "queries_path",
        RunError::Render(_) => "config_path",
        _ => "request",
    };
    ApiError::invalid(field, e.to_string())
}

/// Requires `read` on every table each query references, resolved in the
/// database the queries run in; audits each.
async fn check_reads(
    state: &AppState,
    caller: &Caller,
    queries: &[RenderedQuery],
) -> Result<(), ApiError> {
    let mut parsed = Vec::with_capacity(queries.len());
    for q in queries {
        let mut tables = referenced_tables(&q.sql).map_err(|e| {
            ApiError::invalid("queries", format!("query '{}': {e}", q.name))
                .details(serde_json::json!({ "field": "queries", "query": q.name }))
        })?;
        // A change-tracking load reads the changes of its tracked table
        // (CHANGETABLE), which the query itself may not name.
        if let Some(crate::queries::load::LoadSpec {
            mode:
                crate::queries::load::LoadMode::ChangeTracking {
                    tracked_table: Some(t),
                    ..
                },
            file,
            ..
        }) = &q.load
        {
            let name = crate::auth::TableName::parse(t).ok_or_else(|| {
                ApiError::invalid(
                    "queries",
                    format!(
                        "query '{}': {}: tracked_table '{t}' is not [database.]schema.table",
                        q.name,
                        file.display()
                    ),
                )
            })?;
            if !tables.contains(&name) {
                tables.push(name);
            }
        }
        parsed.push((q, tables));
    }
    let database = home_database(state).await?;
    // Every query is checked (and audited), so one refusal names them all.
    let mut refused: Vec<(String, Vec<serde_json::Value>)> = Vec::new();
    for (q, tables) in parsed {
        let context = format!("query '{}'", q.name);
        if let Err(e) = require_tables(state, caller, &tables, false, &database, &context) {
            let names = e
                .body
                .details
                .as_ref()
                .and_then(|d| d.get("tables"))
                .and_then(|t| t.as_array())
                .cloned()
                .unwrap_or_default();
            refused.push((q.name.clone(), names));
        }
    }
    if let Some((first, _)) = refused.first() {
        let all: Vec<serde_json::Value> = refused.iter().flat_map(|(_, t)| t.clone()).collect();
        let per_query: Vec<String> = refused
            .iter()
            .map(|(q, t)| {
                let names: Vec<&str> = t.iter().filter_map(|v| v.as_str()).collect();
                format!("{} (query '{q}')", names.join(", "))
            })
            .collect();
        return Err(ApiError::forbidden(format!(
            "user '{}' may not read {}; names without a database are in {database}",
            caller.user.name,
            per_query.join("; ")
        ))
        .details(serde_json::json!({
            "query": first,
            "tables": all,
            "queries": refused.iter().map(|(q, _)| q).collect::<Vec<_>>(),
        })));
    }
    Ok(())
}
