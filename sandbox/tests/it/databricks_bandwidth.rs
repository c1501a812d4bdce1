//! The slow-link fault and result links that require headers, over HTTP:
//! uploads and downloads through the Files API and result links move at
//! the set rate (a total timeout shorter than the transfer fails, connect
//! and read timeouts do not), and links issued with `http_headers` refuse a
//! GET that does not send them.

use crate::dbx;

use std::time::{Duration, Instant};

use bridge_sandbox::databricks::{DatabricksConfig, LinkHeader};
use dbx::*;
use serde_json::json;

const FILE: &str = "/api/2.0/fs/files/Volumes/main/s/v/big.bin";

async fn with_volume(config: DatabricksConfig) -> bridge_sandbox::databricks::DatabricksHandle {
    let h = start(config);
    rows(&h, ADMIN, "CREATE SCHEMA main.s").await;
    rows(&h, ADMIN, "CREATE VOLUME main.s.v").await;
    h
}

#[tokio::test]
async fn file_transfers_move_at_the_set_rate() {
    let h = with_volume(config()).await;
    let data: Vec<u8> = (0..3 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    h.faults().limit_bandwidth(2 * 1024 * 1024);

    // A total timeout shorter than the transfer fails it...
    let hasty = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .expect("client");
    let r = hasty
        .put(format!("{}{FILE}", h.url()))
        .bearer_auth(ADMIN)
        .body(data.clone())
        .send()
        .await;
    assert!(
        r.is_err(),
        "a 3 MiB upload at 2 MiB/s beat a 0.7 s total timeout"
    );

    // ...connect and read timeouts let it finish, at the set pace.
    let patient = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(2))
        .build()
        .expect("client");
    let started = Instant::now();
    let r = patient
        .put(format!("{}{FILE}", h.url()))
        .bearer_auth(ADMIN)
        .body(data.clone())
        .send()
        .await
        .expect("upload");
    assert_eq!(r.status().as_u16(), 204);
    let up = started.elapsed();
    assert!(up >= Duration::from_millis(1300), "upload took {up:?}");

    let started = Instant::now();
    let r = patient
        .get(format!("{}{FILE}", h.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("download");
    assert_eq!(r.status().as_u16(), 200);
    let body = r.bytes().await.expect("body");
    let down = started.elapsed();
    assert_eq!(body.as_ref(), data.as_slice());
    assert!(
        down >= Duration::from_millis(1300),
        "download took {down:?}"
    );

    // API calls are not slowed, and clearing the faults restores the link.
    let started = Instant::now();
    rows(&h, ADMIN, "SELECT 1").await;
    assert!(started.elapsed() < Duration::from_millis(500));
    h.faults().clear();
    let started = Instant::now();
    let r = patient
        .get(format!("{}{FILE}", h.url()))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("download");
    assert_eq!(r.bytes().await.expect("body").len(), data.len());
    assert!(started.elapsed() < Duration::from_millis(1000));
}

#[tokio::test]
async fn result_links_are_slowed_too() {
    let h = start(DatabricksConfig {
        external_chunk_bytes: 64 * 1024 * 1024,
        ..config()
    });
    let v = sql_with(
        &h,
        ADMIN,
        "SELECT id, uuid() AS u FROM range(20000)",
        json!({"disposition": "EXTERNAL_LINKS", "format": "CSV"}),
    )
    .await;
    let link = v["result"]["external_links"][0]["external_link"]
        .as_str()
        .expect("link")
        .to_string();
    let bytes = v["result"]["external_links"][0]["byte_count"]
        .as_u64()
        .expect("byte_count");
    h.faults().limit_bandwidth(bytes);
    let started = Instant::now();
    let body = client()
        .get(&link)
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    assert!(body.len() as u64 >= bytes / 2);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn links_issued_with_headers_refuse_requests_without_them() {
    let h = start(DatabricksConfig {
        link_headers: vec![
            LinkHeader::parse("x-ms-encryption-key").expect("header"),
            LinkHeader::parse("x-ms-encryption-algorithm=AES256").expect("header"),
        ],
        ..config()
    });
    let v = sql_with(
        &h,
        ADMIN,
        "SELECT id FROM range(5)",
        json!({"disposition": "EXTERNAL_LINKS", "format": "CSV"}),
    )
    .await;
    let link = &v["result"]["external_links"][0];
    let url = link["external_link"].as_str().expect("link");
    let headers = link["http_headers"].as_object().expect("http_headers");
    assert_eq!(headers["x-ms-encryption-algorithm"], "AES256");
    let key = headers["x-ms-encryption-key"]
        .as_str()
        .expect("key")
        .to_string();
    assert_eq!(key.len(), 32);

    let r = client().get(url).send().await.expect("get");
    assert_eq!(r.status().as_u16(), 403);
    let r = client()
        .get(url)
        .header("x-ms-encryption-key", "wrong")
        .header("x-ms-encryption-algorithm", "AES256")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 403);
    let mut req = client().get(url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str().unwrap_or_default());
    }
    let r = req.send().await.expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.expect("body").lines().count(), 5);

    // Each link gets its own key; a key of another link does not open it.
    let w = sql_with(
        &h,
        ADMIN,
        "SELECT id FROM range(5)",
        json!({"disposition": "EXTERNAL_LINKS", "format": "CSV"}),
    )
    .await;
    let other = &w["result"]["external_links"][0];
    assert_ne!(other["http_headers"]["x-ms-encryption-key"], key.as_str());
    let r = client()
        .get(other["external_link"].as_str().expect("link"))
        .header("x-ms-encryption-key", key.as_str())
        .header("x-ms-encryption-algorithm", "AES256")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 403);

    // Without the option, links need nothing and say so with an empty map.
    let plain = start(config());
    let v = sql_with(
        &plain,
        ADMIN,
        "SELECT 1",
        json!({"disposition": "EXTERNAL_LINKS", "format": "CSV"}),
    )
    .await;
    assert_eq!(v["result"]["external_links"][0]["http_headers"], json!({}));
    assert!(LinkHeader::parse("bad header").is_none());
}
