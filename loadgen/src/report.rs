//! The side-by-side table: reads the RESULT lines of one bench run back from the results file
//! (`target/bench/results.jsonl`, one JSON object per line) and prints, for every measurement
//! and metric, the median over the runs with min–max, Tidings next to Socket.IO and their ratio.
//!
//! The table is Markdown, so it reads in a terminal and pastes into BENCHMARKS.md as is.

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;
use std::collections::BTreeMap;

#[derive(Args, Clone, Debug)]
pub struct ReportArgs {
    /// The results file (JSON lines, as scripts/bench writes them).
    pub file: String,
    /// Which bench run to show (the `run_id` meta field); default: the file's last one.
    #[arg(long)]
    pub run_id: Option<String>,
}

/// One row of the table: a JSON field of one kind of result.
struct Metric {
    kind: &'static str,
    name: &'static str,
    path: &'static str,
    scale: f64,
    decimals: usize,
}

const fn m(
    kind: &'static str,
    name: &'static str,
    path: &'static str,
    scale: f64,
    decimals: usize,
) -> Metric {
    Metric {
        kind,
        name,
        path,
        scale,
        decimals,
    }
}

const METRICS: &[Metric] = &[
    m("load", "deliveries/s", "/delivered_per_s", 1.0, 0),
    m("load", "sends, % of target", "/send_ratio", 100.0, 1),
    m("load", "end-to-end p50 (ms)", "/e2e/p50_ms", 1.0, 2),
    m("load", "end-to-end p99 (ms)", "/e2e/p99_ms", 1.0, 2),
    m("load", "end-to-end max (ms)", "/e2e/max_ms", 1.0, 1),
    m("load", "ack p99 (ms)", "/ack/p99_ms", 1.0, 2),
    m("load", "lost + duplicated", "/lost", 1.0, 0),
    m(
        "load",
        "server CPU per delivery (µs)",
        "/cpu_us_per_delivery",
        1.0,
        1,
    ),
    m("load", "server CPU (cores)", "/server_cores", 1.0, 2),
    m(
        "load",
        "server RSS (MiB)",
        "/server_rss_kib",
        1.0 / 1024.0,
        1,
    ),
    m("load", "loadgen CPU (cores)", "/loadgen_cores", 1.0, 2),
    m("load", "machine busy (cores)", "/machine_cores", 1.0, 2),
    m("sweep", "highest deliveries/s", "/delivered_per_s", 1.0, 0),
    m("sweep", "at messages/s", "/rate_target", 1.0, 0),
    m("sweep", "end-to-end p99 (ms)", "/e2e/p99_ms", 1.0, 2),
    m(
        "sweep",
        "server CPU per delivery (µs)",
        "/cpu_us_per_delivery",
        1.0,
        1,
    ),
    m(
        "idle",
        "RSS per idle connection (KiB)",
        "/per_conn_kib",
        1.0,
        1,
    ),
    m(
        "idle",
        "RSS at start (MiB)",
        "/rss_start_kib",
        1.0 / 1024.0,
        1,
    ),
    m(
        "idle",
        "RSS after sign-ups (MiB)",
        "/rss_registered_kib",
        1.0 / 1024.0,
        1,
    ),
    m(
        "idle",
        "RSS with connections (MiB)",
        "/rss_connected_kib",
        1.0 / 1024.0,
        1,
    ),
    m("idle", "sign-up time (s)", "/register_s", 1.0, 1),
    m("history", "fill (messages/s)", "/fill_msgs_per_s", 1.0, 0),
    m("history", "newest page p50 (ms)", "/newest/p50_ms", 1.0, 2),
    m("history", "newest page p99 (ms)", "/newest/p99_ms", 1.0, 2),
    m("history", "oldest page p50 (ms)", "/deep/p50_ms", 1.0, 2),
    m("history", "oldest page p99 (ms)", "/deep/p99_ms", 1.0, 2),
    m(
        "history",
        "search rare word p50 (ms)",
        "/search/rare/p50_ms",
        1.0,
        2,
    ),
    m(
        "history",
        "search rare word p99 (ms)",
        "/search/rare/p99_ms",
        1.0,
        2,
    ),
    m(
        "history",
        "search common word p50 (ms)",
        "/search/common/p50_ms",
        1.0,
        2,
    ),
    m(
        "history",
        "search common word p99 (ms)",
        "/search/common/p99_ms",
        1.0,
        2,
    ),
    m(
        "history",
        "search two words p50 (ms)",
        "/search/two_words/p50_ms",
        1.0,
        2,
    ),
    m(
        "history",
        "search two words p99 (ms)",
        "/search/two_words/p99_ms",
        1.0,
        2,
    ),
];

/// The heading a result belongs under, e.g. "a — 1 node, 2000 msg/s".
fn group_of(v: &Value) -> Option<String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_owned();
    let n = |k: &str| v.get(k).and_then(Value::as_f64).unwrap_or(0.0);
    let nodes = |k: f64| {
        if k == 1.0 {
            "1 node".to_owned()
        } else {
            format!("{k} nodes")
        }
    };
    Some(match v.get("kind")?.as_str()? {
        "load" => format!(
            "{} — {}, {} connections, {:.0} msg/s",
            s("scenario"),
            nodes(n("nodes")),
            n("conns"),
            n("rate_target")
        ),
        "sweep" => format!(
            "{} — sweep, {}, {} connections",
            s("scenario"),
            nodes(n("nodes")),
            n("conns")
        ),
        "idle" => format!("{} — {} idle connections", s("scenario"), n("conns")),
        "history" => format!(
            "{} — history of {} messages on {}",
            s("scenario"),
            n("messages"),
            s("db")
        ),
        _ => return None,
    })
}

/// median (min–max), or just the value for a single run.
fn summary(values: &mut [f64], decimals: usize) -> (f64, String) {
    values.sort_by(f64::total_cmp);
    let median = if values.len() % 2 == 1 {
        values[values.len() / 2]
    } else {
        (values[values.len() / 2 - 1] + values[values.len() / 2]) / 2.0
    };
    let text = if values.len() == 1 || values[0] == values[values.len() - 1] {
        format!("{median:.decimals$}")
    } else {
        format!(
            "{median:.decimals$} ({:.decimals$}–{:.decimals$})",
            values[0],
            values[values.len() - 1]
        )
    };
    (median, text)
}

pub fn run(args: ReportArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file).with_context(|| args.file.clone())?;
    let results: Vec<Value> = text
        .lines()
        .filter_map(|line| serde_json::from_str(line.trim_start_matches("RESULT ")).ok())
        .collect();
    let run_id = match args.run_id {
        Some(id) => id,
        None => results
            .iter()
            .rev()
            .find_map(|v| v.get("run_id")?.as_str().map(str::to_owned))
            .context("no run_id in the results file")?,
    };
    let results: Vec<&Value> = results
        .iter()
        .filter(|v| v.get("run_id").and_then(Value::as_str) == Some(&run_id))
        .collect();
    if results.is_empty() {
        bail!("no results for run {run_id}");
    }

    // group → metric index → server → values, groups in order of appearance.
    let mut order: Vec<String> = Vec::new();
    let mut table: BTreeMap<String, BTreeMap<usize, BTreeMap<String, Vec<f64>>>> = BTreeMap::new();
    for v in &results {
        let Some(group) = group_of(v) else { continue };
        let kind = v["kind"].as_str().unwrap_or_default();
        let server = v["server"].as_str().unwrap_or("?").to_owned();
        if !order.contains(&group) {
            order.push(group.clone());
        }
        for (i, metric) in METRICS.iter().enumerate().filter(|(_, m)| m.kind == kind) {
            let mut value = v.pointer(metric.path).and_then(Value::as_f64);
            if metric.path == "/lost" {
                value = value.map(|l| l + v["duplicates"].as_f64().unwrap_or(0.0));
            }
            if let Some(value) = value {
                table
                    .entry(group.clone())
                    .or_default()
                    .entry(i)
                    .or_default()
                    .entry(server.clone())
                    .or_default()
                    .push(value * metric.scale);
            }
        }
    }

    println!("Bench run {run_id}: median over runs (min–max); ratio = Tidings / Socket.IO\n");
    for group in order {
        println!("### {group}\n");
        println!("| metric | Tidings | Socket.IO | ratio |");
        println!("|---|---:|---:|---:|");
        for (i, servers) in &table[&group] {
            let metric = &METRICS[*i];
            let cell = |server: &str| {
                servers
                    .get(server)
                    .map(|values| summary(&mut values.clone(), metric.decimals))
            };
            let (t, s) = (cell("tidings"), cell("socketio"));
            let ratio = match (&t, &s) {
                (Some((t, _)), Some((s, _))) if *s != 0.0 => format!("{:.2}", t / s),
                _ => "—".into(),
            };
            let show =
                |c: &Option<(f64, String)>| c.as_ref().map_or("—".into(), |(_, s)| s.clone());
            println!(
                "| {} | {} | {} | {} |",
                metric.name,
                show(&t),
                show(&s),
                ratio
            );
        }
        println!();
    }
    Ok(())
}
