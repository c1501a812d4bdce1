//! The poller: claims the pending events routed to this bridge, proves who
//! wrote each and for which user, applies it through `SyncCore` under a
//! renewed claim, and records or releases it — audited either way.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{
    provenance, sql_error, target, Authority, Claim, EventStatus, EventWriters, EventsTable,
    Operation, Refusal, Routing, SyncCore, SyncError, SyncEvent, TargetTable,
};
use crate::auth::{AuditEvent, AuditLog, EventType, LakehouseRights, Permissions, User};
use crate::metrics::Counter;
use crate::sqlserver::home::HomeDatabase;
use crate::sqlserver::pool;

/// How the poller runs.
#[derive(Clone, Debug)]
pub struct PollerConfig {
    /// Written to `claimed_by`; unique per running bridge.
    pub instance_id: String,
    /// A claim older than this is taken over (its holder is presumed dead).
    pub lease: Duration,
    pub interval: Duration,
    /// Events looked at per poll.
    pub batch: usize,
    /// Test hook: exit the process right after a commit, before the
    /// status is recorded (`BRIDGE_FAULT_EXIT_AFTER_COMMIT=1`), to prove
    /// the ledger makes the next run complete without applying again.
    pub exit_after_commit: bool,
    /// The databases whose events this bridge takes; `None`: every
    /// database its SQL Server login sees (`sys.databases`).
    pub databases: Option<Vec<String>>,
    /// Take events whose target names no database (written into this
    /// bridge's own). With several bridges on one events table, one of
    /// them at most should.
    pub unqualified_targets: bool,
    /// After this many attempts ending in a transient failure an event
    /// fails; before, it is released for a later poll.
    pub max_attempts: i64,
}

impl PollerConfig {
    pub fn instance_id() -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "bridge".into());
        format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        )
    }
}

/// What one poll did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct PollSummary {
    pub seen: usize,
    pub claimed: usize,
    pub completed: usize,
    pub failed: usize,
    /// Targets in a database this server does not hold (left for others).
    pub skipped: usize,
    /// Given back after a transient failure, to be tried again.
    pub released: usize,
}

/// What became of a claimed event.
enum Handled {
    Completed,
    Failed,
    Released,
}

/// Whether `routing` gives this event's target to this bridge (the exact
/// check after the query's narrowing): a named database it holds, or no
/// database when it takes those. Unreadable targets go to the bridge that
/// takes unqualified ones, which fails them with the reason.
fn routes_here(e: &SyncEvent, routing: &Routing) -> bool {
    match TargetTable::parse(&e.target_table) {
        Ok(TargetTable {
            database: Some(d), ..
        }) => routing
            .databases
            .iter()
            .any(|h| h.trim_end().eq_ignore_ascii_case(d.trim_end())),
        _ => routing.unqualified,
    }
}

/// What the poller has done, for `/metrics`.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Events by outcome (`completed`, `failed`).
    pub events: Counter,
    /// Rows SQL Server reported affected by completed events.
    pub rows: Counter,
}

#[derive(Clone)]
pub struct Poller {
    pub core: SyncCore,
    pub events: EventsTable,
    pub permissions: Arc<Permissions>,
    pub audit: Arc<AuditLog>,
    pub config: PollerConfig,
    pub stats: Arc<SyncStats>,
    /// Who wrote each event, from the events table's feed and history.
    pub writers: Arc<EventWriters>,
    /// Users' rights on the Databricks side.
    pub lakehouse: Arc<LakehouseRights>,
    /// The database targets without one are written in.
    pub home: Arc<HomeDatabase>,
}

impl Poller {
    fn audit(&self, t: EventType, e: &SyncEvent, detail: String) {
        let mut line =
            AuditEvent::new(t, e.target_table.clone(), &e.operation.to_ascii_lowercase())
                .detail(format!("event {}: {detail}", e.event_id));
        if let Some(u) = &e.requested_by {
            line = line.user(u.clone());
        }
        self.audit.record(line);
    }

    /// Claims and applies what is pending, once.
    pub async fn run_once(&self) -> Result<PollSummary, SyncError> {
        let cfg = &self.config;
        let routing = self.routing().await?;
        let events = self
            .events
            .claimable(cfg.lease, cfg.batch, &routing)
            .await?;
        let mut s = PollSummary {
            seen: events.len(),
            ..PollSummary::default()
        };
        for e in events {
            if !routes_here(&e, &routing) {
                s.skipped += 1;
                continue;
            }
            match self
                .events
                .claim(&e.event_id, &cfg.instance_id, cfg.lease)
                .await?
            {
                Claim::Won => {}
                Claim::Lost => continue,
                Claim::Duplicated(n) => {
                    // Which row is meant cannot be told: all are refused,
                    // and each asker must send its own id.
                    s.claimed += 1;
                    s.failed += 1;
                    let why = format!(
                        "refused: event_id {} is on {n} rows of the events table; an event needs an event_id of its own (insert it again with a new one)",
                        e.event_id
                    );
                    tracing::warn!(event = e.event_id, "{why}");
                    self.stats.events.add("outcome=\"failed\"", 1);
                    self.events
                        .finish(
                            &e.event_id,
                            &cfg.instance_id,
                            EventStatus::Failed,
                            None,
                            None,
                            Some(&why),
                        )
                        .await?;
                    self.audit(EventType::SyncEventRefused, &e, why);
                    continue;
                }
            }
            s.claimed += 1;
            self.audit(
                EventType::SyncEventClaimed,
                &e,
                format!("claimed by {}", cfg.instance_id),
            );
            match self.handle(&e).await? {
                Handled::Completed => s.completed += 1,
                Handled::Failed => s.failed += 1,
                Handled::Released => s.released += 1,
            }
        }
        Ok(s)
    }

    /// The databases this bridge takes events for.
    async fn routing(&self) -> Result<Routing, SyncError> {
        let databases = match &self.config.databases {
            Some(d) => d.clone(),
            None => {
                let mut conn = pool::get(&self.core.pool).await?;
                target::databases(&mut conn).await.map_err(sql_error)?
            }
        };
        Ok(Routing {
            databases,
            unqualified: self.config.unqualified_targets,
        })
    }

    /// Applies one claimed event and records the outcome. The claim is
    /// renewed every third of the lease while it applies, so a long event is
    /// not taken over.
    async fn handle(&self, e: &SyncEvent) -> Result<Handled, SyncError> {
        let me = &self.config.instance_id;
        let work = async {
            let user = self.identify(e).await?;
            let database = self.home.name().await?;
            let plan = self
                .core
                .plan(
                    e,
                    Authority::User {
                        user,
                        database,
                        lakehouse: &self.lakehouse,
                    },
                )
                .await?;
            self.core.execute(&plan).await
        };
        tokio::pin!(work);
        let mut beat =
            tokio::time::interval((self.config.lease / 3).max(Duration::from_millis(100)));
        beat.tick().await;
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = beat.tick() => match self.events.renew(&e.event_id, me).await {
                    Ok(true) => {}
                    Ok(false) => tracing::warn!(
                        event = e.event_id,
                        "the claim was taken over while applying; the ledger keeps the event from being applied twice"
                    ),
                    Err(err) => tracing::warn!(event = e.event_id, error = %err, "renewing the claim failed"),
                },
            }
        };
        match result {
            Ok(o) => {
                if self.config.exit_after_commit && !o.from_ledger {
                    tracing::error!(event = e.event_id, "fault hook: exiting after commit");
                    self.audit.flush();
                    std::process::exit(86);
                }
                let recorded = self
                    .events
                    .finish(
                        &e.event_id,
                        me,
                        EventStatus::Completed,
                        Some(o.rows_expected),
                        Some(o.rows_affected),
                        None,
                    )
                    .await?;
                let mut detail = format!(
                    "{} rows read, {} affected{}",
                    o.rows_expected,
                    o.rows_affected,
                    if o.from_ledger {
                        " (already in the ledger: not applied again)"
                    } else {
                        ""
                    }
                );
                if let Some(d) = o.discrepancy() {
                    detail.push_str(&format!("; discrepancy {d}"));
                    tracing::warn!(
                        event = e.event_id,
                        discrepancy = d,
                        "rows read and rows affected differ"
                    );
                }
                if !recorded {
                    detail.push_str("; the claim had been taken over, status left to its holder");
                }
                tracing::info!(event = e.event_id, "{detail}");
                self.audit(EventType::SyncEventApplied, e, detail);
                self.stats.events.add("outcome=\"completed\"", 1);
                if !o.from_ledger {
                    self.stats.rows.add(
                        &format!(
                            "operation=\"{}\"",
                            Operation::parse(&e.operation).map_or("?", Operation::as_str)
                        ),
                        o.rows_affected,
                    );
                }
                Ok(Handled::Completed)
            }
            Err(err)
                if err.transient() && e.attempts.unwrap_or(0) + 1 < self.config.max_attempts =>
            {
                let message = err.to_string();
                tracing::warn!(event = e.event_id, error = %message, "transient failure; the event is released for a later poll");
                self.events.release(&e.event_id, me, &message).await?;
                self.audit(
                    EventType::SyncEventFailed,
                    e,
                    format!("{message}; released to be tried again"),
                );
                Ok(Handled::Released)
            }
            Err(err) => {
                let refused = matches!(err, SyncError::Refused(_) | SyncError::Unauthorized { .. });
                let message = err.to_string();
                tracing::warn!(event = e.event_id, error = %message, "sync event failed");
                self.stats.events.add("outcome=\"failed\"", 1);
                self.events
                    .finish(
                        &e.event_id,
                        me,
                        EventStatus::Failed,
                        None,
                        None,
                        Some(&message),
                    )
                    .await?;
                let t = if refused {
                    EventType::SyncEventRefused
                } else {
                    EventType::SyncEventFailed
                };
                match &err {
                    SyncError::Unauthorized {
                        user,
                        object,
                        missing,
                        ..
                    } => self.audit.record(
                        AuditEvent::new(t, object.clone(), &e.operation.to_ascii_lowercase())
                            .user(user.clone())
                            .missing(missing.clone())
                            .detail(format!("event {}: {message}", e.event_id)),
                    ),
                    _ => self.audit(t, e, message),
                }
                Ok(Handled::Failed)
            }
        }
    }

    /// The user an event is applied for: the one its writer — the
    /// Databricks principal that inserted it, learned from the events
    /// table's feed and history — acts for, and that it names in
    /// `requested_by`. Events a bridge wrote (`POST /sync/events`) are for
    /// the token's user the bridge recorded in `requested_by`.
    async fn identify(&self, e: &SyncEvent) -> Result<&User, SyncError> {
        let me = self
            .writers
            .me()
            .await
            .map_err(|w| SyncError::Refused(w.to_string()))?
            .to_string();
        let is_bridge =
            |p: &str| p.trim().eq_ignore_ascii_case(&me) || self.permissions.is_bridge_principal(p);
        let writer = self
            .writers
            .writer(&self.events, e, is_bridge)
            .await
            .map_err(|w| match w {
                provenance::WriterError::Events(x) => SyncError::Events(x),
                other => SyncError::Unauthorized {
                    user: e.requested_by.clone().unwrap_or_default(),
                    object: format!("event {}", e.event_id),
                    missing: "an established writer".into(),
                    why: other.to_string(),
                },
            })?;
        let named = e
            .requested_by
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty());
        if is_bridge(&writer) {
            let name = named
                .ok_or_else(|| Refusal("unauthorized: the event has no requested_by".into()))?;
            return self.permissions.user(name).ok_or_else(|| {
                Refusal(format!(
                    "unauthorized: requested_by '{name}' is not a user in permissions.yaml"
                ))
                .into()
            });
        }
        let acts_for = self.permissions.users_of_principal(&writer);
        let names: Vec<&str> = acts_for.iter().map(|u| u.name.as_str()).collect();
        let denied = |asked: &str, why: String| SyncError::Unauthorized {
            user: names
                .first()
                .map(|n| n.to_string())
                .unwrap_or_else(|| format!("databricks:{writer}")),
            object: format!("user {asked}"),
            missing: format!("Databricks principal {writer} acting for user {asked}"),
            why,
        };
        match named {
            Some(name) => acts_for
                .iter()
                .find(|u| u.name.eq_ignore_ascii_case(name))
                .copied()
                .ok_or_else(|| {
                    denied(
                        name,
                        format!(
                            "the event was written by Databricks principal {writer}, which {} in permissions.yaml, not for '{name}'",
                            if names.is_empty() {
                                "acts for no user".to_string()
                            } else {
                                format!("acts for {}", names.join(", "))
                            }
                        ),
                    )
                }),
            None => match acts_for.as_slice() {
                [only] => Ok(*only),
                _ => Err(denied(
                    "?",
                    format!(
                        "the event names no requested_by and its writer, Databricks principal {writer}, acts for {} users",
                        acts_for.len()
                    ),
                )),
            },
        }
    }

    /// Polls every `interval` until cancelled; errors are logged and the
    /// next poll tries again.
    pub async fn watch(&self, cancel: CancellationToken) {
        loop {
            match self.run_once().await {
                Ok(s) if s.claimed > 0 => tracing::info!(?s, "sync poll"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "sync poll failed; will try again"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(self.config.interval) => {}
            }
        }
    }
}
