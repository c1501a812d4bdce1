//! The REST face (axum): routes, the OpenAPI document they make, and the
//! server loop with graceful shutdown. Handlers check, then hand work to
//! `jobs`; they hold no business logic of their own.

pub mod audit;
pub mod authorize;
pub mod caller;
pub mod catalog;
pub mod console;
pub mod constraints;
pub mod docs;
pub mod error;
pub mod extract;
pub mod health;
pub mod idempotency;
pub mod input;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod paths;
pub mod spark;
pub mod state;
pub mod sync;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::{Config, SwaggerUi};

pub use error::{ApiError, ErrorBody};
pub use state::{AppState, ServerState};

/// Every route, documented.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(extract::start_extract))
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job, jobs::cancel_job))
        .routes(routes!(catalog::list_queries))
        .routes(routes!(catalog::show_params))
        .routes(routes!(catalog::list_countries))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(metrics::metrics))
        .routes(routes!(sync::submit_event, sync::list_events))
        .routes(routes!(sync::get_event))
        .routes(routes!(spark::open_write))
        .routes(routes!(spark::commit_write))
        .routes(routes!(spark::abort_write))
        .routes(routes!(audit::search_audit))
        .routes(routes!(docs::openapi_json))
}

/// The OpenAPI document, as `openapi.json` holds it.
pub fn openapi_json() -> String {
    let (_, doc) = routes().split_for_parts();
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// The application: routes, Swagger UI, limits and the error shape.
pub fn app(state: AppState, body_limit: usize) -> Router {
    let (router, doc) = routes().split_for_parts();
    let mut text = doc.to_pretty_json().unwrap_or_default();
    text.push('\n');
    let _ = state.spec.set(text);
    let swagger: Router<AppState> = SwaggerUi::new("/docs")
        .config(Config::from("/openapi.json"))
        .into();
    router
        .merge(swagger)
        .merge(console::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(CatchPanicLayer::new())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::observe,
        ))
        .with_state(state)
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {message}")]
    Bind { addr: String, message: String },
    #[error("the server stopped: {0}")]
    Serve(std::io::Error),
}

/// Serves until `shutdown` resolves; then stops accepting, lets running
/// jobs finish for up to `grace` and marks the rest interrupted.
/// `on_listening` hears the bound address (the port may have been 0).
pub async fn serve(
    state: AppState,
    addr: &str,
    body_limit: usize,
    grace: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
    on_listening: impl FnOnce(SocketAddr),
) -> Result<(), ServeError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ServeError::Bind {
            addr: addr.to_string(),
            message: e.to_string(),
        })?;
    let local = listener.local_addr().map_err(ServeError::Serve)?;
    on_listening(local);
    let runner = state.runner.clone();
    let app = app(state, body_limit);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(ServeError::Serve)?;
    tracing::info!("stopped accepting requests; waiting for running jobs");
    runner.shutdown(grace).await;
    Ok(())
}
