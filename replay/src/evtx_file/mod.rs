//! Windows `.evtx` files through the `evtx` crate.
//!
//! A file is cut into its 64 KiB chunks on the reading thread (in record
//! order: a log that wrapped around starts at its oldest chunk); each chunk is
//! parsed on a worker, so one large file and many small ones both keep every
//! core busy.
//!
//! A chunk is read one of two ways ([`ChunkReader`]):
//! - **template plans** (the default): each record is one instance of a
//!   template, and a plan compiled once per template says which of its
//!   substitution values are `Channel`, `EventID`, … and each `Data`; the
//!   record is read by looking those up (`fast`), without building or
//!   rendering its XML. A chunk with anything the plans do not cover goes
//!   whole to the second way.
//! - **the crate's renderer**: records rendered by the crate's
//!   compiled-template renderer straight into JSON bytes, which the shared
//!   Windows record parser reads without building a tree ([`crate::winlog`]).
//!
//! Either way, records of channels and ids trawl does not map are only
//! counted, their `EventData` never decoded, and both give the same events.
//!
//! A chunk whose header is damaged is reported (`FILE: chunk N: reason`) and
//! skipped; a record that cannot be parsed is reported with its chunk and
//! record id and skipped; the rest of the file is still read.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read, Seek};
use std::path::Path;
use std::sync::Arc;

use evtx::err::EvtxError;
use evtx::{EvtxChunkData, EvtxChunkHeader, EvtxParser, ParserSettings};

use crate::unit::UnitOutput;
use crate::winlog::{read_record, ChannelCounts};
use crate::Location;
use memory::{chunk_data_read_used, MemoryChunks, CHUNK_HEADER, FILE_HEADER};

mod bytes;
mod fast;
mod memory;
mod strings;
mod template;
mod values;

/// How a chunk's records are read. Both give the same events; the second is
/// kept for what the first does not cover, and to check the first against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ChunkReader {
    /// From the substitution values, by per-template plans, falling back to
    /// [`ChunkReader::Renderer`] for a chunk the plans do not cover.
    #[default]
    TemplatePlans,
    /// Every record rendered to JSON by the `evtx` crate, then parsed.
    Renderer,
}

/// The first eight bytes of every EVTX file.
pub const EVTX_MAGIC: &[u8; 8] = b"ElfFile\0";

/// Whether `head` (a file's first bytes) starts like an EVTX file.
pub fn is_evtx(head: &[u8]) -> bool {
    head.starts_with(EVTX_MAGIC)
}

/// The parser settings trawl reads with: compact output. The crate is built
/// without its own thread pool: trawl runs chunks in parallel itself.
pub fn settings() -> Arc<ParserSettings> {
    Arc::new(ParserSettings::new().indent(false))
}

/// One chunk read from a file (boxed: its header is large), or where and why
/// it could not be read.
pub type ChunkRead = Result<Box<EvtxChunkData>, (Location, String)>;

/// The chunks of an EVTX file in record order. An error here means the file
/// is not usable at all (no EVTX header).
pub fn chunks(path: &Path) -> Result<impl Iterator<Item = ChunkRead>, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open trace: {e}"))?;
    let size = file.metadata().map_or(u64::MAX, |m| m.len());
    let unreadable = |e: EvtxError| format!("not a readable EVTX file: {}", chain(&e));
    let chunks = if size <= IN_MEMORY_MAX {
        // One read for the whole file, then chunks cut from memory.
        let mut bytes = Vec::with_capacity(size as usize);
        file.read_to_end(&mut bytes)
            .map_err(|e| format!("cannot read trace: {e}"))?;
        let len = bytes.len();
        Chunks::Memory(MemoryChunks::new(bytes, len, false).map_err(unreadable)?)
    } else {
        Chunks::File(
            EvtxParser::from_read_seek(file)
                .map_err(unreadable)?
                .into_chunks(),
        )
    };
    Ok(chunks.map(|c| c.map(Box::new).map_err(|e| locate(&e, Location::File))))
}

/// Files up to this size are read into memory whole before their chunks are
/// cut; larger ones are read a chunk at a time by the crate.
const IN_MEMORY_MAX: u64 = 32 << 20;

/// A read buffer kept at most this large between files.
const KEPT_BUFFER_MAX: usize = 8 << 20;

thread_local! {
    /// Each reading thread's file buffer, reused from file to file: a fresh
    /// one per file costs its page faults and the kernel's zeroing of every
    /// page, more than reading the file.
    static FILE_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Reads a whole EVTX file into `out`: the same events, counts and problems
/// as [`read_chunk`] over each of [`chunks`] (a chunk that cannot be cut
/// reported as one skipped), without copying its chunks.
pub fn read_file(path: &Path, settings: &Arc<ParserSettings>, out: &mut UnitOutput) {
    with_whole_file(path, out, |file, out| match file {
        WholeFile::Held { bytes, len } => read_bytes(bytes, len, settings, out),
        WholeFile::TooLarge => read_chunks(path, settings, out),
    });
}

/// A file as [`with_whole_file`] gives it.
pub(crate) enum WholeFile<'b> {
    /// Its first bytes; past them, up to the file's size `len`, it is zeros
    /// (a trailing hole, not read). In an EVTX file, the free space of each
    /// chunk written whole is not read and holds stale bytes (see
    /// [`unread_from`]).
    Held { bytes: &'b [u8], len: usize },
    /// Grown since it was found past what is read into memory: read it as a
    /// large file is.
    TooLarge,
}

/// Opens `path`, reads it into this thread's file buffer and runs `f` on
/// it; a file that cannot be opened or read is reported in `out` instead.
pub(crate) fn with_whole_file(
    path: &Path,
    out: &mut UnitOutput,
    f: impl FnOnce(WholeFile<'_>, &mut UnitOutput),
) {
    FILE_BUFFER.with_borrow_mut(|buf| {
        match read_into(path, buf) {
            Ok(Some((held, len))) => f(
                WholeFile::Held {
                    bytes: &buf[..held],
                    len,
                },
                out,
            ),
            Ok(None) => f(WholeFile::TooLarge, out),
            Err(reason) => out.bad(Location::File, reason, 1),
        }
        if buf.capacity() > KEPT_BUFFER_MAX {
            *buf = Vec::new();
        }
    });
}

/// Reads the EVTX file `path` chunk by chunk into `out`.
pub(crate) fn read_chunks(path: &Path, settings: &Arc<ParserSettings>, out: &mut UnitOutput) {
    match chunks(path) {
        Ok(chunks) => {
            for chunk in chunks {
                match chunk {
                    Ok(c) => read_chunk(c, settings, out),
                    Err((at, reason)) => out.bad(at, reason, 1),
                }
            }
        }
        Err(reason) => out.bad(Location::File, reason, 1),
    }
}

/// Reads `path` into `buf`: how many of its first bytes are held there
/// (the rest of the file is zeros, see [`read_used`]) and its size, or
/// `None` when it is too large to be held (see [`IN_MEMORY_MAX`]). Bytes of
/// `buf` past those held are stale.
fn read_into(path: &Path, buf: &mut Vec<u8>) -> Result<Option<(usize, usize)>, String> {
    let mut file = File::open(path).map_err(|e| format!("cannot open trace: {e}"))?;
    let size = file.metadata().map_or(u64::MAX, |m| m.len());
    if size > IN_MEMORY_MAX {
        return Ok(None);
    }
    // A sparse file's trailing hole (its empty chunk slots, often half of
    // it) reads as zeros: it is not read. A file of one chunk has no empty
    // slot to skip (and its chunk is read only up to its free space
    // anyway): most small logs are that, and asking costs three calls.
    let data_end = if size > (FILE_HEADER as u64 + CHUNK_BYTES) {
        trailing_hole(&file, size).unwrap_or(size)
    } else {
        size
    };
    let read = match read_used(&file, size as usize, data_end as usize, buf) {
        Ok(held) => return Ok(Some((held, size as usize))),
        // Not EVTX: the rest of it, after its first bytes (`buf` holds
        // just those).
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let held = buf.len() as u64;
            file.seek(io::SeekFrom::Start(held))
                .and_then(|_| file.read_to_end(buf))
        }
        // Changed under us: read it all, as any file.
        Err(_) => {
            buf.clear();
            file.rewind().and_then(|()| file.read_to_end(buf))
        }
    };
    read.map_err(|e| format!("cannot read trace: {e}"))?;
    Ok(Some((buf.len(), buf.len())))
}

/// Reads into `buf` the bytes of an EVTX file of `size` bytes that hold
/// anything: its header; of each chunk slot up to `data_end` (past which
/// the file is a hole), the chunk's header and records, up to its free
/// space offset (a chunk is on average less than half full, and the rest is
/// not read); all of a slot whose header is no chunk's. Returns how many
/// bytes that is: they end with the last slot read. A chunk's free space
/// left unread ([`unread_from`]) holds whatever an earlier file left in
/// `buf`, and so do the bytes past those returned: `buf` keeps its length
/// from file to file, so nothing is zeroed. On an error `buf` holds just the
/// bytes read; not EVTX: those are its first bytes, and the error is
/// `InvalidData`.
fn read_used(file: &File, size: usize, data_end: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut held = 0;
    let fill = |buf: &mut Vec<u8>, held: &mut usize, to: usize| -> io::Result<()> {
        let from = *held;
        if to <= from {
            return Ok(());
        }
        if buf.len() < to {
            buf.resize(to, 0);
        }
        // Reads that miss the page cache turn prefetching on.
        if let Err(e) = crate::prefetch::read_exact_at(file, &mut buf[from..to], from as u64) {
            // Whatever the error, `buf` holds just the bytes read.
            buf.truncate(from);
            return Err(e);
        }
        *held = to;
        Ok(())
    };
    // The file header and the first chunk's, in one read.
    fill(buf, &mut held, (FILE_HEADER + CHUNK_HEADER).min(size))?;
    if !is_evtx(&buf[..held]) {
        buf.truncate(held);
        return Err(io::ErrorKind::InvalidData.into());
    }
    let mut slot = FILE_HEADER.min(size);
    while slot < data_end.min(size) {
        let end = (slot + CHUNK_BYTES as usize).min(size);
        fill(buf, &mut held, (slot + CHUNK_HEADER).min(end))?;
        let used = chunk_used(&buf[slot..held]).filter(|&used| slot + used <= end);
        if let Some(used) = used {
            fill(buf, &mut held, slot + used)?;
        }
        if !used.is_some_and(|used| ends_with_last_record(&buf[slot..held], used)) {
            fill(buf, &mut held, end)?;
        }
        // The free space is left as an earlier file left it, not zeroed:
        // writing 60 KiB per file evicted the rules from the cache. Nothing
        // reads it (see `unread_from`).
        if buf.len() < end {
            buf.resize(end, 0);
        }
        held = end;
        slot = end;
    }
    Ok(held)
}

/// Where the bytes of a chunk slot that [`read_used`] leaves unread start:
/// the free space of a chunk written whole (its tables and last record
/// before it). `None`: the whole slot is read. What lies there is stale, so
/// nothing may read it: the template-plan reader is handed the slot up to
/// it, and the crate a copy with zeros from it
/// ([`memory::chunk_data_read_used`]),
/// the same whichever file the buffer held before.
fn unread_from(slot: &[u8]) -> Option<usize> {
    chunk_used(slot)
        .filter(|&used| used <= slot.len())
        .filter(|&used| ends_with_last_record(&slot[..used], used))
}

/// Where a chunk's free space starts, from its header: `None` when the
/// header is not a chunk's, or it points at strings or templates past its
/// free space (then all of the slot is read, as the crate reads it).
fn chunk_used(header: &[u8]) -> Option<usize> {
    if !header.starts_with(b"ElfChnk\0") {
        return None;
    }
    let free = u32_at(header, 48)?;
    if !(CHUNK_HEADER..=CHUNK_BYTES as usize).contains(&free) {
        return None;
    }
    // The string (64) and template (32) tables: offsets into the chunk.
    let tables = (128..CHUNK_HEADER).step_by(4);
    for at in tables {
        if u32_at(header, at)? >= free {
            return None;
        }
    }
    Some(free)
}

/// Whether the chunk's last record, as its header names it, ends where
/// its free space starts (`used`), as in every chunk written whole. Any
/// other chunk is read whole: its records may reach past its free space.
fn ends_with_last_record(chunk: &[u8], used: usize) -> bool {
    let last = u32_at(chunk, 44).filter(|&last| last >= CHUNK_HEADER);
    let size = last.and_then(|last| u32_at(chunk, last + 4));
    matches!((last, size), (Some(last), Some(size)) if last.checked_add(size) == Some(used))
}

/// The little-endian `u32` at `at`, if the bytes reach that far.
fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(b.try_into().ok()?) as usize)
}

/// The size of a chunk.
const CHUNK_BYTES: u64 = 65536;

/// Where a file's data ends when all after it, up to `size`, is a hole:
/// `None` when it has no trailing hole, data after a hole, or the system
/// does not say. The file's position is back at its start after.
#[cfg(target_os = "linux")]
fn trailing_hole(file: &File, size: u64) -> Option<u64> {
    use rustix::fs::{seek, SeekFrom};
    let hole = seek(file, SeekFrom::Hole(0)).ok();
    let data_after = hole
        .filter(|&h| h < size)
        .map(|h| seek(file, SeekFrom::Data(h)));
    let rewound = seek(file, SeekFrom::Start(0)).is_ok();
    match (hole, data_after) {
        (Some(h), Some(Err(rustix::io::Errno::NXIO))) if rewound => Some(h),
        _ => None,
    }
}

#[cfg(not(target_os = "linux"))]
fn trailing_hole(_: &File, _: u64) -> Option<u64> {
    None
}

/// Reads the chunks of a file of `len` bytes whose first are `bytes` (the
/// rest zeros).
pub(crate) fn read_bytes(
    bytes: &[u8],
    len: usize,
    settings: &Arc<ParserSettings>,
    out: &mut UnitOutput,
) {
    let mut walk = match MemoryChunks::new(bytes, len, false) {
        Ok(walk) => walk,
        Err(e) => {
            let reason = format!("not a readable EVTX file: {}", chain(&e));
            return out.bad(Location::File, reason, 1);
        }
    };
    let validate = walk.validates();
    while let Some(slot) = walk.next_slot() {
        let (n, data) = match slot {
            Ok(found) => found,
            Err(e) => {
                let (at, reason) = locate(&e, Location::File);
                out.bad(at, reason, 1);
                continue;
            }
        };
        // A header the crate would not take is reported as the crate does.
        let header = match EvtxChunkHeader::from_bytes(data) {
            Ok(h) if !validate => h,
            _ => {
                match chunk_data_read_used(n, data, validate) {
                    Ok(c) => read_chunk(Box::new(c), settings, out),
                    Err(e) => {
                        let (at, reason) = locate(&e, Location::File);
                        out.bad(at, reason, 1);
                    }
                }
                continue;
            }
        };
        if !read_planned(data, &header, Some(n), out) {
            // A chunk of this header is one the crate takes.
            if let Ok(c) = chunk_data_read_used(n, data, validate) {
                render_chunk(Box::new(c), settings, out);
            }
        }
    }
}

/// The chunks of a file in memory, or read from disk by the crate.
enum Chunks {
    Memory(MemoryChunks<Vec<u8>>),
    File(evtx::IntoIterChunks<File>),
}

impl Iterator for Chunks {
    type Item = Result<EvtxChunkData, EvtxError>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Chunks::Memory(c) => c.next(),
            Chunks::File(c) => c.next(),
        }
    }
}

/// Parses one chunk's records into `out`: events for mapped records, a count
/// per channel and id for every record, a problem per bad record.
pub fn read_chunk(data: Box<EvtxChunkData>, settings: &Arc<ParserSettings>, out: &mut UnitOutput) {
    read_chunk_with(ChunkReader::default(), data, settings, out);
}

/// [`read_chunk`] the way `reader` says; returns the way it was read (the
/// renderer, when the plans did not cover the chunk).
pub fn read_chunk_with(
    reader: ChunkReader,
    data: Box<EvtxChunkData>,
    settings: &Arc<ParserSettings>,
    out: &mut UnitOutput,
) -> ChunkReader {
    if reader == ChunkReader::TemplatePlans
        && read_planned(&data.data, &data.header, data.number, out)
    {
        return ChunkReader::TemplatePlans;
    }
    render_chunk(data, settings, out);
    ChunkReader::Renderer
}

/// Reads the chunk `data` (slot `number`, parsed `header`) by template
/// plans; `false` (with `out` as it was) when the plans do not cover it.
fn read_planned(
    data: &[u8],
    header: &EvtxChunkHeader,
    number: Option<u64>,
    out: &mut UnitOutput,
) -> bool {
    let mark = (
        out.events.len(),
        out.problems.len(),
        out.records,
        out.skipped,
    );
    let mut counts = ChannelCounts::default();
    let live = unread_from(data).map_or(data, |used| &data[..used]);
    match fast::read_chunk(live, header, &mut counts, out) {
        Ok(()) => {
            out.channels.merge(counts);
            true
        }
        Err(why) => {
            tracing::debug!(chunk = number, "chunk read by the renderer: {why}");
            out.events.truncate(mark.0);
            out.problems.truncate(mark.1);
            (out.records, out.skipped) = (mark.2, mark.3);
            false
        }
    }
}

/// Reads a chunk through the crate's JSON renderer.
fn render_chunk(
    mut data: Box<EvtxChunkData>,
    settings: &Arc<ParserSettings>,
    out: &mut UnitOutput,
) {
    let number = data.number.unwrap_or(0);
    let (first, last) = (
        data.header.first_event_record_id,
        data.header.last_event_record_id,
    );
    let mut chunk = match data.parse(Arc::clone(settings)) {
        Ok(c) => c,
        Err(e) => {
            let lost = last.checked_sub(first).map_or(1, |n| n + 1);
            out.records += lost;
            out.bad(
                Location::Chunk(number),
                format!("{e}; its records ({first} to {last}) are skipped"),
                lost,
            );
            return;
        }
    };
    let mut host = None;
    let before = out.records;
    let mut last_seen: Option<u64> = None;
    for record in chunk.iter() {
        out.records += 1;
        let seen = match &record {
            Ok(r) => Some(r.event_record_id),
            Err(EvtxError::FailedToParseRecord { record_id, .. }) => Some(*record_id),
            Err(_) => None,
        };
        last_seen = last_seen.max(seen);
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let (at, reason) = locate(&e, Location::Chunk(number));
                out.bad(at, reason, 1);
                continue;
            }
        };
        let id = record.event_record_id;
        let json = match record.into_json_bytes() {
            Ok(j) => j.data,
            Err(e) => {
                let (at, reason) = locate(&e, Location::Record(id));
                out.bad(at, reason, 1);
                continue;
            }
        };
        read_record(&json, id, Location::Record(id), &mut host, out);
    }
    // A record whose size runs past the others ends the crate's walk early:
    // the records after the last one it reached, up to the last the header
    // names, are lost, and said so (no more than the header promised and the
    // walk did not count, so a damaged header id alone reports nothing).
    let promised = last.checked_sub(first).map_or(0, |n| n + 1);
    let after = last.saturating_sub(last_seen.unwrap_or(first.saturating_sub(1)));
    let missing = after.min(promised.saturating_sub(out.records - before));
    if missing > 0 {
        out.records += missing;
        out.bad(
            Location::Chunk(number),
            format!(
                "{missing} of its {promised} records ({first} to {last}) were not found (a \
                 damaged record size ends the walk early); they are skipped"
            ),
            missing,
        );
    }
}

/// Where an error of the crate happened (the chunk or record it names, else
/// `default`) and why, without the location repeated in the words.
fn locate(e: &EvtxError, default: Location) -> (Location, String) {
    match e {
        EvtxError::FailedToParseChunk { chunk_id, source } => (
            Location::Chunk(*chunk_id),
            format!("{}; the chunk's records are skipped", chain(&**source)),
        ),
        EvtxError::FailedToParseRecord { record_id, source } => {
            (Location::Record(*record_id), chain(&**source))
        }
        EvtxError::FailedToReadRecordAt {
            chunk,
            offset,
            source,
        } => (
            chunk.map_or(default, Location::Chunk),
            format!("record at offset {offset}: {}", chain(&**source)),
        ),
        other => (default, chain(other)),
    }
}

/// An error with its causes, `a: b: c`, since the crate's top-level messages
/// ("An error occurred while trying to deserialize evtx stream.") leave the
/// reason to their sources.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Reads a file's first bytes, for recognising its format.
pub fn head(path: &Path, n: usize) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(n);
    File::open(path)?.take(n as u64).read_to_end(&mut buf)?;
    Ok(buf)
}
