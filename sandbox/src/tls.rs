//! A private certificate authority for the doubles that clients reach only
//! over HTTPS. Entra ID's authority host is one: the Azure Identity
//! libraries refuse an `http` authority ("authority host doesn't use HTTPS
//! scheme"), so the double serves TLS with a certificate for `localhost`
//! and `127.0.0.1` issued by a CA made at start, whose certificate a test
//! hands to its clients (`SSL_CERT_FILE`, `REQUESTS_CA_BUNDLE`).

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// A server certificate and the CA that issued it.
pub struct LocalCa {
    /// The CA's certificate, PEM: what clients trust.
    pub ca_pem: String,
    /// TLS 1.2 and 1.3 with the server certificate, HTTP/1.1 by ALPN.
    pub server: Arc<ServerConfig>,
}

#[derive(Debug, thiserror::Error)]
pub enum LocalCaError {
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
}

impl LocalCa {
    /// A new CA (`name` in its subject) and a certificate for `localhost`
    /// and `127.0.0.1` signed by it.
    pub fn new(name: &str) -> Result<LocalCa, LocalCaError> {
        let mut ca = CertificateParams::new(Vec::<String>::new())?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_key = KeyPair::generate()?;
        let ca_cert = ca.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca, ca_key);

        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.use_authority_key_identifier_extension = true;
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate()?;
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let chain = vec![
            CertificateDer::from(leaf_cert.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ];
        let mut server =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(chain, key)?;
        server.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(LocalCa {
            ca_pem: ca_cert.pem(),
            server: Arc::new(server),
        })
    }
}
