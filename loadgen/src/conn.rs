//! One connection: a single task that owns its WebSocket, reads every frame, and — if it is one
//! of its room's senders — sends on a fixed schedule.
//!
//! **Open loop.** A sender does not wait for acks before sending the next message: send slot `k`
//! of a phase is due at `start + (offset + k) / rate`, whatever the server is doing (the offset
//! spreads the senders evenly over one period, so they do not fire in lockstep). When a slot is
//! due the task sends it; if it falls behind (timer granularity, a busy machine) it catches up in
//! bursts of at most [`BURST`], reading in between. Only when `max_outstanding` sends are
//! unacknowledged does it skip slots instead of piling more onto a server that is not keeping up,
//! and counts them as `skipped`.
//!
//! **Phases.** The coordinator ([`crate::load`]) publishes a [`Phase`] on a `watch` channel: an
//! epoch number, the rate per sender, and whether to send at all (not during a drain). A new
//! epoch restarts the schedule at counter 0.
//!
//! **Reconnects.** If the server closes the socket (e.g. Tidings' slow-consumer close 4001 under
//! overload) the task reconnects and carries on, counting a disconnect; whatever it missed in the
//! meantime shows up as lost deliveries (it does not `sync`: the benchmark measures live delivery).

use crate::stamp::{at_us, now_us, Stamp};
use crate::stats::ConnStats;
use crate::target::{Account, Event, Kind, Room};
use futures::{SinkExt, StreamExt};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_tungstenite::tungstenite::Message;

/// Most sends written in one go before the task reads again.
const BURST: u32 = 64;

/// What the coordinator asks of every connection right now.
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    pub epoch: u32,
    /// Messages per second per sender.
    pub rate: f64,
    /// False during a drain: keep reading, stop sending.
    pub sending: bool,
    /// When slot 0 of this epoch is due (offset aside).
    pub start: Instant,
}

impl Phase {
    pub fn idle() -> Phase {
        Phase {
            epoch: 0,
            rate: 0.0,
            sending: false,
            start: Instant::now(),
        }
    }
}

/// Everything one connection needs to know about itself.
pub struct ConnSpec {
    pub index: u32,
    pub kind: Kind,
    pub base: String,
    pub account: Account,
    pub room: Room,
    /// Index of the room's first connection: a sender's position in its room is
    /// `its index - room_first`.
    pub room_first: u32,
    /// `Some(offset in [0, 1))` if this connection sends.
    pub sender_offset: Option<f64>,
    pub body_size: usize,
    pub max_outstanding: u64,
}

/// The send schedule of the current epoch.
struct Schedule {
    offset: Option<f64>,
    epoch: u32,
    sending: bool,
    start: Instant,
    period: f64,
    next: u32,
    outstanding: u64,
}

impl Schedule {
    fn new(offset: Option<f64>) -> Schedule {
        Schedule {
            offset,
            epoch: 0,
            sending: false,
            start: Instant::now(),
            period: f64::INFINITY,
            next: 0,
            outstanding: 0,
        }
    }

    fn follow(&mut self, phase: Phase) {
        if phase.epoch != self.epoch {
            self.epoch = phase.epoch;
            self.start = phase.start;
            self.period = 1.0 / phase.rate;
            self.next = 0;
            self.outstanding = 0;
        }
        self.sending = phase.sending && phase.rate > 0.0 && self.offset.is_some();
    }

    fn due(&self, k: u32) -> Instant {
        let offset = self.offset.unwrap_or(0.0);
        self.start + Duration::from_secs_f64((offset + k as f64) * self.period)
    }

    fn next_due(&self) -> Option<tokio::time::Instant> {
        self.sending.then(|| self.due(self.next).into())
    }
}

/// Runs one connection until the coordinator drops the phase channel. Reports its first
/// connect (or why it failed) on `ready`; `gate` bounds concurrent handshakes.
pub async fn run(
    spec: ConnSpec,
    stats: Arc<Mutex<ConnStats>>,
    mut phase: watch::Receiver<Phase>,
    gate: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<Result<(), String>>,
) {
    let mut schedule = Schedule::new(spec.sender_offset);
    let mut connected_once = false;
    let mut failures = 0;
    loop {
        let attempt = {
            let _permit = gate.acquire().await;
            spec.kind
                .connect(&spec.base, &spec.account, Some(&spec.room))
                .await
        };
        let ws = match attempt {
            Ok(ws) => ws,
            Err(e) => {
                failures += 1;
                if !connected_once && failures >= 5 {
                    let _ = ready.send(Err(format!("connection {}: {e:#}", spec.index)));
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200 * failures)).await;
                continue;
            }
        };
        if !connected_once {
            connected_once = true;
            let _ = ready.send(Ok(()));
        }
        failures = 0;
        schedule.follow(*phase.borrow_and_update());
        match session(&spec, ws, &stats, &mut phase, &mut schedule).await {
            Ended::Stop => return,
            Ended::Disconnected => {
                stats.lock().unwrap().disconnects += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

enum Ended {
    Stop,
    Disconnected,
}

/// One socket's life: read, answer, send on schedule, follow phase changes.
async fn session(
    spec: &ConnSpec,
    ws: crate::target::Ws,
    stats: &Mutex<ConnStats>,
    phase: &mut watch::Receiver<Phase>,
    schedule: &mut Schedule,
) -> Ended {
    let (mut sink, mut stream) = ws.split();
    let me = spec.account.user_id;
    let mut body = String::with_capacity(spec.body_size + 32);
    // One timer for the whole session, moved to each next due time: a fresh `sleep_until` per
    // loop would register and cancel a timer entry for every frame read.
    let timer = tokio::time::sleep_until(tokio::time::Instant::now());
    tokio::pin!(timer);
    let mut armed_for = None;
    loop {
        let due = schedule.next_due();
        if let Some(at) = due {
            if armed_for != Some(at) {
                timer.as_mut().reset(at);
                armed_for = Some(at);
            }
        }
        tokio::select! {
            biased;
            changed = phase.changed() => {
                if changed.is_err() {
                    return Ended::Stop;
                }
                schedule.follow(*phase.borrow_and_update());
            }
            frame = stream.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Ended::Disconnected,
                    Some(Ok(_)) => continue, // pings are answered by tungstenite itself
                };
                match spec.kind.parse(&text, me) {
                    Event::Delivery { body } => {
                        if let Some(stamp) = Stamp::parse(body) {
                            let latency = now_us().saturating_sub(stamp.sent_us);
                            let slot = stamp.sender.wrapping_sub(spec.room_first) as usize;
                            stats.lock().unwrap().record_delivery(slot, stamp.epoch, stamp.counter, latency);
                        }
                    }
                    Event::Ack { epoch, counter } => {
                        let latency = (epoch == schedule.epoch).then(|| {
                            schedule.outstanding = schedule.outstanding.saturating_sub(1);
                            now_us().saturating_sub(at_us(schedule.due(counter)))
                        });
                        stats.lock().unwrap().record_ack(epoch, counter, latency);
                    }
                    Event::Refused => {
                        schedule.outstanding = schedule.outstanding.saturating_sub(1);
                        stats.lock().unwrap().refused += 1;
                    }
                    Event::Reply(reply) => {
                        if sink.send(Message::text(reply)).await.is_err() {
                            return Ended::Disconnected;
                        }
                    }
                    Event::Closed => return Ended::Disconnected,
                    Event::Other => {}
                }
            }
            _ = &mut timer, if due.is_some() => {
                armed_for = None;
                if send_due(spec, &mut sink, stats, schedule, &mut body).await.is_err() {
                    return Ended::Disconnected;
                }
            }
        }
    }
}

/// Sends every slot that is due (at most [`BURST`]), skipping those over the outstanding bound.
async fn send_due<S>(
    spec: &ConnSpec,
    sink: &mut S,
    stats: &Mutex<ConnStats>,
    schedule: &mut Schedule,
    body: &mut String,
) -> Result<(), S::Error>
where
    S: futures::Sink<Message> + Unpin,
{
    let now = Instant::now();
    let (mut sent, mut skipped) = (0u64, 0u64);
    let mut burst = 0;
    while schedule.sending && schedule.due(schedule.next) <= now && burst < BURST {
        let counter = schedule.next;
        schedule.next += 1;
        burst += 1;
        if schedule.outstanding >= spec.max_outstanding {
            skipped += 1;
            continue;
        }
        let stamp = Stamp {
            epoch: schedule.epoch,
            sender: spec.index,
            counter,
            sent_us: at_us(schedule.due(counter)),
        };
        stamp.write_body(spec.body_size, body);
        let frame = spec
            .kind
            .send_frame(&spec.room, schedule.epoch, counter, body);
        sink.feed(Message::text(frame)).await?;
        schedule.outstanding += 1;
        sent += 1;
    }
    sink.flush().await?;
    let mut stats = stats.lock().unwrap();
    stats.record_sends(schedule.epoch, sent);
    stats.skipped += skipped;
    Ok(())
}
