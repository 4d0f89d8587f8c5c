//! SHA-256 of files, cached by file identity.
//!
//! A sensor sees the same executables start thousands of times a day; hashing
//! each start again would cost real CPU. [`HashCache`] keys its LRU on the
//! file's identity — device, inode, size, modification time and (on Unix)
//! status-change time — so an unchanged file is hashed once, and any write,
//! truncate, rename-over or `touch` produces a new key and a fresh hash. Only
//! regular files are hashed, and only up to a size cap.
//!
//! ```
//! use std::io::Write;
//! use trawl_engine::hash::HashCache;
//!
//! let mut f = tempfile::NamedTempFile::new().unwrap();
//! f.write_all(b"abc").unwrap();
//! let cache = HashCache::new(1024, 64 << 20);
//! let d = cache.sha256(f.path()).unwrap();
//! assert_eq!(d.to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
//! cache.sha256(f.path()).unwrap();
//! assert_eq!(cache.stats().hits, 1);
//! ```

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

use lru::LruCache;
use sha2::{Digest as _, Sha256};

use crate::ioc::Digest;

/// Why a file was not hashed.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// Opening, reading or `stat`-ing failed (gone, no permission, …).
    // The cause is part of the message (and deliberately not a `source`),
    // so a chain printer shows it once.
    #[error("cannot read {path}: {error}")]
    Io { path: String, error: io::Error },
    /// Not a regular file (a device, FIFO, socket or directory): reading it
    /// could block or never end, so it is not hashed.
    #[error("{path} is not a regular file")]
    NotRegular { path: String },
    /// Larger than the configured cap.
    #[error("{path} is {size} bytes, over the hashing cap of {cap} bytes")]
    TooLarge { path: String, size: u64, cap: u64 },
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
}

impl FileIdentity {
    /// The identity of the file `meta` describes. On systems without inode
    /// numbers, `path_hash` (a hash of the path) stands in for the inode.
    pub fn from_metadata(meta: &Metadata, path_hash: u64) -> FileIdentity {
        let mtime_ns = meta.modified().map(system_ns).unwrap_or(0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let _ = path_hash;
            FileIdentity {
                dev: meta.dev(),
                ino: meta.ino(),
                size: meta.len(),
                mtime_ns,
                ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
            }
        }
        #[cfg(not(unix))]
        {
            FileIdentity {
                dev: 0,
                ino: path_hash,
                size: meta.len(),
                mtime_ns,
                ctime_ns: meta.created().map(system_ns).unwrap_or(0),
            }
        }
    }
}

fn system_ns(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

/// Counters of a [`HashCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Answered from the cache.
    pub hits: u64,
    /// Read and hashed.
    pub misses: u64,
    /// Entries pushed out by newer ones.
    pub evictions: u64,
    /// Files not hashed (errors, not regular, over the cap).
    pub skipped: u64,
    /// Bytes read for hashing.
    pub bytes_hashed: u64,
}

/// A thread-safe SHA-256 file hasher with an LRU cache keyed on
/// [`FileIdentity`]. The lock is held only for lookups and inserts, never while
/// a file is read, so hashing threads run in parallel.
#[derive(Debug)]
pub struct HashCache {
    cache: Mutex<(LruCache<FileIdentity, Digest>, HashStats)>,
    max_size: u64,
}

impl HashCache {
    /// A cache of `capacity` entries (at least 1) that refuses files larger than
    /// `max_size` bytes.
    pub fn new(capacity: usize, max_size: u64) -> HashCache {
        let cap = NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN);
        HashCache {
            cache: Mutex::new((LruCache::new(cap), HashStats::default())),
            max_size,
        }
    }

    /// The SHA-256 of the file at `path`, from the cache when the file is
    /// unchanged.
    pub fn sha256(&self, path: &Path) -> Result<Digest, HashError> {
        let result = self.hash_path(path);
        if result.is_err() {
            self.with(|_, s| s.skipped += 1);
        }
        result
    }

    fn hash_path(&self, path: &Path) -> Result<Digest, HashError> {
        let io_err = |error| HashError::Io {
            path: path.display().to_string(),
            error,
        };
        // Look before opening: opening a FIFO with no writer would block.
        let before = std::fs::metadata(path).map_err(io_err)?;
        self.check(&before, path)?;
        let file = open_nonblocking(path).map_err(io_err)?;
        // Identity and content come from the opened file, so a path swapped
        // for something else in between is caught here.
        let meta = file.metadata().map_err(io_err)?;
        self.check(&meta, path)?;
        let id = FileIdentity::from_metadata(&meta, path_hash(path));
        let cached = self.with(|lru, s| {
            let hit = lru.get(&id).copied();
            if hit.is_some() {
                s.hits += 1;
            }
            hit
        });
        if let Some(d) = cached {
            return Ok(d);
        }
        let mut hasher = Sha256::new();
        // Sized to the file (4 KiB to 256 KiB): a fixed 256 KiB buffer is
        // above malloc's mmap threshold, so every small file paid a map and
        // an unmap of it.
        let size = usize::try_from(meta.len()).unwrap_or(usize::MAX);
        let mut buf = vec![0u8; size.clamp(4 * 1024, 256 * 1024)];
        let mut total = 0u64;
        // One byte past the cap tells a file that grew after `stat`.
        let mut limited = file.take(self.max_size.saturating_add(1));
        loop {
            let n = limited.read(&mut buf).map_err(io_err)?;
            if n == 0 {
                break;
            }
            total += n as u64;
            hasher.update(&buf[..n]);
        }
        if total > self.max_size {
            return Err(HashError::TooLarge {
                path: path.display().to_string(),
                size: total,
                cap: self.max_size,
            });
        }
        let digest = Digest::sha256(hasher.finalize().into());
        self.with(|lru, s| {
            s.misses += 1;
            s.bytes_hashed += total;
            if lru.push(id, digest).is_some_and(|(old, _)| old != id) {
                s.evictions += 1;
            }
        });
        Ok(digest)
    }

    /// Only regular files within the cap are hashed.
    fn check(&self, meta: &Metadata, path: &Path) -> Result<(), HashError> {
        if !meta.is_file() {
            return Err(HashError::NotRegular {
                path: path.display().to_string(),
            });
        }
        if meta.len() > self.max_size {
            return Err(HashError::TooLarge {
                path: path.display().to_string(),
                size: meta.len(),
                cap: self.max_size,
            });
        }
        Ok(())
    }

    /// The counters so far.
    pub fn stats(&self) -> HashStats {
        self.with(|_, s| *s)
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&mut LruCache<FileIdentity, Digest>, &mut HashStats) -> T,
    ) -> T {
        // A poisoned lock only means another thread panicked mid-update of a
        // cache; its contents are still valid digests.
        let mut guard = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let (lru, stats) = &mut *guard;
        f(lru, stats)
    }
}

/// Opens for reading without blocking on a FIFO or device that slipped in
/// after the `stat` (regular files read the same either way).
fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    opts.open(path)
}

fn path_hash(path: &Path) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write(path: &Path, bytes: &[u8]) {
        let mut f = File::create(path).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    }

    #[test]
    fn known_vectors_and_cache_hits() {
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty");
        write(&empty, b"");
        let big = dir.path().join("big");
        write(&big, &vec![b'a'; 1_000_000]);
        let cache = HashCache::new(8, 64 << 20);
        assert_eq!(
            cache.sha256(&empty).unwrap().to_string(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            cache.sha256(&big).unwrap().to_string(),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        cache.sha256(&big).unwrap();
        let s = cache.stats();
        assert_eq!((s.hits, s.misses, s.bytes_hashed), (1, 2, 1_000_000));
    }

    #[test]
    fn a_changed_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write(&p, b"abc");
        let cache = HashCache::new(8, 1024);
        let first = cache.sha256(&p).unwrap();
        // Same size, new content: the mtime/ctime change makes a new key.
        std::thread::sleep(std::time::Duration::from_millis(20));
        write(&p, b"abd");
        let second = cache.sha256(&p).unwrap();
        assert_ne!(first, second);
        assert_eq!(cache.stats().misses, 2);
    }

    #[test]
    fn caps_and_non_regular_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write(&p, &[0u8; 2048]);
        let cache = HashCache::new(8, 1024);
        assert!(matches!(
            cache.sha256(&p),
            Err(HashError::TooLarge { size: 2048, .. })
        ));
        assert!(matches!(
            cache.sha256(dir.path()),
            Err(HashError::NotRegular { .. })
        ));
        assert!(matches!(
            cache.sha256(&dir.path().join("missing")),
            Err(HashError::Io { .. })
        ));
        assert_eq!(cache.stats().skipped, 3);
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let cache = HashCache::new(8, 1024);
        assert!(matches!(
            cache.sha256(&fifo),
            Err(HashError::NotRegular { .. })
        ));
    }

    #[test]
    fn lru_evicts_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let cache = HashCache::new(2, 1024);
        let paths: Vec<_> = (0..3)
            .map(|i| {
                let p = dir.path().join(format!("f{i}"));
                write(&p, format!("{i}").as_bytes());
                p
            })
            .collect();
        for p in &paths {
            cache.sha256(p).unwrap();
        }
        assert_eq!(cache.stats().evictions, 1);
        cache.sha256(&paths[0]).unwrap(); // evicted: hashed again
        cache.sha256(&paths[2]).unwrap(); // still cached
        let s = cache.stats();
        assert_eq!((s.hits, s.misses), (1, 4));
    }
}
