//! What a read holds while it is answered, and for how long: a principal's share of the
//! read turns, and a bounded number of answers in the sending — each let go when its last
//! piece is handed to the connection or its deadline passes, whichever is first. Without these, one token's
//! readers that take their answers slowly keep every rendered answer in memory, and one
//! token's forty reads queue everyone else behind them.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use hyper::body::{Frame, SizeHint};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reads one principal has under way at once (waiting, rendering or being sent); more wait
/// behind them, not in front of other principals.
pub const PER_PRINCIPAL: usize = 2;
/// Answers being sent at once, all principals together; more wait before they are read.
/// With [`crate::MAX_ANSWER_BYTES`] this bounds what rendered answers hold (tens of MiB
/// each at most).
pub const SENDING: usize = 8;

/// The turns of every principal, and the answers in the sending.
#[derive(Debug)]
pub struct Turns {
    principals: Mutex<HashMap<String, Arc<Semaphore>>>,
    sending: Arc<Semaphore>,
}

impl Default for Turns {
    fn default() -> Turns {
        Turns {
            principals: Mutex::new(HashMap::new()),
            sending: Arc::new(Semaphore::new(SENDING)),
        }
    }
}

/// What one read holds until its answer is sent.
#[derive(Debug)]
pub struct Turn {
    _principal: OwnedSemaphorePermit,
    _sending: OwnedSemaphorePermit,
}

impl Turns {
    /// Wait for a turn of `principal`'s share, then for a place in the sending.
    pub async fn take(&self, principal: &str) -> Option<Turn> {
        let share = {
            let mut map = self.principals.lock().unwrap_or_else(|p| p.into_inner());
            // (shares nobody holds or waits for are let go, so the map stays small)
            map.retain(|_, s| Arc::strong_count(s) > 1 || s.available_permits() < PER_PRINCIPAL);
            map.entry(principal.to_owned())
                .or_insert_with(|| Arc::new(Semaphore::new(PER_PRINCIPAL)))
                .clone()
        };
        let principal = share.acquire_owned().await.ok()?;
        let sending = self.sending.clone().acquire_owned().await.ok()?;
        Some(Turn {
            _principal: principal,
            _sending: sending,
        })
    }
}

/// Pieces an answer is handed to its connection in: the connection takes the next only when
/// it has sent most of those before, so the turn is held while the answer is being sent.
const PIECE: usize = 64 << 10;

/// `answer`, handed out in pieces, holding `turn` until the last is taken or `deadline`
/// passes — then the answer fails (the connection is closed), never ends short as if
/// whole. (A client that takes nothing at all is cut by the idle rule, `idle.rs`.)
pub fn held(answer: Bytes, turn: Turn, deadline: std::time::Duration) -> Body {
    Body::new(Held {
        rest: answer,
        turn: Some(turn),
        deadline: Box::pin(tokio::time::sleep(deadline)),
    })
}

struct Held {
    rest: Bytes,
    turn: Option<Turn>,
    deadline: Pin<Box<tokio::time::Sleep>>,
}

impl hyper::body::Body for Held {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        if self.turn.is_some() && self.deadline.as_mut().poll(cx).is_ready() {
            self.turn = None;
            self.rest = Bytes::new();
            return Poll::Ready(Some(Err(axum::Error::new(
                "the answer was not taken before its deadline",
            ))));
        }
        if self.rest.is_empty() {
            self.turn = None;
            return Poll::Ready(None);
        }
        let n = self.rest.len().min(PIECE);
        let piece = self.rest.split_to(n);
        Poll::Ready(Some(Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}
