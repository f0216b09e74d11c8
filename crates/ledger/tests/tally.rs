//! Tally scenarios from POINTS.md, on a real ledger.

mod common;

use eduledger_domain::points::RuleSet;
use eduledger_projection::tally::{Tally, tally};

const RULES: &str = r#"year = 2024
[[rule]]
id = "hq"
fact = "high_quality_designated"
points = 10
[[rule]]
id = "rotation"
fact = "rotation_completed"
points = 4
[[rule]]
id = "project"
fact = "project_completed"
points = 7
[[rule]]
id = "research"
fact = "activity_held"
match = { activity_kind = "joint_research" }
points = 2
cap = 5
"#;

fn run(w: &common::World, cut: Option<u64>) -> Tally {
    let state = w.ledger.state_at(cut).unwrap();
    tally(
        &state,
        &RuleSet::parse(RULES).unwrap(),
        2024,
        eduledger_domain::values::Date::MAX,
        true,
        &|_| None,
    )
}

fn total(t: &Tally, group: &str) -> i64 {
    t.groups
        .iter()
        .find(|g| g.group == group)
        .map(|g| g.total)
        .unwrap_or(0)
}

#[test]
fn a_kindergarten_that_changes_group_mid_year_scores_for_each_group_on_its_dates() {
    let mut w = common::two_groups();
    // 丙 is in A until 2024-06-30 and in B from 2024-07-01
    w.accepted(r#"{"command":"designate_high_quality","kindergarten":"丙","on":"2024-03-01"}"#);
    w.accepted(r#"{"command":"transfer_kindergarten","kindergarten":"丙","to_group":"B集团","on":"2024-07-01"}"#);
    // T3 (home 丁, in B) rotates into 丙 once it is in B; the rotation scores for the host's group on its last day
    w.accepted(r#"{"command":"start_rotation","rotation":"R1","staff_no":"T3","host":"丙","mode":"shadowing","start":"2024-08-01","planned_end":"2024-12-31"}"#);
    w.accepted(
        r#"{"command":"end_rotation","rotation":"R1","end":"2024-12-31","assessment":"qualified"}"#,
    );
    // designation on 2024-03-01 counts for A even though 丙 is in B today
    let t = run(&w, None);
    assert_eq!(total(&t, "A集团"), 10);
    assert_eq!(total(&t, "B集团"), 4);
    assert!(t.unattributed.is_empty());
}

#[test]
fn a_fact_outside_every_group_is_unattributed() {
    let mut w = common::two_groups();
    w.accepted(r#"{"command":"designate_high_quality","kindergarten":"己","on":"2024-03-01"}"#);
    let t = run(&w, None);
    assert_eq!(t.unattributed.len(), 1);
    assert_eq!(t.groups.iter().map(|g| g.total).sum::<i64>(), 0);
}

#[test]
fn a_retracted_completion_scores_nothing_but_still_did_as_known_before() {
    let mut w = common::two_groups();
    w.accepted(r#"{"command":"propose_project","project":"P1","group":"A集团","kind":"key_project","title":"t","year":2024,"on":"2024-01-10"}"#);
    w.accepted(
        r#"{"command":"approve_project","project":"P1","on":"2024-02-01","budget_fen":100}"#,
    );
    let done = w.accepted(
        r#"{"command":"complete_project","project":"P1","on":"2024-11-01","rating":"excellent"}"#,
    );
    assert_eq!(total(&run(&w, None), "A集团"), 7);
    let retraction = w.accepted(&format!(
        r#"{{"command":"retract_event","target":{done},"reason":"未通过验收"}}"#
    ));
    assert_eq!(total(&run(&w, None), "A集团"), 0);
    assert_eq!(total(&run(&w, Some(retraction - 1)), "A集团"), 7);
}

#[test]
fn a_correction_that_moves_an_activity_into_next_year_moves_its_points() {
    let mut w = common::two_groups();
    let seq = w.accepted(r#"{"command":"hold_activity","activity":"A1","group":"A集团","kind":"joint_research","title":"t","on":"2024-12-30","kindergartens":["甲"]}"#);
    assert_eq!(total(&run(&w, None), "A集团"), 2);
    let fix = w.accepted(&format!(
        r#"{{"command":"correct_event","target":{seq},"reason":"日期","replacement":{{"command":"hold_activity","activity":"A1","group":"A集团","kind":"joint_research","title":"t","on":"2025-01-06","kindergartens":["甲"]}}}}"#
    ));
    assert_eq!(total(&run(&w, None), "A集团"), 0);
    assert_eq!(
        total(&run(&w, Some(fix - 1)), "A集团"),
        2,
        "as known before the correction"
    );
    let t2025 = tally(
        w.ledger.state(),
        &RuleSet::parse(&RULES.replace("year = 2024", "year = 2025")).unwrap(),
        2025,
        eduledger_domain::values::Date::MAX,
        false,
        &|_| None,
    );
    assert_eq!(total(&t2025, "A集团"), 2);
}

#[test]
fn a_cap_cuts_exactly_the_later_facts_in_date_order() {
    let mut w = common::two_groups();
    // recorded out of date order: the cap must follow the dates, not the recording
    for (id, on) in [
        ("A4", "2024-10-01"),
        ("A1", "2024-03-01"),
        ("A3", "2024-09-01"),
        ("A2", "2024-05-01"),
    ] {
        w.accepted(&format!(
            r#"{{"command":"hold_activity","activity":"{id}","group":"A集团","kind":"joint_research","title":"t","on":"{on}","kindergartens":["甲"]}}"#
        ));
    }
    let t = run(&w, None);
    let g = t.groups.iter().find(|g| g.group == "A集团").unwrap();
    assert_eq!(g.total, 5);
    let lines: Vec<(String, i64, bool)> = g
        .lines
        .as_ref()
        .unwrap()
        .iter()
        .map(|l| (l.subject.clone(), l.points, l.capped))
        .collect();
    assert_eq!(
        lines,
        vec![
            ("activity A1".into(), 2, false),
            ("activity A2".into(), 2, false),
            ("activity A3".into(), 1, true),
            ("activity A4".into(), 0, true),
        ]
    );
}

#[test]
fn ranks_are_dense_and_ties_are_listed_by_name() {
    let mut w = common::two_groups();
    w.accepted(r#"{"command":"hold_activity","activity":"X","group":"B集团","kind":"joint_research","title":"t","on":"2024-03-01","kindergartens":["丁"]}"#);
    w.accepted(r#"{"command":"hold_activity","activity":"Y","group":"A集团","kind":"joint_research","title":"t","on":"2024-03-01","kindergartens":["甲"]}"#);
    let t = run(&w, None);
    let ranks: Vec<(&str, usize)> = t
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.rank))
        .collect();
    assert_eq!(ranks, vec![("A集团", 1), ("B集团", 1)]);
}

#[test]
fn a_ledger_opened_in_the_past_holds_that_prefix_and_cannot_record() {
    let mut w = common::two_groups();
    let seq =
        w.accepted(r#"{"command":"designate_high_quality","kindergarten":"丙","on":"2024-03-01"}"#);
    w.accepted(r#"{"command":"transfer_kindergarten","kindergarten":"丙","to_group":"B集团","on":"2024-07-01"}"#);
    let expected = w.ledger.state_at(Some(seq)).unwrap();
    let common::World { dir, ledger } = w;
    drop(ledger);
    let mut past =
        eduledger_ledger::Ledger::open_as_of(dir.path(), common::clock(), |_| Ok(Some(seq)))
            .unwrap();
    assert_eq!(past.state(), &*expected);
    assert_eq!(&*past.state_at(Some(seq)).unwrap(), &*expected);
    let sub = eduledger_domain::parse_submission(
        r#"{"command":"award_title","staff_no":"T1","title":"backbone","on":"2024-01-01"}"#,
    )
    .unwrap();
    assert!(matches!(
        past.execute(&[sub], "t"),
        Err(eduledger_ledger::LedgerError::Input(_))
    ));
    // asking for the present gives the present
    drop(past);
    let now =
        eduledger_ledger::Ledger::open_as_of(dir.path(), common::clock(), |_| Ok(None)).unwrap();
    assert_eq!(now.state().head(), seq + 1);
}

#[test]
fn ranks_are_dense_a_tie_then_the_next_group_is_second() {
    let mut w = common::two_groups();
    w.accepted(
        r#"{"command":"found_group","group":"C集团","kind":"group","lead":"己","on":"2023-09-20"}"#,
    );
    w.accepted(r#"{"command":"designate_high_quality","kindergarten":"甲","on":"2024-03-01"}"#);
    w.accepted(r#"{"command":"designate_high_quality","kindergarten":"丁","on":"2024-03-01"}"#);
    w.accepted(r#"{"command":"hold_activity","activity":"A1","group":"C集团","kind":"joint_research","title":"t","on":"2024-04-01","kindergartens":["己"]}"#);
    let t = run(&w, None);
    let ranks: Vec<(&str, i64, u32)> = t
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.total, g.rank as u32))
        .collect();
    // competition ranking would give C集团 rank 3
    assert_eq!(
        ranks,
        vec![("A集团", 10, 1), ("B集团", 10, 1), ("C集团", 2, 2)]
    );
}

#[test]
fn a_rule_worth_more_than_the_bound_is_refused_with_its_line() {
    let rules = "year = 2024\n[[rule]]\nid = \"huge\"\nfact = \"high_quality_designated\"\npoints = 9223372036854775807\n";
    let e = RuleSet::parse(rules).unwrap_err().to_string();
    assert!(e.contains("line 2"), "{e}");
    assert!(e.contains("beyond ±1000000"), "{e}");
    let neg = rules.replace("9223372036854775807", "-9223372036854775808");
    assert!(RuleSet::parse(&neg).is_err());
}
