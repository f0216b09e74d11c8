//! A report as people and programs read it: aligned tables (Chinese labels, columns by
//! display width), CSV with a UTF-8 BOM, or JSON — one rendering for the command line and
//! the server, so `--server` prints what a local read prints, byte for byte.

use unicode_width::UnicodeWidthStr;

use crate::{Report, Table};

/// How a read is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// JSON with the English codes, for scripts.
    Json,
    /// CSV with a UTF-8 BOM, for Excel.
    Csv,
}

impl Format {
    /// `table`, `json` or `csv`.
    pub fn parse(text: &str) -> Result<Format, String> {
        match text {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => Err(format!("format {other:?}: table, json or csv")),
        }
    }

    /// The name [`Format::parse`] reads.
    pub fn code(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Csv => "csv",
        }
    }
}

fn pad(s: &str, width: usize) -> String {
    let w = UnicodeWidthStr::width(s);
    format!("{s}{}", " ".repeat(width.saturating_sub(w)))
}

/// A cell as a table shows it: a character that would break its line or hide (a new line, a
/// tab, any control character, a Unicode format character) is shown as a visible sign, so
/// a reason with a new line in it can never print as a row of its own.
fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    let shown = |c: char| {
        c.is_control()
            || eduledger_domain::values::hidden_char(c.encode_utf8(&mut [0; 4]), false).is_some()
    };
    if !s.chars().any(shown) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push('⏎'),
            // (C0 controls have their own pictures: U+2400 on)
            c if (c as u32) < 0x20 => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('�')),
            '\u{7f}' => out.push('␡'),
            c if shown(c) => out.push_str(&format!("<U+{:04X}>", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Render a table with columns aligned by display width (CJK characters are two columns).
pub fn render_table(t: &Table) -> String {
    let shown = |row: &Vec<String>| -> Vec<String> {
        row.iter().map(|c| visible(c).into_owned()).collect()
    };
    let t = &Table {
        title: visible(&t.title).into_owned(),
        headers: shown(&t.headers),
        rows: t.rows.iter().map(shown).collect(),
    };
    let cols = t
        .headers
        .len()
        .max(t.rows.iter().map(Vec::len).max().unwrap_or(0));
    let mut widths = vec![0; cols];
    for row in std::iter::once(&t.headers).chain(&t.rows) {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(UnicodeWidthStr::width(c.as_str()));
        }
    }
    let mut out = String::new();
    if !t.title.is_empty() {
        out.push_str(&t.title);
        out.push('\n');
    }
    let line = |row: &Vec<String>| {
        let cells: Vec<String> = (0..cols)
            .map(|i| pad(row.get(i).map(String::as_str).unwrap_or(""), widths[i]))
            .collect();
        cells.join("  ").trim_end().to_owned() + "\n"
    };
    if !t.headers.is_empty() {
        out.push_str(&line(&t.headers));
        out.push_str(
            &widths
                .iter()
                .map(|w| "-".repeat(*w))
                .collect::<Vec<_>>()
                .join("  "),
        );
        out.push('\n');
    }
    for r in &t.rows {
        out.push_str(&line(r));
    }
    if t.rows.is_empty() {
        out.push_str("（无）\n");
    }
    out
}

/// A cell as CSV. Our CSV is for Excel, which runs a cell starting with `=`, `+`, `-` or
/// `@` (or a tab or CR before one) as a formula: such a cell gets a leading `'` (OWASP's
/// rule), unless it is a plain number (a negative point count stays a number).
fn csv_cell(s: &str) -> String {
    let formula = s.starts_with(['=', '+', '-', '@', '\t', '\r']) && !plain_number(s);
    let s = if formula {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.into_owned()
    }
}

/// `-12`, `-0.5`: what Excel reads as a number, never as a formula.
fn plain_number(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let mut parts = digits.splitn(2, '.');
    let whole = parts.next().unwrap_or("");
    let frac = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// Render a table as CSV with a UTF-8 BOM, so Excel reads the Chinese correctly.
pub fn render_csv(t: &Table) -> String {
    let mut out = String::from("\u{feff}");
    for row in std::iter::once(&t.headers).chain(&t.rows) {
        out.push_str(
            &row.iter()
                .map(|c| csv_cell(c))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

/// The report in `format`, exactly as the command line prints it.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Json => {
            let mut out = serde_json::to_string_pretty(&report.json).unwrap_or_default();
            out.push('\n');
            out
        }
        // (every table, one after another: the first as it always was, each further one
        // after an empty row, under its title)
        Format::Csv => {
            let mut out = String::new();
            for (i, t) in report.tables.iter().enumerate() {
                let csv = render_csv(t);
                if i == 0 {
                    out.push_str(&csv);
                    continue;
                }
                out.push_str("\r\n");
                if !t.title.is_empty() {
                    out.push_str(&csv_cell(&t.title));
                    out.push_str("\r\n");
                }
                out.push_str(csv.trim_start_matches('\u{feff}'));
            }
            out
        }
        Format::Table => {
            let mut out = String::new();
            for l in &report.preface {
                out.push_str(l);
                out.push('\n');
            }
            for (i, t) in report.tables.iter().enumerate() {
                if i > 0 || !report.preface.is_empty() {
                    out.push('\n');
                }
                out.push_str(&render_table(t));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chinese_columns_line_up_by_display_width() {
        let mut t = Table::new("", &["集团", "n"]);
        t.row(vec!["佳佳学前教育集团".into(), "9".into()]);
        t.row(vec!["ab".into(), "10".into()]);
        let text = render_table(&t);
        let lines: Vec<&str> = text.lines().collect();
        let col = |l: &str| UnicodeWidthStr::width(&l[..l.rfind(' ').unwrap() + 1]);
        assert_eq!(col(lines[2]), col(lines[3]));
    }

    #[test]
    fn csv_cells_a_spreadsheet_would_run_are_neutralised_and_numbers_are_not() {
        let t = Table {
            title: String::new(),
            headers: vec!["a".into()],
            rows: vec![
                vec!["=cmd|' /C calc'!A0".into()],
                vec!["+1+1".into()],
                vec!["@SUM(A1)".into()],
                vec!["\t=1".into()],
                vec!["-1+2".into()],
                vec!["-3".into()],
                vec!["-0.5".into()],
                vec!["2024-09-01".into()],
            ],
        };
        let csv = render_csv(&t);
        let cells: Vec<&str> = csv.trim_start_matches('\u{feff}').split("\r\n").collect();
        assert_eq!(
            &cells[1..9],
            &[
                "'=cmd|' /C calc'!A0",
                "'+1+1",
                "'@SUM(A1)",
                "'\t=1",
                "'-1+2",
                "-3",
                "-0.5",
                "2024-09-01"
            ]
        );
    }

    #[test]
    fn csv_starts_with_a_bom_and_quotes_commas() {
        let mut t = Table::new("", &["a"]);
        t.row(vec!["x,y".into()]);
        let csv = render_csv(&t);
        assert!(csv.starts_with('\u{feff}'));
        assert!(csv.contains("\"x,y\""));
    }
}
