//! The T-SQL a table load runs on SQL Server: the user's query narrowed to
//! the rows past a cursor, or joined to SQL Server Change Tracking's
//! changes since a version
//! (https://learn.microsoft.com/en-us/sql/relational-databases/system-functions/changetable-transact-sql,
//! https://learn.microsoft.com/en-us/sql/relational-databases/track-changes/work-with-change-tracking-sql-server).
//! The query is used as a derived table (its own CTEs hoisted in front),
//! so it must be one SELECT. Values pasted in are our own (the last cursor
//! value, a version number), re-parsed and printed as typed literals, so
//! a changed state table cannot inject SQL.

pub use crate::queries::derived::bracket;
use crate::queries::derived::Derived;

use super::LoadError;

/// A cursor's last value, typed by the landed column it came from.
#[derive(Clone, Debug, PartialEq)]
pub enum CursorValue {
    Int(i64),
    /// Exact decimal text, e.g. `-12.50`.
    Decimal(String),
    Date(chrono::NaiveDate),
    Timestamp(chrono::NaiveDateTime),
    Text(String),
}

impl CursorValue {
    /// Parses a stored value of a kind (`int`, `decimal`, `date`,
    /// `timestamp`, `string`).
    pub fn parse(kind: &str, text: &str) -> Option<CursorValue> {
        let t = text.trim();
        Some(match kind {
            "int" => CursorValue::Int(t.parse().ok()?),
            "decimal" => {
                let digits = t.strip_prefix('-').unwrap_or(t);
                let ok = !digits.is_empty()
                    && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
                    && digits.matches('.').count() <= 1;
                if !ok {
                    return None;
                }
                CursorValue::Decimal(t.to_string())
            }
            "date" => CursorValue::Date(chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?),
            "timestamp" => CursorValue::Timestamp(
                chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f")
                    .or_else(|_| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f"))
                    .ok()?,
            ),
            "string" => CursorValue::Text(text.to_string()),
            _ => return None,
        })
    }

    /// The T-SQL literal, minus `lookback_secs` for dates and times.
    fn literal(&self, lookback_secs: u64) -> Result<String, LoadError> {
        let back = |e: String| {
            if lookback_secs == 0 {
                e
            } else {
                format!("DATEADD(second, -{lookback_secs}, {e})")
            }
        };
        let needs_time = |what: &str| {
            if lookback_secs > 0 {
                Err(LoadError::Spec(format!(
                    "lookback applies to date and time cursors; the cursor is {what}"
                )))
            } else {
                Ok(())
            }
        };
        Ok(match self {
            CursorValue::Int(n) => {
                needs_time("a number")?;
                n.to_string()
            }
            CursorValue::Decimal(d) => {
                needs_time("a number")?;
                d.clone()
            }
            CursorValue::Text(s) => {
                needs_time("a string")?;
                format!("N'{}'", s.replace('\'', "''"))
            }
            CursorValue::Date(d) => {
                back(format!("CAST('{}' AS datetime2(7))", d.format("%Y-%m-%d")))
            }
            CursorValue::Timestamp(t) => back(format!(
                "CAST('{}' AS datetime2(7))",
                t.format("%Y-%m-%dT%H:%M:%S%.6f")
            )),
        })
    }
}

/// The query as a derived table, with `mode` named in its errors.
fn shape(sql: &str, mode: &str) -> Result<Derived, LoadError> {
    Derived::of(sql, &format!("mode {mode}")).map_err(LoadError::Spec)
}

/// The query's rows whose `cursor` is past `after` (minus the lookback).
pub fn rows_after(
    sql: &str,
    cursor: &str,
    after: &CursorValue,
    lookback_secs: u64,
) -> Result<String, LoadError> {
    let s = shape(sql, "incremental")?;
    let c = bracket(cursor);
    Ok(s.select(&format!(
        "SELECT * FROM [__bridge_q] WHERE [__bridge_q].{c} > {}",
        after.literal(lookback_secs)?
    )))
}

/// Columns the change query adds in front of the query's own.
pub const OP: &str = "_bridge_op";
pub const PRESENT: &str = "_bridge_present";
pub fn key_column(k: &str) -> String {
    format!("_bridge_key_{k}")
}

/// The changes of `tracked` since `version`, one row per changed key: the
/// operation, whether the query still returns the key (a row it no longer
/// returns is deleted from the table), the key, and the query's columns.
pub fn changes_since(
    sql: &str,
    tracked: &str,
    keys: &[String],
    version: i64,
) -> Result<String, LoadError> {
    let s = shape(sql, "change_tracking")?;
    let on: Vec<String> = keys
        .iter()
        .map(|k| format!("[__bridge_q].{0} = [__bridge_ct].{0}", bracket(k)))
        .collect();
    let key_cols: Vec<String> = keys
        .iter()
        .map(|k| {
            format!(
                "[__bridge_ct].{} AS {}",
                bracket(k),
                bracket(&key_column(k))
            )
        })
        .collect();
    let first = bracket(&keys[0]);
    Ok(s.select(&format!(
        "SELECT [__bridge_ct].SYS_CHANGE_OPERATION AS {op}, \
             CAST(CASE WHEN [__bridge_q].{first} IS NULL THEN 0 ELSE 1 END AS bit) AS {present}, \
             {keys}, [__bridge_q].* \
             FROM CHANGETABLE(CHANGES {tracked}, {version}) AS [__bridge_ct] \
             LEFT JOIN [__bridge_q] ON {on}",
        op = bracket(OP),
        present = bracket(PRESENT),
        keys = key_cols.join(", "),
        on = on.join(" AND "),
    )))
}

/// A tracked table's name, checked and bracketed (`[db].[schema].[t]`).
pub fn tracked_name(text: &str) -> Result<String, LoadError> {
    let parts = crate::auth::tables::split_name(text)
        .filter(|p| (1..=3).contains(&p.len()) && p.iter().all(|x| !x.trim().is_empty()))
        .ok_or_else(|| {
            LoadError::Spec(format!(
                "tracked_table '{text}' is not [database.]schema.table"
            ))
        })?;
    Ok(parts
        .iter()
        .map(|p| bracket(p))
        .collect::<Vec<_>>()
        .join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_narrows_the_query_as_a_derived_table() {
        let t = CursorValue::parse("timestamp", "2024-05-01 10:00:00.5").unwrap();
        let sql = rows_after(
            "SELECT id, fecha FROM dbo.v WHERE x = 1;",
            "fecha",
            &t,
            7200,
        )
        .unwrap();
        assert_eq!(
            sql,
            "WITH [__bridge_q] AS (SELECT id, fecha FROM dbo.v WHERE x = 1) SELECT * FROM [__bridge_q] \
             WHERE [__bridge_q].[fecha] > DATEADD(second, -7200, CAST('2024-05-01T10:00:00.500000' AS datetime2(7)))"
        );
        let cte = rows_after(
            "WITH c AS (SELECT id FROM t) SELECT id FROM c ORDER BY id",
            "id",
            &CursorValue::Int(5),
            0,
        )
        .unwrap();
        assert!(
            cte.starts_with("WITH c AS (SELECT id FROM t), [__bridge_q] AS (SELECT id FROM c) "),
            "{cte}"
        );
        assert!(cte.ends_with("> 5"));
        assert!(rows_after(
            "SET NOCOUNT ON; SELECT 1 AS id",
            "id",
            &CursorValue::Int(1),
            0
        )
        .is_err());
        assert!(rows_after("SELECT 1 AS id", "id", &CursorValue::Int(1), 60).is_err());
        let s = CursorValue::parse("string", "O'Brien").unwrap();
        assert!(rows_after("SELECT n FROM t", "n", &s, 0)
            .unwrap()
            .ends_with("> N'O''Brien'"));
    }

    #[test]
    fn stored_values_are_reparsed() {
        assert!(CursorValue::parse("int", "1; DROP TABLE t").is_none());
        assert!(CursorValue::parse("decimal", "1.5 OR 1=1").is_none());
        assert!(CursorValue::parse("timestamp", "2024-01-01' OR '1'='1").is_none());
        assert_eq!(
            CursorValue::parse("decimal", "-12.50"),
            Some(CursorValue::Decimal("-12.50".into()))
        );
    }

    #[test]
    fn changes_join_the_query_on_the_key() {
        let sql = changes_since(
            "SELECT id, v FROM dbo.t",
            "[db].[dbo].[t]",
            &["id".into()],
            42,
        )
        .unwrap();
        assert!(
            sql.contains("FROM CHANGETABLE(CHANGES [db].[dbo].[t], 42) AS [__bridge_ct]"),
            "{sql}"
        );
        assert!(sql.contains("LEFT JOIN [__bridge_q] ON [__bridge_q].[id] = [__bridge_ct].[id]"));
        assert_eq!(
            tracked_name("KWP.dbo.J_Ventas").unwrap(),
            "[KWP].[dbo].[J_Ventas]"
        );
        assert!(tracked_name("a.b.c.d").is_err());
    }
}
