//! Scenarios a, b and c: rooms of connections with open-loop senders.
//!
//! Setup: `--conns` accounts, one room per `--room-size` consecutive connections (a Tidings group
//! or a Socket.IO room), the first `--senders-per-room` of each room send. Connection i talks to
//! node `i mod n`, so with two nodes every room has members (and senders) on both.
//!
//! Then one **step** per rate (the same connections are reused, so `--rate 2000,12000` measures
//! both loads in one setup):
//!
//! ```text
//!   warm-up (epoch 2k)  │  measured window (epoch 2k+1)  │  drain: stop sending, wait until
//!   not counted         │  CPU sampled at both ends      │  every acked message of the
//!                       │  counters: sends, acks, …      │  window is delivered (or timeout)
//! ```
//!
//! Rates (sends, acks, deliveries per second) and CPU come from the window; latencies, loss and
//! duplicates from every message sent in the window, including those still in flight when it
//! ended: the drain waits for them as long as they keep coming (an overloaded server may be
//! seconds behind). See [`crate::stats`] for the accounting.
//!
//! **Sweep** (`--sweep`, scenario c): start at the first `--rate`, double while steps pass, then
//! bisect `--bisect` times between the last pass and the first failure. A step passes when sends
//! reach 95 % of the target, nothing is lost, no connection dropped and the end-to-end p99 is
//! under 100 ms; a step is cut short as soon as sends fall 10 % behind the target or more than
//! 1 % of deliveries took 100 ms or more (the p99 cannot pass any more).

use crate::conn::{self, ConnSpec, Phase};
use crate::procfs::{self, CpuUse, Sample};
use crate::setup;
use crate::stats::{ConnStats, Percentiles, SLOW_US};
use crate::Common;
use anyhow::{bail, Result};
use clap::Args;
use serde::Serialize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

#[derive(Args, Clone, Debug)]
pub struct LoadArgs {
    #[command(flatten)]
    pub common: Common,
    /// WebSocket connections (one account each).
    #[arg(long, default_value_t = 1000)]
    pub conns: usize,
    #[arg(long, default_value_t = 10)]
    pub room_size: usize,
    #[arg(long, default_value_t = 2)]
    pub senders_per_room: usize,
    /// Messages per second, all senders together. Comma-separate for several steps on the same
    /// connections; with --sweep, the rate to start from.
    #[arg(long = "rate", value_delimiter = ',', default_value = "2000")]
    pub rates: Vec<f64>,
    /// Find the highest rate that passes (see the module documentation).
    #[arg(long)]
    pub sweep: bool,
    /// Bisection steps after the doubling phase of a sweep.
    #[arg(long, default_value_t = 3)]
    pub bisect: u32,
    /// Seconds of warm-up before each measured window.
    #[arg(long, default_value_t = 5.0)]
    pub warmup: f64,
    /// Seconds of each measured window.
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// After a window, give up waiting for its messages after this many seconds without any
    /// ack or delivery arriving.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
    /// Message body size in bytes.
    #[arg(long, default_value_t = 100)]
    pub body: usize,
    /// Unacknowledged sends per sender beyond which due sends are skipped (and counted).
    #[arg(long, default_value_t = 1000)]
    pub max_outstanding: u64,
}

/// The longest a drain may take, progress or not.
const DRAIN_CAP: Duration = Duration::from_secs(120);

/// The figures of one step.
#[derive(Clone, Debug, Serialize)]
pub struct StepResult {
    pub rate_target: f64,
    pub window_s: f64,
    pub sent_per_s: f64,
    pub send_ratio: f64,
    pub acked_per_s: f64,
    pub delivered_per_s: f64,
    pub skipped: u64,
    pub refused: u64,
    pub disconnects: u64,
    pub ack: Percentiles,
    pub e2e: Percentiles,
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    /// Delivered although never acked (a send whose ack was missing): must be 0.
    pub unacked_delivered: u64,
    pub foreign: u64,
    /// Seconds the drain took; false if it gave up before everything had arrived.
    pub drain_s: f64,
    pub drained: bool,
    /// Sends of the window never acknowledged (nor refused) by the end of the drain.
    pub unacked_after_drain: u64,
    pub server_cpu_s: f64,
    pub server_cores: f64,
    pub cpu_us_per_delivery: f64,
    pub loadgen_cores: f64,
    pub machine_cores: f64,
    pub cpu: CpuUse,
    pub rss_kib: Vec<(String, u64)>,
    pub server_rss_kib: u64,
    pub aborted: Option<String>,
    /// Why the step does not pass (empty: it does).
    pub failures: Vec<String>,
    pub pass: bool,
}

impl StepResult {
    /// The sweep's criteria: sends kept up, nothing lost, no drops, p99 under 100 ms.
    fn failures(&self) -> Vec<String> {
        let mut why = Vec::new();
        if let Some(aborted) = &self.aborted {
            why.push(format!("stopped early: {aborted}"));
        }
        if self.send_ratio < 0.95 {
            why.push(format!("sends {:.1} % of target", self.send_ratio * 100.0));
        }
        if self.lost > 0 {
            why.push(format!("{} lost", self.lost));
        }
        if self.unacked_after_drain > 0 {
            why.push(format!("{} sends never acked", self.unacked_after_drain));
        }
        if self.disconnects > 0 {
            why.push(format!("{} disconnects", self.disconnects));
        }
        if self.e2e.count == 0 {
            why.push("nothing delivered".into());
        } else if self.e2e.p99_ms >= SLOW_US as f64 / 1000.0 {
            why.push(format!("p99 {:.0} ms", self.e2e.p99_ms));
        }
        why
    }
}

/// The running benchmark: connections, their stats, and the phase they follow.
struct Bench {
    args: LoadArgs,
    stats: Vec<Arc<Mutex<ConnStats>>>,
    phase: watch::Sender<Phase>,
    senders: usize,
    next_epoch: u32,
}

pub async fn run(args: LoadArgs) -> Result<()> {
    let c = &args.common;
    if args.room_size < 2 || !args.conns.is_multiple_of(args.room_size) {
        bail!("--conns must be a multiple of --room-size (at least 2)");
    }
    if args.senders_per_room == 0 || args.senders_per_room > args.room_size {
        bail!("--senders-per-room must be between 1 and --room-size");
    }
    if procfs::fd_limit() < args.conns as u64 + 64 {
        eprintln!(
            "warning: open-file limit {} is below {} connections",
            procfs::fd_limit(),
            args.conns
        );
    }
    let http = setup::http_client();
    let tag = setup::run_tag();
    let accounts = setup::register_all(
        c.server,
        &http,
        &c.urls,
        &tag,
        args.conns,
        c.register_concurrency,
    )
    .await?;
    let rooms = setup::create_rooms(
        c.server,
        &http,
        &c.urls,
        &accounts,
        args.room_size,
        c.register_concurrency,
    )
    .await?;

    // One task per connection.
    let senders = args.conns / args.room_size * args.senders_per_room;
    let (phase, phase_rx) = watch::channel(Phase::idle());
    let gate = Arc::new(Semaphore::new(c.connect_concurrency.max(1)));
    let (ready_tx, mut ready) = mpsc::unbounded_channel();
    let mut stats = Vec::with_capacity(args.conns);
    let started = Instant::now();
    for (i, account) in accounts.into_iter().enumerate() {
        let (room, position) = (i / args.room_size, i % args.room_size);
        let sender_index = room * args.senders_per_room + position;
        let spec = ConnSpec {
            index: i as u32,
            kind: c.server,
            base: c.urls[i % c.urls.len()].clone(),
            account,
            room: rooms[room],
            room_first: (room * args.room_size) as u32,
            sender_offset: (position < args.senders_per_room)
                .then(|| sender_index as f64 / senders as f64),
            body_size: args.body,
            max_outstanding: args.max_outstanding,
        };
        let conn_stats = Arc::new(Mutex::new(ConnStats::new(args.senders_per_room)));
        stats.push(conn_stats.clone());
        tokio::spawn(conn::run(
            spec,
            conn_stats,
            phase_rx.clone(),
            gate.clone(),
            ready_tx.clone(),
        ));
    }
    for _ in 0..args.conns {
        match ready.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => bail!("{e}"),
            None => bail!("connection tasks ended before connecting"),
        }
    }
    eprintln!(
        "{} connections open in {:.1} s",
        args.conns,
        started.elapsed().as_secs_f64()
    );

    let mut bench = Bench {
        args,
        stats,
        phase,
        senders,
        next_epoch: 1,
    };
    if bench.args.sweep {
        bench.sweep().await;
    } else {
        for rate in bench.args.rates.clone() {
            let result = bench.step(rate, false).await;
            bench.emit("load", &result);
        }
    }
    Ok(())
}

impl Bench {
    fn epoch(&mut self) -> u32 {
        self.next_epoch += 1;
        self.next_epoch - 1
    }

    fn sum(&self, f: impl Fn(&ConnStats) -> u64) -> u64 {
        self.stats.iter().map(|s| f(&s.lock().unwrap())).sum()
    }

    /// Measures one rate (total messages per second).
    async fn step(&mut self, rate: f64, early_stop: bool) -> StepResult {
        let args = self.args.clone();
        let pids = &args.common.pids;
        let per_sender = rate / self.senders as f64;
        let (warm, measured) = (self.epoch(), self.epoch());
        eprintln!(
            "step: {rate:.0} msg/s ({per_sender:.2} per sender), warm-up {} s",
            args.warmup
        );
        self.phase.send_replace(Phase {
            epoch: warm,
            rate: per_sender,
            sending: true,
            start: Instant::now(),
        });
        tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;

        for s in &self.stats {
            s.lock().unwrap().begin_window(measured);
        }
        let before = Sample::take(pids);
        let t0 = Instant::now();
        self.phase.send_replace(Phase {
            epoch: measured,
            rate: per_sender,
            sending: true,
            start: t0,
        });
        let end = t0 + Duration::from_secs_f64(args.duration);
        let mut aborted = None;
        while Instant::now() < end {
            let left = end.saturating_duration_since(Instant::now());
            tokio::time::sleep(left.min(Duration::from_secs(1))).await;
            if early_stop {
                aborted = self.hopeless(rate, t0.elapsed().as_secs_f64());
                if aborted.is_some() {
                    break;
                }
            }
        }
        self.phase.send_modify(|p| p.sending = false);
        let after = Sample::take(pids);
        let rss_kib = procfs::rss_all(pids);
        let cpu = CpuUse::between(&before, &after, pids);
        let window = cpu.seconds;
        let sent = self.sum(|s| s.sent);
        let acked = self.sum(|s| s.acked);
        let delivered = self.sum(|s| s.delivered);
        let skipped = self.sum(|s| s.skipped);

        // Drain: wait until everything acked in the window has arrived everywhere. An overloaded
        // server may need many seconds to work through its queues, so keep waiting while acks
        // or deliveries still come in; give up after --drain seconds without any (what is
        // missing then counts as lost) or after DRAIN_CAP in all.
        let drain_start = Instant::now();
        let fan = (args.room_size - 1) as u64;
        let (mut last, mut last_progress) = ((0, 0), drain_start);
        let (drained, unacked) = loop {
            let acked = self.sum(|s| s.acked_slots.len() + s.refused);
            let unacked = self.sum(|s| s.epoch_sent).saturating_sub(acked);
            let received: u64 = self.sum(|s| s.received.iter().map(|r| r.len()).sum());
            let expected = self.sum(|s| s.acked_slots.len()) * fan;
            if unacked == 0 && received >= expected {
                break (true, 0);
            }
            let now = Instant::now();
            if (acked, received) != last {
                (last, last_progress) = ((acked, received), now);
            } else if now.duration_since(last_progress).as_secs_f64() >= args.drain {
                break (false, unacked);
            }
            if now.duration_since(drain_start) >= DRAIN_CAP {
                break (false, unacked);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut result = self.account(rate, window, cpu, rss_kib);
        result.drain_s = drain_start.elapsed().as_secs_f64();
        result.drained = drained;
        result.unacked_after_drain = unacked;
        result.sent_per_s = sent as f64 / window;
        result.send_ratio = result.sent_per_s / rate;
        result.acked_per_s = acked as f64 / window;
        result.delivered_per_s = delivered as f64 / window;
        result.cpu_us_per_delivery = if delivered > 0 {
            result.server_cpu_s / delivered as f64 * 1e6
        } else {
            f64::NAN
        };
        result.skipped = skipped;
        result.aborted = aborted;
        result.failures = result.failures();
        result.pass = result.failures.is_empty();
        result
    }

    /// Why the running window can no longer pass, if it cannot.
    fn hopeless(&self, rate: f64, elapsed: f64) -> Option<String> {
        if elapsed < 2.0 {
            return None;
        }
        let sent = self.sum(|s| s.sent) as f64;
        if sent < 0.9 * rate * elapsed {
            return Some(format!(
                "sends behind target ({:.0}/s of {rate:.0}/s)",
                sent / elapsed
            ));
        }
        let slow = self.sum(|s| s.slow);
        let latencies = self.sum(|s| s.e2e_us.len() as u64);
        if latencies >= 1000 && slow * 100 > latencies {
            return Some(format!(
                "p99 >= {} ms ({slow} of {latencies} deliveries)",
                SLOW_US / 1000
            ));
        }
        if self.sum(|s| s.disconnects) > 0 {
            return Some("connections dropped".into());
        }
        None
    }

    /// Loss, duplicates and latencies of the measured epoch, room by room.
    fn account(
        &self,
        rate: f64,
        window: f64,
        cpu: CpuUse,
        rss_kib: Vec<(String, u64)>,
    ) -> StepResult {
        let (size, spr) = (self.args.room_size, self.args.senders_per_room);
        let (mut expected, mut received, mut lost, mut unacked_delivered) = (0, 0, 0, 0);
        let (mut ack_us, mut e2e_us) = (Vec::new(), Vec::new());
        for room in self.stats.chunks(size) {
            let members: Vec<_> = room.iter().map(|s| s.lock().unwrap()).collect();
            for (slot, sender) in members.iter().take(spr).enumerate() {
                for (r, receiver) in members.iter().enumerate() {
                    if r == slot {
                        continue;
                    }
                    let got = &receiver.received[slot];
                    expected += sender.acked_slots.len();
                    received += got.len();
                    lost += sender.acked_slots.count_missing_from(got);
                    unacked_delivered += got.count_missing_from(&sender.acked_slots);
                }
            }
        }
        for s in &self.stats {
            let mut s = s.lock().unwrap();
            ack_us.append(&mut s.ack_us);
            e2e_us.append(&mut s.e2e_us);
        }
        let server_rss_kib = rss_kib.iter().map(|(_, k)| k).sum();
        StepResult {
            rate_target: rate,
            window_s: window,
            sent_per_s: 0.0,
            send_ratio: 0.0,
            acked_per_s: 0.0,
            delivered_per_s: 0.0,
            skipped: 0,
            refused: self.sum(|s| s.refused),
            disconnects: self.sum(|s| s.disconnects),
            ack: Percentiles::of(&mut ack_us),
            e2e: Percentiles::of(&mut e2e_us),
            expected,
            received,
            lost,
            duplicates: self.sum(|s| s.duplicates),
            unacked_delivered,
            foreign: self.sum(|s| s.foreign),
            drain_s: 0.0,
            drained: false,
            unacked_after_drain: 0,
            server_cpu_s: cpu.server_cpu_s,
            server_cores: cpu.server_cpu_s / window,
            cpu_us_per_delivery: 0.0,
            loadgen_cores: cpu.loadgen_cpu_s / window,
            machine_cores: cpu.machine_cores,
            cpu,
            rss_kib,
            server_rss_kib,
            aborted: None,
            failures: Vec::new(),
            pass: false,
        }
    }

    /// Doubling, then bisection, to the highest passing rate.
    async fn sweep(&mut self) {
        let mut rate = self.args.rates[0];
        let mut best: Option<StepResult> = None;
        let mut failed: Option<f64> = None;
        // Up while passing; if the very first step fails, down until one passes.
        for _ in 0..16 {
            let result = self.step(rate, true).await;
            self.emit("sweep-step", &result);
            self.cool_down().await;
            if result.pass {
                best = Some(result);
                if failed.is_some() {
                    break;
                }
                rate *= 2.0;
            } else {
                failed = Some(rate);
                if best.is_some() {
                    break;
                }
                rate /= 2.0;
                if rate < 1.0 {
                    break;
                }
            }
        }
        for _ in 0..self.args.bisect {
            let (Some(good), Some(bad)) = (&best, failed) else {
                break;
            };
            let mid = ((good.rate_target + bad) / 2.0).round();
            if mid <= good.rate_target || mid >= bad {
                break;
            }
            let result = self.step(mid, true).await;
            self.emit("sweep-step", &result);
            self.cool_down().await;
            if result.pass {
                best = Some(result);
            } else {
                failed = Some(mid);
            }
        }
        match best {
            Some(best) => {
                eprintln!(
                    "sweep: highest passing rate {:.0} msg/s = {:.0} deliveries/s",
                    best.rate_target, best.delivered_per_s
                );
                self.emit("sweep", &best);
            }
            None => eprintln!("sweep: no rate passed"),
        }
    }

    /// After a failed step the server may still be working through a backlog.
    async fn cool_down(&self) {
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    /// Prints the human table and the RESULT line.
    fn emit(&self, kind: &str, r: &StepResult) {
        let a = &self.args;
        let c = &a.common;
        eprintln!(
            "── {} ({} node{}), {} conns, rooms of {}, {} senders/room, {:.0} msg/s target ──",
            c.server.name(),
            c.urls.len(),
            if c.urls.len() == 1 { "" } else { "s" },
            a.conns,
            a.room_size,
            a.senders_per_room,
            r.rate_target
        );
        eprintln!(
            "  sends        {:>9.0}/s  ({:.1} % of target; skipped {}, refused {})",
            r.sent_per_s,
            r.send_ratio * 100.0,
            r.skipped,
            r.refused
        );
        let lat = |p: &Percentiles| {
            format!(
                "p50 {:.2}  p95 {:.2}  p99 {:.2}  max {:.2} ms",
                p.p50_ms, p.p95_ms, p.p99_ms, p.max_ms
            )
        };
        eprintln!("  acks         {:>9.0}/s  {}", r.acked_per_s, lat(&r.ack));
        eprintln!(
            "  deliveries   {:>9.0}/s  {}",
            r.delivered_per_s,
            lat(&r.e2e)
        );
        eprintln!(
            "  accounting   expected {} received {} lost {} duplicates {} disconnects {}",
            r.expected, r.received, r.lost, r.duplicates, r.disconnects
        );
        eprintln!(
            "  drain        {:.1} s{}",
            r.drain_s,
            if r.drained {
                String::new()
            } else {
                format!(
                    ", gave up after {:.0} s without progress ({} sends unacked)",
                    a.drain, r.unacked_after_drain
                )
            }
        );
        let procs: Vec<String> = r
            .cpu
            .procs
            .iter()
            .map(|(l, s)| format!("{l} {:.2}", s / r.window_s))
            .collect();
        eprintln!(
            "  server CPU   {:.2} cores = {:.1} µs per delivery  ({})",
            r.server_cores,
            r.cpu_us_per_delivery,
            procs.join(", ")
        );
        let rss: Vec<String> = r
            .rss_kib
            .iter()
            .map(|(l, k)| format!("{l} {:.1} MiB", *k as f64 / 1024.0))
            .collect();
        eprintln!("  server RSS   {}", rss.join(", "));
        eprintln!(
            "  loadgen      {:.2} cores; machine {:.2} cores busy; window {:.1} s",
            r.loadgen_cores, r.machine_cores, r.window_s,
        );
        eprintln!(
            "  verdict      {}",
            if r.pass {
                "within limits (p99 < 100 ms, nothing lost, sends on target)".to_owned()
            } else {
                format!("over limits: {}", r.failures.join(", "))
            }
        );
        let mut json = serde_json::to_value(r).expect("results serialize");
        let obj = json.as_object_mut().expect("an object");
        obj.insert("kind".into(), kind.into());
        obj.insert("server".into(), c.server.name().into());
        obj.insert("nodes".into(), c.urls.len().into());
        obj.insert("conns".into(), a.conns.into());
        obj.insert("room_size".into(), a.room_size.into());
        obj.insert("senders_per_room".into(), a.senders_per_room.into());
        obj.insert("body".into(), a.body.into());
        for (k, v) in &c.meta {
            obj.insert(k.clone(), v.clone().into());
        }
        println!("RESULT {json}");
    }
}
