//! Events: past-tense facts, each with a schema version, encoded one struct per payload.
//!
//! A payload is `bincode(struct)` for the struct named by the envelope's event type, at the
//! envelope's schema version. bincode is not self-describing, so a changed struct gets a new
//! schema version and the old shape stays in [`upcast`] to be read and converted. The
//! golden-byte test in `tests/` freezes today's shapes.

use serde::{Deserialize, Serialize};

use crate::command::Exception;
use crate::values::*;

/// bincode configuration for payloads: standard, with a size limit so corrupt lengths
/// cannot allocate without bound.
fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<{ 2 << 20 }>()
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Encoding our own in-memory structs into a Vec cannot fail except past the size limit,
    // which the store refuses anyway; an empty payload then fails decoding loudly.
    bincode::serde::encode_to_vec(v, config()).unwrap_or_default()
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    let (v, used) =
        bincode::serde::decode_from_slice(bytes, config()).map_err(|e| e.to_string())?;
    if used != bytes.len() {
        return Err(format!("{} trailing bytes", bytes.len() - used));
    }
    Ok(v)
}

/// Who ran a training.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Organizer {
    /// A group (tier `group`).
    Group(GroupName),
    /// A kindergarten (tier `kindergarten`).
    Kindergarten(KgId),
    /// Another body, e.g. 区教师进修学院 (tiers `municipal`, `district`).
    Body(Text),
}

macro_rules! events {
    ($( $(#[$doc:meta])* $name:ident [$ver:literal] { $( $(#[$fdoc:meta])* $field:ident : $ty:ty ),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            pub struct $name { $( $(#[$fdoc])* pub $field: $ty ),* }
        )*

        /// Every event type.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "event", content = "data")]
        pub enum Event { $( $(#[$doc])* $name($name) ),* }

        impl Event {
            /// The event type name stored in the envelope.
            pub fn event_type(&self) -> &'static str { match self { $(Event::$name(_) => stringify!($name)),* } }
            /// The current schema version of this event type.
            pub fn schema_version(&self) -> u16 { match self { $(Event::$name(_) => $ver),* } }
            /// The payload bytes.
            pub fn encode(&self) -> Vec<u8> { match self { $(Event::$name(e) => encode(e)),* } }
            /// Decode a payload of `event_type` at `schema_version`, upcasting older shapes.
            pub fn decode(event_type: &str, schema_version: u16, payload: &[u8]) -> Result<Event, String> {
                match event_type {
                    $(stringify!($name) => {
                        if schema_version == $ver {
                            decode::<$name>(payload).map(Event::$name)
                        } else {
                            upcast::upcast(event_type, schema_version, payload)
                        }
                    })*
                    other => Err(format!("unknown event type {other:?}")),
                }
            }
            /// Every event type with its current schema version, for the catalogue.
            pub const CATALOGUE: &'static [(&'static str, u16)] = &[$((stringify!($name), $ver)),*];
        }
    };
}

events! {
    /// A kindergarten was registered.
    KindergartenRegistered [2] { kindergarten: KgId, name: KgName, full_name: Option<Text>, category: Category, ownership: Ownership, provisional: bool, on: Date,
        /// A 合作办园主体园 from registration (v1 had no such field: false).
        cooperative_principal: bool }
    /// A kindergarten designated a 合作办园主体园 (cooperative principal).
    CooperativePrincipalDesignated [1] { kindergarten: KgId, on: Date }
    /// A kindergarten was renamed.
    KindergartenRenamed [1] { kindergarten: KgId, new_name: KgName, provisional: bool, on: Date }
    /// A group was founded with its lead as first member.
    GroupFounded [2] { group: GroupName, kind: GroupKind, lead: KgId, on: Date,
        /// The exception under which an ineligible lead was named (v1: see [`upcast`]).
        exception: Option<Exception> }
    /// A kindergarten joined a group.
    KindergartenJoined [1] { kindergarten: KgId, group: GroupName, on: Date }
    /// A kindergarten left a group.
    KindergartenLeft [1] { kindergarten: KgId, group: GroupName, on: Date }
    /// A kindergarten moved from one group to another on one day.
    KindergartenTransferred [1] { kindergarten: KgId, from_group: GroupName, to_group: GroupName, on: Date }
    /// A group's lead changed.
    LeadChanged [2] { group: GroupName, lead: KgId, on: Date,
        /// The exception under which an ineligible lead was named (v1: see [`upcast`]).
        exception: Option<Exception> }
    /// A kindergarten's category changed.
    KindergartenRegraded [1] { kindergarten: KgId, category: Category, on: Date }
    /// A kindergarten was designated high-quality.
    HighQualityDesignated [1] { kindergarten: KgId, on: Date }
    /// A high-quality designation was revoked.
    HighQualityRevoked [1] { kindergarten: KgId, on: Date }
    /// A principal was appointed.
    PrincipalAppointed [1] { kindergarten: KgId, staff_no: StaffNo, on: Date }
    /// A principal's appointment ended.
    PrincipalEnded [1] { kindergarten: KgId, on: Date }
    /// Secretariat staff appointed for a term.
    SecretariatAppointed [1] { group: GroupName, staff_no: StaffNo, role: Text, from: Date, to: Date }
    /// Secretariat staff dismissed.
    SecretariatDismissed [1] { group: GroupName, staff_no: StaffNo, on: Date }
    /// A governance document adopted.
    DocumentAdopted [1] { group: GroupName, doc_kind: DocKind, title: Text, period: Option<Text>, sha256: Option<Sha256Hex>, on: Date }
    /// A resident expert assigned.
    ExpertAssigned [1] { group: GroupName, expert: Text, affiliation: Text, from: Date, to: Date }
    /// A teacher registered.
    TeacherRegistered [1] { staff_no: StaffNo, name: Text, home: KgId, on: Date }
    /// A teacher's establishment moved.
    HomeChanged [1] { staff_no: StaffNo, home: KgId, on: Date }
    /// A title awarded.
    TitleAwarded [1] { staff_no: StaffNo, title: Title, on: Date }
    /// A teacher left service.
    ServiceLeft [1] { staff_no: StaffNo, on: Date }
    /// A rotation started.
    RotationStarted [1] { rotation: RecordId, staff_no: StaffNo, host: KgId, mode: RotationMode, start: Date, planned_end: Date, exception: Option<Exception> }
    /// A rotation was extended.
    RotationExtended [2] { rotation: RecordId, planned_end: Date, exception: Option<Exception>,
        /// The day the extension was decided: its valid time (v1 had none; see [`upcast`]).
        on: Date }
    /// A rotation ended with an assessment.
    RotationEnded [1] { rotation: RecordId, end: Date, assessment: Assessment }
    /// A rotation was cancelled.
    RotationCancelled [1] { rotation: RecordId, on: Date, reason: Text }
    /// A training was held.
    TrainingHeld [1] { training: RecordId, title: Text, tier: TrainingTier, organizer: Organizer, start: Date, end: Date, hours: Hours }
    /// Attendance was recorded.
    AttendanceRecorded [1] { training: RecordId, staff_nos: Vec<StaffNo> }
    /// Recognition was applied for.
    RecognitionApplied [1] { training: RecordId, on: Date }
    /// Recognition was decided.
    RecognitionDecided [1] { training: RecordId, granted: bool, on: Date, reviewer: Text }
    /// An activity was held.
    ActivityHeld [1] { activity: RecordId, group: GroupName, kind: ActivityKind, title: Text, on: Date, kindergartens: Vec<KgId> }
    /// A project was proposed.
    ProjectProposed [2] { project: RecordId, group: GroupName, kind: ProjectKind, title: Text, year: i32, members: Vec<StaffNo>,
        /// The day it was proposed: its valid time (v1 had none; see [`upcast`]).
        on: Date }
    /// A project was approved.
    ProjectApproved [1] { project: RecordId, on: Date, budget_fen: Fen }
    /// A project was completed.
    ProjectCompleted [1] { project: RecordId, on: Date, rating: Rating }
    /// A project was cancelled.
    ProjectCancelled [1] { project: RecordId, on: Date, reason: Text }
    /// Points rules adopted for a year.
    PointsRulesAdopted [1] { year: i32, rules: String, sha256: String, on: Date }
    /// A principal was given a role (and its token's SHA-256, never the token).
    AccessGranted [1] { principal: PrincipalName, role: Role, groups: Vec<GroupName>, token_sha256: Sha256Hex, on: Date }
    /// A principal's access ended.
    AccessRevoked [1] { principal: PrincipalName, on: Date }
    /// An earlier event was corrected.
    EventCorrected [1] { target_seq: u64, replacement_type: String, replacement_version: u16, replacement_payload: Vec<u8>, reason: Reason }
    /// An earlier event was retracted.
    EventRetracted [1] { target_seq: u64, reason: Reason }
}

/// Older payload shapes and their conversion to today's. Empty until a shape changes: then
/// keep the old struct here, match on (type, version), decode it and convert.
/// Older shapes of events, and their conversion to today's. docs/EVENTS.md lists them.
pub mod upcast {
    use serde::{Deserialize, Serialize};

    use super::{
        Event, GroupFounded, KindergartenRegistered, LeadChanged, ProjectProposed,
        RotationExtended, decode,
    };
    use crate::command::Exception;
    use crate::values::*;

    /// `RotationExtended` v1 (eduledger 0.1): no date of its own.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct RotationExtendedV1 {
        /// Rotation.
        pub rotation: RecordId,
        /// New planned end.
        pub planned_end: Date,
        /// Exception.
        pub exception: Option<Exception>,
    }

    /// `ProjectProposed` v1 (eduledger 0.1): no date of its own.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct ProjectProposedV1 {
        /// Project.
        pub project: RecordId,
        /// Group.
        pub group: GroupName,
        /// Kind.
        pub kind: ProjectKind,
        /// Title.
        pub title: Text,
        /// Year.
        pub year: i32,
        /// Members.
        pub members: Vec<StaffNo>,
    }

    /// `KindergartenRegistered` v1 (eduledger 0.1): no `cooperative_principal`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct KindergartenRegisteredV1 {
        /// Id.
        pub kindergarten: KgId,
        /// Name.
        pub name: KgName,
        /// Full name.
        pub full_name: Option<Text>,
        /// Category.
        pub category: Category,
        /// Ownership.
        pub ownership: Ownership,
        /// Provisional name.
        pub provisional: bool,
        /// Date.
        pub on: Date,
    }

    /// `GroupFounded` and `LeadChanged` v1 (eduledger 0.1): no exception.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct GroupFoundedV1 {
        /// Group.
        pub group: GroupName,
        /// Kind.
        pub kind: GroupKind,
        /// Lead.
        pub lead: KgId,
        /// Date.
        pub on: Date,
    }

    /// `LeadChanged` v1 (eduledger 0.1): no exception.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct LeadChangedV1 {
        /// Group.
        pub group: GroupName,
        /// Lead.
        pub lead: KgId,
        /// Date.
        pub on: Date,
    }

    /// The authority a lead named by eduledger 0.1 stands on: lead eligibility was not
    /// checked then, and the plan itself names the roster's leads.
    pub fn v0_1_lead_authority() -> Exception {
        let text = |t: &str| Text::new(t).unwrap_or_else(|_| unreachable!("a valid text"));
        Exception {
            approved_by: text("青浦区教育局"),
            reference: text("青教〔2023〕61号"),
            reason: text("recorded by eduledger 0.1, before lead eligibility was checked"),
        }
    }

    /// Read an older shape as today's event.
    ///
    /// A v1 event had no valid time; it is given [`Date::BEGINNING`], so it reads on every
    /// date exactly as eduledger 0.1 showed it: a v0.1 extension holds from its rotation's
    /// start (nothing of a rotation shows before its start), a v0.1 proposal from the first
    /// day. Nothing is rewritten: the stored bytes stay as they were.
    pub(super) fn upcast(
        event_type: &str,
        schema_version: u16,
        payload: &[u8],
    ) -> Result<Event, String> {
        match (event_type, schema_version) {
            ("RotationExtended", 1) => {
                let v1: RotationExtendedV1 = decode(payload)?;
                Ok(Event::RotationExtended(RotationExtended {
                    rotation: v1.rotation,
                    planned_end: v1.planned_end,
                    exception: v1.exception,
                    on: Date::BEGINNING,
                }))
            }
            ("ProjectProposed", 1) => {
                let v1: ProjectProposedV1 = decode(payload)?;
                Ok(Event::ProjectProposed(ProjectProposed {
                    project: v1.project,
                    group: v1.group,
                    kind: v1.kind,
                    title: v1.title,
                    year: v1.year,
                    members: v1.members,
                    on: Date::BEGINNING,
                }))
            }
            ("KindergartenRegistered", 1) => {
                let v1: KindergartenRegisteredV1 = decode(payload)?;
                Ok(Event::KindergartenRegistered(KindergartenRegistered {
                    kindergarten: v1.kindergarten,
                    name: v1.name,
                    full_name: v1.full_name,
                    category: v1.category,
                    ownership: v1.ownership,
                    provisional: v1.provisional,
                    on: v1.on,
                    cooperative_principal: false,
                }))
            }
            ("GroupFounded", 1) => {
                let v1: GroupFoundedV1 = decode(payload)?;
                Ok(Event::GroupFounded(GroupFounded {
                    group: v1.group,
                    kind: v1.kind,
                    lead: v1.lead,
                    on: v1.on,
                    exception: Some(v0_1_lead_authority()),
                }))
            }
            ("LeadChanged", 1) => {
                let v1: LeadChangedV1 = decode(payload)?;
                Ok(Event::LeadChanged(LeadChanged {
                    group: v1.group,
                    lead: v1.lead,
                    on: v1.on,
                    exception: Some(v0_1_lead_authority()),
                }))
            }
            _ => Err(format!(
                "event type {event_type} at schema version {schema_version} is newer than this eduledger knows; upgrade eduledger"
            )),
        }
    }
}

/// An entity an event can touch, for audit trails and stream ids.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum EntityRef {
    /// A group, by name.
    Group(GroupName),
    /// A kindergarten, by internal id.
    Kindergarten(KgId),
    /// A teacher, by staff number.
    Teacher(StaffNo),
    /// A rotation.
    Rotation(RecordId),
    /// A training.
    Training(RecordId),
    /// An activity.
    Activity(RecordId),
    /// A project.
    Project(RecordId),
    /// A year's points rules.
    Rules(i32),
    /// A principal (who acts through the server).
    Principal(PrincipalName),
}

impl EntityRef {
    /// The store stream id of this entity.
    pub fn stream(&self) -> String {
        let mut id = String::new();
        let _ = self.write_stream(&mut id);
        id
    }

    /// [`EntityRef::stream`], written into a buffer the caller reuses.
    pub fn write_stream(&self, out: &mut impl std::fmt::Write) -> std::fmt::Result {
        match self {
            EntityRef::Group(g) => write!(out, "group:{g}"),
            EntityRef::Kindergarten(k) => write!(out, "kindergarten:{k}"),
            EntityRef::Teacher(t) => write!(out, "teacher:{t}"),
            EntityRef::Rotation(r) => write!(out, "rotation:{r}"),
            EntityRef::Training(r) => write!(out, "training:{r}"),
            EntityRef::Activity(r) => write!(out, "activity:{r}"),
            EntityRef::Project(r) => write!(out, "project:{r}"),
            EntityRef::Rules(y) => write!(out, "rules:{y}"),
            EntityRef::Principal(p) => write!(out, "principal:{p}"),
        }
    }
}

impl Event {
    /// The entity whose stream holds this event (the first it touches). Corrections and
    /// retractions have none of their own: they are written to their target's stream.
    pub fn primary(&self) -> Option<EntityRef> {
        self.touches().into_iter().next()
    }

    /// [`Event::touches`], each entity once, in entity order: the keys of the audit index.
    pub fn touched(&self) -> Vec<EntityRef> {
        let mut v = self.touches();
        v.sort();
        v.dedup();
        v
    }

    /// Every entity this event concerns, its primary first.
    pub fn touches(&self) -> Vec<EntityRef> {
        use EntityRef as R;
        use Event as E;
        let kg = |k: &KgId| R::Kindergarten(*k);
        match self {
            E::KindergartenRegistered(e) => vec![kg(&e.kindergarten)],
            E::KindergartenRenamed(e) => vec![kg(&e.kindergarten)],
            E::GroupFounded(e) => vec![R::Group(e.group.clone()), kg(&e.lead)],
            E::KindergartenJoined(e) => vec![kg(&e.kindergarten), R::Group(e.group.clone())],
            E::KindergartenLeft(e) => vec![kg(&e.kindergarten), R::Group(e.group.clone())],
            E::KindergartenTransferred(e) => {
                vec![
                    kg(&e.kindergarten),
                    R::Group(e.from_group.clone()),
                    R::Group(e.to_group.clone()),
                ]
            }
            E::LeadChanged(e) => vec![R::Group(e.group.clone()), kg(&e.lead)],
            E::KindergartenRegraded(e) => vec![kg(&e.kindergarten)],
            E::HighQualityDesignated(e) => vec![kg(&e.kindergarten)],
            E::CooperativePrincipalDesignated(e) => vec![kg(&e.kindergarten)],
            E::HighQualityRevoked(e) => vec![kg(&e.kindergarten)],
            E::PrincipalAppointed(e) => vec![kg(&e.kindergarten), R::Teacher(e.staff_no.clone())],
            E::PrincipalEnded(e) => vec![kg(&e.kindergarten)],
            E::SecretariatAppointed(e) => {
                vec![R::Group(e.group.clone()), R::Teacher(e.staff_no.clone())]
            }
            E::SecretariatDismissed(e) => {
                vec![R::Group(e.group.clone()), R::Teacher(e.staff_no.clone())]
            }
            E::DocumentAdopted(e) => vec![R::Group(e.group.clone())],
            E::ExpertAssigned(e) => vec![R::Group(e.group.clone())],
            E::TeacherRegistered(e) => vec![R::Teacher(e.staff_no.clone()), kg(&e.home)],
            E::HomeChanged(e) => vec![R::Teacher(e.staff_no.clone()), kg(&e.home)],
            E::TitleAwarded(e) => vec![R::Teacher(e.staff_no.clone())],
            E::ServiceLeft(e) => vec![R::Teacher(e.staff_no.clone())],
            E::RotationStarted(e) => {
                vec![
                    R::Rotation(e.rotation.clone()),
                    R::Teacher(e.staff_no.clone()),
                    kg(&e.host),
                ]
            }
            E::RotationExtended(e) => vec![R::Rotation(e.rotation.clone())],
            E::RotationEnded(e) => vec![R::Rotation(e.rotation.clone())],
            E::RotationCancelled(e) => vec![R::Rotation(e.rotation.clone())],
            E::TrainingHeld(e) => {
                let mut v = vec![R::Training(e.training.clone())];
                match &e.organizer {
                    Organizer::Group(g) => v.push(R::Group(g.clone())),
                    Organizer::Kindergarten(k) => v.push(kg(k)),
                    Organizer::Body(_) => {}
                }
                v
            }
            E::AttendanceRecorded(e) => std::iter::once(R::Training(e.training.clone()))
                .chain(e.staff_nos.iter().map(|s| R::Teacher(s.clone())))
                .collect(),
            E::RecognitionApplied(e) => vec![R::Training(e.training.clone())],
            E::RecognitionDecided(e) => vec![R::Training(e.training.clone())],
            E::ActivityHeld(e) => std::iter::once(R::Activity(e.activity.clone()))
                .chain(std::iter::once(R::Group(e.group.clone())))
                .chain(e.kindergartens.iter().map(kg))
                .collect(),
            E::ProjectProposed(e) => std::iter::once(R::Project(e.project.clone()))
                .chain(std::iter::once(R::Group(e.group.clone())))
                .chain(e.members.iter().map(|s| R::Teacher(s.clone())))
                .collect(),
            E::ProjectApproved(e) => vec![R::Project(e.project.clone())],
            E::ProjectCompleted(e) => vec![R::Project(e.project.clone())],
            E::ProjectCancelled(e) => vec![R::Project(e.project.clone())],
            E::PointsRulesAdopted(e) => vec![R::Rules(e.year)],
            E::AccessGranted(e) => std::iter::once(R::Principal(e.principal.clone()))
                .chain(e.groups.iter().map(|g| R::Group(g.clone())))
                .collect(),
            E::AccessRevoked(e) => vec![R::Principal(e.principal.clone())],
            E::EventCorrected(_) | E::EventRetracted(_) => vec![],
        }
    }

    /// The replacement carried by a correction, decoded.
    pub fn replacement(&self) -> Option<Result<Event, String>> {
        match self {
            Event::EventCorrected(c) => Some(Event::decode(
                &c.replacement_type,
                c.replacement_version,
                &c.replacement_payload,
            )),
            _ => None,
        }
    }

    /// The event as JSON for people (exports, `log`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let (Some(Ok(rep)), Some(data)) = (self.replacement(), v.get_mut("data"))
            && let Some(obj) = data.as_object_mut()
        {
            obj.remove("replacement_payload");
            obj.insert("replacement".into(), rep.to_json());
        }
        v
    }
}
