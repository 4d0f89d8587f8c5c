//! The chunks of an EVTX file held in memory, walked as the `evtx` crate's
//! parser walks a file (same order, same chunks skipped, same errors), but
//! without its costs for a file already in memory: a seek and a read per
//! chunk header, and a byte-by-byte scan of every empty chunk (a third of
//! the chunk slots of typical exported logs are empty).
//!
//! The bytes may stop short of the file's end when the rest is known to be
//! zeros (a hole at the end of a sparse file, which is not read): a chunk
//! slot there is empty without being looked at.
//!
//! The crate's walk, mirrored here: chunks from the one holding the oldest
//! records (a log that wrapped around starts mid-file) to the end, then from
//! the start up to it; an all-zero chunk slot is skipped; a slot cut short
//! at the end of the file is an error unless it lies past the chunk count
//! the file's size gives.

use evtx::err::{ChunkError, EvtxError};
use evtx::{EvtxChunkData, EvtxChunkHeader, EvtxFileHeader, EvtxParser};

/// Where chunk 0 starts.
pub(super) const FILE_HEADER: usize = 4096;
/// The size of a chunk.
pub(super) const CHUNK: usize = 65536;
/// The size of a chunk's header.
pub(super) const CHUNK_HEADER: usize = 512;

/// The chunks of an in-memory EVTX file in record order, over bytes the
/// walk owns (a `Vec`) or borrows (a worker's reused read buffer).
pub(super) struct MemoryChunks<B> {
    bytes: B,
    /// The file's size: past the bytes held, up to this, it is zeros.
    len: usize,
    /// Chunk slots the file's size holds.
    count: u64,
    validate: bool,
    next: u64,
    oldest: u64,
    wrapped: bool,
}

impl<B: AsRef<[u8]>> MemoryChunks<B> {
    /// Checks the file header through the crate (its errors are the
    /// crate's), then finds the chunk holding the oldest records. `len` is
    /// the file's size, `bytes` its first bytes (all of them, or up to where
    /// only zeros follow).
    pub(super) fn new(bytes: B, len: usize, validate: bool) -> Result<Self, EvtxError> {
        let all = bytes.as_ref();
        let len = len.max(all.len());
        // The header block is read in place when it is held whole: the
        // crate's parser would copy it into a zeroed block, ask the stream
        // its length and allocate its settings, for every file. Any header
        // it would refuse goes through the crate, for the crate's error, and
        // so does one with a wrong checksum, for the crate's warning.
        let in_place = all
            .get(..FILE_HEADER)
            .and_then(|block| EvtxFileHeader::from_bytes(block).ok())
            .filter(EvtxFileHeader::validate_checksum)
            .map(|h| usize::from(h.header_block_size))
            .filter(|&size| size <= len);
        let header_size = match in_place {
            Some(size) => size,
            None => {
                let parser = EvtxParser::from_read_seek(Padded::new(all, len))?;
                usize::from(parser.header().header_block_size)
            }
        };
        let count = (len.saturating_sub(header_size) / CHUNK) as u64;
        let mut oldest = (u64::MAX, 0);
        for n in 0..count {
            let head = match slot(all, len, n, CHUNK_HEADER) {
                Slot::Held(_, head) => head,
                // A zero header is no chunk's.
                Slot::Zero => continue,
                Slot::Short => break,
            };
            let Ok(h) = EvtxChunkHeader::from_bytes(head) else {
                continue;
            };
            // A reversed range says nothing about where its records belong.
            if h.first_event_record_id <= h.last_event_record_id
                && h.first_event_record_id < oldest.0
            {
                oldest = (h.first_event_record_id, n);
            }
        }
        Ok(MemoryChunks {
            bytes,
            len,
            count,
            validate,
            next: oldest.1,
            oldest: oldest.1,
            wrapped: false,
        })
    }

    /// The next non-empty chunk at or after `n` and before `end`: its slot
    /// number and where its bytes start, or the error of a slot cut short.
    fn find_slot(&self, mut n: u64, end: u64) -> Option<(Result<usize, EvtxError>, u64)> {
        loop {
            if n >= end {
                return None;
            }
            match slot(self.bytes.as_ref(), self.len, n, CHUNK) {
                Slot::Held(start, data) if !is_zero(data) => return Some((Ok(start), n)),
                Slot::Held(..) | Slot::Zero => n = n.checked_add(1)?,
                // Past the chunk count, a short slot is the end of the file.
                Slot::Short if n >= self.count => return None,
                Slot::Short => {
                    return Some((Err(chunk_error(n, ChunkError::IncompleteChunk)), n));
                }
            }
        }
    }

    /// The next chunk slot in record order: its number and bytes (not yet
    /// checked as a chunk: see [`chunk_data`]), or why it cannot be read.
    pub(super) fn next_slot(&mut self) -> Option<Result<(u64, &[u8]), EvtxError>> {
        loop {
            let end = if self.wrapped { self.oldest } else { u64::MAX };
            if let Some((found, n)) = self.find_slot(self.next, end) {
                self.next = n.checked_add(1)?;
                return Some(found.map(|start| (n, &self.bytes.as_ref()[start..start + CHUNK])));
            }
            if self.wrapped || self.oldest == 0 {
                return None;
            }
            self.wrapped = true;
            self.next = 0;
        }
    }

    /// Whether chunks are made with their checksums validated.
    pub(super) fn validates(&self) -> bool {
        self.validate
    }
}

impl<B: AsRef<[u8]>> Iterator for MemoryChunks<B> {
    type Item = Result<EvtxChunkData, EvtxError>;

    fn next(&mut self) -> Option<Self::Item> {
        let validate = self.validate;
        Some(match self.next_slot()? {
            Ok((n, data)) => chunk_data(n, data, validate),
            Err(e) => Err(e),
        })
    }
}

/// Slot `n`'s bytes as a chunk the crate holds (a copy), or the crate's
/// error for its header.
pub(super) fn chunk_data(n: u64, data: &[u8], validate: bool) -> Result<EvtxChunkData, EvtxError> {
    chunk_data_of(n, data.to_vec(), validate)
}

/// [`chunk_data`] of a slot from a whole-file read into a reused buffer:
/// with zeros for the bytes that read leaves unread ([`super::unread_from`]),
/// which an earlier file left there.
pub(super) fn chunk_data_read_used(
    n: u64,
    data: &[u8],
    validate: bool,
) -> Result<EvtxChunkData, EvtxError> {
    let mut bytes = data.to_vec();
    if let Some(used) = super::unread_from(data) {
        bytes[used..].fill(0);
    }
    chunk_data_of(n, bytes, validate)
}

fn chunk_data_of(n: u64, bytes: Vec<u8>, validate: bool) -> Result<EvtxChunkData, EvtxError> {
    EvtxChunkData::new(bytes, validate)
        .map(|mut c| {
            c.number = Some(n);
            c
        })
        .map_err(|e| chunk_error(n, e))
}

/// The first bytes of a chunk slot.
enum Slot<'a> {
    /// Held: where they start, and they.
    Held(usize, &'a [u8]),
    /// In the file, but past the bytes held: zeros.
    Zero,
    /// Not all in the file.
    Short,
}

/// The first `want` bytes of chunk slot `n` of a file of `len` bytes whose
/// first are `bytes` (the rest zeros).
fn slot(bytes: &[u8], len: usize, n: u64, want: usize) -> Slot<'_> {
    let start = usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_mul(CHUNK)?.checked_add(FILE_HEADER));
    let Some((start, end)) = start.and_then(|s| Some((s, s.checked_add(want)?))) else {
        return Slot::Short;
    };
    match bytes.get(start..end) {
        Some(held) => Slot::Held(start, held),
        // Bytes stop short of the file only where zeros alone follow, after
        // the last slot with data in it, held whole (see `read_used`): a
        // slot that does not fit in them holds none of the data.
        None if end <= len => Slot::Zero,
        None => Slot::Short,
    }
}

/// A file's first bytes followed by zeros up to its size, read as the file
/// (for the crate's check of the file header, which also takes its size).
struct Padded<'a> {
    bytes: &'a [u8],
    len: u64,
    pos: u64,
}

impl<'a> Padded<'a> {
    fn new(bytes: &'a [u8], len: usize) -> Self {
        Padded {
            bytes,
            len: len as u64,
            pos: 0,
        }
    }
}

impl std::io::Read for Padded<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let held = usize::try_from(self.pos)
            .ok()
            .and_then(|p| self.bytes.get(p..))
            .unwrap_or_default();
        let copied = n.min(held.len());
        buf[..copied].copy_from_slice(&held[..copied]);
        buf[copied..n].fill(0);
        self.pos += n as u64;
        Ok(n)
    }
}

impl std::io::Seek for Padded<'_> {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        let base = match to {
            std::io::SeekFrom::Start(p) => Some(p),
            std::io::SeekFrom::End(d) => self.len.checked_add_signed(d),
            std::io::SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let pos = base.ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "seek before the start")
        })?;
        self.pos = pos;
        Ok(pos)
    }
}

/// Whether every byte is zero: a kilobyte at a time, eight bytes at a time
/// within it, so a chunk that starts with its magic is known at once.
fn is_zero(data: &[u8]) -> bool {
    data.chunks(1024).all(|block| {
        let (words, tail) = block.as_chunks::<8>();
        words
            .iter()
            .fold(0u64, |acc, w| acc | u64::from_ne_bytes(*w))
            == 0
            && tail.iter().all(|&b| b == 0)
    })
}

fn chunk_error(chunk_id: u64, e: ChunkError) -> EvtxError {
    EvtxError::FailedToParseChunk {
        chunk_id,
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file header block: `block_size` as its header block size, its
    /// checksum right unless `bad_crc`.
    fn header(block_size: u16, bad_crc: bool) -> Vec<u8> {
        let mut b = vec![0u8; FILE_HEADER];
        b[..8].copy_from_slice(b"ElfFile\0");
        b[24..32].copy_from_slice(&1u64.to_le_bytes());
        b[32..36].copy_from_slice(&128u32.to_le_bytes());
        b[36..38].copy_from_slice(&1u16.to_le_bytes());
        b[38..40].copy_from_slice(&3u16.to_le_bytes());
        b[40..42].copy_from_slice(&block_size.to_le_bytes());
        b[42..44].copy_from_slice(&1u16.to_le_bytes());
        let crc = crc32fast::hash(&b[..120]) ^ u32::from(bad_crc);
        b[124..128].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Chunk slots as the crate's parser alone counts them, or its error.
    fn crates(all: &[u8], len: usize) -> Result<u64, String> {
        let parser =
            EvtxParser::from_read_seek(Padded::new(all, len)).map_err(|e| e.to_string())?;
        let size = usize::from(parser.header().header_block_size);
        Ok((len.saturating_sub(size) / CHUNK) as u64)
    }

    #[test]
    fn the_header_read_in_place_gives_the_crates_count_and_errors() {
        let mut cases = Vec::new();
        for block_size in [0, 128, 4096, 8192, 0xffff] {
            for bad_crc in [false, true] {
                let block = header(block_size, bad_crc);
                // Held whole, with and without chunk slots after it (zeros);
                // shorter than its block size; held only in part.
                for len in [FILE_HEADER, FILE_HEADER + 3 * CHUNK, 8192 + CHUNK, 100] {
                    cases.push((block.clone(), len));
                }
                cases.push((block[..1000].to_vec(), FILE_HEADER + CHUNK));
            }
        }
        let mut not_evtx = header(4096, false);
        not_evtx[0] = b'X';
        cases.push((not_evtx, FILE_HEADER));
        for (all, len) in cases {
            let all = &all[..all.len().min(len)];
            let ours = MemoryChunks::new(all, len, false)
                .map(|m| m.count)
                .map_err(|e| e.to_string());
            assert_eq!(ours, crates(all, len), "held {}, len {len}", all.len());
        }
    }
}
