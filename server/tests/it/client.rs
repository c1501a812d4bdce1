//! The Rust client (`sql-databricks-bridge-client`) against the real server
//! binary and both sandboxes: every facade method, success and error paths,
//! and the example program.

use crate::common;

#[path = "../../../examples/rust_client.rs"]
#[allow(dead_code)]
mod rust_client_example;

use std::time::Duration;

use common::server::{World, COLOMBIA, MEXICO};
use sql_databricks_bridge_client::{
    types, BridgeClient, BridgeError, JobFilter, Retry, NOT_CALLS, OPERATIONS,
};

fn deck_request() -> types::ExtractRequest {
    types::ExtractRequest {
        queries_path: "./queries".into(),
        config_path: "./config".into(),
        country: "Colombia".into(),
        destination: "/Volumes/catalog/schema/vol".into(),
        queries: vec![],
        overwrite: None,
        partition_on: None,
        partitions: None,
    }
}

fn panel_event(columns: bool) -> types::SubmitSyncEvent {
    types::SubmitSyncEvent {
        operation: types::Operation::Upsert,
        source_table: "main.demo.calibrated_panel".into(),
        target_table: "KWP_Colombia.dbo.CalibratedPanel".into(),
        primary_keys: vec!["panel_id".into()],
        columns: columns.then(|| {
            [
                "panel_id",
                "country",
                "period",
                "household_id",
                "weight",
                "spend",
                "is_active",
                "updated_at",
            ]
            .map(String::from)
            .to_vec()
        }),
    }
}

async fn follow(client: &BridgeClient, id: &str) -> types::SyncEvent {
    for _ in 0..300 {
        let e = client.get_sync_event(id).await.unwrap();
        if matches!(
            e.status,
            types::EventStatus::Completed | types::EventStatus::Failed
        ) {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("sync event {id} never finished");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_facade_method_against_the_real_server() {
    let w = World::new("client").with_databricks_demo();
    let b = w.serve(&["--sync-interval", "1"]);
    let client = BridgeClient::new(&b.url, COLOMBIA).unwrap();
    assert!(!format!("{client:?}").contains(COLOMBIA));

    assert_eq!(client.health_live().await.unwrap().status, "ok");
    let ready = client.health_ready().await.unwrap();
    assert_eq!(ready.status, "ready");
    let q = client.list_queries(Some("./queries")).await.unwrap();
    assert_eq!(
        q.queries
            .iter()
            .map(|q| q.name.as_str())
            .collect::<Vec<_>>(),
        ["productos", "ventas"]
    );
    let p = client
        .show_params("Mexico", None, &["ventas"], None)
        .await
        .unwrap();
    assert_eq!(p.params["database"].value, "KWP_Mexico");
    assert!(p.queries[0].sql.contains("J_Ventas_MX"));

    // Extraction followed to the end, then listed and (too late) cancelled.
    let job = client.extract(&deck_request()).await.unwrap();
    let done = client
        .wait_for_job(
            &job.job_id,
            Duration::from_millis(100),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert_eq!(done.state, types::JobState::Succeeded, "{done:?}");
    assert_eq!(done.queries.len(), 2);
    assert!(done.rows > 0);
    let status = client.get_job_status(&job.job_id).await.unwrap();
    assert_eq!(status.finished_at, done.finished_at);
    let listed = client
        .list_jobs(&JobFilter {
            state: Some(types::JobState::Succeeded),
            limit: Some(5),
            ..JobFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(listed.jobs[0].job_id, job.job_id);
    match client.cancel_job(&job.job_id).await {
        Err(BridgeError::Conflict(e)) => assert_eq!(e.code, "conflict"),
        other => panic!("{other:?}"),
    }

    // Typed errors carry the API's body.
    let stranger = BridgeClient::new(&b.url, "not-a-token").unwrap();
    assert!(matches!(
        stranger.get_job_status(&job.job_id).await,
        Err(BridgeError::Unauthorized(_))
    ));
    let mexico = BridgeClient::new(&b.url, MEXICO).unwrap();
    match mexico.extract(&deck_request()).await {
        Err(BridgeError::Forbidden(e)) => {
            assert_eq!(
                e.details.unwrap()["tables"][0],
                "kwp_colombia.dbo.productos"
            )
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        mexico.get_job_status(&job.job_id).await,
        Err(BridgeError::NotFound(_))
    ));
    // The audit trail: Mexico's own refusal, newest first; not Colombia's.
    let page = mexico
        .search_audit(&sql_databricks_bridge_client::AuditFilter {
            event_type: Some("permission_denied".into()),
            since: Some(chrono::Utc::now() - chrono::Duration::hours(1)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(!page.lines.is_empty());
    assert!(page
        .lines
        .iter()
        .all(|l| l.user_name.as_deref() == Some("proyecto-mexico")));
    assert!(matches!(
        mexico
            .search_audit(&sql_databricks_bridge_client::AuditFilter {
                user: Some("proyecto-colombia".into()),
                ..Default::default()
            })
            .await,
        Err(BridgeError::Forbidden(_))
    ));
    let mut bad = deck_request();
    bad.country = "Narnia".into();
    match client.extract(&bad).await {
        Err(BridgeError::Validation(e)) => assert_eq!(e.field(), Some("country")),
        other => panic!("{other:?}"),
    }

    // Sync events: one applied, one failing with the reason.
    let event = client.submit_sync_event(&panel_event(true)).await.unwrap();
    assert_eq!(event.status, types::EventStatus::Pending);
    let done = follow(&client, &event.event_id).await;
    assert_eq!(
        (done.status, done.rows_affected),
        (types::EventStatus::Completed, Some(6)),
        "{done:?}"
    );
    let failing = client.submit_sync_event(&panel_event(false)).await.unwrap();
    let failed = follow(&client, &failing.event_id).await;
    assert_eq!(failed.status, types::EventStatus::Failed);
    let listed = client
        .list_sync_events(Some(types::EventStatus::Failed), Some(10))
        .await
        .unwrap();
    assert_eq!(listed[0].event_id, failing.event_id);
    assert!(listed[0]
        .error_message
        .as_deref()
        .unwrap()
        .contains("column tags"));
    assert!(matches!(
        mexico.submit_sync_event(&panel_event(true)).await,
        Err(BridgeError::Forbidden(_))
    ));

    // A Spark write through the server: its run opened (target resolved,
    // the user's DELETE cap), committed with no stage (nothing to apply,
    // ledgered), committed again from the ledger, aborted; Mexico, with no
    // right on the target, refused. (The user has no DELETE cap here: the
    // request's holds.)
    let write = types::SparkWrite {
        write_id: "client-spark-1".parse().unwrap(),
        run_id: "r1".parse().unwrap(),
        operation: types::Operation::Delete,
        target_table: "KWP_Colombia.dbo.CalibratedPanel".parse().unwrap(),
        primary_keys: vec!["panel_id".parse().unwrap()],
        columns: vec![types::SparkColumn {
            name: "panel_id".parse().unwrap(),
            spark_type: "bigint".parse().unwrap(),
        }],
        stage_schema: None,
        max_delete_rows: Some(1000),
        table_lock: None,
    };
    let run = client.open_spark_write(&write).await.unwrap();
    assert_eq!(
        (run.target_table.as_str(), run.max_delete_rows),
        ("[KWP_Colombia].[dbo].[CalibratedPanel]", 1000)
    );
    assert!(run.write_id.ends_with(":client-spark-1"), "{run:?}");
    let commit = types::SparkCommit {
        write: write.clone(),
        stages: vec![],
    };
    let first = client.commit_spark_write(&commit).await.unwrap();
    assert_eq!((first.rows_read, first.from_ledger), (0, false));
    let again = client.commit_spark_write(&commit).await.unwrap();
    assert!(again.from_ledger, "{again:?}");
    assert_eq!(
        client
            .abort_spark_write(&write)
            .await
            .unwrap()
            .stages_dropped,
        0
    );
    assert!(matches!(
        mexico.open_spark_write(&write).await,
        Err(BridgeError::Forbidden(_))
    ));

    assert!(client
        .metrics()
        .await
        .unwrap()
        .contains("bridge_jobs{state=\"succeeded\"}"));
    let spec = client.openapi().await.unwrap();
    let committed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(spec, committed);

    // The example program, as shipped.
    let lines = rust_client_example::run(&b.url, COLOMBIA, "/Volumes/main/demo/landing")
        .await
        .unwrap();
    assert!(lines[0].contains("Succeeded"), "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Completed, rows affected Some(6)")),
        "{lines:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_wait_timeout_on_a_long_job() {
    let w = World::new("client-cancel").with_large_table(200_000);
    w.sql.faults().delay_packets(Duration::from_millis(3));
    let out = w.dir.join("out");
    let b = w.serve(&[
        "--output-root",
        out.to_str().unwrap(),
        "--batch-rows",
        "1000",
    ]);
    let client = BridgeClient::new(&b.url, COLOMBIA).unwrap();
    let mut req = deck_request();
    req.destination = "local".into();
    req.queries = vec!["largo".into()];
    let job = client.extract(&req).await.unwrap();
    match client
        .wait_for_job(
            &job.job_id,
            Duration::from_millis(100),
            Duration::from_millis(800),
        )
        .await
    {
        Err(BridgeError::Timeout(last)) => {
            assert!(matches!(
                last.state,
                types::JobState::Queued | types::JobState::Running
            ))
        }
        other => panic!("{other:?}"),
    }
    let cancelled = client.cancel_job(&job.job_id).await.unwrap();
    assert_eq!(cancelled.state, types::JobState::Cancelled);
}

type Seen = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A server that answers 503 (with the API's error body) to the first two
/// requests, then 200 (202 with a job to a POST); it records each
/// request's head.
async fn flaky() -> (String, Seen) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Default::default();
    let heads = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            // The whole request (head and body), so that closing the
            // connection after the answer never cuts an unread body.
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            let head = loop {
                let n = s.read(&mut chunk).await.unwrap_or(0);
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_lowercase();
                if let Some(end) = text.find("\r\n\r\n") {
                    let length: usize = text
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if n == 0 || buf.len() >= end + 4 + length {
                        break text;
                    }
                } else if n == 0 {
                    break text;
                }
            };
            let post = head.starts_with("post");
            let count = {
                let mut h = heads.lock().unwrap();
                h.push(head);
                h.len()
            };
            let (status, body) = if post {
                (
                    "202 Accepted",
                    r#"{"job_id":"j1","state":"queued","status_url":"/jobs/j1"}"#,
                )
            } else {
                (
                    "200 OK",
                    r#"{"status":"ok","version":"x","uptime_seconds":1}"#,
                )
            };
            let (status, body) = if count <= 2 {
                (
                    "503 Service Unavailable",
                    r#"{"code":"unavailable","message":"try again"}"#,
                )
            } else {
                (status, body)
            };
            let resp = {
                format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                )
            };
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    (url, seen)
}

/// The `Idempotency-Key` of each request head.
fn keys(seen: &Seen) -> Vec<Option<String>> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|h| {
            h.lines()
                .find_map(|l| l.strip_prefix("idempotency-key:"))
                .map(|k| k.trim().to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn gets_and_keyed_posts_are_retried() {
    let retry = Retry {
        attempts: 3,
        base: Duration::from_millis(5),
        cap: Duration::from_millis(20),
    };
    let (url, seen) = flaky().await;
    let client = BridgeClient::new(&url, "t")
        .unwrap()
        .with_retry(retry.clone());
    assert_eq!(client.health_live().await.unwrap().status, "ok");
    assert_eq!(keys(&seen), [None, None, None]);
    // A POST is retried with the same key on each attempt.
    let (url, seen) = flaky().await;
    let client = BridgeClient::new(&url, "t").unwrap().with_retry(retry);
    assert_eq!(client.extract(&deck_request()).await.unwrap().job_id, "j1");
    let sent = keys(&seen);
    assert_eq!(sent.len(), 3);
    assert!(
        sent[0].is_some() && sent.iter().all(|k| k == &sent[0]),
        "{sent:?}"
    );
    // The next call is another request: another key.
    client.extract(&deck_request()).await.unwrap();
    let sent = keys(&seen);
    assert!(sent[3].is_some() && sent[3] != sent[0], "{sent:?}");
    // A key the API would refuse is refused here, without a request.
    let e = client
        .extract_with_key(&deck_request(), "not a key")
        .await
        .unwrap_err();
    assert_eq!(e.api().unwrap().field(), Some("Idempotency-Key"));
    assert_eq!(keys(&seen).len(), 4);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callers_idempotency_key_returns_the_first_job() {
    let w = World::new("client-idempotency").with_databricks_demo();
    let b = w.serve(&["--no-sync"]);
    let client = BridgeClient::new(&b.url, COLOMBIA).unwrap();
    let first = client
        .extract_with_key(&deck_request(), "rust-key-1")
        .await
        .unwrap();
    let again = client
        .extract_with_key(&deck_request(), "rust-key-1")
        .await
        .unwrap();
    assert_eq!(first.job_id, again.job_id);
    let mut other = deck_request();
    other.queries = vec!["ventas".into()];
    match client.extract_with_key(&other, "rust-key-1").await {
        Err(BridgeError::Validation(e)) => assert_eq!(e.code, "idempotency_key_reused"),
        other => panic!("{other:?}"),
    }
    let jobs = client.list_jobs(&JobFilter::default()).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    // Sync events: the same.
    let event = panel_event(false);
    let e1 = client
        .submit_sync_event_with_key(&event, "rust-key-2")
        .await
        .unwrap();
    let e2 = client
        .submit_sync_event_with_key(&event, "rust-key-2")
        .await
        .unwrap();
    assert_eq!(e1.event_id, e2.event_id);
    assert_eq!(client.list_sync_events(None, None).await.unwrap().len(), 1);
    client
        .wait_for_job(
            &first.job_id,
            Duration::from_millis(100),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
}

#[test]
fn every_operation_in_the_spec_has_a_facade_method() {
    let spec: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi.json")).unwrap(),
    )
    .unwrap();
    let mut in_spec: Vec<String> = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap().to_string())
        .collect();
    in_spec.sort();
    let mut covered: Vec<String> = OPERATIONS
        .iter()
        .map(|(op, _)| op.to_string())
        .chain(NOT_CALLS.iter().map(|s| s.to_string()))
        .collect();
    covered.sort();
    assert_eq!(
        in_spec, covered,
        "an operation without a BridgeClient method (or a stale one)"
    );
}
