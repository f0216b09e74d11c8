//! Where does opening a large ledger go? `cargo run --release -p eduledger-ledger --example open_profile DIR`
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).expect("ledger dir");
    let t = Instant::now();
    let store = eduledger_store::Store::open(&dir).unwrap();
    eprintln!("store open: {:?}", t.elapsed());
    let head = store.head().unwrap().seq;
    let t = Instant::now();
    let snap = store
        .snapshot_at_or_before(head, eduledger_ledger::SNAPSHOT_TAG)
        .unwrap();
    eprintln!(
        "read latest snapshot: {:?} ({:?} bytes at {:?})",
        t.elapsed(),
        snap.as_ref().map(|s| s.1.len()),
        snap.as_ref().map(|s| s.0)
    );
    let t = Instant::now();
    let n = store.read_stream("corrections").unwrap().len();
    eprintln!("corrections stream: {:?} ({n})", t.elapsed());
    if let Some((_, bytes)) = snap {
        let t = Instant::now();
        let state: eduledger_domain::State =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard())
                .unwrap()
                .0;
        eprintln!(
            "decode snapshot: {:?} ({} teachers)",
            t.elapsed(),
            state.teachers.len()
        );
        let t = Instant::now();
        drop(state);
        eprintln!("drop state: {:?}", t.elapsed());
    }
    drop(store);
    let t = Instant::now();
    let l = eduledger_ledger::Ledger::open(&dir, std::sync::Arc::new(eduledger_store::SystemClock))
        .unwrap();
    eprintln!("Ledger::open: {:?} (head {})", t.elapsed(), l.state().head);
}
