//! The temporal state: everything recorded, as intervals over valid time.
//!
//! Maps are persistent (`imbl`), so cloning a state is O(1): a command is decided by applying
//! its event to a clone and checking the rules there, and the clone becomes the new state only
//! if every rule holds. Each change sits in a [`Timeline`] ordered by (date, sequence), so a
//! back-dated event lands where it belongs in valid time.

// The per-entity indexes are persistent sets: a command that adds one teacher to a
// kindergarten copies O(log n) of its index, not the whole set (the batch-growth example).
use imbl::OrdSet as BTreeSet;

mod access;
mod governance;
mod membership;
mod projects;
mod rotations;
mod teachers;
mod trainings;

use imbl::OrdMap;
use serde::{Deserialize, Serialize};

use crate::command::Exception;
use crate::event::*;
use crate::values::*;

/// Where a fact came from in the log: its sequence, and the correction that replaced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Origin {
    /// The sequence of the event (for a corrected event: the original's).
    pub seq: u64,
    /// The sequence of the correction whose replacement this is.
    pub corrected_by: Option<u64>,
}

impl Origin {
    /// Every sequence behind the fact.
    pub fn seqs(&self) -> Vec<u64> {
        std::iter::once(self.seq).chain(self.corrected_by).collect()
    }
}

/// A change that holds from `on` (valid time), recorded at `seq` (transaction order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dated<T> {
    /// First day it holds.
    pub on: Date,
    /// Sequence of the event, to order changes on one day.
    pub seq: u64,
    /// The value from then on.
    pub value: T,
}

/// Changes of one attribute over valid time, ordered by (date, sequence).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline<T>(pub Vec<Dated<T>>);

impl<T> Default for Timeline<T> {
    fn default() -> Self {
        Timeline(Vec::new())
    }
}

impl<T: Clone> Timeline<T> {
    /// The changes that hold by `date`: the timeline as it stood that day.
    pub fn until(&self, date: Date) -> Timeline<T> {
        Timeline(self.0.iter().filter(|d| d.on <= date).cloned().collect())
    }
}

impl<T> Timeline<T> {
    /// Insert a change in (date, seq) order.
    pub fn insert(&mut self, on: Date, seq: u64, value: T) {
        let at = self.0.partition_point(|d| (d.on, d.seq) <= (on, seq));
        self.0.insert(at, Dated { on, seq, value });
    }
    /// The value in force on `date` (the last change on or before it).
    pub fn at(&self, date: Date) -> Option<&T> {
        let n = self.0.partition_point(|d| d.on <= date);
        n.checked_sub(1).map(|i| &self.0[i].value)
    }
    /// All changes in order.
    pub fn iter(&self) -> impl Iterator<Item = &Dated<T>> {
        self.0.iter()
    }
    /// The earliest change.
    pub fn first(&self) -> Option<&Dated<T>> {
        self.0.first()
    }
}

/// A step of a kindergarten's group history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Membership {
    /// Joined (or founded, as lead).
    Join(GroupName),
    /// Left.
    Leave(GroupName),
    /// Moved from one group to another.
    Transfer {
        /// The group left.
        from: GroupName,
        /// The group joined.
        to: GroupName,
    },
}

impl Membership {
    /// The group the kindergarten is in after this step.
    pub fn group_after(&self) -> Option<&GroupName> {
        match self {
            Membership::Join(g) => Some(g),
            Membership::Leave(_) => None,
            Membership::Transfer { to, .. } => Some(to),
        }
    }
}

/// A kindergarten.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Kindergarten {
    /// Internal id.
    pub id: KgId,
    /// Registration date.
    pub registered: Date,
    /// Names over time, with the provisional flag.
    pub names: Timeline<(KgName, bool)>,
    /// Full name, if given.
    pub full_name: Option<Text>,
    /// Ownership.
    pub ownership: Ownership,
    /// Category over time.
    pub category: Timeline<Category>,
    /// Group history.
    pub membership: Timeline<Membership>,
    /// High-quality designation over time (true = designated), with the event behind it.
    pub high_quality: Timeline<(bool, Origin)>,
    /// A 合作办园主体园 (cooperative principal) over time.
    pub cooperative: Timeline<bool>,
    /// Principal over time.
    pub principal: Timeline<Option<StaffNo>>,
}

impl Kindergarten {
    /// The name in force on `date` (the registered name before registration).
    pub fn name_on(&self, date: Date) -> &KgName {
        match self
            .names
            .at(date)
            .or_else(|| self.names.first().map(|d| &d.value))
        {
            Some((n, _)) => n,
            None => unreachable_name(),
        }
    }
    /// The latest name.
    pub fn current_name(&self) -> &KgName {
        match self.names.0.last() {
            Some(d) => &d.value.0,
            None => unreachable_name(),
        }
    }
    /// Whether the name on `date` is provisional.
    pub fn provisional_on(&self, date: Date) -> bool {
        self.names.at(date).map(|(_, p)| *p).unwrap_or(false)
    }
    /// The group on `date`.
    pub fn group_on(&self, date: Date) -> Option<&GroupName> {
        self.membership.at(date).and_then(Membership::group_after)
    }
    /// High-quality on `date`.
    pub fn high_quality_on(&self, date: Date) -> bool {
        self.high_quality.at(date).map(|(b, _)| *b).unwrap_or(false)
    }
    /// The category on `date` (the first known before any change).
    pub fn category_on(&self, date: Date) -> Category {
        self.category
            .at(date)
            .or_else(|| self.category.first().map(|d| &d.value))
            .copied()
            .unwrap_or(Category::Unspecified)
    }
    /// Whether it may lead a group on `date` (1+X, §三(一)): a municipal demonstration
    /// kindergarten (市示范园) or a cooperative principal (合作办园主体园) that day.
    pub fn lead_eligible_on(&self, date: Date) -> bool {
        self.category_on(date) == Category::MunicipalDemonstration
            || self.cooperative.at(date).copied().unwrap_or(false)
    }
    /// The principal on `date`.
    pub fn principal_on(&self, date: Date) -> Option<&StaffNo> {
        self.principal.at(date).and_then(Option::as_ref)
    }
}

fn unreachable_name() -> &'static KgName {
    // Every kindergarten is created with its name; this only guards against a broken snapshot.
    static NONE: std::sync::OnceLock<KgName> = std::sync::OnceLock::new();
    NONE.get_or_init(KgName::placeholder)
}

/// A secretariat term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Term {
    /// Staff.
    pub staff_no: StaffNo,
    /// Role.
    pub role: Text,
    /// First day.
    pub from: Date,
    /// Last day as appointed.
    pub to: Date,
    /// First day no longer serving, if dismissed early.
    pub dismissed: Option<Date>,
}

impl Term {
    /// The last day actually served.
    pub fn last_day(&self) -> Date {
        match self.dismissed {
            Some(d) if d.pred() < self.to => d.pred(),
            _ => self.to,
        }
    }
    /// Whether serving on `date`.
    pub fn serving_on(&self, date: Date) -> bool {
        self.from <= date && date <= self.last_day()
    }
}

/// A governance document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// Kind.
    pub doc_kind: DocKind,
    /// Title.
    pub title: Text,
    /// Period covered.
    pub period: Option<Text>,
    /// Hash of the file.
    pub sha256: Option<Sha256Hex>,
    /// Adoption date.
    pub on: Date,
    /// Event.
    pub origin: Origin,
}

/// A resident expert's term.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpertTerm {
    /// Name.
    pub expert: Text,
    /// Affiliation.
    pub affiliation: Text,
    /// First day.
    pub from: Date,
    /// Last day.
    pub to: Date,
}

/// A group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// Name (identity).
    pub name: GroupName,
    /// Kind.
    pub kind: GroupKind,
    /// Founding date.
    pub founded: Date,
    /// Lead over time.
    pub leads: Timeline<KgId>,
    /// Whether each lead was named under an approved exception to lead eligibility (same
    /// keys as `leads`).
    pub lead_excepted: Timeline<bool>,
    /// Secretariat terms.
    pub secretariat: Vec<Term>,
    /// Documents.
    pub documents: Vec<Document>,
    /// Experts.
    pub experts: Vec<ExpertTerm>,
}

impl Group {
    /// The lead on `date`.
    pub fn lead_on(&self, date: Date) -> Option<KgId> {
        self.leads.at(date).copied()
    }
}

/// A teacher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Teacher {
    /// Staff number.
    pub staff_no: StaffNo,
    /// Name.
    pub name: Text,
    /// Registration date.
    pub registered: Date,
    /// Home kindergarten over time.
    pub home: Timeline<KgId>,
    /// Titles awarded.
    pub titles: Vec<Dated<Title>>,
    /// First day out of service.
    pub left: Option<Date>,
}

impl Teacher {
    /// In service on `date`: registered by then and not yet left.
    pub fn in_service_on(&self, date: Date) -> bool {
        self.registered <= date && self.left.is_none_or(|l| date < l)
    }
    /// In service on `date` with `kg` as home kindergarten (编制所在园): "serving here".
    pub fn serving_at(&self, kg: KgId, date: Date) -> bool {
        self.home.at(date) == Some(&kg) && self.in_service_on(date)
    }
}

/// How a rotation finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    /// Ended with an assessment; `end` is the last day.
    Ended {
        /// Last day.
        end: Date,
        /// Host assessment.
        assessment: Assessment,
        /// Event.
        origin: Origin,
    },
    /// Cancelled from `on`.
    Cancelled {
        /// First day no longer on rotation.
        on: Date,
        /// Why.
        reason: Text,
    },
}

/// A rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    /// Id.
    pub id: RecordId,
    /// Teacher.
    pub staff_no: StaffNo,
    /// Host kindergarten.
    pub host: KgId,
    /// Mode.
    pub mode: RotationMode,
    /// First day.
    pub start: Date,
    /// Planned last day (after every extension recorded).
    pub planned_end: Date,
    /// The exception in force after every extension recorded, if any.
    pub exception: Option<Exception>,
    /// The planned last day and exception the rotation started with.
    pub initial: (Date, Option<Exception>),
    /// Extensions by the day they were decided (valid time), each with its own exception.
    pub extensions: Timeline<(Date, Option<Exception>)>,
    /// How it finished.
    pub outcome: Option<Outcome>,
    /// The start event.
    pub origin: Origin,
}

impl Rotation {
    /// The plan as it stood on `date` — its last day and its exception: the start's, or the
    /// latest extension decided by then (an extension counts from the day it was decided,
    /// and never before the rotation's start).
    pub fn plan_on(&self, date: Date) -> (Date, Option<&Exception>) {
        self.extensions
            .0
            .iter()
            .rfind(|x| x.on.max(self.start) <= date)
            .map_or((self.initial.0, self.initial.1.as_ref()), |x| {
                (x.value.0, x.value.1.as_ref())
            })
    }
    /// The planned last day as it stood on `date`.
    pub fn planned_end_on(&self, date: Date) -> Date {
        self.plan_on(date).0
    }
    /// The outcome as known on `date`: an end counts from its last day, a cancellation
    /// from its first day off rotation.
    pub fn outcome_on(&self, date: Date) -> Option<&Outcome> {
        self.outcome.as_ref().filter(|o| match o {
            Outcome::Ended { end, .. } => *end <= date,
            Outcome::Cancelled { on, .. } => *on <= date,
        })
    }
    /// Every planned end the rotation has had, each with the exception that came with it:
    /// the start's, then each extension's.
    pub fn plans(&self) -> impl Iterator<Item = (Date, bool)> + '_ {
        std::iter::once((self.initial.0, self.initial.1.is_some())).chain(
            self.extensions
                .iter()
                .map(|x| (x.value.0, x.value.1.is_some())),
        )
    }
    /// The last day the teacher is (or is planned to be) on rotation; None if cancelled before it began.
    pub fn last_day(&self) -> Option<Date> {
        match &self.outcome {
            None => Some(self.planned_end),
            Some(Outcome::Ended { end, .. }) => Some(*end),
            Some(Outcome::Cancelled { on, .. }) => (*on > self.start).then(|| on.pred()),
        }
    }
    /// Whether the teacher is on this rotation on `date`.
    pub fn active_on(&self, date: Date) -> bool {
        self.start <= date && self.last_day().is_some_and(|l| date <= l)
    }
    /// Words for its state.
    pub fn state_words(&self) -> String {
        match &self.outcome {
            None => "running".into(),
            Some(Outcome::Ended { end, .. }) => format!("ended on {end}"),
            Some(Outcome::Cancelled { on, .. }) => format!("cancelled on {on}"),
        }
    }
}

/// A recognition decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecognitionDecision {
    /// Granted or not.
    pub granted: bool,
    /// Date.
    pub on: Date,
    /// Reviewer.
    pub reviewer: Text,
    /// Event.
    pub origin: Origin,
}

/// A training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Training {
    /// Id.
    pub id: RecordId,
    /// Its position in `State::training_ids`, so attendance lists hold a number, not the id.
    pub ordinal: u32,
    /// Title.
    pub title: Text,
    /// Tier.
    pub tier: TrainingTier,
    /// Organizer.
    pub organizer: Organizer,
    /// First day.
    pub start: Date,
    /// Last day.
    pub end: Date,
    /// Hours.
    pub hours: Hours,
    /// Attendees.
    /// How many distinct teachers attended (who they were: `State::trainings_by_teacher`).
    pub attendees: u32,
    /// Date of the recognition application.
    pub applied: Option<Date>,
    /// The bureau's decision.
    pub decision: Option<RecognitionDecision>,
}

impl Training {
    /// Whether it counts at district level (district tier, or a granted group training).
    pub fn counts_as_district(&self) -> bool {
        self.tier == TrainingTier::District || self.decision.as_ref().is_some_and(|d| d.granted)
    }
}

/// An activity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    /// Id.
    pub id: RecordId,
    /// Group.
    pub group: GroupName,
    /// Kind.
    pub kind: ActivityKind,
    /// Title.
    pub title: Text,
    /// Date.
    pub on: Date,
    /// Kindergartens taking part (or visited).
    pub kindergartens: Vec<KgId>,
    /// Event.
    pub origin: Origin,
}

/// A project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Id.
    pub id: RecordId,
    /// Group.
    pub group: GroupName,
    /// Kind.
    pub kind: ProjectKind,
    /// Title.
    pub title: Text,
    /// Year.
    pub year: i32,
    /// The day it was proposed (0001-01-01 for a v0.1 proposal, which had no date).
    pub proposed: Date,
    /// Members.
    pub members: Vec<StaffNo>,
    /// Approval date and budget.
    pub approved: Option<(Date, Fen)>,
    /// Completion date, rating, event.
    pub completed: Option<(Date, Rating, Origin)>,
    /// Cancellation date and reason.
    pub cancelled: Option<(Date, Text)>,
}

/// Where a project stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProjectStatus {
    /// Proposed, not yet approved.
    Proposed,
    /// Approved with a budget.
    Approved,
    /// Completed and rated.
    Completed,
    /// Cancelled.
    Cancelled,
}

impl ProjectStatus {
    /// The code in JSON and tables.
    pub fn code(self) -> &'static str {
        match self {
            ProjectStatus::Proposed => "proposed",
            ProjectStatus::Approved => "approved",
            ProjectStatus::Completed => "completed",
            ProjectStatus::Cancelled => "cancelled",
        }
    }
}

impl Project {
    /// Where it stands after everything recorded.
    pub fn status(&self) -> ProjectStatus {
        self.status_on(Date::MAX)
    }
    fn status_on(&self, date: Date) -> ProjectStatus {
        if self.cancelled.as_ref().is_some_and(|(on, _)| *on <= date) {
            ProjectStatus::Cancelled
        } else if self
            .completed
            .as_ref()
            .is_some_and(|(on, _, _)| *on <= date)
        {
            ProjectStatus::Completed
        } else if self.approved.as_ref().is_some_and(|(on, _)| *on <= date) {
            ProjectStatus::Approved
        } else {
            ProjectStatus::Proposed
        }
    }
    /// Words for its state after everything recorded.
    pub fn state(&self) -> &'static str {
        self.status().code()
    }
}

/// A points rule set adopted into the ledger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RulesAdoption {
    /// The TOML text.
    pub rules: String,
    /// Its SHA-256.
    pub sha256: String,
    /// Adoption date.
    pub on: Date,
    /// Event.
    pub origin: Origin,
}

/// A role given to a principal for a span of dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// What it may do.
    pub role: Role,
    /// For a recorder: the groups it may record in (empty: all).
    pub groups: Vec<GroupName>,
    /// SHA-256 (hex) of its bearer token.
    pub token_sha256: Sha256Hex,
    /// In force from.
    pub from: Date,
    /// Revoked from (the token stops working that day).
    pub until: Option<Date>,
    /// Where it came from.
    pub origin: Origin,
}

impl Grant {
    /// Whether it is in force on `date`.
    pub fn in_force(&self, date: Date) -> bool {
        self.from <= date && self.until.is_none_or(|u| date < u)
    }
}

/// A correction or retraction recorded in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// The corrected or retracted sequence.
    pub target: u64,
    /// The replacement (None: retracted).
    pub replacement: Option<(String, u16, Vec<u8>)>,
}

/// Everything recorded, folded. Its fields change only through [`State::apply`]; readers
/// use the queries below.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    /// Kindergartens by id.
    pub(crate) kindergartens: OrdMap<KgId, Kindergarten>,
    /// Every name any kindergarten has had → its id.
    pub(crate) kg_names: OrdMap<KgName, KgId>,
    /// Groups by name.
    pub(crate) groups: OrdMap<GroupName, Group>,
    /// Teachers by staff number.
    pub(crate) teachers: OrdMap<StaffNo, Teacher>,
    /// Rotations.
    pub(crate) rotations: OrdMap<RecordId, Rotation>,
    /// Trainings.
    pub(crate) trainings: OrdMap<RecordId, Training>,
    /// Activities.
    pub(crate) activities: OrdMap<RecordId, Activity>,
    /// Projects.
    pub(crate) projects: OrdMap<RecordId, Project>,
    /// Points rules adoptions by year, in recording order.
    pub(crate) rules: OrdMap<i32, Vec<RulesAdoption>>,
    // The indexes below are supersets in a state pruned to a date (`as_of`): they may name
    // entities that are not in it yet. Read them only through the entity maps above.
    /// Teachers who ever had each kindergarten as home.
    pub(crate) teachers_by_home: OrdMap<KgId, BTreeSet<StaffNo>>,
    /// Rotations per teacher.
    pub(crate) rotations_by_teacher: OrdMap<StaffNo, BTreeSet<RecordId>>,
    /// Rotations per host.
    pub(crate) rotations_by_host: OrdMap<KgId, BTreeSet<RecordId>>,
    /// Activities per kindergarten.
    pub(crate) activities_by_kg: OrdMap<KgId, BTreeSet<RecordId>>,
    /// Trainings each teacher attended, in recording order.
    pub(crate) trainings_by_teacher: OrdMap<StaffNo, Vec<u32>>,
    /// Training ids by ordinal (see `Training::ordinal`). Attendance is most of a large
    /// ledger; numbers instead of ids keep its lists small and quick to load.
    pub(crate) training_ids: imbl::Vector<RecordId>,
    /// Corrections and retractions by their own sequence.
    pub(crate) overrides: OrdMap<u64, Override>,
    /// The last sequence folded.
    pub(crate) head: u64,
    /// The largest kindergarten id ever given, retracted registrations included, so that an
    /// id is never given twice.
    pub(crate) kg_ids_used: u32,
    /// No fact in the state is effective after this date (the latest valid time folded, or
    /// the date a pruned state was cut at): a read on or after it needs no pruning.
    pub(crate) latest: Option<Date>,
    /// What the ledger keeps about its own log (not about the plan): see [`LogBook`].
    pub(crate) log: LogBook,
    /// Access: every grant each principal has had, in recording order.
    pub(crate) principals: OrdMap<PrincipalName, Vec<Grant>>,
    /// Token hashes of grants the fold skips or replaced (retracted, or corrected to another
    /// token): a token is given once, even when its grant is undone.
    pub(crate) tokens_retired: BTreeSet<Sha256Hex>,
}

/// A hash map's entries in key order, so its encoding never depends on the hash.
fn in_key_order<S, K, V>(map: &imbl::HashMap<K, V>, s: S) -> Result<S::Ok, S::Error>
where
    S: serde::Serializer,
    K: Ord + Serialize + std::hash::Hash + Eq + Clone,
    V: Serialize + Clone,
{
    let mut entries: Vec<(&K, &V)> = map.iter().collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    s.collect_map(entries)
}

/// Chain hashes are kept for every `MARK_EVERY`-th sequence (see [`LogBook::marks`]): an old
/// event is vouched for by re-hashing at most this many events.
pub const MARK_EVERY: u64 = 64;

/// The log's own bookkeeping, folded with the state so that it is exactly as trustworthy as
/// the state (a snapshot carries it; `verify` recomputes it from the first event):
/// - how many recorded events (corrections and retractions aside) touch each entity, so that
///   an audit trail read from an index can prove it is complete;
/// - the chain hash at every [`MARK_EVERY`]-th sequence, so that an event far below the head
///   is vouched for by re-hashing its stretch of at most `MARK_EVERY` events between two
///   marks instead of everything from it to the head.
///
/// Both follow transaction time: they are about the log as recorded (originals, not their
/// replacements), and a state pruned to a valid date keeps them as they are.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogBook {
    /// Events touching each entity (each event counted once per entity), by the entity's
    /// stream id ([`EntityRef::stream`]: a plain string encodes the same in every format).
    /// (A hash map: a quarter of a million entries at Shanghai scale, and an ordered map of
    /// string keys cost a tenth of a second to build at every open. Snapshots write it in key
    /// order, so its bytes do not depend on the hash.)
    #[serde(serialize_with = "in_key_order")]
    pub touched: imbl::HashMap<compact_str::CompactString, u32>,
    /// The chain hash at each sequence that is a multiple of [`MARK_EVERY`].
    pub marks: OrdMap<u64, [u8; 32]>,
}

impl State {
    /// How many recorded events touch `entity` (corrections and retractions aside).
    pub fn touched_count(&self, entity: &EntityRef) -> u32 {
        self.log
            .touched
            .get(entity.stream().as_str())
            .copied()
            .unwrap_or(0)
    }
    /// See the field of the same name.
    pub fn kindergartens(&self) -> &OrdMap<KgId, Kindergarten> {
        &self.kindergartens
    }
    /// See the field of the same name.
    pub fn kg_names(&self) -> &OrdMap<KgName, KgId> {
        &self.kg_names
    }
    /// See the field of the same name.
    pub fn groups(&self) -> &OrdMap<GroupName, Group> {
        &self.groups
    }
    /// See the field of the same name.
    pub fn teachers(&self) -> &OrdMap<StaffNo, Teacher> {
        &self.teachers
    }
    /// See the field of the same name.
    pub fn rotations(&self) -> &OrdMap<RecordId, Rotation> {
        &self.rotations
    }
    /// See the field of the same name.
    pub fn trainings(&self) -> &OrdMap<RecordId, Training> {
        &self.trainings
    }
    /// See the field of the same name.
    pub fn activities(&self) -> &OrdMap<RecordId, Activity> {
        &self.activities
    }
    /// See the field of the same name.
    pub fn projects(&self) -> &OrdMap<RecordId, Project> {
        &self.projects
    }
    /// See the field of the same name.
    pub fn rules(&self) -> &OrdMap<i32, Vec<RulesAdoption>> {
        &self.rules
    }
    /// See the field of the same name.
    pub fn teachers_by_home(&self) -> &OrdMap<KgId, BTreeSet<StaffNo>> {
        &self.teachers_by_home
    }
    /// See the field of the same name.
    pub fn rotations_by_teacher(&self) -> &OrdMap<StaffNo, BTreeSet<RecordId>> {
        &self.rotations_by_teacher
    }
    /// See the field of the same name.
    pub fn rotations_by_host(&self) -> &OrdMap<KgId, BTreeSet<RecordId>> {
        &self.rotations_by_host
    }
    /// See the field of the same name.
    pub fn activities_by_kg(&self) -> &OrdMap<KgId, BTreeSet<RecordId>> {
        &self.activities_by_kg
    }
    /// See the field of the same name.
    pub fn trainings_by_teacher(&self) -> &OrdMap<StaffNo, Vec<u32>> {
        &self.trainings_by_teacher
    }
    /// See the field of the same name.
    pub fn training_ids(&self) -> &imbl::Vector<RecordId> {
        &self.training_ids
    }
    /// See the field of the same name.
    pub fn overrides(&self) -> &OrdMap<u64, Override> {
        &self.overrides
    }
    /// See the field of the same name.
    pub fn head(&self) -> u64 {
        self.head
    }
    /// See the field of the same name.
    pub fn kg_ids_used(&self) -> u32 {
        self.kg_ids_used
    }
    /// See the field of the same name.
    pub fn latest(&self) -> Option<Date> {
        self.latest
    }
    /// See the field of the same name.
    pub fn principals(&self) -> &OrdMap<PrincipalName, Vec<Grant>> {
        &self.principals
    }
    /// See the field of the same name.
    pub fn tokens_retired(&self) -> &BTreeSet<Sha256Hex> {
        &self.tokens_retired
    }
    /// Note a token whose grant the fold skips or replaces: it is never given again.
    pub fn retire_token(&mut self, token_sha256: &Sha256Hex) {
        self.tokens_retired.insert(token_sha256.clone());
    }
    /// The log's own bookkeeping.
    pub fn log_book(&self) -> &LogBook {
        &self.log
    }
    /// Count `event`, recorded at `seq`, in the trail of every entity it touches (called by
    /// the ledger for every event it folds or records, with the event as it stands in the
    /// log; corrections and retractions are found through [`State::overrides`] instead).
    pub fn note_recorded(&mut self, event: &Event) {
        if matches!(event, Event::EventCorrected(_) | Event::EventRetracted(_)) {
            return;
        }
        let mut key = String::new();
        for entity in event.touched() {
            key.clear();
            // (the stream id, written into one buffer: most fit a CompactString inline)
            let _ = entity.write_stream(&mut key);
            match self.log.touched.get_mut(key.as_str()) {
                Some(n) => *n += 1,
                None => {
                    self.log
                        .touched
                        .insert(compact_str::CompactString::from(key.as_str()), 1);
                }
            }
        }
    }
    /// Keep the chain hash at `seq` if it is a mark (a multiple of [`MARK_EVERY`]).
    pub fn mark_chain(&mut self, seq: u64, hash: [u8; 32]) {
        if seq > 0 && seq.is_multiple_of(MARK_EVERY) {
            self.log.marks.insert(seq, hash);
        }
    }
    /// Mark the state as folded through `seq` (a fold that skips a retracted event).
    pub fn set_head(&mut self, seq: u64) {
        self.head = seq;
    }
    /// Rebuild a state from its parts (a snapshot decoded by the ledger).
    pub fn from_parts(parts: StateParts) -> State {
        let StateParts {
            kindergartens,
            kg_names,
            groups,
            teachers,
            rotations,
            trainings,
            activities,
            projects,
            rules,
            teachers_by_home,
            rotations_by_teacher,
            rotations_by_host,
            activities_by_kg,
            trainings_by_teacher,
            training_ids,
            overrides,
            head,
            kg_ids_used,
            latest,
            log,
            principals,
            tokens_retired,
        } = parts;
        State {
            kindergartens,
            kg_names,
            groups,
            teachers,
            rotations,
            trainings,
            activities,
            projects,
            rules,
            teachers_by_home,
            rotations_by_teacher,
            rotations_by_host,
            activities_by_kg,
            trainings_by_teacher,
            training_ids,
            overrides,
            head,
            kg_ids_used,
            latest,
            log,
            principals,
            tokens_retired,
        }
    }
}

/// A training as it stood on `date`.
fn training_on(t: &Training, date: Date) -> Cut<Training> {
    if t.start > date {
        Cut::Drop
    } else if t.applied.is_none_or(|a| a <= date)
        && t.decision.as_ref().is_none_or(|d| d.on <= date)
    {
        Cut::Keep
    } else {
        let mut t = t.clone();
        t.applied = t.applied.filter(|a| *a <= date);
        t.decision = t.decision.filter(|d| d.on <= date);
        Cut::Change(t)
    }
}

/// What pruning a state to a date does to one entity.
enum Cut<V> {
    /// Nothing of it is effective after the date: shared as it is.
    Keep,
    /// It did not exist yet.
    Drop,
    /// Some of it is later: this is what stood on the date.
    Change(V),
}

/// A map pruned to a date. Most entities of a large ledger are either wholly before the
/// date or wholly after it: a map mostly kept is the old one (shared) with the few changes
/// made in place; a map mostly changed is rebuilt from what remains.
fn prune<K: Ord + Clone, V: Clone>(map: &OrdMap<K, V>, cut: impl Fn(&V) -> Cut<V>) -> OrdMap<K, V> {
    let mut edits: Vec<(K, Option<V>)> = Vec::new();
    for (k, v) in map.iter() {
        match cut(v) {
            Cut::Keep => {}
            Cut::Drop => edits.push((k.clone(), None)),
            Cut::Change(v) => edits.push((k.clone(), Some(v))),
        }
    }
    if edits.len() * 2 > map.len() {
        let mut edits = edits.into_iter().peekable();
        map.iter()
            .filter_map(|(k, v)| {
                if edits.peek().is_some_and(|(e, _)| e == k) {
                    edits.next().and_then(|(k, v)| v.map(|v| (k, v)))
                } else {
                    Some((k.clone(), v.clone()))
                }
            })
            .collect()
    } else {
        let mut out = map.clone();
        for (k, v) in edits {
            match v {
                None => {
                    out.remove(&k);
                }
                Some(v) => {
                    out.insert(k, v);
                }
            }
        }
        out
    }
}

/// The parts of a [`State`], for snapshots: what `from_parts` takes.
#[allow(missing_docs)]
pub struct StateParts {
    pub kindergartens: OrdMap<KgId, Kindergarten>,
    pub kg_names: OrdMap<KgName, KgId>,
    pub groups: OrdMap<GroupName, Group>,
    pub teachers: OrdMap<StaffNo, Teacher>,
    pub rotations: OrdMap<RecordId, Rotation>,
    pub trainings: OrdMap<RecordId, Training>,
    pub activities: OrdMap<RecordId, Activity>,
    pub projects: OrdMap<RecordId, Project>,
    pub rules: OrdMap<i32, Vec<RulesAdoption>>,
    pub teachers_by_home: OrdMap<KgId, BTreeSet<StaffNo>>,
    pub rotations_by_teacher: OrdMap<StaffNo, BTreeSet<RecordId>>,
    pub rotations_by_host: OrdMap<KgId, BTreeSet<RecordId>>,
    pub activities_by_kg: OrdMap<KgId, BTreeSet<RecordId>>,
    pub trainings_by_teacher: OrdMap<StaffNo, Vec<u32>>,
    pub training_ids: imbl::Vector<RecordId>,
    pub overrides: OrdMap<u64, Override>,
    pub head: u64,
    pub kg_ids_used: u32,
    pub latest: Option<Date>,
    pub log: LogBook,
    pub principals: OrdMap<PrincipalName, Vec<Grant>>,
    pub tokens_retired: BTreeSet<Sha256Hex>,
}

impl State {
    /// The kindergartens, their names and the groups as they stood on `date`.
    #[allow(clippy::type_complexity)]
    fn membership_on(
        &self,
        date: Date,
    ) -> (
        OrdMap<KgId, Kindergarten>,
        OrdMap<KgName, KgId>,
        OrdMap<GroupName, Group>,
    ) {
        let kindergartens: OrdMap<KgId, Kindergarten> = self
            .kindergartens
            .values()
            .filter(|k| k.registered <= date)
            .map(|k| {
                let mut k = k.clone();
                k.names = k.names.until(date);
                k.category = k.category.until(date);
                k.membership = k.membership.until(date);
                k.high_quality = k.high_quality.until(date);
                k.cooperative = k.cooperative.until(date);
                k.principal = k.principal.until(date);
                (k.id, k)
            })
            .collect();
        let kg_names = self
            .kg_names
            .iter()
            .filter(|(n, id)| {
                kindergartens
                    .get(id)
                    .is_some_and(|k| k.names.iter().any(|d| &d.value.0 == *n))
            })
            .map(|(n, id)| (n.clone(), *id))
            .collect();
        let groups = self
            .groups
            .values()
            .filter(|g| g.founded <= date)
            .map(|g| {
                let mut g = g.clone();
                g.leads = g.leads.until(date);
                g.lead_excepted = g.lead_excepted.until(date);
                g.secretariat = g
                    .secretariat
                    .iter()
                    .filter(|t| t.from <= date)
                    .map(|t| Term {
                        dismissed: t.dismissed.filter(|d| *d <= date),
                        ..t.clone()
                    })
                    .collect();
                g.documents.retain(|d| d.on <= date);
                g.experts.retain(|e| e.from <= date);
                (g.name.clone(), g)
            })
            .collect();
        (kindergartens, kg_names, groups)
    }

    /// [`State::as_of`] for a read of the groups and their members only: kindergartens,
    /// their names and the groups pruned to `date`, and every other part left out (empty:
    /// a read that strays outside them finds nothing, never a later fact). A few
    /// milliseconds at Shanghai scale, where the whole state takes tens.
    pub fn membership_as_of(&self, date: Date) -> State {
        if self.latest.is_none_or(|l| l <= date) {
            return self.clone();
        }
        let (kindergartens, kg_names, groups) = self.membership_on(date);
        State {
            kindergartens,
            kg_names,
            groups,
            head: self.head,
            kg_ids_used: self.kg_ids_used,
            latest: Some(date),
            ..State::default()
        }
    }

    /// The world as it stood on `date` (strict valid time, DOMAIN.md "How dates read"): only
    /// what is effective on or before `date` — an event's one effective date is its `on`,
    /// `start` or `from`; a rotation's end counts from its last day, an extension from the day
    /// it was decided (never before the rotation's start); attendance from its training's
    /// start. Every read on `date` is a function of this state alone, so recording anything
    /// effective later cannot change it. (Transaction time — `known_at` — is the prefix of the
    /// log folded into `self`.)
    ///
    /// For reading only: its per-entity indexes are kept whole and may name entities that
    /// are not in it yet, so nothing may be decided or checked against it.
    pub fn as_of(&self, date: Date) -> State {
        if self.latest.is_none_or(|l| l <= date) {
            // nothing folded is effective after `date`: the state is already as of then
            return self.clone();
        }
        // The trainings (the largest map after attendance) are pruned on another core while
        // this one does the rest.
        std::thread::scope(|scope| {
            let trainings_on = || prune(&self.trainings, |t| training_on(t, date));
            // (a small state is not worth a thread; one that cannot be had is not an error)
            let trainings = (self.trainings.len() > 4096)
                .then(|| {
                    std::thread::Builder::new()
                        .spawn_scoped(scope, trainings_on)
                        .ok()
                })
                .flatten();
            let (kindergartens, kg_names, groups) = self.membership_on(date);
            let teachers = prune(&self.teachers, |t| {
                if t.registered > date {
                    Cut::Drop
                } else if t.home.iter().all(|d| d.on <= date)
                    && t.titles.iter().all(|d| d.on <= date)
                    && t.left.is_none_or(|l| l <= date)
                {
                    Cut::Keep
                } else {
                    let mut t = t.clone();
                    t.home = t.home.until(date);
                    t.titles.retain(|d| d.on <= date);
                    t.left = t.left.filter(|l| *l <= date);
                    Cut::Change(t)
                }
            });
            let rotations = prune(&self.rotations, |r| {
                let start = r.start;
                if start > date {
                    Cut::Drop
                } else if r.extensions.iter().all(|x| x.on.max(start) <= date)
                    && r.outcome_on(date) == r.outcome.as_ref()
                {
                    // every plan and the outcome are in force by then: as recorded
                    Cut::Keep
                } else {
                    let mut r = r.clone();
                    let (planned_end, exception) = r.plan_on(date);
                    let exception = exception.cloned();
                    r.planned_end = planned_end;
                    r.exception = exception;
                    r.extensions.0.retain(|x| x.on.max(start) <= date);
                    r.outcome = r.outcome_on(date).cloned();
                    Cut::Change(r)
                }
            });
            let trainings = match trainings {
                Some(pruning) => pruning
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
                None => trainings_on(),
            };
            let activities = prune(&self.activities, |a| {
                if a.on > date { Cut::Drop } else { Cut::Keep }
            });
            let projects = prune(&self.projects, |p| {
                if p.proposed > date {
                    Cut::Drop
                } else if p.approved.as_ref().is_none_or(|(on, _)| *on <= date)
                    && p.completed.as_ref().is_none_or(|(on, _, _)| *on <= date)
                    && p.cancelled.as_ref().is_none_or(|(on, _)| *on <= date)
                {
                    Cut::Keep
                } else {
                    let mut p = p.clone();
                    p.approved = p.approved.filter(|(on, _)| *on <= date);
                    p.completed = p.completed.filter(|(on, _, _)| *on <= date);
                    p.cancelled = p.cancelled.filter(|(on, _)| *on <= date);
                    Cut::Change(p)
                }
            });
            let rules = self
                .rules
                .iter()
                .filter_map(|(y, v)| {
                    let kept: Vec<RulesAdoption> =
                        v.iter().filter(|a| a.on <= date).cloned().collect();
                    (!kept.is_empty()).then_some((*y, kept))
                })
                .collect();
            // The indexes are kept whole: in a pruned state they may name teachers, rotations,
            // activities and trainings that are not there yet, and every reader goes through the
            // entity maps above (pruning them cost 1.5 s at Shanghai scale: 4.2 million lookups).
            State {
                kindergartens,
                kg_names,
                groups,
                teachers,
                rotations,
                trainings,
                activities,
                projects,
                rules,
                teachers_by_home: self.teachers_by_home.clone(),
                rotations_by_teacher: self.rotations_by_teacher.clone(),
                rotations_by_host: self.rotations_by_host.clone(),
                activities_by_kg: self.activities_by_kg.clone(),
                trainings_by_teacher: self.trainings_by_teacher.clone(),
                training_ids: self.training_ids.clone(),
                overrides: self.overrides.clone(),
                head: self.head,
                kg_ids_used: self.kg_ids_used,
                latest: Some(date),
                log: self.log.clone(),
                principals: self
                    .principals
                    .iter()
                    .filter_map(|(name, grants)| {
                        let kept: Vec<Grant> = grants
                            .iter()
                            .filter(|g| g.from <= date)
                            .map(|g| Grant {
                                until: g.until.filter(|u| *u <= date),
                                ..g.clone()
                            })
                            .collect();
                        (!kept.is_empty()).then(|| (name.clone(), kept))
                    })
                    .collect(),
                tokens_retired: self.tokens_retired.clone(),
            }
        })
    }

    /// An event's one valid time (DOMAIN.md "How dates read"): its `on`, `start` or `from`;
    /// a rotation's end, its last day; an extension, the day it was decided but never before
    /// its rotation's start; attendance, its training's start. None for corrections and
    /// retractions, which speak of other events, and for references to something unknown.
    pub fn valid_time(&self, event: &Event) -> Option<Date> {
        use Event as E;
        Some(match event {
            E::KindergartenRegistered(e) => e.on,
            E::KindergartenRenamed(e) => e.on,
            E::GroupFounded(e) => e.on,
            E::KindergartenJoined(e) => e.on,
            E::KindergartenLeft(e) => e.on,
            E::KindergartenTransferred(e) => e.on,
            E::LeadChanged(e) => e.on,
            E::KindergartenRegraded(e) => e.on,
            E::HighQualityDesignated(e) => e.on,
            E::CooperativePrincipalDesignated(e) => e.on,
            E::HighQualityRevoked(e) => e.on,
            E::PrincipalAppointed(e) => e.on,
            E::PrincipalEnded(e) => e.on,
            E::SecretariatAppointed(e) => e.from,
            E::SecretariatDismissed(e) => e.on,
            E::DocumentAdopted(e) => e.on,
            E::ExpertAssigned(e) => e.from,
            E::TeacherRegistered(e) => e.on,
            E::HomeChanged(e) => e.on,
            E::TitleAwarded(e) => e.on,
            E::ServiceLeft(e) => e.on,
            E::RotationStarted(e) => e.start,
            E::RotationExtended(e) => e.on.max(self.rotations.get(&e.rotation)?.start),
            E::RotationEnded(e) => e.end,
            E::RotationCancelled(e) => e.on,
            E::TrainingHeld(e) => e.start,
            E::AttendanceRecorded(e) => self.trainings.get(&e.training)?.start,
            E::RecognitionApplied(e) => e.on,
            E::RecognitionDecided(e) => e.on,
            E::ActivityHeld(e) => e.on,
            E::ProjectProposed(e) => e.on,
            E::ProjectApproved(e) => e.on,
            E::ProjectCompleted(e) => e.on,
            E::ProjectCancelled(e) => e.on,
            E::PointsRulesAdopted(e) => e.on,
            E::AccessGranted(e) => e.on,
            E::AccessRevoked(e) => e.on,
            E::EventCorrected(_) | E::EventRetracted(_) => return None,
        })
    }

    /// The next free kindergarten id: never one given before, even to a registration that
    /// was retracted since.
    pub fn next_kg_id(&self) -> KgId {
        let largest = self
            .kindergartens
            .keys()
            .next_back()
            .map_or(0, |k| k.0)
            .max(self.kg_ids_used);
        KgId(largest + 1)
    }

    /// Note an id given by a registration the fold skips (retracted): it stays used.
    pub fn reserve_kg_id(&mut self, id: KgId) {
        self.kg_ids_used = self.kg_ids_used.max(id.0);
    }

    /// Apply one event. Never fails: an event referring to something missing changes
    /// nothing, and the rule checks (which run before an event is accepted) report it.
    pub fn apply(&mut self, event: &Event, origin: Origin) {
        let seq = origin.seq;
        self.head = self.head.max(seq);
        if let Some(at) = self.valid_time(event) {
            self.latest = Some(self.latest.map_or(at, |l| l.max(at)));
        }
        // each part of the fold lives beside the state it builds (state/*.rs)
        let _ = self.fold_membership(event, origin)
            || self.fold_governance(event, origin)
            || self.fold_teachers(event, origin)
            || self.fold_rotations(event, origin)
            || self.fold_trainings(event, origin)
            || self.fold_projects(event, origin)
            || self.fold_access(event, origin);
    }

    fn member_step(&mut self, k: KgId, on: Date, seq: u64, step: Membership) {
        if let Some(kg) = self.kindergartens.get_mut(&k) {
            kg.membership.insert(on, seq, step);
        }
    }

    /// The trainings a teacher attended, in recording order.
    pub fn trainings_of(&self, staff_no: &StaffNo) -> impl Iterator<Item = &Training> {
        self.trainings_by_teacher
            .get(staff_no)
            .into_iter()
            .flatten()
            .filter_map(|o| self.training_ids.get(*o as usize))
            .filter_map(|id| self.trainings.get(id))
    }

    /// Look a kindergarten up by any name it has had.
    pub fn kg_by_name(&self, name: &str) -> Option<&Kindergarten> {
        let id = KgName::new(name)
            .ok()
            .and_then(|n| self.kg_names.get(&n).copied())?;
        self.kindergartens.get(&id)
    }

    /// The name of a kindergarten id (latest name), or its id if unknown.
    pub fn kg_label(&self, id: KgId) -> String {
        self.kindergartens
            .get(&id)
            .map(|k| k.current_name().to_string())
            .unwrap_or_else(|| id.to_string())
    }

    /// Members of a group on a date, ids in order.
    pub fn members_on(&self, group: &GroupName, date: Date) -> Vec<KgId> {
        self.kindergartens
            .values()
            .filter(|k| k.group_on(date) == Some(group))
            .map(|k| k.id)
            .collect()
    }

    /// The effective override of `target` as known at sequence `cut`: the latest correction
    /// or retraction recorded at or before `cut`.
    pub fn override_of(&self, target: u64, cut: u64) -> Option<(u64, &Override)> {
        self.overrides
            .range(..=cut)
            .rev()
            .find(|(_, o)| o.target == target)
            .map(|(s, o)| (*s, o))
    }
}
