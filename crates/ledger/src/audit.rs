//! Audit trails without a scan, and events far below the head vouched for without re-hashing
//! everything after them.
//!
//! The store keeps an index entity → sequences (`eduledger_store`'s `audit_index`), written
//! after each append and caught up by the next reader after a crash. Nothing in it is taken
//! on trust: an entity's trail must list exactly as many events as the folded state counted
//! for it (`LogBook::touched`), every event listed must touch the entity, and every event
//! shown is vouched for by the chain — re-hashed across its stretch of the log between two
//! chain marks the state keeps (`LogBook::marks`, every `MARK_EVERY` events). `verify`
//! checks every entry of the index against a fold from the first event.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::Ordering;

use eduledger_domain::state::MARK_EVERY;
use eduledger_domain::{EntityRef, Event};
use eduledger_store::envelope::GENESIS_HASH;
use eduledger_store::{Store, StoreError};
use tracing::{info_span, warn};

use crate::{AuditEntry, Ledger, Result, decode, effective_overrides, entry};

/// How this build derives index entries from events (`index_entries`, `Event::touched` and
/// the upcasters): bump it whenever what an event touches changes, and every ledger's index
/// is built again on its next trail instead of refusing it as damaged.
const DERIVATION: u32 = 1;

/// Events indexed per batch when the index catches up with the log.
const CATCH_UP_BATCH: usize = 8192;

/// The index entries of one event: each entity it touches, once.
pub(crate) fn index_entries(seq: u64, event: &Event, out: &mut Vec<(String, u64)>) {
    if matches!(event, Event::EventCorrected(_) | Event::EventRetracted(_)) {
        // found through the state's overrides, which the fold vouches for
        return;
    }
    out.extend(event.touched().into_iter().map(|e| (e.stream(), seq)));
}

/// Bring the index up to the log's head (after a crash, an import or an older version).
/// True when it had to be built again from the first event (derived another way, or left
/// by an interrupted rebuild).
pub(crate) fn catch_up_index(store: &Store) -> Result<bool> {
    let head = store.head()?.seq;
    let (upto, rebuilt) = match store.audit_indexed_upto(DERIVATION)? {
        Some(upto) => (upto, false),
        None => {
            store.audit_clear()?;
            (0, true)
        }
    };
    if upto > head {
        return Err(corrupt(
            upto,
            format!("the audit index says it covers events to {upto}, but the log ends at {head}"),
        ));
    }
    if upto == head {
        return Ok(rebuilt);
    }
    let span = info_span!("audit_index_catch_up", from = upto + 1, to = head);
    let _enter = span.enter();
    let mut entries = Vec::new();
    let mut last = upto;
    for env in store.iter_from(upto + 1) {
        let env = env?;
        if env.seq > head {
            break;
        }
        index_entries(env.seq, &decode(&env)?, &mut entries);
        last = env.seq;
        if entries.len() >= CATCH_UP_BATCH {
            store.audit_index(&std::mem::take(&mut entries), last, DERIVATION)?;
        }
    }
    store.audit_index(&entries, last, DERIVATION)?;
    Ok(rebuilt)
}

fn corrupt(seq: u64, what: String) -> crate::LedgerError {
    StoreError::Corrupt { seq, what }.into()
}

impl Ledger {
    /// Index the events just recorded after `head_before` — unless the index is behind
    /// anyway (then the next reader catches it up from the log).
    pub(crate) fn index_recorded(&self, head_before: u64, recorded: &[(u64, Event)]) {
        let _one_at_a_time = self.indexing.lock().unwrap_or_else(|p| p.into_inner());
        let store = &self.store;
        match store.audit_indexed_upto(DERIVATION) {
            Ok(Some(upto)) if upto == head_before => {
                let mut entries = Vec::new();
                for (seq, event) in recorded {
                    index_entries(*seq, event, &mut entries);
                }
                let last = recorded.last().map_or(head_before, |(s, _)| *s);
                if let Err(e) = store.audit_index(&entries, last, DERIVATION) {
                    warn!("the audit index was not updated ({e}); the next read catches it up");
                }
            }
            _ => {}
        }
    }

    /// Bring the index up to the log's head.
    pub(crate) fn catch_up_index(&self) -> Result<()> {
        let _one_at_a_time = self.indexing.lock().unwrap_or_else(|p| p.into_inner());
        catch_up_index(&self.store).map(|_| ())
    }

    /// Every event that touched `entity`, in order, as known at `cut`, with corrections linked.
    pub fn audit(&self, entity: &EntityRef, cut: Option<u64>) -> Result<Vec<AuditEntry>> {
        self.audit_within(entity, cut, usize::MAX)
    }

    /// [`Ledger::audit`], refused once its events carry more than `max_bytes` ([`Budget`]).
    pub fn audit_within(
        &self,
        entity: &EntityRef,
        cut: Option<u64>,
        max_bytes: usize,
    ) -> Result<Vec<AuditEntry>> {
        let mut budget = crate::Budget::new(
            max_bytes,
            "read this trail with the command line, or the log page by page",
        );
        let span = info_span!("audit");
        let _enter = span.enter();
        let cut = cut.unwrap_or(u64::MAX);
        let known = self.state.head();
        self.catch_up_index()?;
        let key = entity.stream();
        let stored = self.store.audit_seqs(&key)?;
        if stored.windows(2).any(|w| w[0] >= w[1]) {
            return Err(corrupt(
                stored.first().copied().unwrap_or(0),
                format!("the audit index of {key} is out of order"),
            ));
        }
        let listed: Vec<u64> = stored.into_iter().filter(|s| *s <= known).collect();
        let counted = self.state.touched_count(entity) as usize;
        if listed.len() != counted {
            return Err(corrupt(
                listed.first().copied().unwrap_or(0),
                format!(
                    "the audit index lists {} events for {key}, but the log has {counted}; `eduledger verify` checks the whole index",
                    listed.len()
                ),
            ));
        }
        // Corrections and retractions of those events, and corrections whose replacement
        // touches the entity, come from the folded state.
        let touched: HashSet<u64> = listed.iter().copied().collect();
        let mut seqs: BTreeSet<u64> = listed.iter().copied().collect();
        for (by, o) in self.state.overrides().range(..=known) {
            // (a replacement that does not decode touches nothing: a superseded correction
            // is never decoded by the fold either, and the scan reads it the same way)
            let replacement_touches = || {
                o.replacement.as_ref().is_some_and(|(t, v, p)| {
                    Event::decode(t, *v, p).is_ok_and(|r| r.touches().contains(entity))
                })
            };
            if touched.contains(&o.target) || replacement_touches() {
                seqs.insert(*by);
            }
        }
        // Every listed event is checked, the ones after `cut` too: otherwise an entry moved
        // past the cut would keep the count while an event before it went missing.
        self.vouch(seqs.iter().copied())?;
        let overrides = effective_overrides(self.state.overrides(), cut);
        let mut out = Vec::with_capacity(seqs.len());
        for seq in seqs {
            let env = self
                .store
                .get(seq)?
                .ok_or_else(|| corrupt(seq, "an event of an audit trail is missing".into()))?;
            let event = decode(&env)?;
            let belongs = match &event {
                // the index never lists a correction: it comes from the overrides
                Event::EventCorrected(c) => {
                    !touched.contains(&seq)
                        && self
                            .state
                            .overrides()
                            .get(&seq)
                            .is_some_and(|o| o.target == c.target_seq)
                }
                Event::EventRetracted(r) => {
                    !touched.contains(&seq)
                        && self
                            .state
                            .overrides()
                            .get(&seq)
                            .is_some_and(|o| o.target == r.target_seq)
                }
                e => touched.contains(&seq) && e.touched().contains(entity),
            };
            if !belongs {
                return Err(corrupt(
                    seq,
                    format!("the audit index lists this event for {key}, but it does not touch it"),
                ));
            }
            if seq <= cut {
                budget.spend(&env)?;
                out.push(entry(&env, &event, &overrides, self.state.overrides(), cut));
            }
        }
        Ok(out)
    }

    /// Make sure the chain vouches for the events at `seqs` before they are shown: each is
    /// re-hashed with its stretch of the log between two chain marks (at most `MARK_EVERY`
    /// events), or — where the state has no marks, or the stretch reaches what the fold
    /// already checked — from it up to the checked part of the chain.
    pub fn vouch(&self, seqs: impl IntoIterator<Item = u64>) -> Result<()> {
        let checked = self.checked_from.load(Ordering::SeqCst);
        let stretches: BTreeSet<u64> = seqs
            .into_iter()
            .filter(|s| *s >= 1 && *s < checked)
            .map(|s| (s - 1) / MARK_EVERY)
            .collect();
        if stretches.is_empty() {
            return Ok(());
        }
        let todo: Vec<u64> = match self.vouched.lock() {
            Ok(done) => stretches
                .into_iter()
                .filter(|j| !done.contains(j))
                .collect(),
            Err(_) => stretches.into_iter().collect(),
        };
        // A long trail (a group's, hundreds of stretches) is checked on two cores.
        if todo.len() > 32 {
            let (left, right) = todo.split_at(todo.len() / 2);
            return std::thread::scope(|scope| {
                let other = std::thread::Builder::new()
                    .spawn_scoped(scope, || self.vouch_stretches(right, checked))
                    .ok();
                let mine = self.vouch_stretches(left, checked);
                let theirs = match other {
                    Some(t) => t
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                    None => self.vouch_stretches(right, checked),
                };
                mine.and(theirs)
            });
        }
        self.vouch_stretches(&todo, checked)
    }

    /// Check each stretch `j` (events `j·MARK_EVERY + 1 ..= (j+1)·MARK_EVERY`) below `checked`.
    fn vouch_stretches(&self, stretches: &[u64], checked: u64) -> Result<()> {
        let marks = &self.state.log_book().marks;
        for &j in stretches {
            let from = j * MARK_EVERY + 1;
            let to = (j + 1) * MARK_EVERY;
            let prev = if j == 0 {
                Some(GENESIS_HASH)
            } else {
                marks.get(&(j * MARK_EVERY)).copied()
            };
            match (prev, marks.get(&to)) {
                (Some(prev), Some(end)) if to < checked => {
                    self.store.check_stretch(from, to, prev, *end)?;
                }
                // no marks for it (or it reaches the checked part): walk up to what is checked
                _ => self.check_chain_from(from)?,
            }
            if let Ok(mut v) = self.vouched.lock() {
                v.insert(j);
            }
        }
        Ok(())
    }

    /// The trail of `entity` found the slow way, by decoding every event up to `cut`: what
    /// the index must agree with (tests compare the two).
    #[doc(hidden)]
    pub fn audit_by_scan(&self, entity: &EntityRef, cut: Option<u64>) -> Result<Vec<AuditEntry>> {
        let cut = cut.unwrap_or(u64::MAX).min(self.state.head());
        let overrides = effective_overrides(self.state.overrides(), cut);
        let mut included = HashSet::new();
        let mut out = Vec::new();
        self.check_chain_from(1)?;
        for env in self.store.iter_from(1) {
            let env = env?;
            if env.seq > cut {
                break;
            }
            let event = decode(&env)?;
            let hit = match &event {
                Event::EventCorrected(c) => {
                    included.contains(&c.target_seq)
                        || event
                            .replacement()
                            .and_then(|r| r.ok())
                            .is_some_and(|r| r.touches().contains(entity))
                }
                Event::EventRetracted(r) => included.contains(&r.target_seq),
                e => e.touches().contains(entity),
            };
            if hit {
                included.insert(env.seq);
                out.push(entry(&env, &event, &overrides, self.state.overrides(), cut));
            }
        }
        Ok(out)
    }
}
