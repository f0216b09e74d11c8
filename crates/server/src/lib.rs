//! `eduledger serve`: the ledger as a backend over HTTP (the design's SERVER.md; the
//! operator's guide is docs/SERVER.md). The `Ledger` stays the one place that decides and
//! appends; this crate adds the transport (plain or TLS, `tls.rs`; idle connections closed,
//! `idle.rs`), access by bearer token (recorded grants), the group commit around
//! `Ledger::execute_group` with `If-Match` and `Idempotency-Key`, the live feed and export
//! (`feed.rs`) and `/metrics` (`metrics.rs`). Every read answers the command line's document
//! for the same question, in its JSON, CSV or table rendering.
//!
//! One writer thread owns the `Ledger`. After every durable group it publishes a read-only
//! view of it ([`Ledger::view`]) in an atomically swapped `Arc`: reads and token checks use
//! the last published view, are never blocked by the writer and never see a batch before
//! its fsync.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use eduledger_domain::values::{GroupName, REPORT_YEARS, Role};
use eduledger_domain::{BatchError, DomainError, Submission, parse_submission};
use eduledger_ledger::{Answered, Batch, Ledger, LedgerError, Request};
use eduledger_query::{self as query, EntityKind, Query, QueryError, Report};
use eduledger_store::Digest;
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

pub mod answering;
mod console;
pub mod feed;
pub mod idle;
pub mod metrics;
pub mod share;
pub mod tls;

use metrics::{Metrics, Outcome};

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 4096;
/// Longest a read may take to be answered (408 after); writes are answered when recorded.
pub const REQUEST_SECONDS: u64 = 300;
/// Most events `/v1/log` answers at once.
pub const MAX_LOG: usize = 10_000;
/// Historical reads (`known_at` before the head) folded at once; more wait their turn: each
/// folds a state of its own (hundreds of MiB at Shanghai scale).
pub const HISTORICAL_READS: usize = 2;
/// Reads answered at once (API reads and console pages); more wait for a turn. Each holds
/// its whole answer while it renders, so this and [`MAX_ANSWER_BYTES`] bound their memory.
pub const READS: usize = 4;
/// The most bytes of events one log page or audit trail carries (counted as
/// `eduledger_ledger::Budget` does); a larger one is refused with 400.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;
/// Longest `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY: usize = 128;
/// Most commands in one request.
pub const MAX_COMMANDS: usize = eduledger_ledger::MAX_REQUEST_COMMANDS;
/// Requests waiting for the writer before new ones get 503, unless configured otherwise.
pub const QUEUE: usize = 1024;
/// Commands decided and appended together at most (one sled transaction).
pub const GROUP_COMMANDS: usize = 10_000;
/// Seconds in-flight requests get after SIGTERM before open connections are cut.
pub const GRACE_SECONDS: u64 = 10;
/// Longest a request's body may take to arrive whole, from the request's start (then the
/// request fails with 408 and its connection is closed), unless configured otherwise.
pub const READ_SECONDS: u64 = 30;
/// A request's start line and headers, at most (a token and a few cookies fit many times).
pub const MAX_HEAD: usize = 32 * 1024;

/// What the writer is handed: a batch, or the end (sent once the server stops accepting;
/// what was queued before it is still decided and answered).
enum Work {
    Batch(Job),
    Stop,
}

/// How to serve.
#[derive(Debug, Clone)]
pub struct Config {
    /// The ledger directory.
    pub db: PathBuf,
    /// Largest request body, in bytes.
    pub max_body: usize,
    /// Requests that may wait for the writer before new ones get 503 (at least 1).
    pub queue: usize,
    /// A connection silent this long is closed.
    pub idle: std::time::Duration,
    /// Serve HTTPS with this configuration ([`tls::config`]); None: plain HTTP, which
    /// [`check_listen`] allows on loopback only.
    pub tls: Option<Arc<tokio_rustls::rustls::ServerConfig>>,
    /// What a client may hold of the server.
    pub limits: Limits,
}

/// What one client may hold of the server, so that no client without a token holds it all.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// A request's body must arrive whole within this of the request's start; later, the
    /// answer is 408 and the connection ends. (Its headers are bounded by the idle rule:
    /// bytes trickled in do not keep a connection from being idle.)
    pub read: std::time::Duration,
    /// Connections served at once; more wait in the kernel's backlog.
    pub connections: usize,
    /// Connections one peer address (an IPv6 /64) may hold open at once; more are closed
    /// at once. TLS handshakes under way are shared the same way.
    pub per_address: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            read: std::time::Duration::from_secs(READ_SECONDS),
            connections: MAX_CONNECTIONS,
            per_address: share::PER_ADDRESS,
        }
    }
}

/// A batch waiting for the writer, with the hash of the token it came with: the writer
/// checks it again, so a revocation recorded meanwhile stops it.
struct Job {
    commands: Vec<Submission>,
    actor: String,
    token_sha256: String,
    /// `If-Match`: recorded only if the head is still this sequence when it is decided.
    if_match: Option<u64>,
    /// `Idempotency-Key`: answered from the log if the key recorded this body before.
    request: Option<Request>,
    reply: oneshot::Sender<Result<Acknowledged, Refusal>>,
}

/// What the writer answers an accepted batch: its sequences and the head after its group.
struct Acknowledged {
    seqs: Vec<u64>,
    head: Digest,
    /// Answered from the record of an earlier request with the same `Idempotency-Key`:
    /// nothing was recorded by this one.
    replayed: bool,
}

/// Why the writer did not record a batch.
enum Refusal {
    /// The token was revoked before the batch was decided.
    Revoked,
    /// `If-Match` named another head than the ledger's when the batch was decided.
    Moved { expected: u64, head: u64 },
    /// The `Idempotency-Key` was used before for another body.
    KeyReused,
    /// The log's record of an `Idempotency-Key` is damaged: nothing is recorded on it.
    KeyUnreadable(String),
    /// A rule, or the batch's shape.
    Rule(LedgerError),
    /// The ledger failed (an fsync, a damaged log): the server records nothing more.
    Failed(String),
}

#[derive(Clone)]
struct App {
    /// The ledger as of the last durable group (a view: reads only).
    published: Arc<ArcSwap<Ledger>>,
    writes: mpsc::Sender<Work>,
    /// Set when the ledger failed or the writer stopped: writes get 503 from then on.
    failed: Arc<Mutex<Option<String>>>,
    metrics: Arc<Metrics>,
    /// The head of the last published view, for the feed's subscribers.
    heads: tokio::sync::watch::Receiver<u64>,
    /// Set when the server stops: feeds end so that connections can close.
    stopping: tokio::sync::watch::Receiver<bool>,
    /// Turns for historical reads ([`HISTORICAL_READS`]).
    historical: Arc<tokio::sync::Semaphore>,
    /// Turns for every read ([`READS`]).
    reads: Arc<tokio::sync::Semaphore>,
    /// Each principal's share of the reads, and the answers in the sending.
    turns: Arc<answering::Turns>,
    /// How long an answer may take to be sent once rendered (`--read-seconds`, as a
    /// request's body has to arrive).
    send_within: std::time::Duration,
    /// How long a connection may be silent (the feed writes more often).
    idle: std::time::Duration,
    /// The console's sessions.
    sessions: Arc<console::session::Sessions>,
    /// Served over TLS: the console's cookie is `Secure`.
    secure: bool,
}

fn set_failed(failed: &Mutex<Option<String>>, why: String) {
    let mut f = failed.lock().unwrap_or_else(|p| p.into_inner());
    if f.is_none() {
        warn!("recording stopped: {why}");
        *f = Some(why);
    }
}

/// Today as the ledger records it (its clock, in its zone): the day a token must be in
/// force on, the same day the ledger dates what it records by.
fn recording_day(l: &Ledger) -> eduledger_domain::values::Date {
    eduledger_ledger::clock::day_of_us(l.store().now_us())
        .unwrap_or_else(eduledger_ledger::clock::today)
}

/// Refuse an address a token could cross a network from in clear: without TLS, loopback
/// only.
pub fn check_listen(addr: &SocketAddr, tls: bool) -> Result<(), String> {
    if tls || addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "--listen {addr}: not a loopback address, and bearer tokens must never cross a network in clear; give --tls-cert and --tls-key to serve it over TLS"
        ))
    }
}

/// Serve on `listener` until `shutdown` resolves; then finish what is in flight (every
/// acknowledged batch is durable; connections still open after [`GRACE_SECONDS`] are cut)
/// and let the writer drain its queue.
pub async fn serve(
    ledger: Ledger,
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    if let Some((now, last)) = ledger.store().clock_behind() {
        tracing::warn!(
            "this machine's clock ({}) reads earlier than the ledger's last record ({}); what is recorded is dated just after that record, not by the clock — check the clock (NTP)",
            eduledger_ledger::clock::rfc3339(now),
            eduledger_ledger::clock::rfc3339(last)
        );
    }
    let published = Arc::new(ArcSwap::from_pointee(
        ledger
            .view()
            .map_err(|e| std::io::Error::other(e.to_string()))?,
    ));
    let failed = Arc::new(Mutex::new(None));
    let metrics = Arc::new(Metrics::default());
    let (heads_tx, heads) = tokio::sync::watch::channel(published.load().state().head());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (tx, rx) = mpsc::channel::<Work>(config.queue.max(1));
    let stop_writer = tx.clone();
    let writer = {
        let (published, failed, metrics) = (published.clone(), failed.clone(), metrics.clone());
        let mut ledger = ledger;
        std::thread::Builder::new()
            .name("eduledger-writer".into())
            .spawn(move || {
                let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    write_groups(&mut ledger, &published, &heads_tx, rx, &failed, &metrics)
                }));
                if run.is_err() {
                    set_failed(&failed, "the writer stopped abnormally".into());
                }
            })?
    };
    let app = router(
        App {
            published,
            writes: tx,
            failed,
            metrics,
            heads,
            stopping: stop_rx.clone(),
            historical: Arc::new(tokio::sync::Semaphore::new(HISTORICAL_READS)),
            reads: Arc::new(tokio::sync::Semaphore::new(READS)),
            turns: Arc::new(answering::Turns::default()),
            send_within: config.limits.read,
            idle: config.idle,
            sessions: Arc::new(console::session::Sessions::default()),
            secure: config.tls.is_some(),
        },
        config.max_body,
    );
    info!(db = %config.db.display(), tls = config.tls.is_some(), "serving");
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let served = match config.tls {
        Some(tls) => {
            serve_connections(
                tls::Listener::new(listener, tls, config.limits.per_address)?,
                app,
                stop_rx,
                config.idle,
                config.limits,
            )
            .await
        }
        None => serve_connections(listener, app, stop_rx, config.idle, config.limits).await,
    };
    // Nothing more is accepted: the writer decides and answers what was queued before this,
    // then stops. (Joined on this thread, which is `block_on`'s, not a runtime worker.)
    let _ = stop_writer.send(Work::Stop).await;
    if writer.join().is_err() {
        warn!("the writer stopped abnormally");
    }
    served
}

/// Serve connections from `listener` until `stop`; then let each finish the request it is
/// in (a live feed ends) for [`GRACE_SECONDS`], and cut whatever is still open. A connection
/// silent for `idle` is closed.
async fn serve_connections<L>(
    mut listener: L,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    idle: std::time::Duration,
    limits: Limits,
) -> std::io::Result<()>
where
    L: axum::serve::Listener<Addr = SocketAddr>,
    L::Io: Unpin,
{
    use hyper_util::rt::TokioIo;
    use tower::ServiceExt as _;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut connections = tokio::task::JoinSet::new();
    let room = Arc::new(tokio::sync::Semaphore::new(limits.connections.max(1)));
    let shares = share::Shares::new(limits.per_address);
    loop {
        // (at the limit, new connections wait in the kernel's backlog)
        let permit = tokio::select! {
            p = room.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stop.wait_for(|s| *s) => break,
        };
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        // (an address over its share is closed at once: its slot stays free for others)
        let Some(held) = shares.take(peer.ip()) else {
            tracing::debug!(%peer, "over its share of connections: closed");
            drop(io);
            continue;
        };
        let app = app.clone();
        let busy = idle::Busy::default();
        let counted = busy.clone();
        let read = limits.read;
        let service = hyper::service::service_fn(
            move |request: axum::http::Request<hyper::body::Incoming>| {
                let serving = counted.start();
                let late = Arc::new(std::sync::atomic::AtomicBool::new(false));
                let request = request.map(|body| within(body, read, late.clone()));
                let answer = app.clone().oneshot(request);
                async move {
                    let response = answer.await;
                    drop(serving);
                    // (whatever the handler made of a body cut off, the client hears why,
                    // and the connection ends: its unread rest is never waited for)
                    if late.load(std::sync::atomic::Ordering::Relaxed) {
                        // (the headers every answer carries — no-store, HSTS, the request's
                        // id, a page's security policy — were set by the layers: kept, and
                        // nothing else the handler set)
                        let kept = match response {
                            Ok(r) => r.into_parts().0.headers,
                            Err(never) => match never {},
                        };
                        let (mut parts, body) = error(
                            StatusCode::REQUEST_TIMEOUT,
                            format!(
                                "the request did not arrive whole within {} s",
                                read.as_secs()
                            ),
                        )
                        .into_parts();
                        for name in [
                            header::CACHE_CONTROL,
                            header::STRICT_TRANSPORT_SECURITY,
                            header::CONTENT_SECURITY_POLICY,
                            header::HeaderName::from_static("x-request-id"),
                        ] {
                            if let Some(value) = kept.get(&name) {
                                parts.headers.insert(name, value.clone());
                            }
                        }
                        parts.headers.insert(
                            header::CONNECTION,
                            header::HeaderValue::from_static("close"),
                        );
                        return Ok(Response::from_parts(parts, body));
                    }
                    response
                }
            },
        );
        let mut http = hyper::server::conn::http1::Builder::new();
        // (headers trickled in are cut by the idle rule, `idle.rs`, which bytes read do not
        // reset; hyper's own header timer costs about a millisecond per request)
        http.max_header_size(MAX_HEAD);
        let connection = graceful
            .watch(http.serve_connection(TokioIo::new(idle::Idle::new(io, idle, busy)), service));
        connections.spawn(async move {
            let _ = connection.await;
            drop((permit, held));
        });
        while connections.try_join_next().is_some() {}
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(std::time::Duration::from_secs(GRACE_SECONDS)) => {
            warn!("connections still open {GRACE_SECONDS} s after the signal are cut off");
        }
    }
    connections.abort_all();
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// A request's body, failing once it has not arrived whole within `limit` of now (the
/// request's start): a client trickling a byte at a time holds its connection no longer.
/// `late` is set when it fails so, and the answer becomes a 408.
fn within(
    body: hyper::body::Incoming,
    limit: std::time::Duration,
    late: Arc<std::sync::atomic::AtomicBool>,
) -> axum::body::Body {
    use futures_util::StreamExt as _;
    use hyper::body::Body as _;
    use std::future::Future as _;
    if body.is_end_stream() {
        return axum::body::Body::new(body);
    }
    let mut deadline = Box::pin(tokio::time::sleep(limit));
    let mut pieces = axum::body::Body::new(body).into_data_stream();
    axum::body::Body::from_stream(futures_util::stream::poll_fn(move |cx| {
        if deadline.as_mut().poll(cx).is_ready() {
            late.store(true, std::sync::atomic::Ordering::Relaxed);
            return std::task::Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!(
                    "the request's body did not arrive within {} s",
                    limit.as_secs()
                ),
            ))));
        }
        pieces
            .poll_next_unpin(cx)
            .map(|p| p.map(|r| r.map_err(std::io::Error::other)))
    }))
}

/// Whether a batch changes who may record (access, or a correction or retraction that may
/// be aimed at an access event): nothing is grouped after it, so every later batch's token
/// is checked against the state it leaves.
fn changes_access(commands: &[Submission]) -> bool {
    commands.iter().any(|s| s.command.changes_access())
}

/// One group: `first` and the batches waiting after it (`more`), up to [`GROUP_COMMANDS`]
/// commands, ending after a batch that [`changes_access`]; the batch that did not fit — or
/// that carries `If-Match`, which is checked against the head before a group — is handed
/// back for the next group.
fn gather(first: Job, mut more: impl FnMut() -> Option<Job>) -> (Vec<Job>, Option<Job>) {
    let mut size = first.commands.len();
    let mut closed = changes_access(&first.commands);
    let mut jobs = vec![first];
    while !closed && size < GROUP_COMMANDS {
        match more() {
            // (two batches with one key never share a group: the second is answered
            // from the first's record)
            Some(j)
                if size + j.commands.len() > GROUP_COMMANDS
                    || j.if_match.is_some()
                    || j.request.as_ref().is_some_and(|r| {
                        jobs.iter()
                            .any(|o| o.request.as_ref().is_some_and(|q| q.key == r.key))
                    }) =>
            {
                return (jobs, Some(j));
            }
            Some(j) => {
                size += j.commands.len();
                closed = changes_access(&j.commands);
                jobs.push(j);
            }
            None => break,
        }
    }
    (jobs, None)
}

/// The writer: takes every batch waiting (up to [`GROUP_COMMANDS`] commands), checks each
/// one's token again, decides each on its own and appends all accepted ones with one fsync,
/// then publishes a view of the ledger and answers each. After a ledger fault it records
/// nothing more.
fn write_groups(
    l: &mut Ledger,
    published: &ArcSwap<Ledger>,
    heads: &tokio::sync::watch::Sender<u64>,
    mut rx: mpsc::Receiver<Work>,
    failed: &Mutex<Option<String>>,
    metrics: &Metrics,
) {
    let mut carried: Option<Job> = None;
    let mut stopping = false;
    loop {
        let first = match carried.take() {
            Some(j) => j,
            None if stopping => return,
            None => match rx.blocking_recv() {
                Some(Work::Batch(j)) => j,
                Some(Work::Stop) | None => return,
            },
        };
        let (jobs, next) = gather(first, || match rx.try_recv() {
            Ok(Work::Batch(j)) => Some(j),
            Ok(Work::Stop) => {
                stopping = true;
                None
            }
            Err(_) => None,
        });
        carried = next;
        let stopped = failed.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if let Some(why) = stopped {
            for job in jobs {
                let _ = job.reply.send(Err(Refusal::Failed(why.clone())));
            }
            continue;
        }
        // a key that recorded before is answered from the log, never recorded twice
        let mut fresh = Vec::with_capacity(jobs.len());
        for job in jobs {
            let Some(request) = &job.request else {
                fresh.push(job);
                continue;
            };
            match l.answered(request) {
                Ok(None) => fresh.push(job),
                Ok(Some(Answered::Recorded { seqs, head })) => {
                    let _ = job.reply.send(Ok(Acknowledged {
                        seqs,
                        head,
                        replayed: true,
                    }));
                }
                Ok(Some(Answered::OtherBody)) => {
                    let _ = job.reply.send(Err(Refusal::KeyReused));
                }
                Err(e) => {
                    warn!("an idempotency key's record is damaged: {e}");
                    let _ = job.reply.send(Err(Refusal::KeyUnreadable(e.to_string())));
                }
            }
        }
        let jobs = fresh;
        if jobs.is_empty() {
            continue;
        }
        // If-Match is checked against the head the group starts from (only a group's first
        // batch carries one), after a retry was answered from the log: a retry carrying the
        // If-Match of its first attempt gets that attempt's answer, not a 409
        let mut jobs = jobs;
        if let Some(expected) = jobs[0].if_match {
            let head = match l.head() {
                Ok(h) => h.seq,
                Err(e) => {
                    let why = format!("the ledger's head cannot be read ({e})");
                    set_failed(failed, why.clone());
                    for job in jobs {
                        let _ = job.reply.send(Err(Refusal::Failed(why.clone())));
                    }
                    continue;
                }
            };
            if head != expected {
                let job = jobs.remove(0);
                let _ = job.reply.send(Err(Refusal::Moved { expected, head }));
                if jobs.is_empty() {
                    continue;
                }
            }
        }
        // a revocation recorded since the request arrived stops it
        let today = recording_day(l);
        // (and the scope checked is the grant's as it stands now)
        let mut live: Vec<(Job, Vec<GroupName>)> = Vec::with_capacity(jobs.len());
        for job in jobs {
            match l.state().principal_by_token(&job.token_sha256, today) {
                Some((name, grant)) if name.as_str() == job.actor => {
                    let scope = grant.groups.clone();
                    live.push((job, scope));
                }
                _ => {
                    let _ = job.reply.send(Err(Refusal::Revoked));
                }
            }
        }
        if live.is_empty() {
            continue;
        }
        let batches: Vec<Batch> = live
            .iter()
            .map(|(j, scope)| Batch {
                commands: &j.commands,
                actor: &j.actor,
                scope,
                request: j.request.as_ref(),
            })
            .collect();
        // the group is durable (or nothing was appended): readers see it from now on, before
        // anyone is answered, so a client never reads a ledger older than its own write
        let recorded = l.execute_group(&batches).and_then(|outcomes| {
            // each batch is answered with the digest right after it: what a retry with its
            // Idempotency-Key is answered with too
            let mut heads = Vec::with_capacity(outcomes.len());
            for o in &outcomes {
                heads.push(match o.as_ref().ok().and_then(|seqs| seqs.last()) {
                    Some(last) => l.digest_at(*last)?,
                    None => None,
                });
            }
            Ok((outcomes, l.view()?, heads))
        });
        match recorded {
            Ok((outcomes, view, after)) => {
                let seq = view.state().head();
                published.store(Arc::new(view));
                heads.send_replace(seq);
                let recorded: Vec<usize> = outcomes
                    .iter()
                    .filter_map(|o| o.as_ref().ok().map(Vec::len))
                    .collect();
                if !recorded.is_empty() {
                    metrics.group(
                        recorded.len(),
                        recorded.iter().sum(),
                        Some(l.store().last_sync()),
                    );
                }
                for (((job, _), outcome), head) in live.into_iter().zip(outcomes).zip(after) {
                    let answer = match (outcome, head) {
                        (Ok(seqs), Some(head)) => Ok(Acknowledged {
                            seqs,
                            head,
                            replayed: false,
                        }),
                        (Ok(_), None) => Err(Refusal::Failed(
                            "a recorded batch's last event cannot be read back".into(),
                        )),
                        (Err(e), _) if e.is_ledger_fault() => Err(Refusal::Failed(e.to_string())),
                        (Err(e), _) => Err(Refusal::Rule(e)),
                    };
                    let _ = job.reply.send(answer);
                }
            }
            Err(e) => {
                // what the group wrote is unknown: nothing is acknowledged, nothing more written
                let why = format!(
                    "the ledger failed while recording ({e}); what the last group wrote is unknown until the ledger is opened again and verified"
                );
                set_failed(failed, why.clone());
                for (job, _) in live {
                    let _ = job.reply.send(Err(Refusal::Failed(why.clone())));
                }
            }
        }
    }
}

/// Every `/v1` request is authenticated before anything else is read of it — its body is
/// not buffered, its parameters not parsed, for a caller without a valid token.
async fn authenticate(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut request = request;
    match principal(&app, request.headers()) {
        Ok(caller) => {
            // a read waits for its principal's turn and holds it until its answer is sent;
            // the feed and the export stream without holding whole answers
            let streams = ["/v1/events", "/v1/export"].contains(&request.uri().path());
            // (every method but a write's: HEAD renders the answer as GET does)
            let reads = request.method() != axum::http::Method::POST;
            let turn = match reads && !streams {
                true => app.turns.take(&caller.name).await,
                false => None,
            };
            request.extensions_mut().insert(caller);
            let response = next.run(request).await;
            let Some(turn) = turn else {
                return response;
            };
            // (the answer is already whole in memory: rendered within its read's turn)
            let (parts, body) = response.into_parts();
            match axum::body::to_bytes(body, usize::MAX).await {
                Ok(answer) => {
                    Response::from_parts(parts, answering::held(answer, turn, app.send_within))
                }
                Err(_) => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the answer could not be read back to be sent",
                ),
            }
        }
        Err(why) => error(StatusCode::UNAUTHORIZED, why),
    }
}

fn router(app: App, max_body: usize) -> Router {
    // writes are not timed out: once queued a batch is decided and recorded whatever the
    // client's connection does, so a 408 would leave its outcome unknown
    let writes = Router::new()
        .route("/v1/commands", post(commands))
        .route("/v1/access/grant", post(grant))
        .route("/v1/access/revoke", post(revoke));
    Router::new()
        .route("/v1/head", get(head))
        .route("/v1/groups", get(groups))
        .route("/v1/groups/{name}", get(group))
        .route("/v1/kindergartens/{name}", get(kindergarten))
        .route("/v1/teachers/{staff_no}", get(teacher))
        .route("/v1/history/{kind}/{id}", get(history))
        .route("/v1/log", get(log))
        .route("/v1/tally/{year}", get(tally))
        .route("/v1/reports/balance", get(balance))
        .route("/v1/reports/{kind}/{year}", get(report))
        .route("/v1/access", get(access))
        .route("/metrics", get(metrics_text))
        .route("/v1/events", get(events))
        .route("/v1/verify", get(verify_digest))
        .route("/v1/export", get(export))
        .route_layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            std::time::Duration::from_secs(REQUEST_SECONDS),
        ))
        .merge(writes)
        .route_layer(axum::middleware::from_fn_with_state(
            app.clone(),
            authenticate,
        ))
        .route("/healthz", get(|| async { "ok\n" }))
        .merge(console::routes(app.clone()))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn_with_state(app.clone(), observe))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            answer_headers,
        ))
        // every request gets an id (or keeps the one it brought) and answers with it
        .layer(tower_http::request_id::PropagateRequestIdLayer::x_request_id())
        .layer(tower_http::request_id::SetRequestIdLayer::x_request_id(
            RequestIds::default(),
        ))
        .layer(axum::middleware::from_fn(plain_request_id))
        .with_state(app)
}

/// Largest error body of axum's own (a rejection) turned into `{"error": …}`.
const MAX_REJECTION: usize = 16 * 1024;

/// Headers every answer carries, and one shape for every API error. A `/v1` answer (it may
/// carry a new token, or what a principal may read) is never stored by a cache; over TLS,
/// browsers are told to keep to HTTPS. An API error axum answered itself (a path or
/// parameter that does not parse, a body over the limit) is plain text: it is answered as
/// the API's `{"error": …}`, its status kept.
async fn answer_headers(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let api = request.uri().path().starts_with("/v1");
    let mut response = next.run(request).await;
    if api
        && (response.status().is_client_error() || response.status().is_server_error())
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        let (parts, body) = response.into_parts();
        let text = axum::body::to_bytes(body, MAX_REJECTION)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .unwrap_or_default();
        let text = if text.is_empty() {
            parts
                .status
                .canonical_reason()
                .unwrap_or("refused")
                .to_owned()
        } else {
            text
        };
        let mut json = error(parts.status, text);
        for (name, value) in &parts.headers {
            if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
                json.headers_mut().append(name, value.clone());
            }
        }
        response = json;
    }
    let headers = response.headers_mut();
    if api {
        headers.insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    if app.secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Request ids: a random prefix for this run and a counter, short enough to read in a log.
#[derive(Clone)]
struct RequestIds {
    run: Arc<String>,
    next: Arc<std::sync::atomic::AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> RequestIds {
        let mut seed = [0u8; 4];
        // (without randomness the ids still tell requests apart within a run)
        let _ = getrandom::fill(&mut seed);
        RequestIds {
            run: Arc::new(hex::encode(seed)),
            next: Default::default(),
        }
    }
}

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(
        &mut self,
        _: &axum::http::Request<B>,
    ) -> Option<tower_http::request_id::RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        header::HeaderValue::from_str(&format!("{}-{n}", self.run))
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}

/// A request id a client brings is kept only if it is short and plain (letters, digits,
/// `-_.:`): anything else would let a client write what it likes into the logs.
async fn plain_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let plain = |v: &header::HeaderValue| {
        let b = v.as_bytes();
        !b.is_empty()
            && b.len() <= 64
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"-_.:".contains(c))
    };
    if request
        .headers()
        .get_all("x-request-id")
        .iter()
        .any(|v| !plain(v))
        || request.headers().get_all("x-request-id").iter().count() > 1
    {
        request.headers_mut().remove("x-request-id");
    }
    next.run(request).await
}

/// A `/v1/commands` answer given from an earlier request's record (`Idempotency-Key`).
#[derive(Debug, Clone, Copy)]
struct Replayed;

/// How many commands a `/v1/commands` answer speaks for, for the metrics.
#[derive(Debug, Clone, Copy)]
struct Commands(usize);

/// Every request runs in a span carrying its id, method and route, and its latency (and,
/// for `/v1/commands`, its outcome) goes to the metrics.
async fn observe(
    State(app): State<App>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use tracing::Instrument as _;
    let started = std::time::Instant::now();
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    // (a method a client makes up is not a label: /metrics would grow with every one)
    let method: &'static str = match *request.method() {
        axum::http::Method::GET => "GET",
        axum::http::Method::POST => "POST",
        axum::http::Method::HEAD => "HEAD",
        _ => "other",
    };
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "(unrouted)".to_owned());
    let span = tracing::info_span!("request", id = %id, method = %method, route = %route);
    let response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    span.in_scope(|| {
        tracing::debug!(
            status = status.as_u16(),
            took_us = started.elapsed().as_micros() as u64,
            "answered"
        )
    });
    let commands = route == "/v1/commands";
    app.metrics.request(method, route, started.elapsed());
    if commands {
        let n = response.extensions().get::<Commands>().map_or(0, |c| c.0);
        let outcome = match status.as_u16() {
            200 if response.extensions().get::<Replayed>().is_some() => Outcome::Replayed,
            200 => Outcome::Recorded,
            401 | 403 => Outcome::Forbidden,
            409 => Outcome::Conflict,
            422 => Outcome::Refused,
            503 => Outcome::Unavailable,
            _ => Outcome::Malformed,
        };
        app.metrics.commands(outcome, n);
    }
    response
}

/// `GET /v1/events`: the live feed ([`feed`]).
async fn events(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    p: Result<UrlQuery<FeedParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    // the feed follows the ledger as it grows: a cut or a date would be ignored, so refused
    let Ok(UrlQuery(p)) = p else {
        return error(
            StatusCode::BAD_REQUEST,
            "/v1/events takes only from=SEQ (a cut or a date does not apply to a live feed)",
        );
    };
    // a token revoked while its feed is open gets nothing more
    let check = app.clone();
    let still = Arc::new(move || caller_by_token_sha(&check, caller.token_sha256.clone()).is_ok());
    feed_response(app, &headers, p.from, true, still)
}

/// What may end a feed reader's access, as it moves: sessions closed, the head published.
fn access_moves(app: &App) -> Arc<dyn Fn() -> (u64, u64) + Send + Sync> {
    let (sessions, published) = (app.sessions.clone(), app.published.clone());
    Arc::new(move || (sessions.closed(), published.load().state().head()))
}

/// A feed from `from` (or after the `Last-Event-ID`); `named`: each event names its type
/// (the API), or not (the console's page, whose `EventSource` then hears every one);
/// `still`: whether its reader may still read, asked before every event sent.
fn feed_response(
    app: App,
    headers: &HeaderMap,
    from: Option<u64>,
    named: bool,
    still: Arc<dyn Fn() -> bool + Send + Sync>,
) -> Response {
    let last = headers
        .get("last-event-id")
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let from = match feed::start(from, last.as_deref()) {
        Ok(f) => f,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let (tx, mut rx) = mpsc::channel(feed::CHUNK as usize);
    let metrics = app.metrics.clone();
    let app_idle = app.idle;
    let access = feed::Access::new(access_moves(&app), still, feed::RECHECK);
    // the stream asks too: what waits in the channel is not sent once access ends
    let mut gate = access.twin();
    metrics.subscribers(1);
    tokio::spawn(async move {
        feed::run(
            app.published,
            app.heads,
            app.stopping,
            from,
            named,
            access,
            tx,
        )
        .await;
        metrics.subscribers(-1);
    });
    let stream = futures_util::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|e| {
            e.filter(|_| gate.allowed())
                .map(Ok::<_, std::convert::Infallible>)
        })
    });
    axum::response::sse::Sse::new(stream)
        .keep_alive(feed::keep_alive(app_idle))
        .into_response()
}

/// The parameters of `/v1/verify`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VerifyParams {
    digest: Option<String>,
}

async fn metrics_text(State(app): State<App>) -> Response {
    let head = app.published.load().state().head();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(head),
    )
        .into_response()
}

/// A JSON answer with a status.
fn json(status: StatusCode, value: serde_json::Value) -> Response {
    let mut body = serde_json::to_string_pretty(&value).unwrap_or_default();
    body.push('\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn bad_year(year: i32) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!(
            "{year} is not a year from {} to {}",
            REPORT_YEARS.start(),
            REPORT_YEARS.end()
        ),
    )
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, serde_json::json!({ "error": message.into() }))
}

/// The bearer token of a request (the scheme's case does not matter).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Who is asking, once authenticated (by [`authenticate`], for every `/v1` request).
#[derive(Debug, Clone)]
struct Caller {
    name: String,
    role: Role,
    /// SHA-256 (hex) of its token, which the writer checks again.
    token_sha256: String,
}

/// The principal a valid bearer token belongs to today, or why not (answered with 401).
fn principal(app: &App, headers: &HeaderMap) -> Result<Caller, &'static str> {
    let token = bearer(headers).ok_or(
        "this needs a bearer token (Authorization: Bearer …); `eduledger access grant` gives one",
    )?;
    caller_by_token_sha(app, hex::encode(Sha256::digest(token.as_bytes())))
}

/// The principal a token (by its SHA-256, hex) belongs to today, or why not.
fn caller_by_token_sha(app: &App, sha: String) -> Result<Caller, &'static str> {
    let l = app.published.load();
    // today in the ledger's zone: never a command's own date (a revoked token stays revoked)
    match l.state().principal_by_token(&sha, recording_day(&l)) {
        Some((name, grant)) => Ok(Caller {
            name: name.to_string(),
            role: grant.role,
            token_sha256: sha,
        }),
        None => Err("this token is unknown, revoked or not yet in force"),
    }
}

/// The parameters of the reads (`from` and `limit` are the log's, `explain` the tally's).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Params {
    on: Option<String>,
    known_at: Option<String>,
    from: Option<u64>,
    limit: Option<usize>,
    explain: Option<bool>,
    /// `json` (the default), `csv` or `table`: the command line's renderings.
    format: Option<String>,
}

/// What a read's answer looks like and costs, known before it runs.
struct Shape {
    format: Option<String>,
    /// Why `on` or `known_at` cannot be read, if so (400, naming the parameter).
    malformed: Option<String>,
    /// As known at a past time: a fold of its own.
    historical: bool,
}

impl Params {
    fn shape(&self) -> Shape {
        let on = self.on.as_deref().and_then(|t| {
            eduledger_domain::values::Date::parse(t)
                .err()
                .map(|e| format!("on: {e}"))
        });
        let known_at = self
            .known_at
            .as_deref()
            .and_then(|t| query::parse_known_at("known_at", t).err())
            .map(|e| e.to_string());
        Shape {
            format: self.format.clone(),
            malformed: on.or(known_at),
            historical: self.known_at.is_some(),
        }
    }

    fn query(&self) -> Query {
        Query {
            on: self.on.clone(),
            known_at: self.known_at.clone(),
            max_bytes: Some(MAX_ANSWER_BYTES),
            spelling: query::Spelling::Parameters,
        }
    }
}

/// Run a read on the blocking pool and answer with the CLI's document in the format asked
/// for (`?format=`: JSON by default, or CSV or the table the command line prints).
async fn read(
    app: App,
    shape: Shape,
    f: impl FnOnce(&Ledger) -> Result<Report, QueryError> + Send + 'static,
) -> Response {
    use eduledger_query::render::{Format, render};
    if let Some(why) = shape.malformed {
        return error(StatusCode::BAD_REQUEST, why);
    }
    let format = match shape.format.as_deref().map(Format::parse).transpose() {
        Ok(f) => f.unwrap_or(Format::Json),
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    // (rendered on the pool, within the read's turn: the report and its text are the
    // read's memory, and are let go before the turn is)
    let rendered = move |l: &Ledger| f(l).map(|report| render(&report, format));
    match on_blocking_pool(&app, shape.historical, rendered).await {
        Ok(Ok(body)) => {
            let kind = match format {
                Format::Json => "application/json",
                Format::Csv => "text/csv; charset=utf-8",
                Format::Table => "text/plain; charset=utf-8",
            };
            (StatusCode::OK, [(header::CONTENT_TYPE, kind)], body).into_response()
        }
        Ok(Err(e)) => error(status_of(&e), e.to_string()),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the read stopped abnormally",
        ),
    }
}

/// Run a read on the published view on the blocking pool (the API's reads and the console's
/// pages). A historical read folds a state of its own: a few at a time, the rest wait; the
/// turn is held by the fold itself, which goes on if its client leaves. Err: the read
/// stopped abnormally.
async fn on_blocking_pool<T: Send + 'static>(
    app: &App,
    historical: bool,
    f: impl FnOnce(&Ledger) -> Result<T, QueryError> + Send + 'static,
) -> Result<Result<T, QueryError>, tokio::task::JoinError> {
    let turn = match historical {
        true => app.historical.clone().acquire_owned().await.ok(),
        false => None,
    };
    let read_turn = app.reads.clone().acquire_owned().await.ok();
    let published = app.published.clone();
    tokio::task::spawn_blocking(move || {
        let answer = f(&published.load_full());
        drop((turn, read_turn));
        answer
    })
    .await
}

/// The status a read that gave no answer is answered with (the command line's exit 1, 2, 3).
fn status_of(e: &QueryError) -> StatusCode {
    match e {
        QueryError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
        QueryError::Usage(_) => StatusCode::BAD_REQUEST,
        QueryError::Ledger(_) => StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// The parameters of `/v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedParams {
    from: Option<u64>,
}

/// A parameter where an endpoint takes none is refused, not ignored (`known_at` on the head
/// or the export would otherwise answer for the whole ledger as if for the cut).
fn takes_none(uri: &axum::http::Uri) -> Option<Response> {
    uri.query().filter(|q| !q.is_empty()).map(|_| {
        error(
            StatusCode::BAD_REQUEST,
            format!(
                "{} takes no parameters: it answers for the whole ledger as it is now",
                uri.path()
            ),
        )
    })
}

async fn head(State(app): State<App>, uri: axum::http::Uri) -> Response {
    if let Some(refused) = takes_none(&uri) {
        return refused;
    }
    let l = app.published.load();
    match l.head() {
        Ok(h) => json(
            StatusCode::OK,
            serde_json::json!({"seq": h.seq, "hash": h.hash_hex()}),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn groups(State(app): State<App>, UrlQuery(p): UrlQuery<Params>) -> Response {
    read(app, p.shape(), move |l| query::groups(l, &p.query())).await
}

async fn group(
    State(app): State<App>,
    Path(name): Path<String>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, p.shape(), move |l| query::group(l, &name, &p.query())).await
}

async fn kindergarten(
    State(app): State<App>,
    Path(name): Path<String>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, p.shape(), move |l| {
        query::kindergarten(l, &name, &p.query())
    })
    .await
}

async fn teacher(
    State(app): State<App>,
    Path(staff_no): Path<String>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, p.shape(), move |l| {
        query::teacher(l, &staff_no, &p.query())
    })
    .await
}

async fn history(
    State(app): State<App>,
    Path((kind, id)): Path<(String, String)>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    let kind = match EntityKind::parse(&kind) {
        Ok(k) => k,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    read(app, p.shape(), move |l| {
        query::history(l, kind, &id, &p.query())
    })
    .await
}

async fn log(State(app): State<App>, UrlQuery(p): UrlQuery<Params>) -> Response {
    let (from, limit) = (p.from.unwrap_or(1), p.limit.unwrap_or(100));
    if limit > MAX_LOG {
        return error(
            StatusCode::BAD_REQUEST,
            format!("limit {limit}: at most {MAX_LOG} events in one request; page with from="),
        );
    }
    read(app, p.shape(), move |l| {
        query::log(l, from, limit, &p.query())
    })
    .await
}

async fn tally(
    State(app): State<App>,
    Path(year): Path<i32>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    if !REPORT_YEARS.contains(&year) {
        return bad_year(year);
    }
    let explain = p.explain.unwrap_or(false);
    read(app, p.shape(), move |l| {
        query::tally(l, year, explain, None, &p.query())
    })
    .await
}

async fn balance(State(app): State<App>, UrlQuery(p): UrlQuery<Params>) -> Response {
    read(app, p.shape(), move |l| query::balance(l, &p.query())).await
}

async fn report(
    State(app): State<App>,
    Path((kind, year)): Path<(String, i32)>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    if !REPORT_YEARS.contains(&year) {
        return bad_year(year);
    }
    let f: fn(&Ledger, i32, &Query) -> Result<Report, QueryError> = match kind.as_str() {
        "compliance" => query::compliance,
        "rewards" => query::rewards,
        "funds" => query::funds,
        "rotations" => query::rotations,
        other => {
            return error(
                StatusCode::NOT_FOUND,
                format!(
                    "there is no report {other:?}: compliance, rewards, funds, rotations or balance"
                ),
            );
        }
    };
    read(app, p.shape(), move |l| f(l, year, &p.query())).await
}

async fn access(State(app): State<App>, UrlQuery(p): UrlQuery<Params>) -> Response {
    read(app, p.shape(), move |l| query::access(l, &p.query())).await
}

/// `POST /v1/commands`: a batch, all or nothing, acknowledged after its fsync. A client
/// that goes away after sending may still have its batch recorded (docs/CLI.md).
async fn commands(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut count = 0;
    let mut response = record(app, caller, headers, body, &mut count).await;
    response.extensions_mut().insert(Commands(count));
    response
}

/// [`commands`], setting `count` once it knows how many commands the batch holds.
async fn record(
    app: App,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
    count: &mut usize,
) -> Response {
    let Caller {
        name,
        role,
        token_sha256,
    } = caller;
    if role == Role::Auditor {
        return error(
            StatusCode::FORBIDDEN,
            format!("{name} is an auditor: it reads, verifies and exports, and records nothing"),
        );
    }
    let if_match = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => match v.to_str().ok().and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(seq) => Some(seq),
            None => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "If-Match: {:?} is not a sequence number; it names the head the batch was written against, e.g. If-Match: 42",
                        String::from_utf8_lossy(v.as_bytes())
                    ),
                );
            }
        },
    };
    let request = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let key = v.as_bytes();
            if key.is_empty()
                || key.len() > MAX_IDEMPOTENCY_KEY
                || !key.iter().all(|b| b.is_ascii_graphic())
            {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "Idempotency-Key: {:?} must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (a UUID, say)",
                        String::from_utf8_lossy(key)
                    ),
                );
            }
            Some(Request {
                key: format!("{name}\n{}", String::from_utf8_lossy(key)),
                body_sha256: Sha256::digest(&body).into(),
            })
        }
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    // each command with the line (JSON Lines) or the position (an array) it came from
    let lines = match eduledger_domain::batch_lines(text, MAX_COMMANDS) {
        Ok(lines) => lines,
        Err(e @ BatchError::TooMany { .. }) => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, e.to_string());
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    *count = lines.len();
    let line_of = |i: usize| lines.get(i).map(|(at, _)| *at).unwrap_or(i + 1);
    let mut submissions = Vec::with_capacity(lines.len());
    for (at, line) in &lines {
        match parse_submission(line) {
            Ok(s) => submissions.push(s),
            Err(e) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": e.to_string(), "line": at}),
                );
            }
        }
    }
    for (i, s) in submissions.iter().enumerate() {
        if let Some(actor) = s.meta.actor.as_deref()
            && actor != name
        {
            return json(
                StatusCode::FORBIDDEN,
                serde_json::json!({"error": format!("meta.actor names {actor:?}, but the token is {name}'s: what a principal records is recorded as its own (leave meta.actor out)"), "line": line_of(i)}),
            );
        }
        if s.command.changes_access() && role != Role::Admin {
            return json(
                StatusCode::FORBIDDEN,
                serde_json::json!({"error": format!("{} is for an admin: access and corrections change what others may do or did", s.command.name()), "line": line_of(i)}),
            );
        }
        // a token is minted here from 256 random bits, never chosen by its client: a hash a
        // command brings could be the hash of "a"
        if s.command.brings_token_hash() {
            return json(
                StatusCode::BAD_REQUEST,
                serde_json::json!({"error": format!("{} brings a token's hash, which is not taken here: a token is minted by the server, so its hash never comes with a command; POST /v1/access/grant {{\"name\", \"role\", \"groups\", \"on\"}} answers a new one", s.command.name()), "line": line_of(i)}),
            );
        }
    }
    let job = Job {
        commands: submissions,
        actor: name,
        token_sha256,
        if_match,
        request,
        reply: oneshot::channel().0,
    };
    match submit(&app, job).await {
        Ok(ack) => {
            let mut r = json(
                StatusCode::OK,
                serde_json::json!({"seqs": ack.seqs, "head": {"seq": ack.head.seq, "hash": ack.head.hash_hex()}}),
            );
            if ack.replayed {
                r.extensions_mut().insert(Replayed);
            }
            r
        }
        Err(refused) => refused.answer(&line_of),
    }
}

/// Why a batch handed to the writer was not acknowledged, as the client is told.
enum NotRecorded {
    /// The server cannot take it (503), with `Retry-After` when trying again shortly helps.
    Unavailable { why: String, retry: bool },
    /// The writer refused it.
    Refused(Refusal),
}

impl NotRecorded {
    /// The answer, with `line_of` turning a batch's command index into its line.
    fn answer(self, line_of: &dyn Fn(usize) -> usize) -> Response {
        let refusal = match self {
            NotRecorded::Unavailable { why, retry } => {
                let mut r = error(StatusCode::SERVICE_UNAVAILABLE, why);
                if retry {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
                }
                return r;
            }
            NotRecorded::Refused(r) => r,
        };
        match refusal {
            Refusal::Moved { expected, head } => json(
                StatusCode::CONFLICT,
                serde_json::json!({"error": format!("If-Match: {expected}, but the head is {head} now: read again, then write"), "head": head}),
            ),
            Refusal::KeyReused => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "this Idempotency-Key was sent before with another body; a retry must send the same body, a new batch a new key",
            ),
            Refusal::KeyUnreadable(why) => error(
                StatusCode::CONFLICT,
                format!(
                    "this Idempotency-Key's record in the ledger is damaged ({why}); nothing was recorded — `eduledger verify` the ledger"
                ),
            ),
            Refusal::Revoked => error(
                StatusCode::UNAUTHORIZED,
                "this token was revoked before the batch was recorded",
            ),
            Refusal::Rule(LedgerError::Batch {
                number,
                command,
                error: e,
            }) => json(
                // beyond a recorder's groups is a right it lacks (403), not a rule (422)
                if matches!(*e, DomainError::OutOfScope { .. }) {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                serde_json::json!({"error": format!("{command}: {e}"), "line": line_of(number.saturating_sub(1))}),
            ),
            Refusal::Rule(e) => json(
                if matches!(&e, LedgerError::Domain(d) if matches!(**d, DomainError::OutOfScope { .. }))
                {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNPROCESSABLE_ENTITY
                },
                serde_json::json!({"error": e.to_string(), "line": line_of(0)}),
            ),
            Refusal::Failed(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
        }
    }
}

/// Hand `job` to the writer and wait for its answer (its `reply` is replaced).
async fn submit(app: &App, mut job: Job) -> Result<Acknowledged, NotRecorded> {
    if *app.stopping.borrow() {
        return Err(NotRecorded::Unavailable {
            why: "the server is stopping: nothing more is recorded until it is started again"
                .into(),
            retry: false,
        });
    }
    let stopped = app.failed.lock().unwrap_or_else(|p| p.into_inner()).clone();
    if let Some(why) = stopped {
        return Err(NotRecorded::Unavailable {
            why: format!("recording has stopped: {why}"),
            retry: false,
        });
    }
    let (reply, answer) = oneshot::channel();
    job.reply = reply;
    match app.writes.try_send(Work::Batch(job)) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            return Err(NotRecorded::Unavailable {
                why: "the write queue is full; try again shortly".into(),
                retry: true,
            });
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            return Err(NotRecorded::Unavailable {
                why:
                    "the writer has stopped; nothing can be recorded until the server is restarted"
                        .into(),
                retry: false,
            });
        }
    }
    match answer.await {
        Ok(Ok(ack)) => Ok(ack),
        Ok(Err(refusal)) => Err(NotRecorded::Refused(refusal)),
        Err(_) => Err(NotRecorded::Unavailable {
            why: "the writer stopped before answering".into(),
            retry: false,
        }),
    }
}

/// The body of `POST /v1/access/grant`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    name: String,
    role: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    on: Option<String>,
    /// The grant's source and reason, as a command's `meta` (its actor is the caller).
    #[serde(default)]
    meta: Option<GrantMeta>,
}

/// What a grant may say of itself.
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct GrantMeta {
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    reason: Option<String>,
}

/// The body of `POST /v1/access/revoke`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    name: String,
    #[serde(default)]
    on: Option<String>,
}

/// An admin's access change through the API: the command as a script would submit it
/// (so every field is checked as it is there), recorded through the writer.
async fn change_access(
    app: App,
    caller: Caller,
    command: serde_json::Value,
) -> Result<Acknowledged, Response> {
    if caller.role != Role::Admin {
        return Err(error(
            StatusCode::FORBIDDEN,
            format!(
                "{} is not an admin: only an admin grants and revokes access",
                caller.name
            ),
        ));
    }
    let submission = parse_submission(&command.to_string())
        .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
    let job = Job {
        commands: vec![submission],
        actor: caller.name,
        token_sha256: caller.token_sha256,
        if_match: None,
        request: None,
        reply: oneshot::channel().0,
    };
    submit(&app, job).await.map_err(|n| n.answer(&|_| 1))
}

/// A JSON body of the shape `shape` names, or what is wrong with it (answered 400).
fn body_of<T: serde::de::DeserializeOwned>(body: &[u8], shape: &str) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| format!("the body is not {shape}: {e}"))
}

/// Today as the published view's ledger records it, for an access change with no `on`.
fn today_of(app: &App) -> String {
    recording_day(&app.published.load()).to_string()
}

/// `POST /v1/access/grant` `{name, role, groups, on}`: a new token, answered once — the
/// ledger records only its SHA-256 (as `eduledger access grant`).
async fn grant(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let b: GrantBody = match body_of(&body, r#"{"name", "role", "groups", "on"}"#) {
        Ok(b) => b,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let (token, sha) = match eduledger_ledger::new_token() {
        Ok(t) => t,
        Err(why) => return error(StatusCode::SERVICE_UNAVAILABLE, why),
    };
    let on = b.on.clone().unwrap_or_else(|| today_of(&app));
    let mut command = serde_json::json!({"command": "grant_access", "principal": b.name, "role": b.role, "groups": b.groups, "token_sha256": sha, "on": on});
    if let Some(meta) = b.meta {
        command["meta"] = serde_json::json!(meta);
    }
    match change_access(app, caller, command).await {
        Ok(ack) => json(
            StatusCode::OK,
            serde_json::json!({
                "principal": b.name,
                "role": b.role,
                "groups": b.groups,
                "token": token,
                "seq": ack.seqs.first().copied().unwrap_or(0),
                "head": {"seq": ack.head.seq, "hash": ack.head.hash_hex()},
            }),
        ),
        Err(r) => r,
    }
}

/// `POST /v1/access/revoke` `{name, on}`.
async fn revoke(
    State(app): State<App>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let b: RevokeBody = match body_of(&body, r#"{"name", "on"}"#) {
        Ok(b) => b,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let on = b.on.clone().unwrap_or_else(|| today_of(&app));
    let command = serde_json::json!({"command": "revoke_access", "principal": b.name, "on": on});
    match change_access(app, caller, command).await {
        Ok(ack) => json(
            StatusCode::OK,
            serde_json::json!({
                "principal": b.name,
                "seq": ack.seqs.first().copied().unwrap_or(0),
                "head": {"seq": ack.head.seq, "hash": ack.head.hash_hex()},
            }),
        ),
        Err(r) => r,
    }
}

/// `GET /v1/verify?digest=SEQ:HASH`: whether the chain holds that digest (vouched for by
/// the chain from the events around it). 200 `{ok: true, …}`, or 409 `{ok: false, …}`
/// naming what the ledger holds at that sequence.
async fn verify_digest(
    State(app): State<App>,
    p: Result<UrlQuery<VerifyParams>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let p = match p {
        Ok(UrlQuery(p)) => p,
        Err(why) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("/v1/verify takes only digest=SEQ:HASH: {}", why.body_text()),
            );
        }
    };
    let Some(digest) = p.digest else {
        return error(
            StatusCode::BAD_REQUEST,
            "give ?digest=SEQ:HASH (a digest a head, an export or an acknowledgement named); a whole verify is `eduledger verify` on a follower's copy",
        );
    };
    let (seq, hash) = match parse_digest(&digest) {
        Ok(d) => d,
        Err(why) => return error(StatusCode::BAD_REQUEST, why),
    };
    let view = app.published.load_full();
    // (the head named is the checked view's, not a newer one published meanwhile)
    let head = view.head().ok();
    let head = head.map(|h| serde_json::json!({"seq": h.seq, "hash": h.hash_hex()}));
    let answer = tokio::task::spawn_blocking(move || hash_at(&view, seq)).await;
    match answer {
        Ok(Ok(Some(found))) if found == hash => json(
            StatusCode::OK,
            serde_json::json!({"ok": true, "digest": format!("{seq}:{hash}"), "head": head}),
        ),
        Ok(Ok(found)) => json(
            StatusCode::CONFLICT,
            serde_json::json!({
                "ok": false,
                "digest": format!("{seq}:{hash}"),
                "found": found.as_ref().map(|f| format!("{seq}:{f}")),
                "head": head,
                "error": match found {
                    Some(_) => format!("the ledger's chain at {seq} has another hash: this digest is not of this ledger's history"),
                    None => format!("the ledger ends before {seq}"),
                },
            }),
        ),
        Ok(Err(why)) => error(StatusCode::SERVICE_UNAVAILABLE, why),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the check stopped abnormally",
        ),
    }
}

/// A digest as `SEQ:HASH` (the store's reading of one), from sequence 1: the sequence and
/// the hash in lower-case hex.
fn parse_digest(digest: &str) -> Result<(u64, String), String> {
    let d = Digest::parse(digest.trim())?;
    if d.seq == 0 {
        return Err(format!(
            "digest {digest:?} names sequence 0, before the first event: there is nothing to check"
        ));
    }
    Ok((d.seq, d.hash_hex()))
}

/// The hash (hex) the chain holds at `seq`, vouched for by the events around it; None when
/// the ledger ends before it.
fn hash_at(view: &Ledger, seq: u64) -> Result<Option<String>, String> {
    let head = view.head().map_err(|e| e.to_string())?;
    if seq > head.seq {
        return Ok(None);
    }
    view.vouch([seq]).map_err(|e| e.to_string())?;
    Ok(view
        .digest_at(seq)
        .map_err(|e| e.to_string())?
        .map(|d| d.hash_hex()))
}

/// `GET /v1/export`: every event as the command line's `export` writes it, streamed from
/// the published view (events recorded meanwhile are not in it), each chunk vouched for by
/// the chain first. A stream that breaks off ends without its last chunk: a client sees it
/// incomplete, never wrong.
async fn export(State(app): State<App>, uri: axum::http::Uri) -> Response {
    if let Some(refused) = takes_none(&uri) {
        return refused;
    }
    export_view(app.published.load_full()).await
}

/// The export of one published view.
async fn export_view(view: Arc<Ledger>) -> Response {
    let head = view.state().head();
    let (tx, mut rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        let mut next = 1;
        while next <= head {
            let upto = head.min(next + 4 * feed::CHUNK - 1);
            let v = view.clone();
            let chunk = tokio::task::spawn_blocking(move || feed::lines(&v, next, upto)).await;
            let bytes = match chunk {
                Ok(Ok(lines)) => {
                    let mut out = String::new();
                    for (_, _, line) in lines {
                        out.push_str(&line);
                        out.push('\n');
                    }
                    Ok(Bytes::from(out))
                }
                Ok(Err(why)) => Err(std::io::Error::other(why)),
                Err(_) => Err(std::io::Error::other("the export stopped abnormally")),
            };
            let failed = bytes.is_err();
            if tx.send(bytes).await.is_err() || failed {
                return;
            }
            next = upto + 1;
        }
        // the end line names the count and head of what was sent, as the local export's does
        let end = match view.store().get(head) {
            Ok(Some(env)) => Ok(Bytes::from(eduledger_store::end_line(
                &eduledger_store::Digest {
                    seq: head,
                    hash: env.hash,
                },
            ))),
            Ok(None) if head == 0 => Ok(Bytes::from(eduledger_store::end_line(
                &eduledger_store::Digest {
                    seq: 0,
                    hash: eduledger_store::GENESIS_HASH,
                },
            ))),
            _ => Err(std::io::Error::other("the export's head could not be read")),
        };
        let _ = tx.send(end).await;
    });
    let stream = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
    (
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(stream),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(lines: &[&str]) -> Job {
        let (reply, _) = oneshot::channel();
        Job {
            commands: lines.iter().map(|l| parse_submission(l).unwrap()).collect(),
            actor: "t".into(),
            token_sha256: String::new(),
            if_match: None,
            request: None,
            reply,
        }
    }

    const TEACHER: &str = r#"{"command":"register_teacher","staff_no":"T1","name":"教师","home":"甲","on":"2024-09-01"}"#;
    const REVOKE: &str = r#"{"command":"revoke_access","principal":"x","on":"2030-01-01"}"#;

    #[test]
    fn a_group_ends_after_a_batch_that_changes_access() {
        let mut waiting = vec![job(&[TEACHER]), job(&[REVOKE]), job(&[TEACHER])].into_iter();
        let first = waiting.next().unwrap();
        let (group, carried) = gather(first, || waiting.next());
        assert_eq!(group.len(), 2, "the revocation closes the group");
        assert!(carried.is_none());
        assert_eq!(
            waiting.len(),
            1,
            "the batch after it waits for the next group"
        );
        // and one that starts with an access change stands alone
        let mut waiting = vec![job(&[TEACHER])].into_iter();
        let (group, _) = gather(job(&[REVOKE]), || waiting.next());
        assert_eq!(group.len(), 1);
    }

    #[test]
    fn a_batch_with_if_match_starts_a_group() {
        let mut checked = job(&[TEACHER]);
        checked.if_match = Some(7);
        let mut waiting = vec![job(&[TEACHER]), checked, job(&[TEACHER])].into_iter();
        let (group, carried) = gather(job(&[TEACHER]), || waiting.next());
        assert_eq!(group.len(), 2, "the group stops before it");
        assert_eq!(
            carried.and_then(|j| j.if_match),
            Some(7),
            "and it leads the next"
        );
    }

    #[test]
    fn a_group_stops_before_the_batch_that_would_make_it_too_large() {
        let big = vec![TEACHER; GROUP_COMMANDS - 2];
        let mut waiting = vec![job(&[TEACHER]), job(&[TEACHER, TEACHER])].into_iter();
        let (group, carried) = gather(job(&big), || waiting.next());
        assert_eq!(group.len(), 2);
        assert_eq!(carried.map(|j| j.commands.len()), Some(2));
    }
}
