//! Response bodies that can be cut after N bytes (the "connection cut
//! mid-download" fault): the stream ends with an error, so the server
//! aborts the connection and the client sees a short body.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use futures_util::Stream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

struct Cut<S> {
    inner: S,
    remaining: Option<u64>,
    done: bool,
}

impl<S, E> Stream for Cut<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: Into<BoxError>,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.remaining == Some(0) {
            self.done = true;
            return Poll::Ready(Some(
                Err("connection cut by sandbox fault injection".into()),
            ));
        }
        match Pin::new(&mut self.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(mut b))) => {
                if let Some(rem) = self.remaining {
                    if b.len() as u64 > rem {
                        b.truncate(rem as usize);
                    }
                    self.remaining = Some(rem - b.len() as u64);
                }
                Poll::Ready(Some(Ok(b)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A body streaming `inner`, cut after `cut_after` bytes when set.
pub fn body<S, E>(inner: S, cut_after: Option<u64>) -> Body
where
    S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
    E: Into<BoxError> + 'static,
{
    Body::from_stream(Cut {
        inner,
        remaining: cut_after,
        done: false,
    })
}

/// A body of bytes already in memory, cut the same way.
pub fn bytes_body(data: Vec<u8>, cut_after: Option<u64>) -> Body {
    let chunks: Vec<Result<Bytes, std::io::Error>> = data
        .chunks(64 * 1024)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    body(futures_util::stream::iter(chunks), cut_after)
}
