//! The 2023 roster imports as the seed's table says, in one atomic append.

mod common;

use eduledger_domain::values::{Category, Date, GroupKind, Ownership};
use eduledger_domain::{Meta, Submission, roster::roster_commands};

const ROSTER: &str = include_str!("../../cli/data/roster-2023.tsv");

fn imported() -> common::World {
    let mut w = common::given(&[]);
    let on = Date::parse("2023-09-20").unwrap();
    let subs: Vec<Submission> = roster_commands(ROSTER, on)
        .unwrap()
        .into_iter()
        .map(|command| Submission {
            command,
            meta: Meta {
                source: Some("青教〔2023〕61号".into()),
                ..Meta::default()
            },
        })
        .collect();
    let seqs = w.ledger.execute(&subs, "roster").unwrap();
    assert_eq!(seqs.len(), subs.len());
    w
}

#[test]
fn the_roster_yields_seven_groups_and_sixty_six_kindergartens() {
    let w = imported();
    let s = w.ledger.state();
    assert_eq!(s.groups().len(), 7);
    assert_eq!(s.kindergartens().len(), 66);
    let on = Date::parse("2023-09-20").unwrap();
    let members: usize = s.groups().keys().map(|g| s.members_on(g, on).len()).sum();
    assert_eq!(members, 66, "every kindergarten is in exactly one group");
}

#[test]
fn the_roster_gets_leads_categories_ownership_and_provisional_names_right() {
    let w = imported();
    let s = w.ledger.state();
    let on = Date::parse("2024-01-01").unwrap();
    let kg = |n: &str| s.kg_by_name(n).unwrap_or_else(|| panic!("{n} missing"));
    let g = |n: &str| s.groups().values().find(|g| g.name.as_str() == n).unwrap();

    let xujing = g("徐泾学前教育联盟");
    assert_eq!(xujing.kind, GroupKind::Alliance);
    assert_eq!(s.kg_label(xujing.lead_on(on).unwrap()), "学前教育附属实验");
    assert_eq!(kg("学前教育附属实验").category_on(on), Category::NewBuilt);
    assert_eq!(s.members_on(&xujing.name, on).len(), 11);

    assert_eq!(g("佳佳学前教育集团").kind, GroupKind::Group);
    assert_eq!(kg("佳佳").category_on(on), Category::Unspecified);
    assert_eq!(kg("鹿鸣").category_on(on), Category::NewBuilt);
    assert_eq!(kg("盈星").category_on(on), Category::FirstClass);
    assert_eq!(kg("赵屯").category_on(on), Category::SecondClass);
    assert_eq!(kg("协和").ownership, Ownership::Private);
    assert_eq!(kg("协和").category_on(on), Category::SecondClass);
    assert_eq!(kg("世外").ownership, Ownership::Private);
    assert_eq!(kg("佳佳").ownership, Ownership::Public);
    assert!(kg("新华").provisional_on(on));
    assert!(!kg("朱家角").provisional_on(on));
    assert_eq!(
        kg("新华").group_on(on).unwrap().as_str(),
        "朱家角学前教育集团"
    );

    let counts: Vec<(String, usize)> = s
        .groups()
        .keys()
        .map(|g| (g.to_string(), s.members_on(g, on).len()))
        .collect();
    let expect = [
        ("佳佳学前教育集团", 9),
        ("秀泉学前教育集团", 10),
        ("实验学前教育集团", 9),
        ("朵朵学前教育集团", 9),
        ("朱家角学前教育集团", 10),
        ("毓秀学前教育集团", 8),
        ("徐泾学前教育联盟", 11),
    ];
    for (name, n) in expect {
        assert!(
            counts.contains(&(name.to_string(), n)),
            "{name}: {counts:?}"
        );
    }
}

#[test]
fn the_roster_import_is_one_append_and_survives_reopen() {
    let w = imported();
    let head = w.ledger.head().unwrap();
    let w = w.reopen();
    assert_eq!(w.ledger.head().unwrap(), head);
    assert_eq!(w.ledger.state().kindergartens().len(), 66);
    // a second import is refused whole: the names exist
    let mut w = w;
    let subs: Vec<Submission> = roster_commands(ROSTER, Date::parse("2023-09-20").unwrap())
        .unwrap()
        .into_iter()
        .map(|command| Submission {
            command,
            meta: Meta::default(),
        })
        .collect();
    assert!(w.ledger.execute(&subs, "roster").is_err());
    assert_eq!(w.ledger.head().unwrap(), head);
}

#[test]
fn a_malformed_roster_names_the_line() {
    let bad = "集团名称\t牵头园\t一级园\t二级园\t新建园\nA集团\t甲\t乙\nB集团\t丙\t乙\n";
    let e = roster_commands(bad, Date::parse("2023-09-20").unwrap()).unwrap_err();
    assert_eq!(e.line, 3);
    assert!(e.reason.contains("already listed on line 2"));
    let e = roster_commands("name\tlead\n", Date::parse("2023-09-20").unwrap()).unwrap_err();
    assert_eq!(e.line, 1);
}
