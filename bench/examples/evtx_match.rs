//! Matching cost alone on the events of a folder of `.evtx` files: reads
//! every record once, then makes `REPS` passes over the events on one thread
//! (after a warm-up pass). Each pass runs in turn the compiled rules, the
//! naive floor (one overlapping case-insensitive Aho-Corasick pass per field
//! over every literal of the same rules, nothing else), the rules again
//! with the engine's memory of field texts off, and again with its kept
//! verdicts off. It prints µs per event of each and the ratio engine/floor
//! (above 1: the engine is faster than merely scanning), the median of the
//! passes' own ratios.
//!
//! With no RULES folder the embedded seed pack is measured. Times are this
//! thread's CPU time (from `CLOCK_THREAD_CPUTIME_ID` where it exists, else
//! wall time), so a busy machine skews them less. The passes are taken in
//! turn by [`Rounds`], as the throughput harness takes its own.
//!
//! ```sh
//! cargo run --release -p trawl-bench --example evtx_match -- ../shared/corpus/evtx-attack-samples \
//!     ../shared/corpus/sigma/rules ../shared/corpus/sigma/rules-emerging-threats \
//!     ../shared/corpus/sigma/rules-threat-hunting 20
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use trawl_bench::floor::{Floor, FloorScratch};
use trawl_bench::measure::{Pass, Rounds};
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
    let reps: usize = reps.parse::<usize>().expect("REPS is a number").max(1);
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
    let n = events.len() as f64;
    let mut scratch = Scratch::new(&rs);
    let mut plain_scratch = Scratch::new(&rs);
    plain_scratch.remember_texts(false);
    let mut unkept_scratch = Scratch::new(&rs);
    unkept_scratch.remember_verdicts(false);
    // Each pass as a replay of these logs: values they repeat are remembered,
    // values seen in the pass before are not.
    let engine_pass = |scratch: &mut Scratch, dets: &mut Vec<_>| {
        cpu_timed(|| {
            scratch.forget();
            let mut fired = 0;
            for e in &events {
                dets.clear();
                rs.evaluate(e, scratch, dets);
                fired += dets.len() as u64;
            }
            fired
        })
    };
    let floor = Floor::build(rs.rules());
    let mut floor_scratch = FloorScratch::default();
    let (mut dets, mut plain_dets, mut unkept_dets) = (Vec::new(), Vec::new(), Vec::new());
    let mut engine = || engine_pass(&mut scratch, &mut dets);
    let mut floor_run = || {
        cpu_timed(|| {
            (events.iter())
                .map(|e| floor.scan(e, &mut floor_scratch))
                .sum()
        })
    };
    let mut plain = || engine_pass(&mut plain_scratch, &mut plain_dets);
    let mut unkept = || engine_pass(&mut unkept_scratch, &mut unkept_dets);
    // Engine, floor and the engine without each of its memories, taken
    // in turn pass after pass (after one warm-up pass of each), so a machine
    // that drifts moves them all alike; each ratio is the median of the
    // passes' own ratios.
    let rounds = if engine_only {
        Rounds::take(reps, &mut [&mut engine])
    } else {
        Rounds::take(
            reps,
            &mut [&mut engine, &mut floor_run, &mut plain, &mut unkept],
        )
    };
    let passes = n * reps as f64;
    // The memories only save work: with either off, the same detections.
    for i in 2..rounds.measures() {
        assert_eq!(
            rounds.total(i).alerted,
            rounds.total(0).alerted,
            "measure {i} detected otherwise than the engine"
        );
    }
    let per_event = |i: usize| rounds.total(i).elapsed.as_secs_f64() / passes;
    println!(
        "engine: {:.2} µs/event, {:.0} events/s per core, {} detections per pass",
        per_event(0) * 1e6,
        1.0 / per_event(0),
        rounds.total(0).alerted / reps as u64
    );
    if engine_only {
        return;
    }
    println!(
        "floor: {:.2} µs/event, {:.0} events/s per core, {:.1} literal hits per event",
        per_event(1) * 1e6,
        1.0 / per_event(1),
        rounds.total(1).alerted as f64 / passes
    );
    println!(
        "ratio engine/floor: {:.2} (median of the passes' own ratios)",
        rounds.median_speedup(0, 1)
    );
    println!(
        "engine, memory of field texts off: {:.2} µs/event, engine/floor {:.2}",
        per_event(2) * 1e6,
        rounds.median_speedup(2, 1)
    );
    println!(
        "engine, kept verdicts off: {:.2} µs/event; the engine {:.3} times as fast",
        per_event(3) * 1e6,
        rounds.median_speedup(0, 3)
    );
}

/// A pass of `run` timed by this thread's CPU clock (the wall clock where
/// there is none); its count is what `run` returns.
fn cpu_timed(run: impl FnOnce() -> u64) -> Pass {
    let (start, cpu0) = (Instant::now(), cpu_secs());
    let alerted = run();
    let wall = start.elapsed().as_secs_f64();
    let cpu = cpu0.zip(cpu_secs()).map_or(wall, |(a, b)| b - a);
    Pass {
        elapsed: Duration::from_secs_f64(cpu.max(0.0)),
        alerted,
    }
}

/// This thread's CPU time so far, in seconds (`None` off Unix).
///
/// From `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`, which counts to the
/// nanosecond. `/proc/thread-self/schedstat`, read here before, moves in
/// whole 4 ms ticks on this kernel, as long as a pass of the samples.
fn cpu_secs() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call's duration.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        (rc == 0).then(|| ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
    }
    #[cfg(not(unix))]
    None
}
