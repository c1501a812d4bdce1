//! Signing in to SQL Server with Microsoft Entra ID credentials the bridge
//! turns into tokens itself — a service principal's secret or certificate,
//! the host's managed identity (system- and user-assigned), a federated
//! workload identity token, the default chain — against the Entra ID
//! double (HTTPS, its CA trusted through `SSL_CERT_FILE`) and the SQL Server
//! sandbox trusting its tenant. The real binary extracts as each; each
//! refusal names the step that failed, writes nothing and shows no secret;
//! a token that expires during a run is replaced for the connections
//! opened after it.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle};
use bridge_sandbox::entra::assertion::{AppCertificate, ExternalIssuer, FederatedCredential};
use bridge_sandbox::entra::jwt::SigningKey;
use bridge_sandbox::entra::{self, EntraApp, EntraConfig, EntraHandle};
use bridge_sandbox::sqlserver::{self, ServerEncryption, SqlServerConfig, SqlServerHandle};

const SECRET: &str = "Sp~s3cret.value-9";
const CLUSTER: &str = "https://oidc.cluster.local/5e1d";
const SUBJECT: &str = "system:serviceaccount:etl:bridge";

fn principal(n: u32, name: &str) -> EntraApp {
    EntraApp {
        client_id: format!("6d3f2a1b-0000-4000-8000-0000000e{n:04}"),
        object_id: format!("0b7c3e5d-0000-4000-8000-0000000e{n:04}"),
        display_name: name.into(),
        ..EntraApp::default()
    }
}

struct World {
    e: EntraHandle,
    sql: SqlServerHandle,
    dbx: DatabricksHandle,
    dir: PathBuf,
    ca: PathBuf,
    sp: EntraApp,
    cert_app: EntraApp,
    cert_pem: PathBuf,
    stranger: EntraApp,
    workload: EntraApp,
    token_file: PathBuf,
    user_mi: EntraApp,
}

fn world(tag: &str, token_lifetime: Duration) -> World {
    let dir = common::project(&format!("entra-{tag}"), "ventas", common::VENTAS_SQL);

    let cert = AppCertificate::generate("etl-bridge-cert").unwrap();
    let cert_pem = dir.join("etl-bridge.pem");
    std::fs::write(&cert_pem, &cert.pem).unwrap();
    let cluster = SigningKey::generate("cluster-key-1");
    let sp = EntraApp {
        secret: SECRET.into(),
        ..principal(1, "etl-sp")
    };
    let cert_app = EntraApp {
        certificates: vec![cert.der.clone()],
        ..principal(2, "etl-cert")
    };
    let stranger = EntraApp {
        secret: SECRET.into(),
        ..principal(3, "stranger")
    };
    let workload = EntraApp {
        federated: vec![FederatedCredential {
            issuer: CLUSTER.into(),
            subject: SUBJECT.into(),
        }],
        ..principal(4, "etl-k8s")
    };
    let system_mi = principal(5, "bridge-host");
    let user_mi = principal(6, "etl-identity");
    let e = entra::start(EntraConfig {
        apps: vec![
            sp.clone(),
            cert_app.clone(),
            stranger.clone(),
            workload.clone(),
        ],
        managed_identities: vec![system_mi.clone(), user_mi.clone()],
        external_issuers: vec![ExternalIssuer {
            issuer: CLUSTER.into(),
            keys: vec![cluster.jwk()],
        }],
        token_lifetime,
        ..EntraConfig::default()
    })
    .unwrap();
    let ca = dir.join("entra-ca.pem");
    std::fs::write(&ca, e.ca_pem()).unwrap();
    // The federated token a Kubernetes kubelet would project for the pod.
    let now = chrono::Utc::now().timestamp();
    let token_file = dir.join("federated-token");
    std::fs::write(
        &token_file,
        cluster.sign(&serde_json::json!({
            "aud": ["api://AzureADTokenExchange"], "iss": CLUSTER, "sub": SUBJECT,
            "iat": now, "nbf": now, "exp": now + 3600,
        })),
    )
    .unwrap();

    let sql = sqlserver::start(SqlServerConfig {
        encryption: ServerEncryption::LoginOnly,
        entra: Some(e.trust()),
        ..SqlServerConfig::default()
    })
    .unwrap();
    let mut script = String::from(common::VENTAS_SEED);
    for p in [&sp, &cert_app, &workload, &system_mi, &user_mi] {
        script.push_str(&format!(
            "CREATE LOGIN [{}] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '{}'\nGO\n",
            p.display_name, p.object_id
        ));
    }
    sql.engine().run_script(&script).unwrap();
    // The workspace trusts the tenant; the service principal and the
    // user-assigned identity are added to it (by application id), admins.
    let dbx = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        entra: Some(e.trust()),
        entra_service_principals: vec![sp.client_id.clone(), user_mi.client_id.clone()],
        admins: vec![
            "sandbox-admin@bridge.local".into(),
            sp.client_id.clone(),
            user_mi.client_id.clone(),
        ],
        ..DatabricksConfig::default()
    })
    .unwrap();
    dbx.engine()
        .run_script("CREATE CATALOG IF NOT EXISTS main; CREATE SCHEMA IF NOT EXISTS main.demo; CREATE VOLUME IF NOT EXISTS main.demo.landing")
        .unwrap();
    World {
        e,
        sql,
        dbx,
        dir,
        ca,
        sp,
        cert_app,
        cert_pem,
        stranger,
        workload,
        token_file,
        user_mi,
    }
}

/// Runs the bridge in the world's directory with only `env` (plus where
/// the systems are) of the variables it reads; its exit, stdout, stderr.
fn bridge(w: &World, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sql-databricks-bridge"));
    cmd.args(args).current_dir(&w.dir).env("HOME", &w.dir);
    for (k, _) in std::env::vars() {
        if [
            "SQLSERVER_",
            "DATABRICKS_",
            "AZURE_",
            "IDENTITY_",
            "MSI_",
            "IMDS_",
            "ARM_",
        ]
        .iter()
        .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    let (endpoint, header) = w.e.identity_endpoint().unwrap();
    cmd.env("SQLSERVER_HOST", format!("127.0.0.1,{}", w.sql.port()))
        .env("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true")
        .env("DATABRICKS_HOST", w.dbx.url())
        .env("DATABRICKS_TOKEN", "dapi-test")
        .env("AZURE_AUTHORITY_HOST", w.e.url())
        .env("AZURE_TENANT_ID", w.e.tenant_id())
        // The host's managed identity endpoint, as App Service sets it.
        .env("IDENTITY_ENDPOINT", endpoint)
        .env("IDENTITY_HEADER", header)
        // The Entra ID double's CA, as a proxy's would be trusted.
        .env("SSL_CERT_FILE", &w.ca)
        .env("BRIDGE_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn extract(w: &World, dest: &str, env: &[(&str, String)]) -> (bool, String, String) {
    bridge(
        w,
        &[
            "extract",
            "--country",
            "Colombia",
            "--destination",
            dest,
            "--timeout",
            "10",
            "--retry-base-ms",
            "10",
        ],
        env,
    )
}

fn rows(dir: &Path) -> Option<u64> {
    common::manifest_rows(dir, "ventas")
}

/// Variables given to one run.
type Env = Vec<(&'static str, String)>;

fn s(v: &str) -> String {
    v.to_string()
}

#[test]
fn each_entra_credential_signs_in_and_extracts_as_its_principal() {
    let w = world("each", Duration::from_secs(3599));
    let cs = |v: String| -> (&'static str, String) { ("SQLSERVER_CONNECTION_STRING", v) };
    let cases: Vec<(&str, Env, &str, String)> = vec![
        (
            "service principal, secret (variables)",
            vec![
                (
                    "SQLSERVER_AUTHENTICATION",
                    s("ActiveDirectoryServicePrincipal"),
                ),
                ("SQLSERVER_USERNAME", w.sp.client_id.clone()),
                ("SQLSERVER_PASSWORD", s(SECRET)),
            ],
            "etl-sp",
            format!(
                "Entra ID service principal {} (client secret)",
                w.sp.client_id
            ),
        ),
        (
            "service principal, certificate (connection string)",
            vec![cs(format!(
                "Authentication=Active Directory Service Principal;User Id={};Password={}",
                w.cert_app.client_id,
                w.cert_pem.display()
            ))],
            "etl-cert",
            format!(
                "Entra ID service principal {} (certificate)",
                w.cert_app.client_id
            ),
        ),
        (
            "managed identity, system-assigned",
            vec![cs(s("Authentication=ActiveDirectoryManagedIdentity"))],
            "bridge-host",
            s("Entra ID managed identity (system-assigned)"),
        ),
        (
            "managed identity, user-assigned (ActiveDirectoryMSI)",
            vec![cs(format!(
                "Authentication=ActiveDirectoryMSI;User Id={}",
                w.user_mi.client_id
            ))],
            "etl-identity",
            format!(
                "Entra ID managed identity {} (user-assigned)",
                w.user_mi.client_id
            ),
        ),
        (
            "workload identity",
            vec![
                cs(s("Authentication=ActiveDirectoryWorkloadIdentity")),
                ("AZURE_CLIENT_ID", w.workload.client_id.clone()),
                (
                    "AZURE_FEDERATED_TOKEN_FILE",
                    w.token_file.display().to_string(),
                ),
            ],
            "etl-k8s",
            format!("Entra ID workload identity {}", w.workload.client_id),
        ),
        (
            "default chain: the environment's application",
            vec![
                cs(s("Authentication=ActiveDirectoryDefault")),
                ("AZURE_CLIENT_ID", w.sp.client_id.clone()),
                ("AZURE_CLIENT_SECRET", s(SECRET)),
            ],
            "etl-sp",
            s("Entra ID default credential chain"),
        ),
        (
            "default chain: the host's managed identity",
            vec![cs(s("Authentication=ActiveDirectoryDefault"))],
            "bridge-host",
            s("Entra ID default credential chain"),
        ),
    ];
    for (i, (what, env, login, method)) in cases.into_iter().enumerate() {
        let (ok, out, log) = bridge(&w, &["test-connection", "--timeout", "10"], &env);
        assert!(ok, "{what}: {out}{log}");
        assert!(
            out.contains(&format!("as '{login}' ({method}")),
            "{what}: {out}"
        );
        let dest = format!("out{i}");
        let (ok, out, log) = extract(&w, &dest, &env);
        assert!(ok, "{what}: {out}{log}");
        assert_eq!(rows(&w.dir.join(&dest)), Some(3), "{what}");
        assert!(
            !log.contains(SECRET) && !out.contains(SECRET),
            "{what}: the secret was printed"
        );
    }
}

#[test]
fn each_refusal_names_the_failed_step_writes_nothing_and_shows_no_secret() {
    let w = world("refused", Duration::from_secs(3599));
    let sp = |user: &str, password: &str| -> Env {
        vec![
            (
                "SQLSERVER_AUTHENTICATION",
                s("ActiveDirectoryServicePrincipal"),
            ),
            ("SQLSERVER_USERNAME", s(user)),
            ("SQLSERVER_PASSWORD", s(password)),
        ]
    };
    let unregistered = w.dir.join("unregistered.pem");
    std::fs::write(
        &unregistered,
        AppCertificate::generate("etl-bridge-cert").unwrap().pem,
    )
    .unwrap();
    let cases: Vec<(&str, Env, Vec<&str>)> = vec![
        (
            "bad secret",
            sp(&w.sp.client_id, "Wrong~secret-1"),
            vec!["no Microsoft Entra ID token for SQL Server", "AADSTS7000215"],
        ),
        (
            "unknown application",
            sp("00000000-1111-4000-8000-000000000000", SECRET),
            vec!["AADSTS700016"],
        ),
        (
            "certificate not registered on the application",
            sp(&w.cert_app.client_id, unregistered.to_str().unwrap()),
            vec!["AADSTS700027"],
        ),
        (
            "a principal with no login in SQL Server",
            sp(&w.stranger.client_id, SECRET),
            vec!["refused the login", "<token-identified principal>"],
        ),
        (
            "another tenant",
            [
                sp(&w.sp.client_id, SECRET),
                vec![("AZURE_TENANT_ID", s("11111111-2222-4333-8444-555555555555"))],
            ]
            .concat(),
            vec!["AADSTS90002"],
        ),
        (
            "a user-assigned identity not assigned to the host",
            vec![(
                "SQLSERVER_CONNECTION_STRING",
                s("Authentication=ActiveDirectoryManagedIdentity;User Id=99999999-0000-4000-8000-000000000000"),
            )],
            vec!["no Microsoft Entra ID token", "not been assigned"],
        ),
        (
            "no federated token file",
            vec![
                ("SQLSERVER_AUTHENTICATION", s("ActiveDirectoryWorkloadIdentity")),
                ("AZURE_CLIENT_ID", w.workload.client_id.clone()),
                ("AZURE_FEDERATED_TOKEN_FILE", s("/nonexistent/token")),
            ],
            vec!["no Microsoft Entra ID token", "/nonexistent/token"],
        ),
        (
            "no tenant",
            [
                sp(&w.sp.client_id, SECRET),
                vec![("AZURE_TENANT_ID", String::new())],
            ]
            .concat(),
            vec!["needs the tenant: set AZURE_TENANT_ID"],
        ),
        (
            "a method a service cannot use",
            vec![(
                "SQLSERVER_CONNECTION_STRING",
                s("Authentication=ActiveDirectoryInteractive"),
            )],
            vec!["Authentication=ActiveDirectoryInteractive is not supported"],
        ),
        (
            "the authority's certificate not trusted",
            [sp(&w.sp.client_id, SECRET), vec![("SSL_CERT_FILE", s("/dev/null"))]].concat(),
            vec!["no Microsoft Entra ID token"],
        ),
    ];
    for (i, (what, env, says)) in cases.into_iter().enumerate() {
        let dest = format!("out{i}");
        let (ok, out, log) = extract(&w, &dest, &env);
        assert!(!ok, "{what}: {out}{log}");
        for said in says {
            assert!(log.contains(said), "{what}: wanted '{said}' in {log}");
        }
        assert!(
            !w.dir.join(&dest).join("Colombia/ventas").exists(),
            "{what}"
        );
        assert!(
            !log.contains(SECRET) && !out.contains(SECRET),
            "{what}: the secret was printed: {log}"
        );
    }
}

/// Tokens that live three seconds, and a run of two queries on one
/// connection whose first answer takes four: the second query's
/// connection is cut, and its retry — after the first token expired —
/// signs in again with a new token; the run completes. The same run with a
/// fixed access token fails at that retry: the test tells the two apart.
#[test]
fn a_token_expiring_mid_run_is_replaced_for_the_next_connection() {
    let w = world("expiry", Duration::from_secs(3));
    w.sql
        .engine()
        .run_script(
            "USE Fid\nGO\nCREATE TABLE dbo.detalle (id int NOT NULL PRIMARY KEY)\nGO\nINSERT INTO dbo.detalle VALUES (1),(2),(3),(4),(5),(6),(7),(8),(9),(10)\nGO\n",
        )
        .unwrap();
    std::fs::write(
        w.dir.join("queries/zz_detalle.sql"),
        "SELECT id FROM {database}.{schema}.detalle\n",
    )
    .unwrap();
    let run = |dest: &str, env: &[(&str, String)]| {
        // Each answer waits four seconds; the first result of five rows or
        // more (the second query's) is cut once.
        w.sql.faults().delay_packets(Duration::from_secs(4));
        w.sql.faults().drop_next_connections_after_rows(5, 1);
        let mut args = vec![
            "extract",
            "--country",
            "Colombia",
            "--destination",
            dest,
            "--timeout",
            "20",
            "--retry-base-ms",
            "10",
            "--parallel",
            "1",
        ];
        args.extend(["--query", "ventas", "--query", "zz_detalle"]);
        let out = bridge(&w, &args, env);
        w.sql.faults().delay_packets(Duration::ZERO);
        w.sql.faults().drop_next_connections_after_rows(0, 0);
        out
    };
    let (ok, out, log) = run(
        "refreshed",
        &[
            (
                "SQLSERVER_AUTHENTICATION",
                s("ActiveDirectoryServicePrincipal"),
            ),
            ("SQLSERVER_USERNAME", w.sp.client_id.clone()),
            ("SQLSERVER_PASSWORD", s(SECRET)),
        ],
    );
    assert!(ok, "{out}{log}");
    assert!(
        log.contains("retrying"),
        "the connection was not cut: {log}"
    );
    assert_eq!(rows(&w.dir.join("refreshed")), Some(3));

    let now = chrono::Utc::now().timestamp();
    let mut claims = w.e.claims_for(&w.sp, "https://database.windows.net/");
    claims["exp"] = (now + 3).into();
    let fixed = w.e.sign(&claims);
    let (ok, _, log) = run("fixed", &[("SQLSERVER_ACCESS_TOKEN", fixed)]);
    assert!(!ok, "a fixed token outlived its expiry: {log}");
    assert!(log.contains("expired at"), "{log}");
}

/// Azure Databricks through the Databricks SDKs' Azure methods, by their
/// variables and profile keys: `azure-client-secret` (ARM_CLIENT_ID,
/// ARM_CLIENT_SECRET, ARM_TENANT_ID), `azure-msi` (ARM_USE_MSI, a
/// user-assigned identity by ARM_CLIENT_ID); and an extraction into a
/// Volume with Entra ID on both sides — SQL Server as the host's managed
/// identity, Databricks as a user-assigned one.
#[test]
fn databricks_signs_in_with_the_sdks_azure_methods() {
    let w = world("databricks", Duration::from_secs(3599));
    let sql_as_sp: Env = vec![
        (
            "SQLSERVER_AUTHENTICATION",
            s("ActiveDirectoryServicePrincipal"),
        ),
        ("SQLSERVER_USERNAME", w.sp.client_id.clone()),
        ("SQLSERVER_PASSWORD", s(SECRET)),
        ("DATABRICKS_TOKEN", String::new()),
    ];
    let with = |extra: Env| -> Env { [sql_as_sp.clone(), extra].concat() };
    let test_connection = |env: &Env| bridge(&w, &["test-connection", "--timeout", "10"], env);

    let (ok, out, log) = test_connection(&with(vec![
        ("ARM_CLIENT_ID", w.sp.client_id.clone()),
        ("ARM_CLIENT_SECRET", s(SECRET)),
        ("ARM_TENANT_ID", s(w.e.tenant_id())),
    ]));
    assert!(ok, "{out}{log}");
    assert!(
        out.contains(&format!(
            "as '{0}' (Entra ID service principal {0} (client secret))",
            w.sp.client_id
        )),
        "{out}"
    );
    assert!(!out.contains(SECRET) && !log.contains(SECRET));

    let (ok, out, log) = test_connection(&with(vec![
        ("ARM_USE_MSI", s("true")),
        ("ARM_CLIENT_ID", w.user_mi.client_id.clone()),
    ]));
    assert!(ok, "{out}{log}");
    assert!(
        out.contains(&format!(
            "as '{0}' (Entra ID managed identity {0} (user-assigned))",
            w.user_mi.client_id
        )),
        "{out}"
    );

    // The profile's keys, auth_type naming the method.
    std::fs::write(
        w.dir.join(".databrickscfg"),
        format!(
            "[DEFAULT]\nhost = {}\nauth_type = azure-client-secret\nazure_client_id = {}\nazure_client_secret = {SECRET}\nazure_tenant_id = {}\n",
            w.dbx.url(),
            w.sp.client_id,
            w.e.tenant_id()
        ),
    )
    .unwrap();
    let (ok, out, log) = test_connection(&with(vec![("DATABRICKS_HOST", String::new())]));
    std::fs::remove_file(w.dir.join(".databrickscfg")).unwrap();
    assert!(ok, "{out}{log}");
    assert!(out.contains("(Entra ID service principal"), "{out}");

    // Entra ID on both sides, into a Volume.
    let (ok, out, log) = bridge(
        &w,
        &[
            "extract",
            "--country",
            "Colombia",
            "--destination",
            "/Volumes/main/demo/landing/entra",
            "--timeout",
            "10",
        ],
        &[
            (
                "SQLSERVER_CONNECTION_STRING",
                s("Authentication=ActiveDirectoryManagedIdentity"),
            ),
            ("DATABRICKS_TOKEN", String::new()),
            ("DATABRICKS_AUTH_TYPE", s("azure-msi")),
            ("ARM_CLIENT_ID", w.user_mi.client_id.clone()),
        ],
    );
    assert!(ok, "{out}{log}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            w.dbx
                .engine()
                .volumes_root()
                .join("main/demo/landing/entra/Colombia/ventas/_manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["rows"], 3);

    // Refusals: Entra ID's, and a method the bridge does not have.
    for (extra, says) in [
        (
            vec![
                ("ARM_CLIENT_ID", w.sp.client_id.clone()),
                ("ARM_CLIENT_SECRET", s("Wrong~secret-2")),
                ("ARM_TENANT_ID", s(w.e.tenant_id())),
            ],
            "AADSTS7000215",
        ),
        (
            vec![
                ("ARM_CLIENT_ID", w.stranger.client_id.clone()),
                ("ARM_CLIENT_SECRET", s(SECRET)),
                ("ARM_TENANT_ID", s(w.e.tenant_id())),
            ],
            "Databricks  FAILED",
        ),
        (
            vec![("DATABRICKS_AUTH_TYPE", s("azure-device-code"))],
            "auth_type 'azure-device-code' is not one the bridge has",
        ),
        (
            vec![
                ("DATABRICKS_AUTH_TYPE", s("azure-client-secret")),
                ("ARM_CLIENT_ID", w.sp.client_id.clone()),
            ],
            "azure-client-secret needs ARM_CLIENT_ID, ARM_CLIENT_SECRET and ARM_TENANT_ID",
        ),
    ] {
        let (ok, out, log) = test_connection(&with(extra));
        assert!(!ok, "{says}: {out}");
        assert!(
            out.contains(says) || log.contains(says),
            "{says}: {out}{log}"
        );
        assert!(!out.contains(SECRET) && !log.contains(SECRET), "{says}");
    }
}
