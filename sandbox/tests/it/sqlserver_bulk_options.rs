//! Bulk-load hints over TDS, as tiberius 0.13 sends them with
//! `bulk_insert_with_options` (the statement it writes is
//! `INSERT BULK <table> (<cols>) WITH (CHECK_CONSTRAINTS, TABLOCK,
//! KEEP_NULLS, FIRE_TRIGGERS)`): constraints and triggers are skipped
//! without their hint and honoured with it; a NULL takes the column's
//! DEFAULT unless KEEP_NULLS.

use bridge_sandbox::sqlserver::{self, SqlServerConfig, SqlServerHandle};
use tiberius::{EncryptionLevel, IntoRow, SqlBulkCopyOption, SqlBulkCopyOptions};

use bridge_testkit::sqlserver::Sql as Conn;

fn server() -> SqlServerHandle {
    sqlserver::start(SqlServerConfig::default()).expect("sandbox starts")
}

async fn connect(h: &SqlServerHandle) -> Conn {
    bridge_testkit::sqlserver::connect(h.port(), EncryptionLevel::NotSupported).await
}

async fn scalar(c: &mut Conn, sql: &str) -> i32 {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_row()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .and_then(|r| r.get::<i32, _>(0))
        .unwrap_or_else(|| panic!("{sql}: no value"))
}

async fn setup(c: &mut Conn) {
    c.simple_query(
        "CREATE DATABASE bulkopts; USE bulkopts;
         CREATE TABLE dbo.pais (id int PRIMARY KEY);
         INSERT dbo.pais VALUES (1);
         CREATE TABLE dbo.venta (
             id int PRIMARY KEY,
             pais_id int NOT NULL CONSTRAINT fk_venta_pais FOREIGN KEY REFERENCES dbo.pais (id),
             monto int NOT NULL CONSTRAINT ck_monto CHECK (monto > 0),
             canal varchar(10) NULL CONSTRAINT df_canal DEFAULT 'web');
         CREATE TABLE dbo.log (filas int)",
    )
    .await
    .expect("setup")
    .into_results()
    .await
    .expect("setup results");
    c.simple_query(
        "CREATE TRIGGER dbo.venta_log ON dbo.venta AFTER INSERT AS
         INSERT dbo.log SELECT count(*) FROM inserted",
    )
    .await
    .expect("trigger")
    .into_results()
    .await
    .expect("trigger results");
}

/// Sends rows (id, pais_id, monto, canal) with the given options.
async fn load(
    c: &mut Conn,
    options: SqlBulkCopyOptions,
    rows: &[(i32, i32, i32, Option<&str>)],
) -> tiberius::Result<u64> {
    let mut req = c
        .bulk_insert_with_options("dbo.venta", &["*"], options, &[])
        .await?;
    for (id, pais, monto, canal) in rows {
        req.send((*id, *pais, *monto, canal.map(str::to_string)).into_row())
            .await?;
    }
    Ok(req.finalize().await?.total())
}

#[tokio::test]
async fn tiberius_bulk_options_reach_the_server() {
    let h = server();
    let mut c = connect(&h).await;
    setup(&mut c).await;

    // No options: constraints and the trigger are skipped; NULL takes the DEFAULT.
    let n = load(
        &mut c,
        SqlBulkCopyOptions::empty(),
        &[(1, 9, -5, None), (2, 1, 10, Some("tienda"))],
    )
    .await
    .expect("load without hints");
    assert_eq!(n, 2);
    assert_eq!(scalar(&mut c, "SELECT count(*) FROM dbo.log").await, 0);
    assert_eq!(
        scalar(&mut c, "SELECT count(*) FROM dbo.venta WHERE canal = 'web'").await,
        1
    );
    assert_eq!(
        scalar(
            &mut c,
            "SELECT CAST(is_not_trusted AS int) FROM sys.check_constraints WHERE name = 'ck_monto'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &mut c,
            "SELECT CAST(is_not_trusted AS int) FROM sys.foreign_keys WHERE name = 'fk_venta_pais'"
        )
        .await,
        1
    );

    // CHECK_CONSTRAINTS: the load fails whole with 547.
    let err = load(
        &mut c,
        SqlBulkCopyOption::CheckConstraints.into(),
        &[(3, 1, 5, None), (4, 1, -1, None)],
    )
    .await
    .expect_err("violates ck_monto");
    match &err {
        tiberius::error::Error::Server(t) => {
            assert_eq!(t.code(), 547);
            assert!(
                t.message().contains("CHECK constraint \"ck_monto\""),
                "{t:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    // The connection is still usable and nothing of the failed load stayed.
    assert_eq!(scalar(&mut c, "SELECT count(*) FROM dbo.venta").await, 2);

    // Every flag: checked, triggered once for the load, NULL kept.
    let all = SqlBulkCopyOption::CheckConstraints
        | SqlBulkCopyOption::FireTriggers
        | SqlBulkCopyOption::KeepNulls
        | SqlBulkCopyOption::TableLock;
    let n = load(
        &mut c,
        all,
        &[(5, 1, 5, None), (6, 1, 6, None), (7, 1, 7, None)],
    )
    .await
    .expect("load with every hint");
    assert_eq!(n, 3);
    assert_eq!(scalar(&mut c, "SELECT count(*) FROM dbo.log").await, 1);
    assert_eq!(scalar(&mut c, "SELECT max(filas) FROM dbo.log").await, 3);
    assert_eq!(
        scalar(
            &mut c,
            "SELECT count(*) FROM dbo.venta WHERE id >= 5 AND canal IS NULL"
        )
        .await,
        3
    );
    let err = load(&mut c, all, &[(8, 2, 5, None)])
        .await
        .expect_err("violates fk_venta_pais");
    match &err {
        tiberius::error::Error::Server(t) => {
            assert_eq!(t.code(), 547);
            assert!(
                t.message()
                    .contains("FOREIGN KEY constraint \"fk_venta_pais\""),
                "{t:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    h.shutdown();
}
