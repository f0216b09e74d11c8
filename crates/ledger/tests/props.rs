//! Property: whatever random commands (back-dated or not) are accepted, the state never
//! breaks a rule, and folding the log again gives exactly the live state.

mod common;

use eduledger_domain::State;
use eduledger_domain::state::{Membership, Outcome};
use eduledger_domain::values::Date;
use proptest::prelude::*;

const KGS: [&str; 6] = ["甲", "乙", "丙", "丁", "戊", "己"];
const GROUPS: [&str; 2] = ["A集团", "B集团"];
const TEACHERS: [&str; 3] = ["T1", "T2", "T3"];

fn day(offset: u16) -> String {
    let base = Date::parse("2023-09-20").unwrap().naive();
    (base + chrono::Duration::days(offset as i64))
        .format("%Y-%m-%d")
        .to_string()
}

#[derive(Debug, Clone)]
enum Op {
    Join(usize, usize, u16),
    Leave(usize, usize, u16),
    Transfer(usize, usize, u16),
    Lead(usize, usize, u16),
    Rotate(u8, usize, usize, u16, u16),
    End(u8, u16),
    Cancel(u8, u16),
    Activity(u8, usize, Vec<usize>, u16),
    Designate(usize, u16),
    Revoke(usize, u16),
    Correct(u8, u16),
    Retract(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..KGS.len();
    let g = 0..GROUPS.len();
    let t = 0..TEACHERS.len();
    let d = 0u16..1100;
    prop_oneof![
        1 => (k.clone(), g.clone(), d.clone()).prop_map(|(a, b, c)| Op::Join(a, b, c)),
        1 => (k.clone(), g.clone(), d.clone()).prop_map(|(a, b, c)| Op::Leave(a, b, c)),
        1 => (k.clone(), g.clone(), d.clone()).prop_map(|(a, b, c)| Op::Transfer(a, b, c)),
        1 => (g.clone(), k.clone(), d.clone()).prop_map(|(a, b, c)| Op::Lead(a, b, c)),
        3 => (0u8..6, t, k.clone(), d.clone(), 1u16..800).prop_map(|(i, a, b, c, l)| Op::Rotate(i, a, b, c, l)),
        1 => (0u8..6, 0u16..800).prop_map(|(i, o)| Op::End(i, o)),
        1 => (0u8..6, 0u16..800).prop_map(|(i, o)| Op::Cancel(i, o)),
        2 => (0u8..6, g, proptest::collection::vec(k.clone(), 1..3), d.clone()).prop_map(|(i, a, b, c)| Op::Activity(i, a, b, c)),
        1 => (k.clone(), d.clone()).prop_map(|(a, b)| Op::Designate(a, b)),
        1 => (k, d.clone()).prop_map(|(a, b)| Op::Revoke(a, b)),
        1 => (0u8..30, d).prop_map(|(s, o)| Op::Correct(s, o)),
        1 => (0u8..30).prop_map(Op::Retract),
    ]
}

fn line(op: &Op, w: &common::World) -> String {
    match op {
        Op::Join(k, g, d) => format!(
            r#"{{"command":"join_group","kindergarten":"{}","group":"{}","on":"{}"}}"#,
            KGS[*k],
            GROUPS[*g],
            day(*d)
        ),
        Op::Leave(k, g, d) => format!(
            r#"{{"command":"leave_group","kindergarten":"{}","group":"{}","on":"{}"}}"#,
            KGS[*k],
            GROUPS[*g],
            day(*d)
        ),
        Op::Transfer(k, g, d) => format!(
            r#"{{"command":"transfer_kindergarten","kindergarten":"{}","to_group":"{}","on":"{}"}}"#,
            KGS[*k],
            GROUPS[*g],
            day(*d)
        ),
        Op::Lead(g, k, d) => format!(
            r#"{{"command":"change_lead","group":"{}","lead":"{}","on":"{}"}}"#,
            GROUPS[*g],
            KGS[*k],
            day(*d)
        ),
        Op::Rotate(i, t, k, d, l) => format!(
            r#"{{"command":"start_rotation","rotation":"R{i}","staff_no":"{}","host":"{}","mode":"shadowing","start":"{}","planned_end":"{}"}}"#,
            TEACHERS[*t],
            KGS[*k],
            day(*d),
            day(d + l)
        ),
        Op::End(i, o) => {
            let start = w
                .ledger
                .state()
                .rotations()
                .values()
                .find(|r| r.id.as_str() == format!("R{i}"))
                .map(|r| r.start);
            let end = start
                .map(|s| {
                    (s.naive() + chrono::Duration::days(*o as i64))
                        .format("%Y-%m-%d")
                        .to_string()
                })
                .unwrap_or_else(|| day(*o));
            format!(
                r#"{{"command":"end_rotation","rotation":"R{i}","end":"{end}","assessment":"qualified"}}"#
            )
        }
        Op::Cancel(i, o) => format!(
            r#"{{"command":"cancel_rotation","rotation":"R{i}","on":"{}","reason":"x"}}"#,
            day(*o)
        ),
        Op::Activity(i, g, ks, d) => format!(
            r#"{{"command":"hold_activity","activity":"A{i}-{d}","group":"{}","kind":"joint_research","title":"t","on":"{}","kindergartens":[{}]}}"#,
            GROUPS[*g],
            day(*d),
            ks.iter()
                .map(|k| format!("\"{}\"", KGS[*k]))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>()
                .join(",")
        ),
        Op::Designate(k, d) => format!(
            r#"{{"command":"designate_high_quality","kindergarten":"{}","on":"{}"}}"#,
            KGS[*k],
            day(*d)
        ),
        Op::Revoke(k, d) => format!(
            r#"{{"command":"revoke_high_quality","kindergarten":"{}","on":"{}"}}"#,
            KGS[*k],
            day(*d)
        ),
        Op::Correct(s, d) => {
            // re-date whatever membership/activity event sits at that sequence, if any
            let seq = 14 + *s as u64;
            match w.ledger.event_at(seq).ok().flatten().map(|(_, e)| e) {
                Some(eduledger_domain::Event::KindergartenJoined(e)) => format!(
                    r#"{{"command":"correct_event","target":{seq},"reason":"r","replacement":{{"command":"join_group","kindergarten":"{}","group":"{}","on":"{}"}}}}"#,
                    w.ledger.state().kg_label(e.kindergarten),
                    e.group,
                    day(*d)
                ),
                _ => format!(r#"{{"command":"retract_event","target":{seq},"reason":"r"}}"#),
            }
        }
        Op::Retract(s) => format!(
            r#"{{"command":"retract_event","target":{},"reason":"r"}}"#,
            14 + *s as u64
        ),
    }
}

/// The rules, checked independently of the domain's own checker, over the whole history.
fn assert_rules_hold(s: &State) {
    let mut dates: Vec<Date> = (0u16..1300)
        .step_by(7)
        .map(|o| Date::parse(&day(o)).unwrap())
        .collect();
    for k in s.kindergartens().values() {
        let mut cur: Option<&eduledger_domain::values::GroupName> = None;
        for step in k.membership.iter() {
            dates.push(step.on);
            dates.push(step.on.pred());
            match &step.value {
                Membership::Join(_) => {
                    assert!(cur.is_none(), "{} joins while in a group", k.current_name())
                }
                Membership::Leave(g) => assert_eq!(cur, Some(g)),
                Membership::Transfer { from, .. } => assert_eq!(cur, Some(from)),
            }
            cur = step.value.group_after();
        }
    }
    for g in s.groups().values() {
        for &d in &dates {
            if d >= g.founded {
                let lead = g.lead_on(d).unwrap();
                assert_eq!(
                    s.kindergartens()[&lead].group_on(d),
                    Some(&g.name),
                    "lead of {} outside it on {d}",
                    g.name
                );
            }
        }
    }
    for r in s.rotations().values() {
        let home = s.teachers()[&r.staff_no].home.at(r.start).copied().unwrap();
        assert_ne!(home, r.host);
        let hg = s.kindergartens()[&home].group_on(r.start);
        assert!(
            hg.is_some() && hg == s.kindergartens()[&r.host].group_on(r.start),
            "rotation {} crosses groups",
            r.id
        );
        assert!(r.planned_end < r.start.add_months(24).unwrap() || r.exception.is_some());
        if let Some(Outcome::Ended { end, .. }) = &r.outcome {
            assert!(*end >= r.start && *end <= r.planned_end);
        }
    }
    for t in s.teachers().keys() {
        for &d in &dates {
            let n = s
                .rotations()
                .values()
                .filter(|r| &r.staff_no == t && r.active_on(d))
                .count();
            assert!(n <= 1, "teacher {t} on {n} rotations on {d}");
        }
    }
    for a in s.activities().values() {
        for k in &a.kindergartens {
            assert_eq!(
                s.kindergartens()[k].group_on(a.on),
                Some(&a.group),
                "activity {} lists an outsider",
                a.id
            );
        }
    }
    for k in s.kindergartens().values() {
        let mut on = false;
        for step in k.high_quality.iter() {
            assert_ne!(step.value.0, on);
            on = step.value.0;
        }
    }
}

/// Every entity's audit trail read through the index is the trail a scan of the whole log
/// finds, as known now and at a cut.
fn assert_trails_agree(ledger: &eduledger_ledger::Ledger) {
    use eduledger_domain::EntityRef;
    use eduledger_domain::values::{GroupName, RecordId, StaffNo};
    let s = ledger.state();
    let mut entities: Vec<EntityRef> = vec![];
    entities.extend(
        s.kindergartens()
            .keys()
            .map(|k| EntityRef::Kindergarten(*k)),
    );
    entities.extend(
        GROUPS
            .iter()
            .map(|g| EntityRef::Group(GroupName::new(g).unwrap())),
    );
    entities.extend(
        TEACHERS
            .iter()
            .map(|t| EntityRef::Teacher(StaffNo::new(t).unwrap())),
    );
    entities.extend((0..6).map(|i| EntityRef::Rotation(RecordId::new(format!("R{i}")).unwrap())));
    entities.extend(
        s.activities()
            .keys()
            .map(|a| EntityRef::Activity(a.clone())),
    );
    let head = s.head();
    let cuts = [None, Some(head / 2), Some(head.saturating_sub(3))];
    // every read through the index before any scan (a scan checks the whole chain)
    let mut indexed = vec![];
    for e in &entities {
        for cut in cuts {
            indexed.push(serde_json::to_string(&ledger.audit(e, cut).unwrap()).unwrap());
        }
    }
    let mut n = 0;
    for e in &entities {
        for cut in cuts {
            let scanned = serde_json::to_string(&ledger.audit_by_scan(e, cut).unwrap()).unwrap();
            assert_eq!(indexed[n], scanned, "trail of {e:?} at {cut:?}");
            n += 1;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, .. ProptestConfig::default() })]
    #[test]
    fn accepted_histories_never_break_a_rule_and_replay_to_the_same_state(ops in proptest::collection::vec(op(), 1..40)) {
        let mut w = common::two_groups();
        let mut accepted = 0;
        for op in &ops {
            let l = line(op, &w);
            if w.when(&l).is_ok() {
                accepted += 1;
            }
        }
        if std::env::var("PROPS_DEBUG").is_ok() { eprintln!("accepted {accepted} of {}", ops.len()); }
        assert_rules_hold(w.ledger.state());
        assert_trails_agree(&w.ledger);
        let live = w.ledger.state().clone();
        let w = w.reopen();
        prop_assert_eq!(w.ledger.state(), &live, "replay differs after {} accepted commands", accepted);
        assert_trails_agree(&w.ledger);
        // and every prefix rebuilt as known then also obeys the rules
        let head = w.ledger.head().unwrap().seq;
        for cut in [head / 2, head.saturating_sub(1)] {
            let s = w.ledger.state_at(Some(cut)).unwrap();
            assert_rules_hold(&s);
        }
    }
}

/// A new ledger holding only the first `n` events of `w`'s log (via export and import).
fn prefix_ledger(w: &common::World, n: u64) -> (tempfile::TempDir, eduledger_ledger::Ledger) {
    let mut out = Vec::new();
    w.ledger
        .store()
        .export(&mut out, &|_| None, &mut |_| {})
        .unwrap();
    let text = String::from_utf8(out).unwrap();
    let prefix: Vec<&str> = text.lines().take(n as usize).collect();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("prefix");
    eduledger_store::import_new(
        &target,
        &mut prefix.join("\n").as_bytes(),
        common::clock(),
        &mut |_| {},
    )
    .unwrap();
    let ledger =
        eduledger_ledger::Ledger::open_with_snapshots(&target, common::clock(), 0).unwrap();
    (dir, ledger)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, .. ProptestConfig::default() })]
    #[test]
    fn known_at_equals_a_rebuild_of_the_prefix_and_snapshots_change_nothing(ops in proptest::collection::vec(op(), 1..30), cut_frac in 0.0f64..1.0) {
        let mut w = common::two_groups();
        for op in &ops {
            let l = line(op, &w);
            let _ = w.when(&l);
        }
        let head = w.ledger.head().unwrap().seq;
        let cut = ((head as f64) * cut_frac).max(1.0) as u64;
        // known_at = seq:N is the state a ledger holding only the first N events has
        let as_known = w.ledger.state_at(Some(cut)).unwrap();
        let (_d, prefix) = prefix_ledger(&w, cut);
        prop_assert_eq!(&*as_known, prefix.state());
        // snapshots every 3 events give the same answers, now and at every cut
        let live = w.ledger.state().clone();
        let common::World { dir: keep, ledger } = w;
        drop(ledger);
        let dir = keep.path().to_path_buf();
        let snap = eduledger_ledger::Ledger::open_with_snapshots(&dir, common::clock(), 3).unwrap();
        prop_assert!(!snap.store().snapshot_seqs().unwrap().is_empty());
        prop_assert_eq!(snap.state(), &live);
        drop(snap);
        let reopened = eduledger_ledger::Ledger::open_with_snapshots(&dir, common::clock(), 3).unwrap();
        prop_assert_eq!(reopened.state(), &live);
        for c in [1, cut, head.saturating_sub(1).max(1)] {
            let with = reopened.state_at(Some(c)).unwrap();
            // against a fold without snapshots, of a copy holding only the first c events
            let mut out = Vec::new();
            reopened.store().export(&mut out, &|_| None, &mut |_| {}).unwrap();
            let text = String::from_utf8(out).unwrap();
            let lines: Vec<&str> = text.lines().take(c as usize).collect();
            let d = tempfile::tempdir().unwrap();
            eduledger_store::import_new(&d.path().join("p"), &mut lines.join("\n").as_bytes(), common::clock(), &mut |_| {}).unwrap();
            let plain = eduledger_ledger::Ledger::open_with_snapshots(d.path().join("p"), common::clock(), 0).unwrap();
            prop_assert_eq!(&*with, plain.state(), "cut {}", c);
        }
    }
}
