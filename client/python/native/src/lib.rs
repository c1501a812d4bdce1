//! `sql_databricks_bridge._native`: the bridge's `BridgeOperator` for Python.
//!
//! Glue only: every extraction and sync runs the library's code
//! (`sql_databricks_bridge_core::operator`), the same the binary runs. The
//! Python face (`sql_databricks_bridge.sdk.databricks.BridgeOperator`) adds
//! the conversions to pyarrow, polars and Spark around these calls.

mod errors;
mod operator;
mod runtime;
mod stream;
mod write;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<operator::Operator>()?;
    m.add_class::<stream::ArrowStream>()?;
    m.add_class::<stream::StreamingArrow>()?;
    m.add_class::<write::DistributedWrite>()?;
    m.add_class::<write::StageLoader>()?;
    errors::register(m)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
