//! The rights a request needs, checked before anything runs, each decision
//! an audit line: SQL Server tables (names resolved in the bridge's
//! database first), Databricks tables and Volume paths (permissions.yaml or
//! Unity Catalog for the caller's principals). A refusal is a 403 naming the
//! object and the missing right.

use axum::http::StatusCode;

use super::caller::Caller;
use super::error::ApiError;
use super::state::AppState;
use crate::auth::{EventType, LakehouseDenied, LakehouseRights, TableName};
use crate::databricks::names::{UcName, VolumePath};

/// The database names without one are in, or 503 when SQL Server cannot
/// say (nothing is allowed on a guess).
pub async fn home_database(state: &AppState) -> Result<String, ApiError> {
    state.home.name().await.map(str::to_string).map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("cannot learn the bridge's SQL Server database, which names without a database are in: {e}"),
        )
    })
}

/// Requires `read` (or `write`) on every table; audits each; 403 names
/// the refused ones, resolved.
pub fn require_tables(
    state: &AppState,
    caller: &Caller,
    tables: &[TableName],
    write: bool,
    database: &str,
    context: &str,
) -> Result<(), ApiError> {
    let action = if write { "write" } else { "read" };
    let mut refused = Vec::new();
    for t in tables {
        let resolved = t.in_database(database).to_string();
        let ok = if write {
            caller.user.can_write(t, database)
        } else {
            caller.user.can_read(t, database)
        };
        let mut line = caller
            .event(
                if ok {
                    EventType::AuthSuccess
                } else {
                    EventType::PermissionDenied
                },
                &resolved,
                action,
            )
            .detail(context.to_string());
        if !ok {
            line = line.missing(format!("{action} on SQL Server table {resolved}"));
            refused.push(resolved);
        }
        state.audit.record(line);
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "user '{}' may not {action} {} ({context}; names without a database are in {database})",
        caller.user.name,
        refused.join(", "),
    ))
    .details(serde_json::json!({ "tables": refused, "missing": action })))
}

fn lakehouse(state: &AppState) -> Result<&LakehouseRights, ApiError> {
    state.lakehouse.as_deref().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "Databricks is not configured on this server, so its rights cannot be checked",
        )
    })
}

/// Requires the right to have the bridge read a Databricks table.
pub async fn require_databricks_read(
    state: &AppState,
    caller: &Caller,
    table: &UcName,
    context: &str,
) -> Result<(), ApiError> {
    let answer = lakehouse(state)?
        .check_table_read(&caller.user, table)
        .await;
    decide(
        state,
        caller,
        &table.to_string(),
        ("read", "SELECT"),
        context,
        answer,
    )
}

/// Requires the right to have the bridge load a Databricks table (a query's
/// load spec): MODIFY and SELECT on it, or CREATE TABLE on its schema when
/// it does not exist yet.
pub async fn require_table_load(
    state: &AppState,
    caller: &Caller,
    table: &UcName,
    context: &str,
) -> Result<(), ApiError> {
    let rights = lakehouse(state)?;
    let exists = rights.table_exists(table).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            format!("cannot check table {table} in Unity Catalog: {e}"),
        )
    })?;
    let answer = rights.check_table_write(&caller.user, table, exists).await;
    let right = if exists {
        "MODIFY and SELECT"
    } else {
        "CREATE TABLE on its schema"
    };
    decide(
        state,
        caller,
        &table.to_string(),
        ("load", right),
        context,
        answer,
    )
}

/// Requires the right to have the bridge write (and replace) files under
/// a Volume path.
pub async fn require_volume_write(
    state: &AppState,
    caller: &Caller,
    path: &VolumePath,
    context: &str,
) -> Result<(), ApiError> {
    let answer = lakehouse(state)?
        .check_volume_write(&caller.user, path)
        .await;
    decide(
        state,
        caller,
        &path.to_string(),
        ("write", "WRITE VOLUME"),
        context,
        answer,
    )
}

fn decide(
    state: &AppState,
    caller: &Caller,
    object: &str,
    (action, right): (&str, &str),
    context: &str,
    answer: Result<crate::auth::Grounds, LakehouseDenied>,
) -> Result<(), ApiError> {
    match answer {
        Ok(grounds) => {
            state.audit.record(
                caller
                    .event(EventType::AuthSuccess, object, action)
                    .detail(format!("{context}; {grounds}")),
            );
            Ok(())
        }
        Err(LakehouseDenied::Denied { missing, .. }) => {
            state.audit.record(
                caller
                    .event(EventType::PermissionDenied, object, action)
                    .missing(format!("{right} on {object}"))
                    .detail(format!("{context}; {missing}")),
            );
            Err(ApiError::forbidden(format!(
                "user '{}' may not {action} {object} in Databricks ({context}): {missing}",
                caller.user.name
            ))
            .details(serde_json::json!({ "object": object, "missing": action })))
        }
        Err(e @ LakehouseDenied::Unavailable { .. }) => {
            state.audit.record(
                caller
                    .event(EventType::PermissionDenied, object, action)
                    .missing(format!("{right} on {object} (could not be checked)"))
                    .detail(format!("{context}; {e}")),
            );
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                e.to_string(),
            ))
        }
    }
}
