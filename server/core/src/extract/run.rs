//! One extraction run — a country's chosen queries to one destination —
//! shared by the CLI and the API's job runner: render first, check the
//! destination, then each query with retries, cancellable at any point.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::lease::{Lease, LeaseError, LeaseStore};
use super::{
    check_volume, extract_partitioned_into, extract_query, output_dir, publish_to_volume,
    record_table, ExtractError, ExtractOptions, Outcome, PublishError, RemoveOnDrop, VolumeRoot,
};
use crate::config::{params, ParamError};
use crate::databricks::statements::StatementError;
use crate::databricks::Workspace;
use crate::queries::load::{query_spec, LoadSpec, LoadSpecError};
use crate::queries::partitioning::Partitioning;
use crate::queries::{load_queries, render, select, QueryError, RenderError};
use crate::retry::{retry, RetryPolicy};
use crate::sqlserver::{pool, SqlServerError};
use crate::tables::{Column, LoadError, TableLoader};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Params(#[from] ParamError),
    #[error(transparent)]
    Queries(#[from] QueryError),
    #[error(transparent)]
    Render(#[from] RenderError),
    #[error("{0}")]
    Destination(String),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Extract(#[from] ExtractError),
    #[error(transparent)]
    Connect(#[from] SqlServerError),
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    LoadSpec(#[from] LoadSpecError),
    #[error("loading the table: {0}")]
    Table(#[from] LoadError),
    /// The run's own options are not valid (they name themselves).
    #[error("{0}")]
    Options(String),
    /// Another run writes the output, or this one lost the right to.
    #[error(transparent)]
    Lease(#[from] LeaseError),
}

impl RunError {
    fn transient(&self) -> bool {
        match self {
            RunError::Extract(e) => e.is_transient(),
            RunError::Connect(e) => e.is_transient(),
            RunError::Table(LoadError::Databricks(
                StatementError::Http(_) | StatementError::Timeout(_),
            )) => true,
            RunError::Publish(PublishError::Databricks(e)) => e.is_transient(),
            RunError::Lease(e) => e.is_transient(),
            RunError::Table(LoadError::CleanedUpMeanwhile { .. }) => true,
            _ => false,
        }
    }
}

/// Where `--destination` (or a request's `destination`) points, before any
/// connection is made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DestinationPath {
    Local(PathBuf),
    Volume(VolumeRoot),
}

impl DestinationPath {
    pub fn parse(dest: &str) -> Result<DestinationPath, RunError> {
        if dest.starts_with("dbfs:") {
            return Err(RunError::Destination(format!(
                "destination {dest}: DBFS is not supported; use a Unity Catalog Volume (/Volumes/...) or a local directory"
            )));
        }
        if let Some(root) = VolumeRoot::parse(dest).map_err(RunError::Destination)? {
            return Ok(DestinationPath::Volume(root));
        }
        let path = dest.strip_prefix("file://").unwrap_or(dest);
        if path.trim().is_empty() {
            return Err(RunError::Destination("destination is empty".into()));
        }
        Ok(DestinationPath::Local(PathBuf::from(path)))
    }
}

/// A destination ready to receive output.
pub enum Destination {
    Local(PathBuf),
    Volume(VolumeRoot, Workspace),
}

impl Destination {
    pub fn describe(&self) -> String {
        match self {
            Destination::Local(p) => p.display().to_string(),
            Destination::Volume(root, _) => root.0.clone(),
        }
    }
}

/// A query rendered with a country's parameters, ready to run.
#[derive(Clone, Debug)]
pub struct RenderedQuery {
    pub name: String,
    pub path: PathBuf,
    pub sql: String,
    /// Its table load (`<name>.yaml` beside it), if any.
    pub load: Option<LoadSpec>,
    /// Its partitioned read (`<name>.yaml`, or the run's options), if any.
    pub partition: Option<Partitioning>,
}

/// Loads and renders the chosen queries (all when `names` is empty); a
/// missing parameter stops everything before any SQL runs.
pub fn render_queries(
    queries_dir: &Path,
    config_dir: &Path,
    country: &str,
    names: &[String],
) -> Result<(params::Params, Vec<RenderedQuery>), RunError> {
    let params = params::load(config_dir, country)?;
    let all = load_queries(queries_dir)?;
    let chosen = select(&all, names)?;
    let mut out = Vec::with_capacity(chosen.len());
    for q in chosen {
        let spec = query_spec(&q.path, &params)?;
        out.push(RenderedQuery {
            name: q.name.clone(),
            path: q.path.clone(),
            sql: render(&q.sql, &q.path, &params)?,
            load: spec.load,
            partition: spec.partition,
        });
    }
    Ok((params, out))
}

/// Lays a run's partitioning options over the queries: with a column,
/// every query is split on it (`count`, else the default); with only a
/// count, the queries whose `<name>.yaml` partitions them take that count.
pub fn apply_partitioning(
    queries: &mut [RenderedQuery],
    column: Option<&str>,
    count: Option<u32>,
    source: &str,
) -> Result<(), RunError> {
    if let Some(n) = count {
        // Checked even when no query is partitioned.
        Partitioning::new("count", n, source).map_err(RunError::Options)?;
    }
    for q in queries.iter_mut() {
        let on = match (column, &q.partition) {
            (Some(c), _) => c.to_string(),
            (None, Some(p)) => p.column.clone(),
            (None, None) => continue,
        };
        let n = count
            .or(q.partition.as_ref().map(|p| p.count))
            .unwrap_or(crate::queries::load::DEFAULT_PARTITIONS);
        q.partition = Some(Partitioning::new(&on, n, source).map_err(RunError::Options)?);
    }
    Ok(())
}

/// Hears how one query is doing (progress bars, job status).
pub trait QueryEvents: Send + Sync {
    fn rows(&self, rows: u64);
    fn note(&self, message: &str);
}

/// What every query of one run shares.
pub struct Run {
    pub pool: pool::Pool,
    pub destination: Destination,
    pub country: String,
    pub options: ExtractOptions,
    pub retry: RetryPolicy,
    /// Loads queries with a load spec into tables (Volume destinations).
    pub tables: Option<TableLoader>,
    /// Who runs it (a job, a CLI run), as the outputs' leases name it.
    pub holder: String,
}

impl Run {
    /// Refuses a missing volume, or existing output without `overwrite`,
    /// before any SQL runs.
    pub async fn preflight(&self, queries: &[RenderedQuery]) -> Result<(), RunError> {
        if let Destination::Volume(root, ws) = &self.destination {
            for q in queries {
                check_volume(ws, root, &self.country, &q.name, self.options.overwrite).await?;
            }
        }
        Ok(())
    }

    /// Whose position a table load keeps: the query as this run renders it.
    fn state_key(&self, query: &RenderedQuery) -> String {
        format!("{}/{}", self.country, query.name)
    }

    /// The lease that makes this run the only writer of a query's output.
    fn lease_store(&self, query: &RenderedQuery) -> (LeaseStore, String) {
        match &self.destination {
            Destination::Local(dir) => (
                LeaseStore::local(dir, &self.country, &query.name),
                output_dir(dir, &self.country, &query.name)
                    .display()
                    .to_string(),
            ),
            Destination::Volume(root, ws) => (
                LeaseStore::volume(ws.clone(), &root.0, &self.country, &query.name),
                root.query_dir(&self.country, &query.name),
            ),
        }
    }

    /// Runs one query to the destination, holding its output's lease
    /// (another run of it fails at once, naming who writes it); retries
    /// transient failures from the step that failed: the extraction and
    /// its upload, then the table load from the run that landed, so a
    /// load whose answer was lost is not extracted and loaded again. Stops
    /// promptly when `cancel` fires, leaving nothing published.
    pub async fn run_query(
        &self,
        query: &RenderedQuery,
        events: &dyn QueryEvents,
        cancel: &CancellationToken,
    ) -> Result<Outcome, RunError> {
        let (store, output) = self.lease_store(query);
        let take = store.acquire(&output, &self.holder, super::lease::DEFAULT_TTL);
        let lease = tokio::select! {
            biased;
            _ = cancel.cancelled() => return Err(RunError::Cancelled),
            l = take => l?,
        };
        let result = tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(RunError::Cancelled),
            lost = lease.keep() => Err(RunError::Lease(lost)),
            r = self.run_leased(query, events, &lease) => r,
        };
        lease.release().await;
        result
    }

    async fn run_leased(
        &self,
        query: &RenderedQuery,
        events: &dyn QueryEvents,
        lease: &Lease,
    ) -> Result<Outcome, RunError> {
        let note = |attempt, e: &RunError, wait: std::time::Duration| {
            events.note(&format!(
                "attempt {attempt} failed: {e}; retrying in {:.1} s",
                wait.as_secs_f64()
            ))
        };
        let (mut o, load) = retry(&self.retry, note, || async {
            // Boxed: the extraction's future is large, and worker threads' stacks are not.
            Box::pin(self.land(query, events, lease))
                .await
                .map_err(|e| {
                    let t = e.transient();
                    (e, t)
                })
        })
        .await?;
        if let Some((spec, tables, prepared)) = load {
            o.table = Some(
                retry(&self.retry, note, || async {
                    self.load_table(query, spec, tables, &prepared, &o, events, lease)
                        .await
                        .map_err(|e| {
                            let t = e.transient();
                            (e, t)
                        })
                })
                .await?,
            );
        }
        if let Some(reason) = &o.types.reason {
            events.note(&format!(
                "column types taken from the result's own metadata ({reason})"
            ));
        }
        for w in &o.types.widened {
            events.note(&format!(
                "column '{}' described as {} but sent as {}: written as {}",
                w.column, w.described, w.sent, w.written
            ));
        }
        Ok(o)
    }

    /// Extracts the query (narrowed as its table load decides) and
    /// publishes it; returns what the load then needs.
    async fn land<'a>(
        &'a self,
        query: &'a RenderedQuery,
        events: &dyn QueryEvents,
        lease: &Lease,
    ) -> Result<(Outcome, Option<TableLoad<'a>>), RunError> {
        // A table load decides first what to read (the rows past a cursor,
        // the changes since a version).
        let prepared = match (&query.load, &self.tables, &self.destination) {
            (None, _, _) => None,
            (Some(spec), Some(tables), Destination::Volume(..)) => {
                let mut conn = pool::get(&self.pool).await?;
                let p = tables
                    .prepare(spec, &self.state_key(query), &query.sql, &mut conn)
                    .await;
                // It may have moved to another database.
                let _ = deadpool::managed::Object::take(conn);
                let p = p?;
                if let Some(n) = &p.note {
                    events.note(n);
                }
                Some((spec, tables, p))
            }
            (Some(spec), _, _) => {
                return Err(RunError::Table(LoadError::Spec(format!(
                    "{} loads table {}: that needs a Volume destination (/Volumes/...) and a SQL warehouse",
                    spec.file.display(),
                    spec.table
                ))))
            }
        };
        // Changes are read in one SNAPSHOT transaction when the database
        // allows it; a partitioned read spans connections, so it reads
        // plainly and is validated after.
        let snapshot_sql = prepared
            .as_ref()
            .and_then(|(_, _, p)| p.snapshot_sql.as_deref())
            .filter(|_| query.partition.is_none());
        let sql = snapshot_sql
            .or(prepared.as_ref().map(|(_, _, p)| p.sql.as_str()))
            .unwrap_or(&query.sql);
        let o = match &self.destination {
            Destination::Local(dir) => self.read(query, sql, dir, &self.options, events).await?,
            Destination::Volume(root, ws) => {
                // Parts are written locally first, then uploaded; the local
                // copy goes away either way (also when cancelled).
                let stage = std::env::temp_dir()
                    .join(format!("bridge-extract-{}", uuid::Uuid::new_v4().simple()));
                let _cleanup = RemoveOnDrop::new(stage.clone());
                let mut local = self.options.clone();
                local.overwrite = true;
                let read = self.read(query, sql, &stage, &local, events).await;
                let mut o = match (read, &prepared) {
                    (Err(RunError::Extract(e)), Some((_, _, p))) if snapshot_sql.is_some() => {
                        return Err(TableLoader::cleaned_up_before_read(p, &e.to_string())
                            .map(RunError::Table)
                            .unwrap_or(RunError::Extract(e)));
                    }
                    (read, _) => read?,
                };
                if let (Some((_, tables, p)), None) = (&prepared, snapshot_sql) {
                    let mut conn = pool::get(&self.pool).await?;
                    let checked = tables.confirm(p, &mut conn).await;
                    let _ = deadpool::managed::Object::take(conn);
                    checked?;
                }
                let (name, country) = (&query.name, self.country.as_str());
                events.note(&format!(
                    "uploading {} part(s) to {}",
                    o.parts.len(),
                    root.query_dir(country, name)
                ));
                let published =
                    publish_to_volume(ws, &o.output, root, country, name, &o.parts, Some(lease))
                        .await?;
                o.output = PathBuf::from(published.dir);
                o.location = Some(PathBuf::from(published.location));
                o
            }
        };
        Ok((o, prepared))
    }

    /// Loads the landed run into its table. Every statement of a load may
    /// run again with the same result (CREATE OR REPLACE, COPY INTO — which
    /// skips the files it already loaded —, MERGE, the state's MERGE), so a
    /// retry after a lost answer writes nothing twice.
    #[allow(clippy::too_many_arguments)]
    async fn load_table(
        &self,
        query: &RenderedQuery,
        spec: &LoadSpec,
        tables: &TableLoader,
        prepared: &crate::tables::Prepared,
        o: &Outcome,
        events: &dyn QueryEvents,
        lease: &Lease,
    ) -> Result<crate::tables::TableOutcome, RunError> {
        let Destination::Volume(_, ws) = &self.destination else {
            return Err(RunError::Table(LoadError::Spec(
                "table loads need a Volume destination".into(),
            )));
        };
        let location = o
            .location
            .as_ref()
            .map(|l| l.display().to_string())
            .unwrap_or_default();
        let columns: Vec<Column> = o
            .columns
            .iter()
            .filter_map(|(n, t)| {
                crate::types::spark_type(t).map(|spark_type| Column {
                    name: n.clone(),
                    spark_type,
                })
            })
            .collect();
        lease.check().await?;
        events.note(&format!("loading {} into {}", location, spec.table));
        let outcome = tables
            .load(spec, &self.state_key(query), prepared, &location, &columns)
            .await?;
        record_table(ws, &o.output.display().to_string(), &outcome).await?;
        Ok(outcome)
    }
}

/// What a query's table load needs after its run lands.
type TableLoad<'a> = (&'a LoadSpec, &'a TableLoader, crate::tables::Prepared);

impl Run {
    /// Reads one query into `destination/<country>/<name>`: on one pooled
    /// connection, or split into partitions on several.
    async fn read(
        &self,
        query: &RenderedQuery,
        sql: &str,
        destination: &Path,
        opts: &ExtractOptions,
        events: &dyn QueryEvents,
    ) -> Result<Outcome, RunError> {
        let progress = |rows: u64| events.rows(rows);
        let (name, country) = (query.name.as_str(), self.country.as_str());
        if let Some(part) = &query.partition {
            let note = |m: &str| events.note(m);
            let final_dir = output_dir(destination, country, name);
            return Ok(extract_partitioned_into(
                &self.pool,
                name,
                country,
                sql,
                &final_dir,
                opts,
                part,
                &self.retry,
                &progress,
                &note,
            )
            .await?);
        }
        let mut conn = pool::get(&self.pool).await?;
        let r = extract_query(&mut conn, name, sql, destination, country, opts, &progress).await;
        // A user's batch may leave session state behind (USE, SET, #temp
        // tables); the next job, maybe another user's, must not see it, so
        // the connection is closed rather than returned to the pool.
        let _ = deadpool::managed::Object::take(conn);
        Ok(r?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_volumes_or_local_directories() {
        assert_eq!(
            DestinationPath::parse("/Volumes/main/demo/landing/x").unwrap(),
            DestinationPath::Volume(VolumeRoot("/Volumes/main/demo/landing/x".into()))
        );
        assert_eq!(
            DestinationPath::parse("file:///tmp/out").unwrap(),
            DestinationPath::Local(PathBuf::from("/tmp/out"))
        );
        assert!(DestinationPath::parse("dbfs:/x").is_err());
        assert!(DestinationPath::parse("/Volumes/main/demo").is_err());
        assert!(DestinationPath::parse(" ").is_err());
    }
}
