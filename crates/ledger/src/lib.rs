//! eduledger-ledger: the one place that executes commands and answers bitemporal reads.
//!
//! Execute = read state → decide → encode → append (one sled transaction) → keep the new
//! state. Reads = the state folded from the log's prefix up to a cut (`known_at`), with
//! corrections and retractions applied as of that cut, then evaluated on a valid-time date by
//! the projection crate. The CLI calls this; a later HTTP server would call the same.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use eduledger_domain::state::{
    Activity, Grant, Group, Kindergarten, Override, Project, Rotation, RulesAdoption, Teacher,
    Training,
};
use eduledger_domain::values::{GroupName, KgId, KgName, RecordId, StaffNo};
use eduledger_domain::{Command, DomainError, Event, Origin, State, Submission, Target};
use eduledger_store::{
    Clock, Digest, Durability, Envelope, ExpectedVersion, Metadata, NewEvent, Store, StoreError,
    StreamAppend,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use thiserror::Error;
use tracing::{info, info_span, warn};
use uuid::Uuid;

mod admit;
mod audit;

pub use admit::validate_log;

/// Stream that holds every correction and retraction, so they are found without a scan.
pub const CORRECTIONS_STREAM: &str = "corrections";
/// Tag of the folded-state snapshots this build writes and reads; change it whenever
/// `State`'s shape changes, and old snapshots are discarded at open.
pub const SNAPSHOT_TAG: &str = "state-v15";
/// A snapshot is written every this many events while folding.
pub const SNAPSHOT_EVERY: u64 = 50_000;

/// What can go wrong at this level.
#[derive(Debug, Error)]
pub enum LedgerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A command broke a rule. (Boxed: the rule errors carry several names.)
    #[error(transparent)]
    Domain(Box<DomainError>),
    /// One command of a batch broke a rule; nothing of the batch was recorded.
    #[error("command {number} of the batch ({command}) was refused: {error}; nothing was recorded")]
    Batch {
        /// 1-based position in the batch.
        number: usize,
        /// The command's name.
        command: &'static str,
        /// The rule it broke.
        error: Box<DomainError>,
    },
    /// Bad input that is not a domain rule (a batch mixing corrections with other commands).
    #[error("{0}")]
    Input(String),
    /// An answer larger than the reader's budget ([`Budget`]).
    #[error("{0}")]
    TooLarge(String),
}

impl From<DomainError> for LedgerError {
    fn from(e: DomainError) -> LedgerError {
        LedgerError::Domain(Box::new(e))
    }
}

impl LedgerError {
    /// True when the ledger itself cannot be trusted or opened (CLI exit code 3).
    pub fn is_ledger_fault(&self) -> bool {
        match self {
            LedgerError::Store(e) => e.is_ledger_fault(),
            LedgerError::Domain(e) => matches!(**e, DomainError::Undecodable { .. }),
            _ => false,
        }
    }
}

type Result<T, E = LedgerError> = std::result::Result<T, E>;

/// The ledger: a store and the state folded from it.
pub struct Ledger {
    store: Arc<Store>,
    state: Arc<State>,
    ids: EventIds,
    /// Set when the ledger was opened as known at a past sequence, for reading only.
    as_of: Option<u64>,
    /// Set on a published view ([`Ledger::view`]): the head it shows, for reading only —
    /// what the writer appends after it is never seen through it.
    published: Option<Digest>,
    /// The chain is checked from this sequence on (by the fold at open, or by a read since):
    /// events before it were folded from a snapshot and are re-checked before they are shown.
    checked_from: Arc<std::sync::atomic::AtomicU64>,
    /// Stretches of `MARK_EVERY` events below `checked_from` already re-hashed between two
    /// chain marks (`audit.rs`).
    vouched: Arc<std::sync::Mutex<std::collections::HashSet<u64>>>,
    /// One audit-index catch-up at a time: readers sharing the ledger (the server) must not
    /// interleave a rebuild's clear with another's entries.
    indexing: Arc<std::sync::Mutex<()>>,
    /// The last few states folded as known at a past cut, shared by every view: a reader
    /// browses several pages at one `known_at`, and a fold at a cut is the same whenever it is
    /// made (the log's prefix never changes; corrections recorded after the cut are ignored).
    folds: Arc<Folds>,
}

/// States folded as known at past cuts, by cut, oldest first.
type Folds = std::sync::Mutex<std::collections::VecDeque<(u64, Arc<State>)>>;

/// Past folds kept ([`Ledger::state_at`]): each is a whole state (hundreds of MiB at
/// Shanghai scale), so only a couple.
pub const KEPT_FOLDS: usize = 2;

/// One batch of a group commit ([`Ledger::execute_group`]).
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Its commands, all or nothing.
    pub commands: &'a [Submission],
    /// Who records them (each command's `meta.actor` may say otherwise).
    pub actor: &'a str,
    /// The groups a recorder is limited to (empty: none): every event must lie within them
    /// on its date ([`eduledger_domain::rules::outside_scope`]).
    pub scope: &'a [GroupName],
    /// Sent with an idempotency key: its events' ids are derived from the key, and a note
    /// of it is written with them ([`Ledger::answered`]).
    pub request: Option<&'a Request>,
}

/// A batch sent with an idempotency key (the server's `Idempotency-Key`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Who sent it and its key, as one string (`principal` and the key, newline between).
    pub key: String,
    /// SHA-256 of the request's body: the same key with another body is refused.
    pub body_sha256: [u8; 32],
}

impl Request {
    /// The id of the `k`-th event of the batch sent with this key and body: derived, never
    /// random, so the chain itself says which events a key recorded, and for which body.
    pub fn event_id(&self, k: usize) -> Uuid {
        request_event_id(&self.key, &self.body_sha256, k)
    }

    fn note_key(&self) -> Vec<u8> {
        format!("request:{}", self.key).into_bytes()
    }
}

/// Most commands a batch sent with an idempotency key may hold (the server's own limit).
pub const MAX_REQUEST_COMMANDS: usize = 10_000;

fn request_event_id(key: &str, body_sha256: &[u8], k: usize) -> Uuid {
    let mut h = Sha256::new();
    h.update(b"eduledger idempotency key\n");
    h.update(key.as_bytes());
    h.update(b"\n");
    h.update(body_sha256);
    h.update((k as u64).to_be_bytes());
    let d = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&d[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// What [`Ledger::answered`] found of a key sent before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    /// The same body was recorded: its sequences, and the digest right after it.
    Recorded {
        /// The sequences its events were given.
        seqs: Vec<u64>,
        /// The digest right after its last event.
        head: Digest,
    },
    /// The key was used for another body.
    OtherBody,
}

/// A batch decided and not yet written ([`Ledger::decide_batch`]).
#[derive(Debug)]
pub struct Decided {
    parts: Vec<StreamAppend>,
    pending: Vec<(u64, Event)>,
    state: State,
}

impl Decided {
    /// The events the batch would record, with the sequences they would get.
    pub fn events(&self) -> &[(u64, Event)] {
        &self.pending
    }
    /// The state after the batch.
    pub fn state(&self) -> &State {
        &self.state
    }
}

/// How event ids are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventIds {
    /// UUID v7 from the system time and random bits (production).
    #[default]
    Random,
    /// UUID v7 laid out from the sequence number alone, so a run with an injected clock is
    /// byte-for-byte reproducible (tests, fixtures, the golden outputs).
    Deterministic,
}

impl EventIds {
    fn make(self, seq: u64) -> Uuid {
        match self {
            EventIds::Random => Uuid::now_v7(),
            EventIds::Deterministic => {
                let mut tail = [0u8; 10];
                tail[2..].copy_from_slice(&seq.to_be_bytes());
                uuid::Builder::from_unix_timestamp_millis(seq, &tail).into_uuid()
            }
        }
    }
}

/// One entry of an audit trail.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Sequence.
    pub seq: u64,
    /// Event id.
    pub event_id: Uuid,
    /// When recorded (µs since epoch).
    pub recorded_at_us: i64,
    /// When recorded, RFC 3339 in the ledger's zone (+08:00).
    pub recorded_at: String,
    /// Who.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// On what authority.
    pub source: Option<String>,
    /// Event type.
    pub event_type: String,
    /// The event.
    pub event: serde_json::Value,
    /// Hash of the envelope.
    pub hash: String,
    /// `effective`, `corrected`, `retracted`, `correction` or `retraction`.
    pub status: &'static str,
    /// Corrections or retractions of this entry, as of the cut.
    pub corrected_by: Vec<u64>,
    /// For a correction or retraction: what it targets.
    pub targets: Option<u64>,
}

/// The bureau's clock. Every ledger reads time in Asia/Shanghai — China Standard Time,
/// UTC+8 all year (no daylight saving since 1991) — so every copy of a ledger answers a
/// `--known-at` date, a default `--on` and a shown time alike, whatever zone the machine is
/// set to. It is part of the ledger's format (docs/DECISIONS.md), not a setting.
pub mod clock {
    use chrono::{FixedOffset, NaiveDateTime, TimeZone as _};
    use eduledger_domain::values::Date;

    /// The zone's name.
    pub const ZONE: &str = "Asia/Shanghai";
    // checked when compiling: +08:00 is a valid offset
    const OFFSET: FixedOffset = match FixedOffset::east_opt(8 * 3600) {
        Some(z) => z,
        None => panic!("+08:00 is a valid offset"),
    };

    /// The ledger's zone as a fixed offset (+08:00).
    pub fn zone() -> FixedOffset {
        OFFSET
    }

    /// Today in the ledger's zone.
    pub fn today() -> Date {
        Date::from_naive(chrono::Utc::now().with_timezone(&zone()).date_naive())
    }

    /// The day (in the ledger's zone) of a time given as microseconds since the epoch, such
    /// as a [`Clock`]'s reading.
    pub fn day_of_us(us: i64) -> Option<Date> {
        chrono::DateTime::from_timestamp_micros(us)
            .map(|t| Date::from_naive(t.with_timezone(&zone()).date_naive()))
    }

    /// A wall-clock time in the ledger's zone, as microseconds since the epoch.
    pub fn local_us(t: NaiveDateTime) -> Option<i64> {
        zone()
            .from_local_datetime(&t)
            .single()
            .map(|t| t.timestamp_micros())
    }

    /// The last microsecond of `date` in the ledger's zone: "known at a date" is "recorded
    /// by the end of that day in Shanghai".
    pub fn end_of_day_us(date: Date) -> i64 {
        date.succ()
            .naive()
            .and_hms_opt(0, 0, 0)
            .and_then(local_us)
            .map(|us| us - 1)
            .unwrap_or(i64::MAX)
    }

    /// RFC 3339 in the ledger's zone, with its offset (`2024-03-01T09:30:00.000000+08:00`).
    pub fn rfc3339(us: i64) -> String {
        chrono::DateTime::from_timestamp_micros(us)
            .map(|t| {
                t.with_timezone(&zone())
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
            })
            .unwrap_or_else(|| us.to_string())
    }
}

pub use clock::rfc3339;

fn decode(env: &Envelope) -> Result<Event> {
    Event::decode(&env.event_type, env.schema_version, &env.payload).map_err(|reason| {
        LedgerError::from(DomainError::Undecodable {
            seq: env.seq,
            reason,
        })
    })
}

/// Every override recorded at or before `cut`, latest per target.
fn effective_overrides(
    all: &imbl::OrdMap<u64, Override>,
    cut: u64,
) -> HashMap<u64, (u64, Override)> {
    let mut out = HashMap::new();
    for (seq, o) in all.range(..=cut) {
        out.insert(o.target, (*seq, o.clone()));
    }
    out
}

impl Ledger {
    /// Open (or create) the ledger at `path`.
    pub fn open(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Ledger> {
        Ledger::open_with_snapshots(path, clock, SNAPSHOT_EVERY)
    }

    /// Open, leaving a snapshot of the folded state every `every` events (0: none).
    pub fn open_with_snapshots(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
        every: u64,
    ) -> Result<Ledger> {
        let span = info_span!("open");
        let _enter = span.enter();
        let store = Store::open_with_clock(path, clock)?;
        Ledger::fold_store(store, None, every)
    }

    /// Open for reading as known at the sequence `cut` picks (None: everything), folding only
    /// that prefix: a historical read never builds the present state it does not need. A
    /// ledger opened in the past cannot record.
    pub fn open_as_of(
        path: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
        cut: impl FnOnce(&Store) -> Result<Option<u64>>,
    ) -> Result<Ledger> {
        let span = info_span!("open_as_of");
        let _enter = span.enter();
        let store = Store::open_with_clock(path, clock)?;
        let cut = cut(&store)?;
        Ledger::fold_store(store, cut, SNAPSHOT_EVERY)
    }

    fn fold_store(store: Store, cut: Option<u64>, every: u64) -> Result<Ledger> {
        store.discard_snapshots_except(SNAPSHOT_TAG)?;
        let overrides = load_overrides(&store)?;
        let head = store.head()?.seq;
        let as_of = cut.filter(|c| *c < head);
        let folded = match as_of {
            // snapshots are left behind only by folds of the whole log
            Some(c) => fold(
                &store,
                c,
                &overrides,
                Validate::No,
                0,
                &[],
                Snapshots::Use,
                None,
            )?,
            None => fold(
                &store,
                head,
                &overrides,
                Validate::No,
                every,
                &[],
                Snapshots::Use,
                None,
            )?,
        };
        info!(head, as_of, "ledger open");
        Ok(Ledger {
            store: Arc::new(store),
            state: Arc::new(folded.state),
            ids: EventIds::Random,
            as_of,
            published: None,
            checked_from: Arc::new(std::sync::atomic::AtomicU64::new(folded.chain_from)),
            vouched: Default::default(),
            indexing: Default::default(),
            folds: Default::default(),
        })
    }

    /// Choose how event ids are made (default: random UUID v7).
    pub fn with_event_ids(mut self, ids: EventIds) -> Ledger {
        self.ids = ids;
        self
    }

    /// Close the ledger in a process that is about to exit: what sled holds is handed to the
    /// operating system (a read may have caught the audit index up), and the folded state is left to the
    /// operating system instead of being freed piece by piece (a tenth of a second at
    /// Shanghai scale, after the answer is already printed).
    pub fn close_for_exit(self) {
        // Not an fsync: a read wrote nothing acknowledged, and what it may have written (the
        // audit index, caught up) is derived and caught up again by the next reader.
        if let Err(e) = self.store.flush_buffers() {
            warn!("the audit index may be caught up again by the next read ({e})");
        }
        std::mem::forget(self);
    }

    /// A read-only view of the ledger as it stands now, sharing its store and state: reads
    /// through it answer as of this head while this ledger goes on recording (the server
    /// publishes one after every durable group). Call it only when what the store holds is
    /// durable — it shows the head the store has now.
    pub fn view(&self) -> Result<Ledger> {
        Ok(Ledger {
            store: self.store.clone(),
            state: self.state.clone(),
            ids: self.ids,
            as_of: self.as_of,
            published: Some(self.head()?),
            checked_from: self.checked_from.clone(),
            vouched: self.vouched.clone(),
            indexing: self.indexing.clone(),
            folds: self.folds.clone(),
        })
    }

    /// Whether this ledger shows only its state's prefix of the log: opened as known at a
    /// cut, or a published view — events the store holds past it are not shown.
    fn bounded(&self) -> bool {
        self.as_of.is_some() || self.published.is_some()
    }

    fn may_record(&self) -> Result<()> {
        if let Some(at) = self.as_of {
            return Err(LedgerError::Input(format!(
                "this ledger was opened as known at sequence {at}, for reading; open it normally to record"
            )));
        }
        if let Some(head) = self.published {
            return Err(LedgerError::Input(format!(
                "this is a view of the ledger at sequence {}, for reading; the ledger itself records",
                head.seq
            )));
        }
        Ok(())
    }

    /// Whether a batch was recorded with `request`'s key before, and with which body. The
    /// chain answers first: the events a key and body recorded carry ids derived from both,
    /// so a retry of the same body is found from the log alone (also in a copy or an import,
    /// which hold no notes). The note written with a batch says which body a key was used
    /// for; it is believed only when the events it names carry the ids of its own body. A
    /// note the chain contradicts is corruption, never a reason to record again.
    pub fn answered(&self, request: &Request) -> Result<Option<Answered>> {
        let corrupt =
            |seq: u64, what: String| LedgerError::Store(StoreError::Corrupt { seq, what });
        let head = self.head()?.seq;
        // events of this key and body, contiguous from the first
        let found = |body: &[u8], first: u64| -> Result<Option<Vec<u64>>> {
            let mut seqs = Vec::new();
            for k in 0..MAX_REQUEST_COMMANDS {
                let at = first + k as u64;
                if at > head {
                    break;
                }
                match self.store.seq_of(request_event_id(&request.key, body, k))? {
                    Some(seq) if seq == at => seqs.push(seq),
                    Some(seq) => {
                        return Err(corrupt(
                            seq,
                            "an idempotency key's events are not where its batch put them".into(),
                        ));
                    }
                    None => break,
                }
            }
            Ok((!seqs.is_empty()).then_some(seqs))
        };
        let recorded = |seqs: Vec<u64>, body: &[u8]| -> Result<Answered> {
            let (first, last) = (seqs[0], seqs[seqs.len() - 1]);
            self.vouch(first..=last)?;
            let mut hash = None;
            for (k, seq) in seqs.iter().enumerate() {
                let env = self.store.get(*seq)?.ok_or_else(|| {
                    corrupt(*seq, "an event of an idempotency key is missing".into())
                })?;
                if env.event_id != request_event_id(&request.key, body, k) {
                    return Err(corrupt(
                        *seq,
                        "an idempotency key's event is not where its index says".into(),
                    ));
                }
                hash = Some(env.hash);
            }
            let hash =
                hash.ok_or_else(|| corrupt(first, "an idempotency key's batch is empty".into()))?;
            Ok(Answered::Recorded {
                seqs,
                head: Digest { seq: last, hash },
            })
        };
        if let Some(first) = self.store.seq_of(request.event_id(0))? {
            let seqs = found(&request.body_sha256, first)?
                .ok_or_else(|| corrupt(first, "an idempotency key's first event moved".into()))?;
            return recorded(seqs, &request.body_sha256).map(Some);
        }
        let Some(note) = self.store.note(&request.note_key())? else {
            return Ok(None);
        };
        let bad = || corrupt(0, "an idempotency key's note is unreadable".into());
        if note.len() != 48 {
            return Err(bad());
        }
        let body = &note[..32];
        let first = u64::from_be_bytes(note[32..40].try_into().map_err(|_| bad())?);
        // the key was used: for another body, if the chain agrees with the note
        match found(body, first)? {
            Some(seqs) if body != request.body_sha256 => {
                recorded(seqs, body)?;
                Ok(Some(Answered::OtherBody))
            }
            _ => Err(corrupt(
                first,
                "an idempotency key's note names events that do not carry its ids".into(),
            )),
        }
    }

    /// The digest right after the event at `seq` (the chain's hash there).
    pub fn digest_at(&self, seq: u64) -> Result<Option<Digest>> {
        Ok(self.store.get(seq)?.map(|env| Digest {
            seq,
            hash: env.hash,
        }))
    }

    /// The store underneath.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The state as of everything recorded.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The head digest.
    pub fn head(&self) -> Result<Digest> {
        if let Some(head) = self.published {
            return Ok(head);
        }
        Ok(self.store.head()?)
    }

    /// The state as known at sequence `cut` (None: everything recorded).
    pub fn state_at(&self, cut: Option<u64>) -> Result<Arc<State>> {
        if let Some(at) = self.as_of {
            return match cut {
                Some(c) if c == at => Ok(self.state.clone()),
                // beyond the prefix this ledger holds: fold with every correction recorded
                _ => Ok(Arc::new(rebuild(
                    &self.store,
                    cut.unwrap_or(u64::MAX).min(self.head()?.seq),
                    &load_overrides(&self.store)?,
                    Validate::No,
                    0,
                    &[],
                )?)),
            };
        }
        match cut {
            Some(c) if c < self.state.head() => {
                // (a hit moves to the back: the cut a reader keeps using stays)
                let kept = {
                    let mut folds = self.folds.lock().unwrap_or_else(|p| p.into_inner());
                    let hit = folds.iter().position(|(at, _)| *at == c);
                    hit.and_then(|i| folds.remove(i)).map(|entry| {
                        let state = entry.1.clone();
                        folds.push_back(entry);
                        state
                    })
                };
                if let Some(state) = kept {
                    return Ok(state);
                }
                let span = info_span!("state_at", cut = c);
                let _enter = span.enter();
                let state = Arc::new(rebuild(
                    &self.store,
                    c,
                    self.state.overrides(),
                    Validate::No,
                    0,
                    &[],
                )?);
                let mut folds = self.folds.lock().unwrap_or_else(|p| p.into_inner());
                if !folds.iter().any(|(at, _)| *at == c) {
                    if folds.len() >= KEPT_FOLDS {
                        folds.pop_front();
                    }
                    folds.push_back((c, state.clone()));
                }
                Ok(state)
            }
            _ => Ok(self.state.clone()),
        }
    }

    /// Decide a batch as [`Ledger::execute`] would — every rule, every check of what would be
    /// written — and write nothing: what recording it would append, and the state after it.
    pub fn decide_batch(&self, batch: &[Submission], default_actor: &str) -> Result<Decided> {
        let head = self.store.head()?.seq;
        self.decide_on(
            &self.state,
            head,
            &[],
            &Batch {
                commands: batch,
                actor: default_actor,
                scope: &[],
                request: None,
            },
        )
    }

    /// Decide `batch` against `base`, the state after sequence `head` — which may include
    /// `earlier`, events decided in this group commit but not written yet.
    fn decide_on(
        &self,
        base: &State,
        head: u64,
        earlier: &[(u64, Event)],
        b: &Batch<'_>,
    ) -> Result<Decided> {
        let Batch {
            commands: batch,
            actor: default_actor,
            scope,
            request,
        } = *b;
        if batch.is_empty() {
            return Err(LedgerError::Input(
                "nothing to record: the batch is empty".into(),
            ));
        }
        self.may_record()?;
        if request.is_some() && batch.len() > MAX_REQUEST_COMMANDS {
            return Err(LedgerError::Input(format!(
                "a batch sent with an idempotency key holds at most {MAX_REQUEST_COMMANDS} commands"
            )));
        }
        let mut state = base.clone();
        let mut pending: Vec<(u64, Event)> = Vec::with_capacity(batch.len());
        let mut parts = Vec::with_capacity(batch.len());
        for (i, sub) in batch.iter().enumerate() {
            let seq = head + 1 + i as u64;
            let refused = |error: DomainError| {
                if batch.len() == 1 {
                    LedgerError::Domain(Box::new(error))
                } else {
                    LedgerError::Batch {
                        number: i + 1,
                        command: sub.command.name(),
                        error: Box::new(error),
                    }
                }
            };
            // A token works only from when it is recorded: an access change dated earlier
            // would rewrite who could act when (from any path: the CLI, a batch, the server).
            if let Some((principal, on)) = access_date(&sub.command) {
                let today = clock::day_of_us(self.store.next_recorded_at_us());
                let detail = match today {
                    Some(today) if on < today => format!(
                        "dated {on}, before today ({today}): access takes effect from the day it is recorded or later"
                    ),
                    Some(_) => String::new(),
                    // (refused, not waved through: the rule cannot be checked)
                    None => "the time it would be recorded at lies outside the years the ledger keeps; check this machine's clock".into(),
                };
                if !detail.is_empty() {
                    return Err(refused(DomainError::Access {
                        principal: principal.to_string(),
                        detail,
                    }));
                }
            }
            let (event, next, stream) = match &sub.command {
                Command::CorrectEvent(_) | Command::RetractEvent(_) => {
                    let unwritten: Vec<(u64, Event)> =
                        earlier.iter().chain(&pending).cloned().collect();
                    let (event, next) =
                        self.correction(&state, sub, seq, &unwritten)
                            .map_err(|e| match e {
                                LedgerError::Domain(d) => refused(*d),
                                other => other,
                            })?;
                    (event, next, CORRECTIONS_STREAM.to_owned())
                }
                command => {
                    let mut d = eduledger_domain::decide(&state, command, seq).map_err(refused)?;
                    let stream = d
                        .event
                        .primary()
                        .map(|e| e.stream())
                        .unwrap_or_else(|| CORRECTIONS_STREAM.into());
                    // (a correction's replay folds the batch's earlier events, noting them)
                    d.next.note_recorded(&d.event);
                    (d.event, d.next, stream)
                }
            };
            if !scope.is_empty()
                && let Some(detail) =
                    eduledger_domain::rules::outside_scope(&state, &next, &event, scope)
            {
                return Err(refused(DomainError::OutOfScope {
                    principal: default_actor.to_owned(),
                    groups: scope
                        .iter()
                        .map(|g| g.to_string())
                        .collect::<Vec<_>>()
                        .join(", "),
                    detail,
                }));
            }
            // Every command passes here, from a script, the command line or a batch: its
            // metadata and sizes are checked once more, so nothing unreadable is recorded.
            let mut meta = sub.meta.clone();
            if meta.actor.as_deref().is_none_or(|a| a.trim().is_empty()) {
                meta.actor = Some(default_actor.to_owned());
            }
            meta.check()
                .and_then(|_| sub.command.check_sizes())
                .map_err(|rule| refused(DomainError::OverLimit(rule)))?;
            // A correction's reason is also the envelope's, so audit trails show it.
            if meta.reason.is_none() {
                meta.reason = match &event {
                    Event::EventCorrected(c) => Some(c.reason.to_string()),
                    Event::EventRetracted(r) => Some(r.reason.to_string()),
                    _ => None,
                };
            }
            let id = match request {
                Some(r) => r.event_id(i),
                None => self.ids.make(seq),
            };
            let new = new_event(&event, &meta, default_actor, id);
            // What is recorded must read back as what was decided, or nothing is recorded.
            match Event::decode(&new.event_type, new.schema_version, &new.payload) {
                Ok(back) if back == event => {}
                _ => {
                    return Err(refused(DomainError::OverLimit(format!(
                        "the {} event would not read back after it was written ({} bytes); it was refused",
                        new.event_type,
                        new.payload.len()
                    ))));
                }
            }
            parts.push(StreamAppend {
                stream,
                expected: ExpectedVersion::Any,
                events: vec![new],
            });
            pending.push((seq, event));
            state = next;
        }
        Ok(Decided {
            parts,
            pending,
            state,
        })
    }

    /// Record several batches with one append and one fsync (the server's group commit).
    /// Each batch is decided against the state the accepted ones before it leave, all or
    /// nothing on its own: a refused batch changes nothing and stops no other. Returns each
    /// batch's outcome, in order; the call fails as a whole only when the append does (then
    /// nothing is recorded and nothing is acknowledged).
    pub fn execute_group(&mut self, batches: &[Batch<'_>]) -> Result<Vec<Result<Vec<u64>>>> {
        let span = info_span!("execute_group", batches = batches.len());
        let _enter = span.enter();
        self.may_record()?;
        let first = self.store.head()?.seq;
        let mut head = first;
        let mut state = (*self.state).clone();
        let mut parts = Vec::new();
        let mut notes = Vec::new();
        let mut pending: Vec<(u64, Event)> = Vec::new();
        let mut outcomes = Vec::with_capacity(batches.len());
        for b in batches {
            match self.decide_on(&state, head, &pending, b) {
                // a damaged ledger is not one batch's refusal: nothing is appended on it
                Err(e) if e.is_ledger_fault() => return Err(e),
                Ok(d) => {
                    let seqs: Vec<u64> = d.pending.iter().map(|(s, _)| *s).collect();
                    if let Some(r) = b.request {
                        // the body's hash, the first sequence and the count
                        let mut value = r.body_sha256.to_vec();
                        value.extend_from_slice(&(head + 1).to_be_bytes());
                        value.extend_from_slice(&(seqs.len() as u64).to_be_bytes());
                        notes.push(eduledger_store::Note {
                            key: r.note_key(),
                            value,
                        });
                    }
                    head += seqs.len() as u64;
                    parts.extend(d.parts);
                    pending.extend(d.pending);
                    state = d.state;
                    outcomes.push(Ok(seqs));
                }
                Err(e) => outcomes.push(Err(e)),
            }
        }
        if parts.is_empty() {
            return Ok(outcomes);
        }
        let appended = self
            .store
            .append_noted(&parts, Durability::Durable, &notes)?;
        let expected: Vec<u64> = (first + 1..=head).collect();
        if appended.seqs != expected {
            // as in `execute`: a bug, never a state whose sequences disagree with the log
            self.state = Arc::new(rebuild(
                &self.store,
                appended.head.seq,
                &load_overrides(&self.store)?,
                Validate::No,
                0,
                &[],
            )?);
            // what was written is acknowledged with the sequences the log gave it
            let mut given = appended.seqs.iter().copied();
            for seqs in outcomes.iter_mut().flatten() {
                for seq in seqs.iter_mut() {
                    *seq = given.next().unwrap_or(*seq);
                }
            }
            return Ok(outcomes);
        }
        for (seq, hash) in appended.seqs.iter().zip(&appended.hashes) {
            state.mark_chain(*seq, *hash);
        }
        self.state = Arc::new(state);
        self.index_recorded(first, &pending);
        Ok(outcomes)
    }

    /// Record a batch of commands, all or nothing; returns the sequences given.
    ///
    /// Each command is decided against the state left by the ones before it, so a batch
    /// can register a kindergarten and then refer to it; a correction inside a batch is
    /// validated against the log plus the batch's earlier events. Nothing is written until
    /// every command has been accepted, and then everything is written in one transaction.
    pub fn execute(&mut self, batch: &[Submission], default_actor: &str) -> Result<Vec<u64>> {
        let span = info_span!("execute", commands = batch.len());
        let _enter = span.enter();
        // a group of one: the same decision, append, marks and index as the server's
        let mut outcomes = self.execute_group(&[Batch {
            scope: &[],
            request: None,
            commands: batch,
            actor: default_actor,
        }])?;
        outcomes
            .pop()
            .unwrap_or_else(|| Err(LedgerError::Input("nothing to record".into())))
    }

    /// Decide a correction or retraction to be recorded at `seq`, given the batch's earlier
    /// `pending` events: the history with it must pass every rule again.
    fn correction(
        &self,
        state: &State,
        sub: &Submission,
        seq: u64,
        pending: &[(u64, Event)],
    ) -> Result<(Event, State)> {
        let (target, replacement, reason) = match &sub.command {
            Command::CorrectEvent(c) => (&c.target, Some(&*c.replacement), c.reason.clone()),
            Command::RetractEvent(r) => (&r.target, None, r.reason.clone()),
            _ => return Err(LedgerError::Input("not a correction".into())),
        };
        let last = seq - 1;
        let target_seq = match target {
            Target::Seq(n) => *n,
            Target::EventId(id) => {
                self.store
                    .seq_of(*id)?
                    .ok_or_else(|| DomainError::CorrectionTarget {
                        target: 0,
                        reason: format!("no event has id {id}"),
                    })?
            }
        };
        let original = match pending.iter().find(|(s, _)| *s == target_seq) {
            Some((_, e)) => e.clone(),
            None => {
                self.vouch([target_seq])?;
                let env =
                    self.store
                        .get(target_seq)?
                        .ok_or_else(|| DomainError::CorrectionTarget {
                            target: target_seq,
                            reason: format!("the ledger has events 1 to {last} only"),
                        })?;
                decode(&env)?
            }
        };
        if matches!(
            original,
            Event::EventCorrected(_) | Event::EventRetracted(_)
        ) {
            return Err(DomainError::CorrectionTarget {
                target: target_seq,
                reason: "it is itself a correction or retraction; correct the original event again instead".into(),
            }
            .into());
        }
        if let Some((by, o)) = state.override_of(target_seq, last)
            && o.replacement.is_none()
        {
            return Err(DomainError::CorrectionTarget {
                target: target_seq,
                reason: format!("it was retracted at sequence {by}"),
            }
            .into());
        }
        let event = match replacement {
            Some(cmd) => {
                let rep = eduledger_domain::resolve_replacement(state, target_seq, &original, cmd)?;
                Event::EventCorrected(eduledger_domain::event::EventCorrected {
                    target_seq,
                    replacement_type: rep.event_type().to_owned(),
                    replacement_version: rep.schema_version(),
                    replacement_payload: rep.encode(),
                    reason,
                })
            }
            None => Event::EventRetracted(eduledger_domain::event::EventRetracted {
                target_seq,
                reason,
            }),
        };
        let replayed = replay_correction(&self.store, state, &event, seq, target_seq, pending)?;
        Ok((event, replayed))
    }

    /// Make sure the chain is checked from `from` on before events from there are shown: a
    /// fold that started from a snapshot never read the events before it, and bytes the
    /// chain does not vouch for are never handed out.
    pub fn check_chain_from(&self, from: u64) -> Result<()> {
        use std::sync::atomic::Ordering;
        let from = from.max(1);
        let checked = self.checked_from.load(Ordering::SeqCst);
        if from >= checked {
            return Ok(());
        }
        for env in self.store.iter_chained(from)? {
            if env?.seq + 1 >= checked {
                break;
            }
        }
        self.checked_from.fetch_min(from, Ordering::SeqCst);
        Ok(())
    }

    /// The event at `seq`, decoded, with its envelope.
    pub fn event_at(&self, seq: u64) -> Result<Option<(Envelope, Event)>> {
        // a ledger opened as known at a cut shows nothing after it
        if self.bounded() && seq > self.state.head() {
            return Ok(None);
        }
        self.vouch([seq])?;
        match self.store.get(seq)? {
            None => Ok(None),
            Some(env) => {
                let e = decode(&env)?;
                Ok(Some((env, e)))
            }
        }
    }

    /// The raw log from `from`, at most `limit` entries, up to `cut`.
    pub fn log(&self, from: u64, limit: usize, cut: Option<u64>) -> Result<Vec<AuditEntry>> {
        self.log_within(from, limit, cut, usize::MAX)
    }

    /// [`Ledger::log`], refused once its events carry more than `max_bytes` ([`Budget`]).
    pub fn log_within(
        &self,
        from: u64,
        limit: usize,
        cut: Option<u64>,
        max_bytes: usize,
    ) -> Result<Vec<AuditEntry>> {
        let mut budget = Budget::new(
            max_bytes,
            "ask for fewer events (limit=) and page with from=",
        );
        let mut cut = cut.unwrap_or(u64::MAX);
        if self.bounded() {
            // a ledger opened as known at a cut (or a view) shows nothing after it
            cut = cut.min(self.state.head());
        }
        let head = self.head()?.seq;
        if from > head.min(cut) || limit == 0 {
            return Ok(Vec::new());
        }
        let overrides = effective_overrides(self.state.overrides(), cut);
        let last = from
            .max(1)
            .saturating_add((limit as u64).saturating_sub(1))
            .min(cut)
            .min(self.head()?.seq);
        self.vouch(from.max(1)..=last)?;
        let mut out = Vec::new();
        for (expected, env) in (from.max(1)..).zip(self.store.iter_from(from.max(1))) {
            let env = env?;
            if env.seq > cut || out.len() >= limit {
                break;
            }
            if env.seq != expected {
                return Err(StoreError::Corrupt {
                    seq: expected,
                    what: format!("sequence {expected} is missing from the log"),
                }
                .into());
            }
            budget.spend(&env)?;
            let event = decode(&env)?;
            out.push(entry(&env, &event, &overrides, self.state.overrides(), cut));
        }
        Ok(out)
    }
}

/// What one answer of events may carry, counted as it is read so that a page of large
/// events is refused before it is held: each event's stored bytes (payload and metadata)
/// and [`Budget::PER_EVENT`] for the fields every entry has.
pub struct Budget {
    max: usize,
    spent: usize,
    advice: &'static str,
}

impl Budget {
    /// Bytes counted for each event besides its payload and metadata (ids, hashes, times).
    pub const PER_EVENT: usize = 400;

    /// A budget of `max` bytes; `advice` says what to ask for instead when it is spent.
    pub fn new(max: usize, advice: &'static str) -> Budget {
        Budget {
            max,
            spent: 0,
            advice,
        }
    }

    /// Count `env`, or refuse once the answer would be over the budget.
    pub fn spend(&mut self, env: &Envelope) -> Result<()> {
        let m = &env.meta;
        self.spent = self.spent.saturating_add(
            env.payload.len()
                + m.actor.len()
                + m.reason.as_ref().map_or(0, String::len)
                + m.source.as_ref().map_or(0, String::len)
                + Budget::PER_EVENT,
        );
        if self.spent > self.max {
            return Err(LedgerError::TooLarge(format!(
                "the answer would carry more than {} bytes of events, more than one answer carries; {}",
                self.max, self.advice
            )));
        }
        Ok(())
    }
}

/// What `verify` found beyond the store's own checks.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The chain and index check.
    pub verified: eduledger_store::Verified,
    /// Snapshots compared, byte for byte, with a fold from the first event.
    pub snapshots_compared: usize,
    /// Things an auditor should know that do not make the ledger wrong (ignored or removed
    /// snapshots, leftovers of interrupted imports).
    pub notes: Vec<String>,
}

/// Verify a ledger without trusting anything the chain does not vouch for: the store's
/// chain and indexes, then a fold from the first event that uses no snapshot, comparing
/// every snapshot a read could use with the state the fold had at its sequence, then a
/// replay of every event through the rules as when it was recorded. When this returns Ok,
/// every read gives the answer a full fold from the first event gives, and the log is one
/// this ledger could have written.
pub fn verify(
    path: impl AsRef<Path>,
    clock: Arc<dyn Clock>,
    progress: &mut dyn FnMut(u64),
) -> Result<VerifyReport> {
    let span = info_span!("verify_ledger");
    let _enter = span.enter();
    let path = path.as_ref();
    let store = Store::open_with_clock(path, clock)?;
    let verified = store.verify_with_progress(progress)?;
    let overrides = load_overrides(&store)?;
    let head = verified.head.seq;
    let mut notes = vec![];
    // each snapshot kept as its digest, not its bytes: at city scale they are 1.6 GiB
    let mut expected: std::collections::BTreeMap<u64, (std::path::PathBuf, [u8; 32])> =
        std::collections::BTreeMap::new();
    let effective = effective_overrides(&overrides, head);
    for (seq, file, checked) in store.snapshots_checked(SNAPSHOT_TAG)? {
        match checked {
            Err(why) => notes.push(format!(
                "snapshot {} is ignored by every read: {why}",
                file.display()
            )),
            Ok(snap) => {
                if effective
                    .values()
                    .any(|(by, o)| *by > seq && o.target <= seq)
                {
                    store.remove_snapshot(seq, &file)?;
                    notes.push(format!(
                        "removed snapshot {}: a correction recorded after it reaches before it, so only a fold from the first event vouches for it (a cache: nothing is lost)",
                        file.display()
                    ));
                } else {
                    expected.insert(seq, (file, Sha256::digest(&snap.payload).into()));
                }
            }
        }
    }
    // the audit index: every entry a fold expects must be there, and nothing else
    if audit::catch_up_index(&store)? {
        notes.push(
            "the audit index was built again from the first event: it was derived another way, or a rebuild had been interrupted"
                .into(),
        );
    }
    // Two passes over the log, one per core: the fold that derives the audit index and the
    // snapshots' states, and the replay of every event through the rules (each keeps its own
    // state, so the peak memory is about twice one fold's). The fold's findings are reported
    // first, as when they ran one after the other. (Measured at Shanghai scale they do not
    // yet overlap — user time equals wall time, docs/PERFORMANCE.md — which is still open.)
    let store = &store;
    let (folded, admitted) = std::thread::scope(|scope| {
        let fold_pass = scope.spawn(|| -> Result<_> {
            let mut differs: Option<(u64, std::path::PathBuf)> = None;
            let mut compared = 0;
            let mut index: HashMap<String, Vec<u64>> = HashMap::new();
            let mut entries = Vec::new();
            let folded = fold(
                store,
                head,
                &overrides,
                Validate::No,
                0,
                &[],
                Snapshots::Ignore,
                Some(&mut |seq, recorded, state| {
                    entries.clear();
                    audit::index_entries(seq, recorded, &mut entries);
                    for (entity, s) in entries.drain(..) {
                        index.entry(entity).or_default().push(s);
                    }
                    if let Some((file, digest)) = expected.get(&seq) {
                        compared += 1;
                        if differs.is_none()
                            && encode_snapshot(state).is_none_or(|bytes| {
                                <[u8; 32]>::from(Sha256::digest(bytes)) != *digest
                            })
                        {
                            differs = Some((seq, file.clone()));
                        }
                    }
                    Ok(())
                }),
            );
            folded?;
            Ok((index, compared, differs))
        });
        // every event again, as the ledger decides it: each against the rules and the state
        // it was recorded on, corrections as they stood then
        let admitted = admit::validate_log(store, progress);
        // (a panic in the fold is the same panic it was when the passes ran in turn)
        let folded = fold_pass
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (folded, admitted)
    });
    let (mut index, compared, differs) = folded?;
    for item in store.audit_entities()? {
        let (entity, listed) = item?;
        let expected = index.remove(&entity).unwrap_or_default();
        if listed != expected {
            let seq = listed
                .iter()
                .zip(&expected)
                .find(|(a, b)| a != b)
                .map(|(a, b)| *a.min(b))
                .or_else(|| listed.get(expected.len()).copied())
                .or_else(|| expected.get(listed.len()).copied())
                .unwrap_or(0);
            return Err(StoreError::Corrupt {
                seq,
                what: format!(
                    "the audit index lists {} events for {entity} where the log has {}",
                    listed.len(),
                    expected.len()
                ),
            }
            .into());
        }
    }
    if let Some((entity, expected)) = index.into_iter().next() {
        return Err(StoreError::Corrupt {
            seq: expected.first().copied().unwrap_or(0),
            what: format!(
                "the audit index lacks {entity}, which {} events touch",
                expected.len()
            ),
        }
        .into());
    }
    if let Some((seq, file)) = differs {
        return Err(StoreError::Corrupt {
            seq,
            what: format!(
                "snapshot {} is not the state a fold of the chain reaches there, so reads that start from it would answer differently; remove it (snapshots are a cache: nothing is lost)",
                file.display()
            ),
        }
        .into());
    }
    admitted?;
    for leftover in store.snapshot_leftovers() {
        notes.push(format!(
            "{} is a snapshot write that did not finish; the next snapshot write removes it",
            leftover.display()
        ));
    }
    for leftover in eduledger_store::import_leftovers(path) {
        notes.push(format!(
            "{} is left by an import that did not finish; it is not part of this ledger, and the next import into {} removes it",
            leftover.display(),
            path.display()
        ));
    }
    Ok(VerifyReport {
        verified,
        snapshots_compared: compared,
        notes,
    })
}

/// The state after the correction or retraction `event`, recorded at `seq` and aimed at
/// `target`, given `state` (the state before it) and the unwritten `pending` events before
/// it: the history from the target on is folded again with it and must pass every rule.
fn replay_correction(
    store: &Store,
    state: &State,
    event: &Event,
    seq: u64,
    target: u64,
    pending: &[(u64, Event)],
) -> Result<State> {
    let origin = Origin {
        seq,
        corrected_by: None,
    };
    let mut overrides = state.overrides().clone();
    let mut probe = State::default();
    probe.apply(event, origin);
    overrides.extend(probe.overrides().clone());
    let mut replayed = rebuild(
        store,
        seq - 1,
        &overrides,
        Validate::Yes { target },
        0,
        pending,
    )?;
    replayed.apply(event, origin);
    Ok(replayed)
}

fn entry(
    env: &Envelope,
    event: &Event,
    effective: &HashMap<u64, (u64, Override)>,
    all: &imbl::OrdMap<u64, Override>,
    cut: u64,
) -> AuditEntry {
    let corrected_by: Vec<u64> = all
        .range(..=cut)
        .filter(|(_, o)| o.target == env.seq)
        .map(|(s, _)| *s)
        .collect();
    let (status, targets) = match event {
        Event::EventCorrected(c) => ("correction", Some(c.target_seq)),
        Event::EventRetracted(r) => ("retraction", Some(r.target_seq)),
        _ => match effective.get(&env.seq) {
            None => ("effective", None),
            Some((_, o)) if o.replacement.is_some() => ("corrected", None),
            Some(_) => ("retracted", None),
        },
    };
    AuditEntry {
        seq: env.seq,
        event_id: env.event_id,
        recorded_at_us: env.recorded_at_us,
        recorded_at: rfc3339(env.recorded_at_us),
        actor: env.meta.actor.clone(),
        reason: env.meta.reason.clone(),
        source: env.meta.source.clone(),
        event_type: env.event_type.clone(),
        event: event.to_json(),
        hash: hex::encode(env.hash),
        status,
        corrected_by,
        targets,
    }
}

fn new_event(
    event: &Event,
    meta: &eduledger_domain::Meta,
    default_actor: &str,
    event_id: Uuid,
) -> NewEvent {
    NewEvent {
        event_id,
        event_type: event.event_type().to_owned(),
        schema_version: event.schema_version(),
        payload: event.encode(),
        meta: Metadata {
            actor: meta
                .actor
                .clone()
                .filter(|a| !a.trim().is_empty())
                .unwrap_or_else(|| default_actor.to_owned()),
            reason: meta.reason.clone(),
            source: meta.source.clone(),
        },
    }
}

fn load_overrides(store: &Store) -> Result<imbl::OrdMap<u64, Override>> {
    let mut state = State::default();
    for env in store.read_stream(CORRECTIONS_STREAM)? {
        let e = decode(&env)?;
        state.apply(
            &e,
            Origin {
                seq: env.seq,
                corrected_by: None,
            },
        );
    }
    Ok(state.overrides().clone())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Validate {
    No,
    /// Re-check every rule from (before) `target` on: a correction's replay.
    Yes {
        target: u64,
    },
}

/// Whether a fold may start from a snapshot.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Snapshots {
    Use,
    /// Fold from the first event (`verify`).
    Ignore,
}

/// What a fold produced.
struct Folded {
    state: State,
    /// The first sequence whose envelope the fold read and checked against the chain.
    chain_from: u64,
}

/// [`fold`] from the latest usable snapshot, for the state alone.
fn rebuild(
    store: &Store,
    cut: u64,
    overrides: &imbl::OrdMap<u64, Override>,
    validate: Validate,
    snapshot_every: u64,
    pending: &[(u64, Event)],
) -> Result<State> {
    Ok(fold(
        store,
        cut,
        overrides,
        validate,
        snapshot_every,
        pending,
        Snapshots::Use,
        None,
    )?
    .state)
}

/// Called after each event is folded, with its sequence and the state then.
type Inspect<'a> = &'a mut dyn FnMut(u64, &Event, &State) -> Result<()>;

/// Fold the log's prefix up to `cut`, with the overrides recorded at or before `cut`
/// (`overrides` may hold later ones; they are ignored). Starts from the latest snapshot that
/// is valid for this cut. With `snapshot_every > 0`, leaves snapshots behind where they are valid.
///
/// `overrides` comes from the `corrections` stream's index, which the chain does not vouch
/// for: at the end the corrections the fold actually met (in the snapshot and in the chain)
/// must be exactly the ones the index listed, or the fold is refused as corrupt.
#[allow(clippy::too_many_arguments)]
fn fold(
    store: &Store,
    cut: u64,
    overrides: &imbl::OrdMap<u64, Override>,
    validate: Validate,
    snapshot_every: u64,
    pending: &[(u64, Event)],
    snapshots: Snapshots,
    mut inspect: Option<Inspect<'_>>,
) -> Result<Folded> {
    // A correction being validated is not in the log yet: it sits at the next sequence.
    let override_cut = if matches!(validate, Validate::Yes { .. }) {
        cut + 1
    } else {
        cut
    };
    let effective = effective_overrides(overrides, override_cut);
    // A snapshot at S was folded with the overrides recorded by S; it serves this cut only if
    // no override recorded after S (and by the cut) reaches back to S or before, and — when
    // validating a correction — only if it lies before the corrected event.
    let reaches_back = |s: u64| effective.values().any(|(by, o)| *by > s && o.target <= s);
    let limit = match validate {
        Validate::Yes { target } => target.saturating_sub(1).min(cut),
        Validate::No => cut,
    };
    // The latest usable snapshot, not yet decoded.
    let found: Option<(u64, Vec<u8>)> = match snapshots {
        Snapshots::Use => store
            .latest_snapshot(limit, SNAPSHOT_TAG, &|s| !reaches_back(s))?
            .map(|snap| (snap.seq, snap.payload)),
        Snapshots::Ignore => None,
    };
    // Decoding a large snapshot and reading + decoding the events after it are independent:
    // do them on two cores at once, then fold the events into the decoded state.
    let (start, ahead) = match found {
        None => ((State::default(), 1u64), None),
        Some((s, bytes)) => {
            let (decoded, ahead) = std::thread::scope(|scope| {
                let decoder = scope.spawn(move || decode_snapshot(&bytes));
                let ahead = read_events(store, s + 1, cut);
                (
                    decoder
                        .join()
                        .unwrap_or_else(|_| Err("snapshot decoder failed".into())),
                    ahead,
                )
            });
            match decoded {
                Ok(state) if state.head() == s => ((state, s + 1), Some(ahead?)),
                // an unreadable snapshot is only a lost shortcut: fold from the start
                Ok(_) => {
                    warn!("ignoring the snapshot at {s}: its state says another sequence");
                    ((State::default(), 1u64), None)
                }
                Err(why) => {
                    warn!("ignoring the snapshot at {s}: its state does not decode ({why})");
                    ((State::default(), 1u64), None)
                }
            }
        }
    };
    let (mut state, from) = start;
    let mut last_snapshot = from.saturating_sub(1);
    if from > cut {
        check_overrides(&state, overrides, cut)?;
        return Ok(Folded {
            state,
            chain_from: from,
        });
    }
    let mut fold =
        |state: &mut State, seq: u64, hash: Option<[u8; 32]>, event: Event| -> Result<()> {
            // the log's own bookkeeping counts the event as recorded, whatever corrects it later
            state.note_recorded(&event);
            let recorded = inspect.is_some().then(|| event.clone());
            if let Some(hash) = hash {
                state.mark_chain(seq, hash);
            }
            let (effective_event, origin) = match &event {
                Event::EventCorrected(_) | Event::EventRetracted(_) => (
                    Some(event.clone()),
                    Origin {
                        seq,
                        corrected_by: None,
                    },
                ),
                _ => match effective.get(&seq) {
                    None => (
                        Some(event),
                        Origin {
                            seq,
                            corrected_by: None,
                        },
                    ),
                    Some((
                        _,
                        Override {
                            replacement: None, ..
                        },
                    )) => {
                        // a retracted registration's id stays used: ids are never given twice
                        if let Event::KindergartenRegistered(r) = &event {
                            state.reserve_kg_id(r.kindergarten);
                        }
                        // and a retracted grant's token is never given again
                        if let Event::AccessGranted(g) = &event {
                            state.retire_token(&g.token_sha256);
                        }
                        (None, Origin::default())
                    }
                    Some((
                        by,
                        Override {
                            replacement: Some((t, v, p)),
                            ..
                        },
                    )) => {
                        let rep = Event::decode(t, *v, p).map_err(|reason| {
                            LedgerError::from(DomainError::Undecodable { seq: *by, reason })
                        })?;
                        // a grant corrected to another token: the first is never given again
                        if let (Event::AccessGranted(old), Event::AccessGranted(new)) =
                            (&event, &rep)
                            && old.token_sha256 != new.token_sha256
                        {
                            state.retire_token(&old.token_sha256);
                        }
                        (
                            Some(rep),
                            Origin {
                                seq,
                                corrected_by: Some(*by),
                            },
                        )
                    }
                },
            };
            if let Some(e) = effective_event {
                match validate {
                    Validate::Yes { target }
                        if !matches!(e, Event::EventCorrected(_) | Event::EventRetracted(_)) =>
                    {
                        *state = eduledger_domain::check(state, &e, origin).map_err(|err| {
                            DomainError::CorrectionBreaksHistory {
                                target,
                                at_seq: seq,
                                broken: err.to_string(),
                            }
                        })?;
                    }
                    _ => state.apply(&e, origin),
                }
            }
            state.set_head(seq);
            if let (Some(f), Some(recorded)) = (inspect.as_mut(), recorded.as_ref()) {
                f(seq, recorded, state)?;
            }
            if snapshot_every > 0 && seq - last_snapshot >= snapshot_every && !reaches_back(seq) {
                // a cache: failing to write one costs time later, never this answer
                match encode_snapshot(state) {
                    Some(bytes) => {
                        if let Err(e) = store.put_snapshot(seq, SNAPSHOT_TAG, &bytes) {
                            warn!("no snapshot written at {seq}: {e}");
                        }
                    }
                    None => warn!("no snapshot written at {seq}: the state could not be encoded"),
                }
                last_snapshot = seq;
            }
            Ok(())
        };
    match ahead {
        Some(events) => {
            for (seq, hash, event) in events {
                fold(&mut state, seq, Some(hash), event)?;
            }
        }
        None => {
            // Reading, hash-checking and decoding run on another core, a batch ahead of
            // the fold; a bounded channel keeps memory flat on a long log.
            std::thread::scope(|scope| -> Result<()> {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Vec<Chained>>>(8);
                scope.spawn(move || {
                    let mut batch = Vec::with_capacity(FOLD_BATCH);
                    let send = |b: Result<Vec<Chained>>| tx.send(b).is_ok();
                    let iter = match store.iter_chained(from) {
                        Ok(i) => i,
                        Err(e) => {
                            send(Err(e.into()));
                            return;
                        }
                    };
                    for env in iter {
                        let item = env
                            .map_err(LedgerError::from)
                            .and_then(|env| Ok((env.seq, env.hash, decode(&env)?)));
                        match item {
                            Ok((seq, _, _)) if seq > cut => break,
                            Ok(pair) => {
                                batch.push(pair);
                                if batch.len() == FOLD_BATCH
                                    && !send(Ok(std::mem::replace(
                                        &mut batch,
                                        Vec::with_capacity(FOLD_BATCH),
                                    )))
                                {
                                    return;
                                }
                            }
                            Err(e) => {
                                send(Err(e));
                                return;
                            }
                        }
                    }
                    send(Ok(batch));
                });
                for batch in rx {
                    for (seq, hash, event) in batch? {
                        fold(&mut state, seq, Some(hash), event)?;
                    }
                }
                Ok(())
            })?;
        }
    }
    for (seq, event) in pending {
        if *seq >= from && *seq <= cut {
            // not in the log yet: its chain hash is marked once it is appended
            fold(&mut state, *seq, None, event.clone())?;
        }
    }
    let head = state
        .head()
        .max(cut.min(store.head()?.seq + pending.len() as u64));
    state.set_head(head);
    check_overrides(&state, overrides, cut)?;
    Ok(Folded {
        state,
        chain_from: from,
    })
}

/// The corrections a fold met (snapshot and chain) must be those the index listed.
fn check_overrides(state: &State, listed: &imbl::OrdMap<u64, Override>, cut: u64) -> Result<()> {
    let met: Vec<(&u64, &Override)> = state.overrides().range(..=cut).collect();
    let from_index: Vec<(&u64, &Override)> = listed.range(..=cut).collect();
    if met != from_index {
        let seq = met
            .iter()
            .zip(&from_index)
            .find(|(a, b)| a != b)
            .map(|(a, _)| *a.0)
            .or_else(|| met.get(from_index.len()).map(|(s, _)| **s))
            .or_else(|| from_index.get(met.len()).map(|(s, _)| **s))
            .unwrap_or(cut);
        return Err(StoreError::Corrupt {
            seq,
            what: format!(
                "the index of the {CORRECTIONS_STREAM} stream does not match the corrections in the log"
            ),
        }
        .into());
    }
    Ok(())
}

/// Events handed from the reading thread to the fold at a time.
const FOLD_BATCH: usize = 1024;

/// The principal and date of an access change (or of a correction to one).
fn access_date(
    command: &Command,
) -> Option<(
    &eduledger_domain::values::PrincipalName,
    eduledger_domain::values::Date,
)> {
    match command {
        Command::GrantAccess(c) => Some((&c.principal, c.on)),
        Command::RevokeAccess(c) => Some((&c.principal, c.on)),
        Command::CorrectEvent(c) => access_date(&c.replacement),
        _ => None,
    }
}

/// An event read from the log with the chain checked: its sequence, chain hash and event.
type Chained = (u64, [u8; 32], Event);

/// The events `from..=cut`, read with the chain checked and decoded.
fn read_events(store: &Store, from: u64, cut: u64) -> Result<Vec<Chained>> {
    let mut out = Vec::new();
    for env in store.iter_chained(from)? {
        let env = env?;
        if env.seq > cut {
            break;
        }
        out.push((env.seq, env.hash, decode(&env)?));
    }
    Ok(out)
}

fn snapshot_config() -> impl bincode::config::Config {
    bincode::config::standard()
}

// A snapshot is two independently decodable halves — the teacher-keyed maps (most of a
// large state: attendance) with the log book, and the rest — so that two cores can decode it
// at once (about 150 ms each at Shanghai scale):
// `len(first) as u64 LE ‖ first ‖ second`.

// imbl's own `Deserialize` preallocates whatever length a map or sequence claims, so a
// planted length in a snapshot aborts the process (found by the `snapshot` fuzz target,
// fuzz/regressions/snapshot/imbl-map-length-*). Snapshots are decoded through these
// wrappers instead, whose memory grows only with the entries that are actually there. The bytes are the same as imbl's encoding (a length, then entries).
mod capped {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

    pub(super) struct Map<K: Ord + Clone, V: Clone>(pub(super) imbl::OrdMap<K, V>);
    pub(super) struct Vector<T: Clone>(pub(super) imbl::Vector<T>);

    impl<'de, K, V> Deserialize<'de> for Map<K, V>
    where
        K: Deserialize<'de> + Ord + Clone,
        V: Deserialize<'de> + Clone,
    {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V2<K, V>(PhantomData<(K, V)>);
            impl<'de, K, V> Visitor<'de> for V2<K, V>
            where
                K: Deserialize<'de> + Ord + Clone,
                V: Deserialize<'de> + Clone,
            {
                type Value = Map<K, V>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a map")
                }
                fn visit_map<A: MapAccess<'de>>(
                    self,
                    mut access: A,
                ) -> Result<Self::Value, A::Error> {
                    // grows with what is there, never with what the length claims
                    let mut entries = Vec::with_capacity(access.size_hint().unwrap_or(0).min(4096));
                    while let Some(entry) = access.next_entry()? {
                        entries.push(entry);
                    }
                    Ok(Map(imbl::OrdMap::from(entries)))
                }
            }
            d.deserialize_map(V2(PhantomData))
        }
    }

    impl<'de, T> Deserialize<'de> for Vector<T>
    where
        T: Deserialize<'de> + Clone,
    {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V2<T>(PhantomData<T>);
            impl<'de, T: Deserialize<'de> + Clone> Visitor<'de> for V2<T> {
                type Value = Vector<T>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a sequence")
                }
                fn visit_seq<A: SeqAccess<'de>>(
                    self,
                    mut access: A,
                ) -> Result<Self::Value, A::Error> {
                    let mut out = imbl::Vector::new();
                    while let Some(x) = access.next_element()? {
                        out.push_back(x);
                    }
                    Ok(Vector(out))
                }
            }
            d.deserialize_seq(V2(PhantomData))
        }
    }
}

type TeacherHalf = (
    capped::Map<StaffNo, Teacher>,
    capped::Map<StaffNo, Vec<u32>>,
    capped::Map<KgId, std::collections::BTreeSet<StaffNo>>,
    capped::Map<StaffNo, std::collections::BTreeSet<RecordId>>,
    // the log book: in this half because it balances the two decoding threads
    (
        Vec<(compact_str::CompactString, u32)>,
        capped::Map<u64, [u8; 32]>,
    ),
);

type RestHalf = (
    capped::Map<KgId, Kindergarten>,
    capped::Map<KgName, KgId>,
    capped::Map<GroupName, Group>,
    capped::Map<RecordId, Rotation>,
    capped::Map<RecordId, Training>,
    capped::Map<RecordId, Activity>,
    capped::Map<RecordId, Project>,
    capped::Map<i32, Vec<RulesAdoption>>,
    capped::Map<KgId, std::collections::BTreeSet<RecordId>>,
    capped::Map<KgId, std::collections::BTreeSet<RecordId>>,
    capped::Vector<RecordId>,
    capped::Map<u64, Override>,
    u64,
    u32,
    Option<eduledger_domain::values::Date>,
    (
        capped::Map<eduledger_domain::values::PrincipalName, Vec<Grant>>,
        Vec<eduledger_domain::values::Sha256Hex>,
    ),
);

/// The log book's counts in key order, so a snapshot's bytes do not depend on the hash map.
fn sorted_counts(
    counts: &imbl::HashMap<compact_str::CompactString, u32>,
) -> Vec<(&compact_str::CompactString, &u32)> {
    let mut v: Vec<_> = counts.iter().collect();
    v.sort_unstable();
    v
}

/// A state's snapshot bytes; None if it cannot be encoded (then no snapshot is written —
/// never one that could not be read back).
fn encode_snapshot(s: &State) -> Option<Vec<u8>> {
    let first = bincode::serde::encode_to_vec(
        (
            &s.teachers(),
            &s.trainings_by_teacher(),
            &s.teachers_by_home(),
            &s.rotations_by_teacher(),
            (sorted_counts(&s.log_book().touched), &s.log_book().marks),
        ),
        snapshot_config(),
    )
    .ok()?;
    let second = bincode::serde::encode_to_vec(
        (
            &s.kindergartens(),
            &s.kg_names(),
            &s.groups(),
            &s.rotations(),
            &s.trainings(),
            &s.activities(),
            &s.projects(),
            &s.rules(),
            &s.rotations_by_host(),
            &s.activities_by_kg(),
            &s.training_ids(),
            &s.overrides(),
            s.head(),
            s.kg_ids_used(),
            s.latest(),
            (s.principals(), s.tokens_retired()),
        ),
        snapshot_config(),
    )
    .ok()?;
    let mut out = Vec::with_capacity(8 + first.len() + second.len());
    out.extend_from_slice(&(first.len() as u64).to_le_bytes());
    out.extend_from_slice(&first);
    out.extend_from_slice(&second);
    Some(out)
}

/// Decode one half under a bound on what its length prefixes may claim, scaled to the
/// input: a planted prefix cannot make the decoder allocate more than a few times the
/// snapshot's own size (bincode's limit is a type parameter, hence the size classes).
fn decode_half<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> std::result::Result<T, String> {
    fn with<T: serde::de::DeserializeOwned, const N: usize>(
        bytes: &[u8],
    ) -> std::result::Result<T, String> {
        let (value, used) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard().with_limit::<N>())
                .map_err(|e| e.to_string())?;
        if used != bytes.len() {
            return Err(format!("{} trailing bytes", bytes.len() - used));
        }
        Ok(value)
    }
    const MIB: usize = 1 << 20;
    match bytes.len() {
        n if n <= MIB => with::<T, { 4 * MIB }>(bytes),
        n if n <= 16 * MIB => with::<T, { 64 * MIB }>(bytes),
        n if n <= 256 * MIB => with::<T, { 1024 * MIB }>(bytes),
        _ => with::<T, { 4096 * MIB }>(bytes),
    }
}

/// The indexes decode as `BTreeSet`s (serde's own decoding, which does not trust a claimed
/// length) and become the state's persistent sets; the bytes are the same either way.
fn persistent_sets<K: Ord + Clone, T: Ord + Clone>(
    map: imbl::OrdMap<K, std::collections::BTreeSet<T>>,
) -> imbl::OrdMap<K, imbl::OrdSet<T>> {
    map.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect::<imbl::OrdSet<T>>()))
        .collect()
}

/// Decode a snapshot's state as a fold would (public for the fuzzer).
#[doc(hidden)]
pub fn decode_snapshot_payload(bytes: &[u8]) -> std::result::Result<State, String> {
    decode_snapshot(bytes)
}

/// Decode both halves, the first on another thread.
fn decode_snapshot(bytes: &[u8]) -> std::result::Result<State, String> {
    let len = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or("snapshot too short")? as usize;
    let (first, second) = bytes
        .get(8..)
        .filter(|rest| rest.len() >= len)
        .map(|rest| rest.split_at(len))
        .ok_or("snapshot truncated")?;
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| decode_half::<TeacherHalf>(first));
        let b = decode_half::<RestHalf>(second);
        (
            a.join()
                .unwrap_or_else(|_| Err("snapshot decoder failed".into())),
            b,
        )
    });
    let (teachers, trainings_by_teacher, teachers_by_home, rotations_by_teacher, (touched, marks)) =
        a?;
    // written in key order: anything else is not a snapshot this build wrote
    if touched.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err("the log book's counts are not in key order".into());
    }
    let (
        kindergartens,
        kg_names,
        groups,
        rotations,
        trainings,
        activities,
        projects,
        rules,
        rotations_by_host,
        activities_by_kg,
        training_ids,
        overrides,
        head,
        kg_ids_used,
        latest,
        (principals, tokens_retired),
    ) = b?;
    Ok(State::from_parts(eduledger_domain::state::StateParts {
        kindergartens: kindergartens.0,
        kg_names: kg_names.0,
        groups: groups.0,
        teachers: teachers.0,
        rotations: rotations.0,
        trainings: trainings.0,
        activities: activities.0,
        projects: projects.0,
        rules: rules.0,
        teachers_by_home: persistent_sets(teachers_by_home.0),
        rotations_by_teacher: persistent_sets(rotations_by_teacher.0),
        rotations_by_host: persistent_sets(rotations_by_host.0),
        activities_by_kg: persistent_sets(activities_by_kg.0),
        trainings_by_teacher: trainings_by_teacher.0,
        training_ids: training_ids.0,
        overrides: overrides.0,
        head,
        kg_ids_used,
        latest,
        principals: principals.0,
        tokens_retired: tokens_retired.into_iter().collect(),
        log: eduledger_domain::state::LogBook {
            touched: touched.into_iter().collect(),
            marks: marks.0,
        },
    }))
}

/// A new bearer token — `edl_` and 256 random bits in hex — and the SHA-256 (hex) the ledger
/// records in its place; the token itself is shown once and never stored.
pub fn new_token() -> std::result::Result<(String, String), String> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| format!("no random bytes for a token: {e}"))?;
    let token = format!("edl_{}", hex::encode(secret));
    let sha = hex::encode(Sha256::digest(token.as_bytes()));
    Ok((token, sha))
}

pub mod synthetic;
