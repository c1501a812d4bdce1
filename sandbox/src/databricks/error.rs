//! REST error responses: every Databricks service answers a failed request
//! with `{"error_code": ..., "message": ...}` and a conventional HTTP status
//! (https://docs.databricks.com/api/account/errors).

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::sql::{ErrorKind, SqlError};

#[derive(Debug, Clone, thiserror::Error)]
#[error("{status} {error_code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub error_code: String,
    pub message: String,
    /// Seconds for a `Retry-After` header (429 and 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_code: code.to_string(),
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "INVALID_PARAMETER_VALUE", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR", message)
    }

    /// A Unity Catalog failure from the SQL layer, with its status.
    pub fn from_catalog(e: SqlError) -> Self {
        let (status, code) = match e.kind {
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, uc_code(&e.class, "DOES_NOT_EXIST")),
            ErrorKind::AlreadyExists => (StatusCode::CONFLICT, uc_code(&e.class, "ALREADY_EXISTS")),
            ErrorKind::Invalid => (StatusCode::BAD_REQUEST, e.class.clone()),
            // Unity Catalog answers a missing privilege with 403 and the
            // sentence alone ("User does not have USE CATALOG on Catalog 'x'.").
            ErrorKind::PermissionDenied => {
                return Self::new(StatusCode::FORBIDDEN, "PERMISSION_DENIED", e.detail())
            }
            ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR".into()),
        };
        Self::new(status, &code, e.message)
    }
}

/// Unity Catalog's error codes name the securable (`CATALOG_DOES_NOT_EXIST`).
fn uc_code(class: &str, suffix: &str) -> String {
    let kind = if class.contains("CATALOG") {
        "CATALOG"
    } else if class.contains("SCHEMA") {
        "SCHEMA"
    } else if class.contains("VOLUME") {
        "VOLUME"
    } else if class.contains("TABLE") {
        "TABLE"
    } else {
        return if suffix == "DOES_NOT_EXIST" {
            "NOT_FOUND".into()
        } else {
            "ALREADY_EXISTS".into()
        };
    };
    format!("{kind}_{suffix}")
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error_code": self.error_code,
            "message": self.message,
        });
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                resp.headers_mut().insert("retry-after", v);
            }
        }
        resp
    }
}
