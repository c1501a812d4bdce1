//! Collations over TDS with tiberius: a varchar column's values travel in
//! its collation's code page, as its COLMETADATA collation says (a
//! Cyrillic_General column keeps `Ж`, a Latin1 one stores `?`), and a
//! case-sensitive database compares case-sensitively.

use bridge_sandbox::sqlserver::{self, SqlServerConfig, SqlServerHandle};
use tiberius::EncryptionLevel;

use bridge_testkit::sqlserver::{exec, Sql as Conn};

fn server() -> SqlServerHandle {
    sqlserver::start(SqlServerConfig::default()).expect("sandbox starts")
}

async fn connect(h: &SqlServerHandle) -> Conn {
    bridge_testkit::sqlserver::connect(h.port(), EncryptionLevel::NotSupported).await
}

#[tokio::test]
async fn varchar_values_travel_in_their_collations_code_page() {
    let h = server();
    let mut c = connect(&h).await;
    exec(
        &mut c,
        "CREATE DATABASE colls COLLATE Latin1_General_CS_AS; USE colls;
         CREATE TABLE t (cyr varchar(20) COLLATE Cyrillic_General_CI_AS, lat varchar(20), uni nvarchar(20))",
    )
    .await;
    c.execute(
        "INSERT INTO t (cyr, lat, uni) VALUES (@P1, @P2, @P3)",
        &[&"Жук", &"Жук", &"Жук"],
    )
    .await
    .expect("insert");
    let row = c
        .query("SELECT cyr, lat, uni FROM t", &[])
        .await
        .expect("query")
        .into_row()
        .await
        .expect("row")
        .expect("one row");
    assert_eq!(row.get::<&str, _>(0), Some("Жук"));
    assert_eq!(row.get::<&str, _>(1), Some("???"));
    assert_eq!(row.get::<&str, _>(2), Some("Жук"));

    // Latin1_General_CS_AS: literals and the lat column compare case-sensitively.
    exec(&mut c, "INSERT INTO t (lat) VALUES ('abc')").await;
    let n: i32 = c
        .query("SELECT count(*) FROM t WHERE lat = 'ABC'", &[])
        .await
        .expect("query")
        .into_row()
        .await
        .expect("row")
        .and_then(|r| r.get(0))
        .expect("count");
    assert_eq!(n, 0);
    // tiberius reports the error when the query starts or while reading.
    let err = match c.simple_query("SELECT * FROM t WHERE cyr = lat").await {
        Ok(s) => s.into_results().await.expect_err("collation conflict"),
        Err(e) => e,
    };
    match err {
        tiberius::error::Error::Server(e) => assert_eq!(e.code(), 468),
        other => panic!("{other:?}"),
    }
    h.shutdown();
}
