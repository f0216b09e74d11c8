//! The year-end points tally (POINTS.md): facts of the year, first-match rules, caps in
//! (date, sequence) order, dense rank.

use std::collections::BTreeMap;

use serde::Serialize;

use eduledger_domain::State;
use eduledger_domain::event::Organizer;
use eduledger_domain::points::{FactKind, RuleSet};
use eduledger_domain::state::Outcome;
use eduledger_domain::values::*;

/// A scorable fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    /// Kind.
    pub kind: FactKind,
    /// The date it took effect.
    pub date: Date,
    /// The group it scores for on that date (None: unattributed).
    pub group: Option<GroupName>,
    /// Attributes for matching.
    pub attrs: BTreeMap<&'static str, String>,
    /// What it is, for people (`activity A1`).
    pub subject: String,
    /// Sequences behind it (original, then correction).
    pub seqs: Vec<u64>,
}

/// Whole months in `[start, last]`.
fn months(start: Date, last: Date) -> u32 {
    start.whole_months_through(last)
}

/// Every scorable fact dated in `year`, in (date, sequence) order.
pub fn facts(s: &State, year: i32) -> Vec<Fact> {
    let mut out = Vec::new();
    let in_year = |d: Date| d.year() == year;
    for p in s.projects().values() {
        if let Some((on, rating, origin)) = &p.completed
            && in_year(*on)
        {
            out.push(Fact {
                kind: FactKind::ProjectCompleted,
                date: *on,
                group: Some(p.group.clone()),
                attrs: BTreeMap::from([
                    ("project_kind", p.kind.code().to_owned()),
                    ("rating", rating.code().to_owned()),
                ]),
                subject: format!("project {}", p.id),
                seqs: origin.seqs(),
            });
        }
    }
    for t in s.trainings().values() {
        if let (Some(d), Organizer::Group(g)) = (&t.decision, &t.organizer)
            && d.granted
            && in_year(d.on)
        {
            out.push(Fact {
                kind: FactKind::TrainingRecognized,
                date: d.on,
                group: Some(g.clone()),
                attrs: BTreeMap::from([
                    ("hours", (t.hours.tenths() / 10).to_string()),
                    ("attendees", t.attendees.to_string()),
                ]),
                subject: format!("training {}", t.id),
                seqs: d.origin.seqs(),
            });
        }
    }
    for a in s.activities().values() {
        if in_year(a.on) {
            out.push(Fact {
                kind: FactKind::ActivityHeld,
                date: a.on,
                group: Some(a.group.clone()),
                attrs: BTreeMap::from([
                    ("activity_kind", a.kind.code().to_owned()),
                    ("kindergartens", a.kindergartens.len().to_string()),
                ]),
                subject: format!("activity {}", a.id),
                seqs: a.origin.seqs(),
            });
        }
    }
    for r in s.rotations().values() {
        if let Some(Outcome::Ended {
            end,
            assessment,
            origin,
        }) = &r.outcome
            && in_year(*end)
        {
            out.push(Fact {
                kind: FactKind::RotationCompleted,
                date: *end,
                group: s
                    .kindergartens()
                    .get(&r.host)
                    .and_then(|k| k.group_on(*end).cloned()),
                attrs: BTreeMap::from([
                    ("mode", r.mode.code().to_owned()),
                    ("assessment", assessment.code().to_owned()),
                    ("months", months(r.start, *end).to_string()),
                ]),
                subject: format!("rotation {}", r.id),
                seqs: origin.seqs(),
            });
        }
    }
    for k in s.kindergartens().values() {
        for step in k.high_quality.iter() {
            let (designated, origin) = step.value;
            if designated && in_year(step.on) {
                out.push(Fact {
                    kind: FactKind::HighQualityDesignated,
                    date: step.on,
                    group: k.group_on(step.on).cloned(),
                    attrs: BTreeMap::from([("ownership", k.ownership.code().to_owned())]),
                    subject: format!("kindergarten {}", k.name_on(step.on)),
                    seqs: origin.seqs(),
                });
            }
        }
    }
    for g in s.groups().values() {
        for d in &g.documents {
            if in_year(d.on) {
                out.push(Fact {
                    kind: FactKind::DocumentAdopted,
                    date: d.on,
                    group: Some(g.name.clone()),
                    attrs: BTreeMap::from([("doc_kind", d.doc_kind.code().to_owned())]),
                    subject: format!("document {}", d.title),
                    seqs: d.origin.seqs(),
                });
            }
        }
    }
    out.sort_by(|a, b| (a.date, &a.seqs).cmp(&(b.date, &b.seqs)));
    out
}

/// One scored line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TallyLine {
    /// Rule id.
    pub rule: String,
    /// Fact kind.
    pub fact: &'static str,
    /// What it was.
    pub subject: String,
    /// Date.
    pub date: Date,
    /// Points awarded.
    pub points: i64,
    /// Whether the rule's cap cut it (wholly, or partly when it crossed the cap).
    pub capped: bool,
    /// Sequences behind it.
    pub seqs: Vec<u64>,
    /// Event ids behind it.
    pub event_ids: Vec<String>,
}

/// A rule's subtotal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleTotal {
    /// Rule id.
    pub rule: String,
    /// Points.
    pub points: i64,
}

/// One group's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupTally {
    /// Group.
    pub group: String,
    /// Total.
    pub total: i64,
    /// Dense rank.
    pub rank: usize,
    /// Per-rule subtotals, in rule-file order.
    pub by_rule: Vec<RuleTotal>,
    /// Every scored fact (with `--explain`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<TallyLine>>,
}

/// A fact that scores for no one, because its kindergarten was in no group on its date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unattributed {
    /// Fact kind.
    pub fact: &'static str,
    /// What it was.
    pub subject: String,
    /// Date.
    pub date: Date,
    /// Sequences.
    pub seqs: Vec<u64>,
}

/// The tally.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Groups, by rank then name.
    pub groups: Vec<GroupTally>,
    /// Facts no group can claim.
    pub unattributed: Vec<Unattributed>,
    /// Facts that fit no rule (count).
    pub unmatched: usize,
}

/// Score `year` under `rules`. `event_id` maps a sequence to its event id for `--explain`.
/// The year's tally as it stood on `on`: only facts dated on or before it count (a
/// mid-year standing before Dec 31; the whole year from then on).
pub fn tally(
    s: &State,
    rules: &RuleSet,
    year: i32,
    on: Date,
    explain: bool,
    event_id: &dyn Fn(u64) -> Option<String>,
) -> Tally {
    let s = &s.as_of(on);
    let mut per_group: BTreeMap<GroupName, (Vec<i64>, Vec<TallyLine>)> = BTreeMap::new();
    for g in s
        .groups()
        .values()
        .filter(|g| g.founded <= Date::dec31(year))
    {
        per_group.insert(g.name.clone(), (vec![0; rules.rules.len()], vec![]));
    }
    let mut unattributed = vec![];
    let mut unmatched = 0;
    for f in facts(s, year) {
        let Some(group) = f.group.clone() else {
            unattributed.push(Unattributed {
                fact: f.kind.code(),
                subject: f.subject,
                date: f.date,
                seqs: f.seqs,
            });
            continue;
        };
        let Some((i, rule)) = rules
            .rules
            .iter()
            .enumerate()
            .find(|(_, r)| r.fits(f.kind, &f.attrs))
        else {
            unmatched += 1;
            continue;
        };
        let (totals, lines) = per_group
            .entry(group)
            .or_insert_with(|| (vec![0; rules.rules.len()], vec![]));
        let mut points = rule.points;
        let mut capped = false;
        if let (Some(cap), true) = (rule.cap, points > 0) {
            let room = cap.saturating_sub(totals[i]).max(0);
            if points > room {
                points = room;
                capped = true;
            }
        }
        // cannot overflow under the rules' bounds (MAX_RULE_POINTS); saturate rather than wrap
        totals[i] = totals[i].saturating_add(points);
        lines.push(TallyLine {
            rule: rule.id.clone(),
            fact: f.kind.code(),
            subject: f.subject,
            date: f.date,
            points,
            capped,
            event_ids: f.seqs.iter().filter_map(|s| event_id(*s)).collect(),
            seqs: f.seqs,
        });
    }
    let mut groups: Vec<GroupTally> = per_group
        .into_iter()
        .map(|(g, (totals, lines))| GroupTally {
            group: g.to_string(),
            total: totals.iter().fold(0i64, |a, b| a.saturating_add(*b)),
            rank: 0,
            by_rule: rules
                .rules
                .iter()
                .zip(&totals)
                .filter(|(_, p)| **p != 0)
                .map(|(r, p)| RuleTotal {
                    rule: r.id.clone(),
                    points: *p,
                })
                .collect(),
            lines: explain.then_some(lines),
        })
        .collect();
    groups.sort_by(|a, b| b.total.cmp(&a.total).then_with(|| a.group.cmp(&b.group)));
    let mut rank = 0;
    let mut last = None;
    for g in &mut groups {
        if last != Some(g.total) {
            rank += 1;
            last = Some(g.total);
        }
        g.rank = rank;
    }
    Tally {
        groups,
        unattributed,
        unmatched,
    }
}
