//! Unity Catalog names as configuration and requests give them, and as the
//! bridge compares them: `catalog.schema.name` with backquoted parts, and
//! `/Volumes/<catalog>/<schema>/<volume>/...` paths. Catalog, schema, table and volume names are case-insensitive in
//! Unity Catalog (stored lower-case); directories and files inside a
//! volume are case-sensitive, as cloud object storage is
//! (https://docs.databricks.com/en/sql/language-manual/sql-ref-names.html,
//! https://docs.databricks.com/en/volumes/volume-files.html).

/// The parts of a Databricks dotted name (case kept), backquotes removed
/// (a doubled backquote is one); `None` for anything but identifiers.
pub fn split_dotted(text: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    let mut chars = text.trim().chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '`' {
                if chars.peek() == Some(&'`') {
                    cur.push('`');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '`' && cur.is_empty() {
            quoted = true;
        } else if c == '.' {
            parts.push(std::mem::take(&mut cur));
        } else if c.is_alphanumeric() || c == '_' || c == '$' || c == '#' {
            cur.push(c);
        } else {
            return None;
        }
    }
    if quoted {
        return None;
    }
    parts.push(cur);
    if parts.iter().any(|p| p.trim().is_empty()) {
        return None;
    }
    Some(parts)
}

/// A three-part Unity Catalog name, lower-cased for comparison.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UcName {
    pub catalog: String,
    pub schema: String,
    pub name: String,
}

impl UcName {
    pub fn parse(text: &str) -> Option<UcName> {
        match split_dotted(text)?.as_slice() {
            [c, s, n] => Some(UcName {
                catalog: c.to_lowercase(),
                schema: s.to_lowercase(),
                name: n.to_lowercase(),
            }),
            _ => None,
        }
    }

    /// `catalog.schema`.
    pub fn schema_name(&self) -> String {
        format!("{}.{}", self.catalog, self.schema)
    }
}

impl std::fmt::Display for UcName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.catalog, self.schema, self.name)
    }
}

/// A path in a volume: the volume, then the directories below it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct VolumePath {
    pub volume: UcName,
    pub dirs: Vec<String>,
}

/// What is wrong with the shape of a Volume path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeShape {
    /// Fewer than catalog, schema and volume.
    TooShort,
    /// A `.` or `..` segment.
    DotSegment,
}

/// The one rule for a Volume path's shape, `/Volumes/<catalog>/<schema>/<volume>[/dir...]`:
/// its segments as written (empty ones dropped, so a doubled or trailing
/// `/` does not count), `None` when `text` does not start with `/Volumes/`.
pub fn volume_segments(text: &str) -> Option<Result<Vec<&str>, VolumeShape>> {
    let rest = text.strip_prefix("/Volumes/")?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    Some(if parts.iter().any(|p| *p == "." || *p == "..") {
        Err(VolumeShape::DotSegment)
    } else if parts.len() < 3 {
        Err(VolumeShape::TooShort)
    } else {
        Ok(parts)
    })
}

impl VolumePath {
    /// A Volume path (`volume_segments`), its catalog, schema and volume
    /// compared as Unity Catalog compares names.
    pub fn parse(text: &str) -> Result<VolumePath, String> {
        let shape =
            || format!("'{text}' is not a Volume path (/Volumes/<catalog>/<schema>/<volume>/...)");
        match volume_segments(text.trim()) {
            None | Some(Err(VolumeShape::TooShort)) => Err(shape()),
            Some(Err(VolumeShape::DotSegment)) => {
                Err(format!("'{text}': '.' and '..' are not allowed"))
            }
            Some(Ok(parts)) => Ok(VolumePath {
                volume: UcName {
                    catalog: parts[0].to_lowercase(),
                    schema: parts[1].to_lowercase(),
                    name: parts[2].to_lowercase(),
                },
                dirs: parts[3..].iter().map(|d| d.to_string()).collect(),
            }),
        }
    }

    /// Whether this path is `other` or lies below it.
    pub fn within(&self, other: &VolumePath) -> bool {
        self.volume == other.volume && self.dirs.starts_with(&other.dirs)
    }
}

impl std::fmt::Display for VolumePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.volume;
        write!(f, "/Volumes/{}/{}/{}", v.catalog, v.schema, v.name)?;
        for d in &self.dirs {
            write!(f, "/{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_paths_compare_as_unity_catalog_does() {
        assert_eq!(
            UcName::parse("Main.`HR`.Salaries").unwrap(),
            UcName::parse("main.hr.salaries").unwrap()
        );
        assert!(UcName::parse("hr.salaries").is_none());
        assert!(UcName::parse("a.b.c; DROP").is_none());
        let granted = VolumePath::parse("/Volumes/Main/demo/landing/Colombia/").unwrap();
        let p = |s: &str| VolumePath::parse(s).unwrap();
        assert!(p("/Volumes/main/DEMO/landing/Colombia/ventas").within(&granted));
        assert!(p("/Volumes/main/demo/landing//Colombia").within(&granted));
        assert!(!p("/Volumes/main/demo/landing/colombia").within(&granted));
        assert!(!p("/Volumes/main/demo/landing/Mexico").within(&granted));
        assert!(!p("/Volumes/main/demo/landing").within(&granted));
        assert!(!p("/Volumes/main/demo/landing/ColombiaX").within(&granted));
        assert!(VolumePath::parse("/Volumes/main/demo/landing/Colombia/../Mexico").is_err());
        assert!(VolumePath::parse("/tmp/x").is_err());
    }
}
