//! The checks the ledger makes of an event before it records it, made again of an event it
//! did not decide itself — a follower's copy of a server's feed, an import, `verify` — so
//! that a log which passes is one this ledger could have written, event by event, each
//! against the state the ledger had when it was recorded (corrections as they stood then).

use super::*;

/// How far after midnight an access change may still be dated the day before: the date is
/// checked when the command is decided, the time is taken when it is appended a moment later.
const MIDNIGHT_GRACE_US: i64 = 15 * 60 * 1_000_000;

/// When the rules this version added to what is recorded apply from (2026-12-08 in
/// Shanghai, by `recorded_at`): access dates against the time the record was given, and no
/// characters that do not print in what an event says. A ledger an earlier version wrote
/// before then was lawful under that version's rules, and keeps verifying.
pub(crate) const STRICTER_FROM_US: i64 = 1_796_659_200_000_000;

/// Why an event the ledger did not decide is refused.
fn broken(seq: u64, why: impl std::fmt::Display) -> LedgerError {
    StoreError::Corrupt {
        seq,
        what: format!("this ledger could not have recorded it: {why}"),
    }
    .into()
}

/// Check `event`, recorded in `env`, against `state` — the state after every event before
/// it, as the ledger had them when it was recorded — and return the state with it. `pending`
/// are the events before it not in `store` yet (a follower's batch); a correction's replay
/// reads the rest from `store`.
pub(crate) fn admit(
    store: &Store,
    state: &State,
    env: &Envelope,
    event: &Event,
    pending: &[(u64, Event)],
) -> Result<State> {
    let seq = env.seq;
    let meta = eduledger_domain::Meta {
        actor: Some(env.meta.actor.clone()),
        reason: env.meta.reason.clone(),
        source: env.meta.source.clone(),
    };
    meta.check().map_err(|why| broken(seq, why))?;
    if env.meta.actor.trim().is_empty() {
        return Err(broken(seq, "it names no actor"));
    }
    let stream = event
        .primary()
        .map(|e| e.stream())
        .unwrap_or_else(|| CORRECTIONS_STREAM.into());
    if env.stream != stream {
        return Err(broken(
            seq,
            format!(
                "it is filed under stream {} where its content belongs to {stream}",
                env.stream
            ),
        ));
    }
    if clock::day_of_us(env.recorded_at_us).is_none() {
        return Err(broken(
            seq,
            format!(
                "its recorded_at ({} µs after the Unix epoch) lies outside the years the ledger keeps",
                env.recorded_at_us
            ),
        ));
    }
    let stricter = env.recorded_at_us >= STRICTER_FROM_US;
    if stricter && let Some((field, c)) = hidden_in(&event.to_json()) {
        return Err(broken(
            seq,
            format!(
                "its {field} contains U+{:04X}, a character that does not print",
                c as u32
            ),
        ));
    }
    if stricter
        && let Some((principal, on)) = event_access_date(event)
        && clock::day_of_us(env.recorded_at_us.saturating_sub(MIDNIGHT_GRACE_US))
            .is_none_or(|day| on < day)
    {
        let day = clock::day_of_us(env.recorded_at_us.saturating_sub(MIDNIGHT_GRACE_US));
        return Err(broken(
            seq,
            format!(
                "the access of {principal} is dated {on}, before the day it was recorded ({})",
                day.map_or_else(|| "unknown".to_string(), |d| d.to_string())
            ),
        ));
    }
    let origin = Origin {
        seq,
        corrected_by: None,
    };
    let mut next = match event {
        Event::EventCorrected(_) | Event::EventRetracted(_) => {
            correction(store, state, seq, event, pending)?
        }
        _ => {
            if let Event::KindergartenRegistered(r) = event
                && r.kindergarten != state.next_kg_id()
            {
                return Err(broken(
                    seq,
                    format!(
                        "it registers kindergarten id {} where the next free id was {}",
                        r.kindergarten,
                        state.next_kg_id()
                    ),
                ));
            }
            let mut before = state.clone();
            before.note_recorded(event);
            eduledger_domain::check(&before, event, origin).map_err(|e| broken(seq, e))?
        }
    };
    next.mark_chain(seq, env.hash);
    next.set_head(seq);
    Ok(next)
}

/// A correction or retraction as the ledger accepts one: aimed at an earlier event that is
/// not itself one and not retracted, replaced by the same kind of event about the same
/// entity, and the history with it passing every rule again.
fn correction(
    store: &Store,
    state: &State,
    seq: u64,
    event: &Event,
    pending: &[(u64, Event)],
) -> Result<State> {
    let (target, replacement) = match event {
        Event::EventCorrected(c) => (
            c.target_seq,
            Some(
                Event::decode(
                    &c.replacement_type,
                    c.replacement_version,
                    &c.replacement_payload,
                )
                .map_err(|why| broken(seq, format!("its replacement does not decode ({why})")))?,
            ),
        ),
        Event::EventRetracted(r) => (r.target_seq, None),
        _ => return Err(broken(seq, "not a correction")),
    };
    if target == 0 || target >= seq {
        return Err(broken(
            seq,
            format!("it is aimed at sequence {target}, which is not before it"),
        ));
    }
    let original = match pending.iter().find(|(s, _)| *s == target) {
        Some((_, e)) => e.clone(),
        None => {
            let env = store
                .get(target)?
                .ok_or_else(|| broken(seq, format!("its target {target} is not in the log")))?;
            decode(&env)?
        }
    };
    if matches!(
        original,
        Event::EventCorrected(_) | Event::EventRetracted(_)
    ) {
        return Err(broken(
            seq,
            format!("its target {target} is itself a correction or retraction"),
        ));
    }
    if let Some((by, o)) = state.override_of(target, seq - 1)
        && o.replacement.is_none()
    {
        return Err(broken(
            seq,
            format!("its target {target} was retracted at sequence {by}"),
        ));
    }
    if let Some(rep) = &replacement {
        let same_id = match (rep, &original) {
            (Event::KindergartenRegistered(a), Event::KindergartenRegistered(b)) => {
                a.kindergarten == b.kindergarten
            }
            _ => true,
        };
        if rep.event_type() != original.event_type()
            || rep.primary() != original.primary()
            || !same_id
        {
            return Err(broken(
                seq,
                format!(
                    "its replacement ({}) is not the same kind of event about the same entity as its target {target} ({})",
                    rep.event_type(),
                    original.event_type()
                ),
            ));
        }
    }
    replay_correction(store, state, event, seq, target, pending).map_err(|e| match e {
        LedgerError::Domain(d) => broken(seq, d),
        other => other,
    })
}

/// The first string in an event's JSON (at any depth) holding a character that does not
/// print, with the field it is in.
/// (A correction's `reason` and a points-rules file may run over lines and hold tabs;
/// nothing else may.)
fn hidden_in(value: &serde_json::Value) -> Option<(String, char)> {
    hidden_in_field(value, false)
}

fn hidden_in_field(value: &serde_json::Value, multiline: bool) -> Option<(String, char)> {
    match value {
        serde_json::Value::String(s) => {
            eduledger_domain::values::hidden_char(s, multiline).map(|c| (String::new(), c))
        }
        serde_json::Value::Array(items) => items.iter().find_map(|v| hidden_in_field(v, multiline)),
        serde_json::Value::Object(fields) => fields.iter().find_map(|(k, v)| {
            hidden_in_field(v, k == "reason" || k == "rules").map(|(inner, c)| {
                (
                    if inner.is_empty() {
                        k.clone()
                    } else {
                        format!("{k}.{inner}")
                    },
                    c,
                )
            })
        }),
        _ => None,
    }
}

/// The principal and date of an access event, or of a correction's replacement that is one
/// (dated against the correction's own day, as when it was decided).
fn event_access_date(event: &Event) -> Option<(String, eduledger_domain::values::Date)> {
    match event {
        Event::AccessGranted(e) => Some((e.principal.to_string(), e.on)),
        Event::AccessRevoked(e) => Some((e.principal.to_string(), e.on)),
        Event::EventCorrected(c) => Event::decode(
            &c.replacement_type,
            c.replacement_version,
            &c.replacement_payload,
        )
        .ok()
        .and_then(|rep| event_access_date(&rep)),
        _ => None,
    }
}

/// Replay the whole log from the first event, admitting each as the ledger would have when
/// it was recorded ([`admit`]); `progress` hears each sequence. Used by `verify` and
/// `import`: an `Ok` means this ledger could have written every event of it.
pub fn validate_log(store: &Store, progress: &mut dyn FnMut(u64)) -> Result<()> {
    let mut state = State::default();
    for env in store.iter_chained(1)? {
        let env = env?;
        let event = decode(&env)?;
        state = admit(store, &state, &env, &event, &[])?;
        progress(env.seq);
    }
    Ok(())
}

impl Ledger {
    /// Append events another ledger sealed — a follower's copy of a server's feed — each
    /// first admitted as this ledger would have recorded it ([`admit`]), against the copy's
    /// state: all of them, with one fsync, or none.
    pub fn append_sealed(&mut self, sealed: &[(Envelope, Vec<u8>)]) -> Result<Digest> {
        self.may_record()?;
        let first = self.store.head()?.seq;
        let mut state = (*self.state).clone();
        let mut pending: Vec<(u64, Event)> = Vec::with_capacity(sealed.len());
        for (i, (env, _)) in sealed.iter().enumerate() {
            if env.seq != first + 1 + i as u64 {
                return Err(StoreError::Corrupt {
                    seq: env.seq,
                    what: format!("it does not continue the chain from this copy's head {first}"),
                }
                .into());
            }
            let event = decode(env)?;
            state = admit(&self.store, &state, env, &event, &pending)?;
            pending.push((env.seq, event));
        }
        let head = self.store.append_sealed(sealed)?;
        self.state = Arc::new(state);
        self.index_recorded(first, &pending);
        Ok(head)
    }
}
