//! `eduledger <noun> <verb> --flags`: every command of DOMAIN.md, for people.
//!
//! Flags are the command's JSON fields in kebab-case (`--planned-end`), plus the short
//! aliases CLI.md uses (`--id`, `--staff`). The flags become the same JSON a script would
//! submit, so people and scripts go through one parser and one set of rules.

use serde_json::{Map, Value};

/// How a flag's text becomes JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A string.
    Str,
    /// A whole number.
    Int,
    /// A number (hours).
    Num,
    /// `true`/`false` (a bare flag means true).
    Bool,
    /// A list, separated by `,` or `、`.
    List,
}

/// One flag of a write command.
pub struct Flag {
    /// The JSON field.
    pub field: &'static str,
    /// How to read its value.
    pub kind: Kind,
    /// Required.
    pub required: bool,
    /// Extra names accepted (without `--`).
    pub aliases: &'static [&'static str],
}

const fn f(field: &'static str, kind: Kind) -> Flag {
    Flag {
        field,
        kind,
        required: true,
        aliases: &[],
    }
}
const fn opt(field: &'static str, kind: Kind) -> Flag {
    Flag {
        field,
        kind,
        required: false,
        aliases: &[],
    }
}
const fn aka(field: &'static str, kind: Kind, aliases: &'static [&'static str]) -> Flag {
    Flag {
        field,
        kind,
        required: true,
        aliases,
    }
}

use Kind::*;

/// A `<noun> <verb>` and the command it records.
pub struct WriteCommand {
    /// Noun.
    pub noun: &'static str,
    /// Verb.
    pub verb: &'static str,
    /// The JSON command name.
    pub command: &'static str,
    /// Its flags.
    pub flags: &'static [Flag],
    /// One line for help.
    pub about: &'static str,
}

const KG: Flag = aka("kindergarten", Str, &["kg"]);
const STAFF: Flag = aka("staff_no", Str, &["staff"]);
const ON: Flag = f("on", Str);

/// Every write command.
pub const WRITES: &[WriteCommand] = &[
    WriteCommand {
        noun: "group",
        verb: "found",
        command: "found_group",
        about: "found a group with its lead",
        flags: &[
            f("group", Str),
            f("kind", Str),
            f("lead", Str),
            ON,
            opt("exception_approved_by", Str),
            opt("exception_reference", Str),
            opt("exception_reason", Str),
        ],
    },
    WriteCommand {
        noun: "group",
        verb: "join",
        command: "join_group",
        about: "a kindergarten joins a group",
        flags: &[KG, f("group", Str), ON],
    },
    WriteCommand {
        noun: "group",
        verb: "leave",
        command: "leave_group",
        about: "a kindergarten leaves a group",
        flags: &[KG, f("group", Str), ON],
    },
    WriteCommand {
        noun: "group",
        verb: "transfer",
        command: "transfer_kindergarten",
        about: "leave one group and join another on one day",
        flags: &[KG, aka("to_group", Str, &["to"]), ON],
    },
    WriteCommand {
        noun: "group",
        verb: "change-lead",
        command: "change_lead",
        about: "a member becomes the lead",
        flags: &[
            f("group", Str),
            f("lead", Str),
            ON,
            opt("exception_approved_by", Str),
            opt("exception_reference", Str),
            opt("exception_reason", Str),
        ],
    },
    WriteCommand {
        noun: "kindergarten",
        verb: "register",
        command: "register_kindergarten",
        about: "register a kindergarten",
        flags: &[
            KG,
            opt("full_name", Str),
            f("category", Str),
            f("ownership", Str),
            opt("provisional", Bool),
            opt("cooperative_principal", Bool),
            ON,
        ],
    },
    WriteCommand {
        noun: "kindergarten",
        verb: "rename",
        command: "rename_kindergarten",
        about: "rename (identity is kept)",
        flags: &[KG, f("new_name", Str), opt("provisional", Bool), ON],
    },
    WriteCommand {
        noun: "kindergarten",
        verb: "regrade",
        command: "regrade_kindergarten",
        about: "change the category",
        flags: &[KG, f("category", Str), ON],
    },
    WriteCommand {
        noun: "kindergarten",
        verb: "designate-high-quality",
        command: "designate_high_quality",
        about: "designate high-quality (高质量幼儿园)",
        flags: &[KG, ON],
    },
    WriteCommand {
        noun: "kindergarten",
        verb: "designate-cooperative-principal",
        command: "designate_cooperative_principal",
        about: "designate a 合作办园主体园 (may lead a group)",
        flags: &[KG, ON],
    },
    WriteCommand {
        noun: "kindergarten",
        verb: "revoke-high-quality",
        command: "revoke_high_quality",
        about: "revoke a high-quality designation",
        flags: &[KG, ON],
    },
    WriteCommand {
        noun: "principal",
        verb: "appoint",
        command: "appoint_principal",
        about: "appoint a principal",
        flags: &[KG, STAFF, ON],
    },
    WriteCommand {
        noun: "principal",
        verb: "end",
        command: "end_principal",
        about: "end a principal's appointment",
        flags: &[KG, ON],
    },
    WriteCommand {
        noun: "secretariat",
        verb: "appoint",
        command: "appoint_secretariat",
        about: "appoint secretariat staff for a term",
        flags: &[
            f("group", Str),
            STAFF,
            f("role", Str),
            f("from", Str),
            f("to", Str),
        ],
    },
    WriteCommand {
        noun: "secretariat",
        verb: "dismiss",
        command: "dismiss_secretariat",
        about: "end a secretariat term early",
        flags: &[f("group", Str), STAFF, ON],
    },
    WriteCommand {
        noun: "document",
        verb: "adopt",
        command: "adopt_document",
        about: "adopt a charter, plan or system",
        flags: &[
            f("group", Str),
            f("doc_kind", Str),
            f("title", Str),
            opt("period", Str),
            opt("sha256", Str),
            ON,
        ],
    },
    WriteCommand {
        noun: "expert",
        verb: "assign",
        command: "assign_expert",
        about: "assign a resident expert (驻点专家)",
        flags: &[
            f("group", Str),
            f("expert", Str),
            f("affiliation", Str),
            f("from", Str),
            f("to", Str),
        ],
    },
    WriteCommand {
        noun: "teacher",
        verb: "register",
        command: "register_teacher",
        about: "register a teacher with a home kindergarten",
        flags: &[STAFF, f("name", Str), f("home", Str), ON],
    },
    WriteCommand {
        noun: "teacher",
        verb: "change-home",
        command: "change_home",
        about: "move a teacher's establishment",
        flags: &[STAFF, f("home", Str), ON],
    },
    WriteCommand {
        noun: "teacher",
        verb: "award-title",
        command: "award_title",
        about: "award a title",
        flags: &[STAFF, f("title", Str), ON],
    },
    WriteCommand {
        noun: "teacher",
        verb: "leave-service",
        command: "leave_service",
        about: "a teacher leaves service",
        flags: &[STAFF, ON],
    },
    WriteCommand {
        noun: "rotation",
        verb: "start",
        command: "start_rotation",
        about: "start a rotation (柔性流动)",
        flags: &[
            aka("rotation", Str, &["id"]),
            STAFF,
            f("host", Str),
            f("mode", Str),
            f("start", Str),
            f("planned_end", Str),
            opt("exception_approved_by", Str),
            opt("exception_reference", Str),
            opt("exception_reason", Str),
        ],
    },
    WriteCommand {
        noun: "rotation",
        verb: "extend",
        command: "extend_rotation",
        about: "move a rotation's planned end",
        flags: &[
            aka("rotation", Str, &["id"]),
            f("planned_end", Str),
            f("on", Str),
            opt("exception_approved_by", Str),
            opt("exception_reference", Str),
            opt("exception_reason", Str),
        ],
    },
    WriteCommand {
        noun: "rotation",
        verb: "end",
        command: "end_rotation",
        about: "end a rotation with the host's assessment",
        flags: &[
            aka("rotation", Str, &["id"]),
            f("end", Str),
            f("assessment", Str),
        ],
    },
    WriteCommand {
        noun: "rotation",
        verb: "cancel",
        command: "cancel_rotation",
        about: "cancel a rotation",
        flags: &[aka("rotation", Str, &["id"]), ON, f("reason", Str)],
    },
    WriteCommand {
        noun: "training",
        verb: "hold",
        command: "hold_training",
        about: "record a training",
        flags: &[
            aka("training", Str, &["id"]),
            f("title", Str),
            f("tier", Str),
            f("organizer", Str),
            f("start", Str),
            f("end", Str),
            f("hours", Num),
        ],
    },
    WriteCommand {
        noun: "training",
        verb: "attend",
        command: "record_attendance",
        about: "record who attended",
        flags: &[
            aka("training", Str, &["id"]),
            aka("staff_nos", List, &["staff"]),
        ],
    },
    WriteCommand {
        noun: "training",
        verb: "apply-recognition",
        command: "apply_recognition",
        about: "a group applies for district-level recognition",
        flags: &[aka("training", Str, &["id"]), ON],
    },
    WriteCommand {
        noun: "training",
        verb: "decide-recognition",
        command: "decide_recognition",
        about: "the bureau decides on recognition",
        flags: &[
            aka("training", Str, &["id"]),
            f("granted", Bool),
            ON,
            f("reviewer", Str),
        ],
    },
    WriteCommand {
        noun: "activity",
        verb: "hold",
        command: "hold_activity",
        about: "record an activity",
        flags: &[
            aka("activity", Str, &["id"]),
            f("group", Str),
            f("kind", Str),
            f("title", Str),
            ON,
            f("kindergartens", List),
        ],
    },
    WriteCommand {
        noun: "project",
        verb: "propose",
        command: "propose_project",
        about: "propose a project",
        flags: &[
            aka("project", Str, &["id"]),
            f("group", Str),
            f("kind", Str),
            f("title", Str),
            f("year", Int),
            f("on", Str),
            opt("members", List),
        ],
    },
    WriteCommand {
        noun: "project",
        verb: "approve",
        command: "approve_project",
        about: "approve a project with a budget in fen",
        flags: &[aka("project", Str, &["id"]), ON, f("budget_fen", Int)],
    },
    WriteCommand {
        noun: "project",
        verb: "complete",
        command: "complete_project",
        about: "complete and rate a project",
        flags: &[aka("project", Str, &["id"]), ON, f("rating", Str)],
    },
    WriteCommand {
        noun: "project",
        verb: "cancel",
        command: "cancel_project",
        about: "cancel a project",
        flags: &[aka("project", Str, &["id"]), ON, f("reason", Str)],
    },
];

/// Find the write command for `noun verb`.
pub fn find(noun: &str, verb: &str) -> Option<&'static WriteCommand> {
    WRITES.iter().find(|w| w.noun == noun && w.verb == verb)
}

/// Whether `noun` is a write noun.
pub fn is_noun(noun: &str) -> bool {
    WRITES.iter().any(|w| w.noun == noun)
}

/// The codes a flag takes, with their Chinese labels, where the field is a code of DOMAIN.md.
pub fn codes(command: &str, field: &str) -> Option<Vec<(&'static str, &'static str)>> {
    use eduledger_domain::values::*;
    fn all<T: Copy>(
        xs: &[T],
        code: fn(T) -> &'static str,
        label: fn(T) -> &'static str,
    ) -> Vec<(&'static str, &'static str)> {
        xs.iter().map(|x| (code(*x), label(*x))).collect()
    }
    Some(match (command, field) {
        ("found_group", "kind") => all(GroupKind::ALL, GroupKind::code, GroupKind::label),
        ("hold_activity", "kind") => {
            all(ActivityKind::ALL, ActivityKind::code, ActivityKind::label)
        }
        ("propose_project", "kind") => all(ProjectKind::ALL, ProjectKind::code, ProjectKind::label),
        ("award_title", "title") => all(Title::ALL, Title::code, Title::label),
        (_, "category") => all(Category::ALL, Category::code, Category::label),
        (_, "ownership") => all(Ownership::ALL, Ownership::code, Ownership::label),
        (_, "doc_kind") => all(DocKind::ALL, DocKind::code, DocKind::label),
        (_, "mode") => all(RotationMode::ALL, RotationMode::code, RotationMode::label),
        (_, "assessment") => all(Assessment::ALL, Assessment::code, Assessment::label),
        (_, "tier") => all(TrainingTier::ALL, TrainingTier::code, TrainingTier::label),
        (_, "rating") => all(Rating::ALL, Rating::code, Rating::label),
        _ => return None,
    })
}

/// The clap command for one write command, built from its flag table: clap's help (each
/// code flag lists its values with their Chinese labels), "did you mean" for a mistyped
/// flag, and completions and the man page from the same table. Values are not checked here:
/// the domain checks them, once, for scripts and people alike.
pub fn clap_command(w: &WriteCommand) -> clap::Command {
    let mut cmd = clap::Command::new(w.verb)
        .about(w.about)
        .long_about(format!("{} (records `{}`)", w.about, w.command))
        .after_help("Common: --actor NAME, --source DOC, --reason TEXT, --db PATH")
        .no_binary_name(true)
        .disable_help_subcommand(true)
        // a flag given twice: the last one counts (as scripts expect)
        .args_override_self(true);
    for fl in w.flags {
        let long = fl.field.replace('_', "-");
        let mut arg = clap::Arg::new(fl.field)
            .long(long)
            .required(fl.required)
            .value_name(fl.field.to_uppercase())
            // values are the domain's to judge: `-5` is a (refused) amount, not a flag
            .allow_hyphen_values(true)
            .allow_negative_numbers(true);
        if fl.field.contains('_') {
            arg = arg.alias(fl.field);
        }
        for a in fl.aliases {
            arg = arg.visible_alias(*a);
        }
        let kind_help = match fl.kind {
            Kind::Str => "",
            Kind::Int => "a whole number",
            Kind::Num => "a number",
            Kind::Bool => "true or false; alone, true",
            Kind::List => "a list, separated by , or 、",
        };
        let help = match codes(w.command, fl.field) {
            Some(values) => {
                let list: Vec<String> = values.iter().map(|(c, l)| format!("{c} = {l}")).collect();
                format!("one of: {}", list.join(", "))
            }
            None if matches!(
                fl.field,
                "on" | "start" | "end" | "planned_end" | "from" | "to"
            ) =>
            {
                "a date, YYYY-MM-DD".into()
            }
            None => kind_help.to_owned(),
        };
        arg = arg.help(help);
        if fl.kind == Kind::Bool {
            arg = arg.num_args(0..=1).default_missing_value("true");
        }
        cmd = cmd.arg(arg);
    }
    cmd
}

/// Help text for one write command (clap's long help).
pub fn help(w: &WriteCommand) -> String {
    let mut cmd = clap_command(w).name(format!("eduledger {} {}", w.noun, w.verb));
    cmd.render_long_help().to_string()
}

/// A usage error (exit 2) or a bad value (exit 1).
#[derive(Debug)]
pub enum FlagError {
    /// Wrong words.
    Usage(String),
    /// A value that does not fit its field.
    Value(String),
    /// `--help`: the text to print (exit 0).
    Help(String),
}

/// Turn `--flag value` pairs into the command's JSON object, parsed by clap.
pub fn to_json(w: &WriteCommand, args: &[String]) -> Result<Value, FlagError> {
    let cmd = clap_command(w).name(format!("eduledger {} {}", w.noun, w.verb));
    let matches = match cmd.try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => {
            let text = e.render().to_string();
            return Err(match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    FlagError::Help(text)
                }
                _ => FlagError::Usage(text.trim_end().trim_start_matches("error: ").to_owned()),
            });
        }
    };
    let mut obj = Map::new();
    obj.insert("command".into(), Value::String(w.command.into()));
    let mut exception = Map::new();
    for fl in w.flags {
        let Some(value) = matches.get_one::<String>(fl.field).cloned() else {
            continue;
        };
        let json = match fl.kind {
            Kind::Str => Value::String(value),
            Kind::Int => value.parse::<i64>().map(Value::from).map_err(|_| {
                FlagError::Value(format!(
                    "field {}: {} is not a whole number",
                    fl.field,
                    eduledger_domain::values::Quoted(&value)
                ))
            })?,
            Kind::Num => value
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| {
                    FlagError::Value(format!(
                        "field {}: {} is not a number",
                        fl.field,
                        eduledger_domain::values::Quoted(&value)
                    ))
                })?,
            Kind::Bool => match value.as_str() {
                "true" | "yes" | "1" => Value::Bool(true),
                "false" | "no" | "0" => Value::Bool(false),
                _ => {
                    return Err(FlagError::Value(format!(
                        "field {}: {} is not true or false",
                        fl.field,
                        eduledger_domain::values::Quoted(&value)
                    )));
                }
            },
            Kind::List => Value::Array(
                value
                    .split([',', '、'])
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.into()))
                    .collect(),
            ),
        };
        match fl.field.strip_prefix("exception_") {
            Some(part) => {
                exception.insert(part.into(), json);
            }
            None => {
                obj.insert(fl.field.into(), json);
            }
        }
    }
    if !exception.is_empty() {
        obj.insert("exception".into(), Value::Object(exception));
    }
    Ok(Value::Object(obj))
}
