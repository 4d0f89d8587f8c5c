//! Matching cost alone on the events of a folder of `.evtx` files: reads
//! every record once, then runs the compiled rules over the events `REPS`
//! times on one thread and prints µs per event; then, on the same events, the
//! naive floor (one overlapping case-insensitive Aho-Corasick pass per field
//! over every literal of the same rules, nothing else) and the ratio
//! engine/floor (above 1: the engine is faster than merely scanning).
//!
//! With no RULES folder the embedded seed pack is measured.
//!
//! ```sh
//! cargo run --release -p trawl-replay --example evtx_match -- ../shared/corpus/evtx-attack-samples \
//!     ../shared/corpus/sigma/rules ../shared/corpus/sigma/rules-emerging-threats \
//!     ../shared/corpus/sigma/rules-threat-hunting 20
//! ```

use std::path::PathBuf;
use std::time::Instant;

use trawl_engine::event::{EventKind, Os};
use trawl_engine::load::RuleSources;
use trawl_engine::matcher::{LiteralFloor, Scratch};
use trawl_replay::evtx_file::{chunks, read_chunk, settings};
use trawl_replay::unit::UnitOutput;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(logs), Some(reps)) = (args.first(), args.last().filter(|_| args.len() >= 2)) else {
        eprintln!("usage: evtx_match LOGS [RULES]... REPS");
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
    for kind in [EventKind::ProcessStart, EventKind::FileCreate] {
        println!("{kind:?}: {:?}", rs.view_stats(kind, Os::Windows));
    }
    let mut scratch = Scratch::new(&rs);
    let mut dets = Vec::new();
    let mut fired = 0usize;
    let n = (events.len() * reps) as f64;
    let start = Instant::now();
    for _ in 0..reps {
        for e in &events {
            dets.clear();
            rs.evaluate(e, &mut scratch, &mut dets);
            fired += dets.len();
        }
    }
    let engine = start.elapsed().as_secs_f64();
    println!(
        "engine: {:.2} µs/event, {:.0} events/s, {} detections per pass",
        engine * 1e6 / n,
        n / engine,
        fired / reps.max(1)
    );

    let floor = LiteralFloor::build(rs.rules());
    let mut hits = 0usize;
    let start = Instant::now();
    for _ in 0..reps {
        for e in &events {
            hits += floor.scan(e);
        }
    }
    let floor_secs = start.elapsed().as_secs_f64();
    println!(
        "floor: {:.2} µs/event, {:.0} events/s, {:.1} literal hits per event",
        floor_secs * 1e6 / n,
        n / floor_secs,
        hits as f64 / n
    );
    println!("ratio engine/floor: {:.2}", floor_secs / engine);
}
