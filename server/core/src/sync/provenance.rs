//! Who wrote a sync event, learned from Databricks rather than from the
//! row: the events table is a Delta table with Change Data Feed, so
//! `table_changes(table, start)` gives every insert and update of a row
//! with its `_commit_version`
//! (https://docs.databricks.com/en/sql/language-manual/functions/table_changes.html,
//! https://docs.databricks.com/en/delta/delta-change-data-feed.html), and
//! `DESCRIBE HISTORY` gives the `userName` that committed each version
//! (https://docs.databricks.com/en/sql/language-manual/delta-describe-history.html).
//!
//! The rules, applied to an event's changes in version order:
//! - its first change is an `insert`; the principal of that version is the
//!   writer (an event whose insert is not in the feed — written before the
//!   feed was on, or vacuumed away — has no known writer and is refused);
//! - every later insert, update or delete of a row with that `event_id` is
//!   by the writer, or by a bridge (claims and status updates) that left
//!   what the event asks for unchanged; anything else refuses the event;
//! - what is applied is what the writer last wrote.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{Mutex, OnceCell};

use crate::databricks::statements::{JsonResult, Parameter, StatementError};
use crate::databricks::{DatabricksError, Workspace};

use super::event::SyncEvent;
use super::events_table::{EventsError, EventsTable};

/// One committed version of the events table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Version {
    pub version: i64,
    pub user_name: String,
    pub operation: String,
    pub parameters: String,
}

/// What an event asks for: the columns that decide what is applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ask {
    pub operation: String,
    pub source_table: String,
    pub target_table: String,
    pub primary_keys: Vec<String>,
    pub filter: Option<String>,
    pub columns: Option<Vec<String>>,
    pub requested_by: Option<String>,
}

impl Ask {
    pub fn of(e: &SyncEvent) -> Ask {
        Ask {
            operation: e.operation.clone(),
            source_table: e.source_table.clone(),
            target_table: e.target_table.clone(),
            primary_keys: e.primary_keys.clone(),
            filter: e.filter.clone(),
            columns: e.columns.clone(),
            requested_by: e.requested_by.clone(),
        }
    }
}

/// One row change of the feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub event_id: String,
    /// `insert`, `update_preimage`, `update_postimage` or `delete`.
    pub change_type: String,
    pub version: i64,
    pub ask: Ask,
}

/// Why an event's writer is not established.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unproven(pub String);

/// The writer of `event` (the principal that inserted it, or last wrote
/// what it asks), given its changes and the versions' principals; `bridge`
/// says whether a principal is a bridge's.
pub fn writer_of(
    event: &SyncEvent,
    changes: &[Change],
    versions: &BTreeMap<i64, Version>,
    bridge: impl Fn(&str) -> bool,
) -> Result<String, Unproven> {
    let who = |v: i64| -> Result<&str, Unproven> {
        versions
            .get(&v)
            .map(|h| h.user_name.as_str())
            .filter(|u| !u.trim().is_empty())
            .ok_or_else(|| {
                Unproven(format!(
                    "the events table's history has no principal for version {v}"
                ))
            })
    };
    let mut mine: Vec<&Change> = changes
        .iter()
        .filter(|c| c.event_id == event.event_id && c.change_type != "update_preimage")
        .collect();
    mine.sort_by_key(|c| c.version);
    let first = mine.first().ok_or_else(|| {
        Unproven(
            "its insert is not in the events table's change data feed (written before the feed was on, or no longer kept), so who wrote it is unknown".into(),
        )
    })?;
    if first.change_type != "insert" {
        return Err(Unproven(format!(
            "its first change in the feed is an {} at version {}, not its insert, so who wrote it is unknown",
            first.change_type, first.version
        )));
    }
    let writer = who(first.version)?.to_string();
    let mut asked = &first.ask;
    for c in &mine[1..] {
        let by = who(c.version)?;
        let same_writer = by.trim().eq_ignore_ascii_case(writer.trim());
        if same_writer {
            if c.change_type == "delete" {
                continue;
            }
            asked = &c.ask;
            continue;
        }
        if bridge(by) && c.change_type == "update_postimage" && c.ask == *asked {
            continue; // a claim or a status update
        }
        return Err(Unproven(format!(
            "it was written by {writer} but changed by {by} ({} at version {})",
            c.change_type.replace('_', " "),
            c.version
        )));
    }
    if *asked != Ask::of(event) {
        return Err(Unproven(format!(
            "the row read differs from what {writer} last wrote (changed while being checked); it will be looked at again"
        )));
    }
    Ok(writer)
}

/// Where the change data feed can be read from within `history` (the
/// versions still kept, any order): the version that last turned
/// `delta.enableChangeDataFeed` on, or — when no version there turns it on
/// or off and it is on now (`on_now`) — the oldest version there. `None`
/// when it is off. Databricks' own advice for the missing-change-data error
/// is to look this up in `DESCRIBE HISTORY`.
pub fn feed_start(history: &[Version], on_now: bool) -> Option<i64> {
    let mut sorted: Vec<&Version> = history.iter().collect();
    sorted.sort_by_key(|v| v.version);
    let mut start = on_now.then(|| sorted.first().map(|v| v.version)).flatten();
    let mut toggled = false;
    for v in sorted {
        let p = v.parameters.to_ascii_lowercase().replace([' ', '\\'], "");
        if let Some(i) = p.find("delta.enablechangedatafeed") {
            let after = &p[i + "delta.enablechangedatafeed".len()..];
            let value = after.trim_start_matches(['"', ':', '=', '\'']);
            if value.starts_with("true") {
                // Turning it on again while on changes nothing.
                if !toggled || start.is_none() {
                    start = Some(v.version);
                }
                toggled = true;
            } else if value.starts_with("false") {
                start = None;
                toggled = true;
            }
        }
    }
    start
}

/// How long VACUUM keeps a Delta table's change data files when the table
/// does not say (`delta.deletedFileRetentionDuration`, default `interval 1
/// week`: https://docs.databricks.com/en/delta/table-properties.html).
const DEFAULT_FILE_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// How often the events table's history and properties are read again
/// when nothing asks for a version not yet known.
const REFRESH_EVERY: Duration = Duration::from_secs(5);

/// A Delta interval property (`interval 1 week`, `interval 168 hours`).
fn parse_interval(text: &str) -> Option<Duration> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_prefix("interval").unwrap_or(&t).trim().to_string();
    let mut words = t.split_whitespace();
    let mut total = 0u64;
    while let Some(n) = words.next() {
        let n: u64 = n.parse().ok()?;
        let secs = match words.next()?.trim_end_matches('s') {
            "second" | "sec" => 1,
            "minute" | "min" => 60,
            "hour" => 3600,
            "day" => 86_400,
            "week" => 7 * 86_400,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(secs)?)?;
    }
    (total > 0).then(|| Duration::from_secs(total))
}

/// What the bridge knows of the events table's history: the versions in
/// the change data window (a version's principal never changes, so they
/// are kept between polls and only newer ones are read), the window's
/// length and whether the feed is on.
#[derive(Default)]
struct Window {
    versions: BTreeMap<i64, Version>,
    /// Versions' commit times (the workspace's clock).
    times: BTreeMap<i64, chrono::NaiveDateTime>,
    retention: Option<Duration>,
    feed_on: bool,
    /// The workspace's time at the last refresh, and when (our clock) that was.
    server_now: Option<chrono::NaiveDateTime>,
    refreshed: Option<std::time::Instant>,
}

impl Window {
    /// The first version whose change data is within the retention
    /// (less `margin`), where the feed is on.
    fn start(&self, margin: Duration) -> Option<i64> {
        let retention = self.retention.unwrap_or(DEFAULT_FILE_RETENTION);
        let keep = retention.saturating_sub(margin);
        let now = self.server_now?;
        let from = now - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
        let first_kept = self
            .times
            .iter()
            .find(|(_, t)| **t >= from)
            .map(|(v, _)| *v)
            // Nothing committed within the window: only newer versions count.
            .unwrap_or_else(|| self.versions.keys().next_back().map_or(0, |v| v + 1));
        let history: Vec<Version> = self.versions.values().cloned().collect();
        let feed = feed_start(&history, self.feed_on)?;
        Some(first_kept.max(feed))
    }
}

/// Learns events' writers: the bridge's own principal (SCIM Me, once) and
/// the events table's change data feed and history, read only as far back
/// as the feed's files are kept. An event whose insert is older than that
/// (the bridge was down longer than VACUUM's retention) has no provable
/// writer and is refused with that reason; the others go on.
pub struct EventWriters {
    ws: Workspace,
    me: OnceCell<String>,
    window: Mutex<Window>,
}

/// Why a writer could not be learned.
#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("{0}")]
    Unproven(#[from] Unproven),
    #[error("cannot learn the bridge's own Databricks principal: {0}")]
    Me(DatabricksError),
    #[error(transparent)]
    Events(#[from] EventsError),
}

/// Whether Databricks refused to read the change data feed because that
/// part of it is gone or was never recorded (log cleaned up, files
/// vacuumed, feed off): the event is then unprovable, not the poll broken.
fn history_gone(e: &EventsError) -> bool {
    let EventsError::Statement {
        source: StatementError::Failed { code, message },
        ..
    } = e
    else {
        return false;
    };
    [
        "DELTA_CHANGE_DATA_FILE_NOT_FOUND",
        "DELTA_VERSION_NOT_FOUND",
        "DELTA_MISSING_CHANGE_DATA",
        "DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION",
        "DELTA_TRUNCATED_TRANSACTION_LOG",
        "DELTA_MISSING_FILES_UNEXPECTED_VERSION",
        "VersionNotFoundException",
    ]
    .iter()
    .any(|k| code.contains(k) || message.contains(k))
}

impl EventWriters {
    pub fn new(ws: Workspace) -> EventWriters {
        EventWriters {
            ws,
            me: OnceCell::new(),
            window: Mutex::new(Window::default()),
        }
    }

    /// The principal this bridge writes to Databricks as.
    pub async fn me(&self) -> Result<&str, WriterError> {
        self.me
            .get_or_try_init(|| self.ws.current_principal())
            .await
            .map(String::as_str)
            .map_err(WriterError::Me)
    }

    /// Reads the versions committed since the last refresh (all those in
    /// the window the first time), the retention and the feed's switch,
    /// and forgets versions that left the window.
    async fn refresh(&self, table: &EventsTable, w: &mut Window) -> Result<(), WriterError> {
        let (props, server_now) = table.properties_and_now().await?;
        let prop = |k: &str| {
            props
                .iter()
                .find(|(p, _)| p.eq_ignore_ascii_case(k))
                .map(|(_, v)| v.as_str())
        };
        w.retention = prop("delta.deletedFileRetentionDuration").and_then(parse_interval);
        w.feed_on = prop("delta.enableChangeDataFeed").is_some_and(|v| v.trim() == "true");
        w.server_now = server_now;
        let retention = w.retention.unwrap_or(DEFAULT_FILE_RETENTION);
        let oldest_wanted = server_now
            .map(|n| n - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX));
        let known = w.versions.keys().next_back().copied();
        // Newest first: ask for a page, then a larger one, until the
        // versions already known or the window's start are reached.
        let mut limit = 64usize;
        loop {
            let page = table.history(Some(limit)).await?;
            let reached_known = known.is_some_and(|k| page.iter().any(|v| v.0.version <= k));
            let reached_start = page.len() < limit
                || oldest_wanted
                    .zip(page.last().and_then(|v| v.1))
                    .is_some_and(|(o, t)| t < o);
            if reached_known || reached_start || limit >= 1 << 20 {
                for (v, t) in page {
                    if let Some(t) = t {
                        w.times.insert(v.version, t);
                    }
                    w.versions.insert(v.version, v);
                }
                break;
            }
            limit *= 4;
        }
        // Versions older than the window are of no more use (the feed's
        // files of them may be vacuumed): keep the last one before it only.
        if let Some(o) = oldest_wanted {
            let before: Vec<i64> = w
                .times
                .iter()
                .filter(|(_, t)| **t < o)
                .map(|(v, _)| *v)
                .collect();
            if let Some((_, older)) = before.split_last() {
                for v in older {
                    w.times.remove(v);
                    w.versions.remove(v);
                }
            }
        }
        w.refreshed = Some(std::time::Instant::now());
        Ok(())
    }

    /// The principal that wrote `event` (see the module's rules); `bridge`
    /// says whether a principal is a bridge's (this one's included).
    pub async fn writer(
        &self,
        table: &EventsTable,
        event: &SyncEvent,
        bridge: impl Fn(&str) -> bool,
    ) -> Result<String, WriterError> {
        let mut all = self
            .writers(table, std::slice::from_ref(event), bridge)
            .await?;
        Ok(all.remove(0)?)
    }

    /// The writer of each of `events` (or why it cannot be proven), from
    /// one read of the change data feed per hundred events.
    pub async fn writers(
        &self,
        table: &EventsTable,
        events: &[SyncEvent],
        bridge: impl Fn(&str) -> bool,
    ) -> Result<Vec<Result<String, Unproven>>, WriterError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.window.lock().await;
        if w.refreshed.is_none_or(|r| r.elapsed() > REFRESH_EVERY) {
            self.refresh(table, &mut w).await?;
        }
        let every = |why: Unproven| events.iter().map(|_| Err(why.clone())).collect();
        let ids: Vec<&str> = events.iter().map(|e| e.event_id.as_str()).collect();
        // First from the oldest change data kept; should VACUUM have just
        // removed some of it, again from an hour later.
        let mut read = None;
        for margin in [Duration::ZERO, Duration::from_secs(3600)] {
            let Some(start) = w.start(margin) else {
                return Ok(every(Unproven(format!(
                    "the change data feed of {} is off, so who wrote the event is unknown; run `sql-databricks-bridge sync init` to turn it on, then submit the event again",
                    table.name()
                ))));
            };
            let mut changes = Vec::new();
            let mut gone = false;
            for chunk in ids.chunks(100) {
                match table.changes(start, chunk).await {
                    Ok(c) => changes.extend(c),
                    Err(e) if history_gone(&e) => {
                        tracing::debug!(error = %e, start, "change data gone; reading a later window");
                        gone = true;
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            if !gone {
                read = Some((start, changes));
                break;
            }
            self.refresh(table, &mut w).await?;
        }
        let Some((start, changes)) = read else {
            return Ok(every(Unproven(format!(
                "the change data feed of {} cannot be read as far back as its retention says, so who wrote the event can no longer be proven; submit it again",
                table.name()
            ))));
        };
        if !changes.iter().all(|c| w.versions.contains_key(&c.version)) {
            self.refresh(table, &mut w).await?;
        }
        let expired = || {
            let retention = w.retention.unwrap_or(DEFAULT_FILE_RETENTION);
            let since = w
                .times
                .get(&start)
                .map(|t| format!(", committed {} UTC", t.format("%Y-%m-%d %H:%M:%S")))
                .unwrap_or_default();
            Unproven(format!(
                "who wrote the event can no longer be proven: its insert is older than the oldest change data the events table keeps (version {start}{since}; change data is kept {} days, delta.deletedFileRetentionDuration); submit it again",
                retention.as_secs() / 86_400
            ))
        };
        Ok(events
            .iter()
            .map(
                |event| match writer_of(event, &changes, &w.versions, &bridge) {
                    Ok(writer) => Ok(writer),
                    Err(_)
                        if !changes
                            .iter()
                            .any(|c| c.change_type == "insert" && c.event_id == event.event_id) =>
                    {
                        Err(expired())
                    }
                    Err(why) => Err(why),
                },
            )
            .collect())
    }
}

/// A timestamp as the Statement Execution API writes it (`2026-01-02
/// 03:04:05.678`, or ISO 8601 with `T` and an offset).
fn parse_time(text: &str) -> Option<chrono::NaiveDateTime> {
    let t = text.trim();
    chrono::DateTime::parse_from_rfc3339(t)
        .map(|d| d.naive_utc())
        .ok()
        .or_else(|| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").ok())
        .or_else(|| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").ok())
}

fn column(r: &JsonResult, name: &str) -> Option<usize> {
    r.columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(name))
}

fn cell(r: &JsonResult, row: &[Option<String>], name: &str) -> Option<String> {
    column(r, name).and_then(|i| row.get(i).cloned().flatten())
}

impl EventsTable {
    /// The newest `limit` versions of the table (all with `None`), newest
    /// first, with their commit times (`DESCRIBE HISTORY ... LIMIT n`).
    pub async fn history(
        &self,
        limit: Option<usize>,
    ) -> Result<Vec<(Version, Option<chrono::NaiveDateTime>)>, EventsError> {
        let limit = limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default();
        let r = self
            .run(&format!("DESCRIBE HISTORY {}{limit}", self.quoted()), &[])
            .await?;
        let mut out = Vec::with_capacity(r.rows.len());
        for row in &r.rows {
            let Some(version) = cell(&r, row, "version").and_then(|v| v.parse().ok()) else {
                continue;
            };
            let time = cell(&r, row, "timestamp").and_then(|t| parse_time(&t));
            out.push((
                Version {
                    version,
                    user_name: cell(&r, row, "userName").unwrap_or_default(),
                    operation: cell(&r, row, "operation").unwrap_or_default(),
                    parameters: cell(&r, row, "operationParameters").unwrap_or_default(),
                },
                time,
            ));
        }
        Ok(out)
    }

    /// The table's properties (`SHOW TBLPROPERTIES`) and the workspace's
    /// time, which VACUUM's retention is counted on.
    pub async fn properties_and_now(
        &self,
    ) -> Result<(Vec<(String, String)>, Option<chrono::NaiveDateTime>), EventsError> {
        let r = self
            .run(&format!("SHOW TBLPROPERTIES {}", self.quoted()), &[])
            .await?;
        let props = r
            .rows
            .iter()
            .filter_map(|row| Some((row.first()?.clone()?, row.get(1)?.clone()?)))
            .collect();
        let now = self
            .run("SELECT CAST(current_timestamp() AS STRING)", &[])
            .await?
            .rows
            .first()
            .and_then(|row| row.first().cloned().flatten())
            .and_then(|t| parse_time(&t));
        Ok((props, now))
    }

    /// The feed's changes of these events since version `start`.
    pub async fn changes(&self, start: i64, ids: &[&str]) -> Result<Vec<Change>, EventsError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut params = vec![Parameter::new("events_table", self.name())];
        let marks: Vec<String> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                params.push(Parameter::new(&format!("id{i}"), *id));
                format!(":id{i}")
            })
            .collect();
        let sql = format!(
            "SELECT event_id, operation, source_table, target_table, primary_keys, filter, columns, \
             requested_by, _change_type, _commit_version \
             FROM table_changes(:events_table, {start}) WHERE event_id IN ({}) \
             ORDER BY _commit_version",
            marks.join(", ")
        );
        let r = self.run(&sql, &params).await?;
        let mut out = Vec::with_capacity(r.rows.len());
        for row in &r.rows {
            let get = |n: &str| cell(&r, row, n);
            let list = |n: &str| get(n).map(|v| super::events_table::parse_array(&v));
            let Some(version) = get("_commit_version").and_then(|v| v.parse().ok()) else {
                continue;
            };
            out.push(Change {
                event_id: get("event_id").unwrap_or_default(),
                change_type: get("_change_type").unwrap_or_default(),
                version,
                ask: Ask {
                    operation: get("operation").unwrap_or_default(),
                    source_table: get("source_table").unwrap_or_default(),
                    target_table: get("target_table").unwrap_or_default(),
                    primary_keys: list("primary_keys").unwrap_or_default(),
                    filter: get("filter").filter(|f| !f.trim().is_empty()),
                    columns: list("columns").filter(|c| !c.is_empty()),
                    requested_by: get("requested_by"),
                },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::EventStatus;

    fn event(id: &str, requested_by: &str, op: &str) -> SyncEvent {
        let mut e = SyncEvent::direct(op, "main.demo.t", "KWP_Colombia.dbo.T", vec!["id".into()]);
        e.event_id = id.into();
        e.requested_by = Some(requested_by.into());
        e.status = EventStatus::Pending;
        e
    }

    fn change(e: &SyncEvent, kind: &str, version: i64) -> Change {
        Change {
            event_id: e.event_id.clone(),
            change_type: kind.into(),
            version,
            ask: Ask::of(e),
        }
    }

    fn versions(v: &[(i64, &str)]) -> BTreeMap<i64, Version> {
        v.iter()
            .map(|(n, u)| {
                (
                    *n,
                    Version {
                        version: *n,
                        user_name: u.to_string(),
                        operation: "WRITE".into(),
                        parameters: String::new(),
                    },
                )
            })
            .collect()
    }

    const BRIDGE: &str = "bridge-sp";

    fn is_bridge(p: &str) -> bool {
        p == BRIDGE
    }

    #[test]
    fn the_inserting_principal_is_the_writer_and_bridge_claims_do_not_change_it() {
        let e = event("e1", "proyecto-colombia", "INSERT");
        let changes = [
            change(&e, "insert", 3),
            change(&e, "update_preimage", 4),
            change(&e, "update_postimage", 4),
        ];
        let v = versions(&[(3, "ana@co.example"), (4, BRIDGE)]);
        assert_eq!(
            writer_of(&e, &changes, &v, is_bridge).unwrap(),
            "ana@co.example"
        );
    }

    #[test]
    fn a_change_by_anyone_else_refuses_the_event() {
        let inserted = event("e1", "proyecto-colombia", "INSERT");
        let mut now = inserted.clone();
        now.operation = "DELETE".into();
        let changes = [
            change(&inserted, "insert", 3),
            change(&now, "update_postimage", 5),
        ];
        let v = versions(&[(3, "ana@co.example"), (5, "mallory@mx.example")]);
        let why = writer_of(&now, &changes, &v, is_bridge).unwrap_err().0;
        assert!(why.contains("changed by mallory@mx.example"), "{why}");
        // The writer may change their own event.
        let v = versions(&[(3, "ana@co.example"), (5, "ana@co.example")]);
        assert_eq!(
            writer_of(&now, &changes, &v, is_bridge).unwrap(),
            "ana@co.example"
        );
        // A bridge may not change what it asks.
        let v = versions(&[(3, "ana@co.example"), (5, BRIDGE)]);
        assert!(writer_of(&now, &changes, &v, is_bridge).is_err());
        // A second row with the same id by someone else.
        let changes = [
            change(&inserted, "insert", 3),
            change(&inserted, "insert", 6),
        ];
        let v = versions(&[(3, "ana@co.example"), (6, "mallory@mx.example")]);
        assert!(writer_of(&inserted, &changes, &v, is_bridge).is_err());
    }

    #[test]
    fn no_insert_in_the_feed_means_no_writer() {
        let e = event("e1", "proyecto-colombia", "INSERT");
        let v = versions(&[(4, BRIDGE)]);
        assert!(writer_of(&e, &[], &v, is_bridge).is_err());
        let changes = [change(&e, "update_postimage", 4)];
        assert!(writer_of(&e, &changes, &v, is_bridge).is_err());
        // A version the history does not name.
        let changes = [change(&e, "insert", 9)];
        assert!(writer_of(&e, &changes, &v, is_bridge).is_err());
    }

    #[test]
    fn what_is_applied_must_be_what_the_writer_wrote() {
        let inserted = event("e1", "proyecto-colombia", "INSERT");
        let mut read = inserted.clone();
        read.target_table = "KWP_Mexico.dbo.T".into();
        let changes = [change(&inserted, "insert", 3)];
        let v = versions(&[(3, "ana@co.example")]);
        assert!(writer_of(&read, &changes, &v, is_bridge).is_err());
    }

    #[test]
    fn the_feed_starts_where_it_was_last_turned_on() {
        let h = |v: i64, op: &str, p: &str| Version {
            version: v,
            user_name: "u".into(),
            operation: op.into(),
            parameters: p.into(),
        };
        let on = |v: i64| {
            h(
                v,
                "SET TBLPROPERTIES",
                "{\"properties\":\"{\\\"delta.enableChangeDataFeed\\\":\\\"true\\\"}\"}",
            )
        };
        let off = |v: i64| {
            h(
                v,
                "SET TBLPROPERTIES",
                "{\"properties\":\"{\\\"delta.enableChangeDataFeed\\\":\\\"false\\\"}\"}",
            )
        };
        let write = |v: i64| h(v, "WRITE", "{}");
        assert_eq!(
            feed_start(
                &[
                    h(0, "CREATE TABLE", "{\"properties\":\"{}\"}"),
                    write(1),
                    on(2)
                ],
                true
            ),
            Some(2)
        );
        assert_eq!(feed_start(&[on(0), off(3)], false), None);
        assert_eq!(feed_start(&[on(0), off(3), on(5), write(6)], true), Some(5));
        assert_eq!(feed_start(&[h(0, "CREATE TABLE", "{}")], false), None);
        // The version that turned it on has left the kept history: it is
        // on now and nothing kept turned it off, so from the oldest kept.
        assert_eq!(
            feed_start(&[write(41), write(40), write(42)], true),
            Some(40)
        );
        assert_eq!(feed_start(&[write(41)], false), None);
    }

    #[test]
    fn delta_intervals_are_read() {
        assert_eq!(
            parse_interval("interval 1 week"),
            Some(Duration::from_secs(7 * 86_400))
        );
        assert_eq!(
            parse_interval("interval 36 hours"),
            Some(Duration::from_secs(36 * 3600))
        );
        assert_eq!(parse_interval("soon"), None);
    }

    #[test]
    fn the_window_starts_at_the_oldest_version_whose_change_data_is_kept() {
        let t = |d: i64| {
            chrono::NaiveDate::from_ymd_opt(2026, 1, 1)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                + chrono::Duration::days(d)
        };
        let mut w = Window {
            feed_on: true,
            server_now: Some(t(40)),
            ..Window::default()
        };
        for (v, day) in [(10, 20), (11, 32), (12, 34), (13, 39)] {
            w.versions.insert(
                v,
                Version {
                    version: v,
                    user_name: "u".into(),
                    operation: "WRITE".into(),
                    parameters: "{}".into(),
                },
            );
            w.times.insert(v, t(day));
        }
        // Default retention 7 days: day 33 on.
        assert_eq!(w.start(Duration::ZERO), Some(12));
        w.retention = Some(Duration::from_secs(10 * 86_400));
        assert_eq!(w.start(Duration::ZERO), Some(11));
        assert_eq!(w.start(Duration::from_secs(3 * 86_400)), Some(12));
        // Nothing within the window: only what comes next.
        w.retention = Some(Duration::from_secs(3600));
        assert_eq!(w.start(Duration::ZERO), Some(14));
        w.feed_on = false;
        assert_eq!(w.start(Duration::ZERO), None);
    }
}
