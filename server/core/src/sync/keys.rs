//! Primary keys seen twice among an event's rows, noticed while the rows
//! are loaded, so the usual case (no duplicates) needs no second pass over
//! the staged rows in SQL Server.
//!
//! Each row's key is hashed as the bytes of its converted values — what SQL
//! Server will compare. Distinct hashes prove distinct keys only where equal
//! values have equal bytes: integers, bit, decimal at the column's scale,
//! date and time types without an offset, uniqueidentifier. Strings
//! (collations make `'a'` equal `'A '`), floats (`0.0` equals `-0.0`),
//! binary and datetimeoffset (equal instants at different offsets) are left
//! to SQL Server, as are a repeated hash (maybe a collision) and events with
//! more keys than the check holds: then the staged rows are checked there.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use tiberius::ColumnData;

/// Keys held at most (a `u64` each, about 16 MiB with the set's overhead):
/// past this the check gives up and SQL Server checks.
const MAX_KEYS: usize = 1_000_000;

pub struct KeyCheck {
    seen: Option<HashSet<u64>>,
    hasher: DefaultHasher,
}

impl KeyCheck {
    /// `track`: whether the event needs one row per key.
    pub fn new(track: bool) -> Self {
        KeyCheck {
            seen: track.then(HashSet::new),
            hasher: DefaultHasher::new(),
        }
    }

    /// Adds one key column's value of the current row.
    pub fn value(&mut self, v: &ColumnData<'_>) {
        if self.seen.is_none() {
            return;
        }
        let h = &mut self.hasher;
        let exact = match v {
            ColumnData::Bit(x) => hash(h, 1, x),
            ColumnData::U8(x) => hash(h, 2, &x.map(i64::from)),
            ColumnData::I16(x) => hash(h, 2, &x.map(i64::from)),
            ColumnData::I32(x) => hash(h, 2, &x.map(i64::from)),
            ColumnData::I64(x) => hash(h, 2, x),
            ColumnData::Numeric(x) => hash(h, 3, &x.map(|n| (n.value(), n.scale()))),
            ColumnData::Date(x) => hash(h, 4, &x.map(|d| d.days())),
            ColumnData::DateTime2(x) => hash(
                h,
                5,
                &x.map(|d| (d.date().days(), d.time().increments(), d.time().scale())),
            ),
            ColumnData::Time(x) => hash(h, 6, &x.map(|t| (t.increments(), t.scale()))),
            ColumnData::DateTime(x) => hash(h, 7, &x.map(|d| (d.days(), d.seconds_fragments()))),
            ColumnData::SmallDateTime(x) => {
                hash(h, 8, &x.map(|d| (d.days(), d.seconds_fragments())))
            }
            ColumnData::Guid(x) => hash(h, 9, x),
            _ => false,
        };
        if !exact {
            self.seen = None;
        }
    }

    /// Ends the current row's key.
    pub fn end_row(&mut self) {
        let h = std::mem::replace(&mut self.hasher, DefaultHasher::new()).finish();
        if let Some(seen) = &mut self.seen {
            if !seen.insert(h) || seen.len() > MAX_KEYS {
                self.seen = None;
            }
        }
    }

    /// True when every key was different: SQL Server need not look.
    pub fn proven_unique(&self) -> bool {
        self.seen.is_some()
    }
}

fn hash(h: &mut DefaultHasher, tag: u8, v: &impl Hash) -> bool {
    tag.hash(h);
    v.hash(h);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiberius::numeric::Numeric;

    fn check(rows: &[Vec<ColumnData<'static>>]) -> bool {
        let mut k = KeyCheck::new(true);
        for r in rows {
            for v in r {
                k.value(v);
            }
            k.end_row();
        }
        k.proven_unique()
    }

    #[test]
    fn distinct_exact_keys_are_proven_unique_and_repeats_are_not() {
        let ids = |v: &[i64]| {
            v.iter()
                .map(|i| vec![ColumnData::I64(Some(*i))])
                .collect::<Vec<_>>()
        };
        assert!(check(&ids(&[1, 2, 3])));
        assert!(!check(&ids(&[1, 2, 1])));
        // Composite keys: (1, 2) and (2, 1) differ; a repeated pair does not.
        let pair = |a: i32, b: i64| vec![ColumnData::I32(Some(a)), ColumnData::I64(Some(b))];
        assert!(check(&[pair(1, 2), pair(2, 1)]));
        assert!(!check(&[pair(1, 2), pair(1, 2)]));
        let dec = |v: i128| vec![ColumnData::Numeric(Some(Numeric::new_with_scale(v, 2)))];
        assert!(check(&[dec(100), dec(101)]));
        assert!(!check(&[dec(100), dec(100)]));
        // Two NULL keys group together in SQL Server's GROUP BY.
        assert!(!check(&[
            vec![ColumnData::I64(None)],
            vec![ColumnData::I64(None)]
        ]));
    }

    #[test]
    fn strings_floats_and_untracked_events_are_left_to_sql_server() {
        let s = |v: &'static str| vec![ColumnData::String(Some(v.into()))];
        assert!(!check(&[s("a"), s("B")]));
        assert!(!check(&[
            vec![ColumnData::F64(Some(0.0))],
            vec![ColumnData::F64(Some(1.0))]
        ]));
        let mut k = KeyCheck::new(false);
        k.value(&ColumnData::I64(Some(1)));
        k.end_row();
        assert!(!k.proven_unique());
    }
}
