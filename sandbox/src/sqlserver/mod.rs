//! The SQL Server sandbox: a TDS 7.4 server on 127.0.0.1 in front of the
//! T-SQL engine. One OS thread per connection with blocking I/O keeps the
//! protocol code straight-line; a sandbox never has many clients.

mod connection;
mod fedauth;
#[cfg(feature = "kerberos")]
mod kerberos;
mod output;
mod rpc;

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

pub use crate::tds::prelogin::ServerEncryption;

use crate::engine::Engine;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct SqlServerConfig {
    /// 0 picks a free port.
    pub port: u16,
    pub user: String,
    pub password: String,
    pub encryption: ServerEncryption,
    /// Where the database file lives; `None` for a temporary directory.
    pub data_dir: Option<PathBuf>,
    /// The Microsoft Entra tenant whose access tokens sign in (Azure SQL's
    /// Entra ID authentication); `None` refuses them.
    pub entra: Option<crate::entra::EntraTrust>,
    /// The keytab of the server's `MSSQLSvc/host:port` principal: clients
    /// sign in with Kerberos (Windows authentication) as `CREATE LOGIN
    /// [DOMAIN\user] FROM WINDOWS` logins; `None` refuses integrated
    /// sign-in (as does a sandbox built without the `kerberos` feature).
    /// Read at each sign-in, so principals can be added after start.
    pub kerberos_keytab: Option<PathBuf>,
}

impl Default for SqlServerConfig {
    fn default() -> Self {
        SqlServerConfig {
            port: 0,
            user: "sa".into(),
            password: "Bridge!Passw0rd".into(),
            encryption: ServerEncryption::LoginOnly,
            data_dir: None,
            entra: None,
            kerberos_keytab: None,
        }
    }
}

/// Faults injected into the protocol, so clients' retries are tested.
/// Deadlocks are injected on the engine ([`Engine::inject_deadlock`]).
#[derive(Debug, Default)]
pub struct Faults {
    /// Drop the connection after sending this many rows of one result (0 = off).
    pub drop_after_rows: AtomicU64,
    /// How many more connections to drop that way (`u32::MAX`: every one).
    pub drop_budget: AtomicU32,
    /// Sleep this long before each packet the server sends (0 = off).
    pub packet_delay_ms: AtomicU64,
    /// Refuse the next N logins with error 18456.
    pub fail_logins: AtomicU32,
    /// Drop the connection after receiving this many rows of a bulk load (0 = off).
    pub drop_bulk_after_rows: AtomicU64,
    /// How many more bulk loads to cut that way.
    pub drop_bulk_budget: AtomicU32,
    /// SQL batches that run — and commit what they commit — and whose
    /// answer is then lost: the connection closes instead.
    lost_answers: std::sync::Mutex<Vec<(regex::Regex, u32)>>,
}

impl Faults {
    /// Drops every connection after `rows` rows of a result (0 turns it off).
    pub fn drop_connection_after_rows(&self, rows: u64) {
        self.drop_budget.store(u32::MAX, Ordering::SeqCst);
        self.drop_after_rows.store(rows, Ordering::SeqCst);
    }

    /// Drops only the next `times` connections that reach `rows` rows.
    pub fn drop_next_connections_after_rows(&self, rows: u64, times: u32) {
        self.drop_budget.store(times, Ordering::SeqCst);
        self.drop_after_rows.store(rows, Ordering::SeqCst);
    }

    /// Takes one drop from the budget, if any is left.
    fn take_drop(&self) -> bool {
        self.drop_budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
                u32::MAX => Some(n),
                0 => None,
                n => Some(n - 1),
            })
            .is_ok()
    }

    pub fn delay_packets(&self, delay: Duration) {
        self.packet_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Cuts the next `times` bulk loads that reach `rows` rows: the
    /// connection closes mid-load, as a network failure would.
    pub fn drop_next_bulk_loads_after_rows(&self, rows: u64, times: u32) {
        self.drop_bulk_budget.store(times, Ordering::SeqCst);
        self.drop_bulk_after_rows.store(rows, Ordering::SeqCst);
    }

    /// The next `times` SQL batches whose text matches `pattern` run to
    /// the end — a COMMIT commits — and then the connection is closed
    /// instead of answering, as when the network fails on the way back: the
    /// client cannot tell whether its work was done.
    pub fn lose_answers(&self, pattern: &str, times: u32) -> Result<(), regex::Error> {
        let re = regex::Regex::new(pattern)?;
        self.lost_answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((re, times));
        Ok(())
    }

    /// Forgets the lost answers armed and not yet fired.
    pub fn clear_lost_answers(&self) {
        self.lost_answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// Consumes a lost answer for a batch with this text.
    pub(crate) fn take_lost_answer(&self, sql: &str) -> bool {
        let mut rules = self.lost_answers.lock().unwrap_or_else(|p| p.into_inner());
        match rules.iter_mut().find(|(re, n)| *n > 0 && re.is_match(sql)) {
            Some((_, n)) => {
                *n -= 1;
                true
            }
            None => false,
        }
    }

    /// Takes one bulk-load cut from the budget, if any is left.
    pub(crate) fn take_bulk_drop(&self) -> bool {
        self.drop_bulk_budget
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    pub fn fail_next_logins(&self, n: u32) {
        self.fail_logins.store(n, Ordering::SeqCst);
    }

    /// Consumes one queued login failure, if any.
    fn take_login_failure(&self) -> bool {
        self.fail_logins
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Shared by the accept loop and every connection.
struct Shared {
    config: SqlServerConfig,
    engine: Engine,
    tls: Option<Arc<rustls::ServerConfig>>,
    faults: Arc<Faults>,
    stopping: AtomicBool,
    /// Open connections by id, so shutdown can close them.
    connections: Mutex<HashMap<u64, TcpStream>>,
    next_connection: AtomicU64,
}

/// A running server; dropping it (or [`SqlServerHandle::shutdown`]) stops it.
pub struct SqlServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    cert_pem: Option<String>,
    accept: Option<JoinHandle<()>>,
}

impl SqlServerHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// The server's clock (test-only: move it to age Change Tracking).
    pub fn clock(&self) -> &crate::clock::Clock {
        self.shared.engine.clock()
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The self-signed certificate the server presents, when it has one.
    pub fn certificate_pem(&self) -> Option<&str> {
        self.cert_pem.as_deref()
    }

    /// Stops accepting, closes every connection and waits for the accept loop.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        if let Ok(conns) = self.shared.connections.lock() {
            for c in conns.values() {
                let _ = c.shutdown(std::net::Shutdown::Both);
            }
        }
        // The accept loop blocks in accept(): a connection of our own wakes
        // it to see the flag. Should that fail, the thread is left to end
        // with the process rather than joined forever.
        let woke = std::net::TcpStream::connect_timeout(&self.addr, Duration::from_secs(2));
        if let (Some(h), true) = (self.accept.take(), woke.is_ok()) {
            let _ = h.join();
        }
    }
}

impl Drop for SqlServerHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: io::Error },
    #[error("cannot make the TLS certificate: {0}")]
    Tls(String),
    #[error("cannot open the database: {0}")]
    Engine(#[from] crate::engine::SqlError),
}

/// Starts a server on a fresh engine.
pub fn start(config: SqlServerConfig) -> Result<SqlServerHandle, StartError> {
    let engine = Engine::open(config.data_dir.as_deref())?;
    start_with_engine(config, engine)
}

/// Starts a server on an existing engine (already seeded, for example).
pub fn start_with_engine(
    config: SqlServerConfig,
    engine: Engine,
) -> Result<SqlServerHandle, StartError> {
    let listener =
        TcpListener::bind(("127.0.0.1", config.port)).map_err(|source| StartError::Bind {
            port: config.port,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        port: config.port,
        source,
    })?;
    let (tls, cert_pem) = match config.encryption {
        ServerEncryption::NotSupported => (None, None),
        _ => {
            let (cfg, pem) = crate::tds::transport::self_signed_tls_config()
                .map_err(|e| StartError::Tls(e.to_string()))?;
            (Some(cfg), Some(pem))
        }
    };
    let shared = Arc::new(Shared {
        config,
        engine,
        tls,
        faults: Arc::new(Faults::default()),
        stopping: AtomicBool::new(false),
        connections: Mutex::new(HashMap::new()),
        next_connection: AtomicU64::new(1),
    });
    let accept_shared = shared.clone();
    let accept = std::thread::Builder::new()
        .name("sandbox-accept".into())
        .spawn(move || accept_loop(listener, accept_shared))
        .map_err(|source| StartError::Bind {
            port: addr.port(),
            source,
        })?;
    tracing::info!(%addr, "SQL Server sandbox listening");
    Ok(SqlServerHandle {
        addr,
        shared,
        cert_pem,
        accept: Some(accept),
    })
}

/// Accepts connections as they come, as SQL Server does (a blocking accept:
/// polling a non-blocking listener every 20 ms kept each new connection
/// waiting 10 ms on average, a wait no server adds to a login).
fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = listener.accept();
        if shared.stopping.load(Ordering::SeqCst) {
            return;
        }
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
                if let (Ok(clone), Ok(mut conns)) = (stream.try_clone(), shared.connections.lock())
                {
                    conns.insert(id, clone);
                }
                let s = shared.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("sandbox-conn-{peer}"))
                    .spawn(move || {
                        if let Err(e) = connection::serve(stream, &s) {
                            tracing::debug!(%peer, error = %e, "connection closed");
                        }
                        // The registry holds a clone of the socket: close it for real.
                        let closed = s.connections.lock().ok().and_then(|mut c| c.remove(&id));
                        if let Some(c) = closed {
                            let _ = c.shutdown(std::net::Shutdown::Both);
                        }
                    });
                if let Err(e) = spawned {
                    tracing::warn!(error = %e, "cannot start a connection thread");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
