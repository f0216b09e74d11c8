//! Snapshots: folded states of the layers above, kept as files beside sled's — a cache
//! outside the chain, and therefore trusted for nothing.
//!
//! A file `snapshots/<seq, 20 digits>.<tag>.bin` is
//! `MAGIC ‖ seq u64 LE ‖ chain hash[32] ‖ tag length u8 ‖ tag ‖ payload length u64 LE ‖
//! payload ‖ SHA-256 of everything before it`. It is handed out only when the magic, the
//! name, the tag, the length and the checksum agree and the chain hash is the hash the log
//! has at `seq` — so a snapshot can only shortcut a fold of the very log it was folded from.
//! Each written snapshot's length and checksum are also registered in sled's `meta` tree
//! (`snap/<seq>`), and a file is read only if it is a regular file of the registered length
//! with the registered checksum: a file planted in `snapshots/` — forged, copied from
//! another ledger, a FIFO, a symlink, 1 GiB of zeros — is skipped with one warning and
//! costs nothing. Anything else is ignored the same way (a lost shortcut).
//!
//! A checksum and a registry are not a signature: someone who can write sled's trees as
//! well can still plant a state, and the chain cannot vouch for a state it never saw. That
//! is why `verify` folds from the first event without snapshots and compares every
//! snapshot with the fold; its "ok" is the guarantee (docs/DECISIONS.md).

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tracing::warn;

use crate::durability::sync_dir;
use crate::{Envelope, Result, Store, StoreError};

const MAGIC: &[u8; 8] = b"EDUSNAP\x01";
/// Largest snapshot file read; a bigger one is ignored unread.
pub const MAX_SNAPSHOT_BYTES: u64 = 1 << 30;

/// A snapshot that passed every check: its payload is the caller's encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The sequence it was folded at.
    pub seq: u64,
    /// The folded state's bytes.
    pub payload: Vec<u8>,
    /// The file it came from.
    pub path: PathBuf,
}

/// The bytes of a snapshot file for `payload` folded at `seq`, where the log's hash is
/// `chain_hash` (public for tests and fuzzing seeds; [`Store::put_snapshot`] writes them).
pub fn encode_file(seq: u64, chain_hash: &[u8; 32], tag: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(chain_hash);
    out.push(tag.len() as u8);
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    let sum: [u8; 32] = Sha256::digest(&out).into();
    out.extend_from_slice(&sum);
    out
}

/// A snapshot file's parts: the sequence, the chain hash there, the tag and the payload.
pub type SnapshotParts<'a> = (u64, [u8; 32], &'a str, &'a [u8]);

/// One snapshot file as `verify` sees it: its sequence, its path, and the snapshot or why
/// it is ignored.
pub type CheckedFile = (u64, PathBuf, std::result::Result<Snapshot, String>);

fn registry_key(seq: u64) -> Vec<u8> {
    let mut k = b"snap/".to_vec();
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// `length u64 BE ‖ SHA-256` of the file as written.
fn registry_value(bytes: &[u8]) -> Vec<u8> {
    let mut v = (bytes.len() as u64).to_be_bytes().to_vec();
    v.extend_from_slice(&Sha256::digest(bytes));
    v
}

fn parse_registry(v: &[u8]) -> Option<(u64, [u8; 32])> {
    if v.len() != 40 {
        return None;
    }
    let len = u64::from_be_bytes(v[..8].try_into().ok()?);
    let mut sum = [0u8; 32];
    sum.copy_from_slice(&v[8..]);
    Some((len, sum))
}

/// Parse a snapshot file's bytes, or say why not.
pub fn parse_file(bytes: &[u8]) -> std::result::Result<SnapshotParts<'_>, String> {
    parse_frame(bytes, true)
}

/// The frame's parts; its trailing checksum is checked only with `check_sum` (a file whose
/// whole bytes already matched the registered SHA-256 need not be hashed twice).
fn parse_frame(bytes: &[u8], check_sum: bool) -> std::result::Result<SnapshotParts<'_>, String> {
    let fixed = MAGIC.len() + 8 + 32 + 1;
    if bytes.len() < fixed + 8 + 32 {
        return Err(format!("{} bytes is too short for a snapshot", bytes.len()));
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if check_sum && Sha256::digest(body).as_slice() != sum {
        return Err("its checksum does not match its bytes".into());
    }
    if &body[..8] != MAGIC {
        return Err("it does not start with the snapshot marker".into());
    }
    let seq = u64::from_le_bytes(body[8..16].try_into().map_err(|_| "short")?);
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&body[16..48]);
    let tag_len = body[48] as usize;
    let rest = &body[49..];
    if rest.len() < tag_len + 8 {
        return Err("its tag runs past its end".into());
    }
    let tag = std::str::from_utf8(&rest[..tag_len]).map_err(|_| "its tag is not text")?;
    let len = u64::from_le_bytes(rest[tag_len..tag_len + 8].try_into().map_err(|_| "short")?);
    let payload = &rest[tag_len + 8..];
    if payload.len() as u64 != len {
        return Err(format!(
            "it says its state is {len} bytes but holds {}",
            payload.len()
        ));
    }
    Ok((seq, hash, tag, payload))
}

impl Store {
    fn snapshot_dir(&self) -> PathBuf {
        self.path.join("snapshots")
    }

    /// Snapshot files: `snapshots/<seq, 20 digits>.<tag>.bin`, oldest first. The folder is a
    /// cache: if it cannot be read (or is not a folder), there are no snapshots.
    fn snapshot_files(&self) -> Result<Vec<(u64, String, PathBuf)>> {
        let dir = self.snapshot_dir();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => {
                warn!("ignoring the snapshot folder {}: {e}", dir.display());
                return Ok(vec![]);
            }
        };
        let mut out = vec![];
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(".bin") else {
                continue;
            };
            let Some((seq, tag)) = stem.split_once('.') else {
                continue;
            };
            if let Ok(seq) = seq.parse::<u64>() {
                out.push((seq, tag.to_owned(), entry.path()));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Temporary snapshot files left by a crash mid-write.
    pub fn snapshot_leftovers(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.snapshot_dir()) else {
            return vec![];
        };
        let mut out: Vec<PathBuf> = entries
            .flatten()
            .filter(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                n.starts_with('.') && n.ends_with(".tmp")
            })
            .map(|e| e.path())
            .collect();
        out.sort();
        out
    }

    /// Store a snapshot of a folded state at `seq`, tagged with its format. Written to a
    /// temporary name, fsynced, renamed, and the directory fsynced. Leftover temporary files
    /// of an earlier crash are removed first.
    pub fn put_snapshot(&self, seq: u64, tag: &str, payload: &[u8]) -> Result<()> {
        if tag.is_empty()
            || tag.len() > 64
            || !tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(StoreError::InvalidAppend(format!(
                "snapshot tag {tag:?} must be 1 to 64 ASCII letters, digits or '-'"
            )));
        }
        // a file the reader would refuse to read is not written
        if payload.len() as u64 + 256 > MAX_SNAPSHOT_BYTES {
            return Err(StoreError::InvalidAppend(format!(
                "a snapshot of {} bytes is over the limit of {MAX_SNAPSHOT_BYTES}",
                payload.len()
            )));
        }
        let env = self.get(seq)?.ok_or_else(|| StoreError::Corrupt {
            seq,
            what: "a snapshot was asked for at a sequence the log does not have".into(),
        })?;
        self.discard_snapshots_except(tag)?;
        for stale in self.snapshot_leftovers() {
            let _ = std::fs::remove_file(stale);
        }
        let dir = self.snapshot_dir();
        if !dir.exists() {
            std::fs::create_dir_all(&dir)
                .map_err(StoreError::io(format!("creating {}", dir.display())))?;
            sync_dir(&self.path)?;
        }
        let path = dir.join(format!("{seq:020}.{tag}.bin"));
        let tmp = dir.join(format!(".{seq:020}.{tag}.tmp"));
        let bytes = encode_file(seq, &env.hash, tag, payload);
        {
            let mut f = std::fs::File::create(&tmp)
                .map_err(StoreError::io(format!("creating {}", tmp.display())))?;
            f.write_all(&bytes)
                .and_then(|_| f.sync_all())
                .map_err(StoreError::io(format!("writing {}", tmp.display())))?;
        }
        std::fs::rename(&tmp, &path)
            .map_err(StoreError::io(format!("renaming {}", tmp.display())))?;
        sync_dir(&dir)?;
        // Registered only once the file is in place: a crash in between leaves a file that
        // is ignored, never a registration without its file.
        self.meta
            .insert(registry_key(seq), registry_value(&bytes))?;
        self.sync()
    }

    /// Read and check one snapshot file against the registry and the log.
    fn checked_snapshot(
        &self,
        seq: u64,
        tag: &str,
        path: &Path,
    ) -> std::result::Result<Snapshot, String> {
        let registered = self
            .meta
            .get(registry_key(seq))
            .map_err(|e| e.to_string())?
            .and_then(|v| parse_registry(&v))
            .ok_or("this ledger never wrote a snapshot there")?;
        // Not a symlink, FIFO or device: only a regular file of the registered length is read.
        let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot read it: {e}"))?;
        if !meta.file_type().is_file() {
            return Err("it is not a regular file".into());
        }
        let len = meta.len();
        if len != registered.0 || len > MAX_SNAPSHOT_BYTES {
            return Err(format!(
                "it is {len} bytes, not the {} bytes this ledger wrote",
                registered.0
            ));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        std::fs::File::open(path)
            .and_then(|f| f.take(len + 1).read_to_end(&mut bytes))
            .map_err(|e| format!("cannot read it: {e}"))?;
        if bytes.len() as u64 != len || Sha256::digest(&bytes).as_slice() != registered.1 {
            return Err("it is not the file this ledger wrote there (its checksum differs)".into());
        }
        // the registered checksum covered every byte: the frame's own is not hashed again
        let (s, hash, t, payload) = parse_frame(&bytes, false)?;
        if s != seq || t != tag {
            return Err(format!(
                "it says it was folded at {s} with format {t:?}, but its name says {seq} and {tag:?}"
            ));
        }
        let env: Envelope = match self.get(seq) {
            Ok(Some(env)) => env,
            Ok(None) => return Err(format!("the log has no event {seq}")),
            Err(e) => return Err(e.to_string()),
        };
        if env.hash != hash {
            return Err(format!(
                "it was folded from a different log (its hash at {seq} is not the log's)"
            ));
        }
        Ok(Snapshot {
            seq,
            payload: payload.to_vec(),
            path: path.to_path_buf(),
        })
    }

    /// The latest snapshot with tag `tag` at or before `seq` that passes every check.
    /// Each one that does not is skipped with a warning.
    pub fn snapshot_at_or_before(&self, seq: u64, tag: &str) -> Result<Option<Snapshot>> {
        self.latest_snapshot(seq, tag, &|_| true)
    }

    /// The latest snapshot with tag `tag` at or before `seq` whose sequence `usable` accepts
    /// and that passes every check. Files are chosen by name first, so a file that could not
    /// be used anyway is never read.
    pub fn latest_snapshot(
        &self,
        seq: u64,
        tag: &str,
        usable: &dyn Fn(u64) -> bool,
    ) -> Result<Option<Snapshot>> {
        for (s, t, path) in self.snapshot_files()?.into_iter().rev() {
            if s <= seq && t == tag && usable(s) {
                match self.checked_snapshot(s, &t, &path) {
                    Ok(snap) => return Ok(Some(snap)),
                    Err(why) => warn!("ignoring snapshot {}: {why}", path.display()),
                }
            }
        }
        Ok(None)
    }

    /// Every snapshot file with tag `tag`, each checked: for `verify`.
    pub fn snapshots_checked(&self, tag: &str) -> Result<Vec<CheckedFile>> {
        Ok(self
            .snapshot_files()?
            .into_iter()
            .filter(|(_, t, _)| t == tag)
            .map(|(s, t, path)| {
                let checked = self.checked_snapshot(s, &t, &path);
                (s, path, checked)
            })
            .collect())
    }

    /// Remove every snapshot file whose tag is not `keep` (a projection format change).
    /// Only regular files are removed; anything else is left alone with a warning.
    pub fn discard_snapshots_except(&self, keep: &str) -> Result<usize> {
        let mut removed = 0;
        for (seq, tag, path) in self.snapshot_files()? {
            if tag != keep {
                match self.remove_snapshot(seq, &path) {
                    Ok(()) => removed += 1,
                    Err(e) => warn!("leaving {}: {e}", path.display()),
                }
            }
        }
        Ok(removed)
    }

    /// Remove one snapshot file (a regular file only) and its registration.
    pub fn remove_snapshot(&self, seq: u64, path: &Path) -> Result<()> {
        let is_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file());
        if !is_file {
            return Err(StoreError::InvalidAppend(format!(
                "{} is not a regular file; it was left alone",
                path.display()
            )));
        }
        self.meta.remove(registry_key(seq))?;
        std::fs::remove_file(path).map_err(StoreError::io(format!("removing {}", path.display())))
    }

    /// Sequences that have snapshots.
    pub fn snapshot_seqs(&self) -> Result<Vec<u64>> {
        Ok(self
            .snapshot_files()?
            .into_iter()
            .map(|(s, _, _)| s)
            .collect())
    }
}
