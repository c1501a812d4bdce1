//! POST /sync/events, GET /sync/events/{id}, GET /sync/events: sync events
//! over HTTP. Submitting needs `write` on the target; the event is written
//! to the events table with `requested_by` = the caller, and the poller
//! applies it. A caller sees only its own events.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;

use super::authorize::{home_database, require_databricks_read, require_tables};
use super::caller::Caller;
use super::constraints::require_columns;
use super::error::{ApiError, ErrorBody};
use super::idempotency::{self, Answer, IdempotencyKey};
use super::input::{ApiJson, ApiQuery};
use super::state::AppState;
use crate::auth::EventType;
use crate::databricks::names::UcName;
use crate::sync::event::source_name;
use crate::sync::{
    EventStatus, EventsError, EventsTable, NewEvent, Operation, SyncEvent, TargetTable,
};

/// A sync event to queue: Databricks table → SQL Server table.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitSyncEvent {
    pub operation: Operation,
    /// catalog.schema.table in Databricks (a part with other characters in
    /// backticks).
    #[schema(
        example = "catalog.schema.source_table",
        pattern = r"^(`([^`]|``)*[^\s`]([^`]|``)*`|[\w$#]+)(\.(`([^`]|``)*[^\s`]([^`]|``)*`|[\w$#]+)){2}$"
    )]
    pub source_table: String,
    /// schema.table or database.schema.table in SQL Server (a part with
    /// other characters in [brackets] or "double quotes").
    #[schema(
        example = "dbo.target_table",
        pattern = r#"^(\[([^\]]|\]\])*[^\s\]]([^\]]|\]\])*\]|"([^"]|"")*[^\s"]([^"]|"")*"|[^\s.\[\]"]+)(\.(\[([^\]]|\]\])*[^\s\]]([^\]]|\]\])*\]|"([^"]|"")*[^\s"]([^"]|"")*"|[^\s.\[\]"]+)){1,2}$"#
    )]
    pub target_table: String,
    /// Required (at least one) for UPDATE, DELETE and UPSERT.
    #[serde(default)]
    #[schema(schema_with = super::constraints::key_columns)]
    pub primary_keys: Vec<String>,
    /// Copy only these columns (all of the source's when absent). Row
    /// filters are not accepted over HTTP: nothing a caller sends is run
    /// as SQL.
    #[serde(default)]
    #[schema(schema_with = super::constraints::copied_columns)]
    pub columns: Option<Vec<String>>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SyncEventList {
    pub events: Vec<SyncEvent>,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListSyncEvents {
    /// Only events in this status.
    pub status: Option<EventStatus>,
    /// At most this many, newest first: 1..=500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}

fn events(state: &AppState) -> Result<&EventsTable, ApiError> {
    state.sync.as_ref().map(|(t, _, _)| t).map_err(|why| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("sync events are not available on this server: {why}"),
        )
    })
}

fn upstream(e: EventsError) -> ApiError {
    tracing::error!(error = %e, "events table");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "upstream",
        format!("Databricks did not answer as expected: {e}"),
    )
}

#[utoipa::path(
    post,
    operation_id = "submit_sync_event",
    path = "/sync/events",
    tag = "sync",
    request_body = SubmitSyncEvent,
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = "^[!-~]+$",
            description = "Makes retries safe (draft-ietf-httpapi-idempotency-key-header): a retry with the same key by the same user gets the first answer (the same event) and writes nothing; the key with another request is 422, while its first request is still being processed 409. Kept 24 hours (the server's --idempotency-ttl). 1 to 255 visible ASCII characters, e.g. a UUID; a quoted Structured Field String is unquoted"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Written as pending; the poller applies it (a retry with the same Idempotency-Key gets this answer again)", body = SyncEvent,
            headers(("Location" = String, description = "/sync/events/{event_id}"))),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "No `write` on the target table (resolved in the bridge's database), or no right to read the source in Databricks", body = ErrorBody),
        (status = 409, description = "`idempotency_key_in_use`: the first request with this Idempotency-Key is still being processed; retry after Retry-After", body = ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 422, description = "A field is wrong: table names, keys, columns; or `idempotency_key_reused`: the Idempotency-Key came with a different request", body = ErrorBody),
        (status = 502, description = "Databricks failed", body = ErrorBody),
        (status = 503, description = "Sync is not configured on this server, or a right cannot be checked now", body = ErrorBody),
    )
)]
pub async fn submit_event(
    State(state): State<AppState>,
    caller: Caller,
    IdempotencyKey(key): IdempotencyKey,
    ApiJson(req): ApiJson<SubmitSyncEvent>,
) -> Result<Response, ApiError> {
    let request = serde_json::to_value(&req).map_err(ApiError::internal)?;
    let owner = caller.user.name.clone();
    let event_id = event_id_for(&owner, key.as_deref());
    let work = write_event(state.clone(), caller, req, event_id);
    idempotency::once(&state, &owner, key, "POST /sync/events", &request, work).await
}

/// The id of a submitted event: with an Idempotency-Key, derived from the
/// user and the key, so a retry whose first try wrote the event but lost
/// the answer (the key is then released) writes the same id and finds it
/// instead of adding a second event; without one, random.
fn event_id_for(owner: &str, key: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let Some(key) = key else {
        return uuid::Uuid::new_v4().to_string();
    };
    let digest = Sha256::new()
        .chain_update(b"sync-event\0")
        .chain_update(owner.as_bytes())
        .chain_update([0u8])
        .chain_update(key.as_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    // RFC 9562 version 8 (custom) and variant bits.
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

/// Checks the request and writes the pending event.
async fn write_event(
    state: AppState,
    caller: Caller,
    req: SubmitSyncEvent,
    event_id: String,
) -> Result<Answer, ApiError> {
    source_name(&req.source_table).map_err(|e| ApiError::invalid("source_table", e.0))?;
    let target = TargetTable::parse(&req.target_table)
        .map_err(|e| ApiError::invalid("target_table", e.0))?;
    if req.operation.needs_keys() && req.primary_keys.is_empty() {
        return Err(ApiError::invalid(
            "primary_keys",
            format!("{} needs primary_keys", req.operation.as_str()),
        ));
    }
    require_columns("primary_keys", &req.primary_keys)?;
    if let Some(columns) = &req.columns {
        require_columns("columns", columns)?;
    }
    let database = home_database(&state).await?;
    let context = format!(
        "sync {} from {} into {}",
        req.operation.as_str(),
        req.source_table,
        req.target_table
    );
    require_tables(
        &state,
        &caller,
        &[target.permission_name()],
        true,
        &database,
        &context,
    )?;
    let source = UcName::parse(&req.source_table).ok_or_else(|| {
        ApiError::invalid("source_table", "source_table must be catalog.schema.table")
    })?;
    require_databricks_read(&state, &caller, &source, &context).await?;
    let resource = target.permission_name().in_database(&database).to_string();
    let table = events(&state)?;
    let stored = table
        .insert(&NewEvent {
            event_id,
            operation: req.operation,
            source_table: req.source_table.clone(),
            target_table: req.target_table.clone(),
            primary_keys: req.primary_keys.clone(),
            columns: req.columns.clone(),
            requested_by: caller.user.name.clone(),
        })
        .await
        .map_err(upstream)?;
    state.audit.record(
        caller
            .event(
                EventType::SyncEventSubmitted,
                &resource,
                &req.operation.as_str().to_ascii_lowercase(),
            )
            .detail(format!(
                "event {} from {}",
                stored.event_id, req.source_table
            )),
    );
    let location = format!("/sync/events/{}", stored.event_id);
    Ok(Answer {
        status: StatusCode::ACCEPTED,
        body: serde_json::to_value(&stored).map_err(ApiError::internal)?,
        location: Some(location),
    })
}

#[utoipa::path(
    get,
    operation_id = "get_sync_event",
    path = "/sync/events/{event_id}",
    tag = "sync",
    params(("event_id" = String, Path, description = "The id POST /sync/events returned")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The event: status, rows_expected, rows_affected, discrepancy, error_message", body = SyncEvent),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "No such event for this caller", body = ErrorBody),
        (status = 502, description = "Databricks failed", body = ErrorBody),
        (status = 503, description = "Sync is not configured on this server", body = ErrorBody),
    )
)]
pub async fn get_event(
    State(state): State<AppState>,
    caller: Caller,
    Path(event_id): Path<String>,
) -> Result<Json<SyncEvent>, ApiError> {
    let not_found = || ApiError::not_found(format!("no sync event {event_id}"));
    let Some(e) = events(&state)?.get(&event_id).await.map_err(upstream)? else {
        return Err(not_found());
    };
    match the_callers(&state, &caller, vec![e]).await?.pop() {
        Some(e) => Ok(Json(e)),
        None => {
            state.audit.record(
                caller
                    .event(
                        EventType::PermissionDenied,
                        &format!("sync_event:{event_id}"),
                        "read",
                    )
                    .detail("the event was not written by or for this user (or who wrote it can no longer be proven)"),
            );
            Err(not_found())
        }
    }
}

#[utoipa::path(
    get,
    operation_id = "list_sync_events",
    path = "/sync/events",
    tag = "sync",
    params(ListSyncEvents),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's events, newest first", body = SyncEventList),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "A bad filter or limit", body = ErrorBody),
        (status = 502, description = "Databricks failed", body = ErrorBody),
        (status = 503, description = "Sync is not configured on this server", body = ErrorBody),
    )
)]
pub async fn list_events(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListSyncEvents>,
) -> Result<Json<SyncEventList>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    let events = events(&state)?
        .list(Some(&caller.user.name), q.status, limit as usize)
        .await
        .map_err(upstream)?;
    let events = the_callers(&state, &caller, events).await?;
    Ok(Json(SyncEventList { events }))
}

/// The events the caller asked for, told by who wrote each — a bridge
/// writing for the caller (`POST /sync/events`), or a Databricks principal
/// that acts for the caller — never by `requested_by` alone, which anyone
/// who may insert into the events table can fill in. An event whose writer
/// can no longer be proven (its insert is older than the change data the
/// table keeps) is left out.
async fn the_callers(
    state: &AppState,
    caller: &Caller,
    events: Vec<SyncEvent>,
) -> Result<Vec<SyncEvent>, ApiError> {
    let Ok((table, _, writers)) = &state.sync else {
        return Ok(Vec::new());
    };
    let me = writers.me().await.map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "upstream",
            format!("Databricks did not answer as expected: {e}"),
        )
    })?;
    let me = me.to_string();
    let is_bridge =
        |p: &str| p.trim().eq_ignore_ascii_case(&me) || state.permissions.is_bridge_principal(p);
    let proven = writers
        .writers(table, &events, is_bridge)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "upstream",
                format!("Databricks did not answer as expected: {e}"),
            )
        })?;
    Ok(events
        .into_iter()
        .zip(proven)
        .filter(|(e, writer)| match writer {
            Ok(w) if is_bridge(w) => e.requested_by.as_deref() == Some(caller.user.name.as_str()),
            Ok(w) => state
                .permissions
                .users_of_principal(w)
                .iter()
                .any(|u| u.name == caller.user.name),
            Err(_) => false,
        })
        .map(|(e, _)| e)
        .collect())
}
