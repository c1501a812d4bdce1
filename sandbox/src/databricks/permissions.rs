//! Unity Catalog's grants API: the privileges granted on a securable
//! (`GET` and `PATCH /api/2.1/unity-catalog/permissions/{securable_type}/{full_name}`,
//! https://docs.databricks.com/api/workspace/grants/get and .../grants/update)
//! and those in effect, inherited ones included
//! (`GET /api/2.1/unity-catalog/effective-permissions/...`,
//! https://docs.databricks.com/api/workspace/grants/geteffective). The same
//! grants SQL's GRANT, REVOKE and SHOW GRANTS read and write.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::sql::catalog;
use super::sql::grants::{self, Access, Caller};
use super::sql::privileges::{self, Securable, SecurableType};
use super::sql::SqlError;
use super::unity::with_conn;
use super::Shared;

/// Server page length of permission lists (the reference calls it "a
/// server configured value").
const PAGE_LENGTH: usize = 1_000;
/// Below this a positive `max_results` is refused, so a page always holds
/// one complete assignment (the get and geteffective references).
const MIN_MAX_RESULTS: i64 = 150;

fn securable(ty: &str, full_name: &str) -> Result<Securable, ApiError> {
    let t = SecurableType::parse(ty)
        .filter(|_| !ty.eq_ignore_ascii_case("database"))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid securable type '{ty}': the sandbox has catalog, schema, table and volume."
            ))
        })?;
    Securable::parse(t, full_name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid {} full name '{full_name}'.",
            t.name().to_lowercase()
        ))
    })
}

/// The page length `max_results` asks for; `None` returns everything.
fn page_length(q: &HashMap<String, String>) -> Result<Option<usize>, ApiError> {
    let Some(raw) = q.get("max_results") else {
        return Ok(None);
    };
    let n: i64 = raw
        .parse()
        .map_err(|_| ApiError::bad_request(format!("Invalid max_results '{raw}'.")))?;
    match n {
        n if n < 0 => Err(ApiError::bad_request("max_results must be at least 0.")),
        0 => Ok(Some(PAGE_LENGTH)),
        n if n < MIN_MAX_RESULTS => Err(ApiError::bad_request(format!(
            "max_results must be 0 or at least {MIN_MAX_RESULTS}."
        ))),
        n => Ok(Some((n as usize).min(PAGE_LENGTH))),
    }
}

/// One page of assignments (sorted by principal); the token is the hex of
/// the last principal returned.
fn page(items: Vec<(String, Value)>, q: &HashMap<String, String>) -> Result<Value, ApiError> {
    let len = page_length(q)?;
    let after = match q.get("page_token").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => Some(
            (0..t.len())
                .step_by(2)
                .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
                .collect::<Option<Vec<u8>>>()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| ApiError::bad_request("Invalid page_token."))?,
        ),
    };
    let mut rest: Vec<(String, Value)> = items
        .into_iter()
        .filter(|(p, _)| {
            after
                .as_deref()
                .is_none_or(|a| p.to_lowercase().as_str() > a)
        })
        .collect();
    let mut out = json!({});
    if let Some(len) = len {
        if rest.len() > len {
            rest.truncate(len);
            if let Some((last, _)) = rest.last() {
                out["next_page_token"] = json!(last
                    .to_lowercase()
                    .bytes()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>());
            }
        }
    }
    out["privilege_assignments"] = Value::Array(rest.into_iter().map(|(_, v)| v).collect());
    Ok(out)
}

fn direct_json(list: Vec<(String, Vec<String>)>) -> Vec<(String, Value)> {
    list.into_iter()
        .map(|(p, privs)| {
            let v = json!({ "principal": p, "privileges": privs });
            (p, v)
        })
        .collect()
}

/// Runs a check-then-act on the catalog: the object must exist (404 as
/// Unity Catalog names it) and the caller must pass `check`.
async fn on_securable<T: Send + 'static>(
    shared: &Arc<Shared>,
    caller: Caller,
    sec: Securable,
    act: impl FnOnce(&rusqlite::Connection, &Access<'_>, &Securable) -> Result<T, SqlError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    with_conn(shared, move |conn| {
        if !catalog::exists(conn, &sec)? {
            return Err(catalog::not_found(&sec));
        }
        let access = Access {
            conn,
            caller: &caller,
        };
        act(conn, &access, &sec)
    })
    .await
}

/// `GET .../permissions/{securable_type}/{full_name}`: the privileges
/// granted on the object itself (not inherited ones).
pub async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((ty, full_name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let sec = securable(&ty, &full_name)?;
    page_length(&q)?;
    let principal = q.get("principal").cloned();
    let list = on_securable(&shared, caller, sec, move |conn, access, sec| {
        access.read_grants(sec, principal.as_deref())?;
        grants::direct(conn, sec, principal.as_deref())
    })
    .await?;
    Ok(Json(page(direct_json(list), &q)?).into_response())
}

#[derive(Deserialize)]
struct Change {
    principal: Option<String>,
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
}

#[derive(Deserialize)]
struct UpdateBody {
    #[serde(default)]
    changes: Vec<Change>,
    #[serde(default)]
    omit_permissions_in_response: bool,
}

/// `PATCH .../permissions/{securable_type}/{full_name}`: adds and removes
/// privileges (all checked first, so a bad one changes nothing); answers
/// with the object's assignments unless `omit_permissions_in_response`.
pub async fn update(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((ty, full_name)): Path<(String, String)>,
    body: String,
) -> Result<Response, ApiError> {
    let sec = securable(&ty, &full_name)?;
    let b: UpdateBody = serde_json::from_str(&body).map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            format!("Invalid JSON body: {e}"),
        )
    })?;
    let mut changes = Vec::new();
    for c in b.changes {
        let principal = c
            .principal
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ApiError::bad_request("principal is required in every change."))?;
        let mut add = Vec::new();
        for p in &c.add {
            add.push(privileges::validate(p, &sec).map_err(|e| ApiError::bad_request(e.detail()))?);
        }
        let mut remove = Vec::new();
        for p in &c.remove {
            remove.push(
                privileges::validate(p, &sec).map_err(|e| ApiError::bad_request(e.detail()))?,
            );
        }
        changes.push((principal, add, remove));
    }
    let omit = b.omit_permissions_in_response;
    let list = on_securable(&shared, caller, sec, move |conn, access, sec| {
        access.manage(sec)?;
        conn.execute_batch("SAVEPOINT dbx_grants")
            .map_err(SqlError::internal)?;
        let applied = (|| {
            for (principal, add, remove) in &changes {
                for p in add {
                    grants::grant(conn, sec, principal, p)?;
                }
                for p in remove {
                    grants::revoke(conn, sec, principal, p)?;
                }
            }
            grants::direct(conn, sec, None)
        })();
        let end = if applied.is_ok() {
            "RELEASE dbx_grants"
        } else {
            "ROLLBACK TO dbx_grants; RELEASE dbx_grants"
        };
        conn.execute_batch(end).map_err(SqlError::internal)?;
        applied
    })
    .await?;
    if omit {
        return Ok(Json(json!({})).into_response());
    }
    Ok(Json(page(direct_json(list), &HashMap::new())?).into_response())
}

/// `GET .../effective-permissions/{securable_type}/{full_name}`: the
/// privileges in effect on the object, each inherited one naming the
/// catalog or schema it comes from (`inherited_from_type`,
/// `inherited_from_name`; both omitted for a privilege on the object itself).
pub async fn get_effective(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path((ty, full_name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let sec = securable(&ty, &full_name)?;
    page_length(&q)?;
    let principal = q.get("principal").cloned();
    let list = on_securable(&shared, caller, sec, move |conn, access, sec| {
        access.read_grants(sec, principal.as_deref())?;
        grants::effective(conn, sec, principal.as_deref())
    })
    .await?;
    let items = list
        .into_iter()
        .map(|(p, privs)| {
            let privileges: Vec<Value> = privs
                .into_iter()
                .map(|e| {
                    let mut v = json!({ "privilege": e.privilege });
                    if let Some(from) = e.inherited_from {
                        v["inherited_from_type"] = json!(from.ty.name());
                        v["inherited_from_name"] = json!(from.full_name);
                    }
                    v
                })
                .collect();
            let v = json!({ "principal": p, "privileges": privileges });
            (p, v)
        })
        .collect();
    Ok(Json(page(items, &q)?).into_response())
}
