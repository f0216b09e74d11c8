//! The command line's output formats; the rendering itself is `eduledger_query::render`,
//! shared with the server.

use std::io::Write;

/// Output format of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned text for people.
    Table,
    /// JSON with the English codes, for scripts.
    Json,
    /// CSV with a UTF-8 BOM, for Excel.
    Csv,
}

impl From<Format> for eduledger_query::render::Format {
    fn from(f: Format) -> Self {
        match f {
            Format::Table => Self::Table,
            Format::Json => Self::Json,
            Format::Csv => Self::Csv,
        }
    }
}

pub use eduledger_query::{Report, Table};

/// Print a report in the chosen format.
pub fn print(report: &Report, format: Format) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(eduledger_query::render::render(report, format.into()).as_bytes())?;
    out.flush()
}
