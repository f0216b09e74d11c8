//! State on a date: groups, one group, one kindergarten, one teacher.

use serde::Serialize;

use eduledger_domain::State;
use eduledger_domain::state::{Kindergarten, Outcome, Rotation};
use eduledger_domain::values::*;

use crate::ViewError;

/// A member of a group on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MemberView {
    /// Short name on that date.
    pub name: String,
    /// `lead` or `member`.
    pub role: &'static str,
    /// Category code.
    pub category: &'static str,
    /// Ownership code.
    pub ownership: &'static str,
    /// Provisional name.
    pub provisional: bool,
    /// Designated high-quality on that date.
    pub high_quality: bool,
}

/// A group in the overview.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSummary {
    /// Name.
    pub name: String,
    /// `group` or `alliance`.
    pub kind: &'static str,
    /// The lead's name.
    pub lead: Option<String>,
    /// Members, lead first, then by category and name.
    pub members: Vec<MemberView>,
    /// Member counts by category code.
    pub counts: std::collections::BTreeMap<&'static str, usize>,
}

fn member_view(k: &Kindergarten, lead: bool, on: Date) -> MemberView {
    MemberView {
        name: k.name_on(on).to_string(),
        role: if lead { "lead" } else { "member" },
        category: k.category_on(on).code(),
        ownership: k.ownership.code(),
        provisional: k.provisional_on(on),
        high_quality: k.high_quality_on(on),
    }
}

fn members(s: &State, g: &GroupName, on: Date) -> Vec<MemberView> {
    let ks: Vec<&Kindergarten> = s
        .kindergartens()
        .values()
        .filter(|k| k.group_on(on) == Some(g))
        .collect();
    members_of(s, g, ks, on)
}

/// The members of `g` among `ks` (its kindergartens on `on`), lead first, then by category
/// and name.
fn members_of<'a>(
    s: &'a State,
    g: &GroupName,
    mut ks: Vec<&'a Kindergarten>,
    on: Date,
) -> Vec<MemberView> {
    let lead = s.groups().get(g).and_then(|gr| gr.lead_on(on));
    ks.sort_by_key(|k| (Some(k.id) != lead, k.category_on(on), k.name_on(on).clone()));
    ks.into_iter()
        .map(|k| member_view(k, Some(k.id) == lead, on))
        .collect()
}

/// All groups founded by `on`.
pub fn groups(s: &State, on: Date) -> Vec<GroupSummary> {
    // (reads the groups and their members only)
    groups_in(&s.membership_as_of(on), on)
}

/// [`groups`] of a state already pruned to `on` (the valid-time property test checks that
/// the narrow pruning gives what the whole state pruned gives).
#[doc(hidden)]
pub fn groups_in(s: &State, on: Date) -> Vec<GroupSummary> {
    // every kindergarten's group once, not once per group (1,600 × 110 at Shanghai scale)
    let mut by_group: std::collections::HashMap<&GroupName, Vec<&Kindergarten>> =
        std::collections::HashMap::new();
    for k in s.kindergartens().values() {
        if let Some(g) = k.group_on(on) {
            by_group.entry(g).or_default().push(k);
        }
    }
    s.groups()
        .values()
        .filter(|g| g.founded <= on)
        .map(|g| {
            let ks = by_group.remove(&g.name).unwrap_or_default();
            let members = members_of(s, &g.name, ks, on);
            let mut counts = std::collections::BTreeMap::new();
            for m in &members {
                *counts.entry(m.category).or_insert(0) += 1;
            }
            GroupSummary {
                name: g.name.to_string(),
                kind: g.kind.code(),
                lead: g.lead_on(on).map(|k| {
                    s.kindergartens()
                        .get(&k)
                        .map(|k| k.name_on(on).to_string())
                        .unwrap_or_default()
                }),
                members,
                counts,
            }
        })
        .collect()
}

/// A principal as shown in a view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonView {
    /// Staff number.
    pub staff_no: String,
    /// Name, if the teacher is registered.
    pub name: Option<String>,
    /// The kindergarten they head (for council seats).
    pub kindergarten: Option<String>,
    /// A role (secretariat) or affiliation (experts).
    pub role: Option<String>,
    /// First day.
    pub from: Option<Date>,
    /// Last day.
    pub to: Option<Date>,
}

/// The council (理事会), derived from principals on the date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Council {
    /// 理事长: the lead's principal.
    pub chair: Option<PersonView>,
    /// 理事: the other members' principals.
    pub members: Vec<PersonView>,
    /// Member kindergartens with no principal recorded on the date.
    pub vacant: Vec<String>,
}

/// A governance document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentView {
    /// Kind code.
    pub doc_kind: &'static str,
    /// Title.
    pub title: String,
    /// Period.
    pub period: Option<String>,
    /// SHA-256.
    pub sha256: Option<String>,
    /// Adoption date.
    pub on: Date,
}

/// One group in detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupDetail {
    /// Name.
    pub name: String,
    /// Kind code.
    pub kind: &'static str,
    /// Founding date.
    pub founded: Date,
    /// Lead.
    pub lead: Option<String>,
    /// Members.
    pub members: Vec<MemberView>,
    /// Council.
    pub council: Council,
    /// Secretariat serving on the date.
    pub secretariat: Vec<PersonView>,
    /// Experts assigned on the date.
    pub experts: Vec<PersonView>,
    /// Documents adopted by the date.
    pub documents: Vec<DocumentView>,
    /// Every time a kindergarten was in the group, by the date (its membership over time).
    pub membership: Vec<MembershipSpan>,
    /// Rotations running on the date into, out of or within the group.
    pub rotations: Vec<GroupRotation>,
}

/// A rotation running on a date, as a group sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupRotation {
    /// Id.
    pub rotation: String,
    /// The teacher.
    pub staff_no: String,
    /// The teacher's name.
    pub name: Option<String>,
    /// The teacher's home kindergarten on the date.
    pub home: Option<String>,
    /// The host.
    pub host: String,
    /// `in` (hosted by a member, from elsewhere), `out` (a member's teacher hosted
    /// elsewhere) or `within` (between two members).
    pub direction: &'static str,
    /// First day.
    pub start: Date,
    /// Last day as planned or as ended.
    pub last_day: Option<Date>,
}

/// The rotations running on `on` that touch a member of `g`, in order of start.
fn group_rotations(s: &State, g: &GroupName, on: Date) -> Vec<GroupRotation> {
    let member = |k: KgId| {
        s.kindergartens()
            .get(&k)
            .is_some_and(|k| k.group_on(on) == Some(g))
    };
    let mut out: Vec<GroupRotation> = s
        .rotations()
        .values()
        .filter(|r| r.active_on(on))
        .filter_map(|r| {
            let home = s
                .teachers()
                .get(&r.staff_no)
                .and_then(|t| t.home.at(on).copied());
            let direction = match (home.is_some_and(member), member(r.host)) {
                (true, true) => "within",
                (true, false) => "out",
                (false, true) => "in",
                (false, false) => return None,
            };
            Some(GroupRotation {
                rotation: r.id.to_string(),
                staff_no: r.staff_no.to_string(),
                name: s.teachers().get(&r.staff_no).map(|t| t.name.to_string()),
                home: home.map(|h| s.kg_label(h)),
                host: s.kg_label(r.host),
                direction,
                start: r.start,
                last_day: r.last_day(),
            })
        })
        .collect();
    out.sort_by(|a, b| (a.start, &a.rotation).cmp(&(b.start, &b.rotation)));
    out
}

/// A stretch of time a kindergarten was a member of a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MembershipSpan {
    /// Short name on the date read.
    pub kindergarten: String,
    /// First day in the group.
    pub from: Date,
    /// The day it left (no longer a member that day); None: still a member on the date.
    pub until: Option<Date>,
}

/// The stretches each kindergarten spent in `g`, in order of joining, from a state already
/// cut at `on` (so nothing effective later shows).
fn membership_spans(s: &State, g: &GroupName, on: Date) -> Vec<MembershipSpan> {
    let mut spans = vec![];
    for k in s.kindergartens().values() {
        let mut since: Option<Date> = None;
        for step in k.membership.iter() {
            let inside = step.value.group_after() == Some(g);
            match (since, inside) {
                (None, true) => since = Some(step.on),
                (Some(from), false) => {
                    spans.push(MembershipSpan {
                        kindergarten: k.name_on(on).to_string(),
                        from,
                        until: Some(step.on),
                    });
                    since = None;
                }
                _ => {}
            }
        }
        if let Some(from) = since {
            spans.push(MembershipSpan {
                kindergarten: k.name_on(on).to_string(),
                from,
                until: None,
            });
        }
    }
    spans.sort_by(|a, b| (a.from, &a.kindergarten).cmp(&(b.from, &b.kindergarten)));
    spans
}

fn person(s: &State, staff: &StaffNo) -> PersonView {
    PersonView {
        staff_no: staff.to_string(),
        name: s.teachers().get(staff).map(|t| t.name.to_string()),
        kindergarten: None,
        role: None,
        from: None,
        to: None,
    }
}

/// Look a group up, suggesting close names.
pub fn find_group<'a>(
    s: &'a State,
    name: &str,
) -> Result<&'a eduledger_domain::state::Group, ViewError> {
    s.groups()
        .values()
        .find(|g| g.name.as_str() == name)
        .ok_or_else(|| ViewError::Unknown {
            kind: "group",
            name: name.into(),
            suggestions: eduledger_domain::suggest::closest(
                name,
                s.groups().keys().map(|g| g.as_str()),
            ),
        })
}

/// Look a kindergarten up by any of its names.
pub fn find_kindergarten<'a>(s: &'a State, name: &str) -> Result<&'a Kindergarten, ViewError> {
    s.kg_by_name(name).ok_or_else(|| ViewError::Unknown {
        kind: "kindergarten",
        name: name.into(),
        suggestions: eduledger_domain::suggest::closest(
            name,
            s.kg_names().keys().map(|g| g.as_str()),
        ),
    })
}

/// One group on a date.
pub fn group(s: &State, name: &str, on: Date) -> Result<GroupDetail, ViewError> {
    let s = &s.as_of(on);
    let g = find_group(s, name)?;
    let lead = g.lead_on(on);
    let mut council = Council {
        chair: None,
        members: vec![],
        vacant: vec![],
    };
    for k in s
        .kindergartens()
        .values()
        .filter(|k| k.group_on(on) == Some(&g.name))
    {
        match k.principal_on(on) {
            None => council.vacant.push(k.name_on(on).to_string()),
            Some(p) => {
                let mut v = person(s, p);
                v.kindergarten = Some(k.name_on(on).to_string());
                if Some(k.id) == lead {
                    council.chair = Some(v);
                } else {
                    council.members.push(v);
                }
            }
        }
    }
    Ok(GroupDetail {
        name: g.name.to_string(),
        kind: g.kind.code(),
        founded: g.founded,
        lead: lead.map(|k| {
            s.kindergartens()
                .get(&k)
                .map(|k| k.name_on(on).to_string())
                .unwrap_or_default()
        }),
        members: members(s, &g.name, on),
        council,
        secretariat: g
            .secretariat
            .iter()
            .filter(|t| t.serving_on(on))
            .map(|t| PersonView {
                role: Some(t.role.to_string()),
                from: Some(t.from),
                to: Some(t.last_day()),
                ..person(s, &t.staff_no)
            })
            .collect(),
        experts: g
            .experts
            .iter()
            .filter(|e| e.from <= on && on <= e.to)
            .map(|e| PersonView {
                staff_no: String::new(),
                name: Some(e.expert.to_string()),
                kindergarten: None,
                role: Some(e.affiliation.to_string()),
                from: Some(e.from),
                to: Some(e.to),
            })
            .collect(),
        documents: g
            .documents
            .iter()
            .filter(|d| d.on <= on)
            .map(|d| DocumentView {
                doc_kind: d.doc_kind.code(),
                title: d.title.to_string(),
                period: d.period.as_ref().map(|p| p.to_string()),
                sha256: d.sha256.as_ref().map(|h| h.as_str().to_owned()),
                on: d.on,
            })
            .collect(),
        membership: membership_spans(s, &g.name, on),
        rotations: group_rotations(s, &g.name, on),
    })
}

/// One kindergarten on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KindergartenDetail {
    /// Name on the date.
    pub name: String,
    /// Every name it has had, in order.
    pub names: Vec<String>,
    /// Full name.
    pub full_name: Option<String>,
    /// Registration date.
    pub registered: Date,
    /// Group on the date.
    pub group: Option<String>,
    /// `lead`, `member` or null.
    pub role: Option<&'static str>,
    /// Category code.
    pub category: &'static str,
    /// Ownership code.
    pub ownership: &'static str,
    /// Provisional name.
    pub provisional: bool,
    /// High-quality on the date.
    pub high_quality: bool,
    /// Date of the designation in force.
    pub high_quality_since: Option<Date>,
    /// Principal on the date.
    pub principal: Option<PersonView>,
    /// Teachers whose establishment is here on the date.
    pub staff: Vec<PersonView>,
    /// Teachers rotating in on the date (inflow).
    pub inflow: Vec<PersonView>,
}

/// One kindergarten on a date.
pub fn kindergarten(s: &State, name: &str, on: Date) -> Result<KindergartenDetail, ViewError> {
    let s = &s.as_of(on);
    let k = find_kindergarten(s, name)?;
    let group = k.group_on(on).cloned();
    let role = group.as_ref().map(|g| {
        if s.groups().get(g).and_then(|gr| gr.lead_on(on)) == Some(k.id) {
            "lead"
        } else {
            "member"
        }
    });
    let staff = s
        .teachers_by_home()
        .get(&k.id)
        .map(|set| {
            set.iter()
                .filter_map(|t| s.teachers().get(t))
                .filter(|t| t.serving_at(k.id, on))
                .map(|t| person(s, &t.staff_no))
                .collect()
        })
        .unwrap_or_default();
    let inflow = s
        .rotations_by_host()
        .get(&k.id)
        .map(|set| {
            set.iter()
                .filter_map(|r| s.rotations().get(r))
                .filter(|r| r.active_on(on))
                .map(|r| PersonView {
                    role: Some(r.mode.code().into()),
                    from: Some(r.start),
                    to: r.last_day(),
                    ..person(s, &r.staff_no)
                })
                .collect()
        })
        .unwrap_or_default();
    let high_quality_since = k
        .high_quality
        .iter()
        .filter(|d| d.on <= on)
        .last()
        .filter(|d| d.value.0)
        .map(|d| d.on);
    Ok(KindergartenDetail {
        name: k.name_on(on).to_string(),
        names: k.names.iter().map(|d| d.value.0.to_string()).collect(),
        full_name: k.full_name.as_ref().map(|f| f.to_string()),
        registered: k.registered,
        group: group.map(|g| g.to_string()),
        role,
        category: k.category_on(on).code(),
        ownership: k.ownership.code(),
        provisional: k.provisional_on(on),
        high_quality: k.high_quality_on(on),
        high_quality_since,
        principal: k.principal_on(on).map(|p| person(s, p)),
        staff,
        inflow,
    })
}

/// A rotation as shown in a teacher's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RotationView {
    /// Id.
    pub rotation: String,
    /// Host.
    pub host: String,
    /// Mode code.
    pub mode: &'static str,
    /// Start.
    pub start: Date,
    /// Planned end.
    pub planned_end: Date,
    /// `running`, `ended`, `cancelled`.
    pub status: &'static str,
    /// Last day actually on rotation.
    pub end: Option<Date>,
    /// Host assessment.
    pub assessment: Option<&'static str>,
    /// Whether an exception to the two-year rule was recorded.
    pub exception: bool,
}

/// A training as shown in a teacher's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrainingView {
    /// Id.
    pub training: String,
    /// Title.
    pub title: String,
    /// Tier code.
    pub tier: &'static str,
    /// Start.
    pub start: Date,
    /// End.
    pub end: Date,
    /// Hours.
    pub hours: String,
    /// Counts as district level (district tier, or group tier with granted recognition).
    pub district_recognised: bool,
}

/// One teacher on a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TeacherDetail {
    /// Staff number.
    pub staff_no: String,
    /// Name.
    pub name: String,
    /// Home kindergarten (编制所在园) on the date.
    pub home: Option<String>,
    /// Host kindergarten on the date, if on rotation.
    pub host: Option<String>,
    /// In service on the date.
    pub in_service: bool,
    /// Rotations, in start order.
    pub rotations: Vec<RotationView>,
    /// Trainings attended by the date.
    pub trainings: Vec<TrainingView>,
    /// District-recognised hours by the date.
    pub district_hours: String,
    /// Titles awarded by the date.
    pub titles: Vec<(Date, &'static str)>,
    /// Eligible for the 人员保障 preferences (a completed rotation assessed qualified or better).
    pub eligible: bool,
    /// Since when.
    pub eligible_since: Option<Date>,
}

fn rotation_view(s: &State, r: &Rotation) -> RotationView {
    let (status, end, assessment) = match &r.outcome {
        None => ("running", None, None),
        Some(Outcome::Ended {
            end, assessment, ..
        }) => ("ended", Some(*end), Some(assessment.code())),
        Some(Outcome::Cancelled { .. }) => ("cancelled", r.last_day(), None),
    };
    RotationView {
        rotation: r.id.to_string(),
        host: s.kg_label(r.host),
        mode: r.mode.code(),
        start: r.start,
        planned_end: r.planned_end,
        status,
        end,
        assessment,
        exception: r.exception.is_some(),
    }
}

/// One teacher on a date.
pub fn teacher(s: &State, staff_no: &str, on: Date) -> Result<TeacherDetail, ViewError> {
    let s = &s.as_of(on);
    let t = s
        .teachers()
        .values()
        .find(|t| t.staff_no.as_str() == staff_no)
        .ok_or_else(|| ViewError::Unknown {
            kind: "teacher",
            name: staff_no.into(),
            suggestions: eduledger_domain::suggest::closest(
                staff_no,
                s.teachers().keys().map(|t| t.as_str()),
            ),
        })?;
    let mut rotations: Vec<&Rotation> = s
        .rotations_by_teacher()
        .get(&t.staff_no)
        .map(|ids| ids.iter().filter_map(|id| s.rotations().get(id)).collect())
        .unwrap_or_default();
    rotations.sort_by_key(|r| r.start);
    let host = rotations
        .iter()
        .find(|r| r.active_on(on))
        .map(|r| s.kg_label(r.host));
    let eligible_since = rotations
        .iter()
        .filter_map(|r| match &r.outcome {
            Some(Outcome::Ended {
                end, assessment, ..
            }) if assessment.makes_eligible() && *end <= on => Some(*end),
            _ => None,
        })
        .min();
    let attended: Vec<&eduledger_domain::state::Training> = s
        .trainings_of(&t.staff_no)
        .filter(|tr| tr.start <= on)
        .collect();
    let trainings: Vec<TrainingView> = attended
        .iter()
        .map(|tr| TrainingView {
            training: tr.id.to_string(),
            title: tr.title.to_string(),
            tier: tr.tier.code(),
            start: tr.start,
            end: tr.end,
            hours: tr.hours.to_string(),
            district_recognised: tr.counts_as_district()
                && tr.decision.as_ref().is_none_or(|d| d.on <= on),
        })
        .collect();
    let tenths: u32 = attended
        .iter()
        .filter(|tr| tr.counts_as_district() && tr.decision.as_ref().is_none_or(|d| d.on <= on))
        .map(|tr| tr.hours.tenths())
        .sum();
    Ok(TeacherDetail {
        staff_no: t.staff_no.to_string(),
        name: t.name.to_string(),
        home: t.home.at(on).map(|k| {
            s.kindergartens()
                .get(k)
                .map(|k| k.name_on(on).to_string())
                .unwrap_or_default()
        }),
        host,
        in_service: t.in_service_on(on),
        rotations: rotations.iter().map(|r| rotation_view(s, r)).collect(),
        trainings,
        district_hours: Hours::from_tenths(tenths).to_string(),
        titles: t
            .titles
            .iter()
            .filter(|d| d.on <= on)
            .map(|d| (d.on, d.value.code()))
            .collect(),
        eligible: eligible_since.is_some(),
        eligible_since,
    })
}
