//! The domain's one error type: a variant per rule, each message a sentence for a clerk.

use thiserror::Error;

use crate::values::Date;

fn list(v: &[String]) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!("; did you mean: {}?", v.join(", "))
    }
}

/// A command refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    /// A field over its documented size limit (the message names the field and the limit).
    #[error("{0}")]
    OverLimit(String),
    /// A field's value breaks its rule.
    #[error("field {field}: {rule}")]
    InvalidField {
        /// The field.
        field: String,
        /// The rule it breaks, with the value.
        rule: String,
    },
    /// A name or id that the ledger does not know.
    #[error("there is no {kind} {name:?}{}", list(.suggestions))]
    Unknown {
        /// group, kindergarten, teacher, rotation, training, activity, project.
        kind: &'static str,
        /// What was asked for.
        name: String,
        /// The closest known names.
        suggestions: Vec<String>,
    },
    /// A kindergarten an event names by the ledger's own number, which no event before it
    /// registered (only a replayed, forged or damaged history has one).
    #[error("the event names the ledger's kindergarten no. {0}, which no earlier event registered")]
    UnknownKindergartenNo(u32),
    /// A name or id already in use.
    #[error("{kind} {name:?} already exists; names and ids are never reused")]
    AlreadyExists {
        /// What kind of thing.
        kind: &'static str,
        /// The name or id.
        name: String,
    },
    /// Referred to before it existed or after it ended.
    #[error("{what} is referred to on {on}, but {why}")]
    OutsideLifetime {
        /// The thing referred to.
        what: String,
        /// The date of the reference.
        on: Date,
        /// e.g. "was registered on 2023-09-20".
        why: String,
    },
    /// A kindergarten is already in a group on that date.
    #[error(
        "kindergarten {kindergarten} is already in {group} on {on}; a kindergarten is in at most one group at a time (leave or transfer first)"
    )]
    AlreadyInGroup {
        /// Kindergarten.
        kindergarten: String,
        /// Its group on that date.
        group: String,
        /// The date.
        on: Date,
    },
    /// A kindergarten is not in the group the command assumes.
    #[error("kindergarten {kindergarten} is not a member of {group} on {on}")]
    NotInGroup {
        /// Kindergarten.
        kindergarten: String,
        /// The group.
        group: String,
        /// The date.
        on: Date,
    },
    /// The membership history would not read as join → leave/transfer → join ….
    #[error(
        "kindergarten {kindergarten}'s group history would no longer hold together on {on}: {detail}"
    )]
    MembershipHistory {
        /// Kindergarten.
        kindergarten: String,
        /// Where it breaks.
        on: Date,
        /// How.
        detail: String,
    },
    /// The lead would stop being a member of its group.
    #[error(
        "kindergarten {kindergarten} leads {group} on {on} and cannot leave it; record a change_lead first"
    )]
    LeadCannotLeave {
        /// The lead.
        kindergarten: String,
        /// Its group.
        group: String,
        /// The date.
        on: Date,
    },
    /// A lead named after the roster must be eligible (1+X), or carry an exception.
    #[error(
        "kindergarten {kindergarten} cannot lead a group on {on}: a lead must be a municipal demonstration kindergarten (市示范园) or a cooperative principal (合作办园主体园) that day, and it is {category}; designate it (designate_cooperative_principal) or give the command an exception {{approved_by, reference, reason}} (a correction of a roster or v0.1 founding gives its exception again)"
    )]
    LeadNotEligible {
        /// The proposed lead.
        kindergarten: String,
        /// Its category that day.
        category: &'static str,
        /// The date.
        on: Date,
    },
    /// A new lead must be a member throughout its lead.
    #[error("kindergarten {kindergarten} is not a member of {group} on {on}, so it cannot lead it")]
    LeadNotMember {
        /// The proposed lead.
        kindergarten: String,
        /// The group.
        group: String,
        /// The date.
        on: Date,
    },
    /// Home and host are the same kindergarten.
    #[error("rotation {rotation}: the host {host} is the teacher's own home kindergarten on {on}")]
    RotationSameKindergarten {
        /// Rotation id.
        rotation: String,
        /// Host.
        host: String,
        /// Start.
        on: Date,
    },
    /// Home and host are not in one group on the start date.
    #[error(
        "rotation {rotation}: home {home} ({home_group}) and host {host} ({host_group}) are not in the same group on {on}; rotations stay within one group"
    )]
    RotationOutsideGroup {
        /// Rotation id.
        rotation: String,
        /// Home kindergarten.
        home: String,
        /// Its group or "no group".
        home_group: String,
        /// Host kindergarten.
        host: String,
        /// Its group or "no group".
        host_group: String,
        /// Start.
        on: Date,
    },
    /// More than two years without an exception.
    #[error(
        "rotation {rotation} would last {length} ({start} to {planned_end}); the plan allows at most two years (last day {last_allowed}) unless an exception is recorded"
    )]
    RotationTooLong {
        /// Rotation id.
        rotation: String,
        /// e.g. "24 months and 1 day".
        length: String,
        /// Start.
        start: Date,
        /// Planned last day.
        planned_end: Date,
        /// Last day allowed without exception.
        last_allowed: Date,
    },
    /// Two rotations of one teacher overlap.
    #[error(
        "teacher {staff_no} would be on rotations {rotation} and {other} at once (overlap from {from}); a teacher has one rotation at a time"
    )]
    RotationOverlap {
        /// Teacher.
        staff_no: String,
        /// This rotation.
        rotation: String,
        /// The other.
        other: String,
        /// First shared day.
        from: Date,
    },
    /// A rotation is not in a state that allows this.
    #[error("rotation {rotation} is {state}, so it cannot be {action}")]
    RotationState {
        /// Rotation id.
        rotation: String,
        /// Its state.
        state: String,
        /// What was attempted.
        action: &'static str,
    },
    /// Dates in the wrong order.
    #[error("{field} {value} must not be before {other_field} {other}")]
    DateOrder {
        /// The later field.
        field: &'static str,
        /// Its value.
        value: Date,
        /// The earlier field.
        other_field: &'static str,
        /// Its value.
        other: Date,
    },
    /// A designation state machine broken (designate twice, revoke when not designated).
    #[error("kindergarten {kindergarten}: {detail} on {on}")]
    HighQuality {
        /// Kindergarten.
        kindergarten: String,
        /// What is wrong.
        detail: &'static str,
        /// The date.
        on: Date,
    },
    /// No principal to end.
    #[error("kindergarten {kindergarten} has no principal on {on}")]
    NoPrincipal {
        /// Kindergarten.
        kindergarten: String,
        /// The date.
        on: Date,
    },
    /// No secretariat term to dismiss.
    #[error("{staff_no} holds no secretariat term in {group} on {on}")]
    NoSecretariatTerm {
        /// Staff.
        staff_no: String,
        /// Group.
        group: String,
        /// The date.
        on: Date,
    },
    /// Access: who may act through the server.
    #[error("access of {principal}: {detail}")]
    Access {
        /// The principal.
        principal: String,
        /// What is wrong.
        detail: String,
    },
    /// A recorder limited to groups recording beyond them (SERVER.md "Who may do what").
    #[error(
        "{principal} records only for {groups}: {detail}; the bureau (an unscoped recorder or an admin) records it"
    )]
    OutOfScope {
        /// The principal.
        principal: String,
        /// Its groups, for people ("集团甲, 集团乙").
        groups: String,
        /// What lies beyond them.
        detail: String,
    },
    /// Recognition rules.
    #[error("training {training}: {detail}")]
    Recognition {
        /// Training id.
        training: String,
        /// What is wrong.
        detail: String,
    },
    /// The organizer does not fit the tier.
    #[error("training {training}: {detail}")]
    Organizer {
        /// Training id.
        training: String,
        /// What is wrong.
        detail: String,
    },
    /// An activity lists a kindergarten outside its group.
    #[error("activity {activity}: kindergarten {kindergarten} is not a member of {group} on {on}")]
    ActivityOutsideGroup {
        /// Activity id.
        activity: String,
        /// Kindergarten.
        kindergarten: String,
        /// Group.
        group: String,
        /// Date.
        on: Date,
    },
    /// A project is not in a state that allows this.
    #[error("project {project} is {state}, so it cannot be {action}")]
    ProjectState {
        /// Project id.
        project: String,
        /// Its state.
        state: &'static str,
        /// What was attempted.
        action: &'static str,
    },
    /// A points rule set that does not check out.
    #[error("points rules, line {line}: {reason}")]
    Rules {
        /// 1-based line in the TOML text (0 when not known).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A correction or retraction target that cannot be corrected.
    #[error("cannot correct or retract sequence {target}: {reason}")]
    CorrectionTarget {
        /// The target sequence.
        target: u64,
        /// Why.
        reason: String,
    },
    /// A correction that would make the history break a rule.
    #[error(
        "the correction of sequence {target} is refused: with it, the event at sequence {at_seq} would break a rule: {broken}"
    )]
    CorrectionBreaksHistory {
        /// The target.
        target: u64,
        /// Where the replayed history fails.
        at_seq: u64,
        /// The rule it breaks, in words.
        broken: String,
    },
    /// A stored event that cannot be decoded.
    #[error("event at sequence {seq} cannot be read: {reason}")]
    Undecodable {
        /// Sequence.
        seq: u64,
        /// Why.
        reason: String,
    },
}

impl DomainError {
    /// An invalid field.
    pub fn field(field: impl Into<String>, rule: impl Into<String>) -> DomainError {
        DomainError::InvalidField {
            field: field.into(),
            rule: rule.into(),
        }
    }
}
