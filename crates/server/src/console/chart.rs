//! Pictures drawn on the server as inline SVG: nothing to fetch, nothing to run, printable.
//! Each takes numbers a read already computed (no rule is applied here) and links every
//! mark to where its evidence is shown.

use eduledger_domain::values::Date;
use maud::{Markup, html};

/// Colours for the segments of a stacked bar, in order (distinct in print and for the
/// common colour-vision deficiencies, after Okabe and Ito).
pub const PALETTE: [&str; 14] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#999999",
    "#882255", "#44AA99", "#332288", "#DDCC77", "#117733", "#AA4499",
];

/// One part of a bar.
pub struct Segment {
    /// Which legend entry (index into the legend).
    pub key: usize,
    /// Its value: a positive one is drawn right of zero, a negative one left of it.
    pub value: i64,
    /// Where its evidence is.
    pub href: String,
}

/// One bar.
pub struct Bar {
    /// The label at its left.
    pub label: String,
    /// Where the label leads.
    pub href: String,
    /// Its parts, left to right.
    pub segments: Vec<Segment>,
    /// Text at its right end (a total, a rank).
    pub note: String,
}

/// Horizontal bars, each stacked from its segments, with a legend. Positive parts stack
/// right from a zero line, negative ones (a rule may take points away) left from it, each a
/// link. `scale` is the least span drawn across the full width.
pub fn stacked_bars(title: &str, bars: &[Bar], legend: &[String], scale: i64) -> Markup {
    const LEFT: i64 = 190;
    const WIDTH: i64 = 560;
    const ROW: i64 = 30;
    const RIGHT: i64 = 170;
    let sum = |b: &Bar, positive: bool| -> i64 {
        b.segments
            .iter()
            .filter(|s| (s.value > 0) == positive && s.value != 0)
            .map(|s| s.value.saturating_abs())
            .fold(0i64, i64::saturating_add)
    };
    let right = bars.iter().map(|b| sum(b, true)).max().unwrap_or(0);
    let left = bars.iter().map(|b| sum(b, false)).max().unwrap_or(0);
    let scale = scale.max(right.saturating_add(left)).max(1);
    let zero = LEFT + scale_to(left, WIDTH, scale);
    let height = ROW * bars.len() as i64 + 8;
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                width=(LEFT + WIDTH + RIGHT) viewBox=(format!("0 0 {} {height}", LEFT + WIDTH + RIGHT)) {
                title { (title) }
                @for (i, bar) in bars.iter().enumerate() {
                    @let y = 4 + ROW * i as i64;
                    a href=(bar.href) {
                        text x=(LEFT - 8) y=(y + ROW / 2 + 5) text-anchor="end" class="label" { (bar.label) }
                    }
                    rect x=(LEFT) y=(y + 4) width=(WIDTH) height=(ROW - 8) class="track" {}
                    @for (x, w, s) in place(&bar.segments, zero, WIDTH, scale) {
                        a href=(s.href) {
                            rect x=(x) y=(y + 4) width=(w) height=(ROW - 8)
                                fill=(PALETTE[s.key % PALETTE.len()]) {
                                title { (legend.get(s.key).map(String::as_str).unwrap_or("")) "：" (s.value) }
                            }
                        }
                    }
                    text x=(LEFT + WIDTH + 8) y=(y + ROW / 2 + 5) class="note" { (bar.note) }
                }
                @if left > 0 {
                    line x1=(zero) x2=(zero) y1="0" y2=(height) class="zero" {}
                }
            }
            @if !legend.is_empty() {
                figcaption {
                    ul.legend {
                        @for (i, l) in legend.iter().enumerate() {
                            li {
                                svg.swatch width="12" height="12" aria-hidden="true" {
                                    rect width="12" height="12" fill=(PALETTE[i % PALETTE.len()]) {}
                                }
                                (l)
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `value` of `scale` as a share of `width` (no overflow: values come from a ledger).
fn scale_to(value: i64, width: i64, scale: i64) -> i64 {
    (i128::from(value) * i128::from(width) / i128::from(scale.max(1))) as i64
}

/// Where each segment starts and how wide it is: positive ones right from `zero`, negative
/// ones left from it, each at least 2 px (so it can be seen and clicked).
fn place(segments: &[Segment], zero: i64, width: i64, scale: i64) -> Vec<(i64, i64, &Segment)> {
    let (mut right, mut left) = (zero, zero);
    let mut out = vec![];
    for s in segments.iter().filter(|s| s.value != 0) {
        let w = scale_to(s.value.saturating_abs(), width, scale).max(2);
        if s.value > 0 {
            out.push((right, w, s));
            right += w;
        } else {
            left -= w;
            out.push((left, w, s));
        }
    }
    out
}

/// One row of a timeline: a label and the stretches it covers.
pub struct Lane {
    /// The label at its left.
    pub label: String,
    /// Where the label leads.
    pub href: String,
    /// (from, until) — until exclusive; None: still running on the last day drawn.
    pub spans: Vec<(Date, Option<Date>)>,
}

fn day(d: Date) -> i64 {
    use chrono::Datelike;
    i64::from(d.naive().num_days_from_ce())
}

/// Lanes of stretches over time, from `start` to `end` (inclusive), with a tick each 1 January.
pub fn timeline(title: &str, lanes: &[Lane], start: Date, end: Date) -> Markup {
    const LEFT: i64 = 150;
    const WIDTH: i64 = 720;
    const ROW: i64 = 24;
    const TOP: i64 = 24;
    let (a, b) = (day(start), day(end).max(day(start) + 1));
    let x = |d: Date| LEFT + (day(d).clamp(a, b) - a) * WIDTH / (b - a);
    let height = TOP + ROW * lanes.len() as i64 + 6;
    let years: Vec<i32> = (start.year() + 1..=end.year()).collect();
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                width=(LEFT + WIDTH + 20) viewBox=(format!("0 0 {} {height}", LEFT + WIDTH + 20)) {
                title { (title) }
                text x=(LEFT) y="14" class="tick" { (start) }
                text x=(LEFT + WIDTH) y="14" text-anchor="end" class="tick" { (end) }
                @for y in &years {
                    @let tx = x(Date::jan1(*y));
                    line x1=(tx) x2=(tx) y1="18" y2=(height) class="grid" {}
                    text x=(tx + 3) y="14" class="tick" { (y) }
                }
                @for (i, lane) in lanes.iter().enumerate() {
                    @let y = TOP + ROW * i as i64;
                    a href=(lane.href) {
                        text x=(LEFT - 8) y=(y + ROW / 2 + 4) text-anchor="end" class="label" { (lane.label) }
                    }
                    @for (from, until) in &lane.spans {
                        @let x0 = x(*from);
                        @let x1 = until.map(&x).unwrap_or(LEFT + WIDTH);
                        rect x=(x0) y=(y + 4) width=((x1 - x0).max(2)) height=(ROW - 8)
                            class=(if until.is_some() { "span ended" } else { "span" }) {
                            title {
                                (lane.label) "：" (from) " 起"
                                @if let Some(u) = until { "，" (u) " 离开" }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A cell of a grid: its state's class, the text shown in it, a tooltip and a link.
pub struct Cell {
    /// CSS class (held, not_held, in_progress, …).
    pub class: &'static str,
    /// A short mark shown in the cell (the state is never carried by colour alone).
    pub mark: &'static str,
    /// Tooltip.
    pub title: String,
    /// Where it leads.
    pub href: String,
}

/// Rows × columns of cells: each row's cells by column (None: that row has no cell there,
/// e.g. a group founded mid-year has no earlier semester).
pub fn grid(
    title: &str,
    columns: &[String],
    rows: &[(String, String, Vec<Option<Cell>>)],
) -> Markup {
    const LEFT: i64 = 190;
    const COL: i64 = 110;
    const ROW: i64 = 30;
    const TOP: i64 = 26;
    let width = LEFT + COL * columns.len() as i64 + 10;
    let height = TOP + ROW * rows.len() as i64 + 4;
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label=(title)
                width=(width) viewBox=(format!("0 0 {width} {height}")) {
                title { (title) }
                @for (j, c) in columns.iter().enumerate() {
                    text x=(LEFT + COL * j as i64 + COL / 2) y="16" text-anchor="middle" class="tick" { (c) }
                }
                @for (i, (label, href, cells)) in rows.iter().enumerate() {
                    @let y = TOP + ROW * i as i64;
                    a href=(href) {
                        text x=(LEFT - 8) y=(y + ROW / 2 + 5) text-anchor="end" class="label" { (label) }
                    }
                    @for (j, cell) in cells.iter().enumerate().take(columns.len()) {
                        @let cx = LEFT + COL * j as i64;
                        @let Some(cell) = cell else { continue };
                        a href=(cell.href) {
                            rect x=(cx + 3) y=(y + 3) width=(COL - 6) height=(ROW - 6) class=(format!("cell {}", cell.class)) {
                                title { (cell.title) }
                            }
                            text x=(cx + COL / 2) y=(y + ROW / 2 + 5) text-anchor="middle" class="mark" { (cell.mark) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    #[test]
    fn a_bar_is_as_wide_as_its_share_of_the_scale() {
        let bars = [Bar {
            label: "甲".into(),
            href: "#a".into(),
            segments: vec![
                Segment {
                    key: 0,
                    value: 30,
                    href: "#x".into(),
                },
                Segment {
                    key: 1,
                    value: 10,
                    href: "#y".into(),
                },
            ],
            note: "40".into(),
        }];
        let svg = stacked_bars("t", &bars, &["p".into(), "q".into()], 80).into_string();
        // 560 px for 80 points: 30 → 210 px, then 10 → 70 px starting where the first ends
        assert!(svg.contains(r#"x="190" y="8" width="210""#), "{svg}");
        assert!(svg.contains(r#"x="400" y="8" width="70""#), "{svg}");
        assert!(svg.contains(r##"href="#y""##));
    }

    #[test]
    fn a_negative_part_is_drawn_left_of_zero_and_the_bar_right_of_it() {
        // one rule gives 30, another takes 10: 40 points of span over 560 px
        let bars = [Bar {
            label: "甲".into(),
            href: "#a".into(),
            segments: vec![
                Segment {
                    key: 0,
                    value: 30,
                    href: "#plus".into(),
                },
                Segment {
                    key: 1,
                    value: -10,
                    href: "#minus".into(),
                },
            ],
            note: "20".into(),
        }];
        let svg = stacked_bars("t", &bars, &["p".into(), "q".into()], 0).into_string();
        // zero at 190 + 10/40 × 560 = 330; the minus part from 190, the plus part from 330
        assert!(svg.contains(r#"x="330" y="8" width="420""#), "{svg}");
        assert!(svg.contains(r#"x="190" y="8" width="140""#), "{svg}");
        assert!(svg.contains(r##"href="#minus""##));
        assert!(svg.contains(r#"class="zero""#));
    }

    #[test]
    fn text_in_a_chart_is_escaped() {
        let bars = [Bar {
            label: "<script>".into(),
            href: "#".into(),
            segments: vec![],
            note: String::new(),
        }];
        let svg = stacked_bars("t", &bars, &[], 1).into_string();
        assert!(!svg.contains("<script>") && svg.contains("&lt;script&gt;"));
    }

    #[test]
    fn a_timeline_places_a_span_by_its_dates() {
        // 2023-01-01 .. 2025-01-01 is 731 days over 720 px; 2024-01-01 is day 365
        let lanes = [Lane {
            label: "赵屯".into(),
            href: "#".into(),
            spans: vec![(d("2024-01-01"), None)],
        }];
        let svg = timeline("t", &lanes, d("2023-01-01"), d("2025-01-01")).into_string();
        let x0 = 150 + 365 * 720 / 731;
        assert!(
            svg.contains(&format!(r#"x="{x0}" y="28" width="{}""#, 870 - x0)),
            "{svg}"
        );
    }
}
