//! The stats line: one line of `key=value` pairs that says what came in,
//! what was lost and where, and what came out.
//!
//! ```text
//! trawl: stats: in.process_start=812 in.process_exit=809 … in.fork=1530 dropped.intake=0 dropped.pipeline=0
//!   ebpf.lost_exec=0 … fanotify.overflows=0 … hash.hits=790 hash.misses=22 hash.skipped=3 hash.queue_full=0
//!   processes=301 queue.intake=0 queue.hash=0 queue.ready=0 queue.engine=0 alerts=2
//! ```
//! (one line in reality). Keys are stable, so scripts and tests can read it.
//! `dropped.intake.KIND` appears for each kind that lost events; source keys
//! (`ebpf.*`, `fanotify.*`, `proc_connector.*`) are each source's own counters,
//! kernel-side losses among them.

use std::fmt::Write as _;

use trawl_engine::hash::HashStats;

use super::intake::{slot_name, SLOTS};

/// Source counters that count loss episodes, not events: each fanotify
/// queue overflow, proc connector overrun or lost ETW buffer lost one or more
/// events (the kernel does not say how many). They add one each to
/// [`Snapshot::total_dropped`], which is then a lower bound.
pub const EPISODE_COUNTERS: &[&str] = &["overflows", "lost_overruns", "lost_buffers"];

/// Every number one stats line shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Inputs offered by sources, per intake slot (kinds, then fork).
    pub received: [u64; SLOTS],
    /// Inputs dropped at the intake, per slot.
    pub dropped_intake: [u64; SLOTS],
    /// Events the consumer (engine or trace) could not take.
    pub dropped_output: u64,
    /// Each source's name and counters, then the image enricher's.
    pub sources: Vec<(&'static str, Vec<(&'static str, u64)>)>,
    pub hash: HashStats,
    pub hash_queue_full: u64,
    pub hash_skipped_at_stop: u64,
    pub processes: u64,
    pub processes_evicted: u64,
    pub queue_intake: usize,
    pub queue_hash: usize,
    pub queue_ready: usize,
    pub queue_engine: usize,
    /// Alerts written (`watch`), or events written (`record`).
    pub out_key: &'static str,
    pub out: u64,
}

impl Snapshot {
    /// Events (and forks) lost anywhere: at the intake, after it, and every
    /// source counter named `lost*` or `overflows` (kernel-side loss).
    pub fn total_dropped(&self) -> u64 {
        let sources: u64 = self
            .sources
            .iter()
            .flat_map(|(_, c)| c.iter())
            .filter(|(k, _)| k.starts_with("lost") || *k == "overflows")
            .map(|(_, v)| v)
            .sum();
        self.dropped_intake.iter().sum::<u64>() + self.dropped_output + sources
    }

    /// The final loss line. A counter of kernel queue overflows or overruns
    /// ([`EPISODE_COUNTERS`]) counts episodes, each of which lost an unknown
    /// number of events, so when one is non-zero the total is a lower bound
    /// and the line says so and names them.
    pub fn loss_line(&self) -> String {
        let episodes: Vec<String> = self
            .sources
            .iter()
            .flat_map(|(name, c)| c.iter().map(move |(k, v)| (name, k, v)))
            .filter(|(_, k, v)| **v > 0 && EPISODE_COUNTERS.contains(*k))
            .map(|(name, k, v)| format!("{name}.{k}={v}"))
            .collect();
        let total = self.total_dropped();
        if episodes.is_empty() {
            format!("trawl: {total} events lost in total (kernel buffers, queues, output)")
        } else {
            format!(
                "trawl: at least {total} events lost in total (kernel buffers, queues, output): {} \
                 count kernel queue overflows, each of which lost an unknown number of events",
                episodes.join(" ")
            )
        }
    }

    /// The line, without a trailing newline.
    pub fn render(&self, prefix: &str) -> String {
        let mut s = format!("trawl: {prefix}:");
        for (slot, n) in self.received.iter().enumerate() {
            let _ = write!(s, " in.{}={n}", slot_name(slot));
        }
        let intake: u64 = self.dropped_intake.iter().sum();
        let _ = write!(s, " dropped.intake={intake}");
        for (slot, n) in self.dropped_intake.iter().enumerate() {
            if *n > 0 {
                let _ = write!(s, " dropped.intake.{}={n}", slot_name(slot));
            }
        }
        let _ = write!(s, " dropped.output={}", self.dropped_output);
        for (name, counters) in &self.sources {
            for (k, v) in counters {
                let _ = write!(s, " {name}.{k}={v}");
            }
        }
        let h = &self.hash;
        let _ = write!(
            s,
            " hash.hits={} hash.misses={} hash.skipped={} hash.queue_full={} hash.skipped_at_stop={} hash.bytes={}",
            h.hits, h.misses, h.skipped, self.hash_queue_full, self.hash_skipped_at_stop, h.bytes_hashed
        );
        let _ = write!(
            s,
            " processes={} processes.evicted={} queue.intake={} queue.hash={} queue.ready={} queue.engine={} {}={}",
            self.processes,
            self.processes_evicted,
            self.queue_intake,
            self.queue_hash,
            self.queue_ready,
            self.queue_engine,
            self.out_key,
            self.out
        );
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_names_every_loss() {
        let mut snap = Snapshot {
            out_key: "alerts",
            out: 3,
            ..Snapshot::default()
        };
        snap.received[0] = 10;
        snap.dropped_intake[0] = 2;
        snap.dropped_output = 1;
        snap.sources = vec![
            ("ebpf", vec![("events", 9), ("lost_exec", 4)]),
            ("fanotify", vec![("overflows", 1), ("own", 7)]),
        ];
        let line = snap.render("stats");
        assert!(
            line.starts_with("trawl: stats: in.process_start=10 in.process_exit=0"),
            "{line}"
        );
        for part in [
            " in.fork=0",
            " dropped.intake=2 dropped.intake.process_start=2 dropped.output=1",
            " ebpf.events=9 ebpf.lost_exec=4 fanotify.overflows=1 fanotify.own=7",
            " alerts=3",
        ] {
            assert!(line.contains(part), "{part} in {line}");
        }
        // intake 2 + output 1 + ebpf lost 4 + fanotify overflows 1
        assert_eq!(snap.total_dropped(), 8);
        // An overflow lost an unknown number of events: a lower bound.
        let loss = snap.loss_line();
        assert!(
            loss.starts_with("trawl: at least 8 events lost in total")
                && loss.contains("fanotify.overflows=1 count kernel queue overflows"),
            "{loss}"
        );
        snap.sources[1].1[0].1 = 0;
        assert_eq!(
            snap.loss_line(),
            "trawl: 7 events lost in total (kernel buffers, queues, output)"
        );
    }
}
