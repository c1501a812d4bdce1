//! The bridge's errors as Python exceptions: one class per kind of failure,
//! each carrying `kind` (a stable code) and `message` (the library's text).

use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use sql_databricks_bridge_core::operator::OperatorError;
use sql_databricks_bridge_core::sync::SyncError as CoreSyncError;

create_exception!(
    _native,
    BridgeError,
    PyException,
    "Base of every error the operator raises."
);
create_exception!(
    _native,
    SettingsError,
    BridgeError,
    "Missing or invalid settings."
);
create_exception!(
    _native,
    SqlServerError,
    BridgeError,
    "SQL Server cannot be reached, or refused the login."
);
create_exception!(
    _native,
    ExtractError,
    BridgeError,
    "The query failed, or its result cannot be extracted."
);
create_exception!(
    _native,
    DatabricksError,
    BridgeError,
    "Databricks cannot be reached, or refused a request."
);
create_exception!(
    _native,
    SyncError,
    BridgeError,
    "A sync was refused or failed; nothing was written."
);
create_exception!(
    _native,
    ArgumentError,
    BridgeError,
    "An argument passed to the operator is not valid."
);

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("BridgeError", py.get_type::<BridgeError>())?;
    m.add("SettingsError", py.get_type::<SettingsError>())?;
    m.add("SqlServerError", py.get_type::<SqlServerError>())?;
    m.add("ExtractError", py.get_type::<ExtractError>())?;
    m.add("DatabricksError", py.get_type::<DatabricksError>())?;
    m.add("SyncError", py.get_type::<SyncError>())?;
    m.add("ArgumentError", py.get_type::<ArgumentError>())?;
    Ok(())
}

/// The stable code of an error: the Python class says the side, this the
/// reason (`sync.refused`, `sqlserver.login`, ...).
pub fn kind(e: &OperatorError) -> &'static str {
    use sql_databricks_bridge_core::sqlserver::SqlServerError as S;
    let sql = |s: &S| match s {
        S::Unreachable { .. } => "sqlserver.unreachable",
        S::Timeout { .. } => "sqlserver.timeout",
        S::Login { .. } => "sqlserver.login",
        S::AccessToken(_) => "sqlserver.access_token",
        S::EntraToken { .. } => "sqlserver.entra_token",
        S::Kerberos(_) => "sqlserver.kerberos",
        S::Server { .. } => "sqlserver.server",
        S::Untrusted { .. } => "sqlserver.untrusted",
        S::Other(_) | S::StrictUnsupported => "sqlserver.other",
    };
    match e {
        OperatorError::Settings(_) => "settings",
        OperatorError::Connect(s) => sql(s),
        OperatorError::Extract(x) => {
            use sql_databricks_bridge_core::extract::ExtractError as X;
            match x {
                X::Sql { .. } => "extract.sql",
                X::Schema(_) => "extract.type",
                X::Batch(_) | X::Result(_) => "extract.result",
                X::Write(_) | X::Io { .. } => "extract.write",
                X::Exists(_) => "extract.exists",
                X::NoResult => "extract.no_result",
                X::Partition(_) => "extract.partition",
                X::Stopped => "extract.stopped",
            }
        }
        OperatorError::Databricks(_) => "databricks",
        OperatorError::NoDatabricks => "settings.no_databricks",
        OperatorError::Warehouse(_) => "databricks.warehouse",
        OperatorError::Argument(_) => "argument",
        OperatorError::Frame(_) => "extract.frame",
        OperatorError::Changes(_) => "changes",
        OperatorError::ChangesExpired { .. } => "changes.expired",
        OperatorError::NoSlot { .. } => "sqlserver.no_slot",
        OperatorError::Slot(_) => "sqlserver.slot",
        OperatorError::Sync(s) => match s {
            CoreSyncError::Refused(_) => "sync.refused",
            CoreSyncError::Unauthorized { .. } => "sync.unauthorized",
            CoreSyncError::SqlServer(s) => sql(s),
            CoreSyncError::Apply(_) => "sync.apply",
            CoreSyncError::Statement(_) => "sync.databricks",
            CoreSyncError::Events(_) => "sync.events",
        },
    }
}

/// The Python exception for a library error, with `kind` and `message` set.
pub fn to_py(e: OperatorError) -> PyErr {
    let kind = kind(&e);
    let message = e.to_string();
    let err = match &e {
        OperatorError::Settings(_) | OperatorError::NoDatabricks => {
            SettingsError::new_err(message.clone())
        }
        OperatorError::Connect(_)
        | OperatorError::NoSlot { .. }
        | OperatorError::Slot(_)
        | OperatorError::Sync(CoreSyncError::SqlServer(_)) => {
            SqlServerError::new_err(message.clone())
        }
        OperatorError::Extract(_)
        | OperatorError::Frame(_)
        | OperatorError::Changes(_)
        | OperatorError::ChangesExpired { .. } => ExtractError::new_err(message.clone()),
        OperatorError::Databricks(_) | OperatorError::Warehouse(_) => {
            DatabricksError::new_err(message.clone())
        }
        OperatorError::Sync(_) => SyncError::new_err(message.clone()),
        OperatorError::Argument(_) => ArgumentError::new_err(message.clone()),
    };
    Python::attach(|py| {
        let value = err.value(py);
        // Attributes on a fresh exception instance cannot fail.
        let _ = value.setattr("kind", kind);
        let _ = value.setattr("message", &message);
    });
    err
}
