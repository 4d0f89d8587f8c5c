//! The chunks of an EVTX file held in memory, walked as the `evtx` crate's
//! parser walks a file (same order, same chunks skipped, same errors), but
//! without its costs for a file already in memory: a seek and a read per
//! chunk header, and a byte-by-byte scan of every empty chunk (a third of
//! the chunk slots of typical exported logs are empty).
//!
//! The crate's walk, mirrored here: chunks from the one holding the oldest
//! records (a log that wrapped around starts mid-file) to the end, then from
//! the start up to it; an all-zero chunk slot is skipped; a slot cut short
//! at the end of the file is an error unless it lies past the chunk count
//! the file's size gives.

use evtx::err::{ChunkError, EvtxError};
use evtx::{EvtxChunkData, EvtxChunkHeader, EvtxParser};

/// Where chunk 0 starts.
const FILE_HEADER: usize = 4096;
/// The size of a chunk.
const CHUNK: usize = 65536;
/// The size of a chunk's header.
const CHUNK_HEADER: usize = 512;

/// The chunks of an in-memory EVTX file in record order, over bytes the
/// walk owns (a `Vec`) or borrows (a worker's reused read buffer).
pub(super) struct MemoryChunks<B> {
    bytes: B,
    /// Chunk slots the file's size holds.
    count: u64,
    validate: bool,
    next: u64,
    oldest: u64,
    wrapped: bool,
}

impl<B: AsRef<[u8]>> MemoryChunks<B> {
    /// Checks the file header through the crate (its errors are the
    /// crate's), then finds the chunk holding the oldest records.
    pub(super) fn new(bytes: B, validate: bool) -> Result<Self, EvtxError> {
        let all = bytes.as_ref();
        let parser = EvtxParser::from_read_seek(std::io::Cursor::new(all))?;
        let header_size = usize::from(parser.header().header_block_size);
        let count = (all.len().saturating_sub(header_size) / CHUNK) as u64;
        let mut oldest = (u64::MAX, 0);
        for n in 0..count {
            let Some((_, head)) = slot(all, n, CHUNK_HEADER) else {
                break;
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
            let Some((start, data)) = slot(self.bytes.as_ref(), n, CHUNK) else {
                // Past the chunk count, a short slot is the end of the file.
                if n >= self.count {
                    return None;
                }
                return Some((Err(chunk_error(n, ChunkError::IncompleteChunk)), n));
            };
            if is_zero(data) {
                n = n.checked_add(1)?;
                continue;
            }
            return Some((Ok(start), n));
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
    EvtxChunkData::new(data.to_vec(), validate)
        .map(|mut c| {
            c.number = Some(n);
            c
        })
        .map_err(|e| chunk_error(n, e))
}

/// Where chunk slot `n` starts, and its first `len` bytes, if the file
/// holds them all.
fn slot(bytes: &[u8], n: u64, len: usize) -> Option<(usize, &[u8])> {
    let start = usize::try_from(n)
        .ok()?
        .checked_mul(CHUNK)?
        .checked_add(FILE_HEADER)?;
    Some((start, bytes.get(start..start.checked_add(len)?)?))
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
