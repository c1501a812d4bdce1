//! Query parameters: `common_params.yaml` merged under `<Country>.yaml`.
//!
//! These files are trusted configuration: their values are pasted into SQL.
//! Nothing a REST caller sends ever reaches this map.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const COMMON_FILE: &str = "common_params.yaml";
/// Files in the config directory that are not countries.
const NOT_COUNTRIES: [&str; 2] = [COMMON_FILE, "permissions.yaml"];

#[derive(Debug, thiserror::Error)]
pub enum ParamError {
    #[error("config path {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: invalid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
    #[error("{path}: expected a mapping of parameter names to values at the top level")]
    NotAMapping { path: PathBuf },
    #[error("{path}: parameter '{key}' must be a string, number or boolean, not {found}")]
    BadValue {
        path: PathBuf,
        key: String,
        found: &'static str,
    },
    #[error("unknown country '{country}' (no {country}.yaml in {dir}); available: {}", available.join(", "))]
    UnknownCountry {
        country: String,
        dir: PathBuf,
        available: Vec<String>,
    },
}

/// The merged parameters, each with the file it came from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params {
    values: BTreeMap<String, (String, PathBuf)>,
    /// The files read, in merge order.
    pub files: Vec<PathBuf>,
}

impl Params {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.as_str())
    }

    /// The file a parameter was taken from.
    pub fn source(&self, key: &str) -> Option<&Path> {
        self.values.get(key).map(|(_, p)| p.as_path())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, &Path)> {
        self.values
            .iter()
            .map(|(k, (v, p))| (k.as_str(), v.as_str(), p.as_path()))
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Sets one parameter, as if read from `source`.
    pub fn set(
        &mut self,
        key: impl Into<String>,
        value: impl Into<String>,
        source: impl Into<PathBuf>,
    ) {
        self.values
            .insert(key.into(), (value.into(), source.into()));
    }

    fn merge_file(&mut self, path: &Path) -> Result<(), ParamError> {
        let text = std::fs::read_to_string(path).map_err(|source| ParamError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let doc: serde_norway::Value =
            serde_norway::from_str(&text).map_err(|e| ParamError::Yaml {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        let map = match doc {
            serde_norway::Value::Mapping(m) => m,
            // An empty file (or only comments) sets nothing.
            serde_norway::Value::Null => serde_norway::Mapping::new(),
            _ => {
                return Err(ParamError::NotAMapping {
                    path: path.to_path_buf(),
                })
            }
        };
        for (k, v) in map {
            let key = match k {
                serde_norway::Value::String(s) => s,
                other => yaml_scalar(&other).unwrap_or_default(),
            };
            let value = yaml_scalar(&v).ok_or_else(|| ParamError::BadValue {
                path: path.to_path_buf(),
                key: key.clone(),
                found: match v {
                    serde_norway::Value::Sequence(_) => "a list",
                    serde_norway::Value::Mapping(_) => "a mapping",
                    _ => "a tagged value",
                },
            })?;
            self.values.insert(key, (value, path.to_path_buf()));
        }
        self.files.push(path.to_path_buf());
        Ok(())
    }
}

/// A YAML scalar as the text pasted into SQL; `null` is the empty string.
fn yaml_scalar(v: &serde_norway::Value) -> Option<String> {
    match v {
        serde_norway::Value::String(s) => Some(s.clone()),
        serde_norway::Value::Number(n) => Some(n.to_string()),
        serde_norway::Value::Bool(b) => Some(b.to_string()),
        serde_norway::Value::Null => Some(String::new()),
        _ => None,
    }
}

fn yaml_files(dir: &Path) -> Result<Vec<PathBuf>, ParamError> {
    if !dir.is_dir() {
        return Err(ParamError::NotADirectory(dir.to_path_buf()));
    }
    let entries = std::fs::read_dir(dir).map_err(|source| ParamError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for e in entries {
        let e = e.map_err(|source| ParamError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let p = e.path();
        if p.is_file() && matches!(p.extension().and_then(|x| x.to_str()), Some("yaml" | "yml")) {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

/// The countries a config directory defines: its YAML files other than
/// `common_params.yaml` and `permissions.yaml`.
pub fn countries(dir: &Path) -> Result<Vec<String>, ParamError> {
    Ok(yaml_files(dir)?
        .iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            !NOT_COUNTRIES.iter().any(|n| n.eq_ignore_ascii_case(name))
        })
        .filter_map(|p| p.file_stem().and_then(|s| s.to_str()).map(str::to_string))
        .collect())
}

/// Loads `common_params.yaml` (if present) then `<country>.yaml` over it.
/// The country name matches the file name case-insensitively.
pub fn load(dir: &Path, country: &str) -> Result<Params, ParamError> {
    let files = yaml_files(dir)?;
    let mut params = Params::default();
    if let Some(common) = files.iter().find(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.eq_ignore_ascii_case(COMMON_FILE))
    }) {
        params.merge_file(common)?;
    }
    let available = countries(dir)?;
    let file = files
        .iter()
        .find(|p| {
            p.file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|s| s.eq_ignore_ascii_case(country))
                && available.iter().any(|a| a.eq_ignore_ascii_case(country))
        })
        .ok_or_else(|| ParamError::UnknownCountry {
            country: country.to_string(),
            dir: dir.to_path_buf(),
            available,
        })?;
    params.merge_file(file)?;
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> PathBuf {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let d = std::env::temp_dir().join(format!(
            "bridge-params-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for (n, t) in files {
            std::fs::write(d.join(n), t).unwrap();
        }
        d
    }

    #[test]
    fn country_overrides_common() {
        let d = dir_with(&[
            (
                "common_params.yaml",
                "schema: dbo\nstart_date: \"2024-01-01\"\nfactor: 1.5\n",
            ),
            (
                "Colombia.yaml",
                "country_code: CO\nschema: ventas\nactive: true\n",
            ),
            ("permissions.yaml", "users: []\n"),
        ]);
        let p = load(&d, "colombia").unwrap();
        assert_eq!(p.get("schema"), Some("ventas"));
        assert_eq!(p.get("start_date"), Some("2024-01-01"));
        assert_eq!(p.get("factor"), Some("1.5"));
        assert_eq!(p.get("active"), Some("true"));
        assert!(p.source("schema").unwrap().ends_with("Colombia.yaml"));
        assert_eq!(countries(&d).unwrap(), vec!["Colombia".to_string()]);
        let err = load(&d, "Peru").unwrap_err().to_string();
        assert!(
            err.contains("unknown country 'Peru'") && err.contains("Colombia"),
            "{err}"
        );
    }

    #[test]
    fn bad_files_name_the_file_and_key() {
        let d = dir_with(&[("Mexico.yaml", "tables:\n  - a\n  - b\n")]);
        let err = load(&d, "Mexico").unwrap_err().to_string();
        assert!(
            err.contains("Mexico.yaml") && err.contains("'tables'") && err.contains("a list"),
            "{err}"
        );
        let d = dir_with(&[("Chile.yaml", "a: [unclosed\n")]);
        let err = load(&d, "Chile").unwrap_err().to_string();
        assert!(
            err.contains("Chile.yaml") && err.contains("invalid YAML"),
            "{err}"
        );
    }
}
