//! `decide`: a command and the state → the event to record, or the rule it breaks.

use crate::command::*;
use crate::error::DomainError;
use crate::event::*;
use crate::rules::check;
use crate::state::{Origin, State};
use crate::values::*;

/// The event a command records and the state with it applied.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The event to append.
    pub event: Event,
    /// The state after it.
    pub next: State,
}

/// Decide an ordinary command (not a correction or retraction) that would be recorded at
/// sequence `seq`. Pure: the state is not changed.
pub fn decide(state: &State, command: &Command, seq: u64) -> Result<Decision, DomainError> {
    let event = resolve(state, command)?;
    let next = check(
        state,
        &event,
        Origin {
            seq,
            corrected_by: None,
        },
    )?;
    Ok(Decision { event, next })
}

fn kg_id(s: &State, name: &KgName) -> Result<KgId, DomainError> {
    s.kg_names
        .get(name)
        .copied()
        .ok_or_else(|| DomainError::Unknown {
            kind: "kindergarten",
            name: name.to_string(),
            suggestions: crate::suggest::closest(
                name.as_str(),
                s.kg_names.keys().map(|k| k.as_str()),
            ),
        })
}

fn known_group(s: &State, g: &GroupName) -> Result<GroupName, DomainError> {
    if s.groups.contains_key(g) {
        Ok(g.clone())
    } else {
        Err(DomainError::Unknown {
            kind: "group",
            name: g.to_string(),
            suggestions: crate::suggest::closest(g.as_str(), s.groups.keys().map(|k| k.as_str())),
        })
    }
}

fn known_teacher(s: &State, t: &StaffNo) -> Result<StaffNo, DomainError> {
    if s.teachers.contains_key(t) {
        Ok(t.clone())
    } else {
        Err(DomainError::Unknown {
            kind: "teacher",
            name: t.to_string(),
            suggestions: crate::suggest::closest(t.as_str(), s.teachers.keys().map(|k| k.as_str())),
        })
    }
}

fn known_record<V>(
    kind: &'static str,
    map: &imbl::OrdMap<RecordId, V>,
    id: &RecordId,
) -> Result<RecordId, DomainError>
where
    V: Clone,
{
    if map.contains_key(id) {
        Ok(id.clone())
    } else {
        let keys: Vec<String> = map.keys().map(|k| k.to_string()).collect();
        Err(DomainError::Unknown {
            kind,
            name: id.to_string(),
            suggestions: crate::suggest::closest(id.as_str(), keys.iter().map(String::as_str)),
        })
    }
}

/// Turn a command into its event: resolve names to ids, derive what the command implies.
/// Rules are checked separately by [`check`].
pub fn resolve(s: &State, command: &Command) -> Result<Event, DomainError> {
    use Command as C;
    Ok(match command {
        C::FoundGroup(c) => Event::GroupFounded(GroupFounded {
            group: c.group.clone(),
            kind: c.kind,
            lead: kg_id(s, &c.lead)?,
            on: c.on,
            exception: c.exception.clone(),
        }),
        C::RegisterKindergarten(c) => Event::KindergartenRegistered(KindergartenRegistered {
            kindergarten: s.next_kg_id(),
            name: c.kindergarten.clone(),
            full_name: c.full_name.clone(),
            category: c.category,
            ownership: c.ownership,
            provisional: c.provisional,
            on: c.on,
            cooperative_principal: c.cooperative_principal,
        }),
        C::DesignateCooperativePrincipal(c) => {
            Event::CooperativePrincipalDesignated(CooperativePrincipalDesignated {
                kindergarten: kg_id(s, &c.kindergarten)?,
                on: c.on,
            })
        }
        C::RenameKindergarten(c) => Event::KindergartenRenamed(KindergartenRenamed {
            kindergarten: kg_id(s, &c.kindergarten)?,
            new_name: c.new_name.clone(),
            provisional: c.provisional,
            on: c.on,
        }),
        C::JoinGroup(c) => Event::KindergartenJoined(KindergartenJoined {
            kindergarten: kg_id(s, &c.kindergarten)?,
            group: known_group(s, &c.group)?,
            on: c.on,
        }),
        C::LeaveGroup(c) => Event::KindergartenLeft(KindergartenLeft {
            kindergarten: kg_id(s, &c.kindergarten)?,
            group: known_group(s, &c.group)?,
            on: c.on,
        }),
        C::TransferKindergarten(c) => {
            let id = kg_id(s, &c.kindergarten)?;
            let to = known_group(s, &c.to_group)?;
            let from = s
                .kindergartens
                .get(&id)
                .and_then(|k| k.group_on(c.on).cloned())
                .ok_or_else(|| DomainError::NotInGroup {
                    kindergarten: c.kindergarten.to_string(),
                    group: "any group".into(),
                    on: c.on,
                })?;
            Event::KindergartenTransferred(KindergartenTransferred {
                kindergarten: id,
                from_group: from,
                to_group: to,
                on: c.on,
            })
        }
        C::ChangeLead(c) => Event::LeadChanged(LeadChanged {
            group: known_group(s, &c.group)?,
            lead: kg_id(s, &c.lead)?,
            on: c.on,
            exception: c.exception.clone(),
        }),
        C::RegradeKindergarten(c) => Event::KindergartenRegraded(KindergartenRegraded {
            kindergarten: kg_id(s, &c.kindergarten)?,
            category: c.category,
            on: c.on,
        }),
        C::DesignateHighQuality(c) => Event::HighQualityDesignated(HighQualityDesignated {
            kindergarten: kg_id(s, &c.kindergarten)?,
            on: c.on,
        }),
        C::RevokeHighQuality(c) => Event::HighQualityRevoked(HighQualityRevoked {
            kindergarten: kg_id(s, &c.kindergarten)?,
            on: c.on,
        }),
        C::AppointPrincipal(c) => Event::PrincipalAppointed(PrincipalAppointed {
            kindergarten: kg_id(s, &c.kindergarten)?,
            staff_no: known_teacher(s, &c.staff_no)?,
            on: c.on,
        }),
        C::EndPrincipal(c) => Event::PrincipalEnded(PrincipalEnded {
            kindergarten: kg_id(s, &c.kindergarten)?,
            on: c.on,
        }),
        C::AppointSecretariat(c) => Event::SecretariatAppointed(SecretariatAppointed {
            group: known_group(s, &c.group)?,
            staff_no: known_teacher(s, &c.staff_no)?,
            role: c.role.clone(),
            from: c.from,
            to: c.to,
        }),
        C::DismissSecretariat(c) => Event::SecretariatDismissed(SecretariatDismissed {
            group: known_group(s, &c.group)?,
            staff_no: known_teacher(s, &c.staff_no)?,
            on: c.on,
        }),
        C::AdoptDocument(c) => Event::DocumentAdopted(DocumentAdopted {
            group: known_group(s, &c.group)?,
            doc_kind: c.doc_kind,
            title: c.title.clone(),
            period: c.period.clone(),
            sha256: c.sha256.clone(),
            on: c.on,
        }),
        C::AssignExpert(c) => Event::ExpertAssigned(ExpertAssigned {
            group: known_group(s, &c.group)?,
            expert: c.expert.clone(),
            affiliation: c.affiliation.clone(),
            from: c.from,
            to: c.to,
        }),
        C::RegisterTeacher(c) => Event::TeacherRegistered(TeacherRegistered {
            staff_no: c.staff_no.clone(),
            name: c.name.clone(),
            home: kg_id(s, &c.home)?,
            on: c.on,
        }),
        C::ChangeHome(c) => Event::HomeChanged(HomeChanged {
            staff_no: known_teacher(s, &c.staff_no)?,
            home: kg_id(s, &c.home)?,
            on: c.on,
        }),
        C::AwardTitle(c) => Event::TitleAwarded(TitleAwarded {
            staff_no: known_teacher(s, &c.staff_no)?,
            title: c.title,
            on: c.on,
        }),
        C::LeaveService(c) => Event::ServiceLeft(ServiceLeft {
            staff_no: known_teacher(s, &c.staff_no)?,
            on: c.on,
        }),
        C::StartRotation(c) => Event::RotationStarted(RotationStarted {
            rotation: c.rotation.clone(),
            staff_no: known_teacher(s, &c.staff_no)?,
            host: kg_id(s, &c.host)?,
            mode: c.mode,
            start: c.start,
            planned_end: c.planned_end,
            exception: c.exception.clone(),
        }),
        C::ExtendRotation(c) => Event::RotationExtended(RotationExtended {
            rotation: known_record("rotation", &s.rotations, &c.rotation)?,
            planned_end: c.planned_end,
            exception: c.exception.clone(),
            on: c.on,
        }),
        C::EndRotation(c) => Event::RotationEnded(RotationEnded {
            rotation: known_record("rotation", &s.rotations, &c.rotation)?,
            end: c.end,
            assessment: c.assessment,
        }),
        C::CancelRotation(c) => Event::RotationCancelled(RotationCancelled {
            rotation: known_record("rotation", &s.rotations, &c.rotation)?,
            on: c.on,
            reason: c.reason.clone(),
        }),
        C::HoldTraining(c) => {
            let organizer = match c.tier {
                TrainingTier::Group => {
                    let g = GroupName::new(c.organizer.as_str())
                        .map_err(|r| DomainError::field("organizer", r))?;
                    Organizer::Group(known_group(s, &g)?)
                }
                TrainingTier::Kindergarten => {
                    let k = KgName::new(c.organizer.as_str())
                        .map_err(|r| DomainError::field("organizer", r))?;
                    Organizer::Kindergarten(kg_id(s, &k)?)
                }
                TrainingTier::Municipal | TrainingTier::District => {
                    Organizer::Body(c.organizer.clone())
                }
            };
            Event::TrainingHeld(TrainingHeld {
                training: c.training.clone(),
                title: c.title.clone(),
                tier: c.tier,
                organizer,
                start: c.start,
                end: c.end,
                hours: c.hours,
            })
        }
        C::RecordAttendance(c) => Event::AttendanceRecorded(AttendanceRecorded {
            training: known_record("training", &s.trainings, &c.training)?,
            staff_nos: c
                .staff_nos
                .iter()
                .map(|t| known_teacher(s, t))
                .collect::<Result<_, _>>()?,
        }),
        C::ApplyRecognition(c) => Event::RecognitionApplied(RecognitionApplied {
            training: known_record("training", &s.trainings, &c.training)?,
            on: c.on,
        }),
        C::DecideRecognition(c) => Event::RecognitionDecided(RecognitionDecided {
            training: known_record("training", &s.trainings, &c.training)?,
            granted: c.granted,
            on: c.on,
            reviewer: c.reviewer.clone(),
        }),
        C::HoldActivity(c) => Event::ActivityHeld(ActivityHeld {
            activity: c.activity.clone(),
            group: known_group(s, &c.group)?,
            kind: c.kind,
            title: c.title.clone(),
            on: c.on,
            kindergartens: c
                .kindergartens
                .iter()
                .map(|k| kg_id(s, k))
                .collect::<Result<_, _>>()?,
        }),
        C::ProposeProject(c) => Event::ProjectProposed(ProjectProposed {
            project: c.project.clone(),
            group: known_group(s, &c.group)?,
            kind: c.kind,
            title: c.title.clone(),
            year: c.year,
            members: c
                .members
                .iter()
                .map(|t| known_teacher(s, t))
                .collect::<Result<_, _>>()?,
            on: c.on,
        }),
        C::ApproveProject(c) => Event::ProjectApproved(ProjectApproved {
            project: known_record("project", &s.projects, &c.project)?,
            on: c.on,
            budget_fen: c.budget_fen,
        }),
        C::CompleteProject(c) => Event::ProjectCompleted(ProjectCompleted {
            project: known_record("project", &s.projects, &c.project)?,
            on: c.on,
            rating: c.rating,
        }),
        C::CancelProject(c) => Event::ProjectCancelled(ProjectCancelled {
            project: known_record("project", &s.projects, &c.project)?,
            on: c.on,
            reason: c.reason.clone(),
        }),
        C::AdoptPointsRules(c) => Event::PointsRulesAdopted(PointsRulesAdopted {
            year: c.year,
            rules: c.rules.clone(),
            sha256: crate::points::sha256_hex(&c.rules),
            on: c.on,
        }),
        C::GrantAccess(c) => Event::AccessGranted(AccessGranted {
            principal: c.principal.clone(),
            role: c.role,
            groups: c
                .groups
                .iter()
                .map(|g| known_group(s, g))
                .collect::<Result<Vec<_>, _>>()?,
            token_sha256: c.token_sha256.clone(),
            on: c.on,
        }),
        C::RevokeAccess(c) => Event::AccessRevoked(AccessRevoked {
            principal: c.principal.clone(),
            on: c.on,
        }),
        C::CorrectEvent(_) | C::RetractEvent(_) => {
            return Err(DomainError::CorrectionTarget {
                target: 0,
                reason: "corrections and retractions are decided against the log (Ledger::execute), not the state alone".into(),
            });
        }
    })
}

/// Build the replacement event for a correction of `target` (its original event given):
/// same event type, same entity. Ids the replacement cannot choose (a kindergarten's internal
/// id) are kept from the original.
pub fn resolve_replacement(
    s: &State,
    target_seq: u64,
    original: &Event,
    replacement: &Command,
) -> Result<Event, DomainError> {
    if matches!(
        original,
        Event::EventCorrected(_) | Event::EventRetracted(_)
    ) {
        return Err(DomainError::CorrectionTarget {
            target: target_seq,
            reason:
                "it is itself a correction or retraction; correct the original event again instead"
                    .into(),
        });
    }
    let mut event = resolve(s, replacement)?;
    if let (Event::KindergartenRegistered(new), Event::KindergartenRegistered(old)) =
        (&mut event, original)
    {
        new.kindergarten = old.kindergarten;
    }
    if event.event_type() != original.event_type() {
        return Err(DomainError::CorrectionTarget {
            target: target_seq,
            reason: format!(
                "the replacement records {} but the original is {}; a correction must be the same kind of command",
                event.event_type(),
                original.event_type()
            ),
        });
    }
    if event.primary() != original.primary() {
        return Err(DomainError::CorrectionTarget {
            target: target_seq,
            reason: "the replacement concerns a different entity; a correction must be about the same one".into(),
        });
    }
    Ok(event)
}
