//! The reads, built once — below the command line and the server: each answers one
//! question on a date, as known at a time, as a JSON document (English codes; it starts with
//! the query's `on`, `known_at` and the `head` it was computed on) and the tables people read
//! (Chinese labels). `render` makes them tables, JSON or CSV, the same bytes for the command
//! line and the server (SERVER.md: "three renderings of one answer").

pub mod labels;
pub mod render;
mod report;

use std::sync::Arc;

use eduledger_domain::State;
use eduledger_domain::event::EntityRef;
use eduledger_domain::points::RuleSet;
use eduledger_domain::values::*;
use eduledger_ledger::{AuditEntry, Ledger};
use eduledger_projection::{ViewError, reports, tally as tallying, views};
use eduledger_store::{Digest, GENESIS_HASH};
use serde_json::{Value, json};

pub use crate::report::{Report, Table};

/// Where and when a read looks: the valid date (default today in Shanghai) and the
/// transaction time (`--known-at`: seq:N, an RFC 3339 time, a time or date in Shanghai).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// Valid time (YYYY-MM-DD).
    pub on: Option<String>,
    /// Transaction time.
    pub known_at: Option<String>,
    /// The most bytes of events a log page or an audit trail may carry (`None`: no limit;
    /// the server sets one, `eduledger_ledger::Budget`).
    pub max_bytes: Option<usize>,
    /// How refusals name `on` and `known_at`: as the command line's flags or the API's
    /// parameters.
    pub spelling: Spelling,
}

/// How a refusal names what was asked: `--known-at` on the command line, `known_at` in the API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Spelling {
    /// `--on`, `--known-at`.
    #[default]
    Flags,
    /// `on`, `known_at`.
    Parameters,
}

impl Spelling {
    fn on(self) -> &'static str {
        match self {
            Spelling::Flags => "--on",
            Spelling::Parameters => "on",
        }
    }
    fn known_at(self) -> &'static str {
        match self {
            Spelling::Flags => "--known-at",
            Spelling::Parameters => "known_at",
        }
    }
}

/// Why a read gave no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The question cannot be answered as asked (exit 1 on the command line).
    Refused(String),
    /// The question is malformed (exit 2).
    Usage(String),
    /// The ledger cannot be trusted or read (exit 3).
    Ledger(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Refused(m) | QueryError::Usage(m) | QueryError::Ledger(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for QueryError {}

impl From<eduledger_ledger::LedgerError> for QueryError {
    fn from(e: eduledger_ledger::LedgerError) -> QueryError {
        if e.is_ledger_fault()
            || matches!(
                e,
                eduledger_ledger::LedgerError::Store(eduledger_store::StoreError::Io { .. })
            )
        {
            QueryError::Ledger(e.to_string())
        } else if matches!(e, eduledger_ledger::LedgerError::TooLarge(_)) {
            QueryError::Usage(e.to_string())
        } else {
            QueryError::Refused(e.to_string())
        }
    }
}

impl From<eduledger_store::StoreError> for QueryError {
    fn from(e: eduledger_store::StoreError) -> QueryError {
        QueryError::from(eduledger_ledger::LedgerError::Store(e))
    }
}

impl From<ViewError> for QueryError {
    fn from(e: ViewError) -> QueryError {
        QueryError::Refused(e.to_string())
    }
}

/// A date given as `flag`, or a refusal naming the flag.
pub fn parse_date(flag: &str, text: &str) -> Result<Date, QueryError> {
    Date::parse(text).map_err(|e| QueryError::Refused(format!("{flag}: {e}")))
}

/// Kinds of entity with an audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntityKind {
    /// A group, by name.
    Group,
    /// A kindergarten, by any of its names.
    Kindergarten,
    /// A teacher, by staff number.
    Teacher,
    /// A rotation, by id.
    Rotation,
    /// A training, by id.
    Training,
    /// An activity, by id.
    Activity,
    /// A project, by id.
    Project,
    /// Who acts through the server (`access grant`), by name — not a kindergarten's 园长.
    Principal,
}

impl EntityKind {
    /// Every kind, as the command line and the server name it.
    pub const NAMES: &'static [&'static str] = &[
        "group",
        "kindergarten",
        "teacher",
        "rotation",
        "training",
        "activity",
        "project",
        "access",
    ];

    /// The name [`EntityKind::parse`] reads.
    pub fn name(self) -> &'static str {
        match self {
            EntityKind::Group => "group",
            EntityKind::Kindergarten => "kindergarten",
            EntityKind::Teacher => "teacher",
            EntityKind::Rotation => "rotation",
            EntityKind::Training => "training",
            EntityKind::Activity => "activity",
            EntityKind::Project => "project",
            EntityKind::Principal => "access",
        }
    }

    /// A kind by its name (`history KIND ID`, `/v1/history/{kind}/{id}`).
    pub fn parse(text: &str) -> Result<EntityKind, String> {
        Ok(match text {
            "group" => EntityKind::Group,
            "kindergarten" => EntityKind::Kindergarten,
            "teacher" => EntityKind::Teacher,
            "rotation" => EntityKind::Rotation,
            "training" => EntityKind::Training,
            "activity" => EntityKind::Activity,
            "project" => EntityKind::Project,
            "access" => EntityKind::Principal,
            other => {
                return Err(format!(
                    "{other:?} is not a kind with a history: {}",
                    EntityKind::NAMES.join(", ")
                ));
            }
        })
    }
}

/// A read's bitemporal coordinates, resolved. The states are built when a read first asks
/// for one: an audit trail or the log needs neither (a fold as known at a past cut costs
/// seconds at city scale).
struct Ctx<'a> {
    on: Date,
    known_at: Option<String>,
    head: Digest,
    ledger: &'a Ledger,
    cut: Option<u64>,
    /// The state as known at the cut, every date in it.
    known: std::cell::OnceCell<Arc<State>>,
    /// The same, as it stood on `on`.
    dated: std::cell::OnceCell<Arc<State>>,
}

impl Ctx<'_> {
    /// The state as known at the cut, not yet pruned to `on`: for a view that prunes only
    /// what it reads (the groups).
    fn known(&self) -> Result<&Arc<State>, QueryError> {
        if let Some(s) = self.known.get() {
            return Ok(s);
        }
        let s = self.ledger.state_at(self.cut)?;
        Ok(self.known.get_or_init(|| s))
    }

    /// The world as it stood on `on`: nothing effective later can show (strict valid time).
    fn state(&self) -> Result<&Arc<State>, QueryError> {
        if let Some(s) = self.dated.get() {
            return Ok(s);
        }
        let s = Arc::new(self.known()?.as_of(self.on));
        Ok(self.dated.get_or_init(|| s))
    }
}

/// A cut as written: a sequence, or a moment (microseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// `seq:N`.
    Seq(u64),
    /// A time, or the end of a date, in Shanghai.
    At(i64),
}

/// What a cut's text names (`seq:N`, an RFC 3339 time, a time without an offset — in
/// Shanghai — or a date, meaning its end in Shanghai); `field` names it in the refusal
/// (`--known-at` on the command line, `known_at` in the API).
pub fn parse_known_at(field: &str, text: &str) -> Result<Cut, QueryError> {
    if let Some(n) = text.strip_prefix("seq:") {
        return n.trim().parse::<u64>().map(Cut::Seq).map_err(|_| {
            QueryError::Refused(format!(
                "{field}: {text:?} is not seq:N with a whole number N"
            ))
        });
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        Ok(Cut::At(t.timestamp_micros()))
    } else if let Some(us) = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .and_then(eduledger_ledger::clock::local_us)
    {
        // a time without an offset is the bureau's (Asia/Shanghai)
        Ok(Cut::At(us))
    } else if let Ok(d) = Date::parse(text) {
        // a date means "by the end of that day" in Shanghai
        Ok(Cut::At(eduledger_ledger::clock::end_of_day_us(d)))
    } else if let Some(us) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_micro_opt(23, 59, 59, 999_999))
        .map(|t| t.and_utc().timestamp_micros() - SHANGHAI_OFFSET_US)
    {
        // a real date beyond the years the ledger's dates speak of: the end of that day in
        // Shanghai all the same (before every record, or not yet passed)
        Ok(Cut::At(us))
    } else {
        Err(QueryError::Refused(format!(
            "{field}: {text:?} is not a time (2024-03-01T12:00:00Z), a date (2024-03-01) or seq:N"
        )))
    }
}

/// Shanghai's offset from UTC (no daylight saving since 1991).
const SHANGHAI_OFFSET_US: i64 = 8 * 3600 * 1_000_000;

/// The sequence a `--known-at` names ([`parse_known_at`]). A cut must lie in the past and
/// within the log: one after now, or past the head, would answer differently as the ledger
/// grows, so it is no reproducible cut and is refused.
pub fn resolve_known_at(
    store: &eduledger_store::Store,
    field: &str,
    text: &str,
) -> Result<u64, QueryError> {
    let head = store.head()?.seq;
    match parse_known_at(field, text)? {
        Cut::Seq(n) if n > head => Err(QueryError::Refused(format!(
            "{field}: {text:?} is past the head (seq:{head}); a cut names what had been recorded, so it lies within the log"
        ))),
        Cut::Seq(n) => Ok(n),
        // (the next record is stamped after both now and the last record's time, which
        // the store keeps increasing: a cut up to the later of them cannot move)
        Cut::At(us) if us > passed_us(store, head)? => Err(QueryError::Refused(format!(
            "{field}: {text:?} has not yet passed; a cut names what had been recorded by a time that has passed (what is recorded later would change its answer)"
        ))),
        Cut::At(us) => Ok(store.seq_at_time(us)?),
    }
}

/// The latest time no later record can be stamped at or before.
fn passed_us(store: &eduledger_store::Store, head: u64) -> Result<i64, QueryError> {
    let last = match head {
        0 => i64::MIN,
        n => store.get(n)?.map_or(i64::MIN, |e| e.recorded_at_us),
    };
    Ok(store.now_us().max(last))
}

fn ctx<'a>(ledger: &'a Ledger, read: &Query) -> Result<Ctx<'a>, QueryError> {
    let on = match &read.on {
        Some(t) => parse_date(read.spelling.on(), t)?,
        None => eduledger_ledger::clock::today(),
    };
    let head_now = ledger.head()?;
    let cut = match &read.known_at {
        Some(t) => {
            Some(resolve_known_at(ledger.store(), read.spelling.known_at(), t)?.min(head_now.seq))
        }
        None => None,
    };
    let head = match cut {
        None => head_now,
        Some(0) => Digest {
            seq: 0,
            hash: GENESIS_HASH,
        },
        Some(c) => Digest {
            seq: c,
            hash: ledger
                .store()
                .get(c)?
                .map(|e| e.hash)
                .unwrap_or(GENESIS_HASH),
        },
    };
    Ok(Ctx {
        on,
        known_at: read.known_at.clone(),
        head,
        ledger,
        cut,
        known: std::cell::OnceCell::new(),
        dated: std::cell::OnceCell::new(),
    })
}

fn header(c: &Ctx) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("on".into(), json!(c.on));
    m.insert("known_at".into(), json!(c.known_at));
    m.insert(
        "head".into(),
        json!({"seq": c.head.seq, "hash": c.head.hash_hex()}),
    );
    m
}

fn preface(c: &Ctx) -> Vec<String> {
    let known = c
        .known_at
        .as_ref()
        .map(|k| format!("，仅含 {k} 前已记录的内容"))
        .unwrap_or_default();
    vec![format!("日期 {}{known}；账本摘要 {}", c.on, c.head)]
}

use labels::{category, of as label};
fn yes(b: bool) -> String {
    labels::yes(b).into()
}
fn opt<T: std::fmt::Display>(v: &Option<T>) -> String {
    v.as_ref().map(|x| x.to_string()).unwrap_or_default()
}

fn finish(
    mut doc: serde_json::Map<String, Value>,
    key: &str,
    data: Value,
    tables: Vec<Table>,
    pre: Vec<String>,
) -> Result<Report, QueryError> {
    doc.insert(key.into(), data);
    Ok(Report {
        json: Value::Object(doc),
        tables,
        preface: pre,
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The first group's founding as known at the read's cut — if it is on or before `on`: a
/// founding after `on` is a fact that day does not know (strict valid time). The console's
/// replay slider starts there.
pub fn first_founding(ledger: &Ledger, read: &Query) -> Result<Option<Date>, QueryError> {
    let c = ctx(ledger, read)?;
    let first = c.known()?.groups().values().map(|g| g.founded).min();
    Ok(first.filter(|f| *f <= c.on))
}

/// `eduledger groups`.
pub fn groups(ledger: &Ledger, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let gs = views::groups(c.known()?, c.on);
    let cats = Category::ALL;
    let mut headers: Vec<&str> = vec!["集团名称", "类型", "牵头园", "成员"];
    headers.extend(cats.iter().map(|c| c.label()));
    headers.extend(["民办", "高质量"]);
    let mut t = Table::new("", &headers);
    for g in &gs {
        let mut row = vec![
            g.name.clone(),
            label(g.kind, GroupKind::parse, GroupKind::label),
            opt(&g.lead),
            g.members.len().to_string(),
        ];
        row.extend(cats.iter().map(|cat| {
            g.counts
                .get(cat.code())
                .map(|n| n.to_string())
                .unwrap_or_default()
        }));
        row.push(
            g.members
                .iter()
                .filter(|m| m.ownership == "private")
                .count()
                .to_string(),
        );
        row.push(
            g.members
                .iter()
                .filter(|m| m.high_quality)
                .count()
                .to_string(),
        );
        t.row(row);
    }
    finish(header(&c), "groups", to_json(&gs), vec![t], preface(&c))
}

/// `eduledger access list`: the grants in force on the date (tokens are never recorded;
/// their SHA-256 is shown so an auditor can match a token without holding it).
pub fn access(ledger: &Ledger, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let mut t = Table::new("", &["名称", "角色", "集团", "起", "令牌 SHA-256"]);
    let mut rows = vec![];
    for (name, grants) in c.state()?.principals() {
        for g in grants.iter().filter(|g| g.in_force(c.on)) {
            t.row(vec![
                name.to_string(),
                g.role.label().to_string(),
                if g.groups.is_empty() {
                    "全部".into()
                } else {
                    g.groups
                        .iter()
                        .map(|x| x.to_string())
                        .collect::<Vec<_>>()
                        .join("，")
                },
                g.from.to_string(),
                g.token_sha256.as_str().to_owned(),
            ]);
            rows.push(serde_json::json!({
                "principal": name.to_string(),
                "role": g.role.code(),
                "groups": g.groups.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                "from": g.from,
                "token_sha256": g.token_sha256.as_str(),
                "seq": g.origin.seq,
            }));
        }
    }
    finish(
        header(&c),
        "access",
        serde_json::Value::Array(rows),
        vec![t],
        preface(&c),
    )
}

/// `eduledger group NAME`.
pub fn group(ledger: &Ledger, name: &str, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let g = views::group(c.state()?, name, c.on)?;
    let mut members = Table::new(
        format!(
            "{}（{}，{} 成立）牵头园：{}",
            g.name,
            label(g.kind, GroupKind::parse, GroupKind::label),
            g.founded,
            opt(&g.lead)
        ),
        &["园所", "角色", "等级", "性质", "暂定名", "高质量"],
    );
    for m in &g.members {
        members.row(vec![
            m.name.clone(),
            labels::member_role(m.role).into(),
            category(m.category),
            label(m.ownership, Ownership::parse, Ownership::label),
            yes(m.provisional),
            yes(m.high_quality),
        ]);
    }
    let mut council = Table::new("理事会", &["职务", "园所", "工号", "姓名"]);
    if let Some(ch) = &g.council.chair {
        council.row(vec![
            "理事长".into(),
            opt(&ch.kindergarten),
            ch.staff_no.clone(),
            opt(&ch.name),
        ]);
    }
    for m in &g.council.members {
        council.row(vec![
            "理事".into(),
            opt(&m.kindergarten),
            m.staff_no.clone(),
            opt(&m.name),
        ]);
    }
    for v in &g.council.vacant {
        council.row(vec![
            "（园长未记录）".into(),
            v.clone(),
            String::new(),
            String::new(),
        ]);
    }
    let mut sec = Table::new("秘书处", &["工号", "姓名", "职务", "聘期起", "聘期止"]);
    for p in &g.secretariat {
        sec.row(vec![
            p.staff_no.clone(),
            opt(&p.name),
            opt(&p.role),
            opt(&p.from),
            opt(&p.to),
        ]);
    }
    let mut experts = Table::new("驻点专家", &["姓名", "单位", "起", "止"]);
    for p in &g.experts {
        experts.row(vec![opt(&p.name), opt(&p.role), opt(&p.from), opt(&p.to)]);
    }
    let mut docs = Table::new("制度文件", &["类别", "标题", "期限", "通过日期"]);
    for d in &g.documents {
        docs.row(vec![
            label(d.doc_kind, DocKind::parse, DocKind::label),
            d.title.clone(),
            opt(&d.period),
            d.on.to_string(),
        ]);
    }
    let mut spans = Table::new("成员变动", &["园所", "加入", "离开"]);
    for m in &g.membership {
        spans.row(vec![
            m.kindergarten.clone(),
            m.from.to_string(),
            opt(&m.until),
        ]);
    }
    let mut rotations = Table::new(
        "轮岗（当日在岗）",
        &[
            "编号",
            "方向",
            "工号",
            "姓名",
            "编制园",
            "轮入园",
            "开始",
            "最后一天",
        ],
    );
    for r in &g.rotations {
        rotations.row(vec![
            r.rotation.clone(),
            labels::rotation_direction(r.direction).into(),
            r.staff_no.clone(),
            opt(&r.name),
            opt(&r.home),
            r.host.clone(),
            r.start.to_string(),
            opt(&r.last_day),
        ]);
    }
    finish(
        header(&c),
        "group",
        to_json(&g),
        vec![members, council, sec, experts, docs, spans, rotations],
        preface(&c),
    )
}

/// `eduledger kindergarten NAME`.
pub fn kindergarten(ledger: &Ledger, name: &str, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let k = views::kindergarten(c.state()?, name, c.on)?;
    let mut t = Table::new(k.name.clone(), &["项目", "内容"]);
    t.row(vec!["曾用名".into(), k.names.join("、")]);
    t.row(vec!["登记日期".into(), k.registered.to_string()]);
    t.row(vec!["所属集团".into(), opt(&k.group)]);
    t.row(vec![
        "角色".into(),
        labels::member_role(k.role.unwrap_or("")).into(),
    ]);
    t.row(vec!["等级".into(), category(k.category)]);
    t.row(vec![
        "性质".into(),
        label(k.ownership, Ownership::parse, Ownership::label),
    ]);
    t.row(vec!["暂定名".into(), yes(k.provisional)]);
    t.row(vec![
        "高质量幼儿园".into(),
        k.high_quality_since
            .map(|d| format!("是（{d} 起）"))
            .unwrap_or_default(),
    ]);
    t.row(vec![
        "园长".into(),
        k.principal
            .as_ref()
            .map(|p| format!("{} {}", p.staff_no, opt(&p.name)))
            .unwrap_or_default(),
    ]);
    let mut staff = Table::new("在编教职工", &["工号", "姓名"]);
    for p in &k.staff {
        staff.row(vec![p.staff_no.clone(), opt(&p.name)]);
    }
    let mut inflow = Table::new("流入教师", &["工号", "姓名", "方式", "起", "止"]);
    for p in &k.inflow {
        inflow.row(vec![
            p.staff_no.clone(),
            opt(&p.name),
            p.role
                .as_deref()
                .map(|m| label(m, RotationMode::parse, RotationMode::label))
                .unwrap_or_default(),
            opt(&p.from),
            opt(&p.to),
        ]);
    }
    finish(
        header(&c),
        "kindergarten",
        to_json(&k),
        vec![t, staff, inflow],
        preface(&c),
    )
}

/// `eduledger teacher STAFF_NO`.
pub fn teacher(ledger: &Ledger, staff_no: &str, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let t = views::teacher(c.state()?, staff_no, c.on)?;
    let mut kv = Table::new(format!("{} {}", t.staff_no, t.name), &["项目", "内容"]);
    kv.row(vec!["编制所在园".into(), opt(&t.home)]);
    kv.row(vec!["当前流入园".into(), opt(&t.host)]);
    kv.row(vec!["在职".into(), yes(t.in_service)]);
    kv.row(vec![
        "称号".into(),
        t.titles
            .iter()
            .map(|(d, code)| format!("{}（{d}）", label(code, Title::parse, Title::label)))
            .collect::<Vec<_>>()
            .join("、"),
    ]);
    kv.row(vec!["区级认定学时".into(), t.district_hours.clone()]);
    kv.row(vec![
        "人员保障倾斜资格".into(),
        t.eligible_since
            .map(|d| format!("是（{d} 起）"))
            .unwrap_or_else(|| "否".into()),
    ]);
    let mut rot = Table::new(
        "流动记录",
        &[
            "编号",
            "流入园",
            "方式",
            "开始",
            "计划结束",
            "状态",
            "结束",
            "考核",
            "特批",
        ],
    );
    for r in &t.rotations {
        rot.row(vec![
            r.rotation.clone(),
            r.host.clone(),
            label(r.mode, RotationMode::parse, RotationMode::label),
            r.start.to_string(),
            r.planned_end.to_string(),
            labels::rotation_status(r.status).into(),
            opt(&r.end),
            r.assessment
                .map(|a| label(a, Assessment::parse, Assessment::label))
                .unwrap_or_default(),
            yes(r.exception),
        ]);
    }
    let mut tr = Table::new(
        "培训记录",
        &["编号", "名称", "层级", "开始", "结束", "学时", "区级认定"],
    );
    for x in &t.trainings {
        tr.row(vec![
            x.training.clone(),
            x.title.clone(),
            label(x.tier, TrainingTier::parse, TrainingTier::label),
            x.start.to_string(),
            x.end.to_string(),
            x.hours.clone(),
            yes(x.district_recognised),
        ]);
    }
    finish(
        header(&c),
        "teacher",
        to_json(&t),
        vec![kv, rot, tr],
        preface(&c),
    )
}

fn audit_table(title: String, entries: &[AuditEntry]) -> Table {
    let mut t = Table::new(
        title,
        &[
            "序号",
            "记录时间",
            "记录人",
            "事件",
            "状态",
            "依据",
            "说明",
            "关联",
        ],
    );
    for e in entries {
        let status = labels::event_status(e.status);
        let link = match (e.targets, e.corrected_by.is_empty()) {
            (Some(t), _) => format!("→ #{t}"),
            (None, false) => format!(
                "← {}",
                e.corrected_by
                    .iter()
                    .map(|s| format!("#{s}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            _ => String::new(),
        };
        t.row(vec![
            e.seq.to_string(),
            e.recorded_at
                .get(..19)
                .unwrap_or(&e.recorded_at)
                .replace('T', " "),
            e.actor.clone(),
            e.event_type.clone(),
            status.into(),
            opt(&e.source),
            opt(&e.reason),
            link,
        ]);
    }
    t
}

/// Audit trails list every event as recorded, whatever its valid time: a date to read "on"
/// would only mislead, so it is refused rather than ignored.
fn refuse_on(command: &str, read: &Query) -> Result<(), QueryError> {
    if read.on.is_some() {
        return Err(QueryError::Usage(format!(
            "{command} lists every event as it was recorded, whatever its date, so --on does not apply; use --known-at for what had been recorded by a time"
        )));
    }
    Ok(())
}

/// The header of an audit trail: no `on` (it is not a read on a date).
fn audit_header(c: &Ctx) -> serde_json::Map<String, Value> {
    let mut m = header(c);
    m.insert("on".into(), Value::Null);
    m
}

/// `eduledger history KIND ID`.
pub fn history(
    ledger: &Ledger,
    kind: EntityKind,
    id: &str,
    read: &Query,
) -> Result<Report, QueryError> {
    refuse_on("history", read)?;
    let c = ctx(ledger, read)?;
    let bad = |e: String| QueryError::Refused(e);
    let entity = match kind {
        EntityKind::Group => {
            EntityRef::Group(views::find_group(ledger.state(), id).map(|g| g.name.clone())?)
        }
        EntityKind::Kindergarten => {
            EntityRef::Kindergarten(views::find_kindergarten(ledger.state(), id)?.id)
        }
        EntityKind::Teacher => EntityRef::Teacher(StaffNo::new(id).map_err(bad)?),
        EntityKind::Rotation => EntityRef::Rotation(RecordId::new(id).map_err(bad)?),
        EntityKind::Training => EntityRef::Training(RecordId::new(id).map_err(bad)?),
        EntityKind::Activity => EntityRef::Activity(RecordId::new(id).map_err(bad)?),
        EntityKind::Project => EntityRef::Project(RecordId::new(id).map_err(bad)?),
        EntityKind::Principal => {
            EntityRef::Principal(eduledger_domain::values::PrincipalName::new(id).map_err(bad)?)
        }
    };
    let cut = if c.known_at.is_some() {
        Some(c.head.seq)
    } else {
        None
    };
    let entries = ledger.audit_within(&entity, cut, read.max_bytes.unwrap_or(usize::MAX))?;
    if entries.is_empty() {
        return Err(QueryError::Refused(
            format!("no recorded event concerns {kind:?} {id:?}").to_lowercase(),
        ));
    }
    let mut doc = audit_header(&c);
    doc.insert("entity".into(), to_json(&entity));
    finish(
        doc,
        "events",
        to_json(&entries),
        vec![audit_table(format!("{id} 的记录"), &entries)],
        vec![format!("账本摘要 {}", c.head)],
    )
}

/// `eduledger log`.
pub fn log(ledger: &Ledger, from: u64, limit: usize, read: &Query) -> Result<Report, QueryError> {
    refuse_on("log", read)?;
    let c = ctx(ledger, read)?;
    let cut = if c.known_at.is_some() {
        Some(c.head.seq)
    } else {
        None
    };
    let entries = ledger.log_within(from, limit, cut, read.max_bytes.unwrap_or(usize::MAX))?;
    finish(
        header(&c),
        "events",
        to_json(&entries),
        vec![audit_table(String::new(), &entries)],
        vec![format!("账本摘要 {}", c.head)],
    )
}

/// `eduledger tally`.
pub fn tally(
    ledger: &Ledger,
    year: i32,
    explain: bool,
    rules_text: Option<String>,
    read: &Query,
) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let (text, adopted) = match rules_text {
        Some(text) => (text, false),
        None => {
            let a = c
                .state()?
                .rules()
                .get(&year)
                .and_then(|v| v.last())
                .ok_or(ViewError::NoRules { year })?;
            (a.rules.clone(), true)
        }
    };
    let rules = RuleSet::parse(&text).map_err(|e| QueryError::Refused(e.to_string()))?;
    if rules.year != year {
        return Err(QueryError::Refused(format!(
            "the rules are for {}, not {year}",
            rules.year
        )));
    }
    // The event ids named come from envelopes a snapshot may have let the fold skip: each is
    // vouched for by the chain first, and the first failure fails the read.
    let failure = std::cell::RefCell::new(None);
    let event_id = |seq: u64| {
        let found = ledger
            .vouch([seq])
            .and_then(|_| Ok(ledger.store().get(seq)?));
        match found {
            Ok(env) => env.map(|e| e.event_id.to_string()),
            Err(e) => {
                failure.borrow_mut().get_or_insert(e);
                None
            }
        }
    };
    let t = tallying::tally(c.state()?, &rules, year, c.on, explain, &event_id);
    if let Some(e) = failure.into_inner() {
        return Err(e.into());
    }
    let sha = eduledger_domain::points::sha256_hex(&text);
    let mut doc = serde_json::Map::new();
    doc.insert("year".into(), json!(year));
    doc.insert(
        "rules".into(),
        json!({"year": rules.year, "sha256": sha, "title": rules.title, "adopted": adopted}),
    );
    doc.insert(
        "head".into(),
        json!({"seq": c.head.seq, "hash": c.head.hash_hex()}),
    );
    doc.insert("known_at".into(), json!(c.known_at));
    // the tally on a date counts only facts dated by then: the date is part of the answer
    doc.insert("on".into(), json!(c.on));
    doc.insert("unattributed".into(), to_json(&t.unattributed));
    doc.insert("unmatched".into(), json!(t.unmatched));
    let mut main = Table::new("", &["名次", "集团", "总分", "分项"]);
    for g in &t.groups {
        main.row(vec![
            g.rank.to_string(),
            g.group.clone(),
            g.total.to_string(),
            g.by_rule
                .iter()
                .map(|r| format!("{} {}", r.rule, r.points))
                .collect::<Vec<_>>()
                .join("，"),
        ]);
    }
    let mut tables = vec![main];
    if explain {
        let mut lines = Table::new(
            "明细",
            &["集团", "规则", "事实", "日期", "得分", "封顶", "序号"],
        );
        for g in &t.groups {
            for l in g.lines.iter().flatten() {
                lines.row(vec![
                    g.group.clone(),
                    l.rule.clone(),
                    l.subject.clone(),
                    l.date.to_string(),
                    l.points.to_string(),
                    yes(l.capped),
                    l.seqs
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(" "),
                ]);
            }
        }
        tables.push(lines);
    }
    let title = format!(
        "{year} 年度集团积分（规则{}：{}，sha256 {}…）；账本摘要 {}{}",
        if adopted {
            "已采纳"
        } else {
            "预览，未采纳"
        },
        rules.title.clone().unwrap_or_default(),
        &sha[..12],
        c.head,
        c.known_at
            .as_ref()
            .map(|k| format!("，仅含 {k} 前已记录的内容"))
            .unwrap_or_default()
    );
    finish(doc, "groups", to_json(&t.groups), tables, vec![title])
}

/// `eduledger report compliance`.
pub fn compliance(ledger: &Ledger, year: i32, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let r = reports::compliance(c.state()?, year, c.on);
    let mut sem = Table::new(
        format!("{year} 年度每学期集团教研活动（集中主题教研、课堂交流展示、评比）"),
        &["集团", "学期", "起", "止", "状态", "活动"],
    );
    for s in &r.semesters {
        sem.row(vec![
            s.group.clone(),
            s.semester.clone(),
            s.from.to_string(),
            s.to.to_string(),
            labels::semester_status(s.status).into(),
            s.activities.join("、"),
        ]);
    }
    let mut unv = Table::new(
        format!(
            "{year} 年未获调研指导的园所（应全覆盖；已覆盖 {} 所）",
            r.visited
        ),
        &["园所"],
    );
    for k in &r.unvisited {
        unv.row(vec![k.clone()]);
    }
    let mut long = Table::new(
        "超过两年的流动",
        &["编号", "工号", "流入园", "开始", "结束", "时长", "特批"],
    );
    for l in &r.long_rotations {
        long.row(vec![
            l.rotation.clone(),
            l.staff_no.clone(),
            l.host.clone(),
            l.start.to_string(),
            l.last_day.to_string(),
            l.length.clone(),
            l.exception
                .clone()
                .unwrap_or_else(|| "无（违反两年上限）".into()),
        ]);
    }
    let mut hq = Table::new(
        "公办园高质量创建进度（目标 2025-12-31 全部创建）",
        &["集团", "公办园", "已创建", "未创建"],
    );
    for h in &r.high_quality {
        hq.row(vec![
            h.group.clone(),
            h.public_members.to_string(),
            h.high_quality.to_string(),
            h.remaining.join("、"),
        ]);
    }
    let mut meet = Table::new("理事会/工作例会（每学期）", &["集团", "学期", "次数"]);
    for m in &r.meetings {
        meet.row(vec![
            m.group.clone(),
            m.semester.clone(),
            m.count.to_string(),
        ]);
    }
    let mut docs = Table::new(
        "集团章程与规划",
        &["集团", "章程", &format!("{year} 年度计划"), "三年发展规划"],
    );
    for d in &r.documents {
        docs.row(vec![
            d.group.clone(),
            yes(d.charter),
            yes(d.annual_plan),
            yes(d.three_year_plan),
        ]);
    }
    let mut exc = Table::new("经批准超两年的轮岗", &["轮岗", "批准文号", "批准单位"]);
    for e in &r.exceptions {
        exc.row(vec![
            e.rotation.clone(),
            e.reference.clone(),
            e.approved_by.clone(),
        ]);
    }
    let mut doc = header(&c);
    doc.insert("year".into(), json!(year));
    finish(
        doc,
        "compliance",
        to_json(&r),
        vec![sem, unv, long, hq, meet, docs, exc],
        preface(&c),
    )
}

/// `eduledger report rewards`.
pub fn rewards(ledger: &Ledger, year: i32, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let r = reports::rewards(c.state()?, year, c.on);
    let mut t = Table::new(
        format!("{year} 年终绩效奖励名单（经费保障）"),
        &["依据", "集团", "园所", "工号", "姓名", "起", "止"],
    );
    for e in &r {
        let basis = match e.basis {
            "lead_principal" => "牵头园园长",
            "secretariat" => "理事会秘书处",
            "high_quality_principal" => "创建高质量园 园长",
            "high_quality_staff" => "创建高质量园 教职工",
            _ => "创建高质量园 流入教师",
        };
        t.row(vec![
            basis.into(),
            opt(&e.group),
            opt(&e.kindergarten),
            e.staff_no.clone(),
            opt(&e.name),
            e.from.to_string(),
            e.to.to_string(),
        ]);
    }
    let mut doc = header(&c);
    doc.insert("year".into(), json!(year));
    finish(doc, "rewards", to_json(&r), vec![t], preface(&c))
}

/// `eduledger report balance`.
pub fn balance(ledger: &Ledger, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let b = reports::balance(c.state()?, c.on);
    // columns in the categories' own order (市示范 … 未定), those present
    let cats: Vec<Category> = Category::ALL
        .iter()
        .copied()
        .filter(|c| b.spread.contains_key(c.code()))
        .collect();
    let mut headers = vec!["集团"];
    headers.extend(cats.iter().map(|c| c.label()));
    let mut t = Table::new(format!("{} 各集团园所类别分布（相对均衡）", c.on), &headers);
    for g in &b.groups {
        let mut row = vec![g.group.clone()];
        row.extend(
            cats.iter()
                .map(|c| g.categories.get(c.code()).copied().unwrap_or(0).to_string()),
        );
        t.row(row);
    }
    // the spread is its own table, so the first (what CSV carries) holds groups only
    let mut sp = Table::new("各类别差值（最多−最少）", &["类别", "差值"]);
    for c in &cats {
        sp.row(vec![c.label().to_owned(), b.spread[c.code()].to_string()]);
    }
    let mut doc = header(&c);
    doc.insert("spread".into(), to_json(&b.spread));
    finish(doc, "groups", to_json(&b.groups), vec![t, sp], preface(&c))
}

/// `eduledger report funds`.
pub fn funds(ledger: &Ledger, year: i32, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let f = reports::funds(c.state()?, year, c.on);
    let yuan = |fen: i64| format!("{}.{:02}", fen / 100, (fen % 100).abs());
    let mut t = Table::new(
        format!("{year} 年度专项经费（元）"),
        &["集团", "用途", "已批准", "已完成", "已撤销"],
    );
    // totals in their own table, so the first (what CSV carries) sums without double counting
    let mut totals = Table::new("合计（已批准，元）", &["集团", "已批准"]);
    for g in &f.groups {
        for u in &g.uses {
            t.row(vec![
                g.group.clone(),
                label(u.use_, ProjectKind::parse, ProjectKind::label),
                yuan(u.approved_fen),
                yuan(u.completed_fen),
                yuan(u.cancelled_fen),
            ]);
        }
        totals.row(vec![g.group.clone(), yuan(g.total_approved_fen)]);
    }
    totals.row(vec!["全区".into(), yuan(f.total_approved_fen)]);
    let mut doc = header(&c);
    doc.insert("year".into(), json!(year));
    doc.insert("total_approved_fen".into(), json!(f.total_approved_fen));
    finish(
        doc,
        "groups",
        to_json(&f.groups),
        vec![t, totals],
        preface(&c),
    )
}

/// `eduledger report rotations`.
pub fn rotations(ledger: &Ledger, year: i32, read: &Query) -> Result<Report, QueryError> {
    let c = ctx(ledger, read)?;
    let rows = reports::rotations(c.state()?, year, c.on);
    let mut t = Table::new(
        format!("{year} 年度交流轮岗名单（提任干部参考）"),
        &[
            "轮岗",
            "工号",
            "姓名",
            "编制园",
            "流入园",
            "方式",
            "开始",
            "计划结束",
            "结束",
            "考核",
            "例外批准",
        ],
    );
    for r in &rows {
        t.row(vec![
            r.rotation.clone(),
            r.staff_no.clone(),
            opt(&r.name),
            opt(&r.home),
            r.host.clone(),
            label(r.mode, RotationMode::parse, RotationMode::label),
            r.start.to_string(),
            r.planned_end.to_string(),
            r.end.map(|d| d.to_string()).unwrap_or_default(),
            r.assessment
                .map(|a| label(a, Assessment::parse, Assessment::label))
                .unwrap_or_default(),
            opt(&r.exception),
        ]);
    }
    let mut doc = header(&c);
    doc.insert("year".into(), json!(year));
    finish(doc, "rotations", to_json(&rows), vec![t], preface(&c))
}
