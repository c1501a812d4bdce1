//! The REST API, over HTTP against the real binary on a random port, with
//! both sandboxes behind it.

use crate::common;

use std::time::Duration;

use common::server::{World, COLOMBIA, MEXICO};
use serde_json::json;

fn deck_request() -> serde_json::Value {
    // The deck's curl example, as written.
    json!({
        "queries_path": "./queries",
        "config_path": "./config",
        "country": "Colombia",
        "destination": "/Volumes/catalog/schema/vol"
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn the_decks_curl_examples_run_an_extraction_to_the_end() {
    let w = World::new("deck");
    let b = w.serve(&[]);
    let r = b
        .call("POST", "/extract", Some(COLOMBIA), Some(deck_request()))
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    let id = r.json["job_id"].as_str().unwrap().to_string();
    assert_eq!(r.headers["location"], format!("/jobs/{id}").as_str());
    assert_eq!(r.json["status_url"], format!("/jobs/{id}"));

    let job = b.wait_final(&id, COLOMBIA).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["owner"], "proyecto-colombia");
    assert_eq!(job["request"]["country"], "Colombia");
    let queries = job["queries"].as_array().unwrap();
    assert_eq!(queries.len(), 2);
    for q in queries {
        assert_eq!(q["state"], "succeeded", "{q}");
        assert!(q["rows"].as_u64().unwrap() > 0);
        for f in q["files"].as_array().unwrap() {
            let rel = f.as_str().unwrap().trim_start_matches("/Volumes/");
            assert!(w.dbx.engine().volumes_root().join(rel).is_file(), "{f}");
        }
    }
    assert_eq!(
        job["rows"].as_u64().unwrap(),
        queries
            .iter()
            .map(|q| q["rows"].as_u64().unwrap())
            .sum::<u64>()
    );
    assert!(job["started_at"].is_string() && job["finished_at"].is_string());

    // The same again without overwrite: the output exists, the job fails
    // and says so; with overwrite it succeeds.
    let r = b
        .call("POST", "/extract", Some(COLOMBIA), Some(deck_request()))
        .await;
    let again = b
        .wait_final(r.json["job_id"].as_str().unwrap(), COLOMBIA)
        .await;
    assert_eq!(again["state"], "failed");
    assert!(
        again["error"].as_str().unwrap().contains("already exists"),
        "{again}"
    );
    let mut req = deck_request();
    req["overwrite"] = json!(true);
    req["queries"] = json!(["ventas"]);
    let r = b.call("POST", "/extract", Some(COLOMBIA), Some(req)).await;
    let third = b
        .wait_final(r.json["job_id"].as_str().unwrap(), COLOMBIA)
        .await;
    assert_eq!(third["state"], "succeeded", "{third}");
    assert_eq!(third["queries"].as_array().unwrap().len(), 1);

    // Listing: newest first, filters and both kinds of paging.
    let all = b.get("/jobs", COLOMBIA).await;
    assert_eq!(all.status, 200);
    let ids: Vec<&str> = all.json["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 3);
    assert_eq!(ids[2], id);
    let failed = b.get("/jobs?state=failed", COLOMBIA).await;
    assert_eq!(failed.json["jobs"].as_array().unwrap().len(), 1);
    let p1 = b.get("/jobs?limit=2", COLOMBIA).await;
    assert_eq!(p1.json["jobs"].as_array().unwrap().len(), 2);
    let cursor = p1.json["next_cursor"].as_str().unwrap();
    let p2 = b
        .get(&format!("/jobs?limit=2&cursor={cursor}"), COLOMBIA)
        .await;
    assert_eq!(p2.json["jobs"][0]["job_id"], id);
    assert!(p2.json["next_cursor"].is_null());
    let off = b.get("/jobs?limit=1&offset=2", COLOMBIA).await;
    assert_eq!(off.json["jobs"][0]["job_id"], id);
    // A cursor and an offset combine: after the cursor's job, skip more.
    let first = p1.json["jobs"][0]["job_id"].as_str().unwrap();
    let both = b
        .get(&format!("/jobs?limit=1&cursor={cursor}&offset=0"), COLOMBIA)
        .await;
    assert_eq!(
        (both.status, both.json["jobs"][0]["job_id"].as_str()),
        (200, Some(id.as_str())),
        "{}",
        both.text
    );
    let none = b
        .get(&format!("/jobs?cursor={cursor}&offset=1"), COLOMBIA)
        .await;
    assert_eq!(
        none.json["jobs"].as_array().unwrap().len(),
        0,
        "{first}: {}",
        none.text
    );

    // What list-queries and show-params print, as JSON.
    let q = b.get("/queries?queries_path=./queries", COLOMBIA).await;
    assert_eq!(q.status, 200, "{}", q.text);
    let names: Vec<&str> = q.json["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["productos", "ventas"]);
    assert!(q.json["queries"][1]["params"]
        .as_array()
        .unwrap()
        .contains(&json!("sales_table")));
    let p = b
        .get("/params?country=Mexico&queries=ventas", COLOMBIA)
        .await;
    assert_eq!(p.status, 200, "{}", p.text);
    assert_eq!(p.json["params"]["database"]["value"], "KWP_Mexico");
    assert_eq!(p.json["params"]["database"]["source"], "Mexico.yaml");
    assert!(p.json["queries"][0]["sql"]
        .as_str()
        .unwrap()
        .contains("KWP_Mexico.dbo.J_Ventas_MX"));

    // Audit: submitted, started, succeeded, and each table read granted.
    let audit = w.audit_lines();
    let has = |t: &str, res: &str| {
        audit
            .iter()
            .any(|l| l["event_type"] == t && l["resource"].as_str().unwrap().contains(res))
    };
    assert!(has("job_submitted", &id) && has("job_started", &id) && has("job_succeeded", &id));
    assert!(has("auth_success", "j_ventas_co"));
    assert!(audit.iter().all(|l| l["timestamp"].is_string()));
    // The same query read in 3 ranges of its key, concurrently: the same rows.
    let mut req = deck_request();
    req["overwrite"] = json!(true);
    req["queries"] = json!(["ventas"]);
    req["partition_on"] = json!("id_transaccion");
    req["partitions"] = json!(3);
    let r = b.call("POST", "/extract", Some(COLOMBIA), Some(req)).await;
    assert_eq!(r.status, 202, "{}", r.text);
    let split = b
        .wait_final(r.json["job_id"].as_str().unwrap(), COLOMBIA)
        .await;
    assert_eq!(split["state"], "succeeded", "{split}");
    assert_eq!(split["rows"], third["rows"], "{split}");
    assert_eq!(split["request"]["partitions"], 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_401_rights_403_and_jobs_are_private() {
    let w = World::new("auth");
    let b = w.serve(&[]);

    let r = b.call("GET", "/jobs", None, None).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json["code"], "unauthorized");
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer realm="));
    let r = b.call("GET", "/jobs", Some("not-a-token"), None).await;
    assert_eq!(r.status, 401);
    assert!(r.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("invalid_token"));
    let r = b
        .send(
            b.http
                .get(format!("{}/jobs", b.url))
                .header("Authorization", "Basic YTpi"),
        )
        .await;
    assert_eq!(r.status, 401);

    // The hashed token works like the plain one.
    assert_eq!(b.get("/jobs", MEXICO).await.status, 200);

    // Mexico may not read Colombia's sales table: 403 naming it, and no
    // job is created, so no SQL runs.
    let r = b
        .call("POST", "/extract", Some(MEXICO), Some(deck_request()))
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json["code"], "forbidden");
    assert_eq!(
        r.json["details"]["tables"],
        json!(["kwp_colombia.dbo.productos", "kwp_colombia.dbo.j_ventas_co"])
    );
    assert_eq!(r.json["details"]["query"], "productos");
    assert_eq!(r.json["details"]["queries"], json!(["productos", "ventas"]));
    assert!(b.get("/jobs", MEXICO).await.json["jobs"]
        .as_array()
        .unwrap()
        .is_empty());

    // Colombia's job is invisible to Mexico, and cannot be cancelled by it.
    let r = b
        .call("POST", "/extract", Some(COLOMBIA), Some(deck_request()))
        .await;
    let id = r.json["job_id"].as_str().unwrap().to_string();
    let r = b.get(&format!("/jobs/{id}"), MEXICO).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = b
        .call("DELETE", &format!("/jobs/{id}"), Some(MEXICO), None)
        .await;
    assert_eq!(r.status, 404);
    let done = b.wait_final(&id, COLOMBIA).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert!(b.get("/jobs", MEXICO).await.json["jobs"]
        .as_array()
        .unwrap()
        .is_empty());
    // A finished job cannot be cancelled.
    let r = b
        .call("DELETE", &format!("/jobs/{id}"), Some(COLOMBIA), None)
        .await;
    assert_eq!((r.status, r.json["code"].as_str()), (409, Some("conflict")));

    let audit = w.audit_lines();
    let denied = audit
        .iter()
        .find(|l| l["event_type"] == "permission_denied" && l["action"] == "read")
        .expect("a permission_denied line");
    assert_eq!(denied["user_name"], "proyecto-mexico");
    assert_eq!(denied["source_ip"], "127.0.0.1");
    assert_eq!(denied["outcome"], "denied");
    assert!(audit
        .iter()
        .any(|l| l["event_type"] == "auth_failure" && l["user_name"].is_null()));
    // No token or password in the audit trail or the log.
    let trail = std::fs::read_to_string(w.dir.join("logs/audit.jsonl")).unwrap() + &w.log();
    for secret in [
        COLOMBIA,
        MEXICO,
        "not-a-token",
        "Bridge!Passw0rd",
        "dapi-test",
    ] {
        assert!(!trail.contains(secret), "{secret} leaked");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_requests_get_the_error_shape_naming_the_field() {
    let w = World::new("bad");
    std::fs::create_dir_all(w.dir.join("../bridge-api-outside")).unwrap();
    std::os::unix::fs::symlink("/etc", w.dir.join("etc-link")).unwrap();
    let b = w.serve(&["--body-limit", "4096"]);
    let post_raw = |body: &'static str, ct: &'static str| {
        b.http
            .post(format!("{}/extract", b.url))
            .bearer_auth(COLOMBIA)
            .header("Content-Type", ct)
            .body(body)
    };
    let r = b.send(post_raw("{\"country\": ", "application/json")).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (400, Some("invalid_json"))
    );
    let r = b.send(post_raw("country=CO", "text/plain")).await;
    assert_eq!(r.status, 415);
    let big = Box::leak(format!("{{\"country\": \"{}\"}}", "x".repeat(10_000)).into_boxed_str());
    let r = b.send(post_raw(big, "application/json")).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (413, Some("payload_too_large"))
    );

    let with = |k: &str, v: serde_json::Value| {
        let mut req = deck_request();
        req[k] = v;
        req
    };
    let cases = [
        (with("extra", json!(1)), 422, "extra"),
        (with("country", json!(7)), 422, "country"),
        (with("overwrite", json!("yes")), 422, "overwrite"),
        (with("country", json!("Narnia")), 422, "country"),
        (with("queries", json!(["nope"])), 422, "queries"),
        (
            with("queries_path", json!("./missing")),
            422,
            "queries_path",
        ),
        (
            with("queries_path", json!("../bridge-api-outside")),
            403,
            "queries_path",
        ),
        (with("queries_path", json!("/etc")), 403, "queries_path"),
        (with("config_path", json!("etc-link")), 403, "config_path"),
        (
            with("config_path", json!("config/../../")),
            403,
            "config_path",
        ),
        (
            with("destination", json!("dbfs:/tmp/x")),
            422,
            "destination",
        ),
        (
            with("destination", json!("/Volumes/only/two")),
            422,
            "destination",
        ),
        (with("destination", json!("./out")), 422, "destination"),
        (with("partitions", json!(0)), 422, "partitions"),
        (with("partition_on", json!("a]b")), 422, "partition_on"),
    ];
    for (body, status, field) in cases {
        let r = b
            .call("POST", "/extract", Some(COLOMBIA), Some(body.clone()))
            .await;
        assert_eq!(r.status, status, "{body}: {}", r.text);
        assert_eq!(r.json["details"]["field"], field, "{body}: {}", r.text);
        assert!(r.json["message"].as_str().unwrap().len() > 5);
    }
    let mut missing = deck_request();
    missing.as_object_mut().unwrap().remove("country");
    let r = b
        .call("POST", "/extract", Some(COLOMBIA), Some(missing))
        .await;
    assert_eq!(
        (r.status, r.json["details"]["field"].as_str()),
        (422, Some("country"))
    );

    // A parameter missing from the config files names file, line and key.
    std::fs::write(
        w.dir.join("queries/rota.sql"),
        "SELECT 1 AS x\nFROM {nowhere}.dbo.t\n",
    )
    .unwrap();
    let r = b
        .call(
            "POST",
            "/extract",
            Some(COLOMBIA),
            Some(with("queries", json!(["rota"]))),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.json["message"]
        .as_str()
        .unwrap()
        .contains("rota.sql:2: parameter 'nowhere'"));
    // SQL that cannot be analysed for permissions is refused, with the reason.
    std::fs::write(w.dir.join("queries/rara.sql"), "SELEC nothing FROM\n").unwrap();
    let r = b
        .call(
            "POST",
            "/extract",
            Some(COLOMBIA),
            Some(with("queries", json!(["rara"]))),
        )
        .await;
    assert_eq!(
        (r.status, r.json["details"]["query"].as_str()),
        (422, Some("rara"))
    );
    assert!(
        r.json["message"]
            .as_str()
            .unwrap()
            .contains("does not parse"),
        "{}",
        r.text
    );
    std::fs::remove_file(w.dir.join("queries/rota.sql")).unwrap();
    std::fs::remove_file(w.dir.join("queries/rara.sql")).unwrap();

    for (path, field) in [
        ("/jobs?limit=0", "limit"),
        ("/jobs?state=sleeping", "state"),
        ("/jobs?bogus=1", "bogus"),
        ("/jobs?cursor=abc", "cursor"),
        ("/jobs?cursor=05", "cursor"),
        ("/jobs?offset=-1", "offset"),
        ("/params", "country"),
        ("/params?country=Narnia", "country"),
        ("/params?country=Colombia&queries=nope", "queries"),
        ("/queries?queries_path=../", "queries_path"),
    ] {
        let r = b.get(path, COLOMBIA).await;
        assert!(matches!(r.status, 403 | 422), "{path}: {}", r.text);
        assert_eq!(r.json["details"]["field"], field, "{path}: {}", r.text);
    }
    let r = b.get("/jobs/no-such-job", COLOMBIA).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = b.call("GET", "/no/such/route", None, None).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (404, Some("not_found"))
    );
    let r = b.call("PUT", "/jobs", Some(COLOMBIA), None).await;
    assert_eq!(
        (r.status, r.json["code"].as_str()),
        (405, Some("method_not_allowed"))
    );
    // Nothing above queued a job.
    assert!(b.get("/jobs", COLOMBIA).await.json["jobs"]
        .as_array()
        .unwrap()
        .is_empty());
}

/// A job reading `bench.dbo.largo` slowly enough to act while it runs.
async fn start_long(b: &common::server::Bridge, dest: &str) -> String {
    let r = b
        .call(
            "POST",
            "/extract",
            Some(COLOMBIA),
            Some(json!({
                "queries_path": "queries", "config_path": "config", "country": "Colombia",
                "destination": dest, "queries": ["largo"]
            })),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text);
    r.json["job_id"].as_str().unwrap().to_string()
}

async fn wait_rows(b: &common::server::Bridge, id: &str) {
    b.wait_job(id, COLOMBIA, Duration::from_secs(60), |j| {
        j["state"] == "running" && j["queries"][0]["rows"].as_u64().unwrap_or(0) > 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_stops_a_long_extraction_and_publishes_nothing() {
    let w = World::new("cancel").with_large_table(200_000);
    w.sql.faults().delay_packets(Duration::from_millis(3));
    let out = w.dir.join("out");
    let b = w.serve(&[
        "--output-root",
        out.to_str().unwrap(),
        "--max-concurrent-jobs",
        "1",
        "--batch-rows",
        "1000",
    ]);
    let first = start_long(&b, "local").await;
    let second = start_long(&b, "local").await;
    wait_rows(&b, &first).await;
    // One slot: the second waits in the queue; cancelling it there is instant.
    let r = b.get(&format!("/jobs/{second}"), COLOMBIA).await;
    assert_eq!(r.json["state"], "queued");
    let r = b
        .call("DELETE", &format!("/jobs/{second}"), Some(COLOMBIA), None)
        .await;
    assert_eq!(
        (r.status, r.json["state"].as_str()),
        (200, Some("cancelled")),
        "{}",
        r.text
    );
    assert!(r.json["started_at"].is_null());

    let t0 = std::time::Instant::now();
    let r = b
        .call("DELETE", &format!("/jobs/{first}"), Some(COLOMBIA), None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(r.json["state"], "cancelled");
    assert_eq!(r.json["queries"][0]["state"], "cancelled");
    let rows = r.json["queries"][0]["rows"].as_u64().unwrap();
    assert!(rows > 0 && rows < 200_000, "{rows}");
    // Nothing published, nothing staged left behind.
    let country = out.join("local/Colombia");
    let left: Vec<_> = std::fs::read_dir(&country)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    assert!(w
        .audit_lines()
        .iter()
        .any(|l| l["event_type"] == "job_cancelled" && l["resource"] == format!("job:{first}")));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_history_and_marks_running_jobs_interrupted() {
    let w = World::new("restart").with_large_table(200_000);
    let out = w.dir.join("out");
    let args = [
        "--output-root",
        out.to_str().unwrap(),
        "--batch-rows",
        "1000",
    ];
    let mut b = w.serve(&args);
    let r = b
        .call("POST", "/extract", Some(COLOMBIA), Some(deck_request()))
        .await;
    let finished = r.json["job_id"].as_str().unwrap().to_string();
    assert_eq!(
        b.wait_final(&finished, COLOMBIA).await["state"],
        "succeeded"
    );
    w.sql.faults().delay_packets(Duration::from_millis(3));
    let running = start_long(&b, "local").await;
    wait_rows(&b, &running).await;
    b.kill();

    let b = w.serve(&args);
    let r = b.get(&format!("/jobs/{running}"), COLOMBIA).await;
    assert_eq!(r.json["state"], "interrupted", "{}", r.text);
    assert!(r.json["error"].as_str().unwrap().contains("stopped"));
    let r = b.get(&format!("/jobs/{finished}"), COLOMBIA).await;
    assert_eq!(r.json["state"], "succeeded");
    // productos, ventas and largo.
    assert_eq!(r.json["queries"].as_array().unwrap().len(), 3);
    let r = b
        .call("DELETE", &format!("/jobs/{running}"), Some(COLOMBIA), None)
        .await;
    assert_eq!(r.status, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_jobs_finish_then_interrupts_them() {
    let w = World::new("sigterm").with_large_table(200_000);
    w.sql.faults().delay_packets(Duration::from_millis(3));
    let out = w.dir.join("out");
    let args = [
        "--output-root",
        out.to_str().unwrap(),
        "--batch-rows",
        "1000",
        "--shutdown-timeout",
        "1",
    ];
    let mut b = w.serve(&args);
    let id = start_long(&b, "local").await;
    wait_rows(&b, &id).await;
    let t0 = std::time::Instant::now();
    let status = b.terminate();
    assert!(status.success(), "{status:?}\n{}", w.log());
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    // The process itself recorded the interruption (a restart finds it so).
    let b = w.serve(&args);
    let r = b.get(&format!("/jobs/{id}"), COLOMBIA).await;
    assert_eq!(r.json["state"], "interrupted", "{}", r.text);
    assert!(
        r.json["error"].as_str().unwrap().contains("shut down"),
        "{}",
        r.text
    );
    assert_eq!(r.json["queries"][0]["state"], "cancelled");
    assert!(!out.join("local/Colombia/largo").exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn health_metrics_docs_and_the_committed_spec() {
    let w = World::new("ops");
    let b = w.serve(&[]);
    let live = b.call("GET", "/health/live", None, None).await;
    assert_eq!(
        (live.status, live.json["status"].as_str()),
        (200, Some("ok"))
    );
    let ready = b.call("GET", "/health/ready", None, None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    assert_eq!(ready.json["sqlserver"]["ok"], true);
    assert_eq!(ready.json["databricks"]["ok"], true);

    let r = b
        .call("POST", "/extract", Some(COLOMBIA), Some(deck_request()))
        .await;
    b.wait_final(r.json["job_id"].as_str().unwrap(), COLOMBIA)
        .await;
    let m = b.call("GET", "/metrics", None, None).await;
    assert_eq!(m.status, 200);
    assert!(m.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    for needle in [
        "bridge_jobs{state=\"succeeded\"} 1",
        "bridge_jobs{state=\"running\"} 0",
        "bridge_rows_extracted_total{destination=\"volume\"}",
        "bridge_job_duration_seconds_count{state=\"succeeded\"} 1",
        "bridge_http_requests_total{method=\"POST\",route=\"/extract\",status=\"202\"} 1",
        "bridge_http_request_duration_seconds_bucket{method=\"GET\",route=\"/jobs/{job_id}\",le=\"+Inf\"}",
    ] {
        assert!(m.text.contains(needle), "{needle} not in\n{}", m.text);
    }

    // The served spec is the committed file, and the `openapi` command's.
    let committed = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi.json"),
    )
    .unwrap();
    let served = b.call("GET", "/openapi.json", None, None).await;
    assert_eq!(
        served.text, committed,
        "openapi.json is stale: run `sql-databricks-bridge openapi > openapi.json`"
    );
    let printed = std::process::Command::new(env!("CARGO_BIN_EXE_sql-databricks-bridge"))
        .arg("openapi")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(printed.stdout).unwrap(), committed);
    // Every documented route exists (no "no such endpoint").
    for (path, item) in served.json["paths"].as_object().unwrap() {
        let concrete = path.replace("{job_id}", "x");
        for method in item.as_object().unwrap().keys() {
            let r = b
                .call(&method.to_uppercase(), &concrete, Some(COLOMBIA), None)
                .await;
            assert!(
                r.json["message"] != "no such endpoint" && r.status != 405,
                "{method} {path}: {}",
                r.status
            );
        }
    }
    let docs = b.send(b.http.get(format!("{}/docs/", b.url))).await;
    assert_eq!(docs.status, 200);
    assert!(docs.text.to_lowercase().contains("swagger"));

    // Readiness says which system failed.
    let down = w.serve_with_env(&[], &[("SQLSERVER_HOST", "127.0.0.1,1".to_string())]);
    let r = down.call("GET", "/health/ready", None, None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json["status"], "not_ready");
    assert_eq!(r.json["sqlserver"]["ok"], false);
    assert_eq!(r.json["databricks"]["ok"], true);
}

/// GET /audit: a caller reads its own lines (refusals included), is refused
/// (and audited) asking for another user's, and a user with `audit: all`
/// reads everyone's, filtered by kind, resource and time.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_trail_is_searched_within_the_callers_rights() {
    let w = World::new("audit-search");
    let b = w.serve(&[]);
    // A refusal of Colombia's (Mexico's tables) and an anonymous one.
    let mut req = deck_request();
    req["country"] = json!("Mexico");
    let r = b.call("POST", "/extract", Some(COLOMBIA), Some(req)).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = b.get("/jobs", "not-a-token").await;
    assert_eq!(r.status, 401);

    let own = b.get("/audit?event_type=permission_denied", COLOMBIA).await;
    assert_eq!(own.status, 200, "{}", own.text);
    let lines = own.json["lines"].as_array().unwrap();
    assert!(!lines.is_empty());
    assert!(lines.iter().all(|l| l["user_name"] == "proyecto-colombia"));
    assert!(lines
        .iter()
        .any(|l| l["resource"].as_str().unwrap().contains("kwp_mexico")
            && l["missing_right"].is_string()));
    // Newest first.
    let all_own = b.get("/audit?limit=1000", COLOMBIA).await;
    let times: Vec<&str> = all_own.json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["timestamp"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|p| p[0] >= p[1]), "{times:?}");
    assert!(all_own.json["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["user_name"] == "proyecto-colombia"));

    // Someone else's lines: 403, audited with the missing right.
    let r = b.get("/audit?user=proyecto-mexico", COLOMBIA).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert!(w
        .audit_lines()
        .iter()
        .any(|l| l["event_type"] == "permission_denied"
            && l["resource"] == "audit:proyecto-mexico"
            && l["missing_right"] == "audit: all"));

    // The operators' token reads everyone's, anonymous refusals included.
    let ops = b
        .get("/audit?outcome=denied&limit=1000", "demo-ops-token")
        .await;
    assert_eq!(ops.status, 200, "{}", ops.text);
    let lines = ops.json["lines"].as_array().unwrap();
    assert!(lines
        .iter()
        .any(|l| l["user_name"].is_null() && l["event_type"] == "auth_failure"));
    assert!(lines.iter().any(|l| l["user_name"] == "proyecto-colombia"));
    let mexico = b
        .get(
            "/audit?user=proyecto-colombia&resource=kwp_mexico",
            "demo-ops-token",
        )
        .await;
    assert!(!mexico.json["lines"].as_array().unwrap().is_empty());
    // A time window in the future is empty; bad times and limits are 422 naming the field.
    let later = b
        .get("/audit?since=2999-01-01T00:00:00Z", "demo-ops-token")
        .await;
    assert_eq!(later.json["lines"].as_array().unwrap().len(), 0);
    for (q, field) in [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
    ] {
        let r = b.get(&format!("/audit?{q}"), COLOMBIA).await;
        assert_eq!(
            (r.status, r.json["details"]["field"].as_str()),
            (422, Some(field)),
            "{q}: {}",
            r.text
        );
    }
    let r = b.get("/audit", "not-a-token").await;
    assert_eq!(r.status, 401);
}

/// GET /countries lists the config directory's countries; paths outside the
/// config root are refused.
#[tokio::test(flavor = "multi_thread")]
async fn countries_come_from_the_config_directory() {
    let w = World::new("countries");
    let b = w.serve(&[]);
    let r = b.get("/countries", COLOMBIA).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let names: Vec<&str> = r.json["countries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Colombia") && names.contains(&"Mexico"),
        "{names:?}"
    );
    assert!(!names
        .iter()
        .any(|n| n.eq_ignore_ascii_case("permissions") || n.eq_ignore_ascii_case("common_params")));
    let r = b.get("/countries?config_path=/etc", COLOMBIA).await;
    assert_eq!(
        (r.status, r.json["details"]["field"].as_str()),
        (403, Some("config_path"))
    );
    assert_eq!(b.get("/countries", "not-a-token").await.status, 401);
}

/// Checks the published output of `Colombia/<query>` in the world's volume:
/// the manifest names a run whose every part is there, whole.
fn assert_output_whole(w: &World, query: &str) {
    let vol = w.dbx.engine().volumes_root().join("catalog/schema/vol");
    let dir = vol.join("Colombia").join(query);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("_manifest.json")).unwrap()).unwrap();
    let location = manifest["location"].as_str().unwrap();
    let run = vol.join(location.trim_start_matches("/Volumes/catalog/schema/vol/"));
    for p in manifest["parts"].as_array().unwrap() {
        let file = run.join(p["file"].as_str().unwrap());
        let len = std::fs::metadata(&file).map(|m| m.len()).ok();
        assert_eq!(
            len,
            p["bytes"].as_u64(),
            "{query}: the manifest names {} but the run holds {len:?}",
            file.display()
        );
    }
}

/// Two jobs of one country and query sent together, round after round,
/// with uploads slow enough that they overlap: one run writes the output
/// at a time (the other is refused, naming who writes it, or runs after),
/// and the published manifest always names a whole run. The same query
/// named twice in one request, in two spellings, is one query.
#[tokio::test(flavor = "multi_thread")]
async fn overlapping_runs_of_one_output_never_publish_a_partial_run() {
    let w = World::new("overlap");
    let b = w.serve(&["--rows-per-file", "8", "--max-concurrent-jobs", "4"]);
    let mut req = deck_request();
    req["overwrite"] = json!(true);
    req["queries"] = json!(["ventas", "VENTAS"]);
    let r = b.call("POST", "/extract", Some(COLOMBIA), Some(req)).await;
    let once = b
        .wait_final(r.json["job_id"].as_str().unwrap(), COLOMBIA)
        .await;
    assert_eq!(once["state"], "succeeded", "{once}");
    assert_eq!(once["queries"].as_array().unwrap().len(), 1, "{once}");
    assert_output_whole(&w, "ventas");

    w.dbx.faults().limit_bandwidth(16 * 1024);
    let mut req = deck_request();
    req["overwrite"] = json!(true);
    let mut refused = 0;
    for round in 0..3 {
        let (r1, r2) = tokio::join!(
            b.call("POST", "/extract", Some(COLOMBIA), Some(req.clone())),
            b.call("POST", "/extract", Some(COLOMBIA), Some(req.clone()))
        );
        for r in [r1, r2] {
            let job = b
                .wait_final(r.json["job_id"].as_str().unwrap(), COLOMBIA)
                .await;
            for q in job["queries"].as_array().unwrap() {
                if q["state"] != "succeeded" {
                    let error = q["error"].as_str().unwrap_or_default();
                    assert!(
                        error.contains("is being written by job"),
                        "round {round}: {q}"
                    );
                    refused += 1;
                }
            }
        }
        for query in ["ventas", "productos"] {
            assert_output_whole(&w, query);
        }
    }
    assert!(refused > 0, "the jobs never overlapped");
}

/// The server's first audit lines say who it is in SQL Server and in
/// Databricks and how it signed in to each; never a secret.
#[tokio::test(flavor = "multi_thread")]
async fn the_audit_trail_says_who_the_bridge_is_on_each_side() {
    let w = World::new("signin");
    let _b = w.serve(&[]);
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = w
            .audit_lines()
            .into_iter()
            .filter(|l| l["event_type"] == "bridge_signed_in")
            .collect();
        if lines.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let side = |prefix: &str| {
        lines
            .iter()
            .find(|l| {
                l["resource"]
                    .as_str()
                    .unwrap_or_default()
                    .starts_with(prefix)
            })
            .unwrap_or_else(|| panic!("no sign-in line for {prefix} in {lines:?}"))
            .clone()
    };
    let sql = side("sqlserver ");
    assert_eq!(
        (
            sql["user_name"].as_str(),
            sql["detail"].as_str(),
            sql["outcome"].as_str()
        ),
        (Some("sa"), Some("SQL login"), Some("success")),
        "{sql}"
    );
    let dbx = side("databricks ");
    assert_eq!(dbx["detail"], "personal access token", "{dbx}");
    assert!(
        !dbx["user_name"].as_str().unwrap_or_default().is_empty(),
        "{dbx}"
    );
    let trail = std::fs::read_to_string(w.dir.join("logs/audit.jsonl")).unwrap();
    assert!(
        !trail.contains("dapi") && !trail.contains("Passw0rd"),
        "{trail}"
    );
}
