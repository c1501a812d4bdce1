//! Transfers as a slow or strict workspace serves them: a 200 MiB upload
//! through a link slower than the client's timeout succeeds (connect and
//! idle-read limits, not a total one), and result links that demand their
//! documented `http_headers` are fetched with them.

use std::io::Write;
use std::time::{Duration, Instant};

use bridge_sandbox::databricks::{self, DatabricksConfig, LinkHeader};
use sha2::{Digest, Sha256};
use sql_databricks_bridge::config::{DatabricksAuth, DatabricksSettings};
use sql_databricks_bridge::databricks::Workspace;

fn workspace(d: &databricks::DatabricksHandle, timeout: Duration) -> Workspace {
    Workspace::new(
        &DatabricksSettings {
            host: d.url().trim_end_matches('/').to_string(),
            auth: DatabricksAuth::Token("dapi-test".into()),
        },
        timeout,
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_upload_on_a_slow_link_outlasts_the_timeout() {
    let d = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        ..DatabricksConfig::default()
    })
    .unwrap();
    d.engine()
        .run_script(
            "CREATE SCHEMA IF NOT EXISTS main.demo; CREATE VOLUME IF NOT EXISTS main.demo.landing",
        )
        .unwrap();
    // 200 MiB at 40 MiB/s: about five seconds, with a two-second timeout.
    d.faults().limit_bandwidth(40 * 1024 * 1024);
    let path = std::env::temp_dir().join(format!("bridge-big-{}.bin", std::process::id()));
    let mut hash = Sha256::new();
    {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
        let mut block = vec![0u8; 1024 * 1024];
        for i in 0..200u32 {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (i as usize * 31 + j * 7) as u8;
            }
            hash.update(&block);
            f.write_all(&block).unwrap();
        }
    }
    let ws = workspace(&d, Duration::from_secs(2));
    let t0 = Instant::now();
    let r = ws
        .upload_file("/Volumes/main/demo/landing/big.bin", &path, true)
        .await;
    let took = t0.elapsed();
    let _ = std::fs::remove_file(&path);
    r.unwrap();
    assert!(
        took > Duration::from_secs(3),
        "{took:?}: the link was not slow"
    );
    let landed =
        std::fs::read(d.engine().volumes_root().join("main/demo/landing/big.bin")).unwrap();
    assert_eq!(landed.len(), 200 * 1024 * 1024);
    assert_eq!(Sha256::digest(&landed), hash.finalize());
}

/// A server that takes longer than the idle timeout to store a file it has
/// received whole (a large object being finalised) is waited for: the idle
/// watchdog covers the sending only, so the upload is not abandoned and
/// sent again.
#[tokio::test(flavor = "multi_thread")]
async fn an_upload_waits_for_the_server_to_store_what_it_received() {
    let d = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        ..DatabricksConfig::default()
    })
    .unwrap();
    d.engine()
        .run_script(
            "CREATE SCHEMA IF NOT EXISTS main.demo; CREATE VOLUME IF NOT EXISTS main.demo.landing",
        )
        .unwrap();
    d.faults().slow_commits(Duration::from_secs(3));
    let path = std::env::temp_dir().join(format!("bridge-commit-{}.bin", std::process::id()));
    std::fs::write(&path, vec![7u8; 4 * 1024 * 1024]).unwrap();
    let ws = workspace(&d, Duration::from_secs(1)).with_retry(
        sql_databricks_bridge::retry::RetryPolicy {
            attempts: 1,
            base: Duration::from_millis(1),
            cap: Duration::from_millis(1),
        },
    );
    let t0 = Instant::now();
    let r = ws
        .upload_file("/Volumes/main/demo/landing/slow.bin", &path, true)
        .await;
    let _ = std::fs::remove_file(&path);
    r.unwrap();
    assert!(t0.elapsed() >= Duration::from_secs(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn result_links_are_fetched_with_the_headers_they_name() {
    let d = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        link_headers: vec![LinkHeader {
            name: "x-amz-server-side-encryption-customer-key".into(),
            value: None,
        }],
        ..DatabricksConfig::default()
    })
    .unwrap();
    let ws = workspace(&d, Duration::from_secs(10));
    let mut r = ws
        .query_arrow(
            d.warehouse_id(),
            "SELECT id, id * 2 AS doble FROM range(50000)",
            &[],
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    let mut rows = 0;
    while let Some(b) = r.next_batch().await.unwrap() {
        rows += b.num_rows();
    }
    assert_eq!(rows, 50000);
}
