//! Shanghai-scale benchmark: a seeded synthetic history (≈ 5 million events), then the
//! numbers docs/PERFORMANCE.md reports, each beside the raw scan + decode rate measured in the
//! same run.
//!
//! Run: `cargo bench -p eduledger-ledger --bench scale` (Shanghai scale; the ledger is built
//! once under target/ and reused), or `EDULEDGER_SCALE=district cargo bench …` for a quick one.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eduledger_domain::points::RuleSet;
use eduledger_domain::values::Date;
use eduledger_ledger::Ledger;
use eduledger_ledger::synthetic::{self, Scale};
use eduledger_projection::{tally, views};
use eduledger_store::{Envelope, Store, SystemClock};

/// Reset the kernel's high-water mark of this process's memory, so each phase reports its own.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l.to_owned())
        })
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn main() {
    // cargo bench passes --bench; anything else (a filter) is ignored
    let which = std::env::var("EDULEDGER_SCALE").unwrap_or_else(|_| "shanghai".into());
    let scale = match which.as_str() {
        "district" => Scale::district(),
        "tiny" => Scale::tiny(),
        _ => Scale::shanghai(),
    };
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../target/scale-ledger-{which}"));
    let mut rows: Vec<(String, String)> = vec![];

    // 1. the ledger (built once, reused)
    let complete = dir.join("COMPLETE");
    if !complete.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        let t = Instant::now();
        let store = Store::open(&dir).expect("open");
        let n = synthetic::write(&store, scale, 2000, &mut |n| {
            if n % 500_000 < 2000 {
                eprintln!("  generated {n} events in {:.0?}", t.elapsed());
            }
        })
        .expect("generate");
        drop(store);
        std::fs::write(&complete, n.to_string()).expect("mark");
        rows.push((
            "generate and write (buffered, 2000 events per transaction)".into(),
            format!(
                "{n} events in {:.1?} = {:.0} events/s",
                t.elapsed(),
                n as f64 / t.elapsed().as_secs_f64()
            ),
        ));
    }
    let size: u64 = walk_size(&dir);

    // 2. reference: raw sled scan + envelope decode, and the store's chained read
    let store = Store::open(&dir).expect("open");
    let head = store.head().expect("head").seq;
    store.discard_snapshots_except("none").expect("discard");
    let raw = store.raw_db_for_benches().open_tree("log").expect("tree");
    let t = Instant::now();
    let mut n = 0u64;
    for item in raw.iter() {
        let (_, v) = item.expect("read");
        n += Envelope::from_bytes(&v).expect("decode").seq & 1;
    }
    let scan = t.elapsed();
    let scan_rate = head as f64 / scan.as_secs_f64();
    rows.push((
        "reference: sled scan + bincode decode".into(),
        format!("{:.1?} = {scan_rate:.0} events/s ({n})", scan),
    ));
    drop(raw);
    drop(store);

    // 3. full rebuild, no snapshots
    reset_peak();
    let t = Instant::now();
    let ledger = Ledger::open_with_snapshots(&dir, Arc::new(SystemClock), 0).expect("open");
    let rebuild = t.elapsed();
    let rebuild_rate = head as f64 / rebuild.as_secs_f64();
    rows.push((
        "full rebuild (open, fold every event, chain checked)".into(),
        format!(
            "{:.1?} = {rebuild_rate:.0} events/s = {:.2}× the scan",
            rebuild,
            rebuild_rate / scan_rate
        ),
    ));
    rows.push((
        "peak memory of the full rebuild (VmHWM, reset before it)".into(),
        format!("{:.0} MiB", peak_rss_mib()),
    ));
    drop(ledger);

    // 4. open again writing snapshots, then open as a user would
    reset_peak();
    let t = Instant::now();
    let ledger = Ledger::open(&dir, Arc::new(SystemClock)).expect("open");
    rows.push((
        "open, writing snapshots every 50,000 events".into(),
        format!("{:.1?}", t.elapsed()),
    ));
    drop(ledger);
    let t = Instant::now();
    let ledger = Ledger::open(&dir, Arc::new(SystemClock)).expect("open");
    rows.push((
        "open with snapshots (what every command pays)".into(),
        format!("{:.1?}", t.elapsed()),
    ));
    let snaps = ledger.store().snapshot_seqs().expect("snaps").len();

    // 5. views on random dates
    let state = ledger.state();
    let mut rng = Rng(42);
    let day = |rng: &mut Rng| {
        Date::from_naive(Date::jan1(2016).naive() + chrono::Duration::days(rng.below(3650) as i64))
    };
    let groups: Vec<String> = state.groups().keys().map(|g| g.to_string()).collect();
    let kgs: Vec<String> = state
        .kindergartens()
        .values()
        .map(|k| k.current_name().to_string())
        .collect();
    let staff: Vec<String> = state.teachers().keys().map(|t| t.to_string()).collect();
    let mut time_view = |name: &str, f: &mut dyn FnMut(&mut Rng)| {
        let mut times = vec![];
        for _ in 0..30 {
            let t = Instant::now();
            f(&mut rng);
            times.push(t.elapsed());
        }
        let max = *times.iter().max().expect("times");
        rows.push((
            format!("view: {name} on a random date"),
            format!("median {}, max {}", ms(median(times)), ms(max)),
        ));
    };
    time_view("groups (all groups, members)", &mut |r| {
        let v = views::groups(state, day(r));
        std::hint::black_box(v);
    });
    time_view("group", &mut |r| {
        let g = &groups[r.below(groups.len() as u64) as usize];
        std::hint::black_box(views::group(state, g, day(r)).ok());
    });
    time_view("kindergarten", &mut |r| {
        let k = &kgs[r.below(kgs.len() as u64) as usize];
        std::hint::black_box(views::kindergarten(state, k, day(r)).ok());
    });
    time_view("teacher", &mut |r| {
        let s = &staff[r.below(staff.len() as u64) as usize];
        std::hint::black_box(views::teacher(state, s, day(r)).ok());
    });

    // 5b. audit trails through the index (the first read of a ledger written before the
    // index existed indexes the whole log, once)
    {
        use eduledger_domain::EntityRef;
        use eduledger_domain::values::{GroupName, RecordId, StaffNo};
        let t = Instant::now();
        let first = EntityRef::Teacher(StaffNo::new(&staff[0]).expect("staff no"));
        let n = ledger.audit(&first, None).expect("audit").len();
        rows.push((
            "audit index: first trail read (catches the index up with the log if it is behind)"
                .into(),
            format!("{:.1?} ({n} events in the trail)", t.elapsed()),
        ));
        let trainings: Vec<RecordId> = state.trainings().keys().cloned().collect();
        let kg_ids: Vec<_> = state.kindergartens().keys().copied().collect();
        let mut time_trail = |name: &str, pick: &mut dyn FnMut(&mut Rng) -> EntityRef| {
            let mut times = vec![];
            let mut sizes = vec![];
            for _ in 0..30 {
                let e = pick(&mut rng);
                let t = Instant::now();
                let trail = ledger.audit(&e, None).expect("audit");
                times.push(t.elapsed());
                sizes.push(trail.len());
            }
            sizes.sort();
            let max = *times.iter().max().expect("times");
            rows.push((
                format!(
                    "audit trail of a random {name} (events in it: median {})",
                    sizes[sizes.len() / 2]
                ),
                format!("median {}, max {}", ms(median(times)), ms(max)),
            ));
        };
        time_trail("teacher", &mut |r| {
            EntityRef::Teacher(
                StaffNo::new(&staff[r.below(staff.len() as u64) as usize]).expect("staff no"),
            )
        });
        time_trail("kindergarten", &mut |r| {
            EntityRef::Kindergarten(kg_ids[r.below(kg_ids.len() as u64) as usize])
        });
        time_trail("training", &mut |r| {
            EntityRef::Training(trainings[r.below(trainings.len() as u64) as usize].clone())
        });
        time_trail("group", &mut |r| {
            EntityRef::Group(
                GroupName::new(&groups[r.below(groups.len() as u64) as usize]).expect("group"),
            )
        });
    }

    // 6. a year's tally
    let year = *state
        .rules()
        .keys()
        .nth(state.rules().len() / 2)
        .expect("a year with rules");
    let rules = RuleSet::parse(&state.rules()[&year].last().expect("rules").rules).expect("rules");
    let mut times = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        std::hint::black_box(tally::tally(
            state,
            &rules,
            year,
            eduledger_domain::values::Date::MAX,
            true,
            &|_| None,
        ));
        times.push(t.elapsed());
    }
    rows.push((
        format!("tally of one year ({year}, --explain)"),
        format!("median {}", ms(median(times))),
    ));

    // 7. known_at anywhere in the history
    let mut times = vec![];
    for _ in 0..20 {
        let cut = 1 + rng.below(head);
        let t = Instant::now();
        std::hint::black_box(ledger.state_at(Some(cut)).expect("state_at"));
        times.push(t.elapsed());
    }
    let max = *times.iter().max().expect("times");
    rows.push((
        "state as known at a random sequence (from the nearest snapshot)".into(),
        format!("median {}, max {}", ms(median(times)), ms(max)),
    ));
    rows.push((
        "peak memory from opening with snapshots through every query above (VmHWM)".into(),
        format!("{:.0} MiB", peak_rss_mib()),
    ));

    println!(
        "\n## Scale benchmark: {which} ({head} events, {:.0} MiB on disk, {snaps} snapshots)\n",
        size as f64 / 1048576.0
    );
    println!("| measure | result |\n|---|---|");
    for (k, v) in rows {
        println!("| {k} | {v} |");
    }
}

fn walk_size(p: &std::path::Path) -> u64 {
    std::fs::read_dir(p)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata();
                    match m {
                        Ok(m) if m.is_dir() => walk_size(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
