//! The managed identity endpoint of an Azure host, as App Service and
//! Azure Functions offer it to the code they run: `IDENTITY_ENDPOINT` (a
//! plain-HTTP URL on the host) and `IDENTITY_HEADER` (a secret the request
//! must carry as `X-IDENTITY-HEADER`), `api-version=2019-08-01`, the
//! `resource` wanted, and for a user-assigned identity one of `client_id`,
//! `principal_id` (`object_id`) or `mi_res_id` (`msi_res_id`); without one,
//! the host's system-assigned identity. The answer's `expires_on` is a
//! string of seconds since the epoch.
//! https://learn.microsoft.com/en-us/azure/app-service/overview-managed-identity#rest-endpoint-reference

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::{audience_of, Shared};

/// The resource id of a user-assigned identity, by its name.
pub fn resource_id(name: &str) -> String {
    format!("/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/bridge/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
}

fn refused(status: StatusCode, message: String) -> Response {
    (
        status,
        Json(json!({"statusCode": status.as_u16(), "message": message})),
    )
        .into_response()
}

/// `GET {IDENTITY_ENDPOINT}`.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let given = headers
        .get("x-identity-header")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if given.is_empty() || given != shared.identity_header {
        return refused(
            StatusCode::UNAUTHORIZED,
            "The request is missing the X-IDENTITY-HEADER header, or it is not this host's.".into(),
        );
    }
    let field = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    if field("api-version") != Some("2019-08-01") {
        return refused(
            StatusCode::BAD_REQUEST,
            format!(
                "api-version '{}' is not supported; use 2019-08-01.",
                field("api-version").unwrap_or_default()
            ),
        );
    }
    let Some(resource) = field("resource") else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The 'resource' parameter is required.".into(),
        );
    };
    let identities = &shared.config.managed_identities;
    let picked = if let Some(id) = field("client_id") {
        identities
            .iter()
            .find(|m| m.client_id.eq_ignore_ascii_case(id))
    } else if let Some(id) = field("principal_id").or(field("object_id")) {
        identities
            .iter()
            .find(|m| m.object_id.eq_ignore_ascii_case(id))
    } else if let Some(id) = field("mi_res_id").or(field("msi_res_id")) {
        identities
            .iter()
            .find(|m| resource_id(&m.display_name).eq_ignore_ascii_case(id))
    } else {
        identities.first()
    };
    let Some(identity) = picked else {
        return refused(
            StatusCode::BAD_REQUEST,
            "The requested identity has not been assigned to this resource.".into(),
        );
    };
    let Some(audience) = audience_of(resource.trim_end_matches("/.default")) else {
        return refused(
            StatusCode::BAD_REQUEST,
            format!("AADSTS500011: The resource principal named {resource} was not found in the tenant named {}.", shared.config.tenant_id),
        );
    };
    let claims = super::claims(&shared, identity, audience);
    let expires_on = claims["exp"].as_i64().unwrap_or_default();
    Json(json!({
        "access_token": shared.key.sign(&claims),
        "expires_on": expires_on.to_string(),
        "resource": resource,
        "token_type": "Bearer",
        "client_id": identity.client_id,
    }))
    .into_response()
}
