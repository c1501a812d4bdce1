//! A query's partitioned read, as a user asks for it (`partition_on` and
//! `partitions` in `<name>.yaml`, `--partition-on`/`--partitions`, the
//! API's `partition_on`/`partitions`); `extract::partition` runs it.

/// Partitions at most (more would only queue for pooled connections).
pub const MAX_PARTITIONS: u32 = 64;

/// Which column splits a query, into how many partitions.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Partitioning {
    pub column: String,
    pub count: u32,
}

impl Partitioning {
    /// Checks a column name and a count, with messages naming `source` (a
    /// file and key, or a CLI flag).
    pub fn new(column: &str, count: u32, source: &str) -> Result<Partitioning, String> {
        let c = column.trim();
        if c.is_empty()
            || c.len() > 128
            || c.chars()
                .any(|ch| ch.is_control() || ch == '[' || ch == ']')
        {
            return Err(format!(
                "{source}: partition column '{column}' is not a column name"
            ));
        }
        if !(1..=MAX_PARTITIONS).contains(&count) {
            return Err(format!(
                "{source}: partitions must be between 1 and {MAX_PARTITIONS}, not {count}"
            ));
        }
        Ok(Partitioning {
            column: c.to_string(),
            count,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_counts_are_checked() {
        assert!(Partitioning::new("id", 4, "x").is_ok());
        assert!(Partitioning::new("a]b", 4, "x").is_err());
        assert!(Partitioning::new(" ", 4, "x").is_err());
        let e = Partitioning::new("id", 0, "queries/v.yaml: partitions").unwrap_err();
        assert!(
            e.contains("queries/v.yaml") && e.contains("between 1 and 64"),
            "{e}"
        );
    }
}
