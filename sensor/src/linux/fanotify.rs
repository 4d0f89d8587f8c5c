//! File events by fanotify: create, moved-to, delete, close-after-write.
//!
//! One fanotify group in notification mode with `FAN_REPORT_DFID_NAME`: every
//! event names its directory by file handle plus the entry's name, so no file
//! is opened to report it and deleted files are still named. Marks are
//! `FAN_MARK_FILESYSTEM`, one per local non-pseudo filesystem (or per
//! filesystem holding a `--watch PATH`, whose events are then kept only under
//! those paths: a filesystem mark sees a whole tree at once, which per-folder
//! marks cannot). A directory handle is turned into a path with
//! `open_by_handle_at` on a descriptor of its filesystem.
//!
//! Own events: trawl's own process is skipped (`fanotify.own`), so writing
//! alerts or a trace, or reading files to hash them (reads are not marked at
//! all), never feeds back. A full kernel queue gives `FAN_Q_OVERFLOW`,
//! counted as `fanotify.overflows` (each one means events were lost; the
//! kernel does not say how many).

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::Context;
use trawl_engine::event::{fields, Event, EventKind, Os, Value};

use super::clock::wall_now;
use super::mounts;
use super::reader::{wait_readable, Reader};
use crate::live::intake::Intake;
use crate::live::run::SourceHandle;

/// The events trawl asks for (files only: no `FAN_ONDIR`).
const MASK: u64 = libc::FAN_CREATE | libc::FAN_MOVED_TO | libc::FAN_DELETE | libc::FAN_CLOSE_WRITE;

/// Event bits in the order they are reported when one event carries several
/// (fanotify merges a create and the close-after-write that follows).
const KINDS: [(u64, EventKind); 4] = [
    (libc::FAN_CREATE, EventKind::FileCreate),
    (libc::FAN_CLOSE_WRITE, EventKind::FileWrite),
    (libc::FAN_MOVED_TO, EventKind::FileRename),
    (libc::FAN_DELETE, EventKind::FileDelete),
];

type Fsid = [i32; 2];

/// A running fanotify source.
pub struct FanotifySource {
    reader: Reader,
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    events: AtomicU64,
    overflows: AtomicU64,
    own: AtomicU64,
    unresolved: AtomicU64,
    outside: AtomicU64,
}

/// What the reader needs to turn a record into a path.
struct Resolver {
    /// A descriptor on each marked filesystem, for `open_by_handle_at`.
    mounts: HashMap<Fsid, OwnedFd>,
    /// `--watch` paths (events elsewhere are dropped); empty: everything.
    prefixes: Vec<PathBuf>,
}

/// Creates the group, marks the filesystems and starts the reader thread.
/// Returns the source and a description of what is watched.
pub fn start(intake: &Intake, watch: &[PathBuf]) -> anyhow::Result<(FanotifySource, String)> {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe {
        libc::fanotify_init(
            libc::FAN_CLASS_NOTIF
                | libc::FAN_CLOEXEC
                | libc::FAN_NONBLOCK
                | libc::FAN_REPORT_DFID_NAME,
            (libc::O_RDONLY | libc::O_LARGEFILE | libc::O_CLOEXEC) as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error()).context(
            "fanotify_init with FAN_REPORT_DFID_NAME (needs root and Linux 5.9 or newer)",
        );
    }
    // SAFETY: fanotify_init returned a new descriptor we now own.
    let group = unsafe { OwnedFd::from_raw_fd(fd) };

    let mut resolver = Resolver {
        mounts: HashMap::new(),
        prefixes: Vec::new(),
    };
    let description = if watch.is_empty() {
        let mut failed = Vec::new();
        let mut marked = Vec::new();
        let mut all = mounts::local_filesystems().context("reading /proc/self/mountinfo")?;
        // A filesystem's own root mount first, so paths resolve through it.
        all.sort_by_key(|m| !m.whole);
        for m in all {
            match mark(&group, Path::new(&m.mount_point), &mut resolver) {
                Ok(true) => marked.push(m.mount_point),
                Ok(false) => {}
                Err(e) => failed.push(format!("{} ({}): {e}", m.mount_point, m.fs_type)),
            }
        }
        if !failed.is_empty() {
            eprintln!(
                "trawl: file events not watched on {} filesystem(s): {}",
                failed.len(),
                failed.join("; ")
            );
        }
        anyhow::ensure!(
            !marked.is_empty(),
            "no filesystem could be marked for fanotify"
        );
        format!(
            "file events by fanotify on {} filesystem(s) ({})",
            marked.len(),
            marked.join(", ")
        )
    } else {
        for p in watch {
            let canon = p
                .canonicalize()
                .with_context(|| format!("--watch {}", p.display()))?;
            mark(&group, &canon, &mut resolver).with_context(|| {
                format!("marking the filesystem of --watch {}", canon.display())
            })?;
            resolver.prefixes.push(canon);
        }
        format!(
            "file events by fanotify under {}",
            resolver
                .prefixes
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };

    let counters = Arc::new(Counters::default());
    let reader = {
        let (counters, intake) = (Arc::clone(&counters), intake.clone());
        Reader::spawn("trawl-fanotify", move |stop| {
            read_loop(&group, &resolver, stop, &counters, &intake)
        })
        .context("starting the fanotify reader")?
    };
    Ok((FanotifySource { reader, counters }, description))
}

fn cstring(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("path holds a NUL byte"))
}

/// Marks the filesystem holding `path`; `Ok(false)` when it already is.
fn mark(group: &OwnedFd, path: &Path, resolver: &mut Resolver) -> io::Result<bool> {
    let c = cstring(path)?;
    // SAFETY: a zeroed statfs is a valid out-parameter.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid NUL-terminated path and out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fsid_t is two ints; reading it as such is how fanotify reports it.
    let fsid: Fsid = unsafe { std::mem::transmute::<libc::fsid_t, Fsid>(st.f_fsid) };
    if resolver.mounts.contains_key(&fsid) {
        return Ok(false);
    }
    // SAFETY: valid descriptor and path; the result is checked.
    let rc = unsafe {
        libc::fanotify_mark(
            group.as_raw_fd(),
            libc::FAN_MARK_ADD | libc::FAN_MARK_FILESYSTEM,
            MASK,
            libc::AT_FDCWD,
            c.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: valid path; the result is checked.
    let dir = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if dir < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor we own.
    resolver
        .mounts
        .insert(fsid, unsafe { OwnedFd::from_raw_fd(dir) });
    Ok(true)
}

fn read_loop(
    group: &OwnedFd,
    resolver: &Resolver,
    stop: &AtomicBool,
    counters: &Counters,
    intake: &Intake,
) {
    let me = std::process::id() as i32;
    // u64 elements keep the buffer aligned for the kernel's records.
    let mut buf = vec![0u64; 32 * 1024];
    loop {
        // SAFETY: the buffer is valid for its length in bytes.
        let n = unsafe { libc::read(group.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len() * 8) };
        if n > 0 {
            // SAFETY: the kernel wrote `n` bytes into the buffer.
            let bytes =
                unsafe { std::slice::from_raw_parts(buf.as_ptr().cast::<u8>(), n as usize) };
            for raw in records(bytes) {
                handle(raw, me, resolver, counters, intake);
            }
            // A busy host never leaves the queue empty: check for stop anyway.
            if stop.load(Ordering::Relaxed) {
                return;
            }
            continue;
        }
        let err = io::Error::last_os_error();
        if n < 0
            && err.kind() != io::ErrorKind::WouldBlock
            && err.kind() != io::ErrorKind::Interrupted
        {
            tracing::error!("reading fanotify events failed: {err}; file events stop");
            return;
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        wait_readable(group.as_raw_fd());
    }
}

/// One event as read: its header fields and its info records.
#[derive(Debug, PartialEq, Eq)]
struct RawEvent<'a> {
    mask: u64,
    pid: i32,
    fd: i32,
    info: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}
fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}
fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_ne_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// Splits a read buffer into events (`struct fanotify_event_metadata`, then
/// info records up to `event_len`). Stops at anything malformed.
fn records(mut b: &[u8]) -> impl Iterator<Item = RawEvent<'_>> {
    std::iter::from_fn(move || {
        let len = u32_at(b, 0)? as usize;
        let vers = *b.get(4)?;
        let meta = usize::from(u16_at(b, 6)?);
        if vers != libc::FANOTIFY_METADATA_VERSION || len < meta || meta < 24 || len > b.len() {
            return None;
        }
        let ev = RawEvent {
            mask: u64_at(b, 8)?,
            fd: u32_at(b, 16)? as i32,
            pid: u32_at(b, 20)? as i32,
            info: &b[meta..len],
        };
        b = &b[len..];
        Some(ev)
    })
}

/// The directory handle and entry name of a `DFID_NAME` info record.
#[derive(Debug, PartialEq, Eq)]
struct DirEntry<'a> {
    fsid: Fsid,
    handle_type: i32,
    handle: &'a [u8],
    name: &'a [u8],
}

fn dir_entry(mut info: &[u8]) -> Option<DirEntry<'_>> {
    while info.len() >= 4 {
        let kind = info[0];
        let len = usize::from(u16_at(info, 2)?);
        if len < 4 || len > info.len() {
            return None;
        }
        let rec = &info[..len];
        info = &info[len..];
        if kind != libc::FAN_EVENT_INFO_TYPE_DFID_NAME {
            continue;
        }
        let fsid = [u32_at(rec, 4)? as i32, u32_at(rec, 8)? as i32];
        let bytes = u32_at(rec, 12)? as usize;
        let handle_type = u32_at(rec, 16)? as i32;
        let handle = rec.get(20..20 + bytes)?;
        let rest = rec.get(20 + bytes..)?;
        let name = &rest[..rest.iter().position(|c| *c == 0).unwrap_or(rest.len())];
        return Some(DirEntry {
            fsid,
            handle_type,
            handle,
            name,
        });
    }
    None
}

fn handle(raw: RawEvent<'_>, me: i32, resolver: &Resolver, counters: &Counters, intake: &Intake) {
    if raw.fd >= 0 {
        // Not expected in FID mode; never leak a descriptor.
        // SAFETY: the kernel gave us this descriptor to close.
        drop(unsafe { OwnedFd::from_raw_fd(raw.fd) });
    }
    if raw.mask & libc::FAN_Q_OVERFLOW != 0 {
        counters.overflows.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("fanotify queue overflowed: file events were lost");
        return;
    }
    counters.events.fetch_add(1, Ordering::Relaxed);
    if raw.pid == me {
        counters.own.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let Some(path) = dir_entry(raw.info).and_then(|d| resolve(resolver, &d)) else {
        counters.unresolved.fetch_add(1, Ordering::Relaxed);
        return;
    };
    if !resolver.prefixes.is_empty() && !resolver.prefixes.iter().any(|p| path.starts_with(p)) {
        counters.outside.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let target = path.to_string_lossy().into_owned();
    let image = (raw.pid > 0)
        .then(|| std::fs::read_link(format!("/proc/{}/exe", raw.pid)).ok())
        .flatten();
    let ts = wall_now();
    for (bit, kind) in KINDS {
        if raw.mask & bit == 0 {
            continue;
        }
        let mut ev = Event::new(kind, Os::Linux, ts);
        ev.push_unchecked(fields::TARGET_FILENAME, Value::Str(target.clone()));
        if raw.pid > 0 {
            ev.push_unchecked(fields::PROCESS_ID, Value::Int(i64::from(raw.pid)));
        }
        if let Some(image) = &image {
            ev.push_unchecked(
                fields::IMAGE,
                Value::Str(image.to_string_lossy().into_owned()),
            );
        }
        intake.push(ev);
    }
}

/// The absolute path of a directory entry, through `open_by_handle_at`.
fn resolve(resolver: &Resolver, d: &DirEntry<'_>) -> Option<PathBuf> {
    let mount = resolver.mounts.get(&d.fsid)?;
    // struct file_handle { u32 handle_bytes; i32 handle_type; u8 f_handle[]; },
    // built in u32s for alignment.
    let mut fh = vec![0u32; 2 + d.handle.len().div_ceil(4)];
    fh[0] = d.handle.len() as u32;
    fh[1] = d.handle_type as u32;
    // SAFETY: the destination has room for the handle bytes after the header.
    unsafe {
        std::ptr::copy_nonoverlapping(
            d.handle.as_ptr(),
            fh.as_mut_ptr().add(2).cast::<u8>(),
            d.handle.len(),
        );
    }
    // SAFETY: `fh` is a well-formed file_handle; the result is checked.
    let fd: RawFd = unsafe {
        libc::open_by_handle_at(
            mount.as_raw_fd(),
            fh.as_mut_ptr().cast(),
            libc::O_PATH | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return None;
    }
    // SAFETY: a new descriptor we own (closed on drop).
    let dir = unsafe { OwnedFd::from_raw_fd(fd) };
    let dir_path = std::fs::read_link(format!("/proc/self/fd/{}", dir.as_raw_fd())).ok()?;
    let name = std::ffi::OsStr::from_bytes(d.name);
    Some(if name.is_empty() || name == "." {
        dir_path
    } else {
        dir_path.join(name)
    })
}

impl SourceHandle for FanotifySource {
    fn name(&self) -> &'static str {
        "fanotify"
    }

    fn stats(&self) -> Vec<(&'static str, u64)> {
        let c = &self.counters;
        vec![
            ("events", c.events.load(Ordering::Relaxed)),
            ("overflows", c.overflows.load(Ordering::Relaxed)),
            ("own", c.own.load(Ordering::Relaxed)),
            ("unresolved", c.unresolved.load(Ordering::Relaxed)),
            ("outside_watch", c.outside.load(Ordering::Relaxed)),
        ]
    }

    fn stop(&mut self) {
        self.reader.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info_record(fsid: Fsid, handle: &[u8], name: &[u8]) -> Vec<u8> {
        let mut r = vec![libc::FAN_EVENT_INFO_TYPE_DFID_NAME, 0, 0, 0];
        r.extend_from_slice(&(fsid[0] as u32).to_ne_bytes());
        r.extend_from_slice(&(fsid[1] as u32).to_ne_bytes());
        r.extend_from_slice(&(handle.len() as u32).to_ne_bytes());
        r.extend_from_slice(&1u32.to_ne_bytes());
        r.extend_from_slice(handle);
        r.extend_from_slice(name);
        r.push(0);
        while r.len() % 4 != 0 {
            r.push(0);
        }
        let len = r.len() as u16;
        r[2..4].copy_from_slice(&len.to_ne_bytes());
        r
    }

    fn event(mask: u64, pid: i32, info: &[u8]) -> Vec<u8> {
        let mut e = Vec::new();
        e.extend_from_slice(&((24 + info.len()) as u32).to_ne_bytes());
        e.extend_from_slice(&[libc::FANOTIFY_METADATA_VERSION, 0]);
        e.extend_from_slice(&24u16.to_ne_bytes());
        e.extend_from_slice(&mask.to_ne_bytes());
        e.extend_from_slice(&(-1i32).to_ne_bytes());
        e.extend_from_slice(&pid.to_ne_bytes());
        e.extend_from_slice(info);
        e
    }

    #[test]
    fn records_and_dir_entries_parse() {
        let info = info_record([7, 9], &[1, 2, 3, 4, 5, 6, 7, 8], b"evil.sh");
        let mut buf = event(libc::FAN_CREATE | libc::FAN_CLOSE_WRITE, 1234, &info);
        buf.extend(event(libc::FAN_Q_OVERFLOW, 0, &[]));
        let evs: Vec<_> = records(&buf).collect();
        assert_eq!(evs.len(), 2);
        assert_eq!((evs[0].pid, evs[0].fd), (1234, -1));
        assert_eq!(evs[1].mask, libc::FAN_Q_OVERFLOW);
        let d = dir_entry(evs[0].info).unwrap();
        assert_eq!(d.fsid, [7, 9]);
        assert_eq!(d.handle, &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(d.name, b"evil.sh");
    }

    #[test]
    fn malformed_buffers_end_the_walk_without_panicking() {
        let info = info_record([1, 1], &[0; 8], b"x");
        let good = event(libc::FAN_DELETE, 1, &info);
        for cut in 0..good.len() {
            for e in records(&good[..cut]) {
                let _ = dir_entry(e.info);
            }
        }
        let mut bad_len = good.clone();
        bad_len[0..4].copy_from_slice(&4u32.to_ne_bytes());
        assert_eq!(records(&bad_len).count(), 0);
        let mut bad_info = info.clone();
        bad_info[2..4].copy_from_slice(&500u16.to_ne_bytes());
        assert!(dir_entry(&bad_info).is_none());
    }
}
