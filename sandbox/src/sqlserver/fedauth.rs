//! Microsoft Entra ID sign-in, as Azure SQL accepts it: the LOGIN7 FEDAUTH
//! feature extension ([MS-TDS] 2.2.6.4) with the security-token library
//! (`bFedAuthLibrary` 0x01): `Options` (`fFedAuthEcho` in bit 0, the library
//! in bits 1–7), the token's length (DWORD) and the token in UTF-16LE, then
//! a 32-byte nonce when the server sent one. The server checks the echo
//! against its own PRELOGIN FEDAUTHREQUIRED answer
//! (https://learn.microsoft.com/en-us/openspecs/windows_protocols/ms-tds/1d82a68b-57c2-46e9-84ba-ed41f7bd0c7c),
//! then the token as a resource validates an Entra access token
//! (https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#validate-tokens):
//! its RS256 signature by one of the tenant's keys, the audience of Azure SQL
//! (`https://database.windows.net/`), the tenant and issuer, and its
//! lifetime on the server's clock; then the login created FROM EXTERNAL
//! PROVIDER for the principal. Any refusal is 18456 for
//! `<token-identified principal>`, as Azure SQL answers; the reason is
//! only in the server's log.

use serde_json::{Map, Value};

use crate::entra::jwt;
use crate::entra::EntraTrust;

/// The security-token library (the client already holds a token).
const LIBRARY_SECURITY_TOKEN: u8 = 0x01;

/// The audiences of Azure SQL Database's tokens.
const AUDIENCES: [&str; 2] = [
    "https://database.windows.net/",
    "https://database.windows.net",
];

/// The name Azure SQL's login-failed message gives a token's principal.
pub const TOKEN_PRINCIPAL: &str = "<token-identified principal>";

/// Who a valid token speaks for.
#[derive(Debug, PartialEq, Eq)]
pub struct Principal {
    pub object_id: String,
    pub app_id: String,
}

/// The token in a FEDAUTH feature's data, once the echo agrees with what
/// the server answered in PRELOGIN (`server_required`: its FEDAUTHREQUIRED
/// value, `None` when it sent none).
pub fn token(data: &[u8], server_required: Option<bool>) -> Result<String, String> {
    let (&options, rest) = data
        .split_first()
        .ok_or("the FEDAUTH feature has no data")?;
    let echo = options & 1 == 1;
    if echo != server_required.unwrap_or(false) {
        return Err(format!(
            "fFedAuthEcho is {echo}, the server's FEDAUTHREQUIRED was {server_required:?}"
        ));
    }
    let library = options >> 1;
    if library != LIBRARY_SECURITY_TOKEN {
        return Err(format!(
            "federated authentication library {library:#04x} is not supported (only the security token, 0x01)"
        ));
    }
    let len = rest
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .ok_or("the FEDAUTH token has no length")?;
    let bytes = rest
        .get(4..4 + len)
        .ok_or("the FEDAUTH token is shorter than its length")?;
    if len % 2 != 0 {
        return Err("the FEDAUTH token is not UTF-16".into());
    }
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).map_err(|_| "the FEDAUTH token is not UTF-16".into())
}

/// The principal of a token the tenant signed for Azure SQL, valid at `now`
/// (seconds since the epoch on the server's clock).
pub fn principal(trust: &EntraTrust, token: &str, now: i64) -> Result<Principal, String> {
    let claims = jwt::verify(token, &trust.keys).map_err(|e| e.to_string())?;
    let text =
        |c: &Map<String, Value>, k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
    let aud = text(&claims, "aud").unwrap_or_default();
    if !AUDIENCES.contains(&aud.as_str()) {
        return Err(format!("the token is for '{aud}', not Azure SQL"));
    }
    let tid = text(&claims, "tid").unwrap_or_default();
    if !tid.eq_ignore_ascii_case(&trust.tenant_id) {
        return Err(format!(
            "the token is from tenant '{tid}', not the server's"
        ));
    }
    let iss = text(&claims, "iss").unwrap_or_default();
    let issuers = [
        format!("https://sts.windows.net/{}/", trust.tenant_id),
        format!("https://login.microsoftonline.com/{}/v2.0", trust.tenant_id),
    ];
    if !issuers.iter().any(|i| i.eq_ignore_ascii_case(&iss)) {
        return Err(format!("the token's issuer '{iss}' is not the tenant's"));
    }
    let time = |k: &str| claims.get(k).and_then(Value::as_i64);
    match (time("nbf"), time("exp")) {
        (_, None) => return Err("the token has no expiry".into()),
        (_, Some(exp)) if exp <= now => {
            return Err(format!("the token expired at {exp} (now {now})"))
        }
        (Some(nbf), _) if nbf > now => {
            return Err(format!("the token is not valid before {nbf} (now {now})"))
        }
        _ => {}
    }
    Ok(Principal {
        object_id: text(&claims, "oid").unwrap_or_default(),
        app_id: text(&claims, "appid")
            .or_else(|| text(&claims, "azp"))
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature(options: u8, token: &str) -> Vec<u8> {
        let units: Vec<u8> = token.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut d = vec![options];
        d.extend_from_slice(&(units.len() as u32).to_le_bytes());
        d.extend_from_slice(&units);
        d
    }

    #[test]
    fn the_token_is_read_once_the_echo_agrees() {
        assert_eq!(token(&feature(0x02, "eyJ.a.b"), None).unwrap(), "eyJ.a.b");
        assert_eq!(
            token(&feature(0x03, "eyJ.a.b"), Some(true)).unwrap(),
            "eyJ.a.b"
        );
        assert!(token(&feature(0x03, "t"), None)
            .unwrap_err()
            .contains("fFedAuthEcho"));
        assert!(token(&feature(0x02, "t"), Some(true))
            .unwrap_err()
            .contains("fFedAuthEcho"));
        assert!(token(&feature(0x04, "t"), None)
            .unwrap_err()
            .contains("library 0x02"));
        let mut short = feature(0x02, "token");
        short.truncate(8);
        assert!(token(&short, None).is_err());
        assert!(token(&[], None).is_err());
    }
}
