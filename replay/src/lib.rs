//! Replays recorded traces through the engine, deterministically.
//!
//! The replay driver reads each trace in turn, cuts its events into batches
//! and feeds them to the same [`Pipeline`] the live sensor uses, so a replay
//! test exercises exactly the code that runs on an endpoint. The alert stream
//! is a pure function of (traces, rules): traces in the order given, records
//! in file order, rules in load order, at any thread count.
//!
//! ```
//! use std::sync::Arc;
//! use trawl_engine::load::RuleSources;
//! use trawl_engine::pipeline::{PipelineConfig, VecSink};
//! use trawl_replay::{replay, ReplayConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let trace = dir.path().join("t.ndjson");
//! std::fs::write(&trace, "{\"ts\":\"2021-09-14T10:00:00Z\",\"kind\":\"process_start\",\"Image\":\"C:\\\\Windows\\\\TAPI\\\\x.exe\"}\nbad\n").unwrap();
//! let rules = RuleSources { default_rules: true, ..Default::default() }.load().unwrap();
//! let mut bad = Vec::new();
//! let summary = replay(&[trace], Arc::new(rules.ruleset), &ReplayConfig::default(),
//!                      Box::new(VecSink::default()), &mut |p| bad.push(p.to_string())).unwrap();
//! assert_eq!((summary.records, summary.skipped), (2, 1));
//! assert!(bad[0].ends_with("t.ndjson:2: not valid JSON: expected value at line 1 column 1"));
//! ```

pub mod ndjson;

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trawl_engine::matcher::Ruleset;
use trawl_engine::pipeline::{
    AlertSink, Batch, Pipeline, PipelineConfig, PipelineError, PipelineStats, SourcedEvent,
};

use crate::ndjson::NdjsonReader;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub pipeline: PipelineConfig,
    /// Events per batch handed to the workers.
    pub batch_size: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            pipeline: PipelineConfig::default(),
            batch_size: 512,
        }
    }
}

/// A record (or a whole file) that could not be replayed. Displays as
/// `FILE:LINE: reason`, or `FILE: reason` for the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub source: String,
    /// The line (NDJSON) or record number; `None` when the whole file failed.
    pub record: Option<u64>,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.record {
            Some(r) => write!(f, "{}:{}: {}", self.source, r, self.reason),
            None => write!(f, "{}: {}", self.source, self.reason),
        }
    }
}

/// Totals of a replay.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    /// Trace files read.
    pub files: usize,
    /// Records read (good and bad).
    pub records: u64,
    /// Records (and files) skipped as unreadable.
    pub skipped: u64,
    /// What the pipeline saw and emitted.
    pub pipeline: PipelineStats,
    pub elapsed: Duration,
    /// Writing alerts failed part-way (the totals still count every alert).
    pub write_error: Option<std::io::Error>,
}

impl ReplaySummary {
    /// Events evaluated per second of wall time.
    pub fn events_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.pipeline.events as f64 / secs
        } else {
            0.0
        }
    }
}

/// Why a replay could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Replays `traces` in order through a pipeline over `ruleset`, writing alerts
/// to `sink`. Unreadable records and files go to `on_problem` (and are
/// counted in [`ReplaySummary::skipped`]); they never stop the replay.
pub fn replay(
    traces: &[PathBuf],
    ruleset: Arc<Ruleset>,
    config: &ReplayConfig,
    sink: Box<dyn AlertSink>,
    on_problem: &mut dyn FnMut(&Problem),
) -> Result<ReplaySummary, ReplayError> {
    let start = Instant::now();
    let mut pipeline = Pipeline::start(ruleset, config.pipeline.clone(), sink);
    let mut summary = ReplaySummary::default();
    for path in traces {
        summary.files += 1;
        if let Err(p) = replay_file(
            path,
            config.batch_size,
            &mut pipeline,
            &mut summary,
            on_problem,
        ) {
            summary.skipped += 1;
            on_problem(&p);
        }
    }
    let report = pipeline.finish()?;
    summary.pipeline = report.stats;
    summary.write_error = report.write_error;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

fn replay_file(
    path: &Path,
    batch_size: usize,
    pipeline: &mut Pipeline,
    summary: &mut ReplaySummary,
    on_problem: &mut dyn FnMut(&Problem),
) -> Result<(), Problem> {
    let source: Arc<str> = Arc::from(path.display().to_string());
    let file = File::open(path).map_err(|e| Problem {
        source: source.to_string(),
        record: None,
        reason: format!("cannot open trace: {e}"),
    })?;
    let reader = NdjsonReader::new(BufReader::with_capacity(1 << 20, file));
    let batch_size = batch_size.max(1);
    let mut events = Vec::with_capacity(batch_size);
    let closed = |_| Problem {
        source: source.to_string(),
        record: None,
        reason: "the matcher stopped; rest of the trace not replayed".into(),
    };
    for item in reader {
        summary.records += 1;
        match item {
            Ok((line, event)) => {
                events.push(SourcedEvent { seq: line, event });
                if events.len() == batch_size {
                    let full = std::mem::replace(&mut events, Vec::with_capacity(batch_size));
                    pipeline
                        .send(Batch {
                            source: Arc::clone(&source),
                            events: full,
                        })
                        .map_err(closed)?;
                }
            }
            Err(bad) => {
                summary.skipped += 1;
                on_problem(&Problem {
                    source: source.to_string(),
                    record: Some(bad.line),
                    reason: bad.reason,
                });
            }
        }
    }
    if !events.is_empty() {
        pipeline
            .send(Batch {
                source: Arc::clone(&source),
                events,
            })
            .map_err(closed)?;
    }
    Ok(())
}
