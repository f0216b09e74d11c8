//! What every command pays at open, phase by phase, on a large ledger (default: the scale
//! benchmark's). `cargo run --release -p eduledger-ledger --example open_phases -- [LEDGER]`
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use eduledger_store::{Store, SystemClock};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/scale-ledger-shanghai")
        });
    for _ in 0..3 {
        let t = Instant::now();
        let store = Store::open(&dir).expect("open the store");
        let opened = t.elapsed();
        let t = Instant::now();
        let snap = store
            .latest_snapshot(u64::MAX, eduledger_ledger::SNAPSHOT_TAG, &|_| true)
            .expect("snapshot")
            .expect("a snapshot");
        let read = t.elapsed();
        let t = Instant::now();
        let state = eduledger_ledger::decode_snapshot_payload(&snap.payload).expect("decode");
        let decoded = t.elapsed();
        if std::env::var("EDULEDGER_SIZES").is_ok() {
            sizes(&state);
        }
        let t = Instant::now();
        drop(state);
        let dropped = t.elapsed();
        drop(store);
        std::thread::sleep(std::time::Duration::from_millis(100));
        let t = Instant::now();
        let ledger = eduledger_ledger::Ledger::open(&dir, Arc::new(SystemClock)).expect("open");
        let whole = t.elapsed();
        let t = Instant::now();
        drop(ledger);
        println!(
            "store open {opened:.1?}; snapshot at {} ({} bytes) read + checked {read:.1?}; decoded {decoded:.1?}; state dropped {dropped:.1?}; Ledger::open {whole:.1?}; Ledger dropped {:.1?}",
            snap.seq,
            snap.payload.len(),
            t.elapsed()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// Sizes of a state's parts as a snapshot encodes them (EDULEDGER_SIZES=1).
#[allow(dead_code)]
pub fn sizes(s: &eduledger_domain::State) {
    let c = bincode::config::standard();
    let size = |name: &str, bytes: usize| println!("  {name}: {:.1} MB", bytes as f64 / 1e6);
    macro_rules! part {
        ($name:literal, $v:expr) => {
            size(
                $name,
                bincode::serde::encode_to_vec($v, c)
                    .map(|b| b.len())
                    .unwrap_or(0),
            )
        };
    }
    part!("teachers", s.teachers());
    part!("trainings_by_teacher", s.trainings_by_teacher());
    part!("teachers_by_home", s.teachers_by_home());
    part!("rotations_by_teacher", s.rotations_by_teacher());
    part!("kindergartens", s.kindergartens());
    part!("groups", s.groups());
    part!("rotations", s.rotations());
    part!("trainings", s.trainings());
    part!("activities", s.activities());
    part!("projects", s.projects());
    part!("rotations_by_host", s.rotations_by_host());
    part!("activities_by_kg", s.activities_by_kg());
    part!("training_ids", s.training_ids());
    part!("log.touched", &s.log_book().touched);
    part!("log.marks", &s.log_book().marks);
}
