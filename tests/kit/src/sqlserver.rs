//! A tiberius client of the SQL Server sandbox, as the tests and benchmarks
//! sign in: `sa` with the sandbox's default password, over loopback TCP.

use tiberius::{AuthMethod, Client, Config, EncryptionLevel};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

/// The sandbox's administrator and its default password
/// (`bridge-sandbox sqlserver --password`).
pub const USER: &str = "sa";
pub const PASSWORD: &str = "Bridge!Passw0rd";

/// A signed-in client.
pub type Sql = Client<Compat<TcpStream>>;

/// The client settings for the sandbox on `port` as `sa`: the sandbox's
/// certificate is self-signed, so it is trusted rather than verified.
/// `EncryptionLevel::Off` encrypts the login only (SQL Server's default),
/// `NotSupported` nothing.
pub fn config(port: u16, encryption: EncryptionLevel) -> Config {
    let mut c = Config::new();
    c.host("127.0.0.1");
    c.port(port);
    c.authentication(AuthMethod::sql_server(USER, PASSWORD));
    c.encryption(encryption);
    c.trust_cert();
    c
}

/// Signs in with `config`, Nagle off (the sandbox, like SQL Server, answers
/// in small packets a client waits on).
pub async fn connect_with(config: Config) -> tiberius::Result<Sql> {
    let tcp = TcpStream::connect(config.get_addr()).await?;
    tcp.set_nodelay(true)?;
    Client::connect(config, tcp.compat_write()).await
}

/// Signs in to the sandbox on `port`; a test has nothing to do without it,
/// so a failure panics with the reason.
pub async fn connect(port: u16, encryption: EncryptionLevel) -> Sql {
    connect_with(config(port, encryption))
        .await
        .unwrap_or_else(|e| panic!("signing in to the SQL Server sandbox on port {port}: {e}"))
}

/// Runs a batch and reads all its results; a test cannot go on without it,
/// so a failure panics naming the batch.
pub async fn exec(c: &mut Sql, sql: &str) {
    c.simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_results()
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
