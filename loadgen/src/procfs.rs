//! CPU and memory from `/proc`, for the servers under test and for the load generator itself.
//!
//! * A process' CPU time is `utime + stime` (fields 14 and 15 of `/proc/PID/stat`, in clock
//!   ticks, all of its threads included). Two [`Sample`]s around the measured window give the CPU
//!   seconds each process spent in it; divided by the deliveries in the same window that is the
//!   "CPU per delivery" figure. The tick is 10 ms, so windows should be seconds long.
//! * Memory is `VmRSS` from `/proc/PID/status`: resident pages, shared ones (libraries) included.
//! * The whole machine's CPU comes from the first line of `/proc/stat`: busy vs total jiffies,
//!   reported as cores busy. It shows how much of the 2 cores nobody else could have used.

use std::time::Instant;

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// CPU seconds (user + system) of `pid` ("self" for this process) so far.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: skip past it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the name, field 3 (state) is index 0, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / ticks_per_second())
}

/// Resident memory of `pid` in KiB.
pub fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
}

/// (busy, total) jiffies of the whole machine.
fn machine_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let values: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …: idle and iowait are not busy.
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3)? + values.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

fn cores() -> f64 {
    std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64)
}

/// CPU counters of the watched processes, this process and the machine at one instant.
#[derive(Clone, Debug)]
pub struct Sample {
    at: Instant,
    procs: Vec<Option<f64>>,
    own: f64,
    machine: (u64, u64),
}

impl Sample {
    pub fn take(pids: &[(String, u32)]) -> Sample {
        Sample {
            at: Instant::now(),
            procs: pids
                .iter()
                .map(|(_, pid)| cpu_seconds(&pid.to_string()))
                .collect(),
            own: cpu_seconds("self").unwrap_or(0.0),
            machine: machine_jiffies().unwrap_or((0, 1)),
        }
    }
}

/// CPU use between two samples.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CpuUse {
    pub seconds: f64,
    /// CPU seconds per watched process, by label.
    pub procs: Vec<(String, f64)>,
    /// Sum over the watched processes.
    pub server_cpu_s: f64,
    pub loadgen_cpu_s: f64,
    /// Cores busy machine-wide, on average.
    pub machine_cores: f64,
}

impl CpuUse {
    pub fn between(before: &Sample, after: &Sample, pids: &[(String, u32)]) -> CpuUse {
        let procs: Vec<(String, f64)> = pids
            .iter()
            .zip(before.procs.iter().zip(&after.procs))
            .map(|((label, _), (b, a))| match (b, a) {
                (Some(b), Some(a)) => (label.clone(), a - b),
                _ => (label.clone(), f64::NAN),
            })
            .collect();
        let (busy, total) = (
            after.machine.0.saturating_sub(before.machine.0),
            after.machine.1.saturating_sub(before.machine.1),
        );
        CpuUse {
            seconds: after.at.duration_since(before.at).as_secs_f64(),
            server_cpu_s: procs.iter().map(|(_, s)| s).filter(|s| s.is_finite()).sum(),
            procs,
            loadgen_cpu_s: after.own - before.own,
            machine_cores: if total == 0 {
                0.0
            } else {
                busy as f64 / total as f64 * cores()
            },
        }
    }
}

/// RSS in KiB of each watched process, by label.
pub fn rss_all(pids: &[(String, u32)]) -> Vec<(String, u64)> {
    pids.iter()
        .map(|(label, pid)| (label.clone(), rss_kib(&pid.to_string()).unwrap_or(0)))
        .collect()
}

/// Raises this process' open-file limit to its hard limit: each connection is a descriptor.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// The soft open-file limit now in force.
pub fn fd_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as above.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    limit.rlim_cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_its_own_process() {
        assert!(cpu_seconds("self").is_some());
        assert!(rss_kib("self").unwrap() > 0);
        assert!(machine_jiffies().unwrap().1 > 0);
    }
}
