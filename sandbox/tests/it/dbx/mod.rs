//! Helpers shared by the Databricks double's identity, grants, history and
//! change data feed tests: a workspace with named principals, and calls made
//! over HTTP as one of them.

#![allow(dead_code)]

use std::collections::HashMap;

use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle};
use serde_json::{json, Value};

pub const ADMIN: &str = "dapi-admin";
pub const ALICE: &str = "dapi-alice";
pub const BOB: &str = "dapi-bob";
pub const ADMIN_USER: &str = "admin@bridge.test";
pub const ALICE_USER: &str = "alice@bridge.test";
pub const BOB_USER: &str = "bob@bridge.test";
pub const SP_ID: &str = "6a1f3c2e-0b7d-4c55-9e1a-2f8d7c6b5a40";
pub const SP_SECRET: &str = "sp-secret";

/// Three users (the first token's is the admin) and one service principal.
pub fn config() -> DatabricksConfig {
    DatabricksConfig {
        tokens: vec![ADMIN.into(), ALICE.into(), BOB.into()],
        principals: HashMap::from([
            (ADMIN.to_string(), ADMIN_USER.to_string()),
            (ALICE.to_string(), ALICE_USER.to_string()),
            (BOB.to_string(), BOB_USER.to_string()),
        ]),
        oauth_clients: HashMap::from([(SP_ID.to_string(), SP_SECRET.to_string())]),
        ..DatabricksConfig::default()
    }
}

pub fn start(config: DatabricksConfig) -> DatabricksHandle {
    databricks::start(config).expect("start the double")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub async fn json_of(r: reqwest::Response) -> Value {
    let bytes = r.bytes().await.expect("body");
    serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| json!({ "raw": String::from_utf8_lossy(&bytes) }))
}

/// GET as the holder of `token`: (status, body).
pub async fn get(h: &DatabricksHandle, token: &str, path: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}{path}", h.url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, json_of(r).await)
}

/// A request with a JSON body as the holder of `token`.
pub async fn send(
    h: &DatabricksHandle,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let r = client()
        .request(method, format!("{}{path}", h.url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, json_of(r).await)
}

/// Runs a statement (waiting for it) as the holder of `token`.
pub async fn sql_with(h: &DatabricksHandle, token: &str, statement: &str, extra: Value) -> Value {
    let mut body = json!({
        "statement": statement,
        "warehouse_id": h.warehouse_id(),
        "wait_timeout": "30s",
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
        b.extend(e);
    }
    let (status, v) = send(
        h,
        token,
        reqwest::Method::POST,
        "/api/2.0/sql/statements",
        body,
    )
    .await;
    assert_eq!(status, 200, "{statement}: {v}");
    v
}

pub async fn sql(h: &DatabricksHandle, token: &str, statement: &str) -> Value {
    sql_with(h, token, statement, json!({})).await
}

/// Runs a statement that must succeed; its rows as strings (NULL as "null").
pub async fn rows(h: &DatabricksHandle, token: &str, statement: &str) -> Vec<Vec<String>> {
    let v = sql(h, token, statement).await;
    assert_eq!(v["status"]["state"], "SUCCEEDED", "{statement}: {v}");
    data(&v)
}

pub fn data(v: &Value) -> Vec<Vec<String>> {
    v["result"]["data_array"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            r.as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    c.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| "null".into())
                })
                .collect()
        })
        .collect()
}

/// Runs a statement that must fail; (error_code, message).
pub async fn fails(h: &DatabricksHandle, token: &str, statement: &str) -> (String, String) {
    let v = sql(h, token, statement).await;
    assert_eq!(
        v["status"]["state"], "FAILED",
        "{statement} should fail: {v}"
    );
    (
        v["status"]["error"]["error_code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        v["status"]["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// An OAuth M2M access token for the service principal.
pub async fn oauth_token(h: &DatabricksHandle) -> String {
    let r = client()
        .post(format!("{}/oidc/v1/token", h.url()))
        .basic_auth(SP_ID, Some(SP_SECRET))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=all-apis")
        .send()
        .await
        .expect("token request");
    assert_eq!(r.status().as_u16(), 200);
    json_of(r).await["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// The column names and type names of a statement's manifest.
pub fn manifest(v: &Value) -> Vec<(String, String)> {
    v["manifest"]["schema"]["columns"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_string(),
                c["type_name"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}
