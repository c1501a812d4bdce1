//! Hardening of the REST API, over HTTP against the real binary with both
//! sandboxes behind it: metrics whose label values are a closed set, the
//! audit file's size cap, what readiness tells whom, and idempotent POSTs.

use crate::common;

use std::collections::BTreeSet;

use common::server::{Bridge, World, COLOMBIA};
use futures_util::StreamExt;

/// A small deterministic generator (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn word(&mut self, alphabet: &[u8], min: u64, max: u64) -> String {
        let len = min + self.below(max - min + 1);
        (0..len)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_";

const METHODS: [&str; 7] = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"];
const ROUTES: [&str; 5] = [
    "/health/live",
    "/jobs",
    "/metrics",
    "/extract",
    "/sync/events",
];

/// A request as a scanner or a confused client sends it: an invented or
/// known method, on an invented path or an existing one.
fn random_request(rng: &mut Rng) -> (String, String) {
    let method = match rng.below(4) {
        0 => METHODS[rng.below(7) as usize].to_string(),
        _ => rng.word(UPPER, 3, 12),
    };
    let path = match rng.below(4) {
        0 => format!("/jobs/{}", rng.word(LOWER, 1, 20)),
        1 => ROUTES[rng.below(5) as usize].to_string(),
        _ => format!("/{}/{}", rng.word(LOWER, 1, 12), rng.word(LOWER, 1, 12)),
    };
    (method, path)
}

/// One request of each kind `random_request` makes: every known method
/// and an invented one, on each route and on an invented path.
fn every_kind() -> Vec<(String, String)> {
    let mut paths: Vec<String> = ROUTES.iter().map(|r| r.to_string()).collect();
    paths.push("/jobs/some-id".into());
    paths.push("/no/where".into());
    let methods = METHODS
        .iter()
        .map(|m| m.to_string())
        .chain(["BREW".to_string()]);
    methods
        .flat_map(|m| paths.iter().map(move |p| (m.clone(), p.clone())))
        .collect()
}

/// The series /metrics exposes (name and labels, without the value).
async fn series(b: &Bridge) -> BTreeSet<String> {
    let m = b.call("GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    m.text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.rsplit_once(' ').map_or(l, |(s, _)| s).to_string())
        .collect()
}

async fn send(b: &Bridge, requests: Vec<(String, String)>) {
    futures_util::stream::iter(requests)
        .map(|(method, path)| async move {
            let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
            let r = b
                .http
                .request(m, format!("{}{path}", b.url))
                .send()
                .await
                .expect("the server answers");
            assert!(
                !r.status().is_server_error(),
                "{method} {path}: {}",
                r.status()
            );
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn random_methods_and_paths_do_not_grow_metrics() {
    let w = World::new("metrics-labels");
    let b = w.serve(&[]);
    // One request of each kind brings every label value there can be: each
    // known method and route, `other`, `unmatched`, and their statuses.
    send(&b, every_kind()).await;
    let before = series(&b).await;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    send(&b, (0..10_000).map(|_| random_request(&mut rng)).collect()).await;
    let after = series(&b).await;
    let new: Vec<&String> = after.difference(&before).collect();
    assert!(new.is_empty(), "10,000 requests added series: {new:?}");
    let requests = after
        .iter()
        .filter(|s| s.starts_with("bridge_http_requests_total{"))
        .count();
    assert!(requests < 100, "{requests} request series");
    assert!(
        after
            .iter()
            .any(|s| s.contains("method=\"other\",route=\"unmatched\"")),
        "{after:?}"
    );
    // Known methods and routes keep their names.
    let r = b.get("/jobs", COLOMBIA).await;
    assert_eq!(r.status, 200);
    assert!(series(&b)
        .await
        .contains("bridge_http_requests_total{method=\"GET\",route=\"/jobs\",status=\"200\"}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_audit_file_stays_under_its_cap_and_keeps_the_newest_refusals() {
    let w = World::new("audit-cap");
    let b = w.serve(&["--audit-max-bytes", "4096", "--audit-keep", "2"]);
    // Each refusal names its own path, so the kept ones can be counted.
    for n in 0..400 {
        let r = b
            .call(
                "GET",
                &format!("/jobs/probe-{n}"),
                Some("not-a-token"),
                None,
            )
            .await;
        assert_eq!(r.status, 401);
    }
    let logs = w.dir.join("logs");
    let files = ["audit.jsonl.2", "audit.jsonl.1", "audit.jsonl"];
    let mut kept = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(logs.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(
            !text.is_empty() && text.len() <= 4096,
            "{f}: {} bytes",
            text.len()
        );
        for l in text.lines() {
            let l: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(l["event_type"], "auth_failure", "{l}");
            let n: usize = l["resource"].as_str().unwrap()["/jobs/probe-".len()..]
                .parse()
                .unwrap();
            kept.push(n);
        }
    }
    assert!(!logs.join("audit.jsonl.3").exists());
    // Oldest file first: the newest refusals, in order, none missing.
    let first = kept[0];
    assert!(first > 0, "nothing was rotated away");
    assert_eq!(kept, (first..400).collect::<Vec<_>>());
}

/// The keys of a readiness check, sorted.
fn keys(check: &serde_json::Value) -> Vec<&str> {
    let mut k: Vec<&str> = check
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

#[tokio::test(flavor = "multi_thread")]
async fn readiness_details_only_for_a_token_and_probes_reuse_a_pooled_login() {
    let w = World::new("ready");
    let b = w.serve(&[]);
    // Anonymous (and a token that is not valid): ok per check, nothing else.
    for token in [None, Some("not-a-token")] {
        let r = b.call("GET", "/health/ready", token, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["status"], "ready");
        for check in ["sqlserver", "databricks"] {
            assert_eq!(keys(&r.json[check]), ["ok"], "{}", r.text);
            assert_eq!(r.json[check]["ok"], true);
        }
        assert!(!r.text.contains("127.0.0.1"), "{}", r.text);
    }
    // With a token: what answered, where, and how fast.
    let r = b.get("/health/ready", COLOMBIA).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(keys(&r.json["sqlserver"]), ["detail", "latency_ms", "ok"]);
    let detail = r.json["sqlserver"]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("127.0.0.1:{}", w.sql.port())) && detail.contains("database"),
        "{detail}"
    );
    // Who each system knows the bridge as, and how it signed in.
    assert!(detail.contains("as 'sa' (SQL login)"), "{detail}");
    let detail = r.json["databricks"]["detail"].as_str().unwrap();
    assert!(
        detail.contains("warehouse") && detail.contains("as '") && detail.contains("token)"),
        "{detail}"
    );
    assert!(
        !r.text.contains("dapi"),
        "a token in the answer: {}",
        r.text
    );

    // The probe borrows the pool's connection: with every new login
    // refused, readiness still holds.
    w.sql.faults().fail_next_logins(1_000);
    for _ in 0..5 {
        let r = b.get("/health/ready", COLOMBIA).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json["sqlserver"]["ok"], true, "{}", r.text);
    }
    w.sql.faults().fail_next_logins(0);

    // A failure: anonymous callers learn which check failed, not why.
    let down = w.serve_with_env(&[], &[("SQLSERVER_HOST", "127.0.0.1,1".to_string())]);
    let r = down.call("GET", "/health/ready", None, None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json["status"], "not_ready");
    assert_eq!(r.json["sqlserver"], serde_json::json!({ "ok": false }));
    assert_eq!(r.json["databricks"], serde_json::json!({ "ok": true }));
    let r = down.get("/health/ready", COLOMBIA).await;
    assert_eq!(r.status, 503);
    assert!(
        r.json["sqlserver"]["detail"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1:1"),
        "{}",
        r.text
    );
}

fn extract_body(country: &str) -> serde_json::Value {
    serde_json::json!({
        "queries_path": "./queries", "config_path": "./config", "country": country,
        "destination": "/Volumes/catalog/schema/vol"
    })
}

/// POSTs `body` (raw JSON text) with an `Idempotency-Key` header.
async fn post_with_key(
    b: &Bridge,
    path: &str,
    token: &str,
    keys: &[&str],
    body: String,
) -> common::server::Reply {
    let mut req = b
        .http
        .post(format!("{}{path}", b.url))
        .bearer_auth(token)
        .header("Content-Type", "application/json")
        .body(body);
    for k in keys {
        req = req.header("Idempotency-Key", *k);
    }
    b.send(req).await
}

async fn job_ids(b: &Bridge, token: &str) -> Vec<String> {
    let r = b.get("/jobs?limit=500", token).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_makes_post_retries_safe() {
    use common::server::MEXICO;
    let w = World::new("idempotency").with_databricks_demo();
    let mut b = w.serve(&["--no-sync"]);
    let body = extract_body("Colombia").to_string();
    let first = post_with_key(&b, "/extract", COLOMBIA, &["k-1"], body.clone()).await;
    assert_eq!(first.status, 202, "{}", first.text);
    let job = first.json["job_id"].as_str().unwrap().to_string();

    // The retry, its keys in another order: the first answer, no new job.
    let reordered = r#"{"destination": "/Volumes/catalog/schema/vol", "country": "Colombia",
        "config_path": "./config", "queries_path": "./queries", "overwrite": false}"#;
    let again = post_with_key(&b, "/extract", COLOMBIA, &["k-1"], reordered.into()).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.json, first.json);
    assert_eq!(again.headers["location"], first.headers["location"]);
    // The key in the draft's form (a quoted Structured Field String) is the same key.
    let quoted = post_with_key(&b, "/extract", COLOMBIA, &["\"k-1\""], body.clone()).await;
    assert_eq!(quoted.json["job_id"], job.as_str());
    assert_eq!(job_ids(&b, COLOMBIA).await, std::slice::from_ref(&job));

    // The same key with another request: 422 (draft §2.7), nothing queued.
    let mut other = extract_body("Colombia");
    other["queries"] = serde_json::json!(["ventas"]);
    let r = post_with_key(&b, "/extract", COLOMBIA, &["k-1"], other.to_string()).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (422, Some("idempotency_key_reused")),
        "{}",
        r.text
    );
    assert_eq!(r.json["details"]["field"], "Idempotency-Key");
    assert_eq!(job_ids(&b, COLOMBIA).await.len(), 1);

    // Keys are per user: Mexico's "k-1" is its own.
    let r = post_with_key(
        &b,
        "/extract",
        MEXICO,
        &["k-1"],
        extract_body("Mexico").to_string(),
    )
    .await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_ne!(r.json["job_id"], job.as_str());

    // A refused request created nothing: its key is free for the corrected one.
    let r = post_with_key(
        &b,
        "/extract",
        COLOMBIA,
        &["k-2"],
        extract_body("Narnia").to_string(),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = post_with_key(&b, "/extract", COLOMBIA, &["k-2"], body.clone()).await;
    assert_eq!(r.status, 202, "{}", r.text);
    assert_eq!(job_ids(&b, COLOMBIA).await.len(), 2);

    // Malformed keys are refused before anything runs.
    for keys in [&["a key"][..], &["k-3", "k-4"], &["caf\u{e9}"]] {
        let mut req = b
            .http
            .post(format!("{}/extract", b.url))
            .bearer_auth(COLOMBIA)
            .json(&extract_body("Colombia"));
        for k in keys {
            req = req.header(
                "Idempotency-Key",
                reqwest::header::HeaderValue::from_bytes(k.as_bytes()).unwrap(),
            );
        }
        let r = b.send(req).await;
        assert_eq!(r.status, 422, "{keys:?}: {}", r.text);
        assert_eq!(r.json["details"]["field"], "Idempotency-Key");
    }
    assert_eq!(job_ids(&b, COLOMBIA).await.len(), 2);

    // Retries racing the first request: one job; the others get its answer
    // or 409 with Retry-After while it is processed (draft §2.7).
    let racing = futures_util::future::join_all(
        (0..6).map(|_| post_with_key(&b, "/extract", COLOMBIA, &["k-race"], body.clone())),
    )
    .await;
    let mut ids = BTreeSet::new();
    for r in &racing {
        match r.status {
            202 => {
                ids.insert(r.json["job_id"].as_str().unwrap().to_string());
            }
            409 => {
                assert_eq!(r.json["code"], "idempotency_key_in_use", "{}", r.text);
                assert_eq!(r.headers["retry-after"], "1");
            }
            s => panic!("{s}: {}", r.text),
        }
    }
    assert_eq!(ids.len(), 1, "{racing:?}");
    assert_eq!(job_ids(&b, COLOMBIA).await.len(), 3);

    // Sync events: the same.
    let event =
        serde_json::json!({"operation": "INSERT", "source_table": "main.demo.calibrated_panel",
        "target_table": "KWP_Colombia.dbo.CalibratedPanel"})
        .to_string();
    let e1 = post_with_key(&b, "/sync/events", COLOMBIA, &["e-1"], event.clone()).await;
    assert_eq!(e1.status, 202, "{}", e1.text);
    let e2 = post_with_key(&b, "/sync/events", COLOMBIA, &["e-1"], event.clone()).await;
    assert_eq!((e2.status, &e2.json), (202, &e1.json));
    assert_eq!(e2.headers["location"], e1.headers["location"]);
    let listed = b.get("/sync/events", COLOMBIA).await;
    assert_eq!(
        listed.json["events"].as_array().unwrap().len(),
        1,
        "{}",
        listed.text
    );
    let r = post_with_key(
        &b,
        "/sync/events",
        COLOMBIA,
        &["e-1"],
        event.replace("INSERT", "UPSERT"),
    )
    .await;
    assert_eq!(r.json["code"], "idempotency_key_reused", "{}", r.text);
    // A key of /sync/events is not one of /extract.
    let r = post_with_key(&b, "/extract", COLOMBIA, &["e-1"], body.clone()).await;
    assert_eq!(r.json["code"], "idempotency_key_reused", "{}", r.text);

    // Keys are kept in the job store: a restart still answers the retry.
    b.kill();
    let b = w.serve(&["--no-sync"]);
    let r = post_with_key(&b, "/extract", COLOMBIA, &["k-1"], body.clone()).await;
    assert_eq!(
        (r.status, r.json["job_id"].as_str()),
        (202, Some(job.as_str()))
    );
    assert_eq!(job_ids(&b, COLOMBIA).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_keys_expire() {
    let w = World::new("idempotency-ttl");
    let b = w.serve(&["--idempotency-ttl", "1"]);
    let body = extract_body("Colombia").to_string();
    let r1 = post_with_key(&b, "/extract", COLOMBIA, &["k"], body.clone()).await;
    assert_eq!(r1.status, 202, "{}", r1.text);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let r2 = post_with_key(&b, "/extract", COLOMBIA, &["k"], body).await;
    assert_eq!(r2.status, 202, "{}", r2.text);
    assert_ne!(r1.json["job_id"], r2.json["job_id"]);
}

/// Anyone may probe readiness, as often as they like: the bridge asks SQL
/// Server and Databricks at most once per two seconds, and probes arriving
/// while a check runs share it.
#[tokio::test(flavor = "multi_thread")]
async fn readiness_probes_share_one_check_per_window() {
    let w = World::new("ready-burst");
    w.sql
        .engine()
        .run_script("CREATE TABLE master.dbo.probes (n int)\nGO\n")
        .unwrap();
    // Count the checks that reach SQL Server.
    w.sql
        .engine()
        .interleave(
            r"^SELECT DB_NAME\(\)",
            "INSERT INTO master.dbo.probes VALUES (1)\nGO\n",
            1_000,
        )
        .unwrap();
    let b = w.serve(&[]);
    let checks = || async {
        let mut client =
            bridge_testkit::sqlserver::connect(w.sql.port(), tiberius::EncryptionLevel::Off).await;
        let row = client
            .simple_query("SELECT count(*) FROM master.dbo.probes")
            .await
            .unwrap()
            .into_row()
            .await
            .unwrap()
            .unwrap();
        row.get::<i32, _>(0).unwrap()
    };
    let burst = (0..40).map(|_| b.call("GET", "/health/ready", None, None));
    for r in futures_util::future::join_all(burst).await {
        assert_eq!(r.status, 200, "{}", r.text);
    }
    assert_eq!(checks().await, 1);
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(b.call("GET", "/health/ready", None, None).await.status, 200);
    assert_eq!(checks().await, 2);
}
