//! Running one Spark SQL statement on SQLite, each atomic (a savepoint per
//! statement, as each Delta commit is): the dispatch to each kind's file —
//! SELECT (`select.rs`), INSERT (`insert.rs`), MERGE (`merge.rs`), COPY INTO
//! (`copy_into.rs`), ALTER (`alter.rs`), the other commands
//! (`commands.rs`) — with catalog DDL, CREATE/DROP TABLE, UPDATE and DELETE
//! here. Every statement runs as a caller whose privileges it checks
//! (`grants.rs`), and every write commits a table version (`history.rs`).
//! The top of the SQL layer: nothing below calls back into it.

use std::sync::OnceLock;

use regex::Regex;
use sqlparser::ast::{self, ColumnOption, FromTable, ObjectType, Statement, TableFactor};
use sqlparser::dialect::DatabricksDialect;
use sqlparser::parser::Parser;

use super::catalog::{self, quote_ident, ColumnInfo, FullName, VolumeInfo};
use super::cdf;
use super::commands;
use super::context::{predicate_param, Exec};
use super::drops;
use super::error::SqlError;
use super::history::{self, Operation};
use super::privileges::{self, Securable};
use super::result::{cell_value, counts, ResultSet};
use super::rewrite::{self, TempTypes};
use super::types::DbxType;

/// Side effects the engine must apply outside SQLite.
#[derive(Debug, Default)]
pub struct Effects {
    pub volumes_created: Vec<VolumeInfo>,
    pub volumes_dropped: Vec<VolumeInfo>,
    /// `USE CATALOG` / `USE SCHEMA` in a script.
    pub use_catalog: Option<String>,
    pub use_schema: Option<String>,
}

const IDENT: &str = r"(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)";

fn re(cell: &'static OnceLock<Regex>, pattern: &str) -> &'static Regex {
    cell.get_or_init(|| Regex::new(pattern).unwrap_or_else(|e| panic!("bad regex {pattern}: {e}")))
}

fn unquote(s: &str) -> String {
    s.trim_matches('`').to_string()
}

fn names(text: &str) -> Vec<String> {
    let r = {
        static R: OnceLock<Regex> = OnceLock::new();
        re(&R, IDENT)
    };
    r.find_iter(text).map(|m| unquote(m.as_str())).collect()
}

fn comment_of(text: Option<regex::Match<'_>>) -> Option<String> {
    text.map(|m| m.as_str().replace("''", "'"))
}

pub(super) fn db(e: rusqlite::Error) -> SqlError {
    super::error::map_sqlite_error(e)
}

impl Exec<'_> {
    /// Runs one statement.
    pub fn run(&self, sql: &str) -> Result<(ResultSet, Effects), SqlError> {
        let chained = super::tokens::chain_adjacent_literals(sql);
        let text = chained.trim().trim_end_matches(';').trim();
        if let Some(r) = self.catalog_ddl(text)? {
            return Ok(r);
        }
        self.conn.execute_batch("SAVEPOINT dbx_stmt").map_err(db)?;
        let mut temps = TempTypes::default();
        let result = self.dispatch(text, &mut temps);
        let end = match &result {
            Ok(_) => "RELEASE dbx_stmt",
            Err(_) => "ROLLBACK TO dbx_stmt; RELEASE dbx_stmt",
        };
        let end_result = self.conn.execute_batch(end).map_err(db);
        for t in temps.tables.keys() {
            let _ = self
                .conn
                .execute_batch(&format!("DROP TABLE IF EXISTS temp.{}", quote_ident(t)));
        }
        let r = result?;
        end_result?;
        Ok((r, Effects::default()))
    }

    /// The statements of `commands.rs`, else one parsed by sqlparser.
    fn dispatch(&self, text: &str, temps: &mut TempTypes) -> Result<ResultSet, SqlError> {
        if let Some(r) = self.command(text) {
            return r;
        }
        if let Some(r) = self.copy_into(text, temps) {
            return r;
        }
        if let Some(r) = self.replace_where(text, temps) {
            return r;
        }
        super::merge::refuse_schema_evolution(text)?;
        let dialect = DatabricksDialect {};
        let (stripped, properties) = strip_table_clauses(text)?;
        let mut stmts =
            Parser::parse_sql(&dialect, &stripped).map_err(|e| SqlError::syntax(&e.to_string()))?;
        if stmts.len() != 1 {
            return Err(SqlError::syntax(
                "the Statement Execution API runs exactly one statement",
            ));
        }
        let stmt = stmts.remove(0);
        self.statement(stmt, temps, properties)
    }

    /// CATALOG / SCHEMA / VOLUME DDL and USE, which sqlparser does not know.
    fn catalog_ddl(&self, text: &str) -> Result<Option<(ResultSet, Effects)>, SqlError> {
        static CREATE: OnceLock<Regex> = OnceLock::new();
        static DROP: OnceLock<Regex> = OnceLock::new();
        static USE: OnceLock<Regex> = OnceLock::new();
        let create = re(
            &CREATE,
            r"(?is)^CREATE\s+(?:EXTERNAL\s+|MANAGED\s+)?(CATALOG|SCHEMA|DATABASE|VOLUME)\s+(IF\s+NOT\s+EXISTS\s+)?((?:(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)\.){0,2}(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*))(?:\s+COMMENT\s+'((?:[^']|'')*)')?\s*$",
        );
        let drop = re(
            &DROP,
            r"(?is)^DROP\s+(CATALOG|SCHEMA|DATABASE|VOLUME)\s+(IF\s+EXISTS\s+)?((?:(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)\.){0,2}(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*))(\s+CASCADE|\s+RESTRICT)?\s*$",
        );
        let use_re = re(
            &USE,
            r"(?is)^USE\s+(CATALOG\s+|SCHEMA\s+|DATABASE\s+)?((?:(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)\.)?(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*))\s*$",
        );
        let empty = ResultSet::default();
        if let Some(c) = create.captures(text) {
            let kind = c[1].to_ascii_uppercase();
            let if_not = c.get(2).is_some();
            let parts = names(&c[3]);
            let comment = comment_of(c.get(4));
            let mut fx = Effects::default();
            let owner = Some(self.caller.principal.as_str());
            match (kind.as_str(), parts.as_slice()) {
                ("CATALOG", [n]) => {
                    if catalog::get_catalog(self.conn, n)?.is_none() {
                        self.checks().create_catalog()?;
                    }
                    catalog::create_catalog(self.conn, n, comment.as_deref(), if_not, owner)?;
                    // Databricks creates `default` and `information_schema` in a new catalog.
                    catalog::create_schema(self.conn, n, "default", None, true, owner)?;
                }
                ("SCHEMA" | "DATABASE", [_] | [_, _]) => {
                    let (cat, s) = match parts.as_slice() {
                        [s] => (self.catalog.to_string(), s.clone()),
                        [c, s] => (c.clone(), s.clone()),
                        _ => return Err(SqlError::syntax(text)),
                    };
                    if catalog::get_schema(self.conn, &cat, &s)?.is_none() {
                        self.may_create(&Securable::catalog(&cat), privileges::CREATE_SCHEMA)?;
                    }
                    catalog::create_schema(self.conn, &cat, &s, comment.as_deref(), if_not, owner)?;
                }
                ("VOLUME", p) if !p.is_empty() && p.len() <= 3 => {
                    let full = match p {
                        [v] => FullName::new(self.catalog, self.schema, v),
                        [s, v] => FullName::new(self.catalog, s, v),
                        [cat, s, v] => FullName::new(cat, s, v),
                        _ => return Err(SqlError::syntax(text)),
                    };
                    let existed = catalog::get_volume(self.conn, &full)?.is_some();
                    if !existed {
                        self.may_create(
                            &Securable::schema(&full.catalog, &full.schema),
                            privileges::CREATE_VOLUME,
                        )?;
                    }
                    let v = catalog::create_volume(
                        self.conn,
                        &full,
                        "MANAGED",
                        comment.as_deref(),
                        if_not,
                        owner,
                    )?;
                    if !existed {
                        fx.volumes_created.push(v);
                    }
                }
                _ => return Err(SqlError::syntax(&format!("invalid name in {text}"))),
            }
            return Ok(Some((empty, fx)));
        }
        if let Some(c) = drop.captures(text) {
            let kind = c[1].to_ascii_uppercase();
            let if_exists = c.get(2).is_some();
            let parts = names(&c[3]);
            let cascade = c
                .get(4)
                .map(|m| m.as_str().trim().eq_ignore_ascii_case("CASCADE"))
                .unwrap_or(false);
            let mut fx = Effects::default();
            match (kind.as_str(), parts.as_slice()) {
                ("CATALOG", [n]) => {
                    self.may_drop(&Securable::catalog(n))?;
                    fx.volumes_dropped = drops::drop_catalog(self.conn, n, if_exists, cascade)?;
                }
                ("SCHEMA" | "DATABASE", [s]) => {
                    self.may_drop(&Securable::schema(self.catalog, s))?;
                    fx.volumes_dropped =
                        drops::drop_schema(self.conn, self.catalog, s, if_exists, cascade)?;
                }
                ("SCHEMA" | "DATABASE", [cat, s]) => {
                    self.may_drop(&Securable::schema(cat, s))?;
                    fx.volumes_dropped = drops::drop_schema(self.conn, cat, s, if_exists, cascade)?;
                }
                ("VOLUME", p) if !p.is_empty() && p.len() <= 3 => {
                    let full = match p {
                        [v] => FullName::new(self.catalog, self.schema, v),
                        [s, v] => FullName::new(self.catalog, s, v),
                        [cat, s, v] => FullName::new(cat, s, v),
                        _ => return Err(SqlError::syntax(text)),
                    };
                    self.may_drop(&Securable::volume(&full))?;
                    if let Some(v) = drops::drop_volume(self.conn, &full, if_exists)? {
                        fx.volumes_dropped.push(v);
                    }
                }
                _ => return Err(SqlError::syntax(&format!("invalid name in {text}"))),
            }
            return Ok(Some((empty, fx)));
        }
        if let Some(c) = use_re.captures(text) {
            let kind = c
                .get(1)
                .map(|m| m.as_str().trim().to_ascii_uppercase())
                .unwrap_or_default();
            let parts = names(&c[2]);
            let mut fx = Effects::default();
            match (kind.as_str(), parts.as_slice()) {
                ("CATALOG", [n]) => {
                    if catalog::get_catalog(self.conn, n)?.is_none() {
                        return Err(SqlError::catalog_not_found(n));
                    }
                    fx.use_catalog = Some(n.to_lowercase());
                    fx.use_schema = Some("default".into());
                }
                (_, [s]) => {
                    if catalog::get_schema(self.conn, self.catalog, s)?.is_none() {
                        return Err(SqlError::schema_not_found(&format!("{}.{s}", self.catalog)));
                    }
                    fx.use_schema = Some(s.to_lowercase());
                }
                (_, [cat, s]) => {
                    if catalog::get_schema(self.conn, cat, s)?.is_none() {
                        return Err(SqlError::schema_not_found(&format!("{cat}.{s}")));
                    }
                    fx.use_catalog = Some(cat.to_lowercase());
                    fx.use_schema = Some(s.to_lowercase());
                }
                _ => return Err(SqlError::syntax(text)),
            }
            return Ok(Some((empty, fx)));
        }
        Ok(None)
    }

    /// Creating in an existing catalog or schema needs its USE and CREATE
    /// privileges; a missing container is reported as missing.
    fn may_create(&self, parent: &Securable, privilege: &str) -> Result<(), SqlError> {
        if !catalog::exists(self.conn, parent)? {
            return Err(catalog::not_found(parent));
        }
        self.checks().create_in(parent, privilege)
    }

    /// Dropping an existing object takes ownership (of it or a container)
    /// or MANAGE; a missing one is left to the drop's own IF EXISTS rules.
    fn may_drop(&self, on: &Securable) -> Result<(), SqlError> {
        if catalog::exists(self.conn, on)? {
            self.checks().manage(on)?;
        }
        Ok(())
    }

    fn statement(
        &self,
        stmt: Statement,
        temps: &mut TempTypes,
        properties: Vec<(String, String)>,
    ) -> Result<ResultSet, SqlError> {
        match stmt {
            Statement::Query(q) => self.query(*q, temps),
            Statement::CreateTable(ct) => self.create_table(ct, temps, properties),
            Statement::Insert(ins) => self.insert(ins, temps),
            Statement::Update(upd) => self.update(upd, temps),
            Statement::Delete(del) => self.delete(del, temps),
            Statement::Merge(m) => self.merge(m, temps),
            Statement::Drop {
                object_type: ObjectType::Table,
                if_exists,
                names,
                ..
            } => {
                let pt = self.param_types();
                let scope = self.scope(&pt);
                for n in &names {
                    let full = scope.full_name(n)?;
                    self.may_drop(&Securable::table(&full))?;
                    drops::drop_table(self.conn, &full, if_exists)?;
                }
                Ok(ResultSet::default())
            }
            Statement::Truncate(t) => {
                let pt = self.param_types();
                let scope = self.scope(&pt);
                for tn in &t.table_names {
                    let info = scope.table(&tn.name)?;
                    self.checks().modify_table(&info.name, false)?;
                    let commit = history::begin(self.conn, &info.name)?;
                    self.exec_count(&format!("DELETE FROM {}", info.name.physical()))?;
                    history::finish(self.conn, &commit, self.caller, &Operation::new("TRUNCATE"))?;
                }
                Ok(ResultSet::default())
            }
            other => Err(SqlError::unsupported(&format!(
                "statement `{}`",
                other.to_string().chars().take(40).collect::<String>()
            ))),
        }
    }

    /// CREATE TABLE [AS SELECT]: version 0 of a new table, owned by the
    /// caller (CREATE OR REPLACE keeps the table's history, owner and grants
    /// and commits the next version). TBLPROPERTIES are stored and may turn
    /// the change data feed on before any row is written.
    fn create_table(
        &self,
        ct: ast::CreateTable,
        temps: &mut TempTypes,
        properties: Vec<(String, String)>,
    ) -> Result<ResultSet, SqlError> {
        let pt = self.param_types();
        let scope = self.scope(&pt);
        let full = scope.full_name(&ct.name)?;
        let schema = Securable::schema(&full.catalog, &full.schema);
        if !catalog::exists(self.conn, &schema)? {
            return Err(SqlError::schema_not_found(&format!(
                "{}.{}",
                full.catalog, full.schema
            )));
        }
        let mut owner = self.caller.principal.clone();
        let mut replaced = false;
        let mut identity = None;
        if let Some(old) = catalog::get_table(self.conn, &full)? {
            if ct.or_replace {
                self.checks().manage(&Securable::table(&full))?;
                owner = old.owner.unwrap_or(owner);
                identity = Some((old.id, old.created_at));
                replaced = true;
            } else if ct.if_not_exists {
                return Ok(ResultSet::default());
            } else {
                return Err(SqlError::table_exists(&full.dotted()));
            }
        } else {
            self.checks().create_in(&schema, privileges::CREATE_TABLE)?;
        }
        // `COMMENT '...'` after the columns: sqlparser keeps it among the
        // plain table options.
        let option_comment = match &ct.table_options {
            ast::CreateTableOptions::Plain(opts) => opts.iter().find_map(|o| match o {
                ast::SqlOption::Comment(c) => Some(c.clone()),
                _ => None,
            }),
            _ => None,
        };
        let comment = ct.comment.clone().or(option_comment).map(|c| match c {
            ast::CommentDef::WithEq(s) | ast::CommentDef::WithoutEq(s) => s,
        });
        let mut columns = Vec::new();
        for c in &ct.columns {
            let text = c.data_type.to_string();
            let ty = DbxType::parse(&text).ok_or_else(|| {
                SqlError::invalid(
                    "UNSUPPORTED_DATATYPE",
                    &format!("Unsupported data type \"{text}\"."),
                    "0A000",
                )
            })?;
            let mut nullable = true;
            let mut ccomment = None;
            for o in &c.options {
                match &o.option {
                    ColumnOption::NotNull => nullable = false,
                    ColumnOption::Comment(s) => ccomment = Some(s.clone()),
                    _ => {}
                }
            }
            columns.push(ColumnInfo {
                name: c.name.value.clone(),
                ty,
                nullable,
                comment: ccomment,
            });
        }
        let mut rows = None;
        let as_select = ct.query.is_some();
        if let Some(q) = ct.query {
            let rs = self.query(*q, temps)?;
            if columns.is_empty() {
                columns = rs
                    .columns
                    .iter()
                    .map(|c| ColumnInfo {
                        name: c.name.clone(),
                        ty: if c.ty == DbxType::Void {
                            DbxType::String
                        } else {
                            c.ty.clone()
                        },
                        nullable: true,
                        comment: None,
                    })
                    .collect();
            }
            rows = Some(rs.rows);
        }
        if columns.is_empty() {
            return Err(SqlError::syntax("CREATE TABLE needs columns or AS SELECT"));
        }
        if replaced {
            drops::drop_table_data(self.conn, &full)?;
            history::cut_change_data(self.conn, &full)?;
        }
        let defs: Vec<String> = columns
            .iter()
            .map(|c| {
                format!(
                    "{} {}{}",
                    quote_ident(&c.name),
                    c.ty.sqlite_decl(),
                    if c.nullable { "" } else { " NOT NULL" }
                )
            })
            .collect();
        self.conn
            .execute_batch(&format!(
                "CREATE TABLE {} ({})",
                full.physical(),
                defs.join(", ")
            ))
            .map_err(db)?;
        catalog::register_table(self.conn, &full, &columns, comment.as_deref(), Some(&owner))?;
        if let Some((id, created_at)) = &identity {
            // A replaced Delta table is the same table: its Unity Catalog id
            // and creation time stay, as its history and grants do.
            catalog::keep_identity(self.conn, &full, id, *created_at)?;
        }
        catalog::set_properties(self.conn, &full, &properties)?;
        let info = catalog::get_table(self.conn, &full)?
            .ok_or_else(|| SqlError::table_not_found(&full.dotted()))?;
        if catalog::change_data_feed(self.conn, &full)? {
            cdf::enable(self.conn, &info)?;
        }
        let commit = history::begin(self.conn, &full)?;
        let mut written = 0u64;
        if let Some(rows) = rows {
            let marks: Vec<String> = columns
                .iter()
                .enumerate()
                .map(|(i, c)| format!("__dbx_store(?{}, '{}')", i + 1, c.ty))
                .collect();
            let mut ins = self
                .conn
                .prepare(&format!(
                    "INSERT INTO {} VALUES ({})",
                    full.physical(),
                    marks.join(", ")
                ))
                .map_err(db)?;
            for r in rows {
                let vals: Vec<rusqlite::types::Value> = r.into_iter().map(cell_value).collect();
                ins.execute(rusqlite::params_from_iter(vals)).map_err(db)?;
                written += 1;
            }
        }
        // Operation names and parameters as DESCRIBE HISTORY shows them
        // (https://docs.databricks.com/aws/en/tables/history-schema).
        let name = match (replaced, as_select) {
            (false, false) => "CREATE TABLE",
            (false, true) => "CREATE TABLE AS SELECT",
            (true, false) => "CREATE OR REPLACE TABLE",
            (true, true) => "CREATE OR REPLACE TABLE AS SELECT",
        };
        let props: serde_json::Map<String, serde_json::Value> =
            catalog::properties(self.conn, &full)?
                .into_iter()
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
        let mut op = Operation::new(name).param("isManaged", "true");
        if let Some(c) = &comment {
            op = op.param("description", c.clone());
        }
        op = op
            .param("partitionBy", "[]")
            .param("properties", serde_json::Value::Object(props).to_string())
            .blind_append(true);
        if as_select {
            op = op.metric("numOutputRows", written);
        }
        history::finish(self.conn, &commit, self.caller, &op)?;
        Ok(ResultSet::default())
    }

    fn update(&self, upd: ast::Update, temps: &mut TempTypes) -> Result<ResultSet, SqlError> {
        let pt = self.param_types();
        let scope = self.scope(&pt);
        let TableFactor::Table { name, .. } = &upd.table.relation else {
            return Err(SqlError::unsupported("UPDATE of a derived table"));
        };
        let table = scope.table(name)?;
        let alias = Self::target_alias(&upd.table.relation).unwrap_or_default();
        if upd.from.is_some() || !upd.table.joins.is_empty() {
            // Databricks SQL's UPDATE takes one table, an alias and WHERE
            // (subqueries allowed), no FROM or JOIN:
            // https://docs.databricks.com/en/sql/language-manual/delta-update.html
            return Err(SqlError::syntax(
                "UPDATE takes no FROM or JOIN in Databricks SQL; use a WHERE subquery or MERGE INTO",
            ));
        }
        self.checks().modify_table(&table.name, true)?;
        let predicate = predicate_param(upd.selection.as_ref());
        let sets = self.assignments(&table, upd.assignments, &scope, temps)?;
        let mut where_sql = String::new();
        if let Some(mut w) = upd.selection {
            rewrite::rewrite(&scope, temps, &mut w)?;
            where_sql = format!(" WHERE {w}");
        }
        let commit = history::begin(self.conn, &table.name)?;
        let n = self.exec_count(&format!(
            "UPDATE {} AS {} SET {}{where_sql}",
            table.name.physical(),
            quote_ident(&alias),
            sets.join(", ")
        ))?;
        self.commit_if_changed(
            &commit,
            n,
            Operation::new("UPDATE")
                .param("predicate", predicate)
                .metric("numUpdatedRows", n),
        )?;
        Ok(counts(&[("num_affected_rows", n)]))
    }

    fn delete(&self, del: ast::Delete, temps: &mut TempTypes) -> Result<ResultSet, SqlError> {
        let pt = self.param_types();
        let scope = self.scope(&pt);
        let from = match del.from {
            FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
        };
        if from.len() != 1 || !from[0].joins.is_empty() || del.using.is_some() {
            // Databricks SQL's DELETE takes one table, an alias and WHERE
            // (subqueries allowed), no USING or JOIN:
            // https://docs.databricks.com/en/sql/language-manual/delta-delete-from.html
            return Err(SqlError::syntax(
                "DELETE takes no USING or JOIN in Databricks SQL; use a WHERE subquery or MERGE INTO",
            ));
        }
        let relation = &from[0].relation;
        let TableFactor::Table { name, .. } = relation else {
            return Err(SqlError::unsupported("DELETE from a derived table"));
        };
        let table = scope.table(name)?;
        self.checks()
            .modify_table(&table.name, del.selection.is_some())?;
        let predicate = predicate_param(del.selection.as_ref());
        let alias = Self::target_alias(relation).unwrap_or_default();
        let mut where_sql = String::new();
        if let Some(mut w) = del.selection {
            rewrite::rewrite(&scope, temps, &mut w)?;
            where_sql = format!(" WHERE {w}");
        }
        let commit = history::begin(self.conn, &table.name)?;
        let n = self.exec_count(&format!(
            "DELETE FROM {} AS {}{where_sql}",
            table.name.physical(),
            quote_ident(&alias)
        ))?;
        self.commit_if_changed(
            &commit,
            n,
            Operation::new("DELETE")
                .param("predicate", predicate)
                .metric("numDeletedRows", n),
        )?;
        Ok(counts(&[("num_affected_rows", n)]))
    }
}

/// Drops the Delta table clauses sqlparser does not parse (`USING DELTA`,
/// `PARTITIONED BY`, `CLUSTER BY`, `TBLPROPERTIES`, `LOCATION`); the
/// TBLPROPERTIES are returned (they can turn the change data feed on), the
/// rest change nothing in the sandbox.
fn strip_table_clauses(text: &str) -> Result<(String, Vec<(String, String)>), SqlError> {
    static CREATE: OnceLock<Regex> = OnceLock::new();
    static CLAUSES: OnceLock<Regex> = OnceLock::new();
    let create = re(&CREATE, r"(?is)^CREATE\s+(OR\s+REPLACE\s+)?TABLE\b");
    if !create.is_match(text) {
        return Ok((text.to_string(), vec![]));
    }
    let properties = commands::create_table_properties(text)?;
    let clauses = re(
        &CLAUSES,
        r"(?is)\bUSING\s+(DELTA|PARQUET)\b|\b(PARTITIONED|CLUSTER)\s+BY\s*\([^)]*\)|\bTBLPROPERTIES\s*\([^)]*\)|\bLOCATION\s+'[^']*'",
    );
    Ok((clauses.replace_all(text, " ").into_owned(), properties))
}
