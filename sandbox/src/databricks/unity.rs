//! Unity Catalog REST endpoints the bridge uses (catalogs, schemas, volumes:
//! create, get, list, delete; tables: get, list) and SQL warehouses (list,
//! get). Shapes from https://docs.databricks.com/api/workspace/catalogs,
//! .../schemas, .../volumes, .../tables and .../warehouses. Objects carry
//! their owner; a caller sees only what its privileges let it see (a GET
//! of anything else is 403 PERMISSION_DENIED, a list leaves it out), and
//! creating or deleting takes what the same SQL statement takes.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::sql::catalog::{self, CatalogInfo, FullName, SchemaInfo, TableInfo, VolumeInfo};
use super::sql::drops;
use super::sql::grants::{Access, Caller};
use super::sql::privileges::{self, Securable};
use super::sql::types::DbxType;
use super::Shared;
use axum::Extension;

/// Creator of the SQL warehouse.
const OWNER: &str = "sandbox@example.com";
/// Server page length of volume lists (10000, as the volumes list reference
/// states: https://docs.databricks.com/api/workspace/volumes/list).
const VOLUMES_PAGE_LENGTH: usize = 10_000;
/// Server page length of catalog, schema and table lists (the reference
/// calls it "a server configured value" without giving it).
const DEFAULT_PAGE_LENGTH: usize = 1_000;
const METASTORE: &str = "00000000-0000-0000-0000-0000000000aa";

/// How an unset `max_results` behaves: catalogs, schemas and tables return
/// everything in one response ("not recommended"); volumes use the server
/// page length.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Unset {
    All,
    Paged,
}

/// One page of a Unity Catalog list, per the `max_results` / `page_token`
/// rules of the list references
/// (https://docs.databricks.com/api/workspace/catalogs/list and the schemas,
/// volumes and tables pages): 0 means the server page length, a positive
/// value the smaller of it and the server's, a negative one is an error.
/// Items come sorted by name; the token names the last one returned, so a
/// concurrent create or delete neither repeats nor skips an item.
fn paginate(
    items: Vec<Value>,
    q: &HashMap<String, String>,
    unset: Unset,
    server_len: usize,
) -> Result<(Vec<Value>, Option<String>), ApiError> {
    let max = match q.get("max_results") {
        None => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| ApiError::bad_request(format!("Invalid max_results '{v}'.")))?,
        ),
    };
    let len = match max {
        Some(n) if n < 0 => {
            return Err(ApiError::bad_request("max_results must be at least 0."));
        }
        Some(0) => server_len,
        Some(n) => usize::try_from(n).unwrap_or(usize::MAX).min(server_len),
        None if unset == Unset::Paged => server_len,
        None => usize::MAX,
    };
    let after = match q.get("page_token").filter(|t| !t.is_empty()) {
        None => None,
        Some(t) => {
            Some(decode_token(t).ok_or_else(|| ApiError::bad_request("Invalid page_token."))?)
        }
    };
    let key = |v: &Value| {
        v.get("full_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let mut rest: Vec<Value> = items
        .into_iter()
        .filter(|v| after.as_deref().is_none_or(|a| key(v).as_str() > a))
        .collect();
    rest.sort_by_key(|v| key(v));
    if rest.len() <= len {
        return Ok((rest, None));
    }
    rest.truncate(len);
    let token = rest.last().map(|v| encode_token(&key(v)));
    Ok((rest, token))
}

/// Page tokens are opaque to clients: the hex of the last full name.
fn encode_token(last: &str) -> String {
    last.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_token(t: &str) -> Option<String> {
    if !t.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..t.len())
        .step_by(2)
        .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// `{key: page}` plus `next_page_token` when more remain.
fn page_json(key: &str, page: Vec<Value>, next: Option<String>) -> Response {
    let mut out = json!({ key: page });
    if let Some(t) = next {
        out["next_page_token"] = json!(t);
    }
    Json(out).into_response()
}

fn catalog_json(c: &CatalogInfo) -> Value {
    json!({
        "name": c.name,
        "full_name": c.name,
        "comment": c.comment,
        "owner": c.owner,
        "catalog_type": "MANAGED_CATALOG",
        "securable_type": "CATALOG",
        "metastore_id": METASTORE,
        "id": c.id,
        "created_at": c.created_at,
        "updated_at": c.created_at,
        "created_by": c.owner,
    })
}

fn schema_json(s: &SchemaInfo) -> Value {
    json!({
        "name": s.name,
        "catalog_name": s.catalog,
        "full_name": format!("{}.{}", s.catalog, s.name),
        "comment": s.comment,
        "owner": s.owner,
        "schema_id": s.id,
        "metastore_id": METASTORE,
        "created_at": s.created_at,
        "updated_at": s.created_at,
        "created_by": s.owner,
    })
}

fn volume_json(v: &VolumeInfo) -> Value {
    json!({
        "name": v.name.name,
        "catalog_name": v.name.catalog,
        "schema_name": v.name.schema,
        "full_name": v.name.dotted(),
        "volume_type": v.volume_type,
        "volume_id": v.id,
        "comment": v.comment,
        "owner": v.owner,
        "metastore_id": METASTORE,
        "storage_location": format!("sandbox://volumes/{}/{}/{}", v.name.catalog, v.name.schema, v.name.name),
        "created_at": v.created_at,
        "updated_at": v.created_at,
        "created_by": v.owner,
    })
}

/// Spark's JSON name of a type (`long`, `decimal(18,4)`, array objects).
fn spark_json_type(t: &DbxType) -> Value {
    match t {
        DbxType::Array(e) => json!({
            "type": "array",
            "elementType": spark_json_type(e),
            "containsNull": true,
        }),
        DbxType::Map(k, v) => json!({
            "type": "map",
            "keyType": spark_json_type(k),
            "valueType": spark_json_type(v),
            "valueContainsNull": true,
        }),
        DbxType::Boolean => json!("boolean"),
        DbxType::Byte => json!("byte"),
        DbxType::Short => json!("short"),
        DbxType::Int => json!("integer"),
        DbxType::Long => json!("long"),
        DbxType::Float => json!("float"),
        DbxType::Double => json!("double"),
        DbxType::Decimal { precision, scale } => json!(format!("decimal({precision},{scale})")),
        DbxType::String => json!("string"),
        DbxType::Binary => json!("binary"),
        DbxType::Date => json!("date"),
        DbxType::Timestamp => json!("timestamp"),
        DbxType::TimestampNtz => json!("timestamp_ntz"),
        DbxType::Void => json!("void"),
    }
}

fn table_json(t: &TableInfo) -> Value {
    let columns: Vec<Value> = t
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut v = json!({
                "name": c.name,
                "type_text": c.ty.to_string().to_lowercase(),
                "type_name": c.ty.type_name(),
                "type_json": json!({
                    "name": c.name,
                    "type": spark_json_type(&c.ty),
                    "nullable": c.nullable,
                    "metadata": {},
                }).to_string(),
                "position": i,
                "nullable": c.nullable,
                "comment": c.comment,
            });
            if let DbxType::Decimal { precision, scale } = c.ty {
                v["type_precision"] = json!(precision);
                v["type_scale"] = json!(scale);
            } else {
                v["type_precision"] = json!(0);
                v["type_scale"] = json!(0);
            }
            v
        })
        .collect();
    json!({
        "name": t.name.name,
        "catalog_name": t.name.catalog,
        "schema_name": t.name.schema,
        "full_name": t.name.dotted(),
        "table_type": "MANAGED",
        "data_source_format": "DELTA",
        "columns": columns,
        "comment": t.comment,
        "owner": t.owner,
        "table_id": t.id,
        "metastore_id": METASTORE,
        "storage_location": format!("sandbox://tables/{}", t.name.dotted()),
        "created_at": t.created_at,
        "updated_at": t.created_at,
        "created_by": t.owner,
    })
}

fn parse_body(body: &str) -> Result<Value, ApiError> {
    serde_json::from_str(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "MALFORMED_REQUEST",
            format!("Invalid JSON body: {e}"),
        )
    })
}

fn field<'a>(v: &'a Value, name: &str) -> Result<&'a str, ApiError> {
    v.get(name)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ApiError::bad_request(format!("{name} is required")))
}

/// Runs a catalog call on a blocking thread (the catalog shares the SQL
/// engine's lock, which a long statement may hold).
pub(crate) async fn with_conn<T: Send + 'static>(
    shared: &Arc<Shared>,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, super::sql::SqlError> + Send + 'static,
) -> Result<T, ApiError> {
    let sh = shared.clone();
    tokio::task::spawn_blocking(move || {
        let conn = sh.engine.lock();
        f(&conn)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(ApiError::from_catalog)
}

fn full3(name: &str, what: &str) -> Result<FullName, ApiError> {
    FullName::parse(name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid {what} full name '{name}': expected catalog.schema.name"
        ))
    })
}

fn full2(name: &str) -> Result<(String, String), ApiError> {
    match name.split_once('.') {
        Some((c, s)) if !c.is_empty() && !s.is_empty() && !s.contains('.') => {
            Ok((c.to_string(), s.to_string()))
        }
        _ => Err(ApiError::bad_request(format!(
            "Invalid schema full name '{name}': expected catalog.schema"
        ))),
    }
}

// ---- access

/// Keeps the objects the caller may see (a list leaves the others out).
fn visible<T>(
    conn: &rusqlite::Connection,
    caller: &Caller,
    items: Vec<T>,
    securable: impl Fn(&T) -> Securable,
) -> Vec<T> {
    let access = Access { conn, caller };
    items
        .into_iter()
        .filter(|i| access.see(&securable(i)).is_ok())
        .collect()
}

/// The object must exist (404) and be visible to the caller (403).
fn must_see(
    conn: &rusqlite::Connection,
    caller: &Caller,
    sec: &Securable,
) -> Result<(), super::sql::SqlError> {
    if !catalog::exists(conn, sec)? {
        return Err(catalog::not_found(sec));
    }
    Access { conn, caller }.see(sec)
}

/// Deleting an existing object takes ownership (of it or a container) or
/// MANAGE, as DROP does.
fn may_delete(
    conn: &rusqlite::Connection,
    caller: &Caller,
    sec: &Securable,
) -> Result<(), super::sql::SqlError> {
    if !catalog::exists(conn, sec)? {
        return Err(catalog::not_found(sec));
    }
    Access { conn, caller }.manage(sec)
}

/// Creating in a container: it must exist, and the caller needs its USE
/// privileges and the CREATE privilege.
fn may_create_in(
    conn: &rusqlite::Connection,
    caller: &Caller,
    parent: &Securable,
    privilege: &str,
) -> Result<(), super::sql::SqlError> {
    if !catalog::exists(conn, parent)? {
        return Err(catalog::not_found(parent));
    }
    Access { conn, caller }.create_in(parent, privilege)
}

// ---- catalogs

pub async fn list_catalogs(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cats = with_conn(&shared, move |conn| {
        let all = catalog::list_catalogs(conn)?;
        Ok(visible(conn, &caller, all, |c| Securable::catalog(&c.name)))
    })
    .await?;
    let (page, next) = paginate(
        cats.iter().map(catalog_json).collect(),
        &q,
        Unset::All,
        shared.config.uc_page_length.unwrap_or(DEFAULT_PAGE_LENGTH),
    )?;
    Ok(page_json("catalogs", page, next))
}

pub async fn create_catalog(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: String,
) -> Result<Response, ApiError> {
    let b = parse_body(&body)?;
    let name = field(&b, "name")?.to_string();
    let comment = b.get("comment").and_then(Value::as_str).map(str::to_string);
    let c = with_conn(&shared, move |conn| {
        Access {
            conn,
            caller: &caller,
        }
        .create_catalog()?;
        let owner = Some(caller.principal.as_str());
        let c = catalog::create_catalog(conn, &name, comment.as_deref(), false, owner)?;
        catalog::create_schema(conn, &name, "default", None, true, owner)?;
        Ok(c)
    })
    .await?;
    Ok(Json(catalog_json(&c)).into_response())
}

pub async fn get_catalog(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let c = with_conn(&shared, move |conn| {
        must_see(conn, &caller, &Securable::catalog(&name))?;
        catalog::get_catalog(conn, &name)?
            .ok_or_else(|| super::sql::SqlError::catalog_not_found(&name))
    })
    .await?;
    Ok(Json(catalog_json(&c)).into_response())
}

#[derive(Deserialize)]
pub struct ForceQuery {
    force: Option<bool>,
}

pub async fn delete_catalog(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    Query(q): Query<ForceQuery>,
) -> Result<Response, ApiError> {
    let dropped = with_conn(&shared, move |conn| {
        may_delete(conn, &caller, &Securable::catalog(&name))?;
        drops::drop_catalog(conn, &name, false, q.force.unwrap_or(false))
    })
    .await?;
    for v in dropped {
        shared.engine.remove_volume_dir(&v.name);
    }
    Ok(Json(json!({})).into_response())
}

// ---- schemas

pub async fn list_schemas(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let cat = q
        .get("catalog_name")
        .ok_or_else(|| ApiError::bad_request("catalog_name is required"))?
        .clone();
    let schemas = with_conn(&shared, move |conn| {
        if catalog::get_catalog(conn, &cat)?.is_none() {
            return Err(super::sql::SqlError::catalog_not_found(&cat));
        }
        let all = catalog::list_schemas(conn, &cat)?;
        Ok(visible(conn, &caller, all, |s| {
            Securable::schema(&s.catalog, &s.name)
        }))
    })
    .await?;
    let (page, next) = paginate(
        schemas.iter().map(schema_json).collect(),
        &q,
        Unset::All,
        shared.config.uc_page_length.unwrap_or(DEFAULT_PAGE_LENGTH),
    )?;
    Ok(page_json("schemas", page, next))
}

pub async fn create_schema(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: String,
) -> Result<Response, ApiError> {
    let b = parse_body(&body)?;
    let name = field(&b, "name")?.to_string();
    let cat = field(&b, "catalog_name")?.to_string();
    let comment = b.get("comment").and_then(Value::as_str).map(str::to_string);
    let s = with_conn(&shared, move |conn| {
        may_create_in(
            conn,
            &caller,
            &Securable::catalog(&cat),
            privileges::CREATE_SCHEMA,
        )?;
        catalog::create_schema(
            conn,
            &cat,
            &name,
            comment.as_deref(),
            false,
            Some(&caller.principal),
        )
    })
    .await?;
    Ok(Json(schema_json(&s)).into_response())
}

pub async fn get_schema(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(full): Path<String>,
) -> Result<Response, ApiError> {
    let (c, s) = full2(&full)?;
    let info = with_conn(&shared, move |conn| {
        must_see(conn, &caller, &Securable::schema(&c, &s))?;
        catalog::get_schema(conn, &c, &s)?
            .ok_or_else(|| super::sql::SqlError::schema_not_found(&full))
    })
    .await?;
    Ok(Json(schema_json(&info)).into_response())
}

pub async fn delete_schema(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(full): Path<String>,
    Query(q): Query<ForceQuery>,
) -> Result<Response, ApiError> {
    let (c, s) = full2(&full)?;
    let dropped = with_conn(&shared, move |conn| {
        may_delete(conn, &caller, &Securable::schema(&c, &s))?;
        drops::drop_schema(conn, &c, &s, false, q.force.unwrap_or(false))
    })
    .await?;
    for v in dropped {
        shared.engine.remove_volume_dir(&v.name);
    }
    Ok(Json(json!({})).into_response())
}

// ---- volumes

fn catalog_schema(q: &HashMap<String, String>) -> Result<(String, String), ApiError> {
    Ok((
        q.get("catalog_name")
            .ok_or_else(|| ApiError::bad_request("catalog_name is required"))?
            .clone(),
        q.get("schema_name")
            .ok_or_else(|| ApiError::bad_request("schema_name is required"))?
            .clone(),
    ))
}

pub async fn list_volumes(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (c, s) = catalog_schema(&q)?;
    let vols = with_conn(&shared, move |conn| {
        if catalog::get_schema(conn, &c, &s)?.is_none() {
            return Err(super::sql::SqlError::schema_not_found(&format!("{c}.{s}")));
        }
        let all = catalog::list_volumes(conn, &c, &s)?;
        Ok(visible(conn, &caller, all, |v| Securable::volume(&v.name)))
    })
    .await?;
    let (page, next) = paginate(
        vols.iter().map(volume_json).collect(),
        &q,
        Unset::Paged,
        shared.config.uc_page_length.unwrap_or(VOLUMES_PAGE_LENGTH),
    )?;
    Ok(page_json("volumes", page, next))
}

pub async fn create_volume(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    body: String,
) -> Result<Response, ApiError> {
    let b = parse_body(&body)?;
    let full = FullName::new(
        field(&b, "catalog_name")?,
        field(&b, "schema_name")?,
        field(&b, "name")?,
    );
    let vtype = b
        .get("volume_type")
        .and_then(Value::as_str)
        .unwrap_or("MANAGED")
        .to_string();
    if vtype != "MANAGED" {
        return Err(ApiError::bad_request(
            "Only MANAGED volumes are supported by the sandbox.",
        ));
    }
    let comment = b.get("comment").and_then(Value::as_str).map(str::to_string);
    let key = full.clone();
    let v = with_conn(&shared, move |conn| {
        may_create_in(
            conn,
            &caller,
            &Securable::schema(&key.catalog, &key.schema),
            privileges::CREATE_VOLUME,
        )?;
        catalog::create_volume(
            conn,
            &key,
            &vtype,
            comment.as_deref(),
            false,
            Some(&caller.principal),
        )
    })
    .await?;
    shared
        .engine
        .ensure_volume_dir(&full)
        .map_err(ApiError::from_catalog)?;
    Ok(Json(volume_json(&v)).into_response())
}

pub async fn get_volume(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let full = full3(&name, "volume")?;
    let v = with_conn(&shared, move |conn| {
        must_see(conn, &caller, &Securable::volume(&full))?;
        catalog::get_volume(conn, &full)?
            .ok_or_else(|| super::sql::SqlError::volume_not_found(&name))
    })
    .await?;
    Ok(Json(volume_json(&v)).into_response())
}

pub async fn delete_volume(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let full = full3(&name, "volume")?;
    let key = full.clone();
    with_conn(&shared, move |conn| {
        may_delete(conn, &caller, &Securable::volume(&key))?;
        drops::drop_volume(conn, &key, false)
    })
    .await?;
    shared.engine.remove_volume_dir(&full);
    Ok(Json(json!({})).into_response())
}

// ---- tables

pub async fn list_tables(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (c, s) = catalog_schema(&q)?;
    let tables = with_conn(&shared, move |conn| {
        if catalog::get_schema(conn, &c, &s)?.is_none() {
            return Err(super::sql::SqlError::schema_not_found(&format!("{c}.{s}")));
        }
        let all = catalog::list_tables(conn, &c, &s)?;
        Ok(visible(conn, &caller, all, |t| Securable::table(&t.name)))
    })
    .await?;
    let (page, next) = paginate(
        tables.iter().map(table_json).collect(),
        &q,
        Unset::All,
        shared.config.uc_page_length.unwrap_or(DEFAULT_PAGE_LENGTH),
    )?;
    Ok(page_json("tables", page, next))
}

pub async fn get_table(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let full = full3(&name, "table")?;
    let t = with_conn(&shared, move |conn| {
        must_see(conn, &caller, &Securable::table(&full))?;
        catalog::get_table(conn, &full)?.ok_or_else(|| super::sql::SqlError::table_not_found(&name))
    })
    .await?;
    Ok(Json(table_json(&t)).into_response())
}

// ---- SQL warehouses

fn warehouse_json(shared: &Shared) -> Value {
    let host = shared
        .base_url
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap_or("127.0.0.1")
        .to_string();
    json!({
        "id": shared.warehouse_id,
        "name": "Sandbox Serverless Starter Warehouse",
        "state": "RUNNING",
        "health": { "status": "HEALTHY" },
        "cluster_size": "2X-Small",
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "num_clusters": 1,
        "num_active_sessions": 0,
        "auto_stop_mins": 10,
        "warehouse_type": "PRO",
        "enable_serverless_compute": true,
        "enable_photon": true,
        "spot_instance_policy": "COST_OPTIMIZED",
        "channel": { "name": "CHANNEL_NAME_CURRENT" },
        "creator_name": OWNER,
        "odbc_params": {
            "hostname": host,
            "path": format!("/sql/1.0/warehouses/{}", shared.warehouse_id),
            "port": shared.port,
            "protocol": "http",
        },
        "jdbc_url": format!(
            "jdbc:databricks://{host}:{}/default;transportMode=http;httpPath=/sql/1.0/warehouses/{}",
            shared.port, shared.warehouse_id
        ),
    })
}

pub async fn list_warehouses(State(shared): State<Arc<Shared>>) -> Json<Value> {
    Json(json!({ "warehouses": [warehouse_json(&shared)] }))
}

pub async fn get_warehouse(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if id != shared.warehouse_id {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("SQL warehouse {id} does not exist."),
        ));
    }
    Ok(Json(warehouse_json(&shared)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn items(names: &[&str]) -> Vec<Value> {
        names.iter().map(|n| json!({ "full_name": n })).collect()
    }

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        assert_eq!(
            decode_token(&encode_token("main.año")),
            Some("main.año".into())
        );
        assert_eq!(decode_token("zz"), None);
        assert_eq!(decode_token("abc"), None);
    }

    #[test]
    fn pages_follow_max_results_and_the_server_length() {
        let all = items(&["c", "a", "b"]);
        let (p, next) =
            paginate(all.clone(), &q(&[("max_results", "2")]), Unset::All, 10).expect("page");
        assert_eq!(p, items(&["a", "b"]));
        let next = next.expect("token");
        let (p, none) = paginate(
            all.clone(),
            &q(&[("max_results", "2"), ("page_token", &next)]),
            Unset::All,
            10,
        )
        .expect("page");
        assert_eq!((p, none), (items(&["c"]), None));
        // 0 and larger values are capped by the server length; unset is all
        // or one server page.
        assert_eq!(
            paginate(all.clone(), &q(&[("max_results", "0")]), Unset::All, 1)
                .expect("page")
                .0
                .len(),
            1
        );
        assert_eq!(
            paginate(all.clone(), &q(&[]), Unset::All, 1)
                .expect("page")
                .0
                .len(),
            3
        );
        assert_eq!(
            paginate(all.clone(), &q(&[]), Unset::Paged, 1)
                .expect("page")
                .0
                .len(),
            1
        );
        assert!(paginate(all.clone(), &q(&[("max_results", "-1")]), Unset::All, 1).is_err());
        assert!(paginate(all, &q(&[("max_results", "x")]), Unset::All, 1).is_err());
    }
}
