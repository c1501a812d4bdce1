//! Streaming reader for a BULK_LOAD (0x07) message, the data half of
//! `INSERT BULK` (MS-TDS 2.2.6.1): COLMETADATA, ROW/NBCROW tokens, DONE.
//!
//! What clients send, verified in their sources:
//! - tiberius echoes the COLMETADATA the server returned for
//!   `SELECT TOP 0 * FROM table` (so exactly our "N" types), only for
//!   columns flagged updateable (identity columns only with KeepIdentity),
//!   then one ROW token (0xD1, never NBCROW) per row, each value encoded per
//!   that column's TYPE_INFO — (max) values as PLP with UNKNOWN length and a
//!   single chunk, NULL as the type's NULL form — and a final DONE with
//!   status 0. Decimal values carry their own length byte (by the value's
//!   precision, not the column's), so we decode by the length actually sent.
//! - FreeTDS freebcp/ODBC bcp also echo the server's column types, may use
//!   the legacy fixed types for NOT NULL columns and TEXT/NTEXT/IMAGE for
//!   large columns; both send the TEXT table name as a bare US_VARCHAR (no
//!   NumParts byte), which is what SQL Server expects from clients.
//!
//! TEXT/NTEXT/IMAGE row values carry a text pointer and timestamp that are
//! skipped. A clean end of input at a token boundary is accepted as the end
//! of data even without DONE.

use std::io::Read;

use super::tokens::{TOKEN_COLMETADATA, TOKEN_DONE, TOKEN_NBCROW, TOKEN_ROW};
use super::values::{read_type_info, read_value, WireType};
use super::wire::{Source, StreamSource};
use super::{Result, TdsError};
use crate::types::{ColumnMeta, Value};

/// Reads the rows of a bulk load as they stream in.
pub struct BulkReader<R: Read> {
    src: StreamSource<R>,
    columns: Vec<ColumnMeta>,
    wire: Vec<WireType>,
    done: bool,
    /// DONE's row count (informational; clients send 0).
    done_rows: Option<u64>,
}

impl<R: Read> BulkReader<R> {
    /// Reads the leading COLMETADATA token.
    pub fn new(r: R) -> Result<Self> {
        let mut src = StreamSource::new(r);
        let tok = src
            .try_u8()?
            .ok_or_else(|| TdsError::proto("empty bulk load"))?;
        if tok != TOKEN_COLMETADATA {
            return Err(TdsError::proto(format!(
                "bulk load must start with COLMETADATA, got token {tok:#04x}"
            )));
        }
        let count = src.u16le()?;
        let mut columns = Vec::new();
        let mut wire = Vec::new();
        if count != 0xFFFF {
            for _ in 0..count {
                let _user_type = src.u32le()?;
                let flags = src.u16le()?;
                let w = read_type_info(&mut src)?;
                if w.is_long_text() {
                    let _table = src.us_varchar()?;
                }
                let name = src.b_varchar()?;
                columns.push(ColumnMeta {
                    name,
                    sql_type: w.sql_type,
                    nullable: flags & 0x0001 != 0,
                    identity: flags & 0x0010 != 0,
                    updateable: flags & 0x000C != 0,
                    collation: w.collation.as_ref().map(crate::types::Collation::from_tds),
                });
                wire.push(w);
            }
        }
        Ok(BulkReader {
            src,
            columns,
            wire,
            done: false,
            done_rows: None,
        })
    }

    /// The columns as the client described them.
    pub fn columns(&self) -> &[ColumnMeta] {
        &self.columns
    }

    /// The raw TYPE_INFO of each column (e.g. to tell TEXT from varchar(max)).
    pub fn wire_types(&self) -> &[WireType] {
        &self.wire
    }

    /// Row count from the client's DONE token, once seen.
    pub fn done_row_count(&self) -> Option<u64> {
        self.done_rows
    }

    /// The next row, or `None` after DONE / end of data.
    pub fn next_row(&mut self) -> Result<Option<Vec<Value>>> {
        if self.done {
            return Ok(None);
        }
        let Some(tok) = self.src.try_u8()? else {
            self.done = true;
            return Ok(None);
        };
        match tok {
            TOKEN_ROW => {
                let mut row = Vec::with_capacity(self.wire.len());
                for w in &self.wire {
                    row.push(read_value(&mut self.src, w, true)?);
                }
                Ok(Some(row))
            }
            TOKEN_NBCROW => {
                let mut bitmap = vec![0u8; self.wire.len().div_ceil(8)];
                self.src.read_into(&mut bitmap)?;
                let mut row = Vec::with_capacity(self.wire.len());
                for (i, w) in self.wire.iter().enumerate() {
                    if bitmap[i / 8] & (1 << (i % 8)) != 0 {
                        row.push(Value::Null);
                    } else {
                        row.push(read_value(&mut self.src, w, true)?);
                    }
                }
                Ok(Some(row))
            }
            TOKEN_DONE => {
                // The rest of the message is DONE's body: status, cur_cmd and a
                // row count of 8 bytes (TDS 7.2+) or 4 (TDS 7.1, and what
                // Microsoft's mssql-python bulk copy sends). Nothing follows it.
                let mut rest = Vec::new();
                while let Some(b) = self.src.try_u8()? {
                    if rest.len() == 12 {
                        return Err(TdsError::proto("data after DONE in bulk load"));
                    }
                    rest.push(b);
                }
                self.done_rows = match rest.len() {
                    12 => rest[4..12].try_into().ok().map(u64::from_le_bytes),
                    8 => rest[4..8]
                        .try_into()
                        .ok()
                        .map(|b| u64::from(u32::from_le_bytes(b))),
                    n => return Err(TdsError::proto(format!("bulk load DONE of {n} bytes"))),
                };
                self.done = true;
                Ok(None)
            }
            other => Err(TdsError::proto(format!(
                "unexpected token {other:#04x} in bulk load data"
            ))),
        }
    }

    /// Gives back the underlying reader (e.g. to drain the message).
    pub fn into_inner(self) -> R {
        self.src.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::packet::{self, MessageReader};
    use crate::tds::testutil::XorShift;
    use crate::tds::values::{ty, DEFAULT_COLLATION};
    use crate::types::{Len, SqlType};

    /// A bulk stream the way tiberius builds it for a table with a TEXT
    /// column and legacy NOT NULL int, sent in 512-byte packets.
    #[test]
    fn legacy_and_text_columns_over_packets() {
        let mut b = vec![TOKEN_COLMETADATA, 3, 0];
        // c1: INT4 NOT NULL
        b.extend_from_slice(&[0, 0, 0, 0, 0x08, 0, ty::INT4, 2, b'c', 0, b'1', 0]);
        // c2: TEXT with table name
        b.extend_from_slice(&[0, 0, 0, 0, 0x09, 0, ty::TEXT]);
        b.extend_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
        b.extend_from_slice(&DEFAULT_COLLATION);
        b.extend_from_slice(&[1, 0, b't', 0]);
        b.extend_from_slice(&[2, b'c', 0, b'2', 0]);
        // c3: varbinary(max)
        b.extend_from_slice(&[
            0,
            0,
            0,
            0,
            0x09,
            0,
            ty::BIGVARBINARY,
            0xFF,
            0xFF,
            2,
            b'c',
            0,
            b'3',
            0,
        ]);
        let big = vec![0xABu8; 5000];
        for i in 0..3i32 {
            b.push(TOKEN_ROW);
            b.extend_from_slice(&i.to_le_bytes());
            if i == 1 {
                b.push(0); // NULL text
            } else {
                b.push(16);
                b.extend_from_slice(&[0; 24]);
                b.extend_from_slice(&2u32.to_le_bytes());
                b.extend_from_slice(b"hi");
            }
            b.extend_from_slice(&(u64::MAX - 1).to_le_bytes());
            b.extend_from_slice(&(big.len() as u32).to_le_bytes());
            b.extend_from_slice(&big);
            b.extend_from_slice(&0u32.to_le_bytes());
        }
        b.extend_from_slice(&[TOKEN_DONE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let wire = packet::encode_message(packet::BULK_LOAD, &b, 512);

        let mut r = &wire[..];
        let h = packet::read_packet_header(&mut r).unwrap().unwrap();
        let mut mr = MessageReader::new(&mut r, h);
        let mut br = BulkReader::new(&mut mr).unwrap();
        let cols = br.columns().to_vec();
        assert_eq!(cols[0].sql_type, SqlType::Int);
        assert!(!cols[0].nullable);
        assert_eq!(cols[1].sql_type, SqlType::VarChar(Len::Max));
        assert_eq!(cols[2].sql_type, SqlType::VarBinary(Len::Max));
        for i in 0..3 {
            let row = br.next_row().unwrap().unwrap();
            assert_eq!(row[0], Value::Int(i));
            if i == 1 {
                assert_eq!(row[1], Value::Null);
            } else {
                assert_eq!(row[1], Value::String("hi".into()));
            }
            assert_eq!(row[2], Value::Binary(big.clone()));
        }
        assert!(br.next_row().unwrap().is_none());
        assert_eq!(br.done_row_count(), Some(0));
        drop(br);
        assert!(mr.is_finished());
    }

    #[test]
    fn truncated_and_random_streams_error() {
        let mut b = vec![
            TOKEN_COLMETADATA,
            1,
            0,
            0,
            0,
            0,
            0,
            1,
            0,
            ty::INTN,
            4,
            1,
            b'a',
            0,
        ];
        b.extend_from_slice(&[TOKEN_ROW, 4, 1, 2]);
        let mut br = BulkReader::new(&b[..]).unwrap();
        assert!(br.next_row().is_err());
        assert!(BulkReader::new(&[0xD1u8][..]).is_err());
        assert!(BulkReader::new(&[][..]).is_err());

        let mut rng = XorShift(7);
        for _ in 0..20_000 {
            let mut b = rng.bytes(80);
            if rng.next() & 1 == 0 && !b.is_empty() {
                b[0] = TOKEN_COLMETADATA;
                if b.len() > 2 {
                    b[1] %= 4;
                    b[2] = 0;
                }
            }
            if let Ok(mut br) = BulkReader::new(&b[..]) {
                for _ in 0..10 {
                    match br.next_row() {
                        Ok(Some(_)) => {}
                        _ => break,
                    }
                }
            }
        }
    }
}
