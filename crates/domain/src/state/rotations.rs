//! The fold of rotations: start, extensions by date, end, cancellation.

use super::*;

impl State {
    /// Apply an event of this part; false if it belongs elsewhere.
    pub(super) fn fold_rotations(&mut self, event: &Event, origin: Origin) -> bool {
        let seq = origin.seq;
        match event {
            Event::RotationStarted(e) => {
                self.rotations.insert(
                    e.rotation.clone(),
                    Rotation {
                        id: e.rotation.clone(),
                        staff_no: e.staff_no.clone(),
                        host: e.host,
                        mode: e.mode,
                        start: e.start,
                        planned_end: e.planned_end,
                        exception: e.exception.clone(),
                        initial: (e.planned_end, e.exception.clone()),
                        extensions: Timeline::default(),
                        outcome: None,
                        origin,
                    },
                );
                self.rotations_by_teacher
                    .entry(e.staff_no.clone())
                    .or_default()
                    .insert(e.rotation.clone());
                self.rotations_by_host
                    .entry(e.host)
                    .or_default()
                    .insert(e.rotation.clone());
            }
            Event::RotationExtended(e) => {
                if let Some(r) = self.rotations.get_mut(&e.rotation) {
                    // a v0.1 extension (no date of its own) kept the exception in force when
                    // it carried none, and reads so still; a dated one stands on its own
                    let exception = match (&e.exception, e.on.is_v0_1_undated()) {
                        (None, true) => r.exception.clone(),
                        (given, _) => given.clone(),
                    };
                    r.extensions.insert(e.on, seq, (e.planned_end, exception));
                    // the plan after every extension recorded: the one decided last
                    if let Some(last) = r.extensions.0.last() {
                        r.planned_end = last.value.0;
                        r.exception = last.value.1.clone();
                    }
                }
            }
            Event::RotationEnded(e) => {
                if let Some(r) = self.rotations.get_mut(&e.rotation) {
                    r.outcome = Some(Outcome::Ended {
                        end: e.end,
                        assessment: e.assessment,
                        origin,
                    });
                }
            }
            Event::RotationCancelled(e) => {
                if let Some(r) = self.rotations.get_mut(&e.rotation) {
                    r.outcome = Some(Outcome::Cancelled {
                        on: e.on,
                        reason: e.reason.clone(),
                    });
                }
            }
            _ => return false,
        }
        true
    }
}
