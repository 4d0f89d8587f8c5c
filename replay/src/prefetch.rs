//! Asking the kernel for the files the readers will want next, while the
//! page cache misses.
//!
//! A folder of small logs read from a cold cache is read one file at a time
//! by each reader: open, read (and wait for the disk), match, next. The
//! disk is idle while the readers match, and the readers while it seeks.
//! So the files the walk found, in the order they will be read, pass
//! through a lookahead ([`Prefetch`]); while reads miss the page cache,
//! each small file entering it is advised `WILLNEED`, and the kernel reads
//! it in the background, up to [`AHEAD_BYTES`] ahead of the readers.
//!
//! Whether reads miss is told by the reads themselves
//! ([`read_exact_at`]): the first attempt asks not to wait for the disk, and
//! one that would have to counts a miss. A warm replay never misses and
//! never advises, so it pays nothing more than that flag. Only timing
//! depends on any of this: what is read, and the alerts, do not.

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crossbeam_channel::{Receiver, TryRecvError};

use crate::input::Found;

/// How far ahead of the readers files are asked for, in bytes and files:
/// enough to keep a disk busy while two readers match, small beside any
/// page cache.
pub(crate) const AHEAD_BYTES: u64 = 64 << 20;
/// See [`AHEAD_BYTES`]; this also bounds the lookahead's own memory.
pub(crate) const AHEAD_FILES: usize = 1024;

/// Reads (in this process) that found their bytes not in the page cache.
static MISSES: AtomicU64 = AtomicU64::new(0);

/// Whether a read found its bytes already in memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cached {
    /// All of them were in the page cache.
    Yes,
    /// Some had to come from the disk (counted as a miss).
    No,
    /// The system cannot tell (not Linux, or a filesystem without
    /// `RWF_NOWAIT`); counted as a miss, so such files are advised too.
    Unknown,
}

/// Reads exactly `buf.len()` bytes of `file` at offset `at`, like
/// `FileExt::read_exact_at`, and says whether they were all in the page
/// cache; a read that was not counts as a miss, which turns prefetching on
/// for the files found next (see [`Prefetch`]).
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
    if cached != Cached::Yes {
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
        // This file cannot be asked (`EOPNOTSUPP` and the like): read it as
        // any file, and let it count as a miss.
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

/// Asks the kernel to start reading the first `len` bytes of `path` into
/// the page cache, without waiting. Failures are of no consequence: the
/// reader opens the file itself, and reports what it finds.
#[cfg(target_os = "linux")]
fn advise(path: &Path, len: u64) {
    if let Ok(file) = File::open(path) {
        let _ = rustix::fs::fadvise(
            &file,
            0,
            std::num::NonZeroU64::new(len),
            rustix::fs::Advice::WillNeed,
        );
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_path: &Path, _len: u64) {}

/// The walk's findings, in their order, through a lookahead of up to
/// [`AHEAD_BYTES`] / [`AHEAD_FILES`]: while reads miss the page cache
/// ([`read_exact_at`]), the files `wanted` picks are advised as they enter
/// it (and, when misses start, all those already in it). Items are taken
/// from the walk without waiting while any are held, so the lookahead
/// never holds up the readers.
pub(crate) struct Prefetch<F> {
    found: Receiver<Found>,
    /// Which findings are read whole, and their size: those are advised.
    wanted: F,
    /// Held findings, and whether each was advised.
    ahead: VecDeque<(Found, bool)>,
    ahead_bytes: u64,
    /// [`MISSES`] when last looked at.
    misses_seen: u64,
    /// Files still to advise since the last miss seen.
    advise_next: usize,
    walk_done: bool,
}

impl<F: Fn(&Found) -> Option<(&Path, u64)>> Prefetch<F> {
    pub(crate) fn new(found: Receiver<Found>, wanted: F) -> Self {
        Prefetch {
            found,
            wanted,
            ahead: VecDeque::new(),
            ahead_bytes: 0,
            misses_seen: MISSES.load(Relaxed),
            advise_next: 0,
            walk_done: false,
        }
    }

    /// Holds one more finding, advised when misses are recent.
    fn hold(&mut self, found: Found) {
        let mut advised = false;
        if let Some((path, size)) = (self.wanted)(&found) {
            self.ahead_bytes += size;
            if self.advise_next > 0 {
                self.advise_next -= 1;
                advise(path, size);
                advised = true;
            }
        }
        self.ahead.push_back((found, advised));
    }

    /// When reads have missed since last looked, advises every held file
    /// not advised yet, and the next [`AHEAD_FILES`] found.
    fn look_at_misses(&mut self) {
        let misses = MISSES.load(Relaxed);
        if misses == self.misses_seen {
            return;
        }
        self.misses_seen = misses;
        self.advise_next = AHEAD_FILES;
        for (found, advised) in &mut self.ahead {
            if !*advised {
                if let Some((path, size)) = (self.wanted)(found) {
                    advise(path, size);
                }
                *advised = true;
            }
        }
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
        let (found, _) = self.ahead.pop_front()?;
        if let Some((_, size)) = (self.wanted)(&found) {
            self.ahead_bytes -= size;
        }
        Some(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn unsniffed(i: u64) -> Found {
        Found::Unsniffed {
            path: PathBuf::from(format!("/nonexistent/{i}.evtx")),
            size: 1 << 20,
        }
    }

    fn small(found: &Found) -> Option<(&Path, u64)> {
        match found {
            Found::Unsniffed { path, size } => Some((path, *size)),
            _ => None,
        }
    }

    #[test]
    fn findings_come_out_in_walk_order_whatever_the_walk_pace() {
        let (tx, rx) = crossbeam_channel::bounded(16);
        let walker = std::thread::spawn(move || {
            for i in 0..3000u64 {
                if i % 97 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
                let found = if i % 5 == 0 {
                    Found::PassedOver(PathBuf::from(format!("/x/{i}")))
                } else {
                    unsniffed(i)
                };
                tx.send(found).unwrap();
            }
        });
        // Misses now and then, so some findings are advised (of paths that
        // do not exist: advising them must change nothing).
        let mut seen = Vec::new();
        for (n, found) in Prefetch::new(rx, small).enumerate() {
            if n % 700 == 0 {
                MISSES.fetch_add(1, Relaxed);
            }
            seen.push(match found {
                Found::Unsniffed { path, .. } | Found::PassedOver(path) => path,
                _ => unreachable!(),
            });
        }
        walker.join().unwrap();
        let want: Vec<PathBuf> = (0..3000u64)
            .map(|i| {
                if i % 5 == 0 {
                    PathBuf::from(format!("/x/{i}"))
                } else {
                    PathBuf::from(format!("/nonexistent/{i}.evtx"))
                }
            })
            .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn lookahead_is_bounded_by_bytes() {
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
    }

    #[test]
    fn reads_tell_bytes_the_cache_holds_and_the_bytes_are_right() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.bin");
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut f = File::create(&path).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        drop(f);
        let f = File::open(&path).unwrap();
        // Dropped from the cache where the system allows (clean pages).
        #[cfg(target_os = "linux")]
        let _ = rustix::fs::fadvise(&f, 0, None, rustix::fs::Advice::DontNeed);
        let before = MISSES.load(Relaxed);
        let mut buf = vec![0u8; 150_000];
        let first = read_exact_at(&f, &mut buf, 40_000).unwrap();
        assert_eq!(buf, data[40_000..190_000]);
        if first != Cached::Yes {
            assert!(MISSES.load(Relaxed) > before);
        }
        // Now all in memory: the same read finds it there, where the
        // system can tell.
        let again = read_exact_at(&f, &mut buf, 40_000).unwrap();
        assert_eq!(buf, data[40_000..190_000]);
        assert_ne!(again, Cached::No);
        // Past the end: an error, as the plain read gives.
        let mut tail = vec![0u8; 100];
        assert!(read_exact_at(&f, &mut tail, 199_950).is_err());
    }
}
