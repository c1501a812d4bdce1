//! The audit trail: one JSON line per auth decision and per job or sync
//! event action, appended to a file and sent to the log (target `audit`).
//! Lines carry names, never tokens or passwords.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
#[error("audit log {path}: {message}")]
pub struct AuditError {
    pub path: PathBuf,
    pub message: String,
}

/// What happened, in the deck's vocabulary (`auth_success`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    AuthSuccess,
    AuthFailure,
    PermissionDenied,
    JobSubmitted,
    JobStarted,
    JobSucceeded,
    JobFailed,
    JobCancelled,
    JobInterrupted,
    SyncEventSubmitted,
    SyncEventClaimed,
    SyncEventApplied,
    SyncEventRefused,
    SyncEventFailed,
    /// A Spark job's distributed write through the server: its run opened,
    /// its stages applied (or found applied), its run aborted, or its
    /// commit refused or failed.
    SparkWriteOpened,
    SparkWriteCommitted,
    SparkWriteAborted,
    SparkWriteRefused,
    SparkWriteFailed,
    /// The server signed in to SQL Server or Databricks at start: who it is
    /// there (`user_name`) and how it signed in (`detail`).
    BridgeSignedIn,
    BridgeSignInFailed,
}

/// One audit line.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditEvent {
    pub timestamp: String,
    pub event_type: EventType,
    pub user_name: Option<String>,
    pub source_ip: Option<String>,
    pub resource: String,
    pub action: String,
    pub outcome: &'static str,
    /// On a refusal: the right that was missing (`write on
    /// kwp_colombia.dbo.t`, `SELECT on table main.hr.salaries`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_right: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl AuditEvent {
    pub fn new(event_type: EventType, resource: impl Into<String>, action: &str) -> Self {
        let outcome = match event_type {
            EventType::AuthFailure
            | EventType::PermissionDenied
            | EventType::SyncEventRefused
            | EventType::SparkWriteRefused => "denied",
            EventType::JobFailed
            | EventType::SyncEventFailed
            | EventType::SparkWriteFailed
            | EventType::JobInterrupted
            | EventType::BridgeSignInFailed => "failure",
            EventType::JobCancelled => "cancelled",
            _ => "success",
        };
        AuditEvent {
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            event_type,
            user_name: None,
            source_ip: None,
            resource: resource.into(),
            action: action.to_string(),
            outcome,
            missing_right: None,
            detail: None,
        }
    }

    pub fn missing(mut self, right: impl Into<String>) -> Self {
        self.missing_right = Some(right.into());
        self
    }

    pub fn user(mut self, name: impl Into<String>) -> Self {
        self.user_name = Some(name.into());
        self
    }

    pub fn ip(mut self, ip: Option<&str>) -> Self {
        self.source_ip = ip.map(str::to_string);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }
}

/// When the audit file is rotated: before a line would take it past
/// `max_bytes`, `audit.jsonl` becomes `audit.jsonl.1` (`.1` becomes `.2`,
/// ...), and `keep` such files are kept; so the trail takes at most about
/// `(keep + 1) * max_bytes` of disk, however long the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rotation {
    pub max_bytes: u64,
    pub keep: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_bytes: 100 * 1024 * 1024,
            keep: 5,
        }
    }
}

/// The open audit file and what it was opened as.
struct AuditFile {
    path: PathBuf,
    rotation: Rotation,
    file: Mutex<std::fs::File>,
}

/// Where audit lines go: always the log, and a file when one is set,
/// through a writer thread. Refusals and failures wait for their line to be
/// written before the caller goes on (a decision that matters is on disk
/// before its answer is sent); successes do not wait.
pub struct AuditLog {
    path: Option<PathBuf>,
    /// Rotated files kept beside `path`.
    keep: usize,
    writer: Writer,
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.writer.flush();
    }
}

fn open_append(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

/// `audit.jsonl.3` for `audit.jsonl` and 3.
fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// Whether `file` is no longer what `path` names (another process sharing
/// the trail, such as `sync watch`, rotated it).
#[cfg(unix)]
fn moved(file: &std::fs::File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.ino() != named.ino() || open.dev() != named.dev(),
        _ => true,
    }
}

#[cfg(not(unix))]
fn moved(_: &std::fs::File, path: &Path) -> bool {
    !path.exists()
}

impl AuditFile {
    /// Shifts `path.N` to `path.N+1` (the oldest kept is overwritten) and
    /// `path` to `path.1`; with `keep` 0 the file is only emptied.
    fn rotate(&self) -> std::io::Result<()> {
        let keep = self.rotation.keep;
        if keep == 0 {
            return std::fs::remove_file(&self.path);
        }
        for n in (1..keep).rev() {
            match std::fs::rename(rotated(&self.path, n), rotated(&self.path, n + 1)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            }
        }
        std::fs::rename(&self.path, rotated(&self.path, 1))
    }

    /// Appends lines in order, rotating first whenever the next line would
    /// take the file past the cap; consecutive lines that fit are written
    /// with one call. Every line is written whatever happens to the
    /// rotation: a refusal is never dropped to keep a file small.
    fn append(&self, lines: &[String]) -> std::io::Result<()> {
        let mut f = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("audit file lock poisoned"))?;
        if moved(&f, &self.path) {
            *f = open_append(&self.path)?;
        }
        let mut len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let mut pending = String::new();
        for line in lines {
            let next = (pending.len() + line.len()) as u64;
            if len + next > self.rotation.max_bytes && len + pending.len() as u64 > 0 {
                Self::write(&mut f, &self.path, &pending)?;
                len += pending.len() as u64;
                pending.clear();
                if len > 0 {
                    match self.rotate() {
                        Ok(()) => {
                            *f = open_append(&self.path)?;
                            len = 0;
                        }
                        Err(e) => tracing::error!(
                            path = %self.path.display(),
                            error = %e,
                            "cannot rotate the audit log; it grows past its cap"
                        ),
                    }
                }
            }
            pending.push_str(line);
        }
        Self::write(&mut f, &self.path, &pending)
    }

    fn write(f: &mut std::fs::File, path: &Path, text: &str) -> std::io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        // One write per run of whole lines: appends never interleave.
        if f.write_all(text.as_bytes()).is_err() {
            // Reopened once (the file may have been removed under us).
            *f = open_append(path)?;
            f.write_all(text.as_bytes())?;
        }
        Ok(())
    }
}

/// What the writer thread is sent.
enum Msg {
    Line(String),
    /// Answered once every line sent before it is written.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// The lines' way to the file and the log, off the caller's thread: a
/// request records its line and goes on; the writer takes every line
/// waiting at once and writes them together (so polling at thousands of
/// requests a second costs a few writes, not one per request).
struct Writer {
    tx: std::sync::mpsc::Sender<Msg>,
}

impl Writer {
    fn start(file: Option<AuditFile>) -> std::io::Result<Writer> {
        let (tx, rx) = std::sync::mpsc::channel::<Msg>();
        std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut lines = Vec::new();
                    let mut waiting = Vec::new();
                    let mut next = Some(first);
                    while let Some(m) = next.take() {
                        match m {
                            Msg::Line(l) => lines.push(l),
                            Msg::Flush(w) => waiting.push(w),
                        }
                        if lines.len() < 10_000 {
                            next = rx.try_recv().ok();
                        }
                    }
                    for l in &lines {
                        tracing::info!(target: "audit", "{}", l.trim_end());
                    }
                    if let Some(file) = &file {
                        if let Err(e) = file.append(&lines) {
                            tracing::error!(path = %file.path.display(), error = %e, "cannot write the audit log");
                        }
                    }
                    for w in waiting {
                        let _ = w.send(());
                    }
                }
            })?;
        Ok(Writer { tx })
    }

    fn send(&self, m: Msg) -> bool {
        self.tx.send(m).is_ok()
    }

    /// Waits until every line sent so far is written.
    fn flush(&self) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.send(Msg::Flush(done)) {
            let _ = wait.recv();
        }
    }
}

impl AuditLog {
    /// Appends to `path` (created with its directory when missing),
    /// rotating at the default cap (100 MiB, 5 files kept).
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        AuditLog::open_rotating(path, Rotation::default())
    }

    /// Appends to `path`, rotating as `rotation` says.
    pub fn open_rotating(path: &Path, rotation: Rotation) -> Result<AuditLog, AuditError> {
        let err = |e: std::io::Error| AuditError {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let f = open_append(path).map_err(err)?;
        let writer = Writer::start(Some(AuditFile {
            path: path.to_path_buf(),
            rotation,
            file: Mutex::new(f),
        }))
        .map_err(err)?;
        Ok(AuditLog {
            path: Some(path.to_path_buf()),
            keep: rotation.keep,
            writer,
        })
    }

    /// Log only (library use, tests of pure logic).
    pub fn log_only() -> AuditLog {
        AuditLog {
            path: None,
            keep: 0,
            // A thread that cannot start leaves lines to the caller's log.
            writer: Writer::start(None).unwrap_or_else(|_| {
                let (tx, _) = std::sync::mpsc::channel();
                Writer { tx }
            }),
        }
    }

    pub fn record(&self, event: AuditEvent) {
        let line = match serde_json::to_string(&event) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an audit event");
                return;
            }
        };
        if !self.writer.send(Msg::Line(format!("{line}\n"))) {
            tracing::error!(path = ?self.path, "the audit writer has stopped: {line}");
            return;
        }
        if event.outcome != "success" {
            self.writer.flush();
        }
    }

    /// The trail's files, newest first: the current one, then `.1`, `.2`,
    /// ... as rotation keeps them; none when lines go to the log only.
    pub fn files(&self) -> Vec<PathBuf> {
        let Some(p) = &self.path else {
            return vec![];
        };
        std::iter::once(p.clone())
            .chain((1..=self.keep).map(|n| rotated(p, n)))
            .collect()
    }

    /// Waits until every line recorded so far is written (shutdown, tests).
    pub fn flush(&self) {
        self.writer.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_json_with_the_decks_fields() {
        let p = std::env::temp_dir().join(format!("bridge-audit-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&p);
        let log = AuditLog::open(&p).unwrap();
        log.record(
            AuditEvent::new(EventType::AuthSuccess, "dbo.Ventas", "read")
                .user("proyecto-abc")
                .ip(Some("10.0.0.1")),
        );
        log.record(AuditEvent::new(EventType::AuthFailure, "/jobs", "GET").ip(Some("10.0.0.2")));
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["event_type"], "auth_success");
        assert_eq!(lines[0]["user_name"], "proyecto-abc");
        assert_eq!(lines[0]["source_ip"], "10.0.0.1");
        assert_eq!(lines[0]["resource"], "dbo.Ventas");
        assert_eq!(lines[0]["action"], "read");
        assert_eq!(lines[0]["outcome"], "success");
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
        assert_eq!(lines[1]["outcome"], "denied");
        assert!(lines[1]["user_name"].is_null());
    }

    fn refusal(n: usize) -> AuditEvent {
        AuditEvent::new(EventType::PermissionDenied, format!("dbo.t{n}"), "read")
            .user("proyecto-abc")
            .missing(format!("read on kwp.dbo.t{n}"))
    }

    fn lines_of(p: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn rotation_keeps_each_file_under_its_cap_and_loses_no_recent_line() {
        let dir = std::env::temp_dir().join(format!("bridge-audit-rot-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let p = dir.join("audit.jsonl");
        let cap = 2_000;
        let log = AuditLog::open_rotating(
            &p,
            Rotation {
                max_bytes: cap,
                keep: 3,
            },
        )
        .unwrap();
        for n in 0..500 {
            log.record(refusal(n));
        }
        for f in [p.clone(), rotated(&p, 1), rotated(&p, 2), rotated(&p, 3)] {
            let len = std::fs::metadata(&f).unwrap().len();
            assert!(len > 0 && len <= cap, "{}: {len}", f.display());
        }
        assert!(!rotated(&p, 4).exists());
        // Oldest first, the kept lines are the newest refusals, none missing.
        let mut kept = Vec::new();
        for f in [rotated(&p, 3), rotated(&p, 2), rotated(&p, 1), p.clone()] {
            kept.extend(lines_of(&f));
        }
        let numbers: Vec<usize> = kept
            .iter()
            .map(|l| l["resource"].as_str().unwrap()[5..].parse().unwrap())
            .collect();
        let first = numbers[0];
        assert_eq!(numbers, (first..500).collect::<Vec<_>>());
        assert!(kept.iter().all(|l| l["outcome"] == "denied"));

        // A line longer than the cap is still written, alone in its file.
        let long = refusal(1).detail("x".repeat(3 * cap as usize));
        log.record(long);
        assert_eq!(lines_of(&p).len(), 1);
        assert!(lines_of(&rotated(&p, 1)).len() > 1);
        log.record(refusal(501));
        assert_eq!(lines_of(&p).len(), 1, "the long line's file was rotated");

        // Another process rotated the file: lines go to the new one.
        std::fs::rename(&p, dir.join("moved.jsonl")).unwrap();
        log.record(refusal(502));
        assert_eq!(lines_of(&p)[0]["resource"], "dbo.t502");

        // keep = 0: the file is emptied at the cap, and stays under it.
        let q = dir.join("zero.jsonl");
        let log = AuditLog::open_rotating(
            &q,
            Rotation {
                max_bytes: cap,
                keep: 0,
            },
        )
        .unwrap();
        for n in 0..100 {
            log.record(refusal(n));
        }
        assert!(std::fs::metadata(&q).unwrap().len() <= cap);
        assert!(!rotated(&q, 1).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
