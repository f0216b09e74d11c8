//! The eduledger side of the peer comparison (issue 11; benches/peer/README.md): the workload
//! benches/peer/peer.py runs on Python eventsourcing 9.5.6, through `Ledger::execute` as users
//! record (parse the JSON command line, decide, check the rules, append durably).
//! `cargo run --release -p eduledger-ledger --example peer -- all --single 2000 --batch 50000 --dir D`
//! Setup registers six kindergartens; `single` registers N1 teachers, one durable commit each;
//! `batch` registers N2 more in batches of 1,000, one durable commit per batch; `replay` drops
//! the ledger and opens it again with no snapshot, folding every event with the hash chain
//! checked. Prints one JSON line: `{"single":rate,"batch":rate,"replay":rate,"events":n}`
//! (commands/s, commands/s, events/s).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eduledger_domain::{Submission, parse_submission};
use eduledger_ledger::Ledger;
use eduledger_store::{Store, SystemClock};

const KGS: [&str; 6] = ["甲", "乙", "丙", "丁", "戊", "己"];
const BATCH: usize = 1000;
const USAGE: &str = "usage: peer [all] [--single N1] [--batch N2] [--dir DIR]";

/// Byte for byte the JSON command line peer.py parses.
fn teacher(i: usize) -> Submission {
    parse_submission(&format!(
        r#"{{"command":"register_teacher","staff_no":"T{i}","name":"教师{i}","home":"{}","on":"2023-09-01"}}"#,
        KGS[i % 6]
    ))
    .expect("register_teacher command")
}

fn usage(why: &str) -> ! {
    eprintln!("{why}\n{USAGE}");
    std::process::exit(2)
}

fn count(value: Option<String>, flag: &str) -> usize {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage(&format!("{flag} needs a number")))
}

fn rate(n: usize, since: Instant) -> f64 {
    n as f64 / since.elapsed().as_secs_f64()
}

fn run(path: &Path, single: usize, batch: usize) -> String {
    let mut ledger = Ledger::open(path, Arc::new(SystemClock)).expect("open");
    let setup: Vec<_> = KGS
        .iter()
        .map(|k| {
            parse_submission(&format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"first_class","ownership":"public","on":"2023-09-01"}}"#)).expect("register_kindergarten command")
        })
        .collect();
    ledger.execute(&setup, "bench").expect("setup");

    let t = Instant::now();
    for i in 0..single {
        ledger.execute(&[teacher(i)], "bench").expect("single");
    }
    let single_rate = rate(single, t);

    let end = single + batch;
    let t = Instant::now();
    for from in (single..end).step_by(BATCH) {
        let commands: Vec<_> = (from..(from + BATCH).min(end)).map(teacher).collect();
        ledger.execute(&commands, "bench").expect("batch");
    }
    let batch_rate = rate(batch, t);
    drop(ledger);

    // The writes above left no snapshot (only a fold at open writes one, and the open above
    // folded an empty ledger); discard any all the same, so the replay folds every event.
    let store = Store::open(path).expect("open the store");
    store
        .discard_snapshots_except("none")
        .expect("discard snapshots");
    drop(store);
    // sled lets go of its file lock a few milliseconds after a drop, and `Store::open` retries
    // a held lock every 20 ms: let it go here, outside the timed open
    std::thread::sleep(Duration::from_millis(100));

    // every = 0: the fold writes no snapshot either
    let t = Instant::now();
    let ledger = Ledger::open_with_snapshots(path, Arc::new(SystemClock), 0).expect("replay");
    let events = ledger.head().expect("head").seq as usize;
    let replay_rate = rate(events, t);
    assert_eq!(events, KGS.len() + end, "events after the replay");
    assert_eq!(
        ledger.state().teachers().len(),
        end,
        "teachers after the replay"
    );
    format!(
        r#"{{"single":{single_rate:.1},"batch":{batch_rate:.1},"replay":{replay_rate:.1},"events":{events}}}"#
    )
}

fn main() {
    let (mut single, mut batch, mut dir) = (2000, 50_000, None::<PathBuf>);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "all" => {}
            "--single" => single = count(args.next(), "--single"),
            "--batch" => batch = count(args.next(), "--batch"),
            "--dir" => {
                dir = Some(
                    args.next()
                        .unwrap_or_else(|| usage("--dir needs a directory"))
                        .into(),
                )
            }
            other => usage(&format!("unknown argument {other}")),
        }
    }
    // without --dir, a temp dir removed at the end
    let temp;
    let work = match dir {
        Some(dir) => dir,
        None => {
            temp = tempfile::tempdir().expect("temp dir");
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&work).expect("create --dir");
    let path = work.join("ledger");
    if path.exists() {
        usage(&format!("{} exists: give a fresh --dir", path.display()));
    }
    println!("{}", run(&path, single, batch));
}
