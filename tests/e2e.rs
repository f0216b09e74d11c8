//! End-to-end: the real `eduledger` binary on real ledger directories.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

mod common;
use common::*;

struct Ledger {
    dir: tempfile::TempDir,
}

impl Ledger {
    fn new() -> Ledger {
        Ledger {
            dir: tempfile::tempdir().unwrap(),
        }
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }
    fn run(&self, args: &[&str]) -> Run {
        run_in(self.dir.path(), &self.db(), args, None)
    }
    fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        run_in(self.dir.path(), &self.db(), args, Some(stdin))
    }
    fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert_eq!(r.code, 0, "eduledger {args:?} failed: {}", r.stderr);
        r.stdout
    }
    fn json(&self, args: &[&str]) -> Value {
        let mut a = args.to_vec();
        a.extend(["--format", "json"]);
        serde_json::from_str(&self.ok(&a)).unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }
    fn digest(&self) -> String {
        self.json(&["verify"])["digest"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    /// A ledger as the demo builds it, kept in this directory.
    fn demo() -> Ledger {
        let l = Ledger::new();
        let out = l.ok(&["demo"]);
        assert!(out.contains("2024 年度积分"), "{out}");
        l
    }
}

#[test]
fn the_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme.split("```sh").nth(1).unwrap();
    assert!(block.contains("cargo run --release -- demo"));
    assert!(block.contains("cargo nextest run --workspace"));
    let ci = std::fs::read_to_string(root().join(".ci/run")).unwrap();
    assert!(ci.contains("cargo nextest run --workspace"));
    assert!(ci.contains("cargo fmt --all -- --check"));
    assert!(ci.contains("cargo clippy --workspace --all-targets -- -D warnings"));
}

#[test]
fn demo_works_from_any_directory_in_a_temporary_ledger() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("demo")
        .current_dir(elsewhere.path())
        .env_remove("EDULEDGER_DB")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("佳佳学前教育集团") && text.contains("摘要"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "the demo left files in the working directory"
    );
}

#[test]
fn demo_refuses_a_ledger_that_already_has_events() {
    let l = Ledger::demo();
    let r = l.run(&["demo"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("demo needs a new ledger"), "{}", r.stderr);
}

#[test]
fn groups_show_the_2023_roster_in_the_json_contract() {
    let l = Ledger::new();
    l.ok(&["roster", "import"]);
    let v = l.json(&["groups", "--on", "2023-10-01"]);
    assert_eq!(v["on"], "2023-10-01");
    assert_eq!(v["known_at"], Value::Null);
    assert_eq!(v["head"]["seq"], 132);
    assert_eq!(v["head"]["hash"].as_str().unwrap().len(), 64);
    let groups = v["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 7);
    let total: usize = groups
        .iter()
        .map(|g| g["members"].as_array().unwrap().len())
        .sum();
    assert_eq!(total, 66);
    let jj = groups
        .iter()
        .find(|g| g["name"] == "佳佳学前教育集团")
        .unwrap();
    assert_eq!(jj["kind"], "group");
    assert_eq!(jj["lead"], "佳佳");
    assert_eq!(
        jj["members"][0],
        serde_json::json!({"name":"佳佳","role":"lead","category":"unspecified","ownership":"public","provisional":false,"high_quality":false})
    );
    // before the roster took effect there were no groups
    assert_eq!(
        l.json(&["groups", "--on", "2023-09-19"])["groups"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn a_person_records_a_rotation_with_flags_and_reads_it_back() {
    let l = Ledger::new();
    l.ok(&["roster", "import"]);
    l.ok(&[
        "teacher",
        "register",
        "--staff",
        "T0012",
        "--name",
        "孙悦",
        "--home",
        "佳佳",
        "--on",
        "2023-09-20",
    ]);
    let out = l.ok(&[
        "rotation",
        "start",
        "--id",
        "R2024-001",
        "--staff",
        "T0012",
        "--host",
        "赵屯",
        "--mode",
        "demonstration_teaching",
        "--start",
        "2024-09-01",
        "--planned-end",
        "2026-06-30",
        "--source",
        "青教〔2024〕1号",
    ]);
    let written: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(written["seqs"], serde_json::json!([134]));
    let t = l.json(&["teacher", "T0012", "--on", "2025-01-01"]);
    assert_eq!(t["teacher"]["home"], "佳佳");
    assert_eq!(t["teacher"]["host"], "赵屯");
    assert_eq!(t["teacher"]["rotations"][0]["status"], "running");
    let h = l.json(&["history", "rotation", "R2024-001"]);
    assert_eq!(h["events"][0]["actor"], "tester");
    assert_eq!(h["events"][0]["source"], "青教〔2024〕1号");
}

#[test]
fn a_refused_command_exits_1_names_the_rule_and_leaves_the_digest_unchanged() {
    let l = Ledger::demo();
    let before = l.digest();
    let r = l.run(&[
        "group",
        "join",
        "--kindergarten",
        "佳佳",
        "--group",
        "朵朵学前教育集团",
        "--on",
        "2024-03-01",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("already in 佳佳学前教育集团"),
        "{}",
        r.stderr
    );
    let r = l.run(&[
        "rotation",
        "start",
        "--id",
        "R9",
        "--staff",
        "T0001",
        "--host",
        "赵屯",
        "--mode",
        "shadowing",
        "--start",
        "2024-02-30",
        "--planned-end",
        "2024-06-30",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("start") && r.stderr.contains("2024-02-30"),
        "{}",
        r.stderr
    );
    let r = l.run(&[
        "rotation",
        "start",
        "--id",
        "R9",
        "--staff",
        "T0001",
        "--host",
        "赵屯",
        "--mode",
        "shadowing",
        "--start",
        "2026-09-01",
        "--planned-end",
        "2028-09-01",
    ]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("24 months and 1 day"), "{}", r.stderr);
    assert_eq!(l.digest(), before);
}

#[test]
fn usage_errors_exit_2() {
    let l = Ledger::new();
    let r = l.run(&["rotation", "start", "--id", "R1"]);
    assert_eq!(r.code, 2);
    assert!(
        r.stderr.contains("required arguments were not provided")
            && r.stderr.contains("--staff-no"),
        "{}",
        r.stderr
    );
    let r = l.run(&["rotation", "start", "--colour", "red"]);
    assert_eq!(r.code, 2);
    assert_eq!(l.run(&["frobnicate"]).code, 2);
    assert_eq!(l.run(&["tally"]).code, 2);
    assert_eq!(l.run(&["rotation", "teleport"]).code, 2);
}

#[test]
fn unknown_names_suggest_the_closest_known_ones() {
    let l = Ledger::new();
    l.ok(&["roster", "import"]);
    let r = l.run(&["kindergarten", "白鹤第三"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("白鹤第二"), "{}", r.stderr);
    let r = l.run(&["group", "佳佳学前集团"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("佳佳学前教育集团"), "{}", r.stderr);
}

#[test]
fn a_batch_with_one_bad_line_records_nothing_and_names_the_line() {
    let l = Ledger::new();
    l.ok(&["roster", "import"]);
    let before = l.digest();
    let batch = [
        r#"{"command":"register_teacher","staff_no":"T1","name":"甲","home":"佳佳","on":"2023-09-20"}"#,
        r#"{"command":"register_teacher","staff_no":"T2","name":"乙","home":"佳佳","on":"2023-09-20"}"#,
        r#"{"command":"register_teacher","staff_no":"T3","name":"丙","home":"不存在","on":"2023-09-20"}"#,
    ]
    .join("\n");
    let r = l.run_stdin(&["submit", "-"], &batch);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("line 3") && r.stderr.contains("nothing was recorded"),
        "{}",
        r.stderr
    );
    let bad_json = batch.replace(
        "\"on\":\"2023-09-20\"}\n{\"command\":\"register_teacher\",\"staff_no\":\"T2\"",
        "\"on\":\"2023-09-20\"}\n{\"command\":\"register_teacher\",\"staff_no\":12",
    );
    let r = l.run_stdin(&["submit", "-"], &bad_json);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("line 2") && r.stderr.contains("staff_no"),
        "{}",
        r.stderr
    );
    assert_eq!(l.digest(), before);
    let r = l.run_stdin(&["submit", "-"], &batch.replace("不存在", "佳佳"));
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn known_at_before_a_correction_shows_the_old_answer() {
    let l = Ledger::demo();
    // the demo corrects activity A2024-10 from 2024-12-10 to 2025-01-07
    let h = l.json(&["history", "activity", "A2024-10"]);
    let ev = h["events"].as_array().unwrap();
    let (original, correction) = (
        ev[0]["seq"].as_u64().unwrap(),
        ev[1]["seq"].as_u64().unwrap(),
    );
    assert_eq!(ev[0]["status"], "corrected");
    assert_eq!(ev[0]["corrected_by"], serde_json::json!([correction]));
    assert_eq!(ev[1]["status"], "correction");
    assert_eq!(ev[1]["targets"], original);
    let cut = format!("seq:{}", correction - 1);
    let before = l.json(&["tally", "--year", "2024", "--known-at", &cut]);
    let after = l.json(&["tally", "--year", "2024"]);
    let dd = |v: &Value| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == "朵朵学前教育集团")
            .unwrap()["total"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(
        dd(&before) - dd(&after),
        2,
        "the corrected activity's points left 2024"
    );
    assert_eq!(before["known_at"], cut);
    assert_eq!(before["head"]["seq"], correction - 1);
    // the history as known then shows no correction yet
    let old = l.json(&["history", "activity", "A2024-10", "--known-at", &cut]);
    assert_eq!(old["events"][0]["status"], "effective");
    // by time: a correction recorded later, asked about just before it was recorded
    let target = l.json(&["history", "activity", "A2024-09"])["events"][0]["seq"]
        .as_u64()
        .unwrap();
    let fix = l.dir.path().join("fix.json");
    std::fs::write(&fix, r#"{"command":"hold_activity","activity":"A2024-09","group":"佳佳学前教育集团","kind":"joint_research","title":"集中主题教研：幼儿发展优先","on":"2025-01-08","kindergartens":["佳佳","盈星","鹿鸣"]}"#).unwrap();
    l.ok(&[
        "correct",
        &target.to_string(),
        fix.to_str().unwrap(),
        "--reason",
        "日期有误",
    ]);
    let recorded = l.json(&["history", "activity", "A2024-09"])["events"][1]["recorded_at_us"]
        .as_i64()
        .unwrap();
    let t = chrono::DateTime::from_timestamp_micros(recorded - 1)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let jj = |v: &Value| {
        v["groups"]
            .as_array()
            .unwrap()
            .iter()
            .find(|g| g["group"] == "佳佳学前教育集团")
            .unwrap()["total"]
            .as_i64()
            .unwrap()
    };
    let then = l.json(&["tally", "--year", "2024", "--known-at", &t]);
    let now = l.json(&["tally", "--year", "2024"]);
    assert_eq!(
        jj(&then) - jj(&now),
        2,
        "the tally as known before the correction keeps the old date"
    );
    assert_eq!(jj(&then), jj(&after));
}

#[test]
fn correct_and_retract_from_the_command_line() {
    let l = Ledger::demo();
    let seq = l.json(&["history", "project", "P2025-01"])["events"][0]["seq"]
        .as_u64()
        .unwrap();
    let file = l.dir.path().join("fix.json");
    std::fs::write(&file, r#"{"command":"propose_project","project":"P2025-01","group":"朱家角学前教育集团","kind":"curriculum","title":"水乡特色课程","year":2025,"on":"2025-02-15","members":["T0007"]}"#).unwrap();
    let r = l.run(&["correct", &seq.to_string(), file.to_str().unwrap()]);
    assert_eq!(r.code, 2, "a correction needs a reason");
    l.ok(&[
        "correct",
        &seq.to_string(),
        file.to_str().unwrap(),
        "--reason",
        "项目类别有误",
    ]);
    let h = l.json(&["history", "project", "P2025-01"]);
    assert_eq!(h["events"][0]["status"], "corrected");
    let fix = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "correction")
        .unwrap();
    assert_eq!(fix["targets"], seq);
    assert_eq!(fix["reason"], "项目类别有误");
    assert_eq!(
        fix["event"]["data"]["replacement"]["data"]["kind"],
        "curriculum"
    );
    let r = l.run(&["retract", "1", "--reason", "试图撤销一个被引用的园所"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("would break a rule"), "{}", r.stderr);
}

#[test]
fn every_read_answers_in_json_table_and_csv() {
    let l = Ledger::demo();
    for args in [
        vec!["groups", "--on", "2025-01-01"],
        vec!["group", "佳佳学前教育集团", "--on", "2024-03-01"],
        vec!["kindergarten", "赵屯", "--on", "2024-07-01"],
        vec!["teacher", "T0001", "--on", "2025-01-01"],
        vec!["history", "kindergarten", "新华"],
        vec!["log", "--from", "130", "--limit", "5"],
        vec!["tally", "--year", "2024", "--explain"],
        vec![
            "report",
            "compliance",
            "--year",
            "2024",
            "--on",
            "2025-12-31",
        ],
        vec!["report", "rewards", "--year", "2024"],
    ] {
        let v = l.json(&args);
        assert!(v.get("head").is_some(), "{args:?} has no head");
        let mut t = args.clone();
        t.extend(["--format", "table"]);
        let table = l.ok(&t);
        assert!(!table.trim().is_empty());
        let mut c = args.clone();
        c.extend(["--format", "csv"]);
        let csv = l.ok(&c);
        assert!(csv.starts_with('\u{feff}'), "{args:?} CSV has no BOM");
    }
    let g = l.json(&["group", "佳佳学前教育集团", "--on", "2024-03-01"]);
    assert_eq!(g["group"]["council"]["chair"]["staff_no"], "T0011");
    assert_eq!(g["group"]["secretariat"][0]["staff_no"], "T0009");
    let k = l.json(&["kindergarten", "新华", "--on", "2025-10-01"]);
    assert_eq!(k["kindergarten"]["name"], "朱家角新华");
    assert_eq!(k["kindergarten"]["inflow"][0]["staff_no"], "T0007");
    let t = l.json(&["teacher", "T0001", "--on", "2025-01-01"]);
    assert_eq!(t["teacher"]["eligible"], true);
    assert_eq!(t["teacher"]["district_hours"], "30");
}

#[test]
fn export_then_import_gives_byte_identical_reads() {
    let l = Ledger::demo();
    let export = l.dir.path().join("ledger.jsonl");
    l.ok(&["export", export.to_str().unwrap()]);
    let copy = tempfile::tempdir().unwrap();
    let db2 = copy.path().join("copy.db");
    let r = run_in(
        copy.path(),
        &db2,
        &["import", export.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    for args in [
        vec!["groups", "--on", "2025-06-01", "--format", "json"],
        vec!["tally", "--year", "2024", "--explain", "--format", "json"],
        vec![
            "report",
            "compliance",
            "--year",
            "2025",
            "--on",
            "2025-12-31",
            "--format",
            "json",
        ],
        vec!["verify", "--format", "json"],
    ] {
        let a = l.ok(&args);
        let b = run_in(copy.path(), &db2, &args, None);
        assert_eq!(b.code, 0);
        assert_eq!(a, b.stdout, "{args:?} differs after export/import");
    }
    // importing into a ledger that has events is refused
    let r = l.run(&["import", export.to_str().unwrap()]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("is not an empty directory") && r.stderr.contains("nothing was touched"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_tampered_export_is_refused_with_the_line() {
    let l = Ledger::demo();
    let text = l.ok(&["export", "-"]);
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines.swap(9, 10);
    let copy = tempfile::tempdir().unwrap();
    let r = run_in(
        copy.path(),
        &copy.path().join("x.db"),
        &["import", "-"],
        Some(&lines.join("\n")),
    );
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 10"), "{}", r.stderr);
    assert!(!copy.path().join("x.db").exists());
}

#[test]
fn verify_checks_a_noted_digest_and_exit_3_on_mismatch() {
    let l = Ledger::demo();
    let d = l.digest();
    let v = l.json(&["verify", "--digest", &d]);
    assert_eq!(v["ok"], true);
    let wrong = format!(
        "{}{}",
        &d[..d.len() - 1],
        if d.ends_with('0') { "1" } else { "0" }
    );
    let r = l.run(&["verify", "--digest", &wrong]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("digest mismatch"), "{}", r.stderr);
}

#[test]
fn a_ledger_held_by_another_process_is_in_use_exit_3() {
    let l = Ledger::new();
    l.ok(&["roster", "import"]);
    let _held = eduledger_store::Store::open(l.db()).unwrap();
    let r = l.run(&["groups"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("ledger is in use by another process"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("panicked"));
}

#[test]
fn a_ledger_of_a_newer_format_exit_3() {
    let l = Ledger::new();
    l.ok(&["roster", "import"]);
    {
        let db = sled::open(l.db()).unwrap();
        db.open_tree("meta")
            .unwrap()
            .insert("format", &7u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let r = l.run(&["groups"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("format version 7"), "{}", r.stderr);
}

#[test]
fn tally_previews_an_unadopted_rule_file_and_refuses_a_bad_one() {
    let l = Ledger::demo();
    let rules = l.dir.path().join("r.toml");
    std::fs::write(
        &rules,
        "year = 2024\n[[rule]]\nid = \"all_activities\"\nfact = \"activity_held\"\npoints = 1\n",
    )
    .unwrap();
    let v = l.json(&[
        "tally",
        "--year",
        "2024",
        "--rules",
        rules.to_str().unwrap(),
    ]);
    assert_eq!(v["rules"]["adopted"], false);
    std::fs::write(
        &rules,
        "year = 2024\n[[rule]]\nid = \"x\"\nfact = \"nope\"\npoints = 1\n",
    )
    .unwrap();
    let r = l.run(&["rules", "adopt", rules.to_str().unwrap(), "--year", "2024"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("line 4"), "{}", r.stderr);
    let r = l.run(&["tally", "--year", "2023"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("no points rules"), "{}", r.stderr);
}

/// Golden outputs: the same ledger must always give the same bytes. Set UPDATE_GOLDEN=1 to
/// rewrite them after an intended change, and review the diff.
#[test]
fn tally_compliance_and_rewards_match_their_goldens() {
    let l = Ledger::demo();
    for (name, args) in [
        (
            "tally-2024.json",
            vec![
                "tally",
                "--year",
                "2024",
                "--on",
                "2024-12-31",
                "--explain",
                "--format",
                "json",
            ],
        ),
        (
            "compliance-2024.json",
            vec![
                "report",
                "compliance",
                "--year",
                "2024",
                "--on",
                "2025-12-31",
                "--format",
                "json",
            ],
        ),
        (
            "rewards-2024.json",
            vec![
                "report",
                "rewards",
                "--year",
                "2024",
                "--on",
                "2025-12-31",
                "--format",
                "json",
            ],
        ),
        (
            "groups-2025-06-30.json",
            vec!["groups", "--on", "2025-06-30", "--format", "json"],
        ),
    ] {
        let got = l.ok(&args);
        let path = root().join("tests/golden").join(name);
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&path, &got).unwrap();
        }
        let want = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("missing golden {name}; run with UPDATE_GOLDEN=1"));
        assert_eq!(got, want, "{name} changed");
    }
}

/// Compatibility: a ledger written by version 0.1 (an export committed under tests/fixtures)
/// must import, verify and give the same answers with every later version. A change to an
/// event's shape needs an upcaster, or this test fails.
#[test]
fn the_v0_1_fixture_still_imports_and_answers_the_same() {
    let fixture = root().join("tests/fixtures/ledger-v0.1.jsonl");
    // The fixture and its answers are never regenerated: they are what v0.1 wrote.
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("old.db");
    // v0.1 wrote no end line: its head, noted when it was written, vouches for its end
    let r = run_in(
        dir.path(),
        &db,
        &["import", fixture.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--digest"), "{}", r.stderr);
    let r = run_in(
        dir.path(),
        &db,
        &[
            "import",
            fixture.to_str().unwrap(),
            "--digest",
            "227:e22337f7161de096d5e7f68da24558c8042381bf5f6e4dc274c0b7a92b6085ba",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = run_in(dir.path(), &db, &["verify", "--format", "json"], None);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["events"], 227);
    let tally = run_in(
        dir.path(),
        &db,
        &[
            "tally",
            "--year",
            "2024",
            "--on",
            "2024-12-31",
            "--explain",
            "--format",
            "json",
        ],
        None,
    );
    // frozen when the fixture was written: the answers of v0.1, unchanged. The tally has
    // since gained the date it was read on (`on`), the one field v0.1 did not print.
    let want: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("tests/golden/fixture-v0.1-tally-2024.json")).unwrap(),
    )
    .unwrap();
    let mut got: Value = serde_json::from_str(&tally.stdout).unwrap();
    assert_eq!(got["on"], "2024-12-31");
    got.as_object_mut().unwrap().remove("on");
    assert_eq!(got, want);
}

#[test]
fn a_correction_shows_its_reason_in_the_audit_trail() {
    let l = Ledger::demo();
    let h = l.json(&["history", "activity", "A2024-10"]);
    assert_eq!(h["events"][1]["status"], "correction");
    assert_eq!(
        h["events"][1]["reason"],
        "活动实际于2025年1月7日举行，原记录日期有误"
    );
}

#[test]
fn a_read_of_a_missing_ledger_exits_3_and_creates_nothing() {
    let l = Ledger::new();
    let r = l.run(&["groups"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("there is no ledger at"), "{}", r.stderr);
    assert!(!l.db().exists(), "a read created a ledger");
}

/// Run with the clock set to `start_us` (the stepping test clock).
fn run_at(db: &Path, start_us: i64, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.arg("--db")
        .arg(db)
        .args(args)
        .env("EDULEDGER_CLOCK_START_US", start_us.to_string())
        .env("USER", "tester")
        .env("TZ", "America/Los_Angeles")
        .env_remove("EDULEDGER_DB")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes());
    }
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn known_at_a_date_is_the_end_of_that_day_in_shanghai_whatever_the_machine_zone() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    // 2024-12-31T15:00:00Z = 23:00 on 12-31 in Shanghai
    let r = run_at(&db, 1_735_657_200_000_000, &["roster", "import"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // 2024-12-31T16:30:00Z = 00:30 on 2025-01-01 in Shanghai (still 12-31 in UTC)
    let r = run_at(
        &db,
        1_735_662_600_000_000,
        &["submit", "-"],
        Some(
            r#"{"command":"register_teacher","staff_no":"Z1","name":"新教师","home":"佳佳","on":"2024-12-01"}"#,
        ),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let later = 1_800_000_000_000_000;
    // known at 2024-12-31 (Shanghai): the teacher was not yet recorded
    let r = run_at(
        &db,
        later,
        &[
            "teacher",
            "Z1",
            "--on",
            "2024-12-31",
            "--known-at",
            "2024-12-31",
        ],
        None,
    );
    assert_ne!(
        r.code, 0,
        "recorded at 00:30 on 2025-01-01 in Shanghai, so not known at 2024-12-31: {}",
        r.stdout
    );
    assert!(r.stderr.contains("Z1"), "{}", r.stderr);
    let r = run_at(
        &db,
        later,
        &[
            "teacher",
            "Z1",
            "--on",
            "2024-12-31",
            "--known-at",
            "2025-01-01",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // recorded times are shown with the bureau's offset
    let r = run_at(
        &db,
        later,
        &["log", "--from", "1", "--limit", "1", "--format", "json"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stdout.contains("2024-12-31T23:00:00.000000+08:00"),
        "{}",
        r.stdout
    );
}

/// The leaks of v0.1's reads on a date, on the demo ledger: each read on D shows D.
#[test]
fn reads_on_a_date_show_that_date_and_nothing_later() {
    let l = Ledger::demo();
    // R2023-001 starts 2023-10-08: on 2023-10-01 it does not exist yet
    let t = l.json(&["teacher", "T0001", "--on", "2023-10-01"]);
    assert_eq!(t["teacher"]["rotations"], serde_json::json!([]), "{t}");
    // 新华 is renamed 朱家角新华 on 2025-09-01: before that, every view says 新华
    let t = l.json(&["teacher", "T0007", "--on", "2025-03-01"]);
    assert_eq!(t["teacher"]["host"], "新华", "{t}");
    assert_eq!(t["teacher"]["rotations"][0]["host"], "新华", "{t}");
    let r = l.run(&["kindergarten", "朱家角新华", "--on", "2025-03-01"]);
    assert_eq!(
        r.code, 1,
        "a name given later does not exist yet: {}",
        r.stdout
    );
    // 佳佳's 2024-2025-1 semester starts 2024-09-01: not held on 2024-03-01
    let c = l.json(&[
        "report",
        "compliance",
        "--year",
        "2024",
        "--on",
        "2024-03-01",
    ]);
    let sem = c["compliance"]["semesters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["group"] == "佳佳学前教育集团" && s["semester"] == "2024-2025-1")
        .unwrap()
        .clone();
    assert_eq!(sem["status"], "in_progress", "{sem}");
    assert_eq!(sem["activities"], serde_json::json!([]));
    // the tally and the rewards on a date count only what is dated by then
    let mid = l.json(&["tally", "--year", "2024", "--on", "2024-06-30", "--explain"]);
    let full = l.json(&["tally", "--year", "2024", "--on", "2024-12-31", "--explain"]);
    let sum = |t: &Value| -> i64 {
        t["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["total"].as_i64().unwrap())
            .sum()
    };
    assert!(
        sum(&mid) < sum(&full),
        "mid-year {} vs year {}",
        sum(&mid),
        sum(&full)
    );
    for g in mid["groups"].as_array().unwrap() {
        for line in g["lines"].as_array().unwrap() {
            assert!(line["date"].as_str().unwrap() <= "2024-06-30", "{line}");
        }
    }
    assert_eq!(
        mid["on"], "2024-06-30",
        "the tally names the date it was read on"
    );
    // audit trails list events as recorded: a date to read them "on" is refused
    let r = l.run(&["history", "kindergarten", "新华", "--on", "2024-01-01"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--on does not apply"), "{}", r.stderr);
    let rw = l.json(&["report", "rewards", "--year", "2024", "--on", "2024-06-30"]);
    let entries = rw["rewards"].as_array().unwrap();
    assert!(!entries.is_empty());
    for e in entries {
        assert!(e["to"].as_str().unwrap() <= "2024-06-30", "{e}");
    }
}

/// The plan's other reports, each checked against numbers computed here from the shipped
/// data files — the roster table and the sample history — not by the code under test.
#[test]
fn balance_funds_and_rotations_match_the_data_they_come_from() {
    let l = Ledger::demo();
    // balance on the roster's day, from the roster table itself
    let roster = std::fs::read_to_string(root().join("crates/cli/data/roster-2023.tsv")).unwrap();
    let mut want: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> =
        Default::default();
    for row in roster.trim_start_matches('\u{feff}').lines().skip(1) {
        let cells: Vec<&str> = row.split('\t').collect();
        if cells.len() < 2 {
            continue;
        }
        let (group, lead) = (cells[0].trim(), cells[1].trim());
        let counts = want.entry(group.to_owned()).or_default();
        let mut lead_listed = false;
        for (i, code) in ["first_class", "second_class", "new_built"]
            .iter()
            .enumerate()
        {
            let names: Vec<&str> = cells
                .get(i + 2)
                .map(|c| {
                    c.split('、')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            lead_listed |= names.iter().any(|n| n.split('（').next() == Some(lead));
            if !names.is_empty() {
                *counts.entry((*code).to_owned()).or_default() += names.len() as u64;
            }
        }
        if !lead_listed {
            *counts.entry("unspecified".into()).or_default() += 1;
        }
    }
    let b = l.json(&["report", "balance", "--on", "2023-09-20"]);
    let got: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> =
        b["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                let cats = g["categories"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
                    .collect();
                (g["group"].as_str().unwrap().to_owned(), cats)
            })
            .collect();
    assert_eq!(got, want);
    // funds and rotations from the sample history's commands
    let history =
        std::fs::read_to_string(root().join("crates/cli/data/sample-history.jsonl")).unwrap();
    let cmds: Vec<Value> = history
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    fn by<'a>(cmds: &'a [Value], name: &'static str) -> impl Iterator<Item = &'a Value> + 'a {
        cmds.iter().filter(move |c| c["command"] == name)
    }
    let by = |name: &'static str| by(&cmds, name);
    for year in [2024, 2025] {
        let mut want_funds: std::collections::BTreeMap<(String, String), (i64, i64)> =
            Default::default();
        for p in by("propose_project").filter(|p| p["year"] == year) {
            let id = &p["project"];
            let Some(budget) = by("approve_project")
                .find(|a| &a["project"] == id)
                .map(|a| a["budget_fen"].as_i64().unwrap())
            else {
                continue;
            };
            let done = by("complete_project").any(|c| &c["project"] == id);
            let e = want_funds
                .entry((
                    p["group"].as_str().unwrap().to_owned(),
                    p["kind"].as_str().unwrap().to_owned(),
                ))
                .or_default();
            e.0 += budget;
            if done {
                e.1 += budget;
            }
        }
        let f = l.json(&[
            "report",
            "funds",
            "--year",
            &year.to_string(),
            "--on",
            "2025-12-31",
        ]);
        let mut got_funds = std::collections::BTreeMap::new();
        for g in f["groups"].as_array().unwrap() {
            for u in g["uses"].as_array().unwrap() {
                got_funds.insert(
                    (
                        g["group"].as_str().unwrap().to_owned(),
                        u["use"].as_str().unwrap().to_owned(),
                    ),
                    (
                        u["approved_fen"].as_i64().unwrap(),
                        u["completed_fen"].as_i64().unwrap(),
                    ),
                );
            }
        }
        assert_eq!(got_funds, want_funds, "funds {year}");
        let total: i64 = want_funds.values().map(|v| v.0).sum();
        assert_eq!(f["total_approved_fen"], total);
        // rotations that ran in the year: from start, extensions, ends and cancellations
        let (jan1, dec31) = (format!("{year}-01-01"), format!("{year}-12-31"));
        let mut want_rot = std::collections::BTreeSet::new();
        for r in by("start_rotation") {
            let id = &r["rotation"];
            let start = r["start"].as_str().unwrap().to_owned();
            let mut last = r["planned_end"].as_str().unwrap().to_owned();
            for x in by("extend_rotation").filter(|x| &x["rotation"] == id) {
                last = x["planned_end"].as_str().unwrap().to_owned();
            }
            if let Some(e) = by("end_rotation").find(|e| &e["rotation"] == id) {
                last = e["end"].as_str().unwrap().to_owned();
            }
            if let Some(c) = by("cancel_rotation").find(|c| &c["rotation"] == id) {
                // cancelled `on`: the last day on rotation is the day before
                let on = chrono::NaiveDate::parse_from_str(c["on"].as_str().unwrap(), "%Y-%m-%d")
                    .unwrap();
                last = on.pred_opt().unwrap().format("%Y-%m-%d").to_string();
            }
            if start <= dec31 && last >= jan1 {
                want_rot.insert(id.as_str().unwrap().to_owned());
            }
        }
        let r = l.json(&[
            "report",
            "rotations",
            "--year",
            &year.to_string(),
            "--on",
            "2025-12-31",
        ]);
        let got_rot: std::collections::BTreeSet<String> = r["rotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["rotation"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got_rot, want_rot, "rotations {year}");
        assert!(!got_rot.is_empty());
    }
}

/// The `<noun> <verb>` commands are clap commands built from the write table: clap's help
/// with each code's Chinese label, a suggestion for a mistyped flag, completions, a man page.
#[test]
fn write_commands_have_clap_help_suggestions_completions_and_a_man_page() {
    let l = Ledger::new();
    let help = l.ok(&["rotation", "start", "--help"]);
    assert!(help.contains("shadowing = 跟岗实践"), "{help}");
    assert!(help.contains("--planned-end"), "{help}");
    let r = l.run(&["rotation", "start", "--plannd-end", "2024-01-01"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("a similar argument exists: '--planned-end'"),
        "{}",
        r.stderr
    );
    let r = l.run(&["rotation", "start", "--id", "R1"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(
        r.stderr.contains("--staff-no"),
        "a missing flag is named: {}",
        r.stderr
    );
    for shell in ["bash", "zsh", "fish"] {
        let out = l.ok(&["completions", shell]);
        assert!(
            out.contains("planned-end"),
            "{shell} completions cover write flags"
        );
        assert!(out.contains("tally"), "{shell} completions cover reads");
    }
    let man = l.ok(&["man"]);
    assert!(
        man.starts_with(".ie") && man.contains(".TH eduledger"),
        "{}",
        &man[..200.min(man.len())]
    );
    assert!(!l.db().exists(), "none of these creates a ledger");
}

/// Review of the plan's other reports and the clap parser: each defect found, pinned.
#[test]
fn reports_and_the_parser_keep_their_boundaries() {
    let l = Ledger::demo();
    // the roster is imported once, into a ledger without groups
    let r = l.run(&["roster", "import"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("already has 7 groups"), "{}", r.stderr);
    // names as they stand on the report's date (新华 is 朱家角新华 from 2025-09-01)
    let rot = l.json(&[
        "report",
        "rotations",
        "--year",
        "2025",
        "--on",
        "2025-12-31",
    ]);
    let r1 = rot["rotations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rotation"] == "R2025-001")
        .unwrap()
        .clone();
    assert_eq!(r1["host"], "朱家角新华", "{r1}");
    // a year outside what the ledger speaks of is a usage error, not every rotation
    assert_eq!(l.run(&["report", "rotations", "--year", "999999"]).code, 2);
    assert_eq!(
        l.run(&["report", "compliance", "--year", "2147483647"])
            .code,
        2
    );
    // funds count what was approved by the date: P2024-01 was approved on 2024-02-01
    let before = l.json(&["report", "funds", "--year", "2024", "--on", "2024-01-31"]);
    let after = l.json(&["report", "funds", "--year", "2024", "--on", "2024-02-01"]);
    assert!(
        after["total_approved_fen"].as_i64().unwrap()
            >= before["total_approved_fen"].as_i64().unwrap() + 8_000_000,
        "{before} / {after}"
    );
    // the parser: a negative amount is a refused value (exit 1), whatever its spelling
    for args in [
        vec![
            "project",
            "approve",
            "--id",
            "P2024-02",
            "--on",
            "2026-01-06",
            "--budget-fen",
            "-5",
        ],
        vec![
            "project",
            "approve",
            "--id",
            "P2024-02",
            "--on",
            "2026-01-06",
            "--budget-fen=-5",
        ],
    ] {
        let r = l.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("must not be negative"), "{}", r.stderr);
    }
    // a cancellation takes its reason from --reason
    let r = l.run(&[
        "rotation",
        "cancel",
        "--id",
        "R2024-002",
        "--on",
        "2025-03-01",
        "--reason",
        "调整",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // a budget over the bound is refused
    let r = l.run(&[
        "project",
        "approve",
        "--id",
        "P2025-01",
        "--on",
        "2026-01-06",
        "--budget-fen",
        "9223372036854775807",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("over the limit"), "{}", r.stderr);
}

/// The v0.1 "no date" marker cannot be typed; a global option without its value is a usage
/// error; a refused first write leaves no ledger behind.
#[test]
fn the_undated_marker_missing_values_and_refused_first_writes() {
    let l = Ledger::demo();
    let digest = l.digest();
    let r = l.run(&[
        "rotation",
        "extend",
        "--id",
        "R2024-002",
        "--planned-end",
        "2026-02-20",
        "--on",
        "0001-01-01",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("outside the years 1900 to 2999"),
        "{}",
        r.stderr
    );
    assert_eq!(l.digest(), digest);
    let fresh = tempfile::tempdir().unwrap();
    let db = fresh.path().join("new.db");
    let args = [
        "teacher",
        "register",
        "--staff-no",
        "T1",
        "--name",
        "甲",
        "--home",
        "乙",
        "--on",
        "2024-01-01",
    ];
    let mut with_bare_db = args.to_vec();
    with_bare_db.push("--db");
    let r = run_in(fresh.path(), &db, &with_bare_db, None);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--db needs a value"), "{}", r.stderr);
    let r = run_in(fresh.path(), &db, &args, None);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(!db.exists(), "a refused first write left a ledger behind");
    assert_eq!(std::fs::read_dir(fresh.path()).unwrap().count(), 0);
}

#[test]
fn access_is_granted_with_a_token_shown_once_and_recorded_only_as_its_hash() {
    let l = Ledger::demo();
    let out = l.ok(&[
        "access",
        "grant",
        "--name",
        "佳佳秘书处",
        "--role",
        "recorder",
        "--group",
        "佳佳学前教育集团",
        "--on",
        "2024-09-01",
    ]);
    let grant: Value = serde_json::from_str(&out).unwrap();
    let token = grant["token"].as_str().unwrap().to_owned();
    // 256 random bits, hex, behind a recognisable prefix
    assert_eq!(token.len(), 4 + 64, "{token}");
    assert!(token.starts_with("edl_") && token[4..].chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(grant["groups"], serde_json::json!(["佳佳学前教育集团"]));
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
    // the ledger holds the hash, never the token
    let export = l.dir.path().join("export.jsonl");
    l.ok(&["export", export.to_str().unwrap()]);
    let exported = std::fs::read_to_string(&export).unwrap();
    assert!(
        !exported.contains(&token[4..]),
        "the token is in the export"
    );
    let list = l.json(&["access", "list", "--on", "2024-09-01"]);
    assert_eq!(list["access"][0]["principal"], "佳佳秘书处");
    assert_eq!(list["access"][0]["role"], "recorder");
    assert_eq!(list["access"][0]["token_sha256"], sha.as_str());
    // a read on a date before the grant does not show it
    let before = l.json(&["access", "list", "--on", "2024-08-31"]);
    assert_eq!(before["access"], serde_json::json!([]));
    // a second grant of a new token: every grant gets its own
    let second: Value = serde_json::from_str(&l.ok(&[
        "access",
        "grant",
        "--name",
        "审计组",
        "--role",
        "auditor",
        "--on",
        "2024-09-01",
    ]))
    .unwrap();
    assert_ne!(second["token"], grant["token"]);
}

#[test]
fn access_refusals_name_the_rule_and_record_nothing() {
    let l = Ledger::demo();
    l.ok(&[
        "access",
        "grant",
        "--name",
        "toyouban",
        "--role",
        "admin",
        "--on",
        "2024-01-01",
    ]);
    let before = l.digest();
    for (args, says) in [
        (
            vec![
                "access",
                "grant",
                "--name",
                "toyouban",
                "--role",
                "admin",
                "--on",
                "2024-02-01",
            ],
            "it holds access as admin from 2024-01-01; revoke that first",
        ),
        (
            vec![
                "access",
                "grant",
                "--name",
                "a",
                "--role",
                "auditor",
                "--group",
                "佳佳学前教育集团",
            ],
            "only a recorder is limited to groups",
        ),
        (
            vec![
                "access",
                "grant",
                "--name",
                "b",
                "--role",
                "recorder",
                "--group",
                "不存在集团",
            ],
            "不存在集团",
        ),
        (
            vec!["access", "grant", "--name", "c", "--role", "owner"],
            "--role",
        ),
        (
            vec!["access", "revoke", "--name", "nobody"],
            "it holds no access to revoke",
        ),
        (
            vec![
                "access",
                "revoke",
                "--name",
                "toyouban",
                "--on",
                "2023-12-31",
            ],
            "its access begins on 2024-01-01",
        ),
    ] {
        let r = l.run(&args);
        assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{args:?}: {}", r.stderr);
    }
    assert_eq!(l.digest(), before, "a refusal recorded something");
    // revoked, then granted again with a new token; the trail shows both
    l.ok(&[
        "access",
        "revoke",
        "--name",
        "toyouban",
        "--on",
        "2024-06-01",
    ]);
    assert_eq!(
        l.json(&["access", "list", "--on", "2024-06-01"])["access"],
        serde_json::json!([])
    );
    assert_eq!(
        l.json(&["access", "list", "--on", "2024-05-31"])["access"][0]["principal"],
        "toyouban"
    );
    l.ok(&[
        "access",
        "grant",
        "--name",
        "toyouban",
        "--role",
        "auditor",
        "--on",
        "2024-07-01",
    ]);
    let trail = l.json(&["history", "access", "toyouban"]);
    let types: Vec<&str> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["AccessGranted", "AccessRevoked", "AccessGranted"]);
    // a grant back-dated into the span of an earlier one is refused too
    let r = l.run(&[
        "access",
        "grant",
        "--name",
        "x",
        "--role",
        "auditor",
        "--on",
        "2024-01-01",
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    l.ok(&["access", "revoke", "--name", "x", "--on", "2024-03-01"]);
    let r = l.run(&[
        "access",
        "grant",
        "--name",
        "x",
        "--role",
        "auditor",
        "--on",
        "2024-02-01",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("grants of one principal do not overlap"),
        "{}",
        r.stderr
    );
    // and the whole ledger still verifies: the fold from the first event agrees
    l.ok(&["verify"]);
}

#[test]
fn access_dates_never_precede_the_recording_day_and_a_token_is_never_given_twice() {
    let l = Ledger::demo();
    // the test clock records in November 2023 (Shanghai)
    let r = l.run(&[
        "access",
        "grant",
        "--name",
        "y",
        "--role",
        "auditor",
        "--on",
        "2023-01-01",
    ]);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr.contains("--on: 2023-01-01 is before today"),
        "{}",
        r.stderr
    );
    // --format json on a grant, as SERVER.md shows
    let first: Value = serde_json::from_str(&l.ok(&[
        "access",
        "grant",
        "--name",
        "y",
        "--role",
        "auditor",
        "--on",
        "2024-01-01",
        "--format",
        "json",
    ]))
    .unwrap();
    let token = first["token"].as_str().unwrap();
    let sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(token.as_bytes()));
    // a script submitting the same hash (in capitals) for someone else is refused
    let again = format!(
        r#"{{"command":"grant_access","principal":"z","role":"auditor","token_sha256":"{}","on":"2024-01-01"}}"#,
        sha.to_uppercase()
    );
    let r = l.run_stdin(&["submit", "-"], &again);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("this token was given before"),
        "{}",
        r.stderr
    );
    // nor once its grant is retracted
    let seq = first["seq"].as_u64().unwrap().to_string();
    l.ok(&["--reason", "误授", "retract", &seq]);
    assert_eq!(
        l.json(&["access", "list", "--on", "2024-01-02"])["access"],
        serde_json::json!([])
    );
    let r = l.run_stdin(&["submit", "-"], &again);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("this token was given before"),
        "{}",
        r.stderr
    );
    l.ok(&["verify"]);
}

#[test]
fn submit_reads_a_json_array_and_a_bom_as_the_server_does() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    let file = dir.path().join("batch.json");
    std::fs::write(
        &file,
        "\u{feff}[{\"command\":\"register_kindergarten\",\"kindergarten\":\"甲\",\"category\":\"first_class\",\"ownership\":\"public\",\"on\":\"2023-09-01\"},\n {\"command\":\"register_teacher\",\"staff_no\":\"T1\",\"name\":\"教师\",\"home\":\"甲\",\"on\":\"2023-09-01\"}]",
    )
    .unwrap();
    let r = run_in(dir.path(), &db, &["submit", file.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["seqs"], serde_json::json!([1, 2]));
    // an element that is not a command names its position
    std::fs::write(&file, "[{\"command\":\"nope\"}]").unwrap();
    let r = run_in(dir.path(), &db, &["submit", file.to_str().unwrap()], None);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("line 1"), "{}", r.stderr);
}

/// An operator with $EDULEDGER_SERVER set still reads and verifies a copy with an explicit
/// `--db` (the variable used to win, so `--db COPY verify` was refused as "through --server").
#[test]
fn an_explicit_db_wins_over_the_server_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("copy");
    assert_eq!(run_in(dir.path(), &db, &["demo"], None).code, 0);
    for args in [&["verify"][..], &["groups", "--format", "json"][..]] {
        let out = std::process::Command::new(BIN)
            .current_dir(dir.path())
            .arg("--db")
            .arg(&db)
            .args(args)
            .env("EDULEDGER_CLOCK_START_US", CLOCK)
            // nothing listens there: a run that went to it would fail
            .env("EDULEDGER_SERVER", "http://127.0.0.1:9")
            .env_remove("EDULEDGER_TOKEN")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn names_and_one_line_fields_that_print_like_another_are_refused_by_code_point() {
    let l = Ledger::demo();
    let before = l.digest();
    let lines = [
        (
            r#"{"command":"rename_kindergarten","kindergarten":"赵屯","new_name":"赵屯\u200b","on":"2025-03-01"}"#,
            "U+200B",
        ),
        (
            r#"{"command":"grant_access","principal":"佳佳\u200b","role":"auditor","groups":[],"token_sha256":"0000000000000000000000000000000000000000000000000000000000000000","on":"2099-01-01"}"#,
            "U+200B",
        ),
        (
            r#"{"command":"register_teacher","staff_no":"Z1","name":"教师","home":"佳佳","on":"2024-09-01","meta":{"source":"青教\u2028文件"}}"#,
            "U+2028",
        ),
        (
            r#"{"command":"register_teacher","staff_no":"Z1","name":"教师","home":"佳佳","on":"2024-09-01","meta":{"reason":"ok\u202e"}}"#,
            "U+202E",
        ),
    ];
    for (line, code) in lines {
        let r = l.run_stdin(&["submit", "-"], line);
        assert_eq!(r.code, 1, "{line}: {}", r.stderr);
        assert!(r.stderr.contains(code), "{line}: {}", r.stderr);
    }
    // and what prints as nothing without being a format character: the combining grapheme
    // joiner, variation selectors, Hangul fillers, the blank Braille cell
    for c in [
        '\u{34f}',
        '\u{fe00}',
        '\u{fe0f}',
        '\u{e0100}',
        '\u{3164}',
        '\u{115f}',
        '\u{ffa0}',
        '\u{2800}',
    ] {
        let name = format!("赵屯{c}");
        let r = l.run(&[
            "kindergarten",
            "rename",
            "--kindergarten",
            "赵屯",
            "--new-name",
            &name,
            "--on",
            "2025-03-01",
        ]);
        assert_ne!(r.code, 0, "U+{:04X}: {}", c as u32, r.stdout);
        assert!(
            r.stderr.contains(&format!("U+{:04X}", c as u32)),
            "{}",
            r.stderr
        );
    }
    let r = l.run(&[
        "access",
        "grant",
        "--name",
        "\u{feff}佳佳",
        "--role",
        "auditor",
    ]);
    assert_ne!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("U+FEFF"), "{}", r.stderr);
    assert_eq!(l.digest(), before, "nothing was recorded");
    // a name spelled with a combining mark is the name spelled precomposed
    l.ok(&[
        "kindergarten",
        "rename",
        "--kindergarten",
        "赵屯",
        "--new-name",
        "Caf\u{e9}园",
        "--on",
        "2025-03-01",
    ]);
    let r = l.run(&["kindergarten", "Cafe\u{301}园"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn every_named_file_that_is_not_a_regular_file_is_refused_at_once() {
    let l = Ledger::demo();
    let before = l.digest();
    let fifo = l.dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let fifo = fifo.to_str().unwrap();
    let dir = l.dir.path().to_str().unwrap();
    let rules_dir = l.dir.path().join("rules.d");
    std::fs::create_dir(&rules_dir).unwrap();
    for (path, kind) in [
        ("/dev/zero", "a character device"),
        (fifo, "a FIFO"),
        (dir, "a directory"),
    ] {
        // (a FIFO nobody writes to would hang a blocking open; the run has a deadline)
        let started = std::time::Instant::now();
        for args in [
            vec!["submit", path],
            vec!["tally", "--year", "2024", "--rules", path],
            vec!["roster", "import", path],
        ] {
            let r = l.run(&args);
            assert_ne!(r.code, 0, "{args:?}: {}", r.stdout);
            assert!(r.stderr.contains(kind), "{args:?}: {}", r.stderr);
        }
        let target = l.dir.path().join("imported.db");
        let r = run_in(l.dir.path(), &target, &["import", path], None);
        assert_ne!(r.code, 0, "import {path}");
        assert!(r.stderr.contains(kind), "import {path}: {}", r.stderr);
        let r = run_in(
            l.dir.path(),
            &l.db(),
            &[
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--tls-cert",
                path,
                "--tls-key",
                path,
            ],
            None,
        );
        assert_eq!(r.code, 2, "serve --tls-cert {path}: {}", r.stderr);
        assert!(
            r.stderr.contains(kind),
            "serve --tls-cert {path}: {}",
            r.stderr
        );
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{path}: {:?}",
            started.elapsed()
        );
    }
    assert_eq!(l.digest(), before);
}

/// Issue 23 item 2: an export never replaces a file unless told to, and never writes into a
/// ledger's directory at all (it once replaced sled's data file with JSON).
#[test]
fn export_replaces_nothing_without_force_and_never_writes_inside_a_ledger() {
    let l = Ledger::demo();
    let before = l.digest();
    let precious = l.dir.path().join("precious.txt");
    std::fs::write(&precious, "keep me").unwrap();
    let r = l.run(&["export", precious.to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("already exists") && r.stderr.contains("--force"),
        "{}",
        r.stderr
    );
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "keep me");
    // --force replaces it with the export
    l.ok(&["export", precious.to_str().unwrap(), "--force"]);
    let text = std::fs::read_to_string(&precious).unwrap();
    assert_eq!(text.lines().count(), 231, "the export replaced the file");
    assert!(
        text.lines().last().unwrap().starts_with(r#"{"end":"#),
        "{text}"
    );
    // inside the ledger: refused even with --force, the ledger's files untouched
    let sled_file = l.db().join("db");
    let bytes = std::fs::read(&sled_file).unwrap();
    let alias = l.dir.path().join("alias");
    std::os::unix::fs::symlink(l.db(), &alias).unwrap();
    for target in [
        sled_file.clone(),
        l.db().join("new.jsonl"),
        alias.join("db"),
        alias.join("snapshots-copy.jsonl"),
    ] {
        for force in [false, true] {
            let mut args = vec!["export", target.to_str().unwrap()];
            if force {
                args.push("--force");
            }
            let r = l.run(&args);
            assert_eq!(r.code, 1, "{args:?}: {}", r.stderr);
            assert!(
                r.stderr.contains("inside the ledger directory"),
                "{args:?}: {}",
                r.stderr
            );
        }
    }
    assert_eq!(
        std::fs::read(&sled_file).unwrap(),
        bytes,
        "sled's file was not touched"
    );
    assert!(!l.db().join("new.jsonl").exists());
    assert!(!l.db().join("snapshots-copy.jsonl").exists());
    // another ledger's directory is refused as well
    let other = l.dir.path().join("other.db");
    let r = run_in(l.dir.path(), &other, &["demo"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = l.run(&["export", other.join("x.jsonl").to_str().unwrap()]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("inside the ledger directory"),
        "{}",
        r.stderr
    );
    assert_eq!(l.digest(), before);
    // nothing half-written is left beside the targets
    let parts: Vec<_> = std::fs::read_dir(l.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "{parts:?}");
}

/// Issue 23 item 11: a digest has one spelling — no sign, no leading zero.
#[test]
fn a_digest_written_with_a_sign_or_leading_zero_is_refused() {
    let l = Ledger::demo();
    let d = l.digest();
    let (seq, hash) = d.split_once(':').unwrap();
    assert_eq!(seq, "230");
    l.ok(&["verify", "--digest", &d]);
    for spelled in [
        format!("+{seq}:{hash}"),
        format!("0{seq}:{hash}"),
        format!(" {seq}:{hash}"),
    ] {
        let r = l.run(&["verify", "--digest", &spelled]);
        assert_ne!(r.code, 0, "{spelled}: {}", r.stdout);
        assert!(
            r.stderr.contains("without a sign or leading zeros"),
            "{spelled}: {}",
            r.stderr
        );
    }
    let upper = format!("{seq}:{}", hash.to_uppercase());
    let r = l.run(&["verify", "--digest", &upper]);
    assert_ne!(r.code, 0, "{upper}: {}", r.stdout);
    assert!(r.stderr.contains("lowercase"), "{}", r.stderr);
}

/// Issue 23 items 9 and 11: a reason of a correction may run to 2,000 characters over
/// several lines, as CLI.md says; tables show its line breaks as a sign, so a reason can
/// never print as a row of the audit trail that does not exist.
#[test]
fn a_reason_spans_lines_up_to_2000_characters_and_a_table_never_breaks_a_row_for_it() {
    let l = Ledger::demo();
    let seq = l.json(&["history", "project", "P2025-01"])["events"][0]["seq"]
        .as_u64()
        .unwrap();
    let file = l.dir.path().join("fix.json");
    std::fs::write(&file, r#"{"command":"propose_project","project":"P2025-01","group":"朱家角学前教育集团","kind":"curriculum","title":"水乡特色课程","year":2025,"on":"2025-02-15","members":["T0007"]}"#).unwrap();
    let forged_row = "999   2023-11-15 06:13:23  toyouban  TitleRetracted  all fine";
    let too_long = "长".repeat(2001);
    let r = l.run(&[
        "correct",
        &seq.to_string(),
        file.to_str().unwrap(),
        "--reason",
        &too_long,
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("2000"), "{}", r.stderr);
    let reason = format!("ok\n{forged_row}\t{}", "长".repeat(1900));
    assert!(reason.chars().count() <= 2000);
    l.ok(&[
        "correct",
        &seq.to_string(),
        file.to_str().unwrap(),
        "--reason",
        &reason,
    ]);
    let h = l.json(&["history", "project", "P2025-01"]);
    let fix = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["status"] == "correction")
        .unwrap();
    assert_eq!(
        fix["reason"],
        reason.as_str(),
        "JSON keeps the reason as written"
    );
    for args in [
        vec!["history", "project", "P2025-01", "--format", "table"],
        vec!["log", "--from", &seq.to_string(), "--format", "table"],
    ] {
        let table = l.ok(&args);
        assert!(
            !table.lines().any(|line| line.starts_with("999")),
            "{args:?} printed a forged row:\n{table}"
        );
        assert!(
            table.contains("ok⏎999"),
            "{args:?}: the break is shown:\n{table}"
        );
        assert!(table.contains('␉'), "{args:?}: the tab is shown");
    }
}

/// Issue 23 item 8: CSV writes every table a read has, not only the first.
#[test]
fn csv_writes_every_table_the_table_format_shows() {
    let l = Ledger::demo();
    for args in [
        vec![
            "report",
            "compliance",
            "--year",
            "2024",
            "--on",
            "2025-12-31",
        ],
        vec!["group", "佳佳学前教育集团", "--on", "2024-03-01"],
    ] {
        let mut t = args.clone();
        t.extend(["--format", "table"]);
        let table = l.ok(&t);
        let lines: Vec<&str> = table.lines().collect();
        // a table's title is the line above its header and its rule of dashes
        let titles: Vec<&str> = (0..lines.len().saturating_sub(2))
            .filter(|&i| lines[i + 2].starts_with("--") && !lines[i].trim().is_empty())
            .map(|i| lines[i].trim())
            .collect();
        assert!(titles.len() >= 2, "{args:?} has several tables:\n{table}");
        let mut c = args.clone();
        c.extend(["--format", "csv"]);
        let csv = l.ok(&c);
        // (the first table starts the file with its header, as a one-table CSV always has;
        // each further one follows an empty row and its title)
        for title in &titles[1..] {
            assert!(
                csv.lines()
                    .any(|line| line.trim_matches(['"', ',', '\u{feff}']) == *title),
                "{args:?}: CSV lacks the table {title:?}:\n{csv}"
            );
        }
        // and every data row of the table is in the CSV
        let rows = |text: &str| text.lines().filter(|l| l.contains("T00")).count();
        assert!(rows(&csv) >= rows(&table), "{args:?}: CSV has fewer rows");
    }
}

/// Issue 23 item 10: two equal keys in one JSON object are refused — which one a reader
/// takes is not defined.
#[test]
fn a_command_with_a_key_given_twice_is_refused_and_records_nothing() {
    let l = Ledger::demo();
    let before = l.digest();
    for line in [
        r#"{"command":"register_teacher","staff_no":"T9001","staff_no":"T9002","name":"教师","home":"佳佳","on":"2024-09-01"}"#,
        r#"{"command":"register_teacher","staff_no":"T9001","name":"教师","home":"佳佳","on":"2024-09-01","meta":{"reason":"a","reason":"b"}}"#,
        r#"{"command":"register_teacher","command":"register_teacher","staff_no":"T9001","name":"教师","home":"佳佳","on":"2024-09-01"}"#,
    ] {
        let r = l.run_stdin(&["submit", "-"], line);
        assert_eq!(r.code, 1, "{line}: {}", r.stderr);
        assert!(r.stderr.contains("appears twice"), "{line}: {}", r.stderr);
    }
    assert_eq!(l.digest(), before);
    // the same line with the key once is recorded
    l.run_stdin(
        &["submit", "-"],
        r#"{"command":"register_teacher","staff_no":"T9001","name":"教师","home":"佳佳","on":"2024-09-01"}"#,
    );
    assert_ne!(l.digest(), before);
}

/// Issue 23 item 7: a machine clock behind the ledger's last record is said on stderr, and
/// what is recorded is dated after that record.
#[test]
fn a_clock_behind_the_last_record_is_warned_of_and_the_record_dated_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("l.db");
    // a ledger whose last record is dated 2100 (a clock once far ahead)
    let r = run_at(
        &db,
        4_102_444_800_000_000,
        &["submit", "-"],
        Some(
            r#"{"command":"register_kindergarten","kindergarten":"甲","category":"first_class","ownership":"public","on":"2023-09-01"}"#,
        ),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // now the machine's own clock
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&db)
        .args(["submit", "-"])
        .env_remove("EDULEDGER_CLOCK_START_US")
        .env_remove("EDULEDGER_DB")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(
                r#"{"command":"register_teacher","staff_no":"T1","name":"教师","home":"甲","on":"2023-09-01"}"#.as_bytes(),
            )?;
            child.wait_with_output()
        })
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning")
            && stderr.contains("reads earlier than the ledger's last record"),
        "{stderr}"
    );
    assert!(stderr.contains("2100-01-01"), "{stderr}");
    let log = run_at(
        &db,
        4_102_444_800_000_000,
        &["log", "--format", "json"],
        None,
    );
    let v: Value = serde_json::from_str(&log.stdout).unwrap();
    let at = |i: usize| v["events"][i]["recorded_at_us"].as_i64().unwrap();
    assert!(at(1) > at(0), "the new record is dated after the last one");
    // every kind of write says it, not only submit
    let machine = |args: &[&str]| {
        Command::new(BIN)
            .arg("--db")
            .arg(&db)
            .args(args)
            .env_remove("EDULEDGER_CLOCK_START_US")
            .env_remove("EDULEDGER_DB")
            .output()
            .unwrap()
    };
    let out = machine(&["retract", "2", "--reason", "登记有误"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("reads earlier than the ledger's last record"),
        "{stderr}"
    );
    // and a machine clock that is not behind says nothing: a ledger last written in 2023
    let fresh = dir.path().join("fresh.db");
    let r = run_at(
        &fresh,
        1_700_000_000_000_000,
        &["submit", "-"],
        Some(
            r#"{"command":"register_kindergarten","kindergarten":"乙","category":"first_class","ownership":"public","on":"2023-09-01"}"#,
        ),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let out = Command::new(BIN)
        .arg("--db")
        .arg(&fresh)
        .args([
            "kindergarten",
            "rename",
            "--kindergarten",
            "乙",
            "--new-name",
            "丙",
            "--on",
            "2024-01-01",
        ])
        .env_remove("EDULEDGER_CLOCK_START_US")
        .env_remove("EDULEDGER_DB")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
}
