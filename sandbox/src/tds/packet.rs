//! TDS packet framing (MS-TDS 2.2.3): an 8-byte header (type, status,
//! big-endian length including the header, SPID, packet id, window) followed
//! by up to `packet_size - 8` payload bytes. A message is a run of packets of
//! one type, the last one carrying EOM.

use std::io::{self, Read, Write};

use super::{Result, TdsError};

pub const SQL_BATCH: u8 = 0x01;
pub const RPC: u8 = 0x03;
pub const TABULAR: u8 = 0x04;
pub const ATTENTION: u8 = 0x06;
pub const BULK_LOAD: u8 = 0x07;
pub const TRANSACTION_MANAGER: u8 = 0x0E;
pub const LOGIN7: u8 = 0x10;
pub const SSPI: u8 = 0x11;
pub const PRELOGIN: u8 = 0x12;

pub const STATUS_EOM: u8 = 0x01;
pub const STATUS_IGNORE: u8 = 0x02;
pub const STATUS_RESET_CONNECTION: u8 = 0x08;
pub const STATUS_RESET_SKIP_TRAN: u8 = 0x10;

pub const HEADER_LEN: usize = 8;
/// Smallest and largest packet sizes a client may negotiate.
pub const MIN_PACKET_SIZE: usize = 512;
pub const MAX_PACKET_SIZE: usize = 32767;
/// Packet size in force until LOGIN7 negotiates another.
pub const DEFAULT_PACKET_SIZE: usize = 4096;

/// One packet header as it arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketHeader {
    pub kind: u8,
    pub status: u8,
    /// Total packet length including the 8 header bytes.
    pub length: u16,
    pub spid: u16,
    pub packet_id: u8,
    pub window: u8,
}

impl PacketHeader {
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<Self> {
        let h = PacketHeader {
            kind: b[0],
            status: b[1],
            length: u16::from_be_bytes([b[2], b[3]]),
            spid: u16::from_be_bytes([b[4], b[5]]),
            packet_id: b[6],
            window: b[7],
        };
        let len = usize::from(h.length);
        if !(HEADER_LEN..=MAX_PACKET_SIZE).contains(&len) {
            return Err(TdsError::proto(format!("bad packet length {len}")));
        }
        Ok(h)
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let l = self.length.to_be_bytes();
        let s = self.spid.to_be_bytes();
        [
            self.kind,
            self.status,
            l[0],
            l[1],
            s[0],
            s[1],
            self.packet_id,
            self.window,
        ]
    }

    pub fn payload_len(&self) -> usize {
        usize::from(self.length) - HEADER_LEN
    }

    pub fn is_eom(&self) -> bool {
        self.status & STATUS_EOM != 0
    }
}

/// Reads `buf.len()` bytes; `Ok(false)` if the stream ended before the first
/// byte (a clean boundary), an error if it ended part-way.
fn read_exact_or_eof<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(TdsError::proto("connection closed inside a packet header")),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

/// Reads one packet header; `None` on a clean EOF before it.
pub fn read_packet_header<R: Read>(r: &mut R) -> Result<Option<PacketHeader>> {
    let mut b = [0u8; HEADER_LEN];
    if !read_exact_or_eof(r, &mut b)? {
        return Ok(None);
    }
    PacketHeader::parse(&b).map(Some)
}

fn read_payload<R: Read>(r: &mut R, n: usize, out: &mut Vec<u8>) -> Result<()> {
    let start = out.len();
    out.resize(start + n, 0);
    r.read_exact(&mut out[start..]).map_err(|e| {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            TdsError::proto("connection closed inside a packet")
        } else {
            TdsError::Io(e)
        }
    })
}

/// A reassembled client message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Packet type (SQL_BATCH, RPC, ...).
    pub kind: u8,
    /// The first packet asked for a connection reset (RESET_CONNECTION or
    /// RESET_SKIP_TRAN) before this request runs.
    pub status_reset: bool,
    /// RESET_SKIP_TRAN: reset but keep the open transaction.
    pub reset_skip_tran: bool,
    pub payload: Vec<u8>,
}

/// Reads packets until EOM and returns the joined payload.
///
/// `None` on a clean EOF between messages. A message whose last packet has
/// the IGNORE bit is a client-side cancel of a partly sent request
/// (MS-TDS 2.2.3.1.2): it is dropped and the next message is read.
pub fn read_message<R: Read>(r: &mut R, max_payload: usize) -> Result<Option<Message>> {
    'message: loop {
        let Some(first) = read_packet_header(r)? else {
            return Ok(None);
        };
        let mut msg = Message {
            kind: first.kind,
            status_reset: first.status & (STATUS_RESET_CONNECTION | STATUS_RESET_SKIP_TRAN) != 0,
            reset_skip_tran: first.status & STATUS_RESET_SKIP_TRAN != 0,
            payload: Vec::new(),
        };
        let mut h = first;
        loop {
            if h.kind != msg.kind {
                return Err(TdsError::proto(format!(
                    "packet type {:#04x} inside a message of type {:#04x}",
                    h.kind, msg.kind
                )));
            }
            if msg.payload.len() + h.payload_len() > max_payload {
                return Err(TdsError::proto(format!(
                    "message exceeds the {max_payload}-byte limit"
                )));
            }
            read_payload(r, h.payload_len(), &mut msg.payload)?;
            if h.is_eom() {
                if h.status & STATUS_IGNORE != 0 {
                    continue 'message;
                }
                return Ok(Some(msg));
            }
            h = read_packet_header(r)?
                .ok_or_else(|| TdsError::proto("connection closed inside a message"))?;
        }
    }
}

/// Streams the payload of one message, pulling packets lazily, so a bulk
/// load of any size needs only one packet of memory.
///
/// Constructed from the message's first header, which the caller has
/// already read with [`read_packet_header`] to learn the message type.
/// `read` returns 0 once the EOM packet is consumed. A continuation packet
/// of another type, a truncated packet, or a packet with the IGNORE bit
/// (client cancelled the message) surfaces as an `io::Error`
/// (`InvalidData`, `UnexpectedEof`, `Other` respectively); for IGNORE the
/// rest of the message is consumed first, so the connection stays usable.
pub struct MessageReader<'a, R: Read> {
    inner: &'a mut R,
    first: PacketHeader,
    /// Payload bytes left in the current packet.
    left: usize,
    /// Whether the current packet is the last.
    eom: bool,
    ignored: bool,
}

impl<'a, R: Read> MessageReader<'a, R> {
    pub fn new(inner: &'a mut R, first: PacketHeader) -> Self {
        MessageReader {
            inner,
            first,
            left: first.payload_len(),
            eom: first.is_eom(),
            ignored: first.is_eom() && first.status & STATUS_IGNORE != 0,
        }
    }

    /// The first packet's header (type and reset bits).
    pub fn header(&self) -> &PacketHeader {
        &self.first
    }

    /// True once the whole message, EOM included, has been consumed.
    pub fn is_finished(&self) -> bool {
        self.eom && self.left == 0
    }

    /// True if the client cancelled the message with the IGNORE bit.
    pub fn was_ignored(&self) -> bool {
        self.ignored
    }

    /// Discards the rest of the message so the connection stays in sync
    /// (e.g. after a bulk load failed part-way).
    pub fn drain(&mut self) -> Result<()> {
        let mut scratch = [0u8; 4096];
        while self.read(&mut scratch)? > 0 {}
        Ok(())
    }
}

impl<R: Read> Read for MessageReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if self.left == 0 {
                if self.eom {
                    if self.ignored {
                        return Err(io::Error::other("message cancelled by the client (IGNORE)"));
                    }
                    return Ok(0);
                }
                let h = match read_packet_header(self.inner) {
                    Ok(Some(h)) => h,
                    Ok(None) => {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed inside a message",
                        ))
                    }
                    Err(TdsError::Io(e)) => return Err(e),
                    Err(TdsError::Protocol(m)) => {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, m))
                    }
                };
                if h.kind != self.first.kind {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "packet type {:#04x} inside a message of type {:#04x}",
                            h.kind, self.first.kind
                        ),
                    ));
                }
                self.left = h.payload_len();
                self.eom = h.is_eom();
                self.ignored = self.eom && h.status & STATUS_IGNORE != 0;
                continue;
            }
            if self.ignored {
                // Consume the cancelled packet so the stream stays framed.
                let mut scratch = [0u8; 512];
                let k = self.left.min(scratch.len());
                self.inner.read_exact(&mut scratch[..k])?;
                self.left -= k;
                continue;
            }
            let k = buf.len().min(self.left);
            let n = self.inner.read(&mut buf[..k])?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a packet",
                ));
            }
            self.left -= n;
            return Ok(n);
        }
    }
}

/// Splits an outgoing message into packets of the negotiated size.
///
/// Full packets are written only once more data follows them, so the packet
/// carrying EOM is never empty unless the whole message is.
pub struct PacketWriter<W: Write> {
    inner: W,
    packet_size: usize,
    kind: u8,
    spid: u16,
    packet_id: u8,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

impl<W: Write> PacketWriter<W> {
    /// `packet_size` is clamped to 512..=32767.
    pub fn new(inner: W, packet_size: usize) -> Self {
        PacketWriter {
            inner,
            packet_size: packet_size.clamp(MIN_PACKET_SIZE, MAX_PACKET_SIZE),
            kind: TABULAR,
            spid: 0,
            packet_id: 1,
            buf: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Takes effect for the next packet written (clamped to 512..=32767).
    pub fn set_packet_size(&mut self, packet_size: usize) {
        self.packet_size = packet_size.clamp(MIN_PACKET_SIZE, MAX_PACKET_SIZE);
    }

    pub fn packet_size(&self) -> usize {
        self.packet_size
    }

    /// Packet type of what we send; TABULAR for every server response.
    pub fn set_kind(&mut self, kind: u8) {
        self.kind = kind;
    }

    /// SPID reported in every header (SQL Server puts the session id here).
    pub fn set_spid(&mut self, spid: u16) {
        self.spid = spid;
    }

    /// Bytes buffered and not yet sent.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Appends message bytes, sending every packet that is full and followed
    /// by more data.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(data);
        let cap = self.packet_size - HEADER_LEN;
        if self.buf.len() > cap {
            let mut off = 0;
            while self.buf.len() - off > cap {
                self.emit(off, off + cap, false)?;
                off += cap;
            }
            self.buf.drain(..off);
        }
        Ok(())
    }

    /// Sends the rest of the message with EOM (a header-only packet for an
    /// empty message) and flushes.
    pub fn finish_message(&mut self) -> Result<()> {
        let cap = self.packet_size - HEADER_LEN;
        let mut off = 0;
        // A packet size lowered since the last write may leave >1 packet.
        while self.buf.len() - off > cap {
            self.emit(off, off + cap, false)?;
            off += cap;
        }
        self.emit(off, self.buf.len(), true)?;
        self.buf.clear();
        self.inner.flush()?;
        Ok(())
    }

    fn emit(&mut self, from: usize, to: usize, eom: bool) -> Result<()> {
        let h = PacketHeader {
            kind: self.kind,
            status: if eom { STATUS_EOM } else { 0 },
            length: (to - from + HEADER_LEN) as u16,
            spid: self.spid,
            packet_id: self.packet_id,
            window: 0,
        };
        self.packet_id = self.packet_id.wrapping_add(1);
        self.scratch.clear();
        self.scratch.extend_from_slice(&h.encode());
        self.scratch.extend_from_slice(&self.buf[from..to]);
        self.inner.write_all(&self.scratch)?;
        Ok(())
    }

    pub fn get_ref(&self) -> &W {
        &self.inner
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Unsent buffered bytes are dropped.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

/// Frames a whole payload as one message of `kind` (handy for tests and the
/// PRELOGIN/TLS exchange).
pub fn encode_message(kind: u8, payload: &[u8], packet_size: usize) -> Vec<u8> {
    let mut w = PacketWriter::new(Vec::new(), packet_size);
    w.set_kind(kind);
    // Writing into a Vec cannot fail.
    let _ = w.write(payload);
    let _ = w.finish_message();
    w.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tds::testutil::XorShift;

    fn payload(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    #[test]
    fn split_and_reassemble_at_many_sizes() {
        for size in [512usize, 513, 777, 4096, 8000, 32767] {
            for n in [
                0usize,
                1,
                size - 9,
                size - 8,
                size - 7,
                3 * (size - 8),
                100_000,
            ] {
                let data = payload(n);
                let mut w = PacketWriter::new(Vec::new(), size);
                // Write in uneven pieces to exercise buffering.
                for chunk in data.chunks(1000) {
                    w.write(chunk).unwrap();
                }
                w.finish_message().unwrap();
                let wire = w.into_inner();
                // Every packet respects the size and only the last has EOM.
                let mut pos = 0;
                let mut packets = 0;
                while pos < wire.len() {
                    let h = PacketHeader::parse(wire[pos..pos + 8].try_into().unwrap()).unwrap();
                    assert!(usize::from(h.length) <= size);
                    assert_eq!(h.kind, TABULAR);
                    pos += usize::from(h.length);
                    packets += 1;
                    assert_eq!(h.is_eom(), pos == wire.len());
                    if !h.is_eom() {
                        assert_eq!(usize::from(h.length), size);
                    }
                }
                let expect = if n == 0 { 1 } else { n.div_ceil(size - 8) };
                assert_eq!(packets, expect, "size {size} n {n}");
                let msg = read_message(&mut &wire[..], 1 << 20).unwrap().unwrap();
                assert_eq!(msg.payload, data);
                // Streaming reader sees the same bytes.
                let mut r = &wire[..];
                let h = read_packet_header(&mut r).unwrap().unwrap();
                let mut mr = MessageReader::new(&mut r, h);
                let mut got = Vec::new();
                mr.read_to_end(&mut got).unwrap();
                assert_eq!(got, data);
                assert!(mr.is_finished());
            }
        }
    }

    #[test]
    fn packet_size_change_mid_message() {
        let data = payload(10_000);
        let mut w = PacketWriter::new(Vec::new(), 4096);
        w.write(&data[..4000]).unwrap();
        w.set_packet_size(512);
        w.write(&data[4000..]).unwrap();
        w.finish_message().unwrap();
        let wire = w.into_inner();
        let msg = read_message(&mut &wire[..], 1 << 20).unwrap().unwrap();
        assert_eq!(msg.payload, data);
    }

    #[test]
    fn read_message_errors() {
        // Clean EOF.
        assert!(read_message(&mut &[][..], 100).unwrap().is_none());
        // Truncated header.
        assert!(read_message(&mut &[1u8, 1, 0][..], 100).is_err());
        // Length < 8 and > 32767.
        assert!(read_message(&mut &[1u8, 1, 0, 7, 0, 0, 0, 0][..], 100).is_err());
        assert!(read_message(&mut &[1u8, 1, 0x80, 0, 0, 0, 0, 0][..], 100).is_err());
        // Truncated payload.
        assert!(read_message(&mut &[1u8, 1, 0, 10, 0, 0, 0, 0, 1][..], 100).is_err());
        // Mixed types.
        let mut wire = vec![1u8, 0, 0, 9, 0, 0, 0, 0, 1];
        wire.extend_from_slice(&[3u8, 1, 0, 9, 0, 0, 0, 0, 1]);
        assert!(read_message(&mut &wire[..], 100).is_err());
        // Over the limit.
        let wire = encode_message(SQL_BATCH, &payload(300), 512);
        assert!(read_message(&mut &wire[..], 299).is_err());
        // EOF between packets of one message.
        let wire = vec![1u8, 0, 0, 9, 0, 0, 0, 0, 1];
        assert!(read_message(&mut &wire[..], 100).is_err());
    }

    #[test]
    fn reset_and_ignore_bits() {
        let mut wire = vec![RPC, STATUS_EOM | STATUS_IGNORE, 0, 9, 0, 0, 0, 0, 9];
        wire.extend_from_slice(&[
            SQL_BATCH,
            STATUS_EOM | STATUS_RESET_CONNECTION,
            0,
            10,
            0,
            0,
            1,
            0,
            7,
            8,
        ]);
        let msg = read_message(&mut &wire[..], 100).unwrap().unwrap();
        assert_eq!(msg.kind, SQL_BATCH);
        assert!(msg.status_reset);
        assert!(!msg.reset_skip_tran);
        assert_eq!(msg.payload, vec![7, 8]);
    }

    #[test]
    fn message_reader_rejects_type_change_and_truncation() {
        let mut wire = vec![BULK_LOAD, 0, 0, 9, 0, 0, 0, 0, 1];
        wire.extend_from_slice(&[RPC, 1, 0, 9, 0, 0, 0, 0, 1]);
        let mut r = &wire[..];
        let h = read_packet_header(&mut r).unwrap().unwrap();
        let mut mr = MessageReader::new(&mut r, h);
        let mut v = Vec::new();
        assert!(mr.read_to_end(&mut v).is_err());

        let wire = vec![BULK_LOAD, 0, 0, 12, 0, 0, 0, 0, 1];
        let mut r = &wire[..];
        let h = read_packet_header(&mut r).unwrap().unwrap();
        let mut mr = MessageReader::new(&mut r, h);
        assert!(mr.drain().is_err());
    }

    #[test]
    fn random_input_never_panics() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..5000 {
            let mut b = rng.bytes(200);
            if b.len() > 4 && rng.next() & 1 == 0 {
                // Make the length field plausible more often.
                b[2] = 0;
                b[3] = (rng.next() % 64) as u8;
            }
            let _ = read_message(&mut &b[..], 1000);
            let mut r = &b[..];
            if let Ok(Some(h)) = read_packet_header(&mut r) {
                let mut mr = MessageReader::new(&mut r, h);
                let _ = mr.drain();
            }
        }
    }
}
