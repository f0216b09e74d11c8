//! Activities and projects: joint research and the rest, project proposals, approvals, completions.

use std::collections::BTreeSet;

use super::*;

/// Checks of this part that read best against the state before the event.
pub(super) fn pre(s: &State, event: &Event) -> R {
    match event {
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
            if !REPORT_YEARS.contains(&e.year) {
                return Err(DomainError::field(
                    "year",
                    format!(
                        "{} must be between {} and {}",
                        e.year,
                        REPORT_YEARS.start(),
                        REPORT_YEARS.end()
                    ),
                ));
            }
            group_alive(s, &e.group, Date::dec31(e.year))?;
            for m in &e.members {
                teacher(s, m)?;
            }
            // 0001-01-01 is a v0.1 proposal's (it had no date): it reads as v0.1 showed it
            if !e.on.is_v0_1_undated() {
                group_alive(s, &e.group, e.on)?;
                for m in &e.members {
                    teacher_in_service(s, m, e.on)?;
                }
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
            order("on", e.on, "proposal date", p.proposed)?;
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
            order("on", e.on, "proposal date", p.proposed)?;
        }
        _ => {}
    }
    Ok(())
}

pub(super) fn activity_invariants(s: &State, id: &RecordId) -> R {
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
