//! Matching cost alone on the events of a folder of `.evtx` files: reads
//! every record once, then makes `REPS` passes over the events on one thread
//! (after a warm-up pass). Each pass runs in turn the compiled rules, the
//! naive floor (one overlapping case-insensitive Aho-Corasick pass per field
//! over every literal of the same rules, nothing else) and the rules again
//! with the engine's memory of field texts off. It prints µs per event of
//! each and the ratio engine/floor (above 1: the engine is faster than
//! merely scanning), the median of the passes' own ratios.
//!
//! With no RULES folder the embedded seed pack is measured. Times are this
//! thread's CPU time (from `CLOCK_THREAD_CPUTIME_ID` where it exists, else
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
    let mut dets = Vec::new();
    // Each pass as a replay of these logs: values they repeat are remembered,
    // values seen in the pass before are not.
    let mut engine_pass = |scratch: &mut Scratch| {
        scratch.forget();
        let mut fired = 0usize;
        for e in &events {
            dets.clear();
            rs.evaluate(e, scratch, &mut dets);
            fired += dets.len();
        }
        fired
    };
    let floor = (!engine_only).then(|| Floor::build(rs.rules()));
    let mut floor_scratch = FloorScratch::default();
    // Engine, floor and the engine without its memory of field texts, taken
    // in turn pass after pass (after one warm-up pass of each), so a machine
    // that drifts moves all three alike; each ratio is the median of the
    // passes' own ratios.
    let (mut engine, mut floor_t, mut plain) =
        (Timed::default(), Timed::default(), Timed::default());
    let (mut fired, mut hits) = (0usize, 0u64);
    for rep in 0..=reps {
        let warm_up = rep == 0;
        let t = Timer::start();
        let f = engine_pass(&mut scratch);
        engine.add(t, warm_up);
        fired += if warm_up { 0 } else { f };
        let Some(floor) = &floor else { continue };
        let t = Timer::start();
        let h: u64 = events
            .iter()
            .map(|e| floor.scan(e, &mut floor_scratch))
            .sum();
        floor_t.add(t, warm_up);
        hits += if warm_up { 0 } else { h };
        let t = Timer::start();
        engine_pass(&mut plain_scratch);
        plain.add(t, warm_up);
    }
    let reps_f = reps as f64;
    println!(
        "engine: {:.2} µs/event, {:.0} events/s per core (wall {:.0}), {} detections per pass",
        engine.cpu * 1e6 / (n * reps_f),
        n * reps_f / engine.cpu,
        n * reps_f / engine.wall,
        fired / reps
    );
    if floor.is_none() {
        return;
    }
    println!(
        "floor: {:.2} µs/event, {:.0} events/s per core (wall {:.0}), {:.1} literal hits per event",
        floor_t.cpu * 1e6 / (n * reps_f),
        n * reps_f / floor_t.cpu,
        n * reps_f / floor_t.wall,
        hits as f64 / (n * reps_f)
    );
    println!(
        "ratio engine/floor: {:.2} (median of the passes' own ratios)",
        median_ratio(&floor_t, &engine)
    );
    println!(
        "engine, memory of field texts off: {:.2} µs/event, engine/floor {:.2}",
        plain.cpu * 1e6 / (n * reps_f),
        median_ratio(&floor_t, &plain)
    );
}

/// CPU and wall time of one measure's timed passes.
#[derive(Default)]
struct Timed {
    cpu: f64,
    wall: f64,
    /// Each timed pass's CPU time.
    passes: Vec<f64>,
}

impl Timed {
    fn add(&mut self, t: Timer, warm_up: bool) {
        let (cpu, wall) = t.stop();
        if !warm_up {
            self.cpu += cpu;
            self.wall += wall;
            self.passes.push(cpu);
        }
    }
}

/// The median over passes of `a`'s time over `b`'s time in the same pass
/// (of an even number, the lower middle one).
fn median_ratio(a: &Timed, b: &Timed) -> f64 {
    let mut r: Vec<f64> = a.passes.iter().zip(&b.passes).map(|(a, b)| a / b).collect();
    r.sort_by(f64::total_cmp);
    r[(r.len() - 1) / 2]
}

/// A started timing: wall clock and this thread's CPU time.
struct Timer {
    start: Instant,
    cpu0: Option<f64>,
}

impl Timer {
    fn start() -> Timer {
        Timer {
            start: Instant::now(),
            cpu0: cpu_secs(),
        }
    }

    /// (CPU seconds, wall seconds) since the start; CPU falls back to wall.
    fn stop(self) -> (f64, f64) {
        let wall = self.start.elapsed().as_secs_f64();
        let cpu = self.cpu0.zip(cpu_secs()).map_or(wall, |(a, b)| b - a);
        (cpu, wall)
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
