//! Value types that refuse bad input at the edge, each error naming the rule.
//!
//! Every newtype deserializes through its constructor (`try_from = "String"`), so a JSON
//! command with a bad value is refused while it is parsed, and the parse error carries the
//! field's path (see `command::parse_submission`).

use std::fmt;

use chrono::{Datelike, NaiveDate};
use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A calendar day, `YYYY-MM-DD`. Binary encodings store days since 0001-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(NaiveDate);

/// The first year a date given in a command or a flag may have.
pub const FIRST_DATE_YEAR: i32 = 1900;
/// The last year a date given in a command or a flag may have.
pub const LAST_DATE_YEAR: i32 = 2999;
/// The years a report or a rule set speaks of (`--year`, `year = …`, a project's year).
pub const REPORT_YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

impl Date {
    /// Whether this is [`Date::BEGINNING`]: the date of a v0.1 extension or proposal, which
    /// had none of its own (docs/EVENTS.md). Commands cannot give it ([`Date::parse`]).
    pub fn is_v0_1_undated(self) -> bool {
        self == Date::BEGINNING
    }
    /// 0001-01-01: the valid time given to v0.1 events that had none, so they read on every
    /// date as v0.1 showed them (docs/EVENTS.md).
    pub const BEGINNING: Date = match NaiveDate::from_ymd_opt(1, 1, 1) {
        Some(d) => Date(d),
        None => panic!("0001-01-01 is a date"),
    };
    /// Whole calendar months in `[self, last]` (chrono's month arithmetic): the one month
    /// count behind the two-year rule's words and the tally's `months` attribute.
    pub fn whole_months_through(self, last: Date) -> u32 {
        let after = last.succ();
        let mut m = 0;
        while self.add_months(m + 1).is_some_and(|d| d <= after) {
            m += 1;
        }
        m
    }
    /// The last representable day: "after everything".
    pub const MAX: Date = Date(NaiveDate::MAX);
    /// Parse `YYYY-MM-DD`; a day that is not on the calendar (2023-02-29) is refused.
    pub fn parse(text: &str) -> Result<Date, String> {
        let ok_shape = text.len() == 10
            && text.as_bytes()[4] == b'-'
            && text.as_bytes()[7] == b'-'
            && text
                .bytes()
                .enumerate()
                .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
        if !ok_shape {
            return Err(format!(
                "{} is not a date of the form YYYY-MM-DD",
                Quoted(text)
            ));
        }
        let d = NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Date)
            .map_err(|_| format!("{} is not a real calendar day", Quoted(text)))?;
        // Dates people and scripts give lie in the years a ledger speaks of; 0001-01-01 in
        // particular marks a v0.1 event that had no date, and must not be typed.
        if !(FIRST_DATE_YEAR..=LAST_DATE_YEAR).contains(&d.0.year()) {
            return Err(format!(
                "{} is outside the years {FIRST_DATE_YEAR} to {LAST_DATE_YEAR}",
                Quoted(text)
            ));
        }
        Ok(d)
    }
    /// From year, month, day.
    pub fn ymd(y: i32, m: u32, d: u32) -> Option<Date> {
        NaiveDate::from_ymd_opt(y, m, d).map(Date)
    }
    /// The chrono date.
    pub fn naive(self) -> NaiveDate {
        self.0
    }
    /// From a chrono date.
    pub fn from_naive(d: NaiveDate) -> Date {
        Date(d)
    }
    /// The calendar year.
    pub fn year(self) -> i32 {
        self.0.year()
    }
    /// The day before.
    pub fn pred(self) -> Date {
        Date(self.0.pred_opt().unwrap_or(self.0))
    }
    /// The day after.
    pub fn succ(self) -> Date {
        Date(self.0.succ_opt().unwrap_or(self.0))
    }
    /// `self + months`, clamped to the month's last day (chrono's `checked_add_months`).
    pub fn add_months(self, months: u32) -> Option<Date> {
        self.0
            .checked_add_months(chrono::Months::new(months))
            .map(Date)
    }
    /// January 1 of a year.
    pub fn jan1(year: i32) -> Date {
        Date(NaiveDate::from_ymd_opt(year, 1, 1).unwrap_or(NaiveDate::MIN))
    }
    /// December 31 of a year.
    pub fn dec31(year: i32) -> Date {
        Date(NaiveDate::from_ymd_opt(year, 12, 31).unwrap_or(NaiveDate::MAX))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.collect_str(self)
        } else {
            s.serialize_i32(self.0.num_days_from_ce())
        }
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            Date::parse(&s).map_err(serde::de::Error::custom)
        } else {
            let n = i32::deserialize(d)?;
            NaiveDate::from_num_days_from_ce_opt(n)
                .map(Date)
                .ok_or_else(|| serde::de::Error::custom("day number out of range"))
        }
    }
}

/// A value quoted for an error message: at most 40 characters of it, so refusing a
/// megabyte-long value does not print the megabyte back.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 40;
        let n = self.0.chars().count();
        if n <= SHOWN {
            write!(f, "{:?}", self.0)
        } else {
            let head: String = self.0.chars().take(SHOWN).collect();
            write!(f, "{head:?}… ({n} characters in all)")
        }
    }
}

fn check_name(kind: &str, text: &str, max_chars: usize) -> Result<(), String> {
    let n = text.chars().count();
    if n == 0 {
        return Err(format!("{kind} must not be empty"));
    }
    if n > max_chars {
        return Err(format!(
            "{kind} {} is {n} characters; at most {max_chars} are allowed",
            Quoted(text)
        ));
    }
    if text.trim() != text {
        return Err(format!(
            "{kind} {} must not start or end with spaces",
            Quoted(text)
        ));
    }
    if text.chars().any(|c| c.is_control() || c == '、') {
        return Err(format!(
            "{kind} {} must not contain control characters, tabs or 、",
            Quoted(text)
        ));
    }
    refuse_hidden(kind, text, false)
}

/// The first character of `text` a reader cannot see or that breaks its line: a control
/// character (but a new line or tab where `multiline`), a format character (Unicode
/// category Cf: zero-width spaces and joiners, direction marks and overrides, the BOM) or a
/// line or paragraph separator. Two names differing only by one print alike.
pub fn hidden_char(text: &str, multiline: bool) -> Option<char> {
    use unicode_properties::{GeneralCategory, UnicodeGeneralCategory as _};
    text.chars().find(|&c| {
        (c.is_control() && !(multiline && (c == '\n' || c == '\t')))
            || matches!(
                c.general_category(),
                GeneralCategory::Format
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
            )
            || blank_or_ignorable(c)
    })
}

/// Code points that are not Unicode format characters yet print as nothing, or as a blank
/// that looks like no character at all: the rest of Unicode's Default_Ignorable_Code_Point
/// (the combining grapheme joiner, variation selectors, Mongolian free variation
/// selectors, Khmer inherent vowels, tags), the Hangul fillers and the blank Braille cell.
fn blank_or_ignorable(c: char) -> bool {
    matches!(
        c as u32,
        0x034F
            | 0x115F
            | 0x1160
            | 0x17B4
            | 0x17B5
            | 0x180B..=0x180F
            | 0x2800
            | 0x3164
            | 0xFE00..=0xFE0F
            | 0xFFA0
            | 0x1BCA0..=0x1BCA3
            | 0xE0000..=0xE0FFF
    )
}

/// What a refusal of a [`hidden_char`] says.
const HIDDEN: &str = "a character that does not print";

/// Refuse `text` if it holds a [`hidden_char`], naming the character by its code point.
pub fn refuse_hidden(field: &str, text: &str, multiline: bool) -> Result<(), String> {
    match hidden_char(text, multiline) {
        None => Ok(()),
        Some(c) => Err(format!(
            "{field} {} contains U+{:04X}, {HIDDEN} (a format, filler or ignorable character, or a line separator); remove it",
            Quoted(text),
            c as u32
        )),
    }
}

/// `text` in Unicode normal form C: two spellings of one name (a precomposed character or
/// a base and its combining mark) are one name.
fn nfc(text: &str) -> CompactString {
    use unicode_normalization::UnicodeNormalization as _;
    match unicode_normalization::is_nfc_quick(text.chars()) {
        unicode_normalization::IsNormalized::Yes => CompactString::new(text),
        _ => text.nfc().collect(),
    }
}

/// A checked text value: stored inline (`CompactString`: no heap allocation up to 24 bytes,
/// which matters when a city-scale ledger holds millions of staff numbers), checked by `$check`
/// on construction and on every deserialization.
macro_rules! text_type {
    ($(#[$doc:meta])* $name:ident, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(CompactString);

        impl $name {
            /// Check and wrap.
            pub fn new(text: impl AsRef<str>) -> Result<$name, String> {
                let text = nfc(text.as_ref());
                ($check)(text.as_str())?;
                Ok($name(text))
            }
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<String> for $name {
            type Error = String;
            fn try_from(s: String) -> Result<$name, String> {
                $name::new(s)
            }
        }
        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.0.into()
            }
        }
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                // (characters that do not print are refused in what people send — JSON —
                // and kept in what is stored — bincode — which an earlier version may have
                // accepted: a ledger stays readable)
                let strict = d.is_human_readable();
                let text = nfc(CompactString::deserialize(d)?.as_str());
                match ($check)(text.as_str()) {
                    Err(why) if strict || !why.contains(HIDDEN) => {
                        return Err(serde::de::Error::custom(why))
                    }
                    _ => {}
                }
                Ok($name(text))
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

text_type!(
    /// A kindergarten's short name, unique in the district (`佳佳`, `白鹤第二`).
    KgName, |t: &str| check_name("kindergarten name", t, 40));
text_type!(
    /// A group's name (`佳佳学前教育集团`); its identity.
    GroupName, |t: &str| check_name("group name", t, 60));
text_type!(
    /// A person's name, a title or other free text of one line.
    Text, |t: &str| check_name("text", t, 200));
text_type!(
    /// Why a record is corrected or retracted: up to 2,000 characters, new lines and tabs
    /// allowed (the same rule as `meta.reason`).
    Reason, check_reason);
text_type!(
    /// Who acts through the server: an office, a group's secretariat, a person, a script
    /// (`toyouban`, `佳佳集团秘书处`); the actor of everything it records.
    PrincipalName, |t: &str| check_name("principal name", t, 60));
text_type!(
    /// A staff number assigned by the bureau: 1–32 ASCII letters, digits, `-` or `_`.
    StaffNo, check_staff_no);
text_type!(
    /// An id given by the recorder to a rotation, training, activity or project (`R2024-001`).
    RecordId, check_record_id);

impl KgName {
    /// `?`, shown only if a record were ever found without its name.
    pub(crate) fn placeholder() -> KgName {
        KgName(CompactString::const_new("?"))
    }
}

fn check_reason(text: &str) -> Result<(), String> {
    const MAX: usize = 2000;
    let n = text.chars().count();
    if text.trim().is_empty() {
        return Err("reason must not be empty".into());
    }
    if n > MAX {
        return Err(format!(
            "reason {} is {n} characters; at most {MAX} are allowed",
            Quoted(text)
        ));
    }
    if text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(format!(
            "reason {} must not contain control characters (new lines and tabs are allowed)",
            Quoted(text)
        ));
    }
    refuse_hidden("reason", text, true)
}

fn check_staff_no(text: &str) -> Result<(), String> {
    let ok = !text.is_empty()
        && text.len() <= 32
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "staff number {} must be 1 to 32 ASCII letters, digits, '-' or '_'",
            Quoted(text)
        ))
    }
}

fn check_record_id(text: &str) -> Result<(), String> {
    let n = text.chars().count();
    refuse_hidden("id", text, false)?;
    if n == 0 || n > 64 || text.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "id {} must be 1 to 64 characters without spaces",
            Quoted(text)
        ));
    }
    Ok(())
}

/// The ledger's internal, stable id of a kindergarten (names can change).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KgId(pub u32);

impl fmt::Display for KgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "K{:04}", self.0)
    }
}

/// Money in fen (0.01 yuan). Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Fen(i64);

impl Fen {
    /// The largest amount: 10^14 fen (1 trillion yuan), so that the sum of any number of
    /// budgets a ledger can hold (fewer than 2^31 projects) stays far inside `i64`.
    pub const MAX: i64 = 100_000_000_000_000;
    /// Non-negative amounts up to [`Fen::MAX`] only.
    pub fn new(fen: i64) -> Result<Fen, String> {
        if fen < 0 {
            return Err(format!("amount {fen} fen must not be negative"));
        }
        if fen > Fen::MAX {
            return Err(format!(
                "amount {fen} fen is over the limit of {} fen",
                Fen::MAX
            ));
        }
        Ok(Fen(fen))
    }
    /// The amount in fen.
    pub fn get(self) -> i64 {
        self.0
    }
}
impl TryFrom<i64> for Fen {
    type Error = String;
    fn try_from(v: i64) -> Result<Fen, String> {
        Fen::new(v)
    }
}
impl From<Fen> for i64 {
    fn from(v: Fen) -> i64 {
        v.0
    }
}

/// Training hours, in tenths of an hour (JSON: a number with at most one decimal, e.g. 1.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hours(u32);

impl Hours {
    /// From tenths.
    pub fn from_tenths(t: u32) -> Hours {
        Hours(t)
    }
    /// Tenths of an hour.
    pub fn tenths(self) -> u32 {
        self.0
    }
    /// Check a number of hours: more than 0, at most 1000, at most one decimal.
    pub fn from_f64(h: f64) -> Result<Hours, String> {
        let tenths = (h * 10.0).round();
        if !(h > 0.0 && h <= 1000.0) || (tenths - h * 10.0).abs() > 1e-6 {
            return Err(format!(
                "hours {h} must be more than 0 and at most 1000, with at most one decimal"
            ));
        }
        Ok(Hours(tenths as u32))
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(10) {
            write!(f, "{}", self.0 / 10)
        } else {
            write!(f, "{}.{}", self.0 / 10, self.0 % 10)
        }
    }
}

impl Serialize for Hours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            if self.0.is_multiple_of(10) {
                s.serialize_u32(self.0 / 10)
            } else {
                s.serialize_f64(self.0 as f64 / 10.0)
            }
        } else {
            s.serialize_u32(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Hours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Hours, D::Error> {
        if d.is_human_readable() {
            let h = f64::deserialize(d)?;
            Hours::from_f64(h).map_err(serde::de::Error::custom)
        } else {
            Ok(Hours(u32::deserialize(d)?))
        }
    }
}

/// A SHA-256 written as 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Sha256Hex(String);

impl Sha256Hex {
    /// Check and wrap.
    pub fn new(text: impl Into<String>) -> Result<Sha256Hex, String> {
        let text: String = text.into();
        if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(Sha256Hex(text.to_ascii_lowercase()))
        } else {
            Err(format!(
                "sha256 {} must be 64 hexadecimal digits",
                Quoted(&text)
            ))
        }
    }
    /// The hex text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Sha256Hex {
    type Error = String;
    fn try_from(s: String) -> Result<Sha256Hex, String> {
        Sha256Hex::new(s)
    }
}
impl From<Sha256Hex> for String {
    fn from(v: Sha256Hex) -> String {
        v.0
    }
}

/// Enums with stable English codes (DOMAIN.md) and the Chinese label tables print.
macro_rules! code_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $code:literal / $label:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];
            /// The English code used in JSON.
            pub const fn code(self) -> &'static str { match self { $($name::$variant => $code),* } }
            /// The Chinese label used in tables.
            pub fn label(self) -> &'static str { match self { $($name::$variant => $label),* } }
            /// Parse a code, listing the valid ones on failure.
            pub fn parse(text: &str) -> Result<$name, String> {
                match text {
                    $($code => Ok($name::$variant),)*
                    _ => Err(format!("{} is not one of: {}", Quoted(text), [$($code),*].join(", "))),
                }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.code()) }
        }
    };
}

code_enum!(
    /// Kindergarten category (等级).
    Category {
        /// 市示范
        MunicipalDemonstration = "municipal_demonstration" / "市示范",
        /// 区示范
        DistrictDemonstration = "district_demonstration" / "区示范",
        /// 一级
        FirstClass = "first_class" / "一级",
        /// 二级
        SecondClass = "second_class" / "二级",
        /// 三级
        ThirdClass = "third_class" / "三级",
        /// 新建, not yet graded
        NewBuilt = "new_built" / "新建",
        /// not given in the roster (ours)
        Unspecified = "unspecified" / "未定",
    }
);

code_enum!(
    /// Ownership.
    Ownership { Public = "public" / "公办", Private = "private" / "民办" }
);

code_enum!(
    /// Group kind: 集团 or 联盟.
    GroupKind { Group = "group" / "集团", Alliance = "alliance" / "联盟" }
);

code_enum!(
    /// What a principal may do (SERVER.md "Who may do what").
    Role {
        /// Everything, granting and revoking access included.
        Admin = "admin" / "管理员",
        /// Record (optionally only within some groups) and read.
        Recorder = "recorder" / "录入员",
        /// Read, verify and export; never record.
        Auditor = "auditor" / "审计员",
    }
);

code_enum!(
    /// Governance documents.
    DocKind {
        /// 章程
        Charter = "charter" / "章程",
        /// 年度计划
        AnnualPlan = "annual_plan" / "年度计划",
        /// 三年发展规划
        ThreeYearPlan = "three_year_plan" / "三年发展规划",
        /// 管理制度 (例会 / 联合教研 / 教师流动 / 资源共享)
        ManagementSystem = "management_system" / "管理制度",
    }
);

code_enum!(
    /// Teacher titles.
    Title {
        /// 骨干
        Backbone = "backbone" / "骨干教师",
        /// 区名优
        DistrictFamous = "district_famous" / "区名优教师",
        /// 市名优
        MunicipalFamous = "municipal_famous" / "市名优教师",
    }
);

code_enum!(
    /// Rotation modes (柔性流动方式).
    RotationMode {
        /// 示范带班 (out to a weaker kindergarten)
        DemonstrationTeaching = "demonstration_teaching" / "示范带班",
        /// 教研引领
        ResearchLeading = "research_leading" / "教研引领",
        /// 项目攻关
        ProjectTackling = "project_tackling" / "项目攻关",
        /// 岗位带教
        PostMentoring = "post_mentoring" / "岗位带教",
        /// 挂职锻炼 (from a weaker kindergarten)
        TemporaryPost = "temporary_post" / "挂职锻炼",
        /// 跟岗实践
        Shadowing = "shadowing" / "跟岗实践",
        /// 师徒带教
        Apprenticeship = "apprenticeship" / "师徒带教",
    }
);

code_enum!(
    /// Host assessment at the end of a rotation (流入园考核鉴定).
    Assessment {
        /// 优秀
        Excellent = "excellent" / "优秀",
        /// 合格
        Qualified = "qualified" / "合格",
        /// 基本合格
        BasicallyQualified = "basically_qualified" / "基本合格",
        /// 不合格
        Unqualified = "unqualified" / "不合格",
    }
);

impl Assessment {
    /// `qualified` or better: eligible for the 人员保障 preferences.
    pub fn makes_eligible(self) -> bool {
        matches!(self, Assessment::Excellent | Assessment::Qualified)
    }
}

code_enum!(
    /// Training tiers (四级培训).
    TrainingTier {
        /// 市级
        Municipal = "municipal" / "市级",
        /// 区级
        District = "district" / "区级",
        /// 集团
        Group = "group" / "集团",
        /// 园本
        Kindergarten = "kindergarten" / "园本",
    }
);

code_enum!(
    /// Activity kinds (教研与指导).
    ActivityKind {
        /// 集中主题教研
        JointResearch = "joint_research" / "集中主题教研",
        /// 课堂交流展示
        ClassShowcase = "class_showcase" / "课堂交流展示",
        /// 评比
        Competition = "competition" / "评比",
        /// 调研指导
        ExpertGuidance = "expert_guidance" / "调研指导",
        /// 典型宣传报道
        Publicity = "publicity" / "典型宣传报道",
        /// 理事会/工作例会 (`kindergartens` are those present)
        CouncilMeeting = "council_meeting" / "理事会/工作例会",
    }
);

code_enum!(
    /// Project kinds (重点项目, 名优教师项目组, 专项经费).
    ProjectKind {
        /// 重点项目
        KeyProject = "key_project" / "重点项目",
        /// 名优教师项目组
        FamousTeacherGroup = "famous_teacher_group" / "名优教师项目组",
        /// 课程建设
        Curriculum = "curriculum" / "课程建设",
        /// 专业资源引入
        ResourceIntroduction = "resource_introduction" / "专业资源引入",
        /// 特色发展
        FeaturedDevelopment = "featured_development" / "特色发展",
        /// 展示交流
        Showcase = "showcase" / "展示交流",
    }
);

code_enum!(
    /// Project ratings.
    Rating { Excellent = "excellent" / "优秀", Good = "good" / "良好", Pass = "pass" / "合格", Fail = "fail" / "不合格" }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_ids_that_print_like_another_are_refused_naming_the_code_point() {
        for (text, code) in [
            ("赵屯\u{200b}", "U+200B"),
            ("\u{feff}佳佳", "U+FEFF"),
            ("赵屯\u{202e}", "U+202E"),
            ("a\u{2028}b", "U+2028"),
            ("佳\u{2029}佳", "U+2029"),
            ("佳\u{200d}佳", "U+200D"),
        ] {
            for refused in [
                KgName::new(text).map(|_| ()),
                GroupName::new(text).map(|_| ()),
                PrincipalName::new(text).map(|_| ()),
                Text::new(text).map(|_| ()),
                RecordId::new(text).map(|_| ()),
            ] {
                let why = refused.expect_err(text);
                assert!(why.contains(code), "{text:?}: {why}");
            }
        }
        // what the bureau writes is kept
        for fine in ["赵屯", "白鹤第二", "青浦区实验幼儿园（东园）", "R2024-001"]
        {
            assert!(Text::new(fine).is_ok(), "{fine}");
        }
    }

    #[test]
    fn a_stored_name_an_earlier_version_accepted_still_reads_though_a_new_one_is_refused() {
        let config = bincode::config::standard();
        let stored = bincode::serde::encode_to_vec("赵屯\u{200b}", config).unwrap();
        let (read, _): (KgName, usize) =
            bincode::serde::decode_from_slice(&stored, config).unwrap();
        assert_eq!(read.as_str(), "赵屯\u{200b}");
        assert!(serde_json::from_str::<KgName>(r#""赵屯\u200b""#).is_err());
        // other rules hold for stored names too
        let empty = bincode::serde::encode_to_vec("", config).unwrap();
        assert!(bincode::serde::decode_from_slice::<KgName, _>(&empty, config).is_err());
    }

    #[test]
    fn two_spellings_of_one_name_are_one_name() {
        // é precomposed, and e with a combining acute accent
        let a = KgName::new("caf\u{e9}").unwrap();
        let b = KgName::new("cafe\u{301}").unwrap();
        assert_eq!(a, b);
        assert_eq!(b.as_str(), "caf\u{e9}");
        let from_json: KgName = serde_json::from_str(r#""cafe\u0301""#).unwrap();
        assert_eq!(from_json, a);
    }

    #[test]
    fn dates_refuse_days_not_on_the_calendar() {
        assert!(Date::parse("2024-02-29").is_ok());
        assert!(
            Date::parse("2023-02-29")
                .unwrap_err()
                .contains("real calendar day")
        );
        assert!(Date::parse("2023-9-1").unwrap_err().contains("YYYY-MM-DD"));
    }

    #[test]
    fn two_years_from_september_first_ends_august_thirty_first() {
        let start = Date::parse("2024-09-01").unwrap();
        assert_eq!(
            start.add_months(24).unwrap().pred().to_string(),
            "2026-08-31"
        );
    }

    #[test]
    fn names_refuse_separators_and_blank() {
        assert!(KgName::new("佳佳").is_ok());
        assert!(KgName::new("").is_err());
        assert!(KgName::new("a、b").is_err());
        assert!(StaffNo::new("T 1").is_err());
        assert!(Hours::from_f64(1.25).is_err());
        assert_eq!(Hours::from_f64(1.5).unwrap().tenths(), 15);
        assert!(Fen::new(-1).is_err());
    }
}
