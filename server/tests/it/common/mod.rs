//! Shared by the extraction tests: a SQL Server sandbox seeded with every
//! type, a queries/config directory, and the bridge binary run against them.
#![allow(dead_code)]

pub mod server;

use std::path::PathBuf;
use std::process::{Command, Output};

use bridge_sandbox::sqlserver::{self, ServerEncryption, SqlServerConfig, SqlServerHandle};

const SEED: &str = r#"
CREATE DATABASE Fid
GO
USE Fid
GO
CREATE TABLE dbo.t (
    id int NOT NULL PRIMARY KEY,
    c_bit bit, c_tiny tinyint, c_small smallint, c_int int, c_big bigint,
    c_dec38 decimal(38,10), c_num numeric(18,4), c_money money, c_smallmoney smallmoney,
    c_float float, c_real real, c_char char(4), c_varchar varchar(20), c_nvarchar nvarchar(30),
    c_nvmax nvarchar(max), c_binary binary(4), c_varbinary varbinary(10), c_date date,
    c_time time(7), c_time0 time(0), c_datetime datetime, c_sdt smalldatetime,
    c_dt2 datetime2(7), c_dto datetimeoffset(7), c_guid uniqueidentifier)
GO
INSERT INTO dbo.t VALUES
 (1, 1, 255, -32768, -2147483648, -9223372036854775808,
  1234567890123456789012345678.9012345678, 12345678901234.5678, -922337203685477.5808, -214748.3648,
  1.5e308, -3.25, 'ab', 'hola', N'ñandú 🚀 日本', N'línea larga', 0x01020304, 0xDEADBEEF, '0001-01-01',
  '23:59:59.9999999', '12:30:00', '1753-01-01 00:00:00.003', '1900-01-01 00:00',
  '1969-12-31 23:59:59.1234567', '2024-05-01 10:30:00.1234567 +05:30', '6F9619FF-8B86-D011-B42D-00C04FC964FF'),
 (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 0, 0, 32767, 2147483647, 9223372036854775807, -0.0000000001, -99999999999999.9999,
  922337203685477.5807, 214748.3647, -2.5, 1.5, '', '', N'', N'', 0x00, 0x, '9999-12-31',
  '00:00:00', '00:00:00', '9999-12-31 23:59:59.997', '2079-06-06 23:59', '9999-12-31 23:59:59.9999999',
  '0001-01-01 00:00:00 -08:00', '00000000-0000-0000-0000-000000000000')
GO
"#;

pub struct Fixture {
    pub server: SqlServerHandle,
    pub dir: PathBuf,
}

pub fn fixture(tag: &str) -> Fixture {
    let server = sqlserver::start(SqlServerConfig {
        encryption: ServerEncryption::LoginOnly,
        ..SqlServerConfig::default()
    })
    .unwrap();
    server.engine().run_script(SEED).unwrap();
    let dir = project(
        &format!("extract-{tag}"),
        "tipos",
        "-- every type\nSELECT * FROM {database}.{schema}.t\n",
    );
    Fixture { server, dir }
}

/// A fresh working directory laid out as a user's: `queries/<query>.sql`,
/// `config/common_params.yaml` (schema dbo) and `config/Colombia.yaml`
/// (database Fid).
pub fn project(tag: &str, query: &str, sql: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bridge-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("queries")).unwrap();
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/common_params.yaml"), "schema: dbo\n").unwrap();
    std::fs::write(dir.join("config/Colombia.yaml"), "database: Fid\n").unwrap();
    std::fs::write(dir.join("queries").join(format!("{query}.sql")), sql).unwrap();
    dir
}

/// `Fid.dbo.ventas` with three rows, what `ventas.sql` of [`VENTAS_SQL`] reads.
pub const VENTAS_SEED: &str = "CREATE DATABASE Fid\nGO\nUSE Fid\nGO\n\
     CREATE TABLE dbo.ventas (id int NOT NULL PRIMARY KEY, monto decimal(18,2))\nGO\n\
     INSERT INTO dbo.ventas VALUES (1, 10.50), (2, 20.25), (3, 30.00)\nGO\n";

pub const VENTAS_SQL: &str = "SELECT id, monto FROM {database}.{schema}.ventas\n";

/// The rows `Colombia/<query>/_manifest.json` under `out` says were written.
pub fn manifest_rows(out: &std::path::Path, query: &str) -> Option<u64> {
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("Colombia").join(query).join("_manifest.json")).ok()?,
    )
    .ok()?;
    m["rows"].as_u64()
}

pub fn extract(f: &Fixture, extra: &[&str], password: &str) -> Output {
    extract_to(f, "out", extra, password)
}

pub fn extract_to(f: &Fixture, dest: &str, extra: &[&str], password: &str) -> Output {
    extract_with_env(f, dest, extra, password, &[])
}

pub fn extract_with_env(
    f: &Fixture,
    dest: &str,
    extra: &[&str],
    password: &str,
    env: &[(&str, String)],
) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sql-databricks-bridge"));
    cmd.args([
        "extract",
        "--country",
        "Colombia",
        "--destination",
        dest,
        "--timeout",
        "10",
    ])
    .args(extra)
    .current_dir(&f.dir)
    .env("SQLSERVER_HOST", format!("127.0.0.1,{}", f.server.port()))
    .env("SQLSERVER_USERNAME", "sa")
    .env("SQLSERVER_PASSWORD", password)
    .env("SQLSERVER_TRUST_SERVER_CERTIFICATE", "true")
    .env_remove("SQLSERVER_DATABASE")
    .env_remove("SQLSERVER_CONNECTION_STRING")
    .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
    .output()
    .expect("binary runs")
}
