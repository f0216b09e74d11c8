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

pub(super) type R = Result<(), DomainError>;

/// Check `event` against `before` and return the state with it applied.
pub fn check(before: &State, event: &Event, origin: Origin) -> Result<State, DomainError> {
    pre(before, event)?;
    let mut next = before.clone();
    next.apply(event, origin);
    post(&next, event)?;
    Ok(next)
}

mod access;
mod governance;
mod membership;
mod projects;
mod rotations;
mod teachers;
mod trainings;

pub use access::outside_scope;
pub use rotations::{length_words, two_year_limit};

pub(super) fn kg(s: &State, id: KgId) -> Result<&Kindergarten, DomainError> {
    s.kindergartens
        .get(&id)
        .ok_or(DomainError::UnknownKindergartenNo(id.0))
}

pub(super) fn group<'a>(s: &'a State, g: &GroupName) -> Result<&'a Group, DomainError> {
    s.groups.get(g).ok_or_else(|| DomainError::Unknown {
        kind: "group",
        name: g.to_string(),
        suggestions: crate::suggest::closest(g.as_str(), s.groups.keys().map(|k| k.as_str())),
    })
}

pub(super) fn teacher<'a>(s: &'a State, t: &StaffNo) -> Result<&'a Teacher, DomainError> {
    s.teachers.get(t).ok_or_else(|| DomainError::Unknown {
        kind: "teacher",
        name: t.to_string(),
        suggestions: crate::suggest::closest(t.as_str(), s.teachers.keys().map(|k| k.as_str())),
    })
}

pub(super) fn unknown(
    kind: &'static str,
    id: &RecordId,
    known: impl Iterator<Item = String>,
) -> DomainError {
    let known: Vec<String> = known.collect();
    DomainError::Unknown {
        kind,
        name: id.to_string(),
        suggestions: crate::suggest::closest(id.as_str(), known.iter().map(String::as_str)),
    }
}

pub(super) fn kg_alive(s: &State, id: KgId, on: Date) -> R {
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

pub(super) fn group_alive(s: &State, g: &GroupName, on: Date) -> R {
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

pub(super) fn teacher_in_service(s: &State, t: &StaffNo, on: Date) -> R {
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

pub(super) fn order(field: &'static str, value: Date, other_field: &'static str, other: Date) -> R {
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

pub(super) fn group_label(g: Option<&GroupName>) -> String {
    g.map(|g| g.to_string())
        .unwrap_or_else(|| "no group".into())
}

pub(super) fn rotation<'a>(s: &'a State, id: &RecordId) -> Result<&'a Rotation, DomainError> {
    s.rotations
        .get(id)
        .ok_or_else(|| unknown("rotation", id, s.rotations.keys().map(|k| k.to_string())))
}

pub(super) fn training<'a>(s: &'a State, id: &RecordId) -> Result<&'a Training, DomainError> {
    s.trainings
        .get(id)
        .ok_or_else(|| unknown("training", id, s.trainings.keys().map(|k| k.to_string())))
}

pub(super) fn project<'a>(s: &'a State, id: &RecordId) -> Result<&'a Project, DomainError> {
    s.projects
        .get(id)
        .ok_or_else(|| unknown("project", id, s.projects.keys().map(|k| k.to_string())))
}

/// Checks that read best against the state before the event, each in the module of the
/// entity it speaks of.
fn pre(s: &State, event: &Event) -> R {
    membership::pre(s, event)?;
    governance::pre(s, event)?;
    teachers::pre(s, event)?;
    rotations::pre(s, event)?;
    trainings::pre(s, event)?;
    projects::pre(s, event)?;
    access::pre(s, event)
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
        membership::kg_invariants(
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
        membership::group_invariants(s, g)?;
    }
    for t in &teachers {
        teachers::teacher_invariants(s, t, &mut rotations)?;
    }
    for r in &rotations {
        rotations::rotation_invariants(s, r)?;
    }
    for a in &activities {
        projects::activity_invariants(s, a)?;
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
