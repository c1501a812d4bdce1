//! Unity Catalog's vocabulary of access control, with no storage: the
//! securable objects the double has (catalogs, schemas, tables, volumes),
//! the privileges that apply to each, and their two spellings (`USE_CATALOG`
//! in the REST API, `USE CATALOG` in SQL).
//! https://docs.databricks.com/data-governance/unity-catalog/access-control/privileges-reference

use std::fmt;

use super::error::SqlError;
use super::names::FullName;

/// The kinds of securable object the double stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecurableType {
    Catalog,
    Schema,
    Table,
    Volume,
}

impl SecurableType {
    /// The REST spelling (`securable_type` path parameter and
    /// `inherited_from_type`), also SHOW GRANTS' `objectType`.
    pub fn name(self) -> &'static str {
        match self {
            SecurableType::Catalog => "CATALOG",
            SecurableType::Schema => "SCHEMA",
            SecurableType::Table => "TABLE",
            SecurableType::Volume => "VOLUME",
        }
    }

    /// How permission errors name the kind (`User does not have SELECT on
    /// Table 'main.demo.t'.`).
    pub fn title(self) -> &'static str {
        match self {
            SecurableType::Catalog => "Catalog",
            SecurableType::Schema => "Schema",
            SecurableType::Table => "Table",
            SecurableType::Volume => "Volume",
        }
    }

    /// Parses either spelling, case-insensitively (`DATABASE` is SQL's
    /// synonym of `SCHEMA`).
    pub fn parse(text: &str) -> Option<SecurableType> {
        match text.trim().to_ascii_uppercase().as_str() {
            "CATALOG" => Some(SecurableType::Catalog),
            "SCHEMA" | "DATABASE" => Some(SecurableType::Schema),
            "TABLE" => Some(SecurableType::Table),
            "VOLUME" => Some(SecurableType::Volume),
            _ => None,
        }
    }

    /// Parts of a full name of this kind (`c`, `c.s`, `c.s.n`).
    fn parts(self) -> usize {
        match self {
            SecurableType::Catalog => 1,
            SecurableType::Schema => 2,
            SecurableType::Table | SecurableType::Volume => 3,
        }
    }
}

/// One securable object, by kind and lower-case full name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Securable {
    pub ty: SecurableType,
    pub full_name: String,
}

impl Securable {
    pub fn catalog(name: &str) -> Self {
        Securable {
            ty: SecurableType::Catalog,
            full_name: name.to_lowercase(),
        }
    }

    pub fn schema(catalog: &str, schema: &str) -> Self {
        Securable {
            ty: SecurableType::Schema,
            full_name: format!("{}.{}", catalog, schema).to_lowercase(),
        }
    }

    pub fn table(name: &FullName) -> Self {
        Securable {
            ty: SecurableType::Table,
            full_name: name.dotted(),
        }
    }

    pub fn volume(name: &FullName) -> Self {
        Securable {
            ty: SecurableType::Volume,
            full_name: name.dotted(),
        }
    }

    /// A securable from its kind and a dotted full name with the right
    /// number of parts.
    pub fn parse(ty: SecurableType, full_name: &str) -> Option<Self> {
        let parts: Vec<&str> = full_name.split('.').collect();
        if parts.len() != ty.parts() || parts.iter().any(|p| p.is_empty()) {
            return None;
        }
        Some(Securable {
            ty,
            full_name: full_name.to_lowercase(),
        })
    }

    /// The containing schema or catalog (privileges are inherited from it).
    pub fn parent(&self) -> Option<Securable> {
        let (rest, _) = self.full_name.rsplit_once('.')?;
        Some(Securable {
            ty: match self.ty {
                SecurableType::Schema => SecurableType::Catalog,
                SecurableType::Table | SecurableType::Volume => SecurableType::Schema,
                SecurableType::Catalog => return None,
            },
            full_name: rest.to_string(),
        })
    }

    /// This object, then its schema, then its catalog.
    pub fn lineage(&self) -> Vec<Securable> {
        let mut out = vec![self.clone()];
        while let Some(p) = out.last().and_then(Securable::parent) {
            out.push(p);
        }
        out
    }

    pub fn catalog_name(&self) -> &str {
        self.full_name.split('.').next().unwrap_or_default()
    }
}

impl fmt::Display for Securable {
    /// `Table 'main.demo.t'`, as permission errors name objects.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} '{}'", self.ty.title(), self.full_name)
    }
}

use SecurableType::{Catalog as C, Schema as S, Table as T, Volume as V};

/// Every privilege the double knows (REST spelling) and the securable kinds
/// it can be granted on, from the privileges reference table. A privilege
/// granted on a catalog or schema is inherited by the children it applies to.
const PRIVILEGES: &[(&str, &[SecurableType])] = &[
    ("ALL_PRIVILEGES", &[C, S, T, V]),
    ("APPLY_TAG", &[C, S, T, V]),
    ("BROWSE", &[C]),
    ("CREATE_FUNCTION", &[C, S]),
    ("CREATE_MATERIALIZED_VIEW", &[C, S]),
    ("CREATE_MODEL", &[C, S]),
    ("CREATE_SCHEMA", &[C]),
    ("CREATE_TABLE", &[C, S]),
    ("CREATE_VOLUME", &[C, S]),
    ("EXECUTE", &[C, S]),
    ("EXTERNAL_USE_SCHEMA", &[C, S]),
    ("MANAGE", &[C, S, T, V]),
    ("MODIFY", &[C, S, T]),
    ("READ_VOLUME", &[C, S, V]),
    ("REFRESH", &[C, S, T]),
    ("SELECT", &[C, S, T]),
    ("USE_CATALOG", &[C]),
    ("USE_SCHEMA", &[C, S]),
    ("WRITE_VOLUME", &[C, S, V]),
];

pub const ALL_PRIVILEGES: &str = "ALL_PRIVILEGES";
pub const USE_CATALOG: &str = "USE_CATALOG";
pub const USE_SCHEMA: &str = "USE_SCHEMA";
pub const SELECT: &str = "SELECT";
pub const MODIFY: &str = "MODIFY";
pub const READ_VOLUME: &str = "READ_VOLUME";
pub const WRITE_VOLUME: &str = "WRITE_VOLUME";
pub const CREATE_SCHEMA: &str = "CREATE_SCHEMA";
pub const CREATE_TABLE: &str = "CREATE_TABLE";
pub const CREATE_VOLUME: &str = "CREATE_VOLUME";
pub const MANAGE: &str = "MANAGE";

/// The REST name of a privilege written either way (`use catalog`,
/// `USE_CATALOG`, `ALL PRIVILEGES`); `None` when Unity Catalog has no such
/// privilege.
pub fn canonical(text: &str) -> Option<&'static str> {
    let key = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join("_")
        .to_ascii_uppercase();
    PRIVILEGES
        .iter()
        .find(|(name, _)| *name == key)
        .map(|(name, _)| *name)
}

/// SQL's spelling (`USE CATALOG`), used by SHOW GRANTS and error messages.
pub fn sql_name(privilege: &str) -> String {
    privilege.replace('_', " ")
}

/// Whether a privilege can be granted on (and so applies to) a kind.
pub fn applies_to(privilege: &str, ty: SecurableType) -> bool {
    PRIVILEGES
        .iter()
        .any(|(name, kinds)| *name == privilege && kinds.contains(&ty))
}

/// Checks a privilege named in a GRANT, REVOKE or permissions PATCH: known,
/// and applicable to the object.
pub fn validate(text: &str, on: &Securable) -> Result<&'static str, SqlError> {
    let Some(p) = canonical(text) else {
        return Err(SqlError::invalid(
            "INVALID_PARAMETER_VALUE",
            &format!("Privilege {} is not a valid privilege.", text.trim()),
            "22023",
        ));
    };
    if !applies_to(p, on.ty) {
        return Err(SqlError::invalid(
            "INVALID_PARAMETER_VALUE",
            &format!(
                "Privilege {p} is not applicable to this entity [{}:{}].",
                on.full_name,
                on.ty.name()
            ),
            "22023",
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_both_ways_and_check_applicability() {
        assert_eq!(canonical("use  catalog"), Some("USE_CATALOG"));
        assert_eq!(canonical("ALL PRIVILEGES"), Some("ALL_PRIVILEGES"));
        assert_eq!(canonical("write_volume"), Some("WRITE_VOLUME"));
        assert_eq!(canonical("DROP"), None);
        assert_eq!(sql_name("USE_SCHEMA"), "USE SCHEMA");
        let vol = Securable::volume(&FullName::new("Main", "demo", "landing"));
        assert!(validate("READ VOLUME", &vol).is_ok());
        assert!(validate("SELECT", &vol).is_err());
        assert!(validate("SELECT", &Securable::catalog("main")).is_ok());
        assert_eq!(
            vol.lineage()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
            [
                "Volume 'main.demo.landing'",
                "Schema 'main.demo'",
                "Catalog 'main'"
            ]
        );
        assert!(Securable::parse(SecurableType::Schema, "main").is_none());
    }
}
