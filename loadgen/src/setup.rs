//! Getting ready to measure: accounts, rooms and connections, each with bounded concurrency.
//!
//! Registration is the slow part (both servers hash passwords on purpose: argon2id for Tidings,
//! scrypt for the peer), so it runs `register_concurrency` requests at a time and retries what the
//! server asks to retry (429 `rate_limited` when its hashing queue is full, 5xx, a refused
//! connection) with a growing backoff. Usernames carry a random tag so that a second run against
//! the same server or database never collides with the first.

use crate::target::{Account, Kind, Room};
use anyhow::{anyhow, Result};
use futures::{stream, StreamExt, TryStreamExt};
use rand::Rng;
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "bench password";

/// A random lowercase tag for this run's usernames, e.g. `kqzt`.
pub fn run_tag() -> String {
    let mut rng = rand::thread_rng();
    (0..5).map(|_| rng.gen_range(b'a'..=b'z') as char).collect()
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a plain HTTP client builds")
}

/// Registers `count` accounts `<tag>u<i>`, account i on node `i mod n`. Order is kept.
pub async fn register_all(
    kind: Kind,
    http: &reqwest::Client,
    urls: &[String],
    tag: &str,
    count: usize,
    concurrency: usize,
) -> Result<Vec<Account>> {
    let started = Instant::now();
    let accounts: Vec<Account> = stream::iter(0..count)
        .map(|i| {
            let base = &urls[i % urls.len()];
            let username = format!("{tag}u{i}");
            async move { register_one(kind, http, base, &username).await }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await?;
    eprintln!(
        "registered {count} accounts in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(accounts)
}

async fn register_one(
    kind: Kind,
    http: &reqwest::Client,
    base: &str,
    username: &str,
) -> Result<Account> {
    let mut backoff = Duration::from_millis(20);
    for _ in 0..200 {
        match kind.register(http, base, username, PASSWORD).await {
            Ok(account) => return Ok(account),
            Err(e) if e.retry => {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_millis(500));
            }
            Err(e) => return Err(anyhow!("register {username}: {}", e.message)),
        }
    }
    Err(anyhow!(
        "register {username}: still refused after 200 tries"
    ))
}

/// Creates one room per `room_size` consecutive accounts; the room's first member owns it.
pub async fn create_rooms(
    kind: Kind,
    http: &reqwest::Client,
    urls: &[String],
    accounts: &[Account],
    room_size: usize,
    concurrency: usize,
) -> Result<Vec<Room>> {
    stream::iter(accounts.chunks(room_size).enumerate())
        .map(|(index, members)| {
            let base = &urls[index % urls.len()];
            let others: Vec<&str> = members[1..].iter().map(|a| a.username.as_str()).collect();
            async move {
                kind.create_room(http, base, index, &members[0], &others)
                    .await
            }
        })
        .buffered(concurrency.max(1))
        .try_collect()
        .await
}
