//! The reads, as the command line prints them: each asks `eduledger_query` (where every
//! document is built, once, for the CLI and the server) and renders the answer as a table,
//! JSON or CSV.

use std::path::Path;

use eduledger_ledger::Ledger;
use eduledger_query::{self as query, Query, QueryError};
use eduledger_store::Digest;
use serde_json::json;

use crate::output::{Format, Report, Table, print};
use crate::{Failure, ReadOpts, default_format};

impl From<QueryError> for Failure {
    fn from(e: QueryError) -> Failure {
        match e {
            QueryError::Refused(m) => Failure::Refused(m),
            QueryError::Usage(m) => Failure::Usage(m),
            QueryError::Ledger(m) => Failure::Ledger(m),
        }
    }
}

fn q(read: &ReadOpts) -> Query {
    Query {
        on: read.on.clone(),
        known_at: read.known_at.clone(),
        max_bytes: None,
        spelling: query::Spelling::Flags,
    }
}

/// Print an answer in the format asked for (default: a table on a terminal, JSON otherwise).
fn show(answer: Result<Report, QueryError>, read: &ReadOpts) -> Result<(), Failure> {
    print(&answer?, default_format(read.format))?;
    Ok(())
}

/// The sequence a `--known-at` names (see [`query::resolve_known_at`]).
pub fn resolve_known_at(store: &eduledger_store::Store, text: &str) -> Result<u64, Failure> {
    Ok(query::resolve_known_at(store, "--known-at", text)?)
}

/// `eduledger groups`.
pub fn groups(ledger: &Ledger, read: &ReadOpts) -> Result<(), Failure> {
    show(query::groups(ledger, &q(read)), read)
}

/// `eduledger access list`.
pub fn access(ledger: &Ledger, read: &ReadOpts) -> Result<(), Failure> {
    show(query::access(ledger, &q(read)), read)
}

/// `eduledger group NAME`.
pub fn group(ledger: &Ledger, name: &str, read: &ReadOpts) -> Result<(), Failure> {
    show(query::group(ledger, name, &q(read)), read)
}

/// `eduledger kindergarten NAME`.
pub fn kindergarten(ledger: &Ledger, name: &str, read: &ReadOpts) -> Result<(), Failure> {
    show(query::kindergarten(ledger, name, &q(read)), read)
}

/// `eduledger teacher STAFF_NO`.
pub fn teacher(ledger: &Ledger, staff_no: &str, read: &ReadOpts) -> Result<(), Failure> {
    show(query::teacher(ledger, staff_no, &q(read)), read)
}

/// `eduledger history KIND ID`.
pub fn history(
    ledger: &Ledger,
    kind: query::EntityKind,
    id: &str,
    read: &ReadOpts,
) -> Result<(), Failure> {
    show(query::history(ledger, kind, id, &q(read)), read)
}

/// `eduledger log`.
pub fn log(ledger: &Ledger, from: u64, limit: usize, read: &ReadOpts) -> Result<(), Failure> {
    show(query::log(ledger, from, limit, &q(read)), read)
}

/// `eduledger tally`: the adopted rules of the year, or a rule file to preview.
pub fn tally(
    ledger: &Ledger,
    year: i32,
    explain: bool,
    rules_file: Option<&Path>,
    read: &ReadOpts,
) -> Result<(), Failure> {
    let rules_text = match rules_file {
        Some(p) => Some(crate::read_limited(
            &p.to_string_lossy(),
            eduledger_domain::command::MAX_RULES_BYTES as u64,
            "the rules file",
        )?),
        None => None,
    };
    show(
        query::tally(ledger, year, explain, rules_text, &q(read)),
        read,
    )
}

/// `eduledger report compliance`.
pub fn compliance(ledger: &Ledger, year: i32, read: &ReadOpts) -> Result<(), Failure> {
    show(query::compliance(ledger, year, &q(read)), read)
}

/// `eduledger report rewards`.
pub fn rewards(ledger: &Ledger, year: i32, read: &ReadOpts) -> Result<(), Failure> {
    show(query::rewards(ledger, year, &q(read)), read)
}

/// `eduledger report balance`.
pub fn balance(ledger: &Ledger, read: &ReadOpts) -> Result<(), Failure> {
    show(query::balance(ledger, &q(read)), read)
}

/// `eduledger report funds`.
pub fn funds(ledger: &Ledger, year: i32, read: &ReadOpts) -> Result<(), Failure> {
    show(query::funds(ledger, year, &q(read)), read)
}

/// `eduledger report rotations`.
pub fn rotations(ledger: &Ledger, year: i32, read: &ReadOpts) -> Result<(), Failure> {
    show(query::rotations(ledger, year, &q(read)), read)
}

/// `eduledger verify`.
pub fn verify(path: &Path, digest: Option<&str>, format: Option<Format>) -> Result<(), Failure> {
    let pb = crate::progress("verifying");
    let report = eduledger_ledger::verify(path, crate::clock(), &mut |n| pb.set_position(n))
        .map_err(|e| Failure::Ledger(e.to_string()))?;
    pb.finish_and_clear();
    let v = &report.verified;
    if let Some(d) = digest {
        let d = Digest::parse(d).map_err(Failure::Refused)?;
        let store = eduledger_store::Store::open_with_clock(path, crate::clock())?;
        store
            .verify_digest(&d)
            .map_err(|e| Failure::Ledger(e.to_string()))?;
    }
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    let doc = json!({"ok": true, "events": v.events, "digest": v.head.to_string(), "digest_checked": digest,
        "snapshots_compared": report.snapshots_compared, "notes": report.notes});
    let mut t = Table::new("", &["项目", "内容"]);
    t.row(vec!["校验".into(), "通过".into()]);
    t.row(vec!["事件数".into(), v.events.to_string()]);
    t.row(vec!["摘要".into(), v.head.to_string()]);
    t.row(vec![
        "已核对快照".into(),
        report.snapshots_compared.to_string(),
    ]);
    if let Some(d) = digest {
        t.row(vec!["核对摘要".into(), format!("{d} 一致")]);
    }
    print(
        &Report {
            json: doc,
            tables: vec![t],
            preface: vec![],
        },
        default_format(format),
    )?;
    Ok(())
}
