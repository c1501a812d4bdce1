//! Faults injected into the workspace double so clients' retries and
//! recovery are tested: HTTP errors (429 with Retry-After, 503, 500), slow
//! responses, FAILED statements, expired result links, downloads cut
//! mid-stream, a slow link for file transfers (`throttle.rs`), and answers
//! lost after the work was done: the request is served — the file written,
//! the statement committed — and then its answer is a 502/503/504, as when
//! a gateway or the network fails on the way back. A client cannot tell
//! that from a failure before the work, which is what it must be ready for.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use regex::Regex;

use super::error::ApiError;

/// One queued HTTP failure rule.
#[derive(Debug, Clone)]
struct HttpFault {
    status: StatusCode,
    remaining: u32,
    retry_after: Option<u64>,
    path_prefix: Option<String>,
}

#[derive(Debug)]
struct StatementFault {
    pattern: Regex,
    remaining: u32,
}

/// A request served, then answered with `status` instead.
#[derive(Debug, Clone)]
struct LostAnswer {
    status: StatusCode,
    remaining: u32,
    path_prefix: Option<String>,
}

/// The fault switches; shared by the server and the test that holds the handle.
#[derive(Debug, Default)]
pub struct Faults {
    http: Mutex<Vec<HttpFault>>,
    statements: Mutex<Vec<StatementFault>>,
    lost: Mutex<Vec<LostAnswer>>,
    lost_statements: Mutex<Vec<(StatementFault, StatusCode)>>,
    delay_ms: AtomicU64,
    expire_links: AtomicBool,
    cut_after_bytes: AtomicU64,
    bandwidth_bytes_per_sec: AtomicU64,
    commit_delay_ms: AtomicU64,
}

impl Faults {
    fn push(&self, f: HttpFault) {
        self.http.lock().unwrap_or_else(|p| p.into_inner()).push(f);
    }

    /// The next `times` requests (under `path_prefix`, if given) get 429 Too
    /// Many Requests with `Retry-After: retry_after_secs`.
    pub fn throttle(&self, times: u32, retry_after_secs: u64, path_prefix: Option<&str>) {
        self.push(HttpFault {
            status: StatusCode::TOO_MANY_REQUESTS,
            remaining: times,
            retry_after: Some(retry_after_secs),
            path_prefix: path_prefix.map(str::to_string),
        });
    }

    /// The next `times` requests get 503 Service Unavailable.
    pub fn unavailable(&self, times: u32, path_prefix: Option<&str>) {
        self.push(HttpFault {
            status: StatusCode::SERVICE_UNAVAILABLE,
            remaining: times,
            retry_after: None,
            path_prefix: path_prefix.map(str::to_string),
        });
    }

    /// The next `times` requests get 500 Internal Server Error.
    pub fn internal_error(&self, times: u32, path_prefix: Option<&str>) {
        self.push(HttpFault {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            remaining: times,
            retry_after: None,
            path_prefix: path_prefix.map(str::to_string),
        });
    }

    /// Every response is delayed by this long (zero turns it off).
    pub fn delay_responses(&self, delay: Duration) {
        self.delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// The next `times` statements whose text matches `pattern` end FAILED.
    pub fn fail_statements(&self, pattern: &str, times: u32) -> Result<(), regex::Error> {
        let pattern = Regex::new(pattern)?;
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(StatementFault {
                pattern,
                remaining: times,
            });
        Ok(())
    }

    /// The next `times` requests (under `path_prefix`, if given) are served
    /// — what they write is written — and then answered with `status`
    /// (502, 503 or 504) instead of their answer.
    pub fn lose_answers(&self, times: u32, status: u16, path_prefix: Option<&str>) {
        self.lost
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(LostAnswer {
                status: StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                remaining: times,
                path_prefix: path_prefix.map(str::to_string),
            });
    }

    /// The next `times` statements whose text matches `pattern` run to the
    /// end (a write commits), and then the answer that would report their
    /// outcome — the submit's, or the first poll's after it ended — is
    /// `status` (502, 503 or 504).
    pub fn lose_statement_answers(
        &self,
        pattern: &str,
        times: u32,
        status: u16,
    ) -> Result<(), regex::Error> {
        let pattern = Regex::new(pattern)?;
        self.lost_statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((
                StatementFault {
                    pattern,
                    remaining: times,
                },
                StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            ));
        Ok(())
    }

    /// Every Files API upload, once its whole body is received and stored,
    /// waits this long before answering, as a store finalising a large
    /// object does (zero turns it off).
    pub fn slow_commits(&self, delay: Duration) {
        self.commit_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    pub(crate) fn commit_delay(&self) -> Duration {
        Duration::from_millis(self.commit_delay_ms.load(Ordering::SeqCst))
    }

    /// While on, every external link is issued already expired.
    pub fn expire_external_links(&self, on: bool) {
        self.expire_links.store(on, Ordering::SeqCst);
    }

    /// Downloads (files and result links) are cut after this many bytes
    /// (zero turns it off).
    pub fn cut_downloads_after(&self, bytes: u64) {
        self.cut_after_bytes.store(bytes, Ordering::SeqCst);
    }

    /// File transfers (Files API uploads and downloads, pre-signed upload
    /// and download URLs, result links) move at this many bytes per second
    /// in each direction, per request (zero turns it off).
    pub fn limit_bandwidth(&self, bytes_per_sec: u64) {
        self.bandwidth_bytes_per_sec
            .store(bytes_per_sec, Ordering::SeqCst);
    }

    /// Clears every fault.
    pub fn clear(&self) {
        self.http.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clear();
        self.lost_statements
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.delay_ms.store(0, Ordering::SeqCst);
        self.expire_links.store(false, Ordering::SeqCst);
        self.cut_after_bytes.store(0, Ordering::SeqCst);
        self.bandwidth_bytes_per_sec.store(0, Ordering::SeqCst);
        self.commit_delay_ms.store(0, Ordering::SeqCst);
    }

    pub(crate) fn delay(&self) -> Duration {
        Duration::from_millis(self.delay_ms.load(Ordering::SeqCst))
    }

    pub(crate) fn links_expired(&self) -> bool {
        self.expire_links.load(Ordering::SeqCst)
    }

    pub(crate) fn cut_after(&self) -> Option<u64> {
        match self.cut_after_bytes.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }

    pub(crate) fn bandwidth(&self) -> Option<u64> {
        match self.bandwidth_bytes_per_sec.load(Ordering::SeqCst) {
            0 => None,
            n => Some(n),
        }
    }

    /// Consumes a queued HTTP failure that applies to `path`, if any.
    pub(crate) fn take_http(&self, path: &str) -> Option<ApiError> {
        let mut rules = self.http.lock().unwrap_or_else(|p| p.into_inner());
        let i = rules.iter().position(|f| {
            f.remaining > 0
                && f.path_prefix
                    .as_deref()
                    .map(|p| path.starts_with(p))
                    .unwrap_or(true)
        })?;
        let f = &mut rules[i];
        f.remaining -= 1;
        let (code, msg) = match f.status {
            StatusCode::TOO_MANY_REQUESTS => (
                "REQUEST_LIMIT_EXCEEDED",
                "Too many requests (sandbox fault injection). Please retry later.",
            ),
            StatusCode::SERVICE_UNAVAILABLE => (
                "TEMPORARILY_UNAVAILABLE",
                "The service is temporarily unavailable (sandbox fault injection).",
            ),
            _ => (
                "INTERNAL_ERROR",
                "Internal error (sandbox fault injection).",
            ),
        };
        let mut e = ApiError::new(f.status, code, msg);
        e.retry_after = f.retry_after;
        if f.remaining == 0 {
            rules.remove(i);
        }
        Some(e)
    }

    /// Consumes a lost answer that applies to `path`: the error to answer
    /// with after serving the request.
    pub(crate) fn take_lost(&self, path: &str) -> Option<ApiError> {
        let mut rules = self.lost.lock().unwrap_or_else(|p| p.into_inner());
        let i = rules.iter().position(|f| {
            f.remaining > 0 && f.path_prefix.as_deref().is_none_or(|p| path.starts_with(p))
        })?;
        rules[i].remaining -= 1;
        let status = rules[i].status;
        if rules[i].remaining == 0 {
            rules.remove(i);
        }
        Some(lost_answer(status))
    }

    /// Consumes a lost answer for a statement matching `statement`.
    pub(crate) fn take_lost_statement(&self, statement: &str) -> Option<ApiError> {
        let mut rules = self
            .lost_statements
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let i = rules
            .iter()
            .position(|(f, _)| f.remaining > 0 && f.pattern.is_match(statement))?;
        rules[i].0.remaining -= 1;
        let status = rules[i].1;
        if rules[i].0.remaining == 0 {
            rules.remove(i);
        }
        Some(lost_answer(status))
    }

    /// Consumes a statement failure matching `statement`, if any.
    pub(crate) fn take_statement(&self, statement: &str) -> bool {
        let mut rules = self.statements.lock().unwrap_or_else(|p| p.into_inner());
        let Some(i) = rules
            .iter()
            .position(|f| f.remaining > 0 && f.pattern.is_match(statement))
        else {
            return false;
        };
        rules[i].remaining -= 1;
        if rules[i].remaining == 0 {
            rules.remove(i);
        }
        true
    }
}

/// The gateway's answer when the service's was lost.
fn lost_answer(status: StatusCode) -> ApiError {
    let code = match status {
        StatusCode::BAD_GATEWAY => "BAD_GATEWAY",
        StatusCode::GATEWAY_TIMEOUT => "DEADLINE_EXCEEDED",
        _ => "TEMPORARILY_UNAVAILABLE",
    };
    ApiError::new(
        status,
        code,
        "The answer was lost on its way back (sandbox fault injection); the request was served.",
    )
}
