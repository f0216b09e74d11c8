//! Every input the fuzzers (fuzz/, cargo-fuzz on nightly) or the tamper work found to break
//! a decoder, replayed on stable in the normal test command through the very same check
//! bodies (`fuzz/checks/*.rs`): no panic, no abort. (Allocation limits are enforced in the
//! fuzz runs themselves, with `-malloc_limit_mb`; here a planted length that made a decoder
//! allocate terabytes would abort the test process.)

use std::path::Path;

fn each(target: &str, check: impl Fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    for f in &files {
        let data = std::fs::read(f).unwrap();
        check(&data);
    }
    files.len()
}

#[test]
fn envelope_regressions_decode_without_panic() {
    assert!(each("envelope", |data| include!("../fuzz/checks/envelope.rs")) > 0);
}

#[test]
fn snapshot_regressions_decode_without_panic() {
    assert!(each("snapshot", |data| include!("../fuzz/checks/snapshot.rs")) > 0);
}

#[test]
fn export_line_regressions_decode_without_panic() {
    assert!(
        each("export_line", |data| include!(
            "../fuzz/checks/export_line.rs"
        )) > 0
    );
}

#[test]
fn command_regressions_parse_without_panic() {
    assert!(each("command", |data| include!("../fuzz/checks/command.rs")) > 0);
}

#[test]
fn points_rules_regressions_parse_without_panic() {
    assert!(
        each("points_rules", |data| include!(
            "../fuzz/checks/points_rules.rs"
        )) > 0
    );
}

#[test]
fn roster_regressions_parse_without_panic() {
    assert!(each("roster", |data| include!("../fuzz/checks/roster.rs")) > 0);
}
