//! `tidings events tail --group NAME`: a consumer of the event stream in a Redis consumer
//! group. Prints each event as one JSON line on standard output, then acknowledges it (`XACK`):
//! at least once — an event printed just before the process dies is printed again after the
//! restart, never skipped.
//!
//! On start it first re-reads its own pending entries (delivered to this consumer name, never
//! acknowledged), then takes over entries another consumer of the group left pending for
//! `--claim-idle-secs` (`XAUTOCLAIM`: a consumer that died), then reads new entries. The group
//! remembers how far it got, so a restart continues where it stopped.

use crate::relay::stream_key;
use crate::stream::{autoclaim_reply, read_reply};
use anyhow::Context;
use clap::{Args, Subcommand};
use redis::aio::ConnectionManager;
use std::io::Write;
use std::time::{Duration, Instant};

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Print the event stream as JSON lines, as a consumer of a Redis consumer group.
    Tail(TailArgs),
}

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The consumer group: each group reads every event once, at its own pace.
    #[arg(long)]
    pub group: String,
    /// A new group starts at the oldest event the stream holds (default: only new events). An
    /// existing group always continues where it stopped.
    #[arg(long)]
    pub from_start: bool,
    /// This consumer's name in the group; restart with the same name to re-read what it had
    /// been given but not acknowledged.
    #[arg(long, default_value = "tail")]
    pub consumer: String,
    /// Take over entries another consumer has left unacknowledged this long (it died).
    #[arg(long, default_value_t = 30)]
    pub claim_idle_secs: u64,
    /// Stop after printing this many events (for scripts).
    #[arg(long)]
    pub count: Option<u64>,
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: String,
    #[arg(long, env = "TIDINGS_REDIS_PREFIX", default_value = "tidings")]
    pub redis_prefix: String,
}

/// Entries read per call.
const READ: usize = 100;
/// How long a read waits for new entries before the loop looks for abandoned ones again.
const BLOCK: Duration = Duration::from_secs(1);

pub async fn run(command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::Tail(args) => tail(args).await,
    }
}

async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let client = redis::Client::open(args.redis_url.as_str())
        .with_context(|| format!("REDIS_URL {:?} is not a Redis URL", args.redis_url))?;
    // Replies to a blocking read take up to BLOCK (1 s): the default 0.5 s timeout would cut
    // every idle read short.
    let settings = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(5)))
        .set_response_timeout(Some(BLOCK + Duration::from_secs(5)));
    let mut redis = ConnectionManager::new_with_config(client, settings)
        .await
        .with_context(|| format!("connecting to Redis at {} (is it running?)", args.redis_url))?;
    let stream = stream_key(&args.redis_prefix);
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg(&args.group)
        .arg(if args.from_start { "0" } else { "$" })
        .arg("MKSTREAM")
        .query_async(&mut redis)
        .await;
    if let Err(e) = created {
        if !e.to_string().contains("BUSYGROUP") {
            return Err(e).context("creating the consumer group");
        }
    }
    let mut printer = Printer {
        out: std::io::stdout().lock(),
        left: args.count,
    };
    // 1. What this consumer was given before and never acknowledged.
    loop {
        let reply: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&args.group)
            .arg(&args.consumer)
            .arg("COUNT")
            .arg(READ)
            .arg("STREAMS")
            .arg(&stream)
            .arg("0")
            .query_async(&mut redis)
            .await?;
        let entries = read_reply(&reply);
        if entries.is_empty() {
            break;
        }
        if !printer
            .print_and_ack(&mut redis, &stream, &args.group, entries)
            .await?
        {
            return Ok(());
        }
    }
    let claim_every = Duration::from_secs(args.claim_idle_secs.clamp(1, 60));
    let mut last_claim: Option<Instant> = None;
    loop {
        // 2. What dead consumers left behind.
        if last_claim.is_none_or(|t| t.elapsed() >= claim_every) {
            last_claim = Some(Instant::now());
            let mut cursor = "0-0".to_owned();
            loop {
                let reply: redis::Value = redis::cmd("XAUTOCLAIM")
                    .arg(&stream)
                    .arg(&args.group)
                    .arg(&args.consumer)
                    .arg(args.claim_idle_secs * 1000)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(READ)
                    .query_async(&mut redis)
                    .await?;
                let (next, entries) = autoclaim_reply(&reply);
                if !printer
                    .print_and_ack(&mut redis, &stream, &args.group, entries)
                    .await?
                {
                    return Ok(());
                }
                if next == "0-0" {
                    break;
                }
                cursor = next;
            }
        }
        // 3. New entries.
        let reply: redis::Value = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(&args.group)
            .arg(&args.consumer)
            .arg("COUNT")
            .arg(READ)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">")
            .query_async(&mut redis)
            .await?;
        let entries = read_reply(&reply);
        if !printer
            .print_and_ack(&mut redis, &stream, &args.group, entries)
            .await?
        {
            return Ok(());
        }
    }
}

struct Printer<W: Write> {
    out: W,
    /// Events still to print before stopping (`--count`).
    left: Option<u64>,
}

impl<W: Write> Printer<W> {
    /// Prints the entries' events, flushes, then acknowledges them; false once `--count` is
    /// reached (the entries past it are left pending for the next run).
    async fn print_and_ack(
        &mut self,
        redis: &mut ConnectionManager,
        stream: &str,
        group: &str,
        entries: Vec<(String, Option<String>)>,
    ) -> anyhow::Result<bool> {
        let mut done = Vec::with_capacity(entries.len());
        for (id, event) in entries {
            if self.left == Some(0) {
                break;
            }
            // An entry without an event field is not ours to print, only to acknowledge.
            if let Some(event) = event {
                writeln!(self.out, "{event}")?;
                if let Some(left) = &mut self.left {
                    *left -= 1;
                }
            }
            done.push(id);
        }
        self.out.flush()?;
        if !done.is_empty() {
            let mut ack = redis::cmd("XACK");
            ack.arg(stream).arg(group);
            for id in &done {
                ack.arg(id);
            }
            ack.query_async::<i64>(redis).await?;
        }
        Ok(self.left != Some(0))
    }
}
