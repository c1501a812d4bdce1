//! The OpenAPI document (GET /openapi.json, also written by
//! `sql-databricks-bridge openapi`) and Swagger UI at /docs, served from
//! files vendored at build time (no network).

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use utoipa::openapi::path::{HttpMethod, OperationBuilder};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document};
use utoipa::{Modify, OpenApi};

use super::error::ErrorBody;
use super::state::AppState;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "SQL-Databricks Bridge",
        description = "Moves data both ways between Microsoft SQL Server and Databricks. \
Extraction jobs run parameterised .sql files into Parquet in a Unity Catalog Volume; \
sync events apply Databricks tables to SQL Server tables exactly once. \
Send `Authorization: Bearer <token>` with a token from permissions.yaml; \
every error is a JSON ErrorBody.",
        license(name = "MIT OR Apache-2.0")
    ),
    modifiers(&Security, &SwaggerPage),
    components(schemas(ErrorBody)),
    tags(
        (name = "jobs", description = "Extraction jobs: start, follow, list, cancel"),
        (name = "queries", description = "The .sql files and parameters the server can run"),
        (name = "sync", description = "Sync events: Databricks tables applied to SQL Server tables"),
        (name = "spark", description = "A Spark job's distributed write (the data source's bridge_url): opened, committed once, aborted, with the caller's rights"),
        (name = "health", description = "Probes and metrics (no token)"),
        (name = "docs", description = "This document and its browser UI (no token)"),
    )
)]
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut Document) {
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.description = Some("A token listed in the server's permissions.yaml".into());
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

/// /docs is served by utoipa-swagger-ui, not a handler of ours; it is
/// described here so the document lists every route.
struct SwaggerPage;

impl Modify for SwaggerPage {
    fn modify(&self, openapi: &mut Document) {
        let op = OperationBuilder::new()
            .tag("docs")
            .summary(Some("Swagger UI for this API"))
            .operation_id(Some("swagger_ui"))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("An HTML page (/docs redirects to /docs/)")
                    .content(
                        "text/html",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                            .build(),
                    )
                    .build(),
            );
        openapi
            .paths
            .add_path_operation("/docs", vec![HttpMethod::Get], op);
    }
}

#[utoipa::path(
    get,
    operation_id = "openapi",
    path = "/openapi.json",
    tag = "docs",
    responses((status = 200, description = "This OpenAPI 3.1 document", body = Object, content_type = "application/json"))
)]
pub async fn openapi_json(State(state): State<AppState>) -> Response {
    let body = state.spec.get().cloned().unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}
