//! `config/permissions.yaml`: users with a bearer token (in clear or as its
//! SHA-256), the Databricks principals that act for each, per-table access
//! on SQL Server (`read`, `write`, `read_write`, with `max_delete_rows`
//! capping DELETE) and explicit grants on Databricks tables and Volume
//! paths. Tokens are compared as SHA-256 digests in constant time, so
//! neither the file nor the timing gives a token away.
//!
//! SQL Server names are compared resolved: a grant or a name without a
//! database means the bridge's own database (see [`TableName::covered_by`]).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::databricks::names::{UcName, VolumePath};
use crate::sqlserver::names::TableName;

#[derive(Debug, thiserror::Error)]
pub enum PermissionError {
    #[error("cannot read {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    Read,
    Write,
    ReadWrite,
}

impl Access {
    pub fn can_read(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }

    pub fn can_write(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRoot {
    /// Principals of other bridges writing to the same events table.
    #[serde(default)]
    bridge_principals: Vec<String>,
    #[serde(default)]
    users: Vec<FileUser>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileUser {
    name: String,
    token: Option<String>,
    token_sha256: Option<String>,
    #[serde(default)]
    databricks_principals: Vec<String>,
    #[serde(default)]
    permissions: Vec<FilePermission>,
    #[serde(default)]
    databricks_permissions: Vec<FileDatabricksPermission>,
    #[serde(default)]
    audit: AuditScope,
}

/// Which audit lines a user may read through the API (GET /audit, the
/// console): its own (the default), or every user's and the anonymous
/// refusals (`audit: all`, for the bridge's operators).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuditScope {
    #[default]
    Own,
    All,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDatabricksPermission {
    table: Option<String>,
    volume_path: Option<String>,
    access: Access,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilePermission {
    table: String,
    access: Access,
    max_delete_rows: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TablePermission {
    pub table: TableName,
    pub access: Access,
    pub max_delete_rows: Option<u64>,
}

/// A Databricks object granted in permissions.yaml, besides what Unity
/// Catalog grants the user's principals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DatabricksObject {
    /// A table or view the bridge may read for the user (sync sources).
    Table(UcName),
    /// A Volume directory (and everything below it).
    VolumePath(VolumePath),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DatabricksPermission {
    pub object: DatabricksObject,
    pub access: Access,
}

/// One project's identity and rights. The token itself is never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    token_sha256: [u8; 32],
    /// Databricks user names and service principal application ids that
    /// act for this user (lower-cased): the writers of its sync events, and
    /// whose Unity Catalog rights are its rights in Databricks.
    pub databricks_principals: Vec<String>,
    pub permissions: Vec<TablePermission>,
    pub databricks_permissions: Vec<DatabricksPermission>,
    pub audit: AuditScope,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("databricks_principals", &self.databricks_principals)
            .field("permissions", &self.permissions)
            .field("databricks_permissions", &self.databricks_permissions)
            .finish_non_exhaustive()
    }
}

/// Lower case, surrounding spaces dropped: how principals are compared
/// (Databricks user names are e-mail addresses, service principals UUIDs).
pub fn principal_key(p: &str) -> String {
    p.trim().to_lowercase()
}

impl User {
    /// Every grant covering `t`, both names resolved in `database` (the
    /// database the bridge runs queries in and writes to). Two entries may
    /// name one table (`dbo.t` and `db.dbo.t` in `db`): all of them count,
    /// whatever their order.
    fn grants<'a>(
        &'a self,
        t: &'a TableName,
        database: &'a str,
    ) -> impl Iterator<Item = &'a TablePermission> + 'a {
        self.permissions
            .iter()
            .filter(move |p| t.covered_by(&p.table, database))
    }

    /// Read granted by any entry that covers the table.
    pub fn can_read(&self, t: &TableName, database: &str) -> bool {
        self.grants(t, database).any(|p| p.access.can_read())
    }

    /// Write granted by any entry that covers the table.
    pub fn can_write(&self, t: &TableName, database: &str) -> bool {
        self.grants(t, database).any(|p| p.access.can_write())
    }

    /// The DELETE cap on a table the user may write: the smallest any
    /// writing entry for it sets (a cap set anywhere holds); `None`, no cap.
    pub fn max_delete_rows(&self, t: &TableName, database: &str) -> Option<u64> {
        self.grants(t, database)
            .filter(|p| p.access.can_write())
            .filter_map(|p| p.max_delete_rows)
            .min()
    }

    /// The tables of `tables` this user may not read.
    pub fn unreadable<'a>(&self, tables: &'a [TableName], database: &str) -> Vec<&'a TableName> {
        tables
            .iter()
            .filter(|t| !self.can_read(t, database))
            .collect()
    }

    /// Whether `principal` acts for this user.
    pub fn has_principal(&self, principal: &str) -> bool {
        let k = principal_key(principal);
        self.databricks_principals.contains(&k)
    }

    /// An explicit permissions.yaml grant to read (or, `write`, to load) a
    /// Databricks table.
    pub fn granted_databricks_table(&self, t: &UcName, write: bool) -> bool {
        self.databricks_permissions.iter().any(|p| {
            (if write {
                p.access.can_write()
            } else {
                p.access.can_read()
            }) && matches!(&p.object, DatabricksObject::Table(g) if g == t)
        })
    }

    /// An explicit permissions.yaml grant covering a Volume path.
    pub fn granted_volume_path(&self, path: &VolumePath, write: bool) -> bool {
        self.databricks_permissions.iter().any(|p| {
            (if write {
                p.access.can_write()
            } else {
                p.access.can_read()
            }) && matches!(&p.object, DatabricksObject::VolumePath(g) if path.within(g))
        })
    }
}

/// Everyone who may call the bridge.
#[derive(Clone, Debug, Default)]
pub struct Permissions {
    /// Shared, so a request's caller is a reference count, not a copy of
    /// the user's grants.
    pub users: Vec<std::sync::Arc<User>>,
    /// Principals of other bridges sharing the events table (lower-cased):
    /// events they wrote were submitted through their REST API for the
    /// token's user, like this bridge's own.
    pub bridge_principals: Vec<String>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Compares without an early exit, so the time taken says nothing about
/// where two digests differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_hex(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

impl Permissions {
    pub fn load(path: &Path) -> Result<Permissions, PermissionError> {
        let text = std::fs::read_to_string(path).map_err(|e| PermissionError::Read {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::parse(&text, path)
    }

    pub fn parse(text: &str, path: &Path) -> Result<Permissions, PermissionError> {
        let invalid = |message: String| PermissionError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let root: FileRoot = serde_norway::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut users: Vec<User> = Vec::new();
        for (i, u) in root.users.into_iter().enumerate() {
            let who = if u.name.trim().is_empty() {
                return Err(invalid(format!("user #{} has no name", i + 1)));
            } else {
                u.name.clone()
            };
            let token_sha256 = match (&u.token, &u.token_sha256) {
                (Some(t), None) if !t.is_empty() => digest(t),
                (None, Some(h)) => parse_hex(h).ok_or_else(|| {
                    invalid(format!(
                        "user '{who}': token_sha256 must be 64 hexadecimal digits"
                    ))
                })?,
                (Some(_), Some(_)) => {
                    return Err(invalid(format!(
                        "user '{who}': give either token or token_sha256, not both"
                    )))
                }
                _ => {
                    return Err(invalid(format!(
                        "user '{who}': token or token_sha256 is required"
                    )))
                }
            };
            if users.iter().any(|o| o.name.eq_ignore_ascii_case(&who)) {
                return Err(invalid(format!("user '{who}' appears twice")));
            }
            if users.iter().any(|o| same(&o.token_sha256, &token_sha256)) {
                return Err(invalid(format!(
                    "user '{who}' has the same token as another user"
                )));
            }
            let mut databricks_principals = Vec::new();
            for p in &u.databricks_principals {
                let k = principal_key(p);
                if k.is_empty() {
                    return Err(invalid(format!(
                        "user '{who}': databricks_principals has an empty entry"
                    )));
                }
                databricks_principals.push(k);
            }
            let mut databricks_permissions = Vec::new();
            for (j, p) in u.databricks_permissions.into_iter().enumerate() {
                let at = format!("user '{who}': databricks_permissions #{}", j + 1);
                let object = match (p.table, p.volume_path) {
                    (Some(t), None) => {
                        DatabricksObject::Table(UcName::parse(&t).ok_or_else(|| {
                            invalid(format!("{at}: '{t}' is not catalog.schema.table"))
                        })?)
                    }
                    (None, Some(v)) => DatabricksObject::VolumePath(
                        VolumePath::parse(&v).map_err(|e| invalid(format!("{at}: {e}")))?,
                    ),
                    _ => return Err(invalid(format!("{at}: give either table or volume_path"))),
                };
                databricks_permissions.push(DatabricksPermission {
                    object,
                    access: p.access,
                });
            }
            let mut permissions = Vec::new();
            for p in u.permissions {
                let table = TableName::parse(&p.table).ok_or_else(|| {
                    invalid(format!("user '{who}': '{}' is not a table name", p.table))
                })?;
                permissions.push(TablePermission {
                    table,
                    access: p.access,
                    max_delete_rows: p.max_delete_rows,
                });
            }
            users.push(User {
                name: who,
                token_sha256,
                databricks_principals,
                permissions,
                databricks_permissions,
                audit: u.audit,
            });
        }
        let mut bridge_principals = Vec::new();
        for p in &root.bridge_principals {
            let k = principal_key(p);
            if let Some(u) = users.iter().find(|u| u.has_principal(&k)) {
                return Err(invalid(format!(
                    "bridge_principals: '{p}' is also a principal of user '{}'",
                    u.name
                )));
            }
            if !k.is_empty() {
                bridge_principals.push(k);
            }
        }
        Ok(Permissions {
            users: users.into_iter().map(std::sync::Arc::new).collect(),
            bridge_principals,
        })
    }

    /// The user a bearer token belongs to. Every user is compared, so the
    /// time taken does not depend on which one matches.
    pub fn authenticate(&self, bearer: &str) -> Option<&std::sync::Arc<User>> {
        let d = digest(bearer);
        let mut found = None;
        for u in &self.users {
            if same(&u.token_sha256, &d) {
                found = Some(u);
            }
        }
        found
    }

    pub fn user(&self, name: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(name))
            .map(|u| &**u)
    }

    /// The users a Databricks principal acts for.
    pub fn users_of_principal(&self, principal: &str) -> Vec<&User> {
        self.users
            .iter()
            .filter(|u| u.has_principal(principal))
            .map(|u| &**u)
            .collect()
    }

    /// Whether `principal` is a bridge's (events it wrote came through a
    /// bridge's REST API, for the user it names).
    pub fn is_bridge_principal(&self, principal: &str) -> bool {
        let k = principal_key(principal);
        self.bridge_principals.contains(&k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../../config/permissions.yaml");

    #[test]
    fn the_demo_file_loads_and_authenticates() {
        let p = Permissions::parse(DEMO, Path::new("config/permissions.yaml")).unwrap();
        let co = p.authenticate("demo-colombia-token").unwrap();
        assert_eq!(co.name, "proyecto-colombia");
        let mx = p.authenticate("demo-mexico-token").unwrap();
        assert_eq!(mx.name, "proyecto-mexico");
        assert!(p.authenticate("nope").is_none());
        let ventas_mx = TableName::parse("KWP_Mexico.dbo.J_Ventas_MX").unwrap();
        assert!(mx.can_read(&ventas_mx, "master") && mx.can_write(&ventas_mx, "master"));
        assert_eq!(mx.max_delete_rows(&ventas_mx, "master"), Some(10000));
        assert!(!co.can_read(&ventas_mx, "KWP_Mexico"));
        // A name without a database is in the bridge's database.
        let productos = TableName::parse("[dbo].[productos]").unwrap();
        assert!(
            co.can_read(&productos, "KWP_Colombia") && !co.can_write(&productos, "KWP_Colombia")
        );
        assert!(!co.can_read(&productos, "KWP_Mexico"));
        assert!(!co.can_read(
            &TableName::parse("KWP_Mexico.dbo.Productos").unwrap(),
            "KWP_Colombia"
        ));
        assert!(!format!("{mx:?}").contains("c31328"));
        // Principals, and Volume paths granted explicitly.
        assert_eq!(
            p.users_of_principal("Colombia-ETL@example.com")[0].name,
            "proyecto-colombia"
        );
        assert!(p.users_of_principal("mallory@example.com").is_empty());
        let path = |s: &str| VolumePath::parse(s).unwrap();
        assert!(co.granted_volume_path(&path("/Volumes/main/demo/landing/Colombia/ventas"), true));
        assert!(!co.granted_volume_path(&path("/Volumes/main/demo/landing/Mexico"), true));
        assert!(!co.granted_volume_path(&path("/Volumes/main/demo/landing"), true));
    }

    #[test]
    fn every_grant_covering_a_table_counts_whatever_its_order() {
        for (first, second) in [
            ("dbo.t", "KWP_Colombia.dbo.T"),
            ("KWP_Colombia.dbo.T", "dbo.t"),
        ] {
            let text = format!(
                "users:\n  - name: u\n    token: tok-u\n    permissions:\n\
                 \x20     - table: \"{first}\"\n        access: read\n\
                 \x20     - table: \"{second}\"\n        access: read_write\n        max_delete_rows: 5\n\
                 \x20     - table: \"[KWP_Colombia].[dbo].[t]\"\n        access: write\n        max_delete_rows: 9\n"
            );
            let p = Permissions::parse(&text, Path::new("permissions.yaml")).unwrap();
            let u = p.authenticate("tok-u").unwrap();
            let t = TableName::parse("dbo.T").unwrap();
            assert!(u.can_read(&t, "KWP_Colombia"), "{first} then {second}");
            assert!(u.can_write(&t, "KWP_Colombia"), "{first} then {second}");
            assert_eq!(u.max_delete_rows(&t, "KWP_Colombia"), Some(5));
        }
    }

    #[test]
    fn databricks_entries_are_checked() {
        let path = Path::new("p.yaml");
        let e = |t: &str| Permissions::parse(t, path).unwrap_err().to_string();
        let user = "users:\n  - name: a\n    token: x\n";
        assert!(e(&format!(
            "{user}    databricks_permissions:\n      - table: main.hr\n        access: read\n"
        ))
        .contains("user 'a': databricks_permissions #1: 'main.hr' is not catalog.schema.table"));
        assert!(e(&format!("{user}    databricks_permissions:\n      - volume_path: /tmp/x\n        access: write\n")).contains("not a Volume path"));
        assert!(e(&format!(
            "{user}    databricks_permissions:\n      - access: write\n"
        ))
        .contains("either table or volume_path"));
        assert!(e(&format!(
            "{user}    databricks_principals: [a@x]\nbridge_principals: [A@X]\n"
        ))
        .contains("also a principal of user 'a'"));
        let p = Permissions::parse(&format!("{user}    databricks_permissions:\n      - table: Main.HR.Salaries\n        access: read\n"), path).unwrap();
        assert!(
            p.users[0].granted_databricks_table(&UcName::parse("main.hr.salaries").unwrap(), false)
        );
        assert!(
            !p.users[0].granted_databricks_table(&UcName::parse("main.hr.salaries").unwrap(), true)
        );
    }

    #[test]
    fn bad_files_say_which_user_and_field() {
        let path = Path::new("p.yaml");
        let e = |t: &str| Permissions::parse(t, path).unwrap_err().to_string();
        assert!(e("users:\n  - name: a\n").contains("user 'a': token or token_sha256 is required"));
        assert!(
            e("users:\n  - name: a\n    token: x\n    token_sha256: ab\n").contains("not both")
        );
        assert!(e("users:\n  - name: a\n    token_sha256: xyz\n").contains("64 hexadecimal"));
        assert!(
            e("users:\n  - name: a\n    token: x\n  - name: b\n    token: x\n")
                .contains("same token")
        );
        assert!(e("users:\n  - name: a\n    token: x\n    permissions:\n      - table: t\n        access: admin\n").contains("p.yaml"));
        assert!(e("users:\n  - name: a\n    tokn: x\n").contains("tokn"));
    }
}
