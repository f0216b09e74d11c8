//! Teachers: registration, home kindergarten, titles, leaving service — and everything a leave must not cut short.

use std::collections::BTreeSet;

use super::*;

/// Checks of this part that read best against the state before the event.
pub(super) fn pre(s: &State, event: &Event) -> R {
    match event {
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
        _ => {}
    }
    Ok(())
}

pub(super) fn teacher_invariants(s: &State, t: &StaffNo, rotations: &mut BTreeSet<RecordId>) -> R {
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
pub(super) fn left_service_invariants(s: &State, t: &StaffNo, left: Date) -> R {
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
            if step.on >= left {
                return Err(gone(
                    format!("principal's post of teacher {t} at {}", k.current_name()),
                    step.on,
                    "the appointment starts on or after it: correct or retract the appointment first",
                ));
            }
            if until.is_none_or(|u| u > left) {
                return Err(gone(
                    format!("principal's post of teacher {t} at {}", k.current_name()),
                    left,
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
                if term.from >= left {
                    "the term starts on or after it: correct or retract the appointment first"
                } else {
                    "dismiss them (dismiss_secretariat) on or before that day"
                },
            ));
        }
    }
    Ok(())
}
