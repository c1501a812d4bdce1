//! Identities of the workspace: which principal each credential belongs to
//! is `auth.rs`'s business; here is who is a workspace admin (admins bypass
//! Unity Catalog's grant checks, as workspace and metastore admins do), who
//! is a service principal, and `GET /api/2.0/preview/scim/v2/Me`
//! (https://docs.databricks.com/api/workspace/currentuser/me), which returns
//! the caller as a SCIM User object.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::{Extension, Json};
use serde_json::{json, Value};

use super::sql::grants::{self, Caller};
use super::sql::DEFAULT_PRINCIPAL;
use super::{DatabricksConfig, Shared};

/// Admins and service principals, fixed at start.
#[derive(Debug)]
pub struct Directory {
    /// Lower case: principals compare case-insensitively.
    admins: HashSet<String>,
    service_principals: HashSet<String>,
    /// The first admin: owner of what seed scripts create.
    first_admin: String,
}

/// The principal of a personal access token: given with it, or the
/// default user.
pub fn token_principal(config: &DatabricksConfig, token: &str) -> String {
    config
        .principals
        .get(token)
        .cloned()
        .unwrap_or_else(|| DEFAULT_PRINCIPAL.to_string())
}

/// Every personal access token with its principal.
pub fn token_principals(config: &DatabricksConfig) -> HashMap<String, String> {
    config
        .tokens
        .iter()
        .map(|t| (t.clone(), token_principal(config, t)))
        .collect()
}

impl Directory {
    /// Admins are the configured ones; without any, the principal of the
    /// first personal access token and every OAuth client (so a workspace
    /// started without identities behaves as before they existed).
    pub fn new(config: &DatabricksConfig) -> Directory {
        let mut ordered: Vec<String> = config.admins.clone();
        if ordered.is_empty() {
            if let Some(t) = config.tokens.first() {
                ordered.push(token_principal(config, t));
            }
            let mut clients: Vec<&String> = config.oauth_clients.keys().collect();
            clients.sort();
            ordered.extend(clients.into_iter().cloned());
        }
        Directory {
            admins: ordered.iter().map(|a| a.to_lowercase()).collect(),
            service_principals: config
                .oauth_clients
                .keys()
                .chain(&config.entra_service_principals)
                .cloned()
                .collect(),
            first_admin: ordered
                .first()
                .cloned()
                .unwrap_or_else(|| DEFAULT_PRINCIPAL.to_string()),
        }
    }

    pub fn is_admin(&self, principal: &str) -> bool {
        self.admins.contains(&principal.to_lowercase())
    }

    /// A service principal is named by its application id, the OAuth
    /// client id (https://docs.databricks.com/admin/users-groups/service-principals.html).
    pub fn is_service_principal(&self, principal: &str) -> bool {
        self.service_principals.contains(principal)
    }

    pub fn caller(&self, principal: &str) -> Caller {
        Caller::new(principal, self.is_admin(principal))
    }

    /// Who runs seed scripts and owns what existed before any request.
    pub fn first_admin(&self) -> Caller {
        Caller::new(&self.first_admin, true)
    }
}

/// The SCIM User object of the caller. A service principal's `userName`
/// and `applicationId` are its application id; admins belong to the
/// workspace's `admins` group.
fn user_json(shared: &Shared, caller: &Caller) -> Value {
    let sp = shared.identities.is_service_principal(&caller.principal);
    let mut v = json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:workspace:2.0:User"
        ],
        "id": caller.user_id(),
        "userName": caller.principal,
        "displayName": caller.principal,
        "active": true,
        "emails": if !sp && caller.principal.contains('@') {
            json!([{ "value": caller.principal, "type": "work", "primary": true }])
        } else {
            json!([])
        },
        "groups": if caller.admin {
            let gid = grants::user_id("admins");
            json!([{ "display": "admins", "type": "direct", "value": gid, "$ref": format!("Groups/{gid}") }])
        } else {
            json!([])
        },
        "entitlements": [],
    });
    if sp {
        v["applicationId"] = json!(caller.principal);
    }
    v
}

/// `GET /api/2.0/preview/scim/v2/Me`, with SCIM's `attributes` and
/// `excludedAttributes` (comma-separated; `id` is always returned).
pub async fn me(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let mut v = user_json(&shared, &caller);
    let list = |k: &str| -> Option<Vec<String>> {
        q.get(k)
            .map(|s| s.split(',').map(|a| a.trim().to_string()).collect())
    };
    if let (Some(keep), Value::Object(m)) = (list("attributes"), &mut v) {
        m.retain(|k, _| k == "id" || keep.iter().any(|a| a.eq_ignore_ascii_case(k)));
    }
    if let (Some(drop), Value::Object(m)) = (list("excludedAttributes"), &mut v) {
        m.retain(|k, _| k == "id" || !drop.iter().any(|a| a.eq_ignore_ascii_case(k)));
    }
    Json(v)
}
