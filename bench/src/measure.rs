//! Timing helpers shared by the throughput harness and the benches: matcher
//! and floor passes over a corpus on N threads, passes through the real
//! [`Pipeline`], a sink that discards alerts, and the process's peak RSS.
//!
//! ```
//! use trawl_bench::measure::{engine_pass, scratches};
//! let rules = trawl_bench::sources::load_rules(&[]).unwrap();
//! let events = trawl_bench::corpus(2_000, 42);
//! let pass = engine_pass(&rules.ruleset, &events, &mut scratches(&rules.ruleset, 2));
//! assert!(pass.alerted > 0 && pass.alerted < 200);
//! ```

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use trawl_engine::event::Event;
use trawl_engine::matcher::{Ruleset, Scratch};
use trawl_engine::pipeline::{AlertSink, Batch, Pipeline, PipelineConfig, SourcedEvent};

use crate::floor::{Floor, FloorScratch};

/// One timed pass over a corpus.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// Wall time of the whole pass (all threads).
    pub elapsed: Duration,
    /// Events that raised at least one alert (engine), or literal hits (floor).
    pub alerted: u64,
}

impl Pass {
    /// Events per second over `events` events.
    pub fn rate(&self, events: usize) -> f64 {
        events as f64 / self.elapsed.as_secs_f64()
    }
}

/// Evaluates every event with the matcher, the events split into one
/// contiguous share per scratch, one thread each. The scratches are the
/// caller's, so their memory is reused from pass to pass as a pipeline
/// worker reuses its own; the field texts they remember are forgotten
/// first ([`Scratch::forget`]), so a pass gains only from the values its
/// events repeat, not from having seen them all in the pass before.
pub fn engine_pass(ruleset: &Ruleset, events: &[Event], scratches: &mut [Scratch]) -> Pass {
    scratches.iter_mut().for_each(Scratch::forget);
    split_pass(events, scratches, |share, scratch| {
        let mut out = Vec::new();
        let mut alerted = 0;
        for ev in share {
            out.clear();
            ruleset.evaluate(ev, scratch, &mut out);
            alerted += u64::from(!out.is_empty());
        }
        alerted
    })
}

/// `threads` matcher scratches for `ruleset`.
pub fn scratches(ruleset: &Ruleset, threads: usize) -> Vec<Scratch> {
    (0..threads.max(1)).map(|_| Scratch::new(ruleset)).collect()
}

/// Runs the floor's literal scan over every event, split like
/// [`engine_pass`]; `alerted` is the number of literal hits.
pub fn floor_pass(floor: &Floor, events: &[Event], scratches: &mut [FloorScratch]) -> Pass {
    split_pass(events, scratches, |share, scratch| {
        share.iter().map(|ev| floor.scan(ev, scratch)).sum()
    })
}

fn split_pass<S: Send>(
    events: &[Event],
    scratches: &mut [S],
    work: impl Fn(&[Event], &mut S) -> u64 + Sync,
) -> Pass {
    assert!(!scratches.is_empty(), "a pass needs at least one thread");
    let share = events.len().div_ceil(scratches.len()).max(1);
    let start = Instant::now();
    let alerted = std::thread::scope(|s| {
        let work = &work;
        let handles: Vec<_> = events
            .chunks(share)
            .zip(scratches.iter_mut())
            .map(|(chunk, scratch)| s.spawn(move || work(chunk, scratch)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a benchmark thread panicked"))
            .sum()
    });
    Pass {
        elapsed: start.elapsed(),
        alerted,
    }
}

/// The corpus cut into pipeline batches (cloned, so building them is kept
/// out of the timed part).
pub fn batches(events: &[Event], batch_size: usize) -> Vec<Batch> {
    let source: Arc<str> = Arc::from("bench");
    events
        .chunks(batch_size.max(1))
        .enumerate()
        .map(|(b, chunk)| Batch {
            source: Arc::clone(&source),
            events: chunk
                .iter()
                .enumerate()
                .map(|(i, ev)| SourcedEvent {
                    seq: (b * batch_size + i + 1) as u64,
                    event: ev.clone(),
                })
                .collect(),
        })
        .collect()
}

/// Sends `batches` through a [`Pipeline`] of `threads` matcher workers
/// (bounded queue, alerts rendered as JSON by the workers, put back in order
/// by the sink thread) into a [`NullSink`]; `alerted` is the alerts written.
pub fn pipeline_pass(ruleset: &Arc<Ruleset>, batches: Vec<Batch>, threads: usize) -> Pass {
    let config = PipelineConfig {
        threads,
        ..PipelineConfig::default()
    };
    let start = Instant::now();
    let mut pipeline = Pipeline::start(Arc::clone(ruleset), config, Box::new(NullSink::default()));
    for b in batches {
        pipeline
            .send(b)
            .expect("the pipeline's workers only stop after a panic");
    }
    let report = pipeline.finish().expect("the sink thread does not panic");
    Pass {
        elapsed: start.elapsed(),
        alerted: report.stats.alerts,
    }
}

/// An alert sink that only counts the bytes it is given.
#[derive(Debug, Default)]
pub struct NullSink {
    /// Bytes written so far.
    pub bytes: u64,
}

impl AlertSink for NullSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.bytes += bytes.len() as u64;
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The process's peak resident set so far, in MiB (`VmHWM` of
/// `/proc/self/status`); `None` where there is no such file.
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The median of `passes` timed runs of `run` (after one untimed warm-up).
pub fn median_pass(passes: usize, mut run: impl FnMut() -> Pass) -> Pass {
    run();
    let mut all: Vec<Pass> = (0..passes.max(1)).map(|_| run()).collect();
    all.sort_by_key(|p| p.elapsed);
    all[all.len() / 2]
}
