//! `_native.DistributedWrite`: a DataFrame written into SQL Server by many
//! tasks and committed once (`sql_databricks_bridge.spark`'s writer). Each
//! task streams its batches into a stage table through a `StageLoader`;
//! the driver commits the reported stages with the ledger row of the write
//! id, or aborts and drops them.

use std::sync::{Arc, Mutex};

use arrow_array::RecordBatch;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sql_databricks_bridge_core::operator::{BridgeOperator, OperatorError};
use sql_databricks_bridge_core::sync::staged::StagedWrite;
use sql_databricks_bridge_core::sync::StageRef;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::runtime::{block_on, runtime};
use crate::stream::import_batch;

/// Batches in flight between a task's Python loop and its bulk load.
const IN_FLIGHT: usize = 2;

/// A planned write: checked against the target, shared by every task.
#[pyclass(module = "sql_databricks_bridge._native", frozen)]
pub struct DistributedWrite {
    op: BridgeOperator,
    write: Arc<StagedWrite>,
}

impl DistributedWrite {
    pub fn new(op: BridgeOperator, write: StagedWrite) -> Self {
        DistributedWrite {
            op,
            write: Arc::new(write),
        }
    }
}

#[pymethods]
impl DistributedWrite {
    /// The write's key in the target database's ledger.
    #[getter]
    fn ledger_id(&self) -> String {
        self.write.ledger_id().to_string()
    }

    /// The run whose stages this plan loads and commits.
    #[getter]
    fn run(&self) -> String {
        self.write.run().to_string()
    }

    /// Starts loading one task attempt's rows into its stage table.
    fn stage(&self, partition: u64, attempt: u64) -> PyResult<StageLoader> {
        let (tx, mut rx) = mpsc::channel::<RecordBatch>(IN_FLIGHT);
        let op = self.op.clone();
        let write = self.write.clone();
        let task =
            runtime()?.spawn(async move { op.stage(&write, partition, attempt, &mut rx).await });
        Ok(StageLoader {
            state: Mutex::new(Some((tx, task))),
        })
    }

    /// Applies the stages (table, rows) the tasks reported, once per write
    /// id, and drops all the write's stage tables.
    fn commit<'py>(
        &self,
        py: Python<'py>,
        stages: Vec<(String, u64)>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let out = block_on(py, self.op.commit_stages(&self.write, &stages))?;
        crate::operator::sync_outcome_dict(py, &out)
    }

    /// Opens the run (the driver, before any task stages).
    fn open(&self, py: Python<'_>) -> PyResult<()> {
        block_on(py, self.op.open_write(&self.write))
    }

    /// Closes the run and drops its stage tables; how many there were.
    fn abort(&self, py: Python<'_>) -> PyResult<u64> {
        block_on(py, self.op.abort_stages(&self.write))
    }
}

type Loading = (
    mpsc::Sender<RecordBatch>,
    JoinHandle<Result<StageRef, OperatorError>>,
);

/// One task attempt's load: `send` each batch, then `finish` for the
/// commit message. Dropped unfinished, the stage is never reported (and is
/// dropped with the write's others).
#[pyclass(module = "sql_databricks_bridge._native", frozen)]
pub struct StageLoader {
    state: Mutex<Option<Loading>>,
}

impl StageLoader {
    fn take(&self) -> PyResult<Loading> {
        self.state
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the loader's lock is poisoned"))?
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this stage loader is finished"))
    }
}

/// The load's end: its stage, or why it failed.
fn finished(
    py: Python<'_>,
    task: JoinHandle<Result<StageRef, OperatorError>>,
) -> PyResult<StageRef> {
    block_on(py, async move {
        task.await
            .map_err(|e| OperatorError::Argument(format!("the stage load stopped: {e}")))?
    })
}

#[pymethods]
impl StageLoader {
    /// Hands one batch to the load (waits while two are in flight).
    fn send(&self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<()> {
        let batch = import_batch(batch)?;
        let tx = {
            let guard = self
                .state
                .lock()
                .map_err(|_| PyRuntimeError::new_err("the loader's lock is poisoned"))?;
            guard
                .as_ref()
                .map(|(tx, _)| tx.clone())
                .ok_or_else(|| PyRuntimeError::new_err("this stage loader is finished"))?
        };
        if py.detach(|| tx.blocking_send(batch)).is_err() {
            // The load ended early: its error says why.
            let (_, task) = self.take()?;
            finished(py, task)?;
            return Err(PyRuntimeError::new_err("the stage load ended early"));
        }
        Ok(())
    }

    /// Ends the load: (stage table, rows), the task's commit message.
    fn finish(&self, py: Python<'_>) -> PyResult<(String, u64)> {
        let (tx, task) = self.take()?;
        drop(tx);
        let stage = finished(py, task)?;
        let name = stage
            .quoted
            .rsplit_once(".[")
            .map(|(_, n)| n.trim_end_matches(']').to_string())
            .unwrap_or(stage.quoted);
        Ok((name, stage.rows))
    }
}
