//! One bridge per regional SQL Server, as the deck deploys them, sharing one
//! events table: each takes only the events whose target database it
//! holds, a region whose bridge is down cannot starve the others, every
//! event is applied once into the right database, and a bridge killed after
//! its commit has the event completed from the ledger, not applied again.

use crate::common;

use bridge_sandbox::databricks::sql::types::render;
use bridge_sandbox::sqlserver::{self, SqlServerConfig, SqlServerHandle};
use common::server::World;

const PERMISSIONS: &str = r#"
users:
  - name: "regiones"
    token: "tok-regiones"
    permissions:
      - table: "Norte.dbo.t"
        access: "write"
      - table: "Sur.dbo.t"
        access: "write"
      - table: "Oeste.dbo.t"
        access: "write"
    databricks_permissions:
      - table: "main.demo.filas"
        access: "read"
"#;

fn seed(sql: &SqlServerHandle, db: &str) {
    sql.engine()
        .run_script(&format!(
            "CREATE DATABASE {db}\nGO\nUSE {db}\nGO\nCREATE TABLE dbo.t (id int NOT NULL, evento nvarchar(40) NULL)\nGO\n"
        ))
        .unwrap();
}

async fn count(sql: &SqlServerHandle, db: &str) -> i32 {
    let mut client =
        bridge_testkit::sqlserver::connect(sql.port(), tiberius::EncryptionLevel::Off).await;
    client
        .simple_query(format!("SELECT COUNT(*) FROM {db}.dbo.t"))
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap()
        .get::<i32, _>(0)
        .unwrap()
}

/// (database, status, count), sorted.
fn statuses(w: &World) -> Vec<(String, String, i64)> {
    let r = w
        .dbx
        .engine()
        .execute(
            "SELECT target_table, coalesce(status, 'pending') FROM bridge.events.bridge_events",
            &Default::default(),
            &[],
        )
        .unwrap();
    let mut counts = std::collections::BTreeMap::new();
    for row in &r.rows {
        let t = |i: usize| render(&row[i], &r.columns[i].ty).unwrap_or_default();
        let db = t(0).split('.').next().unwrap_or_default().to_string();
        *counts.entry((db, t(1))).or_insert(0i64) += 1;
    }
    counts.into_iter().map(|((d, s), n)| (d, s, n)).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_regional_bridges_share_one_events_table_without_starving_or_duplicating() {
    let w = World::new("regions").with_databricks_demo();
    std::fs::write(w.dir.join("config/permissions.yaml"), PERMISSIONS).unwrap();
    // Norte on the world's SQL Server, Sur on another; nobody holds Oeste.
    seed(&w.sql, "Norte");
    let sur = sqlserver::start(SqlServerConfig::default()).unwrap();
    seed(&sur, "Sur");
    w.dbx
        .engine()
        .run_script(
            "CREATE TABLE main.demo.filas (id INT); INSERT INTO main.demo.filas VALUES (1), (2)",
        )
        .unwrap();
    // Oeste's backlog is the oldest: 60 events, more than a poll looks at.
    let mut script = String::new();
    let mut n = 0;
    for (db, events) in [("Oeste", 60), ("Norte", 20), ("Sur", 20)] {
        for _ in 0..events {
            n += 1;
            script.push_str(&format!(
                "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, \
                 primary_keys, columns, requested_by, status, created_at) VALUES ('{db}-{n}', 'INSERT', \
                 'main.demo.filas', '{db}.dbo.t', array(), array('id'), 'regiones', 'pending', \
                 timestamp '2024-01-01 00:{:02}:{:02}');",
                n / 60,
                n % 60
            ));
        }
    }
    w.dbx.engine().run_script(&script).unwrap();
    let bridge = |sql: &SqlServerHandle, extra: &[&str]| {
        let mut args = vec!["sync", "run-once", "--timeout", "10"];
        args.extend_from_slice(extra);
        w.command(&args)
            .env("SQLSERVER_HOST", format!("127.0.0.1,{}", sql.port()))
            .output()
            .unwrap()
    };

    // Norte's bridge dies right after its first commit, before the status.
    let o = w
        .command(&["sync", "run-once", "--timeout", "10"])
        .env("BRIDGE_FAULT_EXIT_AFTER_COMMIT", "1")
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(86),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(count(&w.sql, "Norte").await, 2);

    // Both bridges poll, in turns, as their intervals would have them.
    for _ in 0..3 {
        for (sql, extra) in [(&w.sql, vec!["--lease", "1"]), (&sur, vec![])] {
            let o = bridge(sql, &extra);
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(
        statuses(&w),
        [
            ("Norte".to_string(), "completed".to_string(), 20),
            ("Oeste".to_string(), "pending".to_string(), 60),
            ("Sur".to_string(), "completed".to_string(), 20),
        ]
    );
    // Each event once, into its own database: 2 source rows per event.
    assert_eq!(count(&w.sql, "Norte").await, 40);
    assert_eq!(count(&sur, "Sur").await, 40);
    assert!(w
        .audit_lines()
        .iter()
        .any(|l| l["event_type"] == "sync_event_applied"
            && l["detail"]
                .as_str()
                .unwrap()
                .contains("already in the ledger")));
}
