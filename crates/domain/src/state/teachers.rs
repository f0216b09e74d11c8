//! The fold of teachers: registration, home, titles, leaving service.

use super::*;

impl State {
    /// Apply an event of this part; false if it belongs elsewhere.
    pub(super) fn fold_teachers(&mut self, event: &Event, origin: Origin) -> bool {
        let seq = origin.seq;
        match event {
            Event::TeacherRegistered(e) => {
                let mut home = Timeline::default();
                home.insert(e.on, seq, e.home);
                self.teachers.insert(
                    e.staff_no.clone(),
                    Teacher {
                        staff_no: e.staff_no.clone(),
                        name: e.name.clone(),
                        registered: e.on,
                        home,
                        titles: vec![],
                        left: None,
                    },
                );
                self.teachers_by_home
                    .entry(e.home)
                    .or_default()
                    .insert(e.staff_no.clone());
            }
            Event::HomeChanged(e) => {
                if let Some(t) = self.teachers.get_mut(&e.staff_no) {
                    t.home.insert(e.on, seq, e.home);
                    self.teachers_by_home
                        .entry(e.home)
                        .or_default()
                        .insert(e.staff_no.clone());
                }
            }
            Event::TitleAwarded(e) => {
                if let Some(t) = self.teachers.get_mut(&e.staff_no) {
                    t.titles.push(Dated {
                        on: e.on,
                        seq,
                        value: e.title,
                    });
                }
            }
            Event::ServiceLeft(e) => {
                if let Some(t) = self.teachers.get_mut(&e.staff_no) {
                    t.left = Some(e.on);
                }
            }
            _ => return false,
        }
        true
    }
}
