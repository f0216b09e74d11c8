//! The command line as a client of `eduledger serve` (`--server URL --token T`, or
//! EDULEDGER_SERVER / EDULEDGER_TOKEN / EDULEDGER_CA): reads ask the server for the same
//! rendering the command line prints (the server renders with the same code), writes post
//! the same JSON commands, and the server's answers map to the same exit codes — 1 refused,
//! 2 usage (a token refused included), 3 the ledger cannot answer.

use std::io::Write as _;
use std::path::PathBuf;

use eduledger_client::{ClientError, Remote};
use serde_json::Value;

use crate::{Failure, ReadOpts, default_format};

/// A server to work through.
pub struct Server {
    remote: Remote,
    url: String,
    /// `--idempotency-key`, if given.
    key: Option<String>,
}

/// Percent-encode one path segment or query value (UTF-8, unreserved kept).
pub fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn transport(e: ClientError) -> Failure {
    match e {
        ClientError::Usage(m) => Failure::Usage(m),
        ClientError::Transport(m) | ClientError::Interrupted(m) => Failure::Ledger(m),
    }
}

/// The server's answer as the command line's failure: its sentence, and the exit code the
/// same failure has locally. A 400 is a usage error for a read and a refused value for a
/// write (as a malformed command is locally).
fn failure(status: u16, body: &[u8], write: bool) -> Failure {
    let text = String::from_utf8_lossy(body);
    let answer = serde_json::from_str::<Value>(&text).ok();
    let mut message = answer
        .as_ref()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.trim().to_owned());
    // a batch's refusal reads as `submit` words it: "line N (command): why; nothing was
    // recorded" (the server says "command: why" and the line apart)
    if let Some(line) = answer.as_ref().and_then(|v| v["line"].as_u64())
        && let Some((command, why)) = message.split_once(": ")
        && eduledger_domain::Command::NAMES.contains(&command)
    {
        message = format!("line {line} ({command}): {why}; nothing was recorded");
    }
    match status {
        400 if write => Failure::Refused(message),
        400 | 404 => Failure::Usage(message),
        401 => Failure::Usage(format!("the server refused the token: {message}")),
        403 | 409 | 413 | 422 => Failure::Refused(message),
        _ => Failure::Ledger(format!("the server answered {status}: {message}")),
    }
}

impl Server {
    /// The server the globals name, if any.
    pub fn from(
        url: Option<&str>,
        token: Option<&str>,
        ca: Option<&std::path::Path>,
        key: Option<&str>,
    ) -> Result<Option<Server>, Failure> {
        let url = url
            .map(str::to_owned)
            .or_else(|| std::env::var("EDULEDGER_SERVER").ok())
            .filter(|u| !u.trim().is_empty());
        let Some(url) = url else { return Ok(None) };
        let token = token
            .map(str::to_owned)
            .or_else(|| std::env::var("EDULEDGER_TOKEN").ok())
            .unwrap_or_default();
        let ca = ca
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("EDULEDGER_CA").map(PathBuf::from));
        let remote = Remote::new(&url, &token, ca.as_deref()).map_err(transport)?;
        Ok(Some(Server {
            remote,
            url,
            key: key.map(str::to_owned),
        }))
    }

    /// The URL it was given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A read at `path` (which may carry its own query), printed as the command line prints
    /// it locally.
    pub fn read(&self, path: &str, read: &ReadOpts) -> Result<(), Failure> {
        // a malformed date or cut is refused here, as the command line refuses it locally
        if let Some(on) = &read.on {
            eduledger_query::parse_date("--on", on)?;
        }
        if let Some(k) = &read.known_at {
            eduledger_query::parse_known_at("--known-at", k)?;
        }
        let format = default_format(read.format);
        let mut query = vec![format!(
            "format={}",
            eduledger_query::render::Format::from(format).code()
        )];
        if let Some(on) = &read.on {
            query.push(format!("on={}", encode(on)));
        }
        if let Some(k) = &read.known_at {
            query.push(format!("known_at={}", encode(k)));
        }
        let sep = if path.contains('?') { '&' } else { '?' };
        let path = format!("{path}{sep}{}", query.join("&"));
        let r = self
            .remote
            .request("GET", &path, &[], b"")
            .map_err(transport)?;
        if r.status != 200 {
            return Err(failure(r.status, &r.body, false));
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&r.body)
            .and_then(|_| out.flush())
            .map_err(|e| Failure::Refused(format!("writing the answer: {e}")))
    }

    /// A GET answered with JSON.
    pub fn get_json(&self, path: &str) -> Result<Value, Failure> {
        let r = self
            .remote
            .request("GET", path, &[], b"")
            .map_err(transport)?;
        if r.status != 200 {
            return Err(failure(r.status, &r.body, false));
        }
        serde_json::from_slice(&r.body)
            .map_err(|e| Failure::Ledger(format!("{}{path}: not JSON ({e})", self.url)))
    }

    /// POST a JSON body (or JSON Lines) to `path`; the answer's JSON. Sent with an
    /// `Idempotency-Key` of its own and sent again (up to three times) when the connection
    /// fails before an answer: the server records it once whatever happened to the others.
    pub fn post(&self, path: &str, body: &[u8]) -> Result<Value, Failure> {
        let key = match &self.key {
            Some(k) => k.clone(),
            None => {
                let mut key = [0u8; 16];
                getrandom::fill(&mut key).map_err(|e| {
                    Failure::Refused(format!("no random bytes for an idempotency key: {e}"))
                })?;
                hex::encode(key)
            }
        };
        let headers = [
            ("Content-Type", "application/x-ndjson"),
            ("Idempotency-Key", key.as_str()),
        ];
        let mut attempt = 0;
        let r = loop {
            attempt += 1;
            match self.remote.request("POST", path, &headers, body) {
                Ok(r) => break r,
                Err(ClientError::Interrupted(why)) if attempt < 3 => {
                    eprintln!("{why}; sending again");
                    std::thread::sleep(std::time::Duration::from_millis(500 * attempt));
                }
                Err(ClientError::Interrupted(why)) => {
                    return Err(Failure::Ledger(format!(
                        "{why}; the batch may have been recorded: send it again with --idempotency-key {key} to find out, recording it at most once"
                    )));
                }
                Err(e) => return Err(transport(e)),
            }
        };
        if r.status != 200 {
            return Err(failure(r.status, &r.body, true));
        }
        serde_json::from_slice(&r.body)
            .map_err(|e| Failure::Ledger(format!("{}{path}: not JSON ({e})", self.url)))
    }

    /// Record a batch (JSON Lines) and print what was recorded as a local write does.
    pub fn record(&self, lines: &str) -> Result<(), Failure> {
        let answer = self.post("/v1/commands", lines.as_bytes())?;
        let seqs: Vec<u64> = answer["seqs"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default();
        let head = format!(
            "{}:{}",
            answer["head"]["seq"],
            answer["head"]["hash"].as_str().unwrap_or("")
        );
        crate::recorded_anyway(crate::say_written(&seqs, &head, answer["head"].clone()))
    }

    /// `GET /v1/export` into `out`.
    /// (streamed: an export is not held in memory, whatever its size; a stream that breaks
    /// off is an error, never a shorter export)
    pub fn export(&self, out: &mut dyn std::io::Write) -> Result<(), Failure> {
        let (status, reason) = self.remote.copy("/v1/export", out).map_err(transport)?;
        if status != 200 {
            return Err(failure(status, &reason, false));
        }
        out.flush()
            .map_err(|e| Failure::Refused(format!("writing the export: {e}")))
    }
}
