//! The live sensor's platform-free half: what happens to an event between an
//! OS source and the engine.
//!
//! ```text
//! sources ──push──▶ Intake ──▶ normalizer ──▶ hash pool ──▶ batcher ──▶ Pipeline (watch)
//! (eBPF, fanotify,  (bounded,   (process      (SHA-256,     (seq,       or NDJSON trace (record)
//!  proc connector,   counted     table:        HashCache,    batches)
//!  ETW)              drops)      parents)      enricher)
//! ```
//!
//! Nothing here is tied to an OS: a platform supplies its sources, a process
//! table seed and an optional [`enrich::ImageEnricher`] through
//! [`run::LivePlatform`]; Linux's lives in `crate::linux`. Every hop is a
//! bounded `crossbeam-channel`; the only place events are dropped is the
//! [`intake::Intake`], where each drop is counted per kind, so a slow engine
//! costs counted events, never memory or a stalled kernel buffer.

// Linux and Windows feed the live pipeline; elsewhere `watch`/`record` only
// say so, and these items go unused.
#![cfg_attr(not(any(target_os = "linux", windows)), allow(dead_code))]

pub mod enrich;
pub mod intake;
pub mod output;
pub mod proctable;
pub mod run;
pub mod stats;
