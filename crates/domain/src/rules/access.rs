//! Access: a principal holds one grant at a time, a token is given once, and only a
//! recorder is limited to groups (SERVER.md "Who may do what").

use super::*;

fn refused(principal: &PrincipalName, detail: String) -> DomainError {
    DomainError::Access {
        principal: principal.to_string(),
        detail,
    }
}

/// Checks of this part that read best against the state before the event.
pub(super) fn pre(s: &State, event: &Event) -> R {
    match event {
        Event::AccessGranted(e) => {
            if e.role != Role::Recorder && !e.groups.is_empty() {
                return Err(refused(
                    &e.principal,
                    format!(
                        "only a recorder is limited to groups; an {} acts on every group",
                        e.role
                    ),
                ));
            }
            let mut seen = BTreeSet::new();
            for g in &e.groups {
                group_alive(s, g, e.on)?;
                if !seen.insert(g) {
                    return Err(refused(&e.principal, format!("group {g} is listed twice")));
                }
            }
            if let Some(held) = s
                .principals
                .get(&e.principal)
                .and_then(|grants| grants.iter().find(|g| g.until.is_none_or(|u| u > e.on)))
            {
                return Err(refused(
                    &e.principal,
                    match held.until {
                        None => format!(
                            "it holds access as {} from {}; revoke that first",
                            held.role, held.from
                        ),
                        Some(until) => format!(
                            "a grant from {} would overlap the one it held as {} from {} to {}: grants of one principal do not overlap",
                            e.on, held.role, held.from, until
                        ),
                    },
                ));
            }
            let reused = s.tokens_retired.contains(&e.token_sha256)
                || s.principals
                    .values()
                    .flatten()
                    .any(|g| g.token_sha256 == e.token_sha256);
            if reused {
                return Err(refused(
                    &e.principal,
                    "this token was given before; every grant needs a new token".into(),
                ));
            }
        }
        Event::AccessRevoked(e) => {
            let held = s
                .principals
                .get(&e.principal)
                .and_then(|grants| grants.iter().find(|g| g.until.is_none()));
            match held {
                None => {
                    return Err(refused(&e.principal, "it holds no access to revoke".into()));
                }
                Some(g) if e.on < g.from => {
                    return Err(refused(
                        &e.principal,
                        format!("its access begins on {}, after {}", g.from, e.on),
                    ));
                }
                Some(_) => {}
            }
        }
        _ => {}
    }
    Ok(())
}

/// A teacher's group on each day from `from` until `until` (exclusive; None: for ever), and
/// never past the day it leaves service, on which that group can change — `from`, and every
/// later change of its home or of its home's group — each checked against `groups`: the
/// first day it is elsewhere, and where.
fn teacher_leaves(
    s: &State,
    t: &StaffNo,
    from: Date,
    until: Option<Date>,
    groups: &[GroupName],
) -> Option<(Date, Option<GroupName>)> {
    let teacher = s.teachers.get(t)?;
    let until = match (until, teacher.left) {
        (Some(u), Some(l)) => Some(u.min(l)),
        (u, l) => u.or(l),
    };
    let within = |d: Date| d > from && until.is_none_or(|u| d < u);
    let mut days = vec![from];
    for h in teacher.home.iter() {
        if within(h.on) {
            days.push(h.on);
        }
        if let Some(kg) = s.kindergartens.get(&h.value) {
            days.extend(kg.membership.iter().map(|m| m.on).filter(|d| within(*d)));
        }
    }
    first_outside(days, groups, |d| {
        teacher
            .home
            .at(d)
            .and_then(|k| s.kindergartens.get(k))
            .and_then(|kg| kg.group_on(d))
    })
}

/// Of `days`, the first on which `group_on` is not one of `groups`, and where it is then.
fn first_outside<'a>(
    mut days: Vec<Date>,
    groups: &[GroupName],
    group_on: impl Fn(Date) -> Option<&'a GroupName>,
) -> Option<(Date, Option<GroupName>)> {
    days.sort();
    days.dedup();
    days.into_iter().find_map(|d| {
        let group = group_on(d);
        (!group.is_some_and(|g| groups.contains(g))).then(|| (d, group.cloned()))
    })
}

/// A kindergarten's group checked the same way over `from`..=`to`.
fn kindergarten_leaves(
    s: &State,
    k: &KgId,
    from: Date,
    to: Date,
    groups: &[GroupName],
) -> Option<(Date, Option<GroupName>)> {
    let kg = s.kindergartens.get(k)?;
    let mut days = vec![from];
    days.extend(
        kg.membership
            .iter()
            .map(|m| m.on)
            .filter(|d| *d > from && *d <= to),
    );
    first_outside(days, groups, |d| kg.group_on(d))
}

fn elsewhere(what: String, (day, group): (Date, Option<GroupName>)) -> String {
    match group {
        Some(g) => format!("{what} is in {g} on {day}"),
        None => format!("{what} is in no group on {day}"),
    }
}

/// Why a recorder limited to `groups` may not record `event`, or None when it may: every
/// entity the event touches belongs to one of `groups` on the event's date, read in `after`
/// (the state with the event applied, so a teacher registered by it has its home) and, for
/// a teacher who was there before, in `before` too (a change of home may neither take a
/// teacher from another group nor give one away to it). What
/// shapes the groups themselves or is the bureau's to decide — founding, registering and
/// moving kindergartens, leads, grades, designations, principals, approvals and
/// recognitions, points rules, access, corrections — is never a group's to record.
pub fn outside_scope(
    before: &State,
    after: &State,
    event: &Event,
    groups: &[GroupName],
) -> Option<String> {
    use Event as E;
    // every event type decided here, so a new one cannot default to "a group's to record"
    let bureau = match event {
        E::GroupFounded(_)
        | E::KindergartenRegistered(_)
        | E::KindergartenRenamed(_)
        | E::KindergartenJoined(_)
        | E::KindergartenLeft(_)
        | E::KindergartenTransferred(_)
        | E::LeadChanged(_)
        | E::KindergartenRegraded(_)
        | E::HighQualityDesignated(_)
        | E::CooperativePrincipalDesignated(_)
        | E::HighQualityRevoked(_)
        | E::PrincipalAppointed(_)
        | E::PrincipalEnded(_)
        | E::RecognitionDecided(_)
        | E::ProjectApproved(_)
        | E::PointsRulesAdopted(_)
        | E::AccessGranted(_)
        | E::AccessRevoked(_)
        | E::EventCorrected(_)
        | E::EventRetracted(_) => true,
        E::SecretariatAppointed(_)
        | E::SecretariatDismissed(_)
        | E::DocumentAdopted(_)
        | E::ExpertAssigned(_)
        | E::TeacherRegistered(_)
        | E::HomeChanged(_)
        | E::TitleAwarded(_)
        | E::ServiceLeft(_)
        | E::RotationStarted(_)
        | E::RotationExtended(_)
        | E::RotationEnded(_)
        | E::RotationCancelled(_)
        | E::TrainingHeld(_)
        | E::AttendanceRecorded(_)
        | E::RecognitionApplied(_)
        | E::ActivityHeld(_)
        | E::ProjectProposed(_)
        | E::ProjectCompleted(_)
        | E::ProjectCancelled(_) => false,
    };
    if bureau {
        return Some(format!("{} is not a group's to record", event.event_type()));
    }
    // An exception to the two-year limit is the bureau's decision, never a group's own:
    // a scoped recorder records rotations within the rule only.
    if let E::RotationStarted(RotationStarted {
        exception: Some(_), ..
    })
    | E::RotationExtended(RotationExtended {
        exception: Some(_), ..
    }) = event
    {
        return Some(format!(
            "{} with an exception: an exception is the bureau's decision, recorded by an unscoped recorder or an admin",
            event.event_type()
        ));
    }
    let Some(on) = after.valid_time(event) else {
        return Some("the event has no date to check the groups on".into());
    };
    let kg_group = |k: &KgId| after.kindergartens.get(k).and_then(|kg| kg.group_on(on));
    let teacher_group = |t: &StaffNo| {
        after
            .teachers
            .get(t)
            .and_then(|t| t.home.at(on))
            .and_then(&kg_group)
    };
    let ours = |g: Option<&GroupName>| g.is_some_and(|g| groups.contains(g));
    let place = |k: &KgId| match kg_group(k) {
        Some(g) => format!("kindergarten {} is in {g}", after.kg_label(*k)),
        None => format!("kindergarten {} is in no group", after.kg_label(*k)),
    };
    // What lasts beyond its day (leaving service, a title, a rotation's span) must lie within
    // the groups for as long as it lasts, in the states before and after it: a back-dated
    // command may not reach a teacher or a rotation that has since gone elsewhere.
    for s in [before, after] {
        let lasting = match event {
            // (leaving service reaches to the day before it, where the teacher's last group
            // is the one that matters)
            E::ServiceLeft(e) => teacher_leaves(s, &e.staff_no, on, None, groups)
                .map(|l| elsewhere(format!("teacher {}", e.staff_no), l)),
            E::TitleAwarded(e) => teacher_leaves(s, &e.staff_no, on, None, groups)
                .map(|l| elsewhere(format!("teacher {}", e.staff_no), l)),
            // a home from `on` holds until the next change of home: all that time the
            // teacher must be within the groups (in the state before: the home it leaves)
            E::HomeChanged(HomeChanged { staff_no, .. })
            | E::TeacherRegistered(TeacherRegistered { staff_no, .. }) => {
                let next = s
                    .teachers
                    .get(staff_no)
                    .and_then(|t| t.home.iter().map(|h| h.on).find(|d| *d > on));
                teacher_leaves(s, staff_no, on, next, groups)
                    .map(|l| elsewhere(format!("teacher {staff_no}"), l))
            }
            E::RotationStarted(RotationStarted { rotation: id, .. })
            | E::RotationExtended(RotationExtended { rotation: id, .. })
            | E::RotationEnded(RotationEnded { rotation: id, .. })
            | E::RotationCancelled(RotationCancelled { rotation: id, .. }) => {
                s.rotations.get(id).and_then(|rot| {
                    let from = rot.start.min(on);
                    let to = rot
                        .planned_end
                        .max(rot.last_day().unwrap_or(rot.start))
                        .max(on);
                    teacher_leaves(s, &rot.staff_no, from, Some(to.succ()), groups)
                        .map(|l| elsewhere(format!("rotation {id}'s teacher {}", rot.staff_no), l))
                        .or_else(|| {
                            kindergarten_leaves(s, &rot.host, from, to, groups).map(|l| {
                                elsewhere(
                                    format!("rotation {id}'s host {}", s.kg_label(rot.host)),
                                    l,
                                )
                            })
                        })
                })
            }
            _ => None,
        };
        if let Some(why) = lasting {
            return Some(why);
        }
    }
    for entity in event.touches() {
        let (inside, what) = match &entity {
            EntityRef::Group(g) => (groups.contains(g), format!("group {g} is not one of them")),
            EntityRef::Kindergarten(k) => (ours(kg_group(k)), place(k)),
            EntityRef::Teacher(t) => {
                let home = after.teachers.get(t).and_then(|t| t.home.at(on));
                let was = before.teachers.get(t).map(|t| {
                    t.home
                        .at(on)
                        .and_then(|k| before.kindergartens.get(k)?.group_on(on))
                });
                match was {
                    Some(group) if !ours(group) => (
                        false,
                        format!(
                            "teacher {t} is {} until then",
                            match group {
                                Some(g) => format!("in {g}"),
                                None => "in no group".to_owned(),
                            }
                        ),
                    ),
                    _ => (
                        ours(home.and_then(&kg_group)),
                        match home {
                            Some(k) => format!("teacher {t}'s home {}", place(k)),
                            None => format!("teacher {t} has no home kindergarten"),
                        },
                    ),
                }
            }
            EntityRef::Rotation(r) => (
                after.rotations.get(r).is_some_and(|rot| {
                    ours(teacher_group(&rot.staff_no)) && ours(kg_group(&rot.host))
                }),
                format!("rotation {r}'s teacher's home or host is not in them"),
            ),
            EntityRef::Training(t) => (
                after
                    .trainings
                    .get(t)
                    .is_some_and(|tr| match &tr.organizer {
                        Organizer::Group(g) => groups.contains(g),
                        Organizer::Kindergarten(k) => ours(kg_group(k)),
                        Organizer::Body(_) => false,
                    }),
                format!("training {t}'s organizer is not one of them"),
            ),
            EntityRef::Activity(a) => (
                after
                    .activities
                    .get(a)
                    .is_some_and(|act| groups.contains(&act.group)),
                format!("activity {a} is another group's"),
            ),
            EntityRef::Project(p) => (
                after
                    .projects
                    .get(p)
                    .is_some_and(|pr| groups.contains(&pr.group)),
                format!("project {p} is another group's"),
            ),
            EntityRef::Rules(y) => (false, format!("the points rules of {y} are the bureau's")),
            EntityRef::Principal(p) => (false, format!("principal {p} is an admin's to change")),
        };
        if !inside {
            return Some(format!("{what} on {on}"));
        }
    }
    None
}
