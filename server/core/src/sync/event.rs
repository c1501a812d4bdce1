//! A sync event: one row of the events table, and what it asks for.

use crate::auth::TableName;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Insert,
    Update,
    Delete,
    Upsert,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "INSERT" => Operation::Insert,
            "UPDATE" => Operation::Update,
            "DELETE" => Operation::Delete,
            "UPSERT" | "MERGE" => Operation::Upsert,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "INSERT",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Upsert => "UPSERT",
        }
    }

    /// Whether rows are matched to the target by primary key.
    pub fn needs_keys(self) -> bool {
        !matches!(self, Operation::Insert)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl EventStatus {
    pub fn parse(s: &str) -> Option<EventStatus> {
        Some(match s {
            "pending" => EventStatus::Pending,
            "processing" => EventStatus::Processing,
            "completed" => EventStatus::Completed,
            "failed" => EventStatus::Failed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            EventStatus::Pending => "pending",
            EventStatus::Processing => "processing",
            EventStatus::Completed => "completed",
            EventStatus::Failed => "failed",
        }
    }
}

/// A row of the events table, as stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncEvent {
    pub event_id: String,
    /// INSERT, UPDATE, DELETE or UPSERT, as written (checked when applied).
    pub operation: String,
    /// The Databricks table read: catalog.schema.table.
    pub source_table: String,
    /// The SQL Server table written: schema.table or database.schema.table.
    pub target_table: String,
    pub primary_keys: Vec<String>,
    /// A Databricks SQL condition on the source rows (events written in
    /// Databricks only).
    pub filter: Option<String>,
    /// The columns to copy; all of the source's when absent.
    pub columns: Option<Vec<String>>,
    /// A user of permissions.yaml; needs `write` on the target.
    pub requested_by: Option<String>,
    pub status: EventStatus,
    pub rows_expected: Option<i64>,
    pub rows_affected: Option<i64>,
    /// rows_expected − rows_affected when they differ (reported, not fatal).
    pub discrepancy: Option<i64>,
    pub error_message: Option<String>,
    pub attempts: Option<i64>,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<String>,
    pub created_at: Option<String>,
    pub completed_at: Option<String>,
}

impl SyncEvent {
    /// An event for a direct apply (CLI `sync apply`, `BridgeOperator`):
    /// never stored in the events table, ledgered under a fresh id.
    pub fn direct(
        operation: &str,
        source_table: &str,
        target_table: &str,
        primary_keys: Vec<String>,
    ) -> SyncEvent {
        SyncEvent {
            event_id: format!("direct-{}", uuid::Uuid::new_v4()),
            operation: operation.to_string(),
            source_table: source_table.to_string(),
            target_table: target_table.to_string(),
            primary_keys,
            filter: None,
            columns: None,
            requested_by: None,
            status: EventStatus::Processing,
            rows_expected: None,
            rows_affected: None,
            discrepancy: None,
            error_message: None,
            attempts: None,
            claimed_by: None,
            claimed_at: None,
            created_at: None,
            completed_at: None,
        }
    }
}

/// Why an event cannot be applied; it fails with this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

/// A Databricks table name, `catalog.schema.table`, each part a plain or
/// backquoted identifier.
pub fn source_name(text: &str) -> Result<String, Refusal> {
    let parts = crate::databricks::names::split_dotted(text)
        .ok_or_else(|| Refusal(format!("source table '{text}' is not catalog.schema.table")))?;
    if parts.len() != 3 {
        return Err(Refusal(format!(
            "source table '{text}' must be catalog.schema.table (three parts)"
        )));
    }
    Ok(parts
        .iter()
        .map(|p| format!("`{}`", p.replace('`', "``")))
        .collect::<Vec<_>>()
        .join("."))
}

/// A SQL Server table, `schema.table` or `database.schema.table`, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetTable {
    pub database: Option<String>,
    pub schema: String,
    pub table: String,
}

/// `[name]`, with `]` doubled.
pub fn bracket(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

impl TargetTable {
    pub fn parse(text: &str) -> Result<TargetTable, Refusal> {
        let bad = || {
            Refusal(format!(
                "target table '{text}' must be schema.table or database.schema.table \
                 (a part with a space or a dot in brackets: dbo.[my table])"
            ))
        };
        let parts = crate::sqlserver::names::split_name(text).ok_or_else(bad)?;
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(bad());
        }
        match parts.as_slice() {
            [s, t] => Ok(TargetTable {
                database: None,
                schema: s.clone(),
                table: t.clone(),
            }),
            [d, s, t] => Ok(TargetTable {
                database: Some(d.clone()),
                schema: s.clone(),
                table: t.clone(),
            }),
            _ => Err(bad()),
        }
    }

    /// `[db].` or nothing: where the target's catalog views and the ledger are.
    pub fn database_prefix(&self) -> String {
        self.database
            .as_deref()
            .map(|d| format!("{}.", bracket(d)))
            .unwrap_or_default()
    }

    pub fn quoted(&self) -> String {
        format!(
            "{}{}.{}",
            self.database_prefix(),
            bracket(&self.schema),
            bracket(&self.table)
        )
    }

    /// The name permissions.yaml grants are matched against.
    pub fn permission_name(&self) -> TableName {
        TableName {
            database: self.database.as_ref().map(|d| d.to_lowercase()),
            schema: self.schema.to_lowercase(),
            table: self.table.to_lowercase(),
        }
    }
}

impl std::fmt::Display for TargetTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(d) = &self.database {
            write!(f, "{d}.")?;
        }
        write!(f, "{}.{}", self.schema, self.table)
    }
}

/// A column name for either system: letters, digits, `_`, spaces and a
/// few symbols — never a quote or bracket, so quoting it is always safe.
pub fn column_name(name: &str) -> Result<String, Refusal> {
    let ok = !name.trim().is_empty()
        && name.len() <= 128
        && !name
            .chars()
            .any(|c| matches!(c, '`' | '[' | ']' | '"' | '\'' | ';') || c.is_control());
    if ok {
        Ok(name.to_string())
    } else {
        Err(Refusal(format!("'{name}' is not a usable column name")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_quote() {
        assert_eq!(
            source_name("main.demo.calibrated_panel").unwrap(),
            "`main`.`demo`.`calibrated_panel`"
        );
        assert_eq!(source_name("`my cat`.s.t").unwrap(), "`my cat`.`s`.`t`");
        assert!(source_name("demo.t").is_err());
        assert!(source_name("a.b.c; DROP TABLE x").is_err());
        let t = TargetTable::parse("KWP_Colombia.dbo.[Calibration Results]").unwrap();
        assert_eq!(t.quoted(), "[KWP_Colombia].[dbo].[Calibration Results]");
        assert_eq!(
            t.permission_name().to_string(),
            "kwp_colombia.dbo.calibration results"
        );
        assert!(TargetTable::parse("target").is_err());
        assert!(TargetTable::parse("a.b.c.d.e").is_err());
        assert_eq!(Operation::parse("upsert"), Some(Operation::Upsert));
        assert_eq!(Operation::parse("TRUNCATE"), None);
        assert!(column_name("id]; drop").is_err());
        assert!(column_name("monto total").is_ok());
    }
}

/// Built-in scalar functions a filter may call: comparisons, arithmetic,
/// strings, dates and null handling over the row's own columns. Anything
/// else — `secret()`, `read_files()`, `table_changes()`, `http_request()`,
/// `ai_query()`, user-defined functions (which may read any table), ... —
/// could read what the user may not, with the bridge's rights, so it is
/// refused. Names from https://docs.databricks.com/en/sql/language-manual/sql-ref-functions-builtin.html.
const FILTER_FUNCTIONS: &[&str] = &[
    "abs",
    "add_months",
    "array_contains",
    "bround",
    "btrim",
    "ceil",
    "ceiling",
    "char_length",
    "character_length",
    "coalesce",
    "concat",
    "concat_ws",
    "contains",
    "current_date",
    "current_timestamp",
    "date",
    "date_add",
    "date_diff",
    "date_format",
    "date_sub",
    "date_trunc",
    "dateadd",
    "datediff",
    "day",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "element_at",
    "endswith",
    "floor",
    "greatest",
    "hour",
    "if",
    "iff",
    "ifnull",
    "ilike",
    "instr",
    "isnan",
    "isnotnull",
    "isnull",
    "last_day",
    "lcase",
    "least",
    "left",
    "len",
    "length",
    "like",
    "locate",
    "lower",
    "lpad",
    "ltrim",
    "make_date",
    "minute",
    "mod",
    "month",
    "months_between",
    "nanvl",
    "now",
    "nullif",
    "nvl",
    "nvl2",
    "pmod",
    "position",
    "pow",
    "power",
    "quarter",
    "regexp",
    "regexp_like",
    "replace",
    "right",
    "rlike",
    "round",
    "rpad",
    "rtrim",
    "second",
    "sign",
    "signum",
    "size",
    "split_part",
    "sqrt",
    "startswith",
    "substr",
    "substring",
    "timestamp",
    "to_date",
    "to_timestamp",
    "trim",
    "trunc",
    "try_cast",
    "ucase",
    "upper",
    "weekday",
    "weekofyear",
    "year",
];

/// A checked filter: its SQL, with every string literal taken out into a
/// named parameter (`:bridge_f0`, ...) so that no re-printing can change
/// what it means (`'O\'Brien'` printed back as `'O''Brien'` is two
/// literals to Spark), and those parameters' values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedFilter {
    pub sql: String,
    pub params: Vec<(String, String)>,
}

/// Checks an event's filter: one Databricks SQL boolean expression over the
/// source's own columns — no subqueries (they could read other tables with
/// the bridge's rights), only the built-in functions of
/// [`FILTER_FUNCTIONS`], no statement separators.
pub fn check_filter(filter: &str) -> Result<CheckedFilter, Refusal> {
    use sqlparser::ast::{visit_expressions, visit_expressions_mut, Expr, Value};
    use sqlparser::dialect::DatabricksDialect;
    use sqlparser::parser::Parser;
    use sqlparser::tokenizer::Token;
    use std::ops::ControlFlow;

    let bad = |why: String| Refusal(format!("filter '{filter}': {why}"));
    let mut p = Parser::new(&DatabricksDialect {})
        .try_with_sql(filter)
        .map_err(|e| bad(e.to_string()))?;
    let expr = p.parse_expr().map_err(|e| bad(e.to_string()))?;
    if p.peek_token().token != Token::EOF {
        return Err(bad("only one expression is allowed".into()));
    }
    let found = visit_expressions(&expr, |e| match e {
        Expr::Subquery(_) | Expr::Exists { .. } | Expr::InSubquery { .. } => {
            ControlFlow::Break("subqueries are not allowed".to_string())
        }
        Expr::Function(f) => {
            let name = f.name.to_string().to_lowercase();
            if FILTER_FUNCTIONS.contains(&name.as_str()) {
                ControlFlow::Continue(())
            } else {
                ControlFlow::Break(format!(
                    "function {name}() is not allowed (a filter may call built-in scalar functions only)"
                ))
            }
        }
        _ => ControlFlow::Continue(()),
    });
    if let ControlFlow::Break(why) = found {
        return Err(bad(why));
    }
    let mut expr = expr;
    let mut params = Vec::new();
    let _ = visit_expressions_mut(&mut expr, |e| {
        if let Expr::Value(v) = e {
            if let Value::SingleQuotedString(text) = &v.value {
                let name = format!("bridge_f{}", params.len());
                params.push((name.clone(), text.clone()));
                *e = Expr::Value(Value::Placeholder(format!(":{name}")).into());
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(CheckedFilter {
        sql: expr.to_string(),
        params,
    })
}

#[cfg(test)]
mod filter_tests {
    use super::check_filter;

    #[test]
    fn filters_are_single_expressions_without_subqueries() {
        assert!(check_filter("country = 'CO' AND period >= DATE '2024-01-01'").is_ok());
        assert!(check_filter("1=1; DROP TABLE x").is_err());
        assert!(check_filter("id IN (SELECT id FROM other.secret.t)").is_err());
        assert!(check_filter("EXISTS (SELECT 1)").is_err());
        assert!(check_filter("").is_err());
        assert!(check_filter("upper(country) = 'CO' AND year(period) >= 2024").is_ok());
        // String literals travel as parameters, their text as written.
        let f = check_filter(r"cliente = 'O\'Brien' OR cliente = 'x'").unwrap();
        assert_eq!(f.sql, "cliente = :bridge_f0 OR cliente = :bridge_f1");
        assert_eq!(
            f.params,
            [
                ("bridge_f0".to_string(), "O'Brien".to_string()),
                ("bridge_f1".to_string(), "x".to_string())
            ]
        );
        for probe in [
            "secret('scope', 'key') LIKE 'a%'",
            "(SELECT count(*) FROM main.hr.salaries) > 10",
            "size(array(read_files('/Volumes/main/hr/files'))) > 0",
            "main.default.lookup(id) = 1",
            "reflect('java.lang.System', 'getenv', 'HOME') = ''",
            "ai_query('m', country) = 'x'",
        ] {
            assert!(check_filter(probe).is_err(), "{probe}");
        }
    }
}
