//! The fold of activities and projects.

use super::*;

impl State {
    /// Apply an event of this part; false if it belongs elsewhere.
    pub(super) fn fold_projects(&mut self, event: &Event, origin: Origin) -> bool {
        match event {
            Event::ActivityHeld(e) => {
                self.activities.insert(
                    e.activity.clone(),
                    Activity {
                        id: e.activity.clone(),
                        group: e.group.clone(),
                        kind: e.kind,
                        title: e.title.clone(),
                        on: e.on,
                        kindergartens: e.kindergartens.clone(),
                        origin,
                    },
                );
                for k in &e.kindergartens {
                    self.activities_by_kg
                        .entry(*k)
                        .or_default()
                        .insert(e.activity.clone());
                }
            }
            Event::ProjectProposed(e) => {
                self.projects.insert(
                    e.project.clone(),
                    Project {
                        id: e.project.clone(),
                        group: e.group.clone(),
                        kind: e.kind,
                        title: e.title.clone(),
                        year: e.year,
                        proposed: e.on,
                        members: e.members.clone(),
                        approved: None,
                        completed: None,
                        cancelled: None,
                    },
                );
            }
            Event::ProjectApproved(e) => {
                if let Some(p) = self.projects.get_mut(&e.project) {
                    p.approved = Some((e.on, e.budget_fen));
                }
            }
            Event::ProjectCompleted(e) => {
                if let Some(p) = self.projects.get_mut(&e.project) {
                    p.completed = Some((e.on, e.rating, origin));
                }
            }
            Event::ProjectCancelled(e) => {
                if let Some(p) = self.projects.get_mut(&e.project) {
                    p.cancelled = Some((e.on, e.reason.clone()));
                }
            }
            _ => return false,
        }
        true
    }
}
