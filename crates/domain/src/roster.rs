//! The 2023 roster table (the seed's 成员校一览表) → ordinary commands.
//!
//! Format: a header row (集团名称, 牵头园, 一级园, 二级园, 新建园 separated by tabs), then one row per group, tab-
//! separated, names within a cell separated by `、`. `（民办）` marks a private kindergarten,
//! `（暂定名）` a provisional name. A lead listed again in a column is one kindergarten, with
//! that column's category; a lead listed nowhere else is `unspecified`.

use std::collections::BTreeMap;

use crate::command::*;
use crate::values::*;

/// The header the table must start with.
pub const HEADER: [&str; 5] = ["集团名称", "牵头园", "一级园", "二级园", "新建园"];
const COLUMNS: [Category; 3] = [
    Category::FirstClass,
    Category::SecondClass,
    Category::NewBuilt,
];

/// A roster line that does not fit the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("roster line {line}: {reason}")]
pub struct RosterError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

#[derive(Debug, Clone)]
struct Entry {
    name: KgName,
    ownership: Ownership,
    provisional: bool,
}

fn parse_cell_name(raw: &str, line: usize) -> Result<Entry, RosterError> {
    let mut text = raw.trim().to_string();
    let mut ownership = Ownership::Public;
    let mut provisional = false;
    loop {
        if let Some(rest) = text
            .strip_suffix("（民办）")
            .or_else(|| text.strip_suffix("(民办)"))
        {
            ownership = Ownership::Private;
            text = rest.trim_end().to_string();
        } else if let Some(rest) = text
            .strip_suffix("（暂定名）")
            .or_else(|| text.strip_suffix("(暂定名)"))
        {
            provisional = true;
            text = rest.trim_end().to_string();
        } else {
            break;
        }
    }
    let name = KgName::new(text).map_err(|reason| RosterError { line, reason })?;
    Ok(Entry {
        name,
        ownership,
        provisional,
    })
}

/// Parse the table into commands effective `on`, in an order that can be recorded as is:
/// per group, its kindergartens are registered, then the group is founded, then the others join.
pub fn roster_commands(text: &str, on: Date) -> Result<Vec<Command>, RosterError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (hline, header) = lines.next().ok_or(RosterError {
        line: 1,
        reason: "the roster is empty".into(),
    })?;
    let cols: Vec<&str> = header.split('\t').map(str::trim).collect();
    if cols != HEADER {
        return Err(RosterError {
            line: hline + 1,
            reason: format!(
                "the header must be {:?}, found {:?}",
                HEADER.join("\t"),
                header
            ),
        });
    }
    let mut seen: BTreeMap<KgName, (usize, GroupName)> = BTreeMap::new();
    let mut out = Vec::new();
    for (i, row) in lines {
        let line = i + 1;
        let cells: Vec<&str> = row.split('\t').collect();
        if cells.len() < 2 || cells.len() > 5 {
            return Err(RosterError {
                line,
                reason: format!(
                    "expected 2 to 5 tab-separated columns, found {}",
                    cells.len()
                ),
            });
        }
        let group = GroupName::new(cells[0].trim()).map_err(|reason| RosterError {
            line,
            reason: format!("group: {reason}"),
        })?;
        let kind = if group.as_str().ends_with("联盟") {
            GroupKind::Alliance
        } else {
            GroupKind::Group
        };
        let lead = parse_cell_name(cells[1], line)?;
        let mut members: Vec<(Entry, Category)> = Vec::new();
        let mut lead_category = Category::Unspecified;
        for (c, cell) in cells.iter().skip(2).enumerate() {
            for raw in cell.split('、').filter(|s| !s.trim().is_empty()) {
                let e = parse_cell_name(raw, line)?;
                if e.name == lead.name {
                    lead_category = COLUMNS[c];
                } else {
                    members.push((e, COLUMNS[c]));
                }
            }
        }
        let mut register = |e: &Entry, category: Category| -> Result<(), RosterError> {
            if let Some((l, g)) = seen.get(&e.name) {
                return Err(RosterError {
                    line,
                    reason: format!(
                        "kindergarten {} is already listed on line {l} (in {g})",
                        e.name
                    ),
                });
            }
            seen.insert(e.name.clone(), (line, group.clone()));
            out.push(Command::RegisterKindergarten(RegisterKindergarten {
                kindergarten: e.name.clone(),
                full_name: None,
                category,
                ownership: e.ownership,
                provisional: e.provisional,
                cooperative_principal: false,
                on,
            }));
            Ok(())
        };
        register(&lead, lead_category)?;
        for (e, c) in &members {
            register(e, *c)?;
        }
        out.push(Command::FoundGroup(FoundGroup {
            group: group.clone(),
            kind,
            lead: lead.name.clone(),
            on,
            // the plan itself names the roster's leads (1+X is checked for later ones)
            exception: Some(roster_lead_authority()),
        }));
        for (e, _) in &members {
            out.push(Command::JoinGroup(JoinGroup {
                kindergarten: e.name.clone(),
                group: group.clone(),
                on,
            }));
        }
    }
    Ok(out)
}

/// The authority the roster's leads stand on: the plan names them.
pub fn roster_lead_authority() -> crate::command::Exception {
    let text = |t: &str| Text::new(t).unwrap_or_else(|_| unreachable!("a valid text"));
    crate::command::Exception {
        approved_by: text("青浦区教育局"),
        reference: text("青教〔2023〕61号"),
        reason: text("牵头园由方案附件名单确定"),
    }
}
