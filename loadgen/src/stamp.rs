//! What every benchmark message carries, and the clock it is measured with.
//!
//! A receiver must tell, from the message alone, who sent it, which of that sender's messages it
//! is, and when it was due to be sent — for latency and for loss and duplicate accounting. So the
//! body starts with `e<epoch> s<sender> n<counter> t<micros> ` and is padded with `x` to the body
//! size asked for, e.g. `e3 s17 n4242 t123456789 xxxxxxxx…`.
//!
//! * `epoch` numbers a phase of the run (warm-up, measured window, next sweep step…), so late
//!   frames of one phase are never counted in another.
//! * `sender` is the sending connection's index, `counter` its n-th send slot in that epoch.
//! * `micros` is the time the send was *scheduled* for, in µs since [`BASE`], a single
//!   `Instant` shared by the whole process (senders and receivers run in the same process, so no
//!   clock synchronisation is needed). Using the scheduled rather than the actual send time
//!   keeps a slow sender from hiding queueing delay (coordinated omission).
//!
//! The body is plain ASCII without quotes or backslashes, so it can be embedded in JSON as is and
//! read back as a borrowed `&str`.

use std::fmt::Write;
use std::sync::LazyLock;
use std::time::Instant;

/// The process' time origin.
pub static BASE: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Microseconds since [`BASE`].
pub fn now_us() -> u64 {
    BASE.elapsed().as_micros() as u64
}

/// An instant as microseconds since [`BASE`] (0 for instants before it).
pub fn at_us(at: Instant) -> u64 {
    at.saturating_duration_since(*BASE).as_micros() as u64
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub epoch: u32,
    pub sender: u32,
    pub counter: u32,
    pub sent_us: u64,
}

impl Stamp {
    /// Writes the body: the stamp, then `x` up to `size` bytes (never shorter than the stamp).
    pub fn write_body(&self, size: usize, out: &mut String) {
        out.clear();
        let _ = write!(
            out,
            "e{} s{} n{} t{} ",
            self.epoch, self.sender, self.counter, self.sent_us
        );
        while out.len() < size {
            out.push('x');
        }
    }

    /// Reads the stamp back from a body; `None` for anything else.
    pub fn parse(body: &str) -> Option<Stamp> {
        let mut fields = body.split(' ');
        let mut next = |tag: char| fields.next()?.strip_prefix(tag)?.parse::<u64>().ok();
        Some(Stamp {
            epoch: next('e')? as u32,
            sender: next('s')? as u32,
            counter: next('n')? as u32,
            sent_us: next('t')?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_round_trips_and_is_padded() {
        let stamp = Stamp {
            epoch: 3,
            sender: 17,
            counter: 4242,
            sent_us: 123_456_789,
        };
        let mut body = String::new();
        stamp.write_body(100, &mut body);
        assert_eq!(body.len(), 100);
        assert!(body.starts_with("e3 s17 n4242 t123456789 xx"));
        assert_eq!(Stamp::parse(&body), Some(stamp));
        assert_eq!(Stamp::parse("hello world"), None);
    }
}
