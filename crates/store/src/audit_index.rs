//! The audit index: every entity an event touches → the event's sequence, so an entity's
//! audit trail is read without scanning the log; and the chain check of a short stretch of
//! the log between two hashes vouched for elsewhere, so an event far below the head is
//! vouched for without re-hashing everything after it.
//!
//! The store does not know what an event touches; the ledger says, with opaque entity keys
//! (stream ids). The index is derived from the log: it is written without an fsync, and the
//! last sequence indexed sits beside the entries, in the same atomic batch, so a crash leaves
//! at most an unindexed tail that the next reader indexes again. Nothing here is trusted by
//! itself: the ledger checks every entry it reads against the event it points at and the
//! count of an entity's events against its folded state, and `verify` checks the whole index.

use sled::Batch;

use crate::envelope::Envelope;
use crate::{Result, Store, StoreError, check_stream_id, parse_u64, seq_key};

/// Key of the last sequence indexed (an entity key is never empty: it starts with a length).
const UPTO_KEY: &[u8] = b"";

/// `len(entity) as u16 BE ‖ entity`: every key of one entity starts with it, and no entity's
/// prefix is a prefix of another's.
fn entity_prefix(entity: &str) -> Result<Vec<u8>> {
    check_stream_id(entity)?;
    let mut key = Vec::with_capacity(2 + entity.len() + 8);
    key.extend_from_slice(&(entity.len() as u16).to_be_bytes());
    key.extend_from_slice(entity.as_bytes());
    Ok(key)
}

fn entry_key(entity: &str, seq: u64) -> Result<Vec<u8>> {
    let mut key = entity_prefix(entity)?;
    key.extend_from_slice(&seq_key(seq));
    Ok(key)
}

fn corrupt(what: String) -> StoreError {
    StoreError::Corrupt { seq: 0, what }
}

impl Store {
    /// The last sequence the audit index covers (0: none).
    pub fn audit_indexed_upto(&self) -> Result<u64> {
        match self.audit.get(UPTO_KEY)? {
            None => Ok(0),
            Some(v) => parse_u64(&v)
                .ok_or_else(|| corrupt("the audit index's last sequence is unreadable".into())),
        }
    }

    /// Add entries `(entity, seq)` and move the covered sequence to `upto`, atomically.
    pub fn audit_index(&self, entries: &[(String, u64)], upto: u64) -> Result<()> {
        self.check_not_failed()?;
        let mut batch = Batch::default();
        for (entity, seq) in entries {
            batch.insert(entry_key(entity, *seq)?, &[]);
        }
        batch.insert(UPTO_KEY, &seq_key(upto));
        self.audit.apply_batch(batch)?;
        Ok(())
    }

    /// The sequences the index lists for `entity`, ascending.
    pub fn audit_seqs(&self, entity: &str) -> Result<Vec<u64>> {
        let prefix = entity_prefix(entity)?;
        let mut out = Vec::new();
        for item in self.audit.scan_prefix(&prefix) {
            let (key, _) = item?;
            let seq = key
                .get(prefix.len()..)
                .and_then(parse_u64)
                .ok_or_else(|| corrupt(format!("an audit index key of {entity} is malformed")))?;
            out.push(seq);
        }
        Ok(out)
    }

    /// Whether the index lists `seq` for `entity`.
    pub fn audit_contains(&self, entity: &str, seq: u64) -> Result<bool> {
        Ok(self.audit.contains_key(entry_key(entity, seq)?)?)
    }

    /// Every entry `(entity, seq)`, in key order.
    pub fn audit_entries(&self) -> impl Iterator<Item = Result<(String, u64)>> + '_ {
        self.audit
            .iter()
            .filter(|item| item.as_ref().map_or(true, |(k, _)| k.as_ref() != UPTO_KEY))
            .map(|item| {
                let (key, _) = item?;
                let malformed = || corrupt("an audit index key is malformed".into());
                let len = key
                    .get(..2)
                    .map(|b| u16::from_be_bytes([b[0], b[1]]) as usize)
                    .ok_or_else(malformed)?;
                let entity = key
                    .get(2..2 + len)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or_else(malformed)?;
                let seq = key
                    .get(2 + len..)
                    .and_then(parse_u64)
                    .ok_or_else(malformed)?;
                Ok((entity.to_owned(), seq))
            })
    }

    /// How many entries the index holds (its last-sequence record aside).
    pub fn audit_len(&self) -> Result<u64> {
        let mut n = 0u64;
        for item in self.audit.iter() {
            let (key, _) = item?;
            if key.as_ref() != UPTO_KEY {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Check the events `from..=to` against the chain between two hashes vouched for
    /// elsewhere: the first must follow `prev` (the chain hash at `from - 1`) and the walk
    /// must arrive at `end` (the chain hash at `to`). Then every byte of those events is the
    /// one the chain was built over.
    pub fn check_stretch(&self, from: u64, to: u64, prev: [u8; 32], end: [u8; 32]) -> Result<()> {
        let broken = |seq: u64, what: &str| StoreError::Corrupt {
            seq,
            what: format!("{what} (checking events {from} to {to} against the chain's marks)"),
        };
        let mut expected = from.max(1);
        let mut hash = prev;
        for item in self.log.range(seq_key(from.max(1))..=seq_key(to)) {
            let (key, raw) = item?;
            let seq = parse_u64(&key).unwrap_or(0);
            if seq != expected {
                return Err(broken(expected, &format!("sequence {expected} is missing")));
            }
            let (env, ok) = Envelope::decode_checked(&raw).map_err(|e| broken(seq, &e))?;
            if !ok || env.prev_hash != hash || env.seq != seq {
                return Err(broken(seq, "hash chain is broken"));
            }
            hash = env.hash;
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
