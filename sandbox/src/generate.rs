//! Deterministic benchmark tables: the same seed gives the same rows, so
//! the bridge and its peers read identical data in one benchmark run.

use chrono::{Duration, FixedOffset, NaiveDate, TimeZone};

use crate::engine::{Engine, SqlError};
use crate::types::{Decimal, Value};

/// Where a generated table goes and how big it is: `[db.]table:rows`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateSpec {
    pub database: String,
    pub table: String,
    pub rows: u64,
}

impl std::str::FromStr for GenerateSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (name, rows) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("--generate expects [database.]table:rows, got '{s}'"))?;
        let rows: u64 = rows
            .replace('_', "")
            .parse()
            .map_err(|_| format!("--generate: '{rows}' is not a row count"))?;
        let (database, table) = match name.split_once('.') {
            Some((d, t)) => (d.to_string(), t.to_string()),
            None => ("bench".to_string(), name.to_string()),
        };
        if table.is_empty() || !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("--generate: '{table}' is not a plain table name"));
        }
        Ok(GenerateSpec {
            database,
            table,
            rows,
        })
    }
}

/// The generated table's DDL: ten columns of mixed types.
pub fn ddl(table: &str) -> String {
    format!(
        "CREATE TABLE dbo.{table} (
            id bigint NOT NULL PRIMARY KEY,
            fecha datetime2(3) NOT NULL,
            pais char(2) NOT NULL,
            id_producto int NOT NULL,
            cantidad smallint NULL,
            monto_total decimal(18,2) NOT NULL,
            factor decimal(10,6) NULL,
            cliente nvarchar(100) NULL,
            actualizado datetimeoffset(3) NULL,
            activo bit NOT NULL
        )"
    )
}

const NAMES: [&str; 8] = [
    "María José",
    "Ñandú Pérez",
    "José Álvarez",
    "Zoë Müller",
    "李小龍",
    "Ana",
    "Søren Kierkegård",
    "Émile",
];
const COUNTRIES: [&str; 4] = ["CO", "MX", "BR", "AR"];

/// Row `i` of the generated table.
pub fn row(i: u64) -> Vec<Value> {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let base = NaiveDate::from_ymd_opt(2019, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    let fecha = base + Duration::milliseconds((next() % (6 * 365 * 86_400_000)) as i64);
    let offset_min = [-300i32, -360, -180, 0, 330][(next() % 5) as usize];
    let actualizado = if next() % 7 == 0 {
        Value::Null
    } else {
        FixedOffset::east_opt(offset_min * 60)
            .and_then(|o| o.from_local_datetime(&fecha).single())
            .map(Value::DateTimeOffset)
            .unwrap_or(Value::Null)
    };
    vec![
        Value::Int(i as i64 + 1),
        Value::DateTime(fecha),
        Value::String(COUNTRIES[(next() % 4) as usize].to_string()),
        Value::Int((next() % 5000) as i64 + 1),
        if next() % 10 == 0 {
            Value::Null
        } else {
            Value::Int((next() % 100) as i64)
        },
        Value::Decimal(Decimal::new((next() % 100_000_000) as i128 - 10_000_000, 2)),
        if next() % 5 == 0 {
            Value::Null
        } else {
            Value::Decimal(Decimal::new((next() % 9_999_999) as i128, 6))
        },
        if next() % 9 == 0 {
            Value::Null
        } else {
            Value::String(format!(
                "{} {}",
                NAMES[(next() % 8) as usize],
                next() % 100_000
            ))
        },
        actualizado,
        Value::Bit(next() % 2 == 0),
    ]
}

/// Creates (replacing) and fills the table.
pub fn generate(
    engine: &Engine,
    spec: &GenerateSpec,
    mut progress: impl FnMut(u64),
) -> Result<(), SqlError> {
    let mut s = engine.session("master")?;
    let db = crate::engine::catalog::quote_ident(&spec.database);
    let mut setup = String::new();
    if !engine.database_exists(&spec.database)? {
        setup.push_str(&format!("CREATE DATABASE {db}\n"));
    }
    engine.run_script(&setup)?;
    let script = format!(
        "USE {db}\nGO\nDROP TABLE IF EXISTS dbo.{t}\nGO\n{ddl}\n",
        t = spec.table,
        ddl = ddl(&spec.table)
    );
    engine.run_script(&script)?;
    let _ = s.execute_batch(
        &format!("USE {db}"),
        &[],
        &mut crate::engine::session::Discard,
    );
    let target = s
        .bulk_target(&format!(
            "INSERT BULK dbo.{} (id bigint, fecha datetime2(3), pais char(2), id_producto int, cantidad smallint, monto_total decimal(18,2), factor decimal(10,6), cliente nvarchar(100), actualizado datetimeoffset(3), activo bit)",
            spec.table
        ))?
        .ok_or_else(|| SqlError::syntax_near("BULK"))?;
    let mut i = 0u64;
    let total = spec.rows;
    s.bulk_insert(&target, &mut || {
        if i >= total {
            return Ok(None);
        }
        let r = row(i);
        i += 1;
        if i.is_multiple_of(100_000) {
            progress(i);
        }
        Ok(Some(r))
    })?;
    progress(total);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse() {
        let s: GenerateSpec = "ventas:10_000".parse().unwrap();
        assert_eq!(
            (s.database.as_str(), s.table.as_str(), s.rows),
            ("bench", "ventas", 10_000)
        );
        let s: GenerateSpec = "KWP.big:5".parse().unwrap();
        assert_eq!(s.database, "KWP");
        assert!("ventas".parse::<GenerateSpec>().is_err());
        assert!("x;drop:5".parse::<GenerateSpec>().is_err());
    }

    #[test]
    fn rows_are_deterministic_and_loadable() {
        assert_eq!(row(7), row(7));
        assert_ne!(row(7), row(8));
        let e = Engine::open(None).unwrap();
        let spec: GenerateSpec = "ventas:2000".parse().unwrap();
        generate(&e, &spec, |_| {}).unwrap();
        let mut s = e.session("bench").unwrap();
        let mut out = crate::engine::session::Discard;
        s.execute_batch("SELECT * FROM dbo.ventas", &[], &mut out)
            .unwrap();
        assert_eq!(e.count_rows("bench", "dbo", "ventas").unwrap(), 2000);
    }
}
