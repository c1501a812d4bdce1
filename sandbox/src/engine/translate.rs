//! T-SQL → SQLite translation.
//!
//! Statements are parsed with sqlparser's MsSql dialect, rewritten in place
//! (names resolved to the SQLite tables that hold them, T-SQL functions and
//! operators mapped to the functions of `functions.rs`, TOP and OFFSET/FETCH
//! to LIMIT), then turned into a [`Plan`] the session runs. Writes wrap every
//! value in `__store(...)` so T-SQL's implicit conversions and errors apply.

use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;

use sqlparser::ast::{
    self, AssignmentTarget, ColumnOption, DataType, Expr, FromTable, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, JoinConstraint, JoinOperator, MergeAction, MergeClauseKind,
    MergeInsertKind, ObjectName, ObjectType, OffsetRows, Query, SelectItem, SetExpr, Statement,
    TableConstraint, TableFactor, TableWithJoins, TopQuantity, Value as AstValue, VisitMut,
    VisitorMut,
};
use sqlparser::dialect::MsSqlDialect;
use sqlparser::parser::{Parser, ParserError, ParserOptions};

use super::catalog::{self, physical_name, quote_ident, quote_str, ColumnDef, TableMeta};
use super::error::SqlError;
use super::typename::parse_sql_type;
use crate::types::{Len, SqlType};

/// What the translator needs to know about the session.
pub struct Ctx<'a> {
    pub conn: &'a rusqlite::Connection,
    pub db: &'a str,
    pub temp: &'a HashMap<String, TableMeta>,
    pub rowcount: i64,
    pub trancount: i64,
    pub spid: u16,
    pub identity_insert: Option<&'a str>,
    /// The SQL login of the session, for SUSER_SNAME().
    pub login: &'a str,
}

/// A statement ready to run.
#[derive(Debug)]
pub enum Plan {
    /// A statement that returns rows; `hints` are per-projection types where
    /// the SQL itself says (CAST, literals, aggregates over known columns).
    Query {
        sql: String,
        hints: Option<Vec<Option<SqlType>>>,
        /// Projections SQL Server leaves unnamed (expressions without alias).
        unnamed: Vec<usize>,
    },
    /// Writes; the row count is the sum of SQLite's changes over `sqls`,
    /// run inside one savepoint.
    Dml {
        sqls: Vec<String>,
        /// Run before `sqls` and not counted (e.g. materialising a MERGE source).
        setup: Vec<String>,
        cleanup: Vec<String>,
        /// For 2627 messages: the table written.
        target: Box<TableMeta>,
        /// For an INSERT ... VALUES: key probes to name the duplicate key.
        key_probe: Option<String>,
    },
    CreateTable(Box<TableMeta>),
    DropTables {
        names: Vec<(ObjectName, Option<Resolved>)>,
        if_exists: bool,
    },
    Truncate(Box<TableMeta>),
    CreateDatabase(String),
    DropDatabase(String, bool),
    CreateSchema(String),
    Use(String),
    Begin,
    Commit,
    Rollback(Option<String>),
    Save(String),
    SetOption(String, String),
    Declare(Vec<(String, SqlType, Option<String>)>),
    SetVar(String, String),
    /// `EXEC sp_executesql @stmt, @params, @p1 = v1, ...`: each part as a
    /// SQLite expression, with the argument's name when given.
    ExecSql {
        stmt: String,
        decls: Option<String>,
        args: Vec<(Option<String>, String)>,
    },
    /// `SELECT @v = expr, ... [FROM ...]`: runs `sql`, whose projection sets
    /// the variables row by row through `__setvar`.
    Assign {
        sql: String,
    },
    /// `IF cond stmts [ELSE stmts]`: `cond` is a SQLite expression.
    If {
        cond: String,
        then: Vec<Statement>,
        otherwise: Vec<Statement>,
    },
    /// `EXEC (string expression)`: dynamic SQL.
    ExecDynamic(String),
    /// `sp_describe_first_result_set @tsql = ...`: the first result set's
    /// columns; `tsql` is a SQLite expression giving the batch text.
    DescribeFirstResultSet(String),
    /// `sp_tablecollations_100 'table'`: each column's collation.
    TableCollations(Box<TableMeta>),
    /// Statements that only change options SQL Server keeps and the sandbox
    /// does not need (ANSI_NULLS and friends).
    Nothing,
}

/// A resolved table name.
#[derive(Clone, Debug)]
pub enum Resolved {
    Temp(String),
    Table {
        db: String,
        schema: String,
        name: String,
    },
}

const VERSION: &str =
    "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) \n\tbridge-sandbox (SQLite engine)\n";

fn parser_error(e: ParserError) -> SqlError {
    let text = e.to_string();
    // sqlparser: "... Expected: X, found: TOKEN at Line: 1, Column: 5"
    if let Some(rest) = text.split("found: ").nth(1) {
        let tok = rest.split(" at Line").next().unwrap_or(rest).trim();
        if tok == "EOF" {
            return SqlError::new(102, 1, 15, "Incorrect syntax near ')'.".replace(")'", ""))
                .batch();
        }
        return SqlError::syntax_near(tok.trim_matches('\''));
    }
    SqlError::new(102, 1, 15, format!("Incorrect syntax: {text}")).batch()
}

/// A `DELETE TOP (n)` found before parsing (sqlparser does not take TOP on
/// DELETE): where the DELETE keyword is, and n.
#[derive(Debug, Clone)]
struct DeleteTop {
    line: u64,
    column: u64,
    limit: String,
}

fn line_col(text: &str, byte: usize) -> (u64, u64) {
    let before = &text[..byte];
    let line = before.matches('\n').count() as u64 + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() as u64 + 1;
    (line, col)
}

/// Blanks out `TOP (n)` after DELETE, keeping every other character where it
/// was so sqlparser's spans still point into the original text.
fn strip_delete_top(sql: &str) -> (String, Vec<DeleteTop>) {
    let re =
        regex::Regex::new(r"(?i)\bDELETE(\s+TOP\s*\(\s*([0-9]+|@\w+)\s*\))").expect("static regex");
    let mut out = sql.to_string();
    let mut tops = Vec::new();
    for c in re.captures_iter(sql) {
        let (Some(all), Some(top), Some(n)) = (c.get(0), c.get(1), c.get(2)) else {
            continue;
        };
        if in_string_literal(sql, all.start()) {
            continue;
        }
        let (line, column) = line_col(sql, all.start());
        tops.push(DeleteTop {
            line,
            column,
            limit: n.as_str().to_string(),
        });
        out.replace_range(top.range(), &" ".repeat(top.len()));
    }
    (out, tops)
}

fn in_string_literal(sql: &str, pos: usize) -> bool {
    sql[..pos].matches('\'').count() % 2 == 1
}

/// Blanks the OUTPUT keyword after `@param = @var` arguments of EXEC, which
/// sqlparser does not take; sp_executesql's declarations say which
/// parameters are outputs anyway.
fn strip_exec_output(sql: &str) -> String {
    let re = regex::Regex::new(r"(?i)=\s*@[\w@#$]+(\s+(?:OUTPUT|OUT))\b").expect("static regex");
    let mut out = sql.to_string();
    for c in re.captures_iter(sql) {
        if let (Some(all), Some(kw)) = (c.get(0), c.get(1)) {
            if !in_string_literal(sql, all.start()) {
                out.replace_range(kw.range(), &" ".repeat(kw.len()));
            }
        }
    }
    out
}

/// Parses one T-SQL batch into statements.
pub fn parse_batch(sql: &str) -> Result<Vec<(Statement, Option<String>)>, SqlError> {
    let (text, tops) = strip_delete_top(&strip_exec_output(sql));
    let dialect = MsSqlDialect {};
    let stmts = Parser::new(&dialect)
        .with_options(ParserOptions::new().with_trailing_commas(false))
        .with_options(ParserOptions {
            require_semicolon_stmt_delimiter: false,
            ..ParserOptions::default()
        })
        .try_with_sql(&text)
        .and_then(|mut p| p.parse_statements())
        .map_err(parser_error)?;
    Ok(stmts
        .into_iter()
        .map(|s| {
            let top = match &s {
                Statement::Delete(d) => {
                    let start = d.delete_token.0.span.start;
                    tops.iter()
                        .find(|t| t.line == start.line && t.column == start.column)
                        .map(|t| t.limit.clone())
                }
                _ => None,
            };
            (s, top)
        })
        .collect())
}

fn parse_expr(sql: &str) -> Result<Expr, SqlError> {
    Parser::new(&MsSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_expr())
        .map_err(parser_error)
}

fn parse_query(sql: &str) -> Result<Query, SqlError> {
    Parser::new(&MsSqlDialect {})
        .try_with_sql(sql)
        .and_then(|mut p| p.parse_query())
        .map(|b| *b)
        .map_err(parser_error)
}

fn call(name: &str, args: &[String]) -> Result<Expr, SqlError> {
    parse_expr(&format!("{name}({})", args.join(", ")))
}

fn ident_values(name: &ObjectName) -> Vec<String> {
    name.0
        .iter()
        .map(|p| match p.as_ident() {
            Some(i) => i.value.clone(),
            None => p.to_string(),
        })
        .collect()
}

impl Ctx<'_> {
    /// Resolves a table name as SQL Server would: `t`, `s.t`, `d.s.t`,
    /// `d..t`, `#t`; the current database and `dbo` fill in what is missing.
    pub fn resolve(&self, name: &ObjectName) -> Result<Resolved, SqlError> {
        let parts = ident_values(name);
        let shown = parts.join(".");
        let (db, schema, table) = match parts.as_slice() {
            [t] => (self.db.to_string(), "dbo".to_string(), t.clone()),
            [s, t] => (self.db.to_string(), s.clone(), t.clone()),
            [d, s, t] | [_, d, s, t] => (
                d.clone(),
                if s.is_empty() {
                    "dbo".to_string()
                } else {
                    s.clone()
                },
                t.clone(),
            ),
            _ => return Err(SqlError::invalid_object(&shown)),
        };
        if table.starts_with('#') {
            return Ok(Resolved::Temp(table.to_ascii_lowercase()));
        }
        let db = match catalog::database_name(self.conn, &db)? {
            Some(d) => d,
            None => return Err(SqlError::invalid_object(&shown)),
        };
        let schema = if schema.is_empty() {
            "dbo".to_string()
        } else {
            schema
        };
        Ok(Resolved::Table {
            db,
            schema,
            name: table,
        })
    }

    /// The table behind a name, or error 208 naming it as written.
    pub fn table(&self, name: &ObjectName) -> Result<TableMeta, SqlError> {
        let shown = ident_values(name).join(".");
        match self.resolve(name)? {
            Resolved::Temp(t) => self
                .temp
                .get(&t)
                .cloned()
                .ok_or_else(|| SqlError::invalid_object(&shown)),
            Resolved::Table { db, schema, name } => {
                catalog::find_table(self.conn, &db, &schema, &name)?
                    .ok_or_else(|| SqlError::invalid_object(&shown))
            }
        }
    }

    /// System views that stand in for INFORMATION_SCHEMA and sys catalog views.
    fn system_view(&self, name: &ObjectName) -> Option<String> {
        let parts = ident_values(name);
        let (db, schema, view) = match parts.as_slice() {
            [s, v] => (
                self.db.to_string(),
                s.to_ascii_lowercase(),
                v.to_ascii_lowercase(),
            ),
            [d, s, v] => (d.clone(), s.to_ascii_lowercase(), v.to_ascii_lowercase()),
            _ => return None,
        };
        let db = quote_str(&db);
        let sql = match (schema.as_str(), view.as_str()) {
            ("information_schema", "tables") => {
                format!("SELECT * FROM __sb_is_tables WHERE TABLE_CATALOG = {db}")
            }
            ("information_schema", "columns") => {
                format!("SELECT * FROM __sb_is_columns WHERE TABLE_CATALOG = {db}")
            }
            ("information_schema", "schemata") => format!(
                "SELECT db AS CATALOG_NAME, name AS SCHEMA_NAME, 'dbo' AS SCHEMA_OWNER FROM __sb_schemas WHERE db = {db}"
            ),
            ("sys", "tables") | ("sys", "objects") => format!(
                "SELECT name, object_id, schema_id, type, type_desc, create_date FROM __sb_sys_tables WHERE db = {db}"
            ),
            ("sys", "columns") | ("sys", "all_columns") => format!(
                "SELECT object_id, name, column_id, max_length, precision, scale, is_nullable, is_identity, type_name, NULL AS graph_type FROM __sb_sys_columns WHERE db = {db}"
            ),
            ("sys", "schemas") => {
                format!("SELECT name, schema_id, principal_id FROM __sb_sys_schemas WHERE db = {db}")
            }
            ("sys", "databases") => "SELECT * FROM __sb_sys_databases".to_string(),
            _ => return None,
        };
        Some(sql)
    }
}

/// Rewrites a statement in place: names, functions, operators, TOP.
struct Rewriter<'c, 'a> {
    ctx: &'c Ctx<'a>,
    /// Nesting of queries: above 1 is a derived table, subquery or CTE.
    depth: usize,
    ctes: HashSet<String>,
    /// Tables seen in FROM clauses, by alias (lower case), for type hints.
    scope: HashMap<String, TableMeta>,
    error: Option<SqlError>,
}

impl<'c, 'a> Rewriter<'c, 'a> {
    fn new(ctx: &'c Ctx<'a>) -> Self {
        Rewriter {
            ctx,
            depth: 0,
            ctes: HashSet::new(),
            scope: HashMap::new(),
            error: None,
        }
    }

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
        if args.is_some() {
            return Err(SqlError::unsupported("table-valued functions"));
        }
        let parts = ident_values(name);
        // CTE references, and the catalog views system names were just rewritten to.
        if parts.len() == 1
            && (self.ctes.contains(&parts[0].to_ascii_lowercase()) || parts[0].starts_with("__sb_"))
        {
            return Ok(());
        }
        let last = parts.last().cloned().unwrap_or_default();
        let alias_name = alias
            .as_ref()
            .map(|a| a.name.value.clone())
            .unwrap_or_else(|| last.clone());
        if let Some(view) = self.ctx.system_view(name) {
            let q = parse_query(&view)?;
            *tf = TableFactor::Derived {
                lateral: false,
                subquery: Box::new(q),
                alias: Some(ast::TableAlias {
                    explicit: true,
                    name: Ident::new(alias_name),
                    columns: vec![],
                    at: None,
                }),
                sample: None,
            };
            return Ok(());
        }
        let meta = self.ctx.table(name)?;
        self.scope
            .insert(alias_name.to_ascii_lowercase(), meta.clone());
        *name = physical_object_name(&meta);
        if alias.is_none() {
            *alias = Some(ast::TableAlias {
                explicit: true,
                name: Ident::with_quote('"', last),
                columns: vec![],
                at: None,
            });
        }
        Ok(())
    }

    fn rewrite_expr(&mut self, expr: &mut Expr) -> Result<(), SqlError> {
        let replacement = match expr {
            Expr::Value(v) => match &v.value {
                AstValue::NationalStringLiteral(s) | AstValue::SingleQuotedString(s) => {
                    Some(string_literal(s)?)
                }
                // SQLite would read long literals as doubles; text keeps every digit
                // and __store/__conv parse it exactly.
                AstValue::Number(n, _)
                    if n.bytes().filter(u8::is_ascii_digit).count() > 15
                        && !n.contains(['e', 'E']) =>
                {
                    Some(Expr::value(AstValue::SingleQuotedString(n.clone())))
                }
                AstValue::Boolean(b) => Some(Expr::value(AstValue::Number(
                    if *b { "1" } else { "0" }.to_string(),
                    false,
                ))),
                _ => None,
            },
            Expr::UnaryOp {
                op: ast::UnaryOperator::Minus,
                expr: inner,
            } => match inner.as_ref() {
                Expr::Value(v) => match &v.value {
                    AstValue::SingleQuotedString(n)
                        if n.parse::<crate::types::Decimal>().is_ok() =>
                    {
                        Some(Expr::value(AstValue::SingleQuotedString(format!("-{n}"))))
                    }
                    _ => None,
                },
                _ => None,
            },
            Expr::Identifier(id) if id.value.starts_with("@@") => Some(self.global_var(&id.value)?),
            Expr::CompoundIdentifier(parts) if parts.len() > 2 => {
                let keep = parts.split_off(parts.len() - 2);
                Some(Expr::CompoundIdentifier(keep))
            }
            Expr::Cast {
                kind,
                expr: inner,
                data_type,
                ..
            } => {
                let f = if matches!(kind, ast::CastKind::TryCast | ast::CastKind::SafeCast) {
                    "__tryconv"
                } else {
                    "__conv"
                };
                Some(call(
                    f,
                    &[inner.to_string(), quote_str(&type_text(data_type)?)],
                )?)
            }
            Expr::Convert {
                is_try,
                expr: inner,
                data_type: Some(dt),
                ..
            } => {
                let f = if *is_try { "__tryconv" } else { "__conv" };
                Some(call(f, &[inner.to_string(), quote_str(&type_text(dt)?)])?)
            }
            Expr::BinaryOp { left, op, right } => match op {
                ast::BinaryOperator::Plus => {
                    Some(call("__add", &[left.to_string(), right.to_string()])?)
                }
                ast::BinaryOperator::Divide => {
                    Some(call("__div", &[left.to_string(), right.to_string()])?)
                }
                _ => None,
            },
            Expr::Function(f) => self.rewrite_function(f)?,
            _ => None,
        };
        if let Some(r) = replacement {
            *expr = r;
        }
        Ok(())
    }

    fn global_var(&self, name: &str) -> Result<Expr, SqlError> {
        let n = |v: i64| Expr::value(AstValue::Number(v.to_string(), false));
        Ok(match name.to_ascii_uppercase().as_str() {
            "@@ROWCOUNT" => n(self.ctx.rowcount),
            "@@TRANCOUNT" => n(self.ctx.trancount),
            "@@SPID" => n(i64::from(self.ctx.spid)),
            "@@ERROR" => n(0),
            "@@VERSION" => Expr::value(AstValue::SingleQuotedString(VERSION.to_string())),
            "@@SERVERNAME" => Expr::value(AstValue::SingleQuotedString("bridge-sandbox".into())),
            "@@LANGUAGE" => Expr::value(AstValue::SingleQuotedString("us_english".into())),
            "@@IDENTITY" => parse_expr("last_insert_rowid()")?,
            "@@MAX_PRECISION" => n(38),
            "@@TEXTSIZE" => n(2_147_483_647),
            other => {
                return Err(SqlError::new(
                    137,
                    2,
                    15,
                    format!("Must declare the scalar variable \"{other}\"."),
                )
                .batch())
            }
        })
    }

    fn rewrite_function(&mut self, f: &mut ast::Function) -> Result<Option<Expr>, SqlError> {
        let name = f.name.to_string().to_ascii_uppercase();
        let args: Vec<String> = match &f.args {
            FunctionArguments::List(l) => l.args.iter().map(|a| a.to_string()).collect(),
            FunctionArguments::None => vec![],
            FunctionArguments::Subquery(_) => return Ok(None),
        };
        let part_arg = |i: usize| -> String {
            args.get(i)
                .map(|a| quote_str(a.trim_matches(|c| c == '\'' || c == '"')))
                .unwrap_or_default()
        };
        let r = match name.as_str() {
            "GETDATE" | "CURRENT_TIMESTAMP" => call("__getdate", &[])?,
            "GETUTCDATE" => call("__getutcdate", &[])?,
            "SYSDATETIME" => call("__sysdatetime", &[])?,
            "SYSUTCDATETIME" => call("__sysutcdatetime", &[])?,
            "SYSDATETIMEOFFSET" => call("__sysdatetimeoffset", &[])?,
            "NEWID" => call("__newid", &[])?,
            "ISNULL" => call("ifnull", &args)?,
            "LEN" => call("__len", &args)?,
            "DATALENGTH" => call("__datalength", &args)?,
            "LEFT" => call("__left", &args)?,
            "QUOTENAME" if args.len() == 1 => call("__quotename", &args)?,
            "RIGHT" => call("__right", &args)?,
            "COUNT_BIG" => {
                let mut g = f.clone();
                g.name = ObjectName::from(vec![Ident::new("count")]);
                Expr::Function(g)
            }
            "CHARINDEX" if args.len() >= 2 => call("instr", &[args[1].clone(), args[0].clone()])?,
            "YEAR" | "MONTH" | "DAY" => call(
                "__datepart",
                &[quote_str(&name.to_ascii_lowercase()), args.join(", ")],
            )?,
            "DATEPART" if args.len() == 2 => call("__datepart", &[part_arg(0), args[1].clone()])?,
            "DATEADD" if args.len() == 3 => call(
                "__dateadd",
                &[part_arg(0), args[1].clone(), args[2].clone()],
            )?,
            "DATEDIFF" | "DATEDIFF_BIG" if args.len() == 3 => call(
                "__datediff",
                &[part_arg(0), args[1].clone(), args[2].clone()],
            )?,
            "SCOPE_IDENTITY" => parse_expr("last_insert_rowid()")?,
            "SUSER_SNAME" | "SUSER_NAME" | "ORIGINAL_LOGIN" if args.is_empty() => {
                Expr::value(AstValue::SingleQuotedString(self.ctx.login.to_string()))
            }
            "USER_NAME" | "CURRENT_USER" => Expr::value(AstValue::SingleQuotedString("dbo".into())),
            "DB_NAME" if args.is_empty() => {
                Expr::value(AstValue::SingleQuotedString(self.ctx.db.to_string()))
            }
            "OBJECT_ID" if args.len() == 1 => {
                let text = args[0].trim_start_matches(['N', 'n']).trim_matches('\'');
                let name = parse_object_name(text)?;
                match self.ctx.table(&name) {
                    Ok(meta) if !meta.temp => parse_expr(&format!(
                        "(SELECT object_id FROM __sb_tables WHERE db = {} AND schema = {} AND name = {})",
                        quote_str(&meta.db),
                        quote_str(&meta.schema),
                        quote_str(&meta.name)
                    ))?,
                    Ok(_) => Expr::value(AstValue::Number("-1".into(), false)),
                    Err(_) => Expr::value(AstValue::Null),
                }
            }
            _ => return Ok(None),
        };
        Ok(Some(r))
    }

    fn rewrite_query(&mut self, q: &mut Query) -> Result<(), SqlError> {
        let has_top = matches!(q.body.as_ref(), SetExpr::Select(s) if s.top.is_some());
        if self.depth > 1
            && q.order_by.is_some()
            && !has_top
            && q.limit_clause.is_none()
            && q.fetch.is_none()
        {
            return Err(SqlError::new(
                1033,
                1,
                15,
                "The ORDER BY clause is invalid in views, inline functions, derived tables, subqueries, and common table expressions, unless TOP, OFFSET or FOR XML is also specified.",
            )
            .batch());
        }
        if let Some(with) = &q.with {
            for cte in &with.cte_tables {
                self.ctes.insert(cte.alias.name.value.to_ascii_lowercase());
            }
        }
        let top = match q.body.as_mut() {
            SetExpr::Select(s) => {
                if s.into.is_some() {
                    return Err(SqlError::unsupported("SELECT ... INTO"));
                }
                s.top.take()
            }
            _ => None,
        };
        if let Some(top) = top {
            if top.percent || top.with_ties {
                return Err(SqlError::unsupported("TOP ... PERCENT / WITH TIES"));
            }
            let limit = match top.quantity {
                Some(TopQuantity::Constant(n)) => {
                    Expr::value(AstValue::Number(n.to_string(), false))
                }
                Some(TopQuantity::Expr(e)) => e,
                None => return Err(SqlError::syntax_near("TOP")),
            };
            q.limit_clause = Some(ast::LimitClause::LimitOffset {
                limit: Some(limit),
                offset: None,
                limit_by: vec![],
            });
        }
        if let Some(fetch) = q.fetch.take() {
            if fetch.percent || fetch.with_ties {
                return Err(SqlError::unsupported("FETCH ... PERCENT / WITH TIES"));
            }
            let offset = match q.limit_clause.take() {
                Some(ast::LimitClause::LimitOffset { offset, .. }) => offset,
                _ => None,
            };
            q.limit_clause = Some(ast::LimitClause::LimitOffset {
                limit: fetch.quantity,
                offset,
                limit_by: vec![],
            });
        }
        if let Some(ast::LimitClause::LimitOffset {
            limit,
            offset: Some(o),
            ..
        }) = &mut q.limit_clause
        {
            o.rows = OffsetRows::None;
            if limit.is_none() {
                *limit = Some(Expr::value(AstValue::Number("-1".into(), false)));
            }
        }
        Ok(())
    }
}

/// A string literal that survives being printed: sqlparser prints `''`
/// inside a value as if it were already escaped, so values with quotes or
/// backslashes travel as UTF-8 hex decoded by `__utf8`.
fn string_literal(s: &str) -> Result<Expr, SqlError> {
    if !s.contains(['\'', '\\']) {
        return Ok(Expr::value(AstValue::SingleQuotedString(s.to_string())));
    }
    let hex: String = s.bytes().map(|b| format!("{b:02X}")).collect();
    parse_expr(&format!("__utf8(X'{hex}')"))
}

/// Makes the string literals inside an expression print safely (see
/// [`string_literal`]), for expressions kept as text such as DEFAULTs.
fn safe_literals(e: &mut Expr) -> Result<(), SqlError> {
    let mut err = None;
    let _ = ast::visit_expressions_mut(e, |x| {
        if let Expr::Value(v) = x {
            if let AstValue::NationalStringLiteral(s) | AstValue::SingleQuotedString(s) = &v.value {
                match string_literal(s) {
                    Ok(r) => *x = r,
                    Err(e) => {
                        err = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    });
    err.map_or(Ok(()), Err)
}

fn parse_object_name(text: &str) -> Result<ObjectName, SqlError> {
    Parser::new(&MsSqlDialect {})
        .try_with_sql(text)
        .and_then(|mut p| p.parse_object_name(false))
        .map_err(parser_error)
}

fn physical_object_name(meta: &TableMeta) -> ObjectName {
    if meta.temp {
        ObjectName::from(vec![
            Ident::new("temp"),
            Ident::with_quote('"', meta.name.clone()),
        ])
    } else {
        ObjectName::from(vec![Ident::with_quote(
            '"',
            format!("{}.{}.{}", meta.db, meta.schema, meta.name),
        )])
    }
}

impl VisitorMut for Rewriter<'_, '_> {
    type Break = ();

    fn post_visit_query(&mut self, _q: &mut Query) -> ControlFlow<()> {
        self.depth = self.depth.saturating_sub(1);
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, q: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        match self.rewrite_query(q) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => self.fail(e),
        }
    }

    fn pre_visit_table_factor(&mut self, tf: &mut TableFactor) -> ControlFlow<()> {
        match self.rewrite_table_factor(tf) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => self.fail(e),
        }
    }

    fn post_visit_expr(&mut self, e: &mut Expr) -> ControlFlow<()> {
        match self.rewrite_expr(e) {
            Ok(()) => ControlFlow::Continue(()),
            Err(err) => self.fail(err),
        }
    }
}

fn type_text(dt: &DataType) -> Result<String, SqlError> {
    let text = dt.to_string();
    parse_sql_type(&text).map(|t| t.type_name()).ok_or_else(|| {
        SqlError::new(
            243,
            2,
            16,
            format!("Type {text} is not a defined system type."),
        )
        .batch()
    })
}

/// Rewrites every expression and table reference of a node.
fn rewrite<T: VisitMut>(
    ctx: &Ctx<'_>,
    node: &mut T,
) -> Result<HashMap<String, TableMeta>, SqlError> {
    let mut r = Rewriter::new(ctx);
    let _ = node.visit(&mut r);
    match r.error {
        Some(e) => Err(e),
        None => Ok(r.scope),
    }
}

fn store(expr: &str, col: &ColumnDef, meta: &TableMeta) -> String {
    format!(
        "__store({expr}, {}, {}, {})",
        quote_str(&col.ty.type_name()),
        quote_str(&meta.full_name()),
        quote_str(&col.name)
    )
}

/// Translates one parsed statement.
pub fn plan(ctx: &Ctx<'_>, stmt: Statement, delete_top: Option<String>) -> Result<Plan, SqlError> {
    match stmt {
        Statement::Query(q) if is_assignment_select(&q) => plan_assign(ctx, *q),
        Statement::Query(mut q) => {
            let hints_src = (*q).clone();
            let scope = rewrite(ctx, q.as_mut())?;
            let hints = projection_hints(&hints_src, &scope);
            let unnamed = unnamed_projections(&hints_src);
            Ok(Plan::Query {
                sql: q.to_string(),
                hints,
                unnamed,
            })
        }
        Statement::Insert(ins) => plan_insert(ctx, ins),
        Statement::Update(upd) => plan_update(ctx, upd),
        Statement::Delete(del) => plan_delete(ctx, del, delete_top),
        Statement::Merge(m) => plan_merge(ctx, m),
        Statement::CreateTable(ct) => plan_create_table(ctx, ct),
        Statement::Drop {
            object_type,
            if_exists,
            names,
            ..
        } => match object_type {
            ObjectType::Table => {
                let mut out = Vec::new();
                for n in names {
                    let r = ctx.resolve(&n).ok();
                    out.push((n, r));
                }
                Ok(Plan::DropTables {
                    names: out,
                    if_exists,
                })
            }
            ObjectType::Database => {
                let n = names
                    .first()
                    .map(|n| ident_values(n).join("."))
                    .unwrap_or_default();
                Ok(Plan::DropDatabase(n, if_exists))
            }
            other => Err(SqlError::unsupported(&format!("DROP {other}"))),
        },
        Statement::Truncate(t) => {
            let name = t
                .table_names
                .first()
                .map(|t| t.name.clone())
                .ok_or_else(|| SqlError::syntax_near("TRUNCATE"))?;
            Ok(Plan::Truncate(Box::new(ctx.table(&name)?)))
        }
        Statement::CreateDatabase { db_name, .. } => {
            Ok(Plan::CreateDatabase(ident_values(&db_name).join(".")))
        }
        Statement::CreateSchema { schema_name, .. } => {
            let name = match schema_name {
                ast::SchemaName::Simple(n) => ident_values(&n).join("."),
                ast::SchemaName::UnnamedAuthorization(a) => a.value,
                ast::SchemaName::NamedAuthorization(n, _) => ident_values(&n).join("."),
            };
            Ok(Plan::CreateSchema(name))
        }
        Statement::Use(u) => {
            let text = u.to_string();
            let name = text
                .trim()
                .strip_prefix("USE ")
                .unwrap_or(&text)
                .trim()
                .trim_matches(|c| c == '[' || c == ']' || c == '"')
                .to_string();
            Ok(Plan::Use(name))
        }
        Statement::StartTransaction { .. } => Ok(Plan::Begin),
        Statement::Commit { .. } => Ok(Plan::Commit),
        Statement::Rollback { savepoint, .. } => Ok(Plan::Rollback(savepoint.map(|s| s.value))),
        Statement::Savepoint { name } => Ok(Plan::Save(name.value)),
        Statement::Declare { stmts, .. } => {
            let mut out = Vec::new();
            for d in stmts {
                let ty = d
                    .data_type
                    .as_ref()
                    .ok_or_else(|| SqlError::syntax_near("DECLARE"))
                    .and_then(|t| {
                        parse_sql_type(&t.to_string())
                            .ok_or_else(|| SqlError::unsupported(&format!("variable type {t}")))
                    })?;
                let init = match d.assignment {
                    Some(a) => {
                        let text = a.to_string();
                        let text = text
                            .trim_start_matches('=')
                            .trim_start_matches("DEFAULT")
                            .trim();
                        let mut e = parse_expr(text)?;
                        rewrite(ctx, &mut e)?;
                        Some(e.to_string())
                    }
                    None => None,
                };
                for name in d.names {
                    out.push((name.value.clone(), ty, init.clone()));
                }
            }
            Ok(Plan::Declare(out))
        }
        Statement::Set(set) => plan_set(ctx, set),
        Statement::If(ifs) => {
            if !ifs.elseif_blocks.is_empty() {
                return Err(SqlError::syntax_near("ELSEIF"));
            }
            let mut cond = ifs
                .if_block
                .condition
                .clone()
                .ok_or_else(|| SqlError::syntax_near("IF"))?;
            rewrite(ctx, &mut cond)?;
            Ok(Plan::If {
                cond: cond.to_string(),
                then: ifs.if_block.conditional_statements.statements().clone(),
                otherwise: ifs
                    .else_block
                    .map(|b| b.conditional_statements.statements().clone())
                    .unwrap_or_default(),
            })
        }
        Statement::Execute {
            name: None,
            mut parameters,
            ..
        } => {
            if parameters.len() != 1 {
                return Err(SqlError::syntax_near("EXEC"));
            }
            let mut e = parameters.remove(0);
            rewrite(ctx, &mut e)?;
            Ok(Plan::ExecDynamic(e.to_string()))
        }
        Statement::Execute {
            name: Some(name),
            parameters,
            ..
        } => {
            let proc = ident_values(&name).pop().unwrap_or_default();
            if proc.eq_ignore_ascii_case("sp_tablecollations_100")
                || proc.eq_ignore_ascii_case("sp_tablecollations")
            {
                let arg = parameters
                    .first()
                    .ok_or_else(|| SqlError::syntax_near(&proc))?;
                let text = match arg {
                    Expr::Value(v) => match &v.value {
                        AstValue::NationalStringLiteral(s) | AstValue::SingleQuotedString(s) => {
                            s.clone()
                        }
                        _ => return Err(SqlError::syntax_near(&proc)),
                    },
                    _ => return Err(SqlError::syntax_near(&proc)),
                };
                return Ok(Plan::TableCollations(Box::new(
                    ctx.table(&parse_object_name(&text)?)?,
                )));
            }
            if proc.eq_ignore_ascii_case("sp_describe_first_result_set") {
                let mut tsql = None;
                for (i, p) in parameters.into_iter().enumerate() {
                    let (name, mut e) = match p {
                        Expr::BinaryOp {
                            left,
                            op: ast::BinaryOperator::Eq,
                            right,
                        } if matches!(left.as_ref(), Expr::Identifier(i) if i.value.starts_with('@')) => {
                            (left.to_string().to_ascii_lowercase(), *right)
                        }
                        other => (
                            if i == 0 {
                                "@tsql".into()
                            } else {
                                String::new()
                            },
                            other,
                        ),
                    };
                    if name == "@tsql" {
                        rewrite(ctx, &mut e)?;
                        tsql = Some(e.to_string());
                    }
                }
                let tsql = tsql.ok_or_else(|| {
                    SqlError::new(
                        201,
                        4,
                        16,
                        "Procedure or function 'sp_describe_first_result_set' expects parameter '@tsql', which was not supplied.",
                    )
                })?;
                return Ok(Plan::DescribeFirstResultSet(tsql));
            }
            if !proc.eq_ignore_ascii_case("sp_executesql") {
                return Err(SqlError::new(
                    2812,
                    62,
                    16,
                    format!(
                        "Could not find stored procedure '{}'.",
                        ident_values(&name).join(".")
                    ),
                ));
            }
            let mut parts = Vec::new();
            for p in parameters {
                let (pname, mut e) = match p {
                    Expr::BinaryOp {
                        left,
                        op: ast::BinaryOperator::Eq,
                        right,
                    } if matches!(left.as_ref(), Expr::Identifier(i) if i.value.starts_with('@')) => {
                        (Some(left.to_string()), *right)
                    }
                    other => (None, other),
                };
                rewrite(ctx, &mut e)?;
                parts.push((pname, e.to_string()));
            }
            let mut it = parts.into_iter();
            let stmt = it.next().map(|p| p.1).ok_or_else(|| {
                SqlError::new(
                    201,
                    4,
                    16,
                    "Procedure or function 'sp_executesql' expects parameter '@statement', which was not supplied.",
                )
            })?;
            let decls = it.next().map(|p| p.1);
            Ok(Plan::ExecSql {
                stmt,
                decls,
                args: it.collect(),
            })
        }
        other => {
            let text = other.to_string();
            let head: String = text
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            Err(SqlError::unsupported(&head))
        }
    }
}

fn is_assignment_select(q: &Query) -> bool {
    match q.body.as_ref() {
        SetExpr::Select(s) => {
            !s.projection.is_empty()
                && s.projection.iter().all(|p| {
                    matches!(p, SelectItem::ExprWithAlias { alias, .. } if alias.value.starts_with('@') && !alias.value.starts_with("@@"))
                })
        }
        _ => false,
    }
}

/// Variables inside an expression read their current value through `__var`,
/// so an assignment SELECT sees the value the previous row left.
fn vars_to_calls(e: &mut Expr) -> Result<(), SqlError> {
    let mut err = None;
    let _ = ast::visit_expressions_mut(e, |x| {
        if let Expr::Identifier(id) = x {
            if id.value.starts_with('@') && !id.value.starts_with("@@") {
                match parse_expr(&format!("__var({})", quote_str(&id.value))) {
                    Ok(r) => *x = r,
                    Err(e) => {
                        err = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
        }
        ControlFlow::Continue(())
    });
    err.map_or(Ok(()), Err)
}

fn plan_assign(ctx: &Ctx<'_>, mut q: Query) -> Result<Plan, SqlError> {
    let SetExpr::Select(sel) = q.body.as_mut() else {
        return Err(SqlError::syntax_near("SELECT"));
    };
    let mut sets = Vec::new();
    for item in std::mem::take(&mut sel.projection) {
        let SelectItem::ExprWithAlias { mut expr, alias } = item else {
            continue;
        };
        rewrite(ctx, &mut expr)?;
        vars_to_calls(&mut expr)?;
        sets.push(format!("__setvar({}, {expr})", quote_str(&alias.value)));
    }
    // Rows are produced in ORDER BY order first, then assigned one by one.
    let single = sel.from.len() == 1 && sel.from[0].joins.is_empty();
    sel.projection = vec![SelectItem::Wildcard(
        ast::WildcardAdditionalOptions::default(),
    )];
    let alias = sel.from.first().and_then(|f| factor_alias(&f.relation));
    if sel.from.is_empty() {
        return Ok(Plan::Assign {
            sql: format!("SELECT {}", sets.join(", ")),
        });
    }
    rewrite(ctx, &mut q)?;
    let sql = match (single, alias) {
        (true, Some(a)) => format!(
            "SELECT {} FROM ({q}) AS {}",
            sets.join(", "),
            quote_ident(&a)
        ),
        _ => {
            let text = q.to_string();
            let rest = text.strip_prefix("SELECT *").unwrap_or(&text);
            format!("SELECT {}{rest}", sets.join(", "))
        }
    };
    Ok(Plan::Assign { sql })
}

fn plan_set(ctx: &Ctx<'_>, set: ast::Set) -> Result<Plan, SqlError> {
    let text = set.to_string();
    let words: Vec<&str> = text.split_whitespace().collect();
    match &set {
        ast::Set::SingleAssignment {
            variable, values, ..
        } if variable.to_string().starts_with('@') => {
            let mut e = values
                .first()
                .cloned()
                .ok_or_else(|| SqlError::syntax_near("SET"))?;
            rewrite(ctx, &mut e)?;
            return Ok(Plan::SetVar(variable.to_string(), e.to_string()));
        }
        ast::Set::SetTransaction { .. } => return Ok(Plan::Nothing),
        _ => {}
    }
    let (opt, val) = match words.as_slice() {
        ["SET", opt, val] => (opt.to_ascii_uppercase(), val.to_string()),
        ["SET", opt, "=", val] => (opt.to_ascii_uppercase(), val.to_string()),
        ["SET", opt, rest @ ..] if !rest.is_empty() => (opt.to_ascii_uppercase(), rest.join(" ")),
        _ => return Err(SqlError::syntax_near("SET")),
    };
    Ok(Plan::SetOption(opt, val))
}

fn table_object_name(t: &ast::TableObject) -> Result<ObjectName, SqlError> {
    match t {
        ast::TableObject::TableName(n) => Ok(n.clone()),
        ast::TableObject::TableFunction(_) => Err(SqlError::unsupported("INSERT INTO FUNCTION")),
        #[allow(unreachable_patterns)]
        _ => Err(SqlError::unsupported("INSERT target")),
    }
}

fn plan_insert(ctx: &Ctx<'_>, ins: ast::Insert) -> Result<Plan, SqlError> {
    if ins.output.is_some() || ins.returning.is_some() {
        return Err(SqlError::unsupported("OUTPUT"));
    }
    let name = table_object_name(&ins.table)?;
    let meta = ctx.table(&name)?;
    // Target columns: as listed, or every non-identity column.
    let mut targets: Vec<usize> = Vec::new();
    if ins.columns.is_empty() {
        for (i, c) in meta.columns.iter().enumerate() {
            if c.identity.is_none() || identity_insert_on(ctx, &meta) {
                targets.push(i);
            }
        }
    } else {
        for c in &ins.columns {
            let cname = ident_values(c).pop().unwrap_or_default();
            let (i, col) = meta
                .column(&cname)
                .ok_or_else(|| SqlError::invalid_column(&cname))?;
            if col.identity.is_some() && !identity_insert_on(ctx, &meta) {
                return Err(SqlError::new(
                    544,
                    1,
                    16,
                    format!(
                        "Cannot insert explicit value for identity column in table '{}' when IDENTITY_INSERT is set to OFF.",
                        meta.name
                    ),
                ));
            }
            targets.push(i);
        }
    }
    // Columns left out that have a DEFAULT get it.
    let mut defaults: Vec<(usize, String)> = Vec::new();
    for (i, c) in meta.columns.iter().enumerate() {
        if targets.contains(&i) {
            continue;
        }
        if let Some(d) = &c.default {
            let mut e = parse_expr(d)?;
            rewrite(ctx, &mut e)?;
            defaults.push((i, e.to_string()));
        }
    }
    let col_list: Vec<String> = targets
        .iter()
        .chain(defaults.iter().map(|(i, _)| i))
        .map(|&i| quote_ident(&meta.columns[i].name))
        .collect();
    let default_vals: Vec<String> = defaults
        .iter()
        .map(|(i, e)| store(e, &meta.columns[*i], &meta))
        .collect();
    let Some(mut source) = ins.source else {
        // INSERT ... DEFAULT VALUES
        let sql = if col_list.is_empty() {
            format!("INSERT INTO {} DEFAULT VALUES", meta.physical)
        } else {
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                meta.physical,
                col_list.join(", "),
                default_vals.join(", ")
            )
        };
        return Ok(dml(vec![sql], meta, None));
    };
    let simple_values = source.with.is_none()
        && source.order_by.is_none()
        && source.limit_clause.is_none()
        && matches!(source.body.as_ref(), SetExpr::Values(_));
    if simple_values {
        let SetExpr::Values(values) = source.body.as_mut() else {
            unreachable!("checked above")
        };
        let mut rows = Vec::new();
        let mut probe_rows = Vec::new();
        let pk: Vec<usize> = meta
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.in_pk)
            .map(|(i, _)| i)
            .collect();
        for row in values.rows.iter_mut() {
            if row.len() != targets.len() {
                return Err(insert_count_error(row.len(), targets.len()));
            }
            let mut vals = Vec::new();
            let mut key = Vec::new();
            for (expr, &ti) in row.iter_mut().zip(&targets) {
                rewrite(ctx, expr)?;
                let s = store(&expr.to_string(), &meta.columns[ti], &meta);
                if pk.contains(&ti) {
                    key.push(s.clone());
                }
                vals.push(s);
            }
            if key.len() == pk.len() && !pk.is_empty() {
                probe_rows.push(key.join(", "));
            }
            vals.extend(default_vals.iter().cloned());
            rows.push(format!("({})", vals.join(", ")));
        }
        let sql = format!(
            "INSERT INTO {} ({}) VALUES {}",
            meta.physical,
            col_list.join(", "),
            rows.join(", ")
        );
        let key_probe = (!probe_rows.is_empty()).then(|| {
            let cols: Vec<String> = pk.iter().map(|&i| quote_ident(&meta.columns[i].name)).collect();
            format!(
                "WITH k({cols}) AS (VALUES {rows}) SELECT {kcols} FROM k WHERE EXISTS (SELECT 1 FROM {table} AS t WHERE {cond}) LIMIT 1",
                cols = cols.join(", "),
                rows = probe_rows.iter().map(|r| format!("({r})")).collect::<Vec<_>>().join(", "),
                kcols = cols.iter().map(|c| format!("k.{c}")).collect::<Vec<_>>().join(", "),
                table = meta.physical,
                cond = cols.iter().map(|c| format!("t.{c} = k.{c}")).collect::<Vec<_>>().join(" AND "),
            )
        });
        return Ok(dml(vec![sql], meta, key_probe));
    }
    rewrite(ctx, source.as_mut())?;
    let src_cols: Vec<String> = (1..=targets.len()).map(|i| format!("__c{i}")).collect();
    let stores: Vec<String> = targets
        .iter()
        .zip(&src_cols)
        .map(|(&ti, c)| store(c, &meta.columns[ti], &meta))
        .chain(default_vals.iter().cloned())
        .collect();
    let sql = format!(
        "WITH __src({}) AS ({}) INSERT INTO {} ({}) SELECT {} FROM __src",
        src_cols.join(", "),
        source,
        meta.physical,
        col_list.join(", "),
        stores.join(", ")
    );
    Ok(dml(vec![sql], meta, None))
}

fn insert_count_error(got: usize, want: usize) -> SqlError {
    if got > want {
        SqlError::new(
            110,
            1,
            15,
            "There are more columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
        )
        .batch()
    } else {
        SqlError::new(
            109,
            1,
            15,
            "There are fewer columns in the INSERT statement than values specified in the VALUES clause. The number of values in the VALUES clause must match the number of columns specified in the INSERT statement.",
        )
        .batch()
    }
}

fn identity_insert_on(ctx: &Ctx<'_>, meta: &TableMeta) -> bool {
    ctx.identity_insert
        .map(|t| t.eq_ignore_ascii_case(&meta.full_name()))
        .unwrap_or(false)
}

fn dml(sqls: Vec<String>, meta: TableMeta, key_probe: Option<String>) -> Plan {
    Plan::Dml {
        sqls,
        setup: vec![],
        cleanup: vec![],
        target: Box::new(meta),
        key_probe,
    }
}

fn factor_alias(tf: &TableFactor) -> Option<String> {
    match tf {
        TableFactor::Table { name, alias, .. } => Some(
            alias
                .as_ref()
                .map(|a| a.name.value.clone())
                .unwrap_or_else(|| ident_values(name).pop().unwrap_or_default()),
        ),
        TableFactor::Derived { alias, .. } => alias.as_ref().map(|a| a.name.value.clone()),
        _ => None,
    }
}

fn factor_matches(tf: &TableFactor, target: &[String]) -> bool {
    let TableFactor::Table { name, alias, .. } = tf else {
        return false;
    };
    if target.len() == 1 {
        if let Some(a) = alias {
            return a.name.value.eq_ignore_ascii_case(&target[0]);
        }
    }
    let parts = ident_values(name);
    parts.len() >= target.len()
        && parts[parts.len() - target.len()..]
            .iter()
            .zip(target)
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
}

fn join_condition(op: &JoinOperator) -> Result<Option<Expr>, SqlError> {
    let c = match op {
        JoinOperator::Join(c) | JoinOperator::Inner(c) => c,
        JoinOperator::CrossJoin(c) => c,
        _ => {
            return Err(SqlError::unsupported(
                "outer joins in UPDATE/DELETE ... FROM",
            ))
        }
    };
    match c {
        JoinConstraint::On(e) => Ok(Some(e.clone())),
        JoinConstraint::None => Ok(None),
        _ => Err(SqlError::unsupported("USING/NATURAL joins")),
    }
}

/// The target table of an UPDATE/DELETE, the other FROM tables, and the
/// join conditions that tied the target in.
type SplitFrom = (Option<TableFactor>, Vec<TableWithJoins>, Vec<Expr>);

/// Splits a FROM list into the target table (found by `target` alias/name)
/// and the rest, moving the target's join condition into `extra_where`.
fn split_target(from: Vec<TableWithJoins>, target: &[String]) -> Result<SplitFrom, SqlError> {
    let mut found = None;
    let mut rest = Vec::new();
    let mut conds = Vec::new();
    for mut twj in from {
        if found.is_none() && factor_matches(&twj.relation, target) {
            found = Some(twj.relation);
            if twj.joins.is_empty() {
                continue;
            }
            let first = twj.joins.remove(0);
            if let Some(c) = join_condition(&first.join_operator)? {
                conds.push(c);
            }
            rest.push(TableWithJoins {
                relation: first.relation,
                joins: twj.joins,
            });
            continue;
        }
        if found.is_none() {
            if let Some(pos) = twj
                .joins
                .iter()
                .position(|j| factor_matches(&j.relation, target))
            {
                let j = twj.joins.remove(pos);
                if let Some(c) = join_condition(&j.join_operator)? {
                    conds.push(c);
                }
                found = Some(j.relation);
            }
        }
        rest.push(twj);
    }
    Ok((found, rest, conds))
}

fn and_all(parts: Vec<String>) -> Option<String> {
    if parts.is_empty() {
        None
    } else {
        Some(
            parts
                .into_iter()
                .map(|p| format!("({p})"))
                .collect::<Vec<_>>()
                .join(" AND "),
        )
    }
}

fn plan_update(ctx: &Ctx<'_>, upd: ast::Update) -> Result<Plan, SqlError> {
    if upd.output.is_some() || upd.returning.is_some() {
        return Err(SqlError::unsupported("OUTPUT"));
    }
    let TableFactor::Table {
        name: tname,
        alias: talias,
        ..
    } = &upd.table.relation
    else {
        return Err(SqlError::unsupported("UPDATE of a derived table"));
    };
    let target_parts = ident_values(tname);
    let from: Vec<TableWithJoins> = match upd.from {
        Some(ast::UpdateTableFromKind::BeforeSet(f))
        | Some(ast::UpdateTableFromKind::AfterSet(f)) => f,
        None => vec![],
    };
    let (found, mut rest, conds) = split_target(from, &target_parts)?;
    let (target_factor, alias) = match found {
        Some(f) => {
            let a = factor_alias(&f);
            (f, a)
        }
        None => (
            upd.table.relation.clone(),
            talias.as_ref().map(|a| a.name.value.clone()),
        ),
    };
    let TableFactor::Table {
        name: real_name, ..
    } = &target_factor
    else {
        return Err(SqlError::unsupported("UPDATE of a derived table"));
    };
    let meta = ctx.table(real_name)?;
    let alias = alias.unwrap_or_else(|| meta.name.clone());
    for twj in rest.iter_mut() {
        rewrite(ctx, twj)?;
    }
    let mut sets = Vec::new();
    for mut a in upd.assignments {
        let col = match &a.target {
            AssignmentTarget::ColumnName(n) => ident_values(n).pop().unwrap_or_default(),
            AssignmentTarget::Tuple(_) => return Err(SqlError::unsupported("tuple assignment")),
        };
        let (_, cdef) = meta
            .column(&col)
            .ok_or_else(|| SqlError::invalid_column(&col))?;
        if cdef.identity.is_some() {
            return Err(SqlError::new(
                8102,
                1,
                16,
                format!("Cannot update identity column '{}'.", cdef.name),
            ));
        }
        rewrite(ctx, &mut a.value)?;
        sets.push(format!(
            "{} = {}",
            quote_ident(&cdef.name),
            store(&a.value.to_string(), cdef, &meta)
        ));
    }
    let mut wheres = Vec::new();
    for mut c in conds {
        rewrite(ctx, &mut c)?;
        wheres.push(c.to_string());
    }
    if let Some(mut s) = upd.selection {
        rewrite(ctx, &mut s)?;
        wheres.push(s.to_string());
    }
    let mut sql = format!(
        "UPDATE {} AS {} SET {}",
        meta.physical,
        quote_ident(&alias),
        sets.join(", ")
    );
    if !rest.is_empty() {
        sql.push_str(" FROM ");
        sql.push_str(
            &rest
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(w) = and_all(wheres) {
        sql.push_str(" WHERE ");
        sql.push_str(&w);
    }
    Ok(dml(vec![sql], meta, None))
}

fn plan_delete(ctx: &Ctx<'_>, del: ast::Delete, top: Option<String>) -> Result<Plan, SqlError> {
    if del.output.is_some() || del.returning.is_some() {
        return Err(SqlError::unsupported("OUTPUT"));
    }
    let from = match del.from {
        FromTable::WithFromKeyword(f) | FromTable::WithoutKeyword(f) => f,
    };
    let mut from = from;
    if let Some(using) = del.using {
        from.extend(using);
    }
    // `DELETE t FROM ...` names the target before FROM; otherwise the first FROM table is.
    let target_parts = match del.tables.first() {
        Some(n) => ident_values(n),
        None => match from.first().map(|t| &t.relation) {
            Some(TableFactor::Table { name, alias, .. }) => match alias {
                Some(a) => vec![a.name.value.clone()],
                None => ident_values(name),
            },
            _ => return Err(SqlError::syntax_near("DELETE")),
        },
    };
    let single = from.len() == 1 && from[0].joins.is_empty();
    let (found, _, _) = split_target(from.clone(), &target_parts)?;
    let target_factor = match found {
        Some(f) => f,
        None if del.tables.len() == 1 && from.is_empty() => TableFactor::Table {
            name: del.tables[0].clone(),
            alias: None,
            args: None,
            with_hints: vec![],
            version: None,
            with_ordinality: false,
            partitions: vec![],
            json_path: None,
            sample: None,
            index_hints: vec![],
        },
        None => {
            // `DELETE FROM x` where x is the target of a later FROM list.
            let n = ObjectName::from(
                target_parts
                    .iter()
                    .map(|p| Ident::new(p.clone()))
                    .collect::<Vec<_>>(),
            );
            TableFactor::Table {
                name: n,
                alias: None,
                args: None,
                with_hints: vec![],
                version: None,
                with_ordinality: false,
                partitions: vec![],
                json_path: None,
                sample: None,
                index_hints: vec![],
            }
        }
    };
    let TableFactor::Table {
        name: real_name, ..
    } = &target_factor
    else {
        return Err(SqlError::unsupported("DELETE from a derived table"));
    };
    let meta = ctx.table(real_name)?;
    let alias = factor_alias(&target_factor).unwrap_or_else(|| meta.name.clone());
    let mut selection = del.selection;
    let limit = top.map(|t| format!(" LIMIT {t}")).unwrap_or_default();
    let sql = if single && del.tables.len() <= 1 {
        let mut w = match selection.as_mut() {
            Some(s) => {
                let mut scope_from = from.clone();
                rewrite(ctx, &mut scope_from)?;
                rewrite(ctx, s)?;
                Some(s.to_string())
            }
            None => None,
        };
        if !limit.is_empty() {
            let inner = format!(
                "SELECT rowid FROM {} AS {}{}{}",
                meta.physical,
                quote_ident(&alias),
                w.as_ref()
                    .map(|w| format!(" WHERE {w}"))
                    .unwrap_or_default(),
                limit
            );
            w = Some(format!("rowid IN ({inner})"));
        }
        format!(
            "DELETE FROM {} AS {}{}",
            meta.physical,
            quote_ident(&alias),
            w.map(|w| format!(" WHERE {w}")).unwrap_or_default()
        )
    } else {
        let mut from = from;
        for t in from.iter_mut() {
            rewrite(ctx, t)?;
        }
        if let Some(s) = selection.as_mut() {
            rewrite(ctx, s)?;
        }
        format!(
            "DELETE FROM {} WHERE rowid IN (SELECT {}.rowid FROM {}{}{})",
            meta.physical,
            quote_ident(&alias),
            from.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            selection.map(|s| format!(" WHERE {s}")).unwrap_or_default(),
            limit
        )
    };
    Ok(dml(vec![sql], meta, None))
}

fn plan_merge(ctx: &Ctx<'_>, m: ast::Merge) -> Result<Plan, SqlError> {
    if m.output.is_some() {
        return Err(SqlError::unsupported("OUTPUT"));
    }
    let TableFactor::Table { name, alias, .. } = &m.table else {
        return Err(SqlError::unsupported("MERGE into a derived table"));
    };
    let meta = ctx.table(name)?;
    let talias = alias
        .as_ref()
        .map(|a| a.name.value.clone())
        .unwrap_or_else(|| meta.name.clone());
    // Materialise the source first, so every clause sees the rows as they were.
    let mut source = m.source.clone();
    let salias = factor_alias(&source).ok_or_else(|| SqlError::syntax_near("USING"))?;
    let src_cols: Vec<Ident> = match &source {
        TableFactor::Derived { alias: Some(a), .. } => {
            a.columns.iter().map(|c| c.name.clone()).collect()
        }
        _ => vec![],
    };
    if let TableFactor::Derived { alias: Some(a), .. } = &mut source {
        a.columns.clear();
    }
    rewrite(ctx, &mut source)?;
    let src_sql = match &source {
        TableFactor::Table { name, .. } => format!("SELECT * FROM {name}"),
        TableFactor::Derived { subquery, .. } => subquery.to_string(),
        _ => return Err(SqlError::unsupported("MERGE source")),
    };
    let tmp = "temp.\"__merge_src\"".to_string();
    let mut setup = vec![format!("DROP TABLE IF EXISTS {tmp}")];
    if src_cols.is_empty() {
        setup.push(format!("CREATE TABLE {tmp} AS {src_sql}"));
    } else {
        let cols: Vec<String> = src_cols.iter().map(|c| quote_ident(&c.value)).collect();
        setup.push(format!("CREATE TABLE {tmp} ({})", cols.join(", ")));
        setup.push(format!("INSERT INTO {tmp} {src_sql}"));
    }
    let mut on = (*m.on).clone();
    rewrite(ctx, &mut on)?;
    let on = on.to_string();
    let qt = quote_ident(&talias);
    let qs = quote_ident(&salias);
    // Rows of the source with no match, captured before anything changes.
    setup.push("DROP TABLE IF EXISTS temp.\"__merge_new\"".into());
    setup.push(format!(
        "CREATE TABLE temp.\"__merge_new\" AS SELECT * FROM {tmp} AS {qs} WHERE NOT EXISTS (SELECT 1 FROM {} AS {qt} WHERE {on})",
        meta.physical
    ));
    let mut sqls = Vec::new();
    for clause in m.clauses {
        let pred = match clause.predicate {
            Some(mut p) => {
                rewrite(ctx, &mut p)?;
                Some(p.to_string())
            }
            None => None,
        };
        match (clause.clause_kind, clause.action) {
            (MergeClauseKind::Matched, MergeAction::Update(u)) => {
                let mut sets = Vec::new();
                let ast::MergeUpdateKind::Set(assignments) = u.kind else {
                    return Err(SqlError::unsupported("MERGE ... UPDATE SET *"));
                };
                for mut a in assignments {
                    let col = match &a.target {
                        AssignmentTarget::ColumnName(n) => {
                            ident_values(n).pop().unwrap_or_default()
                        }
                        AssignmentTarget::Tuple(_) => {
                            return Err(SqlError::unsupported("tuple assignment"))
                        }
                    };
                    let (_, cdef) = meta
                        .column(&col)
                        .ok_or_else(|| SqlError::invalid_column(&col))?;
                    rewrite(ctx, &mut a.value)?;
                    sets.push(format!(
                        "{} = {}",
                        quote_ident(&cdef.name),
                        store(&a.value.to_string(), cdef, &meta)
                    ));
                }
                let w = and_all([Some(on.clone()), pred].into_iter().flatten().collect())
                    .unwrap_or_default();
                sqls.push(format!(
                    "UPDATE {} AS {qt} SET {} FROM {tmp} AS {qs} WHERE {w}",
                    meta.physical,
                    sets.join(", ")
                ));
            }
            (MergeClauseKind::Matched, MergeAction::Delete { .. }) => {
                let w = and_all([Some(on.clone()), pred].into_iter().flatten().collect())
                    .unwrap_or_default();
                sqls.push(format!(
                    "DELETE FROM {} WHERE rowid IN (SELECT {qt}.rowid FROM {} AS {qt} JOIN {tmp} AS {qs} ON {w})",
                    meta.physical, meta.physical
                ));
            }
            (
                MergeClauseKind::NotMatched | MergeClauseKind::NotMatchedByTarget,
                MergeAction::Insert(ins),
            ) => {
                let cols: Vec<String> = if ins.columns.is_empty() {
                    meta.columns
                        .iter()
                        .filter(|c| c.identity.is_none())
                        .map(|c| c.name.clone())
                        .collect()
                } else {
                    ins.columns
                        .iter()
                        .map(|c| ident_values(c).pop().unwrap_or_default())
                        .collect()
                };
                let MergeInsertKind::Values(values) = ins.kind else {
                    return Err(SqlError::unsupported("MERGE ... INSERT ROW"));
                };
                let row = values
                    .rows
                    .into_iter()
                    .next()
                    .map(|p| p.content)
                    .unwrap_or_default();
                if row.len() != cols.len() {
                    return Err(insert_count_error(row.len(), cols.len()));
                }
                let mut vals = Vec::new();
                let mut names = Vec::new();
                for (mut e, c) in row.into_iter().zip(&cols) {
                    let (_, cdef) = meta.column(c).ok_or_else(|| SqlError::invalid_column(c))?;
                    rewrite(ctx, &mut e)?;
                    vals.push(store(&e.to_string(), cdef, &meta));
                    names.push(quote_ident(&cdef.name));
                }
                sqls.push(format!(
                    "INSERT INTO {} ({}) SELECT {} FROM temp.\"__merge_new\" AS {qs}{}",
                    meta.physical,
                    names.join(", "),
                    vals.join(", "),
                    pred.map(|p| format!(" WHERE {p}")).unwrap_or_default()
                ));
            }
            (MergeClauseKind::NotMatchedBySource, MergeAction::Delete { .. }) => {
                sqls.push(format!(
                    "DELETE FROM {} AS {qt} WHERE NOT EXISTS (SELECT 1 FROM {tmp} AS {qs} WHERE {on}){}",
                    meta.physical,
                    pred.map(|p| format!(" AND ({p})")).unwrap_or_default()
                ));
            }
            (kind, _) => return Err(SqlError::unsupported(&format!("MERGE WHEN {kind}"))),
        }
    }
    Ok(Plan::Dml {
        sqls,
        setup,
        cleanup: vec![
            format!("DROP TABLE IF EXISTS {tmp}"),
            "DROP TABLE IF EXISTS temp.\"__merge_new\"".into(),
        ],
        target: Box::new(meta),
        key_probe: None,
    })
}

fn plan_create_table(ctx: &Ctx<'_>, ct: ast::CreateTable) -> Result<Plan, SqlError> {
    if ct.query.is_some() {
        return Err(SqlError::unsupported("CREATE TABLE AS"));
    }
    let (db, schema, name, temp) = match ctx.resolve(&ct.name)? {
        Resolved::Temp(t) => (String::from("tempdb"), String::from("dbo"), t, true),
        Resolved::Table { db, schema, name } => {
            if !catalog::schema_exists(ctx.conn, &db, &schema)? {
                return Err(SqlError::new(
                    2760,
                    1,
                    16,
                    format!("The specified schema name \"{schema}\" either does not exist or you do not have permission to use it."),
                ));
            }
            (db, schema, name, false)
        }
    };
    let mut columns = Vec::new();
    let mut pk_name = None;
    for c in &ct.columns {
        let ty_text = c.data_type.to_string();
        let ty = parse_sql_type(&ty_text).ok_or_else(|| {
            SqlError::new(
                2715,
                6,
                16,
                format!(
                    "Column, parameter, or variable #{}: Cannot find data type {ty_text}.",
                    columns.len() + 1
                ),
            )
            .batch()
        })?;
        let mut def = ColumnDef {
            name: c.name.value.clone(),
            ty,
            nullable: true,
            identity: None,
            default: None,
            in_pk: false,
        };
        for o in &c.options {
            match &o.option {
                ColumnOption::Null => def.nullable = true,
                ColumnOption::NotNull => def.nullable = false,
                ColumnOption::Default(e) => {
                    let mut e = e.clone();
                    safe_literals(&mut e)?;
                    def.default = Some(e.to_string());
                }
                ColumnOption::PrimaryKey(_) => {
                    def.in_pk = true;
                    def.nullable = false;
                    if let Some(n) = &o.name {
                        pk_name = Some(n.value.clone());
                    }
                }
                ColumnOption::Unique(_) => {}
                ColumnOption::Identity(kind) => {
                    let (seed, inc) = identity_params(kind);
                    def.identity = Some((seed, inc));
                    def.nullable = false;
                }
                ColumnOption::Collation(_) | ColumnOption::Check(_) | ColumnOption::Comment(_) => {}
                ColumnOption::DialectSpecific(tokens) => {
                    let text: String = tokens
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(" ");
                    if text.to_ascii_uppercase().contains("IDENTITY") {
                        def.identity = Some((1, 1));
                        def.nullable = false;
                    }
                }
                other => {
                    return Err(SqlError::unsupported(&format!("column option {other}")));
                }
            }
        }
        columns.push(def);
    }
    for tc in &ct.constraints {
        match tc {
            TableConstraint::PrimaryKey(pk) => {
                if let Some(n) = &pk.name {
                    pk_name = Some(n.value.clone());
                }
                for ic in &pk.columns {
                    let cname = ic.column.expr.to_string();
                    let cname = cname.trim_matches(|c| c == '[' || c == ']' || c == '"');
                    let col = columns
                        .iter_mut()
                        .find(|c| c.name.eq_ignore_ascii_case(cname))
                        .ok_or_else(|| {
                            SqlError::new(
                                1911,
                                1,
                                16,
                                format!("Column name '{cname}' does not exist in the target table or view."),
                            )
                        })?;
                    col.in_pk = true;
                    col.nullable = false;
                }
            }
            TableConstraint::Unique(_)
            | TableConstraint::Check(_)
            | TableConstraint::ForeignKey(_) => {}
            other => return Err(SqlError::unsupported(&format!("constraint {other}"))),
        }
    }
    if columns.iter().any(|c| c.in_pk) && pk_name.is_none() {
        pk_name = Some(format!(
            "PK__{}__{:016X}",
            name.chars().take(8).collect::<String>(),
            fxhash(&name)
        ));
    }
    let physical = if temp {
        format!("temp.{}", quote_ident(&name))
    } else {
        physical_name(&db, &schema, &name)
    };
    Ok(Plan::CreateTable(Box::new(TableMeta {
        db,
        schema,
        name,
        physical,
        columns,
        pk_name,
        temp,
    })))
}

fn identity_params(kind: &ast::IdentityPropertyKind) -> (i64, i64) {
    let prop = match kind {
        ast::IdentityPropertyKind::Autoincrement(p) | ast::IdentityPropertyKind::Identity(p) => p,
    };
    match &prop.parameters {
        Some(ast::IdentityPropertyFormatKind::FunctionCall(p))
        | Some(ast::IdentityPropertyFormatKind::StartAndIncrement(p)) => (
            p.seed.to_string().parse().unwrap_or(1),
            p.increment.to_string().parse().unwrap_or(1),
        ),
        None => (1, 1),
    }
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Types the SQL text itself gives each projected column, where it does.
fn unnamed_projections(q: &Query) -> Vec<usize> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return vec![];
    };
    if s.projection.iter().any(|p| {
        !matches!(
            p,
            SelectItem::UnnamedExpr(_) | SelectItem::ExprWithAlias { .. }
        )
    }) {
        return vec![];
    }
    s.projection
        .iter()
        .enumerate()
        .filter(|(_, p)| match p {
            SelectItem::UnnamedExpr(Expr::Identifier(i)) => i.value.starts_with('@'),
            SelectItem::UnnamedExpr(Expr::CompoundIdentifier(_)) => false,
            SelectItem::UnnamedExpr(_) => true,
            _ => false,
        })
        .map(|(i, _)| i)
        .collect()
}

fn projection_hints(q: &Query, scope: &HashMap<String, TableMeta>) -> Option<Vec<Option<SqlType>>> {
    let SetExpr::Select(s) = q.body.as_ref() else {
        return None;
    };
    let mut out = Vec::new();
    for item in &s.projection {
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => {
                out.push(expr_hint(e, scope))
            }
            _ => return None,
        }
    }
    Some(out)
}

fn column_type(parts: &[Ident], scope: &HashMap<String, TableMeta>) -> Option<SqlType> {
    match parts {
        [c] => {
            let mut found = None;
            for meta in scope.values() {
                if let Some((_, col)) = meta.column(&c.value) {
                    if found.is_some() {
                        return None;
                    }
                    found = Some(col.ty);
                }
            }
            found
        }
        [.., t, c] => scope
            .get(&t.value.to_ascii_lowercase())
            .and_then(|m| m.column(&c.value))
            .map(|(_, col)| col.ty),
        [] => None,
    }
}

fn expr_hint(e: &Expr, scope: &HashMap<String, TableMeta>) -> Option<SqlType> {
    match e {
        Expr::Nested(inner) => expr_hint(inner, scope),
        Expr::Identifier(i) => {
            if i.value.starts_with("@@") {
                return match i.value.to_ascii_uppercase().as_str() {
                    "@@VERSION" | "@@SERVERNAME" | "@@LANGUAGE" => {
                        Some(SqlType::NVarChar(Len::N(300)))
                    }
                    "@@SPID" => Some(SqlType::SmallInt),
                    _ => Some(SqlType::Int),
                };
            }
            column_type(std::slice::from_ref(i), scope)
        }
        Expr::CompoundIdentifier(parts) => column_type(parts, scope),
        Expr::Cast { data_type, .. } => parse_sql_type(&data_type.to_string()),
        Expr::Convert {
            data_type: Some(dt),
            ..
        } => parse_sql_type(&dt.to_string()),
        Expr::Value(v) => match &v.value {
            AstValue::Number(n, _) => {
                if let Ok(i) = n.parse::<i64>() {
                    Some(if i32::try_from(i).is_ok() {
                        SqlType::Int
                    } else {
                        SqlType::Decimal {
                            precision: n.trim_start_matches('-').len().max(1) as u8,
                            scale: 0,
                            numeric: true,
                        }
                    })
                } else if n.contains(['e', 'E']) {
                    Some(SqlType::Float)
                } else {
                    let digits = n.trim_start_matches('-').replace('.', "");
                    let scale = n.split('.').nth(1).map(str::len).unwrap_or(0);
                    let p = digits.trim_start_matches('0').len().max(scale).max(1);
                    (p <= 38).then_some(SqlType::Decimal {
                        precision: p as u8,
                        scale: scale as u8,
                        numeric: true,
                    })
                }
            }
            AstValue::SingleQuotedString(s) => Some(SqlType::VarChar(Len::N(
                s.chars().count().clamp(1, 8000) as u16,
            ))),
            AstValue::NationalStringLiteral(s) => Some(SqlType::NVarChar(Len::N(
                s.encode_utf16().count().clamp(1, 4000) as u16,
            ))),
            AstValue::Null => Some(SqlType::Int),
            _ => None,
        },
        Expr::Function(f) => {
            let name = f.name.to_string().to_ascii_uppercase();
            let first = match &f.args {
                FunctionArguments::List(l) => l.args.first().and_then(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e),
                    _ => None,
                }),
                _ => None,
            };
            let arg_ty = first.and_then(|e| expr_hint(e, scope));
            match name.as_str() {
                "GETDATE" | "GETUTCDATE" | "CURRENT_TIMESTAMP" => Some(SqlType::DateTime),
                "SYSDATETIME" | "SYSUTCDATETIME" => Some(SqlType::DateTime2(7)),
                "SYSDATETIMEOFFSET" => Some(SqlType::DateTimeOffset(7)),
                "NEWID" => Some(SqlType::UniqueIdentifier),
                "COUNT" | "LEN" | "DATALENGTH" | "DATEPART" | "YEAR" | "MONTH" | "DAY"
                | "DATEDIFF" | "CHARINDEX" => Some(SqlType::Int),
                "COUNT_BIG" | "DATEDIFF_BIG" => Some(SqlType::BigInt),
                "MIN" | "MAX" | "ISNULL" | "COALESCE" | "UPPER" | "LOWER" | "LTRIM" | "RTRIM"
                | "TRIM" => arg_ty,
                "DATEADD" => match &f.args {
                    FunctionArguments::List(l) => l.args.get(2).and_then(|a| match a {
                        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => expr_hint(e, scope),
                        _ => None,
                    }),
                    _ => None,
                },
                "SUM" => arg_ty.map(|t| match t {
                    SqlType::TinyInt | SqlType::SmallInt | SqlType::Int => SqlType::Int,
                    SqlType::Decimal { scale, numeric, .. } => SqlType::Decimal {
                        precision: 38,
                        scale,
                        numeric,
                    },
                    SqlType::Real => SqlType::Float,
                    other => other,
                }),
                "AVG" => arg_ty.map(|t| match t {
                    SqlType::TinyInt | SqlType::SmallInt | SqlType::Int => SqlType::Int,
                    SqlType::Decimal { scale, numeric, .. } => SqlType::Decimal {
                        precision: 38,
                        scale: scale.max(6),
                        numeric,
                    },
                    SqlType::Real => SqlType::Float,
                    other => other,
                }),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Splits a script into batches at `GO` lines, as sqlcmd and SSMS do.
pub fn split_go(script: &str) -> Vec<String> {
    let mut batches = Vec::new();
    let mut cur = String::new();
    for line in script.lines() {
        let t = line.trim();
        let is_go = t.len() >= 2
            && t[..2].eq_ignore_ascii_case("GO")
            && t[2..]
                .trim()
                .chars()
                .all(|c| c.is_ascii_digit() || c == ';');
        if is_go {
            let count: usize = t[2..].trim().trim_end_matches(';').parse().unwrap_or(1);
            if !cur.trim().is_empty() {
                for _ in 0..count.max(1) {
                    batches.push(cur.clone());
                }
            }
            cur.clear();
        } else {
            cur.push_str(line);
            cur.push('\n');
        }
    }
    if !cur.trim().is_empty() {
        batches.push(cur);
    }
    batches
}
