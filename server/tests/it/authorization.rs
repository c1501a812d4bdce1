//! Authorization that holds, against the real binary and both sandboxes:
//! an event's writer is the Databricks principal that inserted it (the
//! events table's change data feed and history), never `requested_by`;
//! rights on the Databricks side (sources, Volume paths) are checked for
//! the user; SQL Server names are resolved in the bridge's database before
//! they are compared; every refusal is an audit line naming the user, the
//! object and the missing right.

use crate::common;

use common::server::{World, COLOMBIA, DBX_COLOMBIA, DBX_MALLORY, DBX_MEXICO};
use serde_json::{json, Value};

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The demo world: both sandboxes seeded as `scripts/demo.sh` seeds them,
/// and the shipped config/permissions.yaml.
fn demo_world(tag: &str) -> World {
    let w = World::new(tag).with_databricks_demo();
    std::fs::write(
        w.dir.join("config/permissions.yaml"),
        repo_file("config/permissions.yaml"),
    )
    .unwrap();
    w
}

/// Audit lines of `event_type` about `resource`.
fn audit_about(w: &World, event_type: &str, resource: &str) -> Vec<Value> {
    w.audit_lines()
        .into_iter()
        .filter(|l| l["event_type"] == event_type && l["resource"] == resource)
        .collect()
}

#[tokio::test]
async fn the_demo_colombia_token_reads_and_writes_only_what_it_was_granted() {
    let w = demo_world("authz-demo");
    w.dbx
        .engine()
        .run_script(
            "CREATE SCHEMA main.hr; CREATE TABLE main.hr.salaries (id INT, salary DOUBLE); \
             INSERT INTO main.hr.salaries VALUES (1, 100.0)",
        )
        .unwrap();
    let b = w.serve(&["--no-sync"]);

    // Mexico's productos: 403 before any SQL runs (no job is made).
    let r = b
        .call(
            "POST",
            "/extract",
            Some(COLOMBIA),
            Some(
                json!({"queries_path": "./queries", "config_path": "./config", "country": "Mexico",
                        "queries": ["productos"], "destination": "/Volumes/main/demo/landing",
                        "overwrite": true}),
            ),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("kwp_mexico.dbo.productos"), "{}", r.text);
    let jobs = b.get("/jobs", COLOMBIA).await;
    assert_eq!(
        jobs.json["jobs"].as_array().map(Vec::len),
        Some(0),
        "{}",
        jobs.text
    );
    let line = &audit_about(&w, "permission_denied", "kwp_mexico.dbo.productos")[0];
    assert_eq!(line["user_name"], "proyecto-colombia");
    assert_eq!(line["action"], "read");
    assert_eq!(
        line["missing_right"],
        "read on SQL Server table kwp_mexico.dbo.productos"
    );

    // A Volume path it was not granted (Mexico's landing folder).
    let r = b
        .call(
            "POST",
            "/extract",
            Some(COLOMBIA),
            Some(json!({"queries_path": "./queries", "config_path": "./config", "country": "Colombia",
                        "destination": "/Volumes/main/demo/landing/Mexico", "overwrite": true})),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let path = "/Volumes/main/demo/landing/Mexico/Colombia";
    let line = &audit_about(&w, "permission_denied", path)[0];
    assert_eq!(line["user_name"], "proyecto-colombia");
    assert_eq!(line["missing_right"], format!("WRITE VOLUME on {path}"));
    assert!(
        w.dbx
            .engine()
            .volumes_root()
            .join("main/demo/landing/Mexico")
            .read_dir()
            .is_err(),
        "nothing was written"
    );

    // Its own folder: granted, and the job runs.
    let r = b
        .call(
            "POST",
            "/extract",
            Some(COLOMBIA),
            Some(json!({"queries_path": "./queries", "config_path": "./config", "country": "Colombia",
                        "destination": "/Volumes/main/demo/landing", "overwrite": true})),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let job = b
        .wait_final(r.json["job_id"].as_str().unwrap(), COLOMBIA)
        .await;
    assert_eq!(job["state"], "succeeded", "{job}");

    // A Databricks table it was not granted cannot be a sync source ...
    let submit = |source: &str| {
        json!({"operation": "INSERT", "source_table": source,
               "target_table": "KWP_Colombia.dbo.CalibratedPanel", "primary_keys": ["panel_id"]})
    };
    let r = b
        .call(
            "POST",
            "/sync/events",
            Some(COLOMBIA),
            Some(submit("main.hr.salaries")),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(
        r.text.contains("USE SCHEMA on schema main.hr"),
        "{}",
        r.text
    );
    let line = &audit_about(&w, "permission_denied", "main.hr.salaries")[0];
    assert_eq!(line["user_name"], "proyecto-colombia");
    assert_eq!(line["missing_right"], "SELECT on main.hr.salaries");
    // ... one Unity Catalog grants its principal can (the demo seed grants it).
    let r = b
        .call(
            "POST",
            "/sync/events",
            Some(COLOMBIA),
            Some(submit("main.demo.calibrated_panel")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let ok = audit_about(&w, "auth_success", "main.demo.calibrated_panel");
    assert!(
        ok[0]["detail"]
            .as_str()
            .unwrap()
            .contains("granted in Unity Catalog to colombia-etl@example.com"),
        "{ok:?}"
    );
}

/// The events table's grants for the projects' principals and Mallory's,
/// and a source each project may read.
fn writers_world(tag: &str) -> World {
    let w = World::new(tag).with_databricks_demo();
    w.sql
        .engine()
        .run_script(
            "CREATE DATABASE Authz\nGO\nUSE Authz\nGO\n\
             CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, v nvarchar(20))\nGO\n\
             INSERT INTO dbo.t VALUES (100, N'existing')\nGO\n",
        )
        .unwrap();
    let mut grants = String::from(
        "CREATE TABLE main.demo.authz_src (id INT, v STRING); \
         INSERT INTO main.demo.authz_src VALUES (1, 'uno'), (2, 'dos');",
    );
    for p in [
        "colombia-etl@example.com",
        "mexico-etl@example.com",
        "mallory@example.com",
    ] {
        grants.push_str(&format!(
            "GRANT USE CATALOG ON CATALOG bridge TO `{p}`; \
             GRANT USE SCHEMA ON SCHEMA bridge.events TO `{p}`; \
             GRANT SELECT, MODIFY ON TABLE bridge.events.bridge_events TO `{p}`;"
        ));
    }
    w.dbx.engine().run_script(&grants).unwrap();
    std::fs::write(
        w.dir.join("config/permissions.yaml"),
        r#"
users:
  - name: "proyecto-colombia"
    token: "tok-co"
    databricks_principals: ["colombia-etl@example.com"]
    permissions:
      - table: "Authz.dbo.t"
        access: "read_write"
        max_delete_rows: 1000
    databricks_permissions:
      - table: "main.demo.authz_src"
        access: "read"
  - name: "proyecto-mexico"
    token: "tok-mx"
    databricks_principals: ["mexico-etl@example.com"]
    permissions:
      - table: "Authz.dbo.t"
        access: "read_write"
        max_delete_rows: 1000
    databricks_permissions:
      - table: "main.demo.authz_src"
        access: "read"
"#,
    )
    .unwrap();
    w
}

/// Inserts a pending event the way users do, as the principal of `token`.
fn insert_event(w: &World, token: &str, op: &str, requested_by: &str) -> String {
    let id = uuid::Uuid::new_v4().to_string();
    let (state, err) = w.dbx_as(
        token,
        &format!(
            "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, \
             primary_keys, requested_by, status, created_at) VALUES ('{id}', '{op}', \
             'main.demo.authz_src', 'Authz.dbo.t', array('id'), '{requested_by}', 'pending', \
             current_timestamp())"
        ),
    );
    assert_eq!(state, "SUCCEEDED", "{err:?}");
    id
}

fn event_row(w: &World, id: &str) -> (String, String) {
    let r = w
        .dbx
        .engine()
        .execute(
            &format!(
                "SELECT status, coalesce(error_message, '') FROM bridge.events.bridge_events \
                 WHERE event_id = '{id}'"
            ),
            &Default::default(),
            &[],
        )
        .unwrap();
    let text = |i: usize| {
        bridge_sandbox::databricks::sql::types::render(&r.rows[0][i], &r.columns[i].ty)
            .unwrap_or_default()
    };
    (text(0), text(1))
}

/// The ids in Authz.dbo.t, read with tiberius.
async fn target_ids(w: &World) -> Vec<i32> {
    let mut client =
        bridge_testkit::sqlserver::connect(w.sql.port(), tiberius::EncryptionLevel::Off).await;
    client
        .simple_query("SELECT id FROM Authz.dbo.t ORDER BY id")
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<i32, _>(0).unwrap())
        .collect()
}

fn run_once(w: &World) {
    let o = w.run(&["sync", "run-once", "--timeout", "10"]);
    assert!(
        o.status.code().is_some(),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[tokio::test]
async fn an_event_is_for_the_user_its_writer_acts_for_never_the_one_it_names() {
    let w = writers_world("authz-writers");

    // Mallory's principal acts for nobody: naming Colombia borrows nothing.
    let forged = insert_event(&w, DBX_MALLORY, "INSERT", "proyecto-colombia");
    // Colombia's principal naming Mexico: refused too.
    let borrowed = insert_event(&w, DBX_COLOMBIA, "INSERT", "proyecto-mexico");
    run_once(&w);
    let (status, error) = event_row(&w, &forged);
    assert_eq!(status, "failed");
    assert!(
        error.contains("mallory@example.com, which acts for no user"),
        "{error}"
    );
    let (status, error) = event_row(&w, &borrowed);
    assert_eq!(status, "failed");
    assert!(
        error.contains("acts for proyecto-colombia") && error.contains("not for 'proyecto-mexico'"),
        "{error}"
    );
    assert_eq!(target_ids(&w).await, [100], "nothing was written");
    let refused: Vec<Value> = w
        .audit_lines()
        .into_iter()
        .filter(|l| l["event_type"] == "sync_event_refused")
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["user_name"], "databricks:mallory@example.com");
    assert_eq!(refused[0]["resource"], "user proyecto-colombia");
    assert_eq!(
        refused[0]["missing_right"],
        "Databricks principal mallory@example.com acting for user proyecto-colombia"
    );
    assert_eq!(refused[1]["user_name"], "proyecto-colombia");

    // The same event from a principal that acts for Mexico is applied.
    let genuine = insert_event(&w, DBX_MEXICO, "INSERT", "proyecto-mexico");
    run_once(&w);
    assert_eq!(event_row(&w, &genuine).0, "completed");
    assert_eq!(target_ids(&w).await, [1, 2, 100]);

    // Colombia's principal turns Mexico's pending INSERT into a DELETE.
    let victim = insert_event(&w, DBX_MEXICO, "UPSERT", "proyecto-mexico");
    let (state, err) = w.dbx_as(
        DBX_COLOMBIA,
        &format!(
            "UPDATE bridge.events.bridge_events SET operation = 'DELETE' WHERE event_id = '{victim}'"
        ),
    );
    assert_eq!(state, "SUCCEEDED", "{err:?}");
    run_once(&w);
    let (status, error) = event_row(&w, &victim);
    assert_eq!(status, "failed");
    assert!(
        error.contains("written by mexico-etl@example.com but changed by colombia-etl@example.com"),
        "{error}"
    );
    assert_eq!(target_ids(&w).await, [1, 2, 100], "nothing was deleted");
    let line = w
        .audit_lines()
        .into_iter()
        .rfind(|l| l["event_type"] == "sync_event_refused")
        .unwrap();
    assert_eq!(line["missing_right"], "an established writer");
    assert_eq!(line["resource"], format!("event {victim}"));

    // The writer may change its own pending event.
    let own = insert_event(&w, DBX_COLOMBIA, "INSERT", "proyecto-colombia");
    let (state, _) = w.dbx_as(
        DBX_COLOMBIA,
        &format!(
            "UPDATE bridge.events.bridge_events SET operation = 'DELETE' WHERE event_id = '{own}'"
        ),
    );
    assert_eq!(state, "SUCCEEDED");
    run_once(&w);
    assert_eq!(event_row(&w, &own).0, "completed");
    assert_eq!(target_ids(&w).await, [100]);
}

#[tokio::test]
async fn a_grant_without_a_database_is_the_bridge_database_and_no_other() {
    let w = demo_world("authz-names");
    // The demo grants KWP_Colombia.dbo.CalibratedPanel; the target names no database.
    let submit = json!({"operation": "INSERT", "source_table": "main.demo.calibrated_panel",
                        "target_table": "dbo.CalibratedPanel", "primary_keys": ["panel_id"]});
    for (database, expected) in [
        (None, 403),
        (Some("KWP_Mexico"), 403),
        (Some("kwp_colombia"), 202),
    ] {
        let env: Vec<(&str, String)> = database
            .map(|d| vec![("SQLSERVER_DATABASE", d.to_string())])
            .unwrap_or_default();
        let b = w.serve_with_env(&["--no-sync"], &env);
        let r = b
            .call("POST", "/sync/events", Some(COLOMBIA), Some(submit.clone()))
            .await;
        assert_eq!(r.status, expected, "{database:?}: {}", r.text);
        if expected == 403 {
            let resolved = format!(
                "{}.dbo.calibratedpanel",
                database.unwrap_or("master").to_lowercase()
            );
            assert!(r.text.contains(&resolved), "{}", r.text);
            let line = &audit_about(&w, "permission_denied", &resolved)[0];
            assert_eq!(line["user_name"], "proyecto-colombia");
            assert_eq!(
                line["missing_right"],
                format!("write on SQL Server table {resolved}")
            );
        }
    }
}

#[test]
fn the_poller_resolves_a_target_in_the_database_it_writes_in() {
    let w = demo_world("authz-poller");
    w.dbx
        .engine()
        .run_script(
            "GRANT USE CATALOG ON CATALOG bridge TO `colombia-etl@example.com`; \
             GRANT USE SCHEMA ON SCHEMA bridge.events TO `colombia-etl@example.com`; \
             GRANT SELECT, MODIFY ON TABLE bridge.events.bridge_events TO `colombia-etl@example.com`",
        )
        .unwrap();
    let insert = |w: &World| {
        let id = uuid::Uuid::new_v4().to_string();
        let (state, err) = w.dbx_as(
            DBX_COLOMBIA,
            &format!(
                "INSERT INTO bridge.events.bridge_events (event_id, operation, source_table, target_table, \
                 primary_keys, columns, requested_by) VALUES ('{id}', 'INSERT', 'main.demo.calibrated_panel', \
                 'dbo.CalibratedPanel', array('panel_id'), array('panel_id', 'country', 'period', \
                 'household_id', 'weight', 'spend', 'is_active', 'updated_at'), 'proyecto-colombia')"
            ),
        );
        assert_eq!(state, "SUCCEEDED", "{err:?}");
        id
    };
    let run = |db: &str| {
        w.command(&["sync", "run-once", "--timeout", "10"])
            .env("SQLSERVER_DATABASE", db)
            .output()
            .unwrap()
    };
    let elsewhere = insert(&w);
    run("KWP_Mexico");
    let (status, error) = event_row(&w, &elsewhere);
    assert_eq!(status, "failed");
    assert!(
        error.contains("no write permission on kwp_mexico.dbo.calibratedpanel"),
        "{error}"
    );
    let home = insert(&w);
    let o = run("KWP_Colombia");
    assert_eq!(
        event_row(&w, &home),
        ("completed".to_string(), String::new()),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A change-tracking load reads its tracked table's changes through
/// CHANGETABLE: the user needs `read` on it even when the query names
/// another table (the query's own tables are checked as always).
#[tokio::test(flavor = "multi_thread")]
async fn a_loads_tracked_table_needs_read_too() {
    let w = demo_world("authz-tracked");
    std::fs::write(
        w.dir.join("queries/espia.sql"),
        "SELECT id_producto FROM KWP_Colombia.dbo.Productos",
    )
    .unwrap();
    std::fs::write(
        w.dir.join("queries/espia.yaml"),
        "table: main.demo.espia\nmode: change_tracking\nprimary_key: [id_producto]\ntracked_table: KWP_Mexico.dbo.J_Ventas_MX\n",
    )
    .unwrap();
    let b = w.serve(&["--no-sync"]);
    let r = b
        .call(
            "POST",
            "/extract",
            Some(COLOMBIA),
            Some(
                json!({"queries_path": "./queries", "config_path": "./config", "country": "Colombia",
                        "queries": ["espia"], "destination": "/Volumes/main/demo/landing",
                        "overwrite": true}),
            ),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(r.text.contains("kwp_mexico.dbo.j_ventas_mx"), "{}", r.text);
    let line = &audit_about(&w, "permission_denied", "kwp_mexico.dbo.j_ventas_mx")[0];
    assert_eq!(line["user_name"], "proyecto-colombia");
}
