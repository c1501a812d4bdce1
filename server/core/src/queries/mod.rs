//! The `.sql` files a user extracts: found by name, rendered with trusted
//! parameters.

pub mod catalog;
pub(crate) mod derived;
pub mod load;
pub(crate) mod loader;
pub(crate) mod partitioning;
pub(crate) mod render;

pub use loader::{load_queries, select, QueryError, QueryFile};
pub use render::{placeholders, render, RenderError};

/// A named query of `queries_dir` rendered for `country` with the
/// parameters of `config_dir`, and the partitioning its `<name>.yaml` asks
/// for (`partition_on`, `partitions`): what `extract --query` runs. Errors
/// name the file, key or placeholder.
pub fn named(
    queries_dir: &std::path::Path,
    config_dir: &std::path::Path,
    name: &str,
    country: &str,
) -> Result<(String, Option<(String, u32)>), String> {
    let all = load_queries(queries_dir).map_err(|e| e.to_string())?;
    let picked = select(&all, &[name.to_string()]).map_err(|e| e.to_string())?;
    let query = picked
        .first()
        .ok_or_else(|| format!("no query named {name}"))?;
    let params = crate::config::params::load(config_dir, country).map_err(|e| e.to_string())?;
    let sql = render(&query.sql, &query.path, &params).map_err(|e| e.to_string())?;
    let spec = load::query_spec(&query.path, &params).map_err(|e| e.to_string())?;
    Ok((sql, spec.partition.map(|p| (p.column, p.count))))
}
