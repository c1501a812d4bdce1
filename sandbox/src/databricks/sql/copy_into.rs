//! COPY INTO, as the Databricks SQL reference describes it
//! (https://docs.databricks.com/en/sql/language-manual/delta-copy-into.html):
//!
//! ```text
//! COPY INTO target_table
//!   FROM { '/Volumes/...' | ( SELECT expression_list FROM '/Volumes/...' ) }
//!   FILEFORMAT = PARQUET
//!   [ FILES = ( 'name' [, ...] ) | PATTERN = 'glob' ]
//!   [ FORMAT_OPTIONS ( 'key' = 'value' [, ...] ) ]
//!   [ COPY_OPTIONS ( 'key' = 'value' [, ...] ) ]
//! ```
//!
//! "A retryable and idempotent operation — files in the source location
//! that have already been loaded are skipped. This is true even if the files
//! have been modified since they were loaded": the double keeps the paths
//! each table loaded (`__dbx_copy_into_log`) and skips them unless
//! `COPY_OPTIONS ('force' = 'true')`. The result has the columns
//! `num_affected_rows`, `num_inserted_rows` and `num_skipped_corrupt_files`;
//! a load that reads at least one file commits a version with the operation
//! `COPY INTO` (its rows in the change data feed when that is on), one that
//! finds nothing new commits nothing.
//!
//! Files are read as a Spark file source reads them: every file under the
//! directory except those whose names start with `_` or `.`; a file that is
//! not Parquet fails (`FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER`) unless
//! `FORMAT_OPTIONS ('ignoreCorruptFiles' = 'true')`, which skips and counts
//! it. The source schema is the first file's, or with `FORMAT_OPTIONS
//! ('mergeSchema' = 'true')` the union of all files'. Writing it follows
//! schema enforcement (https://docs.databricks.com/en/delta/schema-validation.html):
//! a source column the table lacks is a schema mismatch unless
//! `COPY_OPTIONS ('mergeSchema' = 'true')`, which adds it to the table; a
//! source type is safely cast to the table's ([`widening::can_up_cast`]) or
//! the load fails with `DELTA_FAILED_TO_MERGE_FIELDS`; table columns the
//! source lacks are NULL.
//!
//! Privileges (https://docs.databricks.com/en/volumes/privileges.html):
//! reading the files takes `READ VOLUME` on the volume, writing the table
//! `MODIFY` (both with `USE CATALOG` and `USE SCHEMA`).

use std::path::{Path, PathBuf};

use regex::Regex;
use sqlparser::dialect::DatabricksDialect;
use sqlparser::parser::Parser;

use super::catalog::{self, quote_ident, ColumnInfo, FullName, TableInfo};
use super::cdf;
use super::context::Exec;
use super::copy_log;
use super::error::map_sqlite_error as db;
use super::error::{ErrorKind, SqlError};
use super::files;
use super::history::{self, Operation};
use super::result::{cell_value, counts, ResultSet};
use super::rewrite::TempTypes;
use super::tokens::{tokenize_spans, Cursor, Tok};
use super::types::DbxType;
use super::widening;
use crate::databricks::paths::VolumePath;

/// Where the rows come from.
#[derive(Debug, PartialEq)]
enum Source {
    /// `FROM 'path'`.
    Path(String),
    /// `FROM (SELECT ... FROM 'path' ...)`: the query text with the path
    /// literal's byte range.
    Select {
        text: String,
        path_at: (usize, usize),
    },
}

/// A parsed COPY INTO.
#[derive(Debug)]
struct CopyInto {
    table: Vec<String>,
    source: Source,
    path: String,
    format: String,
    files: Option<Vec<String>>,
    pattern: Option<String>,
    format_options: Vec<(String, String)>,
    copy_options: Vec<(String, String)>,
}

fn option(options: &[(String, String)], key: &str) -> bool {
    options
        .iter()
        .rev()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .is_some_and(|(_, v)| v.eq_ignore_ascii_case("true"))
}

/// Whether a statement is a COPY INTO (the double's own parser reads it).
pub(super) fn is_copy_into(text: &str) -> bool {
    let mut w = text.split_whitespace();
    matches!((w.next(), w.next()), (Some(a), Some(b)) if a.eq_ignore_ascii_case("COPY") && b.eq_ignore_ascii_case("INTO"))
}

/// `'k' = 'v'` lists of FORMAT_OPTIONS / COPY_OPTIONS; values may be
/// strings, numbers or bare words (`true`).
fn options(c: &mut Cursor) -> Result<Vec<(String, String)>, SqlError> {
    c.properties()
}

fn parse(text: &str) -> Result<CopyInto, SqlError> {
    let spans = tokenize_spans(text).ok_or_else(|| SqlError::syntax("unclosed quote"))?;
    let toks: Vec<Tok> = spans.iter().map(|(t, _)| t.clone()).collect();
    let mut c = Cursor { toks, pos: 0 };
    c.expect_kw("COPY")?;
    c.expect_kw("INTO")?;
    let table = c.name()?;
    if c.is_kw("BY") || c.peek() == Some(&Tok::Punct('(')) {
        // "This parameter is only supported for headerless CSV file format."
        return Err(SqlError::syntax(
            "BY POSITION and a column list are only supported with FILEFORMAT = CSV",
        ));
    }
    c.expect_kw("FROM")?;
    let (source, path) = match c.peek().cloned() {
        Some(Tok::Str(p)) => {
            c.pos += 1;
            (Source::Path(p.clone()), p)
        }
        Some(Tok::Punct('(')) => {
            let open = c.pos;
            let mut depth = 0i32;
            let mut close = None;
            for (i, (t, _)) in spans.iter().enumerate().skip(open) {
                match t {
                    Tok::Punct('(') => depth += 1,
                    Tok::Punct(')') => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let close = close.ok_or_else(|| SqlError::syntax("unbalanced parentheses"))?;
            // The path: the string right after a FROM at the query's own level.
            let mut depth = 0i32;
            let mut found = None;
            for i in open + 1..close {
                match &spans[i].0 {
                    Tok::Punct('(') => depth += 1,
                    Tok::Punct(')') => depth -= 1,
                    Tok::Word(w) if depth == 0 && w.eq_ignore_ascii_case("FROM") => {
                        if let Some((Tok::Str(p), r)) = spans.get(i + 1) {
                            found = Some((p.clone(), r.clone()));
                        }
                    }
                    _ => {}
                }
            }
            let (p, r) = found.ok_or_else(|| {
                SqlError::syntax("COPY INTO ... FROM (SELECT ... FROM '<path>') needs a path")
            })?;
            let start = spans[open].1.end;
            let end = spans[close].1.start;
            c.pos = close + 1;
            (
                Source::Select {
                    text: text[start..end].to_string(),
                    path_at: (r.start - start, r.end - start),
                },
                p,
            )
        }
        _ => return Err(c.unexpected("a path or (SELECT ...)")),
    };
    let mut format = None;
    let mut files = None;
    let mut pattern = None;
    let mut format_options = Vec::new();
    let mut copy_options = Vec::new();
    while c.peek().is_some() {
        if c.eat_kw("WITH") {
            return Err(SqlError::unsupported(
                "COPY INTO ... WITH (CREDENTIAL | ENCRYPTION)",
            ));
        } else if c.eat_kw("FILEFORMAT") {
            c.eat_punct('=');
            format = Some(c.ident()?);
        } else if c.eat_kw("VALIDATE") {
            return Err(SqlError::unsupported("COPY INTO ... VALIDATE"));
        } else if c.eat_kw("FILES") {
            c.eat_punct('=');
            if !c.eat_punct('(') {
                return Err(c.unexpected("'('"));
            }
            let mut names = Vec::new();
            loop {
                match c.peek().cloned() {
                    Some(Tok::Str(s)) => {
                        c.pos += 1;
                        names.push(s);
                    }
                    _ => return Err(c.unexpected("a file name")),
                }
                if c.eat_punct(')') {
                    break;
                }
                if !c.eat_punct(',') {
                    return Err(c.unexpected("',' or ')'"));
                }
            }
            files = Some(names);
        } else if c.eat_kw("PATTERN") {
            c.eat_punct('=');
            match c.peek().cloned() {
                Some(Tok::Str(s)) => {
                    c.pos += 1;
                    pattern = Some(s);
                }
                _ => return Err(c.unexpected("a glob pattern")),
            }
        } else if c.eat_kw("FORMAT_OPTIONS") {
            format_options.extend(options(&mut c)?);
        } else if c.eat_kw("COPY_OPTIONS") {
            copy_options.extend(options(&mut c)?);
        } else {
            return Err(c.unexpected("FILEFORMAT, FILES, PATTERN, FORMAT_OPTIONS or COPY_OPTIONS"));
        }
    }
    let format = format.ok_or_else(|| SqlError::syntax("COPY INTO needs FILEFORMAT"))?;
    if files.is_some() && pattern.is_some() {
        // "FILES ... Cannot be specified with PATTERN."
        return Err(SqlError::syntax(
            "FILES and PATTERN cannot be specified together",
        ));
    }
    Ok(CopyInto {
        table,
        source,
        path,
        format,
        files,
        pattern,
        format_options,
        copy_options,
    })
}

/// A glob as Hadoop's file system reads it (the PATTERN syntax): `?` one
/// character, `*` any characters, neither crossing `/`; `[abc]`, `[a-z]`,
/// `[^a]`; `{ab,cd}` alternatives (nested); `\` escapes.
fn glob_regex(glob: &str) -> Result<Regex, SqlError> {
    let mut out = String::from("^");
    let mut chars = glob.chars().peekable();
    let mut braces = 0;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push_str(&regex::escape(&n.to_string()));
                }
            }
            '*' => out.push_str("[^/]*"),
            '?' => out.push_str("[^/]"),
            '[' => {
                out.push('[');
                if matches!(chars.peek(), Some('^') | Some('!')) {
                    chars.next();
                    out.push('^');
                }
                loop {
                    match chars.next() {
                        Some(']') => break,
                        Some('\\') => {
                            if let Some(n) = chars.next() {
                                out.push_str(&regex::escape(&n.to_string()));
                            }
                        }
                        Some(x) if x == '[' || x == '&' || x == '~' => {
                            out.push('\\');
                            out.push(x);
                        }
                        Some(x) => out.push(x),
                        None => {
                            return Err(SqlError::syntax(&format!(
                                "unclosed [ in PATTERN '{glob}'"
                            )))
                        }
                    }
                }
                out.push(']');
            }
            '{' => {
                braces += 1;
                out.push_str("(?:");
            }
            '}' if braces > 0 => {
                braces -= 1;
                out.push(')');
            }
            ',' if braces > 0 => out.push('|'),
            other => out.push_str(&regex::escape(&other.to_string())),
        }
    }
    if braces > 0 {
        return Err(SqlError::syntax(&format!(
            "unclosed {{ in PATTERN '{glob}'"
        )));
    }
    out.push('$');
    Regex::new(&out).map_err(|e| SqlError::syntax(&format!("invalid PATTERN '{glob}': {e}")))
}

/// Spark's `typeName` of a type, as schema trees print it.
fn tree_type(t: &DbxType) -> String {
    match t {
        DbxType::Byte => "byte".into(),
        DbxType::Short => "short".into(),
        DbxType::Int => "integer".into(),
        DbxType::Long => "long".into(),
        DbxType::Decimal { precision, scale } => format!("decimal({precision},{scale})"),
        DbxType::Array(e) => format!("array<{}>", tree_type(e)),
        DbxType::Map(k, v) => format!("map<{},{}>", tree_type(k), tree_type(v)),
        other => other.to_string().to_lowercase(),
    }
}

fn tree(cols: &[(String, DbxType)]) -> String {
    let mut s = String::from("root\n");
    for (n, t) in cols {
        s.push_str(&format!("-- {n}: {} (nullable = true)\n", tree_type(t)));
    }
    s
}

/// A write whose columns the table does not have, without schema evolution:
/// the error class Databricks reports for it, with the text of
/// DELTA_METADATA_MISMATCH's SCHEMA_MISMATCH
/// (https://docs.databricks.com/aws/en/error-messages/delta-metadata-mismatch-error-class).
fn schema_mismatch(table: &TableInfo, data: &[(String, DbxType)]) -> SqlError {
    let class = "_LEGACY_ERROR_TEMP_DELTA_0007";
    let table_cols: Vec<(String, DbxType)> = table
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.clone()))
        .collect();
    SqlError {
        kind: ErrorKind::Invalid,
        class: class.into(),
        message: format!(
            "[{class}] A schema mismatch detected when writing to the Delta table (Table ID: {}).\n\
             To enable schema migration using DataFrameWriter or DataStreamWriter, please set:\n\
             '.option(\"mergeSchema\", \"true\")'.\n\
             For other operations, set the session configuration\n\
             spark.databricks.delta.schema.autoMerge.enabled to \"true\". See the documentation\n\
             specific to the operation for details.\n\n\
             Table schema:\n{}\n\nData schema:\n{}",
            table.id,
            tree(&table_cols),
            tree(data)
        ),
        sql_state: "42KDG".into(),
    }
}

/// A source column whose type cannot be cast safely to the table's.
fn failed_to_merge(name: &str) -> SqlError {
    SqlError::invalid(
        "DELTA_FAILED_TO_MERGE_FIELDS",
        &format!("Failed to merge fields '{name}' and '{name}'."),
        "22005",
    )
}

/// How source columns land in the table: (table column, source column),
/// and the columns schema evolution adds.
struct Plan {
    mapping: Vec<(ColumnInfo, String)>,
    added: Vec<ColumnInfo>,
}

fn plan(
    table: &TableInfo,
    source: &[(String, DbxType)],
    merge_schema: bool,
) -> Result<Plan, SqlError> {
    let mut mapping = Vec::new();
    let mut added = Vec::new();
    let mut extra = false;
    for (name, ty) in source {
        match table
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(name))
        {
            Some(tc) => {
                if !widening::can_up_cast(ty, &tc.ty) {
                    return Err(failed_to_merge(&tc.name));
                }
                mapping.push((tc.clone(), name.clone()));
            }
            None if merge_schema => {
                let c = ColumnInfo {
                    name: name.clone(),
                    ty: if *ty == DbxType::Void {
                        DbxType::String
                    } else {
                        ty.clone()
                    },
                    nullable: true,
                    comment: None,
                };
                mapping.push((c.clone(), name.clone()));
                added.push(c);
            }
            None => extra = true,
        }
    }
    if extra {
        return Err(schema_mismatch(table, source));
    }
    Ok(Plan { mapping, added })
}

/// The union of file schemas (`mergeSchema`): columns in order of first
/// appearance; one name with two types cannot be merged.
fn merge_schemas(schemas: &[Vec<(String, DbxType)>]) -> Result<Vec<(String, DbxType)>, SqlError> {
    let mut out: Vec<(String, DbxType)> = Vec::new();
    for s in schemas {
        for (n, t) in s {
            match out.iter().find(|(m, _)| m.eq_ignore_ascii_case(n)) {
                Some((_, u)) if u != t => {
                    return Err(SqlError::invalid(
                        "CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE",
                        &format!("Failed to merge incompatible data types \"{u}\" and \"{t}\"."),
                        "42825",
                    ))
                }
                Some(_) => {}
                None => out.push((n.clone(), t.clone())),
            }
        }
    }
    Ok(out)
}

fn file_not_found(shown: &str) -> SqlError {
    SqlError::invalid(
        "FAILED_READ_FILE.FILE_NOT_EXIST",
        &format!("Error while reading file {shown}. File does not exist. It is possible the underlying files have been updated. You can explicitly invalidate the cache in Spark by running 'REFRESH TABLE tableName' command in SQL or by recreating the Dataset/DataFrame involved."),
        "KD001",
    )
}

/// A file chosen for the load: where it is and the path it is known by.
struct Chosen {
    disk: PathBuf,
    shown: String,
}

/// The files a COPY INTO reads, before idempotency: the source itself when
/// it is a file, else FILES, PATTERN or every data file under it.
fn choose(
    volumes_root: &Path,
    source: &VolumePath,
    shown_root: &str,
    files_opt: Option<&[String]>,
    pattern: Option<&str>,
    ignore_missing: bool,
) -> Result<Vec<Chosen>, SqlError> {
    let disk = source.to_disk(volumes_root);
    if disk.is_file() {
        return Ok(vec![Chosen {
            disk,
            shown: shown_root.to_string(),
        }]);
    }
    if !disk.is_dir() {
        return Err(SqlError::path_not_found(shown_root));
    }
    let base = shown_root.trim_end_matches('/');
    if let Some(names) = files_opt {
        let mut out = Vec::new();
        for n in names {
            let shown = format!("{base}/{}", n.trim_start_matches('/'));
            let vp = VolumePath::parse(&shown)
                .map_err(|e| SqlError::invalid("INVALID_PATH", &format!("{e}."), "42K03"))?;
            let d = vp.to_disk(volumes_root);
            if !d.is_file() {
                if ignore_missing {
                    continue;
                }
                return Err(file_not_found(&shown));
            }
            out.push(Chosen { disk: d, shown });
        }
        return Ok(out);
    }
    let all = files::data_files(&disk).map_err(SqlError::internal)?;
    let glob = pattern.map(glob_regex).transpose()?;
    Ok(all
        .into_iter()
        .filter_map(|d| {
            let rel = d
                .strip_prefix(&disk)
                .ok()?
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if glob.as_ref().is_some_and(|g| !g.is_match(&rel)) {
                return None;
            }
            Some(Chosen {
                disk: d,
                shown: format!("{base}/{rel}"),
            })
        })
        .collect())
}

impl Exec<'_> {
    /// Runs the statement if it is a COPY INTO.
    pub(super) fn copy_into(
        &self,
        text: &str,
        temps: &mut TempTypes,
    ) -> Option<Result<ResultSet, SqlError>> {
        if !is_copy_into(text) {
            return None;
        }
        Some(parse(text).and_then(|c| self.run_copy_into(c, temps)))
    }

    fn run_copy_into(&self, c: CopyInto, temps: &mut TempTypes) -> Result<ResultSet, SqlError> {
        if !c.format.eq_ignore_ascii_case("PARQUET") {
            return Err(SqlError::unsupported(&format!(
                "COPY INTO with FILEFORMAT = {} (only PARQUET)",
                c.format.to_uppercase()
            )));
        }
        let name = match c.table.as_slice() {
            [t] => FullName::new(self.catalog, self.schema, t),
            [s, t] => FullName::new(self.catalog, s, t),
            [cat, s, t] => FullName::new(cat, s, t),
            _ => return Err(SqlError::syntax("invalid table name")),
        };
        let table = catalog::get_table(self.conn, &name)?
            .ok_or_else(|| SqlError::table_not_found(&name.dotted()))?;
        self.checks().modify_table(&table.name, false)?;
        let shown_root = c.path.strip_prefix("dbfs:").unwrap_or(&c.path).to_string();
        let vp = VolumePath::parse(&shown_root)
            .map_err(|e| SqlError::invalid("INVALID_PATH", &format!("{e}."), "42K03"))?;
        if catalog::get_volume(self.conn, &vp.volume)?.is_none() {
            return Err(SqlError::path_not_found(&shown_root));
        }
        self.checks().read_volume(&vp.volume)?;
        let force = option(&c.copy_options, "force");
        let merge_schema = option(&c.copy_options, "mergeSchema");
        let merge_file_schemas = option(&c.format_options, "mergeSchema");
        let ignore_corrupt = option(&c.format_options, "ignoreCorruptFiles");
        let ignore_missing = option(&c.format_options, "ignoreMissingFiles");
        let mut chosen = choose(
            self.volumes_root,
            &vp,
            &shown_root,
            c.files.as_deref(),
            c.pattern.as_deref(),
            ignore_missing,
        )?;
        if !force {
            let loaded = copy_log::loaded(self.conn, &table.name)?;
            chosen.retain(|f| !loaded.contains(&f.shown));
        }
        // Footers first: a corrupt file fails the load, or is skipped (and
        // not recorded, so a later run loads it once fixed).
        let mut schemas = Vec::new();
        let mut readable = Vec::new();
        let mut corrupt = 0u64;
        for f in chosen {
            match files::file_schema(&f.disk, &f.shown) {
                Ok(s) => {
                    schemas.push(s);
                    readable.push(f);
                }
                Err(_) if ignore_corrupt => corrupt += 1,
                Err(e) => return Err(e),
            }
        }
        if readable.is_empty() {
            return Ok(result(0, corrupt));
        }
        let source_schema = if merge_file_schemas {
            merge_schemas(&schemas)?
        } else {
            schemas[0].clone()
        };
        temps.seq += 1;
        let src = format!("__copy_src_{}", temps.seq);
        let defs: Vec<String> = source_schema
            .iter()
            .map(|(n, t)| format!("{} {}", quote_ident(n), t.sqlite_decl()))
            .collect();
        self.conn
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS temp.{q}; CREATE TEMP TABLE {q} ({});",
                defs.join(", "),
                q = quote_ident(&src)
            ))
            .map_err(db)?;
        temps.tables.insert(src.clone(), source_schema.clone());
        for f in &readable {
            files::append_file(self.conn, &f.disk, &f.shown, &src, &source_schema)?;
        }
        let commit = history::begin(self.conn, &table.name)?;
        let inserted = match &c.source {
            Source::Path(_) => {
                let p = plan(&table, &source_schema, merge_schema)?;
                self.evolve(&table, &p.added)?;
                let names: Vec<String> = p
                    .mapping
                    .iter()
                    .map(|(tc, _)| quote_ident(&tc.name))
                    .collect();
                let vals: Vec<String> = p
                    .mapping
                    .iter()
                    .map(|(tc, sc)| format!("__dbx_store({}, '{}')", quote_ident(sc), tc.ty))
                    .collect();
                if names.is_empty() {
                    0
                } else {
                    self.exec_count(&format!(
                        "INSERT INTO {} ({}) SELECT {} FROM temp.{}",
                        name.physical(),
                        names.join(", "),
                        vals.join(", "),
                        quote_ident(&src)
                    ))?
                }
            }
            Source::Select { text, path_at } => {
                let query = format!(
                    "{}{}{}",
                    &text[..path_at.0],
                    quote_ident(&src),
                    &text[path_at.1..]
                );
                let mut stmts = Parser::parse_sql(&DatabricksDialect {}, &query)
                    .map_err(|e| SqlError::syntax(&e.to_string()))?;
                let Some(sqlparser::ast::Statement::Query(q)) = stmts.pop() else {
                    return Err(SqlError::syntax(
                        "COPY INTO ... FROM (SELECT ...) needs a query",
                    ));
                };
                let rs = self.query(*q, temps)?;
                let cols: Vec<(String, DbxType)> = rs
                    .columns
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.clone()))
                    .collect();
                let p = plan(&table, &cols, merge_schema)?;
                self.evolve(&table, &p.added)?;
                self.insert_rows(&name, &p, &cols, rs)?
            }
        };
        for f in &readable {
            copy_log::record(self.conn, &name, &f.shown, commit.version)?;
        }
        let mut op = Operation::new("COPY INTO")
            .metric("numOutputRows", inserted)
            .blind_append(true);
        if ignore_corrupt {
            op = op.metric("numSkippedCorruptFiles", corrupt);
        }
        history::finish(self.conn, &commit, self.caller, &op)?;
        Ok(result(inserted, corrupt))
    }

    /// Schema evolution: adds the columns to the table inside the commit
    /// being written, and to its change data feed.
    fn evolve(&self, table: &TableInfo, added: &[ColumnInfo]) -> Result<(), SqlError> {
        if added.is_empty() {
            return Ok(());
        }
        catalog::add_columns(self.conn, &table.name, added)?;
        let info = catalog::get_table(self.conn, &table.name)?
            .ok_or_else(|| SqlError::table_not_found(&table.name.dotted()))?;
        cdf::add_columns(self.conn, &info, added)
    }

    /// Inserts a query's rows as the plan maps them.
    fn insert_rows(
        &self,
        name: &FullName,
        p: &Plan,
        cols: &[(String, DbxType)],
        rs: ResultSet,
    ) -> Result<u64, SqlError> {
        if p.mapping.is_empty() {
            return Ok(0);
        }
        let idx: Vec<usize> = p
            .mapping
            .iter()
            .map(|(_, sc)| cols.iter().position(|(n, _)| n == sc).unwrap_or(0))
            .collect();
        let names: Vec<String> = p
            .mapping
            .iter()
            .map(|(tc, _)| quote_ident(&tc.name))
            .collect();
        let marks: Vec<String> = p
            .mapping
            .iter()
            .enumerate()
            .map(|(i, (tc, _))| format!("__dbx_store(?{}, '{}')", i + 1, tc.ty))
            .collect();
        let mut ins = self
            .conn
            .prepare(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                name.physical(),
                names.join(", "),
                marks.join(", ")
            ))
            .map_err(db)?;
        let mut n = 0u64;
        for row in rs.rows {
            let vals: Vec<rusqlite::types::Value> =
                idx.iter().map(|i| cell_value(row[*i].clone())).collect();
            ins.execute(rusqlite::params_from_iter(vals)).map_err(db)?;
            n += 1;
        }
        Ok(n)
    }
}

/// COPY INTO's result row.
fn result(inserted: u64, corrupt: u64) -> ResultSet {
    counts(&[
        ("num_affected_rows", inserted),
        ("num_inserted_rows", inserted),
        ("num_skipped_corrupt_files", corrupt),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_source_forms_and_options() {
        let c = parse(
            "COPY INTO main.l.t FROM '/Volumes/main/l/v/dir' FILEFORMAT = PARQUET \
             FILES = ('a.parquet', 'b.parquet') FORMAT_OPTIONS ('mergeSchema' = 'true') \
             COPY_OPTIONS ('mergeSchema' = 'true', 'force' = 'true')",
        )
        .unwrap();
        assert_eq!(c.table, ["main", "l", "t"]);
        assert_eq!(c.source, Source::Path("/Volumes/main/l/v/dir".into()));
        assert_eq!(
            c.files.as_deref(),
            Some(&["a.parquet".to_string(), "b.parquet".to_string()][..])
        );
        assert!(option(&c.copy_options, "force") && option(&c.format_options, "MERGESCHEMA"));
        let text = "COPY INTO t FROM (SELECT id, upper(v) AS v FROM '/Volumes/a/b/c/d' WHERE id IN (SELECT 1)) FILEFORMAT = PARQUET PATTERN = '*.parquet'";
        let c = parse(text).unwrap();
        let Source::Select { text: q, path_at } = &c.source else {
            panic!("not a select");
        };
        assert_eq!(&q[path_at.0..path_at.1], "'/Volumes/a/b/c/d'");
        assert_eq!(c.pattern.as_deref(), Some("*.parquet"));
        assert!(
            parse("COPY INTO t FROM '/x' FILEFORMAT = PARQUET FILES = ('a') PATTERN = '*'")
                .is_err()
        );
        assert!(parse("COPY INTO t BY POSITION FROM '/x' FILEFORMAT = CSV").is_err());
    }

    #[test]
    fn globs_match_like_hadoop() {
        let g = glob_regex("*.parquet").unwrap();
        assert!(g.is_match("part-0.parquet") && !g.is_match("sub/part-0.parquet"));
        assert!(!g.is_match("manifest.json"));
        let g = glob_regex("folder1/file_[a-g].csv").unwrap();
        assert!(g.is_match("folder1/file_b.csv") && !g.is_match("folder1/file_h.csv"));
        let g = glob_regex("{a,b{c,d}}?.x").unwrap();
        assert!(g.is_match("a1.x") && g.is_match("bd2.x") && !g.is_match("b1.x"));
        let g = glob_regex("[^a]*").unwrap();
        assert!(g.is_match("b") && !g.is_match("abc"));
    }
}
