//! Asking the kernel for the files the readers will want next, while the
//! page cache misses.
//!
//! A folder of small logs read from a cold cache is read one file at a time
//! by each reader: open, read (and wait for the disk), match, next. The
//! disk is idle while the readers match, and the readers while it seeks.
//! So the files the walk found, in the order they will be read, pass
//! through a lookahead of up to 64 MiB or 1,024 files; while reads miss the
//! page cache, each small file entering it is advised `WILLNEED` (on a
//! thread of its own, started at the first miss), and the kernel reads it
//! in the background while the readers work on the files before it.
//!
//! Whether reads miss is told by the reads themselves
//! ([`read_exact_at`]): on Linux the first attempt asks not to wait for the
//! disk, and one that would have to counts a miss. A warm replay never
//! misses, so it advises nothing and starts no thread. Where the system
//! cannot tell (other systems, filesystems that refuse to be asked), nothing
//! is advised either. Only timing depends on any of this: what is read, and
//! the alerts, do not.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_channel::{Receiver, Sender, TryRecvError};

use crate::input::Found;

/// How far ahead of the readers files are asked for, in bytes and files:
/// enough to keep a disk busy while two readers match, small beside any
/// page cache.
pub(crate) const AHEAD_BYTES: u64 = 64 << 20;
/// See [`AHEAD_BYTES`]; this also bounds the lookahead's own memory.
pub(crate) const AHEAD_FILES: usize = 1024;
/// How many findings after a miss are advised (those read whole; the
/// files already held are advised too). Misses go on while the
/// disk is behind, and each renews this; when they stop (the files are in
/// memory after all), advising soon stops too, for it is not free.
pub(crate) const ADVISE_AFTER_MISS: usize = 256;

/// Reads (in this process) that found their bytes not in the page cache.
static MISSES: AtomicU64 = AtomicU64::new(0);
/// Set once a filesystem refused a read that does not wait: it is not
/// asked again (each refusal would cost a call).
#[cfg(target_os = "linux")]
static NOWAIT_REFUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Files waiting for the advising thread; past this, files are not advised.
const ADVISE_QUEUE: usize = 4096;

/// Whether a read found its bytes already in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cached {
    /// All of them were in the page cache.
    Yes,
    /// Some had to come from the disk (counted as a miss).
    No,
    /// The system cannot tell: not Linux, a filesystem that refuses
    /// `RWF_NOWAIT`, or an attempt interrupted or refused for another reason
    /// (the bytes are then read the plain way). Not counted as a miss.
    Unknown,
}

/// Reads exactly `buf.len()` bytes of `file` at offset `at`, like
/// `FileExt::read_exact_at` (with its errors), and says whether they were
/// all in the page cache; a read that was not counts as a miss, which
/// turns prefetching on for the files found next.
///
/// ```
/// use std::io::Write;
/// use trawl_replay::prefetch::{read_exact_at, Cached};
///
/// let mut f = tempfile::tempfile().unwrap();
/// f.write_all(b"ElfFile\0 and more").unwrap();
/// let mut buf = [0u8; 8];
/// let cached = read_exact_at(&f, &mut buf, 0).unwrap();
/// assert_eq!(&buf, b"ElfFile\0");
/// // Just written, so in memory (where the system can tell).
/// assert_ne!(cached, Cached::No);
/// ```
pub fn read_exact_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<Cached> {
    let cached = read_exact_at_inner(file, buf, at)?;
    if cached == Cached::No {
        MISSES.fetch_add(1, Relaxed);
    }
    Ok(cached)
}

#[cfg(target_os = "linux")]
fn read_exact_at_inner(file: &File, buf: &mut [u8], at: u64) -> io::Result<Cached> {
    use rustix::io::{preadv2, Errno, ReadWriteFlags};
    use std::io::IoSliceMut;
    use std::os::unix::fs::FileExt;
    if buf.is_empty() {
        return Ok(Cached::Yes);
    }
    if NOWAIT_REFUSED.load(Relaxed) {
        file.read_exact_at(buf, at)?;
        return Ok(Cached::Unknown);
    }
    // One attempt that returns what the cache holds instead of waiting.
    let got = preadv2(
        file,
        &mut [IoSliceMut::new(buf)],
        at,
        ReadWriteFlags::NOWAIT,
    );
    let (n, cached) = match got {
        Ok(n) if n == buf.len() => return Ok(Cached::Yes),
        // A short read: the rest is not cached, or the file ends (which
        // the plain read below reports).
        Ok(n) => (n, Cached::No),
        Err(Errno::AGAIN) => (0, Cached::No),
        Err(Errno::INTR) => (0, Cached::Unknown),
        // The filesystem cannot be asked: read as any file, from now on.
        Err(Errno::OPNOTSUPP) => {
            NOWAIT_REFUSED.store(true, Relaxed);
            (0, Cached::Unknown)
        }
        // Anything else (a bad offset, a read error) the plain read below
        // meets again and reports as it would.
        Err(_) => (0, Cached::Unknown),
    };
    file.read_exact_at(&mut buf[n..], at + n as u64)?;
    Ok(cached)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn read_exact_at_inner(file: &File, buf: &mut [u8], at: u64) -> io::Result<Cached> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, at)?;
    Ok(Cached::Unknown)
}

#[cfg(windows)]
fn read_exact_at_inner(file: &File, mut buf: &mut [u8], mut at: u64) -> io::Result<Cached> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, at)? {
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                at += n as u64;
            }
        }
    }
    Ok(Cached::Unknown)
}

/// Asks the kernel to start reading `path` (its first [`advised_len`]
/// bytes) into the page cache. The kernel caps one request at its readahead
/// size (128 KiB by default), so a larger file is asked for a step at a
/// time. Failures are of no consequence: the reader opens the file itself,
/// and reports what it finds.
#[cfg(target_os = "linux")]
fn advise(path: &Path, len: u64) {
    const STEP: u64 = 128 << 10;
    let Ok(file) = File::open(path) else { return };
    let len = advised_len(&file, len);
    let mut at = 0;
    while at < len {
        let step = STEP.min(len - at);
        let advised = rustix::fs::fadvise(
            &file,
            at,
            std::num::NonZeroU64::new(step),
            rustix::fs::Advice::WillNeed,
        );
        if advised.is_err() {
            return;
        }
        at += step;
    }
}

/// How much of a file of `len` bytes to advise: up to its first hole. A
/// hole is not asked for, since advising one fills the cache with zeroed
/// pages: an EVTX log's empty chunk slots, often half of it, are a hole
/// the readers skip. Data after a hole in the middle is not advised either;
/// its reads are merely not helped. Where the system cannot say, `len`.
#[cfg(target_os = "linux")]
fn advised_len(file: &File, len: u64) -> u64 {
    rustix::fs::seek(file, rustix::fs::SeekFrom::Hole(0)).map_or(len, |hole| hole.min(len))
}

#[cfg(not(target_os = "linux"))]
fn advise(_path: &Path, _len: u64) {}

/// A thread that advises the files sent to it, so that a disk whose queue
/// is full holds up that thread only. It ends when the sender is dropped.
fn start_adviser() -> Option<Sender<(PathBuf, u64)>> {
    let (tx, rx) = crossbeam_channel::bounded::<(PathBuf, u64)>(ADVISE_QUEUE);
    std::thread::Builder::new()
        .name("trawl-prefetch".into())
        .spawn(move || {
            for (path, len) in rx {
                advise(&path, len);
            }
        })
        .ok()?;
    Some(tx)
}

/// The walk's findings, in their order, through a lookahead of up to
/// [`AHEAD_BYTES`] / [`AHEAD_FILES`]: while reads miss the page cache
/// ([`read_exact_at`]), the files `wanted` picks are advised as they enter
/// it (and, when misses start, all those already in it). Items are taken
/// from the walk without waiting while any are held, so the lookahead
/// never holds up the readers; advising is left to its own thread.
pub(crate) struct Prefetch<F> {
    found: Receiver<Found>,
    /// Which findings are read whole, and their size: those are advised.
    wanted: F,
    /// Held findings; the last `unadvised` of them were not advised.
    ahead: VecDeque<Found>,
    unadvised: usize,
    ahead_bytes: u64,
    /// [`MISSES`] when last looked at.
    misses_seen: u64,
    /// Files still to advise since the last miss seen.
    advise_next: usize,
    /// The advising thread, once a miss started it.
    adviser: Option<Sender<(PathBuf, u64)>>,
    adviser_failed: bool,
    walk_done: bool,
}

impl<F: Fn(&Found) -> Option<(&Path, u64)>> Prefetch<F> {
    pub(crate) fn new(found: Receiver<Found>, wanted: F) -> Self {
        Prefetch {
            found,
            wanted,
            ahead: VecDeque::new(),
            unadvised: 0,
            ahead_bytes: 0,
            misses_seen: MISSES.load(Relaxed),
            advise_next: 0,
            adviser: None,
            adviser_failed: false,
            walk_done: false,
        }
    }

    /// Hands `found` to the advising thread, if it is wanted; a full queue
    /// drops it (it is then read as it comes).
    fn advise(&self, found: &Found) {
        if let (Some(tx), Some((path, size))) = (&self.adviser, (self.wanted)(found)) {
            let _ = tx.try_send((path.to_owned(), size));
        }
    }

    /// Holds one more finding, advised when misses are recent.
    fn hold(&mut self, found: Found) {
        if let Some((_, size)) = (self.wanted)(&found) {
            self.ahead_bytes += size;
        }
        if self.advise_next > 0 {
            self.advise_next -= 1;
            self.advise(&found);
        } else {
            self.unadvised += 1;
        }
        self.ahead.push_back(found);
    }

    /// When reads have missed since last looked, advises every held file
    /// not advised yet, and the next [`ADVISE_AFTER_MISS`] found.
    fn look_at_misses(&mut self) {
        let misses = MISSES.load(Relaxed);
        if misses == self.misses_seen || self.adviser_failed {
            return;
        }
        self.misses_seen = misses;
        if self.adviser.is_none() {
            self.adviser = start_adviser();
            self.adviser_failed = self.adviser.is_none();
        }
        self.advise_next = ADVISE_AFTER_MISS;
        let from = self.ahead.len() - self.unadvised;
        for found in self.ahead.range(from..) {
            self.advise(found);
        }
        self.unadvised = 0;
    }
}

impl<F: Fn(&Found) -> Option<(&Path, u64)>> Iterator for Prefetch<F> {
    type Item = Found;

    fn next(&mut self) -> Option<Found> {
        self.look_at_misses();
        while !self.walk_done && self.ahead_bytes < AHEAD_BYTES && self.ahead.len() < AHEAD_FILES {
            let found = if self.ahead.is_empty() {
                self.found.recv().ok()
            } else {
                match self.found.try_recv() {
                    Ok(found) => Some(found),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => None,
                }
            };
            match found {
                Some(found) => self.hold(found),
                None => self.walk_done = true,
            }
        }
        let found = self.ahead.pop_front()?;
        // The unadvised ones are the last held: this was one when all are.
        self.unadvised = self.unadvised.min(self.ahead.len());
        if let Some((_, size)) = (self.wanted)(&found) {
            self.ahead_bytes -= size;
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    /// Tests that count on [`MISSES`] standing still, or move it, take
    /// turns.
    static MISSES_TURN: Mutex<()> = Mutex::new(());

    fn turn() -> std::sync::MutexGuard<'static, ()> {
        MISSES_TURN.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unsniffed(i: u64) -> Found {
        Found::Unsniffed {
            path: PathBuf::from(format!("/nonexistent/{i}.evtx")),
            size: 1 << 20,
        }
    }

    fn passed_over(i: u64) -> Found {
        Found::PassedOver(PathBuf::from(format!("/x/{i}")))
    }

    fn small(found: &Found) -> Option<(&Path, u64)> {
        match found {
            Found::Unsniffed { path, size } => Some((path, *size)),
            _ => None,
        }
    }

    fn path_of(found: Found) -> PathBuf {
        match found {
            Found::Unsniffed { path, .. } | Found::PassedOver(path) => path,
            _ => unreachable!(),
        }
    }

    #[test]
    fn findings_come_out_in_walk_order_whatever_the_walk_pace() {
        let _turn = turn();
        let (tx, rx) = crossbeam_channel::bounded(16);
        let walker = std::thread::spawn(move || {
            for i in 0..3000u64 {
                if i % 97 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let found = if i % 5 == 0 {
                    passed_over(i)
                } else {
                    unsniffed(i)
                };
                tx.send(found).unwrap();
            }
        });
        // Misses now and then, so some findings are advised (of paths that
        // do not exist: advising them must change nothing).
        let mut seen = Vec::new();
        let mut p = Prefetch::new(rx, small);
        for (n, found) in p.by_ref().enumerate() {
            if n % 700 == 0 {
                MISSES.fetch_add(1, Relaxed);
            }
            seen.push(path_of(found));
        }
        assert!(p.adviser.is_some(), "misses start the advising thread");
        walker.join().unwrap();
        let want: Vec<PathBuf> = (0..3000u64)
            .map(|i| {
                path_of(if i % 5 == 0 {
                    passed_over(i)
                } else {
                    unsniffed(i)
                })
            })
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn held_findings_are_advised_when_misses_start_and_not_before() {
        let _turn = turn();
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..10 {
            tx.send(unsniffed(i)).unwrap();
        }
        let mut p = Prefetch::new(rx, small);
        assert!(p.next().is_some());
        // No miss: nothing advised, no thread.
        assert_eq!((p.unadvised, p.adviser.is_some()), (9, false));
        MISSES.fetch_add(1, Relaxed);
        assert!(p.next().is_some());
        assert_eq!((p.unadvised, p.adviser.is_some()), (0, true));
        // Found from now on are advised as they come.
        tx.send(unsniffed(10)).unwrap();
        assert!(p.next().is_some());
        assert_eq!(p.unadvised, 0);
        assert_eq!(p.advise_next, ADVISE_AFTER_MISS - 1);
    }

    #[test]
    fn lookahead_is_bounded_by_bytes_and_by_files() {
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..500 {
            tx.send(unsniffed(i)).unwrap();
        }
        let mut p = Prefetch::new(rx, small);
        assert!(p.next().is_some());
        // 1 MiB files: at most AHEAD_BYTES of them held at once.
        assert_eq!(p.ahead.len() as u64, (AHEAD_BYTES >> 20) - 1);
        drop(tx);
        assert_eq!(p.count(), 499);
        // Findings not read whole weigh nothing, and are bounded by count.
        let (tx, rx) = crossbeam_channel::unbounded();
        for i in 0..2000 {
            tx.send(passed_over(i)).unwrap();
        }
        let mut p = Prefetch::new(rx, small);
        assert!(p.next().is_some());
        assert_eq!(p.ahead.len(), AHEAD_FILES - 1);
    }

    #[test]
    fn held_findings_are_given_out_without_waiting_for_the_walk() {
        let (tx, rx) = crossbeam_channel::unbounded();
        tx.send(unsniffed(0)).unwrap();
        tx.send(unsniffed(1)).unwrap();
        let (out_tx, out_rx) = crossbeam_channel::unbounded();
        // The walk goes on (its sender is kept), and sends nothing more.
        let reader = std::thread::spawn(move || {
            let mut p = Prefetch::new(rx, small);
            for _ in 0..2 {
                out_tx.send(p.next().map(path_of)).unwrap();
            }
        });
        for i in 0..2 {
            let got = out_rx.recv_timeout(Duration::from_secs(10));
            assert_eq!(got, Ok(Some(path_of(unsniffed(i)))));
        }
        reader.join().unwrap();
        drop(tx);
    }

    #[test]
    fn reads_tell_bytes_the_cache_holds_and_the_bytes_are_right() {
        // Its reads may miss, which moves `MISSES`.
        let _turn = turn();
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = File::create(&path).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        // Dropped from the cache where the system allows (clean pages on a
        // disk; tmpfs keeps them).
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        let mut buf = vec![0u8; 150_000];
        read_exact_at(&f, &mut buf, 40_000).unwrap();
        assert_eq!(buf, data[40_000..190_000]);
        // Now all in memory: the same read finds it there, where the
        // system can tell.
        buf.fill(0);
        let again = read_exact_at(&f, &mut buf, 40_000).unwrap();
        assert_eq!(buf, data[40_000..190_000]);
        assert_ne!(again, Cached::No);
        // Past the end: the plain read's error.
        let mut tail = vec![0u8; 100];
        let err = read_exact_at(&f, &mut tail, 199_950).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read_exact_at(&f, &mut [], 300_000).unwrap(), Cached::Yes);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn advice_stops_at_a_files_first_hole() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse.evtx");
        let mut f = File::create(&path).unwrap();
        f.write_all(&[7u8; 1 << 20]).unwrap();
        // Two MiB of nothing after the data: a trailing hole, where the
        // filesystem makes holes (not every one does).
        f.set_len(3 << 20).unwrap();
        f.sync_all().unwrap();
        let f = File::open(&path).unwrap();
        let len = advised_len(&f, 3 << 20);
        assert!(len == 3 << 20 || (1 << 20..3 << 20).contains(&len), "{len}");
        // Never past what was asked, never past the data where a hole is.
        assert_eq!(advised_len(&f, 4096), 4096);
        // Where the system tells the hole, advice stops there (at 1 MiB).
        if let Ok(hole) = rustix::fs::seek(&f, rustix::fs::SeekFrom::Hole(0)) {
            assert_eq!(len, hole.min(3 << 20));
        }
        // An empty file: nothing to advise.
        let empty = dir.path().join("empty");
        File::create(&empty).unwrap();
        assert_eq!(advised_len(&File::open(&empty).unwrap(), 0), 0);
    }
}
