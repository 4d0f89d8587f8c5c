//! trawl's sensor library: the live sources behind `trawl watch` and
//! `trawl record`, shared by the `trawl` binary.
//!
//! - [`etw`]: ETW property sets → trawl events (platform-free, tested everywhere).
//! - `windows` (Windows only): the ferrisetw sessions that feed [`etw`].

pub mod etw;
#[cfg(windows)]
pub mod windows;
