//! `list-queries` and `show-params`: the shared views from
//! `queries::catalog`, printed as text or JSON.

use std::path::Path;

use sql_databricks_bridge::config::params;
use sql_databricks_bridge::extract::run::render_queries;
use sql_databricks_bridge::queries::catalog::{params_view, query_list, RenderedSql};
use sql_databricks_bridge::queries::load_queries;

pub fn list_queries(dir: &Path, json: bool) -> anyhow::Result<()> {
    let all = load_queries(dir)?;
    let list = query_list(dir, &all);
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    let width = list.queries.iter().map(|q| q.name.len()).max().unwrap_or(0);
    for (q, file) in list.queries.iter().zip(&all) {
        println!(
            "{:<width$}  {}  params: {}",
            q.name,
            file.path.display(),
            if q.params.is_empty() {
                "-".to_string()
            } else {
                q.params.join(", ")
            }
        );
    }
    Ok(())
}

pub fn show_params(
    config: &Path,
    country: &str,
    names: &[String],
    queries_dir: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let (p, rendered) = if names.is_empty() {
        (params::load(config, country)?, vec![])
    } else {
        render_queries(queries_dir, config, country, names)?
    };
    let view = params_view(
        country,
        &p,
        rendered
            .into_iter()
            .map(|q| RenderedSql {
                query: q.name,
                sql: q.sql,
            })
            .collect(),
    );
    if json {
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(());
    }
    println!(
        "# parameters for {country} (from {})",
        p.files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", then ")
    );
    let width = view.params.keys().map(|k| k.len()).max().unwrap_or(0);
    let vwidth = view
        .params
        .values()
        .map(|v| v.value.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v) in &view.params {
        println!("{k:<width$}  {:<vwidth$}  # {}", v.value, v.source);
    }
    for q in view.queries {
        println!("\n-- {}\n{}", q.query, q.sql.trim_end());
    }
    Ok(())
}
