//! RPC request parsing (MS-TDS 2.2.6.6): ALL_HEADERS, then one or more calls
//! separated by a batch flag, each naming a procedure (by well-known id or
//! UCS-2 name) followed by its parameters.
//!
//! Parameter wire types per client, from their sources:
//! - tiberius: INTN(1/2/4/8), BITN, FLTN(4/8), NUMERICN(len, precision,
//!   scale of the value), NVARCHAR(8000) with an all-zero collation for
//!   strings ≤ 4000 chars and NVARCHAR(0xFFFF)/PLP-unknown-length above,
//!   BIGVARBINARY(8000)/(0xFFFF), DATETIMN(8/4), DATEN, TIMEN, DATETIME2N,
//!   DATETIMEOFFSETN, GUID, and NULLTYPE (0x1F, no value) for a NULL of
//!   unknown type (string/binary/date NULLs); typed NULL ints go as INTN
//!   with length 0.
//! - FreeTDS/ODBC: also legacy fixed types, BIGVARCHAR/BIGCHAR with a real
//!   collation, and TEXT/NTEXT/IMAGE (LONGLEN value, no text pointer).

use super::values::{read_type_info, read_value};
use super::wire::{SliceSource, Source};
use super::{parse_all_headers, AllHeaders, Result, TdsError};
use crate::types::{SqlType, Value};

pub const SP_CURSOR: u16 = 1;
pub const SP_CURSOROPEN: u16 = 2;
pub const SP_CURSORPREPARE: u16 = 3;
pub const SP_CURSOREXECUTE: u16 = 4;
pub const SP_CURSORPREPEXEC: u16 = 5;
pub const SP_CURSORUNPREPARE: u16 = 6;
pub const SP_CURSORFETCH: u16 = 7;
pub const SP_CURSOROPTION: u16 = 8;
pub const SP_CURSORCLOSE: u16 = 9;
pub const SP_EXECUTESQL: u16 = 10;
pub const SP_PREPARE: u16 = 11;
pub const SP_EXECUTE: u16 = 12;
pub const SP_PREPEXEC: u16 = 13;
pub const SP_PREPEXECRPC: u16 = 14;
pub const SP_UNPREPARE: u16 = 15;

/// Option flags of a call.
pub const OPT_WITH_RECOMPILE: u16 = 0x01;
pub const OPT_NO_METADATA: u16 = 0x02;
pub const OPT_REUSE_METADATA: u16 = 0x04;

/// Parameter status flags.
pub const PARAM_BY_REF: u8 = 0x01;
pub const PARAM_DEFAULT: u8 = 0x02;
pub const PARAM_ENCRYPTED: u8 = 0x08;

/// The procedure a call targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RpcProc {
    /// A well-known procedure id (0xFFFF form).
    Id(u16),
    Name(String),
}

impl RpcProc {
    /// The procedure name, resolving well-known ids (`sp_executesql`, ...).
    pub fn name(&self) -> &str {
        match self {
            RpcProc::Name(n) => n,
            RpcProc::Id(id) => match *id {
                SP_CURSOR => "sp_cursor",
                SP_CURSOROPEN => "sp_cursoropen",
                SP_CURSORPREPARE => "sp_cursorprepare",
                SP_CURSOREXECUTE => "sp_cursorexecute",
                SP_CURSORPREPEXEC => "sp_cursorprepexec",
                SP_CURSORUNPREPARE => "sp_cursorunprepare",
                SP_CURSORFETCH => "sp_cursorfetch",
                SP_CURSOROPTION => "sp_cursoroption",
                SP_CURSORCLOSE => "sp_cursorclose",
                SP_EXECUTESQL => "sp_executesql",
                SP_PREPARE => "sp_prepare",
                SP_EXECUTE => "sp_execute",
                SP_PREPEXEC => "sp_prepexec",
                SP_PREPEXECRPC => "sp_prepexecrpc",
                SP_UNPREPARE => "sp_unprepare",
                _ => "",
            },
        }
    }

    /// The well-known id, also when the client spelled the name out.
    pub fn well_known_id(&self) -> Option<u16> {
        match self {
            RpcProc::Id(id) => Some(*id),
            RpcProc::Name(n) => {
                let n = n.trim_start_matches("sys.").to_ascii_lowercase();
                (1..=15).find(|&id| RpcProc::Id(id).name() == n)
            }
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct RpcParam {
    /// Name including the leading `@`; empty for positional parameters.
    pub name: String,
    /// By-reference (OUTPUT) parameter.
    pub output: bool,
    /// The client asked for the parameter's default value.
    pub default: bool,
    /// The declared type. NULLTYPE parameters (tiberius's untyped NULL) map
    /// to `int`.
    pub sql_type: SqlType,
    pub value: Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RpcCall {
    pub proc: RpcProc,
    pub option_flags: u16,
    pub params: Vec<RpcParam>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct RpcRequest {
    pub headers: AllHeaders,
    pub calls: Vec<RpcCall>,
}

/// Separators between calls: 0xFF (TDS 7.2+ BatchFlag), 0xFE (NoExecFlag,
/// 7.2+) and 0x80 (pre-7.2 BatchFlag). A parameter-name length byte of 0x80
/// (a 128-character name) is therefore read as a separator, a limitation
/// SQL Server shares for 7.1 clients.
fn is_separator(b: u8) -> bool {
    matches!(b, 0xFF | 0xFE | 0x80)
}

/// Parses a whole RPC message payload.
pub fn parse_rpc(payload: &[u8]) -> Result<RpcRequest> {
    let (headers, skip) = parse_all_headers(payload)?;
    let mut s = SliceSource::new(&payload[skip..]);
    let mut calls = Vec::new();
    loop {
        calls.push(parse_call(&mut s)?);
        match s.peek() {
            None => break,
            Some(b) if is_separator(b) => {
                s.u8()?;
                if s.remaining() == 0 {
                    break; // tolerate a trailing separator
                }
            }
            Some(b) => {
                return Err(TdsError::proto(format!(
                    "unexpected byte {b:#04x} after RPC parameters"
                )))
            }
        }
    }
    Ok(RpcRequest { headers, calls })
}

fn parse_call(s: &mut SliceSource<'_>) -> Result<RpcCall> {
    let name_len = s.u16le()?;
    let proc = if name_len == 0xFFFF {
        RpcProc::Id(s.u16le()?)
    } else {
        if name_len == 0 {
            return Err(TdsError::proto("RPC with an empty procedure name"));
        }
        let raw = s.take(usize::from(name_len) * 2)?;
        RpcProc::Name(super::utf16le_to_string(raw))
    };
    let option_flags = s.u16le()?;
    let mut params = Vec::new();
    while let Some(b) = s.peek() {
        if is_separator(b) {
            break;
        }
        params.push(parse_param(s)?);
    }
    Ok(RpcCall {
        proc,
        option_flags,
        params,
    })
}

fn parse_param(s: &mut SliceSource<'_>) -> Result<RpcParam> {
    let name = s.b_varchar()?;
    let status = s.u8()?;
    if status & PARAM_ENCRYPTED != 0 {
        return Err(TdsError::proto(format!(
            "parameter {name:?} uses Always Encrypted, which is not supported"
        )));
    }
    let w = read_type_info(s)?;
    let value = read_value(s, &w, false)?;
    Ok(RpcParam {
        name,
        output: status & PARAM_BY_REF != 0,
        default: status & PARAM_DEFAULT != 0,
        sql_type: w.sql_type,
        value,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tds::put_utf16le;
    use crate::tds::testutil::XorShift;
    use crate::tds::values::ty;
    use crate::types::Len;
    use chrono::{DateTime, NaiveDate};

    fn b_varchar(v: &mut Vec<u8>, s: &str) {
        v.push(s.encode_utf16().count() as u8);
        put_utf16le(v, s);
    }

    fn headers() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&22u32.to_le_bytes());
        v.extend_from_slice(&18u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&5u64.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v
    }

    /// sp_executesql as tiberius sends it: NVARCHAR(8000) with a zero
    /// collation for the statement and parameter list, then the values.
    #[test]
    fn tiberius_style_executesql() {
        let mut p = headers();
        p.extend_from_slice(&0xFFFFu16.to_le_bytes());
        p.extend_from_slice(&SP_EXECUTESQL.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        for text in ["SELECT @P1, @P2", "@P1 int, @P2 nvarchar(4000)"] {
            b_varchar(&mut p, "");
            p.push(0);
            p.extend_from_slice(&[ty::NVARCHAR, 0x40, 0x1F, 0, 0, 0, 0, 0]);
            let mut u = Vec::new();
            put_utf16le(&mut u, text);
            p.extend_from_slice(&(u.len() as u16).to_le_bytes());
            p.extend_from_slice(&u);
        }
        b_varchar(&mut p, "@P1");
        p.push(0);
        p.extend_from_slice(&[ty::INTN, 4, 4]);
        p.extend_from_slice(&42i32.to_le_bytes());
        b_varchar(&mut p, "@P2");
        p.push(0);
        p.push(ty::NULL);
        // A datetimeoffset(7) value and a numeric.
        b_varchar(&mut p, "@P3");
        p.push(PARAM_BY_REF);
        p.extend_from_slice(&[ty::DATETIMEOFFSETN, 7, 10]);
        p.extend_from_slice(&[0, 0, 0, 0, 0]); // 00:00 UTC
        p.extend_from_slice(&[0x5B, 0x95, 0x0A]); // 1900-01-01
        p.extend_from_slice(&60i16.to_le_bytes());
        b_varchar(&mut p, "@P4");
        p.push(0);
        p.extend_from_slice(&[ty::NUMERICN, 5, 5, 2, 5, 0, 0x39, 0x30, 0, 0]);
        // Second call by name after a batch separator.
        p.push(0xFF);
        p.extend_from_slice(&6u16.to_le_bytes());
        put_utf16le(&mut p, "myproc");
        p.extend_from_slice(&OPT_NO_METADATA.to_le_bytes());

        let req = parse_rpc(&p).unwrap();
        assert_eq!(req.headers.transaction_descriptor, 5);
        assert_eq!(req.calls.len(), 2);
        let c = &req.calls[0];
        assert_eq!(c.proc.name(), "sp_executesql");
        assert_eq!(c.params.len(), 6);
        assert_eq!(c.params[0].value, Value::String("SELECT @P1, @P2".into()));
        assert_eq!(c.params[0].sql_type, SqlType::NVarChar(Len::N(4000)));
        assert_eq!(c.params[2].name, "@P1");
        assert_eq!(c.params[2].value, Value::Int(42));
        assert_eq!(c.params[2].sql_type, SqlType::Int);
        assert_eq!(c.params[3].value, Value::Null);
        assert!(c.params[4].output);
        assert_eq!(
            c.params[4].value,
            Value::DateTimeOffset(
                DateTime::parse_from_rfc3339("1900-01-01T01:00:00+01:00").unwrap()
            )
        );
        assert_eq!(
            c.params[5].value,
            Value::Decimal("-123.45".parse().unwrap())
        );
        assert_eq!(
            c.params[5].sql_type,
            SqlType::Decimal {
                precision: 5,
                scale: 2,
                numeric: true
            }
        );
        assert_eq!(req.calls[1].proc, RpcProc::Name("myproc".into()));
        assert_eq!(req.calls[1].option_flags, OPT_NO_METADATA);
        assert!(req.calls[1].params.is_empty());
    }

    #[test]
    fn legacy_types_and_default_flag() {
        let mut p = Vec::new(); // no ALL_HEADERS (TDS 7.1 style)
        p.extend_from_slice(&0xFFFFu16.to_le_bytes());
        p.extend_from_slice(&SP_PREPEXEC.to_le_bytes());
        p.extend_from_slice(&0u16.to_le_bytes());
        b_varchar(&mut p, "@a");
        p.push(PARAM_DEFAULT);
        p.push(ty::DATETIME);
        p.extend_from_slice(&1i32.to_le_bytes());
        p.extend_from_slice(&300u32.to_le_bytes());
        b_varchar(&mut p, "@b");
        p.push(0);
        p.extend_from_slice(&[
            ty::BIGVARCHAR,
            0x40,
            0x1F,
            0x09,
            0x04,
            0xD0,
            0x00,
            0x34,
            1,
            0,
            0xE9,
        ]);
        b_varchar(&mut p, "@c");
        p.push(0);
        p.push(ty::NTEXT);
        p.extend_from_slice(&0x7FFF_FFFEu32.to_le_bytes());
        p.extend_from_slice(&[0x09, 0x04, 0xD0, 0x00, 0x34]);
        p.extend_from_slice(&0xFFFF_FFFFu32.to_le_bytes());
        b_varchar(&mut p, "@d");
        p.push(0);
        p.push(ty::MONEY4);
        p.extend_from_slice(&12345i32.to_le_bytes());
        let req = parse_rpc(&p).unwrap();
        assert!(!req.headers.present);
        let ps = &req.calls[0].params;
        assert!(ps[0].default);
        assert_eq!(ps[0].sql_type, SqlType::DateTime);
        assert_eq!(
            ps[0].value,
            Value::DateTime(
                NaiveDate::from_ymd_opt(1900, 1, 2)
                    .unwrap()
                    .and_hms_opt(0, 0, 1)
                    .unwrap()
            )
        );
        assert_eq!(ps[1].value, Value::String("é".into()));
        assert_eq!(ps[1].sql_type, SqlType::VarChar(Len::N(8000)));
        assert_eq!(ps[2].sql_type, SqlType::NVarChar(Len::Max));
        assert_eq!(ps[2].value, Value::Null);
        assert_eq!(ps[3].sql_type, SqlType::SmallMoney);
        assert_eq!(ps[3].value, Value::Decimal("1.2345".parse().unwrap()));
        assert_eq!(
            RpcProc::Name("SP_EXECUTESQL".into()).well_known_id(),
            Some(10)
        );
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = XorShift(0xDEADBEEF);
        for _ in 0..30_000 {
            let mut b = rng.bytes(100);
            if b.len() > 6 && rng.next() & 1 == 0 {
                b[0] = 0xFF;
                b[1] = 0xFF;
            }
            let _ = parse_rpc(&b);
        }
        assert!(parse_rpc(&[]).is_err());
    }
}
