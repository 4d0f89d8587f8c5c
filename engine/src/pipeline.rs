//! The live sensor's pipeline: one producer → bounded queue of batches → N
//! matcher workers → ordered sink; and its two ends, which a replay uses
//! without the queue: the [`Evaluator`] that matches events and renders
//! their alerts, and the [`AlertWriter`] that writes them in order.
//!
//! - The producer (a trace reader, or the live sensor's normalizer) sends
//!   [`Batch`]es; each gets the next batch number. The queue is a bounded
//!   `crossbeam-channel`, so a slow engine pushes back on the producer instead
//!   of growing memory; a live producer can use [`Pipeline::try_send`] and
//!   count what it has to drop.
//! - Each worker owns an [`Evaluator`] and evaluates whole batches, rendering the
//!   alerts it finds right there (so the expensive formatting is parallel too).
//! - The sink thread puts batch outputs back in batch order before it writes,
//!   so the bytes written are the same at one thread or sixteen.
//!
//! ```
//! use std::sync::Arc;
//! use trawl_engine::alert::Format;
//! use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp};
//! use trawl_engine::matcher::Ruleset;
//! use trawl_engine::pipeline::{Batch, Pipeline, PipelineConfig, SourcedEvent, VecSink};
//! use trawl_engine::rule::{Atom, Expr, Level, Rule, RuleBody, Scope, StrOp, Test};
//!
//! let rule = Rule { id: "r".into(), title: "t".into(), level: Level::High, tags: vec![], origin: "x".into(),
//!     scope: Scope::ANY, body: RuleBody::Expr(Expr::Atom(Atom::field(fields::IMAGE,
//!     Test::Str { op: StrOp::Suffix, value: "\\pa.exe".into(), cased: false }))) };
//! let (ruleset, _) = Ruleset::compile(vec![rule]);
//! let sink = VecSink::default();
//! let written = sink.handle();
//! let mut p = Pipeline::start(Arc::new(ruleset), PipelineConfig { threads: 2, ..Default::default() }, Box::new(sink));
//! let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
//! ev.set(fields::IMAGE, "C:\\Windows\\TAPI\\pa.exe".into());
//! p.send(Batch { source: "demo".into(), events: vec![SourcedEvent { seq: 1, event: ev }] }).unwrap();
//! let report = p.finish().unwrap();
//! assert_eq!(report.stats.alerts, 1);
//! assert!(report.write_error.is_none());
//! assert!(String::from_utf8(written.lock().unwrap().clone()).unwrap().contains(r#""rule_id":"r""#));
//! ```

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::alert::{Alert, EventJson, Format};
use crate::event::{Event, EventKind};
use crate::matcher::{Detection, Ruleset, Scratch};

/// An event and its position in its source.
#[derive(Debug, Clone)]
pub struct SourcedEvent {
    /// 1-based: the NDJSON line, the EVTX record id, the live sequence number.
    pub seq: u64,
    pub event: Event,
}

/// A run of events from one source: the unit of work and of ordering.
#[derive(Debug, Clone)]
pub struct Batch {
    /// The source's name as alerts show it (a trace path, `live`).
    pub source: Arc<str>,
    pub events: Vec<SourcedEvent>,
}

/// How the pipeline runs.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Matcher worker threads (at least one).
    pub threads: usize,
    /// Capacity of the batch queue between producer and workers.
    pub queue_batches: usize,
    pub format: Format,
    /// Flush the sink after every batch that produced alerts (live mode: an
    /// alert is on disk as soon as it is found); otherwise the sink is
    /// flushed once at the end.
    pub flush_each_batch: bool,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            queue_batches: 64,
            format: Format::Json,
            flush_each_batch: false,
        }
    }
}

/// Where rendered alerts go. Called from one thread, in order.
pub trait AlertSink: Send {
    /// Writes whole alert lines.
    fn write(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Pushes what was written to its destination.
    fn flush(&mut self) -> io::Result<()>;
}

/// A sink over any writer (stdout, a file).
pub struct WriterSink<W: Write + Send>(pub W);

impl<W: Write + Send> AlertSink for WriterSink<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0.write_all(bytes)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// A sink that keeps everything in memory, for tests and embedding.
#[derive(Debug, Default, Clone)]
pub struct VecSink(Arc<Mutex<Vec<u8>>>);

impl VecSink {
    /// A handle on the bytes written, usable after the pipeline finished.
    pub fn handle(&self) -> Arc<Mutex<Vec<u8>>> {
        Arc::clone(&self.0)
    }
}

impl AlertSink for VecSink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.0
            .lock()
            .map_err(|_| io::Error::other("sink poisoned"))?
            .extend_from_slice(bytes);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What went through the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PipelineStats {
    /// Events evaluated.
    pub events: u64,
    /// Events per kind, indexed by [`EventKind::index`].
    pub per_kind: [u64; 6],
    /// Alerts written.
    pub alerts: u64,
    /// Alerts per rule, indexed like [`Ruleset::rules`].
    pub per_rule: Vec<u64>,
    /// Batches processed (in a replay: parts of files, each an EVTX chunk, a
    /// small file or a block of lines).
    pub batches: u64,
    /// Batches (parts of files) that could not be evaluated because matching
    /// panicked (a bug in trawl), and the events in them: counted, never
    /// silently lost.
    pub failed_batches: u64,
    pub failed_events: u64,
}

impl PipelineStats {
    /// Events of one kind.
    pub fn kind(&self, kind: EventKind) -> u64 {
        self.per_kind[kind.index()]
    }
}

/// How a finished pipeline went.
#[derive(Debug)]
pub struct PipelineReport {
    pub stats: PipelineStats,
    /// Writing alerts failed (disk full, closed pipe): alerts after the
    /// failure were counted but not written.
    pub write_error: Option<io::Error>,
}

/// The pipeline's own sink thread died: a bug; please report it with the input.
#[derive(Debug, thiserror::Error)]
#[error("the alert sink thread panicked (this is a bug in trawl)")]
pub struct PipelineError;

/// The pipeline is closed: every worker is gone (only after a panic).
#[derive(Debug, thiserror::Error)]
#[error("the pipeline's workers have stopped")]
pub struct PipelineClosed;

struct Numbered {
    index: u64,
    batch: Batch,
}

struct BatchOutput {
    index: u64,
    evaluated: Evaluated,
}

/// The rendered alerts of some events and their counts: what an
/// [`Evaluator`] gives and an [`AlertWriter`] writes.
#[derive(Debug, Default)]
pub struct Evaluated {
    /// Alert lines, in event order.
    bytes: Vec<u8>,
    /// Rule index of every alert in `bytes`, in order.
    rules: Vec<u32>,
    /// Events evaluated, and per kind.
    events: u64,
    per_kind: [u64; 6],
    /// Runs of events that could not be evaluated because matching panicked,
    /// and their events.
    failed_runs: u64,
    failed_events: u64,
}

impl Evaluated {
    /// Alerts rendered.
    pub fn alerts(&self) -> usize {
        self.rules.len()
    }

    /// The rendered alert lines.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
}

/// Evaluates events against a ruleset and renders their alerts, on the
/// thread that owns it: a pipeline worker, or a replay reader that matches
/// the events it has just read while they are still in its cache.
///
/// ```
/// use std::sync::Arc;
/// use trawl_engine::alert::Format;
/// use trawl_engine::event::{fields, Event, EventKind, Os, Timestamp};
/// use trawl_engine::matcher::Ruleset;
/// use trawl_engine::pipeline::{AlertWriter, Evaluated, Evaluator, SourcedEvent, VecSink};
/// use trawl_engine::rule::{Atom, Expr, Level, Rule, RuleBody, Scope, StrOp, Test};
///
/// let rule = Rule { id: "r".into(), title: "t".into(), level: Level::High, tags: vec![], origin: "x".into(),
///     scope: Scope::ANY, body: RuleBody::Expr(Expr::Atom(Atom::field(fields::IMAGE,
///     Test::Str { op: StrOp::Suffix, value: "\\pa.exe".into(), cased: false }))) };
/// let ruleset = Arc::new(Ruleset::compile(vec![rule]).0);
/// let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
/// ev.set(fields::IMAGE, "C:\\Windows\\TAPI\\pa.exe".into());
///
/// let mut evaluator = Evaluator::new(Arc::clone(&ruleset), Format::Json);
/// let mut out = Evaluated::default();
/// evaluator.evaluate("demo", &[SourcedEvent { seq: 1, event: ev }], &mut out);
/// assert_eq!(out.alerts(), 1);
///
/// let sink = VecSink::default();
/// let written = sink.handle();
/// let mut writer = AlertWriter::new(Box::new(sink), ruleset.len(), false);
/// writer.write(&out);
/// let report = writer.finish();
/// assert_eq!((report.stats.events, report.stats.alerts), (1, 1));
/// assert!(written.lock().unwrap().starts_with(b"{\"ts\""));
/// ```
pub struct Evaluator {
    ruleset: Arc<Ruleset>,
    format: Format,
    scratch: Scratch,
    detections: Vec<Detection>,
    /// The event being alerted on, written once for all its alerts.
    event_json: EventJson,
}

/// The bytes [`Evaluator::evaluate`] makes room for at a batch's first alert.
const FIRST_ALERTS_ROOM: usize = 8 * 1024;

impl Evaluator {
    /// An evaluator with its own scratch space for `ruleset`.
    pub fn new(ruleset: Arc<Ruleset>, format: Format) -> Evaluator {
        Evaluator {
            scratch: Scratch::new(&ruleset),
            ruleset,
            format,
            detections: Vec::new(),
            event_json: EventJson::default(),
        }
    }

    /// Evaluates `events` (all from `source`) and appends their alerts and
    /// counts to `out`. A panic while matching (a bug in trawl) costs these
    /// events, counted in `out` as failed, not the run: their partial output
    /// is dropped and the evaluator is ready for the next call.
    pub fn evaluate(&mut self, source: &str, events: &[SourcedEvent], out: &mut Evaluated) {
        if events.is_empty() {
            return;
        }
        let (bytes, rules, per_kind) = (out.bytes.len(), out.rules.len(), out.per_kind);
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.evaluate_all(source, events, out)
        }));
        if run.is_err() {
            tracing::error!(
                "matching {} events from {source} panicked (a bug in trawl); they are counted as failed",
                events.len(),
            );
            out.bytes.truncate(bytes);
            out.rules.truncate(rules);
            out.per_kind = per_kind;
            out.failed_runs += 1;
            out.failed_events += events.len() as u64;
            self.scratch = Scratch::new(&self.ruleset);
        } else {
            out.events += events.len() as u64;
        }
    }

    fn evaluate_all(&mut self, source: &str, events: &[SourcedEvent], out: &mut Evaluated) {
        let rs = &*self.ruleset;
        for se in events {
            // Lets the tests below prove that a panic costs one batch, not the run.
            #[cfg(test)]
            if se.event.get_str("TestPanic").is_some() {
                panic!("test-induced panic");
            }
            out.per_kind[se.event.kind.index()] += 1;
            self.detections.clear();
            rs.evaluate(&se.event, &mut self.scratch, &mut self.detections);
            let event_json = match (self.format, self.detections.is_empty()) {
                (Format::Json, false) => {
                    self.event_json.write(&se.event);
                    Some(&self.event_json)
                }
                _ => None,
            };
            if !self.detections.is_empty() && out.bytes.capacity() == 0 {
                // Room for a few alerts (an alert line runs to a kilobyte or
                // two), not regrown from a few bytes in every batch.
                out.bytes.reserve(FIRST_ALERTS_ROOM);
            }
            for d in &self.detections {
                Alert {
                    event: &se.event,
                    source,
                    seq: se.seq,
                    rule: rs.rule(d.rule),
                    matches: &d.matches,
                }
                .render_with(self.format, event_json, &mut out.bytes);
                out.rules.push(d.rule as u32);
            }
        }
    }
}

/// Writes [`Evaluated`] alerts to a sink in the order it is handed them,
/// and totals them. After a write error it goes on counting (so producers
/// never block on a dead sink) and reports the error once, at the end.
pub struct AlertWriter {
    sink: Box<dyn AlertSink>,
    stats: PipelineStats,
    error: Option<io::Error>,
    flush_each: bool,
}

impl AlertWriter {
    /// A writer for the alerts of a ruleset of `rules` rules; `flush_each`
    /// flushes the sink after every write that had alerts (live mode).
    pub fn new(sink: Box<dyn AlertSink>, rules: usize, flush_each: bool) -> AlertWriter {
        AlertWriter {
            sink,
            stats: PipelineStats {
                per_rule: vec![0; rules],
                ..Default::default()
            },
            error: None,
            flush_each,
        }
    }

    /// Counts `out` as one batch and writes its alerts.
    pub fn write(&mut self, out: &Evaluated) {
        let stats = &mut self.stats;
        stats.batches += 1;
        stats.failed_batches += out.failed_runs;
        stats.failed_events += out.failed_events;
        stats.events += out.events;
        for (total, n) in stats.per_kind.iter_mut().zip(out.per_kind) {
            *total += n;
        }
        stats.alerts += out.rules.len() as u64;
        for r in &out.rules {
            stats.per_rule[*r as usize] += 1;
        }
        if self.error.is_none() && !out.bytes.is_empty() {
            let flush_each = self.flush_each;
            let sink = &mut self.sink;
            let res =
                sink.write(&out.bytes)
                    .and_then(|()| if flush_each { sink.flush() } else { Ok(()) });
            if let Err(e) = res {
                self.error = Some(e);
            }
        }
    }

    /// Flushes the sink and returns the totals.
    pub fn finish(mut self) -> PipelineReport {
        if self.error.is_none() {
            if let Err(e) = self.sink.flush() {
                self.error = Some(e);
            }
        }
        PipelineReport {
            stats: self.stats,
            write_error: self.error,
        }
    }
}

/// A running pipeline. Dropping it without [`Pipeline::finish`] stops the
/// workers after the queued batches.
pub struct Pipeline {
    tx: Option<Sender<Numbered>>,
    next_index: u64,
    workers: Vec<JoinHandle<()>>,
    sink: Option<JoinHandle<PipelineReport>>,
}

impl Pipeline {
    /// Starts the workers and the sink thread.
    pub fn start(
        ruleset: Arc<Ruleset>,
        config: PipelineConfig,
        sink: Box<dyn AlertSink>,
    ) -> Pipeline {
        let threads = config.threads.max(1);
        let (tx, rx) = bounded::<Numbered>(config.queue_batches.max(1));
        let (out_tx, out_rx) = bounded::<BatchOutput>(threads * 4);
        let workers = (0..threads)
            .map(|i| {
                let rx = rx.clone();
                let out_tx = out_tx.clone();
                let rs = Arc::clone(&ruleset);
                let format = config.format;
                std::thread::Builder::new()
                    .name(format!("trawl-match-{i}"))
                    .spawn(move || worker(rs, format, rx, out_tx))
                    .expect("spawning a thread only fails when the OS is out of resources")
            })
            .collect();
        drop(out_tx);
        let rules = ruleset.len();
        let flush_each = config.flush_each_batch;
        let sink = std::thread::Builder::new()
            .name("trawl-sink".into())
            .spawn(move || run_sink(sink, out_rx, rules, flush_each))
            .expect("spawning a thread only fails when the OS is out of resources");
        Pipeline {
            tx: Some(tx),
            next_index: 0,
            workers,
            sink: Some(sink),
        }
    }

    /// Queues a batch, waiting while the queue is full.
    pub fn send(&mut self, batch: Batch) -> Result<(), PipelineClosed> {
        let tx = self.tx.as_ref().ok_or(PipelineClosed)?;
        tx.send(Numbered {
            index: self.next_index,
            batch,
        })
        .map_err(|_| PipelineClosed)?;
        self.next_index += 1;
        Ok(())
    }

    /// Queues a batch if there is room; otherwise hands it back, so a live
    /// source can count it as dropped instead of stalling the kernel's buffers.
    pub fn try_send(&mut self, batch: Batch) -> Result<(), TrySendError<Batch>> {
        let Some(tx) = self.tx.as_ref() else {
            return Err(TrySendError::Disconnected(batch));
        };
        match tx.try_send(Numbered {
            index: self.next_index,
            batch,
        }) {
            Ok(()) => {
                self.next_index += 1;
                Ok(())
            }
            Err(TrySendError::Full(n)) => Err(TrySendError::Full(n.batch)),
            Err(TrySendError::Disconnected(n)) => Err(TrySendError::Disconnected(n.batch)),
        }
    }

    /// Batches waiting in the queue now.
    pub fn queue_depth(&self) -> usize {
        self.tx.as_ref().map_or(0, Sender::len)
    }

    /// Closes the queue, lets the workers drain it, flushes the sink and
    /// returns the totals.
    pub fn finish(mut self) -> Result<PipelineReport, PipelineError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<PipelineReport, PipelineError> {
        self.tx = None;
        for w in self.workers.drain(..) {
            // Workers catch panics per batch; one that still died has already
            // reported its batch as failed or never took one.
            let _ = w.join();
        }
        match self.sink.take() {
            Some(h) => h.join().map_err(|_| PipelineError),
            None => Err(PipelineError),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if self.sink.is_some() {
            let _ = self.shutdown();
        }
    }
}

fn worker(rs: Arc<Ruleset>, format: Format, rx: Receiver<Numbered>, out: Sender<BatchOutput>) {
    let mut evaluator = Evaluator::new(rs, format);
    for Numbered { index, batch } in rx {
        let mut evaluated = Evaluated::default();
        evaluator.evaluate(&batch.source, &batch.events, &mut evaluated);
        // A failed batch's number must still reach the sink, or it would
        // wait for it forever.
        if out.send(BatchOutput { index, evaluated }).is_err() {
            return;
        }
    }
}

fn run_sink(
    sink: Box<dyn AlertSink>,
    rx: Receiver<BatchOutput>,
    rules: usize,
    flush_each: bool,
) -> PipelineReport {
    let mut writer = AlertWriter::new(sink, rules, flush_each);
    let mut pending: BTreeMap<u64, Evaluated> = BTreeMap::new();
    let mut next = 0u64;
    for out in rx {
        pending.insert(out.index, out.evaluated);
        while let Some(out) = pending.remove(&next) {
            next += 1;
            writer.write(&out);
        }
    }
    writer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{fields, Os, Timestamp};
    use crate::rule::{Atom, Expr, Level, Rule, RuleBody, Scope, StrOp, Test};

    fn ruleset() -> Arc<Ruleset> {
        let mk = |id: &str, lit: &str| Rule {
            id: id.into(),
            title: id.into(),
            level: Level::Low,
            tags: vec![],
            origin: "t".into(),
            scope: Scope::ANY,
            body: RuleBody::Expr(Expr::Atom(Atom::field(
                fields::COMMAND_LINE,
                Test::Str {
                    op: StrOp::Contains,
                    value: lit.into(),
                    cased: false,
                },
            ))),
        };
        Arc::new(Ruleset::compile(vec![mk("a", "x7"), mk("b", "7")]).0)
    }

    fn run(threads: usize, batch_size: usize) -> (Vec<u8>, PipelineStats) {
        let sink = VecSink::default();
        let bytes = sink.handle();
        let cfg = PipelineConfig {
            threads,
            queue_batches: 2,
            ..Default::default()
        };
        let mut p = Pipeline::start(ruleset(), cfg, Box::new(sink));
        let events: Vec<SourcedEvent> = (1..=5000u64)
            .map(|i| {
                let mut ev = Event::new(
                    EventKind::ALL[(i % 6) as usize],
                    Os::Windows,
                    Timestamp::UNIX_EPOCH,
                );
                ev.set(fields::COMMAND_LINE, format!("cmd x{i}").into());
                SourcedEvent { seq: i, event: ev }
            })
            .collect();
        for chunk in events.chunks(batch_size) {
            p.send(Batch {
                source: "s".into(),
                events: chunk.to_vec(),
            })
            .unwrap();
        }
        let stats = p.finish().unwrap().stats;
        let out = bytes.lock().unwrap().clone();
        (out, stats)
    }

    #[test]
    fn output_is_identical_at_any_thread_count() {
        let (one, s1) = run(1, 7);
        let (four, s4) = run(4, 7);
        let (two_big, _) = run(2, 1000);
        assert_eq!(s1, s4);
        assert!(
            one == four && one == two_big,
            "alert bytes differ between thread counts"
        );
        // "7" hits every number with a 7 in it; "x7" only those starting with 7.
        let with7 = (1..=5000)
            .filter(|i: &i32| i.to_string().contains('7'))
            .count() as u64;
        let start7 = (1..=5000)
            .filter(|i: &i32| i.to_string().starts_with('7'))
            .count() as u64;
        assert_eq!(s1.per_rule, vec![start7, with7]);
        assert_eq!(s1.events, 5000);
        assert_eq!(s1.per_kind.iter().sum::<u64>(), 5000);
        // Alerts come in event order.
        let seqs = seqs(&one);
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]));
    }

    /// The `seq` of every alert line.
    fn seqs(alerts: &[u8]) -> Vec<u64> {
        String::from_utf8_lossy(alerts)
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l).unwrap()["seq"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    }

    struct FailingSink;
    impl AlertSink for FailingSink {
        fn write(&mut self, _: &[u8]) -> io::Result<()> {
            Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn sink_errors_are_reported_and_do_not_hang() {
        let mut p = Pipeline::start(
            ruleset(),
            PipelineConfig {
                threads: 2,
                queue_batches: 1,
                ..Default::default()
            },
            Box::new(FailingSink),
        );
        for i in 0..200u64 {
            let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
            ev.set(fields::COMMAND_LINE, "x7".into());
            p.send(Batch {
                source: "s".into(),
                events: vec![SourcedEvent {
                    seq: i + 1,
                    event: ev,
                }],
            })
            .unwrap();
        }
        let report = p.finish().unwrap();
        assert_eq!(
            report.write_error.unwrap().kind(),
            io::ErrorKind::BrokenPipe
        );
        assert_eq!(
            report.stats.alerts, 400,
            "alerts are still counted (two rules hit each event)"
        );
    }

    #[test]
    fn a_panic_keeps_what_was_evaluated_before_it_and_the_evaluator_goes_on() {
        let rs = ruleset();
        let event = |seq: u64, panics: bool| {
            let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
            ev.set(fields::COMMAND_LINE, "x7".into());
            if panics {
                ev.set(crate::event::FieldKey::from_name("TestPanic"), "yes".into());
            }
            SourcedEvent { seq, event: ev }
        };
        let mut evaluator = Evaluator::new(Arc::clone(&rs), Format::Json);
        let mut out = Evaluated::default();
        evaluator.evaluate("s", &[event(1, false)], &mut out);
        let (bytes, rules) = (out.bytes.clone(), out.rules.clone());
        // The second event of this run panics: the first one's alerts go too.
        evaluator.evaluate("s", &[event(2, false), event(3, true)], &mut out);
        assert_eq!((out.bytes == bytes, &out.rules), (true, &rules));
        assert_eq!((out.events, out.failed_runs, out.failed_events), (1, 1, 2));
        assert_eq!(out.per_kind[EventKind::ProcessStart.index()], 1);
        evaluator.evaluate("s", &[event(4, false)], &mut out);
        assert_eq!(seqs(&out.bytes), vec![1, 1, 4, 4]);
        let mut writer = AlertWriter::new(Box::new(VecSink::default()), rs.len(), false);
        writer.write(&out);
        let stats = writer.finish().stats;
        assert_eq!(
            (
                stats.events,
                stats.alerts,
                stats.failed_batches,
                stats.failed_events
            ),
            (2, 4, 1, 2)
        );
    }

    #[test]
    fn a_panicking_batch_is_counted_and_the_rest_flows_in_order() {
        let sink = VecSink::default();
        let bytes = sink.handle();
        let cfg = PipelineConfig {
            threads: 2,
            queue_batches: 1,
            ..Default::default()
        };
        let mut p = Pipeline::start(ruleset(), cfg, Box::new(sink));
        for i in 1..=50u64 {
            let mut ev = Event::new(EventKind::ProcessStart, Os::Windows, Timestamp::UNIX_EPOCH);
            ev.set(fields::COMMAND_LINE, "x7".into());
            if i == 10 {
                ev.set(crate::event::FieldKey::from_name("TestPanic"), "yes".into());
            }
            p.send(Batch {
                source: "s".into(),
                events: vec![SourcedEvent { seq: i, event: ev }],
            })
            .unwrap();
        }
        let report = p.finish().unwrap();
        assert_eq!(
            (report.stats.failed_batches, report.stats.failed_events),
            (1, 1)
        );
        assert_eq!(report.stats.events, 49);
        assert_eq!(report.stats.alerts, 98);
        let seqs = seqs(&bytes.lock().unwrap());
        assert_eq!(seqs.len(), 98);
        assert!(!seqs.contains(&10));
        assert!(seqs.windows(2).all(|w| w[0] <= w[1]));
    }
}
