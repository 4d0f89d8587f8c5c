//! The last live stage: number events, batch them, hand them on.
//!
//! The batcher cuts the enriched stream into batches (at most
//! [`BATCH_EVENTS`] events, or whatever arrived within [`BATCH_WAIT`] of the
//! first, so an alert is never held back longer than that), gives every event
//! its live sequence number and passes each batch to a [`Consumer`]: the
//! engine's [`Pipeline`] for `trawl watch`, a [`TraceWriter`] for
//! `trawl record`.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use trawl_engine::event::Event;
use trawl_engine::pipeline::{AlertSink, Batch, Pipeline, SourcedEvent};

/// Most events in one batch.
pub const BATCH_EVENTS: usize = 256;
/// Longest an event waits for its batch to fill.
pub const BATCH_WAIT: Duration = Duration::from_millis(5);

/// The source name alerts from live events carry.
pub const LIVE_SOURCE: &str = "live";

/// Where batches go.
pub trait Consumer: Send {
    /// Takes one batch. An error means the consumer is gone for good; the
    /// batcher counts the batch and every later one as dropped.
    fn consume(&mut self, batch: Batch) -> io::Result<()>;
}

/// Counters of the batcher.
#[derive(Debug, Default)]
pub struct OutputCounters {
    /// Events handed to the consumer.
    pub delivered: AtomicU64,
    /// Events the consumer could not take (it failed or stopped).
    pub dropped: AtomicU64,
}

/// Runs the batcher until `ready` closes, then returns the consumer.
pub fn run_batcher<C: Consumer>(
    ready: Receiver<Event>,
    mut consumer: C,
    counters: &OutputCounters,
) -> (C, Option<io::Error>) {
    let source: Arc<str> = Arc::from(LIVE_SOURCE);
    let mut seq = 0u64;
    let mut failed: Option<io::Error> = None;
    let deliver = |events: Vec<SourcedEvent>, consumer: &mut C, failed: &mut Option<io::Error>| {
        let n = events.len() as u64;
        if failed.is_some() {
            counters.dropped.fetch_add(n, Ordering::Relaxed);
            return;
        }
        match consumer.consume(Batch {
            source: Arc::clone(&source),
            events,
        }) {
            Ok(()) => {
                counters.delivered.fetch_add(n, Ordering::Relaxed);
            }
            Err(e) => {
                counters.dropped.fetch_add(n, Ordering::Relaxed);
                *failed = Some(e);
            }
        }
    };
    while let Ok(first) = ready.recv() {
        let deadline = Instant::now() + BATCH_WAIT;
        let mut events = Vec::with_capacity(BATCH_EVENTS);
        seq += 1;
        events.push(SourcedEvent { seq, event: first });
        while events.len() < BATCH_EVENTS {
            match ready.recv_deadline(deadline) {
                Ok(event) => {
                    seq += 1;
                    events.push(SourcedEvent { seq, event });
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        deliver(events, &mut consumer, &mut failed);
    }
    (consumer, failed)
}

/// `trawl watch`: batches go to the engine. Waits while the engine's queue
/// is full (the intake, not this stage, is where a slow engine costs events).
pub struct PipelineConsumer {
    pub pipeline: Pipeline,
    /// Batches queued for the engine after the last send.
    pub depth: Arc<AtomicU64>,
}

impl PipelineConsumer {
    /// A consumer feeding `pipeline`.
    pub fn new(pipeline: Pipeline) -> PipelineConsumer {
        PipelineConsumer {
            pipeline,
            depth: Arc::default(),
        }
    }
}

impl Consumer for PipelineConsumer {
    fn consume(&mut self, batch: Batch) -> io::Result<()> {
        self.pipeline
            .send(batch)
            .map_err(|e| io::Error::other(e.to_string()))?;
        self.depth
            .store(self.pipeline.queue_depth() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// `trawl record`: events go to an NDJSON trace in trawl's trace format,
/// flushed after every batch, so the trace on disk trails the live stream by
/// at most one batch.
pub struct TraceWriter<W: Write + Send> {
    out: BufWriter<W>,
    /// Events written.
    pub written: Arc<AtomicU64>,
}

impl<W: Write + Send> TraceWriter<W> {
    /// A writer over `out`.
    pub fn new(out: W) -> TraceWriter<W> {
        TraceWriter {
            out: BufWriter::with_capacity(1 << 16, out),
            written: Arc::default(),
        }
    }
}

impl<W: Write + Send> Consumer for TraceWriter<W> {
    fn consume(&mut self, batch: Batch) -> io::Result<()> {
        for e in &batch.events {
            serde_json::to_writer(&mut self.out, &e.event).map_err(io::Error::other)?;
            self.out.write_all(b"\n")?;
            self.written.fetch_add(1, Ordering::Relaxed);
        }
        self.out.flush()
    }
}

/// An alert sink that writes each batch's alerts with one unbuffered write
/// (so every alert is on disk, or on the pipe, when the batch is done, and
/// appends from several writers never split a line) and counts the alerts.
pub struct CountingSink<W: Write + Send> {
    out: W,
    /// Alert lines written.
    pub alerts: Arc<AtomicU64>,
}

impl<W: Write + Send> CountingSink<W> {
    /// A sink over `out` (an append-mode file or stdout).
    pub fn new(out: W) -> CountingSink<W> {
        CountingSink {
            out,
            alerts: Arc::default(),
        }
    }
}

impl<W: Write + Send> AlertSink for CountingSink<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.out.write_all(bytes)?;
        let lines = bytes.iter().filter(|b| **b == b'\n').count();
        self.alerts.fetch_add(lines as u64, Ordering::Relaxed);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Opens `--output FILE` for appending (created if missing).
pub fn open_append(path: &std::path::Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::bounded;
    use trawl_engine::event::{EventKind, Os, Timestamp};

    struct Collect(Vec<Batch>, usize);

    impl Consumer for Collect {
        fn consume(&mut self, batch: Batch) -> io::Result<()> {
            if self.0.len() == self.1 {
                return Err(io::Error::other("full"));
            }
            self.0.push(batch);
            Ok(())
        }
    }

    fn ev() -> Event {
        Event::new(EventKind::FileCreate, Os::Linux, Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn batches_are_numbered_in_order_and_bounded() {
        let (tx, rx) = bounded(1000);
        for _ in 0..600 {
            tx.send(ev()).unwrap();
        }
        drop(tx);
        let counters = OutputCounters::default();
        let (c, err) = run_batcher(rx, Collect(vec![], usize::MAX), &counters);
        assert!(err.is_none());
        let seqs: Vec<u64> =
            c.0.iter()
                .flat_map(|b| b.events.iter().map(|e| e.seq))
                .collect();
        assert_eq!(seqs, (1..=600).collect::<Vec<_>>());
        assert!(c
            .0
            .iter()
            .all(|b| b.events.len() <= BATCH_EVENTS && &*b.source == LIVE_SOURCE));
        assert_eq!(counters.delivered.load(Ordering::Relaxed), 600);
    }

    #[test]
    fn a_failed_consumer_counts_every_later_event_as_dropped() {
        let (tx, rx) = bounded(1000);
        for _ in 0..600 {
            tx.send(ev()).unwrap();
        }
        drop(tx);
        let counters = OutputCounters::default();
        let (_, err) = run_batcher(rx, Collect(vec![], 1), &counters);
        assert!(err.is_some());
        let delivered = counters.delivered.load(Ordering::Relaxed);
        assert_eq!(delivered, BATCH_EVENTS as u64);
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 600 - delivered);
    }

    #[test]
    fn a_recorded_batch_reads_back_as_the_same_events() {
        let mut ev = ev();
        ev.set(
            trawl_engine::event::fields::TARGET_FILENAME,
            "/tmp/x y".into(),
        );
        ev.host = Some("h".into());
        let mut w = TraceWriter::new(Vec::new());
        w.consume(Batch {
            source: "live".into(),
            events: vec![SourcedEvent {
                seq: 1,
                event: ev.clone(),
            }],
        })
        .unwrap();
        let text = String::from_utf8(w.out.into_inner().unwrap()).unwrap();
        let back = trawl_replay::ndjson::parse_line(text.trim_end(), &mut None).unwrap();
        assert_eq!(back, ev);
    }

    #[test]
    fn the_sink_counts_alert_lines() {
        let mut s = CountingSink::new(Vec::new());
        s.write(b"{\"a\":1}\n{\"b\":2}\n").unwrap();
        assert_eq!(s.alerts.load(Ordering::Relaxed), 2);
    }
}
