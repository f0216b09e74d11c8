//! The audit index: every entity an event touches → the event's sequence, so an entity's
//! audit trail is read without scanning the log; and the chain check of a short stretch of
//! the log between two hashes vouched for elsewhere, so an event far below the head is
//! vouched for without re-hashing everything after it.
//!
//! The store does not know what an event touches; the ledger says, with opaque entity keys
//! (stream ids). Each entity's sequences are packed, ascending, into chunks of at most
//! [`CHUNK`]: key `len(entity) as u16 BE ‖ entity ‖ chunk number as u32 BE`, value the
//! sequences as u64 BE. (One sled entry per event and entity made sled's files 2.4× larger
//! at Shanghai scale — 9 million entries — and every open three times slower.)
//!
//! The index is derived from the log: it is written without an fsync, and the last sequence
//! indexed sits beside the entries, in the same atomic batch, so a crash leaves at most an
//! unindexed tail that the next reader indexes again. Nothing here is trusted by itself: the
//! ledger checks every sequence it reads against the event it points at and the count of an
//! entity's events against its folded state, and `verify` checks the whole index.

use std::collections::BTreeMap;

use sled::Batch;

use crate::envelope::chain_hash;
use crate::{Result, Store, StoreError, check_stream_id, parse_u64, seq_key};

/// Key of the last sequence indexed and how the entries were derived (`upto` u64 BE ‖
/// `derivation` u32 BE); an entity key is never empty: it starts with a length.
const UPTO_KEY: &[u8] = b"";

/// Sequences per chunk: appending rewrites at most one chunk of 4 KiB.
pub const CHUNK: usize = 512;

/// `len(entity) as u16 BE ‖ entity`: every key of one entity starts with it, and no entity's
/// prefix is a prefix of another's.
fn entity_prefix(entity: &str) -> Result<Vec<u8>> {
    check_stream_id(entity)?;
    let mut key = Vec::with_capacity(2 + entity.len() + 4);
    key.extend_from_slice(&(entity.len() as u16).to_be_bytes());
    key.extend_from_slice(entity.as_bytes());
    Ok(key)
}

fn chunk_key(prefix: &[u8], chunk: u32) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&chunk.to_be_bytes());
    key
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { seq: 0, what }
}

/// A chunk's sequences; None if its length is not a whole number of sequences.
fn unpack(bytes: &[u8]) -> Option<Vec<u64>> {
    if !bytes.len().is_multiple_of(8) || bytes.len() > CHUNK * 8 {
        return None;
    }
    Some(bytes.chunks_exact(8).filter_map(parse_u64).collect())
}

/// Split a key into its entity and chunk number.
fn parse_key(key: &[u8]) -> Option<(String, u32)> {
    let len = u16::from_be_bytes([*key.first()?, *key.get(1)?]) as usize;
    let entity = std::str::from_utf8(key.get(2..2 + len)?).ok()?;
    let chunk = u32::from_be_bytes(key.get(2 + len..)?.try_into().ok()?);
    Some((entity.to_owned(), chunk))
}

impl Store {
    /// The audit tree, opened (and created, the first time) on first use.
    fn audit_tree(&self) -> Result<&sled::Tree> {
        if let Some(t) = self.audit.get() {
            return Ok(t);
        }
        let t = self.db.open_tree("audit")?;
        Ok(self.audit.get_or_init(|| t))
    }

    /// The last sequence the audit index covers (0: none), if its entries were derived the
    /// way `derivation` names (the ledger's version of "what an event touches"); None if they
    /// were derived some other way and the index must be built again.
    pub fn audit_indexed_upto(&self, derivation: u32) -> Result<Option<u64>> {
        match self.audit_tree()?.get(UPTO_KEY)? {
            // no record: a new index, or entries left by an interrupted clear
            None if self.audit_tree()?.iter().next().is_none() => Ok(Some(0)),
            None => Ok(None),
            Some(v) if v.len() == 12 => {
                let upto = parse_u64(&v[..8]).unwrap_or(0);
                let by = u32::from_be_bytes([v[8], v[9], v[10], v[11]]);
                Ok((by == derivation).then_some(upto))
            }
            Some(_) => Ok(None),
        }
    }

    /// Remove every entry (to build the index again). The last-sequence record is made
    /// unreadable first and removed last, so a clear interrupted half way is seen as "built
    /// some other way" by the next reader, which clears again (sled's own `clear` removes the
    /// smallest key, that record, first).
    pub fn audit_clear(&self) -> Result<()> {
        self.check_not_failed()?;
        self.audit_tree()?.insert(UPTO_KEY, &[0xff][..])?;
        for key in self.audit_tree()?.iter().keys() {
            let key = key?;
            if key.as_ref() != UPTO_KEY {
                self.audit_tree()?.remove(key)?;
            }
        }
        self.audit_tree()?.remove(UPTO_KEY)?;
        Ok(())
    }

    /// Add entries `(entity, seq)` — each entity's sequences ascending and above any it has
    /// — and move the covered sequence to `upto`, atomically.
    pub fn audit_index(&self, entries: &[(String, u64)], upto: u64, derivation: u32) -> Result<()> {
        self.check_not_failed()?;
        let mut by_entity: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
        for (entity, seq) in entries {
            by_entity.entry(entity.as_str()).or_default().push(*seq);
        }
        let mut batch = Batch::default();
        for (entity, seqs) in by_entity {
            let prefix = entity_prefix(entity)?;
            // the entity's last chunk, to fill before starting another
            let (mut chunk, mut packed) = match self.audit_tree()?.scan_prefix(&prefix).next_back()
            {
                None => (0u32, Vec::new()),
                Some(item) => {
                    let (key, value) = item?;
                    let chunk = key
                        .get(prefix.len()..)
                        .and_then(|b| b.try_into().ok())
                        .map(u32::from_be_bytes)
                        .ok_or_else(|| {
                            corrupt(format!("an audit index key of {entity} is malformed"))
                        })?;
                    (chunk, value.to_vec())
                }
            };
            // an index caught up again over events it has (a rolled-back last sequence)
            // gets each sequence once
            let mut last = packed
                .get(packed.len().saturating_sub(8)..)
                .and_then(parse_u64)
                .unwrap_or(0);
            for seq in seqs {
                if seq <= last {
                    continue;
                }
                last = seq;
                if packed.len() == CHUNK * 8 {
                    batch.insert(chunk_key(&prefix, chunk), std::mem::take(&mut packed));
                    chunk = chunk.checked_add(1).ok_or_else(|| {
                        corrupt(format!("the audit index of {entity} has too many chunks"))
                    })?;
                }
                packed.extend_from_slice(&seq_key(seq));
            }
            batch.insert(chunk_key(&prefix, chunk), packed);
        }
        let mut mark = seq_key(upto).to_vec();
        mark.extend_from_slice(&derivation.to_be_bytes());
        batch.insert(UPTO_KEY, mark);
        self.audit_tree()?.apply_batch(batch)?;
        Ok(())
    }

    /// The sequences the index lists for `entity`, as stored (the ledger checks them).
    pub fn audit_seqs(&self, entity: &str) -> Result<Vec<u64>> {
        let prefix = entity_prefix(entity)?;
        let mut out = Vec::new();
        for item in self.audit_tree()?.scan_prefix(&prefix) {
            let (_, value) = item?;
            out.extend(unpack(&value).ok_or_else(|| {
                corrupt(format!("an audit index entry of {entity} is malformed"))
            })?);
        }
        Ok(out)
    }

    /// Every entity in the index with its sequences as stored, in entity order.
    pub fn audit_entities(&self) -> Result<impl Iterator<Item = Result<(String, Vec<u64>)>> + '_> {
        let mut items = self
            .audit_tree()?
            .iter()
            .filter(|item| item.as_ref().map_or(true, |(k, _)| k.as_ref() != UPTO_KEY))
            .peekable();
        Ok(std::iter::from_fn(move || {
            let (key, value) = match items.next()? {
                Ok(kv) => kv,
                Err(e) => return Some(Err(e.into())),
            };
            let malformed = || corrupt("an audit index entry is malformed".into());
            let Some(((entity, _), mut seqs)) = parse_key(&key).zip(unpack(&value)) else {
                return Some(Err(malformed()));
            };
            // the entity's further chunks
            while let Some(Ok((next, _))) = items.peek() {
                if parse_key(next).is_none_or(|(e, _)| e != entity) {
                    break;
                }
                match items.next() {
                    Some(Ok((_, value))) => match unpack(&value) {
                        Some(more) => seqs.extend(more),
                        None => return Some(Err(malformed())),
                    },
                    Some(Err(e)) => return Some(Err(e.into())),
                    None => break,
                }
            }
            Some(Ok((entity, seqs)))
        }))
    }

    /// Check the events `from..=to` against the chain between two hashes vouched for
    /// elsewhere: the first must follow `prev` (the chain hash at `from - 1`) and the walk
    /// must arrive at `end` (the chain hash at `to`). Then every byte of those events is the
    /// one the chain was built over. Only hashes are compared: an envelope's last 32 bytes
    /// are its hash and the 32 before them its `prev_hash` (the body's last field), so
    /// nothing needs decoding; whoever shows an event decodes it afterwards.
    pub fn check_stretch(&self, from: u64, to: u64, prev: [u8; 32], end: [u8; 32]) -> Result<()> {
        let broken = |seq: u64, what: &str| StoreError::Corrupt {
            seq,
            what: format!("{what} (checking events {from} to {to} against the chain's marks)"),
        };
        let mut expected = from.max(1);
        let mut hash = prev;
        // half-open to the next sequence's key, so nothing planted between two stretches
        // (a key longer than eight bytes) falls outside every check
        for item in self
            .log
            .range(seq_key(from.max(1))..seq_key(to.saturating_add(1)))
        {
            let (key, raw) = item?;
            let Some(seq) = parse_u64(&key) else {
                return Err(broken(
                    expected,
                    &format!(
                        "the log holds a key that is not a sequence ({} bytes)",
                        key.len()
                    ),
                ));
            };
            if seq != expected {
                return Err(broken(expected, &format!("sequence {expected} is missing")));
            }
            let n = raw.len();
            if n < 64
                || raw[n - 64..n - 32] != hash
                || chain_hash(&hash, &raw[..n - 32]) != raw[n - 32..]
            {
                return Err(broken(seq, "hash chain is broken"));
            }
            hash.copy_from_slice(&raw[n - 32..]);
            expected += 1;
        }
        if expected != to + 1 {
            return Err(broken(expected, &format!("sequence {expected} is missing")));
        }
        if hash != end {
            return Err(broken(to, "the events do not hash to the chain's mark"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entity_with_more_than_a_chunk_reads_back_whole_in_order_each_sequence_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("l")).unwrap();
        let n = 3 * CHUNK as u64 + 17;
        for from in (1..=n).step_by(100) {
            let to = (from + 99).min(n);
            let entries: Vec<(String, u64)> = (from..=to)
                .flat_map(|s| {
                    [
                        ("kindergarten:1".to_owned(), s),
                        (format!("teacher:T{s}"), s),
                    ]
                })
                .collect();
            store.audit_index(&entries, to, 1).unwrap();
        }
        // a rolled-back last sequence: the same events indexed again change nothing
        let again: Vec<(String, u64)> = (n - 250..=n)
            .map(|s| ("kindergarten:1".to_owned(), s))
            .collect();
        store.audit_index(&again, n, 1).unwrap();
        assert_eq!(
            store.audit_seqs("kindergarten:1").unwrap(),
            (1..=n).collect::<Vec<_>>()
        );
        assert_eq!(store.audit_seqs("teacher:T5").unwrap(), vec![5]);
        assert_eq!(store.audit_seqs("teacher:T").unwrap(), Vec::<u64>::new());
        assert_eq!(store.audit_indexed_upto(1).unwrap(), Some(n));
        assert_eq!(store.audit_indexed_upto(2).unwrap(), None);
        let all: Vec<(String, Vec<u64>)> = store
            .audit_entities()
            .unwrap()
            .map(|e| e.unwrap())
            .collect();
        assert_eq!(all.len(), 1 + n as usize);
        let kg = all.iter().find(|(e, _)| e == "kindergarten:1").unwrap();
        assert_eq!(kg.1, (1..=n).collect::<Vec<_>>());
        // four chunks, the first three full
        let prefix = entity_prefix("kindergarten:1").unwrap();
        let sizes: Vec<usize> = store
            .audit_tree()
            .unwrap()
            .scan_prefix(&prefix)
            .map(|i| i.unwrap().1.len() / 8)
            .collect();
        assert_eq!(sizes, vec![CHUNK, CHUNK, CHUNK, 17]);
    }
}

#[cfg(test)]
mod neighbours {
    use super::*;

    #[test]
    fn appending_to_an_entity_never_reads_its_neighbours_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("l")).unwrap();
        let e = |s: &str, q: u64| (s.to_owned(), q);
        store
            .audit_index(
                &[
                    e("teacher:S000001", 1),
                    e("teacher:S000002", 2),
                    e("teacher:S000010", 3),
                ],
                3,
                1,
            )
            .unwrap();
        store
            .audit_index(&[e("teacher:S000001", 4), e("teacher:S000002", 5)], 5, 1)
            .unwrap();
        assert_eq!(store.audit_seqs("teacher:S000001").unwrap(), vec![1, 4]);
        assert_eq!(store.audit_seqs("teacher:S000002").unwrap(), vec![2, 5]);
        store.audit_clear().unwrap();
        store
            .audit_index(&[e("teacher:S000001", 1), e("teacher:S000002", 2)], 2, 1)
            .unwrap();
        assert_eq!(store.audit_seqs("teacher:S000001").unwrap(), vec![1]);
    }
}
