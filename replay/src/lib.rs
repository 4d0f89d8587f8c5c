//! Replays recorded traces through the engine, deterministically.
//!
//! The replay driver finds the traces ([`input`]: files or folders; trawl
//! NDJSON, Windows EVTX and `evtx_dump` JSON, recognised by content), cuts
//! them into units of work ([`unit`](mod@unit): small files, EVTX chunks, blocks of
//! lines) that reader threads turn into events ([`winlog`] maps Windows
//! records). Each reader then evaluates the events it has just read with the
//! same [`Evaluator`] the live sensor's pipeline workers use, so a replay
//! test exercises exactly the matching and rendering that run on an
//! endpoint; the alerts are written in input order by the same
//! [`AlertWriter`]. Matching on the reading thread keeps each event in the
//! cache that built it and saves a hand-over per batch. The alert stream is
//! a pure function of (traces, rules): traces in the order given, records in
//! file order, rules in load order, at any thread count.
//!
//! ```
//! use std::sync::Arc;
//! use trawl_engine::load::RuleSources;
//! use trawl_engine::pipeline::VecSink;
//! use trawl_replay::{replay, Problem, ReplayConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let trace = dir.path().join("t.ndjson");
//! std::fs::write(&trace, "{\"ts\":\"2021-09-14T10:00:00Z\",\"kind\":\"process_start\",\"Image\":\"C:\\\\Windows\\\\TAPI\\\\x.exe\"}\nbad\n").unwrap();
//! let rules = RuleSources { default_rules: true, ..Default::default() }.load().unwrap();
//! let mut bad = Vec::new();
//! let summary = replay(&[trace], Arc::new(rules.ruleset), &ReplayConfig::default(),
//!                      Box::new(VecSink::default()), &mut |p: &Problem| bad.push(p.to_string()));
//! assert_eq!((summary.records, summary.skipped), (2, 1));
//! assert!(bad[0].ends_with("t.ndjson:2: not valid JSON: expected value at line 1 column 1"));
//! ```

pub mod evtx_file;
pub mod input;
pub mod lines;
pub mod ndjson;
pub mod prefetch;
pub mod unit;
pub mod winlog;

use std::fmt;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trawl_engine::alert::Format as AlertFormat;
use trawl_engine::matcher::Ruleset;
use trawl_engine::pipeline::{AlertSink, AlertWriter, Evaluator, PipelineStats};

use crate::input::{Format, Found, Input};
use crate::lines::LineSource;
use crate::ndjson::MAX_LINE_BYTES;
use crate::unit::{run_ordered, Unit, UnitOutput};
use crate::winlog::ChannelCounts;

/// How a replay runs.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    /// Threads that read the input and match what they read (at least one).
    pub threads: usize,
    /// How alerts are written.
    pub format: AlertFormat,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        ReplayConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            format: AlertFormat::Json,
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
    /// The input found so far: `files` files of `bytes` bytes in all. The
    /// folders are walked while the files found first are read, so this is
    /// called again, with larger totals, as the walk goes on.
    fn found(&mut self, _files: usize, _bytes: u64) {}
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
    /// What was evaluated and what alerts were written (in the live
    /// pipeline's terms: a batch here is a part of a file).
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

/// Lines per block handed to a reader thread.
pub(crate) const BLOCK_LINES: usize = 1024;
/// Bytes per block handed to a reader thread.
pub(crate) const BLOCK_BYTES: usize = 1 << 20;
/// An EVTX file up to this size is one unit of work, read by its worker;
/// a larger one is cut into chunks on the reading thread, so its chunks
/// are parsed in parallel.
const WHOLE_FILE_BYTES: u64 = 4 << 20;

/// Replays `traces` (files or folders, see [`input`]) in order against
/// `ruleset`, writing alerts to `sink`. Unreadable records, chunks and files
/// go to `observer` (and are counted in [`ReplaySummary::skipped`]); they
/// never stop the replay. A failing sink does not stop it either: the
/// alerts are still counted and the error is in
/// [`ReplaySummary::write_error`].
pub fn replay(
    traces: &[PathBuf],
    ruleset: Arc<Ruleset>,
    config: &ReplayConfig,
    sink: Box<dyn AlertSink>,
    observer: &mut dyn Observer,
) -> ReplaySummary {
    let start = Instant::now();
    let mut summary = ReplaySummary::default();
    let threads = config.threads.max(1);
    let mut writer = AlertWriter::new(sink, ruleset.len(), false);
    let format = config.format;
    let evaluator = || Evaluator::new(Arc::clone(&ruleset), format);
    let settings = evtx_file::settings();
    let walked = Walked::default();
    let mut reported = (0, 0);
    // The walk runs on its own thread, ahead of the reading: the files
    // found first are read while the rest of the folders are walked.
    std::thread::scope(|scope| {
        let (found_tx, found_rx) = crossbeam_channel::bounded(WALK_AHEAD);
        let walked = &walked;
        let walker = std::thread::Builder::new()
            .name("trawl-walk".into())
            .spawn_scoped(scope, move || {
                // JSON files past a block's size are cut into blocks of
                // lines on this side, so the readers share them.
                input::walk(traces, Some(BLOCK_BYTES as u64), &mut |found| {
                    walked.add(&found);
                    found_tx.send(found).is_ok()
                });
            })
            .expect("spawning a thread only fails when the OS is out of resources");
        run_ordered(
            units(prefetch::Prefetch::new(found_rx, small)),
            threads,
            &settings,
            &evaluator,
            &mut |out: UnitOutput| {
                let now = walked.totals();
                if now != reported {
                    reported = now;
                    observer.found(now.0, now.1);
                }
                summary.records += out.records;
                summary.skipped += out.skipped;
                summary.channels.merge(out.channels);
                if let Some(format) = out.format {
                    summary.files += 1;
                    summary.files_per_format[format as usize] += 1;
                }
                summary.passed_over += usize::from(out.passed_over);
                for p in &out.problems {
                    observer.problem(p);
                }
                observer.progress(out.bytes);
                writer.write(&out.alerts);
                true
            },
        );
        walker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p))
    });
    for (n, w) in summary
        .files_per_format
        .iter_mut()
        .zip(&walked.files_per_format)
    {
        *n += w.load(Relaxed);
        summary.files += w.load(Relaxed);
    }
    summary.passed_over += walked.passed_over.load(Relaxed);
    let report = writer.finish();
    summary.pipeline = report.stats;
    summary.write_error = report.write_error;
    summary.elapsed = start.elapsed();
    summary
}

/// Small files are handed to a reader thread in groups of up to this
/// many bytes or files (see [`run_ordered`]).
const GROUP_BYTES: u64 = 1 << 20;
const GROUP_FILES: usize = 64;

/// Files and folder entries the walk may be ahead of the reading by.
const WALK_AHEAD: usize = 1 << 14;

/// What a walk found so far, counted as it goes (the walk is on its own
/// thread).
#[derive(Default)]
struct Walked {
    /// Files to open, and their bytes (a small file found in a folder may
    /// turn out not to be a trace when read).
    files: AtomicUsize,
    bytes: AtomicU64,
    /// Files of a format known on the walk (not read whole), per format.
    files_per_format: [AtomicUsize; 3],
    /// Files on the walk found not to be traces.
    passed_over: AtomicUsize,
}

impl Walked {
    fn add(&self, found: &Found) {
        let size = match found {
            // A file read whole is counted by its reader, which tells its
            // format from its bytes.
            Found::Input(i) if small(found).is_some() => i.size,
            Found::Input(i) => {
                self.files_per_format[i.format as usize].fetch_add(1, Relaxed);
                i.size
            }
            Found::Unsniffed { size, .. } => *size,
            Found::PassedOver(_) => {
                self.passed_over.fetch_add(1, Relaxed);
                return;
            }
            Found::Problem(_) => return,
        };
        self.files.fetch_add(1, Relaxed);
        self.bytes.fetch_add(size, Relaxed);
    }

    /// Files and bytes to read found so far.
    fn totals(&self) -> (usize, u64) {
        (self.files.load(Relaxed), self.bytes.load(Relaxed))
    }
}

/// The units of work of all that the walk finds, read lazily, file after
/// file, in groups a reader thread takes at once: consecutive small files
/// together, any other unit alone.
fn units(found: impl Iterator<Item = Found>) -> impl Iterator<Item = Vec<Unit>> {
    let mut found = found
        .filter(|f| !matches!(f, Found::PassedOver(_)))
        .peekable();
    let mut current: Box<dyn Iterator<Item = Unit>> = Box::new(std::iter::empty());
    std::iter::from_fn(move || loop {
        if let Some(unit) = current.next() {
            return Some(vec![unit]);
        }
        let first = found.next()?;
        if let Some((path, size)) = small(&first) {
            let mut bytes = size;
            let mut group = vec![whole_file(path.to_owned(), size)];
            while bytes < GROUP_BYTES && group.len() < GROUP_FILES {
                let Some((path, size)) = found.peek().and_then(small) else {
                    break;
                };
                bytes += size;
                group.push(whole_file(path.to_owned(), size));
                found.next();
            }
            return Some(group);
        }
        current = match first {
            Found::Input(input) => file_units(input),
            Found::Problem(p) => Box::new(std::iter::once(Unit::Failed {
                source: Arc::from(p.source),
                reason: p.reason,
            })),
            Found::Unsniffed { .. } | Found::PassedOver(_) => Box::new(std::iter::empty()),
        };
    })
}

/// The path and size of a file to be read whole by one reader.
fn small(found: &Found) -> Option<(&Path, u64)> {
    match found {
        Found::Unsniffed { path, size } => Some((path, *size)),
        Found::Input(i) if i.format == Format::Evtx && i.size <= WHOLE_FILE_BYTES => {
            Some((&i.path, i.size))
        }
        _ => None,
    }
}

/// A small file as one unit.
fn whole_file(path: PathBuf, size: u64) -> Unit {
    Unit::WholeFile {
        source: Arc::from(path.display().to_string()),
        path,
        size,
    }
}

/// The units of one file, read lazily.
fn file_units(input: Input) -> Box<dyn Iterator<Item = Unit>> {
    let source: Arc<str> = Arc::from(input.path.display().to_string());
    let failed = |source: Arc<str>, reason: String| -> Box<dyn Iterator<Item = Unit>> {
        Box::new(std::iter::once(Unit::Failed { source, reason }))
    };
    match input.format {
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
