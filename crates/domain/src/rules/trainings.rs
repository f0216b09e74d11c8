//! Trainings: tiers, attendance, recognition.

use super::*;

/// Checks of this part that read best against the state before the event.
pub(super) fn pre(s: &State, event: &Event) -> R {
    match event {
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
            // (a set: a record of 10,000 attendees is checked in linear time)
            let mut listed = std::collections::HashSet::with_capacity(e.staff_nos.len());
            for st in &e.staff_nos {
                teacher_in_service(s, st, t.start)?;
                let again = !listed.insert(st)
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
        _ => {}
    }
    Ok(())
}
