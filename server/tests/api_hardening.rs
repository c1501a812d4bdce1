//! Hardening of the REST API, over HTTP against the real binary with both
//! sandboxes behind it: metrics whose label values are a closed set, the
//! audit file's size cap, what readiness tells whom, and idempotent POSTs.

mod common;

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
    assert!(r.json["databricks"]["detail"]
        .as_str()
        .unwrap()
        .contains("warehouse"));

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
