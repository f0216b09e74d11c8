//! Store benchmarks, each beside the physical reference it is judged against, in the same run.
//!
//! Run: `cargo bench -p eduledger-store --bench store`. Figures go to docs/PERFORMANCE.md.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use eduledger_store::{
    Durability, Envelope, ExpectedVersion, Metadata, NewEvent, Store, SystemClock, import_new,
};
use uuid::Uuid;

const PAYLOAD: usize = 200; // a typical domain event is 100-300 bytes
const BULK: u64 = 100_000;

fn new_event(i: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "RotationStarted".into(),
        schema_version: 1,
        payload: vec![(i % 251) as u8; PAYLOAD],
        meta: Metadata {
            actor: "bench".into(),
            reason: None,
            source: Some("青教〔2023〕61号".into()),
        },
    }
}

fn durable_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("durable_append");
    g.sample_size(30).measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(1));
    let dir = tempfile::tempdir().unwrap();
    let mut f = std::fs::File::create(dir.path().join("raw")).unwrap();
    let block = vec![7u8; 4096];
    g.bench_function("reference: raw 4 KiB write + fsync", |b| {
        b.iter(|| {
            f.write_all(&block).unwrap();
            f.sync_all().unwrap();
        })
    });
    let sdir = tempfile::tempdir().unwrap();
    let db = sled::open(sdir.path()).unwrap();
    let data = std::fs::File::open(sdir.path().join("db")).unwrap();
    let mut k = 0u64;
    g.bench_function("reference: sled insert + flush + fsync", |b| {
        b.iter(|| {
            k += 1;
            db.insert(k.to_be_bytes(), vec![1u8; PAYLOAD]).unwrap();
            db.flush().unwrap();
            data.sync_all().unwrap();
        })
    });
    let ldir = tempfile::tempdir().unwrap();
    let store = Store::open(ldir.path()).unwrap();
    let mut i = 0u64;
    g.bench_function("store: durable append of one event", |b| {
        b.iter(|| {
            i += 1;
            store
                .append(
                    &format!("rotation:R{}", i % 1000),
                    ExpectedVersion::Any,
                    &[new_event(i)],
                    Durability::Durable,
                )
                .unwrap();
        })
    });
    g.finish();
}

fn fill(store: &Store, n: u64) {
    for chunk in 0..n / 100 {
        for j in 0..100 {
            let i = chunk * 100 + j;
            store
                .append(
                    &format!("teacher:T{}", i % 5000),
                    ExpectedVersion::Any,
                    &[new_event(i)],
                    Durability::Buffered,
                )
                .unwrap();
        }
    }
    store.sync().unwrap();
}

/// A new directory, after the previous iteration's writes have reached the disk, so that one
/// measurement does not pay for another's writeback.
fn fresh_dir() -> tempfile::TempDir {
    let _ = std::process::Command::new("sync").status();
    tempfile::tempdir().unwrap()
}

fn bulk(c: &mut Criterion) {
    let mut g = c.benchmark_group("bulk");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(BULK));
    // the source ledger and its export
    let src_dir = tempfile::tempdir().unwrap();
    let src = Store::open(src_dir.path()).unwrap();
    fill(&src, BULK);
    let mut export = Vec::new();
    src.export(&mut export, &|_| None, &mut |_| {}).unwrap();
    let raws: Vec<(u64, Vec<u8>)> = src
        .iter_from(1)
        .map(|e| e.unwrap())
        .map(|e| (e.seq, e.to_bytes().unwrap()))
        .collect();
    // Close the source while writing: `eduledger import` runs in a process with no other sled
    // database open, and an open one slows every other (sled shares its epoch collector).
    drop(src);

    g.bench_function("reference: sled Batch(1000) insert + flush", |b| {
        b.iter_batched(
            fresh_dir,
            |dir| {
                let db = sled::open(dir.path()).unwrap();
                let t = db.open_tree("log").unwrap();
                for chunk in raws.chunks(1000) {
                    let mut batch = sled::Batch::default();
                    for (s, r) in chunk {
                        batch.insert(&s.to_be_bytes(), r.as_slice());
                    }
                    t.apply_batch(batch).unwrap();
                }
                db.flush().unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("store: import (checked, atomic)", |b| {
        b.iter_batched(
            fresh_dir,
            |dir| {
                let target = dir.path().join("ledger");
                import_new(
                    &target,
                    &mut export.as_slice(),
                    Arc::new(SystemClock),
                    &mut |_| {},
                )
                .unwrap();
                dir
            },
            BatchSize::PerIteration,
        )
    });

    let src = Store::open(src_dir.path()).unwrap();
    g.bench_function("reference: sled scan + bincode decode", |b| {
        let tree = src.raw_db_for_benches().open_tree("log").unwrap();
        b.iter(|| {
            let mut n = 0u64;
            for item in tree.iter() {
                let (_, v) = item.unwrap();
                let env = Envelope::from_bytes(&v).unwrap();
                n += env.seq;
            }
            n
        })
    });
    g.bench_function("store: read + decode + chain check", |b| {
        b.iter(|| {
            let mut n = 0u64;
            for env in src.iter_chained(1).unwrap() {
                n += env.unwrap().seq;
            }
            n
        })
    });
    g.finish();
}

criterion_group!(benches, durable_append, bulk);
criterion_main!(benches);
