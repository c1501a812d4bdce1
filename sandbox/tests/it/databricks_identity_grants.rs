//! Identities and Unity Catalog grants in the Databricks double, over HTTP:
//! the principal of a PAT and of an OAuth client (SCIM Me, current_user()),
//! who is an admin, owners, GRANT / REVOKE / SHOW GRANTS, the permissions
//! and effective-permissions REST calls with inheritance, and enforcement —
//! a non-admin refused, then allowed once granted, for a table read, a DML
//! and a Files API write.

use crate::dbx;

use dbx::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn pats_and_oauth_clients_have_principals() {
    let h = start(config());
    let (status, me) = get(&h, ALICE, "/api/2.0/preview/scim/v2/Me").await;
    assert_eq!(status, 200);
    assert_eq!(me["userName"], ALICE_USER);
    assert_eq!(me["displayName"], ALICE_USER);
    assert_eq!(me["active"], true);
    assert_eq!(me["emails"][0]["value"], ALICE_USER);
    let id = me["id"].as_str().expect("id");
    assert!(
        id.len() == 16 && id.chars().all(|c| c.is_ascii_digit()),
        "{id}"
    );
    assert!(me.get("applicationId").is_none());
    assert_eq!(me["groups"], json!([]), "alice is no admin");
    let (_, admin) = get(&h, ADMIN, "/api/2.0/preview/scim/v2/Me").await;
    assert_eq!(admin["userName"], ADMIN_USER);
    assert_eq!(admin["groups"][0]["display"], "admins");
    assert_ne!(admin["id"], me["id"]);

    // SCIM attribute selection.
    let (_, some) = get(&h, ALICE, "/api/2.0/preview/scim/v2/Me?attributes=userName").await;
    assert_eq!(some["userName"], ALICE_USER);
    assert!(some.get("emails").is_none() && some.get("id").is_some());

    let token = oauth_token(&h).await;
    let (_, sp) = get(&h, &token, "/api/2.0/preview/scim/v2/Me").await;
    assert_eq!(sp["userName"], SP_ID);
    assert_eq!(sp["applicationId"], SP_ID);
    assert_eq!(sp["emails"], json!([]));
    assert_eq!(
        sp["groups"][0]["display"], "admins",
        "OAuth clients are admins by default"
    );

    assert_eq!(
        rows(&h, ALICE, "SELECT current_user()").await,
        [[ALICE_USER]]
    );
    assert_eq!(
        rows(&h, &token, "SELECT current_user() AS me").await,
        [[SP_ID]]
    );
}

#[tokio::test]
async fn a_bare_token_belongs_to_the_default_principal_and_admins_can_be_named() {
    let h = start(bridge_sandbox::databricks::DatabricksConfig::default());
    let (_, me) = get(&h, "dapi-sandbox", "/api/2.0/preview/scim/v2/Me").await;
    assert_eq!(
        me["userName"],
        bridge_sandbox::databricks::DEFAULT_PRINCIPAL
    );
    drop(h);

    // With named admins, the first token's user is an ordinary user.
    let h = start(bridge_sandbox::databricks::DatabricksConfig {
        admins: vec![BOB_USER.into()],
        ..config()
    });
    let (_, bob) = get(&h, BOB, "/api/2.0/preview/scim/v2/Me").await;
    assert_eq!(bob["groups"][0]["display"], "admins");
    let (_, admin) = get(&h, ADMIN, "/api/2.0/preview/scim/v2/Me").await;
    assert_eq!(admin["groups"], json!([]));
    let (code, msg) = fails(&h, ADMIN, "CREATE CATALOG nope").await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(msg.contains("CREATE CATALOG on Metastore"), "{msg}");
    rows(&h, BOB, "CREATE CATALOG yes").await;
    let (_, cat) = get(&h, BOB, "/api/2.1/unity-catalog/catalogs/yes").await;
    assert_eq!(cat["owner"], BOB_USER);
}

async fn seed(h: &bridge_sandbox::databricks::DatabricksHandle) {
    for s in [
        "CREATE SCHEMA main.gov",
        "CREATE TABLE main.gov.t (id BIGINT, v STRING)",
        "INSERT INTO main.gov.t VALUES (1, 'a')",
        "CREATE VOLUME main.gov.files",
    ] {
        rows(h, ADMIN, s).await;
    }
}

fn assignments(v: &Value) -> Vec<(String, Vec<String>)> {
    v["privilege_assignments"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|a| {
            (
                a["principal"].as_str().unwrap_or_default().to_string(),
                a["privileges"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                    .iter()
                    .map(|p| p.as_str().unwrap_or_default().to_string())
                    .collect(),
            )
        })
        .collect()
}

#[tokio::test]
async fn grants_by_sql_and_rest_with_inheritance_and_effective_permissions() {
    let h = start(config());
    seed(&h).await;

    // The creator owns what it creates.
    let (_, t) = get(&h, ADMIN, "/api/2.1/unity-catalog/tables/main.gov.t").await;
    assert_eq!(t["owner"], ADMIN_USER);
    let (_, s) = get(&h, ADMIN, "/api/2.1/unity-catalog/schemas/main.gov").await;
    assert_eq!(s["owner"], ADMIN_USER);
    assert_eq!(
        rows(&h, ADMIN, "SHOW GRANTS ON TABLE main.gov.t").await,
        [[ADMIN_USER, "OWN", "TABLE", "main.gov.t"]]
    );

    // SQL GRANT (spaced names), REST GET (UC names, no inherited ones).
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE SCHEMA, SELECT ON SCHEMA main.gov TO `{ALICE_USER}`"),
    )
    .await;
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE CATALOG ON CATALOG main TO `{ALICE_USER}`"),
    )
    .await;
    let (status, p) = get(
        &h,
        ADMIN,
        "/api/2.1/unity-catalog/permissions/schema/main.gov",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        assignments(&p),
        [(
            ALICE_USER.to_string(),
            vec!["SELECT".to_string(), "USE_SCHEMA".to_string()]
        )]
    );
    let (_, p) = get(
        &h,
        ADMIN,
        "/api/2.1/unity-catalog/permissions/table/main.gov.t",
    )
    .await;
    assert_eq!(p["privilege_assignments"], json!([]));

    // Effective: the table inherits SELECT from the schema; USE privileges
    // do not apply to a table.
    let (_, e) = get(
        &h,
        ADMIN,
        &format!(
            "/api/2.1/unity-catalog/effective-permissions/TABLE/main.gov.t?principal={ALICE_USER}"
        ),
    )
    .await;
    assert_eq!(
        e["privilege_assignments"],
        json!([{ "principal": ALICE_USER, "privileges": [
            { "privilege": "SELECT", "inherited_from_type": "SCHEMA", "inherited_from_name": "main.gov" }
        ]}])
    );
    let (_, e) = get(
        &h,
        ADMIN,
        "/api/2.1/unity-catalog/effective-permissions/schema/main.gov",
    )
    .await;
    let privs = &e["privilege_assignments"][0]["privileges"];
    assert!(privs
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p.get("inherited_from_name").is_none()));

    // REST PATCH: add and remove; the answer lists the object's assignments.
    let (status, p) = send(
        &h,
        ADMIN,
        Method::PATCH,
        "/api/2.1/unity-catalog/permissions/table/main.gov.t",
        json!({ "changes": [{ "principal": BOB_USER, "add": ["SELECT", "MODIFY"] }] }),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        assignments(&p),
        [(
            BOB_USER.to_string(),
            vec!["MODIFY".to_string(), "SELECT".to_string()]
        )]
    );
    let (_, p) = send(
        &h,
        ADMIN,
        Method::PATCH,
        "/api/2.1/unity-catalog/permissions/table/main.gov.t",
        json!({ "changes": [{ "principal": BOB_USER, "remove": ["MODIFY"] }] }),
    )
    .await;
    assert_eq!(
        assignments(&p),
        [(BOB_USER.to_string(), vec!["SELECT".to_string()])]
    );

    // ALL PRIVILEGES on the catalog reaches every table in it.
    rows(
        &h,
        ADMIN,
        &format!("GRANT ALL PRIVILEGES ON CATALOG main TO `{BOB_USER}`"),
    )
    .await;
    let shown = rows(
        &h,
        ADMIN,
        &format!("SHOW GRANTS `{BOB_USER}` ON TABLE main.gov.t"),
    )
    .await;
    assert_eq!(
        shown,
        [
            [BOB_USER, "SELECT", "TABLE", "main.gov.t"],
            [BOB_USER, "ALL PRIVILEGES", "CATALOG", "main"]
        ]
    );
    assert_eq!(
        rows(&h, BOB, "SELECT count(*) FROM main.gov.t").await,
        [["1"]]
    );
    rows(
        &h,
        ADMIN,
        &format!("REVOKE ALL PRIVILEGES ON CATALOG main FROM `{BOB_USER}`"),
    )
    .await;
    let (code, _) = fails(&h, BOB, "SELECT count(*) FROM main.gov.t").await;
    assert_eq!(code, "PERMISSION_DENIED");

    // A privilege that does not apply, an unknown one, a missing object.
    let (code, msg) = fails(
        &h,
        ADMIN,
        &format!("GRANT READ VOLUME ON TABLE main.gov.t TO `{BOB_USER}`"),
    )
    .await;
    assert_eq!(code, "BAD_REQUEST");
    assert!(msg.contains("not applicable"), "{msg}");
    let (status, v) = send(
        &h,
        ADMIN,
        Method::PATCH,
        "/api/2.1/unity-catalog/permissions/volume/main.gov.files",
        json!({ "changes": [{ "principal": BOB_USER, "add": ["SELECT"] }] }),
    )
    .await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (400, Some("INVALID_PARAMETER_VALUE"))
    );
    let (status, v) = get(
        &h,
        ADMIN,
        "/api/2.1/unity-catalog/permissions/table/main.gov.nope",
    )
    .await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (404, Some("TABLE_DOES_NOT_EXIST"))
    );

    // Grants are read by admins and owners, or by a principal about itself.
    let (status, v) = get(
        &h,
        BOB,
        "/api/2.1/unity-catalog/permissions/table/main.gov.t",
    )
    .await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let (status, v) = get(
        &h,
        BOB,
        &format!("/api/2.1/unity-catalog/permissions/table/main.gov.t?principal={BOB_USER}"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        assignments(&v),
        [(BOB_USER.to_string(), vec!["SELECT".to_string()])]
    );
    let (code, _) = fails(
        &h,
        BOB,
        &format!("GRANT MODIFY ON TABLE main.gov.t TO `{BOB_USER}`"),
    )
    .await;
    assert_eq!(code, "PERMISSION_DENIED");

    // Dropping a table drops its grants.
    rows(&h, ADMIN, "DROP TABLE main.gov.t").await;
    rows(&h, ADMIN, "CREATE TABLE main.gov.t (id BIGINT)").await;
    let (_, p) = get(
        &h,
        ADMIN,
        "/api/2.1/unity-catalog/permissions/table/main.gov.t",
    )
    .await;
    assert_eq!(p["privilege_assignments"], json!([]));
}

#[tokio::test]
async fn a_non_admin_is_refused_until_granted() {
    let h = start(config());
    seed(&h).await;

    // Reading a table: USE CATALOG, USE SCHEMA, SELECT, in that order.
    let read = "SELECT id, v FROM main.gov.t";
    let (code, msg) = fails(&h, ALICE, read).await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert_eq!(
        msg,
        "[INSUFFICIENT_PERMISSIONS] Insufficient privileges:\nUser does not have USE CATALOG on Catalog 'main'. SQLSTATE: 42501"
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE CATALOG ON CATALOG main TO `{ALICE_USER}`"),
    )
    .await;
    let (_, msg) = fails(&h, ALICE, read).await;
    assert!(
        msg.contains("User does not have USE SCHEMA on Schema 'main.gov'."),
        "{msg}"
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE SCHEMA ON SCHEMA main.gov TO `{ALICE_USER}`"),
    )
    .await;
    let (_, msg) = fails(&h, ALICE, read).await;
    assert!(
        msg.contains("User does not have SELECT on Table 'main.gov.t'."),
        "{msg}"
    );
    // A table read anywhere in a statement is checked (here in a subquery).
    let (code, _) = fails(
        &h,
        ALICE,
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM main.gov.t)",
    )
    .await;
    assert_eq!(code, "PERMISSION_DENIED");
    rows(
        &h,
        ADMIN,
        &format!("GRANT SELECT ON TABLE main.gov.t TO `{ALICE_USER}`"),
    )
    .await;
    assert_eq!(rows(&h, ALICE, read).await, [["1", "a"]]);

    // UC metadata follows the same privileges.
    let (status, v) = get(&h, BOB, "/api/2.1/unity-catalog/tables/main.gov.t").await;
    assert_eq!(
        (status, v["error_code"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    assert_eq!(
        v["message"],
        "User does not have USE CATALOG on Catalog 'main'."
    );
    let (status, _) = get(&h, ALICE, "/api/2.1/unity-catalog/tables/main.gov.t").await;
    assert_eq!(status, 200);
    let (_, list) = get(&h, BOB, "/api/2.1/unity-catalog/catalogs").await;
    assert!(
        !list["catalogs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "main"),
        "{list}"
    );
    let (_, list) = get(
        &h,
        ALICE,
        "/api/2.1/unity-catalog/tables?catalog_name=main&schema_name=gov",
    )
    .await;
    assert_eq!(list["tables"].as_array().unwrap().len(), 1);

    // DML: MODIFY (an UPDATE also reads, so it needs SELECT too).
    let write = "INSERT INTO main.gov.t VALUES (2, 'b')";
    let (code, msg) = fails(&h, ALICE, write).await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(
        msg.contains("User does not have MODIFY on Table 'main.gov.t'."),
        "{msg}"
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT MODIFY ON TABLE main.gov.t TO `{ALICE_USER}`"),
    )
    .await;
    rows(&h, ALICE, write).await;
    rows(&h, ALICE, "UPDATE main.gov.t SET v = 'B' WHERE id = 2").await;
    let history = rows(&h, ADMIN, "DESCRIBE HISTORY main.gov.t LIMIT 2").await;
    assert_eq!(
        history
            .iter()
            .map(|r| (r[3].as_str(), r[4].as_str()))
            .collect::<Vec<_>>(),
        [(ALICE_USER, "UPDATE"), (ALICE_USER, "WRITE")]
    );

    // Files API: WRITE VOLUME to write, READ VOLUME to read.
    let path = "/api/2.0/fs/files/Volumes/main/gov/files/in/a.txt";
    let put = || async {
        client()
            .put(format!("{}{path}", h.url()))
            .bearer_auth(ALICE)
            .body("hello")
            .send()
            .await
            .expect("put")
    };
    let r = put().await;
    assert_eq!(r.status().as_u16(), 403);
    let v = json_of(r).await;
    assert_eq!(v["error_code"], "PERMISSION_DENIED");
    assert_eq!(
        v["message"],
        "User does not have WRITE VOLUME on Volume 'main.gov.files'."
    );
    let (status, _) = send(
        &h,
        ALICE,
        Method::PUT,
        "/api/2.0/fs/directories/Volumes/main/gov/files/d",
        json!({}),
    )
    .await;
    assert_eq!(status, 403);
    rows(
        &h,
        ADMIN,
        &format!("GRANT WRITE VOLUME ON VOLUME main.gov.files TO `{ALICE_USER}`"),
    )
    .await;
    assert_eq!(put().await.status().as_u16(), 204);
    let (status, v) = get(&h, ALICE, path).await;
    assert_eq!(status, 403);
    assert_eq!(
        v["message"],
        "User does not have READ VOLUME on Volume 'main.gov.files'."
    );
    rows(
        &h,
        ADMIN,
        &format!("GRANT READ VOLUME ON SCHEMA main.gov TO `{ALICE_USER}`"),
    )
    .await;
    let r = client()
        .get(format!("{}{path}", h.url()))
        .bearer_auth(ALICE)
        .send()
        .await
        .expect("get");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.text().await.expect("body"), "hello");
}

#[tokio::test]
async fn owners_manage_what_they_create() {
    let h = start(config());
    seed(&h).await;
    for g in [
        "GRANT USE CATALOG ON CATALOG main",
        "GRANT USE SCHEMA, CREATE TABLE ON SCHEMA main.gov",
    ] {
        rows(&h, ADMIN, &format!("{g} TO `{ALICE_USER}`")).await;
    }
    rows(&h, ALICE, "CREATE TABLE main.gov.mine (id INT)").await;
    let (_, t) = get(&h, ALICE, "/api/2.1/unity-catalog/tables/main.gov.mine").await;
    assert_eq!(t["owner"], ALICE_USER);
    assert_eq!(t["created_by"], ALICE_USER);
    // The owner holds every privilege on it and may grant them.
    rows(&h, ALICE, "INSERT INTO main.gov.mine VALUES (1)").await;
    rows(
        &h,
        ALICE,
        &format!("GRANT SELECT ON TABLE main.gov.mine TO `{BOB_USER}`"),
    )
    .await;
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE CATALOG ON CATALOG main TO `{BOB_USER}`"),
    )
    .await;
    rows(
        &h,
        ADMIN,
        &format!("GRANT USE SCHEMA ON SCHEMA main.gov TO `{BOB_USER}`"),
    )
    .await;
    assert_eq!(rows(&h, BOB, "SELECT * FROM main.gov.mine").await, [["1"]]);
    // Not its container's: alice cannot create a volume or read main.gov.t.
    let (code, msg) = fails(&h, ALICE, "CREATE VOLUME main.gov.v2").await;
    assert_eq!(code, "PERMISSION_DENIED");
    assert!(msg.contains("CREATE VOLUME on Schema 'main.gov'"), "{msg}");
    let (code, _) = fails(&h, BOB, "DROP TABLE main.gov.mine").await;
    assert_eq!(code, "PERMISSION_DENIED");
    // Ownership moves with ALTER ... OWNER TO.
    rows(
        &h,
        ALICE,
        &format!("ALTER TABLE main.gov.mine OWNER TO `{BOB_USER}`"),
    )
    .await;
    rows(&h, BOB, "DROP TABLE main.gov.mine").await;
}

/// Row filters and column masks are evaluated for whoever reads: an admin
/// sees every row and value, another user only the rows the filter lets
/// through and masked values; information_schema lists them to those who
/// may read the table.
#[tokio::test]
async fn row_filters_and_column_masks_apply_to_the_reader() {
    let h = start(config());
    for s in [
        "CREATE SCHEMA main.sec",
        "CREATE TABLE main.sec.people (id INT, region STRING, ssn STRING)",
        "INSERT INTO main.sec.people VALUES (1, 'CO', '111'), (2, 'MX', '222'), (3, 'CO', '333')",
        "CREATE FUNCTION main.sec.region_filter(r STRING) RETURNS BOOLEAN RETURN is_account_group_member('admins') OR r = 'CO'",
        "CREATE OR REPLACE FUNCTION main.sec.ssn_mask(s STRING, r STRING) RETURNS STRING \
         RETURN CASE WHEN is_account_group_member('admins') THEN s ELSE concat('***', r) END",
        "ALTER TABLE main.sec.people SET ROW FILTER main.sec.region_filter ON (region)",
        "ALTER TABLE main.sec.people ALTER COLUMN ssn SET MASK main.sec.ssn_mask USING COLUMNS (region)",
        "GRANT USE CATALOG ON CATALOG main TO `alice@bridge.test`",
        "GRANT USE SCHEMA, SELECT ON SCHEMA main.sec TO `alice@bridge.test`",
    ] {
        rows(&h, ADMIN, s).await;
    }
    let q = "SELECT id, region, ssn FROM main.sec.people ORDER BY id";
    assert_eq!(
        rows(&h, ADMIN, q).await,
        [["1", "CO", "111"], ["2", "MX", "222"], ["3", "CO", "333"]]
    );
    assert_eq!(
        rows(&h, ALICE, q).await,
        [["1", "CO", "***CO"], ["3", "CO", "***CO"]]
    );
    // Through an alias, a subquery and an aggregate too.
    assert_eq!(
        rows(
            &h,
            ALICE,
            "SELECT count(*) FROM (SELECT p.id FROM main.sec.people AS p WHERE p.id > 0)"
        )
        .await,
        [["2"]]
    );
    let listed =
        "SELECT table_name, filter_name, filter_col_usage FROM main.information_schema.row_filters";
    assert_eq!(
        rows(&h, ALICE, listed).await,
        [["people", "region_filter", "region"]]
    );
    assert_eq!(
        rows(
            &h,
            ADMIN,
            "SELECT column_name, mask_name, mask_col_usage FROM information_schema.column_masks WHERE table_name = 'people'"
        )
        .await,
        [["ssn", "ssn_mask", "region"]]
    );
    // Bob may not read the table: he is not shown its policies.
    assert!(rows(&h, BOB, listed).await.is_empty());
    // Only the table's manager sets them; errors name what is wrong.
    let (code, _) = fails(&h, ALICE, "ALTER TABLE main.sec.people DROP ROW FILTER").await;
    assert_eq!(code, "PERMISSION_DENIED");
    let (_, msg) = fails(
        &h,
        ADMIN,
        "ALTER TABLE main.sec.people SET ROW FILTER main.sec.nope ON (region)",
    )
    .await;
    assert!(msg.starts_with("[ROUTINE_NOT_FOUND]"), "{msg}");
    let (_, msg) = fails(
        &h,
        ADMIN,
        "ALTER TABLE main.sec.people SET ROW FILTER main.sec.region_filter ON (region, id)",
    )
    .await;
    assert!(msg.contains("WRONG_NUM_ARGS"), "{msg}");
    rows(&h, ADMIN, "ALTER TABLE main.sec.people DROP ROW FILTER").await;
    rows(
        &h,
        ADMIN,
        "ALTER TABLE main.sec.people ALTER COLUMN ssn DROP MASK",
    )
    .await;
    assert_eq!(rows(&h, ALICE, q).await.len(), 3);
    assert_eq!(rows(&h, ALICE, q).await[1][2], "222");
    assert!(rows(&h, ADMIN, listed).await.is_empty());
}
