//! One client connection: PRELOGIN (with TLS negotiation), LOGIN7, then
//! requests until the client goes away.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::TcpStream;

use crate::engine::isolation::Isolation;
use crate::engine::session::BulkTarget;
use crate::engine::{Session, SqlError};
use crate::tds::packet::{self, read_message, read_packet_header, Message, MessageReader};
use crate::tds::prelogin::{self, EncryptionMode, PreloginResponse};
use crate::tds::transport::{self, Transport};
use crate::tds::{batch, bulk, login7, tokens, txn, TdsError};

use super::fedauth;
use super::output::{server_message, TdsOutput};
use super::Shared;

/// The kind of a request and the start of its text (SQL batches only),
/// for the timing log; empty unless that log is on.
fn describe(msg: &Message) -> (&'static str, String) {
    let kind = match msg.kind {
        packet::SQL_BATCH => "batch",
        packet::RPC => "rpc",
        packet::TRANSACTION_MANAGER => "transaction manager",
        packet::ATTENTION => "attention",
        _ => "other",
    };
    let text = if msg.kind == packet::SQL_BATCH
        && tracing::enabled!(target: "bridge_sandbox::timing", tracing::Level::DEBUG)
    {
        batch::parse_sql_batch(&msg.payload)
            .map(|b| b.text.chars().take(80).collect())
            .unwrap_or_default()
    } else {
        String::new()
    };
    (kind, text)
}

/// Largest request we hold in memory (bulk loads stream instead).
const MAX_REQUEST: usize = 256 * 1024 * 1024;

pub(super) fn serve(stream: TcpStream, shared: &Shared) -> Result<(), TdsError> {
    let mut stream = stream;
    // PRELOGIN, always in the clear.
    let Some(msg) = read_message(&mut stream, 64 * 1024)? else {
        return Ok(());
    };
    if msg.kind != packet::PRELOGIN {
        return Err(TdsError::Protocol(format!(
            "expected PRELOGIN, got packet type {:#04x}",
            msg.kind
        )));
    }
    let pre = prelogin::parse_prelogin(&msg.payload)?;
    let negotiated = prelogin::negotiate_encryption(
        shared.config.encryption,
        pre.encryption.unwrap_or(prelogin::ENCRYPT_OFF),
    );
    // A server that takes Entra ID tokens answers FEDAUTHREQUIRED when the
    // client asked; the client echoes it in its LOGIN7 FEDAUTH feature.
    let fed_auth_required = pre
        .fed_auth_required
        .filter(|_| shared.config.entra.is_some())
        .map(|_| true);
    let response = PreloginResponse {
        encryption: negotiated.response,
        fed_auth_required,
        ..PreloginResponse::default()
    };
    stream.write_all(&packet::encode_message(
        packet::TABULAR,
        &response.encode(),
        packet::DEFAULT_PACKET_SIZE,
    ))?;
    let mut transport = match (negotiated.mode, &shared.tls) {
        (EncryptionMode::Reject, _) => return Ok(()),
        (EncryptionMode::None, _) => Transport::Plain(stream),
        (EncryptionMode::LoginOnly | EncryptionMode::Full, Some(cfg)) => {
            transport::tls_accept_in_prelogin(stream, cfg.clone())?
        }
        (_, None) => {
            return Err(TdsError::Protocol(
                "TLS negotiated without a certificate".into(),
            ))
        }
    };

    // LOGIN7.
    let Some(msg) = read_message(&mut transport, 128 * 1024)? else {
        return Ok(());
    };
    if msg.kind != packet::LOGIN7 {
        return Err(TdsError::Protocol(format!(
            "expected LOGIN7, got packet type {:#04x}",
            msg.kind
        )));
    }
    let login = login7::parse_login7(&msg.payload)?;
    if negotiated.mode == EncryptionMode::LoginOnly {
        transport = transport.downgrade_to_plain();
    }
    let packet_size = match login.packet_size as usize {
        0 => packet::DEFAULT_PACKET_SIZE,
        n => n.clamp(packet::MIN_PACKET_SIZE, packet::MAX_PACKET_SIZE),
    };
    let refuse = |transport: &mut Transport, e: SqlError| -> Result<(), TdsError> {
        let mut buf = Vec::new();
        tokens::error(&mut buf, &server_message(&e, ""));
        tokens::done(&mut buf, tokens::DONE_ERROR, 0, 0);
        transport.write_all(&packet::encode_message(
            packet::TABULAR,
            &buf,
            packet::DEFAULT_PACKET_SIZE,
        ))?;
        transport.flush()?;
        Ok(())
    };
    let fed_auth = login
        .features
        .iter()
        .find(|(id, _)| *id == login7::FEATURE_FEDAUTH)
        .map(|(_, data)| data.as_slice());
    // The server's last security token of an integrated sign-in, sent
    // back with the login response.
    let mut sspi_reply: Option<Vec<u8>> = None;
    let integrated = fed_auth.is_none() && login.integrated_security();
    let login_name = match fed_auth {
        Some(data) => match entra_login(shared, data, fed_auth_required, &login.database) {
            Ok(name) => name,
            Err(reason) => {
                tracing::info!(%reason, "entra id login refused");
                return refuse(
                    &mut transport,
                    SqlError::login_failed(fedauth::TOKEN_PRINCIPAL),
                );
            }
        },
        None if integrated => match windows_login(shared, &login.sspi, &mut transport) {
            Ok(WindowsLogin::Known { login, reply }) => {
                sspi_reply = reply;
                login
            }
            Ok(WindowsLogin::Unknown(name)) => {
                tracing::info!(user = %name, "no Windows login");
                return refuse(&mut transport, SqlError::login_failed(&name));
            }
            Err(reason) => {
                tracing::info!(%reason, "integrated login refused");
                // Login failed. The login is from an untrusted domain and
                // cannot be used with Integrated authentication.
                return refuse(&mut transport, untrusted_domain());
            }
        },
        None => login.username.clone(),
    };
    let user_ok = fed_auth.is_some()
        || integrated
        || (login.username.eq_ignore_ascii_case(&shared.config.user)
            && login.password == shared.config.password)
        || shared
            .engine
            .login_ok(&login.username, &login.password)
            .unwrap_or(false);
    if !user_ok || shared.faults.take_login_failure() {
        tracing::info!(user = %login_name, "login refused");
        return refuse(&mut transport, SqlError::login_failed(&login_name));
    }
    let database = if login.database.is_empty() {
        "master".to_string()
    } else {
        login.database.clone()
    };
    let mut session = match shared.engine.session(&database) {
        Ok(s) => s,
        Err(e) => return refuse(&mut transport, e),
    };
    session.set_login(&login_name);
    session.set_app_name(&login.app_name);
    let tds_version = tokens::negotiate_tds_version(login.tds_version);
    // The server's last security token of an integrated sign-in goes in a
    // message of its own, then the login response: a client that has no
    // token left to send reads on to the LOGINACK (FreeTDS reads one token
    // stream across both; tiberius reads the SSPI message, then the login
    // response as the next).
    if let Some(token) = &sspi_reply {
        let mut buf = Vec::new();
        tokens::sspi(&mut buf, token);
        transport.write_all(&packet::encode_message(
            packet::TABULAR,
            &buf,
            packet::DEFAULT_PACKET_SIZE,
        ))?;
    }
    let mut buf = Vec::new();
    tokens::env_database(&mut buf, session.database(), "master");
    tokens::info(
        &mut buf,
        &info(
            5701,
            2,
            format!("Changed database context to '{}'.", session.database()),
        ),
    );
    tokens::env_collation(&mut buf, &session.collation().to_tds());
    tokens::env_language(&mut buf, "us_english", "");
    tokens::info(
        &mut buf,
        &info(5703, 1, "Changed language setting to us_english.".into()),
    );
    tokens::login_ack(&mut buf, tds_version, tokens::SERVER_VERSION);
    tokens::env_packet_size(&mut buf, packet_size as u32, 4096);
    if fed_auth.is_some() {
        // The security-token library acknowledges with no data.
        tokens::feature_ext_ack(&mut buf, &[(login7::FEATURE_FEDAUTH, &[])]);
    } else if login.has_feature_ext() {
        tokens::feature_ext_ack(&mut buf, &[]);
    }
    tokens::done(&mut buf, 0, 0, 0);
    transport.write_all(&packet::encode_message(packet::TABULAR, &buf, packet_size))?;
    transport.flush()?;
    tracing::debug!(user = %login_name, db = %session.database(), "login ok");

    let mut conn = Conn {
        session,
        packet_size,
        pending_bulk: None,
        prepared: HashMap::new(),
        next_handle: 1,
        after_integrated_login: integrated,
    };
    let result = conn.requests(&mut transport, shared);
    conn.session.reset();
    result
}

fn untrusted_domain() -> SqlError {
    SqlError::new(
        18452,
        1,
        14,
        "Login failed. The login is from an untrusted domain and cannot be used with Integrated authentication.",
    )
}

/// Who an integrated sign-in proved to be.
#[cfg_attr(not(feature = "kerberos"), allow(dead_code))]
enum WindowsLogin {
    /// A Windows login, and the server's last token for the client.
    Known {
        login: String,
        reply: Option<Vec<u8>>,
    },
    /// Authenticated, with no login of that name.
    Unknown(String),
}

/// Accepts the client's security tokens (the first from LOGIN7, the next
/// ones from SSPI messages) with the server's keytab until the context is
/// complete; the Windows login of the principal.
#[cfg(feature = "kerberos")]
fn windows_login(
    shared: &Shared,
    first: &[u8],
    transport: &mut Transport,
) -> Result<WindowsLogin, String> {
    let keytab = shared
        .config
        .kerberos_keytab
        .as_ref()
        .ok_or("this server takes no Kerberos sign-in")?;
    let mut acceptor = super::kerberos::Acceptor::new(keytab)?;
    let mut token = first.to_vec();
    let reply = loop {
        let out = acceptor.step(&token)?;
        if acceptor.is_complete() {
            break out;
        }
        let out = out.ok_or("the security context needs more but gave no token")?;
        let mut buf = Vec::new();
        tokens::sspi(&mut buf, &out);
        transport
            .write_all(&packet::encode_message(
                packet::TABULAR,
                &buf,
                packet::DEFAULT_PACKET_SIZE,
            ))
            .and_then(|_| transport.flush())
            .map_err(|e| e.to_string())?;
        let msg = read_message(transport, 64 * 1024)
            .map_err(|e| e.to_string())?
            .ok_or("the client left during the SSPI exchange")?;
        if msg.kind != packet::SSPI && msg.kind != packet::LOGIN7 {
            return Err(format!(
                "expected an SSPI message, got type {:#04x}",
                msg.kind
            ));
        }
        token = msg.payload;
    };
    let principal = acceptor.principal()?;
    let name = super::kerberos::windows_login(&principal)
        .ok_or_else(|| format!("'{principal}' has no realm"))?;
    Ok(
        match shared
            .engine
            .windows_login(&name)
            .map_err(|e| e.message.clone())?
        {
            Some(login) => WindowsLogin::Known { login, reply },
            None => WindowsLogin::Unknown(name),
        },
    )
}

#[cfg(not(feature = "kerberos"))]
fn windows_login(_: &Shared, _: &[u8], _: &mut Transport) -> Result<WindowsLogin, String> {
    Err("this sandbox was built without the kerberos feature".into())
}

/// The login an Entra ID access token signs in as, or why not.
fn entra_login(
    shared: &Shared,
    data: &[u8],
    fed_auth_required: Option<bool>,
    database: &str,
) -> Result<String, String> {
    let trust = shared
        .config
        .entra
        .as_ref()
        .ok_or("this server takes no Entra ID tokens")?;
    let token = fedauth::token(data, fed_auth_required)?;
    let now = shared.engine.clock().now().timestamp();
    let p = fedauth::principal(trust, &token, now)?;
    let ids = [p.object_id.as_str(), p.app_id.as_str()];
    if let Some(login) = shared
        .engine
        .external_login(&ids)
        .map_err(|e| e.message.clone())?
    {
        return Ok(login);
    }
    // A contained user signs in to its own database only.
    let db = if database.is_empty() {
        "master"
    } else {
        database
    };
    shared
        .engine
        .external_user(db, &ids)
        .map_err(|e| e.message.clone())?
        .ok_or_else(|| {
            format!(
                "no login, nor user of database '{db}', FROM EXTERNAL PROVIDER for object id '{}' or application id '{}'",
                p.object_id, p.app_id
            )
        })
}

fn info(number: i32, state: u8, message: String) -> tokens::ServerMessage {
    tokens::ServerMessage {
        number,
        state,
        class: 0,
        message,
        server: "bridge-sandbox".into(),
        procedure: String::new(),
        line: 0,
    }
}

pub(super) struct Conn {
    pub session: Session,
    pub packet_size: usize,
    pending_bulk: Option<BulkTarget>,
    /// sp_prepare handles: parameter declarations and statement text.
    pub prepared: HashMap<i32, (String, String)>,
    pub next_handle: i32,
    /// Signed in with Kerberos, and no request read yet.
    after_integrated_login: bool,
}

impl Conn {
    fn requests(&mut self, transport: &mut Transport, shared: &Shared) -> Result<(), TdsError> {
        loop {
            if shared.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                return Ok(());
            }
            let Some(first) = read_packet_header(transport)? else {
                return Ok(());
            };
            let started = std::time::Instant::now();
            // Bulk rows stream straight from the socket.
            if first.kind == packet::BULK_LOAD {
                self.bulk_load(transport, first, shared)?;
                self.timed(started, "bulk load", "");
                continue;
            }
            let mut reader = MessageReader::new(transport, first);
            let mut payload = Vec::new();
            let read = io::Read::read_to_end(
                &mut io::Read::take(&mut reader, MAX_REQUEST as u64 + 1),
                &mut payload,
            );
            match read {
                Ok(_) if payload.len() > MAX_REQUEST => {
                    return Err(TdsError::Protocol("request too large".into()))
                }
                Ok(_) => {}
                // The client cancelled a partly sent request (IGNORE bit): nothing to answer.
                Err(e) if e.kind() == io::ErrorKind::Other => continue,
                Err(e) => return Err(e.into()),
            }
            let msg = Message {
                kind: first.kind,
                status_reset: first.status
                    & (packet::STATUS_RESET_CONNECTION | packet::STATUS_RESET_SKIP_TRAN)
                    != 0,
                reset_skip_tran: first.status & packet::STATUS_RESET_SKIP_TRAN != 0,
                payload,
            };
            // A client whose context completed with the server's last
            // token may still send an SSPI message with no token (tiberius
            // does): there is nothing left to accept, and no answer.
            if std::mem::take(&mut self.after_integrated_login)
                && matches!(msg.kind, packet::SSPI | packet::LOGIN7)
                && msg.payload.is_empty()
            {
                continue;
            }
            let (kind, text) = describe(&msg);
            self.request(transport, shared, msg)?;
            self.timed(started, kind, &text);
        }
    }

    /// Each request's duration on the server side, like the `duration`
    /// column of a SQL Server trace
    /// (https://learn.microsoft.com/en-us/sql/relational-databases/event-classes/sql-batchcompleted-event-class),
    /// so a benchmark can say where a client's time went.
    fn timed(&self, started: std::time::Instant, kind: &str, text: &str) {
        tracing::debug!(
            target: "bridge_sandbox::timing",
            spid = self.session.spid(),
            ms = started.elapsed().as_secs_f64() * 1e3,
            "{kind} {text}"
        );
    }

    fn output<'a>(&self, transport: &'a mut Transport, shared: &'a Shared) -> TdsOutput<'a> {
        let mut out = TdsOutput::new(
            transport,
            self.packet_size,
            self.session.spid(),
            &shared.faults,
        );
        out.set_in_transaction(self.session.in_transaction());
        out
    }

    fn request(
        &mut self,
        transport: &mut Transport,
        shared: &Shared,
        msg: Message,
    ) -> Result<(), TdsError> {
        let mut reset_ack = false;
        if msg.status_reset {
            if !msg.reset_skip_tran || !self.session.in_transaction() {
                self.session.reset();
            }
            self.prepared.clear();
            reset_ack = true;
        }
        match msg.kind {
            packet::SQL_BATCH => {
                let b = batch::parse_sql_batch(&msg.payload)?;
                let mut out = self.output(transport, shared);
                if reset_ack {
                    out.tokens(tokens::env_reset_connection_ack)?;
                }
                match self.session.bulk_target(&b.text) {
                    Ok(Some(target)) => {
                        let victim = match self.session.deadlock_victim(&b.text, &mut out) {
                            Ok(v) => v,
                            Err(crate::engine::OutputError::Io(e)) => return Err(e.into()),
                            Err(crate::engine::OutputError::Cancelled) => true,
                        };
                        if victim {
                            out.finish(None)?;
                            return Ok(());
                        }
                        self.pending_bulk = Some(target);
                        out.finish(None)?;
                        return Ok(());
                    }
                    Ok(None) => {}
                    Err(e) => {
                        let _ = crate::engine::Output::error(&mut out, &e);
                        let _ = crate::engine::Output::done(&mut out, None, true);
                        out.finish(None)?;
                        return Ok(());
                    }
                }
                if shared.faults.take_lost_answer(&b.text) {
                    // Run, commit, and answer nothing: the connection closes.
                    let mut sink = crate::engine::session::Discard;
                    let _ = self.session.run_request(&b.text, &[], &mut sink);
                    tracing::warn!("fault injected: batch run, then its answer lost");
                    return Err(TdsError::Io(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "answer lost (sandbox fault injection)",
                    )));
                }
                match self.session.run_request(&b.text, &[], &mut out) {
                    Ok(()) | Err(crate::engine::OutputError::Cancelled) => out.finish(None)?,
                    Err(crate::engine::OutputError::Io(e)) => return Err(e.into()),
                }
            }
            packet::RPC => {
                let req = crate::tds::rpc::parse_rpc(&msg.payload)?;
                let mut out = self.output(transport, shared);
                if reset_ack {
                    out.tokens(tokens::env_reset_connection_ack)?;
                }
                super::rpc::run(self, req, out)?;
            }
            packet::TRANSACTION_MANAGER => {
                let req = txn::parse_txn_request(&msg.payload)?;
                let mut out = self.output(transport, shared);
                if reset_ack {
                    out.tokens(tokens::env_reset_connection_ack)?;
                }
                let result = match req.request {
                    txn::TmRequest::Begin { isolation, .. } => self
                        .session
                        .tm_begin(Isolation::from_tds(isolation), &mut out),
                    txn::TmRequest::Commit { begin_new, .. } => {
                        let r = self.session.tm_commit(&mut out);
                        match (r, begin_new) {
                            (Ok(Ok(())), Some(next)) => self
                                .session
                                .tm_begin(Isolation::from_tds(next.isolation), &mut out),
                            (r, _) => r,
                        }
                    }
                    txn::TmRequest::Rollback { begin_new, .. } => {
                        let r = self.session.tm_rollback(&mut out);
                        match (r, begin_new) {
                            (Ok(Ok(())), Some(next)) => self
                                .session
                                .tm_begin(Isolation::from_tds(next.isolation), &mut out),
                            (r, _) => r,
                        }
                    }
                    txn::TmRequest::GetDtcAddress
                    | txn::TmRequest::Propagate(_)
                    | txn::TmRequest::Promote => Ok(Err(SqlError::new(
                        8509,
                        1,
                        16,
                        "Distributed transactions are not supported by the sandbox.",
                    ))),
                    txn::TmRequest::Save { name } => {
                        let mut sink = crate::engine::session::Discard;
                        let _ = self.session.run_request(
                            &format!("SAVE TRANSACTION [{}]", name.replace(']', "]]")),
                            &[],
                            &mut sink,
                        );
                        Ok(Ok(()))
                    }
                };
                match result {
                    Ok(Ok(())) => {
                        let _ = crate::engine::Output::done(&mut out, None, false);
                    }
                    Ok(Err(e)) => {
                        let _ = crate::engine::Output::error(&mut out, &e);
                        let _ = crate::engine::Output::done(&mut out, None, true);
                    }
                    Err(crate::engine::OutputError::Io(e)) => return Err(e.into()),
                    Err(crate::engine::OutputError::Cancelled) => {}
                }
                out.finish(None)?;
            }
            packet::ATTENTION => {
                // Nothing is running: acknowledge at once.
                let mut out = self.output(transport, shared);
                out.attention = true;
                out.finish(None)?;
            }
            other => {
                return Err(TdsError::Protocol(format!(
                    "unexpected packet type {other:#04x}"
                )));
            }
        }
        Ok(())
    }

    fn bulk_load(
        &mut self,
        transport: &mut Transport,
        first: packet::PacketHeader,
        shared: &Shared,
    ) -> Result<(), TdsError> {
        let target = self.pending_bulk.take();
        let mut reader = MessageReader::new(transport, first);
        let result = match &target {
            None => {
                reader.drain()?;
                Err(SqlError::new(
                    4804,
                    1,
                    21,
                    "While reading current row from host, a premature end-of-message was encountered--an incoming data stream was interrupted when the server expected to see more data.",
                ))
            }
            Some(target) => {
                let outcome = match bulk::BulkReader::new(&mut reader) {
                    Ok(mut rows) => {
                        let mut wire_error: Option<TdsError> = None;
                        let cut_at = shared
                            .faults
                            .drop_bulk_after_rows
                            .load(std::sync::atomic::Ordering::SeqCst);
                        let mut received = 0u64;
                        let r = self.session.bulk_insert(target, &mut || match rows.next_row() {
                            Ok(Some(_))
                                if cut_at > 0
                                    && received + 1 == cut_at
                                    && shared.faults.take_bulk_drop() =>
                            {
                                tracing::warn!(
                                    rows = received,
                                    "fault injected: connection dropped mid bulk load"
                                );
                                wire_error = Some(TdsError::Io(std::io::Error::new(
                                    std::io::ErrorKind::ConnectionAborted,
                                    "fault: connection dropped mid bulk load",
                                )));
                                Err(SqlError::new(4815, 1, 16, "connection dropped"))
                            }
                            Ok(r) => {
                                received += u64::from(r.is_some());
                                Ok(r)
                            }
                            Err(e) => {
                                let msg = e.to_string();
                                wire_error = Some(e);
                                Err(SqlError::new(4815, 1, 16, format!("Received an invalid column length from the bcp client: {msg}")))
                            }
                        });
                        if let Some(TdsError::Io(e)) = wire_error {
                            // The connection itself failed mid-load: nothing to answer.
                            return Err(TdsError::Io(e));
                        }
                        r
                    }
                    Err(TdsError::Io(e)) => return Err(TdsError::Io(e)),
                    Err(e) => Err(SqlError::new(
                        4815,
                        1,
                        16,
                        format!("Received an invalid bulk load stream: {e}"),
                    )),
                };
                // Read whatever the client still sends of this message.
                reader.drain()?;
                outcome
            }
        };
        let mut out = self.output(transport, shared);
        match result {
            Ok(n) => {
                let _ = crate::engine::Output::done(&mut out, Some(n), false);
            }
            Err(e) => {
                let _ = crate::engine::Output::error(&mut out, &e);
                let _ = crate::engine::Output::done(&mut out, None, true);
            }
        }
        out.finish(None)?;
        Ok(())
    }
}
