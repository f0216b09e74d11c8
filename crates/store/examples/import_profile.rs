//! Import against its physical reference, alternating in one process so that machine noise
//! hits both alike: `cargo run --release -p eduledger-store --example import_profile [N] [ROUNDS]`.
//! Prints each round's throughputs and their ratio (the figure docs/PERFORMANCE.md reports).

use std::sync::Arc;
use std::time::Instant;

use eduledger_store::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let (export, raws) = {
        let src_dir = tempfile::tempdir().unwrap();
        let src = Store::open(src_dir.path()).unwrap();
        for i in 0..n {
            let e = NewEvent {
                event_id: uuid::Uuid::now_v7(),
                event_type: "RotationStarted".into(),
                schema_version: 1,
                payload: vec![(i % 251) as u8; 200],
                meta: Metadata {
                    actor: "bench".into(),
                    reason: None,
                    source: Some("青教〔2023〕61号".into()),
                },
            };
            src.append(
                &format!("teacher:T{}", i % 5000),
                ExpectedVersion::Any,
                &[e],
                Durability::Buffered,
            )
            .unwrap();
        }
        src.sync().unwrap();
        let mut export = Vec::new();
        src.export(&mut export, &|_| None, &mut |_| {}).unwrap();
        let raws: Vec<(u64, Vec<u8>)> = src
            .iter_from(1)
            .map(|e| e.unwrap())
            .map(|e| (e.seq, e.to_bytes().unwrap()))
            .collect();
        (export, raws)
    };
    let mut ratios = vec![];
    for round in 0..rounds {
        let _ = std::process::Command::new("sync").status();
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        {
            let db = sled::open(dir.path().join("ref")).unwrap();
            let tree = db.open_tree("log").unwrap();
            for chunk in raws.chunks(1000) {
                let mut b = sled::Batch::default();
                for (s, r) in chunk {
                    b.insert(&s.to_be_bytes(), r.as_slice());
                }
                tree.apply_batch(b).unwrap();
            }
            db.flush().unwrap();
        }
        let reference = n as f64 / t.elapsed().as_secs_f64();
        let _ = std::process::Command::new("sync").status();
        let t = Instant::now();
        import_new(
            &dir.path().join("ledger"),
            &mut export.as_slice(),
            Arc::new(SystemClock),
            &mut |_| {},
        )
        .unwrap();
        let import = n as f64 / t.elapsed().as_secs_f64();
        ratios.push(import / reference);
        println!(
            "round {round}: reference {reference:.0} events/s, import {import:.0} events/s, ratio {:.2}",
            import / reference
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!("median ratio {:.2}", ratios[ratios.len() / 2]);
}
