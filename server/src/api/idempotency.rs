//! `Idempotency-Key` on the POSTs that create something (`/extract`,
//! `/sync/events`), after draft-ietf-httpapi-idempotency-key-header-06:
//!
//! - a retry with the same key, by the same user, of the same request gets
//!   the first answer again (same status, body and `Location`; same job or
//!   event id) and creates nothing (§2.6);
//! - the same key with a different request is 422 (§2.7: "If there is an
//!   attempt to reuse an idempotency key with a different request payload,
//!   the resource server SHOULD reply with a HTTP 422 status code");
//! - a retry while the first request is still being processed is 409 (§2.7),
//!   with `Retry-After`, so a client waits and asks again;
//! - keys are scoped per user and expire after `--idempotency-ttl` (§2.3,
//!   24 hours by default); the fingerprint (§2.4) is a SHA-256 of the
//!   operation and of the request as decoded (defaults filled in, keys
//!   sorted), so spacing or key order does not make a retry different.
//!
//! Only answers that created something (2xx) are kept: a refused or failed
//! request created nothing, so its retry is simply processed again. The
//! work runs in its own task, so a client that hangs up mid-request (the
//! usual reason to retry) does not cancel it half-way: the retry finds it
//! in progress, then its answer.

use std::future::Future;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::state::AppState;
use crate::jobs::{Reservation, StoredAnswer};

/// The request header.
pub const HEADER: &str = "Idempotency-Key";

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// The spec's pattern for a key: visible ASCII (the draft's key is a
/// Structured Field String, whose quoted form `"..."` also matches).
pub const KEY_PATTERN: &str = "^[!-~]+$";

/// The key a request carries, if any (absent: the request is processed as
/// every time, with no protection against retries).
pub struct IdempotencyKey(pub Option<String>);

/// Checks a key: 1..=255 visible ASCII characters. The draft sends it as a
/// Structured Field String (`"abc"`); the quotes are removed, and a bare
/// key (as many clients send) is taken as it is.
pub fn parse_key(value: &[u8]) -> Result<String, ApiError> {
    let invalid = |why: &str| {
        ApiError::invalid(HEADER, format!("{HEADER} {why}"))
            .details(serde_json::json!({ "field": HEADER }))
    };
    if value.is_empty() {
        return Err(invalid("is empty"));
    }
    if value.len() > MAX_KEY_LEN {
        return Err(invalid(&format!("is longer than {MAX_KEY_LEN} characters")));
    }
    if !value.iter().all(|b| (b'!'..=b'~').contains(b)) {
        return Err(invalid(
            "must be visible ASCII characters (letters, digits, punctuation), without spaces",
        ));
    }
    let text = String::from_utf8_lossy(value);
    let unquoted = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|t| !t.is_empty());
    Ok(unquoted.unwrap_or(&text).to_string())
}

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let mut values = parts.headers.get_all(HEADER).iter();
        let Some(first) = values.next() else {
            return Ok(IdempotencyKey(None));
        };
        if values.next().is_some() {
            return Err(ApiError::invalid(
                HEADER,
                format!("send one {HEADER} header, not several"),
            ));
        }
        parse_key(first.as_bytes()).map(|k| IdempotencyKey(Some(k)))
    }
}

/// A successful answer of a protected operation, kept for its retries.
pub struct Answer {
    pub status: StatusCode,
    pub body: serde_json::Value,
    pub location: Option<String>,
}

impl IntoResponse for Answer {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(l) = self.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            r.headers_mut().insert(header::LOCATION, l);
        }
        r
    }
}

impl From<StoredAnswer> for Answer {
    fn from(a: StoredAnswer) -> Self {
        Answer {
            status: StatusCode::from_u16(a.status).unwrap_or(StatusCode::OK),
            body: a.body,
            location: a.location,
        }
    }
}

/// The JSON value with object keys sorted at every level.
fn canonical(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = serde_json::Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            serde_json::Value::Object(out)
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// What identifies a request: its operation and decoded body.
pub fn fingerprint(operation: &str, request: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(operation.as_bytes());
    h.update(b"\n");
    h.update(canonical(request).to_string().as_bytes());
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// Releases a reservation unless its answer was recorded, also when the
/// work panics.
struct Reserved {
    state: AppState,
    owner: String,
    key: String,
    done: bool,
}

impl Reserved {
    fn finish(mut self, answer: &Result<Answer, ApiError>) {
        if let Ok(a) = answer {
            if a.status.is_success() {
                let stored = StoredAnswer {
                    status: a.status.as_u16(),
                    body: a.body.clone(),
                    location: a.location.clone(),
                };
                let store = self.state.runner.store();
                match store.complete_key(
                    &self.owner,
                    &self.key,
                    &stored,
                    self.state.idempotency_ttl,
                ) {
                    Ok(()) => self.done = true,
                    Err(e) => tracing::error!(error = %e, "cannot record an idempotent answer"),
                }
            }
        }
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self
                .state
                .runner
                .store()
                .release_key(&self.owner, &self.key)
            {
                tracing::error!(error = %e, "cannot release an idempotency key");
            }
        }
    }
}

/// Runs `work` once per (`owner`, `key`): the first time, and for every
/// retry of the same request the answer it gave. Without a key, runs it.
pub async fn once<F>(
    state: &AppState,
    owner: &str,
    key: Option<String>,
    operation: &str,
    request: &serde_json::Value,
    work: F,
) -> Result<Response, ApiError>
where
    F: Future<Output = Result<Answer, ApiError>> + Send + 'static,
{
    let Some(key) = key else {
        return work.await.map(IntoResponse::into_response);
    };
    let print = fingerprint(operation, request);
    let store = state.runner.store();
    match store
        .reserve_key(owner, &key, &print, state.idempotency_ttl)
        .map_err(ApiError::internal)?
    {
        Reservation::Replay(answer) => {
            tracing::info!(
                user = owner,
                operation,
                "answered a retry with its first answer"
            );
            Ok(Answer::from(answer).into_response())
        }
        Reservation::Mismatch => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            format!(
                "this {HEADER} was used for a different request; send a new key for a new request"
            ),
        )
        .details(serde_json::json!({ "field": HEADER }))),
        Reservation::InProgress => {
            let mut e = ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_key_in_use",
                format!(
                    "the first request with this {HEADER} is still being processed; retry shortly"
                ),
            )
            .details(serde_json::json!({ "field": HEADER }));
            e.retry_after = Some(1);
            Err(e)
        }
        Reservation::Fresh => {
            let reserved = Reserved {
                state: state.clone(),
                owner: owner.to_string(),
                key,
                done: false,
            };
            let task = tokio::spawn(async move {
                let answer = work.await;
                reserved.finish(&answer);
                answer
            });
            task.await
                .map_err(|e| ApiError::internal(format!("the request's task failed: {e}")))?
                .map(IntoResponse::into_response)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_visible_ascii_and_lose_their_quotes() {
        assert_eq!(parse_key(b"abc-123").unwrap(), "abc-123");
        assert_eq!(parse_key(b"\"8e03978e\"").unwrap(), "8e03978e");
        assert_eq!(parse_key(b"\"\"").unwrap(), "\"\"");
        assert_eq!(parse_key(b"\"").unwrap(), "\"");
        for bad in [&b""[..], b"a b", b"caf\xc3\xa9", b"tab\there"] {
            let e = parse_key(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(e.body.details.unwrap()["field"], HEADER);
        }
        assert!(parse_key(&[b'k'; MAX_KEY_LEN]).is_ok());
        assert!(parse_key(&[b'k'; MAX_KEY_LEN + 1]).is_err());
    }

    #[test]
    fn the_fingerprint_ignores_key_order_not_values() {
        let a = serde_json::json!({"a": 1, "b": {"y": [1, 2], "x": "s"}});
        let b: serde_json::Value =
            serde_json::from_str(r#"{"b": {"x": "s", "y": [1, 2]}, "a": 1}"#).unwrap();
        assert_eq!(
            fingerprint("POST /extract", &a),
            fingerprint("POST /extract", &b)
        );
        assert_ne!(
            fingerprint("POST /extract", &a),
            fingerprint("POST /sync/events", &a)
        );
        let c = serde_json::json!({"a": 1, "b": {"y": [2, 1], "x": "s"}});
        assert_ne!(
            fingerprint("POST /extract", &a),
            fingerprint("POST /extract", &c)
        );
    }
}
