//! `/metrics`: what an operator watches, in Prometheus's text format (version 0.0.4),
//! counted with atomics on the paths that do the work — no registry, no exporter thread.

use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How a batch of commands ended, as `/v1/commands` answered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200: durable.
    Recorded,
    /// 200: answered from an earlier request's record (the same `Idempotency-Key` and
    /// body); nothing was recorded.
    Replayed,
    /// 400, 413: not a batch this server reads.
    Malformed,
    /// 401, 403: a token or a right missing.
    Forbidden,
    /// 409: `If-Match` named another head, or an idempotency record the chain contradicts.
    Conflict,
    /// 422: a rule refused it.
    Refused,
    /// 503: the queue was full or the ledger failed.
    Unavailable,
}

const OUTCOMES: [(Outcome, &str); 7] = [
    (Outcome::Recorded, "recorded"),
    (Outcome::Replayed, "replayed"),
    (Outcome::Malformed, "malformed"),
    (Outcome::Forbidden, "forbidden"),
    (Outcome::Conflict, "conflict"),
    (Outcome::Refused, "refused"),
    (Outcome::Unavailable, "unavailable"),
];

/// A histogram with fixed upper bounds.
struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// The sum, in millionths of the unit.
    sum_micros: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: f64) {
        let at = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[at].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((value * 1e6).max(0.0) as u64, Ordering::Relaxed);
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, bound) in self.bounds.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += self.counts[self.bounds.len()].load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
        );
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {cumulative}");
    }
}

const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
const SIZES: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0, 10_000.0,
];

/// Every metric the server keeps.
pub struct Metrics {
    commands: [AtomicU64; OUTCOMES.len()],
    group_batches: Histogram,
    group_commands: Histogram,
    fsync: Histogram,
    /// Request latency per route (axum's matched path, so ids never become labels).
    requests: Mutex<std::collections::BTreeMap<(&'static str, String), Histogram>>,
    feed_subscribers: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            commands: Default::default(),
            group_batches: Histogram::new(SIZES),
            group_commands: Histogram::new(SIZES),
            fsync: Histogram::new(SECONDS),
            requests: Mutex::new(Default::default()),
            feed_subscribers: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    /// `n` commands answered with `outcome`.
    pub fn commands(&self, outcome: Outcome, n: usize) {
        let at = OUTCOMES
            .iter()
            .position(|(o, _)| *o == outcome)
            .unwrap_or(0);
        self.commands[at].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A group commit of `batches` batches and `commands` commands, synced in `fsync`.
    pub fn group(&self, batches: usize, commands: usize, fsync: Option<Duration>) {
        self.group_batches.observe(batches as f64);
        self.group_commands.observe(commands as f64);
        if let Some(d) = fsync {
            self.fsync.observe(d.as_secs_f64());
        }
    }

    /// A request to `route` by `method`, answered in `took`.
    pub fn request(&self, method: &'static str, route: String, took: Duration) {
        let mut r = self.requests.lock().unwrap_or_else(|p| p.into_inner());
        r.entry((method, route))
            .or_insert_with(|| Histogram::new(SECONDS))
            .observe(took.as_secs_f64());
    }

    /// A feed subscriber came (+1) or went (-1).
    pub fn subscribers(&self, delta: i64) {
        if delta >= 0 {
            self.feed_subscribers
                .fetch_add(delta as u64, Ordering::Relaxed);
        } else {
            self.feed_subscribers
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// Everything, in Prometheus's text format; `head` is the ledger's last sequence.
    pub fn render(&self, head: u64) -> String {
        let mut out = String::new();
        out.push_str("# HELP eduledger_commands_total Commands answered by POST /v1/commands, by outcome.\n# TYPE eduledger_commands_total counter\n");
        for (i, (_, name)) in OUTCOMES.iter().enumerate() {
            let n = self.commands[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "eduledger_commands_total{{outcome=\"{name}\"}} {n}");
        }
        out.push_str("# HELP eduledger_group_commit_batches Batches appended together in one group commit (one fsync).\n# TYPE eduledger_group_commit_batches histogram\n");
        self.group_batches
            .write(&mut out, "eduledger_group_commit_batches", "");
        out.push_str("# HELP eduledger_group_commit_commands Commands decided together in one group commit.\n# TYPE eduledger_group_commit_commands histogram\n");
        self.group_commands
            .write(&mut out, "eduledger_group_commit_commands", "");
        out.push_str("# HELP eduledger_fsync_seconds How long making a group durable took (sled's flush and the fsync).\n# TYPE eduledger_fsync_seconds histogram\n");
        self.fsync.write(&mut out, "eduledger_fsync_seconds", "");
        out.push_str("# HELP eduledger_request_seconds Time from a request's arrival to its answer's head, by route.\n# TYPE eduledger_request_seconds histogram\n");
        for ((method, route), h) in self
            .requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            h.write(&mut out, "eduledger_request_seconds", &labels);
        }
        let subs = self.feed_subscribers.load(Ordering::Relaxed);
        let _ = write!(
            out,
            "# HELP eduledger_feed_subscribers Open /v1/events streams.\n# TYPE eduledger_feed_subscribers gauge\neduledger_feed_subscribers {subs}\n# HELP eduledger_head_seq The sequence of the last durable event.\n# TYPE eduledger_head_seq gauge\neduledger_head_seq {head}\n"
        );
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_each_value_in_its_bucket_and_every_one_above() {
        let h = Histogram::new(&[1.0, 10.0]);
        for v in [0.5, 1.0, 3.0, 50.0] {
            h.observe(v);
        }
        let mut out = String::new();
        h.write(&mut out, "x", "");
        assert_eq!(
            out,
            "x_bucket{le=\"1\"} 2\nx_bucket{le=\"10\"} 3\nx_bucket{le=\"+Inf\"} 4\nx_sum 54.5\nx_count 4\n"
        );
    }
}
