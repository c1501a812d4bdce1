//! PRELOGIN (MS-TDS 2.2.6.5): an option table (token, big-endian offset and
//! length, 0xFF terminator) followed by the option data.

use super::{Result, TdsError};

pub const OPT_VERSION: u8 = 0x00;
pub const OPT_ENCRYPTION: u8 = 0x01;
pub const OPT_INSTOPT: u8 = 0x02;
pub const OPT_THREADID: u8 = 0x03;
pub const OPT_MARS: u8 = 0x04;
pub const OPT_TRACEID: u8 = 0x05;
pub const OPT_FEDAUTHREQUIRED: u8 = 0x06;
pub const OPT_NONCEOPT: u8 = 0x07;
pub const OPT_TERMINATOR: u8 = 0xFF;

pub const ENCRYPT_OFF: u8 = 0x00;
pub const ENCRYPT_ON: u8 = 0x01;
pub const ENCRYPT_NOT_SUP: u8 = 0x02;
pub const ENCRYPT_REQ: u8 = 0x03;
/// Client-certificate bit some clients OR into their ENCRYPTION value.
pub const ENCRYPT_CLIENT_CERT: u8 = 0x80;

/// A client PRELOGIN.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prelogin {
    /// UL_VERSION (big-endian) and US_SUBBUILD.
    pub version: Option<(u32, u16)>,
    pub encryption: Option<u8>,
    /// Instance name to validate (INSTOPT), without its NUL.
    pub instance: Option<String>,
    pub thread_id: Option<u32>,
    pub mars: Option<bool>,
    /// Connection id (16 bytes) + activity id (20 bytes).
    pub trace_id: Option<Vec<u8>>,
    pub fed_auth_required: Option<bool>,
    pub nonce: Option<Vec<u8>>,
}

/// Parses a client PRELOGIN payload. Unknown options are skipped (as
/// SQL Server does), but every offset/length must lie inside the payload.
pub fn parse_prelogin(payload: &[u8]) -> Result<Prelogin> {
    let mut p = Prelogin::default();
    let mut pos = 0;
    loop {
        let token = *payload
            .get(pos)
            .ok_or_else(|| TdsError::proto("PRELOGIN option table not terminated"))?;
        if token == OPT_TERMINATOR {
            break;
        }
        let entry = payload
            .get(pos + 1..pos + 5)
            .ok_or_else(|| TdsError::proto("truncated PRELOGIN option table"))?;
        let off = usize::from(u16::from_be_bytes([entry[0], entry[1]]));
        let len = usize::from(u16::from_be_bytes([entry[2], entry[3]]));
        let data = payload.get(off..off + len).ok_or_else(|| {
            TdsError::proto(format!("PRELOGIN option {token} points outside the packet"))
        })?;
        match token {
            OPT_VERSION if len >= 6 => {
                p.version = Some((
                    u32::from_be_bytes([data[0], data[1], data[2], data[3]]),
                    u16::from_be_bytes([data[4], data[5]]),
                ))
            }
            OPT_ENCRYPTION if len >= 1 => p.encryption = Some(data[0]),
            OPT_INSTOPT => {
                let end = data.iter().position(|&b| b == 0).unwrap_or(data.len());
                p.instance = Some(String::from_utf8_lossy(&data[..end]).into_owned());
            }
            OPT_THREADID if len >= 4 => {
                p.thread_id = Some(u32::from_be_bytes([data[0], data[1], data[2], data[3]]))
            }
            OPT_MARS if len >= 1 => p.mars = Some(data[0] != 0),
            OPT_TRACEID => p.trace_id = Some(data.to_vec()),
            OPT_FEDAUTHREQUIRED if len >= 1 => p.fed_auth_required = Some(data[0] != 0),
            OPT_NONCEOPT => p.nonce = Some(data.to_vec()),
            OPT_VERSION | OPT_ENCRYPTION | OPT_THREADID | OPT_MARS | OPT_FEDAUTHREQUIRED => {
                return Err(TdsError::proto(format!(
                    "PRELOGIN option {token} too short"
                )))
            }
            _ => {}
        }
        pos += 5;
    }
    Ok(p)
}

/// The server's PRELOGIN response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PreloginResponse {
    /// Major, minor, build, sub-build (16.0.1000.6 = SQL Server 2022 RTM).
    pub version: (u8, u8, u16, u16),
    pub encryption: u8,
    pub mars: bool,
    /// Echo FEDAUTHREQUIRED only when the client sent it.
    pub fed_auth_required: Option<bool>,
}

impl Default for PreloginResponse {
    fn default() -> Self {
        PreloginResponse {
            version: (16, 0, 1000, 6),
            encryption: ENCRYPT_NOT_SUP,
            mars: false,
            fed_auth_required: None,
        }
    }
}

impl PreloginResponse {
    /// Encodes VERSION, ENCRYPTION, INSTOPT (0 = instance accepted), MARS
    /// and optionally FEDAUTHREQUIRED; THREADID is omitted as the server
    /// has nothing to say there.
    pub fn encode(&self) -> Vec<u8> {
        let (maj, min, build, sub) = self.version;
        let mut opts: Vec<(u8, Vec<u8>)> = vec![
            (OPT_VERSION, {
                let mut v = vec![maj, min];
                v.extend_from_slice(&build.to_be_bytes());
                v.extend_from_slice(&sub.to_be_bytes());
                v
            }),
            (OPT_ENCRYPTION, vec![self.encryption]),
            (OPT_INSTOPT, vec![0]),
            (OPT_MARS, vec![u8::from(self.mars)]),
        ];
        if let Some(f) = self.fed_auth_required {
            opts.push((OPT_FEDAUTHREQUIRED, vec![u8::from(f)]));
        }
        let mut out = Vec::new();
        let mut off = opts.len() * 5 + 1;
        for (tok, data) in &opts {
            out.push(*tok);
            out.extend_from_slice(&(off as u16).to_be_bytes());
            out.extend_from_slice(&(data.len() as u16).to_be_bytes());
            off += data.len();
        }
        out.push(OPT_TERMINATOR);
        for (_, data) in &opts {
            out.extend_from_slice(data);
        }
        out
    }
}

/// What the server is configured to offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerEncryption {
    /// No certificate: TLS is impossible.
    NotSupported,
    /// Certificate present, encryption not forced: TLS at least for LOGIN7.
    LoginOnly,
    /// "Force encryption": the whole connection must be TLS.
    Required,
}

/// What happens after PRELOGIN.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EncryptionMode {
    /// No TLS at all.
    None,
    /// TLS handshake, LOGIN7 over TLS, then both directions drop to plain
    /// TCP (see [`super::transport::Transport::downgrade_to_plain`]).
    LoginOnly,
    /// TLS for the whole connection.
    Full,
    /// The client cannot meet the server's requirement; after sending the
    /// response the server closes the connection.
    Reject,
}

/// The negotiation outcome: the ENCRYPTION byte for our response and what
/// both sides will then do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub response: u8,
    pub mode: EncryptionMode,
}

/// Decides encryption like SQL Server (MS-TDS 2.2.6.5 table, server side).
/// The client value's 0x80 client-cert bit is ignored; a missing option
/// counts as OFF.
///
/// | server \ client | OFF              | ON          | NOT_SUP           | REQ          |
/// |-----------------|------------------|-------------|-------------------|--------------|
/// | NotSupported    | NOT_SUP, none    | NOT_SUP, client aborts | NOT_SUP, none | NOT_SUP, client aborts |
/// | LoginOnly       | OFF, login only  | ON, full    | NOT_SUP, none     | ON, full     |
/// | Required        | REQ, full        | ON, full    | REQ, reject       | ON, full     |
///
/// "client aborts" cases are returned as `Reject`: the client will hang up
/// after reading the response.
pub fn negotiate_encryption(server: ServerEncryption, client: u8) -> Negotiated {
    use EncryptionMode::*;
    let client = client & !ENCRYPT_CLIENT_CERT;
    let (response, mode) = match server {
        ServerEncryption::NotSupported => match client {
            ENCRYPT_ON | ENCRYPT_REQ => (ENCRYPT_NOT_SUP, Reject),
            _ => (ENCRYPT_NOT_SUP, None),
        },
        ServerEncryption::LoginOnly => match client {
            ENCRYPT_ON | ENCRYPT_REQ => (ENCRYPT_ON, Full),
            ENCRYPT_NOT_SUP => (ENCRYPT_NOT_SUP, None),
            _ => (ENCRYPT_OFF, LoginOnly),
        },
        ServerEncryption::Required => match client {
            ENCRYPT_ON | ENCRYPT_REQ => (ENCRYPT_ON, Full),
            ENCRYPT_NOT_SUP => (ENCRYPT_REQ, Reject),
            _ => (ENCRYPT_REQ, Full),
        },
    };
    Negotiated { response, mode }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::testutil::XorShift;

    /// A PRELOGIN as tiberius sends it (VERSION, ENCRYPTION, INSTOPT,
    /// THREADID, MARS, terminator).
    fn client_prelogin(enc: u8) -> Vec<u8> {
        let data: Vec<(u8, Vec<u8>)> = vec![
            (OPT_VERSION, vec![0, 0, 0, 0, 0, 0]),
            (OPT_ENCRYPTION, vec![enc]),
            (OPT_INSTOPT, vec![0]),
            (OPT_THREADID, vec![0, 0, 0x12, 0x34]),
            (OPT_MARS, vec![0]),
            (OPT_FEDAUTHREQUIRED, vec![1]),
        ];
        let mut out = Vec::new();
        let mut off = data.len() * 5 + 1;
        for (t, d) in &data {
            out.push(*t);
            out.extend_from_slice(&(off as u16).to_be_bytes());
            out.extend_from_slice(&(d.len() as u16).to_be_bytes());
            off += d.len();
        }
        out.push(0xFF);
        for (_, d) in &data {
            out.extend_from_slice(d);
        }
        out
    }

    #[test]
    fn parse_and_respond() {
        let p = parse_prelogin(&client_prelogin(ENCRYPT_OFF)).unwrap();
        assert_eq!(p.encryption, Some(ENCRYPT_OFF));
        assert_eq!(p.thread_id, Some(0x1234));
        assert_eq!(p.instance.as_deref(), Some(""));
        assert_eq!(p.mars, Some(false));
        assert_eq!(p.fed_auth_required, Some(true));

        let r = PreloginResponse {
            encryption: ENCRYPT_ON,
            ..Default::default()
        }
        .encode();
        let back = parse_prelogin(&r).unwrap();
        assert_eq!(back.version, Some((0x1000_03E8, 6)));
        assert_eq!(back.encryption, Some(ENCRYPT_ON));
        assert_eq!(back.instance.as_deref(), Some(""));
        assert_eq!(back.thread_id, None);
    }

    #[test]
    fn negotiation_table() {
        use EncryptionMode::*;
        use ServerEncryption as S;
        let n = |s, c| {
            let x = negotiate_encryption(s, c);
            (x.response, x.mode)
        };
        assert_eq!(n(S::NotSupported, ENCRYPT_OFF), (ENCRYPT_NOT_SUP, None));
        assert_eq!(n(S::NotSupported, ENCRYPT_ON), (ENCRYPT_NOT_SUP, Reject));
        assert_eq!(n(S::LoginOnly, ENCRYPT_OFF), (ENCRYPT_OFF, LoginOnly));
        assert_eq!(n(S::LoginOnly, ENCRYPT_ON), (ENCRYPT_ON, Full));
        assert_eq!(n(S::LoginOnly, ENCRYPT_REQ), (ENCRYPT_ON, Full));
        assert_eq!(n(S::LoginOnly, ENCRYPT_NOT_SUP), (ENCRYPT_NOT_SUP, None));
        assert_eq!(n(S::Required, ENCRYPT_OFF), (ENCRYPT_REQ, Full));
        assert_eq!(n(S::Required, ENCRYPT_NOT_SUP), (ENCRYPT_REQ, Reject));
        assert_eq!(n(S::Required, ENCRYPT_ON | 0x80), (ENCRYPT_ON, Full));
    }

    #[test]
    fn malformed_is_error() {
        assert!(parse_prelogin(&[]).is_err());
        assert!(parse_prelogin(&[0, 0, 10, 0, 6, 0xFF]).is_err());
        assert!(parse_prelogin(&[1, 0, 6, 0, 0, 0xFF]).is_err());
        let mut rng = XorShift(99);
        for _ in 0..20_000 {
            let _ = parse_prelogin(&rng.bytes(64));
        }
    }
}
