//! Export to JSON Lines, and import into a new ledger that is all there or not there at all.
//!
//! Each line carries the decoded envelope fields, the payload (base64), the raw envelope
//! bytes (base64) and, when the caller can decode it, the event as JSON (`event`, ignored on
//! import). Import checks every line against its raw bytes and the chain before the ledger
//! exists: it builds into a hidden sibling directory and renames it into place only when
//! every line checked out, so a refused or interrupted import leaves nothing behind.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, Read as _, Write};
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use tracing::info_span;

use crate::durability::sync_dir;
use crate::{
    Clock, Digest, Envelope, GENESIS_HASH, Result, Store, StoreError, Verified, head_bytes, seq_key,
};

/// One line of an export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportLine {
    /// Global sequence.
    pub seq: u64,
    /// Event id.
    pub event_id: uuid::Uuid,
    /// Stream id.
    pub stream: String,
    /// Version within the stream.
    pub stream_version: u64,
    /// Microseconds since the Unix epoch.
    pub recorded_at_us: i64,
    /// Who recorded it.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// On what authority.
    pub source: Option<String>,
    /// Event type name.
    pub event_type: String,
    /// Payload schema version.
    pub schema_version: u16,
    /// Payload bytes, base64.
    pub payload: String,
    /// Previous hash, hex.
    pub prev_hash: String,
    /// This envelope's hash, hex: SHA-256(prev_hash ‖ raw without its last 32 bytes).
    pub hash: String,
    /// The raw envelope bytes, base64.
    pub raw: String,
    /// The event decoded by the domain, for people; import checks it is exactly that.
    #[serde(default)]
    pub event: Option<serde_json::Value>,
}

impl ExportLine {
    /// The line for an envelope and its bytes exactly as stored (what the hash covers).
    pub fn from_envelope(
        env: &Envelope,
        raw: &[u8],
        event: Option<serde_json::Value>,
    ) -> ExportLine {
        ExportLine {
            seq: env.seq,
            event_id: env.event_id,
            stream: env.stream.clone(),
            stream_version: env.stream_version,
            recorded_at_us: env.recorded_at_us,
            actor: env.meta.actor.clone(),
            reason: env.meta.reason.clone(),
            source: env.meta.source.clone(),
            event_type: env.event_type.clone(),
            schema_version: env.schema_version,
            payload: B64.encode(&env.payload),
            prev_hash: hex::encode(env.prev_hash),
            hash: hex::encode(env.hash),
            raw: B64.encode(raw),
            event,
        }
    }
}

impl Store {
    /// Write every event as one JSON line; `describe` may add the decoded event. Returns the count.
    pub fn export(
        &self,
        out: &mut dyn Write,
        describe: &dyn Fn(&Envelope) -> Option<serde_json::Value>,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64> {
        let span = info_span!("export");
        let _enter = span.enter();
        let mut n = 0;
        // The raw bytes go out as stored, never re-encoded: the export is what the chain
        // covers, and each line is checked against the chain before it goes out.
        let mut prev = GENESIS_HASH;
        for item in self.log.iter() {
            let (k, raw) = item?;
            let seq = crate::parse_u64_key(&k);
            let (env, ok) =
                Envelope::decode_checked(&raw).map_err(|what| StoreError::Corrupt { seq, what })?;
            if !ok || env.seq != n + 1 || seq != n + 1 || env.prev_hash != prev {
                return Err(StoreError::Corrupt {
                    seq: n + 1,
                    what: "hash chain is broken".into(),
                });
            }
            prev = env.hash;
            let line = ExportLine::from_envelope(&env, &raw, describe(&env));
            serde_json::to_writer(&mut *out, &line)
                .map_err(|e| StoreError::Encode(e.to_string()))?;
            out.write_all(b"\n")
                .map_err(StoreError::io("writing the export"))?;
            n += 1;
            if n % 4096 == 0 {
                progress(n);
            }
        }
        out.write_all(end_line(&Digest { seq: n, hash: prev }).as_bytes())
            .map_err(StoreError::io("writing the export"))?;
        out.flush().map_err(StoreError::io("writing the export"))?;
        Ok(n)
    }
}

/// An export's last line, `{"end":{"events":N,"digest":"N:HASH"}}`: how many events it
/// holds and the head they reach, so a file cut short is told from a smaller ledger.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndLine {
    end: End,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct End {
    events: u64,
    digest: String,
}

/// The end line of an export whose events reach `head`, with its new line.
pub fn end_line(head: &Digest) -> String {
    let end = EndLine {
        end: End {
            events: head.seq,
            digest: head.to_string(),
        },
    };
    // (two numbers and a string: nothing that can fail to encode)
    let mut line = serde_json::to_string(&end).unwrap_or_default();
    line.push('\n');
    line
}

/// How an end line starts, as the export writes it.
const END_PREFIX: &str = "{\"end\":";

/// An export line as import reads it: borrowed where it can be; the decoded `event` is kept
/// for the layers above to compare with their own decoding of the bytes ([`EventCheck`]),
/// and a field an export does not write is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportLine<'a> {
    seq: u64,
    event_id: uuid::Uuid,
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    stream_version: u64,
    recorded_at_us: i64,
    #[serde(borrow)]
    actor: std::borrow::Cow<'a, str>,
    reason: Option<String>,
    source: Option<String>,
    #[serde(borrow)]
    event_type: std::borrow::Cow<'a, str>,
    schema_version: u16,
    #[serde(borrow)]
    payload: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    prev_hash: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    hash: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    raw: std::borrow::Cow<'a, str>,
    #[serde(default)]
    event: Option<serde_json::Value>,
}

impl ImportLine<'_> {
    /// Decode the raw bytes, check the hash over them, and check every decoded field agrees.
    fn checked(&self) -> std::result::Result<(Envelope, Vec<u8>), String> {
        let raw = B64
            .decode(self.raw.as_bytes())
            .map_err(|e| format!("raw is not base64: {e}"))?;
        let (env, hash_ok) = Envelope::decode_checked(&raw)
            .map_err(|e| format!("raw envelope does not decode: {e}"))?;
        let payload = B64
            .decode(self.payload.as_bytes())
            .map_err(|e| format!("payload is not base64: {e}"))?;
        let mismatch = [
            ("seq", env.seq == self.seq),
            ("event_id", env.event_id == self.event_id),
            ("stream", env.stream == self.stream),
            ("stream_version", env.stream_version == self.stream_version),
            ("recorded_at_us", env.recorded_at_us == self.recorded_at_us),
            ("actor", env.meta.actor == self.actor),
            ("reason", env.meta.reason == self.reason),
            ("source", env.meta.source == self.source),
            ("event_type", env.event_type == self.event_type),
            ("schema_version", env.schema_version == self.schema_version),
            ("payload", env.payload == payload),
            ("prev_hash", hex_eq(&env.prev_hash, &self.prev_hash)),
            ("hash", hex_eq(&env.hash, &self.hash)),
        ]
        .into_iter()
        .find(|(_, ok)| !ok);
        if let Some((field, _)) = mismatch {
            return Err(format!("field {field} does not match the raw envelope"));
        }
        if !hash_ok {
            return Err("hash does not match the envelope's content".into());
        }
        Ok((env, raw))
    }
}

/// Parse and check one export line as import does (JSON, base64, the envelope, its hash,
/// and every decoded field against the raw bytes); the chain between lines is checked by
/// the import itself. Public for the fuzzer.
#[doc(hidden)]
pub fn parse_line(line: &str) -> std::result::Result<(Envelope, Vec<u8>), String> {
    let parsed: ImportLine =
        serde_json::from_str(line).map_err(|e| format!("not a valid export line: {e}"))?;
    parsed.checked()
}

/// Whether `text` is the lowercase hex of `bytes`, without allocating.
fn hex_eq(bytes: &[u8; 32], text: &str) -> bool {
    let mut buf = [0u8; 64];
    hex::encode_to_slice(bytes, &mut buf).is_ok() && buf[..] == *text.as_bytes()
}

/// Longest export line import reads: an envelope at its limit, twice in base64 (payload
/// and raw), with its decoded JSON, fits several times over.
pub const MAX_LINE_BYTES: u64 = 16 << 20;

/// Rows written per sled batch during import.
const IMPORT_BATCH: usize = 4096;

/// Hidden sibling directories that imports into `path` build in (`.<name>.import-<uuid>`).
/// One that is not locked was left by an import that died before its rename.
pub fn import_leftovers(path: &Path) -> Vec<std::path::PathBuf> {
    let Some((parent, name)) = staging_parts(path) else {
        return vec![];
    };
    let prefix = format!(".{name}.import-");
    let Ok(entries) = std::fs::read_dir(&parent) else {
        return vec![];
    };
    // exactly `.<name>.import-<uuid>`: a longer name that shares the prefix belongs to an
    // import into another target
    let mut out: Vec<_> = entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_prefix(&prefix)
                .is_some_and(|rest| uuid::Uuid::try_parse(rest).is_ok())
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn staging_parts(path: &Path) -> Option<(std::path::PathBuf, String)> {
    let parent = crate::durability::parent_of(path)?;
    let name = path.file_name()?.to_string_lossy().into_owned();
    Some((parent, name))
}

/// Import an export into a new ledger at `path`, which must not exist or be an empty
/// directory. All or nothing, and nothing that was there is ever removed:
/// - the target directory is created (if missing) and locked before anything else, and held
///   until the imported ledger is in place, so no other eduledger can record into it;
/// - the ledger is built, checked and fsynced in a hidden sibling directory, then renamed
///   over the empty target in one step (the kernel refuses to replace a non-empty one);
/// - a staging directory left by an import that died is removed first (it is never a
///   ledger anyone acknowledged anything in).
///
/// A crash at any moment leaves either an empty directory (no ledger) or the whole import.
pub fn import_new(
    path: &Path,
    input: &mut dyn BufRead,
    clock: Arc<dyn Clock>,
    progress: &mut dyn FnMut(u64),
) -> Result<Verified> {
    let checks = ImportChecks {
        event: &|_, _| Ok(()),
        log: &|_| Ok(()),
        head: None,
        end_required: false,
    };
    import_new_checked(path, input, clock, progress, &checks)
}

/// A check the layers above make of every imported event, with the line's readable `event`
/// (the domain decodes its payload, and the line must show exactly that decoding), so that
/// nothing is put in place that they could not read, and what an auditor reads without
/// eduledger is what the bytes say.
pub type EventCheck<'a> =
    &'a (dyn Fn(&Envelope, Option<&serde_json::Value>) -> std::result::Result<(), String> + Sync);

/// A check the layers above make of the whole imported log, once it is written and before
/// it is put in place (the ledger replays it through the rules); a refusal names the event's
/// sequence and why.
pub type LogCheck<'a> = &'a dyn Fn(&Store) -> std::result::Result<(), (u64, String)>;

/// What an import checks beyond the lines and their chain.
pub struct ImportChecks<'a> {
    /// Run on every event as it is read.
    pub event: EventCheck<'a>,
    /// Run on the whole log before anything is put in place.
    pub log: LogCheck<'a>,
    /// The head the export must reach (`import --digest`): it also vouches for the end of
    /// an export without its end line (one written before the end line existed).
    pub head: Option<Digest>,
    /// Refuse an export without its end line, unless `head` is given.
    pub end_required: bool,
}

/// [`import_new`], with `checks` made before anything is put in place.
pub fn import_new_checked(
    path: &Path,
    input: &mut dyn BufRead,
    clock: Arc<dyn Clock>,
    progress: &mut dyn FnMut(u64),
    checks: &ImportChecks<'_>,
) -> Result<Verified> {
    let span = info_span!("import", path = %path.display());
    let _enter = span.enter();
    let (parent, name) = staging_parts(path).ok_or_else(|| StoreError::NotEmpty {
        path: path.to_path_buf(),
        what: "it has no name to import into".into(),
    })?;
    check_empty(path)?;
    let created = !path.exists();
    let result = import_locked(path, &parent, &name, input, clock, progress, checks);
    if result.is_err() && created {
        // Only the empty directory this import made; remove_dir refuses a non-empty one.
        let _ = std::fs::remove_dir(path);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn import_locked(
    path: &Path,
    parent: &Path,
    name: &str,
    input: &mut dyn BufRead,
    clock: Arc<dyn Clock>,
    progress: &mut dyn FnMut(u64),
    checks: &ImportChecks<'_>,
) -> Result<Verified> {
    let _target = crate::durability::lock_dir(path, true)?;
    // Checked again under the lock: another process may have created files meanwhile.
    check_empty(path)?;
    for stale in import_leftovers(path) {
        // A live import holds its staging directory's lock; only abandoned ones are removed.
        if let Some(_held) = crate::durability::try_lock_dir(&stale) {
            tracing::warn!(
                "removing {}, left by an import that did not finish",
                stale.display()
            );
            let _ = std::fs::remove_dir_all(&stale);
        }
    }
    let staging = parent.join(format!(".{name}.import-{}", uuid::Uuid::now_v7()));
    match build(&staging, input, clock, progress, checks) {
        Ok((verified, staged)) => {
            // The staging directory stays locked until it is in place (a copy of the store's
            // own lock outlives the store); sled is closed first and what it wrote while
            // closing is made durable, so the ledger is renamed whole.
            let lock = staged
                ._dir_lock
                .try_clone()
                .map_err(StoreError::io(format!(
                    "keeping the lock of {}",
                    staging.display()
                )))?;
            drop(staged);
            crate::durability::sync_closed_ledger(&staging)?;
            sync_dir(parent)?;
            let moved = std::fs::rename(&staging, path).map_err(StoreError::io(format!(
                "moving the imported ledger into {}",
                path.display()
            )));
            drop(lock);
            moved?;
            sync_dir(parent)?;
            Ok(verified)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            Err(e)
        }
    }
}

/// `path` must be absent or an empty directory.
fn check_empty(path: &Path) -> Result<()> {
    let refuse = |what: String| StoreError::NotEmpty {
        path: path.to_path_buf(),
        what,
    };
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(StoreError::Io {
            context: format!("reading {}", path.display()),
            source: e,
        }),
        Ok(m) if !m.is_dir() => Err(refuse("it is not a directory".into())),
        Ok(_) => {
            let entries = std::fs::read_dir(path)
                .map_err(StoreError::io(format!("reading {}", path.display())))?;
            let names: Vec<String> = entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .take(4)
                .collect();
            if names.is_empty() {
                Ok(())
            } else {
                Err(refuse(format!("it holds {}", names.join(", "))))
            }
        }
    }
}

/// Rows checked by the parsing thread, one batch per tree.
struct Checked {
    log: sled::Batch,
    ids: Vec<([u8; 16], u64)>,
    count: u64,
}

fn build(
    staging: &Path,
    input: &mut dyn BufRead,
    clock: Arc<dyn Clock>,
    progress: &mut dyn FnMut(u64),
    checks: &ImportChecks<'_>,
) -> Result<(Verified, Store)> {
    let now_us = clock.peek_us();
    let store = Store::open_with_clock(staging, clock)?;
    // Pipelined on every core: this thread parses and checks lines (JSON, base64, bincode,
    // SHA-256, the chain) while one writer per tree applies sled batches (sled's work per
    // insert is CPU, not disk, until the final sync). Bounded channels keep memory flat.
    let (log_tx, log_rx) = std::sync::mpsc::sync_channel::<sled::Batch>(4);
    let (ids_tx, ids_rx) = std::sync::mpsc::sync_channel::<Vec<([u8; 16], u64)>>(4);
    let (checked, written) = std::thread::scope(|scope| {
        let log_writer = scope.spawn(|| -> Result<()> {
            for b in log_rx {
                store.log.apply_batch(b)?;
            }
            Ok(())
        });
        let ids_writer = scope.spawn(|| -> Result<()> {
            for rows in ids_rx {
                let mut b = sled::Batch::default();
                for (k, seq) in rows {
                    b.insert(&k[..], &seq_key(seq));
                }
                store.event_ids.apply_batch(b)?;
            }
            Ok(())
        });
        let checked = check_lines(
            input,
            &mut |c: Checked| log_tx.send(c.log).is_ok() && ids_tx.send(c.ids).is_ok(),
            progress,
            checks.event,
            now_us,
        );
        drop((log_tx, ids_tx));
        let failed = || Err(StoreError::Encode("an import writer thread failed".into()));
        let written = [log_writer.join(), ids_writer.join()]
            .into_iter()
            .map(|r| r.unwrap_or_else(|_| failed()))
            .collect::<Result<Vec<()>>>();
        (checked, written)
    });
    let CheckedLog {
        count,
        prev,
        versions,
        lines,
        ended,
        last_line,
    } = checked?;
    written?;
    if count == 0 {
        return Err(StoreError::Import {
            line: 0,
            reason: "the export holds no events".into(),
        });
    }
    let reached = Digest {
        seq: count,
        hash: prev,
    };
    if let Some(noted) = &checks.head
        && *noted != reached
    {
        return Err(StoreError::Import {
            line: lines.line_of(count),
            reason: format!(
                "the export's events reach {reached}, not the head {noted} given by --digest"
            ),
        });
    }
    if !ended && checks.end_required && checks.head.is_none() {
        return Err(StoreError::Import {
            line: last_line + 1,
            reason: format!(
                "the export has no end line after its last event (line {}): it may have been cut short. An export ends with {{\"end\":{{\"events\":N,\"digest\":\"N:HASH\"}}}}; for one written by an earlier version without it, pass --digest SEQ:HASH of the head noted when it was written",
                lines.line_of(count)
            ),
        });
    }
    let mut lists: Vec<(String, Vec<u64>)> = versions.into_iter().collect();
    lists.sort_unstable();
    for chunk in lists.chunks(IMPORT_BATCH) {
        let mut b = sled::Batch::default();
        for (stream, seqs) in chunk {
            let packed: Vec<u8> = seqs.iter().flat_map(|s| s.to_be_bytes()).collect();
            b.insert(stream.as_bytes(), packed);
        }
        store.streams.apply_batch(b)?;
    }
    let head = Digest {
        seq: count,
        hash: if count == 0 { GENESIS_HASH } else { prev },
    };
    store
        .meta
        .insert(crate::META_HEAD, &head_bytes(&head)[..])?;
    store.sync()?;
    // The staging ledger is reopened by its final name; its tail must already agree.
    store.check_tail()?;
    (checks.log)(&store).map_err(|(seq, reason)| StoreError::Import {
        line: lines.line_of(seq),
        reason: crate::shorten(format!("event {seq}: {reason}")),
    })?;
    progress(count);
    Ok((
        Verified {
            events: count,
            head,
        },
        store,
    ))
}

/// What reading the lines found.
struct CheckedLog {
    count: u64,
    /// The last event's hash.
    prev: [u8; 32],
    /// Every stream's events.
    versions: HashMap<String, Vec<u64>>,
    lines: Lines,
    /// Whether the end line was read (and agreed with the events).
    ended: bool,
    /// The number of the last line read.
    last_line: u64,
}

/// Where each event stood in the export: its sequence, plus the blank lines before it.
#[derive(Default)]
struct Lines {
    /// (first sequence, lines more than sequences from it on), when that changes.
    offsets: Vec<(u64, u64)>,
}

impl Lines {
    fn line_of(&self, seq: u64) -> u64 {
        let k = self.offsets.partition_point(|(s, _)| *s <= seq);
        seq + k.checked_sub(1).map_or(0, |k| self.offsets[k].1)
    }
}

/// Parse and check every line, sending full batches to the writer; returns the count, the
/// last hash and every stream's version.
fn check_lines(
    input: &mut dyn BufRead,
    send: &mut dyn FnMut(Checked) -> bool,
    progress: &mut dyn FnMut(u64),
    check: EventCheck<'_>,
    now_us: i64,
) -> Result<CheckedLog> {
    let mut prev = GENESIS_HASH;
    let mut last_at = i64::MIN;
    let mut versions: HashMap<String, Vec<u64>> = HashMap::new();
    let mut ids: HashSet<uuid::Uuid> = HashSet::new();
    let fresh = || Checked {
        log: sled::Batch::default(),
        ids: Vec::with_capacity(IMPORT_BATCH),
        count: 0,
    };
    let mut batch = fresh();
    let mut count = 0u64;
    let mut line_no = 0u64;
    let mut lines = Lines::default();
    let mut buf = String::new();
    let mut ended = false;
    loop {
        buf.clear();
        let n = match (&mut *input).take(MAX_LINE_BYTES + 1).read_line(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(StoreError::Import {
                    line: line_no + 1,
                    reason: "the line is not UTF-8 text".into(),
                });
            }
            Err(e) => return Err(StoreError::io("reading the export")(e)),
        };
        if n == 0 {
            break;
        }
        line_no += 1;
        if n as u64 > MAX_LINE_BYTES {
            return Err(StoreError::Import {
                line: line_no,
                reason: format!("the line is over the limit of {MAX_LINE_BYTES} bytes"),
            });
        }
        // (a byte-order mark an editor put before the first line is not part of it)
        if line_no == 1 && buf.starts_with('\u{feff}') {
            buf.drain(..'\u{feff}'.len_utf8());
        }
        if buf.trim().is_empty() {
            continue;
        }
        let refuse = |reason: String| StoreError::Import {
            line: line_no,
            reason: crate::shorten(reason),
        };
        if ended {
            return Err(refuse(
                "a line after the end line: the export ends there".into(),
            ));
        }
        if buf.starts_with(END_PREFIX) {
            let line: EndLine = serde_json::from_str(&buf)
                .map_err(|e| refuse(format!("not a valid end line: {e}")))?;
            let reached = Digest {
                seq: count,
                hash: prev,
            };
            if line.end.events != count || line.end.digest != reached.to_string() {
                return Err(refuse(format!(
                    "the end line says {} events reaching {}, but the lines before it hold {count} reaching {reached}",
                    line.end.events,
                    crate::shorten(line.end.digest)
                )));
            }
            ended = true;
            continue;
        }
        let line: ImportLine = serde_json::from_str(&buf)
            .map_err(|e| refuse(format!("not a valid export line: {e}")))?;
        let (env, raw) = line.checked().map_err(refuse)?;
        // What import puts in place must be what an append would have accepted, and what
        // the layers above can read.
        env.check_stored_limits().map_err(refuse)?;
        crate::check_stream_id(&env.stream).map_err(|e| refuse(e.to_string()))?;
        check(&env, line.event.as_ref()).map_err(refuse)?;
        let expected = count + 1;
        if env.seq != expected {
            return Err(refuse(format!(
                "sequence {} where {expected} was expected (a line is missing, repeated or out of order)",
                env.seq
            )));
        }
        if env.prev_hash != prev {
            return Err(refuse(
                "previous-hash link to the line before is broken".into(),
            ));
        }
        if env.recorded_at_us < last_at {
            return Err(refuse("recorded_at goes backwards".into()));
        }
        if env.recorded_at_us > now_us.saturating_add(crate::MAX_AHEAD_US) {
            return Err(refuse(format!(
                "recorded_at {} is more than a day after this machine's clock: no ledger can have recorded it yet",
                env.recorded_at_us
            )));
        }
        if line_no - env.seq != lines.offsets.last().map_or(0, |o| o.1) {
            lines.offsets.push((env.seq, line_no - env.seq));
        }
        let v = match versions.get_mut(env.stream.as_str()) {
            Some(v) => v,
            None => versions.entry(env.stream.clone()).or_default(),
        };
        let next = v.len() as u64 + 1;
        if env.stream_version != next {
            return Err(refuse(format!(
                "stream {} jumps to version {} (expected {next})",
                env.stream, env.stream_version
            )));
        }
        v.push(env.seq);
        if !ids.insert(env.event_id) {
            return Err(refuse(format!("event id {} appears twice", env.event_id)));
        }
        batch.log.insert(&seq_key(env.seq), raw);
        batch.ids.push((*env.event_id.as_bytes(), env.seq));
        prev = env.hash;
        last_at = env.recorded_at_us;
        count += 1;
        batch.count += 1;
        if batch.count as usize == IMPORT_BATCH {
            if !send(std::mem::replace(&mut batch, fresh())) {
                // the writer stopped on an error; it reports it
                break;
            }
            progress(count);
        }
    }
    if batch.count > 0 {
        send(batch);
    }
    progress(count);
    Ok(CheckedLog {
        count,
        prev,
        versions,
        lines,
        ended,
        last_line: line_no,
    })
}
