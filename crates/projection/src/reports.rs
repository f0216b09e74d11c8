//! Compliance with the plan, and the year-end rewards roster (经费保障).

use std::collections::BTreeSet;

use serde::Serialize;

use eduledger_domain::State;
use eduledger_domain::state::Kindergarten;
use eduledger_domain::values::*;

/// A semester: school year Y runs Sep 1 Y – Aug 31 Y+1; semester 1 is Sep 1 – Jan 31,
/// semester 2 Feb 1 – Aug 31 (DOMAIN.md "Calendars").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Semester {
    /// The school year's first calendar year.
    pub school_year: i32,
    /// 1 or 2.
    pub term: u8,
}

impl Semester {
    /// `2024-2025-1`.
    pub fn name(self) -> String {
        format!(
            "{}-{}-{}",
            self.school_year,
            self.school_year + 1,
            self.term
        )
    }
    /// First day.
    pub fn first(self) -> Date {
        match self.term {
            1 => Date::ymd(self.school_year, 9, 1),
            _ => Date::ymd(self.school_year + 1, 2, 1),
        }
        .unwrap_or(Date::jan1(self.school_year))
    }
    /// Last day.
    pub fn last(self) -> Date {
        match self.term {
            1 => Date::ymd(self.school_year + 1, 1, 31),
            _ => Date::ymd(self.school_year + 1, 8, 31),
        }
        .unwrap_or(Date::dec31(self.school_year))
    }
    /// The semesters that overlap calendar year `year`.
    pub fn overlapping(year: i32) -> Vec<Semester> {
        vec![
            Semester {
                school_year: year - 1,
                term: 1,
            },
            Semester {
                school_year: year - 1,
                term: 2,
            },
            Semester {
                school_year: year,
                term: 1,
            },
        ]
    }
}

/// Whether a group held a 教研 activity in a semester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SemesterCheck {
    /// Group.
    pub group: String,
    /// Semester name.
    pub semester: String,
    /// First day.
    pub from: Date,
    /// Last day.
    pub to: Date,
    /// `held`, `not_held`, or `in_progress` (not held yet, semester not over on the query date).
    pub status: &'static str,
    /// Activities that count (joint_research, class_showcase, competition).
    pub activities: Vec<String>,
}

/// A rotation reported for its length.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LongRotation {
    /// Rotation.
    pub rotation: String,
    /// Teacher.
    pub staff_no: String,
    /// Host.
    pub host: String,
    /// Start.
    pub start: Date,
    /// Planned or actual last day.
    pub last_day: Date,
    /// Length in words.
    pub length: String,
    /// The approved exception, if any.
    pub exception: Option<String>,
}

/// High-quality creation progress of one group's public kindergartens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HighQualityProgress {
    /// Group.
    pub group: String,
    /// Public members on the date.
    pub public_members: usize,
    /// Of those, designated high-quality.
    pub high_quality: usize,
    /// Still to go.
    pub remaining: Vec<String>,
    /// The plan's target date.
    pub target: Date,
    /// Whether every public member is high-quality.
    pub met: bool,
}

/// The compliance report for a year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compliance {
    /// Per group and semester (每学期至少一次).
    pub semesters: Vec<SemesterCheck>,
    /// Kindergartens in a group during the year with no expert_guidance visit (全覆盖).
    pub unvisited: Vec<String>,
    /// Kindergartens visited.
    pub visited: usize,
    /// Rotations active in the year that last more than two years.
    pub long_rotations: Vec<LongRotation>,
    /// High-quality progress, on the year's last day (or the query date, if earlier).
    pub high_quality: Vec<HighQualityProgress>,
}

fn in_a_group_during(k: &Kindergarten, from: Date, to: Date) -> bool {
    k.group_on(from).is_some()
        || k.membership
            .iter()
            .any(|d| d.on >= from && d.on <= to && d.value.group_after().is_some())
}

/// Compliance for calendar year `year`, as seen on `on`.
pub fn compliance(s: &State, year: i32, on: Date) -> Compliance {
    let s = &s.as_of(on);
    let counting = [
        ActivityKind::JointResearch,
        ActivityKind::ClassShowcase,
        ActivityKind::Competition,
    ];
    let mut semesters = vec![];
    for g in s.groups().values() {
        for sem in Semester::overlapping(year) {
            if g.founded > sem.last() {
                continue;
            }
            let activities: Vec<String> = s
                .activities()
                .values()
                .filter(|a| {
                    a.group == g.name
                        && counting.contains(&a.kind)
                        && a.on >= sem.first()
                        && a.on <= sem.last()
                })
                .map(|a| a.id.to_string())
                .collect();
            let status = if !activities.is_empty() {
                "held"
            } else if sem.last() >= on {
                "in_progress"
            } else {
                "not_held"
            };
            semesters.push(SemesterCheck {
                group: g.name.to_string(),
                semester: sem.name(),
                from: sem.first(),
                to: sem.last(),
                status,
                activities,
            });
        }
    }
    let (jan1, dec31) = (Date::jan1(year), Date::dec31(year));
    let visited_ids: BTreeSet<KgId> = s
        .activities()
        .values()
        .filter(|a| a.kind == ActivityKind::ExpertGuidance && a.on.year() == year)
        .flat_map(|a| a.kindergartens.iter().copied())
        .collect();
    let in_groups: Vec<&Kindergarten> = s
        .kindergartens()
        .values()
        .filter(|k| in_a_group_during(k, jan1, dec31))
        .collect();
    let unvisited = in_groups
        .iter()
        .filter(|k| !visited_ids.contains(&k.id))
        .map(|k| k.current_name().to_string())
        .collect();
    let long_rotations = s
        .rotations()
        .values()
        .filter_map(|r| {
            let last = r.last_day()?;
            let limit = eduledger_domain::rules::two_year_limit(r.start);
            (last >= limit && r.start <= dec31 && last >= jan1).then(|| LongRotation {
                rotation: r.id.to_string(),
                staff_no: r.staff_no.to_string(),
                host: s.kg_label(r.host),
                start: r.start,
                last_day: last,
                length: eduledger_domain::rules::length_words(r.start, last),
                exception: r
                    .exception
                    .as_ref()
                    .map(|e| format!("{} ({}): {}", e.reference, e.approved_by, e.reason)),
            })
        })
        .collect();
    let when = dec31.min(on);
    let target = Date::ymd(2025, 12, 31).unwrap_or(dec31);
    let high_quality = s
        .groups()
        .values()
        .filter(|g| g.founded <= when)
        .map(|g| {
            let public: Vec<&Kindergarten> = s
                .kindergartens()
                .values()
                .filter(|k| k.group_on(when) == Some(&g.name) && k.ownership == Ownership::Public)
                .collect();
            let remaining: Vec<String> = public
                .iter()
                .filter(|k| !k.high_quality_on(when))
                .map(|k| k.name_on(when).to_string())
                .collect();
            HighQualityProgress {
                group: g.name.to_string(),
                public_members: public.len(),
                high_quality: public.len() - remaining.len(),
                met: remaining.is_empty(),
                remaining,
                target,
            }
        })
        .collect();
    Compliance {
        semesters,
        unvisited,
        visited: visited_ids.len(),
        long_rotations,
        high_quality,
    }
}

/// One person on the rewards roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RewardEntry {
    /// `lead_principal`, `secretariat`, `high_quality_principal`, `high_quality_staff`, `high_quality_inflow`.
    pub basis: &'static str,
    /// Group.
    pub group: Option<String>,
    /// Kindergarten.
    pub kindergarten: Option<String>,
    /// Staff number.
    pub staff_no: String,
    /// Name.
    pub name: Option<String>,
    /// From (within the year).
    pub from: Date,
    /// To (within the year).
    pub to: Date,
}

/// Who served as principal of `k` during `[from, to]`, with the served span clipped.
fn principals_during(k: &Kindergarten, from: Date, to: Date) -> Vec<(StaffNo, Date, Date)> {
    let steps: Vec<_> = k.principal.iter().collect();
    let mut out = vec![];
    for (i, st) in steps.iter().enumerate() {
        let Some(p) = &st.value else { continue };
        let end = steps
            .get(i + 1)
            .map(|n| n.on.pred())
            .unwrap_or(Date::dec31(9999));
        let (a, b) = (st.on.max(from), end.min(to));
        if a <= b {
            out.push((p.clone(), a, b));
        }
    }
    out
}

/// The rewards roster for calendar year `year`, as it stood on `on`: service is counted
/// up to `on` (a mid-year standing) and to Dec 31 from then on. `s` is the state as of `on`
/// ([`State::as_of`]).
pub fn rewards(s: &State, year: i32, on: Date) -> Vec<RewardEntry> {
    let s = &s.as_of(on);
    let (jan1, dec31) = (Date::jan1(year), Date::dec31(year).min(on));
    let name = |t: &StaffNo| s.teachers().get(t).map(|t| t.name.to_string());
    let mut out = vec![];
    for g in s.groups().values() {
        let leads: Vec<_> = g.leads.iter().collect();
        for (i, l) in leads.iter().enumerate() {
            let end = leads
                .get(i + 1)
                .map(|n| n.on.pred())
                .unwrap_or(Date::dec31(9999));
            let (a, b) = (l.on.max(jan1), end.min(dec31));
            if a > b {
                continue;
            }
            if let Some(k) = s.kindergartens().get(&l.value) {
                for (p, from, to) in principals_during(k, a, b) {
                    out.push(RewardEntry {
                        basis: "lead_principal",
                        group: Some(g.name.to_string()),
                        kindergarten: Some(k.name_on(from).to_string()),
                        name: name(&p),
                        staff_no: p.to_string(),
                        from,
                        to,
                    });
                }
            }
        }
        for t in &g.secretariat {
            let (a, b) = (t.from.max(jan1), t.last_day().min(dec31));
            if a <= b {
                out.push(RewardEntry {
                    basis: "secretariat",
                    group: Some(g.name.to_string()),
                    kindergarten: None,
                    name: name(&t.staff_no),
                    staff_no: t.staff_no.to_string(),
                    from: a,
                    to: b,
                });
            }
        }
    }
    for k in s.kindergartens().values() {
        for step in k
            .high_quality
            .iter()
            .filter(|d| d.value.0 && d.on.year() == year)
        {
            let on = step.on;
            let group = k.group_on(on).map(|g| g.to_string());
            let kname = Some(k.name_on(on).to_string());
            if let Some(p) = k.principal_on(on) {
                out.push(RewardEntry {
                    basis: "high_quality_principal",
                    group: group.clone(),
                    kindergarten: kname.clone(),
                    name: name(p),
                    staff_no: p.to_string(),
                    from: on,
                    to: on,
                });
            }
            for t in s.teachers_by_home().get(&k.id).into_iter().flatten() {
                let Some(te) = s.teachers().get(t) else {
                    continue;
                };
                let serving = te.serving_at(k.id, on);
                if serving && k.principal_on(on) != Some(t) {
                    out.push(RewardEntry {
                        basis: "high_quality_staff",
                        group: group.clone(),
                        kindergarten: kname.clone(),
                        name: name(t),
                        staff_no: t.to_string(),
                        from: on,
                        to: on,
                    });
                }
            }
            for r in s
                .rotations_by_host()
                .get(&k.id)
                .into_iter()
                .flatten()
                .filter_map(|r| s.rotations().get(r))
            {
                if r.active_on(on) {
                    out.push(RewardEntry {
                        basis: "high_quality_inflow",
                        group: group.clone(),
                        kindergarten: kname.clone(),
                        name: name(&r.staff_no),
                        staff_no: r.staff_no.to_string(),
                        from: on,
                        to: on,
                    });
                }
            }
        }
    }
    out
}
