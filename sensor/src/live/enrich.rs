//! The normalizer and the hash pool: what the sources cannot know.
//!
//! The normalizer thread takes [`Input`]s in arrival order, keeps the
//! [`ProcessTable`] and fills what a kernel event lacks: `ParentImage` and
//! `ParentCommandLine` of a process start, the `Image` of a file event's or
//! an exit's process, the host name. Events that need a file's SHA-256 (every
//! process start, every file closed after a write) go to a small pool of hash
//! workers, so a large file never stalls the events behind it; the workers
//! share one [`HashCache`] (keyed on file identity), set `Hashes`
//! (`SHA256=…`, which IOC lists match) and run the platform's
//! [`ImageEnricher`] on process starts. If the hash queue is full the event
//! goes on unhashed and is counted (`hash.queue_full`): never dropped.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use trawl_engine::event::{fields, Event, EventKind, FieldKey, Value};
use trawl_engine::hash::HashCache;

use super::intake::Input;
use super::proctable::{ProcessInfo, ProcessTable};

/// Adds fields read from a program file to its process start (Windows:
/// `OriginalFileName` from the PE version resource). Runs on a hash worker,
/// never on a source thread, so it may read the file.
pub trait ImageEnricher: Send + Sync {
    /// `image` is the event's `Image`; add fields to `event`.
    fn enrich(&self, image: &Path, event: &mut Event);
    /// Its name in stats lines (Windows: `pe`).
    fn name(&self) -> &'static str {
        "enrich"
    }
    /// Its counters for the stats line (what it added, what it could not
    /// read); a name starting with `lost` would count as a loss.
    fn stats(&self) -> Vec<(&'static str, u64)> {
        Vec::new()
    }
}

/// The field that names the file `execve` was given when the kernel ran an
/// interpreter for it (a `#!` script): then `Image` is the interpreter, and
/// `Hashes` is the script's.
pub const EXEC_FILENAME: &str = "ExecFilename";

/// How long hashing goes on after a stop before the rest of the hash queue
/// passes through unhashed.
pub const HASH_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// How the enrichment stage runs.
#[derive(Clone)]
pub struct EnrichConfig {
    /// Hash worker threads.
    pub hash_workers: usize,
    /// Events waiting for a hash before new ones go on unhashed.
    pub hash_queue: usize,
    /// Files the hash cache remembers.
    pub hash_cache_entries: usize,
    /// Larger files are not hashed.
    pub hash_max_bytes: u64,
    /// Files at least this large are hashed on their own worker, so that a
    /// burst of large files never holds up the alerts of small ones (most
    /// programs and scripts).
    pub hash_large_bytes: u64,
    /// Processes the table keeps.
    pub table_capacity: usize,
    /// Stamped on every event without one.
    pub host: Option<Arc<str>>,
    pub image_enricher: Option<Arc<dyn ImageEnricher>>,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        EnrichConfig {
            hash_workers: 2,
            hash_queue: 1024,
            hash_cache_entries: 8192,
            hash_max_bytes: 64 << 20,
            hash_large_bytes: 4 << 20,
            table_capacity: 1 << 16,
            host: None,
            image_enricher: None,
        }
    }
}

/// Counters of the enrichment stage.
#[derive(Debug, Default)]
pub struct EnrichCounters {
    /// Events sent on without a hash because the hash queue was full.
    pub hash_queue_full: AtomicU64,
    /// Events sent on without a hash because the run was stopping.
    pub hash_skipped_at_stop: AtomicU64,
    /// Events waiting for a hash worker (as of the last event).
    pub hash_queue: AtomicU64,
    /// Processes in the table now, and evicted over its capacity.
    pub processes: AtomicU64,
    pub processes_evicted: AtomicU64,
}

/// A running enrichment stage.
pub struct Enrichment {
    threads: Vec<JoinHandle<()>>,
    /// Shared counters.
    pub counters: Arc<EnrichCounters>,
    /// The hash cache (its stats are the stats line's `hash.*`).
    pub cache: Arc<HashCache>,
    stopping: Arc<AtomicBool>,
}

struct HashJob {
    event: Event,
    path: PathBuf,
}

impl Enrichment {
    /// Starts the normalizer over `inputs` with the seeded `table`, and the
    /// hash workers; finished events go to `ready`. Everything stops once
    /// every [`super::intake::Intake`] is dropped and the queues are drained.
    pub fn start(
        inputs: Receiver<Input>,
        table: ProcessTable,
        config: EnrichConfig,
        ready: Sender<Event>,
    ) -> Enrichment {
        let counters = Arc::new(EnrichCounters::default());
        let cache = Arc::new(HashCache::new(
            config.hash_cache_entries,
            config.hash_max_bytes,
        ));
        // Two lanes: small files on `hash_workers` threads, large ones on
        // one more, each with its own queue.
        let (small_tx, small_rx) = bounded::<HashJob>(config.hash_queue.max(1));
        let (large_tx, large_rx) = bounded::<HashJob>(config.hash_queue.max(1));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let lanes = (0..config.hash_workers.max(1))
            .map(|i| (format!("trawl-hash-{i}"), small_rx.clone()))
            .chain([("trawl-hash-large".to_owned(), large_rx)]);
        for (name, rx) in lanes {
            let ready = ready.clone();
            let cache = Arc::clone(&cache);
            let enricher = config.image_enricher.clone();
            let (stopping, c) = (Arc::clone(&stopping), Arc::clone(&counters));
            threads.push(spawn(&name, move || {
                for job in rx {
                    // A backlog of large files must not hold up the exit.
                    let event = if stopping.load(Ordering::Relaxed) {
                        c.hash_skipped_at_stop.fetch_add(1, Ordering::Relaxed);
                        job.event
                    } else {
                        hash_job(job, &cache, enricher.as_deref())
                    };
                    if ready.send(event).is_err() {
                        return;
                    }
                }
            }));
        }
        drop(small_rx);
        let large_bytes = config.hash_large_bytes;
        let c = Arc::clone(&counters);
        let host = config.host.clone();
        threads.push(spawn("trawl-normalize", move || {
            let mut normalizer = Normalizer { table, host };
            for input in inputs {
                let Some((event, hash_path)) = normalizer.normalize(input) else {
                    continue;
                };
                let sent = match hash_path {
                    Some(path) => {
                        // One stat on this thread picks the lane; a file
                        // that cannot be read goes small and fails fast.
                        let large = std::fs::metadata(&path).is_ok_and(|m| m.len() >= large_bytes);
                        let lane = if large { &large_tx } else { &small_tx };
                        match lane.try_send(HashJob { event, path }) {
                            Ok(()) => Ok(()),
                            Err(TrySendError::Full(job) | TrySendError::Disconnected(job)) => {
                                c.hash_queue_full.fetch_add(1, Ordering::Relaxed);
                                ready.send(job.event)
                            }
                        }
                    }
                    None => ready.send(event),
                };
                c.hash_queue
                    .store((small_tx.len() + large_tx.len()) as u64, Ordering::Relaxed);
                c.processes
                    .store(normalizer.table.len() as u64, Ordering::Relaxed);
                c.processes_evicted
                    .store(normalizer.table.evicted(), Ordering::Relaxed);
                if sent.is_err() {
                    return;
                }
            }
        }));
        Enrichment {
            threads,
            counters,
            cache,
            stopping,
        }
    }

    /// Waits until the normalizer and the workers have drained and stopped.
    /// Events still waiting for a hash after [`HASH_GRACE`] go on without one
    /// (counted), so a backlog of large files cannot delay the exit.
    pub fn join(self) {
        let stopping = Arc::clone(&self.stopping);
        // Detached: if the queues drain sooner, setting the flag later is moot.
        std::thread::spawn(move || {
            std::thread::sleep(HASH_GRACE);
            stopping.store(true, Ordering::Relaxed);
        });
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> JoinHandle<()> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .expect("spawning a thread only fails when the OS is out of resources")
}

fn hash_job(job: HashJob, cache: &HashCache, enricher: Option<&dyn ImageEnricher>) -> Event {
    let HashJob { mut event, path } = job;
    match cache.sha256(&path) {
        Ok(digest) => event.set(fields::HASHES, Value::Str(format!("SHA256={digest}"))),
        // Counted in the cache's `skipped`; a file gone before it could be
        // read is ordinary on a live host.
        Err(e) => tracing::debug!("not hashed: {e}"),
    }
    if let Some(enricher) = enricher {
        if event.kind == EventKind::ProcessStart {
            if let Some(image) = str_field(&event, &fields::IMAGE).map(PathBuf::from) {
                enricher.enrich(&image, &mut event);
            }
        }
    }
    event
}

/// The process table and the rules that keep it.
struct Normalizer {
    table: ProcessTable,
    host: Option<Arc<str>>,
}

impl Normalizer {
    /// Updates the table; returns the event to pass on and the file to hash.
    fn normalize(&mut self, input: Input) -> Option<(Event, Option<PathBuf>)> {
        let mut ev = match input {
            Input::Fork {
                parent,
                child,
                start_ns,
            } => {
                self.table.fork(parent, child, start_ns);
                return None;
            }
            Input::Event(ev) => ev,
        };
        if ev.host.is_none() {
            ev.host.clone_from(&self.host);
        }
        let pid = pid_field(&ev, &fields::PROCESS_ID);
        let hash = match ev.kind {
            EventKind::ProcessStart => {
                self.process_start(&mut ev, pid);
                str_field(&ev, &FieldKey::from_name(EXEC_FILENAME))
                    .or_else(|| str_field(&ev, &fields::IMAGE))
                    .and_then(hashable)
            }
            EventKind::ProcessExit => {
                if let Some(p) = pid.and_then(|pid| self.table.exit(pid)) {
                    fill(&mut ev, fields::IMAGE, &p.image);
                    fill(&mut ev, fields::COMMAND_LINE, &p.command_line);
                }
                None
            }
            kind => {
                // `lookup`: a file the process left open is closed (and
                // reported) after the process's exit event.
                if let Some(p) = pid.and_then(|pid| self.table.lookup(pid)) {
                    fill(&mut ev, fields::IMAGE, &p.image);
                }
                (kind == EventKind::FileWrite)
                    .then(|| str_field(&ev, &fields::TARGET_FILENAME).and_then(hashable))
                    .flatten()
            }
        };
        Some((ev, hash))
    }

    fn process_start(&mut self, ev: &mut Event, pid: Option<u32>) {
        let Some(pid) = pid else { return };
        let ppid = match pid_field(ev, &fields::PARENT_PROCESS_ID) {
            Some(ppid) => ppid,
            None => match self.table.get(pid).map(|p| p.ppid).filter(|p| *p != 0) {
                Some(ppid) => {
                    ev.set(fields::PARENT_PROCESS_ID, Value::Int(i64::from(ppid)));
                    ppid
                }
                None => 0,
            },
        };
        if let Some(parent) = self.table.get(ppid) {
            let (image, cmd) = (Arc::clone(&parent.image), Arc::clone(&parent.command_line));
            fill(ev, fields::PARENT_IMAGE, &image);
            fill(ev, fields::PARENT_COMMAND_LINE, &cmd);
        }
        let start_ns = ev.ts.as_nanosecond().max(0) as u64;
        self.table.insert(
            pid,
            ProcessInfo {
                image: str_field(ev, &fields::IMAGE).unwrap_or("").into(),
                command_line: str_field(ev, &fields::COMMAND_LINE).unwrap_or("").into(),
                ppid,
                start_ns,
            },
        );
    }
}

/// The file to hash for a path field: only an absolute path names one file.
/// (Windows reports some images by bare name, `cmd.exe`, or on a device no
/// drive letter stands for; read relative to trawl's own folder they would
/// hash some other file.)
fn hashable(path: &str) -> Option<PathBuf> {
    Some(PathBuf::from(path)).filter(|p| p.is_absolute())
}

/// Sets `key` to `value` unless the event has it already or `value` is empty.
fn fill(ev: &mut Event, key: FieldKey, value: &str) {
    if !value.is_empty() && ev.get(&key).is_none() {
        ev.set(key, Value::Str(value.to_owned()));
    }
}

fn str_field<'a>(ev: &'a Event, key: &FieldKey) -> Option<&'a str> {
    ev.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

fn pid_field(ev: &Event, key: &FieldKey) -> Option<u32> {
    match ev.get(key) {
        Some(Value::Int(i)) => u32::try_from(*i).ok(),
        _ => None,
    }
}

/// A table seeded from `(pid, info)` pairs, for [`Enrichment::start`].
pub fn seeded_table(capacity: usize, seed: Vec<(u32, ProcessInfo)>) -> ProcessTable {
    let mut table = ProcessTable::new(capacity);
    for (pid, info) in seed {
        table.insert(pid, info);
    }
    table
}

/// Keeps an enricher's calls, for tests.
#[cfg(test)]
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<PathBuf>>);

#[cfg(test)]
impl ImageEnricher for Recorder {
    fn enrich(&self, image: &Path, event: &mut Event) {
        self.0.lock().unwrap().push(image.to_owned());
        event.set(fields::ORIGINAL_FILE_NAME, Value::from("orig.exe"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::intake::Intake;
    use trawl_engine::event::{Os, Timestamp};

    fn start(pid: i64, ppid: i64, image: &str, cmd: &str) -> Event {
        let mut ev = Event::new(EventKind::ProcessStart, Os::Linux, Timestamp::UNIX_EPOCH);
        ev.set(fields::PROCESS_ID, Value::Int(pid));
        ev.set(fields::PARENT_PROCESS_ID, Value::Int(ppid));
        ev.set(fields::IMAGE, image.into());
        ev.set(fields::COMMAND_LINE, cmd.into());
        ev
    }

    fn run(inputs: impl FnOnce(&Intake), config: EnrichConfig) -> Vec<Event> {
        let (intake, rx) = Intake::new(64);
        let (ready_tx, ready_rx) = bounded(64);
        let seed = vec![(
            1,
            ProcessInfo {
                image: "/sbin/init".into(),
                command_line: "/sbin/init splash".into(),
                ppid: 0,
                start_ns: 0,
            },
        )];
        let stage = Enrichment::start(rx, seeded_table(100, seed), config, ready_tx);
        inputs(&intake);
        drop(intake);
        stage.join();
        ready_rx.into_iter().collect()
    }

    #[test]
    fn parents_come_from_the_table_through_forks_and_starts() {
        let out = run(
            |i| {
                i.push(start(10, 1, "/bin/bash", "bash -l"));
                i.push_fork(10, 11, 0);
                i.push(start(11, 10, "/usr/bin/curl", "curl x"));
                let mut exit = Event::new(EventKind::ProcessExit, Os::Linux, Timestamp::UNIX_EPOCH);
                exit.set(fields::PROCESS_ID, Value::Int(11));
                i.push(exit);
            },
            EnrichConfig {
                host: Some("h1".into()),
                ..EnrichConfig::default()
            },
        );
        assert_eq!(out.len(), 3);
        let bash = out
            .iter()
            .find(|e| e.get_str("Image") == Some("/bin/bash"))
            .unwrap();
        assert_eq!(bash.get_str("ParentImage"), Some("/sbin/init"));
        assert_eq!(bash.get_str("ParentCommandLine"), Some("/sbin/init splash"));
        assert_eq!(bash.host.as_deref(), Some("h1"));
        let curl = out
            .iter()
            .find(|e| {
                e.get_str("Image") == Some("/usr/bin/curl") && e.kind == EventKind::ProcessStart
            })
            .unwrap();
        assert_eq!(curl.get_str("ParentImage"), Some("/bin/bash"));
        assert_eq!(curl.get_str("ParentCommandLine"), Some("bash -l"));
        let exit = out
            .iter()
            .find(|e| e.kind == EventKind::ProcessExit)
            .unwrap();
        assert_eq!(exit.get_str("Image"), Some("/usr/bin/curl"));
    }

    #[test]
    fn a_file_closed_after_its_process_exited_still_names_the_image() {
        // A file left open is closed by the kernel after the exit event: its
        // close-after-write arrives last, and /proc no longer knows the pid.
        let out = run(
            |i| {
                i.push(start(50, 1, "/usr/bin/head", "head -c 10"));
                let mut exit = Event::new(EventKind::ProcessExit, Os::Linux, Timestamp::UNIX_EPOCH);
                exit.set(fields::PROCESS_ID, Value::Int(50));
                i.push(exit);
                let mut w = Event::new(EventKind::FileWrite, Os::Linux, Timestamp::UNIX_EPOCH);
                w.set(fields::PROCESS_ID, Value::Int(50));
                w.set(fields::TARGET_FILENAME, "/nonexistent/out".into());
                i.push(w);
            },
            EnrichConfig::default(),
        );
        let write = out.iter().find(|e| e.kind == EventKind::FileWrite).unwrap();
        assert_eq!(write.get_str("Image"), Some("/usr/bin/head"));
    }

    #[test]
    fn parents_the_source_already_named_are_kept() {
        // Windows starts carry ParentImage/ParentCommandLine from the ETW
        // converter's table; the normalizer's table (which may know another
        // program under the same parent pid, or an empty command line) must
        // not replace them.
        let mut win = start(30, 1, r"C:\Windows\System32\cmd.exe", "cmd /c whoami");
        win.os = Os::Windows;
        win.set(fields::PARENT_IMAGE, r"C:\Windows\explorer.exe".into());
        win.set(fields::PARENT_COMMAND_LINE, "".into());
        let out = run(|i| i.push(win), EnrichConfig::default());
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].get_str("ParentImage"),
            Some(r"C:\Windows\explorer.exe")
        );
        assert_eq!(out[0].get_str("ParentCommandLine"), Some(""));
    }

    #[test]
    fn only_absolute_paths_are_hashed() {
        // Tests run in the package folder, where `Cargo.toml` is a file: a
        // start by bare name must not be hashed as that file.
        assert!(Path::new("Cargo.toml").is_file());
        let recorder = Arc::new(Recorder::default());
        let out = run(
            |i| i.push(start(40, 1, "Cargo.toml", "Cargo.toml")),
            EnrichConfig {
                image_enricher: Some(recorder.clone()),
                ..EnrichConfig::default()
            },
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].get_str("Hashes"), None);
        assert!(recorder.0.lock().unwrap().is_empty());
    }

    #[test]
    fn small_files_are_not_held_up_behind_large_ones() {
        // Three large programs start first, then a small one. The large
        // ones queue on their own worker; the small one's event (with its
        // hash) must come out before the last large one's.
        let dir = tempfile::tempdir().unwrap();
        let mut large = Vec::new();
        for i in 0..3u8 {
            let path = dir.path().join(format!("large{i}"));
            std::fs::write(&path, vec![i; 24 << 20]).unwrap();
            large.push(path.to_str().unwrap().to_owned());
        }
        let small = dir.path().join("small");
        std::fs::write(&small, b"abc").unwrap();
        let small = small.to_str().unwrap().to_owned();
        let out = run(
            |i| {
                for (n, path) in large.iter().enumerate() {
                    i.push(start(30 + n as i64, 1, path, path));
                }
                i.push(start(40, 1, &small, &small));
            },
            EnrichConfig {
                hash_workers: 1,
                hash_large_bytes: 1 << 20,
                ..EnrichConfig::default()
            },
        );
        let at = |image: &str| {
            out.iter()
                .position(|e| e.get_str("Image") == Some(image))
                .unwrap()
        };
        assert!(
            at(&small) < at(&large[2]),
            "the small file waited for the large ones: {:?}",
            out.iter().map(|e| e.get_str("Image")).collect::<Vec<_>>()
        );
        // (Large ones still queued at stop may pass unhashed after the grace.)
        assert!(out[at(&small)].get_str("Hashes").is_some());
    }

    #[test]
    fn starts_and_written_files_are_hashed_and_enriched_on_the_pool() {
        let dir = tempfile::tempdir().unwrap();
        let prog = dir.path().join("prog");
        std::fs::write(&prog, b"abc").unwrap();
        let script = dir.path().join("s.sh");
        std::fs::write(&script, b"#!/bin/sh\n").unwrap();
        let recorder = Arc::new(Recorder::default());
        let p = prog.to_str().unwrap().to_owned();
        let s = script.to_str().unwrap().to_owned();
        let out = run(
            |i| {
                i.push(start(20, 1, &p, "prog"));
                let mut sh = start(21, 1, "/bin/sh", "/bin/sh s.sh");
                sh.set(FieldKey::from_name(EXEC_FILENAME), s.as_str().into());
                i.push(sh);
                let mut w = Event::new(EventKind::FileWrite, Os::Linux, Timestamp::UNIX_EPOCH);
                w.set(fields::PROCESS_ID, Value::Int(20));
                w.set(fields::TARGET_FILENAME, p.as_str().into());
                i.push(w);
            },
            EnrichConfig {
                image_enricher: Some(recorder.clone()),
                ..EnrichConfig::default()
            },
        );
        let abc = "SHA256=ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let started = out
            .iter()
            .find(|e| e.get_str("Image") == Some(p.as_str()) && e.kind == EventKind::ProcessStart)
            .unwrap();
        assert_eq!(started.get_str("Hashes"), Some(abc));
        assert_eq!(started.get_str("OriginalFileName"), Some("orig.exe"));
        let write = out.iter().find(|e| e.kind == EventKind::FileWrite).unwrap();
        assert_eq!(write.get_str("Hashes"), Some(abc));
        assert_eq!(
            write.get_str("Image"),
            Some(p.as_str()),
            "file event's Image from the table"
        );
        let sh = out
            .iter()
            .find(|e| e.get_str("Image") == Some("/bin/sh"))
            .unwrap();
        // A script's start carries the script's hash, not the interpreter's.
        assert_eq!(
            sh.get_str("Hashes"),
            Some("SHA256=a8076d3d28d21e02012b20eaf7dbf75409a6277134439025f282e368e3305abf")
        );
        assert_eq!(recorder.0.lock().unwrap().len(), 2);
    }
}
