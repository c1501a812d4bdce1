//! Runs extraction jobs on the server's runtime: a queue bounded by a
//! number of concurrent jobs, a cancellation token per job, live per-query
//! progress, and every transition written to the job store and the audit log.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::store::{Job, JobState, JobStore, StoreError};
use crate::auth::{AuditEvent, AuditLog, EventType};
use crate::extract::run::{Destination, QueryEvents, RenderedQuery, Run, RunError};
use crate::extract::ExtractOptions;
use crate::metrics::{Counter, Histogram};
use crate::retry::RetryPolicy;
use crate::sqlserver::pool::Pool;

/// How the runner runs jobs.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Jobs running at once; the others wait in the queue.
    pub max_concurrent_jobs: usize,
    /// Queries of one job running at once.
    pub parallel_queries: usize,
    pub options: ExtractOptions,
    pub retry: RetryPolicy,
}

/// A checked extraction, ready to queue: paths resolved, queries rendered,
/// permissions granted.
pub struct ExtractJob {
    pub country: String,
    pub destination: Destination,
    pub queries: Vec<RenderedQuery>,
    pub overwrite: bool,
    /// Loads queries with a load spec into tables.
    pub tables: Option<crate::tables::TableLoader>,
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum QueryState {
    Pending,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// One query of a job.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct QueryStatus {
    pub query: String,
    pub state: QueryState,
    /// Rows read so far (live while running).
    pub rows: u64,
    /// Parquet bytes written.
    pub bytes: u64,
    /// The Parquet part files published.
    pub files: Vec<String>,
    /// Where the output was published.
    pub output: Option<String>,
    pub error: Option<String>,
    /// Rows read and written that do not agree (reported, not fatal).
    pub discrepancy: Option<String>,
    pub seconds: Option<f64>,
    /// What loading the output into its table did (queries with a load spec).
    #[serde(default)]
    pub table: Option<crate::tables::TableOutcome>,
    /// The output's manifest: where `_manifest.json` is, and its parts
    /// (file, rows, bytes, sha256).
    #[serde(default)]
    pub manifest: Option<String>,
    #[serde(default)]
    pub parts: Vec<crate::extract::Part>,
}

impl QueryStatus {
    fn pending(query: &str) -> Self {
        QueryStatus {
            query: query.to_string(),
            state: QueryState::Pending,
            rows: 0,
            bytes: 0,
            files: vec![],
            output: None,
            error: None,
            discrepancy: None,
            seconds: None,
            table: None,
            manifest: None,
            parts: vec![],
        }
    }
}

/// The per-query results kept in the store's `result` column.
pub fn queries_of(job: &Job) -> Vec<QueryStatus> {
    job.result
        .as_ref()
        .and_then(|r| r.get("queries"))
        .and_then(|q| serde_json::from_value(q.clone()).ok())
        .unwrap_or_default()
}

fn result_json(queries: &[QueryStatus]) -> serde_json::Value {
    serde_json::json!({ "queries": queries })
}

/// A job the runner holds (queued or running).
struct Live {
    cancel: CancellationToken,
    queries: Mutex<Vec<QueryStatus>>,
    done: watch::Sender<bool>,
}

impl Live {
    fn snapshot(&self) -> Vec<QueryStatus> {
        self.queries.lock().map(|q| q.clone()).unwrap_or_default()
    }

    fn update(&self, i: usize, f: impl FnOnce(&mut QueryStatus)) {
        if let Ok(mut q) = self.queries.lock() {
            if let Some(s) = q.get_mut(i) {
                f(s);
            }
        }
    }
}

/// What the runner has moved, for `/metrics`.
#[derive(Debug, Default)]
pub struct RunnerStats {
    pub rows: Counter,
    pub bytes: Counter,
    pub durations: Histogram,
    /// Rows table loads inserted, updated and deleted, by mode.
    pub table_rows: Counter,
}

struct Inner {
    store: Arc<JobStore>,
    audit: Arc<AuditLog>,
    pool: Pool,
    config: RunnerConfig,
    slots: Arc<Semaphore>,
    live: Mutex<HashMap<String, Arc<Live>>>,
    stopping: CancellationToken,
    interrupting: AtomicBool,
    tracker: TaskTracker,
    stats: RunnerStats,
    /// This bridge, as the outputs' leases name it.
    instance: String,
}

/// The result of a cancel request.
pub enum Cancelled {
    /// The job stopped (or was still queued); its final record.
    Stopped(Job),
    /// It was already finished; nothing changed.
    AlreadyFinished(Job),
    /// It did not stop within the wait; it will be marked when it does.
    Stopping(Job),
}

#[derive(Clone)]
pub struct JobRunner {
    inner: Arc<Inner>,
}

impl JobRunner {
    pub fn new(
        store: Arc<JobStore>,
        audit: Arc<AuditLog>,
        pool: Pool,
        config: RunnerConfig,
    ) -> Self {
        JobRunner {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(config.max_concurrent_jobs.max(1))),
                store,
                audit,
                pool,
                config,
                live: Mutex::new(HashMap::new()),
                stopping: CancellationToken::new(),
                interrupting: AtomicBool::new(false),
                tracker: TaskTracker::new(),
                stats: RunnerStats::default(),
                instance: crate::sync::PollerConfig::instance_id(),
            }),
        }
    }

    pub fn store(&self) -> &JobStore {
        &self.inner.store
    }

    pub fn stats(&self) -> &RunnerStats {
        &self.inner.stats
    }

    /// The SQL Server pool jobs take connections from (readiness probes
    /// borrow one too, rather than logging in each time).
    pub fn pool(&self) -> &Pool {
        &self.inner.pool
    }

    /// How SQL Server work is retried (`--retries`, ...), for the API's own
    /// writes too.
    pub fn retry(&self) -> &crate::retry::RetryPolicy {
        &self.inner.config.retry
    }

    /// Queues a job; it starts when a slot is free.
    pub fn submit(
        &self,
        owner: &str,
        job: ExtractJob,
        request: &serde_json::Value,
    ) -> Result<Job, StoreError> {
        let inner = &self.inner;
        let record = inner.store.create(owner, "extract", request)?;
        let queries: Vec<QueryStatus> = job
            .queries
            .iter()
            .map(|q| QueryStatus::pending(&q.name))
            .collect();
        inner
            .store
            .update_result(&record.id, &result_json(&queries))?;
        let (done, _) = watch::channel(false);
        let live = Arc::new(Live {
            cancel: CancellationToken::new(),
            queries: Mutex::new(queries),
            done,
        });
        if let Ok(mut m) = inner.live.lock() {
            m.insert(record.id.clone(), live.clone());
        }
        let (inner2, id, owner) = (self.inner.clone(), record.id.clone(), owner.to_string());
        inner.tracker.spawn(async move {
            run_job(&inner2, &id, &owner, job, &live).await;
            let _ = live.done.send(true);
            if let Ok(mut m) = inner2.live.lock() {
                m.remove(&id);
            }
        });
        Ok(inner.store.get(&record.id)?.unwrap_or(record))
    }

    /// A job's per-query status: live while it runs, else as stored.
    pub fn queries(&self, job: &Job) -> Vec<QueryStatus> {
        let live = if job.state.is_final() {
            None
        } else {
            self.inner
                .live
                .lock()
                .ok()
                .and_then(|m| m.get(&job.id).cloned())
        };
        match live {
            Some(l) => l.snapshot(),
            None => queries_of(job),
        }
    }

    /// Cancels a queued or running job and waits up to `wait` for it to stop.
    pub async fn cancel(&self, job: Job, wait: Duration) -> Result<Cancelled, StoreError> {
        if job.state.is_final() {
            return Ok(Cancelled::AlreadyFinished(job));
        }
        let live = self
            .inner
            .live
            .lock()
            .ok()
            .and_then(|m| m.get(&job.id).cloned());
        match live {
            Some(l) => {
                let mut done = l.done.subscribe();
                l.cancel.cancel();
                let stopped = tokio::time::timeout(wait, done.wait_for(|finished| *finished)).await;
                let now = self.inner.store.get(&job.id)?.unwrap_or(job);
                Ok(if stopped.is_ok() {
                    Cancelled::Stopped(now)
                } else {
                    Cancelled::Stopping(now)
                })
            }
            None => {
                // Not held by this process (it would be final after a
                // restart): record the cancel directly.
                self.inner
                    .store
                    .finish(&job.id, JobState::Cancelled, None, Some("cancelled"))?;
                Ok(Cancelled::Stopped(
                    self.inner.store.get(&job.id)?.unwrap_or(job),
                ))
            }
        }
    }

    /// Stops taking queued jobs, lets running ones finish for up to
    /// `grace`, then stops them; all of those end `interrupted`.
    pub async fn shutdown(&self, grace: Duration) {
        let inner = &self.inner;
        inner.stopping.cancel();
        inner.tracker.close();
        if tokio::time::timeout(grace, inner.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "jobs still running after {:.0} s; interrupting them",
                grace.as_secs_f64()
            );
            inner.interrupting.store(true, Ordering::SeqCst);
            if let Ok(m) = inner.live.lock() {
                for l in m.values() {
                    l.cancel.cancel();
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(10), inner.tracker.wait()).await;
        }
    }
}

/// Sends one query's progress to its live status.
struct Events<'a> {
    live: &'a Live,
    index: usize,
    job: &'a str,
    query: &'a str,
}

impl QueryEvents for Events<'_> {
    fn rows(&self, rows: u64) {
        self.live.update(self.index, |s| s.rows = rows);
    }

    fn note(&self, message: &str) {
        tracing::info!(job = self.job, query = self.query, "{message}");
    }
}

fn audit(inner: &Inner, t: EventType, owner: &str, id: &str, detail: Option<String>) {
    let mut e = AuditEvent::new(t, format!("job:{id}"), "extract").user(owner);
    if let Some(d) = detail {
        e = e.detail(d);
    }
    inner.audit.record(e);
}

/// The state a stopped job ends in: cancelled by its owner, or interrupted
/// by a shutdown.
fn stopped_state(inner: &Inner) -> JobState {
    if inner.interrupting.load(Ordering::SeqCst) || inner.stopping.is_cancelled() {
        JobState::Interrupted
    } else {
        JobState::Cancelled
    }
}

/// Why a stopped job did not finish, for its record.
fn stop_reason(state: JobState, before: &str) -> String {
    match state {
        JobState::Interrupted => format!("the server shut down before the job {before}"),
        _ => format!("cancelled by its owner before the job {before}"),
    }
}

fn finish(
    inner: &Inner,
    id: &str,
    owner: &str,
    state: JobState,
    live: &Live,
    error: Option<String>,
) {
    let queries = live.snapshot();
    if let Err(e) = inner
        .store
        .finish(id, state, Some(&result_json(&queries)), error.as_deref())
    {
        tracing::error!(job = id, error = %e, "cannot record the end of a job");
    }
    let t = match state {
        JobState::Succeeded => EventType::JobSucceeded,
        JobState::Cancelled => EventType::JobCancelled,
        JobState::Interrupted => EventType::JobInterrupted,
        _ => EventType::JobFailed,
    };
    audit(inner, t, owner, id, error);
}

async fn run_job(inner: &Arc<Inner>, id: &str, owner: &str, job: ExtractJob, live: &Live) {
    // Wait for a slot, unless cancelled or the server stops first.
    let permit = tokio::select! {
        p = inner.slots.clone().acquire_owned() => p.ok(),
        _ = live.cancel.cancelled() => None,
        _ = inner.stopping.cancelled() => None,
    };
    let Some(_permit) = permit else {
        let state = stopped_state(inner);
        finish(
            inner,
            id,
            owner,
            state,
            live,
            Some(stop_reason(state, "started")),
        );
        return;
    };
    match inner.store.start(id) {
        Ok(true) => {}
        Ok(false) => return,
        Err(e) => {
            tracing::error!(job = id, error = %e, "cannot start a job");
            return;
        }
    }
    audit(inner, EventType::JobStarted, owner, id, None);
    let started = Instant::now();
    let mut options = inner.config.options.clone();
    options.overwrite = job.overwrite;
    let run = Run {
        pool: inner.pool.clone(),
        destination: job.destination,
        country: job.country,
        options,
        retry: inner.config.retry.clone(),
        tables: job.tables,
        holder: format!("job {id} of {owner} on bridge {}", inner.instance),
    };
    let preflight = tokio::select! {
        r = run.preflight(&job.queries) => r,
        _ = live.cancel.cancelled() => Err(RunError::Cancelled),
    };
    if let Err(e) = preflight {
        let (state, msg) = match e {
            RunError::Cancelled => {
                let state = stopped_state(inner);
                (state, stop_reason(state, "started"))
            }
            e => (JobState::Failed, e.to_string()),
        };
        finish(inner, id, owner, state, live, Some(msg));
        return;
    }
    let per_job = Semaphore::new(inner.config.parallel_queries.max(1));
    let dest_kind = format!(
        "destination=\"{}\"",
        match run.destination {
            Destination::Local(_) => "local",
            Destination::Volume(..) => "volume",
        }
    );
    let runs = job.queries.iter().enumerate().map(|(i, q)| {
        let (run, per_job, dest_kind) = (&run, &per_job, &dest_kind);
        async move {
            let _p = per_job.acquire().await;
            if live.cancel.is_cancelled() {
                live.update(i, |s| s.state = QueryState::Cancelled);
                return false;
            }
            live.update(i, |s| s.state = QueryState::Running);
            let events = Events {
                live,
                index: i,
                job: id,
                query: &q.name,
            };
            let result = run.run_query(q, &events, &live.cancel).await;
            let ok = result.is_ok();
            live.update(i, |s| match result {
                Ok(o) => {
                    s.state = QueryState::Succeeded;
                    s.rows = o.rows_written;
                    s.bytes = o.bytes;
                    let out = o.output.display().to_string();
                    let at = o
                        .location
                        .as_ref()
                        .unwrap_or(&o.output)
                        .display()
                        .to_string();
                    s.files = o
                        .parts
                        .iter()
                        .map(|p| format!("{}/{}", at.trim_end_matches('/'), p.file))
                        .collect();
                    s.manifest = Some(format!("{}/_manifest.json", out.trim_end_matches('/')));
                    s.parts = o.parts.clone();
                    s.output = Some(out);
                    s.table = o.table.clone();
                    s.discrepancy = o.discrepancy;
                    s.seconds = Some(o.seconds);
                    inner.stats.rows.add(dest_kind, o.rows_written);
                    inner.stats.bytes.add(dest_kind, o.bytes);
                    if let Some(t) = &o.table {
                        for (change, n) in [
                            ("inserted", t.rows_inserted),
                            ("updated", t.rows_updated),
                            ("deleted", t.rows_deleted),
                        ] {
                            // mode is one of four names, change one of three:
                            // a closed set of series.
                            inner
                                .stats
                                .table_rows
                                .add(&format!("mode=\"{}\",change=\"{change}\"", t.mode), n);
                        }
                    }
                }
                Err(RunError::Cancelled) => {
                    s.state = QueryState::Cancelled;
                    s.error = Some("cancelled".into());
                }
                Err(e) => {
                    s.state = QueryState::Failed;
                    s.error = Some(e.to_string());
                }
            });
            if let Err(e) = inner
                .store
                .update_result(id, &result_json(&live.snapshot()))
            {
                tracing::warn!(job = id, error = %e, "cannot record a query's result");
            }
            ok
        }
    });
    let results = futures_util::future::join_all(runs).await;
    let queries = live.snapshot();
    let (state, error) = if live.cancel.is_cancelled() {
        let state = stopped_state(inner);
        (state, Some(stop_reason(state, "finished")))
    } else if results.iter().all(|ok| *ok) {
        (JobState::Succeeded, None)
    } else {
        let failed: Vec<String> = queries
            .iter()
            .filter(|q| q.state == QueryState::Failed)
            .map(|q| format!("{}: {}", q.query, q.error.as_deref().unwrap_or("failed")))
            .collect();
        (JobState::Failed, Some(failed.join("; ")))
    };
    inner.stats.durations.observe(
        &format!("state=\"{}\"", state.as_str()),
        started.elapsed().as_secs_f64(),
    );
    finish(inner, id, owner, state, live, error);
}
