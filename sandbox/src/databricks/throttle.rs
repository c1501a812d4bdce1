//! The "slow link" fault: request and response bodies of the Files API,
//! pre-signed upload and download URLs and result links move at a set
//! number of bytes per second, each in small pieces (a twentieth of a
//! second's worth) so the bytes keep flowing. A client with a total timeout
//! shorter than the transfer fails; one with connect and read timeouts
//! finishes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The paths whose bodies the fault slows: file transfers, not API calls.
pub fn applies_to(path: &str) -> bool {
    path.starts_with("/api/2.0/fs/files/")
        || path.starts_with("/sandbox/presigned/")
        || path.starts_with("/sandbox/results/")
}

struct Throttled<S> {
    inner: S,
    bytes_per_sec: u64,
    /// Largest piece handed on at once.
    piece: usize,
    start: Option<Instant>,
    sent: u64,
    pending: Bytes,
    sleep: Option<Pin<Box<Sleep>>>,
    done: bool,
}

impl<S, E> Stream for Throttled<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if let Some(sleep) = self.sleep.as_mut() {
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => self.sleep = None,
                    Poll::Pending => return Poll::Pending,
                }
            }
            if self.pending.is_empty() {
                if self.done {
                    return Poll::Ready(None);
                }
                match Pin::new(&mut self.inner).poll_next(cx) {
                    Poll::Ready(None) => {
                        self.done = true;
                        return Poll::Ready(None);
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e.into()))),
                    Poll::Ready(Some(Ok(b))) => {
                        self.pending = b;
                        continue;
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            let start = *self.start.get_or_insert_with(Instant::now);
            // The next piece leaves when the bytes before it have had their time.
            let due = start + Duration::from_secs_f64(self.sent as f64 / self.bytes_per_sec as f64);
            if due > Instant::now() {
                self.sleep = Some(Box::pin(tokio::time::sleep_until(due)));
                continue;
            }
            let n = self.pending.len().min(self.piece);
            let piece = self.pending.split_to(n);
            self.sent += n as u64;
            return Poll::Ready(Some(Ok(piece)));
        }
    }
}

/// A body streaming `body` at `bytes_per_sec`.
pub fn body(body: Body, bytes_per_sec: u64) -> Body {
    let rate = bytes_per_sec.max(1);
    Body::from_stream(Throttled {
        inner: body.into_data_stream(),
        bytes_per_sec: rate,
        piece: (rate / 20).clamp(1, 256 * 1024) as usize,
        start: None,
        sent: 0,
        pending: Bytes::new(),
        sleep: None,
        done: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    #[tokio::test]
    async fn paces_a_body() {
        let data = vec![7u8; 40_000];
        let slow = body(Body::from(data.clone()), 100_000);
        let started = std::time::Instant::now();
        let mut got = Vec::new();
        let mut pieces = 0;
        let mut s = slow.into_data_stream();
        while let Some(b) = s.next().await {
            got.extend_from_slice(&b.expect("chunk"));
            pieces += 1;
        }
        let took = started.elapsed();
        assert_eq!(got, data);
        // 40 kB at 100 kB/s: the last piece leaves after ~0.35 s.
        assert!(took >= Duration::from_millis(300), "{took:?}");
        assert!(pieces >= 8, "{pieces}");
    }
}
