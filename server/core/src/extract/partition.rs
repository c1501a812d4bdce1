//! One query read as several ranges of a column, each on its own pooled
//! connection, written as parts concurrently (ConnectorX's `partition_on`,
//! Azure Data Factory's dynamic range).
//!
//! The range comes from `SELECT MIN(c), MAX(c)` over the query as a derived
//! table; it is cut into `count` equal intervals. The first partition also
//! takes every value below the second's start and every NULL, the last
//! every value from its start up, so each row — NULL, outside the measured
//! range (written meanwhile), anywhere — belongs to exactly one partition
//! whatever the data. (A column SQL Server describes as NOT NULL gets no
//! NULL test: `c < x` is one index range, `c < x OR c IS NULL` may be a
//! scan.) Equal intervals over skewed data give unequal partitions; the
//! result stays exact, only the parallelism suffers.
//!
//! Memory: each partition holds the Arrow batch it is filling, the one its
//! writer thread is encoding and that batch's Parquet row group,
//! so a run holds about `count` times what a single read holds.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use tiberius::{ColumnData, FromSql};

use super::{io_err, run_into, sql_err, ExtractError, ExtractOptions, RunOutput};
use crate::queries::derived::{bracket, Derived};
pub use crate::queries::partitioning::Partitioning;
use crate::retry::{retry, RetryPolicy};
use crate::sqlserver::pool::{self, Pool};

/// A value of the partition column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Value {
    Int(i128),
    Date(NaiveDate),
    Time(NaiveDateTime),
}

impl Value {
    fn literal(&self) -> String {
        match self {
            // Typed as the column most likely is: a bare literal past
            // int's range is numeric(p,0) in T-SQL, which would convert
            // a bigint column rather than the constant.
            Value::Int(n) if i32::try_from(*n).is_ok() => n.to_string(),
            Value::Int(n) if i64::try_from(*n).is_ok() => format!("CAST({n} AS bigint)"),
            Value::Int(n) => format!("CAST({n} AS decimal(38,0))"),
            Value::Date(d) => format!("CAST('{}' AS date)", d.format("%Y-%m-%d")),
            Value::Time(t) => format!(
                "CAST('{}' AS datetime2(7))",
                t.format("%Y-%m-%dT%H:%M:%S%.6f")
            ),
        }
    }
}

fn unsupported(column: &str, what: &str) -> ExtractError {
    ExtractError::Partition(format!(
        "partition column '{column}' is {what}; partition on an integer (tinyint, smallint, int, bigint, \
         decimal/numeric with scale 0), date, datetime, smalldatetime or datetime2 column"
    ))
}

/// One cell of the MIN/MAX row as a partition value (`None`: NULL).
fn value(column: &str, cell: &ColumnData<'static>) -> Result<Option<Value>, ExtractError> {
    let time = |c: &ColumnData<'static>| {
        NaiveDateTime::from_sql(c)
            .map_err(|e| ExtractError::Partition(format!("partition column '{column}': {e}")))
    };
    Ok(match cell {
        ColumnData::U8(v) => v.map(|n| Value::Int(n.into())),
        ColumnData::I16(v) => v.map(|n| Value::Int(n.into())),
        ColumnData::I32(v) => v.map(|n| Value::Int(n.into())),
        ColumnData::I64(v) => v.map(|n| Value::Int(n.into())),
        ColumnData::Numeric(v) => match v {
            None => None,
            Some(n) if n.scale() == 0 => Some(Value::Int(n.value())),
            Some(_) => return Err(unsupported(column, "a decimal with a fraction")),
        },
        ColumnData::Date(_) => NaiveDate::from_sql(cell)
            .map_err(|e| ExtractError::Partition(format!("partition column '{column}': {e}")))?
            .map(Value::Date),
        ColumnData::DateTime(_) | ColumnData::SmallDateTime(_) | ColumnData::DateTime2(_) => {
            time(cell)?.map(Value::Time)
        }
        ColumnData::DateTimeOffset(_) => return Err(unsupported(column, "a datetimeoffset")),
        ColumnData::String(_) | ColumnData::Guid(_) | ColumnData::Xml(_) => {
            return Err(unsupported(column, "text"))
        }
        ColumnData::Binary(_) => return Err(unsupported(column, "binary")),
        ColumnData::Bit(_) => return Err(unsupported(column, "a bit")),
        ColumnData::F32(_) | ColumnData::F64(_) => {
            return Err(unsupported(column, "a floating-point number"))
        }
        _ => return Err(unsupported(column, "of a type that has no order to split")),
    })
}

/// Whether the first partition must also take NULLs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Nulls {
    /// SQL Server may hold NULLs in the column (or could not tell).
    Possible,
    /// `sp_describe_first_result_set` reports the column NOT NULL
    /// (`is_nullable` 0, which it gives only when certain:
    /// https://learn.microsoft.com/en-us/sql/relational-databases/system-stored-procedures/sp-describe-first-result-set-transact-sql).
    /// Then `c < x` alone is one index range where `c < x OR c IS NULL`
    /// can make an engine scan.
    None,
}

/// `count` boundaries' predicates over `[lo, hi]`: half-open intervals of
/// equal width, the first open below (and taking NULLs), the last open
/// above. Fewer when the range has fewer distinct steps than `count`.
fn predicates(column: &str, lo: Value, hi: Value, count: u32, nulls: Nulls) -> Vec<String> {
    let c = format!("[__bridge_q].{}", bracket(column));
    // Everything as integers: days for dates, microseconds for times.
    let (lo_n, hi_n, back): (i128, i128, Box<dyn Fn(i128) -> Value>) = match (lo, hi) {
        (Value::Int(a), Value::Int(b)) => (a, b, Box::new(Value::Int)),
        (Value::Date(a), Value::Date(b)) => {
            let epoch = NaiveDate::from_ymd_opt(1, 1, 1).unwrap_or_default();
            (
                (a - epoch).num_days().into(),
                (b - epoch).num_days().into(),
                Box::new(move |d| {
                    Value::Date(epoch + chrono::Duration::days(d.clamp(0, i64::MAX as i128) as i64))
                }),
            )
        }
        (Value::Time(a), Value::Time(b)) => {
            let micros = |t: NaiveDateTime| t.and_utc().timestamp_micros() as i128;
            (
                micros(a),
                micros(b),
                Box::new(|m| {
                    Value::Time(
                        chrono::DateTime::from_timestamp_micros(m as i64)
                            .map(|t| t.naive_utc())
                            .unwrap_or_default(),
                    )
                }),
            )
        }
        _ => return vec![format!("1 = 1")],
    };
    let span = hi_n - lo_n + 1;
    let n = i128::from(count).min(span).max(1);
    if n == 1 {
        return vec!["1 = 1".into()];
    }
    let bounds: Vec<Value> = (1..n).map(|i| back(lo_n + span * i / n)).collect();
    let mut out = Vec::with_capacity(n as usize);
    out.push(match nulls {
        Nulls::Possible => format!("({c} < {} OR {c} IS NULL)", bounds[0].literal()),
        Nulls::None => format!("{c} < {}", bounds[0].literal()),
    });
    for w in bounds.windows(2) {
        out.push(format!(
            "{c} >= {} AND {c} < {}",
            w[0].literal(),
            w[1].literal()
        ));
    }
    out.push(format!("{c} >= {}", bounds[bounds.len() - 1].literal()));
    out
}

/// The partitions' SQL: one statement per partition (one when the column
/// is empty or all NULL).
pub async fn plan(
    pool: &Pool,
    sql: &str,
    part: &Partitioning,
) -> Result<Vec<String>, ExtractError> {
    let derived = Derived::of(sql, "partition_on").map_err(ExtractError::Partition)?;
    let c = bracket(&part.column);
    let measure = derived.select(&format!(
        "SELECT MIN([__bridge_q].{c}) AS [lo], MAX([__bridge_q].{c}) AS [hi] FROM [__bridge_q]"
    ));
    let mut conn = pool::get(pool).await.map_err(|e| ExtractError::Sql {
        transient: e.is_transient(),
        message: e.to_string(),
    })?;
    let nulls = match super::describe(&mut conn, sql).await {
        Ok(cols)
            if cols
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(&part.column) && !c.nullable) =>
        {
            Nulls::None
        }
        _ => Nulls::Possible,
    };
    let row = conn
        .simple_query(measure)
        .await
        .map_err(sql_err)?
        .into_row()
        .await
        .map_err(sql_err)?;
    // The batch may have changed the session (it is the user's SQL).
    let _ = deadpool::managed::Object::take(conn);
    let Some(row) = row else {
        return Err(ExtractError::NoResult);
    };
    let cells: Vec<ColumnData<'static>> = row.into_iter().collect();
    let (lo, hi) = match cells.as_slice() {
        [a, b] => (value(&part.column, a)?, value(&part.column, b)?),
        _ => return Err(ExtractError::NoResult),
    };
    let preds = match (lo, hi) {
        (Some(lo), Some(hi)) => predicates(&part.column, lo, hi, part.count, nulls),
        _ => vec!["1 = 1".into()],
    };
    Ok(preds
        .iter()
        .map(|p| derived.select(&format!("SELECT * FROM [__bridge_q] WHERE {p}")))
        .collect())
}

/// Runs the partitions concurrently into `dir/p<i>/`, each retried alone on
/// a transient failure, then moves their parts into `dir` as
/// `part-<i>-<n>.parquet`. The partitions must agree on the schema.
pub(super) async fn run_partitions(
    pool: &Pool,
    sqls: &[String],
    dir: &Path,
    opts: &ExtractOptions,
    policy: &RetryPolicy,
    progress: &(dyn Fn(u64) + Send + Sync),
    note: &(dyn Fn(&str) + Send + Sync),
) -> Result<RunOutput, ExtractError> {
    let counts: Arc<Vec<AtomicU64>> = Arc::new(sqls.iter().map(|_| AtomicU64::new(0)).collect());
    let total = sqls.len();
    let runs = sqls.iter().enumerate().map(|(i, sql)| {
        let counts = counts.clone();
        let sub = dir.join(format!("p{i:03}"));
        async move {
            let report = |rows: u64| {
                counts[i].store(rows, Ordering::Relaxed);
                progress(counts.iter().map(|c| c.load(Ordering::Relaxed)).sum());
            };
            let out = retry(
                policy,
                |attempt, e: &ExtractError, wait| {
                    note(&format!(
                        "partition {} of {total}: attempt {attempt} failed: {e}; retrying it alone in {:.1} s",
                        i + 1,
                        wait.as_secs_f64()
                    ))
                },
                || async {
                    let attempt = async {
                        let _ = std::fs::remove_dir_all(&sub);
                        std::fs::create_dir_all(&sub).map_err(|e| io_err(&sub, e))?;
                        let mut conn = pool::get(pool).await.map_err(|e| ExtractError::Sql {
                            transient: e.is_transient(),
                            message: e.to_string(),
                        })?;
                        let r = Box::pin(run_into(&mut conn, sql, &sub, opts, &report)).await;
                        let _ = deadpool::managed::Object::take(conn);
                        r
                    }
                    .await;
                    attempt.map_err(|e| {
                        let t = e.is_transient();
                        (e, t)
                    })
                },
            )
            .await?;
            Ok::<_, ExtractError>((i, sub, out))
        }
    });
    let mut done = futures_util::future::try_join_all(runs).await?;
    done.sort_by_key(|(i, _, _)| *i);
    let mut parts = Vec::new();
    let mut rows = 0;
    let mut first: Option<(Vec<super::SourceColumn>, super::TypeSource)> = None;
    for (i, sub, (cols, types, p, r)) in done {
        rows += r;
        for mut part in p {
            let name = format!("part-{i:03}-{}", part.file.trim_start_matches("part-"));
            let from = sub.join(&part.file);
            let to: PathBuf = dir.join(&name);
            std::fs::rename(&from, &to).map_err(|e| io_err(&from, e))?;
            part.file = name;
            parts.push(part);
        }
        let _ = std::fs::remove_dir(&sub);
        match &first {
            None => first = Some((cols, types)),
            Some((c0, _)) => {
                let names = |c: &[super::SourceColumn]| {
                    c.iter()
                        .map(|c| format!("{} {}", c.name, c.type_name))
                        .collect::<Vec<_>>()
                };
                if names(c0) != names(&cols) {
                    return Err(ExtractError::Partition(format!(
                        "partition {} returned columns ({}) unlike partition 1's ({})",
                        i + 1,
                        names(&cols).join(", "),
                        names(c0).join(", ")
                    )));
                }
            }
        }
    }
    let (cols, types) = first.ok_or(ExtractError::NoResult)?;
    Ok((cols, types, parts, rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_in_exactly_one_partition() {
        let p = predicates("id", Value::Int(1), Value::Int(10), 3, Nulls::Possible);
        assert_eq!(
            p,
            vec![
                "([__bridge_q].[id] < 4 OR [__bridge_q].[id] IS NULL)",
                "[__bridge_q].[id] >= 4 AND [__bridge_q].[id] < 7",
                "[__bridge_q].[id] >= 7",
            ]
        );
        // Fewer distinct values than partitions: one per value.
        assert_eq!(
            predicates("id", Value::Int(5), Value::Int(6), 8, Nulls::Possible).len(),
            2
        );
        assert_eq!(
            predicates("id", Value::Int(5), Value::Int(5), 8, Nulls::Possible),
            vec!["1 = 1"]
        );
        // Extremes do not overflow.
        let p = predicates(
            "id",
            Value::Int(i64::MIN.into()),
            Value::Int(i64::MAX.into()),
            4,
            Nulls::Possible,
        );
        assert_eq!(p.len(), 4);
        assert!(p[2].contains(">= 0 AND"), "{p:?}");
        assert!(
            p[3].contains(">= CAST(4611686018427387904 AS bigint)"),
            "{p:?}"
        );
    }

    #[test]
    fn a_not_null_column_leaves_the_null_test_out() {
        let p = predicates("id", Value::Int(1), Value::Int(10), 2, Nulls::None);
        assert_eq!(p[0], "[__bridge_q].[id] < 6");
        let p = predicates("id", Value::Int(1), Value::Int(10), 2, Nulls::Possible);
        assert_eq!(p[0], "([__bridge_q].[id] < 6 OR [__bridge_q].[id] IS NULL)");
    }

    #[test]
    fn dates_and_times_split_into_literals() {
        let d = |s: &str| Value::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        let p = predicates(
            "fecha",
            d("2024-01-01"),
            d("2024-01-10"),
            2,
            Nulls::Possible,
        );
        assert_eq!(p[1], "[__bridge_q].[fecha] >= CAST('2024-01-06' AS date)");
        let t =
            |s: &str| Value::Time(NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap());
        let p = predicates(
            "ts",
            t("2024-01-01 00:00:00"),
            t("2024-01-01 00:00:03"),
            2,
            Nulls::None,
        );
        assert_eq!(
            p[1],
            "[__bridge_q].[ts] >= CAST('2024-01-01T00:00:01.500000' AS datetime2(7))"
        );
    }
}
