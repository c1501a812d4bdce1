//! `list-queries` and `show-params`.

use std::path::Path;

use anyhow::Context;
use sql_databricks_bridge::config::params;
use sql_databricks_bridge::queries::{load_queries, placeholders, render, select};

pub fn list_queries(dir: &Path) -> anyhow::Result<()> {
    let all = load_queries(dir)?;
    let width = all.iter().map(|q| q.name.len()).max().unwrap_or(0);
    for q in &all {
        let keys: Vec<String> = placeholders(&q.sql).into_iter().map(|(_, k)| k).collect();
        let mut uniq = keys.clone();
        uniq.sort();
        uniq.dedup();
        println!(
            "{:<width$}  {}  params: {}",
            q.name,
            q.path.display(),
            if uniq.is_empty() {
                "-".to_string()
            } else {
                uniq.join(", ")
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
    let p = params::load(config, country)?;
    let rendered = if names.is_empty() {
        vec![]
    } else {
        let all = load_queries(queries_dir)?;
        let chosen = select(&all, names)?;
        chosen
            .into_iter()
            .map(|q| {
                render(&q.sql, &q.path, &p)
                    .map(|sql| (q.name.clone(), sql))
                    .with_context(|| format!("rendering query '{}'", q.name))
            })
            .collect::<anyhow::Result<Vec<_>>>()?
    };
    if json {
        let params: serde_json::Map<String, serde_json::Value> = p
            .iter()
            .map(|(k, v, src)| {
                (
                    k.to_string(),
                    serde_json::json!({ "value": v, "source": src.display().to_string() }),
                )
            })
            .collect();
        let queries: Vec<serde_json::Value> = rendered
            .iter()
            .map(|(n, sql)| serde_json::json!({ "query": n, "sql": sql }))
            .collect();
        let out = serde_json::json!({ "country": country, "params": params, "queries": queries });
        println!("{}", serde_json::to_string_pretty(&out)?);
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
    let width = p.iter().map(|(k, _, _)| k.len()).max().unwrap_or(0);
    let vwidth = p
        .iter()
        .map(|(_, v, _)| v.chars().count())
        .max()
        .unwrap_or(0);
    for (k, v, src) in p.iter() {
        println!(
            "{k:<width$}  {v:<vwidth$}  # {}",
            src.file_name().and_then(|n| n.to_str()).unwrap_or("")
        );
    }
    for (name, sql) in rendered {
        println!("\n-- {name}\n{}", sql.trim_end());
    }
    Ok(())
}
