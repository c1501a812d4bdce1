//! Arrow data handed to Python through the Arrow PyCapsule interface
//! (`__arrow_c_stream__`): pyarrow, polars and others import the batches'
//! buffers as they are, without a copy and without a pinned pyarrow version.

use std::ffi::CStr;
use std::sync::Mutex;

use arrow_array::ffi_stream::FFI_ArrowArrayStream;
use arrow_array::{RecordBatch, RecordBatchIterator};
use arrow_schema::SchemaRef;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyCapsule;

const STREAM_CAPSULE: &CStr = c"arrow_array_stream";

/// A query's result as an Arrow C stream, consumable once
/// (`pyarrow.table(stream)`, `polars.DataFrame(stream)`).
#[pyclass(module = "sql_databricks_bridge._native")]
pub struct ArrowStream {
    batches: Mutex<Option<(SchemaRef, Vec<RecordBatch>)>>,
    rows: usize,
}

impl ArrowStream {
    pub fn new(schema: SchemaRef, batches: Vec<RecordBatch>) -> Self {
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        ArrowStream {
            batches: Mutex::new(Some((schema, batches))),
            rows,
        }
    }
}

#[pymethods]
impl ArrowStream {
    /// The Arrow PyCapsule protocol. `requested_schema` is ignored: the
    /// types are the bridge's Parquet mapping, not negotiable.
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        let taken = self
            .batches
            .lock()
            .map_err(|_| PyRuntimeError::new_err("the stream's lock is poisoned"))?
            .take();
        let (schema, batches) = taken
            .ok_or_else(|| PyRuntimeError::new_err("this Arrow stream was already consumed"))?;
        let reader = RecordBatchIterator::new(batches.into_iter().map(Ok), schema);
        let stream = FFI_ArrowArrayStream::new(Box::new(reader));
        // The consumer moves the stream out of the capsule (leaving its
        // release callback empty); dropping the capsule releases it otherwise.
        PyCapsule::new_with_value(py, stream, STREAM_CAPSULE)
    }

    /// Rows in the stream.
    #[getter]
    fn num_rows(&self) -> usize {
        self.rows
    }
}
