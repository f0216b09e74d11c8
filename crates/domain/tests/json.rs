//! Commands round-trip through JSON with DOMAIN.md's field names; bad fields are named.

use eduledger_domain::parse_submission;

const LINES: &[&str] = &[
    r#"{"command":"found_group","group":"佳佳学前教育集团","kind":"group","lead":"佳佳","on":"2023-09-20"}"#,
    r#"{"command":"register_kindergarten","kindergarten":"协和","full_name":"上海市青浦区协和幼儿园","category":"second_class","ownership":"private","provisional":false,"on":"2023-09-20"}"#,
    r#"{"command":"rename_kindergarten","kindergarten":"新华","new_name":"新华二","provisional":false,"on":"2024-09-01"}"#,
    r#"{"command":"join_group","kindergarten":"鹿鸣","group":"佳佳学前教育集团","on":"2023-09-20"}"#,
    r#"{"command":"leave_group","kindergarten":"鹿鸣","group":"佳佳学前教育集团","on":"2024-07-01"}"#,
    r#"{"command":"transfer_kindergarten","kindergarten":"鹿鸣","to_group":"秀泉学前教育集团","on":"2024-07-01"}"#,
    r#"{"command":"change_lead","group":"佳佳学前教育集团","lead":"盈星","on":"2024-07-01"}"#,
    r#"{"command":"regrade_kindergarten","kindergarten":"鹿鸣","category":"second_class","on":"2024-07-01"}"#,
    r#"{"command":"designate_high_quality","kindergarten":"鹿鸣","on":"2024-07-01"}"#,
    r#"{"command":"designate_cooperative_principal","kindergarten":"鹿鸣","on":"2024-07-01"}"#,
    r#"{"command":"revoke_high_quality","kindergarten":"鹿鸣","on":"2024-07-01"}"#,
    r#"{"command":"appoint_principal","kindergarten":"鹿鸣","staff_no":"T0001","on":"2024-07-01"}"#,
    r#"{"command":"end_principal","kindergarten":"鹿鸣","on":"2024-07-01"}"#,
    r#"{"command":"appoint_secretariat","group":"佳佳学前教育集团","staff_no":"T0001","role":"秘书长","from":"2023-09-20","to":"2025-09-19"}"#,
    r#"{"command":"dismiss_secretariat","group":"佳佳学前教育集团","staff_no":"T0001","on":"2024-07-01"}"#,
    r#"{"command":"adopt_document","group":"佳佳学前教育集团","doc_kind":"charter","title":"章程","period":"2023-2026","sha256":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","on":"2023-10-01"}"#,
    r#"{"command":"assign_expert","group":"佳佳学前教育集团","expert":"王老师","affiliation":"上海师范大学","from":"2023-10-01","to":"2024-07-31"}"#,
    r#"{"command":"register_teacher","staff_no":"T0001","name":"李老师","home":"佳佳","on":"2023-09-20"}"#,
    r#"{"command":"change_home","staff_no":"T0001","home":"盈星","on":"2024-09-01"}"#,
    r#"{"command":"award_title","staff_no":"T0001","title":"backbone","on":"2024-09-01"}"#,
    r#"{"command":"leave_service","staff_no":"T0001","on":"2026-09-01"}"#,
    r#"{"command":"start_rotation","rotation":"R2024-001","staff_no":"T0012","host":"赵屯","mode":"demonstration_teaching","start":"2024-09-01","planned_end":"2026-06-30","exception":{"approved_by":"托幼办","reference":"青教〔2024〕1号","reason":"需要"}}"#,
    r#"{"command":"extend_rotation","rotation":"R2024-001","planned_end":"2026-08-31","on":"2025-06-01","exception":null}"#,
    r#"{"command":"end_rotation","rotation":"R2024-001","end":"2026-06-30","assessment":"excellent"}"#,
    r#"{"command":"cancel_rotation","rotation":"R2024-001","on":"2025-01-01","reason":"调动"}"#,
    r#"{"command":"hold_training","training":"TR1","title":"观察与识别","tier":"group","organizer":"佳佳学前教育集团","start":"2024-03-01","end":"2024-03-02","hours":7.5}"#,
    r#"{"command":"record_attendance","training":"TR1","staff_nos":["T0001","T0012"]}"#,
    r#"{"command":"apply_recognition","training":"TR1","on":"2024-03-10"}"#,
    r#"{"command":"decide_recognition","training":"TR1","granted":true,"on":"2024-03-20","reviewer":"区教育局"}"#,
    r#"{"command":"hold_activity","activity":"A1","group":"佳佳学前教育集团","kind":"joint_research","title":"主题教研","on":"2024-03-12","kindergartens":["佳佳","鹿鸣"]}"#,
    r#"{"command":"propose_project","project":"P1","group":"佳佳学前教育集团","kind":"key_project","title":"课程","year":2024,"on":"2024-01-10","members":["T0001"]}"#,
    r#"{"command":"approve_project","project":"P1","on":"2024-02-01","budget_fen":5000000}"#,
    r#"{"command":"complete_project","project":"P1","on":"2024-12-01","rating":"excellent"}"#,
    r#"{"command":"cancel_project","project":"P1","on":"2024-12-01","reason":"x"}"#,
    r#"{"command":"adopt_points_rules","year":2024,"rules":"year = 2024\n","on":"2024-01-01"}"#,
    r#"{"command":"grant_access","principal":"佳佳秘书处","role":"recorder","groups":["佳佳学前教育集团"],"token_sha256":"9ae4991eef27927e68041bc3482b5537f8884ebfc99337ce1036d79e5b2fb76f","on":"2024-09-01"}"#,
    r#"{"command":"revoke_access","principal":"佳佳秘书处","on":"2025-09-01"}"#,
    r#"{"command":"correct_event","target":42,"reason":"日期有误","replacement":{"command":"join_group","kindergarten":"鹿鸣","group":"佳佳学前教育集团","on":"2023-09-21"}}"#,
    r#"{"command":"retract_event","target":"01900000-0000-7000-8000-000000000001","reason":"录错"}"#,
];

#[test]
fn every_command_round_trips_through_json() {
    let mut names = std::collections::BTreeSet::new();
    for line in LINES {
        let sub = parse_submission(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        names.insert(sub.command.name());
        let back = serde_json::to_string(&sub.command).unwrap();
        let again = parse_submission(&back).unwrap_or_else(|e| panic!("{back}: {e}"));
        assert_eq!(again.command, sub.command, "{line}");
    }
    let all: std::collections::BTreeSet<_> =
        eduledger_domain::Command::NAMES.iter().copied().collect();
    assert_eq!(
        names, all,
        "every command of DOMAIN.md has a JSON example here"
    );
}

#[test]
fn a_bad_field_is_named_with_its_value_and_rule() {
    let e = parse_submission(r#"{"command":"start_rotation","rotation":"R1","staff_no":"T1","host":"赵屯","mode":"demonstration_teaching","start":"2024-02-30","planned_end":"2026-06-30"}"#).unwrap_err();
    assert!(
        e.contains("start") && e.contains("2024-02-30") && e.contains("calendar"),
        "{e}"
    );
    let e = parse_submission(r#"{"command":"start_rotation","rotation":"R1","staff_no":"T1","host":"赵屯","mode":"teleport","start":"2024-02-01","planned_end":"2026-06-30"}"#).unwrap_err();
    assert!(e.contains("mode") && e.contains("teleport"), "{e}");
    let e = parse_submission(
        r#"{"command":"approve_project","project":"P1","on":"2024-02-01","budget_fen":12.5}"#,
    )
    .unwrap_err();
    assert!(e.contains("budget_fen"), "{e}");
    let e = parse_submission(r#"{"command":"join_group","kindergarten":"鹿鸣","group":"g","on":"2024-01-01","colour":"red"}"#).unwrap_err();
    assert!(e.contains("colour"), "{e}");
    let e = parse_submission(r#"{"command":"jion_group"}"#).unwrap_err();
    assert!(e.contains("join_group"), "{e}");
    let e = parse_submission(r#"{"command":"correct_event","target":1,"reason":"r","replacement":{"command":"join_group","kindergarten":"","group":"g","on":"2024-01-01"}}"#).unwrap_err();
    assert!(
        e.contains("replacement") && e.contains("kindergarten"),
        "{e}"
    );
    let e = parse_submission(r#"{"command":"join_group","kindergarten":"鹿鸣","group":"g","on":"2024-01-01","meta":{"actor":1}}"#).unwrap_err();
    assert!(e.contains("meta.actor"), "{e}");
}
