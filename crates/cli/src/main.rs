//! `eduledger`: the command line for bureau clerks, auditors and scripts (docs/CLI.md).
//!
//! Exit codes: 0 ok; 1 refused (a broken rule or a bad value: stderr names the field and
//! why); 2 usage; 3 the ledger cannot be opened or failed verification.

/// `println!` that fails instead of panicking when standard output is gone (a pipe closed
/// early: `eduledger demo | head`): the error becomes the command's failure.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::Failure::from)?
    }};
}

mod demo;
mod follow;
mod output;
mod reads;
mod remote;
mod target;
mod write;

use std::io::{BufRead, IsTerminal, Read, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use eduledger_domain::{Meta, Submission, parse_submission};
use eduledger_ledger::{Ledger, LedgerError};
use eduledger_store::{StoreError, SystemClock};

use crate::output::Format;

/// The 2023 roster, shipped with the binary.
pub const ROSTER_2023: &str = include_str!("../data/roster-2023.tsv");
/// The sample history the demo records.
pub const SAMPLE_HISTORY: &str = include_str!("../data/sample-history.jsonl");
/// Example points rules (the plan fixes no numbers).
pub const RULES_2024: &str = include_str!("../data/rules-2024.toml");

const WRITE_HELP: &str = "Recording, for people: eduledger <noun> <verb> --flags (see `eduledger <noun> <verb> --help`)
  group        found | join | leave | transfer | change-lead
  kindergarten register | rename | regrade | designate-high-quality | revoke-high-quality |
               designate-cooperative-principal
  principal    appoint | end
  secretariat  appoint | dismiss
  document     adopt
  expert       assign
  teacher      register | change-home | award-title | leave-service
  rotation     start | extend | end | cancel
  training     hold | attend | apply-recognition | decide-recognition
  activity     hold
  project      propose | approve | complete | cancel

Exit codes: 0 ok, 1 refused (rule or bad value), 2 usage, 3 ledger cannot be opened or failed verification.";

#[derive(Parser)]
#[command(name = "eduledger", version, about = "Event-sourced ledger of Qingpu's preschool education groups (青教〔2023〕61号)", after_help = WRITE_HELP)]
struct Cli {
    /// Ledger directory (default: $EDULEDGER_DB, else ./eduledger.db).
    #[arg(long, global = true)]
    db: Option<PathBuf>,
    /// More logging on stderr (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Who records (default: the login name).
    #[arg(long, global = true)]
    actor: Option<String>,
    /// The document a record rests on, e.g. 青教〔2023〕61号.
    #[arg(long, global = true)]
    source: Option<String>,
    /// Why it is recorded.
    #[arg(long, global = true)]
    reason: Option<String>,
    /// Work through `eduledger serve` at this URL instead of a ledger directory (default:
    /// $EDULEDGER_SERVER): the same output and exit codes.
    #[arg(long, global = true)]
    server: Option<String>,
    /// The bearer token for --server or `follow` (default: $EDULEDGER_TOKEN).
    #[arg(long, global = true)]
    token: Option<String>,
    /// The PEM certificate to trust for an https server (default: $EDULEDGER_CA).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// Through --server: the Idempotency-Key to send a write with (default: a new one). A
    /// write whose answer was lost names its key; sending it again with that key records it
    /// at most once.
    #[arg(long, global = true)]
    idempotency_key: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

/// Options every read takes.
#[derive(Args, Clone)]
pub struct ReadOpts {
    /// Valid time: the day to look at (YYYY-MM-DD; default today).
    #[arg(long)]
    pub on: Option<String>,
    /// Transaction time: only what had been recorded by then (RFC 3339 time, a date meaning
    /// the end of that day in Shanghai, or seq:N).
    #[arg(long = "known-at")]
    pub known_at: Option<String>,
    /// Output format (default: table on a terminal, json otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
}

#[derive(Subcommand)]
enum Cmd {
    /// The 2023 roster table.
    Roster {
        #[command(subcommand)]
        command: RosterCmd,
    },
    /// Serve the ledger over HTTP to many recorders and auditors at once (docs/SERVER.md).
    /// Prints the address it listens on, then runs until Ctrl-C or SIGTERM, finishing what
    /// is in flight.
    Serve {
        /// Address to listen on (port 0 picks a free one); beyond loopback only with TLS.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: String,
        /// PEM certificate chain (leaf first): serve HTTPS (with --tls-key).
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// PEM private key of the certificate (with --tls-cert).
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Largest request body, in bytes.
        #[arg(long, default_value_t = 4 << 20, value_parser = clap::value_parser!(u64).range(1024..=(1 << 30)))]
        max_body: u64,
        /// Requests that may wait for the writer before more are answered 503 with
        /// Retry-After.
        #[arg(long, default_value_t = eduledger_server::QUEUE as u64, value_parser = clap::value_parser!(u64).range(1..=65536))]
        queue: u64,
        /// Close a connection after this many seconds with no request in progress and nothing
        /// written to it (bytes read do not count; a live feed is written to more often).
        #[arg(long, default_value_t = eduledger_server::idle::IDLE.as_secs(), value_parser = clap::value_parser!(u64).range(1..=3600))]
        idle_seconds: u64,
        /// A request's body must arrive whole within this many seconds of its start (then
        /// 408, and the connection is closed).
        #[arg(long, default_value_t = eduledger_server::READ_SECONDS, value_parser = clap::value_parser!(u64).range(1..=3600))]
        read_seconds: u64,
        /// Connections served at once; more wait in the kernel's backlog.
        #[arg(long, default_value_t = eduledger_server::MAX_CONNECTIONS as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        max_connections: u64,
        /// Connections (and TLS handshakes under way) one peer address — an IPv6 /64 — may
        /// hold at once; more are closed at once.
        #[arg(long, default_value_t = eduledger_server::share::PER_ADDRESS as u64, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        per_address: u64,
        /// Log lines for people (text) or for a collector (json), on stderr.
        #[arg(long, value_enum, default_value = "text")]
        log_format: LogFormat,
    },
    /// Keep a verified read-only copy of a server's ledger at --db from its live feed: every
    /// event's bytes, hash and chain link checked before it is copied (docs/SERVER.md).
    /// Runs until Ctrl-C, reconnecting when the server goes away.
    Follow {
        /// The server, e.g. https://ledger.example:8443 (with --token, and --ca for https).
        url: String,
        /// Stop once the copy holds what the server held when asked (a backup).
        #[arg(long)]
        once: bool,
    },
    /// Who may act through the server (`eduledger serve`), as what: recorded like every fact.
    Access {
        #[command(subcommand)]
        command: AccessCmd,
    },
    /// Record commands from a JSON Lines file (or - for stdin), all or nothing.
    Submit {
        /// The file, or - for standard input.
        file: String,
    },
    /// Points rules.
    Rules {
        #[command(subcommand)]
        command: RulesCmd,
    },
    /// Correct an earlier event with a replacement command (a JSON file or -); needs --reason.
    Correct {
        /// Sequence number or event id of the event to correct.
        target: String,
        /// The replacement command as JSON.
        file: String,
    },
    /// Retract an earlier event; needs --reason.
    Retract {
        /// Sequence number or event id.
        target: String,
    },
    /// All groups: lead and member counts by category.
    Groups(ReadOpts),
    /// One group: members, council, secretariat, experts, documents.
    Group {
        /// The group's name.
        name: String,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// One kindergarten: group, category, ownership, high-quality, principal, staff.
    Kindergarten {
        /// Any name the kindergarten has had.
        name: String,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// One teacher: home, host, rotations, trainings, titles, eligibility.
    Teacher {
        /// Staff number.
        staff_no: String,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// The audit trail of one entity, corrections linked.
    History {
        /// group, kindergarten, teacher, rotation, training, activity, project or access.
        #[arg(value_parser = eduledger_query::EntityKind::parse)]
        kind: eduledger_query::EntityKind,
        /// Its name or id.
        id: String,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// The raw log, in order.
    Log {
        /// First sequence.
        #[arg(long, default_value_t = 1)]
        from: u64,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// The year-end points tally (POINTS.md).
    Tally {
        /// The year.
        #[arg(long, value_parser = report_year)]
        year: i32,
        /// One line per fact, with its sequences and event ids.
        #[arg(long)]
        explain: bool,
        /// Preview an unadopted rule file instead of the adopted rules.
        #[arg(long)]
        rules: Option<PathBuf>,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Reports.
    Report {
        #[command(subcommand)]
        command: ReportCmd,
    },
    /// Recompute the hash chain and indexes; print the digest (exit 3 on damage).
    Verify {
        /// Also check a digest noted earlier (SEQ:HASH).
        #[arg(long)]
        digest: Option<String>,
        /// Output format.
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// Export the whole ledger as JSON Lines (FILE or - for stdout).
    Export {
        /// The file, or -. It must not exist (unless --force) and is never inside a ledger
        /// directory.
        file: String,
        /// Replace FILE if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Import an export into a new, empty ledger (all or nothing).
    Import {
        /// The file, or -. It must end with the export's end line, unless --digest is given.
        file: String,
        /// The head the export must reach (SEQ:HASH, as `verify` printed it); it also vouches
        /// for an export written before exports had an end line.
        #[arg(long)]
        digest: Option<String>,
    },
    /// The main job in one command: a fresh ledger with the 2023 roster, a sample history and
    /// example rules; then the groups, the 2024 tally and the digest.
    Demo,
    /// Shell completions (bash, zsh or fish) on standard output, every command included:
    /// `eduledger completions bash > /etc/bash_completion.d/eduledger`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// The manual page (roff) on standard output (`eduledger man | man -l -`), or with
    /// `--dir DIR` one page per command written there (eduledger.1, eduledger-rotation-start.1, …).
    Man {
        /// Write every page into this directory.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
enum RosterCmd {
    /// Import the roster table (default: the shipped 2023 table).
    Import {
        /// A roster TSV file; omit for the shipped roster-2023.tsv.
        file: Option<PathBuf>,
        /// The day it takes effect.
        #[arg(long, default_value = "2023-09-20")]
        on: String,
    },
}

#[derive(Subcommand)]
enum AccessCmd {
    /// Give a principal a role and print its new bearer token, once (only its SHA-256 is
    /// recorded).
    Grant {
        /// The principal's name: the actor of everything it records.
        #[arg(long)]
        name: String,
        /// admin, recorder or auditor.
        #[arg(long)]
        role: String,
        /// For a recorder: a group it may record in (repeat for several; none: every group).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// In force from (default today; never earlier: a token works only from the day it
        /// is recorded).
        #[arg(long)]
        on: Option<String>,
        /// Output format (default: a sentence on a terminal, JSON otherwise).
        #[arg(long, value_enum)]
        format: Option<Format>,
    },
    /// End a principal's access: its token stops working.
    Revoke {
        /// The principal's name.
        #[arg(long)]
        name: String,
        /// From (default today; never earlier).
        #[arg(long)]
        on: Option<String>,
    },
    /// Who holds what on a date.
    List(ReadOpts),
}

#[derive(Subcommand)]
enum RulesCmd {
    /// Adopt a TOML rule set for a year.
    Adopt {
        /// The TOML file.
        file: PathBuf,
        /// The year it governs.
        #[arg(long, value_parser = report_year)]
        year: i32,
        /// Adoption date (default today).
        #[arg(long)]
        on: Option<String>,
    },
}

#[derive(Subcommand)]
enum ReportCmd {
    /// Compliance with the plan for a year.
    Compliance {
        /// The year.
        #[arg(long, value_parser = report_year)]
        year: i32,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// The year-end rewards roster (经费保障).
    Rewards {
        /// The year.
        #[arg(long, value_parser = report_year)]
        year: i32,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Categories per group and their spread (相对均衡分布).
    Balance {
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Special funds (专项经费) per group and use, in fen.
    Funds {
        /// The projects' year.
        #[arg(long, value_parser = report_year)]
        year: i32,
        #[command(flatten)]
        read: ReadOpts,
    },
    /// Every rotation that ran in the year, with its assessment (for promotions).
    Rotations {
        /// The year.
        #[arg(long, value_parser = report_year)]
        year: i32,
        #[command(flatten)]
        read: ReadOpts,
    },
}

/// `--year`: one of the years a report speaks of ([`REPORT_YEARS`](eduledger_domain::values::REPORT_YEARS)).
fn report_year(text: &str) -> Result<i32, String> {
    let years = eduledger_domain::values::REPORT_YEARS;
    match text.parse::<i32>() {
        Ok(y) if years.contains(&y) => Ok(y),
        _ => Err(format!(
            "{text:?} is not a year from {} to {}",
            years.start(),
            years.end()
        )),
    }
}

/// An error with its exit code.
#[derive(Debug)]
pub enum Failure {
    /// Exit 1.
    Refused(String),
    /// Exit 2.
    Usage(String),
    /// Exit 3.
    Ledger(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Ledger(_) => 3,
        }
    }
    fn message(&self) -> &str {
        match self {
            Failure::Refused(m) | Failure::Usage(m) | Failure::Ledger(m) => m,
        }
    }
}

impl From<LedgerError> for Failure {
    fn from(e: LedgerError) -> Failure {
        if e.is_ledger_fault() || matches!(e, LedgerError::Store(StoreError::Io { .. })) {
            Failure::Ledger(e.to_string())
        } else {
            Failure::Refused(e.to_string())
        }
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Failure {
        Failure::from(LedgerError::Store(e))
    }
}

impl From<eduledger_projection::ViewError> for Failure {
    fn from(e: eduledger_projection::ViewError) -> Failure {
        Failure::Refused(e.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::Refused(String::new())
        } else {
            Failure::Refused(format!("input/output error: {e}"))
        }
    }
}

/// Global options, shared by the write path and the clap path.
#[derive(Debug, Clone, Default)]
pub struct Globals {
    /// Ledger directory.
    pub db: Option<PathBuf>,
    /// Verbosity.
    pub verbose: u8,
    /// Actor.
    pub actor: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// Reason.
    pub reason: Option<String>,
    /// `--server`.
    pub server: Option<String>,
    /// `--token`.
    pub token: Option<String>,
    /// `--ca`.
    pub ca: Option<PathBuf>,
    /// `--idempotency-key`.
    pub idempotency_key: Option<String>,
}

impl Globals {
    /// The ledger directory.
    pub fn db_path(&self) -> PathBuf {
        self.db
            .clone()
            .or_else(|| std::env::var_os("EDULEDGER_DB").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("eduledger.db"))
    }
    /// The actor: --actor, else the login name.
    pub fn actor(&self) -> String {
        self.actor
            .clone()
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| "unknown".into())
    }
    /// The server to work through (`--server` or $EDULEDGER_SERVER), if any. The flag wins
    /// over `--db`; an explicit `--db` wins over the variable (an operator with
    /// $EDULEDGER_SERVER set still verifies a copy with `--db COPY verify`).
    pub fn server(&self) -> Result<Option<remote::Server>, Failure> {
        if self.server.is_none() && self.db.is_some() {
            return Ok(None);
        }
        remote::Server::from(
            self.server.as_deref(),
            self.token.as_deref(),
            self.ca.as_deref(),
            self.idempotency_key.as_deref(),
        )
    }

    /// A command as the JSON line a server records: its source and reason from the flags,
    /// and `--actor` only if given (through a server the token's principal is the actor; the
    /// server refuses an actor that is not it, rather than record it under another name).
    pub fn line_for_server(&self, command: &eduledger_domain::Command) -> Result<String, Failure> {
        let mut v = serde_json::to_value(command)
            .map_err(|e| Failure::Refused(format!("the command cannot be sent: {e}")))?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "meta".into(),
                serde_json::json!({"actor": self.actor, "source": self.source, "reason": self.reason}),
            );
        }
        Ok(v.to_string())
    }

    /// Metadata for a command recorded from the command line.
    pub fn meta(&self) -> Meta {
        Meta {
            actor: Some(self.actor()),
            reason: self.reason.clone(),
            source: self.source.clone(),
        }
    }
}

fn init_tracing(verbose: u8) {
    init_tracing_as(verbose, LogFormat::Text)
}

/// How `serve` logs: lines for people, or one JSON object per line for a log collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line (with the request span's id, method and route).
    Json,
}

fn init_tracing_as(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// The clock for `recorded_at`: the system clock, or — for reproducible tests and fixtures —
/// a clock that starts at `EDULEDGER_CLOCK_START_US` and steps one second per event.
pub fn clock() -> Arc<dyn eduledger_store::Clock> {
    match std::env::var("EDULEDGER_CLOCK_START_US")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
    {
        Some(start) => Arc::new(eduledger_store::SteppingClock::new(start)),
        None => Arc::new(SystemClock),
    }
}

/// Open a ledger that must already exist (reads never create one).
pub fn open_existing(g: &Globals) -> Result<Ledger, Failure> {
    open_existing_check(g)?;
    open(g)
}

fn open_existing_check(g: &Globals) -> Result<(), Failure> {
    let path = g.db_path();
    if !path.join("db").exists() && path.join("conf").exists() {
        return Err(Failure::Ledger(format!(
            "{} holds sled's conf but not its data file db: the ledger's events are missing; restore the directory from a backup or an export",
            path.display()
        )));
    }
    if !path.join("db").exists() {
        return Err(Failure::Ledger(format!(
            "there is no ledger at {}; create one with `eduledger roster import` or `eduledger demo --db {}`, or pass --db",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Open an existing ledger for a read: as known at `--known-at` when given, so a historical
/// read folds only the prefix it asks about.
pub fn open_read(g: &Globals, read: &ReadOpts) -> Result<Ledger, Failure> {
    // a bad date is refused before anything is folded
    if let Some(on) = &read.on {
        parse_date("--on", on)?;
    }
    let Some(known_at) = &read.known_at else {
        return open_existing(g);
    };
    open_existing_check(g)?;
    let mut bad = None;
    let opened = Ledger::open_as_of(g.db_path(), clock(), |store| {
        reads::resolve_known_at(store, known_at)
            .map(Some)
            .map_err(|f| {
                // stop the open here: nothing is folded for a cut that is not one
                let message = f.message().to_owned();
                bad = Some(f);
                eduledger_ledger::LedgerError::Input(message)
            })
    });
    match (bad, opened) {
        (Some(f), _) => Err(f),
        (None, opened) => Ok(opened?),
    }
}

/// Run a read on the ledger opened for it, then let it go as a process about to exit does.
fn reading(
    g: &Globals,
    read: &ReadOpts,
    path: &str,
    answer: impl FnOnce(&Ledger) -> Result<(), Failure>,
) -> Result<(), Failure> {
    if let Some(server) = g.server()? {
        return server.read(path, read);
    }
    let ledger = open_read(g, read)?;
    let result = answer(&ledger);
    ledger.close_for_exit();
    result
}

/// Open the ledger, creating it if it does not exist (writes).
pub fn open(g: &Globals) -> Result<Ledger, Failure> {
    let ids = if std::env::var_os("EDULEDGER_CLOCK_START_US").is_some() {
        eduledger_ledger::EventIds::Deterministic
    } else {
        eduledger_ledger::EventIds::Random
    };
    Ok(Ledger::open(g.db_path(), clock())?.with_event_ids(ids))
}

/// Split the global flags off the front (and anywhere) of argv, for the write path.
/// The global options and the rest; a global option given without its value is named in
/// the third part (a usage error for the write path, which has no clap parse of its own).
fn split_globals(args: &[String]) -> (Globals, Vec<String>, Option<String>) {
    let mut g = Globals::default();
    let mut missing = None;
    let mut rest = vec![];
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        let take = |name: &str| -> Option<Option<String>> {
            if a == name {
                Some(args.get(i + 1).cloned())
            } else {
                a.strip_prefix(&format!("{name}="))
                    .map(|v| Some(v.to_owned()))
            }
        };
        let mut consumed = 0;
        for (name, slot) in [
            ("--db", 0),
            ("--actor", 1),
            ("--source", 2),
            ("--reason", 3),
            ("--server", 4),
            ("--token", 5),
            ("--ca", 6),
            ("--idempotency-key", 7),
        ] {
            if let Some(v) = take(name) {
                consumed = if a.contains('=') { 1 } else { 2 };
                if v.is_none() {
                    missing = Some(format!("{name} needs a value"));
                }
                match slot {
                    0 => g.db = v.map(PathBuf::from),
                    1 => g.actor = v,
                    2 => g.source = v,
                    3 => g.reason = v,
                    4 => g.server = v,
                    5 => g.token = v,
                    6 => g.ca = v.map(PathBuf::from),
                    _ => g.idempotency_key = v,
                }
                break;
            }
        }
        if consumed == 0 && (a == "-v" || a == "-vv" || a == "--verbose") {
            g.verbose += if a == "-vv" { 2 } else { 1 };
            consumed = 1;
        }
        if consumed == 0 {
            rest.push(a.clone());
            consumed = 1;
        }
        i += consumed;
    }
    (g, rest, missing)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (globals, rest, missing_value) = split_globals(&args);
    let write_command = match (rest.first(), rest.get(1)) {
        (Some(noun), Some(verb)) => write::find(noun, verb),
        _ => None,
    };
    let result = match (rest.first(), rest.get(1), write_command) {
        (_, _, Some(_)) if missing_value.is_some() => {
            Err(Failure::Usage(missing_value.unwrap_or_default()))
        }
        (_, _, Some(w)) => {
            init_tracing(globals.verbose);
            if rest[2..].iter().any(|a| a == "--help" || a == "-h") {
                print!("{}", write::help(w));
                Ok(())
            } else {
                // a command with a `reason` field of its own (a cancellation): `--reason` is
                // that field, as well as the record's reason
                let mut args = rest[2..].to_vec();
                if w.flags.iter().any(|f| f.field == "reason")
                    && let Some(r) = &globals.reason
                {
                    args.push("--reason".into());
                    args.push(r.clone());
                }
                let path = globals.db_path();
                let existed = path.exists();
                let result = run_write(&globals, w, &args);
                forget_if_refused_and_new(&path, existed, &result);
                result
            }
        }
        (Some(noun), verb, None)
            if write::is_noun(noun)
                && !matches!(noun.as_str(), "group" | "kindergarten" | "teacher") =>
        {
            let verbs: Vec<&str> = write::WRITES
                .iter()
                .filter(|w| w.noun == noun)
                .map(|w| w.verb)
                .collect();
            if verb.is_some_and(|v| v == "--help" || v == "-h") {
                println!(
                    "eduledger {noun} <verb> --flags; verbs: {}",
                    verbs.join(", ")
                );
                return ExitCode::SUCCESS;
            }
            Err(Failure::Usage(match verb {
                Some(v) => format!(
                    "`{noun} {v}` is not a command; {noun} takes: {}",
                    verbs.join(", ")
                ),
                None => format!("`{noun}` needs one of: {}", verbs.join(", ")),
            }))
        }
        _ => {
            let cli = match Cli::try_parse() {
                Ok(c) => c,
                Err(e) => {
                    let _ = e.print();
                    return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
                }
            };
            let log_format = match &cli.command {
                Cmd::Serve { log_format, .. } => *log_format,
                _ => LogFormat::Text,
            };
            init_tracing_as(cli.verbose, log_format);
            let g = Globals {
                db: cli.db.clone(),
                verbose: cli.verbose,
                actor: cli.actor.clone(),
                source: cli.source.clone(),
                reason: cli.reason.clone(),
                server: cli.server.clone(),
                token: cli.token.clone(),
                ca: cli.ca.clone(),
                idempotency_key: cli.idempotency_key.clone(),
            };
            let path = g.db_path();
            let existed = path.exists();
            let result = run(&g, cli.command);
            forget_if_refused_and_new(&path, existed, &result);
            result
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message().is_empty() {
                // A message never quotes a huge argument back whole (a 100 KB flag value, a
                // megabyte-long path): whatever path built it, it is shortened here.
                eprintln!(
                    "eduledger: {}",
                    eduledger_store::shorten_to(f.message().to_owned(), 1000)
                );
            }
            ExitCode::from(f.code())
        }
    }
}

/// The whole command line as clap sees it: the reads and ledger commands, and every
/// `<noun> <verb>` write built from the write table — for completions and the man page.
fn full_command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    let mut nouns: Vec<&str> = write::WRITES.iter().map(|w| w.noun).collect();
    nouns.dedup();
    for noun in nouns {
        let verbs: Vec<clap::Command> = write::WRITES
            .iter()
            .filter(|w| w.noun == noun)
            .map(|w| write::clap_command(w).no_binary_name(false))
            .collect();
        if cmd.find_subcommand(noun).is_some() {
            // `group`, `kindergarten`, `teacher`: a read by name, and the writes as verbs
            cmd = cmd.mut_subcommand(noun, |sc| sc.subcommands(verbs));
        } else {
            cmd = cmd.subcommand(
                clap::Command::new(noun)
                    .about(format!("record: {noun} <verb> --flags"))
                    .disable_help_subcommand(true)
                    .subcommands(verbs),
            );
        }
    }
    cmd
}

/// A command that was refused must leave nothing behind: not even the empty ledger its
/// opening created. Removed only when this run created the directory and nothing is
/// recorded in it (an acknowledged event is never removed, whatever failed after it).
fn forget_if_refused_and_new(path: &Path, existed: bool, result: &Result<(), Failure>) {
    if result.is_ok() || existed || !path.join("db").exists() {
        return;
    }
    let empty = eduledger_store::Store::open(path)
        .and_then(|s| s.head())
        .is_ok_and(|h| h.seq == 0);
    if empty {
        let _ = std::fs::remove_dir_all(path);
    }
}

/// Whether stdout is a terminal (tables) or a pipe (JSON).
pub fn default_format(f: Option<Format>) -> Format {
    f.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    })
}

fn run_write(g: &Globals, w: &write::WriteCommand, args: &[String]) -> Result<(), Failure> {
    let json = match write::to_json(w, args) {
        Ok(json) => json,
        Err(write::FlagError::Help(text)) => {
            print!("{text}");
            return Ok(());
        }
        Err(write::FlagError::Usage(m)) => return Err(Failure::Usage(m)),
        Err(write::FlagError::Value(m)) => return Err(Failure::Refused(m)),
    };
    let sub = parse_submission(&json.to_string()).map_err(Failure::Refused)?;
    record_one(g, sub.command)
}

fn report_written(ledger: &Ledger, seqs: &[u64]) -> Result<(), Failure> {
    let head = ledger.head()?;
    recorded_anyway(say_written(
        seqs,
        &head.to_string(),
        serde_json::json!({"seq": head.seq, "hash": head.hash_hex()}),
    ))
}

/// What was recorded is recorded: a reader that closed standard output before the answer
/// (`… | head -0`) does not turn it into a failure (exit 1 means nothing was recorded).
pub fn recorded_anyway(printed: Result<(), Failure>) -> Result<(), Failure> {
    match printed {
        Err(Failure::Refused(m)) if m.is_empty() => Ok(()),
        other => other,
    }
}

/// How a write reports what it recorded: a sentence on a terminal, JSON otherwise.
pub fn say_written(seqs: &[u64], head: &str, head_json: serde_json::Value) -> Result<(), Failure> {
    if std::io::stdout().is_terminal() {
        match seqs {
            [one] => outln!("recorded as sequence {one}; digest {head}"),
            [first, .., last] => outln!(
                "recorded {} events as sequences {first}–{last}; digest {head}",
                seqs.len()
            ),
            [] => outln!("nothing recorded; digest {head}"),
        }
    } else {
        outln!("{}", serde_json::json!({"seqs": seqs, "head": head_json}));
    }
    Ok(())
}

fn principal_name(name: &str) -> Result<eduledger_domain::values::PrincipalName, Failure> {
    eduledger_domain::values::PrincipalName::new(name)
        .map_err(|e| Failure::Refused(format!("--name: {e}")))
}

/// The day an access change takes effect: `--on`, or the recording day (in Shanghai); never
/// earlier than the recording day, since a token works only from when it is recorded and a
/// back-dated grant or revocation would rewrite who could act when.
fn access_day(on: Option<&str>) -> Result<eduledger_domain::values::Date, Failure> {
    let today = eduledger_ledger::clock::day_of_us(clock().now_us())
        .unwrap_or_else(eduledger_ledger::clock::today);
    match on {
        None => Ok(today),
        Some(t) => {
            let day = parse_date("--on", t)?;
            if day < today {
                return Err(Failure::Refused(format!(
                    "--on: {day} is before today ({today}); access takes effect from the day it is recorded or later"
                )));
            }
            Ok(day)
        }
    }
}

/// `access grant`: a new token of 256 random bits, shown once; the ledger records only its
/// SHA-256.
fn grant_access(
    g: &Globals,
    name: &str,
    role: &str,
    groups: &[String],
    on: Option<&str>,
    format: Option<Format>,
) -> Result<(), Failure> {
    use eduledger_domain::values::{GroupName, Role, Sha256Hex};
    let role = Role::parse(role).map_err(|e| Failure::Refused(format!("--role: {e}")))?;
    let groups = groups
        .iter()
        .map(|x| GroupName::new(x).map_err(|e| Failure::Refused(format!("--group: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    // (through a server: the server mints the token, recorded by an admin's token)
    if let Some(server) = g.server()? {
        let answer = server.post(
            "/v1/access/grant",
            serde_json::json!({
                "name": name,
                "role": role.code(),
                "groups": groups.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
                "on": on,
                "meta": {"source": g.source, "reason": g.reason},
            })
            .to_string()
            .as_bytes(),
        )?;
        let token = answer["token"].as_str().unwrap_or_default().to_owned();
        let seq = answer["seq"].as_u64().unwrap_or(0);
        return print_grant(
            name,
            role,
            &groups,
            &token,
            seq,
            Some(answer["head"].clone()),
            format,
        );
    }
    let (token, digest) = eduledger_ledger::new_token().map_err(Failure::Refused)?;
    let command = eduledger_domain::Command::GrantAccess(eduledger_domain::command::GrantAccess {
        principal: principal_name(name)?,
        role,
        groups: groups.clone(),
        token_sha256: Sha256Hex::new(&digest).map_err(Failure::Refused)?,
        on: access_day(on)?,
    });
    let (ledger, seqs) = execute_one(g, command)?;
    let head = ledger
        .head()
        .ok()
        .map(|h| serde_json::json!({"seq": h.seq, "hash": h.hash_hex()}));
    let seq = seqs.first().copied().unwrap_or(0);
    print_grant(name, role, &groups, &token, seq, head, format)
}

/// A grant's answer, with its token (shown this once).
fn print_grant(
    name: &str,
    role: eduledger_domain::values::Role,
    groups: &[eduledger_domain::values::GroupName],
    token: &str,
    seq: u64,
    head: Option<serde_json::Value>,
    format: Option<Format>,
) -> Result<(), Failure> {
    // The grant is durable now: whatever follows, the token must reach whoever asked for it.
    let text = match default_format(format) {
        Format::Json | Format::Csv => serde_json::json!({
            "principal": name,
            "role": role.code(),
            "groups": groups.iter().map(|x| x.to_string()).collect::<Vec<_>>(),
            "token": token,
            "seq": seq,
            "head": head,
        })
        .to_string(),
        Format::Table => format!(
            "granted {name} the role {} ({}) as sequence {seq}\ntoken (shown this once; the ledger keeps only its SHA-256):\n{token}",
            role.code(),
            role.label(),
        ),
    };
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) => Err(Failure::Refused(format!(
            "access for {name} was recorded as sequence {seq}, but its token could not be written ({e}); revoke it and grant again"
        ))),
    }
}

/// `eduledger serve`.
fn serve(
    g: &Globals,
    listen: &str,
    tls: Option<(&Path, &Path)>,
    max_body: usize,
    queue: usize,
    idle: std::time::Duration,
    limits: eduledger_server::Limits,
) -> Result<(), Failure> {
    let addr: std::net::SocketAddr = listen
        .parse()
        .map_err(|e| Failure::Usage(format!("--listen {listen:?}: {e}")))?;
    eduledger_server::check_listen(&addr, tls.is_some()).map_err(Failure::Usage)?;
    let tls = tls
        .map(|(cert, key)| eduledger_server::tls::config(cert, key))
        .transpose()
        .map_err(Failure::Usage)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let ledger = open_existing(g)?;
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::Ledger(format!("cannot start the server's runtime: {e}")))?;
    let served = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::Refused(format!("--listen {addr}: {e}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| Failure::Refused(format!("--listen {addr}: {e}")))?;
        // the handler is in place before anyone is told where to connect, so a SIGTERM
        // right after the announcement stops the server gracefully
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| Failure::Ledger(format!("cannot listen for SIGTERM: {e}")))?;
        {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "listening on {scheme}://{bound}");
            let _ = out.flush();
        }
        let shutdown = async move {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        };
        eduledger_server::serve(
            ledger,
            listener,
            eduledger_server::Config {
                db: g.db_path(),
                max_body,
                queue,
                idle,
                tls,
                limits,
            },
            shutdown,
        )
        .await
        .map_err(|e| Failure::Ledger(format!("serving stopped: {e}")))
    });
    // every acknowledged batch is durable and the writer has stopped: a read still running
    // on the blocking pool is not waited for
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// Before a write: say on stderr when this machine's clock reads earlier than the ledger's
/// last record (an NTP step back, a VM restored), since what is recorded is then dated just
/// after that record, not by the clock.
pub fn warn_if_clock_behind(ledger: &Ledger) {
    // (the stepping clock of tests and demos starts where it is told: only the machine's
    // clock can be wrong)
    let machine_clock = std::env::var_os("EDULEDGER_CLOCK_START_US").is_none();
    if let Some((now, last)) = ledger.store().clock_behind().filter(|_| machine_clock) {
        eprintln!(
            "warning: this machine's clock ({}) reads earlier than the ledger's last record ({}); what is recorded now is dated just after that record, not by the clock — check the clock (NTP)",
            eduledger_ledger::clock::rfc3339(now),
            eduledger_ledger::clock::rfc3339(last)
        );
    }
}

/// Record one command built on the command line, with the global metadata.
fn execute_one(
    g: &Globals,
    command: eduledger_domain::Command,
) -> Result<(Ledger, Vec<u64>), Failure> {
    let mut ledger = open(g)?;
    warn_if_clock_behind(&ledger);
    let seqs = ledger.execute(
        &[Submission {
            command,
            meta: g.meta(),
        }],
        &g.actor(),
    )?;
    Ok((ledger, seqs))
}

/// [`execute_one`], then say what was recorded.
fn record_one(g: &Globals, command: eduledger_domain::Command) -> Result<(), Failure> {
    if let Some(server) = g.server()? {
        return server.record(&g.line_for_server(&command)?);
    }
    let (ledger, seqs) = execute_one(g, command)?;
    report_written(&ledger, &seqs)
}

/// Largest batch file (or standard input) `submit` and `correct` read.
pub const MAX_BATCH_BYTES: u64 = 64 << 20;
/// Largest roster table `roster import` reads.
pub const MAX_ROSTER_BYTES: u64 = 1 << 20;

/// Read a whole input (`-` for standard input), refusing one over `limit` bytes before
/// holding more than that in memory.
pub fn read_limited(file: &str, limit: u64, what: &str) -> Result<String, Failure> {
    // (a named file must be a regular one: a device or a FIFO is refused, never waited on)
    let reader: Box<dyn Read> = if file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(
            eduledger_files::open_regular(Path::new(file))
                .map_err(|e| Failure::Refused(e.to_string()))?,
        )
    };
    let mut bytes = Vec::new();
    reader
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::Refused(format!("cannot read {file}: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(Failure::Refused(format!(
            "{what} {file} is over the limit of {limit} bytes; nothing was recorded"
        )));
    }
    String::from_utf8(bytes)
        .map_err(|_| Failure::Refused(format!("{what} {file} is not UTF-8 text")))
}

fn read_input(file: &str) -> Result<String, Failure> {
    read_limited(file, MAX_BATCH_BYTES, "the input")
}

/// Parse a date argument, naming the flag.
pub fn parse_date(flag: &str, text: &str) -> Result<eduledger_domain::values::Date, Failure> {
    eduledger_domain::values::Date::parse(text)
        .map_err(|e| Failure::Refused(format!("{flag}: {e}")))
}

/// Record a roster table.
pub fn import_roster(
    ledger: &mut Ledger,
    g: &Globals,
    text: &str,
    on: &str,
) -> Result<Vec<u64>, Failure> {
    let on = parse_date("--on", on)?;
    // the roster founds the groups, and its leads stand on the plan's authority: it is
    // imported once, into a ledger that has no groups yet
    if !ledger.state().groups().is_empty() {
        return Err(Failure::Refused(format!(
            "this ledger already has {} groups; the roster founds the groups and is imported once, into a ledger without any (found later groups with `group found`)",
            ledger.state().groups().len()
        )));
    }
    let commands = eduledger_domain::roster::roster_commands(text, on)
        .map_err(|e| Failure::Refused(e.to_string()))?;
    let mut meta = g.meta();
    meta.source = meta.source.or_else(|| Some("青教〔2023〕61号".into()));
    let subs: Vec<Submission> = commands
        .into_iter()
        .map(|command| Submission {
            command,
            meta: meta.clone(),
        })
        .collect();
    warn_if_clock_behind(ledger);
    Ok(ledger.execute(&subs, &g.actor())?)
}

/// A batch file's commands (JSON Lines or a JSON array: `eduledger_domain::batch_lines`),
/// each parsed with its line or position, the flags' source and reason added where it has
/// none; a command that does not parse names its line.
fn parse_batch(g: &Globals, text: &str) -> Result<Vec<(usize, Submission)>, Failure> {
    let lines = eduledger_domain::batch_lines(text, usize::MAX)
        .map_err(|e| Failure::Refused(e.to_string()))?;
    lines
        .into_iter()
        .map(|(at, line)| {
            let mut sub = parse_submission(line)
                .map_err(|e| Failure::Refused(format!("line {at}: {e}; nothing was recorded")))?;
            sub.meta.source = sub.meta.source.or_else(|| g.source.clone());
            sub.meta.reason = sub.meta.reason.or_else(|| g.reason.clone());
            Ok((at, sub))
        })
        .collect()
}

/// A batch file as a server records it: checked here as `submit` checks it (the same
/// messages), as JSON Lines whose line numbers are the file's. The actor only if given
/// (`--actor` or the line's own): through a server, the token's principal records.
fn submit_for_server(g: &Globals, text: &str) -> Result<String, Failure> {
    let mut out = String::with_capacity(text.len());
    let mut line = 1;
    for (at, mut sub) in parse_batch(g, text)? {
        while line < at {
            out.push('\n');
            line += 1;
        }
        sub.meta.actor = sub.meta.actor.or_else(|| g.actor.clone());
        let mut v = serde_json::to_value(&sub.command)
            .map_err(|e| Failure::Refused(format!("line {at}: {e}")))?;
        if let Some(obj) = v.as_object_mut() {
            obj.insert(
                "meta".into(),
                serde_json::json!({"actor": sub.meta.actor, "source": sub.meta.source, "reason": sub.meta.reason}),
            );
        }
        out.push_str(&v.to_string());
        out.push('\n');
        line += 1;
    }
    Ok(out)
}

/// Record a batch file; errors name the line.
pub fn submit_lines(ledger: &mut Ledger, g: &Globals, text: &str) -> Result<Vec<u64>, Failure> {
    let (line_numbers, subs): (Vec<usize>, Vec<Submission>) = parse_batch(g, text)?
        .into_iter()
        .map(|(at, mut sub)| {
            sub.meta.actor = sub.meta.actor.or_else(|| Some(g.actor()));
            (at, sub)
        })
        .unzip();
    warn_if_clock_behind(ledger);
    ledger.execute(&subs, &g.actor()).map_err(|e| match e {
        LedgerError::Batch {
            number,
            command,
            error,
        } => Failure::Refused(format!(
            "line {} ({command}): {error}; nothing was recorded",
            line_numbers.get(number - 1).copied().unwrap_or(number)
        )),
        other => Failure::from(other),
    })
}

/// Adopt a rule set.
pub fn adopt_rules(
    ledger: &mut Ledger,
    g: &Globals,
    text: &str,
    year: i32,
    on: &str,
) -> Result<Vec<u64>, Failure> {
    let on = parse_date("--on", on)?;
    let command =
        eduledger_domain::Command::AdoptPointsRules(eduledger_domain::command::AdoptPointsRules {
            year,
            rules: text.to_owned(),
            on,
        });
    warn_if_clock_behind(ledger);
    Ok(ledger.execute(
        &[Submission {
            command,
            meta: g.meta(),
        }],
        &g.actor(),
    )?)
}

fn today() -> String {
    eduledger_ledger::clock::today().to_string()
}

fn parse_target(t: &str) -> Result<eduledger_domain::Target, Failure> {
    if let Ok(n) = t.parse::<u64>() {
        return Ok(eduledger_domain::Target::Seq(n));
    }
    uuid::Uuid::parse_str(t)
        .map(eduledger_domain::Target::EventId)
        .map_err(|_| {
            Failure::Refused(format!(
                "target {t:?} is neither a sequence number nor an event id"
            ))
        })
}

fn run(g: &Globals, cmd: Cmd) -> Result<(), Failure> {
    let local_only = match &cmd {
        Cmd::Roster { .. } => Some("roster import"),
        Cmd::Serve { .. } => Some("serve"),
        Cmd::Rules { .. } => Some("rules adopt"),
        Cmd::Verify { .. } => Some("verify"),
        Cmd::Import { .. } => Some("import"),
        Cmd::Demo => Some("demo"),
        _ => None,
    };
    if let Some(what) = local_only
        && let Some(server) = g.server()?
    {
        return Err(Failure::Usage(format!(
            "`{what}` works on a ledger directory (--db), not through --server {}; to verify what a server holds, `eduledger follow URL --db COPY --once`, then verify the copy",
            server.url()
        )));
    }
    match cmd {
        Cmd::Roster {
            command: RosterCmd::Import { file, on },
        } => {
            let text = match file {
                Some(p) => read_limited(&p.to_string_lossy(), MAX_ROSTER_BYTES, "the roster")?,
                None => ROSTER_2023.to_owned(),
            };
            let mut ledger = open(g)?;
            let seqs = import_roster(&mut ledger, g, &text, &on)?;
            report_written(&ledger, &seqs)
        }
        Cmd::Access {
            command:
                AccessCmd::Grant {
                    name,
                    role,
                    groups,
                    on,
                    format,
                },
        } => grant_access(g, &name, &role, &groups, on.as_deref(), format),
        Cmd::Access {
            command: AccessCmd::Revoke { name, on },
        } => {
            let command =
                eduledger_domain::Command::RevokeAccess(eduledger_domain::command::RevokeAccess {
                    principal: principal_name(&name)?,
                    on: access_day(on.as_deref())?,
                });
            record_one(g, command)
        }
        Cmd::Access {
            command: AccessCmd::List(read),
        } => reading(g, &read, "/v1/access", |l| reads::access(l, &read)),
        Cmd::Serve {
            listen,
            tls_cert,
            tls_key,
            max_body,
            queue,
            idle_seconds,
            read_seconds,
            max_connections,
            per_address,
            log_format: _,
        } => serve(
            g,
            &listen,
            tls_cert.as_deref().zip(tls_key.as_deref()),
            max_body as usize,
            queue as usize,
            std::time::Duration::from_secs(idle_seconds),
            eduledger_server::Limits {
                read: std::time::Duration::from_secs(read_seconds),
                connections: max_connections as usize,
                per_address: per_address as usize,
            },
        ),
        Cmd::Submit { file } => {
            let text = read_input(&file)?;
            if let Some(server) = g.server()? {
                return server.record(&submit_for_server(g, &text)?);
            }
            let mut ledger = open(g)?;
            let seqs = submit_lines(&mut ledger, g, &text)?;
            report_written(&ledger, &seqs)
        }
        Cmd::Rules {
            command: RulesCmd::Adopt { file, year, on },
        } => {
            let text = read_limited(
                &file.to_string_lossy(),
                eduledger_domain::command::MAX_RULES_BYTES as u64,
                "the rules file",
            )?;
            let mut ledger = open(g)?;
            let seqs = adopt_rules(&mut ledger, g, &text, year, &on.unwrap_or_else(today))?;
            report_written(&ledger, &seqs)
        }
        Cmd::Correct { target, file } => {
            let reason = g
                .reason
                .clone()
                .ok_or_else(|| Failure::Usage("correct needs --reason \"...\"".into()))?;
            let text = read_input(&file)?;
            let replacement = parse_submission(text.trim())
                .map_err(|e| Failure::Refused(format!("replacement: {e}")))?;
            let reason = eduledger_domain::values::Reason::new(reason)
                .map_err(|e| Failure::Refused(format!("--reason: {e}")))?;
            let command =
                eduledger_domain::Command::CorrectEvent(eduledger_domain::command::CorrectEvent {
                    target: parse_target(&target)?,
                    replacement: Box::new(replacement.command),
                    reason,
                });
            record_one(g, command)
        }
        Cmd::Retract { target } => {
            let reason = g
                .reason
                .clone()
                .ok_or_else(|| Failure::Usage("retract needs --reason \"...\"".into()))?;
            let reason = eduledger_domain::values::Reason::new(reason)
                .map_err(|e| Failure::Refused(format!("--reason: {e}")))?;
            let command =
                eduledger_domain::Command::RetractEvent(eduledger_domain::command::RetractEvent {
                    target: parse_target(&target)?,
                    reason,
                });
            record_one(g, command)
        }
        Cmd::Groups(read) => reading(g, &read, "/v1/groups", |l| reads::groups(l, &read)),
        Cmd::Group { name, read } => {
            let path = format!("/v1/groups/{}", remote::encode(&name));
            reading(g, &read, &path, |l| reads::group(l, &name, &read))
        }
        Cmd::Kindergarten { name, read } => {
            let path = format!("/v1/kindergartens/{}", remote::encode(&name));
            reading(g, &read, &path, |l| reads::kindergarten(l, &name, &read))
        }
        Cmd::Teacher { staff_no, read } => {
            let path = format!("/v1/teachers/{}", remote::encode(&staff_no));
            reading(g, &read, &path, |l| reads::teacher(l, &staff_no, &read))
        }
        Cmd::History { kind, id, read } => {
            let path = format!("/v1/history/{}/{}", kind.name(), remote::encode(&id));
            reading(g, &read, &path, |l| reads::history(l, kind, &id, &read))
        }
        Cmd::Log { from, limit, read } => {
            let path = format!("/v1/log?from={from}&limit={limit}");
            reading(g, &read, &path, |l| reads::log(l, from, limit, &read))
        }
        Cmd::Tally {
            year,
            explain,
            rules,
            read,
        } => {
            if rules.is_some() && g.server()?.is_some() {
                return Err(Failure::Usage(
                    "--rules previews a rule file against a ledger directory; through --server only the adopted rules are tallied".into(),
                ));
            }
            let path = format!("/v1/tally/{year}?explain={explain}");
            reading(g, &read, &path, |l| {
                reads::tally(l, year, explain, rules.as_deref(), &read)
            })
        }
        Cmd::Report {
            command: ReportCmd::Compliance { year, read },
        } => {
            let path = format!("/v1/reports/compliance/{year}");
            reading(g, &read, &path, |l| reads::compliance(l, year, &read))
        }
        Cmd::Report {
            command: ReportCmd::Rewards { year, read },
        } => {
            let path = format!("/v1/reports/rewards/{year}");
            reading(g, &read, &path, |l| reads::rewards(l, year, &read))
        }
        Cmd::Report {
            command: ReportCmd::Balance { read },
        } => reading(g, &read, "/v1/reports/balance", |l| {
            reads::balance(l, &read)
        }),
        Cmd::Report {
            command: ReportCmd::Funds { year, read },
        } => {
            let path = format!("/v1/reports/funds/{year}");
            reading(g, &read, &path, |l| reads::funds(l, year, &read))
        }
        Cmd::Report {
            command: ReportCmd::Rotations { year, read },
        } => {
            let path = format!("/v1/reports/rotations/{year}");
            reading(g, &read, &path, |l| reads::rotations(l, year, &read))
        }
        Cmd::Verify { digest, format } => {
            open_existing_check(g)?;
            reads::verify(&g.db_path(), digest.as_deref(), format)
        }
        Cmd::Export { file, force } => match g.server()? {
            Some(server) if file == "-" => server.export(&mut std::io::stdout().lock()),
            Some(server) => target::write_to(Path::new(&file), force, &g.db_path(), |out| {
                server.export(out)
            }),
            None => export(g, &file, force),
        },
        Cmd::Follow { url, once } => {
            let token = g
                .token
                .clone()
                .or_else(|| std::env::var("EDULEDGER_TOKEN").ok())
                .unwrap_or_default();
            let ca =
                g.ca.clone()
                    .or_else(|| std::env::var_os("EDULEDGER_CA").map(PathBuf::from));
            follow::run(g, &url, &token, ca.as_deref(), once)
        }
        Cmd::Import { file, digest } => import(g, &file, digest.as_deref()),
        Cmd::Demo => demo::run(g),
        Cmd::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut full_command(),
                "eduledger",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Cmd::Man { dir: None } => clap_mangen::Man::new(full_command())
            .render(&mut std::io::stdout())
            .map_err(Failure::from),
        Cmd::Man { dir: Some(dir) } => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(full_command(), &dir)?;
            println!("manual pages written to {}", dir.display());
            Ok(())
        }
    }
}

/// A progress bar on a terminal, nothing when piped.
pub fn progress(what: &str) -> indicatif::ProgressBar {
    if std::io::stderr().is_terminal() {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.set_message(what.to_owned());
        pb
    } else {
        indicatif::ProgressBar::hidden()
    }
}

fn export(g: &Globals, file: &str, force: bool) -> Result<(), Failure> {
    let ledger = open_existing(g)?;
    let pb = progress("exporting");
    let describe = |env: &eduledger_store::Envelope| {
        eduledger_domain::Event::decode(&env.event_type, env.schema_version, &env.payload)
            .ok()
            .map(|e| e.to_json())
    };
    let n = if file == "-" {
        let mut out = std::io::BufWriter::new(std::io::stdout().lock());
        ledger
            .store()
            .export(&mut out, &describe, &mut |n| pb.set_position(n))?
    } else {
        target::write_to(Path::new(file), force, &g.db_path(), |out| {
            Ok(ledger
                .store()
                .export(out, &describe, &mut |n| pb.set_position(n))?)
        })?
    };
    pb.finish_and_clear();
    if file != "-" {
        eprintln!("exported {n} events to {file}; digest {}", ledger.head()?);
    }
    Ok(())
}

/// Whether `shown` is `whole` with, at most, some object fields left out.
fn shows_part_of(shown: &serde_json::Value, whole: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (shown, whole) {
        (Value::Object(a), Value::Object(b)) => a
            .iter()
            .all(|(k, v)| b.get(k).is_some_and(|w| shows_part_of(v, w))),
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(v, w)| shows_part_of(v, w))
        }
        (a, b) => a == b,
    }
}

fn import(g: &Globals, file: &str, digest: Option<&str>) -> Result<(), Failure> {
    let path = g.db_path();
    let head = digest
        .map(eduledger_store::Digest::parse)
        .transpose()
        .map_err(|e| Failure::Usage(format!("--digest: {e}")))?;
    let pb = progress("importing");
    let mut input: Box<dyn BufRead> = if file == "-" {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            eduledger_files::open_regular(Path::new(file))
                .map_err(|e| Failure::Refused(e.to_string()))?,
        ))
    };
    // the domain must be able to read every event before the ledger is put in place
    // — and the line's readable `event` must be exactly that decoding: it is what an auditor
    // without eduledger reads
    let readable = |env: &eduledger_store::Envelope, shown: Option<&serde_json::Value>| {
        let event =
            eduledger_domain::Event::decode(&env.event_type, env.schema_version, &env.payload)
                .map_err(|e| {
                    format!(
                        "event {} does not decode as {}: {e}",
                        env.seq, env.event_type
                    )
                })?;
        // (an event of an older shape reads upcast: its line, written then, may lack the
        // fields added since, but must agree on every field it shows)
        let decoded = event.to_json();
        let agrees = match shown {
            None => false,
            Some(shown) if env.schema_version == event.schema_version() => *shown == decoded,
            Some(shown) => shows_part_of(shown, &decoded),
        };
        if !agrees {
            return Err(format!(
                "field event does not show what the bytes of event {} say (the export writes their decoding there)",
                env.seq
            ));
        }
        Ok(())
    };
    // and every event must be one the ledger could have recorded, in order, under the rules
    let lawful = |store: &eduledger_store::Store| {
        eduledger_ledger::validate_log(store, &mut |_| {}).map_err(|e| match e {
            eduledger_ledger::LedgerError::Store(StoreError::Corrupt { seq, what }) => (seq, what),
            other => (0, other.to_string()),
        })
    };
    let v = eduledger_store::import_new_checked(
        Path::new(&path),
        &mut input,
        clock(),
        &mut |n| pb.set_position(n),
        &eduledger_store::ImportChecks {
            event: &readable,
            log: &lawful,
            head,
            end_required: true,
        },
    )
    .map_err(|e| match e {
        StoreError::Import { .. } | StoreError::NotEmpty { .. } | StoreError::InvalidAppend(_) => {
            Failure::Refused(e.to_string())
        }
        other => Failure::from(other),
    })?;
    pb.finish_and_clear();
    // Opening folds the imported log once: it checks that every event decodes and leaves
    // snapshots behind for the next open.
    open(g)?;
    outln!(
        "imported {} events into {}; digest {}",
        v.events,
        path.display(),
        v.head
    );
    Ok(())
}
