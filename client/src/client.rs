//! `BridgeClient`: the generated client behind methods that read like the
//! deck's SDK, typed errors, and retries of transient failures on the
//! calls that are safe to repeat: GET and DELETE, and the POSTs, which send
//! an `Idempotency-Key` (one per logical call, the same on each retry) so
//! the server acts on them once however often they arrive.

use std::time::{Duration, Instant};

use futures::TryStreamExt;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};

use crate::error::BridgeError;
use crate::generated::Client;
use crate::types;

/// Every operation of the API and the facade method that calls it; a test
/// compares this with `openapi.json`, so a new endpoint without a method
/// is caught as drift.
pub const OPERATIONS: &[(&str, &str)] = &[
    ("extract", "extract"),
    ("get_job_status", "get_job_status"),
    ("list_jobs", "list_jobs"),
    ("cancel_job", "cancel_job"),
    ("list_queries", "list_queries"),
    ("show_params", "show_params"),
    ("list_countries", "list_countries"),
    ("health_live", "health_live"),
    ("health_ready", "health_ready"),
    ("metrics", "metrics"),
    ("openapi", "openapi"),
    ("submit_sync_event", "submit_sync_event"),
    ("get_sync_event", "get_sync_event"),
    ("list_sync_events", "list_sync_events"),
    ("search_audit", "search_audit"),
    ("open_spark_write", "open_spark_write"),
    ("commit_spark_write", "commit_spark_write"),
    ("abort_spark_write", "abort_spark_write"),
];

/// Operations that are not API calls (an HTML page), so have no method.
pub const NOT_CALLS: &[&str] = &["swagger_ui"];

/// Filters and paging of [`BridgeClient::list_jobs`].
#[derive(Clone, Debug, Default)]
pub struct JobFilter {
    pub state: Option<types::JobState>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
    pub offset: Option<u64>,
}

/// Filters of [`BridgeClient::search_audit`] (all optional).
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    /// Another user's lines need `audit: all` in permissions.yaml.
    pub user: Option<String>,
    pub resource: Option<String>,
    pub action: Option<String>,
    pub event_type: Option<String>,
    pub outcome: Option<String>,
    /// Lines at or after `since`, before `until`.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// 1..=1000 (default 100).
    pub limit: Option<u32>,
}

/// Attempts for idempotent calls and the backoff between them.
#[derive(Clone, Debug)]
pub struct Retry {
    pub attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            base: Duration::from_millis(200),
            cap: Duration::from_secs(5),
        }
    }
}

/// A page size the API accepts (1..=`max`), checked before any request.
fn page_limit(limit: Option<u32>, max: u32) -> Result<Option<std::num::NonZeroU32>, BridgeError> {
    match limit {
        None => Ok(None),
        Some(n) => std::num::NonZeroU32::new(n)
            .filter(|n| n.get() <= max)
            .map(Some)
            .ok_or_else(|| {
                BridgeError::Validation(crate::ApiError {
                    status: 422,
                    code: "validation_failed".into(),
                    message: format!("limit must be between 1 and {max}, not {n}"),
                    details: Some(serde_json::json!({ "field": "limit" })),
                })
            }),
    }
}

/// A key for one logical POST: random, so no two calls share one.
fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A key the API would refuse (it takes 1..=255 visible ASCII
/// characters), refused before any request.
fn check_key(key: &str) -> Result<(), BridgeError> {
    if (1..=255).contains(&key.len()) && key.bytes().all(|b| (b'!'..=b'~').contains(&b)) {
        return Ok(());
    }
    Err(BridgeError::Validation(crate::ApiError {
        status: 422,
        code: "validation_failed".into(),
        message: "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces)".into(),
        details: Some(serde_json::json!({ "field": "Idempotency-Key" })),
    }))
}

#[derive(Clone)]
pub struct BridgeClient {
    api: Client,
    retry: Retry,
}

impl std::fmt::Debug for BridgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs and panics.
        f.debug_struct("BridgeClient")
            .field("base_url", &self.api.baseurl)
            .finish_non_exhaustive()
    }
}

impl BridgeClient {
    /// A client for the bridge at `base_url` (e.g. `http://localhost:8000`)
    /// with a token from the server's permissions.yaml.
    pub fn new(base_url: &str, token: &str) -> Result<Self, BridgeError> {
        Self::with_timeout(base_url, token, Duration::from_secs(60))
    }

    pub fn with_timeout(
        base_url: &str,
        token: &str,
        timeout: Duration,
    ) -> Result<Self, BridgeError> {
        let mut auth = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| BridgeError::Transport("the token is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(timeout)
            .user_agent(concat!(
                "sql-databricks-bridge-client/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|e| BridgeError::Transport(e.to_string()))?;
        Ok(BridgeClient {
            api: Client::new_with_client(base_url.trim_end_matches('/'), http),
            retry: Retry::default(),
        })
    }

    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
    }

    /// The generated client, for anything the facade does not cover.
    pub fn generated(&self) -> &Client {
        &self.api
    }

    /// Repeats an idempotent call on transient failures.
    async fn idempotent<T, F, Fut>(&self, call: F) -> Result<T, BridgeError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BridgeError>>,
    {
        self.retrying(call, |_| None).await
    }

    /// Repeats a POST that carries an `Idempotency-Key` on transient
    /// failures, and while the server is still processing its first
    /// attempt (409 `idempotency_key_in_use`; the server asks for a second).
    async fn keyed_post<T, F, Fut>(&self, call: F) -> Result<T, BridgeError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BridgeError>>,
    {
        self.retrying(call, |e| e.in_progress().then_some(Duration::from_secs(1)))
            .await
    }

    /// The retry loop: transient failures wait the backoff; `also` names
    /// other failures worth a repeat and the least wait before it.
    async fn retrying<T, F, Fut>(
        &self,
        mut call: F,
        also: impl Fn(&BridgeError) -> Option<Duration>,
    ) -> Result<T, BridgeError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, BridgeError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = call().await;
            let least = match &result {
                Err(e) if e.transient() => Some(Duration::ZERO),
                Err(e) => also(e),
                Ok(_) => None,
            };
            match least {
                Some(least) if attempt < self.retry.attempts.max(1) => {
                    let wait = self
                        .retry
                        .base
                        .saturating_mul(1 << attempt.min(16))
                        .min(self.retry.cap)
                        .max(least);
                    tokio::time::sleep(wait).await;
                }
                _ => return result,
            }
        }
    }

    /// Starts an extraction (the CLI's `extract` as a job); poll it with
    /// [`BridgeClient::get_job_status`] or [`BridgeClient::wait_for_job`].
    /// Sends a new `Idempotency-Key`, the same on each retry, so a retry
    /// after a lost answer gets the first job rather than a second.
    pub async fn extract(
        &self,
        request: &types::ExtractRequest,
    ) -> Result<types::JobAccepted, BridgeError> {
        self.extract_with_key(request, &new_key()).await
    }

    /// [`BridgeClient::extract`] with the caller's own `Idempotency-Key`
    /// (1..=255 visible ASCII characters): calling again with the same key
    /// and request (after a crash, say) returns the first job; the same key
    /// with another request is a `Validation` error
    /// (`idempotency_key_reused`). The server keeps keys 24 hours by default.
    pub async fn extract_with_key(
        &self,
        request: &types::ExtractRequest,
        key: &str,
    ) -> Result<types::JobAccepted, BridgeError> {
        check_key(key)?;
        self.keyed_post(|| async { Ok(self.api.extract(Some(key), request).await?.into_inner()) })
            .await
    }

    pub async fn get_job_status(&self, job_id: &str) -> Result<types::JobStatus, BridgeError> {
        self.idempotent(|| async { Ok(self.api.get_job_status(job_id).await?.into_inner()) })
            .await
    }

    pub async fn list_jobs(&self, filter: &JobFilter) -> Result<types::JobList, BridgeError> {
        let limit = page_limit(filter.limit, 500)?;
        let offset = filter.offset.map(|o| o.min(i64::MAX as u64) as i64);
        self.idempotent(|| async {
            Ok(self
                .api
                .list_jobs(filter.cursor.as_deref(), limit, offset, filter.state)
                .await?
                .into_inner())
        })
        .await
    }

    /// Cancels a queued or running job; the final status comes back.
    pub async fn cancel_job(&self, job_id: &str) -> Result<types::JobStatus, BridgeError> {
        self.idempotent(|| async { Ok(self.api.cancel_job(job_id).await?.into_inner()) })
            .await
    }

    /// Polls every `poll` until the job ends (succeeded, failed,
    /// cancelled, interrupted) or `timeout` passes.
    pub async fn wait_for_job(
        &self,
        job_id: &str,
        poll: Duration,
        timeout: Duration,
    ) -> Result<types::JobStatus, BridgeError> {
        let started = Instant::now();
        loop {
            let s = self.get_job_status(job_id).await?;
            let running = matches!(s.state, types::JobState::Queued | types::JobState::Running);
            if !running {
                return Ok(s);
            }
            if started.elapsed() >= timeout {
                return Err(BridgeError::Timeout(Box::new(s)));
            }
            tokio::time::sleep(poll.min(timeout.saturating_sub(started.elapsed()))).await;
        }
    }

    /// Queues a sync event (Databricks table → SQL Server table); the
    /// server's poller applies it. Sends a new `Idempotency-Key`, the same
    /// on each retry, so one call writes one event.
    pub async fn submit_sync_event(
        &self,
        event: &types::SubmitSyncEvent,
    ) -> Result<types::SyncEvent, BridgeError> {
        self.submit_sync_event_with_key(event, &new_key()).await
    }

    /// [`BridgeClient::submit_sync_event`] with the caller's own
    /// `Idempotency-Key` (see [`BridgeClient::extract_with_key`]).
    pub async fn submit_sync_event_with_key(
        &self,
        event: &types::SubmitSyncEvent,
        key: &str,
    ) -> Result<types::SyncEvent, BridgeError> {
        check_key(key)?;
        self.keyed_post(|| async {
            Ok(self
                .api
                .submit_sync_event(Some(key), event)
                .await?
                .into_inner())
        })
        .await
    }

    pub async fn get_sync_event(&self, event_id: &str) -> Result<types::SyncEvent, BridgeError> {
        self.idempotent(|| async { Ok(self.api.get_sync_event(event_id).await?.into_inner()) })
            .await
    }

    /// The caller's events, newest first.
    pub async fn list_sync_events(
        &self,
        status: Option<types::EventStatus>,
        limit: Option<u32>,
    ) -> Result<Vec<types::SyncEvent>, BridgeError> {
        let limit = page_limit(limit, 500)?;
        self.idempotent(|| async {
            Ok(self
                .api
                .list_sync_events(limit, status)
                .await?
                .into_inner()
                .events)
        })
        .await
    }

    /// Opens a Spark job's distributed write (needs `write` on the
    /// target): the answer's `write_id` (scoped to this token's user) and
    /// `target_table` (resolved) are what its tasks stage under. Retried
    /// as it is: a run opened twice is one run.
    pub async fn open_spark_write(
        &self,
        write: &types::SparkWrite,
    ) -> Result<types::SparkRun, BridgeError> {
        self.idempotent(|| async { Ok(self.api.open_spark_write(write).await?.into_inner()) })
            .await
    }

    /// Applies the stages a write's tasks reported, once (a write applied
    /// before answers `from_ledger`), so a retry never applies twice.
    pub async fn commit_spark_write(
        &self,
        commit: &types::SparkCommit,
    ) -> Result<types::SparkCommitted, BridgeError> {
        self.idempotent(|| async { Ok(self.api.commit_spark_write(commit).await?.into_inner()) })
            .await
    }

    /// Closes a write's run and drops its stage tables.
    pub async fn abort_spark_write(
        &self,
        write: &types::SparkWrite,
    ) -> Result<types::SparkAborted, BridgeError> {
        self.idempotent(|| async { Ok(self.api.abort_spark_write(write).await?.into_inner()) })
            .await
    }

    /// Audit lines this token may read (its own, or everyone's with
    /// `audit: all`), newest first.
    pub async fn search_audit(&self, f: &AuditFilter) -> Result<types::AuditPage, BridgeError> {
        let limit = page_limit(f.limit, 1000)?;
        self.idempotent(|| async {
            Ok(self
                .api
                .search_audit(
                    f.action.as_deref(),
                    f.event_type.as_deref(),
                    limit,
                    f.outcome.as_deref(),
                    f.resource.as_deref(),
                    f.since.as_ref(),
                    f.until.as_ref(),
                    f.user.as_deref(),
                )
                .await?
                .into_inner())
        })
        .await
    }

    /// What `list-queries` prints, for a directory inside the server's root.
    pub async fn list_queries(
        &self,
        queries_path: Option<&str>,
    ) -> Result<types::QueryList, BridgeError> {
        self.idempotent(|| async { Ok(self.api.list_queries(queries_path).await?.into_inner()) })
            .await
    }

    /// What `show-params` prints: a country's parameters, and `queries`
    /// rendered with them.
    /// The countries a config directory (inside the server's root) has
    /// parameters for.
    pub async fn list_countries(
        &self,
        config_path: Option<&str>,
    ) -> Result<Vec<String>, BridgeError> {
        self.idempotent(|| async {
            Ok(self
                .api
                .list_countries(config_path)
                .await?
                .into_inner()
                .countries)
        })
        .await
    }

    pub async fn show_params(
        &self,
        country: &str,
        config_path: Option<&str>,
        queries: &[&str],
        queries_path: Option<&str>,
    ) -> Result<types::ParamsView, BridgeError> {
        let names = queries.join(",");
        let names = (!names.is_empty()).then_some(names);
        self.idempotent(|| async {
            Ok(self
                .api
                .show_params(config_path, country, names.as_deref(), queries_path)
                .await?
                .into_inner())
        })
        .await
    }

    pub async fn health_live(&self) -> Result<types::Live, BridgeError> {
        self.idempotent(|| async { Ok(self.api.health_live().await?.into_inner()) })
            .await
    }

    /// Readiness, also when not ready (503): `status` and each check say why.
    pub async fn health_ready(&self) -> Result<types::Ready, BridgeError> {
        self.idempotent(|| async {
            match self.api.health_ready().await {
                Ok(r) => Ok(r.into_inner()),
                Err(progenitor_client::Error::ErrorResponse(r)) => Ok(r.into_inner()),
                Err(e) => Err(crate::error::from_progenitor(e, |rv| {
                    BridgeError::Unexpected {
                        status: rv.status().as_u16(),
                        message: "not ready".into(),
                    }
                })),
            }
        })
        .await
    }

    /// The Prometheus text.
    pub async fn metrics(&self) -> Result<String, BridgeError> {
        self.idempotent(|| async {
            let body = self.api.metrics().await?.into_inner();
            let chunks: Vec<bytes::Bytes> = body
                .into_inner()
                .try_collect()
                .await
                .map_err(|e| BridgeError::Transport(e.to_string()))?;
            Ok(String::from_utf8_lossy(&chunks.concat()).into_owned())
        })
        .await
    }

    /// The OpenAPI document the server serves.
    pub async fn openapi(&self) -> Result<serde_json::Value, BridgeError> {
        self.idempotent(|| async {
            Ok(serde_json::Value::Object(
                self.api.openapi().await?.into_inner(),
            ))
        })
        .await
    }
}
