//! The Chinese words for the codes the reads' documents carry — one vocabulary for the
//! command line's tables and the console's pages.

/// The label of a code of one of the domain's code enums (the code itself if unknown).
pub fn of<T>(
    code: &str,
    parse: fn(&str) -> Result<T, String>,
    label: fn(T) -> &'static str,
) -> String {
    parse(code).map(label).unwrap_or(code).to_owned()
}

/// A kindergarten's category.
pub fn category(code: &str) -> String {
    of(
        code,
        eduledger_domain::values::Category::parse,
        eduledger_domain::values::Category::label,
    )
}

/// 是, or nothing.
pub fn yes(b: bool) -> &'static str {
    if b { "是" } else { "" }
}

/// A member's role in its group (`lead`, `member`).
pub fn member_role(code: &str) -> &'static str {
    match code {
        "lead" => "牵头园",
        "member" => "成员园",
        _ => "",
    }
}

/// A rotation's state (`running`, `ended`, `cancelled`).
pub fn rotation_status(code: &str) -> &'static str {
    match code {
        "running" => "进行中",
        "ended" => "已结束",
        "cancelled" => "已取消",
        _ => "",
    }
}

/// Which way a rotation crosses a group (`in`, `out`, `within`).
pub fn rotation_direction(code: &str) -> &'static str {
    match code {
        "in" => "轮入",
        "out" => "轮出",
        "within" => "集团内",
        _ => "",
    }
}

/// An event's standing in an audit trail.
pub fn event_status(code: &str) -> &'static str {
    match code {
        "effective" => "有效",
        "corrected" => "已更正",
        "retracted" => "已撤销",
        "correction" => "更正",
        "retraction" => "撤销",
        _ => "",
    }
}

/// A semester's joint research (`held`, `not_held`, `in_progress`).
pub fn semester_status(code: &str) -> &'static str {
    match code {
        "held" => "已开展",
        "not_held" => "未开展",
        "in_progress" => "学期未结束",
        _ => "",
    }
}
