//! rowversion over TDS with tiberius, as a client of a table with one sees
//! it (https://learn.microsoft.com/en-us/sql/t-sql/data-types/rowversion-transact-sql):
//! eight bytes the server sets on every insert and update — through INSERT,
//! UPDATE, and a bulk load that leaves the column out — unique in the
//! database, the last one being @@DBTS; a statement giving it a value is
//! refused with 273.

use bridge_sandbox::sqlserver::{self, SqlServerConfig};
use tiberius::{ColumnType, EncryptionLevel, IntoRow, SqlBulkCopyOptions};

use bridge_testkit::sqlserver::{exec, Sql as Conn};

/// Each row's id and stamp (as a number), and the type tiberius was told.
async fn stamps(c: &mut Conn) -> (Vec<(i32, u64)>, ColumnType) {
    let mut stream = c
        .simple_query("SELECT id, rv FROM dbo.t ORDER BY id")
        .await
        .expect("select");
    let ty = stream.columns().await.expect("metadata").expect("columns")[1].column_type();
    let rows = stream.into_first_result().await.expect("rows");
    let out = rows
        .iter()
        .map(|r| {
            let b: &[u8] = r.get(1).expect("rv");
            (
                r.get::<i32, _>(0).expect("id"),
                u64::from_be_bytes(b.try_into().expect("eight bytes")),
            )
        })
        .collect();
    (out, ty)
}

async fn dbts(c: &mut Conn) -> u64 {
    let row = c
        .simple_query("SELECT @@DBTS")
        .await
        .expect("@@DBTS")
        .into_row()
        .await
        .expect("row")
        .expect("a row");
    let b: &[u8] = row.get(0).expect("value");
    u64::from_be_bytes(b.try_into().expect("eight bytes"))
}

#[tokio::test]
async fn the_server_stamps_rows_however_they_arrive() {
    let h = sqlserver::start(SqlServerConfig::default()).expect("sandbox starts");
    let mut c = bridge_testkit::sqlserver::connect(h.port(), EncryptionLevel::NotSupported).await;
    exec(
        &mut c,
        "CREATE DATABASE rv; USE rv;
         CREATE TABLE dbo.t (id int NOT NULL PRIMARY KEY, u nvarchar(10) NULL, rv rowversion)",
    )
    .await;
    exec(
        &mut c,
        "INSERT INTO dbo.t (id, u) VALUES (1, N'a'), (2, N'b')",
    )
    .await;
    let mut bulk = c
        .bulk_insert_with_options("dbo.t", &["id", "u"], SqlBulkCopyOptions::empty(), &[])
        .await
        .expect("bulk");
    for id in 3..=5 {
        bulk.send((id, format!("bulk{id}")).into_row())
            .await
            .expect("send");
    }
    assert_eq!(bulk.finalize().await.expect("finalize").total(), 3);
    let (first, ty) = stamps(&mut c).await;
    assert_eq!(ty, ColumnType::BigBinary);
    assert_eq!(first.len(), 5);
    let mut values: Vec<u64> = first.iter().map(|r| r.1).collect();
    values.sort();
    values.dedup();
    assert_eq!(values.len(), 5, "{first:?}");
    assert_eq!(dbts(&mut c).await, values[4]);

    let before = dbts(&mut c).await;
    exec(&mut c, "UPDATE dbo.t SET u = u WHERE id IN (2, 4)").await;
    let (after, _) = stamps(&mut c).await;
    for ((id, old), (_, new)) in first.iter().zip(&after) {
        if [2, 4].contains(id) {
            assert!(*new > before, "row {id}: {new} after {before}");
        } else {
            assert_eq!(old, new, "row {id} was not updated");
        }
    }

    let refused = match c
        .simple_query("INSERT INTO dbo.t (id, rv) VALUES (9, 0x01)")
        .await
    {
        Err(tiberius::error::Error::Server(t)) => t.code(),
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("an explicit rowversion value was taken"),
    };
    assert_eq!(refused, 273);
}
