//! Starting, watching over and stopping a live run (`trawl watch`,
//! `trawl record`), whatever the platform.
//!
//! Order of start: the stages, then the platform's sources (they push into
//! the intake's queue from the first moment), then the process table is
//! seeded, then the normalizer starts on the queued events — so a process
//! that starts while the table is being read is still seen. Stop (SIGINT,
//! SIGTERM, Ctrl-C, or `--duration`): sources stop first, then every stage
//! drains what it holds into the next, the engine finishes, the last alerts
//! are flushed and a final stats line is printed.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use crossbeam_channel::{bounded, Receiver, RecvTimeoutError};
use trawl_engine::alert::Format;
use trawl_engine::event::Event;
use trawl_engine::hash::HashCache;
use trawl_engine::matcher::Ruleset;
use trawl_engine::pipeline::{AlertSink, Pipeline, PipelineConfig};

use super::enrich::{seeded_table, EnrichConfig, EnrichCounters, Enrichment, ImageEnricher};
use super::intake::{Input, Intake, IntakeCounters};
use super::output::{
    open_append, run_batcher, Consumer, CountingSink, OutputCounters, PipelineConsumer, TraceWriter,
};
use super::proctable::ProcessInfo;
use super::stats::Snapshot;

/// Which program feeds process events (`--source`). Each platform offers
/// only its own, so `--help` lists what can run here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProcessSource {
    /// eBPF programs on the scheduler tracepoints (the default).
    #[cfg(not(windows))]
    Ebpf,
    /// The netlink process connector plus `/proc` (fallback; loses the
    /// command line of processes that exit before it is read).
    #[cfg(not(windows))]
    ProcConnector,
    /// The kernel process provider joined with Microsoft-Windows-Kernel-Process.
    #[cfg(windows)]
    Etw,
}

/// What the platform's sources should watch.
#[derive(Debug, Clone, Default)]
pub struct SourceOptions {
    /// `--watch PATH`: file events under these paths only (all local
    /// filesystems when empty).
    pub watch: Vec<PathBuf>,
    /// `--source`: force one process source (`None`: the best that works).
    pub process_source: Option<ProcessSource>,
}

/// A running OS source.
pub trait SourceHandle: Send {
    /// Its name in stats lines (`ebpf`, `fanotify`, `proc_connector`).
    fn name(&self) -> &'static str;
    /// Its counters; names starting with `lost` or equal to `overflows` are
    /// losses (they add up in the final loss total).
    fn stats(&self) -> Vec<(&'static str, u64)>;
    /// Stops reading and waits for its threads; pushes nothing afterwards.
    fn stop(&mut self);
}

/// What a platform brings to a live run.
pub trait LivePlatform {
    /// Starts the sources, which push into `intake`. The first line of the
    /// returned description says what runs (printed when the run starts).
    fn start_sources(
        &self,
        intake: &Intake,
        options: &SourceOptions,
    ) -> anyhow::Result<(Vec<Box<dyn SourceHandle>>, String)>;
    /// The processes running now, for the process table.
    fn seed_processes(&self) -> Vec<(u32, ProcessInfo)>;
    /// Fields read from program files on process starts, if the platform has any.
    fn image_enricher(&self) -> Option<Arc<dyn ImageEnricher>> {
        None
    }
    /// This machine's name, stamped on every event.
    fn host_name(&self) -> Option<String>;
}

/// `trawl watch` or `trawl record`.
pub enum Mode {
    Watch {
        ruleset: Arc<Ruleset>,
        /// `--output FILE` (appended) or stdout.
        output: Option<PathBuf>,
        /// `--stats-interval` (zero: only the final line).
        stats_interval: Duration,
    },
    Record {
        output: PathBuf,
        duration: Option<Duration>,
    },
}

/// How a live run ended.
#[derive(Debug)]
pub struct RunReport {
    /// Writing alerts or the trace failed at some point.
    pub write_error: Option<io::Error>,
}

/// Sizes of the live queues.
const INTAKE_QUEUE: usize = 1 << 16;
const READY_QUEUE: usize = 1 << 14;

/// Runs until a stop signal (or the record duration), then drains and stops.
pub fn run(
    platform: &dyn LivePlatform,
    mode: Mode,
    options: &SourceOptions,
) -> anyhow::Result<RunReport> {
    let started = Instant::now();
    let (stop_tx, stop_rx) = bounded::<()>(1);
    ctrlc::set_handler(move || {
        let _ = stop_tx.try_send(());
    })
    .context("installing the SIGINT/SIGTERM handler")?;

    let (intake, inputs) = Intake::new(INTAKE_QUEUE);
    let intake_queue_probe = inputs.clone();
    let (ready_tx, ready_rx) = bounded(READY_QUEUE);
    let output_counters = Arc::new(OutputCounters::default());

    // The consumer first: a bad --output fails before anything is loaded.
    let (stage, out_key, out_count, deadline, stats_interval) = match mode {
        Mode::Watch {
            ruleset,
            output,
            stats_interval,
        } => {
            let (sink, alerts): (Box<dyn AlertSink>, _) = match &output {
                Some(path) => {
                    let f = open_append(path)
                        .with_context(|| format!("opening alert output {}", path.display()))?;
                    let s = CountingSink::new(f);
                    let a = Arc::clone(&s.alerts);
                    (Box::new(s), a)
                }
                None => {
                    let s = CountingSink::new(io::stdout());
                    let a = Arc::clone(&s.alerts);
                    (Box::new(s), a)
                }
            };
            let pipeline = Pipeline::start(
                ruleset,
                PipelineConfig {
                    format: Format::Json,
                    flush_each_batch: true,
                    ..PipelineConfig::default()
                },
                sink,
            );
            let consumer = PipelineConsumer::new(pipeline);
            let depth = Arc::clone(&consumer.depth);
            (
                Stage::Engine(
                    spawn_batcher(consumer, ready_rx.clone(), &output_counters),
                    depth,
                ),
                "alerts",
                alerts,
                None,
                stats_interval,
            )
        }
        Mode::Record { output, duration } => {
            let f = std::fs::File::create(&output)
                .with_context(|| format!("creating trace {}", output.display()))?;
            let writer = TraceWriter::new(f);
            let written = Arc::clone(&writer.written);
            (
                Stage::Trace(spawn_batcher(writer, ready_rx.clone(), &output_counters)),
                "written",
                written,
                duration.map(|d| started + d),
                Duration::ZERO,
            )
        }
    };

    let (mut sources, description) = platform.start_sources(&intake, options)?;
    let image_enricher = platform.image_enricher();
    let table = seeded_table(
        EnrichConfig::default().table_capacity,
        platform.seed_processes(),
    );
    let enrichment = Enrichment::start(
        inputs,
        table,
        EnrichConfig {
            host: platform.host_name().map(Arc::from),
            image_enricher: image_enricher.clone(),
            ..EnrichConfig::default()
        },
        ready_tx,
    );
    eprintln!(
        "trawl: {description}; ready in {} ms",
        started.elapsed().as_millis()
    );

    let meters = Meters {
        intake: intake.counters(),
        intake_queue: intake_queue_probe,
        enrich: Arc::clone(&enrichment.counters),
        cache: Arc::clone(&enrichment.cache),
        image_enricher,
        ready_queue: ready_rx.clone(),
        engine_queue: stage.engine_depth(),
        output: Arc::clone(&output_counters),
        out_key,
        out_count,
    };
    wait_for_stop(&stop_rx, deadline, stats_interval, || {
        eprintln!("{}", meters.snapshot(&sources).render("stats"));
    });

    // Drain: sources first, so nothing new arrives; then the stages in order.
    for s in &mut sources {
        s.stop();
    }
    drop(intake);
    enrichment.join();
    let write_error = stage.finish()?;
    let last = meters.snapshot(&sources);
    eprintln!("{}", last.render("stopped"));
    eprintln!("{}", last.loss_line());
    Ok(RunReport { write_error })
}

/// Where the stats line's numbers are read from (shared counters and probes
/// of the queues; none of them keeps a stage alive).
struct Meters {
    intake: Arc<IntakeCounters>,
    intake_queue: Receiver<Input>,
    enrich: Arc<EnrichCounters>,
    cache: Arc<HashCache>,
    image_enricher: Option<Arc<dyn ImageEnricher>>,
    ready_queue: Receiver<Event>,
    engine_queue: Arc<AtomicU64>,
    output: Arc<OutputCounters>,
    out_key: &'static str,
    out_count: Arc<AtomicU64>,
}

impl Meters {
    fn snapshot(&self, sources: &[Box<dyn SourceHandle>]) -> Snapshot {
        let (received, dropped_intake) = self.intake.snapshot();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            received,
            dropped_intake,
            dropped_output: load(&self.output.dropped),
            sources: sources
                .iter()
                .map(|s| (s.name(), s.stats()))
                .chain(self.image_enricher.iter().map(|e| (e.name(), e.stats())))
                .collect(),
            hash: self.cache.stats(),
            hash_queue_full: load(&self.enrich.hash_queue_full),
            hash_skipped_at_stop: load(&self.enrich.hash_skipped_at_stop),
            processes: load(&self.enrich.processes),
            processes_evicted: load(&self.enrich.processes_evicted),
            queue_intake: self.intake_queue.len(),
            queue_hash: load(&self.enrich.hash_queue) as usize,
            queue_ready: self.ready_queue.len(),
            queue_engine: load(&self.engine_queue) as usize,
            out_key: self.out_key,
            out: load(&self.out_count),
        }
    }
}

/// Blocks until a stop signal or the deadline, calling `tick` every
/// `interval` (never, when it is zero).
fn wait_for_stop(
    stop: &Receiver<()>,
    deadline: Option<Instant>,
    interval: Duration,
    mut tick: impl FnMut(),
) {
    let mut next_tick = (!interval.is_zero()).then(|| Instant::now() + interval);
    loop {
        let wake = match (next_tick, deadline) {
            (Some(t), Some(d)) => Some(t.min(d)),
            (t, d) => t.or(d),
        };
        let got = match wake {
            Some(at) => stop.recv_deadline(at),
            None => stop.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {
                let now = Instant::now();
                if deadline.is_some_and(|d| now >= d) {
                    return;
                }
                if let Some(t) = next_tick.filter(|t| now >= *t) {
                    tick();
                    next_tick = Some(t + interval);
                }
            }
        }
    }
}

type Joined<C> = std::thread::JoinHandle<(C, Option<io::Error>)>;

/// The batcher thread and the consumer it owns.
enum Stage {
    Engine(Joined<PipelineConsumer>, Arc<AtomicU64>),
    Trace(Joined<TraceWriter<std::fs::File>>),
}

fn spawn_batcher<C: Consumer + 'static>(
    consumer: C,
    ready: Receiver<Event>,
    counters: &Arc<OutputCounters>,
) -> Joined<C> {
    let counters = Arc::clone(counters);
    std::thread::Builder::new()
        .name("trawl-batch".into())
        .spawn(move || run_batcher(ready, consumer, &counters))
        .expect("spawning a thread only fails when the OS is out of resources")
}

impl Stage {
    /// Batches waiting for the engine (always zero for a trace).
    fn engine_depth(&self) -> Arc<AtomicU64> {
        match self {
            Stage::Engine(_, depth) => Arc::clone(depth),
            Stage::Trace(_) => Arc::default(),
        }
    }

    /// Waits for the batcher, then finishes the engine (flushing alerts).
    fn finish(self) -> anyhow::Result<Option<io::Error>> {
        let panicked = || anyhow::anyhow!("the batcher thread panicked (a bug in trawl)");
        match self {
            Stage::Engine(h, _) => {
                let (consumer, err) = h.join().map_err(|_| panicked())?;
                let report = consumer.pipeline.finish()?;
                if report.stats.failed_events > 0 {
                    eprintln!(
                        "trawl: {} events in {} batches were not evaluated because matching panicked; this is a bug in trawl, please report it",
                        report.stats.failed_events, report.stats.failed_batches
                    );
                }
                Ok(err.or(report.write_error))
            }
            Stage::Trace(h) => Ok(h.join().map_err(|_| panicked())?.1),
        }
    }
}
