//! Write load through `eduledger serve`, as clients see it: one sequential client, then 64
//! concurrent ones, each sending one-command batches over its own kept-alive connection
//! (loopback), every
//! command counted only when answered 200 (after its group's fsync); alternating rounds.
//! While the 64 write, one reader asks `/v1/groups` and its latencies are reported.
//!
//! `cargo run --release -p eduledger-server --example load -- [SECONDS_PER_PHASE] [ROUNDS]`
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use eduledger_domain::parse_submission;
use eduledger_ledger::Ledger;
use sha2::{Digest as _, Sha256};

fn request(addr: &str, method: &str, path: &str, token: &str, body: &str) -> Option<u16> {
    Client::connect(addr)?.send(method, path, token, body)
}

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

    /// One request on the open connection: its status, once its whole body is read.
    fn send(&mut self, method: &str, path: &str, token: &str, body: &str) -> Option<u16> {
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
        Some(status)
    }
}

/// Commands acknowledged per second by `clients` writers for `secs`.
fn writers(addr: &str, token: &str, clients: usize, secs: f64, tag: &str) -> f64 {
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
                        r#"{{"command":"register_teacher","staff_no":"{tag}-{c}-{n}","name":"教师","home":"甲","on":"2024-09-01"}}"#
                    );
                    if client.is_none() {
                        client = Client::connect(addr);
                    }
                    let status = client
                        .as_mut()
                        .and_then(|c| c.send("POST", "/v1/commands", token, &body));
                    match status {
                        Some(200) => {
                            done.fetch_add(1, Ordering::Relaxed);
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

fn main() {
    let mut args = std::env::args().skip(1);
    let secs: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ledger =
        Ledger::open(dir.path().join("l"), Arc::new(eduledger_store::SystemClock)).expect("open");
    let token = format!("edl_{}", "42".repeat(32));
    let sha = hex::encode(Sha256::digest(token.as_bytes()));
    let setup: Vec<_> = ["甲", "乙", "丙"]
        .iter()
        .map(|k| parse_submission(&format!(r#"{{"command":"register_kindergarten","kindergarten":"{k}","category":"first_class","ownership":"public","on":"2023-09-01"}}"#)).expect("command"))
        .chain(std::iter::once(
            parse_submission(&format!(r#"{{"command":"grant_access","principal":"bench","role":"admin","token_sha256":"{sha}","on":"{}"}}"#, eduledger_ledger::clock::today())).expect("grant"),
        ))
        .collect();
    ledger.execute(&setup, "bench").expect("setup");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().expect("address").to_string();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let config = eduledger_server::Config {
        db: dir.path().join("l"),
        max_body: 4 << 20,
        tls: None,
    };
    let server = std::thread::spawn(move || {
        rt.block_on(eduledger_server::serve(ledger, listener, config, async {
            let _ = stop_rx.await;
        }))
    });
    std::thread::sleep(Duration::from_millis(200));

    println!("\n## Write load through eduledger serve ({secs} s per phase, {rounds} rounds)\n");
    println!(
        "| round | 1 sequential client (commands/s) | 64 clients (commands/s) | ratio | /v1/groups during the 64: median / p99 / max |"
    );
    println!("|---|---|---|---|---|");
    for round in 0..rounds {
        let one = writers(&addr, &token, 1, secs, &format!("s{round}"));
        let reading = AtomicBool::new(true);
        let mut latencies = vec![];
        let many = std::thread::scope(|scope| {
            let r = scope.spawn(|| {
                let mut l = vec![];
                while reading.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if request(&addr, "GET", "/v1/groups", &token, "") == Some(200) {
                        l.push(t.elapsed());
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                l
            });
            let many = writers(&addr, &token, 64, secs, &format!("m{round}"));
            reading.store(false, Ordering::Relaxed);
            latencies = r.join().unwrap_or_default();
            many
        });
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map(|d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
                .unwrap_or_else(|| "—".into())
        };
        println!(
            "| {round} | {one:.0} | {many:.0} | {:.1}× | {} / {} / {} ({} reads) |",
            many / one,
            at(0.5),
            at(0.99),
            at(1.0),
            latencies.len()
        );
    }
    let _ = stop_tx.send(());
    let _ = server.join();
}
