//! The real `serve` binary on a random port, in front of both sandboxes
//! (demo data, the deck's `/Volumes/catalog/schema/vol`), driven over HTTP.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bridge_sandbox::databricks::{self, DatabricksConfig, DatabricksHandle};
use bridge_sandbox::generate::{generate, GenerateSpec};
use bridge_sandbox::sqlserver::{self, SqlServerConfig, SqlServerHandle};

pub const COLOMBIA: &str = "demo-colombia-token";
pub const MEXICO: &str = "demo-mexico-token";

/// Databricks tokens of the world's double and the principal of each: the
/// bridge's own (the first token, an admin, as which scripts run), one per
/// project, and one that acts for nobody.
pub const DBX_BRIDGE: &str = "dapi-test";
pub const DBX_COLOMBIA: &str = "dapi-colombia";
pub const DBX_MEXICO: &str = "dapi-mexico";
pub const DBX_SYNC: &str = "dapi-sync";
pub const DBX_MALLORY: &str = "dapi-mallory";
pub const PRINCIPALS: [(&str, &str); 5] = [
    (DBX_BRIDGE, "bridge@example.com"),
    (DBX_COLOMBIA, "colombia-etl@example.com"),
    (DBX_MEXICO, "mexico-etl@example.com"),
    (DBX_SYNC, "sync-etl@example.com"),
    (DBX_MALLORY, "mallory@example.com"),
];

const PERMISSIONS: &str = r#"
users:
  - name: "proyecto-colombia"
    token: "demo-colombia-token"
    databricks_principals: ["colombia-etl@example.com"]
    permissions:
      - table: "KWP_Colombia.dbo.J_Ventas_CO"
        access: "read"
      - table: "KWP_Colombia.dbo.Productos"
        access: "read"
      - table: "bench.dbo.largo"
        access: "read"
      - table: "KWP_Colombia.dbo.CalibratedPanel"
        access: "read_write"
    databricks_permissions:
      - volume_path: "/Volumes/catalog/schema/vol/Colombia"
        access: "write"
      - volume_path: "/Volumes/main/demo/landing/Colombia"
        access: "write"
      - table: "main.demo.calibrated_panel"
        access: "read"
  - name: "proyecto-mexico"
    # sha256("demo-mexico-token")
    token_sha256: "c31328000cf1167a3b3af0c6f2ab2d8b3a455bd3c14e9aac79d7396f58068c58"
    databricks_principals: ["mexico-etl@example.com"]
    permissions:
      - table: "KWP_Mexico.dbo.J_Ventas_MX"
        access: "read_write"
        max_delete_rows: 10000
      - table: "KWP_Mexico.dbo.Productos"
        access: "read"
    databricks_permissions:
      - volume_path: "/Volumes/catalog/schema/vol/Mexico"
        access: "write"
      - volume_path: "/Volumes/main/demo/landing/Mexico"
        access: "write"
  - name: "proyecto-sync"
    token: "demo-sync-token"
    # Its sources are granted in Unity Catalog (see grant_sync_sources).
    databricks_principals: ["sync-etl@example.com"]
    permissions:
      - table: "Sync.dbo.tipos"
        access: "read_write"
        max_delete_rows: 2
      - table: "Sync.dbo.solo_lectura"
        access: "read"
      - table: "Sync.dbo.fantasma"
        access: "write"
      - table: "Sync.dbo.tipos2"
        access: "write"
      - table: "Sync.dbo.log"
        access: "write"
  - name: "operaciones"
    token: "demo-ops-token"
    # Reads every user's audit lines and the anonymous refusals.
    audit: all
"#;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.path().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Both sandboxes and a working directory laid out as a user's:
/// `queries/`, `config/` (with permissions.yaml), `data/`, `logs/`.
pub struct World {
    pub sql: SqlServerHandle,
    pub dbx: DatabricksHandle,
    pub dir: PathBuf,
}

impl World {
    pub fn new(tag: &str) -> World {
        Self::with_sql(tag, SqlServerConfig::default())
    }

    /// A world whose SQL Server sandbox trusts an Entra ID double's tenant.
    pub fn with_entra(tag: &str, entra: &bridge_sandbox::entra::EntraHandle) -> World {
        Self::with_sql(
            tag,
            SqlServerConfig {
                entra: Some(entra.trust()),
                ..SqlServerConfig::default()
            },
        )
    }

    fn with_sql(tag: &str, config: SqlServerConfig) -> World {
        let sql = sqlserver::start(config).unwrap();
        let seed = std::fs::read_to_string(repo().join("sandbox/seed/demo.sql")).unwrap();
        sql.engine().run_script(&seed).unwrap();
        let dbx = databricks::start(DatabricksConfig {
            tokens: PRINCIPALS.iter().map(|(t, _)| t.to_string()).collect(),
            principals: PRINCIPALS
                .iter()
                .map(|(t, p)| (t.to_string(), p.to_string()))
                .collect(),
            admins: vec![PRINCIPALS[0].1.into()],
            ..DatabricksConfig::default()
        })
        .unwrap();
        dbx.engine()
            .run_script(
                "CREATE CATALOG IF NOT EXISTS catalog; CREATE SCHEMA IF NOT EXISTS catalog.schema; \
                 CREATE VOLUME IF NOT EXISTS catalog.schema.vol",
            )
            .unwrap();
        let dir = std::env::temp_dir().join(format!("bridge-api-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        copy_dir(&repo().join("queries"), &dir.join("queries"));
        copy_dir(&repo().join("config"), &dir.join("config"));
        std::fs::write(dir.join("config/permissions.yaml"), PERMISSIONS).unwrap();
        World { sql, dbx, dir }
    }

    /// Adds the Databricks demo seed (volume `main.demo.landing`, table
    /// `main.demo.calibrated_panel`, the events table) without its pending
    /// event.
    pub fn with_databricks_demo(self) -> World {
        let seed =
            std::fs::read_to_string(repo().join("sandbox/seed/databricks_demo.sql")).unwrap();
        self.dbx.engine().run_script(&seed).unwrap();
        self.dbx
            .engine()
            .run_script("DELETE FROM bridge.events.bridge_events")
            .unwrap();
        self
    }

    /// Adds `bench.dbo.largo` with `rows` rows and the query `largo` that
    /// reads it; with a packet delay it makes a long extraction.
    pub fn with_large_table(self, rows: u64) -> World {
        let spec = GenerateSpec {
            database: "bench".into(),
            table: "largo".into(),
            rows,
        };
        generate(self.sql.engine(), &spec, |_| {}).unwrap();
        std::fs::write(
            self.dir.join("queries/largo.sql"),
            "SELECT * FROM bench.dbo.largo\n",
        )
        .unwrap();
        self
    }

    /// The environment every bridge process of this world gets.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("SQLSERVER_HOST", format!("127.0.0.1,{}", self.sql.port())),
            ("SQLSERVER_USERNAME", "sa".into()),
            ("SQLSERVER_PASSWORD", "Bridge!Passw0rd".into()),
            ("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true".into()),
            ("DATABRICKS_HOST", self.dbx.url().to_string()),
            ("DATABRICKS_TOKEN", DBX_BRIDGE.into()),
            ("HOME", self.dir.display().to_string()),
        ]
    }

    /// A one-shot command of the bridge (e.g. `sync run-once`), in the
    /// world's directory with its environment.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sql-databricks-bridge"));
        cmd.args(args)
            .current_dir(&self.dir)
            .env_remove("SQLSERVER_DATABASE")
            .env_remove("SQLSERVER_CONNECTION_STRING")
            .env_remove("DATABRICKS_CONFIG_PROFILE")
            .envs(self.env());
        cmd
    }

    pub fn run(&self, args: &[&str]) -> std::process::Output {
        self.command(args).output().expect("the bridge runs")
    }

    pub fn serve(&self, extra: &[&str]) -> Bridge {
        self.serve_with_env(extra, &[])
    }

    pub fn serve_with_env(&self, extra: &[&str], env: &[(&str, String)]) -> Bridge {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("serve.log"))
            .unwrap();
        let mut child = self
            .command(&["serve", "--port", "0", "--timeout", "10"])
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the bridge starts");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                panic!(
                    "serve did not start: {line:?}\n{}",
                    std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
                )
            })
            .to_string();
        Bridge {
            child,
            url,
            http: reqwest::Client::new(),
        }
    }

    /// Runs one statement in the double over the Statement Execution API
    /// as the principal of `token` (so the table's history names it);
    /// returns the response's status state and, when it failed, the error.
    pub fn dbx_as(&self, token: &str, sql: &str) -> (String, Option<String>) {
        let body = serde_json::json!({
            "warehouse_id": self.dbx.warehouse_id(), "statement": sql, "wait_timeout": "30s"
        });
        let (url, token) = (
            format!("{}/api/2.0/sql/statements", self.dbx.url()),
            token.to_string(),
        );
        // Its own thread, so async tests may call it too.
        let r: serde_json::Value = std::thread::spawn(move || {
            reqwest::blocking::Client::new()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .and_then(|r| r.json())
                .expect("the double answers")
        })
        .join()
        .unwrap();
        (
            r["status"]["state"].as_str().unwrap_or("").to_string(),
            r["status"]["error"]["message"]
                .as_str()
                .map(str::to_string)
                .or_else(|| Some(r.to_string())),
        )
    }

    /// Grants `proyecto-sync`'s principal, in Unity Catalog, what its sync
    /// sources need (SELECT on the schema main.demo, which its tables
    /// inherit) and the right to write events.
    pub fn grant_sync_sources(&self) {
        self.dbx
            .engine()
            .run_script(
                "GRANT USE CATALOG ON CATALOG main TO `sync-etl@example.com`; \
                 GRANT USE SCHEMA, SELECT ON SCHEMA main.demo TO `sync-etl@example.com`; \
                 GRANT USE CATALOG ON CATALOG bridge TO `sync-etl@example.com`; \
                 GRANT USE SCHEMA ON SCHEMA bridge.events TO `sync-etl@example.com`; \
                 GRANT SELECT, MODIFY ON TABLE bridge.events.bridge_events TO `sync-etl@example.com`",
            )
            .unwrap();
    }

    /// The audit file's lines once it has stopped growing: the server
    /// writes successes from a writer thread, just after its answer.
    pub fn audit_lines(&self) -> Vec<serde_json::Value> {
        let read =
            || std::fs::read_to_string(self.dir.join("logs/audit.jsonl")).unwrap_or_default();
        let mut text = read();
        for _ in 0..50 {
            std::thread::sleep(std::time::Duration::from_millis(20));
            let again = read();
            if again == text {
                break;
            }
            text = again;
        }
        text.lines()
            .map(|l| serde_json::from_str(l).expect("audit lines are JSON"))
            .collect()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()
    }
}

/// A response, its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: serde_json::Value,
}

pub struct Bridge {
    pub child: Child,
    pub url: String,
    pub http: reqwest::Client,
}

impl Bridge {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let r = req.send().await.expect("the server answers");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap();
        let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        Reply {
            status,
            headers,
            text,
            json,
        }
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<serde_json::Value>,
    ) -> Reply {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.http.request(m, format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.call("GET", path, Some(token), None).await
    }

    /// Polls a job until `done` holds for it.
    pub async fn wait_job(
        &self,
        id: &str,
        token: &str,
        timeout: Duration,
        done: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let t0 = Instant::now();
        loop {
            let r = self.get(&format!("/jobs/{id}"), token).await;
            assert_eq!(r.status, 200, "{}", r.text);
            if done(&r.json) {
                return r.json;
            }
            assert!(
                t0.elapsed() < timeout,
                "job {id} never got there: {}",
                r.text
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn wait_final(&self, id: &str, token: &str) -> serde_json::Value {
        self.wait_job(id, token, Duration::from_secs(60), |j| {
            !matches!(j["state"].as_str(), Some("queued" | "running"))
        })
        .await
    }

    /// SIGKILL: the process dies without any cleanup.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
