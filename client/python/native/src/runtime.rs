//! Runs the library's async calls from Python: without the GIL (other
//! Python threads go on), on one Tokio runtime for the process (the
//! operator's connection pool lives on it), and interruptible: Ctrl-C
//! drops the call's future, which cancels the query and removes any
//! half-written output, then raises KeyboardInterrupt.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use sql_databricks_bridge_core::operator::OperatorError;

/// How often a running call looks for a pending signal (Ctrl-C).
const SIGNAL_POLL: Duration = Duration::from_millis(50);

pub fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sql-databricks-bridge")
            .enable_all()
            .build()
            .map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(|e| PyRuntimeError::new_err(format!("cannot start the Tokio runtime: {e}")))
}

/// Runs `fut` to completion with the GIL released, checking for signals.
pub fn block_on<T, F>(py: Python<'_>, fut: F) -> PyResult<T>
where
    T: Send,
    F: Future<Output = Result<T, OperatorError>> + Send,
{
    let rt = runtime()?;
    let out: PyResult<Result<T, OperatorError>> = py.detach(|| {
        rt.block_on(async {
            tokio::pin!(fut);
            let mut tick = tokio::time::interval(SIGNAL_POLL);
            loop {
                tokio::select! {
                    r = &mut fut => return Ok(r),
                    _ = tick.tick() => Python::attach(|py| py.check_signals())?,
                }
            }
        })
    });
    out?.map_err(crate::errors::to_py)
}
