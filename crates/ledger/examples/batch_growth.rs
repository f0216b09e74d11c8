//! Recording cost as the history grows, through `Ledger::execute` (decide, rules, append):
//! register teachers into six kindergartens, in batches of 1,000, and time each batch.
//! `cargo run --release -p eduledger-ledger --example batch_growth [TOTAL]`
//! Prints one line per 5,000 commands: commands recorded so far and the last batch's rate.
use std::sync::Arc;
use std::time::Instant;

use eduledger_domain::parse_submission;
use eduledger_ledger::Ledger;

fn main() {
    let total: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ledger =
        Ledger::open(dir.path().join("l"), Arc::new(eduledger_store::SystemClock)).expect("open");
    let kgs = ["甲", "乙", "丙", "丁", "戊", "己"];
    let setup: Vec<_> = kgs
        .iter()
        .map(|k| {
            parse_submission(&format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"first_class","ownership":"public","on":"2023-09-01"}}"#)).expect("command")
        })
        .collect();
    ledger.execute(&setup, "bench").expect("setup");
    let mut n = 0;
    let started = Instant::now();
    while n < total {
        let batch: Vec<_> = (n..n + 1000)
            .map(|i| {
                parse_submission(&format!(r#"{{"command":"register_teacher","staff_no":"T{i}","name":"教师{i}","home":"{}","on":"2023-09-01"}}"#, kgs[i % 6])).expect("command")
            })
            .collect();
        let t = Instant::now();
        ledger.execute(&batch, "bench").expect("batch");
        let rate = 1000.0 / t.elapsed().as_secs_f64();
        n += 1000;
        if n % 5000 == 0 {
            println!(
                "{n:>7} commands: last batch {rate:>9.0}/s; all so far {:>9.0}/s",
                n as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
}
