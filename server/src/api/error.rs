//! The one error shape of the API: `{"code", "message", "details"}` with
//! the HTTP status, for every 4xx and 5xx (axum's own rejections included).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The body of every error response.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`,
    /// `invalid_json`, `validation_failed`, `payload_too_large`,
    /// `unsupported_media_type`, `conflict`, `method_not_allowed`,
    /// `idempotency_key_reused` (422: the key was sent with another
    /// request), `idempotency_key_in_use` (409: its first request is still
    /// being processed), `not_ready`, `unavailable`, `internal`.
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
    /// Structured context, e.g. `{"field": "country"}` or the tables refused.
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<String>,
    /// Seconds for a `Retry-After` header (a retry may succeed then).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody {
                code: code.to_string(),
                message: message.into(),
                details: None,
            },
            challenge: None,
            retry_after: None,
        }
    }

    pub fn details(mut self, details: serde_json::Value) -> Self {
        self.body.details = Some(details);
        self
    }

    /// A 422 naming the request field at fault.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            message,
        )
        .details(serde_json::json!({ "field": field }))
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        tracing::error!(error = %message, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            message.to_string(),
        )
    }

    /// A 401 with the bearer challenge (RFC 6750 §3).
    pub fn unauthorized(message: &str, error: Option<&str>) -> Self {
        let mut e = ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message);
        e.challenge = Some(match error {
            Some(code) => format!(
                "Bearer realm=\"sql-databricks-bridge\", error=\"{code}\", error_description=\"{message}\""
            ),
            None => "Bearer realm=\"sql-databricks-bridge\"".to_string(),
        });
        e
    }

    /// The generic error for a status that arrived without our shape.
    pub fn for_status(status: StatusCode) -> Self {
        let code = match status {
            StatusCode::BAD_REQUEST => "bad_request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::FORBIDDEN => "forbidden",
            StatusCode::NOT_FOUND => "not_found",
            StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
            StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
            StatusCode::REQUEST_TIMEOUT => "timeout",
            s if s.is_server_error() => "internal",
            _ => "error",
        };
        let reason = status.canonical_reason().unwrap_or("error");
        ApiError::new(status, code, reason)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status, self.body.code, self.body.message
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (self.status, Json(self.body)).into_response();
        if let Some(c) = self.challenge {
            if let Ok(v) = HeaderValue::from_str(&c) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        if let Some(secs) = self.retry_after {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        r
    }
}
