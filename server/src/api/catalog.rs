//! GET /queries and GET /params: what `list-queries` and `show-params`
//! print, as JSON, for directories inside the server's roots.

use axum::extract::State;
use axum::Json;

use super::caller::Caller;
use super::constraints::require_not_blank;
use super::error::{ApiError, ErrorBody};
use super::extract::request_error;
use super::input::ApiQuery;
use super::paths::{existing_inside, file_inside};
use super::state::AppState;
use crate::config::params;
use crate::extract::run::render_queries;
use crate::queries::catalog::{params_view, query_list, ParamsView, QueryList, RenderedSql};
use crate::queries::load_queries;

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQueries {
    /// Directory of .sql files inside the queries root (default ./queries).
    #[param(min_length = 1, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub queries_path: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "list_queries",
    path = "/queries",
    tag = "queries",
    params(ListQueries),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The .sql files and their parameters", body = QueryList),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The path is outside the queries root", body = ErrorBody),
        (status = 422, description = "The directory does not exist or holds no queries", body = ErrorBody),
    )
)]
pub async fn list_queries(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<ListQueries>,
) -> Result<Json<QueryList>, ApiError> {
    let requested = q.queries_path.as_deref().unwrap_or("./queries");
    require_not_blank("queries_path", requested)?;
    let dir = existing_inside(&state.roots.queries, requested, "queries_path")?;
    let all = load_queries(&dir).map_err(|e| ApiError::invalid("queries_path", e.to_string()))?;
    for f in &all {
        file_inside(&state.roots.queries, &f.path, "queries_path")?;
    }
    Ok(Json(query_list(&dir, &all)))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShowParams {
    /// Country whose <Country>.yaml applies.
    #[param(min_length = 1, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub country: String,
    /// Directory of parameter files inside the config root (default ./config).
    #[param(min_length = 1, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub config_path: Option<String>,
    /// Comma-separated query names to render with these parameters (empty
    /// names are skipped).
    pub queries: Option<String>,
    /// Directory of .sql files inside the queries root (default ./queries).
    #[param(min_length = 1, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub queries_path: Option<String>,
}

#[utoipa::path(
    get,
    operation_id = "show_params",
    path = "/params",
    tag = "queries",
    params(ShowParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The merged parameters, and the queries asked for rendered", body = ParamsView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "A path is outside the server's roots", body = ErrorBody),
        (status = 422, description = "Unknown country or query, missing parameter", body = ErrorBody),
    )
)]
pub async fn show_params(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<ShowParams>,
) -> Result<Json<ParamsView>, ApiError> {
    require_not_blank("country", &q.country)?;
    for (field, value) in [
        ("config_path", &q.config_path),
        ("queries_path", &q.queries_path),
    ] {
        if let Some(v) = value {
            require_not_blank(field, v)?;
        }
    }
    let roots = &state.roots;
    let config = existing_inside(
        &roots.config,
        q.config_path.as_deref().unwrap_or("./config"),
        "config_path",
    )?;
    let names: Vec<String> = q
        .queries
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let (p, rendered) = if names.is_empty() {
        let p = params::load(&config, &q.country).map_err(|e| request_error(e.into()))?;
        (p, vec![])
    } else {
        let dir = existing_inside(
            &roots.queries,
            q.queries_path.as_deref().unwrap_or("./queries"),
            "queries_path",
        )?;
        let (p, rendered) =
            render_queries(&dir, &config, &q.country, &names).map_err(request_error)?;
        for r in &rendered {
            file_inside(&roots.queries, &r.path, "queries_path")?;
        }
        (p, rendered)
    };
    for f in &p.files {
        file_inside(&roots.config, f, "config_path")?;
    }
    Ok(Json(params_view(
        &q.country,
        &p,
        rendered
            .into_iter()
            .map(|r| RenderedSql {
                query: r.name,
                sql: r.sql,
            })
            .collect(),
    )))
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListCountries {
    /// Directory of parameter files inside the config root (default ./config).
    #[param(min_length = 1, pattern = r"^[^\u0000]*[^\s\u0000][^\u0000]*$")]
    pub config_path: Option<String>,
}

/// The countries a config directory has parameters for.
#[derive(Clone, Debug, serde::Serialize, utoipa::ToSchema)]
pub struct CountryList {
    /// `<Country>.yaml` names, sorted.
    pub countries: Vec<String>,
}

#[utoipa::path(
    get,
    operation_id = "list_countries",
    path = "/countries",
    tag = "queries",
    params(ListCountries),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The countries with a <Country>.yaml", body = CountryList),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "The path is outside the config root", body = ErrorBody),
        (status = 422, description = "The directory does not exist", body = ErrorBody),
    )
)]
pub async fn list_countries(
    State(state): State<AppState>,
    _caller: Caller,
    ApiQuery(q): ApiQuery<ListCountries>,
) -> Result<Json<CountryList>, ApiError> {
    let requested = q.config_path.as_deref().unwrap_or("./config");
    require_not_blank("config_path", requested)?;
    let dir = existing_inside(&state.roots.config, requested, "config_path")?;
    let mut countries =
        params::countries(&dir).map_err(|e| ApiError::invalid("config_path", e.to_string()))?;
    countries.sort();
    Ok(Json(CountryList { countries }))
}
