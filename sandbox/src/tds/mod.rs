//! TDS 7.4 wire codec, server side.
//!
//! Everything here is pure encoding/decoding plus blocking transport helpers;
//! the session loop in `sqlserver` drives it. Layouts follow [MS-TDS] and were
//! cross-checked against the tiberius client the tests use (its decoders are
//! the other half of our encoders and vice versa).
//!
//! Robustness rule: bytes from the network are never trusted. Every length
//! field is checked against what is actually left, allocations grow only with
//! data that really arrived, and malformed input yields
//! [`TdsError::Protocol`] instead of a panic.

pub mod batch;
pub mod bulk;
pub mod login7;
pub mod packet;
pub mod prelogin;
pub mod rpc;
pub mod tokens;
pub mod transport;
pub mod txn;
mod values;
mod wire;

pub use values::{collation_encoding, Framing, WireType, DEFAULT_COLLATION};

/// Errors of the TDS codec.
#[derive(Debug, thiserror::Error)]
pub enum TdsError {
    /// The socket (or TLS layer) failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer sent something that is not valid TDS, or a value could not be
    /// encoded for its column type.
    #[error("TDS protocol error: {0}")]
    Protocol(String),
}

impl TdsError {
    pub(crate) fn proto(msg: impl Into<String>) -> Self {
        TdsError::Protocol(msg.into())
    }
}

pub type Result<T> = std::result::Result<T, TdsError>;

/// The ALL_HEADERS block that starts SQL_BATCH, RPC and Transaction Manager
/// requests (MS-TDS 2.2.5.3). Only the transaction descriptor header matters
/// to us; query-notification and trace-activity headers are skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AllHeaders {
    /// True when the request carried an ALL_HEADERS block at all.
    pub present: bool,
    /// The descriptor the client believes is current (0 = none), as the 8
    /// bytes we handed out in ENVCHANGE 8, read little-endian.
    pub transaction_descriptor: u64,
    pub outstanding_requests: u32,
}

/// Parses ALL_HEADERS at the start of `payload`; returns the headers and the
/// number of bytes they occupy.
///
/// TDS 7.2+ clients always send it, but 7.1 clients do not, so when the
/// first DWORD cannot be a consistent ALL_HEADERS block we report
/// `present: false` and consume nothing. A real block is recognised by its
/// total length fitting the payload and its headers tiling it exactly, which
/// UCS-2 SQL text practically never does.
pub fn parse_all_headers(payload: &[u8]) -> Result<(AllHeaders, usize)> {
    match try_all_headers(payload) {
        Some(h) => Ok(h),
        None => Ok((AllHeaders::default(), 0)),
    }
}

fn try_all_headers(payload: &[u8]) -> Option<(AllHeaders, usize)> {
    let total = u32::from_le_bytes(payload.get(0..4)?.try_into().ok()?) as usize;
    if total < 4 || total > payload.len() {
        return None;
    }
    let mut h = AllHeaders {
        present: true,
        ..Default::default()
    };
    let mut pos = 4;
    while pos < total {
        let len = u32::from_le_bytes(payload.get(pos..pos + 4)?.try_into().ok()?) as usize;
        if len < 6 || len > total - pos {
            return None;
        }
        let ty = u16::from_le_bytes(payload.get(pos + 4..pos + 6)?.try_into().ok()?);
        let data = &payload[pos + 6..pos + len];
        match ty {
            1 | 3 => {}
            2 => {
                if data.len() < 12 {
                    return None;
                }
                h.transaction_descriptor = u64::from_le_bytes(data[0..8].try_into().ok()?);
                h.outstanding_requests = u32::from_le_bytes(data[8..12].try_into().ok()?);
            }
            _ => return None,
        }
        pos += len;
    }
    (pos == total).then_some((h, total))
}

/// Decodes UTF-16LE bytes (UCS-2 on the wire); lone surrogates become U+FFFD
/// rather than failing the whole request.
pub(crate) fn utf16le_to_string(bytes: &[u8]) -> String {
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

pub(crate) fn put_utf16le(out: &mut Vec<u8>, s: &str) {
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    /// Fixed-seed xorshift so fuzz-ish tests are reproducible.
    pub struct XorShift(pub u64);

    impl XorShift {
        pub fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }

        pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
            let n = (self.next() as usize) % (max_len + 1);
            (0..n).map(|_| self.next() as u8).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn all_headers_tx(desc: u64, outstanding: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&22u32.to_le_bytes());
        v.extend_from_slice(&18u32.to_le_bytes());
        v.extend_from_slice(&2u16.to_le_bytes());
        v.extend_from_slice(&desc.to_le_bytes());
        v.extend_from_slice(&outstanding.to_le_bytes());
        v
    }

    #[test]
    fn all_headers_parse_and_fallback() {
        let mut p = all_headers_tx(0x0102030405060708, 1);
        p.extend_from_slice(&[b'S', 0, b'E', 0]);
        let (h, n) = parse_all_headers(&p).unwrap();
        assert_eq!(n, 22);
        assert!(h.present);
        assert_eq!(h.transaction_descriptor, 0x0102030405060708);
        assert_eq!(h.outstanding_requests, 1);

        let text = [b'S', 0, b'E', 0, b'L', 0];
        let (h, n) = parse_all_headers(&text).unwrap();
        assert_eq!(n, 0);
        assert!(!h.present);
        assert_eq!(parse_all_headers(&[]).unwrap().1, 0);
    }
}
