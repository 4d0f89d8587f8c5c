//! The sources' door into the live pipeline.
//!
//! An [`Intake`] is a cheap, cloneable handle every source thread holds. Its
//! [`Intake::push`] never blocks: a source reading a kernel buffer must keep
//! reading, so when the queue behind it is full the event is dropped and
//! counted (per kind) instead. The counts are what the stats line reports as
//! `dropped intake`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use trawl_engine::event::{Event, EventKind};

/// What a source hands the normalizer.
#[derive(Debug)]
pub enum Input {
    /// A normalized event (process start/exit, file event).
    Event(Event),
    /// A new process that has not (yet) run a new program: it inherits its
    /// parent's image and command line in the process table. Platforms that
    /// report only process starts (Windows) never send it.
    #[cfg_attr(windows, allow(dead_code))]
    Fork {
        parent: u32,
        child: u32,
        /// The child's start time (any monotonic clock; tells pid reuse apart).
        start_ns: u64,
    },
}

/// Slots of the per-kind counters: the six event kinds, then forks.
pub const SLOTS: usize = 7;
/// The counter slot of [`Input::Fork`].
#[cfg_attr(windows, allow(dead_code))]
pub const FORK_SLOT: usize = 6;

/// The name of a counter slot in stats lines.
pub fn slot_name(slot: usize) -> &'static str {
    EventKind::ALL.get(slot).map_or("fork", |k| k.as_str())
}

/// Counters shared by every clone of an [`Intake`].
#[derive(Debug, Default)]
pub struct IntakeCounters {
    /// Inputs offered by sources, per slot.
    pub received: [AtomicU64; SLOTS],
    /// Inputs dropped because the queue was full (or closed), per slot.
    pub dropped: [AtomicU64; SLOTS],
}

impl IntakeCounters {
    /// A snapshot: (received, dropped) per slot.
    pub fn snapshot(&self) -> ([u64; SLOTS], [u64; SLOTS]) {
        let load = |a: &[AtomicU64; SLOTS]| std::array::from_fn(|i| a[i].load(Ordering::Relaxed));
        (load(&self.received), load(&self.dropped))
    }
}

/// A source's handle on the live pipeline. Clone it into every source thread.
#[derive(Debug, Clone)]
pub struct Intake {
    tx: Sender<Input>,
    counters: Arc<IntakeCounters>,
}

impl Intake {
    /// An intake whose queue holds `capacity` inputs, and the receiving end.
    pub fn new(capacity: usize) -> (Intake, Receiver<Input>) {
        let (tx, rx) = bounded(capacity.max(1));
        (
            Intake {
                tx,
                counters: Arc::default(),
            },
            rx,
        )
    }

    /// Offers an event; drops and counts it if the queue is full. Never blocks.
    pub fn push(&self, event: Event) {
        let slot = event.kind.index();
        self.offer(slot, Input::Event(event));
    }

    /// Offers a fork (see [`Input::Fork`]); never blocks.
    #[cfg_attr(windows, allow(dead_code))]
    pub fn push_fork(&self, parent: u32, child: u32, start_ns: u64) {
        self.offer(
            FORK_SLOT,
            Input::Fork {
                parent,
                child,
                start_ns,
            },
        );
    }

    fn offer(&self, slot: usize, input: Input) {
        self.counters.received[slot].fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(input) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.counters.dropped[slot].fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// The counters every clone shares.
    pub fn counters(&self) -> Arc<IntakeCounters> {
        Arc::clone(&self.counters)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trawl_engine::event::{Os, Timestamp};

    fn ev(kind: EventKind) -> Event {
        Event::new(kind, Os::Linux, Timestamp::UNIX_EPOCH)
    }

    #[test]
    fn a_full_queue_drops_and_counts_per_kind_without_blocking() {
        let (intake, rx) = Intake::new(2);
        let other = intake.clone();
        intake.push(ev(EventKind::ProcessStart));
        other.push(ev(EventKind::FileCreate));
        intake.push(ev(EventKind::FileCreate));
        intake.push_fork(1, 2, 3);
        let (received, dropped) = intake.counters().snapshot();
        assert_eq!(received[EventKind::FileCreate.index()], 2);
        assert_eq!(dropped[EventKind::FileCreate.index()], 1);
        assert_eq!(dropped[EventKind::ProcessStart.index()], 0);
        assert_eq!((received[FORK_SLOT], dropped[FORK_SLOT]), (1, 1));
        assert_eq!(rx.len(), 2);
        assert!(matches!(rx.try_recv(), Ok(Input::Event(e)) if e.kind == EventKind::ProcessStart));
        assert_eq!(slot_name(FORK_SLOT), "fork");
        assert_eq!(slot_name(0), "process_start");
    }

    #[test]
    fn a_closed_queue_counts_drops() {
        let (intake, rx) = Intake::new(4);
        drop(rx);
        intake.push(ev(EventKind::FileDelete));
        let (_, dropped) = intake.counters().snapshot();
        assert_eq!(dropped[EventKind::FileDelete.index()], 1);
    }
}
