//! Configuration: every setting is a command-line flag with an environment variable behind it
//! (`tidings --help` lists them). Parsing only; nothing here opens files or sockets.

use crate::store::Durability;
use clap::Parser;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Tidings: a real-time chat server. With no settings it runs everything in one process on a
/// SQLite file in the working directory.
#[derive(Clone, Debug, Parser)]
#[command(name = "tidings", version, about, long_about = None)]
pub struct Config {
    /// Address to listen on (LEPTOS_SITE_ADDR is honoured too, as set by cargo-leptos).
    #[arg(long, env = "TIDINGS_ADDR")]
    pub addr: Option<SocketAddr>,

    /// Where history lives: sqlite://PATH (created if missing) or
    /// mysql://USER:PASSWORD@HOST:PORT/DATABASE (MySQL or MariaDB; the database must exist).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tidings.db")]
    pub database_url: String,

    /// Redis for a cluster: fan-out between nodes (e.g. redis://127.0.0.1:6379). Without it
    /// this process is the whole service.
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,

    /// Prefix of every Redis channel and key, so several clusters (or test runs) share a Redis.
    #[arg(long, env = "TIDINGS_REDIS_PREFIX", default_value = "tidings")]
    pub redis_prefix: String,

    /// Seconds a node's word that a user is connected holds (cluster presence); nodes repeat it
    /// every third of this, so a killed node's users go offline within it.
    #[arg(long, env = "TIDINGS_PRESENCE_TTL_SECS", default_value_t = 30.0)]
    pub presence_ttl_secs: f64,

    /// This node's name in logs, health and the bus (default: random).
    #[arg(long, env = "TIDINGS_NODE_ID")]
    pub node_id: Option<String>,

    /// Folder with the built site (pkg/, favicon). Defaults to LEPTOS_SITE_ROOT or target/site.
    #[arg(long, env = "TIDINGS_SITE_ROOT")]
    pub site_root: Option<String>,

    /// Seconds between the server's WebSocket pings.
    #[arg(long, env = "TIDINGS_PING_INTERVAL_SECS", default_value_t = 20.0)]
    pub ping_interval_secs: f64,

    /// Seconds of silence after which a WebSocket is closed.
    #[arg(long, env = "TIDINGS_IDLE_TIMEOUT_SECS", default_value_t = 60.0)]
    pub idle_timeout_secs: f64,

    /// Frames a connection may have queued before it is closed as a slow consumer.
    #[arg(long, env = "TIDINGS_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub outbound_queue: usize,

    /// Most messages written in one transaction when sends pile up (group commit).
    #[arg(long, env = "TIDINGS_MAX_BATCH", default_value_t = 256)]
    pub max_batch: usize,

    /// Group commit window, in microseconds: while sends keep arriving, the committer waits up
    /// to this long after a batch's first message for more to join it, so that a stream of sends
    /// costs one commit (and one disk sync) per window instead of one per message. A lone send
    /// after a quiet spell is committed at once. Default: 1000 where every commit is synced to
    /// disk (SQLite with `--durability full`, MySQL/MariaDB), 0 with `--durability normal`.
    #[arg(long, env = "TIDINGS_COMMIT_DELAY_US")]
    pub commit_delay_us: Option<u64>,

    /// Mark the session cookie `Secure` (set this when serving over HTTPS).
    #[arg(long, env = "TIDINGS_SECURE_COOKIES", default_value_t = false)]
    pub secure_cookies: bool,

    /// Extra origins allowed to open /ws, comma separated (e.g. http://localhost:8080 for trunk).
    /// The server's own origin is always allowed.
    #[arg(long, env = "TIDINGS_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// Seconds a session lasts: the session cookie's lifetime. A session in use is extended
    /// (sliding expiry) once less than half of this is left, so only unused sessions expire.
    #[arg(long, env = "TIDINGS_SESSION_TTL_SECS", default_value_t = 30.0 * 24.0 * 3600.0)]
    pub session_ttl_secs: f64,

    /// Login attempts per account (and per address ×5) per 5 minutes before logins are refused;
    /// right and wrong passwords alike (see `limits::Limits::allow_login`).
    #[arg(long, env = "TIDINGS_LOGIN_ATTEMPTS", default_value_t = 10)]
    pub login_attempts: u32,

    /// Threads that hash and check passwords (argon2, ~19 MiB each while working); 0 means one
    /// per core.
    #[arg(long, env = "TIDINGS_HASH_THREADS", default_value_t = 0)]
    pub hash_threads: usize,

    /// Password checks that may wait for a hashing thread; beyond this, register and login
    /// answer `rate_limited` at once.
    #[arg(long, env = "TIDINGS_HASH_QUEUE", default_value_t = 64)]
    pub hash_queue: usize,

    /// Log filter, in RUST_LOG syntax.
    #[arg(
        long,
        env = "RUST_LOG",
        default_value = "info,sqlx=warn,tower_http=info"
    )]
    pub log: String,

    /// How log lines are written (to stdout): `text` for people, `json` for log collectors
    /// (one JSON object per line: `timestamp`, `level`, `target`, `fields` with the message and
    /// its key-value pairs, and `span`/`spans` when inside one).
    #[arg(long, env = "TIDINGS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// When a message counts as stored (SQLite): `full` syncs every commit to disk before the
    /// ack (survives power loss; one sync per group-committed batch), `normal` syncs only at
    /// checkpoints (survives the process being killed, not an OS crash). MySQL/MariaDB: set by
    /// the database server (innodb_flush_log_at_trx_commit).
    #[arg(long, env = "TIDINGS_DURABILITY", value_enum, default_value_t = Durability::Full)]
    pub durability: Durability,

    /// Most open connections (HTTP and WebSocket together) this node holds; a connection beyond
    /// it is closed as soon as it is accepted.
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS", default_value_t = 50_000)]
    pub max_connections: usize,

    /// Most WebSockets one user may have open on this node; a further upgrade answers 429.
    #[arg(long, env = "TIDINGS_MAX_CONNECTIONS_PER_USER", default_value_t = 16)]
    pub max_connections_per_user: usize,

    /// New WebSockets one user may open per minute on this node (a burst of as many, refilled
    /// evenly); a further upgrade answers 429.
    #[arg(long, env = "TIDINGS_CONNECTS_PER_MINUTE", default_value_t = 30)]
    pub connects_per_minute: u32,

    /// Seconds a client has to send a request's headers; also how long an idle keep-alive HTTP
    /// connection stays open. A connection that sends part of a request and goes silent is
    /// closed after this.
    #[arg(long, env = "TIDINGS_HEADER_TIMEOUT_SECS", default_value_t = 10.0)]
    pub header_timeout_secs: f64,

    /// Messages one user may send per second on this node, sustained (all their connections
    /// together); beyond it a `send` is answered `rate_limited` and not stored.
    #[arg(long, env = "TIDINGS_SEND_RATE", default_value_t = 20)]
    pub send_rate: u32,

    /// Messages one user may send at once before the per-second rate applies.
    #[arg(long, env = "TIDINGS_SEND_BURST", default_value_t = 40)]
    pub send_burst: u32,

    /// Refused frames (unreadable, too large, not yours) one connection may send per minute;
    /// beyond it the connection is closed with 1008.
    #[arg(long, env = "TIDINGS_BAD_FRAMES_PER_MINUTE", default_value_t = 30)]
    pub bad_frames_per_minute: u32,

    /// Accounts one address may register per hour (a burst of as many, refilled evenly).
    #[arg(long, env = "TIDINGS_REGISTRATIONS_PER_HOUR", default_value_t = 30)]
    pub registrations_per_hour: u32,

    /// Most entries the Redis Stream of events (`<prefix>:events`) keeps (`XADD MAXLEN ~`):
    /// older ones are trimmed; the outbox in the database keeps them all.
    #[arg(long, env = "TIDINGS_EVENTS_MAXLEN", default_value_t = 1_000_000)]
    pub events_maxlen: u64,

    /// Milliseconds between the event relay's rounds (outbox to Redis Stream): the most an
    /// event waits before consumers can read it.
    #[arg(long, env = "TIDINGS_RELAY_INTERVAL_MS", default_value_t = 100)]
    pub relay_interval_ms: u64,

    /// Proxies (IP addresses, comma separated) whose `X-Forwarded-For` is believed. A request
    /// from anyone else is counted under its own peer address, whatever that header says.
    #[arg(long, env = "TIDINGS_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<IpAddr>,

    /// Largest attachment one upload may carry, in bytes; a bigger one is refused with 413 and
    /// nothing is stored. Each upload under way holds at most this much in memory.
    #[arg(long, env = "TIDINGS_MAX_UPLOAD_BYTES", default_value_t = app::model::DEFAULT_MAX_UPLOAD_BYTES)]
    pub max_upload_bytes: u64,
}

/// The shape of log lines (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    pub fn ping_interval(&self) -> Duration {
        Duration::from_secs_f64(self.ping_interval_secs.max(0.05))
    }

    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.idle_timeout_secs.max(0.1))
    }

    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs_f64(self.session_ttl_secs.max(1.0))
    }

    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.header_timeout_secs.max(0.1))
    }

    /// How many password-hashing threads to run.
    pub fn hash_threads(&self) -> usize {
        match self.hash_threads {
            0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
            n => n,
        }
    }

    /// Defaults for an embedded server on `database_url` (used by tests and tools).
    pub fn with_database(database_url: &str) -> Config {
        Config::parse_from(["tidings", "--database-url", database_url])
    }
}
