//! Delta history and the change data feed in the Databricks double, over
//! HTTP: versions and their writers in DESCRIBE HISTORY (JSON_ARRAY and
//! ARROW_STREAM), the change rows of inserts, updates, deletes and MERGE,
//! table_changes with versions, timestamps and parameters, composed with
//! joins and subqueries, and its documented errors.

use crate::dbx;

use arrow_array::{Array, MapArray, StringArray};
use dbx::*;
use serde_json::json;

async fn writes(h: &bridge_sandbox::databricks::DatabricksHandle) {
    rows(h, ADMIN, "CREATE SCHEMA main.h").await;
    rows(
        h,
        ADMIN,
        "CREATE TABLE main.h.t (id BIGINT, v STRING) TBLPROPERTIES (delta.enableChangeDataFeed = true)",
    )
    .await;
    for g in [
        "GRANT USE CATALOG ON CATALOG main",
        "GRANT USE SCHEMA ON SCHEMA main.h",
        "GRANT SELECT, MODIFY ON TABLE main.h.t",
    ] {
        rows(h, ADMIN, &format!("{g} TO `{ALICE_USER}`")).await;
    }
    // v1 alice, v2 admin, v3 alice, v4 admin.
    rows(h, ALICE, "INSERT INTO main.h.t VALUES (1, 'a'), (2, 'b')").await;
    rows(h, ADMIN, "UPDATE main.h.t SET v = 'B' WHERE id = 2").await;
    rows(h, ALICE, "DELETE FROM main.h.t WHERE id = 1").await;
    rows(
        h,
        ADMIN,
        "MERGE INTO main.h.t AS t USING (SELECT 2 AS id, 'x' AS v UNION ALL SELECT 3, 'c') AS s \
         ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
    )
    .await;
}

#[tokio::test]
async fn history_records_each_version_and_its_writer() {
    let h = start(config());
    writes(&h).await;
    // An UPDATE that matches nothing commits no version.
    rows(&h, ADMIN, "UPDATE main.h.t SET v = 'z' WHERE id = 99").await;

    let v = sql(&h, ADMIN, "DESCRIBE HISTORY main.h.t").await;
    assert_eq!(
        manifest(&v),
        [
            ("version", "LONG"),
            ("timestamp", "TIMESTAMP"),
            ("userId", "STRING"),
            ("userName", "STRING"),
            ("operation", "STRING"),
            ("operationParameters", "MAP"),
            ("job", "STRING"),
            ("notebook", "STRING"),
            ("clusterId", "STRING"),
            ("readVersion", "LONG"),
            ("isolationLevel", "STRING"),
            ("isBlindAppend", "BOOLEAN"),
            ("operationMetrics", "MAP"),
            ("userMetadata", "STRING"),
        ]
        .map(|(n, t)| (n.to_string(), t.to_string()))
    );
    let history = data(&v);
    let summary: Vec<(&str, &str, &str, &str)> = history
        .iter()
        .map(|r| (r[0].as_str(), r[3].as_str(), r[4].as_str(), r[9].as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("4", ADMIN_USER, "MERGE", "3"),
            ("3", ALICE_USER, "DELETE", "2"),
            ("2", ADMIN_USER, "UPDATE", "1"),
            ("1", ALICE_USER, "WRITE", "0"),
            ("0", ADMIN_USER, "CREATE TABLE", "null"),
        ]
    );
    // userId is the writer's numeric id; the newest commit is the latest.
    assert_ne!(history[0][2], history[1][2]);
    assert!(history[0][2].chars().all(|c| c.is_ascii_digit()));
    assert!(history[0][1] > history[1][1]);
    let write = &history[3];
    let params: serde_json::Value = serde_json::from_str(&write[5]).expect("map as JSON");
    assert_eq!(params["mode"], "Append");
    let metrics: serde_json::Value = serde_json::from_str(&write[12]).expect("metrics");
    assert_eq!(metrics["numOutputRows"], "2");
    assert_eq!(
        (write[10].as_str(), write[11].as_str()),
        ("WriteSerializable", "true")
    );
    let merge: serde_json::Value = serde_json::from_str(&history[0][12]).expect("metrics");
    assert_eq!(
        (
            &merge["numTargetRowsUpdated"],
            &merge["numTargetRowsInserted"]
        ),
        (&json!("1"), &json!("1"))
    );
    let delete: serde_json::Value = serde_json::from_str(&history[1][5]).expect("params");
    assert_eq!(delete["predicate"], "[\"(id = 1)\"]");

    assert_eq!(
        rows(&h, ADMIN, "DESCRIBE HISTORY main.h.t LIMIT 1")
            .await
            .len(),
        1
    );
    // History is read with the table's privileges.
    let (code, _) = fails(&h, BOB, "DESCRIBE HISTORY main.h.t").await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert_eq!(rows(&h, ALICE, "DESCRIBE HISTORY main.h.t").await.len(), 5);

    // ARROW_STREAM: operationParameters is an Arrow map of strings.
    let v = sql_with(
        &h,
        ADMIN,
        "DESCRIBE HISTORY main.h.t",
        json!({ "format": "ARROW_STREAM", "disposition": "EXTERNAL_LINKS" }),
    )
    .await;
    assert_eq!(v["status"]["state"], "SUCCEEDED", "{v}");
    let link = v["result"]["external_links"][0]["external_link"]
        .as_str()
        .expect("link");
    let bytes = client()
        .get(link)
        .send()
        .await
        .expect("download")
        .bytes()
        .await
        .expect("bytes");
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
            .expect("arrow stream");
    let batches: Vec<_> = reader.collect::<Result<_, _>>().expect("batches");
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 5);
    let params = batch
        .column_by_name("operationParameters")
        .expect("column")
        .as_any()
        .downcast_ref::<MapArray>()
        .expect("a map");
    let write = params.value(3);
    let keys = write
        .column(0)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("keys");
    let values = write
        .column(1)
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("values");
    let mode = (0..keys.len())
        .find(|&i| keys.value(i) == "mode")
        .expect("mode");
    assert_eq!(values.value(mode), "Append");
    assert!(batch.column_by_name("job").expect("job").is_null(0));
}

#[tokio::test]
async fn change_data_feed_records_rows_and_table_changes_reads_them() {
    let h = start(config());
    writes(&h).await;

    let v = sql(
        &h,
        ALICE,
        "SELECT id, v, _change_type, _commit_version FROM table_changes('main.h.t', 1) \
         ORDER BY _commit_version, _change_type, id",
    )
    .await;
    assert_eq!(v["status"]["state"], "SUCCEEDED", "{v}");
    assert_eq!(
        data(&v),
        [
            ["1", "a", "insert", "1"],
            ["2", "b", "insert", "1"],
            ["2", "B", "update_postimage", "2"],
            ["2", "b", "update_preimage", "2"],
            ["1", "a", "delete", "3"],
            ["3", "c", "insert", "4"],
            ["2", "x", "update_postimage", "4"],
            ["2", "B", "update_preimage", "4"],
        ]
    );
    let all = sql(&h, ADMIN, "SELECT * FROM table_changes('main.h.t', 0)").await;
    assert_eq!(
        manifest(&all),
        [
            ("id", "LONG"),
            ("v", "STRING"),
            ("_change_type", "STRING"),
            ("_commit_version", "LONG"),
            ("_commit_timestamp", "TIMESTAMP"),
        ]
        .map(|(n, t)| (n.to_string(), t.to_string()))
    );
    assert_eq!(data(&all).len(), 8);

    // An end version; a named parameter as start.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT _change_type FROM table_changes('main.h.t', 2, 2) ORDER BY 1"
        )
        .await,
        [["update_postimage"], ["update_preimage"]]
    );
    let v = sql_with(
        &h,
        ADMIN,
        "SELECT count(*) FROM table_changes('main.h.t', :from)",
        json!({ "parameters": [{ "name": "from", "value": "3", "type": "BIGINT" }] }),
    )
    .await;
    assert_eq!(data(&v), [["4"]]);

    // A timestamp start: the first version committed at or after it.
    let history = rows(&h, ADMIN, "DESCRIBE HISTORY main.h.t").await;
    let v3 = history.iter().find(|r| r[0] == "3").expect("v3")[1].clone();
    let from_ts = rows(
        &h,
        ADMIN,
        &format!(
            "SELECT DISTINCT _commit_version FROM table_changes('main.h.t', '{v3}') ORDER BY 1"
        ),
    )
    .await;
    assert_eq!(from_ts, [["3"], ["4"]]);
    let v4 = history.iter().find(|r| r[0] == "4").expect("v4")[1].clone();
    let ts_range = rows(
        &h,
        ADMIN,
        &format!(
            "SELECT DISTINCT _commit_version FROM table_changes('main.h.t', TIMESTAMP '{v3}', TIMESTAMP '{v4}') ORDER BY 1"
        ),
    )
    .await;
    assert_eq!(ts_range, [["3"], ["4"]]);

    // It composes like a table: WHERE, joins, subqueries.
    rows(
        &h,
        ADMIN,
        "CREATE TABLE main.h.other (id BIGINT, name STRING)",
    )
    .await;
    rows(
        &h,
        ADMIN,
        "INSERT INTO main.h.other VALUES (1, 'one'), (3, 'three')",
    )
    .await;
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT o.name, c._commit_version FROM table_changes('main.h.t', 1) AS c \
             JOIN main.h.other AS o ON o.id = c.id WHERE c._change_type = 'insert' ORDER BY o.name",
        )
        .await,
        [["one", "1"], ["three", "4"]]
    );
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT name FROM main.h.other WHERE id IN \
             (SELECT id FROM table_changes('main.h.t', 0) WHERE _change_type = 'delete')",
        )
        .await,
        [["one"]]
    );

    // Reading changes takes SELECT on the table.
    let (code, _) = fails(&h, BOB, "SELECT * FROM table_changes('main.h.t', 0)").await;
    assert_eq!(code, "PERMISSION_DENIED");

    // The documented errors.
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.h.t', 9)").await;
    assert!(
        msg.contains("Start version cannot be greater than the latest version of the table(4)"),
        "{msg}"
    );
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.h.t', 3, 1)").await;
    assert!(msg.starts_with("[DELTA_INVALID_CDC_RANGE]"), "{msg}");
    let (_, msg) = fails(
        &h,
        ADMIN,
        "SELECT * FROM table_changes('main.h.t', '2999-01-01 00:00:00')",
    )
    .await;
    assert!(
        msg.starts_with("[DELTA_TIMESTAMP_GREATER_THAN_COMMIT]"),
        "{msg}"
    );
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.h.other', 0)").await;
    assert!(msg.starts_with("[DELTA_MISSING_CHANGE_DATA]"), "{msg}");
    assert!(msg.contains("not recorded for version [0]"), "{msg}");
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.h.nope', 0)").await;
    assert!(msg.starts_with("[TABLE_OR_VIEW_NOT_FOUND]"), "{msg}");
}

#[tokio::test]
async fn alter_table_turns_the_feed_on_for_later_versions() {
    let h = start(config());
    rows(&h, ADMIN, "CREATE SCHEMA main.a").await;
    rows(&h, ADMIN, "CREATE TABLE main.a.t (id INT, v STRING)").await;
    rows(&h, ADMIN, "INSERT INTO main.a.t VALUES (1, 'a')").await;
    rows(
        &h,
        ADMIN,
        "ALTER TABLE main.a.t SET TBLPROPERTIES (delta.enableChangeDataFeed = true)",
    )
    .await;
    assert_eq!(
        rows(&h, ADMIN, "SHOW TBLPROPERTIES main.a.t").await,
        [["delta.enableChangeDataFeed", "true"]]
    );
    rows(&h, ADMIN, "INSERT INTO main.a.t VALUES (2, 'b')").await;
    rows(&h, ADMIN, "DELETE FROM main.a.t WHERE id = 1").await;
    let history = rows(&h, ADMIN, "DESCRIBE HISTORY main.a.t").await;
    assert_eq!(
        history.iter().map(|r| r[4].as_str()).collect::<Vec<_>>(),
        [
            "DELETE",
            "WRITE",
            "SET TBLPROPERTIES",
            "WRITE",
            "CREATE TABLE"
        ]
    );
    // From the version that enabled it on, the changes are there.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT id, _change_type, _commit_version FROM table_changes('main.a.t', 2) ORDER BY _commit_version",
        )
        .await,
        [["2", "insert", "3"], ["1", "delete", "4"]]
    );
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.a.t', 1)").await;
    assert!(
        msg.contains("as change data was not recorded for version [1]"),
        "{msg}"
    );

    // Turned off, later versions record nothing and reading them fails.
    rows(
        &h,
        ADMIN,
        "ALTER TABLE main.a.t SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'false')",
    )
    .await;
    rows(&h, ADMIN, "INSERT INTO main.a.t VALUES (3, 'c')").await;
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.a.t', 2)").await;
    assert!(msg.starts_with("[DELTA_MISSING_CHANGE_DATA]"), "{msg}");
}

/// Time passes on the workspace's clock: the log keeps 30 days (cleaned at
/// the checkpoint every 10 commits, back to the newest checkpoint older
/// than that), VACUUM removes change data older than 7 days, and reading
/// what is gone fails with Delta's errors.
#[tokio::test]
async fn history_and_change_data_expire_as_time_passes() {
    let day = std::time::Duration::from_secs(86_400);
    let h = start(config());
    rows(&h, ADMIN, "CREATE SCHEMA main.r").await;
    rows(
        &h,
        ADMIN,
        "CREATE TABLE main.r.t (id INT) TBLPROPERTIES (delta.enableChangeDataFeed = true)",
    )
    .await;
    // v1..v12, one a day.
    for i in 1..=12 {
        rows(&h, ADMIN, &format!("INSERT INTO main.r.t VALUES ({i})")).await;
        h.clock().advance(day);
    }
    // Now is day 12.5: v0..v6 (days 0 to 5) are more than 7 days old.
    h.clock().advance(day / 2);
    let versions = |r: Vec<Vec<String>>| r.iter().map(|x| x[0].clone()).collect::<Vec<_>>();
    assert_eq!(
        versions(rows(&h, ADMIN, "DESCRIBE HISTORY main.r.t").await).len(),
        13
    );

    // A VACUUM under 168 hours is refused; a dry run changes nothing.
    let (_, msg) = fails(&h, ADMIN, "VACUUM main.r.t RETAIN 24 HOURS").await;
    assert!(msg.contains("such a low retention period"), "{msg}");
    let dry = rows(&h, ADMIN, "VACUUM main.r.t DRY RUN").await;
    assert_eq!(dry.len(), 7, "{dry:?}");
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT count(*) FROM table_changes('main.r.t', 1)"
        )
        .await,
        [["12"]]
    );
    // Alice may read but not VACUUM.
    for g in [
        "GRANT USE CATALOG ON CATALOG main",
        "GRANT USE SCHEMA ON SCHEMA main.r",
        "GRANT SELECT ON TABLE main.r.t",
    ] {
        rows(&h, ADMIN, &format!("{g} TO `{ALICE_USER}`")).await;
    }
    let (code, _) = fails(&h, ALICE, "VACUUM main.r.t").await;
    assert_eq!(code, "PERMISSION_DENIED");

    rows(&h, ADMIN, "VACUUM main.r.t").await;
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.r.t', 1)").await;
    assert!(
        msg.starts_with("[DELTA_CHANGE_DATA_FILE_NOT_FOUND]") && msg.contains("VACUUM"),
        "{msg}"
    );
    // The change data still kept reads as before.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT id, _commit_version FROM table_changes('main.r.t', 7) ORDER BY id"
        )
        .await
        .len(),
        6
    );
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.r.t', 6)").await;
    assert!(
        msg.starts_with("[DELTA_CHANGE_DATA_FILE_NOT_FOUND]"),
        "{msg}"
    );

    // 30 days later, the next checkpoint (v20) cleans the log up to the
    // newest checkpoint older than 30 days (v10).
    h.clock().advance(day * 30);
    for i in 13..=19 {
        rows(&h, ADMIN, &format!("INSERT INTO main.r.t VALUES ({i})")).await;
    }
    assert_eq!(
        versions(rows(&h, ADMIN, "DESCRIBE HISTORY main.r.t").await).last(),
        Some(&"0".to_string()),
        "no checkpoint yet: nothing cleaned"
    );
    rows(&h, ADMIN, "INSERT INTO main.r.t VALUES (20)").await;
    let kept = versions(rows(&h, ADMIN, "DESCRIBE HISTORY main.r.t").await);
    assert_eq!(kept.first().map(String::as_str), Some("20"));
    assert_eq!(kept.last().map(String::as_str), Some("10"));
    let (_, msg) = fails(&h, ADMIN, "SELECT * FROM table_changes('main.r.t', 9)").await;
    assert!(
        msg.starts_with("[DELTA_VERSION_NOT_FOUND]")
            && msg.contains("Available versions: [10, 20]"),
        "{msg}"
    );
    let (_, msg) = fails(
        &h,
        ADMIN,
        "SELECT * FROM table_changes('main.r.t', '2000-01-01 00:00:00')",
    )
    .await;
    assert!(
        msg.starts_with("[DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION]"),
        "{msg}"
    );
    // What the table holds is untouched by either.
    assert_eq!(
        rows(&h, ADMIN, "SELECT count(*) FROM main.r.t").await,
        [["20"]]
    );
    // current_timestamp() follows the clock.
    let now = rows(&h, ADMIN, "SELECT CAST(current_timestamp() AS STRING)").await;
    let year: i32 = now[0][0][..4].parse().unwrap();
    assert!(
        year >= chrono::Utc::now()
            .format("%Y")
            .to_string()
            .parse::<i32>()
            .unwrap(),
        "{now:?}"
    );
}
