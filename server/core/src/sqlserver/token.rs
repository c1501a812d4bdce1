//! What the bridge can tell about a Microsoft Entra ID access token before
//! SQL Server judges it, so a refusal says which step failed: not a JWT,
//! expired, or issued for another resource than Azure SQL. The signature
//! is SQL Server's to check; nothing here trusts the claims, it only reads
//! them to explain. The token itself is never part of a message.
//! https://learn.microsoft.com/en-us/entra/identity-platform/access-token-claims-reference

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// Azure SQL's resource in each Azure cloud, as a token's `aud`.
const AZURE_SQL: &[&str] = &[
    "https://database.windows.net/",
    "https://database.usgovcloudapi.net/",
    "https://database.chinacloudapi.cn/",
];

/// Why a token cannot sign in to Azure SQL at `now` (seconds since the
/// epoch), when the bridge can tell.
pub fn unusable(token: &str, now: i64) -> Option<String> {
    let claims: Value = match token
        .trim()
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
    {
        Some(c) => c,
        None => return Some("it is not a JWT (header.payload.signature)".into()),
    };
    if let Some(exp) = claims["exp"].as_i64() {
        if exp <= now {
            let at = chrono::DateTime::from_timestamp(exp, 0)
                .map(|t| t.to_rfc3339())
                .unwrap_or_else(|| exp.to_string());
            return Some(format!("it expired at {at}; get a new one"));
        }
    }
    if let Some(aud) = claims["aud"].as_str() {
        let normal = format!("{}/", aud.trim_end_matches('/'));
        if !AZURE_SQL.contains(&normal.as_str()) {
            return Some(format!(
                "it was issued for '{aud}', not Azure SQL (ask for the scope https://database.windows.net/.default)"
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!(
            "{}.{}.c2ln",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"RS256"}"#),
            URL_SAFE_NO_PAD.encode(claims)
        )
    }

    #[test]
    fn expired_foreign_and_malformed_tokens_are_told_apart() {
        let now = 1_800_000_000;
        assert_eq!(
            unusable(
                &token(r#"{"aud":"https://database.windows.net/","exp":1800000600}"#),
                now
            ),
            None
        );
        assert_eq!(
            unusable(
                &token(r#"{"aud":"https://database.windows.net","exp":1800000600}"#),
                now
            ),
            None
        );
        let e = unusable(
            &token(r#"{"aud":"https://database.windows.net/","exp":1799999999}"#),
            now,
        )
        .unwrap();
        assert!(e.contains("expired at 2027-01-15"), "{e}");
        let e = unusable(
            &token(r#"{"aud":"https://vault.azure.net","exp":1800000600}"#),
            now,
        )
        .unwrap();
        assert!(
            e.contains("'https://vault.azure.net', not Azure SQL"),
            "{e}"
        );
        for bad in ["not-a-jwt", "a.b.c", ""] {
            assert!(unusable(bad, now).unwrap().contains("not a JWT"), "{bad}");
        }
    }
}
