//! Who the bridge is in the workspace, and what Unity Catalog lets a
//! principal do: the two questions the bridge asks before acting for a
//! user on the Databricks side.
//!
//! - `GET /api/2.0/preview/scim/v2/Me`: the caller's `userName` (for a
//!   service principal, its application id)
//!   (https://docs.databricks.com/api/workspace/currentuser/me).
//! - `GET /api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}?principal=`:
//!   the privileges a principal holds on a securable, granted there or
//!   inherited from its schema or catalog
//!   (https://docs.databricks.com/api/uc-grants/v1/get-effective-permissions).
//!   Ownership is not a grant, so the owner is read from the object itself
//!   (`owner` of `GET /api/2.1/unity-catalog/{catalogs|schemas|tables|volumes}/{full_name}`);
//!   owners hold every privilege on what they own
//!   (https://docs.databricks.com/en/data-governance/unity-catalog/manage-privileges/ownership.html).

use serde::Deserialize;

use super::error::DatabricksError;
use super::Workspace;

/// The Unity Catalog objects the bridge reads or writes for a user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Securable {
    Catalog,
    Schema,
    Table,
    Volume,
}

impl Securable {
    /// The `securable_type` path parameter.
    pub fn as_str(self) -> &'static str {
        match self {
            Securable::Catalog => "catalog",
            Securable::Schema => "schema",
            Securable::Table => "table",
            Securable::Volume => "volume",
        }
    }

    /// The collection of the object's own GET.
    fn collection(self) -> &'static str {
        match self {
            Securable::Catalog => "catalogs",
            Securable::Schema => "schemas",
            Securable::Table => "tables",
            Securable::Volume => "volumes",
        }
    }
}

#[derive(Deserialize)]
struct Me {
    #[serde(rename = "userName", default)]
    user_name: String,
}

#[derive(Deserialize)]
struct Effective {
    #[serde(default)]
    privilege_assignments: Vec<Assignment>,
    #[serde(default)]
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
struct Assignment {
    #[serde(default)]
    principal: String,
    #[serde(default)]
    privileges: Vec<EffectivePrivilege>,
}

#[derive(Deserialize)]
struct EffectivePrivilege {
    #[serde(default)]
    privilege: String,
}

#[derive(Deserialize)]
struct Owned {
    #[serde(default)]
    owner: Option<String>,
}

impl Workspace {
    /// The principal this workspace client acts as (`userName` of SCIM Me).
    pub async fn current_principal(&self) -> Result<String, DatabricksError> {
        let url = self.api_url(&["api", "2.0", "preview", "scim", "v2", "Me"], &[])?;
        let me: Me = self.get_url(&url).await?;
        if me.user_name.trim().is_empty() {
            return Err(DatabricksError::Decode {
                url: url.to_string(),
                message: "SCIM Me has no userName".into(),
            });
        }
        Ok(me.user_name)
    }

    /// The privileges `principal` holds on an object, granted or inherited,
    /// upper-case with underscores (`SELECT`, `USE_SCHEMA`, `WRITE_VOLUME`).
    /// Every page is read (`max_results=0` asks for the paginated form).
    pub async fn effective_privileges(
        &self,
        kind: Securable,
        full_name: &str,
        principal: &str,
    ) -> Result<Vec<String>, DatabricksError> {
        let base = self.api_url(
            &["api", "2.1", "unity-catalog", "effective-permissions"],
            &[kind.as_str(), full_name],
        )?;
        let mut out = Vec::new();
        let mut page: Option<String> = None;
        loop {
            let mut url = base.clone();
            url.query_pairs_mut()
                .append_pair("principal", principal)
                .append_pair("max_results", "0");
            if let Some(t) = &page {
                url.query_pairs_mut().append_pair("page_token", t);
            }
            let e: Effective = self.get_url(&url).await?;
            for a in e.privilege_assignments {
                if a.principal.eq_ignore_ascii_case(principal) {
                    out.extend(
                        a.privileges
                            .into_iter()
                            .map(|p| p.privilege.trim().to_ascii_uppercase().replace(' ', "_")),
                    );
                }
            }
            match e.next_page_token.filter(|t| !t.is_empty()) {
                Some(t) => page = Some(t),
                None => break,
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The owner of an object, from its own GET.
    pub async fn owner(
        &self,
        kind: Securable,
        full_name: &str,
    ) -> Result<Option<String>, DatabricksError> {
        let url = self.api_url(
            &["api", "2.1", "unity-catalog", kind.collection()],
            &[full_name],
        )?;
        let o: Owned = self.get_url(&url).await?;
        Ok(o.owner.filter(|o| !o.trim().is_empty()))
    }
}
