//! Matching cost alone on the events of a folder of `.evtx` files: reads
//! every record once, then runs the compiled rules over the events `REPS`
//! times on one thread and prints µs per event.
//!
//! ```sh
//! cargo run --release -p trawl-replay --example evtx_match -- ../shared/corpus/evtx-attack-samples ../shared/corpus/sigma/rules 20
//! ```

use std::path::PathBuf;
use std::time::Instant;

use trawl_engine::load::RuleSources;
use trawl_engine::matcher::Scratch;
use trawl_replay::evtx_file::{chunks, read_chunk, settings};
use trawl_replay::unit::UnitOutput;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [logs, rules, reps] = &args[..] else {
        eprintln!("usage: evtx_match LOGS RULES REPS");
        std::process::exit(2);
    };
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
        default_rules: false,
        rules: vec![PathBuf::from(rules)],
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
    let mut scratch = Scratch::new(&rs);
    let mut dets = Vec::new();
    let mut fired = 0usize;
    let start = Instant::now();
    for _ in 0..reps {
        for e in &events {
            dets.clear();
            rs.evaluate(e, &mut scratch, &mut dets);
            fired += dets.len();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    for kind in [
        trawl_engine::event::EventKind::ProcessStart,
        trawl_engine::event::EventKind::FileCreate,
    ] {
        println!(
            "{kind:?}: {:?}",
            rs.view_stats(kind, trawl_engine::event::Os::Windows)
        );
    }
    let n = (events.len() * reps) as f64;
    println!(
        "{:.2} µs/event, {:.0} events/s, {} detections per pass",
        secs * 1e6 / n,
        n / secs,
        fired / reps.max(1)
    );
}
