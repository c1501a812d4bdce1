//! Bounds-checked byte readers shared by the request parsers (which see a
//! whole message in memory) and the bulk-load reader (which streams).

use std::io::Read;

use super::{Result, TdsError};

/// Largest single value we accept (SQL Server's own (max) limit is 2 GiB - 1).
pub(crate) const MAX_VALUE_BYTES: usize = i32::MAX as usize;

fn eof() -> TdsError {
    TdsError::proto("unexpected end of data")
}

/// A source of bytes that fails cleanly on truncation.
pub(crate) trait Source {
    /// Fills `buf` completely or fails with a protocol error.
    fn read_into(&mut self, buf: &mut [u8]) -> Result<()>;

    /// Reads exactly `n` bytes; implementations must not allocate `n` up
    /// front unless `n` bytes are known to be available.
    fn read_vec(&mut self, n: usize) -> Result<Vec<u8>>;

    /// Reads one byte, or `None` at a clean end of input.
    fn try_u8(&mut self) -> Result<Option<u8>>;

    fn skip(&mut self, n: usize) -> Result<()> {
        let mut left = n;
        let mut scratch = [0u8; 256];
        while left > 0 {
            let k = left.min(scratch.len());
            self.read_into(&mut scratch[..k])?;
            left -= k;
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8> {
        let mut b = [0u8; 1];
        self.read_into(&mut b)?;
        Ok(b[0])
    }

    fn u16le(&mut self) -> Result<u16> {
        let mut b = [0u8; 2];
        self.read_into(&mut b)?;
        Ok(u16::from_le_bytes(b))
    }

    fn u32le(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        self.read_into(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    fn u64le(&mut self) -> Result<u64> {
        let mut b = [0u8; 8];
        self.read_into(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// B_VARCHAR: a byte count of UTF-16 code units, then the units.
    fn b_varchar(&mut self) -> Result<String> {
        let n = usize::from(self.u8()?);
        let v = self.read_vec(n * 2)?;
        Ok(super::utf16le_to_string(&v))
    }

    /// US_VARCHAR: a u16 count of UTF-16 code units, then the units.
    fn us_varchar(&mut self) -> Result<String> {
        let n = usize::from(self.u16le()?);
        let v = self.read_vec(n * 2)?;
        Ok(super::utf16le_to_string(&v))
    }
}

/// An in-memory message payload.
pub(crate) struct SliceSource<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> SliceSource<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        SliceSource { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(eof());
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

impl Source for SliceSource<'_> {
    fn read_into(&mut self, buf: &mut [u8]) -> Result<()> {
        let s = self.take(buf.len())?;
        buf.copy_from_slice(s);
        Ok(())
    }

    fn read_vec(&mut self, n: usize) -> Result<Vec<u8>> {
        Ok(self.take(n)?.to_vec())
    }

    fn try_u8(&mut self) -> Result<Option<u8>> {
        if self.remaining() == 0 {
            return Ok(None);
        }
        Ok(Some(self.take(1)?[0]))
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.take(n).map(|_| ())
    }
}

/// A streamed payload (bulk load). Buffers reads so token-by-token parsing
/// does not turn into one syscall per byte.
pub(crate) struct StreamSource<R: Read> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    end: usize,
}

const STREAM_BUF: usize = 64 * 1024;

impl<R: Read> StreamSource<R> {
    pub fn new(inner: R) -> Self {
        StreamSource {
            inner,
            buf: vec![0u8; STREAM_BUF],
            pos: 0,
            end: 0,
        }
    }

    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Refills the buffer; false at end of input.
    fn fill(&mut self) -> Result<bool> {
        if self.pos < self.end {
            return Ok(true);
        }
        loop {
            match self.inner.read(&mut self.buf) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.pos = 0;
                    self.end = n;
                    return Ok(true);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl<R: Read> Source for StreamSource<R> {
    fn read_into(&mut self, out: &mut [u8]) -> Result<()> {
        let mut done = 0;
        while done < out.len() {
            if !self.fill()? {
                return Err(eof());
            }
            let k = (self.end - self.pos).min(out.len() - done);
            out[done..done + k].copy_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
            done += k;
        }
        Ok(())
    }

    fn read_vec(&mut self, n: usize) -> Result<Vec<u8>> {
        if n > MAX_VALUE_BYTES {
            return Err(TdsError::proto(format!("value of {n} bytes is too large")));
        }
        // Grow with the data that actually arrives, never from the length field.
        let mut v = Vec::with_capacity(n.min(STREAM_BUF));
        while v.len() < n {
            if !self.fill()? {
                return Err(eof());
            }
            let k = (self.end - self.pos).min(n - v.len());
            v.extend_from_slice(&self.buf[self.pos..self.pos + k]);
            self.pos += k;
        }
        Ok(v)
    }

    fn try_u8(&mut self) -> Result<Option<u8>> {
        if !self.fill()? {
            return Ok(None);
        }
        let b = self.buf[self.pos];
        self.pos += 1;
        Ok(Some(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_source_bounds() {
        let mut s = SliceSource::new(&[1, 2, 3]);
        assert_eq!(s.u16le().unwrap(), 0x0201);
        assert!(s.u16le().is_err());
        assert_eq!(s.u8().unwrap(), 3);
        assert!(s.read_vec(usize::MAX).is_err());
        assert_eq!(s.try_u8().unwrap(), None);
    }

    #[test]
    fn stream_source_reads_across_chunks() {
        let data: Vec<u8> = (0..200_000u32).map(|i| i as u8).collect();
        let mut s = StreamSource::new(&data[..]);
        s.skip(3).unwrap();
        let v = s.read_vec(150_000).unwrap();
        assert_eq!(v[0], 3);
        assert_eq!(v.len(), 150_000);
        assert!(s.read_vec(100_000).is_err());
        // A huge claimed length on a short stream fails without allocating it.
        let mut s = StreamSource::new(&data[..10]);
        assert!(s.read_vec(1 << 30).is_err());
    }
}
