//! Who is running: pid → image, command line, parent, start time.
//!
//! Seeded from the OS at start (on Linux from `/proc`), then kept by the
//! events themselves: a fork copies the parent's entry to the child, a
//! process start replaces the entry (a new program, or a reused pid), an exit
//! removes it. A process start looks its parent up here to fill
//! `ParentImage` / `ParentCommandLine`, which the kernel event does not carry.
//!
//! Memory is bounded: entries leave on exit, and past its capacity
//! the oldest eighth is evicted (a lost exit event cannot grow the table for
//! ever). Pid reuse: every entry records the process's start time; a fork or
//! start for a pid always replaces what was there.
//!
//! Exited processes are remembered a little longer (the last
//! [`RECENT_EXITS`]): a file a process leaves open is closed by the kernel
//! *after* the process's exit event, so its close-after-write event (and
//! any file event read after the exit) still needs the process's image.
//! A new process on the same pid removes the remembered one.

use std::collections::{HashMap, VecDeque};

/// Exited processes remembered for late file events.
pub const RECENT_EXITS: usize = 4096;
use std::sync::Arc;

/// What the table knows of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Absolute path of the program it runs.
    pub image: Arc<str>,
    pub command_line: Arc<str>,
    /// Its parent's pid (0 when unknown).
    pub ppid: u32,
    /// When it started (the source's clock; tells a reused pid apart).
    pub start_ns: u64,
}

#[derive(Debug)]
struct Entry {
    info: ProcessInfo,
    /// Insertion order, for eviction when over capacity.
    stamp: u64,
}

/// The process table. Owned by the normalizer thread (no locking).
#[derive(Debug)]
pub struct ProcessTable {
    entries: HashMap<u32, Entry>,
    capacity: usize,
    clock: u64,
    evicted: u64,
    /// Exited processes, for late events ([`ProcessTable::lookup`]); the
    /// queue holds their pids oldest first, with the stamp of their exit so
    /// a pid that exited twice is forgotten only with its last exit.
    exited: HashMap<u32, Entry>,
    exit_order: VecDeque<(u32, u64)>,
}

impl ProcessTable {
    /// An empty table that holds at most `capacity` processes.
    pub fn new(capacity: usize) -> ProcessTable {
        ProcessTable {
            entries: HashMap::new(),
            capacity: capacity.max(8),
            clock: 0,
            evicted: 0,
            exited: HashMap::new(),
            exit_order: VecDeque::new(),
        }
    }

    /// Processes known now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries pushed out because the table was full.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// What is known of `pid`.
    pub fn get(&self, pid: u32) -> Option<&ProcessInfo> {
        self.entries.get(&pid).map(|e| &e.info)
    }

    /// What is known of `pid`, running or recently exited (for events that
    /// arrive after their process's exit: file events, never process starts,
    /// whose parents must be alive).
    pub fn lookup(&self, pid: u32) -> Option<&ProcessInfo> {
        self.get(pid)
            .or_else(|| self.exited.get(&pid).map(|e| &e.info))
    }

    /// Records `pid` as running `info` (a seed entry, or a process start:
    /// the new program replaces the old one, and a reused pid its
    /// predecessor).
    pub fn insert(&mut self, pid: u32, info: ProcessInfo) {
        self.exited.remove(&pid);
        if !self.entries.contains_key(&pid) && self.entries.len() >= self.capacity {
            self.evict_oldest();
        }
        self.clock += 1;
        self.entries.insert(
            pid,
            Entry {
                info,
                stamp: self.clock,
            },
        );
    }

    /// A new process `child` of `parent`: until it starts a program of its
    /// own it runs its parent's. Unknown parents leave an entry with an
    /// empty image, so the child's own parent link is still known.
    pub fn fork(&mut self, parent: u32, child: u32, start_ns: u64) {
        let (image, command_line) = match self.get(parent) {
            Some(p) => (Arc::clone(&p.image), Arc::clone(&p.command_line)),
            None => (Arc::from(""), Arc::from("")),
        };
        self.insert(
            child,
            ProcessInfo {
                image,
                command_line,
                ppid: parent,
                start_ns,
            },
        );
    }

    /// The process ended: it leaves the running processes (remembered for
    /// [`ProcessTable::lookup`] a while longer), returning what was known.
    pub fn exit(&mut self, pid: u32) -> Option<ProcessInfo> {
        let entry = self.entries.remove(&pid)?;
        let info = entry.info.clone();
        self.clock += 1;
        self.exit_order.push_back((pid, self.clock));
        self.exited.insert(
            pid,
            Entry {
                info: entry.info,
                stamp: self.clock,
            },
        );
        while self.exit_order.len() > RECENT_EXITS {
            if let Some((old, stamp)) = self.exit_order.pop_front() {
                if self.exited.get(&old).is_some_and(|e| e.stamp == stamp) {
                    self.exited.remove(&old);
                }
            }
        }
        Some(info)
    }

    fn evict_oldest(&mut self) {
        // Rare (only when exits were lost or the host runs more processes
        // than the cap): one sort over the table, then an eighth goes.
        let mut stamps: Vec<u64> = self.entries.values().map(|e| e.stamp).collect();
        stamps.sort_unstable();
        let cut = stamps[(stamps.len() / 8).min(stamps.len() - 1)];
        let before = self.entries.len();
        self.entries.retain(|_, e| e.stamp > cut);
        self.evicted += (before - self.entries.len()) as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(image: &str, ppid: u32, start: u64) -> ProcessInfo {
        ProcessInfo {
            image: image.into(),
            command_line: format!("{image} -x").into(),
            ppid,
            start_ns: start,
        }
    }

    #[test]
    fn fork_inherits_start_replaces_exit_removes() {
        let mut t = ProcessTable::new(100);
        t.insert(10, info("/bin/bash", 1, 5));
        t.fork(10, 11, 6);
        assert_eq!(&*t.get(11).unwrap().image, "/bin/bash");
        assert_eq!(t.get(11).unwrap().ppid, 10);
        t.insert(11, info("/usr/bin/curl", 10, 6));
        assert_eq!(&*t.get(11).unwrap().image, "/usr/bin/curl");
        assert_eq!(&*t.exit(11).unwrap().image, "/usr/bin/curl");
        assert!(t.get(11).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn a_reused_pid_gets_the_new_process() {
        let mut t = ProcessTable::new(100);
        t.insert(10, info("/bin/old", 1, 5));
        // The exit of the old pid 10 was lost; a new process takes the pid.
        t.insert(20, info("/bin/parent", 1, 7));
        t.fork(20, 10, 9);
        let e = t.get(10).unwrap();
        assert_eq!((&*e.image, e.ppid, e.start_ns), ("/bin/parent", 20, 9));
    }

    #[test]
    fn unknown_parent_forks_keep_the_link() {
        let mut t = ProcessTable::new(100);
        t.fork(99, 100, 1);
        let e = t.get(100).unwrap();
        assert_eq!((&*e.image, e.ppid), ("", 99));
    }

    #[test]
    fn an_exited_process_is_remembered_for_late_events_until_its_pid_returns() {
        let mut t = ProcessTable::new(100);
        t.insert(10, info("/usr/bin/head", 1, 5));
        assert!(t.exit(10).is_some());
        assert!(t.get(10).is_none(), "no longer running");
        assert_eq!(&*t.lookup(10).unwrap().image, "/usr/bin/head");
        // The pid comes back as another process: the old one is forgotten.
        t.fork(1, 10, 9);
        assert_eq!(t.lookup(10).unwrap().start_ns, 9);
        assert!(t.exit(10).is_some());
        // Only the last RECENT_EXITS exits are kept.
        for pid in 1000..1000 + RECENT_EXITS as u32 {
            t.insert(pid, info("/bin/x", 1, 0));
            t.exit(pid);
        }
        assert!(t.lookup(10).is_none());
        assert!(t.lookup(1000).is_some());
        assert!(t.exited.len() <= RECENT_EXITS && t.exit_order.len() <= RECENT_EXITS);
    }

    #[test]
    fn capacity_bounds_memory_by_evicting_the_oldest() {
        let mut t = ProcessTable::new(16);
        for pid in 0..1000 {
            t.insert(pid, info("/bin/x", 1, u64::from(pid)));
            assert!(t.len() <= 16);
        }
        assert!(t.get(999).is_some());
        assert!(t.get(0).is_none());
        assert!(t.evicted() >= 1000 - 16);
    }
}
