//! eduledger-store: an append-only, hash-chained event log on sled.
//!
//! It knows envelopes and bytes, never the domain. Trees:
//! - `log`: sequence (u64 big-endian) → envelope bytes (see [`envelope`]);
//! - `streams`: stream id → the stream's sequences, packed as u64 big-endian (the stream's
//!   version is their count). One entry per stream rather than per event: a transaction can
//!   read it without a scan, and a bulk import writes one entry per stream, not per event;
//! - `event_ids`: event id (16 bytes) → sequence, for idempotent retries;
//! - `meta`: `format` → u32 BE, `head` → sequence ‖ hash;
//! - and beside sled's files, `snapshots/`: folded states of the layers above, tagged with
//!   their format, never part of the chain (a cache: deleting the folder loses nothing).
//!
//! Invariants checked on write and again by [`Store::verify`]: sequences are contiguous
//! from 1, each envelope's `prev_hash` is the previous hash, each hash recomputes, every
//! envelope has exactly one entry in `streams` and `event_ids`, and `recorded_at` never
//! decreases.

mod audit_index;
mod durability;
pub mod envelope;
mod error;
mod export;
pub mod snapshot;

use std::fmt;
use std::mem::ManuallyDrop;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use tracing::{debug, info_span};
use uuid::Uuid;

pub use envelope::{
    DECODE_LIMIT_BYTES, Envelope, GENESIS_HASH, MAX_ACTOR_BYTES, MAX_ENVELOPE_BYTES,
    MAX_EVENT_TYPE_BYTES, MAX_PAYLOAD_BYTES, MAX_REASON_BYTES, MAX_SOURCE_BYTES, Metadata,
    NewEvent,
};
pub use error::StoreError;
pub use export::{
    EventCheck, ExportLine, ImportChecks, LogCheck, MAX_LINE_BYTES, end_line, import_leftovers,
    import_new, import_new_checked, parse_line,
};

/// Shorten a message that would quote a huge input back: at most 300 characters of it.
pub fn shorten(message: String) -> String {
    shorten_to(message, 300)
}

/// Shorten a message to at most `max` characters.
pub fn shorten_to(message: String, max: usize) -> String {
    if message.chars().count() <= max {
        return message;
    }
    let head: String = message.chars().take(max).collect();
    format!("{head}… (message shortened)")
}
pub use snapshot::{MAX_SNAPSHOT_BYTES, Snapshot};

/// Format version of the on-disk layout and envelope encoding written by this build.
pub const FORMAT_VERSION: u32 = 1;

/// Result alias for the store.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// How far after this machine's clock an event copied or imported from elsewhere may be
/// dated: clocks differ by seconds, not days; a time further on is a forgery (one at the
/// end of time would date every later record there).
pub const MAX_AHEAD_US: i64 = 24 * 3600 * 1_000_000;

/// A source of "now" for `recorded_at`, injected so tests replay exactly.
pub trait Clock: Send + Sync {
    /// Microseconds since the Unix epoch.
    fn now_us(&self) -> i64;
    /// What [`Clock::now_us`] would read, without moving a clock that steps on each reading.
    fn peek_us(&self) -> i64 {
        self.now_us()
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_us(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0)
    }
}

/// A clock that starts at a fixed time and advances one second per reading (for tests and demos).
#[derive(Debug)]
pub struct SteppingClock {
    next_us: std::sync::atomic::AtomicI64,
}

impl SteppingClock {
    /// Start at `start_us`.
    pub fn new(start_us: i64) -> Self {
        SteppingClock {
            next_us: std::sync::atomic::AtomicI64::new(start_us),
        }
    }
}

impl Clock for SteppingClock {
    fn now_us(&self) -> i64 {
        self.next_us
            .fetch_add(1_000_000, std::sync::atomic::Ordering::SeqCst)
    }
    fn peek_us(&self) -> i64 {
        self.next_us.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// What the caller expects the stream's version to be before the append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(u64),
}

/// Whether `append` waits for the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Return only after sled's flush and an fsync of its data file.
    Durable,
    /// Return once in sled's memory; call [`Store::sync`] at the end of a bulk load.
    Buffered,
}

/// The ledger's head: the last sequence and its hash. Notes as `SEQ:HEX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Digest {
    /// Last sequence (0 for an empty ledger).
    pub seq: u64,
    /// Hash of that envelope (zeros for an empty ledger).
    pub hash: [u8; 32],
}

impl Digest {
    /// The hash as lowercase hex.
    pub fn hash_hex(&self) -> String {
        hex::encode(self.hash)
    }

    /// Parse `SEQ:HEX`.
    pub fn parse(text: &str) -> Result<Digest, String> {
        let (seq, hash) = text
            .split_once(':')
            .ok_or_else(|| format!("digest {text:?} is not of the form SEQ:HASH"))?;
        // (one spelling per digest: digits only, no sign, no leading zero)
        let canonical = !seq.is_empty()
            && seq.bytes().all(|b| b.is_ascii_digit())
            && (seq == "0" || !seq.starts_with('0'));
        let seq: u64 = seq
            .parse()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| format!("digest sequence {seq:?} is not a whole number written in digits without a sign or leading zeros"))?;
        // (lowercase only: one spelling per digest)
        if hash.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(format!(
                "digest hash {hash:?} is written in uppercase; a digest's hash is lowercase hexadecimal"
            ));
        }
        let bytes =
            hex::decode(hash).map_err(|_| format!("digest hash {hash:?} is not hexadecimal"))?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| format!("digest hash {hash:?} is not 64 hex digits (SHA-256)"))?;
        Ok(Digest { seq, hash })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash_hex())
    }
}

/// The events for one stream within an append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAppend {
    /// The stream.
    pub stream: String,
    /// Its expected version before this part.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

/// What an append did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// Sequences given to the events, in order.
    pub seqs: Vec<u64>,
    /// The events' chain hashes, in the same order.
    pub hashes: Vec<[u8; 32]>,
    /// The stream's version after the append.
    pub stream_version: u64,
    /// The ledger head after the append.
    pub head: Digest,
    /// True when every event was already recorded (an idempotent retry): nothing was written.
    pub idempotent: bool,
}

/// Summary of a successful verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Number of events checked.
    pub events: u64,
    /// The head.
    pub head: Digest,
}

/// The ledger on disk.
pub struct Store {
    path: PathBuf,
    // sled's handles are dropped by hand: after a failed fsync, dropping them would run
    // sled's own final fsync, which panics when it fails (sled 0.34, `Log::drop`).
    db: ManuallyDrop<sled::Db>,
    log: ManuallyDrop<sled::Tree>,
    streams: ManuallyDrop<sled::Tree>,
    event_ids: ManuallyDrop<sled::Tree>,
    meta: ManuallyDrop<sled::Tree>,
    /// Entity → sequences (`audit_index.rs`): derived, checked by every reader. Opened on
    /// first use, so a store that never reads or writes it (an import, a bare append) opens
    /// and writes exactly the trees it did before the index existed.
    audit: std::sync::OnceLock<sled::Tree>,
    clock: Arc<dyn Clock>,
    writer: Mutex<WriterState>,
    sync: durability::FileSync,
    /// Set when an fsync failed: what the kernel did with the dirty pages is unknown from
    /// then on (PostgreSQL's "fsyncgate"), so this handle refuses every further write; a
    /// reopen rebuilds everything from what is on disk.
    failed: AtomicBool,
    /// One sync at a time: two threads syncing at once could each see the other's result
    /// (an fsync error is reported once per file description), so check, flush, fsync and
    /// marking the failure happen under this lock.
    sync_lock: Mutex<()>,
    /// How long the last [`Store::sync`] took (sled's flush and the fsync), in µs.
    last_sync_us: AtomicU64,
    /// An exclusive `flock` on the ledger directory, held for the life of the handle, so an
    /// import can hold a directory that has no sled files yet.
    _dir_lock: std::fs::File,
}

struct WriterState {
    last_recorded_at_us: i64,
}

const META_FORMAT: &[u8] = b"format";
const META_HEAD: &[u8] = b"head";
/// Notes ([`Store::append_noted`]) live in the meta tree under this prefix.
const META_NOTE: &[u8] = b"note:";
/// Largest note key, in bytes.
pub const MAX_NOTE_KEY: usize = 1024;
/// Largest note value, in bytes.
pub const MAX_NOTE_VALUE: usize = 4096;

fn note_key(key: &[u8]) -> Vec<u8> {
    [META_NOTE, key].concat()
}

/// How often sled's background thread flushes and fsyncs its data file: sled's own 500 ms,
/// unless `EDULEDGER_SLED_FLUSH_EVERY_MS` says otherwise (`off`: never). A diagnostic knob
/// for the power-loss harness: that thread can fsync the data file while a blob file it
/// refers to is not yet durable (docs/DECISIONS.md, "Durability"); without it, the images
/// test our own fsync protocol alone. Off, sled also never reclaims its file's segments.
fn sled_flush_every_ms() -> Option<u64> {
    match std::env::var("EDULEDGER_SLED_FLUSH_EVERY_MS").as_deref() {
        Ok("off") => None,
        Ok(n) => n.parse().ok().or(Some(500)),
        Err(_) => Some(500),
    }
}

/// A note written with an append ([`Store::append_noted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Its key (the layer above chooses; 1 to [`MAX_NOTE_KEY`] bytes).
    pub key: Vec<u8>,
    /// Its value (at most [`MAX_NOTE_VALUE`] bytes).
    pub value: Vec<u8>,
}

pub(crate) fn seq_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Unpack a stream's sequence list.
pub(crate) fn unpack_seqs(bytes: &[u8]) -> Option<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) {
        return None;
    }
    Some(bytes.chunks_exact(8).filter_map(parse_u64).collect())
}

pub(crate) fn head_bytes(d: &Digest) -> [u8; 40] {
    let mut b = [0u8; 40];
    b[..8].copy_from_slice(&d.seq.to_be_bytes());
    b[8..].copy_from_slice(&d.hash);
    b
}

/// A `log` key's sequence (0 if the key is malformed; the envelope check then reports it).
pub(crate) fn parse_u64_key(bytes: &[u8]) -> u64 {
    parse_u64(bytes).unwrap_or(0)
}

fn parse_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

fn parse_head(bytes: &[u8]) -> Option<Digest> {
    if bytes.len() != 40 {
        return None;
    }
    let seq = parse_u64(&bytes[..8])?;
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&bytes[8..]);
    Some(Digest { seq, hash })
}

/// The envelope stored under a `log` key: the key must be a sequence's eight bytes and the
/// envelope must say it is that sequence (a key planted between two sequences, or a genuine
/// envelope moved to another key, is refused).
fn at_key(key: &[u8], raw: &[u8]) -> Result<Envelope> {
    let seq = parse_u64(key).ok_or_else(|| StoreError::Corrupt {
        seq: 0,
        what: format!(
            "the log holds a key that is not a sequence ({} bytes)",
            key.len()
        ),
    })?;
    let env = Envelope::from_bytes(raw).map_err(|what| StoreError::Corrupt { seq, what })?;
    if env.seq != seq {
        return Err(StoreError::Corrupt {
            seq,
            what: format!(
                "the envelope stored at {seq} says it is sequence {}",
                env.seq
            ),
        });
    }
    Ok(env)
}

/// Checks a stream id: non-empty, at most 256 bytes, no control characters.
pub fn check_stream_id(stream: &str) -> Result<()> {
    if stream.is_empty() || stream.len() > 256 || stream.chars().any(char::is_control) {
        return Err(StoreError::InvalidAppend(format!(
            "stream id {stream:?} must be 1 to 256 bytes without control characters"
        )));
    }
    Ok(())
}

impl Store {
    /// Open (or create) the ledger at `path` with the system clock.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with_clock(path, Arc::new(SystemClock))
    }

    /// Open (or create) the ledger at `path` with an injected clock.
    pub fn open_with_clock(path: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        let dir_lock = durability::lock_dir(&path, true)?;
        durability::remove_unfinished_sled_snapshots(&path);
        // Only a ledger being created needs its files and directory entries made durable at
        // open; opening an existing one (every read) writes and fsyncs nothing.
        let mut fresh = !path.join("db").exists();
        // (sled's `conf` without its `db` is a ledger whose data file was lost: opening it
        // would create an empty one in its place)
        if fresh && path.join("conf").exists() {
            return Err(StoreError::Corrupt {
                seq: 0,
                what: format!(
                    "{} holds sled's conf but not its data file db: the ledger's events are missing; restore the directory from a backup or an export",
                    path.display()
                ),
            });
        }
        // sled releases its file lock only when its background flusher lets go of the last
        // handle, which can lag a drop by a few milliseconds; so a lock conflict is retried
        // for up to a second before it is reported as "in use".
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let db = loop {
            match sled::Config::new()
                .path(&path)
                .cache_capacity(64 * 1024 * 1024)
                .flush_every_ms(sled_flush_every_ms())
                .open()
            {
                Ok(db) => break db,
                Err(e) => match open_error(&path, e) {
                    StoreError::InUse { .. } if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(20));
                    }
                    other => return Err(other),
                },
            }
        };
        let meta = db.open_tree("meta")?;
        match meta.get(META_FORMAT)? {
            Some(v) => {
                let found = v.as_ref().try_into().map(u32::from_be_bytes).map_err(|_| {
                    StoreError::Corrupt {
                        seq: 0,
                        what: "format version is unreadable".into(),
                    }
                })?;
                if found > FORMAT_VERSION {
                    return Err(StoreError::NewerFormat {
                        path,
                        found,
                        supported: FORMAT_VERSION,
                    });
                }
            }
            None => {
                meta.insert(META_FORMAT, &FORMAT_VERSION.to_be_bytes())?;
                fresh = true;
            }
        }
        let store = Store {
            log: ManuallyDrop::new(db.open_tree("log")?),
            streams: ManuallyDrop::new(db.open_tree("streams")?),
            event_ids: ManuallyDrop::new(db.open_tree("event_ids")?),
            audit: std::sync::OnceLock::new(),
            meta: ManuallyDrop::new(meta),
            sync: durability::FileSync::new(&path, fresh)?,
            db: ManuallyDrop::new(db),
            path,
            clock,
            writer: Mutex::new(WriterState {
                last_recorded_at_us: i64::MIN,
            }),
            failed: AtomicBool::new(false),
            sync_lock: Mutex::new(()),
            last_sync_us: AtomicU64::new(0),
            _dir_lock: dir_lock,
        };
        let last = store.check_tail()?;
        store.writer_state().last_recorded_at_us = last.map_or(i64::MIN, |e| e.recorded_at_us);
        if fresh {
            store.sync()?;
        }
        Ok(store)
    }

    /// The head record, the last key of the log and the chain's tail must agree: a head
    /// set back would otherwise hide acknowledged events from reads and let the next append
    /// land on their slots. Returns the last envelope.
    pub(crate) fn check_tail(&self) -> Result<Option<Envelope>> {
        let head = self.head()?;
        let Some((key, raw)) = self.log.last()? else {
            if head.seq != 0 {
                return Err(StoreError::Corrupt {
                    seq: head.seq,
                    what: format!(
                        "the head record says {} events, but the log is empty",
                        head.seq
                    ),
                });
            }
            return Ok(None);
        };
        let key = parse_u64(&key).ok_or_else(|| StoreError::Corrupt {
            seq: head.seq,
            what: "the log's last key is not a sequence number".into(),
        })?;
        if key != head.seq {
            return Err(StoreError::Corrupt {
                seq: head.seq.min(key),
                what: format!(
                    "the head record says the last event is {}, but the log's last event is {key}",
                    head.seq
                ),
            });
        }
        let (env, ok) = Envelope::decode_checked(&raw).map_err(|what| StoreError::Corrupt {
            seq: key,
            what: format!("the log's last event does not decode: {what}"),
        })?;
        if !ok || env.seq != key || env.hash != head.hash {
            return Err(StoreError::Corrupt {
                seq: key,
                what: "the head record's hash is not the hash of the log's last event".into(),
            });
        }
        Ok(Some(env))
    }

    /// Refuse writes after a failed fsync.
    fn check_not_failed(&self) -> Result<()> {
        if self.failed.load(Ordering::SeqCst) {
            return Err(StoreError::Failed);
        }
        Ok(())
    }

    fn writer_state(&self) -> std::sync::MutexGuard<'_, WriterState> {
        // A poisoned lock only means another thread panicked mid-append; sled's transaction
        // already rolled that append back, so the state behind the lock is still sound.
        self.writer.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The time now by this store's clock (what `recorded_at` will say), in microseconds.
    pub fn now_us(&self) -> i64 {
        self.clock.now_us()
    }

    /// The earliest `recorded_at` an append made now would be given: the clock, or just
    /// after the last append when the clock is behind it.
    pub fn next_recorded_at_us(&self) -> i64 {
        self.clock
            .now_us()
            .max(self.writer_state().last_recorded_at_us.saturating_add(1))
    }

    /// The clock and the last `recorded_at`, when the clock reads earlier (an NTP step
    /// back, a VM restored): appends are then dated just after the last one, not by it.
    pub fn clock_behind(&self) -> Option<(i64, i64)> {
        let (now, last) = (
            self.clock.peek_us(),
            self.writer_state().last_recorded_at_us,
        );
        (now < last).then_some((now, last))
    }

    /// The ledger directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The head digest (sequence 0 and zero hash when empty).
    pub fn head(&self) -> Result<Digest> {
        match self.meta.get(META_HEAD)? {
            None => Ok(Digest {
                seq: 0,
                hash: GENESIS_HASH,
            }),
            Some(v) => parse_head(&v).ok_or_else(|| StoreError::Corrupt {
                seq: 0,
                what: "head record is unreadable".into(),
            }),
        }
    }

    /// Append `events` to `stream`, all or nothing.
    pub fn append(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[NewEvent],
        durability: Durability,
    ) -> Result<Appended> {
        let part = StreamAppend {
            stream: stream.to_owned(),
            expected,
            events: events.to_vec(),
        };
        self.append_many(std::slice::from_ref(&part), durability)
    }

    /// Append to several streams in one transaction: every event of every part is recorded,
    /// in the order given, or none is. `stream_version` in the result is that of the last part.
    pub fn append_many(&self, parts: &[StreamAppend], durability: Durability) -> Result<Appended> {
        self.append_noted(parts, durability, &[])
    }

    /// [`Store::append_many`], writing `notes` in the same transaction: what a layer above
    /// must know was recorded exactly with these events (the server's idempotency keys).
    /// Notes are not chained; a reader checks a note against the events it names.
    pub fn append_noted(
        &self,
        parts: &[StreamAppend],
        durability: Durability,
        notes: &[Note],
    ) -> Result<Appended> {
        for n in notes {
            if n.key.is_empty() || n.key.len() > MAX_NOTE_KEY || n.value.len() > MAX_NOTE_VALUE {
                return Err(StoreError::InvalidAppend(format!(
                    "a note's key is 1 to {MAX_NOTE_KEY} bytes and its value at most {MAX_NOTE_VALUE}"
                )));
            }
        }
        let total: usize = parts.iter().map(|p| p.events.len()).sum();
        let span = info_span!("append", streams = parts.len(), events = total);
        let _enter = span.enter();
        if total == 0 {
            return Err(StoreError::InvalidAppend(
                "an append needs at least one event".into(),
            ));
        }
        let mut ids = std::collections::HashSet::new();
        for p in parts {
            check_stream_id(&p.stream)?;
            for e in &p.events {
                Envelope::check_limits(e)?;
                if !ids.insert(e.event_id) {
                    return Err(StoreError::InvalidAppend(format!(
                        "event id {} appears twice in one append",
                        e.event_id
                    )));
                }
            }
        }
        let mut writer = self.writer_state();
        self.check_not_failed()?;
        // Strictly after the previous append, so that a time names exactly the appends made
        // by then even when the clock is coarse, stopped or stepped back.
        let now = self
            .clock
            .now_us()
            .max(writer.last_recorded_at_us.saturating_add(1));

        let outcome = (&*self.log, &*self.streams, &*self.event_ids, &*self.meta).transaction(
            |(log, streams, ids, meta)| {
                let abort = |e: StoreError| ConflictableTransactionError::Abort(e);
                // Idempotency first: a retried append must succeed even though the streams
                // have moved on since.
                let mut seen = Vec::new();
                for p in parts {
                    for e in &p.events {
                        if let Some(seq) = ids.get(e.event_id.as_bytes())? {
                            let seq = parse_u64(&seq).ok_or_else(|| {
                                abort(StoreError::Corrupt { seq: 0, what: "event id index entry is unreadable".into() })
                            })?;
                            let raw = log.get(seq_key(seq))?.ok_or_else(|| {
                                abort(StoreError::Corrupt { seq, what: "event id points to a missing envelope".into() })
                            })?;
                            let env = Envelope::from_bytes(&raw)
                                .map_err(|what| abort(StoreError::Corrupt { seq, what }))?;
                            if env.event_id != e.event_id || env.seq != seq {
                                return Err(abort(StoreError::Corrupt { seq, what: format!("the event id index points {} at an event without that id", e.event_id) }));
                            }
                            if !env.same_content(&p.stream, e) {
                                return Err(abort(StoreError::EventIdReused { event_id: e.event_id, seq }));
                            }
                            seen.push(env);
                        }
                    }
                }
                let head = match meta.get(META_HEAD)? {
                    None => Digest { seq: 0, hash: GENESIS_HASH },
                    Some(v) => parse_head(&v).ok_or_else(|| {
                        abort(StoreError::Corrupt { seq: 0, what: "head record is unreadable".into() })
                    })?,
                };
                if !seen.is_empty() {
                    if seen.len() != total {
                        return Err(abort(StoreError::InvalidAppend(format!(
                            "{} of {total} events in this append were recorded before; a retry must resend exactly the same events",
                            seen.len(),
                        ))));
                    }
                    return Ok(Appended {
                        seqs: seen.iter().map(|e| e.seq).collect(),
                        hashes: seen.iter().map(|e| e.hash).collect(),
                        stream_version: seen.last().map(|e| e.stream_version).unwrap_or(0),
                        head,
                        idempotent: true,
                    });
                }
                let mut prev = head.hash;
                let mut seq = head.seq;
                let mut seqs = Vec::with_capacity(total);
                let mut hashes = Vec::with_capacity(total);
                let mut last = head;
                let mut stream_version = 0;
                let mut lists: std::collections::HashMap<&str, Vec<u8>> = std::collections::HashMap::new();
                for p in parts {
                    if !lists.contains_key(p.stream.as_str()) {
                        let list = streams.get(p.stream.as_bytes())?.map(|v| v.to_vec()).unwrap_or_default();
                        if !list.len().is_multiple_of(8) {
                            return Err(abort(StoreError::Corrupt { seq: head.seq, what: format!("index of stream {} is unreadable", p.stream) }));
                        }
                        // The stream's version comes from its index: the last event it lists
                        // must say it is that version of that stream.
                        if let Some(last) = list.chunks_exact(8).last().and_then(parse_u64) {
                            let ok = log
                                .get(seq_key(last))?
                                .and_then(|raw| Envelope::from_bytes(&raw).ok())
                                .is_some_and(|env| env.stream == p.stream && env.stream_version == (list.len() / 8) as u64);
                            if !ok {
                                return Err(abort(StoreError::Corrupt { seq: last, what: format!("index of stream {} does not match its last event", p.stream) }));
                            }
                        }
                        lists.insert(p.stream.as_str(), list);
                    }
                    let list = lists.get_mut(p.stream.as_str()).ok_or_else(|| abort(StoreError::Encode("stream list".into())))?;
                    let version = (list.len() / 8) as u64;
                    let ok = match p.expected {
                        ExpectedVersion::Any => true,
                        ExpectedVersion::NoStream => version == 0,
                        ExpectedVersion::Exact(n) => version == n,
                    };
                    if !ok {
                        return Err(abort(StoreError::WrongExpectedVersion {
                            stream: p.stream.clone(),
                            expected: match p.expected {
                                ExpectedVersion::NoStream => "no stream".into(),
                                ExpectedVersion::Exact(n) => format!("version {n}"),
                                ExpectedVersion::Any => "any".into(),
                            },
                            actual: version,
                        }));
                    }
                    let mut sv = version;
                    for e in &p.events {
                        seq += 1;
                        sv += 1;
                        let (env, raw) = Envelope::seal(seq, &p.stream, sv, now, e, prev).map_err(abort)?;
                        // An acknowledged event is never overwritten, whatever the head says.
                        if log.get(seq_key(seq))?.is_some() {
                            return Err(abort(StoreError::Corrupt {
                                seq,
                                what: format!("sequence {seq} is already taken in the log, but the head record says {}", head.seq),
                            }));
                        }
                        log.insert(&seq_key(seq), raw)?;
                        list.extend_from_slice(&seq_key(seq));
                        ids.insert(e.event_id.as_bytes(), &seq_key(seq))?;
                        prev = env.hash;
                        last = Digest { seq, hash: env.hash };
                        seqs.push(seq);
                        hashes.push(env.hash);
                    }
                    stream_version = sv;
                }
                for (stream, list) in lists {
                    streams.insert(stream.as_bytes(), list)?;
                }
                meta.insert(META_HEAD, &head_bytes(&last)[..])?;
                for n in notes {
                    meta.insert(note_key(&n.key), n.value.as_slice())?;
                }
                Ok(Appended { seqs, hashes, stream_version, head: last, idempotent: false })
            },
        );
        let appended = match outcome {
            Ok(a) => a,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(StoreError::Sled(e)),
        };
        if !appended.idempotent {
            writer.last_recorded_at_us = now;
        }
        // A retry is acknowledged only once what it found is durable too: the first attempt
        // may have committed to sled and then failed (or died) before its fsync.
        if durability == Durability::Durable {
            self.sync()?;
        }
        debug!(
            first = appended.seqs.first(),
            head = appended.head.seq,
            "appended"
        );
        Ok(appended)
    }

    /// Append events another ledger sealed — a follower's copy of a server's log — byte for
    /// byte, durably, in one transaction: each must continue the chain from this store's
    /// head (its sequence next, its `prev_hash` the head's hash, its hash over its bytes
    /// right), continue its stream's versions, and carry an event id not seen before.
    /// Anything else is refused and nothing is written. Returns the new head.
    pub fn append_sealed(&self, sealed: &[(Envelope, Vec<u8>)]) -> Result<Digest> {
        let span = info_span!("append_sealed", events = sealed.len());
        let _enter = span.enter();
        let mut writer = self.writer_state();
        self.check_not_failed()?;
        // (what `verify` would refuse of the copy is refused before it is written)
        let mut last_at = writer.last_recorded_at_us;
        // (read once, without moving a clock that steps on each reading)
        let latest = self.clock.peek_us().saturating_add(MAX_AHEAD_US);
        for (env, raw) in sealed {
            let (decoded, hash_ok) = Envelope::decode_checked(raw)
                .map_err(|what| StoreError::Corrupt { seq: env.seq, what })?;
            if !hash_ok || &decoded != env {
                return Err(StoreError::Corrupt {
                    seq: env.seq,
                    what: "its bytes do not hash to the hash it carries".into(),
                });
            }
            check_stream_id(&env.stream)?;
            env.check_stored_limits()
                .map_err(|what| StoreError::Corrupt { seq: env.seq, what })?;
            if env.recorded_at_us < last_at {
                return Err(StoreError::Corrupt {
                    seq: env.seq,
                    what: format!(
                        "recorded_at goes backwards ({} after {})",
                        env.recorded_at_us, last_at
                    ),
                });
            }
            if env.recorded_at_us > latest {
                return Err(StoreError::Corrupt {
                    seq: env.seq,
                    what: format!(
                        "it is dated {} µs after the Unix epoch, more than a day after this machine's clock: no ledger can have recorded it yet",
                        env.recorded_at_us
                    ),
                });
            }
            last_at = env.recorded_at_us;
        }
        let outcome = (&*self.log, &*self.streams, &*self.event_ids, &*self.meta).transaction(
            |(log, streams, ids, meta)| {
                let abort = |e: StoreError| ConflictableTransactionError::Abort(e);
                let corrupt = |seq: u64, what: String| abort(StoreError::Corrupt { seq, what });
                let mut head = match meta.get(META_HEAD)? {
                    None => Digest {
                        seq: 0,
                        hash: GENESIS_HASH,
                    },
                    Some(v) => parse_head(&v)
                        .ok_or_else(|| corrupt(0, "head record is unreadable".into()))?,
                };
                let mut lists: std::collections::HashMap<&str, Vec<u8>> =
                    std::collections::HashMap::new();
                for (env, raw) in sealed {
                    if env.seq != head.seq + 1 || env.prev_hash != head.hash {
                        return Err(corrupt(
                            env.seq,
                            format!(
                                "it does not continue the chain from this copy's head {}",
                                head.seq
                            ),
                        ));
                    }
                    if log.get(seq_key(env.seq))?.is_some() {
                        return Err(corrupt(
                            env.seq,
                            "its sequence is already taken here".into(),
                        ));
                    }
                    if ids.get(env.event_id.as_bytes())?.is_some() {
                        return Err(abort(StoreError::EventIdReused {
                            event_id: env.event_id,
                            seq: env.seq,
                        }));
                    }
                    if !lists.contains_key(env.stream.as_str()) {
                        let list = streams
                            .get(env.stream.as_bytes())?
                            .map(|v| v.to_vec())
                            .unwrap_or_default();
                        lists.insert(env.stream.as_str(), list);
                    }
                    let list = lists
                        .get_mut(env.stream.as_str())
                        .ok_or_else(|| abort(StoreError::Encode("stream list".into())))?;
                    if env.stream_version != (list.len() / 8) as u64 + 1 {
                        return Err(corrupt(
                            env.seq,
                            format!(
                                "version {} of stream {} does not follow the {} before it here",
                                env.stream_version,
                                env.stream,
                                list.len() / 8
                            ),
                        ));
                    }
                    log.insert(&seq_key(env.seq), raw.as_slice())?;
                    list.extend_from_slice(&seq_key(env.seq));
                    ids.insert(env.event_id.as_bytes(), &seq_key(env.seq))?;
                    head = Digest {
                        seq: env.seq,
                        hash: env.hash,
                    };
                }
                for (stream, list) in lists {
                    streams.insert(stream.as_bytes(), list)?;
                }
                meta.insert(META_HEAD, &head_bytes(&head)[..])?;
                Ok(head)
            },
        );
        let head = match outcome {
            Ok(h) => h,
            Err(TransactionError::Abort(e)) => return Err(e),
            Err(TransactionError::Storage(e)) => return Err(StoreError::Sled(e)),
        };
        if let Some((last, _)) = sealed.last() {
            writer.last_recorded_at_us = writer.last_recorded_at_us.max(last.recorded_at_us);
        }
        drop(writer);
        self.sync()?;
        Ok(head)
    }

    /// Envelopes from `from` (inclusive) with their bytes as stored (what the hash covers),
    /// in sequence order; the chain is not checked here.
    pub fn raw_from(&self, from: u64) -> impl Iterator<Item = Result<(Envelope, Vec<u8>)>> + '_ {
        self.log.range(seq_key(from)..).map(|item| {
            let (k, v) = item?;
            Ok((at_key(&k, &v)?, v.to_vec()))
        })
    }

    /// Hand sled's buffered writes to the operating system without an fsync (for derived data
    /// only, such as the audit index: nothing acknowledged depends on it).
    pub fn flush_buffers(&self) -> Result<()> {
        self.check_not_failed()?;
        self.db.flush()?;
        Ok(())
    }

    /// Make everything appended so far durable: sled's flush, then a real fsync.
    pub fn sync(&self) -> Result<()> {
        let _one_at_a_time = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.check_not_failed()?;
        let started = std::time::Instant::now();
        let result = self
            .db
            .flush()
            .map_err(StoreError::from)
            .and_then(|_| self.sync.sync());
        self.last_sync_us.store(
            started.elapsed().as_micros().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
        if let Err(e) = result {
            self.failed.store(true, Ordering::SeqCst);
            return Err(StoreError::SyncFailed(e.to_string()));
        }
        Ok(())
    }

    /// The note written under `key` with an append, if any (not vouched for by the chain:
    /// check it against the events it names).
    pub fn note(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.meta.get(note_key(key))?.map(|v| v.to_vec()))
    }

    /// How long the last sync took (sled's flush and the fsync), for metrics.
    pub fn last_sync(&self) -> std::time::Duration {
        std::time::Duration::from_micros(self.last_sync_us.load(Ordering::Relaxed))
    }

    /// The envelope at `seq`, if any.
    pub fn get(&self, seq: u64) -> Result<Option<Envelope>> {
        match self.log.get(seq_key(seq))? {
            None => Ok(None),
            Some(raw) => at_key(&seq_key(seq), &raw).map(Some),
        }
    }

    /// Envelopes from `from` (inclusive) in sequence order, decoded lazily. Each must sit at
    /// its own sequence's key; the chain is not checked here (see `iter_chained`).
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = Result<Envelope>> + '_ {
        self.log.range(seq_key(from)..).map(|item| {
            let (k, v) = item?;
            at_key(&k, &v)
        })
    }

    /// Envelopes from `from` in order, each checked against its hash and its predecessor's
    /// (the chain), so every reader that folds the log also re-verifies it.
    pub fn iter_chained(&self, from: u64) -> Result<impl Iterator<Item = Result<Envelope>> + '_> {
        let mut prev = match from {
            0 | 1 => GENESIS_HASH,
            n => {
                self.get(n - 1)?
                    .ok_or_else(|| StoreError::Corrupt {
                        seq: n - 1,
                        what: "missing envelope".into(),
                    })?
                    .hash
            }
        };
        let mut expected = from.max(1);
        Ok(self.log.range(seq_key(from)..).map(move |item| {
            let (k, v) = item?;
            let seq = parse_u64(&k).unwrap_or(0);
            let bad = |what: String| StoreError::Corrupt { seq, what };
            if seq != expected {
                return Err(StoreError::Corrupt {
                    seq: expected,
                    what: format!("sequence {expected} is missing"),
                });
            }
            let (env, ok) = Envelope::decode_checked(&v).map_err(bad)?;
            if !ok || env.prev_hash != prev || env.seq != seq {
                return Err(bad("hash chain is broken".into()));
            }
            prev = env.hash;
            expected += 1;
            Ok(env)
        }))
    }

    /// Envelopes with `from <= seq <= to`, decoded lazily.
    pub fn range(&self, from: u64, to: u64) -> impl Iterator<Item = Result<Envelope>> + '_ {
        self.iter_from(from)
            .take_while(move |e| e.as_ref().map(|e| e.seq <= to).unwrap_or(true))
    }

    /// Every envelope of one stream, in stream order.
    pub fn read_stream(&self, stream: &str) -> Result<Vec<Envelope>> {
        let seqs = match self.streams.get(stream.as_bytes())? {
            None => vec![],
            Some(v) => unpack_seqs(&v).ok_or_else(|| StoreError::Corrupt {
                seq: 0,
                what: format!("index of stream {stream} is unreadable"),
            })?,
        };
        let mut out = Vec::with_capacity(seqs.len());
        for (i, seq) in seqs.into_iter().enumerate() {
            let env = self.get(seq)?.ok_or_else(|| StoreError::Corrupt {
                seq,
                what: "stream index points to a missing envelope".into(),
            })?;
            // The index is only a pointer: what it points at must say it belongs here.
            if env.seq != seq || env.stream != stream || env.stream_version != i as u64 + 1 {
                return Err(StoreError::Corrupt {
                    seq,
                    what: format!("index of stream {stream} does not match the event it points to"),
                });
            }
            out.push(env);
        }
        Ok(out)
    }

    /// The current version of a stream (0 when it has no events).
    pub fn stream_version(&self, stream: &str) -> Result<u64> {
        Ok(self
            .streams
            .get(stream.as_bytes())?
            .map(|v| (v.len() / 8) as u64)
            .unwrap_or(0))
    }

    /// The sequence of an event id, if recorded; the envelope there must carry that id.
    pub fn seq_of(&self, event_id: Uuid) -> Result<Option<u64>> {
        let Some(seq) = self
            .event_ids
            .get(event_id.as_bytes())?
            .and_then(|v| parse_u64(&v))
        else {
            return Ok(None);
        };
        match self.get(seq)? {
            Some(env) if env.event_id == event_id => Ok(Some(seq)),
            _ => Err(StoreError::Corrupt {
                seq,
                what: format!("the event id index points {event_id} at an event without that id"),
            }),
        }
    }

    /// The last sequence recorded at or before `us` (0 if none): a binary search, since
    /// `recorded_at` never decreases along the log.
    pub fn seq_at_time(&self, us: i64) -> Result<u64> {
        let (mut lo, mut hi) = (0u64, self.head()?.seq);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let at = self
                .get(mid)?
                .ok_or_else(|| StoreError::Corrupt {
                    seq: mid,
                    what: "missing envelope".into(),
                })?
                .recorded_at_us;
            if at <= us { lo = mid } else { hi = mid - 1 }
        }
        Ok(lo)
    }

    /// Recompute the chain and every index entry; names the first bad sequence.
    pub fn verify(&self) -> Result<Verified> {
        self.verify_with_progress(&mut |_| {})
    }

    /// [`Store::verify`], calling `progress(seq)` every 4096 events.
    pub fn verify_with_progress(&self, progress: &mut dyn FnMut(u64)) -> Result<Verified> {
        let span = info_span!("verify");
        let _enter = span.enter();
        let mut prev = GENESIS_HASH;
        let mut expected_seq = 1u64;
        let mut last_at = i64::MIN;
        let mut versions: std::collections::HashMap<String, Vec<u64>> =
            std::collections::HashMap::new();
        for item in self.log.iter() {
            let (k, v) = item?;
            let key_seq = parse_u64(&k).unwrap_or(0);
            let bad = |what: String| StoreError::Corrupt {
                seq: key_seq.min(expected_seq),
                what,
            };
            if key_seq != expected_seq {
                return Err(StoreError::Corrupt {
                    seq: expected_seq,
                    what: format!("sequence {expected_seq} is missing (next key is {key_seq})"),
                });
            }
            let (env, hash_ok) = Envelope::decode_checked(&v)
                .map_err(|e| bad(format!("envelope does not decode: {e}")))?;
            if env.seq != key_seq {
                return Err(bad(format!(
                    "envelope says sequence {} but is stored under {key_seq}",
                    env.seq
                )));
            }
            if env.prev_hash != prev {
                return Err(bad("previous-hash link is broken".into()));
            }
            if !hash_ok {
                return Err(bad("hash does not match the envelope's content".into()));
            }
            if env.recorded_at_us < last_at {
                return Err(bad("recorded_at goes backwards".into()));
            }
            let list = match versions.get_mut(env.stream.as_str()) {
                Some(l) => l,
                None => versions.entry(env.stream.clone()).or_default(),
            };
            let v_expected = list.len() as u64 + 1;
            if env.stream_version != v_expected {
                return Err(bad(format!(
                    "stream {} jumps to version {} (expected {v_expected})",
                    env.stream, env.stream_version
                )));
            }
            list.push(key_seq);
            match self.event_ids.get(env.event_id.as_bytes())? {
                Some(s) if parse_u64(&s) == Some(key_seq) => {}
                _ => return Err(bad("event id index entry is missing or wrong".into())),
            }
            prev = env.hash;
            last_at = env.recorded_at_us;
            if key_seq.is_multiple_of(4096) {
                progress(key_seq);
            }
            expected_seq += 1;
        }
        let count = expected_seq - 1;
        let head = self.head()?;
        if head.seq != count || (count > 0 && head.hash != prev) {
            return Err(StoreError::Corrupt {
                seq: head.seq.min(count + 1),
                what: format!("recorded head {head} does not match the log's last event {count}"),
            });
        }
        // Every stream's packed list must be exactly its events' sequences, in order.
        let mut listed = 0usize;
        for item in self.streams.iter() {
            let (k, v) = item?;
            let name = String::from_utf8_lossy(&k).into_owned();
            let stored = unpack_seqs(&v).ok_or_else(|| StoreError::Corrupt {
                seq: count,
                what: format!("index of stream {name} is unreadable"),
            })?;
            let actual = versions.get(&name).map(Vec::as_slice).unwrap_or(&[]);
            if stored != actual {
                let first_bad = stored
                    .iter()
                    .zip(actual)
                    .find(|(a, b)| a != b)
                    .map(|(_, b)| *b)
                    .or_else(|| actual.get(stored.len()).copied())
                    .or_else(|| stored.get(actual.len()).copied())
                    .unwrap_or(count);
                return Err(StoreError::Corrupt {
                    seq: first_bad,
                    what: format!("index of stream {name} does not match its events"),
                });
            }
            listed += 1;
        }
        if listed != versions.len() || self.event_ids.len() as u64 != count {
            return Err(StoreError::Corrupt {
                seq: count,
                what: "an index is missing entries, or holds entries for events that are not in the log".into(),
            });
        }
        Ok(Verified {
            events: count,
            head,
        })
    }

    /// Check a digest noted earlier: the envelope at `digest.seq` must have that hash.
    pub fn verify_digest(&self, digest: &Digest) -> Result<()> {
        let actual = if digest.seq == 0 {
            Some(GENESIS_HASH)
        } else {
            self.get(digest.seq)?.map(|e| e.hash)
        };
        match actual {
            Some(h) if h == digest.hash => Ok(()),
            Some(h) => Err(StoreError::DigestMismatch {
                seq: digest.seq,
                noted: digest.hash_hex(),
                actual: hex::encode(h),
            }),
            None => Err(StoreError::DigestMismatch {
                seq: digest.seq,
                noted: digest.hash_hex(),
                actual: "nothing (the ledger is shorter)".into(),
            }),
        }
    }

    /// The sled database underneath, for the reference measurements of the benchmarks only.
    #[doc(hidden)]
    pub fn raw_db_for_benches(&self) -> sled::Db {
        (*self.db).clone()
    }

    /// Damage a stored envelope in place, for tests of `verify`. Not for production use.
    #[doc(hidden)]
    pub fn tamper_for_tests(&self, seq: u64, f: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        if let Some(v) = self.log.get(seq_key(seq))? {
            let mut bytes = v.to_vec();
            f(&mut bytes);
            self.log.insert(seq_key(seq), bytes)?;
            self.db.flush()?;
        }
        Ok(())
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.failed.load(Ordering::SeqCst) {
            // Leaked on purpose: sled's drop would fsync again and panic on the failure.
            // The process is expected to end or reopen after restarting (the failure is
            // final for it); its file lock goes with the process.
            return;
        }
        // SAFETY: each handle is dropped exactly once, here, and never used again.
        unsafe {
            ManuallyDrop::drop(&mut self.meta);
            ManuallyDrop::drop(&mut self.event_ids);
            ManuallyDrop::drop(&mut self.streams);
            ManuallyDrop::drop(&mut self.log);
            ManuallyDrop::drop(&mut self.db);
        }
    }
}

fn open_error(path: &Path, e: sled::Error) -> StoreError {
    let text = e.to_string();
    if text.contains("could not acquire lock")
        || text.contains("WouldBlock")
        || text.contains("Resource temporarily unavailable")
    {
        StoreError::InUse {
            path: path.to_path_buf(),
        }
    } else {
        StoreError::Sled(e)
    }
}
