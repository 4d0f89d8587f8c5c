//! The memory of events the matchers are done with, kept by each reader
//! thread to build new events (see [`Spares`]).
//!
//! Matcher workers send evaluated batches back over a bounded channel; a
//! reader takes them back before each piece of work. Each reader thread has
//! its own spares, so building an event takes no lock.

use std::cell::RefCell;

use crossbeam_channel::Receiver;
use trawl_engine::event::Spares;
use trawl_engine::pipeline::SourcedEvent;

thread_local! {
    static SPARES: RefCell<Spares> = RefCell::default();
}

/// Runs `f` on this thread's spares. Not reentrant: `f` must not call it.
pub(crate) fn with<R>(f: impl FnOnce(&mut Spares) -> R) -> R {
    SPARES.with_borrow_mut(f)
}

/// Takes back the evaluated events waiting in `spent`, as many as this
/// thread's spares have room for.
pub(crate) fn take_back(spent: &Receiver<Vec<SourcedEvent>>) {
    with(|spares| {
        while spares.wants_more() {
            let Ok(events) = spent.try_recv() else { break };
            for e in events {
                spares.keep(e.event);
            }
        }
    });
}
