//! Replays recorded traces through the engine, deterministically.
//!
//! The replay driver finds the traces ([`input`]: files or folders; trawl
//! NDJSON, Windows EVTX and `evtx_dump` JSON, recognised by content), cuts
//! them into units of work ([`unit`]: EVTX files or chunks, blocks of lines)
//! that reader threads turn into events ([`winlog`] maps Windows records),
//! and feeds those, in input order, to the same [`Pipeline`] the live sensor
//! uses, so a replay test exercises exactly the code that runs on an
//! endpoint. The alert stream is a pure function of (traces, rules): traces in
//! the order given, records in file order, rules in load order, at any thread
//! count.
//!
//! ```
//! use std::sync::Arc;
//! use trawl_engine::load::RuleSources;
//! use trawl_engine::pipeline::{PipelineConfig, VecSink};
//! use trawl_replay::{replay, Problem, ReplayConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let trace = dir.path().join("t.ndjson");
//! std::fs::write(&trace, "{\"ts\":\"2021-09-14T10:00:00Z\",\"kind\":\"process_start\",\"Image\":\"C:\\\\Windows\\\\TAPI\\\\x.exe\"}\nbad\n").unwrap();
//! let rules = RuleSources { default_rules: true, ..Default::default() }.load().unwrap();
//! let mut bad = Vec::new();
//! let summary = replay(&[trace], Arc::new(rules.ruleset), &ReplayConfig::default(),
//!                      Box::new(VecSink::default()), &mut |p: &Problem| bad.push(p.to_string())).unwrap();
//! assert_eq!((summary.records, summary.skipped), (2, 1));
//! assert!(bad[0].ends_with("t.ndjson:2: not valid JSON: expected value at line 1 column 1"));
//! ```

pub mod evtx_file;
pub mod input;
pub mod lines;
pub mod ndjson;
pub mod unit;
pub mod winlog;

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use trawl_engine::matcher::Ruleset;
use trawl_engine::pipeline::{
    AlertSink, Batch, Pipeline, PipelineConfig, PipelineError, PipelineStats, SourcedEvent,
};

use crate::input::{discover, Format, Input};
use crate::lines::LineSource;
use crate::ndjson::MAX_LINE_BYTES;
use crate::unit::{run_ordered, Unit, UnitOutput};
use crate::winlog::ChannelCounts;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// The matcher pipeline; its thread count is also the number of reader
    /// threads that parse the input.
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

/// Where in a file a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// The file as a whole.
    File,
    /// A line of a line-oriented trace (1-based).
    Line(u64),
    /// An EVTX record, by its `EventRecordID`.
    Record(u64),
    /// An EVTX chunk, by its number in the file (0-based, as the `evtx` crate
    /// and `evtx_dump` count them).
    Chunk(u64),
}

/// A record (or a whole file, or an EVTX chunk) that could not be replayed.
/// Displays as `FILE:LINE: reason`, `FILE: record N: reason`,
/// `FILE: chunk N: reason`, or `FILE: reason` for the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub source: String,
    pub location: Location,
    pub reason: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (s, r) = (&self.source, &self.reason);
        match self.location {
            Location::File => write!(f, "{s}: {r}"),
            Location::Line(n) => write!(f, "{s}:{n}: {r}"),
            Location::Record(n) => write!(f, "{s}: record {n}: {r}"),
            Location::Chunk(n) => write!(f, "{s}: chunk {n}: {r}"),
        }
    }
}

/// What a replay tells its caller while it runs.
///
/// Any `FnMut(&Problem)` closure is an observer that only hears problems.
pub trait Observer {
    /// A record, chunk or file that could not be read (it is skipped).
    fn problem(&mut self, problem: &Problem);
    /// The inputs were found: `files` files of `bytes` bytes in all.
    fn started(&mut self, _files: usize, _bytes: u64) {}
    /// `bytes` more of the input have been read and passed on.
    fn progress(&mut self, _bytes: u64) {}
}

impl<F: FnMut(&Problem)> Observer for F {
    fn problem(&mut self, problem: &Problem) {
        self(problem)
    }
}

/// Totals of a replay.
#[derive(Debug, Default)]
pub struct ReplaySummary {
    /// Trace files read.
    pub files: usize,
    /// Files read per format, indexed like [`Format`] (`ndjson`, `evtx-json`, `evtx`).
    pub files_per_format: [usize; 3],
    /// Files in folders passed over as not being traces.
    pub passed_over: usize,
    /// Records read (good and bad).
    pub records: u64,
    /// Windows records per channel and event id (mapped or not).
    pub channels: ChannelCounts,
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
        per_sec(self.pipeline.events, self.elapsed)
    }

    /// Records read per second of wall time.
    pub fn records_per_sec(&self) -> f64 {
        per_sec(self.records, self.elapsed)
    }
}

fn per_sec(n: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        n as f64 / secs
    } else {
        0.0
    }
}

/// Why a replay could not finish.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Pipeline(#[from] PipelineError),
}

/// Lines per block handed to a reader thread.
const BLOCK_LINES: usize = 1024;
/// Bytes per block handed to a reader thread.
const BLOCK_BYTES: usize = 1 << 20;
/// An EVTX file up to this size is one unit of work, read by its worker;
/// a larger one is cut into chunks on the reading thread, so its chunks
/// are parsed in parallel.
const WHOLE_FILE_BYTES: u64 = 4 << 20;

/// Replays `traces` (files or folders, see [`input`]) in order through a
/// pipeline over `ruleset`, writing alerts to `sink`. Unreadable records,
/// chunks and files go to `observer` (and are counted in
/// [`ReplaySummary::skipped`]); they never stop the replay.
pub fn replay(
    traces: &[PathBuf],
    ruleset: Arc<Ruleset>,
    config: &ReplayConfig,
    sink: Box<dyn AlertSink>,
    observer: &mut dyn Observer,
) -> Result<ReplaySummary, ReplayError> {
    let start = Instant::now();
    let found = discover(traces);
    let mut summary = ReplaySummary {
        files: found.inputs.len(),
        passed_over: found.passed_over.len(),
        ..ReplaySummary::default()
    };
    for i in &found.inputs {
        summary.files_per_format[i.format as usize] += 1;
    }
    for p in &found.problems {
        summary.skipped += 1;
        observer.problem(p);
    }
    observer.started(found.inputs.len(), found.total_bytes());

    let threads = config.pipeline.threads.max(1);
    let mut pipeline = Pipeline::start(ruleset, config.pipeline.clone(), sink);
    let mut forward = Forward {
        pipeline: &mut pipeline,
        batch_size: config.batch_size.max(1),
        pending: Vec::new(),
        source: None,
        closed: false,
    };
    let settings = evtx_file::settings();
    run_ordered(
        units(found.inputs),
        threads,
        &settings,
        &mut |out: UnitOutput| {
            summary.records += out.records;
            summary.skipped += out.skipped;
            summary.channels.merge(out.channels);
            for p in &out.problems {
                observer.problem(p);
            }
            observer.progress(out.bytes);
            if let Some(source) = out.source {
                forward.push(source, out.events);
            }
            !forward.closed
        },
    );
    forward.flush();
    if forward.closed {
        summary.skipped += 1;
        observer.problem(&Problem {
            source: "replay".into(),
            location: Location::File,
            reason: "the matcher stopped; the rest of the input was not replayed".into(),
        });
    }
    let report = pipeline.finish()?;
    summary.pipeline = report.stats;
    summary.write_error = report.write_error;
    summary.elapsed = start.elapsed();
    Ok(summary)
}

/// Collects events into batches of one source and hands them on in order.
struct Forward<'p> {
    pipeline: &'p mut Pipeline,
    batch_size: usize,
    pending: Vec<SourcedEvent>,
    source: Option<Arc<str>>,
    closed: bool,
}

impl Forward<'_> {
    fn push(&mut self, source: Arc<str>, events: Vec<SourcedEvent>) {
        if self.source.as_ref() != Some(&source) {
            self.flush();
            self.source = Some(source);
        }
        if self.pending.is_empty() && events.len() >= self.batch_size {
            // A whole unit's worth: pass it on as it is.
            self.pending = events;
            self.flush();
            return;
        }
        for ev in events {
            self.pending.push(ev);
            if self.pending.len() == self.batch_size {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        if self.pending.is_empty() || self.closed {
            self.pending.clear();
            return;
        }
        let Some(source) = self.source.clone() else {
            return;
        };
        let events = std::mem::take(&mut self.pending);
        if self.pipeline.send(Batch { source, events }).is_err() {
            self.closed = true;
        }
    }
}

/// Small EVTX files are handed to a reader thread in groups of up to this
/// many bytes or files (see [`run_ordered`]).
const GROUP_BYTES: u64 = 1 << 20;
const GROUP_FILES: usize = 64;

/// The units of work of all inputs, read lazily, file after file, in groups
/// a reader thread takes at once: consecutive small EVTX files together,
/// any other unit alone.
fn units(inputs: Vec<Input>) -> impl Iterator<Item = Vec<Unit>> {
    let small = |i: &Input| i.format == Format::Evtx && i.size <= WHOLE_FILE_BYTES;
    let mut inputs = inputs.into_iter().peekable();
    let mut current: Box<dyn Iterator<Item = Unit>> = Box::new(std::iter::empty());
    std::iter::from_fn(move || loop {
        if let Some(unit) = current.next() {
            return Some(vec![unit]);
        }
        let first = inputs.next()?;
        if small(&first) {
            let mut bytes = first.size;
            let mut group = vec![whole_file(first)];
            while bytes < GROUP_BYTES && group.len() < GROUP_FILES {
                let Some(next) = inputs.next_if(small) else {
                    break;
                };
                bytes += next.size;
                group.push(whole_file(next));
            }
            return Some(group);
        }
        current = file_units(first);
    })
}

/// A small EVTX file as one unit.
fn whole_file(input: Input) -> Unit {
    Unit::EvtxFile {
        source: Arc::from(input.path.display().to_string()),
        path: input.path,
        size: input.size,
    }
}

/// The units of one file, read lazily.
fn file_units(input: Input) -> Box<dyn Iterator<Item = Unit>> {
    let source: Arc<str> = Arc::from(input.path.display().to_string());
    let failed = |source: Arc<str>, reason: String| -> Box<dyn Iterator<Item = Unit>> {
        Box::new(std::iter::once(Unit::Failed { source, reason }))
    };
    match input.format {
        Format::Evtx if input.size <= WHOLE_FILE_BYTES => {
            Box::new(std::iter::once(whole_file(input)))
        }
        Format::Evtx => match evtx_file::chunks(&input.path) {
            Ok(chunks) => Box::new(chunks.map(move |chunk| Unit::Chunk {
                source: Arc::clone(&source),
                chunk,
            })),
            Err(reason) => failed(source, reason),
        },
        format @ (Format::Ndjson | Format::EvtxJson) => match File::open(&input.path) {
            Ok(f) => {
                let mut lines =
                    LineSource::new(BufReader::with_capacity(1 << 20, f), MAX_LINE_BYTES);
                Box::new(std::iter::from_fn(move || {
                    let block = lines.next_block(BLOCK_LINES, BLOCK_BYTES)?;
                    Some(Unit::Lines {
                        source: Arc::clone(&source),
                        format,
                        block,
                    })
                }))
            }
            Err(e) => failed(source, format!("cannot open trace: {e}")),
        },
    }
}
