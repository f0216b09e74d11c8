//! What recording costs once the history is large: every command kind decided against the
//! Shanghai-scale ledger through the path `execute` takes (`Ledger::decide_batch`: parse
//! done, every rule, the correction replay, encoding and the read-back check — all but the
//! append), then recorded for real so the next command builds on it.
//!
//! `cargo run --release -p eduledger-ledger --example record_scale -- [LEDGER] [SAMPLES]`
//!
//! LEDGER defaults to the scale benchmark's (`target/scale-ledger-shanghai`, made by
//! `cargo bench -p eduledger-ledger --bench scale`). It is copied first (log and snapshots;
//! the copy is removed at the end), so the benchmark's ledger is never changed. Prints one
//! markdown row per command: decide p50 / p99 / max over SAMPLES decisions (default 200) on
//! the same state, and the wall time of the durable `execute` that follows (one fsync).
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use eduledger_domain::parse_submission;
use eduledger_ledger::Ledger;
use eduledger_store::SystemClock;

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let source = args.next().map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/scale-ledger-shanghai")
    });
    let samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let copy = source.with_extension("record-copy");
    let _ = std::fs::remove_dir_all(&copy);
    let t = Instant::now();
    copy_dir(&source, &copy).expect("copy the ledger");
    eprintln!("copied {} in {:.1?}", source.display(), t.elapsed());
    let t = Instant::now();
    let mut ledger = Ledger::open(&copy, Arc::new(SystemClock)).expect("open");
    let head = ledger.head().expect("head").seq;
    eprintln!("opened at {head} events in {:.1?}", t.elapsed());

    let rules = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../cli/data/rules-2024.toml"),
    )
    .expect("example rules")
    .replace("2024", "2026");
    let rules_json = serde_json::to_string(&rules).expect("rules as JSON");
    let g = "新集团";
    let steps: Vec<(&str, String)> = vec![
        ("register_kindergarten", r#"{"command":"register_kindergarten","kindergarten":"新园甲","category":"first_class","ownership":"public","cooperative_principal":true,"on":"2026-03-01"}"#.into()),
        ("register_kindergarten (2)", r#"{"command":"register_kindergarten","kindergarten":"新园乙","category":"first_class","ownership":"public","on":"2026-03-01"}"#.into()),
        ("register_kindergarten (3)", r#"{"command":"register_kindergarten","kindergarten":"新园丁","category":"first_class","ownership":"public","on":"2026-03-01"}"#.into()),
        ("designate_cooperative_principal", r#"{"command":"designate_cooperative_principal","kindergarten":"新园乙","on":"2026-03-02"}"#.into()),
        ("rename_kindergarten", r#"{"command":"rename_kindergarten","kindergarten":"新园乙","new_name":"新园丙","on":"2026-03-03"}"#.into()),
        ("found_group", format!(r#"{{"command":"found_group","group":"{g}","kind":"group","lead":"新园甲","on":"2026-03-05"}}"#)),
        ("join_group", format!(r#"{{"command":"join_group","kindergarten":"新园丙","group":"{g}","on":"2026-03-06"}}"#)),
        ("join_group (2)", format!(r#"{{"command":"join_group","kindergarten":"新园丁","group":"{g}","on":"2026-03-06"}}"#)),
        ("regrade_kindergarten", r#"{"command":"regrade_kindergarten","kindergarten":"新园丙","category":"second_class","on":"2026-03-07"}"#.into()),
        ("designate_high_quality", r#"{"command":"designate_high_quality","kindergarten":"新园丙","on":"2026-03-08"}"#.into()),
        ("revoke_high_quality", r#"{"command":"revoke_high_quality","kindergarten":"新园丙","on":"2026-03-09"}"#.into()),
        ("register_teacher", r#"{"command":"register_teacher","staff_no":"N0001","name":"新一","home":"新园丙","on":"2026-03-10"}"#.into()),
        ("register_teacher (2)", r#"{"command":"register_teacher","staff_no":"N0002","name":"新二","home":"新园甲","on":"2026-03-10"}"#.into()),
        ("register_teacher (existing kindergarten)", r#"{"command":"register_teacher","staff_no":"N0003","name":"新三","home":"园0001","on":"2026-03-10"}"#.into()),
        ("appoint_principal", r#"{"command":"appoint_principal","kindergarten":"新园丙","staff_no":"N0001","on":"2026-03-11"}"#.into()),
        ("end_principal", r#"{"command":"end_principal","kindergarten":"新园丙","on":"2026-03-12"}"#.into()),
        ("appoint_secretariat", format!(r#"{{"command":"appoint_secretariat","group":"{g}","staff_no":"N0002","role":"秘书长","from":"2026-03-12","to":"2027-03-11"}}"#)),
        ("dismiss_secretariat", format!(r#"{{"command":"dismiss_secretariat","group":"{g}","staff_no":"N0002","on":"2026-04-01"}}"#)),
        ("adopt_document", format!(r#"{{"command":"adopt_document","group":"{g}","doc_kind":"charter","title":"章程","on":"2026-03-13"}}"#)),
        ("assign_expert", format!(r#"{{"command":"assign_expert","group":"{g}","expert":"王教授","affiliation":"上海师范大学","from":"2026-03-13","to":"2026-12-31"}}"#)),
        ("change_home", r#"{"command":"change_home","staff_no":"N0001","home":"新园甲","on":"2026-03-15"}"#.into()),
        ("award_title", r#"{"command":"award_title","staff_no":"N0001","title":"backbone","on":"2026-03-16"}"#.into()),
        ("start_rotation", r#"{"command":"start_rotation","rotation":"RN1","staff_no":"N0001","host":"新园丙","mode":"shadowing","start":"2026-04-01","planned_end":"2026-09-30"}"#.into()),
        ("extend_rotation", r#"{"command":"extend_rotation","rotation":"RN1","planned_end":"2026-10-31","on":"2026-06-01"}"#.into()),
        ("end_rotation", r#"{"command":"end_rotation","rotation":"RN1","end":"2026-10-31","assessment":"qualified"}"#.into()),
        ("start_rotation (2)", r#"{"command":"start_rotation","rotation":"RN2","staff_no":"N0002","host":"新园丙","mode":"shadowing","start":"2026-04-01","planned_end":"2026-09-30"}"#.into()),
        ("cancel_rotation", r#"{"command":"cancel_rotation","rotation":"RN2","on":"2026-05-01","reason":"调整"}"#.into()),
        ("hold_training", format!(r#"{{"command":"hold_training","training":"TN1","title":"观察","tier":"group","organizer":"{g}","start":"2026-05-10","end":"2026-05-11","hours":12}}"#)),
        ("record_attendance", r#"{"command":"record_attendance","training":"TN1","staff_nos":["N0001","N0002"]}"#.into()),
        ("apply_recognition", r#"{"command":"apply_recognition","training":"TN1","on":"2026-05-20"}"#.into()),
        ("decide_recognition", r#"{"command":"decide_recognition","training":"TN1","granted":true,"on":"2026-06-01","reviewer":"青浦区教育局"}"#.into()),
        ("hold_activity", format!(r#"{{"command":"hold_activity","activity":"AN1","group":"{g}","kind":"joint_research","title":"教研","on":"2026-05-12","kindergartens":["新园甲","新园丙"]}}"#)),
        ("hold_activity (existing group)", r#"{"command":"hold_activity","activity":"AN2","group":"第001学前教育集团","kind":"joint_research","title":"教研","on":"2026-05-12","kindergartens":["园0001"]}"#.into()),
        ("propose_project", format!(r#"{{"command":"propose_project","project":"PN1","group":"{g}","kind":"key_project","title":"课程","year":2026,"on":"2026-03-20","members":["N0001"]}}"#)),
        ("approve_project", r#"{"command":"approve_project","project":"PN1","on":"2026-04-01","budget_fen":8000000}"#.into()),
        ("complete_project", r#"{"command":"complete_project","project":"PN1","on":"2026-11-01","rating":"good"}"#.into()),
        ("propose_project (2)", format!(r#"{{"command":"propose_project","project":"PN2","group":"{g}","kind":"curriculum","title":"资源","year":2026,"on":"2026-03-20"}}"#)),
        ("cancel_project", r#"{"command":"cancel_project","project":"PN2","on":"2026-04-01","reason":"并入"}"#.into()),
        ("adopt_points_rules", format!(r#"{{"command":"adopt_points_rules","year":2026,"rules":{rules_json},"on":"2026-01-05"}}"#)),
        ("change_lead", format!(r#"{{"command":"change_lead","group":"{g}","lead":"新园丙","on":"2026-11-02"}}"#)),
        ("leave_group", format!(r#"{{"command":"leave_group","kindergarten":"新园甲","group":"{g}","on":"2026-11-03"}}"#)),
        ("transfer_kindergarten", r#"{"command":"transfer_kindergarten","kindergarten":"新园丁","to_group":"第002学前教育集团","on":"2026-11-20"}"#.into()),
        ("leave_service", r#"{"command":"leave_service","staff_no":"N0002","on":"2026-11-10"}"#.into()),
        ("correct_event (the last event)", "CORRECT_LAST".into()),
        ("retract_event (an event 50,000 back)", "RETRACT_OLD".into()),
    ];

    println!("\n## Recording at Shanghai scale ({head} events before; {samples} decisions each)\n");
    println!(
        "| command | decide p50 | decide p99 | decide max | durable execute |\n|---|---|---|---|---|"
    );
    let mut all = vec![];
    for (name, text) in steps {
        let text = match text.as_str() {
            "CORRECT_LAST" => {
                let last = ledger.head().expect("head").seq;
                format!(
                    r#"{{"command":"correct_event","target":{last},"reason":"改期","replacement":{{"command":"leave_service","staff_no":"N0002","on":"2026-11-11"}}}}"#
                )
            }
            "RETRACT_OLD" => {
                // the newest attendance record 50,000 events or more back
                let mut seq = ledger.head().expect("head").seq - 50_000;
                loop {
                    match ledger.event_at(seq).expect("event") {
                        Some((_, eduledger_domain::Event::AttendanceRecorded(_))) => break,
                        _ => seq -= 1,
                    }
                }
                format!(r#"{{"command":"retract_event","target":{seq},"reason":"误录"}}"#)
            }
            _ => text,
        };
        let sub = parse_submission(&text).expect("command");
        let batch = [sub];
        let mut times = Vec::with_capacity(samples);
        let mut refused = None;
        // a correction replays the history after its target: seconds, not microseconds
        let n = if name.starts_with("retract_event") || name.starts_with("correct_event") {
            samples.min(10)
        } else {
            samples
        };
        for _ in 0..n {
            let t = Instant::now();
            match ledger.decide_batch(&batch, "bench") {
                Ok(d) => {
                    std::hint::black_box(d);
                }
                Err(e) => {
                    refused = Some(e.to_string());
                    break;
                }
            }
            times.push(t.elapsed());
        }
        if let Some(e) = refused {
            println!("| {name} | refused: {e} | | | |");
            continue;
        }
        times.sort();
        let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
        let t = Instant::now();
        ledger.execute(&batch, "bench").expect("record");
        let exec = t.elapsed();
        println!(
            "| {name} | {} | {} | {} | {} |",
            us(p(0.5)),
            us(p(0.99)),
            us(*times.last().expect("samples")),
            us(exec)
        );
        if !name.starts_with("correct_event") && !name.starts_with("retract_event") {
            all.extend(times);
        }
    }
    all.sort();
    let p = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len() - 1)];
    println!(
        "| **every kind but corrections, together** | {} | {} | {} | |",
        us(p(0.5)),
        us(p(0.99)),
        us(*all.last().expect("samples"))
    );
    drop(ledger);
    let _ = std::fs::remove_dir_all(&copy);
}
