//! Application locks over TDS with tiberius, as a client coordinating
//! sessions uses them (sp_getapplock / sp_releaseapplock, from Microsoft's
//! pages): return codes, owners, waits, and release when the session or
//! transaction that owned a lock ends.

use std::time::{Duration, Instant};

use bridge_sandbox::sqlserver::{self, SqlServerConfig, SqlServerHandle};
use tiberius::EncryptionLevel;

use bridge_testkit::sqlserver::Sql as Conn;

fn server() -> SqlServerHandle {
    sqlserver::start(SqlServerConfig::default()).expect("sandbox starts")
}

async fn connect(h: &SqlServerHandle) -> Conn {
    bridge_testkit::sqlserver::connect(h.port(), EncryptionLevel::NotSupported).await
}

/// Runs `sql` (which ends by selecting the code) and returns the code.
async fn code(c: &mut Conn, sql: &str) -> i32 {
    c.simple_query(format!("DECLARE @r int; {sql}; SELECT @r"))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_row()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .and_then(|r| r.get::<i32, _>(0))
        .unwrap_or_else(|| panic!("{sql}: no code"))
}

fn get(resource: &str, mode: &str, owner: &str, timeout_ms: i64) -> String {
    format!(
        "EXEC @r = sp_getapplock @Resource = N'{resource}', @LockMode = '{mode}', \
         @LockOwner = '{owner}', @LockTimeout = {timeout_ms}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn session_locks_exclude_until_released_or_the_session_ends() {
    let h = server();
    let (mut a, mut b) = (connect(&h).await, connect(&h).await);
    assert_eq!(
        code(&mut a, &get("slot-0", "Exclusive", "Session", 0)).await,
        0
    );
    // Taken again by its owner: counted.
    assert_eq!(
        code(&mut a, &get("slot-0", "Exclusive", "Session", 0)).await,
        0
    );
    assert_eq!(
        code(&mut b, &get("slot-0", "Exclusive", "Session", 0)).await,
        -1
    );
    assert_eq!(
        code(&mut b, &get("slot-0", "Shared", "Session", 0)).await,
        -1
    );
    // Binary compared: another name.
    assert_eq!(
        code(&mut b, &get("SLOT-0", "Exclusive", "Session", 0)).await,
        0
    );
    let release = "EXEC @r = sp_releaseapplock @Resource = N'slot-0', @LockOwner = 'Session'";
    assert_eq!(code(&mut a, release).await, 0);
    assert_eq!(
        code(&mut b, &get("slot-0", "Shared", "Session", 0)).await,
        -1
    );
    assert_eq!(code(&mut a, release).await, 0);
    // Released as often as taken: free.
    assert_eq!(
        code(&mut b, &get("slot-0", "Shared", "Session", 0)).await,
        0
    );
    assert_eq!(
        code(&mut a, &get("slot-0", "Shared", "Session", 0)).await,
        0
    );
    assert_eq!(
        code(&mut a, &get("slot-0", "Exclusive", "Session", 0)).await,
        -1
    );
    // Releasing what one does not hold is an error.
    let mut c = connect(&h).await;
    let e = match c
        .simple_query("EXEC sp_releaseapplock @Resource = N'nope', @LockOwner = 'Session'")
        .await
    {
        Err(e) => e,
        Ok(s) => s.into_results().await.expect_err("not held"),
    };
    assert!(
        e.to_string().contains("because it is not currently held"),
        "{e}"
    );

    // A waiter is granted (1) once the holder's session ends.
    let mut w = connect(&h).await;
    assert_eq!(
        code(&mut w, &get("slot-1", "Exclusive", "Session", 0)).await,
        0
    );
    let port = h.port();
    let waiter = tokio::spawn(async move {
        let mut x = bridge_testkit::sqlserver::connect(port, EncryptionLevel::NotSupported).await;
        let started = Instant::now();
        let got = code(&mut x, &get("slot-1", "Exclusive", "Session", 10_000)).await;
        (got, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(w);
    let (got, waited) = waiter.await.unwrap();
    assert_eq!(got, 1, "granted after waiting");
    assert!(waited < Duration::from_secs(9), "{waited:?}");
    // Timed out: -1 after about the timeout.
    let started = Instant::now();
    assert_eq!(
        code(&mut a, &get("slot-0", "Exclusive", "Session", 200)).await,
        -1
    );
    assert!(started.elapsed() >= Duration::from_millis(150));
}

#[tokio::test(flavor = "multi_thread")]
async fn transaction_locks_need_a_transaction_and_end_with_it() {
    let h = server();
    let (mut a, mut b) = (connect(&h).await, connect(&h).await);
    // The default owner is the transaction: outside one, a call error.
    assert_eq!(
        code(
            &mut a,
            "EXEC @r = sp_getapplock @Resource = N't', @LockMode = 'Exclusive'"
        )
        .await,
        -999
    );
    assert_eq!(
        code(&mut a, &get("t", "Sideways", "Session", 0)).await,
        -999
    );
    assert_eq!(
        code(&mut a, &get("t", "Exclusive", "Nobody", 0)).await,
        -999
    );
    assert_eq!(
        code(
            &mut a,
            "BEGIN TRANSACTION; EXEC @r = sp_getapplock @Resource = N't', @LockMode = 'Update'"
        )
        .await,
        0
    );
    assert_eq!(code(&mut b, &get("t", "Shared", "Session", 0)).await, 0);
    assert_eq!(
        code(
            &mut b,
            "EXEC @r = sp_releaseapplock @Resource = N't', @LockOwner = 'Session'"
        )
        .await,
        0
    );
    assert_eq!(code(&mut b, &get("t", "Update", "Session", 0)).await, -1);
    a.simple_query("COMMIT TRANSACTION")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    assert_eq!(code(&mut b, &get("t", "Exclusive", "Session", 0)).await, 0);
}
