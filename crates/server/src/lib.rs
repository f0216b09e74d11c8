//! `eduledger serve`: the ledger as a backend over HTTP (the design's SERVER.md) — a first
//! slice. The `Ledger` stays the one place that decides and appends; this crate adds the
//! transport, access by bearer token (recorded grants, `eduledger access grant`) and a group
//! commit around `Ledger::execute_group`.
//!
//! What is here: `GET /healthz`; the reads as the command line answers them, byte for byte
//! (`/v1/head`, `/v1/groups[/{name}]`, `/v1/kindergartens/{name}`, `/v1/teachers/{staff_no}`,
//! `/v1/history/{kind}/{id}`, `/v1/log`, `/v1/tally/{year}`, `/v1/reports/{kind}[/{year}]`,
//! `/v1/access`), each with `?on=&known_at=`; `POST /v1/commands` (JSON Lines or a JSON
//! array, all or nothing), acknowledged only after its group's fsync; 401 and 403 as the
//! contract says. Not yet: TLS (so only loopback addresses are served), recorders scoped to
//! groups (refused with 403 until their scope is checked), `If-Match`, `Idempotency-Key`, the
//! live feed, `/metrics`, the console.
//!
//! Reads and the writer share the ledger behind a reader-writer lock: reads run together on
//! tokio's blocking pool and wait only while a group is being appended (a published-state
//! design that never waits is the next step).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query as UrlQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use eduledger_domain::values::Role;
use eduledger_domain::{Command, Submission, parse_submission};
use eduledger_ledger::{Batch, Ledger, LedgerError};
use eduledger_query::{self as query, EntityKind, Query, QueryError, Report};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

/// Most commands in one request.
pub const MAX_COMMANDS: usize = 10_000;
/// Requests waiting for the writer before new ones get 503.
pub const QUEUE: usize = 1024;

/// How to serve.
#[derive(Debug, Clone)]
pub struct Config {
    /// The ledger directory.
    pub db: PathBuf,
    /// Largest request body, in bytes.
    pub max_body: usize,
}

/// A batch waiting for the writer.
struct Job {
    commands: Vec<Submission>,
    actor: String,
    reply: oneshot::Sender<Result<Vec<u64>, LedgerError>>,
}

#[derive(Clone)]
struct App {
    ledger: Arc<RwLock<Ledger>>,
    writes: mpsc::Sender<Job>,
}

/// Refuse an address a token could cross a network from: without TLS, loopback only.
pub fn check_listen(addr: &SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!(
            "--listen {addr}: not a loopback address, and bearer tokens must never cross a network in clear; TLS is not built yet"
        ))
    }
}

/// Serve on `listener` until `shutdown` resolves; then finish what is in flight (every
/// acknowledged batch is durable) and close the ledger.
pub async fn serve(
    ledger: Ledger,
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let ledger = Arc::new(RwLock::new(ledger));
    let (tx, rx) = mpsc::channel::<Job>(QUEUE);
    let writer = {
        let ledger = ledger.clone();
        std::thread::Builder::new()
            .name("eduledger-writer".into())
            .spawn(move || write_groups(ledger, rx))?
    };
    let app = router(
        App {
            ledger: ledger.clone(),
            writes: tx,
        },
        config.max_body,
    );
    info!(db = %config.db.display(), "serving");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    // the router (and its sender) is gone: the writer drains what is queued, then stops
    if writer.join().is_err() {
        warn!("the writer stopped abnormally");
    }
    served
}

/// The writer: takes every batch waiting, decides each on its own and appends all accepted
/// ones with one fsync, then answers each.
fn write_groups(ledger: Arc<RwLock<Ledger>>, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < 256 {
            match rx.try_recv() {
                Ok(j) => jobs.push(j),
                Err(_) => break,
            }
        }
        let outcomes = {
            let mut l = match ledger.write() {
                Ok(l) => l,
                Err(p) => p.into_inner(),
            };
            let batches: Vec<Batch> = jobs
                .iter()
                .map(|j| Batch {
                    commands: &j.commands,
                    actor: &j.actor,
                })
                .collect();
            l.execute_group(&batches)
        };
        match outcomes {
            Ok(outcomes) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.reply.send(outcome);
                }
            }
            Err(e) => {
                let message = e.to_string();
                for job in jobs {
                    let _ = job.reply.send(Err(LedgerError::Input(format!(
                        "nothing recorded: {message}"
                    ))));
                }
            }
        }
    }
}

fn router(app: App, max_body: usize) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
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
        .route("/v1/commands", post(commands))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

/// A JSON answer with a status.
fn json(status: StatusCode, value: serde_json::Value) -> Response {
    let mut body = serde_json::to_string_pretty(&value).unwrap_or_default();
    body.push('\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    json(status, serde_json::json!({ "error": message.into() }))
}

/// Who is asking: the principal a valid bearer token belongs to today (its name, role and
/// whether it is limited to groups), or why not (answered with 401).
fn principal(app: &App, headers: &HeaderMap) -> Result<(String, Role, bool), &'static str> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or("this needs a bearer token (Authorization: Bearer …); `eduledger access grant` gives one")?;
    let sha = hex::encode(Sha256::digest(token.as_bytes()));
    let l = app.ledger.read().unwrap_or_else(|p| p.into_inner());
    // today in the ledger's zone: never a command's own date (a revoked token stays revoked)
    match l
        .state()
        .principal_by_token(&sha, eduledger_ledger::clock::today())
    {
        Some((name, grant)) => Ok((name.to_string(), grant.role, !grant.groups.is_empty())),
        None => Err("this token is unknown, revoked or not yet in force"),
    }
}

#[derive(Debug, Deserialize, Default)]
struct Params {
    on: Option<String>,
    known_at: Option<String>,
    from: Option<u64>,
    limit: Option<usize>,
    explain: Option<bool>,
}

impl Params {
    fn query(&self) -> Query {
        Query {
            on: self.on.clone(),
            known_at: self.known_at.clone(),
        }
    }
}

/// Run a read on the blocking pool and answer with the CLI's JSON document.
async fn read(
    app: App,
    headers: HeaderMap,
    f: impl FnOnce(&Ledger) -> Result<Report, QueryError> + Send + 'static,
) -> Response {
    if let Err(why) = principal(&app, &headers) {
        return error(StatusCode::UNAUTHORIZED, why);
    }
    let answer = tokio::task::spawn_blocking(move || {
        let l = app.ledger.read().unwrap_or_else(|p| p.into_inner());
        f(&l)
    })
    .await;
    match answer {
        Ok(Ok(report)) => json(StatusCode::OK, report.json),
        Ok(Err(QueryError::Refused(m))) => error(StatusCode::UNPROCESSABLE_ENTITY, m),
        Ok(Err(QueryError::Usage(m))) => error(StatusCode::BAD_REQUEST, m),
        Ok(Err(QueryError::Ledger(m))) => error(StatusCode::SERVICE_UNAVAILABLE, m),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the read stopped abnormally",
        ),
    }
}

async fn head(State(app): State<App>, headers: HeaderMap) -> Response {
    if let Err(why) = principal(&app, &headers) {
        return error(StatusCode::UNAUTHORIZED, why);
    }
    let l = app.ledger.read().unwrap_or_else(|p| p.into_inner());
    match l.head() {
        Ok(h) => json(
            StatusCode::OK,
            serde_json::json!({"seq": h.seq, "hash": h.hash_hex()}),
        ),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

async fn groups(
    State(app): State<App>,
    headers: HeaderMap,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, headers, move |l| query::groups(l, &p.query())).await
}

async fn group(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, headers, move |l| query::group(l, &name, &p.query())).await
}

async fn kindergarten(
    State(app): State<App>,
    headers: HeaderMap,
    Path(name): Path<String>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, headers, move |l| {
        query::kindergarten(l, &name, &p.query())
    })
    .await
}

async fn teacher(
    State(app): State<App>,
    headers: HeaderMap,
    Path(staff_no): Path<String>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, headers, move |l| {
        query::teacher(l, &staff_no, &p.query())
    })
    .await
}

async fn history(
    State(app): State<App>,
    headers: HeaderMap,
    Path((kind, id)): Path<(String, String)>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    let kind = match kind.as_str() {
        "group" => EntityKind::Group,
        "kindergarten" => EntityKind::Kindergarten,
        "teacher" => EntityKind::Teacher,
        "rotation" => EntityKind::Rotation,
        "training" => EntityKind::Training,
        "activity" => EntityKind::Activity,
        "project" => EntityKind::Project,
        "access" => EntityKind::Principal,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!(
                    "{other:?} is not a kind with a history: group, kindergarten, teacher, rotation, training, activity, project or access"
                ),
            );
        }
    };
    read(app, headers, move |l| {
        query::history(l, kind, &id, &p.query())
    })
    .await
}

async fn log(
    State(app): State<App>,
    headers: HeaderMap,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    let (from, limit) = (p.from.unwrap_or(1), p.limit.unwrap_or(100).min(10_000));
    read(app, headers, move |l| {
        query::log(l, from, limit, &p.query())
    })
    .await
}

async fn tally(
    State(app): State<App>,
    headers: HeaderMap,
    Path(year): Path<i32>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    let explain = p.explain.unwrap_or(false);
    read(app, headers, move |l| {
        query::tally(l, year, explain, None, &p.query())
    })
    .await
}

async fn balance(
    State(app): State<App>,
    headers: HeaderMap,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, headers, move |l| query::balance(l, &p.query())).await
}

async fn report(
    State(app): State<App>,
    headers: HeaderMap,
    Path((kind, year)): Path<(String, i32)>,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
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
    read(app, headers, move |l| f(l, year, &p.query())).await
}

async fn access(
    State(app): State<App>,
    headers: HeaderMap,
    UrlQuery(p): UrlQuery<Params>,
) -> Response {
    read(app, headers, move |l| query::access(l, &p.query())).await
}

/// `POST /v1/commands`: a batch, all or nothing, acknowledged after its fsync.
async fn commands(State(app): State<App>, headers: HeaderMap, body: Bytes) -> Response {
    let (name, role, scoped) = match principal(&app, &headers) {
        Ok(p) => p,
        Err(why) => return error(StatusCode::UNAUTHORIZED, why),
    };
    if role == Role::Auditor {
        return error(
            StatusCode::FORBIDDEN,
            format!("{name} is an auditor: it reads, verifies and exports, and records nothing"),
        );
    }
    if scoped {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "{name} is a recorder limited to groups, and this server cannot check that scope yet; it records nothing for now"
            ),
        );
    }
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the body is not UTF-8");
    };
    let lines: Vec<String> = if text.trim_start().starts_with('[') {
        match serde_json::from_str::<Vec<serde_json::Value>>(text) {
            Ok(items) => items.iter().map(|v| v.to_string()).collect(),
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("the body is not a JSON array: {e}"),
                );
            }
        }
    } else {
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    if lines.is_empty() {
        return error(
            StatusCode::BAD_REQUEST,
            "nothing to record: the batch is empty",
        );
    }
    if lines.len() > MAX_COMMANDS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} commands; at most {MAX_COMMANDS} in one request",
                lines.len()
            ),
        );
    }
    let mut submissions = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        match parse_submission(line) {
            Ok(s) => submissions.push(s),
            Err(e) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    serde_json::json!({"error": e.to_string(), "line": i + 1}),
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
                serde_json::json!({"error": format!("meta.actor names {actor}, but the token is {name}'s: what a principal records is recorded as its own"), "line": i + 1}),
            );
        }
        let bureau_only = matches!(
            s.command,
            Command::GrantAccess(_)
                | Command::RevokeAccess(_)
                | Command::CorrectEvent(_)
                | Command::RetractEvent(_)
        );
        if bureau_only && role != Role::Admin {
            return json(
                StatusCode::FORBIDDEN,
                serde_json::json!({"error": format!("{} is for an admin: access and corrections change what others may do or did", s.command.name()), "line": i + 1}),
            );
        }
    }
    let (reply, answer) = oneshot::channel();
    let job = Job {
        commands: submissions,
        actor: name,
        reply,
    };
    if app.writes.try_send(job).is_err() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            "{\"error\": \"the write queue is full; try again shortly\"}\n",
        )
            .into_response();
    }
    match answer.await {
        Ok(Ok(seqs)) => {
            let l = app.ledger.read().unwrap_or_else(|p| p.into_inner());
            let head = l.head().ok();
            json(
                StatusCode::OK,
                serde_json::json!({"seqs": seqs, "head": head.map(|h| serde_json::json!({"seq": h.seq, "hash": h.hash_hex()}))}),
            )
        }
        Ok(Err(e)) if e.is_ledger_fault() => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        Ok(Err(e)) => error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the writer stopped before answering",
        ),
    }
}
