//! The audit index and the chain marks: trails read without a scan, and nothing in the index
//! or below a snapshot taken on trust.

mod common;

use eduledger_domain::EntityRef;
use eduledger_domain::parse_submission;
use eduledger_domain::state::MARK_EVERY;
use eduledger_domain::values::StaffNo;
use eduledger_ledger::{Ledger, LedgerError};

const TEACHERS: usize = 1200;

/// Six kindergartens, then `TEACHERS` teachers registered in batches of 100 (T0 at sequence
/// 7, T{i} at 7 + i), with snapshots every 500 events; reopened so the fold starts from the
/// snapshot at 1,000: below it, every stretch of 64 that ends before 1,001 is vouched for by
/// two marks, and the one that reaches past it (961..=1024) is walked up to the fold.
fn big() -> (tempfile::TempDir, Ledger) {
    big_with(TEACHERS, 1000)
}

/// `teachers` teachers; reopened so the fold starts from the snapshot at `snapshot`.
fn big_with(teachers: usize, snapshot: u64) -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_snapshots(dir.path(), common::clock(), 500).unwrap();
    let kgs = ["甲", "乙", "丙", "丁", "戊", "己"];
    let setup: Vec<_> = kgs
        .iter()
        .map(|k| parse_submission(&format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"first_class","ownership":"public","on":"2023-09-01"}}"#)).unwrap())
        .collect();
    ledger.execute(&setup, "tester").unwrap();
    for b in 0..teachers / 100 {
        let batch: Vec<_> = (b * 100..b * 100 + 100)
            .map(|i| parse_submission(&format!(r#"{{"command":"register_teacher","staff_no":"T{i}","name":"教师{i}","home":"{}","on":"2023-09-01"}}"#, kgs[i % 6])).unwrap())
            .collect();
        ledger.execute(&batch, "tester").unwrap();
    }
    drop(ledger);
    // reopening folds past 500 and 1,000 and leaves snapshots there
    drop(Ledger::open_with_snapshots(dir.path(), common::clock(), 500).unwrap());
    let ledger = Ledger::open_with_snapshots(dir.path(), common::clock(), 500).unwrap();
    assert!(
        ledger.store().snapshot_seqs().unwrap().contains(&snapshot),
        "the test needs a snapshot at {snapshot}"
    );
    (dir, ledger)
}

fn teacher(i: usize) -> EntityRef {
    EntityRef::Teacher(StaffNo::new(format!("T{i}")).unwrap())
}

/// The raw audit tree, as someone with write access to the files would see it.
fn audit_tree(ledger: &Ledger) -> sled::Tree {
    ledger
        .store()
        .raw_db_for_benches()
        .open_tree("audit")
        .unwrap()
}

/// The key of an entity's first chunk of sequences.
fn key(entity: &str) -> Vec<u8> {
    let mut k = (entity.len() as u16).to_be_bytes().to_vec();
    k.extend_from_slice(entity.as_bytes());
    k.extend_from_slice(&0u32.to_be_bytes());
    k
}

/// The index's last-sequence record: `upto ‖ derivation` (this build derives version 1).
fn upto(seq: u64, derivation: u32) -> Vec<u8> {
    let mut v = seq.to_be_bytes().to_vec();
    v.extend_from_slice(&derivation.to_be_bytes());
    v
}

fn packed(seqs: &[u64]) -> Vec<u8> {
    seqs.iter().flat_map(|s| s.to_be_bytes()).collect()
}

fn is_corrupt(r: Result<impl std::fmt::Debug, LedgerError>, says: &str) {
    match r {
        Err(e) => {
            assert!(e.is_ledger_fault(), "not a ledger fault: {e}");
            assert!(e.to_string().contains(says), "{e} does not say {says:?}");
        }
        Ok(v) => panic!("expected a refusal saying {says:?}, got {v:?}"),
    }
}

#[test]
fn trails_from_the_index_equal_trails_from_a_scan_below_and_above_the_snapshot() {
    let (_d, ledger) = big();
    // every read through the index first: a scan checks the whole chain, after which
    // nothing would be vouched for by the marks
    let picks = [
        0,
        1,
        56,
        57,
        249,
        250,
        953,
        954,
        993,
        994,
        1100,
        TEACHERS - 1,
    ];
    let indexed: Vec<_> = picks
        .iter()
        .map(|i| ledger.audit(&teacher(*i), None).unwrap())
        .collect();
    // a kindergarten is touched by its registration and each of its 200 teachers
    let kg = EntityRef::Kindergarten(ledger.state().kg_names().values().next().copied().unwrap());
    let kg_trail = ledger.audit(&kg, None).unwrap();
    assert_eq!(kg_trail.len(), 1 + TEACHERS / 6);
    for (i, trail) in picks.iter().zip(&indexed) {
        assert_eq!(trail.len(), 1, "T{i} has one event");
        assert_eq!(trail[0].seq, 7 + *i as u64);
        assert_eq!(
            serde_json::to_string(trail).unwrap(),
            serde_json::to_string(&ledger.audit_by_scan(&teacher(*i), None).unwrap()).unwrap()
        );
    }
    assert_eq!(
        serde_json::to_string(&kg_trail).unwrap(),
        serde_json::to_string(&ledger.audit_by_scan(&kg, None).unwrap()).unwrap()
    );
}

#[test]
fn a_changed_event_below_the_snapshot_is_refused_and_only_where_it_is() {
    let (_d, ledger) = big();
    // T983 was recorded at 990, in the stretch 961..=1024, which reaches past the snapshot at
    // 1,000: it is walked up to the part of the chain the fold checked
    let seq = 990;
    ledger
        .store()
        .tamper_for_tests(seq, |b| {
            let n = b.len();
            b[n / 2] ^= 1;
        })
        .unwrap();
    // a stretch elsewhere still checks out: nothing walks from an old event to the head
    assert_eq!(ledger.audit(&teacher(0), None).unwrap().len(), 1);
    assert_eq!(ledger.audit(&teacher(300), None).unwrap().len(), 1);
    is_corrupt(ledger.audit(&teacher(983), None), "hash chain is broken");
    is_corrupt(ledger.audit(&teacher(960), None), "hash chain is broken");
    is_corrupt(ledger.event_at(980), "hash chain is broken");
    is_corrupt(ledger.log(975, 10, None), "hash chain is broken");
}

#[test]
fn a_changed_event_in_a_stretch_between_two_marks_is_refused_by_the_marks() {
    let (_d, ledger) = big();
    // T293 was recorded at 300, in the stretch 257..=320: wholly below the snapshot at
    // 1,000, so only the marks at 256 and 320 vouch for it
    ledger
        .store()
        .tamper_for_tests(300, |b| {
            let n = b.len();
            b[n / 2] ^= 1;
        })
        .unwrap();
    is_corrupt(
        ledger.audit(&teacher(293), None),
        "against the chain's marks",
    );
    is_corrupt(ledger.event_at(310), "against the chain's marks");
    // the stretches on either side still check out
    assert_eq!(ledger.audit(&teacher(240), None).unwrap().len(), 1);
    assert_eq!(ledger.audit(&teacher(320), None).unwrap().len(), 1);
}

#[test]
fn a_long_trail_is_vouched_for_on_two_cores_and_a_change_in_either_half_is_refused() {
    // 3,006 events, the fold from the snapshot at 3,000: a kindergarten's trail (501 events)
    // spans 47 stretches below it (the last, 2945..=3008, walked up to the fold): more
    // than 32, so two cores check them; 200 lies in the first half, 2900 in the second
    for seq in [200, 2900] {
        let (_d, ledger) = big_with(3000, 3000);
        ledger
            .store()
            .tamper_for_tests(seq, |b| {
                let n = b.len();
                b[n / 2] ^= 1;
            })
            .unwrap();
        let kg =
            EntityRef::Kindergarten(ledger.state().kg_names().values().next().copied().unwrap());
        is_corrupt(ledger.audit(&kg, None), "against the chain's marks");
    }
    let (_d, ledger) = big_with(3000, 3000);
    let kg = EntityRef::Kindergarten(ledger.state().kg_names().values().next().copied().unwrap());
    assert_eq!(ledger.audit(&kg, None).unwrap().len(), 1 + 3000 / 6);
}

#[test]
fn an_envelope_planted_between_two_stretches_is_refused_by_the_log() {
    let (_d, ledger) = big();
    let log = ledger
        .store()
        .raw_db_for_benches()
        .open_tree("log")
        .unwrap();
    // a key that sorts after 64 and before 65, holding a genuine envelope (event 300's)
    let mut planted = 64u64.to_be_bytes().to_vec();
    planted.push(0);
    let genuine = log.get(300u64.to_be_bytes()).unwrap().unwrap();
    log.insert(planted, genuine).unwrap();
    log.flush().unwrap();
    is_corrupt(ledger.log(60, 10, None), "not a sequence");
}

#[test]
fn an_index_left_by_an_interrupted_clear_is_built_again() {
    let (_d, ledger) = big();
    let tree = audit_tree(&ledger);
    // the last-sequence record gone (sled's clear removes it first), one chunk left over
    tree.remove(b"").unwrap();
    tree.insert(key("teacher:T5"), packed(&[12])).unwrap();
    let kg = EntityRef::Kindergarten(ledger.state().kg_names().values().next().copied().unwrap());
    let kg_key = format!(
        "kindergarten:{}",
        match &kg {
            EntityRef::Kindergarten(k) => k.to_string(),
            _ => unreachable!(),
        }
    );
    let mut second = kg_key.len().to_be_bytes()[6..].to_vec();
    second.extend_from_slice(kg_key.as_bytes());
    second.extend_from_slice(&1u32.to_be_bytes());
    tree.insert(second, packed(&[5000])).unwrap();
    tree.flush().unwrap();
    assert_eq!(ledger.audit(&kg, None).unwrap().len(), 1 + TEACHERS / 6);
    assert_eq!(ledger.audit(&teacher(5), None).unwrap()[0].seq, 12);
}

#[test]
fn an_entry_moved_past_a_cut_does_not_hide_an_event_before_it() {
    let (_d, ledger) = big();
    let tree = audit_tree(&ledger);
    // T5's own event (12) swapped for a later one the trail at the cut would not show
    tree.insert(key("teacher:T5"), packed(&[1100])).unwrap();
    tree.flush().unwrap();
    is_corrupt(ledger.audit(&teacher(5), Some(500)), "does not touch it");
}

#[test]
fn marks_and_counts_kept_while_recording_equal_a_fold_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open_with_snapshots(dir.path(), common::clock(), 0).unwrap();
    let kgs = ["甲", "乙"];
    let setup: Vec<_> = kgs
        .iter()
        .map(|k| parse_submission(&format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"first_class","ownership":"public","on":"2023-09-01"}}"#)).unwrap())
        .collect();
    ledger.execute(&setup, "tester").unwrap();
    // batches of 7 and single commands, so marks fall inside batches and on their edges
    let mut i = 0;
    while i < 600 {
        let n = if i % 2 == 0 { 7 } else { 1 };
        let batch: Vec<_> = (i..i + n)
            .map(|i| parse_submission(&format!(r#"{{"command":"register_teacher","staff_no":"T{i}","name":"教师","home":"{}","on":"2023-09-01"}}"#, kgs[i % 2])).unwrap())
            .collect();
        ledger.execute(&batch, "tester").unwrap();
        i += n;
    }
    let live = ledger.state().clone();
    assert_eq!(
        live.log_book().marks.len(),
        (live.head() / MARK_EVERY) as usize
    );
    drop(ledger);
    let folded = Ledger::open_with_snapshots(dir.path(), common::clock(), 0).unwrap();
    assert_eq!(folded.state().log_book(), live.log_book());
    assert_eq!(folded.state(), &live);
    // and each mark is the chain hash the log has there
    for (seq, hash) in &live.log_book().marks {
        assert_eq!(&folded.store().get(*seq).unwrap().unwrap().hash, hash);
    }
}

#[test]
fn an_index_derived_another_way_is_built_again() {
    let (_d, ledger) = big();
    let tree = audit_tree(&ledger);
    // as left by a build whose events touched other entities: a stale entry and another
    // derivation number
    tree.insert(key("teacher:T5"), packed(&[13])).unwrap();
    tree.insert(b"", upto(6 + TEACHERS as u64, 7)).unwrap();
    tree.flush().unwrap();
    assert_eq!(ledger.audit(&teacher(5), None).unwrap()[0].seq, 12);
    assert_eq!(
        ledger.store().audit_indexed_upto(1).unwrap(),
        Some(6 + TEACHERS as u64)
    );
}

#[test]
fn a_dropped_index_entry_is_refused_by_the_trail_and_named_by_verify() {
    let (d, ledger) = big();
    let tree = audit_tree(&ledger);
    assert_eq!(
        tree.remove(key("teacher:T5")).unwrap().unwrap().as_ref(),
        packed(&[12])
    );
    tree.flush().unwrap();
    is_corrupt(
        ledger.audit(&teacher(5), None),
        "the audit index lists 0 events for teacher:T5, but the log has 1",
    );
    drop(tree);
    drop(ledger);
    is_corrupt(
        eduledger_ledger::verify(d.path(), common::clock(), &mut |_| {}),
        "the audit index lacks teacher:T5, which 1 events touch",
    );
}

#[test]
fn a_planted_index_entry_is_refused_even_when_the_count_still_matches() {
    let (d, ledger) = big();
    let tree = audit_tree(&ledger);
    // T5's own entry swapped for one pointing at T6's registration
    tree.insert(key("teacher:T5"), packed(&[13])).unwrap();
    tree.flush().unwrap();
    is_corrupt(ledger.audit(&teacher(5), None), "does not touch it");
    // an extra entry: the count no longer matches
    tree.insert(key("teacher:T7"), packed(&[14, 20])).unwrap();
    tree.flush().unwrap();
    is_corrupt(
        ledger.audit(&teacher(7), None),
        "lists 2 events for teacher:T7",
    );
    drop(tree);
    drop(ledger);
    is_corrupt(
        eduledger_ledger::verify(d.path(), common::clock(), &mut |_| {}),
        "audit index",
    );
}

#[test]
fn an_index_behind_the_log_catches_up_and_one_beyond_it_is_refused() {
    let (_d, ledger) = big();
    let tree = audit_tree(&ledger);
    // a last sequence rolled back: the events are indexed again, each sequence once
    tree.insert(b"", upto(100, 1)).unwrap();
    tree.flush().unwrap();
    let kg = EntityRef::Kindergarten(ledger.state().kg_names().values().next().copied().unwrap());
    assert_eq!(ledger.audit(&kg, None).unwrap().len(), 1 + TEACHERS / 6);
    drop(tree);
    drop(ledger);
    let (_d, ledger) = big();
    let tree = audit_tree(&ledger);
    // as after a crash between the append and the index write, or a ledger from v0.1
    tree.clear().unwrap();
    tree.flush().unwrap();
    let e = teacher(42);
    assert_eq!(ledger.audit(&e, None).unwrap()[0].seq, 49);
    assert_eq!(
        ledger.store().audit_indexed_upto(1).unwrap(),
        Some(6 + TEACHERS as u64)
    );
    // a last-sequence record planted beyond the log
    tree.insert(b"", upto(10_000, 1)).unwrap();
    tree.flush().unwrap();
    is_corrupt(ledger.audit(&e, None), "but the log ends at");
}

#[test]
fn recording_keeps_the_index_current_and_verify_accepts_it() {
    let (d, mut ledger) = big();
    let line = r#"{"command":"register_teacher","staff_no":"N1","name":"新","home":"甲","on":"2024-09-01"}"#;
    let seq = ledger
        .execute(&[parse_submission(line).unwrap()], "tester")
        .unwrap()[0];
    assert_eq!(ledger.store().audit_indexed_upto(1).unwrap(), Some(seq));
    let n1 = EntityRef::Teacher(StaffNo::new("N1").unwrap());
    assert_eq!(ledger.audit(&n1, None).unwrap()[0].seq, seq);
    drop(ledger);
    let report = eduledger_ledger::verify(d.path(), common::clock(), &mut |_| {}).unwrap();
    assert_eq!(report.verified.head.seq, seq);
    assert!(report.snapshots_compared >= 2);
}

#[test]
fn a_written_snapshot_decodes_back_with_the_log_book() {
    let (_d, ledger) = big();
    let snap = ledger
        .store()
        .latest_snapshot(u64::MAX, eduledger_ledger::SNAPSHOT_TAG, &|_| true)
        .unwrap()
        .unwrap();
    let decoded = eduledger_ledger::decode_snapshot_payload(&snap.payload).unwrap();
    assert_eq!(decoded.head(), snap.seq);
    // (`verify` compares the snapshot's bytes with a fold from the first event)
    assert!(!decoded.log_book().touched.is_empty());
    assert_eq!(decoded.log_book().marks.len() as u64, snap.seq / MARK_EVERY);
}
