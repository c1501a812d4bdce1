//! How the HTTP doubles (Databricks, Entra ID) serve: bound on 127.0.0.1,
//! on a thread with its own Tokio runtime — so blocking tests, and async
//! tests on a runtime of their own, can both use them — until the
//! [`Served`] handle is stopped or dropped.

use std::net::SocketAddr;
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

/// Serves `app` on `listener` with `workers` runtime threads named `name`.
pub fn serve(
    name: &'static str,
    workers: usize,
    listener: std::net::TcpListener,
    app: Router,
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
                tokio::select! {
                    r = axum::serve(listener, app) => {
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
