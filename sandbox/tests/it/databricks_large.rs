//! A 1,000,000-row result arrives complete and exactly once, through
//! EXTERNAL_LINKS + ARROW_STREAM chunks and through paged INLINE JSON_ARRAY
//! chunks (following next_chunk_index as a client does).

use arrow_array::{Array, Decimal128Array, Int64Array, StringArray};
use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle};
use serde_json::{json, Value};

const TOKEN: &str = "dapi-sandbox";
const ROWS: i64 = 1_000_000;

async fn call(
    h: &DatabricksHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> Value {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", h.url()))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.expect("request");
    assert!(r.status().is_success(), "{path}: {}", r.status());
    serde_json::from_slice(&r.bytes().await.expect("body")).expect("json")
}

async fn run(h: &DatabricksHandle, body: Value) -> Value {
    let mut body = body;
    body["warehouse_id"] = json!(h.warehouse_id());
    body["wait_timeout"] = json!("50s");
    let v = call(
        h,
        reqwest::Method::POST,
        "/api/2.0/sql/statements",
        Some(body),
    )
    .await;
    assert_eq!(v["status"]["state"], "SUCCEEDED", "{v}");
    v
}

#[tokio::test]
async fn million_rows_through_arrow_links_and_json_pages() {
    let h = databricks::start(DatabricksConfig {
        external_chunk_bytes: 4 * 1024 * 1024,
        inline_chunk_bytes: 2 * 1024 * 1024,
        ..Default::default()
    })
    .expect("start");

    // EXTERNAL_LINKS + ARROW_STREAM, typed columns.
    let v = run(
        &h,
        json!({
            "statement": "SELECT id, concat('r', id) AS label, CAST(id AS DECIMAL(18,2)) AS amount FROM range(1000000)",
            "disposition": "EXTERNAL_LINKS",
            "format": "ARROW_STREAM",
        }),
    )
    .await;
    let m = &v["manifest"];
    assert_eq!(m["total_row_count"], ROWS);
    assert_eq!(m["truncated"], false);
    let chunks = m["total_chunk_count"].as_u64().unwrap();
    assert!(chunks > 1, "expected several chunks, got {chunks}");
    let id = v["statement_id"].as_str().unwrap().to_string();
    let mut seen = vec![false; ROWS as usize];
    let mut expected_offset = 0i64;
    let mut next = Some(0u64);
    let mut links = v["result"]["external_links"].clone();
    while let Some(n) = next {
        if n > 0 {
            let c = call(
                &h,
                reqwest::Method::GET,
                &format!("/api/2.0/sql/statements/{id}/result/chunks/{n}"),
                None,
            )
            .await;
            links = c["external_links"].clone();
        }
        let link = &links[0];
        assert_eq!(link["chunk_index"], n);
        assert_eq!(link["row_offset"], expected_offset);
        let url = link["external_link"].as_str().unwrap();
        let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
        let reader =
            arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
                .unwrap();
        let mut rows_in_chunk = 0i64;
        for batch in reader {
            let batch = batch.unwrap();
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("BIGINT as Int64");
            let labels = batch
                .column(1)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("STRING as Utf8");
            let amounts = batch
                .column(2)
                .as_any()
                .downcast_ref::<Decimal128Array>()
                .expect("DECIMAL as Decimal128");
            assert_eq!(amounts.precision(), 18);
            assert_eq!(amounts.scale(), 2);
            for i in 0..batch.num_rows() {
                let idv = ids.value(i);
                assert!(!seen[idv as usize], "row {idv} served twice");
                seen[idv as usize] = true;
                assert_eq!(labels.value(i), format!("r{idv}"));
                assert_eq!(amounts.value(i), idv as i128 * 100);
            }
            rows_in_chunk += batch.num_rows() as i64;
        }
        assert_eq!(link["row_count"], rows_in_chunk);
        expected_offset += rows_in_chunk;
        next = link["next_chunk_index"].as_u64();
    }
    assert_eq!(expected_offset, ROWS);
    assert!(seen.iter().all(|s| *s), "every row arrives");

    // INLINE JSON_ARRAY pages (a narrow result stays under the 25 MiB limit).
    let v = run(&h, json!({"statement": "SELECT id FROM range(1000000)"})).await;
    assert_eq!(v["manifest"]["total_row_count"], ROWS);
    let mut seen = vec![false; ROWS as usize];
    let mut page = v["result"].clone();
    let mut total = 0i64;
    loop {
        assert_eq!(page["row_offset"], total);
        for r in page["data_array"].as_array().unwrap() {
            let s = r[0].as_str().expect("JSON_ARRAY values are strings");
            let idv: usize = s.parse().unwrap();
            assert!(!seen[idv], "row {idv} served twice");
            seen[idv] = true;
            total += 1;
        }
        match page["next_chunk_internal_link"].as_str() {
            Some(link) => page = call(&h, reqwest::Method::GET, link, None).await,
            None => break,
        }
    }
    assert_eq!(total, ROWS);
    assert!(seen.iter().all(|s| *s));
}
