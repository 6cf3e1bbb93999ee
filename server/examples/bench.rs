//! Throughput and latency of one node, measured over real sockets.
//!
//! Starts the server in-process on a fresh SQLite file, registers `--members` users in one group,
//! connects them all, and has `--senders` of them send `--messages` messages each (pipelined, at
//! most `--window` unacknowledged per sender). Prints sends per second (ack throughput), fan-out
//! deliveries per second, ack latency percentiles, commit batches, and the process' memory.
//!
//! Run it optimized: `cargo run --release -p server --example bench -- --members 50 --senders 10`.

use app::model::UserRef;
use app::protocol::{ClientFrame, ServerFrame};
use futures::{SinkExt, StreamExt};
use server::config::Config;
use server::Server;
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as WsMessage;

struct Args {
    members: usize,
    senders: usize,
    messages: usize,
    window: usize,
    body: usize,
}

fn parse_args() -> Args {
    let mut args = Args {
        members: 20,
        senders: 5,
        messages: 2000,
        window: 64,
        body: 100,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value: usize = it
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{flag} needs a number"));
        match flag.as_str() {
            "--members" => args.members = value,
            "--senders" => args.senders = value,
            "--messages" => args.messages = value,
            "--window" => args.window = value,
            "--body" => args.body = value,
            other => panic!("unknown flag {other}; see the header of examples/bench.rs"),
        }
    }
    args.senders = args.senders.min(args.members);
    args
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(str::to_owned)
        })
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args();
    let dir = tempfile::tempdir()?;
    let mut config = Config::with_database(&format!(
        "sqlite://{}",
        dir.path().join("bench.db").display()
    ));
    config.addr = Some("127.0.0.1:0".parse()?);
    config.log = "warn".into();
    config.login_attempts = 1_000_000;
    let server = Server::start(config).await?;
    let addr = server.addr;
    let http = reqwest::Client::new();

    // Accounts and one group with everyone in it.
    let mut users: Vec<(UserRef, String)> = Vec::new();
    for i in 0..args.members {
        let res = http
            .post(format!("http://{addr}/api/register"))
            .form(&[
                ("username", format!("user{i}")),
                ("password", "bench password".into()),
            ])
            .send()
            .await?;
        let cookie = res.headers()["set-cookie"]
            .to_str()?
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        users.push((res.json().await?, cookie));
    }
    let names: Vec<_> = users
        .iter()
        .skip(1)
        .map(|(u, _)| u.username.clone())
        .collect();
    let group: app::model::Conversation = http
        .post(format!("http://{addr}/api/create_group"))
        .header("cookie", &users[0].1)
        .form(&[("title", "Bench".to_owned()), ("members", names.join(","))])
        .send()
        .await?
        .json()
        .await?;

    let total_sent = args.senders * args.messages;
    let expected_deliveries = total_sent * args.members;
    let rss_before = rss_kib();
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (_, cookie)) in users.iter().enumerate() {
        let mut req = format!("ws://{addr}/ws").into_client_request()?;
        req.headers_mut().insert("cookie", cookie.parse()?);
        let (socket, _) = tokio_tungstenite::connect_async(req).await?;
        let sends = if i < args.senders { args.messages } else { 0 };
        let (conv, window, body) = (group.id, args.window, "x".repeat(args.body));
        tasks.push(tokio::spawn(async move {
            let (mut tx, mut rx) = socket.split();
            let mut sent_at: HashMap<String, Instant> = HashMap::new();
            let mut latencies = Vec::with_capacity(sends);
            let (mut next, mut delivered) = (0, 0usize);
            let want = total_sent;
            while delivered < want || latencies.len() < sends {
                while next < sends && sent_at.len() < window {
                    let client_id = format!("{i}-{next}");
                    let frame = ClientFrame::Send {
                        conv,
                        client_id: client_id.clone(),
                        body: body.clone(),
                    };
                    tx.send(WsMessage::Text(frame.to_json().into()))
                        .await
                        .expect("send");
                    sent_at.insert(client_id, Instant::now());
                    next += 1;
                }
                let text = match rx.next().await {
                    Some(Ok(WsMessage::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    // Closed (e.g. as a slow consumer): report what this client saw.
                    _ => {
                        eprintln!("client {i} was disconnected after {delivered} deliveries");
                        break;
                    }
                };
                match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(ServerFrame::Ack { client_id, .. }) => {
                        if let Some(at) = sent_at.remove(&client_id) {
                            latencies.push(at.elapsed());
                        }
                    }
                    Ok(ServerFrame::Message(_)) => delivered += 1,
                    _ => {}
                }
            }
            latencies
        }));
    }
    let mut latencies = Vec::with_capacity(total_sent);
    for t in tasks {
        latencies.extend(t.await?);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len() - 1))
            .copied()
            .unwrap_or(Duration::ZERO)
    };
    let batches = server.state.committer.stats.batches.load(Ordering::Relaxed);
    println!(
        "members {}, senders {}, messages {total_sent} of {} bytes, window {}",
        args.members, args.senders, args.body, args.window
    );
    println!("elapsed            {:.2} s", elapsed.as_secs_f64());
    println!(
        "sends acked        {:.0} /s",
        total_sent as f64 / elapsed.as_secs_f64()
    );
    println!(
        "deliveries         {:.0} /s ({expected_deliveries} frames)",
        expected_deliveries as f64 / elapsed.as_secs_f64()
    );
    println!(
        "ack latency        p50 {:?}  p99 {:?}  max {:?}",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    println!(
        "commit batches     {batches} ({:.1} messages per transaction)",
        total_sent as f64 / batches.max(1) as f64
    );
    println!(
        "RSS                {} KiB before, {} KiB after (client and server in one process)",
        rss_before,
        rss_kib()
    );
    // Exit without waiting for a graceful shutdown: the HTTP client's idle keep-alive
    // connections would hold it open.
    drop(server);
    std::process::exit(0)
}
