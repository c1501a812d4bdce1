//! Statement Execution API state: submitted statements, their lifecycle
//! (PENDING → RUNNING → SUCCEEDED / FAILED / CANCELED, and CLOSED when the
//! result expires), and their results split into chunks.
//! https://docs.databricks.com/api/workspace/statementexecution

pub mod api;
pub mod encode;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;

use super::sql::{Column, ResultSet};

/// Result format (`format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    JsonArray,
    ArrowStream,
    Csv,
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::JsonArray => "JSON_ARRAY",
            Format::ArrowStream => "ARROW_STREAM",
            Format::Csv => "CSV",
        }
    }
}

/// Result disposition (`disposition`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    Inline,
    ExternalLinks,
}

/// Where a statement is in its life.
#[derive(Clone, Debug)]
pub enum Phase {
    Pending,
    Running,
    Succeeded(Arc<Results>),
    Failed {
        error_code: String,
        message: String,
        sql_state: Option<String>,
    },
    Canceled,
    Closed,
}

impl Phase {
    pub fn state(&self) -> &'static str {
        match self {
            Phase::Pending => "PENDING",
            Phase::Running => "RUNNING",
            Phase::Succeeded(_) => "SUCCEEDED",
            Phase::Failed { .. } => "FAILED",
            Phase::Canceled => "CANCELED",
            Phase::Closed => "CLOSED",
        }
    }

    pub fn is_terminal(&self) -> bool {
        !matches!(self, Phase::Pending | Phase::Running)
    }
}

/// One chunk of a result: a row range.
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub row_offset: usize,
    pub row_count: usize,
    pub byte_count: u64,
}

/// A finished statement's result, held until it expires.
#[derive(Debug)]
pub struct Results {
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<super::sql::types::Cell>>,
    pub chunks: Vec<Chunk>,
    pub truncated: bool,
    pub total_bytes: u64,
    pub finished: Instant,
}

impl Results {
    /// Splits a result into chunks of about `chunk_bytes`, applying
    /// `row_limit` and `byte_limit` (setting `truncated`).
    pub fn build(
        rs: ResultSet,
        row_limit: Option<u64>,
        byte_limit: Option<u64>,
        chunk_bytes: u64,
    ) -> Results {
        let ResultSet { columns, mut rows } = rs;
        let mut truncated = false;
        if let Some(limit) = row_limit {
            if rows.len() as u64 > limit {
                rows.truncate(limit as usize);
                truncated = true;
            }
        }
        let mut chunks = Vec::new();
        let mut total = 0u64;
        let mut cur = Chunk {
            row_offset: 0,
            row_count: 0,
            byte_count: 0,
        };
        let mut keep = rows.len();
        for (i, r) in rows.iter().enumerate() {
            let b = encode::row_bytes(r);
            if let Some(limit) = byte_limit {
                if total + b > limit {
                    keep = i;
                    truncated = true;
                    break;
                }
            }
            if cur.row_count > 0 && cur.byte_count + b > chunk_bytes {
                chunks.push(cur);
                cur = Chunk {
                    row_offset: i,
                    row_count: 0,
                    byte_count: 0,
                };
            }
            cur.row_count += 1;
            cur.byte_count += b;
            total += b;
        }
        rows.truncate(keep);
        if cur.row_count > 0 || chunks.is_empty() {
            chunks.push(cur);
        }
        Results {
            columns,
            rows,
            chunks,
            truncated,
            total_bytes: total,
            finished: Instant::now(),
        }
    }

    pub fn chunk_rows(&self, idx: usize) -> &[Vec<super::sql::types::Cell>] {
        let c = self.chunks[idx];
        &self.rows[c.row_offset..c.row_offset + c.row_count]
    }
}

/// What a statement was asked to do.
#[derive(Clone, Debug)]
pub struct Request {
    pub statement: String,
    pub format: Format,
    pub disposition: Disposition,
    pub row_limit: Option<u64>,
    pub byte_limit: Option<u64>,
}

pub struct Entry {
    pub id: String,
    pub request: Request,
    pub phase: watch::Sender<Phase>,
    /// An injected fault: the next answer that reports the statement ended
    /// is this error instead (the statement still ran).
    pub lose_answer: std::sync::Mutex<Option<crate::databricks::error::ApiError>>,
}

impl Entry {
    /// The injected lost answer, once the statement has ended.
    pub fn take_lost_answer(&self) -> Option<crate::databricks::error::ApiError> {
        if !self.phase.borrow().is_terminal() {
            return None;
        }
        self.lose_answer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// A result link handed out for EXTERNAL_LINKS.
#[derive(Clone, Debug)]
pub struct Link {
    pub statement_id: String,
    pub chunk: usize,
    pub expires: SystemTime,
    /// Headers a GET of the link must carry (name lower case, value).
    pub headers: Vec<(String, String)>,
}

/// Every statement submitted to this workspace, and issued result links.
#[derive(Default)]
pub struct Store {
    entries: Mutex<HashMap<String, Arc<Entry>>>,
    links: Mutex<HashMap<String, Link>>,
}

impl Store {
    /// Drops results older than `result_ttl` (their statements read CLOSED)
    /// and links that expired that long ago, so a long demo run does not
    /// keep every result in memory.
    pub fn sweep(&self, result_ttl: Duration) {
        let entries: Vec<Arc<Entry>> = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for e in entries {
            let expired = matches!(&*e.phase.borrow(), Phase::Succeeded(r) if r.finished.elapsed() > result_ttl);
            if expired {
                e.phase.send_replace(Phase::Closed);
            }
        }
        let now = SystemTime::now();
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, l| {
                now.duration_since(l.expires)
                    .map(|d| d < result_ttl)
                    .unwrap_or(true)
            });
    }

    pub fn insert(&self, request: Request) -> Arc<Entry> {
        let id = format!("01f0{}", uuid::Uuid::new_v4().simple())
            .chars()
            .take(32)
            .collect::<String>();
        let id = format!(
            "{}-{}-{}-{}-{}",
            &id[0..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..32]
        );
        let (tx, _rx) = watch::channel(Phase::Pending);
        let e = Arc::new(Entry {
            id: id.clone(),
            request,
            phase: tx,
            lose_answer: std::sync::Mutex::new(None),
        });
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, e.clone());
        e
    }

    /// A statement by id; its result is closed once `result_ttl` has passed.
    pub fn get(&self, id: &str, result_ttl: Duration) -> Option<Arc<Entry>> {
        let e = self
            .entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()?;
        let expired =
            matches!(&*e.phase.borrow(), Phase::Succeeded(r) if r.finished.elapsed() > result_ttl);
        if expired {
            e.phase.send_replace(Phase::Closed);
        }
        Some(e)
    }

    pub fn issue_link(&self, link: Link) -> String {
        let token = uuid::Uuid::new_v4().simple().to_string();
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), link);
        token
    }

    pub fn link(&self, token: &str) -> Option<Link> {
        self.links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

/// Moves a statement to `next` unless it already ended (a cancel that
/// arrives after the end changes nothing, as documented).
pub fn transition(entry: &Entry, next: Phase) -> bool {
    let mut changed = false;
    entry.phase.send_if_modified(|p| {
        if p.is_terminal() {
            return false;
        }
        *p = next.clone();
        changed = true;
        true
    });
    changed
}
