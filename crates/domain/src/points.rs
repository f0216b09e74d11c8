//! Points rule sets (POINTS.md): TOML text, checked at adoption with line numbers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::DomainError;
use crate::values::*;

/// The most points one rule may give or take for one fact. With at most 64 KiB of rules
/// (a few thousand rules) and facts counted in the millions, no total can come near
/// `i64::MAX` (2^20 points × 2^32 facts < 2^53), and the tally's sums saturate rather than
/// wrap all the same.
pub const MAX_RULE_POINTS: i64 = 1_000_000;
/// The largest cap a rule may set.
pub const MAX_RULE_CAP: i64 = 1_000_000_000;

/// SHA-256 of a rules text, hex.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The kinds of scorable fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactKind {
    /// A project completed.
    ProjectCompleted,
    /// A group training recognised at district level.
    TrainingRecognized,
    /// An activity held.
    ActivityHeld,
    /// A rotation ended.
    RotationCompleted,
    /// A kindergarten designated high-quality.
    HighQualityDesignated,
    /// A governance document adopted.
    DocumentAdopted,
}

/// How an attribute's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    /// One of the codes of an enum.
    Code(&'static [&'static str]),
    /// A whole number.
    Integer,
}

macro_rules! codes {
    ($t:ty) => {{
        const N: usize = <$t>::ALL.len();
        const fn build() -> [&'static str; N] {
            let mut out = [""; N];
            let mut i = 0;
            while i < N {
                out[i] = <$t>::ALL[i].code();
                i += 1;
            }
            out
        }
        const CODES: [&'static str; N] = build();
        &CODES
    }};
}

impl FactKind {
    /// Every fact kind.
    pub const ALL: &'static [FactKind] = &[
        FactKind::ProjectCompleted,
        FactKind::TrainingRecognized,
        FactKind::ActivityHeld,
        FactKind::RotationCompleted,
        FactKind::HighQualityDesignated,
        FactKind::DocumentAdopted,
    ];
    /// The code in rule files.
    pub fn code(self) -> &'static str {
        match self {
            FactKind::ProjectCompleted => "project_completed",
            FactKind::TrainingRecognized => "training_recognized",
            FactKind::ActivityHeld => "activity_held",
            FactKind::RotationCompleted => "rotation_completed",
            FactKind::HighQualityDesignated => "high_quality_designated",
            FactKind::DocumentAdopted => "document_adopted",
        }
    }
    /// The attributes a rule may match on.
    pub fn attributes(self) -> &'static [(&'static str, AttrType)] {
        match self {
            FactKind::ProjectCompleted => &[
                ("project_kind", AttrType::Code(codes!(ProjectKind))),
                ("rating", AttrType::Code(codes!(Rating))),
            ],
            FactKind::TrainingRecognized => &[
                ("hours", AttrType::Integer),
                ("attendees", AttrType::Integer),
            ],
            FactKind::ActivityHeld => &[
                ("activity_kind", AttrType::Code(codes!(ActivityKind))),
                ("kindergartens", AttrType::Integer),
            ],
            FactKind::RotationCompleted => &[
                ("mode", AttrType::Code(codes!(RotationMode))),
                ("assessment", AttrType::Code(codes!(Assessment))),
                ("months", AttrType::Integer),
            ],
            FactKind::HighQualityDesignated => &[("ownership", AttrType::Code(codes!(Ownership)))],
            FactKind::DocumentAdopted => &[("doc_kind", AttrType::Code(codes!(DocKind)))],
        }
    }
    fn parse(text: &str) -> Option<FactKind> {
        FactKind::ALL.iter().copied().find(|f| f.code() == text)
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Its id, unique in the set.
    pub id: String,
    /// The fact it scores.
    pub fact: FactKind,
    /// Attribute equalities, values as text (integers in decimal).
    pub matches: BTreeMap<String, String>,
    /// Points per fact (may be negative).
    pub points: i64,
    /// Most points from this rule per group per year.
    pub cap: Option<i64>,
}

impl Rule {
    /// Whether the rule fits a fact of `kind` with `attrs`.
    pub fn fits(&self, kind: FactKind, attrs: &BTreeMap<&'static str, String>) -> bool {
        self.fact == kind
            && self
                .matches
                .iter()
                .all(|(k, v)| attrs.get(k.as_str()) == Some(v))
    }
}

/// A year's rule set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleSet {
    /// The year it governs.
    pub year: i32,
    /// Its title.
    pub title: Option<String>,
    /// Rules in file order (first match wins).
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSet {
    year: i32,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    rule: Vec<toml::Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    fact: toml::Spanned<String>,
    #[serde(default, rename = "match")]
    matches: Option<toml::Spanned<BTreeMap<String, toml::Value>>>,
    points: i64,
    #[serde(default)]
    cap: Option<i64>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

impl RuleSet {
    /// Parse and check a rule set; errors give the line and the reason.
    pub fn parse(text: &str) -> Result<RuleSet, DomainError> {
        let raw: RawSet = toml::from_str(text).map_err(|e| DomainError::Rules {
            line: e.span().map(|s| line_of(text, s.start)).unwrap_or(0),
            reason: e.message().to_string(),
        })?;
        let mut rules = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        for spanned in raw.rule {
            let line = line_of(text, spanned.span().start);
            let r = spanned.into_inner();
            let bad = |line: usize, reason: String| DomainError::Rules { line, reason };
            if !ids.insert(r.id.clone()) {
                return Err(bad(line, format!("rule id {:?} is used twice", r.id)));
            }
            let fact_line = line_of(text, r.fact.span().start);
            let fact = FactKind::parse(r.fact.get_ref()).ok_or_else(|| {
                bad(
                    fact_line,
                    format!(
                        "rule {:?}: fact {:?} is not one of: {}",
                        r.id,
                        r.fact.get_ref(),
                        FactKind::ALL
                            .iter()
                            .map(|f| f.code())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })?;
            let mut matches = BTreeMap::new();
            if let Some(m) = r.matches {
                let mline = line_of(text, m.span().start);
                for (k, v) in m.into_inner() {
                    let Some((_, ty)) = fact.attributes().iter().find(|(a, _)| *a == k) else {
                        return Err(bad(
                            mline,
                            format!(
                                "rule {:?}: fact {} has no attribute {k:?}; it has: {}",
                                r.id,
                                fact.code(),
                                fact.attributes()
                                    .iter()
                                    .map(|(a, _)| *a)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ),
                        ));
                    };
                    let value = match (ty, &v) {
                        (AttrType::Code(codes), toml::Value::String(s))
                            if codes.contains(&s.as_str()) =>
                        {
                            s.clone()
                        }
                        (AttrType::Code(codes), _) => {
                            return Err(bad(
                                mline,
                                format!(
                                    "rule {:?}: {k} = {v} is not one of: {}",
                                    r.id,
                                    codes.join(", ")
                                ),
                            ));
                        }
                        (AttrType::Integer, toml::Value::Integer(i)) => i.to_string(),
                        (AttrType::Integer, _) => {
                            return Err(bad(
                                mline,
                                format!("rule {:?}: {k} = {v} must be a whole number", r.id),
                            ));
                        }
                    };
                    matches.insert(k, value);
                }
            }
            if let Some(c) = r.cap
                && c < 0
            {
                return Err(bad(
                    line,
                    format!("rule {:?}: cap {c} must not be negative", r.id),
                ));
            }
            if r.points.unsigned_abs() > MAX_RULE_POINTS as u64 {
                return Err(bad(
                    line,
                    format!(
                        "rule {:?}: points = {} is beyond ±{MAX_RULE_POINTS}",
                        r.id, r.points
                    ),
                ));
            }
            if let Some(c) = r.cap
                && c > MAX_RULE_CAP
            {
                return Err(bad(
                    line,
                    format!("rule {:?}: cap {c} is over {MAX_RULE_CAP}", r.id),
                ));
            }
            rules.push(Rule {
                id: r.id,
                fact,
                matches,
                points: r.points,
                cap: r.cap,
            });
        }
        if !REPORT_YEARS.contains(&raw.year) {
            return Err(DomainError::Rules {
                line: 1,
                reason: format!(
                    "year {} must be between {} and {}",
                    raw.year,
                    REPORT_YEARS.start(),
                    REPORT_YEARS.end()
                ),
            });
        }
        Ok(RuleSet {
            year: raw.year,
            title: raw.title,
            rules,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_good_rule_set_parses_in_file_order() {
        let set = RuleSet::parse("year = 2024\n[[rule]]\nid = \"a\"\nfact = \"activity_held\"\nmatch = { activity_kind = \"joint_research\" }\npoints = 2\ncap = 8\n").unwrap();
        assert_eq!(set.rules[0].matches["activity_kind"], "joint_research");
        assert_eq!(set.rules[0].cap, Some(8));
    }

    #[test]
    fn bad_rule_sets_name_the_line() {
        let unknown_fact = "year = 2024\n\n[[rule]]\nid = \"a\"\nfact = \"party\"\npoints = 1\n";
        assert!(matches!(
            RuleSet::parse(unknown_fact),
            Err(DomainError::Rules { line: 5, .. })
        ));
        let unknown_attr = "year = 2024\n[[rule]]\nid = \"a\"\nfact = \"activity_held\"\nmatch = { colour = \"red\" }\npoints = 1\n";
        assert!(matches!(
            RuleSet::parse(unknown_attr),
            Err(DomainError::Rules { line: 5, .. })
        ));
        let dup = "year = 2024\n[[rule]]\nid = \"a\"\nfact = \"activity_held\"\npoints = 1\n[[rule]]\nid = \"a\"\nfact = \"activity_held\"\npoints = 1\n";
        assert!(matches!(
            RuleSet::parse(dup),
            Err(DomainError::Rules { line: 6, .. })
        ));
        assert!(matches!(
            RuleSet::parse("year = "),
            Err(DomainError::Rules { line: 1, .. })
        ));
    }
}
