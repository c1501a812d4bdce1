//! A real MIT Kerberos KDC in a private realm, for the tests of Windows
//! (Kerberos) authentication — not a double: MIT's own programs, as a
//! domain's KDC would be — Debian's `krb5-kdc` and `krb5-admin-server`
//! tools (`kdb5_util`, `kadmin.local`, `krb5kdc`) run on a configuration
//! of the test's own in a temporary directory, listening on 127.0.0.1 only,
//! stopped when dropped. Nothing on the machine (`/etc/krb5.conf`, the
//! system KDC) is used: every program is pointed at the realm's files by
//! `KRB5_CONFIG` and `KRB5_KDC_PROFILE`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const REALM: &str = "BRIDGE.TEST";

pub struct Kdc {
    pub dir: PathBuf,
    pub port: u16,
    child: Child,
}

#[derive(Debug)]
pub struct KdcError(pub String);

impl std::fmt::Display for KdcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Whether this machine has the KDC's programs.
pub fn available() -> bool {
    ["krb5kdc", "kdb5_util", "kadmin.local", "kinit", "klist"]
        .iter()
        .all(|p| which(p).is_some())
}

fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

impl Kdc {
    /// Creates the realm's database and starts its KDC in `dir`.
    pub fn start(dir: &Path) -> Result<Kdc, KdcError> {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).map_err(|e| KdcError(format!("{}: {e}", dir.display())))?;
        let port = free_port().map_err(|e| KdcError(e.to_string()))?;
        let d = dir.display();
        let write = |name: &str, text: String| {
            std::fs::write(dir.join(name), text).map_err(|e| KdcError(format!("{name}: {e}")))
        };
        write(
            "kdc.conf",
            format!(
                "[kdcdefaults]\n kdc_listen = 127.0.0.1:{port}\n kdc_tcp_listen = 127.0.0.1:{port}\n\
                 [realms]\n {REALM} = {{\n  database_name = {d}/principal\n  key_stash_file = {d}/stash\n  \
                 acl_file = {d}/kadm5.acl\n  kdc_listen = 127.0.0.1:{port}\n  kdc_tcp_listen = 127.0.0.1:{port}\n  \
                 max_life = 10h 0m 0s\n }}\n[logging]\n kdc = FILE:{d}/kdc.log\n"
            ),
        )?;
        write(
            "krb5.conf",
            format!(
                "[libdefaults]\n default_realm = {REALM}\n dns_lookup_kdc = false\n dns_lookup_realm = false\n \
                 rdns = false\n dns_canonicalize_hostname = false\n udp_preference_limit = 1\n \
                 default_ccache_name = FILE:{d}/ccache-default\n\
                 [realms]\n {REALM} = {{\n  kdc = 127.0.0.1:{port}\n }}\n\
                 [domain_realm]\n localhost = {REALM}\n 127.0.0.1 = {REALM}\n"
            ),
        )?;
        write("kadm5.acl", String::new())?;
        run(
            dir,
            "kdb5_util",
            &["-r", REALM, "create", "-s", "-P", "bridge-test-master-key"],
        )?;
        let log =
            std::fs::File::create(dir.join("krb5kdc.out")).map_err(|e| KdcError(e.to_string()))?;
        let child = command(dir, "krb5kdc")
            .args(["-n", "-r", REALM])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| KdcError(format!("krb5kdc: {e}")))?;
        let kdc = Kdc {
            dir: dir.to_path_buf(),
            port,
            child,
        };
        // Ready when it accepts TCP.
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                return Err(KdcError(format!(
                    "krb5kdc did not listen on 127.0.0.1:{port}: {}",
                    std::fs::read_to_string(dir.join("krb5kdc.out")).unwrap_or_default()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(kdc)
    }

    /// The realm's client configuration (`KRB5_CONFIG`).
    pub fn krb5_conf(&self) -> PathBuf {
        self.dir.join("krb5.conf")
    }

    /// Runs a program of the realm's; its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<String, KdcError> {
        run(&self.dir, program, args)
    }

    /// Adds `principal` with a random key and writes its key to `keytab`
    /// (appending when the file exists).
    pub fn add_principal(&self, principal: &str, keytab: &Path) -> Result<(), KdcError> {
        self.run(
            "kadmin.local",
            &["-r", REALM, "-q", &format!("addprinc -randkey {principal}")],
        )?;
        self.run(
            "kadmin.local",
            &[
                "-r",
                REALM,
                "-q",
                &format!("ktadd -k {} {principal}", keytab.display()),
            ],
        )?;
        Ok(())
    }
}

/// A program of the realm in `dir`, pointed at its files.
fn command(dir: &Path, program: &str) -> Command {
    let mut c = Command::new(which(program).unwrap_or_else(|| program.into()));
    c.env("KRB5_CONFIG", dir.join("krb5.conf"))
        .env("KRB5_KDC_PROFILE", dir.join("kdc.conf"));
    c
}

fn run(dir: &Path, program: &str, args: &[&str]) -> Result<String, KdcError> {
    let out = command(dir, program)
        .args(args)
        .output()
        .map_err(|e| KdcError(format!("{program}: {e}")))?;
    if !out.status.success() {
        return Err(KdcError(format!(
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl Drop for Kdc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
