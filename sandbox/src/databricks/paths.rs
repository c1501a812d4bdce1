//! Unity Catalog Volume paths (`/Volumes/<catalog>/<schema>/<volume>/...`)
//! and where their files live on the sandbox's disk.

use std::path::{Path, PathBuf};

use super::sql::names::FullName;

/// A path inside a volume, split into the volume and the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VolumePath {
    pub volume: FullName,
    /// Path segments below the volume root (empty for the root itself).
    pub rel: Vec<String>,
}

/// Why a path is not a volume path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("the path must be absolute and start with /Volumes/<catalog>/<schema>/<volume>: {0}")]
    NotAVolumePath(String),
    #[error("invalid path segment in {0}")]
    BadSegment(String),
}

impl VolumePath {
    /// Parses an absolute path; `.`/`..` segments and empty names are refused
    /// so a request can never leave its volume's directory.
    pub fn parse(path: &str) -> Result<VolumePath, PathError> {
        let trimmed = path.trim_end_matches('/');
        let mut segs = trimmed.split('/');
        if segs.next() != Some("") {
            return Err(PathError::NotAVolumePath(path.to_string()));
        }
        let rest: Vec<&str> = segs.collect();
        if rest.len() < 4 || rest[0] != "Volumes" {
            return Err(PathError::NotAVolumePath(path.to_string()));
        }
        for s in &rest {
            if s.is_empty() || *s == "." || *s == ".." || s.contains('\\') || s.contains('\0') {
                return Err(PathError::BadSegment(path.to_string()));
            }
        }
        Ok(VolumePath {
            volume: FullName::new(rest[1], rest[2], rest[3]),
            rel: rest[4..].iter().map(|s| s.to_string()).collect(),
        })
    }

    /// Directory holding a volume's files.
    pub fn volume_dir(root: &Path, volume: &FullName) -> PathBuf {
        root.join(&volume.catalog)
            .join(&volume.schema)
            .join(&volume.name)
    }

    pub fn to_disk(&self, root: &Path) -> PathBuf {
        let mut p = Self::volume_dir(root, &self.volume);
        for s in &self.rel {
            p.push(s);
        }
        p
    }

    /// The API path of a child entry (as listed in directory contents).
    pub fn display_child(&self, child: &str) -> String {
        let mut s = format!(
            "/Volumes/{}/{}/{}",
            self.volume.catalog, self.volume.schema, self.volume.name
        );
        for r in &self.rel {
            s.push('/');
            s.push_str(r);
        }
        s.push('/');
        s.push_str(child);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses_escapes() {
        let p = VolumePath::parse("/Volumes/Main/demo/landing/a/b.parquet").unwrap();
        assert_eq!(p.volume, FullName::new("main", "demo", "landing"));
        assert_eq!(p.rel, vec!["a".to_string(), "b.parquet".to_string()]);
        assert!(VolumePath::parse("/Volumes/main/demo/landing/../x").is_err());
        assert!(VolumePath::parse("/tmp/x").is_err());
        assert!(VolumePath::parse("/Volumes/main/demo").is_err());
    }
}
