//! POST /spark/writes, /spark/writes/commit, /spark/writes/abort: a Spark
//! job's distributed write (the data source's `bridge_url` option),
//! governed as a sync event is. The job's driver asks the server to open
//! the write's run, then to apply the stages its tasks loaded, or to abort
//! the run. Each call needs `write` on the target for the token's user
//! (the name resolved in the bridge's database first) and is audited; the
//! user's `max_delete_rows` caps a DELETE; the server applies the stages
//! with its own SQL Server login, so executors need only the right to make
//! stage tables. A user's write ids are scoped to the user
//! ([`scoped_write_id`]): nobody else can make a write a no-op or abort its
//! run. Each call is idempotent (a run opened twice is one run; a write
//! applied is found in the ledger; an abort drops what is left), so clients
//! retry them without a key.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::authorize::{home_database, require_tables};
use super::caller::Caller;
use super::constraints::{require_columns, require_not_blank, SPARK_TYPE_MAX};
use super::error::{ApiError, ErrorBody};
use super::input::ApiJson;
use super::state::AppState;
use crate::auth::EventType;
use crate::operator::DEFAULT_MAX_DELETE_ROWS;
use crate::sync::staged::{
    check_run_id, check_stage_schema, scoped_write_id, StagedWrite, WriteRequest,
};
use crate::sync::{Operation, SyncError, TargetTable};

/// A distributed write, as the job's driver describes it on each call.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparkWrite {
    /// The job's id for the write (a job run's, say): once applied under
    /// it, never again. The server applies it under the caller's scope
    /// ([`SparkRun::write_id`]).
    #[schema(
        min_length = 1,
        max_length = 78,
        pattern = r"^[A-Za-z0-9._:-]+$",
        example = "ventas-nightly-2026-12-07"
    )]
    pub write_id: String,
    /// This run of the write (a re-run of the job draws another): the
    /// tasks' stage tables are named by it.
    #[schema(
        min_length = 1,
        max_length = 32,
        pattern = r"^[a-z0-9]+$",
        example = "3f9a0c2b7d1e"
    )]
    pub run_id: String,
    pub operation: Operation,
    #[schema(schema_with = super::constraints::sql_table)]
    pub target_table: String,
    /// Required (at least one) for UPDATE, DELETE and UPSERT.
    #[serde(default)]
    #[schema(schema_with = super::constraints::key_columns)]
    pub primary_keys: Vec<String>,
    /// The DataFrame's columns, as the tasks stage them.
    #[schema(min_items = 1)]
    pub columns: Vec<SparkColumn>,
    /// The schema of the stage tables, in the target's database (`dbo`
    /// when absent).
    #[serde(default)]
    #[schema(schema_with = stage_schema)]
    pub stage_schema: Option<String>,
    /// The most rows a DELETE may remove: the smaller of this (10,000
    /// when absent) and the user's `max_delete_rows` for the target in
    /// permissions.yaml.
    #[serde(default, deserialize_with = "super::constraints::whole_u64_or_none")]
    pub max_delete_rows: Option<u64>,
    /// Bulk loads into the stages take a table lock.
    #[serde(default)]
    pub table_lock: bool,
}

fn stage_schema() -> impl Into<utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>> {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .min_length(Some(1))
        .max_length(Some(128))
        .pattern(Some(r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"))
        .description(Some("The schema of the stage tables, in the target's database (dbo when absent)."))
}

/// A column of the DataFrame.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparkColumn {
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = "^[^`\\[\\]\"';\\u0000-\\u001f\\u007f-\\u009f]*[^\\s`\\[\\]\"';\\u0000-\\u001f\\u007f-\\u009f][^`\\[\\]\"';\\u0000-\\u001f\\u007f-\\u009f]*$",
        example = "amount"
    )]
    pub name: String,
    #[schema(schema_with = super::constraints::spark_type)]
    pub spark_type: String,
}

/// The write's run, open: what its tasks stage under.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SparkRun {
    /// The id the write is staged and applied under: the caller's, in the
    /// caller's scope. Tasks name their stage tables by it.
    pub write_id: String,
    pub run_id: String,
    /// The target, resolved: `[database].[schema].[table]`.
    pub target_table: String,
    /// The DELETE cap the commit holds to.
    pub max_delete_rows: u64,
}

/// A stage table a task loaded, as its commit message reports it.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparkStage {
    /// The stage table's name (`bridge_stage_<write>_<run>_p<partition>_a<attempt>`).
    #[schema(
        min_length = 1,
        max_length = 128,
        example = "bridge_stage_0123456789abcdef_3f9a0c2b7d1e_p0_a4"
    )]
    pub table: String,
    #[serde(deserialize_with = "super::constraints::whole_u64")]
    pub rows: u64,
}

/// The stages to apply, once.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SparkCommit {
    pub write: SparkWrite,
    /// The stages the tasks reported (a retried or speculative task's
    /// other stage is not among them).
    pub stages: Vec<SparkStage>,
}

/// What the commit did.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SparkCommitted {
    pub write_id: String,
    /// Rows in the reported stages.
    pub rows_read: u64,
    /// Rows SQL Server reports inserted, updated, deleted or merged.
    pub rows_affected: u64,
    /// The write was applied before (a re-run, or an answer lost): not again.
    pub from_ledger: bool,
}

/// What the abort dropped.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SparkAborted {
    pub write_id: String,
    pub stages_dropped: u64,
}

/// A write checked and authorized: planned against the target as the
/// server sees it.
struct Authorized {
    write: StagedWrite,
    /// The write id in the caller's scope.
    scoped: String,
    /// The target resolved, as the audit names it.
    resource: String,
    cap: u64,
}

/// Checks the request's fields, then `write` on the target for the caller
/// (audited), then plans the write under the caller's scope.
async fn authorize(
    state: &AppState,
    caller: &Caller,
    w: &SparkWrite,
    step: &str,
) -> Result<Authorized, ApiError> {
    let scoped = scoped_write_id(&caller.user.name, &w.write_id)
        .map_err(|e| ApiError::invalid("write_id", e))?;
    check_run_id(&w.run_id).map_err(|e| ApiError::invalid("run_id", e))?;
    let target =
        TargetTable::parse(&w.target_table).map_err(|e| ApiError::invalid("target_table", e.0))?;
    if w.operation.needs_keys() && w.primary_keys.is_empty() {
        return Err(ApiError::invalid(
            "primary_keys",
            format!("{} needs primary_keys", w.operation.as_str()),
        ));
    }
    require_columns("primary_keys", &w.primary_keys)?;
    if w.columns.is_empty() {
        return Err(ApiError::invalid("columns", "columns is empty"));
    }
    let names: Vec<String> = w.columns.iter().map(|c| c.name.clone()).collect();
    require_columns("columns", &names)?;
    for c in &w.columns {
        require_not_blank("spark_type", &c.spark_type)?;
        if c.spark_type.chars().count() > SPARK_TYPE_MAX {
            return Err(ApiError::invalid(
                "spark_type",
                format!(
                    "spark_type of {} is longer than {SPARK_TYPE_MAX} characters",
                    c.name
                ),
            ));
        }
    }
    if let Some(s) = &w.stage_schema {
        check_stage_schema(s).map_err(|e| ApiError::invalid("stage_schema", e))?;
    }
    let database = home_database(state).await?;
    let context = format!(
        "spark write {} into {} ({step} of write {})",
        w.operation.as_str(),
        w.target_table,
        w.write_id
    );
    let name = target.permission_name();
    require_tables(
        state,
        caller,
        std::slice::from_ref(&name),
        true,
        &database,
        &context,
    )?;
    let resource = name.in_database(&database).to_string();
    let cap = w.max_delete_rows.unwrap_or(DEFAULT_MAX_DELETE_ROWS).min(
        caller
            .user
            .max_delete_rows(&name, &database)
            .unwrap_or(u64::MAX),
    );
    // Pinned to the database it was checked in, whatever the login's
    // default database is.
    let resolved = TargetTable {
        database: Some(target.database.clone().unwrap_or(database)),
        ..target
    };
    let columns: Vec<(String, String)> = w
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.spark_type.clone()))
        .collect();
    let request = WriteRequest {
        write_id: &scoped,
        operation: w.operation.as_str(),
        target_table: &resolved.quoted(),
        primary_keys: &w.primary_keys,
        columns: &columns,
        max_delete_rows: Some(cap),
        table_lock: w.table_lock,
        applied_by: &caller.user.name,
        run: &w.run_id,
        stage_schema: w.stage_schema.as_deref(),
    };
    let write = StagedWrite::plan(state.runner.pool(), &request)
        .await
        .map_err(|e| refused(state, caller, &resource, w, e))?;
    Ok(Authorized {
        write,
        scoped,
        resource,
        cap,
    })
}

/// A step done, audited: what happened to the write and its run.
fn record(
    state: &AppState,
    caller: &Caller,
    kind: EventType,
    a: &Authorized,
    w: &SparkWrite,
    what: &str,
) {
    state.audit.record(
        caller
            .event(
                kind,
                &a.resource,
                &w.operation.as_str().to_ascii_lowercase(),
            )
            .detail(format!("write {} run {}{what}", a.scoped, w.run_id)),
    );
}

/// A failed step, audited: 409 when the write cannot be applied to the
/// target as it is (a column it lacks, a DELETE above the cap; nothing was
/// written) — the request itself is well formed —, 502 when SQL Server
/// failed.
fn refused(
    state: &AppState,
    caller: &Caller,
    resource: &str,
    w: &SparkWrite,
    e: SyncError,
) -> ApiError {
    let action = w.operation.as_str().to_ascii_lowercase();
    // The exactly-once loop turns a refusal inside the transaction (a
    // DELETE above the cap) into `Refused`.
    let refusal = matches!(e, SyncError::Refused(_) | SyncError::Unauthorized { .. });
    let (kind, status, code) = if refusal {
        (
            EventType::SparkWriteRefused,
            StatusCode::CONFLICT,
            "conflict",
        )
    } else {
        (
            EventType::SparkWriteFailed,
            StatusCode::BAD_GATEWAY,
            "upstream",
        )
    };
    state.audit.record(
        caller
            .event(kind, resource, &action)
            .detail(format!("write {} run {}: {e}", w.write_id, w.run_id)),
    );
    if !refusal {
        tracing::error!(write = w.write_id, error = %e, "spark write");
    }
    ApiError::new(status, code, format!("write {}: {e}", w.write_id))
}

#[utoipa::path(
    post,
    operation_id = "open_spark_write",
    path = "/spark/writes",
    tag = "spark",
    request_body = SparkWrite,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The run is open: its tasks may stage until it is committed or aborted (opened again, the same run)", body = SparkRun),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "No `write` on the target table (resolved in the bridge's database)", body = ErrorBody),
        (status = 409, description = "The write cannot be applied to the target as it is: a column it lacks, a type that would lose values, keys not among the columns, no such stage schema, the run id open for another write", body = ErrorBody),
        (status = 422, description = "A field is wrong", body = ErrorBody),
        (status = 502, description = "SQL Server failed", body = ErrorBody),
        (status = 503, description = "The bridge's database cannot be learned now", body = ErrorBody),
    )
)]
pub async fn open_write(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(w): ApiJson<SparkWrite>,
) -> Result<(StatusCode, Json<SparkRun>), ApiError> {
    let a = authorize(&state, &caller, &w, "open").await?;
    a.write
        .open(state.runner.pool())
        .await
        .map_err(|e| refused(&state, &caller, &a.resource, &w, e))?;
    let what = format!(" ({} columns)", w.columns.len());
    record(&state, &caller, EventType::SparkWriteOpened, &a, &w, &what);
    Ok((
        StatusCode::CREATED,
        Json(SparkRun {
            write_id: a.scoped,
            run_id: w.run_id.clone(),
            target_table: a.write.plan.target.quoted(),
            max_delete_rows: a.cap,
        }),
    ))
}

#[utoipa::path(
    post,
    operation_id = "commit_spark_write",
    path = "/spark/writes/commit",
    tag = "spark",
    request_body = SparkCommit,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Applied in one transaction with the write's ledger row, or found applied before (from_ledger); every stage of the write is dropped", body = SparkCommitted),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "No `write` on the target table (resolved in the bridge's database)", body = ErrorBody),
        (status = 409, description = "Refused, nothing written: the write does not fit the target as it is, a stage is not one of this write's run, or a DELETE above max_delete_rows", body = ErrorBody),
        (status = 422, description = "A field is wrong", body = ErrorBody),
        (status = 502, description = "SQL Server failed; nothing was written (the ledger says so to a retry)", body = ErrorBody),
        (status = 503, description = "The bridge's database cannot be learned now", body = ErrorBody),
    )
)]
pub async fn commit_write(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(c): ApiJson<SparkCommit>,
) -> Result<Json<SparkCommitted>, ApiError> {
    let w = &c.write;
    let a = authorize(&state, &caller, w, "commit").await?;
    let stages = c
        .stages
        .iter()
        .map(|s| a.write.stage_ref(&s.table, s.rows))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| refused(&state, &caller, &a.resource, w, e))?;
    let out = a
        .write
        .commit(state.runner.pool(), state.runner.retry(), &stages)
        .await
        .map_err(|e| refused(&state, &caller, &a.resource, w, e))?;
    let what = format!(
        ": {} stage(s), {} rows read, {} affected{}",
        stages.len(),
        out.rows_expected,
        out.rows_affected,
        if out.from_ledger {
            " (applied before: from the ledger)"
        } else {
            ""
        }
    );
    record(
        &state,
        &caller,
        EventType::SparkWriteCommitted,
        &a,
        w,
        &what,
    );
    Ok(Json(SparkCommitted {
        write_id: a.scoped,
        rows_read: out.rows_expected,
        rows_affected: out.rows_affected,
        from_ledger: out.from_ledger,
    }))
}

#[utoipa::path(
    post,
    operation_id = "abort_spark_write",
    path = "/spark/writes/abort",
    tag = "spark",
    request_body = SparkWrite,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The run is closed (a task of it still running stages nothing after) and its stage tables dropped", body = SparkAborted),
        (status = 400, description = "Malformed JSON", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "No `write` on the target table (resolved in the bridge's database)", body = ErrorBody),
        (status = 409, description = "The write does not fit the target as it is (as the open would have said)", body = ErrorBody),
        (status = 422, description = "A field is wrong", body = ErrorBody),
        (status = 502, description = "SQL Server failed", body = ErrorBody),
        (status = 503, description = "The bridge's database cannot be learned now", body = ErrorBody),
    )
)]
pub async fn abort_write(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(w): ApiJson<SparkWrite>,
) -> Result<Json<SparkAborted>, ApiError> {
    let a = authorize(&state, &caller, &w, "abort").await?;
    let dropped = a
        .write
        .abort(state.runner.pool())
        .await
        .map_err(|e| refused(&state, &caller, &a.resource, &w, e))?;
    let what = format!(": {dropped} stage table(s) dropped");
    record(&state, &caller, EventType::SparkWriteAborted, &a, &w, &what);
    Ok(Json(SparkAborted {
        write_id: a.scoped,
        stages_dropped: dropped,
    }))
}
