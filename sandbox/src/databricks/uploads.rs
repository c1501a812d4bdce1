//! Large-file transfers of the Files API: multipart upload (AWS/Azure
//! workspaces) and resumable upload (GCP workspaces) through pre-signed
//! URLs, and pre-signed download URLs.
//!
//! The documentation describes the flow and its limits
//! (https://docs.databricks.com/aws/en/volumes/files-api/multipart-upload:
//! part numbers 1..=10000, every part but the last at least 5 MiB, at most
//! 4000 MiB a part); the request and response bodies are those the official
//! SDK sends and reads (`databricks/sdk/mixins/files.py`, `FilesExt` and
//! `_PresignedUrlRequestBuilder`, databricks-sdk 0.156):
//!
//! - `POST /api/2.0/fs/files{path}?action=initiate-upload[&overwrite=]` →
//!   `{"multipart_upload": {"session_token"}}` or `{"resumable_upload": {...}}`
//! - `POST /api/2.0/fs/create-upload-part-urls` `{path, session_token,
//!   start_part_number, count, expire_time}` → `{"upload_part_urls": [{url,
//!   part_number, headers: [{name, value}]}]}`; each URL takes a `PUT` of the
//!   part and answers with its `ETag`
//! - `POST /api/2.0/fs/files{path}?action=complete-upload&upload_type=multipart
//!   &session_token=` `{"parts": [{part_number, etag}]}`
//! - `POST /api/2.0/fs/create-abort-upload-url` → `{"abort_upload_url": {url,
//!   headers}}`, then `DELETE` on it
//! - `POST /api/2.0/fs/create-resumable-upload-url` `{path, session_token}` →
//!   `{"resumable_upload_url": {url, headers}}`; `PUT`s with `Content-Range`
//!   answered 308 + `Range` until the last one (200), as in
//!   https://cloud.google.com/storage/docs/performing-resumable-uploads
//! - `POST /api/2.0/fs/create-download-url?path=&expire_time=` → `{url,
//!   headers}`; `GET` on it with `Range` / `If-Unmodified-Since`
//!
//! Pre-signed URLs need no bearer token and expire; an expired one answers
//! 403 with the cloud storage error the SDK recognises (`AccessDenied`,
//! "Request has expired"). Parts are streamed to a staging directory and
//! assembled on disk, never held in memory.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use super::error::ApiError;
use super::files::{self, Need};
use super::paths::VolumePath;
use super::sql::grants::Caller;
use super::Shared;

/// Smallest part but the last (5 MiB, from the multipart upload page).
pub const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;
/// Largest part (4000 MiB, from the multipart upload page).
pub const MAX_PART_BYTES: u64 = 4000 * 1024 * 1024;
/// Highest part number (10000, from the multipart upload page).
pub const MAX_PART_NUMBER: u32 = 10_000;
/// Lifetime of a pre-signed URL when the request names none (the SDK asks
/// for one hour).
const DEFAULT_URL_TTL: Duration = Duration::from_secs(3600);
/// Longest lifetime granted to a pre-signed URL.
const MAX_URL_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Which large-upload protocol `initiate-upload` offers: multipart on AWS
/// and Azure workspaces, resumable on GCP workspaces.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UploadProtocol {
    #[default]
    Multipart,
    Resumable,
}

/// One in-progress large upload.
struct Session {
    vp: VolumePath,
    /// The path as the client named it, for messages.
    api_path: String,
    disk: PathBuf,
    overwrite: Option<bool>,
    protocol: UploadProtocol,
    /// Staging directory of this session's parts.
    dir: PathBuf,
    /// Uploaded parts: number → ETag (without quotes) and size.
    parts: BTreeMap<u32, (String, u64)>,
    /// Bytes a resumable upload has stored so far.
    received: u64,
}

/// What a pre-signed URL lets its holder do.
#[derive(Clone, Debug)]
enum Grant {
    Part { session: String, number: u32 },
    Abort { session: String },
    Resumable { session: String },
    Download { api_path: String, disk: PathBuf },
}

#[derive(Clone, Debug)]
struct Presigned {
    grant: Grant,
    expires: SystemTime,
}

/// Upload sessions and the pre-signed URLs handed out for them.
pub(crate) struct Store {
    staging: PathBuf,
    sessions: Mutex<HashMap<String, Session>>,
    urls: Mutex<HashMap<String, Presigned>>,
}

impl Store {
    /// Parts are staged below `staging`, outside every volume, so listings
    /// never show them.
    pub fn new(staging: PathBuf) -> Store {
        Store {
            staging,
            sessions: Mutex::new(HashMap::new()),
            urls: Mutex::new(HashMap::new()),
        }
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn urls(&self) -> MutexGuard<'_, HashMap<String, Presigned>> {
        self.urls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Number of open upload sessions (tests check aborts and completions
    /// leave none behind).
    pub fn open_sessions(&self) -> usize {
        self.sessions().len()
    }

    fn presign(&self, shared: &Shared, grant: Grant, expires: SystemTime) -> String {
        let id = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut urls = self.urls();
        let now = SystemTime::now();
        urls.retain(|_, p| p.expires > now);
        urls.insert(id.clone(), Presigned { grant, expires });
        format!("{}/sandbox/presigned/{id}", shared.base_url)
    }
}

/// A cloud-storage style XML error, as pre-signed URLs answer.
fn storage_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"),
    )
        .into_response()
}

fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}")))
}

/// `expire_time` is RFC 3339; a past time is refused, a far one capped.
fn expiry(raw: Option<&str>) -> Result<SystemTime, ApiError> {
    let now = SystemTime::now();
    let Some(raw) = raw else {
        return Ok(now + DEFAULT_URL_TTL);
    };
    let t: SystemTime = chrono::DateTime::parse_from_rfc3339(raw)
        .map_err(|_| ApiError::bad_request(format!("Invalid expire_time '{raw}'.")))?
        .with_timezone(&chrono::Utc)
        .into();
    if t <= now {
        return Err(ApiError::bad_request("expire_time must be in the future."));
    }
    Ok(t.min(now + MAX_URL_TTL))
}

fn normalize(raw: &str) -> String {
    format!("/{}", raw.trim_start_matches('/'))
}

fn no_session() -> ApiError {
    ApiError::not_found("The upload session does not exist or has expired.")
}

/// Looks a session up by token, checking it belongs to `path`.
fn check_session(
    store: &Store,
    token: &str,
    path: &str,
    protocol: UploadProtocol,
) -> Result<(), ApiError> {
    let vp =
        VolumePath::parse(&normalize(path)).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let sessions = store.sessions();
    let s = sessions.get(token).ok_or_else(no_session)?;
    if s.vp != vp {
        return Err(ApiError::bad_request(
            "The session token does not belong to this path.",
        ));
    }
    if s.protocol != protocol {
        return Err(ApiError::bad_request(
            "The upload session uses another upload type.",
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct ActionQuery {
    action: Option<String>,
    overwrite: Option<bool>,
    upload_type: Option<String>,
    session_token: Option<String>,
}

/// `POST /api/2.0/fs/files{path}?action=...`: initiate and complete.
pub async fn file_action(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    axum::extract::Path(raw): axum::extract::Path<String>,
    Query(q): Query<ActionQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    match q.action.as_deref() {
        Some("initiate-upload") => initiate(&shared, &caller, &raw, q.overwrite).await,
        Some("complete-upload") => {
            if q.upload_type.as_deref().is_some_and(|t| t != "multipart") {
                return Err(ApiError::bad_request(
                    "Only multipart uploads are completed with complete-upload.",
                ));
            }
            let token = q
                .session_token
                .ok_or_else(|| ApiError::bad_request("session_token is required."))?;
            complete(&shared, &caller, &raw, &token, &body).await
        }
        Some(other) => Err(ApiError::bad_request(format!(
            "Unsupported action '{other}'."
        ))),
        None => Err(ApiError::bad_request("The action parameter is required.")),
    }
}

/// Refuses a target that is a volume root, a directory, or (without
/// overwrite) an existing file.
fn check_target(vp: &VolumePath, disk: &Path, overwrite: Option<bool>) -> Result<(), ApiError> {
    if vp.rel.is_empty() {
        return Err(ApiError::bad_request(
            "The path is a volume root, not a file.",
        ));
    }
    if disk.is_dir() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "A directory exists at this path.",
        ));
    }
    if disk.exists() && overwrite == Some(false) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "The file being created already exists.",
        ));
    }
    Ok(())
}

async fn initiate(
    shared: &Arc<Shared>,
    caller: &Caller,
    raw: &str,
    overwrite: Option<bool>,
) -> Result<Response, ApiError> {
    let (vp, disk) = files::resolve(shared, raw, caller, Need::Write).await?;
    check_target(&vp, &disk, overwrite)?;
    let token = uuid::Uuid::new_v4().simple().to_string();
    let dir = shared.uploads.staging.join(&token);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let protocol = shared.config.upload_protocol;
    shared.uploads.sessions().insert(
        token.clone(),
        Session {
            vp,
            api_path: normalize(raw),
            disk,
            overwrite,
            protocol,
            dir,
            parts: BTreeMap::new(),
            received: 0,
        },
    );
    tracing::debug!(path = %normalize(raw), %token, ?protocol, "upload initiated");
    let key = match protocol {
        UploadProtocol::Multipart => "multipart_upload",
        UploadProtocol::Resumable => "resumable_upload",
    };
    Ok(Json(json!({ key: { "session_token": token } })).into_response())
}

#[derive(Deserialize)]
struct CompleteBody {
    #[serde(default)]
    parts: Vec<CompletePart>,
}

#[derive(Deserialize)]
struct CompletePart {
    part_number: u32,
    #[serde(default)]
    etag: String,
}

fn unquote(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

/// Assembles the listed parts, in order, into the target file.
async fn complete(
    shared: &Arc<Shared>,
    caller: &Caller,
    raw: &str,
    token: &str,
    body: &Bytes,
) -> Result<Response, ApiError> {
    files::resolve(shared, raw, caller, Need::Write).await?;
    let req: CompleteBody = parse_json(body)?;
    check_session(&shared.uploads, token, raw, UploadProtocol::Multipart)?;
    if req.parts.is_empty() {
        return Err(ApiError::bad_request("The list of parts is empty."));
    }
    // Take the session out while assembling, so a concurrent abort or a
    // second completion cannot interleave.
    let session = shared
        .uploads
        .sessions()
        .remove(token)
        .ok_or_else(no_session)?;
    let plan = (|| {
        let mut files = Vec::with_capacity(req.parts.len());
        let mut prev = 0u32;
        for (i, p) in req.parts.iter().enumerate() {
            if p.part_number <= prev {
                return Err(ApiError::bad_request(
                    "The parts must be listed in ascending order of part number, each once.",
                ));
            }
            prev = p.part_number;
            let Some((etag, size)) = session.parts.get(&p.part_number) else {
                return Err(ApiError::bad_request(format!(
                    "Part {} was not uploaded.",
                    p.part_number
                )));
            };
            if unquote(&p.etag) != etag {
                return Err(ApiError::bad_request(format!(
                    "The ETag of part {} does not match the uploaded part.",
                    p.part_number
                )));
            }
            if i + 1 < req.parts.len() && *size < MIN_PART_BYTES {
                return Err(ApiError::bad_request(format!(
                    "Part {} is {size} bytes; every part but the last must be at least {MIN_PART_BYTES} bytes.",
                    p.part_number
                )));
            }
            files.push(session.dir.join(format!("part-{}", p.part_number)));
        }
        Ok(files)
    })();
    let plan = match plan {
        Ok(p) => p,
        Err(e) => {
            // A failed completion leaves the session open, as cloud storage
            // does, so the client can still abort it.
            shared.uploads.sessions().insert(token.to_string(), session);
            return Err(e);
        }
    };
    if let Err(e) = check_target(&session.vp, &session.disk, session.overwrite) {
        shared.uploads.sessions().insert(token.to_string(), session);
        return Err(e);
    }
    let disk = session.disk.clone();
    let dir = session.dir.clone();
    let assembled = tokio::task::spawn_blocking(move || assemble(&plan, &disk))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let _ = tokio::fs::remove_dir_all(&dir).await;
    let bytes = assembled?;
    tracing::debug!(path = %session.api_path, bytes, parts = req.parts.len(), "multipart upload completed");
    Ok(Json(json!({})).into_response())
}

/// Concatenates part files into a temporary file beside `target` and renames
/// it into place (`std::io::copy` uses the kernel's file-to-file copy, so
/// nothing is buffered here).
fn assemble(parts: &[PathBuf], target: &Path) -> Result<u64, ApiError> {
    let internal = |e: std::io::Error| ApiError::internal(e.to_string());
    let parent = target
        .parent()
        .ok_or_else(|| ApiError::bad_request("invalid path"))?;
    if parent.is_file() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            "A file exists where a parent directory is needed.",
        ));
    }
    std::fs::create_dir_all(parent).map_err(internal)?;
    let tmp = parent.join(format!(".upload-{}", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut out = std::fs::File::create(&tmp)?;
        let mut n = 0u64;
        for p in parts {
            let mut f = std::fs::File::open(p)?;
            n += std::io::copy(&mut f, &mut out)?;
        }
        out.sync_all()?;
        std::fs::rename(&tmp, target)?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(internal)
}

#[derive(Deserialize)]
struct PartUrlsRequest {
    path: String,
    session_token: String,
    start_part_number: u32,
    #[serde(default = "one")]
    count: u32,
    expire_time: Option<String>,
}

fn one() -> u32 {
    1
}

/// `POST /api/2.0/fs/create-upload-part-urls`.
pub async fn create_upload_part_urls(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PartUrlsRequest = parse_json(&body)?;
    check_session(
        &shared.uploads,
        &req.session_token,
        &req.path,
        UploadProtocol::Multipart,
    )?;
    if req.start_part_number == 0 || req.count == 0 {
        return Err(ApiError::bad_request(
            "start_part_number and count must be at least 1.",
        ));
    }
    let last = req.start_part_number.saturating_add(req.count - 1);
    if last > MAX_PART_NUMBER {
        return Err(ApiError::bad_request(format!(
            "Part numbers range from 1 to {MAX_PART_NUMBER}."
        )));
    }
    let expires = expiry(req.expire_time.as_deref())?;
    let urls: Vec<serde_json::Value> = (req.start_part_number..=last)
        .map(|number| {
            let url = shared.uploads.presign(
                &shared,
                Grant::Part {
                    session: req.session_token.clone(),
                    number,
                },
                expires,
            );
            json!({ "part_number": number, "url": url, "headers": [] })
        })
        .collect();
    Ok(Json(json!({ "upload_part_urls": urls })).into_response())
}

#[derive(Deserialize)]
struct SessionUrlRequest {
    path: String,
    session_token: String,
    expire_time: Option<String>,
}

/// `POST /api/2.0/fs/create-abort-upload-url`.
pub async fn create_abort_upload_url(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: SessionUrlRequest = parse_json(&body)?;
    check_session(
        &shared.uploads,
        &req.session_token,
        &req.path,
        UploadProtocol::Multipart,
    )?;
    let expires = expiry(req.expire_time.as_deref())?;
    let url = shared.uploads.presign(
        &shared,
        Grant::Abort {
            session: req.session_token,
        },
        expires,
    );
    Ok(Json(json!({ "abort_upload_url": { "url": url, "headers": [] } })).into_response())
}

/// `POST /api/2.0/fs/create-resumable-upload-url`.
pub async fn create_resumable_upload_url(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: SessionUrlRequest = parse_json(&body)?;
    check_session(
        &shared.uploads,
        &req.session_token,
        &req.path,
        UploadProtocol::Resumable,
    )?;
    // A resumable session URI lives a week on GCS.
    let expires = SystemTime::now() + MAX_URL_TTL;
    let url = shared.uploads.presign(
        &shared,
        Grant::Resumable {
            session: req.session_token,
        },
        expires,
    );
    Ok(Json(json!({ "resumable_upload_url": { "url": url, "headers": [] } })).into_response())
}

#[derive(Deserialize)]
pub struct DownloadUrlQuery {
    path: Option<String>,
    expire_time: Option<String>,
}

/// `POST /api/2.0/fs/create-download-url?path=&expire_time=`: a token-free
/// URL for the file (which must exist).
pub async fn create_download_url(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<DownloadUrlQuery>,
) -> Result<Response, ApiError> {
    let path = q
        .path
        .ok_or_else(|| ApiError::bad_request("path is required."))?;
    let (_vp, disk) = files::resolve(&shared, &path, &caller, Need::Read).await?;
    if !disk.is_file() {
        return Err(files::file_not_found(&path));
    }
    let expires = expiry(q.expire_time.as_deref())?;
    let url = shared.uploads.presign(
        &shared,
        Grant::Download {
            api_path: normalize(&path),
            disk,
        },
        expires,
    );
    Ok(Json(json!({ "url": url, "headers": [] })).into_response())
}

/// `PUT` / `GET` / `HEAD` / `DELETE /sandbox/presigned/{id}`: what a
/// pre-signed URL grants. No bearer token is needed (or looked at).
pub async fn presigned(
    State(shared): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let found = shared.uploads.urls().get(&id).cloned();
    let Some(p) = found else {
        return storage_error(StatusCode::FORBIDDEN, "AccessDenied", "Invalid URL");
    };
    if SystemTime::now() > p.expires {
        return storage_error(StatusCode::FORBIDDEN, "AccessDenied", "Request has expired");
    }
    let wrong_method = || {
        storage_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "The specified method is not allowed against this resource.",
        )
    };
    let result = match (&p.grant, &method) {
        (Grant::Part { session, number }, &Method::PUT) => {
            put_part(&shared, session, *number, body).await
        }
        (Grant::Abort { session }, &Method::DELETE)
        | (Grant::Resumable { session }, &Method::DELETE) => Ok(abort(&shared, session).await),
        (Grant::Resumable { session }, &Method::PUT) => {
            put_resumable(&shared, session, &headers, body).await
        }
        (Grant::Download { api_path, disk }, &Method::GET)
        | (Grant::Download { api_path, disk }, &Method::HEAD) => {
            files::serve_file(&shared, disk, api_path, &method, &headers)
                .await
                .map_err(IntoResponse::into_response)
        }
        _ => Err(wrong_method()),
    };
    result.unwrap_or_else(|r| r)
}

fn session_gone() -> Response {
    storage_error(
        StatusCode::NOT_FOUND,
        "NoSuchUpload",
        "The specified upload does not exist.",
    )
}

/// Streams one part to the session's staging directory and answers with
/// its ETag (a re-sent part replaces the earlier one).
async fn put_part(
    shared: &Arc<Shared>,
    session: &str,
    number: u32,
    body: Body,
) -> Result<Response, Response> {
    let dir = match shared.uploads.sessions().get(session) {
        Some(s) => s.dir.clone(),
        None => return Err(session_gone()),
    };
    let tmp = dir.join(format!(".part-{number}-{}", uuid::Uuid::new_v4().simple()));
    let size = match files::write_body(&tmp, body, MAX_PART_BYTES).await {
        Ok(n) => n,
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            let r = if e.status == StatusCode::PAYLOAD_TOO_LARGE {
                storage_error(
                    StatusCode::BAD_REQUEST,
                    "EntityTooLarge",
                    "Your proposed upload exceeds the maximum allowed size.",
                )
            } else {
                e.into_response()
            };
            return Err(r);
        }
    };
    let etag = uuid::Uuid::new_v4().simple().to_string();
    let mut sessions = shared.uploads.sessions();
    let Some(s) = sessions.get_mut(session) else {
        drop(sessions);
        let _ = std::fs::remove_file(&tmp);
        return Err(session_gone());
    };
    // Renamed under the lock, so a completion sees the part and its ETag
    // together.
    if let Err(e) = std::fs::rename(&tmp, dir.join(format!("part-{number}"))) {
        return Err(ApiError::internal(e.to_string()).into_response());
    }
    s.parts.insert(number, (etag.clone(), size));
    drop(sessions);
    tracing::debug!(%session, number, size, "part uploaded");
    Ok((StatusCode::OK, [(header::ETAG, format!("\"{etag}\""))]).into_response())
}

/// Drops a session and its staged data. The SDK treats 200 and 201 as a
/// successful abort.
async fn abort(shared: &Arc<Shared>, session: &str) -> Response {
    let removed = shared.uploads.sessions().remove(session);
    match removed {
        Some(s) => {
            let _ = tokio::fs::remove_dir_all(&s.dir).await;
            tracing::debug!(path = %s.api_path, %session, "upload aborted");
            StatusCode::OK.into_response()
        }
        None => session_gone(),
    }
}

/// `Content-Range` of a resumable upload request: `bytes a-b/total`,
/// `bytes a-b/*`, `bytes */total` or `bytes */*`.
#[derive(Debug, PartialEq, Eq)]
struct ContentRange {
    range: Option<(u64, u64)>,
    total: Option<u64>,
}

fn parse_content_range(v: &str) -> Option<ContentRange> {
    let spec = v.trim().strip_prefix("bytes ")?;
    let (range, total) = spec.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let range = match range.trim() {
        "*" => None,
        r => {
            let (a, b) = r.split_once('-')?;
            let (a, b): (u64, u64) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
            if b < a {
                return None;
            }
            Some((a, b))
        }
    };
    Some(ContentRange { range, total })
}

/// 308 Resume Incomplete with the stored range, as GCS answers.
fn incomplete(received: u64) -> Response {
    let mut r = Response::builder().status(StatusCode::PERMANENT_REDIRECT);
    if received > 0 {
        r = r.header(header::RANGE, format!("bytes=0-{}", received - 1));
    }
    r.header(header::CONTENT_LENGTH, "0")
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::PERMANENT_REDIRECT.into_response())
}

/// One request of a resumable upload: a chunk at the stored offset (bytes
/// already stored are skipped), or a status query with an empty body.
async fn put_resumable(
    shared: &Arc<Shared>,
    session: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Response> {
    let cr = headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range)
        .ok_or_else(|| {
            storage_error(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "A valid Content-Range header is required.",
            )
        })?;
    let (dir, received) = match shared.uploads.sessions().get(session) {
        Some(s) => (s.dir.clone(), s.received),
        None => return Err(session_gone()),
    };
    let data = dir.join("data");
    let mut received = received;
    if let Some((a, b)) = cr.range {
        if a > received {
            // A gap: tell the client where to resume.
            return Ok(incomplete(received));
        }
        let f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&data)
            .await
            .map_err(|e| ApiError::internal(e.to_string()).into_response())?;
        let declared = b - a + 1;
        let written = files::append_body(f, body, declared, received - a)
            .await
            .map_err(IntoResponse::into_response)?;
        received += written;
        match shared.uploads.sessions().get_mut(session) {
            Some(s) => s.received = received,
            None => return Err(session_gone()),
        }
    }
    match cr.total {
        Some(total) if received >= total => finish_resumable(shared, session, &data, total).await,
        _ => Ok(incomplete(received)),
    }
}

/// Moves a finished resumable upload into place; 412 when the file exists
/// and overwrite was false (what the SDK maps to AlreadyExists).
async fn finish_resumable(
    shared: &Arc<Shared>,
    session: &str,
    data: &Path,
    total: u64,
) -> Result<Response, Response> {
    let s = shared
        .uploads
        .sessions()
        .remove(session)
        .ok_or_else(session_gone)?;
    let result = place_resumable(&s, data, total);
    let _ = tokio::fs::remove_dir_all(&s.dir).await;
    result.map_err(|e| *e)?;
    tracing::debug!(path = %s.api_path, total, "resumable upload completed");
    Ok(StatusCode::OK.into_response())
}

/// Checks a finished resumable upload and renames it into place; the error
/// is the response to send.
fn place_resumable(s: &Session, data: &Path, total: u64) -> Result<(), Box<Response>> {
    let len = std::fs::metadata(data).map(|m| m.len()).unwrap_or(0);
    if len != total {
        return Err(Box::new(storage_error(
            StatusCode::BAD_REQUEST,
            "InvalidArgument",
            "The upload's size does not match the declared total.",
        )));
    }
    if s.disk.exists() && s.overwrite == Some(false) {
        return Err(Box::new(storage_error(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )));
    }
    check_target(&s.vp, &s.disk, s.overwrite).map_err(|e| Box::new(e.into_response()))?;
    let parent = s.disk.parent().ok_or_else(|| Box::new(session_gone()))?;
    std::fs::create_dir_all(parent)
        .and_then(|_| std::fs::rename(data, &s.disk))
        .map_err(|e| Box::new(ApiError::internal(e.to_string()).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 0-9/*"),
            Some(ContentRange {
                range: Some((0, 9)),
                total: None
            })
        );
        assert_eq!(
            parse_content_range("bytes 10-19/20"),
            Some(ContentRange {
                range: Some((10, 19)),
                total: Some(20)
            })
        );
        assert_eq!(
            parse_content_range("bytes */*"),
            Some(ContentRange {
                range: None,
                total: None
            })
        );
        assert_eq!(parse_content_range("bytes 9-0/*"), None);
        assert_eq!(parse_content_range("0-9/*"), None);
    }

    #[test]
    fn expiry_times() {
        assert!(expiry(Some("2001-01-01T00:00:00Z")).is_err());
        assert!(expiry(Some("soon")).is_err());
        let later = expiry(Some("2999-01-01T00:00:00Z")).expect("future");
        assert!(later <= SystemTime::now() + MAX_URL_TTL);
    }
}
