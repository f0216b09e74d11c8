//! What the end-to-end tests share: the real binary, run in a real directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const BIN: &str = env!("CARGO_BIN_EXE_eduledger");
/// A fixed clock start, so goldens and fixtures are byte-for-byte reproducible.
pub const CLOCK: &str = "1700000000000000";

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn run_in(dir: &Path, db: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir)
        .arg("--db")
        .arg(db)
        .args(args)
        .env("EDULEDGER_CLOCK_START_US", CLOCK)
        .env("USER", "tester")
        .env_remove("EDULEDGER_DB")
        .env_remove("RUST_LOG")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run eduledger");
    if let Some(text) = stdin {
        use std::io::Write;
        // the child may stop reading early (a refused import): a broken pipe is fine
        let _ = child.stdin.take().unwrap().write_all(text.as_bytes());
    }
    let Output {
        status,
        stdout,
        stderr,
    } = child.wait_with_output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// `eduledger serve` on a free loopback port with more arguments, announcing an address of
/// `scheme`: the server and that address.
pub fn serve(dir: &Path, db: &Path, args: &[&str], scheme: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .arg("--db")
        .arg(db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
        .env("EDULEDGER_CLOCK_START_US", CLOCK)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start eduledger serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().expect("its stdout"))
        .read_line(&mut line)
        .expect("its first line");
    let addr = line
        .trim()
        .strip_prefix(&format!("listening on {scheme}://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (child, addr)
}

/// Re-seal an export's lines from `from` (0-based) on with a recomputed chain, after
/// `change` has altered line `from`'s envelope.
pub fn reseal(
    lines: &mut [serde_json::Value],
    from: usize,
    change: impl FnOnce(&mut eduledger_store::Envelope),
) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut prev = [0u8; 32];
    let mut change = Some(change);
    let mut events = 0u64;
    for (i, line) in lines.iter_mut().enumerate() {
        // the export's end line names the count and head: sealed again as well
        if line.get("end").is_some() {
            *line = serde_json::json!({"end": {"events": events, "digest": format!("{events}:{}", hex::encode(prev))}});
            continue;
        }
        events += 1;
        let raw = b64.decode(line["raw"].as_str().unwrap()).unwrap();
        let (mut env, _) = eduledger_store::Envelope::decode_checked(&raw).unwrap();
        if i == from
            && let Some(f) = change.take()
        {
            f(&mut env);
        }
        if i >= from {
            env.prev_hash = prev;
            let bytes = env.to_bytes().unwrap();
            let mut h = sha2::Sha256::new();
            h.update(prev);
            h.update(&bytes[..bytes.len() - 32]);
            env.hash = h.finalize().into();
            let new_raw = env.to_bytes().unwrap();
            // (the readable event the export writes: the decoding of the bytes)
            let shown =
                eduledger_domain::Event::decode(&env.event_type, env.schema_version, &env.payload)
                    .ok()
                    .map(|e| e.to_json());
            *line = serde_json::to_value(eduledger_store::ExportLine::from_envelope(
                &env, &new_raw, shown,
            ))
            .unwrap();
        }
        prev = env.hash;
    }
}

/// A copy of line `at`'s envelope with its event replaced by `change`'s, for [`reseal`]:
/// the new payload, encoded as the domain encodes it.
pub fn with_event(
    env: &mut eduledger_store::Envelope,
    change: impl FnOnce(&mut eduledger_domain::Event),
) {
    let mut event =
        eduledger_domain::Event::decode(&env.event_type, env.schema_version, &env.payload).unwrap();
    change(&mut event);
    env.payload = event.encode();
}
