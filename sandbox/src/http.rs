//! How the HTTP doubles (Databricks, Entra ID) serve: bound on 127.0.0.1,
//! on a thread with its own Tokio runtime — so blocking tests, and async
//! tests on a runtime of their own, can both use them — until the
//! [`Served`] handle is stopped or dropped; over TLS where clients demand it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;

/// A server running on its own thread.
pub struct Served {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Served {
    /// Stops serving and waits for the thread.
    pub fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Binds 127.0.0.1:`port` (0 picks a free port).
pub fn bind(port: u16) -> std::io::Result<(std::net::TcpListener, SocketAddr)> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    Ok((listener, addr))
}

/// Serves `app` on `listener` with `workers` runtime threads named `name`;
/// over TLS with `tls` when given.
pub fn serve(
    name: &'static str,
    workers: usize,
    listener: std::net::TcpListener,
    app: Router,
) -> std::io::Result<Served> {
    serve_with(name, workers, listener, app, None)
}

/// [`serve`] over TLS: each connection's handshake is done before it is
/// handed to the server, and one that fails or stalls is dropped.
pub fn serve_tls(
    name: &'static str,
    workers: usize,
    listener: std::net::TcpListener,
    app: Router,
    tls: Arc<rustls::ServerConfig>,
) -> std::io::Result<Served> {
    serve_with(name, workers, listener, app, Some(tls))
}

fn serve_with(
    name: &'static str,
    workers: usize,
    listener: std::net::TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> std::io::Result<Served> {
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()?;
    let listener = {
        let _guard = runtime.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            runtime.block_on(async move {
                let served = async move {
                    match tls {
                        None => axum::serve(listener, app).await,
                        Some(tls) => {
                            let listener = TlsListener {
                                tcp: listener,
                                acceptor: tokio_rustls::TlsAcceptor::from(tls),
                            };
                            axum::serve(listener, app).await
                        }
                    }
                };
                tokio::select! {
                    r = served => {
                        if let Err(e) = r {
                            tracing::error!(error = %e, server = name, "stopped");
                        }
                    }
                    _ = rx => {}
                }
            });
            runtime.shutdown_timeout(Duration::from_secs(2));
        })?;
    Ok(Served {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    })
}

/// A TCP listener whose connections come out after their TLS handshake.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let (tcp, addr) = match self.tcp.accept().await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            match tokio::time::timeout(Duration::from_secs(10), self.acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => return (tls, addr),
                Ok(Err(e)) => tracing::debug!(error = %e, %addr, "TLS handshake failed"),
                Err(_) => tracing::debug!(%addr, "TLS handshake timed out"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}
