//! Arrow record batches → a polars `DataFrame` (feature `polars`), through
//! the Arrow C Data Interface: polars has its own Arrow implementation, and
//! the C interface hands it our buffers without copying them. Numbers,
//! booleans, dates, timestamps and decimals keep their buffers; strings and
//! binaries are re-laid as polars' views, the one layout polars keeps them in.

use std::sync::Arc;

use arrow_array::ffi::{to_ffi, FFI_ArrowArray, FFI_ArrowSchema};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema};
use polars::prelude::{Column, DataFrame, PlSmallStr, Series};
use polars_arrow::ffi::{import_array_from_c, import_field_from_c, ArrowArray, ArrowSchema};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("column {column}: exporting {data_type} through the Arrow C interface: {message}")]
    Export {
        column: String,
        data_type: DataType,
        message: String,
    },
    #[error("column {column}: polars cannot take {data_type}: {message}")]
    Import {
        column: String,
        data_type: DataType,
        message: String,
    },
    #[error("building the DataFrame: {0}")]
    Frame(String),
}

// The two crates' C structs are the same C ABI structs (#[repr(C)], the
// layout the Arrow specification fixes); these make sure of their sizes.
const _: () = assert!(std::mem::size_of::<FFI_ArrowArray>() == std::mem::size_of::<ArrowArray>());
const _: () = assert!(std::mem::size_of::<FFI_ArrowSchema>() == std::mem::size_of::<ArrowSchema>());

/// The batches as one DataFrame: one polars chunk per batch, column types
/// as the Parquet mapping gives them (DECIMAL(p,s) → Decimal(p,s),
/// TIMESTAMP → Datetime(μs[, UTC]), DATE → Date, INT16 → Int16, ...).
pub fn to_dataframe(
    schema: &Arc<Schema>,
    batches: &[RecordBatch],
) -> Result<DataFrame, FrameError> {
    let height: usize = batches.iter().map(|b| b.num_rows()).sum();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (i, field) in schema.fields().iter().enumerate() {
        let mut chunks = Vec::with_capacity(batches.len());
        for b in batches {
            chunks.push(import(field.name(), b.column(i).as_ref())?);
        }
        let series = if chunks.is_empty() {
            // A result with no batch at all: an empty column of the type.
            let empty = arrow_array::new_empty_array(field.data_type());
            Series::from_arrow(
                PlSmallStr::from_str(field.name()),
                import(field.name(), &empty)?,
            )
        } else {
            Series::from_arrow_chunks(PlSmallStr::from_str(field.name()), chunks)
        }
        .map_err(|e| FrameError::Import {
            column: field.name().clone(),
            data_type: field.data_type().clone(),
            message: e.to_string(),
        })?;
        columns.push(Column::from(series));
    }
    DataFrame::new(height, columns).map_err(|e| FrameError::Frame(e.to_string()))
}

/// One arrow-rs array as a polars-arrow array, sharing its buffers.
fn import(
    column: &str,
    array: &dyn Array,
) -> Result<Box<dyn polars_arrow::array::Array>, FrameError> {
    let data_type = array.data_type().clone();
    let (ffi_array, ffi_schema) = to_ffi(&array.to_data()).map_err(|e| FrameError::Export {
        column: column.to_string(),
        data_type: data_type.clone(),
        message: e.to_string(),
    })?;
    let import_err = |message: String| FrameError::Import {
        column: column.to_string(),
        data_type: data_type.clone(),
        message,
    };
    // SAFETY: both structs are the Arrow C Data Interface's ArrowArray /
    // ArrowSchema (same #[repr(C)] layout, sizes asserted above). The
    // array moves to polars, which calls its release callback once; the
    // schema stays ours (polars only reads it) and is released when
    // `ffi_schema` drops.
    unsafe {
        let schema_ref = &*(&ffi_schema as *const FFI_ArrowSchema as *const ArrowSchema);
        let field = import_field_from_c(schema_ref).map_err(|e| import_err(e.to_string()))?;
        let moved: ArrowArray = std::mem::transmute::<FFI_ArrowArray, ArrowArray>(ffi_array);
        import_array_from_c(moved, field.dtype().clone()).map_err(|e| import_err(e.to_string()))
    }
}
