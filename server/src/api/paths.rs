//! Paths a request names (`queries_path`, `config_path`, a local
//! `destination`) resolve inside roots the server was started with:
//! relative paths against the root, absolute ones only when already inside
//! it; `..` and symlinks that lead out are refused.

use std::path::{Component, Path, PathBuf};

use axum::http::StatusCode;

use super::error::ApiError;

/// Roots as canonical paths.
#[derive(Clone, Debug)]
pub struct Roots {
    pub queries: PathBuf,
    pub config: PathBuf,
    /// Local destinations; `None` allows only Volume destinations.
    pub output: Option<PathBuf>,
}

fn canonical(p: &Path, what: &str) -> Result<PathBuf, String> {
    std::fs::canonicalize(p).map_err(|e| format!("{what} root {}: {e}", p.display()))
}

impl Roots {
    pub fn new(queries: &Path, config: &Path, output: Option<&Path>) -> Result<Roots, String> {
        let output = match output {
            Some(o) => {
                std::fs::create_dir_all(o)
                    .map_err(|e| format!("output root {}: {e}", o.display()))?;
                Some(canonical(o, "output")?)
            }
            None => None,
        };
        Ok(Roots {
            queries: canonical(queries, "queries")?,
            config: canonical(config, "config")?,
            output,
        })
    }
}

fn outside(field: &str, requested: &str) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "path_not_allowed",
        format!("{field} '{requested}' is outside the directories this server serves"),
    )
    .details(serde_json::json!({ "field": field }))
}

/// The path under `root` that `requested` names; it must exist.
pub fn existing_inside(root: &Path, requested: &str, field: &str) -> Result<PathBuf, ApiError> {
    let joined = join(root, requested, field)?;
    let real = std::fs::canonicalize(&joined).map_err(|_| {
        ApiError::invalid(
            field,
            format!("{field} '{requested}' does not exist on the server"),
        )
    })?;
    if !real.starts_with(root) {
        return Err(outside(field, requested));
    }
    Ok(real)
}

/// Like [`existing_inside`] for a path that may not exist yet: its deepest
/// existing ancestor must be inside `root`.
pub fn new_inside(root: &Path, requested: &str, field: &str) -> Result<PathBuf, ApiError> {
    let joined = join(root, requested, field)?;
    let mut probe = joined.as_path();
    let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
    let real = loop {
        match std::fs::canonicalize(probe) {
            Ok(r) => break r,
            Err(_) => {
                rest.push(probe.file_name().unwrap_or_default());
                probe = probe.parent().ok_or_else(|| outside(field, requested))?;
            }
        }
    };
    if !real.starts_with(root) {
        return Err(outside(field, requested));
    }
    Ok(rest.iter().rev().fold(real, |p, c| p.join(c)))
}

/// Checks that a file found under a served directory (a query file, a
/// parameter file) is really inside the root, symlinks resolved.
pub fn file_inside(root: &Path, file: &Path, field: &str) -> Result<(), ApiError> {
    match std::fs::canonicalize(file) {
        Ok(real) if real.starts_with(root) => Ok(()),
        _ => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "path_not_allowed",
            format!(
                "{} (under {field}) links outside the directories this server serves",
                file.file_name().unwrap_or_default().to_string_lossy()
            ),
        )
        .details(serde_json::json!({ "field": field }))),
    }
}

fn join(root: &Path, requested: &str, field: &str) -> Result<PathBuf, ApiError> {
    if requested.trim().is_empty() {
        return Err(ApiError::invalid(field, format!("{field} is empty")));
    }
    if requested.contains('\0') {
        return Err(ApiError::invalid(
            field,
            format!("{field} contains a NUL byte"),
        ));
    }
    let p = Path::new(requested);
    if p.components().any(|c| c == Component::ParentDir) {
        return Err(outside(field, requested));
    }
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        root.join(p)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_their_root() {
        let base = std::env::temp_dir().join(format!("bridge-roots-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let root = base.join("root");
        std::fs::create_dir_all(root.join("queries")).unwrap();
        std::fs::create_dir_all(base.join("secret")).unwrap();
        std::os::unix::fs::symlink(base.join("secret"), root.join("link")).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();

        assert_eq!(
            existing_inside(&root, "./queries", "queries_path").unwrap(),
            root.join("queries")
        );
        let abs = root.join("queries").display().to_string();
        assert!(existing_inside(&root, &abs, "queries_path").is_ok());
        for bad in ["../secret", "queries/../../secret", "/etc", "link"] {
            let e = existing_inside(&root, bad, "queries_path").unwrap_err();
            assert_eq!(e.status, StatusCode::FORBIDDEN, "{bad}");
        }
        let e = existing_inside(&root, "nope", "queries_path").unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);

        assert_eq!(
            new_inside(&root, "out/a/b", "destination").unwrap(),
            root.join("out/a/b")
        );
        assert!(new_inside(&root, "link/x", "destination").is_err());
        assert!(new_inside(&root, "/tmp/x", "destination").is_err());
        assert!(file_inside(&root, &root.join("queries"), "queries_path").is_ok());
        assert!(file_inside(&root, &root.join("link"), "queries_path").is_err());
    }
}
