//! `test-connection` against both sandboxes: each system reported, and a
//! failure of either is a non-zero exit.

use std::process::Command;

use bridge_sandbox::databricks::{self, DatabricksConfig};
use bridge_sandbox::sqlserver::{self, ServerEncryption, SqlServerConfig};

fn run(envs: &[(&str, String)]) -> (bool, String) {
    let (ok, stdout, _) = run_logged(envs);
    (ok, stdout)
}

/// Runs `test-connection`; its exit, stdout and stderr (the log).
fn run_logged(envs: &[(&str, String)]) -> (bool, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sql-databricks-bridge"));
    cmd.arg("test-connection").arg("--timeout").arg("10");
    for k in [
        "SQLSERVER_HOST",
        "SQLSERVER_PORT",
        "SQLSERVER_DATABASE",
        "SQLSERVER_USERNAME",
        "SQLSERVER_PASSWORD",
        "SQLSERVER_ENCRYPT",
        "SQLSERVER_TRUST_SERVER_CERTIFICATE",
        "SQLSERVER_CONNECTION_STRING",
        "SQLSERVER_ACCESS_TOKEN",
        "DATABRICKS_HOST",
        "DATABRICKS_TOKEN",
        "DATABRICKS_CLIENT_ID",
        "DATABRICKS_CLIENT_SECRET",
        "DATABRICKS_CONFIG_PROFILE",
        "BRIDGE_LOG",
    ] {
        cmd.env_remove(k);
    }
    cmd.env("HOME", std::env::temp_dir())
        .current_dir(std::env::temp_dir());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn reports_both_systems() {
    let sql = sqlserver::start(SqlServerConfig {
        encryption: ServerEncryption::LoginOnly,
        ..SqlServerConfig::default()
    })
    .unwrap();
    sql.engine()
        .run_script("CREATE DATABASE KWP_Colombia")
        .unwrap();
    let cfg = DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        oauth_clients: [("sp-id".to_string(), "sp-secret".to_string())].into(),
        ..DatabricksConfig::default()
    };
    let dbx = databricks::start(cfg).unwrap();
    let base = vec![
        ("SQLSERVER_HOST", format!("127.0.0.1,{}", sql.port())),
        ("SQLSERVER_DATABASE", "KWP_Colombia".to_string()),
        ("SQLSERVER_USERNAME", "sa".to_string()),
        ("SQLSERVER_PASSWORD", "Bridge!Passw0rd".to_string()),
        ("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true".to_string()),
        ("DATABRICKS_HOST", dbx.url().to_string()),
    ];

    // PAT, full TLS to SQL Server.
    let mut env = base.clone();
    env.push(("DATABRICKS_TOKEN", "dapi-test".into()));
    let (ok, out) = run(&env);
    assert!(ok, "{out}");
    assert!(
        out.contains("SQL Server  OK") && out.contains("'KWP_Colombia' as 'sa'"),
        "{out}"
    );
    assert!(
        out.contains("Databricks  OK") && out.contains("1 SQL warehouse"),
        "{out}"
    );
    // Each side's method and the identity it signed in as.
    assert!(out.contains("as 'sa' (SQL login,"), "{out}");
    assert!(out.contains("(personal access token)"), "{out}");
    assert!(!out.contains("dapi-test"), "{out}");

    // OAuth M2M, login-only TLS.
    let mut env = base.clone();
    env.push(("DATABRICKS_CLIENT_ID", "sp-id".into()));
    env.push(("DATABRICKS_CLIENT_SECRET", "sp-secret".into()));
    env.push(("SQLSERVER_ENCRYPT", "false".into()));
    let (ok, out) = run(&env);
    assert!(ok, "{out}");
    assert!(
        out.contains("as 'sp-id' (OAuth M2M, client id sp-id)"),
        "{out}"
    );
    assert!(!out.contains("sp-secret"), "{out}");

    // Wrong password and a bad token: both reported, exit non-zero.
    let mut env = base.clone();
    env[3] = ("SQLSERVER_PASSWORD", "wrong".into());
    env.push(("DATABRICKS_TOKEN", "nope".into()));
    let (ok, out) = run(&env);
    assert!(!ok);
    assert!(
        out.contains("SQL Server  FAILED") && out.contains("refused the login for user 'sa'"),
        "{out}"
    );
    assert!(
        out.contains("Databricks  FAILED") && out.contains("refused the credentials"),
        "{out}"
    );

    // Certificate not trusted, nothing configured for Databricks.
    let env: Vec<_> = base
        .iter()
        .filter(|(k, _)| !k.starts_with("SQLSERVER_TRUST") && !k.starts_with("DATABRICKS"))
        .cloned()
        .collect();
    let (ok, out) = run(&env);
    assert!(!ok);
    assert!(
        out.contains("not trusted") && out.contains("SQLSERVER_TRUST_SERVER_CERTIFICATE"),
        "{out}"
    );
    assert!(out.contains("DATABRICKS_HOST"), "{out}");

    // Nothing listening.
    drop(sql);
    let (ok, out) = run(&base);
    assert!(!ok);
    assert!(out.contains("cannot reach SQL Server"), "{out}");
}

/// `SQLSERVER_CONNECTION_STRING` is read as Microsoft.Data.SqlClient reads
/// it: synonyms, quoted values, keywords with no effect on the bridge
/// accepted, `Application Name` sent in the login; a misspelt keyword or an
/// authentication method the bridge does not have stops before connecting,
/// naming it and never the password.
#[test]
fn connection_strings_are_read_as_sqlclient_reads_them() {
    let sql = sqlserver::start(SqlServerConfig::default()).unwrap();
    sql.engine().run_script("CREATE DATABASE KWP_Peru").unwrap();
    let dbx = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        ..DatabricksConfig::default()
    })
    .unwrap();
    let with = |cs: String| {
        run(&[
            ("SQLSERVER_CONNECTION_STRING", cs),
            ("DATABRICKS_HOST", dbx.url().to_string()),
            ("DATABRICKS_TOKEN", "dapi-test".into()),
        ])
    };
    let port = sql.port();

    let (ok, out) = with(format!(
        "Data Source=127.0.0.1,{port};Initial Catalog=KWP_Peru;UID=sa;PWD={{Bridge!Passw0rd}};\
         TrustServerCertificate=yes;Application Name='ETL nightly';MultipleActiveResultSets=True;\
         Persist Security Info=False;Connect Timeout=30;Authentication=Sql Password"
    ));
    assert!(ok, "{out}");
    assert!(
        out.contains("'KWP_Peru' as 'sa' (SQL login, application 'ETL nightly')"),
        "{out}"
    );

    for (cs, says) in [
        (
            format!("Servr=127.0.0.1,{port};UID=sa;PWD=Bridge!Passw0rd"),
            "keyword not supported: 'servr' (did you mean 'server'?)",
        ),
        (
            format!("Server=127.0.0.1,{port};UID=sa;PWD=Bridge!Passw0rd;Authentication=ActiveDirectoryInteractive"),
            "Authentication=ActiveDirectoryInteractive is not supported",
        ),
        (
            format!("Server=127.0.0.1,{port};PWD=Bridge!Passw0rd;Integrated Security=SSPI"),
            "Windows authentication (Integrated Security) signs in as the Kerberos principal",
        ),
        (
            format!("Server=127.0.0.1,{port};UID=sa;PWD=Bridge!Passw0rd;Column Encryption Setting=Enabled"),
            "Always Encrypted is not supported",
        ),
    ] {
        let (ok, out) = with(cs);
        assert!(!ok, "{out}");
        assert!(out.contains(says), "expected {says:?} in:\n{out}");
        assert!(out.contains("SQLSERVER_CONNECTION_STRING"), "{out}");
        assert!(!out.contains("Passw0rd"), "the password was printed:\n{out}");
        assert!(!out.contains("SQL Server  OK"), "{out}");
    }
}

/// No secret reaches the output or the most detailed log, whichever way the
/// sign-in goes: the SQL password, a personal access token, an OAuth
/// client secret, each accepted and refused.
#[test]
fn secrets_never_reach_the_output_or_the_log() {
    let sql = sqlserver::start(SqlServerConfig::default()).unwrap();
    let dbx = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-s3cr3t-token".into()],
        oauth_clients: [("sp-id".to_string(), "sp-s3cr3t".to_string())].into(),
        ..DatabricksConfig::default()
    })
    .unwrap();
    let base = vec![
        ("SQLSERVER_HOST", format!("127.0.0.1,{}", sql.port())),
        ("SQLSERVER_USERNAME", "sa".to_string()),
        ("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true".to_string()),
        ("DATABRICKS_HOST", dbx.url().to_string()),
        ("BRIDGE_LOG", "trace".to_string()),
    ];
    let secrets = [
        "Bridge!Passw0rd",
        "Wr0ng!Passw0rd",
        "dapi-s3cr3t",
        "sp-s3cr3t",
        "s3cr3t",
    ];
    let cases: Vec<Vec<(&str, String)>> = vec![
        vec![
            ("SQLSERVER_PASSWORD", "Bridge!Passw0rd".into()),
            ("DATABRICKS_TOKEN", "dapi-s3cr3t-token".into()),
        ],
        vec![
            ("SQLSERVER_PASSWORD", "Wr0ng!Passw0rd".into()),
            ("DATABRICKS_TOKEN", "dapi-s3cr3t-wrong".into()),
        ],
        vec![
            ("SQLSERVER_PASSWORD", "Bridge!Passw0rd".into()),
            ("DATABRICKS_CLIENT_ID", "sp-id".into()),
            ("DATABRICKS_CLIENT_SECRET", "sp-s3cr3t".into()),
        ],
        vec![
            ("SQLSERVER_PASSWORD", "Bridge!Passw0rd".into()),
            ("DATABRICKS_CLIENT_ID", "sp-id".into()),
            ("DATABRICKS_CLIENT_SECRET", "sp-s3cr3t-wrong".into()),
        ],
    ];
    for (i, extra) in cases.into_iter().enumerate() {
        let mut env = base.clone();
        env.extend(extra);
        let (ok, out, log) = run_logged(&env);
        assert_eq!(ok, i % 2 == 0, "case {i}:\n{out}\n{log}");
        assert!(log.lines().count() > 3, "case {i}: the log is on:\n{log}");
        for secret in secrets {
            assert!(
                !out.contains(secret),
                "case {i}: {secret} in the output:\n{out}"
            );
            assert!(
                !log.contains(secret),
                "case {i}: {secret} in the log:\n{log}"
            );
        }
    }
}

/// Signed in to SQL Server with a Microsoft Entra ID access token (from the
/// Entra ID double, for an application the sandbox has a login FROM
/// EXTERNAL PROVIDER for): SQL Server knows the bridge as that login. A
/// token SQL Server refuses (expired, for another resource) fails with
/// 18456 and the token is never printed.
#[test]
fn an_entra_id_access_token_signs_in_as_its_external_login() {
    use bridge_sandbox::entra::{self, EntraApp, EntraConfig};
    let app = EntraApp {
        client_id: "6d3f2a1b-0000-4000-8000-00000000e71a".into(),
        object_id: "0b7c3e5d-0000-4000-8000-0000000000a1".into(),
        display_name: "etl-bridge".into(),
        secret: "s3cret~value".into(),
        ..EntraApp::default()
    };
    let e = entra::start(EntraConfig {
        apps: vec![app.clone()],
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
            "CREATE LOGIN [etl-bridge] FROM EXTERNAL PROVIDER WITH OBJECT_ID = '{}'",
            app.object_id
        ))
        .unwrap();
    let dbx = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        ..DatabricksConfig::default()
    })
    .unwrap();
    let token = e.sign(&e.claims_for(&app, "https://database.windows.net/"));
    let run_with = |extra: Vec<(&str, String)>| {
        let mut env = vec![
            ("SQLSERVER_HOST", format!("127.0.0.1,{}", sql.port())),
            ("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true".to_string()),
            ("DATABRICKS_HOST", dbx.url().to_string()),
            ("DATABRICKS_TOKEN", "dapi-test".into()),
            ("BRIDGE_LOG", "debug".into()),
        ];
        env.extend(extra);
        run_logged(&env)
    };

    // By the variable, and by the connection string.
    for extra in [
        vec![("SQLSERVER_ACCESS_TOKEN", token.clone())],
        vec![(
            "SQLSERVER_CONNECTION_STRING",
            format!("Authentication=ActiveDirectoryAccessToken;AccessToken={token}"),
        )],
    ] {
        let (ok, out, log) = run_with(extra);
        assert!(ok, "{out}{log}");
        assert!(
            out.contains("as 'etl-bridge' (Entra ID access token"),
            "{out}"
        );
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            !out.contains(signature) && !log.contains(signature),
            "{out}{log}"
        );
    }

    // Told apart before SQL Server is asked: expired, for another resource,
    // not a JWT; and refused by SQL Server: signed by a key it does not trust.
    let now = sql.clock().now().timestamp();
    let mut expired = e.claims_for(&app, "https://database.windows.net/");
    expired["exp"] = (now - 60).into();
    let other = e.claims_for(&app, "https://vault.azure.net");
    let stranger = entra::start(EntraConfig {
        apps: vec![app.clone()],
        ..EntraConfig::default()
    })
    .unwrap();
    let untrusted = stranger.sign(&stranger.claims_for(&app, "https://database.windows.net/"));
    for (bad, says) in [
        (e.sign(&expired), "expired at"),
        (
            e.sign(&other),
            "issued for 'https://vault.azure.net', not Azure SQL",
        ),
        ("eyJub3Q".to_string(), "not a JWT"),
        (untrusted, "<token-identified principal>"),
    ] {
        let (ok, out, log) = run_with(vec![("SQLSERVER_ACCESS_TOKEN", bad.clone())]);
        assert!(!ok, "{out}");
        assert!(
            out.contains("SQL Server  FAILED") && out.contains(says),
            "{says}: {out}"
        );
        let signature = bad.rsplit('.').next().unwrap();
        assert!(
            !out.contains(signature) && !log.contains(signature),
            "{out}{log}"
        );
    }

    // A token and a password together are refused before connecting.
    let (ok, out, _) = run_with(vec![
        ("SQLSERVER_ACCESS_TOKEN", token.clone()),
        ("SQLSERVER_USERNAME", "sa".into()),
    ]);
    assert!(
        !ok && out.contains("an access token signs in on its own"),
        "{out}"
    );
}

/// A Microsoft Entra ID access token for Azure Databricks, given as
/// `DATABRICKS_TOKEN`, signs in to the workspace as the service principal
/// (by its application id) — the workspace double trusting the Entra ID
/// double's tenant; an expired one, or one for another resource, is
/// refused. The token is never printed.
#[test]
fn an_entra_id_token_signs_in_to_databricks_as_the_service_principal() {
    use bridge_sandbox::entra::{self, EntraApp, EntraConfig};
    let app = EntraApp {
        client_id: "7a1c9e2f-0000-4000-8000-0000000d8b1c".into(),
        object_id: "5e6f7a8b-0000-4000-8000-0000000d8b1c".into(),
        display_name: "etl-databricks".into(),
        secret: "unused".into(),
        ..EntraApp::default()
    };
    let e = entra::start(EntraConfig {
        apps: vec![app.clone()],
        ..EntraConfig::default()
    })
    .unwrap();
    let dbx = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        entra: Some(e.trust()),
        entra_service_principals: vec![app.client_id.clone()],
        ..DatabricksConfig::default()
    })
    .unwrap();
    let sql = sqlserver::start(SqlServerConfig::default()).unwrap();
    let databricks = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d";
    let run_with = |token: String| {
        run_logged(&[
            ("SQLSERVER_HOST", format!("127.0.0.1,{}", sql.port())),
            ("SQLSERVER_USERNAME", "sa".to_string()),
            ("SQLSERVER_PASSWORD", "Bridge!Passw0rd".to_string()),
            ("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true".to_string()),
            ("DATABRICKS_HOST", dbx.url().to_string()),
            ("DATABRICKS_TOKEN", token),
            ("BRIDGE_LOG", "debug".to_string()),
        ])
    };
    let token = e.sign(&e.claims_for(&app, databricks));
    let (ok, out, log) = run_with(token.clone());
    assert!(ok, "{out}{log}");
    assert!(
        out.contains(&format!("as '{}' (Entra ID access token)", app.client_id)),
        "{out}"
    );
    let now = dbx.clock().now().timestamp();
    let mut expired = e.claims_for(&app, databricks);
    expired["exp"] = (now - 60).into();
    for (bad, says) in [
        (e.sign(&expired), "expired"),
        (
            e.sign(&e.claims_for(&app, "https://database.windows.net/")),
            "Databricks  FAILED",
        ),
    ] {
        let (ok, out, log) = run_with(bad.clone());
        assert!(!ok, "{out}");
        assert!(
            out.contains("Databricks  FAILED") && out.contains(says),
            "{says}: {out}"
        );
        let signature = bad.rsplit('.').next().unwrap();
        assert!(
            !out.contains(signature) && !log.contains(signature),
            "{out}{log}"
        );
    }
    let signature = token.rsplit('.').next().unwrap();
    assert!(!out.contains(signature) && !log.contains(signature));
}
