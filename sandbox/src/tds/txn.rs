//! Transaction Manager requests (packet type 0x0E, MS-TDS 2.2.6.9).
//!
//! The spec makes transaction names B_VARBYTE (a byte count), but tiberius
//! 0.13 writes them as B_VARCHAR (a UTF-16 unit count). Both are accepted:
//! we take the reading whose fields consume the payload exactly, preferring
//! the spec's when both do (only possible for empty names).

use super::wire::{SliceSource, Source};
use super::{parse_all_headers, utf16le_to_string, AllHeaders, Result, TdsError};

pub const TM_GET_DTC_ADDRESS: u16 = 0;
pub const TM_PROPAGATE_XACT: u16 = 1;
pub const TM_BEGIN_XACT: u16 = 5;
pub const TM_PROMOTE_XACT: u16 = 6;
pub const TM_COMMIT_XACT: u16 = 7;
pub const TM_ROLLBACK_XACT: u16 = 8;
pub const TM_SAVE_XACT: u16 = 9;

/// Isolation levels as the request encodes them.
pub const ISO_UNCHANGED: u8 = 0;
pub const ISO_READ_UNCOMMITTED: u8 = 1;
pub const ISO_READ_COMMITTED: u8 = 2;
pub const ISO_REPEATABLE_READ: u8 = 3;
pub const ISO_SERIALIZABLE: u8 = 4;
pub const ISO_SNAPSHOT: u8 = 5;

/// A transaction to start right after a commit/rollback (fBeginXact).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BeginNew {
    pub isolation: u8,
    pub name: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TmRequest {
    GetDtcAddress,
    Propagate(Vec<u8>),
    Begin {
        isolation: u8,
        name: String,
    },
    Promote,
    Commit {
        name: String,
        begin_new: Option<BeginNew>,
    },
    Rollback {
        name: String,
        begin_new: Option<BeginNew>,
    },
    Save {
        name: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnRequest {
    pub headers: AllHeaders,
    pub request: TmRequest,
}

/// How a name's length byte counts.
#[derive(Clone, Copy)]
enum NameUnit {
    Bytes,
    Chars,
}

fn read_name(s: &mut SliceSource<'_>, unit: NameUnit) -> Result<String> {
    let n = usize::from(s.u8()?);
    let bytes = match unit {
        NameUnit::Bytes => n,
        NameUnit::Chars => n * 2,
    };
    if bytes & 1 != 0 {
        return Err(TdsError::proto("odd-length transaction name"));
    }
    Ok(utf16le_to_string(s.take(bytes)?))
}

fn parse_body(kind: u16, body: &[u8], unit: NameUnit) -> Result<TmRequest> {
    let mut s = SliceSource::new(body);
    let req = match kind {
        TM_GET_DTC_ADDRESS => {
            // Payload is a (normally empty) US_VARBYTE; absent is fine too.
            if s.remaining() >= 2 {
                let n = usize::from(s.u16le()?);
                s.skip(n)?;
            }
            TmRequest::GetDtcAddress
        }
        TM_PROPAGATE_XACT => {
            let n = usize::from(s.u16le()?);
            TmRequest::Propagate(s.read_vec(n)?)
        }
        TM_BEGIN_XACT => {
            let isolation = s.u8()?;
            let name = if s.remaining() > 0 {
                read_name(&mut s, unit)?
            } else {
                String::new()
            };
            TmRequest::Begin { isolation, name }
        }
        TM_PROMOTE_XACT => TmRequest::Promote,
        TM_COMMIT_XACT | TM_ROLLBACK_XACT => {
            let name = read_name(&mut s, unit)?;
            let flags = if s.remaining() > 0 { s.u8()? } else { 0 };
            let begin_new = if flags & 0x01 != 0 {
                let isolation = if s.remaining() > 0 { s.u8()? } else { 0 };
                let name = if s.remaining() > 0 {
                    read_name(&mut s, unit)?
                } else {
                    String::new()
                };
                Some(BeginNew { isolation, name })
            } else {
                None
            };
            if kind == TM_COMMIT_XACT {
                TmRequest::Commit { name, begin_new }
            } else {
                TmRequest::Rollback { name, begin_new }
            }
        }
        TM_SAVE_XACT => TmRequest::Save {
            name: read_name(&mut s, unit)?,
        },
        other => {
            return Err(TdsError::proto(format!(
                "unknown transaction manager request {other}"
            )))
        }
    };
    if s.remaining() != 0 {
        return Err(TdsError::proto(
            "trailing bytes in transaction manager request",
        ));
    }
    Ok(req)
}

/// Parses a Transaction Manager request payload.
pub fn parse_txn_request(payload: &[u8]) -> Result<TxnRequest> {
    let (headers, skip) = parse_all_headers(payload)?;
    let mut s = SliceSource::new(&payload[skip..]);
    let kind = s.u16le()?;
    let body = s.rest();
    let request = parse_body(kind, body, NameUnit::Bytes)
        .or_else(|e| parse_body(kind, body, NameUnit::Chars).map_err(|_| e))?;
    Ok(TxnRequest { headers, request })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::put_utf16le;

    fn hdr(kind: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&22u32.to_le_bytes());
        v.extend_from_slice(&18u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&9u64.to_le_bytes());
        v.extend_from_slice(&1u32.to_le_bytes());
        v.extend_from_slice(&kind.to_le_bytes());
        v
    }

    #[test]
    fn begin_spec_and_tiberius_forms() {
        // Spec: byte count.
        let mut p = hdr(TM_BEGIN_XACT);
        p.push(ISO_SERIALIZABLE);
        p.push(4);
        put_utf16le(&mut p, "tx");
        let r = parse_txn_request(&p).unwrap();
        assert_eq!(r.headers.transaction_descriptor, 9);
        assert_eq!(
            r.request,
            TmRequest::Begin {
                isolation: ISO_SERIALIZABLE,
                name: "tx".into()
            }
        );
        // tiberius: character count.
        let mut p = hdr(TM_BEGIN_XACT);
        p.push(ISO_READ_COMMITTED);
        p.push(2);
        put_utf16le(&mut p, "tx");
        assert_eq!(
            parse_txn_request(&p).unwrap().request,
            TmRequest::Begin {
                isolation: ISO_READ_COMMITTED,
                name: "tx".into()
            }
        );
        // tiberius empty name.
        let mut p = hdr(TM_BEGIN_XACT);
        p.extend_from_slice(&[ISO_UNCHANGED, 0]);
        assert!(matches!(
            parse_txn_request(&p).unwrap().request,
            TmRequest::Begin { .. }
        ));
    }

    #[test]
    fn commit_rollback_save() {
        let mut p = hdr(TM_COMMIT_XACT);
        p.extend_from_slice(&[0, 0]);
        assert_eq!(
            parse_txn_request(&p).unwrap().request,
            TmRequest::Commit {
                name: String::new(),
                begin_new: None
            }
        );
        let mut p = hdr(TM_ROLLBACK_XACT);
        p.push(2);
        put_utf16le(&mut p, "a");
        p.extend_from_slice(&[1, ISO_SNAPSHOT, 2]);
        put_utf16le(&mut p, "b");
        assert_eq!(
            parse_txn_request(&p).unwrap().request,
            TmRequest::Rollback {
                name: "a".into(),
                begin_new: Some(BeginNew {
                    isolation: ISO_SNAPSHOT,
                    name: "b".into()
                })
            }
        );
        let mut p = hdr(TM_SAVE_XACT);
        p.push(1);
        put_utf16le(&mut p, "s");
        assert_eq!(
            parse_txn_request(&p).unwrap().request,
            TmRequest::Save { name: "s".into() }
        );
        let mut p = hdr(TM_GET_DTC_ADDRESS);
        p.extend_from_slice(&[0, 0]);
        assert_eq!(
            parse_txn_request(&p).unwrap().request,
            TmRequest::GetDtcAddress
        );
        assert!(parse_txn_request(&hdr(3)).is_err());
        assert!(parse_txn_request(&[1]).is_err());
        let mut p = hdr(TM_SAVE_XACT);
        p.push(9);
        assert!(parse_txn_request(&p).is_err());
    }
}
