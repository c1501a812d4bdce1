//! Windows authentication (Kerberos) to SQL Server against a real MIT KDC
//! in a private realm (`bridge_sandbox::kdc`): the SQL Server sandbox is the
//! `MSSQLSvc/127.0.0.1:<port>` service, accepting through the system's
//! GSSAPI with its keytab. MIT's own `kinit` and `klist`, and FreeTDS's
//! `tsql`, are the witnesses; the bridge signs in from a credential cache
//! and from a client keytab, and each refusal is told apart.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle};
use bridge_sandbox::kdc::{self, Kdc, REALM};
use bridge_sandbox::sqlserver::{self, ServerEncryption, SqlServerConfig, SqlServerHandle};

struct World {
    kdc: Kdc,
    sql: SqlServerHandle,
    dbx: DatabricksHandle,
    dir: PathBuf,
}

impl World {
    fn keytab(&self, who: &str) -> PathBuf {
        self.dir.join(format!("{who}.keytab"))
    }

    /// An empty credential cache of its own for each run.
    fn ccache(&self, name: &str) -> String {
        format!("FILE:{}", self.dir.join(format!("cc-{name}")).display())
    }
}

fn world(tag: &str) -> World {
    if !kdc::available() {
        // scripts/setup-test-env.sh installs krb5-kdc, krb5-admin-server and
        // krb5-user; without them there is no realm to test against.
        panic!(
            "MIT Kerberos (krb5kdc, kadmin.local, kinit) is missing: run scripts/setup-test-env.sh"
        );
    }
    let dir = common::project(&format!("kerberos-{tag}"), "ventas", common::VENTAS_SQL);
    let kdc = Kdc::start(&dir.join("realm")).unwrap_or_else(|e| panic!("{e}"));
    let sql = sqlserver::start(SqlServerConfig {
        encryption: ServerEncryption::LoginOnly,
        kerberos_keytab: Some(dir.join("sql.keytab")),
        ..SqlServerConfig::default()
    })
    .unwrap();
    kdc.add_principal(
        &format!("MSSQLSvc/127.0.0.1:{}", sql.port()),
        &dir.join("sql.keytab"),
    )
    .unwrap();
    kdc.add_principal("bridge", &dir.join("bridge.keytab"))
        .unwrap();
    kdc.add_principal("stranger", &dir.join("stranger.keytab"))
        .unwrap();
    sql.engine()
        .run_script(&format!(
            "CREATE LOGIN [BRIDGE\\bridge] FROM WINDOWS\nGO\n{}",
            common::VENTAS_SEED
        ))
        .unwrap();
    let dbx = databricks::start(DatabricksConfig {
        tokens: vec!["dapi-test".into()],
        ..DatabricksConfig::default()
    })
    .unwrap();
    World { kdc, sql, dbx, dir }
}

/// A program run with only the realm's and the systems' settings, and
/// `env`; its exit, stdout and stderr.
fn run(w: &World, program: &Path, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(&w.dir).env("HOME", &w.dir);
    for (k, _) in std::env::vars() {
        if ["SQLSERVER_", "DATABRICKS_", "KRB5", "AZURE_"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("KRB5_CONFIG", w.kdc.krb5_conf())
        .env("KRB5CCNAME", w.ccache("none"))
        .env("SQLSERVER_HOST", format!("127.0.0.1,{}", w.sql.port()))
        .env("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true")
        .env("DATABRICKS_HOST", w.dbx.url())
        .env("DATABRICKS_TOKEN", "dapi-test")
        .env("BRIDGE_LOG", "debug");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("the program runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn bridge(w: &World, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    run(
        w,
        Path::new(env!("CARGO_BIN_EXE_sql-databricks-bridge")),
        args,
        env,
    )
}

fn tool(w: &World, name: &str, args: &[&str], env: &[(&str, String)]) -> (bool, String, String) {
    let path = ["/usr/bin", "/usr/sbin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name));
    run(w, &path, args, env)
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
        ],
        env,
    )
}

fn rows(dir: &Path) -> Option<u64> {
    common::manifest_rows(dir, "ventas")
}

/// Variables given to one run.
type Env = Vec<(&'static str, String)>;

const INTEGRATED: (&str, &str) = ("SQLSERVER_CONNECTION_STRING", "Integrated Security=true");

#[test]
fn the_bridge_signs_in_with_kerberos_from_a_ticket_cache_or_a_keytab() {
    let w = world("signin");
    let integrated = (INTEGRATED.0, INTEGRATED.1.to_string());

    // MIT's kinit gets a ticket-granting ticket from the realm's KDC with
    // the keytab; klist shows it.
    let cache = w.ccache("kinit");
    let with_cache = [("KRB5CCNAME", cache.clone())];
    let keytab = w.keytab("bridge").display().to_string();
    let (ok, out, err) = tool(
        &w,
        "kinit",
        &["-kt", &keytab, &format!("bridge@{REALM}")],
        &with_cache,
    );
    assert!(ok, "kinit: {out}{err}");
    let (ok, out, _) = tool(&w, "klist", &[], &with_cache);
    assert!(
        ok && out.contains(&format!("Default principal: bridge@{REALM}")),
        "{out}"
    );

    // The bridge signs in with that cache: SQL Server knows it as the
    // Windows login of the principal, and says how.
    let (ok, out, err) = bridge(
        &w,
        &["test-connection", "--timeout", "10"],
        &[integrated.clone(), with_cache[0].clone()],
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("as 'BRIDGE\\bridge' (Kerberos (Windows authentication)"),
        "{out}"
    );
    // The service ticket it asked the KDC for is in the cache now.
    let (_, out, _) = tool(&w, "klist", &[], &with_cache);
    assert!(
        out.contains(&format!("MSSQLSvc/127.0.0.1:{}@{REALM}", w.sql.port())),
        "{out}"
    );

    // From the client keytab alone (no kinit): MIT's GSSAPI gets the
    // tickets itself; `Trusted_Connection=yes` is the same keyword.
    let (ok, out, err) = extract(
        &w,
        "out-keytab",
        &[
            (
                "SQLSERVER_CONNECTION_STRING",
                "Trusted_Connection=yes".into(),
            ),
            ("KRB5_CLIENT_KTNAME", keytab.clone()),
            ("KRB5CCNAME", w.ccache("keytab")),
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(rows(&w.dir.join("out-keytab")), Some(3));

    // The variable, instead of the connection string.
    let (ok, out, err) = extract(
        &w,
        "out-var",
        &[
            ("SQLSERVER_INTEGRATED_SECURITY", "true".into()),
            ("KRB5_CLIENT_KTNAME", keytab),
            ("KRB5CCNAME", w.ccache("var")),
        ],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(rows(&w.dir.join("out-var")), Some(3));
}

#[test]
fn kerberos_refusals_are_told_apart_and_write_nothing() {
    let w = world("refused");
    let integrated = (INTEGRATED.0, INTEGRATED.1.to_string());
    let cases: Vec<(&str, Env, &str)> = vec![
        (
            "no ticket and no keytab",
            vec![integrated.clone()],
            "Kerberos sign-in to SQL Server failed",
        ),
        (
            "a principal with no Windows login",
            vec![
                integrated.clone(),
                (
                    "KRB5_CLIENT_KTNAME",
                    w.keytab("stranger").display().to_string(),
                ),
                ("KRB5CCNAME", w.ccache("stranger")),
            ],
            "Login failed for user 'BRIDGE\\stranger'",
        ),
        (
            "a service the realm does not know (another host name)",
            vec![
                integrated.clone(),
                ("SQLSERVER_HOST", format!("localhost,{}", w.sql.port())),
                (
                    "KRB5_CLIENT_KTNAME",
                    w.keytab("bridge").display().to_string(),
                ),
                ("KRB5CCNAME", w.ccache("other-host")),
            ],
            "Kerberos sign-in to SQL Server failed",
        ),
        (
            "a user name with integrated security",
            vec![integrated.clone(), ("SQLSERVER_USERNAME", "sa".into())],
            "remove the user name and password",
        ),
        (
            "another ServerSPN",
            vec![(
                "SQLSERVER_CONNECTION_STRING",
                "Integrated Security=true;ServerSPN=MSSQLSvc/db.corp:1433".into(),
            )],
            "ServerSPN 'MSSQLSvc/db.corp:1433' is not supported",
        ),
    ];
    for (i, (what, env, says)) in cases.into_iter().enumerate() {
        let dest = format!("out{i}");
        let (ok, out, err) = extract(&w, &dest, &env);
        assert!(!ok, "{what}: {out}{err}");
        assert!(err.contains(says), "{what}: wanted '{says}' in {err}");
        assert!(!w.dir.join(&dest).join("Colombia").exists(), "{what}");
    }
}

/// FreeTDS, built with Kerberos (Debian's `tsql -C` says so), signs in to
/// the sandbox with the cache kinit filled: a client nobody here wrote.
#[test]
fn freetds_signs_in_with_the_realms_ticket() {
    let w = world("freetds");
    let cache = w.ccache("freetds");
    let keytab = w.keytab("bridge").display().to_string();
    let (ok, out, err) = tool(
        &w,
        "kinit",
        &["-kt", &keytab, &format!("bridge@{REALM}")],
        &[("KRB5CCNAME", cache.clone())],
    );
    assert!(ok, "{out}{err}");
    let conf = w.dir.join("freetds.conf");
    std::fs::write(
        &conf,
        format!(
            "[sandbox]\n\thost = 127.0.0.1\n\tport = {}\n\ttds version = 7.4\n\tencryption = request\n\tclient charset = UTF-8\n",
            w.sql.port()
        ),
    )
    .unwrap();
    let mut child = Command::new("tsql")
        .args(["-S", "sandbox", "-o", "q"])
        .env("FREETDSCONF", &conf)
        .env("TDSVER", "7.4")
        .env("KRB5_CONFIG", w.kdc.krb5_conf())
        .env("KRB5CCNAME", &cache)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tsql runs");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SELECT SUSER_SNAME() AS who\nGO\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("BRIDGE\\bridge"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
