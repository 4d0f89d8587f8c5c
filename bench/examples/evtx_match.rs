//! Matching cost alone on the events of a folder of `.evtx` files: reads
//! every record once, then runs the compiled rules over the events `REPS`
//! times on one thread and prints µs per event; then, on the same events, the
//! naive floor (one overlapping case-insensitive Aho-Corasick pass per field
//! over every literal of the same rules, nothing else) and the ratio
//! engine/floor (above 1: the engine is faster than merely scanning); then
//! the engine with its memory of field texts off.
//!
//! With no RULES folder the embedded seed pack is measured. Times are this
//! thread's CPU time (from `/proc/thread-self/schedstat` where it exists, else
//! wall time), so a busy machine skews them less; the wall-clock figure is
//! printed beside.
//!
//! ```sh
//! cargo run --release -p trawl-bench --example evtx_match -- ../shared/corpus/evtx-attack-samples \
//!     ../shared/corpus/sigma/rules ../shared/corpus/sigma/rules-emerging-threats \
//!     ../shared/corpus/sigma/rules-threat-hunting 20
//! ```

use std::path::PathBuf;
use std::time::Instant;

use trawl_bench::floor::{Floor, FloorScratch};
use trawl_engine::event::{EventKind, Os};
use trawl_engine::load::RuleSources;
use trawl_engine::matcher::Scratch;
use trawl_replay::evtx_file::{chunks, read_chunk, settings};
use trawl_replay::unit::UnitOutput;

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    // `--engine-only`: skip the floor (for profiling the engine alone).
    let engine_only = args.iter().any(|a| a == "--engine-only");
    args.retain(|a| a != "--engine-only");
    let (Some(logs), Some(reps)) = (args.first(), args.last().filter(|_| args.len() >= 2)) else {
        eprintln!("usage: evtx_match [--engine-only] LOGS [RULES]... REPS");
        std::process::exit(2);
    };
    let rules: Vec<PathBuf> = args[1..args.len() - 1].iter().map(PathBuf::from).collect();
    let reps: usize = reps.parse().expect("REPS is a number");
    let mut out = UnitOutput::default();
    let settings = settings();
    for entry in walkdir::WalkDir::new(logs).sort_by_file_name() {
        let Ok(entry) = entry else { continue };
        if entry.path().extension().is_none_or(|x| x != "evtx") {
            continue;
        }
        let Ok(cs) = chunks(entry.path()) else {
            continue;
        };
        for c in cs.flatten() {
            read_chunk(c, &settings, &mut out);
        }
    }
    let events: Vec<_> = out.events.into_iter().map(|e| e.event).collect();
    let loaded = RuleSources {
        default_rules: rules.is_empty(),
        rules,
        iocs: vec![],
    }
    .load()
    .expect("rules load");
    let rs = loaded.ruleset;
    println!(
        "{} events, {} rules, loaded in {:?}",
        events.len(),
        rs.len(),
        loaded.elapsed
    );
    // Compile alone (the load above also parses YAML): the same rules again.
    let again = rs.rules().to_vec();
    let start = Instant::now();
    let (_compiled, _) = trawl_engine::matcher::Ruleset::compile(again);
    println!(
        "compile alone: {:.1} ms",
        start.elapsed().as_secs_f64() * 1e3
    );
    for kind in [EventKind::ProcessStart, EventKind::FileCreate] {
        println!("{kind:?}: {:?}", rs.view_stats(kind, Os::Windows));
    }
    let mut scratch = Scratch::new(&rs);
    let mut dets = Vec::new();
    let mut fired = 0usize;
    let n = (events.len() * reps) as f64;
    let (start, cpu0) = (Instant::now(), cpu_secs());
    for _ in 0..reps {
        // Each pass as a replay of these logs: values they repeat are
        // remembered, values seen in the pass before are not.
        scratch.forget();
        for e in &events {
            dets.clear();
            rs.evaluate(e, &mut scratch, &mut dets);
            fired += dets.len();
        }
    }
    let (engine, wall) = elapsed(start, cpu0);
    println!(
        "engine: {:.2} µs/event, {:.0} events/s per core (wall {:.0}), {} detections per pass",
        engine * 1e6 / n,
        n / engine,
        n / wall,
        fired / reps.max(1)
    );

    if engine_only {
        return;
    }
    let floor = Floor::build(rs.rules());
    let mut floor_scratch = FloorScratch::default();
    let mut hits = 0u64;
    let (start, cpu0) = (Instant::now(), cpu_secs());
    for _ in 0..reps {
        for e in &events {
            hits += floor.scan(e, &mut floor_scratch);
        }
    }
    let (floor_secs, wall) = elapsed(start, cpu0);
    println!(
        "floor: {:.2} µs/event, {:.0} events/s per core (wall {:.0}), {:.1} literal hits per event",
        floor_secs * 1e6 / n,
        n / floor_secs,
        n / wall,
        hits as f64 / n
    );
    println!("ratio engine/floor: {:.2}", floor_secs / engine);
    // The engine again with its memory of field texts off.
    scratch.remember_texts(false);
    let (start, cpu0) = (Instant::now(), cpu_secs());
    for _ in 0..reps {
        for e in &events {
            dets.clear();
            rs.evaluate(e, &mut scratch, &mut dets);
        }
    }
    let (plain, _) = elapsed(start, cpu0);
    println!(
        "engine, memory of field texts off: {:.2} µs/event, engine/floor {:.2}",
        plain * 1e6 / n,
        floor_secs / plain
    );
}

/// This thread's CPU time so far, in seconds (`None` off Linux).
fn cpu_secs() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

/// (CPU seconds, wall seconds) since `start`/`cpu0`; CPU falls back to wall.
fn elapsed(start: Instant, cpu0: Option<f64>) -> (f64, f64) {
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu0.zip(cpu_secs()).map_or(wall, |(a, b)| b - a);
    (cpu, wall)
}
