//! A connection that is neither serving a request nor being written to is closed after a
//! while (by default [`IDLE`]; `serve --idle-seconds`). Reads alone do not keep it open —
//! a client trickling a request's headers a byte at a time is still cut — while a request
//! being served (a historical fold, a batch waiting for the writer) never is, and a live
//! feed, written to every few seconds, stays open. (hyper's own header-read timeout cost
//! about a millisecond per request here: measured, so not used.)

use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Longest a connection may sit with no request in progress and nothing written.
pub const IDLE: Duration = Duration::from_secs(30);

/// Requests in progress on one connection (the service counts them).
#[derive(Clone, Default)]
pub struct Busy(Arc<AtomicUsize>);

/// Held while a request is served.
pub struct Serving(Busy);

impl Busy {
    /// A request starts; it ends when the guard is dropped.
    pub fn start(&self) -> Serving {
        self.0.fetch_add(1, Ordering::SeqCst);
        Serving(self.clone())
    }

    fn any(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// `io`, closed after `limit` with no request in progress and nothing written.
pub struct Idle<T> {
    io: T,
    limit: Duration,
    busy: Busy,
    /// The last activity: the timer below is moved to `last + limit` only when it fires
    /// (moving it at every write cost measurably).
    last: Instant,
    deadline: Pin<Box<Sleep>>,
}

impl<T> Idle<T> {
    /// Watch `io`, whose requests `busy` counts.
    pub fn new(io: T, limit: Duration, busy: Busy) -> Idle<T> {
        Idle {
            io,
            limit,
            busy,
            last: Instant::now(),
            deadline: Box::pin(tokio::time::sleep(limit)),
        }
    }

    fn active(&mut self) {
        self.last = Instant::now();
    }

    /// Whether the connection has been idle too long (and, if not, the task is woken when it
    /// would have been). A request in progress counts as activity.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        // The timer stays armed (its waker registered) while a request is served, too: after
        // the answer hyper may wait on the socket without polling it again, and only the
        // timer's wake-up brings it back here to close an idle connection.
        loop {
            if self.busy.any() {
                self.active();
            }
            if self.deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last + self.limit;
            if !self.busy.any() && Instant::now() >= due {
                return true;
            }
            let next = due.max(Instant::now() + self.limit / 2);
            self.deadline.as_mut().reset(next);
        }
    }
}

impl<T> Idle<T> {
    /// A write's outcome: bytes written are activity; a write that waits may find the
    /// connection idle too long.
    fn wrote(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<std::io::Result<usize>>,
    ) -> Poll<std::io::Result<usize>> {
        match written {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.active();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(silent())),
            other => other,
        }
    }
}

fn silent() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "the connection was idle too long",
    )
}

impl<T: AsyncRead + Unpin> AsyncRead for Idle<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        // (bytes read are not activity: a trickled request must still arrive in time)
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(silent())),
            other => other,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Idle<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, data);
        self.wrote(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.wrote(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
