//! The `contains` literals that wake rules, found with a small filter over
//! the field's lower-cased text instead of an Aho-Corasick automaton.
//!
//! An automaton over thousands of literals (SigmaHQ has some 6,000 for
//! `CommandLine`) is megabytes of states: each byte of text is a likely cache
//! miss, on a busy endpoint most of all. Here each literal is represented by
//! its rarest four bytes (those fewest of `typical`'s ordinary values hold,
//! then by a byte-frequency table), or by its first two or one when
//! shorter. One pass over the text reads every 4-byte window, tests one bit
//! of a 16 KiB bitmap (the hash of every literal's window), and only
//! on a set bit looks the window up, tests four more bytes of each literal
//! that holds it, and verifies whole literals there. The
//! hot data fits in the first-level cache; a window that starts no literal,
//! nearly all of them, costs a few instructions.

use super::compile::LitUse;

/// log2 of the 4-byte-window bitmap's size in bits (16 KiB).
const BITS: u32 = 17;

/// One literal spelling: lower-cased bytes, and the offset of its filter
/// window.
#[derive(Debug)]
struct Entry {
    /// Range in `bytes`.
    start: u32,
    len: u32,
    /// Where the filter window sits in the literal.
    offset: u32,
    /// Range in `uses`.
    uses: (u32, u32),
}

/// A literal whose filter window was seen: its entry, and four more of its
/// bytes and where they sit from the window (`rel`, 0 when the literal is
/// the window). Many literals share a window (`ble-` is in ten of
/// `enable-…` and `disable-…`), and where the text holds the window the
/// literal is rarely there: the text's four bytes at `rel` tell most such
/// misses apart from the list itself, without reading the literal's entry
/// and bytes elsewhere in memory.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    id: u32,
    check: u32,
    rel: i32,
}

/// The wake literals of one field.
#[derive(Debug)]
pub(super) struct GramScan {
    bytes: Vec<u8>,
    entries: Vec<Entry>,
    uses: Vec<LitUse>,
    /// Bit per hash of a 4-byte window some literal holds. A fixed-size
    /// array: the hash is in range by construction, so the scan's hot loop
    /// has no bounds check.
    bitmap: Box<[u64; 1 << (BITS - 6)]>,
    /// Open-addressing table: window -> range in `by_window`.
    table: Vec<(u32, u32, u32)>,
    /// Per window, the literals that hold it, each with a second window
    /// of its own to test before the literal is read.
    by_window: Vec<Candidate>,
    /// Literals of two or three bytes, by their first two bytes; of one
    /// byte, by it (the two-byte key `b << 8 | 0`, flagged in `one_byte`).
    short_bitmap: Box<[u64; 1 << (16 - 6)]>,
    /// `short_bitmap` with every key a one-byte literal starts (`b, any`)
    /// added: the one test per position of the scan's main loop.
    short_filter: Box<[u64; 1 << (16 - 6)]>,
    /// Each short literal: its key, its third byte if it has one (tested
    /// before its entry is read: ` -o` is keyed by ` -`, in most command
    /// lines), its entry.
    short: Vec<(u16, Option<u8>, u32)>,
    /// Where in `short` the keys of each high byte start (`short` is
    /// sorted by key, so they are together): a hit's candidates at once,
    /// not by a binary search.
    short_from: Box<[u32; 257]>,
    one_byte: [bool; 256],
}

fn hash(w: u32) -> u32 {
    w.wrapping_mul(0x9E37_79B1) >> (32 - BITS)
}

/// How common the bytes of a window are in text, summed (see
/// [`commonness`]).
fn byte_cost(window: [u8; 4]) -> u32 {
    window.iter().map(|&b| commonness(b)).sum()
}

/// How common a byte is in text (higher: more common). Letters and the
/// separators of command lines rank high; digits and punctuation lower.
fn commonness(b: u8) -> u32 {
    regex_syntax::hir::literal::rank(b) as u32
}

impl GramScan {
    /// Builds the filter over `(spelling, use)` pairs.
    pub(super) fn build(lits: Vec<(String, LitUse)>) -> GramScan {
        let mut g = GramScan {
            bytes: Vec::new(),
            entries: Vec::new(),
            uses: Vec::new(),
            bitmap: Box::new([0; 1 << (BITS - 6)]),
            table: Vec::new(),
            by_window: Vec::new(),
            short_bitmap: Box::new([0; 1 << (16 - 6)]),
            short_filter: Box::new([0; 1 << (16 - 6)]),
            short: Vec::new(),
            short_from: Box::new([0; 257]),
            one_byte: [false; 256],
        };
        // One entry per distinct lower-cased spelling.
        let mut index: std::collections::HashMap<Vec<u8>, usize> = Default::default();
        let mut grouped: Vec<(Vec<u8>, Vec<LitUse>)> = Vec::new();
        for (spelling, u) in lits {
            let key = spelling.into_bytes().to_ascii_lowercase();
            let i = *index.entry(key.clone()).or_insert_with(|| {
                grouped.push((key, Vec::new()));
                grouped.len() - 1
            });
            grouped[i].1.push(u);
        }
        let mut windows: Vec<(u32, u32)> = Vec::new();
        let mut checks: Vec<(u32, i32)> = Vec::new();
        for (key, uses) in grouped {
            let id = g.entries.len() as u32;
            let offset = if key.len() >= 4 {
                // The rarest window: the one fewest typical values hold, then
                // the lowest byte cost, the first on ties. By the byte table
                // alone, `c:\w` and `m32\` passed for rare, and a text
                // holding one had up to 21 literals verified there (the
                // matcher: 137.8 against 129.9 million instructions over
                // 5,000 bench corpus events).
                let rarity = |o: usize| {
                    let w = [key[o], key[o + 1], key[o + 2], key[o + 3]];
                    (super::typical::window_count(w), byte_cost(w))
                };
                let best = (0..=key.len() - 4)
                    .min_by_key(|&o| rarity(o))
                    .expect("a literal of four bytes or more has a window");
                let w = u32::from_le_bytes(key[best..best + 4].try_into().expect("4 bytes"));
                windows.push((w, id));
                // The literal's other four bytes overlapping the window
                // least: its last four, or its first.
                let at = if key.len() - 4 - best >= best {
                    key.len() - 4
                } else {
                    0
                };
                let check = u32::from_le_bytes(key[at..at + 4].try_into().expect("4 bytes"));
                checks.push((check, at as i32 - best as i32));
                let h = hash(w);
                g.bitmap[(h >> 6) as usize] |= 1 << (h & 63);
                best
            } else {
                let k = match key.len() {
                    1 => {
                        g.one_byte[key[0] as usize] = true;
                        u16::from(key[0]) << 8
                    }
                    _ => u16::from_le_bytes([key[0], key[1]]),
                };
                g.short_bitmap[(k >> 6) as usize] |= 1 << (k & 63);
                // The filter is tested with the two bytes at a position: a
                // one-byte literal is there whatever byte follows it.
                let nexts = if key.len() == 1 {
                    0..=255
                } else {
                    key[1]..=key[1]
                };
                for next in nexts {
                    let f = u16::from_le_bytes([key[0], next]);
                    g.short_filter[(f >> 6) as usize] |= 1 << (f & 63);
                }
                g.short.push((k, key.get(2).copied(), id));
                checks.push((0, 0));
                0
            };
            let start = g.bytes.len() as u32;
            g.bytes.extend_from_slice(&key);
            let us = g.uses.len() as u32;
            g.uses.extend(uses);
            g.entries.push(Entry {
                start,
                len: key.len() as u32,
                offset: offset as u32,
                uses: (us, g.uses.len() as u32),
            });
        }
        g.short.sort_unstable();
        for h in 0..=256 {
            g.short_from[h] = g.short.partition_point(|x| usize::from(x.0 >> 8) < h) as u32;
        }
        windows.sort_unstable();
        // The table: power of two at least twice the distinct windows.
        let distinct = windows.windows(2).filter(|w| w[0].0 != w[1].0).count() + 1;
        let size = (distinct * 2).next_power_of_two().max(2);
        g.table = vec![(0, 0, 0); size];
        g.by_window = windows
            .iter()
            .map(|&(_, id)| {
                let (check, rel) = checks[id as usize];
                Candidate { id, check, rel }
            })
            .collect();
        let mut i = 0;
        while i < windows.len() {
            let w = windows[i].0;
            let j = i + windows[i..].iter().take_while(|x| x.0 == w).count();
            let mut slot = (hash(w) as usize) & (size - 1);
            while g.table[slot].2 != 0 {
                slot = (slot + 1) & (size - 1);
            }
            // (window, start, end) with end > start marks an occupied slot.
            g.table[slot] = (w, i as u32, j as u32);
            i = j;
        }
        g
    }

    /// How many literal spellings it holds.
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Calls `hit(use, start, end)` for every occurrence of every literal in
    /// `lower` (the field's text, ASCII-lower-cased).
    #[inline]
    pub(super) fn scan(&self, lower: &[u8], mut hit: impl FnMut(&LitUse, usize, usize)) {
        // Every position but the last three holds a whole window, whose
        // first two bytes are also the key of the short literals there: one
        // load serves both tests. The two loops keep the one without short
        // literals tight.
        let whole = lower.len().saturating_sub(3);
        if self.short.is_empty() {
            for i in 0..whole {
                self.window_test(lower, i, &mut hit);
            }
            return;
        }
        for i in 0..whole {
            let k = self.window_test(lower, i, &mut hit) as u16;
            if self.short_filter[(k >> 6) as usize] & (1 << (k & 63)) != 0 {
                self.short_at(lower, i, &mut hit);
            }
        }
        for i in whole..lower.len() {
            self.short_at(lower, i, &mut hit);
        }
    }

    /// Tests the window at `at` (`lower` holds four bytes there) against
    /// the bitmap, and looks up its literals on a set bit. The window.
    #[inline(always)]
    fn window_test(
        &self,
        lower: &[u8],
        at: usize,
        hit: &mut impl FnMut(&LitUse, usize, usize),
    ) -> u32 {
        let w = u32::from_le_bytes(lower[at..at + 4].try_into().expect("4 bytes"));
        let h = hash(w);
        if self.bitmap[(h >> 6) as usize] & (1 << (h & 63)) != 0 {
            self.window_hits(lower, at, w, hit);
        }
        w
    }

    /// The literals of one to three bytes starting at `at`.
    #[inline(never)]
    fn short_at(&self, lower: &[u8], at: usize, hit: &mut impl FnMut(&LitUse, usize, usize)) {
        let b = lower[at];
        if self.one_byte[b as usize] {
            self.short_hits(lower, at, u16::from(b) << 8, hit);
        }
        if let Some(&next) = lower.get(at + 1) {
            let k = u16::from_le_bytes([b, next]);
            if self.short_bitmap[(k >> 6) as usize] & (1 << (k & 63)) != 0 {
                self.short_hits(lower, at, k, hit);
            }
        }
    }

    #[inline(never)]
    fn window_hits(
        &self,
        lower: &[u8],
        at: usize,
        w: u32,
        hit: &mut impl FnMut(&LitUse, usize, usize),
    ) {
        let mask = self.table.len() - 1;
        let mut slot = hash(w) as usize & mask;
        loop {
            let (tw, s, e) = self.table[slot];
            if e == 0 {
                return;
            }
            if tw == w {
                for c in &self.by_window[s as usize..e as usize] {
                    if c.rel != 0 {
                        let Some(four) = at
                            .checked_add_signed(c.rel as isize)
                            .and_then(|p| lower.get(p..p + 4))
                        else {
                            continue;
                        };
                        if u32::from_le_bytes(four.try_into().expect("4 bytes")) != c.check {
                            continue;
                        }
                    }
                    let entry = &self.entries[c.id as usize];
                    let Some(start) = at.checked_sub(entry.offset as usize) else {
                        continue;
                    };
                    self.verify(lower, start, entry, hit);
                }
                return;
            }
            slot = (slot + 1) & mask;
        }
    }

    #[inline(never)]
    fn short_hits(
        &self,
        lower: &[u8],
        at: usize,
        k: u16,
        hit: &mut impl FnMut(&LitUse, usize, usize),
    ) {
        let high = usize::from(k >> 8);
        let (from, to) = (self.short_from[high], self.short_from[high + 1]);
        for &(key, third, id) in &self.short[from as usize..to as usize] {
            if key == k && third.is_none_or(|t| lower.get(at + 2) == Some(&t)) {
                self.verify(lower, at, &self.entries[id as usize], hit);
            }
        }
    }

    #[inline]
    fn verify(
        &self,
        lower: &[u8],
        start: usize,
        entry: &Entry,
        hit: &mut impl FnMut(&LitUse, usize, usize),
    ) {
        let len = entry.len as usize;
        let lit = &self.bytes[entry.start as usize..entry.start as usize + len];
        if lower
            .get(start..start + len)
            .is_some_and(|text| same(text, lit))
        {
            for u in &self.uses[entry.uses.0 as usize..entry.uses.1 as usize] {
                hit(u, start, start + len);
            }
        }
    }
}

/// `a == b` for slices of one length, inline: most literals are short and
/// most candidates differ in their first eight bytes, where a call to
/// `memcmp` would cost more than the comparison.
#[inline(always)]
fn same(a: &[u8], b: &[u8]) -> bool {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len();
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes"));
    if n >= 8 {
        // Whole words, then the last eight bytes (overlapping).
        let mut i = 0;
        while i + 8 <= n {
            if word(a, i) != word(b, i) {
                return false;
            }
            i += 8;
        }
        i == n || word(a, n - 8) == word(b, n - 8)
    } else if n >= 4 {
        half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4)
    } else if n > 0 {
        // First, middle and last byte: every byte of one to three.
        a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1]
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::StrOp;

    #[test]
    fn same_is_slice_equality() {
        for n in 0..40 {
            let a: Vec<u8> = (0..n as u8).map(|i| b'a' + i % 26).collect();
            assert!(same(&a, &a.clone()));
            for at in 0..n {
                let mut b = a.clone();
                b[at] ^= 0x20;
                assert!(!same(&a, &b), "{n} bytes, differing at {at}");
            }
        }
    }

    #[test]
    fn a_literal_is_looked_for_at_a_window_typical_values_lack() {
        let lit = r"\windows\system32\spool\";
        let g = GramScan::build(LitUse::numbered(&[lit], StrOp::Contains));
        let at = g.entries[0].offset as usize;
        let window =
            |o: usize| -> [u8; 4] { lit.as_bytes()[o..o + 4].try_into().expect("4 bytes") };
        assert_eq!(super::super::typical::window_count(window(at)), 0);
        // The byte table alone picks a window many typical values hold
        // (`m32\`).
        let by_bytes = (0..=lit.len() - 4)
            .min_by_key(|&o| byte_cost(window(o)))
            .expect("windows");
        assert!(super::super::typical::window_count(window(by_bytes)) > 0);
        // And the literal is still found wherever it is.
        let mut found = Vec::new();
        g.scan(br"x c:\windows\system32\spool\a.exe", |_, s, e| {
            found.push((s, e))
        });
        assert_eq!(found, [(4, 4 + lit.len())]);
    }

    #[test]
    fn finds_every_occurrence_of_every_literal() {
        let lits = [
            "a", "-e", " /c", "abcd", "bcde", "cd", "xx-enc", "zzzzzzzz", "ДЖ",
        ];
        let g = GramScan::build(LitUse::numbered(&lits, StrOp::Contains));
        let texts = [
            "",
            "a",
            "abcde abcd",
            "cmd /c xx-enc -e",
            "zzzzzzzzz",
            "дж ДЖ",
            "-",
            "bcdebcde",
            // Short keys whose third byte differs, then holds.
            "a /d /c",
            // A long literal's windows without the literal around them, and
            // cut off by either end of the text.
            "yy-enc xx-end zzzzzzz",
            "-enc",
            "xx-en",
            "zzzzzzzzz zzzz",
        ];
        for t in texts {
            let lower = t.as_bytes().to_ascii_lowercase();
            let mut got: Vec<(u32, usize)> = Vec::new();
            g.scan(&lower, |u, start, end| {
                assert_eq!(end - start, lits[u.atom as usize].len());
                got.push((u.atom, start));
            });
            got.sort_unstable();
            let mut want: Vec<(u32, usize)> = Vec::new();
            for (i, l) in lits.iter().enumerate() {
                let l = l.as_bytes().to_ascii_lowercase();
                for s in 0..lower.len() {
                    if lower[s..].starts_with(&l) {
                        want.push((i as u32, s));
                    }
                }
            }
            want.sort_unstable();
            assert_eq!(got, want, "in {t:?}");
        }
    }
}
