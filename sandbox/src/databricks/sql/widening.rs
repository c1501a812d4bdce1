//! Which type changes are safe, in the three places Databricks asks:
//!
//! - writing a value into a column of another type ([`can_up_cast`]):
//!   "Databricks attempts to safely cast column data types to match the
//!   target table" (https://docs.databricks.com/en/delta/schema-validation.html);
//!   a safe cast is Spark's up-cast rule (`UpCastRule.canUpCast` in Apache
//!   Spark: no truncation, precision loss or runtime failure);
//! - reading a Parquet column as a wider type ([`parquet_readable`]): the
//!   conversions Spark's Parquet reader makes (integers to wider integers or
//!   to double, float to double, decimals to wider decimals, date to
//!   timestamp_ntz); anything else is `PARQUET_COLUMN_DATA_TYPE_MISMATCH`;
//! - changing a column's type in place with Delta type widening
//!   ([`type_widening_allowed`], https://docs.databricks.com/en/delta/type-widening.html).

use super::types::DbxType;

/// Spark's numeric precedence: each type up-casts to the ones after it.
fn numeric_rank(t: &DbxType) -> Option<u8> {
    Some(match t {
        DbxType::Byte => 0,
        DbxType::Short => 1,
        DbxType::Int => 2,
        DbxType::Long => 3,
        DbxType::Float => 4,
        DbxType::Double => 5,
        _ => return None,
    })
}

/// The decimal an integral type fits (`DecimalType.forType`).
fn integral_decimal(t: &DbxType) -> Option<(u8, u8)> {
    Some(match t {
        DbxType::Byte => (3, 0),
        DbxType::Short => (5, 0),
        DbxType::Int => (10, 0),
        DbxType::Long => (20, 0),
        _ => return None,
    })
}

/// `(p, s)` holds every value of `(p2, s2)`: as many integer digits and as
/// many fraction digits (`DecimalType.isWiderThan`).
fn decimal_wider(p: u8, s: u8, p2: u8, s2: u8) -> bool {
    p.saturating_sub(s) >= p2.saturating_sub(s2) && s >= s2
}

fn as_decimal(t: &DbxType) -> Option<(u8, u8)> {
    match t {
        DbxType::Decimal { precision, scale } => Some((*precision, *scale)),
        other => integral_decimal(other),
    }
}

/// Spark's up-cast rule: the cast can neither truncate, lose precision nor
/// fail at run time.
pub fn can_up_cast(from: &DbxType, to: &DbxType) -> bool {
    if from == to || *from == DbxType::Void {
        return true;
    }
    match (from, to) {
        (_, DbxType::Decimal { precision, scale })
            if from.is_integral() || matches!(from, DbxType::Decimal { .. }) =>
        {
            as_decimal(from).is_some_and(|(p2, s2)| decimal_wider(*precision, *scale, p2, s2))
        }
        (DbxType::Decimal { precision, scale }, t) if numeric_rank(t).is_some() => {
            // `isTighterThan`: only towards integral types it fits.
            integral_decimal(t).is_some_and(|(p2, s2)| decimal_wider(p2, s2, *precision, *scale))
        }
        (f, t) if numeric_rank(f).is_some() && numeric_rank(t).is_some() => {
            numeric_rank(f) <= numeric_rank(t)
        }
        (DbxType::Date, DbxType::Timestamp | DbxType::TimestampNtz) => true,
        (DbxType::TimestampNtz, DbxType::Timestamp)
        | (DbxType::Timestamp, DbxType::TimestampNtz) => true,
        (DbxType::Timestamp, DbxType::Long) | (DbxType::Long, DbxType::Timestamp) => true,
        (f, DbxType::String) => !matches!(f, DbxType::Array(_) | DbxType::Map(..)),
        (DbxType::Array(a), DbxType::Array(b)) => can_up_cast(a, b),
        (DbxType::Map(k1, v1), DbxType::Map(k2, v2)) => can_up_cast(k1, k2) && can_up_cast(v1, v2),
        _ => false,
    }
}

/// Whether Spark's Parquet reader reads a column written as `file` when
/// the read schema says `read`.
pub fn parquet_readable(file: &DbxType, read: &DbxType) -> bool {
    if file == read {
        return true;
    }
    match (file, read) {
        (f, t) if f.is_integral() && t.is_integral() => numeric_rank(f) <= numeric_rank(t),
        (DbxType::Byte | DbxType::Short | DbxType::Int, DbxType::Double) => true,
        (DbxType::Float, DbxType::Double) => true,
        (f, DbxType::Decimal { precision, scale })
            if f.is_integral() || matches!(f, DbxType::Decimal { .. }) =>
        {
            as_decimal(f).is_some_and(|(p2, s2)| decimal_wider(*precision, *scale, p2, s2))
        }
        (DbxType::Date, DbxType::TimestampNtz) => true,
        // Both are 64-bit microsecond timestamps in Parquet; the flag only
        // says whether they are UTC instants.
        (DbxType::TimestampNtz, DbxType::Timestamp)
        | (DbxType::Timestamp, DbxType::TimestampNtz) => true,
        (DbxType::Array(a), DbxType::Array(b)) => parquet_readable(a, b),
        _ => false,
    }
}

/// Delta type widening: the changes `ALTER TABLE ... ALTER COLUMN ... TYPE`
/// may make once `delta.enableTypeWidening` is true. From the supported
/// type changes table: BYTE to SHORT, INT, BIGINT, DECIMAL, DOUBLE; SHORT to
/// INT, BIGINT, DECIMAL, DOUBLE; INT to BIGINT, DECIMAL, DOUBLE; BIGINT to
/// DECIMAL; FLOAT to DOUBLE; DECIMAL to DECIMAL with greater precision and
/// scale; DATE to TIMESTAMP_NTZ. "When changing any numeric type to decimal,
/// the total precision must be equal to or greater than the starting
/// precision. If you also increase the scale, the total precision must
/// increase by a corresponding amount. The minimum target for byte, short,
/// and int types is decimal(10,0). The minimum target for long is
/// decimal(20,0)."
pub fn type_widening_allowed(from: &DbxType, to: &DbxType) -> bool {
    match (from, to) {
        (f, t) if f.is_integral() && t.is_integral() => numeric_rank(f) < numeric_rank(t),
        (DbxType::Byte | DbxType::Short | DbxType::Int, DbxType::Double) => true,
        (DbxType::Byte | DbxType::Short | DbxType::Int, DbxType::Decimal { precision, scale }) => {
            decimal_wider(*precision, *scale, 10, 0)
        }
        (DbxType::Long, DbxType::Decimal { precision, scale }) => {
            decimal_wider(*precision, *scale, 20, 0)
        }
        (DbxType::Float, DbxType::Double) => true,
        (
            DbxType::Decimal {
                precision: p1,
                scale: s1,
            },
            DbxType::Decimal {
                precision: p2,
                scale: s2,
            },
        ) => (p1, s1) != (p2, s2) && p2 >= p1 && s2 >= s1 && (p2 - p1) >= (s2 - s1),
        (DbxType::Date, DbxType::TimestampNtz) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(p: u8, s: u8) -> DbxType {
        DbxType::Decimal {
            precision: p,
            scale: s,
        }
    }

    #[test]
    fn up_casts_follow_spark() {
        assert!(can_up_cast(&DbxType::Int, &DbxType::Long));
        assert!(can_up_cast(&DbxType::Int, &DbxType::Double));
        assert!(!can_up_cast(&DbxType::Long, &DbxType::Int));
        assert!(can_up_cast(&DbxType::Int, &dec(10, 0)));
        assert!(!can_up_cast(&DbxType::Int, &dec(9, 0)));
        assert!(can_up_cast(&dec(10, 2), &dec(12, 2)));
        assert!(!can_up_cast(&dec(10, 2), &dec(10, 3)));
        assert!(!can_up_cast(&DbxType::String, &DbxType::Int));
        assert!(can_up_cast(&DbxType::Int, &DbxType::String));
        assert!(can_up_cast(&DbxType::Date, &DbxType::Timestamp));
    }

    #[test]
    fn type_widening_follows_the_documented_table() {
        assert!(type_widening_allowed(&DbxType::Int, &DbxType::Long));
        assert!(type_widening_allowed(&DbxType::Byte, &DbxType::Short));
        assert!(!type_widening_allowed(&DbxType::Long, &DbxType::Int));
        assert!(!type_widening_allowed(&DbxType::Long, &DbxType::Double));
        assert!(type_widening_allowed(&DbxType::Int, &dec(10, 0)));
        assert!(!type_widening_allowed(&DbxType::Int, &dec(9, 0)));
        assert!(type_widening_allowed(&DbxType::Long, &dec(20, 0)));
        assert!(type_widening_allowed(&dec(10, 1), &dec(12, 3)));
        assert!(!type_widening_allowed(&dec(10, 1), &dec(11, 3)));
        assert!(type_widening_allowed(
            &DbxType::Date,
            &DbxType::TimestampNtz
        ));
        assert!(!type_widening_allowed(&DbxType::Date, &DbxType::Timestamp));
        assert!(!type_widening_allowed(&DbxType::Int, &DbxType::String));
    }
}
