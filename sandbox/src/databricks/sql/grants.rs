//! Unity Catalog grants and their enforcement: who the caller is, the
//! privileges granted on each securable object (kept in SQLite beside the
//! metadata), and the checks every statement and REST call makes.
//!
//! The model is Unity Catalog's
//! (https://docs.databricks.com/data-governance/unity-catalog/manage-privileges/index.html):
//! admins bypass checks; the owner of an object holds every privilege on
//! it; a privilege granted on a catalog or schema is inherited by the
//! children it applies to; reaching anything inside a catalog needs
//! `USE CATALOG` on it, and inside a schema `USE SCHEMA` on it too.

use rusqlite::{params, Connection};

use super::catalog::{self, FullName};
use super::error::SqlError;
use super::privileges::{self, Securable, SecurableType};

pub const SCHEMA_SQL: &str = "
CREATE TABLE IF NOT EXISTS __dbx_grants (
    securable_type TEXT NOT NULL, full_name TEXT NOT NULL,
    principal TEXT NOT NULL COLLATE NOCASE, privilege TEXT NOT NULL,
    PRIMARY KEY (securable_type, full_name, principal, privilege));
";

/// `ALL PRIVILEGES` expands, at check time, to every applicable privilege
/// except these (https://docs.databricks.com/sql/language-manual/security-grant.html
/// and the MANAGE entry of the privileges reference).
const NOT_IN_ALL_PRIVILEGES: [&str; 2] = ["MANAGE", "EXTERNAL_USE_SCHEMA"];

/// Who runs a statement or a request: a principal (a user name, or a
/// service principal's application id) and whether it is a workspace admin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub principal: String,
    pub admin: bool,
}

impl Caller {
    pub fn new(principal: &str, admin: bool) -> Self {
        Caller {
            principal: principal.to_string(),
            admin,
        }
    }

    /// The numeric id Databricks gives the identity (SCIM `id`, history
    /// `userId`); stable for a principal.
    pub fn user_id(&self) -> String {
        user_id(&self.principal)
    }
}

/// A 16-digit id derived from the principal (FNV-1a), shaped like the
/// workspace user ids DESCRIBE HISTORY shows (`6167625779053302`).
pub fn user_id(principal: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in principal.to_lowercase().bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}", 1_000_000_000_000_000 + h % 9_000_000_000_000_000)
}

fn db(e: rusqlite::Error) -> SqlError {
    SqlError::internal(e)
}

/// Adds a privilege (granting one already held changes nothing).
pub fn grant(
    conn: &Connection,
    on: &Securable,
    principal: &str,
    privilege: &str,
) -> Result<(), SqlError> {
    conn.execute(
        "INSERT OR IGNORE INTO __dbx_grants (securable_type, full_name, principal, privilege) VALUES (?1, ?2, ?3, ?4)",
        params![on.ty.name(), on.full_name, principal, privilege],
    )
    .map_err(db)?;
    Ok(())
}

/// Removes a privilege granted directly on the object (revoking one not
/// held changes nothing, as on Databricks).
pub fn revoke(
    conn: &Connection,
    on: &Securable,
    principal: &str,
    privilege: &str,
) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_grants WHERE securable_type = ?1 AND full_name = ?2 AND principal = ?3 AND privilege = ?4",
        params![on.ty.name(), on.full_name, principal, privilege],
    )
    .map_err(db)?;
    Ok(())
}

/// Drops the grants on an object and on everything inside it.
pub fn forget(conn: &Connection, on: &Securable) -> Result<(), SqlError> {
    conn.execute(
        "DELETE FROM __dbx_grants WHERE full_name = ?1 OR full_name LIKE ?2 ESCAPE '\\'",
        params![
            on.full_name,
            format!("{}.%", on.full_name.replace('%', "\\%").replace('_', "\\_"))
        ],
    )
    .map_err(db)?;
    Ok(())
}

/// Privileges granted directly on an object, per principal (sorted), as
/// the permissions GET returns them.
pub fn direct(
    conn: &Connection,
    on: &Securable,
    principal: Option<&str>,
) -> Result<Vec<(String, Vec<String>)>, SqlError> {
    let mut st = conn
        .prepare(
            "SELECT principal, privilege FROM __dbx_grants WHERE securable_type = ?1 AND full_name = ?2 \
             AND (?3 IS NULL OR principal = ?3) ORDER BY principal, privilege",
        )
        .map_err(db)?;
    let rows: Vec<(String, String)> = st
        .query_map(params![on.ty.name(), on.full_name, principal], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .map_err(db)?
        .collect::<Result<_, _>>()
        .map_err(db)?;
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for (p, privilege) in rows {
        match out.last_mut() {
            Some((last, list)) if last.eq_ignore_ascii_case(&p) => list.push(privilege),
            _ => out.push((p, vec![privilege])),
        }
    }
    Ok(out)
}

/// One effective privilege: where it comes from when inherited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Effective {
    pub privilege: String,
    pub inherited_from: Option<Securable>,
}

/// Privileges on an object and those inherited from its schema and
/// catalog that apply to it, per principal (sorted), as the effective
/// permissions GET returns them.
pub fn effective(
    conn: &Connection,
    on: &Securable,
    principal: Option<&str>,
) -> Result<Vec<(String, Vec<Effective>)>, SqlError> {
    let mut out: Vec<(String, Vec<Effective>)> = Vec::new();
    for source in on.lineage() {
        for (p, privs) in direct(conn, &source, principal)? {
            let applicable: Vec<Effective> = privs
                .into_iter()
                .filter(|pr| source == *on || privileges::applies_to(pr, on.ty))
                .map(|pr| Effective {
                    privilege: pr,
                    inherited_from: (source != *on).then(|| source.clone()),
                })
                .collect();
            if applicable.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(q, _)| q.eq_ignore_ascii_case(&p)) {
                Some((_, list)) => list.extend(applicable),
                None => out.push((p, applicable)),
            }
        }
    }
    out.sort_by_key(|a| a.0.to_lowercase());
    Ok(out)
}

/// The permission checks of one caller.
pub struct Access<'a> {
    pub conn: &'a Connection,
    pub caller: &'a Caller,
}

fn denied(privilege: &str, on: &Securable) -> SqlError {
    SqlError::insufficient_permissions(&format!(
        "User does not have {} on {on}.",
        privileges::sql_name(privilege)
    ))
}

impl Access<'_> {
    fn is_owner(&self, on: &Securable) -> Result<bool, SqlError> {
        Ok(catalog::owner_of(self.conn, on)?
            .is_some_and(|o| o.eq_ignore_ascii_case(&self.caller.principal)))
    }

    /// Owner of the object or of the schema or catalog holding it: the
    /// principals who may grant on it and drop it.
    pub fn owns_or_contains(&self, on: &Securable) -> Result<bool, SqlError> {
        for s in on.lineage() {
            if self.is_owner(&s)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Whether the caller holds `privilege` on the object: as an admin, as
    /// its owner, or granted on it or on a parent it is inherited from.
    pub fn has(&self, on: &Securable, privilege: &str) -> Result<bool, SqlError> {
        if self.caller.admin || self.is_owner(on)? {
            return Ok(true);
        }
        let all_counts = !NOT_IN_ALL_PRIVILEGES.contains(&privilege);
        for source in on.lineage() {
            if source != *on && !privileges::applies_to(privilege, on.ty) {
                continue;
            }
            let n: i64 = self
                .conn
                .query_row(
                    "SELECT count(*) FROM __dbx_grants WHERE securable_type = ?1 AND full_name = ?2 \
                     AND principal = ?3 AND (privilege = ?4 OR (?5 AND privilege = 'ALL_PRIVILEGES'))",
                    params![
                        source.ty.name(),
                        source.full_name,
                        self.caller.principal,
                        privilege,
                        all_counts
                    ],
                    |r| r.get(0),
                )
                .map_err(db)?;
            if n > 0 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    pub fn require(&self, on: &Securable, privilege: &str) -> Result<(), SqlError> {
        if self.has(on, privilege)? {
            Ok(())
        } else {
            Err(denied(privilege, on))
        }
    }

    /// `USE CATALOG` on the object's catalog and `USE SCHEMA` on its schema
    /// (for a schema, on itself): needed to reach anything in them.
    pub fn require_use(&self, on: &Securable) -> Result<(), SqlError> {
        for s in on.lineage().into_iter().rev() {
            match s.ty {
                SecurableType::Catalog => self.require(&s, privileges::USE_CATALOG)?,
                SecurableType::Schema => self.require(&s, privileges::USE_SCHEMA)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Reading a table (SELECT, table_changes, DESCRIBE HISTORY): `USE
    /// CATALOG`, `USE SCHEMA` and `SELECT`.
    pub fn read_table(&self, name: &FullName) -> Result<(), SqlError> {
        let t = Securable::table(name);
        self.require_use(&t)?;
        self.require(&t, privileges::SELECT)
    }

    /// Writing a table: `MODIFY`, and `SELECT` when the statement reads
    /// the rows it changes (UPDATE, MERGE, DELETE ... WHERE).
    pub fn modify_table(&self, name: &FullName, reads: bool) -> Result<(), SqlError> {
        let t = Securable::table(name);
        self.require_use(&t)?;
        self.require(&t, privileges::MODIFY)?;
        if reads {
            self.require(&t, privileges::SELECT)?;
        }
        Ok(())
    }

    /// Reading files in a volume: `READ VOLUME` (and the USE privileges).
    pub fn read_volume(&self, name: &FullName) -> Result<(), SqlError> {
        let v = Securable::volume(name);
        self.require_use(&v)?;
        self.require(&v, privileges::READ_VOLUME)
    }

    /// Writing, deleting files or directories in a volume: `WRITE VOLUME`.
    pub fn write_volume(&self, name: &FullName) -> Result<(), SqlError> {
        let v = Securable::volume(name);
        self.require_use(&v)?;
        self.require(&v, privileges::WRITE_VOLUME)
    }

    /// Creating an object in a catalog or schema: the USE privileges on it
    /// and the CREATE privilege (`CREATE SCHEMA`, `CREATE TABLE`, `CREATE VOLUME`).
    pub fn create_in(&self, parent: &Securable, privilege: &str) -> Result<(), SqlError> {
        self.require_use(parent)?;
        self.require(parent, privilege)
    }

    /// Creating a catalog takes `CREATE CATALOG` on the metastore, which
    /// only admins hold in the double.
    pub fn create_catalog(&self) -> Result<(), SqlError> {
        if self.caller.admin {
            Ok(())
        } else {
            Err(SqlError::insufficient_permissions(
                "User does not have CREATE CATALOG on Metastore 'sandbox-metastore'.",
            ))
        }
    }

    /// Granting, revoking, dropping, altering: an admin, the owner of the
    /// object or of its schema or catalog, or a holder of `MANAGE` (with
    /// the USE privileges).
    pub fn manage(&self, on: &Securable) -> Result<(), SqlError> {
        if self.caller.admin || self.owns_or_contains(on)? {
            return Ok(());
        }
        self.require_use(on)?;
        self.require(on, privileges::MANAGE)
    }

    /// Seeing an object's metadata in Unity Catalog's GET and list calls
    /// (https://docs.databricks.com/api/workspace/catalogs/get, .../schemas/get,
    /// .../tables/get, .../volumes/read): catalogs need `USE CATALOG`,
    /// schemas `USE SCHEMA`, tables the USE privileges and `SELECT` (or
    /// ownership), volumes the USE privileges and `READ VOLUME`; owners of
    /// the object or of a container see it.
    pub fn see(&self, on: &Securable) -> Result<(), SqlError> {
        if self.caller.admin || self.owns_or_contains(on)? {
            return Ok(());
        }
        match on.ty {
            SecurableType::Catalog => self.require(on, privileges::USE_CATALOG),
            SecurableType::Schema => self.require(on, privileges::USE_SCHEMA),
            SecurableType::Table => {
                self.require_use(on)?;
                self.require(on, privileges::SELECT)
            }
            SecurableType::Volume => {
                self.require_use(on)?;
                self.require(on, privileges::READ_VOLUME)
            }
        }
    }

    /// Reading an object's grants (SHOW GRANTS, permissions GET): admins,
    /// owners, holders of MANAGE, or anyone asking about their own grants
    /// (https://docs.databricks.com/sql/language-manual/security-show-grant.html).
    pub fn read_grants(&self, on: &Securable, principal: Option<&str>) -> Result<(), SqlError> {
        if principal.is_some_and(|p| p.eq_ignore_ascii_case(&self.caller.principal)) {
            return Ok(());
        }
        self.manage(on)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_are_stable_sixteen_digit_numbers() {
        let a = user_id("alice@example.com");
        assert_eq!(a.len(), 16);
        assert!(a.chars().all(|c| c.is_ascii_digit()));
        assert_eq!(a, user_id("Alice@Example.com"));
        assert_ne!(a, user_id("bob@example.com"));
    }
}
