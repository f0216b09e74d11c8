//! The console's pages (maud: HTML escaped by construction). Each renders the JSON document
//! a read in `eduledger-query` built — the one the API answers and the command line prints
//! with `--format json`; what a page adds is presentation (a count of the rows it lists, a
//! share drawn as a bar), never a rule.

use std::collections::BTreeMap;

use eduledger_domain::values::{
    Assessment, Category, Date, DocKind, Ownership, Role, RotationMode, Title, TrainingTier,
};
use eduledger_query::{EntityKind, Report};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::chart::{self, Bar, Cell, Lane, Segment};
use super::enc;

/// Who reads, on what date, as known when, on which page.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The principal's name.
    pub principal: String,
    /// Its role's code.
    pub role: String,
    /// Valid time asked for (None: today).
    pub on: Option<String>,
    /// Transaction time asked for (None: everything recorded).
    pub known_at: Option<String>,
    /// The page's path (no query).
    pub path: String,
    /// The year of `on` (or today), for the year pages' links.
    pub year: i32,
    /// An audit page (a trail, an event, the ledger): not a read on a date, so it has no
    /// date control and its read takes no `on` — the reader's date is only carried along to
    /// the next page.
    pub audit: bool,
}

impl Frame {
    /// The query string that keeps the reader's time on another page.
    pub fn qs(&self) -> String {
        let mut parts = vec![];
        if let Some(on) = &self.on {
            parts.push(format!("on={}", enc(on)));
        }
        if let Some(k) = &self.known_at {
            parts.push(format!("known_at={}", enc(k)));
        }
        match parts.is_empty() {
            true => String::new(),
            false => format!("?{}", parts.join("&")),
        }
    }

    /// A link to `path` at the reader's time.
    pub fn link(&self, path: &str) -> String {
        format!("{path}{}", self.qs())
    }
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}
fn n(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}
fn b(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}
fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}
/// A value shown as text: strings as they are, null as nothing, anything else as JSON.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}
use eduledger_query::labels::{self, category, of as label_of, yes};

fn group_href(f: &Frame, name: &str) -> String {
    f.link(&format!("/groups/{}", enc(name)))
}
fn history_href(f: &Frame, kind: &str, id: &str) -> String {
    f.link(&format!("/history/{kind}/{}", enc(id)))
}
fn kindergarten_href(f: &Frame, name: &str) -> String {
    f.link(&format!("/kindergartens/{}", enc(name)))
}
fn teacher_href(f: &Frame, staff_no: &str) -> String {
    f.link(&format!("/teachers/{}", enc(staff_no)))
}
fn event_href(f: &Frame, seq: u64) -> String {
    f.link(&format!("/events/{seq}"))
}

/// The line under the controls: the date read, what was known, the digest vouching for it.
fn provenance(f: &Frame, doc: &Value) -> Markup {
    let head = doc.get("head").unwrap_or(&Value::Null);
    html! {
        p.provenance {
            // (an audit page lists every date: no date to name)
            @if let Some(on) = doc.get("on").and_then(Value::as_str).filter(|_| !f.audit) {
                "日期 " strong { (on) } "；"
            }
            @if let Some(k) = doc.get("known_at").and_then(Value::as_str) {
                "仅含 " strong { (k) } " 前已记录的内容；"
            }
            "账本摘要 " code.digest { (n(head, "seq")) ":" (s(head, "hash")) }
        }
    }
}

fn nav(f: &Frame) -> Markup {
    let here = |p: &str| (f.path == p || (p != "/" && f.path.starts_with(p))).then_some("page");
    let tally = format!("/tally/{}", f.year);
    let compliance = format!("/compliance/{}", f.year);
    html! {
        nav aria-label="主导航" {
            ul {
                li { a href=(f.link("/")) aria-current=[here("/")] { "总览" } }
                li { a href=(f.link(&tally)) aria-current=[here("/tally")] { "积分" } }
                li { a href=(f.link(&compliance)) aria-current=[here("/compliance")] { "合规" } }
                li { a href=(f.link("/ledger")) aria-current=[here("/ledger")] { "账本" } }
            }
        }
    }
}

/// The time controls: valid time (a date picker) and transaction time (a date, a time or
/// `seq:N`); a plain GET form, so it works without JavaScript.
fn controls(f: &Frame, doc: Option<&Value>) -> Markup {
    // the date shown is the one read (today when none was asked for)
    let on =
        f.on.as_deref()
            .or_else(|| doc.and_then(|d| d.get("on")).and_then(Value::as_str))
            .unwrap_or("");
    html! {
        form.time method="get" action=(f.path) aria-label="时间" {
            @if !f.audit {
                label for="on" { "日期" }
                input #on type="date" name="on" value=(on) min="2000-01-01" max="2100-12-31";
            } @else if let Some(on) = &f.on {
                input type="hidden" name="on" value=(on);
            }
            label for="known_at" { "按记录截至" }
            input #known_at type="text" name="known_at" value=(f.known_at.as_deref().unwrap_or(""))
                placeholder="2024-12-31 或 seq:120" aria-describedby="known-help" size="22";
            button type="submit" { "查看" }
            a href=(f.path) { "今天 · 全部记录" }
            small #known-help {
                @if f.audit { "审计记录列出所有日期的事件，不按日期筛选。" }
                @else { "日期：看哪一天的情况（有效时间）。" }
                "按记录截至：只看那时账本已记录的内容（日期、时间或 seq:序号），"
                "用来对照更正之前的说法；留空即账本现在所知的一切。"
            }
        }
    }
}

fn layout(
    f: &Frame,
    title: &str,
    doc: Option<&Value>,
    body: Markup,
    footer: Option<Markup>,
) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head(title, true))
            body {
                a.skip href="#main" { "跳到正文" }
                header.top {
                    div.brand { "青浦区紧密型学前教育集团 · 账本" }
                    (nav(f))
                    div.who {
                        span { (f.principal) "（" (label_of(&f.role, Role::parse, Role::label)) "）" }
                        form method="post" action="/logout" {
                            button type="submit" { "退出登录" }
                        }
                    }
                }
                (controls(f, doc))
                @if let Some(doc) = doc { (provenance(f, doc)) }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
                @if let Some(footer) = footer { (footer) }
            }
        }
    }
}

/// A page's head: its title, the stylesheet, the icon, and the script if it has a use.
fn head(title: &str, script: bool) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · 青浦学前教育集团账本" }
            link rel="stylesheet" href="/assets/console.css";
            link rel="icon" href="/assets/icon.svg" type="image/svg+xml";
            @if script { script src="/assets/console.js" defer {} }
        }
    }
}

/// The login form.
pub fn login(next: &str, trouble: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            (head("登录", false))
            body.login {
                main #main {
                    h1 { "青浦区紧密型学前教育集团 · 账本" }
                    p { "请输入管理员发放的访问令牌（eduledger access grant）。令牌只在本次登录时使用，不会保存在浏览器中。" }
                    @if let Some(t) = trouble {
                        p.trouble role="alert" { (t) }
                    }
                    form method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        label for="token" { "访问令牌" }
                        input #token type="password" name="token" autocomplete="off" required autofocus;
                        button type="submit" { "登录" }
                    }
                }
            }
        }
    }
}

/// A page whose read gave no answer: the sentence, with the controls to ask again.
pub fn trouble(f: &Frame, title: &str, why: &str) -> Markup {
    layout(
        f,
        title,
        None,
        html! { p.trouble role="alert" { (why) } },
        None,
    )
}

/// 总览: the groups on a date, by category, and their way to the 2025 target.
pub fn overview(
    f: &Frame,
    groups: &Report,
    compliance: Option<&Report>,
    first: Option<Date>,
) -> Markup {
    let doc = &groups.json;
    let gs = list(doc, "groups");
    let on = s(doc, "on");
    // every category, in the order the domain lists them (as the command line's table)
    let cats: Vec<&str> = Category::ALL.iter().map(|c| c.code()).collect();
    let legend: Vec<String> = cats.iter().map(|c| category(c)).collect();
    let bars: Vec<Bar> = gs
        .iter()
        .map(|g| {
            let name = s(g, "name");
            let counts = g.get("counts").unwrap_or(&Value::Null);
            Bar {
                label: name.to_owned(),
                href: group_href(f, name),
                segments: cats
                    .iter()
                    .enumerate()
                    .map(|(i, c)| Segment {
                        key: i,
                        value: n(counts, c),
                        href: group_href(f, name),
                    })
                    .collect(),
                note: format!("{} 所", list(g, "members").len()),
            }
        })
        .collect();
    let hq = compliance.map(|c| {
        list(
            c.json.get("compliance").unwrap_or(&Value::Null),
            "high_quality",
        )
        .to_vec()
    });
    // the slider runs from the first founding (known by the day read) to today or the day
    // read, whichever is later: nothing effective after the day read sets its range
    let slider = Date::parse(on).ok().map(|d| {
        let a = first.unwrap_or(d).min(d);
        let last = eduledger_ledger::clock::today().max(d);
        let days = |x: Date| x.naive().signed_duration_since(a.naive()).num_days();
        (a, days(last), days(d))
    });
    let body = html! {
        @if let Some((start, span, at)) = slider {
            div #replay hidden data-start=(start) {
                label for="slider" { "回放：拖动或用方向键逐日查看各集团的组成" }
                input #slider type="range" min="0" max=(span) value=(at) step="1" aria-valuetext=(on);
                output #slider-date for="slider" { (on) }
            }
        }
        @if gs.is_empty() {
            p { "这一天还没有成立的集团。" }
        } @else {
            p { (on) " 共有 " strong { (gs.len()) } " 个集团，成员园 " strong { (gs.iter().map(|g| list(g, "members").len()).sum::<usize>()) } " 所。" }
            h2 { "成员园（按等级）" }
            (chart::stacked_bars("各集团成员园按等级", &bars, &legend, 0))
            table {
                caption { "各集团" }
                thead { tr { th scope="col" { "集团" } th scope="col" { "牵头园" } th scope="col" { "成员园" }
                    @for l in &legend { th scope="col" { (l) } } } }
                tbody {
                    @for g in gs {
                        tr {
                            th scope="row" { a href=(group_href(f, s(g, "name"))) { (s(g, "name")) } }
                            td { (s(g, "lead")) }
                            td.num { (list(g, "members").len()) }
                            @for c in &cats { td.num { (n(g.get("counts").unwrap_or(&Value::Null), c)) } }
                        }
                    }
                }
            }
        }
        @if let Some(hq) = hq.filter(|h| !h.is_empty()) {
            h2 { "公办成员园创建高质量园进度（目标 " (s(&hq[0], "target")) "）" }
            (progress(f, &hq))
        }
    };
    layout(f, "总览", Some(doc), body, None)
}

/// High-quality progress per group: the share of public members designated, out of 100.
fn progress(f: &Frame, hq: &[Value]) -> Markup {
    let bars: Vec<Bar> = hq
        .iter()
        .map(|h| {
            let (done, all) = (n(h, "high_quality"), n(h, "public_members"));
            let pct = if all > 0 { done * 100 / all } else { 0 };
            let name = s(h, "group");
            Bar {
                label: name.to_owned(),
                href: group_href(f, name),
                segments: vec![Segment {
                    key: 2,
                    value: pct,
                    href: group_href(f, name),
                }],
                note: format!(
                    "{done}/{all} 所{}",
                    if b(h, "met") { " · 已达标" } else { "" }
                ),
            }
        })
        .collect();
    html! {
        (chart::stacked_bars("各集团高质量园占公办成员园的比例", &bars, &[], 100))
        p.note { "条形为已认定高质量园占公办成员园的百分比，满格即达标。" }
    }
}

/// 集团: one group on a date, its membership over time, its semesters.
pub fn group(f: &Frame, g: &Report, compliance: Option<&Report>) -> Markup {
    let doc = &g.json;
    let gr = doc.get("group").unwrap_or(&Value::Null);
    let name = s(gr, "name");
    let on = Date::parse(s(doc, "on")).ok();
    // one lane per kindergarten, in order of first joining
    let mut lanes: Vec<Lane> = vec![];
    for m in list(gr, "membership") {
        let k = s(m, "kindergarten");
        let from = Date::parse(s(m, "from")).ok();
        let until = m
            .get("until")
            .and_then(Value::as_str)
            .and_then(|u| Date::parse(u).ok());
        let Some(from) = from else { continue };
        match lanes.iter_mut().find(|l| l.label == k) {
            Some(l) => l.spans.push((from, until)),
            None => lanes.push(Lane {
                label: k.to_owned(),
                href: kindergarten_href(f, k),
                spans: vec![(from, until)],
            }),
        }
    }
    let start = lanes.iter().flat_map(|l| l.spans.iter().map(|s| s.0)).min();
    let semesters: Vec<&Value> = compliance
        .map(|c| {
            list(
                c.json.get("compliance").unwrap_or(&Value::Null),
                "semesters",
            )
        })
        .unwrap_or(&[])
        .iter()
        .filter(|x| s(x, "group") == name)
        .collect();
    let council = gr.get("council").unwrap_or(&Value::Null);
    let body = html! {
        dl.facts {
            dt { "类型" } dd { (if s(gr, "kind") == "alliance" { "联盟" } else { "集团" }) }
            dt { "成立" } dd { (s(gr, "founded")) }
            dt { "牵头园" } dd { (s(gr, "lead")) }
            dt { "成员园" } dd { (list(gr, "members").len()) " 所" }
            dt { "审计轨迹" } dd { a href=(history_href(f, "group", name)) { "该集团的全部记录" } }
        }
        h2 { "成员变动" }
        @if let (Some(start), Some(end)) = (start, on) {
            (chart::timeline(&format!("{name}成员园的加入与离开"), &lanes, start, end))
        }
        h2 { "成员园" }
        table {
            thead { tr { th scope="col" { "园所" } th scope="col" { "角色" } th scope="col" { "等级" } th scope="col" { "性质" } th scope="col" { "暂定名" } th scope="col" { "高质量园" } } }
            tbody {
                @for m in list(gr, "members") {
                    tr {
                        th scope="row" { a href=(kindergarten_href(f, s(m, "name"))) { (s(m, "name")) } }
                        td { (labels::member_role(s(m, "role"))) }
                        td { (category(s(m, "category"))) }
                        td { (label_of(s(m, "ownership"), Ownership::parse, Ownership::label)) }
                        td { (yes(b(m, "provisional"))) }
                        td { (yes(b(m, "high_quality"))) }
                    }
                }
            }
        }
        h2 { "理事会" }
        table {
            thead { tr { th scope="col" { "职务" } th scope="col" { "园所" } th scope="col" { "姓名" } } }
            tbody {
                @if let Some(ch) = council.get("chair").filter(|c| !c.is_null()) {
                    tr { td { "理事长" } td { (s(ch, "kindergarten")) } td { (person(f, ch)) } }
                }
                @for m in list(council, "members") {
                    tr { td { "理事" } td { (s(m, "kindergarten")) } td { (person(f, m)) } }
                }
                @for v in list(council, "vacant") {
                    tr { td { "（园长未记录）" } td { (text(Some(v))) } td {} }
                }
            }
        }
        h2 { "秘书处" }
        (people(f, list(gr, "secretariat"), true))
        h2 { "驻点专家" }
        (people(f, list(gr, "experts"), false))
        h2 { "轮岗（" (s(doc, "on")) " 在岗）" }
        @if list(gr, "rotations").is_empty() { p { "无" } }
        @else {
            table {
                thead { tr { th scope="col" { "编号" } th scope="col" { "方向" } th scope="col" { "教师" } th scope="col" { "编制园" } th scope="col" { "轮入园" } th scope="col" { "开始" } th scope="col" { "最后一天" } } }
                tbody {
                    @for r in list(gr, "rotations") {
                        tr {
                            th scope="row" { a href=(history_href(f, "rotation", s(r, "rotation"))) { (s(r, "rotation")) } }
                            td { (labels::rotation_direction(s(r, "direction"))) }
                            td { a href=(teacher_href(f, s(r, "staff_no"))) { (s(r, "name")) "（" (s(r, "staff_no")) "）" } }
                            td { (s(r, "home")) } td { (s(r, "host")) } td { (s(r, "start")) } td { (s(r, "last_day")) }
                        }
                    }
                }
            }
        }
        h2 { "制度文件" }
        table {
            thead { tr { th scope="col" { "类别" } th scope="col" { "标题" } th scope="col" { "期限" } th scope="col" { "通过日期" } } }
            tbody {
                @for d in list(gr, "documents") {
                    tr { td { (label_of(s(d, "doc_kind"), DocKind::parse, DocKind::label)) } td { (s(d, "title")) } td { (s(d, "period")) } td { (s(d, "on")) } }
                }
            }
        }
        h2 { (f.year) " 年度涉及的学期与联合教研" }
        @if semesters.is_empty() {
            p { "没有可显示的学期。" }
        } @else {
            table {
                thead { tr { th scope="col" { "学期" } th scope="col" { "起止" } th scope="col" { "状态" } th scope="col" { "活动" } } }
                tbody {
                    @for x in &semesters {
                        tr {
                            td { (s(x, "semester")) }
                            td { (s(x, "from")) " — " (s(x, "to")) }
                            td { (labels::semester_status(s(x, "status"))) }
                            td { @for a in list(x, "activities") { a href=(history_href(f, "activity", &text(Some(a)))) { (text(Some(a))) } " " } }
                        }
                    }
                }
            }
        }
    };
    layout(f, name, Some(doc), body, None)
}

fn person(f: &Frame, p: &Value) -> Markup {
    let staff = s(p, "staff_no");
    html! {
        @if staff.is_empty() { (s(p, "name")) }
        @else { a href=(teacher_href(f, staff)) { (s(p, "name")) "（" (staff) "）" } }
    }
}

fn people(f: &Frame, ps: &[Value], staff: bool) -> Markup {
    html! {
        @if ps.is_empty() { p { "无" } }
        @else {
            table {
                thead { tr { th scope="col" { "姓名" } th scope="col" { (if staff { "职务" } else { "单位" }) } th scope="col" { "起" } th scope="col" { "止" } } }
                tbody {
                    @for p in ps {
                        tr { td { (person(f, p)) } td { (s(p, "role")) } td { (s(p, "from")) } td { (s(p, "to")) } }
                    }
                }
            }
        }
    }
}

/// A kindergarten on a date.
pub fn kindergarten(f: &Frame, k: &Report) -> Markup {
    let doc = &k.json;
    let kg = doc.get("kindergarten").unwrap_or(&Value::Null);
    let name = s(kg, "name");
    let group = s(kg, "group");
    let body = html! {
        dl.facts {
            dt { "全称" } dd { (s(kg, "full_name")) }
            dt { "历次名称" } dd { @for n in list(kg, "names") { (text(Some(n))) "　" } }
            dt { "登记" } dd { (s(kg, "registered")) }
            dt { "所属集团" } dd {
                @if group.is_empty() { "（不在集团中）" }
                @else { a href=(group_href(f, group)) { (group) } "（" (labels::member_role(s(kg, "role"))) "）" }
            }
            dt { "等级" } dd { (category(s(kg, "category"))) }
            dt { "性质" } dd { (label_of(s(kg, "ownership"), Ownership::parse, Ownership::label)) }
            dt { "暂定名" } dd { (yes(b(kg, "provisional"))) }
            dt { "高质量园" } dd { (yes(b(kg, "high_quality"))) " " (s(kg, "high_quality_since")) }
            dt { "园长" } dd { @if let Some(p) = kg.get("principal").filter(|p| !p.is_null()) { (person(f, p)) } }
            dt { "审计轨迹" } dd { a href=(history_href(f, "kindergarten", name)) { "该园的全部记录" } }
        }
        h2 { "在编教师" }
        @if list(kg, "staff").is_empty() { p { "无" } }
        @else { p { @for t in list(kg, "staff") { (person(f, t)) "　" } } }
        h2 { "轮入教师（当日在岗）" }
        @if list(kg, "inflow").is_empty() { p { "无" } }
        @else {
            table {
                thead { tr { th scope="col" { "教师" } th scope="col" { "方式" } th scope="col" { "开始" } th scope="col" { "最后一天" } } }
                tbody {
                    @for r in list(kg, "inflow") {
                        tr {
                            td { (person(f, r)) }
                            td { (label_of(s(r, "role"), RotationMode::parse, RotationMode::label)) }
                            td { (s(r, "from")) } td { (s(r, "to")) }
                        }
                    }
                }
            }
        }
    };
    layout(f, &format!("园所 {name}"), Some(doc), body, None)
}

/// The teacher page.
pub fn teacher(f: &Frame, t: &Report) -> Markup {
    let doc = &t.json;
    let te = doc.get("teacher").unwrap_or(&Value::Null);
    let staff = s(te, "staff_no");
    let body = html! {
        dl.facts {
            dt { "姓名" } dd { (s(te, "name")) }
            dt { "工号" } dd { (staff) }
            dt { "编制园" } dd { (s(te, "home")) }
            dt { "轮岗所在园" } dd { (s(te, "host")) }
            dt { "在职" } dd { (if b(te, "in_service") { "是" } else { "否" }) }
            dt { "区级培训学时" } dd { (text(te.get("district_hours"))) }
            dt { "轮岗资格" } dd { (if b(te, "eligible") { "具备" } else { "不具备" }) " " (s(te, "eligible_since")) }
            dt { "审计轨迹" } dd { a href=(history_href(f, "teacher", staff)) { "该教师的全部记录" } }
        }
        h2 { "轮岗" }
        table {
            thead { tr { th scope="col" { "编号" } th scope="col" { "轮入园" } th scope="col" { "方式" } th scope="col" { "开始" } th scope="col" { "计划结束" } th scope="col" { "实际结束" } th scope="col" { "状态" } th scope="col" { "考核" } } }
            tbody {
                @for r in list(te, "rotations") {
                    tr {
                        th scope="row" { a href=(history_href(f, "rotation", s(r, "rotation"))) { (s(r, "rotation")) } }
                        td { (s(r, "host")) }
                        td { (label_of(s(r, "mode"), RotationMode::parse, RotationMode::label)) }
                        td { (s(r, "start")) } td { (s(r, "planned_end")) } td { (s(r, "end")) }
                        td { (labels::rotation_status(s(r, "status"))) }
                        td { (label_of(s(r, "assessment"), Assessment::parse, Assessment::label)) }
                    }
                }
            }
        }
        h2 { "培训" }
        table {
            thead { tr { th scope="col" { "编号" } th scope="col" { "名称" } th scope="col" { "层级" } th scope="col" { "起" } th scope="col" { "止" } th scope="col" { "学时" } th scope="col" { "区级认定" } } }
            tbody {
                @for r in list(te, "trainings") {
                    tr {
                        th scope="row" { a href=(history_href(f, "training", s(r, "training"))) { (s(r, "training")) } }
                        td { (s(r, "title")) } td { (label_of(s(r, "tier"), TrainingTier::parse, TrainingTier::label)) } td { (s(r, "start")) } td { (s(r, "end")) }
                        td.num { (text(r.get("hours"))) } td { (yes(b(r, "district_recognised"))) }
                    }
                }
            }
        }
        h2 { "称号" }
        ul {
            @for t in list(te, "titles") {
                li { (text(t.get(0))) "：" (label_of(&text(t.get(1)), Title::parse, Title::label)) }
            }
        }
    };
    layout(
        f,
        &format!("教师 {} {staff}", s(te, "name")),
        Some(doc),
        body,
        None,
    )
}

/// 积分: the year's tally stacked by rule, the ranks, every point's line and its event.
pub fn tally(f: &Frame, t: &Report) -> Markup {
    let doc = &t.json;
    let year = n(doc, "year");
    let groups = list(doc, "groups");
    let rules = doc.get("rules").unwrap_or(&Value::Null);
    // the legend: every rule in order of first appearance
    let mut legend: Vec<String> = vec![];
    for g in groups {
        for r in list(g, "by_rule") {
            let rule = s(r, "rule").to_owned();
            if !legend.contains(&rule) {
                legend.push(rule);
            }
        }
    }
    let bars: Vec<Bar> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| Bar {
            label: s(g, "group").to_owned(),
            href: format!("#g{i}"),
            segments: list(g, "by_rule")
                .iter()
                .map(|r| Segment {
                    key: legend.iter().position(|l| l == s(r, "rule")).unwrap_or(0),
                    value: n(r, "points"),
                    href: format!("#g{i}-{}", enc(s(r, "rule"))),
                })
                .collect(),
            note: format!("{} 分 · 第 {} 名", n(g, "total"), n(g, "rank")),
        })
        .collect();
    let head = doc.get("head").unwrap_or(&Value::Null);
    let body = html! {
        p {
            "积分办法：" strong { (s(rules, "title")) }
            @if !b(rules, "adopted") { "（未经通过，仅供试算）" }
        }
        (chart::stacked_bars(&format!("{year} 年度各集团积分（按规则分项）"), &bars, &legend, 0))
        table.ranks {
            caption { (year) " 年度排名" }
            thead { tr { th scope="col" { "名次" } th scope="col" { "集团" } th scope="col" { "总分" } th scope="col" { "分项" } } }
            tbody {
                @for (i, g) in groups.iter().enumerate() {
                    tr {
                        td.num { (n(g, "rank")) }
                        th scope="row" { a href=(format!("#g{i}")) { (s(g, "group")) } }
                        td.num { strong { (n(g, "total")) } }
                        td { @for r in list(g, "by_rule") { (s(r, "rule")) " " (n(r, "points")) "　" } }
                    }
                }
            }
        }
        section.explain {
            h2 { "每一分的依据" }
            p.note { "每行是一条计分依据，“证据”链接到记录它的事件（序号、事件编号、录入人、依据文件），事件页再链接到它的更正。" }
            @for (i, g) in groups.iter().enumerate() {
                section id=(format!("g{i}")) {
                    h3 { (s(g, "group")) "：" (n(g, "total")) " 分" }
                    (lines(f, list(g, "lines"), Some(i)))
                }
            }
            @let unattributed = list(doc, "unattributed");
            @if !unattributed.is_empty() {
                section #unattributed {
                    h3 { "未能归属集团的计分" }
                    (lines(f, unattributed, None))
                }
            }
            @if n(doc, "unmatched") > 0 {
                p.note { "另有 " (n(doc, "unmatched")) " 条当年事实不符合任何计分规则。" }
            }
        }
    };
    let footer = html! {
        footer.sign {
            p { strong { (year) " 年度集团积分" } "　日期 " (s(doc, "on"))
                @if let Some(k) = doc.get("known_at").and_then(Value::as_str) { "　按记录截至 " (k) } }
            p { "积分办法 SHA-256 " code { (s(rules, "sha256")) } }
            p { "账本摘要 " code { (n(head, "seq")) ":" (s(head, "hash")) } }
            p.signature { "审核人签字：＿＿＿＿＿＿＿＿　日期：＿＿＿＿＿＿" }
        }
    };
    layout(
        f,
        &format!("{year} 年度积分"),
        Some(doc),
        body,
        Some(footer),
    )
}

fn lines(f: &Frame, ls: &[Value], group: Option<usize>) -> Markup {
    let mut first_of_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for (j, l) in ls.iter().enumerate() {
        first_of_rule.entry(s(l, "rule")).or_insert(j);
    }
    html! {
        table {
            thead { tr { th scope="col" { "日期" } th scope="col" { "规则" } th scope="col" { "事实" } th scope="col" { "对象" } th scope="col" { "分值" } th scope="col" { "封顶" } th scope="col" { "证据" } } }
            tbody {
                @for (j, l) in ls.iter().enumerate() {
                    @let anchor = group.filter(|_| first_of_rule.get(s(l, "rule")) == Some(&j)).map(|i| format!("g{i}-{}", enc(s(l, "rule"))));
                    tr id=[anchor] {
                        td { (s(l, "date")) }
                        td { (s(l, "rule")) }
                        td { (s(l, "fact")) }
                        td { (s(l, "subject")) }
                        td.num { (n(l, "points")) }
                        td { (yes(b(l, "capped"))) }
                        td {
                            @for (k, seq) in list(l, "seqs").iter().enumerate() {
                                @let seq = seq.as_u64().unwrap_or(0);
                                a.evidence href=(event_href(f, seq)) title=(text(list(l, "event_ids").get(k))) { "#" (seq) }
                                " "
                            }
                        }
                    }
                }
            }
        }
    }
}

/// 合规: groups × semesters, expert coverage, documents, long rotations.
pub fn compliance(f: &Frame, year: i32, c: &Report) -> Markup {
    let doc = &c.json;
    let co = doc.get("compliance").unwrap_or(&Value::Null);
    let semesters = list(co, "semesters");
    // the columns in date order (a semester's code sorts by its years and half); each cell
    // in its semester's column, whatever semesters its group has
    let columns: Vec<String> = semesters
        .iter()
        .map(|x| s(x, "semester").to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rows: Vec<(String, String, Vec<Option<Cell>>)> = vec![];
    for x in semesters {
        let (g, sem) = (s(x, "group"), s(x, "semester"));
        if !rows.iter().any(|r| r.0 == g) {
            rows.push((
                g.to_owned(),
                group_href(f, g),
                (0..columns.len()).map(|_| None).collect(),
            ));
        }
        let column = columns.iter().position(|c| c == sem).unwrap_or(0);
        let status = s(x, "status");
        let activities: Vec<String> = list(x, "activities")
            .iter()
            .map(|a| text(Some(a)))
            .collect();
        // the group on the semester's last day, or on the day read if that is earlier
        let day = match (Date::parse(s(x, "to")), Date::parse(s(doc, "on"))) {
            (Ok(to), Ok(on)) => to.min(on).to_string(),
            _ => s(doc, "on").to_owned(),
        };
        let mut at = f.clone();
        at.on = Some(day);
        let href = group_href(&at, g);
        if let Some(slot) = rows
            .iter_mut()
            .find(|r| r.0 == g)
            .and_then(|r| r.2.get_mut(column))
        {
            *slot = Some(Cell {
                class: match status {
                    "held" => "held",
                    "in_progress" => "in_progress",
                    _ => "not_held",
                },
                mark: match status {
                    "held" => "已",
                    "in_progress" => "中",
                    _ => "未",
                },
                title: format!(
                    "{g} {sem}（{} — {}）：{}{}",
                    s(x, "from"),
                    s(x, "to"),
                    labels::semester_status(status),
                    if activities.is_empty() {
                        String::new()
                    } else {
                        format!("：{}", activities.join("、"))
                    }
                ),
                href,
            });
        }
    }
    let body = html! {
        h2 { "各学期联合教研" }
        @if rows.is_empty() { p { "这一年没有集团的学期可显示。" } }
        @else {
            (chart::grid(&format!("{year} 年度各集团各学期联合教研开展情况"), &columns, &rows))
            ul.legend {
                li { span.swatch.held aria-hidden="true" {} "已：已开展" }
                li { span.swatch.in_progress aria-hidden="true" {} "中：学期进行中，尚未开展" }
                li { span.swatch.not_held aria-hidden="true" {} "未：学期已结束，未开展" }
            }
        }
        h2 { "专家指导覆盖" }
        p { "已有专家到园指导 " strong { (n(co, "visited")) } " 所；尚未覆盖 " strong { (list(co, "unvisited").len()) } " 所。" }
        @if !list(co, "unvisited").is_empty() {
            details {
                summary { "尚未覆盖的园所" }
                p { @for k in list(co, "unvisited") { a href=(kindergarten_href(f, &text(Some(k)))) { (text(Some(k))) } "　" } }
            }
        }
        h2 { "制度文件" }
        table {
            thead { tr { th scope="col" { "集团" } th scope="col" { "章程" } th scope="col" { "三年规划" } th scope="col" { "年度计划" } } }
            tbody {
                @for d in list(co, "documents") {
                    tr {
                        th scope="row" { a href=(group_href(f, s(d, "group"))) { (s(d, "group")) } }
                        td { (if b(d, "charter") { "有" } else { "缺" }) }
                        td { (if b(d, "three_year_plan") { "有" } else { "缺" }) }
                        td { (if b(d, "annual_plan") { "有" } else { "缺" }) }
                    }
                }
            }
        }
        h2 { "理事会会议" }
        table {
            thead { tr { th scope="col" { "集团" } th scope="col" { "学期" } th scope="col" { "次数" } } }
            tbody {
                @for m in list(co, "meetings") {
                    tr { td { (s(m, "group")) } td { (s(m, "semester")) } td.num { (n(m, "count")) } }
                }
            }
        }
        h2 { "高质量园进度" }
        @let hq = list(co, "high_quality");
        @if !hq.is_empty() { (progress(f, hq)) }
        h2 { "超过两年的轮岗" }
        @if list(co, "long_rotations").is_empty() { p { "无" } }
        @else {
            table {
                thead { tr { th scope="col" { "轮岗" } th scope="col" { "教师" } th scope="col" { "轮入园" } th scope="col" { "开始" } th scope="col" { "最后一天" } th scope="col" { "时长" } } }
                tbody {
                    @for r in list(co, "long_rotations") {
                        tr {
                            td { a href=(history_href(f, "rotation", s(r, "rotation"))) { (s(r, "rotation")) } }
                            td { a href=(teacher_href(f, s(r, "staff_no"))) { (s(r, "staff_no")) } }
                            td { (s(r, "host")) } td { (s(r, "start")) } td { (s(r, "last_day")) } td { (s(r, "length")) }
                        }
                    }
                }
            }
        }
        @if !list(co, "exceptions").is_empty() {
            h2 { "使用的例外批准" }
            table {
                thead { tr { th scope="col" { "轮岗" } th scope="col" { "批准文件" } th scope="col" { "批准人" } } }
                tbody {
                    @for e in list(co, "exceptions") {
                        tr { td { a href=(history_href(f, "rotation", s(e, "rotation"))) { (s(e, "rotation")) } } td { (s(e, "reference")) } td { (s(e, "approved_by")) } }
                    }
                }
            }
        }
    };
    layout(f, &format!("{year} 年度合规"), Some(doc), body, None)
}

/// One event's row in a trail: who, when, on what authority, and its corrections both ways.
fn event_row(f: &Frame, e: &Value) -> Markup {
    let seq = e.get("seq").and_then(Value::as_u64).unwrap_or(0);
    html! {
        tr id=(format!("e{seq}")) class=(s(e, "status")) {
            td { a href=(event_href(f, seq)) { "#" (seq) } }
            td { (s(e, "recorded_at")) }
            td { (s(e, "event_type")) }
            td { (s(e, "actor")) }
            td { (s(e, "source")) }
            td { (s(e, "reason")) }
            td {
                (labels::event_status(s(e, "status")))
                @if let Some(t) = e.get("targets").and_then(Value::as_u64) {
                    " → " a href=(event_href(f, t)) { "#" (t) }
                }
                @for c in list(e, "corrected_by") {
                    @let c = c.as_u64().unwrap_or(0);
                    " ← " a href=(event_href(f, c)) { "#" (c) }
                }
            }
        }
    }
}

fn trail_head() -> Markup {
    html! {
        thead { tr { th scope="col" { "序号" } th scope="col" { "记录时间" } th scope="col" { "事件" } th scope="col" { "录入人" } th scope="col" { "依据" } th scope="col" { "理由" } th scope="col" { "状态与更正" } } }
    }
}

/// 档案: an entity's audit trail.
pub fn history(f: &Frame, kind: EntityKind, h: &Report) -> Markup {
    let doc = &h.json;
    let entity = doc.get("entity").unwrap_or(&Value::Null);
    let events = list(doc, "events");
    let body = html! {
        p { "共 " (events.len()) " 条记录。“→”指向被更正的原记录，“←”指向更正它的记录。" }
        table.trail {
            (trail_head())
            tbody { @for e in events { (event_row(f, e)) } }
        }
    };
    layout(
        f,
        &format!("档案：{} {}", kind.name(), s(entity, "id")),
        Some(doc),
        body,
        None,
    )
}

/// One event in full.
pub fn event(f: &Frame, seq: u64, log: &Report) -> Markup {
    let doc = &log.json;
    let e = list(doc, "events")
        .first()
        .filter(|e| e.get("seq").and_then(Value::as_u64) == Some(seq));
    let body = match e {
        None => html! { p.trouble role="alert" { "序号 " (seq) " 不在此时账本所记录的范围内。" } },
        Some(e) => html! {
            dl.facts {
                dt { "序号" } dd { (seq) }
                dt { "事件编号" } dd { code { (s(e, "event_id")) } }
                dt { "类型" } dd { (s(e, "event_type")) }
                dt { "录入人" } dd { (s(e, "actor")) }
                dt { "记录时间" } dd { (s(e, "recorded_at")) }
                dt { "依据" } dd { (s(e, "source")) }
                dt { "理由" } dd { (s(e, "reason")) }
                dt { "状态" } dd { (labels::event_status(s(e, "status"))) }
                dt { "哈希" } dd { code.digest { (s(e, "hash")) } }
                @if let Some(t) = e.get("targets").and_then(Value::as_u64) {
                    dt { "更正的原记录" } dd { a href=(event_href(f, t)) { "#" (t) } }
                }
                @if !list(e, "corrected_by").is_empty() {
                    dt { "被以下记录更正" }
                    dd { @for c in list(e, "corrected_by") { @let c = c.as_u64().unwrap_or(0); a href=(event_href(f, c)) { "#" (c) } " " } }
                }
            }
            h2 { "内容" }
            pre.event { (serde_json::to_string_pretty(e.get("event").unwrap_or(&Value::Null)).unwrap_or_default()) }
        },
    };
    layout(f, &format!("事件 #{seq}"), Some(doc), body, None)
}

/// 账本: the digest, a check of any digest, the export, the newest events and the feed.
pub fn ledger(f: &Frame, log: &Report, checked: Option<&(String, Result<bool, String>)>) -> Markup {
    let doc = &log.json;
    let head = doc.get("head").unwrap_or(&Value::Null);
    let head_seq = n(head, "seq");
    let digest = format!("{}:{}", head_seq, s(head, "hash"));
    let events = list(doc, "events");
    let body = html! {
        section {
            h2 { "当前摘要" }
            p { code.digest #head-digest { (digest) } }
            p.note { "摘要是账本最后一条事件的序号和哈希。任何一条事件被改动，之后的哈希都会不同；把它记在审计底稿上，日后即可核对账本是否仍是当时的账本。" }
        }
        section {
            h2 { "核对摘要" }
            form method="get" action="/ledger" aria-label="核对摘要" {
                @if let Some(k) = &f.known_at { input type="hidden" name="known_at" value=(k); }
                @if let Some(on) = &f.on { input type="hidden" name="on" value=(on); }
                label for="digest" { "摘要（序号:哈希）" }
                input #digest type="text" name="digest" size="80" required
                    value=(checked.map(|c| c.0.as_str()).unwrap_or(digest.as_str())) pattern="[0-9]+:[0-9a-fA-F]{64}";
                button type="submit" { "核对" }
            }
            @if let Some((d, verdict)) = checked {
                @match verdict {
                    Ok(true) => p.ok role="status" { "✓ 摘要 " code { (d) } " 是本账本历史的一部分（由前后事件的哈希链担保）。" },
                    Ok(false) => p.trouble role="alert" { "✗ 摘要 " code { (d) } " 不属于本账本的历史：该序号处的哈希不同，或账本尚未记录到该序号。" },
                    Err(why) => p.trouble role="alert" { (why) },
                }
            }
        }
        section {
            h2 { "导出" }
            p {
                a href="/ledger/export" download { "下载全部事件（JSON Lines，与 eduledger export 相同）" }
                @if f.known_at.is_some() { "（整个账本，不受“按记录截至”限制）" }
            }
            p.note { "导出文件可用 eduledger import 在另一台机器上重建账本并用 eduledger verify 完整校验。" }
        }
        section {
            h2 { "最近的事件" }
            @if f.known_at.is_none() {
                p #feed-status.note data-from=(head_seq + 1) hidden { "正在接收新事件……" }
            }
            table.trail {
                (trail_head())
                tbody #feed {
                    @for e in events.iter().rev() { (event_row(f, e)) }
                }
            }
        }
    };
    layout(f, "账本", Some(doc), body, None)
}
