//! Spark SQL syntax tree → SQLite: resolves one-, two- and three-part table
//! names to the SQLite tables that hold them, maps Spark functions onto
//! SQLite ones (or the sandbox's own, see `functions.rs`), and turns table
//! functions (`range`, `read_files`, `parquet.\`/Volumes/...\``,
//! `table_changes`) into subqueries or temporary tables. Every table and
//! volume a statement reads is checked against the caller's privileges here.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::path::Path;

use rusqlite::Connection;
use sqlparser::ast::{
    self, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, Ident, ObjectName, ObjectNamePart,
    Query, TableFactor, Value, VisitMut, VisitorMut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;

use super::catalog::{self, FullName};
use super::cdf;
use super::error::SqlError;
use super::files;
use super::grants::{Access, Caller};
use super::parse::parse_expr;
use super::result::Param;
use super::table_changes::{self, Bound};
use super::types::{self, DbxType};
use crate::databricks::paths::VolumePath;

/// What a statement runs against: the session defaults, parameter types and
/// the volumes directory for file reads.
pub struct Scope<'a> {
    pub conn: &'a Connection,
    pub catalog: &'a str,
    pub schema: &'a str,
    pub volumes_root: &'a Path,
    pub param_types: &'a HashMap<String, DbxType>,
    /// Parameter values (table_changes bounds may be parameters).
    pub params: &'a [Param],
    pub caller: &'a Caller,
}

/// Declared types of temporary tables made while rewriting (file reads).
#[derive(Default)]
pub struct TempTypes {
    pub tables: HashMap<String, Vec<(String, DbxType)>>,
    pub seq: u64,
}

impl Scope<'_> {
    /// Resolves a table name against the session's catalog and schema.
    pub fn full_name(&self, name: &ObjectName) -> Result<FullName, SqlError> {
        let parts = name_parts(name);
        match parts.as_slice() {
            [t] => Ok(FullName::new(self.catalog, self.schema, t)),
            [s, t] => Ok(FullName::new(self.catalog, s, t)),
            [c, s, t] => Ok(FullName::new(c, s, t)),
            _ => Err(SqlError::invalid(
                "REQUIRES_SINGLE_PART_NAMESPACE",
                &format!("Invalid name {name}."),
                "42K05",
            )),
        }
    }

    pub fn access(&self) -> Access<'_> {
        Access {
            conn: self.conn,
            caller: self.caller,
        }
    }

    /// A table that must exist.
    pub fn table(&self, name: &ObjectName) -> Result<catalog::TableInfo, SqlError> {
        let full = self.full_name(name)?;
        catalog::get_table(self.conn, &full)?
            .ok_or_else(|| SqlError::table_not_found(&full.dotted()))
    }
}

pub fn name_parts(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p {
            ObjectNamePart::Identifier(i) => i.value.clone(),
            other => other.to_string(),
        })
        .collect()
}

fn parse_table_factor(sql: &str) -> Result<TableFactor, SqlError> {
    let q = Parser::new(&GenericDialect {})
        .try_with_sql(&format!("SELECT * FROM {sql}"))
        .and_then(|mut p| p.parse_query())
        .map_err(|e| SqlError::internal(format!("rewriting {sql}: {e}")))?;
    match *q.body {
        ast::SetExpr::Select(s) => s
            .from
            .into_iter()
            .next()
            .map(|t| t.relation)
            .ok_or_else(|| SqlError::internal("empty FROM")),
        _ => Err(SqlError::internal("not a SELECT")),
    }
}

/// `name(args)` with the given argument expressions.
pub fn call(name: &str, args: Vec<Expr>) -> Result<Expr, SqlError> {
    let placeholders: Vec<&str> = args.iter().map(|_| "NULL").collect();
    let mut e = parse_expr(&format!("{name}({})", placeholders.join(", ")))?;
    if let Expr::Function(f) = &mut e {
        if let FunctionArguments::List(l) = &mut f.args {
            for (slot, a) in l.args.iter_mut().zip(args) {
                *slot = FunctionArg::Unnamed(FunctionArgExpr::Expr(a));
            }
        }
    }
    Ok(e)
}

pub fn string_lit(s: &str) -> Expr {
    Expr::Value(Value::SingleQuotedString(s.to_string()).into())
}

fn function_args(f: &ast::Function) -> Vec<Expr> {
    match &f.args {
        FunctionArguments::List(l) => l
            .args
            .iter()
            .filter_map(|a| match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

struct Rewriter<'s, 'a> {
    scope: &'s Scope<'a>,
    temps: &'s mut TempTypes,
    ctes: HashSet<String>,
    /// Tables read through their row filter and masks: the inner read of
    /// the table itself, not governed again.
    governed: HashSet<String>,
    error: Option<SqlError>,
}

impl Rewriter<'_, '_> {
    fn fail(&mut self, e: SqlError) -> ControlFlow<()> {
        self.error = Some(e);
        ControlFlow::Break(())
    }

    fn rewrite_table_factor(&mut self, tf: &mut TableFactor) -> Result<(), SqlError> {
        let TableFactor::Table {
            name, alias, args, ..
        } = tf
        else {
            return Ok(());
        };
        let parts = name_parts(name);
        let alias_sql = alias
            .as_ref()
            .map(|a| format!(" AS {}", catalog::quote_ident(&a.name.value)))
            .unwrap_or_default();
        if let Some(targs) = args {
            let fname = parts.join(".").to_ascii_lowercase();
            let exprs: Vec<(Option<String>, Expr)> = targs
                .args
                .iter()
                .filter_map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some((None, e.clone())),
                    FunctionArg::Named {
                        name,
                        arg: FunctionArgExpr::Expr(e),
                        ..
                    } => Some((Some(name.value.to_ascii_lowercase()), e.clone())),
                    _ => None,
                })
                .collect();
            let replacement = match fname.as_str() {
                "range" => {
                    let nums: Vec<i64> = exprs
                        .iter()
                        .map(|(_, e)| literal_i64(e))
                        .collect::<Option<_>>()
                        .ok_or_else(|| {
                            SqlError::unsupported("range() with non-literal arguments")
                        })?;
                    let (start, end, step) = match nums.as_slice() {
                        [end] => (0, *end, 1),
                        [s, e] => (*s, *e, 1),
                        [s, e, st, ..] if *st != 0 => (*s, *e, *st),
                        _ => return Err(SqlError::syntax("range() needs 1 to 3 arguments")),
                    };
                    let cmp = if step > 0 { "<" } else { ">" };
                    let a = if alias_sql.is_empty() {
                        " AS \"range\"".to_string()
                    } else {
                        alias_sql.clone()
                    };
                    parse_table_factor(&format!(
                        "(WITH RECURSIVE __r(id) AS (SELECT {start} WHERE {start} {cmp} {end} UNION ALL SELECT id + {step} FROM __r WHERE id + {step} {cmp} {end}) SELECT id FROM __r){a}"
                    ))?
                }
                "read_files" => {
                    let path = exprs
                        .iter()
                        .find(|(n, _)| n.is_none())
                        .and_then(|(_, e)| literal_str(e))
                        .ok_or_else(|| SqlError::syntax("read_files needs a path literal"))?;
                    let format = exprs
                        .iter()
                        .find(|(n, _)| n.as_deref() == Some("format"))
                        .and_then(|(_, e)| literal_str(e));
                    if let Some(f) = &format {
                        if !f.eq_ignore_ascii_case("parquet") {
                            return Err(SqlError::unsupported(&format!(
                                "read_files format '{f}' (only parquet)"
                            )));
                        }
                    }
                    let table = self.load_files(&path)?;
                    parse_table_factor(&format!(
                        "temp.{}{}",
                        catalog::quote_ident(&table),
                        if alias_sql.is_empty() {
                            " AS \"read_files\"".to_string()
                        } else {
                            alias_sql.clone()
                        }
                    ))?
                }
                "table_changes" => {
                    let table = self.load_changes(&exprs)?;
                    parse_table_factor(&format!(
                        "temp.{}{}",
                        catalog::quote_ident(&table),
                        if alias_sql.is_empty() {
                            " AS \"table_changes\"".to_string()
                        } else {
                            alias_sql.clone()
                        }
                    ))?
                }
                other => {
                    return Err(SqlError::invalid(
                        "UNRESOLVABLE_TABLE_VALUED_FUNCTION",
                        &format!("Could not resolve `{other}` to a table-valued function."),
                        "42883",
                    ))
                }
            };
            *tf = replacement;
            return Ok(());
        }
        // parquet.`/Volumes/...`: a path read as a table.
        if let [fmt, path] = parts.as_slice() {
            if path.starts_with('/') {
                if !fmt.eq_ignore_ascii_case("parquet") {
                    return Err(SqlError::unsupported(&format!(
                        "reading {fmt} files (only parquet)"
                    )));
                }
                let table = self.load_files(path)?;
                *name = ObjectName::from(vec![Ident::new("temp"), Ident::with_quote('"', table)]);
                return Ok(());
            }
        }
        if parts.len() == 1 && self.ctes.contains(&parts[0].to_lowercase()) {
            return Ok(());
        }
        // A temporary table this statement made (COPY INTO's files).
        if parts.len() == 1 && self.temps.tables.contains_key(&parts[0]) {
            *name = ObjectName::from(vec![
                Ident::new("temp"),
                Ident::with_quote('"', parts[0].clone()),
            ]);
            return Ok(());
        }
        // The table itself, inside the read its row filter and masks make.
        if parts.len() == 1 && self.governed.contains(&parts[0]) {
            *name = ObjectName::from(vec![Ident::with_quote('"', parts[0].clone())]);
            return Ok(());
        }
        if let Some(relation) = self.information_schema(&parts)? {
            let a = if alias_sql.is_empty() {
                format!(" AS {}", catalog::quote_ident(&parts[parts.len() - 1]))
            } else {
                alias_sql.clone()
            };
            *tf = parse_table_factor(&format!("temp.{}{a}", catalog::quote_ident(&relation)))?;
            return Ok(());
        }
        let full = self.scope.full_name(name)?;
        let Some(info) = catalog::get_table(self.scope.conn, &full)? else {
            return Err(SqlError::table_not_found(&full.dotted()));
        };
        self.scope.access().read_table(&full)?;
        let physical = full.dotted();
        if let Some(select) = super::policies::governed_select(self.scope.conn, &info, &physical)? {
            self.governed.insert(physical);
            let a = if alias_sql.is_empty() {
                format!(" AS {}", catalog::quote_ident(&full.name))
            } else {
                alias_sql.clone()
            };
            *tf = parse_table_factor(&format!("({select}){a}"))?;
            return Ok(());
        }
        *name = ObjectName::from(vec![Ident::with_quote('"', physical)]);
        Ok(())
    }

    /// `[catalog.]information_schema.row_filters` and `.column_masks`: the
    /// rows the caller may see, in a temporary table; `None` for any other
    /// name.
    fn information_schema(&mut self, parts: &[String]) -> Result<Option<String>, SqlError> {
        let (catalog_name, relation) = match parts {
            [s, r] if s.eq_ignore_ascii_case("information_schema") => {
                (self.scope.catalog.to_string(), r.to_ascii_lowercase())
            }
            [c, s, r] if s.eq_ignore_ascii_case("information_schema") => {
                (c.to_lowercase(), r.to_ascii_lowercase())
            }
            _ => return Ok(None),
        };
        let access = self.scope.access();
        let visible = |t: &FullName| access.read_table(t).is_ok();
        let (columns, rows): (&[&str], Vec<Vec<String>>) = match relation.as_str() {
            "row_filters" => (
                &super::policies::ROW_FILTER_COLUMNS,
                super::policies::row_filter_rows(self.scope.conn, &catalog_name, &visible)?,
            ),
            "column_masks" => (
                &super::policies::COLUMN_MASK_COLUMNS,
                super::policies::column_mask_rows(self.scope.conn, &catalog_name, &visible)?,
            ),
            _ => return Ok(None),
        };
        self.temps.seq += 1;
        let table = format!("__information_schema_{}", self.temps.seq);
        let defs: Vec<String> = columns
            .iter()
            .map(|c| format!("{} TEXT", catalog::quote_ident(c)))
            .collect();
        self.scope
            .conn
            .execute_batch(&format!(
                "DROP TABLE IF EXISTS temp.{t}; CREATE TEMP TABLE {t} ({});",
                defs.join(", "),
                t = catalog::quote_ident(&table)
            ))
            .map_err(SqlError::internal)?;
        let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
        for r in rows {
            self.scope
                .conn
                .execute(
                    &format!(
                        "INSERT INTO temp.{} VALUES ({})",
                        catalog::quote_ident(&table),
                        marks.join(", ")
                    ),
                    rusqlite::params_from_iter(r),
                )
                .map_err(SqlError::internal)?;
        }
        self.temps.tables.insert(
            table.clone(),
            columns
                .iter()
                .map(|c| (c.to_string(), DbxType::String))
                .collect(),
        );
        Ok(Some(table))
    }

    /// `table_changes('name', start [, end])`: the change rows of a table
    /// with the change data feed on, in a temporary table. Reading them
    /// takes what reading the table takes.
    fn load_changes(&mut self, args: &[(Option<String>, Expr)]) -> Result<String, SqlError> {
        let positional: Vec<&Expr> = args
            .iter()
            .filter(|(n, _)| n.is_none())
            .map(|(_, e)| e)
            .collect();
        let (name, start, end) = match positional.as_slice() {
            [n, s] => (n, s, None),
            [n, s, e] => (n, s, Some(e)),
            _ => {
                return Err(SqlError::invalid(
                    "WRONG_NUM_ARGS.WITHOUT_SUGGESTION",
                    &format!(
                    "The `table_changes` requires [2, 3] parameters but the actual number is {}.",
                    positional.len()
                ),
                    "42605",
                ))
            }
        };
        let text = self.literal_or_param(name).ok_or_else(|| {
            SqlError::syntax("table_changes needs the table name as a STRING literal")
        })?;
        let parts = split_name(&text);
        let object = ObjectName::from(
            parts
                .iter()
                .map(|p| Ident::new(p.as_str()))
                .collect::<Vec<_>>(),
        );
        let full = self.scope.full_name(&object)?;
        let table = catalog::get_table(self.scope.conn, &full)?
            .ok_or_else(|| SqlError::table_not_found(&full.dotted()))?;
        self.scope.access().read_table(&full)?;
        let start = self.bound(start)?;
        let end = match end {
            Some(e) => Some(self.bound(e)?),
            None => None,
        };
        let (from, to) = table_changes::range(self.scope.conn, &full, &start, end.as_ref())?;
        self.temps.seq += 1;
        let temp = format!("__changes_{}", self.temps.seq);
        let cols = cdf::materialize(self.scope.conn, &table, from, to, &temp)?;
        self.temps.tables.insert(temp.clone(), cols);
        Ok(temp)
    }

    /// A literal or parameter's text.
    fn literal_or_param(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Value(v) => match &v.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
                Value::Number(n, _) => Some(n.clone()),
                Value::Placeholder(p) => {
                    let key = p.trim_start_matches([':', '@', '$']);
                    self.scope
                        .params
                        .iter()
                        .find(|q| q.name == key)
                        .and_then(|q| q.value.clone())
                }
                _ => None,
            },
            Expr::TypedString(ts) => match &ts.value.value {
                Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
                other => Some(other.to_string()),
            },
            Expr::Cast { expr, .. } | Expr::Nested(expr) => self.literal_or_param(expr),
            Expr::UnaryOp {
                op: ast::UnaryOperator::Minus,
                expr,
            } => self.literal_or_param(expr).map(|v| format!("-{v}")),
            _ => None,
        }
    }

    /// A table_changes bound: an integer is a version, anything else must
    /// read as a timestamp.
    fn bound(&self, e: &Expr) -> Result<Bound, SqlError> {
        let text = self.literal_or_param(e).ok_or_else(|| {
            SqlError::syntax("table_changes takes a BIGINT or TIMESTAMP literal as start and end")
        })?;
        if let Ok(v) = text.trim().parse::<i64>() {
            return Ok(Bound::Version(v));
        }
        types::parse_timestamp(&text)
            .map(Bound::Timestamp)
            .ok_or_else(|| {
                SqlError::invalid(
                    "CAST_INVALID_INPUT",
                    &format!("The value '{text}' of the type \"STRING\" cannot be cast to \"TIMESTAMP\" because it is malformed."),
                    "22018",
                )
            })
    }

    fn load_files(&mut self, path: &str) -> Result<String, SqlError> {
        if let Ok(vp) = VolumePath::parse(path) {
            if catalog::get_volume(self.scope.conn, &vp.volume)?.is_some() {
                self.scope.access().read_volume(&vp.volume)?;
            }
        }
        self.temps.seq += 1;
        let table = format!("__files_{}", self.temps.seq);
        let cols = files::load_parquet(self.scope.conn, self.scope.volumes_root, path, &table)?;
        self.temps.tables.insert(table.clone(), cols);
        Ok(table)
    }

    fn rewrite_expr(&mut self, e: &mut Expr) -> Result<(), SqlError> {
        let replacement = match e {
            Expr::Function(f) => self.rewrite_function(f)?,
            Expr::Cast {
                expr, data_type, ..
            } => {
                let text = data_type.to_string();
                let ty = DbxType::parse(&text).ok_or_else(|| {
                    SqlError::invalid(
                        "UNSUPPORTED_DATATYPE",
                        &format!("Unsupported data type \"{text}\"."),
                        "0A000",
                    )
                })?;
                Some(call(
                    "__dbx_cast",
                    vec![(**expr).clone(), string_lit(&ty.to_string())],
                )?)
            }
            // A decimal literal wider than a double holds exactly (Spark
            // reads `1234567890.123456789` as DECIMAL(19,9)): exact text.
            Expr::Value(v) if matches!(&v.value, Value::Number(n, _) if wide_decimal(n)) => {
                let Value::Number(n, _) = &v.value else {
                    return Ok(());
                };
                let (i, f) = n.split_once('.').unwrap_or((n, ""));
                let digits = i.trim_start_matches('-').len() + f.len();
                Some(call(
                    "__dbx_cast",
                    vec![
                        string_lit(n),
                        string_lit(&format!(
                            "DECIMAL({},{})",
                            digits.clamp(1, 38),
                            f.len().min(38)
                        )),
                    ],
                )?)
            }
            // Spark's null-safe equality is SQL's IS NOT DISTINCT FROM
            // (https://docs.databricks.com/sql/language-manual/functions/eqnullsafesign.html).
            Expr::BinaryOp {
                left,
                op: ast::BinaryOperator::Spaceship,
                right,
            } => Some(Expr::IsNotDistinctFrom(left.clone(), right.clone())),
            Expr::TypedString(ts) => {
                let text = ts.data_type.to_string();
                let ty = DbxType::parse(&text)
                    .ok_or_else(|| SqlError::syntax(&format!("unknown type {text}")))?;
                let value = match &ts.value.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
                    other => other.to_string(),
                };
                Some(call(
                    "__dbx_cast",
                    vec![string_lit(&value), string_lit(&ty.to_string())],
                )?)
            }
            _ => None,
        };
        if let Some(r) = replacement {
            *e = r;
        }
        Ok(())
    }

    fn rewrite_function(&mut self, f: &mut ast::Function) -> Result<Option<Expr>, SqlError> {
        let name = name_parts(&f.name).join(".").to_ascii_lowercase();
        let args = function_args(f);
        let renamed = |to: &str| -> Option<Expr> {
            let mut g = f.clone();
            g.name = ObjectName::from(vec![Ident::new(to)]);
            Some(Expr::Function(g))
        };
        Ok(match name.as_str() {
            "uuid" => renamed("__dbx_uuid"),
            "current_timestamp" | "now" | "localtimestamp" => Some(call("__dbx_now", vec![])?),
            "current_date" | "curdate" => Some(call("__dbx_today", vec![])?),
            "array" => renamed("json_array"),
            "size" | "array_size" | "cardinality" => renamed("json_array_length"),
            "array_contains" => renamed("__dbx_array_contains"),
            "nvl" => renamed("ifnull"),
            "substring" => renamed("substr"),
            "lcase" => renamed("lower"),
            "ucase" => renamed("upper"),
            "char_length" | "character_length" => renamed("length"),
            "concat" => {
                // Spark's concat is NULL when any argument is NULL, like `||`.
                let mut it = args.into_iter();
                match it.next() {
                    None => Some(string_lit("")),
                    Some(first) => Some(it.fold(first, |acc, a| Expr::BinaryOp {
                        left: Box::new(acc),
                        op: ast::BinaryOperator::StringConcat,
                        right: Box::new(a),
                    })),
                }
            }
            "current_catalog" => Some(string_lit(self.scope.catalog)),
            // The principal running the statement
            // (https://docs.databricks.com/sql/language-manual/functions/current_user.html).
            "current_user" | "user" | "session_user" => {
                Some(string_lit(&self.scope.caller.principal))
            }
            "current_schema" | "current_database" => Some(string_lit(self.scope.schema)),
            // Groups are not modelled: workspace admins are in `admins`.
            "is_account_group_member" | "is_member" => {
                let group = args.first().and_then(literal_str).unwrap_or_default();
                let member = self.scope.caller.admin && group.eq_ignore_ascii_case("admins");
                Some(Expr::Value(Value::Boolean(member).into()))
            }
            "to_date" => Some(call(
                "__dbx_cast",
                vec![
                    args.into_iter()
                        .next()
                        .unwrap_or(Expr::Value(Value::Null.into())),
                    string_lit("DATE"),
                ],
            )?),
            "to_timestamp" => Some(call(
                "__dbx_cast",
                vec![
                    args.into_iter()
                        .next()
                        .unwrap_or(Expr::Value(Value::Null.into())),
                    string_lit("TIMESTAMP"),
                ],
            )?),
            _ => None,
        })
    }
}

impl VisitorMut for Rewriter<'_, '_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_lowercase());
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        match self.rewrite_table_factor(tf) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => self.fail(e),
        }
    }

    fn pre_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        // `-<literal>` as one literal, so a wide decimal keeps its sign
        // when it becomes exact text below.
        if let Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } = e
        {
            if let Expr::Value(v) = expr.as_ref() {
                if let Value::Number(n, long) = &v.value {
                    if !n.starts_with('-') {
                        *e = Expr::Value(Value::Number(format!("-{n}"), *long).into());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        match self.rewrite_expr(e) {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => self.fail(err),
        }
    }
}

/// Rewrites every table reference and expression of a node in place.
pub fn rewrite<T: VisitMut>(
    scope: &Scope<'_>,
    temps: &mut TempTypes,
    node: &mut T,
) -> Result<(), SqlError> {
    let mut r = Rewriter {
        scope,
        temps,
        ctes: HashSet::new(),
        governed: HashSet::new(),
        error: None,
    };
    let _ = node.visit(&mut r);
    match r.error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The parts of a table name written in a string (`'main.demo.t'`,
/// ``'`my schema`.t'``): dots split it outside backticks.
fn split_name(text: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut quoted = false;
    for c in text.trim().chars() {
        match c {
            '`' => quoted = !quoted,
            '.' if !quoted => parts.push(String::new()),
            c => parts.last_mut().map(|p| p.push(c)).unwrap_or_default(),
        }
    }
    parts
}

/// A plain decimal literal with more significant digits than a double
/// keeps, or an integer literal beyond BIGINT (Spark reads
/// `12345678901234567890` as DECIMAL(20,0)).
fn wide_decimal(n: &str) -> bool {
    let plain = !n.contains(['e', 'E']);
    let digits = n
        .chars()
        .filter(|c| c.is_ascii_digit())
        .collect::<String>()
        .trim_start_matches('0')
        .len();
    plain
        && ((n.contains('.') && digits > 15)
            || (!n.contains('.') && n.parse::<i64>().is_err() && digits <= 38))
}

fn literal_i64(e: &Expr) -> Option<i64> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => literal_i64(expr).map(|v| -v),
        _ => None,
    }
}

fn literal_str(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// The declared type an expression has in Spark, where it can be told
/// from the syntax alone (the rest is read from SQLite's column origin or
/// from the values).
pub fn expr_type(
    e: &Expr,
    scope: &Scope<'_>,
    columns: &HashMap<String, DbxType>,
) -> Option<DbxType> {
    match e {
        Expr::Nested(inner) => expr_type(inner, scope, columns),
        Expr::Identifier(i) => columns.get(&i.value.to_lowercase()).cloned(),
        Expr::CompoundIdentifier(parts) => parts
            .last()
            .and_then(|i| columns.get(&i.value.to_lowercase()).cloned()),
        Expr::Cast { data_type, .. } => DbxType::parse(&data_type.to_string()),
        Expr::TypedString(ts) => DbxType::parse(&ts.data_type.to_string()),
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Some(if n.contains(['e', 'E']) {
                DbxType::Double
            } else if let Some((i, f)) = n.split_once('.') {
                let digits = i.trim_start_matches('-').len() + f.len();
                DbxType::Decimal {
                    precision: digits.clamp(1, 38) as u8,
                    scale: f.len().min(38) as u8,
                }
            } else if n.parse::<i32>().is_ok() {
                DbxType::Int
            } else if n.parse::<i64>().is_ok() {
                DbxType::Long
            } else {
                DbxType::Decimal {
                    precision: n.trim_start_matches('-').len().clamp(1, 38) as u8,
                    scale: 0,
                }
            }),
            Value::SingleQuotedString(_) | Value::DoubleQuotedString(_) => Some(DbxType::String),
            Value::Boolean(_) => Some(DbxType::Boolean),
            Value::Null => Some(DbxType::Void),
            Value::Placeholder(p) => scope.param_types.get(p.trim_start_matches(':')).cloned(),
            _ => None,
        },
        Expr::Function(f) => {
            let name = name_parts(&f.name).join(".").to_ascii_lowercase();
            let args = function_args(f);
            let first = || args.first().and_then(|a| expr_type(a, scope, columns));
            match name.as_str() {
                "count" => Some(DbxType::Long),
                "uuid" | "concat" | "upper" | "lower" | "trim" | "substr" | "substring"
                | "current_catalog" | "current_schema" | "current_database" | "current_user"
                | "user" | "session_user" => Some(DbxType::String),
                "current_timestamp" | "now" | "to_timestamp" => Some(DbxType::Timestamp),
                "current_date" | "to_date" => Some(DbxType::Date),
                "array" => Some(DbxType::Array(Box::new(first().unwrap_or(DbxType::String)))),
                "size" | "array_size" | "length" | "char_length" => Some(DbxType::Int),
                "array_contains" => Some(DbxType::Boolean),
                "avg" => match first() {
                    Some(DbxType::Decimal { precision, scale }) => Some(DbxType::Decimal {
                        precision: (precision + 4).min(38),
                        scale: (scale + 4).min(38),
                    }),
                    _ => Some(DbxType::Double),
                },
                "sum" => match first() {
                    Some(t) if t.is_integral() => Some(DbxType::Long),
                    Some(DbxType::Decimal { precision, scale }) => Some(DbxType::Decimal {
                        precision: (precision + 10).min(38),
                        scale,
                    }),
                    Some(DbxType::Float) | Some(DbxType::Double) => Some(DbxType::Double),
                    _ => None,
                },
                "min" | "max" | "first" | "last" | "any_value" | "coalesce" | "nvl" | "ifnull"
                | "abs" => first(),
                _ => None,
            }
        }
        Expr::BinaryOp { left, op, right } => {
            use ast::BinaryOperator as B;
            match op {
                B::Eq
                | B::NotEq
                | B::Lt
                | B::LtEq
                | B::Gt
                | B::GtEq
                | B::And
                | B::Or
                | B::Spaceship => Some(DbxType::Boolean),
                B::StringConcat => Some(DbxType::String),
                B::Plus | B::Minus | B::Multiply => {
                    let (l, r) = (
                        expr_type(left, scope, columns),
                        expr_type(right, scope, columns),
                    );
                    match (l, r) {
                        (Some(a), Some(b)) if a.is_integral() && b.is_integral() => {
                            Some(if a == DbxType::Long || b == DbxType::Long {
                                DbxType::Long
                            } else {
                                DbxType::Int
                            })
                        }
                        (Some(DbxType::Double), _) | (_, Some(DbxType::Double)) => {
                            Some(DbxType::Double)
                        }
                        _ => None,
                    }
                }
                B::Divide => Some(DbxType::Double),
                _ => None,
            }
        }
        Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsDistinctFrom(..)
        | Expr::IsNotDistinctFrom(..)
        | Expr::InList { .. }
        | Expr::Between { .. }
        | Expr::Like { .. }
        | Expr::Exists { .. }
        | Expr::InSubquery { .. } => Some(DbxType::Boolean),
        Expr::UnaryOp { op, expr } => match op {
            ast::UnaryOperator::Not => Some(DbxType::Boolean),
            _ => expr_type(expr, scope, columns),
        },
        _ => None,
    }
}
