//! A certificate credential's client assertion: a JWT the application
//! signs with its certificate's private key, naming the certificate by its
//! SHA-256 thumbprint (`x5t#S256`), PS256, `iss` and `sub` its client id,
//! `aud` the token endpoint, good for ten minutes
//! (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials).
//! The Rust Azure Identity library signs certificates only through OpenSSL;
//! this is the assertion alone, handed to its `ClientAssertionCredential`,
//! which does the rest of the grant.

use std::path::Path;
use std::sync::Arc;

use azure_core::http::ClientMethodOptions;
use azure_identity::ClientAssertion;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PSS_SHA256};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::json;

use super::EntraError;

/// How long an assertion is good for.
const LIFETIME_SECS: i64 = 600;

pub struct CertificateAssertion {
    client_id: String,
    audience: String,
    thumbprint: String,
    key: Arc<RsaKeyPair>,
}

impl std::fmt::Debug for CertificateAssertion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAssertion")
            .field("client_id", &self.client_id)
            .field("thumbprint", &self.thumbprint)
            .finish_non_exhaustive()
    }
}

impl CertificateAssertion {
    /// Reads the certificate and its RSA private key (PKCS#8 or PKCS#1)
    /// from one PEM file.
    pub fn load(path: &Path, client_id: &str, audience: &str) -> Result<Self, EntraError> {
        let shown = path.display();
        let bytes = std::fs::read(path)
            .map_err(|e| EntraError(format!("cannot read the certificate file {shown}: {e}")))?;
        let cert = CertificateDer::pem_slice_iter(&bytes)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| {
                EntraError(format!(
                    "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----); PKCS#12 files are not read: convert with openssl pkcs12 -nodes"
                ))
            })?;
        let key = PrivateKeyDer::from_pem_slice(&bytes).map_err(|_| {
            EntraError(format!(
                "{shown} holds no private key: put the certificate's key in the same PEM file"
            ))
        })?;
        let key = match &key {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => {
                return Err(EntraError(format!(
                    "the key in {shown} is not an RSA key; Microsoft Entra ID takes RSA certificates only"
                )))
            }
        }
        .map_err(|e| EntraError(format!("the key in {shown} cannot sign: {e}")))?;
        Ok(CertificateAssertion {
            client_id: client_id.to_string(),
            audience: audience.to_string(),
            thumbprint: URL_SAFE_NO_PAD
                .encode(ring::digest::digest(&ring::digest::SHA256, cert.as_ref())),
            key: Arc::new(key),
        })
    }

    /// A new assertion, issued now.
    pub fn sign(&self, now: i64) -> Result<String, EntraError> {
        let header = json!({"alg": "PS256", "typ": "JWT", "x5t#S256": self.thumbprint});
        let claims = json!({
            "aud": self.audience,
            "iss": self.client_id,
            "sub": self.client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME_SECS,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PSS_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| EntraError("signing the client assertion failed".into()))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}

#[async_trait::async_trait]
impl ClientAssertion for CertificateAssertion {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        self.sign(chrono::Utc::now().timestamp()).map_err(|e| {
            azure_core::Error::with_message(azure_core::error::ErrorKind::Credential, e.0)
        })
    }
}
