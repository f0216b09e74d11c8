//! Rotations (柔性流动): one at a time, within one group, at most two years unless each plan beyond has its own exception.

use super::*;

/// Checks of this part that read best against the state before the event.
pub(super) fn pre(s: &State, event: &Event) -> R {
    match event {
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
            // 0001-01-01 is a v0.1 extension's (it had no date): it reads as v0.1 showed it
            if !e.on.is_v0_1_undated() {
                if let Some(last) = r.extensions.iter().map(|x| x.on).max()
                    && e.on < last
                {
                    return Err(DomainError::field(
                        "on",
                        format!(
                            "{} is before the extension of rotation {} decided on {last}; extensions are recorded in the order they were decided",
                            e.on, e.rotation
                        ),
                    ));
                }
                let in_force = r.planned_end_on(e.on.max(r.start));
                if e.on > in_force {
                    return Err(DomainError::field(
                        "on",
                        format!(
                            "{} is after the planned end {in_force} of rotation {}: a rotation is extended before its plan runs out; end it instead",
                            e.on, e.rotation
                        ),
                    ));
                }
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
        _ => {}
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
    let months = start.whole_months_through(last);
    let base = start.add_months(months).unwrap_or(start);
    let days = (after.naive() - base.naive()).num_days();
    match (months, days) {
        (m, 0) => format!("{m} months"),
        (0, d) => format!("{d} days"),
        (m, 1) => format!("{m} months and 1 day"),
        (m, d) => format!("{m} months and {d} days"),
    }
}

pub(super) fn rotation_invariants(s: &State, id: &RecordId) -> R {
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
        if let Some(step) = te.home.iter().find(|h| h.on > r.start && h.on <= last) {
            return Err(DomainError::OutsideLifetime {
                what: format!("rotation {id} of teacher {}", r.staff_no),
                on: step.on,
                why: format!(
                    "the teacher's home kindergarten would change while the rotation runs (to {last}); end or cancel it first"
                ),
            });
        }
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
