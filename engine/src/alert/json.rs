//! Alert JSON written by hand, byte for byte as `serde_json` writes it.
//!
//! Why not `serde_json` alone: a replay writes tens of megabytes of alerts,
//! most of it the events' strings, and an event that fires several rules was
//! serialized once per rule. Here an event is written once per firing
//! ([`event`]) and copied into each of its alerts, and strings are escaped a
//! word at a time. Numbers, timestamps and nested JSON still go through
//! `serde_json`, so nothing but the string escaping is re-implemented, and a
//! test holds that to `serde_json` on every byte value.

use crate::event::{Event, Value};

/// Appends `event` as JSON: the same bytes as `serde_json::to_writer(event)`.
pub(super) fn event(event: &Event, out: &mut Vec<u8>) {
    out.extend_from_slice(super::EVENT_JSON_HEAD);
    serde(&event.ts, out);
    out.extend_from_slice(b",\"kind\":");
    string(event.kind.as_str(), out);
    if let Some(h) = &event.host {
        out.extend_from_slice(b",\"host\":");
        string(h, out);
    }
    out.extend_from_slice(b",\"os\":");
    string(event.os.as_str(), out);
    for (k, v) in event.fields() {
        out.push(b',');
        match k.known_id() {
            // A well-known name is plain ASCII: nothing to escape (a test
            // holds every one to `string`).
            Some(_) => {
                out.push(b'"');
                out.extend_from_slice(k.as_str().as_bytes());
                out.extend_from_slice(b"\":");
            }
            None => {
                string(k.as_str(), out);
                out.push(b':');
            }
        }
        match v {
            Value::Str(s) => string(s, out),
            other => serde(other, out),
        }
    }
    out.push(b'}');
}

/// Appends `value` as `serde_json` writes it.
pub(super) fn serde<T: serde::Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    // Serializing plain data into memory cannot fail (no I/O, string keys).
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Appends `s` as a JSON string, escaped as `serde_json` escapes it: `"`,
/// `\` and the control characters below U+0020 (`\b \t \n \f \r` by name,
/// the others as `\u00xx`); everything else, U+007F and non-ASCII included,
/// as it is.
pub(super) fn string(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // `start`: the first byte not yet appended.
    let mut start = 0;
    // Sixteen bytes at a time while sixteen are left, each flagged byte
    // escaped where the block found it: Windows paths hold a backslash
    // every few bytes.
    #[cfg(target_arch = "x86_64")]
    let mut i = escape_blocks(bytes, &mut start, out);
    #[cfg(not(target_arch = "x86_64"))]
    let mut i = 0;
    while i < bytes.len() {
        // Skip eight plain bytes at a time, then straight to the first
        // byte to escape. The last few bytes are read as a word too, padded
        // with blanks (never escaped): most strings end without one.
        let word = match bytes.get(i..i + 8) {
            Some(word) => u64::from_le_bytes(word.try_into().expect("eight bytes")),
            None => {
                let mut padded = [b' '; 8];
                padded[..bytes.len() - i].copy_from_slice(&bytes[i..]);
                u64::from_le_bytes(padded)
            }
        };
        let flags = escape_flags(word);
        if flags == 0 {
            i += 8;
            continue;
        }
        // The lowest flag is exact (see `escape_flags`), and the padding
        // is never flagged: this byte is one to escape.
        i += (flags.trailing_zeros() / 8) as usize;
        out.extend_from_slice(&bytes[start..i]);
        push_escaped(bytes[i], out);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Appends the escape of `b`: `"`, `\` or a byte below 0x20.
fn push_escaped(b: u8, out: &mut Vec<u8>) {
    let named: &[u8] = match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\x08' => b"\\b",
        b'\t' => b"\\t",
        b'\n' => b"\\n",
        b'\x0c' => b"\\f",
        b'\r' => b"\\r",
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(named);
}

/// [`string`]'s work on the blocks of sixteen bytes of `bytes`: appends
/// them, escaped, to `out`, up to the last flagged byte (the plain bytes
/// after it are left to append, from `start`). Returns where the last,
/// shorter, block starts.
#[cfg(target_arch = "x86_64")]
#[inline]
fn escape_blocks(bytes: &[u8], start: &mut usize, out: &mut Vec<u8>) -> usize {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };
    let mut i = 0;
    while i + 16 <= bytes.len() {
        // SAFETY: SSE2 is part of every x86_64 CPU, and the unaligned load
        // reads `bytes[i..i + 16]`, in bounds by the loop's condition.
        let mut mask = unsafe {
            let v = _mm_loadu_si128(bytes.as_ptr().add(i).cast());
            // Below 0x20: the unsigned minimum with 0x1f is the byte itself.
            let control = _mm_cmpeq_epi8(_mm_min_epu8(v, _mm_set1_epi8(0x1f)), v);
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
        };
        // Each flag is exact: one bit per byte to escape.
        while mask != 0 {
            let at = i + mask.trailing_zeros() as usize;
            out.extend_from_slice(&bytes[*start..at]);
            push_escaped(bytes[at], out);
            *start = at + 1;
            mask &= mask - 1;
        }
        i += 16;
    }
    i
}

/// The high bit of each of the eight bytes of `w` (read little-endian) that
/// is `"`, `\` or below 0x20, exact up to the first such byte (the lowest
/// flag); bytes after it may be flagged falsely. Zero: none is.
fn escape_flags(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // A byte is zero in `x` exactly where it equals the byte tested for;
    // `(x - ONES) & !x & HIGHS` flags zero bytes (a borrow can only flag
    // bytes above a true one).
    let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    // Bytes below 0x20: `b - 0x20` borrows into its high bit, unless the
    // byte had its high bit set already (non-ASCII, not a control).
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGHS;
    zero_in(w ^ (ONES * u64::from(b'"'))) | zero_in(w ^ (ONES * u64::from(b'\\'))) | below_space
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{fields, EventKind, FieldKey, Os};

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        string(s, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        // Every byte value a string can hold, at every offset within a
        // sixteen-byte block and an eight-byte word, alone and among plain
        // text.
        let mut cases: Vec<String> = (0u32..0x80)
            .chain([0xe9, 0x7ff, 0x800, 0xffff, 0x10000, 0x10ffff])
            .filter_map(char::from_u32)
            .flat_map(|c| {
                // Every place in a 16-byte block and in the shorter tail.
                (0..40).map(move |pad| format!("{}{c}{}", "a".repeat(pad), "b".repeat(39 - pad)))
            })
            .collect();
        cases.push(String::new());
        cases.push("C:\\Windows\\System32\\cmd.exe /c \"echo\"\r\n\t\u{1}\u{1f}\u{7f}é".into());
        cases.push("\\".repeat(17));
        // Strings dense with bytes to escape, in every arrangement a small
        // deterministic generator makes.
        let alphabet = [
            'a', '"', '\\', '\n', '\u{1}', '\u{1f}', ' ', 'é', '\u{7f}', 'Z',
        ];
        let mut seed = 7u32;
        for len in 0..400 {
            let s: String = (0..len % 40)
                .map(|_| {
                    seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    alphabet[(seed >> 24) as usize % alphabet.len()]
                })
                .collect();
            cases.push(s);
        }
        for s in &cases {
            assert_eq!(ours(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn well_known_names_need_no_escaping() {
        // `event` writes them between quotes as they are.
        for (name, _) in crate::event::KNOWN_FIELDS {
            assert_eq!(ours(name), format!("\"{name}\""));
        }
    }

    #[test]
    fn events_are_written_as_serde_json_writes_them() {
        let mut ev = Event::new(
            EventKind::FileCreate,
            Os::Linux,
            "2021-09-14T10:00:00.123456789Z".parse().unwrap(),
        );
        let mut bare = ev.clone();
        ev.host = Some("h\"ost\u{3}".into());
        ev.set(fields::IMAGE, "/usr/bin/\u{7}x".into());
        ev.set(fields::PROCESS_ID, Value::Int(-42));
        ev.set(FieldKey::from_name("F"), Value::Float(1.5e-7));
        ev.set(FieldKey::from_name("Inf"), Value::Float(f64::INFINITY));
        ev.set(FieldKey::from_name("B"), Value::Bool(true));
        ev.set(FieldKey::from_name("N"), Value::Null);
        ev.set(
            FieldKey::from_name("J"),
            Value::Json(Box::new(serde_json::json!({"a": ["\n", 1, null]}))),
        );
        ev.set(FieldKey::from_name("Ke\"y"), "v".into());
        bare.set(fields::COMMAND_LINE, "".into());
        for e in [&ev, &bare] {
            let mut out = Vec::new();
            event(e, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(e).unwrap()
            );
        }
    }
}
