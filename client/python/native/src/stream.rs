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

/// What a stream holds, taken by its one consumer.
fn take_once<T>(slot: &Mutex<Option<T>>) -> PyResult<T> {
    slot.lock()
        .map_err(|_| PyRuntimeError::new_err("the stream's lock is poisoned"))?
        .take()
        .ok_or_else(|| PyRuntimeError::new_err("this Arrow stream was already consumed"))
}

/// `reader` as an Arrow C stream capsule. The consumer moves the stream out
/// of the capsule (leaving its release callback empty); dropping the
/// capsule releases it otherwise.
fn export<'py>(
    py: Python<'py>,
    reader: impl arrow_array::RecordBatchReader + Send + 'static,
) -> PyResult<Bound<'py, PyCapsule>> {
    let stream = FFI_ArrowArrayStream::new(Box::new(reader));
    PyCapsule::new_with_value(py, stream, STREAM_CAPSULE)
}

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
        let (schema, batches) = take_once(&self.batches)?;
        export(
            py,
            RecordBatchIterator::new(batches.into_iter().map(Ok), schema),
        )
    }

    /// Rows in the stream.
    #[getter]
    fn num_rows(&self) -> usize {
        self.rows
    }
}

/// A record batch handed over by Python (pyarrow's `RecordBatch`, or any
/// object with the Arrow PyCapsule `__arrow_c_array__`), imported without a
/// copy.
pub fn import_batch(obj: &Bound<'_, PyAny>) -> PyResult<RecordBatch> {
    use arrow_array::ffi::{from_ffi, FFI_ArrowArray, FFI_ArrowSchema};
    use arrow_array::{Array, StructArray};
    use pyo3::exceptions::PyTypeError;

    let (schema, array): (Bound<'_, PyCapsule>, Bound<'_, PyCapsule>) = obj
        .call_method0("__arrow_c_array__")
        .map_err(|_| PyTypeError::new_err("expected an Arrow record batch (pyarrow.RecordBatch)"))?
        .extract()?;
    let schema_ptr = schema.pointer_checked(Some(c"arrow_schema"))?;
    let array_ptr = array.pointer_checked(Some(c"arrow_array"))?;
    // SAFETY: the capsules hold an ArrowSchema and an ArrowArray as the
    // PyCapsule interface defines them; the array is moved out (its
    // release callback left empty, as the interface asks of a consumer)
    // and the schema only read.
    let data = unsafe {
        let array = FFI_ArrowArray::from_raw(array_ptr.as_ptr().cast::<FFI_ArrowArray>());
        from_ffi(array, &*schema_ptr.as_ptr().cast::<FFI_ArrowSchema>())
    }
    .map_err(|e| PyRuntimeError::new_err(format!("cannot import the Arrow batch: {e}")))?;
    let columns = StructArray::from(data);
    if columns.null_count() > 0 {
        return Err(PyRuntimeError::new_err(
            "the Arrow batch has null rows at the top level",
        ));
    }
    Ok(RecordBatch::from(columns))
}

/// What a streaming query hands its reader.
pub enum Piece {
    Batch(RecordBatch),
    /// The query ended; its schema (for a result with no rows).
    End(SchemaRef),
    Failed(sql_databricks_bridge_core::operator::OperatorError),
}

/// The batches of a query still running, pulled one at a time.
struct ChannelReader {
    schema: SchemaRef,
    first: Option<RecordBatch>,
    rx: Option<std::sync::mpsc::Receiver<Piece>>,
}

impl Iterator for ChannelReader {
    type Item = Result<RecordBatch, arrow_schema::ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(b) = self.first.take() {
            return Some(Ok(b));
        }
        let piece = self.rx.as_ref()?.recv();
        match piece {
            Ok(Piece::Batch(b)) => Some(Ok(b)),
            Ok(Piece::End(_)) => {
                self.rx = None;
                None
            }
            Ok(Piece::Failed(e)) => {
                self.rx = None;
                Some(Err(arrow_schema::ArrowError::ExternalError(Box::new(e))))
            }
            Err(_) => {
                self.rx = None;
                Some(Err(arrow_schema::ArrowError::ExternalError(
                    "the query stopped without saying why".into(),
                )))
            }
        }
    }
}

impl arrow_array::RecordBatchReader for ChannelReader {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// A query's result as an Arrow C stream read while the query runs: a
/// batch is decoded when the consumer asks for the next one (two at most
/// wait), so memory does not grow with the result. Consumable once.
#[pyclass(module = "sql_databricks_bridge._native")]
pub struct StreamingArrow {
    reader: Mutex<Option<ChannelReader>>,
}

impl StreamingArrow {
    /// Waits for the query's first batch (or its end, or its error, raised
    /// here with its kind), then streams the rest from `rx`.
    pub fn start(py: Python<'_>, rx: std::sync::mpsc::Receiver<Piece>) -> PyResult<Self> {
        let (first, rx) = py.detach(move || (rx.recv(), rx));
        let (schema, first, rx) = match first {
            Ok(Piece::Batch(b)) => (b.schema(), Some(b), Some(rx)),
            Ok(Piece::End(schema)) => (schema, None, None),
            Ok(Piece::Failed(e)) => return Err(crate::errors::to_py(e)),
            Err(_) => {
                return Err(PyRuntimeError::new_err(
                    "the query stopped without saying why",
                ))
            }
        };
        Ok(StreamingArrow {
            reader: Mutex::new(Some(ChannelReader { schema, first, rx })),
        })
    }
}

#[pymethods]
impl StreamingArrow {
    /// The Arrow PyCapsule protocol (`pyarrow.RecordBatchReader.from_stream`).
    #[pyo3(signature = (requested_schema=None))]
    fn __arrow_c_stream__<'py>(
        &self,
        py: Python<'py>,
        requested_schema: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyCapsule>> {
        let _ = requested_schema;
        export(py, take_once(&self.reader)?)
    }
}
