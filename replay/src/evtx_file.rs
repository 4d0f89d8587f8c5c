//! Windows `.evtx` files through the `evtx` crate.
//!
//! A file is cut into its 64 KiB chunks on the reading thread (in record
//! order: a log that wrapped around starts at its oldest chunk); each chunk is
//! parsed on a worker, so one large file and many small ones both keep every
//! core busy. A record is rendered by the crate's compiled-template renderer
//! straight into JSON bytes, which the shared Windows record parser reads
//! without building a tree ([`crate::winlog`]); records of channels and ids
//! trawl does not map are only counted, their `EventData` never decoded.
//!
//! A chunk whose header is damaged is reported (`FILE: chunk N: reason`) and
//! skipped; a record that cannot be parsed is reported with its chunk and
//! record id and skipped; the rest of the file is still read.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use evtx::err::EvtxError;
use evtx::{EvtxChunkData, EvtxParser, ParserSettings};

use crate::unit::UnitOutput;
use crate::winlog::read_record;
use crate::Location;

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
    let file = File::open(path).map_err(|e| format!("cannot open trace: {e}"))?;
    let parser = EvtxParser::from_read_seek(file)
        .map_err(|e| format!("not a readable EVTX file: {}", chain(&e)))?;
    Ok(parser
        .into_chunks()
        .map(|c| c.map(Box::new).map_err(|e| locate(&e, Location::File))))
}

/// Parses one chunk's records into `out`: events for mapped records, a count
/// per channel and id for every record, a problem per bad record.
pub fn read_chunk(
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
    for record in chunk.iter() {
        out.records += 1;
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
