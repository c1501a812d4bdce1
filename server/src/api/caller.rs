//! Who is calling: the bearer token checked against permissions.yaml.
//! Missing or unknown tokens are 401 with a `WWW-Authenticate` challenge;
//! every decision is audited with the caller's address.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use super::error::ApiError;
use super::state::AppState;
use crate::auth::{AuditEvent, EventType, User};

/// An authenticated caller.
pub struct Caller {
    pub user: std::sync::Arc<User>,
    pub ip: Option<String>,
}

impl Caller {
    /// An audit line about this caller.
    pub fn event(&self, t: EventType, resource: &str, action: &str) -> AuditEvent {
        AuditEvent::new(t, resource, action)
            .user(self.user.name.clone())
            .ip(self.ip.as_deref())
    }
}

pub fn source_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
}

/// Checks the bearer token of a request; every decision is audited.
fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let ip = source_ip(parts);
    let resource = parts.uri.path().to_string();
    let action = parts.method.as_str().to_string();
    let refuse = |why: &str, error: Option<&str>| {
        state.audit.record(
            AuditEvent::new(EventType::AuthFailure, resource.clone(), &action)
                .ip(ip.as_deref())
                .detail(why),
        );
        ApiError::unauthorized(why, error)
    };
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Err(refuse(
            "an Authorization: Bearer <token> header is required",
            None,
        ));
    };
    let value = value.to_str().unwrap_or("");
    let token = match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
        _ => {
            return Err(refuse(
                "the Authorization header must be 'Bearer <token>'",
                Some("invalid_request"),
            ))
        }
    };
    match state.permissions.authenticate(token) {
        Some(user) => {
            state.audit.record(
                AuditEvent::new(EventType::AuthSuccess, resource, &action)
                    .user(user.name.clone())
                    .ip(ip.as_deref()),
            );
            Ok(Caller {
                user: user.clone(),
                ip,
            })
        }
        None => Err(refuse("the token is not valid", Some("invalid_token"))),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state)
    }
}

/// The caller on a route open to everyone, when it sent a valid token;
/// `None` without a token (not audited: probes send none) or with one
/// that is not valid (audited as a failure, but not refused).
pub struct MaybeCaller(pub Option<Caller>);

impl FromRequestParts<AppState> for MaybeCaller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, std::convert::Infallible> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(MaybeCaller(None));
        }
        Ok(MaybeCaller(authenticate(parts, state).ok()))
    }
}
