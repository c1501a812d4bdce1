//! Turns engine results into TDS tokens and packets: DONE bookkeeping (MORE
//! on every DONE but the last), ATTENTION checks while streaming, and the
//! protocol faults (dropped connections, delayed packets).

use std::io::{self, Read};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::engine::{EnvChange, Output, OutputError, SqlError};
use crate::tds::packet::{self, PacketWriter};
use crate::tds::tokens::{self, ServerMessage};
use crate::tds::transport::Transport;
use crate::types::{ColumnMeta, Value};

use super::Faults;

pub(super) fn server_message(e: &SqlError, procedure: &str) -> ServerMessage {
    ServerMessage {
        number: e.number,
        state: e.state,
        class: e.class,
        message: e.message.clone(),
        server: "bridge-sandbox".into(),
        procedure: procedure.into(),
        line: 1,
    }
}

#[derive(Clone, Copy)]
struct PendingDone {
    status: u16,
    cur_cmd: u16,
    rows: u64,
}

/// Writes one response message. Tokens collect in `buf` and go out a
/// packet at a time.
pub(super) struct TdsOutput<'a> {
    writer: PacketWriter<&'a mut Transport>,
    buf: Vec<u8>,
    pending: Option<PendingDone>,
    /// Inside an RPC: statements end with DONEINPROC.
    pub in_proc: bool,
    columns: Vec<ColumnMeta>,
    rows_in_result: u64,
    faults: &'a Faults,
    in_transaction: bool,
    /// Set once the client's ATTENTION has been read.
    pub attention: bool,
}

impl<'a> TdsOutput<'a> {
    pub fn new(
        transport: &'a mut Transport,
        packet_size: usize,
        spid: u16,
        faults: &'a Faults,
    ) -> Self {
        let mut writer = PacketWriter::new(transport, packet_size);
        writer.set_spid(spid);
        TdsOutput {
            writer,
            buf: Vec::with_capacity(packet_size * 2),
            pending: None,
            in_proc: false,
            columns: Vec::new(),
            rows_in_result: 0,
            faults,
            in_transaction: false,
            attention: false,
        }
    }

    pub fn set_in_transaction(&mut self, on: bool) {
        self.in_transaction = on;
    }

    /// Emits a DONE that was held back, now known not to be the last.
    fn flush_pending(&mut self) {
        if let Some(p) = self.pending.take() {
            self.write_done(p.status | tokens::DONE_MORE, p.cur_cmd, p.rows);
        }
    }

    fn write_done(&mut self, status: u16, cur_cmd: u16, rows: u64) {
        let status = if self.in_transaction {
            status | tokens::DONE_INXACT
        } else {
            status
        };
        if self.in_proc {
            tokens::done_in_proc(&mut self.buf, status, cur_cmd, rows);
        } else {
            tokens::done(&mut self.buf, status, cur_cmd, rows);
        }
    }

    /// Raw tokens (LOGINACK, RETURNSTATUS, ...), after any held DONE.
    pub fn tokens(&mut self, f: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        self.flush_pending();
        f(&mut self.buf);
        self.send_full_packets()
    }

    /// Sends whole packets from the buffer; keeps the tail for later.
    fn send_full_packets(&mut self) -> io::Result<()> {
        let size = self.writer.packet_size() - packet::HEADER_LEN;
        if self.buf.len() < size * 4 {
            return Ok(());
        }
        let whole = self.buf.len() / size * size;
        self.delay();
        self.writer.write(&self.buf[..whole]).map_err(to_io)?;
        self.buf.drain(..whole);
        Ok(())
    }

    fn delay(&self) {
        let ms = self.faults.packet_delay_ms.load(Ordering::Relaxed);
        if ms > 0 {
            std::thread::sleep(Duration::from_millis(ms));
        }
    }

    /// Checks for an ATTENTION (cancel) from the client.
    fn check_attention(&mut self) -> Result<(), OutputError> {
        let t = self.writer.get_mut();
        if t.input_pending()? {
            let mut header = [0u8; packet::HEADER_LEN];
            t.read_exact(&mut header)?;
            let h = packet::PacketHeader::parse(&header)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let mut rest = vec![0u8; h.payload_len()];
            t.read_exact(&mut rest)?;
            if h.kind == packet::ATTENTION {
                self.attention = true;
                return Err(OutputError::Cancelled);
            }
            return Err(OutputError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "client sent a request while a response was in progress",
            )));
        }
        Ok(())
    }

    /// Ends the response: the last DONE without MORE, or the attention ack.
    pub fn finish(mut self, final_done: Option<(u16, u64)>) -> io::Result<()> {
        if self.attention {
            self.pending = None;
            if self.in_proc {
                tokens::done_proc(&mut self.buf, tokens::DONE_ATTN, 0, 0);
            } else {
                tokens::done(&mut self.buf, tokens::DONE_ATTN, 0, 0);
            }
        } else if let Some((status, rows)) = final_done {
            self.flush_pending();
            tokens::done_proc(&mut self.buf, status, 0, rows);
        } else {
            match self.pending.take() {
                Some(p) => self.write_done(p.status, p.cur_cmd, p.rows),
                None => tokens::done(&mut self.buf, 0, 0, 0),
            }
        }
        self.delay();
        self.writer.write(&self.buf).map_err(to_io)?;
        self.writer.finish_message().map_err(to_io)?;
        std::io::Write::flush(self.writer.get_mut())?;
        Ok(())
    }
}

fn to_io(e: crate::tds::TdsError) -> io::Error {
    match e {
        crate::tds::TdsError::Io(e) => e,
        other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
    }
}

impl Output for TdsOutput<'_> {
    fn columns(&mut self, cols: &[ColumnMeta]) -> Result<(), OutputError> {
        self.flush_pending();
        tokens::col_metadata(&mut self.buf, cols).map_err(|e| OutputError::Io(to_io(e)))?;
        self.columns = cols.to_vec();
        self.rows_in_result = 0;
        Ok(())
    }

    fn row(&mut self, values: &[Value]) -> Result<(), OutputError> {
        tokens::row(&mut self.buf, &self.columns, values).map_err(|e| OutputError::Io(to_io(e)))?;
        self.rows_in_result += 1;
        let drop_after = self.faults.drop_after_rows.load(Ordering::Relaxed);
        if drop_after > 0 && self.rows_in_result == drop_after && self.faults.take_drop() {
            // Send what we have, then cut the connection mid-result.
            let _ = self.writer.write(&self.buf);
            let _ = self
                .writer
                .get_mut()
                .tcp()
                .shutdown(std::net::Shutdown::Both);
            return Err(OutputError::Io(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "fault injection: connection dropped mid-result",
            )));
        }
        let before = self.buf.len();
        self.send_full_packets()?;
        if self.buf.len() < before {
            self.check_attention()?;
        }
        Ok(())
    }

    fn done(&mut self, rows: Option<u64>, error: bool) -> Result<(), OutputError> {
        self.flush_pending();
        let mut status = 0;
        if rows.is_some() {
            status |= tokens::DONE_COUNT;
        }
        if error {
            status |= tokens::DONE_ERROR;
        }
        self.pending = Some(PendingDone {
            status,
            cur_cmd: if self.columns.is_empty() {
                0
            } else {
                tokens::CMD_SELECT
            },
            rows: rows.unwrap_or(0),
        });
        self.columns.clear();
        Ok(())
    }

    fn error(&mut self, e: &SqlError) -> Result<(), OutputError> {
        self.flush_pending();
        tokens::error(&mut self.buf, &server_message(e, ""));
        Ok(())
    }

    fn info(&mut self, e: &SqlError) -> Result<(), OutputError> {
        self.flush_pending();
        tokens::info(&mut self.buf, &server_message(e, ""));
        Ok(())
    }

    fn return_status(&mut self, status: i32) -> Result<(), OutputError> {
        self.flush_pending();
        tokens::return_status(&mut self.buf, status);
        Ok(())
    }

    fn env(&mut self, change: EnvChange) -> Result<(), OutputError> {
        self.flush_pending();
        match change {
            EnvChange::Database { old, new } => {
                tokens::env_database(&mut self.buf, &new, &old);
                tokens::info(
                    &mut self.buf,
                    &ServerMessage {
                        number: 5701,
                        state: 2,
                        class: 0,
                        message: format!("Changed database context to '{new}'."),
                        server: "bridge-sandbox".into(),
                        procedure: String::new(),
                        line: 1,
                    },
                );
            }
            EnvChange::Collation(c) => tokens::env_collation(&mut self.buf, &c.to_tds()),
            EnvChange::BeginTran(d) => {
                self.in_transaction = true;
                tokens::env_begin_tran(&mut self.buf, d);
            }
            EnvChange::CommitTran(d) => {
                self.in_transaction = false;
                tokens::env_commit_tran(&mut self.buf, d);
            }
            EnvChange::RollbackTran(d) => {
                self.in_transaction = false;
                tokens::env_rollback_tran(&mut self.buf, d);
            }
        }
        Ok(())
    }
}
