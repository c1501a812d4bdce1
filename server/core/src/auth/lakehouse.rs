//! A bridge user's rights on the Databricks side. The bridge reads sync
//! sources and writes Volume files with its own principal, so before it
//! does either for a user it asks whether the user may: an explicit grant
//! in permissions.yaml, or Unity Catalog's own answer for one of the
//! user's Databricks principals (the effective-permissions API, which
//! includes what is inherited from the schema and catalog; ownership,
//! which is not a grant, from the object's `owner`). Unity Catalog needs
//! `USE CATALOG` and `USE SCHEMA` on the parents as well as the privilege
//! on the object (https://docs.databricks.com/en/data-governance/unity-catalog/manage-privileges/privileges.html):
//! reading a table is `SELECT`, writing in a volume is `WRITE VOLUME`.
//!
//! Answers are kept for a short while (`ttl`), so a burst of requests asks
//! Databricks once; a revoked grant stops working within that time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::permissions::User;
use crate::databricks::names::{UcName, VolumePath};
use crate::databricks::unity::Securable;
use crate::databricks::{DatabricksError, Workspace};

/// Why the bridge will not act for a user on the Databricks side.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LakehouseDenied {
    /// The user lacks the right; `missing` names it.
    #[error("user '{user}' may not {action} {object}: {missing}")]
    Denied {
        user: String,
        action: &'static str,
        object: String,
        missing: String,
    },
    /// Unity Catalog could not be asked; nothing is done (fail closed).
    #[error("cannot check the rights of user '{user}' on {object} in Unity Catalog: {message}")]
    Unavailable {
        user: String,
        object: String,
        message: String,
    },
}

/// What allowed an action, for the audit line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grounds {
    /// A permissions.yaml `databricks_permissions` entry.
    Explicit,
    /// Unity Catalog grants this principal what is needed.
    UnityCatalog { principal: String },
}

impl std::fmt::Display for Grounds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Grounds::Explicit => write!(f, "granted in permissions.yaml"),
            Grounds::UnityCatalog { principal } => {
                write!(f, "granted in Unity Catalog to {principal}")
            }
        }
    }
}

type Key = (Securable, String, String);
type Owners = HashMap<(Securable, String), (Instant, Option<String>)>;

/// Asks Unity Catalog, with a short cache.
pub struct LakehouseRights {
    ws: Workspace,
    ttl: Duration,
    privileges: Mutex<HashMap<Key, (Instant, Vec<String>)>>,
    owners: Mutex<Owners>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    Yes,
    No,
    NoSuchObject,
}

/// One privilege needed on one object.
struct Need {
    kind: Securable,
    name: String,
    privilege: &'static str,
}

impl LakehouseRights {
    pub fn new(ws: Workspace, ttl: Duration) -> LakehouseRights {
        LakehouseRights {
            ws,
            ttl,
            privileges: Mutex::new(HashMap::new()),
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// May the bridge read `table` (a sync source) for `user`?
    pub async fn check_table_read(
        &self,
        user: &User,
        table: &UcName,
    ) -> Result<Grounds, LakehouseDenied> {
        if user.granted_databricks_table(table, false) {
            return Ok(Grounds::Explicit);
        }
        let needs = [
            Need {
                kind: Securable::Catalog,
                name: table.catalog.clone(),
                privilege: "USE_CATALOG",
            },
            Need {
                kind: Securable::Schema,
                name: table.schema_name(),
                privilege: "USE_SCHEMA",
            },
            Need {
                kind: Securable::Table,
                name: table.to_string(),
                privilege: "SELECT",
            },
        ];
        self.check(user, "read", &table.to_string(), &needs).await
    }

    /// May the bridge load `table` for `user` (create it, add, merge or
    /// replace rows)? An existing table needs MODIFY and SELECT on it, a
    /// new one CREATE TABLE on its schema, both with the USE privileges.
    pub async fn check_table_write(
        &self,
        user: &User,
        table: &UcName,
        exists: bool,
    ) -> Result<Grounds, LakehouseDenied> {
        if user.granted_databricks_table(table, true) {
            return Ok(Grounds::Explicit);
        }
        let mut needs = vec![
            Need {
                kind: Securable::Catalog,
                name: table.catalog.clone(),
                privilege: "USE_CATALOG",
            },
            Need {
                kind: Securable::Schema,
                name: table.schema_name(),
                privilege: "USE_SCHEMA",
            },
        ];
        if exists {
            for privilege in ["MODIFY", "SELECT"] {
                needs.push(Need {
                    kind: Securable::Table,
                    name: table.to_string(),
                    privilege,
                });
            }
        } else {
            needs.push(Need {
                kind: Securable::Schema,
                name: table.schema_name(),
                privilege: "CREATE_TABLE",
            });
        }
        self.check(user, "load", &table.to_string(), &needs).await
    }

    /// Whether a table exists (its owner can be read).
    pub async fn table_exists(&self, table: &UcName) -> Result<bool, DatabricksError> {
        match self.owner(Securable::Table, &table.to_string()).await {
            Ok(_) => Ok(true),
            Err(DatabricksError::Api { status: 404, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// May the bridge write (and replace) files under `path` for `user`?
    pub async fn check_volume_write(
        &self,
        user: &User,
        path: &VolumePath,
    ) -> Result<Grounds, LakehouseDenied> {
        if user.granted_volume_path(path, true) {
            return Ok(Grounds::Explicit);
        }
        let v = &path.volume;
        let needs = [
            Need {
                kind: Securable::Catalog,
                name: v.catalog.clone(),
                privilege: "USE_CATALOG",
            },
            Need {
                kind: Securable::Schema,
                name: v.schema_name(),
                privilege: "USE_SCHEMA",
            },
            Need {
                kind: Securable::Volume,
                name: v.to_string(),
                privilege: "WRITE_VOLUME",
            },
        ];
        self.check(user, "write", &path.to_string(), &needs).await
    }

    /// Allowed when one of the user's principals holds every need.
    async fn check(
        &self,
        user: &User,
        action: &'static str,
        object: &str,
        needs: &[Need],
    ) -> Result<Grounds, LakehouseDenied> {
        if user.databricks_principals.is_empty() {
            return Err(LakehouseDenied::Denied {
                user: user.name.clone(),
                action,
                object: object.to_string(),
                missing: "no databricks_permissions entry grants it, and the user has no databricks_principals whose Unity Catalog rights could".into(),
            });
        }
        let unavailable = |e: DatabricksError| LakehouseDenied::Unavailable {
            user: user.name.clone(),
            object: object.to_string(),
            message: e.to_string(),
        };
        let mut lacking = Vec::new();
        for principal in &user.databricks_principals {
            let mut missing = Vec::new();
            for n in needs {
                let held = self.holds(principal, n).await.map_err(unavailable)?;
                if held != Held::Yes {
                    missing.push(format!(
                        "{} on {} {}{}",
                        n.privilege.replace('_', " "),
                        n.kind.as_str(),
                        n.name,
                        if held == Held::NoSuchObject {
                            " (which does not exist)"
                        } else {
                            ""
                        }
                    ));
                }
            }
            if missing.is_empty() {
                return Ok(Grounds::UnityCatalog {
                    principal: principal.clone(),
                });
            }
            lacking.push(format!("{principal} lacks {}", missing.join(", ")));
        }
        Err(LakehouseDenied::Denied {
            user: user.name.clone(),
            action,
            object: object.to_string(),
            missing: format!(
                "no databricks_permissions entry grants it and in Unity Catalog {}",
                lacking.join("; ")
            ),
        })
    }

    /// Owner of the object, or the privilege (or ALL PRIVILEGES) granted
    /// or inherited.
    async fn holds(&self, principal: &str, n: &Need) -> Result<Held, DatabricksError> {
        match self.owner(n.kind, &n.name).await {
            Ok(Some(o)) if o.trim().eq_ignore_ascii_case(principal) => return Ok(Held::Yes),
            Ok(_) => {}
            Err(DatabricksError::Api { status: 404, .. }) => return Ok(Held::NoSuchObject),
            Err(e) => return Err(e),
        }
        let privileges = match self.privileges(n.kind, &n.name, principal).await {
            Ok(p) => p,
            Err(DatabricksError::Api { status: 404, .. }) => return Ok(Held::NoSuchObject),
            Err(e) => return Err(e),
        };
        Ok(
            if privileges
                .iter()
                .any(|p| p == n.privilege || p == "ALL_PRIVILEGES")
            {
                Held::Yes
            } else {
                Held::No
            },
        )
    }

    async fn privileges(
        &self,
        kind: Securable,
        name: &str,
        principal: &str,
    ) -> Result<Vec<String>, DatabricksError> {
        let key = (kind, name.to_string(), principal.to_string());
        if let Some((at, p)) = lock(&self.privileges).get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(p.clone());
            }
        }
        let p = self.ws.effective_privileges(kind, name, principal).await?;
        lock(&self.privileges).insert(key, (Instant::now(), p.clone()));
        Ok(p)
    }

    async fn owner(&self, kind: Securable, name: &str) -> Result<Option<String>, DatabricksError> {
        let key = (kind, name.to_string());
        if let Some((at, o)) = lock(&self.owners).get(&key) {
            if at.elapsed() < self.ttl {
                return Ok(o.clone());
            }
        }
        let o = self.ws.owner(kind, name).await?;
        lock(&self.owners).insert(key, (Instant::now(), o.clone()));
        Ok(o)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
