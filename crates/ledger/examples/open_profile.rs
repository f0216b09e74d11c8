//! Where does a historical read go? `cargo run --release -p eduledger-ledger --example open_profile DIR`
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).expect("ledger dir");
    let t = Instant::now();
    let ledger =
        eduledger_ledger::Ledger::open(&dir, std::sync::Arc::new(eduledger_store::SystemClock))
            .unwrap();
    eprintln!(
        "Ledger::open: {:?} (head {})",
        t.elapsed(),
        ledger.state().head()
    );
    let store = ledger.store();
    for cut in [1_000_000u64, 2_350_000, 4_599_999] {
        let t = Instant::now();
        let snap = store
            .snapshot_at_or_before(cut, eduledger_ledger::SNAPSHOT_TAG)
            .unwrap()
            .unwrap();
        let (s, bytes) = (snap.seq, snap.payload);
        let read = t.elapsed();
        let t = Instant::now();
        let st = ledger.state_at(Some(cut)).unwrap();
        eprintln!(
            "cut {cut}: snapshot {s} ({} MB) read and checked {read:?}; state_at total {:?}",
            bytes.len() / 1_000_000,
            t.elapsed()
        );
        drop(st);
    }
}
