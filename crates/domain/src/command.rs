//! Commands: what a clerk or a script asks the ledger to record (DOMAIN.md names and fields).

use serde::{Deserialize, Serialize};

use crate::values::*;

/// Who records a command, and why (the `meta` object of a JSON line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Who records it.
    #[serde(default)]
    pub actor: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
    /// The document it rests on.
    #[serde(default)]
    pub source: Option<String>,
}

/// An approved exception to the two-year rotation limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exception {
    /// Who approved it.
    pub approved_by: Text,
    /// The approving document.
    pub reference: Text,
    /// Why the rotation may last longer.
    pub reason: Text,
}

/// The event a correction or retraction points at: a sequence number or an event id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// A global sequence number.
    Seq(u64),
    /// An event id (UUID).
    EventId(uuid::Uuid),
}

macro_rules! commands {
    ($( $(#[$doc:meta])* $variant:ident $code:literal { $( $(#[$fattr:meta])* $field:ident : $ty:ty ),* $(,)? } )*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $variant { $( $(#[$fattr])* pub $field: $ty ),* }
        )*

        /// Every command the ledger accepts.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "command", rename_all = "snake_case")]
        pub enum Command { $( $(#[$doc])* $variant($variant) ),* }

        impl Command {
            /// The command's name in JSON (`start_rotation`).
            pub fn name(&self) -> &'static str { match self { $(Command::$variant(_) => $code),* } }
            /// Every command name.
            pub const NAMES: &'static [&'static str] = &[$($code),*];

            /// Deserialize the fields of the command `name` (the object without its `command`
            /// key), keeping the path of a bad field for the error message.
            fn from_fields(
                name: &str,
                fields: serde_json::Value,
            ) -> Option<Result<Command, serde_path_to_error::Error<serde_json::Error>>> {
                match name {
                    $($code => Some(serde_path_to_error::deserialize::<_, $variant>(fields).map(Command::$variant)),)*
                    _ => None,
                }
            }
        }
    };
}

commands! {
    /// Found a group with its lead kindergarten as first member.
    FoundGroup "found_group" { group: GroupName, kind: GroupKind, lead: KgName, on: Date,
        /// An approved exception to lead eligibility (1+X: 市示范园 or 合作办园主体园).
        #[serde(default)] exception: Option<Exception> }
    /// Register a kindergarten.
    RegisterKindergarten "register_kindergarten" {
        kindergarten: KgName,
        #[serde(default)] full_name: Option<Text>,
        category: Category, ownership: Ownership,
        #[serde(default)] provisional: bool,
        /// A 合作办园主体园 (cooperative principal) from registration.
        #[serde(default)] cooperative_principal: bool,
        on: Date
    }
    /// A kindergarten designated a 合作办园主体园 (cooperative principal) from `on`.
    DesignateCooperativePrincipal "designate_cooperative_principal" { kindergarten: KgName, on: Date }
    /// Rename a kindergarten (e.g. a provisional name made final); identity is kept.
    RenameKindergarten "rename_kindergarten" {
        kindergarten: KgName, new_name: KgName,
        /// Whether the new name is itself provisional (ours; default false).
        #[serde(default)] provisional: bool,
        on: Date
    }
    /// A kindergarten joins a group.
    JoinGroup "join_group" { kindergarten: KgName, group: GroupName, on: Date }
    /// A kindergarten leaves a group.
    LeaveGroup "leave_group" { kindergarten: KgName, group: GroupName, on: Date }
    /// Leave one group and join another on the same day, atomically.
    TransferKindergarten "transfer_kindergarten" { kindergarten: KgName, to_group: GroupName, on: Date }
    /// A member becomes the group's lead.
    ChangeLead "change_lead" { group: GroupName, lead: KgName, on: Date,
        /// An approved exception to lead eligibility.
        #[serde(default)] exception: Option<Exception> }
    /// A kindergarten's category changes.
    RegradeKindergarten "regrade_kindergarten" { kindergarten: KgName, category: Category, on: Date }
    /// A kindergarten is designated high-quality (高质量幼儿园).
    DesignateHighQuality "designate_high_quality" { kindergarten: KgName, on: Date }
    /// A high-quality designation is revoked.
    RevokeHighQuality "revoke_high_quality" { kindergarten: KgName, on: Date }
    /// A principal is appointed (replacing any current one).
    AppointPrincipal "appoint_principal" { kindergarten: KgName, staff_no: StaffNo, on: Date }
    /// A principal's appointment ends.
    EndPrincipal "end_principal" { kindergarten: KgName, on: Date }
    /// Secretariat staff appointed for a term (聘任制).
    AppointSecretariat "appoint_secretariat" { group: GroupName, staff_no: StaffNo, role: Text, from: Date, to: Date }
    /// Secretariat staff dismissed before the term's end.
    DismissSecretariat "dismiss_secretariat" { group: GroupName, staff_no: StaffNo, on: Date }
    /// A governance document adopted.
    AdoptDocument "adopt_document" {
        group: GroupName, doc_kind: DocKind, title: Text,
        #[serde(default)] period: Option<Text>,
        #[serde(default)] sha256: Option<Sha256Hex>,
        on: Date
    }
    /// A resident expert (驻点专家) assigned for a term.
    AssignExpert "assign_expert" { group: GroupName, expert: Text, affiliation: Text, from: Date, to: Date }
    /// A teacher registered with a home kindergarten (编制所在园).
    RegisterTeacher "register_teacher" { staff_no: StaffNo, name: Text, home: KgName, on: Date }
    /// A change of establishment; not a rotation.
    ChangeHome "change_home" { staff_no: StaffNo, home: KgName, on: Date }
    /// A title awarded.
    AwardTitle "award_title" { staff_no: StaffNo, title: Title, on: Date }
    /// A teacher leaves service.
    LeaveService "leave_service" { staff_no: StaffNo, on: Date }
    /// A rotation (柔性流动) begins.
    StartRotation "start_rotation" {
        rotation: RecordId, staff_no: StaffNo, host: KgName, mode: RotationMode,
        start: Date, planned_end: Date,
        #[serde(default)] exception: Option<Exception>
    }
    /// A rotation's planned end moves.
    ExtendRotation "extend_rotation" {
        rotation: RecordId, planned_end: Date,
        /// The day the extension was decided (its valid time).
        on: Date,
        #[serde(default)] exception: Option<Exception>
    }
    /// A rotation ends with the host's assessment.
    EndRotation "end_rotation" { rotation: RecordId, end: Date, assessment: Assessment }
    /// A rotation is cancelled.
    CancelRotation "cancel_rotation" { rotation: RecordId, on: Date, reason: Text }
    /// A training is held.
    HoldTraining "hold_training" {
        training: RecordId, title: Text, tier: TrainingTier,
        /// The group (tier `group`), the kindergarten (tier `kindergarten`) or the body that ran it.
        organizer: Text,
        start: Date, end: Date, hours: Hours
    }
    /// Teachers attended a training.
    RecordAttendance "record_attendance" { training: RecordId, staff_nos: Vec<StaffNo> }
    /// A group applies for district-level recognition of its training.
    ApplyRecognition "apply_recognition" { training: RecordId, on: Date }
    /// The bureau decides on a recognition application.
    DecideRecognition "decide_recognition" { training: RecordId, granted: bool, on: Date, reviewer: Text }
    /// An activity is held.
    HoldActivity "hold_activity" {
        activity: RecordId, group: GroupName, kind: ActivityKind, title: Text, on: Date,
        kindergartens: Vec<KgName>
    }
    /// A project is proposed.
    ProposeProject "propose_project" {
        project: RecordId, group: GroupName, kind: ProjectKind, title: Text, year: i32,
        /// The day it was proposed (its valid time).
        on: Date,
        #[serde(default)] members: Vec<StaffNo>
    }
    /// A project is approved with a budget.
    ApproveProject "approve_project" { project: RecordId, on: Date, budget_fen: Fen }
    /// A project is completed and rated.
    CompleteProject "complete_project" { project: RecordId, on: Date, rating: Rating }
    /// A project is cancelled.
    CancelProject "cancel_project" { project: RecordId, on: Date, reason: Text }
    /// A year's points rules (TOML text) adopted.
    AdoptPointsRules "adopt_points_rules" { year: i32, rules: String, on: Date }
    /// Give a principal a role from `on`, with the SHA-256 (hex) of its bearer token — the
    /// token itself is never recorded. A recorder may be limited to some groups.
    GrantAccess "grant_access" { principal: PrincipalName, role: Role,
        #[serde(default)] groups: Vec<GroupName>, token_sha256: Sha256Hex, on: Date }
    /// End a principal's access from `on`: its token stops working.
    RevokeAccess "revoke_access" { principal: PrincipalName, on: Date }
    /// Correct an earlier event: the history reads as if the replacement stood in its place.
    CorrectEvent "correct_event" { target: Target, replacement: Box<Command>, reason: Reason }
    /// Retract an earlier event: the history reads as if it had never been recorded.
    RetractEvent "retract_event" { target: Target, reason: Reason }
}

/// Longest `meta.actor`, in characters.
pub const MAX_ACTOR_CHARS: usize = 64;
/// Longest `meta.reason`, in characters.
pub const MAX_REASON_CHARS: usize = 2000;
/// Longest `meta.source`, in characters.
pub const MAX_SOURCE_CHARS: usize = 200;
/// Most groups one recorder may be limited to (the district has 7; Shanghai about 110).
pub const MAX_GRANT_GROUPS: usize = 200;
/// Most staff numbers in one `record_attendance`.
pub const MAX_ATTENDEES: usize = 10_000;
/// Most kindergartens named by one activity.
pub const MAX_ACTIVITY_KINDERGARTENS: usize = 500;
/// Most members named by one project.
pub const MAX_PROJECT_MEMBERS: usize = 1_000;
/// Longest points rules text, in bytes.
pub const MAX_RULES_BYTES: usize = 64 * 1024;
/// Longest command line (one JSON object) `submit` reads, in bytes.
pub const MAX_COMMAND_BYTES: usize = 1 << 20;

impl Meta {
    /// Check every metadata field against its documented limit; the error names the field.
    pub fn check(&self) -> Result<(), String> {
        let fields = [
            ("meta.actor", &self.actor, MAX_ACTOR_CHARS, false),
            ("meta.reason", &self.reason, MAX_REASON_CHARS, true),
            ("meta.source", &self.source, MAX_SOURCE_CHARS, false),
        ];
        for (field, value, max, multiline) in fields {
            let Some(v) = value else { continue };
            let n = v.chars().count();
            if n > max {
                return Err(format!(
                    "field {field}: {} is {n} characters; at most {max} are allowed",
                    crate::values::Quoted(v)
                ));
            }
            if v.chars()
                .any(|c| c.is_control() && !(multiline && (c == '\n' || c == '\t')))
            {
                return Err(format!(
                    "field {field}: {} must not contain control characters",
                    crate::values::Quoted(v)
                ));
            }
            crate::values::refuse_hidden(&format!("field {field}:"), v, multiline)?;
        }
        Ok(())
    }
}

impl Command {
    /// Whether it changes who may do what — access itself, or a correction or retraction,
    /// which may be aimed at an access event: only an admin sends these through the server,
    /// and nothing is grouped after them (the next batch's token is checked against them).
    pub fn changes_access(&self) -> bool {
        matches!(
            self,
            Command::GrantAccess(_)
                | Command::RevokeAccess(_)
                | Command::CorrectEvent(_)
                | Command::RetractEvent(_)
        )
    }

    /// Whether it brings a token's hash of its own (a grant, or a correction whose
    /// replacement is one): through the server tokens are minted, never chosen.
    pub fn brings_token_hash(&self) -> bool {
        match self {
            Command::GrantAccess(_) => true,
            Command::CorrectEvent(c) => c.replacement.brings_token_hash(),
            _ => false,
        }
    }

    /// Check the lengths of a command's lists and long texts; the error names the field.
    pub fn check_sizes(&self) -> Result<(), String> {
        let over = |field: &str, n: usize, max: usize, unit: &str| {
            Err(format!(
                "field {field}: {n} {unit}; at most {max} are allowed"
            ))
        };
        match self {
            Command::RecordAttendance(c) if c.staff_nos.len() > MAX_ATTENDEES => over(
                "staff_nos",
                c.staff_nos.len(),
                MAX_ATTENDEES,
                "staff numbers",
            ),
            Command::HoldActivity(c) if c.kindergartens.len() > MAX_ACTIVITY_KINDERGARTENS => over(
                "kindergartens",
                c.kindergartens.len(),
                MAX_ACTIVITY_KINDERGARTENS,
                "kindergartens",
            ),
            Command::ProposeProject(c) if c.members.len() > MAX_PROJECT_MEMBERS => {
                over("members", c.members.len(), MAX_PROJECT_MEMBERS, "members")
            }
            Command::GrantAccess(c) if c.groups.len() > MAX_GRANT_GROUPS => {
                over("groups", c.groups.len(), MAX_GRANT_GROUPS, "groups")
            }
            Command::AdoptPointsRules(c) if c.rules.len() > MAX_RULES_BYTES => {
                over("rules", c.rules.len(), MAX_RULES_BYTES, "bytes")
            }
            Command::CorrectEvent(c) => c
                .replacement
                .check_sizes()
                .map_err(|e| format!("in replacement: {e}")),
            _ => Ok(()),
        }
    }
}

/// Shorten an error message that would quote a huge input back (serde's messages quote
/// the whole offending value).
fn shorten(message: String) -> String {
    const MAX: usize = 400;
    if message.chars().count() <= MAX {
        return message;
    }
    let head: String = message.chars().take(MAX).collect();
    format!("{head}… (message shortened)")
}

/// One JSON line of `submit`: a command and its metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Submission {
    /// The command.
    pub command: Command,
    /// Its metadata.
    pub meta: Meta,
}

/// Parse one JSON command line. The error names the field path and the rule.
pub fn parse_submission(line: &str) -> Result<Submission, String> {
    if line.len() > MAX_COMMAND_BYTES {
        return Err(format!(
            "a command is {} bytes; at most {MAX_COMMAND_BYTES} are allowed",
            line.len()
        ));
    }
    parse_submission_unbounded(line).map_err(shorten)
}

fn parse_submission_unbounded(line: &str) -> Result<Submission, String> {
    // (a JSON object read into a map keeps the last of two equal keys: which one a reader
    // takes is not defined, so two are refused)
    serde_json::from_str::<Unique>(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let mut value: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("not valid JSON: {e}"))?;
    let obj = value
        .as_object_mut()
        .ok_or("a command must be a JSON object")?;
    let meta = match obj.remove("meta") {
        None => Meta::default(),
        Some(m) => serde_path_to_error::deserialize(m)
            .map_err(|e| format!("field meta.{}: {}", e.path(), e.inner()))?,
    };
    let name = match obj.remove("command") {
        None => return Err("field command is missing".into()),
        Some(serde_json::Value::String(name)) => name,
        Some(other) => return Err(format!("field command: {other} is not a command name")),
    };
    meta.check()?;
    let command = command_from_fields(&name, value)?;
    command.check_sizes()?;
    Ok(Submission { command, meta })
}

fn command_from_fields(name: &str, mut fields: serde_json::Value) -> Result<Command, String> {
    // A correction's replacement is itself a command: parse it the same way, so its errors
    // name their field too (`replacement.start`).
    let replacement = if name == "correct_event" {
        let obj = fields
            .as_object_mut()
            .ok_or("a command must be a JSON object")?;
        let mut rep = obj
            .remove("replacement")
            .ok_or("field replacement is missing")?;
        let rep_obj = rep
            .as_object_mut()
            .ok_or("field replacement must be a JSON object")?;
        let rep_name = match rep_obj.remove("command") {
            Some(serde_json::Value::String(n)) => n,
            _ => return Err("field replacement.command is missing".into()),
        };
        let cmd =
            command_from_fields(&rep_name, rep).map_err(|e| format!("in replacement: {e}"))?;
        obj.insert(
            "replacement".into(),
            serde_json::json!({"command": "retract_event", "target": 0, "reason": "placeholder"}),
        );
        Some(cmd)
    } else {
        None
    };
    let parsed = Command::from_fields(name, fields).ok_or_else(|| {
        format!(
            "field command: {} is not a command; the closest are: {}",
            crate::values::Quoted(name),
            crate::suggest::closest(name, Command::NAMES.iter().copied()).join(", ")
        )
    })?;
    let mut command = parsed.map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            e.inner().to_string()
        } else {
            format!("field {path}: {}", e.inner())
        }
    })?;
    if let (Command::CorrectEvent(c), Some(rep)) = (&mut command, replacement) {
        *c.replacement = rep;
    }
    Ok(command)
}

/// Any JSON value whose objects, at every depth, name each key once.
struct Unique;

impl<'de> Deserialize<'de> for Unique {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Unique, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Unique;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, _: bool) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_i64<E>(self, _: i64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_u64<E>(self, _: u64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_f64<E>(self, _: f64) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_str<E>(self, _: &str) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_unit<E>(self) -> Result<Unique, E> {
                Ok(Unique)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Unique, A::Error> {
                while seq.next_element::<Unique>()?.is_some() {}
                Ok(Unique)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Unique, A::Error> {
                let mut seen = std::collections::HashSet::new();
                while let Some(key) = map.next_key::<String>()? {
                    if !seen.insert(key.clone()) {
                        return Err(serde::de::Error::custom(format!(
                            "the key {key:?} appears twice in one object"
                        )));
                    }
                    map.next_value::<Unique>()?;
                }
                Ok(Unique)
            }
        }
        d.deserialize_any(Visit)
    }
}
