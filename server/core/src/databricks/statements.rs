//! The SQL Statement Execution API
//! (docs.databricks.com/api/workspace/statementexecution): named parameters
//! for every value, polling until the statement ends, FAILED answered with
//! HTTP 200 turned into an error, JSON_ARRAY results paged chunk by chunk,
//! and large results as EXTERNAL_LINKS + ARROW_STREAM, fetched without the
//! bearer token and re-requested when a link has expired.

use std::time::Duration;

use arrow_array::RecordBatch;
use serde::{Deserialize, Serialize};

use super::error::{http_error, json_or_error, redact_url, DatabricksError};
use super::retry::send_with_retry;
use super::Workspace;

/// A named parameter (`:name` in the statement); values travel as strings,
/// typed by `type_` (e.g. `INT`, `DECIMAL(18,2)`, `DATE`) when given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Parameter {
    pub name: String,
    pub value: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
}

impl Parameter {
    pub fn new(name: &str, value: impl Into<String>) -> Self {
        Parameter {
            name: name.to_string(),
            value: Some(value.into()),
            type_: None,
        }
    }

    pub fn typed(name: &str, value: Option<String>, type_: &str) -> Self {
        Parameter {
            name: name.to_string(),
            value,
            type_: Some(type_.to_string()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ColumnInfo {
    pub name: String,
    #[serde(default)]
    pub type_name: String,
    #[serde(default)]
    pub type_text: String,
}

/// A statement's rows as JSON_ARRAY gives them: strings or nulls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JsonResult {
    pub columns: Vec<ColumnInfo>,
    pub rows: Vec<Vec<Option<String>>>,
    /// The result hit row_limit or byte_limit.
    pub truncated: bool,
}

#[derive(Deserialize, Default)]
struct Status {
    state: String,
    #[serde(default)]
    error: Option<StatusError>,
}

#[derive(Deserialize, Default)]
struct StatusError {
    #[serde(default)]
    error_code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize, Default)]
struct Manifest {
    #[serde(default)]
    schema: Option<ManifestSchema>,
    #[serde(default)]
    truncated: bool,
}

#[derive(Deserialize, Default)]
struct ManifestSchema {
    #[serde(default)]
    columns: Vec<ColumnInfo>,
}

#[derive(Deserialize, Default)]
struct ExternalLink {
    chunk_index: u64,
    external_link: String,
    #[serde(default)]
    next_chunk_internal_link: Option<String>,
    /// Headers the GET of the link must carry
    /// (https://docs.databricks.com/api/workspace/statementexecution/executestatement,
    /// `result.external_links[].http_headers`).
    #[serde(default)]
    http_headers: std::collections::HashMap<String, String>,
}

#[derive(Deserialize, Default)]
struct ResultData {
    #[serde(default)]
    data_array: Option<Vec<Vec<Option<String>>>>,
    #[serde(default)]
    next_chunk_internal_link: Option<String>,
    #[serde(default)]
    external_links: Option<Vec<ExternalLink>>,
}

#[derive(Deserialize)]
struct StatementResponse {
    statement_id: String,
    #[serde(default)]
    status: Status,
    #[serde(default)]
    manifest: Option<Manifest>,
    #[serde(default)]
    result: Option<ResultData>,
}

/// Why a statement did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum StatementError {
    #[error(transparent)]
    Http(#[from] DatabricksError),
    #[error("statement failed: {code}: {message}")]
    Failed { code: String, message: String },
    #[error("statement ended {state}")]
    Ended { state: String },
    #[error("statement did not finish within {0:?}")]
    Timeout(Duration),
    #[error("reading an Arrow result: {0}")]
    Arrow(String),
}

/// How results come back: small ones inline as JSON_ARRAY strings, large
/// ones as Arrow IPC behind external links.
#[derive(Clone, Copy)]
enum Shape {
    Json,
    Arrow,
}

/// An Arrow result being read chunk by chunk. A background task downloads
/// the next chunk while the caller works through the current one (at most
/// one chunk waits), so downloads overlap the caller's writes.
pub struct ArrowResult {
    pub columns: Vec<ColumnInfo>,
    chunks: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, StatementError>>,
    /// The chunk being read, one batch at a time.
    current: Option<arrow_ipc::reader::StreamReader<std::io::Cursor<bytes::Bytes>>>,
}

impl ArrowResult {
    /// The next batch, decoding the next downloaded chunk when needed.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>, StatementError> {
        loop {
            if let Some(reader) = &mut self.current {
                match reader.next() {
                    Some(b) => {
                        return b
                            .map(Some)
                            .map_err(|e| StatementError::Arrow(e.to_string()))
                    }
                    None => self.current = None,
                }
            }
            let Some(chunk) = self.chunks.recv().await else {
                return Ok(None);
            };
            self.current = Some(
                arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(chunk?), None)
                    .map_err(|e| StatementError::Arrow(e.to_string()))?,
            );
        }
    }
}

impl Workspace {
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
    ) -> Result<T, DatabricksError> {
        let url = format!("{}{path}", self.host);
        let url = reqwest::Url::parse(&url).map_err(|e| DatabricksError::Http {
            url: url.clone(),
            message: e.to_string(),
        })?;
        self.get_url(&url).await
    }

    /// GET with the workspace's credential, retried on transient failures.
    pub(crate) async fn get_url<T: serde::de::DeserializeOwned>(
        &self,
        url: &reqwest::Url,
    ) -> Result<T, DatabricksError> {
        let token = self.auth.token().await?;
        let resp = send_with_retry(&self.retry, url.as_str(), || {
            let req = self.http.get(url.clone()).bearer_auth(&token);
            async move { req.send().await.map_err(http_error) }
        })
        .await?;
        json_or_error(resp, url.as_str()).await
    }

    /// Submits and waits for a statement; returns its final response.
    async fn run_statement(
        &self,
        warehouse_id: &str,
        statement: &str,
        params: &[Parameter],
        shape: Shape,
        deadline: Duration,
        idempotent: bool,
    ) -> Result<StatementResponse, StatementError> {
        let (format, disposition) = match shape {
            Shape::Json => ("JSON_ARRAY", "INLINE"),
            Shape::Arrow => ("ARROW_STREAM", "EXTERNAL_LINKS"),
        };
        let url = format!("{}/api/2.0/sql/statements", self.host);
        let body = serde_json::json!({
            "warehouse_id": warehouse_id,
            "statement": statement,
            "parameters": params,
            // Waiting in the submit is capped by the deadline (the API
            // takes 0 or 5-50 s), so a short deadline is kept to.
            "wait_timeout": match deadline.as_secs() {
                10.. => "10s".to_string(),
                s @ 5..=9 => format!("{s}s"),
                _ => "0s".to_string(),
            },
            "on_wait_timeout": "CONTINUE",
            "format": format,
            "disposition": disposition,
        });
        let token = self.auth.token().await?;
        // 429 means the statement was not accepted, so it is always retried;
        // a 5xx may come after the statement ran, so only reads and
        // statements the caller marks idempotent retry it (another DML
        // statement could otherwise run twice).
        let read_only = idempotent
            || statement
                .trim_start()
                .get(..6)
                .is_some_and(|w| w.eq_ignore_ascii_case("select"));
        let mut attempt = 0;
        let resp = loop {
            attempt += 1;
            let resp = self
                .http
                .post(&url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .map_err(http_error)?;
            let status = resp.status().as_u16();
            let retryable = status == 429 || (read_only && matches!(status, 502..=504));
            if retryable && attempt < self.retry.attempts {
                let wait = resp
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .map(Duration::from_secs)
                    .unwrap_or_else(|| self.retry.backoff(attempt));
                tokio::time::sleep(wait.min(self.retry.cap)).await;
                continue;
            }
            break resp;
        };
        let mut r: StatementResponse = json_or_error(resp, &url).await?;
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(100);
        while matches!(r.status.state.as_str(), "PENDING" | "RUNNING") {
            if started.elapsed() > deadline {
                // Not left to commit later, unseen: cancelled (a statement
                // that commits before the cancel lands is the same as one
                // whose answer was lost, which callers already handle).
                self.cancel_statement(&r.statement_id).await;
                return Err(StatementError::Timeout(deadline));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(2));
            r = self
                .get_json(&format!("/api/2.0/sql/statements/{}", r.statement_id))
                .await?;
        }
        match r.status.state.as_str() {
            "SUCCEEDED" => Ok(r),
            "FAILED" => {
                let e = r.status.error.unwrap_or_default();
                Err(StatementError::Failed {
                    code: e.error_code,
                    message: e.message,
                })
            }
            other => Err(StatementError::Ended {
                state: other.to_string(),
            }),
        }
    }

    /// `POST /api/2.0/sql/statements/{id}/cancel`
    /// (https://docs.databricks.com/api/workspace/statementexecution/cancelexecution):
    /// best effort, a failure is only logged.
    async fn cancel_statement(&self, id: &str) {
        let url = format!("{}/api/2.0/sql/statements/{id}/cancel", self.host);
        let sent = async {
            let token = self.auth.token().await?;
            self.http
                .post(&url)
                .bearer_auth(&token)
                .send()
                .await
                .map_err(http_error)
        }
        .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                tracing::info!(statement = id, "statement past its deadline cancelled")
            }
            Ok(r) => tracing::warn!(
                statement = id,
                status = r.status().as_u16(),
                "cancelling a statement past its deadline failed"
            ),
            Err(e) => {
                tracing::warn!(statement = id, error = %e, "cancelling a statement past its deadline failed")
            }
        }
    }

    /// Runs a statement with JSON_ARRAY results, following every chunk.
    pub async fn execute_json(
        &self,
        warehouse_id: &str,
        statement: &str,
        params: &[Parameter],
        deadline: Duration,
    ) -> Result<JsonResult, StatementError> {
        self.json_statement(warehouse_id, statement, params, deadline, false)
            .await
    }

    /// Like [`Workspace::execute_json`] for a statement that may safely run
    /// twice (a conditional UPDATE): 5xx answers are retried too.
    pub async fn execute_json_idempotent(
        &self,
        warehouse_id: &str,
        statement: &str,
        params: &[Parameter],
        deadline: Duration,
    ) -> Result<JsonResult, StatementError> {
        self.json_statement(warehouse_id, statement, params, deadline, true)
            .await
    }

    async fn json_statement(
        &self,
        warehouse_id: &str,
        statement: &str,
        params: &[Parameter],
        deadline: Duration,
        idempotent: bool,
    ) -> Result<JsonResult, StatementError> {
        let r = self
            .run_statement(
                warehouse_id,
                statement,
                params,
                Shape::Json,
                deadline,
                idempotent,
            )
            .await?;
        let manifest = r.manifest.unwrap_or_default();
        let mut out = JsonResult {
            columns: manifest.schema.map(|s| s.columns).unwrap_or_default(),
            rows: Vec::new(),
            truncated: manifest.truncated,
        };
        let mut data = r.result.unwrap_or_default();
        loop {
            out.rows.extend(data.data_array.take().unwrap_or_default());
            match data.next_chunk_internal_link.take() {
                Some(link) => data = self.get_json(&link).await?,
                None => return Ok(out),
            }
        }
    }

    /// Runs a statement with EXTERNAL_LINKS + ARROW_STREAM results and reads
    /// every chunk's Arrow IPC stream.
    pub async fn execute_arrow(
        &self,
        warehouse_id: &str,
        statement: &str,
        params: &[Parameter],
        deadline: Duration,
    ) -> Result<(Vec<ColumnInfo>, Vec<RecordBatch>), StatementError> {
        let mut result = self
            .query_arrow(warehouse_id, statement, params, deadline)
            .await?;
        let mut batches = Vec::new();
        while let Some(b) = result.next_batch().await? {
            batches.push(b);
        }
        Ok((result.columns.clone(), batches))
    }

    /// Runs a statement with EXTERNAL_LINKS + ARROW_STREAM results; the
    /// batches are then pulled one chunk at a time, so memory holds one
    /// chunk however large the result.
    pub async fn query_arrow(
        &self,
        warehouse_id: &str,
        statement: &str,
        params: &[Parameter],
        deadline: Duration,
    ) -> Result<ArrowResult, StatementError> {
        let r = self
            .run_statement(
                warehouse_id,
                statement,
                params,
                Shape::Arrow,
                deadline,
                false,
            )
            .await?;
        let links: std::collections::VecDeque<ExternalLink> = r
            .result
            .and_then(|d| d.external_links)
            .unwrap_or_default()
            .into();
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(self.clone().download_chunks(r.statement_id, links, tx));
        Ok(ArrowResult {
            columns: r
                .manifest
                .and_then(|m| m.schema)
                .map(|s| s.columns)
                .unwrap_or_default(),
            chunks: rx,
            current: None,
        })
    }

    /// Downloads every chunk in order into `tx`; stops when the reader is
    /// gone or on the first error (which it passes on).
    async fn download_chunks(
        self,
        id: String,
        mut links: std::collections::VecDeque<ExternalLink>,
        tx: tokio::sync::mpsc::Sender<Result<bytes::Bytes, StatementError>>,
    ) {
        while let Some(link) = links.pop_front() {
            let bytes = self.chunk(&id, &link).await;
            let failed = bytes.is_err();
            if tx.send(bytes).await.is_err() || failed {
                return;
            }
            if let Some(next) = link.next_chunk_internal_link {
                match self.get_json::<ResultData>(&next).await {
                    Ok(data) => links.extend(data.external_links.unwrap_or_default()),
                    Err(e) => {
                        let _ = tx.send(Err(e.into())).await;
                        return;
                    }
                }
            }
        }
    }

    /// One chunk's bytes; an expired or refused link is asked for again,
    /// which issues a fresh one.
    async fn chunk(&self, id: &str, link: &ExternalLink) -> Result<bytes::Bytes, StatementError> {
        match self.fetch_link(link).await {
            Ok(b) => Ok(b),
            Err(_) => {
                let fresh: ResultData = self
                    .get_json(&format!(
                        "/api/2.0/sql/statements/{id}/result/chunks/{}",
                        link.chunk_index
                    ))
                    .await?;
                let again = fresh
                    .external_links
                    .and_then(|mut l| l.pop())
                    .ok_or_else(|| {
                        StatementError::Arrow(format!("chunk {} has no link", link.chunk_index))
                    })?;
                Ok(self.fetch_link(&again).await?)
            }
        }
    }

    /// Downloads a result link with the headers it names. Links are
    /// presigned: no bearer token; the link itself is a credential, so it
    /// never reaches a log or an error message whole.
    async fn fetch_link(&self, link: &ExternalLink) -> Result<bytes::Bytes, DatabricksError> {
        let url = link.external_link.as_str();
        let resp = send_with_retry(&self.retry, url, || {
            let mut req = self.http.get(url);
            for (k, v) in &link.http_headers {
                req = req.header(k, v);
            }
            async move { req.send().await.map_err(http_error) }
        })
        .await?;
        if !resp.status().is_success() {
            return Err(DatabricksError::Api {
                url: redact_url(url),
                status: resp.status().as_u16(),
                error_code: String::new(),
                message: "result link refused".into(),
            });
        }
        resp.bytes().await.map_err(http_error)
    }
}
