//! `eduledger demo`: the main job in one command on a fresh machine.

use crate::output::Format;
use crate::{
    Failure, Globals, ROSTER_2023, RULES_2024, ReadOpts, SAMPLE_HISTORY, adopt_rules,
    import_roster, open, reads, submit_lines,
};

/// Build a fresh ledger from the shipped data and show what it says.
pub fn run(g: &Globals) -> Result<(), Failure> {
    // Without --db the demo works in a temporary directory that is removed afterwards.
    let temp;
    let mut g = g.clone();
    let kept = match &g.db {
        Some(_) => true,
        None if std::env::var_os("EDULEDGER_DB").is_some() => true,
        None => {
            temp = tempfile::tempdir().map_err(|e| {
                Failure::Ledger(format!("cannot create a temporary directory: {e}"))
            })?;
            g.db = Some(temp.path().join("eduledger.db"));
            false
        }
    };
    if g.actor.is_none() {
        g.actor = Some("demo".into());
    }
    let path = g.db_path();
    let mut ledger = open(&g)?;
    let head = ledger.head()?;
    if head.seq > 0 {
        return Err(Failure::Refused(format!(
            "demo needs a new ledger, but {} already holds {} events; pass --db with a new directory",
            path.display(),
            head.seq
        )));
    }
    let roster = import_roster(&mut ledger, &g, ROSTER_2023, "2023-09-20")?;
    let rules = adopt_rules(&mut ledger, &g, RULES_2024, 2024, "2024-01-05")?;
    let history = submit_lines(&mut ledger, &g, SAMPLE_HISTORY)?;
    outln!(
        "eduledger demo — ledger at {}{}",
        path.display(),
        if kept {
            ""
        } else {
            " (temporary; pass --db PATH to keep it)"
        }
    );
    outln!(
        "recorded the 2023 roster ({} events), example points rules for 2024 (1 event; the plan fixes no numbers) and a sample history 2023-09 to 2025-12 ({} events)",
        roster.len(),
        history.len() + rules.len() - 1
    );
    outln!();
    outln!("== 集团概况（2025-12-31）==");
    let read = |on: Option<&str>| ReadOpts {
        on: on.map(str::to_owned),
        known_at: None,
        format: Some(Format::Table),
    };
    reads::groups(&ledger, &read(Some("2025-12-31")))?;
    outln!();
    outln!("== 2024 年度积分（示例规则）==");
    reads::tally(&ledger, 2024, false, None, &read(None))?;
    outln!();
    outln!("== 账本校验 ==");
    drop(ledger);
    reads::verify(&g.db_path(), None, Some(Format::Table))?;
    Ok(())
}
