//! Server → client token encoders (MS-TDS 2.2.7). Each appends one token to
//! a response buffer that the session hands to a [`PacketWriter`].
//!
//! [`PacketWriter`]: super::packet::PacketWriter

use super::values::{write_type_info, write_type_info_in, write_value, write_value_in};
use super::{Result, TdsError};
use crate::types::{ColumnMeta, SqlType, Value};

pub use super::values::DEFAULT_COLLATION;

pub const TOKEN_COLMETADATA: u8 = 0x81;
pub const TOKEN_ERROR: u8 = 0xAA;
pub const TOKEN_INFO: u8 = 0xAB;
pub const TOKEN_RETURNVALUE: u8 = 0xAC;
pub const TOKEN_LOGINACK: u8 = 0xAD;
pub const TOKEN_FEATUREEXTACK: u8 = 0xAE;
pub const TOKEN_RETURNSTATUS: u8 = 0x79;
pub const TOKEN_ROW: u8 = 0xD1;
pub const TOKEN_NBCROW: u8 = 0xD2;
pub const TOKEN_ENVCHANGE: u8 = 0xE3;
pub const TOKEN_DONE: u8 = 0xFD;
pub const TOKEN_DONEPROC: u8 = 0xFE;
pub const TOKEN_DONEINPROC: u8 = 0xFF;

/// DONE status bits.
pub const DONE_FINAL: u16 = 0x00;
pub const DONE_MORE: u16 = 0x01;
pub const DONE_ERROR: u16 = 0x02;
pub const DONE_INXACT: u16 = 0x04;
pub const DONE_COUNT: u16 = 0x10;
pub const DONE_ATTN: u16 = 0x20;
pub const DONE_SRVERROR: u16 = 0x100;

/// CurCmd values SQL Server puts in DONE tokens (token-stream command codes).
pub const CMD_SELECT: u16 = 0xC1;
pub const CMD_INSERT: u16 = 0xC3;
pub const CMD_DELETE: u16 = 0xC4;
pub const CMD_UPDATE: u16 = 0xC5;
pub const CMD_EXECUTE: u16 = 0xE0;

/// ENVCHANGE types we emit.
pub const ENV_DATABASE: u8 = 1;
pub const ENV_LANGUAGE: u8 = 2;
pub const ENV_PACKET_SIZE: u8 = 4;
pub const ENV_SQL_COLLATION: u8 = 7;
pub const ENV_BEGIN_TRAN: u8 = 8;
pub const ENV_COMMIT_TRAN: u8 = 9;
pub const ENV_ROLLBACK_TRAN: u8 = 10;
pub const ENV_MIRROR_PARTNER: u8 = 13;
pub const ENV_RESET_CONNECTION_ACK: u8 = 18;

/// TDS version we acknowledge (7.4).
pub const TDS_VERSION_74: u32 = 0x7400_0004;

/// Version we report: 16.0.1000.6 is SQL Server 2022 RTM.
pub const SERVER_VERSION: [u8; 4] = [16, 0, 0x03, 0xE8];

/// COLMETADATA flag bits.
pub const COL_NULLABLE: u16 = 0x0001;
/// usUpdateable (bits 2-3) = 2 "unknown", which is what SQL Server reports
/// for base-table columns outside FOR BROWSE; tiberius's bulk insert treats
/// both 1 and 2 as writable and skips columns with neither.
pub const COL_UPDATEABLE: u16 = 0x0008;
pub const COL_IDENTITY: u16 = 0x0010;

/// Writes `len` into the u16 placeholder at `at` (token length fields).
fn patch_len(out: &mut [u8], at: usize) -> Result<()> {
    let len = out.len() - at - 2;
    let len = u16::try_from(len).map_err(|_| TdsError::proto("token longer than 65535 bytes"))?;
    out[at..at + 2].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// B_VARCHAR, truncated to 255 UTF-16 units.
fn put_b_varchar(out: &mut Vec<u8>, s: &str) {
    let units: Vec<u16> = s.encode_utf16().take(255).collect();
    out.push(units.len() as u8);
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

/// US_VARCHAR, truncated to `max` UTF-16 units.
fn put_us_varchar(out: &mut Vec<u8>, s: &str, max: usize) {
    let units: Vec<u16> = s.encode_utf16().take(max).collect();
    out.extend_from_slice(&(units.len() as u16).to_le_bytes());
    for u in units {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

/// LOGINACK: interface 1 (T-SQL), the TDS version big-endian, program name
/// and a 4-byte version (major, minor, build hi, build lo).
pub fn login_ack(out: &mut Vec<u8>, tds_version: u32, server_version: [u8; 4]) {
    out.push(TOKEN_LOGINACK);
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    out.push(1);
    out.extend_from_slice(&tds_version.to_be_bytes());
    put_b_varchar(out, "Microsoft SQL Server");
    out.extend_from_slice(&server_version);
    // Cannot exceed u16: fixed small content.
    let _ = patch_len(out, at);
}

/// The TDS version to acknowledge for a client's LOGIN7 version: the
/// client's own when it is a known 7.x version below 7.4, else 7.4.
/// SSPI (0xED): a security token of the server's for the client's
/// integrated sign-in, its length a USHORT ([MS-TDS] 2.2.7.22).
pub fn sspi(out: &mut Vec<u8>, token: &[u8]) {
    out.push(0xED);
    out.extend_from_slice(&(token.len().min(usize::from(u16::MAX)) as u16).to_le_bytes());
    out.extend_from_slice(&token[..token.len().min(usize::from(u16::MAX))]);
}

pub fn negotiate_tds_version(client: u32) -> u32 {
    match client {
        0x7000_0000 | 0x7100_0000 | 0x7100_0001 | 0x7209_0002 | 0x730A_0003 | 0x730B_0003 => client,
        _ => TDS_VERSION_74,
    }
}

fn env_start(out: &mut Vec<u8>, ty: u8) -> usize {
    out.push(TOKEN_ENVCHANGE);
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    out.push(ty);
    at
}

fn env_strings(out: &mut Vec<u8>, ty: u8, new: &str, old: &str) {
    let at = env_start(out, ty);
    put_b_varchar(out, new);
    put_b_varchar(out, old);
    let _ = patch_len(out, at);
}

fn env_bytes(out: &mut Vec<u8>, ty: u8, new: &[u8], old: &[u8]) {
    let at = env_start(out, ty);
    out.push(new.len() as u8);
    out.extend_from_slice(new);
    out.push(old.len() as u8);
    out.extend_from_slice(old);
    let _ = patch_len(out, at);
}

/// ENVCHANGE 1: current database.
pub fn env_database(out: &mut Vec<u8>, new: &str, old: &str) {
    env_strings(out, ENV_DATABASE, new, old);
}

/// ENVCHANGE 2: language.
pub fn env_language(out: &mut Vec<u8>, new: &str, old: &str) {
    env_strings(out, ENV_LANGUAGE, new, old);
}

/// ENVCHANGE 4: packet size, as decimal strings.
pub fn env_packet_size(out: &mut Vec<u8>, new: u32, old: u32) {
    env_strings(out, ENV_PACKET_SIZE, &new.to_string(), &old.to_string());
}

/// ENVCHANGE 7: SQL collation (5 bytes; old value empty).
pub fn env_collation(out: &mut Vec<u8>, new: &[u8; 5]) {
    env_bytes(out, ENV_SQL_COLLATION, new, &[]);
}

/// ENVCHANGE 8: a transaction began; `descriptor` is what the client must
/// echo in ALL_HEADERS from now on.
pub fn env_begin_tran(out: &mut Vec<u8>, descriptor: u64) {
    env_bytes(out, ENV_BEGIN_TRAN, &descriptor.to_le_bytes(), &[]);
}

/// ENVCHANGE 9: the transaction `descriptor` committed.
pub fn env_commit_tran(out: &mut Vec<u8>, descriptor: u64) {
    env_bytes(out, ENV_COMMIT_TRAN, &[], &descriptor.to_le_bytes());
}

/// ENVCHANGE 10: the transaction `descriptor` rolled back.
pub fn env_rollback_tran(out: &mut Vec<u8>, descriptor: u64) {
    env_bytes(out, ENV_ROLLBACK_TRAN, &[], &descriptor.to_le_bytes());
}

/// ENVCHANGE 13: database mirroring partner (new value only).
pub fn env_mirror_partner(out: &mut Vec<u8>, partner: &str) {
    env_strings(out, ENV_MIRROR_PARTNER, partner, "");
}

/// ENVCHANGE 18: acknowledges a RESET_CONNECTION request.
pub fn env_reset_connection_ack(out: &mut Vec<u8>) {
    env_bytes(out, ENV_RESET_CONNECTION_ACK, &[], &[]);
}

/// Body of an ERROR or INFO token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerMessage {
    pub number: i32,
    pub state: u8,
    /// Severity: 0-10 informational, 11-16 user errors, 20+ fatal.
    pub class: u8,
    pub message: String,
    pub server: String,
    pub procedure: String,
    pub line: i32,
}

fn message_token(out: &mut Vec<u8>, token: u8, m: &ServerMessage) {
    out.push(token);
    let at = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&m.number.to_le_bytes());
    out.push(m.state);
    out.push(m.class);
    // Keep the whole token under the u16 length.
    put_us_varchar(out, &m.message, 30_000);
    put_b_varchar(out, &m.server);
    put_b_varchar(out, &m.procedure);
    out.extend_from_slice(&m.line.to_le_bytes());
    let _ = patch_len(out, at);
}

/// ERROR token (TDS 7.2+ layout, 4-byte line number).
pub fn error(out: &mut Vec<u8>, m: &ServerMessage) {
    message_token(out, TOKEN_ERROR, m);
}

/// INFO token (same layout as ERROR).
pub fn info(out: &mut Vec<u8>, m: &ServerMessage) {
    message_token(out, TOKEN_INFO, m);
}

fn done_token(out: &mut Vec<u8>, token: u8, status: u16, cur_cmd: u16, rows: u64) {
    out.push(token);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&cur_cmd.to_le_bytes());
    out.extend_from_slice(&rows.to_le_bytes());
}

/// DONE: end of a SQL statement (batch level). Set DONE_COUNT when `rows`
/// is meaningful, DONE_MORE unless this is the last token of the response.
pub fn done(out: &mut Vec<u8>, status: u16, cur_cmd: u16, rows: u64) {
    done_token(out, TOKEN_DONE, status, cur_cmd, rows);
}

/// DONEPROC: end of an RPC.
pub fn done_proc(out: &mut Vec<u8>, status: u16, cur_cmd: u16, rows: u64) {
    done_token(out, TOKEN_DONEPROC, status, cur_cmd, rows);
}

/// DONEINPROC: end of a statement inside an RPC.
pub fn done_in_proc(out: &mut Vec<u8>, status: u16, cur_cmd: u16, rows: u64) {
    done_token(out, TOKEN_DONEINPROC, status, cur_cmd, rows);
}

/// RETURNSTATUS: the procedure's return code.
pub fn return_status(out: &mut Vec<u8>, status: i32) {
    out.push(TOKEN_RETURNSTATUS);
    out.extend_from_slice(&status.to_le_bytes());
}

/// RETURNVALUE for an output parameter (e.g. sp_prepare's `@handle`):
/// ordinal, name, status 0x01 (output parameter; 0x02 = UDF return value),
/// user type, flags, TYPE_INFO, value.
pub fn return_value(
    out: &mut Vec<u8>,
    ordinal: u16,
    name: &str,
    sql_type: &SqlType,
    value: &Value,
    status: u8,
) -> Result<()> {
    let mut t = vec![TOKEN_RETURNVALUE];
    t.extend_from_slice(&ordinal.to_le_bytes());
    put_b_varchar(&mut t, name);
    t.push(status);
    t.extend_from_slice(&0u32.to_le_bytes()); // user type
    t.extend_from_slice(&COL_NULLABLE.to_le_bytes());
    write_type_info(&mut t, sql_type)?;
    write_value(&mut t, sql_type, value, name)?;
    out.extend_from_slice(&t);
    Ok(())
}

/// FEATUREEXTACK: the acknowledged features, then the 0xFF terminator.
/// Send it (possibly empty) when the client's LOGIN7 had a FeatureExt block.
pub fn feature_ext_ack(out: &mut Vec<u8>, features: &[(u8, &[u8])]) {
    out.push(TOKEN_FEATUREEXTACK);
    for (id, data) in features {
        out.push(*id);
        out.extend_from_slice(&(data.len() as u32).to_le_bytes());
        out.extend_from_slice(data);
    }
    out.push(0xFF);
}

/// COLMETADATA for a result set.
pub fn col_metadata(out: &mut Vec<u8>, columns: &[ColumnMeta]) -> Result<()> {
    let n = u16::try_from(columns.len())
        .ok()
        .filter(|&n| n < 0xFFFF)
        .ok_or_else(|| TdsError::proto("too many columns"))?;
    let mut t = vec![TOKEN_COLMETADATA];
    t.extend_from_slice(&n.to_le_bytes());
    for c in columns {
        t.extend_from_slice(&0u32.to_le_bytes()); // user type
        let mut flags = 0u16;
        if c.nullable {
            flags |= COL_NULLABLE;
        }
        // SQL Server reports identity columns read-only (no updateable
        // bits), which is also what makes bulk-copy clients skip them.
        if c.identity {
            flags |= COL_IDENTITY;
        } else if c.updateable {
            flags |= COL_UPDATEABLE;
        }
        t.extend_from_slice(&flags.to_le_bytes());
        match fixed_type(c) {
            Some(code) => t.push(code),
            None => write_type_info_in(&mut t, &c.sql_type, c.collation.as_ref())
                .map_err(|e| TdsError::proto(format!("column {:?}: {e}", c.name)))?,
        }
        put_b_varchar(&mut t, &c.name);
    }
    out.extend_from_slice(&t);
    Ok(())
}

/// The fixed-length type SQL Server uses for a NOT NULL column, where one
/// exists (MS-TDS 2.2.5.4.2: "non-nullable values are returned using these
/// fixed-length data types"); ODBC reports nullability from it.
fn fixed_type(c: &ColumnMeta) -> Option<u8> {
    if c.nullable {
        return None;
    }
    Some(match c.sql_type {
        SqlType::TinyInt => 0x30,
        SqlType::Bit => 0x32,
        SqlType::SmallInt => 0x34,
        SqlType::Int => 0x38,
        SqlType::SmallDateTime => 0x3A,
        SqlType::Real => 0x3B,
        SqlType::Money => 0x3C,
        SqlType::DateTime => 0x3D,
        SqlType::Float => 0x3E,
        SqlType::SmallMoney => 0x7A,
        SqlType::BigInt => 0x7F,
        _ => return None,
    })
}

/// Writes one non-NULL value; fixed-length columns carry no length byte.
fn write_cell(out: &mut Vec<u8>, c: &ColumnMeta, v: &Value) -> Result<()> {
    let start = out.len();
    write_value_in(out, &c.sql_type, v, &c.name, c.collation.as_ref())?;
    if fixed_type(c).is_some() {
        if v.is_null() {
            return Err(TdsError::proto(format!(
                "NULL in NOT NULL column {:?}",
                c.name
            )));
        }
        // The nullable encoding starts with a one-byte length: drop it.
        out.remove(start);
    }
    Ok(())
}

/// One result row: NBCROW (null bitmap, NULLs omitted) when any value is
/// NULL, otherwise ROW. On error `out` is left unchanged.
pub fn row(out: &mut Vec<u8>, columns: &[ColumnMeta], values: &[Value]) -> Result<()> {
    if columns.len() != values.len() {
        return Err(TdsError::proto(format!(
            "row has {} values for {} columns",
            values.len(),
            columns.len()
        )));
    }
    let start = out.len();
    let r = write_row(out, columns, values);
    if r.is_err() {
        out.truncate(start);
    }
    r
}

fn write_row(out: &mut Vec<u8>, columns: &[ColumnMeta], values: &[Value]) -> Result<()> {
    if values.iter().any(Value::is_null) {
        out.push(TOKEN_NBCROW);
        let mut bitmap = vec![0u8; values.len().div_ceil(8)];
        for (i, v) in values.iter().enumerate() {
            if v.is_null() {
                bitmap[i / 8] |= 1 << (i % 8);
            }
        }
        out.extend_from_slice(&bitmap);
        for (c, v) in columns.iter().zip(values) {
            if !v.is_null() {
                write_cell(out, c, v)?;
            }
        }
    } else {
        out.push(TOKEN_ROW);
        for (c, v) in columns.iter().zip(values) {
            write_cell(out, c, v)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::bulk::BulkReader;
    use crate::types::Len;

    #[test]
    fn login_ack_bytes() {
        let mut b = Vec::new();
        login_ack(&mut b, TDS_VERSION_74, SERVER_VERSION);
        assert_eq!(b[0], TOKEN_LOGINACK);
        let len = u16::from_le_bytes([b[1], b[2]]) as usize;
        assert_eq!(len, b.len() - 3);
        assert_eq!(&b[3..8], &[1, 0x74, 0, 0, 4]);
        assert_eq!(b[8] as usize, "Microsoft SQL Server".len());
        assert_eq!(&b[b.len() - 4..], &[16, 0, 3, 0xE8]);
    }

    #[test]
    fn envchange_bytes() {
        let mut b = Vec::new();
        env_packet_size(&mut b, 8192, 4096);
        assert_eq!(
            b,
            [
                0xE3, 19, 0, 4, 4, b'8', 0, b'1', 0, b'9', 0, b'2', 0, 4, b'4', 0, b'0', 0, b'9',
                0, b'6', 0
            ]
        );
        b.clear();
        env_begin_tran(&mut b, 0x0807060504030201);
        assert_eq!(b, [0xE3, 11, 0, 8, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0]);
        b.clear();
        env_commit_tran(&mut b, 1);
        assert_eq!(b, [0xE3, 11, 0, 9, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0]);
        b.clear();
        env_reset_connection_ack(&mut b);
        assert_eq!(b, [0xE3, 3, 0, 18, 0, 0]);
        b.clear();
        env_collation(&mut b, &DEFAULT_COLLATION);
        assert_eq!(b, [0xE3, 8, 0, 7, 5, 0x09, 0x04, 0xD0, 0x00, 0x34, 0]);
    }

    #[test]
    fn error_and_done_bytes() {
        let mut b = Vec::new();
        error(
            &mut b,
            &ServerMessage {
                number: 208,
                state: 1,
                class: 16,
                message: "x".into(),
                server: "s".into(),
                procedure: String::new(),
                line: 1,
            },
        );
        assert_eq!(
            b,
            [0xAA, 18, 0, 208, 0, 0, 0, 1, 16, 1, 0, b'x', 0, 1, b's', 0, 0, 1, 0, 0, 0]
        );
        b.clear();
        done(&mut b, DONE_COUNT | DONE_MORE, CMD_SELECT, 3);
        assert_eq!(b, [0xFD, 0x11, 0, 0xC1, 0, 3, 0, 0, 0, 0, 0, 0, 0]);
        b.clear();
        feature_ext_ack(&mut b, &[]);
        assert_eq!(b, [0xAE, 0xFF]);
    }

    #[test]
    fn colmetadata_flags_and_types() {
        let mut id = ColumnMeta::new("id", SqlType::Int);
        id.identity = true;
        id.nullable = false;
        id.updateable = true;
        let mut name = ColumnMeta::new("n", SqlType::NVarChar(Len::N(10)));
        name.updateable = true;
        let mut b = Vec::new();
        col_metadata(&mut b, &[id, name]).unwrap();
        let expect: Vec<u8> = vec![
            0x81, 2, 0, // count
            0, 0, 0, 0, 0x10, 0, 0x38, 2, b'i', 0, b'd', 0, // id: NOT NULL int is INT4
            0, 0, 0, 0, 0x09, 0, 0xE7, 20, 0, 0x09, 0x04, 0xD0, 0x00, 0x34, 1, b'n', 0,
        ];
        assert_eq!(b, expect);
    }

    #[test]
    fn not_null_fixed_types_have_no_length_byte() {
        let mut c = ColumnMeta::new("n", SqlType::BigInt);
        c.nullable = false;
        let mut b = Vec::new();
        row(&mut b, &[c], &[Value::Int(-2)]).unwrap();
        assert_eq!(b, [0xD1, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]);
    }

    #[test]
    fn nbcrow_bitmap() {
        let cols: Vec<ColumnMeta> = (0..9)
            .map(|i| ColumnMeta::new(format!("c{i}"), SqlType::Int))
            .collect();
        let mut vals = vec![Value::Int(1); 9];
        vals[0] = Value::Null;
        vals[8] = Value::Null;
        let mut b = Vec::new();
        row(&mut b, &cols, &vals).unwrap();
        assert_eq!(&b[..3], &[TOKEN_NBCROW, 0x01, 0x01]);
        assert_eq!(b.len(), 3 + 7 * 5);
        // Error leaves the buffer untouched.
        let before = b.clone();
        vals[1] = Value::String("no".into());
        assert!(row(&mut b, &cols, &vals).is_err());
        assert_eq!(b, before);
    }

    /// Our ROW/NBCROW encoder and the bulk reader's row decoder share the
    /// value layout, so a result set fed back as a bulk load round-trips.
    #[test]
    fn rows_roundtrip_through_bulk_reader() {
        use chrono::NaiveDate;
        let cols = vec![
            ColumnMeta::new("a", SqlType::Int),
            ColumnMeta::new("b", SqlType::NVarChar(Len::Max)),
            ColumnMeta::new(
                "c",
                SqlType::Decimal {
                    precision: 18,
                    scale: 2,
                    numeric: false,
                },
            ),
            ColumnMeta::new("d", SqlType::Date),
            ColumnMeta::new("e", SqlType::VarChar(Len::N(20))),
        ];
        let rows = vec![
            vec![
                Value::Int(1),
                Value::String("hello".into()),
                Value::Decimal("12.34".parse().unwrap()),
                Value::Date(NaiveDate::from_ymd_opt(2020, 5, 17).unwrap()),
                Value::String("café".into()),
            ],
            vec![
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
                Value::Null,
            ],
        ];
        let mut b = Vec::new();
        col_metadata(&mut b, &cols).unwrap();
        for r in &rows {
            row(&mut b, &cols, r).unwrap();
        }
        done(&mut b, DONE_FINAL, 0, 0);
        let mut br = BulkReader::new(&b[..]).unwrap();
        // String columns come back with the collation COLMETADATA carried.
        let expected: Vec<ColumnMeta> = cols
            .iter()
            .map(|c| ColumnMeta {
                collation: c
                    .sql_type
                    .is_string()
                    .then_some(crate::types::Collation::SERVER),
                ..c.clone()
            })
            .collect();
        assert_eq!(br.columns(), &expected[..]);
        for r in &rows {
            assert_eq!(&br.next_row().unwrap().unwrap(), r);
        }
        assert!(br.next_row().unwrap().is_none());
        assert!(br.next_row().unwrap().is_none());
    }
}
