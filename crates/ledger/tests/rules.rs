//! Every rule of DOMAIN.md: one accepted and one refused case each. A refused command must
//! name the rule (exact variant) and leave the ledger's head unchanged (`World::when`).

mod common;

use common::*;
use eduledger_domain::DomainError as E;

const ROT: &str = r#"{"command":"start_rotation","rotation":"R1","staff_no":"T1","host":"甲","mode":"temporary_post","start":"2024-09-01","planned_end":"2025-06-30"}"#;

#[test]
fn a_kindergarten_name_is_registered_once() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"register_kindergarten","kindergarten":"新园","category":"new_built","ownership":"public","on":"2024-01-01"}"#);
    let e = w.refused(r#"{"command":"register_kindergarten","kindergarten":"乙","category":"new_built","ownership":"public","on":"2024-01-01"}"#);
    assert!(
        matches!(
            e,
            E::AlreadyExists {
                kind: "kindergarten name",
                ..
            }
        ),
        "{e}"
    );
}

#[test]
fn a_kindergarten_is_in_one_group_at_a_time() {
    let mut w = two_groups();
    let e = w.refused(
        r#"{"command":"join_group","kindergarten":"乙","group":"B集团","on":"2024-03-01"}"#,
    );
    assert!(matches!(e, E::AlreadyInGroup { .. }), "{e}");
    w.accepted(r#"{"command":"join_group","kindergarten":"己","group":"B集团","on":"2024-03-01"}"#);
    w.accepted(
        r#"{"command":"leave_group","kindergarten":"乙","group":"A集团","on":"2024-03-01"}"#,
    );
    w.accepted(r#"{"command":"join_group","kindergarten":"乙","group":"B集团","on":"2024-03-01"}"#);
}

#[test]
fn a_back_dated_join_that_would_overlap_a_later_membership_is_refused() {
    let mut w = two_groups();
    // 己 joins B from 2024-03-01; a back-dated join to A from 2024-01-01 would leave it in two groups
    w.accepted(r#"{"command":"join_group","kindergarten":"己","group":"B集团","on":"2024-03-01"}"#);
    let e = w.refused(
        r#"{"command":"join_group","kindergarten":"己","group":"A集团","on":"2024-01-01"}"#,
    );
    assert!(matches!(e, E::MembershipHistory { .. }), "{e}");
}

#[test]
fn the_lead_cannot_leave_before_a_change_of_lead() {
    let mut w = two_groups();
    let e = w.refused(
        r#"{"command":"leave_group","kindergarten":"甲","group":"A集团","on":"2024-07-01"}"#,
    );
    assert!(matches!(e, E::LeadCannotLeave { .. }), "{e}");
    w.accepted(r#"{"command":"change_lead","group":"A集团","lead":"乙","on":"2024-07-01"}"#);
    w.accepted(
        r#"{"command":"leave_group","kindergarten":"甲","group":"A集团","on":"2024-07-01"}"#,
    );
}

#[test]
fn a_new_lead_must_be_a_member() {
    let mut w = two_groups();
    let e = w.refused(r#"{"command":"change_lead","group":"A集团","lead":"戊","on":"2024-07-01"}"#);
    assert!(matches!(e, E::LeadNotMember { .. }), "{e}");
}

#[test]
fn a_back_dated_leave_of_a_later_lead_is_refused() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"change_lead","group":"A集团","lead":"乙","on":"2024-07-01"}"#);
    let e = w.refused(
        r#"{"command":"leave_group","kindergarten":"乙","group":"A集团","on":"2024-09-01"}"#,
    );
    assert!(matches!(e, E::LeadCannotLeave { .. }), "{e}");
}

#[test]
fn a_transfer_leaves_and_joins_on_one_day() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"transfer_kindergarten","kindergarten":"丙","to_group":"B集团","on":"2024-07-01"}"#);
    let s = w.ledger.state();
    let k = s.kg_by_name("丙").unwrap();
    let d = |t: &str| eduledger_domain::values::Date::parse(t).unwrap();
    assert_eq!(k.group_on(d("2024-06-30")).unwrap().as_str(), "A集团");
    assert_eq!(k.group_on(d("2024-07-01")).unwrap().as_str(), "B集团");
    let e = w.refused(r#"{"command":"transfer_kindergarten","kindergarten":"丙","to_group":"B集团","on":"2024-08-01"}"#);
    assert!(matches!(e, E::AlreadyInGroup { .. }), "{e}");
}

#[test]
fn a_rotation_stays_within_one_group() {
    let mut w = two_groups();
    w.accepted(ROT);
    let e = w.refused(r#"{"command":"start_rotation","rotation":"R2","staff_no":"T3","host":"甲","mode":"shadowing","start":"2024-09-01","planned_end":"2025-06-30"}"#);
    assert!(matches!(e, E::RotationOutsideGroup { .. }), "{e}");
}

#[test]
fn a_rotation_host_is_not_the_home() {
    let mut w = two_groups();
    let e = w.refused(r#"{"command":"start_rotation","rotation":"R2","staff_no":"T1","host":"乙","mode":"shadowing","start":"2024-09-01","planned_end":"2025-06-30"}"#);
    assert!(matches!(e, E::RotationSameKindergarten { .. }), "{e}");
}

#[test]
fn a_rotation_lasts_at_most_two_years_without_an_exception() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"start_rotation","rotation":"R1","staff_no":"T1","host":"甲","mode":"temporary_post","start":"2024-09-01","planned_end":"2026-08-31"}"#);
    let e = w.refused(r#"{"command":"start_rotation","rotation":"R2","staff_no":"T2","host":"乙","mode":"demonstration_teaching","start":"2024-09-01","planned_end":"2026-09-01"}"#);
    assert!(matches!(e, E::RotationTooLong { .. }), "{e}");
    assert!(e.to_string().contains("24 months and 1 day"), "{e}");
    assert!(e.to_string().contains("2026-08-31"), "{e}");
    w.accepted(r#"{"command":"start_rotation","rotation":"R2","staff_no":"T2","host":"乙","mode":"demonstration_teaching","start":"2024-09-01","planned_end":"2026-12-31","exception":{"approved_by":"托幼办","reference":"青教〔2024〕9号","reason":"项目延续"}}"#);
}

#[test]
fn an_extension_obeys_the_two_year_rule_on_the_total() {
    let mut w = two_groups();
    w.accepted(ROT);
    w.accepted(r#"{"command":"extend_rotation","rotation":"R1","planned_end":"2026-08-31","on":"2025-06-01"}"#);
    let e =
        w.refused(r#"{"command":"extend_rotation","rotation":"R1","planned_end":"2026-09-30","on":"2025-06-01"}"#);
    assert!(matches!(e, E::RotationTooLong { .. }), "{e}");
}

#[test]
fn a_teacher_has_one_rotation_at_a_time() {
    let mut w = two_groups();
    w.accepted(ROT);
    let e = w.refused(r#"{"command":"start_rotation","rotation":"R2","staff_no":"T1","host":"丙","mode":"shadowing","start":"2025-06-30","planned_end":"2025-12-31"}"#);
    assert!(matches!(e, E::RotationOverlap { .. }), "{e}");
    w.accepted(r#"{"command":"start_rotation","rotation":"R2","staff_no":"T1","host":"丙","mode":"shadowing","start":"2025-07-01","planned_end":"2025-12-31"}"#);
}

#[test]
fn a_rotation_ends_within_its_plan_and_only_once() {
    let mut w = two_groups();
    w.accepted(ROT);
    let e = w.refused(
        r#"{"command":"end_rotation","rotation":"R1","end":"2025-07-31","assessment":"qualified"}"#,
    );
    assert!(matches!(e, E::InvalidField { .. }), "{e}");
    w.accepted(
        r#"{"command":"end_rotation","rotation":"R1","end":"2025-06-30","assessment":"excellent"}"#,
    );
    let e = w
        .refused(r#"{"command":"cancel_rotation","rotation":"R1","on":"2025-01-01","reason":"x"}"#);
    assert!(matches!(e, E::RotationState { .. }), "{e}");
}

#[test]
fn a_back_dated_leave_that_breaks_a_later_rotation_is_refused() {
    let mut w = two_groups();
    w.accepted(ROT);
    let e = w.refused(
        r#"{"command":"leave_group","kindergarten":"乙","group":"A集团","on":"2024-03-01"}"#,
    );
    assert!(matches!(e, E::RotationOutsideGroup { .. }), "{e}");
}

#[test]
fn a_back_dated_leave_that_breaks_a_later_activity_is_refused() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"hold_activity","activity":"A1","group":"A集团","kind":"joint_research","title":"主题教研","on":"2024-03-12","kindergartens":["甲","丙"]}"#);
    let e = w.refused(
        r#"{"command":"leave_group","kindergarten":"丙","group":"A集团","on":"2024-01-01"}"#,
    );
    assert!(matches!(e, E::ActivityOutsideGroup { .. }), "{e}");
    w.accepted(
        r#"{"command":"leave_group","kindergarten":"丙","group":"A集团","on":"2024-03-13"}"#,
    );
}

#[test]
fn an_activity_lists_only_members_of_its_group() {
    let mut w = two_groups();
    let e = w.refused(r#"{"command":"hold_activity","activity":"A1","group":"A集团","kind":"joint_research","title":"t","on":"2024-03-12","kindergartens":["甲","戊"]}"#);
    assert!(matches!(e, E::ActivityOutsideGroup { .. }), "{e}");
}

#[test]
fn nothing_refers_to_a_kindergarten_before_it_is_registered() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"register_kindergarten","kindergarten":"新园","category":"new_built","ownership":"public","on":"2024-09-01"}"#);
    let e = w.refused(
        r#"{"command":"join_group","kindergarten":"新园","group":"A集团","on":"2024-08-31"}"#,
    );
    assert!(matches!(e, E::OutsideLifetime { .. }), "{e}");
    w.accepted(
        r#"{"command":"join_group","kindergarten":"新园","group":"A集团","on":"2024-09-01"}"#,
    );
}

#[test]
fn nothing_refers_to_a_teacher_after_leaving_service() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"leave_service","staff_no":"T1","on":"2024-08-01"}"#);
    let e = w.refused(ROT);
    assert!(matches!(e, E::OutsideLifetime { .. }), "{e}");
}

#[test]
fn a_teacher_cannot_leave_service_during_a_rotation() {
    let mut w = two_groups();
    w.accepted(ROT);
    let e = w.refused(r#"{"command":"leave_service","staff_no":"T1","on":"2025-01-01"}"#);
    assert!(matches!(e, E::OutsideLifetime { .. }), "{e}");
    w.accepted(r#"{"command":"leave_service","staff_no":"T1","on":"2025-07-01"}"#);
}

#[test]
fn only_a_group_training_applies_for_recognition_and_once() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"hold_training","training":"TR1","title":"区级培训","tier":"district","organizer":"区教师进修学院","start":"2024-03-01","end":"2024-03-02","hours":6}"#);
    let e = w.refused(r#"{"command":"apply_recognition","training":"TR1","on":"2024-03-10"}"#);
    assert!(matches!(e, E::Recognition { .. }), "{e}");
    w.accepted(r#"{"command":"hold_training","training":"TR2","title":"集团培训","tier":"group","organizer":"A集团","start":"2024-03-01","end":"2024-03-02","hours":4.5}"#);
    let e = w.refused(r#"{"command":"decide_recognition","training":"TR2","granted":true,"on":"2024-03-20","reviewer":"区教育局"}"#);
    assert!(matches!(e, E::Recognition { .. }), "{e}");
    w.accepted(r#"{"command":"apply_recognition","training":"TR2","on":"2024-03-10"}"#);
    let e = w.refused(r#"{"command":"apply_recognition","training":"TR2","on":"2024-03-11"}"#);
    assert!(matches!(e, E::Recognition { .. }), "{e}");
    w.accepted(r#"{"command":"decide_recognition","training":"TR2","granted":true,"on":"2024-03-20","reviewer":"区教育局"}"#);
    let e = w.refused(r#"{"command":"decide_recognition","training":"TR2","granted":false,"on":"2024-03-21","reviewer":"区教育局"}"#);
    assert!(matches!(e, E::Recognition { .. }), "{e}");
}

#[test]
fn a_training_organiser_fits_its_tier() {
    let mut w = two_groups();
    let e = w.refused(r#"{"command":"hold_training","training":"TR1","title":"t","tier":"group","organizer":"C集团","start":"2024-03-01","end":"2024-03-02","hours":6}"#);
    assert!(matches!(e, E::Unknown { kind: "group", .. }), "{e}");
    w.accepted(r#"{"command":"hold_training","training":"TR1","title":"t","tier":"kindergarten","organizer":"乙","start":"2024-03-01","end":"2024-03-02","hours":2}"#);
}

#[test]
fn high_quality_is_designated_once_and_revoked_only_if_held() {
    let mut w = two_groups();
    let e = w.refused(r#"{"command":"revoke_high_quality","kindergarten":"乙","on":"2024-01-01"}"#);
    assert!(matches!(e, E::HighQuality { .. }), "{e}");
    w.accepted(r#"{"command":"designate_high_quality","kindergarten":"乙","on":"2024-06-01"}"#);
    let e =
        w.refused(r#"{"command":"designate_high_quality","kindergarten":"乙","on":"2024-09-01"}"#);
    assert!(matches!(e, E::HighQuality { .. }), "{e}");
}

#[test]
fn a_project_goes_proposed_approved_completed() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"propose_project","project":"P1","group":"A集团","kind":"key_project","title":"课程","year":2024,"on":"2024-01-10"}"#);
    let e = w.refused(
        r#"{"command":"complete_project","project":"P1","on":"2024-12-01","rating":"excellent"}"#,
    );
    assert!(matches!(e, E::ProjectState { .. }), "{e}");
    w.accepted(
        r#"{"command":"approve_project","project":"P1","on":"2024-02-01","budget_fen":5000000}"#,
    );
    let e = w.refused(
        r#"{"command":"complete_project","project":"P1","on":"2024-01-01","rating":"excellent"}"#,
    );
    assert!(matches!(e, E::DateOrder { .. }), "{e}");
    w.accepted(
        r#"{"command":"complete_project","project":"P1","on":"2024-12-01","rating":"excellent"}"#,
    );
}

#[test]
fn a_principal_is_ended_only_if_appointed() {
    let mut w = two_groups();
    let e = w.refused(r#"{"command":"end_principal","kindergarten":"甲","on":"2024-01-01"}"#);
    assert!(matches!(e, E::NoPrincipal { .. }), "{e}");
    w.accepted(
        r#"{"command":"appoint_principal","kindergarten":"甲","staff_no":"T2","on":"2023-09-20"}"#,
    );
    w.accepted(r#"{"command":"end_principal","kindergarten":"甲","on":"2024-01-01"}"#);
}

#[test]
fn secretariat_is_dismissed_only_during_a_term() {
    let mut w = two_groups();
    let e = w.refused(
        r#"{"command":"dismiss_secretariat","group":"A集团","staff_no":"T2","on":"2024-01-01"}"#,
    );
    assert!(matches!(e, E::NoSecretariatTerm { .. }), "{e}");
    w.accepted(r#"{"command":"appoint_secretariat","group":"A集团","staff_no":"T2","role":"秘书长","from":"2023-09-20","to":"2025-09-19"}"#);
    w.accepted(
        r#"{"command":"dismiss_secretariat","group":"A集团","staff_no":"T2","on":"2024-01-01"}"#,
    );
}

#[test]
fn points_rules_are_checked_at_adoption() {
    let mut w = two_groups();
    let e = w.refused(r#"{"command":"adopt_points_rules","year":2024,"rules":"year = 2024\n[[rule]]\nid = \"x\"\nfact = \"party\"\npoints = 1\n","on":"2024-01-01"}"#);
    assert!(matches!(e, E::Rules { line: 4, .. }), "{e}");
    let e = w.refused(
        r#"{"command":"adopt_points_rules","year":2025,"rules":"year = 2024\n","on":"2024-01-01"}"#,
    );
    assert!(matches!(e, E::Rules { .. }), "{e}");
    w.accepted(r#"{"command":"adopt_points_rules","year":2024,"rules":"year = 2024\n[[rule]]\nid = \"x\"\nfact = \"activity_held\"\npoints = 1\n","on":"2024-01-01"}"#);
}

#[test]
fn an_unknown_name_suggests_the_closest() {
    let mut w = two_groups();
    let e = w.refused(
        r#"{"command":"join_group","kindergarten":"乙乙","group":"A集团","on":"2024-01-01"}"#,
    );
    match e {
        E::Unknown {
            kind: "kindergarten",
            suggestions,
            ..
        } => assert!(suggestions.contains(&"乙".to_string())),
        other => panic!("{other}"),
    }
}

#[test]
fn a_correction_that_breaks_the_history_is_refused() {
    let mut w = two_groups();
    w.accepted(ROT);
    let seq = w.accepted(r#"{"command":"start_rotation","rotation":"R2","staff_no":"T1","host":"丙","mode":"shadowing","start":"2025-07-01","planned_end":"2025-12-31"}"#);
    let bad = format!(
        r#"{{"command":"correct_event","target":{seq},"reason":"日期有误","replacement":{{"command":"start_rotation","rotation":"R2","staff_no":"T1","host":"丙","mode":"shadowing","start":"2025-06-01","planned_end":"2025-12-31"}}}}"#
    );
    let e = w.refused(&bad);
    assert!(matches!(e, E::CorrectionBreaksHistory { .. }), "{e}");
    let good = bad.replace("2025-06-01", "2025-08-01");
    w.accepted(&good);
    let d = eduledger_domain::values::Date::parse("2025-08-01").unwrap();
    assert_eq!(
        w.ledger
            .state()
            .rotations()
            .values()
            .find(|r| r.id.as_str() == "R2")
            .unwrap()
            .start,
        d
    );
}

#[test]
fn a_correction_must_be_the_same_kind_on_the_same_entity() {
    let mut w = two_groups();
    let seq = w.accepted(ROT);
    let e = w.refused(&format!(
        r#"{{"command":"correct_event","target":{seq},"reason":"x","replacement":{{"command":"award_title","staff_no":"T1","title":"backbone","on":"2024-01-01"}}}}"#
    ));
    assert!(matches!(e, E::CorrectionTarget { .. }), "{e}");
}

#[test]
fn a_retraction_that_leaves_references_dangling_is_refused() {
    let mut w = two_groups();
    let seq = w.accepted(r#"{"command":"register_kindergarten","kindergarten":"新园","category":"new_built","ownership":"public","on":"2024-01-01"}"#);
    w.accepted(
        r#"{"command":"join_group","kindergarten":"新园","group":"A集团","on":"2024-01-01"}"#,
    );
    let e = w.refused(&format!(
        r#"{{"command":"retract_event","target":{seq},"reason":"录错"}}"#
    ));
    assert!(matches!(e, E::CorrectionBreaksHistory { .. }), "{e}");
}

#[test]
fn a_retracted_rotation_frees_the_teacher() {
    let mut w = two_groups();
    let seq = w.accepted(ROT);
    w.accepted(&format!(
        r#"{{"command":"retract_event","target":{seq},"reason":"录错"}}"#
    ));
    assert!(w.ledger.state().rotations().is_empty());
    w.accepted(ROT.replace("R1", "R9").as_str());
    let w = w.reopen();
    assert_eq!(w.ledger.state().rotations().len(), 1);
}

#[test]
fn a_batch_is_all_or_nothing() {
    let mut w = two_groups();
    let head = w.ledger.head().unwrap();
    let subs: Vec<_> = [
        r#"{"command":"award_title","staff_no":"T1","title":"backbone","on":"2024-01-01"}"#,
        r#"{"command":"award_title","staff_no":"T404","title":"backbone","on":"2024-01-01"}"#,
    ]
    .iter()
    .map(|l| eduledger_domain::parse_submission(l).unwrap())
    .collect();
    let err = w.ledger.execute(&subs, "t").unwrap_err();
    assert!(
        matches!(err, eduledger_ledger::LedgerError::Batch { number: 2, .. }),
        "{err}"
    );
    assert_eq!(w.ledger.head().unwrap(), head);
    assert!(
        w.ledger
            .state()
            .teachers()
            .values()
            .all(|t| t.titles.is_empty())
    );
}

#[test]
fn a_teacher_is_recorded_once_per_training() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"hold_training","training":"TR1","title":"t","tier":"district","organizer":"区教师进修学院","start":"2024-03-01","end":"2024-03-02","hours":6}"#);
    w.accepted(r#"{"command":"record_attendance","training":"TR1","staff_nos":["T1","T2"]}"#);
    let e =
        w.refused(r#"{"command":"record_attendance","training":"TR1","staff_nos":["T3","T1"]}"#);
    assert!(matches!(e, E::InvalidField { .. }), "{e}");
    let e =
        w.refused(r#"{"command":"record_attendance","training":"TR1","staff_nos":["T3","T3"]}"#);
    assert!(matches!(e, E::InvalidField { .. }), "{e}");
    w.accepted(r#"{"command":"record_attendance","training":"TR1","staff_nos":["T3"]}"#);
    assert_eq!(
        w.ledger
            .state()
            .trainings()
            .values()
            .next()
            .unwrap()
            .attendees,
        3
    );
}

// ---- Rules over whole histories (issue 9): each of these was accepted by v0.1.

const LEAVE_EARLY: &str = r#"{"command":"leave_service","staff_no":"T1","on":"2024-01-01"}"#;

#[test]
fn a_back_dated_leave_is_refused_while_a_principal_post_runs_past_it() {
    let mut w = two_groups();
    w.accepted(
        r#"{"command":"appoint_principal","kindergarten":"乙","staff_no":"T1","on":"2023-10-01"}"#,
    );
    let e = w.refused(LEAVE_EARLY);
    assert!(e.to_string().contains("principal's post"), "{e}");
    // ended the day before: the leave stands
    w.accepted(r#"{"command":"end_principal","kindergarten":"乙","on":"2024-01-01"}"#);
    w.accepted(LEAVE_EARLY);
}

#[test]
fn a_back_dated_leave_is_refused_while_a_secretariat_term_runs_past_it() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"appoint_secretariat","group":"A集团","staff_no":"T1","role":"秘书","from":"2023-10-01","to":"2025-08-31"}"#);
    let e = w.refused(LEAVE_EARLY);
    assert!(e.to_string().contains("secretariat term"), "{e}");
}

#[test]
fn a_back_dated_leave_is_refused_after_a_later_training_or_title() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"hold_training","training":"TR1","title":"区级培训","tier":"district","organizer":"区教师进修学院","start":"2024-03-01","end":"2024-03-02","hours":6}"#);
    w.accepted(r#"{"command":"record_attendance","training":"TR1","staff_nos":["T1"]}"#);
    let e = w.refused(LEAVE_EARLY);
    assert!(e.to_string().contains("attendance of teacher T1"), "{e}");
    let mut w = two_groups();
    w.accepted(r#"{"command":"award_title","staff_no":"T1","title":"backbone","on":"2024-06-01"}"#);
    let e = w.refused(LEAVE_EARLY);
    assert!(e.to_string().contains("title backbone"), "{e}");
}

#[test]
fn each_extension_beyond_two_years_needs_its_own_exception() {
    let mut w = two_groups();
    w.accepted(r#"{"command":"start_rotation","rotation":"R1","staff_no":"T1","host":"甲","mode":"temporary_post","start":"2024-09-01","planned_end":"2026-12-31","exception":{"approved_by":"托幼办","reference":"青教〔2024〕9号","reason":"项目延续"}}"#);
    // the start's exception does not cover a later extension
    let e = w.refused(r#"{"command":"extend_rotation","rotation":"R1","planned_end":"2040-06-30","on":"2026-06-01"}"#);
    assert!(matches!(e, E::RotationTooLong { .. }), "{e}");
    w.accepted(r#"{"command":"extend_rotation","rotation":"R1","planned_end":"2027-06-30","on":"2026-06-01","exception":{"approved_by":"托幼办","reference":"青教〔2026〕3号","reason":"再延"}}"#);
}

#[test]
fn a_leave_of_the_host_while_a_rotation_runs_is_refused() {
    let mut w = two_groups();
    w.accepted(ROT); // T1 (home 乙) at 甲, 2024-09-01 .. 2025-06-30, both in A
    let e = w.refused(r#"{"command":"transfer_kindergarten","kindergarten":"乙","to_group":"B集团","on":"2025-01-01"}"#);
    assert!(matches!(e, E::RotationOutsideGroup { .. }), "{e}");
    // after the rotation's last day it may go
    w.accepted(r#"{"command":"transfer_kindergarten","kindergarten":"乙","to_group":"B集团","on":"2025-07-01"}"#);
}

#[test]
fn a_kindergarten_id_is_never_given_twice_even_after_a_retraction() {
    let mut w = two_groups();
    let seq = w.accepted(r#"{"command":"register_kindergarten","kindergarten":"庚","category":"first_class","ownership":"public","on":"2023-09-01"}"#);
    let first = w.ledger.state().kg_by_name("庚").unwrap().id;
    w.accepted(&format!(
        r#"{{"command":"retract_event","target":{seq},"reason":"录入错误"}}"#
    ));
    w.accepted(r#"{"command":"register_kindergarten","kindergarten":"辛","category":"first_class","ownership":"public","on":"2023-09-01"}"#);
    let second = w.ledger.state().kg_by_name("辛").unwrap().id;
    assert!(
        second.0 > first.0,
        "{second} reuses or precedes the retracted {first}"
    );
    // and so after a reopen, which folds the retraction again
    let w = w.reopen();
    assert_eq!(w.ledger.state().kg_by_name("辛").unwrap().id, second);
    let trail = w
        .ledger
        .audit(&eduledger_domain::EntityRef::Kindergarten(second), None)
        .unwrap();
    assert!(
        trail.iter().all(|e| e.seq > seq),
        "the new kindergarten's history shows the retracted registration"
    );
}

// ---- Review of issue 9: the dates the new fields carry are checked, and v0.1 reads as before.

const R_LONG: &str = r#"{"command":"start_rotation","rotation":"R1","staff_no":"T1","host":"甲","mode":"temporary_post","start":"2024-09-01","planned_end":"2026-12-31","exception":{"approved_by":"托幼办","reference":"青教〔2024〕9号","reason":"项目延续"}}"#;

#[test]
fn a_v0_1_extension_keeps_the_exception_in_force_as_v0_1_read_it() {
    use eduledger_store::{Durability, ExpectedVersion, Metadata, NewEvent};
    let mut w = two_groups();
    w.accepted(R_LONG);
    // an extension exactly as eduledger 0.1 wrote it: schema 1, no date, no exception
    let v1 = eduledger_domain::event::upcast::RotationExtendedV1 {
        rotation: eduledger_domain::values::RecordId::new("R1").unwrap(),
        planned_end: eduledger_domain::values::Date::parse("2027-03-31").unwrap(),
        exception: None,
    };
    let payload =
        bincode::serde::encode_to_vec(&v1, bincode::config::standard().with_limit::<{ 2 << 20 }>())
            .unwrap();
    w.ledger
        .store()
        .append(
            "rotation:R1",
            ExpectedVersion::Any,
            &[NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "RotationExtended".into(),
                schema_version: 1,
                payload,
                meta: Metadata {
                    actor: "v0.1".into(),
                    reason: None,
                    source: None,
                },
            }],
            Durability::Durable,
        )
        .unwrap();
    let mut w = w.reopen();
    let r = w
        .ledger
        .state()
        .rotations()
        .get(&eduledger_domain::values::RecordId::new("R1").unwrap())
        .unwrap()
        .clone();
    assert_eq!(r.planned_end.to_string(), "2027-03-31");
    assert!(r.exception.is_some(), "v0.1 kept the exception in force");
    // and a correction that replays past it is not refused because of it
    let seq = w.accepted(
        r#"{"command":"award_title","staff_no":"T2","title":"backbone","on":"2024-01-01"}"#,
    );
    w.accepted(&format!(
        r#"{{"command":"retract_event","target":{seq},"reason":"录入错误"}}"#
    ));
}

#[test]
fn an_extension_is_decided_before_its_plan_runs_out_and_in_order() {
    let mut w = two_groups();
    w.accepted(ROT); // 2024-09-01 .. 2025-06-30
    let e = w.refused(r#"{"command":"extend_rotation","rotation":"R1","planned_end":"2025-12-31","on":"2025-07-15"}"#);
    assert!(e.to_string().contains("before its plan runs out"), "{e}");
    w.accepted(r#"{"command":"extend_rotation","rotation":"R1","planned_end":"2025-12-31","on":"2025-06-01"}"#);
    let e = w.refused(r#"{"command":"extend_rotation","rotation":"R1","planned_end":"2026-02-28","on":"2025-03-01"}"#);
    assert!(
        e.to_string().contains("in the order they were decided"),
        "{e}"
    );
}

#[test]
fn a_teacher_home_does_not_change_while_a_rotation_runs() {
    let mut w = two_groups();
    w.accepted(ROT); // T1 home 乙, host 甲
    let e = w.refused(r#"{"command":"change_home","staff_no":"T1","home":"甲","on":"2025-01-01"}"#);
    assert!(
        e.to_string().contains("home kindergarten would change"),
        "{e}"
    );
    w.accepted(r#"{"command":"change_home","staff_no":"T1","home":"甲","on":"2025-07-01"}"#);
}

#[test]
fn a_project_steps_come_after_its_proposal_and_its_group() {
    let mut w = two_groups();
    let e = w.refused(r#"{"command":"propose_project","project":"P1","group":"A集团","kind":"key_project","title":"t","year":2024,"on":"2019-01-01"}"#);
    assert!(e.to_string().contains("founded"), "{e}");
    w.accepted(r#"{"command":"propose_project","project":"P1","group":"A集团","kind":"key_project","title":"t","year":2024,"on":"2024-11-01"}"#);
    let e = w.refused(
        r#"{"command":"approve_project","project":"P1","on":"2024-02-01","budget_fen":100}"#,
    );
    assert!(e.to_string().contains("proposal date"), "{e}");
    w.accepted(r#"{"command":"leave_service","staff_no":"T2","on":"2024-06-01"}"#);
    let e = w.refused(r#"{"command":"propose_project","project":"P2","group":"A集团","kind":"key_project","title":"t","year":2025,"on":"2025-03-01","members":["T2"]}"#);
    assert!(e.to_string().contains("left service"), "{e}");
}

#[test]
fn a_refused_leave_names_the_fix_that_works() {
    let mut w = two_groups();
    w.accepted(
        r#"{"command":"appoint_principal","kindergarten":"乙","staff_no":"T1","on":"2024-03-01"}"#,
    );
    let e = w.refused(LEAVE_EARLY);
    assert!(
        e.to_string().contains("correct or retract the appointment"),
        "{e}"
    );
}

// ---- Lead eligibility, 1+X (§三(一)): a 市示范园 or a 合作办园主体园 that day, or an exception.

fn plain_kindergartens() -> World {
    given(&[
        r#"{"command":"register_kindergarten","kindergarten":"一级园","category":"first_class","ownership":"public","on":"2023-09-01"}"#,
        r#"{"command":"register_kindergarten","kindergarten":"示范园","category":"municipal_demonstration","ownership":"public","on":"2023-09-01"}"#,
        r#"{"command":"register_kindergarten","kindergarten":"主体园","category":"second_class","ownership":"public","cooperative_principal":true,"on":"2023-09-01"}"#,
        r#"{"command":"register_kindergarten","kindergarten":"后定园","category":"second_class","ownership":"public","on":"2023-09-01"}"#,
    ])
}

#[test]
fn a_first_class_lead_without_an_exception_is_refused_and_nothing_is_recorded() {
    let mut w = plain_kindergartens();
    let head = w.ledger.head().unwrap();
    let e = w.refused(r#"{"command":"found_group","group":"新集团","kind":"group","lead":"一级园","on":"2024-09-01"}"#);
    assert!(matches!(e, E::LeadNotEligible { .. }), "{e}");
    assert!(e.to_string().contains("first_class"), "{e}");
    assert_eq!(w.ledger.head().unwrap(), head, "the digest is unchanged");
    // the same with an approved exception
    w.accepted(r#"{"command":"found_group","group":"新集团","kind":"group","lead":"一级园","on":"2024-09-01","exception":{"approved_by":"区教育局","reference":"青教〔2024〕12号","reason":"新区布局"}}"#);
}

#[test]
fn a_municipal_demonstration_or_cooperative_principal_lead_needs_no_exception() {
    let mut w = plain_kindergartens();
    w.accepted(r#"{"command":"found_group","group":"甲集团","kind":"group","lead":"示范园","on":"2024-09-01"}"#);
    w.accepted(r#"{"command":"found_group","group":"乙集团","kind":"group","lead":"主体园","on":"2024-09-01"}"#);
    // designated from 2025-01-01: not eligible the day before, eligible from then
    w.accepted(r#"{"command":"designate_cooperative_principal","kindergarten":"后定园","on":"2025-01-01"}"#);
    w.accepted(
        r#"{"command":"join_group","kindergarten":"后定园","group":"甲集团","on":"2024-09-01"}"#,
    );
    let e = w
        .refused(r#"{"command":"change_lead","group":"甲集团","lead":"后定园","on":"2024-12-31"}"#);
    assert!(matches!(e, E::LeadNotEligible { .. }), "{e}");
    w.accepted(r#"{"command":"change_lead","group":"甲集团","lead":"后定园","on":"2025-01-01"}"#);
}

#[test]
fn a_back_dated_regrade_cannot_make_a_named_lead_ineligible() {
    let mut w = plain_kindergartens();
    w.accepted(r#"{"command":"found_group","group":"甲集团","kind":"group","lead":"主体园","on":"2024-01-01"}"#);
    w.accepted(r#"{"command":"register_kindergarten","kindergarten":"示范X","category":"municipal_demonstration","ownership":"public","on":"2024-01-01"}"#);
    w.accepted(
        r#"{"command":"join_group","kindergarten":"示范X","group":"甲集团","on":"2024-02-01"}"#,
    );
    w.accepted(r#"{"command":"change_lead","group":"甲集团","lead":"示范X","on":"2024-09-01"}"#);
    let head = w.ledger.head().unwrap();
    let e = w.refused(r#"{"command":"regrade_kindergarten","kindergarten":"示范X","category":"first_class","on":"2024-08-01"}"#);
    assert!(matches!(e, E::LeadNotEligible { .. }), "{e}");
    assert_eq!(w.ledger.head().unwrap(), head, "the digest is unchanged");
    // regraded after it was named: the lead stands
    w.accepted(r#"{"command":"regrade_kindergarten","kindergarten":"示范X","category":"first_class","on":"2024-10-01"}"#);
}
