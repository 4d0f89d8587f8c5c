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

/// The chunks of an in-memory EVTX file in record order.
pub(super) struct MemoryChunks {
    bytes: Vec<u8>,
    /// Chunk slots the file's size holds.
    count: u64,
    validate: bool,
    next: u64,
    oldest: u64,
    wrapped: bool,
}

impl MemoryChunks {
    /// Checks the file header through the crate (its errors are the
    /// crate's), then finds the chunk holding the oldest records.
    pub(super) fn new(bytes: Vec<u8>, validate: bool) -> Result<Self, EvtxError> {
        let parser = EvtxParser::from_read_seek(std::io::Cursor::new(&bytes[..]))?;
        let header_size = usize::from(parser.header().header_block_size);
        let count = (bytes.len().saturating_sub(header_size) / CHUNK) as u64;
        let mut oldest = (u64::MAX, 0);
        for n in 0..count {
            let Some(head) = slot(&bytes, n, CHUNK_HEADER) else {
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

    /// The next non-empty chunk at or after `n` and before `end`.
    fn find(&mut self, mut n: u64, end: u64) -> Option<(Result<EvtxChunkData, EvtxError>, u64)> {
        loop {
            if n >= end {
                return None;
            }
            let Some(data) = slot(&self.bytes, n, CHUNK) else {
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
            let chunk = EvtxChunkData::new(data.to_vec(), self.validate)
                .map(|mut c| {
                    c.number = Some(n);
                    c
                })
                .map_err(|e| chunk_error(n, e));
            return Some((chunk, n));
        }
    }
}

impl Iterator for MemoryChunks {
    type Item = Result<EvtxChunkData, EvtxError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let end = if self.wrapped { self.oldest } else { u64::MAX };
            if let Some((chunk, n)) = self.find(self.next, end) {
                self.next = n.checked_add(1)?;
                return Some(chunk);
            }
            if self.wrapped || self.oldest == 0 {
                return None;
            }
            self.wrapped = true;
            self.next = 0;
        }
    }
}

/// The first `len` bytes of chunk slot `n`, if the file holds them all.
fn slot(bytes: &[u8], n: u64, len: usize) -> Option<&[u8]> {
    let start = usize::try_from(n)
        .ok()?
        .checked_mul(CHUNK)?
        .checked_add(FILE_HEADER)?;
    bytes.get(start..start.checked_add(len)?)
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
