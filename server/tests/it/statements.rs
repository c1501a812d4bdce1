//! The Statement Execution API client against the Databricks double:
//! parameters, polling, FAILED, JSON chunk paging and Arrow external links.

use std::time::Duration;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use bridge_sandbox::databricks::{self, DatabricksConfig};
use sql_databricks_bridge::config::{DatabricksAuth, DatabricksSettings};
use sql_databricks_bridge::databricks::statements::{Parameter, StatementError};
use sql_databricks_bridge::databricks::Workspace;

const WAIT: Duration = Duration::from_secs(60);

fn setup() -> (databricks::DatabricksHandle, Workspace) {
    let d = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        inline_chunk_bytes: 64 * 1024,
        external_chunk_bytes: 256 * 1024,
        ..DatabricksConfig::default()
    })
    .unwrap();
    let ws = Workspace::new(
        &DatabricksSettings {
            host: d.url().to_string(),
            auth: DatabricksAuth::Token("dapi-test".into()),
        },
        Duration::from_secs(30),
    )
    .unwrap();
    (d, ws)
}

#[tokio::test]
async fn parameters_polling_and_failures() {
    let (d, ws) = setup();
    let wh = d.warehouse_id().to_string();
    d.set_execution_delay(Duration::from_millis(300));
    let r = ws
        .execute_json(
            &wh,
            "SELECT :name AS name, :n + 1 AS next, :day AS day",
            &[
                Parameter::new("name", "ñandú"),
                Parameter::typed("n", Some("41".into()), "INT"),
                Parameter::typed("day", Some("2024-02-29".into()), "DATE"),
            ],
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(
        r.rows,
        vec![vec![
            Some("ñandú".into()),
            Some("42".into()),
            Some("2024-02-29".into())
        ]]
    );
    assert_eq!(r.columns[1].name, "next");
    d.set_execution_delay(Duration::ZERO);

    let e = ws
        .execute_json(&wh, "SELECT * FROM main.nope.nothing", &[], WAIT)
        .await
        .unwrap_err();
    assert!(matches!(e, StatementError::Failed { .. }), "{e}");
    assert!(
        e.to_string().contains("nothing") || e.to_string().contains("TABLE_OR_VIEW_NOT_FOUND"),
        "{e}"
    );
}

#[tokio::test]
async fn large_results_arrive_complete_in_order() {
    let (d, ws) = setup();
    let wh = d.warehouse_id().to_string();
    let r = ws
        .execute_json(
            &wh,
            "SELECT id, CAST(id AS STRING) AS s FROM range(20000) ORDER BY id",
            &[],
            WAIT,
        )
        .await
        .unwrap();
    assert_eq!(r.rows.len(), 20000);
    assert!(r
        .rows
        .iter()
        .enumerate()
        .all(|(i, row)| row[0] == Some(i.to_string())));

    let (cols, batches) = ws
        .execute_arrow(&wh, "SELECT id FROM range(300000) ORDER BY id", &[], WAIT)
        .await
        .unwrap();
    assert_eq!(cols[0].name, "id");
    assert!(batches.len() > 1, "several chunks expected");
    let mut next = 0i64;
    for b in &batches {
        for v in b.column(0).as_primitive::<Int64Type>().values() {
            assert_eq!(*v, next);
            next += 1;
        }
    }
    assert_eq!(next, 300000);
}

/// A write still running at the caller's deadline is cancelled, not left
/// to commit later unseen.
#[tokio::test]
async fn a_statement_past_its_deadline_is_cancelled() {
    let (d, ws) = setup();
    let wh = d.warehouse_id().to_string();
    d.engine()
        .run_script("CREATE SCHEMA main.late; CREATE TABLE main.late.t (id INT)")
        .unwrap();
    d.set_execution_delay(Duration::from_secs(3));
    let e = ws
        .execute_json(
            &wh,
            "INSERT INTO main.late.t VALUES (1)",
            &[],
            Duration::from_millis(500),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, StatementError::Timeout(_)), "{e}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    d.set_execution_delay(Duration::ZERO);
    let r = ws
        .execute_json(&wh, "SELECT count(*) FROM main.late.t", &[], WAIT)
        .await
        .unwrap();
    assert_eq!(r.rows, vec![vec![Some("0".into())]]);
}
