//! LOGIN7 (MS-TDS 2.2.6.4): a fixed part, then (offset, length) pairs into
//! the variable part for UCS-2 strings, SSPI data and the FeatureExt block.

use super::{utf16le_to_string, Result, TdsError};

/// OptionFlags3.fExtension: ibExtension points at the FeatureExt offset.
pub const OPT3_EXTENSION: u8 = 0x10;
/// OptionFlags2.fIntSecurity: integrated (SSPI) authentication.
pub const OPT2_INT_SECURITY: u8 = 0x80;
/// TypeFlags.fReadOnlyIntent.
pub const TYPE_READ_ONLY_INTENT: u8 = 0x20;

/// FeatureExt ids.
pub const FEATURE_SESSIONRECOVERY: u8 = 0x01;
pub const FEATURE_FEDAUTH: u8 = 0x02;
pub const FEATURE_COLUMNENCRYPTION: u8 = 0x04;
pub const FEATURE_GLOBALTRANSACTIONS: u8 = 0x05;
pub const FEATURE_AZURESQLSUPPORT: u8 = 0x08;
pub const FEATURE_DATACLASSIFICATION: u8 = 0x09;
pub const FEATURE_UTF8_SUPPORT: u8 = 0x0A;
pub const FEATURE_TERMINATOR: u8 = 0xFF;

#[derive(Clone, Default, PartialEq, Eq)]
pub struct Login7 {
    /// As sent (little-endian on the wire), e.g. 0x74000004.
    pub tds_version: u32,
    pub packet_size: u32,
    pub client_prog_version: u32,
    pub client_pid: u32,
    pub connection_id: u32,
    pub option_flags1: u8,
    pub option_flags2: u8,
    pub type_flags: u8,
    pub option_flags3: u8,
    pub client_time_zone: i32,
    pub client_lcid: u32,
    pub hostname: String,
    pub username: String,
    /// De-obfuscated.
    pub password: String,
    pub app_name: String,
    pub server_name: String,
    pub library_name: String,
    pub language: String,
    pub database: String,
    pub client_id: [u8; 6],
    pub sspi: Vec<u8>,
    pub attach_db_file: String,
    pub change_password: String,
    /// FeatureExt entries (id, data) in order, without the terminator.
    pub features: Vec<(u8, Vec<u8>)>,
}

impl std::fmt::Debug for Login7 {
    /// Keeps the password out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login7")
            .field("tds_version", &format_args!("{:#010x}", self.tds_version))
            .field("packet_size", &self.packet_size)
            .field("client_pid", &self.client_pid)
            .field("hostname", &self.hostname)
            .field("username", &self.username)
            .field("password", &"***")
            .field("app_name", &self.app_name)
            .field("server_name", &self.server_name)
            .field("library_name", &self.library_name)
            .field("language", &self.language)
            .field("database", &self.database)
            .field("sspi_len", &self.sspi.len())
            .field("features", &self.features)
            .finish()
    }
}

impl Login7 {
    /// The client asked for integrated (SSPI/Kerberos/NTLM) authentication.
    pub fn integrated_security(&self) -> bool {
        self.option_flags2 & OPT2_INT_SECURITY != 0
    }

    pub fn read_only_intent(&self) -> bool {
        self.type_flags & TYPE_READ_ONLY_INTENT != 0
    }

    pub fn has_feature_ext(&self) -> bool {
        self.option_flags3 & OPT3_EXTENSION != 0
    }
}

fn u16_at(p: &[u8], at: usize) -> Result<u16> {
    p.get(at..at + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
        .ok_or_else(|| TdsError::proto("truncated LOGIN7"))
}

fn u32_at(p: &[u8], at: usize) -> Result<u32> {
    p.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| TdsError::proto("truncated LOGIN7"))
}

/// Bytes `[off, off+len)` of the payload, or an error naming the field.
fn slice<'a>(p: &'a [u8], off: usize, len: usize, what: &str) -> Result<&'a [u8]> {
    p.get(off..off.saturating_add(len))
        .filter(|_| off.checked_add(len).is_some())
        .ok_or_else(|| TdsError::proto(format!("LOGIN7 {what} lies outside the message")))
}

/// Reads the (ib, cch) pair at `at` and the UCS-2 string it points to.
fn string_field(p: &[u8], at: usize, what: &str) -> Result<String> {
    let off = usize::from(u16_at(p, at)?);
    let cch = usize::from(u16_at(p, at + 2)?);
    Ok(utf16le_to_string(slice(p, off, cch * 2, what)?))
}

/// Undoes the password obfuscation: each byte was nibble-swapped and then
/// XORed with 0xA5.
pub fn decode_password(bytes: &[u8]) -> String {
    let plain: Vec<u8> = bytes.iter().map(|b| (b ^ 0xA5).rotate_left(4)).collect();
    utf16le_to_string(&plain)
}

/// The client-side obfuscation (for tests and tools).
pub fn encode_password(password: &str) -> Vec<u8> {
    let mut v = Vec::new();
    super::put_utf16le(&mut v, password);
    v.iter().map(|b| b.rotate_left(4) ^ 0xA5).collect()
}

/// Size of the fixed part for TDS 7.2+ (7.0/7.1 clients stop at 86).
const FIXED_LEN: usize = 94;
const FIXED_LEN_71: usize = 86;

/// Parses a LOGIN7 payload.
pub fn parse_login7(p: &[u8]) -> Result<Login7> {
    if p.len() < FIXED_LEN_71 {
        return Err(TdsError::proto("LOGIN7 shorter than its fixed part"));
    }
    let declared = u32_at(p, 0)? as usize;
    if declared > p.len() || declared < FIXED_LEN_71 {
        return Err(TdsError::proto(format!(
            "LOGIN7 length {declared} does not match the {}-byte message",
            p.len()
        )));
    }
    let p = &p[..declared];
    let mut l = Login7 {
        tds_version: u32_at(p, 4)?,
        packet_size: u32_at(p, 8)?,
        client_prog_version: u32_at(p, 12)?,
        client_pid: u32_at(p, 16)?,
        connection_id: u32_at(p, 20)?,
        option_flags1: p[24],
        option_flags2: p[25],
        type_flags: p[26],
        option_flags3: p[27],
        client_time_zone: u32_at(p, 28)? as i32,
        client_lcid: u32_at(p, 32)?,
        ..Default::default()
    };
    l.hostname = string_field(p, 36, "HostName")?;
    l.username = string_field(p, 40, "UserName")?;
    {
        let off = usize::from(u16_at(p, 44)?);
        let cch = usize::from(u16_at(p, 46)?);
        l.password = decode_password(slice(p, off, cch * 2, "Password")?);
    }
    l.app_name = string_field(p, 48, "AppName")?;
    l.server_name = string_field(p, 52, "ServerName")?;
    // 56: ibExtension/cbExtension (or ibUnused) handled below.
    l.library_name = string_field(p, 60, "CltIntName")?;
    l.language = string_field(p, 64, "Language")?;
    l.database = string_field(p, 68, "Database")?;
    l.client_id.copy_from_slice(&p[72..78]);
    let ib_sspi = usize::from(u16_at(p, 78)?);
    let mut cb_sspi = usize::from(u16_at(p, 80)?);
    l.attach_db_file = string_field(p, 82, "AtchDBFile")?;

    // ibChangePassword, cchChangePassword and cbSSPILong exist from 7.2 on.
    if l.tds_version >= 0x7200_0000 && p.len() >= FIXED_LEN {
        l.change_password = {
            let off = usize::from(u16_at(p, 86)?);
            let cch = usize::from(u16_at(p, 88)?);
            decode_password(slice(p, off, cch * 2, "ChangePassword")?)
        };
        if cb_sspi == 0xFFFF {
            cb_sspi = u32_at(p, 90)? as usize;
        }
    }
    l.sspi = slice(p, ib_sspi, cb_sspi, "SSPI")?.to_vec();

    if l.has_feature_ext() {
        let ib_ext = usize::from(u16_at(p, 56)?);
        let cb_ext = usize::from(u16_at(p, 58)?);
        if cb_ext < 4 {
            return Err(TdsError::proto("LOGIN7 extension pointer too short"));
        }
        let fe_off = u32_at(slice(p, ib_ext, 4, "extension")?, 0)? as usize;
        l.features = parse_feature_ext(slice(
            p,
            fe_off,
            p.len().saturating_sub(fe_off),
            "FeatureExt",
        )?)?;
    }
    Ok(l)
}

fn parse_feature_ext(mut b: &[u8]) -> Result<Vec<(u8, Vec<u8>)>> {
    let mut out = Vec::new();
    loop {
        let (&id, rest) = b
            .split_first()
            .ok_or_else(|| TdsError::proto("FeatureExt not terminated"))?;
        if id == FEATURE_TERMINATOR {
            return Ok(out);
        }
        let len = rest
            .get(0..4)
            .map(|x| u32::from_le_bytes([x[0], x[1], x[2], x[3]]) as usize)
            .ok_or_else(|| TdsError::proto("truncated FeatureExt"))?;
        let data = rest
            .get(4..4usize.saturating_add(len))
            .filter(|_| len <= rest.len())
            .ok_or_else(|| TdsError::proto("FeatureExt data outside the message"))?;
        out.push((id, data.to_vec()));
        b = &rest[4 + len..];
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::tds::testutil::XorShift;

    /// Builds a LOGIN7 the way tiberius lays it out.
    pub(crate) fn build_login7(user: &str, password: &str, db: &str, features: bool) -> Vec<u8> {
        let mut fixed = vec![0u8; FIXED_LEN];
        let mut var: Vec<u8> = Vec::new();
        fixed[4..8].copy_from_slice(&0x7400_0004u32.to_le_bytes());
        fixed[8..12].copy_from_slice(&8192u32.to_le_bytes());
        fixed[16..20].copy_from_slice(&4321u32.to_le_bytes());
        fixed[25] = 0x03;
        if features {
            fixed[27] = OPT3_EXTENSION;
        }
        fixed[32..36].copy_from_slice(&0x0409u32.to_le_bytes());
        let fields: [(usize, Vec<u8>, usize); 9] = {
            let s = |x: &str| {
                let mut v = Vec::new();
                crate::tds::put_utf16le(&mut v, x);
                v
            };
            [
                (36, s("host"), 4),
                (40, s(user), user.encode_utf16().count()),
                (
                    44,
                    encode_password(password),
                    password.encode_utf16().count(),
                ),
                (48, s("app"), 3),
                (52, s("srv"), 3),
                (60, s("tiberius"), 8),
                (64, s(""), 0),
                (68, s(db), db.encode_utf16().count()),
                (82, s(""), 0),
            ]
        };
        for (at, data, cch) in fields {
            let off = (FIXED_LEN + var.len()) as u16;
            fixed[at..at + 2].copy_from_slice(&off.to_le_bytes());
            fixed[at + 2..at + 4].copy_from_slice(&(cch as u16).to_le_bytes());
            var.extend_from_slice(&data);
        }
        let sspi_off = (FIXED_LEN + var.len()) as u16;
        fixed[78..80].copy_from_slice(&sspi_off.to_le_bytes());
        if features {
            let ext_ptr = (FIXED_LEN + var.len()) as u16;
            fixed[56..58].copy_from_slice(&ext_ptr.to_le_bytes());
            fixed[58..60].copy_from_slice(&4u16.to_le_bytes());
            let fe = (FIXED_LEN + var.len() + 4) as u32;
            var.extend_from_slice(&fe.to_le_bytes());
            var.push(FEATURE_UTF8_SUPPORT);
            var.extend_from_slice(&0u32.to_le_bytes());
            var.push(FEATURE_FEDAUTH);
            var.extend_from_slice(&2u32.to_le_bytes());
            var.extend_from_slice(&[1, 2]);
            var.push(FEATURE_TERMINATOR);
        }
        let total = (FIXED_LEN + var.len()) as u32;
        fixed[0..4].copy_from_slice(&total.to_le_bytes());
        fixed.extend_from_slice(&var);
        fixed
    }

    #[test]
    fn parses_fields_and_password() {
        let b = build_login7("sa", "Pässw0rd!", "master", true);
        let l = parse_login7(&b).unwrap();
        assert_eq!(l.tds_version, 0x7400_0004);
        assert_eq!(l.packet_size, 8192);
        assert_eq!(l.client_pid, 4321);
        assert_eq!(l.hostname, "host");
        assert_eq!(l.username, "sa");
        assert_eq!(l.password, "Pässw0rd!");
        assert_eq!(l.app_name, "app");
        assert_eq!(l.server_name, "srv");
        assert_eq!(l.library_name, "tiberius");
        assert_eq!(l.database, "master");
        assert_eq!(l.client_lcid, 0x0409);
        assert_eq!(
            l.features,
            vec![
                (FEATURE_UTF8_SUPPORT, vec![]),
                (FEATURE_FEDAUTH, vec![1, 2])
            ]
        );
        assert!(!format!("{l:?}").contains("Pässw0rd"));
        let l = parse_login7(&build_login7("u", "", "", false)).unwrap();
        assert!(l.features.is_empty());
        assert_eq!(l.password, "");
    }

    #[test]
    fn password_obfuscation_known_byte() {
        // 'a' = 0x61 0x00 -> swap 0x16 ^ 0xA5 = 0xB3; 0x00 -> 0xA5.
        assert_eq!(encode_password("a"), vec![0xB3, 0xA5]);
        assert_eq!(decode_password(&[0xB3, 0xA5]), "a");
    }

    #[test]
    fn malformed_is_error() {
        let b = build_login7("sa", "x", "db", true);
        for cut in [0, 10, 85, 93, b.len() - 1] {
            assert!(parse_login7(&b[..cut]).is_err(), "cut {cut}");
        }
        let mut bad = b.clone();
        bad[40..42].copy_from_slice(&0xFFF0u16.to_le_bytes());
        assert!(parse_login7(&bad).is_err());
        let mut rng = XorShift(5);
        for _ in 0..20_000 {
            let mut m = b.clone();
            for _ in 0..3 {
                let i = (rng.next() as usize) % m.len();
                m[i] = rng.next() as u8;
            }
            let _ = parse_login7(&m);
            let _ = parse_login7(&rng.bytes(150));
        }
    }
}
