//! The TLS crypto provider of the process.

/// Makes rustls' ring provider the process default unless the process
/// already chose one. tiberius (SQL Server) and reqwest (Databricks) take the
/// default when there is one and otherwise build on aws-lc-rs, whose first
/// use in a process spends ~30 ms of CPU initialising before the first
/// ClientHello is sent (measured with strace on a login: a 31 ms gap without
/// system calls between the PRELOGIN answer and the ClientHello; the whole
/// TLS handshake went from 42 ms to under 1 ms with ring) — paid by every
/// CLI run and every `sync apply`.
pub fn install_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}
