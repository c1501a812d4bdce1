//! Random and truncated packets close that connection only; the server and
//! its other sessions go on.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use bridge_sandbox::sqlserver::{self, ServerEncryption, SqlServerConfig};
use tiberius::EncryptionLevel;

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Sends `bytes`, half-closes, and checks the server ends the connection
/// (EOF or reset) instead of hanging.
fn send_and_expect_close(port: u16, bytes: &[u8]) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(Shutdown::Write);
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => continue, // e.g. a PRELOGIN response before the garbage
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                panic!(
                    "server kept a broken connection open: {:02x?}",
                    &bytes[..bytes.len().min(32)]
                )
            }
            Err(_) => return,
        }
    }
}

fn prelogin() -> Vec<u8> {
    // VERSION, ENCRYPTION(NOT_SUP), terminator; as a PRELOGIN packet.
    let payload: Vec<u8> = vec![
        0x00, 0x00, 0x0B, 0x00, 0x06, 0x01, 0x00, 0x11, 0x00, 0x01, 0xFF, 0x10, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x02,
    ];
    let mut p = vec![0x12, 0x01, 0, (payload.len() + 8) as u8, 0, 0, 1, 0];
    p.extend_from_slice(&payload);
    p
}

#[tokio::test]
async fn garbage_closes_only_that_connection() {
    let h = sqlserver::start(SqlServerConfig {
        encryption: ServerEncryption::NotSupported,
        ..SqlServerConfig::default()
    })
    .unwrap();
    let mut good =
        bridge_testkit::sqlserver::connect(h.port(), EncryptionLevel::NotSupported).await;
    good.simple_query("CREATE TABLE t (id int)")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();

    let port = h.port();
    let mut rng = XorShift(0x5EED_1234_ABCD_0001);
    let mut cases: Vec<Vec<u8>> = vec![
        vec![],
        vec![0x12],
        vec![0x12, 0x01, 0xFF, 0xFF, 0, 0, 0, 0, 1, 2, 3],
        vec![0x12, 0x01, 0x00, 0x04, 0, 0, 0, 0],
        vec![0x01, 0x01, 0x00, 0x20, 0, 0, 0, 0, b'S', 0],
    ];
    // A valid PRELOGIN, then random bytes or a truncated LOGIN7.
    let mut truncated_login = prelogin();
    truncated_login.extend_from_slice(&[0x10, 0x01, 0x01, 0x00, 0, 0, 1, 0, 0x50, 0, 0, 0]);
    cases.push(truncated_login);
    for i in 0..40 {
        let len = (rng.next() % 600) as usize;
        let mut bytes: Vec<u8> = if i % 2 == 0 { prelogin() } else { vec![] };
        bytes.extend((0..len).map(|_| rng.next() as u8));
        cases.push(bytes);
    }
    let handles: Vec<_> = cases
        .into_iter()
        .map(|c| std::thread::spawn(move || send_and_expect_close(port, &c)))
        .collect();
    for t in handles {
        t.join().expect("no hang, no panic");
    }

    // The session opened before is still fine, and new ones connect.
    good.simple_query("INSERT INTO t VALUES (1)")
        .await
        .unwrap()
        .into_results()
        .await
        .unwrap();
    let mut other =
        bridge_testkit::sqlserver::connect(h.port(), EncryptionLevel::NotSupported).await;
    let row = other
        .simple_query("SELECT count(*) FROM t")
        .await
        .unwrap()
        .into_row()
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.get::<i32, _>(0), Some(1));
}
