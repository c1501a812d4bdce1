//! The Entra ID double over HTTP, as an Azure Identity library reaches it:
//! the client credentials grant, its errors, and tokens that verify with
//! the keys the OpenID configuration points at.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bridge_sandbox::entra::jwt::{self, Jwk};
use bridge_sandbox::entra::{self, EntraApp, EntraConfig};
use serde_json::Value;

fn app() -> EntraApp {
    EntraApp {
        client_id: "6d3f2a1b-0000-4000-8000-00000000e71a".into(),
        object_id: "0b7c3e5d-0000-4000-8000-0000000000a1".into(),
        display_name: "etl-bridge".into(),
        secret: "s3cret~value".into(),
    }
}

async fn post(url: &str, body: String) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_str(&r.text().await.unwrap()).unwrap(),
    )
}

async fn get(url: &str) -> Value {
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "{url}");
    serde_json::from_str(&r.text().await.unwrap()).unwrap()
}

fn form(client_id: &str, secret: &str, scope: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={client_id}&client_secret={}&scope={}",
        secret.replace('~', "%7E"),
        scope.replace(':', "%3A").replace('/', "%2F")
    )
}

#[tokio::test]
async fn client_credentials_issue_tokens_that_verify_with_the_published_keys() {
    let e = entra::start(EntraConfig {
        apps: vec![app()],
        ..EntraConfig::default()
    })
    .unwrap();
    let tenant = e.tenant_id().to_string();
    let token_url = format!("{}/{tenant}/oauth2/v2.0/token", e.url());

    let (status, body) = post(
        &token_url,
        form(
            &app().client_id,
            &app().secret,
            "https://database.windows.net/.default",
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_u64().unwrap() > 3000, "{body}");
    let token = body["access_token"].as_str().unwrap();

    // The keys, found the way a resource finds them.
    let config = get(&format!(
        "{}/{tenant}/v2.0/.well-known/openid-configuration",
        e.url()
    ))
    .await;
    assert_eq!(config["token_endpoint"], token_url);
    let jwks = get(config["jwks_uri"].as_str().unwrap()).await;
    let keys: Vec<Jwk> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| Jwk {
            kid: k["kid"].as_str().unwrap().into(),
            n: URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap(),
            e: URL_SAFE_NO_PAD.decode(k["e"].as_str().unwrap()).unwrap(),
        })
        .collect();
    assert_eq!(jwks["keys"][0]["kty"], "RSA");
    let claims = jwt::verify(token, &keys).unwrap();
    assert_eq!(claims["aud"], "https://database.windows.net/");
    assert_eq!(claims["iss"], format!("https://sts.windows.net/{tenant}/"));
    assert_eq!(claims["appid"], app().client_id);
    assert_eq!(claims["oid"], app().object_id);
    assert_eq!(claims["tid"], tenant);
    assert_eq!(claims["ver"], "1.0");
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 3599);

    // Azure Databricks' resource, by its application id.
    let (status, body) = post(
        &token_url,
        form(
            &app().client_id,
            &app().secret,
            "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d/.default",
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let claims = jwt::verify(body["access_token"].as_str().unwrap(), &keys).unwrap();
    assert_eq!(claims["aud"], "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d");
}

#[tokio::test]
async fn refusals_carry_the_platforms_error_codes_and_no_token() {
    let e = entra::start(EntraConfig {
        apps: vec![app()],
        ..EntraConfig::default()
    })
    .unwrap();
    let tenant = e.tenant_id().to_string();
    let token_url = format!("{}/{tenant}/oauth2/v2.0/token", e.url());
    let sql = "https://database.windows.net/.default";
    for (body, status, error, code) in [
        (
            form(&app().client_id, "wrong", sql),
            401,
            "invalid_client",
            7000215,
        ),
        (
            form("00000000-0000-0000-0000-000000000000", "x", sql),
            400,
            "unauthorized_client",
            700016,
        ),
        (
            form(
                &app().client_id,
                &app().secret,
                "https://database.windows.net/",
            ),
            400,
            "invalid_scope",
            1002012,
        ),
        (
            form(
                &app().client_id,
                &app().secret,
                "https://vault.azure.net/.default",
            ),
            400,
            "invalid_resource",
            500011,
        ),
        (
            form(&app().client_id, &app().secret, sql).replace("client_credentials", "password"),
            400,
            "unsupported_grant_type",
            70003,
        ),
    ] {
        let (s, b) = post(&token_url, body).await;
        assert_eq!((s, b["error"].as_str()), (status, Some(error)), "{b}");
        assert_eq!(b["error_codes"][0], code, "{b}");
        assert!(
            b["error_description"]
                .as_str()
                .unwrap()
                .starts_with(&format!("AADSTS{code}: ")),
            "{b}"
        );
        assert!(b.get("access_token").is_none(), "{b}");
        assert!(!b.to_string().contains(&app().secret), "{b}");
    }
    let (s, b) = post(
        &format!("{}/common-typo/oauth2/v2.0/token", e.url()),
        form(&app().client_id, &app().secret, sql),
    )
    .await;
    assert_eq!((s, b["error_codes"][0].as_u64()), (400, Some(90002)), "{b}");
}

/// A token from the double signs in to the SQL Server sandbox through the
/// LOGIN7 FEDAUTH feature (tiberius' `AuthMethod::AADToken`), as the login
/// created FROM EXTERNAL PROVIDER for the application; every other token
/// is refused with 18456 for `<token-identified principal>`.
#[tokio::test(flavor = "multi_thread")]
async fn sql_server_takes_the_tenants_tokens_for_its_external_logins_only() {
    use bridge_sandbox::sqlserver::{self, SqlServerConfig};
    use bridge_testkit::sqlserver::{config, connect, connect_with};
    use tiberius::{AuthMethod, EncryptionLevel};

    let stranger = EntraApp {
        client_id: "0000aaaa-0000-4000-8000-00000000beef".into(),
        object_id: "0000bbbb-0000-4000-8000-00000000beef".into(),
        display_name: "stranger".into(),
        secret: "other~secret".into(),
    };
    let e = entra::start(EntraConfig {
        apps: vec![app(), stranger.clone()],
        ..EntraConfig::default()
    })
    .unwrap();
    let sql = sqlserver::start(SqlServerConfig {
        entra: Some(e.trust()),
        ..SqlServerConfig::default()
    })
    .unwrap();
    let mut sa = connect(sql.port(), EncryptionLevel::Off).await;
    sa.simple_query(format!(
        "CREATE LOGIN [etl-bridge] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '{}'",
        app().client_id
    ))
    .await
    .unwrap();
    let e33134 = sa
        .simple_query("CREATE LOGIN [someone] FROM EXTERNAL PROVIDER")
        .await
        .unwrap_err()
        .to_string();
    assert!(e33134.contains("OBJECT_ID"), "{e33134}");

    let token_url = format!("{}/{}/oauth2/v2.0/token", e.url(), e.tenant_id());
    let issued = |a: EntraApp| {
        let url = token_url.clone();
        async move {
            let (s, b) = post(
                &url,
                form(
                    &a.client_id,
                    &a.secret,
                    "https://database.windows.net/.default",
                ),
            )
            .await;
            assert_eq!(s, 200, "{b}");
            b["access_token"].as_str().unwrap().to_string()
        }
    };
    let sign_in = |token: String| {
        let mut c = config(sql.port(), EncryptionLevel::Off);
        c.authentication(AuthMethod::aad_token(token));
        connect_with(c)
    };

    let token = issued(app()).await;
    let mut c = sign_in(token.clone()).await.unwrap();
    let row = c
        .simple_query("SELECT SUSER_SNAME()")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<&str, _>(0), Some("etl-bridge"));

    let now = sql.clock().now().timestamp();
    let with = |changes: &[(&str, Value)]| {
        let mut claims = e.claims_for(&app(), "https://database.windows.net/");
        for (k, v) in changes {
            claims[*k] = v.clone();
        }
        e.sign(&claims)
    };
    let other_tenant = entra::start(EntraConfig {
        apps: vec![app()],
        ..EntraConfig::default()
    })
    .unwrap();
    let other_url = format!(
        "{}/{}/oauth2/v2.0/token",
        other_tenant.url(),
        other_tenant.tenant_id()
    );
    let (_, b) = post(
        &other_url,
        form(
            &app().client_id,
            &app().secret,
            "https://database.windows.net/.default",
        ),
    )
    .await;
    let refused = [
        ("no login for the application", issued(stranger).await),
        (
            "another audience",
            with(&[("aud", "https://vault.azure.net".into())]),
        ),
        (
            "another tenant",
            with(&[("tid", "11111111-1111-1111-1111-111111111111".into())]),
        ),
        ("expired", with(&[("exp", (now - 60).into())])),
        ("not yet valid", with(&[("nbf", (now + 600).into())])),
        (
            "signed by another key",
            b["access_token"].as_str().unwrap().to_string(),
        ),
        ("altered", {
            // Another principal's claims under this token's signature.
            let forged = with(&[("appid", stranger_id().into())]);
            let mut parts: Vec<&str> = token.split('.').collect();
            parts[1] = forged.split('.').nth(1).unwrap();
            parts.join(".")
        }),
        ("not a token", "not-a-jwt".to_string()),
    ];
    for (why, token) in refused {
        let e = sign_in(token).await.map(|_| ()).unwrap_err().to_string();
        assert!(
            e.contains("18456")
                || e.contains("Login failed for user '<token-identified principal>'"),
            "{why}: {e}"
        );
    }
    // The issued token, once the server's clock passes its expiry.
    sql.clock().advance(std::time::Duration::from_secs(3600));
    let e = sign_in(token).await.map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("<token-identified principal>"), "{e}");

    // A server that trusts no tenant refuses every token.
    let plain = sqlserver::start(SqlServerConfig::default()).unwrap();
    let mut c = config(plain.port(), EncryptionLevel::Off);
    c.authentication(AuthMethod::aad_token(issued(app()).await));
    let e = connect_with(c).await.map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("<token-identified principal>"), "{e}");
}

fn stranger_id() -> &'static str {
    "0000aaaa-0000-4000-8000-00000000beef"
}

/// A contained database user FROM EXTERNAL PROVIDER signs its principal in
/// to that database only (Azure SQL Database's usual way; no login).
#[tokio::test(flavor = "multi_thread")]
async fn a_contained_user_signs_in_to_its_database_only() {
    use bridge_sandbox::sqlserver::{self, SqlServerConfig};
    use bridge_testkit::sqlserver::{config, connect_with};
    use tiberius::{AuthMethod, EncryptionLevel};

    let e = entra::start(EntraConfig {
        apps: vec![app()],
        ..EntraConfig::default()
    })
    .unwrap();
    let sql = sqlserver::start(SqlServerConfig {
        entra: Some(e.trust()),
        ..SqlServerConfig::default()
    })
    .unwrap();
    sql.engine()
        .run_script(&format!(
            "CREATE DATABASE Sales;\nGO\nUSE Sales;\nCREATE USER [etl-bridge] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '{}'",
            app().object_id
        ))
        .unwrap();
    let token = e.sign(&e.claims_for(&app(), "https://database.windows.net/"));
    let sign_in = |database: &str| {
        let mut c = config(sql.port(), EncryptionLevel::Off);
        c.authentication(AuthMethod::aad_token(token.clone()));
        if !database.is_empty() {
            c.database(database);
        }
        connect_with(c)
    };
    let mut c = sign_in("Sales").await.unwrap();
    let row = c
        .simple_query("SELECT SUSER_SNAME(), DB_NAME()")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.get::<&str, _>(0), row.get::<&str, _>(1)),
        (Some("etl-bridge"), Some("Sales"))
    );
    for elsewhere in ["", "master"] {
        let err = sign_in(elsewhere)
            .await
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("<token-identified principal>"),
            "{elsewhere}: {err}"
        );
    }
}
