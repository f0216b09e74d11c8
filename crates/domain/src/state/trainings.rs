//! The fold of trainings: trainings, attendance, recognition.

use super::*;

impl State {
    /// Apply an event of this part; false if it belongs elsewhere.
    pub(super) fn fold_trainings(&mut self, event: &Event, origin: Origin) -> bool {
        match event {
            Event::TrainingHeld(e) => {
                let ordinal = self.training_ids.len() as u32;
                self.training_ids.push_back(e.training.clone());
                self.trainings.insert(
                    e.training.clone(),
                    Training {
                        id: e.training.clone(),
                        ordinal,
                        title: e.title.clone(),
                        tier: e.tier,
                        organizer: e.organizer.clone(),
                        start: e.start,
                        end: e.end,
                        hours: e.hours,
                        attendees: 0,
                        applied: None,
                        decision: None,
                    },
                );
            }
            Event::AttendanceRecorded(e) => {
                if let Some(t) = self.trainings.get_mut(&e.training) {
                    // The rules refuse a teacher recorded twice for one training, so a push
                    // keeps both the count and the per-teacher list exact.
                    t.attendees += e.staff_nos.len() as u32;
                    for s in &e.staff_nos {
                        self.trainings_by_teacher
                            .entry(s.clone())
                            .or_default()
                            .push(t.ordinal);
                    }
                }
            }
            Event::RecognitionApplied(e) => {
                if let Some(t) = self.trainings.get_mut(&e.training) {
                    t.applied = Some(e.on);
                }
            }
            Event::RecognitionDecided(e) => {
                if let Some(t) = self.trainings.get_mut(&e.training) {
                    t.decision = Some(RecognitionDecision {
                        granted: e.granted,
                        on: e.on,
                        reviewer: e.reviewer.clone(),
                        origin,
                    });
                }
            }
            _ => return false,
        }
        true
    }
}
