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
use crate::queries::load::Lookback;

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

    fn kind(&self) -> &'static str {
        match self {
            CursorValue::Int(_) => "an integer",
            CursorValue::Decimal(_) => "a decimal",
            CursorValue::Date(_) => "a date",
            CursorValue::Timestamp(_) => "a date and time",
            CursorValue::Text(_) => "text",
        }
    }

    /// The T-SQL literal of the value.
    fn literal(&self) -> String {
        match self {
            CursorValue::Int(n) => n.to_string(),
            CursorValue::Decimal(d) => d.clone(),
            CursorValue::Text(s) => format!("N'{}'", s.replace('\'', "''")),
            CursorValue::Date(d) => format!("CAST('{}' AS datetime2(7))", d.format("%Y-%m-%d")),
            CursorValue::Timestamp(t) => format!(
                "CAST('{}' AS datetime2(7))",
                t.format("%Y-%m-%dT%H:%M:%S%.6f")
            ),
        }
    }

    /// Orders two values of one kind (`None` across kinds).
    pub fn cmp_same_kind(&self, other: &CursorValue) -> Option<std::cmp::Ordering> {
        use CursorValue::*;
        match (self, other) {
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Timestamp(a), Timestamp(b)) => Some(a.cmp(b)),
            (Text(a), Text(b)) => Some(a.cmp(b)),
            (Decimal(a), Decimal(b)) => Some(cmp_decimal_text(a, b)),
            _ => None,
        }
    }
}

/// Orders two exact decimal texts (`-12.50`, `3`) by value, digit by digit.
fn cmp_decimal_text(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let split = |t: &str| {
        let (neg, digits) = match t.trim().strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, t.trim()),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let int = int.trim_start_matches('0').to_string();
        let frac = frac.trim_end_matches('0').to_string();
        let zero = int.is_empty() && frac.is_empty();
        (neg && !zero, int, frac)
    };
    let (na, ia, fa) = split(a);
    let (nb, ib, fb) = split(b);
    let magnitude = ia
        .len()
        .cmp(&ib.len())
        .then_with(|| ia.cmp(&ib))
        .then_with(|| fa.cmp(&fb));
    match (na, nb) {
        (false, true) => Ordering::Greater,
        (true, false) => Ordering::Less,
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
    }
}

/// The lowest cursor value a run reads from: the last value, minus the
/// lookback. Inclusive, so rows committed later at the last value itself (a
/// `date` cursor's rest of the day, equal timestamps) are read; the MERGE
/// on the key makes rows read twice a no-op.
fn lower_bound(
    after: &CursorValue,
    cursor: &str,
    lookback: &Lookback,
) -> Result<String, LoadError> {
    let c = bracket(cursor);
    let wrong = |what: &str| {
        LoadError::Spec(format!(
            "lookback {lookback} is {what}, but the cursor {cursor} holds {}; give {}",
            after.kind(),
            match after {
                CursorValue::Int(_) | CursorValue::Decimal(_) => {
                    "a number of cursor units (e.g. lookback: 1000)"
                }
                CursorValue::Text(_) => "a number of its last distinct values (e.g. lookback: 3)",
                _ => "a duration (e.g. lookback: 2h)",
            }
        ))
    };
    let lit = after.literal();
    Ok(match (after, lookback) {
        (_, Lookback::Amount(0)) => lit,
        (CursorValue::Date(_) | CursorValue::Timestamp(_), Lookback::Time(d)) => {
            format!("DATEADD(second, -{}, {lit})", d.as_secs())
        }
        (CursorValue::Date(_) | CursorValue::Timestamp(_), Lookback::Amount(n)) => {
            format!("DATEADD(second, -{n}, {lit})")
        }
        (CursorValue::Int(v), Lookback::Amount(n)) => {
            let n = i64::try_from(*n).unwrap_or(i64::MAX);
            v.saturating_sub(n).to_string()
        }
        (CursorValue::Decimal(_), Lookback::Amount(n)) => format!("({lit} - {n})"),
        // Text has no arithmetic: the last `n` distinct values at or before
        // the last one, as SQL Server orders them.
        (CursorValue::Text(_), Lookback::Amount(n)) => format!(
            "ISNULL((SELECT MIN([__bridge_v]) FROM (SELECT TOP ({n}) [__bridge_v] FROM \
             (SELECT DISTINCT [__bridge_q].{c} AS [__bridge_v] FROM [__bridge_q] WHERE [__bridge_q].{c} <= {lit}) AS [__bridge_d] \
             ORDER BY [__bridge_v] DESC) AS [__bridge_last]), {lit})"
        ),
        (_, Lookback::Time(_)) => return Err(wrong("a duration")),
    })
}

/// The query as a derived table, with `mode` named in its errors.
fn shape(sql: &str, mode: &str) -> Result<Derived, LoadError> {
    Derived::of(sql, &format!("mode {mode}")).map_err(LoadError::Spec)
}

/// The query's rows whose `cursor` is at or past `after` minus the lookback.
pub fn rows_after(
    sql: &str,
    cursor: &str,
    after: &CursorValue,
    lookback: &Lookback,
) -> Result<String, LoadError> {
    let s = shape(sql, "incremental")?;
    let c = bracket(cursor);
    Ok(s.select(&format!(
        "SELECT * FROM [__bridge_q] WHERE [__bridge_q].{c} >= {}",
        lower_bound(after, cursor, lookback)?
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

/// The changes' read as Microsoft documents it: one SNAPSHOT transaction
/// that checks the last synced version is still valid and then reads the
/// changes, so Change Tracking's cleanup cannot remove changes between the
/// check and the read, and every table the query joins is read as of one
/// instant
/// (https://learn.microsoft.com/en-us/sql/relational-databases/track-changes/work-with-change-tracking-sql-server).
/// The check reads the tracked table's minimum valid version from its
/// database's `sys.change_tracking_tables`, so it needs no `USE`. A
/// version cleaned up before the snapshot began fails the batch (error
/// 51001, its text holding [`cleaned_up_mark`]) before any row is sent.
/// The connection is discarded after the read, its isolation level with it.
pub fn in_snapshot(changes: &str, tracked: &str, version: i64) -> String {
    let changes = changes.trim().trim_end_matches(';');
    let parts = crate::sqlserver::names::split_name(tracked).unwrap_or_default();
    let catalog = match parts.as_slice() {
        [db, _, _] => format!("{}.sys.change_tracking_tables", bracket(db)),
        _ => "sys.change_tracking_tables".to_string(),
    };
    let object = tracked.replace('\'', "''");
    let mark = cleaned_up_mark(tracked, version).replace('\'', "''");
    format!(
        "SET TRANSACTION ISOLATION LEVEL SNAPSHOT;\n\
         BEGIN TRANSACTION;\n\
         DECLARE @__bridge_min_valid bigint = (SELECT min_valid_version FROM {catalog} \
         WHERE object_id = OBJECT_ID(N'{object}'));\n\
         IF @__bridge_min_valid IS NULL OR @__bridge_min_valid > {version}\n\
         BEGIN\n\
         DECLARE @__bridge_message nvarchar(2048) = CONCAT(N'{mark}', @__bridge_min_valid, N')');\n\
         THROW 51001, @__bridge_message, 1;\n\
         END;\n\
         {changes};\n\
         COMMIT TRANSACTION;"
    )
}

/// The text by which [`in_snapshot`]'s check says the version it was
/// given is no longer valid (the minimum valid version follows it).
pub fn cleaned_up_mark(tracked: &str, version: i64) -> String {
    format!(
        "change tracking cleaned up past version {version} of {tracked} before its changes were read (minimum valid version now "
    )
}

/// Whether `message` is [`in_snapshot`]'s check failing for `version`:
/// then the minimum valid version it names, when it names one.
pub fn cleaned_up_in(message: &str, tracked: &str, version: i64) -> Option<Option<i64>> {
    let mark = cleaned_up_mark(tracked, version);
    let at = message.find(&mark)?;
    Some(
        message[at + mark.len()..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .ok(),
    )
}

/// A tracked table's name, checked and bracketed (`[db].[schema].[t]`).
pub fn tracked_name(text: &str) -> Result<String, LoadError> {
    let parts = crate::sqlserver::names::split_name(text)
        .filter(|p| (1..=3).contains(&p.len()) && p.iter().all(|x| !x.trim().is_empty()))
        .ok_or_else(|| {
            LoadError::Spec(format!(
                "tracked_table '{text}' is not [database.]schema.table \
                 (a part with a space or a dot in brackets: dbo.[my table])"
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
        let two_hours = Lookback::Time(std::time::Duration::from_secs(7200));
        let t = CursorValue::parse("timestamp", "2024-05-01 10:00:00.5").unwrap();
        let sql = rows_after(
            "SELECT id, fecha FROM dbo.v WHERE x = 1;",
            "fecha",
            &t,
            &two_hours,
        )
        .unwrap();
        assert_eq!(
            sql,
            "WITH [__bridge_q] AS (SELECT id, fecha FROM dbo.v WHERE x = 1) SELECT * FROM [__bridge_q] \
             WHERE [__bridge_q].[fecha] >= DATEADD(second, -7200, CAST('2024-05-01T10:00:00.500000' AS datetime2(7)))"
        );
        let cte = rows_after(
            "WITH c AS (SELECT id FROM t) SELECT id FROM c ORDER BY id",
            "id",
            &CursorValue::Int(5),
            &Lookback::NONE,
        )
        .unwrap();
        assert!(
            cte.starts_with("WITH c AS (SELECT id FROM t), [__bridge_q] AS (SELECT id FROM c) "),
            "{cte}"
        );
        assert!(cte.ends_with(">= 5"));
        assert!(rows_after(
            "SET NOCOUNT ON; SELECT 1 AS id",
            "id",
            &CursorValue::Int(1),
            &Lookback::NONE
        )
        .is_err());
        // Every cursor kind takes a lookback of its own kind.
        let ints = rows_after(
            "SELECT 1 AS id",
            "id",
            &CursorValue::Int(100),
            &Lookback::Amount(30),
        );
        assert!(ints.unwrap().ends_with(">= 70"));
        let e = rows_after("SELECT 1 AS id", "id", &CursorValue::Int(1), &two_hours).unwrap_err();
        assert!(e.to_string().contains("holds an integer"), "{e}");
        let dec = CursorValue::parse("decimal", "10.5").unwrap();
        assert!(rows_after("SELECT 1 AS v", "v", &dec, &Lookback::Amount(2))
            .unwrap()
            .ends_with(">= (10.5 - 2)"));
        let s = CursorValue::parse("string", "O'Brien").unwrap();
        assert!(rows_after("SELECT n FROM t", "n", &s, &Lookback::NONE)
            .unwrap()
            .ends_with(">= N'O''Brien'"));
        let last3 = rows_after("SELECT n FROM t", "n", &s, &Lookback::Amount(3)).unwrap();
        assert!(last3.contains("SELECT TOP (3) [__bridge_v]"), "{last3}");
        assert!(last3.ends_with("N'O''Brien')"), "{last3}");
        let day = CursorValue::parse("date", "2024-05-01").unwrap();
        assert!(
            rows_after("SELECT d FROM t", "d", &day, &Lookback::Amount(60))
                .unwrap()
                .ends_with(">= DATEADD(second, -60, CAST('2024-05-01' AS datetime2(7)))")
        );
    }

    #[test]
    fn decimals_order_by_value() {
        use std::cmp::Ordering::*;
        for (a, b, o) in [
            ("10.5", "9.75", Greater),
            ("-10.5", "-9.75", Less),
            ("0.10", "0.1", Equal),
            ("-0", "0.00", Equal),
            ("-1", "0", Less),
            ("007", "7.0", Equal),
            ("12345678901234567890.1", "12345678901234567890.09", Greater),
        ] {
            assert_eq!(cmp_decimal_text(a, b), o, "{a} vs {b}");
        }
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
