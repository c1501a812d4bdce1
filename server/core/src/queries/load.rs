//! A query's table load: `queries/<name>.yaml` beside `queries/<name>.sql`
//! says which Unity Catalog table the landed Parquet goes into and how it
//! is kept current. `{param}` placeholders work in its values as in the
//! query. Every error names the file and the key.
//!
//! ```yaml
//! table: main.kwp_{country_code}.ventas   # created if missing
//! mode: incremental                       # full | append | incremental | change_tracking
//! primary_key: [id_transaccion]           # merge key (incremental, change_tracking)
//! cursor: fecha_modificacion              # incremental: rows with cursor >= last value
//! lookback: 2h                            # incremental: re-read this much before it
//! max_delete_rows: 5000                   # change_tracking: refuse larger deletes
//! tracked_table: dbo.J_Ventas             # change_tracking: the table tracked
//! partition_on: id_transaccion            # read in ranges of this column, concurrently
//! partitions: 4                           # how many (default 4)
//! ```
//!
//! A file with only `partition_on`/`partitions` partitions the read and
//! loads no table.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::partitioning::Partitioning;
use super::render::render;
use crate::config::Params;
use crate::databricks::names::UcName;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{file}: {key}: {message}")]
pub struct LoadSpecError {
    pub file: PathBuf,
    pub key: String,
    pub message: String,
}

/// How the table is kept current.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadMode {
    /// Replace the table's contents atomically.
    Full,
    /// Add the rows (COPY INTO).
    Append,
    /// Rows whose `cursor` is at or past the last value seen (minus
    /// `lookback`), merged on the primary key.
    Incremental { cursor: String, lookback: Lookback },
    /// SQL Server Change Tracking on `tracked_table`: inserts, updates and
    /// deletes since the last synced version, merged on the primary key.
    ChangeTracking {
        tracked_table: Option<String>,
        max_delete_rows: Option<u64>,
    },
}

/// How far before the last cursor value an incremental load reads again,
/// for rows committed late with a cursor value already passed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookback {
    /// `90s`, `30m`, `2h`, `1d`: for date and time cursors.
    Time(Duration),
    /// A plain number: seconds for date and time cursors, cursor units for
    /// numeric ones (`1000`: from the last value minus 1000), the last that
    /// many distinct values for text ones.
    Amount(u64),
}

impl Lookback {
    pub const NONE: Lookback = Lookback::Amount(0);

    /// `2h` is a time, `500` an amount.
    pub fn parse(text: &str) -> Option<Lookback> {
        let t = text.trim();
        if let Ok(n) = t.parse::<u64>() {
            return Some(Lookback::Amount(n));
        }
        parse_duration(t).map(Lookback::Time)
    }
}

impl std::fmt::Display for Lookback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Lookback::Time(d) => write!(f, "{}s", d.as_secs()),
            Lookback::Amount(n) => write!(f, "{n}"),
        }
    }
}

impl LoadMode {
    pub fn name(&self) -> &'static str {
        match self {
            LoadMode::Full => "full",
            LoadMode::Append => "append",
            LoadMode::Incremental { .. } => "incremental",
            LoadMode::ChangeTracking { .. } => "change_tracking",
        }
    }
}

/// A checked load specification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadSpec {
    /// The file it came from (for messages).
    pub file: PathBuf,
    pub table: UcName,
    pub mode: LoadMode,
    pub primary_key: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSpec {
    table: Option<String>,
    mode: Option<String>,
    #[serde(default)]
    primary_key: Option<OneOrMany>,
    cursor: Option<String>,
    lookback: Option<String>,
    max_delete_rows: Option<u64>,
    tracked_table: Option<String>,
    partition_on: Option<String>,
    partitions: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// `2h`, `30m`, `45s`, `1d`, `500ms`, or a number of seconds.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let secs = match unit.trim() {
        "" | "s" => n,
        "ms" => return Some(Duration::from_millis(n)),
        "m" | "min" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(secs))
}

/// A column name the bridge may quote in either system.
fn column(name: &str) -> bool {
    !name.trim().is_empty()
        && name.len() <= 128
        && !name
            .chars()
            .any(|c| matches!(c, '`' | '[' | ']' | '"' | '\'' | ';') || c.is_control())
}

/// The spec beside `sql_file` (`<stem>.yaml`), rendered with `params`;
/// `None` when there is none (the query only lands files).
pub fn load_spec(sql_file: &Path, params: &Params) -> Result<Option<LoadSpec>, LoadSpecError> {
    let file = sql_file.with_extension("yaml");
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(LoadSpecError {
                file,
                key: "(file)".into(),
                message: e.to_string(),
            })
        }
    };
    Ok(parse_file(&text, &file, params)?.load)
}

/// What `<name>.yaml` says about a query: its table load and its
/// partitioned read, each when present.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QuerySpec {
    pub load: Option<LoadSpec>,
    pub partition: Option<Partitioning>,
}

/// Partitions when `partition_on` is given without `partitions`.
pub const DEFAULT_PARTITIONS: u32 = 4;

/// The spec beside `sql_file` (`<stem>.yaml`), rendered with `params`;
/// empty when there is none.
pub fn query_spec(sql_file: &Path, params: &Params) -> Result<QuerySpec, LoadSpecError> {
    let file = sql_file.with_extension("yaml");
    match std::fs::read_to_string(&file) {
        Ok(text) => parse_file(&text, &file, params),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(QuerySpec::default()),
        Err(e) => Err(LoadSpecError {
            file,
            key: "(file)".into(),
            message: e.to_string(),
        }),
    }
}

/// Parses and checks a spec's text: the load (needs `table`) and the
/// partitioning (`partition_on`, `partitions`).
pub fn parse_file(text: &str, file: &Path, params: &Params) -> Result<QuerySpec, LoadSpecError> {
    let raw = read(text, file)?;
    let err = |key: &str, message: String| LoadSpecError {
        file: file.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let partition = match (&raw.partition_on, raw.partitions) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(err(
                "partitions",
                "needs partition_on (the column to split on)".into(),
            ))
        }
        (Some(c), n) => {
            let c = render(c, file, params).map_err(|e| err("partition_on", e.to_string()))?;
            let key = if n.is_some() {
                "partitions"
            } else {
                "partition_on"
            };
            Some(
                Partitioning::new(
                    &c,
                    n.unwrap_or(DEFAULT_PARTITIONS),
                    &file.display().to_string(),
                )
                .map_err(|m| err(key, m))?,
            )
        }
    };
    let load_keys = raw.table.is_some()
        || raw.mode.is_some()
        || raw.primary_key.is_some()
        || raw.cursor.is_some()
        || raw.lookback.is_some()
        || raw.max_delete_rows.is_some()
        || raw.tracked_table.is_some();
    let load = if load_keys || partition.is_none() {
        Some(load_of(raw, file, params)?)
    } else {
        None
    };
    Ok(QuerySpec { load, partition })
}

/// Parses and checks a load spec's text.
pub fn parse(text: &str, file: &Path, params: &Params) -> Result<LoadSpec, LoadSpecError> {
    load_of(read(text, file)?, file, params)
}

fn read(text: &str, file: &Path) -> Result<FileSpec, LoadSpecError> {
    serde_norway::from_str(text).map_err(|e| {
        let m = e.to_string();
        // serde names the unknown or mistyped field in its message.
        let key = m
            .split('`')
            .nth(1)
            .filter(|k| !k.is_empty())
            .unwrap_or("(file)")
            .to_string();
        LoadSpecError {
            file: file.to_path_buf(),
            key,
            message: m,
        }
    })
}

fn load_of(raw: FileSpec, file: &Path, params: &Params) -> Result<LoadSpec, LoadSpecError> {
    let err = |key: &str, message: String| LoadSpecError {
        file: file.to_path_buf(),
        key: key.to_string(),
        message,
    };
    let fill = |key: &str, v: &str| -> Result<String, LoadSpecError> {
        render(v, file, params).map_err(|e| err(key, e.to_string()))
    };
    let table_text = fill(
        "table",
        raw.table
            .as_deref()
            .ok_or_else(|| err("table", "is required (catalog.schema.table)".into()))?,
    )?;
    let table = UcName::parse(&table_text).ok_or_else(|| {
        err(
            "table",
            format!("'{table_text}' is not a Unity Catalog table name (catalog.schema.table)"),
        )
    })?;
    let primary_key: Vec<String> = match raw.primary_key {
        None => vec![],
        Some(OneOrMany::One(k)) => vec![fill("primary_key", &k)?],
        Some(OneOrMany::Many(ks)) => ks
            .iter()
            .map(|k| fill("primary_key", k))
            .collect::<Result<_, _>>()?,
    };
    if let Some(bad) = primary_key.iter().find(|k| !column(k)) {
        return Err(err(
            "primary_key",
            format!("'{bad}' is not a usable column name"),
        ));
    }
    let mode_text = raw.mode.as_deref().unwrap_or("full").trim().to_lowercase();
    let unused = |key: &str, present: bool, mode: &str| -> Result<(), LoadSpecError> {
        if present {
            Err(err(key, format!("does not apply to mode {mode}")))
        } else {
            Ok(())
        }
    };
    let mode = match mode_text.as_str() {
        "full" | "append" => {
            unused("cursor", raw.cursor.is_some(), &mode_text)?;
            unused("lookback", raw.lookback.is_some(), &mode_text)?;
            unused("max_delete_rows", raw.max_delete_rows.is_some(), &mode_text)?;
            unused("tracked_table", raw.tracked_table.is_some(), &mode_text)?;
            if mode_text == "full" {
                LoadMode::Full
            } else {
                LoadMode::Append
            }
        }
        "incremental" => {
            unused("max_delete_rows", raw.max_delete_rows.is_some(), &mode_text)?;
            unused("tracked_table", raw.tracked_table.is_some(), &mode_text)?;
            let cursor = fill(
                "cursor",
                raw.cursor
                    .as_deref()
                    .ok_or_else(|| err("cursor", "is required for mode incremental".into()))?,
            )?;
            if !column(&cursor) {
                return Err(err(
                    "cursor",
                    format!("'{cursor}' is not a usable column name"),
                ));
            }
            let lookback = match &raw.lookback {
                None => Lookback::NONE,
                Some(l) => Lookback::parse(&fill("lookback", l)?).ok_or_else(|| {
                    err(
                        "lookback",
                        format!("'{l}' is neither a duration (e.g. 90s, 30m, 2h, 1d) nor a number (cursor units, or the last values of a text cursor)"),
                    )
                })?,
            };
            LoadMode::Incremental { cursor, lookback }
        }
        "change_tracking" => {
            unused("cursor", raw.cursor.is_some(), &mode_text)?;
            unused("lookback", raw.lookback.is_some(), &mode_text)?;
            let tracked_table = raw
                .tracked_table
                .as_deref()
                .map(|t| fill("tracked_table", t))
                .transpose()?;
            LoadMode::ChangeTracking {
                tracked_table,
                max_delete_rows: raw.max_delete_rows,
            }
        }
        other => {
            return Err(err(
                "mode",
                format!("'{other}' is not one of full, append, incremental, change_tracking"),
            ))
        }
    };
    if matches!(
        mode,
        LoadMode::Incremental { .. } | LoadMode::ChangeTracking { .. }
    ) && primary_key.is_empty()
    {
        return Err(err(
            "primary_key",
            format!("is required for mode {}", mode.name()),
        ));
    }
    Ok(LoadSpec {
        file: file.to_path_buf(),
        table,
        mode,
        primary_key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        let mut p = Params::default();
        p.set("country_code", "co", Path::new("Colombia.yaml"));
        p
    }

    fn spec(text: &str) -> Result<LoadSpec, LoadSpecError> {
        parse(text, Path::new("queries/ventas.yaml"), &params())
    }

    #[test]
    fn specs_parse_with_placeholders() {
        let s = spec(
            "table: main.kwp_{country_code}.ventas\nmode: incremental\nprimary_key: [id]\ncursor: fecha\nlookback: 2h\n",
        )
        .unwrap();
        assert_eq!(s.table.to_string(), "main.kwp_co.ventas");
        assert_eq!(
            s.mode,
            LoadMode::Incremental {
                cursor: "fecha".into(),
                lookback: Lookback::Time(Duration::from_secs(7200))
            }
        );
        assert_eq!(spec("table: a.b.c\n").unwrap().mode, LoadMode::Full);
        let ct = spec("table: a.b.c\nmode: change_tracking\nprimary_key: id\nmax_delete_rows: 5\n")
            .unwrap();
        assert_eq!(ct.primary_key, ["id"]);
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let e = |t: &str| spec(t).unwrap_err().to_string();
        assert!(e("mode: full\n").starts_with("queries/ventas.yaml: table: is required"));
        assert!(e("table: a.b\n").contains("table: 'a.b' is not a Unity Catalog table name"));
        assert!(e("table: a.b.c\nmode: sometimes\n").contains("mode: 'sometimes'"));
        assert!(e("table: a.b.c\nmode: incremental\nprimary_key: [id]\n")
            .contains("cursor: is required"));
        assert!(
            e("table: a.b.c\nmode: incremental\ncursor: f\n").contains("primary_key: is required")
        );
        assert!(e(
            "table: a.b.c\nmode: incremental\nprimary_key: [id]\ncursor: f\nlookback: soon\n"
        )
        .contains("lookback: 'soon'"));
        assert!(e("table: a.b.c\ncursor: f\n").contains("cursor: does not apply to mode full"));
        assert!(e("table: a.b.c\ntabel: x\n").contains("tabel"));
        assert!(e("table: main.x_{nope}.t\n").contains("table:"));
        assert!(
            e("table: a.b.c\nmode: change_tracking\nprimary_key: [\"id]\"]\n")
                .contains("primary_key")
        );
    }

    #[test]
    fn lookbacks_are_times_or_amounts() {
        assert_eq!(
            Lookback::parse("2h"),
            Some(Lookback::Time(Duration::from_secs(7200)))
        );
        assert_eq!(Lookback::parse("500"), Some(Lookback::Amount(500)));
        assert_eq!(Lookback::parse("-3"), None);
        assert_eq!(Lookback::parse("soon"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2 weeks"), None);
    }
}
