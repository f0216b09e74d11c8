//! Where does import time go? `cargo run --release -p eduledger-store --example import_profile`
use std::sync::Arc;
use std::time::Instant;

use eduledger_store::*;

fn main() {
    if let Ok(file) = std::env::var("IMPORT_FILE") {
        let data = std::fs::read(&file).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let t = Instant::now();
        let v = import_new(
            &dir.path().join("l"),
            &mut data.as_slice(),
            Arc::new(SystemClock),
            &mut |_| {},
        )
        .unwrap();
        eprintln!(
            "import only: {:?} = {:.0} events/s",
            t.elapsed(),
            v.events as f64 / t.elapsed().as_secs_f64()
        );
        return;
    }
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
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
    let _save = std::env::var("SAVE_EXPORT").map(|p| {
        let mut f = std::fs::File::create(p).unwrap();
        src.export(&mut f, &|_| None, &mut |_| {}).unwrap();
    });
    let t = Instant::now();
    src.export(&mut export, &|_| None, &mut |_| {}).unwrap();
    eprintln!(
        "export: {:?} ({} bytes/line)",
        t.elapsed(),
        export.len() as u64 / n
    );
    let t = Instant::now();
    let mut k = 0u64;
    for line in export.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let v: ExportLine = serde_json::from_slice(line).unwrap();
        k += v.seq;
    }
    eprintln!("json parse only (owned): {:?} {k}", t.elapsed());
    let dir = tempfile::tempdir().unwrap();
    let t = Instant::now();
    import_new(
        &dir.path().join("l"),
        &mut export.as_slice(),
        Arc::new(SystemClock),
        &mut |_| {},
    )
    .unwrap();
    eprintln!(
        "import: {:?} = {:.0} events/s",
        t.elapsed(),
        n as f64 / t.elapsed().as_secs_f64()
    );
}
