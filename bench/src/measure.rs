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

/// Timed passes of several measures taken in turn, one of each per round.
///
/// Why: a shared machine speeds up and slows down by a quarter within
/// minutes. Timed one measure after another, the engine/floor ratio of two
/// runs of the same build read 0.99 and 1.54. Taken in turn, a drift moves
/// every measure of a round alike, and a ratio taken within each round
/// cancels it.
///
/// ```
/// use std::time::Duration;
/// use trawl_bench::measure::{Pass, Rounds};
///
/// let pass = |ms| move || Pass { elapsed: Duration::from_millis(ms), alerted: 0 };
/// let rounds = Rounds::take(3, &mut [&mut pass(2), &mut pass(4)]);
/// assert_eq!(rounds.median(1).elapsed, Duration::from_millis(4));
/// assert_eq!(rounds.median_speedup(0, 1), 2.0); // measure 0 ran twice as fast
/// ```
#[derive(Debug, Clone)]
pub struct Rounds {
    /// `[round][measure]`.
    passes: Vec<Vec<Pass>>,
}

impl Rounds {
    /// Runs every one of `runs` once per round, in the order given, for one
    /// untimed warm-up round and then `rounds` timed ones (at least one).
    pub fn take(rounds: usize, runs: &mut [&mut dyn FnMut() -> Pass]) -> Rounds {
        for run in runs.iter_mut() {
            run();
        }
        let passes = (0..rounds.max(1))
            .map(|_| runs.iter_mut().map(|run| run()).collect())
            .collect();
        Rounds { passes }
    }

    /// How many measures each round ran.
    pub fn measures(&self) -> usize {
        self.passes.first().map_or(0, Vec::len)
    }

    /// The median pass of measure `i` (by elapsed time).
    pub fn median(&self, i: usize) -> Pass {
        let mut all: Vec<Pass> = self.passes.iter().map(|round| round[i]).collect();
        all.sort_by_key(|p| p.elapsed);
        all[all.len() / 2]
    }

    /// Measure `i`'s timed passes added up: their time and their counts.
    pub fn total(&self, i: usize) -> Pass {
        self.passes.iter().map(|round| round[i]).fold(
            Pass {
                elapsed: Duration::ZERO,
                alerted: 0,
            },
            |sum, p| Pass {
                elapsed: sum.elapsed + p.elapsed,
                alerted: sum.alerted + p.alerted,
            },
        )
    }

    /// How many times faster measure `i` ran than measure `j`: the median
    /// over the rounds of `j`'s time over `i`'s time in the same round (of
    /// an even number of rounds, the lower middle one, so a figure never
    /// flatters `i`).
    pub fn median_speedup(&self, i: usize, j: usize) -> f64 {
        let mut ratios: Vec<f64> = self
            .passes
            .iter()
            .map(|round| round[j].elapsed.as_secs_f64() / round[i].elapsed.as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[(ratios.len() - 1) / 2]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(ms: u64) -> Pass {
        Pass {
            elapsed: Duration::from_millis(ms),
            alerted: 0,
        }
    }

    #[test]
    fn rounds_run_the_measures_in_turn_after_one_warm_up_round() {
        let log = std::cell::RefCell::new(Vec::new());
        let (mut a, mut b) = (
            || {
                log.borrow_mut().push('a');
                pass(1)
            },
            || {
                log.borrow_mut().push('b');
                pass(1)
            },
        );
        Rounds::take(2, &mut [&mut a, &mut b]);
        assert_eq!(log.into_inner(), ['a', 'b', 'a', 'b', 'a', 'b']);
    }

    #[test]
    fn a_speed_up_is_the_median_of_the_rounds_ratios_not_the_ratio_of_medians() {
        let round = std::cell::Cell::new(0usize);
        let mut first = || {
            round.set(round.get() + 1);
            pass([9, 1, 2, 3][round.get() - 1])
        };
        // Round 2 caught the second measure in a slow moment.
        let mut second = || pass([9, 30, 4, 5][round.get() - 1]);
        let rounds = Rounds::take(3, &mut [&mut first, &mut second]);
        // Ratios 30, 2 and 1.67: median 2. Medians 2 and 5 would say 2.5.
        assert_eq!(rounds.median_speedup(0, 1), 2.0);
        assert_eq!(rounds.median(0).elapsed, Duration::from_millis(2));
        assert_eq!(rounds.median(1).elapsed, Duration::from_millis(5));
        // The warm-up round (9 ms each) is not in the totals.
        assert_eq!(rounds.total(0).elapsed, Duration::from_millis(6));
        assert_eq!(rounds.total(1).elapsed, Duration::from_millis(39));
    }

    #[test]
    fn of_an_even_number_of_rounds_the_lower_middle_ratio_is_given() {
        let round = std::cell::Cell::new(0usize);
        let mut first = || {
            round.set(round.get() + 1);
            pass(10)
        };
        let mut second = || pass([10, 20, 30][round.get() - 1]);
        let rounds = Rounds::take(2, &mut [&mut first, &mut second]);
        assert_eq!(rounds.median_speedup(0, 1), 2.0);
    }

    #[test]
    fn a_drift_between_rounds_cancels_out_of_the_ratio_but_not_the_medians() {
        // The machine slows down from round to round: measure 0 always takes
        // half the time of measure 1 within a round.
        let round = std::cell::Cell::new(0u64);
        let mut first = || {
            round.set(round.get() + 1);
            pass(10 * round.get() * round.get())
        };
        let mut second = || pass(20 * round.get() * round.get());
        let rounds = Rounds::take(4, &mut [&mut first, &mut second]);
        assert_eq!(rounds.median_speedup(0, 1), 2.0);
        assert_eq!(rounds.median_speedup(1, 0), 0.5);
        // Rounds 2..=5 are timed (1 is the warm-up): the median of 4 is the
        // upper middle one, round 4.
        assert_eq!(rounds.median(0).elapsed, Duration::from_millis(160));
        assert_eq!(rounds.median(1).elapsed, Duration::from_millis(320));
    }
}
