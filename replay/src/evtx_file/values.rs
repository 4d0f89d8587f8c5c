//! Substitution values rendered as the `evtx` crate renders them into JSON
//! (text in the same spelling, numbers and booleans bare), so a record read
//! from its values maps to the same event as one read from the crate's JSON.

use std::fmt::Write as _;

/// What a value rendered to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Val {
    /// Text, written into the caller's buffer (empty for an empty value).
    Text,
    /// An integer the JSON reader keeps as one.
    Int(i64),
    /// An unsigned integer above `i64::MAX`, which the JSON reader keeps as
    /// text.
    BigUint(u64),
    /// A boolean.
    Bool(bool),
    /// The NULL type.
    Null,
}

/// Value type numbers (MS-EVEN6 2.2.18).
mod ty {
    pub const NULL: u8 = 0x00;
    pub const STRING: u8 = 0x01;
    pub const INT8: u8 = 0x03;
    pub const UINT8: u8 = 0x04;
    pub const INT16: u8 = 0x05;
    pub const UINT16: u8 = 0x06;
    pub const INT32: u8 = 0x07;
    pub const UINT32: u8 = 0x08;
    pub const INT64: u8 = 0x09;
    pub const UINT64: u8 = 0x0a;
    pub const BOOL: u8 = 0x0d;
    pub const BINARY: u8 = 0x0e;
    pub const GUID: u8 = 0x0f;
    pub const SIZE_T: u8 = 0x10;
    pub const FILETIME: u8 = 0x11;
    pub const SYSTIME: u8 = 0x12;
    pub const SID: u8 = 0x13;
    pub const HEX_INT32: u8 = 0x14;
    pub const HEX_INT64: u8 = 0x15;
}

/// Whether `t` is a value type the BinXML format defines (MS-EVEN6
/// 2.2.18): a record naming any other is damaged.
pub(super) fn is_known_type(t: u8) -> bool {
    // Asked of every value of every record: one load.
    const KNOWN: [bool; 256] = {
        let mut known = [false; 256];
        let mut t = 0;
        while t < 256 {
            known[t] = matches!(t as u8, 0x00..=0x15 | 0x20 | 0x21 | 0x23 | 0x81..=0x95);
            t += 1;
        }
        known
    };
    KNOWN[usize::from(t)]
}

/// Whether the crate reads a value of type `t` declared as these bytes
/// from them alone and without an error. The crate reads a fixed-size type
/// (or a SID) by its own size whatever the descriptor says, so a shorter
/// declared size shifts every value after it; sized arrays must be whole
/// elements; ANSI text must decode. A record with any other value goes to
/// the crate, which reads, or reports, it as it does.
#[inline]
pub(super) fn reads_alone(t: u8, b: &[u8]) -> bool {
    let whole = |n: usize| b.len().is_multiple_of(n);
    match t {
        ty::NULL | ty::BINARY | BINXML | 0x83 | 0x84 => true,
        ty::STRING => whole(2),
        0x02 | 0x82 => b.is_ascii(),
        ty::INT8 | ty::UINT8 => !b.is_empty(),
        ty::INT16 | ty::UINT16 => b.len() >= 2,
        ty::INT32 | ty::UINT32 | REAL32 | ty::BOOL | ty::HEX_INT32 => b.len() >= 4,
        ty::INT64 | ty::UINT64 | REAL64 | ty::FILETIME | ty::HEX_INT64 => b.len() >= 8,
        ty::GUID | ty::SYSTIME => b.len() >= 16,
        ty::SIZE_T => matches!(b.len(), 4 | 8),
        ty::SID => b.len() >= 8 && b.len() >= 8 + 4 * usize::from(b[1]),
        // Strings one after the other, the last one ended.
        0x81 => whole(2) && (b.is_empty() || b.ends_with(&[0, 0])),
        0x85 | 0x86 => whole(2),
        0x87 | 0x88 | 0x8b | 0x8d | 0x94 => whole(4),
        0x89 | 0x8a | 0x8c | 0x91 | 0x95 => whole(8),
        0x8f | 0x92 => whole(16),
        // SID arrays, handles, EvtXml, binary and size_t arrays.
        _ => false,
    }
}

/// Embedded BinXML, and the floating-point types (read only by the crate).
pub(super) const BINXML: u8 = 0x21;
const REAL32: u8 = 0x0b;
const REAL64: u8 = 0x0c;

/// Whether a value of type `ty` and these bytes is empty in the sense of an
/// optional substitution (left out of its element).
pub(super) fn is_empty(ty: u8, bytes: &[u8]) -> bool {
    match ty {
        ty::NULL => true,
        ty::STRING => bytes.len() < 2 || bytes[..2] == [0, 0],
        ty::BINARY => bytes.is_empty(),
        _ => false,
    }
}

/// Renders one value into `buf` (cleared first). `None`: a type (ANSI text,
/// floats, arrays, embedded BinXML, …) or size this reader leaves to the
/// crate.
pub(super) fn render(t: u8, b: &[u8], buf: &mut String) -> Option<Val> {
    buf.clear();
    let int = |n: usize| -> Option<[u8; 8]> {
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(b.get(..n).filter(|_| b.len() == n)?);
        Some(a)
    };
    Some(match t {
        ty::NULL => Val::Null,
        ty::STRING => {
            if !b.len().is_multiple_of(2) {
                return None;
            }
            push_utf16_until_nul(b, buf);
            Val::Text
        }
        ty::INT8 => Val::Int(i64::from(int(1)?[0] as i8)),
        ty::UINT8 => Val::Int(i64::from(int(1)?[0])),
        ty::INT16 => Val::Int(i64::from(i16::from_le_bytes(int(2)?[..2].try_into().ok()?))),
        ty::UINT16 => Val::Int(i64::from(u16::from_le_bytes(int(2)?[..2].try_into().ok()?))),
        ty::INT32 => Val::Int(i64::from(i32::from_le_bytes(int(4)?[..4].try_into().ok()?))),
        ty::UINT32 => Val::Int(i64::from(u32::from_le_bytes(int(4)?[..4].try_into().ok()?))),
        ty::INT64 => Val::Int(i64::from_le_bytes(int(8)?)),
        ty::UINT64 => {
            let v = u64::from_le_bytes(int(8)?);
            i64::try_from(v).map_or(Val::BigUint(v), Val::Int)
        }
        ty::BOOL => match i32::from_le_bytes(int(4)?[..4].try_into().ok()?) {
            0 => Val::Bool(false),
            1 => Val::Bool(true),
            raw => Val::Int(i64::from(raw)),
        },
        ty::BINARY => {
            push_hex_bytes(b, b"0123456789ABCDEF", buf);
            Val::Text
        }
        ty::GUID => {
            let g: &[u8; 16] = b.try_into().ok()?;
            let lower = b"0123456789abcdef";
            // Data1-3 are little-endian, Data4 is bytes in order.
            buf.push('{');
            push_hex_bytes(&[g[3], g[2], g[1], g[0]], lower, buf);
            buf.push('-');
            push_hex_bytes(&[g[5], g[4]], lower, buf);
            buf.push('-');
            push_hex_bytes(&[g[7], g[6]], lower, buf);
            buf.push('-');
            push_hex_bytes(&g[8..10], lower, buf);
            buf.push('-');
            push_hex_bytes(&g[10..], lower, buf);
            buf.push('}');
            Val::Text
        }
        ty::SIZE_T | ty::HEX_INT32 | ty::HEX_INT64 => {
            let v = match (t, b.len()) {
                (ty::HEX_INT32, 4) | (ty::SIZE_T, 4) => {
                    u64::from(u32::from_le_bytes(int(4)?[..4].try_into().ok()?))
                }
                (ty::HEX_INT64, 8) | (ty::SIZE_T, 8) => u64::from_le_bytes(int(8)?),
                _ => return None,
            };
            buf.push_str("0x");
            push_hex(v, buf);
            Val::Text
        }
        ty::FILETIME => {
            let ft = u64::from_le_bytes(int(8)?);
            let secs = ft / 10_000_000;
            let (days, rem) = (secs / 86_400, secs % 86_400);
            // Days from 1601-01-01 to 1970-01-01.
            let (y, m, d) = civil_from_days(days as i64 - 134_774);
            if !(0..=9999).contains(&y) {
                return None;
            }
            let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
            let ticks = ft % 10_000_000;
            push_timestamp([y as u64, m.into(), d.into(), h, mi, s, ticks], buf);
            Val::Text
        }
        ty::SYSTIME => {
            if b.len() != 16 {
                return None;
            }
            let f = |i: usize| u16::from_le_bytes([b[i * 2], b[i * 2 + 1]]);
            let (y, m, d, h, mi, s, ms) = (f(0), f(1), f(3), f(4), f(5), f(6), f(7));
            if y > 9999 || m > 99 || d > 99 || h > 99 || mi > 99 || s > 99 || ms > 999 {
                return None;
            }
            let ticks = u64::from(ms) * 10_000;
            let [y, m, d, h, mi, s] = [y, m, d, h, mi, s].map(u64::from);
            push_timestamp([y, m, d, h, mi, s, ticks], buf);
            Val::Text
        }
        ty::SID => {
            let [revision, count, a @ ..] = b else {
                return None;
            };
            if a.len() < 6 {
                return None;
            }
            let authority = u64::from_be_bytes([0, 0, a[0], a[1], a[2], a[3], a[4], a[5]]);
            let _ = write!(buf, "S-{revision}-{authority}");
            for sub in a[6..].chunks_exact(4).take(usize::from(*count)) {
                let sub = u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]]);
                let _ = write!(buf, "-{sub}");
            }
            Val::Text
        }
        _ => return None,
    })
}

/// Appends `YYYY-MM-DDTHH:MM:SS.fffffffZ` from its seven parts (each
/// within its width): the crate's spelling, written digit by digit because
/// `write!` cost more than the rest of a record's reading.
fn push_timestamp(parts: [u64; 7], out: &mut String) {
    const WIDTHS: [usize; 7] = [4, 2, 2, 2, 2, 2, 7];
    const AFTER: [u8; 7] = [b'-', b'-', b'T', b':', b':', b'.', b'Z'];
    let mut text = [0u8; 28];
    let mut at = 0;
    for ((value, width), after) in parts.into_iter().zip(WIDTHS).zip(AFTER) {
        let mut v = value;
        for digit in text[at..at + width].iter_mut().rev() {
            *digit = b'0' + (v % 10) as u8;
            v /= 10;
        }
        text[at + width] = after;
        at += width + 1;
    }
    // Digits and separators only: ASCII.
    out.push_str(std::str::from_utf8(&text).unwrap_or_default());
}

/// UTF-16LE text up to its first NUL code unit: the text the crate reads
/// from a value, a literal or a name, whatever length it was given. Four
/// code units at a time: most values have no NUL but their last.
pub(super) fn until_nul(units: &[u8]) -> &[u8] {
    const LOW_BITS: u64 = 0x0001_0001_0001_0001;
    const HIGH_BITS: u64 = 0x8000_8000_8000_8000;
    let (words, _) = units.as_chunks::<8>();
    // The first word with a zero unit (exact for the word as a whole).
    let clean = words
        .iter()
        .take_while(|w| {
            let x = u64::from_le_bytes(**w);
            x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS == 0
        })
        .count();
    let from = clean * 8;
    let end = units[from..]
        .as_chunks::<2>()
        .0
        .iter()
        .position(|u| *u == [0, 0])
        .map_or(units.len(), |i| from + i * 2);
    &units[..end]
}

/// [`push_utf16`] of [`until_nul`]`(units)`: most values are ASCII up to
/// their NUL, and that is found in the same pass that narrows them
/// ([`push_ascii_until_nul`]); text after a non-ASCII unit goes the general
/// way.
pub(super) fn push_utf16_until_nul(units: &[u8], out: &mut String) {
    let (taken, ended) = push_ascii_until_nul(units, out);
    if !ended {
        push_utf16(until_nul(&units[taken..]), out);
    }
}

/// Appends the ASCII text at the start of the UTF-16LE `units`, sixteen
/// units at a time with SSE2, up to the first NUL unit or the first
/// non-ASCII one, whichever comes first; the last, shorter block is read
/// padded with NULs. Returns how many bytes of `units` it took, and whether
/// it reached a NUL or the end (then nothing is left to append).
#[cfg(target_arch = "x86_64")]
fn push_ascii_until_nul(units: &[u8], out: &mut String) -> (usize, bool) {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_cmpeq_epi16, _mm_loadu_si128, _mm_movemask_epi8,
        _mm_packs_epi16, _mm_packus_epi16, _mm_set1_epi16, _mm_setzero_si128, _mm_storeu_si128,
    };
    /// How many units of the 32-byte `block` come before its first NUL
    /// (16 when none), and whether all of those are ASCII; when they are,
    /// they are appended.
    ///
    /// SAFETY: `bytes` must have room for 16 more bytes.
    unsafe fn narrow(block: &[u8; 32], bytes: &mut Vec<u8>) -> (u32, bool) {
        // SAFETY: the loads read the 32 bytes of `block`; the store writes
        // 16 bytes within the room the caller made, and the length then
        // covers the units before the NUL, all ASCII.
        unsafe {
            let lo = _mm_loadu_si128(block.as_ptr().cast::<__m128i>());
            let hi = _mm_loadu_si128(block.as_ptr().add(16).cast::<__m128i>());
            let zero = _mm_setzero_si128();
            // One bit per unit: the unit is NUL; the unit is ASCII (its
            // high byte and its low byte's top bit are zero).
            let units_where = |a: __m128i, b: __m128i| {
                _mm_movemask_epi8(_mm_packs_epi16(
                    _mm_cmpeq_epi16(a, zero),
                    _mm_cmpeq_epi16(b, zero),
                )) as u32
            };
            let nul = units_where(lo, hi);
            let mask = _mm_set1_epi16(0xff80u16 as i16);
            let ascii = units_where(_mm_and_si128(lo, mask), _mm_and_si128(hi, mask));
            let n = (nul | 1 << 16).trailing_zeros();
            let before = (1u32 << n) - 1;
            if ascii & before != before {
                return (n, false);
            }
            // Units below 0x80 narrow to their low byte exactly; the bytes
            // after the NUL are written but not counted.
            let len = bytes.len();
            _mm_storeu_si128(
                bytes.as_mut_ptr().add(len).cast::<__m128i>(),
                _mm_packus_epi16(lo, hi),
            );
            bytes.set_len(len + n as usize);
            (n, true)
        }
    }
    // SAFETY: only bytes below 0x80 are appended, so `out` stays UTF-8.
    let bytes = unsafe { out.as_mut_vec() };
    let units = &units[..units.len() & !1];
    let (blocks, last) = units.as_chunks::<32>();
    // Room for every block, the last one's padding included.
    bytes.reserve(16 * (blocks.len() + 1));
    let mut taken = 0;
    for block in blocks {
        // SAFETY: each block appends at most 16 of the bytes reserved.
        match unsafe { narrow(block, bytes) } {
            (16, true) => taken += 32,
            (_, true) => return (taken, true),
            (_, false) => return (taken, false),
        }
    }
    if last.is_empty() {
        return (taken, true);
    }
    let mut padded = [0u8; 32];
    padded[..last.len()].copy_from_slice(last);
    // SAFETY: as above; the padding reads as a NUL, which ends the text.
    match unsafe { narrow(&padded, bytes) } {
        (_, true) => (units.len(), true),
        (_, false) => (taken, false),
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn push_ascii_until_nul(_units: &[u8], _out: &mut String) -> (usize, bool) {
    (0, false)
}

/// Appends UTF-16LE text that holds no NUL unit (cut at its first, see
/// [`until_nul`]) to `out`, unpaired surrogates as U+FFFD. Most text in
/// event logs is ASCII: sixteen code units at a time are narrowed while all
/// of them are ASCII ([`push_ascii_until_nul`]); the rest of the ASCII run
/// is found four units at a time and copied a block at a time.
fn push_utf16(units: &[u8], out: &mut String) {
    let mut units = &units[..units.len() & !1];
    // The high byte of each unit zero, and the low byte's top bit.
    const NOT_ASCII: u64 = 0xff80_ff80_ff80_ff80;
    let is_ascii = |u: &[u8; 2]| u[1] == 0 && u[0] < 0x80;
    // ASCII runs sixteen units at a time, each run of other characters
    // decoded on its own: `Microsoft® Windows® Operating System` goes back
    // to the fast way after each `®`.
    loop {
        let (taken, ended) = push_ascii_until_nul(units, out);
        if ended {
            return;
        }
        units = &units[taken..];
        // The rest of the ASCII run, four units at a time.
        let words = units.as_chunks::<8>().0;
        let mut ascii = 8 * words
            .iter()
            .take_while(|w| u64::from_le_bytes(**w) & NOT_ASCII == 0)
            .count();
        ascii += 2 * units[ascii..]
            .as_chunks::<2>()
            .0
            .iter()
            .take_while(|u| is_ascii(u))
            .count();
        out.reserve(ascii / 2);
        // ASCII goes through a stack buffer, a block at a time: no allocation.
        for block in units[..ascii].as_chunks::<2>().0.chunks(64) {
            let mut buf = [0u8; 64];
            for (b, u) in buf.iter_mut().zip(block) {
                *b = u[0];
            }
            // Only ASCII bytes were taken, so this cannot fail.
            out.push_str(std::str::from_utf8(&buf[..block.len()]).unwrap_or_default());
        }
        units = &units[ascii..];
        if units.is_empty() {
            return;
        }
        // The run of other units, up to the next ASCII one: a surrogate
        // pair is never cut, as neither of its halves is ASCII.
        let other = 2 * units
            .as_chunks::<2>()
            .0
            .iter()
            .take_while(|u| !is_ascii(u))
            .count();
        let run = units[..other]
            .chunks_exact(2)
            .map(|u| u16::from_le_bytes([u[0], u[1]]));
        out.extend(char::decode_utf16(run).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)));
        units = &units[other..];
    }
}

/// Appends `v` in lowercase hex without leading zeros.
fn push_hex(v: u64, out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut v = v;
    loop {
        i -= 1;
        buf[i] = DIGITS[(v & 0xf) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    out.extend(buf[i..].iter().map(|&d| char::from(d)));
}

/// Appends bytes as two hex digits each, in `digits`' case.
fn push_hex_bytes(bytes: &[u8], digits: &[u8; 16], out: &mut String) {
    for &b in bytes {
        out.push(char::from(digits[usize::from(b >> 4)]));
        out.push(char::from(digits[usize::from(b & 0xf)]));
    }
}

/// (year, month, day) of a day count from 1970-01-01 (H. Hinnant's
/// `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: u8, b: &[u8]) -> String {
        let mut buf = String::new();
        assert_eq!(render(t, b, &mut buf), Some(Val::Text));
        buf
    }

    #[test]
    fn text_up_to_its_nul_decodes_as_the_standard_library_does() {
        // Units of every kind at every place of the 16-unit blocks and of
        // the shorter last one: ASCII, NUL, non-ASCII, a lone surrogate, a
        // unit whose low byte alone is ASCII; and an odd last byte.
        let kinds: [[u8; 2]; 6] = [
            [b'a', 0],
            [b'Z', 0],
            [0, 0],
            [0xe9, 0],
            [0x00, 0xd8],
            [b'a', 0x01],
        ];
        let mut seed = 11u32;
        for len in 0..80 {
            for _ in 0..40 {
                let mut units: Vec<u8> = (0..len)
                    .flat_map(|_| {
                        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                        // Mostly ASCII, as in event logs.
                        let k = (seed >> 24) as usize % 24;
                        kinds[if k < 6 { k } else { 0 }]
                    })
                    .collect();
                if seed & 1 == 1 {
                    units.push(b'q');
                }
                // What the standard library makes of the text before the
                // first NUL (an odd last byte dropped).
                let text: Vec<u16> = (units.as_chunks::<2>().0.iter())
                    .map(|u| u16::from_le_bytes(*u))
                    .take_while(|&u| u != 0)
                    .collect();
                let want = format!("kept {}", String::from_utf16_lossy(&text));
                let mut got = String::from("kept ");
                push_utf16_until_nul(&units, &mut got);
                assert_eq!(got, want, "{units:?}");
            }
        }
    }

    #[test]
    fn values_render_in_the_crates_spelling() {
        let utf16 = |s: &str| {
            s.encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<u8>>()
        };
        assert_eq!(text(ty::STRING, &utf16("cmd.exe\0junk")), "cmd.exe");
        assert_eq!(text(ty::STRING, &utf16("Grüße ☃")), "Grüße ☃");
        let long = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe -nop -w hidden";
        for cut in 0..long.len() {
            // Non-ASCII at every place of the four-unit words.
            let s = format!("{}é{}\u{1f600}x", &long[..cut], &long[cut..]);
            assert_eq!(text(ty::STRING, &utf16(&s)), s);
        }
        // A NUL at every place, in the four-unit words and in the units
        // after the last whole word, ends the text; with no NUL, an odd
        // last byte is kept (and dropped as text later).
        let mut long = utf16("abcdefghijklmnopqrstu");
        long.push(b'v');
        for at in 0..long.len() / 2 {
            let mut units = long.clone();
            units[2 * at..2 * at + 2].copy_from_slice(&[0, 0]);
            assert_eq!(until_nul(&units), &long[..2 * at]);
        }
        assert_eq!(until_nul(&long), &long[..]);
        // Two zero bytes that are not one unit (`a` then U+0100) end nothing.
        let straddling = utf16("a\u{100}b\u{200}c\u{300}d\u{400}e");
        assert_eq!(until_nul(&straddling), &straddling[..]);
        assert_eq!(until_nul(b"a\0b\0c"), b"a\0b\0c");
        // Every length of ASCII run (across the four-unit words and the
        // 64-byte blocks), then non-ASCII or an unpaired surrogate.
        let ascii: String = (0..200u8).map(|i| char::from(b' ' + i % 90)).collect();
        for n in 0..ascii.len() {
            for tail in [
                &[][..],
                &[0xe9, 0x00][..],
                &[0x00, 0xd8][..],
                &[b'\'', 0x20][..],
            ] {
                let mut units = utf16(&ascii[..n]);
                units.extend_from_slice(tail);
                units.extend(utf16("x\u{1f600}"));
                let want = String::from_utf16_lossy(
                    &units
                        .chunks_exact(2)
                        .map(|u| u16::from_le_bytes([u[0], u[1]]))
                        .collect::<Vec<_>>(),
                );
                let mut got = String::from("kept ");
                push_utf16(&units, &mut got);
                assert_eq!(got, format!("kept {want}"), "{n} {tail:?}");
                // An odd trailing byte is dropped.
                units.push(b'z');
                let mut odd = String::new();
                push_utf16(&units, &mut odd);
                assert_eq!(odd, want);
            }
        }
        // An unpaired surrogate.
        let mut lone = utf16("abcdefgh");
        lone.extend([0x00, 0xd8, b'x', 0]);
        assert_eq!(text(ty::STRING, &lone), "abcdefgh\u{fffd}x");
        assert_eq!(text(ty::HEX_INT64, &0x1f4u64.to_le_bytes()), "0x1f4");
        assert_eq!(text(ty::HEX_INT32, &0u32.to_le_bytes()), "0x0");
        assert_eq!(text(ty::BINARY, &[0xab, 0x01]), "AB01");
        // 2019-03-19T23:34:25.2877200Z as a FILETIME.
        let ft: u64 = 131_975_120_652_877_200;
        assert_eq!(
            text(ty::FILETIME, &ft.to_le_bytes()),
            "2019-03-19T23:34:25.2877200Z"
        );
        assert_eq!(
            text(ty::FILETIME, &0u64.to_le_bytes()),
            "1601-01-01T00:00:00.0000000Z"
        );
        // 2024-02-29 09:05:03.004 as a SYSTEMTIME (year, month, weekday,
        // day, hour, minute, second, milliseconds).
        let st: Vec<u8> = [2024u16, 2, 4, 29, 9, 5, 3, 4]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        assert_eq!(text(ty::SYSTIME, &st), "2024-02-29T09:05:03.0040000Z");
        // Every part at every width, as `format!` pads them.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let p = [
                seed % 10_000,
                (seed >> 14) % 100,
                (seed >> 21) % 100,
                (seed >> 28) % 100,
                (seed >> 35) % 100,
                (seed >> 42) % 100,
                (seed >> 20) % 10_000_000,
            ];
            let mut got = String::from("kept ");
            push_timestamp(p, &mut got);
            let [y, m, d, h, mi, s, t] = p;
            assert_eq!(
                got,
                format!("kept {y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{t:07}Z")
            );
        }
        let sid = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
        assert_eq!(text(ty::SID, &sid), "S-1-5-32-544");
        let guid = [
            0x78, 0x56, 0x34, 0x12, 0x34, 0x12, 0x78, 0x56, 0xab, 0xcd, 1, 2, 3, 4, 5, 6,
        ];
        assert_eq!(
            text(ty::GUID, &guid),
            "{12345678-1234-5678-abcd-010203040506}"
        );
        let mut buf = String::new();
        assert_eq!(
            render(ty::UINT16, &1u16.to_le_bytes(), &mut buf),
            Some(Val::Int(1))
        );
        assert_eq!(
            render(ty::UINT64, &u64::MAX.to_le_bytes(), &mut buf),
            Some(Val::BigUint(u64::MAX))
        );
        assert_eq!(
            render(ty::BOOL, &1u32.to_le_bytes(), &mut buf),
            Some(Val::Bool(true))
        );
        assert_eq!(render(ty::UINT32, &[1, 2], &mut buf), None, "wrong size");
        assert_eq!(render(0x02, b"ansi", &mut buf), None, "left to the crate");
        assert_eq!(
            render(0x81, b"", &mut buf),
            None,
            "arrays are left to the crate"
        );
    }
}
