//! The valid-time property (DOMAIN.md, "How dates read"): recording any event effective
//! after a date D never changes a read on D — and, composed with transaction time, neither
//! does any prefix of those later events (what `--known-at` reads).
//!
//! Histories are generated from random commands, each decided through the domain's own
//! `decide` (so only valid histories are built); then a random D; then random commands
//! dated after D, of which every one the rules accept *and* whose valid time is after D is
//! appended. Every view and report on D — groups, each group, kindergarten and teacher
//! (found or not), compliance, rewards and the tally of every year — must be the same JSON
//! on the history with and without them, and after each of them.

use eduledger_domain::event::Event;
use eduledger_domain::points::RuleSet;
use eduledger_domain::values::Date;
use eduledger_domain::{State, decide, parse_submission};
use eduledger_projection::{reports, tally, views};
use proptest::prelude::*;
use serde_json::{Value, json};

const KGS: [&str; 7] = ["甲", "乙", "丙", "丁", "戊", "己", "庚"];
const NEW_NAMES: [&str; 3] = ["甲新", "乙新", "丙新"];
const GROUPS: [&str; 3] = ["A集团", "B集团", "C集团"];
const TEACHERS: [&str; 8] = ["T1", "T2", "T3", "T4", "T5", "T6", "T7", "T8"];

const RULES: &str = r#"year = 2024
[[rule]]
id = "hq"
fact = "high_quality_designated"
points = 10
[[rule]]
id = "rot"
fact = "rotation_completed"
points = 4
[[rule]]
id = "proj"
fact = "project_completed"
points = 7
[[rule]]
id = "act"
fact = "activity_held"
points = 2
cap = 9
[[rule]]
id = "tr"
fact = "training_recognized"
points = 3
"#;

/// A small deterministic generator (xorshift), seeded by proptest.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    /// A day from `from` (exclusive) on, within about three years.
    fn date_after(&mut self, from: Date) -> Date {
        let mut d = from;
        for _ in 0..=self.below(1100) {
            d = d.succ();
        }
        d
    }
}

struct History {
    state: State,
    seq: u64,
}

impl History {
    /// Decide and apply one JSON command; the event if the rules accepted it.
    fn try_record(&mut self, line: &str) -> Option<Event> {
        let sub = parse_submission(line).ok()?;
        let d = decide(&self.state, &sub.command, self.seq + 1).ok()?;
        self.seq += 1;
        self.state = d.next;
        Some(d.event)
    }
}

fn base() -> History {
    let mut h = History {
        state: State::default(),
        seq: 0,
    };
    let mut lines = vec![];
    for (i, k) in KGS.iter().enumerate() {
        let cat = [
            "first_class",
            "second_class",
            "new_built",
            "municipal_demonstration",
        ][i % 4];
        lines.push(format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"{cat}","ownership":"public","cooperative_principal":true,"on":"2023-09-01"}}"#));
    }
    lines.push(
        r#"{"command":"found_group","group":"A集团","kind":"group","lead":"甲","on":"2023-09-20"}"#
            .into(),
    );
    lines.push(
        r#"{"command":"found_group","group":"B集团","kind":"group","lead":"丁","on":"2023-09-20"}"#
            .into(),
    );
    for (k, g) in [("乙", "A集团"), ("丙", "A集团"), ("戊", "B集团")] {
        lines.push(format!(
            r#"{{"command":"join_group","kindergarten":"{k}","group":"{g}","on":"2023-09-20"}}"#
        ));
    }
    for (i, t) in TEACHERS[..6].iter().enumerate() {
        let home = ["甲", "乙", "丙", "丁", "戊", "己"][i];
        lines.push(format!(r#"{{"command":"register_teacher","staff_no":"{t}","name":"教师{t}","home":"{home}","on":"2023-09-01"}}"#));
    }
    for l in lines {
        h.try_record(&l).expect("the base history is valid");
    }
    h
}

/// A random command with every date after `after` (and within a few years of it); some
/// look at the state so that rotations can end and be extended within their plans.
fn command(rng: &mut Rng, after: Date, s: &State) -> String {
    if rng.below(8) == 0
        && let Some(t) = s
            .trainings()
            .values()
            .nth(rng.below(s.trainings().len().max(1)))
        && t.decision.is_none()
    {
        let base = t.applied.unwrap_or(t.start).max(after);
        let mut on = base.succ();
        for _ in 0..rng.below(60) {
            on = on.succ();
        }
        return match t.applied {
            None => format!(
                r#"{{"command":"apply_recognition","training":"{}","on":"{on}"}}"#,
                t.id
            ),
            Some(_) => format!(
                r#"{{"command":"decide_recognition","training":"{}","granted":true,"on":"{on}","reviewer":"托幼办"}}"#,
                t.id
            ),
        };
    }
    if rng.below(8) == 0
        && let Some(p) = s
            .projects()
            .values()
            .nth(rng.below(s.projects().len().max(1)))
    {
        let base = p
            .approved
            .as_ref()
            .map_or(p.proposed, |(on, _)| *on)
            .max(after);
        let mut on = base.succ();
        for _ in 0..rng.below(200) {
            on = on.succ();
        }
        return match p.approved {
            None => format!(
                r#"{{"command":"approve_project","project":"{}","on":"{on}","budget_fen":100}}"#,
                p.id
            ),
            Some(_) => format!(
                r#"{{"command":"complete_project","project":"{}","on":"{on}","rating":"excellent"}}"#,
                p.id
            ),
        };
    }
    if rng.below(5) == 0
        && let Some(r) = s
            .rotations()
            .values()
            .nth(rng.below(s.rotations().len().max(1)))
    {
        let from = r.start.max(after.succ());
        if from <= r.planned_end {
            let span = (r.planned_end.naive() - from.naive()).num_days().max(0) as usize;
            let mut end = from;
            for _ in 0..rng.below(span + 1) {
                end = end.succ();
            }
            return if rng.below(2) == 0 {
                format!(
                    r#"{{"command":"end_rotation","rotation":"{}","end":"{end}","assessment":"excellent"}}"#,
                    r.id
                )
            } else {
                let mut planned = r.planned_end;
                for _ in 0..=rng.below(120) {
                    planned = planned.succ();
                }
                format!(
                    r#"{{"command":"extend_rotation","rotation":"{}","planned_end":"{planned}","on":"{end}"}}"#,
                    r.id
                )
            };
        }
    }
    let d = |rng: &mut Rng| rng.date_after(after);
    let k = rng.pick(&KGS);
    let g = rng.pick(&GROUPS);
    let t = rng.pick(&TEACHERS);
    let id = |rng: &mut Rng, p: &str| format!("{p}{}", 1 + rng.below(4));
    match rng.below(32) {
        0 => format!(
            r#"{{"command":"join_group","kindergarten":"{k}","group":"{g}","on":"{}"}}"#,
            d(rng)
        ),
        1 => format!(
            r#"{{"command":"leave_group","kindergarten":"{k}","group":"{g}","on":"{}"}}"#,
            d(rng)
        ),
        2 => format!(
            r#"{{"command":"transfer_kindergarten","kindergarten":"{k}","to_group":"{g}","on":"{}"}}"#,
            d(rng)
        ),
        3 => format!(
            r#"{{"command":"change_lead","group":"{g}","lead":"{k}","on":"{}"}}"#,
            d(rng)
        ),
        4 => format!(
            r#"{{"command":"found_group","group":"{g}","kind":"group","lead":"{k}","on":"{}"}}"#,
            d(rng)
        ),
        5 => format!(
            r#"{{"command":"rename_kindergarten","kindergarten":"{k}","new_name":"{}","on":"{}"}}"#,
            rng.pick(&NEW_NAMES),
            d(rng)
        ),
        6 => format!(
            r#"{{"command":"regrade_kindergarten","kindergarten":"{k}","category":"first_class","on":"{}"}}"#,
            d(rng)
        ),
        7 => format!(
            r#"{{"command":"designate_high_quality","kindergarten":"{k}","on":"{}"}}"#,
            d(rng)
        ),
        8 => format!(
            r#"{{"command":"revoke_high_quality","kindergarten":"{k}","on":"{}"}}"#,
            d(rng)
        ),
        9 => format!(
            r#"{{"command":"appoint_principal","kindergarten":"{k}","staff_no":"{t}","on":"{}"}}"#,
            d(rng)
        ),
        10 => format!(
            r#"{{"command":"end_principal","kindergarten":"{k}","on":"{}"}}"#,
            d(rng)
        ),
        11 => {
            let from = d(rng);
            format!(
                r#"{{"command":"appoint_secretariat","group":"{g}","staff_no":"{t}","role":"秘书","from":"{from}","to":"{}"}}"#,
                rng.date_after(from)
            )
        }
        12 => format!(
            r#"{{"command":"dismiss_secretariat","group":"{g}","staff_no":"{t}","on":"{}"}}"#,
            d(rng)
        ),
        13 => format!(
            r#"{{"command":"adopt_document","group":"{g}","doc_kind":"annual_plan","title":"计划","on":"{}"}}"#,
            d(rng)
        ),
        14 => {
            let from = d(rng);
            format!(
                r#"{{"command":"assign_expert","group":"{g}","expert":"专家","affiliation":"进修学院","from":"{from}","to":"{}"}}"#,
                rng.date_after(from)
            )
        }
        15 => format!(
            r#"{{"command":"register_teacher","staff_no":"{t}","name":"新{t}","home":"{k}","on":"{}"}}"#,
            d(rng)
        ),
        16 => format!(
            r#"{{"command":"change_home","staff_no":"{t}","home":"{k}","on":"{}"}}"#,
            d(rng)
        ),
        17 => format!(
            r#"{{"command":"award_title","staff_no":"{t}","title":"backbone","on":"{}"}}"#,
            d(rng)
        ),
        18 => format!(
            r#"{{"command":"leave_service","staff_no":"{t}","on":"{}"}}"#,
            d(rng)
        ),
        19 => {
            // a plausible one: a host in the teacher's home group, within two years
            let start = d(rng);
            let mut end = start;
            for _ in 0..rng.below(500) {
                end = end.succ();
            }
            let host = s
                .teachers()
                .get(&eduledger_domain::values::StaffNo::new(t).expect("staff no"))
                .and_then(|te| te.home.at(start).copied())
                .and_then(|home| {
                    let g = s.kindergartens().get(&home)?.group_on(start)?.clone();
                    let others: Vec<String> = s
                        .kindergartens()
                        .values()
                        .filter(|o| o.id != home && o.group_on(start) == Some(&g))
                        .map(|o| o.name_on(start).to_string())
                        .collect();
                    (!others.is_empty()).then(|| others[rng.below(others.len())].clone())
                })
                .unwrap_or_else(|| k.to_string());
            format!(
                r#"{{"command":"start_rotation","rotation":"{}","staff_no":"{t}","host":"{host}","mode":"shadowing","start":"{start}","planned_end":"{end}"}}"#,
                id(rng, "R")
            )
        }
        20 => {
            let on = d(rng);
            format!(
                r#"{{"command":"extend_rotation","rotation":"{}","planned_end":"{}","on":"{on}"}}"#,
                id(rng, "R"),
                rng.date_after(on)
            )
        }
        21 => format!(
            r#"{{"command":"end_rotation","rotation":"{}","end":"{}","assessment":"excellent"}}"#,
            id(rng, "R"),
            d(rng)
        ),
        22 => format!(
            r#"{{"command":"cancel_rotation","rotation":"{}","on":"{}","reason":"调整"}}"#,
            id(rng, "R"),
            d(rng)
        ),
        23 => {
            let start = d(rng);
            format!(
                r#"{{"command":"hold_training","training":"{}","title":"培训","tier":"group","organizer":"{g}","start":"{start}","end":"{start}","hours":3}}"#,
                id(rng, "TR")
            )
        }
        24 => format!(
            r#"{{"command":"record_attendance","training":"{}","staff_nos":["{t}"]}}"#,
            id(rng, "TR")
        ),
        25 => format!(
            r#"{{"command":"apply_recognition","training":"{}","on":"{}"}}"#,
            id(rng, "TR"),
            d(rng)
        ),
        26 => format!(
            r#"{{"command":"decide_recognition","training":"{}","granted":true,"on":"{}","reviewer":"托幼办"}}"#,
            id(rng, "TR"),
            d(rng)
        ),
        27 => {
            let kind = [
                "joint_research",
                "class_showcase",
                "expert_guidance",
                "council_meeting",
            ][rng.below(4)];
            format!(
                r#"{{"command":"hold_activity","activity":"{}","group":"{g}","kind":"{kind}","title":"活动","on":"{}","kindergartens":["{k}"]}}"#,
                id(rng, "A"),
                d(rng)
            )
        }
        28 => {
            let on = d(rng);
            format!(
                r#"{{"command":"propose_project","project":"{}","group":"{g}","kind":"key_project","title":"项目","year":{},"on":"{on}"}}"#,
                id(rng, "P"),
                on.year()
            )
        }
        29 => {
            let role = ["admin", "recorder", "auditor"][rng.below(3)];
            let groups = if role == "recorder" && rng.below(2) == 0 {
                format!(r#"["{g}"]"#)
            } else {
                "[]".into()
            };
            let token: String = (0..4).map(|_| format!("{:016x}", rng.next())).collect();
            format!(
                r#"{{"command":"grant_access","principal":"{}","role":"{role}","groups":{groups},"token_sha256":"{token}","on":"{}"}}"#,
                id(rng, "U"),
                d(rng)
            )
        }
        30 => format!(
            r#"{{"command":"revoke_access","principal":"{}","on":"{}"}}"#,
            id(rng, "U"),
            d(rng)
        ),
        _ => match rng.below(3) {
            0 => format!(
                r#"{{"command":"approve_project","project":"{}","on":"{}","budget_fen":100}}"#,
                id(rng, "P"),
                d(rng)
            ),
            1 => format!(
                r#"{{"command":"complete_project","project":"{}","on":"{}","rating":"excellent"}}"#,
                id(rng, "P"),
                d(rng)
            ),
            _ => format!(
                r#"{{"command":"cancel_project","project":"{}","on":"{}","reason":"取消"}}"#,
                id(rng, "P"),
                d(rng)
            ),
        },
    }
}

fn shown<T: serde::Serialize, E: std::fmt::Display>(r: Result<T, E>) -> Value {
    match r {
        Ok(v) => serde_json::to_value(v).unwrap_or(Value::Null),
        Err(e) => json!({"error": e.to_string()}),
    }
}

/// Every read on `on`, as JSON.
fn reads(s: &State, on: Date) -> Value {
    let rules = RuleSet::parse(RULES).expect("rules");
    let mut out = serde_json::Map::new();
    let groups = views::groups(s, on);
    // the groups read prunes only what it reads: the same as the whole state pruned
    assert_eq!(groups, views::groups_in(&s.as_of(on), on), "groups on {on}");
    out.insert("groups".into(), json!(groups));
    for g in GROUPS {
        out.insert(format!("group {g}"), shown(views::group(s, g, on)));
    }
    for k in KGS.iter().chain(NEW_NAMES.iter()) {
        out.insert(format!("kg {k}"), shown(views::kindergarten(s, k, on)));
    }
    for t in TEACHERS {
        out.insert(format!("teacher {t}"), shown(views::teacher(s, t, on)));
    }
    out.insert("balance".into(), json!(reports::balance(s, on)));
    for year in 2023..=2027 {
        out.insert(format!("funds {year}"), json!(reports::funds(s, year, on)));
        out.insert(
            format!("rotations {year}"),
            json!(reports::rotations(s, year, on)),
        );
        out.insert(
            format!("compliance {year}"),
            json!(reports::compliance(s, year, on)),
        );
        out.insert(
            format!("rewards {year}"),
            json!(reports::rewards(s, year, on)),
        );
        out.insert(
            format!("tally {year}"),
            json!(tally::tally(s, &rules, year, on, true, &|_| None)),
        );
    }
    // who held access on the date (what a server would authenticate against)
    let pruned = s.as_of(on);
    let access: Vec<Value> = pruned
        .principals()
        .iter()
        .flat_map(|(name, grants)| {
            grants
                .iter()
                .filter(|g| g.in_force(on))
                .map(move |g| json!({"principal": name.to_string(), "role": g.role.code(), "groups": g.groups.iter().map(|x| x.to_string()).collect::<Vec<_>>(), "from": g.from}))
        })
        .collect();
    out.insert("access".into(), json!(access));
    Value::Object(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn events_effective_after_d_never_change_a_read_on_d(seed in 1u64.., commands in 20usize..150, later in 1usize..40, d_offset in 0usize..1200) {
        let mut rng = Rng(seed);
        let mut h = base();
        let start = Date::parse("2023-09-01").expect("date");
        for _ in 0..commands {
            let line = command(&mut rng, start, &h.state);
            h.try_record(&line);
        }
        let mut d = start;
        for _ in 0..d_offset {
            d = d.succ();
        }
        let before = reads(&h.state, d);
        let mut appended = 0;
        for _ in 0..later {
            let line = command(&mut rng, d, &h.state);
            let mut trial = History { state: h.state.clone(), seq: h.seq };
            let Some(event) = trial.try_record(&line) else { continue };
            // only events whose one valid time is after D (attendance takes its
            // training's start, an extension never counts before its rotation's start)
            if h.state.valid_time(&event).is_none_or(|t| t <= d) {
                continue;
            }
            h = trial;
            appended += 1;
            // composed with transaction time: every prefix of the later events too
            let after = reads(&h.state, d);
            prop_assert_eq!(&after, &before, "after {} later events, the last: {}", appended, line);
        }
        // a case in which nothing later was accepted shows nothing: it does not count
        prop_assume!(appended > 0);
    }
}

#[test]
fn the_generator_builds_rich_histories() {
    // a test of the test: the histories reach rotations, projects, trainings, renames,
    // and the later events are accepted often enough to mean something
    let start = Date::parse("2023-09-01").expect("date");
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 1..=8 {
        let mut rng = Rng(seed * 7919);
        let mut h = base();
        for _ in 0..200 {
            let line = command(&mut rng, start, &h.state);
            if let Some(e) = h.try_record(&line) {
                kinds.insert(e.event_type());
            }
        }
    }
    for k in [
        "RotationStarted",
        "RotationEnded",
        "RotationExtended",
        "ProjectCompleted",
        "TrainingHeld",
        "AttendanceRecorded",
        "RecognitionDecided",
        "ActivityHeld",
        "KindergartenRenamed",
        "KindergartenTransferred",
        "HighQualityDesignated",
        "SecretariatAppointed",
        "ServiceLeft",
        "AccessGranted",
        "AccessRevoked",
    ] {
        assert!(kinds.contains(k), "{k} never accepted; got {kinds:?}");
    }
}
