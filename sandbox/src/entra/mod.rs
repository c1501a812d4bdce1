//! The Microsoft Entra ID double: the parts of the Microsoft identity
//! platform a service uses to sign in to Azure SQL (and Azure Databricks)
//! with an application's own identity, reached as the Azure Identity
//! libraries reach Entra: an authority host (`AZURE_AUTHORITY_HOST`) and a
//! tenant (`AZURE_TENANT_ID`).
//!
//! - `POST /{tenant}/oauth2/v2.0/token`: the client credentials grant with a
//!   client secret or a client assertion — a certificate credential or a
//!   federated token ([`assertion`])
//!   (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow);
//!   errors in the platform's shape, their `error_description` starting with
//!   the AADSTS code (https://learn.microsoft.com/en-us/entra/identity-platform/reference-error-codes).
//! - `GET /{tenant}/v2.0/.well-known/openid-configuration` and the keys it
//!   names, `GET /{tenant}/discovery/v2.0/keys`
//!   (https://learn.microsoft.com/en-us/entra/identity-platform/v2-protocols-oidc).
//!
//! - a host's managed identity endpoint ([`managed`]), on a plain-HTTP port
//!   of its own as a host offers it.
//!
//! The authority host is served over HTTPS only, as Entra ID is and as the
//! Azure Identity libraries demand, with a certificate from a CA made at
//! start ([`EntraHandle::ca_pem`]).
//!
//! Access tokens are v1.0 JWTs, as Azure SQL and Azure Databricks receive
//! them (their app registrations accept v1.0): `iss`
//! `https://sts.windows.net/{tid}/`, `aud` the resource, `appid`, `oid`,
//! `sub`, `tid`, `iat`, `nbf`, `exp`, signed RS256 with a key published in
//! the JWKS (https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference).
//! Times come from the doubles' clock, so tests can let a token expire.

pub mod assertion;
pub mod jwt;
pub mod managed;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::clock::Clock;
use crate::form::url_form;
use crate::http;
use crate::tls::LocalCa;
use assertion::{ExternalIssuer, FederatedCredential, JWT_BEARER};
use jwt::{Jwk, SigningKey};

/// What a resource trusts of a tenant: its id and the keys it publishes.
#[derive(Clone, Debug)]
pub struct EntraTrust {
    pub tenant_id: String,
    pub keys: Vec<Jwk>,
}

/// An application registered in the tenant (or a managed identity, whose
/// credentials are the host's), with a client secret, certificates and
/// federated credentials.
#[derive(Clone, Debug, Default)]
pub struct EntraApp {
    /// The application (client) id.
    pub client_id: String,
    /// The object id of its service principal in the tenant.
    pub object_id: String,
    pub display_name: String,
    /// Empty: no secret is accepted.
    pub secret: String,
    /// Certificates registered on the application (DER).
    pub certificates: Vec<Vec<u8>>,
    pub federated: Vec<FederatedCredential>,
}

#[derive(Clone, Debug)]
pub struct EntraConfig {
    /// 0 picks a free port.
    pub port: u16,
    pub tenant_id: String,
    pub apps: Vec<EntraApp>,
    /// The managed identities of the host the managed identity endpoint
    /// serves: the first is its system-assigned identity. None: no endpoint.
    pub managed_identities: Vec<EntraApp>,
    /// Issuers whose tokens federated credentials may name.
    pub external_issuers: Vec<ExternalIssuer>,
    /// How long an access token lives (Entra's default is 60 to 90 minutes).
    pub token_lifetime: Duration,
    pub clock: Clock,
}

impl Default for EntraConfig {
    fn default() -> Self {
        EntraConfig {
            port: 0,
            tenant_id: "72f988bf-86f1-41af-91ab-2d7cd011db47".into(),
            apps: vec![],
            managed_identities: vec![],
            external_issuers: vec![],
            token_lifetime: Duration::from_secs(3599),
            clock: Clock::new(),
        }
    }
}

/// Resources the tenant knows, by the identifier a scope names, and the
/// audience their tokens carry.
const RESOURCES: &[(&str, &str)] = &[
    // Azure SQL Database: App ID URI https://database.windows.net/.
    (
        "https://database.windows.net",
        "https://database.windows.net/",
    ),
    (
        "https://database.windows.net/",
        "https://database.windows.net/",
    ),
    // Azure Databricks' first-party application.
    (
        "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d",
        "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d",
    ),
];

struct Shared {
    config: EntraConfig,
    key: SigningKey,
    base_url: String,
    /// The secret a host gives its code as `IDENTITY_HEADER`.
    identity_header: String,
    ca_pem: String,
}

/// The audience of tokens for the resource a scope or `resource` names.
fn audience_of(resource: &str) -> Option<&'static str> {
    RESOURCES
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(resource))
        .map(|(_, audience)| *audience)
}

/// A running double; stopped when dropped.
pub struct EntraHandle {
    shared: Arc<Shared>,
    served: http::Served,
    identity: Option<http::Served>,
}

#[derive(Debug, thiserror::Error)]
pub enum EntraStartError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot start the Entra ID double's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot make the Entra ID double's TLS certificate: {0}")]
    Tls(#[from] crate::tls::LocalCaError),
}

/// Starts the double on its own thread and runtime.
pub fn start(config: EntraConfig) -> Result<EntraHandle, EntraStartError> {
    let port = config.port;
    let (listener, addr) =
        http::bind(port).map_err(|source| EntraStartError::Bind { port, source })?;
    let ca = LocalCa::new("Entra ID double")?;
    let shared = Arc::new(Shared {
        key: SigningKey::generate(&uuid::Uuid::new_v4().simple().to_string()),
        base_url: format!("https://127.0.0.1:{}", addr.port()),
        identity_header: uuid::Uuid::new_v4().simple().to_string(),
        ca_pem: ca.ca_pem,
        config,
    });
    let app = Router::new()
        .route("/{tenant}/oauth2/v2.0/token", post(token))
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(keys))
        .with_state(shared.clone());
    let served = http::serve_tls("entra-double", 1, listener, app, ca.server)
        .map_err(EntraStartError::Runtime)?;
    let identity = if shared.config.managed_identities.is_empty() {
        None
    } else {
        let (listener, _) =
            http::bind(0).map_err(|source| EntraStartError::Bind { port: 0, source })?;
        let app = Router::new()
            .route("/msi/token", get(managed::token))
            .with_state(shared.clone());
        Some(http::serve("entra-identity", 1, listener, app).map_err(EntraStartError::Runtime)?)
    };
    tracing::info!(url = %shared.base_url, "entra id double listening");
    Ok(EntraHandle {
        shared,
        served,
        identity,
    })
}

impl EntraHandle {
    /// The authority host (`AZURE_AUTHORITY_HOST`).
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn port(&self) -> u16 {
        self.served.addr.port()
    }

    /// The certificate of the CA that issued the authority host's TLS
    /// certificate, PEM: what its clients trust.
    pub fn ca_pem(&self) -> &str {
        &self.shared.ca_pem
    }

    /// The host's managed identity endpoint (`IDENTITY_ENDPOINT`) and its
    /// secret (`IDENTITY_HEADER`), when it has managed identities.
    pub fn identity_endpoint(&self) -> Option<(String, String)> {
        self.identity.as_ref().map(|s| {
            (
                format!("http://127.0.0.1:{}/msi/token", s.addr.port()),
                self.shared.identity_header.clone(),
            )
        })
    }

    pub fn tenant_id(&self) -> &str {
        &self.shared.config.tenant_id
    }

    /// The issuer of the tenant's v1.0 access tokens.
    pub fn issuer(&self) -> String {
        issuer(&self.shared.config.tenant_id)
    }

    /// The keys the tenant publishes.
    pub fn keys(&self) -> Vec<Jwk> {
        vec![self.shared.key.jwk()]
    }

    /// What a resource configured for this tenant trusts.
    pub fn trust(&self) -> EntraTrust {
        EntraTrust {
            tenant_id: self.shared.config.tenant_id.clone(),
            keys: self.keys(),
        }
    }

    /// Any claims signed with the tenant's key: for tests that need a token
    /// the token endpoint would not issue (expired, for another audience).
    pub fn sign(&self, claims: &Value) -> String {
        self.shared.key.sign(claims)
    }

    /// The claims the token endpoint puts in an app's token for `audience`.
    pub fn claims_for(&self, app: &EntraApp, audience: &str) -> Value {
        claims(&self.shared, app, audience)
    }
}

fn issuer(tenant: &str) -> String {
    format!("https://sts.windows.net/{tenant}/")
}

fn claims(shared: &Shared, app: &EntraApp, audience: &str) -> Value {
    let tid = &shared.config.tenant_id;
    let now = shared.config.clock.now().timestamp();
    json!({
        "aud": audience,
        "iss": issuer(tid),
        "iat": now,
        "nbf": now,
        "exp": now + shared.config.token_lifetime.as_secs() as i64,
        "appid": app.client_id,
        "appidacr": "1",
        "idp": issuer(tid),
        "idtyp": "app",
        "oid": app.object_id,
        "sub": app.object_id,
        "tid": tid,
        "uti": uuid::Uuid::new_v4().simple().to_string(),
        "ver": "1.0",
    })
}

/// An error as the token endpoint answers one.
fn aadsts(shared: &Shared, status: StatusCode, error: &str, code: u32, text: &str) -> Response {
    let trace = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    let now = shared.config.clock.now();
    (
        status,
        Json(json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {}",
                now.format("%Y-%m-%d %H:%M:%SZ")
            ),
            "error_codes": [code],
            "timestamp": now.format("%Y-%m-%d %H:%M:%SZ").to_string(),
            "trace_id": trace.to_string(),
            "correlation_id": correlation.to_string(),
            "error_uri": format!("{}/error?code={code}", shared.base_url),
        })),
    )
        .into_response()
}

fn known_tenant(shared: &Shared, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(&shared.config.tenant_id)
}

fn unknown_tenant(shared: &Shared, tenant: &str) -> Response {
    aadsts(
        shared,
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`.
async fn token(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
    body: String,
) -> Response {
    if !known_tenant(&shared, &tenant) {
        return unknown_tenant(&shared, &tenant);
    }
    let form: HashMap<String, String> = url_form(&body);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    if field("grant_type") != "client_credentials" {
        return aadsts(
            &shared,
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            "The app requested an unsupported grant type.",
        );
    }
    let client_id = field("client_id");
    let Some(app) = shared
        .config
        .apps
        .iter()
        .find(|a| a.client_id.eq_ignore_ascii_case(client_id))
    else {
        return aadsts(
            &shared,
            StatusCode::BAD_REQUEST,
            "unauthorized_client",
            700016,
            &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant."),
        );
    };
    if field("client_assertion_type") == JWT_BEARER || !field("client_assertion").is_empty() {
        if field("client_assertion_type") != JWT_BEARER {
            return aadsts(
                &shared,
                StatusCode::BAD_REQUEST,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
            );
        }
        let base = &shared.base_url;
        let endpoints = [
            format!("{base}/{tenant}/oauth2/v2.0/token"),
            format!("{base}/{}/oauth2/v2.0/token", shared.config.tenant_id),
            format!("{base}/{tenant}/oauth2/token"),
        ];
        if let Err(r) = assertion::check(
            field("client_assertion"),
            app,
            &endpoints,
            &shared.config.external_issuers,
            shared.config.clock.now().timestamp(),
        ) {
            let status = if r.error == "invalid_client" {
                StatusCode::UNAUTHORIZED
            } else {
                StatusCode::BAD_REQUEST
            };
            return aadsts(&shared, status, r.error, r.code, &r.text);
        }
    } else if app.secret.is_empty() || field("client_secret") != app.secret {
        return aadsts(
            &shared,
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000215,
            &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.", app.client_id),
        );
    }
    let scope = field("scope");
    let Some(resource) = scope
        .strip_suffix("/.default")
        .filter(|_| !scope.contains(' '))
    else {
        return aadsts(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            1002012,
            &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."),
        );
    };
    let Some(audience) = audience_of(resource) else {
        return aadsts(
            &shared,
            StatusCode::BAD_REQUEST,
            "invalid_resource",
            500011,
            &format!("The resource principal named {resource} was not found in the tenant named {tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant."),
        );
    };
    let lifetime = shared.config.token_lifetime.as_secs();
    let access_token = shared.key.sign(&claims(&shared, app, audience));
    Json(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
    .into_response()
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
async fn openid_configuration(
    State(shared): State<Arc<Shared>>,
    Path(tenant): Path<String>,
) -> Response {
    if !known_tenant(&shared, &tenant) {
        return unknown_tenant(&shared, &tenant);
    }
    let base = &shared.base_url;
    let tid = &shared.config.tenant_id;
    Json(json!({
        "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
        // The interactive endpoints are named as the real document names
        // them (MSAL reads `authorization_endpoint` before any grant); the
        // double serves none of them: a service signs in without a person.
        "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
        "device_authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/devicecode"),
        "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": format!("{base}/{tid}/v2.0"),
        "request_uri_parameter_supported": false,
        "tenant_region_scope": null,
        "cloud_instance_name": "microsoftonline.com",
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`.
async fn keys(State(shared): State<Arc<Shared>>, Path(tenant): Path<String>) -> Response {
    if !known_tenant(&shared, &tenant) {
        return unknown_tenant(&shared, &tenant);
    }
    Json(json!({ "keys": [shared.key.jwk().to_json()] })).into_response()
}
