//! The live feed, `GET /v1/events?from=SEQ` (Server-Sent Events): every event from SEQ on,
//! then each new one as soon as its group is durable and published. Each event is `id:` its
//! sequence, `event:` its type and `data:` its export line — the raw envelope with its hash,
//! so a follower checks the chain itself rather than trusting the server.

use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event as Sse, KeepAlive};
use eduledger_ledger::Ledger;
use eduledger_store::ExportLine;
use tokio::sync::{mpsc, watch};

/// Events read from the log at a time while catching up.
pub const CHUNK: u64 = 256;
/// A quiet feed asks this often whether its reader may still read.
pub const RECHECK: Duration = Duration::from_secs(5);
/// A comment this often keeps proxies from closing a quiet stream.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Where a subscriber starts: `Last-Event-ID` (the last one it saw) wins over `from`.
pub fn start(from: Option<u64>, last_event_id: Option<&str>) -> Result<u64, String> {
    match last_event_id {
        Some(id) => id
            .trim()
            .parse::<u64>()
            .map(|seen| seen.saturating_add(1))
            .map_err(|_| {
                format!(
                    "Last-Event-ID: {id:?} is not a sequence number; it names the last event seen"
                )
            }),
        None => Ok(from.unwrap_or(1).max(1)),
    }
}

/// The export lines of the events from `from` to `upto` in `view` — (sequence, type,
/// line), each exactly as `eduledger export` writes it — vouched for by the chain first.
pub fn lines(view: &Ledger, from: u64, upto: u64) -> Result<Vec<(u64, String, String)>, String> {
    view.vouch(from..=upto).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity((upto - from + 1) as usize);
    for (expected, item) in (from..=upto).zip(view.store().raw_from(from)) {
        let (env, raw) = item.map_err(|e| e.to_string())?;
        if env.seq != expected {
            return Err(format!("sequence {expected} is missing from the log"));
        }
        let event =
            eduledger_domain::Event::decode(&env.event_type, env.schema_version, &env.payload)
                .ok()
                .map(|e| e.to_json());
        let line = serde_json::to_string(&ExportLine::from_envelope(&env, &raw, event))
            .map_err(|e| e.to_string())?;
        out.push((env.seq, env.event_type, line));
    }
    if out.len() as u64 != upto - from + 1 {
        return Err(format!("the log ends before {upto}"));
    }
    Ok(out)
}

/// The SSE events for sequences `from` to `upto`, each named by its type if `named`.
fn read(view: &Ledger, from: u64, upto: u64, named: bool) -> Result<Vec<Sse>, String> {
    Ok(lines(view, from, upto)?
        .into_iter()
        .map(|(seq, kind, line)| {
            let e = Sse::default().id(seq.to_string()).data(line);
            if named { e.event(kind) } else { e }
        })
        .collect())
}

/// Whether a feed's reader may still read. Asked before every event sent, it looks again
/// when something that could end the reader's access has happened — `changed` moves (a
/// session closed, a new head published: a revocation is an event) — and, since access also
/// ends with time alone (a session expires, a revocation recorded for a later day takes
/// effect), whenever its last look is older than `every` ([`RECHECK`]), even in the middle of
/// a long catch-up. Once refused, always refused.
pub struct Access {
    changed: Arc<dyn Fn() -> (u64, u64) + Send + Sync>,
    check: Arc<dyn Fn() -> bool + Send + Sync>,
    every: Duration,
    seen: Option<((u64, u64), std::time::Instant)>,
    allowed: bool,
}

impl Access {
    /// A reader's access, checked by `check` whenever `changed` moves.
    pub fn new(
        changed: Arc<dyn Fn() -> (u64, u64) + Send + Sync>,
        check: Arc<dyn Fn() -> bool + Send + Sync>,
        every: Duration,
    ) -> Access {
        Access {
            changed,
            check,
            every,
            seen: None,
            allowed: true,
        }
    }

    /// Another gate on the same reader (the stream's side of the channel).
    pub fn twin(&self) -> Access {
        Access::new(self.changed.clone(), self.check.clone(), self.every)
    }

    /// Whether the reader may still read.
    pub fn allowed(&mut self) -> bool {
        if !self.allowed {
            return false;
        }
        let moved = (self.changed)();
        let fresh = self
            .seen
            .is_some_and(|(seen, at)| seen == moved && at.elapsed() < self.every);
        if !fresh {
            self.seen = Some((moved, std::time::Instant::now()));
            self.allowed = (self.check)();
        }
        self.allowed
    }

    /// Look again whatever has changed.
    pub fn recheck(&mut self) -> bool {
        self.seen = None;
        self.allowed()
    }
}

/// Feed `tx` from `from` on: catch up from the published view, then follow `heads` until
/// the subscriber goes, its access ends or the server stops.
pub async fn run(
    published: Arc<arc_swap::ArcSwap<Ledger>>,
    mut heads: watch::Receiver<u64>,
    mut stopping: watch::Receiver<bool>,
    mut next: u64,
    named: bool,
    mut access: Access,
    tx: mpsc::Sender<Sse>,
) {
    loop {
        if !access.allowed() {
            return;
        }
        let view = published.load_full();
        let head = view.state().head();
        while next <= head {
            let upto = head.min(next.saturating_add(CHUNK - 1));
            let v = view.clone();
            let chunk = tokio::task::spawn_blocking(move || read(&v, next, upto, named)).await;
            let events = match chunk {
                Ok(Ok(events)) => events,
                Ok(Err(why)) => {
                    let _ = tx.send(Sse::default().event("error").data(why)).await;
                    return;
                }
                Err(_) => return,
            };
            for e in events {
                if !access.allowed() {
                    return;
                }
                // (a subscriber that stops reading holds no one up when the server stops)
                tokio::select! {
                    sent = tx.send(e) => if sent.is_err() { return },
                    _ = stopping.wait_for(|s| *s) => return,
                }
            }
            next = upto + 1;
        }
        // (woken now and then to ask `still` again: a reader logged out ends even on a quiet
        // ledger)
        tokio::select! {
            changed = heads.changed() => if changed.is_err() { return },
            _ = stopping.wait_for(|s| *s) => return,
            _ = tx.closed() => return,
            _ = tokio::time::sleep(RECHECK) => if !access.recheck() { return },
        }
    }
}

/// The keep-alive the feed answers with: a comment every [`KEEP_ALIVE`], or more often when
/// the server closes connections silent for less than twice that.
pub fn keep_alive(idle: Duration) -> KeepAlive {
    KeepAlive::new().interval(KEEP_ALIVE.min(idle / 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

    #[test]
    fn access_is_looked_at_again_when_something_moves_or_time_passes() {
        let allowed = Arc::new(AtomicBool::new(true));
        let moves = Arc::new(AtomicU64::new(0));
        let looks = Arc::new(AtomicU64::new(0));
        let (a, m, l) = (allowed.clone(), moves.clone(), looks.clone());
        let mut access = Access::new(
            Arc::new(move || (m.load(Ordering::SeqCst), 0)),
            Arc::new(move || {
                l.fetch_add(1, Ordering::SeqCst);
                a.load(Ordering::SeqCst)
            }),
            Duration::from_millis(200),
        );
        assert!(access.allowed());
        // nothing moved, no time passed: no new look, even though access has ended
        allowed.store(false, Ordering::SeqCst);
        assert!(access.allowed());
        assert_eq!(looks.load(Ordering::SeqCst), 1);
        // time alone (a session expired, a revocation took effect): looked at again
        std::thread::sleep(Duration::from_millis(250));
        assert!(!access.allowed());
        // and once refused, always refused
        allowed.store(true, Ordering::SeqCst);
        moves.fetch_add(1, Ordering::SeqCst);
        assert!(!access.allowed());

        // something moving makes a look at once
        let (allowed, moves) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicU64::new(0)));
        let (a, m) = (allowed.clone(), moves.clone());
        let mut access = Access::new(
            Arc::new(move || (0, m.load(Ordering::SeqCst))),
            Arc::new(move || a.load(Ordering::SeqCst)),
            Duration::from_secs(3600),
        );
        assert!(access.allowed());
        allowed.store(false, Ordering::SeqCst);
        moves.fetch_add(1, Ordering::SeqCst);
        assert!(!access.allowed());
    }
}
