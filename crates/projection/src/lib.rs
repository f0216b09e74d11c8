//! eduledger-projection: the views auditors and bureau staff read, as pure functions of a
//! folded [`State`](eduledger_domain::State) and a valid-time date.
//!
//! Which state (transaction time, `known_at`) is the ledger crate's business; what it looked
//! like on a date (valid time) is this crate's.

pub mod reports;
pub mod tally;
pub mod views;

use thiserror::Error;

/// A read that cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ViewError {
    /// Unknown name.
    #[error("there is no {kind} {name:?}{}", if .suggestions.is_empty() { String::new() } else { format!("; did you mean: {}?", .suggestions.join(", ")) })]
    Unknown {
        /// What kind.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// Closest known names.
        suggestions: Vec<String>,
    },
    /// No points rules adopted for the year.
    #[error(
        "no points rules are adopted for {year}; adopt them with `eduledger rules adopt FILE --year {year}`, or preview with --rules FILE"
    )]
    NoRules {
        /// The year.
        year: i32,
    },
}
