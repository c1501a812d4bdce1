//! Schema changes and schema reads of a Delta table
//! (https://docs.databricks.com/en/sql/language-manual/sql-ref-syntax-ddl-alter-table.html,
//! .../sql-ref-syntax-ddl-alter-table-manage-column.html,
//! .../sql-ref-syntax-aux-describe-table.html):
//!
//! - `ALTER TABLE t ADD {COLUMN | COLUMNS} [(] c type [COMMENT '...'] [, ...] [)]`:
//!   new nullable columns at the end, NULL in existing rows ("All columns
//!   added to Delta tables are treated as NULL for existing rows"); history
//!   operation `ADD COLUMNS`;
//! - `ALTER TABLE t {ALTER | CHANGE} [COLUMN] c TYPE type`: only the
//!   widening Delta type widening allows, once the table property
//!   `delta.enableTypeWidening` is true
//!   (https://docs.databricks.com/en/delta/type-widening.html); history
//!   operation `CHANGE COLUMN`. Without it (or for a change the table does
//!   not list) Delta refuses a safe up-cast with
//!   `DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP`, and Spark refuses any
//!   other change with `NOT_SUPPORTED_CHANGE_COLUMN`;
//! - `DESCRIBE [TABLE] [EXTENDED | FORMATTED] t`: `col_name`, `data_type`,
//!   `comment`, and with EXTENDED a blank row, `# Detailed Table
//!   Information` and the table's details.
//!
//! Adding columns and altering them take MODIFY ("If you use Unity Catalog
//! you must have MODIFY permission to: ALTER COLUMN, ADD COLUMN, ...");
//! describing a table takes what seeing it in Unity Catalog takes.

use super::catalog::{self, ColumnInfo, FullName, TableInfo};
use super::cdf;
use super::context::Exec;
use super::error::SqlError;
use super::history::{self, Operation};
use super::privileges::Securable;
use super::result::{Column, ResultSet};
use super::tokens::{Cursor, Tok};
use super::types::{Cell, DbxType};
use super::widening;

/// The table property that allows type changes.
pub const TYPE_WIDENING: &str = "delta.enableTypeWidening";

/// A schema statement of this module.
#[derive(Debug, PartialEq)]
pub(super) enum Alter {
    AddColumns {
        table: Vec<String>,
        columns: Vec<ColumnInfo>,
    },
    ChangeType {
        table: Vec<String>,
        column: String,
        ty: DbxType,
    },
    Describe {
        table: Vec<String>,
        extended: bool,
    },
}

/// A type's text up to `,`, `)` or a keyword that ends a column spec, read
/// back from tokens (`DECIMAL ( 18 , 2 )` parses like `DECIMAL(18,2)`).
fn data_type(c: &mut Cursor) -> Result<DbxType, SqlError> {
    let mut text = String::new();
    let mut depth = 0i32;
    while let Some(t) = c.peek().cloned() {
        match &t {
            Tok::Punct(',') | Tok::Punct(')') if depth == 0 => break,
            Tok::Word(w)
                if depth == 0
                    && !text.is_empty()
                    && [
                        "COMMENT", "NOT", "FIRST", "AFTER", "DEFAULT", "MASK", "COLLATE",
                    ]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k)) =>
            {
                break
            }
            Tok::Punct('(') | Tok::Punct('<') => depth += 1,
            Tok::Punct(')') | Tok::Punct('>') => depth -= 1,
            _ => {}
        }
        match t {
            Tok::Word(w) | Tok::Num(w) => text.push_str(&w),
            Tok::Punct(p) => text.push(p),
            _ => return Err(c.unexpected("a data type")),
        }
        c.pos += 1;
    }
    DbxType::parse(&text).ok_or_else(|| {
        SqlError::invalid(
            "UNSUPPORTED_DATATYPE",
            &format!("Unsupported data type \"{text}\"."),
            "0A000",
        )
    })
}

/// `name type [COMMENT 'text']`.
fn column_spec(c: &mut Cursor) -> Result<ColumnInfo, SqlError> {
    let name = c.ident()?;
    let ty = data_type(c)?;
    let mut comment = None;
    loop {
        if c.eat_kw("COMMENT") {
            match c.peek().cloned() {
                Some(Tok::Str(s)) => {
                    c.pos += 1;
                    comment = Some(s);
                }
                _ => return Err(c.unexpected("a comment string")),
            }
        } else if c.is_kw("NOT") || c.is_kw("DEFAULT") {
            // "When you add a column to an existing Delta table, you cannot
            // define a DEFAULT value"; NOT NULL needs a default for the rows
            // already there.
            return Err(SqlError::unsupported(
                "ADD COLUMNS with NOT NULL or DEFAULT",
            ));
        } else if c.is_kw("FIRST") || c.is_kw("AFTER") || c.is_kw("MASK") {
            return Err(SqlError::unsupported(
                "ADD COLUMNS with FIRST, AFTER or MASK",
            ));
        } else {
            break;
        }
    }
    Ok(ColumnInfo {
        name,
        ty,
        nullable: true,
        comment,
    })
}

/// The ALTER TABLE forms of this module, after `ALTER TABLE name`.
pub(super) fn parse_alter(c: &mut Cursor, table: Vec<String>) -> Option<Result<Alter, SqlError>> {
    if c.eat_kw("ADD") {
        return Some((|| {
            if !c.eat_kw("COLUMNS") {
                c.expect_kw("COLUMN")?;
            }
            let parens = c.eat_punct('(');
            let mut columns = vec![column_spec(c)?];
            while c.eat_punct(',') {
                columns.push(column_spec(c)?);
            }
            if parens && !c.eat_punct(')') {
                return Err(c.unexpected("')'"));
            }
            c.done()?;
            Ok(Alter::AddColumns { table, columns })
        })());
    }
    if c.is_kw("ALTER") || c.is_kw("CHANGE") {
        c.pos += 1;
        return Some((|| {
            c.eat_kw("COLUMN");
            let column = c.ident()?;
            if !c.eat_kw("TYPE") {
                return Err(SqlError::unsupported(
                    "ALTER COLUMN other than TYPE (COMMENT, SET NOT NULL, SET DEFAULT, ...)",
                ));
            }
            let ty = data_type(c)?;
            c.done()?;
            Ok(Alter::ChangeType { table, column, ty })
        })());
    }
    None
}

/// `DESCRIBE [TABLE] [EXTENDED | FORMATTED] name`, after DESCRIBE / DESC.
pub(super) fn parse_describe(c: &mut Cursor) -> Result<Alter, SqlError> {
    for other in [
        "DETAIL", "CATALOG", "SCHEMA", "DATABASE", "VOLUME", "FUNCTION", "QUERY",
    ] {
        if c.is_kw(other) && !matches!(c.toks.get(c.pos + 1), None | Some(Tok::Punct('.'))) {
            return Err(SqlError::unsupported(&format!("DESCRIBE {other}")));
        }
    }
    c.eat_kw("TABLE");
    let extended = c.eat_kw("EXTENDED") || c.eat_kw("FORMATTED");
    let table = c.name()?;
    if c.peek().is_some() {
        return Err(SqlError::unsupported(
            "DESCRIBE TABLE of a column, a partition or AS JSON",
        ));
    }
    Ok(Alter::Describe { table, extended })
}

/// Spark's `simpleString` of a type: what DESCRIBE shows (`bigint`,
/// `decimal(18,2)`, `array<string>`, `map<string,string>`).
pub fn simple_string(t: &DbxType) -> String {
    match t {
        DbxType::Array(e) => format!("array<{}>", simple_string(e)),
        DbxType::Map(k, v) => format!("map<{},{}>", simple_string(k), simple_string(v)),
        DbxType::Void => "void".into(),
        other => other.to_string().to_lowercase(),
    }
}

/// Spark's JSON `typeName` of a type, as history parameters record it.
fn json_type(t: &DbxType) -> String {
    match t {
        DbxType::Byte => "byte".into(),
        DbxType::Short => "short".into(),
        DbxType::Int => "integer".into(),
        DbxType::Long => "long".into(),
        other => simple_string(other),
    }
}

fn field_json(c: &ColumnInfo) -> serde_json::Value {
    let mut metadata = serde_json::Map::new();
    if let Some(comment) = &c.comment {
        metadata.insert("comment".into(), serde_json::Value::String(comment.clone()));
    }
    serde_json::json!({
        "name": c.name,
        "type": json_type(&c.ty),
        "nullable": c.nullable,
        "metadata": metadata,
    })
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

impl Exec<'_> {
    fn schema_table(&self, parts: &[String]) -> Result<TableInfo, SqlError> {
        let name = match parts {
            [t] => FullName::new(self.catalog, self.schema, t),
            [s, t] => FullName::new(self.catalog, s, t),
            [c, s, t] => FullName::new(c, s, t),
            _ => return Err(SqlError::syntax("invalid table name")),
        };
        catalog::get_table(self.conn, &name)?
            .ok_or_else(|| SqlError::table_not_found(&name.dotted()))
    }

    pub(super) fn run_alter(&self, a: Alter) -> Result<ResultSet, SqlError> {
        match a {
            Alter::AddColumns { table, columns } => self.add_columns(&table, columns),
            Alter::ChangeType { table, column, ty } => self.change_type(&table, &column, ty),
            Alter::Describe { table, extended } => self.describe_table(&table, extended),
        }
    }

    fn add_columns(
        &self,
        table: &[String],
        columns: Vec<ColumnInfo>,
    ) -> Result<ResultSet, SqlError> {
        let t = self.schema_table(table)?;
        self.checks().modify_table(&t.name, false)?;
        let mut seen: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        for c in &columns {
            if seen.iter().any(|s| s.eq_ignore_ascii_case(&c.name)) {
                let fields: Vec<String> = t
                    .columns
                    .iter()
                    .map(|c| format!("{}: {}", c.name, c.ty))
                    .collect();
                return Err(SqlError::invalid(
                    "FIELD_ALREADY_EXISTS",
                    &format!(
                        "Cannot add column, because `{}` already exists in \"STRUCT<{}>\".",
                        c.name,
                        fields.join(", ")
                    ),
                    "42710",
                ));
            }
            seen.push(&c.name);
        }
        let commit = history::begin(self.conn, &t.name)?;
        catalog::add_columns(self.conn, &t.name, &columns)?;
        let info = catalog::get_table(self.conn, &t.name)?
            .ok_or_else(|| SqlError::table_not_found(&t.name.dotted()))?;
        cdf::add_columns(self.conn, &info, &columns)?;
        let logged: Vec<serde_json::Value> = columns
            .iter()
            .map(|c| serde_json::json!({ "column": field_json(c) }))
            .collect();
        history::finish(
            self.conn,
            &commit,
            self.caller,
            &Operation::new("ADD COLUMNS")
                .param("columns", serde_json::Value::Array(logged).to_string()),
        )?;
        Ok(ResultSet::default())
    }

    fn change_type(
        &self,
        table: &[String],
        column: &str,
        ty: DbxType,
    ) -> Result<ResultSet, SqlError> {
        let t = self.schema_table(table)?;
        self.checks().modify_table(&t.name, false)?;
        let old = t
            .columns
            .iter()
            .find(|c| c.name.eq_ignore_ascii_case(column))
            .cloned()
            .ok_or_else(|| SqlError::column_not_found(column))?;
        let field = |ty: &DbxType| format!("{ty}{}", if old.nullable { "" } else { " NOT NULL" });
        if old.ty != ty {
            if !widening::can_up_cast(&old.ty, &ty) {
                return Err(SqlError::invalid(
                    "NOT_SUPPORTED_CHANGE_COLUMN",
                    &format!(
                        "ALTER TABLE ALTER/CHANGE COLUMN is not supported for changing `{}`.`{}`.`{}`'s column `{}` with type \"{}\" to `{}` with type \"{}\".",
                        t.name.catalog, t.name.schema, t.name.name, old.name, old.ty, old.name, ty
                    ),
                    "0A000",
                ));
            }
            let enabled = catalog::properties(self.conn, &t.name)?
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(TYPE_WIDENING) && v == "true");
            if !enabled || !widening::type_widening_allowed(&old.ty, &ty) {
                return Err(SqlError::invalid(
                    "DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP",
                    &format!(
                        "ALTER TABLE ALTER COLUMN is not supported for changing column {} from {} to {}",
                        old.name,
                        field(&old.ty),
                        field(&ty)
                    ),
                    "0AKDC",
                ));
            }
        }
        let commit = history::begin(self.conn, &t.name)?;
        if old.ty != ty {
            // Type widening rewrites no data file and records no change row:
            // the rows are converted with the feed's triggers off.
            cdf::disable(self.conn, &t.name)?;
            catalog::change_column_type(self.conn, &t, &old.name, &ty)?;
            let info = catalog::get_table(self.conn, &t.name)?
                .ok_or_else(|| SqlError::table_not_found(&t.name.dotted()))?;
            if catalog::change_data_feed(self.conn, &t.name)? {
                cdf::enable(self.conn, &info)?;
            }
        }
        let new = ColumnInfo {
            ty: ty.clone(),
            ..old.clone()
        };
        history::finish(
            self.conn,
            &commit,
            self.caller,
            &Operation::new("CHANGE COLUMN").param("column", field_json(&new).to_string()),
        )?;
        Ok(ResultSet::default())
    }

    fn describe_table(&self, table: &[String], extended: bool) -> Result<ResultSet, SqlError> {
        let t = self.schema_table(table)?;
        self.checks().see(&Securable::table(&t.name))?;
        let mut rows: Vec<Vec<Cell>> = t
            .columns
            .iter()
            .map(|c| {
                vec![
                    text(c.name.clone()),
                    text(simple_string(&c.ty)),
                    c.comment.clone().map(Cell::Text).unwrap_or(Cell::Null),
                ]
            })
            .collect();
        if extended {
            let created = chrono::DateTime::from_timestamp_millis(t.created_at)
                .unwrap_or_default()
                .format("%a %b %d %H:%M:%S UTC %Y")
                .to_string();
            let props: Vec<String> = catalog::properties(self.conn, &t.name)?
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            let mut detail: Vec<(&str, String)> = vec![
                ("Catalog", t.name.catalog.clone()),
                ("Database", t.name.schema.clone()),
                ("Table", t.name.name.clone()),
                ("Created Time", created),
                ("Last Access", "UNKNOWN".into()),
                ("Created By", "Spark".into()),
                ("Type", "MANAGED".into()),
            ];
            if let Some(c) = &t.comment {
                detail.push(("Comment", c.clone()));
            }
            detail.push(("Provider", "delta".into()));
            detail.push(("Owner", t.owner.clone().unwrap_or_default()));
            detail.push(("Is_managed_location", "true".into()));
            detail.push(("Table Properties", format!("[{}]", props.join(","))));
            rows.push(vec![text(""), text(""), text("")]);
            rows.push(vec![
                text("# Detailed Table Information"),
                text(""),
                text(""),
            ]);
            for (k, v) in detail {
                rows.push(vec![text(k), text(v), text("")]);
            }
        }
        Ok(ResultSet {
            columns: ["col_name", "data_type", "comment"]
                .iter()
                .map(|n| Column {
                    name: n.to_string(),
                    ty: DbxType::String,
                })
                .collect(),
            rows,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tokens::tokenize;
    use super::*;

    fn cursor(text: &str) -> Cursor {
        Cursor {
            toks: tokenize(text).unwrap_or_default(),
            pos: 0,
        }
    }

    #[test]
    fn parses_column_specs_and_types() {
        let mut c = cursor(
            "ADD COLUMNS (a DECIMAL(18, 2) COMMENT 'money', b ARRAY<STRING>, c map<string, int>)",
        );
        let Some(Ok(Alter::AddColumns { columns, .. })) = parse_alter(&mut c, vec!["t".into()])
        else {
            panic!("not parsed");
        };
        let tys: Vec<String> = columns.iter().map(|c| c.ty.to_string()).collect();
        assert_eq!(tys, ["DECIMAL(18,2)", "ARRAY<STRING>", "MAP<STRING, INT>"]);
        assert_eq!(columns[0].comment.as_deref(), Some("money"));
        let mut c = cursor("ADD COLUMN d BIGINT");
        assert!(matches!(
            parse_alter(&mut c, vec![]),
            Some(Ok(Alter::AddColumns { .. }))
        ));
        let mut c = cursor("CHANGE COLUMN d TYPE decimal(20, 0)");
        assert_eq!(
            parse_alter(&mut c, vec![]).and_then(Result::ok),
            Some(Alter::ChangeType {
                table: vec![],
                column: "d".into(),
                ty: DbxType::Decimal {
                    precision: 20,
                    scale: 0
                }
            })
        );
        let mut c = cursor("ADD COLUMNS (x INT NOT NULL)");
        assert!(matches!(parse_alter(&mut c, vec![]), Some(Err(_))));
        assert_eq!(
            simple_string(&DbxType::Map(
                Box::new(DbxType::String),
                Box::new(DbxType::Long)
            )),
            "map<string,bigint>"
        );
    }
}
