//! The check the `evtx` crate makes of a chunk's string table when it opens
//! the chunk (`EvtxChunk::new`), made without building the table: the crate
//! decodes every name into a `String` of a hash map, which a reader that
//! looks names up through template plans never asks for.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

/// Where the 64 string-table bucket offsets sit in a chunk header.
const BUCKETS_AT: usize = 128;
const BUCKETS: usize = 64;

/// The offsets of the names already read, as the crate keeps them to end a
/// chain that links back.
pub(super) type Seen = HashSet<u32, BuildHasherDefault<OffsetHasher>>;

/// Whether the crate opens a chunk of these bytes: every chain of names from
/// a bucket reads within the chunk and decodes. The walk is the crate's
/// (`StringCache::populate`): a chain ends at a zero link or at a name read
/// before, from any bucket. `seen` is scratch space.
pub(super) fn table_ok(chunk: &[u8], seen: &mut Seen) -> bool {
    seen.clear();
    for bucket in 0..BUCKETS {
        let Some(offset) = u32_at(chunk, BUCKETS_AT + 4 * bucket) else {
            return false;
        };
        if offset == 0 {
            continue;
        }
        let mut pos = offset as usize;
        if pos > chunk.len() {
            return false;
        }
        loop {
            let Some(next) = name_ok(chunk, pos) else {
                return false;
            };
            seen.insert(pos as u32);
            match next {
                0 => break,
                n if seen.contains(&n) => break,
                n if n as usize > chunk.len() => return false,
                n => pos = n as usize,
            }
        }
    }
    true
}

/// Checks the name entry at `pos` (link to the next, hash, length, UTF-16
/// units, NUL) as the crate reads it; its link.
fn name_ok(chunk: &[u8], pos: usize) -> Option<u32> {
    let next = u32_at(chunk, pos)?;
    let count = usize::from(u16::from_le_bytes(
        chunk.get(pos + 6..pos + 8)?.try_into().ok()?,
    ));
    let units = chunk.get(pos + 8..(pos + 8).checked_add(2 * count)?)?;
    // The terminating NUL is read (whatever its value) after the units.
    chunk.get(pos + 8 + 2 * count..pos + 10 + 2 * count)?;
    // Decoded up to the first NUL unit; an unpaired surrogate is an error.
    let text = units
        .chunks_exact(2)
        .map(|u| u16::from_le_bytes([u[0], u[1]]))
        .take_while(|&u| u != 0);
    char::decode_utf16(text).all(|c| c.is_ok()).then_some(next)
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        bytes.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

/// A hasher for small keys of chunk offsets (this module's, and the plan
/// maps'): a multiply per word, where SipHash's resistance to chosen keys
/// buys nothing and costs more than the lookup.
#[derive(Default)]
pub(super) struct OffsetHasher(u64);

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for OffsetHasher {
    fn finish(&self) -> u64 {
        // The product's well-mixed high bits to the low ones, which pick the
        // bucket.
        self.0.rotate_left(26)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(MIX);
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64);
    }
}

/// A `HashMap` hashed by [`OffsetHasher`].
pub(super) type OffsetMap<K, V> = std::collections::HashMap<K, V, BuildHasherDefault<OffsetHasher>>;

#[cfg(test)]
mod tests {
    use super::*;
    use evtx::{EvtxChunk, EvtxChunkHeader, ParserSettings};
    use std::sync::Arc;

    /// A chunk with a header and a string table of `names`, chained in
    /// pairs from the buckets.
    fn chunk(names: &[&str]) -> Vec<u8> {
        let mut data = vec![0u8; 65536];
        data[..8].copy_from_slice(b"ElfChnk\0");
        data[40..44].copy_from_slice(&128u32.to_le_bytes()); // header size
        let mut at = 512;
        for (i, pair) in names.chunks(2).enumerate() {
            data[BUCKETS_AT + 4 * i..BUCKETS_AT + 4 * i + 4]
                .copy_from_slice(&(at as u32).to_le_bytes());
            for (j, name) in pair.iter().enumerate() {
                let units: Vec<u16> = name.encode_utf16().collect();
                let size = 10 + 2 * units.len();
                let next = if j + 1 < pair.len() { at + size } else { 0 };
                data[at..at + 4].copy_from_slice(&(next as u32).to_le_bytes());
                data[at + 6..at + 8].copy_from_slice(&(units.len() as u16).to_le_bytes());
                for (k, u) in units.iter().enumerate() {
                    data[at + 8 + 2 * k..at + 10 + 2 * k].copy_from_slice(&u.to_le_bytes());
                }
                at += size;
            }
        }
        data
    }

    fn crate_opens(data: &[u8]) -> Option<bool> {
        let header = EvtxChunkHeader::from_bytes(data).ok()?;
        let settings = Arc::new(ParserSettings::new());
        Some(EvtxChunk::new(data, &header, settings).is_ok())
    }

    #[test]
    fn agrees_with_the_crate_on_damaged_tables() {
        let good = chunk(&[
            "Event", "System", "Provider", "Name", "EventID", "Data", "ü☃",
        ]);
        assert_eq!(crate_opens(&good), Some(true));
        assert!(table_ok(&good, &mut Seen::default()));
        // Every byte of the table and the buckets, set to a few values that
        // break lengths, links and surrogates.
        let mut seen = Seen::default();
        let (mut checked, mut rejected) = (0, 0);
        for at in (BUCKETS_AT..BUCKETS_AT + 32).chain(512..640) {
            for v in [0x00, 0x01, 0x7f, 0xd8, 0xdc, 0xff] {
                let mut data = good.clone();
                data[at] = v;
                let Some(expected) = crate_opens(&data) else {
                    continue;
                };
                assert_eq!(table_ok(&data, &mut seen), expected, "byte {at} = {v:#x}");
                checked += 1;
                rejected += usize::from(!expected);
            }
        }
        assert!(checked > 900 && rejected > 100, "{checked} {rejected}");
    }

    #[test]
    fn a_chain_that_links_back_ends() {
        let mut data = chunk(&["A", "B"]);
        // B links back to A.
        data[512 + 12..512 + 16].copy_from_slice(&512u32.to_le_bytes());
        assert_eq!(crate_opens(&data), Some(true));
        assert!(table_ok(&data, &mut Seen::default()));
    }
}
