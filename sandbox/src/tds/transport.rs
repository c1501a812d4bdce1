//! Blocking transport: plain TCP or TLS, with TDS 7.x's TLS-in-PRELOGIN
//! handshake and the login-only downgrade.
//!
//! How TDS 7.x wraps TLS (MS-TDS 2.2.6.5 / 3.2.5.2, and tiberius's
//! `client/tls.rs` `TlsPreloginWrapper`): after the PRELOGIN exchange the
//! TLS handshake records travel as the payload of PRELOGIN (0x12) packets in
//! both directions; tiberius reads each packet header itself, requires type
//! PRELOGIN and hands only the payload to TLS, and frames every flush of
//! handshake output as one PRELOGIN packet with EOM. Once the handshake is
//! complete, TLS records go raw on the socket and the TDS packets travel
//! *inside* TLS.
//!
//! Login-only encryption (client OFF, server has a certificate): tiberius's
//! `Connection::post_login_encryption` swaps its whole transport back to the
//! raw TCP stream right after it has written LOGIN7 through TLS and before
//! reading anything, for both reading and writing, without sending a TLS
//! close_notify. So the server must read LOGIN7 through TLS and then send
//! the login response (LOGINACK etc.) and everything after in plain TDS,
//! which is what SQL Server does.
//!
//! We offer TLS 1.2 only, as SQL Server does for TDS 7.x (TLS 1.3 comes with
//! TDS 8 strict mode), and never send TLS 1.3 session tickets: a ticket
//! written after the handshake would sit in the socket ahead of the plain
//! LOGINACK of a login-only connection.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use super::packet::{self, read_packet_header, PRELOGIN};
use super::{Result, TdsError};

/// A client connection, plain or TLS.
pub enum Transport {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
}

impl Transport {
    /// The underlying socket (timeouts, peer address, shutdown).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => s,
            Transport::Tls(t) => &t.sock,
        }
    }

    pub fn is_tls(&self) -> bool {
        matches!(self, Transport::Tls(_))
    }

    /// Whether the client has sent something we have not read yet, without
    /// blocking: used to notice an ATTENTION while streaming results. For
    /// TLS, already-decrypted plaintext counts too. EOF also reports `true`
    /// so the caller's next read sees it.
    pub fn input_pending(&mut self) -> io::Result<bool> {
        match self {
            Transport::Plain(s) => peek_nonblocking(s),
            Transport::Tls(t) => {
                let st = t
                    .conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                if st.plaintext_bytes_to_read() > 0 {
                    return Ok(true);
                }
                peek_nonblocking(&t.sock)
            }
        }
    }

    /// Drops TLS after LOGIN7 for login-only encryption (see the module
    /// docs): both directions continue in plain TCP. Call it after the
    /// LOGIN7 message has been read and before writing the login response.
    /// The client sends nothing more until it reads that response, so no
    /// TLS data is lost; anything rustls still buffered is discarded.
    pub fn downgrade_to_plain(self) -> Transport {
        match self {
            Transport::Tls(t) => {
                let StreamOwned { sock, .. } = *t;
                Transport::Plain(sock)
            }
            plain => plain,
        }
    }
}

fn peek_nonblocking(s: &TcpStream) -> io::Result<bool> {
    s.set_nonblocking(true)?;
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    s.set_nonblocking(false)?;
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(e) => Err(e),
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            Transport::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            Transport::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.flush(),
            Transport::Tls(t) => t.flush(),
        }
    }
}

fn tls_err(e: rustls::Error) -> TdsError {
    TdsError::Protocol(format!("TLS: {e}"))
}

/// Sends pending TLS output framed as PRELOGIN packets.
fn flush_wrapped(conn: &mut ServerConnection, sock: &mut TcpStream) -> Result<()> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out)?;
    }
    if !out.is_empty() {
        sock.write_all(&packet::encode_message(
            PRELOGIN,
            &out,
            packet::DEFAULT_PACKET_SIZE,
        ))?;
        sock.flush()?;
    }
    Ok(())
}

/// Runs the server side of the TLS handshake with records inside PRELOGIN
/// packets (call it right after sending the PRELOGIN response when the
/// negotiated mode needs TLS). Reads are exact per packet, so bytes the
/// client sends after its last handshake packet stay in the socket for the
/// TLS stream.
pub fn tls_accept_in_prelogin(stream: TcpStream, cfg: Arc<ServerConfig>) -> Result<Transport> {
    let mut sock = stream;
    let mut conn = ServerConnection::new(cfg).map_err(tls_err)?;
    loop {
        flush_wrapped(&mut conn, &mut sock)?;
        if !conn.is_handshaking() {
            break;
        }
        let h = read_packet_header(&mut sock)?
            .ok_or_else(|| TdsError::proto("connection closed during the TLS handshake"))?;
        if h.kind != PRELOGIN {
            return Err(TdsError::proto(format!(
                "packet type {:#04x} during the TLS handshake",
                h.kind
            )));
        }
        let mut payload = vec![0u8; h.payload_len()];
        sock.read_exact(&mut payload)?;
        let mut rd = &payload[..];
        while !rd.is_empty() {
            if conn.read_tls(&mut rd)? == 0 {
                return Err(TdsError::proto("TLS layer refused handshake data"));
            }
            if let Err(e) = conn.process_new_packets() {
                // Let the client see the alert before we give up.
                let _ = flush_wrapped(&mut conn, &mut sock);
                return Err(tls_err(e));
            }
        }
    }
    Ok(Transport::Tls(Box::new(StreamOwned::new(conn, sock))))
}

/// A throwaway certificate for `localhost` and `127.0.0.1` and a TLS 1.2
/// server config using the ring provider explicitly (tiberius pulls in
/// aws-lc-rs too, so the process default provider is ambiguous).
/// Returns the config and the certificate PEM for clients to trust.
pub fn self_signed_tls_config() -> Result<(Arc<ServerConfig>, String)> {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .map_err(|e| TdsError::Protocol(format!("certificate generation: {e}")))?;
    let cert = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut cfg =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS12])
            .map_err(tls_err)?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(tls_err)?;
    cfg.send_tls13_tickets = 0;
    Ok((Arc::new(cfg), ck.cert.pem()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::packet::{read_message, LOGIN7, TABULAR};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    use rustls::{ClientConfig, ClientConnection, RootCertStore};
    use std::net::TcpListener;

    /// Client half of the TDS 7.x handshake, the way tiberius's
    /// TlsPreloginWrapper frames it.
    fn client_handshake(sock: &mut TcpStream, pem: &str) -> ClientConnection {
        let mut roots = RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(pem.as_bytes()).unwrap())
            .unwrap();
        let cfg =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        let mut c = ClientConnection::new(Arc::new(cfg), "localhost".try_into().unwrap()).unwrap();
        loop {
            let mut out = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut out).unwrap();
            }
            if !out.is_empty() {
                sock.write_all(&packet::encode_message(PRELOGIN, &out, 4096))
                    .unwrap();
            }
            if !c.is_handshaking() {
                return c;
            }
            let h = read_packet_header(sock).unwrap().unwrap();
            assert_eq!(h.kind, PRELOGIN);
            let mut p = vec![0u8; h.payload_len()];
            sock.read_exact(&mut p).unwrap();
            let mut rd = &p[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
                c.process_new_packets().unwrap();
            }
        }
    }

    /// Handshake inside PRELOGIN packets, LOGIN7 through TLS, then the
    /// login-only downgrade with a plain response; and a full-TLS exchange.
    #[test]
    fn prelogin_tls_handshake_and_downgrade() {
        let (cfg, pem) = self_signed_tls_config().unwrap();
        for downgrade in [true, false] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let cfg = cfg.clone();
            let server = std::thread::spawn(move || {
                let (s, _) = listener.accept().unwrap();
                let mut t = tls_accept_in_prelogin(s, cfg).unwrap();
                assert!(t.is_tls());
                let login = read_message(&mut t, 1 << 16).unwrap().unwrap();
                assert_eq!(login.kind, LOGIN7);
                assert_eq!(login.payload, b"login-bytes");
                let mut t = if downgrade { t.downgrade_to_plain() } else { t };
                let mut w = packet::PacketWriter::new(&mut t, 4096);
                w.write(b"loginack").unwrap();
                w.finish_message().unwrap();
            });
            let mut sock = TcpStream::connect(addr).unwrap();
            let c = client_handshake(&mut sock, &pem);
            let mut tls = StreamOwned::new(c, sock);
            tls.write_all(&packet::encode_message(LOGIN7, b"login-bytes", 4096))
                .unwrap();
            tls.flush().unwrap();
            let msg = if downgrade {
                let mut plain = tls.sock;
                read_message(&mut plain, 1 << 16).unwrap().unwrap()
            } else {
                read_message(&mut tls, 1 << 16).unwrap().unwrap()
            };
            assert_eq!(msg.kind, TABULAR);
            assert_eq!(msg.payload, b"loginack");
            server.join().unwrap();
        }
    }

    #[test]
    fn input_pending_plain() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        let mut t = Transport::Plain(s);
        assert!(!t.input_pending().unwrap());
        client.write_all(&[6, 1, 0, 8, 0, 0, 0, 0]).unwrap();
        client.flush().unwrap();
        for _ in 0..100 {
            if t.input_pending().unwrap() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(t.input_pending().unwrap());
        let m = read_message(&mut t, 100).unwrap().unwrap();
        assert_eq!(m.kind, packet::ATTENTION);
    }

    #[test]
    fn handshake_rejects_non_prelogin_packets() {
        let (cfg, _) = self_signed_tls_config().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        client
            .write_all(&packet::encode_message(packet::SQL_BATCH, b"xx", 4096))
            .unwrap();
        assert!(tls_accept_in_prelogin(s, cfg.clone()).is_err());
        // Garbage inside PRELOGIN is a TLS error, not a panic.
        let mut client2 = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (s, _) = listener.accept().unwrap();
        client2
            .write_all(&packet::encode_message(
                PRELOGIN,
                &[0x16, 3, 1, 0, 2, 9, 9],
                4096,
            ))
            .unwrap();
        drop(client2);
        assert!(tls_accept_in_prelogin(s, cfg).is_err());
        drop(client);
    }
}
