//! Client assertions: a JWT an application presents at the token endpoint
//! instead of a secret (`client_assertion_type=urn:ietf:params:oauth:
//! client-assertion-type:jwt-bearer`). Two kinds, told apart by who signed:
//! - a **certificate credential**: signed by the application with the
//!   private key of a certificate registered on it, the certificate named
//!   by its thumbprint (`x5t#S256`, or SHA-1 `x5t`), PS256 or RS256; `iss`
//!   and `sub` the client id, `aud` the token endpoint
//!   (https://learn.microsoft.com/en-us/entra/identity-platform/certificate-credentials);
//! - a **federated credential** (workload identity federation): a token
//!   from an external issuer the application trusts for one subject, with
//!   the audience `api://AzureADTokenExchange`
//!   (https://learn.microsoft.com/en-us/entra/workload-id/workload-identity-federation).
//!
//! Refusals carry the codes the platform documents for them
//! (https://learn.microsoft.com/en-us/azure/developer/java/sdk/troubleshooting-authentication-service-principal).

use aws_lc_rs::digest::{digest, SHA1_FOR_LEGACY_USE_ONLY, SHA256};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rustls::pki_types::CertificateDer;
use serde_json::{Map, Value};

use super::jwt::{self, Jwk};
use super::EntraApp;

/// The assertion type of both kinds.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// The audience a federated token must carry for Entra ID.
pub const TOKEN_EXCHANGE: &str = "api://AzureADTokenExchange";

/// A federated identity credential on an application: tokens from
/// `issuer` about `subject` sign it in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FederatedCredential {
    pub issuer: String,
    pub subject: String,
}

/// An external issuer (a Kubernetes cluster's service account issuer, a CI
/// system) and the keys it publishes.
#[derive(Clone, Debug)]
pub struct ExternalIssuer {
    pub issuer: String,
    pub keys: Vec<Jwk>,
}

/// Why an assertion is refused: the OAuth `error`, the AADSTS code, the text.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub error: &'static str,
    pub code: u32,
    pub text: String,
}

fn refuse(error: &'static str, code: u32, text: String) -> Refusal {
    Refusal { error, code, text }
}

/// A certificate for an application credential: an RSA key (Entra ID takes
/// RSA certificates only) and a self-signed certificate, as
/// `az ad sp create-for-rbac --create-cert` makes one.
pub struct AppCertificate {
    /// The certificate, DER: what is registered on the application.
    pub der: Vec<u8>,
    /// The certificate and its PKCS#8 private key, PEM, in one file: what
    /// the application keeps.
    pub pem: String,
}

impl AppCertificate {
    pub fn generate(common_name: &str) -> Result<AppCertificate, rcgen::Error> {
        let rsa = RsaKeyPair::generate(KeySize::Rsa2048)
            .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
        let pkcs8 = rsa
            .as_der()
            .map_err(|_| rcgen::Error::KeyGenerationUnavailable)?;
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls::pki_types::PrivatePkcs8KeyDer::from(pkcs8.as_ref().to_vec()),
            &rcgen::PKCS_RSA_SHA256,
        )?;
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        let cert = params.self_signed(&key)?;
        Ok(AppCertificate {
            der: cert.der().to_vec(),
            pem: format!("{}{}", cert.pem(), key.serialize_pem()),
        })
    }
}

/// The base64url SHA-1 (`x5t`) and SHA-256 (`x5t#S256`) thumbprints of a
/// certificate.
pub fn thumbprints(der: &[u8]) -> (String, String) {
    (
        URL_SAFE_NO_PAD.encode(digest(&SHA1_FOR_LEGACY_USE_ONLY, der)),
        URL_SAFE_NO_PAD.encode(digest(&SHA256, der)),
    )
}

/// The header and claims of a JWT, unverified.
fn parts(assertion: &str) -> Option<(Map<String, Value>, Map<String, Value>)> {
    let mut it = assertion.trim().split('.');
    let (Some(h), Some(p), Some(_), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return None;
    };
    let decode = |s: &str| -> Option<Map<String, Value>> {
        match serde_json::from_slice(&URL_SAFE_NO_PAD.decode(s).ok()?).ok()? {
            Value::Object(m) => Some(m),
            _ => None,
        }
    };
    Some((decode(h)?, decode(p)?))
}

fn malformed() -> Refusal {
    refuse(
        "invalid_request",
        50027,
        "JWT token is invalid or malformed.".into(),
    )
}

/// Checks `exp` and `nbf` against `now`, with the platform's five minutes
/// of clock skew.
fn in_time(claims: &Map<String, Value>, now: i64) -> Result<(), Refusal> {
    const SKEW: i64 = 300;
    let exp = claims.get("exp").and_then(Value::as_i64);
    let nbf = claims.get("nbf").and_then(Value::as_i64);
    if exp.is_none_or(|e| e + SKEW <= now) || nbf.is_some_and(|n| n - SKEW > now) {
        return Err(refuse(
            "invalid_client",
            700024,
            format!(
                "Client assertion is not within its valid time range. Current time: {}, assertion valid from {}, expiry time of assertion {}.",
                stamp(now),
                nbf.map(stamp).unwrap_or_else(|| "(none)".into()),
                exp.map(stamp).unwrap_or_else(|| "(none)".into()),
            ),
        ));
    }
    Ok(())
}

fn stamp(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%S.0000000Z").to_string())
        .unwrap_or_else(|| t.to_string())
}

/// Checks a client assertion from `app` (the `client_id` of the request):
/// one the application issued itself (`iss` its client id) is a
/// certificate credential, any other a federated token. `endpoints` are
/// the URLs of this tenant's token endpoint an assertion may name as its
/// audience.
pub fn check(
    assertion: &str,
    app: &EntraApp,
    endpoints: &[String],
    issuers: &[ExternalIssuer],
    now: i64,
) -> Result<(), Refusal> {
    let (header, claims) = parts(assertion).ok_or_else(malformed)?;
    let iss = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if iss.eq_ignore_ascii_case(&app.client_id) {
        certificate(assertion, &header, &claims, app, endpoints, now)
    } else {
        federated(assertion, &claims, app, issuers, now)
    }
}

fn certificate(
    assertion: &str,
    header: &Map<String, Value>,
    claims: &Map<String, Value>,
    app: &EntraApp,
    endpoints: &[String],
    now: i64,
) -> Result<(), Refusal> {
    let s256 = header.get("x5t#S256").and_then(Value::as_str);
    let sha1 = header.get("x5t").and_then(Value::as_str);
    let named = s256.or(sha1).unwrap_or_default();
    let Some(der) = app.certificates.iter().find(|der| {
        let (t1, t256) = thumbprints(der);
        s256 == Some(t256.as_str()) || (s256.is_none() && sha1 == Some(t1.as_str()))
    }) else {
        return Err(refuse(
            "invalid_client",
            700027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{named}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '{}'.]",
                app.client_id
            ),
        ));
    };
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some("PS256") => webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        Some("RS256") => webpki::ring::RSA_PKCS1_2048_8192_SHA256,
        _ => return Err(signature_invalid()),
    };
    let (signed, signature) = assertion.trim().rsplit_once('.').ok_or_else(malformed)?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| malformed())?;
    let cert = CertificateDer::from(der.as_slice());
    let cert = webpki::EndEntityCert::try_from(&cert).map_err(|_| signature_invalid())?;
    cert.verify_signature(alg, signed.as_bytes(), &signature)
        .map_err(|_| signature_invalid())?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    if !text("iss").eq_ignore_ascii_case(&app.client_id)
        || !text("sub").eq_ignore_ascii_case(&app.client_id)
    {
        return Err(refuse(
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .".into(),
        ));
    }
    let aud = text("aud");
    if !endpoints.iter().any(|e| {
        e.trim_end_matches('/')
            .eq_ignore_ascii_case(aud.trim_end_matches('/'))
    }) {
        return Err(refuse(
            "invalid_client",
            700023,
            format!("Client assertion audience claim does not match Realm issuer. Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials . Audience: '{aud}'."),
        ));
    }
    in_time(claims, now)
}

fn signature_invalid() -> Refusal {
    refuse(
        "invalid_client",
        700027,
        "Client assertion failed signature validation.".into(),
    )
}

fn federated(
    assertion: &str,
    claims: &Map<String, Value>,
    app: &EntraApp,
    issuers: &[ExternalIssuer],
    now: i64,
) -> Result<(), Refusal> {
    let text = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    let (iss, sub) = (text("iss"), text("sub"));
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let records: Vec<&super::assertion::FederatedCredential> =
        app.federated.iter().filter(|f| f.issuer == iss).collect();
    if records.is_empty() {
        return Err(refuse(
            "invalid_request",
            700211,
            format!("No matching federated identity record found for presented assertion issuer '{iss}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation"),
        ));
    }
    let keys = issuers
        .iter()
        .find(|i| i.issuer == iss)
        .map(|i| i.keys.as_slice())
        .unwrap_or_default();
    if jwt::verify(assertion, keys).is_err() {
        return Err(refuse(
            "invalid_client",
            700027,
            "Client assertion failed signature validation.".into(),
        ));
    }
    if !records.iter().any(|f| f.subject == sub) || !audiences.contains(&TOKEN_EXCHANGE) {
        return Err(refuse(
            "invalid_request",
            70021,
            format!("No matching federated identity record found for presented assertion. Assertion Issuer: '{iss}'. Assertion Subject: '{sub}'. Assertion Audience: '{}'. https://learn.microsoft.com/entra/workload-id/workload-identity-federation", audiences.join(",")),
        ));
    }
    in_time(claims, now)
}
