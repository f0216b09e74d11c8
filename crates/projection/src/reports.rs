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
    /// Council meetings (理事会/工作例会) per group and semester: reported, the plan sets no number.
    pub meetings: Vec<MeetingCount>,
    /// Each group's governance documents adopted by the date.
    pub documents: Vec<DocumentStatus>,
    /// Rotations that ran in the year under an approved exception to the two-year rule.
    pub exceptions: Vec<ExceptionUse>,
}

/// Council meetings of one group in one semester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MeetingCount {
    /// Group.
    pub group: String,
    /// Semester name.
    pub semester: String,
    /// Meetings held in it by the date.
    pub count: usize,
}

/// Whether a group has adopted its 章程, 年度计划 (for the year) and 三年发展规划.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentStatus {
    /// Group.
    pub group: String,
    /// A charter adopted by the date.
    pub charter: bool,
    /// An annual plan adopted in the year, by the date.
    pub annual_plan: bool,
    /// A three-year plan adopted by the date.
    pub three_year_plan: bool,
}

/// A rotation running in the year under an exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExceptionUse {
    /// Rotation.
    pub rotation: String,
    /// The exception's document.
    pub reference: String,
    /// Who approved it.
    pub approved_by: String,
}

/// Whether a rotation ran on any day of `[jan1, dec31]`.
fn ran_in(r: &eduledger_domain::state::Rotation, jan1: Date, dec31: Date) -> bool {
    r.start <= dec31 && r.last_day().is_some_and(|l| l >= jan1)
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
    let meetings = s
        .groups()
        .values()
        .flat_map(|g| {
            Semester::overlapping(year)
                .into_iter()
                .filter(move |sem| g.founded <= sem.last())
                .map(move |sem| MeetingCount {
                    group: g.name.to_string(),
                    semester: sem.name(),
                    count: s
                        .activities()
                        .values()
                        .filter(|a| {
                            a.group == g.name
                                && a.kind == ActivityKind::CouncilMeeting
                                && a.on >= sem.first()
                                && a.on <= sem.last()
                        })
                        .count(),
                })
        })
        .collect();
    let documents = s
        .groups()
        .values()
        .map(|g| {
            let has = |kind: DocKind, in_year: bool| {
                g.documents
                    .iter()
                    .any(|d| d.doc_kind == kind && (!in_year || d.on.year() == year))
            };
            DocumentStatus {
                group: g.name.to_string(),
                charter: has(DocKind::Charter, false),
                annual_plan: has(DocKind::AnnualPlan, true),
                three_year_plan: has(DocKind::ThreeYearPlan, false),
            }
        })
        .collect();
    let exceptions = s
        .rotations()
        .values()
        .filter(|r| ran_in(r, jan1, dec31))
        .filter_map(|r| {
            r.exception.as_ref().map(|e| ExceptionUse {
                rotation: r.id.to_string(),
                reference: e.reference.to_string(),
                approved_by: e.approved_by.to_string(),
            })
        })
        .collect();
    Compliance {
        semesters,
        unvisited,
        visited: visited_ids.len(),
        long_rotations,
        high_quality,
        meetings,
        documents,
        exceptions,
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

/// Categories per group on a date, and their spread (相对均衡分布, §三(一)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Balance {
    /// Each group's members by category.
    pub groups: Vec<BalanceGroup>,
    /// For each category: the most members of it in one group minus the fewest.
    pub spread: std::collections::BTreeMap<&'static str, usize>,
}

/// One group's members by category.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BalanceGroup {
    /// Group.
    pub group: String,
    /// Category code → members.
    pub categories: std::collections::BTreeMap<&'static str, usize>,
}

/// The balance of categories between groups on `on`.
pub fn balance(s: &State, on: Date) -> Balance {
    let s = &s.as_of(on);
    let groups: Vec<BalanceGroup> = s
        .groups()
        .values()
        .map(|g| {
            let mut categories = std::collections::BTreeMap::new();
            for k in s.members_on(&g.name, on) {
                if let Some(k) = s.kindergartens().get(&k) {
                    *categories.entry(k.category_on(on).code()).or_insert(0) += 1;
                }
            }
            BalanceGroup {
                group: g.name.to_string(),
                categories,
            }
        })
        .collect();
    let all: BTreeSet<&'static str> = groups
        .iter()
        .flat_map(|g| g.categories.keys().copied())
        .collect();
    let spread = all
        .into_iter()
        .map(|c| {
            let counts = groups
                .iter()
                .map(|g| g.categories.get(c).copied().unwrap_or(0));
            let max = counts.clone().max().unwrap_or(0);
            let min = counts.min().unwrap_or(0);
            (c, max - min)
        })
        .collect();
    Balance { groups, spread }
}

/// Special funds (专项经费) of a year, per group and use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Funds {
    /// The year.
    pub year: i32,
    /// Per group.
    pub groups: Vec<FundGroup>,
    /// Budgets approved, all groups.
    pub total_approved_fen: i64,
}

/// One group's funds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FundGroup {
    /// Group.
    pub group: String,
    /// Per use (the project kinds).
    pub uses: Vec<FundUse>,
    /// Budgets approved.
    pub total_approved_fen: i64,
}

/// One use's budgets, in fen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FundUse {
    /// The project kind.
    #[serde(rename = "use")]
    pub use_: &'static str,
    /// Budgets of the year's projects approved by the date.
    pub approved_fen: i64,
    /// Of those, the projects completed by the date.
    pub completed_fen: i64,
    /// Of those, the projects cancelled by the date.
    pub cancelled_fen: i64,
}

/// The special funds of projects of `year`, as they stood on `on`. Sums saturate (a budget
/// is at most what `Fen` holds; no real year comes near).
pub fn funds(s: &State, year: i32, on: Date) -> Funds {
    let s = &s.as_of(on);
    let mut per: std::collections::BTreeMap<
        String,
        std::collections::BTreeMap<&'static str, FundUse>,
    > = std::collections::BTreeMap::new();
    for g in s.groups().values() {
        per.entry(g.name.to_string()).or_default();
    }
    for p in s.projects().values().filter(|p| p.year == year) {
        let Some((_, budget)) = p.approved else {
            continue;
        };
        let b = budget.get();
        let u = per
            .entry(p.group.to_string())
            .or_default()
            .entry(p.kind.code())
            .or_insert(FundUse {
                use_: p.kind.code(),
                approved_fen: 0,
                completed_fen: 0,
                cancelled_fen: 0,
            });
        u.approved_fen = u.approved_fen.saturating_add(b);
        if p.completed.is_some() {
            u.completed_fen = u.completed_fen.saturating_add(b);
        }
        if p.cancelled.is_some() {
            u.cancelled_fen = u.cancelled_fen.saturating_add(b);
        }
    }
    let groups: Vec<FundGroup> = per
        .into_iter()
        .map(|(group, uses)| {
            let uses: Vec<FundUse> = uses.into_values().collect();
            let total = uses
                .iter()
                .fold(0i64, |a, u| a.saturating_add(u.approved_fen));
            FundGroup {
                group,
                uses,
                total_approved_fen: total,
            }
        })
        .collect();
    let total_approved_fen = groups
        .iter()
        .fold(0i64, |a, g| a.saturating_add(g.total_approved_fen));
    Funds {
        year,
        groups,
        total_approved_fen,
    }
}

/// One rotation of the year, for HR (提任干部的重要因素, §四(三)).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationRow {
    /// Rotation.
    pub rotation: String,
    /// Teacher.
    pub staff_no: String,
    /// The teacher's name.
    pub name: Option<String>,
    /// Home kindergarten at the start (by the name it bears on the report's date).
    pub home: Option<String>,
    /// Host (by the name it bears on the report's date).
    pub host: String,
    /// Mode code.
    pub mode: &'static str,
    /// First day.
    pub start: Date,
    /// Planned last day, as of the date.
    pub planned_end: Date,
    /// Last day, if ended or cancelled by the date.
    pub end: Option<Date>,
    /// The host's assessment, if ended by the date.
    pub assessment: Option<&'static str>,
    /// The exception's reference, if any.
    pub exception: Option<String>,
}

/// Every rotation that ran in `year`, as known on `on`.
pub fn rotations(s: &State, year: i32, on: Date) -> Vec<RotationRow> {
    let s = &s.as_of(on);
    let (jan1, dec31) = (Date::jan1(year), Date::dec31(year));
    let mut rows: Vec<RotationRow> = s
        .rotations()
        .values()
        .filter(|r| ran_in(r, jan1, dec31))
        .map(|r| {
            let teacher = s.teachers().get(&r.staff_no);
            let home = teacher
                .and_then(|t| t.home.at(r.start).copied())
                .and_then(|k| s.kindergartens().get(&k))
                .map(|k| k.name_on(on).to_string());
            let (end, assessment) = match &r.outcome {
                Some(eduledger_domain::state::Outcome::Ended {
                    end, assessment, ..
                }) => (Some(*end), Some(assessment.code())),
                Some(eduledger_domain::state::Outcome::Cancelled { .. }) => (r.last_day(), None),
                None => (None, None),
            };
            RotationRow {
                rotation: r.id.to_string(),
                staff_no: r.staff_no.to_string(),
                name: teacher.map(|t| t.name.to_string()),
                home,
                host: s
                    .kindergartens()
                    .get(&r.host)
                    .map(|k| k.name_on(on).to_string())
                    .unwrap_or_default(),
                mode: r.mode.code(),
                start: r.start,
                planned_end: r.planned_end,
                end,
                assessment,
                exception: r.exception.as_ref().map(|e| e.reference.to_string()),
            }
        })
        .collect();
    rows.sort_by(|a, b| (a.start, &a.rotation).cmp(&(b.start, &b.rotation)));
    rows
}
