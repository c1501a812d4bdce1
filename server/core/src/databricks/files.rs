//! The Files API for Unity Catalog Volumes
//! (docs.databricks.com/api/workspace/files): streamed uploads, deletes and
//! directory listings, retried on transient failures.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;

use serde::Deserialize;

use super::error::{http_error, json_or_error, redact_url, DatabricksError};
use super::retry::send_with_retry;
use super::Workspace;

/// How long an upload whose body is all sent waits for the server's
/// answer: storing a file of several GiB takes the server a while.
const COMMIT_WAIT: std::time::Duration = std::time::Duration::from_secs(900);

/// One entry of a directory listing.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct DirEntry {
    pub path: String,
    #[serde(default)]
    pub is_directory: bool,
    #[serde(default)]
    pub file_size: Option<u64>,
    #[serde(default)]
    pub name: Option<String>,
}

impl Workspace {
    /// `https://host/api/2.0/fs/{kind}/Volumes/...` with each segment encoded.
    fn fs_url(&self, kind: &str, path: &str) -> Result<reqwest::Url, DatabricksError> {
        let tail: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        self.api_url(&["api", "2.0", "fs", kind], &tail)
    }

    /// Uploads a local file to a Volume path, streaming it from disk.
    pub async fn upload_file(
        &self,
        volume_path: &str,
        local: &Path,
        overwrite: bool,
    ) -> Result<(), DatabricksError> {
        let mut url = self.fs_url("files", volume_path)?;
        url.query_pairs_mut()
            .append_pair("overwrite", if overwrite { "true" } else { "false" });
        let token = self.auth.token().await?;
        let idle = self.idle;
        let resp = send_with_retry(&self.retry, url.as_str(), || {
            let url = url.clone();
            let token = token.clone();
            let local = local.to_path_buf();
            let http = self.upload_http.clone();
            async move {
                let file =
                    tokio::fs::File::open(&local)
                        .await
                        .map_err(|e| DatabricksError::Http {
                            url: local.display().to_string(),
                            message: e.to_string(),
                        })?;
                let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
                // The server answers only after the whole body, so a read
                // timeout cannot tell a slow link from a dead one: the body
                // itself reports progress, and only `idle` without any
                // while sending gives up. Once all of it is sent the server
                // may take long to store a large file before it answers:
                // that wait has a limit of its own, `COMMIT_WAIT`.
                let moved = Arc::new(Mutex::new(Instant::now()));
                let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
                let (mark, count) = (moved.clone(), sent.clone());
                let body = tokio_util::io::ReaderStream::new(file).inspect(move |chunk| {
                    if let Ok(c) = chunk {
                        count.fetch_add(c.len() as u64, std::sync::atomic::Ordering::SeqCst);
                    }
                    *mark.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
                });
                let send = http
                    .put(url.clone())
                    .bearer_auth(token)
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .header(reqwest::header::CONTENT_LENGTH, len)
                    .body(reqwest::Body::wrap_stream(body))
                    .send();
                tokio::pin!(send);
                loop {
                    tokio::select! {
                        r = &mut send => return r.map_err(http_error),
                        _ = tokio::time::sleep(idle / 4) => {
                            let last = *moved.lock().unwrap_or_else(|p| p.into_inner());
                            let all_sent = sent.load(std::sync::atomic::Ordering::SeqCst) >= len;
                            let limit = if all_sent { COMMIT_WAIT.max(idle) } else { idle };
                            if last.elapsed() > limit {
                                return Err(DatabricksError::Http {
                                    url: redact_url(url.as_str()),
                                    message: if all_sent {
                                        format!("sent, but no answer for {} s", limit.as_secs())
                                    } else {
                                        format!("no progress for {} s", idle.as_secs())
                                    },
                                });
                            }
                        }
                    }
                }
            }
        })
        .await?;
        expect_success(resp, url.as_str()).await
    }

    /// Writes a small file from memory. With `overwrite` false the write
    /// only creates: `Ok(false)` when the path already exists (409
    /// ALREADY_EXISTS). A create retried after its answer was lost also
    /// reads 409, so callers that must know read the file back.
    pub async fn put_bytes(
        &self,
        volume_path: &str,
        bytes: Vec<u8>,
        overwrite: bool,
    ) -> Result<bool, DatabricksError> {
        let mut url = self.fs_url("files", volume_path)?;
        url.query_pairs_mut()
            .append_pair("overwrite", if overwrite { "true" } else { "false" });
        let token = self.auth.token().await?;
        let body = bytes::Bytes::from(bytes);
        let resp = send_with_retry(&self.retry, url.as_str(), || {
            let req = self
                .http
                .put(url.clone())
                .bearer_auth(&token)
                .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                .body(body.clone());
            async move { req.send().await.map_err(http_error) }
        })
        .await?;
        if !overwrite && resp.status().as_u16() == 409 {
            return Ok(false);
        }
        expect_success(resp, url.as_str()).await.map(|_| true)
    }

    /// A bodiless request, retried on transient failures.
    async fn send_retried(
        &self,
        method: reqwest::Method,
        url: &reqwest::Url,
        token: &str,
    ) -> Result<reqwest::Response, DatabricksError> {
        send_with_retry(&self.retry, url.as_str(), || {
            let req = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(token);
            async move { req.send().await.map_err(http_error) }
        })
        .await
    }

    /// Deletes a file; a missing one is not an error.
    pub async fn delete_file(&self, volume_path: &str) -> Result<(), DatabricksError> {
        let url = self.fs_url("files", volume_path)?;
        let token = self.auth.token().await?;
        let resp = self
            .send_retried(reqwest::Method::DELETE, &url, &token)
            .await?;
        if resp.status().as_u16() == 404 {
            return Ok(());
        }
        expect_success(resp, url.as_str()).await
    }

    /// Lists a directory (every page); `None` when it does not exist.
    pub async fn list_directory(
        &self,
        volume_path: &str,
    ) -> Result<Option<Vec<DirEntry>>, DatabricksError> {
        #[derive(Deserialize)]
        struct Page {
            #[serde(default)]
            contents: Vec<DirEntry>,
            #[serde(default)]
            next_page_token: Option<String>,
        }
        let base = self.fs_url("directories", volume_path)?;
        let token = self.auth.token().await?;
        let mut out = Vec::new();
        let mut page_token: Option<String> = None;
        loop {
            let mut url = base.clone();
            if let Some(t) = &page_token {
                url.query_pairs_mut().append_pair("page_token", t);
            }
            let resp = self
                .send_retried(reqwest::Method::GET, &url, &token)
                .await?;
            if resp.status().as_u16() == 404 {
                return Ok(None);
            }
            let page: Page = json_or_error(resp, url.as_str()).await?;
            out.extend(page.contents);
            match page.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => page_token = Some(t),
                None => return Ok(Some(out)),
            }
        }
    }
}

/// A transport error, its URL redacted (the error's own text would carry
/// the full URL, credential included).
impl Workspace {
    /// A small file's bytes (a manifest); `None` when it does not exist.
    pub async fn read_file(&self, volume_path: &str) -> Result<Option<Vec<u8>>, DatabricksError> {
        let url = self.fs_url("files", volume_path)?;
        let token = self.auth.token().await?;
        let resp = self
            .send_retried(reqwest::Method::GET, &url, &token)
            .await?;
        if resp.status().as_u16() == 404 {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return expect_success(resp, url.as_str()).await.map(|_| None);
        }
        resp.bytes()
            .await
            .map(|b| Some(b.to_vec()))
            .map_err(http_error)
    }

    /// Deletes a directory and everything in it (the Files API deletes only
    /// empty directories); a missing one is not an error.
    pub async fn delete_directory(&self, volume_path: &str) -> Result<(), DatabricksError> {
        let mut stack = vec![(volume_path.to_string(), false)];
        while let Some((dir, listed)) = stack.pop() {
            if !listed {
                let Some(entries) = self.list_directory(&dir).await? else {
                    continue;
                };
                stack.push((dir.clone(), true));
                for e in entries {
                    if e.is_directory {
                        stack.push((e.path, false));
                    } else {
                        self.delete_file(&e.path).await?;
                    }
                }
                continue;
            }
            let url = self.fs_url("directories", &dir)?;
            let token = self.auth.token().await?;
            let resp = self
                .send_retried(reqwest::Method::DELETE, &url, &token)
                .await?;
            if resp.status().as_u16() != 404 {
                expect_success(resp, url.as_str()).await?;
            }
        }
        Ok(())
    }
}

async fn expect_success(resp: reqwest::Response, url: &str) -> Result<(), DatabricksError> {
    if resp.status().is_success() {
        return Ok(());
    }
    json_or_error::<serde_json::Value>(resp, url)
        .await
        .map(|_| ())
}
