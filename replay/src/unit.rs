//! Units of reading work and the workers that do them in parallel, in order.
//!
//! The replay driver cuts its inputs into units on one thread (a small file
//! to read whole, an EVTX chunk, a block of JSON lines); workers turn units
//! into events and match them at once; the results (alerts, problems,
//! counts) are put back in unit order before anything is passed on. So the
//! output is the same at any thread count.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crossbeam_channel::bounded;
use evtx::ParserSettings;
use trawl_engine::event::Event;
use trawl_engine::pipeline::{Evaluated, Evaluator, SourcedEvent};

use crate::evtx_file::{
    read_bytes, read_chunk, read_chunks, with_whole_file, ChunkRead, WholeFile,
};
use crate::input::{format_of, sniff, Format};
use crate::lines::{LineBlock, LineSource};
use crate::ndjson::{parse_line, MAX_LINE_BYTES};
use crate::winlog::read_record;
use crate::winlog::ChannelCounts;
use crate::{Location, Problem};
use crate::{BLOCK_BYTES, BLOCK_LINES};

/// One piece of reading work.
pub(crate) enum Unit {
    /// A chunk of a large EVTX file (or why it could not be read).
    Chunk { source: Arc<str>, chunk: ChunkRead },
    /// A whole small file: its worker reads it, so that opening and
    /// reading many small files is not left to one thread, and tells its
    /// format from its bytes.
    WholeFile {
        source: Arc<str>,
        path: PathBuf,
        size: u64,
    },

    /// Lines of an NDJSON trace or an `evtx_dump` JSON file.
    Lines {
        source: Arc<str>,
        format: Format,
        block: LineBlock,
    },
    /// A whole file that could not be read.
    Failed { source: Arc<str>, reason: String },
}

impl Unit {
    fn source(&self) -> &Arc<str> {
        match self {
            Unit::Chunk { source, .. }
            | Unit::WholeFile { source, .. }
            | Unit::Lines { source, .. }
            | Unit::Failed { source, .. } => source,
        }
    }

    /// Input bytes the unit stands for, for progress.
    pub(crate) fn bytes(&self) -> u64 {
        match self {
            Unit::Chunk { .. } => 64 * 1024,
            Unit::WholeFile { size, .. } => *size,
            Unit::Lines { block, .. } => block.text.len() as u64 + block.lines.len() as u64,
            Unit::Failed { .. } => 0,
        }
    }
}

/// What one unit gave.
#[derive(Debug, Default)]
pub struct UnitOutput {
    /// The file the unit came from.
    pub source: Option<Arc<str>>,
    /// Events, in record order, with their sequence numbers (until
    /// [`UnitOutput::evaluate`] turns them into alerts).
    pub events: Vec<SourcedEvent>,
    /// The alerts of the events, once evaluated.
    pub alerts: Evaluated,
    /// Records that could not be read, in order.
    pub problems: Vec<Problem>,
    /// Records read, good or bad.
    pub records: u64,
    /// Records skipped (a file that could not be opened counts as one).
    pub skipped: u64,
    /// Windows records per channel and event id.
    pub channels: ChannelCounts,
    /// Input bytes covered, for progress.
    pub bytes: u64,
    /// The format a whole file read was found to have from its bytes.
    pub format: Option<Format>,
    /// The whole file read is not a trace (neither EVTX nor JSON).
    pub passed_over: bool,
}

impl UnitOutput {
    /// Adds an event.
    pub fn event(&mut self, seq: u64, event: Event) {
        self.events.push(SourcedEvent { seq, event });
    }

    /// Evaluates the events read and drops them: on the thread that read
    /// them, while they are still in its cache, and freed by the allocator
    /// thread that made them.
    pub fn evaluate(&mut self, evaluator: &mut Evaluator) {
        let events = std::mem::take(&mut self.events);
        if let Some(source) = &self.source {
            evaluator.evaluate(source, &events, &mut self.alerts);
        }
    }

    /// Reports `skipped` records lost at `location`.
    pub fn bad(&mut self, location: Location, reason: String, skipped: u64) {
        self.skipped += skipped;
        self.problems.push(Problem {
            source: self
                .source
                .as_deref()
                .map_or_else(String::new, str::to_owned),
            location,
            reason,
        });
    }
}

/// [`process`], with a panic (a bug) reported as a problem of the unit's
/// file rather than lost.
fn guarded(unit: Unit, settings: &Arc<ParserSettings>) -> UnitOutput {
    let source = Arc::clone(unit.source());
    catch_unwind(AssertUnwindSafe(|| process(unit, settings))).unwrap_or_else(|_| {
        let mut out = UnitOutput {
            source: Some(source),
            ..UnitOutput::default()
        };
        out.bad(
            Location::File,
            "internal error while reading this part of the file (a bug in trawl); its records are skipped".into(),
            1,
        );
        out
    })
}

/// Turns one unit into events.
pub(crate) fn process(unit: Unit, settings: &Arc<ParserSettings>) -> UnitOutput {
    let mut out = UnitOutput {
        source: Some(Arc::clone(unit.source())),
        bytes: unit.bytes(),
        ..UnitOutput::default()
    };
    match unit {
        Unit::Failed { reason, .. } => out.bad(Location::File, reason, 1),
        Unit::Chunk {
            chunk: Err((at, reason)),
            ..
        } => out.bad(at, reason, 1),
        Unit::Chunk { chunk: Ok(c), .. } => read_chunk(c, settings, &mut out),
        Unit::WholeFile { path, .. } => read_whole_file(&path, settings, &mut out),
        Unit::Lines { format, block, .. } => read_lines(format, &block, &mut out),
    }
    out
}

/// Reads a file whole and replays it as what its bytes say it is.
fn read_whole_file(path: &Path, settings: &Arc<ParserSettings>, out: &mut UnitOutput) {
    with_whole_file(path, out, |file, out| match file {
        WholeFile::Held { bytes, len } => {
            out.format = format_of(bytes);
            match out.format {
                Some(Format::Evtx) => read_bytes(bytes, len, settings, out),
                // Not EVTX: held whole (no chunk was left unread).
                Some(format) => read_text(format, bytes, out),
                None => out.passed_over = true,
            }
        }
        // Grown since it was found: read as a large file of its kind is.
        WholeFile::TooLarge => match sniff(path) {
            Ok(Some(Format::Evtx)) => {
                out.format = Some(Format::Evtx);
                read_chunks(path, settings, out);
            }
            Ok(Some(format)) => {
                out.format = Some(format);
                match File::open(path) {
                    Ok(f) => read_text(format, BufReader::new(f), out),
                    Err(e) => out.bad(Location::File, format!("cannot open trace: {e}"), 1),
                }
            }
            Ok(None) => out.passed_over = true,
            Err(reason) => out.bad(Location::File, reason, 1),
        },
    });
}

/// Reads a whole line-oriented trace on this thread.
fn read_text(format: Format, input: impl BufRead, out: &mut UnitOutput) {
    let mut lines = LineSource::new(input, MAX_LINE_BYTES);
    while let Some(block) = lines.next_block(BLOCK_LINES, BLOCK_BYTES) {
        read_lines(format, &block, out);
    }
}

fn read_lines(format: Format, block: &LineBlock, out: &mut UnitOutput) {
    let mut host = None;
    for (line, text) in block.iter() {
        out.records += 1;
        let text = match text {
            Ok(t) => t,
            Err(reason) => {
                out.bad(Location::Line(line), reason, 1);
                continue;
            }
        };
        match format {
            Format::Ndjson => match parse_line(text, &mut host) {
                Ok(ev) => out.event(line, ev),
                Err(reason) => out.bad(Location::Line(line), reason, 1),
            },
            Format::EvtxJson | Format::Evtx => {
                let text = text.strip_prefix('\u{feff}').unwrap_or(text);
                read_record(text.as_bytes(), line, Location::Line(line), &mut host, out);
            }
        }
    }
}

/// Reads `units` on `threads` workers and hands every output, its events
/// evaluated by the worker's own [`Evaluator`] (made by `evaluator`), to
/// `consume` in unit order. Units come in groups, each read by one
/// worker: a group of small files costs two thread hand-overs (and their
/// wake-ups) in all, where a unit per file costs two per file, often more
/// than reading the file. At most a few groups per worker are in flight, so
/// memory stays bounded however long the input. A unit whose processing
/// panics (a bug) is reported as a problem of its file, not lost silently.
pub(crate) fn run_ordered(
    units: impl Iterator<Item = Vec<Unit>>,
    threads: usize,
    settings: &Arc<ParserSettings>,
    evaluator: &(dyn Fn() -> Evaluator + Sync),
    consume: &mut dyn FnMut(UnitOutput) -> bool,
) {
    let read_group = |group: Vec<Unit>, evaluator: &mut Evaluator| -> Vec<UnitOutput> {
        group
            .into_iter()
            .map(|u| {
                let mut out = guarded(u, settings);
                out.evaluate(evaluator);
                out
            })
            .collect()
    };
    if threads <= 1 {
        let mut evaluator = evaluator();
        for group in units {
            for out in read_group(group, &mut evaluator) {
                if !consume(out) {
                    return;
                }
            }
        }
        return;
    }
    let window = threads * 4;
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = bounded::<(u64, Vec<Unit>)>(window);
        let (done_tx, done_rx) = bounded::<(u64, Vec<UnitOutput>)>(window);
        for i in 0..threads {
            let work_rx = work_rx.clone();
            let done_tx = done_tx.clone();
            let read_group = &read_group;
            std::thread::Builder::new()
                .name(format!("trawl-read-{i}"))
                .spawn_scoped(scope, move || {
                    let mut evaluator = evaluator();
                    for (n, group) in work_rx {
                        if done_tx
                            .send((n, read_group(group, &mut evaluator)))
                            .is_err()
                        {
                            return;
                        }
                    }
                })
                .expect("spawning a thread only fails when the OS is out of resources");
        }
        drop((work_rx, done_tx));
        let mut units = units;
        let mut ready: BTreeMap<u64, Vec<UnitOutput>> = BTreeMap::new();
        let (mut sent, mut next) = (0u64, 0u64);
        loop {
            while sent - next < window as u64 {
                let Some(unit) = units.next() else { break };
                if work_tx.send((sent, unit)).is_err() {
                    return;
                }
                sent += 1;
            }
            if next == sent {
                break;
            }
            let outs = match ready.remove(&next) {
                Some(out) => out,
                None => match done_rx.recv() {
                    Ok((n, out)) if n == next => out,
                    Ok((n, out)) => {
                        ready.insert(n, out);
                        continue;
                    }
                    Err(_) => return,
                },
            };
            next += 1;
            for out in outs {
                if !consume(out) {
                    return;
                }
            }
        }
        drop(work_tx);
    });
}
