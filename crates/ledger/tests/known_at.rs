//! Reads as known at a past cut: the last few folds are kept (`Ledger::state_at`), and a
//! kept fold must be the state a fresh fold gives — whatever was recorded since, corrections
//! of events before the cut included.

mod common;

use std::sync::Arc;

use common::*;
use eduledger_ledger::Ledger;

const A: &str = r#"{"command":"register_kindergarten","kindergarten":"甲","category":"first_class","ownership":"public","on":"2023-09-01"}"#;
const B: &str = r#"{"command":"register_kindergarten","kindergarten":"乙","category":"first_class","ownership":"public","on":"2023-09-01"}"#;
const C: &str = r#"{"command":"register_kindergarten","kindergarten":"丙","category":"first_class","ownership":"public","on":"2023-09-01"}"#;

fn fresh_fold(dir: &std::path::Path, cut: u64) -> Arc<eduledger_domain::State> {
    // another ledger on the same directory: nothing kept from this one
    Ledger::open(dir, clock())
        .unwrap()
        .state_at(Some(cut))
        .unwrap()
}

#[test]
fn a_kept_fold_is_the_fold_made_fresh_after_later_corrections_and_events() {
    let mut w = given(&[A, B, C]);
    let kept = w.ledger.state_at(Some(2)).unwrap();
    assert!(kept.kg_by_name("乙").is_some() && kept.kg_by_name("丙").is_none());
    // a retraction of an event before the cut, recorded after it, and one more event
    w.accepted(r#"{"command":"retract_event","target":2,"reason":"误录"}"#);
    w.accepted(r#"{"command":"register_kindergarten","kindergarten":"丁","category":"first_class","ownership":"public","on":"2023-09-01"}"#);
    assert!(w.ledger.state().kg_by_name("乙").is_none(), "retracted now");
    // asked again: the kept fold itself — equal to a fold made from scratch now, which
    // still shows 乙 (the retraction was recorded after the cut)
    let again = w.ledger.state_at(Some(2)).unwrap();
    assert!(Arc::ptr_eq(&kept, &again), "the fold was kept");
    // a view shares what is kept
    let view = w.ledger.view().unwrap();
    assert!(Arc::ptr_eq(&view.state_at(Some(2)).unwrap(), &kept));
    let dir = w.dir.path().to_owned();
    drop((view, w.ledger));
    let fresh = fresh_fold(&dir, 2);
    assert_eq!(*again, *fresh);
    assert!(fresh.kg_by_name("乙").is_some());
}

#[test]
fn only_the_last_folds_are_kept_and_the_one_in_use_stays() {
    let w = given(&[A, B, C, A.replace("甲", "戊").as_str()]);
    let one = w.ledger.state_at(Some(1)).unwrap();
    let two = w.ledger.state_at(Some(2)).unwrap();
    // using the first again keeps it: the next fold pushes the second out
    assert!(Arc::ptr_eq(&w.ledger.state_at(Some(1)).unwrap(), &one));
    let _three = w.ledger.state_at(Some(3)).unwrap();
    assert!(Arc::ptr_eq(&w.ledger.state_at(Some(1)).unwrap(), &one));
    assert!(!Arc::ptr_eq(&w.ledger.state_at(Some(2)).unwrap(), &two));
    assert_eq!(eduledger_ledger::KEPT_FOLDS, 2);
}
