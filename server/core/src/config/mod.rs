//! Configuration: connection settings from flags, environment, `.env` and
//! connection strings; query parameters from the trusted YAML files.

pub mod ado;
pub mod entra;
pub mod params;
pub(crate) mod settings;

pub use ado::Authentication;
pub use entra::{EntraCredential, EntraSignIn};
pub use params::{ParamError, Params};
pub use settings::{
    DatabricksAuth, DatabricksSettings, Encrypt, SettingsError, SqlServerOverrides,
    SqlServerSettings, DEFAULT_APPLICATION_NAME,
};
