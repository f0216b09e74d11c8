//! Group commit (`Ledger::execute_group`, the server's writer): several batches, one append
//! and one fsync; each batch all or nothing on its own, decided after the accepted ones
//! before it.

mod common;

use eduledger_domain::{Submission, parse_submission};
use eduledger_ledger::{Batch, Ledger, LedgerError};
use proptest::prelude::*;

fn subs(lines: &[&str]) -> Vec<Submission> {
    lines.iter().map(|l| parse_submission(l).unwrap()).collect()
}

fn kg(name: &str) -> String {
    format!(
        r#"{{"command":"register_kindergarten","kindergarten":"{name}","category":"first_class","ownership":"public","on":"2023-09-01"}}"#
    )
}

fn teacher(no: &str, home: &str) -> String {
    format!(
        r#"{{"command":"register_teacher","staff_no":"{no}","name":"教师","home":"{home}","on":"2023-09-01"}}"#
    )
}

/// What was acknowledged is what a fold of the log from the first event gives.
fn assert_a_fold_agrees(ledger: Ledger, dir: &std::path::Path) {
    let live = ledger.state().clone();
    drop(ledger);
    let reopened = Ledger::open_with_snapshots(dir, common::clock(), 0).unwrap();
    assert_eq!(reopened.state(), &live);
}

#[test]
fn a_refused_batch_changes_nothing_and_stops_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), common::clock()).unwrap();
    let a = subs(&[&kg("甲"), &teacher("T1", "甲")]);
    // refers to a kindergarten nobody registered: refused whole, though its first is fine
    let b = subs(&[&kg("乙"), &teacher("T2", "无此园")]);
    // refers to what batch a registered in the same group commit
    let c = subs(&[&teacher("T3", "甲")]);
    let before = ledger.head().unwrap().seq;
    let out = ledger
        .execute_group(&[
            Batch {
                scope: &[],
                request: None,
                commands: &a,
                actor: "a",
            },
            Batch {
                scope: &[],
                request: None,
                commands: &b,
                actor: "b",
            },
            Batch {
                scope: &[],
                request: None,
                commands: &c,
                actor: "c",
            },
        ])
        .unwrap();
    assert_eq!(out[0].as_ref().unwrap(), &vec![before + 1, before + 2]);
    assert!(
        matches!(out[1], Err(LedgerError::Batch { number: 2, .. })),
        "{:?}",
        out[1]
    );
    assert_eq!(out[2].as_ref().unwrap(), &vec![before + 3]);
    assert_eq!(ledger.head().unwrap().seq, before + 3);
    assert!(ledger.state().kg_by_name("乙").is_none());
    // the actors are each batch's own
    let log = ledger.log(before + 1, 10, None).unwrap();
    let actors: Vec<&str> = log.iter().map(|e| e.actor.as_str()).collect();
    assert_eq!(actors, ["a", "a", "c"]);
    assert_a_fold_agrees(ledger, dir.path());
}

#[test]
fn a_correction_may_target_an_event_of_an_earlier_batch_in_the_same_group() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), common::clock()).unwrap();
    ledger.execute(&subs(&[&kg("甲")]), "t").unwrap();
    let head = ledger.head().unwrap().seq;
    let a = subs(&[&teacher("T1", "甲")]);
    let fix = format!(
        r#"{{"command":"correct_event","target":{},"reason":"改名","replacement":{{"command":"register_teacher","staff_no":"T1","name":"新名","home":"甲","on":"2023-09-01"}}}}"#,
        head + 1
    );
    let b = subs(&[&fix]);
    let out = ledger
        .execute_group(&[
            Batch {
                scope: &[],
                request: None,
                commands: &a,
                actor: "t",
            },
            Batch {
                scope: &[],
                request: None,
                commands: &b,
                actor: "t",
            },
        ])
        .unwrap();
    assert!(out.iter().all(|o| o.is_ok()), "{out:?}");
    let t1 = eduledger_domain::values::StaffNo::new("T1").unwrap();
    assert_eq!(ledger.state().teachers()[&t1].name.as_str(), "新名");
    assert_a_fold_agrees(ledger, dir.path());
}

#[test]
fn a_group_of_refused_batches_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), common::clock()).unwrap();
    ledger.execute(&subs(&[&kg("甲")]), "t").unwrap();
    let before = ledger.head().unwrap();
    let bad = subs(&[&teacher("T9", "无此园")]);
    let out = ledger
        .execute_group(&[Batch {
            scope: &[],
            request: None,
            commands: &bad,
            actor: "t",
        }])
        .unwrap();
    assert!(out[0].is_err());
    assert_eq!(ledger.head().unwrap(), before);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]
    /// Committing batches together gives the state committing them one by one gives, and
    /// accepts and refuses the same batches.
    #[test]
    fn a_group_commit_equals_the_batches_one_by_one(
        batches in proptest::collection::vec(
            proptest::collection::vec((0usize..5, 0usize..12, 0usize..4), 1..4),
            1..8,
        )
    ) {
        let kgs = ["甲", "乙", "丙", "丁"];
        let lines: Vec<Vec<String>> = batches
            .iter()
            .map(|b| {
                b.iter()
                    .map(|(what, n, k)| match what {
                        0 => kg(kgs[*k]),
                        // a retraction of an event perhaps in an earlier batch of the same
                        // group, perhaps one later events depend on, perhaps not there at all
                        4 => format!(r#"{{"command":"retract_event","target":{},"reason":"r"}}"#, n + 1),
                        // a teacher, perhaps twice, perhaps at a kindergarten not there yet
                        _ => teacher(&format!("T{n}"), kgs[*k]),
                    })
                    .collect()
            })
            .collect();
        let parsed: Vec<Vec<Submission>> = lines
            .iter()
            .map(|b| b.iter().map(|l| parse_submission(l).unwrap()).collect())
            .collect();
        let d1 = tempfile::tempdir().unwrap();
        let mut together = Ledger::open(d1.path(), common::clock()).unwrap();
        let group: Vec<Batch> = parsed.iter().map(|b| Batch { commands: b, actor: "t", scope: &[], request: None }).collect();
        let out = together.execute_group(&group).unwrap();
        let d2 = tempfile::tempdir().unwrap();
        let mut apart = Ledger::open(d2.path(), common::clock()).unwrap();
        for (b, o) in parsed.iter().zip(&out) {
            let r = apart.execute(b, "t");
            prop_assert_eq!(r.is_ok(), o.is_ok());
            if let (Ok(a), Ok(b)) = (&r, o) {
                prop_assert_eq!(a, b);
            }
        }
        prop_assert_eq!(together.state(), apart.state());
    }
}

#[test]
fn a_retraction_in_a_group_is_refused_when_a_batch_before_it_depends_on_its_target() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), common::clock()).unwrap();
    let head = ledger.head().unwrap().seq;
    let a = subs(&[&kg("甲"), &teacher("T1", "甲")]);
    // retracting the registration would leave T1 with no home: refused
    let b = subs(&[&format!(
        r#"{{"command":"retract_event","target":{},"reason":"r"}}"#,
        head + 1
    )]);
    let c = subs(&[&kg("乙")]);
    // retracting 乙's registration, recorded a batch earlier, breaks nothing: accepted
    let d = subs(&[&format!(
        r#"{{"command":"retract_event","target":{},"reason":"r"}}"#,
        head + 3
    )]);
    let out = ledger
        .execute_group(&[
            Batch {
                scope: &[],
                request: None,
                commands: &a,
                actor: "t",
            },
            Batch {
                scope: &[],
                request: None,
                commands: &b,
                actor: "t",
            },
            Batch {
                scope: &[],
                request: None,
                commands: &c,
                actor: "t",
            },
            Batch {
                scope: &[],
                request: None,
                commands: &d,
                actor: "t",
            },
        ])
        .unwrap();
    assert!(
        out[0].is_ok() && out[2].is_ok() && out[3].is_ok(),
        "{out:?}"
    );
    assert!(
        matches!(out[1], Err(LedgerError::Domain(_))),
        "{:?}",
        out[1]
    );
    assert!(ledger.state().kg_by_name("乙").is_none());
    assert!(ledger.state().kg_by_name("甲").is_some());
    assert_a_fold_agrees(ledger, dir.path());
}

#[test]
fn a_dry_run_decides_what_recording_then_records_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), common::clock()).unwrap();
    let batch = subs(&[&kg("甲"), &teacher("T1", "甲")]);
    let before = ledger.head().unwrap();
    let dry = ledger.decide_batch(&batch, "t").unwrap();
    assert_eq!(ledger.head().unwrap(), before, "a dry run wrote something");
    let seqs = ledger.execute(&batch, "t").unwrap();
    let decided: Vec<u64> = dry.events().iter().map(|(s, _)| *s).collect();
    assert_eq!(decided, seqs);
    for (seq, event) in dry.events() {
        assert_eq!(&ledger.event_at(*seq).unwrap().unwrap().1, event);
    }
    assert_eq!(dry.state().teachers(), ledger.state().teachers());
}

#[test]
fn a_view_shows_the_ledger_as_it_stood_and_records_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), common::clock()).unwrap();
    ledger
        .execute(&subs(&[&kg("甲"), &teacher("T1", "甲")]), "t")
        .unwrap();
    let view = ledger.view().unwrap();
    let then = ledger.head().unwrap();
    ledger.execute(&subs(&[&teacher("T2", "甲")]), "t").unwrap();
    assert_eq!(ledger.head().unwrap().seq, then.seq + 1);
    // the view keeps its head, state and log while the ledger goes on recording
    assert_eq!(view.head().unwrap(), then);
    assert_eq!(view.state().head(), then.seq);
    assert!(!view.state().teachers().keys().any(|t| t.as_str() == "T2"));
    assert!(ledger.state().teachers().keys().any(|t| t.as_str() == "T2"));
    assert_eq!(view.log(1, 100, None).unwrap().len(), then.seq as usize);
    assert!(view.event_at(then.seq + 1).unwrap().is_none());
    // and a view of now sees it
    assert_eq!(
        ledger.view().unwrap().log(1, 100, None).unwrap().len(),
        then.seq as usize + 1
    );
    // a view decides nothing
    let refused = view.decide_batch(&subs(&[&teacher("T3", "甲")]), "t");
    assert!(matches!(refused, Err(LedgerError::Input(m)) if m.contains("view")));
}
