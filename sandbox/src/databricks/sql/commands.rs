//! Statements sqlparser's Databricks dialect does not read, parsed with a
//! small tokenizer and run here: GRANT, REVOKE and SHOW GRANTS
//! (https://docs.databricks.com/sql/language-manual/security-grant.html,
//! .../security-revoke.html, .../security-show-grant.html), DESCRIBE HISTORY
//! (.../delta-describe-history.html), VACUUM (.../delta-vacuum.html, run by
//! `retention.rs`), ALTER TABLE ... SET / UNSET
//! TBLPROPERTIES and SHOW TBLPROPERTIES (.../sql-ref-syntax-aux-show-tblproperties.html),
//! and ALTER {CATALOG | SCHEMA | TABLE | VOLUME} ... OWNER TO; the schema
//! statements (ADD COLUMNS, ALTER COLUMN TYPE, DESCRIBE TABLE) are parsed
//! and run by `alter.rs`.

use super::alter;
use super::catalog::{self, FullName, CHANGE_DATA_FEED};
use super::cdf;
use super::context::Exec;
use super::error::SqlError;
use super::grants::{self, Access};
use super::history::{self, Operation};
use super::privileges::{self, Securable, SecurableType};
use super::result::{Column, ResultSet};
use super::tokens::{tokenize, Cursor, Tok};
use super::types::{Cell, DbxType};

/// A statement of this module.
#[derive(Debug)]
enum Command {
    Grant {
        privileges: Vec<String>,
        on: (SecurableType, Vec<String>),
        principal: String,
    },
    Revoke {
        privileges: Vec<String>,
        on: (SecurableType, Vec<String>),
        principal: String,
    },
    ShowGrants {
        principal: Option<String>,
        on: (SecurableType, Vec<String>),
    },
    DescribeHistory {
        table: Vec<String>,
        limit: Option<u64>,
    },
    /// VACUUM table [RETAIN n HOURS] [DRY RUN] (`retention.rs`).
    Vacuum {
        table: Vec<String>,
        retain_hours: Option<f64>,
        dry_run: bool,
    },
    SetProperties {
        table: Vec<String>,
        properties: Vec<(String, String)>,
    },
    UnsetProperties {
        table: Vec<String>,
        keys: Vec<String>,
        if_exists: bool,
    },
    ShowProperties {
        table: Vec<String>,
        key: Option<String>,
    },
    SetOwner {
        on: (SecurableType, Vec<String>),
        principal: String,
    },
    /// ADD COLUMNS, ALTER COLUMN TYPE, DESCRIBE TABLE (`alter.rs`).
    Schema(alter::Alter),
    /// SET ROW FILTER f ON (cols) / DROP ROW FILTER (`policies.rs`).
    RowFilter {
        table: Vec<String>,
        set: Option<(Vec<String>, Vec<String>)>,
    },
    /// ALTER COLUMN c SET MASK f [USING COLUMNS (cols)] / DROP MASK.
    Mask {
        table: Vec<String>,
        column: String,
        set: Option<(Vec<String>, Vec<String>)>,
    },
    /// CREATE [OR REPLACE] FUNCTION ... RETURN expr.
    CreateFunction {
        name: Vec<String>,
        params: Vec<(String, String)>,
        returns: String,
        body: String,
        replace: bool,
        if_not_exists: bool,
    },
    DropFunction {
        name: Vec<String>,
        if_exists: bool,
    },
}

/// `(a, b)`: a parenthesised list of column names.
fn column_list(c: &mut Cursor) -> Result<Vec<String>, SqlError> {
    if !c.eat_punct('(') {
        return Err(c.unexpected("'('"));
    }
    let mut out = Vec::new();
    if c.eat_punct(')') {
        return Ok(out);
    }
    loop {
        out.push(c.ident()?);
        if c.eat_punct(')') {
            return Ok(out);
        }
        if !c.eat_punct(',') {
            return Err(c.unexpected("',' or ')'"));
        }
    }
}

/// CREATE FUNCTION and DROP FUNCTION, read from the text (the body is an
/// expression, kept as written).
fn parse_function_ddl(text: &str) -> Option<Result<Command, SqlError>> {
    use std::sync::OnceLock;
    static CREATE: OnceLock<regex::Regex> = OnceLock::new();
    static DROP: OnceLock<regex::Regex> = OnceLock::new();
    const NAME: &str =
        r"((?:(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)\.){0,2}(?:`[^`]+`|[A-Za-z_][A-Za-z0-9_]*))";
    let create = CREATE.get_or_init(|| {
        regex::Regex::new(&format!(
            r"(?is)^CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+(IF\s+NOT\s+EXISTS\s+)?{NAME}\s*\((.*?)\)\s*RETURNS\s+(.+?)\s+(?:(?:LANGUAGE\s+SQL|NOT\s+DETERMINISTIC|DETERMINISTIC|CONTAINS\s+SQL|READS\s+SQL\s+DATA|COMMENT\s+'(?:[^']|'')*')\s+)*RETURN\s+(.+)$"
        ))
        .expect("a valid pattern")
    });
    let drop = DROP.get_or_init(|| {
        regex::Regex::new(&format!(
            r"(?is)^DROP\s+FUNCTION\s+(IF\s+EXISTS\s+)?{NAME}\s*$"
        ))
        .expect("a valid pattern")
    });
    let name = |t: &str| -> Vec<String> {
        let mut c = Cursor {
            toks: super::tokens::tokenize(t).unwrap_or_default(),
            pos: 0,
        };
        c.name().unwrap_or_default()
    };
    if let Some(m) = create.captures(text) {
        let params = match super::policies::parse_params(&m[4]) {
            Ok(p) => p,
            Err(e) => return Some(Err(e)),
        };
        return Some(Ok(Command::CreateFunction {
            name: name(&m[3]),
            params,
            returns: m[5].trim().to_string(),
            body: m[6].trim().to_string(),
            replace: m.get(1).is_some(),
            if_not_exists: m.get(2).is_some(),
        }));
    }
    if let Some(m) = drop.captures(text) {
        return Some(Ok(Command::DropFunction {
            name: name(&m[2]),
            if_exists: m.get(1).is_some(),
        }));
    }
    if regex::Regex::new(r"(?i)^\s*(CREATE|DROP)\b.*\bFUNCTION\b").is_ok_and(|r| r.is_match(text)) {
        return Some(Err(SqlError::syntax(
            "expected CREATE [OR REPLACE] FUNCTION [IF NOT EXISTS] name (params) RETURNS type RETURN expression, or DROP FUNCTION [IF EXISTS] name",
        )));
    }
    None
}

fn parse(text: &str) -> Option<Result<Command, SqlError>> {
    if let Some(f) = parse_function_ddl(text) {
        return Some(f);
    }
    let toks = tokenize(text)?;
    let mut c = Cursor { toks, pos: 0 };
    let result = if c.eat_kw("GRANT") {
        (|| {
            let privileges = c.privileges()?;
            c.expect_kw("ON")?;
            let on = c.object()?;
            c.expect_kw("TO")?;
            let principal = c.principal()?;
            c.done()?;
            Ok(Command::Grant {
                privileges,
                on,
                principal,
            })
        })()
    } else if c.eat_kw("REVOKE") {
        (|| {
            let privileges = c.privileges()?;
            c.expect_kw("ON")?;
            let on = c.object()?;
            c.expect_kw("FROM")?;
            let principal = c.principal()?;
            c.done()?;
            Ok(Command::Revoke {
                privileges,
                on,
                principal,
            })
        })()
    } else if c.is_kw("SHOW") {
        c.pos += 1;
        if c.eat_kw("GRANTS") || c.eat_kw("GRANT") {
            (|| {
                let principal = if c.is_kw("ON") {
                    None
                } else {
                    Some(c.principal()?)
                };
                c.expect_kw("ON")?;
                let on = c.object()?;
                c.done()?;
                Ok(Command::ShowGrants { principal, on })
            })()
        } else if c.eat_kw("TBLPROPERTIES") {
            (|| {
                let table = c.name()?;
                let key = if c.eat_punct('(') {
                    let k = c.property_key()?;
                    if !c.eat_punct(')') {
                        return Err(c.unexpected("')'"));
                    }
                    Some(k)
                } else {
                    None
                };
                c.done()?;
                Ok(Command::ShowProperties { table, key })
            })()
        } else {
            return None;
        }
    } else if c.is_kw("DESCRIBE") || c.is_kw("DESC") {
        c.pos += 1;
        if !c.eat_kw("HISTORY") {
            return Some(alter::parse_describe(&mut c).map(Command::Schema));
        }
        (|| {
            let table = c.name()?;
            let limit = if c.eat_kw("LIMIT") {
                match c.peek().cloned() {
                    Some(Tok::Num(n)) => {
                        c.pos += 1;
                        Some(
                            n.parse::<u64>()
                                .map_err(|_| SqlError::syntax(&format!("invalid LIMIT {n}")))?,
                        )
                    }
                    _ => return Err(c.unexpected("a number")),
                }
            } else {
                None
            };
            c.done()?;
            Ok(Command::DescribeHistory { table, limit })
        })()
    } else if c.eat_kw("VACUUM") {
        (|| {
            let table = c.name()?;
            // LITE and FULL choose how files are found, not which.
            let _ = c.eat_kw("LITE") || c.eat_kw("FULL");
            let retain_hours = if c.eat_kw("RETAIN") {
                let n = match c.peek().cloned() {
                    Some(Tok::Num(n)) => {
                        c.pos += 1;
                        n.parse::<f64>()
                            .map_err(|_| SqlError::syntax(&format!("invalid RETAIN {n}")))?
                    }
                    _ => return Err(c.unexpected("a number of hours")),
                };
                c.expect_kw("HOURS")?;
                Some(n)
            } else {
                None
            };
            let dry_run = c.eat_kw("DRY");
            if dry_run {
                c.expect_kw("RUN")?;
            }
            c.done()?;
            Ok(Command::Vacuum {
                table,
                retain_hours,
                dry_run,
            })
        })()
    } else if c.is_kw("ALTER") {
        c.pos += 1;
        let ty = match c.peek() {
            Some(Tok::Word(w)) => SecurableType::parse(w)?,
            _ => return None,
        };
        c.pos += 1;
        (|| {
            let name = c.name()?;
            let set_owner = matches!(c.toks.get(c.pos + 1), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("OWNER"));
            if c.eat_kw("OWNER") || (set_owner && c.eat_kw("SET") && c.eat_kw("OWNER")) {
                c.expect_kw("TO")?;
                let principal = c.principal()?;
                c.done()?;
                return Ok(Command::SetOwner {
                    on: (ty, name),
                    principal,
                });
            }
            if ty != SecurableType::Table {
                return Err(SqlError::unsupported(&format!(
                    "ALTER {} other than OWNER TO",
                    ty.name()
                )));
            }
            // Row filters and column masks (policies.rs).
            let at = c.pos;
            if c.eat_kw("SET") && c.eat_kw("ROW") {
                c.expect_kw("FILTER")?;
                let function = c.name()?;
                c.expect_kw("ON")?;
                let columns = column_list(&mut c)?;
                c.done()?;
                return Ok(Command::RowFilter {
                    table: name,
                    set: Some((function, columns)),
                });
            }
            c.pos = at;
            if c.eat_kw("DROP") && c.eat_kw("ROW") {
                c.expect_kw("FILTER")?;
                c.done()?;
                return Ok(Command::RowFilter {
                    table: name,
                    set: None,
                });
            }
            c.pos = at;
            if c.eat_kw("ALTER") && c.eat_kw("COLUMN") {
                let column = c.ident()?;
                let set = if c.eat_kw("SET") && c.eat_kw("MASK") {
                    let function = c.name()?;
                    let using = if c.eat_kw("USING") {
                        c.expect_kw("COLUMNS")?;
                        column_list(&mut c)?
                    } else {
                        Vec::new()
                    };
                    Some(Some((function, using)))
                } else if c.eat_kw("DROP") && c.eat_kw("MASK") {
                    Some(None)
                } else {
                    None
                };
                if let Some(set) = set {
                    c.done()?;
                    return Ok(Command::Mask {
                        table: name,
                        column,
                        set,
                    });
                }
            }
            c.pos = at;
            if let Some(r) = alter::parse_alter(&mut c, name.clone()) {
                return r.map(Command::Schema);
            }
            if c.eat_kw("SET") {
                c.expect_kw("TBLPROPERTIES")?;
                let properties = c.properties()?;
                c.done()?;
                Ok(Command::SetProperties {
                    table: name,
                    properties,
                })
            } else if c.eat_kw("UNSET") {
                c.expect_kw("TBLPROPERTIES")?;
                let if_exists = c.eat_kw("IF");
                if if_exists {
                    c.expect_kw("EXISTS")?;
                }
                let keys = c.property_keys()?;
                c.done()?;
                Ok(Command::UnsetProperties {
                    table: name,
                    keys,
                    if_exists,
                })
            } else {
                Err(SqlError::unsupported(
                    "ALTER TABLE other than ADD COLUMNS, ALTER COLUMN TYPE, SET / UNSET TBLPROPERTIES and OWNER TO",
                ))
            }
        })()
    } else {
        return None;
    };
    Some(result)
}

/// The `TBLPROPERTIES (...)` of a CREATE TABLE statement, if any.
pub fn create_table_properties(text: &str) -> Result<Vec<(String, String)>, SqlError> {
    let Some(toks) = tokenize(text) else {
        return Ok(vec![]);
    };
    let Some(at) = toks
        .iter()
        .position(|t| matches!(t, Tok::Word(w) if w.eq_ignore_ascii_case("TBLPROPERTIES")))
    else {
        return Ok(vec![]);
    };
    let mut c = Cursor { toks, pos: at + 1 };
    c.properties()
}

fn string_columns(names: &[&str]) -> Vec<Column> {
    names
        .iter()
        .map(|n| Column {
            name: n.to_string(),
            ty: DbxType::String,
        })
        .collect()
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

impl Exec<'_> {
    fn access(&self) -> Access<'_> {
        Access {
            conn: self.conn,
            caller: self.caller,
        }
    }

    fn table_name(&self, parts: &[String]) -> FullName {
        match parts {
            [t] => FullName::new(self.catalog, self.schema, t),
            [s, t] => FullName::new(self.catalog, s, t),
            [c, s, t] => FullName::new(c, s, t),
            _ => FullName::new(self.catalog, self.schema, ""),
        }
    }

    /// The securable a statement names, which must exist.
    fn securable(&self, (ty, parts): &(SecurableType, Vec<String>)) -> Result<Securable, SqlError> {
        let sec = match (ty, parts.as_slice()) {
            (SecurableType::Catalog, []) => Securable::catalog(self.catalog),
            (SecurableType::Catalog, [c]) => Securable::catalog(c),
            (SecurableType::Schema, [s]) => Securable::schema(self.catalog, s),
            (SecurableType::Schema, [c, s]) => Securable::schema(c, s),
            (SecurableType::Table, p) if !p.is_empty() => Securable::table(&self.table_name(p)),
            (SecurableType::Volume, p) if !p.is_empty() => Securable::volume(&self.table_name(p)),
            _ => {
                return Err(SqlError::invalid(
                    "REQUIRES_SINGLE_PART_NAMESPACE",
                    &format!("Invalid name {} for a {}.", parts.join("."), ty.name()),
                    "42K05",
                ))
            }
        };
        if !catalog::exists(self.conn, &sec)? {
            return Err(catalog::not_found(&sec));
        }
        Ok(sec)
    }

    fn existing_table(&self, parts: &[String]) -> Result<catalog::TableInfo, SqlError> {
        let name = self.table_name(parts);
        catalog::get_table(self.conn, &name)?
            .ok_or_else(|| SqlError::table_not_found(&name.dotted()))
    }

    /// Runs the statement if it is one of this module's.
    pub(super) fn command(&self, text: &str) -> Option<Result<ResultSet, SqlError>> {
        let cmd = match parse(text)? {
            Ok(c) => c,
            Err(e) => return Some(Err(e)),
        };
        Some(self.run_command(cmd))
    }

    fn run_command(&self, cmd: Command) -> Result<ResultSet, SqlError> {
        match cmd {
            Command::Grant {
                privileges,
                on,
                principal,
            } => self.change_grants(&privileges, &on, &principal, true),
            Command::Revoke {
                privileges,
                on,
                principal,
            } => self.change_grants(&privileges, &on, &principal, false),
            Command::ShowGrants { principal, on } => self.show_grants(principal.as_deref(), &on),
            Command::DescribeHistory { table, limit } => {
                let t = self.existing_table(&table)?;
                self.access().read_table(&t.name)?;
                history::describe(self.conn, &t.name, limit)
            }
            Command::Vacuum {
                table,
                retain_hours,
                dry_run,
            } => {
                let t = self.existing_table(&table)?;
                // VACUUM changes files, not data: it takes MODIFY, as
                // OPTIMIZE does.
                self.access().modify_table(&t.name, false)?;
                let done = super::retention::vacuum(self.conn, &t, retain_hours, dry_run)?;
                let rows = if dry_run {
                    done.files.into_iter().map(|f| vec![text(f)]).collect()
                } else {
                    vec![vec![text(format!(
                        "s3://bridge-sandbox-metastore/__unitystorage/tables/{}",
                        t.id
                    ))]]
                };
                Ok(ResultSet {
                    columns: string_columns(&["path"]),
                    rows,
                })
            }
            Command::SetProperties { table, properties } => {
                self.set_properties(&table, &properties)
            }
            Command::UnsetProperties {
                table,
                keys,
                if_exists,
            } => self.unset_properties(&table, &keys, if_exists),
            Command::ShowProperties { table, key } => {
                let t = self.existing_table(&table)?;
                self.access().require_use(&Securable::table(&t.name))?;
                let props = catalog::properties(self.conn, &t.name)?;
                let rows = match key {
                    None => props
                        .into_iter()
                        .map(|(k, v)| vec![text(k), text(v)])
                        .collect(),
                    Some(k) => {
                        let found = props.into_iter().find(|(p, _)| p.eq_ignore_ascii_case(&k));
                        vec![match found {
                            Some((p, v)) => vec![text(p), text(v)],
                            None => vec![
                                text(k.clone()),
                                text(format!(
                                    "Table {} does not have property: {k}",
                                    t.name.dotted()
                                )),
                            ],
                        }]
                    }
                };
                Ok(ResultSet {
                    columns: string_columns(&["key", "value"]),
                    rows,
                })
            }
            Command::Schema(a) => self.run_alter(a),
            Command::RowFilter { table, set } => {
                let t = self.existing_table(&table)?;
                self.access().manage(&Securable::table(&t.name))?;
                match set {
                    Some((function, columns)) => super::policies::set_row_filter(
                        self.conn,
                        &t,
                        &self.table_name(&function),
                        &columns,
                    )?,
                    None => super::policies::drop_row_filter(self.conn, &t.name)?,
                }
                Ok(ResultSet::default())
            }
            Command::Mask { table, column, set } => {
                let t = self.existing_table(&table)?;
                self.access().manage(&Securable::table(&t.name))?;
                match set {
                    Some((function, using)) => super::policies::set_mask(
                        self.conn,
                        &t,
                        &column,
                        &self.table_name(&function),
                        &using,
                    )?,
                    None => super::policies::drop_mask(self.conn, &t, &column)?,
                }
                Ok(ResultSet::default())
            }
            Command::CreateFunction {
                name,
                params,
                returns,
                body,
                replace,
                if_not_exists,
            } => {
                let full = self.table_name(&name);
                let schema = Securable::schema(&full.catalog, &full.schema);
                if !catalog::exists(self.conn, &schema)? {
                    return Err(catalog::not_found(&schema));
                }
                self.access().require_use(&schema)?;
                self.access().require(&schema, "CREATE_FUNCTION")?;
                super::policies::create_function(
                    self.conn,
                    &super::policies::Function {
                        name: full,
                        params,
                        returns,
                        body,
                    },
                    &self.caller.principal,
                    replace,
                    if_not_exists,
                )?;
                Ok(ResultSet::default())
            }
            Command::DropFunction { name, if_exists } => {
                let full = self.table_name(&name);
                let schema = Securable::schema(&full.catalog, &full.schema);
                self.access().require_use(&schema)?;
                self.access().require(&schema, "CREATE_FUNCTION")?;
                super::policies::drop_function(self.conn, &full, if_exists)?;
                Ok(ResultSet::default())
            }
            Command::SetOwner { on, principal } => {
                let sec = self.securable(&on)?;
                self.access().manage(&sec)?;
                catalog::set_owner(self.conn, &sec, &principal)?;
                Ok(ResultSet::default())
            }
        }
    }

    fn change_grants(
        &self,
        privileges: &[String],
        on: &(SecurableType, Vec<String>),
        principal: &str,
        add: bool,
    ) -> Result<ResultSet, SqlError> {
        let sec = self.securable(on)?;
        self.access().manage(&sec)?;
        for p in privileges {
            let p = privileges::validate(p, &sec)?;
            if add {
                grants::grant(self.conn, &sec, principal, p)?;
            } else {
                grants::revoke(self.conn, &sec, principal, p)?;
            }
        }
        Ok(ResultSet::default())
    }

    /// SHOW GRANTS: the owner (`OWN`), then the privileges on the object
    /// and those it inherits, each with the object it is attached to.
    fn show_grants(
        &self,
        principal: Option<&str>,
        on: &(SecurableType, Vec<String>),
    ) -> Result<ResultSet, SqlError> {
        let sec = self.securable(on)?;
        self.access().read_grants(&sec, principal)?;
        let mut rows = Vec::new();
        if let Some(owner) = catalog::owner_of(self.conn, &sec)? {
            if principal.is_none_or(|p| p.eq_ignore_ascii_case(&owner)) {
                rows.push(vec![
                    text(owner),
                    text("OWN"),
                    text(sec.ty.name()),
                    text(sec.full_name.clone()),
                ]);
            }
        }
        for (p, list) in grants::effective(self.conn, &sec, principal)? {
            for e in list {
                let from = e.inherited_from.unwrap_or_else(|| sec.clone());
                rows.push(vec![
                    text(p.clone()),
                    text(privileges::sql_name(&e.privilege)),
                    text(from.ty.name()),
                    text(from.full_name),
                ]);
            }
        }
        Ok(ResultSet {
            columns: string_columns(&["principal", "actionType", "objectType", "objectKey"]),
            rows,
        })
    }

    fn set_properties(
        &self,
        table: &[String],
        properties: &[(String, String)],
    ) -> Result<ResultSet, SqlError> {
        let t = self.existing_table(table)?;
        // "If you use Unity Catalog you must have MODIFY permission to: ...
        // SET TBLPROPERTIES, UNSET TBLPROPERTIES"
        // (https://docs.databricks.com/en/sql/language-manual/sql-ref-syntax-ddl-alter-table.html).
        self.access().modify_table(&t.name, false)?;
        let commit = history::begin(self.conn, &t.name)?;
        catalog::set_properties(self.conn, &t.name, properties)?;
        if let Some((_, v)) = properties
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(CHANGE_DATA_FEED))
        {
            if v.eq_ignore_ascii_case("true") {
                cdf::enable(self.conn, &t)?;
            } else {
                cdf::disable(self.conn, &t.name)?;
            }
        }
        let json: serde_json::Map<String, serde_json::Value> =
            catalog::properties(self.conn, &t.name)?
                .into_iter()
                .filter(|(k, _)| properties.iter().any(|(p, _)| p.eq_ignore_ascii_case(k)))
                .map(|(k, v)| (k, serde_json::Value::String(v)))
                .collect();
        history::finish(
            self.conn,
            &commit,
            self.caller,
            &Operation::new("SET TBLPROPERTIES")
                .param("properties", serde_json::Value::Object(json).to_string()),
        )?;
        Ok(ResultSet::default())
    }

    fn unset_properties(
        &self,
        table: &[String],
        keys: &[String],
        if_exists: bool,
    ) -> Result<ResultSet, SqlError> {
        let t = self.existing_table(table)?;
        self.access().modify_table(&t.name, false)?;
        let commit = history::begin(self.conn, &t.name)?;
        let missing = catalog::unset_properties(self.conn, &t.name, keys)?;
        if !missing.is_empty() && !if_exists {
            return Err(SqlError::invalid(
                "UNSET_NONEXISTENT_PROPERTIES",
                &format!(
                    "Attempted to unset non-existent properties [{}] in table {}.",
                    missing.join(", "),
                    t.name.dotted()
                ),
                "42K0J",
            ));
        }
        if keys
            .iter()
            .any(|k| k.eq_ignore_ascii_case(CHANGE_DATA_FEED))
        {
            cdf::disable(self.conn, &t.name)?;
        }
        history::finish(
            self.conn,
            &commit,
            self.caller,
            &Operation::new("UNSET TBLPROPERTIES")
                .param("properties", serde_json::json!(keys).to_string())
                .param("ifExists", if_exists.to_string()),
        )?;
        Ok(ResultSet::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_grants_and_properties() {
        let Some(Ok(Command::Grant {
            privileges,
            on,
            principal,
        })) = parse("GRANT USE CATALOG, select ON CATALOG main TO `a@b.c`")
        else {
            panic!("not a grant");
        };
        assert_eq!(privileges, ["USE CATALOG", "select"]);
        assert_eq!(on, (SecurableType::Catalog, vec!["main".to_string()]));
        assert_eq!(principal, "a@b.c");
        assert!(matches!(
            parse("SHOW GRANTS ON TABLE main.demo.t"),
            Some(Ok(Command::ShowGrants {
                principal: None,
                ..
            }))
        ));
        assert!(matches!(
            parse("SHOW GRANTS `x@y` ON SCHEMA demo"),
            Some(Ok(Command::ShowGrants {
                principal: Some(_),
                ..
            }))
        ));
        assert!(matches!(
            parse("REVOKE ALL PRIVILEGES ON t FROM bob"),
            Some(Ok(Command::Revoke { .. }))
        ));
        assert!(matches!(
            parse("DESCRIBE HISTORY main.demo.t LIMIT 2"),
            Some(Ok(Command::DescribeHistory { limit: Some(2), .. }))
        ));
        assert!(parse("SELECT 1").is_none());
        assert!(matches!(
            parse("DESCRIBE TABLE EXTENDED t"),
            Some(Ok(Command::Schema(alter::Alter::Describe {
                extended: true,
                ..
            })))
        ));
        assert_eq!(
            create_table_properties(
                "CREATE TABLE t (a INT) TBLPROPERTIES (delta.enableChangeDataFeed = true, 'x.y' = '1')"
            )
            .unwrap(),
            [
                ("delta.enableChangeDataFeed".to_string(), "true".to_string()),
                ("x.y".to_string(), "1".to_string())
            ]
        );
        assert!(matches!(
            parse("ALTER TABLE t UNSET TBLPROPERTIES IF EXISTS (a.b)"),
            Some(Ok(Command::UnsetProperties {
                if_exists: true,
                ..
            }))
        ));
        assert!(matches!(
            parse("ALTER SCHEMA main.demo OWNER TO `x`"),
            Some(Ok(Command::SetOwner { .. }))
        ));
    }
}
