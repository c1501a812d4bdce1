//! Change tracking over TDS with tiberius, the way a synchronizing client
//! uses it: validate the last version, read the current one, fetch
//! CHANGETABLE joined to the table with the version as a parameter, and
//! see the columns typed as SQL Server types them.

use bridge_sandbox::sqlserver::{self, SqlServerConfig, SqlServerHandle};
use tiberius::{ColumnType, EncryptionLevel};

use bridge_testkit::sqlserver::{exec, Sql as Conn};

fn server() -> SqlServerHandle {
    sqlserver::start(SqlServerConfig::default()).expect("sandbox starts")
}

async fn connect(h: &SqlServerHandle) -> Conn {
    bridge_testkit::sqlserver::connect(h.port(), EncryptionLevel::NotSupported).await
}

async fn version(c: &mut Conn, sql: &str) -> Option<i64> {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_row()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .and_then(|r| r.get::<i64, _>(0))
}

#[tokio::test]
async fn a_sync_client_reads_net_changes_since_its_version() {
    let h = server();
    let mut c = connect(&h).await;
    exec(
        &mut c,
        "CREATE DATABASE ctsync; USE ctsync;
         ALTER DATABASE ctsync SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON);
         CREATE TABLE dbo.producto (id int PRIMARY KEY, nombre nvarchar(40), precio decimal(10,2));
         ALTER TABLE dbo.producto ENABLE CHANGE_TRACKING WITH (TRACK_COLUMNS_UPDATED = ON);
         INSERT dbo.producto VALUES (1, N'café', 10.50), (2, N'té', 4.00)",
    )
    .await;
    let baseline = version(&mut c, "SELECT CHANGE_TRACKING_CURRENT_VERSION()")
        .await
        .expect("a version");
    exec(
        &mut c,
        "UPDATE dbo.producto SET precio = 11.00 WHERE id = 1;
         DELETE dbo.producto WHERE id = 2;
         INSERT dbo.producto VALUES (3, N'mate', 3.25)",
    )
    .await;
    let min_valid = version(
        &mut c,
        "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.producto'))",
    )
    .await
    .expect("tracked");
    assert!(baseline >= min_valid);

    let stream = c
        .query(
            "SELECT c.id, c.SYS_CHANGE_OPERATION, c.SYS_CHANGE_VERSION, c.SYS_CHANGE_COLUMNS, p.nombre
             FROM CHANGETABLE(CHANGES dbo.producto, @P1) AS c
             LEFT JOIN dbo.producto AS p ON p.id = c.id
             ORDER BY c.id",
            &[&baseline],
        )
        .await
        .expect("changes");
    let rows = stream.into_first_result().await.expect("rows");
    let cols = rows[0].columns();
    assert_eq!(cols[1].column_type(), ColumnType::NChar);
    assert_eq!(cols[2].column_type(), ColumnType::Int8);
    assert_eq!(cols[3].column_type(), ColumnType::BigVarBin);
    let got: Vec<(i32, String, Option<String>)> = rows
        .iter()
        .map(|r| {
            (
                r.get::<i32, _>(0).expect("id"),
                r.get::<&str, _>(1).expect("op").to_string(),
                r.get::<&str, _>(4).map(str::to_string),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (1, "U".to_string(), Some("café".to_string())),
            (2, "D".to_string(), None),
            (3, "I".to_string(), Some("mate".to_string())),
        ]
    );
    // Three autocommit statements: three versions after the baseline.
    let current = version(&mut c, "SELECT CHANGE_TRACKING_CURRENT_VERSION()")
        .await
        .expect("a version");
    assert_eq!(current, baseline + 3);

    // The sandbox-only cleanup moves the minimum valid version past the baseline.
    exec(
        &mut c,
        &format!("EXEC sp_sandbox_change_tracking_cleanup N'dbo.producto', {current}"),
    )
    .await;
    let min_valid = version(
        &mut c,
        "SELECT CHANGE_TRACKING_MIN_VALID_VERSION(OBJECT_ID('dbo.producto'))",
    )
    .await
    .expect("tracked");
    assert!(baseline < min_valid, "the client must reinitialize");
    h.shutdown();
}
