//! The atoms a field's text sets, remembered per field from event to event.
//!
//! On an endpoint most field values repeat: the same `Image`, `ParentImage`,
//! `Company`, `Product`, `Hashes` and working directory come back in event
//! after event (on the 277 logs of `evtx-attack-samples`, 80–99% of those
//! fields' bytes repeat an earlier value; only `CommandLine` is mostly new).
//! Which literals a text holds is a pure function of the field's scan and
//! the text, so a repeated value needs no scan: its atoms are looked up by
//! the text's hash, the text compared, and the atoms set as the scan would
//! have set them.
//!
//! Each field's table is small and direct-mapped (a new value takes its
//! slot's place), its memory kept from use to use: nothing is allocated per
//! event once the slots have grown to their texts. Its size is bounded: per
//! field scan and thread, 256 slots of at most 512 bytes of text and the
//! text's atoms (at most about 150 KiB, some 20 KiB for typical values);
//! a field whose values are mostly new (`CommandLine`) pays a hash and a
//! copy of the text per event for the ones that do repeat.
//!
//! Longer texts, up to 4 KiB, have 32 slots of their own (at most 128 KiB
//! more of text, besides their atoms, only for fields that hold such
//! texts). A long command line is
//! most often new (an encoded script, a generated path), and copying every
//! one would cost more than the repeats save: a long text is copied only
//! when its hash was seen before, on its second sighting (or when it shares
//! its length and both ends with a text just seen: see [`hash`]). Those that do
//! repeat (a service's or a scheduled task's start, over and over) are then
//! not scanned again: on the 277 logs of `evtx-attack-samples`, 39 of the 48
//! command lines over 512 bytes repeat an earlier one.

/// Slots per field for texts of at most [`SHORT_TEXT`] bytes (a power of
/// two).
const SLOTS: usize = 256;
/// Slots per field for longer texts (a power of two), and the hashes of
/// the long texts seen once.
const LONG_SLOTS: usize = 32;
const SEEN: usize = 64;
/// Texts up to this long go to the main slots; longer ones to the long
/// slots, on their second sighting.
const SHORT_TEXT: usize = 512;
/// Texts longer than this are always scanned (and never copied here).
pub(super) const MAX_TEXT: usize = 4096;

/// One field's remembered texts.
#[derive(Debug, Default)]
pub(super) struct FieldMemo {
    slots: Vec<Slot>,
    long: Vec<Slot>,
    /// The hashes of long texts seen once and not copied (0: none).
    seen: Vec<u64>,
}

#[derive(Debug, Default)]
struct Slot {
    hash: u64,
    text: Vec<u8>,
    atoms: Vec<u32>,
    /// Names this text while it stays here (see [`TextId`]).
    id: TextId,
    filled: bool,
}

/// Names one remembered text of one field scan for as long as its slot
/// holds it: no other text, in any field scan of a [`super::Scratch`], is
/// ever given the same id (they are counted up from 1 in a `u64`, which
/// does not wrap in practice). What a rule decides on the texts of given ids
/// is therefore decided for good, when those texts are string values (see
/// [`super::verdicts`]: other values are not named by their text).
pub(super) type TextId = u64;

/// A remembered text: the atoms it sets and its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Remembered<'a> {
    pub(super) atoms: &'a [u32],
    pub(super) id: TextId,
}

impl FieldMemo {
    /// The atoms remembered for `text` (of hash `hash`), and its id, if it
    /// is the text its slot holds.
    pub(super) fn get(&self, hash: u64, text: &[u8]) -> Option<Remembered<'_>> {
        let slot = if text.len() > SHORT_TEXT {
            self.long.get(long_slot_of(hash))?
        } else {
            self.slots.get(slot_of(hash))?
        };
        (slot.filled && slot.hash == hash && slot.text == text).then_some(Remembered {
            atoms: &slot.atoms,
            id: slot.id,
        })
    }

    /// Forgets every text (keeping the memory).
    pub(super) fn clear(&mut self) {
        self.slots.iter_mut().for_each(|s| s.filled = false);
        self.long.iter_mut().for_each(|s| s.filled = false);
        self.seen.iter_mut().for_each(|h| *h = 0);
    }

    /// Whether a text of `len` bytes and hash `hash`, not remembered, is to
    /// be: a short one always; a long one when its hash was seen before
    /// (else its hash is noted, for next time).
    pub(super) fn admits(&mut self, hash: u64, len: usize) -> bool {
        if len <= SHORT_TEXT {
            return true;
        }
        if self.seen.is_empty() {
            self.seen.resize(SEEN, 0);
        }
        let seen = &mut self.seen[(hash >> (64 - SEEN.trailing_zeros())) as usize];
        if *seen == hash {
            return true;
        }
        *seen = hash;
        false
    }

    /// Remembers that `text` (of hash `hash`) sets `atoms`, under the new
    /// id `id`.
    pub(super) fn put(&mut self, hash: u64, text: &[u8], atoms: &[u32], id: TextId) {
        let (slots, n, at) = if text.len() > SHORT_TEXT {
            (&mut self.long, LONG_SLOTS, long_slot_of(hash))
        } else {
            (&mut self.slots, SLOTS, slot_of(hash))
        };
        if slots.is_empty() {
            slots.resize_with(n, Slot::default);
        }
        let slot = &mut slots[at];
        slot.hash = hash;
        slot.text.clear();
        slot.text.extend_from_slice(text);
        slot.atoms.clear();
        slot.atoms.extend_from_slice(atoms);
        slot.id = id;
        slot.filled = true;
    }
}

/// The slot of a hash: its top bits, the best mixed by the multiply.
fn slot_of(hash: u64) -> usize {
    (hash >> (64 - SLOTS.trailing_zeros())) as usize
}

/// The long slot of a hash: its top bits too (the seen hashes are keyed by
/// them as well, but compared whole).
fn long_slot_of(hash: u64) -> usize {
    (hash >> (64 - LONG_SLOTS.trailing_zeros())) as usize
}

/// A fast hash of a field's text, eight bytes at a time (FxHash's mixing):
/// texts are compared in full on a match, so it needs to spread well, not
/// to resist anyone.
///
/// A text of more than 64 bytes is hashed by its length and its first and
/// last 32 bytes only. Two such texts of one length that differ only in
/// between share a slot (and one may push the other out), which costs a
/// scan, never a wrong answer. Hashing them whole was a serial chain of
/// multiplies, a few thousand cycles for a command line of some kilobytes
/// (7% of the bench corpus's events): timed in turn in one process,
/// matching whole events was 1.4–2.3% faster with the sampled hash, and
/// sampling only texts of up to 512 bytes gained nothing.
///
/// The price, for texts over [`SHORT_TEXT`] bytes: a new one that shares
/// its length and both ends with one seen just before (a Java or installer
/// command line with a new folder in the middle) is taken for that one's
/// second sighting (see [`FieldMemo::admits`]) and copied: a copy of at
/// most 4 KiB beside a scan of the same bytes, which costs about a hundred
/// times as much (some 14 TSC ticks a byte).
#[inline]
pub(super) fn hash(text: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let step = |h: u64, w: &[u8; 8]| (h.rotate_left(5) ^ u64::from_le_bytes(*w)).wrapping_mul(K);
    let mut h = text.len() as u64;
    if text.len() > 2 * SAMPLED {
        let head = text[..SAMPLED].as_chunks::<8>().0;
        let tail = text[text.len() - SAMPLED..].as_chunks::<8>().0;
        for w in head {
            h = step(h, w);
        }
        for w in tail {
            h = step(h, w);
        }
        return h;
    }
    let (words, tail) = text.as_chunks::<8>();
    for w in words {
        h = step(h, w);
    }
    step(h, &tail_word(tail).to_le_bytes())
}

/// How many bytes of each end of a long text [`hash`] reads.
const SAMPLED: usize = 32;

/// The last 0–7 bytes of a text as one word, every byte in it: two
/// overlapping 4-byte loads, or the first, middle and last byte. Copying
/// them into a zeroed word called `memcpy` once per field per event, 5% of
/// the matcher's time on short command lines. Tails of one length are told
/// apart by it (the text's length is hashed first).
fn tail_word(tail: &[u8]) -> u64 {
    let n = tail.len();
    if n >= 4 {
        let lo = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
        let hi = u32::from_le_bytes([tail[n - 4], tail[n - 3], tail[n - 2], tail[n - 1]]);
        u64::from(lo) | u64::from(hi) << 32
    } else if n > 0 {
        u64::from(tail[0]) | u64::from(tail[n / 2]) << 8 | u64::from(tail[n - 1]) << 16
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_answers_only_for_its_own_text() {
        let mut m = FieldMemo::default();
        let (a, b) = (
            b"C:\\Windows\\System32\\cmd.exe".as_slice(),
            b"C:\\Windows\\System32\\cmd.exf".as_slice(),
        );
        assert_ne!(hash(a), hash(b));
        let seen = |atoms, id| Some(Remembered { atoms, id });
        assert_eq!(m.get(hash(a), a), None);
        m.put(hash(a), a, &[3, 7], 1);
        assert_eq!(m.get(hash(a), a), seen(&[3, 7], 1));
        assert_eq!(m.get(hash(b), b), None);
        // A text sharing the hash (forced) but not the bytes is not taken.
        assert_eq!(m.get(hash(a), b), None);
        m.clear();
        assert_eq!(m.get(hash(a), a), None);
        m.put(hash(a), a, &[3, 7], 2);
        // A new text in the same slot replaces the old one, id and all.
        let h = hash(a) ^ 1;
        m.put(h, b, &[], 3);
        assert_eq!(m.get(h, b), seen(&[], 3));
        assert_eq!(m.get(hash(a), a), None);
        // Texts that differ only past a word, or by length, hash apart.
        assert_ne!(hash(b"12345678"), hash(b"12345678\0"));
        assert_ne!(hash(b""), hash(b"\0"));
    }

    #[test]
    fn a_long_text_is_hashed_by_its_ends_and_still_told_apart_in_full() {
        // Up to 64 bytes, every byte counts.
        let short: Vec<u8> = (1..=64).collect();
        for p in 0..short.len() {
            let mut other = short.clone();
            other[p] ^= 0x20;
            assert_ne!(hash(&short), hash(&other), "byte {p}");
        }
        // Past that, the length and 32 bytes at each end.
        let long: Vec<u8> = (0..200).map(|i| b'a' + (i % 26) as u8).collect();
        let mut middle = long.clone();
        middle[100] = b'#';
        assert_eq!(hash(&long), hash(&middle));
        for p in [0, 31, 168, 199] {
            let mut end = long.clone();
            end[p] = b'#';
            assert_ne!(hash(&long), hash(&end), "byte {p}");
        }
        assert_ne!(hash(&long), hash(&long[..199]));
        // Sharing a hash, the texts still get their own answers.
        let mut m = FieldMemo::default();
        m.put(hash(&long), &long, &[1], 1);
        assert_eq!(m.get(hash(&middle), &middle), None);
        m.put(hash(&middle), &middle, &[2], 2);
        assert_eq!(
            m.get(hash(&middle), &middle).map(|r| r.atoms),
            Some(&[2][..])
        );
        assert_eq!(m.get(hash(&long), &long), None);
    }

    #[test]
    fn every_byte_of_a_short_tail_is_hashed() {
        for n in 0..8 {
            let text: Vec<u8> = (1..=n as u8).collect();
            for p in 0..n {
                let mut other = text.clone();
                other[p] ^= 0x20;
                assert_ne!(tail_word(&text), tail_word(&other), "length {n}, byte {p}");
                assert_ne!(hash(&text), hash(&other), "length {n}, byte {p}");
            }
        }
        // Past eight bytes (17 here), the tail still counts.
        assert_ne!(hash(b"C:\\Windows\\ab.exe"), hash(b"C:\\Windows\\ab.exf"));
    }
}
