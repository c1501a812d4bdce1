//! Files API for Unity Catalog Volumes
//! (https://docs.databricks.com/api/workspace/files): upload (streamed to
//! disk), download with Range, metadata, delete; directories list (paged),
//! create and delete. Paths must lie in an existing volume; reading takes
//! `READ VOLUME` on it, writing, deleting and creating directories take
//! `WRITE VOLUME` (with `USE CATALOG` and `USE SCHEMA` on its parents), as
//! Unity Catalog requires for volume paths
//! (https://docs.databricks.com/volumes/privileges.html).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::io::{AsyncSeekExt, AsyncWriteExt};

use super::error::ApiError;
use super::paths::VolumePath;
use super::sql::catalog;
use super::sql::grants::{Access, Caller};
use super::Shared;
use axum::Extension;

/// What a request does to a volume's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    Read,
    Write,
}

fn http_date(t: SystemTime) -> String {
    let dt: chrono::DateTime<chrono::Utc> = t.into();
    dt.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

fn parse_http_date(s: &str) -> Option<SystemTime> {
    chrono::NaiveDateTime::parse_from_str(s.trim(), "%a, %d %b %Y %H:%M:%S GMT")
        .ok()
        .map(|n| n.and_utc().into())
}

/// Resolves an API path to its disk location, checking the volume exists
/// and the caller's privilege on it (on a blocking thread: the catalog
/// shares the SQL engine's lock, which a long statement may hold).
pub(crate) async fn resolve(
    shared: &Arc<Shared>,
    raw: &str,
    caller: &Caller,
    need: Need,
) -> Result<(VolumePath, PathBuf), ApiError> {
    // The router has already percent-decoded the path once.
    let path = format!("/{}", raw.trim_start_matches('/'));
    let vp = VolumePath::parse(&path).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let sh = shared.clone();
    let volume = vp.volume.clone();
    let caller = caller.clone();
    let exists = tokio::task::spawn_blocking(move || {
        let conn = sh.engine.lock();
        if catalog::get_volume(&conn, &volume)?.is_none() {
            return Ok(false);
        }
        let access = Access {
            conn: &conn,
            caller: &caller,
        };
        match need {
            Need::Read => access.read_volume(&volume)?,
            Need::Write => access.write_volume(&volume)?,
        }
        Ok(true)
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(ApiError::from_catalog)?;
    if !exists {
        return Err(ApiError::not_found(format!(
            "The volume '{}' does not exist or you do not have access to it.",
            vp.volume.dotted()
        )));
    }
    let disk = vp.to_disk(shared.engine.volumes_root());
    Ok((vp, disk))
}

#[derive(Deserialize)]
pub struct UploadQuery {
    overwrite: Option<bool>,
}

/// `PUT /api/2.0/fs/files{path}`: the body goes to a temporary file next to
/// the target and is renamed into place, so a cut upload leaves nothing.
pub async fn upload(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let (vp, disk) = resolve(&shared, &raw, &caller, Need::Write).await?;
    if vp.rel.is_empty() {
        return Err(ApiError::bad_request(
            "The path is a volume root, not a file.",
        ));
    }
    let limit = shared.config.max_upload_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    if disk.is_dir() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "A directory exists at this path.",
        ));
    }
    if disk.exists() && q.overwrite == Some(false) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "The file being created already exists.",
        ));
    }
    let parent = disk
        .parent()
        .ok_or_else(|| ApiError::bad_request("invalid path"))?;
    if parent.is_file() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "A file exists where a parent directory is needed.",
        ));
    }
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let tmp = parent.join(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
    let result = write_body(&tmp, body, limit).await;
    if let Err(e) = result {
        let _ = tokio::fs::remove_file(&tmp).await;
        return Err(e);
    }
    if q.overwrite == Some(false) {
        // Create-if-absent is one atomic step, as a cloud store's conditional
        // put is: of two uploads racing for a new path, exactly one creates
        // it and the other gets 409 (the check above is only a fast path).
        let linked = std::fs::hard_link(&tmp, &disk);
        let _ = tokio::fs::remove_file(&tmp).await;
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "ALREADY_EXISTS",
                    "The file being created already exists.",
                ))
            }
            Err(e) => return Err(ApiError::internal(e.to_string())),
        }
    } else {
        tokio::fs::rename(&tmp, &disk)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
    }
    let commit = shared.faults.commit_delay();
    if !commit.is_zero() {
        tokio::time::sleep(commit).await;
    }
    tracing::debug!(path = %disk.display(), "uploaded");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(crate) fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "RESOURCE_EXHAUSTED",
        format!("The file exceeds the maximum size of {limit} bytes for a single-request upload."),
    )
}

/// Streams a request body into a new file at `tmp`, refusing more than
/// `limit` bytes; returns the number of bytes written.
pub(crate) async fn write_body(tmp: &Path, body: Body, limit: u64) -> Result<u64, ApiError> {
    let f = tokio::fs::File::create(tmp)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    append_body(f, body, limit, 0).await
}

/// Streams a request body onto the end of an open file, skipping its first
/// `skip` bytes (already stored by an earlier request); refuses more than
/// `limit` bytes in all. Returns the number of bytes written.
pub(crate) async fn append_body(
    mut f: tokio::fs::File,
    body: Body,
    limit: u64,
    skip: u64,
) -> Result<u64, ApiError> {
    let mut stream = body.into_data_stream();
    let mut seen = 0u64;
    let mut written = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("upload interrupted: {e}")))?;
        let start = seen;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(too_large(limit));
        }
        if seen <= skip {
            continue;
        }
        let from = skip.saturating_sub(start) as usize;
        f.write_all(&chunk[from..])
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        written += (chunk.len() - from) as u64;
    }
    f.flush()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(written)
}

pub(crate) fn file_not_found(path: &str) -> ApiError {
    ApiError::not_found(format!("The file '{path}' does not exist."))
}

/// Parses `Range: bytes=a-b | a- | -n` against a length.
fn parse_range(v: &str, len: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = v.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return Some(Err(()));
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || len == 0 {
                return Some(Err(()));
            }
            (len.saturating_sub(n), len - 1)
        }
        (a, "") => (a.parse().ok()?, len.saturating_sub(1)),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(len.saturating_sub(1)),
        ),
    };
    if r.0 >= len || r.0 > r.1 {
        return Some(Err(()));
    }
    Some(Ok(r))
}

/// `GET` and `HEAD /api/2.0/fs/files{path}`.
pub async fn download(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(raw): axum::extract::Path<String>,
    method: axum::http::Method,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let (_vp, disk) = resolve(&shared, &raw, &caller, Need::Read).await?;
    serve_file(&shared, &disk, &raw, &method, &headers).await
}

/// Answers a GET or HEAD for a file on disk (Range, If-Unmodified-Since):
/// the Files API download and pre-signed download URLs share it.
pub(crate) async fn serve_file(
    shared: &Arc<Shared>,
    disk: &Path,
    raw: &str,
    method: &axum::http::Method,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let meta = match tokio::fs::metadata(disk).await {
        Ok(m) if m.is_file() => m,
        _ => return Err(file_not_found(raw)),
    };
    let len = meta.len();
    let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
    if let Some(since) = headers
        .get(header::IF_UNMODIFIED_SINCE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_http_date)
    {
        let secs = |t: SystemTime| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        };
        if secs(modified) > secs(since) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "FAILED_PRECONDITION",
                "The file has been modified since the given time.",
            ));
        }
    }
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => match parse_range(v, len) {
            None => None,
            Some(Ok(r)) => Some(r),
            Some(Err(())) => {
                let mut resp = ApiError::new(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    "INVALID_PARAMETER_VALUE",
                    format!("The range {v} is not satisfiable for a file of {len} bytes."),
                )
                .into_response();
                if let Ok(h) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, h);
                }
                return Ok(resp);
            }
        },
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let body = if method == axum::http::Method::HEAD {
        Body::empty()
    } else {
        let mut f = tokio::fs::File::open(disk)
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        f.seek(std::io::SeekFrom::Start(start))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let reader = tokio::io::AsyncReadExt::take(f, count);
        let stream = tokio_util::io::ReaderStream::new(reader);
        super::cut::body(stream, shared.faults.cut_after())
    };
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, count.to_string())
        .header(header::LAST_MODIFIED, http_date(modified))
        .header(header::ACCEPT_RANGES, "bytes");
    if range.is_some() {
        resp = resp.header(header::CONTENT_RANGE, format!("bytes {start}-{end}/{len}"));
    }
    resp.body(body)
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `DELETE /api/2.0/fs/files{path}`.
pub async fn delete_file(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let (_vp, disk) = resolve(&shared, &raw, &caller, Need::Write).await?;
    if !disk.is_file() {
        return Err(file_not_found(&raw));
    }
    tokio::fs::remove_file(&disk)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
pub struct ListQuery {
    page_size: Option<usize>,
    page_token: Option<String>,
}

fn dir_not_found(path: &str) -> ApiError {
    ApiError::not_found(format!("The directory '{path}' does not exist."))
}

/// `GET /api/2.0/fs/directories{path}`: entries sorted by name, at most
/// `page_size` (default and maximum 1000) per page.
pub async fn list_directory(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let (vp, disk) = resolve(&shared, &raw, &caller, Need::Read).await?;
    if !disk.is_dir() {
        return Err(dir_not_found(&raw));
    }
    let page_size = q.page_size.unwrap_or(1000).clamp(1, 1000);
    let offset: usize = match &q.page_token {
        None => 0,
        Some(t) => t
            .strip_prefix("sandbox-")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::bad_request("Invalid page_token."))?,
    };
    let mut entries: Vec<(String, std::fs::Metadata)> = Vec::new();
    let mut rd = tokio::fs::read_dir(&disk)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    while let Some(e) = rd
        .next_entry()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
    {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(".upload-") {
            continue;
        }
        if let Ok(m) = e.metadata().await {
            entries.push((name, m));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let page: Vec<serde_json::Value> = entries
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|(name, m)| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            let mut v = serde_json::json!({
                "path": vp.display_child(name) + if m.is_dir() { "/" } else { "" },
                "name": name,
                "is_directory": m.is_dir(),
                "last_modified": modified,
            });
            if m.is_file() {
                v["file_size"] = serde_json::json!(m.len());
            }
            v
        })
        .collect();
    let mut out = serde_json::json!({ "contents": page });
    if offset + page_size < entries.len() {
        out["next_page_token"] = serde_json::json!(format!("sandbox-{}", offset + page_size));
    }
    Ok(Json(out).into_response())
}

/// `PUT /api/2.0/fs/directories{path}`: like `mkdir -p`, idempotent.
pub async fn create_directory(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let (_vp, disk) = resolve(&shared, &raw, &caller, Need::Write).await?;
    if disk.is_file() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "A file exists at this path.",
        ));
    }
    tokio::fs::create_dir_all(&disk)
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, "ALREADY_EXISTS", e.to_string()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `HEAD /api/2.0/fs/directories{path}`.
pub async fn directory_metadata(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let (_vp, disk) = resolve(&shared, &raw, &caller, Need::Read).await?;
    if !disk.is_dir() {
        return Err(dir_not_found(&raw));
    }
    Ok(StatusCode::OK.into_response())
}

/// `DELETE /api/2.0/fs/directories{path}`: only an empty directory.
pub async fn delete_directory(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(raw): axum::extract::Path<String>,
) -> Result<Response, ApiError> {
    let (vp, disk) = resolve(&shared, &raw, &caller, Need::Write).await?;
    if !disk.is_dir() {
        return Err(dir_not_found(&raw));
    }
    if vp.rel.is_empty() {
        return Err(ApiError::bad_request(
            "A volume root cannot be deleted through the Files API.",
        ));
    }
    let mut rd = tokio::fs::read_dir(&disk)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if rd
        .next_entry()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .is_some()
    {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "DIRECTORY_NOT_EMPTY",
            "The directory is not empty.",
        ));
    }
    tokio::fs::remove_dir(&disk)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    #[test]
    fn ranges() {
        assert_eq!(super::parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(super::parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(super::parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(super::parse_range("bytes=100-", 100), Some(Err(())));
    }
}
