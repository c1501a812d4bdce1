//! Finds `*.sql` files under a queries directory; each is named by its file
//! stem (`queries/ventas.sql` is `ventas`).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("queries path {0} is not a directory")]
    NotADirectory(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("two queries are named '{name}': {first} and {second}")]
    Duplicate {
        name: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("no .sql files in {0}")]
    Empty(PathBuf),
    #[error("unknown query '{name}'; available: {}", available.join(", "))]
    Unknown {
        name: String,
        available: Vec<String>,
    },
}

/// One query file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryFile {
    pub name: String,
    pub path: PathBuf,
    pub sql: String,
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), QueryError> {
    let entries = std::fs::read_dir(dir).map_err(|source| QueryError::Read {
        path: dir.to_path_buf(),
        source,
    })?;
    for e in entries {
        let e = e.map_err(|source| QueryError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let p = e.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| x.eq_ignore_ascii_case("sql"))
        {
            out.push(p);
        }
    }
    Ok(())
}

/// Every query under `dir` (subdirectories included), sorted by name.
pub fn load_queries(dir: &Path) -> Result<Vec<QueryFile>, QueryError> {
    if !dir.is_dir() {
        return Err(QueryError::NotADirectory(dir.to_path_buf()));
    }
    let mut paths = Vec::new();
    walk(dir, &mut paths)?;
    paths.sort();
    let mut out: Vec<QueryFile> = Vec::new();
    for path in paths {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if let Some(prev) = out.iter().find(|q| q.name.eq_ignore_ascii_case(&name)) {
            return Err(QueryError::Duplicate {
                name,
                first: prev.path.clone(),
                second: path,
            });
        }
        let sql = std::fs::read_to_string(&path).map_err(|source| QueryError::Read {
            path: path.clone(),
            source,
        })?;
        out.push(QueryFile { name, path, sql });
    }
    if out.is_empty() {
        return Err(QueryError::Empty(dir.to_path_buf()));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The queries named (case-insensitively), in the order given, each once
/// however often or however spelled it is named (`ventas` and `VENTAS` are
/// one query, one output); all of them when `names` is empty.
pub fn select<'a>(
    all: &'a [QueryFile],
    names: &[String],
) -> Result<Vec<&'a QueryFile>, QueryError> {
    if names.is_empty() {
        return Ok(all.iter().collect());
    }
    let mut out: Vec<&QueryFile> = Vec::with_capacity(names.len());
    for n in names {
        let q = all
            .iter()
            .find(|q| q.name.eq_ignore_ascii_case(n))
            .ok_or_else(|| QueryError::Unknown {
                name: n.clone(),
                available: all.iter().map(|q| q.name.clone()).collect(),
            })?;
        if !out.iter().any(|o| std::ptr::eq(*o, q)) {
            out.push(q);
        }
    }
    Ok(out)
}
