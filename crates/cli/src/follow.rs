//! `eduledger follow URL --db COPY`: a verified read-only copy of a server's ledger, kept
//! from its live feed. Nothing the server says is taken on trust: every event's bytes must
//! hash to its hash, continue the copy's chain, decode as the domain reads it and pass every
//! check the ledger makes before it records (time order, the rules against the copy's
//! state), or the follower stops (exit 3) and writes nothing of it.

use std::path::Path;
use std::time::Duration;

use eduledger_client::{ClientError, Remote};
use eduledger_ledger::Ledger;
use eduledger_store::{Envelope, parse_line};

use crate::{Failure, Globals, clock};

/// Most events appended (and fsynced) together.
const BATCH: usize = 1024;
/// Most bytes held before they are appended.
const BATCH_BYTES: usize = 64 << 20;
/// Longest wait between reconnections.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

fn refuse(seq: u64, why: String) -> Failure {
    Failure::Ledger(format!(
        "the feed's event {seq} is refused, and nothing of it is copied: {why}"
    ))
}

/// One event read from the feed, checked on its own (its chain link is the store's check).
fn checked(id: Option<&str>, data: &str) -> Result<(Envelope, Vec<u8>), Failure> {
    let (env, raw) = parse_line(data).map_err(|why| refuse(0, why))?;
    if id.and_then(|i| i.parse::<u64>().ok()) != Some(env.seq) {
        return Err(refuse(
            env.seq,
            format!("its id {id:?} is not its sequence"),
        ));
    }
    eduledger_domain::Event::decode(&env.event_type, env.schema_version, &env.payload)
        .map_err(|e| refuse(env.seq, format!("the domain cannot read it ({e})")))?;
    Ok((env, raw))
}

fn transport(e: ClientError) -> Failure {
    match e {
        ClientError::Usage(m) => Failure::Usage(m),
        // (a passing trouble is tried again; a certificate not trusted or an answer that is
        // not HTTP will not pass by itself)
        ClientError::Interrupted(m) => Failure::Refused(m),
        ClientError::Transport(m) => Failure::Usage(m),
    }
}

/// Follow `url` into the ledger at `--db`: catch up, then keep up (reconnecting after the
/// server goes away), printing the copy's digest after each durable append — or, with
/// `once`, stop at the head the server had when asked and print that digest only.
pub fn run(
    g: &Globals,
    url: &str,
    token: &str,
    ca: Option<&Path>,
    once: bool,
) -> Result<(), Failure> {
    let remote = Remote::new(url, token, ca).map_err(transport)?;
    let mut ledger = Ledger::open(g.db_path(), clock())?;
    let target = if once {
        let r = remote
            .request("GET", "/v1/head", &[], b"")
            .map_err(transport)?;
        if r.status != 200 {
            let why = format!(
                "{url}/v1/head answered {}: {}",
                r.status,
                String::from_utf8_lossy(&r.body).trim()
            );
            return Err(if r.status == 401 || r.status == 403 {
                Failure::Usage(why)
            } else {
                Failure::Refused(why)
            });
        }
        let v: serde_json::Value = serde_json::from_slice(&r.body)
            .map_err(|e| Failure::Refused(format!("{url}/v1/head: {e}")))?;
        Some(
            v["seq"]
                .as_u64()
                .ok_or_else(|| Failure::Refused(format!("{url}/v1/head has no seq")))?,
        )
    } else {
        None
    };
    let mut backoff = Duration::from_millis(500);
    loop {
        let head = ledger.head()?;
        if target.is_some_and(|t| head.seq >= t) {
            outln!("{head}");
            return Ok(());
        }
        match follow_once(&remote, &mut ledger, target, !once) {
            Ok(()) => backoff = Duration::from_millis(500),
            Err(Failure::Refused(why)) if !once => {
                eprintln!("{why}; connecting again in {} s", backoff.as_secs_f64());
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => return Err(e),
        }
        if once {
            let head = ledger.head()?;
            if target.is_some_and(|t| head.seq < t) {
                return Err(Failure::Refused(format!(
                    "the feed ended at {} before the head {} the server had",
                    head.seq,
                    target.unwrap_or(0)
                )));
            }
        }
    }
}

/// One connection to the feed, from the copy's head on, until it ends or `target` is in.
fn follow_once(
    remote: &Remote,
    store: &mut Ledger,
    target: Option<u64>,
    announce: bool,
) -> Result<(), Failure> {
    let from = store.head()?.seq + 1;
    let (status, _, mut lines) = remote
        .stream(
            &format!("/v1/events?from={from}"),
            &[("Accept", "text/event-stream")],
        )
        .map_err(transport)?;
    if status != 200 {
        let mut body = String::new();
        while let Ok(Some(l)) = lines.next_line() {
            body.push_str(&l);
            if body.len() > 4096 {
                break;
            }
        }
        let why = format!("the feed answered {status}: {}", body.trim());
        // a token refused is not a passing trouble
        return Err(if status == 401 || status == 403 {
            Failure::Usage(why)
        } else {
            Failure::Refused(why)
        });
    }
    let mut pending: Vec<(Envelope, Vec<u8>)> = Vec::new();
    let (mut id, mut kind, mut data) = (None::<String>, None::<String>, String::new());
    loop {
        let line = lines.next_line().map_err(transport)?;
        let Some(line) = line else {
            flush(store, &mut pending, announce)?;
            return Err(Failure::Refused("the feed ended".into()));
        };
        if line.is_empty() {
            if kind.as_deref() == Some("error") {
                flush(store, &mut pending, announce)?;
                return Err(Failure::Ledger(format!("the server's feed failed: {data}")));
            }
            if !data.is_empty() {
                pending.push(checked(id.as_deref(), &data)?);
            }
            (id, kind) = (None, None);
            data.clear();
            let done = target.is_some_and(|t| pending.last().is_some_and(|(e, _)| e.seq >= t));
            let held: usize = pending.iter().map(|(_, raw)| raw.len()).sum();
            if pending.len() >= BATCH || held >= BATCH_BYTES || !lines.has_buffered() || done {
                flush(store, &mut pending, announce)?;
            }
            if done {
                return Ok(());
            }
            continue;
        }
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => kind = Some(value.to_owned()),
            "data" => {
                // an event is one export line: at most MAX_LINE_BYTES, however it is split
                if data.len() + value.len() + 1 > eduledger_store::MAX_LINE_BYTES as usize {
                    return Err(refuse(
                        id.as_deref().and_then(|i| i.parse().ok()).unwrap_or(0),
                        format!(
                            "it is over {} bytes, more than any export line",
                            eduledger_store::MAX_LINE_BYTES
                        ),
                    ));
                }
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(value);
            }
            _ => {}
        }
    }
}

/// Append what was read, admitted by the ledger against the copy's chain and state, with
/// one fsync.
fn flush(
    store: &mut Ledger,
    pending: &mut Vec<(Envelope, Vec<u8>)>,
    announce: bool,
) -> Result<(), Failure> {
    use std::io::Write as _;
    if pending.is_empty() {
        return Ok(());
    }
    let first = pending[0].0.seq;
    let head = store
        .append_sealed(pending)
        .map_err(|e| refuse(first, e.to_string()))?;
    pending.clear();
    if announce {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{head}");
        let _ = out.flush();
    }
    Ok(())
}
