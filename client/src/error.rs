//! Typed errors with the API's error body, whatever went wrong.

use crate::types::ErrorBody;

/// The server's `{code, message, details}` with the HTTP status.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl ApiError {
    pub(crate) fn from_body(status: u16, b: ErrorBody) -> Self {
        ApiError {
            status,
            code: b.code,
            message: b.message,
            details: b.details.map(serde_json::Value::Object),
        }
    }

    /// The request field a 400/422 names (`details.field`).
    pub fn field(&self) -> Option<&str> {
        self.details.as_ref()?.get("field")?.as_str()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    /// 401: missing or unknown token.
    #[error("unauthorized: {0}")]
    Unauthorized(ApiError),
    /// 403: the token lacks the right (a table, a path).
    #[error("forbidden: {0}")]
    Forbidden(ApiError),
    /// 404: no such job or event for this token.
    #[error("not found: {0}")]
    NotFound(ApiError),
    /// 400/413/415/422: the request is wrong; `field()` names the field.
    #[error("invalid request: {0}")]
    Validation(ApiError),
    /// 409: e.g. cancelling a finished job.
    #[error("conflict: {0}")]
    Conflict(ApiError),
    /// 5xx from the bridge (or Databricks behind it).
    #[error("server error: {0}")]
    Server(ApiError),
    /// The server could not be reached or the exchange broke.
    #[error("cannot reach the bridge: {0}")]
    Transport(String),
    /// An answer the API does not document.
    #[error("unexpected answer {status}: {message}")]
    Unexpected { status: u16, message: String },
    /// `wait_for_job` gave up; the last status seen.
    #[error("job {} still {:?} after the wait", .0.job_id, .0.state)]
    Timeout(Box<crate::types::JobStatus>),
}

impl BridgeError {
    pub(crate) fn from_api(e: ApiError) -> Self {
        match e.status {
            401 => BridgeError::Unauthorized(e),
            403 => BridgeError::Forbidden(e),
            404 => BridgeError::NotFound(e),
            409 => BridgeError::Conflict(e),
            400 | 413 | 415 | 422 => BridgeError::Validation(e),
            _ => BridgeError::Server(e),
        }
    }

    /// The API's error body, when the server sent one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            BridgeError::Unauthorized(e)
            | BridgeError::Forbidden(e)
            | BridgeError::NotFound(e)
            | BridgeError::Validation(e)
            | BridgeError::Conflict(e)
            | BridgeError::Server(e) => Some(e),
            _ => None,
        }
    }

    /// Whether the answer says the first request with the same
    /// `Idempotency-Key` is still being processed (409): asking again
    /// shortly gets its answer.
    pub(crate) fn in_progress(&self) -> bool {
        matches!(self, BridgeError::Conflict(e) if e.code == "idempotency_key_in_use")
    }

    /// Whether a repeat may succeed (for idempotent calls only).
    pub(crate) fn transient(&self) -> bool {
        match self {
            BridgeError::Transport(_) => true,
            BridgeError::Server(e) => matches!(e.status, 502..=504),
            BridgeError::Unexpected { status, .. } => matches!(status, 429 | 502..=504),
            _ => false,
        }
    }
}

/// The cases every operation shares; `documented` turns a documented error
/// response into the right variant.
pub(crate) fn from_progenitor<E>(
    e: progenitor_client::Error<E>,
    documented: impl FnOnce(progenitor_client::ResponseValue<E>) -> BridgeError,
) -> BridgeError {
    use progenitor_client::Error as E;
    match e {
        E::ErrorResponse(rv) => documented(rv),
        E::UnexpectedResponse(r) => BridgeError::Unexpected {
            status: r.status().as_u16(),
            message: r
                .status()
                .canonical_reason()
                .unwrap_or("unexpected status")
                .to_string(),
        },
        E::CommunicationError(e) | E::ResponseBodyError(e) | E::InvalidUpgrade(e) => {
            BridgeError::Transport(e.without_url().to_string())
        }
        E::InvalidResponsePayload(_, e) => BridgeError::Unexpected {
            status: 200,
            message: format!("the answer does not match the API: {e}"),
        },
        E::InvalidRequest(m) | E::Custom(m) => BridgeError::Transport(m),
    }
}

impl From<progenitor_client::Error<ErrorBody>> for BridgeError {
    fn from(e: progenitor_client::Error<ErrorBody>) -> Self {
        from_progenitor(e, |rv| {
            let status = rv.status().as_u16();
            BridgeError::from_api(ApiError::from_body(status, rv.into_inner()))
        })
    }
}

impl From<progenitor_client::Error<()>> for BridgeError {
    fn from(e: progenitor_client::Error<()>) -> Self {
        from_progenitor(e, |rv| BridgeError::Unexpected {
            status: rv.status().as_u16(),
            message: "error".into(),
        })
    }
}
