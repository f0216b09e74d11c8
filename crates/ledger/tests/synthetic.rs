//! The synthetic history used by the benchmarks obeys every rule: fold a small one through
//! the domain's own checks, event by event.

use eduledger_domain::{Origin, State, check};
use eduledger_ledger::synthetic::{Scale, generate};

#[test]
fn a_generated_history_passes_every_rule() {
    let (state, seq) = fold_checked(Scale::tiny());
    assert!(seq > 500, "only {seq} events");
    assert_eq!(state.kindergartens().len(), 24);
}

#[test]
fn a_district_sized_history_passes_every_rule() {
    let (state, seq) = fold_checked(Scale::district());
    assert!(seq > 10_000, "only {seq} events");
    assert_eq!(state.groups().len(), 7);
}

fn fold_checked(scale: Scale) -> (State, u64) {
    let mut state = State::default();
    let mut seq = 0u64;
    let mut refused = None;
    generate(scale, &mut |mut e| {
        if refused.is_some() {
            return;
        }
        if let eduledger_domain::Event::PointsRulesAdopted(r) = &mut e {
            r.sha256 = eduledger_domain::points::sha256_hex(&r.rules);
        }
        seq += 1;
        match check(
            &state,
            &e,
            Origin {
                seq,
                corrected_by: None,
            },
        ) {
            Ok(next) => state = next,
            Err(err) => refused = Some(format!("event {seq} ({}) refused: {err}", e.event_type())),
        }
    });
    assert_eq!(refused, None);
    (state, seq)
}
