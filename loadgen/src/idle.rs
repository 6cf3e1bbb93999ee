//! Scenario d: what idle users cost in server memory.
//!
//! 1. read the server's RSS as started (`rss_start`);
//! 2. register `--conns` accounts, let the server settle, read RSS again (`rss_registered`):
//!    the cost of sign-ups (password hashing buffers the allocator kept, account tables…);
//! 3. open one authenticated WebSocket per account, nobody sends anything, settle, read RSS
//!    (`rss_connected`). RSS per connection = (`rss_connected` − `rss_registered`) / N.
//!
//! The connections are kept alive by tasks that only read (answering pings) until the end.
//! RSS is summed over every `--pid` given (normally just the one server process).

use crate::procfs;
use crate::setup;
use crate::target::Event;
use crate::Common;
use anyhow::{bail, Result};
use clap::Args;
use futures::{SinkExt, StreamExt};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio_tungstenite::tungstenite::Message;

#[derive(Args, Clone, Debug)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: Common,
    /// Accounts, and connections (one per account).
    #[arg(long, default_value_t = 10_000)]
    pub conns: usize,
    /// Seconds to let the server settle before each memory reading.
    #[arg(long, default_value_t = 3.0)]
    pub settle: f64,
}

fn rss_sum(pids: &[(String, u32)]) -> u64 {
    procfs::rss_all(pids).iter().map(|(_, k)| k).sum()
}

pub async fn run(args: IdleArgs) -> Result<()> {
    let c = &args.common;
    if c.pids.is_empty() {
        bail!("idle needs --pid LABEL=PID of the server to read its memory");
    }
    if procfs::fd_limit() < args.conns as u64 + 64 {
        eprintln!(
            "warning: open-file limit {} is below {} connections",
            procfs::fd_limit(),
            args.conns
        );
    }
    let settle = Duration::from_secs_f64(args.settle);
    let rss_start = rss_sum(&c.pids);

    let http = setup::http_client();
    let tag = setup::run_tag();
    let started = Instant::now();
    let accounts = setup::register_all(
        c.server,
        &http,
        &c.urls,
        &tag,
        args.conns,
        c.register_concurrency,
    )
    .await?;
    let register_s = started.elapsed().as_secs_f64();
    drop(http); // close the keep-alive connections before measuring sockets
    tokio::time::sleep(settle).await;
    let rss_registered = rss_sum(&c.pids);

    // One idle connection per account.
    let gate = Arc::new(Semaphore::new(c.connect_concurrency.max(1)));
    let (ready_tx, mut ready) = mpsc::unbounded_channel::<Result<(), String>>();
    let started = Instant::now();
    for (i, account) in accounts.into_iter().enumerate() {
        let (kind, base) = (c.server, c.urls[i % c.urls.len()].clone());
        let (gate, ready_tx) = (gate.clone(), ready_tx.clone());
        tokio::spawn(async move {
            let ws = {
                let _permit = gate.acquire().await;
                kind.connect(&base, &account, None).await
            };
            let ws = match ws {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let (mut sink, mut stream) = ws.split();
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(text) = frame {
                    if let Event::Reply(reply) = kind.parse(&text, account.user_id) {
                        let _ = sink.send(Message::text(reply)).await;
                    }
                }
            }
        });
    }
    for _ in 0..args.conns {
        match ready.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => bail!("connect: {e}"),
            None => bail!("connection tasks ended"),
        }
    }
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let rss_connected = rss_sum(&c.pids);
    let per_conn_kib = (rss_connected as f64 - rss_registered as f64) / args.conns as f64;
    let per_account_kib = (rss_registered as f64 - rss_start as f64) / args.conns as f64;

    let mib = |k: u64| k as f64 / 1024.0;
    eprintln!(
        "── {} idle: {} accounts, {} connections ──",
        c.server.name(),
        args.conns,
        args.conns
    );
    eprintln!("  RSS at start          {:>8.1} MiB", mib(rss_start));
    eprintln!(
        "  after registering     {:>8.1} MiB  ({per_account_kib:.1} KiB per account; {register_s:.1} s)",
        mib(rss_registered)
    );
    eprintln!(
        "  with connections      {:>8.1} MiB  ({per_conn_kib:.1} KiB per connection; {connect_s:.1} s to connect)",
        mib(rss_connected)
    );
    let mut json = serde_json::json!({
        "kind": "idle",
        "server": c.server.name(),
        "nodes": c.urls.len(),
        "conns": args.conns,
        "rss_start_kib": rss_start,
        "rss_registered_kib": rss_registered,
        "rss_connected_kib": rss_connected,
        "per_conn_kib": per_conn_kib,
        "per_account_kib": per_account_kib,
        "register_s": register_s,
        "connect_s": connect_s,
    });
    let obj = json.as_object_mut().expect("an object");
    for (k, v) in &c.meta {
        obj.insert(k.clone(), v.clone().into());
    }
    println!("RESULT {json}");
    Ok(())
}
