//! Scenario e: does reading history stay fast however long the conversation? (Tidings only: the
//! Socket.IO peer keeps no history.)
//!
//! 1. **Fill**: one user sends `--messages` messages into a two-member group through the real
//!    WebSocket, pipelined (up to `--window` unacknowledged), so the server's group commit
//!    writes them in large batches. The fill rate is reported too.
//! 2. **Read**: `POST /api/history` `--reps` times for the newest page (no `before_seq`) and
//!    `--reps` times for the oldest page (`before_seq` = limit + 1, i.e. a page `--messages`
//!    messages back), one request at a time on a kept-alive connection; p50/p95/p99/max of the
//!    whole request (answer body included). At most `--budget` seconds per page kind.
//! 3. **Search**: `POST /api/search` `--search-reps` times for each of three kinds of query over
//!    the filled conversation (see `search`: its messages are made of Zipf-distributed words for
//!    that), same percentiles, same budget.

use crate::search;
use crate::setup;
use crate::stats::Percentiles;
use crate::target::{Account, Event, Kind};
use crate::tidings;
use crate::Common;
use anyhow::{bail, Context, Result};
use clap::Args;
use futures::{SinkExt, StreamExt};
use std::time::Instant;
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Clone, Debug)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub common: Common,
    /// Messages in the conversation.
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u32,
    /// Unacknowledged sends in flight during the fill. Acks share the server's bounded
    /// per-connection queue (1,024 frames by default) with everything else, so keep this well
    /// below it or the server closes the connection as a slow consumer.
    #[arg(long, default_value_t = 512)]
    pub window: u32,
    /// Requests per page kind.
    #[arg(long, default_value_t = 1000)]
    pub reps: usize,
    /// Most seconds of requests per page kind: a page that takes seconds ends the repetitions
    /// early (after at least 10) rather than the benchmark running for hours.
    #[arg(long, default_value_t = 120.0)]
    pub budget: f64,
    /// Messages per history page (1–100).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Characters per message (words of the search vocabulary, see `search`).
    #[arg(long, default_value_t = 100)]
    pub body: usize,
    /// Searches per kind of query (0: no search timing).
    #[arg(long, default_value_t = 1000)]
    pub search_reps: usize,
}

pub async fn run(args: HistoryArgs) -> Result<()> {
    let c = &args.common;
    if c.server != Kind::Tidings {
        bail!("history is a Tidings scenario (the Socket.IO peer keeps no history)");
    }
    let base = &c.urls[0];
    let http = setup::http_client();
    let tag = setup::run_tag();
    let accounts = setup::register_all(c.server, &http, &c.urls[..1], &tag, 2, 2).await?;
    let (me, other) = (&accounts[0], &accounts[1]);
    let conv = tidings::create_group(&http, base, me, "History", &[&other.username]).await?;

    // Fill, pipelined on one connection. (More connections of the same user, or of other
    // members, would not help: every connected member receives every message.)
    let started = Instant::now();
    fill(base, me, conv, &args).await?;
    let fill_s = started.elapsed().as_secs_f64();

    // Read: the newest page, then the oldest.
    let newest = time_page(&http, base, me, conv, None, &args).await?;
    let deep = time_page(&http, base, me, conv, Some(args.limit as i64 + 1), &args).await?;
    let searched = if args.search_reps > 0 {
        Some(search::time_searches(&http, base, me, args.search_reps, args.budget).await?)
    } else {
        None
    };

    eprintln!(
        "── tidings history: {} messages in one conversation ──",
        args.messages
    );
    eprintln!(
        "  fill          {:.1} s = {:.0} msg/s (pipelined, window {})",
        fill_s,
        args.messages as f64 / fill_s,
        args.window
    );
    let show = |p: &Percentiles| {
        format!(
            "p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2} ms ({} requests)",
            p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms, p.count
        )
    };
    eprintln!("  newest page   {}", show(&newest));
    eprintln!("  oldest page   {}", show(&deep));
    if let Some(s) = &searched {
        eprintln!("  search: rare word  {}", show(&s.rare));
        eprintln!("  search: common     {}", show(&s.common));
        eprintln!("  search: two words  {}", show(&s.two_words));
    }
    let mut json = serde_json::json!({
        "kind": "history",
        "server": c.server.name(),
        "messages": args.messages,
        "limit": args.limit,
        "fill_s": fill_s,
        "fill_msgs_per_s": args.messages as f64 / fill_s,
        "newest": newest,
        "deep": deep,
        "search": searched,
    });
    let obj = json.as_object_mut().expect("an object");
    for (k, v) in &c.meta {
        obj.insert(k.clone(), v.clone().into());
    }
    println!("RESULT {json}");
    Ok(())
}

/// Sends `--messages` messages on one connection, at most `--window` unacknowledged.
async fn fill(base: &str, me: &Account, conv: i64, args: &HistoryArgs) -> Result<()> {
    let ws = tidings::connect(base, me).await?;
    let (mut sink, mut stream) = ws.split();
    let corpus = search::Corpus::default();
    let (count, started) = (args.messages, Instant::now());
    let (mut sent, mut acked) = (0u32, 0u32);
    let mut next_report = count / 10;
    while acked < count {
        let mut batch = 0;
        while sent < count && sent - acked < args.window && batch < 256 {
            let frame = tidings::send_frame(conv, 1, sent, &corpus.body(sent, args.body));
            sink.feed(Message::text(frame)).await?;
            sent += 1;
            batch += 1;
        }
        if batch > 0 {
            sink.flush().await?;
        }
        let frame = stream
            .next()
            .await
            .context("the server closed the fill connection")??;
        match frame {
            Message::Text(text) => match tidings::parse(&text, me.user_id) {
                Event::Ack { .. } => acked += 1,
                Event::Refused => bail!("the server refused a send: {text}"),
                _ => {}
            },
            Message::Close(close) => bail!("the server closed the fill connection: {close:?}"),
            _ => {}
        }
        if acked >= next_report && next_report > 0 {
            eprintln!(
                "  filled {acked} of {count} ({:.0} msg/s)",
                acked as f64 / started.elapsed().as_secs_f64()
            );
            next_report += count / 10;
        }
    }
    Ok(())
}

/// Times `--reps` requests for one page (after a few untimed ones), checking the first answer.
async fn time_page(
    http: &reqwest::Client,
    base: &str,
    me: &Account,
    conv: i64,
    before_seq: Option<i64>,
    args: &HistoryArgs,
) -> Result<Percentiles> {
    let mut form = vec![
        ("conv", conv.to_string()),
        ("limit", args.limit.to_string()),
    ];
    if let Some(before) = before_seq {
        form.push(("before_seq", before.to_string()));
    }
    let fetch = || async {
        let res = http
            .post(format!("{base}/api/history"))
            .header("cookie", &me.credential)
            .form(&form)
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        if !status.is_success() {
            bail!("history: {status}: {text}");
        }
        Ok::<String, anyhow::Error>(text)
    };
    #[derive(serde::Deserialize)]
    struct Page {
        messages: Vec<serde::de::IgnoredAny>,
        // A group's log starts with its `created` event, which the oldest page lists too.
        #[serde(default)]
        events: Vec<serde::de::IgnoredAny>,
    }
    let first: Page = serde_json::from_str(&fetch().await?)?;
    let entries = first.messages.len() + first.events.len();
    if entries != args.limit as usize {
        bail!(
            "history page has {entries} entries, expected {}",
            args.limit
        );
    }
    for _ in 0..10 {
        fetch().await?;
    }
    let mut micros = Vec::with_capacity(args.reps);
    let started = Instant::now();
    for _ in 0..args.reps {
        let t = Instant::now();
        fetch().await?;
        micros.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if micros.len() >= 10 && started.elapsed().as_secs_f64() > args.budget {
            eprintln!(
                "  time budget spent after {} of {} requests",
                micros.len(),
                args.reps
            );
            break;
        }
    }
    Ok(Percentiles::of(&mut micros))
}
