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

use std::collections::HashMap;

use tokio::sync::{Mutex, OnceCell};

use crate::databricks::statements::{JsonResult, Parameter};
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
    versions: &HashMap<i64, Version>,
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

/// Where the change data feed of the table starts: the version that last
/// turned `delta.enableChangeDataFeed` on from off (`None` when it is off
/// now). Databricks' own advice for the missing-change-data error
/// is to look this up in `DESCRIBE HISTORY`.
pub fn feed_start(history: &[Version]) -> Option<i64> {
    let mut sorted: Vec<&Version> = history.iter().collect();
    sorted.sort_by_key(|v| v.version);
    let mut start = None;
    for v in sorted {
        let p = v.parameters.to_ascii_lowercase().replace([' ', '\\'], "");
        if let Some(i) = p.find("delta.enablechangedatafeed") {
            let after = &p[i + "delta.enablechangedatafeed".len()..];
            let value = after.trim_start_matches(['"', ':', '=', '\'']);
            if value.starts_with("true") {
                // Turning it on again while on changes nothing.
                start = start.or(Some(v.version));
            } else if value.starts_with("false") {
                start = None;
            }
        }
    }
    start
}

/// Learns events' writers: the bridge's own principal (SCIM Me, once) and
/// the events table's history, kept between polls (a version's principal
/// never changes) and read again when a change names a version it lacks.
pub struct EventWriters {
    ws: Workspace,
    me: OnceCell<String>,
    versions: Mutex<HashMap<i64, Version>>,
    start: Mutex<Option<i64>>,
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

impl EventWriters {
    pub fn new(ws: Workspace) -> EventWriters {
        EventWriters {
            ws,
            me: OnceCell::new(),
            versions: Mutex::new(HashMap::new()),
            start: Mutex::new(None),
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

    async fn refresh(&self, table: &EventsTable) -> Result<Option<i64>, WriterError> {
        let history = table.history().await?;
        let start = feed_start(&history);
        let mut versions = self.versions.lock().await;
        versions.extend(history.into_iter().map(|v| (v.version, v)));
        *self.start.lock().await = start;
        Ok(start)
    }

    /// The principal that wrote `event` (see the module's rules); `bridge`
    /// says whether a principal is a bridge's (this one's included).
    pub async fn writer(
        &self,
        table: &EventsTable,
        event: &SyncEvent,
        bridge: impl Fn(&str) -> bool,
    ) -> Result<String, WriterError> {
        let mut start = *self.start.lock().await;
        if start.is_none() || self.versions.lock().await.is_empty() {
            start = self.refresh(table).await?;
        }
        let off = || {
            Unproven(format!(
                "the change data feed of {} is off, so who wrote the event is unknown; run `sql-databricks-bridge sync init` to turn it on, then submit the event again",
                table.name()
            ))
        };
        let mut changes = table
            .changes(start.ok_or_else(off)?, &[&event.event_id])
            .await?;
        let known = {
            let v = self.versions.lock().await;
            changes.iter().all(|c| v.contains_key(&c.version))
        };
        if !known {
            let fresh = self.refresh(table).await?;
            if fresh != start {
                changes = table
                    .changes(fresh.ok_or_else(off)?, &[&event.event_id])
                    .await?;
            }
        }
        let versions = self.versions.lock().await;
        Ok(writer_of(event, &changes, &versions, bridge)?)
    }
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
    /// Every version of the table (`DESCRIBE HISTORY`).
    pub async fn history(&self) -> Result<Vec<Version>, EventsError> {
        let r = self
            .run(&format!("DESCRIBE HISTORY {}", self.quoted()), &[])
            .await?;
        let mut out = Vec::with_capacity(r.rows.len());
        for row in &r.rows {
            let Some(version) = cell(&r, row, "version").and_then(|v| v.parse().ok()) else {
                continue;
            };
            out.push(Version {
                version,
                user_name: cell(&r, row, "userName").unwrap_or_default(),
                operation: cell(&r, row, "operation").unwrap_or_default(),
                parameters: cell(&r, row, "operationParameters").unwrap_or_default(),
            });
        }
        Ok(out)
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

    fn versions(v: &[(i64, &str)]) -> HashMap<i64, Version> {
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
        assert_eq!(
            feed_start(&[
                h(0, "CREATE TABLE", "{\"properties\":\"{}\"}"),
                h(1, "WRITE", "{}"),
                h(
                    2,
                    "SET TBLPROPERTIES",
                    "{\"properties\":\"{\\\"delta.enableChangeDataFeed\\\":\\\"true\\\"}\"}"
                ),
            ]),
            Some(2)
        );
        assert_eq!(
            feed_start(&[
                h(
                    0,
                    "CREATE TABLE",
                    "{\"properties\":\"{\\\"delta.enableChangeDataFeed\\\":\\\"true\\\"}\"}"
                ),
                h(
                    3,
                    "SET TBLPROPERTIES",
                    "{\"properties\":\"{\\\"delta.enableChangeDataFeed\\\":\\\"false\\\"}\"}"
                ),
            ]),
            None
        );
        assert_eq!(feed_start(&[h(0, "CREATE TABLE", "{}")]), None);
    }
}
