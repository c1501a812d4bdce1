//! Large-file uploads of the Files API at the HTTP level: the multipart
//! protocol (AWS/Azure) and the resumable protocol (GCP) with the requests
//! databricks-sdk 0.156 sends (`mixins/files.py`), session clean-up, and the
//! documented part rules
//! (https://docs.databricks.com/aws/en/volumes/files-api/multipart-upload).
//! The SDK itself drives the multipart path in tests/databricks/.

use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle, UploadProtocol};
use serde_json::{json, Value};

const TOKEN: &str = "dapi-sandbox";
const MIB: usize = 1024 * 1024;
const PATH: &str = "/Volumes/main/demo/landing/up/file.bin";

fn start(protocol: UploadProtocol) -> DatabricksHandle {
    let h = databricks::start(DatabricksConfig {
        upload_protocol: protocol,
        max_upload_bytes: 1024,
        ..Default::default()
    })
    .expect("start the double");
    h.engine()
        .run_script("CREATE SCHEMA main.demo; CREATE VOLUME main.demo.landing;")
        .expect("seed");
    h
}

/// Deterministic bytes (an LCG), different per seed.
fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..len)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

async fn post(h: &DatabricksHandle, path_and_query: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path_and_query}", h.url()))
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let r = req.send().await.expect("request");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("body");
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).expect("json body")
    };
    (status, v)
}

async fn initiate(h: &DatabricksHandle, query: &str) -> (u16, Value) {
    post(
        h,
        &format!("/api/2.0/fs/files{PATH}?action=initiate-upload{query}"),
        None,
    )
    .await
}

async fn download(h: &DatabricksHandle) -> (u16, Vec<u8>) {
    let r = reqwest::Client::new()
        .get(format!("{}/api/2.0/fs/files{PATH}", h.url()))
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.bytes().await.expect("body").to_vec())
}

async fn part_url(h: &DatabricksHandle, token: &str, n: u32) -> String {
    let (s, v) = post(
        h,
        "/api/2.0/fs/create-upload-part-urls",
        Some(
            json!({"path": PATH, "session_token": token, "start_part_number": n, "count": 1,
                    "expire_time": "2999-01-01T00:00:00Z"}),
        ),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["upload_part_urls"][0]["part_number"], json!(n));
    v["upload_part_urls"][0]["url"]
        .as_str()
        .expect("url")
        .to_string()
}

async fn put_part(url: &str, bytes: Vec<u8>) -> String {
    // No bearer token: the URL is pre-signed.
    let r = reqwest::Client::new()
        .put(url)
        .body(bytes)
        .send()
        .await
        .expect("put part");
    assert_eq!(r.status().as_u16(), 200);
    r.headers()
        .get("etag")
        .expect("etag")
        .to_str()
        .expect("ascii")
        .to_string()
}

#[tokio::test]
async fn multipart_parts_in_any_order_assemble_by_number() {
    let h = start(UploadProtocol::Multipart);
    let (s, v) = initiate(&h, "&overwrite=true").await;
    assert_eq!(s, 200, "{v}");
    let token = v["multipart_upload"]["session_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(h.open_upload_sessions(), 1);

    let parts = [data(5 * MIB, 1), data(5 * MIB, 2), data(1234, 3)];
    // Upload 3, 1, 2 and re-send 1 (the last copy wins).
    let e3 = put_part(&part_url(&h, &token, 3).await, parts[2].clone()).await;
    put_part(&part_url(&h, &token, 1).await, data(5 * MIB, 99)).await;
    let e1 = put_part(&part_url(&h, &token, 1).await, parts[0].clone()).await;
    let e2 = put_part(&part_url(&h, &token, 2).await, parts[1].clone()).await;

    let complete = format!(
        "/api/2.0/fs/files{PATH}?action=complete-upload&upload_type=multipart&session_token={token}"
    );
    // A stale ETag is refused and the session stays open.
    let (s, v) = post(
        &h,
        &complete,
        Some(json!({"parts": [{"part_number": 1, "etag": "\"nope\""}]})),
    )
    .await;
    assert_eq!(
        (s, v["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    assert_eq!(h.open_upload_sessions(), 1);

    let (s, v) = post(
        &h,
        &complete,
        Some(json!({"parts": [
            {"part_number": 1, "etag": e1},
            {"part_number": 2, "etag": e2},
            {"part_number": 3, "etag": e3},
        ]})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(h.open_upload_sessions(), 0);
    let (s, got) = download(&h).await;
    assert_eq!(s, 200);
    assert_eq!(got, parts.concat());

    // Completed: the token is gone.
    let (s, _) = post(
        &h,
        &complete,
        Some(json!({"parts": [{"part_number": 1, "etag": e1}]})),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn multipart_refusals() {
    let h = start(UploadProtocol::Multipart);
    // Outside a volume, and a volume root.
    let (s, _) = post(
        &h,
        "/api/2.0/fs/files/Volumes/main/demo/nope/x?action=initiate-upload",
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, _) = post(
        &h,
        "/api/2.0/fs/files/Volumes/main/demo/landing?action=initiate-upload",
        None,
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = post(&h, &format!("/api/2.0/fs/files{PATH}?action=bogus"), None).await;
    assert_eq!(s, 400, "{v}");

    let (_, v) = initiate(&h, "").await;
    let token = v["multipart_upload"]["session_token"]
        .as_str()
        .expect("token")
        .to_string();
    for (body, why) in [
        (
            json!({"path": PATH, "session_token": token, "start_part_number": 0, "count": 1}),
            "part 0",
        ),
        (
            json!({"path": PATH, "session_token": token, "start_part_number": 10000, "count": 2}),
            "past part 10000",
        ),
        (
            json!({"path": PATH, "session_token": token, "start_part_number": 1, "count": 1,
                   "expire_time": "2001-01-01T00:00:00Z"}),
            "expired",
        ),
        (
            json!({"path": "/Volumes/main/demo/landing/other", "session_token": token,
                   "start_part_number": 1, "count": 1}),
            "other path",
        ),
    ] {
        let (s, _) = post(&h, "/api/2.0/fs/create-upload-part-urls", Some(body)).await;
        assert_eq!(s, 400, "{why}");
    }
    let (s, _) = post(
        &h,
        "/api/2.0/fs/create-upload-part-urls",
        Some(json!({"path": PATH, "session_token": "nope", "start_part_number": 1, "count": 1})),
    )
    .await;
    assert_eq!(s, 404);

    // Out-of-order part list.
    let e1 = put_part(&part_url(&h, &token, 1).await, data(5 * MIB, 1)).await;
    let e2 = put_part(&part_url(&h, &token, 2).await, data(10, 2)).await;
    let complete = format!(
        "/api/2.0/fs/files{PATH}?action=complete-upload&upload_type=multipart&session_token={token}"
    );
    let (s, _) = post(
        &h,
        &complete,
        Some(json!({"parts": [{"part_number": 2, "etag": e2}, {"part_number": 1, "etag": e1}]})),
    )
    .await;
    assert_eq!(s, 400);

    // A file written meanwhile conflicts when overwrite=false.
    let (_, v) = initiate(&h, "&overwrite=false").await;
    let t2 = v["multipart_upload"]["session_token"]
        .as_str()
        .expect("token")
        .to_string();
    let (s, _) = post(
        &h,
        &complete,
        Some(json!({"parts": [{"part_number": 1, "etag": e1}, {"part_number": 2, "etag": e2}]})),
    )
    .await;
    assert_eq!(s, 200);
    let e = put_part(&part_url(&h, &t2, 1).await, data(10, 5)).await;
    let (s, v) = post(
        &h,
        &format!("/api/2.0/fs/files{PATH}?action=complete-upload&upload_type=multipart&session_token={t2}"),
        Some(json!({"parts": [{"part_number": 1, "etag": e}]})),
    )
    .await;
    assert_eq!((s, v["error_code"].as_str()), (409, Some("ALREADY_EXISTS")));
    let (s, _) = initiate(&h, "&overwrite=false").await;
    assert_eq!(s, 409);

    // Abort through its pre-signed URL.
    let (s, v) = post(
        &h,
        "/api/2.0/fs/create-abort-upload-url",
        Some(json!({"path": PATH, "session_token": t2, "expire_time": "2999-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let url = v["abort_upload_url"]["url"].as_str().expect("url");
    let r = reqwest::Client::new()
        .delete(url)
        .send()
        .await
        .expect("abort");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(h.open_upload_sessions(), 0);
    let (s, got) = download(&h).await;
    assert_eq!((s, got.len()), (200, 5 * MIB + 10));
}

async fn put_range(url: &str, range: &str, body: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .header("content-range", range)
        .body(body)
        .send()
        .await
        .expect("put")
}

fn range_of(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get("range")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn resumable_upload_as_on_gcp() {
    let h = start(UploadProtocol::Resumable);
    let (s, v) = initiate(&h, "&overwrite=false").await;
    assert_eq!(s, 200, "{v}");
    let token = v["resumable_upload"]["session_token"]
        .as_str()
        .expect("token")
        .to_string();
    // Multipart calls do not apply to a resumable session.
    let (s, _) = post(
        &h,
        "/api/2.0/fs/create-upload-part-urls",
        Some(json!({"path": PATH, "session_token": token, "start_part_number": 1, "count": 1})),
    )
    .await;
    assert_eq!(s, 400);
    let (s, v) = post(
        &h,
        "/api/2.0/fs/create-resumable-upload-url",
        Some(json!({"path": PATH, "session_token": token})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let url = v["resumable_upload_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();

    let all = data(3 * MIB + 17, 11);
    let chunk = MIB;
    // Nothing stored yet: a status query has no Range.
    let r = put_range(&url, "bytes */*", vec![]).await;
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(range_of(&r), None);
    let r = put_range(
        &url,
        &format!("bytes 0-{}/*", chunk - 1),
        all[..chunk].to_vec(),
    )
    .await;
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(range_of(&r), Some(format!("bytes=0-{}", chunk - 1)));
    // A gap is answered with where to resume.
    let r = put_range(&url, "bytes 2097152-3145727/*", vec![0; chunk]).await;
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(range_of(&r), Some(format!("bytes=0-{}", chunk - 1)));
    // A resent overlap stores only the new bytes.
    let r = put_range(
        &url,
        &format!("bytes 512-{}/*", 2 * chunk - 1),
        all[512..2 * chunk].to_vec(),
    )
    .await;
    assert_eq!(range_of(&r), Some(format!("bytes=0-{}", 2 * chunk - 1)));
    let total = all.len();
    let r = put_range(
        &url,
        &format!("bytes {}-{}/{total}", 2 * chunk, total - 1),
        all[2 * chunk..].to_vec(),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(h.open_upload_sessions(), 0);
    assert_eq!(download(&h).await, (200, all));

    // overwrite=false against the now existing file is refused at initiation;
    // an abort through the session URL drops what was stored.
    let (s, _) = initiate(&h, "&overwrite=false").await;
    assert_eq!(s, 409);
    let (_, v) = initiate(&h, "").await;
    let t2 = v["resumable_upload"]["session_token"]
        .as_str()
        .expect("token")
        .to_string();
    let (_, v) = post(
        &h,
        "/api/2.0/fs/create-resumable-upload-url",
        Some(json!({"path": PATH, "session_token": t2})),
    )
    .await;
    let url2 = v["resumable_upload_url"]["url"]
        .as_str()
        .expect("url")
        .to_string();
    let r = put_range(&url2, "bytes 0-2/*", b"abc".to_vec()).await;
    assert_eq!(r.status().as_u16(), 308);
    let r = reqwest::Client::new()
        .delete(&url2)
        .send()
        .await
        .expect("abort");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(h.open_upload_sessions(), 0);
    let r = put_range(&url2, "bytes 3-5/6", b"def".to_vec()).await;
    assert_eq!(r.status().as_u16(), 404);
}
