//! The job store: one SQLite file (WAL), one row per job. Opening it marks
//! jobs that were queued or running when the process stopped as
//! `interrupted`, so none shows as running forever.

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{params, Connection, OptionalExtension, Row};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("job store {path}: {message}")]
    Open { path: String, message: String },
    #[error("job store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("job store: bad stored value: {0}")]
    Corrupt(String),
    #[error("job store: the store lock was poisoned by a panic")]
    Poisoned,
    #[error("cursor '{0}' is not one this server gave out")]
    BadCursor(String),
}

/// Which page of a listing.
#[derive(Clone, Copy, Debug)]
pub enum Page<'a> {
    /// After the job the cursor names (`None`: the first page).
    Cursor(Option<&'a str>),
    /// After skipping this many jobs.
    Offset(usize),
    /// After the job the cursor names, skipping this many more.
    CursorOffset(&'a str, usize),
}

#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    Interrupted,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
            JobState::Interrupted => "interrupted",
        }
    }

    pub fn parse(s: &str) -> Option<JobState> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "cancelled" => JobState::Cancelled,
            "interrupted" => JobState::Interrupted,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        !matches!(self, JobState::Queued | JobState::Running)
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Job {
    pub id: String,
    pub owner: String,
    pub kind: String,
    pub state: JobState,
    pub request: serde_json::Value,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    request TEXT NOT NULL,
    result TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS jobs_owner_state ON jobs(owner, state, seq);
";

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn job_from(r: &Row<'_>) -> rusqlite::Result<(Job, i64)> {
    let state: String = r.get("state")?;
    let request: String = r.get("request")?;
    let result: Option<String> = r.get("result")?;
    Ok((
        Job {
            id: r.get("id")?,
            owner: r.get("owner")?,
            kind: r.get("kind")?,
            state: JobState::parse(&state).unwrap_or(JobState::Failed),
            request: serde_json::from_str(&request).unwrap_or(serde_json::Value::Null),
            result: result.and_then(|t| serde_json::from_str(&t).ok()),
            error: r.get("error")?,
            created_at: r.get("created_at")?,
            started_at: r.get("started_at")?,
            finished_at: r.get("finished_at")?,
        },
        r.get("seq")?,
    ))
}

/// Connections that only read: in WAL mode readers never wait for the
/// writer nor for each other, so polling clients (GET /jobs/{id}) are not
/// serialized behind one lock with every job's progress updates.
const READERS: usize = 4;

pub struct JobStore {
    conn: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: std::sync::atomic::AtomicUsize,
}

impl JobStore {
    /// Opens (or creates) the store; returns it and how many jobs were
    /// marked interrupted.
    pub fn open(path: &Path) -> Result<(JobStore, usize), StoreError> {
        let open_err = |e: &dyn std::fmt::Display| StoreError::Open {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_err(&e))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(&e))?;
        conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .map_err(|e| open_err(&e))?;
        conn.execute_batch(SCHEMA).map_err(|e| open_err(&e))?;
        conn.execute_batch(super::idempotency::SCHEMA)
            .map_err(|e| open_err(&e))?;
        conn.execute(super::idempotency::FORGET_UNFINISHED, [])?;
        let n = conn.execute(
            "UPDATE jobs SET state = 'interrupted', finished_at = ?1,
                 error = coalesce(error, 'the bridge stopped before the job finished')
             WHERE state IN ('queued', 'running')",
            [now()],
        )?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let r = Connection::open(path).map_err(|e| open_err(&e))?;
            r.execute_batch("PRAGMA query_only=1;")
                .map_err(|e| open_err(&e))?;
            readers.push(Mutex::new(r));
        }
        Ok((
            JobStore {
                conn: Mutex::new(conn),
                readers,
                next_reader: std::sync::atomic::AtomicUsize::new(0),
            },
            n,
        ))
    }

    pub(super) fn conn(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// A read-only connection: the first free one, else the next in turn.
    fn reader(&self) -> Result<std::sync::MutexGuard<'_, Connection>, StoreError> {
        for r in &self.readers {
            if let Ok(g) = r.try_lock() {
                return Ok(g);
            }
        }
        let i = self
            .next_reader
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % self.readers.len();
        self.readers[i].lock().map_err(|_| StoreError::Poisoned)
    }

    pub fn create(
        &self,
        owner: &str,
        kind: &str,
        request: &serde_json::Value,
    ) -> Result<Job, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let c = self.conn()?;
        c.execute(
            "INSERT INTO jobs (id, owner, kind, state, request, created_at) VALUES (?1, ?2, ?3, 'queued', ?4, ?5)",
            params![id, owner, kind, request.to_string(), now()],
        )?;
        drop(c);
        self.get(&id)?
            .ok_or_else(|| StoreError::Corrupt(format!("job {id} vanished")))
    }

    /// Queued → running; false when the job is no longer queued (cancelled).
    pub fn start(&self, id: &str) -> Result<bool, StoreError> {
        let n = self.conn()?.execute(
            "UPDATE jobs SET state = 'running', started_at = ?2 WHERE id = ?1 AND state = 'queued'",
            params![id, now()],
        )?;
        Ok(n == 1)
    }

    /// Records the end of a job; a job already final is left alone.
    pub fn finish(
        &self,
        id: &str,
        state: JobState,
        result: Option<&serde_json::Value>,
        error: Option<&str>,
    ) -> Result<bool, StoreError> {
        let n = self.conn()?.execute(
            "UPDATE jobs SET state = ?2, result = ?3, error = ?4, finished_at = ?5
             WHERE id = ?1 AND state IN ('queued', 'running')",
            params![
                id,
                state.as_str(),
                result.map(|r| r.to_string()),
                error,
                now()
            ],
        )?;
        Ok(n == 1)
    }

    pub fn get(&self, id: &str) -> Result<Option<Job>, StoreError> {
        let c = self.reader()?;
        let mut st = c.prepare_cached("SELECT * FROM jobs WHERE id = ?1")?;
        Ok(st.query_row([id], job_from).optional()?.map(|(j, _)| j))
    }

    /// Records progress of a job still running (per-query results so far),
    /// so a crash leaves what was done on record.
    pub fn update_result(&self, id: &str, result: &serde_json::Value) -> Result<(), StoreError> {
        self.conn()?.execute(
            "UPDATE jobs SET result = ?2 WHERE id = ?1 AND state IN ('queued', 'running')",
            params![id, result.to_string()],
        )?;
        Ok(())
    }

    /// How many jobs are in each state (for metrics).
    pub fn count_by_state(&self) -> Result<Vec<(JobState, u64)>, StoreError> {
        let c = self.reader()?;
        let mut st = c.prepare("SELECT state, count(*) FROM jobs GROUP BY state")?;
        let rows = st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            let (s, n) = r?;
            if let Some(s) = JobState::parse(&s) {
                out.push((s, n.max(0) as u64));
            }
        }
        Ok(out)
    }

    /// Newest first; `cursor` is the `next` of the previous page, or
    /// `offset` skips that many jobs.
    pub fn list(
        &self,
        owner: Option<&str>,
        state: Option<JobState>,
        limit: usize,
        page: Page<'_>,
    ) -> Result<(Vec<Job>, Option<String>), StoreError> {
        let after = |c: &str| -> Result<i64, StoreError> {
            c.parse()
                .ok()
                .filter(|n: &i64| *n > 0)
                .ok_or_else(|| StoreError::BadCursor(c.to_string()))
        };
        let skip = |n: usize| n.min(i64::MAX as usize) as i64;
        let (before, offset): (i64, i64) = match page {
            Page::Cursor(Some(c)) => (after(c)?, 0),
            Page::Cursor(None) => (i64::MAX, 0),
            Page::Offset(n) => (i64::MAX, skip(n)),
            Page::CursorOffset(c, n) => (after(c)?, skip(n)),
        };
        let c = self.reader()?;
        let mut st = c.prepare_cached(
            "SELECT * FROM jobs WHERE seq < ?1 AND (?2 IS NULL OR owner = ?2) AND (?3 IS NULL OR state = ?3)
             ORDER BY seq DESC LIMIT ?4 OFFSET ?5",
        )?;
        let rows = st.query_map(
            params![
                before,
                owner,
                state.map(|s| s.as_str()),
                limit.max(1) as i64 + 1,
                offset
            ],
            job_from,
        )?;
        let mut out: Vec<(Job, i64)> = rows.collect::<Result<_, _>>()?;
        let next = if out.len() > limit.max(1) {
            out.truncate(limit.max(1));
            out.last().map(|(_, seq)| seq.to_string())
        } else {
            None
        };
        Ok((out.into_iter().map(|(j, _)| j).collect(), next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(tag: &str) -> std::path::PathBuf {
        let p =
            std::env::temp_dir().join(format!("bridge-jobs-{tag}-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&p);
        p
    }

    #[test]
    fn a_restart_keeps_history_and_interrupts_running_jobs() {
        let p = path("restart");
        let (s, n) = JobStore::open(&p).unwrap();
        assert_eq!(n, 0);
        let req = serde_json::json!({"country": "Colombia"});
        let a = s.create("proyecto-colombia", "extract", &req).unwrap();
        let b = s.create("proyecto-colombia", "extract", &req).unwrap();
        let c = s.create("proyecto-mexico", "extract", &req).unwrap();
        assert!(s.start(&a.id).unwrap());
        assert!(s.start(&b.id).unwrap());
        assert!(s
            .finish(
                &b.id,
                JobState::Succeeded,
                Some(&serde_json::json!({"rows": 3})),
                None
            )
            .unwrap());
        assert!(!s
            .finish(&b.id, JobState::Failed, None, Some("late"))
            .unwrap());
        drop(s);

        let (s, n) = JobStore::open(&p).unwrap();
        assert_eq!(n, 2, "a was running, c was queued");
        assert_eq!(s.get(&a.id).unwrap().unwrap().state, JobState::Interrupted);
        assert_eq!(s.get(&c.id).unwrap().unwrap().state, JobState::Interrupted);
        let b = s.get(&b.id).unwrap().unwrap();
        assert_eq!(
            (b.state, b.result.unwrap()["rows"].as_i64()),
            (JobState::Succeeded, Some(3))
        );
        assert!(s.get("nope").unwrap().is_none());
    }

    #[test]
    fn lists_page_by_owner_and_state() {
        let (s, _) = JobStore::open(&path("list")).unwrap();
        let req = serde_json::json!({});
        for _ in 0..5 {
            s.create("a", "extract", &req).unwrap();
        }
        s.create("b", "extract", &req).unwrap();
        let (page, next) = s.list(Some("a"), None, 2, Page::Cursor(None)).unwrap();
        assert_eq!(page.len(), 2);
        let (page2, next2) = s
            .list(Some("a"), None, 2, Page::Cursor(next.as_deref()))
            .unwrap();
        assert_eq!(page2.len(), 2);
        assert!(page2[0].created_at <= page[1].created_at);
        let (page3, next3) = s
            .list(Some("a"), None, 2, Page::Cursor(next2.as_deref()))
            .unwrap();
        assert_eq!((page3.len(), next3), (1, None));
        assert_eq!(
            s.list(None, Some(JobState::Queued), 100, Page::Cursor(None))
                .unwrap()
                .0
                .len(),
            6
        );
        assert_eq!(
            s.list(Some("b"), Some(JobState::Running), 100, Page::Cursor(None))
                .unwrap()
                .0
                .len(),
            0
        );
        assert!(s.list(None, None, 10, Page::Cursor(Some("x"))).is_err());
        let (skipped, _) = s.list(Some("a"), None, 10, Page::Offset(3)).unwrap();
        assert_eq!(skipped.len(), 2);
        assert_eq!(skipped[0].id, page2[1].id);
        // A cursor and an offset: after the cursor's job, skipping more.
        let cursor = next.as_deref().unwrap();
        let (both, _) = s
            .list(Some("a"), None, 10, Page::CursorOffset(cursor, 1))
            .unwrap();
        assert_eq!(both[0].id, page2[1].id);
        let counts = s.count_by_state().unwrap();
        assert_eq!(counts, vec![(JobState::Queued, 6)]);
    }
}
