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

// Only Linux feeds the live pipeline so far; the Windows ETW source (issue 5)
// is wired after it lands. Until then these items are unused on Windows.
#![cfg_attr(not(target_os = "linux"), allow(dead_code))]

pub mod enrich;
pub mod intake;
pub mod output;
pub mod proctable;
pub mod run;
pub mod stats;
