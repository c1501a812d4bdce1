//! A seeded simulation of the bridge in production, as FoundationDB and
//! TigerBeetle test themselves: random workloads on both systems, random
//! faults, random jumps of both services' clocks past their retentions, and
//! after every step the invariants that must hold whatever happened:
//!
//! - each Delta table equals its source after a run of it succeeds (full and
//!   Change Tracking exactly; incremental: every source row is there as it is
//!   in SQL Server — deletes are not carried, as documented); an append holds
//!   each successful run's rows once (a failed run's at most once);
//! - the load state is never ahead of the data (an incremental cursor is at
//!   most the highest value in the table; a change-tracking version at most
//!   the current one);
//! - every published output's manifest names a run whose parts are all
//!   there, whole (no reader sees a partial output), however runs overlap;
//! - every sync event is applied exactly once (one ledger row, the target as
//!   expected) or refused with a reason and nothing written; at the end none
//!   is left pending.
//!
//! The workload: source inserts, updates, deletes, rows committed late at
//! the cursor's last value, new columns; extractions in every load mode from
//! two bridges, sometimes two of one output at once; sync events of the four
//! operations written by users' principals and by a bridge for a user,
//! polled by two bridges, sometimes at once. The faults: answers lost after
//! the work was done (statements and files; 502/503/504), 5xx and FAILED
//! before it, deadlocks and dropped connections in SQL Server, Change
//! Tracking cleanup landing between a check and a read. The clocks: days at
//! a time, with VACUUM as an operator (or predictive optimization) runs it.
//!
//! `SIM_SEED` picks one seed (default: the fixed ones below), `SIM_STEPS`
//! the steps per seed. The workload and faults follow the seed; what runs
//! at the same time is scheduled by the OS, so a failure prints its seed,
//! its steps and a command that runs it again.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bridge_sandbox::databricks::sql::types::render as render_cell;
use common::server::{World, DBX_SYNC};
use sql_databricks_bridge::auth::{AuditLog, LakehouseRights, Permissions};
use sql_databricks_bridge::config::{DatabricksSettings, SqlServerOverrides, SqlServerSettings};
use sql_databricks_bridge::databricks::names::UcName;
use sql_databricks_bridge::databricks::Workspace;
use sql_databricks_bridge::extract::run::{
    render_queries, Destination, QueryEvents, RenderedQuery, Run, RunError,
};
use sql_databricks_bridge::extract::{ExtractOptions, VolumeRoot};
use sql_databricks_bridge::retry::RetryPolicy;
use sql_databricks_bridge::sqlserver::home::HomeDatabase;
use sql_databricks_bridge::sqlserver::pool;
use sql_databricks_bridge::sync::{EventWriters, EventsTable, Poller, PollerConfig, SyncCore};
use sql_databricks_bridge::tables::TableLoader;
use tokio_util::sync::CancellationToken;

const ROOT: &str = "/Volumes/main/demo/landing/sim";
const MODES: [&str; 4] = ["sim_full", "sim_app", "sim_inc", "sim_ct"];
const SEEDS: [u64; 2] = [0x5eed_0001, 0x5eed_0002];
const DEFAULT_STEPS: usize = 30;
/// Sync targets the simulated user may write (`Sim.dbo.t<n>`).
const MAX_EVENTS: usize = 4000;

/// xorshift64*: small, seeded, the same on every machine.
struct Rng(u64);

impl Rng {
    /// The state from a seed, through SplitMix64's finalizer: every seed
    /// its own sequence (xorshift's state must not be 0, and neighbouring
    /// seeds must not start from neighbouring states).
    fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Rng((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

struct Quiet;

impl QueryEvents for Quiet {
    fn rows(&self, _: u64) {}
    fn note(&self, _: &str) {}
}

/// One bridge: its pools, its runs and its poller.
struct Bridge {
    name: String,
    run: Run,
    poller: Poller,
}

/// A sync event the simulation wrote, with what its target must become.
struct Event {
    id: String,
    target: String,
    initial: Vec<Vec<String>>,
    expected: Vec<Vec<String>>,
    settled: bool,
}

struct Sim {
    seed: u64,
    w: World,
    api: common::server::Bridge,
    rng: Rng,
    steps: Vec<String>,
    bridges: Vec<Bridge>,
    queries: Vec<RenderedQuery>,
    sql: tiberius::Client<tokio_util::compat::Compat<tokio::net::TcpStream>>,
    next_id: i64,
    columns: Vec<String>,
    events: Vec<Event>,
    /// Rows an append table must hold at least, and at most.
    append_sure: u64,
    append_maybe: u64,
    counts: BTreeMap<String, u64>,
}

fn text_rows(r: &bridge_sandbox::databricks::sql::ResultSet) -> Vec<Vec<String>> {
    r.rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&r.columns)
                .map(|(v, c)| render_cell(v, &c.ty).unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

fn render_sql(v: tiberius::ColumnData<'static>) -> String {
    use tiberius::ColumnData as C;
    match v {
        C::I32(Some(n)) => n.to_string(),
        C::I64(Some(n)) => n.to_string(),
        C::I16(Some(n)) => n.to_string(),
        C::U8(Some(n)) => n.to_string(),
        C::Bit(Some(b)) => (b as u8).to_string(),
        C::String(Some(s)) => s.to_string(),
        _ => "NULL".into(),
    }
}

impl Sim {
    async fn new(seed: u64) -> Sim {
        let w = World::new(&format!("sim-{seed:x}")).with_databricks_demo();
        w.grant_sync_sources();
        let mut seed_sql = String::from(
            "CREATE DATABASE Sim\nGO\n\
             ALTER DATABASE Sim SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)\nGO\n\
             USE Sim\nGO\n\
             CREATE TABLE dbo.items (id int NOT NULL PRIMARY KEY, v int NOT NULL, ts datetime2(3) NOT NULL)\nGO\n\
             ALTER TABLE dbo.items ENABLE CHANGE_TRACKING\nGO\n",
        );
        for i in 1..=20 {
            seed_sql.push_str(&format!(
                "INSERT INTO dbo.items VALUES ({i}, {i}, SYSUTCDATETIME())\nGO\n"
            ));
        }
        // Odd seeds start with snapshot isolation allowed (change tracking
        // read in one SNAPSHOT transaction), even ones without.
        if seed % 2 == 1 {
            seed_sql.push_str("ALTER DATABASE Sim SET ALLOW_SNAPSHOT_ISOLATION ON\nGO\n");
        }
        w.sql.engine().run_script(&seed_sql).unwrap();
        w.dbx
            .engine()
            .run_script(
                "CREATE SCHEMA IF NOT EXISTS main.sim; \
                 GRANT USE SCHEMA, SELECT ON SCHEMA main.sim TO `sync-etl@example.com`",
            )
            .unwrap();
        let q = w.dir.join("queries");
        for (name, spec) in [
            ("sim_full", "table: main.sim.full\nmode: full\n"),
            ("sim_app", "table: main.sim.app\nmode: append\n"),
            (
                "sim_inc",
                "table: main.sim.inc\nmode: incremental\nprimary_key: [id]\ncursor: ts\n",
            ),
            (
                "sim_ct",
                "table: main.sim.ct\nmode: change_tracking\nprimary_key: [id]\ntracked_table: Sim.dbo.items\n",
            ),
        ] {
            std::fs::write(q.join(format!("{name}.sql")), "SELECT * FROM Sim.dbo.items").unwrap();
            std::fs::write(q.join(format!("{name}.yaml")), spec).unwrap();
        }
        let mut perms = String::from(
            "users:\n  - name: \"sim\"\n    token: \"sim-token\"\n    databricks_principals: [\"sync-etl@example.com\"]\n    permissions:\n",
        );
        for n in 0..MAX_EVENTS {
            perms.push_str(&format!(
                "      - table: \"Sim.dbo.t{n}\"\n        access: \"read_write\"\n        max_delete_rows: 100\n"
            ));
        }
        perms.push_str("      - table: \"Sim.dbo.nope\"\n        access: \"write\"\n");
        // The world's own file: the API server reads it too.
        std::fs::write(w.dir.join("config/permissions.yaml"), &perms).unwrap();
        let permissions =
            Arc::new(Permissions::parse(&perms, std::path::Path::new("permissions.yaml")).unwrap());
        // A real server for the API's steps; the simulation's two bridges poll.
        let api = w.serve(&["--no-sync", "--retry-base-ms", "5", "--retry-cap-ms", "20"]);
        let (_, queries) = render_queries(
            &w.dir.join("queries"),
            &w.dir.join("config"),
            "Colombia",
            &MODES.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        )
        .unwrap();
        let env: HashMap<&str, String> = w.env().into_iter().collect();
        let settings =
            SqlServerSettings::resolve(&SqlServerOverrides::default(), &|k| env.get(k).cloned())
                .unwrap();
        let dbx_settings =
            DatabricksSettings::resolve(None, None, &|k| env.get(k).cloned(), None).unwrap();
        let retry = RetryPolicy {
            attempts: 3,
            base: Duration::from_millis(5),
            cap: Duration::from_millis(40),
        };
        let audit = Arc::new(AuditLog::open(&w.dir.join("logs/audit.jsonl")).unwrap());
        let mut bridges = Vec::new();
        for name in ["norte", "sur"] {
            let ws = Workspace::new(&dbx_settings, Duration::from_secs(30))
                .unwrap()
                .with_retry(retry.clone());
            let warehouse = w.dbx.warehouse_id().to_string();
            let pool = pool::pool(&settings, 4, Duration::from_secs(30)).unwrap();
            let core = SyncCore {
                ws: ws.clone(),
                warehouse: warehouse.clone(),
                pool: pool.clone(),
                retry: retry.clone(),
                deadline: Duration::from_secs(60),
                upsert: Default::default(),
                table_lock: false,
            };
            let poller = Poller {
                events: EventsTable::new(ws.clone(), &warehouse, "bridge.events.bridge_events")
                    .unwrap(),
                writers: Arc::new(EventWriters::new(ws.clone())),
                lakehouse: Arc::new(LakehouseRights::new(ws.clone(), Duration::from_secs(30))),
                home: Arc::new(HomeDatabase::new(&settings, Duration::from_secs(30))),
                core,
                permissions: permissions.clone(),
                audit: audit.clone(),
                stats: Default::default(),
                config: PollerConfig {
                    instance_id: format!("{name}-{seed:x}"),
                    lease: Duration::from_secs(60),
                    interval: Duration::from_secs(1),
                    batch: 50,
                    exit_after_commit: false,
                    databases: Some(vec!["Sim".into()]),
                    unqualified_targets: false,
                    max_attempts: 3,
                },
            };
            let run = Run {
                pool,
                destination: Destination::Volume(VolumeRoot(ROOT.into()), ws.clone()),
                country: "Colombia".into(),
                options: ExtractOptions {
                    overwrite: true,
                    rows_per_file: 7,
                    ..ExtractOptions::default()
                },
                retry: retry.clone(),
                tables: Some(TableLoader::new(
                    ws,
                    &warehouse,
                    &UcName::parse("bridge.state.table_loads").unwrap(),
                    name,
                )),
                holder: format!("simulated bridge {name}"),
            };
            bridges.push(Bridge {
                name: name.into(),
                run,
                poller,
            });
        }
        let sql =
            bridge_testkit::sqlserver::connect(w.sql.port(), tiberius::EncryptionLevel::Off).await;
        Sim {
            seed,
            w,
            api,
            rng: Rng::new(seed),
            steps: Vec::new(),
            bridges,
            queries,
            sql,
            next_id: 21,
            columns: Vec::new(),
            events: Vec::new(),
            append_sure: 0,
            append_maybe: 0,
            counts: BTreeMap::new(),
        }
    }

    fn count(&mut self, what: &str) {
        *self.counts.entry(what.to_string()).or_default() += 1;
    }

    fn fail(&self, why: String) -> ! {
        let n = self.steps.len();
        // Every step, for a long run's failure (SIM_STEPS_FILE=path).
        if let Ok(path) = std::env::var("SIM_STEPS_FILE") {
            let all: Vec<String> = self
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{:>5}. {s}", i + 1))
                .collect();
            let _ = std::fs::write(path, all.join("\n"));
        }
        let tail: Vec<String> = self
            .steps
            .iter()
            .enumerate()
            .skip(n.saturating_sub(25))
            .map(|(i, s)| format!("  {:>4}. {s}", i + 1))
            .collect();
        panic!(
            "simulation seed {:#x} failed at step {n}: {why}\nlast steps:\n{}\nreproduce: SIM_SEED={:#x} SIM_STEPS={n} cargo test -p sql-databricks-bridge --test it -- simulation:: --nocapture",
            self.seed,
            tail.join("\n"),
            self.seed
        );
    }

    async fn sql_rows(&mut self, text: &str) -> Vec<Vec<String>> {
        let rows = async { self.sql.simple_query(text).await?.into_first_result().await }.await;
        match rows {
            Ok(rows) => rows
                .into_iter()
                .map(|r| r.into_iter().map(render_sql).collect())
                .collect(),
            Err(e) => self.fail(format!("{text}: {e}")),
        }
    }

    fn dbx_rows(&self, text: &str) -> Result<Vec<Vec<String>>, String> {
        self.w
            .dbx
            .engine()
            .execute(text, &Default::default(), &[])
            .map(|r| text_rows(&r))
            .map_err(|e| e.message)
    }

    fn dbx(&self, text: &str) {
        if let Err(e) = self.w.dbx.engine().run_script(text) {
            self.fail(format!("{text}: {}", e.message));
        }
    }

    fn sql_script(&self, text: &str) {
        if let Err(e) = self.w.sql.engine().run_script(text) {
            self.fail(format!("{text}: {}", e.message));
        }
    }

    /// `id, v[, c1...]` of the source, ordered by id.
    fn column_list(&self) -> String {
        let mut cols = vec!["id".to_string(), "v".to_string()];
        cols.extend(self.columns.iter().cloned());
        cols.join(", ")
    }

    async fn source(&mut self) -> Vec<Vec<String>> {
        let cols = self.column_list();
        self.sql_rows(&format!("SELECT {cols} FROM Sim.dbo.items ORDER BY id"))
            .await
    }

    fn table(&self, name: &str) -> Option<Vec<Vec<String>>> {
        self.dbx_rows(&format!(
            "SELECT {} FROM main.sim.{name} ORDER BY id",
            self.column_list()
        ))
        .ok()
    }

    // ---- the workload -------------------------------------------------

    async fn source_write(&mut self) {
        let n = self.rng.below(4) + 1;
        let kind = self.rng.below(4);
        let cols = self.columns.clone();
        let sql = match kind {
            0 => {
                let mut s = String::new();
                for _ in 0..n {
                    let id = self.next_id;
                    self.next_id += 1;
                    s.push_str(&format!(
                        "INSERT INTO Sim.dbo.items (id, v, ts) VALUES ({id}, {}, SYSUTCDATETIME());",
                        self.rng.below(1000)
                    ));
                }
                format!("inserted {n}: {s}")
            }
            1 => {
                let m = self.rng.below(5) + 2;
                let r = self.rng.below(m);
                let mut set = format!("v = v + {}, ts = SYSUTCDATETIME()", self.rng.below(9) + 1);
                if let Some(c) = cols.last() {
                    set.push_str(&format!(", {c} = id * 10"));
                }
                format!("updated: UPDATE Sim.dbo.items SET {set} WHERE id % {m} = {r};")
            }
            2 => {
                let m = self.rng.below(6) + 5;
                let r = self.rng.below(m);
                // The rows at the newest ts stay: a late row is stamped
                // with the newest ts, the instant a cursor may have
                // reached; once those rows went, it would be stamped
                // older than the cursor, outside what an incremental load
                // without a lookback promises.
                format!(
                    "deleted: DELETE FROM Sim.dbo.items WHERE id % {m} = {r} AND ts < (SELECT MAX(ts) FROM Sim.dbo.items);"
                )
            }
            _ => {
                // Committed late, at the instant the cursor last reached.
                let id = self.next_id;
                self.next_id += 1;
                format!(
                    "late row: INSERT INTO Sim.dbo.items (id, v, ts) SELECT {id}, 7, ISNULL(MAX(ts), SYSUTCDATETIME()) FROM Sim.dbo.items;"
                )
            }
        };
        let (label, text) = sql.split_once(": ").unwrap();
        self.steps.push(format!("source {label}"));
        self.sql_script(&format!("{text}\nGO\n"));
    }

    fn add_column(&mut self) {
        if self.columns.len() >= 3 {
            return;
        }
        let c = format!("c{}", self.columns.len() + 1);
        self.steps
            .push(format!("source: ALTER TABLE ADD {c} int NULL"));
        self.sql_script(&format!(
            "ALTER TABLE Sim.dbo.items ADD {c} int NULL\nGO\nUPDATE Sim.dbo.items SET {c} = id, ts = SYSUTCDATETIME() WHERE id % 3 = 0\nGO\n"
        ));
        self.columns.push(c);
    }

    fn arm_fault(&mut self) {
        let kind = self.rng.below(9);
        let status = *self.rng.pick(&[502u16, 503, 504]);
        let what = match kind {
            0 => {
                let p = *self.rng.pick(&[
                    "^COPY INTO",
                    "^MERGE INTO",
                    "^CREATE OR REPLACE",
                    "^UPDATE .*bridge_events",
                    "^INSERT INTO",
                    "^DESCRIBE",
                ]);
                self.w
                    .dbx
                    .faults()
                    .lose_statement_answers(p, 1, status)
                    .unwrap();
                format!("databricks: the answer to {p} lost after commit ({status})")
            }
            1 => {
                self.w.dbx.faults().lose_answers(
                    1,
                    status,
                    Some("/api/2.0/fs/files/Volumes/main/demo/landing/sim"),
                );
                format!("databricks: a file upload's answer lost after it was written ({status})")
            }
            2 => {
                self.w
                    .dbx
                    .faults()
                    .internal_error(1, Some("/api/2.0/sql/statements"));
                "databricks: a statement refused with 500 before it ran".into()
            }
            3 => {
                let p = *self.rng.pick(&["^MERGE INTO", "^COPY INTO", "^SELECT"]);
                self.w.dbx.faults().fail_statements(p, 1).unwrap();
                format!("databricks: {p} FAILED")
            }
            4 => {
                let p = *self
                    .rng
                    .pick(&["INSERT BULK", "UPDATE", "CHANGETABLE", "SELECT"]);
                self.w.sql.engine().inject_deadlock(p, 1).unwrap();
                format!("sql server: deadlock victim on {p}")
            }
            5 => {
                self.w.sql.faults().drop_next_connections_after_rows(2, 1);
                "sql server: a connection dropped after 2 rows".into()
            }
            6 => {
                self.w
                    .sql
                    .engine()
                    .interleave(
                        r"CHANGETABLE\(CHANGES",
                        "USE Sim\nGO\nUPDATE dbo.items SET v = v + 100, ts = SYSUTCDATETIME() WHERE id % 7 = 1\nGO\n\
                         DECLARE @v bigint = CHANGE_TRACKING_CURRENT_VERSION(); \
                         EXEC sp_sandbox_change_tracking_cleanup @table_name = 'dbo.items', @version = @v\nGO\n",
                        1,
                    )
                    .unwrap();
                "sql server: change tracking cleanup lands just before a changes read".into()
            }
            7 => {
                self.w
                    .dbx
                    .faults()
                    .lose_statement_answers("^SELECT", 1, status)
                    .unwrap();
                format!("databricks: a read's answer lost ({status})")
            }
            _ => {
                self.w.sql.faults().lose_answers("^COMMIT", 1).unwrap();
                "sql server: a commit's answer lost (the connection resets)".into()
            }
        };
        let name = [
            "databricks: statement answer lost after commit",
            "databricks: file upload answer lost after write",
            "databricks: statement refused before running (500)",
            "databricks: statement FAILED",
            "sql server: deadlock victim",
            "sql server: connection dropped mid-result",
            "sql server: change tracking cleanup before a read",
            "databricks: read answer lost",
            "sql server: commit answer lost",
        ][kind as usize];
        self.count(&format!("fault: {name}"));
        self.steps.push(format!("fault armed: {what}"));
    }

    fn clear_faults(&self) {
        self.w.dbx.faults().clear();
        self.w.sql.faults().drop_connection_after_rows(0);
        // Deadlocks and interleavings armed and not fired this step expire.
        self.w.sql.engine().clear_faults();
        self.w.sql.faults().clear_lost_answers();
    }

    async fn extract(&mut self, overlap: bool, fault: bool) {
        let q = self.rng.below(MODES.len() as u64) as usize;
        let b = self.rng.below(2) as usize;
        let name = MODES[q];
        let rows_before = self.source().await.len() as u64;
        if fault {
            self.arm_fault();
        }
        let query = self.queries[q].clone();
        let cancel = CancellationToken::new();
        let results: Vec<Result<u64, RunError>> = if overlap {
            self.steps
                .push(format!("extract {name} by both bridges at once"));
            let (a, c) = tokio::join!(
                self.bridges[0].run.run_query(&query, &Quiet, &cancel),
                self.bridges[1].run.run_query(&query, &Quiet, &cancel)
            );
            vec![a.map(|o| o.rows_written), c.map(|o| o.rows_written)]
        } else {
            self.steps
                .push(format!("extract {name} by {}", self.bridges[b].name));
            vec![self.bridges[b]
                .run
                .run_query(&query, &Quiet, &cancel)
                .await
                .map(|o| o.rows_written)]
        };
        let mut ok = false;
        for r in &results {
            match r {
                Ok(rows) => {
                    ok = true;
                    self.count("extract ok");
                    if name == "sim_app" {
                        self.append_sure += rows;
                        self.append_maybe += rows;
                    }
                }
                Err(RunError::Lease(_)) => self.count("extract refused: another run writes it"),
                Err(e) => {
                    self.count("extract failed");
                    self.steps.push(format!("  failed: {e}"));
                    if name == "sim_app" {
                        // Its COPY INTO may have committed before it failed.
                        self.append_maybe += rows_before;
                    }
                }
            }
        }
        self.clear_faults();
        if ok {
            self.check_table(name).await;
        }
    }

    /// A sync event into a fresh target, written by the user's principal
    /// or by a bridge for the user.
    async fn sync_event(&mut self) {
        let n = self.events.len();
        if n >= MAX_EVENTS {
            return;
        }
        let op = *self
            .rng
            .pick(&["INSERT", "UPDATE", "DELETE", "UPSERT", "BAD", "GOVERNED"]);
        let initial: Vec<(i64, i64)> = (1..=5).map(|i| (i, i)).collect();
        let source: Vec<(i64, i64)> = match op {
            "INSERT" | "GOVERNED" => (6..=8).map(|i| (i, 100 * n as i64 + i)).collect(),
            "DELETE" => vec![(4, 0), (5, 0)],
            _ => (3..=8).map(|i| (i, 100 * n as i64 + i)).collect(),
        };
        let mut expected: BTreeMap<i64, i64> = initial.iter().copied().collect();
        match op {
            "INSERT" => expected.extend(source.iter().copied()),
            "UPDATE" => {
                for (k, v) in &source {
                    if let Some(x) = expected.get_mut(k) {
                        *x = *v;
                    }
                }
            }
            "DELETE" => {
                for (k, _) in &source {
                    expected.remove(k);
                }
            }
            "UPSERT" => expected.extend(source.iter().copied()),
            // BAD fails; GOVERNED must be refused: nothing changes.
            _ => {}
        }
        let target = format!("Sim.dbo.t{n}");
        self.sql_script(&format!(
            "USE Sim\nGO\nCREATE TABLE dbo.t{n} (id int NOT NULL, v int NULL)\nGO\nINSERT INTO dbo.t{n} VALUES {}\nGO\n",
            initial
                .iter()
                .map(|(k, v)| format!("({k}, {v})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        self.dbx(&format!(
            "CREATE TABLE main.sim.s{n} (id INT, v INT); INSERT INTO main.sim.s{n} VALUES {}",
            source
                .iter()
                .map(|(k, v)| format!("({k}, {v})"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if op == "GOVERNED" {
            // Rows hidden from some readers: never synced for a user.
            self.dbx(&format!(
                "CREATE OR REPLACE FUNCTION main.sim.small(id INT) RETURNS BOOLEAN RETURN id < 7; \
                 ALTER TABLE main.sim.s{n} SET ROW FILTER main.sim.small ON (id)"
            ));
        }
        let (operation, written_target, keyed) = match op {
            "BAD" => ("INSERT", "Sim.dbo.nope".to_string(), false),
            "INSERT" | "GOVERNED" => ("INSERT", target.clone(), false),
            _ => (op, target.clone(), true),
        };
        let via = match self.rng.below(4) {
            0 if op != "BAD" => "the API's server for the user",
            1 | 2 => "the user's principal",
            _ => "a bridge for the user",
        };
        let id = if via.starts_with("the API") {
            self.submit(n, operation, &written_target, keyed).await
        } else {
            let id = format!("sim-{:x}-{n}", self.seed);
            let sql = format!(
                "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, \
                 primary_keys, requested_by, status, attempts, created_at) \
                 VALUES ('{id}', '{operation}', 'main.sim.s{n}', '{written_target}', {}, 'sim', 'pending', 0, current_timestamp())",
                if keyed { "array('id')" } else { "array()" }
            );
            if via == "the user's principal" {
                let w = &self.w;
                let (state, err) = tokio::task::block_in_place(|| w.dbx_as(DBX_SYNC, &sql));
                if state != "SUCCEEDED" {
                    self.fail(format!("writing event {id}: {err:?}"));
                }
            } else {
                self.dbx(&sql);
            }
            id
        };
        self.steps.push(format!(
            "sync event {id}: {op} into {target}, written by {via}"
        ));
        let rows = |m: &BTreeMap<i64, i64>| -> Vec<Vec<String>> {
            m.iter()
                .map(|(k, v)| vec![k.to_string(), v.to_string()])
                .collect()
        };
        let initial: BTreeMap<i64, i64> = initial.into_iter().collect();
        self.events.push(Event {
            id,
            target,
            initial: rows(&initial),
            expected: rows(&expected),
            settled: false,
        });
        self.count(&format!("sync event {op}"));
    }

    /// POST /sync/events as the user, with an Idempotency-Key; the first
    /// tries may lose their answer after the event was written (a fault),
    /// and are sent again with the same key: exactly one event results.
    async fn submit(&mut self, n: usize, operation: &str, target: &str, keyed: bool) -> String {
        let lost = self.rng.below(3) as u32;
        if lost > 0 {
            // Every try the server's client makes, for `lost` requests.
            self.w
                .dbx
                .faults()
                .lose_statement_answers("^MERGE INTO .*bridge_events", lost * 3, 503)
                .unwrap();
            self.count("fault: api submit answer lost after the event was written");
        }
        let body = serde_json::json!({
            "operation": operation,
            "source_table": format!("main.sim.s{n}"),
            "target_table": target,
            "primary_keys": if keyed { vec!["id"] } else { vec![] },
        });
        let key = format!("sim-{:x}-{n}", self.seed);
        let mut answer = None;
        for _ in 0..6 {
            let r = self
                .api
                .send(
                    self.api
                        .http
                        .post(format!("{}/sync/events", self.api.url))
                        .bearer_auth("sim-token")
                        .header("Idempotency-Key", &key)
                        .json(&body),
                )
                .await;
            if r.status == 202 {
                answer = Some(r);
                break;
            }
            if r.status != 502 {
                self.fail(format!(
                    "POST /sync/events answered {}: {}",
                    r.status, r.text
                ));
            }
            self.count("api submit retried with the same key");
        }
        self.w.dbx.faults().clear();
        let Some(r) = answer else {
            self.fail("POST /sync/events never answered 202".into());
        };
        let id = r.json["event_id"].as_str().unwrap_or_default().to_string();
        let rows = self
            .dbx_rows(&format!(
                "SELECT count(*) FROM bridge.events.bridge_events WHERE source_table = 'main.sim.s{n}'"
            ))
            .unwrap_or_default();
        if rows.first().and_then(|r| r.first()).map(String::as_str) != Some("1") {
            self.fail(format!(
                "the retried submission of main.sim.s{n} wrote {rows:?} events, not one"
            ));
        }
        id
    }

    async fn poll(&mut self, both: bool, fault: bool) {
        if fault {
            self.arm_fault();
        }
        if both {
            self.steps.push("poll by both bridges at once".into());
            let (a, b) = tokio::join!(
                self.bridges[0].poller.run_once(),
                self.bridges[1].poller.run_once()
            );
            for r in [a, b] {
                self.poll_result(r);
            }
        } else {
            let b = self.rng.below(2) as usize;
            self.steps.push(format!("poll by {}", self.bridges[b].name));
            let r = self.bridges[b].poller.run_once().await;
            self.poll_result(r);
        }
        self.clear_faults();
        self.check_events().await;
    }

    fn poll_result(
        &mut self,
        r: Result<sql_databricks_bridge::sync::PollSummary, sql_databricks_bridge::sync::SyncError>,
    ) {
        match r {
            Ok(s) => {
                for _ in 0..s.completed {
                    self.count("sync completed");
                }
                for _ in 0..s.failed {
                    self.count("sync failed or refused");
                }
                for _ in 0..s.released {
                    self.count("sync released to retry");
                }
            }
            Err(e) => {
                self.count("poll failed (tried again next poll)");
                self.steps.push(format!("  poll failed: {e}"));
            }
        }
    }

    fn clock_jump(&mut self) {
        let hours = self.rng.below(10 * 24) + 1;
        self.steps.push(format!(
            "both clocks jump {hours} hours; VACUUM as an operator would"
        ));
        let by = Duration::from_secs(hours * 3600);
        self.w.dbx.clock().advance(by);
        self.w.sql.clock().advance(by);
        self.vacuum();
        self.count("clock jump");
    }

    /// A DBA allows or disallows snapshot isolation on the source
    /// database: change tracking reads switch between one SNAPSHOT
    /// transaction and a read validated after.
    fn toggle_snapshot_isolation(&mut self) {
        let on = self.rng.chance(50);
        let state = if on { "ON" } else { "OFF" };
        self.steps.push(format!(
            "source: ALTER DATABASE SET ALLOW_SNAPSHOT_ISOLATION {state}"
        ));
        self.sql_script(&format!(
            "ALTER DATABASE Sim SET ALLOW_SNAPSHOT_ISOLATION {state}\nGO\n"
        ));
        self.count(&format!("snapshot isolation {state}"));
    }

    fn vacuum(&self) {
        for t in [
            "bridge.events.bridge_events",
            "main.sim.full",
            "main.sim.app",
            "main.sim.inc",
            "main.sim.ct",
        ] {
            // Tables not made yet are skipped.
            let _ = self.w.dbx.engine().run_script(&format!("VACUUM {t}"));
        }
    }

    // ---- the invariants -------------------------------------------------

    async fn check_table(&mut self, name: &str) {
        let source = self.source().await;
        let table_name = match name {
            "sim_full" => "full",
            "sim_app" => "app",
            "sim_inc" => "inc",
            _ => "ct",
        };
        let Some(table) = self.table(table_name) else {
            self.fail(format!(
                "{name} succeeded but main.sim.{table_name} cannot be read"
            ));
        };
        match name {
            "sim_full" | "sim_ct" => {
                if table != source {
                    self.fail(format!(
                        "main.sim.{table_name} differs from its source after a successful run:\n table {table:?}\nsource {source:?}"
                    ));
                }
            }
            "sim_inc" => {
                let by_id: HashMap<&String, &Vec<String>> =
                    table.iter().map(|r| (&r[0], r)).collect();
                let stale = source
                    .iter()
                    .find(|row| by_id.get(&row[0]) != Some(row))
                    .cloned();
                if let Some(row) = stale {
                    let has = by_id.get(&row[0]).cloned().cloned();
                    let ts = self
                        .sql_rows(&format!(
                            "SELECT CONVERT(varchar(30), ts, 121) FROM Sim.dbo.items WHERE id = {}",
                            row[0]
                        ))
                        .await;
                    let state = self.dbx_rows(
                        "SELECT cursor_value, table_version, updated_by FROM bridge.state.table_loads \
                         WHERE table_name = 'main.sim.inc'",
                    );
                    let table_ts = self.dbx_rows(&format!(
                        "SELECT CAST(ts AS STRING) FROM main.sim.inc WHERE id = {}",
                        row[0]
                    ));
                    let latest = self
                        .sql_rows("SELECT TOP 6 id, CONVERT(varchar(30), ts, 121) FROM Sim.dbo.items ORDER BY ts DESC")
                        .await;
                    let table_latest = self.dbx_rows(
                        "SELECT id, CAST(ts AS STRING) FROM main.sim.inc ORDER BY ts DESC LIMIT 6",
                    );
                    self.fail(format!(
                        "main.sim.inc lost or stale row {row:?} (table has {has:?}); the row's ts in SQL Server {ts:?}, in the table {table_ts:?}; state {state:?}; newest in SQL Server {latest:?}, in the table {table_latest:?}"
                    ));
                }
                // The state is never ahead of the data.
                let state = self
                    .dbx_rows(
                        "SELECT cursor_value FROM bridge.state.table_loads \
                         WHERE table_name = 'main.sim.inc' AND query = 'Colombia/sim_inc'",
                    )
                    .unwrap_or_default();
                let max = self
                    .dbx_rows("SELECT CAST(max(ts) AS STRING) FROM main.sim.inc")
                    .unwrap_or_default();
                let (Some(cursor), Some(max)) = (
                    state.first().and_then(|r| r.first()),
                    max.first().and_then(|r| r.first()),
                ) else {
                    return;
                };
                let parse =
                    |t: &str| chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").ok();
                if let (Some(c), Some(m)) = (parse(cursor), parse(max)) {
                    if c > m {
                        self.fail(format!(
                            "the incremental state ({cursor}) is ahead of the table's data ({max})"
                        ));
                    }
                }
            }
            _ => {
                let n = table.len() as u64;
                if n < self.append_sure || n > self.append_maybe {
                    self.fail(format!(
                        "main.sim.app holds {n} rows; successful runs appended {}, at most {} with failed runs",
                        self.append_sure, self.append_maybe
                    ));
                }
            }
        }
        if name == "sim_ct" {
            let saved = self
                .dbx_rows(
                    "SELECT ct_version FROM bridge.state.table_loads \
                     WHERE table_name = 'main.sim.ct' AND query = 'Colombia/sim_ct'",
                )
                .unwrap_or_default();
            let current = self
                .sql_rows("USE Sim; SELECT CHANGE_TRACKING_CURRENT_VERSION()")
                .await;
            let v = |r: &[Vec<String>]| {
                r.first()
                    .and_then(|x| x.first())
                    .and_then(|v| v.parse::<i64>().ok())
            };
            if let (Some(s), Some(c)) = (v(&saved), v(&current)) {
                if s > c {
                    self.fail(format!(
                        "the change-tracking state ({s}) is ahead of the source ({c})"
                    ));
                }
            }
        }
    }

    /// Every published output's manifest names a run whose parts are all
    /// there, with their sizes.
    fn check_outputs(&self) {
        let vol = self.w.dbx.engine().volumes_root().join("main/demo/landing");
        for name in MODES {
            let dir = vol.join("sim/Colombia").join(name);
            let Ok(bytes) = std::fs::read(dir.join("_manifest.json")) else {
                continue;
            };
            let m: serde_json::Value = match serde_json::from_slice(&bytes) {
                Ok(m) => m,
                Err(e) => self.fail(format!("{name}: the manifest is not whole JSON: {e}")),
            };
            let location = m["location"].as_str().unwrap_or_default();
            let run = vol.join(location.trim_start_matches("/Volumes/main/demo/landing/"));
            for p in m["parts"].as_array().into_iter().flatten() {
                let file = run.join(p["file"].as_str().unwrap_or_default());
                let len = std::fs::metadata(&file).map(|x| x.len()).ok();
                if len != p["bytes"].as_u64() {
                    self.fail(format!(
                        "{name}: the manifest names {} of {:?} bytes, the volume holds {len:?}",
                        file.display(),
                        p["bytes"].as_u64()
                    ));
                }
            }
        }
    }

    async fn check_events(&mut self) {
        let open: Vec<usize> = (0..self.events.len())
            .filter(|i| !self.events[*i].settled)
            .collect();
        for i in open {
            let (id, target) = (self.events[i].id.clone(), self.events[i].target.clone());
            let status = self
                .dbx_rows(&format!(
                    "SELECT status, error_message FROM bridge.events.bridge_events WHERE event_id = '{id}'"
                ))
                .unwrap_or_default();
            let Some(row) = status.first() else {
                self.fail(format!("event {id} vanished from the events table"));
            };
            let (state, error) = (row[0].clone(), row[1].clone());
            let table = self
                .sql_rows(&format!("SELECT id, v FROM {target} ORDER BY id, v"))
                .await;
            // The bridge makes the ledger with the first event it applies.
            let ledger = self
                .sql_rows(&format!(
                    "IF OBJECT_ID('Sim.dbo.bridge_sync_ledger') IS NULL SELECT 0 \
                     ELSE EXEC('SELECT count(*) FROM Sim.dbo.bridge_sync_ledger WHERE event_id = ''{id}''')"
                ))
                .await;
            let ledgered: i64 = ledger
                .first()
                .and_then(|r| r.first())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let e = &self.events[i];
            let applied = table == e.expected;
            let untouched = table == e.initial;
            match state.as_str() {
                "completed" => {
                    if !(applied && ledgered == 1) {
                        self.fail(format!(
                            "event {id} is completed but its target is {table:?} (expected {:?}) with {ledgered} ledger rows",
                            e.expected
                        ));
                    }
                    self.events[i].settled = true;
                }
                "failed" => {
                    if !(untouched && ledgered == 0) || error == "NULL" || error.is_empty() {
                        self.fail(format!(
                            "event {id} failed ({error}) but its target is {table:?} (was {:?}) with {ledgered} ledger rows",
                            e.initial
                        ));
                    }
                    self.events[i].settled = true;
                }
                _ => {
                    if ledgered > 1 || (ledgered == 1 && !applied) || !(applied || untouched) {
                        self.fail(format!(
                            "event {id} ({state}) left its target {table:?} with {ledgered} ledger rows: partial or twice"
                        ));
                    }
                }
            }
        }
    }

    async fn step(&mut self) {
        let roll = self.rng.below(100);
        match roll {
            0..=21 => self.source_write().await,
            22..=23 => self.add_column(),
            24..=47 => {
                let fault = self.rng.chance(30);
                self.extract(false, fault).await;
            }
            48..=53 => {
                let fault = self.rng.chance(30);
                self.extract(true, fault).await;
            }
            54..=69 => self.sync_event().await,
            70..=92 => {
                let fault = self.rng.chance(30);
                let both = self.rng.chance(25);
                self.poll(both, fault).await;
            }
            93..=95 => self.clock_jump(),
            96 => self.toggle_snapshot_isolation(),
            _ => {
                self.steps.push("VACUUM as an operator would".into());
                self.vacuum();
            }
        }
        self.check_outputs();
    }

    /// Faults off: every open event is settled, every table catches up.
    async fn drain(&mut self) {
        self.clear_faults();
        self.steps
            .push("drain: faults off, poll until settled".into());
        for _ in 0..10 {
            if self.events.iter().all(|e| e.settled) {
                break;
            }
            self.poll(true, false).await;
        }
        if let Some(e) = self.events.iter().find(|e| !e.settled) {
            self.fail(format!(
                "event {} is still not settled after the drain",
                e.id
            ));
        }
        for (q, name) in MODES.iter().enumerate() {
            self.steps.push(format!("drain: extract {name}"));
            let query = self.queries[q].clone();
            let r = self.bridges[0]
                .run
                .run_query(&query, &Quiet, &CancellationToken::new())
                .await;
            match r {
                Ok(o) => {
                    if *name == "sim_app" {
                        self.append_sure += o.rows_written;
                        self.append_maybe += o.rows_written;
                    }
                    self.check_table(name).await;
                }
                Err(e) => self.fail(format!("{name} fails with no faults: {e}")),
            }
        }
        self.check_outputs();
    }
}

async fn simulate(seed: u64, steps: usize) -> BTreeMap<String, u64> {
    let mut sim = Sim::new(seed).await;
    let started = Instant::now();
    for _ in 0..steps {
        sim.step().await;
    }
    sim.drain().await;
    let mut counts = std::mem::take(&mut sim.counts);
    counts.insert("steps".into(), steps as u64);
    counts.insert("events".into(), sim.events.len() as u64);
    counts.insert("seconds".into(), started.elapsed().as_secs());
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_bridge_keeps_its_invariants_under_faults_clock_jumps_and_overlap() {
    let seeds: Vec<u64> = match std::env::var("SIM_SEED") {
        Ok(s) => vec![u64::from_str_radix(s.trim_start_matches("0x"), 16)
            .or_else(|_| s.parse())
            .expect("SIM_SEED: a number (decimal, or hex with 0x)")],
        Err(_) => SEEDS.to_vec(),
    };
    let steps: usize = std::env::var("SIM_STEPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_STEPS);
    for seed in seeds {
        let counts = simulate(seed, steps).await;
        println!("simulation seed {seed:#x}: 0 invariant violations");
        for (k, v) in counts {
            println!("  {k}: {v}");
        }
    }
}
