//! `loadgen`: the load generator behind `scripts/bench`. It drives either Tidings or the Socket.IO
//! peer (`bench/socketio-peer`) over real WebSockets on loopback and measures both the same way,
//! so the two can be compared side by side.
//!
//! Read the modules in this order:
//!
//! * [`target`] — the two servers behind one interface: accounts, rooms, connecting, frames;
//!   [`tidings`] and [`socketio`] speak each wire protocol.
//! * [`stamp`] — what a message body carries (sender, counter, send time) and the shared clock.
//! * [`conn`] — one connection's task: open-loop sending on a schedule, reading every frame.
//! * [`stats`] — what each connection records, and how percentiles, loss and duplicates are
//!   computed from it.
//! * [`procfs`] — CPU and memory of the servers (and of this process) from `/proc`.
//! * [`setup`] — registering accounts and creating rooms with bounded concurrency.
//! * [`load`] — scenarios a, b, c: fixed rates and the rate sweep.
//! * [`idle`] — scenario d: memory per idle connection and per account.
//! * [`history`] — scenario e: filling one long conversation, then timing history pages.
//! * [`report`] — reads the `RESULT {json}` lines back and prints the side-by-side table.
//!
//! Every measuring subcommand prints a human table and one `RESULT {json}` line per measurement
//! that `scripts/bench` appends to `target/bench/results.jsonl`.

mod conn;
mod history;
mod idle;
mod load;
mod procfs;
mod report;
mod search;
mod setup;
mod socketio;
mod stamp;
mod stats;
mod target;
mod tidings;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "loadgen",
    about = "Load generator for scripts/bench (Tidings vs Socket.IO)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Rooms of connections with open-loop senders at fixed rates, or a rate sweep.
    Load(load::LoadArgs),
    /// Many idle authenticated connections: server memory per connection and per account.
    Idle(idle::IdleArgs),
    /// One long conversation, then history page latency (Tidings only).
    History(history::HistoryArgs),
    /// Print the side-by-side table of one bench run from a results file.
    Report(report::ReportArgs),
}

/// Flags every measuring subcommand shares.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Which server is under test.
    #[arg(long, value_enum)]
    pub server: target::Kind,
    /// Base URL of a node (http://127.0.0.1:PORT). Repeat for a cluster: connection i goes to
    /// node i mod n, so every room has members on every node.
    #[arg(long = "url", required = true)]
    pub urls: Vec<String>,
    /// A process whose CPU and memory to report, as LABEL=PID. Repeat for nodes, redis-server,
    /// mariadbd: all of them count as "server CPU".
    #[arg(long = "pid", value_parser = parse_pid)]
    pub pids: Vec<(String, u32)>,
    /// Extra KEY=VALUE copied into every RESULT line (scenario, run number, …).
    #[arg(long = "meta", value_parser = parse_meta)]
    pub meta: Vec<(String, String)>,
    /// Registrations in flight at once.
    #[arg(long, default_value_t = 32)]
    pub register_concurrency: usize,
    /// WebSocket handshakes in flight at once.
    #[arg(long, default_value_t = 64)]
    pub connect_concurrency: usize,
}

fn parse_pid(s: &str) -> Result<(String, u32), String> {
    let (label, pid) = s.split_once('=').ok_or("expected LABEL=PID")?;
    Ok((label.to_owned(), pid.parse().map_err(|e| format!("{e}"))?))
}

fn parse_meta(s: &str) -> Result<(String, String), String> {
    let (k, v) = s.split_once('=').ok_or("expected KEY=VALUE")?;
    Ok((k.to_owned(), v.to_owned()))
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // Thousands of sockets need thousands of descriptors; the soft limit is often 1,024.
    procfs::raise_fd_limit();
    // Start the shared clock before anything is stamped.
    stamp::now_us();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Load(args) => load::run(args).await,
            Command::Idle(args) => idle::run(args).await,
            Command::History(args) => history::run(args).await,
            Command::Report(args) => report::run(args),
        }
    });
    // Thousands of connection tasks may still be parked on their sockets: do not wait for them.
    runtime.shutdown_background();
    result
}
