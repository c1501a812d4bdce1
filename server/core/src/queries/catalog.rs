//! What `list-queries` and `show-params` report, as data: the CLI prints
//! it, the API (`GET /queries`, `GET /params`) returns it as JSON.

use std::collections::BTreeMap;
use std::path::Path;

use super::{placeholders, QueryFile};
use crate::config::Params;

/// One query file and the parameters it needs.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryInfo {
    /// The query's name (its file stem), as `--query` and `queries` take it.
    pub name: String,
    /// The file, relative to the queries directory.
    pub path: String,
    /// `{placeholders}` in the file, sorted, each once.
    pub params: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryList {
    pub queries: Vec<QueryInfo>,
}

/// Describes `queries`, with paths relative to `dir`.
pub fn query_list(dir: &Path, queries: &[QueryFile]) -> QueryList {
    QueryList {
        queries: queries
            .iter()
            .map(|q| {
                let mut params: Vec<String> =
                    placeholders(&q.sql).into_iter().map(|(_, k)| k).collect();
                params.sort();
                params.dedup();
                QueryInfo {
                    name: q.name.clone(),
                    path: q
                        .path
                        .strip_prefix(dir)
                        .unwrap_or(&q.path)
                        .display()
                        .to_string(),
                    params,
                }
            })
            .collect(),
    }
}

/// A parameter's value and the file it came from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParamValue {
    pub value: String,
    /// The file name (`common_params.yaml` or `<Country>.yaml`).
    pub source: String,
}

/// A query rendered with a country's parameters.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenderedSql {
    pub query: String,
    pub sql: String,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ParamsView {
    pub country: String,
    /// The parameter files read, in merge order (later wins).
    pub files: Vec<String>,
    pub params: BTreeMap<String, ParamValue>,
    /// The queries asked for, rendered.
    pub queries: Vec<RenderedSql>,
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string)
        .unwrap_or_else(|| p.display().to_string())
}

pub fn params_view(country: &str, params: &Params, rendered: Vec<RenderedSql>) -> ParamsView {
    ParamsView {
        country: country.to_string(),
        files: params.files.iter().map(|f| file_name(f)).collect(),
        params: params
            .iter()
            .map(|(k, v, src)| {
                (
                    k.to_string(),
                    ParamValue {
                        value: v.to_string(),
                        source: file_name(src),
                    },
                )
            })
            .collect(),
        queries: rendered,
    }
}
