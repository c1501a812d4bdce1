//! Loading extracted Parquet into Delta tables through the Databricks
//! double, over HTTP, as the bridge does it: MERGE INTO from tables,
//! subqueries and Volume files, COPY INTO from Volume directories; the
//! results, history versions, change data feed rows and documented errors
//! of each statement.

use crate::dbx;

use std::sync::Arc;

use arrow_array::{ArrayRef, Int32Array, Int64Array, RecordBatch, StringArray};
use bridge_sandbox::databricks::DatabricksHandle;
use dbx::*;

/// A Parquet file of the given columns.
fn parquet(columns: Vec<(&str, ArrayRef)>) -> Vec<u8> {
    let batch = RecordBatch::try_from_iter(columns).expect("batch");
    let mut out = Vec::new();
    let mut w =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), None).expect("writer");
    w.write(&batch).expect("write");
    w.close().expect("close");
    out
}

fn ids(v: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(v.to_vec()))
}

fn ints(v: &[i32]) -> ArrayRef {
    Arc::new(Int32Array::from(v.to_vec()))
}

fn strs(v: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(v.to_vec()))
}

/// Uploads a file through the Files API as the holder of `token`.
async fn put_file(h: &DatabricksHandle, token: &str, path: &str, body: Vec<u8>) -> u16 {
    client()
        .put(format!("{}/api/2.0/fs/files{path}?overwrite=true", h.url()))
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .expect("upload")
        .status()
        .as_u16()
}

/// A schema `main.l` with a volume `landing` and a target table with the
/// change data feed on.
async fn workspace() -> DatabricksHandle {
    let h = start(config());
    for s in [
        "CREATE SCHEMA main.l",
        "CREATE VOLUME main.l.landing",
        "CREATE TABLE main.l.t (id BIGINT, v STRING) TBLPROPERTIES (delta.enableChangeDataFeed = true)",
        "INSERT INTO main.l.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    ] {
        rows(&h, ADMIN, s).await;
    }
    h
}

fn counts_of(v: &serde_json::Value) -> Vec<(String, String)> {
    manifest(v)
        .into_iter()
        .map(|(n, _)| n)
        .zip(data(v).into_iter().next().unwrap_or_default())
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test]
async fn merge_upserts_from_a_subquery_with_counts_history_and_change_rows() {
    let h = workspace().await;
    let v = sql(
        &h,
        ADMIN,
        "MERGE INTO main.l.t AS t USING (SELECT 2 AS id, 'B' AS v UNION ALL SELECT 3, 'gone' UNION ALL SELECT 4, 'd') AS s \
         ON t.id = s.id \
         WHEN MATCHED AND s.v = 'gone' THEN DELETE \
         WHEN MATCHED THEN UPDATE SET v = s.v \
         WHEN NOT MATCHED THEN INSERT *",
    )
    .await;
    assert_eq!(v["status"]["state"], "SUCCEEDED", "{v}");
    assert_eq!(
        counts_of(&v),
        pairs(&[
            ("num_affected_rows", "3"),
            ("num_updated_rows", "1"),
            ("num_deleted_rows", "1"),
            ("num_inserted_rows", "1"),
        ])
    );
    assert_eq!(
        manifest(&v)
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>(),
        ["LONG"; 4]
    );
    assert_eq!(
        rows(&h, ADMIN, "SELECT id, v FROM main.l.t ORDER BY id").await,
        [["1", "a"], ["2", "B"], ["4", "d"]]
    );
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t LIMIT 1").await);
    assert_eq!(hist[0][0], "2");
    assert_eq!(hist[0][4], "MERGE");
    let changes = rows(
        &h,
        ADMIN,
        "SELECT id, v, _change_type FROM table_changes('main.l.t', 2) ORDER BY id, _change_type",
    )
    .await;
    assert_eq!(
        changes,
        [
            ["2", "B", "update_postimage"],
            ["2", "b", "update_preimage"],
            ["3", "c", "delete"],
            ["4", "d", "insert"],
        ]
    );
}

#[tokio::test]
async fn merge_reads_parquet_from_a_volume() {
    let h = workspace().await;
    let file = parquet(vec![("id", ids(&[3, 5])), ("v", strs(&["C", "e"]))]);
    assert_eq!(
        put_file(
            &h,
            ADMIN,
            "/Volumes/main/l/landing/run1/part-0.parquet",
            file
        )
        .await,
        204
    );
    let v = rows(
        &h,
        ADMIN,
        "MERGE INTO main.l.t t USING read_files('/Volumes/main/l/landing/run1', format => 'parquet') s \
         ON t.id = s.id WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *",
    )
    .await;
    assert_eq!(v, [["2", "1", "0", "1"]]);
    let v = rows(
        &h,
        ADMIN,
        "MERGE INTO main.l.t USING parquet.`/Volumes/main/l/landing/run1/part-0.parquet` AS src \
         ON t.id = src.id WHEN NOT MATCHED BY SOURCE AND t.id < 2 THEN DELETE",
    )
    .await;
    assert_eq!(v, [["1", "0", "1", "0"]]);
    assert_eq!(
        rows(&h, ADMIN, "SELECT id, v FROM main.l.t ORDER BY id").await,
        [["2", "b"], ["3", "C"], ["5", "e"]]
    );
}

#[tokio::test]
async fn merge_refuses_ambiguous_multiple_matches_only() {
    let h = workspace().await;
    let dup = "(SELECT 1 AS id, 'x' AS v UNION ALL SELECT 1, 'y')";
    let (code, msg) = fails(
        &h,
        ADMIN,
        &format!("MERGE INTO main.l.t t USING {dup} s ON t.id = s.id WHEN MATCHED THEN UPDATE SET v = s.v"),
    )
    .await;
    assert_eq!(code, "BAD_REQUEST");
    assert!(
        msg.starts_with("[DELTA_MULTIPLE_SOURCE_ROW_MATCHING_TARGET_ROW_IN_MERGE]")
            && msg.ends_with("SQLSTATE: 21506"),
        "{msg}"
    );
    // Nothing changed, no version committed.
    assert_eq!(
        rows(&h, ADMIN, "SELECT v FROM main.l.t WHERE id = 1").await,
        [["a"]]
    );
    assert_eq!(
        data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t").await).len(),
        2
    );
    // "Multiple matches are allowed when matches are unconditionally deleted."
    assert_eq!(
        rows(
            &h,
            ADMIN,
            &format!("MERGE INTO main.l.t t USING {dup} s ON t.id = s.id WHEN MATCHED THEN DELETE"),
        )
        .await,
        [["1", "0", "1", "0"]]
    );
    // An insert-only merge changes no matched row.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "MERGE INTO main.l.t t USING (SELECT 2 AS id, 'x' AS v UNION ALL SELECT 2, 'y' UNION ALL SELECT 9, 'z') s \
             ON t.id = s.id WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, s.v)",
        )
        .await,
        [["1", "0", "0", "1"]]
    );
}

#[tokio::test]
async fn merge_clauses_take_the_first_that_applies_to_the_rows_as_they_were() {
    let h = workspace().await;
    rows(
        &h,
        ADMIN,
        "INSERT INTO main.l.t VALUES (10, 'k'), (11, 'drop')",
    )
    .await;
    // Row 2 changes its key to 20 in a matched clause; the by-source
    // clauses must not see it as unmatched afterwards. Row 10 satisfies
    // both by-source conditions: the first (UPDATE) applies.
    let v = rows(
        &h,
        ADMIN,
        "MERGE INTO main.l.t AS t USING (SELECT 2 AS id) AS s ON t.id = s.id \
         WHEN MATCHED THEN UPDATE SET id = 20 \
         WHEN NOT MATCHED BY SOURCE AND t.id >= 10 AND t.v <> 'drop' THEN UPDATE SET v = 'kept' \
         WHEN NOT MATCHED BY SOURCE AND t.id >= 10 THEN DELETE",
    )
    .await;
    assert_eq!(v, [["3", "2", "1", "0"]]);
    assert_eq!(
        rows(&h, ADMIN, "SELECT id, v FROM main.l.t ORDER BY id").await,
        [["1", "a"], ["3", "c"], ["10", "kept"], ["20", "b"]]
    );
}

#[tokio::test]
async fn merge_clause_rules_and_errors_are_the_documented_ones() {
    let h = workspace().await;
    let (_, msg) = fails(
        &h,
        ADMIN,
        "MERGE INTO main.l.t t USING main.l.t s ON t.id = s.id \
         WHEN MATCHED THEN DELETE WHEN MATCHED AND s.id = 1 THEN UPDATE SET v = 'x'",
    )
    .await;
    assert!(
        msg.starts_with("[NON_LAST_MATCHED_CLAUSE_OMIT_CONDITION]")
            && msg.ends_with("SQLSTATE: 42613"),
        "{msg}"
    );
    let (_, msg) = fails(
        &h,
        ADMIN,
        "MERGE INTO main.l.t t USING main.l.t s ON t.id = s.id \
         WHEN NOT MATCHED THEN INSERT * WHEN NOT MATCHED AND s.id = 1 THEN INSERT *",
    )
    .await;
    assert!(
        msg.starts_with("[NON_LAST_NOT_MATCHED_BY_TARGET_CLAUSE_OMIT_CONDITION]"),
        "{msg}"
    );
    let (_, msg) = fails(
        &h,
        ADMIN,
        "MERGE INTO main.l.t t USING (SELECT 7 AS id) s ON t.id = s.id WHEN NOT MATCHED THEN INSERT *",
    )
    .await;
    assert!(
        msg.starts_with("[DELTA_MERGE_UNRESOLVED_EXPRESSION]"),
        "{msg}"
    );
    let (_, msg) = fails(
        &h,
        ADMIN,
        "MERGE WITH SCHEMA EVOLUTION INTO main.l.t t USING main.l.t s ON t.id = s.id WHEN MATCHED THEN DELETE",
    )
    .await;
    assert!(msg.starts_with("[UNSUPPORTED_FEATURE]"), "{msg}");
    // DEFAULT is the column's default: NULL here.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "MERGE INTO main.l.t t USING (SELECT 7 AS id) s ON t.id = s.id \
             WHEN NOT MATCHED THEN INSERT (id, v) VALUES (s.id, DEFAULT)",
        )
        .await,
        [["1", "0", "0", "1"]]
    );
    assert_eq!(
        rows(&h, ADMIN, "SELECT v FROM main.l.t WHERE id = 7").await,
        [["null"]]
    );
}

#[tokio::test]
async fn merge_needs_modify_and_select_on_the_target_and_read_volume_for_files() {
    let h = workspace().await;
    let file = parquet(vec![("id", ids(&[1])), ("v", strs(&["A"]))]);
    put_file(&h, ADMIN, "/Volumes/main/l/landing/one.parquet", file).await;
    for g in [
        "GRANT USE CATALOG ON CATALOG main",
        "GRANT USE SCHEMA ON SCHEMA main.l",
        "GRANT MODIFY ON TABLE main.l.t",
    ] {
        rows(&h, ADMIN, &format!("{g} TO `{ALICE_USER}`")).await;
    }
    let merge = "MERGE INTO main.l.t t USING parquet.`/Volumes/main/l/landing/one.parquet` s \
                 ON t.id = s.id WHEN MATCHED THEN UPDATE SET *";
    let (code, msg) = fails(&h, ALICE, merge).await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(
        msg.contains("User does not have SELECT on Table 'main.l.t'"),
        "{msg}"
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT SELECT ON TABLE main.l.t TO `{ALICE_USER}`"),
    )
    .await;
    let (code, msg) = fails(&h, ALICE, merge).await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(
        msg.contains("READ VOLUME on Volume 'main.l.landing'"),
        "{msg}"
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT READ VOLUME ON VOLUME main.l.landing TO `{ALICE_USER}`"),
    )
    .await;
    assert_eq!(rows(&h, ALICE, merge).await, [["1", "1", "0", "0"]]);
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t LIMIT 1").await);
    assert_eq!(
        (hist[0][3].as_str(), hist[0][4].as_str()),
        (ALICE_USER, "MERGE")
    );
}

/// Two Parquet parts and a manifest in `/Volumes/main/l/landing/run`.
async fn extraction(h: &DatabricksHandle) {
    let a = parquet(vec![("id", ids(&[10, 11])), ("v", strs(&["j", "k"]))]);
    let b = parquet(vec![("id", ids(&[12])), ("v", strs(&["l"]))]);
    put_file(h, ADMIN, "/Volumes/main/l/landing/run/part-0.parquet", a).await;
    put_file(h, ADMIN, "/Volumes/main/l/landing/run/part-1.parquet", b).await;
    put_file(
        h,
        ADMIN,
        "/Volumes/main/l/landing/run/manifest.json",
        b"{\"parts\": 2}".to_vec(),
    )
    .await;
}

const COPY_RUN: &str = "COPY INTO main.l.t FROM '/Volumes/main/l/landing/run' FILEFORMAT = PARQUET PATTERN = '*.parquet'";

#[tokio::test]
async fn copy_into_loads_each_file_once_unless_forced() {
    let h = workspace().await;
    extraction(&h).await;
    let v = sql(&h, ADMIN, COPY_RUN).await;
    assert_eq!(v["status"]["state"], "SUCCEEDED", "{v}");
    assert_eq!(
        counts_of(&v),
        pairs(&[
            ("num_affected_rows", "3"),
            ("num_inserted_rows", "3"),
            ("num_skipped_corrupt_files", "0"),
        ])
    );
    assert_eq!(
        manifest(&v)
            .iter()
            .map(|(_, t)| t.as_str())
            .collect::<Vec<_>>(),
        ["LONG"; 3]
    );
    // Version 2 is the COPY INTO, a blind append, with its rows in the feed.
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t").await);
    assert_eq!(hist.len(), 3);
    assert_eq!(
        (
            hist[0][0].as_str(),
            hist[0][4].as_str(),
            hist[0][11].as_str()
        ),
        ("2", "COPY INTO", "true")
    );
    assert!(
        hist[0][12].contains("\"numOutputRows\":\"3\""),
        "{}",
        hist[0][12]
    );
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT id, _change_type, _commit_version FROM table_changes('main.l.t', 2) ORDER BY id"
        )
        .await,
        [
            ["10", "insert", "2"],
            ["11", "insert", "2"],
            ["12", "insert", "2"]
        ]
    );
    // Again: nothing new, nothing loaded, no version.
    assert_eq!(rows(&h, ADMIN, COPY_RUN).await, [["0", "0", "0"]]);
    assert_eq!(
        data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t").await).len(),
        3
    );
    // A new file in the directory is the only one loaded; even a modified
    // file already loaded is skipped.
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/run/part-0.parquet",
        parquet(vec![("id", ids(&[99])), ("v", strs(&["changed"]))]),
    )
    .await;
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/run/part-2.parquet",
        parquet(vec![("id", ids(&[13])), ("v", strs(&["m"]))]),
    )
    .await;
    assert_eq!(rows(&h, ADMIN, COPY_RUN).await, [["1", "1", "0"]]);
    // force = true loads every selected file again.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            &format!("{COPY_RUN} COPY_OPTIONS ('force' = 'true')")
        )
        .await,
        [["3", "3", "0"]]
    );
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT count(*), count(DISTINCT id) FROM main.l.t"
        )
        .await,
        [["10", "8"]]
    );
}

#[tokio::test]
async fn copy_into_reads_every_file_a_spark_source_would() {
    let h = workspace().await;
    extraction(&h).await;
    // Without PATTERN the manifest is read too, and is not Parquet.
    let all = "COPY INTO main.l.t FROM '/Volumes/main/l/landing/run' FILEFORMAT = PARQUET";
    let (code, msg) = fails(&h, ADMIN, all).await;
    assert_eq!(code, "BAD_REQUEST");
    assert!(
        msg.starts_with("[FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] Error while reading file /Volumes/main/l/landing/run/manifest.json.")
            && msg.ends_with("SQLSTATE: KD001"),
        "{msg}"
    );
    assert_eq!(
        rows(&h, ADMIN, "SELECT count(*) FROM main.l.t").await,
        [["3"]]
    );
    // ignoreCorruptFiles skips it, counts it, and does not record it.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            &format!("{all} FORMAT_OPTIONS ('ignoreCorruptFiles' = 'true')")
        )
        .await,
        [["3", "3", "1"]]
    );
    assert_eq!(
        rows(
            &h,
            ADMIN,
            &format!("{all} FORMAT_OPTIONS ('ignoreCorruptFiles' = 'true')")
        )
        .await,
        [["0", "0", "1"]]
    );
    // FILES names files relative to the source; a missing one fails.
    rows(&h, ADMIN, "CREATE TABLE main.l.u (id BIGINT, v STRING)").await;
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "COPY INTO main.l.u FROM '/Volumes/main/l/landing/run' FILEFORMAT = PARQUET FILES = ('part-1.parquet')"
        )
        .await,
        [["1", "1", "0"]]
    );
    let (_, msg) = fails(
        &h,
        ADMIN,
        "COPY INTO main.l.u FROM '/Volumes/main/l/landing/run' FILEFORMAT = PARQUET FILES = ('part-9.parquet')",
    )
    .await;
    assert!(
        msg.starts_with("[FAILED_READ_FILE.FILE_NOT_EXIST]"),
        "{msg}"
    );
    let (_, msg) = fails(
        &h,
        ADMIN,
        "COPY INTO main.l.u FROM '/Volumes/main/l/landing/nowhere' FILEFORMAT = PARQUET",
    )
    .await;
    assert!(msg.starts_with("[PATH_NOT_FOUND]"), "{msg}");
    let (_, msg) = fails(
        &h,
        ADMIN,
        "COPY INTO main.l.nope FROM '/Volumes/main/l/landing/run' FILEFORMAT = PARQUET",
    )
    .await;
    assert!(msg.starts_with("[TABLE_OR_VIEW_NOT_FOUND]"), "{msg}");
    let (_, msg) = fails(
        &h,
        ADMIN,
        "COPY INTO main.l.u FROM '/Volumes/main/l/landing/run' FILEFORMAT = CSV",
    )
    .await;
    assert!(msg.starts_with("[UNSUPPORTED_FEATURE]"), "{msg}");
}

#[tokio::test]
async fn copy_into_casts_safely_and_refuses_what_does_not_fit() {
    let h = workspace().await;
    rows(
        &h,
        ADMIN,
        "CREATE TABLE main.l.n (id BIGINT, small INT, note STRING)",
    )
    .await;
    // INT file column into BIGINT: a safe cast; `note` is missing: NULL.
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/cast/a.parquet",
        parquet(vec![("id", ints(&[1, 2])), ("small", ints(&[5, 6]))]),
    )
    .await;
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "COPY INTO main.l.n FROM '/Volumes/main/l/landing/cast/a.parquet' FILEFORMAT = PARQUET"
        )
        .await,
        [["2", "2", "0"]]
    );
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT id, small, note FROM main.l.n ORDER BY id"
        )
        .await,
        [["1", "5", "null"], ["2", "6", "null"]]
    );
    // BIGINT into INT is no safe cast.
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/cast/b.parquet",
        parquet(vec![("id", ids(&[3])), ("small", ids(&[7]))]),
    )
    .await;
    let (_, msg) = fails(
        &h,
        ADMIN,
        "COPY INTO main.l.n FROM '/Volumes/main/l/landing/cast/b.parquet' FILEFORMAT = PARQUET",
    )
    .await;
    assert_eq!(
        msg,
        "[DELTA_FAILED_TO_MERGE_FIELDS] Failed to merge fields 'small' and 'small'. SQLSTATE: 22005"
    );
    // A column the table lacks: a schema mismatch, or with mergeSchema a new column.
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/cast/c.parquet",
        parquet(vec![("id", ids(&[4])), ("extra", strs(&["x"]))]),
    )
    .await;
    let c = "COPY INTO main.l.n FROM '/Volumes/main/l/landing/cast/c.parquet' FILEFORMAT = PARQUET";
    let (_, msg) = fails(&h, ADMIN, c).await;
    assert!(
        msg.starts_with("[_LEGACY_ERROR_TEMP_DELTA_0007] A schema mismatch detected when writing to the Delta table (Table ID: ")
            && msg.contains("Data schema:\nroot\n-- id: long (nullable = true)\n-- extra: string (nullable = true)"),
        "{msg}"
    );
    assert_eq!(
        rows(
            &h,
            ADMIN,
            &format!("{c} COPY_OPTIONS ('mergeSchema' = 'true')")
        )
        .await,
        [["1", "1", "0"]]
    );
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT id, small, note, extra FROM main.l.n ORDER BY id"
        )
        .await,
        [
            ["1", "5", "null", "null"],
            ["2", "6", "null", "null"],
            ["4", "null", "null", "x"]
        ]
    );
    // The SELECT form casts and renames on the way in.
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/sel/a.parquet",
        parquet(vec![
            ("key", strs(&["8", "9"])),
            ("label", strs(&["p", "q"])),
        ]),
    )
    .await;
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "COPY INTO main.l.n FROM (SELECT CAST(key AS BIGINT) AS id, upper(label) AS note FROM '/Volumes/main/l/landing/sel' WHERE key <> '9') \
             FILEFORMAT = PARQUET"
        )
        .await,
        [["1", "1", "0"]]
    );
    assert_eq!(
        rows(&h, ADMIN, "SELECT note FROM main.l.n WHERE id = 8").await,
        [["P"]]
    );
}

#[tokio::test]
async fn copy_into_reads_the_first_files_schema_or_merges_them() {
    let h = workspace().await;
    rows(
        &h,
        ADMIN,
        "CREATE TABLE main.l.w (id BIGINT, v STRING, x STRING)",
    )
    .await;
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/mix/a.parquet",
        parquet(vec![("id", ids(&[1])), ("v", strs(&["a"]))]),
    )
    .await;
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/mix/b.parquet",
        parquet(vec![("id", ids(&[2])), ("x", strs(&["bx"]))]),
    )
    .await;
    let copy = "COPY INTO main.l.w FROM '/Volumes/main/l/landing/mix' FILEFORMAT = PARQUET";
    // The first file's schema: b's `x` is not read.
    assert_eq!(rows(&h, ADMIN, copy).await, [["2", "2", "0"]]);
    assert_eq!(
        rows(&h, ADMIN, "SELECT id, v, x FROM main.l.w ORDER BY id").await,
        [["1", "a", "null"], ["2", "null", "null"]]
    );
    rows(&h, ADMIN, "DELETE FROM main.l.w").await;
    assert_eq!(
        rows(
            &h,
            ADMIN,
            &format!(
                "{copy} FORMAT_OPTIONS ('mergeSchema' = 'true') COPY_OPTIONS ('force' = 'true')"
            )
        )
        .await,
        [["2", "2", "0"]]
    );
    assert_eq!(
        rows(&h, ADMIN, "SELECT id, v, x FROM main.l.w ORDER BY id").await,
        [["1", "a", "null"], ["2", "null", "bx"]]
    );
}

#[tokio::test]
async fn copy_into_needs_read_volume_and_modify() {
    let h = workspace().await;
    extraction(&h).await;
    for g in [
        "GRANT USE CATALOG ON CATALOG main",
        "GRANT USE SCHEMA ON SCHEMA main.l",
    ] {
        rows(&h, ADMIN, &format!("{g} TO `{ALICE_USER}`")).await;
    }
    let (code, msg) = fails(&h, ALICE, COPY_RUN).await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(
        msg.contains("User does not have MODIFY on Table 'main.l.t'"),
        "{msg}"
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT MODIFY ON TABLE main.l.t TO `{ALICE_USER}`"),
    )
    .await;
    let (code, msg) = fails(&h, ALICE, COPY_RUN).await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(
        msg.contains("User does not have READ VOLUME on Volume 'main.l.landing'"),
        "{msg}"
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT READ VOLUME ON VOLUME main.l.landing TO `{ALICE_USER}`"),
    )
    .await;
    // MODIFY and READ VOLUME are enough: COPY INTO appends without reading the table.
    assert_eq!(rows(&h, ALICE, COPY_RUN).await, [["3", "3", "0"]]);
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t LIMIT 1").await);
    assert_eq!(
        (hist[0][3].as_str(), hist[0][4].as_str()),
        (ALICE_USER, "COPY INTO")
    );
}

#[tokio::test]
async fn add_columns_is_a_version_and_reads_null_in_existing_rows() {
    let h = workspace().await;
    rows(
        &h,
        ADMIN,
        "ALTER TABLE main.l.t ADD COLUMNS (amount DECIMAL(18, 2) COMMENT 'money', tags ARRAY<STRING>)",
    )
    .await;
    rows(&h, ADMIN, "ALTER TABLE main.l.t ADD COLUMN seen DATE").await;
    rows(
        &h,
        ADMIN,
        "INSERT INTO main.l.t VALUES (4, 'd', 12.5, array('x'), DATE '2024-05-01')",
    )
    .await;
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT id, amount, tags, seen FROM main.l.t WHERE id IN (1, 4) ORDER BY id"
        )
        .await,
        [
            ["1", "null", "null", "null"],
            ["4", "12.50", "[\"x\"]", "2024-05-01"]
        ]
    );
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t LIMIT 3").await);
    let ops: Vec<&str> = hist.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(ops, ["WRITE", "ADD COLUMNS", "ADD COLUMNS"]);
    assert!(
        hist[2][5].contains("\\\"name\\\":\\\"amount\\\"")
            && hist[2][5].contains("\\\"type\\\":\\\"decimal(18,2)\\\""),
        "{}",
        hist[2][5]
    );
    // The change data feed carries the new columns.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT id, amount, seen, _change_type FROM table_changes('main.l.t', 4)"
        )
        .await,
        [["4", "12.50", "2024-05-01", "insert"]]
    );
    let v = sql(&h, ADMIN, "DESCRIBE TABLE main.l.t").await;
    assert_eq!(
        manifest(&v),
        [
            ("col_name", "STRING"),
            ("data_type", "STRING"),
            ("comment", "STRING")
        ]
        .map(|(n, t)| (n.to_string(), t.to_string()))
    );
    assert_eq!(
        data(&v),
        [
            ["id", "bigint", "null"],
            ["v", "string", "null"],
            ["amount", "decimal(18,2)", "money"],
            ["tags", "array<string>", "null"],
            ["seen", "date", "null"]
        ]
    );
    let (_, msg) = fails(&h, ADMIN, "ALTER TABLE main.l.t ADD COLUMNS (V INT)").await;
    assert!(
        msg.starts_with("[FIELD_ALREADY_EXISTS] Cannot add column, because `V` already exists in")
            && msg.ends_with("SQLSTATE: 42710"),
        "{msg}"
    );
    let (_, msg) = fails(&h, ADMIN, "ALTER TABLE main.l.t ADD COLUMN w INT NOT NULL").await;
    assert!(msg.starts_with("[UNSUPPORTED_FEATURE]"), "{msg}");
}

#[tokio::test]
async fn describe_table_extended_shows_the_details() {
    let h = workspace().await;
    rows(
        &h,
        ADMIN,
        "CREATE TABLE main.l.d (id INT NOT NULL COMMENT 'key') COMMENT 'daily' TBLPROPERTIES ('delta.enableTypeWidening' = 'true')",
    )
    .await;
    let got = rows(&h, ADMIN, "DESCRIBE TABLE EXTENDED main.l.d").await;
    assert_eq!(got[0], ["id", "int", "key"]);
    assert_eq!(got[1], ["", "", ""]);
    assert_eq!(got[2], ["# Detailed Table Information", "", ""]);
    let detail: Vec<(String, String)> = got[3..]
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    let get = |k: &str| {
        detail
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {detail:?}"))
    };
    assert_eq!(get("Catalog"), "main");
    assert_eq!(get("Database"), "l");
    assert_eq!(get("Table"), "d");
    assert_eq!(get("Type"), "MANAGED");
    assert_eq!(get("Comment"), "daily");
    assert_eq!(get("Provider"), "delta");
    assert_eq!(get("Owner"), ADMIN_USER);
    assert_eq!(get("Table Properties"), "[delta.enableTypeWidening=true]");
    // DESC and FORMATTED are the same statement.
    assert_eq!(rows(&h, ADMIN, "DESC FORMATTED main.l.d").await, got);
    let (_, msg) = fails(&h, ADMIN, "DESCRIBE TABLE main.l.nope").await;
    assert!(msg.starts_with("[TABLE_OR_VIEW_NOT_FOUND]"), "{msg}");
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE CATALOG ON CATALOG main TO `{ALICE_USER}`"),
    )
    .await;
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE SCHEMA ON SCHEMA main.l TO `{ALICE_USER}`"),
    )
    .await;
    let (code, _) = fails(&h, ALICE, "DESCRIBE TABLE main.l.d").await;
    assert_eq!(code, "PERMISSION_DENIED");
}

#[tokio::test]
async fn column_types_widen_only_with_type_widening() {
    let h = workspace().await;
    rows(
        &h,
        ADMIN,
        "CREATE TABLE main.l.w (n INT, d DATE, s STRING, b BIGINT) TBLPROPERTIES (delta.enableChangeDataFeed = true)",
    )
    .await;
    rows(
        &h,
        ADMIN,
        "INSERT INTO main.l.w VALUES (1, DATE '2024-01-02', '7', 5)",
    )
    .await;
    let (_, msg) = fails(&h, ADMIN, "ALTER TABLE main.l.w ALTER COLUMN n TYPE BIGINT").await;
    assert_eq!(
        msg,
        "[DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP] ALTER TABLE ALTER COLUMN is not supported for changing column n from INT to BIGINT SQLSTATE: 0AKDC"
    );
    let (_, msg) = fails(&h, ADMIN, "ALTER TABLE main.l.w ALTER COLUMN s TYPE INT").await;
    assert_eq!(
        msg,
        "[NOT_SUPPORTED_CHANGE_COLUMN] ALTER TABLE ALTER/CHANGE COLUMN is not supported for changing `main`.`l`.`w`'s column `s` with type \"STRING\" to `s` with type \"INT\". SQLSTATE: 0A000"
    );
    rows(
        &h,
        ADMIN,
        "ALTER TABLE main.l.w SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')",
    )
    .await;
    rows(&h, ADMIN, "ALTER TABLE main.l.w ALTER COLUMN n TYPE BIGINT").await;
    rows(
        &h,
        ADMIN,
        "ALTER TABLE main.l.w CHANGE COLUMN d TYPE TIMESTAMP_NTZ",
    )
    .await;
    rows(
        &h,
        ADMIN,
        "ALTER TABLE main.l.w ALTER COLUMN b TYPE DECIMAL(20, 0)",
    )
    .await;
    // Not in the widening table even with the property: BIGINT to DOUBLE,
    // INT to a decimal too narrow, DATE to TIMESTAMP.
    let (_, msg) = fails(&h, ADMIN, "ALTER TABLE main.l.w ALTER COLUMN n TYPE DOUBLE").await;
    assert!(
        msg.starts_with("[DELTA_UNSUPPORTED_ALTER_TABLE_CHANGE_COL_OP]"),
        "{msg}"
    );
    rows(&h, ADMIN, "INSERT INTO main.l.w VALUES (3000000000, TIMESTAMP_NTZ '2024-03-04 05:06:07', 'x', 12345678901234567890)").await;
    let v = sql(&h, ADMIN, "SELECT n, d, b FROM main.l.w ORDER BY n").await;
    assert_eq!(
        manifest(&v),
        [("n", "LONG"), ("d", "TIMESTAMP"), ("b", "DECIMAL")]
            .map(|(n, t)| (n.to_string(), t.to_string()))
    );
    assert_eq!(
        data(&v),
        [
            ["1", "2024-01-02T00:00:00.000", "5"],
            [
                "3000000000",
                "2024-03-04T05:06:07.000",
                "12345678901234567890"
            ]
        ]
    );
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.w LIMIT 4").await);
    let ops: Vec<&str> = hist.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(
        ops,
        ["WRITE", "CHANGE COLUMN", "CHANGE COLUMN", "CHANGE COLUMN"]
    );
    assert!(
        hist[3][5].contains("\\\"type\\\":\\\"long\\\""),
        "{}",
        hist[3][5]
    );
    // Widening rewrote no rows: the feed has the two inserts only.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT n, _change_type FROM table_changes('main.l.w', 1) ORDER BY n"
        )
        .await,
        [["1", "insert"], ["3000000000", "insert"]]
    );
    assert_eq!(
        rows(&h, ADMIN, "DESCRIBE TABLE main.l.w").await[0..2],
        [["n", "bigint", "null"], ["d", "timestamp_ntz", "null"]]
    );
}

#[tokio::test]
async fn schema_changes_take_modify() {
    let h = workspace().await;
    for g in [
        "GRANT USE CATALOG ON CATALOG main",
        "GRANT USE SCHEMA ON SCHEMA main.l",
        "GRANT SELECT ON TABLE main.l.t",
    ] {
        rows(&h, ADMIN, &format!("{g} TO `{ALICE_USER}`")).await;
    }
    let add = "ALTER TABLE main.l.t ADD COLUMNS (extra STRING)";
    let (code, msg) = fails(&h, ALICE, add).await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(
        msg.contains("User does not have MODIFY on Table 'main.l.t'"),
        "{msg}"
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT MODIFY ON TABLE main.l.t TO `{ALICE_USER}`"),
    )
    .await;
    rows(&h, ALICE, add).await;
    rows(
        &h,
        ALICE,
        "ALTER TABLE main.l.t SET TBLPROPERTIES ('delta.enableTypeWidening' = 'true')",
    )
    .await;
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t LIMIT 2").await);
    assert_eq!(
        hist.iter()
            .map(|r| (r[3].as_str(), r[4].as_str()))
            .collect::<Vec<_>>(),
        [
            (ALICE_USER, "SET TBLPROPERTIES"),
            (ALICE_USER, "ADD COLUMNS")
        ]
    );
    assert_eq!(rows(&h, ALICE, "DESCRIBE TABLE main.l.t").await.len(), 3);
}

#[tokio::test]
async fn create_or_replace_as_select_is_one_version_of_the_same_table() {
    let h = workspace().await;
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE CATALOG ON CATALOG main TO `{ALICE_USER}`"),
    )
    .await;
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE SCHEMA ON SCHEMA main.l TO `{ALICE_USER}`"),
    )
    .await;
    rows(
        &h,
        ADMIN,
        &format!("GRANT SELECT ON TABLE main.l.t TO `{ALICE_USER}`"),
    )
    .await;
    let (_, before) = get(&h, ADMIN, "/api/2.1/unity-catalog/tables/main.l.t").await;
    // The query reads the table it replaces, as it was.
    let v = sql(
        &h,
        ADMIN,
        "CREATE OR REPLACE TABLE main.l.t AS SELECT id * 10 AS id, upper(v) AS v FROM main.l.t WHERE id > 1",
    )
    .await;
    assert_eq!(v["status"]["state"], "SUCCEEDED", "{v}");
    assert_eq!(
        rows(&h, ALICE, "SELECT id, v FROM main.l.t ORDER BY id").await,
        [["20", "B"], ["30", "C"]]
    );
    let (_, after) = get(&h, ADMIN, "/api/2.1/unity-catalog/tables/main.l.t").await;
    assert_eq!(after["table_id"], before["table_id"]);
    assert_eq!(after["created_at"], before["created_at"]);
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t").await);
    assert_eq!(
        hist.iter().map(|r| r[4].as_str()).collect::<Vec<_>>(),
        ["CREATE OR REPLACE TABLE AS SELECT", "WRITE", "CREATE TABLE"]
    );
    assert!(
        hist[0][12].contains("\"numOutputRows\":\"2\""),
        "{}",
        hist[0][12]
    );
    // A replacement that fails leaves the table and its history as they were.
    let (_, msg) = fails(
        &h,
        ADMIN,
        "CREATE OR REPLACE TABLE main.l.t (id INT, v STRING) AS SELECT 'x' AS id, 'y' AS v",
    )
    .await;
    assert!(msg.starts_with("[CAST_INVALID_INPUT]"), "{msg}");
    assert_eq!(
        rows(&h, ADMIN, "SELECT id, v FROM main.l.t ORDER BY id").await,
        [["20", "B"], ["30", "C"]]
    );
    assert_eq!(
        data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t").await).len(),
        3
    );
}

#[tokio::test]
async fn insert_overwrite_and_replace_where_replace_in_one_version() {
    let h = workspace().await;
    let v = sql(
        &h,
        ADMIN,
        "INSERT OVERWRITE main.l.t SELECT id + 100, v FROM main.l.t WHERE id <> 2",
    )
    .await;
    assert_eq!(
        counts_of(&v),
        pairs(&[("num_affected_rows", "2"), ("num_inserted_rows", "2")])
    );
    assert_eq!(
        rows(&h, ADMIN, "SELECT id, v FROM main.l.t ORDER BY id").await,
        [["101", "a"], ["103", "c"]]
    );
    rows(
        &h,
        ADMIN,
        "INSERT OVERWRITE TABLE main.l.t VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    )
    .await;
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t LIMIT 1").await);
    assert_eq!(hist[0][4], "WRITE");
    assert!(
        hist[0][5].contains("\"mode\":\"Overwrite\""),
        "{}",
        hist[0][5]
    );
    assert_eq!(hist[0][11], "false");
    // REPLACE WHERE: the rows matching go, the query's rows come.
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "INSERT INTO main.l.t REPLACE WHERE id >= 2 SELECT 2 AS id, 'B' AS v UNION ALL SELECT 5, 'E'"
        )
        .await,
        [["2", "2"]]
    );
    assert_eq!(
        rows(&h, ADMIN, "SELECT id, v FROM main.l.t ORDER BY id").await,
        [["1", "a"], ["2", "B"], ["5", "E"]]
    );
    let hist = data(&sql(&h, ADMIN, "DESCRIBE HISTORY main.l.t LIMIT 1").await);
    assert!(
        hist[0][5].contains("\"predicate\":\"[\\\"(id >= 2)\\\"]\""),
        "{}",
        hist[0][5]
    );
    let changes = rows(
        &h,
        ADMIN,
        &format!(
            "SELECT id, _change_type FROM table_changes('main.l.t', {}) ORDER BY _change_type, id",
            hist[0][0]
        ),
    )
    .await;
    assert_eq!(
        changes,
        [
            ["2", "delete"],
            ["3", "delete"],
            ["2", "insert"],
            ["5", "insert"]
        ]
    );
    // Rows outside the predicate: the documented error, nothing changed.
    let (_, msg) = fails(
        &h,
        ADMIN,
        "INSERT INTO TABLE main.l.t REPLACE WHERE id >= 2 VALUES (1, 'z')",
    )
    .await;
    assert_eq!(
        msg,
        "[DELTA_REPLACE_WHERE_MISMATCH] Written data does not conform to partial table overwrite condition or constraint 'id >= 2'. SQLSTATE: 44000"
    );
    assert_eq!(
        rows(&h, ADMIN, "SELECT count(*) FROM main.l.t").await,
        [["3"]]
    );
}

#[tokio::test]
async fn readers_see_a_replaced_table_whole_before_or_after() {
    let h = workspace().await;
    rows(
        &h,
        ADMIN,
        "CREATE OR REPLACE TABLE main.l.r AS SELECT id, 'old' AS gen FROM range(1000)",
    )
    .await;
    let writer = {
        let url = h.url().to_string();
        let wid = h.warehouse_id().to_string();
        tokio::spawn(async move {
            for i in 0..15 {
                let stmt = if i % 3 == 0 {
                    "INSERT OVERWRITE main.l.r SELECT id, 'old' FROM range(1000)".to_string()
                } else if i % 3 == 1 {
                    "CREATE OR REPLACE TABLE main.l.r AS SELECT id, 'new' AS gen FROM range(2000)"
                        .to_string()
                } else {
                    "INSERT INTO main.l.r REPLACE WHERE id >= 0 SELECT id, 'mid' FROM range(1500)"
                        .to_string()
                };
                let r = client()
                    .post(format!("{url}/api/2.0/sql/statements"))
                    .bearer_auth(ADMIN)
                    .header("content-type", "application/json")
                    .body(serde_json::json!({"statement": stmt, "warehouse_id": wid, "wait_timeout": "30s"}).to_string())
                    .send()
                    .await
                    .expect("write");
                let v = json_of(r).await;
                assert_eq!(v["status"]["state"], "SUCCEEDED", "{v}");
            }
        })
    };
    let mut seen = std::collections::BTreeSet::new();
    while !writer.is_finished() {
        let got = rows(
            &h,
            ADMIN,
            "SELECT count(*), min(gen), max(gen) FROM main.l.r",
        )
        .await;
        let state = (got[0][0].clone(), got[0][1].clone(), got[0][2].clone());
        assert!(
            [
                ("1000", "old", "old"),
                ("2000", "new", "new"),
                ("1500", "mid", "mid")
            ]
            .iter()
            .any(|(n, a, b)| (*n, *a, *b) == (state.0.as_str(), state.1.as_str(), state.2.as_str())),
            "a reader saw a mix: {state:?}"
        );
        seen.insert(state.0);
    }
    writer.await.expect("writer");
    assert!(!seen.is_empty());
}

#[tokio::test]
async fn read_files_reads_every_file_but_hidden_ones() {
    let h = workspace().await;
    extraction(&h).await;
    let (_, msg) = fails(
        &h,
        ADMIN,
        "SELECT count(*) FROM read_files('/Volumes/main/l/landing/run', format => 'parquet')",
    )
    .await;
    assert!(
        msg.starts_with("[FAILED_READ_FILE.CANNOT_READ_FILE_FOOTER] Error while reading file /Volumes/main/l/landing/run/manifest.json."),
        "{msg}"
    );
    // Names starting with _ or . are not data: a run's own manifest can sit there.
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/run2/_manifest.json",
        b"{}".to_vec(),
    )
    .await;
    put_file(
        &h,
        ADMIN,
        "/Volumes/main/l/landing/run2/part-0.parquet",
        parquet(vec![("id", ids(&[1, 2]))]),
    )
    .await;
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT count(*) FROM read_files('/Volumes/main/l/landing/run2', format => 'parquet')"
        )
        .await,
        [["2"]]
    );
}
