//! Extractions landed as Delta tables and kept current, through the real
//! binary against both sandboxes: incremental loads by cursor (with a late
//! row inside the lookback), SQL Server Change Tracking (inserts, updates,
//! deletes, the delete cap, an expired version), schema drift, and the
//! state any bridge continues from.

use crate::common;

use bridge_sandbox::databricks::sql::types::render;
use common::server::World;

/// Runs a statement on the world's SQL Server.
async fn sql(w: &World, text: &str) -> Vec<Vec<String>> {
    let mut client =
        bridge_testkit::sqlserver::connect(w.sql.port(), tiberius::EncryptionLevel::Off).await;
    let rows = client
        .simple_query(text)
        .await
        .unwrap()
        .into_first_result()
        .await
        .unwrap();
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    r.try_get::<i32, _>(i)
                        .ok()
                        .flatten()
                        .map(|v| v.to_string())
                        .or_else(|| {
                            r.try_get::<tiberius::numeric::Numeric, _>(i)
                                .ok()
                                .flatten()
                                .map(|v| v.to_string())
                        })
                        .or_else(|| r.try_get::<&str, _>(i).ok().flatten().map(str::to_string))
                        .unwrap_or_else(|| "NULL".into())
                })
                .collect()
        })
        .collect()
}

/// Rows of a Databricks query, each value as text.
fn dbx(w: &World, text: &str) -> Vec<Vec<String>> {
    let r = w
        .dbx
        .engine()
        .execute(text, &Default::default(), &[])
        .unwrap_or_else(|e| panic!("{text}: {e:?}"));
    r.rows
        .iter()
        .map(|row| {
            row.iter()
                .zip(&r.columns)
                .map(|(v, c)| render(v, &c.ty).unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

fn extract(w: &World, query: &str) -> std::process::Output {
    w.command(&[
        "extract",
        "--country",
        "Colombia",
        "--destination",
        "/Volumes/main/demo/landing",
        "--query",
        query,
        "--overwrite",
        "--timeout",
        "10",
    ])
    .output()
    .unwrap()
}

fn ok(o: &std::process::Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The rows read from SQL Server by the last run of `query` (its manifest).
fn rows_read(w: &World, query: &str) -> u64 {
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            w.dbx
                .engine()
                .volumes_root()
                .join(format!("main/demo/landing/Colombia/{query}/_manifest.json")),
        )
        .unwrap(),
    )
    .unwrap();
    m["rows"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_incremental_load_keeps_the_table_equal_to_sql_server() {
    let w = World::new("tables-inc").with_databricks_demo();
    let mut seed = String::from(
        "CREATE DATABASE Inc\nGO\nUSE Inc\nGO\n\
         CREATE TABLE dbo.ventas (id int NOT NULL PRIMARY KEY, monto decimal(10,2) NOT NULL, \
         nota nvarchar(20) NULL, modificado datetime2(3) NOT NULL)\nGO\n",
    );
    // 40 rows, one hour apart.
    for i in 1..=40 {
        seed.push_str(&format!(
            "INSERT INTO dbo.ventas VALUES ({i}, {i}.50, N'fila {i}', DATEADD(hour, {i}, '2024-01-01'))\nGO\n"
        ));
    }
    w.sql.engine().run_script(&seed).unwrap();
    std::fs::write(
        w.dir.join("queries/ventas_inc.sql"),
        "SELECT id, monto, nota, modificado FROM Inc.dbo.ventas",
    )
    .unwrap();
    std::fs::write(
        w.dir.join("queries/ventas_inc.yaml"),
        "table: main.kwp_{country_code}.ventas\nmode: incremental\nprimary_key: [id]\ncursor: modificado\nlookback: 2h\n",
    )
    .unwrap();
    w.dbx
        .engine()
        .run_script("CREATE SCHEMA IF NOT EXISTS main.kwp_co")
        .unwrap();
    let table_rows = |w: &World| {
        dbx(
            w,
            "SELECT id, monto, nota FROM main.kwp_co.ventas ORDER BY id",
        )
    };
    let source_rows =
        || async { sql(&w, "SELECT id, monto, nota FROM Inc.dbo.ventas ORDER BY id").await };

    // First run: a full load.
    let out = ok(&extract(&w, "ventas_inc"));
    assert_eq!(
        dbx(&w, "DESCRIBE TABLE main.kwp_co.ventas")
            .iter()
            .map(|r| format!("{} {}", r[0], r[1]))
            .collect::<Vec<_>>()[..4],
        [
            "id int",
            "monto decimal(10,2)",
            "nota string",
            "modificado timestamp_ntz"
        ]
    );
    // A full read, merged (another query may load this table too).
    assert!(
        out.contains("merged main.kwp_co.ventas: +40 ~0 -0"),
        "{out}"
    );
    assert_eq!(rows_read(&w, "ventas_inc"), 40);
    assert_eq!(table_rows(&w), source_rows().await);

    // Changes: a new row, an update that moves the cursor, and a late row
    // whose cursor is an hour before the last one seen (inside the lookback).
    sql(
        &w,
        "INSERT INTO Inc.dbo.ventas VALUES (41, 41.00, N'nueva', '2024-01-02 18:00'); \
         UPDATE Inc.dbo.ventas SET monto = 999.99, modificado = '2024-01-02 19:00' WHERE id = 3; \
         INSERT INTO Inc.dbo.ventas VALUES (42, 42.00, N'tardía', '2024-01-02 15:00'); \
         SELECT 1",
    )
    .await;
    let out = ok(&extract(&w, "ventas_inc"));
    assert!(out.contains("merged main.kwp_co.ventas"), "{out}");
    // Only the rows from the last cursor minus two hours (14:00, inclusive)
    // on were read: 14:00, two at 15:00, 16:00, 18:00, 19:00.
    assert_eq!(rows_read(&w, "ventas_inc"), 6);
    assert_eq!(table_rows(&w), source_rows().await);

    // Another bridge (another process, nothing local shared) continues.
    sql(
        &w,
        "UPDATE Inc.dbo.ventas SET nota = N'cambiada', modificado = '2024-01-02 20:00' WHERE id = 1; SELECT 1",
    )
    .await;
    let out = ok(&extract(&w, "ventas_inc"));
    assert!(out.contains("+0 ~"), "{out}");
    assert_eq!(table_rows(&w), source_rows().await);
    let state = dbx(
        &w,
        "SELECT mode, cursor_column, cursor_value FROM bridge.state.table_loads WHERE table_name = 'main.kwp_co.ventas'",
    );
    assert_eq!(state[0][0], "incremental");
    assert!(state[0][2].starts_with("2024-01-02"), "{state:?}");

    // Schema drift: a new column is added to the table (rows not read again
    // keep NULL in it)...
    std::fs::write(
        w.dir.join("queries/ventas_inc.sql"),
        "SELECT id, monto, nota, modificado, CAST(id * 2 AS bigint) AS doble FROM Inc.dbo.ventas",
    )
    .unwrap();
    sql(
        &w,
        "UPDATE Inc.dbo.ventas SET modificado = '2024-01-02 21:00' WHERE id = 2; SELECT 1",
    )
    .await;
    let out = ok(&extract(&w, "ventas_inc"));
    assert!(out.contains("merged"), "{out}");
    assert_eq!(
        dbx(
            &w,
            "SELECT id, doble FROM main.kwp_co.ventas WHERE id IN (2, 10) ORDER BY id"
        ),
        [["2", "4"], ["10", "NULL"]]
    );
    // ... and a change Delta cannot widen fails, naming the column and types.
    std::fs::write(
        w.dir.join("queries/ventas_inc.sql"),
        "SELECT id, CAST(monto AS nvarchar(20)) AS monto, nota, modificado FROM Inc.dbo.ventas",
    )
    .unwrap();
    let o = extract(&w, "ventas_inc");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("column monto is DECIMAL(10,2) in the table but the query now gives STRING"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn full_and_append_loads() {
    let w = World::new("tables-full").with_databricks_demo();
    std::fs::write(
        w.dir.join("queries/productos.yaml"),
        "table: main.demo.productos_{country_code}\nmode: full\n",
    )
    .unwrap();
    std::fs::write(
        w.dir.join("queries/ventas.yaml"),
        "table: main.demo.ventas_log\nmode: append\n",
    )
    .unwrap();
    for _ in 0..2 {
        let o = w
            .command(&[
                "extract",
                "--country",
                "Colombia",
                "--destination",
                "/Volumes/main/demo/landing",
                "--overwrite",
                "--timeout",
                "10",
            ])
            .output()
            .unwrap();
        ok(&o);
    }
    let productos = sql(
        &w,
        "SELECT COUNT(*) FROM KWP_Colombia.dbo.Productos WHERE activo = 1",
    )
    .await[0][0]
        .clone();
    let ventas = rows_read(&w, "ventas");
    // Replaced twice: one copy; appended twice: two.
    assert_eq!(
        dbx(&w, "SELECT count(*) FROM main.demo.productos_co")[0][0],
        productos
    );
    let appended: u64 = dbx(&w, "SELECT count(*) FROM main.demo.ventas_log")[0][0]
        .parse()
        .unwrap();
    assert_eq!(appended, 2 * ventas);
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            w.dbx
                .engine()
                .volumes_root()
                .join("main/demo/landing/Colombia/productos/_manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(m["table"]["action"], "replaced", "{m}");
    assert_eq!(m["table"]["table"], "main.demo.productos_co");
}

#[tokio::test(flavor = "multi_thread")]
async fn change_tracking_mirrors_inserts_updates_and_deletes() {
    let w = World::new("tables-ct").with_databricks_demo();
    w.sql
        .engine()
        .run_script(
            "CREATE DATABASE Ct\nGO\n\
             ALTER DATABASE Ct SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)\nGO\n\
             USE Ct\nGO\n\
             CREATE TABLE dbo.panel (id int NOT NULL PRIMARY KEY, hogar nvarchar(20) NULL, peso decimal(9,3) NULL)\nGO\n\
             ALTER TABLE dbo.panel ENABLE CHANGE_TRACKING\nGO\n\
             INSERT INTO dbo.panel VALUES (1, N'uno', 1.5), (2, N'dos', 2.5), (3, N'tres', 3.5), (4, N'cuatro', 4.5)\nGO\n",
        )
        .unwrap();
    std::fs::write(
        w.dir.join("queries/panel.sql"),
        "SELECT id, hogar, peso FROM Ct.dbo.panel",
    )
    .unwrap();
    std::fs::write(
        w.dir.join("queries/panel.yaml"),
        "table: main.demo.panel_ct\nmode: change_tracking\nprimary_key: [id]\nmax_delete_rows: 2\n",
    )
    .unwrap();
    let table = |w: &World| {
        dbx(
            w,
            "SELECT id, hogar, peso FROM main.demo.panel_ct ORDER BY id",
        )
    };
    let source = || async { sql(&w, "SELECT id, hogar, peso FROM Ct.dbo.panel ORDER BY id").await };

    // First run: a full load.
    let out = ok(&extract(&w, "panel"));
    assert!(out.contains("replaced main.demo.panel_ct"), "{out}");
    assert_eq!(table(&w), source().await);

    // Inserts, updates and deletes are mirrored; only changed keys are read.
    sql(
        &w,
        "INSERT INTO Ct.dbo.panel VALUES (5, N'cinco', 5.5); \
         UPDATE Ct.dbo.panel SET peso = 20.25 WHERE id = 2; \
         DELETE FROM Ct.dbo.panel WHERE id = 4; SELECT 1",
    )
    .await;
    let out = ok(&extract(&w, "panel"));
    assert!(out.contains("+1 ~1 -1"), "{out}");
    assert_eq!(rows_read(&w, "panel"), 3);
    assert_eq!(table(&w), source().await);

    // A run that would delete more than max_delete_rows changes nothing.
    sql(
        &w,
        "DELETE FROM Ct.dbo.panel WHERE id IN (1, 2, 3); SELECT 1",
    )
    .await;
    let o = extract(&w, "panel");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("would delete 3 rows, above max_delete_rows 2; nothing was changed"),
        "{err}"
    );
    assert_eq!(table(&w).len(), 4);
    // Put them back (a change that deletes nothing) and run again.
    sql(
        &w,
        "INSERT INTO Ct.dbo.panel VALUES (1, N'uno', 1.5), (2, N'dos', 20.25), (3, N'tres', 3.5); SELECT 1",
    )
    .await;
    ok(&extract(&w, "panel"));
    assert_eq!(table(&w), source().await);

    // Changes cleaned up past the last synced version: a full reload, saying why.
    sql(
        &w,
        "UPDATE Ct.dbo.panel SET hogar = N'UNO' WHERE id = 1; SELECT 1",
    )
    .await;
    let current: i64 = sql(
        &w,
        "USE Ct; SELECT CAST(CHANGE_TRACKING_CURRENT_VERSION() AS int)",
    )
    .await[0][0]
        .parse()
        .unwrap();
    w.sql
        .engine()
        .run_script(&format!(
            "USE Ct\nGO\nEXEC sp_sandbox_change_tracking_cleanup @table_name = 'dbo.panel', @version = {current}\nGO\n"
        ))
        .unwrap();
    let o = extract(&w, "panel");
    let out = ok(&o);
    assert!(out.contains("replaced main.demo.panel_ct"), "{out}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("is older than") && err.contains("a full reload"),
        "{err}"
    );
    assert_eq!(table(&w), source().await);
}

/// An append whose answer is lost after Databricks committed it — the
/// COPY INTO's, or the manifest switch's before it — is loaded once: the
/// retry resumes at the step that failed and COPY INTO skips the files it
/// already loaded, instead of extracting again and appending a second copy.
#[tokio::test(flavor = "multi_thread")]
async fn an_append_whose_answer_is_lost_after_commit_is_loaded_once() {
    let w = World::new("tables-lost").with_databricks_demo();
    std::fs::write(
        w.dir.join("queries/ventas.yaml"),
        "table: main.demo.ventas_log\nmode: append\n",
    )
    .unwrap();
    let run = |w: &World| {
        w.command(&[
            "extract",
            "--country",
            "Colombia",
            "--destination",
            "/Volumes/main/demo/landing",
            "--query",
            "ventas",
            "--overwrite",
            "--timeout",
            "10",
            "--retry-base-ms",
            "10",
            "--retry-cap-ms",
            "20",
        ])
        .output()
        .unwrap()
    };
    let count = |w: &World| -> u64 {
        dbx(w, "SELECT count(*) FROM main.demo.ventas_log")[0][0]
            .parse()
            .unwrap()
    };
    ok(&run(&w));
    let ventas = rows_read(&w, "ventas");
    assert_eq!(count(&w), ventas);
    for (n, status) in [(2, 503), (3, 504), (4, 502)] {
        w.dbx
            .faults()
            .lose_statement_answers("^COPY INTO", 1, status)
            .unwrap();
        let out = ok(&run(&w));
        assert_eq!(
            count(&w),
            n * ventas,
            "lost {status} after COPY INTO: {out}"
        );
    }
    // The manifest's switch answered 503 after it was written.
    w.dbx.faults().lose_answers(
        1,
        503,
        Some("/api/2.0/fs/files/Volumes/main/demo/landing/Colombia/ventas/_manifest.json"),
    );
    ok(&run(&w));
    assert_eq!(count(&w), 5 * ventas);
}

/// Incremental loads lose nothing the cursor can see: a row committed
/// later at the last cursor value (same instant, or same day for a `date`
/// cursor) is read, since the bound is inclusive; an integer cursor takes
/// a lookback in its own units; a target dropped while its state survives
/// is reloaded in full, saying why; and two queries loading one table keep
/// a cursor each (the second's first run does not replace the first's rows).
#[tokio::test(flavor = "multi_thread")]
async fn incremental_loads_lose_no_row_at_the_bound_nor_across_queries() {
    let w = World::new("tables-bounds").with_databricks_demo();
    w.sql
        .engine()
        .run_script(
            "CREATE DATABASE Bnd\nGO\nUSE Bnd\nGO\n\
             CREATE TABLE dbo.a (id int NOT NULL PRIMARY KEY, ts datetime2(3) NOT NULL, dia date NOT NULL, seq int NOT NULL, v nvarchar(10))\nGO\n\
             CREATE TABLE dbo.b (id int NOT NULL PRIMARY KEY, ts datetime2(3) NOT NULL, dia date NOT NULL, seq int NOT NULL, v nvarchar(10))\nGO\n\
             INSERT INTO dbo.a VALUES (1, '2024-03-01 10:00', '2024-03-01', 10, N'a1'), (2, '2024-03-01 11:00', '2024-03-01', 20, N'a2')\nGO\n\
             INSERT INTO dbo.b VALUES (101, '2024-03-01 09:00', '2024-03-01', 5, N'b1')\nGO\n",
        )
        .unwrap();
    w.dbx
        .engine()
        .run_script("CREATE SCHEMA IF NOT EXISTS main.bnd")
        .unwrap();
    let spec = |cursor: &str, extra: &str| {
        format!(
            "table: main.bnd.t\nmode: incremental\nprimary_key: [id]\ncursor: {cursor}\n{extra}"
        )
    };
    let write = |name: &str, sql: &str, yaml: &str| {
        std::fs::write(w.dir.join(format!("queries/{name}.sql")), sql).unwrap();
        std::fs::write(w.dir.join(format!("queries/{name}.yaml")), yaml).unwrap();
    };
    write(
        "qa",
        "SELECT id, ts, dia, seq, v FROM Bnd.dbo.a",
        &spec("ts", ""),
    );
    write(
        "qb",
        "SELECT id, ts, dia, seq, v FROM Bnd.dbo.b",
        &spec("ts", ""),
    );
    let table = |w: &World| dbx(w, "SELECT id, v FROM main.bnd.t ORDER BY id");
    let source = || async {
        sql(
            &w,
            "SELECT id, v FROM (SELECT id, v FROM Bnd.dbo.a UNION ALL SELECT id, v FROM Bnd.dbo.b) AS u ORDER BY id",
        )
        .await
    };

    ok(&extract(&w, "qa"));
    ok(&extract(&w, "qb"));
    assert_eq!(table(&w), source().await, "two queries, one table");

    // A row committed after the run, at the instant the cursor reached.
    sql(
        &w,
        "INSERT INTO Bnd.dbo.a VALUES (3, '2024-03-01 11:00', '2024-03-01', 15, N'a3'); SELECT 1",
    )
    .await;
    ok(&extract(&w, "qa"));
    assert_eq!(table(&w), source().await, "a row at the last cursor value");
    // qb's cursor is its own (09:00): a row at 09:30 is still read.
    sql(
        &w,
        "INSERT INTO Bnd.dbo.b VALUES (102, '2024-03-01 09:30', '2024-03-01', 6, N'b2'); SELECT 1",
    )
    .await;
    ok(&extract(&w, "qb"));
    assert_eq!(table(&w), source().await, "the other query's own cursor");

    // A date cursor: the rest of the day is read.
    write(
        "qa",
        "SELECT id, ts, dia, seq, v FROM Bnd.dbo.a",
        &spec("dia", ""),
    );
    ok(&extract(&w, "qa"));
    sql(
        &w,
        "INSERT INTO Bnd.dbo.a VALUES (4, '2024-03-01 23:00', '2024-03-01', 16, N'a4'); SELECT 1",
    )
    .await;
    ok(&extract(&w, "qa"));
    assert_eq!(table(&w), source().await, "the rest of the day");

    // An integer cursor with a lookback in its units: a row given a value
    // 3 below the last one is read.
    write(
        "qa",
        "SELECT id, ts, dia, seq, v FROM Bnd.dbo.a",
        &spec("seq", "lookback: 5\n"),
    );
    ok(&extract(&w, "qa"));
    sql(
        &w,
        "INSERT INTO Bnd.dbo.a VALUES (5, '2024-03-01 08:00', '2024-03-01', 17, N'a5'); SELECT 1",
    )
    .await;
    ok(&extract(&w, "qa"));
    assert_eq!(table(&w), source().await, "an integer lookback");
    // A duration is refused for a number, naming what to give.
    write(
        "qa",
        "SELECT id, ts, dia, seq, v FROM Bnd.dbo.a",
        &spec("seq", "lookback: 2h\n"),
    );
    let o = extract(&w, "qa");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("a number of cursor units"), "{err}");
    write(
        "qa",
        "SELECT id, ts, dia, seq, v FROM Bnd.dbo.a",
        &spec("seq", "lookback: 5\n"),
    );
    // A text cursor with a lookback of its last 2 distinct values.
    write(
        "qa",
        "SELECT id, ts, dia, seq, v FROM Bnd.dbo.a",
        &spec("v", "lookback: 2\n"),
    );
    ok(&extract(&w, "qa"));
    sql(
        &w,
        "INSERT INTO Bnd.dbo.a VALUES (6, '2024-03-01 08:00', '2024-03-01', 1, N'a4x'); SELECT 1",
    )
    .await;
    ok(&extract(&w, "qa"));
    assert_eq!(table(&w), source().await, "a text lookback");

    // The target dropped while the state survives: a full reload, saying why.
    dbx(&w, "DROP TABLE main.bnd.t");
    let out = ok(&extract(&w, "qa"));
    assert!(out.contains("+6 ~0 -0"), "{out}");
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            w.dbx
                .engine()
                .volumes_root()
                .join("main/demo/landing/Colombia/qa/_manifest.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let note = manifest["table"]["note"].as_str().unwrap_or_default();
    assert!(
        note.contains("does not exist") && note.contains("full reload"),
        "{note}"
    );
    // qb finds the table re-created under it and reloads its rows too.
    let out = ok(&extract(&w, "qb"));
    assert!(out.contains("+2 ~0 -0"), "{out}");
    assert_eq!(table(&w), source().await, "after the drop");
}

/// Where the tracked table's database allows snapshot isolation, the
/// version check and the changes are one SNAPSHOT transaction, as
/// Microsoft documents: a cleanup that lands before it makes the read fail
/// before any row is sent, and the retry reloads in full; the table equals
/// its source either way.
#[tokio::test(flavor = "multi_thread")]
async fn change_tracking_reads_changes_in_one_snapshot_where_the_database_allows_it() {
    let w = World::new("tables-ct-snapshot").with_databricks_demo();
    w.sql
        .engine()
        .run_script(
            "ALTER DATABASE KWP_Colombia SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS)\nGO\n\
             ALTER DATABASE KWP_Colombia SET ALLOW_SNAPSHOT_ISOLATION ON\nGO\n\
             USE KWP_Colombia\nGO\n\
             CREATE TABLE dbo.snap (id int NOT NULL PRIMARY KEY, v decimal(9,2) NULL)\nGO\n\
             ALTER TABLE dbo.snap ENABLE CHANGE_TRACKING\nGO\n\
             INSERT INTO dbo.snap VALUES (1, 1.5), (2, 2.5), (3, 3.5)\nGO\n",
        )
        .unwrap();
    std::fs::write(
        w.dir.join("queries/snap.sql"),
        "SELECT id, v FROM KWP_Colombia.dbo.snap",
    )
    .unwrap();
    std::fs::write(
        w.dir.join("queries/snap.yaml"),
        "table: main.demo.snap_ct\nmode: change_tracking\nprimary_key: [id]\n",
    )
    .unwrap();
    let table = |w: &World| dbx(w, "SELECT id, v FROM main.demo.snap_ct ORDER BY id");
    let source = || async { sql(&w, "SELECT id, v FROM KWP_Colombia.dbo.snap ORDER BY id").await };
    ok(&extract(&w, "snap"));
    assert_eq!(table(&w), source().await);

    // The changes: read in the snapshot batch, typed as described.
    sql(&w, "UPDATE KWP_Colombia.dbo.snap SET v = 20 WHERE id = 2; DELETE FROM KWP_Colombia.dbo.snap WHERE id = 1; SELECT 1").await;
    w.sql
        .engine()
        .interleave(
            r"SET TRANSACTION ISOLATION LEVEL SNAPSHOT",
            "USE KWP_Colombia\nGO\nINSERT INTO dbo.snap VALUES (4, 4.5)\nGO\n",
            1,
        )
        .unwrap();
    let out = ok(&extract(&w, "snap"));
    assert!(out.contains("merged"), "{out}");
    assert!(!out.contains("own metadata"), "{out}");
    assert_eq!(table(&w), source().await, "{out}");

    // A cleanup past the last synced version lands just before the read:
    // the snapshot's check fails it, the retry reloads.
    sql(
        &w,
        "UPDATE KWP_Colombia.dbo.snap SET v = 30 WHERE id = 3; SELECT 1",
    )
    .await;
    w.sql
        .engine()
        .interleave(
            r"SET TRANSACTION ISOLATION LEVEL SNAPSHOT",
            "USE KWP_Colombia\nGO\nUPDATE dbo.snap SET v = 40 WHERE id = 4\nGO\n\
             DECLARE @v bigint = CHANGE_TRACKING_CURRENT_VERSION(); \
             EXEC sp_sandbox_change_tracking_cleanup @table_name = 'dbo.snap', @version = @v\nGO\n",
            1,
        )
        .unwrap();
    let o = extract(&w, "snap");
    let out = ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("change tracking cleaned up past version"),
        "{err}"
    );
    assert!(out.contains("replaced main.demo.snap_ct"), "{out}");
    assert_eq!(table(&w), source().await, "{out}");

    // Snapshot isolation turned off again: the plain read, validated after.
    w.sql
        .engine()
        .run_script("ALTER DATABASE KWP_Colombia SET ALLOW_SNAPSHOT_ISOLATION OFF\nGO\n")
        .unwrap();
    sql(
        &w,
        "UPDATE KWP_Colombia.dbo.snap SET v = 50 WHERE id = 2; SELECT 1",
    )
    .await;
    let out = ok(&extract(&w, "snap"));
    assert!(out.contains("merged"), "{out}");
    assert_eq!(table(&w), source().await, "{out}");
}

/// Change Tracking across its retention, in a database without snapshot
/// isolation: cleanup that lands between the check of the last synced
/// version and the read of its changes is caught by checking again after
/// the read (the run reads again, in full: no
/// change is lost); the automatic cleanup, as the server's clock passes
/// CHANGE_RETENTION, makes the next run a full reload; and that reload's
/// deletes are capped by max_delete_rows like the changes' are.
#[tokio::test(flavor = "multi_thread")]
async fn change_tracking_loses_nothing_to_cleanup_and_caps_a_reloads_deletes() {
    let w = World::new("tables-ct-age").with_databricks_demo();
    w.sql
        .engine()
        .run_script(
            "CREATE DATABASE Cta\nGO\n\
             ALTER DATABASE Cta SET CHANGE_TRACKING = ON (CHANGE_RETENTION = 2 DAYS, AUTO_CLEANUP = ON)\nGO\n\
             USE Cta\nGO\n\
             CREATE TABLE dbo.p (id int NOT NULL PRIMARY KEY, v int NULL)\nGO\n\
             ALTER TABLE dbo.p ENABLE CHANGE_TRACKING\nGO\n\
             INSERT INTO dbo.p VALUES (1, 1), (2, 2), (3, 3), (4, 4), (5, 5)\nGO\n",
        )
        .unwrap();
    std::fs::write(w.dir.join("queries/p.sql"), "SELECT id, v FROM Cta.dbo.p").unwrap();
    std::fs::write(
        w.dir.join("queries/p.yaml"),
        "table: main.demo.p_ct\nmode: change_tracking\nprimary_key: [id]\nmax_delete_rows: 2\n",
    )
    .unwrap();
    let table = |w: &World| dbx(w, "SELECT id, v FROM main.demo.p_ct ORDER BY id");
    let source = || async { sql(&w, "SELECT id, v FROM Cta.dbo.p ORDER BY id").await };
    ok(&extract(&w, "p"));
    assert_eq!(table(&w), source().await);

    // An update, then cleanup past it just before its changes are read.
    sql(&w, "UPDATE Cta.dbo.p SET v = 20 WHERE id = 2; SELECT 1").await;
    w.sql
        .engine()
        .interleave(
            r"CHANGETABLE\(CHANGES",
            "USE Cta\nGO\nUPDATE dbo.p SET v = 30 WHERE id = 3\nGO\n\
             DECLARE @v bigint = CHANGE_TRACKING_CURRENT_VERSION(); \
             EXEC sp_sandbox_change_tracking_cleanup @table_name = 'dbo.p', @version = @v\nGO\n",
            1,
        )
        .unwrap();
    let out = ok(&extract(&w, "p"));
    assert_eq!(table(&w), source().await, "{out}");

    // Four days on the server's clock: the automatic cleanup expires the
    // last synced version; the reload would delete 3 rows: refused.
    sql(&w, "DELETE FROM Cta.dbo.p WHERE id IN (1, 2, 3); SELECT 1").await;
    w.sql
        .clock()
        .advance(std::time::Duration::from_secs(4 * 86_400));
    sql(&w, "SELECT 1").await;
    let o = extract(&w, "p");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("would delete 3 rows, above max_delete_rows 2; nothing was changed"),
        "{err}"
    );
    assert_eq!(table(&w).len(), 5);
    // Within the cap, the reload goes through.
    sql(&w, "INSERT INTO Cta.dbo.p VALUES (1, 1); SELECT 1").await;
    let o = extract(&w, "p");
    let out = ok(&o);
    assert!(out.contains("replaced main.demo.p_ct"), "{out}");
    assert_eq!(table(&w), source().await);
}
