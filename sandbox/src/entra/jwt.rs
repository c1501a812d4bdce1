//! JSON Web Tokens as the Microsoft identity platform issues them: a JWS in
//! compact form (RFC 7515), `alg` RS256 (RSASSA-PKCS1-v1_5 with SHA-256,
//! RFC 7518 §3.3), the signing key named by `kid` and published as a JWK
//! (RFC 7517). Signing is for the Entra ID double; verifying is what a
//! resource (the SQL Server sandbox) does with a token it is given.
//! https://learn.microsoft.com/en-us/entra/identity-platform/access-tokens#validate-tokens

use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::{
    KeyPair as _, RsaPublicKeyComponents, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};

/// A signing key and its id.
pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
}

/// A published verification key (the `n`, `e` of an RSA JWK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Jwk {
    pub kid: String,
    pub n: Vec<u8>,
    pub e: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("the token is not a JWS in compact form")]
    Malformed,
    #[error("the token's algorithm is {0}, not RS256")]
    Algorithm(String),
    #[error("the token is signed by key '{0}', which the issuer does not publish")]
    UnknownKey(String),
    #[error("the token's signature does not verify")]
    Signature,
}

impl SigningKey {
    /// A new 2048-bit RSA key.
    pub fn generate(kid: &str) -> SigningKey {
        let pair = KeyPair::generate(KeySize::Rsa2048)
            .unwrap_or_else(|e| panic!("RSA key generation failed: {e}"));
        SigningKey {
            kid: kid.to_string(),
            pair,
        }
    }

    /// The key as a JWK.
    pub fn jwk(&self) -> Jwk {
        let public = self.pair.public_key();
        Jwk {
            kid: self.kid.clone(),
            n: public.modulus().big_endian_without_leading_zero().to_vec(),
            e: public.exponent().big_endian_without_leading_zero().to_vec(),
        }
    }

    /// `claims` signed with this key: `header.payload.signature`.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid, "x5t": self.kid});
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .unwrap_or_else(|e| panic!("RS256 signing failed: {e}"));
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

impl Jwk {
    /// The JWK as published in a JWKS document.
    pub fn to_json(&self) -> Value {
        json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": URL_SAFE_NO_PAD.encode(&self.n),
            "e": URL_SAFE_NO_PAD.encode(&self.e),
        })
    }
}

/// The claims of a token whose RS256 signature verifies with one of `keys`
/// (the one its `kid` names). Claims are not judged here: audience, issuer
/// and lifetime are the resource's to check.
pub fn verify(token: &str, keys: &[Jwk]) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.trim().split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| JwtError::Malformed)
    };
    let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
    let alg = header["alg"].as_str().unwrap_or_default();
    if alg != "RS256" {
        return Err(JwtError::Algorithm(alg.to_string()));
    }
    let kid = header["kid"].as_str().unwrap_or_default();
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| JwtError::UnknownKey(kid.to_string()))?;
    RsaPublicKeyComponents {
        n: key.n.as_slice(),
        e: key.e.as_slice(),
    }
    .verify(
        &RSA_PKCS1_2048_8192_SHA256,
        format!("{h}.{p}").as_bytes(),
        &decode(s)?,
    )
    .map_err(|_| JwtError::Signature)?;
    match serde_json::from_slice(&decode(p)?) {
        Ok(Value::Object(claims)) => Ok(claims),
        _ => Err(JwtError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signed_tokens_verify_only_with_their_key_and_unaltered() {
        let key = SigningKey::generate("k1");
        let other = SigningKey::generate("k1");
        let token = key.sign(&json!({"aud": "https://database.windows.net/", "appid": "a"}));
        let claims = verify(&token, &[key.jwk()]).unwrap();
        assert_eq!(claims["appid"], "a");
        // Another key under the same id, an unknown id, a changed payload.
        assert_eq!(verify(&token, &[other.jwk()]), Err(JwtError::Signature));
        let renamed = Jwk {
            kid: "k2".into(),
            ..key.jwk()
        };
        assert_eq!(
            verify(&token, &[renamed]),
            Err(JwtError::UnknownKey("k1".into()))
        );
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged =
            URL_SAFE_NO_PAD.encode(r#"{"aud":"https://database.windows.net/","appid":"b"}"#);
        parts[1] = &forged;
        assert_eq!(
            verify(&parts.join("."), &[key.jwk()]),
            Err(JwtError::Signature)
        );
        // alg none is refused whatever the rest says.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"k1"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"appid":"a"}"#)
        );
        assert_eq!(
            verify(&none, &[key.jwk()]),
            Err(JwtError::Algorithm("none".into()))
        );
        assert_eq!(verify("abc", &[key.jwk()]), Err(JwtError::Malformed));
    }
}
