//! The Entra ID double over HTTP, as an Azure Identity library reaches it:
//! the client credentials grant, its errors, and tokens that verify with
//! the keys the OpenID configuration points at.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use bridge_sandbox::entra::assertion::{AppCertificate, ExternalIssuer, FederatedCredential};
use bridge_sandbox::entra::jwt::{self, Jwk};
use bridge_sandbox::entra::{self, EntraApp, EntraConfig, EntraHandle};
use serde_json::Value;

fn app() -> EntraApp {
    EntraApp {
        client_id: "6d3f2a1b-0000-4000-8000-00000000e71a".into(),
        object_id: "0b7c3e5d-0000-4000-8000-0000000000a1".into(),
        display_name: "etl-bridge".into(),
        secret: "s3cret~value".into(),
        ..EntraApp::default()
    }
}

/// A client that trusts the double's HTTPS, as its users' do.
fn client(e: &EntraHandle) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(e.ca_pem().as_bytes()).unwrap()])
        .build()
        .unwrap()
}

async fn post(e: &EntraHandle, url: &str, body: String) -> (u16, Value) {
    let r = client(e)
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

async fn get(e: &EntraHandle, url: &str) -> Value {
    let r = client(e).get(url).send().await.unwrap();
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
        &e,
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
    let config = get(
        &e,
        &format!("{}/{tenant}/v2.0/.well-known/openid-configuration", e.url()),
    )
    .await;
    assert_eq!(config["token_endpoint"], token_url);
    let jwks = get(&e, config["jwks_uri"].as_str().unwrap()).await;
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
        &e,
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
        let (s, b) = post(&e, &token_url, body).await;
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
        &e,
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
        ..EntraApp::default()
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
    let handle = &e;
    let issued = |a: EntraApp| {
        let url = token_url.clone();
        async move {
            let (s, b) = post(
                handle,
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
        &other_tenant,
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

/// A client assertion signed with `cert`'s key: `alg` PS256 with the
/// SHA-256 thumbprint, or RS256 with the SHA-1 one, as the certificate
/// credentials page describes both.
fn assertion(cert: &AppCertificate, alg: &str, claims: Value) -> String {
    use aws_lc_rs::rsa::KeyPair;
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RSA_PSS_SHA256};
    use rustls::pki_types::pem::PemObject;
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from_pem_slice(cert.pem.as_bytes()).unwrap();
    let pair = KeyPair::from_pkcs8(key.secret_pkcs8_der()).unwrap();
    let (sha1, sha256) = entra::assertion::thumbprints(&cert.der);
    let header = match alg {
        "PS256" => serde_json::json!({"alg": "PS256", "typ": "JWT", "x5t#S256": sha256}),
        _ => serde_json::json!({"alg": "RS256", "typ": "JWT", "x5t": sha1}),
    };
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut sig = vec![0; pair.public_modulus_len()];
    let padding: &dyn aws_lc_rs::signature::RsaEncoding = match alg {
        "PS256" => &RSA_PSS_SHA256,
        _ => &RSA_PKCS1_SHA256,
    };
    pair.sign(
        padding,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut sig,
    )
    .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
}

fn assertion_form(client_id: &str, assertion: &str) -> String {
    format!(
        "grant_type=client_credentials&client_id={client_id}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}&scope=https%3A%2F%2Fdatabase.windows.net%2F.default"
    )
}

/// Certificate credentials and federated credentials: each good assertion
/// gets a token for the application; each bad one the code the platform
/// documents, and no token.
#[tokio::test]
async fn client_assertions_from_certificates_and_federated_issuers() {
    let cert = AppCertificate::generate("etl-bridge").unwrap();
    let unregistered = AppCertificate::generate("etl-bridge").unwrap();
    let cluster = jwt::SigningKey::generate("k8s-1");
    let cluster_issuer = "https://oidc.cluster.local/7c1f";
    let app = EntraApp {
        secret: String::new(),
        certificates: vec![cert.der.clone()],
        federated: vec![FederatedCredential {
            issuer: cluster_issuer.into(),
            subject: "system:serviceaccount:etl:bridge".into(),
        }],
        ..app()
    };
    let e = entra::start(EntraConfig {
        apps: vec![app.clone()],
        external_issuers: vec![ExternalIssuer {
            issuer: cluster_issuer.into(),
            keys: vec![cluster.jwk()],
        }],
        ..EntraConfig::default()
    })
    .unwrap();
    let token_url = format!("{}/{}/oauth2/v2.0/token", e.url(), e.tenant_id());
    let now = chrono::Utc::now().timestamp();
    let claims = |changes: &[(&str, Value)]| {
        let mut c = serde_json::json!({
            "aud": token_url, "iss": app.client_id, "sub": app.client_id,
            "jti": "a1", "nbf": now, "iat": now, "exp": now + 600,
        });
        for (k, v) in changes {
            c[*k] = v.clone();
        }
        c
    };
    let federated = |changes: &[(&str, Value)]| {
        let mut c = serde_json::json!({
            "aud": ["api://AzureADTokenExchange"], "iss": cluster_issuer,
            "sub": "system:serviceaccount:etl:bridge", "nbf": now, "iat": now, "exp": now + 3600,
        });
        for (k, v) in changes {
            c[*k] = v.clone();
        }
        cluster.sign(&c)
    };

    let mut keys = vec![];
    for good in [
        assertion(&cert, "PS256", claims(&[])),
        assertion(&cert, "RS256", claims(&[])),
        federated(&[]),
    ] {
        let (s, b) = post(&e, &token_url, assertion_form(&app.client_id, &good)).await;
        assert_eq!(s, 200, "{b}");
        keys.push(b["access_token"].as_str().unwrap().to_string());
    }
    for t in &keys {
        let c = jwt::verify(t, &e.keys()).unwrap();
        assert_eq!(
            (c["appid"].as_str(), c["oid"].as_str()),
            (Some(app.client_id.as_str()), Some(app.object_id.as_str()))
        );
    }

    let mut forged = assertion(&cert, "PS256", claims(&[]));
    forged.insert(forged.len() - 3, 'A');
    forged.remove(forged.len() - 3);
    for (what, bad, code) in [
        (
            "unregistered certificate",
            assertion(&unregistered, "PS256", claims(&[])),
            700027,
        ),
        ("altered signature", forged, 700027),
        (
            "another audience",
            assertion(
                &cert,
                "PS256",
                claims(&[(
                    "aud",
                    "https://login.microsoftonline.com/x/oauth2/v2.0/token".into(),
                )]),
            ),
            700023,
        ),
        (
            "another subject than the client",
            assertion(&cert, "PS256", claims(&[("sub", "someone".into())])),
            700021,
        ),
        (
            "expired",
            assertion(&cert, "PS256", claims(&[("exp", (now - 900).into())])),
            700024,
        ),
        (
            "federated: another subject",
            federated(&[("sub", "system:serviceaccount:etl:other".into())]),
            70021,
        ),
        (
            "federated: another audience",
            federated(&[("aud", "api://something".into())]),
            70021,
        ),
        (
            "federated: unknown issuer",
            federated(&[("iss", "https://elsewhere".into())]),
            700211,
        ),
        (
            "federated: signed by another key",
            jwt::SigningKey::generate("k8s-1").sign(&serde_json::json!({
                "aud": ["api://AzureADTokenExchange"], "iss": cluster_issuer,
                "sub": "system:serviceaccount:etl:bridge", "exp": now + 3600,
            })),
            700027,
        ),
        ("not a JWT", "abc".to_string(), 50027),
    ] {
        let (s, b) = post(&e, &token_url, assertion_form(&app.client_id, &bad)).await;
        assert!(s == 400 || s == 401, "{what}: {s} {b}");
        assert_eq!(b["error_codes"][0], code, "{what}: {b}");
        assert!(b.get("access_token").is_none(), "{what}");
    }
    // An application with no secret takes none.
    let (s, b) = post(
        &e,
        &token_url,
        form(&app.client_id, "", "https://database.windows.net/.default"),
    )
    .await;
    assert_eq!(
        (s, b["error_codes"][0].as_u64()),
        (401, Some(7000215)),
        "{b}"
    );
}

/// The host's managed identity endpoint: the system-assigned identity by
/// default, a user-assigned one by client id, object id or resource id;
/// no token without the host's header or for an identity not assigned.
#[tokio::test]
async fn the_managed_identity_endpoint_issues_the_hosts_identities_tokens() {
    let system = EntraApp {
        client_id: "11111111-0000-4000-8000-00000000a001".into(),
        object_id: "22222222-0000-4000-8000-00000000a001".into(),
        display_name: "bridge-host".into(),
        ..EntraApp::default()
    };
    let user = EntraApp {
        client_id: "11111111-0000-4000-8000-00000000a002".into(),
        object_id: "22222222-0000-4000-8000-00000000a002".into(),
        display_name: "etl-identity".into(),
        ..EntraApp::default()
    };
    let e = entra::start(EntraConfig {
        managed_identities: vec![system.clone(), user.clone()],
        ..EntraConfig::default()
    })
    .unwrap();
    let (endpoint, header) = e.identity_endpoint().unwrap();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let ask = |query: String, header: Option<String>| {
        let url = format!("{endpoint}?{query}");
        async move {
            let mut r = reqwest::Client::new().get(url);
            if let Some(h) = header {
                r = r.header("X-IDENTITY-HEADER", h);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            (
                status,
                serde_json::from_str::<Value>(&r.text().await.unwrap()).unwrap(),
            )
        }
    };
    let base = "api-version=2019-08-01&resource=https%3A%2F%2Fdatabase.windows.net%2F";
    for (query, who) in [
        (base.to_string(), &system),
        (format!("{base}&client_id={}", user.client_id), &user),
        (format!("{base}&principal_id={}", user.object_id), &user),
        (format!("{base}&object_id={}", user.object_id), &user),
        (
            format!(
                "{base}&mi_res_id={}",
                entra::managed::resource_id(&user.display_name).replace('/', "%2F")
            ),
            &user,
        ),
    ] {
        let (s, b) = ask(query.clone(), Some(header.clone())).await;
        assert_eq!(s, 200, "{query}: {b}");
        let c = jwt::verify(b["access_token"].as_str().unwrap(), &e.keys()).unwrap();
        assert_eq!(c["oid"].as_str(), Some(who.object_id.as_str()), "{query}");
        assert_eq!(c["aud"], "https://database.windows.net/");
        assert_eq!(b["client_id"].as_str(), Some(who.client_id.as_str()));
        let expires_on: i64 = b["expires_on"].as_str().unwrap().parse().unwrap();
        assert_eq!(Some(expires_on), c["exp"].as_i64());
    }
    let (s, _) = ask(base.to_string(), None).await;
    assert_eq!(s, 401);
    let (s, _) = ask(base.to_string(), Some("guess".into())).await;
    assert_eq!(s, 401);
    let (s, b) = ask(
        format!("{base}&client_id=99999999-0000-4000-8000-000000000000"),
        Some(header.clone()),
    )
    .await;
    assert_eq!(s, 400, "{b}");
    assert!(b.get("access_token").is_none());
    let (s, _) = ask(
        "api-version=2017-09-01&resource=https%3A%2F%2Fdatabase.windows.net%2F".into(),
        Some(header),
    )
    .await;
    assert_eq!(s, 400);
}
