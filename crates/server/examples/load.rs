//! Write load through `eduledger serve`, as clients see it: one sequential client, then 64
//! concurrent ones, each sending one-command batches over its own kept-alive connection
//! (loopback), every command counted only when answered 200 (after its group's fsync);
//! alternating rounds. While the 64 write, one reader asks `/v1/groups` (latencies
//! reported), and one feed subscriber follows `/v1/events`: for each event, the time from
//! its writer's 200 to its arrival on the feed.
//!
//! `cargo run --release -p eduledger-server --example load -- [SECONDS_PER_PHASE] [ROUNDS] [shanghai]`
//!
//! With `shanghai`, the server runs on a copy of the scale benchmark's ledger
//! (target/scale-ledger-shanghai, ≈ 4.6 million events; generated here, as the benchmark
//! does, when it is missing); without, on a fresh ledger of three kindergartens.
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eduledger_domain::parse_submission;
use eduledger_ledger::Ledger;
use sha2::{Digest as _, Sha256};

/// One client's connection, kept alive between requests as an HTTP client library keeps
/// it (a new TCP connection per command would measure the handshakes, on both sides).
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(addr: &str) -> Option<Client> {
        let s = TcpStream::connect(addr).ok()?;
        s.set_nodelay(true).ok()?;
        Some(Client {
            writer: s.try_clone().ok()?,
            reader: BufReader::new(s),
        })
    }

    /// One request on the open connection: its status and body.
    fn send(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: &str,
    ) -> Option<(u16, Vec<u8>)> {
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nAuthorization: Bearer {token}\r\n\r\n{body}",
            body.len()
        );
        self.writer.write_all(req.as_bytes()).ok()?;
        let mut line = String::new();
        self.reader.read_line(&mut line).ok()?;
        let status = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().ok()?;
            }
        }
        let mut rest = vec![0; length];
        self.reader.read_exact(&mut rest).ok()?;
        Some((status, rest))
    }
}

/// When each sequence was answered 200, for the feed's latency.
type Acks = Mutex<HashMap<u64, Instant>>;

/// Commands acknowledged per second by `clients` writers for `secs`.
fn writers(
    addr: &str,
    token: &str,
    home: &str,
    clients: usize,
    secs: f64,
    tag: &str,
    acks: &Acks,
) -> f64 {
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let t = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..clients {
            let (done, stop) = (&done, &stop);
            scope.spawn(move || {
                let mut n = 0u64;
                let mut client = None;
                while !stop.load(Ordering::Relaxed) {
                    let body = format!(
                        r#"{{"command":"register_teacher","staff_no":"{tag}-{c}-{n}","name":"教师","home":"{home}","on":"2024-09-01"}}"#
                    );
                    if client.is_none() {
                        client = Client::connect(addr);
                    }
                    let answer = client
                        .as_mut()
                        .and_then(|c| c.send("POST", "/v1/commands", token, &body));
                    match answer {
                        Some((200, body)) => {
                            let at = Instant::now();
                            done.fetch_add(1, Ordering::Relaxed);
                            if let Some(seq) = serde_json::from_slice::<serde_json::Value>(&body)
                                .ok()
                                .and_then(|v| v["seqs"][0].as_u64())
                            {
                                acks.lock().unwrap_or_else(|p| p.into_inner()).insert(seq, at);
                            }
                        }
                        Some(_) => {}
                        // a connection the server closed: open another
                        None => client = None,
                    }
                    n += 1;
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
}

fn quantiles(mut v: Vec<Duration>) -> String {
    v.sort();
    let at = |q: f64| {
        v.get(((v.len() as f64 * q) as usize).min(v.len().saturating_sub(1)))
            .map(|d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
            .unwrap_or_else(|| "—".into())
    };
    format!("{} / {} / {} ({})", at(0.5), at(0.99), at(1.0), v.len())
}

/// The scale benchmark's ledger, made as it makes it when missing; a copy to serve.
fn shanghai(into: &Path) -> PathBuf {
    let source =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/scale-ledger-shanghai");
    if !source.join("COMPLETE").exists() {
        let _ = std::fs::remove_dir_all(&source);
        eprintln!("generating {} (≈ 2 minutes)", source.display());
        let store = eduledger_store::Store::open(&source).expect("open");
        let n = eduledger_ledger::synthetic::write(
            &store,
            eduledger_ledger::synthetic::Scale::shanghai(),
            2000,
            &mut |_| {},
        )
        .expect("generate");
        drop(store);
        std::fs::write(source.join("COMPLETE"), n.to_string()).expect("mark");
    }
    let copy = into.join("shanghai");
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&source)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success(), "copying the scale ledger");
    copy
}

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let scale = args.next().is_some_and(|a| a == "shanghai");
    let dir = tempfile::tempdir_in(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
        .expect("temp dir");
    let path = if scale {
        shanghai(dir.path())
    } else {
        dir.path().join("l")
    };
    let opened = Instant::now();
    let mut ledger = Ledger::open(&path, Arc::new(eduledger_store::SystemClock)).expect("open");
    let head = ledger.head().expect("head").seq;
    eprintln!("opened {head} events in {:.1?}", opened.elapsed());
    let token = format!("edl_{}", "42".repeat(32));
    let sha = hex::encode(Sha256::digest(token.as_bytes()));
    let home = if scale { "园0001" } else { "甲" };
    let mut setup: Vec<_> = if scale {
        vec![]
    } else {
        ["甲", "乙", "丙"]
            .iter()
            .map(|k| parse_submission(&format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"first_class","ownership":"public","on":"2023-09-01"}}"#)).expect("command"))
            .collect()
    };
    setup.push(
        parse_submission(&format!(r#"{{"command":"grant_access","principal":"bench","role":"admin","token_sha256":"{sha}","on":"{}"}}"#, eduledger_ledger::clock::today())).expect("grant"),
    );
    ledger.execute(&setup, "bench").expect("setup");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = eduledger_server::Config {
        db: path.clone(),
        max_body: 4 << 20,
        queue: eduledger_server::QUEUE,
        idle: eduledger_server::idle::IDLE,
        tls: None,
        limits: Default::default(),
    };
    let server = std::thread::spawn(move || {
        rt.block_on(eduledger_server::serve(ledger, listener, config, async {
            let _ = stop_rx.await;
        }))
    });
    std::thread::sleep(Duration::from_millis(200));

    // the feed subscriber: every event's arrival time, from the head on
    let arrivals: Arc<Mutex<HashMap<u64, Instant>>> = Default::default();
    {
        let (arrivals, addr, token) = (arrivals.clone(), addr.clone(), token.clone());
        std::thread::spawn(move || {
            let remote = eduledger_client::Remote::new(&format!("http://{addr}"), &token, None)
                .expect("remote");
            let from = head + 2;
            let Ok((200, _, mut lines)) = remote.stream(&format!("/v1/events?from={from}"), &[])
            else {
                eprintln!("no feed");
                return;
            };
            while let Ok(Some(line)) = lines.next_line() {
                if let Some(id) = line
                    .strip_prefix("id: ")
                    .and_then(|i| i.parse::<u64>().ok())
                {
                    arrivals
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(id, Instant::now());
                }
            }
        });
    }

    // the reference for the reads: /v1/groups with nothing else running
    let quiet: Vec<Duration> = {
        let mut client = Client::connect(&addr).expect("connect");
        (0..60)
            .filter_map(|_| {
                let t = Instant::now();
                matches!(client.send("GET", "/v1/groups", &token, ""), Some((200, _)))
                    .then(|| t.elapsed())
            })
            .collect()
    };
    let ledger_kind = if scale {
        format!("a copy of the Shanghai-scale ledger, {head} events")
    } else {
        "a fresh ledger".to_owned()
    };
    println!(
        "\n## Write load through eduledger serve ({secs} s per phase, {rounds} rounds, {ledger_kind})\n"
    );
    println!(
        "| round | 1 sequential client (commands/s) | 64 clients (commands/s) | ratio | /v1/groups during the 64: median / p99 / max (reads) | feed: 200 → event on the feed, median / p99 / max (events) |"
    );
    println!("|---|---|---|---|---|---|");
    println!(
        "| (reference) | — | — | — | with no writes: {} | — |",
        quantiles(quiet)
    );
    for round in 0..rounds {
        let acks: Acks = Mutex::new(HashMap::new());
        let one = writers(&addr, &token, home, 1, secs, &format!("s{round}"), &acks);
        let reading = AtomicBool::new(true);
        let mut latencies = vec![];
        let many = std::thread::scope(|scope| {
            let r = scope.spawn(|| {
                let mut l = vec![];
                let mut client = Client::connect(&addr);
                while reading.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    match client
                        .as_mut()
                        .and_then(|c| c.send("GET", "/v1/groups", &token, ""))
                    {
                        Some((200, _)) => l.push(t.elapsed()),
                        Some(_) => {}
                        None => client = Client::connect(&addr),
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                l
            });
            let many = writers(&addr, &token, home, 64, secs, &format!("m{round}"), &acks);
            reading.store(false, Ordering::Relaxed);
            latencies = r.join().unwrap_or_default();
            many
        });
        // let the feed catch up with the last acknowledgements
        std::thread::sleep(Duration::from_millis(500));
        let feed: Vec<Duration> = {
            let acks = acks.lock().unwrap_or_else(|p| p.into_inner());
            let arrivals = arrivals.lock().unwrap_or_else(|p| p.into_inner());
            acks.iter()
                .map(|(seq, at)| match arrivals.get(seq) {
                    // (the feed may deliver before the writer has read its 200)
                    Some(came) => came.saturating_duration_since(*at),
                    None => Duration::from_secs(3600),
                })
                .collect()
        };
        println!(
            "| {round} | {one:.0} | {many:.0} | {:.1}× | {} | {} |",
            many / one,
            quantiles(latencies),
            quantiles(feed),
        );
    }
    let _ = stop_tx.send(());
    let _ = server.join();
}
