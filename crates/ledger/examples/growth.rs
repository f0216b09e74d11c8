//! Does recording get slower as one entity grows? One kindergarten grows to 5,000 teachers and
//! one training to 2,000 attendees, one durable command at a time; at each checkpoint the
//! next command is decided (`Ledger::decide_batch`: every rule, encoding and the read-back
//! check — all `execute` does but the append and its fsync) SAMPLES times, alternating with
//! the same command into an empty kindergarten (or training) of the same ledger: the
//! reference, measured in the same run.
//!
//! `cargo run --release -p eduledger-ledger --example growth -- [SAMPLES]`
use std::sync::Arc;
use std::time::{Duration, Instant};

use eduledger_domain::{Submission, parse_submission};
use eduledger_ledger::Ledger;

fn cmd(text: &str) -> Submission {
    parse_submission(text).expect("command")
}

fn teacher(no: &str, home: &str) -> Submission {
    cmd(&format!(
        r#"{{"command":"register_teacher","staff_no":"{no}","name":"教师","home":"{home}","on":"2023-09-01"}}"#
    ))
}

fn attend(training: &str, no: &str) -> Submission {
    cmd(&format!(
        r#"{{"command":"record_attendance","training":"{training}","staff_nos":["{no}"]}}"#
    ))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median decide time of `grown` and of `empty`, sampled alternately.
fn compare(
    ledger: &Ledger,
    grown: &Submission,
    empty: &Submission,
    samples: usize,
) -> (Duration, Duration) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        let t = Instant::now();
        std::hint::black_box(
            ledger
                .decide_batch(std::slice::from_ref(grown), "bench")
                .expect("grown"),
        );
        a.push(t.elapsed());
        let t = Instant::now();
        std::hint::black_box(
            ledger
                .decide_batch(std::slice::from_ref(empty), "bench")
                .expect("empty"),
        );
        b.push(t.elapsed());
    }
    (median(a), median(b))
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let samples: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(300);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ledger =
        Ledger::open(dir.path().join("l"), Arc::new(eduledger_store::SystemClock)).expect("open");
    let setup: Vec<_> = ["大园", "空园", "中园"]
        .iter()
        .map(|k| cmd(&format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"first_class","ownership":"public","on":"2023-09-01"}}"#)))
        .collect();
    ledger.execute(&setup, "bench").expect("setup");

    println!(
        "\n## Growth: one kindergarten to 5,000 teachers (decide medians of {samples}, alternating)\n"
    );
    println!(
        "| teachers already in it | into it | into an empty kindergarten | ratio |\n|---|---|---|---|"
    );
    let checkpoints = [0usize, 10, 100, 500, 1000, 2000, 3000, 4000, 5000];
    let mut n = 0;
    for &c in &checkpoints {
        while n < c {
            ledger
                .execute(&[teacher(&format!("B{n}"), "大园")], "bench")
                .expect("grow");
            n += 1;
        }
        let (grown, empty) = compare(
            &ledger,
            &teacher("BX", "大园"),
            &teacher("EX", "空园"),
            samples,
        );
        println!(
            "| {c} | {} | {} | {:.2}× |",
            us(grown),
            us(empty),
            grown.as_secs_f64() / empty.as_secs_f64()
        );
    }

    // a training with 2,000 attendees: teachers first (batches), then one attendance each
    for b in 0..22 {
        let batch: Vec<_> = (b * 100..b * 100 + 100)
            .map(|i| teacher(&format!("M{i}"), "中园"))
            .collect();
        ledger.execute(&batch, "bench").expect("teachers");
    }
    for t in ["TBIG", "TEMPTY"] {
        ledger
            .execute(&[cmd(&format!(r#"{{"command":"hold_training","training":"{t}","title":"培训","tier":"district","organizer":"区教育学院","start":"2023-10-10","end":"2023-10-11","hours":8}}"#))], "bench")
            .expect("training");
    }
    println!(
        "\n## Growth: one training to 2,000 attendees (decide medians of {samples}, alternating)\n"
    );
    println!("| attendees already | into it | into an empty training | ratio |\n|---|---|---|---|");
    let mut n = 0;
    for &c in &[0usize, 10, 100, 500, 1000, 1500, 2000] {
        while n < c {
            ledger
                .execute(&[attend("TBIG", &format!("M{n}"))], "bench")
                .expect("attend");
            n += 1;
        }
        let (grown, empty) = compare(
            &ledger,
            &attend("TBIG", "M2100"),
            &attend("TEMPTY", "M2100"),
            samples,
        );
        println!(
            "| {c} | {} | {} | {:.2}× |",
            us(grown),
            us(empty),
            grown.as_secs_f64() / empty.as_secs_f64()
        );
    }
}
