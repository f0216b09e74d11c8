//! `eduledger serve` over real sockets, with the real binary: every read answers what the
//! command line answers, byte for byte; tokens and roles decide who may do what; writes are
//! acknowledged with their own sequences and are in the ledger after the server stops.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{BIN, CLOCK, run_in};
use serde_json::Value;

struct Ledger {
    dir: tempfile::TempDir,
}

impl Ledger {
    fn demo() -> Ledger {
        let l = Ledger {
            dir: tempfile::tempdir().unwrap(),
        };
        l.ok(&["demo"]);
        l
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("ledger.db")
    }
    fn ok(&self, args: &[&str]) -> String {
        let r = run_in(self.dir.path(), &self.db(), args, None);
        assert_eq!(r.code, 0, "eduledger {args:?}: {}", r.stderr);
        r.stdout
    }
    fn token(&self, name: &str, role: &str) -> String {
        let out = self.ok(&[
            "access", "grant", "--name", name, "--role", role, "--format", "json",
        ]);
        let v: Value = serde_json::from_str(&out).unwrap();
        v["token"].as_str().unwrap().to_owned()
    }
}

/// A running `eduledger serve`, stopped with SIGTERM when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    fn start(db: &Path, dir: &Path) -> Server {
        Server::start_with(db, dir, &[], "http")
    }

    /// Started with more arguments to `serve`, announcing an address of `scheme`.
    fn start_with(db: &Path, dir: &Path, args: &[&str], scheme: &str) -> Server {
        let (child, addr) = common::serve(dir, db, args, scheme);
        Server { child, addr }
    }

    /// One request; the status and the body.
    fn request(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
        try_request(&self.addr, method, path, token, body)
            .unwrap_or_else(|| panic!("no answer to {method} {path}"))
    }

    /// One request with more headers: the status, the response's head and its body.
    fn request_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &str,
    ) -> (u16, String, String) {
        try_request_with(&self.addr, method, path, token, headers, body)
            .unwrap_or_else(|| panic!("no answer to {method} {path}"))
    }

    /// SIGKILL: no graceful anything; what was acknowledged must already be on disk.
    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn stop(mut self) {
        terminate(&self.child);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "the server exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// One request, which may find no server (one killed mid-way): the status and the body.
fn try_request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> Option<(u16, String)> {
    try_request_with(addr, method, path, token, &[], body).map(|(status, _, body)| (status, body))
}

/// [`try_request`] with more headers; the status, the response's head and its body.
fn try_request_with(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: &str,
) -> Option<(u16, String, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    let mut req = format!(
        "{method} {} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        encode(path),
        body.len()
    );
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).ok()?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, head.to_owned(), body.to_owned()))
}

/// Percent-encode what is not plain ASCII in a path and query.
fn encode(path: &str) -> String {
    path.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"/?=&-_.:".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A parameter an endpoint cannot apply is refused, never ignored: the head, the export and
/// the feed answer for the ledger as it is, so a cut there would be a different answer
/// under the cut's name.
#[test]
fn a_cut_or_a_date_where_it_cannot_apply_is_refused() {
    let l = Ledger::demo();
    let auditor = l.token("审计组", "auditor");
    let server = Server::start(&l.db(), l.dir.path());
    for path in [
        "/v1/head?known_at=seq:5",
        "/v1/export?known_at=seq:5",
        "/v1/events?from=1&known_at=seq:2",
        "/v1/events?on=2024-01-01",
        "/v1/verify?digest=1:00&known_at=seq:1",
        "/v1/groups?digest=1:00",
    ] {
        let (status, body) = server.request("GET", path, Some(&auditor), "");
        assert_eq!(status, 400, "{path}: {body}");
    }
    let (status, _) = server.request("GET", "/v1/head", Some(&auditor), "");
    assert_eq!(status, 200);
}

#[test]
fn every_read_answers_what_the_command_line_answers_byte_for_byte() {
    let l = Ledger::demo();
    let token = l.token("审计组", "auditor");
    // (path, the CLI twin), each computed before the server holds the ledger
    let pairs: Vec<(&str, Vec<&str>)> = vec![
        (
            "/v1/groups?on=2024-06-01",
            vec!["groups", "--on", "2024-06-01"],
        ),
        (
            "/v1/groups?on=2023-09-20",
            vec!["groups", "--on", "2023-09-20"],
        ),
        (
            "/v1/groups/佳佳学前教育集团?on=2024-06-01",
            vec!["group", "佳佳学前教育集团", "--on", "2024-06-01"],
        ),
        (
            "/v1/kindergartens/佳佳?on=2024-06-01",
            vec!["kindergarten", "佳佳", "--on", "2024-06-01"],
        ),
        (
            "/v1/teachers/T0001?on=2024-06-01",
            vec!["teacher", "T0001", "--on", "2024-06-01"],
        ),
        (
            "/v1/history/kindergarten/佳佳",
            vec!["history", "kindergarten", "佳佳"],
        ),
        (
            "/v1/log?from=100&limit=5",
            vec!["log", "--from", "100", "--limit", "5"],
        ),
        (
            "/v1/tally/2024?on=2024-12-31&explain=true",
            vec!["tally", "--year", "2024", "--on", "2024-12-31", "--explain"],
        ),
        (
            "/v1/tally/2024?on=2024-12-31&known_at=seq:150",
            vec![
                "tally",
                "--year",
                "2024",
                "--on",
                "2024-12-31",
                "--known-at",
                "seq:150",
            ],
        ),
        (
            "/v1/reports/compliance/2024?on=2024-12-31",
            vec![
                "report",
                "compliance",
                "--year",
                "2024",
                "--on",
                "2024-12-31",
            ],
        ),
        (
            "/v1/reports/balance?on=2024-09-01",
            vec!["report", "balance", "--on", "2024-09-01"],
        ),
        (
            "/v1/access?on=2023-11-20",
            vec!["access", "list", "--on", "2023-11-20"],
        ),
    ];
    let expected: Vec<String> = pairs
        .iter()
        .map(|(_, args)| {
            let mut a = args.clone();
            a.extend(["--format", "json"]);
            l.ok(&a)
        })
        .collect();
    let server = Server::start(&l.db(), l.dir.path());
    for ((path, args), want) in pairs.iter().zip(&expected) {
        let (status, body) = server.request("GET", path, Some(&token), "");
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(&body, want, "{path} differs from eduledger {args:?}");
    }
    // an unknown group: the CLI's sentence, as 422
    let (status, body) = server.request("GET", "/v1/groups/无此集团", Some(&token), "");
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("无此集团"), "{body}");
    server.stop();
}

#[test]
fn tokens_and_roles_decide_who_may_do_what() {
    let l = Ledger::demo();
    let admin = l.token("toyouban", "admin");
    let auditor = l.token("审计组", "auditor");
    let gone = l.token("离职者", "recorder");
    l.ok(&["access", "revoke", "--name", "离职者"]);
    let before = l.ok(&["verify", "--format", "json"]);
    let server = Server::start(&l.db(), l.dir.path());
    let cmd = r#"{"command":"register_kindergarten","kindergarten":"新园","category":"first_class","ownership":"public","on":"2024-09-01"}"#;
    assert_eq!(server.request("GET", "/healthz", None, "").0, 200);
    assert_eq!(server.request("GET", "/v1/groups", None, "").0, 401);
    // nothing of an unauthenticated request is parsed: a bad parameter is still a 401
    assert_eq!(
        server
            .request("GET", "/v1/tally/abc?nonsense=1", None, "")
            .0,
        401
    );
    assert_eq!(
        server.request("POST", "/v1/commands", None, "not json").0,
        401
    );
    assert_eq!(
        server
            .request("GET", "/v1/groups", Some("edl_not-a-token"), "")
            .0,
        401
    );
    let (status, body) = server.request("GET", "/v1/groups", Some(&gone), "");
    assert_eq!(status, 401, "a revoked token: {body}");
    let (status, body) = server.request("POST", "/v1/commands", Some(&auditor), cmd);
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("auditor"), "{body}");
    // a body that names someone else as its actor is refused, never rewritten
    let forged = r#"{"command":"register_kindergarten","kindergarten":"冒名园","category":"first_class","ownership":"public","on":"2024-09-01","meta":{"actor":"someone-else"}}"#;
    let (status, body) = server.request("POST", "/v1/commands", Some(&admin), forged);
    assert_eq!(status, 403, "{body}");
    // malformed: 400 naming the line; refused by a rule: 422; nothing recorded by either
    let (status, body) = server.request(
        "POST",
        "/v1/commands",
        Some(&admin),
        &format!("{cmd}\n{{\"command\":\"nope\"}}"),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["line"], 2);
    let dup = r#"{"command":"register_kindergarten","kindergarten":"佳佳","category":"first_class","ownership":"public","on":"2024-09-01"}"#;
    assert_eq!(
        server.request("POST", "/v1/commands", Some(&admin), dup).0,
        422
    );
    // accepted: acknowledged with its sequence after the fsync
    let (status, body) = server.request("POST", "/v1/commands", Some(&admin), cmd);
    assert_eq!(status, 200, "{body}");
    let ack: Value = serde_json::from_str(&body).unwrap();
    let seq = ack["seqs"][0].as_u64().unwrap();
    let before: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(
        seq,
        before["events"].as_u64().unwrap() + 1,
        "exactly one event was recorded"
    );
    // an admin grants through the server too — with a token the server mints
    {
        let (status, body) = server.request(
            "POST",
            "/v1/access/grant",
            Some(&admin),
            r#"{"name":"clerk","role":"recorder","on":"2030-01-01"}"#,
        );
        assert_eq!(status, 200, "{body}");
    }
    // an access change dated before the day it is recorded is refused here too, not only
    // by the command line
    let back = r#"{"command":"revoke_access","principal":"clerk","on":"2020-01-01"}"#;
    let (status, body) = server.request("POST", "/v1/commands", Some(&admin), back);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("before today"), "{body}");
    // blank lines count: the refusal names the line as the file has it
    let (status, body) = server.request(
        "POST",
        "/v1/commands",
        Some(&admin),
        &format!("\n{}\n\n{dup}", cmd.replace("新园", "另一园")),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["line"],
        4,
        "{body}"
    );
    let (status, body) = server.request(
        "POST",
        "/v1/commands",
        Some(&admin),
        "\n\n{\"command\":\"nope\"}",
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["line"],
        3,
        "{body}"
    );
    // an empty actor is someone else too
    let blank = r#"{"command":"register_kindergarten","kindergarten":"空名园","category":"first_class","ownership":"public","on":"2024-09-01","meta":{"actor":""}}"#;
    assert_eq!(
        server
            .request("POST", "/v1/commands", Some(&admin), blank)
            .0,
        403
    );
    // a year no report speaks of, and a parameter that does not exist, are refused
    assert_eq!(
        server
            .request(
                "GET",
                "/v1/reports/compliance/2147483647",
                Some(&auditor),
                ""
            )
            .0,
        400
    );
    assert_eq!(
        server
            .request("GET", "/v1/groups?knwon_at=seq:5", Some(&auditor), "")
            .0,
        400
    );
    // the scheme's case does not matter
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(format!("GET /v1/head HTTP/1.1\r\nHost: x\r\nConnection: close\r\nauthorization: bearer {auditor}\r\n\r\n").as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
    server.stop();
    // after the server: the event is there, recorded as the principal's own
    let log: Value = serde_json::from_str(&l.ok(&[
        "log",
        "--from",
        &seq.to_string(),
        "--limit",
        "1",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(log["events"].as_array().unwrap().len(), 1);
    assert_eq!(log["events"][0]["actor"], "toyouban");
}

#[test]
fn recorders_record_but_neither_grant_nor_correct() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let server = Server::start(&l.db(), l.dir.path());
    let cmd = r#"{"command":"register_teacher","staff_no":"R1","name":"录入","home":"佳佳","on":"2024-09-01"}"#;
    let (status, body) = server.request("POST", "/v1/commands", Some(&clerk), cmd);
    assert_eq!(status, 200, "{body}");
    let grant = format!(
        r#"{{"command":"grant_access","principal":"x","role":"admin","token_sha256":"{}","on":"2030-01-01"}}"#,
        "cd".repeat(32)
    );
    let (status, body) = server.request("POST", "/v1/commands", Some(&clerk), &grant);
    assert_eq!(status, 403, "a recorder granting access: {body}");
    let retract = r#"{"command":"retract_event","target":1,"reason":"r"}"#;
    let (status, body) = server.request("POST", "/v1/commands", Some(&clerk), retract);
    assert_eq!(status, 403, "a recorder retracting: {body}");
    server.stop();
}

#[test]
fn a_scoped_recorder_records_only_within_its_groups_on_each_commands_date() {
    let l = Ledger::demo();
    // 盈星 is in 佳佳's group until 2025-03-01, then in 实验's
    let file = l.dir.path().join("transfer.jsonl");
    // and teacher T9001 is 佳佳's until 2025-06-01, then 朵朵's
    std::fs::write(
        &file,
        [
            r#"{"command":"transfer_kindergarten","kindergarten":"盈星","to_group":"实验学前教育集团","on":"2025-03-01"}"#,
            r#"{"command":"register_teacher","staff_no":"T9001","name":"教师","home":"佳佳","on":"2025-01-01"}"#,
            r#"{"command":"change_home","staff_no":"T9001","home":"朵朵","on":"2025-06-01"}"#,
        ]
        .join("\n"),
    )
    .unwrap();
    l.ok(&["submit", file.to_str().unwrap()]);
    let out = l.ok(&[
        "access",
        "grant",
        "--name",
        "秘书处",
        "--role",
        "recorder",
        "--group",
        "佳佳学前教育集团",
        "--format",
        "json",
    ]);
    let scoped = serde_json::from_str::<Value>(&out).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let server = Server::start(&l.db(), l.dir.path());
    let teacher = |no: &str, home: &str, on: &str| {
        format!(
            r#"{{"command":"register_teacher","staff_no":"{no}","name":"教师","home":"{home}","on":"{on}"}}"#
        )
    };
    let post = |body: &str| server.request("POST", "/v1/commands", Some(&scoped), body);

    let (status, body) = post(&teacher("S1", "佳佳", "2024-09-01"));
    assert_eq!(status, 200, "its own group's lead: {body}");
    let (status, body) = post(&teacher("S2", "盈星", "2025-02-01"));
    assert_eq!(
        status, 403,
        "盈星 is in its group that day, but the teacher would be 实验's from 2025-03-01: {body}"
    );
    assert!(body.contains("2025-03-01"), "{body}");
    // a back-dated change of home may not take a teacher who is another group's by now
    let (status, body) =
        post(r#"{"command":"change_home","staff_no":"T0009","home":"赵巷","on":"2025-01-01"}"#);
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(&teacher("S3", "盈星", "2025-09-01"));
    assert_eq!(status, 403, "盈星 has left its group by then: {body}");
    assert!(
        body.contains("实验学前教育集团") && body.contains("2025-09-01"),
        "names the group and the date: {body}"
    );
    let (status, body) = post(&teacher("S4", "实验", "2024-09-01"));
    assert_eq!(status, 403, "another group's kindergarten: {body}");
    let (status, body) =
        post(r#"{"command":"designate_high_quality","kindergarten":"佳佳","on":"2025-01-01"}"#);
    assert_eq!(status, 403, "a designation is the bureau's: {body}");
    assert!(body.contains("bureau"), "{body}");
    let activity = |id: &str, group: &str, kg: &str| {
        format!(
            r#"{{"command":"hold_activity","activity":"{id}","group":"{group}","kind":"joint_research","title":"教研","on":"2024-10-10","kindergartens":["{kg}"]}}"#
        )
    };
    // a change of home may not take a teacher from another group, nor give one away
    let (status, body) =
        post(r#"{"command":"change_home","staff_no":"T0017","home":"佳佳","on":"2024-03-01"}"#);
    let (_, t11) = server.request("GET", "/v1/teachers/T0017?on=2024-03-01", Some(&scoped), "");
    assert_eq!(status, 403, "taking {t11}: {body}");
    let (status, body) =
        post(r#"{"command":"change_home","staff_no":"S1","home":"实验","on":"2024-10-01"}"#);
    assert_eq!(status, 403, "giving away: {body}");
    let (status, body) =
        post(r#"{"command":"change_home","staff_no":"S1","home":"赵巷","on":"2024-10-01"}"#);
    assert_eq!(status, 200, "within its group: {body}");
    // nor reach, by a back-dated command, a teacher who has since gone to another group
    for cmd in [
        r#"{"command":"leave_service","staff_no":"T9001","on":"2025-03-01"}"#,
        r#"{"command":"award_title","staff_no":"T9001","title":"backbone","on":"2025-03-01"}"#,
    ] {
        let (status, body) = post(cmd);
        assert_eq!(status, 403, "{cmd}: {body}");
        assert!(
            body.contains("2025-06-01"),
            "names the day it went elsewhere: {body}"
        );
    }
    let (status, body) = post(&activity("A-own", "佳佳学前教育集团", "佳佳"));
    assert_eq!(status, 200, "its own group's activity: {body}");
    let (status, body) = post(&activity("A-other", "实验学前教育集团", "实验"));
    assert_eq!(status, 403, "another group's activity: {body}");

    // one command beyond its groups refuses the whole batch, naming its line
    let batch = format!(
        "{}\n{}\n",
        teacher("S5", "佳佳", "2024-09-01"),
        teacher("S6", "实验", "2024-09-01")
    );
    let (status, body) = post(&batch);
    assert_eq!(status, 403, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["line"], 2, "{body}");
    let (status, _) = server.request("GET", "/v1/teachers/S5", Some(&scoped), "");
    assert_ne!(status, 200, "nothing of the refused batch is recorded");

    // what it recorded is recorded as its own
    let (_, body) = server.request("GET", "/v1/history/teacher/S1", Some(&scoped), "");
    let trail: Value = serde_json::from_str(&body).unwrap();
    let entries = trail["events"].as_array().unwrap();
    assert!(!entries.is_empty(), "{body}");
    assert!(entries.iter().all(|e| e["actor"] == "秘书处"), "{body}");
    server.stop();
}

#[test]
fn a_server_refuses_to_listen_beyond_loopback_without_tls() {
    let l = Ledger::demo();
    let r = run_in(
        l.dir.path(),
        &l.db(),
        &["serve", "--listen", "0.0.0.0:0"],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("not a loopback address"), "{}", r.stderr);
}

/// One request over TLS, trusting only `ca` (DER): the status and the body.
fn tls_request(addr: &str, ca: &[u8], path: &str, token: &str) -> Result<(u16, String), String> {
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    tls_exchange(addr, ca, &req).map(|(status, _, body)| (status, body))
}

/// One raw request over TLS trusting only `ca`: the status, the head and the body.
fn tls_exchange(addr: &str, ca: &[u8], req: &str) -> Result<(u16, String, String), String> {
    use rustls::pki_types::{CertificateDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from(ca.to_vec()))
        .map_err(|e| e.to_string())?;
    #[allow(deprecated)]
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from("localhost").map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(|e| e.to_string())?;
    let sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    tls.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    // (a server that closes without close_notify is not this test's concern)
    let _ = tls.read_to_end(&mut raw);
    let text = String::from_utf8(raw).map_err(|e| e.to_string())?;
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no response")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, head.to_owned(), body.to_owned()))
}

#[test]
fn tls_with_a_certificate_made_here_serves_what_plain_http_serves() {
    let l = Ledger::demo();
    let auditor = l.token("审计组", "auditor");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_pem, key_pem) = (l.dir.path().join("cert.pem"), l.dir.path().join("key.pem"));
    std::fs::write(&cert_pem, cert.cert.pem()).unwrap();
    std::fs::write(&key_pem, cert.key_pair.serialize_pem()).unwrap();
    let ca = cert.cert.der().to_vec();

    // a certificate file that is not one is refused at start, naming it
    let r = run_in(
        l.dir.path(),
        &l.db(),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            key_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--tls-cert"), "{}", r.stderr);
    // one flag without the other is a usage error
    let r = run_in(
        l.dir.path(),
        &l.db(),
        &["serve", "--tls-cert", cert_pem.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);

    let plain = Server::start(&l.db(), l.dir.path());
    let (_, expected) = plain.request("GET", "/v1/groups", Some(&auditor), "");
    plain.stop();
    let server = Server::start_with(
        &l.db(),
        l.dir.path(),
        &[
            "--tls-cert",
            cert_pem.to_str().unwrap(),
            "--tls-key",
            key_pem.to_str().unwrap(),
        ],
        "https",
    );
    let (status, body) = tls_request(&server.addr, &ca, "/v1/groups", &auditor).unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, expected, "the same document over TLS");
    // the console's session cookie is Secure under TLS (HttpOnly, SameSite=Strict always)
    let form = format!("token={auditor}");
    let (status, head, _) = tls_exchange(
        &server.addr,
        &ca,
        &format!(
            "POST /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )
    .unwrap();
    assert_eq!(status, 303, "{head}");
    let cookie = head
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no cookie in {head}"));
    assert!(
        cookie.contains("; Secure")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // named __Host- (no neighbouring host can set it), and it opens a page
    let pair = cookie
        .split_once(':')
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .trim();
    assert!(pair.starts_with("__Host-eduledger_session="), "{cookie}");
    let (status, _, page) = tls_exchange(
        &server.addr,
        &ca,
        &format!(
            "GET /ledger HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nCookie: {pair}\r\n\r\n"
        ),
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(page.contains("当前摘要"));
    let (status, _) = tls_request(&server.addr, &ca, "/v1/groups", "edl_wrong").unwrap();
    assert_eq!(status, 401);
    // a client that does not trust the certificate gets nothing
    let stranger = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    assert!(tls_request(&server.addr, stranger.cert.der(), "/v1/groups", &auditor).is_err());
    // plain HTTP on the TLS port gets no answer
    assert!(
        try_request(&server.addr, "GET", "/v1/groups", Some(&auditor), "")
            .is_none_or(|(s, _)| s != 200)
    );
    // the command line and the follower over TLS, trusting the certificate given with --ca
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}");
    let ca = cert_pem.to_str().unwrap();
    let r = run_in(
        l.dir.path(),
        &l.db(),
        &[
            "--server", &url, "--token", &auditor, "--ca", ca, "groups", "--format", "json",
        ],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout, expected,
        "the CLI through TLS prints the same document"
    );
    let copy = l.dir.path().join("tls-copy.db");
    let r = run_in(
        l.dir.path(),
        &copy,
        &["--token", &auditor, "--ca", ca, "follow", &url, "--once"],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    // without the certificate to trust, or trusting another, nothing is sent
    let r = run_in(
        l.dir.path(),
        &l.db(),
        &["--server", &url, "--token", &auditor, "groups"],
        None,
    );
    assert_eq!(r.code, 2, "https needs --ca: {}", r.stderr);
    let other = l.dir.path().join("other.pem");
    std::fs::write(&other, stranger.cert.pem()).unwrap();
    let r = run_in(
        l.dir.path(),
        &l.db(),
        &[
            "--server",
            &url,
            "--token",
            &auditor,
            "--ca",
            other.to_str().unwrap(),
            "groups",
        ],
        None,
    );
    assert_ne!(
        r.code, 0,
        "a server whose certificate is not trusted: {}",
        r.stdout
    );
    assert!(r.stdout.is_empty());
    server.stop();
    let exported = run_in(l.dir.path(), &copy, &["export", "-"], None);
    assert_eq!(
        exported.stdout,
        l.ok(&["export", "-"]),
        "the copy made over TLS"
    );
}

#[test]
fn concurrent_writers_each_get_their_own_durable_sequence() {
    let l = Ledger::demo();
    let admin = l.token("toyouban", "admin");
    let server = Server::start(&l.db(), l.dir.path());
    let seqs: Vec<u64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let (server, admin) = (&server, &admin);
                scope.spawn(move || {
                    let cmd = format!(
                        r#"{{"command":"register_teacher","staff_no":"C{i}","name":"并发","home":"佳佳","on":"2024-09-01"}}"#
                    );
                    let (status, body) = server.request("POST", "/v1/commands", Some(admin), &cmd);
                    assert_eq!(status, 200, "{body}");
                    serde_json::from_str::<Value>(&body).unwrap()["seqs"][0]
                        .as_u64()
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = seqs.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        16,
        "every writer got its own sequence: {seqs:?}"
    );
    assert_eq!(
        sorted[15] - sorted[0],
        15,
        "and they are contiguous: {seqs:?}"
    );
    // killed, not stopped: every acknowledged event must already be durable
    server.kill();
    for i in 0..16 {
        l.ok(&[
            "teacher",
            &format!("C{i}"),
            "--on",
            "2024-09-02",
            "--format",
            "json",
        ]);
    }
    l.ok(&["verify"]);
}

/// One request that may fail (the server may be killed mid-way): the status and body, if any.
#[test]
fn sigkill_at_seeded_moments_loses_no_acknowledged_batch_and_leaves_none_half_there() {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};
    // (a SIGKILL keeps the page cache: this shows no 200 is sent before the append and no
    // batch is split; that the fsync is there is shown by the power-loss harness)
    let l = Ledger::demo();
    let admin = l.token("toyouban", "admin");
    let mut seed = 0x5eed_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut acknowledged = 0;
    for round in 0..20 {
        let server = Server::start(&l.db(), l.dir.path());
        let stop = AtomicBool::new(false);
        // every batch tried: its two staff numbers, and whether it was answered 200
        let tried: Mutex<Vec<(String, String, bool)>> = Mutex::new(vec![]);
        let wait = 20 + next() % 200;
        std::thread::scope(|scope| {
            for client in 0..64 {
                let (addr, admin, stop, tried) = (&server.addr, &admin, &stop, &tried);
                scope.spawn(move || {
                    for n in 0.. {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        let (a, b) = (format!("K{round}-{client}-{n}a"), format!("K{round}-{client}-{n}b"));
                        let body = format!(
                            "{{\"command\":\"register_teacher\",\"staff_no\":\"{a}\",\"name\":\"甲\",\"home\":\"佳佳\",\"on\":\"2024-09-01\"}}\n{{\"command\":\"register_teacher\",\"staff_no\":\"{b}\",\"name\":\"乙\",\"home\":\"佳佳\",\"on\":\"2024-09-01\"}}"
                        );
                        let answer = try_request(addr, "POST", "/v1/commands", Some(admin), &body);
                        let ok = matches!(answer, Some((200, _)));
                        tried.lock().unwrap().push((a, b, ok));
                        if answer.is_none() {
                            break;
                        }
                    }
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(wait));
            let _ = Command::new("kill")
                .args(["-KILL", &server.child.id().to_string()])
                .status();
            stop.store(true, Ordering::SeqCst);
        });
        drop(server);
        // what the ledger holds after the kill, read by the command line
        let log: Value = serde_json::from_str(&l.ok(&[
            "log",
            "--from",
            "1",
            "--limit",
            "100000000",
            "--format",
            "json",
        ]))
        .unwrap();
        let recorded: std::collections::HashSet<String> = log["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["event"]["data"]["staff_no"].as_str().map(str::to_owned))
            .collect();
        for (a, b, ok) in tried.into_inner().unwrap() {
            assert_eq!(
                recorded.contains(&a),
                recorded.contains(&b),
                "round {round}: half of the batch {a}/{b} is there"
            );
            if ok {
                acknowledged += 1;
                assert!(
                    recorded.contains(&a),
                    "round {round}: {a} was answered 200 and is missing"
                );
            }
        }
        l.ok(&["verify"]);
    }
    assert!(
        acknowledged > 100,
        "the rounds acknowledged too little to mean anything: {acknowledged}"
    );
}

#[test]
fn if_match_records_only_against_the_head_it_names() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let server = Server::start(&l.db(), l.dir.path());
    let (_, body) = server.request("GET", "/v1/head", Some(&clerk), "");
    let head = serde_json::from_str::<Value>(&body).unwrap()["seq"]
        .as_u64()
        .unwrap();
    let teacher = |no: &str| {
        format!(
            r#"{{"command":"register_teacher","staff_no":"{no}","name":"教师","home":"佳佳","on":"2024-09-01"}}"#
        )
    };
    let at = head.to_string();
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[("If-Match", &at)],
        &teacher("M1"),
    );
    assert_eq!(status, 200, "the head it read: {body}");
    // the same If-Match again: the head has moved on, by its own write
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[("If-Match", &at)],
        &teacher("M2"),
    );
    assert_eq!(status, 409, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["head"], head + 1, "names the head it is now: {body}");
    let (status, _) = server.request("GET", "/v1/teachers/M2", Some(&clerk), "");
    assert_ne!(status, 200, "nothing recorded");
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[("If-Match", "\"abc\"")],
        &teacher("M3"),
    );
    assert_eq!(status, 400, "not a sequence: {body}");
    server.stop();
}

#[test]
fn metrics_count_what_happened_and_every_answer_carries_a_request_id() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let server = Server::start(&l.db(), l.dir.path());
    let (status, _) = server.request("GET", "/metrics", None, "");
    assert_eq!(status, 401, "metrics need a token");
    let teacher = |no: &str| {
        format!(
            r#"{{"command":"register_teacher","staff_no":"{no}","name":"教师","home":"佳佳","on":"2024-09-01"}}"#
        )
    };
    let two = format!("{}\n{}\n", teacher("X1"), teacher("X2"));
    assert_eq!(
        server.request("POST", "/v1/commands", Some(&clerk), &two).0,
        200
    );
    assert_eq!(
        server
            .request("POST", "/v1/commands", Some(&clerk), &teacher("X3"))
            .0,
        200
    );
    // a rule refuses it: X1 is taken
    assert_eq!(
        server
            .request("POST", "/v1/commands", Some(&clerk), &teacher("X1"))
            .0,
        422
    );
    assert_eq!(
        server
            .request("POST", "/v1/commands", Some(&clerk), "{not json")
            .0,
        400
    );
    assert_eq!(
        server
            .request("GET", "/v1/groups/佳佳学前教育集团", Some(&clerk), "")
            .0,
        200
    );

    let (status, head, text) = server.request_with("GET", "/metrics", Some(&clerk), &[], "");
    assert_eq!(status, 200, "{text}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let value = |line: &str| -> f64 {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(line)
                    .map(|v| v.trim().parse::<f64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no {line} in\n{text}"))
    };
    assert_eq!(value("eduledger_commands_total{outcome=\"recorded\"}"), 3.0);
    assert_eq!(value("eduledger_commands_total{outcome=\"refused\"}"), 1.0);
    assert_eq!(
        value("eduledger_commands_total{outcome=\"malformed\"}"),
        1.0
    );
    // two groups were made durable, each with one fsync measured
    assert_eq!(value("eduledger_fsync_seconds_count"), 2.0);
    assert_eq!(value("eduledger_group_commit_commands_sum"), 3.0);
    assert!(value("eduledger_fsync_seconds_sum") > 0.0);
    // latency by route, never by the name asked for
    assert!(
        text.contains("route=\"/v1/groups/{name}\""),
        "routes are labelled by their pattern:\n{text}"
    );
    assert!(!text.contains("佳佳"), "no ledger data in the metrics");
    let (_, body) = server.request("GET", "/v1/head", Some(&clerk), "");
    let seq = serde_json::from_str::<Value>(&body).unwrap()["seq"]
        .as_u64()
        .unwrap();
    assert_eq!(value("eduledger_head_seq"), seq as f64);

    // every answer names its request; one the client gave is kept
    let id_of = |head: &str| {
        head.lines().find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("x-request-id")
                .then(|| value.trim().to_owned())
        })
    };
    let (_, h1, _) = server.request_with("GET", "/v1/head", Some(&clerk), &[], "");
    let (_, h2, _) = server.request_with("GET", "/healthz", None, &[], "");
    let (a, b) = (id_of(&h1).expect("an id"), id_of(&h2).expect("an id"));
    assert_ne!(a, b, "each request its own id");
    let (_, h3, _) = server.request_with(
        "GET",
        "/v1/head",
        Some(&clerk),
        &[("X-Request-Id", "trace-42")],
        "",
    );
    assert_eq!(id_of(&h3).as_deref(), Some("trace-42"));
    server.stop();
}

/// The SSE events of a feed answer, as (id, event, data), until `n` are read.
fn feed_events(lines: &mut eduledger_client::Lines, n: usize) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let (mut id, mut event, mut data) = (String::new(), String::new(), String::new());
    while out.len() < n {
        let line = lines.next_line().unwrap().expect("the feed ended early");
        if line.is_empty() {
            if !data.is_empty() {
                out.push((id.clone(), event.clone(), data.clone()));
            }
            data.clear();
        } else if let Some(v) = line.strip_prefix("id: ") {
            id = v.to_owned();
        } else if let Some(v) = line.strip_prefix("event: ") {
            event = v.to_owned();
        } else if let Some(v) = line.strip_prefix("data: ") {
            data = v.to_owned();
        }
    }
    out
}

#[test]
fn the_feed_sends_the_export_lines_from_where_asked_then_each_new_event() {
    let l = Ledger::demo();
    let auditor = l.token("审计组", "auditor");
    let clerk = l.token("clerk", "recorder");
    let export = l.ok(&["export", "-"]);
    // (the feed sends events; the export's end line is the file's, not an event)
    let lines: Vec<&str> = export
        .lines()
        .filter(|l| !l.starts_with(r#"{"end":"#))
        .collect();
    let server = Server::start(&l.db(), l.dir.path());
    let url = format!("http://{}", server.addr);
    let remote = eduledger_client::Remote::new(&url, &auditor, None).unwrap();

    // from=3: the export's lines from the third, each with its sequence and type
    let (status, headers, mut feed) = remote.stream("/v1/events?from=3", &[]).unwrap();
    assert_eq!(status, 200);
    assert!(
        headers
            .iter()
            .any(|(n, v)| n == "content-type" && v.starts_with("text/event-stream")),
        "{headers:?}"
    );
    let caught_up = feed_events(&mut feed, lines.len() - 2);
    for (i, (id, event, data)) in caught_up.iter().enumerate() {
        assert_eq!(id, &(i + 3).to_string());
        assert_eq!(data, lines[i + 2], "the export's own line");
        let v: Value = serde_json::from_str(data).unwrap();
        assert_eq!(&v["event_type"], event.as_str());
    }
    // then what is recorded, once it is durable
    let cmd = r#"{"command":"register_teacher","staff_no":"F1","name":"教师","home":"佳佳","on":"2024-09-01"}"#;
    let (status, body) = server.request("POST", "/v1/commands", Some(&clerk), cmd);
    assert_eq!(status, 200, "{body}");
    let seq = serde_json::from_str::<Value>(&body).unwrap()["seqs"][0]
        .as_u64()
        .unwrap();
    let live = feed_events(&mut feed, 1);
    assert_eq!(live[0].0, seq.to_string());
    assert_eq!(live[0].1, "TeacherRegistered");
    assert_eq!(
        serde_json::from_str::<Value>(&live[0].2).unwrap()["actor"],
        "clerk"
    );

    // Last-Event-ID resumes after the one named
    let (_, _, mut resumed) = remote
        .stream("/v1/events?from=1", &[("Last-Event-ID", "5")])
        .unwrap();
    assert_eq!(feed_events(&mut resumed, 1)[0].0, "6");
    let (status, _, _) = remote
        .stream("/v1/events", &[("Last-Event-ID", "x")])
        .unwrap();
    assert_eq!(status, 400);
    // and no token, no feed
    let (status, _) = server.request("GET", "/v1/events", None, "");
    assert_eq!(status, 401);
    // a SIGTERM ends open feeds instead of waiting for them
    let t = std::time::Instant::now();
    server.stop();
    assert!(
        t.elapsed() < std::time::Duration::from_secs(8),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn a_follower_keeps_a_copy_whose_export_is_the_servers_byte_for_byte() {
    let l = Ledger::demo();
    let auditor = l.token("审计组", "auditor");
    let clerk = l.token("clerk", "recorder");
    let server = Server::start(&l.db(), l.dir.path());
    let url = format!("http://{}", server.addr);
    let copy = l.dir.path().join("copy.db");
    let follow = |args: &[&str]| {
        let mut all = vec!["follow", url.as_str(), "--token", auditor.as_str()];
        all.extend_from_slice(args);
        run_in(l.dir.path(), &copy, &all, None)
    };
    let r = follow(&["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let (_, head) = server.request("GET", "/v1/head", Some(&auditor), "");
    let head: Value = serde_json::from_str(&head).unwrap();
    assert_eq!(
        r.stdout.trim(),
        format!("{}:{}", head["seq"], head["hash"].as_str().unwrap())
    );
    // it continues from where the copy ends
    for i in 0..3 {
        let cmd = format!(
            r#"{{"command":"register_teacher","staff_no":"C{i}","name":"教师","home":"佳佳","on":"2024-09-01"}}"#
        );
        assert_eq!(
            server.request("POST", "/v1/commands", Some(&clerk), &cmd).0,
            200
        );
    }
    let r = follow(&["--once"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    // and, left running, it copies each batch as it is recorded
    let mut live = Command::new(BIN)
        .current_dir(l.dir.path())
        .arg("--db")
        .arg(&copy)
        .args(["follow", &url, "--token", &auditor])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut digests = BufReader::new(live.stdout.take().unwrap()).lines();
    for i in 0..3 {
        let cmd = format!(
            r#"{{"command":"register_teacher","staff_no":"L{i}","name":"教师","home":"佳佳","on":"2024-09-01"}}"#
        );
        let (status, body) = server.request("POST", "/v1/commands", Some(&clerk), &cmd);
        assert_eq!(status, 200, "{body}");
        let head = &serde_json::from_str::<Value>(&body).unwrap()["head"];
        let expected = format!("{}:{}", head["seq"], head["hash"].as_str().unwrap());
        // the copy's digest after each append, until it reaches this one
        loop {
            let line = digests.next().expect("the follower stopped").unwrap();
            if line == expected {
                break;
            }
        }
    }
    terminate(&live);
    let _ = live.wait();
    // a wrong token is a usage error, not a retry for ever
    let r = run_in(
        l.dir.path(),
        &copy,
        &["follow", &url, "--token", "edl_nope", "--once"],
        None,
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    server.stop();
    let copied = run_in(l.dir.path(), &copy, &["export", "-"], None);
    assert_eq!(copied.code, 0, "{}", copied.stderr);
    assert_eq!(copied.stdout, l.ok(&["export", "-"]), "the same bytes");
    let verified = run_in(l.dir.path(), &copy, &["verify"], None);
    assert_eq!(verified.code, 0, "{}", verified.stderr);
}

/// A feed that is not the ledger's: a server on `listener` answering every request with
/// `body` as an event stream.
fn fake_feed(listener: std::net::TcpListener, body: String) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = if String::from_utf8_lossy(&buf).starts_with("GET /v1/head") {
                let seq = body.matches("\nid: ").count() + usize::from(body.starts_with("id: "));
                format!(r#"{{"seq":{seq},"hash":"00"}}"#)
            } else {
                body.clone()
            };
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{head}",
                head.len()
            );
        }
    });
}

#[test]
fn a_follower_refuses_events_the_chain_does_not_vouch_for_and_copies_nothing_of_them() {
    let l = Ledger::demo();
    let export = l.ok(&["export", "-"]);
    let lines: Vec<String> = export.lines().map(str::to_owned).collect();
    let sse = |lines: &[String]| -> String {
        lines
            .iter()
            .map(|line| {
                let v: Value = serde_json::from_str(line).unwrap();
                format!(
                    "id: {}\nevent: {}\ndata: {line}\n\n",
                    v["seq"],
                    v["event_type"].as_str().unwrap()
                )
            })
            .collect()
    };
    // an event's payload changed: its bytes no longer hash to its hash
    let mut tampered = lines[..5].to_vec();
    let mut v: Value = serde_json::from_str(&tampered[3]).unwrap();
    v["actor"] = Value::from("someone else");
    tampered[3] = v.to_string();
    // an event left out: the next one does not continue the chain
    let mut gap = lines[..5].to_vec();
    gap.remove(2);
    // an event larger than any export line, in many data lines
    let huge = format!(
        "{}id: 3\nevent: X\n{}\n",
        sse(&lines[..2]),
        "data: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n".repeat(300_000)
    );
    for (what, feed) in [
        ("tampered", sse(&tampered)),
        ("gap", sse(&gap)),
        ("huge", huge),
    ] {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        fake_feed(listener, feed);
        let copy = l.dir.path().join(format!("copy-{what}.db"));
        let r = run_in(
            l.dir.path(),
            &copy,
            &["follow", &url, "--token", "t", "--once"],
            None,
        );
        assert_eq!(r.code, 3, "{what}: {}", r.stderr);
        assert!(r.stderr.contains("refused"), "{what}: {}", r.stderr);
        // what came before the bad event may be there; nothing from it on
        let log = run_in(
            l.dir.path(),
            &copy,
            &["log", "--format", "json", "--limit", "100"],
            None,
        );
        let copied = serde_json::from_str::<Value>(&log.stdout)
            .map(|v| v["events"].as_array().map_or(0, Vec::len))
            .unwrap_or(0);
        assert!(copied < 3, "{what}: {copied} events copied: {}", log.stdout);
    }
}

#[test]
fn an_idempotency_key_records_once_and_answers_every_retry_alike_even_after_a_kill() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let other = l.token("other", "recorder");
    let server = Server::start(&l.db(), l.dir.path());
    let batch = r#"{"command":"register_teacher","staff_no":"I1","name":"教师","home":"佳佳","on":"2024-09-01"}
{"command":"register_teacher","staff_no":"I2","name":"教师","home":"佳佳","on":"2024-09-01"}
"#;
    let key = [("Idempotency-Key", "6f1c1b0e-batch-1")];
    let post = |server: &Server, token: &str, body: &str| {
        let (status, _, body) =
            server.request_with("POST", "/v1/commands", Some(token), &key, body);
        (status, body)
    };
    let head = |server: &Server| server.request("GET", "/v1/head", Some(&clerk), "").1;
    let start = head(&server);
    // the first attempt and its retries race: one records, every one is answered alike
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..9)
            .map(|_| scope.spawn(|| post(&server, &clerk, batch)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = answers[0].1.clone();
    assert_eq!(answers[0].0, 200, "{first}");
    for (status, body) in &answers {
        assert_eq!((*status, body), (200, &first));
    }
    let after = head(&server);
    let seq = |h: &str| {
        serde_json::from_str::<Value>(h).unwrap()["seq"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(
        seq(&after),
        seq(&start) + 2,
        "recorded once: {start} → {after}"
    );
    // a retry that also carries its first attempt's If-Match gets the first answer, not 409
    let at = seq(&start).to_string();
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[key[0], ("If-Match", &at)],
        batch,
    );
    assert_eq!((status, &body), (200, &first));
    // the same key with another body is refused, and records nothing
    let (status, body) = post(&server, &clerk, &batch.replace("I2", "I3"));
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("Idempotency-Key"), "{body}");
    assert_eq!(head(&server), after);
    // another principal's key is its own
    let mine = batch.replace("I1", "J1").replace("I2", "J2");
    let (status, theirs) = post(&server, &other, &mine);
    assert_eq!(status, 200, "{theirs}");
    assert_ne!(theirs, first);
    // a key that is not one
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[("Idempotency-Key", &"k".repeat(129))],
        batch,
    );
    assert_eq!(status, 400, "{body}");
    // killed and started again: the retry still finds the first answer in the ledger
    let before_kill = head(&server);
    server.kill();
    let server = Server::start(&l.db(), l.dir.path());
    let (status, again) = post(&server, &clerk, batch);
    assert_eq!((status, &again), (200, &first));
    assert_eq!(head(&server), before_kill, "nothing recorded by the retry");
    // and the first answer's head is the digest right after the batch: verify vouches for it
    let v: Value = serde_json::from_str(&first).unwrap();
    let digest = format!(
        "{}:{}",
        v["head"]["seq"],
        v["head"]["hash"].as_str().unwrap()
    );
    assert_eq!(v["seqs"][1], v["head"]["seq"]);
    server.stop();
    let r = run_in(
        l.dir.path(),
        &l.db(),
        &["verify", "--digest", &digest],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn a_planted_idempotency_record_is_refused_and_nothing_is_recorded_on_it() {
    use sha2::Digest as _;
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let batch = r#"{"command":"register_teacher","staff_no":"P1","name":"教师","home":"佳佳","on":"2024-09-01"}"#;
    // someone who can write sled's trees says this key recorded events 1 and 2
    {
        let db = sled::open(l.db()).unwrap();
        let mut value = sha2::Sha256::digest(batch.as_bytes()).to_vec();
        value.extend_from_slice(&1u64.to_be_bytes());
        value.extend_from_slice(&2u64.to_be_bytes());
        db.open_tree("meta")
            .unwrap()
            .insert(b"note:request:clerk\nplanted", value)
            .unwrap();
        db.flush().unwrap();
    }
    let server = Server::start(&l.db(), l.dir.path());
    let (_, before) = server.request("GET", "/v1/head", Some(&clerk), "");
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[("Idempotency-Key", "planted")],
        batch,
    );
    assert_eq!(
        status, 409,
        "never answered from a record the chain does not vouch for: {body}"
    );
    let (_, after) = server.request("GET", "/v1/head", Some(&clerk), "");
    assert_eq!(before, after, "and nothing recorded on it");
    // the ledger goes on recording other keys
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[("Idempotency-Key", "honest")],
        batch,
    );
    assert_eq!(status, 200, "{body}");
    server.stop();
    // a forged note: the honest key's note rewritten to another body's hash, so that body
    // would be answered with the first batch's sequences — the chain's ids say otherwise
    let other = batch.replace("P1", "P2");
    {
        let db = sled::open(l.db()).unwrap();
        let meta = db.open_tree("meta").unwrap();
        let mut note = meta
            .get(b"note:request:clerk\nhonest")
            .unwrap()
            .unwrap()
            .to_vec();
        note[..32].copy_from_slice(&sha2::Sha256::digest(other.as_bytes()));
        meta.insert(b"note:request:clerk\nhonest", note).unwrap();
        db.flush().unwrap();
    }
    let server = Server::start(&l.db(), l.dir.path());
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[("Idempotency-Key", "honest")],
        &other,
    );
    assert_eq!(
        status, 409,
        "never a 200 for a batch the chain does not hold: {body}"
    );
    // and the honest retry is still answered from the chain alone
    let (status, _, body) = server.request_with(
        "POST",
        "/v1/commands",
        Some(&clerk),
        &[("Idempotency-Key", "honest")],
        batch,
    );
    assert_eq!(status, 200, "{body}");
    server.stop();
}

#[test]
fn export_verify_and_access_over_the_api_answer_as_the_command_line_does() {
    let l = Ledger::demo();
    let admin = l.token("toyouban", "admin");
    let clerk = l.token("clerk", "recorder");
    let export = l.ok(&["export", "-"]);
    let server = Server::start(&l.db(), l.dir.path());
    // the export, byte for byte (the grants above are in both)
    let (status, head, body) = server.request_with("GET", "/v1/export", Some(&clerk), &[], "");
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase().contains("application/x-ndjson"),
        "{head}"
    );
    let remote =
        eduledger_client::Remote::new(&format!("http://{}", server.addr), &clerk, None).unwrap();
    let whole = remote.request("GET", "/v1/export", &[], b"").unwrap();
    assert_eq!(
        String::from_utf8(whole.body).unwrap(),
        export,
        "the same bytes as export"
    );
    assert!(!body.is_empty());

    // a digest the ledger holds, one it does not, one past its end, one that is not one
    let (_, h) = server.request("GET", "/v1/head", Some(&clerk), "");
    let h: Value = serde_json::from_str(&h).unwrap();
    let (seq, hash) = (
        h["seq"].as_u64().unwrap(),
        h["hash"].as_str().unwrap().to_owned(),
    );
    let (status, body) = server.request(
        "GET",
        &format!("/v1/verify?digest={seq}:{hash}"),
        Some(&clerk),
        "",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["ok"], true);
    let wrong = format!("{seq}:{}", "0".repeat(64));
    let (status, body) = server.request(
        "GET",
        &format!("/v1/verify?digest={wrong}"),
        Some(&clerk),
        "",
    );
    assert_eq!(status, 409, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["ok"], false);
    assert_eq!(v["found"], format!("{seq}:{hash}"));
    let (status, _) = server.request(
        "GET",
        &format!("/v1/verify?digest={}:{hash}", seq + 5),
        Some(&clerk),
        "",
    );
    assert_eq!(status, 409);
    let (status, _) = server.request("GET", "/v1/verify?digest=12", Some(&clerk), "");
    assert_eq!(status, 400);
    // an older digest: the CLI's verify --digest agrees with the server
    let (_, first) = server.request("GET", "/v1/log?from=3&limit=1", Some(&clerk), "");
    let first: Value = serde_json::from_str(&first).unwrap();
    let old = format!("3:{}", first["events"][0]["hash"].as_str().unwrap());
    let (status, body) =
        server.request("GET", &format!("/v1/verify?digest={old}"), Some(&clerk), "");
    assert_eq!(status, 200, "{body}");

    // access through the API: an admin grants, the token works, an admin revokes, it stops
    let (status, body) = server.request(
        "POST",
        "/v1/access/grant",
        Some(&clerk),
        r#"{"name":"x","role":"auditor"}"#,
    );
    assert_eq!(status, 403, "a recorder grants nothing: {body}");
    let (status, body) = server.request(
        "POST",
        "/v1/access/grant",
        Some(&admin),
        r#"{"name":"新审计","role":"auditor"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let granted: Value = serde_json::from_str(&body).unwrap();
    let token = granted["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("edl_") && token.len() == 68, "{token}");
    assert_eq!(granted["role"], "auditor");
    assert_eq!(server.request("GET", "/v1/groups", Some(&token), "").0, 200);
    let (status, body) = server.request(
        "POST",
        "/v1/access/grant",
        Some(&admin),
        r#"{"name":"y","role":"emperor"}"#,
    );
    assert_eq!(status, 400, "names the field: {body}");
    assert!(body.contains("role"), "{body}");
    let (status, body) = server.request(
        "POST",
        "/v1/access/revoke",
        Some(&admin),
        r#"{"name":"新审计"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(server.request("GET", "/v1/groups", Some(&token), "").0, 401);
    // recorded like every fact, with the admin as its actor
    let (_, trail) = server.request("GET", "/v1/history/access/新审计", Some(&admin), "");
    let trail: Value = serde_json::from_str(&trail).unwrap();
    let events = trail["events"].as_array().unwrap();
    assert_eq!(events.len(), 2, "{trail}");
    assert!(events.iter().all(|e| e["actor"] == "toyouban"));
    assert!(
        !trail.to_string().contains(&token),
        "the token is never recorded"
    );
    server.stop();
}

#[test]
fn the_command_line_through_a_server_prints_what_it_prints_locally_with_the_same_exit_codes() {
    let l = Ledger::demo();
    let admin = l.token("toyouban", "admin");
    let auditor = l.token("审计组", "auditor");
    // a twin with the same history, read locally while the server holds the original
    let export = l.dir.path().join("export.jsonl");
    l.ok(&["export", export.to_str().unwrap()]);
    let twin = l.dir.path().join("twin.db");
    let r = run_in(
        l.dir.path(),
        &twin,
        &["import", export.to_str().unwrap()],
        None,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let server = Server::start(&l.db(), l.dir.path());
    let url = format!("http://{}", server.addr);
    let local = |args: &[&str]| run_in(l.dir.path(), &twin, args, None);
    let remote = |token: &str, args: &[&str]| {
        let mut all = vec!["--server", url.as_str(), "--token", token];
        all.extend_from_slice(args);
        run_in(l.dir.path(), &l.db(), &all, None)
    };
    let reads: Vec<Vec<&str>> = vec![
        vec!["groups"],
        vec!["group", "佳佳学前教育集团"],
        vec!["kindergarten", "佳佳"],
        vec!["teacher", "T0001"],
        vec!["history", "teacher", "T0001"],
        vec!["history", "group", "佳佳学前教育集团"],
        vec!["log", "--from", "3", "--limit", "5"],
        vec!["tally", "--year", "2024", "--explain"],
        vec!["report", "compliance", "--year", "2024"],
        vec!["report", "rewards", "--year", "2024"],
        vec!["report", "balance"],
        vec!["report", "funds", "--year", "2024"],
        vec!["report", "rotations", "--year", "2024"],
        vec!["access", "list"],
    ];
    for read in &reads {
        for format in ["table", "json", "csv"] {
            let mut args = read.clone();
            if read[0] != "history" && read[0] != "log" {
                args.extend_from_slice(&["--on", "2024-10-01"]);
            }
            args.extend_from_slice(&["--format", format]);
            let (here, there) = (local(&args), remote(&auditor, &args));
            assert_eq!(here.code, 0, "{args:?}: {}", here.stderr);
            assert_eq!(
                (here.code, &here.stdout),
                (there.code, &there.stdout),
                "{args:?}: {}",
                there.stderr
            );
        }
    }
    // refusals: the same sentence and exit code
    for (args, code) in [
        (vec!["group", "不存在集团"], 1),
        (vec!["groups", "--known-at", "garbage"], 1),
        (vec!["history", "teacher", "T0001", "--on", "2024-10-01"], 2),
        (vec!["teacher", "NOPE", "--on", "2024-10-01"], 1),
    ] {
        let (here, there) = (local(&args), remote(&auditor, &args));
        assert_eq!(here.code, code, "{args:?}: {}", here.stderr);
        assert_eq!(
            (here.code, &here.stderr),
            (there.code, &there.stderr),
            "{args:?}"
        );
    }
    // writes: the same sequences (the twin and the server hold the same history), the same
    // refusals
    let write = [
        "teacher",
        "register",
        "--staff-no",
        "W1",
        "--name",
        "教师",
        "--home",
        "佳佳",
        "--on",
        "2024-09-01",
    ];
    let (here, there) = (local(&write), remote(&admin, &write));
    assert_eq!(
        (here.code, there.code),
        (0, 0),
        "{} / {}",
        here.stderr,
        there.stderr
    );
    let seqs = |out: &str| serde_json::from_str::<Value>(out).unwrap()["seqs"].clone();
    assert_eq!(seqs(&here.stdout), seqs(&there.stdout));
    let (here, there) = (local(&write), remote(&admin, &write));
    assert_eq!(here.code, 1, "{}", here.stderr);
    assert_eq!((here.code, &here.stderr), (there.code, &there.stderr));
    let batch = l.dir.path().join("batch.jsonl");
    std::fs::write(
        &batch,
        "{\"command\":\"register_teacher\",\"staff_no\":\"W2\",\"name\":\"教师\",\"home\":\"佳佳\",\"on\":\"2024-09-01\"}\n\n{\"command\":\"register_teacher\",\"staff_no\":\"W3\",\"name\":\"教师\",\"home\":\"无此园\",\"on\":\"2024-09-01\"}\n",
    )
    .unwrap();
    let submit = ["submit", batch.to_str().unwrap()];
    let (here, there) = (local(&submit), remote(&admin, &submit));
    assert_eq!(here.code, 1, "{}", here.stderr);
    assert_eq!((here.code, &here.stderr), (there.code, &there.stderr));
    // rights and tokens: an auditor's write is refused (1), a wrong token is a usage error (2)
    let there = remote(&auditor, &write.map(|a| if a == "W1" { "W9" } else { a }));
    assert_eq!(there.code, 1, "{}", there.stderr);
    assert!(there.stderr.contains("auditor"), "{}", there.stderr);
    let there = remote("edl_wrong", &["groups"]);
    assert_eq!(there.code, 2, "{}", there.stderr);
    // a write sent again with the key of the first is recorded once, answered alike
    let keyed = ["--idempotency-key", "cli-key-1"]
        .iter()
        .chain(write.iter())
        .map(|a| if *a == "W1" { "W7" } else { a })
        .collect::<Vec<_>>();
    let (first, again) = (remote(&admin, &keyed), remote(&admin, &keyed));
    assert_eq!(
        (first.code, again.code),
        (0, 0),
        "{} / {}",
        first.stderr,
        again.stderr
    );
    assert_eq!(
        first.stdout, again.stdout,
        "the first answer, not a second record"
    );
    // --actor through a server must be the token's own principal, or nothing is recorded
    let other_actor = ["--actor", "张三"]
        .iter()
        .chain(write.iter())
        .map(|a| if *a == "W1" { "W8" } else { a })
        .collect::<Vec<_>>();
    let there = remote(&admin, &other_actor);
    assert_eq!(there.code, 1, "{}", there.stderr);
    assert!(there.stderr.contains("meta.actor"), "{}", there.stderr);
    // what needs the directory itself says so
    let there = remote(&admin, &["verify"]);
    assert_eq!(there.code, 2, "{}", there.stderr);
    assert!(there.stderr.contains("follow"), "{}", there.stderr);
    // access through the server: a token that works
    let there = remote(
        &admin,
        &[
            "access", "grant", "--name", "远程", "--role", "auditor", "--format", "json",
        ],
    );
    assert_eq!(there.code, 0, "{}", there.stderr);
    let token = serde_json::from_str::<Value>(&there.stdout).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(remote(&token, &["groups", "--format", "json"]).code, 0);
    // the export through the server is the ledger's, to standard output or a file
    let there = remote(&auditor, &["export", "-"]);
    assert_eq!(there.code, 0, "{}", there.stderr);
    let file = l.dir.path().join("remote-export.jsonl");
    // a part a killed export left behind blocks nothing
    std::fs::write(l.dir.path().join("remote-export.jsonl.1.part"), "stale").unwrap();
    let to_file = remote(&auditor, &["export", file.to_str().unwrap()]);
    assert_eq!(to_file.code, 0, "{}", to_file.stderr);
    assert_eq!(
        parts(l.dir.path()),
        vec!["remote-export.jsonl.1.part".to_owned()]
    );
    server.stop();
    assert_eq!(there.stdout, l.ok(&["export", "-"]));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), there.stdout);
}

#[test]
fn over_the_limits_is_413_and_nothing_is_recorded() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let server = Server::start_with(&l.db(), l.dir.path(), &["--max-body", "4096"], "http");
    let (_, before) = server.request("GET", "/v1/head", Some(&clerk), "");
    let line = r#"{"command":"register_teacher","staff_no":"B0","name":"教师","home":"佳佳","on":"2024-09-01"}"#;
    let big = format!("{line}\n").repeat(60);
    assert!(big.len() > 4096);
    let (status, body) = server.request("POST", "/v1/commands", Some(&clerk), &big);
    assert_eq!(status, 413, "over --max-body: {body}");
    server.stop();
    // 10,001 commands, inside the body limit: over the batch limit
    let server = Server::start(&l.db(), l.dir.path());
    let many: String = (0..10_001)
        .map(|i| format!("{}\n", line.replace("B0", &format!("B{i}"))))
        .collect();
    let (status, body) = server.request("POST", "/v1/commands", Some(&clerk), &many);
    assert_eq!(status, 413, "over 10,000 commands: {body}");
    assert!(body.contains("10000"), "{body}");
    let (_, after) = server.request("GET", "/v1/head", Some(&clerk), "");
    assert_eq!(before, after, "nothing recorded");
    server.stop();
}

#[test]
fn a_full_write_queue_is_503_with_retry_after_and_every_other_batch_is_answered() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    // one request may wait while the writer decides a batch of 10,000
    let server = Server::start_with(&l.db(), l.dir.path(), &["--queue", "1"], "http");
    let big: String = (0..10_000)
        .map(|i| {
            format!(
                "{{\"command\":\"register_teacher\",\"staff_no\":\"Q{i}\",\"name\":\"教师\",\"home\":\"佳佳\",\"on\":\"2024-09-01\"}}\n"
            )
        })
        .collect();
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            let (s, h, _) = server.request_with("POST", "/v1/commands", Some(&clerk), &[], &big);
            (s, h)
        });
        std::thread::sleep(std::time::Duration::from_millis(150));
        let rest: Vec<_> = (0..8)
            .map(|i| {
                let (server, clerk) = (&server, &clerk);
                scope.spawn(move || {
                    let cmd = format!(
                        r#"{{"command":"register_teacher","staff_no":"R{i}","name":"教师","home":"佳佳","on":"2024-09-01"}}"#
                    );
                    let (s, h, _) = server.request_with("POST", "/v1/commands", Some(clerk), &[], &cmd);
                    (s, h)
                })
            })
            .collect();
        std::iter::once(first)
            .chain(rest)
            .map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(answers[0].0, 200, "the big batch");
    let full: Vec<&(u16, String)> = answers.iter().filter(|(s, _)| *s == 503).collect();
    assert!(!full.is_empty(), "a full queue answers 503: {answers:?}");
    assert!(
        full.iter()
            .all(|(_, head)| head.to_ascii_lowercase().contains("retry-after: 1")),
        "{full:?}"
    );
    assert!(
        answers.iter().all(|(s, _)| *s == 200 || *s == 503),
        "{answers:?}"
    );
    server.stop();
}

#[test]
fn after_a_failed_fsync_the_server_records_nothing_more_says_why_and_still_reads() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    // the power-loss harness's shim: the 3rd fsync of the data file and every later one fail
    let shim = l.dir.path().join("shim.so");
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&shim)
        .arg(common::root().join("crates/store/tests/powerloss/shim.c"))
        .args(["-ldl", "-lpthread"])
        .status()
        .expect("a C compiler (cc) for the fsync shim");
    assert!(status.success());
    let mut child = Command::new(BIN)
        .current_dir(l.dir.path())
        .arg("--db")
        .arg(l.db())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("EDULEDGER_CLOCK_START_US", CLOCK)
        .env("EDULEDGER_SLED_FLUSH_EVERY_MS", "off")
        .env("LD_PRELOAD", &shim)
        .env("SHIM_ROOT", l.db())
        .env("SHIM_LOG", l.dir.path().join("shim.log"))
        .env("SHIM_FAIL_FSYNC", "/db:3")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let server = Server {
        child,
        addr: line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap()
            .to_owned(),
    };
    let teacher = |no: &str| {
        format!(
            r#"{{"command":"register_teacher","staff_no":"{no}","name":"教师","home":"佳佳","on":"2024-09-01"}}"#
        )
    };
    let mut statuses = vec![];
    for i in 0..4 {
        let (s, h, b) = server.request_with(
            "POST",
            "/v1/commands",
            Some(&clerk),
            &[],
            &teacher(&format!("F{i}")),
        );
        statuses.push((s, h, b));
    }
    let codes: Vec<u16> = statuses.iter().map(|(s, _, _)| *s).collect();
    // (how many fsyncs a write takes is sled's business: some writes succeed, then none)
    let ok = codes.iter().take_while(|c| **c == 200).count();
    assert!(ok >= 1 && ok < codes.len(), "{codes:?}");
    assert!(codes[ok..].iter().all(|c| *c == 503), "{codes:?}");
    // it says why, and does not tell the client to retry shortly
    assert!(statuses[ok].2.contains("failed"), "{}", statuses[ok].2);
    for (_, head, _) in &statuses[ok..] {
        assert!(!head.to_ascii_lowercase().contains("retry-after"), "{head}");
    }
    // reads go on, from what was durable
    let (status, _) = server.request(
        "GET",
        &format!("/v1/teachers/F{}", ok - 1),
        Some(&clerk),
        "",
    );
    assert_eq!(status, 200);
    let (status, _) = server.request("GET", &format!("/v1/teachers/F{ok}"), Some(&clerk), "");
    assert_ne!(
        status, 200,
        "the batch whose fsync failed was never acknowledged"
    );
    server.kill();
}

#[test]
fn sigterm_cuts_what_lingers_and_records_nothing_that_arrives_after_it() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let server = Server::start(&l.db(), l.dir.path());
    let (_, before) = server.request("GET", "/v1/head", Some(&clerk), "");
    // a client that sends half its headers and waits
    let mut half = TcpStream::connect(&server.addr).unwrap();
    half.write_all(b"POST /v1/commands HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // a feed subscriber that never reads
    let mut feed = TcpStream::connect(&server.addr).unwrap();
    write!(
        feed,
        "GET /v1/events?from=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {clerk}\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let signalled = std::time::Instant::now();
    let mut server = server;
    terminate(&server.child);
    // the signal is taken once the server stops accepting connections
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while TcpStream::connect(&server.addr).is_ok() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // the rest of the request, after the signal
    let cmd = r#"{"command":"register_teacher","staff_no":"Z1","name":"教师","home":"佳佳","on":"2024-09-01"}"#;
    let rest = format!(
        "Authorization: Bearer {clerk}\r\nContent-Length: {}\r\n\r\n{cmd}",
        cmd.len()
    );
    let _ = half.write_all(rest.as_bytes());
    let mut answer = String::new();
    let _ = half.read_to_string(&mut answer);
    assert!(
        !answer.starts_with("HTTP/1.1 200"),
        "a batch arriving after the signal is not recorded: {answer}"
    );
    let status = server.child.wait().unwrap();
    let took = signalled.elapsed();
    assert!(status.success(), "{status}");
    assert!(
        took < std::time::Duration::from_secs(14),
        "the server lingered {took:?} after SIGTERM"
    );
    drop(feed);
    let after = l.ok(&[
        "log", "--format", "json", "--from", "1", "--limit", "100000",
    ]);
    let v: Value = serde_json::from_str(&after).unwrap();
    let head: Value = serde_json::from_str(&before).unwrap();
    assert_eq!(
        v["events"].as_array().unwrap().len() as u64,
        head["seq"].as_u64().unwrap(),
        "nothing recorded after the signal"
    );
}

#[test]
fn hostile_inputs_get_a_reason_and_change_nothing() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let server = Server::start(&l.db(), l.dir.path());
    let (_, before) = server.request("GET", "/v1/head", Some(&clerk), "");
    // a sequence past every end, a limit past the page
    let (status, body) =
        server.request("GET", "/v1/log?from=18446744073709551615", Some(&clerk), "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["events"],
        serde_json::json!([])
    );
    let (status, body) = server.request("GET", "/v1/log?limit=10001", Some(&clerk), "");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("10000"), "{body}");
    // a JSON array longer than a batch: refused without being read whole (what follows its
    // 10,001st element is not even JSON, and is never looked at)
    let array = format!("[{},!!! not json", vec!["{}"; 10_001].join(","));
    let (status, body) = server.request("POST", "/v1/commands", Some(&clerk), &array);
    assert_eq!(status, 413, "{body}");
    // a made-up method and a request id full of control characters
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(b"BREW /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let _ = s.read_to_end(&mut Vec::new());
    let (_, head, _) = server.request_with(
        "GET",
        "/healthz",
        None,
        &[("X-Request-Id", "forged\u{7f}level=error")],
        "",
    );
    assert!(
        !head.contains("forged"),
        "a request id that is not plain is replaced: {head}"
    );
    let (_, _, metrics) = server.request_with("GET", "/metrics", Some(&clerk), &[], "");
    assert!(!metrics.contains("BREW"), "no label from a made-up method");
    assert!(metrics.contains("method=\"other\""), "{metrics}");
    let (_, after) = server.request("GET", "/v1/head", Some(&clerk), "");
    assert_eq!(before, after);
    server.stop();
}

#[test]
fn a_silent_connection_is_closed_and_a_quiet_live_feed_is_not() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let server = Server::start_with(&l.db(), l.dir.path(), &["--idle-seconds", "1"], "http");
    let mut half = TcpStream::connect(&server.addr).unwrap();
    half.write_all(b"POST /v1/commands HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    half.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let t = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = half.read_to_end(&mut rest);
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "closed after a second of silence, not left open ({:?})",
        t.elapsed()
    );
    assert!(!String::from_utf8_lossy(&rest).contains("200"), "{rest:?}");
    // a feed with nothing new for a while is kept open by its keep-alive comments
    let remote =
        eduledger_client::Remote::new(&format!("http://{}", server.addr), &clerk, None).unwrap();
    let (_, h) = server.request("GET", "/v1/head", Some(&clerk), "");
    let next = serde_json::from_str::<Value>(&h).unwrap()["seq"]
        .as_u64()
        .unwrap()
        + 1;
    let (status, _, mut feed) = remote
        .stream(&format!("/v1/events?from={next}"), &[])
        .unwrap();
    assert_eq!(status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let cmd = r#"{"command":"register_teacher","staff_no":"K1","name":"教师","home":"佳佳","on":"2024-09-01"}"#;
    assert_eq!(
        server.request("POST", "/v1/commands", Some(&clerk), cmd).0,
        200
    );
    assert_eq!(feed_events(&mut feed, 1)[0].0, next.to_string());
    server.stop();
}

#[test]
fn a_request_being_served_is_never_cut_as_idle() {
    let l = Ledger::demo();
    let clerk = l.token("clerk", "recorder");
    let server = Server::start_with(&l.db(), l.dir.path(), &["--idle-seconds", "1"], "http");
    // four batches of 10,000: the last waits for the writer well past the idle limit
    let batch = |tag: &str| -> String {
        (0..10_000)
            .map(|i| {
                format!(
                    "{{\"command\":\"register_teacher\",\"staff_no\":\"{tag}{i}\",\"name\":\"教师\",\"home\":\"佳佳\",\"on\":\"2024-09-01\"}}\n"
                )
            })
            .collect()
    };
    let t = std::time::Instant::now();
    let answers: Vec<(u16, std::time::Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = ["A", "B", "C", "D"]
            .into_iter()
            .map(|tag| {
                let (server, clerk, body) = (&server, &clerk, batch(tag));
                scope.spawn(move || {
                    let (status, _) = server.request("POST", "/v1/commands", Some(clerk), &body);
                    (status, t.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|(s, _)| *s == 200), "{answers:?}");
    let longest = answers.iter().map(|(_, d)| *d).max().unwrap();
    eprintln!("the last answer came after {longest:?} (idle limit 1 s)");
    server.stop();
}

#[test]
fn a_connection_idle_after_its_answer_is_closed() {
    let l = Ledger::demo();
    let server = Server::start_with(&l.db(), l.dir.path(), &["--idle-seconds", "1"], "http");
    // a request at once, its answer, then nothing: kept alive, then closed as idle
    let mut s = TcpStream::connect(&server.addr).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let t = std::time::Instant::now();
    let mut all = Vec::new();
    let _ = s.read_to_end(&mut all);
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        t.elapsed() < std::time::Duration::from_secs(5),
        "closed about a second after its answer, not kept for ever ({:?})",
        t.elapsed()
    );
    server.stop();
}

#[test]
fn an_export_cut_short_is_an_error_and_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    // a server that promises 100,000 bytes and sends 10
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { return };
            let _ = s.read(&mut [0u8; 4096]);
            let _ = s.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n{\"seq\":1}\n",
            );
        }
    });
    let file = dir.path().join("export.jsonl");
    for target in [file.to_str().unwrap(), "-"] {
        let r = run_in(
            dir.path(),
            &dir.path().join("l.db"),
            &["--server", &url, "--token", "edl_x", "export", target],
            None,
        );
        assert_eq!(r.code, 3, "{target}: {}", r.stderr);
        assert!(r.stderr.contains("ended"), "{}", r.stderr);
    }
    assert!(!file.exists(), "no export file from a cut stream");
    assert!(parts(dir.path()).is_empty(), "no part left");
}

/// The `.part` files in a directory.
fn parts(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".part"))
        .collect()
}

// ---- the hostile review of v0.2 (issue 19): each test failed before its fix ----

/// A recorder limited to 佳佳学前教育集团, by token.
fn scoped_recorder(l: &Ledger) -> String {
    let out = l.ok(&[
        "access",
        "grant",
        "--name",
        "秘书处",
        "--role",
        "recorder",
        "--group",
        "佳佳学前教育集团",
        "--format",
        "json",
    ]);
    serde_json::from_str::<Value>(&out).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_scoped_recorder_cannot_grant_itself_the_bureaus_exception() {
    let l = Ledger::demo();
    let scoped = scoped_recorder(&l);
    let admin = l.token("局", "admin");
    let server = Server::start(&l.db(), l.dir.path());
    let post = |body: &str| server.request("POST", "/v1/commands", Some(&scoped), body);
    let (status, body) = post(
        r#"{"command":"register_teacher","staff_no":"S1","name":"教师","home":"佳佳","on":"2024-09-01"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let rotation = |end: &str, exception: &str| {
        format!(
            r#"{{"command":"start_rotation","rotation":"RX","staff_no":"S1","host":"赵屯","mode":"demonstration_teaching","start":"2024-09-01","planned_end":"{end}"{exception}}}"#
        )
    };
    let exception =
        r#","exception":{"approved_by":"托幼办","reference":"青教〔2027〕1号","reason":"需要"}"#;
    let (status, body) = post(&rotation("2028-02-29", ""));
    assert_eq!(status, 422, "42 months without an exception: {body}");
    let (status, body) = post(&rotation("2028-02-29", exception));
    assert_eq!(status, 403, "an exception is the bureau's: {body}");
    assert!(body.contains("exception"), "{body}");
    // within the rule the same recorder records it, and may not extend it under an exception
    let (status, body) = post(&rotation("2026-06-30", ""));
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(&format!(
        r#"{{"command":"extend_rotation","rotation":"RX","planned_end":"2032-06-30","on":"2025-09-01"{exception}}}"#
    ));
    assert_eq!(status, 403, "an extension under an exception: {body}");
    // an admin records the exception
    let (status, body) = server.request(
        "POST",
        "/v1/commands",
        Some(&admin),
        &format!(
            r#"{{"command":"extend_rotation","rotation":"RX","planned_end":"2027-06-30","on":"2025-09-01"{exception}}}"#
        ),
    );
    assert_eq!(status, 200, "{body}");
    server.stop();
}

#[test]
fn a_command_bringing_its_own_token_hash_is_refused_and_that_token_never_works() {
    let l = Ledger::demo();
    let admin = l.token("局", "admin");
    let server = Server::start(&l.db(), l.dir.path());
    let sha_a = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"a"));
    let grant = format!(
        r#"{{"command":"grant_access","principal":"x","role":"admin","token_sha256":"{sha_a}","on":"2030-01-01"}}"#
    );
    let (_, before) = server.request("GET", "/v1/head", Some(&admin), "");
    let (status, body) = server.request("POST", "/v1/commands", Some(&admin), &grant);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("/v1/access/grant"), "{body}");
    // nor hidden in a correction's replacement
    let correct =
        format!(r#"{{"command":"correct_event","target":1,"reason":"r","replacement":{grant}}}"#);
    let (status, body) = server.request("POST", "/v1/commands", Some(&admin), &correct);
    assert_eq!(status, 400, "{body}");
    let (_, after) = server.request("GET", "/v1/head", Some(&admin), "");
    assert_eq!(before, after, "nothing was recorded");
    let (status, _) = server.request("GET", "/v1/head", Some("a"), "");
    assert_eq!(status, 401);
    server.stop();
}

#[test]
fn replays_of_one_idempotency_key_are_counted_as_replays_not_recordings() {
    let l = Ledger::demo();
    let admin = l.token("局", "admin");
    let server = Server::start(&l.db(), l.dir.path());
    let cmd = r#"{"command":"register_teacher","staff_no":"I1","name":"教师","home":"佳佳","on":"2024-09-01"}"#;
    let key = [("Idempotency-Key", "same-key-20")];
    std::thread::scope(|s| {
        for _ in 0..20 {
            s.spawn(|| {
                let (status, _, body) =
                    server.request_with("POST", "/v1/commands", Some(&admin), &key, cmd);
                assert_eq!(status, 200, "{body}");
            });
        }
    });
    let (_, _, text) = server.request_with("GET", "/metrics", Some(&admin), &[], "");
    let count = |outcome: &str| -> u64 {
        text.lines()
            .find(|l| {
                l.starts_with("eduledger_commands_total")
                    && l.contains(&format!("outcome=\"{outcome}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {outcome} line in\n{text}"))
    };
    assert_eq!(count("recorded"), 1, "{text}");
    assert_eq!(count("replayed"), 19, "{text}");
    server.stop();
}

#[test]
fn every_api_answer_is_not_cached_and_every_api_error_is_json() {
    let l = Ledger::demo();
    let auditor = l.token("审计", "auditor");
    let admin = l.token("局", "admin");
    let server = Server::start_with(&l.db(), l.dir.path(), &["--max-body", "1024"], "http");
    for (path, status) in [
        ("/v1/groups", 200),
        ("/v1/tally/abc", 400),
        ("/v1/groups?nonsense=1", 400),
        ("/v1/groups?on=2024-13-01", 400),
        ("/v1/groups?known_at=garbage", 400),
        ("/v1/nowhere", 404),
    ] {
        let (got, head, body) = server.request_with("GET", path, Some(&auditor), &[], "");
        assert_eq!(got, status, "{path}: {body}");
        assert!(
            head.to_ascii_lowercase()
                .contains("cache-control: no-store"),
            "{path}: {head}"
        );
        if status != 200 {
            let v: Value = serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {body}"));
            assert!(v["error"].is_string(), "{path}: {body}");
        }
    }
    // the parameters are named as the API names them, not as the command line's flags
    let (_, _, body) = server.request_with(
        "GET",
        "/v1/groups?known_at=garbage",
        Some(&auditor),
        &[],
        "",
    );
    assert!(
        body.contains("known_at") && !body.contains("--known-at"),
        "{body}"
    );
    let (_, _, body) =
        server.request_with("GET", "/v1/groups?on=2024-13-01", Some(&auditor), &[], "");
    assert!(body.contains("on:") && !body.contains("--on"), "{body}");
    // a body over the limit
    let (status, _, body) =
        server.request_with("POST", "/v1/commands", Some(&admin), &[], &"x".repeat(5000));
    assert_eq!(status, 413, "{body}");
    assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
    // the grant's answer carries a token: never stored
    let (status, head, body) = server.request_with(
        "POST",
        "/v1/access/grant",
        Some(&admin),
        &[],
        r#"{"name":"新","role":"auditor"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{head}"
    );
    server.stop();
}

#[test]
fn a_cut_that_has_not_passed_is_refused_as_no_reproducible_cut() {
    let l = Ledger::demo();
    let auditor = l.token("审计", "auditor");
    let server = Server::start(&l.db(), l.dir.path());
    for cut in [
        "9999-12-31",
        "9999-12-31T23:59:59",
        "2999-01-01",
        "seq:999999",
    ] {
        let (status, body) = server.request(
            "GET",
            &format!("/v1/groups?known_at={cut}"),
            Some(&auditor),
            "",
        );
        assert_eq!(status, 422, "{cut}: {body}");
    }
    let (status, body) = server.request("GET", "/v1/groups?known_at=seq:5", Some(&auditor), "");
    assert_eq!(status, 200, "{body}");
    server.stop();
}

#[test]
fn csv_cells_a_spreadsheet_would_run_come_back_prefixed_through_a_real_csv_reader() {
    let l = Ledger::demo();
    let admin = l.token("局", "admin");
    let server = Server::start(&l.db(), l.dir.path());
    let cmd = r#"{"command":"register_teacher","staff_no":"F1","name":"=HYPERLINK(\"http://x\")","home":"佳佳","on":"2024-09-01","meta":{"source":"=cmd|' /C calc'!A0"}}"#;
    let (status, body) = server.request("POST", "/v1/commands", Some(&admin), cmd);
    assert_eq!(status, 200, "{body}");
    let (status, csv) =
        server.request("GET", "/v1/history/teacher/F1?format=csv", Some(&admin), "");
    assert_eq!(status, 200, "{csv}");
    let (_, log) = server.request("GET", "/v1/log?format=csv&from=1", Some(&admin), "");
    server.stop();
    for text in [csv, log] {
        // Python's csv module reads what Excel would be handed
        let mut py = Command::new("python3")
            .args([
                "-c",
                "import csv,sys,json; print(json.dumps([c for r in csv.reader(sys.stdin.read().lstrip('\\ufeff').splitlines()) for c in r]))",
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
        let out = py.wait_with_output().unwrap();
        let cells: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
        assert!(!cells.is_empty());
        for c in &cells {
            let runs = c.starts_with(['=', '+', '@', '\t', '\r'])
                || (c.starts_with('-') && c.parse::<f64>().is_err());
            assert!(!runs, "a cell a spreadsheet runs: {c:?}");
        }
        if cells.iter().any(|c| c.contains("calc")) {
            assert!(
                cells.iter().any(|c| c == "'=cmd|' /C calc'!A0"),
                "{cells:?}"
            );
        }
    }
}

/// A TCP connection to `addr` from the loopback address `from` (127.0.0.0/8 is all loopback).
fn connect_from(from: [u8; 4], addr: &str) -> TcpStream {
    connect_with(from, addr, None)
}

/// [`connect_from`], with a receive buffer of `rcvbuf` bytes set before the connection is
/// made (so the kernel cannot take a large answer off the sender's hands).
fn connect_with(from: [u8; 4], addr: &str, rcvbuf: Option<libc::c_int>) -> TcpStream {
    use std::os::fd::FromRawFd;
    let to: std::net::SocketAddrV4 = addr.parse().unwrap();
    let sin = |ip: [u8; 4], port: u16| libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: a fresh socket, bound and connected with well-formed sockaddr_in values; the
    // descriptor is owned by the TcpStream from here on.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        if let Some(size) = rcvbuf {
            assert_eq!(
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUF,
                    &size as *const _ as *const libc::c_void,
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                ),
                0
            );
        }
        let local = sin(from, 0);
        assert_eq!(
            libc::bind(fd, &local as *const _ as *const libc::sockaddr, len),
            0
        );
        let remote = sin(to.ip().octets(), to.port());
        assert_eq!(
            libc::connect(fd, &remote as *const _ as *const libc::sockaddr, len),
            0
        );
        TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn a_slow_body_flood_from_one_address_leaves_others_served_and_is_cut_at_the_read_deadline() {
    let l = Ledger::demo();
    let auditor = l.token("审计", "auditor");
    let server = Server::start_with(
        &l.db(),
        l.dir.path(),
        &[
            "--max-connections",
            "64",
            "--per-address",
            "16",
            "--read-seconds",
            "2",
            "--idle-seconds",
            "3",
        ],
        "http",
    );
    let addr = server.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // 100 connections from 127.0.0.2, each a login (or a write with a token) whose body
    // trickles in a byte every 400 ms: more than all the server's connections
    let flood: Vec<_> = (0..100)
        .map(|i| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut s = connect_from([127, 0, 0, 2], &addr);
                let head = if i % 2 == 0 {
                    "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 8000\r\n\r\n".to_owned()
                } else {
                    "POST /v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nContent-Length: 8000\r\n\r\n".to_owned()
                };
                if s.write_all(head.as_bytes()).is_err() {
                    return;
                }
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    if s.write_all(b"t").is_err() {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(400));
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(500));
    // two more from their own addresses, watched: one whose body trickles (with a token:
    // the body is read before the role is looked at), one whose headers do; each is cut
    // once it is 2 s late
    let started = std::time::Instant::now();
    let mut body = connect_from([127, 0, 0, 3], &addr);
    body.write_all(
        format!("POST /v1/commands HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auditor}\r\nContent-Length: 8000\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let mut head = connect_from([127, 0, 0, 4], &addr);
    head.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut watched = [(body, "t", None), (head, "X-Slow: y\r\n", None)];
    for (s, _, _) in &watched {
        s.set_read_timeout(Some(std::time::Duration::from_millis(150)))
            .unwrap();
    }
    while started.elapsed() < std::time::Duration::from_secs(10) {
        // a second client keeps being answered within a second throughout
        for (path, token) in [("/healthz", None), ("/v1/groups", Some(auditor.as_str()))] {
            let asked = std::time::Instant::now();
            let (status, body) = server.request("GET", path, token, "");
            assert_eq!(status, 200, "{path}: {body}");
            assert!(
                asked.elapsed() < std::time::Duration::from_secs(1),
                "{path} took {:?} during the flood",
                asked.elapsed()
            );
        }
        for (s, piece, closed_after) in watched.iter_mut().filter(|w| w.2.is_none()) {
            let _ = s.write_all(piece.as_bytes());
            let mut buf = [0u8; 512];
            match s.read(&mut buf) {
                Ok(n) if n > 0 => {
                    let text = String::from_utf8_lossy(&buf[..n]);
                    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
                    if *piece == "t" {
                        // the headers every API answer carries, on the 408 as well
                        let lower = text.to_ascii_lowercase();
                        assert!(lower.contains("cache-control: no-store"), "{text}");
                        assert!(lower.contains("x-request-id:"), "{text}");
                    }
                    *closed_after = Some(started.elapsed());
                }
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock
                        || e.kind() == std::io::ErrorKind::TimedOut => {}
                _ => *closed_after = Some(started.elapsed()),
            }
        }
        if watched.iter().all(|w| w.2.is_some())
            && started.elapsed() > std::time::Duration::from_secs(4)
        {
            break;
        }
    }
    for (_, piece, closed_after) in &watched {
        let closed_after =
            closed_after.unwrap_or_else(|| panic!("trickling {piece:?} was still open after 10 s"));
        assert!(
            closed_after < std::time::Duration::from_secs(5),
            "trickling {piece:?} cut after {closed_after:?}, with a read deadline of 2 s"
        );
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for t in flood {
        let _ = t.join();
    }
    server.stop();
}

#[test]
fn a_follower_refuses_a_chained_event_its_own_verify_would_refuse_and_copies_nothing_of_it() {
    use eduledger_domain::Event;
    use eduledger_domain::event::KindergartenRenamed;
    use eduledger_domain::values::{Date, KgId, KgName};
    let l = Ledger::demo();
    let export = l.ok(&["export", "-"]);
    // (the feed's events: the export without its end line)
    let genuine: Vec<Value> = export
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|v| v.get("end").is_none())
        .collect();
    let taken = {
        let ledger = eduledger_ledger::Ledger::open(
            l.db(),
            std::sync::Arc::new(eduledger_store::SystemClock),
        )
        .unwrap();
        ledger.state().kindergartens()[&KgId(2)]
            .current_name()
            .to_string()
    };
    let rename = |id: u32, name: &str| {
        Event::KindergartenRenamed(KindergartenRenamed {
            kindergarten: KgId(id),
            new_name: KgName::new(name).unwrap(),
            provisional: false,
            on: Date::ymd(2025, 3, 1).unwrap(),
        })
    };
    // the genuine feed with one more event, chained and hashed correctly
    let forged_feed = |make: &dyn Fn(&eduledger_store::Envelope) -> eduledger_store::Envelope| {
        let mut lines = genuine.clone();
        lines.push(genuine.last().unwrap().clone());
        let at = lines.len() - 1;
        common::reseal(&mut lines, at, |env| *env = make(env));
        lines
            .iter()
            .map(|v| {
                format!(
                    "id: {}\nevent: {}\ndata: {v}\n\n",
                    v["seq"],
                    v["event_type"].as_str().unwrap()
                )
            })
            .collect::<String>()
    };
    let versions = |stream: &str| genuine.iter().filter(|v| v["stream"] == stream).count() as u64;
    let as_event = |last: &eduledger_store::Envelope, event: Event| {
        let stream = event.primary().unwrap().stream();
        eduledger_store::Envelope {
            seq: last.seq + 1,
            event_id: uuid::Uuid::now_v7(),
            stream_version: versions(&stream) + 1,
            stream,
            recorded_at_us: last.recorded_at_us + 1000,
            event_type: event.event_type().to_owned(),
            schema_version: event.schema_version(),
            payload: event.encode(),
            ..last.clone()
        }
    };
    let cases: Vec<(&str, String)> = vec![
        (
            "back in time",
            forged_feed(&|last| eduledger_store::Envelope {
                seq: last.seq + 1,
                event_id: uuid::Uuid::now_v7(),
                stream_version: last.stream_version + 1,
                recorded_at_us: 1_000_000,
                ..last.clone()
            }),
        ),
        (
            "a rename of no kindergarten",
            forged_feed(&|last| as_event(last, rename(9999, "不存在园"))),
        ),
        (
            "a rename to a name taken",
            forged_feed(&|last| as_event(last, rename(1, &taken))),
        ),
    ];
    let head = genuine.len();
    for (what, feed) in cases {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        fake_feed(listener, feed);
        let copy = l
            .dir
            .path()
            .join(format!("copy-{}.db", what.replace(' ', "-")));
        let r = run_in(
            l.dir.path(),
            &copy,
            &["follow", &url, "--token", "t", "--once"],
            None,
        );
        assert_eq!(r.code, 3, "{what}: {}", r.stderr);
        assert!(r.stderr.contains("refused"), "{what}: {}", r.stderr);
        // the genuine events may be in (they came in batches before it); the forged one not,
        // and what is there verifies
        assert!(
            r.stderr.contains("goes backwards") || r.stderr.contains("could not have recorded"),
            "{what}: {}",
            r.stderr
        );
        let d = run_in(l.dir.path(), &copy, &["verify", "--format", "json"], None);
        if d.code == 0 {
            let v: Value = serde_json::from_str(&d.stdout).unwrap();
            assert!(v["events"].as_u64().unwrap() <= head as u64, "{what}: {v}");
        } else {
            assert!(
                d.stderr.contains("there is no ledger"),
                "{what}: {}",
                d.stderr
            );
        }
    }
}

/// The server's peak resident memory so far, in MiB (Linux: VmHWM).
fn peak_rss_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb / 1024
}

#[test]
fn forty_eight_full_log_pages_at_once_stay_within_the_servers_memory_bound() {
    let l = Ledger::demo();
    // ~30,000 events: teachers registered in batches
    let mut batch = String::new();
    for i in 0..30_000 {
        batch.push_str(&format!(
            r#"{{"command":"register_teacher","staff_no":"M{i:05}","name":"教师{i}","home":"佳佳","on":"2024-09-01","meta":{{"source":"青教〔2023〕61号 附件","reason":"批量登记"}}}}"#
        ));
        batch.push('\n');
    }
    let r = run_in(l.dir.path(), &l.db(), &["submit", "-"], Some(&batch));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let auditor = l.token("审计", "auditor");
    let other = l.token("秘书处", "recorder");
    let server = Server::start(&l.db(), l.dir.path());
    let pid = server.child.id();
    let before = peak_rss_mib(pid);
    let readers: Vec<_> = (0..48)
        .map(|i| {
            let (addr, token) = (server.addr.clone(), auditor.clone());
            std::thread::spawn(move || {
                let from = 1 + (i % 3) * 10_000;
                let mut s = TcpStream::connect(&addr).unwrap();
                write!(
                    s,
                    "GET /v1/log?from={from}&limit=10000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
                )
                .unwrap();
                let mut answer = Vec::new();
                s.read_to_end(&mut answer).unwrap();
                let text = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
                assert!(text.starts_with("HTTP/1.1 200"), "{text}");
                answer.len()
            })
        })
        .collect();
    let sizes: Vec<usize> = readers.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(sizes.iter().all(|n| *n > 1_000_000), "{sizes:?}");
    let peak = peak_rss_mib(pid);
    // every answer is a few MiB; four are built at a time ([READS]), so the peak stays far
    // below 48 answers held at once (which was 2.8 GB)
    assert!(
        peak < before + 700,
        "the server's peak went from {before} MiB to {peak} MiB"
    );
    eprintln!("peak RSS {before} MiB before, {peak} MiB after 48 full log pages at once");
    // readers that never take their answers: one principal holds at most its share of
    // answers (two), so the memory stays bounded and another principal is answered at once
    let slow: Vec<TcpStream> = (0..60)
        .map(|i| {
            let mut s = connect_with([127, 0, 0, 5], &server.addr, Some(4096));
            write!(
                s,
                "GET /v1/log?from={}&limit=10000 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {auditor}\r\n\r\n",
                1 + (i % 3) * 10_000
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_secs(5));
    let asked = std::time::Instant::now();
    let (status, _) = server.request("GET", "/v1/groups", Some(&other), "");
    assert_eq!(status, 200);
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(2),
        "another principal waited {:?} behind one principal's unread answers",
        asked.elapsed()
    );
    let held = peak_rss_mib(pid);
    let now = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:").map(str::to_owned))
        .unwrap_or_default();
    eprintln!("peak RSS {held} MiB, now {now}, with sixty unread log pages of one token");
    assert!(
        held < before + 700,
        "unread answers took the server from {before} MiB to {held} MiB"
    );
    drop(slow);
    // a trail of 30,000 events is more than one answer carries: refused, saying what to do;
    // the command line, which holds no one else's memory, reads it whole
    let (status, body) = server.request("GET", "/v1/history/kindergarten/佳佳", Some(&auditor), "");
    assert_eq!(status, 400, "{}", &body[..body.len().min(300)]);
    assert!(body.contains("more than"), "{body}");
    server.stop();
    let whole = l.ok(&["history", "kindergarten", "佳佳", "--format", "json"]);
    assert!(whole.len() > 8 << 20, "{}", whole.len());
}
