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
            EventType::AuthFailure | EventType::PermissionDenied | EventType::SyncEventRefused => {
                "denied"
            }
            EventType::JobFailed | EventType::SyncEventFailed | EventType::JobInterrupted => {
                "failure"
            }
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

/// Where audit lines go: always the log, and a file when one is set.
pub struct AuditLog {
    file: Option<(PathBuf, Mutex<std::fs::File>)>,
}

impl AuditLog {
    /// Appends to `path` (created with its directory when missing).
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let err = |e: std::io::Error| AuditError {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        Ok(AuditLog {
            file: Some((path.to_path_buf(), Mutex::new(f))),
        })
    }

    /// Log only (library use, tests of pure logic).
    pub fn log_only() -> AuditLog {
        AuditLog { file: None }
    }

    pub fn record(&self, event: AuditEvent) {
        let line = match serde_json::to_string(&event) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise an audit event");
                return;
            }
        };
        tracing::info!(target: "audit", "{line}");
        if let Some((path, f)) = &self.file {
            // One write per line: appends from threads never interleave.
            let written = match f.lock() {
                Ok(mut f) => f.write_all(format!("{line}\n").as_bytes()),
                Err(_) => Err(std::io::Error::other("audit file lock poisoned")),
            };
            if let Err(e) = written {
                tracing::error!(path = %path.display(), error = %e, "cannot write the audit log");
            }
        }
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
}
