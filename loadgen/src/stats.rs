//! What each connection records, and how the step's figures are computed from all of them.
//!
//! Every connection task owns a [`ConnStats`] behind a mutex that only it and the coordinator
//! touch (the coordinator only at phase boundaries), so locking is uncontended and cheap.
//! It holds two kinds of data:
//!
//! * **window counters** (`sent`, `acked`, `delivered`, …): everything that happened between
//!   the coordinator's [`ConnStats::begin_window`] and the end of the measured window, whatever
//!   the message's epoch. They give the rates.
//! * **records of the measured epoch**: every ack and delivery latency (all of them, not a
//!   sample: percentiles are exact), which send slots were acked (as sender) and which were
//!   received from each sender in the room (as receiver). Messages of the measured epoch keep
//!   being recorded during the drain that follows the window, so a message sent in the last
//!   millisecond still counts.
//!
//! Loss and duplicates: a delivery is identified by (receiver, sender, counter). After the drain,
//! for every receiver and every sender in its room, `acked(sender) & !received(receiver, sender)`
//! are the lost deliveries; a second arrival of the same triple is a duplicate. The expected
//! count is therefore acked sends × (room size − 1).

/// A growable set of small integers (send counters).
#[derive(Clone, Debug, Default)]
pub struct BitSet {
    words: Vec<u64>,
    len: u64,
}

impl BitSet {
    /// Adds `n`; false if it was already there.
    pub fn insert(&mut self, n: u32) -> bool {
        let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
        if word >= self.words.len() {
            self.words.resize(word + 1, 0);
        }
        let fresh = self.words[word] & bit == 0;
        self.words[word] |= bit;
        self.len += fresh as u64;
        fresh
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// How many of `self` are missing from `other`.
    pub fn count_missing_from(&self, other: &BitSet) -> u64 {
        self.words
            .iter()
            .enumerate()
            .map(|(i, w)| (w & !other.words.get(i).copied().unwrap_or(0)).count_ones() as u64)
            .sum()
    }
}

/// An end-to-end latency at or above this counts as "slow": more than 1 % of them means the
/// p99 is at least this, which lets the sweep stop a step early without sorting anything.
pub const SLOW_US: u32 = 100_000;

#[derive(Debug, Default)]
pub struct ConnStats {
    // Window counters.
    pub sent: u64,
    pub skipped: u64,
    pub acked: u64,
    pub delivered: u64,
    pub refused: u64,
    pub disconnects: u64,

    // Records of the measured epoch (0: none).
    pub epoch: u32,
    pub epoch_sent: u64,
    /// As sender: the acked send slots.
    pub acked_slots: BitSet,
    pub ack_us: Vec<u32>,
    /// As receiver: the slots received from each sender of the room (index: sender's position).
    pub received: Vec<BitSet>,
    pub e2e_us: Vec<u32>,
    pub duplicates: u64,
    pub slow: u64,
    /// Deliveries from a connection outside our room: must stay 0.
    pub foreign: u64,
}

impl ConnStats {
    pub fn new(senders_per_room: usize) -> Self {
        ConnStats {
            received: vec![BitSet::default(); senders_per_room],
            ..Default::default()
        }
    }

    /// Zeroes the counters and starts recording `epoch`.
    pub fn begin_window(&mut self, epoch: u32) {
        let senders = self.received.len();
        *self = ConnStats::new(senders);
        self.epoch = epoch;
    }

    /// A delivery from room sender `slot`, of `epoch`/`counter`, `latency_us` after it was due.
    pub fn record_delivery(&mut self, slot: usize, epoch: u32, counter: u32, latency_us: u64) {
        self.delivered += 1;
        if epoch != self.epoch || self.epoch == 0 {
            return;
        }
        let Some(set) = self.received.get_mut(slot) else {
            self.foreign += 1;
            return;
        };
        if set.insert(counter) {
            let latency = latency_us.min(u32::MAX as u64) as u32;
            self.slow += (latency >= SLOW_US) as u64;
            self.e2e_us.push(latency);
        } else {
            self.duplicates += 1;
        }
    }

    /// An ack of our send `epoch`/`counter`; the latency is known while the sender still
    /// follows that epoch's schedule.
    pub fn record_ack(&mut self, epoch: u32, counter: u32, latency_us: Option<u64>) {
        self.acked += 1;
        if epoch == self.epoch && self.epoch != 0 && self.acked_slots.insert(counter) {
            if let Some(latency) = latency_us {
                self.ack_us.push(latency.min(u32::MAX as u64) as u32);
            }
        }
    }

    pub fn record_sends(&mut self, epoch: u32, count: u64) {
        self.sent += count;
        if epoch == self.epoch && self.epoch != 0 {
            self.epoch_sent += count;
        }
    }
}

/// Percentiles of a set of microsecond latencies, in milliseconds.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    /// Sorts `values` (µs) in place and reads the percentiles off it.
    pub fn of(values: &mut [u32]) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        values.sort_unstable();
        let at = |p: f64| {
            let rank = ((values.len() as f64 * p).ceil() as usize).clamp(1, values.len());
            values[rank - 1] as f64 / 1000.0
        };
        Percentiles {
            count: values.len() as u64,
            p50_ms: at(0.50),
            p95_ms: at(0.95),
            p99_ms: at(0.99),
            max_ms: at(1.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_and_duplicates_follow_the_slots() {
        let mut sender = ConnStats::new(1);
        sender.begin_window(5);
        let mut receiver = ConnStats::new(1);
        receiver.begin_window(5);
        sender.record_sends(5, 100);
        for n in 0..100 {
            sender.record_ack(5, n, Some(10));
        }
        for n in (0..100).filter(|n| n % 10 != 3) {
            receiver.record_delivery(0, 5, n, 1000);
        }
        receiver.record_delivery(0, 5, 0, 1000); // duplicate
        receiver.record_delivery(0, 4, 0, 1000); // an earlier epoch: counted, not recorded
        assert_eq!(
            sender.acked_slots.count_missing_from(&receiver.received[0]),
            10
        );
        assert_eq!(receiver.duplicates, 1);
        assert_eq!(receiver.delivered, 92);
        assert_eq!(receiver.e2e_us.len(), 90);
    }

    #[test]
    fn percentiles_are_exact() {
        let mut v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        let p = Percentiles::of(&mut v);
        assert_eq!((p.p50_ms, p.p99_ms, p.max_ms), (500.0, 990.0, 1000.0));
    }
}
