//! Windows events from ETW, as trawl events — the platform-free part.
//!
//! Everything between a raw ETW property set and the normalized
//! [`trawl_engine::event::Event`] lives here and compiles (and is tested) on every
//! platform: the property sets ([`props`]), the join of the two process-start
//! halves ([`join`]), the process table ([`process_table`]), device paths to
//! drive letters ([`device_map`]), SIDs to account names ([`sid`]), the
//! converter that ties them together ([`convert`]), the PE version-resource
//! reader behind `OriginalFileName` ([`pe`], [`enrich`]) and the `--watch`
//! path filter ([`watch_paths`]). The thin ferrisetw glue that fills the
//! property sets is `crate::windows` (Windows only).

pub mod convert;
pub mod device_map;
pub mod enrich;
pub mod join;
pub mod pe;
pub mod process_table;
pub mod props;
#[cfg(test)]
mod recorded;
pub mod sid;
pub mod watch_paths;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use convert::ConvertStats;

/// How the Windows sensor runs its ETW sessions.
#[derive(Debug, Clone)]
pub struct EtwOptions {
    /// The machine name stamped on every event (`None`: no `host`).
    pub host: Option<Arc<str>>,
    /// Also report files whose content an open replaced (supersede,
    /// overwrite): needs Kernel-File's `Create` keyword, which delivers every
    /// open on the machine, so it costs real CPU. Off by default: new files
    /// (event 30) are always reported.
    pub file_overwrites: bool,
    /// How long a process-start half waits for its partner.
    pub join_timeout: Duration,
    /// ETW buffer size per session in KiB (more buffers lose fewer events
    /// under bursts).
    pub buffer_kb: u32,
    /// Prefix of the two session names (`<prefix>-kernel`, `<prefix>-user`);
    /// a session of the same name left by a crashed run is stopped first.
    pub session_prefix: String,
}

impl Default for EtwOptions {
    fn default() -> EtwOptions {
        EtwOptions {
            host: None,
            file_overwrites: false,
            join_timeout: Duration::from_secs(3),
            buffer_kb: 64,
            session_prefix: "trawl".to_owned(),
        }
    }
}

/// Counters of a running ETW sensor, for the stats line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EtwStats {
    /// Records the sessions delivered to trawl's callbacks.
    pub events_seen: u64,
    /// Events ETW itself dropped (`EventsLost` of both sessions): its buffers
    /// were full because trawl read too slowly or bursts were too big.
    pub events_lost: u64,
    /// Buffers ETW could not write or deliver (`LogBuffersLost` +
    /// `RealTimeBuffersLost`), each holding many events.
    pub buffers_lost: u64,
    /// Records trawl could not read (no schema, a property missing or of
    /// the wrong type, or a panic in conversion).
    pub conversion_failures: u64,
    /// What the converter did with the records it could read.
    pub convert: ConvertStats,
}

impl fmt::Display for EtwStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.convert;
        write!(
            f,
            "etw: {} records, {} events lost, {} buffers lost, {} unreadable; \
             starts {} ({} joined, {} without path, {} without command line), exits {}, \
             file creates {}; {} paths not on a drive",
            self.events_seen,
            self.events_lost,
            self.buffers_lost,
            self.conversion_failures,
            c.process_starts,
            c.join.joined,
            c.join.mof_only,
            c.join.kernel_only,
            c.process_exits,
            c.file_creates,
            c.unmapped_paths,
        )
    }
}

impl EtwStats {
    /// The counters as `key=value` pairs for the live stats line (`etw.*`).
    /// Keys starting with `lost` are losses, which the live pipeline adds to
    /// its total: ETW's dropped events, its lost buffers (each held at least
    /// one event, so this is a lower bound) and records trawl could not read.
    pub fn counters(&self) -> Vec<(&'static str, u64)> {
        let (c, j) = (&self.convert, &self.convert.join);
        vec![
            ("records", self.events_seen),
            ("lost_events", self.events_lost),
            ("lost_buffers", self.buffers_lost),
            ("lost_unreadable", self.conversion_failures),
            ("starts", c.process_starts),
            ("starts_joined", j.joined),
            ("starts_without_path", j.mof_only),
            ("starts_without_command_line", j.kernel_only),
            ("starts_pending", j.pending),
            ("halves_late", j.late),
            ("parents_unknown", c.parents_unknown),
            ("exits", c.process_exits),
            ("file_creates", c.file_creates),
            ("paths_unmapped", c.unmapped_paths),
        ]
    }
}

/// Why the ETW sensor could not start.
#[derive(Debug, thiserror::Error)]
pub enum EtwError {
    /// Starting a session was refused because trawl is not elevated.
    #[error("cannot start ETW session {session}: access denied; run trawl from an elevated console (Run as administrator)")]
    AccessDenied { session: String },
    /// Starting or opening a session failed for another reason.
    #[error("cannot start ETW session {session}: {reason}")]
    Session { session: String, reason: String },
    /// The sensor runs only on Windows.
    #[error("the ETW sensor runs only on Windows")]
    Unsupported,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stats_line_names_every_loss() {
        let mut s = EtwStats {
            events_seen: 120,
            events_lost: 3,
            buffers_lost: 1,
            conversion_failures: 2,
            ..EtwStats::default()
        };
        s.convert.process_starts = 5;
        s.convert.join.joined = 4;
        s.convert.join.mof_only = 1;
        assert_eq!(
            s.to_string(),
            "etw: 120 records, 3 events lost, 1 buffers lost, 2 unreadable; starts 5 (4 joined, \
             1 without path, 0 without command line), exits 0, file creates 0; 0 paths not on a drive"
        );
        assert_eq!(
            EtwError::AccessDenied {
                session: "trawl-kernel".into()
            }
            .to_string(),
            "cannot start ETW session trawl-kernel: access denied; run trawl from an elevated console (Run as administrator)"
        );
    }

    #[test]
    fn the_live_counters_mark_exactly_the_losses() {
        let s = EtwStats {
            events_seen: 9,
            events_lost: 3,
            buffers_lost: 1,
            conversion_failures: 2,
            ..EtwStats::default()
        };
        let counters = s.counters();
        let lost: u64 = counters
            .iter()
            .filter(|(k, _)| k.starts_with("lost"))
            .map(|(_, v)| v)
            .sum();
        assert_eq!(lost, 6, "{counters:?}");
        assert!(counters.contains(&("records", 9)));
    }
}
