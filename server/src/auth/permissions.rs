//! `config/permissions.yaml`: users with a bearer token (in clear or as its
//! SHA-256) and per-table access (`read`, `write`, `read_write`, with
//! `max_delete_rows` capping DELETE). Tokens are compared as SHA-256 digests
//! in constant time, so neither the file nor the timing gives a token away.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::tables::TableName;

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
    permissions: Vec<FilePermission>,
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

/// One project's identity and rights. The token itself is never kept.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    token_sha256: [u8; 32],
    pub permissions: Vec<TablePermission>,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("permissions", &self.permissions)
            .finish_non_exhaustive()
    }
}

impl User {
    fn grant(&self, t: &TableName) -> Option<&TablePermission> {
        self.permissions.iter().find(|p| t.covered_by(&p.table))
    }

    pub fn can_read(&self, t: &TableName) -> bool {
        self.grant(t).is_some_and(|p| p.access.can_read())
    }

    pub fn can_write(&self, t: &TableName) -> bool {
        self.grant(t).is_some_and(|p| p.access.can_write())
    }

    /// The DELETE cap on a table the user may write; `None` means no cap.
    pub fn max_delete_rows(&self, t: &TableName) -> Option<u64> {
        self.grant(t).and_then(|p| p.max_delete_rows)
    }

    /// The tables of `tables` this user may not read.
    pub fn unreadable<'a>(&self, tables: &'a [TableName]) -> Vec<&'a TableName> {
        tables.iter().filter(|t| !self.can_read(t)).collect()
    }
}

/// Everyone who may call the bridge.
#[derive(Clone, Debug, Default)]
pub struct Permissions {
    pub users: Vec<User>,
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
                permissions,
            });
        }
        Ok(Permissions { users })
    }

    /// The user a bearer token belongs to. Every user is compared, so the
    /// time taken does not depend on which one matches.
    pub fn authenticate(&self, bearer: &str) -> Option<&User> {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../../config/permissions.yaml");

    #[test]
    fn the_demo_file_loads_and_authenticates() {
        let p = Permissions::parse(DEMO, Path::new("config/permissions.yaml")).unwrap();
        let co = p.authenticate("demo-colombia-token").unwrap();
        assert_eq!(co.name, "proyecto-colombia");
        let mx = p.authenticate("demo-mexico-token").unwrap();
        assert_eq!(mx.name, "proyecto-mexico");
        assert!(p.authenticate("nope").is_none());
        let ventas_mx = TableName::parse("KWP_Mexico.dbo.J_Ventas_MX").unwrap();
        assert!(mx.can_read(&ventas_mx) && mx.can_write(&ventas_mx));
        assert_eq!(mx.max_delete_rows(&ventas_mx), Some(10000));
        assert!(!co.can_read(&ventas_mx));
        let productos = TableName::parse("[dbo].[productos]").unwrap();
        assert!(co.can_read(&productos) && !co.can_write(&productos));
        assert!(!format!("{mx:?}").contains("c31328"));
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
