//! Fault modes of the Databricks double, each observed by an HTTP client:
//! status codes and Retry-After, slow responses, FAILED statements, expired
//! result links, cut downloads, expiring OAuth tokens, INLINE size limit,
//! statement lifecycle with an execution delay.

use std::time::{Duration, Instant};

use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle};
use serde_json::{json, Value};

const TOKEN: &str = "dapi-sandbox";

fn start(config: DatabricksConfig) -> DatabricksHandle {
    let h = databricks::start(config).expect("start the double");
    h.engine()
        .run_script(
            "CREATE SCHEMA main.demo; CREATE VOLUME main.demo.landing;
             CREATE TABLE main.demo.t (id BIGINT, v STRING);
             INSERT INTO main.demo.t VALUES (1, 'a'), (2, 'b');",
        )
        .expect("seed");
    h
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn get(h: &DatabricksHandle, path: &str) -> reqwest::Response {
    client()
        .get(format!("{}{path}", h.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request")
}

async fn json_of(r: reqwest::Response) -> Value {
    let bytes = r.bytes().await.expect("body");
    serde_json::from_slice(&bytes).expect("json body")
}

async fn execute(h: &DatabricksHandle, body: Value) -> (u16, Value) {
    let mut body = body;
    body["warehouse_id"] = json!(h.warehouse_id());
    let r = client()
        .post(format!("{}/api/2.0/sql/statements", h.url()))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, json_of(r).await)
}

#[tokio::test]
async fn http_faults_are_seen_with_their_status_and_retry_after() {
    let h = start(DatabricksConfig::default());
    h.faults().throttle(1, 7, Some("/api/2.0/sql/warehouses"));
    let r = get(&h, "/api/2.0/sql/warehouses").await;
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(json_of(r).await["error_code"], "REQUEST_LIMIT_EXCEEDED");
    assert_eq!(
        get(&h, "/api/2.0/sql/warehouses").await.status().as_u16(),
        200
    );

    h.faults().unavailable(2, None);
    for _ in 0..2 {
        let r = get(&h, "/api/2.0/sql/warehouses").await;
        assert_eq!(r.status().as_u16(), 503);
        assert_eq!(json_of(r).await["error_code"], "TEMPORARILY_UNAVAILABLE");
    }
    h.faults().internal_error(1, None);
    let r = get(&h, "/api/2.1/unity-catalog/catalogs").await;
    assert_eq!(r.status().as_u16(), 500);
    assert_eq!(json_of(r).await["error_code"], "INTERNAL_ERROR");
    assert_eq!(
        get(&h, "/api/2.1/unity-catalog/catalogs")
            .await
            .status()
            .as_u16(),
        200
    );

    h.faults().delay_responses(Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(
        get(&h, "/api/2.0/sql/warehouses").await.status().as_u16(),
        200
    );
    assert!(t.elapsed() >= Duration::from_millis(300));
    h.faults().clear();
}

#[tokio::test]
async fn statements_fail_by_pattern_with_http_200() {
    let h = start(DatabricksConfig::default());
    h.faults()
        .fail_statements("(?i)from main\\.demo\\.t", 1)
        .unwrap();
    let (status, v) = execute(&h, json!({"statement": "SELECT * FROM main.demo.t"})).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"]["state"], "FAILED");
    assert!(v["status"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("fault injection"));
    let (_, v) = execute(&h, json!({"statement": "SELECT * FROM main.demo.t"})).await;
    assert_eq!(v["status"]["state"], "SUCCEEDED");
    assert_eq!(v["result"]["data_array"], json!([["1", "a"], ["2", "b"]]));
}

#[tokio::test]
async fn expired_links_are_refused_and_fresh_ones_work() {
    let h = start(DatabricksConfig::default());
    h.faults().expire_external_links(true);
    let (_, v) = execute(
        &h,
        json!({"statement": "SELECT * FROM main.demo.t", "disposition": "EXTERNAL_LINKS", "format": "ARROW_STREAM"}),
    )
    .await;
    assert_eq!(v["status"]["state"], "SUCCEEDED");
    let link = v["result"]["external_links"][0]["external_link"]
        .as_str()
        .unwrap()
        .to_string();
    // No bearer token on links, as documented.
    let r = client().get(&link).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("expired"));
    h.faults().expire_external_links(false);
    let id = v["statement_id"].as_str().unwrap();
    let c = json_of(get(&h, &format!("/api/2.0/sql/statements/{id}/result/chunks/0")).await).await;
    let fresh = c["external_links"][0]["external_link"].as_str().unwrap();
    let r = client().get(fresh).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let bytes = r.bytes().await.unwrap();
    let reader =
        arrow_ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes.to_vec()), None)
            .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn downloads_are_cut_mid_stream() {
    let h = start(DatabricksConfig::default());
    let path = "/api/2.0/fs/files/Volumes/main/demo/landing/cut.bin";
    let data = vec![7u8; 300_000];
    let r = client()
        .put(format!("{}{path}", h.url()))
        .bearer_auth(TOKEN)
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    h.faults().cut_downloads_after(100_000);
    let r = get(&h, path).await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.content_length(), Some(300_000));
    assert!(
        r.bytes().await.is_err(),
        "a cut body must not read as complete"
    );
    h.faults().cut_downloads_after(0);
    let r = get(&h, path).await;
    assert_eq!(r.bytes().await.unwrap().len(), 300_000);
}

#[tokio::test]
async fn oauth_tokens_expire() {
    let mut config = DatabricksConfig::default();
    config.oauth_clients.insert("sp".into(), "secret".into());
    let h = start(config);
    h.set_oauth_token_ttl(Duration::from_millis(1200));
    let r = client()
        .post(format!("{}/oidc/v1/token", h.url()))
        .basic_auth("sp", Some("secret"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=all-apis")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let tok = json_of(r).await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let with = |t: String| {
        let url = format!("{}/api/2.0/sql/warehouses", h.url());
        async move { client().get(url).bearer_auth(t).send().await.unwrap() }
    };
    assert_eq!(with(tok.clone()).await.status().as_u16(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = with(tok).await;
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(json_of(r).await["error_code"], "UNAUTHENTICATED");
}

#[tokio::test]
async fn lifecycle_with_execution_delay_and_cancel_on_timeout() {
    let h = start(DatabricksConfig::default());
    h.set_execution_delay(Duration::from_millis(600));
    let (_, v) = execute(
        &h,
        json!({"statement": "SELECT 1 AS one", "wait_timeout": "0s"}),
    )
    .await;
    assert_eq!(v["status"]["state"], "PENDING");
    assert!(v.get("manifest").is_none());
    let id = v["statement_id"].as_str().unwrap().to_string();
    let mut states = vec![];
    for _ in 0..100 {
        let s = json_of(get(&h, &format!("/api/2.0/sql/statements/{id}")).await).await;
        let st = s["status"]["state"].as_str().unwrap().to_string();
        if states.last() != Some(&st) {
            states.push(st.clone());
        }
        if st == "SUCCEEDED" {
            assert_eq!(s["result"]["data_array"], json!([["1"]]));
            assert_eq!(s["manifest"]["schema"]["columns"][0]["type_name"], "INT");
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(states, ["PENDING", "RUNNING", "SUCCEEDED"]);

    h.set_execution_delay(Duration::from_secs(8));
    let (_, v) = execute(
        &h,
        json!({"statement": "SELECT 1", "wait_timeout": "5s", "on_wait_timeout": "CANCEL"}),
    )
    .await;
    assert_eq!(v["status"]["state"], "CANCELED");
    let (status, v) = execute(&h, json!({"statement": "SELECT 1", "wait_timeout": "3s"})).await;
    assert_eq!(status, 400);
    assert_eq!(v["error_code"], "INVALID_PARAMETER_VALUE");
}

#[tokio::test]
async fn inline_results_over_the_limit_fail() {
    let h = start(DatabricksConfig {
        inline_limit_bytes: 10_000,
        ..Default::default()
    });
    let (status, v) = execute(&h, json!({"statement": "SELECT id FROM range(5000)"})).await;
    assert_eq!(status, 200);
    assert_eq!(v["status"]["state"], "FAILED");
    assert!(v["status"]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("INLINE"));
    let (_, v) = execute(
        &h,
        json!({"statement": "SELECT id FROM range(5000)", "disposition": "EXTERNAL_LINKS", "format": "CSV"}),
    )
    .await;
    assert_eq!(v["status"]["state"], "SUCCEEDED");
}

#[tokio::test]
async fn cancel_interrupts_a_running_statement_and_rolls_it_back() {
    let h = start(DatabricksConfig::default());
    let (_, v) = execute(
        &h,
        json!({"statement": "INSERT INTO main.demo.t SELECT id, 'x' FROM range(100000000)", "wait_timeout": "0s"}),
    )
    .await;
    let id = v["statement_id"].as_str().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = client()
        .post(format!("{}/api/2.0/sql/statements/{id}/cancel", h.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let s = json_of(get(&h, &format!("/api/2.0/sql/statements/{id}")).await).await;
    assert_eq!(s["status"]["state"], "CANCELED");
    // The engine is free again at once, and the canceled insert left nothing.
    let t = Instant::now();
    let (_, v) = execute(&h, json!({"statement": "SELECT count(*) FROM main.demo.t"})).await;
    assert_eq!(v["result"]["data_array"], json!([["2"]]));
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}
