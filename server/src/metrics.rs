//! Metrics: the one Prometheus registry of the process and every metric family in it, served at
//! `/metrics` in Prometheus' text format (0.0.4) by `prometheus-client`.
//!
//! This module owns the names, help texts, labels and buckets. The other modules only record
//! into handles from here (`metrics.frames_queued.inc()`, `metrics.refused(Limit::Send)`) and
//! never format text; what is cheaper to read than to count (open connections, memory) is read
//! when Prometheus scrapes ([`Metrics::render`]).
//!
//! The hot path is one delivery per frame per recipient, so recording must cost what the old
//! hand-made counters did: one relaxed atomic add, no allocation, no lookup. A labelled family
//! therefore has its series made once, here, at start (every frame type, error code, limit and
//! query is known in advance), and the hot path indexes an array of ready handles instead of
//! asking the family for a label set on every frame (that would hash and take a read lock).
//! Histograms take a small lock per observation, so they are only used per batch, per query or
//! per Redis round trip, never per frame or per recipient.
//!
//! Imports nothing of the server's: it is a leaf, so that any module may record into it.

use app::protocol::{ClientFrame, ErrorCode};
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Instant;

/// The `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// A label set of one label: a family's series are made once, with static names and values.
type Label = [(&'static str, &'static str); 1];

/// The limits whose refusals `tidings_rate_limited_total{limit=…}` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limit {
    /// A user's sends over `--send-rate`/`--send-burst` (WebSocket and bot API).
    Send,
    /// New WebSockets of a user over `--connects-per-minute`.
    Connect,
    /// A user's open WebSockets at `--max-connections-per-user`.
    ConnectionsPerUser,
    /// The node's open connections at `--max-connections`.
    ConnectionsPerNode,
    /// Sign-ups from one address over `--registrations-per-hour`.
    Registration,
    /// Connections closed (1008) for too many refused frames.
    BadFramesClose,
    /// Logins refused after too many failures (per account or per address).
    Login,
}

impl Limit {
    const ALL: [Limit; 7] = [
        Limit::Send,
        Limit::Connect,
        Limit::ConnectionsPerUser,
        Limit::ConnectionsPerNode,
        Limit::Registration,
        Limit::BadFramesClose,
        Limit::Login,
    ];

    fn label(self) -> &'static str {
        match self {
            Limit::Send => "send",
            Limit::Connect => "connect",
            Limit::ConnectionsPerUser => "connections_per_user",
            Limit::ConnectionsPerNode => "connections_per_node",
            Limit::Registration => "registration",
            Limit::BadFramesClose => "bad_frames_close",
            Limit::Login => "login",
        }
    }
}

/// The database work whose time `tidings_db_query_seconds{query=…}` measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    /// One commit batch's transaction (the committer), fsync included.
    Append,
    /// One replay page for a WebSocket's `sync`.
    Replay,
    /// One page of `/api/history`.
    History,
    /// One `/api/search`.
    Search,
}

impl Query {
    const ALL: [Query; 4] = [Query::Append, Query::Replay, Query::History, Query::Search];

    fn label(self) -> &'static str {
        match self {
            Query::Append => "append",
            Query::Replay => "replay",
            Query::History => "history",
            Query::Search => "search",
        }
    }
}

/// Client frame types, in the order of [`frame_index`], as the protocol names them.
const FRAME_TYPES: [&str; 8] = [
    "send", "edit", "delete", "react", "sync", "read", "typing", "ping",
];

fn frame_index(frame: &ClientFrame) -> usize {
    match frame {
        ClientFrame::Send { .. } => 0,
        ClientFrame::Edit { .. } => 1,
        ClientFrame::Delete { .. } => 2,
        ClientFrame::React { .. } => 3,
        ClientFrame::Sync { .. } => 4,
        ClientFrame::Read { .. } => 5,
        ClientFrame::Typing { .. } => 6,
        ClientFrame::Ping => 7,
    }
}

/// Error codes, in the order of [`error_index`], as the protocol names them.
const ERROR_CODES: [&str; 12] = [
    "bad_frame",
    "not_member",
    "too_large",
    "empty",
    "unknown_conversation",
    "rate_limited",
    "internal",
    "unknown_message",
    "message_deleted",
    "not_allowed",
    "too_many_reactions",
    "unknown_attachment",
];

/// Exhaustive on purpose: a new error code does not compile until it has its series here.
fn error_index(code: ErrorCode) -> usize {
    match code {
        ErrorCode::BadFrame => 0,
        ErrorCode::NotMember => 1,
        ErrorCode::TooLarge => 2,
        ErrorCode::Empty => 3,
        ErrorCode::UnknownConversation => 4,
        ErrorCode::RateLimited => 5,
        ErrorCode::Internal => 6,
        ErrorCode::UnknownMessage => 7,
        ErrorCode::MessageDeleted => 8,
        ErrorCode::NotAllowed => 9,
        ErrorCode::TooManyReactions => 10,
        ErrorCode::UnknownAttachment => 11,
    }
}

/// Seconds, from 100 µs to about 3.3 s: a commit's fsync, a query, a Redis round trip.
fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// What is open right now, read by the caller when Prometheus scrapes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Now {
    pub connections: usize,
    pub users_online: usize,
}

/// The process's metrics: the registry and a ready handle for every series. Built once by
/// `Server::start` and shared (in an `Arc`) by everything that records.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// WebSocket connections accepted.
    pub connections_opened: Counter,
    /// Frames queued to connections by fan-out (one per recipient connection).
    pub frames_queued: Counter,
    /// Connections closed for not keeping up (4001).
    pub slow_consumers: Counter,
    frames_in: [Counter; FRAME_TYPES.len()],
    errors: [Counter; ERROR_CODES.len()],
    refused: [Counter; Limit::ALL.len()],
    /// Messages (and edits, deletions, reactions) committed.
    pub messages_stored: Counter,
    /// Re-sent entries answered with their original ack.
    pub duplicate_sends: Counter,
    /// Transactions written by the committer.
    pub commit_batches: Counter,
    /// Batches that failed to commit (nothing of them stored).
    pub commit_failures: Counter,
    /// Entries per committed batch.
    pub commit_batch_size: Histogram,
    /// From taking a batch to handing it to fan-out: the transaction and the answers.
    pub commit_seconds: Histogram,
    queries: [Histogram; Query::ALL.len()],
    /// One pipeline of PUBLISHes to Redis (one round trip).
    pub redis_publish_seconds: Histogram,
    /// Pipelines Redis refused or did not answer (their frames reach other nodes by resync).
    pub redis_publish_failures: Counter,
    /// Times the Redis subscription came back after being lost.
    pub redis_reconnects: Counter,
    connections: Gauge,
    users_online: Gauge,
    resident_memory: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Registers every family and makes every series (at zero), so a scrape lists them all
    /// from the start and recording never creates one.
    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let mut counter = |name: &str, help: &str| {
            let counter = Counter::default();
            registry.register(name, help, counter.clone());
            counter
        };
        let connections_opened = counter(
            "tidings_connections_opened",
            "WebSocket connections accepted",
        );
        let frames_queued = counter(
            "tidings_frames_queued",
            "Frames queued to connections by fan-out (one per recipient connection)",
        );
        let slow_consumers = counter(
            "tidings_slow_consumers",
            "Connections closed for not keeping up",
        );
        let messages_stored = counter("tidings_messages_stored", "Messages committed");
        let duplicate_sends = counter(
            "tidings_duplicate_sends",
            "Re-sent messages answered with the original ack",
        );
        let commit_batches = counter(
            "tidings_commit_batches",
            "Transactions written by the committer",
        );
        let commit_failures = counter("tidings_commit_failures", "Batches that failed to commit");
        let redis_publish_failures = counter(
            "tidings_redis_publish_failures",
            "Pipelines of PUBLISHes that Redis refused or did not answer",
        );
        let redis_reconnects = counter(
            "tidings_redis_reconnects",
            "Times the Redis subscription came back after being lost",
        );

        let frames_in = labelled_counters(
            &mut registry,
            "tidings_frames_in",
            "Client frames read, by type",
            "type",
            FRAME_TYPES,
        );
        let errors = labelled_counters(
            &mut registry,
            "tidings_errors",
            "Error frames sent to clients, by code",
            "code",
            ERROR_CODES,
        );
        let refused = labelled_counters(
            &mut registry,
            "tidings_rate_limited",
            "Requests refused by a limit, by limit",
            "limit",
            Limit::ALL.map(Limit::label),
        );

        let commit_batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "tidings_commit_batch_size",
            "Entries per committed batch",
            commit_batch_size.clone(),
        );
        let commit_seconds = latency();
        registry.register(
            "tidings_commit_seconds",
            "Seconds from taking a batch to handing it to fan-out (transaction and answers)",
            commit_seconds.clone(),
        );
        let query_family =
            Family::<Label, Histogram, fn() -> Histogram>::new_with_constructor(latency);
        registry.register(
            "tidings_db_query_seconds",
            "Seconds the database took, by query",
            query_family.clone(),
        );
        let queries = Query::ALL.map(|q| query_family.get_or_create_owned(&[("query", q.label())]));
        let redis_publish_seconds = latency();
        registry.register(
            "tidings_redis_publish_seconds",
            "Seconds one pipeline of PUBLISHes to Redis took",
            redis_publish_seconds.clone(),
        );

        let mut gauge = |name: &str, help: &str| {
            let gauge = Gauge::default();
            registry.register(name, help, gauge.clone());
            gauge
        };
        let connections = gauge("tidings_connections", "Open WebSocket connections");
        let users_online = gauge("tidings_users_online", "Users with at least one connection");
        let resident_memory = gauge(
            "process_resident_memory_bytes",
            "Resident memory of the server process, in bytes",
        );

        Metrics {
            registry,
            connections_opened,
            frames_queued,
            slow_consumers,
            frames_in,
            errors,
            refused,
            messages_stored,
            duplicate_sends,
            commit_batches,
            commit_failures,
            commit_batch_size,
            commit_seconds,
            queries,
            redis_publish_seconds,
            redis_publish_failures,
            redis_reconnects,
            connections,
            users_online,
            resident_memory,
        }
    }

    /// A client frame was read (and decoded).
    pub fn frame_in(&self, frame: &ClientFrame) {
        self.frames_in[frame_index(frame)].inc();
    }

    /// An error frame with `code` was sent to a client.
    pub fn error_sent(&self, code: ErrorCode) {
        self.errors[error_index(code)].inc();
    }

    /// `limit` refused something.
    pub fn refused(&self, limit: Limit) {
        self.refused[limit as usize].inc();
    }

    /// Records how long `query` took since `started`.
    pub fn query_took(&self, query: Query, started: Instant) {
        self.queries[query as usize].observe(started.elapsed().as_secs_f64());
    }

    /// The text for `GET /metrics`: reads what is measured at scrape time (`now`, the
    /// process's memory), then encodes every family.
    pub fn render(&self, now: Now) -> String {
        self.connections.set(now.connections as i64);
        self.users_online.set(now.users_online as i64);
        self.resident_memory
            .set(resident_memory_bytes().map_or(0, |b| b as i64));
        let mut text = String::with_capacity(8 * 1024);
        prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// Registers counter family `name` with one series per value of `label`, and returns their
/// handles in the order of `values`.
fn labelled_counters<const N: usize>(
    registry: &mut Registry,
    name: &str,
    help: &str,
    label: &'static str,
    values: [&'static str; N],
) -> [Counter; N] {
    let family = Family::<Label, Counter>::default();
    registry.register(name, help, family.clone());
    values.map(|value| family.get_or_create_owned(&[(label, value)]))
}

/// The process's resident set size, from `/proc/self/status` (`VmRSS`, in KiB: unlike
/// `/proc/self/statm` it needs no page size). `None` where there is no procfs.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the series that `line_start` (name and labels) begins.
    fn value(text: &str, line_start: &str) -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
            .parse()
            .unwrap()
    }

    #[test]
    fn error_codes_are_labelled_as_the_protocol_names_them() {
        let codes = [
            ErrorCode::BadFrame,
            ErrorCode::NotMember,
            ErrorCode::TooLarge,
            ErrorCode::Empty,
            ErrorCode::UnknownConversation,
            ErrorCode::RateLimited,
            ErrorCode::Internal,
            ErrorCode::UnknownMessage,
            ErrorCode::MessageDeleted,
            ErrorCode::NotAllowed,
            ErrorCode::TooManyReactions,
            ErrorCode::UnknownAttachment,
        ];
        for code in codes {
            let wire = serde_json::to_value(code).unwrap();
            assert_eq!(wire, ERROR_CODES[error_index(code)], "{code:?}");
        }
    }

    #[test]
    fn frame_types_are_labelled_as_the_protocol_names_them() {
        let frames = [
            r#"{"type":"send","conv":1,"client_id":"a","body":"x"}"#,
            r#"{"type":"edit","conv":1,"client_id":"a","target":1,"body":"x"}"#,
            r#"{"type":"delete","conv":1,"client_id":"a","target":1}"#,
            r#"{"type":"react","conv":1,"client_id":"a","target":1,"emoji":"👍","on":true}"#,
            r#"{"type":"sync","cursors":{}}"#,
            r#"{"type":"read","conv":1,"seq":1}"#,
            r#"{"type":"typing","conv":1}"#,
            r#"{"type":"ping"}"#,
        ];
        for text in frames {
            let frame = ClientFrame::decode(text).unwrap();
            let wire: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(wire["type"], FRAME_TYPES[frame_index(&frame)]);
        }
    }

    #[test]
    fn every_series_is_there_from_the_start_and_counts() {
        let metrics = Metrics::new();
        metrics.refused(Limit::Login);
        metrics.error_sent(ErrorCode::NotMember);
        metrics.frame_in(&ClientFrame::Ping);
        metrics.commit_batch_size.observe(3.0);
        metrics.query_took(Query::Search, Instant::now());
        let text = metrics.render(Now {
            connections: 2,
            users_online: 1,
        });
        assert_eq!(
            value(&text, "tidings_rate_limited_total{limit=\"login\"}"),
            1.0
        );
        assert_eq!(
            value(&text, "tidings_rate_limited_total{limit=\"send\"}"),
            0.0
        );
        assert_eq!(
            value(&text, "tidings_errors_total{code=\"not_member\"}"),
            1.0
        );
        assert_eq!(value(&text, "tidings_frames_in_total{type=\"ping\"}"), 1.0);
        assert_eq!(value(&text, "tidings_frames_in_total{type=\"send\"}"), 0.0);
        assert_eq!(value(&text, "tidings_commit_batch_size_count"), 1.0);
        assert_eq!(
            value(&text, "tidings_commit_batch_size_bucket{le=\"4\"}"),
            1.0
        );
        assert_eq!(
            value(&text, "tidings_db_query_seconds_count{query=\"search\"}"),
            1.0
        );
        assert_eq!(value(&text, "tidings_connections"), 2.0);
        assert_eq!(value(&text, "tidings_messages_stored_total"), 0.0);
        assert!(value(&text, "process_resident_memory_bytes") > 0.0);
    }
}
