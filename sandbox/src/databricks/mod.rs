//! The Databricks workspace double: an HTTP server on 127.0.0.1 with the
//! Files API (Volumes), the SQL Statement Execution API, the Unity Catalog
//! calls the bridge uses (with grants), SQL warehouses, PAT and OAuth M2M
//! authentication with a principal per credential, shaped as
//! docs.databricks.com documents them, on an embedded SQL engine.
//!
//! The server runs on its own thread with its own Tokio runtime, so tests
//! (sync or async) start it, use it over HTTP and drop it.

mod auth;
mod cut;
pub mod error;
pub mod faults;
mod files;
mod identity;
pub mod paths;
mod permissions;
pub mod sql;
mod statements;
mod throttle;
mod unity;
mod uploads;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::http;

pub use faults::Faults;
pub use sql::{SqlEngine, DEFAULT_PRINCIPAL};
pub use uploads::UploadProtocol;

/// How to run the double.
#[derive(Clone, Debug)]
pub struct DatabricksConfig {
    /// 0 picks a free port.
    pub port: u16,
    /// Personal access tokens accepted as bearer tokens.
    pub tokens: Vec<String>,
    /// The principal (user name) of a personal access token: token →
    /// principal. A token without one belongs to [`DEFAULT_PRINCIPAL`].
    pub principals: HashMap<String, String>,
    /// OAuth M2M clients: id → secret. A client's principal is its id (a
    /// service principal's application id).
    pub oauth_clients: HashMap<String, String>,
    /// Workspace admins (they bypass grant checks). Empty: the principal of
    /// the first token and every OAuth client are admins.
    pub admins: Vec<String>,
    /// Lifetime of issued OAuth tokens (one hour on Databricks).
    pub oauth_token_ttl: Duration,
    /// Time a statement spends PENDING then RUNNING before it executes.
    pub execution_delay: Duration,
    /// Keep the database and volume files here instead of a temporary directory.
    pub data_dir: Option<PathBuf>,
    /// Largest single-request upload (5 GiB on Databricks).
    pub max_upload_bytes: u64,
    /// INLINE results larger than this fail (25 MiB on Databricks).
    pub inline_limit_bytes: u64,
    /// Target size of an INLINE chunk.
    pub inline_chunk_bytes: u64,
    /// Target size of an EXTERNAL_LINKS chunk.
    pub external_chunk_bytes: u64,
    /// Lifetime of result links (at most 15 minutes on Databricks).
    pub external_link_ttl: Duration,
    /// How long a result stays fetchable before the statement is CLOSED.
    pub result_ttl: Duration,
    /// Large-upload protocol offered by `initiate-upload` (multipart as on
    /// AWS and Azure, resumable as on GCP).
    pub upload_protocol: UploadProtocol,
    /// Server page length of Unity Catalog lists; `None` keeps the
    /// workspace's (10000 for volumes, 1000 assumed for the others).
    pub uc_page_length: Option<usize>,
    /// Headers every EXTERNAL_LINKS link requires, handed out in its
    /// `http_headers` (empty: links need none and `http_headers` is `{}`).
    pub link_headers: Vec<LinkHeader>,
    /// A Microsoft Entra tenant whose access tokens for Azure Databricks
    /// are bearer tokens here (Azure Databricks' Entra ID authentication).
    pub entra: Option<crate::entra::EntraTrust>,
    /// The application ids of that tenant's service principals added to
    /// the workspace (Entra ID managed service principals).
    pub entra_service_principals: Vec<String>,
}

/// A header result links require ("HTTP headers that must be included with
/// a GET request to the external_link ... typically used to pass a
/// decryption key", ExternalLink.http_headers in
/// https://docs.databricks.com/api/workspace/statementexecution/getstatementresultchunkn).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkHeader {
    pub name: String,
    /// `None`: a fresh random value for every link (like a per-object key).
    pub value: Option<String>,
}

impl LinkHeader {
    /// `NAME` or `NAME=VALUE`.
    pub fn parse(spec: &str) -> Option<LinkHeader> {
        let (name, value) = match spec.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.to_string())),
            None => (spec.trim(), None),
        };
        let valid = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        valid.then(|| LinkHeader {
            name: name.to_ascii_lowercase(),
            value,
        })
    }
}

impl Default for DatabricksConfig {
    fn default() -> Self {
        DatabricksConfig {
            port: 0,
            tokens: vec!["dapi-sandbox".into()],
            principals: HashMap::new(),
            oauth_clients: HashMap::new(),
            admins: Vec::new(),
            oauth_token_ttl: Duration::from_secs(3600),
            execution_delay: Duration::ZERO,
            data_dir: None,
            max_upload_bytes: 5 * 1024 * 1024 * 1024,
            inline_limit_bytes: 25 * 1024 * 1024,
            inline_chunk_bytes: 4 * 1024 * 1024,
            external_chunk_bytes: 16 * 1024 * 1024,
            external_link_ttl: Duration::from_secs(15 * 60),
            result_ttl: Duration::from_secs(3600),
            upload_protocol: UploadProtocol::default(),
            uc_page_length: None,
            link_headers: Vec::new(),
            entra: None,
            entra_service_principals: Vec::new(),
        }
    }
}

/// State shared by every request handler.
pub(crate) struct Shared {
    config: DatabricksConfig,
    engine: Arc<SqlEngine>,
    faults: Arc<Faults>,
    tokens: auth::TokenStore,
    identities: identity::Directory,
    statements: statements::Store,
    uploads: uploads::Store,
    base_url: String,
    port: u16,
    warehouse_id: String,
    workspace_id: String,
    execution_delay_ms: AtomicU64,
}

impl Shared {
    fn execution_delay(&self) -> Duration {
        Duration::from_millis(self.execution_delay_ms.load(Ordering::SeqCst))
    }
}

/// Why the double could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Engine(#[from] sql::SqlError),
    #[error("cannot start the server runtime: {0}")]
    Runtime(std::io::Error),
}

/// A running workspace double; dropping it (or [`DatabricksHandle::shutdown`]) stops it.
pub struct DatabricksHandle {
    shared: Arc<Shared>,
    served: http::Served,
    temp_dir: Option<PathBuf>,
}

impl DatabricksHandle {
    /// `http://127.0.0.1:<port>`: the workspace host for clients.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.served.addr
    }

    /// The id of the one running SQL warehouse.
    pub fn warehouse_id(&self) -> &str {
        &self.shared.warehouse_id
    }

    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The workspace's clock (test-only: move it to age history).
    pub fn clock(&self) -> &crate::clock::Clock {
        self.shared.engine.clock()
    }

    /// The SQL engine (seed with `run_script`, query directly).
    pub fn engine(&self) -> &SqlEngine {
        &self.shared.engine
    }

    /// Changes the PENDING/RUNNING delay of statements submitted from now on.
    pub fn set_execution_delay(&self, delay: Duration) {
        self.shared
            .execution_delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Large uploads initiated and neither completed nor aborted.
    pub fn open_upload_sessions(&self) -> usize {
        self.shared.uploads.open_sessions()
    }

    /// Changes the lifetime of OAuth tokens issued from now on.
    pub fn set_oauth_token_ttl(&self, ttl: Duration) {
        self.shared.tokens.set_ttl(ttl);
    }

    /// Stops the server and waits for its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.served.stop();
        if let Some(d) = self.temp_dir.take() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

impl Drop for DatabricksHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the double with a fresh engine (in `data_dir` or a temporary directory).
pub fn start(config: DatabricksConfig) -> Result<DatabricksHandle, StartError> {
    let (dir, temp) = match &config.data_dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!(
                "bridge-sandbox-databricks-{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4().simple()
            )),
            true,
        ),
    };
    std::fs::create_dir_all(&dir).map_err(|source| StartError::DataDir {
        path: dir.clone(),
        source,
    })?;
    let engine = SqlEngine::open(&dir.join("workspace.sqlite"), &dir.join("volumes"))?;
    let mut h = start_with_engine(config, Arc::new(engine))?;
    if temp {
        h.temp_dir = Some(dir);
    }
    Ok(h)
}

/// Starts the double on an existing (already seeded) engine.
pub fn start_with_engine(
    config: DatabricksConfig,
    engine: Arc<SqlEngine>,
) -> Result<DatabricksHandle, StartError> {
    let (listener, addr) = http::bind(config.port).map_err(|source| StartError::Bind {
        port: config.port,
        source,
    })?;
    // Staged upload parts live beside the volumes, never inside one.
    let staging = engine
        .volumes_root()
        .parent()
        .map(|p| p.join("upload-staging"))
        .unwrap_or_else(|| engine.volumes_root().join(".upload-staging"));
    let identities = identity::Directory::new(&config);
    engine.set_script_caller(identities.first_admin())?;
    let shared = Arc::new(Shared {
        uploads: uploads::Store::new(staging),
        tokens: auth::TokenStore::new(
            identity::token_principals(&config),
            config.oauth_clients.clone(),
            config.oauth_token_ttl,
        ),
        identities,
        execution_delay_ms: AtomicU64::new(config.execution_delay.as_millis() as u64),
        config,
        engine,
        faults: Arc::new(Faults::default()),
        statements: statements::Store::default(),
        base_url: format!("http://127.0.0.1:{}", addr.port()),
        port: addr.port(),
        warehouse_id: "5a4d3c2b1a000001".into(),
        workspace_id: "1234567890123456".into(),
    });
    let app = router(shared.clone());
    let served = http::serve("databricks-double", 2, listener, app).map_err(StartError::Runtime)?;
    tracing::info!(url = %shared.base_url, "databricks double listening");
    Ok(DatabricksHandle {
        shared,
        served,
        temp_dir: None,
    })
}

/// Injected delays and HTTP failures, before anything else answers; the
/// slow link around file transfers' bodies.
async fn fault_layer(State(shared): State<Arc<Shared>>, req: Request, next: Next) -> Response {
    let delay = shared.faults.delay();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(e) = shared.faults.take_http(req.uri().path()) {
        tracing::info!(path = %req.uri().path(), status = %e.status, "injected fault");
        return e.into_response();
    }
    let path = req.uri().path().to_string();
    let answer = match shared.faults.bandwidth() {
        Some(rate) if throttle::applies_to(&path) => {
            let (parts, body) = req.into_parts();
            let req = Request::from_parts(parts, throttle::body(body, rate));
            let (parts, body) = next.run(req).await.into_parts();
            Response::from_parts(parts, throttle::body(body, rate))
        }
        _ => next.run(req).await,
    };
    match shared.faults.take_lost(&path) {
        Some(e) => {
            tracing::info!(path, status = %e.status, "served, then the answer lost (injected)");
            e.into_response()
        }
        None => answer,
    }
}

async fn not_found(req: Request) -> Response {
    error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "ENDPOINT_NOT_FOUND",
        format!("No API found for '{} {}'", req.method(), req.uri().path()),
    )
    .into_response()
}

fn router(shared: Arc<Shared>) -> Router {
    use axum::routing::put;
    let api = Router::new()
        .route(
            "/api/2.0/fs/files/{*path}",
            put(files::upload)
                .post(uploads::file_action)
                .get(files::download)
                .head(files::download)
                .delete(files::delete_file),
        )
        .route(
            "/api/2.0/fs/directories/{*path}",
            get(files::list_directory)
                .put(files::create_directory)
                .delete(files::delete_directory)
                .head(files::directory_metadata),
        )
        .route(
            "/api/2.0/fs/create-upload-part-urls",
            post(uploads::create_upload_part_urls),
        )
        .route(
            "/api/2.0/fs/create-abort-upload-url",
            post(uploads::create_abort_upload_url),
        )
        .route(
            "/api/2.0/fs/create-resumable-upload-url",
            post(uploads::create_resumable_upload_url),
        )
        .route(
            "/api/2.0/fs/create-download-url",
            post(uploads::create_download_url),
        )
        .route("/api/2.0/sql/statements", post(statements::api::execute))
        .route("/api/2.0/sql/statements/", post(statements::api::execute))
        .route("/api/2.0/sql/statements/{id}", get(statements::api::get))
        .route(
            "/api/2.0/sql/statements/{id}/cancel",
            post(statements::api::cancel),
        )
        .route(
            "/api/2.0/sql/statements/{id}/result/chunks/{n}",
            get(statements::api::chunk),
        )
        .route("/api/2.0/sql/warehouses", get(unity::list_warehouses))
        .route("/api/2.0/sql/warehouses/{id}", get(unity::get_warehouse))
        .route(
            "/api/2.1/unity-catalog/catalogs",
            get(unity::list_catalogs).post(unity::create_catalog),
        )
        .route(
            "/api/2.1/unity-catalog/catalogs/{name}",
            get(unity::get_catalog).delete(unity::delete_catalog),
        )
        .route(
            "/api/2.1/unity-catalog/schemas",
            get(unity::list_schemas).post(unity::create_schema),
        )
        .route(
            "/api/2.1/unity-catalog/schemas/{name}",
            get(unity::get_schema).delete(unity::delete_schema),
        )
        .route(
            "/api/2.1/unity-catalog/volumes",
            get(unity::list_volumes).post(unity::create_volume),
        )
        .route(
            "/api/2.1/unity-catalog/volumes/{name}",
            get(unity::get_volume).delete(unity::delete_volume),
        )
        .route("/api/2.0/preview/scim/v2/Me", get(identity::me))
        .route(
            "/api/2.1/unity-catalog/permissions/{securable_type}/{full_name}",
            get(permissions::get).patch(permissions::update),
        )
        .route(
            "/api/2.1/unity-catalog/effective-permissions/{securable_type}/{full_name}",
            get(permissions::get_effective),
        )
        .route("/api/2.1/unity-catalog/tables", get(unity::list_tables))
        .route(
            "/api/2.1/unity-catalog/tables/{name}",
            get(unity::get_table),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::require_bearer,
        ));
    Router::new()
        .route("/.well-known/databricks-config", get(auth::host_metadata))
        .route(
            "/oidc/.well-known/oauth-authorization-server",
            get(auth::oidc_discovery),
        )
        .route("/oidc/v1/token", post(auth::token))
        .route("/sandbox/results/{token}", get(statements::api::download))
        .route(
            "/sandbox/presigned/{id}",
            axum::routing::any(uploads::presigned),
        )
        .merge(api)
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            fault_layer,
        ))
        .with_state(shared)
}
