//! trawl's throughput harness: how many events per second the matcher
//! evaluates, against the floor of a bare literal scan, on a generated
//! corpus, with the rules you give it.
//!
//! `cargo run --release -p trawl-bench -- throughput [--rules PATH]... [--events N] [--threads N]`
//!
//! Each measure is one line that starts with `key=value` (so scripts can
//! grep it), followed by `#` and what was measured.

use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::Arc;

/// The allocator the `trawl` binary runs with on Linux (see
/// `sensor/src/allocator.rs`), so the harness measures what users run:
/// loading the rules is mostly small allocations, and took about 15% longer
/// with the system allocator (medians of 6 alternated runs, 162 against
/// 140 ms), for 17 MB less peak RSS.
#[cfg(target_os = "linux")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use trawl_bench::corpus::{self, Corpus};
use trawl_bench::floor::Floor;
use trawl_bench::floor::FloorScratch;
use trawl_bench::measure::{
    batches, engine_pass, floor_pass, peak_rss_mb, pipeline_pass, scratches, Pass, Rounds,
};
use trawl_bench::sources::load_rules;
use trawl_engine::event::{fields, EventKind, Os};

#[derive(Parser)]
#[command(name = "trawl-bench", about = "trawl's benchmark harness")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Matcher events/s against the literal-scan floor, compile time, peak
    /// RSS and 1 → N thread scaling, on a generated corpus.
    Throughput(ThroughputArgs),
}

#[derive(Args)]
struct ThroughputArgs {
    /// Sigma/KQL rule files or folders (repeatable); without it, the
    /// embedded seed pack.
    #[arg(long = "rules", value_name = "PATH")]
    rules: Vec<PathBuf>,
    /// Events in the generated corpus (each pass evaluates all of them).
    #[arg(long, default_value_t = 50_000)]
    events: usize,
    /// Worker threads for the headline figures; the scaling lines go from 1
    /// to this. Default: the machine's cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Timed rounds (after one warm-up round); each round runs every
    /// measure once, in turn, and the median is shown.
    #[arg(long, default_value_t = 5)]
    passes: usize,
    /// Corpus seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Throughput(args) => throughput(&args),
    }
}

fn throughput(args: &ThroughputArgs) -> Result<()> {
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let events_n = args.events.max(1);

    let loaded = load_rules(&args.rules).context("loading the rules given with --rules")?;
    let ruleset = Arc::new(loaded.ruleset);
    let out_of_scope = loaded.unsupported.iter().filter(|u| u.out_of_scope).count();
    let what = if args.rules.is_empty() {
        "the embedded seed pack".to_owned()
    } else {
        args.rules
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    println!(
        "# rules: {} compiled from {} files of {what}; {} unsupported, {} other log sources passed over",
        ruleset.len(),
        loaded.files,
        loaded.unsupported.len() - out_of_scope,
        out_of_scope
    );

    let floor = Floor::build(ruleset.rules());
    let fs = floor.stats();
    println!(
        "# floor: {} distinct literals on {} fields ({} for Windows process starts, {} for Windows file creations); \
         {} regex tests and {} IOC lists are not scanned by the floor",
        fs.literals,
        fs.fields,
        floor.view_literals(EventKind::ProcessStart, Os::Windows),
        floor.view_literals(EventKind::FileCreate, Os::Windows),
        fs.regexes,
        fs.ioc_rules
    );

    let rss_rules = peak_rss_mb();

    let Corpus { events, mix, .. } = corpus::generate(events_n, args.seed);
    let mut lengths: Vec<usize> = events
        .iter()
        .filter_map(|e| e.get(&fields::COMMAND_LINE)?.as_str().map(str::len))
        .collect();
    lengths.sort_unstable();
    let pct = |p: usize| lengths.get(lengths.len() * p / 100).copied().unwrap_or(0);
    println!(
        "# corpus: {} events (seed {}): {} Windows and {} Linux process starts, {} file creations, {} writes, {} deletions, {} planted intrusion events; \
         command lines {}/{}/{} chars (median/p90/p99)",
        events.len(),
        args.seed,
        mix.windows_process,
        mix.linux_process,
        mix.file_create,
        mix.file_write,
        mix.file_delete,
        mix.planted,
        pct(50),
        pct(90),
        pct(99)
    );
    println!(
        "# each figure: the median of {} timed round(s) over all events (after a warm-up round; each round runs every measure once, in turn), {threads} thread(s) unless the line says otherwise",
        args.passes
    );

    let rss_corpus = peak_rss_mb();
    // Engine, floor, the engine without its memory of field texts and the
    // engine without its kept verdicts, taken in turn round after round, so
    // the ratios compare passes run at the same moment (see `Rounds`).
    let mut engine_scratch = scratches(&ruleset, threads);
    let mut floor_scratch: Vec<FloorScratch> =
        (0..threads).map(|_| FloorScratch::default()).collect();
    let mut plain_scratch = scratches(&ruleset, threads);
    plain_scratch
        .iter_mut()
        .for_each(|s| s.remember_texts(false));
    let mut unkept_scratch = scratches(&ruleset, threads);
    unkept_scratch
        .iter_mut()
        .for_each(|s| s.remember_verdicts(false));
    let headline = Rounds::take(
        args.passes,
        &mut [
            &mut || engine_pass(&ruleset, &events, &mut engine_scratch),
            &mut || floor_pass(&floor, &events, &mut floor_scratch),
            &mut || engine_pass(&ruleset, &events, &mut plain_scratch),
            &mut || engine_pass(&ruleset, &events, &mut unkept_scratch),
        ],
    );
    let rss_engine = peak_rss_mb();
    let (engine, floor_run, plain) = (headline.median(0), headline.median(1), headline.median(2));
    // The memories only save work: with either off, the same alerts.
    for (i, off) in [(2, "memory of field texts"), (3, "kept verdicts")] {
        let alerted = headline.median(i).alerted;
        anyhow::ensure!(
            alerted == engine.alerted,
            "the matcher raised {alerted} alerts with its {off} off and {} with it on: a bug in the matcher, please report it",
            engine.alerted
        );
    }
    println!(
        "engine_events_per_sec={:.0}  # Ruleset::evaluate, {threads} thread(s); {} events ({:.2}%) raised an alert",
        engine.rate(events.len()),
        engine.alerted,
        100.0 * engine.alerted as f64 / events.len() as f64
    );
    println!(
        "floor_events_per_sec={:.0}  # one overlapping case-insensitive Aho-Corasick pass per field over every literal, {threads} thread(s); {:.1} literal hits per event",
        floor_run.rate(events.len()),
        floor_run.alerted as f64 / events.len() as f64
    );
    println!(
        "ratio={:.3}  # engine/floor, the median of the rounds' own ratios: 1.0 or more means evaluating every rule costs no more than scanning for their literals",
        headline.median_speedup(0, 1)
    );
    // Without the matcher's memory of field texts: every field of every
    // event scanned, as the floor scans them.
    println!(
        "engine_unremembered_events_per_sec={:.0} ratio_unremembered={:.3}  # the same with the matcher's memory of field texts off: every field of every event scanned",
        plain.rate(events.len()),
        headline.median_speedup(2, 1)
    );
    println!(
        "engine_unkept_events_per_sec={:.0} kept_speedup={:.3}  # the same with the matcher's kept verdicts off: every candidate rule evaluated; kept_speedup is the engine's over it, the median of the rounds' own ratios",
        headline.median(3).rate(events.len()),
        headline.median_speedup(0, 3)
    );
    println!(
        "compile_ms={:.1}  # reading, parsing and compiling the rules (one run)",
        loaded.elapsed.as_secs_f64() * 1000.0
    );

    // 1..=N threads, direct and through the pipeline, all taken in turn; each
    // speed-up is the median of the rounds' own ratios to one thread.
    let shared_scratch = RefCell::new(engine_scratch);
    let mut direct: Vec<_> = (1..=threads)
        .map(|t| {
            let (ruleset, events, scratch) = (&ruleset, &events, &shared_scratch);
            move || engine_pass(ruleset, events, &mut scratch.borrow_mut()[..t])
        })
        .collect();
    let mut piped: Vec<_> = (1..=threads)
        .map(|t| {
            let (ruleset, events) = (&ruleset, &events);
            move || pipeline_pass(ruleset, batches(events, 512), t)
        })
        .collect();
    let mut runs: Vec<&mut dyn FnMut() -> Pass> = Vec::new();
    for run in &mut direct {
        runs.push(run);
    }
    for run in &mut piped {
        runs.push(run);
    }
    let scaling = Rounds::take(args.passes, &mut runs);
    for t in 1..=threads {
        let (d, p) = (t - 1, threads + t - 1);
        println!(
            "threads={t} engine_events_per_sec={:.0} speedup={:.2} pipeline_events_per_sec={:.0} pipeline_speedup={:.2}  \
             # pipeline: batches of 512 through the bounded queue to {t} worker(s), alerts rendered, ordered sink",
            scaling.median(d).rate(events.len()),
            scaling.median_speedup(d, 0),
            scaling.median(p).rate(events.len()),
            scaling.median_speedup(p, threads),
        );
    }

    let mb = |v: Option<f64>| v.map_or_else(|| "?".to_owned(), |v| format!("{v:.1}"));
    match peak_rss_mb() {
        Some(peak) => println!(
            "peak_rss_mb={peak:.1}  # VmHWM of this process: {} MB after loading the rules and building the floor, {} MB with the corpus, \
             {} MB after the engine and floor passes ({threads} scratch(es) each, with both memories, without memory of texts and without kept verdicts); the pipeline runs add a copy of the corpus",
            mb(rss_rules),
            mb(rss_corpus),
            mb(rss_engine)
        ),
        None => println!("peak_rss_mb=unknown  # no /proc/self/status on this system"),
    }
    Ok(())
}
