//! What trawl knows about each process by id: its image, command line and
//! user, so a child's start can name its parent (`ParentImage`,
//! `ParentCommandLine`) and a file event can name the process behind it.
//!
//! The table is seeded at start from a snapshot of the running processes (and
//! the kernel's rundown), so parents that started before trawl are known too.
//! An exited process stays for a while (its children may still be reported
//! after it is gone), then is purged; the table never grows past its
//! capacity, and an insert it had to refuse is counted.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use trawl_sensor::etw::process_table::{ProcessInfo, ProcessTable};
//!
//! let mut table = ProcessTable::new(1024, Duration::from_secs(60));
//! table.insert(4312, ProcessInfo::new(Some(r"C:\Windows\TAPI\pa.exe".into()), None, None));
//! assert_eq!(table.get(4312).and_then(|p| p.image.as_deref()), Some(r"C:\Windows\TAPI\pa.exe"));
//! table.mark_exited(4312, Instant::now());
//! assert!(table.get(4312).is_some(), "kept a while for late children");
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One process as the table knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Full image path (DOS form), or the bare name when no path is known.
    pub image: Option<Arc<str>>,
    pub command_line: Option<Arc<str>>,
    /// Account name (`DOMAIN\user`).
    pub user: Option<Arc<str>>,
    exited: Option<Instant>,
}

impl ProcessInfo {
    /// A running process.
    pub fn new(
        image: Option<Arc<str>>,
        command_line: Option<Arc<str>>,
        user: Option<Arc<str>>,
    ) -> ProcessInfo {
        ProcessInfo {
            image,
            command_line,
            user,
            exited: None,
        }
    }

    /// Whether the process has exited (and is kept only for late lookups).
    pub fn has_exited(&self) -> bool {
        self.exited.is_some()
    }
}

/// A process found running when the sensor started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotProcess {
    pub process_id: u32,
    pub parent_id: u32,
    /// Full image path (DOS form) when the system would tell, else the bare
    /// executable name (`System`, protected processes).
    pub image: Option<String>,
    pub command_line: Option<String>,
    /// Account name (`DOMAIN\user`).
    pub user: Option<String>,
}

/// Counters of a [`ProcessTable`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableStats {
    /// Processes currently held (running or recently exited).
    pub entries: u64,
    /// Processes seeded from the start-up snapshot and the kernel rundown.
    pub seeded: u64,
    /// Inserts refused because the table was full of running processes.
    pub refused_full: u64,
    /// Exited processes purged after their retention time or to make room.
    pub purged: u64,
}

/// Process id → [`ProcessInfo`], bounded.
#[derive(Debug)]
pub struct ProcessTable {
    map: HashMap<u32, ProcessInfo>,
    capacity: usize,
    retention: Duration,
    stats: TableStats,
}

impl ProcessTable {
    /// A table of at most `capacity` processes that keeps exited ones for
    /// `retention`.
    pub fn new(capacity: usize, retention: Duration) -> ProcessTable {
        ProcessTable {
            map: HashMap::new(),
            capacity: capacity.max(1),
            retention,
            stats: TableStats::default(),
        }
    }

    /// Adds the processes of a start-up snapshot. A process the table
    /// already knows only gains the fields it lacked.
    pub fn seed(&mut self, snapshot: impl IntoIterator<Item = SnapshotProcess>) {
        for p in snapshot {
            let info = ProcessInfo::new(
                p.image.map(Arc::from),
                p.command_line.map(Arc::from),
                p.user.map(Arc::from),
            );
            if self.merge(p.process_id, info) {
                self.stats.seeded += 1;
            }
        }
    }

    /// Fills the fields of `pid` that are unknown from `info` (inserting it
    /// when new). Returns whether the process was new to the table.
    pub fn merge(&mut self, pid: u32, info: ProcessInfo) -> bool {
        if let Some(known) = self.map.get_mut(&pid) {
            fill(&mut known.image, info.image);
            fill(&mut known.command_line, info.command_line);
            fill(&mut known.user, info.user);
            return false;
        }
        self.insert(pid, info)
    }

    /// Records a process that started, replacing whatever an earlier process
    /// of the same id left. Returns `false` (and counts it) when the table is
    /// full of running processes.
    pub fn insert(&mut self, pid: u32, info: ProcessInfo) -> bool {
        if !self.map.contains_key(&pid) && self.map.len() >= self.capacity {
            self.purge_exited(None);
            if self.map.len() >= self.capacity {
                self.stats.refused_full += 1;
                return false;
            }
        }
        self.map.insert(pid, info);
        true
    }

    /// The process `pid`, running or recently exited.
    pub fn get(&self, pid: u32) -> Option<&ProcessInfo> {
        self.map.get(&pid)
    }

    /// Replaces the image of a known process (a better path arrived late).
    pub fn set_image(&mut self, pid: u32, image: Arc<str>) {
        if let Some(p) = self.map.get_mut(&pid) {
            p.image = Some(image);
        }
    }

    /// Notes that `pid` exited at `now`; it is purged after the retention time.
    pub fn mark_exited(&mut self, pid: u32, now: Instant) {
        if let Some(p) = self.map.get_mut(&pid) {
            p.exited.get_or_insert(now);
        }
    }

    /// Purges processes that exited more than the retention time before `now`.
    pub fn purge(&mut self, now: Instant) {
        self.purge_exited(Some(now));
    }

    fn purge_exited(&mut self, now: Option<Instant>) {
        let retention = self.retention;
        let before = self.map.len();
        self.map.retain(|_, p| match (p.exited, now) {
            (None, _) => true,
            (Some(at), Some(now)) => now.saturating_duration_since(at) < retention,
            // Making room: every exited process may go.
            (Some(_), None) => false,
        });
        self.stats.purged += (before - self.map.len()) as u64;
    }

    /// The table's counters.
    pub fn stats(&self) -> TableStats {
        TableStats {
            entries: self.map.len() as u64,
            ..self.stats
        }
    }
}

fn fill<T>(slot: &mut Option<T>, value: Option<T>) {
    if slot.is_none() {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(image: &str) -> ProcessInfo {
        ProcessInfo::new(Some(image.into()), None, None)
    }

    #[test]
    fn snapshot_seeds_and_rundown_fills_gaps_only() {
        let mut t = ProcessTable::new(16, Duration::from_secs(60));
        t.seed([
            SnapshotProcess {
                process_id: 4,
                image: Some("System".into()),
                ..Default::default()
            },
            SnapshotProcess {
                process_id: 900,
                parent_id: 4,
                image: Some(r"C:\Windows\System32\svchost.exe".into()),
                command_line: None,
                user: Some("NT AUTHORITY\\SYSTEM".into()),
            },
        ]);
        assert!(!t.merge(
            900,
            ProcessInfo::new(
                Some("svchost.exe".into()),
                Some("svchost.exe -k netsvcs".into()),
                None
            )
        ));
        let p = t.get(900).unwrap();
        assert_eq!(p.image.as_deref(), Some(r"C:\Windows\System32\svchost.exe"));
        assert_eq!(p.command_line.as_deref(), Some("svchost.exe -k netsvcs"));
        assert_eq!(t.stats().seeded, 2);
        assert_eq!(t.stats().entries, 2);
    }

    #[test]
    fn exited_processes_stay_for_the_retention_time() {
        let mut t = ProcessTable::new(16, Duration::from_secs(10));
        let t0 = Instant::now();
        t.insert(10, info("a.exe"));
        t.mark_exited(10, t0);
        t.purge(t0 + Duration::from_secs(9));
        assert!(t.get(10).unwrap().has_exited());
        t.purge(t0 + Duration::from_secs(10));
        assert!(t.get(10).is_none());
        assert_eq!(t.stats().purged, 1);
    }

    #[test]
    fn a_full_table_makes_room_from_exited_processes_then_refuses() {
        let mut t = ProcessTable::new(2, Duration::from_secs(600));
        t.insert(1, info("a"));
        t.insert(2, info("b"));
        t.mark_exited(1, Instant::now());
        assert!(t.insert(3, info("c")), "room made from exited 1");
        assert!(t.get(1).is_none());
        assert!(!t.insert(4, info("d")), "2 and 3 still run");
        assert_eq!(t.stats().refused_full, 1);
        // Replacing a known id always works (pid reuse).
        assert!(t.insert(3, info("c2")));
        assert_eq!(t.get(3).unwrap().image.as_deref(), Some("c2"));
    }
}
