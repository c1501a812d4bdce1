//! Authentication: bearer personal access tokens, and OAuth M2M
//! (client credentials) issuing access tokens that expire. Every credential
//! belongs to a principal: a PAT to the user it was given for, an OAuth
//! token to its client (a service principal, named by its application id);
//! the middleware hands the caller to the handlers as a request extension.
//! Token endpoint and discovery documents as in
//! https://docs.databricks.com/dev-tools/auth/oauth-m2m (manual token
//! generation: `POST /oidc/v1/token`, `grant_type=client_credentials`,
//! `scope=all-apis`), and the discovery the official SDK performs
//! (`/.well-known/databricks-config`, `/oidc/.well-known/oauth-authorization-server`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::error::ApiError;
use super::Shared;

/// Known credentials and the OAuth tokens issued so far.
#[derive(Debug)]
pub struct TokenStore {
    /// Personal access token → its user.
    pats: HashMap<String, String>,
    clients: HashMap<String, String>,
    ttl: Mutex<Duration>,
    /// OAuth access token → (expiry, client id).
    issued: Mutex<HashMap<String, (Instant, String)>>,
}

/// The result of checking a bearer token.
enum Check {
    /// The principal the token belongs to.
    Valid(String),
    Expired,
    Unknown,
}

impl TokenStore {
    /// `pats` maps each personal access token to its principal.
    pub fn new(
        pats: HashMap<String, String>,
        clients: HashMap<String, String>,
        ttl: Duration,
    ) -> Self {
        TokenStore {
            pats,
            clients,
            ttl: Mutex::new(ttl),
            issued: Mutex::new(HashMap::new()),
        }
    }

    /// Lifetime of OAuth tokens issued from now on.
    pub fn set_ttl(&self, ttl: Duration) {
        *self.ttl.lock().unwrap_or_else(|p| p.into_inner()) = ttl;
    }

    fn ttl(&self) -> Duration {
        *self.ttl.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn check(&self, token: &str) -> Check {
        if let Some(p) = self.pats.get(token) {
            return Check::Valid(p.clone());
        }
        match self
            .issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
        {
            Some((exp, client)) if *exp > Instant::now() => Check::Valid(client.clone()),
            Some(_) => Check::Expired,
            None => Check::Unknown,
        }
    }

    fn issue(&self, client: &str) -> (String, Duration) {
        let token = format!("dbx-sandbox-oauth-{}", uuid::Uuid::new_v4().simple());
        let ttl = self.ttl();
        self.issued
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), (Instant::now() + ttl, client.to_string()));
        (token, ttl)
    }
}

impl Check {
    /// This check, or `other`'s when this one knows nothing of the token.
    fn or_else(self, other: impl FnOnce() -> Check) -> Check {
        match self {
            Check::Unknown => other(),
            known => known,
        }
    }
}

/// Azure Databricks' first-party application: the audience of the Entra ID
/// tokens a workspace takes
/// (https://learn.microsoft.com/en-us/azure/databricks/dev-tools/auth/oauth-m2m#microsoft-entra-id).
pub const AZURE_DATABRICKS: &str = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";

/// A Microsoft Entra ID access token of the trusted tenant, for Azure
/// Databricks, of a service principal added to the workspace: valid as
/// that service principal (named by its application id) until it expires
/// on the workspace's clock. Anything else is unknown here.
fn entra_check(shared: &Shared, token: &str) -> Check {
    let Some(trust) = &shared.config.entra else {
        return Check::Unknown;
    };
    let Ok(claims) = crate::entra::jwt::verify(token, &trust.keys) else {
        return Check::Unknown;
    };
    let text = |k: &str| claims.get(k).and_then(|v| v.as_str()).unwrap_or_default();
    if text("aud") != AZURE_DATABRICKS || !text("tid").eq_ignore_ascii_case(&trust.tenant_id) {
        return Check::Unknown;
    }
    let now = shared.engine.clock().now().timestamp();
    if claims
        .get("exp")
        .and_then(|v| v.as_i64())
        .is_none_or(|exp| exp <= now)
    {
        return Check::Expired;
    }
    let app = text("appid");
    match shared
        .config
        .entra_service_principals
        .iter()
        .find(|a| a.eq_ignore_ascii_case(app))
    {
        Some(a) => Check::Valid(a.clone()),
        None => Check::Unknown,
    }
}

/// Requires a valid bearer token on workspace API calls and attaches the
/// caller ([`super::sql::Caller`]) to the request.
pub async fn require_bearer(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string());
    let err = match token {
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Credential was not sent or was of an unsupported type for this API.",
        ),
        Some(t) => match shared.tokens.check(&t).or_else(|| entra_check(&shared, &t)) {
            Check::Valid(principal) => {
                let caller = shared.identities.caller(&principal);
                req.extensions_mut().insert(caller);
                return next.run(req).await;
            }
            Check::Expired => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "UNAUTHENTICATED",
                "The access token has expired.",
            ),
            Check::Unknown => {
                // A workspace answers an unknown token with a legacy body whose
                // error_code is the number 403 (seen in the wild, e.g.
                // github.com/databricks/databricks-sdk-go/issues/873; the error
                // page https://docs.databricks.com/api/account/errors tells
                // clients to expect non-string codes).
                tracing::info!(path = %req.uri().path(), "refused an unknown token");
                return (
                    StatusCode::FORBIDDEN,
                    [("x-databricks-reason-phrase", "Invalid access token.")],
                    Json(json!({"error_code": 403, "message": "Invalid access token."})),
                )
                    .into_response();
            }
        },
    };
    tracing::info!(path = %req.uri().path(), code = %err.error_code, "refused request");
    err.into_response()
}

/// `GET /.well-known/databricks-config`: the host metadata the SDK reads first.
pub async fn host_metadata(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    Json(json!({
        "oidc_endpoint": format!("{}/oidc", shared.base_url),
        "workspace_id": shared.workspace_id,
    }))
}

/// `GET /oidc/.well-known/oauth-authorization-server`.
pub async fn oidc_discovery(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let base = &shared.base_url;
    Json(json!({
        "issuer": format!("{base}/oidc"),
        "authorization_endpoint": format!("{base}/oidc/v1/authorize"),
        "token_endpoint": format!("{base}/oidc/v1/token"),
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["all-apis"],
        "response_types_supported": ["code"],
    }))
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    use base64_lite::decode;
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = v
        .strip_prefix("Basic ")
        .or_else(|| v.strip_prefix("basic "))?;
    let raw = String::from_utf8(decode(b64.trim())?).ok()?;
    let (id, secret) = raw.split_once(':')?;
    Some((id.to_string(), secret.to_string()))
}

/// `POST /oidc/v1/token`: OAuth client credentials (RFC 6749 §4.4); errors in
/// the OAuth format (`error`, `error_description`).
pub async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: HashMap<String, String> = crate::form::url_form(&body);
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "Only grant_type=client_credentials is supported.",
        );
    }
    let creds = basic_credentials(&headers).or_else(|| {
        Some((
            form.get("client_id")?.clone(),
            form.get("client_secret")?.clone(),
        ))
    });
    let Some((id, secret)) = creds else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed: no client credentials.",
        );
    };
    if shared.tokens.clients.get(&id) != Some(&secret) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed.",
        );
    }
    let scope = form
        .get("scope")
        .cloned()
        .unwrap_or_else(|| "all-apis".into());
    if scope
        .split_whitespace()
        .any(|s| s != "all-apis" && s != "offline_access")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            "The requested scope is not allowed (only all-apis).",
        );
    }
    let (tok, ttl) = shared.tokens.issue(&id);
    Json(json!({
        "access_token": tok,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "scope": scope,
    }))
    .into_response()
}

/// Standard base64 decoding for the Basic authorization header (no extra
/// dependency for one header).
mod base64_lite {
    pub fn decode(s: &str) -> Option<Vec<u8>> {
        let mut out = Vec::with_capacity(s.len() * 3 / 4);
        let mut buf = 0u32;
        let mut bits = 0;
        for c in s.bytes() {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' | b'-' => 62,
                b'/' | b'_' => 63,
                b'=' => break,
                _ => return None,
            } as u32;
            buf = (buf << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buf >> bits) as u8);
                buf &= (1 << bits) - 1;
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn decodes_forms_and_basic() {
        let f = crate::form::url_form("grant_type=client_credentials&scope=all-apis+x&a=%2F");
        assert_eq!(f["scope"], "all-apis x");
        assert_eq!(f["a"], "/");
        assert_eq!(
            super::base64_lite::decode("aWQ6c2VjcmV0").as_deref(),
            Some(&b"id:secret"[..])
        );
    }
}
