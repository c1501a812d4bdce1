//! SQL_BATCH (MS-TDS 2.2.6.7): ALL_HEADERS then the batch text in UCS-2.

use super::{parse_all_headers, utf16le_to_string, AllHeaders, Result, TdsError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlBatch {
    pub headers: AllHeaders,
    pub text: String,
}

/// Parses a SQL_BATCH payload (ALL_HEADERS optional, see
/// [`parse_all_headers`]).
pub fn parse_sql_batch(payload: &[u8]) -> Result<SqlBatch> {
    let (headers, skip) = parse_all_headers(payload)?;
    let body = &payload[skip..];
    if body.len() & 1 != 0 {
        return Err(TdsError::proto("SQL batch text has an odd byte count"));
    }
    Ok(SqlBatch {
        headers,
        text: utf16le_to_string(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_with_and_without_headers() {
        let mut p = Vec::new();
        p.extend_from_slice(&22u32.to_le_bytes());
        p.extend_from_slice(&18u32.to_le_bytes());
        p.extend_from_slice(&2u16.to_le_bytes());
        p.extend_from_slice(&0u64.to_le_bytes());
        p.extend_from_slice(&1u32.to_le_bytes());
        crate::tds::put_utf16le(&mut p, "SELECT 1 -- é");
        let b = parse_sql_batch(&p).unwrap();
        assert!(b.headers.present);
        assert_eq!(b.text, "SELECT 1 -- é");
        let b = parse_sql_batch(&p[22..]).unwrap();
        assert!(!b.headers.present);
        assert_eq!(b.text, "SELECT 1 -- é");
        assert!(parse_sql_batch(&p[..23]).is_err());
        assert_eq!(parse_sql_batch(&[]).unwrap().text, "");
    }
}
