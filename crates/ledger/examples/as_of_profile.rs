//! Where a read on a past date spends its time: open a ledger (default: the scale
//! benchmark's), then prune its state to a few dates (`State::as_of`) and run each view there.
//! `cargo run --release -p eduledger-ledger --example as_of_profile -- [LEDGER]`
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use eduledger_domain::values::Date;
use eduledger_ledger::Ledger;
use eduledger_projection::views;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/scale-ledger-shanghai")
        });
    let t = Instant::now();
    let ledger = Ledger::open(&dir, Arc::new(eduledger_store::SystemClock)).expect("open");
    println!("open: {:.1?}", t.elapsed());
    let state = ledger.state();
    for day in ["2017-03-01", "2020-06-01", "2024-12-31"] {
        let on = Date::parse(day).expect("date");
        for _ in 0..3 {
            let t = Instant::now();
            std::hint::black_box(state.as_of(on));
            let pruned = t.elapsed();
            let t = Instant::now();
            std::hint::black_box(views::groups(state, on));
            println!(
                "{day}: as_of {pruned:.1?}; groups view (with its own as_of) {:.1?}",
                t.elapsed()
            );
        }
    }
}
