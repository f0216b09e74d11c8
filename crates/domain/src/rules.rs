//! The plan's rules, checked when an event is about to be accepted.
//!
//! [`check`] applies the event to a clone of the state (O(1): persistent maps) and then
//! re-checks every rule in which the touched kindergartens, groups, teachers and rotations
//! take part, over their whole history. That is what makes back-dated commands safe: a
//! leave recorded today for last spring is refused if last spring's activities, rotations
//! or lead still need the kindergarten in its group.

use std::collections::BTreeSet;

use crate::error::DomainError;
use crate::event::*;
use crate::state::*;
use crate::values::*;

type R = Result<(), DomainError>;

/// Check `event` against `before` and return the state with it applied.
pub fn check(before: &State, event: &Event, origin: Origin) -> Result<State, DomainError> {
    pre(before, event)?;
    let mut next = before.clone();
    next.apply(event, origin);
    post(&next, event)?;
    Ok(next)
}

fn kg(s: &State, id: KgId) -> Result<&Kindergarten, DomainError> {
    s.kindergartens
        .get(&id)
        .ok_or_else(|| DomainError::Unknown {
            kind: "kindergarten",
            name: id.to_string(),
            suggestions: vec![],
        })
}

fn group<'a>(s: &'a State, g: &GroupName) -> Result<&'a Group, DomainError> {
    s.groups.get(g).ok_or_else(|| DomainError::Unknown {
        kind: "group",
        name: g.to_string(),
        suggestions: crate::suggest::closest(g.as_str(), s.groups.keys().map(|k| k.as_str())),
    })
}

fn teacher<'a>(s: &'a State, t: &StaffNo) -> Result<&'a Teacher, DomainError> {
    s.teachers.get(t).ok_or_else(|| DomainError::Unknown {
        kind: "teacher",
        name: t.to_string(),
        suggestions: crate::suggest::closest(t.as_str(), s.teachers.keys().map(|k| k.as_str())),
    })
}

fn unknown(kind: &'static str, id: &RecordId, known: impl Iterator<Item = String>) -> DomainError {
    let known: Vec<String> = known.collect();
    DomainError::Unknown {
        kind,
        name: id.to_string(),
        suggestions: crate::suggest::closest(id.as_str(), known.iter().map(String::as_str)),
    }
}

fn kg_alive(s: &State, id: KgId, on: Date) -> R {
    let k = kg(s, id)?;
    if on < k.registered {
        return Err(DomainError::OutsideLifetime {
            what: format!("kindergarten {}", k.current_name()),
            on,
            why: format!("it was registered on {}", k.registered),
        });
    }
    Ok(())
}

fn group_alive(s: &State, g: &GroupName, on: Date) -> R {
    let gr = group(s, g)?;
    if on < gr.founded {
        return Err(DomainError::OutsideLifetime {
            what: format!("group {g}"),
            on,
            why: format!("it was founded on {}", gr.founded),
        });
    }
    Ok(())
}

fn teacher_in_service(s: &State, t: &StaffNo, on: Date) -> R {
    let te = teacher(s, t)?;
    if on < te.registered {
        return Err(DomainError::OutsideLifetime {
            what: format!("teacher {t}"),
            on,
            why: format!("the teacher was registered on {}", te.registered),
        });
    }
    if let Some(left) = te.left
        && on >= left
    {
        return Err(DomainError::OutsideLifetime {
            what: format!("teacher {t}"),
            on,
            why: format!("the teacher left service on {left}"),
        });
    }
    Ok(())
}

fn order(field: &'static str, value: Date, other_field: &'static str, other: Date) -> R {
    if value < other {
        return Err(DomainError::DateOrder {
            field,
            value,
            other_field,
            other,
        });
    }
    Ok(())
}

fn group_label(g: Option<&GroupName>) -> String {
    g.map(|g| g.to_string())
        .unwrap_or_else(|| "no group".into())
}

/// Checks that read best against the state before the event.
fn pre(s: &State, event: &Event) -> R {
    match event {
        Event::KindergartenRegistered(e) => {
            if s.kindergartens.contains_key(&e.kindergarten) {
                return Err(DomainError::AlreadyExists {
                    kind: "kindergarten id",
                    name: e.kindergarten.to_string(),
                });
            }
            if s.kg_names.contains_key(&e.name) {
                return Err(DomainError::AlreadyExists {
                    kind: "kindergarten name",
                    name: e.name.to_string(),
                });
            }
        }
        Event::KindergartenRenamed(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if s.kg_names.contains_key(&e.new_name) {
                return Err(DomainError::AlreadyExists {
                    kind: "kindergarten name",
                    name: e.new_name.to_string(),
                });
            }
        }
        Event::GroupFounded(e) => {
            if s.groups.contains_key(&e.group) {
                return Err(DomainError::AlreadyExists {
                    kind: "group",
                    name: e.group.to_string(),
                });
            }
            kg_alive(s, e.lead, e.on)?;
            if let Some(g) = kg(s, e.lead)?.group_on(e.on) {
                return Err(DomainError::AlreadyInGroup {
                    kindergarten: s.kg_label(e.lead),
                    group: g.to_string(),
                    on: e.on,
                });
            }
        }
        Event::KindergartenJoined(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            group_alive(s, &e.group, e.on)?;
            if let Some(g) = kg(s, e.kindergarten)?.group_on(e.on) {
                return Err(DomainError::AlreadyInGroup {
                    kindergarten: s.kg_label(e.kindergarten),
                    group: g.to_string(),
                    on: e.on,
                });
            }
        }
        Event::KindergartenLeft(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            group(s, &e.group)?;
            if kg(s, e.kindergarten)?.group_on(e.on) != Some(&e.group) {
                return Err(DomainError::NotInGroup {
                    kindergarten: s.kg_label(e.kindergarten),
                    group: e.group.to_string(),
                    on: e.on,
                });
            }
        }
        Event::KindergartenTransferred(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            group_alive(s, &e.to_group, e.on)?;
            if kg(s, e.kindergarten)?.group_on(e.on) != Some(&e.from_group) {
                return Err(DomainError::NotInGroup {
                    kindergarten: s.kg_label(e.kindergarten),
                    group: e.from_group.to_string(),
                    on: e.on,
                });
            }
            if e.from_group == e.to_group {
                return Err(DomainError::AlreadyInGroup {
                    kindergarten: s.kg_label(e.kindergarten),
                    group: e.to_group.to_string(),
                    on: e.on,
                });
            }
        }
        Event::LeadChanged(e) => {
            group_alive(s, &e.group, e.on)?;
            kg_alive(s, e.lead, e.on)?;
            if kg(s, e.lead)?.group_on(e.on) != Some(&e.group) {
                return Err(DomainError::LeadNotMember {
                    kindergarten: s.kg_label(e.lead),
                    group: e.group.to_string(),
                    on: e.on,
                });
            }
        }
        Event::KindergartenRegraded(e) => kg_alive(s, e.kindergarten, e.on)?,
        Event::HighQualityDesignated(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if kg(s, e.kindergarten)?.high_quality_on(e.on) {
                return Err(DomainError::HighQuality {
                    kindergarten: s.kg_label(e.kindergarten),
                    detail: "is already designated high-quality",
                    on: e.on,
                });
            }
        }
        Event::HighQualityRevoked(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if !kg(s, e.kindergarten)?.high_quality_on(e.on) {
                return Err(DomainError::HighQuality {
                    kindergarten: s.kg_label(e.kindergarten),
                    detail: "is not designated high-quality",
                    on: e.on,
                });
            }
        }
        Event::PrincipalAppointed(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            teacher_in_service(s, &e.staff_no, e.on)?;
        }
        Event::PrincipalEnded(e) => {
            kg_alive(s, e.kindergarten, e.on)?;
            if kg(s, e.kindergarten)?.principal_on(e.on).is_none() {
                return Err(DomainError::NoPrincipal {
                    kindergarten: s.kg_label(e.kindergarten),
                    on: e.on,
                });
            }
        }
        Event::SecretariatAppointed(e) => {
            group_alive(s, &e.group, e.from)?;
            order("to", e.to, "from", e.from)?;
            teacher_in_service(s, &e.staff_no, e.from)?;
        }
        Event::SecretariatDismissed(e) => {
            let g = group(s, &e.group)?;
            let serving = g.secretariat.iter().any(|t| {
                t.staff_no == e.staff_no && t.dismissed.is_none() && t.from <= e.on && e.on <= t.to
            });
            if !serving {
                return Err(DomainError::NoSecretariatTerm {
                    staff_no: e.staff_no.to_string(),
                    group: e.group.to_string(),
                    on: e.on,
                });
            }
        }
        Event::DocumentAdopted(e) => group_alive(s, &e.group, e.on)?,
        Event::ExpertAssigned(e) => {
            group_alive(s, &e.group, e.from)?;
            order("to", e.to, "from", e.from)?;
        }
        Event::TeacherRegistered(e) => {
            if s.teachers.contains_key(&e.staff_no) {
                return Err(DomainError::AlreadyExists {
                    kind: "teacher",
                    name: e.staff_no.to_string(),
                });
            }
            kg_alive(s, e.home, e.on)?;
        }
        Event::HomeChanged(e) => {
            teacher_in_service(s, &e.staff_no, e.on)?;
            kg_alive(s, e.home, e.on)?;
        }
        Event::TitleAwarded(e) => teacher_in_service(s, &e.staff_no, e.on)?,
        Event::ServiceLeft(e) => teacher_in_service(s, &e.staff_no, e.on)?,
        Event::RotationStarted(e) => {
            if s.rotations.contains_key(&e.rotation) {
                return Err(DomainError::AlreadyExists {
                    kind: "rotation",
                    name: e.rotation.to_string(),
                });
            }
            teacher_in_service(s, &e.staff_no, e.start)?;
            kg_alive(s, e.host, e.start)?;
            order("planned_end", e.planned_end, "start", e.start)?;
        }
        Event::RotationExtended(e) => {
            let r = rotation(s, &e.rotation)?;
            if r.outcome.is_some() {
                return Err(DomainError::RotationState {
                    rotation: e.rotation.to_string(),
                    state: r.state_words(),
                    action: "extended",
                });
            }
            if e.planned_end <= r.planned_end {
                return Err(DomainError::field(
                    "planned_end",
                    format!(
                        "{} must be after the current planned end {} to extend rotation {}",
                        e.planned_end, r.planned_end, e.rotation
                    ),
                ));
            }
        }
        Event::RotationEnded(e) => {
            let r = rotation(s, &e.rotation)?;
            if r.outcome.is_some() {
                return Err(DomainError::RotationState {
                    rotation: e.rotation.to_string(),
                    state: r.state_words(),
                    action: "ended",
                });
            }
            order("end", e.end, "start", r.start)?;
            if e.end > r.planned_end {
                return Err(DomainError::field(
                    "end",
                    format!(
                        "{} is after the planned end {} of rotation {}; record extend_rotation first",
                        e.end, r.planned_end, e.rotation
                    ),
                ));
            }
        }
        Event::RotationCancelled(e) => {
            let r = rotation(s, &e.rotation)?;
            if r.outcome.is_some() {
                return Err(DomainError::RotationState {
                    rotation: e.rotation.to_string(),
                    state: r.state_words(),
                    action: "cancelled",
                });
            }
            if e.on > r.planned_end {
                return Err(DomainError::field(
                    "on",
                    format!(
                        "{} is after the planned end {} of rotation {}; record end_rotation instead",
                        e.on, r.planned_end, e.rotation
                    ),
                ));
            }
        }
        Event::TrainingHeld(e) => {
            if s.trainings.contains_key(&e.training) {
                return Err(DomainError::AlreadyExists {
                    kind: "training",
                    name: e.training.to_string(),
                });
            }
            order("end", e.end, "start", e.start)?;
            match (&e.organizer, e.tier) {
                (Organizer::Group(g), TrainingTier::Group) => group_alive(s, g, e.start)?,
                (Organizer::Kindergarten(k), TrainingTier::Kindergarten) => {
                    kg_alive(s, *k, e.start)?
                }
                (Organizer::Body(_), TrainingTier::Municipal | TrainingTier::District) => {}
                _ => {
                    return Err(DomainError::Organizer {
                        training: e.training.to_string(),
                        detail: format!(
                            "a {} training must be organised by {}",
                            e.tier,
                            match e.tier {
                                TrainingTier::Group => "a group",
                                TrainingTier::Kindergarten => "a kindergarten",
                                _ => "a body that is not a group or kindergarten",
                            }
                        ),
                    });
                }
            }
        }
        Event::AttendanceRecorded(e) => {
            let t = training(s, &e.training)?;
            if e.staff_nos.is_empty() {
                return Err(DomainError::field(
                    "staff_nos",
                    "must list at least one staff number",
                ));
            }
            for (i, st) in e.staff_nos.iter().enumerate() {
                teacher_in_service(s, st, t.start)?;
                let again = e.staff_nos[..i].contains(st)
                    || s.trainings_by_teacher
                        .get(st)
                        .is_some_and(|l| l.contains(&t.ordinal));
                if again {
                    return Err(DomainError::field(
                        "staff_nos",
                        format!(
                            "{st} is already recorded as attending training {}",
                            e.training
                        ),
                    ));
                }
            }
        }
        Event::RecognitionApplied(e) => {
            let t = training(s, &e.training)?;
            if t.tier != TrainingTier::Group {
                return Err(DomainError::Recognition {
                    training: e.training.to_string(),
                    detail: format!(
                        "only a group training can apply for recognition; this one is {}",
                        t.tier
                    ),
                });
            }
            if t.applied.is_some() {
                return Err(DomainError::Recognition {
                    training: e.training.to_string(),
                    detail: "has already applied for recognition".into(),
                });
            }
            order("on", e.on, "training start", t.start)?;
        }
        Event::RecognitionDecided(e) => {
            let t = training(s, &e.training)?;
            let Some(applied) = t.applied else {
                return Err(DomainError::Recognition {
                    training: e.training.to_string(),
                    detail: "has not applied for recognition, so there is nothing to decide".into(),
                });
            };
            if t.decision.is_some() {
                return Err(DomainError::Recognition {
                    training: e.training.to_string(),
                    detail: "recognition was already decided".into(),
                });
            }
            order("on", e.on, "application date", applied)?;
        }
        Event::ActivityHeld(e) => {
            if s.activities.contains_key(&e.activity) {
                return Err(DomainError::AlreadyExists {
                    kind: "activity",
                    name: e.activity.to_string(),
                });
            }
            group_alive(s, &e.group, e.on)?;
            if e.kindergartens.is_empty() {
                return Err(DomainError::field(
                    "kindergartens",
                    "must list at least one kindergarten",
                ));
            }
            let distinct: BTreeSet<_> = e.kindergartens.iter().collect();
            if distinct.len() != e.kindergartens.len() {
                return Err(DomainError::field(
                    "kindergartens",
                    "lists a kindergarten twice",
                ));
            }
        }
        Event::ProjectProposed(e) => {
            if s.projects.contains_key(&e.project) {
                return Err(DomainError::AlreadyExists {
                    kind: "project",
                    name: e.project.to_string(),
                });
            }
            if !(2000..=2100).contains(&e.year) {
                return Err(DomainError::field(
                    "year",
                    format!("{} must be between 2000 and 2100", e.year),
                ));
            }
            group_alive(s, &e.group, Date::dec31(e.year))?;
            for m in &e.members {
                teacher(s, m)?;
            }
        }
        Event::ProjectApproved(e) => {
            let p = project(s, &e.project)?;
            if p.state() != "proposed" {
                return Err(DomainError::ProjectState {
                    project: e.project.to_string(),
                    state: p.state(),
                    action: "approved",
                });
            }
            group_alive(s, &p.group, e.on)?;
        }
        Event::ProjectCompleted(e) => {
            let p = project(s, &e.project)?;
            if p.state() != "approved" {
                return Err(DomainError::ProjectState {
                    project: e.project.to_string(),
                    state: p.state(),
                    action: "completed",
                });
            }
            if let Some((approved, _)) = p.approved {
                order("on", e.on, "approval date", approved)?;
            }
        }
        Event::ProjectCancelled(e) => {
            let p = project(s, &e.project)?;
            if matches!(p.state(), "completed" | "cancelled") {
                return Err(DomainError::ProjectState {
                    project: e.project.to_string(),
                    state: p.state(),
                    action: "cancelled",
                });
            }
            if let Some((approved, _)) = p.approved {
                order("on", e.on, "approval date", approved)?;
            }
        }
        Event::PointsRulesAdopted(e) => {
            let set = crate::points::RuleSet::parse(&e.rules)?;
            if set.year != e.year {
                return Err(DomainError::Rules {
                    line: 1,
                    reason: format!(
                        "the rules say year = {}, but they are adopted for {}",
                        set.year, e.year
                    ),
                });
            }
            if crate::points::sha256_hex(&e.rules) != e.sha256 {
                return Err(DomainError::field(
                    "sha256",
                    "does not match the rules text",
                ));
            }
        }
        Event::EventCorrected(_) | Event::EventRetracted(_) => {}
    }
    Ok(())
}

fn rotation<'a>(s: &'a State, id: &RecordId) -> Result<&'a Rotation, DomainError> {
    s.rotations
        .get(id)
        .ok_or_else(|| unknown("rotation", id, s.rotations.keys().map(|k| k.to_string())))
}

fn training<'a>(s: &'a State, id: &RecordId) -> Result<&'a Training, DomainError> {
    s.trainings
        .get(id)
        .ok_or_else(|| unknown("training", id, s.trainings.keys().map(|k| k.to_string())))
}

fn project<'a>(s: &'a State, id: &RecordId) -> Result<&'a Project, DomainError> {
    s.projects
        .get(id)
        .ok_or_else(|| unknown("project", id, s.projects.keys().map(|k| k.to_string())))
}

/// Rules over whole histories, for everything the event touched.
fn post(s: &State, event: &Event) -> R {
    let mut kgs: BTreeSet<KgId> = BTreeSet::new();
    let mut groups: BTreeSet<GroupName> = BTreeSet::new();
    let mut teachers: BTreeSet<StaffNo> = BTreeSet::new();
    let mut rotations: BTreeSet<RecordId> = BTreeSet::new();
    let mut activities: BTreeSet<RecordId> = BTreeSet::new();
    for r in event.touches() {
        match r {
            crate::event::EntityRef::Kindergarten(k) => {
                kgs.insert(k);
            }
            crate::event::EntityRef::Group(g) => {
                groups.insert(g);
            }
            crate::event::EntityRef::Teacher(t) => {
                teachers.insert(t);
            }
            crate::event::EntityRef::Rotation(r) => {
                if let Some(rot) = s.rotations.get(&r) {
                    teachers.insert(rot.staff_no.clone());
                }
                rotations.insert(r);
            }
            crate::event::EntityRef::Activity(a) => {
                activities.insert(a);
            }
            _ => {}
        }
    }
    // Only a change of group membership can break what depends on a kindergarten's group
    // (its activities, the rotations it hosts or its teachers start from); other events need
    // its own timelines checked, not its neighbourhood.
    let deep = matches!(
        event,
        Event::KindergartenJoined(_)
            | Event::KindergartenLeft(_)
            | Event::KindergartenTransferred(_)
            | Event::GroupFounded(_)
    );
    for k in &kgs {
        kg_invariants(
            s,
            *k,
            deep,
            &mut groups,
            &mut teachers,
            &mut rotations,
            &mut activities,
        )?;
    }
    for g in &groups {
        group_invariants(s, g)?;
    }
    for t in &teachers {
        teacher_invariants(s, t, &mut rotations)?;
    }
    for r in &rotations {
        rotation_invariants(s, r)?;
    }
    for a in &activities {
        activity_invariants(s, a)?;
    }
    Ok(())
}

fn kg_invariants(
    s: &State,
    id: KgId,
    deep: bool,
    groups: &mut BTreeSet<GroupName>,
    teachers: &mut BTreeSet<StaffNo>,
    rotations: &mut BTreeSet<RecordId>,
    activities: &mut BTreeSet<RecordId>,
) -> R {
    let k = kg(s, id)?;
    let name = k.current_name().to_string();
    let mut current: Option<&GroupName> = None;
    for step in k.membership.iter() {
        kg_alive(s, id, step.on)?;
        let broken = |detail: String| DomainError::MembershipHistory {
            kindergarten: name.clone(),
            on: step.on,
            detail,
        };
        match &step.value {
            Membership::Join(g) => {
                group_alive(s, g, step.on)?;
                if let Some(c) = current {
                    return Err(broken(format!("it would join {g} while still in {c}")));
                }
                groups.insert(g.clone());
            }
            Membership::Leave(g) => {
                if current != Some(g) {
                    return Err(broken(format!(
                        "it would leave {g} while in {}",
                        group_label(current)
                    )));
                }
            }
            Membership::Transfer { from, to } => {
                group_alive(s, to, step.on)?;
                if current != Some(from) {
                    return Err(broken(format!(
                        "it would transfer out of {from} while in {}",
                        group_label(current)
                    )));
                }
                groups.insert(from.clone());
                groups.insert(to.clone());
            }
        }
        current = step.value.group_after();
    }
    let mut designated = false;
    for step in k.high_quality.iter() {
        kg_alive(s, id, step.on)?;
        let (now, _) = step.value;
        if now == designated {
            return Err(DomainError::HighQuality {
                kindergarten: name.clone(),
                detail: if now {
                    "would be designated high-quality twice"
                } else {
                    "would lose a high-quality designation it does not have"
                },
                on: step.on,
            });
        }
        designated = now;
    }
    for step in k.principal.iter() {
        kg_alive(s, id, step.on)?;
    }
    for step in k.names.iter() {
        kg_alive(s, id, step.on)?;
    }
    for step in k.category.iter() {
        kg_alive(s, id, step.on)?;
    }
    if !deep {
        return Ok(());
    }
    if let Some(a) = s.activities_by_kg.get(&id) {
        activities.extend(a.iter().cloned());
    }
    if let Some(r) = s.rotations_by_host.get(&id) {
        rotations.extend(r.iter().cloned());
    }
    if let Some(t) = s.teachers_by_home.get(&id) {
        teachers.extend(t.iter().cloned());
    }
    Ok(())
}

fn group_invariants(s: &State, g: &GroupName) -> R {
    let gr = group(s, g)?;
    let leads = &gr.leads.0;
    for (i, lead) in leads.iter().enumerate() {
        group_alive(s, g, lead.on)?;
        let k = kg(s, lead.value)?;
        if k.group_on(lead.on) != Some(g) {
            return Err(DomainError::LeadNotMember {
                kindergarten: k.current_name().to_string(),
                group: g.to_string(),
                on: lead.on,
            });
        }
        let until = leads.get(i + 1).map(|n| n.on);
        for step in k.membership.iter() {
            if step.on > lead.on
                && until.is_none_or(|u| step.on < u)
                && k.group_on(step.on) != Some(g)
            {
                return Err(DomainError::LeadCannotLeave {
                    kindergarten: k.current_name().to_string(),
                    group: g.to_string(),
                    on: step.on,
                });
            }
        }
    }
    for t in &gr.secretariat {
        group_alive(s, g, t.from)?;
    }
    for d in &gr.documents {
        group_alive(s, g, d.on)?;
    }
    Ok(())
}

fn teacher_invariants(s: &State, t: &StaffNo, rotations: &mut BTreeSet<RecordId>) -> R {
    let te = teacher(s, t)?;
    for h in te.home.iter() {
        kg_alive(s, h.value, h.on)?;
        if h.on < te.registered {
            return Err(DomainError::OutsideLifetime {
                what: format!("teacher {t}"),
                on: h.on,
                why: format!("the teacher was registered on {}", te.registered),
            });
        }
    }
    let mine: Vec<&Rotation> = s
        .rotations_by_teacher
        .get(t)
        .map(|ids| ids.iter().filter_map(|id| s.rotations.get(id)).collect())
        .unwrap_or_default();
    let mut spans: Vec<(Date, Date, &RecordId)> = mine
        .iter()
        .filter_map(|r| r.last_day().map(|l| (r.start, l, &r.id)))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        let ((_, last_a, a), (start_b, _, b)) = (w[0], w[1]);
        if start_b <= last_a {
            return Err(DomainError::RotationOverlap {
                staff_no: t.to_string(),
                rotation: b.to_string(),
                other: a.to_string(),
                from: start_b,
            });
        }
    }
    if let Some(left) = te.left {
        left_service_invariants(s, t, left)?;
        for (_, last, id) in &spans {
            if *last >= left {
                return Err(DomainError::OutsideLifetime {
                    what: format!("rotation {id} of teacher {t}"),
                    on: *last,
                    why: format!(
                        "the teacher leaves service on {left}; end or cancel the rotation first"
                    ),
                });
            }
        }
    }
    rotations.extend(mine.iter().map(|r| r.id.clone()));
    Ok(())
}

/// A teacher who leaves service on `left` holds nothing from that day on: no title, no
/// training, no principal's post, no secretariat term. A back-dated `leave_service` is
/// checked against all of them, whenever they were recorded.
fn left_service_invariants(s: &State, t: &StaffNo, left: Date) -> R {
    let gone = |what: String, on: Date, fix: &str| DomainError::OutsideLifetime {
        what,
        on,
        why: format!("the teacher leaves service on {left}; {fix}"),
    };
    let te = teacher(s, t)?;
    if let Some(title) = te.titles.iter().find(|d| d.on >= left) {
        return Err(gone(
            format!("title {} of teacher {t}", title.value.code()),
            title.on,
            "it cannot be awarded after that",
        ));
    }
    if let Some(tr) = s.trainings_of(t).find(|tr| tr.start >= left) {
        return Err(gone(
            format!("attendance of teacher {t} at training {}", tr.id),
            tr.start,
            "they cannot attend after that",
        ));
    }
    for k in s.kindergartens.values() {
        let steps: Vec<_> = k.principal.iter().collect();
        for (i, step) in steps.iter().enumerate() {
            if step.value.as_ref() != Some(t) {
                continue;
            }
            let until = steps.get(i + 1).map(|n| n.on);
            if step.on >= left || until.is_none_or(|u| u > left) {
                return Err(gone(
                    format!("principal's post of teacher {t} at {}", k.current_name()),
                    step.on.max(left),
                    "end the appointment first (end_principal) on or before that day",
                ));
            }
        }
    }
    for g in s.groups.values() {
        if let Some(term) = g
            .secretariat
            .iter()
            .find(|term| &term.staff_no == t && term.last_day() >= left)
        {
            return Err(gone(
                format!("secretariat term of teacher {t} in {}", g.name),
                term.from.max(left),
                "dismiss them (dismiss_secretariat) on or before that day",
            ));
        }
    }
    Ok(())
}

/// The first day a rotation started on `start` may not reach without an approved exception:
/// the plan's last day must be before `start + 24 months` (DOMAIN.md; chrono's month
/// arithmetic, so a start on 2024-02-29 allows up to 2026-02-27).
pub fn two_year_limit(start: Date) -> Date {
    start.add_months(24).unwrap_or(start)
}

/// "24 months and 1 day": the length of `[start, last]` in whole months and days.
pub fn length_words(start: Date, last: Date) -> String {
    let after = last.succ();
    let mut months = 0u32;
    while start.add_months(months + 1).is_some_and(|d| d <= after) {
        months += 1;
    }
    let base = start.add_months(months).unwrap_or(start);
    let days = (after.naive() - base.naive()).num_days();
    match (months, days) {
        (m, 0) => format!("{m} months"),
        (0, d) => format!("{d} days"),
        (m, 1) => format!("{m} months and 1 day"),
        (m, d) => format!("{m} months and {d} days"),
    }
}

fn rotation_invariants(s: &State, id: &RecordId) -> R {
    let Some(r) = s.rotations.get(id) else {
        return Ok(());
    };
    teacher_in_service(s, &r.staff_no, r.start)?;
    kg_alive(s, r.host, r.start)?;
    let te = teacher(s, &r.staff_no)?;
    let home = te
        .home
        .at(r.start)
        .copied()
        .ok_or_else(|| DomainError::OutsideLifetime {
            what: format!("teacher {}", r.staff_no),
            on: r.start,
            why: "the teacher has no home kindergarten then".into(),
        })?;
    if home == r.host {
        return Err(DomainError::RotationSameKindergarten {
            rotation: id.to_string(),
            host: s.kg_label(r.host),
            on: r.start,
        });
    }
    let hg = kg(s, home)?.group_on(r.start);
    let xg = kg(s, r.host)?.group_on(r.start);
    if hg.is_none() || hg != xg {
        return Err(DomainError::RotationOutsideGroup {
            rotation: id.to_string(),
            home: s.kg_label(home),
            home_group: group_label(hg),
            host: s.kg_label(r.host),
            host_group: group_label(xg),
            on: r.start,
        });
    }
    order("planned_end", r.planned_end, "start", r.start)?;
    // each plan beyond two years needs its own approved exception: the start's, and each
    // extension's (an earlier exception does not cover a later extension)
    let limit = two_year_limit(r.start);
    for (planned_end, excepted) in r.plans() {
        if planned_end >= limit && !excepted {
            return Err(DomainError::RotationTooLong {
                rotation: id.to_string(),
                length: length_words(r.start, planned_end),
                start: r.start,
                planned_end,
                last_allowed: limit.pred(),
            });
        }
    }
    // home and host stay in the one group for the whole rotation: a leave or transfer of
    // either, on a day the rotation runs, breaks it (end or cancel the rotation first)
    if let Some(last) = r.last_day() {
        for kid in [home, r.host] {
            let k = kg(s, kid)?;
            if let Some(step) = k.membership.iter().find(|m| m.on > r.start && m.on <= last) {
                return Err(DomainError::RotationOutsideGroup {
                    rotation: id.to_string(),
                    home: s.kg_label(home),
                    home_group: group_label(kg(s, home)?.group_on(step.on)),
                    host: s.kg_label(r.host),
                    host_group: group_label(kg(s, r.host)?.group_on(step.on)),
                    on: step.on,
                });
            }
        }
    }
    if let Some(Outcome::Ended { end, .. }) = &r.outcome {
        order("end", *end, "start", r.start)?;
    }
    Ok(())
}

fn activity_invariants(s: &State, id: &RecordId) -> R {
    let Some(a) = s.activities.get(id) else {
        return Ok(());
    };
    group_alive(s, &a.group, a.on)?;
    for k in &a.kindergartens {
        kg_alive(s, *k, a.on)?;
        if kg(s, *k)?.group_on(a.on) != Some(&a.group) {
            return Err(DomainError::ActivityOutsideGroup {
                activity: id.to_string(),
                kindergarten: s.kg_label(*k),
                group: a.group.to_string(),
                on: a.on,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn length_words_counts_months_then_days() {
        let d = |t: &str| Date::parse(t).unwrap();
        assert_eq!(length_words(d("2024-09-01"), d("2026-08-31")), "24 months");
        assert_eq!(
            length_words(d("2024-09-01"), d("2026-09-01")),
            "24 months and 1 day"
        );
        assert_eq!(length_words(d("2024-09-01"), d("2024-09-10")), "10 days");
    }
}
