//! Records/s of the trace readers.
//!
//! - `parse/ndjson_line`: `trawl_replay::ndjson::parse_line` on one thread
//!   over a trace generated from the corpus (20,000 lines, in memory).
//! - `parse/ndjson_replay`: the same trace as a file through
//!   `trawl_replay::replay` with no rules (reading and parsing on every
//!   core, evaluating against an empty ruleset, the ordered writer).
//! - `parse/evtx_replay`: `../shared/corpus/evtx-attack-samples` through
//!   `trawl_replay::replay` with no rules (skipped when absent).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use trawl_bench::measure::NullSink;
use trawl_bench::sources::{evtx_samples, skipped};
use trawl_engine::matcher::Ruleset;
use trawl_replay::{replay, ReplayConfig, ReplaySummary};

fn replay_all(paths: &[PathBuf], rules: &Arc<Ruleset>) -> ReplaySummary {
    replay(
        paths,
        Arc::clone(rules),
        &ReplayConfig::default(),
        Box::new(NullSink::default()),
        &mut |_: &trawl_replay::Problem| {},
    )
}

fn parse(c: &mut Criterion) {
    let events = trawl_bench::corpus(20_000, 42);
    let lines: Vec<String> = events
        .iter()
        .map(|e| serde_json::to_string(e).expect("events serialize"))
        .collect();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("ndjson_line", |b| {
        b.iter(|| {
            let mut host = None;
            lines
                .iter()
                .filter(|l| trawl_replay::ndjson::parse_line(l, &mut host).is_ok())
                .count()
        })
    });

    let mut trace = tempfile::Builder::new()
        .suffix(".ndjson")
        .tempfile()
        .expect("a temp file");
    for l in &lines {
        writeln!(trace, "{l}").expect("writing the trace");
    }
    trace.flush().expect("flushing the trace");
    let empty = Arc::new(Ruleset::compile(vec![]).0);
    let trace_path = vec![trace.path().to_path_buf()];
    let summary = replay_all(&trace_path, &empty);
    assert_eq!(summary.records, lines.len() as u64, "every line replays");
    g.bench_function("ndjson_replay", |b| {
        b.iter(|| replay_all(&trace_path, &empty))
    });

    match evtx_samples() {
        Some(dir) => {
            let paths = vec![dir];
            let summary = replay_all(&paths, &empty);
            eprintln!(
                "parse/evtx_replay: {} files, {} records, {} events",
                summary.files, summary.records, summary.pipeline.events
            );
            g.throughput(Throughput::Elements(summary.records));
            g.sample_size(20);
            g.bench_function("evtx_replay", |b| b.iter(|| replay_all(&paths, &empty)));
        }
        None => skipped("parse/evtx_replay"),
    }
    g.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
