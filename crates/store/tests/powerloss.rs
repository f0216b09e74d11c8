//! The power-loss harness: what survives a power cut, not only a kill.
//!
//! A SIGKILL keeps the page cache, so a kill test passes even with every fsync deleted. This
//! harness instead runs a child (this test binary again, as `child_process`) under an
//! `LD_PRELOAD` shim (`powerloss/shim.c`, compiled here with the system C compiler) that logs
//! every write, fsync, rename, unlink and mkdir the child makes under a root directory, and
//! every acknowledgement the child gives. The log is replayed into crash images under the
//! pessimistic model:
//! - a file's contents are those at its last fsync (or fdatasync); `sync_file_range` is not
//!   durability;
//! - a directory's entries are those at the directory's last fsync;
//! - what existed before the child started is durable.
//!
//! One image is taken just before every fsync and every acknowledgement, and once at the
//! end. Each is opened in a fresh directory: every acknowledged event must be there with its
//! hash (the chain verifying), or the open must refuse as a ledger fault — never a ledger
//! that opens and lacks an acknowledged event. The same harness, told to drop the fsyncs of
//! sled's data file, must find lost events (the test of the test).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use eduledger_store::{
    Durability, ExpectedVersion, Metadata, NewEvent, SteppingClock, Store, StoreError, StreamAppend,
};

const CHILD_ENV: &str = "EDULEDGER_POWERLOSS_SCENARIO";

// ---------------------------------------------------------------------------------------
// The child: runs a scenario and appends a line to $SHIM_ACK after each acknowledgement.

fn event(i: u64, size: usize) -> NewEvent {
    let mut payload = vec![0u8; size];
    for (j, b) in payload.iter_mut().enumerate() {
        *b = (i as usize * 31 + j * 7) as u8;
    }
    NewEvent {
        event_id: uuid::Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0000 | i as u128),
        event_type: "Recorded".into(),
        schema_version: 1,
        payload,
        meta: Metadata {
            actor: "harness".into(),
            reason: Some(format!("event {i}")),
            source: None,
        },
    }
}

/// Payload sizes: mostly small, every 9th over sled's blob threshold (~128 KiB), every
/// 23rd near the payload limit.
fn size_of(i: u64) -> usize {
    if i % 23 == 22 {
        900 * 1024
    } else if i % 9 == 8 {
        200 * 1024
    } else {
        64 + (i as usize * 97) % 3000
    }
}

struct Acks(std::fs::File);

impl Acks {
    fn open() -> Acks {
        let path = std::env::var("SHIM_ACK").expect("SHIM_ACK");
        Acks(
            std::fs::OpenOptions::new()
                .append(true)
                .open(path)
                .expect("ack file"),
        )
    }
    fn ack(&mut self, line: &str) {
        self.0
            .write_all(format!("{line}\n").as_bytes())
            .expect("ack");
    }
}

fn clock() -> Arc<SteppingClock> {
    Arc::new(SteppingClock::new(1_700_000_000_000_000))
}

fn ack_appended(acks: &mut Acks, store: &Store, seqs: &[u64]) {
    for &s in seqs {
        let env = store.get(s).unwrap().unwrap();
        acks.ack(&format!("event {s} {}", hex::encode(env.hash)));
    }
}

fn child_appends(dir: &Path, events: u64) {
    let mut acks = Acks::open();
    let store = Store::open_with_clock(dir.join("ledger"), clock()).unwrap();
    let mut i = 0;
    while i < events {
        let appended = if i % 7 == 6 {
            // one transaction across three streams
            let parts: Vec<StreamAppend> = (0..3)
                .map(|k| StreamAppend {
                    stream: format!("s{}", (i + k) % 5),
                    expected: ExpectedVersion::Any,
                    events: vec![event(i + k, size_of(i + k))],
                })
                .collect();
            i += 3;
            store.append_many(&parts, Durability::Durable).unwrap()
        } else {
            i += 1;
            store
                .append(
                    &format!("s{}", i % 5),
                    ExpectedVersion::Any,
                    &[event(i - 1, size_of(i - 1))],
                    Durability::Durable,
                )
                .unwrap()
        };
        ack_appended(&mut acks, &store, &appended.seqs);
    }
}

/// How many events batch `b` of the batches scenario holds.
fn batch_len(b: u64) -> u64 {
    1 + (b * 5) % 8
}

/// Batches of 1 to 8 events across streams, each one transaction.
fn child_batches(dir: &Path, batches: u64) {
    let mut acks = Acks::open();
    let store = Store::open_with_clock(dir.join("ledger"), clock()).unwrap();
    let mut i = 0;
    for b in 0..batches {
        let parts: Vec<StreamAppend> = (0..batch_len(b))
            .map(|k| {
                let n = i + k;
                StreamAppend {
                    stream: format!("b{}", n % 3),
                    expected: ExpectedVersion::Any,
                    events: vec![event(n, size_of(n + 3))],
                }
            })
            .collect();
        i += batch_len(b);
        let appended = store.append_many(&parts, Durability::Durable).unwrap();
        ack_appended(&mut acks, &store, &appended.seqs);
    }
}

/// A first attempt that reached sled but not the disk, then the retry: the retry is
/// acknowledged only once the event is durable.
fn child_retry(dir: &Path) {
    let mut acks = Acks::open();
    let store = Store::open_with_clock(dir.join("ledger"), clock()).unwrap();
    for i in 0..20u64 {
        let e = event(i, size_of(i));
        store
            .append(
                "r",
                ExpectedVersion::Any,
                std::slice::from_ref(&e),
                Durability::Buffered,
            )
            .unwrap();
        let retry = store
            .append("r", ExpectedVersion::Any, &[e], Durability::Durable)
            .unwrap();
        assert!(retry.idempotent);
        ack_appended(&mut acks, &store, &retry.seqs);
    }
}

fn child_import(dir: &Path) {
    let mut acks = Acks::open();
    let export = std::fs::read(dir.join("source.jsonl")).unwrap();
    let v = eduledger_store::import_new(
        &dir.join("imported"),
        &mut std::io::Cursor::new(export),
        clock(),
        &mut |_| {},
    )
    .unwrap();
    acks.ack(&format!("import {} {}", v.head.seq, v.head.hash_hex()));
}

fn child_snapshots(dir: &Path) {
    let mut acks = Acks::open();
    let store = Store::open_with_clock(dir.join("ledger"), clock()).unwrap();
    for n in 1..=40u64 {
        let seq = n * 3;
        let size = if n.is_multiple_of(4) {
            300 * 1024
        } else {
            100 + n as usize * 500
        };
        let payload = vec![n as u8; size];
        store.put_snapshot(seq, "t", &payload).unwrap();
        acks.ack(&format!("snapshot {seq} {size} {n}"));
    }
}

/// fsync of the data file fails from the third on: the append that hit it is reported
/// failed, and the handle refuses every later write.
fn child_fail_fsync(dir: &Path) {
    let mut acks = Acks::open();
    let store = Store::open_with_clock(dir.join("ledger"), clock()).unwrap();
    let mut failed_at = None;
    for i in 0..10u64 {
        match store.append(
            "f",
            ExpectedVersion::Any,
            &[event(i, 100)],
            Durability::Durable,
        ) {
            Ok(a) => ack_appended(&mut acks, &store, &a.seqs),
            Err(e) => {
                assert!(matches!(e, StoreError::SyncFailed(_)), "{e}");
                assert!(e.is_ledger_fault());
                failed_at = Some(i);
                break;
            }
        }
    }
    let i = failed_at.expect("an fsync failed");
    let again = store.append(
        "f",
        ExpectedVersion::Any,
        &[event(i + 100, 100)],
        Durability::Durable,
    );
    assert!(matches!(again, Err(StoreError::Failed)), "{again:?}");
    // the idempotent retry of the failed one is refused too: nothing more is acknowledged
    let retry = store.append(
        "f",
        ExpectedVersion::Any,
        &[event(i, 100)],
        Durability::Durable,
    );
    assert!(matches!(retry, Err(StoreError::Failed)), "{retry:?}");
    acks.ack(&format!("refused after {i}"));
}

#[test]
#[ignore = "the power-loss harness's child process; run by the harness, not alone"]
fn child_process() {
    let scenario = std::env::var(CHILD_ENV).expect("run by the harness");
    let dir = PathBuf::from(std::env::var("SHIM_ROOT").expect("SHIM_ROOT"));
    match scenario.as_str() {
        "appends" => child_appends(&dir, 240),
        "batches" => child_batches(&dir, 60),
        "appends-short" => child_appends(&dir, 40),
        "retry" => child_retry(&dir),
        "import" => child_import(&dir),
        "snapshots" => child_snapshots(&dir),
        "fail-fsync" => child_fail_fsync(&dir),
        other => panic!("unknown scenario {other}"),
    }
}

// ---------------------------------------------------------------------------------------
// The harness.

fn shim() -> PathBuf {
    static SHIM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    SHIM.get_or_init(|| {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/powerloss/shim.c");
        // (one build per version of the source, kept under target/ and shared by the test
        // processes: each compiles beside it and renames, so none reads a half-written one)
        let text = std::fs::read(&src).expect("the shim's source");
        let version = text.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let out = dir.join(format!("eduledger-shim-{version:016x}.so"));
        if out.exists() {
            return out;
        }
        let part = dir.join(format!("eduledger-shim-{}.so.part", std::process::id()));
        let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&part)
            .arg(&src)
            .args(["-ldl", "-lpthread"])
            .status()
            .expect("a C compiler (cc) to build the power-loss shim");
        assert!(status.success(), "compiling {}", src.display());
        std::fs::rename(&part, &out).expect("the shim in place");
        out
    })
    .clone()
}

/// Run a scenario under the shim in `root`; returns what was there before (all durable),
/// the operation log, and whether the child succeeded.
fn run_child(root: &Path, scenario: &str, extra_env: &[(&str, &str)]) -> (Model, Vec<u8>, bool) {
    let log = root.with_extension("oplog");
    let ack = root.with_extension("acks");
    std::fs::write(&ack, b"").unwrap();
    let _ = std::fs::remove_file(&log);
    // scanned before the child runs: only this is durable to begin with
    let initial = Model::scan(root);
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_process",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD_ENV, scenario)
    .env("LD_PRELOAD", shim())
    .env("SHIM_ROOT", root)
    .env("SHIM_LOG", &log)
    .env("SHIM_ACK", &ack)
    .env_remove("RUST_LOG");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let ok = out.status.success();
    if !ok {
        eprintln!(
            "child {scenario} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (initial, std::fs::read(&log).unwrap_or_default(), ok)
}

#[derive(Debug, Clone)]
enum Op {
    Open {
        path: String,
        flags: u64,
    },
    Write {
        path: String,
        off: u64,
        data: Vec<u8>,
    },
    Fsync {
        path: String,
    },
    Rename {
        from: String,
        to: String,
    },
    Unlink {
        path: String,
    },
    Mkdir {
        path: String,
    },
    Truncate {
        path: String,
        len: u64,
    },
    Ack(String),
    Other,
}

fn parse_log(bytes: &[u8]) -> Vec<Op> {
    let mut ops = vec![];
    let mut at = 0usize;
    let take = |at: &mut usize, n: usize| -> &[u8] {
        let s = &bytes[*at..*at + n];
        *at += n;
        s
    };
    while at < bytes.len() {
        let op = take(&mut at, 1)[0];
        let l1 = u32::from_le_bytes(take(&mut at, 4).try_into().unwrap()) as usize;
        let p1 = String::from_utf8_lossy(take(&mut at, l1)).into_owned();
        let l2 = u32::from_le_bytes(take(&mut at, 4).try_into().unwrap()) as usize;
        let p2 = String::from_utf8_lossy(take(&mut at, l2)).into_owned();
        let a = u64::from_le_bytes(take(&mut at, 8).try_into().unwrap());
        let b = u64::from_le_bytes(take(&mut at, 8).try_into().unwrap());
        let data = if op == 2 || op == 10 {
            take(&mut at, b as usize).to_vec()
        } else {
            vec![]
        };
        ops.push(match op {
            1 => Op::Open { path: p1, flags: a },
            2 => Op::Write {
                path: p1,
                off: a,
                data,
            },
            3 => Op::Fsync { path: p1 },
            5 => Op::Rename { from: p1, to: p2 },
            6 | 8 => Op::Unlink { path: p1 },
            7 => Op::Mkdir { path: p1 },
            9 => Op::Truncate { path: p1, len: a },
            10 => Op::Ack(String::from_utf8_lossy(&data).into_owned()),
            _ => Op::Other,
        });
    }
    ops
}

/// The file system as the pessimistic model sees it: every node has what the process sees
/// now (`cur`) and what a power cut would leave (`dur`).
#[derive(Clone)]
enum Node {
    File {
        cur: Vec<u8>,
        dur: Vec<u8>,
    },
    Dir {
        cur: BTreeMap<String, usize>,
        dur: BTreeMap<String, usize>,
    },
}

struct Model {
    root: PathBuf,
    nodes: Vec<Node>,
}

impl Model {
    /// Everything under `root` before the child ran is durable.
    fn scan(root: &Path) -> Model {
        let mut m = Model {
            root: root.to_path_buf(),
            nodes: vec![Node::Dir {
                cur: BTreeMap::new(),
                dur: BTreeMap::new(),
            }],
        };
        m.scan_dir(root, 0);
        m
    }

    fn scan_dir(&mut self, dir: &Path, id: usize) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name().to_string_lossy().into_owned();
            let child = self.nodes.len();
            if e.file_type().unwrap().is_dir() {
                self.nodes.push(Node::Dir {
                    cur: BTreeMap::new(),
                    dur: BTreeMap::new(),
                });
                self.scan_dir(&e.path(), child);
            } else {
                let bytes = std::fs::read(e.path()).unwrap();
                self.nodes.push(Node::File {
                    cur: bytes.clone(),
                    dur: bytes,
                });
            }
            if let Node::Dir { cur, dur } = &mut self.nodes[id] {
                cur.insert(name.clone(), child);
                dur.insert(name, child);
            }
        }
    }

    fn components(&self, path: &str) -> Option<Vec<String>> {
        let rel = Path::new(path).strip_prefix(&self.root).ok()?;
        Some(
            rel.components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect(),
        )
    }

    fn lookup(&self, path: &str) -> Option<usize> {
        let mut id = 0;
        for c in self.components(path)? {
            match &self.nodes[id] {
                Node::Dir { cur, .. } => id = *cur.get(&c)?,
                Node::File { .. } => return None,
            }
        }
        Some(id)
    }

    /// The parent directory's node and the last name.
    fn parent(&self, path: &str) -> Option<(usize, String)> {
        let mut comps = self.components(path)?;
        let name = comps.pop()?;
        let mut id = 0;
        for c in comps {
            match &self.nodes[id] {
                Node::Dir { cur, .. } => id = *cur.get(&c)?,
                Node::File { .. } => return None,
            }
        }
        Some((id, name))
    }

    fn link(&mut self, path: &str, node: usize) {
        if let Some((p, name)) = self.parent(path)
            && let Node::Dir { cur, .. } = &mut self.nodes[p]
        {
            cur.insert(name, node);
        }
    }

    fn unlink(&mut self, path: &str) -> Option<usize> {
        let (p, name) = self.parent(path)?;
        match &mut self.nodes[p] {
            Node::Dir { cur, .. } => cur.remove(&name),
            Node::File { .. } => None,
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Open { path, flags } => {
                const O_TRUNC: u64 = 0o1000;
                match self.lookup(path) {
                    Some(id) => {
                        if flags & O_TRUNC != 0
                            && let Node::File { cur, .. } = &mut self.nodes[id]
                        {
                            cur.clear();
                        }
                    }
                    None => {
                        let id = self.nodes.len();
                        self.nodes.push(Node::File {
                            cur: vec![],
                            dur: vec![],
                        });
                        self.link(path, id);
                    }
                }
            }
            Op::Write { path, off, data } => {
                if let Some(id) = self.lookup(path)
                    && let Node::File { cur, .. } = &mut self.nodes[id]
                {
                    let end = *off as usize + data.len();
                    if cur.len() < end {
                        cur.resize(end, 0);
                    }
                    cur[*off as usize..end].copy_from_slice(data);
                }
            }
            Op::Truncate { path, len } => {
                if let Some(id) = self.lookup(path)
                    && let Node::File { cur, .. } = &mut self.nodes[id]
                {
                    cur.resize(*len as usize, 0);
                }
            }
            Op::Fsync { path } => {
                if let Some(id) = self.lookup(path) {
                    match &mut self.nodes[id] {
                        Node::File { cur, dur } => *dur = cur.clone(),
                        Node::Dir { cur, dur } => *dur = cur.clone(),
                    }
                }
            }
            Op::Rename { from, to } => {
                if let Some(id) = self.unlink(from) {
                    self.link(to, id);
                }
            }
            Op::Unlink { path } => {
                self.unlink(path);
            }
            Op::Mkdir { path } => {
                let id = self.nodes.len();
                self.nodes.push(Node::Dir {
                    cur: BTreeMap::new(),
                    dur: BTreeMap::new(),
                });
                self.link(path, id);
            }
            Op::Ack(_) | Op::Other => {}
        }
    }

    /// Write what a power cut now would leave into `out`.
    fn materialize(&self, out: &Path) {
        self.materialize_dir(0, out);
    }

    fn materialize_dir(&self, id: usize, out: &Path) {
        std::fs::create_dir_all(out).unwrap();
        if let Node::Dir { dur, .. } = &self.nodes[id] {
            for (name, child) in dur {
                let p = out.join(name);
                match &self.nodes[*child] {
                    Node::File { dur, .. } => std::fs::write(&p, dur).unwrap(),
                    Node::Dir { .. } => self.materialize_dir(*child, &p),
                }
            }
        }
    }
}

/// Every crash image of a run: (acknowledgements so far, the model then), one before each
/// fsync and each acknowledgement, and one at the end. `check` judges each image.
fn crash_images(initial: Model, log: &[u8], check: &mut dyn FnMut(&Path, &[String])) -> usize {
    let ops = parse_log(log);
    let mut model = initial;
    let mut acks: Vec<String> = vec![];
    let mut images = 0;
    let scratch = tempfile::tempdir().unwrap();
    let timing = std::env::var_os("POWERLOSS_TIMING").is_some();
    let mut image = |model: &Model, acks: &[String], images: &mut usize| {
        let dir = scratch.path().join(format!("image-{images}"));
        let t = std::time::Instant::now();
        model.materialize(&dir);
        let written = t.elapsed();
        check(&dir, acks);
        if timing {
            eprintln!(
                "image {images}: written in {written:?}, checked in {:?}",
                t.elapsed() - written
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
        *images += 1;
    };
    for op in &ops {
        if matches!(op, Op::Fsync { .. } | Op::Ack(_)) {
            image(&model, &acks, &mut images);
        }
        model.apply(op);
        if let Op::Ack(text) = op {
            acks.extend(text.lines().map(str::to_owned));
        }
    }
    image(&model, &acks, &mut images);
    images
}

/// What one image showed.
#[derive(Debug, Default)]
struct Tally {
    images: usize,
    opened: usize,
    refused: usize,
    refusals: Vec<String>,
    lost: Vec<String>,
    /// The head of every image that opened.
    heads: Vec<u64>,
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} images: {} opened, {} refused {:?}, {} acknowledged events missing",
            self.images,
            self.opened,
            self.refused,
            self.refusals,
            self.lost.len()
        )?;
        for l in self.lost.iter().take(5) {
            write!(f, "\n  {l}")?;
        }
        Ok(())
    }
}

/// Open a store image; every acknowledged `event SEQ HASH` must be there with that hash.
fn check_store_image(image: &Path, acks: &[String], tally: &mut Tally) {
    let path = image.join("ledger");
    let opened = std::panic::catch_unwind(|| {
        let store = Store::open_with_clock(&path, clock())?;
        let head = store.verify()?.head.seq;
        let mut missing = vec![];
        for a in acks {
            let parts: Vec<&str> = a.split(' ').collect();
            if parts[0] != "event" {
                continue;
            }
            let seq: u64 = parts[1].parse().unwrap();
            match store.get(seq)? {
                Some(env) if hex::encode(env.hash) == parts[2] => {}
                _ => missing.push(a.clone()),
            }
        }
        Ok::<_, StoreError>((missing, head))
    });
    match opened {
        Ok(Ok((missing, head))) => {
            tally.opened += 1;
            tally.heads.push(head);
            tally.lost.extend(
                missing
                    .into_iter()
                    .map(|m| format!("{}: {m}", image.display())),
            );
        }
        Ok(Err(e)) if e.is_ledger_fault() => {
            tally.refused += 1;
            if tally.refusals.len() < 5 {
                tally
                    .refusals
                    .push(format!("after {} acks: {e}", acks.len()));
            }
        }
        Ok(Err(e)) => tally.lost.push(format!(
            "{}: the open failed without refusing as a ledger fault: {e}",
            image.display()
        )),
        Err(_) => tally
            .lost
            .push(format!("{}: opening the image panicked", image.display())),
    }
}

fn appends_tally(scenario: &str, extra_env: &[(&str, &str)]) -> Tally {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (initial, log, ok) = run_child(&root, scenario, extra_env);
    assert!(ok, "the child ran its scenario");
    let mut tally = Tally::default();
    tally.images = crash_images(initial, &log, &mut |image, acks| {
        check_store_image(image, acks, &mut tally)
    });
    tally
}

/// sled's background flusher fsyncs its data file on its own schedule, which can put a log
/// record on disk before the name of the blob file holding its value (sled 0.34 never
/// fsyncs blob files or their directory; we do, in `Store::sync`, but after). The images
/// below test our protocol without that thread; the ignored test shows the limitation
/// (docs/DECISIONS.md, "Durability").
const NO_SLED_FLUSHER: &[(&str, &str)] = &[("EDULEDGER_SLED_FLUSH_EVERY_MS", "off")];

#[test]
fn no_acknowledged_append_is_lost_in_any_crash_image() {
    let t = appends_tally("appends", NO_SLED_FLUSHER);
    eprintln!("appends: {t}");
    assert!(t.lost.is_empty(), "{t}");
    assert!(t.images >= 500, "only {} crash images", t.images);
    // every image opens: a refusal would be a loss the ack check cannot see
    assert_eq!(t.refused, 0, "{t}");
}

/// The limitation NO_SLED_FLUSHER sets aside, for whoever works on it: with sled's flusher,
/// about one run in seven (more on a busy machine) has crash images that refuse to open
/// ("the head record says … but the log's last event is …") or that sled panics on — the
/// flusher fsynced the data file between sled writing a blob and our fsync of its name. No
/// acknowledged event is missing from any image; the ledger refuses instead. Run by hand:
/// `cargo test -p eduledger-store --test powerloss -- --ignored with_sleds_flusher`.
#[test]
#[ignore = "a known sled 0.34 limitation, shown on demand (docs/DECISIONS.md, Durability)"]
fn with_sleds_flusher_an_image_can_refuse_to_open_but_loses_nothing_acknowledged() {
    for _ in 0..10 {
        let t = appends_tally("appends", &[]);
        eprintln!("appends with sled's flusher: {t}");
        assert!(
            t.lost.iter().all(|l| l.contains("panicked")),
            "an acknowledged event is missing: {t}"
        );
    }
}

#[test]
fn no_batch_is_half_there_in_any_crash_image() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (initial, log, ok) = run_child(&root, "batches", NO_SLED_FLUSHER);
    assert!(ok);
    let mut boundaries = std::collections::BTreeSet::from([0u64]);
    let mut end = 0;
    for b in 0..60 {
        end += batch_len(b);
        boundaries.insert(end);
    }
    let mut tally = Tally::default();
    tally.images = crash_images(initial, &log, &mut |image, acks| {
        check_store_image(image, acks, &mut tally)
    });
    let halves: Vec<&u64> = tally
        .heads
        .iter()
        .filter(|h| !boundaries.contains(h))
        .collect();
    eprintln!("batches: {tally}");
    assert!(tally.lost.is_empty(), "{tally}");
    assert_eq!(tally.refused, 0, "{tally}");
    assert!(
        halves.is_empty(),
        "images whose head is inside a batch: {halves:?}"
    );
    assert!(tally.images >= 250, "{tally}");
}

#[test]
fn an_idempotent_retry_is_acknowledged_only_when_durable() {
    let t = appends_tally("retry", &[]);
    eprintln!("retry: {t}");
    assert!(t.lost.is_empty(), "{t}");
    assert_eq!(t.refused, 0, "{t}");
    assert!(t.images >= 40, "{t}");
}

#[test]
fn the_harness_catches_a_removed_fsync() {
    let t = appends_tally("appends-short", &[("SHIM_DROP_FSYNC", "/ledger/db")]);
    eprintln!("without the data file's fsync: {t}");
    assert!(
        !t.lost.is_empty(),
        "dropping the fsync of the data file lost nothing: the harness cannot see fsyncs"
    );
}

#[test]
fn the_harness_catches_a_removed_directory_fsync() {
    // the ledger directory's own entry, in the root, is never made durable
    let t = appends_tally("appends-short", &[("SHIM_DROP_FSYNC", "/root")]);
    eprintln!("without the parent directory's fsync: {t}");
    assert!(
        !t.lost.is_empty(),
        "dropping the parent directory's fsync lost nothing: the harness cannot see directory entries"
    );
}

#[test]
fn an_import_is_whole_or_absent_in_every_crash_image() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    // the export to import, written before the child runs (so it is durable)
    let (head, source_lines) = {
        let src = tempfile::tempdir().unwrap();
        let store = Store::open_with_clock(src.path().join("s"), clock()).unwrap();
        for i in 0..60u64 {
            store
                .append(
                    &format!("s{}", i % 4),
                    ExpectedVersion::Any,
                    &[event(i, size_of(i))],
                    Durability::Buffered,
                )
                .unwrap();
        }
        store.sync().unwrap();
        let mut out = vec![];
        store.export(&mut out, &|_| None, &mut |_| {}).unwrap();
        (store.head().unwrap(), out)
    };
    std::fs::write(root.join("source.jsonl"), &source_lines).unwrap();
    let (initial, log, ok) = run_child(&root, "import", &[]);
    assert!(ok);
    let mut images = 0;
    let mut whole = 0;
    let mut absent = 0;
    let mut bad = vec![];
    images += crash_images(initial, &log, &mut |image, acks| {
        let target = image.join("imported");
        let acked = acks.iter().any(|a| a.starts_with("import "));
        let present = target.join("db").exists();
        if !present {
            if acked {
                bad.push(format!(
                    "{}: acknowledged import is missing",
                    image.display()
                ));
            }
            absent += 1;
            return;
        }
        match Store::open_with_clock(&target, clock()).and_then(|s| s.verify()) {
            Ok(v) if v.head == head => whole += 1,
            Ok(v) => bad.push(format!(
                "{}: a partial import opened with head {}",
                image.display(),
                v.head
            )),
            Err(e) => bad.push(format!("{}: {e}", image.display())),
        }
    });
    eprintln!("import: {images} images, {whole} whole, {absent} absent");
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(whole > 0 && absent > 0);
    assert!(images >= 20, "{images}");
}

#[test]
fn a_snapshot_in_a_crash_image_is_whole_or_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    {
        let store = Store::open_with_clock(root.join("ledger"), clock()).unwrap();
        for i in 0..120u64 {
            store
                .append(
                    "s",
                    ExpectedVersion::Any,
                    &[event(i, 80)],
                    Durability::Buffered,
                )
                .unwrap();
        }
        store.sync().unwrap();
    }
    let (initial, log, ok) = run_child(&root, "snapshots", &[]);
    assert!(ok);
    let mut bad = vec![];
    let images = crash_images(initial, &log, &mut |image, acks| {
        let store = match Store::open_with_clock(image.join("ledger"), clock()) {
            Ok(s) => s,
            Err(e) => {
                bad.push(format!("{}: {e}", image.display()));
                return;
            }
        };
        let found = store.snapshot_at_or_before(u64::MAX, "t").unwrap();
        let last_acked = acks.last().map(|a| {
            let p: Vec<u64> = a.split(' ').skip(1).map(|x| x.parse().unwrap()).collect();
            (p[0], p[1] as usize, p[2] as u8)
        });
        match (found, last_acked) {
            // the last acknowledged snapshot is the newest there (a write after it may
            // be newer only once acknowledged)
            (Some(s), Some((seq, size, n))) if s.seq == seq => {
                if s.payload != vec![n; size] {
                    bad.push(format!(
                        "{}: snapshot {seq} has other bytes",
                        image.display()
                    ));
                }
            }
            (Some(s), _) => {
                let n = (s.seq / 3) as u8;
                let size = if n.is_multiple_of(4) {
                    300 * 1024
                } else {
                    100 + n as usize * 500
                };
                if s.payload != vec![n; size] {
                    bad.push(format!(
                        "{}: snapshot {} has other bytes",
                        image.display(),
                        s.seq
                    ));
                }
                if let Some((seq, _, _)) = last_acked
                    && s.seq < seq
                {
                    bad.push(format!(
                        "{}: acknowledged snapshot {seq} is gone",
                        image.display()
                    ));
                }
            }
            (None, Some((seq, _, _))) => bad.push(format!(
                "{}: acknowledged snapshot {seq} is gone",
                image.display()
            )),
            (None, None) => {}
        }
    });
    eprintln!("snapshots: {images} images");
    assert!(bad.is_empty(), "{bad:#?}");
    assert!(images >= 120, "{images}");
}

#[test]
fn a_failed_fsync_is_final_for_the_handle() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let (_, _, ok) = run_child(&root, "fail-fsync", &[("SHIM_FAIL_FSYNC", "/ledger/db:4")]);
    assert!(ok, "the child saw the failure and the refusals it expected");
    let acks = std::fs::read_to_string(root.with_extension("acks")).unwrap();
    assert!(acks.contains("refused after"), "{acks}");
    // a new process opens and verifies what the file system shows (whether that is what
    // the disk holds after a failed fsync is beyond any process: docs/DECISIONS.md)
    let store = Store::open_with_clock(root.join("ledger"), clock()).unwrap();
    store.verify().unwrap();
}
