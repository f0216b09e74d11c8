//! Given/when/then on a real ledger directory.
#![allow(dead_code)]

use std::sync::Arc;

use eduledger_domain::{DomainError, parse_submission};
use eduledger_ledger::{Ledger, LedgerError};
use eduledger_store::SteppingClock;

pub struct World {
    pub dir: tempfile::TempDir,
    pub ledger: Ledger,
}

pub fn clock() -> Arc<SteppingClock> {
    Arc::new(SteppingClock::new(1_695_168_000_000_000))
}

/// A fresh ledger with the given JSON command lines recorded (each must be accepted).
pub fn given(lines: &[&str]) -> World {
    let dir = tempfile::tempdir().unwrap();
    let mut ledger = Ledger::open(dir.path(), clock()).unwrap();
    for l in lines {
        let sub = parse_submission(l).unwrap_or_else(|e| panic!("{l}: {e}"));
        ledger
            .execute(&[sub], "tester")
            .unwrap_or_else(|e| panic!("given {l}: {e}"));
    }
    World { dir, ledger }
}

impl World {
    /// Record one command; on refusal, assert that nothing was appended.
    pub fn when(&mut self, line: &str) -> Result<u64, LedgerError> {
        let before = self.ledger.head().unwrap();
        let sub = parse_submission(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let r = self.ledger.execute(&[sub], "tester").map(|s| s[0]);
        if r.is_err() {
            assert_eq!(
                self.ledger.head().unwrap(),
                before,
                "a refused command changed the ledger"
            );
        }
        r
    }

    /// Expect refusal with a domain error.
    pub fn refused(&mut self, line: &str) -> DomainError {
        match self.when(line) {
            Err(LedgerError::Domain(e)) => *e,
            other => panic!("expected a refusal of {line}, got {other:?}"),
        }
    }

    pub fn accepted(&mut self, line: &str) -> u64 {
        self.when(line)
            .unwrap_or_else(|e| panic!("expected {line} to be accepted: {e}"))
    }

    pub fn reopen(self) -> World {
        let World { dir, ledger } = self;
        drop(ledger);
        let ledger = Ledger::open(dir.path(), clock()).unwrap();
        World { dir, ledger }
    }
}

/// Two groups A (lead 甲, members 乙 丙) and B (lead 丁, member 戊), from 2023-09-20, and
/// teachers T1 (home 乙), T2 (home 甲), T3 (home 丁).
pub fn two_groups() -> World {
    let mut lines: Vec<String> = vec![];
    for k in ["甲", "乙", "丙", "丁", "戊", "己"] {
        lines.push(format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"first_class","ownership":"public","cooperative_principal":true,"on":"2023-09-01"}}"#));
    }
    lines.push(
        r#"{"command":"found_group","group":"A集团","kind":"group","lead":"甲","on":"2023-09-20"}"#
            .into(),
    );
    lines.push(
        r#"{"command":"found_group","group":"B集团","kind":"group","lead":"丁","on":"2023-09-20"}"#
            .into(),
    );
    for (k, g) in [("乙", "A集团"), ("丙", "A集团"), ("戊", "B集团")] {
        lines.push(format!(
            r#"{{"command":"join_group","kindergarten":"{k}","group":"{g}","on":"2023-09-20"}}"#
        ));
    }
    for (t, h) in [("T1", "乙"), ("T2", "甲"), ("T3", "丁")] {
        lines.push(format!(r#"{{"command":"register_teacher","staff_no":"{t}","name":"教师{t}","home":"{h}","on":"2023-09-01"}}"#));
    }
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    given(&refs)
}
